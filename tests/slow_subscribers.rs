//! Slow subscribers end to end: `client-output-buffer-limit` for the pubsub class and
//! fanout's overflow policies (disconnect, drop-newest, drop-oldest, per connection).
//!
//! Each test starts a server in-process on a free loopback port and uses:
//! * a *slow* subscriber: a raw socket with a small receive buffer that subscribes, reads
//!   its confirmation and then stops reading, so the server's output for it piles up;
//! * two *fast* subscribers that read and check everything (sequence numbers in order,
//!   exact payloads);
//! * a publisher that pipelines PUBLISH in small batches and, after each batch, waits until
//!   the fast subscribers have received it. That pacing keeps the fast subscribers far from
//!   any limit, so only the slow one is ever over it, whatever the machine's speed;
//! * an admin connection (redis crate) for CLIENT LIST, INFO and CONFIG SET.
//!
//! Loopback kernel buffers can hold several MB, so the slow subscriber's `omem` only
//! starts growing once they are full: the tests publish 64 KB messages until the server
//! reports what they are looking for, with a generous cap.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use support_slow::resp::{self, Value};

const CH: &str = "ch";
/// Payload size of the flood messages.
const BIG: usize = 64 * 1024;
/// Messages pipelined per batch (256 KB of payload).
const BATCH: usize = 4;
/// Never publish more than this many messages in one flood (about 40 MB).
const MAX_MESSAGES: u64 = 640;
const HARD_1MB: u64 = 1024 * 1024;

/// Private helpers for this file (the shared `tests/common` belongs to other tests).
mod support_slow {
    /// Just enough RESP to check every byte a subscriber receives.
    pub mod resp {
        #[derive(Debug, Clone, PartialEq)]
        pub enum Value {
            Simple(Vec<u8>),
            Error(Vec<u8>),
            Int(i64),
            Bulk(Option<Vec<u8>>),
            /// `*` arrays and RESP3 `>` pushes.
            Array(Option<Vec<Value>>),
        }

        /// Parses one value from the start of `buf`: `Ok(None)` if more bytes are needed,
        /// `Err` if the bytes are not well-formed RESP (a torn frame shows up here).
        pub fn parse(buf: &[u8]) -> Result<Option<(Value, usize)>, String> {
            parse_at(buf, 0)
        }

        fn line(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
            let rest = &buf[pos..];
            let i = memchr_crlf(rest)?;
            Some((&rest[..i], pos + i + 2))
        }

        fn memchr_crlf(b: &[u8]) -> Option<usize> {
            let mut from = 0;
            while let Some(i) = b[from..].iter().position(|&c| c == b'\r') {
                let at = from + i;
                match b.get(at + 1) {
                    Some(b'\n') => return Some(at),
                    Some(_) => from = at + 1,
                    None => return None,
                }
            }
            None
        }

        fn int(text: &[u8]) -> Result<i64, String> {
            std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| format!("bad integer {:?}", String::from_utf8_lossy(text)))
        }

        fn parse_at(buf: &[u8], pos: usize) -> Result<Option<(Value, usize)>, String> {
            let Some(&kind) = buf.get(pos) else {
                return Ok(None);
            };
            let Some((text, next)) = line(buf, pos + 1) else {
                return Ok(None);
            };
            match kind {
                b'+' => Ok(Some((Value::Simple(text.to_vec()), next))),
                b'-' => Ok(Some((Value::Error(text.to_vec()), next))),
                b':' => Ok(Some((Value::Int(int(text)?), next))),
                b'$' => {
                    let n = int(text)?;
                    if n < 0 {
                        return Ok(Some((Value::Bulk(None), next)));
                    }
                    let end = next + n as usize;
                    if buf.len() < end + 2 {
                        return Ok(None);
                    }
                    if &buf[end..end + 2] != b"\r\n" {
                        return Err(format!("bulk of {n} bytes not followed by CRLF"));
                    }
                    Ok(Some((Value::Bulk(Some(buf[next..end].to_vec())), end + 2)))
                }
                b'*' | b'>' => {
                    let n = int(text)?;
                    if n < 0 {
                        return Ok(Some((Value::Array(None), next)));
                    }
                    let mut items = Vec::with_capacity(n as usize);
                    let mut at = next;
                    for _ in 0..n {
                        match parse_at(buf, at)? {
                            Some((v, after)) => {
                                items.push(v);
                                at = after;
                            }
                            None => return Ok(None),
                        }
                    }
                    Ok(Some((Value::Array(Some(items)), at)))
                }
                other => Err(format!("unexpected RESP type byte {other:#04x} at {pos}")),
            }
        }

        /// A request as a RESP array of bulk strings.
        pub fn command(args: &[&[u8]]) -> Vec<u8> {
            let mut out = format!("*{}\r\n", args.len()).into_bytes();
            for a in args {
                out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                out.extend_from_slice(a);
                out.extend_from_slice(b"\r\n");
            }
            out
        }
    }
}

// ---------------------------------------------------------------------------------------
// Payloads: a sequence number, then one filler byte repeated, so any mix-up is visible.

fn payload(seq: u64, size: usize) -> Vec<u8> {
    let mut p = format!("{seq:010}:").into_bytes();
    p.resize(size, b'a' + (seq % 26) as u8);
    p
}

/// Checks one frame is `*3 message ch <payload>` with an exact, intact payload of
/// `size` bytes, and returns its sequence number.
fn message_seq(v: &Value, size: usize) -> Result<u64, String> {
    let Value::Array(Some(items)) = v else {
        return Err(format!("expected a message array, got {v:?}"));
    };
    let [Value::Bulk(Some(kind)), Value::Bulk(Some(ch)), Value::Bulk(Some(p))] = &items[..] else {
        return Err(format!("expected 3 bulk strings, got {} items", items.len()));
    };
    if kind != b"message" || ch != CH.as_bytes() {
        return Err(format!(
            "expected message on {CH}, got {} on {}",
            String::from_utf8_lossy(kind),
            String::from_utf8_lossy(ch)
        ));
    }
    if p.len() != size {
        return Err(format!("payload of {} bytes, expected {size}", p.len()));
    }
    let seq: u64 = std::str::from_utf8(&p[..10])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or("payload does not start with a sequence number")?;
    if p[..] != payload(seq, size)[..] {
        return Err(format!("payload of message {seq} is corrupted"));
    }
    Ok(seq)
}

fn is_pong(v: &Value) -> bool {
    match v {
        Value::Simple(s) => s == b"PONG",
        Value::Array(Some(items)) => {
            matches!(items.first(), Some(Value::Bulk(Some(k))) if k == b"pong")
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// The server.

struct TestServer {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn start(limit: &str) -> TestServer {
    let settings = Arc::new(fanout::config::Settings::default());
    settings.set("port", "0").unwrap();
    settings.set("bind", "127.0.0.1").unwrap();
    settings.set("client-output-buffer-limit", limit).unwrap();
    let server = fanout::server::Server::bind(settings, None).await.unwrap();
    let (addrs, _broker, stop) = server.spawn();
    TestServer { addr: addrs[0], stop }
}

// ---------------------------------------------------------------------------------------
// Raw connections.

/// A raw RESP connection that reads only when asked to.
struct Raw {
    s: TcpStream,
    buf: BytesMut,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        Raw {
            s: TcpStream::connect(addr).await.unwrap(),
            buf: BytesMut::with_capacity(64 * 1024),
        }
    }

    /// A connection whose receive buffer is as small as the kernel allows, so that it
    /// stops accepting data soon after its owner stops reading.
    fn connect_small_rcvbuf(addr: SocketAddr) -> Raw {
        use socket2::{Domain, Socket, Type};
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        sock.connect(&addr.into()).unwrap();
        sock.set_nonblocking(true).unwrap();
        let std: std::net::TcpStream = sock.into();
        Raw {
            s: TcpStream::from_std(std).unwrap(),
            buf: BytesMut::with_capacity(64 * 1024),
        }
    }

    async fn send(&mut self, args: &[&[u8]]) {
        self.s.write_all(&resp::command(args)).await.unwrap();
    }

    /// Reads one value, failing the test after `limit`.
    async fn read(&mut self, limit: Duration) -> Result<Value, String> {
        tokio::time::timeout(limit, self.read_inner())
            .await
            .map_err(|_| format!("no complete reply within {limit:?}"))?
    }

    async fn read_inner(&mut self) -> Result<Value, String> {
        loop {
            if let Some((v, n)) = resp::parse(&self.buf)? {
                self.buf.advance(n);
                return Ok(v);
            }
            self.buf.reserve(64 * 1024);
            match self.s.read_buf(&mut self.buf).await {
                Ok(0) => return Err("connection closed".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("read failed: {e}")),
            }
        }
    }

    async fn call(&mut self, args: &[&[u8]]) -> Value {
        self.send(args).await;
        self.read(Duration::from_secs(10)).await.unwrap()
    }

    /// Reads until the peer closes (or the connection fails): true if that happened
    /// within `limit`.
    async fn reaches_eof(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut scratch = vec![0u8; 256 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.s.read(&mut scratch)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// A subscriber that stops reading after its confirmation.
struct Slow {
    raw: Raw,
    id: u64,
}

impl Slow {
    /// Connects, runs `setup` commands (each must not fail), subscribes, and stops reading.
    async fn connect(addr: SocketAddr, setup: &[&[&[u8]]]) -> Slow {
        Self::connect_with_replies(addr, setup).await.0
    }

    /// As [`Slow::connect`], also returning the replies to the `setup` commands.
    async fn connect_with_replies(addr: SocketAddr, setup: &[&[&[u8]]]) -> (Slow, Vec<Value>) {
        let mut raw = Raw::connect_small_rcvbuf(addr);
        let Value::Int(id) = raw.call(&[b"CLIENT", b"ID"]).await else {
            panic!("CLIENT ID did not return an integer");
        };
        let mut replies = Vec::new();
        for args in setup {
            let v = raw.call(args).await;
            assert!(!matches!(v, Value::Error(_)), "{args:?} failed: {v:?}");
            replies.push(v);
        }
        let confirmation = raw.call(&[b"SUBSCRIBE", CH.as_bytes()]).await;
        assert_eq!(
            confirmation,
            Value::Array(Some(vec![
                Value::Bulk(Some(b"subscribe".to_vec())),
                Value::Bulk(Some(CH.as_bytes().to_vec())),
                Value::Int(1),
            ]))
        );
        (Slow { raw, id: id as u64 }, replies)
    }

    /// Starts reading again: sends a PING (its reply is queued after every message still
    /// queued, and replies are never dropped) and reads every frame up to its reply.
    /// Every frame before it must be a whole, intact message: returns their sequence numbers.
    async fn drain(&mut self) -> Result<Vec<u64>, String> {
        self.raw.send(&[b"PING"]).await;
        let mut seqs = Vec::new();
        loop {
            let v = self.raw.read(Duration::from_secs(20)).await?;
            if is_pong(&v) {
                return Ok(seqs);
            }
            seqs.push(message_seq(&v, BIG)?);
        }
    }
}

/// A subscriber that reads everything as fast as it can and checks that messages arrive
/// whole, intact and in order, numbered from 0.
struct Fast {
    count: Arc<AtomicU64>,
    error: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fast {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fast {
    async fn connect(addr: SocketAddr) -> Fast {
        let mut raw = Raw::connect(addr).await;
        let v = raw.call(&[b"SUBSCRIBE", CH.as_bytes()]).await;
        assert!(matches!(v, Value::Array(Some(_))), "confirmation: {v:?}");
        let count = Arc::new(AtomicU64::new(0));
        let error = Arc::new(Mutex::new(None));
        let (c, e) = (count.clone(), error.clone());
        let task = tokio::spawn(async move {
            let mut expected = 0u64;
            let result: Result<(), String> = async {
                loop {
                    while let Some((v, n)) = resp::parse(&raw.buf)? {
                        raw.buf.advance(n);
                        let seq = message_seq(&v, BIG)?;
                        if seq != expected {
                            return Err(format!("got message {seq}, expected {expected}"));
                        }
                        expected += 1;
                        c.store(expected, Ordering::SeqCst);
                    }
                    raw.buf.reserve(256 * 1024);
                    match raw.s.read_buf(&mut raw.buf).await {
                        Ok(0) => return Err("fast subscriber was disconnected".into()),
                        Ok(_) => {}
                        Err(err) => return Err(format!("fast subscriber read failed: {err}")),
                    }
                }
            }
            .await;
            if let Err(err) = result {
                *e.lock().unwrap() = Some(err);
            }
        });
        Fast { count, error, task }
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until this subscriber has received `n` messages.
    async fn wait_for(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(e) = self.error.lock().unwrap().clone() {
                panic!("fast subscriber: {e}");
            }
            if self.count() >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "fast subscriber has {} of {n} messages after 20 s",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Pipelines numbered PUBLISH commands.
struct Publisher {
    raw: Raw,
    next: u64,
    /// The receiver count each PUBLISH replied, by sequence number.
    receivers: Vec<i64>,
}

impl Publisher {
    async fn connect(addr: SocketAddr) -> Publisher {
        Publisher {
            raw: Raw::connect(addr).await,
            next: 0,
            receivers: Vec::new(),
        }
    }

    /// Sends `n` PUBLISH commands in one write, then reads their `n` replies.
    async fn publish(&mut self, n: usize, size: usize) {
        let mut out = Vec::with_capacity(n * (size + 64));
        for _ in 0..n {
            out.extend_from_slice(&resp::command(&[b"PUBLISH", CH.as_bytes(), &payload(self.next, size)]));
            self.next += 1;
        }
        self.raw.s.write_all(&out).await.unwrap();
        for _ in 0..n {
            match self.raw.read(Duration::from_secs(20)).await.unwrap() {
                Value::Int(k) => self.receivers.push(k),
                other => panic!("PUBLISH replied {other:?}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The admin connection.

struct Admin {
    con: redis::aio::MultiplexedConnection,
}

impl Admin {
    async fn connect(addr: SocketAddr) -> Admin {
        let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
        Admin {
            con: client.get_multiplexed_async_connection().await.unwrap(),
        }
    }

    async fn query<T: redis::FromRedisValue>(&mut self, args: &[&str]) -> T {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        c.query_async(&mut self.con)
            .await
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// The CLIENT LIST line of client `id`, if it is still listed.
    async fn client(&mut self, id: u64) -> Option<String> {
        let list: String = self.query(&["CLIENT", "LIST"]).await;
        let prefix = format!("id={id} ");
        list.lines().find(|l| l.starts_with(&prefix)).map(str::to_string)
    }

    async fn info_stat(&mut self, name: &str) -> u64 {
        let info: String = self.query(&["INFO", "stats"]).await;
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .unwrap_or_else(|| panic!("INFO stats has no {name}"))
            .trim()
            .parse()
            .unwrap()
    }
}

/// A numeric field (`omem=`, `dropped=`) of a CLIENT LIST line.
fn field(line: &str, name: &str) -> u64 {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name}= in {line}"))
        .parse()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// The flood.

/// What the publisher, the fast subscribers and the admin connection run together.
struct Rig {
    server: TestServer,
    admin: Admin,
    publisher: Publisher,
    fast: Vec<Fast>,
}

impl Rig {
    async fn new(limit: &str, policy: &str) -> Rig {
        let server = start(limit).await;
        let mut admin = Admin::connect(server.addr).await;
        let ok: String = admin.query(&["CONFIG", "SET", "pubsub-overflow-policy", policy]).await;
        assert_eq!(ok, "OK");
        let publisher = Publisher::connect(server.addr).await;
        let fast = vec![Fast::connect(server.addr).await, Fast::connect(server.addr).await];
        Rig {
            server,
            admin,
            publisher,
            fast,
        }
    }

    /// Publishes one batch and waits until the fast subscribers have all of it.
    async fn batch(&mut self) {
        self.publisher.publish(BATCH, BIG).await;
        for f in &self.fast {
            f.wait_for(self.publisher.next).await;
        }
    }

    /// Publishes batches until `done` says so (given the slow client's CLIENT LIST line,
    /// `None` once it is gone), at most MAX_MESSAGES. Returns the largest `omem` seen.
    async fn flood_until(&mut self, slow: u64, mut done: impl FnMut(Option<&str>) -> bool) -> u64 {
        let mut max_omem = 0;
        loop {
            assert!(
                self.publisher.next < MAX_MESSAGES,
                "condition not reached after {MAX_MESSAGES} messages of {BIG} bytes"
            );
            self.batch().await;
            let line = self.admin.client(slow).await;
            if let Some(l) = &line {
                max_omem = max_omem.max(field(l, "omem"));
            }
            if done(line.as_deref()) {
                return max_omem;
            }
        }
    }

    fn published(&self) -> u64 {
        self.publisher.next
    }

    /// Every fast subscriber has every message, and nothing more.
    fn assert_fast_complete(&self) {
        for f in &self.fast {
            assert_eq!(f.count(), self.published());
            if let Some(e) = f.error.lock().unwrap().clone() {
                panic!("fast subscriber: {e}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_limit_disconnects_the_slow_subscriber_only() {
    let mut rig = Rig::new("pubsub 1mb 0 0", "disconnect").await;
    let mut slow = Slow::connect(rig.server.addr, &[]).await;

    let max_omem = rig.flood_until(slow.id, |line| line.is_none()).await;
    let at_disconnect = rig.published();
    eprintln!("disconnected after {at_disconnect} messages, largest omem seen {max_omem}");
    // A few more batches after the disconnect: the others must not notice.
    for _ in 0..2 {
        rig.batch().await;
    }

    assert!(rig.admin.client(slow.id).await.is_none());
    assert!(max_omem < HARD_1MB, "omem {max_omem} seen at or over the hard limit");
    assert_eq!(
        rig.admin.info_stat("client_output_buffer_limit_disconnections").await,
        1
    );
    assert_eq!(rig.admin.info_stat("pubsub_published_messages").await, rig.published());
    rig.assert_fast_complete();
    // PUBLISH counted three receivers until the disconnect, two afterwards.
    let r = &rig.publisher.receivers;
    assert_eq!(r[0], 3);
    assert!(r[at_disconnect as usize..].iter().all(|&k| k == 2), "{r:?}");
    // The slow subscriber's connection is closed: what the kernel held, then EOF.
    assert!(slow.raw.reaches_eof(Duration::from_secs(10)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_limit_disconnects_after_traffic_stops() {
    let mut rig = Rig::new("pubsub 0 512kb 1", "disconnect").await;
    let slow = Slow::connect(rig.server.addr, &[]).await;

    rig.flood_until(slow.id, |line| {
        let line = line.expect("disconnected before going over the soft limit");
        field(line, "omem") >= 512 * 1024
    })
    .await;
    // Over the soft limit and no message will come any more: only the periodic check can
    // close it now.
    let stopped = Instant::now();
    let published = rig.published();
    assert!(rig.admin.client(slow.id).await.is_some());
    loop {
        if rig.admin.client(slow.id).await.is_none() {
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(3),
            "still connected 3 s after traffic stopped over a 1 s soft limit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "over the soft limit after {published} messages, closed {:?} after they stopped",
        stopped.elapsed()
    );
    assert_eq!(rig.published(), published);
    assert_eq!(
        rig.admin.info_stat("client_output_buffer_limit_disconnections").await,
        1
    );
    rig.assert_fast_complete();
}

/// Floods a slow subscriber under a drop policy until it has dropped messages, then 16
/// more messages; returns (slow client line after the flood, largest omem seen).
async fn flood_with_drops(rig: &mut Rig, slow: &Slow) -> (String, u64) {
    let max_omem = rig
        .flood_until(slow.id, |line| {
            let line = line.expect("slow subscriber disconnected under a drop policy");
            field(line, "dropped") > 0
        })
        .await;
    let mut max_omem = max_omem;
    for _ in 0..4 {
        rig.batch().await;
        let line = rig.admin.client(slow.id).await.expect("disconnected");
        max_omem = max_omem.max(field(&line, "omem"));
    }
    let line = rig.admin.client(slow.id).await.expect("disconnected");
    eprintln!("published {}, largest omem {max_omem}, now: {line}", rig.published());
    (line, max_omem)
}

fn assert_increasing(seqs: &[u64]) {
    for w in seqs.windows(2) {
        assert!(w[0] < w[1], "messages out of order: {} then {}", w[0], w[1]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_newest_keeps_the_slow_subscriber_and_whole_frames() {
    let mut rig = Rig::new("pubsub 1mb 0 0", "drop-newest").await;
    let mut slow = Slow::connect(rig.server.addr, &[]).await;

    let (line, max_omem) = flood_with_drops(&mut rig, &slow).await;
    assert!(max_omem < HARD_1MB, "omem reached {max_omem}");
    assert!(field(&line, "omem") < HARD_1MB, "{line}");
    assert!(field(&line, "dropped") > 0, "{line}");
    let info_dropped = rig.admin.info_stat("pubsub_dropped_messages").await;
    assert!(info_dropped > 0);
    assert_eq!(
        rig.admin.info_stat("client_output_buffer_limit_disconnections").await,
        0
    );
    rig.assert_fast_complete();

    let seqs = slow.drain().await.expect("slow subscriber's stream");
    eprintln!("slow subscriber read {} messages: {seqs:?}", seqs.len());
    assert!(!seqs.is_empty());
    assert_increasing(&seqs);
    // The oldest messages were kept, the newest ones dropped.
    assert_eq!(seqs[0], 0);
    assert!(*seqs.last().unwrap() < rig.published() - 1, "nothing new dropped");
    // Every message was either received or counted as dropped.
    let line = rig.admin.client(slow.id).await.expect("still connected");
    let dropped = field(&line, "dropped");
    assert_eq!(seqs.len() as u64 + dropped, rig.published());
    assert_eq!(info_dropped, dropped);
    // Everything was written: its output accounting is back to zero (polled: the server
    // counts the last write done just after the bytes reach the socket).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let line = rig.admin.client(slow.id).await.expect("still connected");
        if field(&line, "omem") == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "omem never back to 0: {line}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_oldest_keeps_the_slow_subscriber_and_the_newest_messages() {
    let mut rig = Rig::new("pubsub 1mb 0 0", "drop-oldest").await;
    let mut slow = Slow::connect(rig.server.addr, &[]).await;

    let (line, max_omem) = flood_with_drops(&mut rig, &slow).await;
    assert!(max_omem < HARD_1MB, "omem reached {max_omem}");
    assert!(field(&line, "omem") < HARD_1MB, "{line}");
    assert!(field(&line, "dropped") > 0, "{line}");
    assert_eq!(
        rig.admin.info_stat("client_output_buffer_limit_disconnections").await,
        0
    );
    rig.assert_fast_complete();

    let seqs = slow.drain().await.expect("slow subscriber's stream");
    eprintln!("slow subscriber read {} messages: {seqs:?}", seqs.len());
    assert_increasing(&seqs);
    // The newest message made it; older ones were dropped to make room.
    assert_eq!(seqs.last().copied(), Some(rig.published() - 1));
    assert!((seqs.len() as u64) < rig.published());
    let line = rig.admin.client(slow.id).await.expect("still connected");
    assert_eq!(seqs.len() as u64 + field(&line, "dropped"), rig.published());
}

/// INFO's pubsub_dropped_messages counts every message a drop policy discarded, whichever
/// policy it was: it must match the dropped= counts of CLIENT LIST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_oldest_dropped_messages_show_in_info_stats() {
    let mut rig = Rig::new("pubsub 1mb 0 0", "drop-oldest").await;
    let slow = Slow::connect(rig.server.addr, &[]).await;
    let (line, _) = flood_with_drops(&mut rig, &slow).await;
    let dropped = field(&line, "dropped");
    assert!(dropped > 0);
    let info_dropped = rig.admin.info_stat("pubsub_dropped_messages").await;
    assert_eq!(
        info_dropped, dropped,
        "INFO pubsub_dropped_messages disagrees with CLIENT LIST dropped="
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_overflow_overrides_the_server_policy() {
    let mut rig = Rig::new("pubsub 1mb 0 0", "disconnect").await;

    // Without an override, CLIENT OVERFLOW reports the server's policy; DEFAULT goes back.
    let mut probe = Raw::connect(rig.server.addr).await;
    let bulk = |s: &str| Value::Bulk(Some(s.as_bytes().to_vec()));
    let ok = Value::Simple(b"OK".to_vec());
    assert_eq!(probe.call(&[b"CLIENT", b"OVERFLOW"]).await, bulk("disconnect"));
    assert_eq!(probe.call(&[b"CLIENT", b"OVERFLOW", b"drop-oldest"]).await, ok);
    assert_eq!(probe.call(&[b"CLIENT", b"OVERFLOW"]).await, bulk("drop-oldest"));
    assert_eq!(probe.call(&[b"CLIENT", b"OVERFLOW", b"default"]).await, ok);
    assert_eq!(probe.call(&[b"CLIENT", b"OVERFLOW"]).await, bulk("disconnect"));
    assert!(matches!(
        probe.call(&[b"CLIENT", b"OVERFLOW", b"sometimes"]).await,
        Value::Error(_)
    ));
    assert_eq!(probe.call(&[b"CLIENT", b"OVERFLOW"]).await, bulk("disconnect"));

    // One slow subscriber opts into drop-newest; another follows the server.
    let (mut kept, replies) = Slow::connect_with_replies(
        rig.server.addr,
        &[&[b"CLIENT", b"OVERFLOW", b"drop-newest"], &[b"CLIENT", b"OVERFLOW"]],
    )
    .await;
    assert_eq!(replies, vec![ok, bulk("drop-newest")]);
    let gone = Slow::connect(rig.server.addr, &[]).await;

    let kept_id = kept.id;
    rig.flood_until(gone.id, |line| line.is_none()).await;
    // Both had the same backlog; the one that opted out of disconnecting is still here,
    // and stays through more traffic.
    assert!(rig.admin.client(kept_id).await.is_some());
    for _ in 0..4 {
        rig.batch().await;
    }
    let line = rig
        .admin
        .client(kept_id)
        .await
        .expect("the drop-newest subscriber was disconnected");
    assert!(field(&line, "omem") < HARD_1MB, "{line}");
    assert!(field(&line, "dropped") > 0, "{line}");
    assert_eq!(
        rig.admin.info_stat("client_output_buffer_limit_disconnections").await,
        1
    );
    rig.assert_fast_complete();
    let seqs = kept.drain().await.expect("the drop-newest subscriber's stream");
    assert_increasing(&seqs);
    assert_eq!(seqs.first(), Some(&0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_never_waits_for_a_stuck_subscriber() {
    // No limit at all: everything for the stuck subscriber queues up in the server.
    let server = start("pubsub 0 0 0").await;
    let mut admin = Admin::connect(server.addr).await;
    let slow = Slow::connect(server.addr, &[]).await;
    let mut publisher = Publisher::connect(server.addr).await;

    let started = Instant::now();
    let n = 1000;
    tokio::time::timeout(Duration::from_secs(10), async {
        for _ in 0..n / 100 {
            publisher.publish(100, 16 * 1024).await;
        }
    })
    .await
    .expect("1000 PUBLISH did not complete within 10 s while a subscriber was stuck");
    eprintln!("1000 x 16 KB PUBLISH took {:?}", started.elapsed());

    assert_eq!(publisher.receivers.len(), n);
    assert!(publisher.receivers.iter().all(|&k| k == 1));
    let line = admin.client(slow.id).await.expect("stuck subscriber listed");
    // Most of the 16 MB is waiting in its outbox, not in kernel buffers.
    assert!(field(&line, "omem") > 4 * 1024 * 1024, "{line}");
}
