//! Pub/sub: PUBLISH, the subscribe commands, PUBSUB.

use super::*;

const SUB_FLAGS: Flags = f![PUBSUB, NOSCRIPT, LOADING, STALE, SUBSCRIBED_OK];
const SUBSCRIBING: Flags = f![PUBSUB, NOSCRIPT, LOADING, STALE, SUBSCRIBED_OK, SUBSCRIBES];
const PUBSUB_SLOW: &[&str] = &["@pubsub", "@slow"];

pub(super) static COMMANDS: &[Spec] = &[
    Spec { channels: Channels::First, ..spec!("publish", Publish, 3, f![PUBSUB, LOADING, STALE, FAST, MAY_REPLICATE], &["@pubsub", "@fast"], "pubsub", "2.0.0",
        "Post a message to a channel", "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).",
        &[a("channel", "string"), a("message", "string")]) },
    Spec { channels: Channels::First, keys: &[key_at(1, &["not_key"])], ..spec!("spublish", Spublish, 3, f![PUBSUB, LOADING, STALE, FAST, MAY_REPLICATE], &["@pubsub", "@fast"], "pubsub", "7.0.0",
        "Post a message to a shard channel", "O(N) where N is the number of clients subscribed to the receiving shard channel.",
        &[a("shardchannel", "string"), a("message", "string")]) },
    Spec { channels: Channels::All, ..spec!("subscribe", Subscribe, -2, SUBSCRIBING, PUBSUB_SLOW, "pubsub", "2.0.0",
        "Listen for messages published to the given channels", "O(N) where N is the number of channels to subscribe to.",
        &[many("channel", "string")]) },
    Spec { channels: Channels::AllPatterns, ..spec!("psubscribe", Psubscribe, -2, SUBSCRIBING, PUBSUB_SLOW, "pubsub", "2.0.0",
        "Listen for messages published to channels matching the given patterns", "O(N) where N is the number of patterns the client is already subscribed to.",
        &[many("pattern", "pattern")]) },
    Spec { channels: Channels::All, keys: &[keys_from(1, &["not_key"])], ..spec!("ssubscribe", Ssubscribe, -2, SUBSCRIBING, PUBSUB_SLOW, "pubsub", "7.0.0",
        "Listen for messages published to the given shard channels", "O(N) where N is the number of shard channels to subscribe to.",
        &[many("shardchannel", "string")]) },
    spec!("unsubscribe", Unsubscribe, -1, SUB_FLAGS, PUBSUB_SLOW, "pubsub", "2.0.0",
        "Stop listening for messages posted to the given channels", "O(N) where N is the number of clients already subscribed to a channel.",
        &[opt_many("channel", "string")]),
    spec!("punsubscribe", Punsubscribe, -1, SUB_FLAGS, PUBSUB_SLOW, "pubsub", "2.0.0",
        "Stop listening for messages posted to channels matching the given patterns", "O(N+M) where N is the number of patterns the client is already subscribed and M is the number of total patterns subscribed in the system (by any client).",
        &[opt_many("pattern", "pattern")]),
    Spec { keys: &[keys_from(1, &["not_key"])], ..spec!("sunsubscribe", Sunsubscribe, -1, SUB_FLAGS, PUBSUB_SLOW, "pubsub", "7.0.0",
        "Stop listening for messages posted to the given shard channels", "O(N) where N is the number of clients already subscribed to a shard channel.",
        &[opt_many("shardchannel", "string")]) },
    container!("pubsub", Pubsub, "pubsub", "2.8.0", "A container for Pub/Sub commands", &[
        spec!("pubsub|channels", PubsubChannels, -2, f![PUBSUB, LOADING, STALE], PUBSUB_SLOW, "pubsub", "2.8.0",
            "List active channels", "O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)",
            &[opt("pattern", "pattern")]),
        spec!("pubsub|numsub", PubsubNumsub, -2, f![PUBSUB, LOADING, STALE], PUBSUB_SLOW, "pubsub", "2.8.0",
            "Get the count of subscribers for channels", "O(N) for the NUMSUB subcommand, where N is the number of requested channels",
            &[opt_many("channel", "string")]),
        spec!("pubsub|numpat", PubsubNumpat, 2, f![PUBSUB, LOADING, STALE], PUBSUB_SLOW, "pubsub", "2.8.0",
            "Get the count of unique patterns pattern subscriptions", "O(1)", &[]),
        spec!("pubsub|shardchannels", PubsubShardchannels, -2, f![PUBSUB, LOADING, STALE], PUBSUB_SLOW, "pubsub", "7.0.0",
            "List active shard channels", "O(N) where N is the number of active shard channels, and assuming constant time pattern matching (relatively short shard channels).",
            &[opt("pattern", "pattern")]),
        spec!("pubsub|shardnumsub", PubsubShardnumsub, -2, f![PUBSUB, LOADING, STALE], PUBSUB_SLOW, "pubsub", "7.0.0",
            "Get the count of subscribers for shard channels", "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels",
            &[opt_many("shardchannel", "string")]),
        spec!("pubsub|help", PubsubHelp, 2, f![LOADING, STALE], &["@slow"], "pubsub", "6.2.0",
            "Show helpful text about the different subcommands", "O(1)", &[]),
    ]),
];
