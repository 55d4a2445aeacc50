//! Cluster: the CLUSTER container, READONLY, READWRITE and ASKING, as Redis 7.2's command
//! files have them, plus fanout's own CLUSTER RELOAD.

use super::*;

const SLOW: &[&str] = &["@slow"];
const FAST_CONNECTION: &[&str] = &["@fast", "@connection"];
const NONDETERMINISTIC: &[&str] = &["nondeterministic_output"];

pub(super) static COMMANDS: &[Spec] = &[
    container!(
        "cluster",
        Cluster,
        "cluster",
        "3.0.0",
        "A container for Redis Cluster commands.",
        &[
            spec!(
                "cluster|addslots",
                ClusterAddslots,
                -3,
                f![ADMIN, STALE, NO_ASYNC_LOADING],
                ADMIN_ACL,
                "cluster",
                "3.0.0",
                "Assigns new hash slots to a node.",
                "O(N) where N is the total number of hash slot arguments",
                &[many("slot", "integer")]
            ),
            spec!(
                "cluster|addslotsrange",
                ClusterAddslotsrange,
                -4,
                f![ADMIN, STALE, NO_ASYNC_LOADING],
                ADMIN_ACL,
                "cluster",
                "7.0.0",
                "Assigns new hash slot ranges to a node.",
                "O(N) where N is the total number of the slots between the start slot and end slot arguments.",
                &[Arg {
                    multiple: true,
                    ..group(
                        "range",
                        "block",
                        None,
                        false,
                        &[a("start-slot", "integer"), a("end-slot", "integer")]
                    )
                }]
            ),
            Spec {
                tips: NONDETERMINISTIC,
                ..spec!(
                    "cluster|bumpepoch",
                    ClusterBumpepoch,
                    2,
                    f![ADMIN, STALE, NO_ASYNC_LOADING],
                    ADMIN_ACL,
                    "cluster",
                    "3.0.0",
                    "Advances the cluster config epoch.",
                    "O(1)",
                    &[]
                )
            },
            Spec {
                tips: NONDETERMINISTIC,
                ..spec!(
                    "cluster|count-failure-reports",
                    ClusterCountFailureReports,
                    3,
                    f![ADMIN, STALE],
                    ADMIN_ACL,
                    "cluster",
                    "3.0.0",
                    "Returns the number of active failure reports active for a node.",
                    "O(N) where N is the number of failure reports",
                    &[a("node-id", "string")]
                )
            },
            spec!(
                "cluster|countkeysinslot",
                ClusterCountkeysinslot,
                3,
                f![STALE],
                SLOW,
                "cluster",
                "3.0.0",
                "Returns the number of keys in a hash slot.",
                "O(1)",
                &[a("slot", "integer")]
            ),
            spec!(
                "cluster|delslots",
                ClusterDelslots,
                -3,
                f![ADMIN, STALE, NO_ASYNC_LOADING],
                ADMIN_ACL,
                "cluster",
                "3.0.0",
                "Sets hash slots as unbound for a node.",
                "O(N) where N is the total number of hash slot arguments",
                &[many("slot", "integer")]
            ),
            spec!(
                "cluster|delslotsrange",
                ClusterDelslotsrange,
                -4,
                f![ADMIN, STALE, NO_ASYNC_LOADING],
                ADMIN_ACL,
                "cluster",
                "7.0.0",
                "Sets hash slot ranges as unbound for a node.",
                "O(N) where N is the total number of the slots between the start slot and end slot arguments.",
                &[Arg {
                    multiple: true,
                    ..group(
                        "range",
                        "block",
                        None,
                        false,
                        &[a("start-slot", "integer"), a("end-slot", "integer")]
                    )
                }]
            ),
            spec!(
                "cluster|failover",
                ClusterFailover,
                -2,
                f![ADMIN, STALE, NO_ASYNC_LOADING],
                ADMIN_ACL,
                "cluster",
                "3.0.0",
                "Forces a replica to perform a manual failover of its master.",
                "O(1)",
                &[group(
                    "options",
                    "oneof",
                    None,
                    true,
                    &[token("force", "FORCE"), token("takeover", "TAKEOVER")]
                )]
            ),
            spec!(
                "cluster|flushslots",
                ClusterFlushslots,
                2,
                f![ADMIN, STALE, NO_ASYNC_LOADING],
                ADMIN_ACL,
                "cluster",
                "3.0.0",
                "Deletes all slots information from a node.",
                "O(1)",
                &[]
            ),
            spec!(
                "cluster|forget",
                ClusterForget,
                3,
                f![ADMIN, STALE, NO_ASYNC_LOADING],
                ADMIN_ACL,
                "cluster",
                "3.0.0",
                "Removes a node from the nodes table.",
                "O(1)",
                &[a("node-id", "string")]
            ),
            Spec {
                tips: NONDETERMINISTIC,
                ..spec!(
                    "cluster|getkeysinslot",
                    ClusterGetkeysinslot,
                    4,
                    f![STALE],
                    SLOW,
                    "cluster",
                    "3.0.0",
                    "Returns the key names in a hash slot.",
                    "O(N) where N is the number of requested keys",
                    &[a("slot", "integer"), a("count", "integer")]
                )
            },
            spec!(
                "cluster|help",
                ClusterHelp,
                2,
                f![LOADING, STALE],
                SLOW,
                "cluster",
                "5.0.0",
                "Returns helpful text about the different subcommands.",
                "O(1)",
                &[]
            ),
            Spec {
                tips: NONDETERMINISTIC,
                ..spec!(
                    "cluster|info",
                    ClusterInfo,
                    2,
                    f![STALE],
                    SLOW,
                    "cluster",
                    "3.0.0",
                    "Returns information about the state of a node.",
                    "O(1)",
                    &[]
                )
            },
            spec!(
                "cluster|keyslot",
                ClusterKeyslot,
                3,
                f![STALE],
                SLOW,
                "cluster",
                "3.0.0",
                "Returns the hash slot for a key.",
                "O(N) where N is the number of bytes in the key",
                &[a("key", "string")]
            ),
            Spec {
                tips: NONDETERMINISTIC,
                ..spec!(
                    "cluster|links",
                    ClusterLinks,
                    2,
                    f![STALE],
                    SLOW,
                    "cluster",
                    "7.0.0",
                    "Returns a list of all TCP links to and from peer nodes.",
                    "O(N) where N is the total number of Cluster nodes",
                    &[]
                )
            },
            Spec {
                history: &[("4.0.0", "Added the optional `cluster_bus_port` argument.")],
                ..spec!(
                    "cluster|meet",
                    ClusterMeet,
                    -4,
                    f![ADMIN, STALE, NO_ASYNC_LOADING],
                    ADMIN_ACL,
                    "cluster",
                    "3.0.0",
                    "Forces a node to handshake with another node.",
                    "O(1)",
                    &[
                        a("ip", "string"),
                        a("port", "integer"),
                        Arg {
                            since: Some("4.0.0"),
                            ..opt("cluster-bus-port", "integer")
                        }
                    ]
                )
            },
            spec!(
                "cluster|myid",
                ClusterMyid,
                2,
                f![STALE],
                SLOW,
                "cluster",
                "3.0.0",
                "Returns the ID of a node.",
                "O(1)",
                &[]
            ),
            Spec {
                tips: NONDETERMINISTIC,
                ..spec!(
                    "cluster|myshardid",
                    ClusterMyshardid,
                    2,
                    f![STALE],
                    SLOW,
                    "cluster",
                    "7.2.0",
                    "Returns the shard ID of a node.",
                    "O(1)",
                    &[]
                )
            },
            Spec {
                tips: NONDETERMINISTIC,
                ..spec!(
                    "cluster|nodes",
                    ClusterNodes,
                    2,
                    f![STALE],
                    SLOW,
                    "cluster",
                    "3.0.0",
                    "Returns the cluster configuration for a node.",
                    "O(N) where N is the total number of Cluster nodes",
                    &[]
                )
            },
            Spec {
                tips: NONDETERMINISTIC,
                ..spec!(
                    "cluster|replicas",
                    ClusterReplicas,
                    3,
                    f![ADMIN, STALE],
                    ADMIN_ACL,
                    "cluster",
                    "5.0.0",
                    "Lists the replica nodes of a master node.",
                    "O(N) where N is the number of replicas.",
                    &[a("node-id", "string")]
                )
            },
            spec!(
                "cluster|replicate",
                ClusterReplicate,
                3,
                f![ADMIN, STALE, NO_ASYNC_LOADING],
                ADMIN_ACL,
                "cluster",
                "3.0.0",
                "Configure a node as replica of a master node.",
                "O(1)",
                &[a("node-id", "string")]
            ),
            spec!(
                "cluster|reset",
                ClusterReset,
                -2,
                f![ADMIN, NOSCRIPT, STALE],
                ADMIN_ACL,
                "cluster",
                "3.0.0",
                "Resets a node.",
                "O(N) where N is the number of known nodes. The command may execute a FLUSHALL as a side effect.",
                &[group(
                    "reset-type",
                    "oneof",
                    None,
                    true,
                    &[token("hard", "HARD"), token("soft", "SOFT")]
                )]
            ),
            spec!(
                "cluster|saveconfig",
                ClusterSaveconfig,
                2,
                f![ADMIN, STALE, NO_ASYNC_LOADING],
                ADMIN_ACL,
                "cluster",
                "3.0.0",
                "Forces a node to save the cluster configuration to disk.",
                "O(1)",
                &[]
            ),
            spec!(
                "cluster|set-config-epoch",
                ClusterSetConfigEpoch,
                3,
                f![ADMIN, STALE, NO_ASYNC_LOADING],
                ADMIN_ACL,
                "cluster",
                "3.0.0",
                "Sets the configuration epoch for a new node.",
                "O(1)",
                &[a("config-epoch", "integer")]
            ),
            spec!(
                "cluster|setslot",
                ClusterSetslot,
                -4,
                f![ADMIN, STALE, NO_ASYNC_LOADING],
                ADMIN_ACL,
                "cluster",
                "3.0.0",
                "Binds a hash slot to a node.",
                "O(1)",
                &[
                    a("slot", "integer"),
                    group(
                        "subcommand",
                        "oneof",
                        None,
                        false,
                        &[
                            Arg {
                                token: Some("IMPORTING"),
                                display: Some("node-id"),
                                ..a("importing", "string")
                            },
                            Arg {
                                token: Some("MIGRATING"),
                                display: Some("node-id"),
                                ..a("migrating", "string")
                            },
                            Arg {
                                token: Some("NODE"),
                                display: Some("node-id"),
                                ..a("node", "string")
                            },
                            token("stable", "STABLE")
                        ]
                    )
                ]
            ),
            Spec {
                tips: NONDETERMINISTIC,
                ..spec!(
                    "cluster|shards",
                    ClusterShards,
                    2,
                    f![LOADING, STALE],
                    SLOW,
                    "cluster",
                    "7.0.0",
                    "Returns the mapping of cluster slots to shards.",
                    "O(N) where N is the total number of cluster nodes",
                    &[]
                )
            },
            Spec {
                tips: NONDETERMINISTIC,
                deprecated: Some(("5.0.0", "`CLUSTER REPLICAS`")),
                ..spec!(
                    "cluster|slaves",
                    ClusterSlaves,
                    3,
                    f![ADMIN, STALE],
                    ADMIN_ACL,
                    "cluster",
                    "3.0.0",
                    "Lists the replica nodes of a master node.",
                    "O(N) where N is the number of replicas.",
                    &[a("node-id", "string")]
                )
            },
            Spec {
                tips: NONDETERMINISTIC,
                history: &[
                    ("4.0.0", "Added node IDs."),
                    ("7.0.0", "Added additional networking metadata field.")
                ],
                deprecated: Some(("7.0.0", "`CLUSTER SHARDS`")),
                ..spec!(
                    "cluster|slots",
                    ClusterSlots,
                    2,
                    f![LOADING, STALE],
                    SLOW,
                    "cluster",
                    "3.0.0",
                    "Returns the mapping of cluster slots to nodes.",
                    "O(N) where N is the total number of Cluster nodes",
                    &[]
                )
            },
            // fanout's own: rereads the topology file.
            spec!(
                "cluster|reload",
                ClusterReload,
                2,
                f![ADMIN, STALE, NO_ASYNC_LOADING],
                ADMIN_ACL,
                "cluster",
                "7.2.0",
                "Reread the cluster topology file (fanout)",
                "O(N) where N is the number of shard channels subscribed on this node",
                &[]
            ),
        ]
    ),
    spec!(
        "readonly",
        Readonly,
        1,
        f![LOADING, STALE, FAST],
        FAST_CONNECTION,
        "cluster",
        "3.0.0",
        "Enables read-only queries for a connection to a Redis Cluster replica node.",
        "O(1)",
        &[]
    ),
    spec!(
        "readwrite",
        Readwrite,
        1,
        f![LOADING, STALE, FAST],
        FAST_CONNECTION,
        "cluster",
        "3.0.0",
        "Enables read-write queries for a connection to a Reids Cluster replica node.",
        "O(1)",
        &[]
    ),
    spec!(
        "asking",
        Asking,
        1,
        f![FAST],
        FAST_CONNECTION,
        "cluster",
        "3.0.0",
        "Signals that a cluster client is following an -ASK redirect.",
        "O(1)",
        &[]
    ),
];
