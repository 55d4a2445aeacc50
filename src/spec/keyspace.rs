//! Generic key commands: DEL, EXISTS, TYPE, KEYS, SCAN, RENAME, COPY, the expiry commands,
//! OBJECT; and FLUSHDB, which Redis's table puts in the "server" group.

use super::*;

pub(super) static COMMANDS: &[Spec] = &[
    Spec {
        keys: &[keys_from(1, &["RM", "delete"])],
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        ..spec!("del", Del, -2, f![WRITE], &["@keyspace", "@write", "@slow"], "generic", "1.0.0",
            "Deletes one or more keys.",
            "O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).",
            &[many("key", "key")])
    },
    Spec {
        keys: &[keys_from(1, &["RM", "delete"])],
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        ..spec!("unlink", Unlink, -2, f![WRITE, FAST], &["@keyspace", "@write", "@fast"], "generic", "4.0.0",
            "Asynchronously deletes one or more keys.",
            "O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of.",
            &[many("key", "key")])
    },
    Spec {
        keys: &[keys_from(1, &["RO"])],
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        history: &[("3.0.3", "Accepts multiple `key` arguments.")],
        ..spec!("exists", Exists, -2, f![READONLY, FAST], &["@keyspace", "@read", "@fast"], "generic", "1.0.0",
            "Determines whether one or more keys exist.",
            "O(N) where N is the number of keys to check.",
            &[many("key", "key")])
    },
    Spec {
        keys: &[key_at(1, &["RO"])],
        ..spec!("type", Type, 2, f![READONLY, FAST], &["@keyspace", "@read", "@fast"], "generic", "1.0.0",
            "Determines the type of value stored at a key.",
            "O(1)",
            &[a("key", "key")])
    },
    Spec {
        tips: &["request_policy:all_shards", "nondeterministic_output_order"],
        ..spec!("keys", Keys, 2, f![READONLY], &["@keyspace", "@read", "@slow", "@dangerous"], "generic", "1.0.0",
            "Returns all key names that match a pattern.",
            "O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length.",
            &[a("pattern", "pattern")])
    },
    Spec {
        tips: &["nondeterministic_output", "request_policy:special", "response_policy:special"],
        history: &[("6.0.0", "Added the `TYPE` subcommand.")],
        ..spec!("scan", Scan, -2, f![READONLY, TOUCHES_ARBITRARY_KEYS], &["@keyspace", "@read", "@slow"], "generic", "2.8.0",
            "Iterates over the key names in the database.",
            "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
            &[
                a("cursor", "integer"),
                Arg { token: Some("MATCH"), ..opt("pattern", "pattern") },
                Arg { token: Some("COUNT"), ..opt("count", "integer") },
                Arg { token: Some("TYPE"), since: Some("6.0.0"), ..opt("type", "string") },
            ])
    },
    Spec {
        tips: &["request_policy:all_shards", "response_policy:special", "nondeterministic_output"],
        ..spec!("randomkey", Randomkey, 1, f![READONLY, TOUCHES_ARBITRARY_KEYS], &["@keyspace", "@read", "@slow"], "generic", "1.0.0",
            "Returns a random key name from the database.",
            "O(1)",
            &[])
    },
    Spec {
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        history: FLUSH_HISTORY,
        ..spec!("flushdb", Flushdb, -1, f![WRITE], &["@keyspace", "@write", "@slow", "@dangerous"], "server", "1.0.0",
            "Remove all keys from the current database.",
            "O(N) where N is the number of keys in the selected database",
            &[group("flush-type", "oneof", None, true, FLUSH_MODES)])
    },
    Spec {
        keys: &[key_at(1, &["RW", "access", "delete"]), key_at(2, &["OW", "update"])],
        ..spec!("rename", Rename, 3, f![WRITE], &["@keyspace", "@write", "@slow"], "generic", "1.0.0",
            "Renames a key and overwrites the destination.",
            "O(1)",
            &[a("key", "key"), Arg { key_spec: 1, ..a("newkey", "key") }])
    },
    Spec {
        keys: &[key_at(1, &["RW", "access", "delete"]), key_at(2, &["OW", "insert"])],
        history: &[
            ("3.2.0", "The command no longer returns an error when source and destination names are the same."),
        ],
        ..spec!("renamenx", Renamenx, 3, f![WRITE, FAST], &["@keyspace", "@write", "@fast"], "generic", "1.0.0",
            "Renames a key only when the target key name doesn't exist.",
            "O(1)",
            &[a("key", "key"), Arg { key_spec: 1, ..a("newkey", "key") }])
    },
    Spec {
        keys: &[key_at(1, &["RO", "access"]), key_at(2, &["OW", "update"])],
        ..spec!("copy", Copy, -3, f![WRITE, DENYOOM], &["@keyspace", "@write", "@slow"], "generic", "6.2.0",
            "Copies the value of a key to a new key.",
            "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.",
            &[
                a("source", "key"),
                Arg { key_spec: 1, ..a("destination", "key") },
                Arg { token: Some("DB"), ..opt("destination-db", "integer") },
                Arg { token: Some("REPLACE"), ..opt("replace", "pure-token") },
            ])
    },
    Spec {
        keys: &[keys_from(1, &["RO"])],
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        ..spec!("touch", Touch, -2, f![READONLY, FAST], &["@keyspace", "@read", "@fast"], "generic", "3.2.1",
            "Returns the number of existing keys out of those specified after updating the time they were last accessed.",
            "O(N) where N is the number of keys that will be touched.",
            &[many("key", "key")])
    },
    Spec {
        keys: &[key_at(1, &["RW", "update"])],
        history: &[("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`.")],
        ..spec!("expire", Expire, -3, f![WRITE, FAST], &["@keyspace", "@write", "@fast"], "generic", "1.0.0",
            "Sets the expiration time of a key in seconds.",
            "O(1)",
            &[
                a("key", "key"),
                a("seconds", "integer"),
                Arg { since: Some("7.0.0"), ..group("condition", "oneof", None, true, &[
                    token("nx", "NX"),
                    token("xx", "XX"),
                    token("gt", "GT"),
                    token("lt", "LT"),
                ]) },
            ])
    },
    Spec {
        keys: &[key_at(1, &["RW", "update"])],
        history: &[("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`.")],
        ..spec!("pexpire", Pexpire, -3, f![WRITE, FAST], &["@keyspace", "@write", "@fast"], "generic", "2.6.0",
            "Sets the expiration time of a key in milliseconds.",
            "O(1)",
            &[
                a("key", "key"),
                a("milliseconds", "integer"),
                Arg { since: Some("7.0.0"), ..group("condition", "oneof", None, true, &[
                    token("nx", "NX"),
                    token("xx", "XX"),
                    token("gt", "GT"),
                    token("lt", "LT"),
                ]) },
            ])
    },
    Spec {
        keys: &[key_at(1, &["RW", "update"])],
        history: &[("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`.")],
        ..spec!("expireat", Expireat, -3, f![WRITE, FAST], &["@keyspace", "@write", "@fast"], "generic", "1.2.0",
            "Sets the expiration time of a key to a Unix timestamp.",
            "O(1)",
            &[
                a("key", "key"),
                a("unix-time-seconds", "unix-time"),
                Arg { since: Some("7.0.0"), ..group("condition", "oneof", None, true, &[
                    token("nx", "NX"),
                    token("xx", "XX"),
                    token("gt", "GT"),
                    token("lt", "LT"),
                ]) },
            ])
    },
    Spec {
        keys: &[key_at(1, &["RW", "update"])],
        history: &[("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`.")],
        ..spec!("pexpireat", Pexpireat, -3, f![WRITE, FAST], &["@keyspace", "@write", "@fast"], "generic", "2.6.0",
            "Sets the expiration time of a key to a Unix milliseconds timestamp.",
            "O(1)",
            &[
                a("key", "key"),
                a("unix-time-milliseconds", "unix-time"),
                Arg { since: Some("7.0.0"), ..group("condition", "oneof", None, true, &[
                    token("nx", "NX"),
                    token("xx", "XX"),
                    token("gt", "GT"),
                    token("lt", "LT"),
                ]) },
            ])
    },
    Spec {
        keys: &[key_at(1, &["RO", "access"])],
        tips: &["nondeterministic_output"],
        history: &[("2.8.0", "Added the -2 reply.")],
        ..spec!("ttl", Ttl, 2, f![READONLY, FAST], &["@keyspace", "@read", "@fast"], "generic", "1.0.0",
            "Returns the expiration time in seconds of a key.",
            "O(1)",
            &[a("key", "key")])
    },
    Spec {
        keys: &[key_at(1, &["RO", "access"])],
        tips: &["nondeterministic_output"],
        history: &[("2.8.0", "Added the -2 reply.")],
        ..spec!("pttl", Pttl, 2, f![READONLY, FAST], &["@keyspace", "@read", "@fast"], "generic", "2.6.0",
            "Returns the expiration time in milliseconds of a key.",
            "O(1)",
            &[a("key", "key")])
    },
    Spec {
        keys: &[key_at(1, &["RO", "access"])],
        ..spec!("expiretime", Expiretime, 2, f![READONLY, FAST], &["@keyspace", "@read", "@fast"], "generic", "7.0.0",
            "Returns the expiration time of a key as a Unix timestamp.",
            "O(1)",
            &[a("key", "key")])
    },
    Spec {
        keys: &[key_at(1, &["RO", "access"])],
        ..spec!("pexpiretime", Pexpiretime, 2, f![READONLY, FAST], &["@keyspace", "@read", "@fast"], "generic", "7.0.0",
            "Returns the expiration time of a key as a Unix milliseconds timestamp.",
            "O(1)",
            &[a("key", "key")])
    },
    Spec {
        keys: &[key_at(1, &["RW", "update"])],
        ..spec!("persist", Persist, 2, f![WRITE, FAST], &["@keyspace", "@write", "@fast"], "generic", "2.2.0",
            "Removes the expiration time of a key.",
            "O(1)",
            &[a("key", "key")])
    },
    container!("object", Object, "generic", "2.2.3", "A container for object introspection commands.", &[
            Spec {
                keys: &[key_at(2, &["RO"])],
                tips: &["nondeterministic_output"],
                ..spec!("object|encoding", ObjectEncoding, 3, f![READONLY], &["@keyspace", "@read", "@slow"], "generic", "2.2.3",
                    "Returns the internal encoding of a Redis object.",
                    "O(1)",
                    &[a("key", "key")])
            },
            Spec {
                keys: &[key_at(2, &["RO"])],
                tips: &["nondeterministic_output"],
                ..spec!("object|idletime", ObjectIdletime, 3, f![READONLY], &["@keyspace", "@read", "@slow"], "generic", "2.2.3",
                    "Returns the time since the last access to a Redis object.",
                    "O(1)",
                    &[a("key", "key")])
            },
            Spec {
                keys: &[key_at(2, &["RO"])],
                tips: &["nondeterministic_output"],
                ..spec!("object|freq", ObjectFreq, 3, f![READONLY], &["@keyspace", "@read", "@slow"], "generic", "4.0.0",
                    "Returns the logarithmic access frequency counter of a Redis object.",
                    "O(1)",
                    &[a("key", "key")])
            },
            Spec {
                keys: &[key_at(2, &["RO"])],
                tips: &["nondeterministic_output"],
                ..spec!("object|refcount", ObjectRefcount, 3, f![READONLY], &["@keyspace", "@read", "@slow"], "generic", "2.2.3",
                    "Returns the reference count of a value of a key.",
                    "O(1)",
                    &[a("key", "key")])
            },
            spec!("object|help", ObjectHelp, 2, f![LOADING, STALE], &["@keyspace", "@slow"], "generic", "6.2.0",
                "Returns helpful text about the different subcommands.",
                "O(1)",
                &[]),
    ]),
];
