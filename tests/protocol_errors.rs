//! Malformed and hostile input on raw TCP connections (reference §2): each protocol error
//! gets Redis's exact reply, then the connection closes, and the server keeps serving
//! everyone else. Also inline commands, requests split across writes, huge announced
//! lengths, the HTTP guard and maxclients.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::AsyncWriteExt;

/// Sends `input` on a fresh connection, expects exactly `-<error>\r\n` followed by the
/// connection closing, then checks that the server still answers PING elsewhere.
async fn protocol_error_case(s: &TestServer, input: &[u8], error: &str) {
    let mut c = s.raw().await;
    c.send_raw(input).await;
    c.expect(format!("-{error}\r\n").as_bytes()).await;
    c.expect_eof().await;
    s.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_multibulk_length() {
    let s = start_server().await;
    const E: &str = "ERR Protocol error: invalid multibulk length";
    for input in [
        &b"*abc\r\n"[..],
        b"*+1\r\n",
        b"*01\r\n",
        b"* 1\r\n",
        b"*\r\n",
        b"*1x\r\n",
        b"*2147483648\r\n",
        b"*99999999999999999999\r\n",
        b"*--1\r\n",
    ] {
        protocol_error_case(&s, input, E).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_or_negative_multibulk_count_is_a_no_op() {
    let s = start_server().await;
    let mut c = s.raw().await;
    c.send_raw(b"*-1\r\n*0\r\n*-10\r\n*1\r\n$4\r\nPING\r\n").await;
    c.expect(b"+PONG\r\n").await;
    // Split across writes too.
    c.send_raw(b"*-1\r").await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    c.send_raw(b"\n*1\r\n$4\r\nPING\r\n").await;
    c.expect(b"+PONG\r\n").await;
    c.expect_silence(Duration::from_millis(50)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_dollar() {
    let s = start_server().await;
    protocol_error_case(&s, b"*2\r\n:1\r\n", "ERR Protocol error: expected '$', got ':'").await;
    protocol_error_case(&s, b"*1\r\n+PING\r\n", "ERR Protocol error: expected '$', got '+'").await;
    // After a good element, and after a complete request in the same read.
    let mut c = s.raw().await;
    c.send_raw(b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\nx\r\n").await;
    c.expect(b"+PONG\r\n-ERR Protocol error: expected '$', got 'x'\r\n")
        .await;
    c.expect_eof().await;
    s.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_bulk_length() {
    let s = start_server().await;
    const E: &str = "ERR Protocol error: invalid bulk length";
    for input in [
        &b"*1\r\n$-1\r\n"[..],
        b"*1\r\n$-5\r\n",
        b"*1\r\n$+4\r\nPING\r\n",
        b"*1\r\n$abc\r\n",
        b"*1\r\n$\r\n",
        b"*1\r\n$04\r\nPING\r\n",
        // proto-max-bulk-len (512 MB) + 1.
        b"*1\r\n$536870913\r\n",
        // 600 MB.
        b"*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$629145600\r\n",
    ] {
        protocol_error_case(&s, input, E).await;
    }
    // A lower proto-max-bulk-len set at run time applies to the next request.
    let mut c = s.raw().await;
    c.send(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"]).await;
    c.expect(b"+OK\r\n").await;
    protocol_error_case(&s, b"*2\r\n$4\r\nECHO\r\n$1048577\r\n", E).await;
    let mut ok = s.raw().await;
    let payload = "x".repeat(1 << 20);
    ok.send(&["ECHO", &payload]).await;
    ok.expect(format!("$1048576\r\n{payload}\r\n").as_bytes()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_after_a_protocol_error_are_dropped() {
    let s = start_server().await;
    let mut sub = s.raw().await;
    sub.send(&["SUBSCRIBE", "after"]).await;
    sub.read_frame().await;
    let mut c = s.raw().await;
    c.send_raw(b"*1\r\n$4\r\nPING\r\n*abc\r\n*3\r\n$7\r\nPUBLISH\r\n$5\r\nafter\r\n$1\r\nx\r\n")
        .await;
    c.expect(b"+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n")
        .await;
    c.expect_eof().await;
    // The PUBLISH after the error never ran.
    sub.send(&["PING"]).await;
    sub.expect(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_terminator_bytes_are_not_checked() {
    let s = start_server().await;
    let mut c = s.raw().await;
    c.send_raw(b"*1\r\n$4\r\nPINGxx*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n").await;
    c.expect(b"+PONG\r\n$2\r\nhi\r\n").await;
    // Nor is the byte after the `\r` of a header line.
    c.send_raw(b"*1\rx$4\rxPINGxx").await;
    c.expect(b"+PONG\r\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbalanced_quotes() {
    let s = start_server().await;
    const E: &str = "ERR Protocol error: unbalanced quotes in request";
    for input in [
        &b"set \"foo\r\n"[..],
        b"echo 'foo\r\n",
        b"echo \"foo\"bar\r\n",
        b"echo 'foo'bar\r\n",
        b"echo \"a\\\"\r\n",
    ] {
        protocol_error_case(&s, input, E).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_big_inline_request() {
    let s = start_server().await;
    let mut long = vec![b'a'; 70 * 1024];
    protocol_error_case(&s, &long, "ERR Protocol error: too big inline request").await;
    // A NUL before the newline hides it (C string search), so the line keeps growing.
    long.truncate(10);
    long.extend_from_slice(b"\0\n");
    long.extend(vec![b'b'; 70 * 1024]);
    protocol_error_case(&s, &long, "ERR Protocol error: too big inline request").await;
    // Just under the limit with its newline is fine (an unknown command).
    let mut c = s.raw().await;
    let mut line = vec![b'z'; 60 * 1024];
    line.extend_from_slice(b"\r\n");
    c.send_raw(&line).await;
    let reply = c.read_frame().await;
    let Frame::Error(e) = reply else { panic!("{reply:?}") };
    assert!(e.starts_with("ERR unknown command 'zzz"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_big_count_strings() {
    let s = start_server().await;
    let mut m = b"*".to_vec();
    m.extend(vec![b'1'; 70 * 1024]);
    protocol_error_case(&s, &m, "ERR Protocol error: too big mbulk count string").await;
    let mut b = b"*1\r\n$".to_vec();
    b.extend(vec![b'1'; 70 * 1024]);
    protocol_error_case(&s, &b, "ERR Protocol error: too big bulk count string").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_limits() {
    let s = start_server_with(&[("requirepass", "pw")]).await;
    protocol_error_case(&s, b"*11\r\n", "ERR Protocol error: unauthenticated multibulk length").await;
    protocol_error_case(
        &s,
        b"*2\r\n$4\r\nAUTH\r\n$16385\r\n",
        "ERR Protocol error: unauthenticated bulk length",
    )
    .await;
    // At the limits, and after AUTH, larger requests are fine.
    let mut c = s.raw().await;
    let mut ten = vec!["AUTH"];
    ten.extend(std::iter::repeat_n("x", 9));
    c.send(&ten).await;
    c.expect_error("ERR syntax error").await;
    c.send(&["AUTH", "pw"]).await;
    c.expect(b"+OK\r\n").await;
    let big = "y".repeat(20_000);
    c.send(&["ECHO", &big]).await;
    c.expect(format!("$20000\r\n{big}\r\n").as_bytes()).await;
    let mut many = vec!["PUBSUB", "NUMSUB"];
    many.extend(std::iter::repeat_n("c", 20));
    let r = c.call(&many).await;
    assert_eq!(r.items().len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_commands() {
    let s = start_server().await;
    let mut c = s.raw().await;
    // A bare \n is enough; empty and blank lines are ignored; any case.
    c.send_raw(b"ping\n\r\n   \t \r\nPiNg\r\n").await;
    c.expect(b"+PONG\r\n+PONG\r\n").await;
    // Quoting and escapes.
    c.send_raw(b"echo \"\\x41\\n\\t\\\"q\\\\\"\r\n").await;
    c.expect(b"$6\r\nA\n\t\"q\\\r\n").await;
    c.send_raw(b"echo 'it\\'s \"raw\" \\n'\r\n").await;
    c.expect(b"$13\r\nit's \"raw\" \\n\r\n").await;
    c.send_raw(b"echo foo\"bar baz\"\r\n").await;
    c.expect(b"$10\r\nfoobar baz\r\n").await;
    c.send_raw(b"echo \"\"\r\n").await;
    c.expect(b"$0\r\n\r\n").await;
    // Inline SUBSCRIBE with quoted names.
    c.send_raw(b"subscribe \"a b\" 'c'\r\n").await;
    c.expect(b"*3\r\n$9\r\nsubscribe\r\n$3\r\na b\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:2\r\n")
        .await;
    let mut p = s.raw().await;
    p.send_raw(b"PUBLISH \"a b\" \"x y\"\r\n").await;
    p.expect(b":1\r\n").await;
    c.expect(b"*3\r\n$7\r\nmessage\r\n$3\r\na b\r\n$3\r\nx y\r\n").await;
    // Unknown inline command: the normal error, connection stays open.
    p.send_raw(b"nosuch a 'b c'\r\n").await;
    p.expect_error("ERR unknown command 'nosuch', with args beginning with: 'a' 'b c' ")
        .await;
    p.send_raw(b"ping\r\n").await;
    p.expect(b"+PONG\r\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_split_byte_by_byte() {
    let s = start_server().await;
    let mut sub = s.raw().await;
    sub.send(&["SUBSCRIBE", "slow"]).await;
    sub.read_frame().await;
    let mut c = s.raw().await;
    let mut req = resp_command(&["PUBLISH", "slow", "trickled payload"]);
    req.extend_from_slice(b"echo \"in line\"\r\n");
    for byte in &req {
        c.stream.write_all(std::slice::from_ref(byte)).await.unwrap();
        c.stream.flush().await.unwrap();
        tokio::task::yield_now().await;
    }
    c.expect(b":1\r\n$7\r\nin line\r\n").await;
    sub.expect(b"*3\r\n$7\r\nmessage\r\n$4\r\nslow\r\n$16\r\ntrickled payload\r\n")
        .await;
    // A few bytes at a time with pauses, so the server really sees separate reads.
    let req = resp_command(&["ECHO", "pieces"]);
    for piece in req.chunks(3) {
        c.send_raw(piece).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    c.expect(b"$6\r\npieces\r\n").await;
}

/// Waits until the server has read at least `bytes` more than `base` (INFO
/// total_net_input_bytes, which counts a read before it is parsed in the same step).
async fn wait_input_bytes(s: &TestServer, base: u64, bytes: u64) {
    let mut q = s.raw().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let info = q.call(&["INFO", "stats"]).await.text();
        let n: u64 = info_field(&info, "total_net_input_bytes").unwrap().parse().unwrap();
        if n >= base + bytes {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "server read {n}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn input_bytes(s: &TestServer) -> u64 {
    let mut q = s.raw().await;
    let info = q.call(&["INFO", "stats"]).await.text();
    info_field(&info, "total_net_input_bytes").unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_announced_bulk_does_not_allocate() {
    // proto-max-bulk-len raised so that a 600 MB header is accepted.
    let s = start_server_with(&[("proto-max-bulk-len", "1gb")]).await;
    let mut sub = s.raw().await;
    sub.send(&["SUBSCRIBE", "c"]).await;
    sub.read_frame().await;
    let before = (vm_rss_kb(), vm_size_kb());
    let base = input_bytes(&s).await;
    // The header, then 256 KB of the payload: enough to fill the read buffer, so the
    // server has to decide how much more room to make.
    let mut header = b"*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$629145600\r\n".to_vec();
    header.extend(vec![b'x'; 256 * 1024]);
    let mut conns = Vec::new();
    for _ in 0..4 {
        let mut c = s.raw().await;
        c.send_raw(&header).await;
        conns.push(c);
    }
    // Also a huge element count that never arrives.
    let many_req: &[u8] = b"*2147483647\r\n$4\r\nPING\r\n";
    let mut many = s.raw().await;
    many.send_raw(many_req).await;
    wait_input_bytes(&s, base, 4 * header.len() as u64 + many_req.len() as u64).await;
    s.assert_alive().await;
    let during = (vm_rss_kb(), vm_size_kb());
    drop(conns);
    drop(many);
    s.assert_alive().await;
    // Nothing was published.
    sub.send(&["PING"]).await;
    sub.expect(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n").await;

    // A 500 MB bulk announced under the default limit, then a close.
    let d = start_server().await;
    let base = input_bytes(&d).await;
    let mut req = b"*2\r\n$4\r\nECHO\r\n$524288000\r\n".to_vec();
    req.extend(vec![b'y'; 256 * 1024]);
    let mut c = d.raw().await;
    c.send_raw(&req).await;
    wait_input_bytes(&d, base, req.len() as u64).await;
    let during2 = (vm_rss_kb(), vm_size_kb());
    drop(c);
    d.assert_alive().await;
    let after = (vm_rss_kb(), vm_size_kb());
    let peak = |i: usize| {
        [during, during2, after]
            .iter()
            .map(|m| if i == 0 { m.0 } else { m.1 })
            .max()
            .unwrap()
    };
    let rss_growth_mb = peak(0).saturating_sub(before.0) / 1024;
    // Reserving (not even touching) what the headers announce would add 4 x 600 MB
    // of address space; other tests' threads in this process may add some, never that.
    let vm_growth_mb = peak(1).saturating_sub(before.1) / 1024;
    assert!(
        vm_growth_mb < 2048,
        "virtual size grew by {vm_growth_mb} MB ({before:?} -> {during:?} -> {during2:?} -> {after:?})"
    );
    assert!(
        rss_growth_mb < 100,
        "RSS grew by {rss_growth_mb} MB ({before:?} -> {during:?} -> {during2:?} -> {after:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requests_are_closed_without_reply() {
    let s = start_server().await;
    for input in [
        &b"POST / HTTP/1.1\r\nHost: localhost\r\n\r\n"[..],
        b"post /x HTTP/1.0\r\n\r\n",
        b"Host: example.com\r\n\r\n",
        b"*2\r\n$4\r\nPOST\r\n$1\r\n/\r\n",
    ] {
        let mut c = s.raw().await;
        c.send_raw(input).await;
        c.expect_eof().await;
        s.assert_alive().await;
    }
    // GET is just an unknown command.
    let mut c = s.raw().await;
    c.send_raw(b"GET / HTTP/1.1\r\n").await;
    let r = c.read_frame().await;
    assert!(matches!(r, Frame::Error(_)), "{r:?}");
}

/// A connection closed in the middle of its batch (here by the HTTP guard, which closes
/// without a reply) still delivers what it published before: the messages already queued
/// for subscribers, and a run of publishes to the same subscribers, which holds a place in
/// each subscriber's queue until it is completed and would otherwise block it for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_before_a_close_mid_batch_are_delivered() {
    let s = start_server().await;
    let mut subs = Vec::new();
    for _ in 0..2 {
        let mut c = s.raw().await;
        c.send(&["SUBSCRIBE", "ch"]).await;
        c.read_frame().await;
        subs.push(c);
    }
    let mut p = s.raw().await;
    let mut batch = resp_command(&["PUBLISH", "ch", "a"]);
    batch.extend(resp_command(&["PUBLISH", "ch", "b"]));
    batch.extend(resp_command(&["PUBLISH", "ch", "c"]));
    batch.extend_from_slice(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n");
    p.send_raw(&batch).await;
    p.expect_eof().await;
    let mut other = s.raw().await;
    other.send(&["PUBLISH", "ch", "d"]).await;
    other.expect(b":2\r\n").await;
    for c in &mut subs {
        for payload in ["a", "b", "c", "d"] {
            let frame = format!("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\n{payload}\r\n");
            c.expect(frame.as_bytes()).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxclients_rejects_extra_connections() {
    let s = start_server_with(&[("maxclients", "2")]).await;
    let mut a = s.raw().await;
    a.send(&["PING"]).await;
    a.expect(b"+PONG\r\n").await;
    let mut b = s.raw().await;
    b.send(&["PING"]).await;
    b.expect(b"+PONG\r\n").await;
    let mut third = s.raw().await;
    third.expect(b"-ERR max number of clients reached\r\n").await;
    third.expect_eof().await;
    // The two admitted clients are unaffected.
    a.send(&["PING"]).await;
    a.expect(b"+PONG\r\n").await;
    let info = a.call(&["INFO", "stats"]).await.text();
    assert_eq!(
        info_field(&info, "rejected_connections").as_deref(),
        Some("1"),
        "{info}"
    );
    // Once one leaves, a new client is admitted.
    drop(b);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut c = s.raw().await;
        // A rejected connection may already be closed: ignore write errors.
        let _ = c.stream.write_all(&resp_command(&["PING"])).await;
        match c.try_read_frame().await {
            Some(Frame::Simple(p)) if p == "PONG" => break,
            Some(Frame::Error(e)) => assert_eq!(e, "ERR max number of clients reached"),
            None => {}
            Some(other) => panic!("{other:?}"),
        }
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
