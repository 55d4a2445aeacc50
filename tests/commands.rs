//! Command behaviour end to end, through the `redis` crate and through raw sockets for
//! byte-exact checks. The expected behaviour is Redis 7.2's (see
//! /work/shared/reference/redis-pubsub.md): reply shapes, error texts, and pub/sub
//! delivery rules.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use common::*;
use redis::{PushKind, Value};

/// A RESP2 array frame.
fn arr(items: &[Frame]) -> Frame {
    Frame::Array(items.to_vec())
}

fn b(s: impl AsRef<[u8]>) -> Frame {
    Frame::bulk(s)
}

/// `[kind, name, count]` as RESP2 sends it.
fn conf(kind: &str, name: impl AsRef<[u8]>, count: i64) -> Frame {
    arr(&[b(kind), b(name), Frame::Int(count)])
}

/// The RESP2 reply to PING while subscribed.
fn sub_pong() -> Frame {
    arr(&[b("pong"), b("")])
}

/// Subscribes a raw connection and checks one confirmation per name.
async fn raw_sub(c: &mut RawConn, cmd: &str, names: &[&[u8]]) {
    let mut args: Vec<&[u8]> = vec![cmd.as_bytes()];
    args.extend_from_slice(names);
    c.send(&args).await;
    let kind = cmd.to_ascii_lowercase();
    for name in names {
        let f = c.read_frame().await;
        let items = f.items();
        assert_eq!(items.len(), 3, "{f:?}");
        assert_eq!(items[0], b(&kind), "{f:?}");
        assert_eq!(items[1], b(name), "{f:?}");
    }
}

async fn publish(con: &mut redis::aio::MultiplexedConnection, ch: &[u8], msg: &[u8]) -> i64 {
    redis_query(con, redis::cmd("PUBLISH").arg(ch).arg(msg)).await
}

// ---------------------------------------------------------------------------------------
// SUBSCRIBE / PUBLISH basics
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_publish_resp2_crate() {
    let s = start_server().await;
    let (ready, sub) = resp2_crate_subscriber(s.url(false), vec![b"ch".to_vec()], vec![], 2);
    wait_ready(ready).await;
    let mut p = s.conn(false).await;
    assert_eq!(publish(&mut p, b"ch", b"hello").await, 1);
    assert_eq!(publish(&mut p, b"other", b"nobody").await, 0);
    assert_eq!(publish(&mut p, b"ch", b"world").await, 1);
    let msgs = tokio::time::timeout(WAIT, sub).await.unwrap().unwrap();
    let got: Vec<(String, Vec<u8>)> = msgs
        .iter()
        .map(|m| (m.get_channel_name().to_string(), m.get_payload_bytes().to_vec()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("ch".to_string(), b"hello".to_vec()),
            ("ch".to_string(), b"world".to_vec())
        ]
    );
    assert!(!msgs[0].from_pattern());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_publish_resp3_crate_pushes() {
    let s = start_server().await;
    let (mut sub, mut rx) = s.conn_with_pushes().await;
    tokio::time::timeout(WAIT, sub.subscribe("ch")).await.unwrap().unwrap();
    let p0 = next_push(&mut rx).await;
    assert_eq!(p0.kind, PushKind::Subscribe);
    assert_eq!(p0.data, vec![Value::BulkString(b"ch".to_vec()), Value::Int(1)]);

    let mut p = s.conn(true).await;
    assert_eq!(publish(&mut p, b"ch", b"hello").await, 1);
    let m = next_push(&mut rx).await;
    assert_eq!(m.kind, PushKind::Message);
    assert_eq!(
        m.data,
        vec![Value::BulkString(b"ch".to_vec()), Value::BulkString(b"hello".to_vec())]
    );

    tokio::time::timeout(WAIT, sub.psubscribe("c*")).await.unwrap().unwrap();
    let ps = next_push(&mut rx).await;
    assert_eq!(ps.kind, PushKind::PSubscribe);
    assert_eq!(ps.data, vec![Value::BulkString(b"c*".to_vec()), Value::Int(2)]);

    assert_eq!(publish(&mut p, b"ch", b"two").await, 2);
    // Exact-channel subscribers are served before pattern subscribers.
    let m = next_push(&mut rx).await;
    assert_eq!(m.kind, PushKind::Message);
    let pm = next_push(&mut rx).await;
    assert_eq!(pm.kind, PushKind::PMessage);
    assert_eq!(
        pm.data,
        vec![
            Value::BulkString(b"c*".to_vec()),
            Value::BulkString(b"ch".to_vec()),
            Value::BulkString(b"two".to_vec())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_counts_channel_patterns_and_clients() {
    let s = start_server().await;
    let mut a = s.raw().await;
    raw_sub(&mut a, "SUBSCRIBE", &[b"news.x"]).await;
    raw_sub(&mut a, "PSUBSCRIBE", &[b"news.*", b"*.x"]).await;
    let mut p = s.conn(false).await;

    // One client: the channel and both patterns each count.
    assert_eq!(publish(&mut p, b"news.x", b"m").await, 3);
    assert_eq!(a.read_frame().await, arr(&[b("message"), b("news.x"), b("m")]));
    let mut pm = BTreeSet::new();
    for _ in 0..2 {
        let f = a.read_frame().await;
        let it = f.items();
        assert_eq!(it.len(), 4, "{f:?}");
        assert_eq!(it[0], b("pmessage"));
        assert_eq!(&it[2..], &[b("news.x"), b("m")]);
        pm.insert(it[1].text());
    }
    assert_eq!(pm, BTreeSet::from(["news.*".to_string(), "*.x".to_string()]));
    assert_eq!(a.call(&["PING"]).await, sub_pong(), "nothing else was delivered");

    // More clients: each (subscription, client) pair counts.
    let mut bc = s.raw().await;
    raw_sub(&mut bc, "PSUBSCRIBE", &[b"news.*"]).await;
    let mut cc = s.raw().await;
    raw_sub(&mut cc, "SUBSCRIBE", &[b"news.x"]).await;
    assert_eq!(publish(&mut p, b"news.x", b"m2").await, 5);
    assert_eq!(publish(&mut p, b"news.y", b"m3").await, 2);
    assert_eq!(publish(&mut p, b"a.x", b"m4").await, 1);
    assert_eq!(publish(&mut p, b"NEWS.X", b"m5").await, 0, "case-sensitive");
    assert_eq!(cc.read_frame().await, arr(&[b("message"), b("news.x"), b("m2")]));
    assert_eq!(cc.call(&["PING"]).await, sub_pong());
    assert_eq!(
        bc.read_frame().await,
        arr(&[b("pmessage"), b("news.*"), b("news.x"), b("m2")])
    );
    assert_eq!(
        bc.read_frame().await,
        arr(&[b("pmessage"), b("news.*"), b("news.y"), b("m3")])
    );
    assert_eq!(bc.call(&["PING"]).await, sub_pong());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psubscribe_pmessage_fields() {
    let s = start_server().await;
    // RESP2, exact bytes.
    let mut r2 = s.raw().await;
    r2.send(&["PSUBSCRIBE", "news.*"]).await;
    r2.expect(b"*3\r\n$10\r\npsubscribe\r\n$6\r\nnews.*\r\n:1\r\n").await;
    // RESP3, exact bytes.
    let mut r3 = s.raw().await;
    assert!(matches!(r3.call(&["HELLO", "3"]).await, Frame::Map(_)));
    r3.send(&["PSUBSCRIBE", "news.*"]).await;
    r3.expect(b">3\r\n$10\r\npsubscribe\r\n$6\r\nnews.*\r\n:1\r\n").await;
    // And the redis crate's view of a pmessage.
    let (ready, sub) = resp2_crate_subscriber(s.url(false), vec![], vec![b"news.*".to_vec()], 1);
    wait_ready(ready).await;

    let mut p = s.conn(false).await;
    assert_eq!(publish(&mut p, b"news.x", b"m").await, 3);
    r2.expect(b"*4\r\n$8\r\npmessage\r\n$6\r\nnews.*\r\n$6\r\nnews.x\r\n$1\r\nm\r\n")
        .await;
    r3.expect(b">4\r\n$8\r\npmessage\r\n$6\r\nnews.*\r\n$6\r\nnews.x\r\n$1\r\nm\r\n")
        .await;
    let msgs = tokio::time::timeout(WAIT, sub).await.unwrap().unwrap();
    assert!(msgs[0].from_pattern());
    assert_eq!(msgs[0].get_pattern::<String>().unwrap(), "news.*");
    assert_eq!(msgs[0].get_channel_name(), "news.x");
    assert_eq!(msgs[0].get_payload_bytes(), b"m");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_counts() {
    let s = start_server().await;
    let mut c = s.raw().await;
    // The example of reference §4.1.
    c.send(&["SSUBSCRIBE", "s1"]).await;
    assert_eq!(c.read_frame().await, conf("ssubscribe", "s1", 1));
    c.send(&["SUBSCRIBE", "c1"]).await;
    assert_eq!(c.read_frame().await, conf("subscribe", "c1", 1));
    c.send(&["PSUBSCRIBE", "p*"]).await;
    assert_eq!(c.read_frame().await, conf("psubscribe", "p*", 2));
    c.send(&["SSUBSCRIBE", "s2"]).await;
    assert_eq!(c.read_frame().await, conf("ssubscribe", "s2", 2));
    c.send(&["UNSUBSCRIBE", "nosuch"]).await;
    assert_eq!(c.read_frame().await, conf("unsubscribe", "nosuch", 2));

    // Duplicates: one confirmation per argument, count unchanged.
    let mut d = s.raw().await;
    d.send(&["SUBSCRIBE", "a", "a", "a"]).await;
    d.expect(
        b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n\
          *3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n\
          *3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n",
    )
    .await;
    // Arity errors.
    let mut e = s.raw().await;
    for cmd in ["subscribe", "psubscribe", "ssubscribe"] {
        e.send(&[cmd]).await;
        e.expect_error(&format!("ERR wrong number of arguments for '{cmd}' command"))
            .await;
    }
    // Unsubscribing from names never subscribed, on a fresh connection.
    e.send(&["UNSUBSCRIBE", "foo", "bar", "quux"]).await;
    for n in ["foo", "bar", "quux"] {
        assert_eq!(e.read_frame().await, conf("unsubscribe", n, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_channels_are_a_separate_namespace() {
    let s = start_server().await;
    let mut plain = s.raw().await;
    raw_sub(&mut plain, "SUBSCRIBE", &[b"x"]).await;
    let mut shard = s.raw().await;
    raw_sub(&mut shard, "SSUBSCRIBE", &[b"x"]).await;
    let mut pat = s.raw().await;
    raw_sub(&mut pat, "PSUBSCRIBE", &[b"*"]).await;

    let mut p = s.conn(false).await;
    assert_eq!(publish(&mut p, b"x", b"global").await, 2);
    let n: i64 = redis_query(&mut p, redis::cmd("SPUBLISH").arg("x").arg("sharded")).await;
    assert_eq!(n, 1, "SPUBLISH reaches only the shard subscriber, never patterns");

    assert_eq!(plain.read_frame().await, arr(&[b("message"), b("x"), b("global")]));
    assert_eq!(plain.call(&["PING"]).await, sub_pong());
    shard
        .expect(b"*3\r\n$8\r\nsmessage\r\n$1\r\nx\r\n$7\r\nsharded\r\n")
        .await;
    assert_eq!(shard.call(&["PING"]).await, sub_pong());
    assert_eq!(
        pat.read_frame().await,
        arr(&[b("pmessage"), b("*"), b("x"), b("global")])
    );
    assert_eq!(pat.call(&["PING"]).await, sub_pong());

    // SUNSUBSCRIBE counts shard channels only.
    shard.send(&["SUNSUBSCRIBE", "x"]).await;
    assert_eq!(shard.read_frame().await, conf("sunsubscribe", "x", 0));
    let n: i64 = redis_query(&mut p, redis::cmd("SPUBLISH").arg("x").arg("again")).await;
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_without_arguments() {
    let s = start_server().await;
    // Nothing subscribed: one reply with a null name, RESP2 and RESP3.
    let mut c = s.raw().await;
    c.send(&["UNSUBSCRIBE"]).await;
    c.expect(b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n").await;
    c.send(&["PUNSUBSCRIBE"]).await;
    c.expect(b"*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n").await;
    c.send(&["SUNSUBSCRIBE"]).await;
    c.expect(b"*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:0\r\n").await;
    let mut c3 = s.raw().await;
    c3.call(&["HELLO", "3"]).await;
    c3.send(&["UNSUBSCRIBE"]).await;
    c3.expect(b">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n").await;

    // Three channels and a pattern: one confirmation per channel, counting down to the
    // pattern that is left; then the null reply carries the count 1.
    let mut d = s.raw().await;
    raw_sub(&mut d, "SUBSCRIBE", &[b"a", b"b", b"c"]).await;
    raw_sub(&mut d, "PSUBSCRIBE", &[b"p*"]).await;
    d.send(&["UNSUBSCRIBE"]).await;
    let mut names = BTreeSet::new();
    let mut counts = Vec::new();
    for _ in 0..3 {
        let f = d.read_frame().await;
        let it = f.items();
        assert_eq!(it[0], b("unsubscribe"));
        names.insert(it[1].text());
        counts.push(it[2].int());
    }
    assert_eq!(
        names,
        BTreeSet::from(["a".to_string(), "b".to_string(), "c".to_string()])
    );
    assert_eq!(counts, vec![3, 2, 1]);
    d.send(&["UNSUBSCRIBE"]).await;
    d.expect(b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:1\r\n").await;
    // Still subscribed to the pattern, so RESP2 still restricts commands.
    assert_eq!(d.call(&["PING"]).await, sub_pong());
    d.send(&["PUNSUBSCRIBE"]).await;
    assert_eq!(d.read_frame().await, conf("punsubscribe", "p*", 0));
    // Out of pub/sub mode: a normal PING again.
    d.send(&["PING"]).await;
    d.expect(b"+PONG\r\n").await;
    let mut p = s.conn(false).await;
    assert_eq!(publish(&mut p, b"a", b"x").await, 0);
    assert_eq!(publish(&mut p, b"pq", b"x").await, 0);
}

// ---------------------------------------------------------------------------------------
// PUBSUB introspection
// ---------------------------------------------------------------------------------------

fn sorted_texts(f: &Frame) -> Vec<String> {
    let mut v: Vec<String> = f.items().iter().map(Frame::text).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_channels_numsub_numpat() {
    let s = start_server().await;
    let mut a = s.raw().await;
    raw_sub(&mut a, "SUBSCRIBE", &[b"a1", b"a2", b"b1"]).await;
    let mut bconn = s.raw().await;
    raw_sub(&mut bconn, "SUBSCRIBE", &[b"a1"]).await;
    let mut c = s.raw().await;
    raw_sub(&mut c, "PSUBSCRIBE", &[b"foo*"]).await;
    let mut d = s.raw().await;
    raw_sub(&mut d, "PSUBSCRIBE", &[b"foo*", b"bar*"]).await;

    let mut q = s.raw().await;
    assert_eq!(sorted_texts(&q.call(&["PUBSUB", "CHANNELS"]).await), ["a1", "a2", "b1"]);
    assert_eq!(sorted_texts(&q.call(&["PUBSUB", "CHANNELS", "a*"]).await), ["a1", "a2"]);
    assert_eq!(q.call(&["PUBSUB", "CHANNELS", "zz*"]).await, Frame::Array(vec![]));
    // Flat array, argument order, repeats included.
    q.send(&["PUBSUB", "NUMSUB", "a1", "zz", "a1", "a2"]).await;
    q.expect(b"*8\r\n$2\r\na1\r\n:2\r\n$2\r\nzz\r\n:0\r\n$2\r\na1\r\n:2\r\n$2\r\na2\r\n:1\r\n")
        .await;
    q.send(&["PUBSUB", "NUMSUB"]).await;
    q.expect(b"*0\r\n").await;
    // Patterns are not counted by NUMSUB.
    assert_eq!(
        q.call(&["PUBSUB", "NUMSUB", "foo1"]).await,
        arr(&[b("foo1"), Frame::Int(0)])
    );
    // Distinct patterns.
    q.send(&["PUBSUB", "NUMPAT"]).await;
    q.expect(b":2\r\n").await;
    // Case-insensitive names.
    q.send(&["PuBsUb", "NuMpAt"]).await;
    q.expect(b":2\r\n").await;
    // NUMSUB stays an array in RESP3.
    let mut q3 = s.raw().await;
    q3.call(&["HELLO", "3"]).await;
    q3.send(&["PUBSUB", "NUMSUB", "a2"]).await;
    q3.expect(b"*2\r\n$2\r\na2\r\n:1\r\n").await;
    q3.send(&["PUBSUB", "CHANNELS", "b*"]).await;
    q3.expect(b"*1\r\n$2\r\nb1\r\n").await;

    // A closed connection drops its subscriptions.
    drop(bconn);
    drop(c);
    wait_until("a1 to lose its second subscriber", || {
        let addr = s.addr;
        async move {
            let mut q = RawConn::connect(addr).await;
            q.call(&["PUBSUB", "NUMSUB", "a1"]).await == arr(&[b("a1"), Frame::Int(1)])
        }
    })
    .await;
    assert_eq!(q.call(&["PUBSUB", "NUMPAT"]).await, Frame::Int(2));
    // Unsubscribing removes channels from CHANNELS as soon as they are empty.
    a.send(&["UNSUBSCRIBE", "b1"]).await;
    assert_eq!(a.read_frame().await, conf("unsubscribe", "b1", 2));
    assert_eq!(sorted_texts(&q.call(&["PUBSUB", "CHANNELS"]).await), ["a1", "a2"]);
    d.send(&["PUNSUBSCRIBE", "bar*"]).await;
    assert_eq!(d.read_frame().await, conf("punsubscribe", "bar*", 1));
    assert_eq!(q.call(&["PUBSUB", "NUMPAT"]).await, Frame::Int(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_shardchannels_and_shardnumsub() {
    let s = start_server().await;
    let mut a = s.raw().await;
    raw_sub(&mut a, "SSUBSCRIBE", &[b"s1", b"s2"]).await;
    let mut bconn = s.raw().await;
    raw_sub(&mut bconn, "SSUBSCRIBE", &[b"s1"]).await;
    let mut g = s.raw().await;
    raw_sub(&mut g, "SUBSCRIBE", &[b"g1"]).await;

    let mut q = s.raw().await;
    assert_eq!(sorted_texts(&q.call(&["PUBSUB", "SHARDCHANNELS"]).await), ["s1", "s2"]);
    assert_eq!(sorted_texts(&q.call(&["PUBSUB", "SHARDCHANNELS", "*2"]).await), ["s2"]);
    assert_eq!(sorted_texts(&q.call(&["PUBSUB", "CHANNELS"]).await), ["g1"]);
    q.send(&["PUBSUB", "SHARDNUMSUB", "s1", "g1", "s2", "s1"]).await;
    q.expect(b"*8\r\n$2\r\ns1\r\n:2\r\n$2\r\ng1\r\n:0\r\n$2\r\ns2\r\n:1\r\n$2\r\ns1\r\n:2\r\n")
        .await;
    q.send(&["PUBSUB", "NUMSUB", "s1", "g1"]).await;
    q.expect(b"*4\r\n$2\r\ns1\r\n:0\r\n$2\r\ng1\r\n:1\r\n").await;
    q.send(&["PUBSUB", "SHARDNUMSUB"]).await;
    q.expect(b"*0\r\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_help_and_errors() {
    let s = start_server().await;
    for resp3 in [false, true] {
        let mut q = s.raw().await;
        if resp3 {
            q.call(&["HELLO", "3"]).await;
        }
        let help = q.call(&["PUBSUB", "HELP"]).await;
        let Frame::Array(lines) = &help else {
            panic!("PUBSUB HELP is an array: {help:?}")
        };
        assert_eq!(lines.len(), 14, "{help:?}");
        assert!(lines.iter().all(|l| matches!(l, Frame::Simple(_))));
        assert_eq!(
            lines[0],
            Frame::Simple("PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:".into())
        );
        assert_eq!(lines[12], Frame::Simple("HELP".into()));
        assert_eq!(lines[13], Frame::Simple("    Print this help.".into()));
        let text: Vec<String> = lines.iter().map(Frame::text).collect();
        for sub in ["CHANNELS", "NUMPAT", "NUMSUB", "SHARDCHANNELS", "SHARDNUMSUB"] {
            assert!(text.iter().any(|l| l.starts_with(sub)), "{sub} missing from {text:?}");
        }
    }
    let mut q = s.raw().await;
    q.send(&["PUBSUB", "FOO"]).await;
    q.expect_error("ERR unknown subcommand 'FOO'. Try PUBSUB HELP.").await;
    q.send(&["PUBSUB", "NUMPAT", "x"]).await;
    q.expect_error("ERR wrong number of arguments for 'pubsub|numpat' command")
        .await;
    q.send(&["PUBSUB", "HELP", "x"]).await;
    q.expect_error("ERR wrong number of arguments for 'pubsub|help' command")
        .await;
    q.send(&["PUBSUB"]).await;
    q.expect_error("ERR wrong number of arguments for 'pubsub' command")
        .await;
    q.send(&["PUBSUB", "ChAnNeLs", "a", "b"]).await;
    q.expect_error("ERR unknown subcommand or wrong number of arguments for 'ChAnNeLs'. Try PUBSUB HELP.")
        .await;
}

// ---------------------------------------------------------------------------------------
// Binary safety, large payloads, the empty channel
// ---------------------------------------------------------------------------------------

/// Deterministic pseudo-random bytes (every byte value appears).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_channels_payloads_and_one_megabyte() {
    let s = start_server().await;
    let channel: &[u8] = b"bin\0\xff\r\nch\r\n";
    let small: &[u8] = b"\0\xff\r\n$3\r\n*1\r\nend\0";
    let big = noise(1024 * 1024, 0x5eed);

    // A raw RESP2 subscriber, a RESP2 `redis` subscriber and a RESP3 `redis` subscriber.
    let mut raw = s.raw().await;
    raw_sub(&mut raw, "SUBSCRIBE", &[channel]).await;
    let (ready, crate2) = resp2_crate_subscriber(s.url(false), vec![channel.to_vec()], vec![], 2);
    wait_ready(ready).await;
    let (mut sub3, mut rx3) = s.conn_with_pushes().await;
    tokio::time::timeout(WAIT, sub3.subscribe(channel))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next_push(&mut rx3).await.kind, PushKind::Subscribe);

    // PUBSUB sees the binary name exactly.
    let mut q = s.raw().await;
    assert_eq!(
        q.call(&[&b"PUBSUB"[..], b"NUMSUB", channel]).await,
        arr(&[b(channel), Frame::Int(3)])
    );
    assert_eq!(q.call(&["PUBSUB", "CHANNELS"]).await, arr(&[b(channel)]));

    let mut p = s.conn(false).await;
    assert_eq!(publish(&mut p, channel, small).await, 3);
    assert_eq!(publish(&mut p, channel, &big).await, 3);

    let mut expect_small = format!("*3\r\n$7\r\nmessage\r\n${}\r\n", channel.len()).into_bytes();
    expect_small.extend_from_slice(channel);
    expect_small.extend_from_slice(format!("\r\n${}\r\n", small.len()).as_bytes());
    expect_small.extend_from_slice(small);
    expect_small.extend_from_slice(b"\r\n");
    raw.expect(&expect_small).await;
    assert_eq!(raw.read_frame().await, arr(&[b("message"), b(channel), b(&big)]));

    for (i, payload) in [small.to_vec(), big.clone()].iter().enumerate() {
        let m = next_push(&mut rx3).await;
        assert_eq!(m.kind, PushKind::Message, "message {i}");
        assert_eq!(value_bytes(&m.data[0]), channel);
        assert!(value_bytes(&m.data[1]) == *payload, "RESP3 payload {i} intact");
    }
    let msgs = tokio::time::timeout(WAIT, crate2).await.unwrap().unwrap();
    assert_eq!(msgs[0].get_channel::<Vec<u8>>().unwrap(), channel);
    assert_eq!(msgs[0].get_payload_bytes(), small);
    assert!(msgs[1].get_payload_bytes() == big.as_slice(), "RESP2 1 MB intact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_channel_name() {
    let s = start_server().await;
    let mut e = s.raw().await;
    e.send(&["SUBSCRIBE", ""]).await;
    e.expect(b"*3\r\n$9\r\nsubscribe\r\n$0\r\n\r\n:1\r\n").await;
    // `*` does not match the empty channel name.
    let mut star = s.raw().await;
    raw_sub(&mut star, "PSUBSCRIBE", &[b"*"]).await;

    let mut p = s.conn(false).await;
    assert_eq!(publish(&mut p, b"", b"m").await, 1);
    e.expect(b"*3\r\n$7\r\nmessage\r\n$0\r\n\r\n$1\r\nm\r\n").await;
    assert_eq!(star.call(&["PING"]).await, sub_pong(), "`*` must not match \"\"");

    let mut q = s.raw().await;
    assert_eq!(q.call(&["PUBSUB", "NUMSUB", ""]).await, arr(&[b(""), Frame::Int(1)]));
    assert_eq!(q.call(&["PUBSUB", "CHANNELS"]).await, arr(&[b("")]));
    assert_eq!(q.call(&["PUBSUB", "CHANNELS", "*"]).await, arr(&[]));
}

// ---------------------------------------------------------------------------------------
// Ordering and fan-out under load
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_pipelined_publishes_arrive_in_order() {
    const N: usize = 10_000;
    let s = start_server().await;
    let mut sub = s.raw().await;
    raw_sub(&mut sub, "SUBSCRIBE", &[b"seq"]).await;

    let mut p = s.conn(false).await;
    let mut pipe = redis::pipe();
    for i in 0..N {
        pipe.cmd("PUBLISH").arg("seq").arg(i.to_string());
    }
    let counts: Vec<i64> = tokio::time::timeout(WAIT, pipe.query_async(&mut p))
        .await
        .expect("pipeline timed out")
        .unwrap();
    assert_eq!(counts.len(), N);
    assert!(counts.iter().all(|&n| n == 1), "every PUBLISH reached one");
    for i in 0..N {
        let f = sub.read_frame().await;
        assert_eq!(f, arr(&[b("message"), b("seq"), b(i.to_string())]), "message {i}");
    }
    assert_eq!(sub.call(&["PING"]).await, sub_pong());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_keep_their_own_order() {
    const PUBLISHERS: usize = 4;
    const PER: usize = 2_500;
    const SUBSCRIBERS: usize = 3;
    let s = start_server().await;
    let mut subs = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let mut c = s.raw().await;
        raw_sub(&mut c, "SUBSCRIBE", &[b"mix"]).await;
        subs.push(c);
    }
    let mut tasks = Vec::new();
    for k in 0..PUBLISHERS {
        let mut con = s.conn(false).await;
        tasks.push(tokio::spawn(async move {
            for chunk in 0..PER / 250 {
                let mut pipe = redis::pipe();
                for i in chunk * 250..(chunk + 1) * 250 {
                    pipe.cmd("PUBLISH").arg("mix").arg(format!("{k}:{i}"));
                }
                let counts: Vec<i64> = pipe.query_async(&mut con).await.unwrap();
                assert!(counts.iter().all(|&n| n == SUBSCRIBERS as i64));
            }
        }));
    }
    let readers: Vec<_> = subs
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut next = [0usize; PUBLISHERS];
                for _ in 0..PUBLISHERS * PER {
                    let f = c.read_frame().await;
                    let text = f.items()[2].text();
                    let (k, i) = text.split_once(':').unwrap();
                    let (k, i): (usize, usize) = (k.parse().unwrap(), i.parse().unwrap());
                    assert_eq!(i, next[k], "publisher {k} out of order");
                    next[k] += 1;
                }
                assert_eq!(next, [PER; PUBLISHERS]);
            })
        })
        .collect();
    for t in tasks {
        tokio::time::timeout(WAIT * 2, t)
            .await
            .expect("publisher timed out")
            .unwrap();
    }
    for r in readers {
        tokio::time::timeout(WAIT * 2, r)
            .await
            .expect("reader timed out")
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_subscribers_all_receive() {
    const CLIENTS: usize = 200;
    const N: usize = 20;
    let s = start_server().await;
    let mut subs = Vec::new();
    for _ in 0..CLIENTS {
        let mut c = s.raw().await;
        c.send(&["SUBSCRIBE", "fan"]).await;
        subs.push(c);
    }
    for c in &mut subs {
        assert_eq!(c.read_frame().await, conf("subscribe", "fan", 1));
    }
    let mut p = s.conn(false).await;
    for i in 0..N {
        assert_eq!(publish(&mut p, b"fan", i.to_string().as_bytes()).await, CLIENTS as i64);
    }
    let mut q = s.raw().await;
    assert_eq!(
        q.call(&["PUBSUB", "NUMSUB", "fan"]).await,
        arr(&[b("fan"), Frame::Int(CLIENTS as i64)])
    );
    for (ci, c) in subs.iter_mut().enumerate() {
        for i in 0..N {
            assert_eq!(
                c.read_frame().await,
                arr(&[b("message"), b("fan"), b(i.to_string())]),
                "client {ci} message {i}"
            );
        }
    }
}

/// A pipelined batch of publishes is delivered in runs (one queue entry per subscriber
/// for consecutive publishes to the same subscriber set). Whatever the batch mixes,
/// every subscriber must see exactly what one-by-one delivery gives: RESP2 and RESP3
/// encodings, `message`/`pmessage` pairs in order for a client that a pattern also
/// matches, shard channels, and runs broken by alternating channels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_batches_mix_protocols_patterns_and_shards() {
    let s = start_server().await;
    let mut a = s.raw().await;
    raw_sub(&mut a, "SUBSCRIBE", &[b"c", b"c2"]).await;
    let mut b3 = s.raw().await;
    assert!(matches!(b3.call(&["HELLO", "3"]).await, Frame::Map(_)));
    b3.send(&["SUBSCRIBE", "c", "c2"]).await;
    for (i, ch) in ["c", "c2"].iter().enumerate() {
        let f = b3.read_frame().await;
        assert_eq!(f, Frame::Push(vec![b("subscribe"), b(ch), Frame::Int(i as i64 + 1)]));
    }
    let mut q = s.raw().await;
    raw_sub(&mut q, "SUBSCRIBE", &[b"pc"]).await;
    raw_sub(&mut q, "PSUBSCRIBE", &[b"p*"]).await;
    let mut r = s.raw().await;
    raw_sub(&mut r, "SUBSCRIBE", &[b"pc"]).await;
    let mut shard = Vec::new();
    for _ in 0..2 {
        let mut c = s.raw().await;
        raw_sub(&mut c, "SSUBSCRIBE", &[b"s"]).await;
        shard.push(c);
    }

    // One write, so the server reads it as one batch.
    let mut wire = Vec::new();
    let mut expect_counts = Vec::new();
    for i in 0..30 {
        wire.extend(resp_command(&["PUBLISH", "c", &i.to_string()]));
        expect_counts.push(2);
    }
    for i in 0..30 {
        wire.extend(resp_command(&["PUBLISH", "pc", &i.to_string()]));
        expect_counts.push(3);
    }
    for i in 0..30 {
        wire.extend(resp_command(&["SPUBLISH", "s", &i.to_string()]));
        expect_counts.push(2);
    }
    for i in 0..10 {
        wire.extend(resp_command(&["PUBLISH", "c", &format!("x{i}")]));
        wire.extend(resp_command(&["PUBLISH", "c2", &format!("y{i}")]));
        expect_counts.extend([2, 2]);
    }
    let mut p = s.raw().await;
    p.send_raw(&wire).await;
    for (k, want) in expect_counts.iter().enumerate() {
        assert_eq!(p.read_frame().await, Frame::Int(*want), "reply {k}");
    }

    let mut want_a = Vec::new();
    let mut want_b = Vec::new();
    for i in 0..30 {
        want_a.push(arr(&[b("message"), b("c"), b(i.to_string())]));
        want_b.push(Frame::Push(vec![b("message"), b("c"), b(i.to_string())]));
    }
    for i in 0..10 {
        for (ch, m) in [("c", format!("x{i}")), ("c2", format!("y{i}"))] {
            want_a.push(arr(&[b("message"), b(ch), b(&m)]));
            want_b.push(Frame::Push(vec![b("message"), b(ch), b(&m)]));
        }
    }
    for (k, want) in want_a.iter().enumerate() {
        assert_eq!(&a.read_frame().await, want, "RESP2 subscriber, frame {k}");
    }
    for (k, want) in want_b.iter().enumerate() {
        assert_eq!(&b3.read_frame().await, want, "RESP3 subscriber, frame {k}");
    }
    for i in 0..30 {
        let m = i.to_string();
        assert_eq!(
            q.read_frame().await,
            arr(&[b("message"), b("pc"), b(&m)]),
            "q message {i}"
        );
        assert_eq!(
            q.read_frame().await,
            arr(&[b("pmessage"), b("p*"), b("pc"), b(&m)]),
            "q pmessage {i}"
        );
        assert_eq!(
            r.read_frame().await,
            arr(&[b("message"), b("pc"), b(&m)]),
            "r message {i}"
        );
        for c in &mut shard {
            assert_eq!(
                c.read_frame().await,
                arr(&[b("smessage"), b("s"), b(&m)]),
                "smessage {i}"
            );
        }
    }
    for c in [&mut a, &mut q, &mut r] {
        assert_eq!(c.call(&["PING"]).await, sub_pong());
    }
    assert_eq!(b3.call(&["PING"]).await, Frame::Simple("PONG".into()));
}

/// Once a client has read the confirmation of its UNSUBSCRIBE it must receive no further
/// message for that channel until it subscribes again (Redis runs one command at a time,
/// so this always holds there). In RESP2 such a late message would be read as the reply
/// to the client's next command. A publisher floods the channel, which has 20 other
/// (draining) subscribers, while one client subscribes and unsubscribes in a loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_after_unsubscribe_confirmation() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;
    let s = start_server().await;
    let mut drains = Vec::new();
    for _ in 0..20 {
        let mut c = s.raw().await;
        raw_sub(&mut c, "SUBSCRIBE", &[b"w"]).await;
        drains.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = c.stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        }));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let mut con = s.conn(false).await;
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let mut pipe = redis::pipe();
                for i in 0..100 {
                    pipe.cmd("PUBLISH").arg("w").arg(i);
                }
                let r: redis::RedisResult<Vec<i64>> = pipe.query_async(&mut con).await;
                r.expect("publish pipeline");
            }
        })
    };
    let mut x = s.raw().await;
    let mut rounds = 0;
    let mut late = None;
    let started = tokio::time::Instant::now();
    while late.is_none() && started.elapsed() < Duration::from_millis(1500) {
        rounds += 1;
        x.send(&["SUBSCRIBE", "w"]).await;
        let f = x.read_frame().await;
        if f.items()[0] != b("subscribe") {
            // Not subscribed since the last unsubscribe confirmation.
            late = Some(f);
            break;
        }
        x.send(&["UNSUBSCRIBE", "w"]).await;
        while x.read_frame().await.items()[0] != b("unsubscribe") {}
    }
    stop.store(true, Ordering::Relaxed);
    tokio::time::timeout(WAIT, publisher)
        .await
        .expect("publisher did not stop")
        .unwrap();
    for d in drains {
        d.abort();
    }
    if let Some(f) = late {
        let shown: Vec<String> = f.items().iter().map(Frame::text).collect();
        panic!("round {rounds}: {shown:?} arrived after the UNSUBSCRIBE confirmation");
    }
    assert!(rounds > 10, "only {rounds} rounds");
}

// ---------------------------------------------------------------------------------------
// RESP3: HELLO, pushes, publishing to oneself, the subscribed context
// ---------------------------------------------------------------------------------------

fn map_get<'a>(m: &'a [(Frame, Frame)], key: &str) -> &'a Frame {
    &m.iter()
        .find(|(k, _)| k.text() == key)
        .unwrap_or_else(|| panic!("no {key} in {m:?}"))
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_replies() {
    let s = start_server().await;
    let mut c = s.raw().await;
    let id = c.call(&["CLIENT", "ID"]).await.int();
    let hello = c.call(&["HELLO", "3"]).await;
    let Frame::Map(m) = &hello else {
        panic!("HELLO 3 replies with a map: {hello:?}")
    };
    let keys: Vec<String> = m.iter().map(|(k, _)| k.text()).collect();
    assert_eq!(keys, ["server", "version", "proto", "id", "mode", "role", "modules"]);
    assert_eq!(map_get(m, "server"), &b("redis"));
    assert!(map_get(m, "version").text().starts_with("7."), "{hello:?}");
    assert_eq!(map_get(m, "proto"), &Frame::Int(3));
    assert_eq!(map_get(m, "id"), &Frame::Int(id));
    assert_eq!(map_get(m, "mode"), &b("standalone"));
    assert_eq!(map_get(m, "role"), &b("master"));
    assert_eq!(map_get(m, "modules"), &Frame::Array(vec![]));
    // In RESP3 now: null is `_`.
    c.send(&["CLIENT", "GETNAME"]).await;
    c.expect(b"_\r\n").await;

    // HELLO 2 switches back and replies with a flat array.
    let h2 = c.call(&["HELLO", "2"]).await;
    let items = h2.items();
    assert_eq!(items.len(), 14, "{h2:?}");
    assert_eq!(items[4], b("proto"));
    assert_eq!(items[5], Frame::Int(2));
    c.send(&["CLIENT", "GETNAME"]).await;
    c.expect(b"$-1\r\n").await;
    // HELLO with no version keeps the protocol.
    let h = c.call(&["HELLO"]).await;
    assert_eq!(h.items()[5], Frame::Int(2));

    // Errors.
    c.send(&["HELLO", "4"]).await;
    c.expect_error("NOPROTO unsupported protocol version").await;
    c.send(&["HELLO", "x"]).await;
    c.expect_error("ERR Protocol version is not an integer or out of range")
        .await;
    c.send(&["HELLO", "3", "foo"]).await;
    c.expect_error("ERR Syntax error in HELLO option 'foo'").await;
    c.send(&["HELLO", "3", "AUTH", "default"]).await;
    c.expect_error("ERR Syntax error in HELLO option 'AUTH'").await;
    c.send(&["HELLO", "3", "SETNAME", "a b"]).await;
    c.expect_error("ERR Client names cannot contain spaces, newlines or special characters.")
        .await;
    // A failed HELLO leaves the protocol alone.
    c.send(&["CLIENT", "GETNAME"]).await;
    c.expect(b"$-1\r\n").await;
    // HELLO AUTH with no password configured: any password for `default` works.
    let h = c.call(&["HELLO", "2", "AUTH", "default", "whatever"]).await;
    assert_eq!(h.items().len(), 14, "{h:?}");
    c.send(&["HELLO", "2", "AUTH", "someone", "whatever"]).await;
    c.expect_error("WRONGPASS invalid username-password pair or user is disabled.")
        .await;
    // SETNAME through HELLO.
    let h = c.call(&["HELLO", "3", "setname", "viahello"]).await;
    assert!(matches!(h, Frame::Map(_)));
    c.send(&["CLIENT", "GETNAME"]).await;
    c.expect(b"$8\r\nviahello\r\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp3_publish_to_self_reply_before_push() {
    let s = start_server().await;
    let mut c = s.raw().await;
    c.call(&["HELLO", "3"]).await;
    c.send(&["SUBSCRIBE", "ch"]).await;
    c.expect(b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n").await;
    c.send(&["PUBLISH", "ch", "hi"]).await;
    // Redis 7.2: the integer reply first, then the push.
    c.expect(b":1\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n").await;
    // With a matching pattern too: reply, message, pmessage.
    c.send(&["PSUBSCRIBE", "c*"]).await;
    c.expect(b">3\r\n$10\r\npsubscribe\r\n$2\r\nc*\r\n:2\r\n").await;
    c.send(&["PUBLISH", "ch", "yo"]).await;
    c.expect(
        b":2\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nyo\r\n\
          >4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$2\r\nyo\r\n",
    )
    .await;
    // Pipelined: each reply comes before its own pushes, in order.
    let mut two = common::resp_command(&["PUBLISH", "ch", "1"]);
    two.extend(common::resp_command(&["ECHO", "e"]));
    c.send_raw(&two).await;
    c.expect(
        b":2\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\n1\r\n\
          >4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$1\r\n1\r\n$1\r\ne\r\n",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp3_commands_allowed_while_subscribed() {
    let s = start_server().await;
    // Through the redis crate.
    let (mut con, mut rx) = s.conn_with_pushes().await;
    tokio::time::timeout(WAIT, con.subscribe("room"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next_push(&mut rx).await.kind, PushKind::Subscribe);
    let echo: Vec<u8> = redis_query(&mut con, redis::cmd("ECHO").arg("hi")).await;
    assert_eq!(echo, b"hi");
    let pong: String = redis_query(&mut con, &redis::cmd("PING")).await;
    assert_eq!(pong, "PONG");
    let id: i64 = redis_query(&mut con, redis::cmd("CLIENT").arg("ID")).await;
    assert!(id > 0);
    let ok: String = redis_query(&mut con, redis::cmd("CLIENT").arg("SETNAME").arg("sub3")).await;
    assert_eq!(ok, "OK");
    let numsub: Vec<Value> = redis_query(&mut con, redis::cmd("PUBSUB").arg("NUMSUB").arg("room")).await;
    assert_eq!(numsub, vec![Value::BulkString(b"room".to_vec()), Value::Int(1)]);
    let n: i64 = redis_query(&mut con, redis::cmd("PUBLISH").arg("room").arg("self")).await;
    assert_eq!(n, 1);
    let m = next_push(&mut rx).await;
    assert_eq!(m.kind, PushKind::Message);
    assert_eq!(value_bytes(&m.data[1]), b"self");
    let hello: Value = redis_query(&mut con, redis::cmd("HELLO").arg("3")).await;
    assert!(matches!(hello, Value::Map(_)), "{hello:?}");

    // Raw: PING is the plain reply in RESP3, and after HELLO 2 the RESP2 rules apply.
    let mut c = s.raw().await;
    c.call(&["HELLO", "3"]).await;
    raw_sub_resp3(&mut c, "room").await;
    c.send(&["PING"]).await;
    c.expect(b"+PONG\r\n").await;
    c.send(&["PING", "foo"]).await;
    c.expect(b"$3\r\nfoo\r\n").await;
    c.send(&["ECHO", "x"]).await;
    c.expect(b"$1\r\nx\r\n").await;
    let h2 = c.call(&["HELLO", "2"]).await;
    assert_eq!(h2.items().len(), 14);
    c.send(&["ECHO", "x"]).await;
    c.expect_error("ERR Can't execute 'echo': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context").await;
    assert_eq!(c.call(&["PING"]).await, sub_pong());
}

async fn raw_sub_resp3(c: &mut RawConn, ch: &str) {
    c.send(&["SUBSCRIBE", ch]).await;
    let f = c.read_frame().await;
    assert_eq!(f, Frame::Push(vec![b("subscribe"), b(ch), Frame::Int(1)]), "{f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp2_subscribed_context_errors() {
    let s = start_server().await;
    let mut c = s.raw().await;
    raw_sub(&mut c, "SUBSCRIBE", &[b"a"]).await;
    let msg = |name: &str| {
        format!("ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
    };
    for (cmd, name) in [
        (vec!["ECHO", "x"], "echo"),
        (vec!["HELLO", "3"], "hello"),
        (vec!["HELLO"], "hello"),
        (vec!["PUBLISH", "a", "b"], "publish"),
        (vec!["CLIENT", "SETNAME", "n"], "client|setname"),
        (vec!["PUBSUB", "NUMPAT"], "pubsub|numpat"),
        (vec!["SELECT", "0"], "select"),
    ] {
        c.send(&cmd).await;
        c.expect_error(&msg(name)).await;
    }
    // Unknown commands and arity errors win over the context check.
    c.send(&["NOSUCH"]).await;
    c.expect_error("ERR unknown command 'NOSUCH', with args beginning with: ")
        .await;
    c.send(&["ECHO"]).await;
    c.expect_error("ERR wrong number of arguments for 'echo' command").await;
    // HELLO 3 was refused, so this is still RESP2.
    c.send(&["PING"]).await;
    c.expect(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n").await;
    c.send(&["PING", "foo"]).await;
    c.expect(b"*2\r\n$4\r\npong\r\n$3\r\nfoo\r\n").await;
    // Allowed: the subscribe family.
    c.send(&["PSUBSCRIBE", "p"]).await;
    c.expect(b"*3\r\n$10\r\npsubscribe\r\n$1\r\np\r\n:2\r\n").await;
    c.send(&["SSUBSCRIBE", "s"]).await;
    c.expect(b"*3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n").await;
    // Shard subscriptions alone keep the connection in the subscribed context.
    c.send(&["UNSUBSCRIBE"]).await;
    assert_eq!(c.read_frame().await, conf("unsubscribe", "a", 1));
    c.send(&["PUNSUBSCRIBE"]).await;
    assert_eq!(c.read_frame().await, conf("punsubscribe", "p", 0));
    c.send(&["ECHO", "x"]).await;
    c.expect_error(&msg("echo")).await;
    c.send(&["SUNSUBSCRIBE"]).await;
    assert_eq!(c.read_frame().await, conf("sunsubscribe", "s", 0));
    c.send(&["ECHO", "x"]).await;
    c.expect(b"$1\r\nx\r\n").await;
}

// ---------------------------------------------------------------------------------------
// Connection commands
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_echo_quit() {
    let s = start_server().await;
    let mut c = s.raw().await;
    c.send(&["PING"]).await;
    c.expect(b"+PONG\r\n").await;
    c.send(&["ping", "foo"]).await;
    c.expect(b"$3\r\nfoo\r\n").await;
    c.send(&["PING", "a", "b"]).await;
    c.expect_error("ERR wrong number of arguments for 'ping' command").await;
    c.send(&["ECHO", ""]).await;
    c.expect(b"$0\r\n\r\n").await;
    c.send(&[&b"ECHO"[..], b"a\0b\r\n"]).await;
    c.expect(b"$5\r\na\0b\r\n\r\n").await;
    c.send(&["ECHO", "a", "b"]).await;
    c.expect_error("ERR wrong number of arguments for 'echo' command").await;
    // QUIT: +OK, then the connection closes and nothing pipelined after it runs.
    let mut req = common::resp_command(&["QUIT", "extra", "args"]);
    req.extend(common::resp_command(&["PING"]));
    c.send_raw(&req).await;
    c.expect(b"+OK\r\n").await;
    c.expect_eof().await;
    // QUIT while subscribed in RESP2.
    let mut d = s.raw().await;
    raw_sub(&mut d, "SUBSCRIBE", &[b"q"]).await;
    d.send(&["QUIT"]).await;
    d.expect(b"+OK\r\n").await;
    d.expect_eof().await;
    // Through the crate too.
    let mut con = s.conn(false).await;
    let pong: String = redis_query(&mut con, &redis::cmd("PING")).await;
    assert_eq!(pong, "PONG");
    let echo: Vec<u8> = redis_query(&mut con, redis::cmd("ECHO").arg(&b"\xff\x00"[..])).await;
    assert_eq!(echo, b"\xff\x00");
    // The server is still there.
    s.assert_alive().await;
    // The subscription of the QUIT client is gone.
    wait_until("q to lose its subscriber", || {
        let addr = s.addr;
        async move {
            let mut q = RawConn::connect(addr).await;
            q.call(&["PUBSUB", "NUMSUB", "q"]).await == arr(&[b("q"), Frame::Int(0)])
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_command() {
    let s = start_server().await;
    let mut c = s.raw().await;
    let id = c.call(&["CLIENT", "ID"]).await;
    c.call(&["HELLO", "3"]).await;
    c.send(&["CLIENT", "SETNAME", "before"]).await;
    c.expect(b"+OK\r\n").await;
    c.send(&["CLIENT", "SETINFO", "LIB-NAME", "keepme"]).await;
    c.expect(b"+OK\r\n").await;
    raw_sub_resp3(&mut c, "r1").await;
    c.send(&["PSUBSCRIBE", "r*"]).await;
    c.read_frame().await;
    c.send(&["SSUBSCRIBE", "rs"]).await;
    c.read_frame().await;
    // +RESET and nothing else: no unsubscribe pushes.
    c.send(&["RESET"]).await;
    c.expect(b"+RESET\r\n").await;
    // Back to RESP2 (null bulk), name cleared, id kept, not subscribed (ECHO works).
    c.send(&["CLIENT", "GETNAME"]).await;
    c.expect(b"$-1\r\n").await;
    assert_eq!(c.call(&["CLIENT", "ID"]).await, id);
    c.send(&["ECHO", "x"]).await;
    c.expect(b"$1\r\nx\r\n").await;
    c.send(&["PING"]).await;
    c.expect(b"+PONG\r\n").await;
    let info = c.call(&["CLIENT", "INFO"]).await.text();
    assert_eq!(client_field(&info, "resp").as_deref(), Some("2"), "{info}");
    assert_eq!(client_field(&info, "sub").as_deref(), Some("0"), "{info}");
    assert_eq!(client_field(&info, "psub").as_deref(), Some("0"), "{info}");
    assert_eq!(client_field(&info, "ssub").as_deref(), Some("0"), "{info}");
    assert_eq!(client_field(&info, "flags").as_deref(), Some("N"), "{info}");
    assert_eq!(client_field(&info, "name").as_deref(), Some(""), "{info}");
    // [7.2+] library info survives RESET.
    assert_eq!(client_field(&info, "lib-name").as_deref(), Some("keepme"), "{info}");
    // The registry forgot the subscriptions.
    assert_eq!(
        c.call(&["PUBSUB", "NUMSUB", "r1"]).await,
        arr(&[b("r1"), Frame::Int(0)])
    );
    assert_eq!(c.call(&["PUBSUB", "NUMPAT"]).await, Frame::Int(0));
    assert_eq!(
        c.call(&["PUBSUB", "SHARDNUMSUB", "rs"]).await,
        arr(&[b("rs"), Frame::Int(0)])
    );
    assert_eq!(c.call(&["PUBLISH", "r1", "x"]).await, Frame::Int(0));
    // RESET is allowed in the RESP2 subscribed context, and turns CLIENT REPLY back on.
    raw_sub(&mut c, "SUBSCRIBE", &[b"again"]).await;
    c.send(&["RESET"]).await;
    c.expect(b"+RESET\r\n").await;
    c.send(&["CLIENT", "REPLY", "OFF"]).await;
    c.send(&["RESET"]).await;
    c.send(&["PING"]).await;
    c.expect(b"+RESET\r\n+PONG\r\n").await;
    c.send(&["RESET", "x"]).await;
    c.expect_error("ERR wrong number of arguments for 'reset' command")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_command() {
    let s = start_server().await;
    let mut c = s.raw().await;
    for db in 0..16 {
        c.send(&["SELECT", &db.to_string()]).await;
        c.expect(b"+OK\r\n").await;
    }
    c.send(&["SELECT", "16"]).await;
    c.expect_error("ERR DB index is out of range").await;
    c.send(&["SELECT", "-1"]).await;
    c.expect_error("ERR DB index is out of range").await;
    c.send(&["SELECT", "x"]).await;
    c.expect_error("ERR value is not an integer or out of range").await;
    c.send(&["SELECT"]).await;
    c.expect_error("ERR wrong number of arguments for 'select' command")
        .await;
    // Pub/sub ignores the database: a client on db 3 reaches a subscriber on db 0.
    let mut sub = s.raw().await;
    raw_sub(&mut sub, "SUBSCRIBE", &[b"dbch"]).await;
    let client = redis::Client::open(format!("redis://{}/3", s.addr)).unwrap();
    let mut con = tokio::time::timeout(WAIT, client.get_multiplexed_async_connection())
        .await
        .unwrap()
        .expect("redis crate sends SELECT 3 on connect");
    assert_eq!(publish(&mut con, b"dbch", b"m").await, 1);
    let info: String = redis_query(&mut con, redis::cmd("CLIENT").arg("INFO")).await;
    assert_eq!(client_field(&info, "db").as_deref(), Some("3"), "{info}");
    // A URL with db 16 fails to connect.
    let bad = redis::Client::open(format!("redis://{}/16", s.addr)).unwrap();
    let r = tokio::time::timeout(WAIT, bad.get_multiplexed_async_connection())
        .await
        .unwrap();
    assert!(r.is_err(), "SELECT 16 must fail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_without_password_configured() {
    let s = start_server().await;
    let mut c = s.raw().await;
    c.send(&["AUTH", "pw"]).await;
    c.expect_error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?").await;
    c.send(&["AUTH", "default", "anything"]).await;
    c.expect(b"+OK\r\n").await;
    c.send(&["AUTH", "someone", "anything"]).await;
    c.expect_error("WRONGPASS invalid username-password pair or user is disabled.")
        .await;
    c.send(&["AUTH", "a", "b", "c"]).await;
    c.expect_error("ERR syntax error").await;
    c.send(&["AUTH"]).await;
    c.expect_error("ERR wrong number of arguments for 'auth' command").await;
    let mut con = s.conn(false).await;
    let e = redis_expect_err(&mut con, redis::cmd("AUTH").arg("pw")).await;
    assert_eq!(e, "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirepass() {
    let s = start_server_with(&[("requirepass", "pw")]).await;
    let mut c = s.raw().await;
    c.send(&["PUBLISH", "a", "b"]).await;
    c.expect_error("NOAUTH Authentication required.").await;
    c.send(&["SUBSCRIBE", "a"]).await;
    c.expect_error("NOAUTH Authentication required.").await;
    c.send(&["PING", "a", "b"]).await;
    c.expect_error("NOAUTH Authentication required.").await;
    // Unknown commands and arity errors come first.
    c.send(&["NOSUCH", "a"]).await;
    c.expect_error("ERR unknown command 'NOSUCH', with args beginning with: 'a' ")
        .await;
    c.send(&["PUBLISH", "a"]).await;
    c.expect_error("ERR wrong number of arguments for 'publish' command")
        .await;
    c.send(&["HELLO", "3"]).await;
    c.expect_error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time").await;
    c.send(&["AUTH", "wrong"]).await;
    c.expect_error("WRONGPASS invalid username-password pair or user is disabled.")
        .await;
    c.send(&["AUTH", "default", "wrong"]).await;
    c.expect_error("WRONGPASS invalid username-password pair or user is disabled.")
        .await;
    c.send(&["AUTH", "pw"]).await;
    c.expect(b"+OK\r\n").await;
    c.send(&["PUBLISH", "a", "b"]).await;
    c.expect(b":0\r\n").await;
    // RESET logs the connection out again.
    c.send(&["RESET"]).await;
    c.expect(b"+RESET\r\n").await;
    c.send(&["PUBLISH", "a", "b"]).await;
    c.expect_error("NOAUTH Authentication required.").await;
    // QUIT is allowed before AUTH.
    c.send(&["QUIT"]).await;
    c.expect(b"+OK\r\n").await;
    c.expect_eof().await;

    // HELLO 3 AUTH default pw authenticates and switches protocol at once.
    let mut h = s.raw().await;
    let hello = h.call(&["HELLO", "3", "AUTH", "default", "pw"]).await;
    let Frame::Map(m) = &hello else { panic!("{hello:?}") };
    assert_eq!(map_get(m, "proto"), &Frame::Int(3));
    h.send(&["PUBLISH", "a", "b"]).await;
    h.expect(b":0\r\n").await;
    let mut h2 = s.raw().await;
    h2.send(&["HELLO", "3", "AUTH", "default", "nope"]).await;
    h2.expect_error("WRONGPASS invalid username-password pair or user is disabled.")
        .await;
    h2.send(&["HELLO", "3", "AUTH", "other", "pw"]).await;
    h2.expect_error("WRONGPASS invalid username-password pair or user is disabled.")
        .await;

    // The redis crate with a password in the URL (AUTH in RESP2, HELLO AUTH in RESP3).
    for resp3 in [false, true] {
        let url = format!("redis://:pw@{}/{}", s.addr, if resp3 { "?protocol=resp3" } else { "" });
        let client = redis::Client::open(url).unwrap();
        let mut con = tokio::time::timeout(WAIT, client.get_multiplexed_async_connection())
            .await
            .unwrap()
            .expect("authenticated connection");
        assert_eq!(publish(&mut con, b"a", b"b").await, 0);
        let bad = redis::Client::open(format!(
            "redis://:bad@{}/{}",
            s.addr,
            if resp3 { "?protocol=resp3" } else { "" }
        ))
        .unwrap();
        let r = tokio::time::timeout(WAIT, bad.get_multiplexed_async_connection())
            .await
            .unwrap();
        assert!(r.is_err(), "a wrong password must fail (resp3={resp3})");
    }
    // Without a password the crate's commands get NOAUTH.
    let mut con = s.conn(false).await;
    let e = redis_expect_err(&mut con, redis::cmd("PUBLISH").arg("a").arg("b")).await;
    assert_eq!(e, "NOAUTH Authentication required.");
}

// ---------------------------------------------------------------------------------------
// CLIENT
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_id_setname_getname() {
    let s = start_server().await;
    let mut a = s.raw().await;
    let ida = a.call(&["CLIENT", "ID"]).await.int();
    let mut bconn = s.raw().await;
    let idb = bconn.call(&["CLIENT", "ID"]).await.int();
    assert!(ida > 0 && idb > ida, "ids grow: {ida} {idb}");
    drop(bconn);
    let mut c = s.raw().await;
    assert!(c.call(&["CLIENT", "ID"]).await.int() > idb, "ids are not reused");

    a.send(&["CLIENT", "GETNAME"]).await;
    a.expect(b"$-1\r\n").await;
    a.send(&["CLIENT", "SETNAME", "worker-1"]).await;
    a.expect(b"+OK\r\n").await;
    a.send(&["CLIENT", "GETNAME"]).await;
    a.expect(b"$8\r\nworker-1\r\n").await;
    for bad in ["a b", "a\nb", "caf\u{e9}", "tab\t"] {
        a.send(&["CLIENT", "SETNAME", bad]).await;
        a.expect_error("ERR Client names cannot contain spaces, newlines or special characters.")
            .await;
    }
    a.send(&["CLIENT", "GETNAME"]).await;
    a.expect(b"$8\r\nworker-1\r\n").await;
    // An empty name clears it.
    a.send(&["CLIENT", "SETNAME", ""]).await;
    a.expect(b"+OK\r\n").await;
    a.send(&["CLIENT", "GETNAME"]).await;
    a.expect(b"$-1\r\n").await;
    a.send(&["CLIENT", "SETNAME"]).await;
    a.expect_error("ERR wrong number of arguments for 'client|setname' command")
        .await;
    a.send(&["CLIENT", "ID", "x"]).await;
    a.expect_error("ERR wrong number of arguments for 'client|id' command")
        .await;
    a.send(&["CLIENT"]).await;
    a.expect_error("ERR wrong number of arguments for 'client' command")
        .await;
    a.send(&["CLIENT", "FOO"]).await;
    a.expect_error("ERR unknown subcommand 'FOO'. Try CLIENT HELP.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_info_and_list() {
    let s = start_server().await;
    let mut me = s.raw().await;
    let my_id = me.call(&["CLIENT", "ID"]).await.int();
    let info = me.call(&["CLIENT", "INFO"]).await;
    let Frame::Bulk(line) = &info else {
        panic!("CLIENT INFO is a bulk in RESP2: {info:?}")
    };
    let line = String::from_utf8(line.clone()).unwrap();
    assert!(line.ends_with('\n') && line.matches('\n').count() == 1, "{line:?}");
    assert!(line.starts_with(&format!("id={my_id} addr=127.0.0.1:")), "{line}");
    for (k, v) in [
        ("name", ""),
        ("flags", "N"),
        ("db", "0"),
        ("sub", "0"),
        ("psub", "0"),
        ("ssub", "0"),
        ("cmd", "client|info"),
        ("user", "default"),
        ("resp", "2"),
        ("multi", "-1"),
        // The size of `*2\r\n$6\r\nCLIENT\r\n$4\r\nINFO\r\n`, as Redis reports it.
        ("qbuf", "26"),
    ] {
        assert_eq!(client_field(&line, k).as_deref(), Some(v), "{k} in {line}");
    }
    let addr = client_field(&line, "addr").unwrap();
    assert_eq!(addr, me.stream.local_addr().unwrap().to_string());
    assert_eq!(client_field(&line, "laddr").unwrap(), s.addr.to_string(), "{line}");

    // A RESP3 subscriber with every kind of subscription.
    let mut sub = s.raw().await;
    let sub_id = sub.call(&["CLIENT", "ID"]).await.int();
    sub.call(&["HELLO", "3"]).await;
    sub.send(&["CLIENT", "SETNAME", "subber"]).await;
    sub.expect(b"+OK\r\n").await;
    sub.send(&["SUBSCRIBE", "c1", "c2"]).await;
    sub.read_frame().await;
    sub.read_frame().await;
    sub.send(&["PSUBSCRIBE", "p*"]).await;
    sub.read_frame().await;
    sub.send(&["SSUBSCRIBE", "s1"]).await;
    sub.read_frame().await;
    // RESP3 CLIENT INFO is a verbatim string.
    let v = sub.call(&["CLIENT", "INFO"]).await;
    let Frame::Verbatim(fmt, text) = &v else {
        panic!("CLIENT INFO is verbatim in RESP3: {v:?}")
    };
    assert_eq!(fmt, "txt");
    let text = String::from_utf8(text.clone()).unwrap();
    for (k, val) in [
        ("name", "subber"),
        ("sub", "2"),
        ("psub", "1"),
        ("ssub", "1"),
        ("flags", "P"),
        ("resp", "3"),
    ] {
        assert_eq!(client_field(&text, k).as_deref(), Some(val), "{k} in {text}");
    }

    // CLIENT LIST: one line per client; TYPE pubsub only the subscriber.
    let all = me.call(&["CLIENT", "LIST"]).await.text();
    let ids: BTreeSet<i64> = all
        .lines()
        .map(|l| client_field(l, "id").unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, BTreeSet::from([my_id, sub_id]), "{all}");
    assert!(all.ends_with('\n'));
    let me_line = all
        .lines()
        .find(|l| client_field(l, "id") == Some(my_id.to_string()))
        .unwrap();
    assert_eq!(client_field(me_line, "cmd").as_deref(), Some("client|list"));
    assert_eq!(client_field(me_line, "qbuf").as_deref(), Some("26"), "{me_line}");
    let ps = me.call(&["CLIENT", "LIST", "TYPE", "pubsub"]).await.text();
    assert_eq!(ps.lines().count(), 1, "{ps}");
    assert_eq!(client_field(&ps, "id"), Some(sub_id.to_string()));
    assert_eq!(client_field(&ps, "flags").as_deref(), Some("P"));
    let normal = me.call(&["CLIENT", "LIST", "TYPE", "NORMAL"]).await.text();
    assert_eq!(client_field(&normal, "id"), Some(my_id.to_string()));
    assert_eq!(normal.lines().count(), 1, "{normal}");
    assert_eq!(me.call(&["CLIENT", "LIST", "TYPE", "replica"]).await, b(""));
    let by_id = me
        .call(&["CLIENT", "LIST", "ID", &sub_id.to_string(), "999999"])
        .await
        .text();
    assert_eq!(by_id.lines().count(), 1, "{by_id}");
    assert_eq!(client_field(&by_id, "name").as_deref(), Some("subber"));
    me.send(&["CLIENT", "LIST", "TYPE", "bogus"]).await;
    me.expect_error("ERR Unknown client type 'bogus'").await;
    me.send(&["CLIENT", "LIST", "ID", "x"]).await;
    me.expect_error("ERR Invalid client ID").await;
    me.send(&["CLIENT", "LIST", "foo"]).await;
    me.expect_error("ERR syntax error").await;

    // The redis crate sets its library name with CLIENT SETINFO (7.2).
    let mut con = s.conn(false).await;
    let info: String = redis_query(&mut con, redis::cmd("CLIENT").arg("INFO")).await;
    assert_eq!(client_field(&info, "lib-name").as_deref(), Some("redis-rs"), "{info}");
    // After the subscriber unsubscribes from everything it is a normal client again.
    sub.send(&["UNSUBSCRIBE"]).await;
    sub.read_frame().await;
    sub.read_frame().await;
    sub.send(&["PUNSUBSCRIBE"]).await;
    sub.read_frame().await;
    let still = me.call(&["CLIENT", "LIST", "TYPE", "pubsub"]).await.text();
    assert_eq!(client_field(&still, "flags").as_deref(), Some("P"), "ssub left");
    sub.send(&["SUNSUBSCRIBE"]).await;
    sub.read_frame().await;
    assert_eq!(me.call(&["CLIENT", "LIST", "TYPE", "pubsub"]).await, b(""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_kill() {
    let s = start_server().await;
    let mut me = s.raw().await;
    let my_id = me.call(&["CLIENT", "ID"]).await.int();

    // By ID: replies with the number killed; the victim's connection closes.
    let mut v1 = s.raw().await;
    let v1_id = v1.call(&["CLIENT", "ID"]).await.int();
    me.send(&["CLIENT", "KILL", "ID", &v1_id.to_string()]).await;
    me.expect(b":1\r\n").await;
    v1.expect_eof().await;
    me.send(&["CLIENT", "KILL", "ID", &v1_id.to_string()]).await;
    me.expect(b":0\r\n").await;

    // Old form, by address: +OK.
    let mut v2 = s.raw().await;
    v2.call(&["PING"]).await;
    let v2_addr = v2.stream.local_addr().unwrap().to_string();
    me.send(&["CLIENT", "KILL", &v2_addr]).await;
    me.expect(b"+OK\r\n").await;
    v2.expect_eof().await;
    me.send(&["CLIENT", "KILL", &v2_addr]).await;
    me.expect_error("ERR No such client").await;

    // New form, ADDR filter.
    let mut v3 = s.raw().await;
    v3.call(&["PING"]).await;
    let v3_addr = v3.stream.local_addr().unwrap().to_string();
    me.send(&["CLIENT", "KILL", "ADDR", &v3_addr]).await;
    me.expect(b":1\r\n").await;
    v3.expect_eof().await;

    // TYPE pubsub kills only subscribers.
    let mut s1 = s.raw().await;
    raw_sub(&mut s1, "SUBSCRIBE", &[b"k"]).await;
    let mut s2 = s.raw().await;
    raw_sub(&mut s2, "SSUBSCRIBE", &[b"k"]).await;
    let mut bystander = s.raw().await;
    bystander.call(&["PING"]).await;
    me.send(&["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    me.expect(b":2\r\n").await;
    s1.expect_eof().await;
    s2.expect_eof().await;
    bystander.send(&["PING"]).await;
    bystander.expect(b"+PONG\r\n").await;

    // LADDR: every connection made to this listener, except the caller.
    let mut l1 = s.raw().await;
    l1.call(&["PING"]).await;
    me.send(&["CLIENT", "KILL", "LADDR", &s.addr.to_string()]).await;
    me.expect(b":2\r\n").await; // l1 and the bystander
    l1.expect_eof().await;
    bystander.expect_eof().await;
    let mut bystander = s.raw().await;
    bystander.call(&["PING"]).await;
    me.send(&["CLIENT", "KILL", "LADDR", "127.0.0.1:1"]).await;
    me.expect(b":0\r\n").await;

    // SKIPME: by default the caller is skipped.
    me.send(&["CLIENT", "KILL", "ID", &my_id.to_string()]).await;
    me.expect(b":0\r\n").await;
    me.send(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]).await;
    me.expect(b":1\r\n").await; // the bystander
    bystander.expect_eof().await;

    // Errors.
    for (args, err) in [
        (vec!["ID", "0"], "ERR client-id should be greater than 0"),
        (vec!["ID", "x"], "ERR client-id should be greater than 0"),
        (vec!["TYPE", "bogus"], "ERR Unknown client type 'bogus'"),
        (vec!["USER", "nobody"], "ERR No such user 'nobody'"),
        (vec!["ID", "1", "SKIPME", "maybe"], "ERR syntax error"),
        (vec!["ID", "1", "TYPE"], "ERR syntax error"),
        (vec!["FOO", "bar"], "ERR syntax error"),
    ] {
        let mut full = vec!["CLIENT", "KILL"];
        full.extend(args.iter().copied());
        me.send(&full).await;
        me.expect_error(err).await;
    }
    me.send(&["CLIENT", "KILL"]).await;
    me.expect_error("ERR wrong number of arguments for 'client|kill' command")
        .await;
    // connected_clients follows: only this connection is left.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let info = me.call(&["INFO", "clients"]).await.text();
        if info_field(&info, "connected_clients").as_deref() == Some("1") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{info}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // SKIPME no: the caller kills itself; the reply comes first, then the close.
    me.send(&["CLIENT", "KILL", "ID", &my_id.to_string(), "SKIPME", "no"])
        .await;
    me.expect(b":1\r\n").await;
    me.expect_eof().await;
    // Old form on oneself: +OK, then the close.
    let mut selfk = s.raw().await;
    selfk.call(&["PING"]).await;
    let addr = selfk.stream.local_addr().unwrap().to_string();
    selfk.send(&["CLIENT", "KILL", &addr]).await;
    selfk.expect(b"+OK\r\n").await;
    selfk.expect_eof().await;
    s.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reply_modes() {
    let s = start_server().await;
    let mut c = s.raw().await;
    // OFF: no reply to itself or to anything after it, until ON.
    let mut req = Vec::new();
    for cmd in [
        vec!["CLIENT", "REPLY", "OFF"],
        vec!["PING"],
        vec!["ECHO", "hidden"],
        vec!["NOSUCH"],
        vec!["CLIENT", "REPLY", "ON"],
        vec!["PING"],
    ] {
        req.extend(common::resp_command(&cmd));
    }
    c.send_raw(&req).await;
    c.expect(b"+OK\r\n+PONG\r\n").await;
    // SKIP silences the next command only.
    let mut req = Vec::new();
    for cmd in [vec!["CLIENT", "REPLY", "SKIP"], vec!["ECHO", "a"], vec!["ECHO", "b"]] {
        req.extend(common::resp_command(&cmd));
    }
    c.send_raw(&req).await;
    c.expect(b"$1\r\nb\r\n").await;
    // SKIP has no effect while OFF is set.
    let mut req = Vec::new();
    for cmd in [
        vec!["CLIENT", "REPLY", "OFF"],
        vec!["CLIENT", "REPLY", "SKIP"],
        vec!["ECHO", "a"],
        vec!["ECHO", "b"],
        vec!["CLIENT", "REPLY", "ON"],
        vec!["ECHO", "c"],
    ] {
        req.extend(common::resp_command(&cmd));
    }
    c.send_raw(&req).await;
    c.expect(b"+OK\r\n$1\r\nc\r\n").await;
    c.send(&["CLIENT", "REPLY", "foo"]).await;
    c.expect_error("ERR syntax error").await;

    // Pushes and confirmations still go out while silenced, RESP3 ...
    let mut r3 = s.raw().await;
    r3.call(&["HELLO", "3"]).await;
    r3.send(&["CLIENT", "REPLY", "OFF"]).await;
    r3.send(&["SUBSCRIBE", "quiet"]).await;
    r3.expect(b">3\r\n$9\r\nsubscribe\r\n$5\r\nquiet\r\n:1\r\n").await;
    // ... and RESP2.
    let mut r2 = s.raw().await;
    r2.send(&["CLIENT", "REPLY", "OFF"]).await;
    r2.send(&["SUBSCRIBE", "quiet"]).await;
    r2.expect(b"*3\r\n$9\r\nsubscribe\r\n$5\r\nquiet\r\n:1\r\n").await;

    let mut p = s.conn(false).await;
    assert_eq!(publish(&mut p, b"quiet", b"m").await, 2);
    r3.expect(b">3\r\n$7\r\nmessage\r\n$5\r\nquiet\r\n$1\r\nm\r\n").await;
    r2.expect(b"*3\r\n$7\r\nmessage\r\n$5\r\nquiet\r\n$1\r\nm\r\n").await;
    // Ordinary replies stay silenced (PING in RESP3 is a reply, not a push).
    r3.send(&["PING"]).await;
    r3.send(&["UNSUBSCRIBE", "quiet"]).await;
    r3.expect(b">3\r\n$11\r\nunsubscribe\r\n$5\r\nquiet\r\n:0\r\n").await;
    r2.send(&["UNSUBSCRIBE"]).await;
    r2.expect(b"*3\r\n$11\r\nunsubscribe\r\n$5\r\nquiet\r\n:0\r\n").await;
    r3.expect_silence(Duration::from_millis(50)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_no_evict_setinfo_help() {
    let s = start_server().await;
    let mut c = s.raw().await;
    c.send(&["CLIENT", "NO-EVICT", "on"]).await;
    c.expect(b"+OK\r\n").await;
    let info = c.call(&["CLIENT", "INFO"]).await.text();
    assert!(client_field(&info, "flags").unwrap().contains('e'), "{info}");
    c.send(&["CLIENT", "NO-EVICT", "OFF"]).await;
    c.expect(b"+OK\r\n").await;
    let info = c.call(&["CLIENT", "INFO"]).await.text();
    assert_eq!(client_field(&info, "flags").as_deref(), Some("N"), "{info}");
    c.send(&["CLIENT", "NO-EVICT", "maybe"]).await;
    c.expect_error("ERR syntax error").await;
    c.send(&["CLIENT", "NO-EVICT"]).await;
    c.expect_error("ERR wrong number of arguments for 'client|no-evict' command")
        .await;

    // NO-TOUCH [7.2+].
    c.send(&["CLIENT", "NO-TOUCH", "on"]).await;
    c.expect(b"+OK\r\n").await;
    c.send(&["CLIENT", "NO-TOUCH", "off"]).await;
    c.expect(b"+OK\r\n").await;
    c.send(&["CLIENT", "NO-TOUCH", "x"]).await;
    c.expect_error("ERR syntax error").await;

    // SETINFO [7.2+].
    c.send(&["CLIENT", "SETINFO", "lib-name", "mylib"]).await;
    c.expect(b"+OK\r\n").await;
    c.send(&["CLIENT", "SETINFO", "LIB-VER", "1.2.3"]).await;
    c.expect(b"+OK\r\n").await;
    let info = c.call(&["CLIENT", "INFO"]).await.text();
    assert_eq!(client_field(&info, "lib-name").as_deref(), Some("mylib"));
    assert_eq!(client_field(&info, "lib-ver").as_deref(), Some("1.2.3"));
    c.send(&["CLIENT", "SETINFO", "LIB-VER", "1 0"]).await;
    c.expect_error("ERR LIB-VER cannot contain spaces, newlines or special characters.")
        .await;
    c.send(&["CLIENT", "SETINFO", "lib-name", "a\nb"]).await;
    c.expect_error("ERR lib-name cannot contain spaces, newlines or special characters.")
        .await;
    c.send(&["CLIENT", "SETINFO", "foo", "bar"]).await;
    c.expect_error("ERR Unrecognized option 'foo'").await;
    c.send(&["CLIENT", "SETINFO", "lib-name"]).await;
    c.expect_error("ERR wrong number of arguments for 'client|setinfo' command")
        .await;
    // An empty value clears the field.
    c.send(&["CLIENT", "SETINFO", "lib-name", ""]).await;
    c.expect(b"+OK\r\n").await;
    let info = c.call(&["CLIENT", "INFO"]).await.text();
    assert_eq!(client_field(&info, "lib-name").as_deref(), Some(""), "{info}");

    // HELP: status lines, Redis's header, HELP at the end.
    let help = c.call(&["CLIENT", "HELP"]).await;
    let lines = help.items();
    assert!(lines.iter().all(|l| matches!(l, Frame::Simple(_))), "{help:?}");
    assert_eq!(
        lines[0].text(),
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    );
    assert_eq!(lines[lines.len() - 2].text(), "HELP");
    assert_eq!(lines[lines.len() - 1].text(), "    Print this help.");
    let text: Vec<String> = lines.iter().map(Frame::text).collect();
    for sub in [
        "GETNAME", "ID", "INFO", "KILL", "LIST", "REPLY", "SETNAME", "SETINFO", "NO-EVICT",
    ] {
        assert!(text.iter().any(|l| l.starts_with(sub)), "{sub} in {text:?}");
    }
}

// ---------------------------------------------------------------------------------------
// COMMAND, INFO, CONFIG
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_count_info_docs_list() {
    let s = start_server().await;
    let mut c = s.raw().await;
    let count = c.call(&["COMMAND", "COUNT"]).await.int();
    let all = c.call(&["COMMAND"]).await;
    assert_eq!(all.items().len() as i64, count);
    let names: BTreeSet<String> = all.items().iter().map(|e| e.items()[0].text()).collect();
    for n in [
        "subscribe",
        "psubscribe",
        "ssubscribe",
        "unsubscribe",
        "punsubscribe",
        "sunsubscribe",
        "publish",
        "spublish",
        "pubsub",
        "ping",
        "echo",
        "quit",
        "reset",
        "hello",
        "auth",
        "select",
        "client",
        "command",
        "info",
        "config",
    ] {
        assert!(names.contains(n), "{n} missing from COMMAND");
    }

    // COMMAND INFO publish: 10 items, arity 3.
    let info = c.call(&["COMMAND", "INFO", "publish"]).await;
    let entry = &info.items()[0];
    let e = entry.items();
    assert_eq!(e.len(), 10, "{entry:?}");
    assert_eq!(e[0], b("publish"));
    assert_eq!(e[1], Frame::Int(3));
    let flags: Vec<String> = e[2].items().iter().map(Frame::text).collect();
    for f in ["pubsub", "fast"] {
        assert!(flags.contains(&f.to_string()), "{flags:?}");
    }
    assert_eq!(&e[3..6], &[Frame::Int(0), Frame::Int(0), Frame::Int(0)]);
    let acl: Vec<String> = e[6].items().iter().map(Frame::text).collect();
    assert!(acl.contains(&"@pubsub".to_string()), "{acl:?}");
    // Several names, unknown ones null, subcommands by full name, any case.
    let info = c
        .call(&["COMMAND", "INFO", "SUBSCRIBE", "nosuch", "pubsub|numsub"])
        .await;
    let items = info.items();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].items()[1], Frame::Int(-2));
    assert_eq!(items[1], Frame::Null);
    assert_eq!(items[2].items()[0], b("pubsub|numsub"));
    assert_eq!(items[2].items()[1], Frame::Int(-2));
    // PUBSUB's subcommands are listed in its entry.
    let pubsub = c.call(&["COMMAND", "INFO", "pubsub"]).await;
    let subs: BTreeSet<String> = pubsub.items()[0].items()[9]
        .items()
        .iter()
        .map(|s| s.items()[0].text())
        .collect();
    for sub in ["channels", "numsub", "numpat", "shardchannels", "shardnumsub", "help"] {
        assert!(subs.contains(&format!("pubsub|{sub}")), "{subs:?}");
    }

    // COMMAND DOCS in RESP3: a map from name to a doc map.
    let mut con = s.conn(true).await;
    let docs: Value = redis_query(&mut con, redis::cmd("COMMAND").arg("DOCS").arg("publish")).await;
    let Value::Map(top) = &docs else {
        panic!("COMMAND DOCS is a map in RESP3: {docs:?}")
    };
    assert_eq!(top.len(), 1);
    assert_eq!(value_bytes(&top[0].0), b"publish");
    let Value::Map(doc) = &top[0].1 else {
        panic!("doc is a map: {docs:?}")
    };
    let doc: HashMap<String, &Value> = doc
        .iter()
        .map(|(k, v)| (String::from_utf8(value_bytes(k)).unwrap(), v))
        .collect();
    assert_eq!(value_bytes(doc["since"]), b"2.0.0");
    assert_eq!(value_bytes(doc["group"]), b"pubsub");
    assert!(!value_bytes(doc["summary"]).is_empty());
    assert!(!value_bytes(doc["complexity"]).is_empty());
    let Value::Array(args) = doc["arguments"] else {
        panic!("arguments: {:?}", doc["arguments"])
    };
    assert_eq!(args.len(), 2, "channel and message");
    // RESP2: a flat array of name, doc.
    let flat = c.call(&["COMMAND", "DOCS", "publish", "nosuch"]).await;
    assert_eq!(flat.items().len(), 2, "{flat:?}");
    assert_eq!(flat.items()[0], b("publish"));

    // COMMAND LIST: every command, subcommands included.
    let list = c.call(&["COMMAND", "LIST"]).await;
    let listed: BTreeSet<String> = list.items().iter().map(Frame::text).collect();
    assert!(listed.is_superset(&names), "COMMAND LIST has every command");
    assert!(listed.contains("pubsub|numpat"), "{listed:?}");
    let filtered = c.call(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "*subscribe"]).await;
    let filtered: BTreeSet<String> = filtered.items().iter().map(Frame::text).collect();
    assert_eq!(
        filtered,
        [
            "psubscribe",
            "punsubscribe",
            "ssubscribe",
            "subscribe",
            "sunsubscribe",
            "unsubscribe"
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    );
    c.send(&["COMMAND", "COUNT", "x"]).await;
    c.expect_error("ERR wrong number of arguments for 'command|count' command")
        .await;
    c.send(&["COMMAND", "FOO"]).await;
    c.expect_error("ERR unknown subcommand 'FOO'. Try COMMAND HELP.").await;
    c.send(&["COMMAND", "GETKEYS", "publish", "a", "b"]).await;
    c.expect_error("ERR The command has no key arguments").await;
}

/// COMMAND GETKEYS and COMMAND INFO read the stream and generic key rows as Redis does:
/// XREAD's keys follow STREAMS and stop halfway through the rest, container subcommands
/// have their key after the subcommand, RENAME and COPY have two key specs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_getkeys_for_stream_and_key_commands() {
    let s = start_server().await;
    let mut c = s.raw().await;
    for (cmd, keys) in [
        (
            &["xread", "count", "1", "streams", "a", "b", "0", "0"][..],
            &["a", "b"][..],
        ),
        (&["xreadgroup", "group", "g", "c", "streams", "a", "0"], &["a"]),
        (&["xgroup", "create", "k", "g", "$"], &["k"]),
        (&["xinfo", "consumers", "k", "g"], &["k"]),
        (&["del", "a", "b", "c"], &["a", "b", "c"]),
        (&["rename", "a", "b"], &["a", "b"]),
        (&["copy", "a", "b"], &["a", "b"]),
        (&["object", "encoding", "k"], &["k"]),
    ] {
        let mut req = vec!["COMMAND", "GETKEYS"];
        req.extend_from_slice(cmd);
        let got: Vec<String> = c.call(&req).await.items().iter().map(Frame::text).collect();
        assert_eq!(got, keys, "{cmd:?}");
    }
    let info = c.call(&["COMMAND", "INFO", "xread"]).await;
    let e = info.items()[0].items();
    let flags: Vec<String> = e[2].items().iter().map(Frame::text).collect();
    assert_eq!(flags, ["readonly", "blocking", "movablekeys"]);
    assert_eq!(&e[3..6], &[Frame::Int(0), Frame::Int(0), Frame::Int(0)]);
    let info = c.call(&["COMMAND", "INFO", "rename"]).await;
    let e = info.items()[0].items();
    assert_eq!(&e[3..6], &[Frame::Int(1), Frame::Int(2), Frame::Int(1)]);
    assert!(!e[2].items().iter().any(|f| f.text() == "movablekeys"));
}

/// Redis 7: `COMMAND INFO` with no names describes every command, like `COMMAND`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_info_without_names_lists_all() {
    let s = start_server().await;
    let mut c = s.raw().await;
    let count = c.call(&["COMMAND", "COUNT"]).await.int();
    let all = c.call(&["COMMAND"]).await;
    let info = c.call(&["COMMAND", "INFO"]).await;
    assert_eq!(info.items().len() as i64, count, "COMMAND INFO with no names");
    assert_eq!(info, all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_sections_and_counters() {
    let s = start_server().await;
    let mut c = s.raw().await;
    let info = c.call(&["INFO"]).await;
    let Frame::Bulk(text) = &info else {
        panic!("INFO is a bulk in RESP2: {info:?}")
    };
    let text = String::from_utf8(text.clone()).unwrap();
    for section in ["# Server", "# Clients", "# Stats", "# Persistence", "# Replication"] {
        assert!(text.contains(&format!("{section}\r\n")), "{section} in {text}");
    }
    assert!(text.contains("\r\n\r\n"), "blank line after each section");
    assert!(info_field(&text, "redis_version").unwrap().starts_with("7."));
    assert_eq!(info_field(&text, "loading").as_deref(), Some("0"));
    assert_eq!(info_field(&text, "role").as_deref(), Some("master"));
    assert_eq!(info_field(&text, "tcp_port"), Some(s.addr.port().to_string()));
    assert_eq!(info_field(&text, "connected_clients").as_deref(), Some("1"));
    assert_eq!(info_field(&text, "maxclients").as_deref(), Some("10000"));
    assert_eq!(info_field(&text, "pubsub_channels").as_deref(), Some("0"));
    assert_eq!(info_field(&text, "pubsub_patterns").as_deref(), Some("0"));

    // Only the asked-for sections.
    let clients = c.call(&["INFO", "clients"]).await.text();
    assert!(clients.starts_with("# Clients\r\n"), "{clients}");
    assert!(!clients.contains("# Server"), "{clients}");
    let two = c.call(&["INFO", "server", "STATS"]).await.text();
    assert!(two.contains("# Server\r\n") && two.contains("# Stats\r\n"));
    assert!(!two.contains("# Clients"), "{two}");
    c.send(&["INFO", "nosuchsection"]).await;
    c.expect(b"$0\r\n\r\n").await;

    // Values move as clients subscribe.
    let mut a = s.raw().await;
    raw_sub(&mut a, "SUBSCRIBE", &[b"i1", b"i2"]).await;
    raw_sub(&mut a, "PSUBSCRIBE", &[b"x*"]).await;
    let mut bconn = s.raw().await;
    raw_sub(&mut bconn, "SUBSCRIBE", &[b"i1"]).await;
    raw_sub(&mut bconn, "PSUBSCRIBE", &[b"x*", b"y*"]).await;
    raw_sub(&mut bconn, "SSUBSCRIBE", &[b"sh1", b"sh2", b"sh3"]).await;
    let stats = c.call(&["INFO"]).await.text();
    assert_eq!(info_field(&stats, "pubsubshard_channels").as_deref(), Some("3"));
    assert_eq!(info_field(&stats, "pubsub_channels").as_deref(), Some("2"));
    assert_eq!(
        info_field(&stats, "pubsub_patterns").as_deref(),
        Some("2"),
        "distinct patterns"
    );
    assert_eq!(info_field(&stats, "connected_clients").as_deref(), Some("3"));
    let received: u64 = info_field(&stats, "total_connections_received")
        .unwrap()
        .parse()
        .unwrap();
    assert!(received >= 3);
    drop(a);
    wait_until("INFO to see the closed subscriber", || {
        let addr = s.addr;
        async move {
            let mut q = RawConn::connect(addr).await;
            let t = q.call(&["INFO"]).await.text();
            info_field(&t, "pubsub_channels").as_deref() == Some("1")
                && info_field(&t, "pubsub_patterns").as_deref() == Some("2")
                && info_field(&t, "connected_clients").as_deref() == Some("3")
        }
    })
    .await;

    // RESP3: verbatim.
    let mut r3 = s.raw().await;
    r3.call(&["HELLO", "3"]).await;
    let v = r3.call(&["INFO", "server"]).await;
    let Frame::Verbatim(fmt, body) = &v else {
        panic!("INFO is verbatim in RESP3: {v:?}")
    };
    assert_eq!(fmt, "txt");
    assert!(body.starts_with(b"# Server\r\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_get_set_resetstat() {
    let s = start_server().await;
    let mut c = s.raw().await;
    assert_eq!(
        c.call(&["CONFIG", "GET", "maxclients"]).await,
        arr(&[b("maxclients"), b("10000")])
    );
    assert_eq!(
        c.call(&["CONFIG", "GET", "MAXCL*"]).await,
        arr(&[b("maxclients"), b("10000")]),
        "globs match names without regard to case"
    );
    assert_eq!(
        c.call(&["CONFIG", "GET", "client-output-buffer-limit"]).await,
        arr(&[
            b("client-output-buffer-limit"),
            b("normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60")
        ])
    );
    assert_eq!(c.call(&["CONFIG", "GET", "nosuch"]).await, arr(&[]));
    // Several patterns, globs.
    // (Pairs come in hash order in Redis, so compare them as a set.)
    let both = c.call(&["CONFIG", "GET", "maxcl*", "proto-max-bulk-len"]).await;
    let pairs: BTreeSet<(String, String)> = both.items().chunks(2).map(|kv| (kv[0].text(), kv[1].text())).collect();
    assert_eq!(
        pairs,
        BTreeSet::from([
            ("maxclients".to_string(), "10000".to_string()),
            ("proto-max-bulk-len".to_string(), "536870912".to_string())
        ])
    );
    // Normalised: units, the replica alias, only the listed classes change.
    c.send(&[
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "pubsub 1mb 512kb 30 REPLICA 1m 2k 3",
    ])
    .await;
    c.expect(b"+OK\r\n").await;
    assert_eq!(
        c.call(&["CONFIG", "GET", "client-output-buffer-limit"]).await,
        arr(&[
            b("client-output-buffer-limit"),
            b("normal 0 0 0 slave 1000000 2000 3 pubsub 1048576 524288 30")
        ])
    );
    c.send(&["CONFIG", "SET", "maxclients", "500"]).await;
    c.expect(b"+OK\r\n").await;
    assert_eq!(
        c.call(&["CONFIG", "GET", "maxclients"]).await,
        arr(&[b("maxclients"), b("500")])
    );
    // RESP3: a map.
    let mut r3 = s.raw().await;
    r3.call(&["HELLO", "3"]).await;
    r3.send(&["CONFIG", "GET", "maxclients"]).await;
    r3.expect(b"%1\r\n$10\r\nmaxclients\r\n$3\r\n500\r\n").await;

    // Errors.
    let prefix = "ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - ";
    for (value, reason) in [
        ("pubsub 1 2", "Wrong number of arguments in buffer limit configuration."),
        (
            "master 1 2 3",
            "Invalid client class specified in buffer limit configuration.",
        ),
        (
            "pubsub 1x 2 3",
            "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
        ),
        (
            "pubsub 1 2 3s",
            "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
        ),
    ] {
        c.send(&["CONFIG", "SET", "client-output-buffer-limit", value]).await;
        c.expect_error(&format!("{prefix}{reason}")).await;
    }
    // Nothing was applied by the failures.
    assert_eq!(
        c.call(&["CONFIG", "GET", "client-output-buffer-limit"]).await.items()[1],
        b("normal 0 0 0 slave 1000000 2000 3 pubsub 1048576 524288 30")
    );
    c.send(&["CONFIG", "SET", "nosuch", "1"]).await;
    c.expect_error("ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'")
        .await;
    c.send(&["CONFIG", "SET", "maxclients"]).await;
    c.expect_error("ERR wrong number of arguments for 'config|set' command")
        .await;
    c.send(&["CONFIG", "GET"]).await;
    c.expect_error("ERR wrong number of arguments for 'config|get' command")
        .await;
    c.send(&["CONFIG", "FOO"]).await;
    c.expect_error("ERR unknown subcommand 'FOO'. Try CONFIG HELP.").await;

    // RESETSTAT.
    for _ in 0..5 {
        c.call(&["PING"]).await;
    }
    let before = c.call(&["INFO", "stats"]).await.text();
    let n: u64 = info_field(&before, "total_commands_processed")
        .unwrap()
        .parse()
        .unwrap();
    assert!(n >= 10, "{before}");
    assert!(
        info_field(&before, "total_error_replies")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 5
    );
    c.send(&["CONFIG", "RESETSTAT"]).await;
    c.expect(b"+OK\r\n").await;
    let after = c.call(&["INFO", "stats"]).await.text();
    let n: u64 = info_field(&after, "total_commands_processed").unwrap().parse().unwrap();
    assert!(n <= 2, "counter reset: {after}");
    assert_eq!(info_field(&after, "total_error_replies").as_deref(), Some("0"));
}

/// Redis parses integer arguments strictly (`string2ll`): no `+` sign, no leading zeros,
/// no spaces, no decimals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_integer_arguments() {
    fn brief(f: &Frame) -> String {
        match f {
            Frame::Error(e) | Frame::Simple(e) => e.clone(),
            Frame::Int(n) => format!(":{n}"),
            Frame::Map(_) => "a HELLO map (accepted)".into(),
            Frame::Bulk(b) | Frame::Verbatim(_, b) => format!("a {}-byte string", b.len()),
            other => format!("{other:?}"),
        }
    }
    let s = start_server().await;
    let mut c = s.raw().await;
    let err = |m: &str| Frame::Error(m.to_string());
    let mut wrong = Vec::new();
    for v in ["03", "+3", " 3", "3.0"] {
        let r = c.call(&["HELLO", v]).await;
        if r != err("ERR Protocol version is not an integer or out of range") {
            wrong.push(format!("HELLO {v:?} -> {}", brief(&r)));
        }
    }
    for v in ["01", "+1", " 1", "1.0", "1 ", "-0"] {
        let r = c.call(&["SELECT", v]).await;
        if r != err("ERR value is not an integer or out of range") {
            wrong.push(format!("SELECT {v:?} -> {}", brief(&r)));
        }
    }
    let mut victim = s.raw().await;
    let id = victim.call(&["CLIENT", "ID"]).await.int();
    let v = format!("+{id}");
    let r = c.call(&["CLIENT", "KILL", "ID", &v]).await;
    if r != err("ERR client-id should be greater than 0") {
        wrong.push(format!("CLIENT KILL ID {v:?} -> {}", brief(&r)));
    }
    let id = c.call(&["CLIENT", "ID"]).await.int();
    let v = format!("0{id}");
    let r = c.call(&["CLIENT", "LIST", "ID", &v]).await;
    if r != err("ERR Invalid client ID") {
        wrong.push(format!("CLIENT LIST ID {v:?} -> {}", brief(&r)));
    }
    assert!(wrong.is_empty(), "lax integer parsing:\n{}", wrong.join("\n"));
    // Still RESP2, still connected.
    c.send(&["CLIENT", "GETNAME"]).await;
    c.expect(b"$-1\r\n").await;
}

/// CLIENT LIST ID takes any integer; ids that match nobody (0, negative) list nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_list_id_zero_or_negative_is_empty() {
    let s = start_server().await;
    let mut c = s.raw().await;
    for id in ["0", "-1"] {
        assert_eq!(c.call(&["CLIENT", "LIST", "ID", id]).await, b(""), "ID {id}");
    }
}

/// An unknown COMMAND LIST filter is a syntax error, not an empty list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_list_filterby_unknown_is_syntax_error() {
    let s = start_server().await;
    let mut c = s.raw().await;
    assert_eq!(
        c.call(&["COMMAND", "LIST", "FILTERBY", "FOO", "x"]).await,
        Frame::Error("ERR syntax error".into())
    );
    assert_eq!(
        c.call(&["COMMAND", "LIST", "FILTERBY", "PATTERN"]).await,
        Frame::Error("ERR syntax error".into())
    );
}

/// The defaults the reference (§6.12) lists; clients and test helpers read several of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_get_reference_defaults() {
    let s = start_server().await;
    let mut c = s.raw().await;
    let mut wrong = Vec::new();
    for (name, value) in [
        ("maxclients", "10000"),
        ("databases", "16"),
        ("proto-max-bulk-len", "536870912"),
        ("client-query-buffer-limit", "1073741824"),
        ("timeout", "0"),
        ("notify-keyspace-events", ""),
        ("save", ""),
        ("appendonly", "no"),
    ] {
        let r = c.call(&["CONFIG", "GET", name]).await;
        if r != arr(&[b(name), b(value)]) {
            wrong.push(format!("CONFIG GET {name} -> {r:?}, expected {value:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Redis looks a name without glob characters up directly (without regard to case)
/// and replies with the name as the client sent it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_get_exact_name_is_echoed_as_sent() {
    let s = start_server().await;
    let mut c = s.raw().await;
    c.send(&["CONFIG", "GET", "MAXCLIENTS"]).await;
    c.expect(b"*2\r\n$10\r\nMAXCLIENTS\r\n$5\r\n10000\r\n").await;
    c.send(&["CONFIG", "GET", "MaxClients", "maxcl*"]).await;
    c.expect(b"*2\r\n$10\r\nMaxClients\r\n$5\r\n10000\r\n").await;
}

// ---------------------------------------------------------------------------------------
// Generic errors
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_command_and_arity_errors() {
    let s = start_server().await;
    let mut c = s.raw().await;
    c.send(&["NOSUCH", "a", "b"]).await;
    c.expect_error("ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' ")
        .await;
    c.send(&["nosuch"]).await;
    c.expect_error("ERR unknown command 'nosuch', with args beginning with: ")
        .await;
    // Arguments are cut at about 128 characters.
    let long = "z".repeat(300);
    c.send(&["NOSUCH", &long, "next"]).await;
    c.expect_error(&format!(
        "ERR unknown command 'NOSUCH', with args beginning with: '{}' ",
        "z".repeat(128)
    ))
    .await;
    // CR/LF inside an error become spaces.
    c.send(&["NO\r\nSUCH"]).await;
    c.expect_error("ERR unknown command 'NO  SUCH', with args beginning with: ")
        .await;
    for (cmd, name) in [
        (vec!["PUBLISH", "a"], "publish"),
        (vec!["PUBLISH", "a", "b", "c"], "publish"),
        (vec!["SPUBLISH", "a"], "spublish"),
        (vec!["PUBSUB", "NUMPAT", "x"], "pubsub|numpat"),
        (vec!["ECHO"], "echo"),
        (vec!["SELECT"], "select"),
        (vec!["CONFIG", "GET"], "config|get"),
        (vec!["CLIENT", "KILL"], "client|kill"),
        (vec!["COMMAND", "GETKEYS"], "command|getkeys"),
    ] {
        c.send(&cmd).await;
        c.expect_error(&format!("ERR wrong number of arguments for '{name}' command"))
            .await;
    }
    c.send(&["PUBSUB", "FOO"]).await;
    c.expect_error("ERR unknown subcommand 'FOO'. Try PUBSUB HELP.").await;
    c.send(&["client", "foo"]).await;
    c.expect_error("ERR unknown subcommand 'foo'. Try CLIENT HELP.").await;
    // The connection is still fine.
    c.send(&["PING"]).await;
    c.expect(b"+PONG\r\n").await;

    // Through the crate the same texts arrive.
    let mut con = s.conn(false).await;
    let e = redis_expect_err(&mut con, redis::cmd("NOSUCH").arg("a").arg("b")).await;
    assert_eq!(e, "ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' ");
    let e = redis_expect_err(&mut con, redis::cmd("PUBSUB").arg("NUMPAT").arg("x")).await;
    assert_eq!(e, "ERR wrong number of arguments for 'pubsub|numpat' command");
}
