//! The throughput scenarios (fanout, channels, patterns, slowsub) share one
//! engine; conns has its own flow. latency lives in latency.rs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::net::{self, CountOnly, Pick, PubStats, Setup, SubSpec, SubStats, Target};
use crate::report::{Report, Val};
use crate::resp::{self, Kind, ReadBuf};
use crate::sys::Probe;

/// Options every scenario shares.
#[derive(Clone, Debug)]
pub struct Opts {
    pub target: Target,
    pub server_pid: Option<u32>,
    pub duration: Duration,
    pub warmup: Duration,
    /// Longest wait for subscribers to drain after publishers stop.
    pub grace: Duration,
    pub setup_timeout: Duration,
    /// Connections being set up at once.
    pub concurrency: usize,
    /// Worker threads of this tool's runtime (`--client-threads`), for the reports.
    pub client_threads: usize,
}

impl Opts {
    pub fn server(&self) -> Option<Probe> {
        self.server_pid.map(Probe::server)
    }
}

/// Subscriber tasks plus what is needed to watch and stop them.
pub struct Subs<H> {
    pub stats: Vec<Arc<SubStats>>,
    pub tasks: JoinSet<H>,
    pub stop: watch::Sender<bool>,
}

impl<H: Send + 'static> Subs<H> {
    pub fn delivered(&self) -> u64 {
        self.stats.iter().map(|s| s.delivered.load(Relaxed)).sum()
    }

    pub fn closed(&self) -> u64 {
        self.stats.iter().filter(|s| s.closed.load(Relaxed)).count() as u64
    }

    /// Signals every subscriber to stop and collects their handlers
    /// (bounded: stragglers are aborted after 2 s).
    pub async fn finish(mut self) -> Vec<H> {
        let _ = self.stop.send(true);
        let mut out = Vec::with_capacity(self.stats.len());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(Ok(h))) => out.push(h),
                Ok(Some(Err(_))) => {}
                Ok(None) | Err(_) => break,
            }
        }
        self.tasks.abort_all();
        out
    }
}

/// Spawns one subscriber task per spec and waits until all confirmed.
pub async fn start_subs<H: net::OnMessage>(
    o: &Opts,
    specs: Vec<SubSpec>,
    bufsize: usize,
    epoch: Instant,
    mut handler: impl FnMut(usize) -> H,
) -> Result<Subs<H>, String> {
    let n = specs.len();
    let setup = Arc::new(Setup::default());
    let sem = Arc::new(Semaphore::new(o.concurrency.max(1)));
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut stats = Vec::with_capacity(n);
    for (i, spec) in specs.into_iter().enumerate() {
        let st = Arc::new(SubStats::default());
        stats.push(st.clone());
        tasks.spawn(net::subscriber(
            o.target.clone(),
            spec,
            bufsize,
            st,
            setup.clone(),
            sem.clone(),
            o.setup_timeout,
            stop_rx.clone(),
            epoch,
            handler(i),
        ));
    }
    let subs = Subs { stats, tasks, stop };
    if let Err(e) = net::wait_ready(&setup, n, o.setup_timeout).await {
        subs.finish().await;
        return Err(e);
    }
    Ok(subs)
}

/// Samples the server's RSS every 250 ms and keeps the maximum.
pub fn rss_sampler(probe: Option<Probe>) -> (Arc<AtomicU64>, Option<tokio::task::JoinHandle<()>>) {
    let max = Arc::new(AtomicU64::new(0));
    let h = probe.map(|p| {
        let max = max.clone();
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(Duration::from_millis(250));
            loop {
                iv.tick().await;
                if let Some(r) = p.rss_bytes() {
                    max.fetch_max(r, Relaxed);
                }
            }
        })
    });
    (max, h)
}

/// CPU readings of the server and of this tool.
#[derive(Clone, Copy)]
pub struct CpuMark {
    pub at: Instant,
    server: Option<u64>,
    me: Option<u64>,
    /// Context switches (voluntary, involuntary) over all threads.
    server_cs: Option<(u64, u64)>,
    me_cs: Option<(u64, u64)>,
}

impl CpuMark {
    pub fn take(server: Option<Probe>) -> CpuMark {
        CpuMark {
            at: Instant::now(),
            server: server.and_then(|p| p.cpu_us()),
            me: Probe::this_process().cpu_us(),
            server_cs: server.and_then(|p| p.ctxt_switches()),
            me_cs: Probe::this_process().ctxt_switches(),
        }
    }

    /// Adds server CPU per delivered message, server and client CPU %.
    pub fn report(&self, end: &CpuMark, delivered: u64, r: &mut Report) {
        self.report_per(end, delivered, "server_cpu_us_per_delivered", r);
    }

    /// As `report`, with the per-operation figure named `per_key`.
    pub fn report_per(&self, end: &CpuMark, delivered: u64, per_key: &'static str, r: &mut Report) {
        let wall_us = end.at.duration_since(self.at).as_micros().max(1) as f64;
        let server = match (self.server, end.server) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64),
            _ => None,
        };
        r.opt_float(
            per_key,
            server.filter(|_| delivered > 0).map(|c| c / delivered as f64),
            3,
        );
        r.opt_float("server_cpu_pct", server.map(|c| 100.0 * c / wall_us), 1);
        let me = match (self.me, end.me) {
            (Some(a), Some(b)) => Some(100.0 * b.saturating_sub(a) as f64 / wall_us),
            _ => None,
        };
        r.opt_float("client_cpu_pct", me, 1);
        let client_cpu = match (self.me, end.me) {
            (Some(a), Some(b)) if delivered > 0 => Some(b.saturating_sub(a) as f64 / delivered as f64),
            _ => None,
        };
        r.opt_float("client_cpu_us_per_delivered", client_cpu, 3);
        let secs = wall_us / 1e6;
        for (who, a, b) in [
            ("server", self.server_cs, end.server_cs),
            ("client", self.me_cs, end.me_cs),
        ] {
            let d = match (a, b) {
                (Some(a), Some(b)) => Some((b.0.saturating_sub(a.0) as f64, b.1.saturating_sub(a.1) as f64)),
                _ => None,
            };
            let per = |x: f64| (delivered > 0).then(|| x / delivered as f64);
            let keys: [&'static str; 4] = if who == "server" {
                [
                    "server_vcsw_per_s",
                    "server_ivcsw_per_s",
                    "server_vcsw_per_delivered",
                    "server_ivcsw_per_delivered",
                ]
            } else {
                [
                    "client_vcsw_per_s",
                    "client_ivcsw_per_s",
                    "client_vcsw_per_delivered",
                    "client_ivcsw_per_delivered",
                ]
            };
            r.opt_float(keys[0], d.map(|d| d.0 / secs), 1);
            r.opt_float(keys[1], d.map(|d| d.1 / secs), 1);
            r.opt_float(keys[2], d.and_then(|d| per(d.0)), 6);
            r.opt_float(keys[3], d.and_then(|d| per(d.1)), 6);
        }
    }

    /// Server CPU microseconds per PUBLISH (the `miss` pattern shape delivers nothing).
    pub fn report_per_publish(&self, end: &CpuMark, published: u64, r: &mut Report) {
        let server = match (self.server, end.server) {
            (Some(a), Some(b)) if published > 0 => Some(b.saturating_sub(a) as f64 / published as f64),
            _ => None,
        };
        r.opt_float("server_cpu_us_per_publish", server, 3);
    }
}

/// Waits (up to `grace`) until `count()` reaches `target` or stops moving
/// for 300 ms. Returns how long it waited.
/// Tells the publishers to stop and lets them finish their in-flight batch (bounded);
/// returns how many had to be aborted.
pub async fn stop_publishers<T: 'static>(stop: &AtomicBool, pubs: &mut JoinSet<T>) -> usize {
    stop.store(true, Relaxed);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Some(_)) = tokio::time::timeout_at(deadline, pubs.join_next()).await {}
    let stuck = pubs.len();
    pubs.abort_all();
    stuck
}

pub async fn drain(grace: Duration, target: u64, count: impl Fn() -> u64) -> Duration {
    let t0 = Instant::now();
    let mut last = count();
    let mut still = Instant::now();
    while t0.elapsed() < grace && last < target {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let c = count();
        if c != last {
            last = c;
            still = Instant::now();
        } else if still.elapsed() >= Duration::from_millis(300) {
            break;
        }
    }
    t0.elapsed()
}

/// The counted subscribers of a throughput run.
pub enum Subscribers {
    /// RESP connections, one per spec.
    Resp(Vec<SubSpec>),
    /// SSE or WebSocket subscribers on fanout's HTTP port, one per channel.
    Web {
        http: Target,
        via: crate::web::Via,
        channels: Vec<String>,
    },
}

impl Subscribers {
    fn len(&self) -> usize {
        match self {
            Subscribers::Resp(s) => s.len(),
            Subscribers::Web { channels, .. } => channels.len(),
        }
    }
}

/// A throughput run description.
pub struct Plan {
    pub report: Report,
    pub subs: Subscribers,
    pub sub_bufsize: usize,
    /// Deliveries expected per PUBLISH, over the counted subscribers.
    pub fan: u64,
    pub pick: Pick,
    /// `PUBLISH`, or `SPUBLISH` (subscribers then use SSUBSCRIBE).
    pub verb: &'static [u8],
    pub payload: usize,
    pub pipeline: usize,
    pub publishers: usize,
    /// slowsub: a subscriber that never reads.
    pub slow: Option<SubSpec>,
}

/// Runs publishers flat out against counted subscribers: warm-up, measured
/// window, drain, report.
pub async fn run_pubsub(o: &Opts, plan: Plan) -> Result<Report, String> {
    let Plan {
        mut report,
        subs,
        sub_bufsize,
        fan,
        pick,
        verb,
        payload,
        pipeline,
        publishers,
        slow,
    } = plan;
    let probe = o.server();
    let epoch = Instant::now();
    let nsubs = subs.len();
    eprintln!(
        "  setting up {nsubs} subscriber connection(s){}",
        if slow.is_some() { " + 1 slow" } else { "" }
    );

    // The never-reading subscriber: subscribe, then leave it alone.
    let mut slow_conn = None;
    if let Some(spec) = slow {
        let mut s = net::connect(&o.target).await?;
        let mut rb = ReadBuf::new(4096);
        net::subscribe(&mut s, &mut rb, &spec.cmd, spec.confirms, o.setup_timeout).await?;
        slow_conn = Some(s);
    }

    let subs = match subs {
        Subscribers::Resp(specs) => start_subs(o, specs, sub_bufsize, epoch, |_| CountOnly).await?,
        Subscribers::Web { http, via, channels } => {
            crate::web::start_web_subs(o, &http, via, channels, sub_bufsize).await?
        }
    };

    let mut pub_conns = Vec::with_capacity(publishers);
    for _ in 0..publishers {
        pub_conns.push(net::connect(&o.target).await?);
    }
    let (rss_max, sampler) = rss_sampler(probe);
    let payload = Arc::new(vec![b'x'; payload]);
    let stop = Arc::new(AtomicBool::new(false));
    let pstats = Arc::new(PubStats::default());
    let mut pubs = JoinSet::new();
    for (i, s) in pub_conns.into_iter().enumerate() {
        pubs.spawn(net::publisher(
            s,
            verb,
            pick.clone(),
            payload.clone(),
            pipeline,
            stop.clone(),
            pstats.clone(),
            0x5eed + i as u64,
        ));
    }
    eprintln!(
        "  {publishers} publisher(s) running: {:.1}s warm-up + {:.1}s measured",
        o.warmup.as_secs_f64(),
        o.duration.as_secs_f64()
    );

    tokio::time::sleep(o.warmup).await;
    let cpu0 = CpuMark::take(probe);
    let p0 = pstats.published.load(Relaxed);
    let d0 = subs.delivered();
    tokio::time::sleep(o.duration).await;
    let cpu1 = CpuMark::take(probe);
    let p1 = pstats.published.load(Relaxed);
    let d1 = subs.delivered();
    let stuck = stop_publishers(&stop, &mut pubs).await;

    let published = pstats.published.load(Relaxed);
    let reply_sum = pstats.reply_sum.load(Relaxed);
    let expected = published * fan;
    let waited = drain(o.grace, expected, || subs.delivered()).await;
    let delivered = subs.delivered();
    let window = cpu1.at.duration_since(cpu0.at).as_secs_f64();
    let rss_end = probe.and_then(|p| p.rss_bytes());
    if let Some(r) = rss_end {
        rss_max.fetch_max(r, Relaxed);
    }
    if let Some(h) = sampler {
        h.abort();
    }
    let per_sub: Vec<u64> = subs.stats.iter().map(|s| s.delivered.load(Relaxed)).collect();
    let closed = subs.closed();

    // The slow subscriber: after publishers stopped, read what is left. EOF
    // or reset means the server dropped it; silence means it is still open.
    let slow_state = match slow_conn {
        None => None,
        Some(mut s) => Some(slow_check(&mut s).await),
    };
    subs.finish().await;

    report.float("window_s", window, 3);
    report.float("publish_rate", (p1 - p0) as f64 / window, 1);
    report.float("delivered_rate", (d1 - d0) as f64 / window, 1);
    report.int("published_total", published);
    report.int("delivered_total", delivered);
    report.int("expected_total", expected);
    report.float("delivered_fraction", ratio(delivered, expected), 6);
    report.int("publish_reply_sum", reply_sum);
    report.float("reply_sum_fraction", ratio(reply_sum, expected), 6);
    report.float("delivered_vs_reply_sum", ratio(delivered, reply_sum), 6);
    report.int("publish_errors", pstats.errors.load(Relaxed));
    report.int("subscribers_closed", closed);
    if per_sub.len() > 1 {
        report.int("per_sub_min", per_sub.iter().copied().min().unwrap_or(0));
        report.int("per_sub_max", per_sub.iter().copied().max().unwrap_or(0));
    }
    report.int("drain_ms", waited.as_millis() as u64);
    cpu0.report(&cpu1, d1 - d0, &mut report);
    cpu0.report_per_publish(&cpu1, p1 - p0, &mut report);
    report.opt_int("server_rss_bytes", rss_end);
    report.opt_int("server_rss_max_bytes", probe.map(|_| rss_max.load(Relaxed)));
    if let Some((state, bytes)) = slow_state {
        report.fig("slow_sub_closed", Val::Bool(state != "open"));
        report.fig("slow_sub_state", Val::Str(state.to_string()));
        report.int("slow_sub_bytes_drained", bytes);
        // Deliveries the server counted for the slow subscriber (PUBLISH
        // replies include it until it is dropped).
        report.int("slow_sub_claimed", reply_sum.saturating_sub(delivered));
    }
    if let Some(e) = pstats.first_error.lock().unwrap().clone() {
        eprintln!("  warning: {e}");
    }
    if stuck > 0 {
        eprintln!("  warning: {stuck} publisher(s) did not finish within 5 s and were aborted");
    }
    Ok(report)
}

pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

/// Reads a connection that was never read: "closed" (EOF), "reset", or
/// "open" (idle for 300 ms, or still streaming after 2 s). Returns the state
/// and the bytes drained.
async fn slow_check(s: &mut tokio::net::TcpStream) -> (&'static str, u64) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
            Err(_) => return ("open", total),
            Ok(Ok(0)) => return ("closed", total),
            Ok(Ok(n)) => {
                total += n as u64;
                if Instant::now() > deadline {
                    return ("open", total);
                }
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => return ("reset", total),
            Ok(Err(_)) => return ("closed", total),
        }
    }
}

/// `conns`: N idle subscribers on their own channels; memory per connection,
/// then one message to each.
pub async fn run_conns(o: &Opts, n: usize, payload: usize, mut report: Report) -> Result<Report, String> {
    let probe = o.server();
    let epoch = Instant::now();
    let rss_before = probe.and_then(|p| p.rss_bytes());
    let cpu0 = CpuMark::take(probe);
    let specs = (0..n)
        .map(|i| SubSpec {
            cmd: resp::cmd(&["SUBSCRIBE".to_string(), format!("c:{i}")]),
            confirms: 1,
        })
        .collect();
    eprintln!("  opening {n} subscriber connections");
    let subs = start_subs(o, specs, 4096, epoch, |_| CountOnly).await?;
    let cpu1 = CpuMark::take(probe);
    let setup_s = cpu1.at.duration_since(cpu0.at).as_secs_f64();
    let rss_after = probe.and_then(|p| p.rss_bytes());
    eprintln!("  {n} connections subscribed in {setup_s:.2}s; publishing once to each channel");

    // One message to each channel, pipelined 256 at a time.
    let mut s = net::connect(&o.target).await?;
    let body = vec![b'x'; payload];
    let mut batch = Vec::new();
    let mut rb = ReadBuf::new(64 * 1024);
    let (mut published, mut reply_sum, mut errors) = (0u64, 0u64, 0u64);
    let t_pub = Instant::now();
    let publish = async {
        let mut i = 0;
        while i < n {
            let k = (n - i).min(256);
            batch.clear();
            for j in i..i + k {
                resp::push_publish_numbered(&mut batch, b"c:", j as u64, b"", &body);
            }
            s.write_all(&batch).await.map_err(|e| format!("publish: {e}"))?;
            let mut got = 0;
            while got < k {
                while let Some((f, _)) = rb.next_frame().map_err(|e| e.0.to_string())? {
                    got += 1;
                    match f.kind {
                        Kind::Integer(v) => {
                            published += 1;
                            reply_sum += v.max(0) as u64;
                        }
                        _ => errors += 1,
                    }
                }
                if got < k && rb.fill(&mut s).await.map_err(|e| format!("publish: {e}"))? == 0 {
                    return Err("server closed the publisher connection".to_string());
                }
            }
            i += k;
        }
        Ok::<(), String>(())
    };
    tokio::time::timeout(o.setup_timeout, publish)
        .await
        .map_err(|_| "publishing timed out".to_string())??;
    let pub_s = t_pub.elapsed().as_secs_f64();
    let waited = drain(o.grace.max(Duration::from_secs(5)), n as u64, || subs.delivered()).await;
    let delivered = subs.delivered();
    let closed = subs.closed();
    let rss_end = probe.and_then(|p| p.rss_bytes());
    let cpu2 = CpuMark::take(probe);
    subs.finish().await;

    report.float("setup_s", setup_s, 3);
    report.float("connect_rate", n as f64 / setup_s.max(1e-9), 1);
    report.opt_int("server_rss_before_bytes", rss_before);
    report.opt_int("server_rss_after_bytes", rss_after);
    let per_conn = match (rss_before, rss_after) {
        (Some(a), Some(b)) if n > 0 => Some((b as f64 - a as f64) / n as f64),
        _ => None,
    };
    report.opt_float("server_rss_per_conn_bytes", per_conn, 1);
    let setup_cpu = match (cpu0.server, cpu1.server) {
        (Some(a), Some(b)) if n > 0 => Some(b.saturating_sub(a) as f64 / n as f64),
        _ => None,
    };
    report.opt_float("server_cpu_us_per_conn", setup_cpu, 3);
    report.int("published", published);
    report.int("publish_reply_sum", reply_sum);
    report.int("publish_errors", errors);
    report.int("delivered", delivered);
    report.fig("all_delivered", Val::Bool(delivered == n as u64));
    report.float("publish_s", pub_s, 3);
    report.int("drain_ms", waited.as_millis() as u64);
    report.int("subscribers_closed", closed);
    cpu1.report(&cpu2, delivered, &mut report);
    report.opt_int("server_rss_bytes", rss_end);
    Ok(report)
}
