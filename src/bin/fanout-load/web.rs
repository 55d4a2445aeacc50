//! The web scenarios: `sse-fanout` (Server-Sent Events subscribers on fanout's HTTP
//! port against RESP subscribers, and redis-server for context), `idle-memory` (server
//! memory per idle RESP, SSE or WebSocket subscriber) and `webhook` (deliveries/s POSTed
//! by `WEBHOOK ADD` to a receiver run here).
//!
//! Raw sockets, as for RESP: an HTTP/1.1 GET written by hand, and an SSE or WebSocket
//! stream read as bytes in which occurrences of a marker are counted (`event: message\n`
//! for SSE, `"type":"message"` for WebSocket JSON frames). Counting keeps a few bytes
//! of the previous read so a marker split across two reads is counted once; hyper's
//! `Transfer-Encoding: chunked` framing sits between whole events (one chunk per write
//! of the subscriber's outbox), so it never splits a marker, and WebSocket frame headers
//! likewise sit between whole messages. The 64-byte payload is `x`s, so no payload
//! holds a marker.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use memchr::memmem;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::compare::{self, ChildGuard};
use crate::net::{self, CountOnly, PubStats, Rng, Setup, SubSpec, SubStats, Target};
use crate::report::{self, json_str, Report, Val};
use crate::resp;
use crate::scenarios::{self, drain, ratio, stop_publishers, CpuMark, Opts, Subs};
use crate::streams::{Ctl, V};

/// How a subscriber connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Resp,
    Sse,
    Ws,
}

impl Via {
    pub fn name(self) -> &'static str {
        match self {
            Via::Resp => "resp",
            Via::Sse => "sse",
            Via::Ws => "ws",
        }
    }

    /// The confirmation and the delivery markers of a web stream.
    fn markers(self) -> (&'static [u8], &'static [u8]) {
        match self {
            Via::Sse => (b"event: subscribe\n", b"event: message\n"),
            _ => (b"\"type\":\"subscribe\"", b"\"type\":\"message\""),
        }
    }
}

/// Bytes of the previous read kept in front of the next one (at least the longest
/// marker minus one).
const CARRY: usize = 32;
/// A response head (or a setup error body) is read up to this much.
const MAX_HEAD: usize = 64 * 1024;

/// Occurrences of `f`'s needle in `hay` that end past `keep` (the bytes before `keep`
/// were carried over from the previous read, where any marker wholly inside them was
/// already counted).
pub fn count_new(f: &memmem::Finder<'_>, hay: &[u8], keep: usize) -> u64 {
    let l = f.needle().len();
    f.find_iter(hay).filter(|&p| p + l > keep).count() as u64
}

/// A byte stream read in pieces with the tail of each read carried into the next.
struct Scan {
    buf: Vec<u8>,
    keep: usize,
}

impl Scan {
    fn new(cap: usize, start: &[u8]) -> Scan {
        let mut buf = vec![0u8; cap.max(CARRY * 4)];
        let tail = &start[start.len().saturating_sub(CARRY)..];
        buf[..tail.len()].copy_from_slice(tail);
        Scan { buf, keep: tail.len() }
    }

    /// Reads once; the bytes to search are then `self.buf[..total]` with the first
    /// `self.keep` already seen. Returns (total, keep) or 0 total on EOF.
    async fn read(&mut self, s: &mut TcpStream) -> std::io::Result<(usize, usize)> {
        let n = s.read(&mut self.buf[self.keep..]).await?;
        if n == 0 {
            return Ok((0, 0));
        }
        Ok((self.keep + n, self.keep))
    }

    fn roll(&mut self, total: usize) {
        let k = total.min(CARRY);
        self.buf.copy_within(total - k..total, 0);
        self.keep = k;
    }
}

/// The status code of an HTTP/1.1 response head.
fn status_of(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    let code = line.split(|&b| b == b' ').nth(1)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// A header's value in a response or request head (case-insensitive name).
fn header<'a>(head: &'a [u8], name: &str) -> Option<&'a [u8]> {
    head.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        line[..colon]
            .eq_ignore_ascii_case(name.as_bytes())
            .then(|| line[colon + 1..].trim_ascii())
    })
}

/// A client-to-server WebSocket frame (FIN, masked, as RFC 6455 requires of clients).
pub fn masked_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

/// Opens an SSE or WebSocket subscriber on `channel` and waits for its confirmation.
/// Returns the stream, the bytes read after the response head, and the deliveries
/// already in them.
async fn open_web(
    http: &Target,
    via: Via,
    channel: &str,
    seed: u64,
    timeout: Duration,
) -> Result<(TcpStream, Vec<u8>, u64), String> {
    let mut s = net::connect(http).await?;
    let host = format!("{}:{}", http.host, http.port);
    let mut rng = Rng::new(seed);
    let (req, key) = match via {
        Via::Sse => (
            format!(
                "GET /v1/sse?channel={channel} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\
                 Cache-Control: no-cache\r\nUser-Agent: fanout-load\r\n\r\n"
            ),
            None,
        ),
        _ => {
            let mut k = [0u8; 16];
            for c in k.chunks_mut(8) {
                c.copy_from_slice(&rng.next().to_le_bytes());
            }
            let key = base64::engine::general_purpose::STANDARD.encode(k);
            (
                format!(
                    "GET /v1/ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: fanout-load\r\n\r\n"
                ),
                Some(key),
            )
        }
    };
    let (confirm, message) = via.markers();
    let confirm = memmem::Finder::new(confirm);
    let message = memmem::Finder::new(message);
    let what = via.name();
    let fut = async {
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("{what} request write: {e}"))?;
        let mut acc = Vec::with_capacity(4096);
        let mut chunk = [0u8; 4096];
        let mut body_at = None;
        let mut sent_sub = false;
        loop {
            if body_at.is_none() {
                if let Some(p) = memmem::find(&acc, b"\r\n\r\n") {
                    let head = &acc[..p];
                    let status = status_of(head);
                    let want = if via == Via::Sse { 200 } else { 101 };
                    if status != Some(want) {
                        // Let the error body arrive, then show it.
                        let _ = tokio::time::timeout(Duration::from_millis(200), s.read(&mut chunk))
                            .await
                            .map(|r| r.map(|n| acc.extend_from_slice(&chunk[..n])));
                        return Err(format!(
                            "{what} subscribe refused: {}",
                            String::from_utf8_lossy(&acc[..acc.len().min(512)]).trim()
                        ));
                    }
                    if let Some(key) = &key {
                        let expect = fanout::protocol::websocket::accept_key(key.as_bytes());
                        if header(head, "sec-websocket-accept") != Some(expect.as_bytes()) {
                            return Err("websocket handshake: wrong or missing Sec-WebSocket-Accept".into());
                        }
                    }
                    body_at = Some(p + 4);
                }
            }
            if let Some(b) = body_at {
                if via == Via::Ws && !sent_sub {
                    let mut frame = Vec::with_capacity(64 + channel.len());
                    let op = format!("{{\"op\":\"subscribe\",\"channel\":\"{channel}\"}}");
                    masked_frame(&mut frame, 0x1, op.as_bytes(), (rng.next() as u32).to_le_bytes());
                    s.write_all(&frame)
                        .await
                        .map_err(|e| format!("websocket subscribe write: {e}"))?;
                    sent_sub = true;
                }
                let body = &acc[b..];
                if confirm.find(body).is_some() {
                    let early = count_new(&message, body, 0);
                    return Ok((acc.split_off(b), early));
                }
                if via == Via::Ws && memmem::find(body, b"\"type\":\"error\"").is_some() {
                    return Err(format!(
                        "websocket subscribe refused: {}",
                        String::from_utf8_lossy(&body[..body.len().min(512)])
                    ));
                }
            }
            if acc.len() > MAX_HEAD {
                return Err(format!(
                    "{what}: no subscribe confirmation in the first {MAX_HEAD} bytes"
                ));
            }
            match s.read(&mut chunk).await {
                Ok(0) => return Err(format!("{what}: the server closed the connection during subscribe")),
                Ok(n) => acc.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("{what} subscribe read: {e}")),
            }
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Err(format!("no {what} subscribe confirmation within {timeout:?}")),
        Ok(Err(e)) => Err(e),
        Ok(Ok((rest, early))) => Ok((s, rest, early)),
    }
}

/// One SSE or WebSocket subscriber: connects and subscribes (holding a permit of `sem`),
/// signals readiness, then counts deliveries until `stop` or the server closes.
#[allow(clippy::too_many_arguments)]
async fn web_subscriber(
    http: Target,
    via: Via,
    channel: String,
    bufsize: usize,
    stats: Arc<SubStats>,
    setup: Arc<Setup>,
    sem: Arc<Semaphore>,
    setup_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    seed: u64,
) -> CountOnly {
    let (mut s, rest) = {
        let _permit = sem.acquire().await;
        match open_web(&http, via, &channel, seed, setup_timeout).await {
            Ok((s, rest, early)) => {
                stats.delivered.fetch_add(early, Relaxed);
                (s, rest)
            }
            Err(e) => {
                setup.fail(e);
                return CountOnly;
            }
        }
    };
    setup.ready.fetch_add(1, Relaxed);
    let message = memmem::Finder::new(via.markers().1);
    let mut scan = Scan::new(bufsize, &rest);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return CountOnly,
            r = scan.read(&mut s) => match r {
                Ok((0, _)) | Err(_) => {
                    stats.closed.store(true, Relaxed);
                    return CountOnly;
                }
                Ok((total, keep)) => {
                    let n = count_new(&message, &scan.buf[..total], keep);
                    if n > 0 {
                        stats.delivered.fetch_add(n, Relaxed);
                    }
                    scan.roll(total);
                }
            }
        }
    }
}

/// Spawns one SSE or WebSocket subscriber per channel on `http` and waits until all
/// are confirmed (as `scenarios::start_subs` does for RESP).
pub async fn start_web_subs(
    o: &Opts,
    http: &Target,
    via: Via,
    channels: Vec<String>,
    bufsize: usize,
) -> Result<Subs<CountOnly>, String> {
    let n = channels.len();
    let setup = Arc::new(Setup::default());
    let sem = Arc::new(Semaphore::new(o.concurrency.max(1)));
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut stats = Vec::with_capacity(n);
    for (i, channel) in channels.into_iter().enumerate() {
        let st = Arc::new(SubStats::default());
        stats.push(st.clone());
        tasks.spawn(web_subscriber(
            http.clone(),
            via,
            channel,
            bufsize,
            st,
            setup.clone(),
            sem.clone(),
            o.setup_timeout,
            stop_rx.clone(),
            0x77eb + i as u64,
        ));
    }
    let subs = Subs { stats, tasks, stop };
    if let Err(e) = net::wait_ready(&setup, n, o.setup_timeout).await {
        subs.finish().await;
        return Err(e);
    }
    Ok(subs)
}

/// N subscribers of one kind, each on `channel(i)`.
pub async fn start_kind(
    o: &Opts,
    http: Option<&Target>,
    via: Via,
    channels: Vec<String>,
    bufsize: usize,
) -> Result<Subs<CountOnly>, String> {
    match (via, http) {
        (Via::Resp, _) => {
            let specs = channels
                .iter()
                .map(|c| SubSpec {
                    cmd: resp::cmd(&["SUBSCRIBE", c]),
                    confirms: 1,
                })
                .collect();
            scenarios::start_subs(o, specs, bufsize, Instant::now(), |_| CountOnly).await
        }
        (_, Some(h)) => start_web_subs(o, h, via, channels, bufsize).await,
        (_, None) => Err(format!("{} subscribers need --http-port", via.name())),
    }
}

// ---------------------------------------------------------------------------
// Tables of medians over several sides (sse/resp/redis; resp/sse/ws).

/// Medians of `keys` for each named column, then the ratios `(a, b)` of column medians.
fn side_table(
    title: &str,
    cols: &[(&str, &[Report])],
    keys: &[&'static str],
    ratios: &[(usize, usize)],
) -> (String, String) {
    use std::fmt::Write as _;
    let mut table = String::new();
    let mut json = String::new();
    let _ = writeln!(table, "{title}");
    let w = keys.iter().map(|k| k.len()).max().unwrap_or(6).max(6);
    let _ = write!(table, "  {:<w$}", "figure (median)");
    for (name, runs) in cols {
        let _ = write!(table, "  {:>18}", format!("{name} (n={})", runs.len()));
    }
    for &(a, b) in ratios {
        let _ = write!(table, "  {:>12}", format!("{}/{}", cols[a].0, cols[b].0));
    }
    table.push('\n');
    json.push('{');
    for (ki, key) in keys.iter().enumerate() {
        let meds: Vec<Option<f64>> = cols
            .iter()
            .map(|(_, runs)| {
                let mut v: Vec<f64> = runs.iter().filter_map(|r| r.get(key).and_then(Val::as_f64)).collect();
                report::median(&mut v)
            })
            .collect();
        let _ = write!(table, "  {key:<w$}");
        for m in &meds {
            let s = m.map_or("-".to_string(), |v| {
                if v.abs() >= 10_000.0 {
                    Val::Int(v.round() as i64).human()
                } else {
                    format!("{v:.3}")
                }
            });
            let _ = write!(table, "  {s:>18}");
        }
        if ki > 0 {
            json.push(',');
        }
        json_str(&mut json, key);
        json.push_str(":{");
        for (ci, ((name, runs), m)) in cols.iter().zip(&meds).enumerate() {
            if ci > 0 {
                json.push(',');
            }
            json_str(&mut json, name);
            json.push_str(":{\"median\":");
            let _ = match m {
                Some(v) => write!(json, "{}", (v * 1e6).round() / 1e6),
                None => write!(json, "null"),
            };
            json.push_str(",\"runs\":[");
            for (i, r) in runs.iter().enumerate() {
                if i > 0 {
                    json.push(',');
                }
                report::val_json(&mut json, r.get(key).unwrap_or(&Val::Null));
            }
            json.push_str("]}");
        }
        for &(a, b) in ratios {
            let r = match (meds[a], meds[b]) {
                (Some(x), Some(y)) if y != 0.0 => Some(x / y),
                _ => None,
            };
            let _ = write!(table, "  {:>12}", r.map_or("-".into(), |r| format!("{r:.3}")));
            json.push(',');
            json_str(&mut json, &format!("{}/{}", cols[a].0, cols[b].0));
            json.push(':');
            let _ = match r {
                Some(v) => write!(json, "{}", (v * 1e6).round() / 1e6),
                None => write!(json, "null"),
            };
        }
        json.push('}');
        table.push('\n');
    }
    json.push('}');
    (table, json)
}

// ---------------------------------------------------------------------------
// sse-fanout

pub struct SseFanout {
    pub http: Target,
    pub subscribers: usize,
    pub publishers: usize,
    pub payload: usize,
    pub pipeline: usize,
    pub channel: String,
    /// Also RESP subscribers on the same fanout, and redis-server when given.
    pub compare: bool,
    pub runs: usize,
    pub redis: Option<(Target, Option<u32>)>,
    pub pause: Duration,
}

fn fanout_plan(a: &SseFanout, via: Via, report: Report) -> scenarios::Plan {
    let subs = match via {
        Via::Resp => scenarios::Subscribers::Resp(
            (0..a.subscribers)
                .map(|_| SubSpec {
                    cmd: resp::cmd(&["SUBSCRIBE", &a.channel]),
                    confirms: 1,
                })
                .collect(),
        ),
        _ => scenarios::Subscribers::Web {
            http: a.http.clone(),
            via,
            channels: vec![a.channel.clone(); a.subscribers],
        },
    };
    scenarios::Plan {
        report,
        subs,
        sub_bufsize: 64 * 1024,
        fan: a.subscribers as u64,
        pick: net::Pick::Fixed(a.channel.clone().into_bytes()),
        verb: b"PUBLISH",
        payload: a.payload,
        pipeline: a.pipeline,
        publishers: a.publishers,
        slow: None,
    }
}

/// The figures a compare table shows.
const FANOUT_KEYS: &[&str] = &[
    "delivered_rate",
    "publish_rate",
    "delivered_fraction",
    "server_cpu_us_per_delivered",
    "server_cpu_pct",
    "client_cpu_pct",
    "server_rss_bytes",
    "subscribers_closed",
];

/// `sse-fanout`: one SSE run, or (`--compare`) SSE and RESP subscribers on the same
/// fanout alternately, plus RESP on redis-server; medians and ratios. Returns the text
/// to print (table, then one JSON line).
pub async fn run_sse_fanout(o: &Opts, a: &SseFanout, base: impl Fn(&str) -> Report) -> Result<String, String> {
    if !a.compare {
        let plan = fanout_plan(a, Via::Sse, base("sse-fanout"));
        let r = scenarios::run_pubsub(o, plan).await?;
        return Ok(format!("{}{}\n", r.table(), r.json()));
    }
    let mut sides: Vec<(&str, Via, Opts)> = vec![("sse", Via::Sse, o.clone()), ("resp", Via::Resp, o.clone())];
    if let Some((t, pid)) = &a.redis {
        let mut ro = o.clone();
        ro.target = t.clone();
        ro.server_pid = *pid;
        sides.push(("redis", Via::Resp, ro));
    }
    let mut results: Vec<Vec<Report>> = vec![Vec::new(); sides.len()];
    let mut failures = 0;
    for run in 0..a.runs {
        for (i, (name, via, so)) in sides.iter().enumerate() {
            if run + i > 0 {
                tokio::time::sleep(a.pause).await;
            }
            eprintln!(
                "== run {}/{} {name}: {} subscribers on port {}",
                run + 1,
                a.runs,
                via.name(),
                if *via == Via::Resp { so.target.port } else { a.http.port }
            );
            let plan = fanout_plan(a, *via, base(name));
            match scenarios::run_pubsub(so, plan).await {
                Ok(r) => {
                    eprintln!("{}", r.json());
                    results[i].push(r);
                }
                Err(e) => {
                    eprintln!("   run failed: {e}");
                    failures += 1;
                }
            }
        }
    }
    if results.iter().any(|r| r.is_empty()) {
        return Err("no successful run on at least one side".into());
    }
    let cols: Vec<(&str, &[Report])> = sides.iter().zip(&results).map(|(s, r)| (s.0, &r[..])).collect();
    let mut ratios = vec![(0, 1)];
    if cols.len() > 2 {
        ratios.extend([(0, 2), (1, 2)]);
    }
    let title = format!(
        "sse-fanout compare: {} run(s) per side, {} subscribers, {} publisher(s), pipeline {}, payload {} B{}\n  \
         sse = SSE subscribers on fanout (http port {}), resp = RESP subscribers on the same fanout (port {}){}",
        a.runs,
        a.subscribers,
        a.publishers,
        a.pipeline,
        a.payload,
        if failures > 0 {
            format!(", {failures} failed run(s)")
        } else {
            String::new()
        },
        a.http.port,
        o.target.port,
        a.redis.as_ref().map_or(String::new(), |(t, _)| format!(
            ", redis = RESP on redis-server (port {})",
            t.port
        )),
    );
    let (table, figs) = side_table(&title, &cols, FANOUT_KEYS, &ratios);
    let json = format!(
        "{{\"mode\":\"sse-fanout-compare\",\"runs\":{},\"failed_runs\":{failures},\"subscribers\":{},\
         \"publishers\":{},\"pipeline\":{},\"payload\":{},\"figures\":{figs}}}",
        a.runs, a.subscribers, a.publishers, a.pipeline, a.payload
    );
    Ok(format!("{table}{json}\n"))
}

// ---------------------------------------------------------------------------
// idle-memory

pub struct IdleMemory {
    pub kinds: Vec<Via>,
    pub conns: usize,
    pub http: Option<Target>,
    /// Start a fresh fanout for each measurement (then `runs` alternations).
    pub start: Option<(std::path::PathBuf, Vec<String>)>,
    pub runs: usize,
    pub settle: Duration,
}

const IDLE_KEYS: &[&str] = &[
    "rss_per_conn_bytes",
    "used_memory_per_conn_bytes",
    "rss_delta_bytes",
    "used_memory_delta_bytes",
    "setup_s",
];

/// One measurement: memory before, N idle subscribers each on `idle:{i}`, memory after.
async fn idle_once(o: &Opts, a: &IdleMemory, via: Via, mut report: Report) -> Result<Report, String> {
    let probe = o.server();
    let mut ctl = Ctl::open(&o.target, o.setup_timeout).await?;
    tokio::time::sleep(a.settle).await;
    let rss0 = probe.and_then(|p| p.rss_bytes());
    let used0 = ctl.info("memory", "used_memory").await?;
    let t0 = Instant::now();
    let channels = (0..a.conns).map(|i| format!("idle:{i}")).collect();
    eprintln!("  opening {} idle {} subscribers", a.conns, via.name());
    // Small read buffers: the client's memory is not measured, but 1000s of 64 KB add up.
    let subs = start_kind(o, a.http.as_ref(), via, channels, 4096).await?;
    let setup_s = t0.elapsed().as_secs_f64();
    // Let setup-time buffers go before reading.
    tokio::time::sleep(a.settle).await;
    let rss1 = probe.and_then(|p| p.rss_bytes());
    let used1 = ctl.info("memory", "used_memory").await?;
    let closed = subs.closed();
    subs.finish().await;
    let delta = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some(b as i64 - a as i64),
        _ => None,
    };
    let n = a.conns as f64;
    let (drss, dused) = (delta(rss0, rss1), delta(used0, used1));
    report.float("setup_s", setup_s, 3);
    report.opt_int("rss_before_bytes", rss0);
    report.opt_int("rss_after_bytes", rss1);
    report.fig("rss_delta_bytes", drss.map_or(Val::Null, Val::Int));
    report.opt_float("rss_per_conn_bytes", drss.map(|d| d as f64 / n), 1);
    report.opt_int("used_memory_before_bytes", used0);
    report.opt_int("used_memory_after_bytes", used1);
    report.fig("used_memory_delta_bytes", dused.map_or(Val::Null, Val::Int));
    report.opt_float("used_memory_per_conn_bytes", dused.map(|d| d as f64 / n), 1);
    report.int("subscribers_closed", closed);
    if probe.is_none() {
        eprintln!("  note: no --server-pid: RSS figures left out");
    }
    Ok(report)
}

/// Waits until something accepts TCP connections at `t` (bounded).
async fn wait_listening(t: &Target, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        if net::connect(t).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("nothing listens on {}:{} after {within:?}", t.host, t.port));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `idle-memory`: per kind (alternating resp, sse, ws within each run), bytes per idle
/// subscriber; with several kinds, medians and the ratios to resp.
pub async fn run_idle_memory(o: &Opts, a: &IdleMemory, base: impl Fn(&str) -> Report) -> Result<String, String> {
    let mut results: Vec<Vec<Report>> = vec![Vec::new(); a.kinds.len()];
    let mut failures = 0;
    for run in 0..a.runs {
        for (i, &via) in a.kinds.iter().enumerate() {
            let mut so = o.clone();
            let mut guard: Option<ChildGuard> = None;
            if let Some((path, extra)) = &a.start {
                let mut args = vec!["--port".to_string(), o.target.port.to_string()];
                if let Some(h) = &a.http {
                    args.extend(["--http-port".to_string(), h.port.to_string()]);
                }
                args.extend(extra.iter().cloned());
                let g = compare::start_server("fanout", path, &args, &o.target).await?;
                if let Some(h) = &a.http {
                    wait_listening(h, Duration::from_secs(10)).await?;
                }
                so.server_pid = Some(g.pid());
                guard = Some(g);
            }
            eprintln!("== run {}/{} {}", run + 1, a.runs, via.name());
            let r = idle_once(&so, a, via, base(via.name())).await;
            drop(guard);
            match r {
                Ok(r) => {
                    eprintln!("{}", r.json());
                    results[i].push(r);
                }
                Err(e) => {
                    eprintln!("   run failed: {e}");
                    failures += 1;
                }
            }
        }
    }
    if results.iter().any(|r| r.is_empty()) {
        return Err("no successful run for at least one kind".into());
    }
    if a.kinds.len() == 1 && a.runs == 1 {
        let r = &results[0][0];
        return Ok(format!("{}{}\n", r.table(), r.json()));
    }
    let cols: Vec<(&str, &[Report])> = a.kinds.iter().zip(&results).map(|(k, r)| (k.name(), &r[..])).collect();
    let resp = a.kinds.iter().position(|&k| k == Via::Resp);
    let ratios: Vec<(usize, usize)> = match resp {
        Some(r) => (0..a.kinds.len()).filter(|&i| i != r).map(|i| (i, r)).collect(),
        None => Vec::new(),
    };
    let title = format!(
        "idle-memory: {} idle subscriber(s) per kind, each on its own channel, {} run(s){}{}",
        a.conns,
        a.runs,
        if a.start.is_some() {
            ", a fresh fanout per measurement"
        } else {
            ""
        },
        if failures > 0 {
            format!(", {failures} failed run(s)")
        } else {
            String::new()
        }
    );
    let (table, figs) = side_table(&title, &cols, IDLE_KEYS, &ratios);
    let json = format!(
        "{{\"mode\":\"idle-memory\",\"runs\":{},\"failed_runs\":{failures},\"conns\":{},\"figures\":{figs}}}",
        a.runs, a.conns
    );
    Ok(format!("{table}{json}\n"))
}

// ---------------------------------------------------------------------------
// webhook

pub struct Webhook {
    pub name: String,
    pub pattern: String,
    pub channel: String,
    pub publishers: usize,
    pub pipeline: usize,
    pub payload: usize,
    /// `POLICY <p>` for WEBHOOK ADD (None: the server's default).
    pub policy: Option<String>,
    /// Extra words for WEBHOOK ADD (RETRIES 0, MAXQUEUE n, ...).
    pub extra: Vec<String>,
}

/// WEBHOOK INFO's counters, as report keys.
const HOOK_INFO: &[(&str, &str)] = &[
    ("delivered", "hook_info_delivered"),
    ("failed", "hook_info_failed"),
    ("retried", "hook_info_retried"),
    ("dropped", "hook_info_dropped"),
    ("dead-lettered", "hook_info_dead_lettered"),
    ("queued-messages", "hook_info_queued_messages"),
];

/// WEBHOOK INFO's `state` and counters (a flat list of name/value pairs in RESP2).
async fn webhook_info(ctl: &mut Ctl, name: &str, report: &mut Report) {
    let Ok(V::Arr(items)) = ctl.call(&["WEBHOOK", "INFO", name]).await else {
        return;
    };
    for pair in items.chunks(2) {
        let (V::Str(k), Some(v)) = (&pair[0], pair.get(1)) else {
            continue;
        };
        match v {
            V::Str(t) if k == b"state" => report.fig("hook_state", Val::Str(String::from_utf8_lossy(t).into_owned())),
            V::Int(n) => {
                if let Some((_, key)) = HOOK_INFO.iter().find(|(f, _)| f.as_bytes() == k.as_slice()) {
                    report.fig(key, Val::Int(*n));
                }
            }
            _ => {}
        }
    }
}

/// One parsed request at the front of `buf`: (bytes it takes, whether the client asked
/// to close). `Ok(None)`: not complete yet.
pub fn parse_request(buf: &[u8]) -> Result<Option<(usize, bool)>, String> {
    let Some(end) = memmem::find(buf, b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Err("request head over 64 KiB".into())
        } else {
            Ok(None)
        };
    };
    let head = &buf[..end];
    let close = header(head, "connection").is_some_and(|v| v.eq_ignore_ascii_case(b"close"));
    let mut at = end + 4;
    let chunked = header(head, "transfer-encoding").is_some_and(|v| {
        v.split(|&b| b == b',')
            .any(|w| w.trim_ascii().eq_ignore_ascii_case(b"chunked"))
    });
    if chunked {
        loop {
            let Some(nl) = memmem::find(&buf[at..], b"\r\n") else {
                return Ok(None);
            };
            let line = &buf[at..at + nl];
            let hex = line.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
            let size = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| usize::from_str_radix(h, 16).ok())
                .ok_or("bad chunk size")?;
            at += nl + 2;
            if size == 0 {
                // Trailers (none expected), then the blank line.
                loop {
                    let Some(nl) = memmem::find(&buf[at..], b"\r\n") else {
                        return Ok(None);
                    };
                    at += nl + 2;
                    if nl == 0 {
                        return Ok(Some((at, close)));
                    }
                }
            }
            if buf.len() < at + size + 2 {
                return Ok(None);
            }
            at += size + 2;
        }
    }
    let len = match header(head, "content-length") {
        None => 0,
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or("bad Content-Length")?,
    };
    if buf.len() < at + len {
        return Ok(None);
    }
    at += len;
    Ok(Some((at, close)))
}

/// One receiver connection: answers every request `200` with keep-alive, counting.
async fn receiver_conn(mut s: TcpStream, count: Arc<AtomicU64>) {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut at = 0;
        let mut close = false;
        let mut got = 0;
        loop {
            match parse_request(&buf[at..]) {
                Ok(Some((used, c))) => {
                    at += used;
                    got += 1;
                    out.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                    if c {
                        close = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("  receiver: {e}; closing the connection");
                    let _ = s
                        .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                    return;
                }
            }
        }
        buf.drain(..at);
        if got > 0 {
            count.fetch_add(got, Relaxed);
            if s.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if close {
            return;
        }
    }
}

/// The receiver: accepts on 127.0.0.1:0 until aborted; the count of requests answered
/// and of connections accepted.
pub struct Receiver {
    pub port: u16,
    pub requests: Arc<AtomicU64>,
    pub connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Result<Receiver, String> {
        let l = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("receiver bind: {e}"))?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        let requests = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (rq, cn) = (requests.clone(), connections.clone());
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    r = l.accept() => match r {
                        Ok((s, _)) => {
                            let _ = s.set_nodelay(true);
                            cn.fetch_add(1, Relaxed);
                            conns.spawn(receiver_conn(s, rq.clone()));
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    },
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        Ok(Receiver {
            port,
            requests,
            connections,
            task,
        })
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every connection.
        self.task.abort();
    }
}

/// `webhook`: `WEBHOOK ADD <name> http://127.0.0.1:<receiver>/hook <pattern>`, then
/// publishers at full speed to a channel the pattern matches; webhook deliveries/s
/// received.
pub async fn run_webhook(o: &Opts, a: &Webhook, mut report: Report) -> Result<Report, String> {
    let probe = o.server();
    let rx = Receiver::start().await?;
    let url = format!("http://127.0.0.1:{}/hook", rx.port);
    let mut ctl = Ctl::open(&o.target, o.setup_timeout).await?;
    // A webhook left by an interrupted run would double the deliveries.
    let _ = ctl.call(&["WEBHOOK", "DEL", &a.name]).await?;
    let mut add = vec![
        "WEBHOOK".to_string(),
        "ADD".into(),
        a.name.clone(),
        url.clone(),
        a.pattern.clone(),
    ];
    if let Some(p) = &a.policy {
        add.extend(["POLICY".to_string(), p.clone()]);
    }
    add.extend(a.extra.iter().cloned());
    match ctl.call(&add).await? {
        V::Err(e) if e.to_ascii_lowercase().contains("unknown command") => {
            return Err(format!(
                "this server has no WEBHOOK command (it answered: {e}); the webhook scenario \
                 needs a fanout built with webhooks (WEBHOOK ADD name url pattern ...)"
            ))
        }
        V::Err(e) => return Err(format!("WEBHOOK ADD refused: {e}")),
        _ => {}
    }
    eprintln!("  {}", add.join(" "));
    let result = webhook_load(o, a, &rx, probe, &mut report).await;
    if result.is_ok() {
        webhook_info(&mut ctl, &a.name, &mut report).await;
        if report
            .get("hook_state")
            .is_some_and(|v| !matches!(v, Val::Str(s) if s == "active"))
        {
            eprintln!(
                "  warning: the webhook is no longer active (see hook_state): under the disconnect \
                 policy a queue over MAXQUEUE suspends it; the default --policy drop-newest keeps it"
            );
        }
    }
    let del = ctl.call(&["WEBHOOK", "DEL", &a.name]).await;
    result?;
    if let Ok(V::Err(e)) = del {
        eprintln!("  warning: WEBHOOK DEL {} refused: {e}", a.name);
    }
    report.fig("url", Val::Str(url));
    Ok(report)
}

async fn webhook_load(
    o: &Opts,
    a: &Webhook,
    rx: &Receiver,
    probe: Option<crate::sys::Probe>,
    report: &mut Report,
) -> Result<(), String> {
    let mut conns = Vec::with_capacity(a.publishers);
    for _ in 0..a.publishers {
        conns.push(net::connect(&o.target).await?);
    }
    let payload = Arc::new(vec![b'x'; a.payload]);
    let stop = Arc::new(AtomicBool::new(false));
    let pstats = Arc::new(PubStats::default());
    let mut pubs = JoinSet::new();
    for (i, s) in conns.into_iter().enumerate() {
        pubs.spawn(net::publisher(
            s,
            b"PUBLISH",
            net::Pick::Fixed(a.channel.clone().into_bytes()),
            payload.clone(),
            a.pipeline,
            stop.clone(),
            pstats.clone(),
            0x400c + i as u64,
        ));
    }
    eprintln!(
        "  {} publisher(s) running: {:.1}s warm-up + {:.1}s measured",
        a.publishers,
        o.warmup.as_secs_f64(),
        o.duration.as_secs_f64()
    );
    tokio::time::sleep(o.warmup).await;
    let cpu0 = CpuMark::take(probe);
    let (p0, r0) = (pstats.published.load(Relaxed), rx.requests.load(Relaxed));
    tokio::time::sleep(o.duration).await;
    let cpu1 = CpuMark::take(probe);
    let (p1, r1) = (pstats.published.load(Relaxed), rx.requests.load(Relaxed));
    let stuck = stop_publishers(&stop, &mut pubs).await;
    let published = pstats.published.load(Relaxed);
    let waited = drain(o.grace, published, || rx.requests.load(Relaxed)).await;
    let received = rx.requests.load(Relaxed);
    let window = cpu1.at.duration_since(cpu0.at).as_secs_f64();
    report.float("window_s", window, 3);
    report.float("publish_rate", (p1 - p0) as f64 / window, 1);
    report.float("webhook_delivered_rate", (r1 - r0) as f64 / window, 1);
    report.int("published_total", published);
    report.int("received_total", received);
    report.float("delivered_fraction", ratio(received, published), 6);
    report.int("publish_reply_sum", pstats.reply_sum.load(Relaxed));
    report.int("publish_errors", pstats.errors.load(Relaxed));
    report.int("receiver_connections", rx.connections.load(Relaxed));
    report.int("drain_ms", waited.as_millis() as u64);
    cpu0.report(&cpu1, r1 - r0, report);
    report.opt_int("server_rss_bytes", probe.and_then(|p| p.rss_bytes()));
    if let Some(e) = pstats.first_error.lock().unwrap().clone() {
        eprintln!("  warning: {e}");
    }
    if stuck > 0 {
        eprintln!("  warning: {stuck} publisher(s) did not finish within 5 s and were aborted");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_split_across_reads_count_once() {
        let stream = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2c\r\nevent: subscribe\ndata: {}\n\n\r\n\
                       80\r\nevent: message\ndata: {\"channel\":\"bench\",\"data\":\"xx\"}\n\nevent: message\ndata: {}\n\n\r\n"
            .to_vec();
        let f = memmem::Finder::new(b"event: message\n");
        let whole = count_new(&f, &stream, 0);
        assert_eq!(whole, 2);
        // Every split into reads of n bytes, carried over as the subscriber does.
        for n in 1..stream.len() {
            let mut scan = Scan::new(CARRY * 4, b"");
            let mut total_count = 0;
            for piece in stream.chunks(n) {
                let mut at = 0;
                while at < piece.len() {
                    let room = scan.buf.len() - scan.keep;
                    let k = room.min(piece.len() - at);
                    scan.buf[scan.keep..scan.keep + k].copy_from_slice(&piece[at..at + k]);
                    at += k;
                    let (total, keep) = (scan.keep + k, scan.keep);
                    total_count += count_new(&f, &scan.buf[..total], keep);
                    scan.roll(total);
                }
            }
            assert_eq!(total_count, whole, "reads of {n} bytes");
        }
    }

    #[test]
    fn heads() {
        let h = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: abc=\r\n";
        assert_eq!(status_of(h), Some(101));
        assert_eq!(header(h, "sec-websocket-accept"), Some(&b"abc="[..]));
        assert_eq!(header(h, "missing"), None);
    }

    #[test]
    fn masked_frames_unmask() {
        let mut out = Vec::new();
        masked_frame(&mut out, 1, b"hello", [1, 2, 3, 4]);
        assert_eq!(&out[..2], &[0x81, 0x85]);
        let un: Vec<u8> = out[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ [1, 2, 3, 4][i % 4])
            .collect();
        assert_eq!(un, b"hello");
        let mut long = Vec::new();
        masked_frame(&mut long, 1, &[0u8; 300], [0; 4]);
        assert_eq!(&long[..4], &[0x81, 0x80 | 126, 1, 44]);
    }

    #[test]
    fn requests_parse() {
        let two = b"POST /hook HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcPOST /hook HTTP/1.1\r\ncontent-length: 0\r\nConnection: close\r\n\r\n";
        let (a, close) = parse_request(two).unwrap().unwrap();
        assert_eq!((a, close), (45, false));
        assert_eq!(parse_request(&two[a..]).unwrap(), Some((two.len() - a, true)));
        assert_eq!(parse_request(&two[..40]).unwrap(), None);
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(parse_request(chunked).unwrap(), Some((chunked.len(), false)));
        assert_eq!(parse_request(&chunked[..chunked.len() - 1]).unwrap(), None);
        assert!(parse_request(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n").is_err());
    }
}
