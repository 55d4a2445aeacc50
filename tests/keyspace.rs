//! The keyspace through the `redis` crate, in RESP2 and RESP3: databases, the generic key
//! commands (DEL, EXISTS, TYPE, KEYS, SCAN and its guarantee, RANDOMKEY, DBSIZE, FLUSHDB,
//! FLUSHALL, RENAME, COPY), expiry (the EXPIRE and TTL families, lazy and active),
//! INFO keyspace, OBJECT and MEMORY USAGE, WATCH, ACL key permissions, keyspace
//! notifications and maxmemory, on stream keys (the one value type), as Redis 7.2 does.
//!
//! Every wait is bounded by `WAIT` (or a deadline).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::short::*;
use common::*;
use futures_util::StreamExt;
use redis::Value as V;

type Con = redis::aio::MultiplexedConnection;

const PROTOS: [bool; 2] = [false, true];

// ---------------------------------------------------------------------------------------
// Helpers (private to this file)
// ---------------------------------------------------------------------------------------

fn int(v: &V) -> i64 {
    match v {
        V::Int(n) => *n,
        other => panic!("not an integer: {}", show(other)),
    }
}

fn items(v: &V) -> &[V] {
    match v {
        V::Array(items) | V::Set(items) => items,
        other => panic!("not an array: {}", show(other)),
    }
}

fn text(v: &V) -> String {
    match v {
        V::VerbatimString { text, .. } => text.clone(),
        other => String::from_utf8_lossy(&value_bytes(other)).into_owned(),
    }
}

/// The value of `name` in a map reply (RESP3 map or RESP2 flat array).
fn field<'a>(v: &'a V, name: &str) -> &'a V {
    let hit =
        |k: &V| matches!(k, V::BulkString(b) if b == name.as_bytes()) || matches!(k, V::SimpleString(s) if s == name);
    match v {
        V::Map(pairs) => pairs.iter().find(|(k, _)| hit(k)).map(|(_, v)| v),
        V::Array(items) => items.chunks(2).find(|kv| hit(&kv[0])).map(|kv| &kv[1]),
        _ => None,
    }
    .unwrap_or_else(|| panic!("no field {name:?} in {}", show(v)))
}

/// Sorted texts of an array reply.
fn sorted(v: &V) -> Vec<String> {
    let mut out: Vec<String> = items(v).iter().map(text).collect();
    out.sort();
    out
}

async fn info(con: &mut Con, section: &str) -> String {
    text(&q(con, &["INFO", section]).await)
}

/// Polls `check` (a command's rendered reply) until it equals `want` (bounded).
async fn poll_until(con: &mut Con, parts: &[&str], want: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = show(&q(con, parts).await);
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{parts:?} stayed {got}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn add(con: &mut Con, key: &str) {
    q(con, &["XADD", key, "*", "f", "v"]).await;
}

/// A connection authenticated as `user` (password `pw`).
async fn conn_as(s: &TestServer, resp3: bool, user: &str) -> Con {
    let mut con = s.conn(resp3).await;
    assert_eq!(show(&q(&mut con, &["AUTH", user, "pw"]).await), "OK");
    con
}

// ---------------------------------------------------------------------------------------
// Databases and generic key commands
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_isolates_databases_and_pubsub_ignores_them() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut a = s.conn(resp3).await;
        q(&mut a, &["FLUSHALL"]).await;
        q(&mut a, &["SELECT", "1"]).await;
        q(&mut a, &["XADD", "k", "1-1", "f", "one"]).await;
        q(&mut a, &["SELECT", "0"]).await;
        assert_eq!(show(&q(&mut a, &["EXISTS", "k"]).await), "0");
        q(&mut a, &["XADD", "k", "1-1", "f", "zero"]).await;
        assert_eq!(show(&q(&mut a, &["DBSIZE"]).await), "1");
        q(&mut a, &["SELECT", "1"]).await;
        assert_eq!(
            show(&q(&mut a, &["XRANGE", "k", "-", "+"]).await),
            r#"[["1-1",["f","one"]]]"#
        );
        assert_eq!(show(&q(&mut a, &["DBSIZE"]).await), "1");
        q(&mut a, &["DEL", "k"]).await;
        q(&mut a, &["SELECT", "0"]).await;
        assert_eq!(show(&q(&mut a, &["XLEN", "k"]).await), "1");
        assert_eq!(e(&mut a, &["SELECT", "16"]).await, "ERR DB index is out of range");
        // A subscriber (database 0) hears a publisher that selected database 5.
        let mut sub = s.pubsub().await;
        sub.subscribe("news").await.unwrap();
        q(&mut a, &["SELECT", "5"]).await;
        assert_eq!(show(&q(&mut a, &["PUBLISH", "news", "hi"]).await), "1");
        let mut msgs = sub.on_message();
        let m = tokio::time::timeout(WAIT, msgs.next()).await.unwrap().unwrap();
        assert_eq!(m.get_payload_bytes(), b"hi");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn del_unlink_exists_type_keys_scan_randomkey_dbsize() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        assert_eq!(show(&q(&mut con, &["RANDOMKEY"]).await), "nil");
        for k in ["a", "b", "c", "app:1", "app:2", "apple"] {
            add(&mut con, k).await;
        }
        assert_eq!(show(&q(&mut con, &["DBSIZE"]).await), "6");
        assert_eq!(show(&q(&mut con, &["DEL", "a", "missing", "a"]).await), "1");
        assert_eq!(show(&q(&mut con, &["UNLINK", "b", "missing"]).await), "1");
        // EXISTS counts duplicates.
        assert_eq!(show(&q(&mut con, &["EXISTS", "c", "c", "missing", "app:1"]).await), "3");
        assert_eq!(show(&q(&mut con, &["TYPE", "c"]).await), "stream");
        assert_eq!(show(&q(&mut con, &["TYPE", "missing"]).await), "none");
        assert_eq!(sorted(&q(&mut con, &["KEYS", "app:*"]).await), ["app:1", "app:2"]);
        assert_eq!(sorted(&q(&mut con, &["KEYS", "ap?l*"]).await), ["apple"]);
        assert_eq!(sorted(&q(&mut con, &["KEYS", "app:[^1]"]).await), ["app:2"]);
        assert_eq!(
            sorted(&q(&mut con, &["KEYS", "*"]).await),
            ["app:1", "app:2", "apple", "c"]
        );
        // SCAN: MATCH, COUNT, TYPE.
        let scan_all = |args: Vec<&'static str>| {
            let mut con = con.clone();
            async move {
                let mut cursor = "0".to_string();
                let mut seen = Vec::new();
                for _ in 0..1000 {
                    let mut parts = vec!["SCAN".to_string(), cursor.clone()];
                    parts.extend(args.iter().map(|s| s.to_string()));
                    let r = q(&mut con, &parts).await;
                    let r = items(&r);
                    cursor = text(&r[0]);
                    seen.extend(items(&r[1]).iter().map(text));
                    if cursor == "0" {
                        seen.sort();
                        return seen;
                    }
                }
                panic!("SCAN never finished");
            }
        };
        assert_eq!(
            scan_all(vec!["MATCH", "app*", "COUNT", "1"]).await,
            ["app:1", "app:2", "apple"]
        );
        assert_eq!(scan_all(vec!["TYPE", "stream"]).await, ["app:1", "app:2", "apple", "c"]);
        assert_eq!(scan_all(vec!["TYPE", "STREAM", "MATCH", "c"]).await, ["c"]);
        assert!(scan_all(vec!["TYPE", "string"]).await.is_empty());
        assert_eq!(e(&mut con, &["SCAN", "0", "COUNT", "0"]).await, "ERR syntax error");
        assert_eq!(e(&mut con, &["SCAN", "abc"]).await, "ERR invalid cursor");
        assert_eq!(e(&mut con, &["SCAN", "0", "FOO", "1"]).await, "ERR syntax error");
        // RANDOMKEY: one of the keys; over many calls more than one.
        let keys: HashSet<String> = ["app:1", "app:2", "apple", "c"].map(String::from).into();
        let mut got = HashSet::new();
        for _ in 0..100 {
            let k = text(&q(&mut con, &["RANDOMKEY"]).await);
            assert!(keys.contains(&k), "{k}");
            got.insert(k);
        }
        assert!(got.len() > 1, "RANDOMKEY always gave {got:?}");
        assert_eq!(show(&q(&mut con, &["DBSIZE"]).await), "4");
    }
}

/// SCAN's guarantee: a key present for the whole scan is returned at least once, while
/// other keys come and go between the calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_returns_every_key_present_for_the_whole_scan() {
    let s = start_server().await;
    let mut con = s.conn(false).await;
    let mut pipe = redis::pipe();
    for i in 0..2000 {
        pipe.cmd("XADD")
            .arg(format!("stay:{i}"))
            .arg("1-1")
            .arg("f")
            .arg("v")
            .ignore();
    }
    for i in 0..500 {
        pipe.cmd("XADD")
            .arg(format!("tmp:{i}"))
            .arg("1-1")
            .arg("f")
            .arg("v")
            .ignore();
    }
    let () = tokio::time::timeout(WAIT, pipe.query_async(&mut con))
        .await
        .unwrap()
        .unwrap();
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let r = q(&mut con, &["SCAN", &cursor, "COUNT", "20"]).await;
        let r = items(&r);
        cursor = text(&r[0]);
        seen.extend(items(&r[1]).iter().map(text));
        if cursor == "0" {
            break;
        }
        // Between calls: new keys appear, temporary ones go.
        let mut churn = redis::pipe();
        for j in 0..5 {
            churn
                .cmd("XADD")
                .arg(format!("new:{calls}:{j}"))
                .arg("1-1")
                .arg("f")
                .arg("v")
                .ignore();
            churn.cmd("DEL").arg(format!("tmp:{}", (calls * 5 + j) % 500)).ignore();
        }
        let () = churn.query_async(&mut con).await.unwrap();
        calls += 1;
        assert!(calls < 10_000, "SCAN never finished");
    }
    let missing: Vec<usize> = (0..2000).filter(|i| !seen.contains(&format!("stay:{i}"))).collect();
    assert!(missing.is_empty(), "never returned: {missing:?}");
    assert!(seen
        .iter()
        .all(|k| k.starts_with("stay:") || k.starts_with("tmp:") || k.starts_with("new:")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushdb_and_flushall_sync_and_async() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        for db in ["0", "1", "2"] {
            q(&mut con, &["SELECT", db]).await;
            add(&mut con, "k").await;
            add(&mut con, "j").await;
        }
        q(&mut con, &["SELECT", "1"]).await;
        assert_eq!(show(&q(&mut con, &["FLUSHDB"]).await), "OK");
        assert_eq!(show(&q(&mut con, &["DBSIZE"]).await), "0");
        q(&mut con, &["SELECT", "0"]).await;
        assert_eq!(show(&q(&mut con, &["DBSIZE"]).await), "2");
        assert_eq!(show(&q(&mut con, &["FLUSHDB", "ASYNC"]).await), "OK");
        assert_eq!(show(&q(&mut con, &["DBSIZE"]).await), "0");
        q(&mut con, &["SELECT", "2"]).await;
        assert_eq!(show(&q(&mut con, &["DBSIZE"]).await), "2");
        assert_eq!(e(&mut con, &["FLUSHALL", "foo"]).await, "ERR syntax error");
        assert_eq!(e(&mut con, &["FLUSHDB", "SYNC", "ASYNC"]).await, "ERR syntax error");
        assert_eq!(show(&q(&mut con, &["FLUSHALL", "ASYNC"]).await), "OK");
        assert_eq!(show(&q(&mut con, &["DBSIZE"]).await), "0");
        add(&mut con, "k").await;
        q(&mut con, &["SELECT", "0"]).await;
        add(&mut con, "k").await;
        assert_eq!(show(&q(&mut con, &["FLUSHALL", "SYNC"]).await), "OK");
        assert_eq!(show(&q(&mut con, &["DBSIZE"]).await), "0");
        q(&mut con, &["SELECT", "2"]).await;
        assert_eq!(show(&q(&mut con, &["DBSIZE"]).await), "0");
        q(&mut con, &["SELECT", "0"]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_and_renamenx_keep_ttl_and_groups() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        q(&mut con, &["XADD", "k", "1-1", "f", "v"]).await;
        q(&mut con, &["XGROUP", "CREATE", "k", "g", "0"]).await;
        q(&mut con, &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "k", ">"]).await;
        q(&mut con, &["PEXPIRE", "k", "100000"]).await;
        assert_eq!(show(&q(&mut con, &["RENAME", "k", "k2"]).await), "OK");
        assert_eq!(show(&q(&mut con, &["EXISTS", "k"]).await), "0");
        let pttl = int(&q(&mut con, &["PTTL", "k2"]).await);
        assert!(pttl > 90_000 && pttl <= 100_000, "{pttl}");
        let groups = q(&mut con, &["XINFO", "GROUPS", "k2"]).await;
        assert_eq!(text(field(&items(&groups)[0], "name")), "g");
        assert_eq!(show(field(&items(&groups)[0], "pending")), "1");
        // RENAME onto an existing key replaces it (and its TTL).
        q(&mut con, &["XADD", "other", "9-9", "x", "y"]).await;
        q(&mut con, &["EXPIRE", "other", "5000"]).await;
        q(&mut con, &["PERSIST", "k2"]).await;
        q(&mut con, &["RENAME", "k2", "other"]).await;
        assert_eq!(show(&q(&mut con, &["TTL", "other"]).await), "-1");
        assert_eq!(
            show(&q(&mut con, &["XRANGE", "other", "-", "+"]).await),
            r#"[["1-1",["f","v"]]]"#
        );
        // RENAMENX.
        add(&mut con, "taken").await;
        assert_eq!(show(&q(&mut con, &["RENAMENX", "other", "taken"]).await), "0");
        assert_eq!(show(&q(&mut con, &["RENAMENX", "other", "free"]).await), "1");
        assert_eq!(show(&q(&mut con, &["EXISTS", "other", "free"]).await), "1");
        assert_eq!(show(&q(&mut con, &["RENAMENX", "free", "free"]).await), "0");
        assert_eq!(show(&q(&mut con, &["RENAME", "free", "free"]).await), "OK");
        assert_eq!(e(&mut con, &["RENAME", "missing", "x"]).await, "ERR no such key");
        assert_eq!(e(&mut con, &["RENAMENX", "missing", "x"]).await, "ERR no such key");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_to_a_key_and_another_database() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        q(&mut con, &["XADD", "k", "1-1", "f", "v"]).await;
        q(&mut con, &["XGROUP", "CREATE", "k", "g", "0"]).await;
        q(&mut con, &["EXPIRE", "k", "1000"]).await;
        assert_eq!(show(&q(&mut con, &["COPY", "k", "k2"]).await), "1");
        assert_eq!(show(&q(&mut con, &["COPY", "k", "k2"]).await), "0");
        let ttl = int(&q(&mut con, &["TTL", "k2"]).await);
        assert!(ttl > 900 && ttl <= 1000, "{ttl}");
        assert_eq!(items(&q(&mut con, &["XINFO", "GROUPS", "k2"]).await).len(), 1);
        // The copy is independent.
        q(&mut con, &["XADD", "k2", "2-1", "f", "w"]).await;
        assert_eq!(show(&q(&mut con, &["XLEN", "k"]).await), "1");
        assert_eq!(show(&q(&mut con, &["COPY", "k", "k2", "REPLACE"]).await), "1");
        assert_eq!(show(&q(&mut con, &["XLEN", "k2"]).await), "1");
        assert_eq!(show(&q(&mut con, &["COPY", "k", "k", "DB", "3"]).await), "1");
        assert_eq!(show(&q(&mut con, &["COPY", "missing", "x"]).await), "0");
        assert_eq!(
            e(&mut con, &["COPY", "k", "k"]).await,
            "ERR source and destination objects are the same"
        );
        assert_eq!(
            e(&mut con, &["COPY", "k", "x", "DB", "99"]).await,
            "ERR DB index is out of range"
        );
        assert_eq!(
            e(&mut con, &["COPY", "k", "x", "DB", "abc"]).await,
            "ERR value is not an integer or out of range"
        );
        assert_eq!(e(&mut con, &["COPY", "k", "x", "FOO"]).await, "ERR syntax error");
        q(&mut con, &["SELECT", "3"]).await;
        assert_eq!(
            show(&q(&mut con, &["XRANGE", "k", "-", "+"]).await),
            r#"[["1-1",["f","v"]]]"#
        );
        q(&mut con, &["SELECT", "0"]).await;
    }
}

// ---------------------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_family_options_ttls_and_errors() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        add(&mut con, "k").await;
        for cmd in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
            assert_eq!(show(&q(&mut con, &[cmd, "missing"]).await), "-2", "{cmd}");
            assert_eq!(show(&q(&mut con, &[cmd, "k"]).await), "-1", "{cmd}");
        }
        assert_eq!(show(&q(&mut con, &["EXPIRE", "missing", "10"]).await), "0");
        // NX / XX / GT / LT.
        assert_eq!(show(&q(&mut con, &["EXPIRE", "k", "100", "XX"]).await), "0");
        assert_eq!(show(&q(&mut con, &["EXPIRE", "k", "100", "GT"]).await), "0");
        assert_eq!(show(&q(&mut con, &["EXPIRE", "k", "100", "NX"]).await), "1");
        assert_eq!(show(&q(&mut con, &["EXPIRE", "k", "200", "NX"]).await), "0");
        assert_eq!(show(&q(&mut con, &["EXPIRE", "k", "50", "GT"]).await), "0");
        assert_eq!(show(&q(&mut con, &["EXPIRE", "k", "50", "LT"]).await), "1");
        assert_eq!(show(&q(&mut con, &["TTL", "k"]).await), "50");
        assert_eq!(show(&q(&mut con, &["PEXPIRE", "k", "80000", "XX", "GT"]).await), "1");
        let pttl = int(&q(&mut con, &["PTTL", "k"]).await);
        assert!(pttl > 70_000 && pttl <= 80_000, "{pttl}");
        // Absolute forms.
        let at = now_ms() / 1000 + 1000;
        assert_eq!(show(&q(&mut con, &["EXPIREAT", "k", &at.to_string()]).await), "1");
        assert_eq!(show(&q(&mut con, &["EXPIRETIME", "k"]).await), at.to_string());
        assert_eq!(show(&q(&mut con, &["PEXPIRETIME", "k"]).await), (at * 1000).to_string());
        let pat = at * 1000 + 1234;
        assert_eq!(
            show(&q(&mut con, &["PEXPIREAT", "k", &pat.to_string(), "GT"]).await),
            "1"
        );
        assert_eq!(show(&q(&mut con, &["PEXPIRETIME", "k"]).await), pat.to_string());
        assert_eq!(show(&q(&mut con, &["EXPIRETIME", "k"]).await), (at + 1).to_string());
        // PERSIST.
        assert_eq!(show(&q(&mut con, &["PERSIST", "k"]).await), "1");
        assert_eq!(show(&q(&mut con, &["PERSIST", "k"]).await), "0");
        assert_eq!(show(&q(&mut con, &["PERSIST", "missing"]).await), "0");
        assert_eq!(show(&q(&mut con, &["TTL", "k"]).await), "-1");
        // Errors.
        assert_eq!(
            e(&mut con, &["EXPIRE", "k", "10", "NX", "XX"]).await,
            "ERR NX and XX, GT or LT options at the same time are not compatible"
        );
        assert_eq!(
            e(&mut con, &["EXPIRE", "k", "10", "NX", "GT"]).await,
            "ERR NX and XX, GT or LT options at the same time are not compatible"
        );
        assert_eq!(
            e(&mut con, &["EXPIRE", "k", "10", "GT", "LT"]).await,
            "ERR GT and LT options at the same time are not compatible"
        );
        assert_eq!(
            e(&mut con, &["EXPIRE", "k", "10", "FOO"]).await,
            "ERR Unsupported option FOO"
        );
        assert_eq!(
            e(&mut con, &["EXPIRE", "k", "abc"]).await,
            "ERR value is not an integer or out of range"
        );
        for (cmd, name) in [("EXPIRE", "expire"), ("PEXPIRE", "pexpire"), ("EXPIREAT", "expireat")] {
            assert_eq!(
                e(&mut con, &[cmd, "k", "9223372036854775807"]).await,
                format!("ERR invalid expire time in '{name}' command")
            );
        }
        // A time in the past deletes the key.
        assert_eq!(show(&q(&mut con, &["EXPIRE", "k", "-1"]).await), "1");
        assert_eq!(show(&q(&mut con, &["EXISTS", "k"]).await), "0");
        add(&mut con, "k").await;
        assert_eq!(show(&q(&mut con, &["PEXPIREAT", "k", "1"]).await), "1");
        assert_eq!(show(&q(&mut con, &["EXISTS", "k"]).await), "0");
    }
}

/// A key with PEXPIRE 50 is gone after about 100 ms: lazily (EXISTS) and actively (DBSIZE
/// and INFO keyspace drop without anyone touching the key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_expire_lazily_and_actively() {
    let s = start_server().await;
    let mut con = s.conn(false).await;
    // Lazily.
    add(&mut con, "lazy").await;
    assert_eq!(show(&q(&mut con, &["PEXPIRE", "lazy", "50"]).await), "1");
    assert_eq!(show(&q(&mut con, &["EXISTS", "lazy"]).await), "1");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(show(&q(&mut con, &["EXISTS", "lazy"]).await), "0");
    assert_eq!(show(&q(&mut con, &["XLEN", "lazy"]).await), "0");
    assert_eq!(show(&q(&mut con, &["TTL", "lazy"]).await), "-2");
    // Actively: only DBSIZE and INFO are asked.
    add(&mut con, "active").await;
    add(&mut con, "stays").await;
    q(&mut con, &["PEXPIRE", "active", "50"]).await;
    assert_eq!(show(&q(&mut con, &["DBSIZE"]).await), "2");
    poll_until(&mut con, &["DBSIZE"], "1").await;
    let ks = info(&mut con, "keyspace").await;
    assert_eq!(
        info_field(&ks, "db0").as_deref(),
        Some("keys=1,expires=0,avg_ttl=0"),
        "{ks}"
    );
    let stats = info(&mut con, "stats").await;
    let expired: u64 = info_field(&stats, "expired_keys").unwrap().parse().unwrap();
    assert!(expired >= 2, "{stats}");
    // Many keys at once go too (the cron works in bounded steps).
    let mut pipe = redis::pipe();
    for i in 0..300 {
        pipe.cmd("XADD")
            .arg(format!("m{i}"))
            .arg("*")
            .arg("f")
            .arg("v")
            .ignore();
        pipe.cmd("PEXPIRE").arg(format!("m{i}")).arg(30).ignore();
    }
    let () = pipe.query_async(&mut con).await.unwrap();
    poll_until(&mut con, &["DBSIZE"], "1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_keyspace_line_format() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        let ks = info(&mut con, "keyspace").await;
        assert!(ks.starts_with("# Keyspace"), "{ks}");
        assert!(info_field(&ks, "db0").is_none(), "{ks}");
        for k in ["a", "b", "c"] {
            add(&mut con, k).await;
        }
        q(&mut con, &["EXPIRE", "a", "100"]).await;
        q(&mut con, &["SELECT", "2"]).await;
        add(&mut con, "x").await;
        q(&mut con, &["SELECT", "0"]).await;
        let ks = info(&mut con, "keyspace").await;
        let db0 = info_field(&ks, "db0").expect("db0 line");
        let rest = db0
            .strip_prefix("keys=3,expires=1,avg_ttl=")
            .unwrap_or_else(|| panic!("{db0}"));
        let avg: u64 = rest.parse().unwrap();
        assert!(avg > 90_000 && avg <= 100_000, "{db0}");
        assert_eq!(info_field(&ks, "db2").as_deref(), Some("keys=1,expires=0,avg_ttl=0"));
        assert!(info_field(&ks, "db1").is_none());
        // Also in the full INFO.
        let all = info(&mut con, "everything").await;
        assert!(info_field(&all, "db0").is_some());
    }
}

// ---------------------------------------------------------------------------------------
// OBJECT, MEMORY USAGE
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_subcommands_and_memory_usage() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        add(&mut con, "k").await;
        assert_eq!(show(&q(&mut con, &["OBJECT", "ENCODING", "k"]).await), "\"stream\"");
        assert_eq!(show(&q(&mut con, &["OBJECT", "ENCODING", "missing"]).await), "nil");
        let idle = int(&q(&mut con, &["OBJECT", "IDLETIME", "k"]).await);
        assert!((0..5).contains(&idle), "{idle}");
        assert_eq!(show(&q(&mut con, &["OBJECT", "IDLETIME", "missing"]).await), "nil");
        assert_eq!(
            e(&mut con, &["OBJECT", "FREQ", "k"]).await,
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."
        );
        let help = q(&mut con, &["OBJECT", "HELP"]).await;
        let lines: Vec<String> = items(&help).iter().map(text).collect();
        assert!(lines[0].starts_with("OBJECT <subcommand>"), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("ENCODING <key>")), "{lines:?}");
        assert_eq!(lines.last().unwrap(), "    Print this help.");
        assert_eq!(
            e(&mut con, &["OBJECT", "BOGUS", "k"]).await,
            "ERR unknown subcommand 'BOGUS'. Try OBJECT HELP."
        );
        // MEMORY USAGE: an integer for a stream, growing with it; nil for a missing key.
        let small = int(&q(&mut con, &["MEMORY", "USAGE", "k"]).await);
        assert!(small > 0);
        let mut pipe = redis::pipe();
        for i in 0..500 {
            pipe.cmd("XADD")
                .arg("k")
                .arg("*")
                .arg("field")
                .arg(format!("value-{i:0>40}"))
                .ignore();
        }
        let () = pipe.query_async(&mut con).await.unwrap();
        let big = int(&q(&mut con, &["MEMORY", "USAGE", "k"]).await);
        assert!(big > small + 500 * 20, "{small} -> {big}");
        assert_eq!(show(&q(&mut con, &["MEMORY", "USAGE", "missing"]).await), "nil");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_freq_with_an_lfu_policy() {
    let s = start_server().await;
    let mut con = s.conn(false).await;
    add(&mut con, "k").await;
    q(&mut con, &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]).await;
    assert!(int(&q(&mut con, &["OBJECT", "FREQ", "k"]).await) >= 0);
    assert_eq!(
        e(&mut con, &["OBJECT", "IDLETIME", "k"]).await,
        "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."
    );
}

// ---------------------------------------------------------------------------------------
// WATCH
// ---------------------------------------------------------------------------------------

/// Runs `MULTI; XLEN k; EXEC` on `con` (which WATCHes `k`) and returns EXEC's reply.
async fn exec_xlen(con: &mut Con) -> V {
    assert_eq!(show(&q(con, &["MULTI"]).await), "OK");
    assert_eq!(show(&q(con, &["XLEN", "k"]).await), "QUEUED");
    q(con, &["EXEC"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_aborts_exec_when_the_stream_changes() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut w = s.conn(resp3).await;
        let mut other = s.conn(false).await;
        let fresh = |other: &mut Con| {
            let mut other = other.clone();
            async move {
                q(&mut other, &["FLUSHALL"]).await;
                q(&mut other, &["XADD", "k", "1-1", "f", "v"]).await;
            }
        };
        // Untouched (and another key written): EXEC runs.
        fresh(&mut other).await;
        q(&mut w, &["WATCH", "k"]).await;
        q(&mut other, &["XADD", "unrelated", "*", "f", "v"]).await;
        q(&mut other, &["XRANGE", "k", "-", "+"]).await;
        assert_eq!(show(&exec_xlen(&mut w).await), "[1]");
        // XADD by another connection.
        q(&mut w, &["WATCH", "k"]).await;
        q(&mut other, &["XADD", "k", "2-1", "f", "v"]).await;
        assert_eq!(show(&exec_xlen(&mut w).await), "nil", "XADD");
        // Other writes: XDEL, XTRIM, EXPIRE, RENAME onto it (XGROUP CREATE does not count in
        // Redis: it does not signal the key as modified).
        for write in [
            &["XDEL", "k", "1-1"][..],
            &["XTRIM", "k", "MAXLEN", "0"],
            &["EXPIRE", "k", "100"],
            &["RENAME", "src", "k"],
        ] {
            fresh(&mut other).await;
            q(&mut other, &["XADD", "src", "1-1", "f", "v"]).await;
            q(&mut w, &["WATCH", "k"]).await;
            q(&mut other, write).await;
            assert_eq!(show(&exec_xlen(&mut w).await), "nil", "{write:?}");
        }
        // Deleted.
        fresh(&mut other).await;
        q(&mut w, &["WATCH", "k"]).await;
        q(&mut other, &["DEL", "k"]).await;
        assert_eq!(show(&exec_xlen(&mut w).await), "nil", "DEL");
        // Flushed.
        for flush in ["FLUSHALL", "FLUSHDB"] {
            fresh(&mut other).await;
            q(&mut w, &["WATCH", "k"]).await;
            q(&mut other, &[flush]).await;
            assert_eq!(show(&exec_xlen(&mut w).await), "nil", "{flush}");
        }
        // Expired while watched (nobody touches the key).
        fresh(&mut other).await;
        q(&mut other, &["PEXPIRE", "k", "30"]).await;
        q(&mut w, &["WATCH", "k"]).await;
        // Only DBSIZE is asked while the cron removes it.
        poll_until(&mut other, &["DBSIZE"], "0").await;
        assert_eq!(show(&exec_xlen(&mut w).await), "nil", "expired");
        // UNWATCH forgets.
        fresh(&mut other).await;
        q(&mut w, &["WATCH", "k"]).await;
        q(&mut w, &["UNWATCH"]).await;
        q(&mut other, &["XADD", "k", "2-1", "f", "v"]).await;
        assert_eq!(show(&exec_xlen(&mut w).await), "[2]");
    }
}

// ---------------------------------------------------------------------------------------
// ACL key permissions
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_key_permissions_on_stream_commands() {
    let s = start_server().await;
    let nokey = "NOPERM this user has no permissions to access one of the keys used as arguments";
    for resp3 in PROTOS {
        let mut admin = s.conn(resp3).await;
        q(&mut admin, &["FLUSHALL"]).await;
        q(&mut admin, &["ACL", "SETUSER", "app", "on", ">pw", "~app:*", "+@all"]).await;
        q(&mut admin, &["ACL", "SETUSER", "ro", "on", ">pw", "%R~r:*", "+@all"]).await;
        q(&mut admin, &["ACL", "SETUSER", "wo", "on", ">pw", "%W~w:*", "+@all"]).await;
        q(&mut admin, &["ACL", "LOG", "RESET"]).await;

        let mut app = conn_as(&s, resp3, "app").await;
        assert_eq!(e(&mut app, &["XADD", "other", "*", "f", "v"]).await, nokey);
        assert!(matches!(
            q(&mut app, &["XADD", "app:1", "*", "f", "v"]).await,
            V::BulkString(_)
        ));
        assert_eq!(
            e(&mut app, &["XREAD", "STREAMS", "app:1", "other", "0", "0"]).await,
            nokey
        );
        assert_eq!(e(&mut app, &["RENAME", "app:1", "other"]).await, nokey);
        let log = q(&mut admin, &["ACL", "LOG"]).await;
        let entry = &items(&log)[items(&log).len() - 1];
        assert_eq!(text(field(entry, "reason")), "key");
        assert_eq!(text(field(entry, "context")), "toplevel");
        assert_eq!(text(field(entry, "object")), "other");
        assert_eq!(text(field(entry, "username")), "app");
        // XADD, XREAD and RENAME were denied on the same key: one entry, counted 3 times.
        assert_eq!(show(field(entry, "count")), "3");

        let mut ro = conn_as(&s, resp3, "ro").await;
        q(&mut admin, &["XADD", "r:x", "1-1", "f", "v"]).await;
        assert_eq!(
            show(&q(&mut ro, &["XRANGE", "r:x", "-", "+"]).await),
            r#"[["1-1",["f","v"]]]"#
        );
        assert_eq!(show(&q(&mut ro, &["XLEN", "r:x"]).await), "1");
        assert_eq!(e(&mut ro, &["XADD", "r:x", "*", "f", "v"]).await, nokey);
        assert_eq!(e(&mut ro, &["DEL", "r:x"]).await, nokey);

        let mut wo = conn_as(&s, resp3, "wo").await;
        assert!(matches!(
            q(&mut wo, &["XADD", "w:x", "*", "f", "v"]).await,
            V::BulkString(_)
        ));
        assert_eq!(e(&mut wo, &["XRANGE", "w:x", "-", "+"]).await, nokey);
        // XLEN returns no user data (its key spec has no ACCESS flag): write access is
        // enough, as in Redis.
        assert_eq!(show(&q(&mut wo, &["XLEN", "w:x"]).await), "1");

        assert_eq!(
            text(&q(&mut admin, &["ACL", "DRYRUN", "app", "XADD", "k", "*", "f", "v"]).await),
            "This user has no permissions to access the 'k' key"
        );
        assert_eq!(
            show(&q(&mut admin, &["ACL", "DRYRUN", "app", "XADD", "app:k", "*", "f", "v"]).await),
            "OK"
        );
        assert_eq!(
            text(&q(&mut admin, &["ACL", "DRYRUN", "ro", "XADD", "r:k", "*", "f", "v"]).await),
            "This user has no permissions to access the 'r:k' key"
        );
        assert_eq!(
            show(&q(&mut admin, &["ACL", "DRYRUN", "ro", "XLEN", "r:k"]).await),
            "OK"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Keyspace notifications
// ---------------------------------------------------------------------------------------

/// Collects (channel, payload) messages from a RESP2 subscriber until the `END` marker.
async fn collect_until_end(msgs: &mut (impl futures_util::Stream<Item = redis::Msg> + Unpin)) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        let m = tokio::time::timeout(WAIT, msgs.next())
            .await
            .unwrap_or_else(|_| panic!("no END marker; got {out:?}"))
            .expect("subscriber closed");
        let ch = m.get_channel_name().to_string();
        let payload = String::from_utf8_lossy(m.get_payload_bytes()).into_owned();
        if payload == "END" {
            return out;
        }
        out.push((ch, payload));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyspace_notifications_for_stream_and_generic_events() {
    let s = start_server().await;
    let mut ctl = s.conn(false).await;
    assert_eq!(
        show(&q(&mut ctl, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]).await),
        "OK"
    );
    assert_eq!(
        show(&q(&mut ctl, &["CONFIG", "GET", "notify-keyspace-events"]).await),
        r#"["notify-keyspace-events","AKE"]"#
    );
    let mut sub = s.pubsub().await;
    sub.psubscribe("__keyspace@0__:*").await.unwrap();
    sub.subscribe("__keyevent@0__:xadd").await.unwrap();
    sub.subscribe("marker").await.unwrap();
    // A RESP3 subscriber to every key event, through pushes.
    let (mut push_con, mut pushes) = s.conn_with_pushes().await;
    push_con.psubscribe("__keyevent@0__:*").await.unwrap();
    push_con.subscribe("marker").await.unwrap();

    let script: &[&[&str]] = &[
        &["XADD", "s", "1-1", "f", "v"],
        &["XADD", "s", "MAXLEN", "1", "1-2", "f", "v"],
        &["XDEL", "s", "1-2"],
        &["XGROUP", "CREATE", "s", "g", "0"],
        &["XGROUP", "CREATECONSUMER", "s", "g", "c"],
        &["XGROUP", "SETID", "s", "g", "0"],
        &["XGROUP", "DELCONSUMER", "s", "g", "c"],
        &["XGROUP", "DESTROY", "s", "g"],
        &["XSETID", "s", "5-0"],
        &["XADD", "s", "6-1", "f", "v"],
        &["XTRIM", "s", "MAXLEN", "0"],
        &["RENAME", "s", "s2"],
        &["EXPIRE", "s2", "100"],
        &["DEL", "s2"],
        &["SELECT", "1"],
        &["XADD", "elsewhere", "1-1", "f", "v"],
        &["SELECT", "0"],
        &["PUBLISH", "marker", "END"],
    ];
    for cmd in script {
        q(&mut ctl, cmd).await;
    }
    let mut msgs = sub.on_message();
    let got = collect_until_end(&mut msgs).await;
    let ks = |key: &str, ev: &str| (format!("__keyspace@0__:{key}"), ev.to_string());
    let xadd = |key: &str| ("__keyevent@0__:xadd".to_string(), key.to_string());
    assert_eq!(
        got,
        [
            ks("s", "xadd"),
            xadd("s"),
            ks("s", "xadd"),
            xadd("s"),
            ks("s", "xtrim"),
            ks("s", "xdel"),
            ks("s", "xgroup-create"),
            ks("s", "xgroup-createconsumer"),
            ks("s", "xgroup-setid"),
            ks("s", "xgroup-delconsumer"),
            ks("s", "xgroup-destroy"),
            ks("s", "xsetid"),
            ks("s", "xadd"),
            xadd("s"),
            ks("s", "xtrim"),
            ks("s", "rename_from"),
            ks("s2", "rename_to"),
            ks("s2", "expire"),
            ks("s2", "del"),
        ]
    );
    // The RESP3 subscriber saw every key event, with the key as payload.
    let mut events = Vec::new();
    loop {
        let p = next_push(&mut pushes).await;
        if !matches!(p.kind, redis::PushKind::PMessage | redis::PushKind::Message) {
            continue;
        }
        let n = p.data.len();
        let (ch, payload) = (text(&p.data[n - 2]), text(&p.data[n - 1]));
        if payload == "END" {
            break;
        }
        let ev = ch
            .strip_prefix("__keyevent@0__:")
            .unwrap_or_else(|| panic!("{ch}"))
            .to_string();
        events.push((ev, payload));
    }
    let ev = |e: &str, k: &str| (e.to_string(), k.to_string());
    assert_eq!(
        events,
        [
            ev("xadd", "s"),
            ev("xadd", "s"),
            ev("xtrim", "s"),
            ev("xdel", "s"),
            ev("xgroup-create", "s"),
            ev("xgroup-createconsumer", "s"),
            ev("xgroup-setid", "s"),
            ev("xgroup-delconsumer", "s"),
            ev("xgroup-destroy", "s"),
            ev("xsetid", "s"),
            ev("xadd", "s"),
            ev("xtrim", "s"),
            ev("rename_from", "s"),
            ev("rename_to", "s2"),
            ev("expire", "s2"),
            ev("del", "s2"),
        ]
    );

    // Expiry by the cron: `expired`.
    q(&mut ctl, &["XADD", "e", "1-1", "f", "v"]).await;
    q(&mut ctl, &["PEXPIRE", "e", "20"]).await;
    poll_until(&mut ctl, &["DBSIZE"], "0").await;
    q(&mut ctl, &["PUBLISH", "marker", "END"]).await;
    assert_eq!(
        collect_until_end(&mut msgs).await,
        [ks("e", "xadd"), xadd("e"), ks("e", "expire"), ks("e", "expired")]
    );

    // `Kt`: keyspace channel, stream events only.
    q(&mut ctl, &["CONFIG", "SET", "notify-keyspace-events", "Kt"]).await;
    assert_eq!(
        show(&q(&mut ctl, &["CONFIG", "GET", "notify-keyspace-events"]).await),
        r#"["notify-keyspace-events","tK"]"#
    );
    q(&mut ctl, &["XADD", "t", "1-1", "f", "v"]).await;
    q(&mut ctl, &["DEL", "t"]).await;
    q(&mut ctl, &["PUBLISH", "marker", "END"]).await;
    assert_eq!(collect_until_end(&mut msgs).await, [ks("t", "xadd")]);

    // `Eg`: key-event channel, generic events only (the xadd channel hears nothing).
    q(&mut ctl, &["CONFIG", "SET", "notify-keyspace-events", "Eg"]).await;
    assert_eq!(
        show(&q(&mut ctl, &["CONFIG", "GET", "notify-keyspace-events"]).await),
        r#"["notify-keyspace-events","gE"]"#
    );
    drop(msgs);
    sub.psubscribe("__keyevent@0__:*").await.unwrap();
    let mut msgs = sub.on_message();
    q(&mut ctl, &["XADD", "g", "1-1", "f", "v"]).await;
    q(&mut ctl, &["DEL", "g"]).await;
    q(&mut ctl, &["PUBLISH", "marker", "END"]).await;
    assert_eq!(
        collect_until_end(&mut msgs).await,
        [("__keyevent@0__:del".to_string(), "g".to_string())]
    );

    // `n`: a new key raises `new` before the command's own event.
    q(&mut ctl, &["CONFIG", "SET", "notify-keyspace-events", "KEAn"]).await;
    q(&mut ctl, &["XADD", "n", "1-1", "f", "v"]).await;
    q(&mut ctl, &["XADD", "n", "1-2", "f", "v"]).await;
    q(&mut ctl, &["XGROUP", "CREATE", "m", "g", "$", "MKSTREAM"]).await;
    q(&mut ctl, &["PUBLISH", "marker", "END"]).await;
    let got = collect_until_end(&mut msgs).await;
    let kev = |e: &str, k: &str| (format!("__keyevent@0__:{e}"), k.to_string());
    assert_eq!(
        got,
        [
            ks("n", "new"),
            kev("new", "n"),
            ks("n", "xadd"),
            xadd("n"),
            kev("xadd", "n"),
            ks("n", "xadd"),
            xadd("n"),
            kev("xadd", "n"),
            ks("m", "new"),
            kev("new", "m"),
            ks("m", "xgroup-create"),
            kev("xgroup-create", "m"),
        ]
    );
    assert_eq!(
        e(&mut ctl, &["CONFIG", "SET", "notify-keyspace-events", "Kq"]).await,
        "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
    );
}

// ---------------------------------------------------------------------------------------
// maxmemory
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxmemory_refuses_xadd_but_not_reads_or_del() {
    let s = start_server().await;
    let oom = "OOM command not allowed when used memory > 'maxmemory'.";
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        q(&mut con, &["XADD", "k", "1-1", "f", "v"]).await;
        q(&mut con, &["XADD", "gone", "1-1", "f", "v"]).await;
        q(&mut con, &["CONFIG", "SET", "maxmemory", "1"]).await;
        // The figure is refreshed by the cron: poll until XADD is refused.
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut n = 2;
        loop {
            let r: redis::RedisResult<V> = c(&["XADD", "k", &format!("1-{n}"), "f", "v"])
                .query_async(&mut con)
                .await;
            match r {
                Err(err) => {
                    assert_eq!(redis_err_text(&err), oom);
                    break;
                }
                Ok(_) => n += 1,
            }
            assert!(tokio::time::Instant::now() < deadline, "XADD never refused");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(e(&mut con, &["XGROUP", "CREATE", "k", "g", "$"]).await, oom);
        assert_eq!(e(&mut con, &["XADD", "k", "*", "f", "v"]).await, oom);
        // Reads and deletions still work.
        assert_eq!(items(&q(&mut con, &["XRANGE", "k", "-", "+"]).await).len(), n - 1);
        assert_eq!(show(&q(&mut con, &["XLEN", "k"]).await), (n - 1).to_string());
        assert_eq!(show(&q(&mut con, &["DEL", "gone"]).await), "1");
        q(&mut con, &["CONFIG", "SET", "maxmemory", "0"]).await;
        assert!(matches!(
            q(&mut con, &["XADD", "k", "*", "f", "v"]).await,
            V::BulkString(_)
        ));
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Inside EXEC the transaction holds the keyspace: commands that read keyspace figures
/// (INFO, MEMORY STATS/DOCTOR, CONFIG RESETSTAT, DBSIZE, MEMORY USAGE) must read them
/// through it, not wait for it (they used to deadlock the connection and every other
/// keyspace user), and other clients go on once EXEC is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyspace_figures_inside_exec_after_a_write() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        let mut other = s.conn(resp3).await;
        q(&mut con, &["DEL", "tx:s"]).await;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .add_command(c(&["XADD", "tx:s", "*", "f", "v"]))
            .add_command(c(&["INFO", "keyspace"]))
            .add_command(c(&["INFO", "memory"]))
            .add_command(c(&["MEMORY", "STATS"]))
            .add_command(c(&["MEMORY", "DOCTOR"]))
            .add_command(c(&["MEMORY", "USAGE", "tx:s"]))
            .add_command(c(&["CONFIG", "RESETSTAT"]))
            .add_command(c(&["DBSIZE"]));
        let replies: Vec<V> = tokio::time::timeout(WAIT, pipe.query_async(&mut con))
            .await
            .expect("EXEC finished")
            .expect("EXEC replies");
        assert_eq!(replies.len(), 8);
        assert!(show(&replies[1]).contains("keys=1"), "{}", show(&replies[1]));
        assert_eq!(show(&replies[7]), "1");
        let n = tokio::time::timeout(WAIT, async { q(&mut other, &["XLEN", "tx:s"]).await })
            .await
            .expect("the keyspace is free after EXEC");
        assert_eq!(show(&n), "1");
    }
}
