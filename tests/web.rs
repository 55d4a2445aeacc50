//! The HTTP listener end to end, through real clients: `reqwest` for Server-Sent Events,
//! HTTP publish and stream appends, `tokio-tungstenite` for the WebSocket JSON protocol,
//! the `redis` crate for the RESP side, and a raw socket (small receive buffer) for a
//! browser that stops reading.
//!
//! Each test starts its own server in-process on ephemeral loopback ports. Every wait is
//! bounded: a condition is polled until a deadline, a read is wrapped in a timeout.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::{json, Value as Json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// The bound on any single wait for something the server should do promptly.
const T: Duration = Duration::from_secs(10);

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---------------------------------------------------------------------------------------
// The server.

struct Srv {
    resp: SocketAddr,
    http: SocketAddr,
    stop: CancellationToken,
}

impl Drop for Srv {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A server on 127.0.0.1 with RESP on a free port and HTTP on another (`http-port 0` is
/// off, so a free port is found by binding one and letting it go; taken in between by a
/// parallel test, the bind fails and another is tried).
async fn start(extra: &[(&str, &str)]) -> Srv {
    let mut last = None;
    for _ in 0..20 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let settings = Arc::new(fanout::config::Settings::default());
        settings.set("port", "0").unwrap();
        settings.set("bind", "127.0.0.1").unwrap();
        settings.set("http-port", &port.to_string()).unwrap();
        for (k, v) in extra {
            settings.set(k, v).unwrap_or_else(|e| panic!("{k} {v}: {e:?}"));
        }
        match fanout::server::Server::bind(settings, None).await {
            Ok(server) => {
                let http = server.http_addrs()[0];
                let (addrs, _broker, stop) = server.spawn();
                return Srv {
                    resp: addrs[0],
                    http,
                    stop,
                };
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => panic!("server did not start: {e}"),
        }
    }
    panic!("no free HTTP port found: {last:?}");
}

impl Srv {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.http, path)
    }

    fn client(&self) -> redis::Client {
        redis::Client::open(format!("redis://{}/", self.resp)).unwrap()
    }

    fn client_as(&self, user: &str, password: &str) -> redis::Client {
        redis::Client::open(format!("redis://{user}:{password}@{}/", self.resp)).unwrap()
    }

    /// A RESP2 connection as `default`.
    async fn redis(&self) -> redis::aio::MultiplexedConnection {
        self.client().get_multiplexed_async_connection().await.unwrap()
    }

    /// A RESP3 connection whose pushes (messages, confirmations) go to the receiver.
    async fn redis3(
        &self,
    ) -> (
        redis::aio::MultiplexedConnection,
        tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
    ) {
        let client = redis::Client::open(format!("redis://{}/?protocol=resp3", self.resp)).unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let config = redis::AsyncConnectionConfig::new().set_push_sender(tx);
        let con = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .unwrap();
        (con, rx)
    }

    /// A RESP2 subscriber to `channels`, its messages as a stream.
    async fn subscriber(&self, channels: &[&[u8]]) -> redis::aio::PubSubStream {
        let mut ps = self.client().get_async_pubsub().await.unwrap();
        for c in channels {
            ps.subscribe(*c).await.unwrap();
        }
        ps.into_on_message()
    }

    async fn client_list(&self) -> String {
        let mut con = self.redis().await;
        redis::cmd("CLIENT").arg("LIST").query_async(&mut con).await.unwrap()
    }

    async fn info_stat(&self, name: &str) -> u64 {
        let mut con = self.redis().await;
        let info: String = redis::cmd("INFO").arg("stats").query_async(&mut con).await.unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .unwrap_or_else(|| panic!("INFO stats has no {name}"))
            .trim()
            .parse()
            .unwrap()
    }
}

async fn publish(con: &mut redis::aio::MultiplexedConnection, channel: &[u8], data: &[u8]) -> i64 {
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(data)
        .query_async(con)
        .await
        .unwrap()
}

/// The text of a Redis error reply exactly as the server sent it (`CODE detail`).
fn error_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => panic!("not a server error: {e:?}"),
    }
}

/// The error a RESP client gets for `args`.
async fn resp_error(con: &mut redis::aio::MultiplexedConnection, args: &[&[u8]]) -> String {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query_async::<redis::Value>(con).await {
        Err(e) => error_text(&e),
        Ok(v) => panic!("{args:?} succeeded: {v:?}"),
    }
}

/// Polls `cond` until it holds, failing the test after `limit`.
async fn until<F, Fut>(what: &str, limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if cond().await {
            return;
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The CLIENT LIST line whose `field=` is `value`, if any.
fn client_line(list: &str, field: &str, value: &str) -> Option<String> {
    let want = format!("{field}={value}");
    list.lines()
        .find(|l| l.split(' ').any(|kv| kv == want))
        .map(str::to_string)
}

/// A field of a CLIENT LIST line.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name}= in {line}"))
}

// ---------------------------------------------------------------------------------------
// Server-Sent Events, parsed by hand.

#[derive(Debug, Default, Clone, PartialEq)]
struct Event {
    event: String,
    data: String,
    id: Option<String>,
}

impl Event {
    fn json(&self) -> Json {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("event data is not JSON ({e}): {self:?}"))
    }
}

/// Splits a byte stream into SSE events (blank-line separated blocks of `field: value`
/// lines); comments and blocks without data (`retry:`) are skipped, as a browser does.
#[derive(Default)]
struct SseParser {
    buf: Vec<u8>,
}

impl SseParser {
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    fn next_event(&mut self) -> Option<Event> {
        loop {
            let end = self.buf.windows(2).position(|w| w == b"\n\n")?;
            let block: Vec<u8> = self.buf.drain(..end + 2).collect();
            let text = std::str::from_utf8(&block[..end]).expect("an SSE stream is UTF-8");
            let mut ev = Event::default();
            let mut has_data = false;
            for line in text.split('\n') {
                if line.starts_with(':') {
                    continue;
                }
                let (name, value) = match line.split_once(':') {
                    Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
                    None => (line, ""),
                };
                match name {
                    "event" => ev.event = value.to_string(),
                    "data" => {
                        if has_data {
                            ev.data.push('\n');
                        }
                        ev.data.push_str(value);
                        has_data = true;
                    }
                    "id" => ev.id = Some(value.to_string()),
                    "retry" => assert!(value.parse::<u64>().is_ok(), "bad retry: {line:?}"),
                    other => panic!("unknown SSE field {other:?} in {text:?}"),
                }
            }
            if has_data {
                return Some(ev);
            }
        }
    }
}

type Body = std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// An open SSE response.
struct Sse {
    body: Body,
    parser: SseParser,
    /// How the body ended: Ok for a complete response, Err for a cut connection.
    end: Option<Result<(), String>>,
}

impl Sse {
    /// GETs `url` (with `headers`), which must answer 200 with an event stream.
    async fn open(url: &str, headers: &[(&str, &str)]) -> Sse {
        let mut req = reqwest::Client::new().get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = tokio::time::timeout(T, req.send())
            .await
            .expect("SSE response head")
            .unwrap();
        let status = resp.status();
        if status != 200 {
            panic!("GET {url}: {status} {}", resp.text().await.unwrap_or_default());
        }
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Sse::from(resp)
    }

    fn from(resp: reqwest::Response) -> Sse {
        Sse {
            body: Box::pin(resp.bytes_stream()),
            parser: SseParser::default(),
            end: None,
        }
    }

    /// The next event, or None when the body ended; fails the test after `T`.
    async fn next(&mut self) -> Option<Event> {
        tokio::time::timeout(T, self.next_inner())
            .await
            .expect("no SSE event within the time limit")
    }

    async fn next_inner(&mut self) -> Option<Event> {
        loop {
            if let Some(ev) = self.parser.next_event() {
                return Some(ev);
            }
            if self.end.is_some() {
                return None;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.parser.push(&chunk),
                Some(Err(e)) => self.end = Some(Err(e.to_string())),
                None => self.end = Some(Ok(())),
            }
        }
    }

    /// The next event, which must exist.
    async fn event(&mut self) -> Event {
        match self.next().await {
            Some(ev) => ev,
            None => panic!("the SSE stream ended: {:?}", self.end),
        }
    }

    /// Reads events until the body ends; returns how it ended, or None if it did not
    /// within `limit`.
    async fn end_within(&mut self, limit: Duration) -> Option<Result<(), String>> {
        let run = async {
            while self.next_inner().await.is_some() {}
            self.end.clone().unwrap()
        };
        tokio::time::timeout(limit, run).await.ok()
    }
}

// ---------------------------------------------------------------------------------------
// 1. SSE delivery.

#[tokio::test]
async fn sse_confirms_then_delivers_messages_patterns_binary_and_shard_messages_in_order() {
    let srv = start(&[]).await;
    let mut sse = Sse::open(
        &srv.url("/v1/sse?channel=a&channel=b&channel=%FF%FEc&pattern=n.*&shard=s"),
        &[],
    )
    .await;
    // Confirmations first, with Redis's counts (shard channels are counted apart).
    let confirmations = [
        ("subscribe", json!({"channel": "a", "count": 1})),
        ("subscribe", json!({"channel": "b", "count": 2})),
        ("subscribe", json!({"channel_b64": b64(b"\xff\xfec"), "count": 3})),
        ("psubscribe", json!({"pattern": "n.*", "count": 4})),
        ("ssubscribe", json!({"channel": "s", "count": 1})),
    ];
    for (kind, data) in confirmations {
        let ev = sse.event().await;
        assert_eq!((ev.event.as_str(), ev.json()), (kind, data), "{ev:?}");
    }

    let mut con = srv.redis().await;
    assert_eq!(publish(&mut con, b"a", b"hello").await, 1);
    assert_eq!(publish(&mut con, b"n.1", b"by pattern").await, 1);
    assert_eq!(publish(&mut con, b"b", b"\x00\xffbinary\n").await, 1);
    assert_eq!(publish(&mut con, b"\xff\xfec", b"text").await, 1);
    let n: i64 = redis::cmd("SPUBLISH")
        .arg("s")
        .arg("sharded")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let expected = [
        ("message", json!({"channel": "a", "data": "hello"})),
        (
            "pmessage",
            json!({"channel": "n.1", "pattern": "n.*", "data": "by pattern"}),
        ),
        ("message", json!({"channel": "b", "data_b64": b64(b"\x00\xffbinary\n")})),
        ("message", json!({"channel_b64": b64(b"\xff\xfec"), "data": "text"})),
        ("smessage", json!({"channel": "s", "data": "sharded"})),
    ];
    for (kind, data) in expected {
        let ev = sse.event().await;
        assert_eq!((ev.event.as_str(), ev.json()), (kind, data), "{ev:?}");
        assert_eq!(ev.id, None);
    }

    // 500 messages, pipelined: all of them, in order.
    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.cmd("PUBLISH").arg("a").arg(format!("m{i}")).ignore();
    }
    pipe.exec_async(&mut con).await.unwrap();
    for i in 0..500 {
        let ev = sse.event().await;
        assert_eq!(ev.event, "message");
        assert_eq!(ev.json(), json!({"channel": "a", "data": format!("m{i}")}));
    }
}

#[tokio::test]
async fn sse_without_any_subscription_is_a_400() {
    let srv = start(&[]).await;
    let resp = reqwest::get(srv.url("/v1/sse?other=1")).await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: Json = resp.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().starts_with("ERR "), "{body}");
}

// ---------------------------------------------------------------------------------------
// 2. HTTP publish to RESP subscribers.

#[tokio::test]
async fn http_publish_reaches_resp2_and_resp3_subscribers_and_counts_receivers() {
    let srv = start(&[]).await;
    let channel: &[u8] = b"my ch/1";
    let mut resp2 = srv.subscriber(&[channel, b"sh"]).await;
    let (mut con3, mut pushes) = srv.redis3().await;
    con3.subscribe(channel).await.unwrap();
    redis::cmd("SSUBSCRIBE").arg("sh").exec_async(&mut con3).await.unwrap();

    let http = reqwest::Client::new();
    let payload: &[u8] = b"\x00\x01\xff binary\r\n payload";
    let resp = http
        .post(srv.url("/v1/publish/my%20ch%2F1"))
        .body(payload.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.json::<Json>().await.unwrap(), json!({"receivers": 2}));

    let msg = tokio::time::timeout(T, resp2.next()).await.unwrap().unwrap();
    assert_eq!(msg.get_channel_name().as_bytes(), channel);
    assert_eq!(msg.get_payload_bytes(), payload);
    let push = next_message(&mut pushes).await;
    assert_eq!(push.kind, redis::PushKind::Message);
    assert_eq!(
        push.data,
        vec![
            redis::Value::BulkString(channel.to_vec()),
            redis::Value::BulkString(payload.to_vec())
        ]
    );

    // Nobody listening: 0.
    let resp = http.post(srv.url("/v1/publish/nobody")).body("x").send().await.unwrap();
    assert_eq!(resp.json::<Json>().await.unwrap(), json!({"receivers": 0}));

    // `?shard=1` is SPUBLISH: it reaches the SSUBSCRIBE (RESP3) subscriber of `sh`, not the
    // plain SUBSCRIBE (RESP2) one; without it, the other way round.
    let resp = http
        .post(srv.url("/v1/publish/sh?shard=1"))
        .body("shard")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Json>().await.unwrap(), json!({"receivers": 1}));
    let push = next_message(&mut pushes).await;
    assert_eq!(push.kind, redis::PushKind::SMessage);
    assert_eq!(
        push.data,
        vec![
            redis::Value::BulkString(b"sh".to_vec()),
            redis::Value::BulkString(b"shard".to_vec())
        ]
    );
    let resp = http.post(srv.url("/v1/publish/sh")).body("plain").send().await.unwrap();
    assert_eq!(resp.json::<Json>().await.unwrap(), json!({"receivers": 1}));
    let msg = tokio::time::timeout(T, resp2.next()).await.unwrap().unwrap();
    assert_eq!((msg.get_channel_name(), msg.get_payload_bytes()), ("sh", &b"plain"[..]));
    // The RESP3 subscriber got nothing else.
    assert!(pushes.try_recv().is_err());
}

/// The next message push (confirmations skipped).
async fn next_message(rx: &mut tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>) -> redis::PushInfo {
    loop {
        let push = tokio::time::timeout(T, rx.recv()).await.expect("a push").expect("open");
        if matches!(
            push.kind,
            redis::PushKind::Message | redis::PushKind::PMessage | redis::PushKind::SMessage
        ) {
            return push;
        }
    }
}

// ---------------------------------------------------------------------------------------
// 3. CLIENT LIST.

/// An SSE subscribe that is not a connection's first request is streamed by hyper
/// (chunked) rather than by the connection itself: the same events either way.
#[tokio::test]
async fn sse_on_a_kept_alive_connection_streams_through_hyper() {
    let srv = start(&[]).await;
    let http = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
    let first = http.get(srv.url("/nope")).send().await.unwrap();
    assert_eq!(first.status(), 404);
    first.bytes().await.unwrap();
    let resp = tokio::time::timeout(T, http.get(srv.url("/v1/sse?channel=kept")).send())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["transfer-encoding"], "chunked", "{:?}", resp.headers());
    let mut sse = Sse::from(resp);
    assert_eq!(sse.next().await.unwrap().event, "subscribe");
    let mut con = srv.redis().await;
    assert_eq!(publish(&mut con, b"kept", b"via hyper").await, 1);
    let ev = sse.next().await.unwrap();
    assert_eq!(
        (ev.event.as_str(), ev.json()["data"].as_str()),
        ("message", Some("via hyper"))
    );
}

#[tokio::test]
async fn sse_client_is_listed_with_its_subscriptions_and_removed_when_dropped() {
    let srv = start(&[]).await;
    let mut sse = Sse::open(&srv.url("/v1/sse?channel=x&channel=y&pattern=p*"), &[]).await;
    for _ in 0..3 {
        sse.event().await;
    }
    let list = srv.client_list().await;
    let line = client_line(&list, "name", "sse").unwrap_or_else(|| panic!("no SSE client in {list}"));
    assert_eq!(field(&line, "lib-name"), "fanout-http", "{line}");
    assert_eq!(field(&line, "sub"), "2", "{line}");
    assert_eq!(field(&line, "psub"), "1", "{line}");
    assert!(field(&line, "flags").contains('P'), "{line}");
    // /metrics on the same listener counts it by kind.
    let metrics = reqwest::get(srv.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("fanout_web_clients{kind=\"sse\"} 1"), "{metrics}");

    drop(sse);
    until("the SSE client leaves CLIENT LIST", Duration::from_secs(5), || async {
        client_line(&srv.client_list().await, "name", "sse").is_none()
    })
    .await;
    let mut con = srv.redis().await;
    assert_eq!(publish(&mut con, b"x", b"gone").await, 0);
}

// ---------------------------------------------------------------------------------------
// 4. Authentication and ACL.

#[tokio::test]
async fn acl_refusals_over_http_carry_the_resp_texts() {
    let srv = start(&[]).await;
    let mut admin = srv.redis().await;
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "alice", "on", ">pw", "resetchannels", "&allowed*", "+@all"])
        .query_async(&mut admin)
        .await
        .unwrap();
    let mut alice = srv
        .client_as("alice", "pw")
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let http = reqwest::Client::new();

    // SUBSCRIBE to a channel alice may not use.
    let subscribe_text = resp_error(&mut alice, &[b"SUBSCRIBE", b"denied"]).await;
    assert!(subscribe_text.starts_with("NOPERM "), "{subscribe_text}");
    let resp = http
        .get(srv.url("/v1/sse?channel=denied"))
        .basic_auth("alice", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.json::<Json>().await.unwrap(), json!({"error": subscribe_text}));

    // Allowed channels work with the same credentials.
    let mut ok = Sse::open(
        &srv.url("/v1/sse?channel=allowed1"),
        &[("authorization", &format!("Basic {}", b64(b"alice:pw")))],
    )
    .await;
    assert_eq!(ok.event().await.event, "subscribe");

    // A wrong password: AUTH's text, 401, and a challenge.
    let wrongpass = resp_error(&mut admin, &[b"AUTH", b"alice", b"nope"]).await;
    assert!(wrongpass.starts_with("WRONGPASS "), "{wrongpass}");
    let resp = http
        .get(srv.url("/v1/sse?channel=allowed1"))
        .basic_auth("alice", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(challenge.starts_with("Basic "), "{challenge}");
    assert_eq!(resp.json::<Json>().await.unwrap(), json!({"error": wrongpass}));

    // The same for a publish.
    let resp = http
        .post(srv.url("/v1/publish/allowed1"))
        .basic_auth("alice", Some("nope"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Json>().await.unwrap(), json!({"error": wrongpass}));

    // PUBLISH to a denied channel.
    let publish_text = resp_error(&mut alice, &[b"PUBLISH", b"denied", b"x"]).await;
    assert!(publish_text.starts_with("NOPERM "), "{publish_text}");
    let resp = http
        .post(srv.url("/v1/publish/denied"))
        .basic_auth("alice", Some("pw"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.json::<Json>().await.unwrap(), json!({"error": publish_text}));
    let resp = http
        .post(srv.url("/v1/publish/allowed2"))
        .basic_auth("alice", Some("pw"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // XADD to a key alice has no access to (no key patterns at all).
    let xadd_text = resp_error(&mut alice, &[b"XADD", b"k", b"*", b"f", b"v"]).await;
    assert!(xadd_text.starts_with("NOPERM "), "{xadd_text}");
    let resp = http
        .post(srv.url("/v1/streams/k"))
        .basic_auth("alice", Some("pw"))
        .json(&json!({"f": "v"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.json::<Json>().await.unwrap(), json!({"error": xadd_text}));
}

#[tokio::test]
async fn requirepass_asks_for_credentials_and_accepts_a_bearer_password() {
    let srv = start(&[("requirepass", "s3cret")]).await;
    let mut anon = srv.redis().await;
    let noauth = resp_error(&mut anon, &[b"SUBSCRIBE", b"c"]).await;
    assert!(noauth.starts_with("NOAUTH "), "{noauth}");

    let http = reqwest::Client::new();
    for path in ["/v1/sse?channel=c", "/v1/streams/k/sse"] {
        let resp = http.get(srv.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{path}");
        assert!(resp.headers().contains_key("www-authenticate"), "{path}");
        assert_eq!(resp.json::<Json>().await.unwrap(), json!({"error": noauth}), "{path}");
    }
    let resp = http.post(srv.url("/v1/publish/c")).body("x").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Json>().await.unwrap(), json!({"error": noauth}));

    // A wrong bearer password is AUTH's WRONGPASS.
    let wrongpass = resp_error(&mut anon, &[b"AUTH", b"wrong"]).await;
    let resp = http
        .get(srv.url("/v1/sse?channel=c"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Json>().await.unwrap(), json!({"error": wrongpass}));

    let mut sse = Sse::open(&srv.url("/v1/sse?channel=c"), &[("authorization", "Bearer s3cret")]).await;
    assert_eq!(sse.event().await.json(), json!({"channel": "c", "count": 1}));
    let resp = http
        .post(srv.url("/v1/publish/c"))
        .bearer_auth("s3cret")
        .body("in")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Json>().await.unwrap(), json!({"receivers": 1}));
    assert_eq!(sse.event().await.json(), json!({"channel": "c", "data": "in"}));
}

// ---------------------------------------------------------------------------------------
// 5. Streams: append, replay, follow, resume.

async fn append(srv: &Srv, key: &str, body: &Json) -> String {
    let resp = reqwest::Client::new()
        .post(srv.url(&format!("/v1/streams/{key}")))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let reply: Json = resp.json().await.unwrap();
    reply["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {reply}"))
        .to_string()
}

/// Reads one `entry` event; checks its `id:` line matches its JSON; returns (id, fields).
async fn entry(sse: &mut Sse) -> (String, Json) {
    let ev = sse.event().await;
    assert_eq!(ev.event, "entry", "{ev:?}");
    let data = ev.json();
    let id = data["id"].as_str().unwrap().to_string();
    assert_eq!(ev.id.as_deref(), Some(id.as_str()), "{ev:?}");
    assert_eq!(data.as_object().unwrap().len(), 2, "{data}");
    (id, data["fields"].clone())
}

#[tokio::test]
async fn stream_entries_replay_follow_and_resume_after_last_event_id() {
    let srv = start(&[]).await;
    // Fields keep their order; numbers and booleans become their text.
    let first = append(&srv, "k", &json!({"zeta": "1", "alpha": 2, "mid": true, "f": 1.5})).await;
    let mut con = srv.redis().await;
    let stored: redis::Value = redis::cmd("XRANGE")
        .arg(&["k", "-", "+"])
        .query_async(&mut con)
        .await
        .unwrap();
    let flat = |v: &str| redis::Value::BulkString(v.as_bytes().to_vec());
    assert_eq!(
        stored,
        redis::Value::Array(vec![redis::Value::Array(vec![
            flat(&first),
            redis::Value::Array(
                ["zeta", "1", "alpha", "2", "mid", "true", "f", "1.5"]
                    .map(flat)
                    .to_vec()
            )
        ])])
    );
    let mut ids = vec![first];
    for i in 1..5 {
        ids.push(append(&srv, "k", &json!({"n": i})).await);
    }

    // Replay from 0, then follow.
    let mut sse = Sse::open(&srv.url("/v1/streams/k/sse?from=0"), &[]).await;
    let (id, fields) = entry(&mut sse).await;
    assert_eq!(id, ids[0]);
    assert_eq!(
        fields.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["zeta", "alpha", "mid", "f"],
        "field order"
    );
    assert_eq!(fields, json!({"zeta": "1", "alpha": "2", "mid": "true", "f": "1.5"}));
    for (i, want) in ids.iter().enumerate().skip(1) {
        assert_eq!(entry(&mut sse).await, (want.clone(), json!({"n": i.to_string()})));
    }
    for i in 5..8 {
        let id = append(&srv, "k", &json!({"n": i})).await;
        assert_eq!(entry(&mut sse).await, (id.clone(), json!({"n": i.to_string()})));
        ids.push(id);
    }
    let last_seen = ids.last().unwrap().clone();

    // The connection drops; entries are added meanwhile.
    drop(sse);
    for i in 8..12 {
        ids.push(append(&srv, "k", &json!({"n": i})).await);
    }
    // A browser reconnects to the URL it opened, with the last ID it got: the header wins.
    let mut sse = Sse::open(&srv.url("/v1/streams/k/sse?from=0"), &[("last-event-id", &last_seen)]).await;
    for (i, want) in ids.iter().enumerate().skip(8) {
        assert_eq!(entry(&mut sse).await, (want.clone(), json!({"n": i.to_string()})));
    }
    // Nothing repeated or left over: the next event is the next entry.
    let id = append(&srv, "k", &json!({"n": "next"})).await;
    assert_eq!(entry(&mut sse).await, (id, json!({"n": "next"})));
}

#[tokio::test]
async fn stream_follow_without_from_or_with_dollar_sends_only_new_entries() {
    let srv = start(&[]).await;
    for i in 0..3 {
        append(&srv, "k", &json!({"old": i})).await;
    }
    for path in ["/v1/streams/k/sse", "/v1/streams/k/sse?from=%24"] {
        // The response head means the starting point is fixed.
        let mut sse = Sse::open(&srv.url(path), &[]).await;
        let id = append(&srv, "k", &json!({"new": path})).await;
        assert_eq!(entry(&mut sse).await, (id, json!({"new": path})), "{path}");
    }
    // A stream that does not exist yet: followed from its first entry.
    let mut sse = Sse::open(&srv.url("/v1/streams/fresh/sse"), &[]).await;
    let id = append(&srv, "fresh", &json!({"a": "b"})).await;
    assert_eq!(entry(&mut sse).await, (id, json!({"a": "b"})));
}

#[tokio::test]
async fn stream_follow_with_a_bad_id_is_a_400_with_xreads_text() {
    let srv = start(&[]).await;
    append(&srv, "k", &json!({"a": 1})).await;
    let mut con = srv.redis().await;
    let text = resp_error(&mut con, &[b"XREAD", b"STREAMS", b"k", b"not-an-id"]).await;
    assert!(text.starts_with("ERR "), "{text}");
    let resp = reqwest::get(srv.url("/v1/streams/k/sse?from=not-an-id")).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Json>().await.unwrap(), json!({"error": text}));
    // The same through Last-Event-ID.
    let resp = reqwest::Client::new()
        .get(srv.url("/v1/streams/k/sse"))
        .header("last-event-id", "not-an-id")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Json>().await.unwrap(), json!({"error": text}));
}

// ---------------------------------------------------------------------------------------
// 6. WebSocket.

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn ws_connect(srv: &Srv, auth: Option<&str>) -> Ws {
    let mut req = srv.ws_url("/v1/ws").into_client_request().unwrap();
    if let Some(a) = auth {
        req.headers_mut().insert("authorization", a.parse().unwrap());
    }
    let (ws, resp) = tokio::time::timeout(T, tokio_tungstenite::connect_async(req))
        .await
        .expect("WebSocket handshake")
        .unwrap();
    assert_eq!(resp.status(), 101);
    ws
}

/// The next frame, control frames included.
async fn ws_frame(ws: &mut Ws) -> Message {
    tokio::time::timeout(T, ws.next())
        .await
        .expect("no WebSocket frame within the time limit")
        .expect("the WebSocket ended")
        .expect("WebSocket error")
}

/// The next data frame (keep-alive pings skipped).
async fn ws_data(ws: &mut Ws) -> Message {
    loop {
        match ws_frame(ws).await {
            Message::Ping(_) | Message::Pong(_) => continue,
            m => return m,
        }
    }
}

async fn ws_json(ws: &mut Ws) -> Json {
    match ws_data(ws).await {
        Message::Text(t) => serde_json::from_str(t.as_str()).unwrap_or_else(|e| panic!("{e}: {t}")),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

async fn ws_send(ws: &mut Ws, j: Json) {
    ws.send(Message::text(j.to_string())).await.unwrap();
}

async fn next_payload(sub: &mut redis::aio::PubSubStream) -> Vec<u8> {
    let msg = tokio::time::timeout(T, sub.next())
        .await
        .expect("a message")
        .expect("open");
    msg.get_payload_bytes().to_vec()
}

#[tokio::test]
async fn ws_subscribe_receive_and_publish_as_json() {
    let srv = start(&[]).await;
    let mut ws = ws_connect(&srv, None).await;
    ws_send(&mut ws, json!({"op": "subscribe", "channel": "c"})).await;
    assert_eq!(
        ws_json(&mut ws).await,
        json!({"type": "subscribe", "channel": "c", "count": 1})
    );
    let mut con = srv.redis().await;
    assert_eq!(publish(&mut con, b"c", b"from resp").await, 1);
    assert_eq!(
        ws_json(&mut ws).await,
        json!({"type": "message", "channel": "c", "data": "from resp"})
    );

    let mut sub = srv.subscriber(&[b"r"]).await;
    ws_send(&mut ws, json!({"op": "publish", "channel": "r", "data": "x"})).await;
    assert_eq!(
        ws_json(&mut ws).await,
        json!({"type": "reply", "op": "publish", "result": 1})
    );
    assert_eq!(next_payload(&mut sub).await, b"x");
    ws_send(&mut ws, json!({"op": "publish", "channel": "nobody", "data": "x"})).await;
    assert_eq!(
        ws_json(&mut ws).await,
        json!({"type": "reply", "op": "publish", "result": 0})
    );
}

#[tokio::test]
async fn ws_binary_payloads_travel_raw_both_ways() {
    let srv = start(&[]).await;
    let mut ws = ws_connect(&srv, None).await;
    ws_send(&mut ws, json!({"op": "subscribe", "channel": "c"})).await;
    ws_json(&mut ws).await;

    // RESP → WebSocket: a binary frame, JSON header, newline, the bytes.
    let payload: &[u8] = b"\xff\x00raw\nbytes\xfe";
    let mut con = srv.redis().await;
    assert_eq!(publish(&mut con, b"c", payload).await, 1);
    let Message::Binary(frame) = ws_data(&mut ws).await else {
        panic!("expected a binary frame");
    };
    let nl = frame.iter().position(|&b| b == b'\n').expect("a header line");
    let head: Json = serde_json::from_slice(&frame[..nl]).unwrap();
    assert_eq!(head, json!({"type": "message", "channel": "c"}));
    assert_eq!(&frame[nl + 1..], payload);

    // WebSocket → RESP, as data_b64 and as a binary frame.
    let mut sub = srv.subscriber(&[b"r"]).await;
    ws_send(
        &mut ws,
        json!({"op": "publish", "channel": "r", "data_b64": b64(payload)}),
    )
    .await;
    assert_eq!(
        ws_json(&mut ws).await,
        json!({"type": "reply", "op": "publish", "result": 1})
    );
    assert_eq!(next_payload(&mut sub).await, payload);

    let mut frame = br#"{"op":"publish","channel":"r"}"#.to_vec();
    frame.push(b'\n');
    frame.extend_from_slice(payload);
    ws.send(Message::binary(frame)).await.unwrap();
    assert_eq!(
        ws_json(&mut ws).await,
        json!({"type": "reply", "op": "publish", "result": 1})
    );
    assert_eq!(next_payload(&mut sub).await, payload);

    // Bad base64 is an error, not a publish.
    ws_send(&mut ws, json!({"op": "publish", "channel": "r", "data_b64": "***"})).await;
    let err = ws_json(&mut ws).await;
    assert_eq!(
        (err["type"].as_str(), err["op"].as_str()),
        (Some("error"), Some("publish")),
        "{err}"
    );
}

#[tokio::test]
async fn ws_psubscribe_unsubscribe_and_ping() {
    let srv = start(&[]).await;
    let mut ws = ws_connect(&srv, None).await;
    ws_send(&mut ws, json!({"op": "subscribe", "channels": ["c", "d"]})).await;
    assert_eq!(
        ws_json(&mut ws).await,
        json!({"type": "subscribe", "channel": "c", "count": 1})
    );
    assert_eq!(
        ws_json(&mut ws).await,
        json!({"type": "subscribe", "channel": "d", "count": 2})
    );
    ws_send(&mut ws, json!({"op": "psubscribe", "pattern": "p.*"})).await;
    assert_eq!(
        ws_json(&mut ws).await,
        json!({"type": "psubscribe", "pattern": "p.*", "count": 3})
    );
    let mut con = srv.redis().await;
    assert_eq!(publish(&mut con, b"p.1", b"pat").await, 1);
    assert_eq!(
        ws_json(&mut ws).await,
        json!({"type": "pmessage", "channel": "p.1", "pattern": "p.*", "data": "pat"})
    );

    ws_send(&mut ws, json!({"op": "unsubscribe", "channel": "c"})).await;
    assert_eq!(
        ws_json(&mut ws).await,
        json!({"type": "unsubscribe", "channel": "c", "count": 2})
    );
    assert_eq!(publish(&mut con, b"c", b"not delivered").await, 0);
    ws_send(&mut ws, json!({"op": "punsubscribe"})).await;
    assert_eq!(
        ws_json(&mut ws).await,
        json!({"type": "punsubscribe", "pattern": "p.*", "count": 1})
    );
    assert_eq!(publish(&mut con, b"p.1", b"not delivered").await, 0);

    ws_send(&mut ws, json!({"op": "ping"})).await;
    assert_eq!(ws_json(&mut ws).await, json!({"type": "pong"}));
    // A WebSocket ping frame is answered with a pong frame carrying its payload.
    ws.send(Message::Ping(Bytes::from_static(b"hb-1"))).await.unwrap();
    loop {
        match ws_frame(&mut ws).await {
            Message::Pong(p) => {
                assert_eq!(&p[..], b"hb-1");
                break;
            }
            Message::Ping(_) => continue,
            other => panic!("expected a pong frame, got {other:?}"),
        }
    }
    // Still subscribed to d.
    assert_eq!(publish(&mut con, b"d", b"still").await, 1);
    assert_eq!(
        ws_json(&mut ws).await,
        json!({"type": "message", "channel": "d", "data": "still"})
    );
}

#[tokio::test]
async fn ws_bad_requests_are_error_events_and_the_connection_stays_usable() {
    let srv = start(&[]).await;
    let mut ws = ws_connect(&srv, None).await;
    for bad in ["not json", "[1,2]", r#"{"op":"frobnicate"}"#, r#"{"op":"subscribe"}"#] {
        ws.send(Message::text(bad)).await.unwrap();
        let err = ws_json(&mut ws).await;
        assert_eq!(err["type"], "error", "{bad}: {err}");
        assert!(err["error"].as_str().unwrap().starts_with("ERR "), "{bad}: {err}");
    }
    let mut frame = b"no newline here".to_vec();
    frame.push(b'x');
    ws.send(Message::binary(frame)).await.unwrap();
    assert_eq!(ws_json(&mut ws).await["type"], "error");
    ws_send(&mut ws, json!({"op": "ping"})).await;
    assert_eq!(ws_json(&mut ws).await, json!({"type": "pong"}));
}

#[tokio::test]
async fn ws_acl_denial_is_an_error_event_with_the_noperm_text() {
    let srv = start(&[]).await;
    let mut admin = srv.redis().await;
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "alice", "on", ">pw", "resetchannels", "&allowed*", "+@all"])
        .query_async(&mut admin)
        .await
        .unwrap();
    let mut alice = srv
        .client_as("alice", "pw")
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let text = resp_error(&mut alice, &[b"SUBSCRIBE", b"denied"]).await;
    let publish_text = resp_error(&mut alice, &[b"PUBLISH", b"denied", b"x"]).await;

    let mut ws = ws_connect(&srv, Some(&format!("Basic {}", b64(b"alice:pw")))).await;
    ws_send(&mut ws, json!({"op": "subscribe", "channel": "denied"})).await;
    assert_eq!(
        ws_json(&mut ws).await,
        json!({"type": "error", "op": "subscribe", "error": text})
    );
    ws_send(&mut ws, json!({"op": "publish", "channel": "denied", "data": "x"})).await;
    assert_eq!(
        ws_json(&mut ws).await,
        json!({"type": "error", "op": "publish", "error": publish_text})
    );
    ws_send(&mut ws, json!({"op": "subscribe", "channel": "allowed1"})).await;
    assert_eq!(
        ws_json(&mut ws).await,
        json!({"type": "subscribe", "channel": "allowed1", "count": 1})
    );

    // Wrong credentials: refused before the upgrade.
    let mut req = srv.ws_url("/v1/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Basic {}", b64(b"alice:no")).parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("expected a 401, got {other:?}"),
    }
}

#[tokio::test]
async fn ws_message_over_max_body_size_closes_with_1009() {
    let srv = start(&[("http-max-body-size", "1024")]).await;
    let mut ws = ws_connect(&srv, None).await;
    ws_send(&mut ws, json!({"op": "ping"})).await;
    assert_eq!(ws_json(&mut ws).await, json!({"type": "pong"}));
    let big = json!({"op": "publish", "channel": "c", "data": "x".repeat(2048)});
    ws_send(&mut ws, big).await;
    match ws_data(&mut ws).await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1009, "{frame:?}"),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// 7. A slow SSE client under each overflow policy.

/// Payloads of the flood: a sequence number, then filler.
const PAYLOAD: usize = 4096;
/// Messages published per batch before waiting for the fast client.
const BATCH: u64 = 4;
/// At most 20 MB.
const MAX_MESSAGES: u64 = 20 * 1024 * 1024 / PAYLOAD as u64;

fn payload(seq: u64) -> String {
    let mut p = format!("{seq:08}:");
    p.extend(std::iter::repeat_n(
        (b'a' + (seq % 26) as u8) as char,
        PAYLOAD - p.len(),
    ));
    p
}

/// The sequence number of a flood message's data, checking its filler.
fn seq_of(data: &Json) -> Result<u64, String> {
    let d = data["data"].as_str().ok_or_else(|| format!("no data in {data}"))?;
    let seq: u64 = d
        .get(..8)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no sequence number in {}", &d[..d.len().min(20)]))?;
    if d != payload(seq) {
        return Err(format!("payload of message {seq} is damaged"));
    }
    Ok(seq)
}

/// A reqwest SSE subscriber reading as fast as it can in a task, checking order.
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
    async fn start(srv: &Srv, channel: &str) -> Fast {
        let mut sse = Sse::open(&srv.url(&format!("/v1/sse?channel={channel}")), &[]).await;
        assert_eq!(sse.event().await.event, "subscribe");
        let count = Arc::new(AtomicU64::new(0));
        let error = Arc::new(Mutex::new(None));
        let (c, e) = (count.clone(), error.clone());
        let task = tokio::spawn(async move {
            let mut expected = 0;
            loop {
                let Some(ev) = sse.next_inner().await else {
                    *e.lock().unwrap() = Some(format!("the fast client's stream ended: {:?}", sse.end));
                    return;
                };
                let r = match ev.event.as_str() {
                    // The slow client's end marker.
                    "message" if ev.json()["data"] == "last" => continue,
                    "message" => seq_of(&ev.json()),
                    other => Err(format!("the fast client got {other}: {}", ev.data)),
                };
                match r {
                    Ok(seq) if seq == expected => {
                        expected += 1;
                        c.store(expected, Ordering::SeqCst);
                    }
                    Ok(seq) => {
                        *e.lock().unwrap() = Some(format!("got message {seq}, expected {expected}"));
                        return;
                    }
                    Err(err) => {
                        *e.lock().unwrap() = Some(err);
                        return;
                    }
                }
            }
        });
        Fast { count, error, task }
    }

    fn check(&self) {
        if let Some(e) = self.error.lock().unwrap().clone() {
            panic!("fast SSE client: {e}");
        }
    }

    async fn wait_for(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.count.load(Ordering::SeqCst) < n {
            self.check();
            assert!(
                Instant::now() < deadline,
                "the fast SSE client has {} of {n} messages after 20 s",
                self.count.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        self.check();
    }
}

/// An SSE client on a raw socket with a tiny receive buffer that reads its response head
/// and confirmation, then stops reading until told to.
struct SlowSse {
    s: TcpStream,
    /// Its address as the server sees it (CLIENT LIST `addr=`).
    addr: String,
    raw: Vec<u8>,
    /// Where the body's next bytes (or next chunk) start in `raw`.
    at: usize,
    /// The body is chunked (served by hyper) rather than delimited by the connection's
    /// end (an HTTP/1 SSE stream written by the connection itself).
    chunked: bool,
    /// The body ended with its last chunk.
    done: bool,
    parser: SseParser,
}

impl SlowSse {
    async fn open(srv: &Srv, channel: &str) -> SlowSse {
        use socket2::{Domain, Socket, Type};
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        sock.connect(&srv.http.into()).unwrap();
        sock.set_nonblocking(true).unwrap();
        let mut s = TcpStream::from_std(sock.into()).unwrap();
        let addr = s.local_addr().unwrap().to_string();
        let req = format!(
            "GET /v1/sse?channel={channel} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            srv.http
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut slow = SlowSse {
            s,
            addr,
            raw: Vec::new(),
            at: 0,
            chunked: false,
            done: false,
            parser: SseParser::default(),
        };
        let ev = tokio::time::timeout(T, slow.event()).await.expect("confirmation");
        assert_eq!(ev.map(|e| e.event).as_deref(), Some("subscribe"));
        slow
    }

    /// Moves whole chunks from `raw` to the SSE parser.
    fn dechunk(&mut self) {
        if self.at == 0 {
            let Some(end) = self.raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            let head = String::from_utf8_lossy(&self.raw[..end]).to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            self.chunked = head.contains("transfer-encoding: chunked");
            assert!(self.chunked || head.contains("connection: close"), "{head}");
            self.at = end + 4;
        }
        if !self.chunked {
            let body = self.raw[self.at..].to_vec();
            self.at = self.raw.len();
            self.parser.push(&body);
            return;
        }
        while !self.done {
            let rest = &self.raw[self.at..];
            let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16).expect("a chunk size");
            if rest.len() < eol + 2 + size + 2 {
                return;
            }
            let chunk = rest[eol + 2..eol + 2 + size].to_vec();
            assert_eq!(&rest[eol + 2 + size..eol + 4 + size], b"\r\n");
            self.at += eol + 4 + size;
            self.parser.push(&chunk);
            self.done = size == 0;
        }
    }

    /// The next event, or None when the body or the connection ended (unbounded: the
    /// caller bounds it).
    async fn event(&mut self) -> Option<Event> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            self.dechunk();
            if let Some(ev) = self.parser.next_event() {
                return Some(ev);
            }
            if self.done {
                return None;
            }
            match self.s.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.raw.extend_from_slice(&buf[..n]),
            }
        }
    }
}

/// Publishes the flood: batches of BATCH numbered messages, each batch waited for by the
/// fast client (so only the slow one ever nears a limit).
struct Flood {
    con: redis::aio::MultiplexedConnection,
    next: u64,
}

impl Flood {
    async fn batch(&mut self, fast: &Fast) {
        let mut pipe = redis::pipe();
        for _ in 0..BATCH {
            pipe.cmd("PUBLISH").arg("flood").arg(payload(self.next)).ignore();
            self.next += 1;
        }
        pipe.exec_async(&mut self.con).await.unwrap();
        fast.wait_for(self.next).await;
    }

    /// Floods until `done(slow's CLIENT LIST line)`, at most MAX_MESSAGES.
    async fn until(&mut self, srv: &Srv, fast: &Fast, slow: &SlowSse, mut done: impl FnMut(Option<&str>) -> bool) {
        loop {
            assert!(
                self.next < MAX_MESSAGES,
                "condition not reached after {MAX_MESSAGES} messages of {PAYLOAD} bytes"
            );
            self.batch(fast).await;
            let line = client_line(&srv.client_list().await, "addr", &slow.addr);
            if done(line.as_deref()) {
                return;
            }
        }
    }
}

const SMALL_LIMITS: &str = "pubsub 64kb 32kb 60";

async fn slow_rig(policy: &str) -> (Srv, Fast, SlowSse, Flood) {
    let srv = start(&[
        ("client-output-buffer-limit", SMALL_LIMITS),
        ("pubsub-overflow-policy", policy),
    ])
    .await;
    let fast = Fast::start(&srv, "flood").await;
    let slow = SlowSse::open(&srv, "flood").await;
    let line = client_line(&srv.client_list().await, "addr", &slow.addr).expect("slow client listed");
    assert_eq!(field(&line, "name"), "sse");
    let flood = Flood {
        con: srv.redis().await,
        next: 0,
    };
    (srv, fast, slow, flood)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_sse_client_is_disconnected_under_the_disconnect_policy_and_others_get_everything() {
    let (srv, fast, mut slow, mut flood) = slow_rig("disconnect").await;
    flood.until(&srv, &fast, &slow, |line| line.is_none()).await;
    let at_disconnect = flood.next;
    for _ in 0..4 {
        flood.batch(&fast).await;
    }
    fast.wait_for(flood.next).await;
    eprintln!("slow SSE client disconnected after {at_disconnect} messages");
    assert!(client_line(&srv.client_list().await, "addr", &slow.addr).is_none());
    assert_eq!(srv.info_stat("client_output_buffer_limit_disconnections").await, 1);
    let metrics = reqwest::get(srv.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("fanout_disconnects_total{reason=\"output_buffer\"} 1")),
        "{metrics}"
    );
    // Reading again: what the kernel held, then the end of the stream (no more messages
    // than those before the disconnection).
    let mut last = None;
    let ended = tokio::time::timeout(T, async {
        while let Some(ev) = slow.event().await {
            assert_eq!(ev.event, "message");
            last = Some(seq_of(&ev.json()).unwrap());
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the slow client's stream did not end after its disconnection"
    );
    assert!(last.is_none_or(|l| l < at_disconnect), "{last:?} >= {at_disconnect}");
}

/// Under a drop policy: the slow client stays, its `dropped=` grows, and once it reads
/// again it finds `event: dropped` in band; every message is either received or counted.
async fn slow_sse_client_drops(policy: &str) {
    let (srv, fast, mut slow, mut flood) = slow_rig(policy).await;
    flood
        .until(&srv, &fast, &slow, |line| {
            let line = line.expect("the slow SSE client was disconnected under a drop policy");
            field(line, "dropped").parse::<u64>().unwrap() > 0
        })
        .await;
    // More while over the limit: the count grows, the client stays.
    let before: u64 = field(
        &client_line(&srv.client_list().await, "addr", &slow.addr).unwrap(),
        "dropped",
    )
    .parse()
    .unwrap();
    for _ in 0..4 {
        flood.batch(&fast).await;
    }
    let line = client_line(&srv.client_list().await, "addr", &slow.addr).expect("still listed");
    let after: u64 = field(&line, "dropped").parse().unwrap();
    assert!(after > before, "dropped= did not grow: {before} then {after}");
    assert!(srv.info_stat("pubsub_dropped_messages").await >= after);
    assert_eq!(srv.info_stat("client_output_buffer_limit_disconnections").await, 0);

    let slow_addr = slow.addr.clone();
    // Read again. The slow client reads in a task while one last message is published
    // once its outbox is empty, so that message cannot be dropped.
    let mut reader = tokio::spawn(async move {
        let mut received = Vec::new();
        let mut drops = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(ev) = slow.event().await {
                match ev.event.as_str() {
                    "message" => {
                        let data = ev.json();
                        if data["data"] == "last" {
                            return Ok(());
                        }
                        received.push(seq_of(&data)?);
                    }
                    "dropped" => {
                        let d = ev.json();
                        drops.push((d["dropped"].as_u64().unwrap(), d["total"].as_u64().unwrap()));
                    }
                    other => return Err(format!("unexpected event {other}")),
                }
            }
            Err("the slow client's stream ended".to_string())
        })
        .await;
        // The socket stays open: the client must still be listed afterwards.
        (r, received, drops, slow)
    });
    until("the slow client's output drains", Duration::from_secs(20), || async {
        client_line(&srv.client_list().await, "addr", &slow_addr).is_some_and(|l| field(&l, "omem") == "0")
    })
    .await;
    let n = publish(&mut flood.con, b"flood", b"last").await;
    assert_eq!(n, 2);
    let (r, received, drops, _slow) = tokio::time::timeout(Duration::from_secs(40), &mut reader)
        .await
        .expect("the slow reader finishes")
        .unwrap();
    r.expect("the slow reader timed out")
        .unwrap_or_else(|e| panic!("slow reader: {e}"));
    fast.check();

    let line = client_line(&srv.client_list().await, "addr", &slow_addr).expect("still listed");
    let total: u64 = field(&line, "dropped").parse().unwrap();
    eprintln!(
        "{policy}: published {}, slow received {}, dropped {total}, drop events {drops:?}",
        flood.next,
        received.len()
    );
    assert!(!drops.is_empty(), "no `event: dropped` in the slow client's stream");
    assert!(drops.iter().all(|&(d, _)| d > 0), "{drops:?}");
    assert_eq!(drops.iter().map(|&(d, _)| d).sum::<u64>(), total, "{drops:?}");
    assert_eq!(drops.last().unwrap().1, total, "{drops:?}");
    assert_eq!(
        received.len() as u64 + total,
        flood.next,
        "received + dropped = published"
    );
    assert!(received.windows(2).all(|w| w[0] < w[1]), "out of order: {received:?}");
    match policy {
        // The oldest were kept: the first message arrived, later ones are missing.
        "drop-newest" => assert_eq!(received.first(), Some(&0)),
        // The newest were kept: the very last of the flood arrived.
        _ => assert_eq!(received.last(), Some(&(flood.next - 1))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_sse_client_stays_and_sees_dropped_events_under_drop_oldest() {
    slow_sse_client_drops("drop-oldest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_sse_client_stays_and_sees_dropped_events_under_drop_newest() {
    slow_sse_client_drops("drop-newest").await;
}

// ---------------------------------------------------------------------------------------
// 8. CORS.

async fn preflight(srv: &Srv, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, srv.url("/v1/publish/c"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_preflight_allows_only_the_configured_origins() {
    let srv = start(&[("http-cors-origins", "https://app.example")]).await;
    let resp = preflight(&srv, "https://app.example").await;
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://app.example");
    let methods = resp.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(methods.contains("POST"), "{methods}");
    let resp = preflight(&srv, "https://evil.example").await;
    assert!(!resp.headers().contains_key("access-control-allow-origin"));
    // A simple request from the allowed origin is answered with the header too.
    let resp = reqwest::Client::new()
        .post(srv.url("/v1/publish/c"))
        .header("origin", "https://app.example")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://app.example");

    let plain = start(&[]).await;
    let resp = preflight(&plain, "https://app.example").await;
    assert!(!resp.headers().contains_key("access-control-allow-origin"));
}

// ---------------------------------------------------------------------------------------
// 9. Request limits and errors.

#[tokio::test]
async fn bodies_over_the_limit_are_413_and_bad_requests_are_json_errors() {
    let srv = start(&[("http-max-body-size", "1024")]).await;
    let http = reqwest::Client::new();
    let resp = http
        .post(srv.url("/v1/publish/c"))
        .body(vec![b'x'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http
        .post(srv.url("/v1/publish/c"))
        .body(vec![b'x'; 1025])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: Json = resp.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().starts_with("ERR "), "{body}");
    // The same for a stream append.
    let resp = http
        .post(srv.url("/v1/streams/k"))
        .json(&json!({"f": "y".repeat(2000)}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    let resp = http.get(srv.url("/nope")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Json = resp.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().starts_with("ERR "), "{body}");

    for bad in ["[1,2]", "\"text\"", "{}", "not json", r#"{"nested": {"a": 1}}"#] {
        let resp = http
            .post(srv.url("/v1/streams/k"))
            .header("content-type", "application/json")
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
        let body: Json = resp.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().starts_with("ERR "), "{bad}: {body}");
    }
    // Nothing was added by the refused requests.
    let mut con = srv.redis().await;
    let exists: i64 = redis::cmd("EXISTS").arg("k").query_async(&mut con).await.unwrap();
    assert_eq!(exists, 0);
}

// ---------------------------------------------------------------------------------------
// 10. Shutdown.

#[tokio::test]
async fn shutdown_command_ends_open_sse_streams() {
    let srv = start(&[]).await;
    let mut sse = Sse::open(&srv.url("/v1/sse?channel=c"), &[]).await;
    sse.event().await;
    let mut follow = Sse::open(&srv.url("/v1/streams/k/sse"), &[]).await;
    let mut ws = ws_connect(&srv, None).await;
    let mut con = srv.redis().await;
    // SHUTDOWN closes the connection without a reply.
    let _ = redis::cmd("SHUTDOWN")
        .arg("NOSAVE")
        .query_async::<redis::Value>(&mut con)
        .await;
    let end = sse.end_within(Duration::from_secs(3)).await;
    assert_eq!(end, Some(Ok(())), "the SSE stream did not complete");
    let end = follow.end_within(Duration::from_secs(3)).await;
    assert_eq!(end, Some(Ok(())), "the stream follower did not complete");
    // A WebSocket is told why it closes: 1001, going away.
    match ws_data(&mut ws).await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001, "{frame:?}"),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn stopping_the_server_ends_open_sse_streams() {
    let srv = start(&[]).await;
    let mut sse = Sse::open(&srv.url("/v1/sse?channel=c"), &[]).await;
    sse.event().await;
    let mut follow = Sse::open(&srv.url("/v1/streams/k/sse"), &[]).await;
    srv.stop.cancel();
    let end = sse.end_within(Duration::from_secs(3)).await;
    assert_eq!(end, Some(Ok(())), "the SSE stream did not complete");
    let end = follow.end_within(Duration::from_secs(3)).await;
    assert_eq!(end, Some(Ok(())), "the stream follower did not complete");
}

/// `http-sse-keepalive`: an idle SSE stream gets a keep-alive comment, and an idle
/// WebSocket a ping frame, every interval (what keeps proxies from closing them).
#[tokio::test]
async fn idle_streams_get_keep_alives() {
    let srv = start(&[("http-sse-keepalive", "1")]).await;
    let mut s = TcpStream::connect(srv.http).await.unwrap();
    s.write_all(b"GET /v1/sse?channel=quiet HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&raw).contains("\n: keep-alive\n\n") {
        assert!(
            Instant::now() < deadline,
            "no keep-alive comment in {:?}",
            String::from_utf8_lossy(&raw)
        );
        let n = tokio::time::timeout(T, s.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "the SSE stream ended");
        raw.extend_from_slice(&buf[..n]);
    }

    let mut ws = ws_connect(&srv, None).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "no ping frame on an idle WebSocket");
        if let Message::Ping(_) = ws_frame(&mut ws).await {
            break;
        }
    }
}
