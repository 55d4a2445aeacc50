//! fanout as seen by the real `redis-cli`.
//!
//! When `redis-cli` is not installed these tests print a note and pass, so that local
//! runs without Redis's tools still work; CI installs them (.ci/run).
//!
//! The server runs in-process on a port the OS picks, in a runtime of its own, so the
//! tests themselves are plain blocking code around child processes. Every child is killed
//! on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const REDIS_CLI: &str = "redis-cli";

/// Private helpers for this file (the shared `tests/common` belongs to other tests).
mod support_cli {
    use super::*;

    /// `redis-cli`'s path, or `None` (with a note) if it is not installed.
    pub fn redis_cli() -> Option<String> {
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(REDIS_CLI))
                .find(|p| Path::new(p).is_file())
        });
        if found.is_none() {
            eprintln!("{REDIS_CLI} not found on PATH; skipping this redis-cli test");
        }
        found.map(|p| p.display().to_string())
    }

    /// A server in a runtime of its own; stopped when dropped.
    pub struct Server {
        pub addr: SocketAddr,
        stop: tokio_util::sync::CancellationToken,
        runtime: Option<tokio::runtime::Runtime>,
    }

    impl Server {
        pub fn start() -> Server {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let (addrs, stop) = runtime.block_on(async {
                let settings = std::sync::Arc::new(fanout::config::Settings::default());
                settings.set("port", "0").unwrap();
                settings.set("bind", "127.0.0.1").unwrap();
                let server = fanout::server::Server::bind(settings, None).await.unwrap();
                let (addrs, _broker, stop) = server.spawn();
                (addrs, stop)
            });
            Server {
                addr: addrs[0],
                stop,
                runtime: Some(runtime),
            }
        }

        pub fn port(&self) -> String {
            self.addr.port().to_string()
        }

        /// A blocking connection of the redis crate.
        pub fn connection(&self) -> redis::Connection {
            redis::Client::open(format!("redis://{}/", self.addr))
                .unwrap()
                .get_connection()
                .unwrap()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.cancel();
            if let Some(rt) = self.runtime.take() {
                rt.shutdown_timeout(Duration::from_secs(2));
            }
        }
    }

    /// A child process killed and reaped on drop.
    pub struct Kid(pub Child);

    impl Drop for Kid {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// Runs `redis-cli -p PORT args...` to completion with `stdin` as its input, at most
    /// 10 s. Returns (exit status, stdout, stderr).
    pub fn run(cli: &str, port: &str, args: &[&str], stdin: &[u8]) -> (ExitStatus, String, String) {
        let mut kid = Kid(Command::new(cli)
            .args(["-p", port])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn redis-cli"));
        let read_all = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = r.read_to_string(&mut text);
                text
            })
        };
        let out = read_all(Box::new(kid.0.stdout.take().unwrap()));
        let err = read_all(Box::new(kid.0.stderr.take().unwrap()));
        let mut input = kid.0.stdin.take().unwrap();
        input.write_all(stdin).unwrap();
        drop(input);
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = kid.0.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "redis-cli {args:?} still running after 10 s");
            std::thread::sleep(Duration::from_millis(10));
        };
        (status, out.join().unwrap(), err.join().unwrap())
    }

    /// The lines a child prints, delivered through a channel by a reader thread.
    pub fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    }

    /// Waits for a line equal to `want`, collecting everything seen; panics after `limit`.
    pub fn expect_line(rx: &mpsc::Receiver<String>, want: &str, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let done = line.trim() == want;
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!("no line {want:?} within {limit:?}; saw {seen:?}"),
            }
        }
    }
}

use support_cli::*;

#[test]
fn publish_prints_receiver_count() {
    let Some(cli) = redis_cli() else { return };
    let server = Server::start();
    let (status, out, err) = run(&cli, &server.port(), &["PUBLISH", "ch", "msg"], b"");
    assert!(status.success(), "redis-cli: {status}: {err}");
    assert_eq!(out.trim(), "0");
}

#[test]
fn hello_3_reports_protocol_3() {
    let Some(cli) = redis_cli() else { return };
    let server = Server::start();
    let (status, text, err) = run(&cli, &server.port(), &["-3", "HELLO", "3"], b"");
    assert!(status.success(), "redis-cli: {status}: {err}");
    // redis-cli prints a RESP3 map one `key value` pair a line (older versions print
    // keys and values on lines of their own).
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let proto = lines.iter().enumerate().find_map(|(i, l)| {
        let rest = l.strip_prefix("proto")?;
        Some(match rest.trim() {
            "" => lines.get(i + 1).copied().unwrap_or_default(),
            v => v,
        })
    });
    assert_eq!(proto, Some("3"), "HELLO 3 output:\n{text}");
}

#[test]
fn subscribe_prints_published_messages() {
    let Some(cli) = redis_cli() else { return };
    let server = Server::start();
    let mut sub = Kid(Command::new(&cli)
        .args(["-p", &server.port(), "SUBSCRIBE", "news"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-cli SUBSCRIBE"));
    let rx = lines_of(&mut sub.0);
    // The confirmation: subscribe, news, 1.
    let seen = expect_line(&rx, "subscribe", Duration::from_secs(10));
    assert_eq!(seen.last().unwrap(), "subscribe");
    let seen = expect_line(&rx, "1", Duration::from_secs(5));
    assert!(seen.iter().any(|l| l == "news"), "{seen:?}");

    let mut con = server.connection();
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hello from the test")
        .query(&mut con)
        .unwrap();
    assert_eq!(receivers, 1);
    let seen = expect_line(&rx, "hello from the test", Duration::from_secs(10));
    assert_eq!(
        seen.iter().map(String::as_str).collect::<Vec<_>>(),
        ["message", "news", "hello from the test"]
    );
    drop(sub);
}

#[test]
fn interactive_mode_with_piped_stdin() {
    let Some(cli) = redis_cli() else { return };
    let server = Server::start();
    // redis-cli (7.0) fetches COMMAND DOCS first, even with stdin piped.
    let (status, text, err) = run(&cli, &server.port(), &[], b"PING\nECHO hi\n");
    assert!(
        status.success(),
        "interactive redis-cli failed: {status}\nstdout: {text}\nstderr: {err}"
    );
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert!(lines.contains(&"PONG"), "{text}");
    assert!(lines.contains(&"hi"), "{text}");
    assert!(
        lines.iter().position(|l| *l == "PONG") < lines.iter().position(|l| *l == "hi"),
        "{text}"
    );
}

/// What makes interactive redis-cli crash if it is wrong: redis-cli (7.0) builds its
/// command hints from COMMAND DOCS at start-up and follows the sub-arguments of every
/// argument whose type is `oneof` or `block`, as Redis always lists them. Runs without
/// redis-cli.
#[test]
fn command_docs_oneof_and_block_arguments_list_their_subarguments() {
    let server = Server::start();
    let mut con = server.connection();
    let docs: redis::Value = redis::cmd("COMMAND").arg("DOCS").query(&mut con).unwrap();
    let mut missing = Vec::new();
    check_docs(&docs, "", &mut missing);
    assert!(
        missing.is_empty(),
        "oneof/block arguments without an `arguments` list: {missing:?}"
    );
}

/// Walks COMMAND DOCS (maps come as flat arrays in RESP2) and records every argument
/// of type oneof/block that has no non-empty `arguments`.
fn check_docs(v: &redis::Value, path: &str, missing: &mut Vec<String>) {
    use redis::Value;
    let text = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).to_string(),
        Value::SimpleString(s) => s.clone(),
        _ => String::new(),
    };
    let pairs: Vec<(String, &Value)> = match v {
        Value::Array(items) => items
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (text(&c[0]), &c[1]))
            .collect(),
        Value::Map(items) => items.iter().map(|(k, v)| (text(k), v)).collect(),
        _ => return,
    };
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
    if let Some(kind) = get("type").map(text) {
        if kind == "oneof" || kind == "block" {
            let n = match get("arguments") {
                Some(Value::Array(a)) => a.len(),
                _ => 0,
            };
            if n == 0 {
                let name = get("name").map(text).unwrap_or_default();
                missing.push(format!("{path} {name} ({kind})"));
            }
        }
    }
    for (k, child) in &pairs {
        match *child {
            Value::Array(items) if k == "arguments" => {
                for a in items {
                    check_docs(a, path, missing);
                }
            }
            Value::Array(_) | Value::Map(_) => {
                // Subcommands are named in full (`client|list`): they start a new path.
                let sub = if k == "subcommands" {
                    String::new()
                } else if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}|{k}")
                };
                check_docs(child, &sub, missing);
            }
            _ => {}
        }
    }
}

/// `redis-cli SHUTDOWN` against the real binary: redis-cli exits 0 with nothing printed
/// (the connection closes, as with Redis) and the server drains and exits 0.
#[test]
fn redis_cli_shutdown_stops_the_server() {
    let Some(cli) = redis_cli() else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let mut server = Kid(Command::new(env!("CARGO_BIN_EXE_fanout"))
        .args(["--port", &port, "--loglevel", "warning"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn fanout"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while run(&cli, &port, &["PING"], b"").1.trim() != "PONG" {
        assert!(Instant::now() < deadline, "fanout did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, out, err) = run(&cli, &port, &["SHUTDOWN"], b"");
    assert!(status.success(), "redis-cli SHUTDOWN: {status}: {out} {err}");
    assert_eq!(out.trim(), "", "{err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(code) = server.0.try_wait().unwrap() {
            assert!(code.success(), "fanout exited with {code}");
            break;
        }
        assert!(Instant::now() < deadline, "fanout still running after SHUTDOWN");
        std::thread::sleep(Duration::from_millis(50));
    }
}
