//! The `fanout` command line, read as redis-server reads its own: `[config-file | -]
//! [--directive word ...]...`, each directive taking the words up to the next `--word`.
//! Also: text logs carry colour codes only on a terminal.
//!
//! Each test spawns the real binary on a free loopback port. Children are owned by a guard
//! that kills them on drop, and every wait is bounded, so a failure never hangs or leaks.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use fanout::config::DIRECTIVES;

mod common;

use common::child::Proc;

const BIN: &str = env!("CARGO_BIN_EXE_fanout");
const WAIT: Duration = Duration::from_secs(10);

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `fanout` with no FANOUT_*, RUST_LOG or NO_COLOR from the caller's environment.
fn fanout(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    for d in DIRECTIVES {
        cmd.env_remove(format!("FANOUT_{}", d.name.to_ascii_uppercase().replace('-', "_")));
    }
    cmd.env_remove("RUST_LOG").env_remove("NO_COLOR");
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped());
    cmd
}

/// A running server (killed and reaped on drop, its stderr collected).
struct Server {
    p: Proc,
}

impl Server {
    fn spawn(cmd: Command) -> Server {
        Server { p: Proc::spawn(cmd) }
    }

    fn stderr(&self) -> String {
        self.p.stderr()
    }

    /// Waits until `port` answers an inline PING (+PONG, or -NOAUTH behind a password);
    /// panics with the server's stderr if it exits first or takes too long.
    fn wait_ready(&mut self, port: u16) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.p.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                panic!("fanout exited early ({status}):\n{}", self.stderr());
            }
            if let Some(reply) = inline(port, "PING") {
                assert!(reply == "+PONG" || reply.starts_with("-NOAUTH"), "PING: {reply}");
                return;
            }
            assert!(Instant::now() < deadline, "no answer on {port}:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs `fanout` expecting it to exit by itself; kills it and panics if it does not.
fn run_to_exit(mut cmd: Command) -> Output {
    let mut child = cmd.stderr(Stdio::piped()).spawn().expect("spawn fanout");
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("fanout kept running:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Sends inline commands on one connection and returns the first line of the last reply.
/// `None` if nothing listens on `port`.
fn inline(port: u16, commands: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&local(port), Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    for c in commands.split('\n') {
        s.write_all(format!("{c}\r\n").as_bytes()).ok()?;
        line.clear();
        r.read_line(&mut line).ok()?;
    }
    Some(line.trim_end().to_string())
}

/// CONFIG GET through the `redis` crate.
fn config_get(port: u16, name: &str) -> String {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut con = client.get_connection().unwrap();
    let reply: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(&mut con).unwrap();
    assert_eq!(reply.len(), 2, "CONFIG GET {name}: {reply:?}");
    reply[1].clone()
}

/// Starts a server with `args` (which must name `port`) and waits until it answers.
fn serve(port: u16, args: &[&str]) -> Server {
    let mut s = Server::spawn(fanout(args));
    s.wait_ready(port);
    s
}

#[test]
fn single_value_directive() {
    let port = free_port();
    let p = port.to_string();
    let _s = serve(port, &["--port", &p, "--maxclients", "17"]);
    assert_eq!(config_get(port, "port"), p);
    assert_eq!(config_get(port, "maxclients"), "17");
}

/// The bug this grammar fixes: `--bind`'s words used to swallow `--port`.
#[test]
fn multi_value_directive_followed_by_another() {
    let port = free_port();
    let p = port.to_string();
    let _s = serve(port, &["--bind", "127.0.0.1", "--port", &p, "--maxclients", "12"]);
    assert_eq!(config_get(port, "bind"), "127.0.0.1");
    assert_eq!(config_get(port, "maxclients"), "12");
}

#[test]
fn multi_word_directive() {
    let port = free_port();
    let p = port.to_string();
    let args = [
        "--port",
        &p,
        "--client-output-buffer-limit",
        "pubsub",
        "1mb",
        "512kb",
        "10",
        "--maxclients",
        "13",
    ];
    let _s = serve(port, &args);
    let limits = config_get(port, "client-output-buffer-limit");
    assert!(limits.ends_with("pubsub 1048576 524288 10"), "{limits}");
    assert_eq!(config_get(port, "maxclients"), "13");
}

/// What a redis-server command line for a throwaway instance usually carries.
#[test]
fn pasted_redis_server_line() {
    let port = free_port();
    let p = port.to_string();
    let args = [
        "--port",
        &p,
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
        "--loglevel",
        "warning",
    ];
    let _s = serve(port, &args);
    assert_eq!(config_get(port, "save"), "");
    assert_eq!(config_get(port, "loglevel"), "warning");
}

#[test]
fn values_may_start_with_a_dash() {
    let port = free_port();
    let p = port.to_string();
    let _s = serve(port, &["--requirepass", "-s3cret", "--port", &p]);
    assert!(inline(port, "PING").unwrap().starts_with("-NOAUTH"));
    assert_eq!(inline(port, "AUTH -s3cret\nPING").unwrap(), "+PONG");

    // `-1` is the value of --maxclients (and a bad one), not an unknown flag.
    let out = run_to_exit(fanout(&["--port", &free_port().to_string(), "--maxclients", "-1"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--maxclients -1:") && err.contains("integer"), "{err}");
}

#[test]
fn unknown_directive_fails_with_a_message() {
    let out = run_to_exit(fanout(&["--port", &free_port().to_string(), "--daemonize", "no"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("unknown directive 'daemonize'") && err.contains("--daemonize no"),
        "{err}"
    );
}

#[test]
fn directive_without_a_value_fails_with_a_message() {
    let out = run_to_exit(fanout(&["--maxclients", "10", "--port"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--port needs a value"), "{err}");
}

#[test]
fn config_file_then_overriding_port() {
    let dir = tempfile::tempdir().unwrap();
    let (in_file, port) = (free_port(), free_port());
    let file = dir.path().join("fanout.conf");
    std::fs::write(&file, format!("port {in_file}\nmaxclients 21\n")).unwrap();
    let p = port.to_string();
    let _s = serve(port, &[file.to_str().unwrap(), "--port", &p]);
    assert_eq!(config_get(port, "maxclients"), "21");
    assert_eq!(inline(in_file, "PING"), None, "the file's port was not overridden");
}

#[test]
fn config_from_stdin() {
    let port = free_port();
    let p = port.to_string();
    let mut cmd = fanout(&["-", "--port", &p]);
    cmd.stdin(Stdio::piped());
    let mut s = Server::spawn(cmd);
    let mut stdin = s.p.child.stdin.take().unwrap();
    stdin.write_all(b"maxclients 31\nport 1\n").unwrap();
    drop(stdin);
    s.wait_ready(port);
    assert_eq!(config_get(port, "maxclients"), "31");
}

#[test]
fn help_and_version() {
    for flag in ["--help", "-h"] {
        let out = run_to_exit(fanout(&[flag]));
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        for d in DIRECTIVES {
            assert!(
                text.contains(&format!("--{} <VALUE>", d.name)),
                "{flag}: no --{}",
                d.name
            );
        }
    }
    for flag in ["--version", "-v", "-V"] {
        let out = run_to_exit(fanout(&[flag]));
        assert!(out.status.success());
        let expected = format!("fanout {}\n", env!("CARGO_PKG_VERSION"));
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected, "{flag}");
    }
}

/// Under `docker logs` or a log file stderr is a pipe: no escape codes in it.
#[test]
fn no_colour_when_stderr_is_not_a_terminal() {
    let port = free_port();
    let s = serve(port, &["--port", &port.to_string()]);
    // The startup line (loglevel notice) is written just before the server answers.
    let deadline = Instant::now() + WAIT;
    while !s.stderr().contains("ready to accept connections") {
        assert!(Instant::now() < deadline, "no startup line:\n{}", s.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !s.stderr().contains("\x1b["),
        "escape codes in piped stderr:\n{}",
        s.stderr()
    );
}

/// On a terminal (a pty from util-linux `script`) the text log is coloured, unless
/// NO_COLOR is set. The server logs an error and exits because its port is taken.
#[test]
fn colour_on_a_terminal_unless_no_color() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let on_a_tty = |no_color: Option<&str>| -> Option<String> {
        let line = format!("'{BIN}' --bind 127.0.0.1 --port {port}");
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"]).env_remove("NO_COLOR");
        cmd.env_remove("RUST_LOG")
            .env_remove("FANOUT_BIND")
            .env_remove("FANOUT_PORT");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).spawn().ok()?;
        // The output is a line or two, so the pipe cannot fill while we wait.
        let deadline = Instant::now() + WAIT;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("fanout under `script` kept running");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        Some(out)
    };
    let Some(coloured) = on_a_tty(None) else {
        eprintln!("no `script` command here: skipping the terminal case");
        return;
    };
    assert!(coloured.contains("could not bind"), "{coloured}");
    assert!(coloured.contains("\x1b["), "no colour on a terminal: {coloured:?}");
    let plain = on_a_tty(Some("1")).unwrap();
    assert!(plain.contains("could not bind"), "{plain}");
    assert!(!plain.contains("\x1b["), "colour despite NO_COLOR: {plain:?}");
}
