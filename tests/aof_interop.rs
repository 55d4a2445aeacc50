//! The append-only file against the real thing: fanout's files loaded by redis-server
//! 7.0 (and accepted by redis-check-aof), redis-server's files loaded by fanout, and
//! fanout's own round trips (restart, BGREWRITEAOF, CONFIG SET appendonly yes at run
//! time, DEBUG LOADAOF).
//!
//! Every test builds the same realistic stream dataset through the `redis` crate
//! ([`dataset`]), dumps the state of a server ([`dump`]: keys, types, expiry times,
//! XINFO STREAM FULL, XINFO GROUPS, XPENDING) and compares it with the dump of the
//! server that loaded the files. What legitimately differs after a reload is left out:
//! a consumer's `seen-time`/`active-time`, XPENDING's idle column, and
//! `radix-tree-keys`/`radix-tree-nodes` (how entries are packed into nodes: Redis itself
//! packs a reloaded stream differently from one that was trimmed and had entries
//! deleted).
//!
//! Servers are spawned on free loopback ports with temporary folders, owned by a guard
//! that kills them on drop, and every wait has a deadline. Without redis-server (or
//! redis-check-aof) the tests that need it print a note and pass; CI installs Redis.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{ConnectionLike, Value};

const FANOUT: &str = env!("CARGO_BIN_EXE_fanout");
/// How long a server may take to start, load, rewrite or stop.
const WAIT: Duration = Duration::from_secs(60);

type Cmd = Vec<Vec<u8>>;

macro_rules! c {
    ($($a:expr),* $(,)?) => { vec![$(AsRef::<[u8]>::as_ref(&$a).to_vec()),*] };
}

// ---------------------------------------------------------------------------------------
// Processes

/// `name` on the PATH (or in /usr/bin), if installed.
fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn redis_server() -> Option<PathBuf> {
    let t = tool("redis-server");
    if t.is_none() {
        eprintln!("redis-server not installed; skipping this AOF interoperability test");
    }
    t
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A server process (fanout or redis-server): killed and reaped on drop. Its output goes
/// to a log file, shown when something goes wrong.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
    what: &'static str,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Server {
    fn spawn(what: &'static str, program: &Path, args: &[&str], port: u16, log: PathBuf) -> Server {
        let out = fs::File::create(&log).expect("log file");
        let child = Command::new(program)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        let mut s = Server { child, port, log, what };
        s.wait_ready();
        s
    }

    /// fanout on `dir` with `args` added.
    fn fanout(dir: &Path, args: &[&str]) -> Server {
        let port = free_port();
        let p = port.to_string();
        let d = dir.to_str().unwrap();
        let mut all = vec!["--port", &p, "--bind", "127.0.0.1", "--dir", d];
        all.extend_from_slice(args);
        let log = dir.join(format!("fanout-{port}.log"));
        Server::spawn("fanout", Path::new(FANOUT), &all, port, log)
    }

    /// redis-server on `dir`, appendonly yes with no RDB preamble and no RDB at all.
    fn redis(program: &Path, dir: &Path, args: &[&str]) -> Server {
        let port = free_port();
        let p = port.to_string();
        let d = dir.to_str().unwrap();
        let mut all = vec![
            "--port",
            &p,
            "--bind",
            "127.0.0.1",
            "--dir",
            d,
            "--appendonly",
            "yes",
            "--aof-use-rdb-preamble",
            "no",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ];
        all.extend_from_slice(args);
        let log = dir.join(format!("redis-{port}.log"));
        Server::spawn("redis-server", program, &all, port, log)
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until PING answers PONG (Redis answers -LOADING while it loads).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited early ({status}):\n{}", self.what, self.log_text());
            }
            let pong = self
                .try_conn()
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c).ok());
            if pong.as_deref() == Some("PONG") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer PING:\n{}",
                self.what,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn try_conn(&self) -> Option<redis::Connection> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).ok()?;
        let con = client.get_connection_with_timeout(Duration::from_secs(2)).ok()?;
        con.set_read_timeout(Some(WAIT)).ok()?;
        con.set_write_timeout(Some(WAIT)).ok()?;
        Some(con)
    }

    fn conn(&self) -> redis::Connection {
        self.try_conn()
            .unwrap_or_else(|| panic!("connect to {}:\n{}", self.what, self.log_text()))
    }

    /// Waits for the process to exit by itself; it must exit with success.
    fn wait_exit(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "{} exited with {status}:\n{}",
                    self.what,
                    self.log_text()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit:\n{}",
                self.what,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SHUTDOWN (the server closes the connection without a reply), then its exit.
    fn shutdown(mut self) {
        let mut con = self.conn();
        let _ = redis::cmd("SHUTDOWN").query::<Value>(&mut con);
        self.wait_exit();
    }

    /// SIGTERM, then its exit.
    fn terminate(mut self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -TERM failed");
        self.wait_exit();
    }

    /// INFO persistence as name -> value.
    fn persistence(&self, con: &mut redis::Connection) -> Vec<(String, String)> {
        let text: String = redis::cmd("INFO").arg("persistence").query(con).unwrap();
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect()
    }

    /// Waits until no AOF rewrite runs or is scheduled.
    fn wait_rewrite_done(&self, con: &mut redis::Connection) {
        let deadline = Instant::now() + WAIT;
        loop {
            let info = self.persistence(con);
            let get = |k: &str| info.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            if get("aof_rewrite_in_progress") == Some("0") && get("aof_rewrite_scheduled") == Some("0") {
                assert_eq!(get("aof_last_bgrewrite_status"), Some("ok"), "{info:?}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: the AOF rewrite did not finish: {info:?}\n{}",
                self.what,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// BGREWRITEAOF and its end.
    fn rewrite(&self, con: &mut redis::Connection) {
        let reply: String = redis::cmd("BGREWRITEAOF").query(con).unwrap();
        assert!(reply.contains("rewriting"), "BGREWRITEAOF: {reply}");
        self.wait_rewrite_done(con);
    }
}

/// Copies `from/appendonlydir` into a new folder; returns that folder.
fn copy_aof(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    let (src, dst) = (from.join("appendonlydir"), to.path().join("appendonlydir"));
    fs::create_dir(&dst).unwrap();
    for e in fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    to
}

/// redis-check-aof on the manifest in `dir/appendonlydir`: it must say the AOF is valid.
fn check_aof(dir: &Path) {
    let Some(checker) = tool("redis-check-aof") else {
        eprintln!("redis-check-aof not installed; skipping the redis-check-aof check");
        return;
    };
    let manifest = dir.join("appendonlydir/appendonly.aof.manifest");
    let out = Command::new(checker)
        .arg(&manifest)
        .output()
        .expect("run redis-check-aof");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("valid") && !text.contains("not valid"),
        "redis-check-aof {}: {}\n{text}",
        manifest.display(),
        out.status
    );
}

/// The manifest's file lines as (name, type).
fn manifest_files(dir: &Path) -> Vec<(String, String)> {
    let text = fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap();
    text.lines()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let get = |k: &str| w.iter().position(|x| *x == k).map(|i| w[i + 1].to_string());
            (get("file").unwrap(), get("type").unwrap())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The dataset

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// ID of the big stream's i-th entry (four entries per millisecond).
fn big_id(i: usize) -> String {
    format!("{}-{}", 1_600_000_000_000u64 + (i / 4) as u64, i % 4)
}

/// Values of varied sizes: empty, binary (every byte value, CR LF and NUL included),
/// short text, and now and then larger than a Redis stream node's 4096 bytes.
fn value(i: usize) -> Vec<u8> {
    match i % 10 {
        0 => Vec::new(),
        1 => (0..(i % 64 + 1)).map(|b| ((b * 7 + i) % 256) as u8).collect(),
        _ if i % 100 == 7 => vec![b'L'; 5000 + i],
        _ => format!("v{i}-").repeat((i * 37) % 40).into_bytes(),
    }
}

/// Commands to run before the midway BGREWRITEAOF and after it.
struct Dataset {
    before: Vec<Cmd>,
    after: Vec<Cmd>,
}

fn dataset() -> Dataset {
    let far = now_ms() + 1_000_000_000;
    let mut b: Vec<Cmd> = vec![c!["SELECT", "0"]];
    // The big stream: 2,400 entries, some with more fields, values of every kind.
    for i in 0..2400 {
        let mut cmd = c!["XADD", "s:big", big_id(i), "n", i.to_string(), "v", value(i)];
        if i % 50 == 3 {
            cmd.extend(c!["extra", value(i + 1), b"\x00bin\xff", "x"]);
        }
        b.push(cmd);
    }
    let id = big_id;
    b.extend([
        c!["XGROUP", "CREATE", "s:big", "g1", id(599)],
        c!["XGROUP", "CREATE", "s:big", "g2", "$"],
        c!["XGROUP", "CREATE", "s:big", "g3", id(100), "ENTRIESREAD", "101"],
        c![
            "XREADGROUP",
            "GROUP",
            "g1",
            "alice",
            "COUNT",
            "60",
            "STREAMS",
            "s:big",
            ">"
        ],
        c![
            "XREADGROUP",
            "GROUP",
            "g1",
            "bob",
            "COUNT",
            "40",
            "NOACK",
            "STREAMS",
            "s:big",
            ">"
        ],
        c![
            "XREADGROUP",
            "GROUP",
            "g1",
            "carol",
            "COUNT",
            "25",
            "STREAMS",
            "s:big",
            ">"
        ],
        c!["XACK", "s:big", "g1", id(600), id(601), id(602), id(610), id(659)],
        c![
            "XCLAIM",
            "s:big",
            "g1",
            "dave",
            "0",
            id(603),
            id(604),
            id(700),
            "IDLE",
            "1000",
            "RETRYCOUNT",
            "5"
        ],
        // Pending entries whose entries are deleted: XAUTOCLAIM drops them from the PEL.
        c!["XDEL", "s:big", id(605), id(606)],
        c!["XAUTOCLAIM", "s:big", "g1", "erin", "0", "0-0", "COUNT", "6"],
        c!["XGROUP", "CREATECONSUMER", "s:big", "g1", "frank"],
        c!["XGROUP", "DELCONSUMER", "s:big", "g1", "bob"],
        c![
            "XREADGROUP",
            "GROUP",
            "g1",
            "gina",
            "COUNT",
            "3",
            "STREAMS",
            "s:big",
            ">"
        ],
        c!["XGROUP", "DELCONSUMER", "s:big", "g1", "gina"],
        c!["XGROUP", "SETID", "s:big", "g2", id(500), "ENTRIESREAD", "501"],
        c![
            "XREADGROUP",
            "GROUP",
            "g2",
            "henry",
            "COUNT",
            "10",
            "STREAMS",
            "s:big",
            ">"
        ],
        // Alice's history again: delivery counts go up.
        c![
            "XREADGROUP",
            "GROUP",
            "g1",
            "alice",
            "COUNT",
            "5",
            "STREAMS",
            "s:big",
            "0"
        ],
        c![
            "XREADGROUP",
            "GROUP",
            "g3",
            "ivan",
            "COUNT",
            "7",
            "NOACK",
            "STREAMS",
            "s:big",
            ">"
        ],
        c!["XDEL", "s:big", id(1000), id(1001), id(1500), id(300)],
    ]);
    for i in 0..100 {
        b.push(c![
            "XADD",
            "s:big",
            "MAXLEN",
            "~",
            "2300",
            "*",
            "n",
            (2400 + i).to_string(),
            "v",
            value(i)
        ]);
    }
    b.push(c!["XTRIM", "s:big", "MINID", "~", id(150)]);

    // Trims of every kind.
    for i in 0..500 {
        b.push(c!["XADD", "s:trim", format!("{}-1", 2000 + i), "f", value(i)]);
    }
    b.extend([
        c!["XTRIM", "s:trim", "MAXLEN", "=", "400"],
        c!["XADD", "s:trim", "MINID", "=", "2200-0", "*", "f", "minid"],
        c!["XTRIM", "s:trim", "MAXLEN", "~", "100", "LIMIT", "150"],
        c!["XADD", "s:trim", "MAXLEN", "=", "250", "*", "f", "last"],
        c!["EXPIRE", "s:trim", "500000"],
    ]);
    // The last entry deleted: the last ID stays, max-deleted-entry-id moves.
    b.extend([
        c!["XADD", "s:lastdel", "1-1", "a", "1"],
        c!["XADD", "s:lastdel", "2-1", "a", "2"],
        c!["XADD", "s:lastdel", "3-1", "a", ""],
        c!["XDEL", "s:lastdel", "3-1"],
        c!["XADD", "s:setid", "5-1", "a", "1"],
        c!["XADD", "s:setid", "6-1", "a", "2"],
        c![
            "XSETID",
            "s:setid",
            "100-50",
            "ENTRIESADDED",
            "10",
            "MAXDELETEDID",
            "7-0"
        ],
        c!["PEXPIREAT", "s:setid", far.to_string()],
        // Empty streams: everything deleted, and a group made with MKSTREAM.
        c!["XADD", "s:empty1", "1-1", "a", "b"],
        c!["XDEL", "s:empty1", "1-1"],
        c!["EXPIRE", "s:empty1", "400000"],
        c!["PERSIST", "s:empty1"],
        c!["XGROUP", "CREATE", "s:empty2", "grp", "$", "MKSTREAM"],
        c!["XGROUP", "CREATECONSUMER", "s:empty2", "grp", "c1"],
        // RENAME and COPY carry groups and TTLs.
        c!["XADD", "s:ren", "1-1", "k", "v"],
        c!["XADD", "s:ren", "1-2", "k", b"\r\n\x00"],
        c!["XGROUP", "CREATE", "s:ren", "g", "0"],
        c!["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s:ren", ">"],
        c!["EXPIRE", "s:ren", "300000"],
        c!["RENAME", "s:ren", "s:renamed"],
        c!["COPY", "s:renamed", "s:copied"],
        c!["COPY", "s:renamed", "s:copy3", "DB", "3"],
        c!["XADD", "s:gone", "*", "a", "b"],
        c!["DEL", "s:gone"],
        c!["SELECT", "3"],
    ]);
    // Database 3: auto IDs, binary field names, a NOACK group and a TTL.
    for i in 0..300 {
        b.push(c!["XADD", "s3:events", "*", format!("f\x00{}", i % 3), value(i * 3)]);
    }
    b.extend([
        c!["XGROUP", "CREATE", "s3:events", "workers", "0"],
        c!["XGROUP", "CREATE", "s3:events", "audit", "0"],
        c![
            "XREADGROUP",
            "GROUP",
            "workers",
            "w1",
            "COUNT",
            "20",
            "STREAMS",
            "s3:events",
            ">"
        ],
        c![
            "XREADGROUP",
            "GROUP",
            "workers",
            "w2",
            "COUNT",
            "20",
            "STREAMS",
            "s3:events",
            ">"
        ],
        c![
            "XREADGROUP",
            "GROUP",
            "audit",
            "a1",
            "COUNT",
            "100",
            "NOACK",
            "STREAMS",
            "s3:events",
            ">"
        ],
        c!["PEXPIREAT", "s3:events", (far + 12_345).to_string()],
        c!["XADD", "s3:small", "MAXLEN", "5", "*", "x", "1"],
        c!["SELECT", "0"],
    ]);

    let mut a: Vec<Cmd> = vec![c!["SELECT", "0"]];
    for i in 0..50 {
        a.push(c!["XADD", "s:big", "*", "after", value(i + 11)]);
    }
    a.extend([
        c![
            "XREADGROUP",
            "GROUP",
            "g1",
            "alice",
            "COUNT",
            "10",
            "STREAMS",
            "s:big",
            ">"
        ],
        c!["XACK", "s:big", "g1", id(620), id(621)],
        c![
            "XCLAIM",
            "s:big",
            "g1",
            "frank",
            "0",
            id(622),
            "IDLE",
            "5000",
            "RETRYCOUNT",
            "9"
        ],
        c!["XAUTOCLAIM", "s:big", "g1", "erin", "0", "0-0", "COUNT", "2"],
        c!["XGROUP", "SETID", "s:big", "g2", "$", "ENTRIESREAD", "2300"],
        c!["XGROUP", "DESTROY", "s:big", "g3"],
        c!["XDEL", "s:big", id(2000)],
        c!["MULTI"],
        c!["XADD", "s:lastdel", "4-1", "in", "multi"],
        c!["XTRIM", "s:lastdel", "MAXLEN", "=", "1"],
        c!["EXEC"],
        c!["RENAME", "s:copied", "s:copied2"],
        c!["EXPIRE", "s:copied2", "600000"],
        c!["DEL", "s:renamed"],
        c!["XGROUP", "CREATE", "s:empty1", "late", "$"],
        c!["SELECT", "3"],
        c!["XADD", "s3:events", "*", "after", "rewrite"],
        c!["XACK", "s3:events", "workers", "0-1"],
        c![
            "XREADGROUP",
            "GROUP",
            "workers",
            "w3",
            "COUNT",
            "5",
            "NOACK",
            "STREAMS",
            "s3:events",
            ">"
        ],
        c!["PERSIST", "s3:events"],
        c!["PEXPIREAT", "s3:small", (far + 1).to_string()],
        c!["SELECT", "0"],
    ]);
    Dataset { before: b, after: a }
}

/// Runs `cmds` in pipelines; every reply must be a success.
fn run(con: &mut redis::Connection, cmds: &[Cmd]) {
    for chunk in cmds.chunks(256) {
        let mut p = redis::pipe();
        for cmd in chunk {
            let mut c = redis::cmd(std::str::from_utf8(&cmd[0]).unwrap());
            for a in &cmd[1..] {
                c.arg(&a[..]);
            }
            p.add_command(c);
        }
        // Sent packed: each error reply stays with its command.
        let replies = con
            .req_packed_commands(&p.get_packed_pipeline(), 0, chunk.len())
            .unwrap_or_else(|e| panic!("pipeline starting with {:?}: {e}", show_cmd(&chunk[0])));
        assert_eq!(replies.len(), chunk.len());
        for (cmd, r) in chunk.iter().zip(&replies) {
            assert!(!matches!(r, Value::ServerError(_)), "{}: {r:?}", show_cmd(cmd));
        }
    }
}

fn show_cmd(cmd: &Cmd) -> String {
    cmd.iter()
        .map(|a| a.escape_ascii().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------
// Dumping a server's state

fn show(v: &Value) -> String {
    match v {
        Value::Nil => "nil".into(),
        Value::Int(n) => n.to_string(),
        Value::BulkString(b) => format!("\"{}\"", b.escape_ascii()),
        Value::SimpleString(s) => format!("+{s}"),
        Value::Okay => "+OK".into(),
        Value::Array(items) => format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(", ")),
        other => format!("{other:?}"),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        other => panic!("expected a string, got {other:?}"),
    }
}

/// A flat [name, value, ...] reply as pairs.
fn pairs(v: &Value) -> Vec<(String, &Value)> {
    let Value::Array(items) = v else {
        panic!("expected an array, got {v:?}")
    };
    items.chunks(2).map(|p| (text(&p[0]), &p[1])).collect()
}

fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(items) => items,
        other => panic!("expected an array, got {other:?}"),
    }
}

fn query(con: &mut redis::Connection, args: &[&[u8]]) -> Value {
    let mut c = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con)
        .unwrap_or_else(|e| panic!("{}: {e}", show_cmd(&args.iter().map(|a| a.to_vec()).collect())))
}

/// The state of every database, one line per fact.
fn dump(con: &mut redis::Connection) -> Vec<String> {
    let mut out = Vec::new();
    for db in 0..16 {
        query(con, &[b"SELECT", db.to_string().as_bytes()]);
        let Value::Int(size) = query(con, &[b"DBSIZE"]) else {
            panic!("DBSIZE")
        };
        if size == 0 {
            continue;
        }
        out.push(format!("db {db}: {size} keys"));
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut cursor = b"0".to_vec();
        loop {
            let r = query(con, &[b"SCAN", &cursor, b"COUNT", b"1000"]);
            let r = items(&r);
            cursor = match &r[0] {
                Value::BulkString(b) => b.clone(),
                other => panic!("SCAN cursor {other:?}"),
            };
            keys.extend(items(&r[1]).iter().map(|k| match k {
                Value::BulkString(b) => b.clone(),
                other => panic!("SCAN key {other:?}"),
            }));
            if cursor == b"0" {
                break;
            }
        }
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len() as i64, size, "SCAN in db {db}");
        for key in &keys {
            let k = key.escape_ascii().to_string();
            let ty = show(&query(con, &[b"TYPE", key]));
            let exp = show(&query(con, &[b"PEXPIRETIME", key]));
            out.push(format!("key {k}: type {ty} pexpiretime {exp}"));
            if ty != "+stream" {
                continue;
            }
            stream_lines(
                &mut out,
                &k,
                &query(con, &[b"XINFO", b"STREAM", key, b"FULL", b"COUNT", b"0"]),
            );
            let groups = query(con, &[b"XINFO", b"GROUPS", key]);
            for g in items(&groups) {
                let fields = pairs(g);
                out.push(format!(
                    "{k} XINFO GROUPS: {}",
                    fields
                        .iter()
                        .map(|(n, v)| format!("{n}={}", show(v)))
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
                let name = fields.iter().find(|(n, _)| n == "name").unwrap().1;
                let Value::BulkString(name) = name else {
                    panic!("group name")
                };
                let pending = query(con, &[b"XPENDING", key, name, b"-", b"+", b"1000000"]);
                for p in items(&pending) {
                    // [id, consumer, idle, count]: the idle time is the clock's.
                    let p = items(p);
                    out.push(format!(
                        "{k} XPENDING {}: {} {} count {}",
                        name.escape_ascii(),
                        show(&p[0]),
                        show(&p[1]),
                        show(&p[3])
                    ));
                }
            }
        }
    }
    query(con, &[b"SELECT", b"0"]);
    out
}

/// XINFO STREAM FULL, without what a reload legitimately changes.
fn stream_lines(out: &mut Vec<String>, k: &str, info: &Value) {
    for (name, v) in pairs(info) {
        match name.as_str() {
            "radix-tree-keys" | "radix-tree-nodes" => {}
            "entries" => {
                for e in items(v) {
                    out.push(format!("{k} entry {}", show(e)));
                }
            }
            "groups" => {
                for g in items(v) {
                    let mut gname = String::new();
                    for (field, gv) in pairs(g) {
                        match field.as_str() {
                            "name" => {
                                gname = show(gv);
                                out.push(format!("{k} group {gname}"));
                            }
                            "pending" => {
                                for p in items(gv) {
                                    out.push(format!("{k} group {gname} pel {}", show(p)));
                                }
                            }
                            "consumers" => {
                                for c in items(gv) {
                                    let kept: Vec<String> = pairs(c)
                                        .into_iter()
                                        .filter(|(n, _)| n != "seen-time" && n != "active-time")
                                        .map(|(n, cv)| format!("{n}={}", show(cv)))
                                        .collect();
                                    out.push(format!("{k} group {gname} consumer {}", kept.join(" ")));
                                }
                            }
                            _ => out.push(format!("{k} group {gname} {field}={}", show(gv))),
                        }
                    }
                }
            }
            _ => out.push(format!("{k} {name}={}", show(v))),
        }
    }
}

/// Equal dumps, or a failure that shows where they part.
#[track_caller]
fn assert_same(left: &[String], right: &[String], what: &str) {
    if left == right {
        return;
    }
    let i = left
        .iter()
        .zip(right)
        .position(|(a, b)| a != b)
        .unwrap_or(left.len().min(right.len()));
    let around = |d: &[String]| {
        d[i.saturating_sub(3)..(i + 4).min(d.len())]
            .iter()
            .map(|l| format!("    {}", &l[..l.len().min(400)]))
            .collect::<Vec<_>>()
            .join("\n")
    };
    panic!(
        "{what}: the dumps differ at line {i} ({} vs {} lines)\nleft:\n{}\nright:\n{}",
        left.len(),
        right.len(),
        around(left),
        around(right)
    );
}

/// Sanity check on a dump: the dataset is all there.
fn assert_dataset(d: &[String]) {
    let entries = d.iter().filter(|l| l.starts_with("s:big entry")).count();
    assert!(entries >= 2000, "s:big holds {entries} entries");
    for needle in [
        "key s:empty1: type +stream pexpiretime -1",
        "key s:empty2: type +stream",
        "key s:copied2: type +stream",
        "key s:copy3: type +stream",
        "key s3:events: type +stream pexpiretime -1",
        "s:big group \"g1\" consumer name=\"frank\"",
    ] {
        assert!(
            d.iter().any(|l| l.starts_with(needle)),
            "no line {needle:?} in the dump"
        );
    }
    assert!(
        !d.iter().any(|l| l.starts_with("key s:renamed:")),
        "s:renamed was deleted"
    );
    assert!(!d.iter().any(|l| l.contains("group \"g3\"")), "g3 was destroyed");
}

/// The dataset with a BGREWRITEAOF in the middle; returns the dump after it.
fn load_dataset(server: &Server) -> Vec<String> {
    let data = dataset();
    let mut con = server.conn();
    run(&mut con, &data.before);
    server.rewrite(&mut con);
    run(&mut con, &data.after);
    let d = dump(&mut con);
    assert_dataset(&d);
    d
}

// ---------------------------------------------------------------------------------------
// The tests

/// fanout writes the files; redis-server 7.0 loads them and holds the same data, and
/// redis-check-aof finds them valid.
#[test]
fn fanout_aof_loads_in_redis() {
    let Some(redis) = redis_server() else { return };
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let fanout = Server::fanout(dir.path(), &["--appendonly", "yes", "--appendfsync", "always"]);
    let before = load_dataset(&fanout);
    fanout.shutdown();
    check_aof(dir.path());

    let copy = copy_aof(dir.path());
    let r = Server::redis(&redis, copy.path(), &[]);
    let after = dump(&mut r.conn());
    assert!(
        r.log_text().contains("DB loaded from append only file"),
        "redis-server did not load the AOF:\n{}",
        r.log_text()
    );
    assert_same(&before, &after, "fanout (left) vs redis-server on fanout's AOF (right)");
    r.shutdown();
    eprintln!("fanout_aof_loads_in_redis: {:?}", t0.elapsed());
}

/// redis-server 7.0 writes the files; fanout loads them and holds the same data.
#[test]
fn redis_aof_loads_in_fanout() {
    let Some(redis) = redis_server() else { return };
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let r = Server::redis(&redis, dir.path(), &["--appendfsync", "always"]);
    let before = load_dataset(&r);
    r.shutdown();

    // Calibration: Redis itself gets the same data back from these files.
    let copy = copy_aof(dir.path());
    let again = Server::redis(&redis, copy.path(), &[]);
    let reloaded = dump(&mut again.conn());
    again.shutdown();
    assert_same(
        &before,
        &reloaded,
        "redis-server (left) vs redis-server on its AOF (right)",
    );

    let copy = copy_aof(dir.path());
    let fanout = Server::fanout(copy.path(), &["--appendonly", "yes"]);
    let after = dump(&mut fanout.conn());
    assert_same(&before, &after, "redis-server (left) vs fanout on its AOF (right)");
    fanout.shutdown();
    eprintln!("redis_aof_loads_in_fanout: {:?}", t0.elapsed());
}

/// fanout -> SIGTERM -> fanout on the same folder; then again after a BGREWRITEAOF,
/// which leaves one base and one incr file and nothing else.
#[test]
fn fanout_restart_round_trip() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let args = ["--appendonly", "yes", "--appendfsync", "always"];
    let first = Server::fanout(dir.path(), &args);
    let before = load_dataset(&first);
    first.terminate();

    let second = Server::fanout(dir.path(), &args);
    let mut con = second.conn();
    assert_same(
        &before,
        &dump(&mut con),
        "before SIGTERM (left) vs after restart (right)",
    );
    second.rewrite(&mut con);
    let files = manifest_files(dir.path());
    let kinds: Vec<&str> = files.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(kinds, ["b", "i"], "manifest after BGREWRITEAOF: {files:?}");
    let mut on_disk: Vec<String> = fs::read_dir(dir.path().join("appendonlydir"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    expected.push("appendonly.aof.manifest".into());
    expected.sort();
    assert_eq!(on_disk, expected, "the files older than the rewrite must be gone");
    run(
        &mut con,
        &[
            c!["XADD", "s:big", "*", "post", "rewrite"],
            c![
                "XREADGROUP",
                "GROUP",
                "g1",
                "zed",
                "COUNT",
                "2",
                "STREAMS",
                "s:big",
                ">"
            ],
        ],
    );
    let before = dump(&mut con);
    drop(con);
    second.terminate();

    let third = Server::fanout(dir.path(), &args);
    assert_same(
        &before,
        &dump(&mut third.conn()),
        "after BGREWRITEAOF (left) vs restart (right)",
    );
    third.terminate();
    check_aof(dir.path());
    eprintln!("fanout_restart_round_trip: {:?}", t0.elapsed());
}

/// CONFIG SET appendonly yes on a server that holds data: what was there before and what
/// is written after survive a restart with --appendonly yes.
#[test]
fn config_set_appendonly_at_run_time() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::fanout(dir.path(), &["--appendonly", "no", "--appendfsync", "always"]);
    let data = dataset();
    let mut con = s.conn();
    run(&mut con, &data.before);
    let ok: String = redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("yes")
        .query(&mut con)
        .unwrap();
    assert_eq!(ok, "OK");
    s.wait_rewrite_done(&mut con);
    run(&mut con, &data.after);
    let before = dump(&mut con);
    assert_dataset(&before);
    drop(con);
    s.shutdown();
    check_aof(dir.path());

    let s = Server::fanout(dir.path(), &["--appendonly", "yes"]);
    assert_same(
        &before,
        &dump(&mut s.conn()),
        "before (left) vs restart with appendonly yes (right)",
    );
    s.shutdown();
    eprintln!("config_set_appendonly_at_run_time: {:?}", t0.elapsed());
}

/// DEBUG LOADAOF replaces the data with what the files say: the same data.
#[test]
fn debug_loadaof_keeps_the_state() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::fanout(
        dir.path(),
        &[
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--enable-debug-command",
            "yes",
        ],
    );
    let before = load_dataset(&s);
    let mut con = s.conn();
    let ok: String = redis::cmd("DEBUG").arg("LOADAOF").query(&mut con).unwrap();
    assert_eq!(ok, "OK");
    assert_same(&before, &dump(&mut con), "before (left) vs after DEBUG LOADAOF (right)");
    drop(con);
    s.shutdown();
    eprintln!("debug_loadaof_keeps_the_state: {:?}", t0.elapsed());
}

/// A group read journaled only in an incr file (no rewrite since) keeps the group's
/// entries-read across a restart, in fanout and in redis-server loading fanout's files.
/// (Redis 7.0 propagates such a read as XCLAIM ... LASTID only, which does not carry
/// entries-read: its own AOF comes back with entries-read nil and lag nil.)
#[test]
fn group_entries_read_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--appendonly", "yes", "--appendfsync", "always"];
    let s = Server::fanout(dir.path(), &args);
    let mut con = s.conn();
    let mut cmds = vec![c!["XGROUP", "CREATE", "s", "g", "0", "MKSTREAM"]];
    cmds.extend((1..=4).map(|i| c!["XADD", "s", format!("{i}-1"), "a", "b"]));
    cmds.push(c!["XREADGROUP", "GROUP", "g", "c", "COUNT", "2", "STREAMS", "s", ">"]);
    cmds.push(c!["XREADGROUP", "GROUP", "g", "c", "COUNT", "5", "STREAMS", "s", "0"]);
    run(&mut con, &cmds);
    let before = dump(&mut con);
    assert!(before.iter().any(|l| l.contains("entries-read=2 lag=2")), "{before:#?}");
    drop(con);
    s.terminate();

    let copy = copy_aof(dir.path());
    let s = Server::fanout(dir.path(), &args);
    assert_same(&before, &dump(&mut s.conn()), "before (left) vs restart (right)");
    s.terminate();
    check_aof(dir.path());
    if let Some(redis) = redis_server() {
        let r = Server::redis(&redis, copy.path(), &[]);
        assert_same(&before, &dump(&mut r.conn()), "fanout (left) vs redis-server (right)");
        r.shutdown();
    }
}
