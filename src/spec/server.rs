//! Server commands: COMMAND, INFO, CONFIG, and the operator commands.

use super::*;

const CLIENT_ADMIN: Flags = f![ADMIN, NOSCRIPT, LOADING, STALE];
const CONFIG_ACL: &[&str] = &["@admin", "@slow", "@dangerous"];

pub(super) static COMMANDS: &[Spec] = &[
    // COMMAND alone lists every command, so unlike other containers its arity is -1.
    Spec {
        flags: f![LOADING, STALE],
        acl: &["@slow", "@connection"],
        tips: &["nondeterministic_output_order"],
        ..container!(
            "command",
            Command,
            -1,
            "server",
            "2.8.13",
            "Get array of Redis command details",
            &[
                spec!(
                    "command|count",
                    CommandCount,
                    2,
                    f![LOADING, STALE],
                    &["@slow", "@connection"],
                    "server",
                    "2.8.13",
                    "Get total number of Redis commands",
                    "O(1)",
                    &[]
                ),
                Spec {
                    tips: &["nondeterministic_output_order"],
                    ..spec!(
                        "command|docs",
                        CommandDocs,
                        -2,
                        f![LOADING, STALE],
                        &["@slow", "@connection"],
                        "server",
                        "7.0.0",
                        "Get array of specific Redis command documentation",
                        "O(N) where N is the number of commands to look up",
                        &[opt_many("command-name", "string")]
                    )
                },
                Spec {
                    tips: &["nondeterministic_output_order"],
                    ..spec!(
                        "command|info",
                        CommandInfo,
                        -2,
                        f![LOADING, STALE],
                        &["@slow", "@connection"],
                        "server",
                        "2.8.13",
                        "Get array of specific Redis command details, or all when no argument is given.",
                        "O(N) where N is the number of commands to look up",
                        &[opt_many("command-name", "string")]
                    )
                },
                Spec {
                    tips: &["nondeterministic_output_order"],
                    ..spec!(
                        "command|list",
                        CommandList,
                        -2,
                        f![LOADING, STALE],
                        &["@slow", "@connection"],
                        "server",
                        "7.0.0",
                        "Get an array of Redis command names",
                        "O(N) where N is the total number of Redis commands",
                        &[group(
                            "filterby",
                            "oneof",
                            Some("FILTERBY"),
                            true,
                            &[
                                Arg {
                                    token: Some("MODULE"),
                                    ..a("module-name", "string")
                                },
                                Arg {
                                    token: Some("ACLCAT"),
                                    ..a("category", "string")
                                },
                                Arg {
                                    token: Some("PATTERN"),
                                    ..a("pattern", "pattern")
                                }
                            ]
                        )]
                    )
                },
                spec!(
                    "command|getkeys",
                    CommandGetkeys,
                    -3,
                    f![LOADING, STALE],
                    &["@slow", "@connection"],
                    "server",
                    "2.8.13",
                    "Extract keys given a full Redis command",
                    "O(N) where N is the number of arguments to the command",
                    &[a("command", "string"), opt_many("arg", "string")]
                ),
                spec!(
                    "command|getkeysandflags",
                    CommandGetkeysandflags,
                    -3,
                    f![LOADING, STALE],
                    &["@slow", "@connection"],
                    "server",
                    "7.0.0",
                    "Extracts the key names and access flags for an arbitrary command.",
                    "O(N) where N is the number of arguments to the command",
                    &[a("command", "string"), opt_many("arg", "string")]
                ),
                spec!(
                    "command|help",
                    CommandHelp,
                    2,
                    f![LOADING, STALE],
                    &["@slow", "@connection"],
                    "server",
                    "5.0.0",
                    "Show helpful text about the different subcommands",
                    "O(1)",
                    &[]
                ),
            ]
        )
    },
    Spec {
        tips: &[
            "nondeterministic_output",
            "request_policy:all_shards",
            "response_policy:special",
        ],
        ..spec!(
            "info",
            Info,
            -1,
            f![LOADING, STALE, SENTINEL],
            &["@slow", "@dangerous"],
            "server",
            "1.0.0",
            "Get information and statistics about the server",
            "O(1)",
            &[opt_many("section", "string")]
        )
    },
    container!(
        "config",
        Config,
        "server",
        "2.0.0",
        "A container for server configuration commands",
        &[
            spec!(
                "config|get",
                ConfigGet,
                -3,
                CLIENT_ADMIN,
                CONFIG_ACL,
                "server",
                "2.0.0",
                "Get the values of configuration parameters",
                "O(N) when N is the number of configuration parameters provided",
                &[many("parameter", "string")]
            ),
            Spec {
                redact: Redact::ConfigSet,
                tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
                ..spec!(
                    "config|set",
                    ConfigSet,
                    -4,
                    CLIENT_ADMIN,
                    CONFIG_ACL,
                    "server",
                    "2.0.0",
                    "Set configuration parameters to the given values",
                    "O(N) when N is the number of configuration parameters provided",
                    &[Arg {
                        multiple: true,
                        ..group(
                            "data",
                            "block",
                            None,
                            false,
                            &[a("parameter", "string"), a("value", "string")]
                        )
                    }]
                )
            },
            Spec {
                tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
                ..spec!(
                    "config|resetstat",
                    ConfigResetstat,
                    2,
                    CLIENT_ADMIN,
                    CONFIG_ACL,
                    "server",
                    "2.0.0",
                    "Reset the stats returned by INFO",
                    "O(1)",
                    &[]
                )
            },
            spec!(
                "config|help",
                ConfigHelp,
                2,
                f![LOADING, STALE],
                &["@slow"],
                "server",
                "5.0.0",
                "Show helpful text about the different subcommands",
                "O(1)",
                &[]
            ),
        ]
    ),
    Spec {
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        history: FLUSH_HISTORY,
        ..spec!(
            "flushall",
            Flushall,
            -1,
            f![WRITE],
            &["@keyspace", "@write", "@slow", "@dangerous"],
            "server",
            "1.0.0",
            "Removes all keys from all databases.",
            "O(N) where N is the total number of keys in all databases",
            &[group("flush-type", "oneof", None, true, FLUSH_MODES)]
        )
    },
    container!(
        "function",
        Function,
        "scripting",
        "7.0.0",
        "A container for function commands",
        &[Spec {
            tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
            ..spec!(
                "function|flush",
                FunctionFlush,
                -2,
                f![NOSCRIPT, WRITE],
                &["@write", "@slow", "@scripting"],
                "scripting",
                "7.0.0",
                "Deleting all functions (fanout has none: a no-op)",
                "O(N) where N is the number of functions deleted",
                &[group("flush-type", "oneof", None, true, FLUSH_TYPE)]
            )
        },]
    ),
    spec!(
        "debug",
        Debug,
        -2,
        f![ADMIN, NOSCRIPT, LOADING, STALE],
        &["@admin", "@slow", "@dangerous"],
        "server",
        "1.0.0",
        "A container for debugging commands (fanout: LOADAOF, LOG; off unless enable-debug-command allows it, as in Redis)",
        "Depends on subcommand.",
        &[]
    ),
    spec!(
        "bgrewriteaof",
        Bgrewriteaof,
        1,
        f![ADMIN, NOSCRIPT, NO_ASYNC_LOADING],
        &["@admin", "@slow", "@dangerous"],
        "server",
        "1.0.0",
        "Asynchronously rewrite the append-only file",
        "O(1)",
        &[]
    ),
    Spec {
        history: &[("3.2.2", "Added the `SCHEDULE` option.")],
        ..spec!(
            "bgsave",
            Bgsave,
            -1,
            f![ADMIN, NOSCRIPT, NO_ASYNC_LOADING],
            &["@admin", "@slow", "@dangerous"],
            "server",
            "1.0.0",
            "Asynchronously save the dataset to disk (fanout has no RDB: an error, see README)",
            "O(1)",
            &[Arg {
                token: Some("SCHEDULE"),
                since: Some("3.2.2"),
                ..opt("schedule", "pure-token")
            }]
        )
    },
    spec!(
        "save",
        Save,
        1,
        f![ADMIN, NOSCRIPT, NO_ASYNC_LOADING, NO_MULTI],
        &["@admin", "@slow", "@dangerous"],
        "server",
        "1.0.0",
        "Synchronously save the dataset to disk (fanout has no RDB: an error, see README)",
        "O(N) where N is the total number of keys in all databases",
        &[]
    ),
    spec!(
        "monitor",
        Monitor,
        1,
        f![ADMIN, NOSCRIPT, LOADING, STALE],
        ADMIN_ACL,
        "server",
        "1.0.0",
        "Listens for all requests received by the server in real-time.",
        "",
        &[]
    ),
    spec!(
        "shutdown",
        Shutdown,
        -1,
        f![ADMIN, NOSCRIPT, LOADING, STALE, NO_MULTI, ALLOW_BUSY],
        ADMIN_ACL,
        "server",
        "1.0.0",
        "Synchronously saves the database(s) to disk and shuts down the Redis server.",
        "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)",
        &[
            group(
                "save-selector",
                "oneof",
                None,
                true,
                &[token("nosave", "NOSAVE"), token("save", "SAVE")]
            ),
            Arg {
                optional: true,
                ..token("now", "NOW")
            },
            Arg {
                optional: true,
                ..token("force", "FORCE")
            },
            Arg {
                optional: true,
                ..token("abort", "ABORT")
            }
        ]
    ),
    Spec {
        tips: &["nondeterministic_output"],
        ..spec!(
            "time",
            Time,
            1,
            f![LOADING, STALE, FAST],
            &["@fast"],
            "server",
            "2.6.0",
            "Returns the server time.",
            "O(1)",
            &[]
        )
    },
    Spec {
        tips: &["request_policy:all_shards", "response_policy:agg_sum"],
        ..spec!(
            "dbsize",
            Dbsize,
            1,
            f![READONLY, FAST],
            &["@keyspace", "@read", "@fast"],
            "server",
            "1.0.0",
            "Returns the number of keys in the database.",
            "O(1)",
            &[]
        )
    },
    Spec {
        tips: &["nondeterministic_output"],
        ..spec!(
            "lastsave",
            Lastsave,
            1,
            f![LOADING, STALE, FAST],
            &["@admin", "@fast", "@dangerous"],
            "server",
            "1.0.0",
            "Returns the Unix timestamp of the last successful save to disk.",
            "O(1)",
            &[]
        )
    },
    container!(
        "slowlog",
        Slowlog,
        "server",
        "2.2.12",
        "A container for slow log commands",
        &[
            Spec {
                tips: &["request_policy:all_nodes", "nondeterministic_output"],
                ..spec!(
                    "slowlog|get",
                    SlowlogGet,
                    -2,
                    f![ADMIN, LOADING, STALE],
                    ADMIN_ACL,
                    "server",
                    "2.2.12",
                    "Returns the slow log's entries.",
                    "O(N) where N is the number of entries returned",
                    &[opt("count", "integer")]
                )
            },
            Spec {
                tips: &[
                    "request_policy:all_nodes",
                    "response_policy:agg_sum",
                    "nondeterministic_output"
                ],
                ..spec!(
                    "slowlog|len",
                    SlowlogLen,
                    2,
                    f![ADMIN, LOADING, STALE],
                    ADMIN_ACL,
                    "server",
                    "2.2.12",
                    "Returns the number of entries in the slow log.",
                    "O(1)",
                    &[]
                )
            },
            Spec {
                tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
                ..spec!(
                    "slowlog|reset",
                    SlowlogReset,
                    2,
                    f![ADMIN, LOADING, STALE],
                    ADMIN_ACL,
                    "server",
                    "2.2.12",
                    "Clears all entries from the slow log.",
                    "O(N) where N is the number of entries in the slowlog",
                    &[]
                )
            },
            spec!(
                "slowlog|help",
                SlowlogHelp,
                2,
                f![LOADING, STALE],
                &["@slow"],
                "server",
                "6.2.0",
                "Show helpful text about the different subcommands",
                "O(1)",
                &[]
            ),
        ]
    ),
    container!(
        "latency",
        Latency,
        "server",
        "2.8.13",
        "A container for latency diagnostics commands",
        &[
            Spec {
                tips: &[
                    "nondeterministic_output",
                    "request_policy:all_nodes",
                    "response_policy:special"
                ],
                ..spec!(
                    "latency|latest",
                    LatencyLatest,
                    2,
                    f![ADMIN, NOSCRIPT, LOADING, STALE],
                    ADMIN_ACL,
                    "server",
                    "2.8.13",
                    "Returns the latest latency samples for all events.",
                    "O(1)",
                    &[]
                )
            },
            Spec {
                tips: &[
                    "nondeterministic_output",
                    "request_policy:all_nodes",
                    "response_policy:special"
                ],
                ..spec!(
                    "latency|history",
                    LatencyHistory,
                    3,
                    f![ADMIN, NOSCRIPT, LOADING, STALE],
                    ADMIN_ACL,
                    "server",
                    "2.8.13",
                    "Returns timestamp-latency samples for an event.",
                    "O(1)",
                    &[a("event", "string")]
                )
            },
            Spec {
                tips: &["request_policy:all_nodes", "response_policy:agg_sum"],
                ..spec!(
                    "latency|reset",
                    LatencyReset,
                    -2,
                    f![ADMIN, NOSCRIPT, LOADING, STALE],
                    ADMIN_ACL,
                    "server",
                    "2.8.13",
                    "Resets the latency data for one or more events.",
                    "O(1)",
                    &[opt_many("event", "string")]
                )
            },
            Spec {
                tips: &[
                    "nondeterministic_output",
                    "request_policy:all_nodes",
                    "response_policy:special"
                ],
                ..spec!(
                    "latency|doctor",
                    LatencyDoctor,
                    2,
                    f![ADMIN, NOSCRIPT, LOADING, STALE],
                    ADMIN_ACL,
                    "server",
                    "2.8.13",
                    "Returns a human-readable latency analysis report.",
                    "O(1)",
                    &[]
                )
            },
            Spec {
                tips: &[
                    "nondeterministic_output",
                    "request_policy:all_nodes",
                    "response_policy:special"
                ],
                ..spec!(
                    "latency|histogram",
                    LatencyHistogram,
                    -2,
                    f![ADMIN, NOSCRIPT, LOADING, STALE],
                    ADMIN_ACL,
                    "server",
                    "7.0.0",
                    "Returns the cumulative distribution of latencies of a subset or all commands.",
                    "O(N) where N is the number of commands with latency information being retrieved.",
                    &[opt_many("command", "string")]
                )
            },
            spec!(
                "latency|help",
                LatencyHelp,
                2,
                f![LOADING, STALE],
                &["@slow"],
                "server",
                "2.8.13",
                "Show helpful text about the different subcommands.",
                "O(1)",
                &[]
            ),
        ]
    ),
    container!(
        "memory",
        Memory,
        "server",
        "4.0.0",
        "A container for memory diagnostics commands",
        &[
            Spec {
                keys: &[key_at(2, &["RO"])],
                ..spec!(
                    "memory|usage",
                    MemoryUsage,
                    -3,
                    f![READONLY],
                    &["@read", "@slow"],
                    "server",
                    "4.0.0",
                    "Estimates the memory usage of a key.",
                    "O(N) where N is the number of samples.",
                    &[
                        a("key", "key"),
                        Arg {
                            token: Some("SAMPLES"),
                            ..opt("count", "integer")
                        }
                    ]
                )
            },
            Spec {
                tips: &[
                    "nondeterministic_output",
                    "request_policy:all_shards",
                    "response_policy:special"
                ],
                ..spec!(
                    "memory|stats",
                    MemoryStats,
                    2,
                    f![],
                    &["@slow"],
                    "server",
                    "4.0.0",
                    "Returns details about memory usage.",
                    "O(1)",
                    &[]
                )
            },
            Spec {
                tips: &[
                    "nondeterministic_output",
                    "request_policy:all_shards",
                    "response_policy:special"
                ],
                ..spec!(
                    "memory|doctor",
                    MemoryDoctor,
                    2,
                    f![],
                    &["@slow"],
                    "server",
                    "4.0.0",
                    "Outputs a memory problems report.",
                    "O(1)",
                    &[]
                )
            },
            Spec {
                tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
                ..spec!(
                    "memory|purge",
                    MemoryPurge,
                    2,
                    f![],
                    &["@slow"],
                    "server",
                    "4.0.0",
                    "Asks the allocator to release memory.",
                    "Depends on how much memory is allocated, could be slow",
                    &[]
                )
            },
            Spec {
                tips: &[
                    "nondeterministic_output",
                    "request_policy:all_shards",
                    "response_policy:special"
                ],
                ..spec!(
                    "memory|malloc-stats",
                    MemoryMallocStats,
                    2,
                    f![],
                    &["@slow"],
                    "server",
                    "4.0.0",
                    "Returns the allocator statistics.",
                    "Depends on how much memory is allocated, could be slow",
                    &[]
                )
            },
            spec!(
                "memory|help",
                MemoryHelp,
                2,
                f![LOADING, STALE],
                &["@slow"],
                "server",
                "4.0.0",
                "Show helpful text about the different subcommands",
                "O(1)",
                &[]
            ),
        ]
    ),
];
