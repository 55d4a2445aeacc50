//! `fanout-load`: load generator for Redis-protocol pub/sub servers (fanout,
//! redis-server, anything that speaks RESP2 PUBLISH/SUBSCRIBE/PSUBSCRIBE),
//! and for their streams (XADD/XREAD/XREADGROUP/XACK).
//!
//! It talks RESP over plain TCP and does not use the fanout library, so the
//! same binary measures both servers. Every run is bounded (warm-up +
//! `--duration`, setup and drain timeouts), prints a human table on stdout
//! followed by one JSON line with every figure (progress goes to stderr).
//!
//! Scenarios:
//! - `fanout`   S subscribers on one channel, P publishers, payload size,
//!   pipeline depth; publish rate, delivered rate, delivered fraction
//!   (delivered / published*S) and the sum of PUBLISH replies. `--spublish`:
//!   SSUBSCRIBE + SPUBLISH instead of SUBSCRIBE + PUBLISH.
//! - `channels` N channels `ch:{i}`, one subscriber each, held by connections of
//!   `--channels-per-subscriber` channels each (default 1: a connection per
//!   channel; connection c SUBSCRIBEs to channels c*N..c*N+N-1 in one command);
//!   publishers publish to a uniformly random channel among all (pipelined), one
//!   delivery per message.
//! - `patterns` N PSUBSCRIBE patterns (`--patterns`, default 1000) spread over
//!   `--pattern-connections` (default 10; alias `--pattern-conns`); publishers pick
//!   one of K channels (`--pattern-channels`, default 4096) uniformly at random;
//!   channel j matches pattern j % N and no other. `--pattern-shape`: `prefix`
//!   (`p<i>.*`, channels `p<i>.x<k>`), `inner` (default: `bench.*.p<i>`,
//!   `bench.x<k>.p<i>`), `leading` (`*.p<i>`, `x<k>.p<i>`), `infix` (`*:<i>:*`,
//!   `x<k>:<i>:y`), `class` (`room.[0-9]*.<i>`, `room.<digit>x<k>.<i>`), `miss`
//!   (inner's patterns, channels `bench.x<k>.q<i>` that match none: no deliveries,
//!   see `server_cpu_us_per_publish`), `colon` (`bench:<i>:*`, `bench:<i>:x`, the
//!   shape before issue 15); i = j % N, k = j / N (see shapes.rs).
//! - `latency`  open-loop publisher at `--rate` msgs/s; each payload carries
//!   its *intended* send time; p50/p90/p99/p99.9/max in microseconds.
//! - `conns`    N idle subscribers (`c:{i}`); server RSS per connection,
//!   then one message per channel, all must arrive.
//! - `slowsub`  fast subscribers plus one that never reads; fast delivered
//!   rate, server RSS max, and whether the server closed the slow one.
//! - `xadd`     P producers (`--producers`), pipelined `XADD key * f <payload>`
//!   to one stream `bench:s` or `bench:s:{i}` each (`--streams one|per-producer`),
//!   optional `--maxlen N` (`MAXLEN ~ N`); XADD/s (replies counted).
//! - `xgroup`   a stream pre-filled with `--entries` entries (not timed), group
//!   `g` at 0, C consumers looping `XREADGROUP ... COUNT n ... >` + `XACK`
//!   (pipelined with the next read); entries/s consumed and acked, until the
//!   window ends or the stream is drained (then the drain time).
//! - `xwake`    N readers blocked in `XREAD BLOCK 0` on K keys (`bench:w:{i % K}`),
//!   re-issued from the last ID received; an open-loop producer at `--rate`
//!   XADD/s to random keys, payloads stamped with their intended send time;
//!   wake-up latency p50/p90/p99/p99.9/max in microseconds.
//! - `xmem`     E entries added to a fresh server: RSS, `used_memory` and
//!   `MEMORY USAGE` deltas per entry; then all read into a group without XACK:
//!   the same per pending entry.
//! - `restart`  N entries written with `appendonly yes`, then the time from
//!   spawning the server again to its first PING reply (fanout and redis-server
//!   alternately, fresh folders, `--rewrite` for a base file instead of an incr).
//! - `cluster`  global PUBLISH across a cluster's nodes (`--nodes h:p,h:p,..`):
//!   S subscribers per node on one channel, P publishers round-robin over the
//!   nodes or all on the first; publishes/s, deliveries/s over every node,
//!   delivered fraction; with `--bus-ports` the bytes the nodes exchange per
//!   PUBLISH (from `ss -tin`). Runs alone, not under `compare`.
//! - `sse-fanout` S browser-like SSE subscribers (default 1000, each its own TCP
//!   connection doing `GET /v1/sse?channel=bench` on fanout's `--http-port`), P RESP
//!   publishers (`--publishers`, `--pipeline`, 64 B payload) as in `fanout`; every
//!   subscriber's `event: subscribe` arrives before publishing starts; deliveries are
//!   the `event: message` lines read (through hyper's chunked framing, a marker split
//!   across two reads counted once). `--compare`: SSE subscribers, RESP subscribers on
//!   the same fanout (the `fanout` code path) and, with `--redis-port`, RESP
//!   subscribers on redis-server, alternately `--runs` times; medians and the ratios
//!   sse/resp, sse/redis, resp/redis.
//! - `idle-memory` N idle subscribers (default 1000, `idle:{i}` each) of one
//!   `--kind` (resp, sse: `GET /v1/sse`, ws: `GET /v1/ws` + a masked
//!   `{"op":"subscribe"}` frame); server RSS (`--server-pid`) and INFO `used_memory`
//!   before and after, bytes per connection. `--kind all --start-fanout PATH --runs 3`
//!   starts a fresh fanout per measurement (kinds alternate), medians and the ratios
//!   sse/resp and ws/resp.
//! - `webhook` runs an HTTP/1.1 receiver on 127.0.0.1:0 (200, keep-alive, requests
//!   counted), sends `WEBHOOK ADD bench http://127.0.0.1:PORT/hook bench* POLICY
//!   drop-newest` (`--policy`; plus `--webhook-arg` words), publishes to `bench:hook`
//!   at full speed: webhook deliveries/s received, delivered fraction, WEBHOOK INFO's
//!   counters (delivered, dropped, ...); WEBHOOK DEL at the end. drop-newest because
//!   publishers at full speed outrun any receiver: under the disconnect policy the
//!   webhook is suspended once its queue passes MAXQUEUE. A server without the WEBHOOK
//!   command makes it fail with a clear message (exit 1).
//! - `compare <scenario> ...` alternates a scenario between a fanout and a
//!   redis-server (`--fanout-port`, `--redis-port`), medians and ratios
//!   (not the web scenarios above: they run alone).
//!
//! `--server-pid PID` adds server CPU microseconds per delivered message (and per
//! PUBLISH), CPU % and RSS (from /proc/PID/stat and /proc/PID/status), and the
//! server's voluntary and involuntary context switches during the measured window,
//! per second and per delivered message (`server_vcsw_*`, `server_ivcsw_*`, summed
//! over its threads' /proc/PID/task/*/status). The same for this tool itself
//! (`client_cpu_pct`, `client_cpu_us_per_delivered`, `client_vcsw_*`,
//! `client_ivcsw_*`) in every throughput report; `compare` fills both servers'
//! PIDs (started ones, or `--fanout-pid`/`--redis-pid`), so its table and JSON show
//! every figure for both servers.
//!
//! `--client-threads N` (alias `--threads`, default 1): this tool's runtime. 1 is
//! one current-thread runtime for every connection, so the client never takes
//! more than one core from a server on the same machine; every report names it
//! (`client_threads`).
//!
//! Notes: runs with many connections need `ulimit -n` above the connection
//! count for this tool (it raises its soft limit to the hard limit itself
//! with `prlimit` when it can) and for the server (redis-server also needs
//! `--maxclients` above 10000). Use a fresh server per scenario: after a
//! 10,000-pattern run redis-server 7.0 keeps an empty but large pattern
//! table that every later PUBLISH scans (about 10x slower PUBLISH).
//!
//! Example:
//!
//! ```text
//! redis-server --port 7301 --save '' --appendonly no --daemonize no &
//! fanout-load fanout --port 7301 --subscribers 100 --payload 64 --pipeline 32 \
//!     --duration 10 --server-pid $!
//! fanout-load compare fanout --subscribers 100 --pipeline 32 --fanout-port 7300 \
//!     --redis-port 7302 --start-fanout target/release/fanout \
//!     --start-redis /usr/bin/redis-server --runs 3
//! fanout --port 7300 --http-port 7380 &
//! fanout-load sse-fanout --port 7300 --http-port 7380 --server-pid $! \
//!     --subscribers 1000 --publishers 4 --pipeline 32 --compare --runs 3 \
//!     --redis-port 7302 --redis-pid <redis pid>
//! fanout-load idle-memory --kind all --conns 1000 --port 7310 --http-port 7390 \
//!     --start-fanout target/release/fanout --runs 3
//! fanout-load webhook --port 7300 --publishers 1 --pipeline 32 --duration 10
//! ```

mod cluster;
mod compare;
mod latency;
mod net;
mod report;
mod resp;
mod restart;
mod scenarios;
mod shapes;
mod streams;
mod sys;
mod web;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::net::{Pick, SubSpec, Target};
use crate::report::{Report, Val};
use crate::scenarios::{Opts, Plan, Subscribers};
use crate::shapes::Shape;

#[derive(Parser, Debug)]
#[command(
    name = "fanout-load",
    version,
    about = "Pub/sub load generator for Redis-protocol servers",
    after_help = "Web scenarios (fanout's HTTP listener, `--http-port` of the server):\n  \
        sse-fanout   S SSE subscribers (GET /v1/sse?channel=bench, one TCP connection each), P RESP\n               \
        publishers; deliveries/s. --compare: vs RESP subscribers on the same fanout and\n               \
        redis-server (--redis-port), medians and the ratio sse/resp.\n  \
        idle-memory  RSS and INFO used_memory per idle subscriber, --kind resp|sse|ws|all;\n               \
        --kind all --start-fanout PATH: a fresh fanout each, ratios sse/resp, ws/resp.\n  \
        webhook      WEBHOOK ADD to a local HTTP receiver, PUBLISH at full speed; webhook\n               \
        deliveries/s received (fails clearly on a server without WEBHOOK).\n\
        Throughput reports carry, with --server-pid (compare: for both servers), server CPU µs\n\
        per delivery and per PUBLISH and the server's voluntary/involuntary context switches\n\
        (all threads) per second and per delivery; the same for this tool (client_*), and\n\
        client_threads (--client-threads, default 1).\n\
        Issue 15 workloads: `channels --channels-per-subscriber N`, `patterns --pattern-shape\n\
        prefix|inner|leading|infix|class|miss|colon --patterns N --pattern-connections M\n\
        --pattern-channels K`.\n\
        See `fanout-load <scenario> --help` for each scenario's options."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    #[command(flatten)]
    common: Common,
}

/// Options accepted by every scenario (anywhere on the command line).
#[derive(Args, Debug, Clone)]
struct Common {
    /// Server host (loopback only in this project's tests).
    #[arg(long, global = true, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long, global = true, default_value_t = 6379)]
    port: u16,
    /// Measured window in seconds (default 10; slowsub 30).
    #[arg(long, global = true)]
    duration: Option<f64>,
    /// Warm-up before the measured window, seconds.
    #[arg(long, global = true, default_value_t = 1.0)]
    warmup: f64,
    /// Longest drain wait after publishers stop, seconds.
    #[arg(long, global = true, default_value_t = 2.0)]
    grace: f64,
    /// Server PID, for CPU per delivered message and RSS (/proc).
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Timeout of each TCP connect, seconds.
    #[arg(long, global = true, default_value_t = 5.0)]
    connect_timeout: f64,
    /// Timeout for all subscribers to connect and confirm, seconds.
    #[arg(long, global = true, default_value_t = 60.0)]
    setup_timeout: f64,
    /// Connections being opened at the same time during setup.
    #[arg(long, global = true, default_value_t = 256)]
    connect_concurrency: usize,
    /// Client (load tool) threads: 1 runs every connection on one current-thread
    /// runtime; more, a multi-thread runtime with that many workers. Default 1: a
    /// client that eats the cores the server needs makes any server look bad (or
    /// good). Raise it only to show the client is not the limit. `--threads` is an
    /// alias. Every report names it (`client_threads`).
    #[arg(
        long = "client-threads",
        visible_alias = "threads",
        global = true,
        default_value_t = 1
    )]
    client_threads: usize,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    #[command(flatten)]
    Run(Scenario),
    /// Alternate a scenario between a fanout server and a redis-server.
    Compare(CompareArgs),
    /// Restart time with N stream entries in the append-only file, fanout and
    /// redis-server alternately (each started here on a fresh folder).
    Restart(RestartCli),
}

#[derive(Args, Debug, Clone)]
struct RestartCli {
    /// Entries in total.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Spread over this many streams.
    #[arg(long, default_value_t = 1)]
    streams: u64,
    /// Value bytes per entry (one field).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// BGREWRITEAOF before the restart (entries in a base file, not an incr file).
    #[arg(long)]
    rewrite: bool,
    /// Runs per server, alternating.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long)]
    start_fanout: PathBuf,
    #[arg(long)]
    start_redis: PathBuf,
    #[arg(long, default_value_t = 7300)]
    fanout_port: u16,
    #[arg(long, default_value_t = 7302)]
    redis_port: u16,
}

#[derive(Subcommand, Debug, Clone)]
enum Scenario {
    /// S subscribers on one channel, P closed-loop publishers.
    Fanout(FanoutArgs),
    /// N subscribers each on its own channel; publishes to random channels.
    Channels(ChannelsArgs),
    /// N PSUBSCRIBE patterns over a few connections; each publish matches one.
    Patterns(PatternsArgs),
    /// Open-loop fixed-rate publisher; end-to-end latency percentiles.
    Latency(LatencyArgs),
    /// N idle subscriber connections: server memory per connection.
    Conns(ConnsArgs),
    /// Fast subscribers plus one that never reads.
    Slowsub(SlowsubArgs),
    /// P producers pipelining XADD; XADD/s.
    Xadd(XaddArgs),
    /// C consumers of one group: XREADGROUP + XACK entries/s.
    Xgroup(XgroupArgs),
    /// N readers blocked in XREAD; open-loop XADD; wake-up latency.
    Xwake(XwakeArgs),
    /// Server memory per stream entry and per pending entry.
    Xmem(XmemArgs),
    /// Global PUBLISH across the nodes of a cluster, subscribers on every node.
    Cluster(ClusterCli),
    /// S SSE subscribers on fanout's HTTP port, P RESP publishers; --compare: vs RESP
    ///
    /// S browser-like SSE subscribers (one TCP connection each, `GET /v1/sse?channel=`)
    /// on fanout's HTTP port, P RESP publishers; deliveries/s. `--compare`: alternately
    /// against RESP subscribers on the same fanout (and redis-server with
    /// `--redis-port`), medians and the SSE/RESP ratio.
    SseFanout(SseFanoutArgs),
    /// Server memory per idle subscriber: RESP, SSE or WebSocket
    ///
    /// Server RSS (`--server-pid`) and INFO used_memory per idle subscriber, each on its
    /// own channel; `--kind all --start-fanout PATH`: a fresh fanout per measurement,
    /// medians and the ratios sse/resp, ws/resp.
    IdleMemory(IdleMemoryArgs),
    /// WEBHOOK ADD to a local receiver, PUBLISH at full speed: webhook deliveries/s
    ///
    /// Runs an HTTP/1.1 receiver on 127.0.0.1:0 (200, keep-alive, requests counted),
    /// sends `WEBHOOK ADD bench http://127.0.0.1:PORT/hook bench* POLICY drop-newest`,
    /// publishes at full speed; webhook deliveries/s received and WEBHOOK INFO's
    /// counters. Fails (exit 1) on a server without WEBHOOK.
    Webhook(WebhookArgs),
}

#[derive(Args, Debug, Clone)]
struct SseFanoutArgs {
    /// fanout's HTTP port (`--http-port` of the server); `--port` is its RESP port,
    /// where the publishers (and, under --compare, the RESP subscribers) connect.
    #[arg(long)]
    http_port: u16,
    /// SSE subscriber connections, each `GET /v1/sse?channel=<channel>`.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Publisher connections (RESP PUBLISH).
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// PUBLISH requests in flight per publisher (one write per batch).
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    #[arg(long, default_value = "bench")]
    channel: String,
    /// Alternate SSE subscribers, RESP subscribers on the same fanout and (with
    /// --redis-port) RESP subscribers on redis-server; medians and ratios.
    #[arg(long)]
    compare: bool,
    /// Runs per side under --compare.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// A redis-server for context under --compare (RESP subscribers).
    #[arg(long)]
    redis_port: Option<u16>,
    /// Its PID (CPU per delivery and RSS); --server-pid is fanout's.
    #[arg(long)]
    redis_pid: Option<u32>,
    /// Pause between runs under --compare, seconds.
    #[arg(long, default_value_t = 1.0)]
    pause: f64,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum IdleKind {
    Resp,
    Sse,
    Ws,
    /// resp, sse and ws alternately (needs --start-fanout: a fresh server each).
    All,
}

#[derive(Args, Debug, Clone)]
struct IdleMemoryArgs {
    /// Subscriber kind.
    #[arg(long, value_enum, default_value_t = IdleKind::Resp)]
    kind: IdleKind,
    /// Idle subscribers, subscriber i on channel `idle:{i}`.
    #[arg(long, default_value_t = 1000)]
    conns: usize,
    /// fanout's HTTP port (for sse and ws).
    #[arg(long)]
    http_port: Option<u16>,
    /// Start this fanout (`--port <port> --http-port <http-port>`) afresh for each
    /// measurement and stop it after (its PID is then the server PID).
    #[arg(long)]
    start_fanout: Option<PathBuf>,
    /// Extra argument for the started fanout (repeatable).
    #[arg(long, allow_hyphen_values = true)]
    fanout_arg: Vec<String>,
    /// Measurements per kind (kinds alternate within each run).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Wait before each memory reading, seconds.
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
}

#[derive(Args, Debug, Clone)]
struct WebhookArgs {
    /// The webhook's name (WEBHOOK DEL'd before and after).
    #[arg(long, default_value = "bench")]
    name: String,
    /// Its pattern.
    #[arg(long, default_value = "bench*")]
    pattern: String,
    /// The channel published to (must match --pattern).
    #[arg(long, default_value = "bench:hook")]
    channel: String,
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    #[arg(long, default_value_t = 32)]
    pipeline: usize,
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// `POLICY` for WEBHOOK ADD: what a queue over MAXQUEUE does. drop-newest (the
    /// default here) keeps the webhook delivering as fast as the receiver takes while
    /// publishers outrun it; disconnect suspends it; `server` sends no POLICY.
    #[arg(long, default_value = "drop-newest")]
    policy: String,
    /// Extra word appended to WEBHOOK ADD (repeatable), e.g.
    /// `--webhook-arg MAXQUEUE --webhook-arg 67108864`.
    #[arg(long, allow_hyphen_values = true)]
    webhook_arg: Vec<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum PublishTo {
    /// Publisher i on node i % nodes.
    RoundRobin,
    /// Every publisher on the first node.
    First,
}

#[derive(Args, Debug, Clone)]
struct ClusterCli {
    /// The cluster's nodes: host:port,host:port,...
    #[arg(long, required = true)]
    nodes: String,
    /// Subscriber connections per node, all on the channel.
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// Publisher connections.
    #[arg(long, default_value_t = 3)]
    publishers: usize,
    /// Where the publishers connect.
    #[arg(long, value_enum, default_value_t = PublishTo::RoundRobin)]
    publish_to: PublishTo,
    /// PUBLISH requests in flight per publisher (one write per batch).
    #[arg(long, default_value_t = 32)]
    pipeline: usize,
    #[arg(long, default_value_t = 64)]
    payload: usize,
    #[arg(long, default_value = "bench:cluster")]
    channel: String,
    /// Publish about this many messages in total (no warm-up), then stop;
    /// `--warmup` + `--duration` bound the run. Default: a timed window.
    #[arg(long)]
    messages: Option<u64>,
    /// Server PIDs whose CPU is summed, in any order (e.g. the three nodes
    /// and the nats-server).
    #[arg(long, value_delimiter = ',')]
    server_pids: Vec<u32>,
    /// Count bytes on TCP connections with an end on these ports (the
    /// nats-server's port; a Redis Cluster's bus ports, port + 10000).
    #[arg(long, value_delimiter = ',')]
    bus_ports: Vec<u16>,
    /// Seconds of bus idle traffic sampled before publishing (with --bus-ports).
    #[arg(long, default_value_t = 2.0)]
    bus_idle: f64,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum StreamsMode {
    /// All producers on `bench:s`.
    One,
    /// Producer i on `bench:s:{i}`.
    PerProducer,
}

#[derive(Args, Debug, Clone)]
struct XaddArgs {
    /// Producer connections.
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// XADD requests in flight per producer (one write per batch).
    #[arg(long, default_value_t = 32)]
    pipeline: usize,
    /// Value bytes of the single field `f`.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// One stream for all producers, or one per producer.
    #[arg(long, value_enum, default_value_t = StreamsMode::One)]
    streams: StreamsMode,
    /// Add `MAXLEN ~ N` to every XADD.
    #[arg(long)]
    maxlen: Option<u64>,
}

#[derive(Args, Debug, Clone)]
struct XgroupArgs {
    /// Entries added before the run (pipelined XADD, not timed). The default
    /// is large enough that 1 s warm-up + 10 s do not drain it at 1M entries/s.
    #[arg(long, default_value_t = 12_000_000)]
    entries: u64,
    /// Consumer connections (`c{i}`) in group `g`.
    #[arg(long, default_value_t = 4)]
    consumers: usize,
    /// COUNT of each XREADGROUP.
    #[arg(long, default_value_t = 100)]
    count: usize,
    #[arg(long, default_value_t = 64)]
    payload: usize,
}

#[derive(Args, Debug, Clone)]
struct XwakeArgs {
    /// Reader connections, reader i blocked on `bench:w:{i % keys}`.
    #[arg(long, default_value_t = 1000)]
    readers: usize,
    /// Stream keys.
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    /// XADD per second (open loop), to uniformly random keys.
    #[arg(long, default_value_t = 10000.0)]
    rate: f64,
    /// Value bytes (at least 16: the send-time stamp).
    #[arg(long, default_value_t = 64)]
    payload: usize,
}

#[derive(Args, Debug, Clone)]
struct XmemArgs {
    /// Entries added (one field `f`).
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    #[arg(long, default_value_t = 64)]
    payload: usize,
}

#[derive(Args, Debug, Clone)]
struct FanoutArgs {
    /// Subscriber connections on the channel.
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// Publisher connections.
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Payload bytes.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// PUBLISH requests in flight per publisher (one write per batch).
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Channel name.
    #[arg(long, default_value = "bench:fanout")]
    channel: String,
    /// SSUBSCRIBE and SPUBLISH (sharded pub/sub) instead of SUBSCRIBE and PUBLISH.
    #[arg(long)]
    spublish: bool,
}

#[derive(Args, Debug, Clone)]
struct ChannelsArgs {
    /// Channels, one subscriber each (`ch:{i}`).
    #[arg(long, default_value_t = 10000)]
    channels: usize,
    /// Channels held by each subscriber connection: connection c SUBSCRIBEs (one
    /// command) to channels c*N .. c*N+N-1, so ceil(channels / N) connections.
    /// Publishers pick a uniformly random channel among all for each PUBLISH; one
    /// delivery per message.
    #[arg(long, default_value_t = 1)]
    channels_per_subscriber: usize,
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    #[arg(long, default_value_t = 64)]
    payload: usize,
    #[arg(long, default_value_t = 32)]
    pipeline: usize,
}

#[derive(Args, Debug, Clone)]
struct PatternsArgs {
    /// Patterns (of --pattern-shape), pattern i on connection i % pattern-connections.
    #[arg(long, default_value_t = 1000)]
    patterns: usize,
    /// Subscriber connections the patterns are divided among (alias --pattern-conns).
    #[arg(long = "pattern-connections", visible_alias = "pattern-conns", default_value_t = 10)]
    pattern_conns: usize,
    /// Channels published to (uniformly at random); channel j matches pattern
    /// j % patterns only (none under `miss`).
    #[arg(long, default_value_t = 4096)]
    pattern_channels: usize,
    /// Pattern and channel names: prefix `p<i>.*` / `p<i>.x<k>`; inner `bench.*.p<i>`
    /// / `bench.x<k>.p<i>`; leading `*.p<i>` / `x<k>.p<i>`; infix `*:<i>:*` /
    /// `x<k>:<i>:y`; class `room.[0-9]*.<i>` / `room.<digit>x<k>.<i>`; miss: inner's
    /// patterns, channels `bench.x<k>.q<i>` matching none; colon `bench:<i>:*` /
    /// `bench:<i>:x` (the shape before issue 15). i = j % patterns, k = j / patterns.
    #[arg(long, value_enum, default_value_t = Shape::Inner)]
    pattern_shape: Shape,
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    #[arg(long, default_value_t = 64)]
    payload: usize,
    #[arg(long, default_value_t = 32)]
    pipeline: usize,
}

#[derive(Args, Debug, Clone)]
struct LatencyArgs {
    /// Messages per second (open loop).
    #[arg(long, default_value_t = 10000.0)]
    rate: f64,
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// Payload bytes (at least 16: the send-time stamp).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    #[arg(long, default_value = "bench:latency")]
    channel: String,
}

#[derive(Args, Debug, Clone)]
struct ConnsArgs {
    /// Idle subscriber connections, each on channel `c:{i}`.
    #[arg(long, default_value_t = 10000)]
    conns: usize,
    #[arg(long, default_value_t = 64)]
    payload: usize,
}

#[derive(Args, Debug, Clone)]
struct SlowsubArgs {
    /// Subscribers that keep up.
    #[arg(long, default_value_t = 4)]
    fast: usize,
    #[arg(long, default_value_t = 2)]
    publishers: usize,
    #[arg(long, default_value_t = 1024)]
    payload: usize,
    #[arg(long, default_value_t = 32)]
    pipeline: usize,
    #[arg(long, default_value = "bench:slowsub")]
    channel: String,
}

#[derive(Args, Debug, Clone)]
struct CompareArgs {
    #[command(subcommand)]
    scenario: Scenario,
    /// Port of the fanout server (required).
    #[arg(long, global = true)]
    fanout_port: Option<u16>,
    /// Port of the redis-server (required).
    #[arg(long, global = true)]
    redis_port: Option<u16>,
    /// PID of the fanout server (CPU/RSS figures).
    #[arg(long, global = true)]
    fanout_pid: Option<u32>,
    /// PID of the redis-server (CPU/RSS figures).
    #[arg(long, global = true)]
    redis_pid: Option<u32>,
    /// Runs per server, alternating fanout, redis, fanout, ...
    #[arg(long, global = true, default_value_t = 3)]
    runs: usize,
    /// Pause between runs, seconds.
    #[arg(long, global = true, default_value_t = 1.0)]
    pause: f64,
    /// Start this fanout binary with `--port <fanout-port>` (killed at the end).
    #[arg(long, global = true)]
    start_fanout: Option<PathBuf>,
    /// Start this redis-server with `--port <redis-port> --save '' --appendonly no`.
    #[arg(long, global = true)]
    start_redis: Option<PathBuf>,
    /// Extra argument for the started fanout (repeatable).
    #[arg(long, global = true, allow_hyphen_values = true)]
    fanout_arg: Vec<String>,
    /// Extra argument for the started redis-server (repeatable).
    #[arg(long, global = true, allow_hyphen_values = true)]
    redis_arg: Vec<String>,
}

impl Scenario {
    fn name(&self) -> &'static str {
        match self {
            Scenario::Fanout(_) => "fanout",
            Scenario::Channels(_) => "channels",
            Scenario::Patterns(_) => "patterns",
            Scenario::Latency(_) => "latency",
            Scenario::Conns(_) => "conns",
            Scenario::Slowsub(_) => "slowsub",
            Scenario::Xadd(_) => "xadd",
            Scenario::Xgroup(_) => "xgroup",
            Scenario::Xwake(_) => "xwake",
            Scenario::Xmem(_) => "xmem",
            Scenario::Cluster(_) => "cluster",
            Scenario::SseFanout(_) => "sse-fanout",
            Scenario::IdleMemory(_) => "idle-memory",
            Scenario::Webhook(_) => "webhook",
        }
    }

    fn default_duration(&self) -> f64 {
        match self {
            Scenario::Slowsub(_) => 30.0,
            _ => 10.0,
        }
    }

    /// Client sockets this scenario opens.
    fn connections(&self) -> u64 {
        (match self {
            Scenario::Fanout(a) => a.subscribers + a.publishers,
            Scenario::Channels(a) => a.channels.div_ceil(a.channels_per_subscriber.max(1)) + a.publishers,
            Scenario::Patterns(a) => a.pattern_conns + a.publishers,
            Scenario::Latency(a) => a.subscribers + 2,
            Scenario::Conns(a) => a.conns + 1,
            Scenario::Slowsub(a) => a.fast + 1 + a.publishers,
            Scenario::Xadd(a) => a.producers + 1,
            Scenario::Xgroup(a) => a.consumers + 2,
            Scenario::Xwake(a) => a.readers + 2,
            Scenario::Xmem(_) => 3,
            Scenario::Cluster(a) => a.subscribers * a.nodes.split(',').count() + a.publishers + 4,
            Scenario::SseFanout(a) => a.subscribers + a.publishers + 2,
            Scenario::IdleMemory(a) => a.conns + 2,
            Scenario::Webhook(a) => a.publishers + 64,
        }) as u64
    }

    fn validate(&self) -> Result<(), String> {
        let pos = |v: usize, what: &str| {
            if v == 0 {
                Err(format!("{what} must be at least 1"))
            } else {
                Ok(())
            }
        };
        match self {
            Scenario::Fanout(a) => {
                pos(a.publishers, "--publishers")?;
                pos(a.pipeline, "--pipeline")
            }
            Scenario::Channels(a) => {
                pos(a.channels, "--channels")?;
                pos(a.channels_per_subscriber, "--channels-per-subscriber")?;
                pos(a.publishers, "--publishers")?;
                pos(a.pipeline, "--pipeline")
            }
            Scenario::Patterns(a) => {
                pos(a.patterns, "--patterns")?;
                pos(a.pattern_conns, "--pattern-connections")?;
                pos(a.pattern_channels, "--pattern-channels")?;
                pos(a.publishers, "--publishers")?;
                pos(a.pipeline, "--pipeline")
            }
            Scenario::Latency(a) => {
                if !(a.rate > 0.0 && a.rate <= 10_000_000.0) {
                    return Err("--rate must be in (0, 10000000]".into());
                }
                Ok(())
            }
            Scenario::Conns(a) => pos(a.conns, "--conns"),
            Scenario::Slowsub(a) => {
                pos(a.publishers, "--publishers")?;
                pos(a.pipeline, "--pipeline")
            }
            Scenario::Xadd(a) => {
                pos(a.producers, "--producers")?;
                pos(a.pipeline, "--pipeline")?;
                if a.maxlen == Some(0) {
                    return Err("--maxlen must be at least 1".into());
                }
                Ok(())
            }
            Scenario::Xgroup(a) => {
                pos(a.entries as usize, "--entries")?;
                pos(a.consumers, "--consumers")?;
                pos(a.count, "--count")
            }
            Scenario::Xwake(a) => {
                pos(a.readers, "--readers")?;
                pos(a.keys, "--keys")?;
                if !(a.rate > 0.0 && a.rate <= 10_000_000.0) {
                    return Err("--rate must be in (0, 10000000]".into());
                }
                Ok(())
            }
            Scenario::Xmem(a) => pos(a.entries as usize, "--entries"),
            Scenario::Cluster(a) => {
                pos(a.subscribers, "--subscribers")?;
                pos(a.publishers, "--publishers")?;
                pos(a.pipeline, "--pipeline")?;
                if a.messages == Some(0) {
                    return Err("--messages must be at least 1".into());
                }
                secs(a.bus_idle, "--bus-idle")?;
                if cluster::parse_nodes(&a.nodes, Duration::from_secs(1))?.is_empty() {
                    return Err("--nodes names no node".into());
                }
                Ok(())
            }
            Scenario::SseFanout(a) => {
                pos(a.subscribers, "--subscribers")?;
                pos(a.publishers, "--publishers")?;
                pos(a.pipeline, "--pipeline")?;
                pos(a.runs, "--runs")?;
                secs(a.pause, "--pause")?;
                if !a
                    .channel
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
                {
                    return Err("--channel: letters, digits and -_.: only (it goes in a URL and JSON as is)".into());
                }
                Ok(())
            }
            Scenario::IdleMemory(a) => {
                pos(a.conns, "--conns")?;
                pos(a.runs, "--runs")?;
                secs(a.settle, "--settle")?;
                if a.kind != IdleKind::Resp && a.http_port.is_none() {
                    return Err("--kind sse, ws and all need --http-port".into());
                }
                if a.kind == IdleKind::All && a.start_fanout.is_none() {
                    return Err(
                        "--kind all needs --start-fanout: memory freed by one kind's connections is reused \
                         by the next, so each kind needs a fresh server"
                            .into(),
                    );
                }
                Ok(())
            }
            Scenario::Webhook(a) => {
                pos(a.publishers, "--publishers")?;
                pos(a.pipeline, "--pipeline")
            }
        }
    }
}

fn base_report(sc: &Scenario, o: &Opts) -> Report {
    let mut r = Report::new(sc.name());
    r.param("port", Val::Int(o.target.port as i64));
    r.param("client_threads", Val::Int(o.client_threads as i64));
    let int = |v: usize| Val::Int(v as i64);
    match sc {
        Scenario::Fanout(a) => {
            r.param("subscribers", int(a.subscribers));
            r.param("publishers", int(a.publishers));
            r.param("payload", int(a.payload));
            r.param("pipeline", int(a.pipeline));
            r.param(
                "command",
                Val::Str(if a.spublish { "SPUBLISH" } else { "PUBLISH" }.into()),
            );
        }
        Scenario::Channels(a) => {
            r.param("channels", int(a.channels));
            r.param("channels_per_subscriber", int(a.channels_per_subscriber));
            r.param(
                "subscriber_connections",
                int(a.channels.div_ceil(a.channels_per_subscriber)),
            );
            r.param("publishers", int(a.publishers));
            r.param("payload", int(a.payload));
            r.param("pipeline", int(a.pipeline));
        }
        Scenario::Patterns(a) => {
            r.param("pattern_shape", Val::Str(a.pattern_shape.name().into()));
            r.param("patterns", int(a.patterns));
            r.param("pattern_conns", int(a.pattern_conns.min(a.patterns)));
            r.param("pattern_channels", int(a.pattern_channels));
            r.param("publishers", int(a.publishers));
            r.param("payload", int(a.payload));
            r.param("pipeline", int(a.pipeline));
        }
        Scenario::Latency(a) => {
            r.param("rate", Val::Float(a.rate, 1));
            r.param("subscribers", int(a.subscribers));
            r.param("payload", int(a.payload.max(latency::STAMP_LEN)));
        }
        Scenario::Conns(a) => {
            r.param("conns", int(a.conns));
            r.param("payload", int(a.payload));
        }
        Scenario::Slowsub(a) => {
            r.param("fast_subscribers", int(a.fast));
            r.param("publishers", int(a.publishers));
            r.param("payload", int(a.payload));
            r.param("pipeline", int(a.pipeline));
        }
        Scenario::Xadd(a) => {
            r.param("producers", int(a.producers));
            r.param("pipeline", int(a.pipeline));
            r.param("payload", int(a.payload));
            let streams = match a.streams {
                StreamsMode::One => "one",
                StreamsMode::PerProducer => "per-producer",
            };
            r.param("streams", Val::Str(streams.into()));
            r.param("maxlen", a.maxlen.map_or(Val::Null, |n| Val::Int(n as i64)));
        }
        Scenario::Xgroup(a) => {
            r.param("entries", Val::Int(a.entries as i64));
            r.param("consumers", int(a.consumers));
            r.param("count", int(a.count));
            r.param("payload", int(a.payload));
        }
        Scenario::Xwake(a) => {
            r.param("readers", int(a.readers));
            r.param("keys", int(a.keys));
            r.param("rate", Val::Float(a.rate, 1));
            r.param("payload", int(a.payload.max(latency::STAMP_LEN)));
        }
        Scenario::Xmem(a) => {
            r.param("entries", Val::Int(a.entries as i64));
            r.param("payload", int(a.payload));
        }
        Scenario::Cluster(a) => {
            r.param("nodes", Val::Str(a.nodes.clone()));
            r.param("subscribers_per_node", int(a.subscribers));
            r.param("publishers", int(a.publishers));
            let to = match a.publish_to {
                PublishTo::RoundRobin => "round-robin",
                PublishTo::First => "first",
            };
            r.param("publish_to", Val::Str(to.into()));
            r.param("pipeline", int(a.pipeline));
            r.param("payload", int(a.payload));
            r.param("messages", a.messages.map_or(Val::Null, |n| Val::Int(n as i64)));
        }
        Scenario::SseFanout(a) => {
            r.param("http_port", Val::Int(a.http_port as i64));
            r.param("subscribers", int(a.subscribers));
            r.param("publishers", int(a.publishers));
            r.param("payload", int(a.payload));
            r.param("pipeline", int(a.pipeline));
        }
        Scenario::IdleMemory(a) => {
            r.param("http_port", a.http_port.map_or(Val::Null, |p| Val::Int(p as i64)));
            r.param("conns", int(a.conns));
        }
        Scenario::Webhook(a) => {
            r.param("publishers", int(a.publishers));
            r.param("pipeline", int(a.pipeline));
            r.param("payload", int(a.payload));
            r.param("pattern", Val::Str(a.pattern.clone()));
            r.param("channel", Val::Str(a.channel.clone()));
            r.param("policy", Val::Str(a.policy.clone()));
        }
    }
    if matches!(sc, Scenario::Cluster(_)) {
        // Its own list of nodes; the global --port is not used.
        r.entries.retain(|e| e.key != "port");
    }
    if !matches!(sc, Scenario::Conns(_) | Scenario::Xmem(_) | Scenario::IdleMemory(_)) {
        r.param("duration_s", Val::Float(o.duration.as_secs_f64(), 3));
        r.param("warmup_s", Val::Float(o.warmup.as_secs_f64(), 3));
    }
    r
}

fn subscribe_one(channel: &str) -> SubSpec {
    SubSpec {
        cmd: resp::cmd(&["SUBSCRIBE", channel]),
        confirms: 1,
    }
}

fn ssubscribe_one(channel: &str) -> SubSpec {
    SubSpec {
        cmd: resp::cmd(&["SSUBSCRIBE", channel]),
        confirms: 1,
    }
}

/// Runs one scenario once against `o.target`, bounded by an overall deadline.
async fn run_scenario(sc: &Scenario, o: Opts) -> Result<Report, String> {
    let mut budget = o.setup_timeout * 2 + o.warmup + o.duration + o.grace + Duration::from_secs(30);
    match sc {
        // Filling (and, for xmem, reading back) the stream.
        Scenario::Xgroup(a) => budget += streams::fill_budget(&o, a.entries),
        Scenario::Xmem(a) => budget += streams::fill_budget(&o, a.entries) * 2,
        _ => {}
    }
    let report = base_report(sc, &o);
    if let Some(pid) = o.server_pid {
        if !sys::Probe::server(pid).exists() {
            return Err(format!("--server-pid {pid}: no such process"));
        }
        sys::warn_server_nofile(pid, sc.connections() + 32);
    }
    if !matches!(sc, Scenario::Cluster(_)) {
        net::ping(&o.target).await?;
    }
    let fut = async {
        match sc {
            Scenario::Fanout(a) => {
                let sub = if a.spublish { ssubscribe_one } else { subscribe_one };
                let plan = Plan {
                    report,
                    subs: Subscribers::Resp((0..a.subscribers).map(|_| sub(&a.channel)).collect()),
                    sub_bufsize: 64 * 1024,
                    fan: a.subscribers as u64,
                    pick: Pick::Fixed(a.channel.clone().into_bytes()),
                    verb: if a.spublish { b"SPUBLISH" } else { b"PUBLISH" },
                    payload: a.payload,
                    pipeline: a.pipeline,
                    publishers: a.publishers,
                    slow: None,
                };
                scenarios::run_pubsub(&o, plan).await
            }
            Scenario::Channels(a) => {
                let per = a.channels_per_subscriber;
                let subs = (0..a.channels)
                    .step_by(per)
                    .map(|first| {
                        let mut args = vec!["SUBSCRIBE".to_string()];
                        args.extend((first..(first + per).min(a.channels)).map(|i| format!("ch:{i}")));
                        SubSpec {
                            confirms: args.len() - 1,
                            cmd: resp::cmd(&args),
                        }
                    })
                    .collect();
                let plan = Plan {
                    report,
                    subs: Subscribers::Resp(subs),
                    sub_bufsize: if per > 1 { 64 * 1024 } else { 8 * 1024 },
                    fan: 1,
                    pick: Pick::Random {
                        prefix: b"ch:".to_vec(),
                        suffix: Vec::new(),
                        n: a.channels as u64,
                    },
                    verb: b"PUBLISH",
                    payload: a.payload,
                    pipeline: a.pipeline,
                    publishers: a.publishers,
                    slow: None,
                };
                scenarios::run_pubsub(&o, plan).await
            }
            Scenario::Patterns(a) => {
                let conns = a.pattern_conns.min(a.patterns);
                let subs = (0..conns)
                    .map(|c| {
                        let mut args = vec!["PSUBSCRIBE".to_string()];
                        args.extend((c..a.patterns).step_by(conns).map(|i| a.pattern_shape.pattern(i)));
                        SubSpec {
                            confirms: args.len() - 1,
                            cmd: resp::cmd(&args),
                        }
                    })
                    .collect();
                let plan = Plan {
                    report,
                    subs: Subscribers::Resp(subs),
                    sub_bufsize: 64 * 1024,
                    fan: a.pattern_shape.fan(),
                    pick: Pick::List(Arc::new(
                        (0..a.pattern_channels)
                            .map(|j| a.pattern_shape.channel(j, a.patterns).into_bytes())
                            .collect(),
                    )),
                    verb: b"PUBLISH",
                    payload: a.payload,
                    pipeline: a.pipeline,
                    publishers: a.publishers,
                    slow: None,
                };
                scenarios::run_pubsub(&o, plan).await
            }
            Scenario::Slowsub(a) => {
                let plan = Plan {
                    report,
                    subs: Subscribers::Resp((0..a.fast).map(|_| subscribe_one(&a.channel)).collect()),
                    sub_bufsize: 64 * 1024,
                    fan: a.fast as u64,
                    pick: Pick::Fixed(a.channel.clone().into_bytes()),
                    verb: b"PUBLISH",
                    payload: a.payload,
                    pipeline: a.pipeline,
                    publishers: a.publishers,
                    slow: Some(subscribe_one(&a.channel)),
                };
                scenarios::run_pubsub(&o, plan).await
            }
            Scenario::Latency(a) => {
                let args = latency::LatencyArgs {
                    rate: a.rate,
                    subscribers: a.subscribers,
                    payload: a.payload,
                    channel: a.channel.clone(),
                };
                latency::run_latency(&o, args, report).await
            }
            Scenario::Conns(a) => scenarios::run_conns(&o, a.conns, a.payload, report).await,
            Scenario::Xadd(a) => {
                let args = streams::XaddArgs {
                    producers: a.producers,
                    pipeline: a.pipeline,
                    payload: a.payload,
                    per_producer: a.streams == StreamsMode::PerProducer,
                    maxlen: a.maxlen,
                };
                streams::run_xadd(&o, args, report).await
            }
            Scenario::Xgroup(a) => {
                let args = streams::XgroupArgs {
                    entries: a.entries,
                    consumers: a.consumers,
                    count: a.count,
                    payload: a.payload,
                };
                streams::run_xgroup(&o, args, report).await
            }
            Scenario::Xwake(a) => {
                let args = streams::XwakeArgs {
                    readers: a.readers,
                    keys: a.keys,
                    rate: a.rate,
                    payload: a.payload,
                };
                streams::run_xwake(&o, args, report).await
            }
            Scenario::Xmem(a) => {
                let args = streams::XmemArgs {
                    entries: a.entries,
                    payload: a.payload,
                };
                streams::run_xmem(&o, args, report).await
            }
            Scenario::Cluster(a) => {
                let args = cluster::ClusterArgs {
                    nodes: cluster::parse_nodes(&a.nodes, o.target.connect_timeout)?,
                    subscribers: a.subscribers,
                    publishers: a.publishers,
                    publish_to: match a.publish_to {
                        PublishTo::RoundRobin => cluster::PublishTo::RoundRobin,
                        PublishTo::First => cluster::PublishTo::First,
                    },
                    pipeline: a.pipeline,
                    payload: a.payload,
                    channel: a.channel.clone(),
                    messages: a.messages,
                    server_pids: a.server_pids.clone(),
                    bus_ports: a.bus_ports.clone(),
                    bus_idle: secs(a.bus_idle, "--bus-idle")?,
                };
                cluster::run_cluster(&o, args, report).await
            }
            Scenario::Webhook(a) => {
                let args = web::Webhook {
                    name: a.name.clone(),
                    pattern: a.pattern.clone(),
                    channel: a.channel.clone(),
                    publishers: a.publishers,
                    pipeline: a.pipeline,
                    payload: a.payload,
                    policy: (a.policy != "server").then(|| a.policy.clone()),
                    extra: a.webhook_arg.clone(),
                };
                web::run_webhook(&o, &args, report).await
            }
            Scenario::SseFanout(_) | Scenario::IdleMemory(_) => {
                Err("sse-fanout and idle-memory print their own tables (run_web)".into())
            }
        }
    };
    tokio::time::timeout(budget, fut)
        .await
        .map_err(|_| format!("run exceeded its overall deadline of {budget:?}"))?
}

/// `sse-fanout` and `idle-memory`: several sides or kinds in one invocation, each run
/// bounded as `run_scenario` bounds one.
async fn run_web(sc: &Scenario, o: Opts) -> Result<String, String> {
    let one = o.setup_timeout * 2 + o.warmup + o.duration + o.grace + Duration::from_secs(30);
    let host = o.target.host.clone();
    let http = |port: u16| Target {
        host: host.clone(),
        port,
        connect_timeout: o.target.connect_timeout,
    };
    if let Some(pid) = o.server_pid {
        if !sys::Probe::server(pid).exists() {
            return Err(format!("--server-pid {pid}: no such process"));
        }
        sys::warn_server_nofile(pid, sc.connections() + 32);
    }
    let base = |side: &str| {
        let mut r = base_report(sc, &o);
        r.param("side", Val::Str(side.to_string()));
        r
    };
    match sc {
        Scenario::SseFanout(a) => {
            net::ping(&o.target).await?;
            let args = web::SseFanout {
                http: http(a.http_port),
                subscribers: a.subscribers,
                publishers: a.publishers,
                payload: a.payload,
                pipeline: a.pipeline,
                channel: a.channel.clone(),
                compare: a.compare,
                runs: a.runs,
                redis: a.redis_port.map(|p| (http(p), a.redis_pid)),
                pause: secs(a.pause, "--pause")?,
            };
            if let Some(p) = a.redis_port {
                net::ping(&http(p)).await?;
            }
            let sides = if a.compare {
                a.runs as u32 * (2 + a.redis_port.is_some() as u32)
            } else {
                1
            };
            let budget = (one + args.pause) * sides;
            tokio::time::timeout(budget, web::run_sse_fanout(&o, &args, base))
                .await
                .map_err(|_| format!("run exceeded its overall deadline of {budget:?}"))?
        }
        Scenario::IdleMemory(a) => {
            let kinds = match a.kind {
                IdleKind::Resp => vec![web::Via::Resp],
                IdleKind::Sse => vec![web::Via::Sse],
                IdleKind::Ws => vec![web::Via::Ws],
                IdleKind::All => vec![web::Via::Resp, web::Via::Sse, web::Via::Ws],
            };
            if a.start_fanout.is_none() {
                net::ping(&o.target).await?;
            }
            let nk = kinds.len();
            let args = web::IdleMemory {
                runs: a.runs,
                kinds,
                conns: a.conns,
                http: a.http_port.map(http),
                start: a.start_fanout.clone().map(|p| (p, a.fanout_arg.clone())),
                settle: secs(a.settle, "--settle")?,
            };
            let budget = (one + args.settle * 2 + Duration::from_secs(10)) * (a.runs * nk) as u32;
            tokio::time::timeout(budget, web::run_idle_memory(&o, &args, base))
                .await
                .map_err(|_| format!("run exceeded its overall deadline of {budget:?}"))?
        }
        _ => Err("not a web scenario".into()),
    }
}

fn secs(v: f64, what: &str) -> Result<Duration, String> {
    if (0.0..=86_400.0).contains(&v) {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!("{what} must be between 0 and 86400 seconds"))
    }
}

fn opts(c: &Common, sc: &Scenario) -> Result<Opts, String> {
    let duration = secs(c.duration.unwrap_or(sc.default_duration()), "--duration")?;
    if duration.is_zero() && !matches!(sc, Scenario::Conns(_) | Scenario::Xmem(_) | Scenario::IdleMemory(_)) {
        return Err("--duration must be > 0".into());
    }
    Ok(Opts {
        target: Target {
            host: c.host.clone(),
            port: c.port,
            connect_timeout: secs(c.connect_timeout, "--connect-timeout")?,
        },
        server_pid: c.server_pid,
        duration,
        warmup: secs(c.warmup, "--warmup")?,
        grace: secs(c.grace, "--grace")?,
        setup_timeout: secs(c.setup_timeout, "--setup-timeout")?,
        concurrency: c.connect_concurrency.max(1),
        client_threads: c.client_threads.max(1),
    })
}

async fn real_main(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Restart(r) => {
            let out = restart::run(restart::RestartArgs {
                entries: r.entries,
                streams: r.streams,
                payload: r.payload,
                rewrite: r.rewrite,
                runs: r.runs,
                fanout: (r.start_fanout, r.fanout_port),
                redis: (r.start_redis, r.redis_port),
                host: cli.common.host.clone(),
                client_threads: cli.common.client_threads.max(1),
            })
            .await?;
            print!("{out}");
            Ok(())
        }
        Cmd::Run(sc) => {
            sc.validate()?;
            let o = opts(&cli.common, &sc)?;
            sys::ensure_nofile(sc.connections() + 64)?;
            eprintln!("fanout-load {} against {}:{}", sc.name(), o.target.host, o.target.port);
            if matches!(sc, Scenario::SseFanout(_) | Scenario::IdleMemory(_)) {
                print!("{}", run_web(&sc, o).await?);
                return Ok(());
            }
            let r = run_scenario(&sc, o).await?;
            print!("{}", r.table());
            println!("{}", r.json());
            Ok(())
        }
        Cmd::Compare(c) => {
            let sc = c.scenario.clone();
            sc.validate()?;
            if matches!(sc, Scenario::Cluster(_)) {
                return Err(
                    "cluster runs alone (`fanout-load cluster --nodes ...`); alternate the clusters from the shell"
                        .into(),
                );
            }
            if matches!(
                sc,
                Scenario::SseFanout(_) | Scenario::IdleMemory(_) | Scenario::Webhook(_)
            ) {
                return Err(
                    "sse-fanout, idle-memory and webhook measure fanout's web side and run alone \
                     (`sse-fanout --compare` compares SSE with RESP and redis-server itself)"
                        .into(),
                );
            }
            let base = opts(&cli.common, &sc)?;
            let (Some(fport), Some(rport)) = (c.fanout_port, c.redis_port) else {
                return Err("compare needs --fanout-port and --redis-port".into());
            };
            if fport == rport {
                return Err("--fanout-port and --redis-port must differ".into());
            }
            sys::ensure_nofile(sc.connections() + 64)?;
            let target = |port| Target {
                port,
                ..base.target.clone()
            };
            // Started servers live in these guards: dropped (killed) on any exit.
            let mut fanout_child = None;
            let mut redis_child = None;
            if let Some(p) = &c.start_fanout {
                let mut args = vec!["--port".to_string(), fport.to_string()];
                args.extend(c.fanout_arg.iter().cloned());
                fanout_child = Some(compare::start_server("fanout", p, &args, &target(fport)).await?);
            }
            if let Some(p) = &c.start_redis {
                let mut args: Vec<String> = ["--port", &rport.to_string(), "--save", "", "--appendonly", "no"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                if base.target.host.parse::<std::net::IpAddr>().is_ok() {
                    // Keep the started server on the address we test (loopback).
                    args.extend(["--bind".to_string(), base.target.host.clone()]);
                }
                if sc.connections() + 32 > 10_000 {
                    // redis-server's default maxclients (10000) is too low.
                    args.extend(["--maxclients".to_string(), (sc.connections() + 128).to_string()]);
                }
                args.extend(c.redis_arg.iter().cloned());
                redis_child = Some(compare::start_server("redis", p, &args, &target(rport)).await?);
            }
            let sides = [
                compare::Side {
                    name: "fanout",
                    port: fport,
                    pid: fanout_child.as_ref().map(|g| g.pid()).or(c.fanout_pid),
                },
                compare::Side {
                    name: "redis",
                    port: rport,
                    pid: redis_child.as_ref().map(|g| g.pid()).or(c.redis_pid),
                },
            ];
            let pause = secs(c.pause, "--pause")?;
            let res = compare::compare(&base, sides, c.runs.max(1), pause, |o| run_scenario(&sc, o)).await;
            drop(fanout_child);
            drop(redis_child);
            let (table, json) = res?;
            print!("{table}");
            println!("{json}");
            Ok(())
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let mut rt = if cli.common.client_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(cli.common.client_threads);
        b
    };
    rt.enable_all();
    let rt = match rt.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            std::process::exit(2);
        }
    };
    let code = rt.block_on(async {
        tokio::select! {
            r = real_main(cli) => match r {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {e}");
                    1
                }
            },
            _ = tokio::signal::ctrl_c() => {
                eprintln!("interrupted");
                130
            }
        }
    });
    // Do not wait for stray tasks or threads (they are all bounded anyway).
    rt.shutdown_timeout(Duration::from_millis(200));
    std::process::exit(code);
}
