//! Crash tests for the append-only file, against the real `fanout` binary: SIGKILL
//! under `appendfsync always` and `everysec`, SIGKILL during and right after
//! BGREWRITEAOF, a cut last command, a corrupted middle, and a disk that refuses writes
//! (RLIMIT_FSIZE: `-MISCONF`, then recovery once the limit is raised).
//!
//! Every server is a child process owned by a guard that kills it on drop; every test
//! uses its own temporary folder and free loopback ports, and every wait is bounded.
//! The random kill moments come from a seed printed by each test (`AOF_CRASH_SEED`
//! replays one).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;

mod common;

use common::child::{free_port, Proc};

const BIN: &str = env!("CARGO_BIN_EXE_fanout");
const MISCONF: &str = "MISCONF Errors writing to the AOF file:";

// ---------------------------------------------------------------------------------
// Processes, folders, randomness
// ---------------------------------------------------------------------------------

/// A small xorshift generator; the seed is printed so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn new(test: &str) -> Rng {
        let seed = std::env::var("AOF_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{test}: AOF_CRASH_SEED={seed}");
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// In `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// A running (or exited) server. Dropping it kills and reaps the process.
struct Server {
    proc: Proc,
    port: u16,
}

/// How to start a server on a folder.
struct Opts<'a> {
    fsync: &'a str,
    extra: &'a [&'a str],
    /// RLIMIT_FSIZE soft limit for the child (the hard limit stays as it is).
    fsize: Option<u64>,
}

impl Default for Opts<'_> {
    fn default() -> Self {
        Opts {
            fsync: "always",
            extra: &[],
            fsize: None,
        }
    }
}

impl Server {
    /// Starts `fanout` on `dir` without waiting for it.
    fn spawn(dir: &Path, o: &Opts) -> Server {
        let port = free_port();
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", dir.to_str().unwrap()])
            .args(["--appendonly", "yes", "--appendfsync", o.fsync, "--loglevel", "warning"])
            .args(o.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Some(limit) = o.fsize {
            // SAFETY: only async-signal-safe calls (setrlimit, signal) between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let mut cur = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    if libc::getrlimit(libc::RLIMIT_FSIZE, &mut cur) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    let lim = libc::rlimit {
                        rlim_cur: limit as libc::rlim_t,
                        rlim_max: cur.rlim_max,
                    };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // Past the limit, write(2) then fails with EFBIG instead of the
                    // process being killed by SIGXFSZ.
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    Ok(())
                });
            }
        }
        Server {
            proc: Proc::spawn(cmd),
            port,
        }
    }

    /// Starts `fanout` on `dir` and waits (bounded) until it answers PING.
    fn start(dir: &Path, o: &Opts) -> Server {
        let mut s = Server::spawn(dir, o);
        let addr = s.addr();
        s.proc.wait_ready(addr, Duration::from_secs(30));
        s
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn pid(&self) -> i32 {
        self.proc.pid() as i32
    }

    fn stderr(&self) -> String {
        // The reader thread may still be draining the pipe just after an exit.
        std::thread::sleep(Duration::from_millis(50));
        self.proc.stderr()
    }

    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.proc.wait_exit(limit)
    }

    /// SIGKILL, and reap it.
    fn kill9(&mut self) {
        self.proc.child.kill().expect("SIGKILL");
        self.proc.child.wait().expect("reap");
    }

    /// SIGTERM (a clean shutdown: what is committed is written and synced); asserts a
    /// zero exit within 20 s.
    fn stop(&mut self) {
        // SAFETY: signalling our own child, still unreaped, so the pid is ours.
        assert_eq!(unsafe { libc::kill(self.pid(), libc::SIGTERM) }, 0);
        let status = self.wait_exit(Duration::from_secs(20));
        assert!(
            status.is_some_and(|s| s.success()),
            "clean shutdown failed ({status:?}):\n{}",
            self.stderr()
        );
    }

    async fn conn(&self, timeout: Duration) -> MultiplexedConnection {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap();
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Duration::from_secs(5))
            .set_response_timeout(timeout);
        client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .expect("connect")
    }
}

fn err_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => format!("{e}"),
    }
}

async fn info_field(con: &mut MultiplexedConnection, key: &str) -> String {
    let info: String = tokio::time::timeout(
        Duration::from_secs(10),
        redis::cmd("INFO").arg("persistence").query_async(con),
    )
    .await
    .expect("INFO timed out")
    .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim_end().to_string())
        .unwrap_or_else(|| panic!("INFO persistence has no {key}:\n{info}"))
}

// ---------------------------------------------------------------------------------
// The files
// ---------------------------------------------------------------------------------

fn aof_dir(dir: &Path) -> PathBuf {
    dir.join("appendonlydir")
}

/// The manifest's file names, in order, with their type letter.
fn manifest_files(dir: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(aof_dir(dir).join("appendonly.aof.manifest")).expect("read the manifest");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let get = |k: &str| {
                words
                    .iter()
                    .position(|w| *w == k)
                    .and_then(|i| words.get(i + 1))
                    .unwrap_or_else(|| panic!("manifest line without {k}: {l}"))
                    .to_string()
            };
            (get("file"), get("type"))
        })
        .collect()
}

/// The last incr file the manifest names.
fn last_incr(dir: &Path) -> (String, PathBuf) {
    let files = manifest_files(dir);
    let (name, _) = files
        .iter()
        .rev()
        .find(|(_, t)| t == "i")
        .unwrap_or_else(|| panic!("no incr file in the manifest: {files:?}"))
        .clone();
    let path = aof_dir(dir).join(&name);
    (name, path)
}

/// Every file the manifest names exists.
fn assert_manifest_complete(dir: &Path) {
    for (name, _) in manifest_files(dir) {
        assert!(
            aof_dir(dir).join(&name).exists(),
            "the manifest names {name}, which is missing"
        );
    }
}

/// Offsets where each command of a RESP file starts (the values these tests write hold
/// no `*` at a line start, so a line starting with `*` starts a command).
fn command_starts(data: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    for i in 0..data.len() {
        if data[i] == b'*' && (i == 0 || data[i - 1] == b'\n') {
            v.push(i);
        }
    }
    v
}

// ---------------------------------------------------------------------------------
// Producers and what they acknowledged
// ---------------------------------------------------------------------------------

fn payload(producer: u64, seq: u64) -> String {
    let mut s = format!("{producer}:{seq}:");
    for _ in 0..(seq % 40) {
        s.push('x');
    }
    s
}

fn key_for(keys: &[String], producer: u64, seq: u64) -> usize {
    ((seq.wrapping_mul(7)) + producer) as usize % keys.len()
}

#[derive(Clone, Debug)]
struct Ack {
    seq: u64,
    key: usize,
    id: String,
}

#[derive(Default, Debug)]
struct Log {
    producer: u64,
    keys: Vec<String>,
    /// Sequence numbers sent (or about to be): 0..sent.
    sent: u64,
    acks: Vec<Ack>,
    /// Refused with MISCONF (never executed).
    refused: Vec<u64>,
    /// Errors other than MISCONF (the end of a producer killed with its server).
    last_error: Option<String>,
}

fn xadd_cmd(keys: &[String], producer: u64, seq: u64) -> redis::Cmd {
    let mut c = redis::cmd("XADD");
    c.arg(&keys[key_for(keys, producer, seq)])
        .arg("*")
        .arg("p")
        .arg(producer)
        .arg("n")
        .arg(seq)
        .arg("v")
        .arg(payload(producer, seq));
    c
}

/// Writes until `stop`, or until an error (the server was killed): single XADDs and
/// pipelined batches, at random.
async fn produce(
    mut con: MultiplexedConnection,
    producer: u64,
    keys: Vec<String>,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> Log {
    let mut rng = Rng(seed | 1);
    let mut log = Log {
        producer,
        keys: keys.clone(),
        ..Default::default()
    };
    while !stop.load(Relaxed) {
        let n = if rng.next().is_multiple_of(3) {
            1
        } else {
            rng.range(2, 40)
        };
        let first = log.sent;
        log.sent += n;
        let result: redis::RedisResult<Vec<String>> = if n == 1 {
            xadd_cmd(&keys, producer, first)
                .query_async::<String>(&mut con)
                .await
                .map(|id| vec![id])
        } else {
            let mut pipe = redis::pipe();
            for seq in first..first + n {
                pipe.add_command(xadd_cmd(&keys, producer, seq));
            }
            pipe.query_async(&mut con).await
        };
        match result {
            Ok(ids) => {
                assert_eq!(ids.len() as u64, n);
                for (i, id) in ids.into_iter().enumerate() {
                    let seq = first + i as u64;
                    log.acks.push(Ack {
                        seq,
                        key: key_for(&keys, producer, seq),
                        id,
                    });
                }
            }
            Err(e) => {
                log.last_error = Some(err_text(&e));
                break;
            }
        }
    }
    log
}

/// One entry as read back: (producer, seq, payload).
#[derive(Clone, Debug, PartialEq)]
struct Entry {
    id: String,
    fields: Vec<(String, String)>,
}

type Data = BTreeMap<String, Vec<Entry>>;

async fn read_all(con: &mut MultiplexedConnection, keys: &[String]) -> Data {
    let mut data = Data::new();
    for k in keys {
        let mut all = Vec::new();
        let mut start = "-".to_string();
        loop {
            let page: Vec<(String, Vec<(String, String)>)> = tokio::time::timeout(
                Duration::from_secs(20),
                redis::cmd("XRANGE")
                    .arg(k)
                    .arg(&start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(10_000)
                    .query_async(con),
            )
            .await
            .expect("XRANGE timed out")
            .expect("XRANGE");
            let n = page.len();
            for (id, fields) in page {
                all.push(Entry { id, fields });
            }
            if n < 10_000 {
                break;
            }
            start = format!("({}", all.last().unwrap().id);
        }
        data.insert(k.clone(), all);
    }
    data
}

fn parse_id(id: &str) -> (u64, u64) {
    let (a, b) = id.split_once('-').unwrap_or_else(|| panic!("bad id {id}"));
    (a.parse().unwrap(), b.parse().unwrap())
}

/// Checks the data against the producers' logs: no acknowledged entry may be missing.
/// `exact`: every request was answered, so the entries are exactly the acknowledged ones.
fn verify(data: &Data, logs: &[Log], exact: bool) {
    // Every entry is well formed, in ID order, and no (producer, seq) appears twice.
    let mut present: HashMap<u64, HashMap<u64, (String, String)>> = HashMap::new();
    for (key, entries) in data {
        let mut last = (0, 0);
        for e in entries {
            let id = parse_id(&e.id);
            assert!(id > last, "{key}: IDs not increasing at {}", e.id);
            last = id;
            let f = &e.fields;
            assert!(
                f.len() == 3 && f[0].0 == "p" && f[1].0 == "n" && f[2].0 == "v",
                "{key} {}: unexpected fields {f:?}",
                e.id
            );
            let p: u64 = f[0].1.parse().unwrap();
            let n: u64 = f[1].1.parse().unwrap();
            assert_eq!(f[2].1, payload(p, n), "{key} {}: wrong value", e.id);
            let old = present.entry(p).or_default().insert(n, (key.clone(), e.id.clone()));
            assert!(
                old.is_none(),
                "producer {p} seq {n} appears twice: {old:?} and {key} {}",
                e.id
            );
        }
    }
    for log in logs {
        let mine = present.remove(&log.producer).unwrap_or_default();
        for (&n, (key, _)) in &mine {
            assert!(
                n < log.sent,
                "producer {}: seq {n} present but never sent",
                log.producer
            );
            assert_eq!(
                key,
                &log.keys[key_for(&log.keys, log.producer, n)],
                "seq {n} on the wrong key"
            );
        }
        for a in &log.acks {
            match mine.get(&a.seq) {
                Some((key, id)) => {
                    assert_eq!(
                        id, &a.id,
                        "producer {} seq {}: ID differs from the acknowledged one",
                        log.producer, a.seq
                    );
                    assert_eq!(key, &log.keys[a.key]);
                }
                None => {
                    panic!(
                        "producer {}: acknowledged seq {} ({} on {}) is lost ({} acked, {} present)",
                        log.producer,
                        a.seq,
                        a.id,
                        log.keys[a.key],
                        log.acks.len(),
                        mine.len()
                    );
                }
            }
        }
        match exact {
            true => {
                let acked: HashSet<u64> = log.acks.iter().map(|a| a.seq).collect();
                let have: HashSet<u64> = mine.keys().copied().collect();
                let extra: Vec<_> = have.difference(&acked).collect();
                assert!(
                    extra.is_empty(),
                    "producer {}: unacknowledged entries present: {extra:?}",
                    log.producer
                );
                for r in &log.refused {
                    assert!(
                        !have.contains(r),
                        "producer {}: seq {r} got MISCONF but is present",
                        log.producer
                    );
                }
            }
            false => {
                // The file is a prefix of the journal: each producer's entries are
                // 0..m, with the unacknowledged ones (in flight) only at the tail.
                let m = mine.len() as u64;
                for n in 0..m {
                    assert!(
                        mine.contains_key(&n),
                        "producer {}: hole at seq {n} (has {m})",
                        log.producer
                    );
                }
            }
        }
    }
    assert!(
        present.is_empty(),
        "entries from unknown producers: {:?}",
        present.keys()
    );
}

/// Everything a previous check saw is still there, unchanged, as a prefix.
fn assert_prefix(before: &Data, after: &Data) {
    for (k, old) in before {
        let new = after.get(k).map(Vec::as_slice).unwrap_or(&[]);
        assert!(
            new.len() >= old.len(),
            "{k}: {} entries before, {} now",
            old.len(),
            new.len()
        );
        if let Some(i) = (0..old.len()).find(|&i| old[i] != new[i]) {
            panic!("{k}: entry {i} changed: {:?} -> {:?}", old[i], new[i]);
        }
    }
}

fn stream_keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Runs 4 producers on `server` until it is SIGKILLed at a random moment in
/// 0.3..1.5 s; returns their logs and the kill instant.
async fn kill_under_load(server: &mut Server, round: u64, rng: &mut Rng, keys: &[String]) -> (Vec<Log>, Instant) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for p in 0..4 {
        let con = server.conn(Duration::from_secs(10)).await;
        let producer = round * 4 + p;
        tasks.push(tokio::spawn(produce(
            con,
            producer,
            keys.to_vec(),
            stop.clone(),
            rng.next(),
        )));
    }
    let delay = rng.range(300, 1500);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    server.kill9();
    let killed = Instant::now();
    let mut logs = Vec::new();
    for t in tasks {
        let log = tokio::time::timeout(Duration::from_secs(15), t)
            .await
            .expect("a producer did not notice the kill")
            .expect("producer panicked");
        logs.push(log);
    }
    let acked: usize = logs.iter().map(|l| l.acks.len()).sum();
    eprintln!("round {round}: killed after {delay} ms, {acked} acknowledged");
    assert!(acked > 0, "nothing was acknowledged before the kill");
    (logs, killed)
}

async fn sigkill_rounds(fsync: &str) {
    let mut rng = Rng::new(&format!("sigkill_{fsync}"));
    let dir = tempfile::tempdir().unwrap();
    let keys = stream_keys("s", 4);
    let opts = Opts {
        fsync,
        ..Default::default()
    };
    let mut logs: Vec<Log> = Vec::new();
    let mut seen = Data::new();
    let mut server = Server::start(dir.path(), &opts);
    for round in 0..3 {
        let (new, _killed) = kill_under_load(&mut server, round, &mut rng, &keys).await;
        // A write is acknowledged once its bytes were handed to the OS (always: synced),
        // so killing the process loses nothing acknowledged under any policy; everysec
        // may lose up to ~2 s only when the machine itself goes down (not testable here).
        logs.extend(new);
        server = Server::start(dir.path(), &opts);
        let mut con = server.conn(Duration::from_secs(10)).await;
        let data = read_all(&mut con, &keys).await;
        assert_prefix(&seen, &data);
        verify(&data, &logs, false);
        eprintln!(
            "round {round} ({fsync}): {} entries after restart, none acknowledged lost",
            data.values().map(Vec::len).sum::<usize>()
        );
        seen = data;
    }
    server.stop();
}

/// 1. appendfsync always: an acknowledged write survives SIGKILL, exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_always_keeps_every_acknowledged_entry() {
    tokio::time::timeout(Duration::from_secs(60), sigkill_rounds("always"))
        .await
        .expect("test timed out");
}

/// 2. appendfsync everysec: a crash of the process loses nothing acknowledged either
/// (replies wait for write(2), not for fsync), as with Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_everysec_keeps_every_acknowledged_entry() {
    tokio::time::timeout(Duration::from_secs(60), sigkill_rounds("everysec"))
        .await
        .expect("test timed out");
}

// ---------------------------------------------------------------------------------
// 3. SIGKILL during and right after BGREWRITEAOF
// ---------------------------------------------------------------------------------

const BIG_STREAMS: usize = 3;
const BIG_ENTRIES: u64 = 200_000;
const BIG_PENDING: usize = 500;

/// The big dataset: BIG_ENTRIES entries of 200-byte values over BIG_STREAMS streams,
/// explicit IDs (so the check is cheap), and a group with BIG_PENDING pending entries.
async fn build_big(con: &mut MultiplexedConnection) {
    let value = "v".repeat(200);
    let mut n = 0u64;
    while n < BIG_ENTRIES {
        let mut pipe = redis::pipe();
        for i in n..(n + 2000).min(BIG_ENTRIES) {
            pipe.cmd("XADD")
                .arg(format!("big{}", i as usize % BIG_STREAMS))
                .arg(format!("1-{}", i + 1))
                .arg("f")
                .arg(&value)
                .ignore();
        }
        n = (n + 2000).min(BIG_ENTRIES);
        let () = pipe.query_async(con).await.expect("build the dataset");
    }
    let () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("big0")
        .arg("g")
        .arg("0")
        .query_async(con)
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g")
        .arg("c1")
        .arg("COUNT")
        .arg(BIG_PENDING)
        .arg("STREAMS")
        .arg("big0")
        .arg(">")
        .query_async(con)
        .await
        .unwrap();
}

async fn check_big(con: &mut MultiplexedConnection) {
    let mut total = 0;
    for s in 0..BIG_STREAMS {
        let key = format!("big{s}");
        let len: u64 = redis::cmd("XLEN").arg(&key).query_async(con).await.unwrap();
        total += len;
        // The last entry, exactly.
        let last: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
            .arg(&key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(con)
            .await
            .unwrap();
        let want = (BIG_ENTRIES - 1 - (BIG_ENTRIES - 1 - s as u64) % BIG_STREAMS as u64) + 1;
        assert_eq!(last[0].0, format!("1-{want}"), "{key}: last entry");
        assert_eq!(last[0].1, vec![("f".to_string(), "v".repeat(200))]);
    }
    assert_eq!(total, BIG_ENTRIES, "entries of the big streams");
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg("big0")
        .arg("g")
        .query_async(con)
        .await
        .unwrap();
    let redis::Value::Array(items) = &pending else {
        panic!("XPENDING: {pending:?}")
    };
    assert_eq!(
        items[0],
        redis::Value::Int(BIG_PENDING as i64),
        "pending entries: {pending:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_and_after_bgrewriteaof() {
    tokio::time::timeout(Duration::from_secs(90), rewrite_kills())
        .await
        .expect("test timed out");
}

async fn rewrite_kills() {
    let mut rng = Rng::new("rewrite");
    let dir = tempfile::tempdir().unwrap();
    let keys = stream_keys("live", 2);
    let opts = Opts::default();
    let mut server = Server::start(dir.path(), &opts);
    {
        let t = Instant::now();
        let mut con = server.conn(Duration::from_secs(30)).await;
        build_big(&mut con).await;
        eprintln!("rewrite: dataset built in {:?}", t.elapsed());
    }
    // How long a rewrite of this dataset takes on this machine and build: the kills
    // meant to land during one are drawn within its first three quarters.
    let rewrite_ms = {
        let mut con = server.conn(Duration::from_secs(10)).await;
        let t = Instant::now();
        let _: String = redis::cmd("BGREWRITEAOF").query_async(&mut con).await.unwrap();
        while info_field(&mut con, "aof_rewrite_in_progress").await != "0" {
            assert!(t.elapsed() < Duration::from_secs(30), "rewrite did not finish");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        t.elapsed().as_millis() as u64
    };
    eprintln!("rewrite: a rewrite takes {rewrite_ms} ms");
    let mut logs: Vec<Log> = Vec::new();
    let mut seen = Data::new();
    let mut during = 0;
    for round in 0..4u64 {
        let mut con = server.conn(Duration::from_secs(10)).await;
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for p in 0..2 {
            let c = server.conn(Duration::from_secs(10)).await;
            tasks.push(tokio::spawn(produce(
                c,
                round * 2 + p,
                keys.clone(),
                stop.clone(),
                rng.next(),
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = Instant::now();
        let reply: String = redis::cmd("BGREWRITEAOF").query_async(&mut con).await.unwrap();
        assert!(reply.contains("rewriting started"), "{reply}");
        // Even rounds: kill at a random moment while the rewrite runs; odd rounds: kill
        // just after it finished.
        let kill_during = round % 2 == 0;
        let delay = Duration::from_millis(rng.range(0, (rewrite_ms * 3 / 4).max(1)));
        let what = if kill_during {
            tokio::time::sleep(delay).await;
            let running = info_field(&mut con, "aof_rewrite_in_progress").await == "1";
            if running {
                during += 1;
            }
            format!("{delay:?} after BGREWRITEAOF (in progress: {running})")
        } else {
            loop {
                if info_field(&mut con, "aof_rewrite_in_progress").await == "0" {
                    break;
                }
                assert!(t.elapsed() < Duration::from_secs(30), "rewrite did not finish");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert_eq!(info_field(&mut con, "aof_last_bgrewrite_status").await, "ok");
            format!("just after the rewrite finished ({:?})", t.elapsed())
        };
        server.kill9();
        for t in tasks {
            let log = tokio::time::timeout(Duration::from_secs(15), t)
                .await
                .expect("producer hung")
                .expect("producer panicked");
            logs.push(log);
        }
        let acked: usize = logs.iter().map(|l| l.acks.len()).sum();
        eprintln!("rewrite round {round}: killed {what}; {acked} acknowledged so far");
        assert_manifest_complete(dir.path());
        let names: Vec<String> = std::fs::read_dir(aof_dir(dir.path()))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        eprintln!("rewrite round {round}: files after the kill: {names:?}");
        let t = Instant::now();
        server = Server::start(dir.path(), &opts);
        eprintln!("rewrite round {round}: restart took {:?}", t.elapsed());
        // A rewrite's temporary base left by the kill does not outlive the restart.
        let stale: Vec<String> = std::fs::read_dir(aof_dir(dir.path()))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("temp-"))
            .collect();
        assert!(stale.is_empty(), "temporary files kept after the restart: {stale:?}");
        let mut con = server.conn(Duration::from_secs(30)).await;
        check_big(&mut con).await;
        let data = read_all(&mut con, &keys).await;
        assert_prefix(&seen, &data);
        verify(&data, &logs, false);
        seen = data;
    }
    assert!(during > 0, "no kill landed while the rewrite was in progress");
    server.stop();
}

// ---------------------------------------------------------------------------------
// 4. A cut last command; 5. a corrupted middle
// ---------------------------------------------------------------------------------

/// Adds `n` entries to `t` one by one; returns their IDs.
async fn add_entries(server: &Server, from: u64, n: u64) -> Vec<String> {
    let mut con = server.conn(Duration::from_secs(10)).await;
    let mut ids = Vec::new();
    for i in from..from + n {
        let id: String = redis::cmd("XADD")
            .arg("t")
            .arg("*")
            .arg("i")
            .arg(i)
            .arg("pad")
            .arg("abcdefghij".repeat(3))
            .query_async(&mut con)
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

async fn ids_of_t(server: &Server) -> Vec<String> {
    let mut con = server.conn(Duration::from_secs(10)).await;
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("t")
        .arg("-")
        .arg("+")
        .query_async(&mut con)
        .await
        .unwrap();
    for (k, (_, f)) in entries.iter().enumerate() {
        assert_eq!(f[0], ("i".to_string(), k.to_string()), "entry {k} of t");
    }
    entries.into_iter().map(|(id, _)| id).collect()
}

/// Where to cut the last command, given its start and the file's length.
#[derive(Clone, Copy, Debug)]
enum Cut {
    OneByte,
    Half,
    AllButStar,
}

async fn truncated_case(cut: Cut) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &Opts::default());
    let ids = add_entries(&server, 0, 20).await;
    server.stop();
    let (name, path) = last_incr(dir.path());
    let data = std::fs::read(&path).unwrap();
    let last = *command_starts(&data).last().unwrap();
    let len = data.len();
    let keep = match cut {
        Cut::OneByte => len - 1,
        Cut::Half => last + (len - last) / 2,
        Cut::AllButStar => last + 1,
    };
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(keep as u64)
        .unwrap();

    // aof-load-truncated no: refuses to start, naming the file.
    let mut refused = Server::spawn(
        dir.path(),
        &Opts {
            extra: &["--aof-load-truncated", "no"],
            ..Default::default()
        },
    );
    let status = refused.wait_exit(Duration::from_secs(20)).expect("should exit");
    let err = refused.stderr();
    assert!(
        !status.success(),
        "{cut:?}: started with a cut file and aof-load-truncated no"
    );
    assert!(err.contains(&name), "{cut:?}: the error does not name {name}:\n{err}");
    assert!(
        err.contains(&format!("offset {last}")),
        "{cut:?}: no offset {last}:\n{err}"
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        keep as u64,
        "the refused start changed the file"
    );

    // aof-load-truncated yes (the default): loads all but the cut command, warns, and
    // cuts the file at the command's start.
    let mut server = Server::start(dir.path(), &Opts::default());
    assert_eq!(ids_of_t(&server).await, ids[..19], "{cut:?}");
    let err = server.stderr();
    assert!(
        err.contains("Truncating the AOF") && err.contains(&name),
        "{cut:?}: no warning:\n{err}"
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        last as u64,
        "{cut:?}: not cut at a clean boundary"
    );
    let more = add_entries(&server, 19, 5).await;
    server.stop();
    let server = Server::start(dir.path(), &Opts::default());
    let mut want = ids[..19].to_vec();
    want.extend(more);
    assert_eq!(ids_of_t(&server).await, want, "{cut:?}: after appending more");
    assert!(!server.stderr().contains("Truncating"), "cut again on the second start");
}

/// 4. A cut last command is dropped (with a warning, the file cut to a clean boundary);
/// with `aof-load-truncated no` start-up stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_tail_loads() {
    tokio::time::timeout(Duration::from_secs(60), async {
        for cut in [Cut::OneByte, Cut::Half, Cut::AllButStar] {
            truncated_case(cut).await;
        }
    })
    .await
    .expect("test timed out");
}

/// 5. A damaged byte inside the file, or a command fanout does not have: start-up stops
/// with a non-zero exit naming the file, the offset and what was expected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_middle_refused() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::start(dir.path(), &Opts::default());
        add_entries(&server, 0, 20).await;
        server.stop();
        let (name, path) = last_incr(dir.path());
        let mut data = std::fs::read(&path).unwrap();
        let at = data.len() / 2 + data[data.len() / 2..].iter().position(|&b| b == b'$').unwrap();
        data[at] = b'x';
        std::fs::write(&path, &data).unwrap();
        let mut bad = Server::spawn(dir.path(), &Opts::default());
        let status = bad.wait_exit(Duration::from_secs(20)).expect("should exit");
        let err = bad.stderr();
        assert!(!status.success(), "started with a corrupted file:\n{err}");
        assert!(err.contains(&name), "the error does not name {name}:\n{err}");
        assert!(err.contains(&format!("offset {at}")), "no offset {at}:\n{err}");
        assert!(err.contains("expected '$'"), "does not say what was expected:\n{err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            data,
            "the refused start changed the file"
        );

        // A SET, as a Redis AOF holding strings has.
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::start(dir.path(), &Opts::default());
        add_entries(&server, 0, 3).await;
        server.stop();
        let (name, path) = last_incr(dir.path());
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n").unwrap();
        drop(f);
        let mut bad = Server::spawn(dir.path(), &Opts::default());
        let status = bad.wait_exit(Duration::from_secs(20)).expect("should exit");
        let err = bad.stderr();
        assert!(!status.success(), "started with a SET in the file:\n{err}");
        assert!(
            err.contains("'SET'") && err.contains(&name),
            "does not name SET and {name}:\n{err}"
        );
    })
    .await
    .expect("test timed out");
}

// ---------------------------------------------------------------------------------
// 6. Disk full: MISCONF, then recovery
// ---------------------------------------------------------------------------------

fn set_fsize_limit(pid: i32, limit: libc::rlim_t) {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: pid is our own running child; the pointers are to locals.
    let r = unsafe { libc::prlimit(pid, libc::RLIMIT_FSIZE, std::ptr::null(), &mut old) };
    assert_eq!(r, 0, "prlimit get: {}", std::io::Error::last_os_error());
    let new = libc::rlimit {
        rlim_cur: limit,
        rlim_max: old.rlim_max,
    };
    let r = unsafe { libc::prlimit(pid, libc::RLIMIT_FSIZE, &new, std::ptr::null_mut()) };
    assert_eq!(r, 0, "prlimit set: {}", std::io::Error::last_os_error());
}

/// Single XADDs until `stop`; MISCONF is recorded and retried with the next seq.
/// `waiting_since` holds the Unix ms a request was sent while it waits for its reply.
async fn produce_through_misconf(
    mut con: MultiplexedConnection,
    producer: u64,
    keys: Vec<String>,
    stop: Arc<AtomicBool>,
    misconf_seen: Arc<AtomicBool>,
    waiting_since: Arc<AtomicU64>,
) -> Log {
    let mut log = Log {
        producer,
        keys: keys.clone(),
        ..Default::default()
    };
    let start = Instant::now();
    while !stop.load(Relaxed) {
        let seq = log.sent;
        log.sent += 1;
        waiting_since.store(start.elapsed().as_millis() as u64 + 1, Relaxed);
        let r: redis::RedisResult<String> = xadd_cmd(&keys, producer, seq).query_async(&mut con).await;
        waiting_since.store(0, Relaxed);
        match r {
            Ok(id) => log.acks.push(Ack {
                seq,
                key: key_for(&keys, producer, seq),
                id,
            }),
            Err(e) => {
                let text = err_text(&e);
                assert!(
                    text.starts_with(MISCONF),
                    "producer {producer}: unexpected error {text}"
                );
                log.refused.push(seq);
                misconf_seen.store(true, Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    log
}

async fn disk_full(fsync: &str) {
    let dir = tempfile::tempdir().unwrap();
    let keys = stream_keys("d", 2);
    let opts = Opts {
        fsync,
        fsize: Some(256 * 1024),
        ..Default::default()
    };
    let mut server = Server::start(dir.path(), &opts);
    // Most of the room goes to a filler stream at once (one pipeline), so that the
    // producers reach the limit in a few hundred writes even on a slow, busy disk.
    {
        let mut con = server.conn(Duration::from_secs(10)).await;
        let mut pipe = redis::pipe();
        for _ in 0..50 {
            pipe.cmd("XADD")
                .arg("filler")
                .arg("*")
                .arg("f")
                .arg("x".repeat(4000))
                .ignore();
        }
        let () = pipe.query_async(&mut con).await.expect("fill");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let misconf_seen = Arc::new(AtomicBool::new(false));
    let clock = Instant::now();
    let mut tasks = Vec::new();
    let mut waits = Vec::new();
    for p in 0..4 {
        let c = server.conn(Duration::from_secs(30)).await;
        let w = Arc::new(AtomicU64::new(0));
        waits.push(w.clone());
        tasks.push(tokio::spawn(produce_through_misconf(
            c,
            p,
            keys.clone(),
            stop.clone(),
            misconf_seen.clone(),
            w,
        )));
    }
    // Until a producer sees MISCONF, or PING does: every producer may be waiting on a
    // write whose bytes failed (not acknowledged until the disk takes them), and then
    // none sends another XADD to be refused; PING reports the error either way.
    let mut probe = server.conn(Duration::from_secs(10)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !misconf_seen.load(Relaxed) {
        assert!(
            Instant::now() < deadline,
            "no MISCONF after 20 s of writes:\n{}",
            server.stderr()
        );
        if let Err(e) = redis::cmd("PING").query_async::<String>(&mut probe).await {
            if err_text(&e).starts_with(MISCONF) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut con = server.conn(Duration::from_secs(10)).await;
    assert_eq!(info_field(&mut con, "aof_last_write_status").await, "err");
    // Reads still work; PING reports the error, as Redis does.
    let len: u64 = redis::cmd("XLEN").arg("d0").query_async(&mut con).await.unwrap();
    assert!(len > 0);
    let _: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("d0")
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(10)
        .query_async(&mut con)
        .await
        .unwrap();
    let e = redis::cmd("PING").query_async::<String>(&mut con).await.unwrap_err();
    assert!(err_text(&e).starts_with(MISCONF), "PING: {}", err_text(&e));
    let e = xadd_cmd(&keys, 99, 0)
        .query_async::<String>(&mut con)
        .await
        .unwrap_err();
    assert!(err_text(&e).contains("File too large"), "the reason: {}", err_text(&e));

    // Which requests are still waiting for their reply?
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let now = clock.elapsed().as_millis() as u64;
    let stuck = waits
        .iter()
        .filter(|w| {
            let s = w.load(Relaxed);
            s != 0 && now.saturating_sub(s) > 1000
        })
        .count();
    eprintln!("disk_full {fsync}: {stuck} request(s) waiting > 1 s while the disk refuses writes");
    // Under every policy, the writes whose bytes could not be written are not
    // acknowledged yet: they are answered once the disk takes them.
    assert!(stuck > 0, "under {fsync}, a write whose bytes failed was answered");

    // The disk accepts writes again.
    set_fsize_limit(server.pid(), libc::RLIM_INFINITY);
    let t = Instant::now();
    loop {
        if info_field(&mut con, "aof_last_write_status").await == "ok" {
            if let Ok(id) = xadd_cmd(&keys, 99, 0).query_async::<String>(&mut con).await {
                let _: i64 = redis::cmd("XDEL")
                    .arg(&keys[key_for(&keys, 99, 0)])
                    .arg(id)
                    .query_async(&mut con)
                    .await
                    .unwrap();
                break;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no recovery within 5 s:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("disk_full {fsync}: recovered {:?} after raising the limit", t.elapsed());
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Relaxed);
    let mut logs = Vec::new();
    for t in tasks {
        logs.push(
            tokio::time::timeout(Duration::from_secs(15), t)
                .await
                .expect("a producer hung after recovery")
                .expect("producer panicked"),
        );
    }
    let acked: usize = logs.iter().map(|l| l.acks.len()).sum();
    let refused: usize = logs.iter().map(|l| l.refused.len()).sum();
    eprintln!("disk_full {fsync}: {acked} acknowledged, {refused} refused with MISCONF");
    assert!(
        server.stderr().contains("File too large"),
        "no log of the error:\n{}",
        server.stderr()
    );
    server.stop();
    let server = Server::start(
        dir.path(),
        &Opts {
            fsync,
            ..Default::default()
        },
    );
    let mut con = server.conn(Duration::from_secs(10)).await;
    let data = read_all(&mut con, &keys).await;
    verify(&data, &logs, true);
}

/// 6a. everysec: writes are refused with MISCONF while the file size limit is hit, and
/// accepted again once it is raised; nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_misconf_everysec() {
    tokio::time::timeout(Duration::from_secs(60), disk_full("everysec"))
        .await
        .expect("test timed out");
}

/// 6b. always: a write whose bytes could not be written waits for the disk; the
/// others get MISCONF; nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_misconf_always() {
    tokio::time::timeout(Duration::from_secs(60), disk_full("always"))
        .await
        .expect("test timed out");
}
