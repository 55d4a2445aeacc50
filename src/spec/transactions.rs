//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.

use super::*;

const TX_FLAGS: Flags = f![NOSCRIPT, LOADING, STALE, FAST, ALLOW_BUSY];
const TX_FAST: &[&str] = &["@fast", "@transaction"];

pub(super) static COMMANDS: &[Spec] = &[
    spec!(
        "multi",
        Multi,
        1,
        Flags(TX_FLAGS.0 | Flags::NOT_QUEUED),
        TX_FAST,
        "transactions",
        "1.2.0",
        "Starts a transaction.",
        "O(1)",
        &[]
    ),
    spec!(
        "exec",
        Exec,
        1,
        f![NOSCRIPT, LOADING, STALE, SKIP_SLOWLOG, NOT_QUEUED],
        &["@slow", "@transaction"],
        "transactions",
        "1.2.0",
        "Executes all commands in a transaction.",
        "Depends on commands in the transaction",
        &[]
    ),
    spec!(
        "discard",
        Discard,
        1,
        Flags(TX_FLAGS.0 | Flags::NOT_QUEUED),
        TX_FAST,
        "transactions",
        "2.0.0",
        "Discards a transaction.",
        "O(N), when N is the number of queued commands",
        &[]
    ),
    Spec {
        keys: &[keys_from(1, &["RO"])],
        ..spec!(
            "watch",
            Watch,
            -2,
            Flags(TX_FLAGS.0 | Flags::NOT_QUEUED),
            TX_FAST,
            "transactions",
            "2.2.0",
            "Monitors changes to keys to determine the execution of a transaction.",
            "O(1) for every key.",
            &[many("key", "key")]
        )
    },
    spec!(
        "unwatch",
        Unwatch,
        1,
        TX_FLAGS,
        TX_FAST,
        "transactions",
        "2.2.0",
        "Forgets about watched keys of a transaction.",
        "O(1)",
        &[]
    ),
];
