//! The real `fanout` binary: command line, environment and config file precedence,
//! `fanout healthcheck`, graceful shutdown on SIGTERM, and listening on several addresses.
//!
//! Every child process is owned by a guard that kills it on drop, so a failing assertion
//! never leaves a server behind. Servers listen on free loopback ports.

use std::io::{Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fanout::config::DIRECTIVES;

mod common;

/// How long a starting server may take to answer PING.
const READY: Duration = Duration::from_secs(10);
const BIN: &str = env!("CARGO_BIN_EXE_fanout");

/// Private helpers for this file (the shared `tests/common` belongs to other tests).
mod support_bin {
    use super::*;

    /// `fanout` with a clean environment: no FANOUT_* or RUST_LOG from the caller.
    pub fn fanout() -> Command {
        let mut cmd = Command::new(BIN);
        for d in DIRECTIVES {
            cmd.env_remove(format!("FANOUT_{}", d.name.to_ascii_uppercase().replace('-', "_")));
        }
        cmd.env_remove("RUST_LOG");
        cmd.stdin(Stdio::null());
        cmd
    }

    pub use crate::common::child::{free_port, ping, Proc};

    /// A `fanout` on a free port with `args`, answering PING.
    pub fn serving(args: &[&str]) -> (Proc, u16) {
        let port = free_port();
        let mut cmd = fanout();
        cmd.args(["--port", &port.to_string()]).args(args);
        let mut p = Proc::spawn(cmd);
        p.wait_ready(local(port), READY);
        (p, port)
    }

    /// A connection through the redis crate.
    pub fn connect(port: u16) -> redis::Connection {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        client.get_connection().unwrap()
    }

    /// INFO `section`.
    pub fn info(port: u16, section: &str) -> String {
        redis::cmd("INFO").arg(section).query(&mut connect(port)).unwrap()
    }

    pub fn config_get(port: u16, name: &str) -> String {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut con = client.get_connection().unwrap();
        let reply: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(&mut con).unwrap();
        assert_eq!(reply.len(), 2, "CONFIG GET {name}: {reply:?}");
        reply[1].clone()
    }

    /// A scratch directory, removed on drop.
    pub struct TempDir(pub PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "fanout-binary-test-{}-{tag}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        pub fn file(&self, name: &str, text: &str) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, text).unwrap();
            p
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    pub fn local(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// Sends SIGTERM with the system's `kill`.
    pub fn sigterm(pid: u32) {
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid} failed");
    }

    /// A raw connection subscribed to `ch`, its confirmation read.
    pub fn subscriber(addr: SocketAddr, ch: &str) -> TcpStream {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(format!("SUBSCRIBE {ch}\r\n").as_bytes()).unwrap();
        let expected = format!("*3\r\n$9\r\nsubscribe\r\n${}\r\n{ch}\r\n:1\r\n", ch.len());
        let mut buf = vec![0u8; expected.len()];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(String::from_utf8_lossy(&buf), expected);
        s
    }

    /// Reads until EOF: Ok(bytes read) on EOF, Err if the read timed out or failed.
    pub fn read_to_eof(s: &mut TcpStream, limit: Duration) -> Result<usize, String> {
        s.set_read_timeout(Some(limit)).unwrap();
        let mut total = 0;
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => total += n,
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

use support_bin::*;

#[test]
fn help_lists_every_directive() {
    let out = fanout().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for d in DIRECTIVES {
        assert!(
            text.contains(&format!("--{}", d.name)),
            "--help does not mention --{}:\n{text}",
            d.name
        );
    }
}

/// Starts the binary with `config` as its config file, `env` set and `args` given, and
/// returns CONFIG GET maxclients.
fn maxclients_with(config: &str, env: Option<&str>, args: &[&str]) -> String {
    let dir = TempDir::new("precedence");
    let port = free_port();
    let file = dir.file("fanout.conf", &format!("# test config\nport {port}\n{config}\n"));
    let mut cmd = fanout();
    cmd.arg(&file).args(args);
    if let Some(v) = env {
        cmd.env("FANOUT_MAXCLIENTS", v);
    }
    let mut p = Proc::spawn(cmd);
    // The port comes from the file: nothing else names it.
    p.wait_ready(local(port), READY);
    config_get(port, "maxclients")
}

#[test]
fn command_line_beats_environment_beats_file() {
    assert_eq!(
        maxclients_with("maxclients 11", Some("22"), &["--maxclients", "33"]),
        "33"
    );
    assert_eq!(maxclients_with("maxclients 11", Some("22"), &[]), "22");
    assert_eq!(maxclients_with("maxclients 11", None, &[]), "11");
}

#[test]
fn unknown_directive_in_file_warns_and_starts() {
    let dir = TempDir::new("unknown");
    let port = free_port();
    let file = dir.file(
        "fanout.conf",
        &format!("port {port}\nfrobnicate-the-widgets yes\nmaxclients 44\n"),
    );
    let mut cmd = fanout();
    cmd.arg(&file);
    let mut p = Proc::spawn(cmd);
    p.wait_ready(local(port), READY);
    assert_eq!(config_get(port, "maxclients"), "44");
    // eprintln! happens before the server binds, so it is already in the pipe; give the
    // collecting thread a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !p.stderr().contains("frobnicate-the-widgets") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = p.stderr();
    assert!(
        err.lines()
            .any(|l| l.contains("warning") && l.contains("frobnicate-the-widgets")),
        "no warning naming the unknown directive on stderr:\n{err}"
    );
}

#[test]
fn bad_value_on_command_line_fails_with_a_message() {
    let mut cmd = fanout();
    cmd.args(["--port", &free_port().to_string(), "--maxclients", "abc"]);
    let mut p = Proc::spawn(cmd);
    let status = p
        .wait_exit(Duration::from_secs(10))
        .expect("fanout kept running with --maxclients abc");
    assert!(!status.success(), "exit status {status}");
    // Let the stderr thread catch up with the closed pipe.
    std::thread::sleep(Duration::from_millis(100));
    let err = p.stderr();
    assert!(
        err.contains("maxclients") && err.contains("abc"),
        "stderr does not explain the bad value:\n{err}"
    );
}

#[test]
fn bad_value_in_environment_fails_with_a_message() {
    let mut cmd = fanout();
    cmd.args(["--port", &free_port().to_string()])
        .env("FANOUT_MAXCLIENTS", "lots");
    let mut p = Proc::spawn(cmd);
    let status = p
        .wait_exit(Duration::from_secs(10))
        .expect("fanout kept running with FANOUT_MAXCLIENTS=lots");
    assert!(!status.success());
    std::thread::sleep(Duration::from_millis(100));
    let err = p.stderr();
    assert!(err.contains("FANOUT_MAXCLIENTS"), "{err}");
}

#[test]
fn healthcheck_against_running_server_and_nothing() {
    let (p, port) = serving(&[]);

    let out = Command::new(BIN)
        .args(["healthcheck", "--port", &port.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "healthcheck failed against a running server: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The port from the environment, as the binary documents.
    let out = Command::new(BIN)
        .arg("healthcheck")
        .env("FANOUT_PORT", port.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "healthcheck with FANOUT_PORT failed");
    drop(p);

    // Nothing listening: refused at once.
    let dead = free_port();
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["healthcheck", "--port", &dead.to_string(), "--timeout-ms", "1000"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&dead.to_string()) && err.contains("not answering"),
        "unclear message: {err}"
    );
}

#[test]
fn healthcheck_gives_up_on_a_silent_listener_within_its_timeout() {
    // Accepts connections (through the backlog) but never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["healthcheck", "--port", &port.to_string(), "--timeout-ms", "500"])
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(!out.status.success());
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not answering"), "unclear message: {err}");
    drop(silent);
}

#[test]
fn sigterm_exits_cleanly_and_subscribers_see_eof() {
    let (mut p, port) = serving(&[]);
    let mut sub = subscriber(local(port), "news");

    let started = Instant::now();
    sigterm(p.pid());
    let eof = read_to_eof(&mut sub, Duration::from_secs(5));
    let status = p
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 5 s after SIGTERM:\n{}", p.stderr()));
    assert!(status.success(), "exit status {status} after SIGTERM:\n{}", p.stderr());
    assert_eq!(eof, Ok(0), "the subscriber did not get a clean EOF");
    eprintln!("exited {:?} after SIGTERM", started.elapsed());
}

#[test]
fn sigterm_with_a_stuck_subscriber_exits_after_shutdown_timeout() {
    let (mut p, port) = serving(&["--shutdown-timeout", "1"]);
    // A subscriber that never reads, with a few MB queued for it.
    let stuck = subscriber(local(port), "news");
    let mut publisher = TcpStream::connect(local(port)).unwrap();
    publisher.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let payload = vec![b'x'; 256 * 1024];
    let n = 40;
    let mut req = Vec::new();
    for _ in 0..n {
        req.extend_from_slice(format!("*3\r\n$7\r\nPUBLISH\r\n$4\r\nnews\r\n${}\r\n", payload.len()).as_bytes());
        req.extend_from_slice(&payload);
        req.extend_from_slice(b"\r\n");
    }
    publisher.write_all(&req).unwrap();
    let mut replies = vec![0u8; n * 4];
    publisher.read_exact(&mut replies).unwrap();
    assert!(replies.chunks(4).all(|r| r == b":1\r\n"));

    let started = Instant::now();
    sigterm(p.pid());
    let status = p
        .wait_exit(Duration::from_secs(8))
        .unwrap_or_else(|| panic!("still running 8 s after SIGTERM:\n{}", p.stderr()));
    assert!(status.success(), "exit status {status}");
    eprintln!("exited {:?} after SIGTERM", started.elapsed());
    drop(stuck);
}

#[test]
fn bind_ipv4_and_ipv6_loopback() {
    let v6 = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok();
    // A port free on both families.
    let port = loop {
        let p = free_port();
        if !v6 || TcpListener::bind((Ipv6Addr::LOCALHOST, p)).is_ok() {
            break p;
        }
    };
    let mut cmd = fanout();
    cmd.args(["--port", &port.to_string()]);
    if v6 {
        cmd.args(["--bind", "127.0.0.1", "::1"]);
    } else {
        eprintln!("no IPv6 loopback on this machine: checking 127.0.0.1 only");
        cmd.args(["--bind", "127.0.0.1"]);
    }
    let mut p = Proc::spawn(cmd);
    p.wait_ready(local(port), READY);
    assert!(ping(local(port)));
    if v6 {
        let addr = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
        assert!(ping(addr), "no answer on [::1]:{port}:\n{}", p.stderr());
        assert_eq!(config_get(port, "bind"), "127.0.0.1 ::1");
    }
}

/// `--log-format json` writes one JSON object per line, and a subscriber closed for its
/// output buffer is named (id, name, address) in a warning.
#[test]
fn json_logs_name_a_client_closed_for_its_output_buffer() {
    use std::io::{BufRead, BufReader, Write};
    let port = free_port();
    let mut cmd = fanout();
    cmd.args(["--port", &port.to_string(), "--log-format", "json"]);
    cmd.args(["--client-output-buffer-limit", "pubsub 64kb 0 0"]);
    let mut p = Proc::spawn(cmd);
    p.wait_ready(local(port), READY);

    let mut slow = std::net::TcpStream::connect(local(port)).unwrap();
    slow.write_all(b"CLIENT SETNAME slowpoke\r\nSUBSCRIBE ch\r\n").unwrap();
    let mut pubr = BufReader::new(std::net::TcpStream::connect(local(port)).unwrap());
    let payload = "x".repeat(16 * 1024);
    let publish = format!("*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n${}\r\n{payload}\r\n", payload.len());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut line = String::new();
    while !p.stderr().contains("slowpoke") && Instant::now() < deadline {
        for _ in 0..100 {
            pubr.get_mut().write_all(publish.as_bytes()).unwrap();
            line.clear();
            pubr.read_line(&mut line).unwrap();
        }
    }
    let err = p.stderr();
    let mut warned = false;
    for l in err.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        let text = v.to_string();
        if text.contains("output buffer") && text.contains("slowpoke") {
            assert_eq!(v["level"], "WARN", "{l}");
            assert!(text.contains("127.0.0.1:"), "the address is named: {l}");
            warned = true;
        }
    }
    assert!(warned, "no JSON warning naming the closed client:\n{err}");
    drop(slow);
}

/// The binary links jemalloc and says so in INFO, as Redis does; a server embedded from
/// the library uses the system allocator and reports `libc` (tests/commands.rs' servers).
#[test]
fn info_names_the_binary_s_allocator() {
    let (_p, port) = serving(&[]);
    let memory = info(port, "memory");
    assert!(memory.contains("mem_allocator:jemalloc-"), "{memory}");
}

/// `--threads 1`: one event loop, whose unpipelined publishes to 64 or more connections
/// have their writers woken by the wake relay (INFO `io_threads_active:1`). 100
/// subscribers each get all 200 messages of a one-at-a-time publisher, in order.
#[test]
fn single_event_loop_relays_large_fan_outs_in_order() {
    let (_p, port) = serving(&["--threads", "1"]);
    let stats = info(port, "stats");
    assert!(stats.contains("io_threads_active:1"), "{stats}");
    let mut subs: Vec<TcpStream> = (0..100).map(|_| subscriber(local(port), "wt")).collect();
    let mut con = connect(port);
    for i in 0..200 {
        let n: i64 = redis::cmd("PUBLISH")
            .arg("wt")
            .arg(format!("m{i}"))
            .query(&mut con)
            .unwrap();
        assert_eq!(n, 100);
    }
    for s in subs.iter_mut() {
        for i in 0..200 {
            let payload = format!("m{i}");
            let expected = format!("*3\r\n$7\r\nmessage\r\n$2\r\nwt\r\n${}\r\n{payload}\r\n", payload.len());
            let mut buf = vec![0u8; expected.len()];
            s.read_exact(&mut buf).unwrap();
            assert_eq!(String::from_utf8_lossy(&buf), expected);
        }
    }
    // Two workers: no relay.
    let (_p2, port) = serving(&["--threads", "2"]);
    let stats = info(port, "stats");
    assert!(stats.contains("io_threads_active:0"), "{stats}");
}
