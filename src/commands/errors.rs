//! Redis's error replies, in one place: each failure a command can report is a variant,
//! rendered here to Redis's exact text. Texts that quote what the client sent carry its
//! bytes as they are (never a lossy UTF-8 conversion); the encoder only turns CR and LF
//! into spaces, as Redis does.

use bytes::Bytes;

use crate::acl::rules::Denial;
use crate::acl::AclError;

/// Redis's protected-mode refusal, word for word, so operators find the same advice
/// (RESP connections and the HTTP listener refuse with it).
pub const PROTECTED_MODE: &str = "DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.";

/// A command's failure, as the client will read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    Syntax,
    NotInteger,
    /// A text quoting what the client sent: `before`, the bytes (to the first NUL, as
    /// Redis's `%s`), `after`.
    Quoted(&'static str, Bytes, &'static str),
    UnknownCommand {
        name: Bytes,
        args: Vec<Bytes>,
    },
    /// Redis's `addReplySubcommandSyntaxError`: a known subcommand with arguments its
    /// handler does not take.
    SubcommandSyntax {
        sub: Bytes,
        container: &'static str,
    },
    UnknownSubcommand {
        sub: Bytes,
        container: &'static str,
    },
    WrongArity(&'static str),
    NoAuth,
    /// RESP2 subscribed context: the command is not allowed.
    SubscribedContext(&'static str),
    // Transactions.
    NestedMulti,
    WatchInMulti,
    ExecWithoutMulti,
    DiscardWithoutMulti,
    ExecAbort,
    NotInMulti,
    // COMMAND GETKEYS.
    InvalidCommand,
    InvalidArgsForCommand,
    NoKeyArguments,
    /// SHUTDOWN ABORT with nothing to abort.
    NoShutdownInProgress,
    Acl(AclError),
    ClientIdNotPositive,
    InvalidClientId,
    NoSuchClient,
    GenpassFailed,
    ProtocolVersionNotInteger,
    NoProto,
    DbIndexOutOfRange,
    InvalidNumberOfArgsForCommand,
    ReplicaKeyspace,
    SlowlogCount,
    PauseMode,
    TimeoutNotInteger,
    TimeoutNegative,
    TimeoutOutOfRange,
    /// `<command> isn't allowed for a DENY BLOCKING client` (inside EXEC).
    DenyBlocking(&'static str),
    /// The DEBUG command, off as in Redis by default.
    DebugDisabled,
    NoPermCommand(&'static str),
    NoPermKey,
    NoPermChannel,
    /// A queued command refused at EXEC because its user's rules changed since.
    NoPermAtExec(crate::acl::rules::Denial),
    /// EXEC itself refused: the transaction is discarded, saying why.
    ExecAbortBecause(Box<Error>),
    // The keyspace.
    WrongType,
    NoSuchKey,
    /// `invalid expire time in '<command>' command`.
    InvalidExpireTime(&'static str),
    ExpireNxXx,
    ExpireGtLt,
    SameObject,
    InvalidCursor,
    Oom,
    /// The AOF cannot be written: the OS's reason.
    Misconf(String),
    RewriteInProgress,
    RewriteFailed,
    RewriteNeedsAof,
    NoRdb,
    /// DEBUG LOADAOF failed: why.
    AofLoad(String),
    /// CONFIG SET appendonly yes could not start the AOF.
    AofTurnOn,
    UnblockedByClient,
    UnblockReason,
    // Cluster.
    ClusterDisabled,
    Moved {
        slot: u16,
        addr: String,
    },
    CrossSlot,
    /// `-CLUSTERDOWN <why>`.
    ClusterDown(&'static str),
    UnknownNode(Bytes),
    NotAPrimary,
    InvalidSlot,
    InvalidSlotOrCount,
    /// A CLUSTER subcommand that would change the topology (its name).
    StaticTopology(String),
    ClusterReload(String),
    /// PUBLISH larger than the cluster bus carries: its size and the bus's limit.
    BusTooLarge(usize, usize),
    SelectInCluster,
    LfuNotSelected,
    LruNotSelected,
    // Streams.
    InvalidStreamId,
    InvalidStartInterval,
    InvalidEndInterval,
    XaddIdZero,
    XaddIdTooSmall,
    StreamExhausted,
    MaxlenNegative,
    MaxlenWithMinid,
    LimitWithoutStrategy,
    LimitWithoutApprox,
    LimitNegative,
    XtrimNoStrategy,
    XreadGreaterId,
    /// `Unbalanced '<cmd>' list of streams`, naming `$` (XREAD) or `>` (XREADGROUP).
    Unbalanced(&'static str),
    GroupOnlyXreadgroup,
    NoackOnlyXreadgroup,
    DollarInXreadgroup,
    MissingGroup,
    /// XREADGROUP's NOGROUP, quoting the key and the group.
    NoGroupRead(Bytes, Bytes),
    /// XPENDING/XCLAIM/XAUTOCLAIM's NOGROUP: key, group.
    NoGroup(Bytes, Bytes),
    /// XGROUP/XINFO's NOGROUP: group, key.
    NoGroupForKey(Bytes, Bytes),
    BusyGroup,
    XgroupNeedsKey,
    EntriesReadInvalid,
    /// `Invalid min-idle-time argument for <XCLAIM|XAUTOCLAIM>`.
    InvalidMinIdle(&'static str),
    /// `Invalid <IDLE|TIME|RETRYCOUNT> option argument for XCLAIM`.
    XclaimOptionArg(&'static str),
    CountNotPositive,
    EntriesAddedNegative,
    XsetidEntriesAddedTooSmall,
    XsetidMaxDeletedAboveId,
    XsetidTooSmall,
    XsetidBelowMaxDeleted,
    // Webhooks.
    /// `no such webhook '<name>'`.
    NoSuchWebhook(Bytes),
    /// A URL that is not http:// or https:// with a host.
    WebhookUrl(Bytes),
    /// A WEBHOOK ADD option out of range: the option and what it takes.
    WebhookOption(&'static str, &'static str),
    WebhookEmptyName,
    /// The webhook could not be started: why.
    WebhookStart(String),
}

impl Error {
    /// The reply text, without the leading `-` and trailing CRLF.
    pub fn text(&self) -> Vec<u8> {
        let s: &str = match self {
            Error::Syntax => "ERR syntax error",
            Error::NotInteger => "ERR value is not an integer or out of range",
            Error::Quoted(before, what, after) => {
                let mut t = before.as_bytes().to_vec();
                t.extend_from_slice(c_str(what));
                t.extend_from_slice(after.as_bytes());
                return t;
            }
            Error::UnknownCommand { name, args } => return unknown_command(name, args),
            Error::UnknownSubcommand { sub, container } => {
                let mut t = b"ERR unknown subcommand '".to_vec();
                t.extend_from_slice(c_str(&sub[..sub.len().min(128)]));
                t.extend_from_slice(b"'. Try ");
                t.extend_from_slice(container.to_ascii_uppercase().as_bytes());
                t.extend_from_slice(b" HELP.");
                return t;
            }
            Error::SubcommandSyntax { sub, container } => {
                let mut t = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
                t.extend_from_slice(c_str(&sub[..sub.len().min(128)]));
                t.extend_from_slice(b"'. Try ");
                t.extend_from_slice(container.to_ascii_uppercase().as_bytes());
                t.extend_from_slice(b" HELP.");
                return t;
            }
            Error::WrongArity(name) => return format!("ERR wrong number of arguments for '{name}' command").into_bytes(),
            Error::NoAuth => "NOAUTH Authentication required.",
            Error::SubscribedContext(name) => return format!(
                "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            )
            .into_bytes(),
            Error::NestedMulti => "ERR MULTI calls can not be nested",
            Error::WatchInMulti => "ERR WATCH inside MULTI is not allowed",
            Error::ExecWithoutMulti => "ERR EXEC without MULTI",
            Error::DiscardWithoutMulti => "ERR DISCARD without MULTI",
            Error::ExecAbort => "EXECABORT Transaction discarded because of previous errors.",
            Error::NotInMulti => "ERR Command not allowed inside a transaction",
            Error::InvalidCommand => "ERR Invalid command specified",
            Error::InvalidArgsForCommand => "ERR Invalid arguments specified for command",
            Error::NoKeyArguments => "ERR The command has no key arguments",
            Error::NoShutdownInProgress => "ERR No shutdown in progress.",
            Error::Acl(e) => return acl_text(e),
            Error::ClientIdNotPositive => "ERR client-id should be greater than 0",
            Error::InvalidClientId => "ERR Invalid client ID",
            Error::NoSuchClient => "ERR No such client",
            Error::GenpassFailed => "ERR could not generate a random password",
            Error::ProtocolVersionNotInteger => "ERR Protocol version is not an integer or out of range",
            Error::NoProto => "NOPROTO unsupported protocol version",
            Error::DbIndexOutOfRange => "ERR DB index is out of range",
            Error::InvalidNumberOfArgsForCommand => "ERR Invalid number of arguments specified for command",
            Error::ReplicaKeyspace => "ERR Replica can't interact with the keyspace",
            Error::SlowlogCount => "ERR count should be greater than or equal to -1",
            Error::PauseMode => "ERR CLIENT PAUSE mode must be WRITE or ALL",
            Error::TimeoutNotInteger => "ERR timeout is not an integer or out of range",
            Error::TimeoutNegative => "ERR timeout is negative",
            Error::TimeoutOutOfRange => "ERR timeout is out of range",
            Error::DenyBlocking(cmd) => return format!("ERR {cmd} isn't allowed for a DENY BLOCKING client").into_bytes(),
            Error::DebugDisabled => "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
            Error::NoPermCommand(name) => {
                return format!("NOPERM this user has no permissions to run the '{name}' command").into_bytes()
            }
            Error::NoPermKey => "NOPERM this user has no permissions to access one of the keys used as arguments",
            Error::NoPermChannel => "NOPERM this user has no permissions to access one of the channels used as arguments",
            Error::NoPermAtExec(denial) => {
                let reason = match denial {
                    Denial::Command => "no permission to execute the command or subcommand",
                    Denial::Key => "no permission to touch the specified keys",
                    Denial::Channel => "no permission to access one of the channels used as arguments",
                    Denial::Auth => "no permission",
                };
                return format!("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}").into_bytes();
            }
            Error::WrongType => "WRONGTYPE Operation against a key holding the wrong kind of value",
            Error::NoSuchKey => "ERR no such key",
            Error::InvalidExpireTime(cmd) => return format!("ERR invalid expire time in '{cmd}' command").into_bytes(),
            Error::ExpireNxXx => "ERR NX and XX, GT or LT options at the same time are not compatible",
            Error::ExpireGtLt => "ERR GT and LT options at the same time are not compatible",
            Error::SameObject => "ERR source and destination objects are the same",
            Error::InvalidCursor => "ERR invalid cursor",
            Error::Oom => "OOM command not allowed when used memory > 'maxmemory'.",
            Error::Misconf(reason) => return format!("MISCONF Errors writing to the AOF file: {reason}").into_bytes(),
            Error::AofLoad(why) => return format!("ERR Error loading the AOF: {why}").into_bytes(),
            Error::AofTurnOn => "ERR CONFIG SET failed (possibly related to argument 'appendonly') - Unable to turn on AOF. Check server logs.",
            Error::RewriteFailed => "ERR Background append only file rewriting error",
            Error::RewriteInProgress => "ERR Background append only file rewriting already in progress",
            Error::RewriteNeedsAof => "ERR Background append only file rewriting needs appendonly yes in fanout",
            Error::NoRdb => "ERR fanout has no RDB snapshots: persistence is the append-only file (appendonly yes; BGREWRITEAOF compacts it)",
            Error::LfuNotSelected => "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            Error::LruNotSelected => "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            Error::UnblockReason => "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            Error::ClusterDisabled => "ERR This instance has cluster support disabled",
            Error::Moved { slot, addr } => return format!("MOVED {slot} {addr}").into_bytes(),
            Error::CrossSlot => "CROSSSLOT Keys in request don't hash to the same slot",
            Error::ClusterDown(why) => return format!("CLUSTERDOWN {why}").into_bytes(),
            Error::UnknownNode(id) => return quoted2("ERR Unknown node ", id, "", b"", ""),
            Error::NotAPrimary => "ERR The specified node is not a master",
            Error::InvalidSlot => "ERR Invalid slot",
            Error::InvalidSlotOrCount => "ERR Invalid slot or number of keys",
            Error::StaticTopology(sub) => {
                return format!("ERR CLUSTER {sub} is not supported: fanout's topology is static; edit the cluster-config-file on every node and run CLUSTER RELOAD (or send SIGHUP)").into_bytes()
            }
            Error::ClusterReload(why) => return format!("ERR CLUSTER RELOAD failed, the topology in force is unchanged: {why}").into_bytes(),
            Error::BusTooLarge(len, max) => {
                return format!("ERR message of {len} bytes is larger than the cluster bus carries ({max} bytes, the NATS server's max_payload)").into_bytes()
            }
            Error::SelectInCluster => "ERR SELECT is not allowed in cluster mode",
            Error::UnblockedByClient => "UNBLOCKED client unblocked via CLIENT UNBLOCK",
            Error::InvalidStreamId => "ERR Invalid stream ID specified as stream command argument",
            Error::InvalidStartInterval => "ERR invalid start ID for the interval",
            Error::InvalidEndInterval => "ERR invalid end ID for the interval",
            Error::XaddIdZero => "ERR The ID specified in XADD must be greater than 0-0",
            Error::XaddIdTooSmall => "ERR The ID specified in XADD is equal or smaller than the target stream top item",
            Error::StreamExhausted => "ERR The stream has exhausted the last possible ID, unable to add more items",
            Error::MaxlenNegative => "ERR The MAXLEN argument must be >= 0.",
            Error::MaxlenWithMinid => "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
            Error::LimitWithoutStrategy => "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
            Error::LimitWithoutApprox => "ERR syntax error, LIMIT cannot be used without the special ~ option",
            Error::LimitNegative => "ERR The LIMIT argument must be >= 0.",
            Error::XtrimNoStrategy => "ERR syntax error, XTRIM must be called with a trimming strategy",
            Error::XreadGreaterId => "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
            Error::Unbalanced(cmd) => {
                let id = if *cmd == "xreadgroup" { ">" } else { "$" };
                return format!("ERR Unbalanced '{cmd}' list of streams: for each stream key an ID or '{id}' must be specified.").into_bytes();
            }
            Error::GroupOnlyXreadgroup => "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
            Error::NoackOnlyXreadgroup => "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
            Error::DollarInXreadgroup => "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
            Error::MissingGroup => "ERR Missing GROUP option for XREADGROUP",
            Error::NoGroupRead(key, group) => return quoted2("NOGROUP No such key '", key, "' or consumer group '", group, "' in XREADGROUP with GROUP option"),
            Error::NoGroup(key, group) => return quoted2("NOGROUP No such key '", key, "' or consumer group '", group, "'"),
            Error::NoGroupForKey(group, key) => return quoted2("NOGROUP No such consumer group '", group, "' for key name '", key, "'"),
            Error::BusyGroup => "BUSYGROUP Consumer Group name already exists",
            Error::XgroupNeedsKey => "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
            Error::EntriesReadInvalid => "ERR value for ENTRIESREAD must be positive or -1",
            Error::InvalidMinIdle(cmd) => return format!("ERR Invalid min-idle-time argument for {cmd}").into_bytes(),
            Error::XclaimOptionArg(opt) => return format!("ERR Invalid {opt} option argument for XCLAIM").into_bytes(),
            Error::CountNotPositive => "ERR COUNT must be > 0",
            Error::EntriesAddedNegative => "ERR entries_added must be positive",
            Error::XsetidEntriesAddedTooSmall => "ERR The entries_added specified in XSETID is smaller than the target stream length",
            Error::XsetidMaxDeletedAboveId => "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
            Error::XsetidTooSmall => "ERR The ID specified in XSETID is smaller than the target stream top item",
            Error::XsetidBelowMaxDeleted => "ERR The ID specified in XSETID is smaller than current max_deleted_entry_id",
            Error::NoSuchWebhook(name) => {
                let mut t = b"ERR no such webhook '".to_vec();
                t.extend_from_slice(c_str(&name[..name.len().min(128)]));
                t.push(b'\'');
                return t;
            }
            Error::WebhookUrl(url) => {
                let mut t = b"ERR invalid webhook URL '".to_vec();
                t.extend_from_slice(c_str(&url[..url.len().min(256)]));
                t.extend_from_slice(b"': it must be an http:// or https:// URL with a host");
                return t;
            }
            Error::WebhookOption(opt, what) => return format!("ERR invalid {opt} value: it must be {what}").into_bytes(),
            Error::WebhookEmptyName => "ERR the webhook name must not be empty",
            Error::WebhookStart(why) => return format!("ERR can't start the webhook: {why}").into_bytes(),
            Error::ExecAbortBecause(why) => {
                // Redis's `execCommandAbort`: the refusal's text without its `ERR `.
                let text = why.text();
                let mut t = b"EXECABORT Transaction discarded because of: ".to_vec();
                t.extend_from_slice(text.strip_prefix(b"ERR ").unwrap_or(&text));
                return t;
            }
        };
        s.as_bytes().to_vec()
    }

    /// The first word, as INFO `errorstats` counts it (`errorstat_ERR`).
    pub fn code(text: &[u8]) -> &[u8] {
        let end = text.iter().position(|&b| b == b' ').unwrap_or(text.len());
        &text[..end]
    }
}

impl From<AclError> for Error {
    fn from(e: AclError) -> Error {
        Error::Acl(e)
    }
}

fn acl_text(e: &AclError) -> Vec<u8> {
    let quoted = |before: &str, what: &[u8], after: &str| {
        let mut t = before.as_bytes().to_vec();
        t.extend_from_slice(what);
        t.extend_from_slice(after.as_bytes());
        t
    };
    match e {
        AclError::UsernameSpaces => b"ERR Usernames can't contain spaces or null characters".to_vec(),
        AclError::UnmatchedParenthesis(start) => {
            quoted("ERR Unmatched parenthesis in acl selector starting at '", start, "'.")
        }
        AclError::Modifier(op, why) => quoted(
            "ERR Error in ACL SETUSER modifier '",
            op,
            &format!("': {}", why.text()),
        ),
        AclError::DefaultUndeletable => b"ERR The 'default' user cannot be removed".to_vec(),
        AclError::NoFile => b"ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.".to_vec(),
        AclError::Open(path, err) => format!("ERR Error loading ACLs, opening file '{path}': {err}").into_bytes(),
        AclError::File(report) => format!("ERR {report}").into_bytes(),
        AclError::Save => b"ERR There was an error trying to save the ACLs. Please check the server logs for more information".to_vec(),
    }
}

/// Redis's unknown-command text: the name cut to 128 bytes, then each argument quoted
/// while the argument text is shorter than 128 bytes, each cut to the room left.
fn unknown_command(name: &[u8], args: &[Bytes]) -> Vec<u8> {
    let mut list = Vec::new();
    for a in args {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        let text = c_str(a);
        list.push(b'\'');
        list.extend_from_slice(&text[..text.len().min(room)]);
        list.extend_from_slice(b"' ");
    }
    let mut t = b"ERR unknown command '".to_vec();
    t.extend_from_slice(c_str(&name[..name.len().min(128)]));
    t.extend_from_slice(b"', with args beginning with: ");
    t.extend_from_slice(&list);
    t
}

/// Redis formats these with `%s`, which stops at the first NUL byte.
fn c_str(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

/// A text quoting two things the client sent (`%s` each, as Redis formats them).
fn quoted2(a: &str, x: &[u8], b: &str, y: &[u8], c: &str) -> Vec<u8> {
    let mut t = a.as_bytes().to_vec();
    t.extend_from_slice(c_str(x));
    t.extend_from_slice(b.as_bytes());
    t.extend_from_slice(c_str(y));
    t.extend_from_slice(c.as_bytes());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(name: &[u8], args: &[&[u8]]) -> Vec<u8> {
        Error::UnknownCommand {
            name: Bytes::copy_from_slice(name),
            args: args.iter().map(|a| Bytes::copy_from_slice(a)).collect(),
        }
        .text()
    }

    #[test]
    fn unknown_command_text() {
        assert_eq!(
            unknown(b"NOSUCH", &[b"a", b"b"]),
            b"ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            unknown(b"x", &[]),
            b"ERR unknown command 'x', with args beginning with: "
        );
        let long = [b'z'; 300];
        let msg = unknown(b"x", &[&long, &long]);
        assert!(msg.ends_with(format!("'{}' ", "z".repeat(128)).as_bytes()));
    }

    #[test]
    fn bytes_that_are_not_utf8_are_echoed() {
        assert_eq!(
            unknown(b"\xff\xfe", &[]),
            b"ERR unknown command '\xff\xfe', with args beginning with: "
        );
        assert_eq!(
            unknown(b"a\0b", &[b"c\0d"]),
            b"ERR unknown command 'a', with args beginning with: 'c' "
        );
    }
}
