//! Stream scenarios: `xadd` (append throughput), `xgroup` (consumer-group
//! read + ack throughput), `xwake` (wake-up latency of blocked XREAD
//! readers, open loop) and `xmem` (memory per entry and per pending entry).
//!
//! Same rules as the pub/sub scenarios: RESP2 over plain TCP, every wait
//! bounded, figures in a `Report`. Keys used: `bench:s` / `bench:s:{i}`
//! (xadd), `bench:g` (xgroup), `bench:w:{k}` (xwake), `bench:m` (xmem); each
//! run deletes its keys (DEL) before and after, so runs of `compare` start
//! from the same state.

use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::latency::{first_due_at, new_hist, open_loop, read_stamp, write_stamp, STAMP_LEN};
use crate::net::{self, Rng, Setup, Target};
use crate::report::{Report, Val};
use crate::resp::{self, Frame, Kind, ReadBuf};
use crate::scenarios::{drain, ratio, rss_sampler, CpuMark, Opts};

// ---------------------------------------------------------------------------
// Reply parsing (stream replies are nested arrays; resp.rs only classifies).

/// A decoded reply, for control paths (allocates).
#[derive(Clone, Debug, PartialEq)]
pub enum V {
    Nil,
    Int(i64),
    Str(Vec<u8>),
    Err(String),
    Arr(Vec<V>),
}

impl V {
    fn int(&self) -> Option<i64> {
        match self {
            V::Int(i) => Some(*i),
            _ => None,
        }
    }
}

/// Cursor over one complete frame.
struct Cur<'a> {
    b: &'a [u8],
    p: usize,
}

const BAD: &str = "malformed stream reply";

impl<'a> Cur<'a> {
    fn new(b: &'a [u8]) -> Cur<'a> {
        Cur { b, p: 0 }
    }

    /// Type byte and the rest of the line.
    fn line(&mut self) -> Result<(u8, &'a [u8]), &'static str> {
        let tag = *self.b.get(self.p).ok_or(BAD)?;
        let rel = memchr::memchr(b'\n', &self.b[self.p + 1..]).ok_or(BAD)?;
        let nl = self.p + 1 + rel;
        if nl < self.p + 2 || self.b[nl - 1] != b'\r' {
            return Err(BAD);
        }
        let l = &self.b[self.p + 1..nl - 1];
        self.p = nl + 1;
        Ok((tag, l))
    }

    fn num(l: &[u8]) -> Result<i64, &'static str> {
        std::str::from_utf8(l).ok().and_then(|s| s.parse().ok()).ok_or(BAD)
    }

    fn body(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let end = self.p.checked_add(n).ok_or(BAD)?;
        if self.b.len() < end + 2 || &self.b[end..end + 2] != b"\r\n" {
            return Err(BAD);
        }
        let s = &self.b[self.p..end];
        self.p = end + 2;
        Ok(s)
    }

    /// A bulk string (`None` for a null bulk).
    fn bulk(&mut self) -> Result<Option<&'a [u8]>, &'static str> {
        match self.line()? {
            (b'$', l) => {
                let n = Self::num(l)?;
                if n < 0 {
                    Ok(None)
                } else {
                    self.body(n as usize).map(Some)
                }
            }
            _ => Err(BAD),
        }
    }

    /// An array header (`None` for a null array).
    fn array(&mut self) -> Result<Option<usize>, &'static str> {
        match self.line()? {
            (b'*', l) => {
                let n = Self::num(l)?;
                Ok(if n < 0 { None } else { Some(n as usize) })
            }
            _ => Err(BAD),
        }
    }

    fn value(&mut self, depth: u32) -> Result<V, &'static str> {
        if depth > 16 {
            return Err(BAD);
        }
        let (tag, l) = self.line()?;
        Ok(match tag {
            b'+' => V::Str(l.to_vec()),
            b'-' => V::Err(String::from_utf8_lossy(l).into_owned()),
            b':' => V::Int(Self::num(l)?),
            b'_' => V::Nil,
            b'$' => {
                let n = Self::num(l)?;
                if n < 0 {
                    V::Nil
                } else {
                    V::Str(self.body(n as usize)?.to_vec())
                }
            }
            b'*' | b'>' => {
                let n = Self::num(l)?;
                if n < 0 {
                    V::Nil
                } else {
                    let mut v = Vec::with_capacity((n as usize).min(1024));
                    for _ in 0..n {
                        v.push(self.value(depth + 1)?);
                    }
                    V::Arr(v)
                }
            }
            _ => return Err(BAD),
        })
    }
}

/// Decodes one complete frame.
pub fn decode(frame: &[u8]) -> Result<V, String> {
    Cur::new(frame).value(0).map_err(|e| e.to_string())
}

/// Walks an XREAD / XREADGROUP reply (RESP2): calls `f(id, last value)` for
/// every entry and returns the number of entries (0 for a null reply).
pub fn for_each_entry(frame: &[u8], mut f: impl FnMut(&[u8], &[u8])) -> Result<u64, String> {
    let mut c = Cur::new(frame);
    let nstreams = match c.line()? {
        (b'-', l) => return Err(format!("error reply: {}", String::from_utf8_lossy(l))),
        (b'_', _) => return Ok(0),
        (b'*', l) => Cur::num(l)?,
        _ => return Err(BAD.into()),
    };
    let mut total = 0;
    for _ in 0..nstreams.max(0) {
        if c.array()? != Some(2) {
            return Err(BAD.into());
        }
        c.bulk()?;
        let n = c.array()?.unwrap_or(0);
        for _ in 0..n {
            if c.array()? != Some(2) {
                return Err(BAD.into());
            }
            let id = c.bulk()?.ok_or(BAD)?;
            let mut last: &[u8] = b"";
            if let Some(m) = c.array()? {
                for _ in 0..m {
                    last = c.bulk()?.unwrap_or(b"");
                }
            }
            f(id, last);
            total += 1;
        }
    }
    Ok(total)
}

/// `field:value` of an INFO reply.
pub fn info_field(info: &[u8], field: &str) -> Option<u64> {
    let s = String::from_utf8_lossy(info);
    s.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == field).then(|| v.trim().parse().ok()).flatten()
    })
}

// ---------------------------------------------------------------------------
// Connections.

/// Reads one complete frame and hands it to `f` (bounded by the caller).
async fn with_frame<T>(rb: &mut ReadBuf, s: &mut TcpStream, mut f: impl FnMut(Frame, &[u8]) -> T) -> Result<T, String> {
    loop {
        match rb.next_frame() {
            Ok(Some((fr, bytes))) => return Ok(f(fr, bytes)),
            Ok(None) => {}
            Err(e) => return Err(e.0.to_string()),
        }
        match rb.fill(s).await {
            Ok(0) => return Err("server closed the connection".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// A request/reply connection for setup and measurement side channels.
pub struct Ctl {
    s: TcpStream,
    rb: ReadBuf,
    timeout: Duration,
}

impl Ctl {
    pub async fn open(t: &Target, timeout: Duration) -> Result<Ctl, String> {
        Ok(Ctl {
            s: net::connect(t).await?,
            rb: ReadBuf::new(64 * 1024),
            timeout,
        })
    }

    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<V, String> {
        let name = String::from_utf8_lossy(args[0].as_ref()).into_owned();
        self.s
            .write_all(&resp::cmd(args))
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        let fut = with_frame(&mut self.rb, &mut self.s, |_, b| decode(b));
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| format!("{name}: no reply within {:?}", self.timeout))?
            .and_then(|r| r)
            .map_err(|e| format!("{name}: {e}"))
    }

    /// A call whose error reply is an error.
    pub async fn ok<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<V, String> {
        match self.call(args).await? {
            V::Err(e) => Err(format!("{} refused: {e}", String::from_utf8_lossy(args[0].as_ref()))),
            v => Ok(v),
        }
    }

    /// `INFO <section>` field.
    pub async fn info(&mut self, section: &str, field: &str) -> Result<Option<u64>, String> {
        match self.ok(&["INFO", section]).await? {
            V::Str(b) => Ok(info_field(&b, field)),
            v => Err(format!("INFO: unexpected reply {v:?}")),
        }
    }

    /// Best-effort DEL (warns on an error reply).
    pub async fn del(&mut self, keys: &[String]) -> Result<(), String> {
        for chunk in keys.chunks(1000) {
            let mut args = vec!["DEL".to_string()];
            args.extend(chunk.iter().cloned());
            if let V::Err(e) = self.call(&args).await? {
                eprintln!("  warning: DEL refused ({e}); keys of an earlier run may remain");
                break;
            }
        }
        Ok(())
    }
}

fn xadd_cmd(key: &[u8], maxlen: Option<u64>, payload: &[u8]) -> Vec<u8> {
    let ml = maxlen.map(|n| n.to_string());
    let mut args: Vec<&[u8]> = vec![b"XADD", key];
    if let Some(n) = &ml {
        args.extend([b"MAXLEN".as_slice(), b"~", n.as_bytes()]);
    }
    args.extend([b"*".as_slice(), b"f", payload]);
    resp::cmd(&args)
}

/// Appends `entries` entries to `key` as fast as possible (one connection,
/// writer and reader halves, 1000 XADDs per write). Returns the seconds it
/// took; any error reply is an error.
pub async fn fill(t: &Target, key: &str, entries: u64, payload: usize, timeout: Duration) -> Result<f64, String> {
    let s = net::connect(t).await?;
    let (mut r, mut w) = s.into_split();
    let one = xadd_cmd(key.as_bytes(), None, &vec![b'x'; payload]);
    let t0 = Instant::now();
    let writer = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(one.len() * 1000);
        let mut left = entries;
        while left > 0 {
            let k = left.min(1000);
            batch.clear();
            for _ in 0..k {
                batch.extend_from_slice(&one);
            }
            w.write_all(&batch).await.map_err(|e| format!("fill write: {e}"))?;
            left -= k;
        }
        Ok::<_, String>(w)
    });
    let read = async {
        let mut rb = ReadBuf::new(256 * 1024);
        let mut got = 0u64;
        let mut last_print = Instant::now();
        while got < entries {
            while let Some((f, b)) = rb.next_frame().map_err(|e| e.0.to_string())? {
                if f.kind != Kind::Bulk {
                    return Err(format!("XADD during fill: {}", String::from_utf8_lossy(b).trim_end()));
                }
                got += 1;
            }
            if got >= entries {
                break;
            }
            if rb.fill(&mut r).await.map_err(|e| format!("fill read: {e}"))? == 0 {
                return Err("server closed the fill connection".into());
            }
            if last_print.elapsed() >= Duration::from_secs(2) {
                eprintln!("  ... {got}/{entries} entries added");
                last_print = Instant::now();
            }
        }
        Ok(())
    };
    let res = tokio::time::timeout(timeout, read).await;
    let w = match res {
        Err(_) => {
            writer.abort();
            return Err(format!("filling {entries} entries took more than {timeout:?}"));
        }
        Ok(Err(e)) => {
            writer.abort();
            return Err(e);
        }
        Ok(Ok(())) => writer.await.map_err(|e| e.to_string())??,
    };
    drop(w);
    Ok(t0.elapsed().as_secs_f64())
}

/// Time allowed for adding `entries` entries (at least 20,000 XADD/s).
pub fn fill_budget(o: &Opts, entries: u64) -> Duration {
    o.setup_timeout + Duration::from_secs_f64(entries as f64 / 20_000.0)
}

// ---------------------------------------------------------------------------
// xadd

pub struct XaddArgs {
    pub producers: usize,
    pub pipeline: usize,
    pub payload: usize,
    pub per_producer: bool,
    pub maxlen: Option<u64>,
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Counts {
    fn fail(&self, e: String) {
        let mut g = self.first_error.lock().unwrap();
        if g.is_none() {
            *g = Some(e);
        }
    }
}

/// Closed loop: `pipeline` copies of `one` per write, then that many
/// replies; bulk replies (entry IDs) count as done.
async fn xadd_producer(mut s: TcpStream, one: Vec<u8>, pipeline: usize, stop: Arc<AtomicBool>, c: Arc<Counts>) {
    let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * pipeline).collect();
    let mut rb = ReadBuf::new(64 * 1024);
    while !stop.load(Relaxed) {
        if let Err(e) = s.write_all(&batch).await {
            c.fail(format!("XADD write: {e}"));
            return;
        }
        let (mut got, mut ok, mut errs) = (0usize, 0u64, 0u64);
        while got < pipeline {
            loop {
                match rb.next_frame() {
                    Ok(Some((f, b))) => {
                        got += 1;
                        if f.kind == Kind::Bulk {
                            ok += 1;
                        } else {
                            errs += 1;
                            c.fail(format!("XADD reply: {}", String::from_utf8_lossy(b).trim_end()));
                        }
                        if got == pipeline {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        c.fail(format!("XADD: {}", e.0));
                        return;
                    }
                }
            }
            if got < pipeline {
                match rb.fill(&mut s).await {
                    Ok(0) => {
                        c.fail("server closed a producer connection".into());
                        return;
                    }
                    Err(e) => {
                        c.fail(format!("XADD read: {e}"));
                        return;
                    }
                    Ok(_) => {}
                }
            }
        }
        c.ok.fetch_add(ok, Relaxed);
        if errs > 0 {
            c.errors.fetch_add(errs, Relaxed);
        }
    }
}

pub async fn run_xadd(o: &Opts, a: XaddArgs, mut report: Report) -> Result<Report, String> {
    let probe = o.server();
    let keys: Vec<String> = if a.per_producer {
        (0..a.producers).map(|i| format!("bench:s:{i}")).collect()
    } else {
        vec!["bench:s".to_string()]
    };
    let mut ctl = Ctl::open(&o.target, o.setup_timeout).await?;
    ctl.del(&keys).await?;
    let payload = vec![b'x'; a.payload];
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let mut tasks = JoinSet::new();
    for i in 0..a.producers {
        let s = net::connect(&o.target).await?;
        let key = &keys[i % keys.len()];
        let one = xadd_cmd(key.as_bytes(), a.maxlen, &payload);
        tasks.spawn(xadd_producer(s, one, a.pipeline, stop.clone(), counts.clone()));
    }
    let (rss_max, sampler) = rss_sampler(probe);
    eprintln!(
        "  {} producer(s) on {} stream(s): {:.1}s warm-up + {:.1}s measured",
        a.producers,
        keys.len(),
        o.warmup.as_secs_f64(),
        o.duration.as_secs_f64()
    );
    tokio::time::sleep(o.warmup).await;
    let cpu0 = CpuMark::take(probe);
    let n0 = counts.ok.load(Relaxed);
    tokio::time::sleep(o.duration).await;
    let cpu1 = CpuMark::take(probe);
    let n1 = counts.ok.load(Relaxed);
    stop.store(true, Relaxed);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Some(_)) = tokio::time::timeout_at(deadline, tasks.join_next()).await {}
    let stuck = tasks.len();
    tasks.abort_all();
    let rss_end = probe.and_then(|p| p.rss_bytes());
    if let Some(r) = rss_end {
        rss_max.fetch_max(r, Relaxed);
    }
    if let Some(h) = sampler {
        h.abort();
    }
    let mut xlen = 0u64;
    for k in &keys {
        xlen += ctl.ok(&["XLEN", k.as_str()]).await?.int().unwrap_or(0).max(0) as u64;
    }
    ctl.del(&keys).await?;

    let window = cpu1.at.duration_since(cpu0.at).as_secs_f64();
    let total = counts.ok.load(Relaxed);
    report.float("window_s", window, 3);
    report.float("xadd_rate", (n1 - n0) as f64 / window, 1);
    report.int("xadd_total", total);
    report.int("xadd_errors", counts.errors.load(Relaxed));
    report.int("stream_length_total", xlen);
    if a.maxlen.is_none() {
        // Every counted reply is an entry in the stream(s).
        report.fig("length_matches_replies", Val::Bool(xlen == total));
    }
    cpu0.report_per(&cpu1, n1 - n0, "server_cpu_us_per_xadd", &mut report);
    report.opt_int("server_rss_bytes", rss_end);
    report.opt_int("server_rss_max_bytes", probe.map(|_| rss_max.load(Relaxed)));
    if let Some(e) = counts.first_error.lock().unwrap().clone() {
        eprintln!("  warning: {e}");
    }
    if stuck > 0 {
        eprintln!("  warning: {stuck} producer(s) did not finish within 5 s and were aborted");
    }
    Ok(report)
}

// ---------------------------------------------------------------------------
// xgroup

pub struct XgroupArgs {
    pub entries: u64,
    pub consumers: usize,
    pub count: usize,
    pub payload: usize,
}

#[derive(Default)]
struct GroupStats {
    consumed: AtomicU64,
    acked: AtomicU64,
    /// Consumers that saw the stream drained.
    drained: AtomicUsize,
    /// ns since the run's epoch of the last consumer's drain.
    drained_at_ns: AtomicU64,
}

/// `XREADGROUP ... >`, then `XACK` of what came pipelined with the next
/// `XREADGROUP`, until a null reply (drained) or `stop`.
#[allow(clippy::too_many_arguments)]
async fn group_consumer(
    mut s: TcpStream,
    key: String,
    name: String,
    count: usize,
    stop: Arc<AtomicBool>,
    st: Arc<GroupStats>,
    epoch: Instant,
    nconsumers: usize,
) -> Result<(), String> {
    let read_cmd = resp::cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        &name,
        "COUNT",
        &count.to_string(),
        "STREAMS",
        &key,
        ">",
    ]);
    let mut rb = ReadBuf::new(256 * 1024);
    let mut ids: Vec<u8> = Vec::with_capacity(count * 32);
    let mut out: Vec<u8> = Vec::with_capacity(count * 32 + 256);
    let ack_head = |out: &mut Vec<u8>, n: u64| {
        out.push(b'*');
        resp::push_uint(out, 3 + n);
        out.extend_from_slice(b"\r\n$4\r\nXACK\r\n");
        resp::push_bulk(out, key.as_bytes());
        resp::push_bulk(out, b"g");
    };
    let read_ack = |v: Kind, b: &[u8]| match v {
        Kind::Integer(n) => Ok(n.max(0) as u64),
        _ => Err(format!("XACK reply: {}", String::from_utf8_lossy(b).trim_end())),
    };
    s.write_all(&read_cmd)
        .await
        .map_err(|e| format!("XREADGROUP write: {e}"))?;
    let mut ack_pending = false;
    loop {
        if ack_pending {
            let n = with_frame(&mut rb, &mut s, |f, b| read_ack(f.kind, b)).await??;
            st.acked.fetch_add(n, Relaxed);
        }
        ids.clear();
        let n = with_frame(&mut rb, &mut s, |_, b| {
            for_each_entry(b, |id, _| resp::push_bulk(&mut ids, id))
        })
        .await??;
        st.consumed.fetch_add(n, Relaxed);
        if n == 0 {
            if st.drained.fetch_add(1, Relaxed) + 1 == nconsumers {
                st.drained_at_ns.store(epoch.elapsed().as_nanos() as u64, Relaxed);
            }
            return Ok(());
        }
        out.clear();
        ack_head(&mut out, n);
        out.extend_from_slice(&ids);
        let stopping = stop.load(Relaxed);
        if !stopping {
            out.extend_from_slice(&read_cmd);
        }
        s.write_all(&out).await.map_err(|e| format!("XACK write: {e}"))?;
        ack_pending = true;
        if stopping {
            let n = with_frame(&mut rb, &mut s, |f, b| read_ack(f.kind, b)).await??;
            st.acked.fetch_add(n, Relaxed);
            return Ok(());
        }
    }
}

pub async fn run_xgroup(o: &Opts, a: XgroupArgs, mut report: Report) -> Result<Report, String> {
    let probe = o.server();
    let key = "bench:g".to_string();
    let mut ctl = Ctl::open(&o.target, o.setup_timeout).await?;
    ctl.del(std::slice::from_ref(&key)).await?;
    eprintln!("  filling {key} with {} entries of {} B", a.entries, a.payload);
    let fill_s = fill(&o.target, &key, a.entries, a.payload, fill_budget(o, a.entries)).await?;
    ctl.ok(&["XGROUP", "CREATE", key.as_str(), "g", "0"]).await?;
    let rss_filled = probe.and_then(|p| p.rss_bytes());

    let stop = Arc::new(AtomicBool::new(false));
    let st = Arc::new(GroupStats::default());
    let mut conns = Vec::with_capacity(a.consumers);
    for _ in 0..a.consumers {
        conns.push(net::connect(&o.target).await?);
    }
    let (rss_max, sampler) = rss_sampler(probe);
    let mut tasks = JoinSet::new();
    let epoch = Instant::now();
    let cpu_start = CpuMark::take(probe);
    for (i, s) in conns.into_iter().enumerate() {
        tasks.spawn(group_consumer(
            s,
            key.clone(),
            format!("c{i}"),
            a.count,
            stop.clone(),
            st.clone(),
            epoch,
            a.consumers,
        ));
    }
    eprintln!(
        "  {} consumer(s), COUNT {}: {:.1}s warm-up + {:.1}s measured (or until drained)",
        a.consumers,
        a.count,
        o.warmup.as_secs_f64(),
        o.duration.as_secs_f64()
    );
    let all_drained = || st.drained.load(Relaxed) >= a.consumers;
    let sleep_or_drain = |d: Duration| {
        let st = st.clone();
        async move {
            let end = Instant::now() + d;
            while Instant::now() < end && st.drained.load(Relaxed) < a.consumers {
                tokio::time::sleep(Duration::from_millis(5).min(end.saturating_duration_since(Instant::now()))).await;
            }
        }
    };
    sleep_or_drain(o.warmup).await;
    let drained_in_warmup = all_drained();
    // If the stream drained during the warm-up, the window is the whole
    // consumption (from the start of the consumers).
    let (cpu0, a0) = if drained_in_warmup {
        (cpu_start, 0)
    } else {
        (CpuMark::take(probe), st.acked.load(Relaxed))
    };
    sleep_or_drain(o.duration).await;
    let mut cpu1 = CpuMark::take(probe);
    let drained = all_drained();
    if drained {
        cpu1.at = epoch + Duration::from_nanos(st.drained_at_ns.load(Relaxed));
    }
    let a1 = st.acked.load(Relaxed);
    stop.store(true, Relaxed);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut first_err = None;
    while let Ok(Some(r)) = tokio::time::timeout_at(deadline, tasks.join_next()).await {
        if let Ok(Err(e)) = r {
            first_err.get_or_insert(e);
        }
    }
    let stuck = tasks.len();
    tasks.abort_all();
    let rss_end = probe.and_then(|p| p.rss_bytes());
    if let Some(r) = rss_end {
        rss_max.fetch_max(r, Relaxed);
    }
    if let Some(h) = sampler {
        h.abort();
    }
    let pending = match ctl.call(&["XPENDING", key.as_str(), "g"]).await? {
        V::Arr(v) => v.first().and_then(V::int),
        _ => None,
    };
    ctl.del(std::slice::from_ref(&key)).await?;

    let window = cpu1.at.duration_since(cpu0.at).as_secs_f64();
    report.float("fill_s", fill_s, 3);
    report.float("fill_xadd_rate", a.entries as f64 / fill_s.max(1e-9), 1);
    report.float("window_s", window, 3);
    report.float("acked_rate", (a1 - a0) as f64 / window.max(1e-9), 1);
    report.int("consumed_total", st.consumed.load(Relaxed));
    report.int("acked_total", st.acked.load(Relaxed));
    report.opt_int("pending_after", pending.map(|p| p.max(0) as u64));
    report.fig("drained", Val::Bool(drained));
    report.fig("drained_in_warmup", Val::Bool(drained_in_warmup));
    report.opt_float(
        "drained_s",
        drained.then(|| st.drained_at_ns.load(Relaxed) as f64 / 1e9),
        3,
    );
    cpu0.report_per(&cpu1, a1 - a0, "server_cpu_us_per_entry", &mut report);
    report.opt_int("server_rss_filled_bytes", rss_filled);
    report.opt_int("server_rss_max_bytes", probe.map(|_| rss_max.load(Relaxed)));
    if drained {
        eprintln!("  note: the stream drained before the window ended; window_s ends at the drain");
    }
    if let Some(e) = first_err {
        return Err(format!("consumer failed: {e}"));
    }
    if stuck > 0 {
        eprintln!("  warning: {stuck} consumer(s) did not finish within 5 s and were aborted");
    }
    Ok(report)
}

// ---------------------------------------------------------------------------
// xwake

pub struct XwakeArgs {
    pub readers: usize,
    pub keys: usize,
    pub rate: f64,
    pub payload: usize,
}

/// State shared by the blocked readers.
struct WakeShared {
    hist: Mutex<Histogram<u64>>,
    from: AtomicU64,
    to: AtomicU64,
    /// Entries received by all readers.
    entries: AtomicU64,
    replies: AtomicU64,
    bad: AtomicU64,
    closed: AtomicU64,
}

/// Blocks on `key` with `XREAD BLOCK 0 STREAMS key $`, then re-issues with
/// the last ID received; records each entry's latency from its stamp.
#[allow(clippy::too_many_arguments)]
async fn wake_reader(
    t: Target,
    key: String,
    sem: Arc<Semaphore>,
    setup: Arc<Setup>,
    sh: Arc<WakeShared>,
    epoch: Instant,
    mut stop: watch::Receiver<bool>,
) {
    let mut s = {
        let _permit = sem.acquire().await;
        match net::connect(&t).await {
            Ok(s) => s,
            Err(e) => return setup.fail(e),
        }
    };
    let mut cmd = resp::cmd(&["XREAD", "BLOCK", "0", "STREAMS", key.as_str(), "$"]);
    if let Err(e) = s.write_all(&cmd).await {
        return setup.fail(format!("XREAD write: {e}"));
    }
    setup.ready.fetch_add(1, Relaxed);
    let mut rb = ReadBuf::new(16 * 1024);
    let mut last_id: Vec<u8> = Vec::with_capacity(32);
    let mut lat: Vec<u64> = Vec::with_capacity(16);
    loop {
        let got = tokio::select! {
            biased;
            _ = stop.changed() => return,
            r = with_frame(&mut rb, &mut s, |_, b| {
                let now = epoch.elapsed().as_nanos() as u64;
                let (from, to) = (sh.from.load(Relaxed), sh.to.load(Relaxed));
                lat.clear();
                let mut bad = 0;
                let n = for_each_entry(b, |id, v| {
                    last_id.clear();
                    last_id.extend_from_slice(id);
                    match read_stamp(v) {
                        Some(t) if t >= from && t < to => lat.push(now.saturating_sub(t).max(1)),
                        Some(_) => {}
                        None => bad += 1,
                    }
                });
                (n, bad)
            }) => r,
        };
        let (n, bad) = match got {
            Ok((Ok(n), bad)) => (n, bad),
            Ok((Err(e), _)) => {
                eprintln!("  reader on {key}: {e}");
                sh.closed.fetch_add(1, Relaxed);
                return;
            }
            Err(_) => {
                sh.closed.fetch_add(1, Relaxed);
                return;
            }
        };
        if !lat.is_empty() {
            let mut h = sh.hist.lock().unwrap();
            for &l in &lat {
                h.saturating_record(l);
            }
        }
        sh.replies.fetch_add(1, Relaxed);
        sh.entries.fetch_add(n, Relaxed);
        if bad > 0 {
            sh.bad.fetch_add(bad, Relaxed);
        }
        if !last_id.is_empty() {
            cmd.clear();
            resp::push_cmd(
                &mut cmd,
                &[
                    b"XREAD".as_slice(),
                    b"BLOCK",
                    b"0",
                    b"STREAMS",
                    key.as_bytes(),
                    last_id.as_slice(),
                ],
            );
        }
        if s.write_all(&cmd).await.is_err() {
            sh.closed.fetch_add(1, Relaxed);
            return;
        }
    }
}

struct WakeWriterOut {
    sent: u64,
    in_window: u64,
    /// Deliveries expected (readers on the key of each entry).
    expected_total: u64,
    expected_in_window: u64,
    lag: Histogram<u64>,
    error: Option<String>,
}

pub async fn run_xwake(o: &Opts, a: XwakeArgs, mut report: Report) -> Result<Report, String> {
    let probe = o.server();
    let payload = a.payload.max(STAMP_LEN);
    let keys: Vec<String> = (0..a.keys).map(|k| format!("bench:w:{k}")).collect();
    let mut per_key = vec![0u64; a.keys];
    for i in 0..a.readers {
        per_key[i % a.keys] += 1;
    }
    let mut ctl = Ctl::open(&o.target, o.setup_timeout).await?;
    ctl.del(&keys).await?;
    let blocked0 = ctl.info("clients", "blocked_clients").await?;
    let epoch = Instant::now();
    let sh = Arc::new(WakeShared {
        hist: Mutex::new(new_hist()),
        from: AtomicU64::new(u64::MAX),
        to: AtomicU64::new(u64::MAX),
        entries: AtomicU64::new(0),
        replies: AtomicU64::new(0),
        bad: AtomicU64::new(0),
        closed: AtomicU64::new(0),
    });
    let setup = Arc::new(Setup::default());
    let sem = Arc::new(Semaphore::new(o.concurrency.max(1)));
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    eprintln!("  blocking {} reader(s) on {} key(s)", a.readers, a.keys);
    for i in 0..a.readers {
        tasks.spawn(wake_reader(
            o.target.clone(),
            keys[i % a.keys].clone(),
            sem.clone(),
            setup.clone(),
            sh.clone(),
            epoch,
            stop_rx.clone(),
        ));
    }
    let finish = |tasks: &mut JoinSet<()>, stop: &watch::Sender<bool>| {
        let _ = stop.send(true);
        tasks.abort_all();
    };
    if let Err(e) = net::wait_ready(&setup, a.readers, o.setup_timeout).await {
        finish(&mut tasks, &stop);
        return Err(e);
    }
    // Every XREAD is written; wait until the server reports them blocked.
    let want = blocked0.unwrap_or(0) + a.readers as u64;
    let t_wait = Instant::now();
    loop {
        let b = ctl.info("clients", "blocked_clients").await?;
        match b {
            Some(b) if b >= want => break,
            _ if t_wait.elapsed() >= o.setup_timeout => {
                finish(&mut tasks, &stop);
                return Err(format!(
                    "INFO clients reports blocked_clients {} after {:?}, expected at least {want} \
                     (the server must count clients blocked in XREAD)",
                    b.map_or("(missing)".to_string(), |b| b.to_string()),
                    o.setup_timeout
                ));
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    eprintln!(
        "  {} reader(s) blocked after {:.2}s",
        a.readers,
        t_wait.elapsed().as_secs_f64()
    );

    // Open-loop producer: blocking socket, writer thread + reply reader thread.
    let addr = (o.target.host.as_str(), o.target.port)
        .to_socket_addrs()
        .map_err(|e| format!("resolve {}: {e}", o.target.host))?
        .next()
        .ok_or("no address")?;
    let ws = std::net::TcpStream::connect_timeout(&addr, o.target.connect_timeout)
        .map_err(|e| net::explain(&e, "producer connect", &o.target))?;
    let _ = ws.set_nodelay(true);
    let _ = ws.set_write_timeout(Some(Duration::from_secs(5)));
    let mut rs = ws.try_clone().map_err(|e| e.to_string())?;
    let _ = rs.set_read_timeout(Some(Duration::from_millis(100)));

    let interval = 1e9 / a.rate;
    let t_start = epoch.elapsed().as_nanos() as u64 + 10_000_000;
    let t_warm = t_start + o.warmup.as_nanos() as u64;
    let t_end = t_warm + o.duration.as_nanos() as u64;
    sh.from.store(t_warm, Relaxed);
    sh.to.store(t_end, Relaxed);
    let sent_total = Arc::new(AtomicU64::new(0));
    let writer_done = Arc::new(AtomicBool::new(false));

    let reader = {
        let sent_total = sent_total.clone();
        let writer_done = writer_done.clone();
        std::thread::spawn(move || {
            let mut rb = ReadBuf::new(64 * 1024);
            let (mut ok, mut errs) = (0u64, 0u64);
            let mut first_err: Option<String> = None;
            let mut give_up: Option<Instant> = None;
            loop {
                while let Ok(Some((f, b))) = rb.next_frame() {
                    if f.kind == Kind::Bulk {
                        ok += 1;
                    } else {
                        errs += 1;
                        first_err.get_or_insert_with(|| String::from_utf8_lossy(b).trim_end().to_string());
                    }
                }
                if writer_done.load(Relaxed) {
                    if ok + errs >= sent_total.load(Relaxed) {
                        break;
                    }
                    let g = *give_up.get_or_insert_with(|| Instant::now() + Duration::from_secs(2));
                    if Instant::now() > g {
                        break;
                    }
                }
                match rb.fill_blocking(&mut rs) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(_) => break,
                }
            }
            (ok, errs, first_err)
        })
    };

    let writer = {
        let sent_total = sent_total.clone();
        let writer_done = writer_done.clone();
        let keys = keys.clone();
        let per_key = per_key.clone();
        let mut ws = ws;
        std::thread::spawn(move || {
            let body = vec![b'x'; payload];
            let tmpls: Vec<(Vec<u8>, usize)> = keys
                .iter()
                .map(|k| {
                    let t = xadd_cmd(k.as_bytes(), None, &body);
                    let off = t.len() - 2 - payload;
                    (t, off)
                })
                .collect();
            let mut rng = Rng::new(0x57ea);
            let mut out = WakeWriterOut {
                sent: 0,
                in_window: 0,
                expected_total: 0,
                expected_in_window: 0,
                lag: new_hist(),
                error: None,
            };
            out.error = open_loop(
                &mut ws,
                epoch,
                t_start,
                t_end,
                interval,
                &sent_total,
                |batch, due, now| {
                    let key = rng.below(tmpls.len() as u64) as usize;
                    let (t, off) = &tmpls[key];
                    let base = batch.len();
                    batch.extend_from_slice(t);
                    write_stamp(&mut batch[base + off..], due);
                    out.lag.saturating_record((now - due).max(1));
                    out.expected_total += per_key[key];
                    if due >= t_warm {
                        out.in_window += 1;
                        out.expected_in_window += per_key[key];
                    }
                    out.sent += 1;
                },
            )
            .map(|e| format!("producer write: {e}"));
            writer_done.store(true, Relaxed);
            out
        })
    };

    eprintln!(
        "  producing {} XADD/s to random keys: {:.1}s warm-up + {:.1}s measured",
        a.rate,
        o.warmup.as_secs_f64(),
        o.duration.as_secs_f64()
    );
    let until = |t: u64| Duration::from_nanos(t.saturating_sub(epoch.elapsed().as_nanos() as u64));
    tokio::time::sleep(until(t_warm)).await;
    let cpu0 = CpuMark::take(probe);
    let r0 = sh.replies.load(Relaxed);
    tokio::time::sleep(until(t_end)).await;
    let cpu1 = CpuMark::take(probe);
    let r1 = sh.replies.load(Relaxed);
    let w = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|_| "producer thread panicked".to_string())?;
    let (xadd_ok, xadd_err, xadd_first_err) = tokio::task::spawn_blocking(move || reader.join())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|_| "reply reader thread panicked".to_string())?;
    let waited = drain(o.grace, w.expected_total, || sh.entries.load(Relaxed)).await;
    let rss_end = probe.and_then(|p| p.rss_bytes());
    finish(&mut tasks, &stop);
    while tasks.join_next().await.is_some() {}
    ctl.del(&keys).await?;

    let hist = sh.hist.lock().unwrap().clone();
    let scheduled = first_due_at(t_end, t_start, interval) - first_due_at(t_warm, t_start, interval);
    let window = cpu1.at.duration_since(cpu0.at).as_secs_f64();
    let us = |ns: u64| ns as f64 / 1000.0;
    report.float("window_s", window, 3);
    report.float("achieved_xadd_rate", w.in_window as f64 / o.duration.as_secs_f64(), 1);
    report.float("reply_rate", (r1 - r0) as f64 / window, 1);
    report.int("scheduled_in_window", scheduled);
    report.int("xadd_in_window", w.in_window);
    report.int("unsent_in_window", scheduled.saturating_sub(w.in_window));
    report.int("expected_in_window", w.expected_in_window);
    report.int("received_in_window", hist.len());
    report.float("received_fraction", ratio(hist.len(), w.expected_in_window), 6);
    report.int("reader_replies", sh.replies.load(Relaxed));
    report.int("reader_entries", sh.entries.load(Relaxed));
    report.int("expected_entries", w.expected_total);
    report.int("xadd_replies", xadd_ok);
    report.int("xadd_errors", xadd_err);
    report.float("p50_us", us(hist.value_at_quantile(0.5)), 1);
    report.float("p90_us", us(hist.value_at_quantile(0.9)), 1);
    report.float("p99_us", us(hist.value_at_quantile(0.99)), 1);
    report.float("p999_us", us(hist.value_at_quantile(0.999)), 1);
    report.float("max_us", us(hist.max()), 1);
    report.float("mean_us", hist.mean() / 1000.0, 1);
    report.float("send_lag_p99_us", us(w.lag.value_at_quantile(0.99)), 1);
    report.int("bad_payloads", sh.bad.load(Relaxed));
    report.int("readers_closed", sh.closed.load(Relaxed));
    report.int("drain_ms", waited.as_millis() as u64);
    cpu0.report_per(&cpu1, r1 - r0, "server_cpu_us_per_reply", &mut report);
    report.opt_int("server_rss_bytes", rss_end);
    if let Some(e) = w.error {
        report.fig("producer_error", Val::Str(e));
    }
    if let Some(e) = xadd_first_err {
        eprintln!("  warning: XADD error reply: {e}");
    }
    Ok(report)
}

// ---------------------------------------------------------------------------
// xmem

pub struct XmemArgs {
    pub entries: u64,
    pub payload: usize,
}

/// RSS, `used_memory` and `MEMORY USAGE key SAMPLES 0` at one moment.
struct MemMark {
    rss: Option<u64>,
    used: Option<u64>,
    usage: Option<u64>,
}

async fn mem_mark(o: &Opts, ctl: &mut Ctl, key: &str) -> Result<MemMark, String> {
    // Let transient client buffers go (they count in used_memory).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let usage = match ctl.call(&["MEMORY", "USAGE", key, "SAMPLES", "0"]).await? {
        V::Int(n) => Some(n.max(0) as u64),
        V::Nil => Some(0),
        V::Err(e) => {
            eprintln!("  warning: MEMORY USAGE refused: {e}");
            None
        }
        _ => None,
    };
    Ok(MemMark {
        rss: o.server().and_then(|p| p.rss_bytes()),
        used: ctl.info("memory", "used_memory").await?,
        usage,
    })
}

fn per(a: Option<u64>, b: Option<u64>, n: u64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if n > 0 => Some((b as f64 - a as f64) / n as f64),
        _ => None,
    }
}

pub async fn run_xmem(o: &Opts, a: XmemArgs, mut report: Report) -> Result<Report, String> {
    let key = "bench:m".to_string();
    let mut ctl = Ctl::open(&o.target, o.setup_timeout).await?;
    ctl.del(std::slice::from_ref(&key)).await?;
    let m0 = mem_mark(o, &mut ctl, &key).await?;
    eprintln!("  adding {} entries of {} B to {key}", a.entries, a.payload);
    let fill_s = fill(&o.target, &key, a.entries, a.payload, fill_budget(o, a.entries)).await?;
    let m1 = mem_mark(o, &mut ctl, &key).await?;
    let xlen = ctl.ok(&["XLEN", key.as_str()]).await?.int().unwrap_or(0).max(0) as u64;

    // Everything read once by one consumer, never acked: E pending entries.
    ctl.ok(&["XGROUP", "CREATE", key.as_str(), "g", "0"]).await?;
    let mut s = net::connect(&o.target).await?;
    let read_cmd = resp::cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c0",
        "COUNT",
        "10000",
        "STREAMS",
        key.as_str(),
        ">",
    ]);
    let mut rb = ReadBuf::new(1 << 20);
    let t_read = Instant::now();
    let read_all = async {
        let mut n = 0u64;
        loop {
            s.write_all(&read_cmd).await.map_err(|e| format!("XREADGROUP: {e}"))?;
            let got = with_frame(&mut rb, &mut s, |_, b| for_each_entry(b, |_, _| {})).await??;
            if got == 0 {
                return Ok::<u64, String>(n);
            }
            n += got;
        }
    };
    let read = tokio::time::timeout(fill_budget(o, a.entries), read_all)
        .await
        .map_err(|_| "reading the stream into the group timed out".to_string())??;
    let read_s = t_read.elapsed().as_secs_f64();
    drop(s);
    let pending = match ctl.call(&["XPENDING", key.as_str(), "g"]).await? {
        V::Arr(v) => v.first().and_then(V::int).map(|p| p.max(0) as u64),
        _ => None,
    };
    let m2 = mem_mark(o, &mut ctl, &key).await?;
    ctl.del(std::slice::from_ref(&key)).await?;

    let np = pending.unwrap_or(read);
    report.float("fill_s", fill_s, 3);
    report.float("fill_xadd_rate", a.entries as f64 / fill_s.max(1e-9), 1);
    report.int("stream_length", xlen);
    report.opt_int("server_rss_before_bytes", m0.rss);
    report.opt_int("used_memory_before", m0.used);
    report.opt_int("server_rss_filled_bytes", m1.rss);
    report.opt_int("used_memory_filled", m1.used);
    report.opt_int("memory_usage_filled", m1.usage);
    report.opt_float("rss_per_entry", per(m0.rss, m1.rss, xlen), 1);
    report.opt_float("used_memory_per_entry", per(m0.used, m1.used, xlen), 1);
    report.opt_float("memory_usage_per_entry", per(m0.usage, m1.usage, xlen), 1);
    report.int("read_entries", read);
    report.float("read_s", read_s, 3);
    report.opt_int("pending", pending);
    report.opt_int("server_rss_pending_bytes", m2.rss);
    report.opt_int("used_memory_pending", m2.used);
    report.opt_int("memory_usage_pending", m2.usage);
    report.opt_float("rss_per_pending", per(m1.rss, m2.rss, np), 1);
    report.opt_float("used_memory_per_pending", per(m1.used, m2.used, np), 1);
    report.opt_float("memory_usage_per_pending", per(m1.usage, m2.usage, np), 1);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_of_xread_reply() {
        let r =
            b"*1\r\n*2\r\n$1\r\nk\r\n*2\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$2\r\nv1\r\n*2\r\n$3\r\n2-0\r\n*-1\r\n";
        let mut seen = Vec::new();
        let n = for_each_entry(r, |id, v| seen.push((id.to_vec(), v.to_vec()))).unwrap();
        assert_eq!(n, 2);
        assert_eq!(seen[0], (b"1-0".to_vec(), b"v1".to_vec()));
        assert_eq!(seen[1], (b"2-0".to_vec(), Vec::new()));
        assert_eq!(for_each_entry(b"*-1\r\n", |_, _| {}).unwrap(), 0);
        assert!(for_each_entry(b"-ERR no\r\n", |_, _| {}).is_err());
    }

    #[test]
    fn decode_and_info() {
        assert_eq!(
            decode(b"*3\r\n:5\r\n$-1\r\n+OK\r\n").unwrap(),
            V::Arr(vec![V::Int(5), V::Nil, V::Str(b"OK".to_vec())])
        );
        let info = b"# Clients\r\nconnected_clients:3\r\nblocked_clients:12\r\n";
        assert_eq!(info_field(info, "blocked_clients"), Some(12));
        assert_eq!(info_field(info, "missing"), None);
        assert_eq!(
            xadd_cmd(b"k", Some(10), b"p"),
            resp::cmd(&["XADD", "k", "MAXLEN", "~", "10", "*", "f", "p"])
        );
    }
}
