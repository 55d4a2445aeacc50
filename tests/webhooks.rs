//! WEBHOOK end to end: an in-process server, a `redis` client, and a real HTTP receiver
//! (axum on an ephemeral loopback port) that records what it is sent and answers as each
//! test tells it (fail the first attempts, sleep past the timeout, hang, always fail).
//! Every wait is bounded.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::short::{e, q, show};
use common::{start_server_with, TestServer, WAIT};
use hmac::{Hmac, Mac};
use redis::Value as V;
use sha2::Sha256;
use tokio::sync::mpsc;

type Con = redis::aio::MultiplexedConnection;

/// How the receiver answers request number `n` (from 0).
#[derive(Clone, Copy)]
enum Behave {
    Ok,
    /// 500 for the first `k` requests, then 200.
    FailFirst(usize),
    /// Sleeps this long before answering the first request; 200 for all.
    SlowFirst(Duration),
    /// This status, always.
    Always(u16),
    /// Never answers.
    Hang,
}

/// One request as the receiver saw it.
#[derive(Debug)]
struct Got {
    headers: HeaderMap,
    body: Bytes,
}

struct Receiver {
    url: String,
    rx: mpsc::UnboundedReceiver<Got>,
    hits: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct Rx {
    behave: Behave,
    hits: Arc<AtomicUsize>,
    tx: mpsc::UnboundedSender<Got>,
}

async fn handle(State(st): State<Rx>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let n = st.hits.fetch_add(1, SeqCst);
    let _ = st.tx.send(Got { headers, body });
    match st.behave {
        Behave::Ok => StatusCode::OK,
        Behave::FailFirst(k) if n < k => StatusCode::INTERNAL_SERVER_ERROR,
        Behave::FailFirst(_) => StatusCode::NO_CONTENT,
        Behave::SlowFirst(d) => {
            if n == 0 {
                tokio::time::sleep(d).await;
            }
            StatusCode::OK
        }
        Behave::Always(code) => StatusCode::from_u16(code).unwrap(),
        Behave::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK
        }
    }
}

async fn receiver(behave: Behave) -> Receiver {
    let (tx, rx) = mpsc::unbounded_channel();
    let hits = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(handle))
        .with_state(Rx {
            behave,
            hits: hits.clone(),
            tx,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver {
        url: format!("http://{addr}/hook"),
        rx,
        hits,
    }
}

impl Receiver {
    async fn next(&mut self) -> Got {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("no request reached the receiver in time")
            .expect("receiver gone")
    }

    /// Nothing more arrives for `quiet`.
    async fn silent(&mut self, quiet: Duration) {
        if let Ok(Some(g)) = tokio::time::timeout(quiet, self.rx.recv()).await {
            panic!("unexpected request: {g:?}");
        }
    }
}

fn header<'a>(g: &'a Got, name: &str) -> &'a str {
    g.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

fn text(v: &V) -> String {
    match v {
        V::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        V::Int(n) => n.to_string(),
        V::SimpleString(s) => s.clone(),
        other => show(other),
    }
}

/// WEBHOOK INFO as field -> value (RESP2's flat array or RESP3's map).
async fn info(con: &mut Con, name: &str) -> HashMap<String, String> {
    match q(con, &["WEBHOOK", "INFO", name]).await {
        V::Array(items) => items.chunks(2).map(|kv| (text(&kv[0]), text(&kv[1]))).collect(),
        V::Map(pairs) => pairs.iter().map(|(k, v)| (text(k), text(v))).collect(),
        other => panic!("WEBHOOK INFO: {other:?}"),
    }
}

/// Polls WEBHOOK INFO until `check` holds, for at most `limit`.
async fn wait_info(
    con: &mut Con,
    name: &str,
    limit: Duration,
    what: &str,
    check: impl Fn(&HashMap<String, String>) -> bool,
) -> HashMap<String, String> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let i = info(con, name).await;
        if check(&i) {
            return i;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {i:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn num(i: &HashMap<String, String>, k: &str) -> i64 {
    i.get(k).unwrap_or_else(|| panic!("no {k} in {i:?}")).parse().unwrap()
}

async fn server() -> (TestServer, Con) {
    let s = start_server_with(&[]).await;
    let con = s.conn(false).await;
    (s, con)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_with_headers_signature_pattern_and_binary_payloads() {
    let (s, mut con) = server().await;
    let mut r = receiver(Behave::Ok).await;
    q(&mut con, &["WEBHOOK", "ADD", "h", &r.url, "news.*", "SECRET", "s3cret"]).await;
    q(&mut con, &["PUBLISH", "other", "not for the hook"]).await;
    q(&mut con, &["PUBLISH", "news.tech", "hello"]).await;
    let g = r.next().await;
    assert_eq!(&g.body[..], b"hello");
    assert_eq!(header(&g, "content-type"), "application/octet-stream");
    assert_eq!(header(&g, "x-fanout-channel"), "news.tech");
    assert_eq!(header(&g, "x-fanout-pattern"), "news.*");
    assert_eq!(header(&g, "x-fanout-webhook"), "h");
    assert_eq!(header(&g, "x-fanout-attempt"), "1");
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(b"hello");
    let want: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(header(&g, "x-fanout-signature"), format!("sha256={want}"));

    // Any bytes: the body as published, the channel percent-encoded in its header.
    let payload: Vec<u8> = (0..=255u8).collect();
    let channel: &[u8] = b"news.\xff\x00 b%";
    q(&mut con, &[b"PUBLISH".as_slice(), channel, &payload]).await;
    let g = r.next().await;
    assert_eq!(&g.body[..], &payload[..]);
    assert_eq!(header(&g, "x-fanout-channel"), "news.%FF%00%20b%25");
    r.silent(Duration::from_millis(200)).await;

    let i = wait_info(&mut con, "h", WAIT, "2 delivered", |i| num(i, "delivered") == 2).await;
    assert_eq!(i["state"], "active");
    assert_eq!(i["has-secret"], "1");
    assert_eq!(i["last-status"], "200");
    assert!(num(&i, "last-delivery-ms-ago") >= 0);
    assert_eq!(num(&i, "retried"), 0);
    assert!(!i.values().any(|v| v.contains("s3cret")), "the secret is never shown");
    let stats = text(&q(&mut con, &["INFO", "stats"]).await);
    assert!(stats.contains("webhooks:1\r\n"), "{stats}");
    assert!(stats.contains("webhook_deliveries:2\r\n"), "{stats}");
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_after_500s_then_delivers_once() {
    let (_s, mut con) = server().await;
    let mut r = receiver(Behave::FailFirst(2)).await;
    q(&mut con, &["WEBHOOK", "ADD", "h", &r.url, "jobs"]).await;
    q(&mut con, &["PUBLISH", "jobs", "j1"]).await;
    for attempt in 1..=3 {
        let g = r.next().await;
        assert_eq!(header(&g, "x-fanout-attempt"), attempt.to_string());
        assert_eq!(&g.body[..], b"j1");
    }
    let i = wait_info(&mut con, "h", WAIT, "delivered", |i| num(i, "delivered") == 1).await;
    assert_eq!((num(&i, "retried"), num(&i, "failed"), num(&i, "in-flight")), (2, 0, 0));
    assert_eq!(i["last-error"], "HTTP status 500");
    r.silent(Duration::from_millis(200)).await;
    assert_eq!(r.hits.load(SeqCst), 3);
    // The same figures as Prometheus metrics, labelled by webhook.
    let m = fanout::metrics::render(&fanout::metrics::registry(_s.broker.clone()), false);
    assert!(m.contains("fanout_webhook_delivered_total{webhook=\"h\"} 1"), "{m}");
    assert!(m.contains("fanout_webhook_retried_total{webhook=\"h\"} 2"), "{m}");
    assert!(m.contains("fanout_webhook_queued_bytes{webhook=\"h\"} 0"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyspace_notifications_reach_a_webhook() {
    let (_s, mut con) = server().await;
    let mut r = receiver(Behave::Ok).await;
    q(&mut con, &["CONFIG", "SET", "notify-keyspace-events", "Et"]).await;
    q(&mut con, &["WEBHOOK", "ADD", "ev", &r.url, "__keyevent@0__:*"]).await;
    q(&mut con, &["XADD", "orders", "*", "f", "v"]).await;
    let g = r.next().await;
    assert_eq!(header(&g, "x-fanout-channel"), "__keyevent@0__:xadd");
    assert_eq!(&g.body[..], b"orders");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_is_retried() {
    let (_s, mut con) = server().await;
    let mut r = receiver(Behave::SlowFirst(Duration::from_secs(2))).await;
    q(&mut con, &["WEBHOOK", "ADD", "h", &r.url, "*", "TIMEOUT", "200"]).await;
    q(&mut con, &["PUBLISH", "c", "m"]).await;
    r.next().await;
    let g = r.next().await;
    assert_eq!(header(&g, "x-fanout-attempt"), "2");
    let i = wait_info(&mut con, "h", WAIT, "delivered", |i| num(i, "delivered") == 1).await;
    assert_eq!(num(&i, "retried"), 1);
    assert!(i["last-error"].starts_with("timeout after 200 ms"), "{i:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_after_retries_are_exhausted() {
    let (_s, mut con) = server().await;
    let r = receiver(Behave::Always(503)).await;
    q(&mut con, &["WEBHOOK", "ADD", "h", &r.url, "jobs.*", "RETRIES", "2"]).await;
    // A reader blocked on the dead-letter stream is served as by a client's XADD.
    let mut reader = _s.conn(false).await;
    let blocked = tokio::spawn(async move {
        q(
            &mut reader,
            &["XREAD", "BLOCK", "4000", "STREAMS", "webhook:h:dead", "$"],
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    q(&mut con, &["PUBLISH", "jobs.1", "payload-x"]).await;
    let i = wait_info(&mut con, "h", WAIT, "dead-lettered", |i| num(i, "dead-lettered") == 1).await;
    assert_eq!((num(&i, "failed"), num(&i, "retried"), num(&i, "delivered")), (1, 2, 0));
    assert_eq!(i["last-status"], "503");
    assert_eq!(r.hits.load(SeqCst), 3);
    let entries = q(&mut con, &["XRANGE", "webhook:h:dead", "-", "+"]).await;
    let V::Array(entries) = entries else {
        panic!("{entries:?}")
    };
    assert_eq!(entries.len(), 1);
    let V::Array(entry) = &entries[0] else { panic!() };
    let V::Array(fields) = &entry[1] else { panic!() };
    let fields: Vec<String> = fields.iter().map(text).collect();
    assert_eq!(
        fields,
        [
            "webhook",
            "h",
            "channel",
            "jobs.1",
            "payload",
            "payload-x",
            "error",
            "HTTP status 503",
            "attempts",
            "3",
            "status",
            "503"
        ]
    );
    let got = tokio::time::timeout(WAIT, blocked).await.unwrap().unwrap();
    assert!(show(&got).contains("payload-x"), "{}", show(&got));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_info_del_and_errors() {
    let s = start_server_with(&[("pubsub-overflow-policy", "drop-newest")]).await;
    let mut con = s.conn(false).await;
    let url = "http://127.0.0.1:9/never";
    q(&mut con, &["WEBHOOK", "ADD", "b", url, "x"]).await;
    q(
        &mut con,
        &[
            "WEBHOOK",
            "ADD",
            "a",
            url,
            "y",
            "POLICY",
            "drop-oldest",
            "MAXQUEUE",
            "1mb",
        ],
    )
    .await;
    assert_eq!(show(&q(&mut con, &["WEBHOOK", "LIST"]).await), r#"["a","b"]"#);
    let i = info(&mut con, "b").await;
    assert_eq!(i.len(), 21);
    assert_eq!(i["name"], "b");
    assert_eq!(i["url"], url);
    assert_eq!(i["pattern"], "x");
    assert_eq!(i["policy"], "drop-newest", "the server's policy at ADD time");
    assert_eq!(i["retries"], "5");
    assert_eq!(i["timeout"], "5000");
    assert_eq!(i["maxqueue"], (8 * 1024 * 1024).to_string());
    assert_eq!(i["deadletter"], "webhook:b:dead");
    assert_eq!(i["has-secret"], "0");
    assert_eq!(i["state"], "active");
    assert_eq!(i["last-delivery-ms-ago"], "-1");
    assert_eq!(i["last-status"], "0");
    let i = info(&mut con, "a").await;
    assert_eq!(
        (i["policy"].as_str(), i["maxqueue"].as_str()),
        ("drop-oldest", "1048576")
    );
    // Re-adding replaces.
    q(&mut con, &["WEBHOOK", "ADD", "a", url, "z"]).await;
    assert_eq!(info(&mut con, "a").await["pattern"], "z");
    // RESP3 gets a map.
    let mut c3 = s.conn(true).await;
    assert!(matches!(q(&mut c3, &["WEBHOOK", "INFO", "a"]).await, V::Map(_)));

    assert_eq!(
        e(&mut con, &["WEBHOOK", "INFO", "nope"]).await,
        "ERR no such webhook 'nope'"
    );
    assert!(e(&mut con, &["WEBHOOK", "ADD", "c", "ftp://x/", "*"])
        .await
        .starts_with("ERR invalid webhook URL 'ftp://x/'"));
    assert_eq!(
        e(&mut con, &["WEBHOOK", "ADD", "c", url]).await,
        "ERR wrong number of arguments for 'webhook|add' command"
    );
    assert_eq!(
        e(&mut con, &["WEBHOOK", "ADD", "c", url, "*", "RETRIES"]).await,
        "ERR syntax error"
    );
    assert!(e(&mut con, &["WEBHOOK", "ADD", "c", url, "*", "POLICY", "x"])
        .await
        .starts_with("ERR invalid POLICY value"));
    assert!(e(&mut con, &["WEBHOOK", "NOPE"])
        .await
        .starts_with("ERR unknown subcommand 'NOPE'"));
    let help = q(&mut con, &["WEBHOOK", "HELP"]).await;
    assert!(show(&help).contains("DEADLETTER"));

    assert_eq!(show(&q(&mut con, &["WEBHOOK", "DEL", "a"]).await), "1");
    assert_eq!(show(&q(&mut con, &["WEBHOOK", "DEL", "a"]).await), "0");
    assert_eq!(show(&q(&mut con, &["WEBHOOK", "LIST"]).await), r#"["b"]"#);

    // The table's facts: COMMAND INFO, and ACL (admin only).
    let ci = show(&q(&mut con, &["COMMAND", "INFO", "webhook"]).await);
    assert!(
        ci.contains("webhook|add") && ci.contains("@dangerous") && ci.contains("@pubsub"),
        "{ci}"
    );
    q(&mut con, &["ACL", "SETUSER", "u", "on", "nopass", "+@all", "-@admin"]).await;
    let mut u = s.conn(false).await;
    q(&mut u, &["AUTH", "u", "x"]).await;
    assert!(e(&mut u, &["WEBHOOK", "LIST"]).await.starts_with("NOPERM"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_newest_overflow_counts_drops_and_spares_other_webhooks() {
    let (_s, mut con) = server().await;
    let stuck = receiver(Behave::Hang).await;
    let mut fine = receiver(Behave::Ok).await;
    q(
        &mut con,
        &[
            "WEBHOOK",
            "ADD",
            "stuck",
            &stuck.url,
            "load",
            "MAXQUEUE",
            "600",
            "POLICY",
            "drop-newest",
            "TIMEOUT",
            "60000",
        ],
    )
    .await;
    q(&mut con, &["WEBHOOK", "ADD", "fine", &fine.url, "load"]).await;
    let payload = "p".repeat(100);
    for _ in 0..20 {
        q(&mut con, &["PUBLISH", "load", &payload]).await;
    }
    for _ in 0..20 {
        assert_eq!(fine.next().await.body.len(), 100);
    }
    let i = wait_info(&mut con, "fine", WAIT, "20 delivered", |i| num(i, "delivered") == 20).await;
    assert_eq!(num(&i, "dropped"), 0);
    let i = info(&mut con, "stuck").await;
    assert!(num(&i, "dropped") > 0, "{i:?}");
    assert!(num(&i, "queued-bytes") < 600, "{i:?}");
    assert_eq!(i["state"], "active");
    assert_eq!(num(&i, "delivered"), 0);
    // Deleting it abandons the hanging POST at once.
    assert_eq!(show(&q(&mut con, &["WEBHOOK", "DEL", "stuck"]).await), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_policy_suspends_until_added_again() {
    let (_s, mut con) = server().await;
    let stuck = receiver(Behave::Hang).await;
    let add = [
        "WEBHOOK",
        "ADD",
        "h",
        &stuck.url,
        "load",
        "MAXQUEUE",
        "500",
        "POLICY",
        "disconnect",
        "TIMEOUT",
        "60000",
    ];
    q(&mut con, &add).await;
    let payload = "p".repeat(100);
    for _ in 0..10 {
        q(&mut con, &["PUBLISH", "load", &payload]).await;
    }
    let i = wait_info(&mut con, "h", WAIT, "suspension", |i| {
        i["state"] == "suspended:queue-overflow"
    })
    .await;
    assert_eq!(num(&i, "delivered"), 0);
    // Unsubscribed: the pattern is gone from the registry.
    assert_eq!(show(&q(&mut con, &["PUBSUB", "NUMPAT"]).await), "0");
    q(&mut con, &add).await;
    assert_eq!(info(&mut con, "h").await["state"], "active");
    assert_eq!(show(&q(&mut con, &["PUBSUB", "NUMPAT"]).await), "1");
    q(&mut con, &["WEBHOOK", "DEL", "h"]).await;
}

async fn aof_server(dir: &Path) -> TestServer {
    let d = dir.to_str().unwrap().to_string();
    start_server_with(&[("appendonly", "yes"), ("appendfsync", "always"), ("dir", &d)]).await
}

/// Stops `s` and waits until its AOF is closed (the last step of its shutdown).
async fn stop(s: TestServer) {
    let broker = s.broker.clone();
    drop(s);
    let deadline = tokio::time::Instant::now() + WAIT;
    while broker.aof.is_on() {
        assert!(tokio::time::Instant::now() < deadline, "server did not stop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_persist_in_the_aof_and_its_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let mut r1 = receiver(Behave::Ok).await;
    let mut r2 = receiver(Behave::Ok).await;
    let s = aof_server(dir.path()).await;
    let mut con = s.conn(false).await;
    q(&mut con, &["XADD", "data", "*", "f", "v"]).await;
    q(&mut con, &["WEBHOOK", "ADD", "one", &r1.url, "a.*", "RETRIES", "1"]).await;
    q(&mut con, &["WEBHOOK", "ADD", "gone", &r1.url, "*"]).await;
    q(&mut con, &["WEBHOOK", "DEL", "gone"]).await;
    // The rewrite puts `one` into the new base; `two` then goes to the new incr file.
    q(&mut con, &["BGREWRITEAOF"]).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let p = text(&q(&mut con, &["INFO", "persistence"]).await);
        if p.contains("aof_rewrite_in_progress:0") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "rewrite did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    q(&mut con, &["WEBHOOK", "ADD", "two", &r2.url, "b.*", "SECRET", "k"]).await;
    let base = std::fs::read_dir(dir.path().join("appendonlydir"))
        .unwrap()
        .filter_map(|f| f.ok())
        .find(|f| f.file_name().to_string_lossy().ends_with(".base.aof"))
        .unwrap();
    let base = String::from_utf8_lossy(&std::fs::read(base.path()).unwrap()).into_owned();
    assert!(
        base.contains("WEBHOOK") && base.contains("one") && !base.contains("gone"),
        "{base}"
    );
    drop(con);
    stop(s).await;

    let s = aof_server(dir.path()).await;
    let mut con = s.conn(false).await;
    assert_eq!(show(&q(&mut con, &["WEBHOOK", "LIST"]).await), r#"["one","two"]"#);
    assert_eq!(show(&q(&mut con, &["XLEN", "data"]).await), "1");
    let i = info(&mut con, "two").await;
    assert_eq!((i["has-secret"].as_str(), i["pattern"].as_str()), ("1", "b.*"));
    assert_eq!(info(&mut con, "one").await["retries"], "1");
    q(&mut con, &["PUBLISH", "a.x", "to-one"]).await;
    q(&mut con, &["PUBLISH", "b.x", "to-two"]).await;
    assert_eq!(&r1.next().await.body[..], b"to-one");
    let g = r2.next().await;
    assert_eq!(&g.body[..], b"to-two");
    assert!(header(&g, "x-fanout-signature").starts_with("sha256="));
    // One delivery task per webhook after the replay: nothing arrives twice.
    r1.silent(Duration::from_millis(300)).await;
    r2.silent(Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_eight_posts_in_flight() {
    let (_s, mut con) = server().await;
    let stuck = receiver(Behave::Hang).await;
    q(&mut con, &["WEBHOOK", "ADD", "h", &stuck.url, "c", "TIMEOUT", "60000"]).await;
    for i in 0..20 {
        q(&mut con, &["PUBLISH", "c", &i.to_string()]).await;
    }
    let i = wait_info(&mut con, "h", WAIT, "8 in flight", |i| num(i, "in-flight") == 8).await;
    assert!(num(&i, "queued-bytes") > 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(stuck.hits.load(SeqCst), 8);
    assert_eq!(num(&info(&mut con, "h").await, "in-flight"), 8);
    q(&mut con, &["WEBHOOK", "DEL", "h"]).await;
}
