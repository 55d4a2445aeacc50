//! Network-facing settings end to end: the Unix socket listener (`unixsocket`,
//! `unixsocketperm`), protected mode, `max-subscriptions-per-client`, `timeout` and
//! `tcp-keepalive`.
//!
//! Protected mode needs a client whose address is not loopback. Rather than send traffic to
//! one of the host's own interface addresses, that test re-runs itself inside a private
//! network namespace (`unshare --net`, root only) where it gives `lo` the extra address
//! 198.18.0.1 (the benchmarking range): a connection from there to there is not loopback to
//! the server, and no packet can leave the namespace. Where namespaces are unavailable the
//! test prints why and passes without checking.

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// Redis's protected-mode refusal, word for word (networking.c), as fanout must send it.
const DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// A raw RESP connection over any stream (Unix or TCP), every read bounded by [`WAIT`].
struct Raw<S> {
    s: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Raw<S> {
    fn new(s: S) -> Self {
        Raw { s, buf: Vec::new() }
    }

    async fn send(&mut self, args: &[&str]) {
        tokio::time::timeout(WAIT, self.s.write_all(&resp_command(args)))
            .await
            .expect("write timed out")
            .expect("write");
    }

    /// One reply, or `None` at EOF / reset.
    async fn try_frame(&mut self) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some((f, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return Some(f);
            }
            let mut chunk = [0u8; 16 * 1024];
            match tokio::time::timeout_at(deadline, self.s.read(&mut chunk)).await {
                Err(_) => panic!(
                    "no reply within {WAIT:?}; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(Ok(0)) | Ok(Err(_)) => return None,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    async fn frame(&mut self) -> Frame {
        self.try_frame()
            .await
            .expect("connection closed while waiting for a reply")
    }

    async fn call(&mut self, args: &[&str]) -> Frame {
        self.send(args).await;
        self.frame().await
    }

    /// Everything the server sends until it closes the connection (bounded by [`WAIT`]).
    async fn read_to_eof(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut chunk = [0u8; 4096];
        loop {
            match tokio::time::timeout_at(deadline, self.s.read(&mut chunk)).await {
                Err(_) => panic!(
                    "connection still open after {WAIT:?}; got {:?}",
                    String::from_utf8_lossy(&out)
                ),
                Ok(Ok(0)) | Ok(Err(_)) => return out,
                Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

async fn tcp(addr: std::net::SocketAddr) -> Raw<TcpStream> {
    let s = tokio::time::timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect");
    Raw::new(s)
}

async fn unix(path: &Path) -> Raw<UnixStream> {
    let s = tokio::time::timeout(WAIT, UnixStream::connect(path))
        .await
        .expect("connect timed out")
        .expect("connect");
    Raw::new(s)
}

fn arr(items: &[Frame]) -> Frame {
    Frame::Array(items.to_vec())
}

fn b(s: &str) -> Frame {
    Frame::bulk(s)
}

fn msg(channel: &str, payload: &str) -> Frame {
    arr(&[b("message"), b(channel), b(payload)])
}

/// A fresh private directory for socket files, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "fanout-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The CLIENT LIST line of the client with this `name`.
fn line_named(list: &str, name: &str) -> String {
    list.lines()
        .find(|l| client_field(l, "name").as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no client named {name} in {list}"))
        .to_string()
}

#[tokio::test]
async fn unix_socket_serves_pubsub_alongside_tcp_and_is_removed_at_shutdown() {
    let dir = TempDir::new("unix");
    let path = dir.0.join("fanout.sock");
    let path_str = path.to_str().unwrap().to_string();
    let server = start_server_with(&[("unixsocket", &path_str), ("unixsocketperm", "700")]).await;

    let meta = std::fs::metadata(&path).expect("socket file exists");
    assert!(meta.file_type().is_socket(), "{path:?} is not a socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o700, "unixsocketperm 700");

    // Unix subscriber, TCP publisher.
    let mut usub = unix(&path).await;
    assert_eq!(
        usub.call(&["SUBSCRIBE", "ch"]).await,
        arr(&[b("subscribe"), b("ch"), Frame::Int(1)])
    );
    let mut tcp_pub = server.raw().await;
    assert_eq!(tcp_pub.call(&["PUBLISH", "ch", "from-tcp"]).await, Frame::Int(1));
    assert_eq!(usub.frame().await, msg("ch", "from-tcp"));

    // TCP subscriber, Unix publisher.
    let mut tsub = server.raw().await;
    assert_eq!(
        tsub.call(&["SUBSCRIBE", "ch2"]).await,
        arr(&[b("subscribe"), b("ch2"), Frame::Int(1)])
    );
    let mut upub = unix(&path).await;
    assert_eq!(upub.call(&["PUBLISH", "ch2", "from-unix"]).await, Frame::Int(1));
    assert_eq!(tsub.read_frame().await, msg("ch2", "from-unix"));

    // CLIENT LIST: the Unix client shows flags=U and addr/laddr <path>:0; TCP ones do not.
    assert_eq!(upub.call(&["CLIENT", "SETNAME", "u"]).await, Frame::Simple("OK".into()));
    assert_eq!(
        tcp_pub.call(&["CLIENT", "SETNAME", "t"]).await,
        Frame::Simple("OK".into())
    );
    let list = upub.call(&["CLIENT", "LIST"]).await.text();
    let u = line_named(&list, "u");
    let expected_addr = format!("{path_str}:0");
    assert_eq!(client_field(&u, "addr").as_deref(), Some(expected_addr.as_str()), "{u}");
    assert_eq!(
        client_field(&u, "laddr").as_deref(),
        Some(expected_addr.as_str()),
        "{u}"
    );
    assert_eq!(client_field(&u, "flags").as_deref(), Some("U"), "{u}");
    let t = line_named(&list, "t");
    assert_eq!(client_field(&t, "flags").as_deref(), Some("N"), "{t}");
    assert!(client_field(&t, "addr").unwrap().starts_with("127.0.0.1:"), "{t}");
    // The subscribed Unix client has both P and U.
    let info = upub.call(&["CLIENT", "LIST", "TYPE", "pubsub"]).await.text();
    let sub_line = info
        .lines()
        .find(|l| client_field(l, "addr").as_deref() == Some(expected_addr.as_str()))
        .expect("the Unix subscriber is listed");
    assert_eq!(client_field(sub_line, "flags").as_deref(), Some("PU"), "{sub_line}");

    // The `redis` crate over the Unix socket.
    let client = redis::Client::open(format!("redis+unix://{path_str}")).expect("redis+unix URL");
    let mut con = tokio::time::timeout(WAIT, client.get_multiplexed_async_connection())
        .await
        .expect("connect timed out")
        .expect("redis+unix connect");
    let pong: String = redis_query(&mut con, &redis::cmd("PING")).await;
    assert_eq!(pong, "PONG");
    let n: i64 = redis_query(&mut con, redis::cmd("PUBLISH").arg("ch").arg("from-crate")).await;
    assert_eq!(n, 1);
    assert_eq!(usub.frame().await, msg("ch", "from-crate"));

    // Protected mode (on by default, no password) still serves Unix clients: checked above.
    // Shutdown removes the socket file.
    drop(con);
    server.stop.cancel();
    let deadline = Instant::now() + WAIT;
    while path.exists() {
        assert!(Instant::now() < deadline, "{path:?} still exists after shutdown");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        usub.try_frame().await.is_none(),
        "the Unix client is closed at shutdown"
    );
}

#[tokio::test]
async fn unix_socket_replaces_a_stale_socket_file() {
    let dir = TempDir::new("stale");
    let path = dir.0.join("fanout.sock");
    // A socket file left behind by a previous run that did not clean up.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let _server = start_server_with(&[("unixsocket", path.to_str().unwrap())]).await;
    let mut c = unix(&path).await;
    assert_eq!(c.call(&["PING"]).await, Frame::Simple("PONG".into()));
}

// ---- protected mode ----------------------------------------------------------------

/// The address the namespaced run gives `lo` besides 127.0.0.1.
const OUTSIDE_IP: &str = "198.18.0.1";
/// Set in the environment of the namespaced re-run.
const NETNS_ENV: &str = "FANOUT_TEST_IN_NETNS";

/// Re-runs `protected_mode_inside_private_netns` inside a new network namespace.
#[test]
fn protected_mode_refuses_non_loopback_peers() {
    if std::env::var_os(NETNS_ENV).is_some() {
        return;
    }
    let probe = std::process::Command::new("unshare").args(["--net", "true"]).output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            println!(
                "SKIPPED: protected mode not checked: cannot create a network namespace (unshare --net: {})",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return;
        }
        Err(e) => {
            println!("SKIPPED: protected mode not checked: unshare unavailable ({e})");
            return;
        }
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("unshare")
        .arg("--net")
        .arg("--")
        .arg(&exe)
        .args([
            "--exact",
            "protected_mode_inside_private_netns",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(NETNS_ENV, "1")
        .output()
        .expect("run the test binary in a network namespace");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "namespaced run failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the namespaced test did not run:\n{stdout}\n{stderr}"
    );
    if stdout.contains("SKIPPED") {
        println!("{stdout}");
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Only meaningful inside the namespace set up by `protected_mode_refuses_non_loopback_peers`;
/// it configures `lo`, so it refuses to run anywhere else.
#[tokio::test]
#[ignore = "run by protected_mode_refuses_non_loopback_peers inside a private network namespace"]
async fn protected_mode_inside_private_netns() {
    if std::env::var_os(NETNS_ENV).is_none() {
        println!("not inside the test's network namespace: nothing checked");
        return;
    }
    if let Err(e) =
        ip(&["link", "set", "lo", "up"]).and_then(|_| ip(&["addr", "add", &format!("{OUTSIDE_IP}/32"), "dev", "lo"]))
    {
        println!("SKIPPED: protected mode not checked: {e}");
        return;
    }
    let outside: std::net::IpAddr = OUTSIDE_IP.parse().unwrap();
    let loopback: std::net::IpAddr = "127.0.0.1".parse().unwrap();

    /// Connects from OUTSIDE_IP (bound explicitly, so the peer address is certain).
    async fn from_outside(port: u16) -> Raw<TcpStream> {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(std::net::SocketAddr::new(OUTSIDE_IP.parse().unwrap(), 0))
            .unwrap();
        let s = tokio::time::timeout(
            WAIT,
            sock.connect(std::net::SocketAddr::new(OUTSIDE_IP.parse().unwrap(), port)),
        )
        .await
        .expect("connect timed out")
        .expect("connect");
        Raw::new(s)
    }

    // Protected mode on (the default), no password: DENIED, then EOF.
    let server = start_server_with(&[("bind", "0.0.0.0")]).await;
    let port = server.addr.port();
    let mut c = from_outside(port).await;
    let got = c.read_to_eof().await;
    assert_eq!(String::from_utf8_lossy(&got), DENIED);
    // Sending a command first changes nothing: the refusal is all there is.
    let mut c = from_outside(port).await;
    c.send(&["PING"]).await;
    assert_eq!(String::from_utf8_lossy(&c.read_to_eof().await), DENIED);
    // Loopback is served.
    let mut local = tcp(std::net::SocketAddr::new(loopback, port)).await;
    assert_eq!(local.call(&["PING"]).await, Frame::Simple("PONG".into()));
    // A refused peer is never a client: no id consumed, not listed.
    let list = local.call(&["CLIENT", "LIST"]).await.text();
    assert_eq!(list.lines().count(), 1, "{list}");
    assert!(!list.contains(OUTSIDE_IP), "{list}");
    // CONFIG SET protected-mode no from loopback opens the door for new connections.
    assert_eq!(
        local.call(&["CONFIG", "SET", "protected-mode", "no"]).await,
        Frame::Simple("OK".into())
    );
    let mut c = from_outside(port).await;
    assert_eq!(c.call(&["PING"]).await, Frame::Simple("PONG".into()));
    let list = local.call(&["CLIENT", "LIST"]).await.text();
    assert!(list.contains(&format!("addr={OUTSIDE_IP}:")), "{list}");
    drop(server);

    // protected-mode no from the start.
    let server = start_server_with(&[("bind", "0.0.0.0"), ("protected-mode", "no")]).await;
    let mut c = from_outside(server.addr.port()).await;
    assert_eq!(c.call(&["PING"]).await, Frame::Simple("PONG".into()));
    assert_eq!(c.call(&["PUBLISH", "ch", "x"]).await, Frame::Int(0));
    drop(server);

    // A password set: served, but NOAUTH until AUTH.
    let server = start_server_with(&[("bind", "0.0.0.0"), ("requirepass", "s3cret")]).await;
    let mut c = from_outside(server.addr.port()).await;
    assert_eq!(
        c.call(&["PING"]).await,
        Frame::Error("NOAUTH Authentication required.".into())
    );
    assert_eq!(
        c.call(&["SUBSCRIBE", "ch"]).await,
        Frame::Error("NOAUTH Authentication required.".into())
    );
    assert!(matches!(c.call(&["AUTH", "wrong"]).await, Frame::Error(e) if e.starts_with("WRONGPASS")));
    assert_eq!(c.call(&["AUTH", "s3cret"]).await, Frame::Simple("OK".into()));
    assert_eq!(c.call(&["PING"]).await, Frame::Simple("PONG".into()));
    drop(server);

    // Sanity: the two peers really differ in kind.
    assert!(!outside.is_loopback() && loopback.is_loopback());
}

// ---- max-subscriptions-per-client ----------------------------------------------------

const LIMIT_ERR: &str = "ERR max-subscriptions-per-client reached: this connection may hold at most 3 subscriptions";

#[tokio::test]
async fn max_subscriptions_per_client_refuses_the_whole_command() {
    let server = start_server_with(&[("max-subscriptions-per-client", "3")]).await;
    let mut c = server.raw().await;
    let mut other = server.raw().await;
    let conf = |kind: &str, name: &str, n: i64| arr(&[b(kind), b(name), Frame::Int(n)]);

    c.send(&["SUBSCRIBE", "a", "b"]).await;
    assert_eq!(c.read_frame().await, conf("subscribe", "a", 1));
    assert_eq!(c.read_frame().await, conf("subscribe", "b", 2));
    assert_eq!(c.call(&["PSUBSCRIBE", "p*"]).await, conf("psubscribe", "p*", 3));
    // The 4th, of any family, fails and subscribes nothing.
    assert_eq!(c.call(&["SUBSCRIBE", "d"]).await, Frame::Error(LIMIT_ERR.into()));
    assert_eq!(c.call(&["PSUBSCRIBE", "q*"]).await, Frame::Error(LIMIT_ERR.into()));
    assert_eq!(c.call(&["SSUBSCRIBE", "s"]).await, Frame::Error(LIMIT_ERR.into()));
    assert_eq!(
        other.call(&["PUBSUB", "NUMSUB", "a", "b", "d"]).await,
        arr(&[b("a"), Frame::Int(1), b("b"), Frame::Int(1), b("d"), Frame::Int(0)])
    );
    assert_eq!(other.call(&["PUBSUB", "NUMPAT"]).await, Frame::Int(1));
    assert_eq!(other.call(&["PUBSUB", "SHARDCHANNELS"]).await, arr(&[]));
    assert_eq!(other.call(&["PUBLISH", "d", "x"]).await, Frame::Int(0));
    // Already-held names do not count again.
    assert_eq!(c.call(&["SUBSCRIBE", "a"]).await, conf("subscribe", "a", 3));
    // Still usable in subscribed context.
    assert_eq!(c.call(&["PING"]).await, arr(&[b("pong"), b("")]));
    // UNSUBSCRIBE frees room.
    assert_eq!(c.call(&["UNSUBSCRIBE", "b"]).await, conf("unsubscribe", "b", 2));
    assert_eq!(c.call(&["SUBSCRIBE", "d"]).await, conf("subscribe", "d", 3));
    assert_eq!(other.call(&["PUBLISH", "d", "x"]).await, Frame::Int(1));
    assert_eq!(c.read_frame().await, msg("d", "x"));

    // A batch that would cross the limit is refused whole, on a fresh connection.
    let mut fresh = server.raw().await;
    assert_eq!(
        fresh.call(&["SUBSCRIBE", "w", "x", "y", "z"]).await,
        Frame::Error(LIMIT_ERR.into())
    );
    // Not in subscribed context: ordinary commands still work.
    assert_eq!(fresh.call(&["PING"]).await, Frame::Simple("PONG".into()));
    assert_eq!(
        other.call(&["PUBSUB", "NUMSUB", "w", "x", "y", "z"]).await,
        arr(&[
            b("w"),
            Frame::Int(0),
            b("x"),
            Frame::Int(0),
            b("y"),
            Frame::Int(0),
            b("z"),
            Frame::Int(0)
        ])
    );
    // Duplicates within one command count once.
    fresh.send(&["SUBSCRIBE", "w", "w", "w", "x"]).await;
    assert_eq!(fresh.read_frame().await, conf("subscribe", "w", 1));
    assert_eq!(fresh.read_frame().await, conf("subscribe", "w", 1));
    assert_eq!(fresh.read_frame().await, conf("subscribe", "w", 1));
    assert_eq!(fresh.read_frame().await, conf("subscribe", "x", 2));

    // CONFIG SET changes the limit for everyone at once; 0 lifts it.
    assert_eq!(
        other
            .call(&["CONFIG", "SET", "max-subscriptions-per-client", "0"])
            .await,
        Frame::Simple("OK".into())
    );
    assert_eq!(c.call(&["SUBSCRIBE", "e"]).await, conf("subscribe", "e", 4));
    server.assert_alive().await;
}

// ---- timeout -------------------------------------------------------------------------

#[tokio::test]
async fn timeout_closes_idle_clients_but_not_subscribers() {
    let server = start_server_with(&[("timeout", "1")]).await;
    let mut idle = server.raw().await;
    let mut sub = server.raw().await;
    let mut busy = server.raw().await;
    assert_eq!(idle.call(&["PING"]).await, Frame::Simple("PONG".into()));
    assert_eq!(
        sub.call(&["SUBSCRIBE", "ch"]).await,
        arr(&[b("subscribe"), b("ch"), Frame::Int(1)])
    );
    let start = Instant::now();

    // A client that keeps sending commands is never idle for a whole second.
    let keep_busy = tokio::spawn(async move {
        for _ in 0..12 {
            assert_eq!(busy.call(&["PING"]).await, Frame::Simple("PONG".into()));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        busy
    });

    idle.expect_eof().await;
    let closed_after = start.elapsed();
    assert!(
        closed_after >= Duration::from_millis(800) && closed_after < Duration::from_secs(3),
        "idle client closed after {closed_after:?}, expected about 1-2 s"
    );

    let mut busy = keep_busy.await.expect("busy client task");
    assert!(start.elapsed() >= Duration::from_millis(2400));
    // The subscriber, idle for over 2 s, is still served and still receives messages.
    assert_eq!(sub.call(&["PING"]).await, arr(&[b("pong"), b("")]));
    assert_eq!(busy.call(&["PUBLISH", "ch", "still-here"]).await, Frame::Int(1));
    assert_eq!(sub.read_frame().await, msg("ch", "still-here"));

    // Once it unsubscribes, the same timeout applies to it.
    assert_eq!(
        sub.call(&["UNSUBSCRIBE"]).await,
        arr(&[b("unsubscribe"), b("ch"), Frame::Int(0)])
    );
    let t = Instant::now();
    sub.expect_eof().await;
    assert!(t.elapsed() < Duration::from_secs(3), "closed after {:?}", t.elapsed());
}

// ---- tcp-keepalive -------------------------------------------------------------------

/// SO_KEEPALIVE and TCP_KEEPIDLE of the server's side of a connection. The server runs in
/// this process, so the `fd=` CLIENT LIST shows is a descriptor this test can inspect.
fn server_side_keepalive(fd: i32) -> (bool, Option<Duration>) {
    use std::os::fd::BorrowedFd;
    // SAFETY: `fd` is the server's socket for a connection the caller keeps open for the
    // duration of this call, in this process; it is only borrowed to read two options.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let sock = socket2::SockRef::from(&fd);
    let on = sock.keepalive().expect("SO_KEEPALIVE");
    let time = on.then(|| sock.tcp_keepalive_time().expect("TCP_KEEPIDLE"));
    (on, time)
}

async fn own_fd(c: &mut RawConn) -> i32 {
    let info = c.call(&["CLIENT", "INFO"]).await.text();
    client_field(&info, "fd").unwrap().parse().unwrap()
}

#[tokio::test]
async fn tcp_keepalive_is_applied_to_accepted_connections() {
    let server = start_server_with(&[("tcp-keepalive", "7")]).await;
    let mut c = server.raw().await;
    assert_eq!(
        c.call(&["CONFIG", "GET", "tcp-keepalive"]).await,
        arr(&[b("tcp-keepalive"), b("7")])
    );
    let fd = own_fd(&mut c).await;
    assert_eq!(server_side_keepalive(fd), (true, Some(Duration::from_secs(7))));

    // CONFIG SET applies to connections accepted afterwards; 0 turns keepalive off.
    assert_eq!(
        c.call(&["CONFIG", "SET", "tcp-keepalive", "0"]).await,
        Frame::Simple("OK".into())
    );
    assert_eq!(
        c.call(&["CONFIG", "GET", "tcp-keepalive"]).await,
        arr(&[b("tcp-keepalive"), b("0")])
    );
    let mut later = server.raw().await;
    let later_fd = own_fd(&mut later).await;
    assert_eq!(server_side_keepalive(later_fd), (false, None));
    // The earlier connection keeps what it was given.
    assert_eq!(server_side_keepalive(fd), (true, Some(Duration::from_secs(7))));

    // Redis's default is 300 s.
    let server = start_server().await;
    let mut c = server.raw().await;
    let fd = own_fd(&mut c).await;
    assert_eq!(server_side_keepalive(fd), (true, Some(Duration::from_secs(300))));
}
