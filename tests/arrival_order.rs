//! Commands sent on different connections run in the order they arrived, as on Redis's one
//! thread, with fanout's multi-threaded runtime: UNSUBSCRIBE (or PUNSUBSCRIBE,
//! SUNSUBSCRIBE) sent on one connection without reading its reply, then PUBLISH on another
//! right after, must count no receiver. Redis's own suite does exactly this
//! (`PUBLISH/SUBSCRIBE after UNSUBSCRIBE without arguments` and its variants), and so does
//! client code that subscribes without waiting and publishes from another connection.
//!
//! Without `server::arrival` the PUBLISH ran first in about half of the tries (the task
//! woken last in a batch of readiness events runs first); with it, 0 to 1 in 3,000 with a
//! raw-socket probe. The test allows a few lost races (the wait for an earlier connection
//! is bounded, and CI machines are busy), far below what the bug gives.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};

use common::*;

const TRIES: usize = 300;
/// Lost races allowed out of [`TRIES`]: 2% (the bug lost about 50%).
const ALLOWED: usize = TRIES / 50;

/// Blocking raw connection: the two writes go out back to back, as Redis's test client
/// sends them.
struct Conn {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let w = TcpStream::connect(addr).expect("connect");
        w.set_nodelay(true).unwrap();
        w.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        Conn {
            r: BufReader::new(w.try_clone().unwrap()),
            w,
        }
    }

    fn send(&mut self, args: &[&str]) {
        self.w.write_all(&resp_command(args)).unwrap();
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).expect("read");
        assert!(!l.is_empty(), "connection closed");
        l.trim_end().to_string()
    }
}

/// Runs the race `TRIES` times: subscribe with `sub` (reading the confirmation), send
/// `unsub` without reading, then `publish` on the other connection. Returns how many
/// publishes counted a receiver.
fn lost_races(addr: SocketAddr, sub: &str, unsub: &str, publish: &str, channel: &str) -> usize {
    let mut publisher = Conn::open(addr);
    let mut lost = 0;
    for _ in 0..TRIES {
        let mut subscriber = Conn::open(addr);
        subscriber.send(&[sub, "chan1"]);
        for _ in 0..6 {
            subscriber.line(); // *3, kind, channel, count
        }
        subscriber.send(&[unsub]);
        publisher.send(&[publish, channel, "hello"]);
        let n = publisher.line();
        if n != ":0" {
            assert_eq!(n, ":1", "unexpected reply");
            lost += 1;
        }
    }
    lost
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_after_an_unread_unsubscribe_on_another_connection_counts_none() {
    let server = start_server().await;
    let addr = server.addr;
    let cases = [
        ("SUBSCRIBE", "UNSUBSCRIBE", "PUBLISH", "chan1"),
        ("PSUBSCRIBE", "PUNSUBSCRIBE", "PUBLISH", "chan1"),
        ("SSUBSCRIBE", "SUNSUBSCRIBE", "SPUBLISH", "chan1"),
    ];
    for (sub, unsub, publish, channel) in cases {
        let lost = tokio::task::spawn_blocking(move || lost_races(addr, sub, unsub, publish, channel))
            .await
            .unwrap();
        assert!(
            lost <= ALLOWED,
            "{publish} ran before the other connection's {unsub} in {lost} of {TRIES} tries"
        );
    }
}
