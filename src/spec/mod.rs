//! The command table: names, arities, flags and documentation, as Redis 7's command
//! table has them. Dispatch, the arity check, COMMAND INFO/DOCS/LIST/COUNT and the
//! RESP2 subscribed-context rule all read this one table.

/// One command or subcommand.
pub struct Spec {
    /// Lower-case full name: `publish`, `pubsub|numpat`.
    pub name: &'static str,
    /// Redis arity: counts the command name (and subcommand); negative means "at least".
    pub arity: i32,
    pub flags: &'static [&'static str],
    pub acl: &'static [&'static str],
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub complexity: &'static str,
    /// Arguments as (name, type, flags) for COMMAND DOCS; flags are `optional`,
    /// `multiple` or both.
    pub args: &'static [Arg],
    pub subcommands: &'static [Spec],
}

pub struct Arg {
    pub name: &'static str,
    pub kind: &'static str,
    pub token: Option<&'static str>,
    pub optional: bool,
    pub multiple: bool,
    /// For `oneof` and `block` arguments: what they are made of. redis-cli walks these
    /// to build its hints and crashes on a `oneof` or `block` without them.
    pub subargs: &'static [Arg],
}

impl Spec {
    pub fn is_pubsub_context_allowed(&self) -> bool {
        matches!(
            self.name,
            "subscribe"
                | "psubscribe"
                | "ssubscribe"
                | "unsubscribe"
                | "punsubscribe"
                | "sunsubscribe"
                | "ping"
                | "quit"
                | "reset"
        )
    }

    pub fn no_auth(&self) -> bool {
        self.flags.contains(&"no_auth")
    }

    /// The name as COMMAND shows it for a subcommand (`numpat`) or command (`publish`).
    pub fn short_name(&self) -> &'static str {
        self.name.rsplit('|').next().unwrap_or(self.name)
    }

    pub fn sub(&self, name: &[u8]) -> Option<&'static Spec>
    where
        Self: 'static,
    {
        self.subcommands
            .iter()
            .find(|s| s.short_name().as_bytes().eq_ignore_ascii_case(name))
    }
}

const fn arg(name: &'static str, kind: &'static str, optional: bool, multiple: bool) -> Arg {
    Arg {
        name,
        kind,
        token: None,
        optional,
        multiple,
        subargs: &[],
    }
}
const fn a(name: &'static str, kind: &'static str) -> Arg {
    arg(name, kind, false, false)
}
const fn many(name: &'static str, kind: &'static str) -> Arg {
    arg(name, kind, false, true)
}
const fn opt(name: &'static str, kind: &'static str) -> Arg {
    arg(name, kind, true, false)
}
const fn opt_many(name: &'static str, kind: &'static str) -> Arg {
    arg(name, kind, true, true)
}
/// A literal keyword such as `ON` inside a `oneof`.
const fn token(name: &'static str, token: &'static str) -> Arg {
    Arg {
        name,
        kind: "pure-token",
        token: Some(token),
        optional: false,
        multiple: false,
        subargs: &[],
    }
}
/// A `oneof` or `block` argument made of `subargs`, optionally introduced by a token.
const fn group(
    name: &'static str,
    kind: &'static str,
    token: Option<&'static str>,
    optional: bool,
    subargs: &'static [Arg],
) -> Arg {
    Arg {
        name,
        kind,
        token,
        optional,
        multiple: false,
        subargs,
    }
}

const ON_OFF: &[Arg] = &[token("on", "ON"), token("off", "OFF")];
const FLUSH_TYPE: &[Arg] = &[token("async", "ASYNC"), token("sync", "SYNC")];

const SUB_FLAGS: &[&str] = &["pubsub", "noscript", "loading", "stale"];
const PUBSUB_SLOW: &[&str] = &["@pubsub", "@slow"];
const CONN_FAST: &[&str] = &["@fast", "@connection"];
const CLIENT_FLAGS: &[&str] = &["noscript", "loading", "stale"];
const CLIENT_ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];
const SLOW_CONN: &[&str] = &["@slow", "@connection"];
const ADMIN_ACL: &[&str] = &["@admin", "@slow", "@dangerous", "@connection"];
const CONFIG_ACL: &[&str] = &["@admin", "@slow", "@dangerous"];

macro_rules! spec {
    ($name:expr, $arity:expr, $flags:expr, $acl:expr, $group:expr, $since:expr, $summary:expr, $cx:expr, $args:expr) => {
        Spec {
            name: $name,
            arity: $arity,
            flags: $flags,
            acl: $acl,
            group: $group,
            since: $since,
            summary: $summary,
            complexity: $cx,
            args: $args,
            subcommands: &[],
        }
    };
}

macro_rules! container {
    ($name:expr, $group:expr, $since:expr, $summary:expr, $subs:expr) => {
        container!($name, -2, $group, $since, $summary, $subs)
    };
    ($name:expr, $arity:expr, $group:expr, $since:expr, $summary:expr, $subs:expr) => {
        Spec {
            name: $name,
            arity: $arity,
            flags: &[],
            acl: &["@slow"],
            group: $group,
            since: $since,
            summary: $summary,
            complexity: "Depends on subcommand.",
            args: &[],
            subcommands: $subs,
        }
    };
}

pub static COMMANDS: &[Spec] = &[
    spec!("publish", 3, &["pubsub", "loading", "stale", "fast", "may_replicate"], &["@pubsub", "@fast"], "pubsub", "2.0.0",
        "Post a message to a channel", "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).",
        &[a("channel", "string"), a("message", "string")]),
    spec!("spublish", 3, &["pubsub", "loading", "stale", "fast", "may_replicate"], &["@pubsub", "@fast"], "pubsub", "7.0.0",
        "Post a message to a shard channel", "O(N) where N is the number of clients subscribed to the receiving shard channel.",
        &[a("shardchannel", "string"), a("message", "string")]),
    spec!("subscribe", -2, SUB_FLAGS, PUBSUB_SLOW, "pubsub", "2.0.0",
        "Listen for messages published to the given channels", "O(N) where N is the number of channels to subscribe to.",
        &[many("channel", "string")]),
    spec!("psubscribe", -2, SUB_FLAGS, PUBSUB_SLOW, "pubsub", "2.0.0",
        "Listen for messages published to channels matching the given patterns", "O(N) where N is the number of patterns the client is already subscribed to.",
        &[many("pattern", "pattern")]),
    spec!("ssubscribe", -2, SUB_FLAGS, PUBSUB_SLOW, "pubsub", "7.0.0",
        "Listen for messages published to the given shard channels", "O(N) where N is the number of shard channels to subscribe to.",
        &[many("shardchannel", "string")]),
    spec!("unsubscribe", -1, SUB_FLAGS, PUBSUB_SLOW, "pubsub", "2.0.0",
        "Stop listening for messages posted to the given channels", "O(N) where N is the number of clients already subscribed to a channel.",
        &[opt_many("channel", "string")]),
    spec!("punsubscribe", -1, SUB_FLAGS, PUBSUB_SLOW, "pubsub", "2.0.0",
        "Stop listening for messages posted to channels matching the given patterns", "O(N+M) where N is the number of patterns the client is already subscribed and M is the number of total patterns subscribed in the system (by any client).",
        &[opt_many("pattern", "pattern")]),
    spec!("sunsubscribe", -1, SUB_FLAGS, PUBSUB_SLOW, "pubsub", "7.0.0",
        "Stop listening for messages posted to the given shard channels", "O(N) where N is the number of clients already subscribed to a shard channel.",
        &[opt_many("shardchannel", "string")]),
    container!("pubsub", "pubsub", "2.8.0", "A container for Pub/Sub commands", &[
        spec!("pubsub|channels", -2, &["pubsub", "loading", "stale"], PUBSUB_SLOW, "pubsub", "2.8.0",
            "List active channels", "O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)",
            &[opt("pattern", "pattern")]),
        spec!("pubsub|numsub", -2, &["pubsub", "loading", "stale"], PUBSUB_SLOW, "pubsub", "2.8.0",
            "Get the count of subscribers for channels", "O(N) for the NUMSUB subcommand, where N is the number of requested channels",
            &[opt_many("channel", "string")]),
        spec!("pubsub|numpat", 2, &["pubsub", "loading", "stale"], PUBSUB_SLOW, "pubsub", "2.8.0",
            "Get the count of unique patterns pattern subscriptions", "O(1)", &[]),
        spec!("pubsub|shardchannels", -2, &["pubsub", "loading", "stale"], PUBSUB_SLOW, "pubsub", "7.0.0",
            "List active shard channels", "O(N) where N is the number of active shard channels, and assuming constant time pattern matching (relatively short shard channels).",
            &[opt("pattern", "pattern")]),
        spec!("pubsub|shardnumsub", -2, &["pubsub", "loading", "stale"], PUBSUB_SLOW, "pubsub", "7.0.0",
            "Get the count of subscribers for shard channels", "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels",
            &[opt_many("shardchannel", "string")]),
        spec!("pubsub|help", 2, &["loading", "stale"], &["@slow"], "pubsub", "6.2.0",
            "Show helpful text about the different subcommands", "O(1)", &[]),
    ]),
    spec!("ping", -1, &["fast", "sentinel"], CONN_FAST, "connection", "1.0.0",
        "Ping the server", "O(1)", &[opt("message", "string")]),
    spec!("echo", 2, &["loading", "stale", "fast"], CONN_FAST, "connection", "1.0.0",
        "Echo the given string", "O(1)", &[a("message", "string")]),
    spec!("quit", -1, &["allow_busy", "noscript", "loading", "stale", "fast", "no_auth"], CONN_FAST, "connection", "1.0.0",
        "Close the connection", "O(1)", &[]),
    spec!("reset", 1, &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], CONN_FAST, "connection", "6.2.0",
        "Reset the connection", "O(1)", &[]),
    spec!("hello", -1, &["noscript", "loading", "stale", "fast", "no_auth", "sentinel", "allow_busy"], CONN_FAST, "connection", "6.0.0",
        "Handshake with Redis", "O(1)",
        &[opt("protover", "integer"), group("username_password", "block", Some("AUTH"), true, &[a("username", "string"), a("password", "string")]), Arg { token: Some("SETNAME"), ..opt("clientname", "string") }]),
    spec!("auth", -2, &["noscript", "loading", "stale", "fast", "no_auth", "sentinel", "allow_busy"], CONN_FAST, "connection", "1.0.0",
        "Authenticate to the server", "O(N) where N is the number of passwords defined for the user",
        &[opt("username", "string"), a("password", "string")]),
    spec!("select", 2, &["loading", "stale", "fast"], CONN_FAST, "connection", "1.0.0",
        "Change the selected database for the current connection", "O(1)", &[a("index", "integer")]),
    container!("client", "connection", "2.4.0", "A container for client connection commands", &[
        spec!("client|id", 2, CLIENT_FLAGS, SLOW_CONN, "connection", "5.0.0", "Returns the client ID for the current connection", "O(1)", &[]),
        spec!("client|setname", 3, CLIENT_FLAGS, SLOW_CONN, "connection", "2.6.9", "Set the current connection name", "O(1)", &[a("connection-name", "string")]),
        spec!("client|getname", 2, CLIENT_FLAGS, SLOW_CONN, "connection", "2.6.9", "Get the current connection name", "O(1)", &[]),
        spec!("client|setinfo", 4, CLIENT_FLAGS, SLOW_CONN, "connection", "7.2.0", "Set client or connection specific info", "O(1)",
            &[group("attr", "oneof", None, false, &[Arg { token: Some("LIB-NAME"), ..a("libname", "string") }, Arg { token: Some("LIB-VER"), ..a("libver", "string") }]), ]),
        spec!("client|info", 2, CLIENT_FLAGS, SLOW_CONN, "connection", "6.2.0", "Returns information about the current client connection.", "O(1)", &[]),
        spec!("client|list", -2, CLIENT_ADMIN, ADMIN_ACL, "connection", "2.4.0", "Get the list of client connections", "O(N) where N is the number of client connections",
            &[group("client-type", "oneof", Some("TYPE"), true, &[token("normal", "NORMAL"), token("master", "MASTER"), token("replica", "REPLICA"), token("pubsub", "PUBSUB")]), Arg { name: "client-id", kind: "integer", token: Some("ID"), optional: true, multiple: true, subargs: &[] }]),
        spec!("client|kill", -3, CLIENT_ADMIN, ADMIN_ACL, "connection", "2.4.0", "Kill the connection of a client", "O(N) where N is the number of client connections",
            &[group("filter", "oneof", None, false, &[Arg { token: Some("ID"), ..opt("client-id", "integer") }, Arg { token: Some("TYPE"), ..opt("client-type", "string") }, Arg { token: Some("USER"), ..opt("username", "string") }, Arg { token: Some("ADDR"), ..opt("ip:port", "string") }, Arg { token: Some("LADDR"), ..opt("ip:port", "string") }, Arg { token: Some("SKIPME"), ..opt("yes/no", "string") }])]),
        spec!("client|reply", 3, CLIENT_FLAGS, SLOW_CONN, "connection", "3.2.0", "Instruct the server whether to reply to commands", "O(1)", &[group("action", "oneof", None, false, &[token("on", "ON"), token("off", "OFF"), token("skip", "SKIP")])]),
        spec!("client|no-evict", 3, CLIENT_ADMIN, ADMIN_ACL, "connection", "7.0.0", "Set client eviction mode for the current connection", "O(1)", &[group("enabled", "oneof", None, false, ON_OFF)]),
        spec!("client|no-touch", 3, CLIENT_FLAGS, SLOW_CONN, "connection", "7.2.0", "Controls whether commands sent by the client will alter the LRU/LFU of the keys they access.", "O(1)", &[group("enabled", "oneof", None, false, ON_OFF)]),
        spec!("client|overflow", -2, CLIENT_FLAGS, SLOW_CONN, "connection", "fanout 0.1.0",
            "Get or set this connection's pubsub overflow policy (default|disconnect|drop-newest|drop-oldest)", "O(1)", &[group("policy", "oneof", None, true, &[token("default", "DEFAULT"), token("disconnect", "DISCONNECT"), token("drop-newest", "DROP-NEWEST"), token("drop-oldest", "DROP-OLDEST")])]),
        spec!("client|help", 2, &["loading", "stale"], SLOW_CONN, "connection", "5.0.0", "Show helpful text about the different subcommands", "O(1)", &[]),
    ]),
    // COMMAND alone lists every command, so unlike other containers its arity is -1.
    container!("command", -1, "server", "2.8.13", "Get array of Redis command details", &[
        spec!("command|count", 2, &["loading", "stale"], &["@slow", "@connection"], "server", "2.8.13", "Get total number of Redis commands", "O(1)", &[]),
        spec!("command|docs", -2, &["loading", "stale"], &["@slow", "@connection"], "server", "7.0.0", "Get array of specific Redis command documentation", "O(N) where N is the number of commands to look up",
            &[opt_many("command-name", "string")]),
        spec!("command|info", -2, &["loading", "stale"], &["@slow", "@connection"], "server", "2.8.13", "Get array of specific Redis command details, or all when no argument is given.", "O(N) where N is the number of commands to look up",
            &[opt_many("command-name", "string")]),
        spec!("command|list", -2, &["loading", "stale"], &["@slow", "@connection"], "server", "7.0.0", "Get an array of Redis command names", "O(N) where N is the total number of Redis commands",
            &[group("filterby", "oneof", Some("FILTERBY"), true, &[Arg { token: Some("MODULE"), ..a("module-name", "string") }, Arg { token: Some("ACLCAT"), ..a("category", "string") }, Arg { token: Some("PATTERN"), ..a("pattern", "pattern") }])]),
        spec!("command|getkeys", -3, &["loading", "stale"], &["@slow", "@connection"], "server", "2.8.13", "Extract keys given a full Redis command", "O(N) where N is the number of arguments to the command",
            &[a("command", "string"), opt_many("arg", "string")]),
        spec!("command|help", 2, &["loading", "stale"], &["@slow", "@connection"], "server", "5.0.0", "Show helpful text about the different subcommands", "O(1)", &[]),
    ]),
    spec!("info", -1, &["loading", "stale", "sentinel"], &["@slow", "@dangerous"], "server", "1.0.0",
        "Get information and statistics about the server", "O(1)", &[opt_many("section", "string")]),
    container!("config", "server", "2.0.0", "A container for server configuration commands", &[
        spec!("config|get", -3, CLIENT_ADMIN, CONFIG_ACL, "server", "2.0.0", "Get the values of configuration parameters", "O(N) when N is the number of configuration parameters provided",
            &[many("parameter", "string")]),
        spec!("config|set", -4, CLIENT_ADMIN, CONFIG_ACL, "server", "2.0.0", "Set configuration parameters to the given values", "O(N) when N is the number of configuration parameters provided",
            &[Arg { multiple: true, ..group("data", "block", None, false, &[a("parameter", "string"), a("value", "string")]) }]),
        spec!("config|resetstat", 2, CLIENT_ADMIN, CONFIG_ACL, "server", "2.0.0", "Reset the stats returned by INFO", "O(1)", &[]),
        spec!("config|help", 2, &["loading", "stale"], &["@slow"], "server", "5.0.0", "Show helpful text about the different subcommands", "O(1)", &[]),
    ]),
    container!("acl", "server", "6.0.0", "A container for Access List Control commands ", &[
        spec!("acl|cat", -2, CLIENT_FLAGS, &["@slow"], "server", "6.0.0", "List the ACL categories or the commands inside a category", "O(1) since the categories and commands are a fixed set.",
            &[opt("categoryname", "string")]),
        spec!("acl|deluser", -3, CLIENT_ADMIN, CONFIG_ACL, "server", "6.0.0", "Remove the specified ACL users and the associated rules", "O(1) amortized time considering the typical user.",
            &[many("username", "string")]),
        spec!("acl|dryrun", -4, CLIENT_ADMIN, CONFIG_ACL, "server", "7.0.0", "Returns whether the user can execute the given command without executing the command.", "O(1).",
            &[a("username", "string"), a("command", "string"), opt_many("arg", "string")]),
        spec!("acl|genpass", -2, CLIENT_FLAGS, &["@slow"], "server", "6.0.0", "Generate a pseudorandom secure password to use for ACL users", "O(1)",
            &[opt("bits", "integer")]),
        spec!("acl|getuser", 3, CLIENT_ADMIN, CONFIG_ACL, "server", "6.0.0", "Get the rules for a specific ACL user", "O(N). Where N is the number of password, command and pattern rules that the user has.",
            &[a("username", "string")]),
        spec!("acl|list", 2, CLIENT_ADMIN, CONFIG_ACL, "server", "6.0.0", "List the current ACL rules in ACL config file format", "O(N). Where N is the number of configured users.", &[]),
        spec!("acl|load", 2, CLIENT_ADMIN, CONFIG_ACL, "server", "6.0.0", "Reload the ACLs from the configured ACL file", "O(N). Where N is the number of configured users.", &[]),
        spec!("acl|log", -2, CLIENT_ADMIN, CONFIG_ACL, "server", "6.0.0", "List latest events denied because of ACLs in place", "O(N) with N being the number of entries shown.",
            &[group("operation", "oneof", None, true, &[a("count", "integer"), token("reset", "RESET")])]),
        spec!("acl|save", 2, CLIENT_ADMIN, CONFIG_ACL, "server", "6.0.0", "Save the current ACL rules in the configured ACL file", "O(N). Where N is the number of configured users.", &[]),
        spec!("acl|setuser", -3, CLIENT_ADMIN, CONFIG_ACL, "server", "6.0.0", "Modify or create the rules for a specific ACL user", "O(N). Where N is the number of rules provided.",
            &[a("username", "string"), opt_many("rule", "string")]),
        spec!("acl|users", 2, CLIENT_ADMIN, CONFIG_ACL, "server", "6.0.0", "List the username of all the configured ACL rules", "O(N). Where N is the number of configured users.", &[]),
        spec!("acl|whoami", 2, CLIENT_FLAGS, &["@slow"], "server", "6.0.0", "Return the name of the user associated to the current connection", "O(1)", &[]),
        spec!("acl|help", 2, &["loading", "stale"], &["@slow"], "server", "6.0.0", "Show helpful text about the different subcommands", "O(1)", &[]),
    ]),
    spec!("flushall", -1, &["write"], &["@keyspace", "@write", "@slow", "@dangerous"], "server", "1.0.0",
        "Remove all keys from all databases (fanout keeps no keys: a no-op)", "O(1)", &[group("flush-type", "oneof", None, true, FLUSH_TYPE)]),
    container!("function", "scripting", "7.0.0", "A container for function commands", &[
        spec!("function|flush", -2, &["noscript", "write"], &["@write", "@slow", "@scripting"], "scripting", "7.0.0",
            "Deleting all functions (fanout has none: a no-op)", "O(N) where N is the number of functions deleted", &[group("flush-type", "oneof", None, true, FLUSH_TYPE)]),
    ]),
    spec!("debug", -2, &["admin", "noscript", "loading", "stale"], &["@admin", "@slow", "@dangerous"], "server", "1.0.0",
        "A container for debugging commands (disabled, as in Redis by default)", "Depends on subcommand.", &[]),
];

/// Looks a command up by name, ignoring case.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    COMMANDS.iter().find(|c| c.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Every command and subcommand, for COMMAND COUNT and COMMAND LIST.
pub fn all() -> impl Iterator<Item = &'static Spec> {
    COMMANDS
        .iter()
        .flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()))
}
