//! Prometheus metrics end to end: a server started in-process with `metrics-addr
//! 127.0.0.1:0`, scraped over HTTP with a raw socket, before and after traffic made with
//! the `redis` crate.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

struct TestServer {
    addr: SocketAddr,
    metrics: SocketAddr,
    stop: CancellationToken,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn start(extra: &[(&str, &str)]) -> TestServer {
    let settings = Arc::new(fanout::config::Settings::default());
    settings.set("port", "0").unwrap();
    settings.set("bind", "127.0.0.1").unwrap();
    settings.set("metrics-addr", "127.0.0.1:0").unwrap();
    for (k, v) in extra {
        settings.set(k, v).unwrap();
    }
    let server = fanout::server::Server::bind(settings, None).await.unwrap();
    let metrics = server.metrics_addr().expect("metrics are on");
    let (addrs, _broker, stop) = server.spawn();
    TestServer {
        addr: addrs[0],
        metrics,
        stop,
    }
}

struct Response {
    status: u16,
    headers: String,
    body: String,
}

/// One HTTP exchange over a raw socket: sends `request` (with `Connection: close` after
/// its request line, so HTTP/1.1's keep-alive does not hold the socket open), reads until
/// the server closes.
async fn http(addr: SocketAddr, request: &[u8]) -> Response {
    let line_end = request
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(request.len(), |i| i + 2);
    let mut request_bytes = request[..line_end].to_vec();
    request_bytes.extend_from_slice(b"Connection: close\r\n");
    request_bytes.extend_from_slice(&request[line_end..]);
    let run = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&request_bytes).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the metrics server answers and closes within 10s");
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a full response head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    Response {
        status,
        headers: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

/// Scrapes `/metrics` and returns every sample as `name{labels}` -> value.
async fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let r = http(addr, b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.headers.contains("content-type: text/plain; version=0.0.4"),
        "{}",
        r.headers
    );
    assert!(
        r.headers.contains(&format!("content-length: {}", r.body.len())),
        "{}",
        r.headers
    );
    samples(&r.body)
}

fn samples(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {l:?}"));
            (k.to_string(), v.parse().unwrap_or_else(|_| panic!("bad value {l:?}")))
        })
        .collect()
}

fn value(m: &HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("no sample {key} among {:?}", m.keys()))
}

/// Scrapes until `check` holds, for up to five seconds (for effects that land a moment
/// after the command that caused them, such as a connection's task finishing).
async fn scrape_until(
    addr: SocketAddr,
    what: &str,
    check: impl Fn(&HashMap<String, f64>) -> bool,
) -> HashMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = scrape(addr).await;
        if check(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn traffic_moves_the_metrics() {
    let srv = start(&[]).await;
    let before = scrape(srv.metrics).await;
    for key in [
        "fanout_connected_clients",
        "fanout_messages_published_total",
        "fanout_messages_delivered_total",
        "fanout_messages_dropped_total",
        "fanout_subscriptions{kind=\"channel\"}",
        "fanout_subscriptions{kind=\"pattern\"}",
        "fanout_subscriptions{kind=\"shard\"}",
        "fanout_channels",
        "fanout_shard_channels",
        "fanout_patterns",
        "fanout_output_buffer_bytes",
        "fanout_disconnects_total{reason=\"killed\"}",
        "fanout_command_calls_total{command=\"publish\"}",
    ] {
        assert_eq!(value(&before, key), 0.0, "{key} before any traffic");
    }
    assert!(value(&before, "fanout_uptime_seconds") >= 0.0);
    assert_eq!(
        value(
            &before,
            &format!(
                "fanout_build_info{{version=\"{}\",redis_version=\"{}\"}}",
                env!("CARGO_PKG_VERSION"),
                fanout::REDIS_VERSION
            )
        ),
        1.0
    );

    let client = redis::Client::open(format!("redis://{}/", srv.addr)).unwrap();
    let mut sub = client.get_async_pubsub().await.unwrap();
    sub.subscribe("news").await.unwrap();
    sub.psubscribe("n*").await.unwrap();
    let mut publisher = client.get_multiplexed_async_connection().await.unwrap();
    for i in 0..3 {
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg("news")
            .arg(format!("hello {i}"))
            .query_async(&mut publisher)
            .await
            .unwrap();
        assert_eq!(receivers, 2);
    }
    let _: i64 = redis::cmd("PUBLISH")
        .arg("elsewhere")
        .arg("x")
        .query_async(&mut publisher)
        .await
        .unwrap();
    {
        let mut messages = sub.on_message();
        for _ in 0..6 {
            tokio::time::timeout(Duration::from_secs(5), messages.next())
                .await
                .expect("each message arrives")
                .expect("the stream stays open");
        }
    }

    let after = scrape(srv.metrics).await;
    assert_eq!(value(&after, "fanout_connected_clients"), 2.0);
    assert_eq!(value(&after, "fanout_pubsub_clients"), 1.0);
    assert_eq!(value(&after, "fanout_messages_published_total"), 4.0);
    assert_eq!(value(&after, "fanout_messages_delivered_total"), 6.0);
    assert_eq!(value(&after, "fanout_subscriptions{kind=\"channel\"}"), 1.0);
    assert_eq!(value(&after, "fanout_subscriptions{kind=\"pattern\"}"), 1.0);
    assert_eq!(value(&after, "fanout_subscriptions{kind=\"shard\"}"), 0.0);
    assert_eq!(value(&after, "fanout_channels"), 1.0);
    assert_eq!(value(&after, "fanout_patterns"), 1.0);
    assert_eq!(value(&after, "fanout_command_calls_total{command=\"publish\"}"), 4.0);
    assert_eq!(value(&after, "fanout_command_calls_total{command=\"subscribe\"}"), 1.0);
    assert_eq!(value(&after, "fanout_command_calls_total{command=\"psubscribe\"}"), 1.0);
    for key in [
        "fanout_commands_processed_total",
        "fanout_connections_received_total",
        "fanout_net_input_bytes_total",
        "fanout_net_output_bytes_total",
    ] {
        assert!(
            value(&after, key) > value(&before, key),
            "{key} did not move: {} -> {}",
            value(&before, key),
            value(&after, key)
        );
    }

    // CLIENT KILL closes the subscriber and is counted as such.
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut publisher)
        .await
        .unwrap();
    assert_eq!(killed, 1);
    let m = scrape_until(srv.metrics, "the killed subscriber to go", |m| {
        value(m, "fanout_connected_clients") == 1.0 && value(m, "fanout_channels") == 0.0
    })
    .await;
    assert_eq!(value(&m, "fanout_disconnects_total{reason=\"killed\"}"), 1.0);
    assert_eq!(value(&m, "fanout_subscriptions{kind=\"channel\"}"), 0.0);
    assert_eq!(value(&m, "fanout_patterns"), 0.0);

    // CONFIG RESETSTAT zeroes counters, per-command ones included, but not gauges.
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut publisher)
        .await
        .unwrap();
    let m = scrape(srv.metrics).await;
    assert_eq!(value(&m, "fanout_messages_published_total"), 0.0);
    assert_eq!(value(&m, "fanout_command_calls_total{command=\"publish\"}"), 0.0);
    assert_eq!(value(&m, "fanout_disconnects_total{reason=\"killed\"}"), 0.0);
    assert_eq!(value(&m, "fanout_connected_clients"), 1.0);
}

#[tokio::test]
async fn shard_channels_auth_failures_and_rejections() {
    let srv = start(&[("requirepass", "secret"), ("maxclients", "2")]).await;
    // The redis crate's pubsub helper has no SSUBSCRIBE: a raw connection does it.
    let mut raw = TcpStream::connect(srv.addr).await.unwrap();
    raw.write_all(b"AUTH wrong\r\nAUTH secret\r\nSSUBSCRIBE orders:{1}\r\n")
        .await
        .unwrap();
    let _idle = TcpStream::connect(srv.addr).await.unwrap();
    let m = scrape_until(srv.metrics, "the shard subscription", |m| {
        value(m, "fanout_shard_channels") == 1.0
    })
    .await;
    assert_eq!(value(&m, "fanout_subscriptions{kind=\"shard\"}"), 1.0);
    assert_eq!(value(&m, "fanout_auth_failures_total"), 1.0);
    scrape_until(srv.metrics, "both clients to be registered", |m| {
        value(m, "fanout_connected_clients") == 2.0
    })
    .await;

    // maxclients 2: a third connection is refused.
    let mut third = TcpStream::connect(srv.addr).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&reply).contains("max number of clients"));
    let m = scrape(srv.metrics).await;
    assert_eq!(value(&m, "fanout_rejected_connections_total"), 1.0);
}

#[tokio::test]
async fn idle_timeout_is_counted() {
    let srv = start(&[("timeout", "1")]).await;
    let mut idle = TcpStream::connect(srv.addr).await.unwrap();
    idle.write_all(b"PING\r\n").await.unwrap();
    let m = scrape_until(srv.metrics, "the idle client to be closed", |m| {
        value(m, "fanout_disconnects_total{reason=\"timeout\"}") == 1.0
    })
    .await;
    assert_eq!(value(&m, "fanout_connected_clients"), 0.0);
}

#[tokio::test]
async fn http_edges() {
    let srv = start(&[]).await;
    let r = http(srv.metrics, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(r.status, 404);
    let r = http(srv.metrics, b"GET /metricsx HTTP/1.1\r\n\r\n").await;
    assert_eq!(r.status, 404);
    let r = http(srv.metrics, b"POST /metrics HTTP/1.1\r\n\r\n").await;
    assert_eq!(r.status, 405);
    assert!(r.headers.contains("allow: get,head") || r.headers.contains("allow: get, head"));
    let r = http(srv.metrics, b"hello\r\n\r\n").await;
    assert_eq!(r.status, 400);
    let r = http(srv.metrics, b"HEAD /metrics HTTP/1.0\r\n\r\n").await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());

    // A query string is ignored; OpenMetrics when asked for, as Prometheus does.
    let r = http(
        srv.metrics,
        b"GET /metrics?x=1 HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r
        .headers
        .contains("content-type: application/openmetrics-text; version=1.0.0"));
    assert!(r.body.ends_with("# EOF\n"), "{}", r.body);
    assert!(r.body.contains("fanout_messages_published_total 0"));

    // An oversized request head is refused, not buffered.
    let mut big = b"GET /metrics HTTP/1.1\r\n".to_vec();
    while big.len() < 72 * 1024 {
        big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let r = http(srv.metrics, &big).await;
    assert_eq!(r.status, 431);

    // A client that connects and says nothing does not hold up the next scrape.
    let _silent = TcpStream::connect(srv.metrics).await.unwrap();
    let m = scrape(srv.metrics).await;
    assert!(m.contains_key("fanout_uptime_seconds"));
}

#[tokio::test]
async fn off_by_default_and_stops_with_the_server() {
    let settings = Arc::new(fanout::config::Settings::default());
    assert_eq!(settings.get("metrics-addr").unwrap(), "");
    settings.set("port", "0").unwrap();
    let server = fanout::server::Server::bind(settings, None).await.unwrap();
    assert_eq!(server.metrics_addr(), None);
    drop(server);

    let srv = start(&[]).await;
    scrape(srv.metrics).await;
    srv.stop.cancel();
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(srv.metrics).await.is_ok() {
        assert!(Instant::now() < deadline, "metrics still served after shutdown");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_addr_directive() {
    let s = fanout::config::Settings::default();
    for ok in ["", "127.0.0.1:9121", "[::1]:9121", "localhost:9121", "0.0.0.0:0"] {
        s.set("metrics-addr", ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(s.get("metrics-addr").unwrap(), ok);
    }
    for bad in ["9121", "localhost", "host:port", ":9121", "::1:9121", "a b:1"] {
        assert!(s.set("metrics-addr", bad).is_err(), "{bad} accepted");
    }
    let d = fanout::config::directive("metrics-addr").unwrap();
    assert!(!d.mutable);
    assert_eq!(d.default, "");

    // Not changeable at runtime.
    let srv = start(&[]).await;
    let client = redis::Client::open(format!("redis://{}/", srv.addr)).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let err = redis::cmd("CONFIG")
        .arg("SET")
        .arg("metrics-addr")
        .arg("127.0.0.1:1")
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("immutable"), "{err}");
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("metrics-addr")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(v, vec!["metrics-addr".to_string(), "127.0.0.1:0".to_string()]);

    // An address that cannot be bound fails start-up with a clear message.
    let taken = srv.metrics.to_string();
    let settings = Arc::new(fanout::config::Settings::default());
    settings.set("port", "0").unwrap();
    settings.set("metrics-addr", &taken).unwrap();
    let err = fanout::server::Server::bind(settings, None)
        .await
        .err()
        .expect("the metrics port is taken");
    assert!(err.to_string().contains("metrics-addr"), "{err}");
}

#[tokio::test]
async fn the_append_only_file_has_its_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let s = start(&[("appendonly", "yes"), ("dir", &d)]).await;
    let m = scrape(s.metrics).await;
    assert_eq!(m["fanout_aof_enabled"], 1.0);
    assert_eq!(m["fanout_aof_last_write_ok"], 1.0);
    assert_eq!(m["fanout_aof_rewrite_in_progress"], 0.0);
    assert_eq!(m["fanout_aof_rewrites_total"], 0.0);
    assert_eq!(m["fanout_aof_write_errors_total"], 0.0);
    let before = m["fanout_aof_current_size_bytes"];
    let client = redis::Client::open(format!("redis://{}/", s.addr)).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let _: String = redis::cmd("XADD")
        .arg("k")
        .arg("*")
        .arg("f")
        .arg("v")
        .query_async(&mut con)
        .await
        .unwrap();
    let m = scrape(s.metrics).await;
    assert!(m["fanout_aof_current_size_bytes"] > before, "the XADD is in the file");
}
