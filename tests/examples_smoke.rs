//! Runs each example in `examples/` against an in-process fanout and checks that it
//! exits 0 and prints its closing `ok:` line.
//!
//! The example binaries are the ones `cargo test` builds next to this test (under
//! `target/<profile>/examples/`); nothing is compiled here. When they are missing (say,
//! `cargo test --test examples_smoke` alone, which builds no examples), the test falls
//! back to `cargo run --example NAME`, which may wait for the build directory's lock;
//! `cargo build --examples` first avoids that. Each run is bounded and killed on
//! timeout.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Generous for a debug build on a busy machine; each example bounds itself at 10s.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Where cargo put the example binaries built along with this test.
fn example_binary(name: &str) -> Option<PathBuf> {
    // This test runs as target/<profile>/deps/examples_smoke-<hash>.
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    path.is_file().then_some(path)
}

fn run_example(name: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let settings = Arc::new(fanout::config::Settings::default());
    settings.set("port", "0").unwrap();
    settings.set("bind", "127.0.0.1").unwrap();
    let server = rt.block_on(fanout::server::Server::bind(settings, None)).unwrap();
    let (addrs, _broker, stop) = {
        let _entered = rt.enter();
        server.spawn()
    };
    let url = format!("redis://{}/", addrs[0]);

    let mut cmd = match example_binary(name) {
        Some(path) => Command::new(path),
        None => {
            let mut c = Command::new(env!("CARGO"));
            c.args(["run", "--quiet", "--example", name])
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            c
        }
    };
    let mut child = cmd
        .env("FANOUT_URL", &url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start example {name}: {e}"));
    // Drain both pipes in the background so a chatty child never blocks on a full pipe.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));

    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    stop.cancel();
    drop(rt);

    let report = format!("--- stdout\n{stdout}--- stderr\n{stderr}");
    let Some(status) = status else {
        panic!("example {name} did not finish within {TIMEOUT:?}; killed\n{report}");
    };
    assert!(status.success(), "example {name} failed: {status}\n{report}");
    assert!(
        stdout.lines().any(|l| l.starts_with("ok: ")),
        "example {name} printed no `ok:` line\n{report}"
    );
}

#[test]
fn notifications() {
    run_example("notifications");
}

#[test]
fn cache_invalidation() {
    run_example("cache_invalidation");
}

#[test]
fn domain_events() {
    run_example("domain_events");
}

#[test]
fn chat() {
    run_example("chat");
}
