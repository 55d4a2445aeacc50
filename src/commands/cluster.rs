//! CLUSTER, READONLY, READWRITE, ASKING: the client side of Redis Cluster, answered
//! from the static topology (see [`crate::cluster`]), in Redis 7's reply shapes (the
//! tests compare them with bytes captured from a real cluster).
//!
//! What a static topology cannot honour (MEET, ADDSLOTS, SETSLOT, FAILOVER...) is
//! refused with an error that says what to do instead; CLUSTER RELOAD rereads the file.

use std::sync::Arc;

use bytes::Bytes;

use super::args::parse_i64;
use super::errors::Error;
use super::{Flow, Session};
use crate::cluster::slots::{slot_of, SLOTS};
use crate::cluster::topology::{Node, Topology};
use crate::keyspace::now_ms;
use crate::keyspace::Keyspace;
use crate::protocol::reply::Encoder;
use crate::spec::Cmd;

const HELP: &[&str] = &[
    "ADDSLOTS <slot> [<slot> ...]",
    "    Assign slots to current node.",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Assign slots which are between <start-slot> and <end-slot> to current node.",
    "BUMPEPOCH",
    "    Advance the cluster config epoch.",
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Return number of failure reports for <node-id>.",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "DELSLOTS <slot> [<slot> ...]",
    "    Delete slots information from current node.",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
    "FAILOVER [FORCE|TAKEOVER]",
    "    Promote current replica node to being a master.",
    "FORGET <node-id>",
    "    Remove a node from the cluster.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "FLUSHSLOTS",
    "    Delete current node own slots information.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MEET <ip> <port> [<bus-port>]",
    "    Connect nodes into a working cluster.",
    "MYID",
    "    Return the node id.",
    "MYSHARDID",
    "    Return the node's shard id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "RELOAD",
    "    Reread the topology file (cluster-config-file); fanout's topology is static otherwise.",
    "REPLICATE <node-id>",
    "    Configure current node as replica to <node-id>.",
    "RESET [HARD|SOFT]",
    "    Reset current node (default: soft).",
    "SET-CONFIG-EPOCH <epoch>",
    "    Set config epoch of current node.",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "    Set slot state.",
    "REPLICAS <node-id>",
    "    Return <node-id> replicas.",
    "SAVECONFIG",
    "    Force saving cluster configuration on disk.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "    Output format is an array where each array element is a map containing attributes of a link",
];

impl Session {
    pub(super) fn cluster(&mut self, cmd: Cmd, args: &[Bytes]) -> Flow {
        let Some(t) = self.broker.cluster.topology() else {
            self.fail(Error::ClusterDisabled);
            return Flow::Continue;
        };
        match cmd {
            Cmd::Readonly | Cmd::Readwrite => {
                self.readonly = cmd == Cmd::Readonly;
                self.ok();
            }
            // A static topology never migrates a slot: nothing to be asked.
            Cmd::Asking => self.ok(),
            Cmd::ClusterHelp => self.help("CLUSTER", HELP),
            Cmd::ClusterMyid => self.reply().bulk(t.me().id.as_bytes()),
            Cmd::ClusterMyshardid => self.reply().bulk(t.my_shard().id.as_bytes()),
            Cmd::ClusterKeyslot => {
                let slot = slot_of(&args[2]);
                self.reply().integer(slot as i64);
            }
            Cmd::ClusterSlots => self.cluster_slots(&t),
            Cmd::ClusterShards => self.cluster_shards(&t),
            Cmd::ClusterNodes => {
                let text = self.nodes_text(&t);
                self.reply().verbatim(text.as_bytes());
            }
            Cmd::ClusterReplicas | Cmd::ClusterSlaves => match t.node_by_id(&args[2]) {
                None => self.fail(Error::UnknownNode(args[2].clone())),
                Some(n) if !n.primary => self.fail(Error::NotAPrimary),
                Some(n) => {
                    let lines: Vec<String> = t.shards[n.shard].nodes[1..]
                        .iter()
                        .map(|&r| self.node_line(&t, &t.nodes[r]))
                        .collect();
                    let mut e = self.reply();
                    e.array(lines.len());
                    for l in &lines {
                        e.bulk(l.as_bytes());
                    }
                }
            },
            Cmd::ClusterCountFailureReports => match t.node_by_id(&args[2]) {
                None => self.fail(Error::UnknownNode(args[2].clone())),
                // No gossip, so no failure reports: a node is failed by its silence.
                Some(_) => self.reply().integer(0),
            },
            Cmd::ClusterInfo => {
                let text = self.cluster_info(&t);
                self.reply().verbatim(text.as_bytes());
            }
            // fanout has no links between nodes but its one NATS connection.
            Cmd::ClusterLinks => self.reply().array(0),
            Cmd::ClusterCountkeysinslot => match parse_i64(&args[2]) {
                None => self.fail(Error::NotInteger),
                Some(s) => match slot_in_range(s) {
                    None => self.fail(Error::InvalidSlot),
                    Some(slot) => {
                        let n = self.keys_in_slot(slot, usize::MAX).len();
                        self.reply().integer(n as i64);
                    }
                },
            },
            Cmd::ClusterGetkeysinslot => {
                let (Some(s), Some(count)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
                    self.fail(Error::NotInteger);
                    return Flow::Continue;
                };
                match slot_in_range(s) {
                    Some(slot) if count >= 0 => {
                        let keys = self.keys_in_slot(slot, count as usize);
                        let mut e = self.reply();
                        e.array(keys.len());
                        for k in &keys {
                            e.bulk(k);
                        }
                    }
                    _ => self.fail(Error::InvalidSlotOrCount),
                }
            }
            Cmd::ClusterReload => match self.broker.cluster_reload() {
                Ok(()) => self.ok(),
                Err(e) => self.fail(Error::ClusterReload(e)),
            },
            Cmd::ClusterAddslots
            | Cmd::ClusterAddslotsrange
            | Cmd::ClusterBumpepoch
            | Cmd::ClusterDelslots
            | Cmd::ClusterDelslotsrange
            | Cmd::ClusterFailover
            | Cmd::ClusterFlushslots
            | Cmd::ClusterForget
            | Cmd::ClusterMeet
            | Cmd::ClusterReplicate
            | Cmd::ClusterReset
            | Cmd::ClusterSaveconfig
            | Cmd::ClusterSetConfigEpoch
            | Cmd::ClusterSetslot => {
                let name = crate::spec::of(cmd).short_name().to_ascii_uppercase();
                self.fail(Error::StaticTopology(name));
            }
            _ => self.fail(Error::ClusterDisabled),
        }
        Flow::Continue
    }

    /// Live keys of database 0 whose slot is `slot`, at most `count`. A scan: fanout's
    /// keyspace is small (streams), so it keeps no per-slot index.
    fn keys_in_slot(&mut self, slot: u16, count: usize) -> Vec<Bytes> {
        self.with_keys(|_, ks| {
            let now = now_ms();
            ks.keys(0)
                .filter(|s| Keyspace::is_live(s, now) && slot_of(&s.key) == slot)
                .take(count)
                .map(|s| s.key.clone())
                .collect()
        })
    }

    fn cluster_slots(&mut self, t: &Arc<Topology>) {
        let mut ranges: Vec<(u16, u16, usize)> = t
            .shards
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.ranges.iter().map(move |&(a, b)| (a, b, i)))
            .collect();
        ranges.sort_unstable();
        let cluster = &self.broker.cluster;
        let live: Vec<Vec<usize>> = t
            .shards
            .iter()
            .map(|s| {
                s.nodes[1..]
                    .iter()
                    .copied()
                    .filter(|&r| !cluster.failed(t, &t.nodes[r]))
                    .collect()
            })
            .collect();
        let mut e = self.reply();
        e.array(ranges.len());
        for (a, b, s) in ranges {
            e.array(3 + live[s].len());
            e.integer(a as i64);
            e.integer(b as i64);
            node_entry(&mut e, &t.nodes[t.shards[s].nodes[0]]);
            for &r in &live[s] {
                node_entry(&mut e, &t.nodes[r]);
            }
        }
    }

    fn cluster_shards(&mut self, t: &Arc<Topology>) {
        let broker = self.broker.clone();
        let cluster = &broker.cluster;
        let mut e = self.reply();
        e.array(t.shards.len());
        for s in &t.shards {
            e.map(2);
            e.bulk(b"slots");
            e.array(s.ranges.len() * 2);
            for &(a, b) in &s.ranges {
                e.integer(a as i64);
                e.integer(b as i64);
            }
            e.bulk(b"nodes");
            e.array(s.nodes.len());
            for &i in &s.nodes {
                let n = &t.nodes[i];
                e.map(7);
                e.bulk(b"id");
                e.bulk(n.id.as_bytes());
                e.bulk(b"port");
                e.integer(n.port as i64);
                e.bulk(b"ip");
                e.bulk(n.host.as_bytes());
                e.bulk(b"endpoint");
                e.bulk(n.host.as_bytes());
                e.bulk(b"role");
                e.bulk(if n.primary { b"master" as &[u8] } else { b"replica" });
                // Nodes replicate nothing: there is no offset to report.
                e.bulk(b"replication-offset");
                e.integer(0);
                e.bulk(b"health");
                e.bulk(if cluster.failed(t, n) {
                    b"fail" as &[u8]
                } else {
                    b"online"
                });
            }
        }
    }

    /// A CLUSTER NODES line, without its newline. There is no cluster bus port
    /// (`@0`); pong-recv is the last heartbeat heard on the NATS bus.
    fn node_line(&self, t: &Topology, n: &Node) -> String {
        let me = n.id == t.me().id;
        let failed = self.broker.cluster.failed(t, n);
        let mut flags = String::new();
        if me {
            flags.push_str("myself,");
        }
        flags.push_str(if n.primary { "master" } else { "slave" });
        if failed {
            flags.push_str(",fail");
        }
        let master = if n.primary {
            "-".to_string()
        } else {
            t.primary_for(n).id.clone()
        };
        let pong = match (me, self.broker.cluster.bus().and_then(|b| b.last_heard(&n.id))) {
            (false, Some(at)) => now_ms().saturating_sub(at.elapsed().as_millis() as u64),
            _ => 0,
        };
        let shard = &t.shards[n.shard];
        let link = if failed { "disconnected" } else { "connected" };
        let mut line = format!(
            "{} {}@0 {flags} {master} 0 {pong} {} {link}",
            n.id,
            n.addr(),
            shard.epoch
        );
        if n.primary {
            for &(a, b) in &shard.ranges {
                if a == b {
                    line.push_str(&format!(" {a}"));
                } else {
                    line.push_str(&format!(" {a}-{b}"));
                }
            }
        }
        line
    }

    fn nodes_text(&self, t: &Topology) -> String {
        t.nodes.iter().map(|n| self.node_line(t, n) + "\n").collect()
    }

    fn cluster_info(&self, t: &Topology) -> String {
        let cluster = &self.broker.cluster;
        let ok = cluster.slots_ok(t);
        let state = if cluster.ok() { "ok" } else { "fail" };
        let mut s = format!(
            "cluster_state:{state}\r\ncluster_slots_assigned:{SLOTS}\r\ncluster_slots_ok:{ok}\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:{}\r\ncluster_known_nodes:{}\r\ncluster_size:{}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\n",
            SLOTS - ok,
            t.nodes.len(),
            t.shards.len(),
            t.shards.len(),
            t.my_shard().epoch,
        );
        let (sent, received) = cluster.bus().map_or((0, 0), |b| {
            (
                b.stats.sent.load(std::sync::atomic::Ordering::Relaxed),
                b.stats.received.load(std::sync::atomic::Ordering::Relaxed),
            )
        });
        // Redis lists only the message types it has sent or received.
        if sent > 0 {
            s += &format!("cluster_stats_messages_publish_sent:{sent}\r\n");
        }
        s += &format!("cluster_stats_messages_sent:{sent}\r\n");
        if received > 0 {
            s += &format!("cluster_stats_messages_publish_received:{received}\r\n");
        }
        s += &format!("cluster_stats_messages_received:{received}\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n");
        s
    }
}

/// A node in CLUSTER SLOTS: host, port, id, and no further endpoint metadata.
fn node_entry(e: &mut Encoder<'_>, n: &Node) {
    e.array(4);
    e.bulk(n.host.as_bytes());
    e.integer(n.port as i64);
    e.bulk(n.id.as_bytes());
    e.map(0);
}

fn slot_in_range(s: i64) -> Option<u16> {
    (0..SLOTS as i64).contains(&s).then_some(s as u16)
}
