//! The append-only file seen through a client, in process: what each write puts in the
//! file (the propagated forms Redis writes, byte for byte where it matters), what never
//! goes there (pub/sub), INFO `persistence`, BGREWRITEAOF, SAVE/BGSAVE/LASTSAVE and DEBUG,
//! and a replay rule (nothing expires while the file is replayed). Crashes are in
//! `aof_crash.rs`, loading by and from redis-server in `aof_interop.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::short::{e, q, show};
use common::{start_server_with, wait_until, TestServer};

async fn aof_server(dir: &Path, extra: &[(&str, &str)]) -> TestServer {
    let d = dir.to_str().unwrap().to_string();
    let mut o: Vec<(&str, &str)> = vec![("appendonly", "yes"), ("dir", &d)];
    o.extend_from_slice(extra);
    start_server_with(&o).await
}

/// The incr file's text, `\r\n` shown as spaces.
fn incr_text(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap();
    let name = text
        .lines()
        .rfind(|l| l.ends_with("type i"))
        .and_then(|l| l.split(' ').nth(1))
        .unwrap()
        .to_string();
    String::from_utf8_lossy(&std::fs::read(dir.join("appendonlydir").join(name)).unwrap()).replace("\r\n", " ")
}

fn info(text: &redis::Value, field: &str) -> String {
    let redis::Value::BulkString(b) = text else {
        panic!("INFO: {text:?}")
    };
    let s = String::from_utf8_lossy(b);
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {field} in INFO"))
}

#[tokio::test]
async fn writes_are_journaled_as_redis_propagates_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = aof_server(dir.path(), &[]).await;
    let mut con = s.conn(false).await;
    q(&mut con, &["SELECT", "2"]).await;
    for i in 1..=300 {
        q(&mut con, &["XADD", "s", &format!("{i}-1"), "f", "v"]).await;
    }
    // `~` becomes `=` with the exact length the trim left; `*` becomes the ID.
    let id = show(&q(&mut con, &["XADD", "s", "MAXLEN", "~", "150", "*", "f", "v"]).await);
    q(&mut con, &["XGROUP", "CREATE", "s", "g", "0"]).await;
    q(
        &mut con,
        &["XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "s", ">"],
    )
    .await;
    q(&mut con, &["EXPIRE", "s", "1000"]).await;
    q(&mut con, &["PUBLISH", "news", "never written"]).await;
    let text = incr_text(dir.path());
    assert!(text.starts_with("*2 $6 SELECT $1 2 *5 $4 XADD $1 s $3 1-1 "), "{text}");
    let len = show(&q(&mut con, &["XLEN", "s"]).await);
    assert!(len != "301", "~ 150 trims whole nodes: {len}");
    let id = id.trim_matches('"');
    let xadd = format!(
        "*8 $4 XADD $1 s $6 MAXLEN $1 = ${} {len} ${} {id} $1 f $1 v ",
        len.len(),
        id.len()
    );
    assert!(text.contains(&xadd), "{xadd} not in {text}");
    // The delivery as XCLAIM (owner, time, count, LASTID) and the group's position, in
    // one transaction.
    let first = show(&q(&mut con, &["XRANGE", "s", "-", "+", "COUNT", "1"]).await);
    let first_id = first.split('"').nth(1).unwrap().to_string();
    assert!(
        text.contains(&format!(
            "*1 $5 MULTI *14 $6 XCLAIM $1 s $1 g $5 alice $1 0 ${} {first_id} $4 TIME $13 ",
            first_id.len()
        )),
        "{text}"
    );
    assert!(
        text.contains(" $10 RETRYCOUNT $1 1 $5 FORCE $6 JUSTID $6 LASTID "),
        "{text}"
    );
    assert!(text.contains("*7 $6 XGROUP $5 SETID $1 s $1 g "), "{text}");
    assert!(text.contains(" $11 ENTRIESREAD "), "{text}");
    // EXPIRE as an absolute PEXPIREAT.
    assert!(text.contains("*3 $9 PEXPIREAT $1 s $13 "), "{text}");
    assert!(!text.contains("never written"), "pub/sub is never persisted");
}

#[tokio::test]
async fn info_persistence_bgrewriteaof_and_lastsave() {
    let dir = tempfile::tempdir().unwrap();
    let s = aof_server(dir.path(), &[("appendfsync", "always")]).await;
    let mut con = s.conn(false).await;
    let inf = q(&mut con, &["INFO", "persistence"]).await;
    assert_eq!(info(&inf, "aof_enabled"), "1");
    assert_eq!(info(&inf, "aof_last_write_status"), "ok");
    assert_eq!(info(&inf, "aof_rewrites"), "0");
    let before: u64 = info(&inf, "aof_current_size").parse().unwrap();
    for i in 0..100 {
        q(&mut con, &["XADD", "k", "*", "n", &i.to_string()]).await;
    }
    let inf = q(&mut con, &["INFO", "persistence"]).await;
    let after: u64 = info(&inf, "aof_current_size").parse().unwrap();
    assert!(after > before + 100 * 20, "{before} -> {after}");
    let saved = show(&q(&mut con, &["LASTSAVE"]).await);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        show(&q(&mut con, &["BGREWRITEAOF"]).await),
        "Background append only file rewriting started"
    );
    let mut con2 = s.conn(false).await;
    wait_until("the rewrite to finish", || {
        let mut c = con2.clone();
        async move {
            let inf = q(&mut c, &["INFO", "persistence"]).await;
            info(&inf, "aof_rewrite_in_progress") == "0" && info(&inf, "aof_rewrites") == "1"
        }
    })
    .await;
    let inf = q(&mut con2, &["INFO", "persistence"]).await;
    assert_eq!(info(&inf, "aof_last_bgrewrite_status"), "ok");
    assert_ne!(
        show(&q(&mut con, &["LASTSAVE"]).await),
        saved,
        "LASTSAVE is the rewrite's end"
    );
    let manifest = std::fs::read_to_string(dir.path().join("appendonlydir/appendonly.aof.manifest")).unwrap();
    assert_eq!(
        manifest,
        "file appendonly.aof.2.base.aof seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
    );
    let files: Vec<PathBuf> = std::fs::read_dir(dir.path().join("appendonlydir"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 3, "the old base and incr were deleted: {files:?}");
    // No RDB: SAVE and BGSAVE say so; DEBUG is off unless enabled, as in Redis.
    assert!(e(&mut con, &["SAVE"])
        .await
        .starts_with("ERR fanout has no RDB snapshots"));
    assert!(e(&mut con, &["BGSAVE"])
        .await
        .starts_with("ERR fanout has no RDB snapshots"));
    assert!(e(&mut con, &["DEBUG", "LOADAOF"])
        .await
        .starts_with("ERR DEBUG command not allowed"));
}

#[tokio::test]
async fn bgrewriteaof_needs_the_aof_on() {
    let s = start_server_with(&[]).await;
    let mut con = s.conn(false).await;
    let inf = q(&mut con, &["INFO", "persistence"]).await;
    assert_eq!(info(&inf, "aof_enabled"), "0");
    assert_eq!(
        e(&mut con, &["BGREWRITEAOF"]).await,
        "ERR Background append only file rewriting needs appendonly yes in fanout"
    );
}

#[tokio::test]
async fn nothing_expires_while_the_file_is_replayed() {
    // A key whose deadline passed while the server was down, written to after its
    // PEXPIREAT: Redis keeps it through the load and then expires it; it must not come
    // back as a new key holding only the later entries.
    let dir = tempfile::tempdir().unwrap();
    let aof = dir.path().join("appendonlydir");
    std::fs::create_dir_all(&aof).unwrap();
    std::fs::write(
        aof.join("appendonly.aof.manifest"),
        "file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
    )
    .unwrap();
    std::fs::write(aof.join("appendonly.aof.1.base.aof"), "").unwrap();
    let cmd = |args: &[&str]| {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        out
    };
    let mut incr = String::new();
    for c in [
        &["SELECT", "0"][..],
        &["XADD", "gone", "1-1", "a", "1"],
        &["PEXPIREAT", "gone", "1000"],
        &["XADD", "gone", "2-1", "b", "2"],
        &["XADD", "kept", "1-1", "a", "1"],
    ] {
        incr.push_str(&cmd(c));
    }
    std::fs::write(aof.join("appendonly.aof.1.incr.aof"), incr).unwrap();
    let s = aof_server(dir.path(), &[]).await;
    let mut con = s.conn(false).await;
    assert_eq!(show(&q(&mut con, &["EXISTS", "gone"]).await), "0");
    assert_eq!(show(&q(&mut con, &["XLEN", "kept"]).await), "1");
}

#[tokio::test]
async fn the_file_is_rewritten_when_it_grows() {
    let dir = tempfile::tempdir().unwrap();
    let s = aof_server(
        dir.path(),
        &[
            ("auto-aof-rewrite-min-size", "20kb"),
            ("auto-aof-rewrite-percentage", "100"),
        ],
    )
    .await;
    let mut con = s.conn(false).await;
    let value = "v".repeat(100);
    for _ in 0..300 {
        q(&mut con, &["XADD", "k", "MAXLEN", "10", "*", "f", &value]).await;
    }
    wait_until("an automatic rewrite", || {
        let mut c = con.clone();
        async move {
            let inf = q(&mut c, &["INFO", "persistence"]).await;
            info(&inf, "aof_rewrites") != "0" && info(&inf, "aof_rewrite_in_progress") == "0"
        }
    })
    .await;
    let inf = q(&mut con, &["INFO", "persistence"]).await;
    let (cur, base): (u64, u64) = (
        info(&inf, "aof_current_size").parse().unwrap(),
        info(&inf, "aof_base_size").parse().unwrap(),
    );
    assert!(cur < 20 * 1024, "the rewritten file holds 10 entries: {cur} bytes");
    assert!(base > 0 && base <= cur, "{base} {cur}");
}

#[tokio::test]
async fn a_single_file_aof_from_redis_6_is_moved_into_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("appendonly.aof"),
        "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n$3\r\n1-1\r\n$1\r\nf\r\n$1\r\nv\r\n",
    )
    .unwrap();
    let s = aof_server(dir.path(), &[]).await;
    let mut con = s.conn(false).await;
    assert_eq!(show(&q(&mut con, &["XLEN", "s"]).await), "1");
    assert!(!dir.path().join("appendonly.aof").exists());
    let manifest = std::fs::read_to_string(dir.path().join("appendonlydir/appendonly.aof.manifest")).unwrap();
    assert_eq!(
        manifest,
        "file appendonly.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
}
