//! Configuration in Redis's shape.
//!
//! One table, [`DIRECTIVES`], drives everything: the command line (`--port 7000`), the
//! optional redis.conf-style file (`port 7000`), the environment (`FANOUT_PORT=7000`),
//! `fanout --help`, and CONFIG GET/SET. Precedence is command line, environment, file,
//! default. Values are validated by one function, [`Settings::set`], whichever way they
//! arrive, so a bad value is refused the same way at start-up and at CONFIG SET.
//!
//! Settings read on hot paths (limits checked per read or per queued frame) are atomics,
//! so reading them never takes a lock.

use crate::sync::LockExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;

pub mod notify;
pub mod units;

use units::parse_memory;

/// A configuration directive: its Redis name, default, whether CONFIG SET may change it,
/// and the one-line help `fanout --help` prints.
pub struct Directive {
    pub name: &'static str,
    pub default: &'static str,
    pub mutable: bool,
    /// Its value is a list of words (`--bind 127.0.0.1 ::1`); `fanout --help` shows it so.
    /// (On the command line every directive takes the words up to the next `--word`.)
    pub multi: bool,
    pub help: &'static str,
}

const fn d(name: &'static str, default: &'static str, mutable: bool, help: &'static str) -> Directive {
    Directive {
        name,
        default,
        mutable,
        multi: false,
        help,
    }
}

pub const DIRECTIVES: &[Directive] = &[
    d("port", "6379", false, "TCP port to listen on (0 picks a free port)"),
    Directive {
        name: "bind",
        default: "127.0.0.1",
        mutable: false,
        multi: true,
        help: "addresses to listen on, several allowed (IPv4 or IPv6)",
    },
    d("maxclients", "10000", true, "most connections served at once"),
    d(
        "slowlog-log-slower-than",
        "10000",
        true,
        "log commands slower than this many microseconds in SLOWLOG (negative: off, 0: all)",
    ),
    d("slowlog-max-len", "128", true, "entries SLOWLOG keeps"),
    d(
        "latency-tracking",
        "yes",
        true,
        "per-command latency histograms for INFO latencystats and LATENCY HISTOGRAM",
    ),
    d(
        "latency-tracking-info-percentiles",
        "50 99 99.9",
        true,
        "the percentiles INFO latencystats shows",
    ),
    d(
        "latency-monitor-threshold",
        "0",
        true,
        "record LATENCY events of at least this many milliseconds (0: off)",
    ),
    d("loglevel", "notice", true, "debug, verbose, notice or warning"),
    d("log-format", "text", false, "text or json"),
    d(
        "proto-max-bulk-len",
        "536870912",
        true,
        "largest bulk string in a request (bytes, or 512mb)",
    ),
    d(
        "client-query-buffer-limit",
        "1073741824",
        true,
        "largest unparsed input kept for one client",
    ),
    Directive {
        name: "client-output-buffer-limit",
        default: "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        mutable: true,
        multi: true,
        help: "output limits per class: <class> <hard> <soft> <soft-seconds> ...",
    },
    d(
        "pubsub-overflow-policy",
        "disconnect",
        true,
        "over the pubsub hard limit: disconnect, drop-newest or drop-oldest",
    ),
    d("requirepass", "", true, "password for the default user (empty: none)"),
    d(
        "aclfile",
        "",
        false,
        "file of ACL users ('user <name> <rules>' lines): loaded at start, ACL LOAD, ACL SAVE",
    ),
    d(
        "acl-pubsub-default",
        "resetchannels",
        true,
        "channels of new ACL users: resetchannels (none) or allchannels",
    ),
    d("acllog-max-len", "128", true, "most entries ACL LOG keeps"),
    d(
        "timeout",
        "0",
        true,
        "close idle non-subscribed clients after N seconds (0: never)",
    ),
    d(
        "tcp-keepalive",
        "300",
        true,
        "TCP keepalive interval in seconds (0: off)",
    ),
    d("tcp-backlog", "511", false, "listen backlog"),
    d(
        "threads",
        "0",
        false,
        "worker threads serving connections (0: one per core, or 1 on two cores or fewer; 1: one event loop)",
    ),
    d(
        "databases",
        "16",
        false,
        "SELECT accepts 0..databases-1 (pub/sub ignores the database)",
    ),
    d(
        "shutdown-timeout",
        "10",
        true,
        "seconds to let queued output drain on SIGINT/SIGTERM",
    ),
    d(
        "protected-mode",
        "yes",
        true,
        "with no password set, serve only loopback and Unix-socket clients",
    ),
    d(
        "max-subscriptions-per-client",
        "0",
        true,
        "most channels + patterns + shard channels per connection (0: no limit)",
    ),
    d(
        "unixsocket",
        "",
        false,
        "also listen on this Unix socket path (empty: none)",
    ),
    d(
        "unixsocketperm",
        "",
        false,
        "permissions of the Unix socket, octal (e.g. 700; empty: umask)",
    ),
    d(
        "tls-port",
        "0",
        false,
        "TCP port for TLS connections on the bind addresses (0: no TLS)",
    ),
    d("tls-cert-file", "", false, "server certificate (chain), PEM"),
    d("tls-key-file", "", false, "private key of tls-cert-file, PEM"),
    d(
        "tls-ca-cert-file",
        "",
        false,
        "CA certificate(s), PEM, that client certificates are verified against",
    ),
    d(
        "tls-auth-clients",
        "yes",
        false,
        "client certificates over TLS: yes (required), optional (verified if sent) or no",
    ),
    d(
        "metrics-addr",
        "",
        false,
        "HOST:PORT to serve Prometheus metrics on at GET /metrics (empty: off)",
    ),
    d(
        "http-port",
        "0",
        false,
        "TCP port of the HTTP listener: SSE, WebSocket, HTTP publish, /metrics and the dashboard (0: off)",
    ),
    Directive {
        name: "http-bind",
        default: "",
        mutable: false,
        multi: true,
        help: "addresses the HTTP listener binds (empty: the same as bind)",
    },
    d(
        "http-tls",
        "no",
        false,
        "serve HTTPS on http-port with tls-cert-file and tls-key-file",
    ),
    Directive {
        name: "http-cors-origins",
        default: "",
        mutable: true,
        multi: true,
        help: "origins browsers may call the HTTP API from (e.g. https://app.example.com); empty: none, * allows any",
    },
    d(
        "http-max-body-size",
        "8mb",
        true,
        "largest HTTP request body and WebSocket message accepted",
    ),
    d(
        "http-sse-keepalive",
        "15",
        true,
        "seconds between keep-alive comments on an idle SSE stream (0: none)",
    ),
    // Accepted so that redis.conf files, tools and test runners that read or set them keep
    // working; fanout keeps no keys, so they have nothing to act on.
    Directive {
        name: "save",
        default: "",
        mutable: true,
        multi: true,
        help: "compatibility: fanout persists nothing; accepted and ignored",
    },
    d(
        "appendonly",
        "no",
        true,
        "keep streams in an append-only file (Redis 7's multi-part AOF) and load it at start",
    ),
    d(
        "appendfsync",
        "everysec",
        true,
        "always (reply after fsync, one fsync per batch), everysec (fsync each second), no",
    ),
    d("dir", ".", false, "working directory: the append-only files go in DIR/APPENDDIRNAME"),
    d("appendfilename", "appendonly.aof", false, "base name of the append-only files"),
    d("appenddirname", "appendonlydir", false, "folder of the append-only files, inside dir"),
    d(
        "aof-load-truncated",
        "yes",
        true,
        "yes: load an AOF whose last command was cut short, dropping it; no: refuse to start",
    ),
    d(
        "aof-use-rdb-preamble",
        "no",
        true,
        "compatibility: fanout has no RDB, its base files are always in AOF format",
    ),
    d(
        "auto-aof-rewrite-percentage",
        "100",
        true,
        "rewrite the AOF when it grew by this percent since the last rewrite (0: never)",
    ),
    d(
        "auto-aof-rewrite-min-size",
        "64mb",
        true,
        "no automatic rewrite below this AOF size",
    ),
    d(
        "enable-debug-command",
        "no",
        false,
        "allow DEBUG (LOADAOF...): no, yes, or local (loopback and unix socket clients only)",
    ),
    d(
        "notify-keyspace-events",
        "",
        true,
        "keyspace notifications to publish, Redis's letters (K E g t x e d n A; empty: none)",
    ),
    d(
        "stream-node-max-entries",
        "100",
        true,
        "entries per packed stream node (0: no limit); shapes approximate (~) trimming",
    ),
    d(
        "stream-node-max-bytes",
        "4096",
        true,
        "bytes per packed stream node (0: no limit)",
    ),
    d(
        "cluster-enabled",
        "no",
        false,
        "yes: serve Redis Cluster clients (CLUSTER SLOTS, MOVED) from the topology in cluster-config-file",
    ),
    d(
        "cluster-config-file",
        "",
        false,
        "the topology file, the same on every node: 'shard NAME slots 0-5460 primary HOST:PORT [replica HOST:PORT]'",
    ),
    d(
        "cluster-announce-ip",
        "",
        false,
        "the host this node is listed under in the topology file (default: the first bind address)",
    ),
    d(
        "cluster-announce-port",
        "0",
        false,
        "the port this node is listed under in the topology file (0: the port it listens on)",
    ),
    d(
        "cluster-announce-hostname",
        "",
        false,
        "another name this node may be listed under in the topology file",
    ),
    d(
        "cluster-node-timeout",
        "15000",
        true,
        "milliseconds without a heartbeat on the bus before a node is reported failed",
    ),
    d(
        "cluster-require-full-coverage",
        "yes",
        true,
        "yes: cluster_state is fail while a shard's primary is failed, and keyed commands get CLUSTERDOWN",
    ),
    d(
        "cluster-allow-reads-when-down",
        "no",
        true,
        "serve read commands on this node's slots while cluster_state is fail",
    ),
    d(
        "cluster-allow-pubsubshard-when-down",
        "yes",
        true,
        "serve SSUBSCRIBE/SPUBLISH on this node's slots while cluster_state is fail",
    ),
    d(
        "cluster-bus",
        "",
        false,
        "NATS servers linking the nodes: nats://HOST:PORT[,tls://user:pass@HOST:PORT...] (empty: no bus)",
    ),
    d("cluster-bus-user", "", false, "NATS user name (or give it in the URL)"),
    d("cluster-bus-password", "", false, "NATS password"),
    d("cluster-bus-token", "", false, "NATS authentication token"),
    d(
        "cluster-bus-tls-ca-cert-file",
        "",
        false,
        "CA certificate (PEM) that NATS servers' certificates must chain to; setting any cluster-bus-tls-* turns TLS on",
    ),
    d(
        "cluster-bus-tls-cert-file",
        "",
        false,
        "client certificate (PEM) presented to the NATS servers",
    ),
    d("cluster-bus-tls-key-file", "", false, "its private key (PEM)"),
    d(
        "cluster-bus-subject-prefix",
        "fanout",
        false,
        "first token of every NATS subject fanout uses; nodes of one cluster share it, other clusters pick their own",
    ),
    d(
        "maxmemory",
        "0",
        true,
        "refuse writes that would add data (-OOM) while used_memory is above this (0: no limit)",
    ),
    d(
        "maxmemory-policy",
        "noeviction",
        true,
        "what to do at maxmemory: noeviction (fanout evicts nothing; other policies are accepted and act as noeviction)",
    ),
];

pub fn directive(name: &str) -> Option<&'static Directive> {
    DIRECTIVES.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

/// What to do with a message for a subscriber whose output buffer is at its hard limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverflowPolicy {
    /// Close the connection, as Redis does.
    Disconnect = 0,
    /// Keep the connection and discard the message that does not fit.
    DropNewest = 1,
    /// Keep the connection and discard queued messages, oldest first, until it fits.
    DropOldest = 2,
}

impl OverflowPolicy {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "disconnect" => Some(Self::Disconnect),
            "drop-newest" => Some(Self::DropNewest),
            "drop-oldest" => Some(Self::DropOldest),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Disconnect => "disconnect",
            Self::DropNewest => "drop-newest",
            Self::DropOldest => "drop-oldest",
        }
    }
    pub fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::DropNewest,
            2 => Self::DropOldest,
            _ => Self::Disconnect,
        }
    }
}

/// One class of `client-output-buffer-limit`.
#[derive(Default)]
pub struct BufferLimit {
    pub hard: AtomicU64,
    pub soft: AtomicU64,
    pub soft_seconds: AtomicU64,
}

impl BufferLimit {
    fn store(&self, v: [u64; 3]) {
        self.hard.store(v[0], Relaxed);
        self.soft.store(v[1], Relaxed);
        self.soft_seconds.store(v[2], Relaxed);
    }
    fn show(&self) -> String {
        format!(
            "{} {} {}",
            self.hard.load(Relaxed),
            self.soft.load(Relaxed),
            self.soft_seconds.load(Relaxed)
        )
    }
}

/// `appendfsync`: when the append-only file is flushed to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    No = 0,
    Everysec = 1,
    Always = 2,
}

/// The live configuration. Shared by every connection; changed by CONFIG SET.
pub struct Settings {
    pub maxclients: AtomicU64,
    pub proto_max_bulk_len: AtomicU64,
    pub query_buffer_limit: AtomicU64,
    pub obuf_normal: BufferLimit,
    pub obuf_replica: BufferLimit,
    pub obuf_pubsub: BufferLimit,
    pub overflow_policy: AtomicU8,
    pub timeout: AtomicU64,
    pub tcp_keepalive: AtomicU64,
    pub shutdown_timeout: AtomicU64,
    pub protected_mode: AtomicBool,
    pub max_subscriptions: AtomicU64,
    /// `slowlog-log-slower-than` in microseconds; negative: the slow log is off.
    pub slowlog_slower_than: AtomicI64,
    pub slowlog_max_len: AtomicU64,
    /// `latency-monitor-threshold` in milliseconds; 0: the latency monitor is off.
    pub latency_threshold_ms: AtomicU64,
    /// `latency-tracking`: per-command latency histograms (INFO latencystats, LATENCY
    /// HISTOGRAM).
    pub latency_tracking: AtomicBool,
    /// `notify-keyspace-events` as [`notify`] bits.
    pub notify_flags: AtomicU32,
    pub stream_node_max_entries: AtomicU64,
    pub stream_node_max_bytes: AtomicU64,
    /// `maxmemory` in bytes (0: no limit).
    pub maxmemory: AtomicU64,
    /// `appendonly` as configured (the AOF's own state says whether it is running).
    pub appendonly: AtomicBool,
    /// `appendfsync` as a [`Fsync`].
    pub appendfsync: AtomicU8,
    /// Everything else, as the normalised text CONFIG GET shows.
    text: Mutex<BTreeMap<&'static str, String>>,
    requirepass: Mutex<Option<Vec<u8>>>,
}

impl Default for Settings {
    fn default() -> Self {
        let s = Settings {
            maxclients: AtomicU64::new(0),
            proto_max_bulk_len: AtomicU64::new(0),
            query_buffer_limit: AtomicU64::new(0),
            obuf_normal: BufferLimit::default(),
            obuf_replica: BufferLimit::default(),
            obuf_pubsub: BufferLimit::default(),
            overflow_policy: AtomicU8::new(0),
            timeout: AtomicU64::new(0),
            tcp_keepalive: AtomicU64::new(0),
            shutdown_timeout: AtomicU64::new(0),
            protected_mode: AtomicBool::new(true),
            max_subscriptions: AtomicU64::new(0),
            slowlog_slower_than: AtomicI64::new(0),
            slowlog_max_len: AtomicU64::new(0),
            latency_threshold_ms: AtomicU64::new(0),
            latency_tracking: AtomicBool::new(true),
            notify_flags: AtomicU32::new(0),
            stream_node_max_entries: AtomicU64::new(100),
            stream_node_max_bytes: AtomicU64::new(4096),
            maxmemory: AtomicU64::new(0),
            appendonly: AtomicBool::new(false),
            appendfsync: AtomicU8::new(Fsync::Everysec as u8),
            text: Mutex::new(BTreeMap::new()),
            requirepass: Mutex::new(None),
        };
        for d in DIRECTIVES {
            s.set(d.name, d.default).expect("defaults are valid");
        }
        s
    }
}

fn parse_yes_no(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

/// `latency-tracking-info-percentiles`: percentiles between 0 and 100, space separated.
pub fn parse_percentiles(v: &str) -> Result<Vec<f64>, String> {
    // Redis's two texts: a word that is not a number, a number out of range.
    v.split_ascii_whitespace()
        .map(|w| match w.parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
            Ok(_) => Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".to_string()),
            Err(_) => Err("Invalid latency-tracking-info-percentiles parameters".to_string()),
        })
        .collect()
}

fn parse_u64(v: &str) -> Result<u64, String> {
    v.parse::<u64>()
        .map_err(|_| "argument couldn't be parsed into an integer".to_string())
}

/// Parses `client-output-buffer-limit`: groups of `<class> <hard> <soft> <seconds>`.
/// Checked in full before anything is applied, as Redis does.
fn parse_obuf(v: &str) -> Result<Vec<(usize, [u64; 3])>, String> {
    let words: Vec<&str> = v.split_ascii_whitespace().collect();
    if !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut out = Vec::new();
    for g in words.chunks(4) {
        let class = match g[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "replica" | "slave" => 1,
            "pubsub" => 2,
            _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
        };
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.".to_string();
        let hard = parse_memory(g[1]).ok_or_else(bad)?;
        let soft = parse_memory(g[2]).ok_or_else(bad)?;
        let secs = g[3].parse::<u64>().map_err(|_| bad())?;
        out.push((class, [hard, soft, secs]));
    }
    Ok(out)
}

impl Settings {
    /// Validates and applies one directive. The error is the reason text Redis would give.
    pub fn set(&self, name: &str, value: &str) -> Result<(), String> {
        let d = directive(name).ok_or_else(|| format!("Unknown option '{name}'"))?;
        let normalised = match d.name {
            "port" | "tcp-backlog" | "databases" | "threads" => {
                let n = parse_u64(value)?;
                if d.name == "port" && n > 65535 {
                    return Err("argument must be between 0 and 65535 inclusive".into());
                }
                if d.name == "databases" && n == 0 {
                    return Err("argument must be between 1 and 2147483647 inclusive".into());
                }
                n.to_string()
            }
            "bind" => {
                let words: Vec<&str> = value.split_ascii_whitespace().collect();
                if words.is_empty() {
                    return Err("bind needs at least one address".into());
                }
                words.join(" ")
            }
            "slowlog-log-slower-than" => {
                let n: i64 = value
                    .parse()
                    .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
                self.slowlog_slower_than.store(n, Relaxed);
                n.to_string()
            }
            "slowlog-max-len" => {
                let n = parse_u64(value)?;
                self.slowlog_max_len.store(n, Relaxed);
                n.to_string()
            }
            "latency-monitor-threshold" => {
                let n = parse_u64(value)?;
                self.latency_threshold_ms.store(n, Relaxed);
                n.to_string()
            }
            "latency-tracking" => {
                let on = parse_yes_no(value)?;
                self.latency_tracking.store(on, Relaxed);
                if on { "yes" } else { "no" }.to_string()
            }
            "latency-tracking-info-percentiles" => {
                let ps = parse_percentiles(value)?;
                ps.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" ")
            }
            "maxclients" => {
                let n = parse_u64(value)?;
                if n == 0 {
                    return Err("argument must be between 1 and 4294967295 inclusive".into());
                }
                self.maxclients.store(n, Relaxed);
                n.to_string()
            }
            "timeout" | "tcp-keepalive" | "shutdown-timeout" => {
                let n = parse_u64(value)?;
                match d.name {
                    "timeout" => self.timeout.store(n, Relaxed),
                    "tcp-keepalive" => self.tcp_keepalive.store(n, Relaxed),
                    _ => self.shutdown_timeout.store(n, Relaxed),
                }
                n.to_string()
            }
            "proto-max-bulk-len" | "client-query-buffer-limit" => {
                let n = parse_memory(value).ok_or("argument must be a memory value")?;
                if n < 1024 * 1024 && d.name == "client-query-buffer-limit" {
                    return Err("argument must be a memory value of at least 1mb".into());
                }
                if n < 1024 * 1024 && d.name == "proto-max-bulk-len" {
                    return Err("argument must be a memory value of at least 1mb".into());
                }
                if d.name == "proto-max-bulk-len" {
                    self.proto_max_bulk_len.store(n, Relaxed);
                } else {
                    self.query_buffer_limit.store(n, Relaxed);
                }
                n.to_string()
            }
            "client-output-buffer-limit" => {
                for (class, v) in parse_obuf(value)? {
                    [&self.obuf_normal, &self.obuf_replica, &self.obuf_pubsub][class].store(v);
                }
                format!(
                    "normal {} slave {} pubsub {}",
                    self.obuf_normal.show(),
                    self.obuf_replica.show(),
                    self.obuf_pubsub.show()
                )
            }
            "pubsub-overflow-policy" => {
                let p = OverflowPolicy::parse(value)
                    .ok_or("argument must be one of the following: disconnect, drop-newest, drop-oldest")?;
                self.overflow_policy.store(p as u8, Relaxed);
                p.name().to_string()
            }
            "loglevel" => {
                let v = value.to_ascii_lowercase();
                if !matches!(v.as_str(), "debug" | "verbose" | "notice" | "warning" | "nothing") {
                    return Err(
                        "argument(s) must be one of the following: debug, verbose, notice, warning, nothing".into(),
                    );
                }
                v
            }
            "log-format" => {
                let v = value.to_ascii_lowercase();
                if v != "text" && v != "json" {
                    return Err("argument must be text or json".into());
                }
                v
            }
            "protected-mode" => {
                let on = parse_yes_no(value)?;
                self.protected_mode.store(on, Relaxed);
                if on { "yes" } else { "no" }.to_string()
            }
            "max-subscriptions-per-client" => {
                let n = parse_u64(value)?;
                self.max_subscriptions.store(n, Relaxed);
                n.to_string()
            }
            "unixsocketperm" => {
                if !value.is_empty() && u32::from_str_radix(value, 8).is_err() {
                    return Err("argument must be an octal number such as 700".into());
                }
                value.to_string()
            }
            "tls-port" => {
                let n = parse_u64(value)?;
                if n > 65535 {
                    return Err("argument must be between 0 and 65535 inclusive".into());
                }
                n.to_string()
            }
            "tls-auth-clients" => {
                let v = value.to_ascii_lowercase();
                if !matches!(v.as_str(), "yes" | "no" | "optional") {
                    return Err("argument(s) must be one of the following: yes, no, optional".into());
                }
                v
            }
            "http-port" => {
                let n = parse_u64(value)?;
                if n > 65535 {
                    return Err("argument must be between 0 and 65535 inclusive".into());
                }
                n.to_string()
            }
            "http-bind" | "http-cors-origins" => value.split_ascii_whitespace().collect::<Vec<_>>().join(" "),
            "http-tls" => if parse_yes_no(value)? { "yes" } else { "no" }.to_string(),
            "http-max-body-size" => parse_memory(value)
                .ok_or("argument must be a memory value")?
                .to_string(),
            "http-sse-keepalive" => parse_u64(value)?.to_string(),
            "metrics-addr" => {
                let v = value.trim();
                if !v.is_empty() && !valid_addr(v) {
                    return Err("argument must be HOST:PORT, or empty to turn metrics off".into());
                }
                v.to_string()
            }
            "requirepass" => {
                *self.requirepass.locked() = (!value.is_empty()).then(|| value.as_bytes().to_vec());
                value.to_string()
            }
            "acl-pubsub-default" => {
                let v = value.to_ascii_lowercase();
                if v != "allchannels" && v != "resetchannels" {
                    return Err("argument(s) must be one of the following: allchannels, resetchannels".into());
                }
                v
            }
            "acllog-max-len" => parse_u64(value)?.to_string(),
            "appendonly" | "aof-load-truncated" | "aof-use-rdb-preamble" => {
                let on = parse_yes_no(value)?;
                if d.name == "appendonly" {
                    self.appendonly.store(on, Relaxed);
                }
                if on { "yes" } else { "no" }.to_string()
            }
            "appendfsync" => {
                let v = value.to_ascii_lowercase();
                let policy = match v.as_str() {
                    "no" => Fsync::No,
                    "everysec" => Fsync::Everysec,
                    "always" => Fsync::Always,
                    _ => return Err("argument(s) must be one of the following: always, everysec, no".into()),
                };
                self.appendfsync.store(policy as u8, Relaxed);
                v
            }
            "auto-aof-rewrite-percentage" => parse_u64(value)?.to_string(),
            "auto-aof-rewrite-min-size" => parse_memory(value)
                .ok_or("argument must be a memory value")?
                .to_string(),
            "cluster-enabled"
            | "cluster-require-full-coverage"
            | "cluster-allow-reads-when-down"
            | "cluster-allow-pubsubshard-when-down" => if parse_yes_no(value)? { "yes" } else { "no" }.to_string(),
            "cluster-announce-port" | "cluster-node-timeout" => {
                let n = parse_u64(value)?;
                if d.name == "cluster-announce-port" && n > 65535 {
                    return Err("argument must be between 0 and 65535 inclusive".into());
                }
                n.to_string()
            }
            "cluster-bus-subject-prefix" => {
                let ok = !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'*' | b'>'));
                if !ok {
                    return Err("argument must be a NATS subject without wildcards or spaces".into());
                }
                value.to_string()
            }
            "enable-debug-command" => {
                let v = value.to_ascii_lowercase();
                if !matches!(v.as_str(), "yes" | "no" | "local") {
                    return Err("argument(s) must be one of the following: no, yes, local".into());
                }
                v
            }
            "notify-keyspace-events" => {
                let flags = notify::parse(value).ok_or("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")?;
                self.notify_flags.store(flags, Relaxed);
                notify::render(flags)
            }
            "stream-node-max-entries" | "stream-node-max-bytes" => {
                let n = if d.name == "stream-node-max-bytes" {
                    parse_memory(value).ok_or("argument must be a memory value")?
                } else {
                    parse_u64(value)?
                };
                if n > i64::MAX as u64 {
                    return Err("argument must be between 0 and 9223372036854775807 inclusive".into());
                }
                let slot = if d.name == "stream-node-max-bytes" {
                    &self.stream_node_max_bytes
                } else {
                    &self.stream_node_max_entries
                };
                slot.store(n, Relaxed);
                n.to_string()
            }
            "maxmemory" => {
                let n = parse_memory(value).ok_or("argument must be a memory value")?;
                self.maxmemory.store(n, Relaxed);
                n.to_string()
            }
            "maxmemory-policy" => {
                let v = value.to_ascii_lowercase();
                const POLICIES: &[&str] = &[
                    "volatile-lru",
                    "volatile-lfu",
                    "volatile-random",
                    "volatile-ttl",
                    "allkeys-lru",
                    "allkeys-lfu",
                    "allkeys-random",
                    "noeviction",
                ];
                if !POLICIES.contains(&v.as_str()) {
                    return Err("argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction".into());
                }
                v
            }
            _ => value.to_string(),
        };
        self.text.locked().insert(d.name, normalised);
        Ok(())
    }

    /// The value CONFIG GET shows.
    pub fn get(&self, name: &str) -> Option<String> {
        let d = directive(name)?;
        self.text.locked().get(d.name).cloned()
    }

    pub fn fsync(&self) -> Fsync {
        match self.appendfsync.load(Relaxed) {
            0 => Fsync::No,
            2 => Fsync::Always,
            _ => Fsync::Everysec,
        }
    }

    /// `appendfsync always`: a write is acknowledged once it is on disk.
    pub fn fsync_always(&self) -> bool {
        self.fsync() == Fsync::Always
    }

    pub fn requirepass(&self) -> Option<Vec<u8>> {
        self.requirepass.locked().clone()
    }

    pub fn overflow_policy(&self) -> OverflowPolicy {
        OverflowPolicy::from_u8(self.overflow_policy.load(Relaxed))
    }

    pub fn port(&self) -> u16 {
        self.get("port").and_then(|p| p.parse().ok()).unwrap_or(6379)
    }

    pub fn binds(&self) -> Vec<String> {
        self.get("bind")
            .unwrap_or_default()
            .split_ascii_whitespace()
            .map(str::to_string)
            .collect()
    }

    pub fn databases(&self) -> u64 {
        self.get("databases").and_then(|p| p.parse().ok()).unwrap_or(16)
    }
}

/// A config file read into `(directive, value)` pairs in file order, and the names of
/// the directives fanout does not know (so the caller can warn about them by name).
pub type ParsedFile = (Vec<(String, String)>, Vec<String>);

/// Reads a redis.conf-style file.
pub fn parse_file(text: &str) -> Result<ParsedFile, String> {
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words = split_config_line(line).ok_or_else(|| format!("line {}: unbalanced quotes", lineno + 1))?;
        let Some((name, rest)) = words.split_first() else {
            continue;
        };
        match directive(name) {
            Some(d) => {
                // `save ""` style empty values are legitimate; a missing value is not.
                if rest.is_empty() && !d.default.is_empty() {
                    return Err(format!("line {}: '{}' needs a value", lineno + 1, name));
                }
                known.push((d.name.to_string(), rest.join(" ")));
            }
            None => unknown.push(name.to_string()),
        }
    }
    Ok((known, unknown))
}

/// Splits a config line into words, honouring double and single quotes.
fn split_config_line(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Some(words);
        };
        let mut w = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            loop {
                match chars.next()? {
                    c if c == first => break,
                    '\\' if first == '"' => w.push(chars.next()?),
                    c => w.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                w.push(c);
                chars.next();
            }
        }
        words.push(w);
    }
}

/// Whether `v` is a `metrics-addr` value: `HOST:PORT` or `[IPv6]:PORT`. The host is
/// resolved when the server binds it.
pub fn valid_addr(v: &str) -> bool {
    if v.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    match v.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && !host.contains(':')
                && !host.contains(char::is_whitespace)
                && port.parse::<u16>().is_ok()
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_normalisation() {
        let s = Settings::default();
        assert_eq!(s.get("maxclients").unwrap(), "10000");
        assert_eq!(
            s.get("client-output-buffer-limit").unwrap(),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        s.set(
            "client-output-buffer-limit",
            "normal 1mb 2mb 60 replica 3mb 4mb 70 pubsub 5mb 6mb 80",
        )
        .unwrap();
        assert_eq!(
            s.get("CLIENT-output-buffer-limit").unwrap(),
            "normal 1048576 2097152 60 slave 3145728 4194304 70 pubsub 5242880 6291456 80"
        );
        assert_eq!(s.obuf_pubsub.hard.load(Relaxed), 5 * 1024 * 1024);
    }

    #[test]
    fn obuf_errors_leave_values_alone() {
        let s = Settings::default();
        assert!(s
            .set("client-output-buffer-limit", "wrong number")
            .unwrap_err()
            .contains("Wrong number"));
        assert!(s
            .set("client-output-buffer-limit", "master 1 1 1")
            .unwrap_err()
            .contains("Invalid client class"));
        assert!(s
            .set("client-output-buffer-limit", "pubsub 10mb 10mb 60s")
            .unwrap_err()
            .contains("soft_seconds"));
        assert!(s
            .set("client-output-buffer-limit", "pubsub 1 1 1 normal 10mbs 1 1")
            .is_err());
        assert_eq!(s.obuf_pubsub.hard.load(Relaxed), 32 * 1024 * 1024);
    }

    #[test]
    fn config_file_lines() {
        let (known, unknown) =
            parse_file("# c\nport 7000\nbind 127.0.0.1 ::1\nrequirepass \"a b\"\nsave \"\"\nnosuch 1\n").unwrap();
        assert_eq!(
            known,
            vec![
                ("port".to_string(), "7000".to_string()),
                ("bind".to_string(), "127.0.0.1 ::1".to_string()),
                ("requirepass".to_string(), "a b".to_string()),
                ("save".to_string(), "".to_string())
            ]
        );
        assert_eq!(unknown, vec!["nosuch".to_string()]);
    }
}
