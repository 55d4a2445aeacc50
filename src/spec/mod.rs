//! The command table: the one place that knows every command's facts (name, subcommands,
//! arity, flags, ACL categories, key positions, channel arguments and documentation), as
//! Redis 7.2's command table has them. Dispatch, the arity check, ACL, the RESP2
//! subscribed-context rule, MULTI's refusals, MONITOR, COMMAND INFO/DOCS/LIST/COUNT/GETKEYS
//! and the per-command counters all read it.
//!
//! Each entry carries a [`Cmd`]: dispatch is an exhaustive `match` on it, so a command
//! with no handler does not compile, and a test checks that every `Cmd` has exactly one
//! entry. Adding a command family means one file of rows here (see [`pubsub`] for the
//! shape) plus one file of handlers under `commands/`.
//!
//! This module imports nothing from the crate: everything else may read it.

use std::borrow::Cow;
use std::sync::OnceLock;

use bytes::Bytes;

/// One command or subcommand.
pub struct Spec {
    /// Lower-case full name: `publish`, `pubsub|numpat`.
    pub name: &'static str,
    /// What dispatch runs, and the command's counter slot.
    pub cmd: Cmd,
    /// Redis arity: counts the command name (and subcommand); negative means "at least".
    pub arity: i32,
    pub flags: Flags,
    pub acl: &'static [&'static str],
    /// Where the keys are, as Redis 7 key specs (COMMAND INFO, GETKEYS, ACL key rules,
    /// cluster slots).
    pub keys: &'static [KeySpec],
    /// Which arguments name channels (ACL channel rules).
    pub channels: Channels,
    /// COMMAND INFO's tips (`nondeterministic_output`, `request_policy:...`).
    pub tips: &'static [&'static str],
    /// Which arguments MONITOR and SLOWLOG must never show.
    pub redact: Redact,
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    /// Empty when Redis's table has none (XREAD): COMMAND DOCS leaves it out.
    pub complexity: &'static str,
    /// COMMAND DOCS `history`: (version, change), oldest first.
    pub history: &'static [(&'static str, &'static str)],
    /// COMMAND DOCS `deprecated_since` and `replaced_by` (with the `deprecated` doc flag)
    /// for a command Redis marks deprecated (CLUSTER SLAVES, CLUSTER SLOTS).
    pub deprecated: Option<(&'static str, &'static str)>,
    /// Arguments for COMMAND DOCS.
    pub args: &'static [Arg],
    pub subcommands: &'static [Spec],
}

pub struct Arg {
    pub name: &'static str,
    pub kind: &'static str,
    pub token: Option<&'static str>,
    pub optional: bool,
    pub multiple: bool,
    /// The version that added the argument, when later than the command's.
    pub since: Option<&'static str>,
    /// COMMAND DOCS `display_text` when it is not the name.
    pub display: Option<&'static str>,
    /// For `key` arguments: the index of their key spec in [`Spec::keys`].
    pub key_spec: u8,
    /// For `oneof` and `block` arguments: what they are made of. redis-cli walks these
    /// to build its hints and crashes on a `oneof` or `block` without them.
    pub subargs: &'static [Arg],
}

/// Command flags: Redis's, in the order COMMAND INFO prints them, then fanout's own
/// (never printed).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Flags(pub u32);

impl Flags {
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const MAY_REPLICATE: u32 = 1 << 13;
    pub const SENTINEL: u32 = 1 << 14;
    pub const NO_MULTI: u32 = 1 << 15;
    pub const ALLOW_BUSY: u32 = 1 << 16;
    /// Never printed (Redis hides it too): SCAN and RANDOMKEY reach keys that are not
    /// among their arguments.
    pub const TOUCHES_ARBITRARY_KEYS: u32 = 1 << 17;
    pub const NO_ASYNC_LOADING: u32 = 1 << 18;
    /// fanout: allowed while a RESP2 connection is subscribed (Redis checks these
    /// commands by name).
    pub const SUBSCRIBED_OK: u32 = 1 << 24;
    /// fanout: adds subscriptions, so it holds its user's ACL rules while it runs (see
    /// `crate::acl`).
    pub const SUBSCRIBES: u32 = 1 << 25;
    /// fanout: runs at once inside MULTI instead of being queued (Redis checks EXEC,
    /// DISCARD, MULTI, WATCH, QUIT and RESET by name).
    pub const NOT_QUEUED: u32 = 1 << 26;

    /// The flags COMMAND INFO prints, in Redis's order (`addReplyCommandFlags`).
    /// `may_replicate` and `sentinel` are kept but never printed, as Redis hides them on
    /// purpose; `movablekeys` is derived from the key specs and goes before `allow_busy`.
    const PRINTED: [(u32, &'static str); 16] = [
        (Self::WRITE, "write"),
        (Self::READONLY, "readonly"),
        (Self::DENYOOM, "denyoom"),
        (Self::ADMIN, "admin"),
        (Self::PUBSUB, "pubsub"),
        (Self::NOSCRIPT, "noscript"),
        (Self::BLOCKING, "blocking"),
        (Self::LOADING, "loading"),
        (Self::STALE, "stale"),
        (Self::SKIP_MONITOR, "skip_monitor"),
        (Self::SKIP_SLOWLOG, "skip_slowlog"),
        (Self::FAST, "fast"),
        (Self::NO_AUTH, "no_auth"),
        (Self::NO_ASYNC_LOADING, "no_async_loading"),
        (Self::NO_MULTI, "no_multi"),
        (Self::ALLOW_BUSY, "allow_busy"),
    ];

    pub const fn has(self, flag: u32) -> bool {
        self.0 & flag != 0
    }

    /// The names COMMAND INFO prints, in Redis's order, with `movablekeys` when the key
    /// specs say so.
    pub fn names(self, movable: bool) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (bit, name) in Self::PRINTED {
            if bit == Self::ALLOW_BUSY && movable {
                out.push("movablekeys");
            }
            if self.0 & bit != 0 {
                out.push(name);
            }
        }
        out
    }
}

/// `f![PUBSUB, FAST]`: a [`Flags`] value in a const context.
macro_rules! f {
    ($($flag:ident),* $(,)?) => {
        $crate::spec::Flags(0 $(| $crate::spec::Flags::$flag)*)
    };
}

/// A Redis 7 key spec: where the search for keys begins, then how keys are found.
pub struct KeySpec {
    /// `RO`, `RW`, `OW`, `RM`, `access`, `update`, `insert`, `delete`, `not_key`...
    pub flags: &'static [&'static str],
    pub begin: Begin,
    pub find: Find,
    /// COMMAND INFO's `notes` (XADD explains its `update`).
    pub notes: Option<&'static str>,
}

pub enum Begin {
    /// Keys start at this argument.
    Index(usize),
    /// Keys start after this keyword, searched from `startfrom` (negative: from the end,
    /// backwards).
    Keyword { keyword: &'static str, startfrom: i32 },
}

pub enum Find {
    /// `lastkey` relative to the first key (negative: from the end of the arguments,
    /// or, with a `limit` above 1, from the end of the first 1/limit of the rest).
    Range { lastkey: i32, step: usize, limit: usize },
    /// The number of keys is at `keynumidx` (relative to the start), keys start at
    /// `firstkey`.
    Keynum {
        keynumidx: usize,
        firstkey: usize,
        step: usize,
    },
}

impl KeySpec {
    pub fn not_key(&self) -> bool {
        // `not_key` is always the only flag where it appears in the table.
        matches!(self.flags, ["not_key"])
    }
}

/// Which arguments hold secrets, replaced by `(redacted)` wherever a command is shown
/// (MONITOR, SLOWLOG), as Redis's `redactClientCommandArgument` calls do.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Redact {
    None,
    /// AUTH [user] password: every argument, when the form is valid.
    Auth,
    /// HELLO ... AUTH user password.
    HelloAuth,
    /// ACL SETUSER name rules...: everything after the subcommand.
    AclSetuser,
    /// CONFIG SET: the values of sensitive directives.
    ConfigSet,
    /// WEBHOOK ADD: the value after `SECRET`.
    WebhookSecret,
}

/// Directives whose CONFIG SET values are secrets (Redis's `SENSITIVE_CONFIG`).
const SENSITIVE_CONFIGS: &[&str] = &[
    "requirepass",
    "masterauth",
    "tls-key-file-pass",
    "tls-client-key-file-pass",
];

/// Which arguments name channels, for ACL channel rules.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Channels {
    None,
    /// Argument 1 (PUBLISH, SPUBLISH).
    First,
    /// Every argument from 1 (SUBSCRIBE, SSUBSCRIBE).
    All,
    /// Every argument from 1, as patterns (PSUBSCRIBE).
    AllPatterns,
}

/// Why [`Spec::key_positions`] found no valid key layout.
#[derive(Debug, PartialEq, Eq)]
pub struct BadKeyArgs;

impl Spec {
    pub const fn has(&self, flag: u32) -> bool {
        self.flags.has(flag)
    }

    /// `args` as MONITOR and SLOWLOG may show them: secrets replaced by `(redacted)`.
    /// Runs after every command: nearly all have nothing to hide and cost one compare.
    #[inline]
    pub fn redacted<'a>(&self, args: &'a [Bytes]) -> Cow<'a, [Bytes]> {
        if self.redact == Redact::None {
            Cow::Borrowed(args)
        } else {
            self.redact_secrets(args)
        }
    }

    fn redact_secrets<'a>(&self, args: &'a [Bytes]) -> Cow<'a, [Bytes]> {
        const REDACTED: Bytes = Bytes::from_static(b"(redacted)");
        let mut out = args.to_vec();
        match self.redact {
            Redact::None => {}
            // Redis leaves a malformed AUTH (more than three words) as it is.
            Redact::Auth if args.len() <= 3 => out[1..].fill(REDACTED),
            Redact::Auth => return Cow::Borrowed(args),
            Redact::HelloAuth => {
                let at = args.iter().skip(2).position(|a| a.eq_ignore_ascii_case(b"auth"));
                match at.map(|i| i + 2) {
                    Some(i) if i + 2 < args.len() => out[i + 1..=i + 2].fill(REDACTED),
                    _ => return Cow::Borrowed(args),
                }
            }
            Redact::AclSetuser => out[2..].fill(REDACTED),
            Redact::WebhookSecret => {
                // Options start after name, url and pattern; a value is never a keyword.
                let mut i = 5;
                while i + 1 < out.len() {
                    if out[i].eq_ignore_ascii_case(b"SECRET") {
                        out[i + 1] = REDACTED;
                    }
                    i += 2;
                }
            }
            Redact::ConfigSet => {
                for pair in out[2..].chunks_mut(2) {
                    if let [name, value] = pair {
                        if SENSITIVE_CONFIGS
                            .iter()
                            .any(|c| name.eq_ignore_ascii_case(c.as_bytes()))
                        {
                            *value = REDACTED;
                        }
                    }
                }
            }
        }
        Cow::Owned(out)
    }

    /// The name as COMMAND shows it for a subcommand (`numpat`) or command (`publish`).
    pub fn short_name(&self) -> &'static str {
        self.name.rsplit('|').next().unwrap_or(self.name)
    }

    pub fn sub(&'static self, name: &[u8]) -> Option<&'static Spec> {
        self.subcommands
            .iter()
            .find(|s| s.short_name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// The argument count passes the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= self.arity.unsigned_abs() as usize
        }
    }

    /// The argument index of the one key of a command whose only key spec is a single
    /// argument (XADD, XLEN, SPUBLISH): the cluster stage finds it without allocating.
    pub fn single_key_at(&self) -> Option<usize> {
        match self.keys {
            [KeySpec {
                begin: Begin::Index(i),
                find: Find::Range { lastkey: 0, .. },
                ..
            }] => Some(*i),
            _ => None,
        }
    }

    /// Some key spec is not a plain index and range: keys move with the arguments.
    pub fn movable_keys(&self) -> bool {
        self.keys
            .iter()
            .any(|k| !matches!((&k.begin, &k.find), (Begin::Index(_), Find::Range { .. })) && !k.not_key())
    }

    /// COMMAND INFO's first key, last key and step (Redis's legacy range), derived from
    /// the key specs as `populateCommandLegacyRangeSpec` does.
    pub fn legacy_range(&self) -> (i64, i64, i64) {
        let mut range: Option<(i64, i64, i64)> = None;
        for k in self.keys {
            let (Begin::Index(first), Find::Range { lastkey, step, limit }) = (&k.begin, &k.find) else {
                continue;
            };
            if *limit > 1 {
                continue;
            }
            let first = *first as i64;
            let last = if *lastkey < 0 {
                *lastkey as i64
            } else {
                first + *lastkey as i64
            };
            range = match range {
                None => Some((first, last, *step as i64)),
                // Contiguous specs with the same step extend the range; others end it.
                Some((f, l, s)) if l >= 0 && l + 1 == first && s == *step as i64 => Some((f, last, s)),
                Some(r) => Some(r),
            };
        }
        range.unwrap_or((0, 0, 0))
    }

    /// The positions of the keys in `args` (the whole command, name included) with the
    /// flags of the key spec that found them; channel specs (`not_key`) only when asked.
    /// Redis's `getKeysUsingKeySpecs`.
    pub fn key_positions(
        &self,
        args: &[impl AsRef<[u8]>],
        with_channels: bool,
    ) -> Result<Vec<(usize, &'static [&'static str])>, BadKeyArgs> {
        let argc = args.len();
        let mut out = Vec::new();
        for k in self.keys {
            if k.not_key() && !with_channels {
                continue;
            }
            let first = match k.begin {
                Begin::Index(i) if i < argc => i,
                Begin::Index(_) => continue,
                Begin::Keyword { keyword, startfrom } => {
                    let found = if startfrom >= 0 {
                        (startfrom as usize..argc).find(|&i| args[i].as_ref().eq_ignore_ascii_case(keyword.as_bytes()))
                    } else {
                        let from = argc as i64 + startfrom as i64;
                        (1..=from.max(0) as usize)
                            .rev()
                            .find(|&i| i < argc && args[i].as_ref().eq_ignore_ascii_case(keyword.as_bytes()))
                    };
                    match found {
                        Some(i) => i + 1,
                        None => continue,
                    }
                }
            };
            let (first, last, step) = match k.find {
                Find::Range { lastkey, step, limit } => {
                    let last = if lastkey >= 0 {
                        first as i64 + lastkey as i64
                    } else if limit <= 1 {
                        argc as i64 + lastkey as i64
                    } else {
                        first as i64 + ((argc - first) / limit) as i64 + lastkey as i64
                    };
                    (first, last, step)
                }
                Find::Keynum {
                    keynumidx,
                    firstkey,
                    step,
                } => {
                    let at = first + keynumidx;
                    let n = args
                        .get(at)
                        .and_then(|a| std::str::from_utf8(a.as_ref()).ok()?.parse::<i64>().ok())
                        .ok_or(BadKeyArgs)?;
                    if n < 0 {
                        return Err(BadKeyArgs);
                    }
                    let first = first + firstkey;
                    (first, first as i64 + (n - 1) * step as i64, step)
                }
            };
            if last < first as i64 - 1 || last >= argc as i64 {
                return Err(BadKeyArgs);
            }
            let mut i = first as i64;
            while i <= last {
                out.push((i as usize, k.flags));
                i += step.max(1) as i64;
            }
        }
        Ok(out)
    }
}

macro_rules! commands {
    ($($variant:ident),* $(,)?) => {
        /// Every command and subcommand fanout implements: what dispatch matches on.
        #[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
        pub enum Cmd { $($variant),* }

        impl Cmd {
            pub const ALL: &'static [Cmd] = &[$(Cmd::$variant),*];
        }
    };
}

commands! {
    // pub/sub
    Publish, Spublish, Subscribe, Psubscribe, Ssubscribe, Unsubscribe, Punsubscribe, Sunsubscribe,
    Pubsub, PubsubChannels, PubsubNumsub, PubsubNumpat, PubsubShardchannels, PubsubShardnumsub, PubsubHelp,
    // connection
    Ping, Echo, Quit, Reset, Hello, Auth, Select,
    Client, ClientId, ClientSetname, ClientGetname, ClientSetinfo, ClientInfo, ClientList, ClientKill,
    ClientReply, ClientNoEvict, ClientNoTouch, ClientOverflow, ClientPause, ClientUnpause,
    ClientTrackinginfo, ClientGetredir, ClientUnblock, ClientHelp,
    // transactions
    Multi, Exec, Discard, Watch, Unwatch,
    // server
    Command, CommandCount, CommandDocs, CommandInfo, CommandList, CommandGetkeys, CommandGetkeysandflags, CommandHelp,
    Info, Config, ConfigGet, ConfigSet, ConfigResetstat, ConfigHelp,
    Flushall, Function, FunctionFlush, Debug, Monitor, Shutdown, Time, Dbsize, Lastsave, Bgrewriteaof, Bgsave, Save,
    Slowlog, SlowlogGet, SlowlogLen, SlowlogReset, SlowlogHelp,
    Latency, LatencyLatest, LatencyHistory, LatencyReset, LatencyDoctor, LatencyHistogram, LatencyHelp,
    Memory, MemoryUsage, MemoryStats, MemoryDoctor, MemoryPurge, MemoryMallocStats, MemoryHelp,
    // ACL
    Acl, AclCat, AclDeluser, AclDryrun, AclGenpass, AclGetuser, AclList, AclLoad, AclLog, AclSave,
    AclSetuser, AclUsers, AclWhoami, AclHelp,
    // generic key commands
    Del, Unlink, Exists, Type, Keys, Scan, Randomkey, Flushdb, Rename, Renamenx, Copy, Touch,
    Expire, Pexpire, Expireat, Pexpireat, Ttl, Pttl, Expiretime, Pexpiretime, Persist,
    Object, ObjectEncoding, ObjectIdletime, ObjectFreq, ObjectRefcount, ObjectHelp,
    // streams
    Xadd, Xrange, Xrevrange, Xlen, Xdel, Xtrim, Xread, Xreadgroup, Xack, Xpending, Xclaim, Xautoclaim, Xsetid,
    Xgroup, XgroupCreate, XgroupCreateconsumer, XgroupDelconsumer, XgroupDestroy, XgroupSetid, XgroupHelp,
    Xinfo, XinfoStream, XinfoGroups, XinfoConsumers, XinfoHelp,
    // cluster
    Cluster, ClusterAddslots, ClusterAddslotsrange, ClusterBumpepoch, ClusterCountFailureReports,
    ClusterCountkeysinslot, ClusterDelslots, ClusterDelslotsrange, ClusterFailover, ClusterFlushslots, ClusterForget,
    ClusterGetkeysinslot, ClusterHelp, ClusterInfo, ClusterKeyslot, ClusterLinks, ClusterMeet, ClusterMyid,
    ClusterMyshardid, ClusterNodes, ClusterReplicas, ClusterReplicate, ClusterReset, ClusterSaveconfig,
    ClusterSetConfigEpoch, ClusterSetslot, ClusterShards, ClusterSlaves, ClusterSlots, ClusterReload,
    Readonly, Readwrite, Asking,
    // webhooks
    Webhook, WebhookAdd, WebhookDel, WebhookList, WebhookInfo, WebhookHelp,
}

const fn arg(name: &'static str, kind: &'static str, optional: bool, multiple: bool) -> Arg {
    Arg {
        name,
        kind,
        token: None,
        optional,
        multiple,
        since: None,
        display: None,
        key_spec: 0,
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
        since: None,
        display: None,
        key_spec: 0,
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
        since: None,
        display: None,
        key_spec: 0,
        subargs,
    }
}

/// Keys from argument `index` to the last argument (`WATCH key [key ...]`).
const fn keys_from(index: usize, flags: &'static [&'static str]) -> KeySpec {
    KeySpec {
        flags,
        begin: Begin::Index(index),
        find: Find::Range {
            lastkey: -1,
            step: 1,
            limit: 0,
        },
        notes: None,
    }
}
/// One key at argument `index`.
const fn key_at(index: usize, flags: &'static [&'static str]) -> KeySpec {
    KeySpec {
        flags,
        begin: Begin::Index(index),
        find: Find::Range {
            lastkey: 0,
            step: 1,
            limit: 0,
        },
        notes: None,
    }
}

const ON_OFF: &[Arg] = &[token("on", "ON"), token("off", "OFF")];
const FLUSH_TYPE: &[Arg] = &[token("async", "ASYNC"), token("sync", "SYNC")];
/// FLUSHALL's and FLUSHDB's modes, with the versions that added them.
const FLUSH_MODES: &[Arg] = &[
    Arg {
        since: Some("4.0.0"),
        ..token("async", "ASYNC")
    },
    Arg {
        since: Some("6.2.0"),
        ..token("sync", "SYNC")
    },
];
const FLUSH_HISTORY: &[(&str, &str)] = &[
    ("4.0.0", "Added the `ASYNC` flushing mode modifier."),
    ("6.2.0", "Added the `SYNC` flushing mode modifier."),
];
const ADMIN_ACL: &[&str] = &["@admin", "@slow", "@dangerous"];

macro_rules! spec {
    ($name:expr, $cmd:ident, $arity:expr, $flags:expr, $acl:expr, $group:expr, $since:expr, $summary:expr, $cx:expr, $args:expr) => {
        $crate::spec::Spec {
            name: $name,
            cmd: $crate::spec::Cmd::$cmd,
            arity: $arity,
            flags: $flags,
            acl: $acl,
            keys: &[],
            channels: $crate::spec::Channels::None,
            tips: &[],
            redact: $crate::spec::Redact::None,
            group: $group,
            since: $since,
            summary: $summary,
            complexity: $cx,
            history: &[],
            deprecated: None,
            args: $args,
            subcommands: &[],
        }
    };
}

macro_rules! container {
    ($name:expr, $cmd:ident, $group:expr, $since:expr, $summary:expr, $subs:expr) => {
        container!($name, $cmd, -2, $group, $since, $summary, $subs)
    };
    ($name:expr, $cmd:ident, $arity:expr, $group:expr, $since:expr, $summary:expr, $subs:expr) => {
        $crate::spec::Spec {
            name: $name,
            cmd: $crate::spec::Cmd::$cmd,
            arity: $arity,
            flags: $crate::spec::Flags(0),
            acl: &["@slow"],
            keys: &[],
            channels: $crate::spec::Channels::None,
            tips: &[],
            redact: $crate::spec::Redact::None,
            group: $group,
            since: $since,
            summary: $summary,
            complexity: "Depends on subcommand.",
            history: &[],
            deprecated: None,
            args: &[],
            subcommands: $subs,
        }
    };
}

mod acl;
mod cluster;
mod connection;
mod keyspace;
mod pubsub;
mod server;
mod streams;
mod transactions;
mod webhook;

/// The families' tables.
static FAMILIES: &[&[Spec]] = &[
    pubsub::COMMANDS,
    connection::COMMANDS,
    transactions::COMMANDS,
    server::COMMANDS,
    acl::COMMANDS,
    keyspace::COMMANDS,
    streams::COMMANDS,
    cluster::COMMANDS,
    webhook::COMMANDS,
];

/// Top-level commands by the first letter of their name (`a`..`z`), so a lookup compares
/// the request's name with at most a handful of names of the same length and letter.
fn by_letter() -> &'static [Vec<&'static Spec>; 26] {
    static TABLE: OnceLock<[Vec<&'static Spec>; 26]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t: [Vec<&'static Spec>; 26] = Default::default();
        for c in commands() {
            t[(c.name.as_bytes()[0] - b'a') as usize].push(c);
        }
        t
    })
}

/// Looks a command up by name, ignoring case. Runs for every request.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    let first = name.first()?.to_ascii_lowercase();
    if !first.is_ascii_lowercase() {
        return None;
    }
    by_letter()[(first - b'a') as usize]
        .iter()
        .find(|c| c.name.len() == name.len() && c.name.as_bytes().eq_ignore_ascii_case(name))
        .copied()
}

/// Every top-level command.
pub fn commands() -> impl Iterator<Item = &'static Spec> {
    FAMILIES.iter().flat_map(|f| f.iter())
}

/// Every command and subcommand, for COMMAND COUNT and COMMAND LIST.
pub fn all() -> impl Iterator<Item = &'static Spec> {
    commands().flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()))
}

/// The entry of `cmd`.
pub fn of(cmd: Cmd) -> &'static Spec {
    static BY_CMD: OnceLock<Vec<&'static Spec>> = OnceLock::new();
    BY_CMD.get_or_init(|| {
        let mut v: Vec<Option<&'static Spec>> = vec![None; Cmd::ALL.len()];
        for s in all() {
            v[s.cmd as usize] = Some(s);
        }
        v.into_iter()
            .enumerate()
            .map(|(i, s)| s.unwrap_or_else(|| panic!("{:?} has no table entry", Cmd::ALL[i])))
            .collect()
    })[cmd as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `Cmd` (each has a handler: dispatch matches them exhaustively) has exactly
    /// one table entry, and every entry's `Cmd` is its own.
    #[test]
    fn every_cmd_has_exactly_one_entry() {
        let mut seen = vec![Vec::new(); Cmd::ALL.len()];
        for s in all() {
            seen[s.cmd as usize].push(s.name);
        }
        for (i, names) in seen.iter().enumerate() {
            assert_eq!(names.len(), 1, "{:?} has entries {:?}", Cmd::ALL[i], names);
            assert_eq!(of(Cmd::ALL[i]).cmd, Cmd::ALL[i]);
        }
    }

    #[test]
    fn lookup_ignores_case_and_nothing_else() {
        assert!(lookup(b"PuBlIsH").is_some());
        assert!(lookup(b"\xffpublish").is_none());
        assert!(lookup(b"publishx").is_none());
        assert!(lookup(b"").is_none());
    }

    #[test]
    fn names_are_lower_case_and_subcommands_carry_their_container() {
        for c in commands() {
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            assert!(!c.name.contains('|'));
            for s in c.subcommands {
                assert!(s.name.starts_with(&format!("{}|", c.name)), "{}", s.name);
                assert!(s.subcommands.is_empty());
            }
            assert_eq!(
                lookup(c.name.to_ascii_uppercase().as_bytes()).map(|s| s.name),
                Some(c.name)
            );
        }
    }

    #[test]
    fn key_positions_as_redis_reports_them() {
        let watch = lookup(b"watch").unwrap();
        assert_eq!(watch.legacy_range(), (1, -1, 1));
        let keys = watch.key_positions(&["watch", "a", "b"], false).unwrap();
        assert_eq!(keys.iter().map(|k| k.0).collect::<Vec<_>>(), vec![1, 2]);
        let spublish = lookup(b"spublish").unwrap();
        assert_eq!(spublish.legacy_range(), (1, 1, 1));
        assert!(spublish
            .key_positions(&["spublish", "ch", "m"], false)
            .unwrap()
            .is_empty());
        assert_eq!(spublish.key_positions(&["spublish", "ch", "m"], true).unwrap()[0].0, 1);
        assert_eq!(lookup(b"ssubscribe").unwrap().legacy_range(), (1, -1, 1));
        assert_eq!(lookup(b"publish").unwrap().legacy_range(), (0, 0, 0));
        let usage = lookup(b"memory").unwrap().sub(b"usage").unwrap();
        assert_eq!(usage.legacy_range(), (2, 2, 1));
        // A keyword search and a key count, as stream and script commands use them.
        static XREAD: KeySpec = KeySpec {
            flags: &["RO"],
            begin: Begin::Keyword {
                keyword: "STREAMS",
                startfrom: 1,
            },
            find: Find::Range {
                lastkey: -1,
                step: 1,
                limit: 2,
            },
            notes: None,
        };
        static EVAL: KeySpec = KeySpec {
            flags: &["RW"],
            begin: Begin::Index(2),
            find: Find::Keynum {
                keynumidx: 0,
                firstkey: 1,
                step: 1,
            },
            notes: None,
        };
        let s = Spec {
            keys: std::slice::from_ref(&XREAD),
            ..spec!("x", Time, -1, f![], &[], "", "", "", "", &[])
        };
        let pos = |s: &Spec, a: &[&str]| {
            s.key_positions(a, false)
                .map(|v| v.iter().map(|k| k.0).collect::<Vec<_>>())
        };
        assert_eq!(
            pos(&s, &["xread", "COUNT", "2", "streams", "a", "b", "0", "0"]),
            Ok(vec![4, 5])
        );
        assert!(s.movable_keys());
        let s = Spec {
            keys: std::slice::from_ref(&EVAL),
            ..spec!("x", Time, -1, f![], &[], "", "", "", "", &[])
        };
        assert_eq!(pos(&s, &["eval", "s", "2", "k1", "k2", "v"]), Ok(vec![3, 4]));
        assert_eq!(pos(&s, &["eval", "s", "3", "k1"]), Err(BadKeyArgs));
    }

    /// Every key argument names a key spec of its entry, and the stream and generic key
    /// rows give Redis's legacy ranges and key positions.
    #[test]
    fn key_arguments_and_stream_key_specs() {
        fn walk(args: &[Arg], specs: usize, name: &str) {
            for a in args {
                if a.kind == "key" {
                    assert!((a.key_spec as usize) < specs, "{name} {}", a.name);
                }
                walk(a.subargs, specs, name);
            }
        }
        for s in all() {
            walk(s.args, s.keys.len(), s.name);
        }
        let pos = |cmd: &[u8], sub: Option<&[u8]>, a: &[&str]| {
            let s = lookup(cmd).unwrap();
            let s = sub.map_or(s, |x| s.sub(x).unwrap());
            s.key_positions(a, false)
                .map(|v| v.iter().map(|k| k.0).collect::<Vec<_>>())
        };
        assert_eq!(
            pos(b"xread", None, &["xread", "count", "1", "streams", "a", "b", "0", "0"]),
            Ok(vec![4, 5])
        );
        assert_eq!(
            pos(
                b"xreadgroup",
                None,
                &["xreadgroup", "group", "g", "c", "streams", "a", "0"]
            ),
            Ok(vec![5])
        );
        assert_eq!(
            pos(b"xgroup", Some(b"create"), &["xgroup", "create", "k", "g", "$"]),
            Ok(vec![2])
        );
        assert_eq!(pos(b"copy", None, &["copy", "a", "b"]), Ok(vec![1, 2]));
        assert!(lookup(b"xread").unwrap().movable_keys());
        assert!(lookup(b"xreadgroup").unwrap().movable_keys());
        assert!(!lookup(b"xadd").unwrap().movable_keys());
        assert_eq!(lookup(b"del").unwrap().legacy_range(), (1, -1, 1));
        assert_eq!(lookup(b"rename").unwrap().legacy_range(), (1, 2, 1));
        assert_eq!(lookup(b"xread").unwrap().legacy_range(), (0, 0, 0));
        let rename = lookup(b"rename").unwrap();
        assert_eq!(rename.args[1].key_spec, 1);
        assert_eq!(rename.keys[1].flags, ["OW", "update"]);
        // Redis 7.2 has no complexity for XREAD; SCAN and RANDOMKEY touch arbitrary keys.
        assert!(lookup(b"xread").unwrap().complexity.is_empty());
        assert!(lookup(b"scan").unwrap().has(Flags::TOUCHES_ARBITRARY_KEYS));
    }

    #[test]
    fn secrets_are_redacted_as_redis_does() {
        let words = |w: &[&str]| {
            w.iter()
                .map(|x| Bytes::copy_from_slice(x.as_bytes()))
                .collect::<Vec<_>>()
        };
        let show = |cmd: &[u8], sub: Option<&[u8]>, w: &[&str]| {
            let spec = lookup(cmd).unwrap();
            let spec = sub.map_or(spec, |s| spec.sub(s).unwrap());
            let a = words(w);
            spec.redacted(&a)
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            show(b"auth", None, &["AUTH", "u", "p"]),
            ["AUTH", "(redacted)", "(redacted)"]
        );
        assert_eq!(show(b"auth", None, &["AUTH", "a", "b", "c"]), ["AUTH", "a", "b", "c"]);
        assert_eq!(
            show(b"hello", None, &["HELLO", "3", "AUTH", "u", "p", "SETNAME", "n"]),
            ["HELLO", "3", "AUTH", "(redacted)", "(redacted)", "SETNAME", "n"]
        );
        assert_eq!(
            show(b"acl", Some(b"setuser"), &["ACL", "SETUSER", "u", ">pw"]),
            ["ACL", "SETUSER", "(redacted)", "(redacted)"]
        );
        assert_eq!(
            show(
                b"config",
                Some(b"set"),
                &["CONFIG", "SET", "maxclients", "5", "REQUIREPASS", "pw"]
            ),
            ["CONFIG", "SET", "maxclients", "5", "REQUIREPASS", "(redacted)"]
        );
        assert_eq!(show(b"ping", None, &["PING", "x"]), ["PING", "x"]);
        assert_eq!(
            show(
                b"webhook",
                Some(b"add"),
                &["WEBHOOK", "ADD", "h", "http://x/", "*", "RETRIES", "1", "secret", "s3"]
            ),
            [
                "WEBHOOK",
                "ADD",
                "h",
                "http://x/",
                "*",
                "RETRIES",
                "1",
                "secret",
                "(redacted)"
            ]
        );
    }

    /// The cluster rows as Redis 7.2 has them: flags, ACL categories derived from the flags
    /// (`setImplicitACLCategories`), deprecations.
    #[test]
    fn cluster_rows_as_redis() {
        let cluster = lookup(b"cluster").unwrap();
        // Redis 7.2's 28 subcommands and fanout's RELOAD.
        assert_eq!(cluster.subcommands.len(), 29);
        let addslots = cluster.sub(b"ADDSLOTS").unwrap();
        assert_eq!(addslots.flags.names(false), ["admin", "stale", "no_async_loading"]);
        assert_eq!(addslots.acl, ["@admin", "@slow", "@dangerous"]);
        let slots = cluster.sub(b"slots").unwrap();
        assert_eq!(slots.flags.names(false), ["loading", "stale"]);
        assert_eq!(slots.acl, ["@slow"]);
        assert_eq!(slots.deprecated, Some(("7.0.0", "`CLUSTER SHARDS`")));
        assert_eq!(
            cluster.sub(b"reset").unwrap().flags.names(false),
            ["admin", "noscript", "stale"]
        );
        assert_eq!(
            lookup(b"readonly").unwrap().flags.names(false),
            ["loading", "stale", "fast"]
        );
        assert_eq!(lookup(b"asking").unwrap().acl, ["@fast", "@connection"]);
        for s in std::iter::once(cluster).chain(cluster.subcommands) {
            assert_eq!(s.has(Flags::ADMIN), s.acl.contains(&"@dangerous"), "{}", s.name);
            assert_eq!(s.has(Flags::ADMIN), s.acl.contains(&"@admin"), "{}", s.name);
            assert_eq!(s.has(Flags::FAST), !s.acl.contains(&"@slow"), "{}", s.name);
        }
    }

    #[test]
    fn flags_print_in_redis_order() {
        let exec = lookup(b"exec").unwrap();
        assert_eq!(
            exec.flags.names(false),
            ["noscript", "loading", "stale", "skip_slowlog"]
        );
        let quit = lookup(b"quit").unwrap();
        assert!(quit.has(Flags::SUBSCRIBED_OK));
        let not_queued: Vec<&str> = all().filter(|s| s.has(Flags::NOT_QUEUED)).map(|s| s.name).collect();
        assert_eq!(not_queued.len(), 6, "{not_queued:?}");
        assert!(!quit.flags.names(false).iter().any(|n| n.contains("subscribed")));
        // Redis hides these on purpose.
        let publish = lookup(b"publish").unwrap();
        assert!(publish.has(Flags::MAY_REPLICATE));
        assert_eq!(publish.flags.names(false), ["pubsub", "loading", "stale", "fast"]);
        assert_eq!(
            f![READONLY, ALLOW_BUSY].names(true),
            ["readonly", "movablekeys", "allow_busy"]
        );
    }
}
