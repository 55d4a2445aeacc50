//! Drop-in completeness: transactions, MONITOR, SHUTDOWN, the operator commands and
//! byte-exact error texts, through the redis crate and raw RESP.

mod common;

use std::time::Duration;

use common::*;

/// MULTI queues, EXEC runs the queue and replies with every result in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_exec_through_the_redis_crate() {
    let s = start_server().await;
    let mut sub = s.pubsub().await;
    sub.subscribe("tx").await.unwrap();
    let mut con = s.conn(false).await;
    let (a, b, pong): (i64, i64, String) = redis::pipe()
        .atomic()
        .cmd("PUBLISH")
        .arg("tx")
        .arg("one")
        .cmd("PUBLISH")
        .arg("nobody")
        .arg("x")
        .cmd("PING")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!((a, b, pong.as_str()), (1, 0, "PONG"));
    let mut stream = sub.on_message();
    use futures_util::StreamExt;
    let m = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.get_payload::<String>().unwrap(), "one");
}

/// The replies Redis gives, byte for byte (checked against redis-server 7.0.15).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_replies_match_redis() {
    let s = start_server().await;
    let mut c = s.raw().await;
    c.send_raw(b"EXEC\r\nDISCARD\r\nMULTI\r\nMULTI\r\nWATCH x\r\nPING\r\nEXEC\r\n")
        .await;
    c.expect(b"-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n+OK\r\n-ERR MULTI calls can not be nested\r\n-ERR WATCH inside MULTI is not allowed\r\n+QUEUED\r\n*1\r\n+PONG\r\n").await;
    // A refused command while queueing aborts EXEC.
    c.send_raw(b"MULTI\r\nPUBLISH onlyone\r\nNOSUCH\r\nPING\r\nEXEC\r\n")
        .await;
    c.expect(b"+OK\r\n-ERR wrong number of arguments for 'publish' command\r\n-ERR unknown command 'NOSUCH', with args beginning with: \r\n+QUEUED\r\n-EXECABORT Transaction discarded because of previous errors.\r\n").await;
    // DISCARD drops the queue; commands refused inside MULTI are refused.
    c.send_raw(b"MULTI\r\nPING\r\nDISCARD\r\nMULTI\r\nSHUTDOWN\r\nEXEC\r\n")
        .await;
    c.expect(b"+OK\r\n+QUEUED\r\n+OK\r\n+OK\r\n-ERR Command not allowed inside a transaction\r\n-EXECABORT Transaction discarded because of previous errors.\r\n").await;
    // WATCH/UNWATCH, and an empty transaction.
    c.send_raw(b"WATCH a b\r\nUNWATCH\r\nMULTI\r\nEXEC\r\n").await;
    c.expect(b"+OK\r\n+OK\r\n+OK\r\n*0\r\n").await;
    // RESP3 shapes.
    c.send_raw(b"HELLO 3\r\n").await;
    c.read_frame().await;
    c.send_raw(b"MULTI\r\nECHO hi\r\nEXEC\r\n").await;
    c.expect(b"+OK\r\n+QUEUED\r\n*1\r\n$2\r\nhi\r\n").await;
}

/// A write to a watched key aborts EXEC with a null reply; the keyspace's writes call
/// the same `touch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_touched_watched_key_aborts_exec() {
    let s = start_server().await;
    let mut c = s.raw().await;
    c.send_raw(b"SELECT 3\r\nWATCH k\r\n").await;
    c.expect(b"+OK\r\n+OK\r\n").await;
    s.broker.watches.touch(0, b"k"); // another database: no effect
    c.send_raw(b"MULTI\r\nPING\r\nEXEC\r\n").await;
    c.expect(b"+OK\r\n+QUEUED\r\n*1\r\n+PONG\r\n").await;
    c.send_raw(b"WATCH k\r\n").await;
    c.expect(b"+OK\r\n").await;
    s.broker.watches.touch(3, b"k");
    c.send_raw(b"MULTI\r\nPING\r\nEXEC\r\n").await;
    c.expect(b"+OK\r\n+QUEUED\r\n*-1\r\n").await;
    // EXEC forgot the watch.
    assert!(s.broker.watches.is_empty());
}

/// A PUBLISH batch inside MULTI reaches each subscriber contiguously and in order, while
/// another client publishes to the same channel as fast as it can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_reaches_subscribers_contiguously() {
    let s = start_server().await;
    let mut sub = s.raw().await;
    sub.send(&["SUBSCRIBE", "ch"]).await;
    sub.read_frame().await;
    let noise_addr = s.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let noise_stop = stop.clone();
    let noise = tokio::spawn(async move {
        let mut n = RawConn::connect(noise_addr).await;
        while !noise_stop.load(std::sync::atomic::Ordering::Relaxed) {
            let mut batch = Vec::new();
            for _ in 0..16 {
                batch.extend(resp_command(&["PUBLISH", "ch", "noise"]));
            }
            n.send_raw(&batch).await;
            for _ in 0..16 {
                n.read_frame().await;
            }
        }
    });
    let mut p = s.raw().await;
    let rounds = 20;
    for r in 0..rounds {
        let mut req = resp_command(&["MULTI"]);
        for i in 0..50 {
            req.extend(resp_command(&["PUBLISH", "ch", &format!("tx{r}-{i}")]));
        }
        req.extend(resp_command(&["EXEC"]));
        p.send_raw(&req).await;
        for _ in 0..52 {
            p.read_frame().await;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    noise.await.unwrap();
    let mut seen = 0;
    let mut run: Option<(usize, usize)> = None;
    while seen < rounds * 50 {
        let f = sub.read_frame().await;
        let payload = f.items()[2].text();
        if let Some(rest) = payload.strip_prefix("tx") {
            let (r, i) = rest.split_once('-').unwrap();
            let (r, i): (usize, usize) = (r.parse().unwrap(), i.parse().unwrap());
            match run {
                None => assert_eq!(i, 0, "a transaction starts with its first message"),
                Some((pr, pi)) if pi < 49 => assert_eq!((r, i), (pr, pi + 1), "interleaved"),
                Some(_) => assert_eq!(i, 0),
            }
            run = Some((r, i));
            seen += 1;
        } else if let Some((_, pi)) = run {
            assert_eq!(pi, 49, "another client's message inside a transaction");
        }
    }
}

/// MONITOR shows other clients' commands in Redis's line format, escaped and redacted
/// as Redis does; admin commands are left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_lines_as_redis_formats_them() {
    let s = start_server().await;
    let mut m = s.raw().await;
    m.send(&["MONITOR"]).await;
    m.expect(b"+OK\r\n").await;
    let mut c = s.raw().await;
    let addr = c.call(&["CLIENT", "INFO"]).await.text();
    let addr = client_field(&addr, "addr").unwrap();
    c.send_raw(b"*3\r\n$4\r\nAUTH\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n$4\r\necho\r\n$3\r\n\xff\"\n\r\nCONFIG GET port\r\nMULTI\r\nPING\r\nEXEC\r\n").await;
    for _ in 0..6 {
        c.read_frame().await;
    }
    let expect_line = |f: Frame, tail: &str| {
        let line = f.text();
        let (time, rest) = line.split_once(' ').unwrap();
        let (secs, micros) = time.split_once('.').unwrap();
        assert!(secs.parse::<u64>().unwrap() > 1_600_000_000);
        assert_eq!(micros.len(), 6);
        assert_eq!(rest, format!("[0 {addr}] {tail}"));
    };
    // CLIENT INFO is an ordinary command (not admin): shown.
    expect_line(m.read_frame().await, "\"CLIENT\" \"INFO\"");
    expect_line(m.read_frame().await, "\"AUTH\" \"(redacted)\" \"(redacted)\"");
    expect_line(m.read_frame().await, "\"echo\" \"\\xff\\\"\\n\"");
    expect_line(m.read_frame().await, "\"MULTI\"");
    expect_line(m.read_frame().await, "\"PING\"");
    expect_line(m.read_frame().await, "\"EXEC\"");
    m.expect_silence(Duration::from_millis(100)).await;
    let list = c.call(&["CLIENT", "LIST"]).await.text();
    assert!(
        list.lines().any(|l| client_field(l, "flags").as_deref() == Some("O")),
        "{list}"
    );
}

/// SHUTDOWN closes the connection and stops the server gracefully; ABORT with nothing
/// in progress is Redis's error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_server() {
    let s = start_server().await;
    let mut c = s.raw().await;
    c.send(&["SHUTDOWN", "ABORT"]).await;
    c.expect_error("ERR No shutdown in progress.").await;
    c.send(&["SHUTDOWN", "NOSAVE", "SAVE"]).await;
    c.expect_error("ERR syntax error").await;
    c.send(&["SHUTDOWN", "NOSAVE", "NOW"]).await;
    c.expect_eof().await;
    assert!(s.broker.shutdown.is_cancelled());
    wait_until("the listener to close", || async {
        tokio::net::TcpStream::connect(s.addr).await.is_err()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_dbsize_lastsave() {
    let s = start_server().await;
    let mut c = s.raw().await;
    let t = c.call(&["TIME"]).await;
    let secs: u64 = t.items()[0].text().parse().unwrap();
    let micros: u64 = t.items()[1].text().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(secs.abs_diff(now) <= 2 && micros < 1_000_000);
    assert_eq!(c.call(&["DBSIZE"]).await.int(), 0);
    let last = c.call(&["LASTSAVE"]).await.int() as u64;
    assert!(last <= now && now - last < 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowlog_records_and_trims() {
    let s = start_server().await;
    let mut c = s.raw().await;
    assert_eq!(
        c.call(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]).await.text(),
        "OK"
    );
    assert_eq!(c.call(&["CONFIG", "SET", "slowlog-max-len", "3"]).await.text(), "OK");
    c.call(&["SLOWLOG", "RESET"]).await;
    c.call(&["CLIENT", "SETNAME", "me"]).await;
    c.call(&["ECHO", "hello"]).await;
    assert_eq!(c.call(&["SLOWLOG", "LEN"]).await.int(), 3);
    let entries = c.call(&["SLOWLOG", "GET", "1"]).await;
    let e = &entries.items()[0];
    assert_eq!(e.items().len(), 6);
    let argv: Vec<String> = e.items()[3].items().iter().map(|a| a.text()).collect();
    assert_eq!(argv, ["SLOWLOG", "LEN"]);
    assert_eq!(e.items()[5].text(), "me");
    assert_eq!(c.call(&["SLOWLOG", "GET", "-1"]).await.items().len(), 3);
    c.send(&["SLOWLOG", "GET", "-2"]).await;
    c.expect_error("ERR count should be greater than or equal to -1").await;
    c.call(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]).await;
    c.call(&["SLOWLOG", "RESET"]).await;
    c.call(&["PING"]).await;
    assert_eq!(c.call(&["SLOWLOG", "LEN"]).await.int(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_memory() {
    let s = start_server().await;
    let mut c = s.raw().await;
    assert_eq!(c.call(&["LATENCY", "LATEST"]).await.items().len(), 0);
    assert_eq!(c.call(&["LATENCY", "HISTORY", "command"]).await.items().len(), 0);
    assert_eq!(c.call(&["LATENCY", "RESET"]).await.int(), 0);
    s.broker.latency.add_if_needed(1, "command", 5);
    let latest = c.call(&["LATENCY", "LATEST"]).await;
    let ev = &latest.items()[0];
    assert_eq!(ev.items()[0].text(), "command");
    assert_eq!((ev.items()[2].int(), ev.items()[3].int()), (5, 5));
    assert_eq!(c.call(&["LATENCY", "HISTORY", "command"]).await.items().len(), 1);
    assert_eq!(c.call(&["LATENCY", "RESET", "command", "other"]).await.int(), 1);
    c.send(&["LATENCY", "HELP", "xxx"]).await;
    c.expect_error("ERR wrong number of arguments for 'latency|help' command")
        .await;
    let stats = c.call(&["MEMORY", "STATS"]).await;
    let names: Vec<String> = stats.items().iter().step_by(2).map(|f| f.text()).collect();
    // Redis 7.0.15's 27 fields, in its order.
    assert_eq!(names.len(), 27, "{names:?}");
    assert_eq!(
        (names[0].as_str(), names[26].as_str()),
        ("peak.allocated", "fragmentation.bytes")
    );
    // Ratios are doubles: bulk strings in RESP2.
    assert_eq!(names[14], "dataset.percentage");
    let pct: f64 = stats.items()[29].text().parse().unwrap();
    assert!((0.0..=100.0).contains(&pct), "{pct}");
    assert!(c.call(&["MEMORY", "DOCTOR"]).await.text().starts_with("Hi Sam"));
    assert_eq!(c.call(&["MEMORY", "USAGE", "nokey"]).await, Frame::Null);
    assert_eq!(c.call(&["MEMORY", "PURGE"]).await.text(), "OK");
}

/// CLIENT PAUSE WRITE holds PUBLISH until it ends; reads go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_pause_write_holds_publish() {
    let s = start_server().await;
    let mut admin = s.raw().await;
    let mut p = s.raw().await;
    assert_eq!(admin.call(&["CLIENT", "PAUSE", "100000", "WRITE"]).await.text(), "OK");
    p.send(&["PUBLISH", "ch", "m"]).await;
    p.expect_silence(Duration::from_millis(200)).await;
    assert_eq!(admin.call(&["PING"]).await.text(), "PONG");
    assert_eq!(admin.call(&["CLIENT", "UNPAUSE"]).await.text(), "OK");
    assert_eq!(p.read_frame().await.int(), 0);
    // A pause ends by itself.
    admin.call(&["CLIENT", "PAUSE", "150"]).await;
    let start = std::time::Instant::now();
    assert_eq!(p.call(&["PING"]).await.text(), "PONG");
    assert!(start.elapsed() >= Duration::from_millis(100));
    let t = p.call(&["CLIENT", "TRACKINGINFO"]).await;
    assert_eq!(t.items()[0].text(), "flags");
    assert_eq!(p.call(&["CLIENT", "GETREDIR"]).await.int(), -1);
}

/// INFO commandstats, errorstats and latencystats with Redis's field names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_command_error_and_latency_stats() {
    let s = start_server().await;
    let mut c = s.raw().await;
    c.call(&["PUBLISH", "a", "b"]).await;
    c.call(&["PUBLISH", "a"]).await;
    c.call(&["NOSUCH"]).await;
    let info = c.call(&["INFO", "commandstats"]).await.text();
    let line = info_field(&info, "cmdstat_publish").unwrap();
    assert!(line.starts_with("calls=1,usec="), "{line}");
    assert!(line.ends_with(",rejected_calls=1,failed_calls=0"), "{line}");
    let info = c.call(&["INFO", "errorstats"]).await.text();
    assert_eq!(info_field(&info, "errorstat_ERR").as_deref(), Some("count=2"));
    let info = c.call(&["INFO", "latencystats"]).await.text();
    let p = info_field(&info, "latency_percentiles_usec_publish").unwrap();
    assert!(
        p.starts_with("p50=") && p.contains(",p99=") && p.contains(",p99.9="),
        "{p}"
    );
}

/// Bytes that are not UTF-8 come back in error texts exactly as Redis echoes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_texts_keep_their_bytes() {
    let s = start_server().await;
    let mut c = s.raw().await;
    c.send_raw(b"*2\r\n$2\r\n\xff\xfe\r\n$4\r\nPI\xffG\r\n").await;
    c.expect(b"-ERR unknown command '\xff\xfe', with args beginning with: 'PI\xffG' \r\n")
        .await;
    c.send_raw(b"*2\r\n$6\r\nCLIENT\r\n$3\r\n\xe9t\xe9\r\n").await;
    c.expect(b"-ERR unknown subcommand '\xe9t\xe9'. Try CLIENT HELP.\r\n")
        .await;
}

/// COMMAND INFO and GETKEYS read the key specs of the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_key_specs() {
    let s = start_server().await;
    let mut c = s.raw().await;
    let info = c
        .call(&["COMMAND", "INFO", "spublish", "ssubscribe", "watch", "publish"])
        .await;
    let range = |f: &Frame| (f.items()[3].int(), f.items()[4].int(), f.items()[5].int());
    assert_eq!(range(&info.items()[0]), (1, 1, 1));
    assert_eq!(range(&info.items()[1]), (1, -1, 1));
    assert_eq!(range(&info.items()[2]), (1, -1, 1));
    assert_eq!(range(&info.items()[3]), (0, 0, 0));
    let spec = &info.items()[0].items()[8].items()[0];
    assert_eq!(spec.items()[0].text(), "flags");
    assert_eq!(spec.items()[1].items()[0].text(), "not_key");
    let keys = c.call(&["COMMAND", "GETKEYS", "WATCH", "a", "b"]).await;
    assert_eq!(keys.items().iter().map(|k| k.text()).collect::<Vec<_>>(), ["a", "b"]);
    let kf = c.call(&["COMMAND", "GETKEYSANDFLAGS", "watch", "a"]).await;
    assert_eq!(kf.items()[0].items()[1].items()[0].text(), "RO");
    c.send(&["COMMAND", "GETKEYS", "spublish", "ch", "m"]).await;
    c.expect_error("ERR The command has no key arguments").await;
    c.send(&["COMMAND", "GETKEYS", "nosuch", "x"]).await;
    c.expect_error("ERR Invalid command specified").await;
    c.send(&["COMMAND", "GETKEYS", "watch"]).await;
    c.expect_error("ERR Invalid number of arguments specified for command")
        .await;
    c.send(&["COMMAND", "GETKEYS", "publish", "ch"]).await;
    c.expect_error("ERR The command has no key arguments").await;
}

/// ACL key patterns apply to the keys the command table finds (checked against
/// redis-server 7.0.15: WATCH's `RO` key spec is met by a read or a write pattern).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_key_patterns_apply_to_watch() {
    let s = start_server().await;
    let mut admin = s.raw().await;
    assert_eq!(
        admin
            .call(&["ACL", "SETUSER", "w", "on", "nopass", "+@all", "%W~foo", "&*"])
            .await
            .text(),
        "OK"
    );
    let mut c = s.raw().await;
    assert_eq!(c.call(&["AUTH", "w", "x"]).await.text(), "OK");
    assert_eq!(c.call(&["WATCH", "foo"]).await.text(), "OK");
    c.send(&["WATCH", "foo", "bar"]).await;
    c.expect_error("NOPERM this user has no permissions to access one of the keys used as arguments")
        .await;
    assert_eq!(c.call(&["SPUBLISH", "bar", "m"]).await.int(), 0);
    let dry = admin.call(&["ACL", "DRYRUN", "w", "WATCH", "b\u{e9}r"]).await.text();
    assert_eq!(dry, "This user has no permissions to access the 'b\u{e9}r' key");
    let log = admin.call(&["ACL", "LOG", "1"]).await;
    let entry = log.items()[0].items();
    let field = |k: &str| {
        entry
            .iter()
            .position(|f| *f == Frame::bulk(k))
            .map(|i| entry[i + 1].text())
    };
    assert_eq!(field("reason").as_deref(), Some("key"));
    assert_eq!(field("object").as_deref(), Some("bar"));
}

/// Replies checked against redis-server 7.0.15 and 7.2.4 by a differential run
/// (EXEC refused, ACL changed before EXEC, SSUBSCRIBE inside MULTI, MONITOR clients).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_edges_match_redis() {
    let s = start_server().await;
    let mut c = s.raw().await;
    // A refused EXEC always explains itself as EXECABORT, inside MULTI or not.
    c.send(&["EXEC", "x"]).await;
    c.expect_error("EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command")
        .await;
    c.send_raw(b"MULTI\r\nSSUBSCRIBE s1\r\nCLIENT INFO\r\nEXEC\r\n").await;
    c.expect(b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n-ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client\r\n")
        .await;
    // CLIENT INFO run by EXEC still sees the transaction.
    let info = c.read_frame().await.text();
    assert_eq!(client_field(&info, "flags").as_deref(), Some("x"), "{info}");
    assert_eq!(client_field(&info, "multi").as_deref(), Some("2"), "{info}");
    assert_eq!(client_field(&info, "cmd").as_deref(), Some("exec"), "{info}");
    c.send(&["NOSUCH"]).await;
    c.read_frame().await;
    let info = c.call(&["CLIENT", "LIST"]).await.text();
    assert!(info.contains(" multi=-1 "), "{info}");

    // Permissions revoked between queueing and EXEC.
    let mut admin = s.raw().await;
    admin
        .call(&["ACL", "SETUSER", "u", "on", "nopass", "+@all", "&*"])
        .await;
    let mut u = s.raw().await;
    assert_eq!(u.call(&["AUTH", "u", "x"]).await.text(), "OK");
    u.send_raw(b"MULTI\r\nPUBLISH ch m\r\nPING\r\n").await;
    u.expect(b"+OK\r\n+QUEUED\r\n+QUEUED\r\n").await;
    admin.call(&["ACL", "SETUSER", "u", "-publish"]).await;
    u.send(&["EXEC"]).await;
    u.expect(b"*2\r\n-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to execute the command or subcommand\r\n+PONG\r\n").await;
    // Refused while queueing: ACL LOG says `multi`.
    u.send_raw(b"MULTI\r\nPUBLISH ch m\r\nDISCARD\r\n").await;
    u.expect(b"+OK\r\n-NOPERM this user has no permissions to run the 'publish' command\r\n+OK\r\n")
        .await;
    let log = admin.call(&["ACL", "LOG", "1"]).await;
    let entry = log.items()[0].items();
    let field = |k: &str| {
        entry
            .iter()
            .position(|f| *f == Frame::bulk(k))
            .map(|i| entry[i + 1].text())
    };
    assert_eq!(field("context").as_deref(), Some("multi"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_clients_as_redis_treats_them() {
    let s = start_server().await;
    let mut m = s.raw().await;
    m.send(&["MONITOR"]).await;
    m.expect(b"+OK\r\n").await;
    // Its own commands: the reply first, then the line; a second MONITOR says nothing.
    m.send_raw(b"MONITOR\r\nPING\r\n").await;
    m.expect(b"+PONG\r\n").await;
    let line = m.read_frame().await.text();
    assert!(line.ends_with("] \"PING\""), "{line}");
    // A monitor is a replica to Redis: no publishing, no pause.
    m.send(&["PUBLISH", "ch", "x"]).await;
    m.expect_error("ERR Replica can't interact with the keyspace").await;
    // A refused EXEC still reaches MONITOR.
    let mut c = s.raw().await;
    c.send(&["EXEC", "x"]).await;
    c.read_frame().await;
    let line = m.read_frame().await.text();
    assert!(line.ends_with("] \"EXEC\" \"x\""), "{line}");
    // SLOWLOG keeps AUTH's arguments redacted, as MONITOR shows them.
    c.call(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]).await;
    c.send(&["AUTH", "someone", "secret"]).await;
    c.read_frame().await;
    let entries = c.call(&["SLOWLOG", "GET", "2"]).await;
    let argv: Vec<String> = entries.items()[0].items()[3].items().iter().map(|a| a.text()).collect();
    assert_eq!(argv, ["AUTH", "(redacted)", "(redacted)"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_argument_errors_match_redis() {
    let s = start_server().await;
    let mut c = s.raw().await;
    for (args, err) in [
        (&["CLIENT", "PAUSE", "-1"][..], "ERR timeout is negative"),
        (
            &["CLIENT", "PAUSE", "abc", "FOO"],
            "ERR CLIENT PAUSE mode must be WRITE or ALL",
        ),
        (
            &["CLIENT", "PAUSE", "abc"],
            "ERR timeout is not an integer or out of range",
        ),
        (
            &["CLIENT", "PAUSE", "9223372036854775807"],
            "ERR timeout is out of range",
        ),
        (
            &["CLIENT", "pause", "10", "WRITE", "extra"],
            "ERR unknown subcommand or wrong number of arguments for 'pause'. Try CLIENT HELP.",
        ),
        (
            &["SLOWLOG", "GET", "abc"],
            "ERR count should be greater than or equal to -1",
        ),
        (
            &["SLOWLOG", "GET", "1", "2"],
            "ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP.",
        ),
        (&["MEMORY", "USAGE", "k", "SAMPLES", "-1"], "ERR syntax error"),
    ] {
        c.send(args).await;
        c.expect_error(err).await;
    }
    // None of those paused anything.
    assert_eq!(c.call(&["PING"]).await.text(), "PONG");
}

/// LATENCY HISTOGRAM and DOCTOR, `latency-tracking` and its percentiles, as Redis names
/// and shapes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_histogram_doctor_and_tracking() {
    let s = start_server().await;
    let mut c = s.raw().await;
    assert!(c
        .call(&["LATENCY", "DOCTOR"])
        .await
        .text()
        .starts_with("I'm sorry, Dave, I can't do that."));
    c.call(&["CONFIG", "SET", "latency-monitor-threshold", "100"]).await;
    assert!(c
        .call(&["LATENCY", "DOCTOR"])
        .await
        .text()
        .starts_with("Dave, no latency spike was observed"));
    s.broker.latency.add_if_needed(1, "command", 120);
    let report = c.call(&["LATENCY", "DOCTOR"]).await.text();
    assert!(
        report.contains("1. command: 1 latency spikes (average 120ms, mean deviation 0ms"),
        "{report}"
    );
    c.call(&["PING"]).await;
    c.call(&["PING"]).await;
    let h = c.call(&["LATENCY", "HISTOGRAM", "ping", "nosuch", "client"]).await;
    // One command with data (CLIENT has none yet), as a map of calls and a histogram.
    assert_eq!(h.items().len(), 2, "{h:?}");
    assert_eq!(h.items()[0].text(), "ping");
    let body = h.items()[1].items();
    assert_eq!((body[0].text().as_str(), body[1].int()), ("calls", 2));
    assert_eq!(body[2].text(), "histogram_usec");
    let cdf = body[3].items();
    assert_eq!(cdf[cdf.len() - 1].int(), 2, "cumulative: the last count is every call");
    // Percentiles as configured; tracking off stops recording.
    assert_eq!(
        c.call(&["CONFIG", "SET", "latency-tracking-info-percentiles", "50 99.5 100"])
            .await
            .text(),
        "OK"
    );
    let info = c.call(&["INFO", "latencystats"]).await.text();
    let ping = info_field(&info, "latency_percentiles_usec_ping").unwrap();
    assert!(
        ping.starts_with("p50=") && ping.contains(",p99.5=") && ping.contains(",p100="),
        "{ping}"
    );
    c.send(&["CONFIG", "SET", "latency-tracking-info-percentiles", "101"])
        .await;
    c.expect_error("ERR CONFIG SET failed (possibly related to argument 'latency-tracking-info-percentiles') - latency-tracking-info-percentiles parameters should sit between [0.0,100.0]").await;
    c.call(&["CONFIG", "SET", "latency-tracking", "no"]).await;
    c.call(&["ECHO", "x"]).await;
    let h = c.call(&["LATENCY", "HISTOGRAM", "echo"]).await;
    assert_eq!(h.items().len(), 0);
}

/// A MULTI queue is input not yet run: it counts against `client-query-buffer-limit`
/// and a client over it is closed, as for unparsed input; others go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_queue_is_bounded() {
    let s = start_server_with(&[("client-query-buffer-limit", "1mb")]).await;
    let mut c = s.raw().await;
    c.send(&["MULTI"]).await;
    c.expect(b"+OK\r\n").await;
    let payload = "x".repeat(64 * 1024);
    for _ in 0..8 {
        c.send(&["PUBLISH", "ch", &payload]).await;
        c.expect(b"+QUEUED\r\n").await;
    }
    let info = s.raw().await.call(&["CLIENT", "LIST"]).await.text();
    let line = info
        .lines()
        .find(|l| client_field(l, "multi").as_deref() == Some("8"))
        .expect("the client in MULTI");
    let mem: usize = client_field(line, "multi-mem").unwrap().parse().unwrap();
    assert!(mem > 8 * 64 * 1024, "{line}");
    // Each request is 65,566 bytes on the wire: the 16th crosses 1 MiB (and is the last
    // one sent, so nothing is written to a closed socket).
    for _ in 0..8 {
        c.send(&["PUBLISH", "ch", &payload]).await;
    }
    let mut queued = 0;
    while let Some(f) = c.try_read_frame().await {
        assert_eq!(f, Frame::Simple("QUEUED".into()));
        queued += 1;
    }
    // Closed at once, like a client over the limit with unparsed input: replies still
    // waiting in the same batch may never be written.
    assert!(queued <= 7, "{queued}");
    s.assert_alive().await;
}
