//! Connection commands: PING, HELLO, AUTH, SELECT, CLIENT.

use super::*;

const CONN_FAST: &[&str] = &["@fast", "@connection"];
const CLIENT_FLAGS: Flags = f![NOSCRIPT, LOADING, STALE];
const CLIENT_ADMIN: Flags = f![ADMIN, NOSCRIPT, LOADING, STALE];
const SLOW_CONN: &[&str] = &["@slow", "@connection"];
const ADMIN_CONN: &[&str] = &["@admin", "@slow", "@dangerous", "@connection"];

pub(super) static COMMANDS: &[Spec] = &[
    Spec {
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        ..spec!(
            "ping",
            Ping,
            -1,
            f![FAST, SENTINEL, SUBSCRIBED_OK],
            CONN_FAST,
            "connection",
            "1.0.0",
            "Ping the server",
            "O(1)",
            &[opt("message", "string")]
        )
    },
    spec!(
        "echo",
        Echo,
        2,
        f![LOADING, STALE, FAST],
        CONN_FAST,
        "connection",
        "1.0.0",
        "Echo the given string",
        "O(1)",
        &[a("message", "string")]
    ),
    spec!(
        "quit",
        Quit,
        -1,
        f![
            ALLOW_BUSY,
            NOSCRIPT,
            LOADING,
            STALE,
            FAST,
            NO_AUTH,
            SUBSCRIBED_OK,
            NOT_QUEUED
        ],
        CONN_FAST,
        "connection",
        "1.0.0",
        "Close the connection",
        "O(1)",
        &[]
    ),
    spec!(
        "reset",
        Reset,
        1,
        f![
            NOSCRIPT,
            LOADING,
            STALE,
            FAST,
            NO_AUTH,
            ALLOW_BUSY,
            SUBSCRIBED_OK,
            NOT_QUEUED
        ],
        CONN_FAST,
        "connection",
        "6.2.0",
        "Reset the connection",
        "O(1)",
        &[]
    ),
    Spec {
        redact: Redact::HelloAuth,
        ..spec!(
            "hello",
            Hello,
            -1,
            f![NOSCRIPT, LOADING, STALE, FAST, NO_AUTH, SENTINEL, ALLOW_BUSY],
            CONN_FAST,
            "connection",
            "6.0.0",
            "Handshake with Redis",
            "O(1)",
            &[
                opt("protover", "integer"),
                group(
                    "username_password",
                    "block",
                    Some("AUTH"),
                    true,
                    &[a("username", "string"), a("password", "string")]
                ),
                Arg {
                    token: Some("SETNAME"),
                    ..opt("clientname", "string")
                }
            ]
        )
    },
    Spec {
        redact: Redact::Auth,
        ..spec!(
            "auth",
            Auth,
            -2,
            f![NOSCRIPT, LOADING, STALE, FAST, NO_AUTH, SENTINEL, ALLOW_BUSY],
            CONN_FAST,
            "connection",
            "1.0.0",
            "Authenticate to the server",
            "O(N) where N is the number of passwords defined for the user",
            &[opt("username", "string"), a("password", "string")]
        )
    },
    spec!(
        "select",
        Select,
        2,
        f![LOADING, STALE, FAST],
        CONN_FAST,
        "connection",
        "1.0.0",
        "Change the selected database for the current connection",
        "O(1)",
        &[a("index", "integer")]
    ),
    container!(
        "client",
        Client,
        "connection",
        "2.4.0",
        "A container for client connection commands",
        &[
            spec!(
                "client|id",
                ClientId,
                2,
                CLIENT_FLAGS,
                SLOW_CONN,
                "connection",
                "5.0.0",
                "Returns the client ID for the current connection",
                "O(1)",
                &[]
            ),
            Spec {
                tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
                ..spec!(
                    "client|setname",
                    ClientSetname,
                    3,
                    CLIENT_FLAGS,
                    SLOW_CONN,
                    "connection",
                    "2.6.9",
                    "Set the current connection name",
                    "O(1)",
                    &[a("connection-name", "string")]
                )
            },
            spec!(
                "client|getname",
                ClientGetname,
                2,
                CLIENT_FLAGS,
                SLOW_CONN,
                "connection",
                "2.6.9",
                "Get the current connection name",
                "O(1)",
                &[]
            ),
            Spec {
                tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
                ..spec!(
                    "client|setinfo",
                    ClientSetinfo,
                    4,
                    CLIENT_FLAGS,
                    SLOW_CONN,
                    "connection",
                    "7.2.0",
                    "Set client or connection specific info",
                    "O(1)",
                    &[group(
                        "attr",
                        "oneof",
                        None,
                        false,
                        &[
                            Arg {
                                token: Some("LIB-NAME"),
                                ..a("libname", "string")
                            },
                            Arg {
                                token: Some("LIB-VER"),
                                ..a("libver", "string")
                            }
                        ]
                    ),]
                )
            },
            Spec {
                tips: &["nondeterministic_output"],
                ..spec!(
                    "client|info",
                    ClientInfo,
                    2,
                    CLIENT_FLAGS,
                    SLOW_CONN,
                    "connection",
                    "6.2.0",
                    "Returns information about the current client connection.",
                    "O(1)",
                    &[]
                )
            },
            Spec {
                tips: &["nondeterministic_output"],
                ..spec!(
                    "client|list",
                    ClientList,
                    -2,
                    CLIENT_ADMIN,
                    ADMIN_CONN,
                    "connection",
                    "2.4.0",
                    "Get the list of client connections",
                    "O(N) where N is the number of client connections",
                    &[
                        group(
                            "client-type",
                            "oneof",
                            Some("TYPE"),
                            true,
                            &[
                                token("normal", "NORMAL"),
                                token("master", "MASTER"),
                                token("replica", "REPLICA"),
                                token("pubsub", "PUBSUB")
                            ]
                        ),
                        Arg {
                            token: Some("ID"),
                            ..opt_many("client-id", "integer")
                        }
                    ]
                )
            },
            spec!(
                "client|kill",
                ClientKill,
                -3,
                CLIENT_ADMIN,
                ADMIN_CONN,
                "connection",
                "2.4.0",
                "Kill the connection of a client",
                "O(N) where N is the number of client connections",
                &[group(
                    "filter",
                    "oneof",
                    None,
                    false,
                    &[
                        Arg {
                            token: Some("ID"),
                            ..opt("client-id", "integer")
                        },
                        Arg {
                            token: Some("TYPE"),
                            ..opt("client-type", "string")
                        },
                        Arg {
                            token: Some("USER"),
                            ..opt("username", "string")
                        },
                        Arg {
                            token: Some("ADDR"),
                            ..opt("ip:port", "string")
                        },
                        Arg {
                            token: Some("LADDR"),
                            ..opt("ip:port", "string")
                        },
                        Arg {
                            token: Some("SKIPME"),
                            ..opt("yes/no", "string")
                        }
                    ]
                )]
            ),
            spec!(
                "client|reply",
                ClientReply,
                3,
                CLIENT_FLAGS,
                SLOW_CONN,
                "connection",
                "3.2.0",
                "Instruct the server whether to reply to commands",
                "O(1)",
                &[group(
                    "action",
                    "oneof",
                    None,
                    false,
                    &[token("on", "ON"), token("off", "OFF"), token("skip", "SKIP")]
                )]
            ),
            spec!(
                "client|no-evict",
                ClientNoEvict,
                3,
                CLIENT_ADMIN,
                ADMIN_CONN,
                "connection",
                "7.0.0",
                "Set client eviction mode for the current connection",
                "O(1)",
                &[group("enabled", "oneof", None, false, ON_OFF)]
            ),
            spec!(
                "client|no-touch",
                ClientNoTouch,
                3,
                CLIENT_FLAGS,
                SLOW_CONN,
                "connection",
                "7.2.0",
                "Controls whether commands sent by the client will alter the LRU/LFU of the keys they access.",
                "O(1)",
                &[group("enabled", "oneof", None, false, ON_OFF)]
            ),
            spec!(
                "client|overflow",
                ClientOverflow,
                -2,
                CLIENT_FLAGS,
                SLOW_CONN,
                "connection",
                "fanout 0.1.0",
                "Get or set this connection's pubsub overflow policy (default|disconnect|drop-newest|drop-oldest)",
                "O(1)",
                &[group(
                    "policy",
                    "oneof",
                    None,
                    true,
                    &[
                        token("default", "DEFAULT"),
                        token("disconnect", "DISCONNECT"),
                        token("drop-newest", "DROP-NEWEST"),
                        token("drop-oldest", "DROP-OLDEST")
                    ]
                )]
            ),
            spec!(
                "client|pause",
                ClientPause,
                -3,
                CLIENT_ADMIN,
                ADMIN_CONN,
                "connection",
                "3.0.0",
                "Suspends commands processing.",
                "O(1)",
                &[
                    a("timeout", "integer"),
                    group(
                        "mode",
                        "oneof",
                        None,
                        true,
                        &[token("write", "WRITE"), token("all", "ALL")]
                    )
                ]
            ),
            spec!(
                "client|unpause",
                ClientUnpause,
                2,
                CLIENT_ADMIN,
                ADMIN_CONN,
                "connection",
                "6.2.0",
                "Resumes processing of clients that were paused.",
                "O(N) Where N is the number of paused clients",
                &[]
            ),
            spec!(
                "client|trackinginfo",
                ClientTrackinginfo,
                2,
                CLIENT_FLAGS,
                SLOW_CONN,
                "connection",
                "6.2.0",
                "Returns information about server-assisted client-side caching for the connection.",
                "O(1)",
                &[]
            ),
            spec!(
                "client|getredir",
                ClientGetredir,
                2,
                CLIENT_FLAGS,
                SLOW_CONN,
                "connection",
                "6.0.0",
                "Returns the client ID to which the connection's tracking notifications are redirected.",
                "O(1)",
                &[]
            ),
            spec!(
                "client|unblock",
                ClientUnblock,
                -3,
                f![ADMIN, NOSCRIPT, LOADING, STALE],
                &["@admin", "@slow", "@dangerous", "@connection"],
                "connection",
                "5.0.0",
                "Unblocks a client blocked by a blocking command from a different connection.",
                "O(log N) where N is the number of client connections",
                &[
                    a("client-id", "integer"),
                    group(
                        "unblock-type",
                        "oneof",
                        None,
                        true,
                        &[token("timeout", "TIMEOUT"), token("error", "ERROR")]
                    )
                ]
            ),
            spec!(
                "client|help",
                ClientHelp,
                2,
                f![LOADING, STALE],
                SLOW_CONN,
                "connection",
                "5.0.0",
                "Show helpful text about the different subcommands",
                "O(1)",
                &[]
            ),
        ]
    ),
];
