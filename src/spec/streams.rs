//! Streams: XADD, XRANGE, XREAD, the consumer-group commands, XGROUP, XINFO.

use super::*;

pub(super) static COMMANDS: &[Spec] = &[
    Spec {
        keys: &[
            KeySpec {
                flags: &["RW", "update"],
                begin: Begin::Index(1),
                find: Find::Range { lastkey: 0, step: 1, limit: 0 },
                notes: Some("UPDATE instead of INSERT because of the optional trimming feature"),
            },
        ],
        tips: &["nondeterministic_output"],
        history: &[
            ("6.2.0", "Added the `NOMKSTREAM` option, `MINID` trimming strategy and the `LIMIT` option."),
            ("7.0.0", "Added support for the `<ms>-*` explicit ID form."),
        ],
        ..spec!("xadd", Xadd, -5, f![WRITE, DENYOOM, FAST], &["@write", "@stream", "@fast"], "stream", "5.0.0",
            "Appends a new message to a stream. Creates the key if it doesn't exist.",
            "O(1) when adding a new entry, O(N) when trimming where N being the number of entries evicted.",
            &[
                a("key", "key"),
                Arg { token: Some("NOMKSTREAM"), since: Some("6.2.0"), ..opt("nomkstream", "pure-token") },
                group("trim", "block", None, true, &[
                    group("strategy", "oneof", None, false, &[
                        token("maxlen", "MAXLEN"),
                        Arg { since: Some("6.2.0"), ..token("minid", "MINID") },
                    ]),
                    group("operator", "oneof", None, true, &[token("equal", "="), token("approximately", "~")]),
                    a("threshold", "string"),
                    Arg { token: Some("LIMIT"), since: Some("6.2.0"), ..opt("count", "integer") },
                ]),
                group("id-selector", "oneof", None, false, &[token("auto-id", "*"), a("id", "string")]),
                Arg { multiple: true, ..group("data", "block", None, false, &[
                    a("field", "string"),
                    a("value", "string"),
                ]) },
            ])
    },
    Spec {
        keys: &[key_at(1, &["RO", "access"])],
        history: &[("6.2.0", "Added exclusive ranges.")],
        ..spec!("xrange", Xrange, -4, f![READONLY], &["@read", "@stream", "@slow"], "stream", "5.0.0",
            "Returns the messages from a stream within a range of IDs.",
            "O(N) with N being the number of elements being returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).",
            &[
                a("key", "key"),
                a("start", "string"),
                a("end", "string"),
                Arg { token: Some("COUNT"), ..opt("count", "integer") },
            ])
    },
    Spec {
        keys: &[key_at(1, &["RO", "access"])],
        history: &[("6.2.0", "Added exclusive ranges.")],
        ..spec!("xrevrange", Xrevrange, -4, f![READONLY], &["@read", "@stream", "@slow"], "stream", "5.0.0",
            "Returns the messages from a stream within a range of IDs in reverse order.",
            "O(N) with N being the number of elements returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).",
            &[
                a("key", "key"),
                a("end", "string"),
                a("start", "string"),
                Arg { token: Some("COUNT"), ..opt("count", "integer") },
            ])
    },
    Spec {
        keys: &[key_at(1, &["RO"])],
        ..spec!("xlen", Xlen, 2, f![READONLY, FAST], &["@read", "@stream", "@fast"], "stream", "5.0.0",
            "Return the number of messages in a stream.",
            "O(1)",
            &[a("key", "key")])
    },
    Spec {
        keys: &[key_at(1, &["RW", "delete"])],
        ..spec!("xdel", Xdel, -3, f![WRITE, FAST], &["@write", "@stream", "@fast"], "stream", "5.0.0",
            "Returns the number of messages after removing them from a stream.",
            "O(1) for each single item to delete in the stream, regardless of the stream size.",
            &[a("key", "key"), many("id", "string")])
    },
    Spec {
        keys: &[key_at(1, &["RW", "delete"])],
        tips: &["nondeterministic_output"],
        history: &[("6.2.0", "Added the `MINID` trimming strategy and the `LIMIT` option.")],
        ..spec!("xtrim", Xtrim, -4, f![WRITE], &["@write", "@stream", "@slow"], "stream", "5.0.0",
            "Deletes messages from the beginning of a stream.",
            "O(N), with N being the number of evicted entries. Constant times are very small however, since entries are organized in macro nodes containing multiple entries that can be released with a single deallocation.",
            &[
                a("key", "key"),
                group("trim", "block", None, false, &[
                    group("strategy", "oneof", None, false, &[
                        token("maxlen", "MAXLEN"),
                        Arg { since: Some("6.2.0"), ..token("minid", "MINID") },
                    ]),
                    group("operator", "oneof", None, true, &[token("equal", "="), token("approximately", "~")]),
                    a("threshold", "string"),
                    Arg { token: Some("LIMIT"), since: Some("6.2.0"), ..opt("count", "integer") },
                ]),
            ])
    },
    Spec {
        keys: &[
            KeySpec {
                flags: &["RO", "access"],
                begin: Begin::Keyword { keyword: "STREAMS", startfrom: 1 },
                find: Find::Range { lastkey: -1, step: 1, limit: 2 },
                notes: None,
            },
        ],
        ..spec!("xread", Xread, -4, f![READONLY, BLOCKING], &["@read", "@stream", "@slow", "@blocking"], "stream", "5.0.0",
            "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.",
            "",
            &[
                Arg { token: Some("COUNT"), ..opt("count", "integer") },
                Arg { token: Some("BLOCK"), ..opt("milliseconds", "integer") },
                group("streams", "block", Some("STREAMS"), false, &[many("key", "key"), many("id", "string")]),
            ])
    },
    Spec {
        keys: &[
            KeySpec {
                flags: &["RO", "access"],
                begin: Begin::Keyword { keyword: "STREAMS", startfrom: 4 },
                find: Find::Range { lastkey: -1, step: 1, limit: 2 },
                notes: None,
            },
        ],
        ..spec!("xreadgroup", Xreadgroup, -7, f![WRITE, BLOCKING], &["@write", "@stream", "@slow", "@blocking"], "stream", "5.0.0",
            "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.",
            "For each stream mentioned: O(M) with M being the number of elements returned. If M is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1). On the other side when XREADGROUP blocks, XADD will pay the O(N) time in order to serve the N clients blocked on the stream getting new data.",
            &[
                group("group-block", "block", Some("GROUP"), false, &[a("group", "string"), a("consumer", "string")]),
                Arg { token: Some("COUNT"), ..opt("count", "integer") },
                Arg { token: Some("BLOCK"), ..opt("milliseconds", "integer") },
                Arg { token: Some("NOACK"), ..opt("noack", "pure-token") },
                group("streams", "block", Some("STREAMS"), false, &[many("key", "key"), many("id", "string")]),
            ])
    },
    Spec {
        keys: &[key_at(1, &["RW", "update"])],
        ..spec!("xack", Xack, -4, f![WRITE, FAST], &["@write", "@stream", "@fast"], "stream", "5.0.0",
            "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.",
            "O(1) for each message ID processed.",
            &[a("key", "key"), a("group", "string"), many("id", "string")])
    },
    Spec {
        keys: &[key_at(1, &["RO", "access"])],
        tips: &["nondeterministic_output"],
        history: &[("6.2.0", "Added the `IDLE` option and exclusive range intervals.")],
        ..spec!("xpending", Xpending, -3, f![READONLY], &["@read", "@stream", "@slow"], "stream", "5.0.0",
            "Returns the information and entries from a stream consumer group's pending entries list.",
            "O(N) with N being the number of elements returned, so asking for a small fixed number of entries per call is O(1). O(M), where M is the total number of entries scanned when used with the IDLE filter. When the command returns just the summary and the list of consumers is small, it runs in O(1) time; otherwise, an additional O(N) time for iterating every consumer.",
            &[
                a("key", "key"),
                a("group", "string"),
                group("filters", "block", None, true, &[
                    Arg { token: Some("IDLE"), since: Some("6.2.0"), ..opt("min-idle-time", "integer") },
                    a("start", "string"),
                    a("end", "string"),
                    a("count", "integer"),
                    opt("consumer", "string"),
                ]),
            ])
    },
    Spec {
        keys: &[key_at(1, &["RW", "update"])],
        tips: &["nondeterministic_output"],
        ..spec!("xclaim", Xclaim, -6, f![WRITE, FAST], &["@write", "@stream", "@fast"], "stream", "5.0.0",
            "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.",
            "O(log N) with N being the number of messages in the PEL of the consumer group.",
            &[
                a("key", "key"),
                a("group", "string"),
                a("consumer", "string"),
                a("min-idle-time", "string"),
                many("id", "string"),
                Arg { token: Some("IDLE"), ..opt("ms", "integer") },
                Arg { token: Some("TIME"), ..opt("unix-time-milliseconds", "unix-time") },
                Arg { token: Some("RETRYCOUNT"), ..opt("count", "integer") },
                Arg { token: Some("FORCE"), ..opt("force", "pure-token") },
                Arg { token: Some("JUSTID"), ..opt("justid", "pure-token") },
                Arg { token: Some("LASTID"), ..opt("lastid", "string") },
            ])
    },
    Spec {
        keys: &[key_at(1, &["RW", "delete"])],
        tips: &["nondeterministic_output"],
        history: &[
            ("7.0.0", "Added an element to the reply array, containing deleted entries the command cleared from the PEL"),
        ],
        ..spec!("xautoclaim", Xautoclaim, -6, f![WRITE, FAST], &["@write", "@stream", "@fast"], "stream", "6.2.0",
            "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.",
            "O(1) if COUNT is small.",
            &[
                a("key", "key"),
                a("group", "string"),
                a("consumer", "string"),
                a("min-idle-time", "string"),
                a("start", "string"),
                Arg { token: Some("COUNT"), ..opt("count", "integer") },
                Arg { token: Some("JUSTID"), ..opt("justid", "pure-token") },
            ])
    },
    Spec {
        keys: &[key_at(1, &["RW", "update"])],
        history: &[("7.0.0", "Added the `entries_added` and `max_deleted_entry_id` arguments.")],
        ..spec!("xsetid", Xsetid, -3, f![WRITE, DENYOOM, FAST], &["@write", "@stream", "@fast"], "stream", "5.0.0",
            "An internal command for replicating stream values.",
            "O(1)",
            &[
                a("key", "key"),
                a("last-id", "string"),
                Arg { token: Some("ENTRIESADDED"), since: Some("7.0.0"), ..opt("entries-added", "integer") },
                Arg { token: Some("MAXDELETEDID"), since: Some("7.0.0"), ..opt("max-deleted-id", "string") },
            ])
    },
    container!("xgroup", Xgroup, "stream", "5.0.0", "A container for consumer groups commands.", &[
            Spec {
                keys: &[key_at(2, &["RW", "insert"])],
                history: &[("7.0.0", "Added the `entries_read` named argument.")],
                ..spec!("xgroup|create", XgroupCreate, -5, f![WRITE, DENYOOM], &["@write", "@stream", "@slow"], "stream", "5.0.0",
                    "Creates a consumer group.",
                    "O(1)",
                    &[
                        a("key", "key"),
                        a("group", "string"),
                        group("id-selector", "oneof", None, false, &[a("id", "string"), token("new-id", "$")]),
                        Arg { token: Some("MKSTREAM"), ..opt("mkstream", "pure-token") },
                        Arg { token: Some("ENTRIESREAD"), ..opt("entries-read", "integer") },
                    ])
            },
            Spec {
                keys: &[key_at(2, &["RW", "insert"])],
                ..spec!("xgroup|createconsumer", XgroupCreateconsumer, 5, f![WRITE, DENYOOM], &["@write", "@stream", "@slow"], "stream", "6.2.0",
                    "Creates a consumer in a consumer group.",
                    "O(1)",
                    &[a("key", "key"), a("group", "string"), a("consumer", "string")])
            },
            Spec {
                keys: &[key_at(2, &["RW", "delete"])],
                ..spec!("xgroup|delconsumer", XgroupDelconsumer, 5, f![WRITE], &["@write", "@stream", "@slow"], "stream", "5.0.0",
                    "Deletes a consumer from a consumer group.",
                    "O(1)",
                    &[a("key", "key"), a("group", "string"), a("consumer", "string")])
            },
            Spec {
                keys: &[key_at(2, &["RW", "delete"])],
                ..spec!("xgroup|destroy", XgroupDestroy, 4, f![WRITE], &["@write", "@stream", "@slow"], "stream", "5.0.0",
                    "Destroys a consumer group.",
                    "O(N) where N is the number of entries in the group's pending entries list (PEL).",
                    &[a("key", "key"), a("group", "string")])
            },
            Spec {
                keys: &[key_at(2, &["RW", "update"])],
                history: &[("7.0.0", "Added the optional `entries_read` argument.")],
                ..spec!("xgroup|setid", XgroupSetid, -5, f![WRITE], &["@write", "@stream", "@slow"], "stream", "5.0.0",
                    "Sets the last-delivered ID of a consumer group.",
                    "O(1)",
                    &[
                        a("key", "key"),
                        a("group", "string"),
                        group("id-selector", "oneof", None, false, &[a("id", "string"), token("new-id", "$")]),
                        Arg {
                            token: Some("ENTRIESREAD"),
                            display: Some("entries-read"),
                            ..opt("entriesread", "integer")
                        },
                    ])
            },
            spec!("xgroup|help", XgroupHelp, 2, f![LOADING, STALE], &["@stream", "@slow"], "stream", "5.0.0",
                "Returns helpful text about the different subcommands.",
                "O(1)",
                &[]),
    ]),
    container!("xinfo", Xinfo, "stream", "5.0.0", "A container for stream introspection commands.", &[
            Spec {
                keys: &[key_at(2, &["RO", "access"])],
                history: &[
                    ("6.0.0", "Added the `FULL` modifier."),
                    ("7.0.0", "Added the `max-deleted-entry-id`, `entries-added`, `recorded-first-entry-id`, `entries-read` and `lag` fields"),
                    ("7.2.0", "Added the `active-time` field, and changed the meaning of `seen-time`."),
                ],
                ..spec!("xinfo|stream", XinfoStream, -3, f![READONLY], &["@read", "@stream", "@slow"], "stream", "5.0.0",
                    "Returns information about a stream.",
                    "O(1)",
                    &[
                        a("key", "key"),
                        group("full-block", "block", None, true, &[
                            token("full", "FULL"),
                            Arg { token: Some("COUNT"), ..opt("count", "integer") },
                        ]),
                    ])
            },
            Spec {
                keys: &[key_at(2, &["RO", "access"])],
                history: &[("7.0.0", "Added the `entries-read` and `lag` fields")],
                ..spec!("xinfo|groups", XinfoGroups, 3, f![READONLY], &["@read", "@stream", "@slow"], "stream", "5.0.0",
                    "Returns a list of the consumer groups of a stream.",
                    "O(1)",
                    &[a("key", "key")])
            },
            Spec {
                keys: &[key_at(2, &["RO", "access"])],
                tips: &["nondeterministic_output"],
                history: &[("7.2.0", "Added the `inactive` field.")],
                ..spec!("xinfo|consumers", XinfoConsumers, 4, f![READONLY], &["@read", "@stream", "@slow"], "stream", "5.0.0",
                    "Returns a list of the consumers in a consumer group.",
                    "O(1)",
                    &[a("key", "key"), a("group", "string")])
            },
            spec!("xinfo|help", XinfoHelp, 2, f![LOADING, STALE], &["@stream", "@slow"], "stream", "5.0.0",
                "Returns helpful text about the different subcommands.",
                "O(1)",
                &[]),
    ]),
];
