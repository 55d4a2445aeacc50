//! Runs each example in `examples/` against an in-process fanout and checks that it
//! exits 0 and prints its closing `ok:` line (the stream examples also the lines that
//! show their pattern at work).
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

/// Runs the example and returns its stdout.
fn run_example(name: &str) -> String {
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
    stdout
}

/// Each of `wanted` is a substring of some line of `stdout`, in this order.
fn assert_lines_in_order(name: &str, stdout: &str, wanted: &[&str]) {
    let mut lines = stdout.lines();
    for w in wanted {
        assert!(
            lines.any(|l| l.contains(w)),
            "example {name}: no line containing {w:?} (in order)\n--- stdout\n{stdout}"
        );
    }
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

#[test]
fn work_queue() {
    let out = run_example("work_queue");
    assert_lines_in_order(
        "work_queue",
        &out,
        &[
            "XGROUP CREATE jobs workers $ MKSTREAM",
            "producer: XADD jobs * job 8",
            "rescuer: XAUTOCLAIM jobs workers rescuer 500 0-0 COUNT 10 -> 0 claimed",
            "XPENDING jobs workers -> ",
            "ms after the crash, XAUTOCLAIM jobs workers rescuer 500 0-0 COUNT 10 -> claimed [",
            ", delivery count 2",
            "XPENDING jobs workers -> 0 pending",
            "ok: 8 jobs, all processed at least once",
        ],
    );
    assert!(out.contains("worker-b: crashed before XACK"), "{out}");
    assert!(out.contains("worker-a: did job "), "{out}");
    assert!(out.contains("rescuer: did job "), "{out}");
}

#[test]
fn event_replay() {
    let out = run_example("event_replay");
    assert_lines_in_order(
        "event_replay",
        &out,
        &[
            "XADD events:orders * n 10 type delivered order 1002 -> ",
            "consumer: XRANGE events:orders (",
            "consumer: replayed events [5, 6, 7, 8, 9, 10] after ",
            "XREVRANGE events:orders + - COUNT 1 -> ",
            "x XADD events:orders MAXLEN ~ 1000 * ... -> XLEN ",
            "XTRIM events:orders MAXLEN = 1000 -> removed ",
            "; XLEN 900",
            "events trimmed before replay: true",
            "ok: replayed events 5-10 after checkpoint ",
        ],
    );
}

#[test]
fn catch_up_then_follow() {
    let out = run_example("catch_up_then_follow");
    assert_lines_in_order(
        "catch_up_then_follow",
        &out,
        &[
            "reader: XREAD COUNT 3 STREAMS feed:prices 0 -> seq [1, 2, 3]",
            "reader: caught up at ",
            "STREAMS feed:prices $ -> 0 entries: seq 8 would be missed",
            "reader: XREAD COUNT 5 BLOCK 1000 STREAMS feed:prices ",
            "ok: received all 25 entries exactly once, in order (7 from history, 18 live)",
        ],
    );
    // The first live read continues from the last history ID and gets the entry the
    // producer added in between.
    let first_live = out
        .lines()
        .find(|l| l.contains("XREAD COUNT 5 BLOCK 1000"))
        .unwrap_or_default();
    assert!(first_live.contains("-> seq [8"), "{first_live}\n{out}");
}
