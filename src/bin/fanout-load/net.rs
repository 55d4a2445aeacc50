//! Connections, subscriber loops and publisher loops shared by the scenarios.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};

use crate::resp::{self, Kind, ReadBuf};

/// Where to connect and how patiently.
#[derive(Clone, Debug)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub connect_timeout: Duration,
}

/// Turns an OS error into an actionable message.
pub fn explain(e: &io::Error, what: &str, t: &Target) -> String {
    match e.raw_os_error() {
        Some(24) | Some(23) => format!(
            "{what}: too many open files (EMFILE/ENFILE): raise the limit with `ulimit -n 65536` \
             in this shell (and for the server) and retry"
        ),
        Some(99) => format!(
            "{what}: out of local ports (EADDRNOTAVAIL); use fewer connections or widen \
             net.ipv4.ip_local_port_range"
        ),
        Some(111) => format!(
            "{what}: connection refused by {}:{} - is the server running there?",
            t.host, t.port
        ),
        _ => format!("{what}: {e}"),
    }
}

pub async fn connect(t: &Target) -> Result<TcpStream, String> {
    let addr = (t.host.as_str(), t.port);
    match tokio::time::timeout(t.connect_timeout, TcpStream::connect(addr)).await {
        Err(_) => Err(format!(
            "connect to {}:{} timed out after {:?}",
            t.host, t.port, t.connect_timeout
        )),
        Ok(Err(e)) => Err(explain(&e, "connect", t)),
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
    }
}

/// Sends a (P)SUBSCRIBE command and waits for `confirms` confirmations.
/// Deliveries that arrive before the last confirmation are counted in the
/// returned number.
pub async fn subscribe(
    s: &mut TcpStream,
    rb: &mut ReadBuf,
    cmd: &[u8],
    confirms: usize,
    timeout: Duration,
) -> Result<u64, String> {
    s.write_all(cmd).await.map_err(|e| format!("subscribe write: {e}"))?;
    let mut got = 0;
    let mut early = 0;
    let fut = async {
        while got < confirms {
            while let Some((f, bytes)) = rb.next_frame().map_err(|e| e.0.to_string())? {
                match f.kind {
                    Kind::Subscribe | Kind::PSubscribe => got += 1,
                    Kind::Message | Kind::PMessage => early += 1,
                    Kind::Error => {
                        return Err(format!(
                            "server refused subscribe: {}",
                            String::from_utf8_lossy(&bytes[f.last.0..f.last.1])
                        ))
                    }
                    _ => {}
                }
            }
            if got >= confirms {
                break;
            }
            match rb.fill(s).await {
                Ok(0) => return Err("server closed the connection during subscribe".to_string()),
                Ok(_) => {}
                Err(e) => return Err(format!("subscribe read: {e}")),
            }
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Err(format!("no subscribe confirmation within {timeout:?}")),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => Ok(early),
    }
}

/// Per-subscriber counters, updated once per read.
#[derive(Default)]
pub struct SubStats {
    pub delivered: AtomicU64,
    pub closed: AtomicBool,
}

/// Setup progress shared by all subscriber tasks.
#[derive(Default)]
pub struct Setup {
    pub ready: AtomicUsize,
    pub error: Mutex<Option<String>>,
}

impl Setup {
    pub fn fail(&self, e: String) {
        let mut g = self.error.lock().unwrap();
        if g.is_none() {
            *g = Some(e);
        }
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap().clone()
    }
}

/// Waits until `n` subscribers are ready, one failed, or the deadline.
pub async fn wait_ready(setup: &Setup, n: usize, timeout: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_print = std::time::Instant::now();
    loop {
        if let Some(e) = setup.error() {
            return Err(e);
        }
        let r = setup.ready.load(Relaxed);
        if r >= n {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "only {r} of {n} subscriber connections ready after {timeout:?} (--setup-timeout)"
            ));
        }
        if n >= 1000 && last_print.elapsed() >= Duration::from_secs(2) {
            eprintln!("  ... {r}/{n} subscribers ready");
            last_print = std::time::Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What a subscriber connection subscribes to.
pub struct SubSpec {
    /// Encoded SUBSCRIBE / PSUBSCRIBE command.
    pub cmd: Vec<u8>,
    pub confirms: usize,
}

/// Called for every delivered message with its payload and the time (ns
/// since the run's epoch) of the read that completed it.
pub trait OnMessage: Send + 'static {
    fn on_message(&mut self, payload: &[u8], now_ns: u64);
}

/// Counting only.
pub struct CountOnly;
impl OnMessage for CountOnly {
    #[inline]
    fn on_message(&mut self, _: &[u8], _: u64) {}
}

/// Connects, subscribes (holding a permit of `sem` for the duration of the
/// setup), signals readiness, then counts deliveries until `stop` fires or
/// the server closes the connection. Returns the handler.
#[allow(clippy::too_many_arguments)]
pub async fn subscriber<H: OnMessage>(
    t: Target,
    spec: SubSpec,
    bufsize: usize,
    stats: Arc<SubStats>,
    setup: Arc<Setup>,
    sem: Arc<Semaphore>,
    setup_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    epoch: std::time::Instant,
    mut handler: H,
) -> H {
    let mut rb = ReadBuf::new(bufsize);
    let mut s = {
        let _permit = sem.acquire().await;
        let mut s = match connect(&t).await {
            Ok(s) => s,
            Err(e) => {
                setup.fail(e);
                return handler;
            }
        };
        match subscribe(&mut s, &mut rb, &spec.cmd, spec.confirms, setup_timeout).await {
            Ok(early) => stats.delivered.fetch_add(early, Relaxed),
            Err(e) => {
                setup.fail(e);
                return handler;
            }
        };
        s
    };
    drop(spec);
    setup.ready.fetch_add(1, Relaxed);
    loop {
        // Frames already buffered (e.g. right after subscribe) first.
        let now_ns = epoch.elapsed().as_nanos() as u64;
        let mut n = 0u64;
        loop {
            match rb.next_frame() {
                Ok(Some((f, bytes))) => {
                    if matches!(f.kind, Kind::Message | Kind::PMessage) {
                        n += 1;
                        handler.on_message(&bytes[f.last.0..f.last.1], now_ns);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("subscriber: {}", e.0);
                    stats.closed.store(true, Relaxed);
                    return handler;
                }
            }
        }
        if n > 0 {
            stats.delivered.fetch_add(n, Relaxed);
        }
        tokio::select! {
            biased;
            _ = stop.changed() => return handler,
            r = rb.fill(&mut s) => match r {
                Ok(0) | Err(_) => {
                    stats.closed.store(true, Relaxed);
                    return handler;
                }
                Ok(_) => {}
            }
        }
    }
}

/// Counters shared by all publishers.
#[derive(Default)]
pub struct PubStats {
    /// PUBLISH requests acknowledged with an integer reply.
    pub published: AtomicU64,
    /// Sum of the integer replies (receivers the server claims).
    pub reply_sum: AtomicU64,
    pub errors: AtomicU64,
    pub first_error: Mutex<Option<String>>,
}

impl PubStats {
    fn fail(&self, e: String) {
        let mut g = self.first_error.lock().unwrap();
        if g.is_none() {
            *g = Some(e);
        }
    }
}

/// How a publisher picks its channel.
#[derive(Clone)]
pub enum Pick {
    /// Always this channel.
    Fixed(Vec<u8>),
    /// `prefix{i}suffix` with i uniformly random in 0..n.
    Random { prefix: Vec<u8>, suffix: Vec<u8>, n: u64 },
    /// One of these channels, uniformly at random.
    List(Arc<Vec<Vec<u8>>>),
}

/// xorshift64*: tiny, allocation-free, good enough to spread channels.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    #[inline]
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
}

/// Closed-loop publisher: writes `pipeline` `verb` (PUBLISH or SPUBLISH)
/// commands in one write, reads that many replies, repeats until `stop` is set.
#[allow(clippy::too_many_arguments)]
pub async fn publisher(
    mut s: TcpStream,
    verb: &'static [u8],
    pick: Pick,
    payload: Arc<Vec<u8>>,
    pipeline: usize,
    stop: Arc<AtomicBool>,
    stats: Arc<PubStats>,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    let mut batch = Vec::with_capacity(pipeline * (payload.len() + 64));
    if let Pick::Fixed(ch) = &pick {
        for _ in 0..pipeline {
            resp::push_cmd(&mut batch, &[verb, ch.as_slice(), payload.as_slice()]);
        }
    }
    let mut rb = ReadBuf::new(64 * 1024);
    while !stop.load(Relaxed) {
        match &pick {
            Pick::Fixed(_) => {}
            Pick::Random { prefix, suffix, n } => {
                batch.clear();
                for _ in 0..pipeline {
                    let i = rng.below(*n);
                    resp::push_numbered(&mut batch, verb, prefix, i, suffix, &payload);
                }
            }
            Pick::List(list) => {
                batch.clear();
                for _ in 0..pipeline {
                    let ch = &list[rng.below(list.len() as u64) as usize];
                    resp::push_cmd(&mut batch, &[verb, ch.as_slice(), payload.as_slice()]);
                }
            }
        }
        if let Err(e) = s.write_all(&batch).await {
            stats.fail(format!("publisher write: {e}"));
            return;
        }
        let (mut got, mut ok, mut sum, mut errs) = (0usize, 0u64, 0u64, 0u64);
        while got < pipeline {
            loop {
                match rb.next_frame() {
                    Ok(Some((f, bytes))) => {
                        got += 1;
                        match f.kind {
                            Kind::Integer(v) => {
                                ok += 1;
                                sum += v.max(0) as u64;
                            }
                            Kind::Error => {
                                errs += 1;
                                stats.fail(format!(
                                    "{} error reply: {}",
                                    String::from_utf8_lossy(verb),
                                    String::from_utf8_lossy(&bytes[f.last.0..f.last.1])
                                ));
                            }
                            _ => errs += 1,
                        }
                        if got == pipeline {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        stats.fail(format!("publisher: {}", e.0));
                        return;
                    }
                }
            }
            if got < pipeline {
                match rb.fill(&mut s).await {
                    Ok(0) => {
                        stats.fail("server closed a publisher connection".into());
                        return;
                    }
                    Err(e) => {
                        stats.fail(format!("publisher read: {e}"));
                        return;
                    }
                    Ok(_) => {}
                }
            }
        }
        stats.published.fetch_add(ok, Relaxed);
        stats.reply_sum.fetch_add(sum, Relaxed);
        if errs > 0 {
            stats.errors.fetch_add(errs, Relaxed);
        }
    }
}

/// Connects to the server and checks it answers PING (used before runs and
/// when waiting for a server started by compare mode).
pub async fn ping(t: &Target) -> Result<(), String> {
    let mut s = connect(t).await?;
    s.write_all(&resp::cmd(&["PING"]))
        .await
        .map_err(|e| format!("PING write: {e}"))?;
    let mut rb = ReadBuf::new(256);
    let fut = async {
        loop {
            if let Some((f, bytes)) = rb.next_frame().map_err(|e| e.0.to_string())? {
                return match f.kind {
                    Kind::Error => Err(format!("PING answered with error: {}", String::from_utf8_lossy(bytes))),
                    _ => Ok(()),
                };
            }
            match rb.fill(&mut s).await {
                Ok(0) => return Err("server closed the connection after PING".to_string()),
                Err(e) => return Err(format!("PING read: {e}")),
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(t.connect_timeout, fut)
        .await
        .map_err(|_| "no answer to PING".to_string())?
}
