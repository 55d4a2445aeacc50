//! Helpers shared by the integration tests: an in-process server, `redis` crate clients,
//! and a raw TCP connection that speaks RESP byte by byte.
//!
//! Every wait here is bounded by [`WAIT`] (or a timeout given by the caller), so a broken
//! server makes a test fail instead of hanging.

#![allow(dead_code)]

pub mod child;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// The longest any single expected event may take.
pub const WAIT: Duration = Duration::from_secs(5);

/// A fanout server running in this process on a free loopback port. Dropping it shuts the
/// server down.
pub struct TestServer {
    pub addr: SocketAddr,
    pub broker: Arc<fanout::broker::Broker>,
    pub stop: CancellationToken,
    /// `requirepass`, if one was configured.
    pub password: Option<String>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl TestServer {
    /// A `redis://` URL for this server, RESP2 or RESP3.
    pub fn url(&self, resp3: bool) -> String {
        if resp3 {
            format!("redis://{}/?protocol=resp3", self.addr)
        } else {
            format!("redis://{}/", self.addr)
        }
    }

    pub fn client(&self, resp3: bool) -> redis::Client {
        redis::Client::open(self.url(resp3)).expect("client url")
    }

    /// A multiplexed `redis` connection (RESP2 or RESP3), bounded by [`WAIT`].
    pub async fn conn(&self, resp3: bool) -> redis::aio::MultiplexedConnection {
        tokio::time::timeout(WAIT, self.client(resp3).get_multiplexed_async_connection())
            .await
            .expect("connect timed out")
            .expect("connect")
    }

    /// A RESP3 multiplexed connection whose pushes arrive on the returned receiver.
    pub async fn conn_with_pushes(
        &self,
    ) -> (
        redis::aio::MultiplexedConnection,
        tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let cfg = redis::AsyncConnectionConfig::new().set_push_sender(tx);
        let con = tokio::time::timeout(
            WAIT,
            self.client(true).get_multiplexed_async_connection_with_config(&cfg),
        )
        .await
        .expect("connect timed out")
        .expect("connect");
        (con, rx)
    }

    /// A RESP2 pub/sub connection from the `redis` crate.
    pub async fn pubsub(&self) -> redis::aio::PubSub {
        tokio::time::timeout(WAIT, self.client(false).get_async_pubsub())
            .await
            .expect("connect timed out")
            .expect("connect")
    }

    /// A raw TCP connection.
    pub async fn raw(&self) -> RawConn {
        RawConn::connect(self.addr).await
    }

    /// Asserts that the server still answers PING on a fresh connection.
    pub async fn assert_alive(&self) {
        let mut c = self.raw().await;
        if let Some(pw) = &self.password {
            c.send(&["AUTH", pw]).await;
            c.expect(b"+OK\r\n").await;
        }
        c.send(&["PING"]).await;
        c.expect(b"+PONG\r\n").await;
    }
}

/// Starts a server with default settings plus `overrides` (name, value), applied before
/// binding.
pub async fn start_server_with(overrides: &[(&str, &str)]) -> TestServer {
    let settings = Arc::new(fanout::config::Settings::default());
    settings.set("port", "0").unwrap();
    for (k, v) in overrides {
        settings.set(k, v).unwrap_or_else(|e| panic!("set {k} {v}: {e}"));
    }
    let server = fanout::server::Server::bind(settings, None).await.expect("bind");
    let (addrs, broker, stop) = server.spawn();
    TestServer {
        addr: addrs[0],
        broker,
        stop,
        password: overrides
            .iter()
            .find(|(k, _)| *k == "requirepass")
            .map(|(_, v)| v.to_string()),
    }
}

pub async fn start_server() -> TestServer {
    start_server_with(&[]).await
}

/// Encodes a command as a RESP array of bulk strings.
pub fn resp_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One decoded reply, RESP2 or RESP3.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    /// `$-1`, `*-1` or RESP3 `_`.
    Null,
    Array(Vec<Frame>),
    Push(Vec<Frame>),
    Set(Vec<Frame>),
    Map(Vec<(Frame, Frame)>),
    /// RESP3 verbatim string: format (`txt`) and payload.
    Verbatim(String, Vec<u8>),
    Double(String),
    Bool(bool),
}

impl Frame {
    pub fn bulk(b: impl AsRef<[u8]>) -> Frame {
        Frame::Bulk(b.as_ref().to_vec())
    }

    /// The text of a bulk, simple or verbatim string.
    pub fn text(&self) -> String {
        match self {
            Frame::Bulk(b) | Frame::Verbatim(_, b) => String::from_utf8_lossy(b).into_owned(),
            Frame::Simple(s) => s.clone(),
            other => panic!("not a string: {other:?}"),
        }
    }

    pub fn int(&self) -> i64 {
        match self {
            Frame::Int(n) => *n,
            other => panic!("not an integer: {other:?}"),
        }
    }

    /// The elements of an array, push or set.
    pub fn items(&self) -> &[Frame] {
        match self {
            Frame::Array(v) | Frame::Push(v) | Frame::Set(v) => v,
            other => panic!("not an aggregate: {other:?}"),
        }
    }
}

/// A raw TCP connection with a read buffer, for byte-exact checks.
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already consumed.
    pos: usize,
}

impl RawConn {
    pub async fn connect(addr: SocketAddr) -> RawConn {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        stream.set_nodelay(true).unwrap();
        RawConn {
            stream,
            buf: Vec::new(),
            pos: 0,
        }
    }

    /// Unconsumed bytes.
    fn data(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    fn shown(&self) -> String {
        let d = self.data();
        String::from_utf8_lossy(&d[..d.len().min(400)]).into_owned()
    }

    /// Sends a command as a RESP array.
    pub async fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        let bytes = resp_command(args);
        self.send_raw(&bytes).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        tokio::time::timeout(WAIT, self.stream.write_all(bytes))
            .await
            .expect("write timed out")
            .expect("write");
    }

    /// Reads more bytes into the buffer; returns how many (0 at EOF).
    async fn fill(&mut self, deadline: tokio::time::Instant) -> std::io::Result<usize> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + 64 * 1024, 0);
        let r = tokio::time::timeout_at(deadline, self.stream.read(&mut self.buf[old..])).await;
        let n = match r {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                self.buf.truncate(old);
                return Err(e);
            }
            Err(_) => {
                self.buf.truncate(old);
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "read timed out"));
            }
        };
        self.buf.truncate(old + n);
        Ok(n)
    }

    /// Reads exactly `n` bytes (bounded by [`WAIT`]).
    pub async fn read_n(&mut self, n: usize) -> Vec<u8> {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.data().len() < n {
            match self.fill(deadline).await {
                Ok(0) => panic!("EOF after {} of {n} bytes: {:?}", self.data().len(), self.shown()),
                Ok(_) => {}
                Err(e) => panic!("{e} after {} of {n} bytes: {:?}", self.data().len(), self.shown()),
            }
        }
        let out = self.data()[..n].to_vec();
        self.consume(n);
        out
    }

    /// Reads exactly `expected.len()` bytes and asserts they are `expected`.
    pub async fn expect(&mut self, expected: &[u8]) {
        let got = self.read_n(expected.len()).await;
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected),
            "raw bytes differ"
        );
        assert_eq!(got, expected);
    }

    /// Asserts that the next reply is exactly the error line `-<msg>\r\n`.
    pub async fn expect_error(&mut self, msg: &str) {
        self.expect(format!("-{msg}\r\n").as_bytes()).await;
    }

    /// Sends a command and returns its (single) reply.
    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Frame {
        self.send(args).await;
        self.read_frame().await
    }

    /// Asserts that the peer closes the connection with nothing more sent (bounded by
    /// [`WAIT`]). A reset counts as closed.
    pub async fn expect_eof(&mut self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if !self.data().is_empty() {
                panic!("expected EOF, got {:?}", self.shown());
            }
            match self.fill(deadline).await {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    panic!("connection still open after {WAIT:?}")
                }
                Err(_) => return,
            }
        }
    }

    /// Asserts that nothing arrives within `quiet` (the connection may stay open).
    pub async fn expect_silence(&mut self, quiet: Duration) {
        let deadline = tokio::time::Instant::now() + quiet;
        let _ = self.fill(deadline).await;
        assert!(self.data().is_empty(), "expected nothing, got {:?}", self.shown());
    }

    /// Reads one reply, or `None` if the connection closes or fails first (bounded by
    /// [`WAIT`]).
    pub async fn try_read_frame(&mut self) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some((frame, used)) = parse_frame(self.data()) {
                self.consume(used);
                return Some(frame);
            }
            match self.fill(deadline).await {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    panic!("no reply within {WAIT:?}; have {:?}", self.shown())
                }
                Err(_) => return None,
            }
        }
    }

    /// Reads one reply and returns its exact bytes, undecoded (bounded by [`WAIT`]).
    pub async fn read_frame_bytes(&mut self) -> Vec<u8> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some((_, used)) = parse_frame(self.data()) {
                let out = self.data()[..used].to_vec();
                self.consume(used);
                return out;
            }
            match self.fill(deadline).await {
                Ok(0) => panic!("EOF while reading a reply; have {:?}", self.shown()),
                Ok(_) => {}
                Err(e) => panic!("{e} while reading a reply; have {:?}", self.shown()),
            }
        }
    }

    /// Reads and decodes one reply (bounded by [`WAIT`]).
    pub async fn read_frame(&mut self) -> Frame {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some((frame, used)) = parse_frame(self.data()) {
                self.consume(used);
                return frame;
            }
            match self.fill(deadline).await {
                Ok(0) => panic!("EOF while reading a reply; have {:?}", self.shown()),
                Ok(_) => {}
                Err(e) => panic!("{e} while reading a reply; have {:?}", self.shown()),
            }
        }
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.windows(2).position(|w| w == b"\r\n").map(|i| from + i)
}

/// Decodes one frame from the front of `buf`: `Some((frame, bytes used))`, or `None`
/// when the frame is not complete yet. Panics on malformed input.
pub fn parse_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    let first = *buf.first()?;
    let end = find_crlf(buf, 1)?;
    let line = std::str::from_utf8(&buf[1..end]).expect("header is text");
    let next = end + 2;
    let len = || -> i64 { line.parse().unwrap_or_else(|_| panic!("bad length {line:?}")) };
    let aggregate = |n: usize, pos: usize| -> Option<(Vec<Frame>, usize)> {
        let mut items = Vec::with_capacity(n.min(1024));
        let mut pos = pos;
        for _ in 0..n {
            let (f, used) = parse_frame(&buf[pos..])?;
            items.push(f);
            pos += used;
        }
        Some((items, pos))
    };
    match first {
        b'+' => Some((Frame::Simple(line.to_string()), next)),
        b'-' => Some((Frame::Error(line.to_string()), next)),
        b':' => Some((Frame::Int(len()), next)),
        b',' => Some((Frame::Double(line.to_string()), next)),
        b'#' => Some((Frame::Bool(line == "t"), next)),
        b'_' => Some((Frame::Null, next)),
        b'$' | b'=' => {
            let n = len();
            if n < 0 {
                return Some((Frame::Null, next));
            }
            let n = n as usize;
            if buf.len() < next + n + 2 {
                return None;
            }
            assert_eq!(&buf[next + n..next + n + 2], b"\r\n", "bulk terminator");
            let payload = buf[next..next + n].to_vec();
            if first == b'=' {
                let fmt = String::from_utf8_lossy(&payload[..3]).into_owned();
                assert_eq!(payload[3], b':', "verbatim format separator");
                Some((Frame::Verbatim(fmt, payload[4..].to_vec()), next + n + 2))
            } else {
                Some((Frame::Bulk(payload), next + n + 2))
            }
        }
        b'*' | b'>' | b'~' => {
            let n = len();
            if n < 0 {
                return Some((Frame::Null, next));
            }
            let (items, pos) = aggregate(n as usize, next)?;
            let f = match first {
                b'*' => Frame::Array(items),
                b'>' => Frame::Push(items),
                _ => Frame::Set(items),
            };
            Some((f, pos))
        }
        b'%' => {
            let n = len() as usize;
            let (items, pos) = aggregate(2 * n, next)?;
            let mut pairs = Vec::with_capacity(n);
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            Some((Frame::Map(pairs), pos))
        }
        other => panic!(
            "unexpected reply type byte {:?} in {:?}",
            other as char,
            String::from_utf8_lossy(&buf[..buf.len().min(200)])
        ),
    }
}

/// The exact text of a server error returned through the `redis` crate
/// (`ERR ...`, `NOAUTH ...`).
pub fn redis_err_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => format!("{e}"),
    }
}

/// Runs a command through the `redis` crate and returns the server's error text;
/// panics if the command succeeded.
pub async fn redis_expect_err(con: &mut redis::aio::MultiplexedConnection, cmd: &redis::Cmd) -> String {
    let r: redis::RedisResult<redis::Value> = tokio::time::timeout(WAIT, cmd.query_async(con))
        .await
        .expect("command timed out");
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => redis_err_text(&e),
    }
}

/// Runs a command through the `redis` crate, bounded by [`WAIT`].
pub async fn redis_query<T: redis::FromRedisValue>(con: &mut redis::aio::MultiplexedConnection, cmd: &redis::Cmd) -> T {
    tokio::time::timeout(WAIT, cmd.query_async(con))
        .await
        .expect("command timed out")
        .unwrap_or_else(|e| panic!("command failed: {e}"))
}

/// Polls `check` every few milliseconds until it returns true or [`WAIT`] passes.
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if check().await {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One `key:value` field of an INFO reply.
pub fn info_field(info: &str, key: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim_end().to_string())
}

/// One `key=value` field of a CLIENT LIST / CLIENT INFO line.
pub fn client_field(line: &str, key: &str) -> Option<String> {
    line.split_ascii_whitespace()
        .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_string)
}

/// Resident set size of this process in kB (the server runs in-process).
pub fn vm_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// A RESP2 subscriber using the `redis` crate's blocking pub/sub API on a blocking
/// thread: subscribes to `channels` and `patterns`, signals `ready`, then collects
/// `count` messages (each read bounded by [`WAIT`]; a timeout makes the task panic).
pub fn resp2_crate_subscriber(
    url: String,
    channels: Vec<Vec<u8>>,
    patterns: Vec<Vec<u8>>,
    count: usize,
) -> (
    tokio::sync::oneshot::Receiver<()>,
    tokio::task::JoinHandle<Vec<redis::Msg>>,
) {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let handle = tokio::task::spawn_blocking(move || {
        let client = redis::Client::open(url).expect("client url");
        let mut con = client.get_connection_with_timeout(WAIT).expect("connect");
        let mut ps = con.as_pubsub();
        ps.set_read_timeout(Some(WAIT)).unwrap();
        for c in &channels {
            ps.subscribe(c).expect("subscribe");
        }
        for p in &patterns {
            ps.psubscribe(p).expect("psubscribe");
        }
        let _ = ready_tx.send(());
        (0..count)
            .map(|i| {
                ps.get_message()
                    .unwrap_or_else(|e| panic!("message {i} of {count}: {e}"))
            })
            .collect()
    });
    (ready_rx, handle)
}

/// Waits for a `resp2_crate_subscriber` to be subscribed.
pub async fn wait_ready(ready: tokio::sync::oneshot::Receiver<()>) {
    tokio::time::timeout(WAIT, ready)
        .await
        .expect("subscriber not ready in time")
        .expect("subscriber failed before it was ready");
}

/// The next push from a RESP3 `redis` connection's push channel (bounded by [`WAIT`]).
pub async fn next_push(rx: &mut tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>) -> redis::PushInfo {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("no push in time")
        .expect("push channel closed")
}

/// Bytes of a `redis::Value` bulk string.
pub fn value_bytes(v: &redis::Value) -> Vec<u8> {
    match v {
        redis::Value::BulkString(b) => b.clone(),
        redis::Value::SimpleString(s) => s.clone().into_bytes(),
        other => panic!("not a string value: {other:?}"),
    }
}

/// Virtual size of this process in kB: grows when memory is reserved even if it is
/// never touched.
pub fn vm_size_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmSize")
}

/// Short helpers for tests that go command by command through the redis crate
/// (`tests/streams.rs`, `tests/keyspace.rs`).
pub mod short {
    use super::{redis_expect_err, redis_query};
    use redis::Value as V;

    type Con = redis::aio::MultiplexedConnection;

    /// A command from its parts (text or bytes).
    pub fn c<A: AsRef<[u8]>>(parts: &[A]) -> redis::Cmd {
        let mut cmd = redis::cmd(std::str::from_utf8(parts[0].as_ref()).expect("command name"));
        for p in &parts[1..] {
            cmd.arg(p.as_ref());
        }
        cmd
    }

    /// Runs a command that must succeed.
    pub async fn q<A: AsRef<[u8]>>(con: &mut Con, parts: &[A]) -> V {
        redis_query(con, &c(parts)).await
    }

    /// Runs a command that must fail; its error text.
    pub async fn e<A: AsRef<[u8]>>(con: &mut Con, parts: &[A]) -> String {
        redis_expect_err(con, &c(parts)).await
    }

    /// A compact rendering of a reply: bulk strings quoted (bytes escaped), simple strings
    /// bare, `nil`, integers, `[...]` arrays and `{k:v}` maps. The same text in both
    /// protocols unless the shapes really differ (maps, doubles).
    pub fn show(v: &V) -> String {
        match v {
            V::Nil => "nil".into(),
            V::Int(n) => n.to_string(),
            V::BulkString(b) => format!("\"{}\"", b.escape_ascii()),
            V::SimpleString(s) => s.clone(),
            V::Okay => "OK".into(),
            V::Array(items) | V::Set(items) => format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(",")),
            V::Map(pairs) => format!(
                "{{{}}}",
                pairs
                    .iter()
                    .map(|(k, v)| format!("{}:{}", show(k), show(v)))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            V::Double(d) => format!("{d}"),
            V::Boolean(b) => b.to_string(),
            V::VerbatimString { text, .. } => format!("\"{text}\""),
            V::ServerError(e) => format!("ERR:{e:?}"),
            other => format!("{other:?}"),
        }
    }
}
