//! Hostile clients: garbage floods and pathological glob patterns must neither stop the
//! server from serving well-behaved clients nor make it hold on to memory, and must never
//! hang it.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The tests here measure this process's memory; they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a hang detector waits before declaring the server stuck.
const HANG: Duration = Duration::from_secs(10);

/// xorshift64*: deterministic, dependency-free noise.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// One hostile request of a kind picked at random.
fn garbage(rng: &mut Rng) -> Vec<u8> {
    match rng.below(10) {
        // Random bytes.
        0 => {
            let n = 1 + rng.below(8192) as usize;
            rng.bytes(n)
        }
        // A multibulk count at i32::MAX, then a bulk header over proto-max-bulk-len.
        1 => b"*2147483647\r\n$536870913\r\n".to_vec(),
        // A multibulk count at i32::MAX followed by small elements, then silence.
        2 => {
            let mut v = b"*2147483647\r\n".to_vec();
            for _ in 0..rng.below(2000) {
                v.extend_from_slice(b"$1\r\nx\r\n");
            }
            v
        }
        // A 70 KB inline line, without and with its newline.
        3 => {
            let mut v = vec![b'A'; 70 * 1024];
            if rng.below(2) == 0 {
                v.extend_from_slice(b"\r\n");
            }
            v
        }
        // An 80 KB line: always over the inline limit.
        4 => vec![b'x'; 80 * 1024],
        // Unbalanced quotes.
        5 => b"PUBLISH \"ch hello\r\nSUBSCRIBE 'x\r\n".to_vec(),
        // A bulk announced at the limit, then part of its payload, then nothing.
        6 => {
            let mut v = b"*2\r\n$7\r\nPUBLISH\r\n$536870912\r\n".to_vec();
            let n = rng.below(512 * 1024) as usize;
            v.extend(std::iter::repeat_n(b'p', n));
            v
        }
        // Headers that are too long, and overflowing or malformed counts.
        7 => match rng.below(5) {
            0 => b"*99999999999999999999999\r\n".to_vec(),
            1 => b"*-9223372036854775809\r\n".to_vec(),
            2 => [b"*1\r\n$".as_slice(), &vec![b'9'; 70 * 1024]].concat(),
            3 => b"*1\r\n$-5\r\n".to_vec(),
            _ => b"*3\r\n$3\r\nSET\r\n?3\r\n".to_vec(),
        },
        // Pipelined unknown commands with binary arguments.
        8 => {
            let mut v = Vec::new();
            for _ in 0..200 {
                let arg = rng.bytes(16);
                v.extend_from_slice(&resp_command(&[b"NOSUCH".as_slice(), &arg]));
            }
            v
        }
        // Cross-protocol: an HTTP request (closed at once, as Redis does).
        _ => b"POST / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
    }
}

/// Sends garbage on fresh connections until `deadline`; returns how many it opened.
async fn flood(addr: SocketAddr, seed: u64, deadline: Instant) -> usize {
    let mut rng = Rng(seed | 1);
    let mut connections = 0;
    while Instant::now() < deadline {
        let Ok(Ok(mut s)) = tokio::time::timeout(WAIT, TcpStream::connect(addr)).await else {
            continue;
        };
        connections += 1;
        let bytes = garbage(&mut rng);
        // The server may close (protocol error) before everything is written.
        let _ = tokio::time::timeout(Duration::from_millis(500), s.write_all(&bytes)).await;
        // Read whatever comes back, briefly, then hang up.
        let mut sink = [0u8; 4096];
        let until = tokio::time::Instant::now() + Duration::from_millis(20 + rng.below(200));
        while let Ok(Ok(n)) = tokio::time::timeout_at(until, s.read(&mut sink)).await {
            if n == 0 {
                break;
            }
        }
    }
    connections
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_flood_does_not_disturb_normal_clients_or_leak_memory() {
    let _serial = SERIAL.lock().await;
    let server = start_server().await;
    let mut pinger = server.raw().await;
    let mut subscriber = server.raw().await;
    let mut churn = server.raw().await;
    subscriber.send(&["SUBSCRIBE", "ch"]).await;
    subscriber.read_frame().await;

    // Warm up, then take the baseline.
    for _ in 0..10 {
        assert_eq!(pinger.call(&["PING"]).await, Frame::Simple("PONG".into()));
    }
    let (rss_before, size_before) = (vm_rss_kb(), vm_size_kb());

    let deadline = Instant::now() + Duration::from_secs(2);
    let floods: Vec<_> = (0..20u64)
        .map(|i| tokio::spawn(flood(server.addr, 0x9E37_79B9_7F4A_7C15 ^ (i << 32), deadline)))
        .collect();

    let mut rounds = 0u64;
    while Instant::now() < deadline {
        assert_eq!(pinger.call(&["PING"]).await, Frame::Simple("PONG".into()));
        let payload = format!("m{rounds}");
        assert_eq!(pinger.call(&["PUBLISH", "ch", &payload]).await, Frame::Int(1));
        assert_eq!(
            subscriber.read_frame().await,
            Frame::Array(vec![Frame::bulk("message"), Frame::bulk("ch"), Frame::bulk(&payload)])
        );
        let tmp = format!("tmp{}", rounds % 7);
        assert_eq!(
            churn.call(&["SUBSCRIBE", &tmp]).await,
            Frame::Array(vec![Frame::bulk("subscribe"), Frame::bulk(&tmp), Frame::Int(1)])
        );
        assert_eq!(
            churn.call(&["UNSUBSCRIBE", &tmp]).await,
            Frame::Array(vec![Frame::bulk("unsubscribe"), Frame::bulk(&tmp), Frame::Int(0)])
        );
        rounds += 1;
    }
    let mut opened = 0;
    for f in floods {
        opened += tokio::time::timeout(HANG, f)
            .await
            .expect("flood task hung")
            .expect("flood task");
    }
    assert!(
        rounds >= 10,
        "only {rounds} normal round trips completed during the flood"
    );
    assert!(opened >= 20, "only {opened} hostile connections were opened");

    // Every hostile connection is gone once its peer hung up.
    wait_until("hostile connections to be dropped", || {
        let n = server.broker.clients.len();
        async move { n == 3 }
    })
    .await;
    server.assert_alive().await;
    assert_eq!(pinger.call(&["PUBSUB", "NUMSUB", "ch"]).await.items()[1], Frame::Int(1));

    let (rss_after, size_after) = (vm_rss_kb(), vm_size_kb());
    let rss_growth = rss_after.saturating_sub(rss_before) / 1024;
    let size_growth = size_after.saturating_sub(size_before) / 1024;
    println!(
        "{opened} hostile connections, {rounds} normal rounds; RSS {} -> {} MB, VmSize {} -> {} MB",
        rss_before / 1024,
        rss_after / 1024,
        size_before / 1024,
        size_after / 1024
    );
    assert!(rss_growth < 100, "RSS grew by {rss_growth} MB");
    // Virtual size also counts address space that malloc reserves for a thread's arena
    // (64 MB, untouched), so it gets a little more room; a header whose announced size was
    // reserved up front (`*2147483647`, `$536870912`) would blow through it.
    assert!(size_growth < 160, "VmSize grew by {size_growth} MB");
}

/// Runs `f` against the hang detector.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(HANG, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {HANG:?}; the server hangs"))
}

#[tokio::test]
async fn hostile_glob_patterns_finish() {
    let _serial = SERIAL.lock().await;
    let server = start_server().await;
    let mut sub = server.raw().await;
    let mut c = server.raw().await;

    let stars = |n: usize, tail: &str| format!("{}{tail}", "*a".repeat(n));
    // 500 star groups, each with more pattern after it: the classic exponential case for a
    // naive backtracking matcher, against channels made of 'a' with no 'b' in them.
    let no_b = stars(500, "b");
    // The same, ending in a star: matches any run of at least 500 'a'.
    let any_500 = stars(500, "*");
    // Ends in 'a': matches a channel of at least 500 'a' that ends in 'a'.
    let ends_a = stars(500, "");
    // Over Redis's nesting limit (1000 star groups): never matches, even where it would.
    let over_limit = stars(1200, "");
    // Sets and question marks between the stars.
    let sets = format!("{}!", "*[a-z]?".repeat(300));
    // A 100 KB pattern.
    let huge = stars(50_000, "");
    let patterns = [&no_b, &any_500, &ends_a, &over_limit, &sets, &huge];
    for (i, p) in patterns.iter().enumerate() {
        let reply = bounded("PSUBSCRIBE", sub.call(&["PSUBSCRIBE", p])).await;
        assert_eq!(reply.items()[2], Frame::Int(i as i64 + 1));
    }

    // A 20,000-byte channel of 'a': matched by any_500 and ends_a only.
    let long = "a".repeat(20_000);
    let n = bounded("PUBLISH", c.call(&["PUBLISH", &long, "x"])).await;
    assert_eq!(n, Frame::Int(2));
    let mut got = Vec::new();
    for _ in 0..2 {
        let m = bounded("pmessage", sub.read_frame()).await;
        got.push(m.items()[1].text());
    }
    got.sort();
    let mut want = vec![any_500.clone(), ends_a.clone()];
    want.sort();
    assert_eq!(got, want);

    // A channel with a 'b' at the very end: no_b now matches too.
    let with_b = format!("{}b", "a".repeat(10_000));
    let n = bounded("PUBLISH", c.call(&["PUBLISH", &with_b, "y"])).await;
    assert_eq!(n, Frame::Int(2), "no_b and any_500");

    // PUBSUB CHANNELS with hostile patterns over many long channels.
    let mut holder = server.raw().await;
    let names: Vec<String> = (0..20).map(|i| format!("{}{i}", "a".repeat(2_000))).collect();
    for name in &names {
        bounded("SUBSCRIBE", holder.call(&["SUBSCRIBE", name])).await;
    }
    let all = bounded("PUBSUB CHANNELS", c.call(&["PUBSUB", "CHANNELS", &any_500])).await;
    assert_eq!(all.items().len(), 20);
    for p in [&no_b, &ends_a, &over_limit, &sets, &huge] {
        let none = bounded("PUBSUB CHANNELS", c.call(&["PUBSUB", "CHANNELS", p])).await;
        assert_eq!(none.items().len(), 0, "pattern of {} bytes", p.len());
    }

    // CONFIG GET matches case-insensitively through the same matcher.
    let reply = bounded("CONFIG GET", c.call(&["CONFIG", "GET", &stars(500, "b")])).await;
    assert_eq!(reply, Frame::Array(vec![]));

    bounded("PING", server.assert_alive()).await;
}
