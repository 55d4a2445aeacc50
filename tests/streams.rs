//! Redis Streams through the `redis` crate, in RESP2 and RESP3: every stream command's
//! replies and error texts (Redis 7.2's, `../shared/reference/redis-streams.md`), binary
//! keys, fields and values, a consumer-group work queue end to end, and blocking reads
//! (woken by XADD from another connection, by DEL / FLUSHALL / XGROUP DESTROY / RENAME,
//! CLIENT UNBLOCK and CLIENT KILL, inside MULTI, pipelined).
//!
//! Every wait is bounded by `WAIT` (or a deadline); no test measures time beyond
//! generous bounds.

mod common;

use std::time::Duration;

use common::short::*;
use common::*;
use redis::Value as V;

type Con = redis::aio::MultiplexedConnection;

const PROTOS: [bool; 2] = [false, true];

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The reply of an XREAD / XREADGROUP that served `keys` (each with its rendered
/// entries): RESP2 `[[k, entries], ...]`, RESP3 `{k: entries, ...}`.
fn read_reply(resp3: bool, keys: &[(&str, &str)]) -> String {
    if resp3 {
        let inner: Vec<String> = keys.iter().map(|(k, e)| format!("\"{k}\":{e}")).collect();
        format!("{{{}}}", inner.join(","))
    } else {
        let inner: Vec<String> = keys.iter().map(|(k, e)| format!("[\"{k}\",{e}]")).collect();
        format!("[{}]", inner.join(","))
    }
}

/// The value of `name` in a map reply: a RESP3 map or a RESP2 flat `[k, v, ...]` array.
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

/// The field names of a map reply, in order.
fn field_names(v: &V) -> Vec<String> {
    let name = |k: &V| String::from_utf8_lossy(&value_bytes(k)).into_owned();
    match v {
        V::Map(pairs) => pairs.iter().map(|(k, _)| name(k)).collect(),
        V::Array(items) => items.chunks(2).map(|kv| name(&kv[0])).collect(),
        other => panic!("not a map: {}", show(other)),
    }
}

/// The map reply's shape in this protocol: RESP3 a real map, RESP2 a flat array.
fn assert_map_shape(v: &V, resp3: bool) {
    match (v, resp3) {
        (V::Map(_), true) | (V::Array(_), false) => {}
        _ => panic!("wrong map shape for resp3={resp3}: {}", show(v)),
    }
}

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

async fn info(con: &mut Con, section: &str) -> String {
    text(&q(con, &["INFO", section]).await)
}

async fn blocked_clients(con: &mut Con) -> i64 {
    info_field(&info(con, "clients").await, "blocked_clients")
        .expect("blocked_clients")
        .parse()
        .unwrap()
}

/// Polls INFO until `blocked_clients` is `n` (bounded by `WAIT`).
async fn wait_blocked(con: &mut Con, n: i64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = blocked_clients(con).await;
        if now == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "blocked_clients stayed {now}, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends a command on its own connection in a task; the task's result is the reply
/// (or error), bounded by `WAIT`.
fn spawn_cmd(mut con: Con, cmd: redis::Cmd) -> tokio::task::JoinHandle<redis::RedisResult<V>> {
    tokio::spawn(async move {
        tokio::time::timeout(WAIT, cmd.query_async(&mut con))
            .await
            .expect("blocked command not answered in time")
    })
}

async fn join(h: tokio::task::JoinHandle<redis::RedisResult<V>>) -> redis::RedisResult<V> {
    tokio::time::timeout(WAIT + Duration::from_secs(1), h)
        .await
        .expect("task did not finish")
        .expect("task panicked")
}

async fn client_id(con: &mut Con) -> i64 {
    int(&q(con, &["CLIENT", "ID"]).await)
}

/// Fills `key` with entries `1-1 .. 1-n`, each `f <i>`.
async fn fill(con: &mut Con, key: &str, n: usize) {
    for i in 1..=n {
        q(con, &["XADD", key, &format!("1-{i}"), "f", &i.to_string()]).await;
    }
}

/// One XPENDING extended row: (id, consumer, idle, deliveries).
fn pending_rows(v: &V) -> Vec<(String, String, i64, i64)> {
    items(v)
        .iter()
        .map(|r| {
            let r = items(r);
            (text(&r[0]), text(&r[1]), int(&r[2]), int(&r[3]))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// XADD
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xadd_ids_nomkstream_and_errors() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        assert_eq!(show(&q(&mut con, &["XADD", "s", "1-1", "f", "v"]).await), "\"1-1\"");
        assert_eq!(show(&q(&mut con, &["XADD", "s", "1-*", "f", "v"]).await), "\"1-2\"");
        assert_eq!(show(&q(&mut con, &["XADD", "s", "5", "f", "v"]).await), "\"5-0\"");
        assert_eq!(show(&q(&mut con, &["XADD", "s", "7-*", "f", "v"]).await), "\"7-0\"");
        assert_eq!(show(&q(&mut con, &["XADD", "z", "0-*", "f", "v"]).await), "\"0-1\"");
        // A leading `+` is accepted, as Redis does.
        assert_eq!(show(&q(&mut con, &["XADD", "s", "+8-1", "f", "v"]).await), "\"8-1\"");
        // `*`: now, never below the last ID.
        let before = now_ms();
        let id = text(&q(&mut con, &["XADD", "s", "*", "f", "v"]).await);
        let (ms, seq) = id.split_once('-').unwrap();
        let ms: u64 = ms.parse().unwrap();
        assert!(ms + 1000 >= before && ms <= now_ms() + 1000, "{id}");
        assert_eq!(seq, "0");
        // `*` after a future explicit ID stays above it.
        q(&mut con, &["XADD", "fut", "99999999999999-5", "f", "v"]).await;
        assert_eq!(
            show(&q(&mut con, &["XADD", "fut", "*", "f", "v"]).await),
            "\"99999999999999-6\""
        );
        // Several fields, duplicates and order kept.
        q(&mut con, &["XADD", "m", "1-1", "a", "1", "b", "2", "a", "3"]).await;
        assert_eq!(
            show(&q(&mut con, &["XRANGE", "m", "-", "+"]).await),
            r#"[["1-1",["a","1","b","2","a","3"]]]"#
        );

        // NOMKSTREAM on a missing key: nil, no key.
        assert_eq!(
            show(&q(&mut con, &["XADD", "nokey", "NOMKSTREAM", "*", "f", "v"]).await),
            "nil"
        );
        assert_eq!(show(&q(&mut con, &["EXISTS", "nokey"]).await), "0");
        assert!(matches!(
            q(&mut con, &["XADD", "s", "NOMKSTREAM", "*", "f", "v"]).await,
            V::BulkString(_)
        ));

        // Errors.
        assert_eq!(
            e(&mut con, &["XADD", "s", "9-1", "f", "v"]).await,
            "ERR The ID specified in XADD is equal or smaller than the target stream top item"
        );
        assert_eq!(
            e(&mut con, &["XADD", "s", "3-*", "f", "v"]).await,
            "ERR The ID specified in XADD is equal or smaller than the target stream top item"
        );
        assert_eq!(
            e(&mut con, &["XADD", "new", "0-0", "f", "v"]).await,
            "ERR The ID specified in XADD must be greater than 0-0"
        );
        assert_eq!(show(&q(&mut con, &["EXISTS", "new"]).await), "0");
        let invalid = "ERR Invalid stream ID specified as stream command argument";
        for bad in ["BOGUS", "-", "+", "1-2-3", "18446744073709551616-0", "-7", "7-"] {
            assert_eq!(e(&mut con, &["XADD", "s", bad, "f", "v"]).await, invalid, "{bad}");
        }
        assert_eq!(e(&mut con, &["XADD", "s", "BOGUS", "*", "f", "v"]).await, invalid);
        let arity = "ERR wrong number of arguments for 'xadd' command";
        assert_eq!(e(&mut con, &["XADD", "s", "*", "f", "v", "g"]).await, arity);
        assert_eq!(e(&mut con, &["XADD", "s", "MAXLEN", "1", "*"]).await, arity);
        assert_eq!(e(&mut con, &["XADD", "s", "*", "f"]).await, arity);
        q(&mut con, &["XSETID", "s", "18446744073709551615-18446744073709551615"]).await;
        assert_eq!(
            e(&mut con, &["XADD", "s", "*", "f", "v"]).await,
            "ERR The stream has exhausted the last possible ID, unable to add more items"
        );
        // 7.2: `ms-*` with the sequence at its maximum is the equal-or-smaller error.
        q(&mut con, &["XADD", "mx", "5-18446744073709551615", "f", "v"]).await;
        assert_eq!(
            e(&mut con, &["XADD", "mx", "5-*", "f", "v"]).await,
            "ERR The ID specified in XADD is equal or smaller than the target stream top item"
        );
        assert!(matches!(
            q(&mut con, &["XADD", "mx", "*", "f", "v"]).await,
            V::BulkString(_)
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xadd_and_xtrim_maxlen_minid_limit() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        q(&mut con, &["CONFIG", "SET", "stream-node-max-entries", "100"]).await;
        fill(&mut con, "t", 10).await;
        q(&mut con, &["XADD", "t", "MAXLEN", "5", "2-1", "f", "v"]).await;
        assert_eq!(show(&q(&mut con, &["XLEN", "t"]).await), "5");
        q(&mut con, &["XADD", "t", "MAXLEN", "=", "3", "2-2", "f", "v"]).await;
        assert_eq!(
            show(&q(&mut con, &["XRANGE", "t", "-", "+"]).await),
            r#"[["1-10",["f","10"]],["2-1",["f","v"]],["2-2",["f","v"]]]"#
        );
        q(&mut con, &["XADD", "t", "MINID", "2-2", "2-3", "f", "v"]).await;
        assert_eq!(
            show(&q(&mut con, &["XRANGE", "t", "-", "+"]).await),
            r#"[["2-2",["f","v"]],["2-3",["f","v"]]]"#
        );
        // `~` removes whole nodes only: a one-node stream keeps everything.
        q(&mut con, &["XADD", "t", "MAXLEN", "~", "1", "2-4", "f", "v"]).await;
        assert_eq!(show(&q(&mut con, &["XLEN", "t"]).await), "3");
        // MAXLEN 0: the entry is added, then trimmed; the empty stream stays a key.
        let id = q(&mut con, &["XADD", "z", "MAXLEN", "0", "*", "f", "v"]).await;
        assert!(matches!(id, V::BulkString(_)));
        assert_eq!(show(&q(&mut con, &["XLEN", "z"]).await), "0");
        assert_eq!(show(&q(&mut con, &["EXISTS", "z"]).await), "1");
        assert_eq!(show(&q(&mut con, &["TYPE", "z"]).await), "stream");

        // Node boundaries decide `~` (10-entry nodes).
        q(&mut con, &["CONFIG", "SET", "stream-node-max-entries", "10"]).await;
        for i in 1..=100 {
            q(&mut con, &["XADD", "n", &format!("{i}-0"), "f", "v"]).await;
        }
        q(
            &mut con,
            &["XADD", "n", "MAXLEN", "~", "55", "LIMIT", "30", "*", "f", "v"],
        )
        .await;
        assert_eq!(show(&q(&mut con, &["XLEN", "n"]).await), "71");
        q(
            &mut con,
            &["XADD", "n", "MAXLEN", "~", "55", "LIMIT", "30", "*", "f", "v"],
        )
        .await;
        assert_eq!(show(&q(&mut con, &["XLEN", "n"]).await), "62");
        // XTRIM: exact, approximate, MINID, LIMIT 0 = no limit.
        assert_eq!(show(&q(&mut con, &["XTRIM", "n", "MAXLEN", "~", "40"]).await), "20");
        assert_eq!(show(&q(&mut con, &["XTRIM", "n", "MAXLEN", "=", "35"]).await), "7");
        assert_eq!(show(&q(&mut con, &["XLEN", "n"]).await), "35");
        assert_eq!(show(&q(&mut con, &["XTRIM", "n", "MINID", "71"]).await), "3");
        assert_eq!(
            show(&q(&mut con, &["XTRIM", "n", "MAXLEN", "~", "0", "LIMIT", "0"]).await),
            "32"
        );
        assert_eq!(show(&q(&mut con, &["XTRIM", "n", "MAXLEN", "0"]).await), "0");
        assert_eq!(show(&q(&mut con, &["XTRIM", "missing", "MAXLEN", "0"]).await), "0");
        q(&mut con, &["CONFIG", "SET", "stream-node-max-entries", "100"]).await;

        // The trim-option errors, from XADD and XTRIM.
        for cmd in [&["XADD", "t"][..], &["XTRIM", "t"][..]] {
            let with = |opts: &[&str]| {
                let mut v: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
                v.extend(opts.iter().map(|s| s.to_string()));
                if cmd[0] == "XADD" {
                    v.extend(["*", "f", "v"].map(String::from));
                }
                v
            };
            assert_eq!(
                e(&mut con, &with(&["MAXLEN", "-1"])).await,
                "ERR The MAXLEN argument must be >= 0."
            );
            assert_eq!(
                e(&mut con, &with(&["MAXLEN", "1", "MINID", "1"])).await,
                "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
            );
            assert_eq!(
                e(&mut con, &with(&["MAXLEN", "1", "LIMIT", "10"])).await,
                "ERR syntax error, LIMIT cannot be used without the special ~ option"
            );
            assert_eq!(
                e(&mut con, &with(&["MAXLEN", "~", "1", "LIMIT", "-1"])).await,
                "ERR The LIMIT argument must be >= 0."
            );
            assert_eq!(
                e(&mut con, &with(&["MAXLEN", "abc"])).await,
                "ERR value is not an integer or out of range"
            );
            assert_eq!(
                e(&mut con, &with(&["MINID", "+"])).await,
                "ERR Invalid stream ID specified as stream command argument"
            );
        }
        assert_eq!(
            e(&mut con, &["XADD", "t", "LIMIT", "10", "*", "f", "v"]).await,
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
        );
        assert_eq!(
            e(&mut con, &["XTRIM", "t", "LIMIT", "1"]).await,
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
        );
        assert_eq!(e(&mut con, &["XTRIM", "t", "FOO", "1"]).await, "ERR syntax error");
        assert_eq!(
            e(&mut con, &["XTRIM", "t"]).await,
            "ERR wrong number of arguments for 'xtrim' command"
        );
    }
}

// ---------------------------------------------------------------------------------------
// XRANGE, XREVRANGE, XLEN, XDEL
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xrange_xrevrange_xlen_xdel() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        fill(&mut con, "s", 5).await;
        q(&mut con, &["XADD", "s", "2-0", "f", "6"]).await;
        let all = r#"[["1-1",["f","1"]],["1-2",["f","2"]],["1-3",["f","3"]],["1-4",["f","4"]],["1-5",["f","5"]],["2-0",["f","6"]]]"#;
        assert_eq!(show(&q(&mut con, &["XRANGE", "s", "-", "+"]).await), all);
        assert_eq!(
            show(&q(&mut con, &["XRANGE", "s", "(1-2", "(1-4"]).await),
            r#"[["1-3",["f","3"]]]"#
        );
        // `1` as an end is 1-max; as a start 1-0.
        assert_eq!(items(&q(&mut con, &["XRANGE", "s", "1", "1"]).await).len(), 5);
        assert_eq!(
            show(&q(&mut con, &["XRANGE", "s", "1-4", "+", "COUNT", "2"]).await),
            r#"[["1-4",["f","4"]],["1-5",["f","5"]]]"#
        );
        assert_eq!(
            show(&q(&mut con, &["XREVRANGE", "s", "+", "-", "COUNT", "2"]).await),
            r#"[["2-0",["f","6"]],["1-5",["f","5"]]]"#
        );
        assert_eq!(
            show(&q(&mut con, &["XREVRANGE", "s", "(1-5", "(1-3"]).await),
            r#"[["1-4",["f","4"]]]"#
        );
        // COUNT 0 or negative: a null array; inverted or missing: empty.
        assert_eq!(
            show(&q(&mut con, &["XRANGE", "s", "-", "+", "COUNT", "0"]).await),
            "nil"
        );
        assert_eq!(
            show(&q(&mut con, &["XREVRANGE", "s", "+", "-", "COUNT", "-1"]).await),
            "nil"
        );
        assert_eq!(show(&q(&mut con, &["XRANGE", "s", "+", "-"]).await), "[]");
        assert_eq!(show(&q(&mut con, &["XRANGE", "missing", "-", "+"]).await), "[]");
        // Errors.
        let invalid = "ERR Invalid stream ID specified as stream command argument";
        assert_eq!(e(&mut con, &["XRANGE", "s", "(-", "+"]).await, invalid);
        assert_eq!(e(&mut con, &["XRANGE", "s", "-", "(+"]).await, invalid);
        assert_eq!(e(&mut con, &["XRANGE", "s", "abc", "+"]).await, invalid);
        assert_eq!(
            e(
                &mut con,
                &["XRANGE", "s", "(18446744073709551615-18446744073709551615", "+"]
            )
            .await,
            "ERR invalid start ID for the interval"
        );
        assert_eq!(
            e(&mut con, &["XRANGE", "s", "-", "(0-0"]).await,
            "ERR invalid end ID for the interval"
        );
        assert_eq!(
            e(&mut con, &["XRANGE", "s", "-", "+", "COUNT"]).await,
            "ERR syntax error"
        );
        assert_eq!(
            e(&mut con, &["XRANGE", "s", "-", "+", "FOO", "1"]).await,
            "ERR syntax error"
        );
        assert_eq!(
            e(&mut con, &["XRANGE", "s", "-", "+", "COUNT", "x"]).await,
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            e(&mut con, &["XRANGE", "s", "-"]).await,
            "ERR wrong number of arguments for 'xrange' command"
        );

        // XLEN, XDEL.
        assert_eq!(show(&q(&mut con, &["XLEN", "s"]).await), "6");
        assert_eq!(show(&q(&mut con, &["XLEN", "missing"]).await), "0");
        assert_eq!(show(&q(&mut con, &["XDEL", "s", "1-2", "1-2", "9-9"]).await), "1");
        assert_eq!(show(&q(&mut con, &["XDEL", "missing", "1-1"]).await), "0");
        // An invalid ID: an error, and nothing deleted.
        assert_eq!(e(&mut con, &["XDEL", "s", "1-3", "bad"]).await, invalid);
        assert_eq!(show(&q(&mut con, &["XLEN", "s"]).await), "5");
        assert_eq!(
            show(&q(&mut con, &["XDEL", "s", "1-1", "1-3", "1-4", "1-5", "2-0"]).await),
            "5"
        );
        // An emptied stream is still a key.
        assert_eq!(show(&q(&mut con, &["XLEN", "s"]).await), "0");
        assert_eq!(show(&q(&mut con, &["EXISTS", "s"]).await), "1");
        let info = q(&mut con, &["XINFO", "STREAM", "s"]).await;
        assert_eq!(show(field(&info, "last-generated-id")), "\"2-0\"");
        assert_eq!(show(field(&info, "max-deleted-entry-id")), "\"2-0\"");
        assert_eq!(show(field(&info, "entries-added")), "6");
        // A stream command on a key of no stream type cannot be made here (streams are the
        // only type), so WRONGTYPE is left to the unit tests.
    }
}

// ---------------------------------------------------------------------------------------
// XREAD (non-blocking)
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xread_shapes_and_errors() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        fill(&mut con, "a", 3).await;
        fill(&mut con, "b", 2).await;
        let v = q(
            &mut con,
            &["XREAD", "COUNT", "1", "STREAMS", "a", "missing", "b", "0", "0", "1-1"],
        )
        .await;
        match (&v, resp3) {
            (V::Map(_), true) | (V::Array(_), false) => {}
            _ => panic!("wrong shape: {}", show(&v)),
        }
        assert_eq!(
            show(&v),
            read_reply(
                resp3,
                &[("a", r#"[["1-1",["f","1"]]]"#), ("b", r#"[["1-2",["f","2"]]]"#)]
            )
        );
        // Without COUNT (and a negative COUNT): everything after the ID.
        assert_eq!(
            show(&q(&mut con, &["XREAD", "COUNT", "-5", "STREAMS", "a", "1-1"]).await),
            read_reply(resp3, &[("a", r#"[["1-2",["f","2"]],["1-3",["f","3"]]]"#)])
        );
        // Nothing new: a null array (`$`, the last ID, a missing key).
        assert_eq!(show(&q(&mut con, &["XREAD", "STREAMS", "a", "$"]).await), "nil");
        assert_eq!(
            show(&q(&mut con, &["XREAD", "STREAMS", "a", "b", "1-3", "1-2"]).await),
            "nil"
        );
        assert_eq!(show(&q(&mut con, &["XREAD", "STREAMS", "missing", "0"]).await), "nil");
        // The last entry deleted: `last_id` alone does not count.
        q(&mut con, &["XDEL", "a", "1-3"]).await;
        assert_eq!(show(&q(&mut con, &["XREAD", "STREAMS", "a", "1-2"]).await), "nil");

        // Errors.
        assert_eq!(
            e(&mut con, &["XREAD", "STREAMS", "a", "b", "0"]).await,
            "ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified."
        );
        assert_eq!(
            e(&mut con, &["XREAD", "STREAMS", "a", ">"]).await,
            "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."
        );
        assert_eq!(
            e(&mut con, &["XREAD", "GROUP", "g", "c", "STREAMS", "a", "0"]).await,
            "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
        );
        assert_eq!(
            e(&mut con, &["XREAD", "NOACK", "STREAMS", "a", "0"]).await,
            "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
        );
        assert_eq!(
            e(&mut con, &["XREAD", "BLOCK", "-1", "STREAMS", "a", "0"]).await,
            "ERR timeout is negative"
        );
        assert_eq!(
            e(&mut con, &["XREAD", "BLOCK", "1.5", "STREAMS", "a", "0"]).await,
            "ERR timeout is not an integer or out of range"
        );
        assert_eq!(
            e(&mut con, &["XREAD", "COUNT", "1", "a", "0"]).await,
            "ERR syntax error"
        );
        assert_eq!(
            e(&mut con, &["XREAD", "STREAMS", "a", "bad"]).await,
            "ERR Invalid stream ID specified as stream command argument"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Consumer groups
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xreadgroup_new_history_noack_and_xack() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        fill(&mut con, "s", 4).await;
        q(&mut con, &["XGROUP", "CREATE", "s", "g", "0"]).await;
        let v = q(
            &mut con,
            &["XREADGROUP", "GROUP", "g", "alice", "COUNT", "2", "STREAMS", "s", ">"],
        )
        .await;
        assert_eq!(
            show(&v),
            read_reply(resp3, &[("s", r#"[["1-1",["f","1"]],["1-2",["f","2"]]]"#)])
        );
        // History: the consumer's own PEL; a deleted entry is `[id, nil]`.
        q(&mut con, &["XDEL", "s", "1-1"]).await;
        let v = q(&mut con, &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"]).await;
        assert_eq!(
            show(&v),
            read_reply(resp3, &[("s", r#"[["1-1",nil],["1-2",["f","2"]]]"#)])
        );
        // History read bumps the delivery count (not for the deleted entry).
        let rows = pending_rows(&q(&mut con, &["XPENDING", "s", "g", "-", "+", "10"]).await);
        assert_eq!(
            rows.iter()
                .map(|r| (r.0.as_str(), r.1.as_str(), r.3))
                .collect::<Vec<_>>(),
            [("1-1", "alice", 1), ("1-2", "alice", 2)]
        );
        // History after an ID, and an empty history: the key is still there.
        let v = q(&mut con, &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "1-1"]).await;
        assert_eq!(show(&v), read_reply(resp3, &[("s", r#"[["1-2",["f","2"]]]"#)]));
        let v = q(&mut con, &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", "0"]).await;
        assert_eq!(show(&v), read_reply(resp3, &[("s", "[]")]));
        // NOACK: delivered, not pending.
        let v = q(
            &mut con,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "bob",
                "NOACK",
                "COUNT",
                "1",
                "STREAMS",
                "s",
                ">",
            ],
        )
        .await;
        assert_eq!(show(&v), read_reply(resp3, &[("s", r#"[["1-3",["f","3"]]]"#)]));
        let summary = q(&mut con, &["XPENDING", "s", "g"]).await;
        assert_eq!(show(&summary), r#"[2,"1-1","1-2",[["alice","2"]]]"#);
        // Nothing new: nil.
        q(&mut con, &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"]).await;
        assert_eq!(
            show(&q(&mut con, &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"]).await),
            "nil"
        );
        // XACK: counts what left the PEL; a missing key or group is 0.
        assert_eq!(show(&q(&mut con, &["XACK", "s", "g", "1-1", "1-1", "9-9"]).await), "1");
        assert_eq!(show(&q(&mut con, &["XACK", "s", "nogroup", "1-2"]).await), "0");
        assert_eq!(show(&q(&mut con, &["XACK", "missing", "g", "1-2"]).await), "0");
        assert_eq!(
            e(&mut con, &["XACK", "s", "g", "1-2", "bad"]).await,
            "ERR Invalid stream ID specified as stream command argument"
        );
        assert_eq!(show(&q(&mut con, &["XACK", "s", "g", "1-2", "1-4"]).await), "2");
        assert_eq!(show(&q(&mut con, &["XPENDING", "s", "g"]).await), "[0,nil,nil,nil]");

        // Errors.
        assert_eq!(
            e(&mut con, &["XREADGROUP", "GROUP", "nog", "c", "STREAMS", "s", ">"]).await,
            "NOGROUP No such key 's' or consumer group 'nog' in XREADGROUP with GROUP option"
        );
        assert_eq!(
            e(
                &mut con,
                &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "missing", ">", ">"]
            )
            .await,
            "NOGROUP No such key 'missing' or consumer group 'g' in XREADGROUP with GROUP option"
        );
        assert_eq!(
            e(&mut con, &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "$"]).await,
            "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."
        );
        assert_eq!(
            e(
                &mut con,
                &["XREADGROUP", "COUNT", "1", "COUNT", "1", "STREAMS", "s", ">"]
            )
            .await,
            "ERR Missing GROUP option for XREADGROUP"
        );
        assert_eq!(
            e(&mut con, &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "x", ">"]).await,
            "ERR Unbalanced 'xreadgroup' list of streams: for each stream key an ID or '>' must be specified."
        );
        assert_eq!(
            e(&mut con, &["XREADGROUP", "GROUP", "g", "c", "STREAMS"]).await,
            "ERR wrong number of arguments for 'xreadgroup' command"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xpending_summary_extended_idle_consumer() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        fill(&mut con, "s", 5).await;
        q(&mut con, &["XGROUP", "CREATE", "s", "g", "0"]).await;
        assert_eq!(show(&q(&mut con, &["XPENDING", "s", "g"]).await), "[0,nil,nil,nil]");
        q(
            &mut con,
            &["XREADGROUP", "GROUP", "g", "alice", "COUNT", "3", "STREAMS", "s", ">"],
        )
        .await;
        q(
            &mut con,
            &["XREADGROUP", "GROUP", "g", "bob", "COUNT", "1", "STREAMS", "s", ">"],
        )
        .await;
        // Per-consumer counts are bulk strings.
        assert_eq!(
            show(&q(&mut con, &["XPENDING", "s", "g"]).await),
            r#"[4,"1-1","1-4",[["alice","3"],["bob","1"]]]"#
        );
        let rows = pending_rows(&q(&mut con, &["XPENDING", "s", "g", "-", "+", "10"]).await);
        assert_eq!(rows.len(), 4);
        assert!(rows.iter().all(|r| r.2 >= 0 && r.2 < 60_000 && r.3 == 1), "{rows:?}");
        let rows = pending_rows(&q(&mut con, &["XPENDING", "s", "g", "(1-1", "+", "2"]).await);
        assert_eq!(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["1-2", "1-3"]);
        let rows = pending_rows(&q(&mut con, &["XPENDING", "s", "g", "-", "+", "10", "bob"]).await);
        assert_eq!(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["1-4"]);
        assert_eq!(
            show(&q(&mut con, &["XPENDING", "s", "g", "-", "+", "10", "nobody"]).await),
            "[]"
        );
        assert_eq!(show(&q(&mut con, &["XPENDING", "s", "g", "-", "+", "-1"]).await), "[]");
        // IDLE: a huge minimum filters everything; 0 nothing.
        assert_eq!(
            show(&q(&mut con, &["XPENDING", "s", "g", "IDLE", "3600000", "-", "+", "10"]).await),
            "[]"
        );
        assert_eq!(
            items(&q(&mut con, &["XPENDING", "s", "g", "IDLE", "0", "-", "+", "10", "alice"]).await).len(),
            3
        );
        // Idle grows: poll until at least 20 ms (bounded).
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let n = items(&q(&mut con, &["XPENDING", "s", "g", "IDLE", "20", "-", "+", "10"]).await).len();
            if n == 4 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "idle never reached 20 ms");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Errors.
        assert_eq!(
            e(&mut con, &["XPENDING", "s", "nog"]).await,
            "NOGROUP No such key 's' or consumer group 'nog'"
        );
        assert_eq!(
            e(&mut con, &["XPENDING", "missing", "g"]).await,
            "NOGROUP No such key 'missing' or consumer group 'g'"
        );
        assert_eq!(e(&mut con, &["XPENDING", "s", "g", "-", "+"]).await, "ERR syntax error");
        assert_eq!(
            e(&mut con, &["XPENDING", "s", "g", "IDLE", "0", "-", "+"]).await,
            "ERR syntax error"
        );
        assert_eq!(
            e(&mut con, &["XPENDING", "s", "g", "-", "+", "x"]).await,
            "ERR value is not an integer or out of range"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xclaim_options() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        fill(&mut con, "s", 6).await;
        q(&mut con, &["XGROUP", "CREATE", "s", "g", "0"]).await;
        q(
            &mut con,
            &["XREADGROUP", "GROUP", "g", "alice", "COUNT", "4", "STREAMS", "s", ">"],
        )
        .await;
        // min-idle above the idle time: nothing claimed.
        assert_eq!(
            show(&q(&mut con, &["XCLAIM", "s", "g", "bob", "3600000", "1-1"]).await),
            "[]"
        );
        // 7.2: the empty XCLAIM created the consumer.
        let consumers = q(&mut con, &["XINFO", "CONSUMERS", "s", "g"]).await;
        assert_eq!(items(&consumers).len(), 2);
        // Claimed: the entry, delivery count +1; IDs not pending are ignored.
        assert_eq!(
            show(&q(&mut con, &["XCLAIM", "s", "g", "bob", "0", "1-1", "1-6"]).await),
            r#"[["1-1",["f","1"]]]"#
        );
        let rows = pending_rows(&q(&mut con, &["XPENDING", "s", "g", "-", "1-1", "1"]).await);
        assert_eq!((rows[0].1.as_str(), rows[0].3), ("bob", 2));
        // IDLE and RETRYCOUNT.
        q(
            &mut con,
            &[
                "XCLAIM",
                "s",
                "g",
                "carol",
                "0",
                "1-2",
                "IDLE",
                "500000",
                "RETRYCOUNT",
                "7",
            ],
        )
        .await;
        let rows = pending_rows(&q(&mut con, &["XPENDING", "s", "g", "1-2", "1-2", "1"]).await);
        assert_eq!((rows[0].1.as_str(), rows[0].3), ("carol", 7));
        assert!(rows[0].2 >= 500_000 && rows[0].2 < 600_000, "{rows:?}");
        // TIME: a delivery time in the past.
        let t = now_ms() - 200_000;
        q(
            &mut con,
            &["XCLAIM", "s", "g", "carol", "0", "1-3", "TIME", &t.to_string()],
        )
        .await;
        let rows = pending_rows(&q(&mut con, &["XPENDING", "s", "g", "1-3", "1-3", "1"]).await);
        assert!(rows[0].2 >= 200_000 && rows[0].2 < 300_000, "{rows:?}");
        // JUSTID: IDs only, the count unchanged.
        assert_eq!(
            show(&q(&mut con, &["XCLAIM", "s", "g", "dave", "0", "1-3", "1-4", "JUSTID"]).await),
            r#"["1-3","1-4"]"#
        );
        let rows = pending_rows(&q(&mut con, &["XPENDING", "s", "g", "1-3", "1-4", "2"]).await);
        assert_eq!(
            rows.iter().map(|r| (r.1.as_str(), r.3)).collect::<Vec<_>>(),
            [("dave", 2), ("dave", 1)]
        );
        // FORCE: an existing entry not pending yet is claimed.
        assert_eq!(show(&q(&mut con, &["XCLAIM", "s", "g", "bob", "0", "1-5"]).await), "[]");
        assert_eq!(
            show(
                &q(
                    &mut con,
                    &["XCLAIM", "s", "g", "bob", "0", "1-5", "9-9", "FORCE", "JUSTID"]
                )
                .await
            ),
            r#"["1-5"]"#
        );
        // LASTID raises the group's last-delivered-id.
        q(&mut con, &["XCLAIM", "s", "g", "bob", "0", "1-5", "LASTID", "1-6"]).await;
        let groups = q(&mut con, &["XINFO", "GROUPS", "s"]).await;
        assert_eq!(show(field(&items(&groups)[0], "last-delivered-id")), "\"1-6\"");
        // A pending entry since deleted leaves the PEL and the reply.
        q(&mut con, &["XDEL", "s", "1-1"]).await;
        assert_eq!(
            show(&q(&mut con, &["XCLAIM", "s", "g", "carol", "0", "1-1"]).await),
            "[]"
        );
        let rows = pending_rows(&q(&mut con, &["XPENDING", "s", "g", "-", "+", "10"]).await);
        assert!(!rows.iter().any(|r| r.0 == "1-1"), "{rows:?}");
        // Errors.
        assert_eq!(
            e(&mut con, &["XCLAIM", "s", "g", "bob", "0", "abc"]).await,
            "ERR Unrecognized XCLAIM option 'abc'"
        );
        assert_eq!(
            e(&mut con, &["XCLAIM", "s", "g", "bob", "x", "1-1"]).await,
            "ERR Invalid min-idle-time argument for XCLAIM"
        );
        for opt in ["IDLE", "TIME", "RETRYCOUNT"] {
            assert_eq!(
                e(&mut con, &["XCLAIM", "s", "g", "bob", "0", "1-2", opt, "x"]).await,
                format!("ERR Invalid {opt} option argument for XCLAIM")
            );
        }
        assert_eq!(
            e(&mut con, &["XCLAIM", "s", "nog", "bob", "0", "1-1"]).await,
            "NOGROUP No such key 's' or consumer group 'nog'"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xautoclaim_reports_deleted_ids() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        fill(&mut con, "s", 5).await;
        q(&mut con, &["XGROUP", "CREATE", "s", "g", "0"]).await;
        q(&mut con, &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"]).await;
        q(&mut con, &["XDEL", "s", "1-2"]).await;
        assert_eq!(
            show(&q(&mut con, &["XAUTOCLAIM", "s", "g", "bob", "0", "-", "COUNT", "2"]).await),
            r#"["1-3",[["1-1",["f","1"]]],["1-2"]]"#
        );
        assert_eq!(
            show(&q(&mut con, &["XAUTOCLAIM", "s", "g", "bob", "0", "(1-2", "JUSTID"]).await),
            r#"["0-0",["1-3","1-4","1-5"],[]]"#
        );
        // JUSTID did not count a delivery; the first claim did.
        let rows = pending_rows(&q(&mut con, &["XPENDING", "s", "g", "-", "+", "10"]).await);
        assert_eq!(
            rows.iter()
                .map(|r| (r.0.as_str(), r.1.as_str(), r.3))
                .collect::<Vec<_>>(),
            [
                ("1-1", "bob", 2),
                ("1-3", "bob", 1),
                ("1-4", "bob", 1),
                ("1-5", "bob", 1)
            ]
        );
        assert_eq!(
            show(&q(&mut con, &["XAUTOCLAIM", "s", "g", "carol", "3600000", "-"]).await),
            r#"["0-0",[],[]]"#
        );
        for n in ["0", "-1", "8070450532247928833"] {
            assert_eq!(
                e(&mut con, &["XAUTOCLAIM", "s", "g", "bob", "0", "-", "COUNT", n]).await,
                "ERR COUNT must be > 0"
            );
        }
        assert_eq!(
            e(&mut con, &["XAUTOCLAIM", "s", "g", "bob", "x", "-"]).await,
            "ERR Invalid min-idle-time argument for XAUTOCLAIM"
        );
        assert_eq!(
            e(&mut con, &["XAUTOCLAIM", "s", "g", "bob", "0", "-", "FOO"]).await,
            "ERR syntax error"
        );
        assert_eq!(
            e(&mut con, &["XAUTOCLAIM", "s", "nog", "bob", "0", "-"]).await,
            "NOGROUP No such key 's' or consumer group 'nog'"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xgroup_subcommands() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        assert_eq!(
            e(&mut con, &["XGROUP", "CREATE", "s", "g", "$"]).await,
            "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."
        );
        assert_eq!(
            show(&q(&mut con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]).await),
            "OK"
        );
        assert_eq!(show(&q(&mut con, &["TYPE", "s"]).await), "stream");
        assert_eq!(show(&q(&mut con, &["XLEN", "s"]).await), "0");
        assert_eq!(
            e(&mut con, &["XGROUP", "CREATE", "s", "g", "$"]).await,
            "BUSYGROUP Consumer Group name already exists"
        );
        fill(&mut con, "s", 3).await;
        q(&mut con, &["XGROUP", "CREATE", "s", "g0", "0"]).await;
        q(&mut con, &["XGROUP", "CREATE", "s", "g10", "0", "ENTRIESREAD", "1"]).await;
        q(&mut con, &["XGROUP", "CREATE", "s", "g9", "$"]).await;
        assert_eq!(
            e(&mut con, &["XGROUP", "CREATE", "s", "gx", "0", "ENTRIESREAD", "-2"]).await,
            "ERR value for ENTRIESREAD must be positive or -1"
        );
        assert_eq!(
            e(&mut con, &["XGROUP", "CREATE", "s", "gx", "-"]).await,
            "ERR Invalid stream ID specified as stream command argument"
        );
        // Groups in byte order with their entries-read and lag.
        let groups = q(&mut con, &["XINFO", "GROUPS", "s"]).await;
        let view: Vec<(String, String, String, String)> = items(&groups)
            .iter()
            .map(|g| {
                assert_map_shape(g, resp3);
                (
                    text(field(g, "name")),
                    text(field(g, "last-delivered-id")),
                    show(field(g, "entries-read")),
                    show(field(g, "lag")),
                )
            })
            .collect();
        let view: Vec<(&str, &str, &str, &str)> = view
            .iter()
            .map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), d.as_str()))
            .collect();
        assert_eq!(
            view,
            [
                ("g", "0-0", "nil", "3"),
                ("g0", "0-0", "nil", "3"),
                ("g10", "0-0", "1", "2"),
                ("g9", "1-3", "nil", "0"),
            ]
        );
        assert_eq!(
            field_names(&items(&groups)[0]),
            [
                "name",
                "consumers",
                "pending",
                "last-delivered-id",
                "entries-read",
                "lag"
            ]
        );
        // SETID.
        assert_eq!(
            show(&q(&mut con, &["XGROUP", "SETID", "s", "g", "1-2", "ENTRIESREAD", "2"]).await),
            "OK"
        );
        let v = q(&mut con, &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"]).await;
        assert_eq!(show(&v), read_reply(resp3, &[("s", r#"[["1-3",["f","3"]]]"#)]));
        q(&mut con, &["XGROUP", "SETID", "s", "g", "$"]).await;
        q(&mut con, &["XGROUP", "SETID", "s", "g", "0"]).await;
        assert_eq!(
            e(&mut con, &["XGROUP", "SETID", "s", "nog", "0"]).await,
            "NOGROUP No such consumer group 'nog' for key name 's'"
        );
        assert_eq!(
            e(&mut con, &["XGROUP", "SETID", "missing", "g", "0"]).await,
            "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."
        );
        // CREATECONSUMER / DELCONSUMER.
        assert_eq!(
            show(&q(&mut con, &["XGROUP", "CREATECONSUMER", "s", "g", "bob"]).await),
            "1"
        );
        assert_eq!(
            show(&q(&mut con, &["XGROUP", "CREATECONSUMER", "s", "g", "bob"]).await),
            "0"
        );
        q(
            &mut con,
            &["XREADGROUP", "GROUP", "g", "bob", "COUNT", "2", "STREAMS", "s", ">"],
        )
        .await;
        assert_eq!(
            show(&q(&mut con, &["XGROUP", "DELCONSUMER", "s", "g", "bob"]).await),
            "2"
        );
        assert_eq!(
            show(&q(&mut con, &["XGROUP", "DELCONSUMER", "s", "g", "bob"]).await),
            "0"
        );
        assert_eq!(
            e(&mut con, &["XGROUP", "CREATECONSUMER", "s", "nog", "bob"]).await,
            "NOGROUP No such consumer group 'nog' for key name 's'"
        );
        assert_eq!(
            e(&mut con, &["XGROUP", "DELCONSUMER", "s", "nog", "bob"]).await,
            "NOGROUP No such consumer group 'nog' for key name 's'"
        );
        // DESTROY.
        assert_eq!(show(&q(&mut con, &["XGROUP", "DESTROY", "s", "g9"]).await), "1");
        assert_eq!(show(&q(&mut con, &["XGROUP", "DESTROY", "s", "g9"]).await), "0");
        assert_eq!(
            e(&mut con, &["XGROUP", "DESTROY", "missing", "g"]).await,
            "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."
        );
        // HELP, unknown subcommands, wrong shapes.
        let help = q(&mut con, &["XGROUP", "HELP"]).await;
        let lines: Vec<String> = items(&help).iter().map(text).collect();
        assert!(lines[0].starts_with("XGROUP <subcommand>"), "{lines:?}");
        assert_eq!(lines.last().unwrap(), "    Print this help.");
        assert_eq!(
            e(&mut con, &["XGROUP", "HELP", "x"]).await,
            "ERR wrong number of arguments for 'xgroup|help' command"
        );
        assert_eq!(
            e(&mut con, &["XGROUP", "BOGUS", "s"]).await,
            "ERR unknown subcommand 'BOGUS'. Try XGROUP HELP."
        );
        assert_eq!(
            e(&mut con, &["XGROUP", "create", "s", "gy", "0", "FOO"]).await,
            "ERR unknown subcommand or wrong number of arguments for 'create'. Try XGROUP HELP."
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xinfo_stream_full_groups_consumers() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        fill(&mut con, "s", 3).await;
        q(&mut con, &["XDEL", "s", "1-2"]).await;
        q(&mut con, &["XGROUP", "CREATE", "s", "g", "0"]).await;
        q(
            &mut con,
            &["XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "s", ">"],
        )
        .await;
        q(&mut con, &["XGROUP", "CREATECONSUMER", "s", "g", "bob"]).await;

        let info = q(&mut con, &["XINFO", "STREAM", "s"]).await;
        assert_map_shape(&info, resp3);
        assert_eq!(
            field_names(&info),
            [
                "length",
                "radix-tree-keys",
                "radix-tree-nodes",
                "last-generated-id",
                "max-deleted-entry-id",
                "entries-added",
                "recorded-first-entry-id",
                "groups",
                "first-entry",
                "last-entry"
            ]
        );
        assert_eq!(show(field(&info, "length")), "2");
        assert_eq!(show(field(&info, "radix-tree-keys")), "1");
        assert!(int(field(&info, "radix-tree-nodes")) >= 1);
        assert_eq!(show(field(&info, "last-generated-id")), "\"1-3\"");
        assert_eq!(show(field(&info, "max-deleted-entry-id")), "\"1-2\"");
        assert_eq!(show(field(&info, "entries-added")), "3");
        assert_eq!(show(field(&info, "recorded-first-entry-id")), "\"1-1\"");
        assert_eq!(show(field(&info, "groups")), "1");
        assert_eq!(show(field(&info, "first-entry")), r#"["1-1",["f","1"]]"#);
        assert_eq!(show(field(&info, "last-entry")), r#"["1-3",["f","3"]]"#);
        // An empty stream: nil entries.
        q(&mut con, &["XADD", "e", "MAXLEN", "0", "1-1", "f", "v"]).await;
        let info = q(&mut con, &["XINFO", "STREAM", "e"]).await;
        assert_eq!(show(field(&info, "first-entry")), "nil");
        assert_eq!(show(field(&info, "recorded-first-entry-id")), "\"0-0\"");

        // FULL.
        let full = q(&mut con, &["XINFO", "STREAM", "s", "FULL"]).await;
        assert_map_shape(&full, resp3);
        assert_eq!(
            field_names(&full),
            [
                "length",
                "radix-tree-keys",
                "radix-tree-nodes",
                "last-generated-id",
                "max-deleted-entry-id",
                "entries-added",
                "recorded-first-entry-id",
                "entries",
                "groups"
            ]
        );
        assert_eq!(
            show(field(&full, "entries")),
            r#"[["1-1",["f","1"]],["1-3",["f","3"]]]"#
        );
        let g = &items(field(&full, "groups"))[0];
        assert_map_shape(g, resp3);
        assert_eq!(
            field_names(g),
            [
                "name",
                "last-delivered-id",
                "entries-read",
                "lag",
                "pel-count",
                "pending",
                "consumers"
            ]
        );
        assert_eq!(show(field(g, "last-delivered-id")), "\"1-1\"");
        assert_eq!(show(field(g, "pel-count")), "1");
        let pending = items(field(g, "pending"));
        let p = items(&pending[0]);
        assert_eq!(
            (text(&p[0]), text(&p[1]), int(&p[3])),
            ("1-1".into(), "alice".into(), 1)
        );
        assert!((int(&p[2]) - now_ms() as i64).abs() < 60_000);
        let consumers = items(field(g, "consumers"));
        assert_eq!(consumers.len(), 2);
        assert_eq!(
            field_names(&consumers[0]),
            ["name", "seen-time", "active-time", "pel-count", "pending"]
        );
        assert_eq!(text(field(&consumers[0], "name")), "alice");
        assert!(int(field(&consumers[0], "active-time")) > 0);
        assert_eq!(show(field(&consumers[1], "active-time")), "-1");
        assert_eq!(show(field(&consumers[1], "pending")), "[]");
        let c1 = items(field(&consumers[0], "pending"));
        assert_eq!(text(&items(&c1[0])[0]), "1-1");
        // COUNT limits the entries.
        let full = q(&mut con, &["XINFO", "STREAM", "s", "FULL", "COUNT", "1"]).await;
        assert_eq!(items(field(&full, "entries")).len(), 1);

        // CONSUMERS: 7.2's `inactive` (-1 if never active).
        let cons = q(&mut con, &["XINFO", "CONSUMERS", "s", "g"]).await;
        let cons = items(&cons);
        assert_eq!(field_names(&cons[0]), ["name", "pending", "idle", "inactive"]);
        assert_map_shape(&cons[0], resp3);
        assert_eq!(
            (text(field(&cons[0], "name")), int(field(&cons[0], "pending"))),
            ("alice".into(), 1)
        );
        assert!(int(field(&cons[0], "inactive")) >= 0);
        assert!(int(field(&cons[0], "idle")) >= 0);
        assert_eq!(
            (text(field(&cons[1], "name")), show(field(&cons[1], "inactive"))),
            ("bob".into(), "-1".into())
        );

        // Errors.
        assert_eq!(e(&mut con, &["XINFO", "STREAM", "missing"]).await, "ERR no such key");
        assert_eq!(e(&mut con, &["XINFO", "GROUPS", "missing"]).await, "ERR no such key");
        assert_eq!(
            e(&mut con, &["XINFO", "CONSUMERS", "s", "nog"]).await,
            "NOGROUP No such consumer group 'nog' for key name 's'"
        );
        assert_eq!(
            e(&mut con, &["XINFO", "STREAM", "s", "FOO"]).await,
            "ERR unknown subcommand or wrong number of arguments for 'STREAM'. Try XINFO HELP."
        );
        assert_eq!(
            e(&mut con, &["XINFO", "BOGUS", "s"]).await,
            "ERR unknown subcommand 'BOGUS'. Try XINFO HELP."
        );
        let help = q(&mut con, &["XINFO", "HELP"]).await;
        assert_eq!(text(items(&help).last().unwrap()), "    Print this help.");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xsetid_options_and_errors() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        fill(&mut con, "s", 3).await;
        assert_eq!(show(&q(&mut con, &["XSETID", "s", "5-5"]).await), "OK");
        assert!(matches!(
            q(&mut con, &["XADD", "s", "*", "f", "v"]).await,
            V::BulkString(_)
        ));
        q(
            &mut con,
            &[
                "XSETID",
                "s",
                "99999999999999-0",
                "ENTRIESADDED",
                "10",
                "MAXDELETEDID",
                "3-0",
            ],
        )
        .await;
        let info = q(&mut con, &["XINFO", "STREAM", "s"]).await;
        assert_eq!(show(field(&info, "last-generated-id")), "\"99999999999999-0\"");
        assert_eq!(show(field(&info, "entries-added")), "10");
        assert_eq!(show(field(&info, "max-deleted-entry-id")), "\"3-0\"");
        assert_eq!(
            show(&q(&mut con, &["XADD", "s", "*", "f", "v"]).await),
            "\"99999999999999-1\""
        );
        // Errors (arguments first, even on a missing key).
        assert_eq!(e(&mut con, &["XSETID", "missing", "1-1"]).await, "ERR no such key");
        assert_eq!(
            e(
                &mut con,
                &["XSETID", "missing", "1-1", "ENTRIESADDED", "-1", "MAXDELETEDID", "0"]
            )
            .await,
            "ERR entries_added must be positive"
        );
        assert_eq!(
            e(
                &mut con,
                &["XSETID", "missing", "1-1", "ENTRIESADDED", "1", "MAXDELETEDID", "2-0"]
            )
            .await,
            "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"
        );
        assert_eq!(
            e(&mut con, &["XSETID", "s", "1-1", "ENTRIESADDED"]).await,
            "ERR syntax error"
        );
        assert_eq!(
            e(&mut con, &["XSETID", "s", "1-1"]).await,
            "ERR The ID specified in XSETID is smaller than current max_deleted_entry_id"
        );
        assert_eq!(
            e(&mut con, &["XSETID", "s", "4-0"]).await,
            "ERR The ID specified in XSETID is smaller than the target stream top item"
        );
        assert_eq!(
            e(
                &mut con,
                &[
                    "XSETID",
                    "s",
                    "99999999999999-5",
                    "ENTRIESADDED",
                    "1",
                    "MAXDELETEDID",
                    "0-0"
                ]
            )
            .await,
            "ERR The entries_added specified in XSETID is smaller than the target stream length"
        );
        assert_eq!(
            e(&mut con, &["XSETID", "s", "bad"]).await,
            "ERR Invalid stream ID specified as stream command argument"
        );
        // 7.2: not below max-deleted-entry-id on an emptied stream.
        q(&mut con, &["XADD", "d", "5-0", "f", "v"]).await;
        q(&mut con, &["XDEL", "d", "5-0"]).await;
        assert_eq!(
            e(&mut con, &["XSETID", "d", "4-0"]).await,
            "ERR The ID specified in XSETID is smaller than current max_deleted_entry_id"
        );
        assert_eq!(show(&q(&mut con, &["XSETID", "d", "5-0"]).await), "OK");
    }
}

/// Keys, fields and values with NUL, CR LF and 0xff bytes come back as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_keys_fields_and_values_round_trip() {
    let s = start_server().await;
    let key: &[u8] = b"k\x00\r\n\xff";
    let f: &[u8] = b"\xff\x00f\r\n";
    let v: &[u8] = b"\r\n\x00\xfe\xffv";
    let g: &[u8] = b"g\x00\xff";
    let cons: &[u8] = b"c\r\n\x00";
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        q(&mut con, &[&b"XADD"[..], key, b"1-1", f, v]).await;
        let entry = V::Array(vec![
            V::BulkString(b"1-1".to_vec()),
            V::Array(vec![V::BulkString(f.to_vec()), V::BulkString(v.to_vec())]),
        ]);
        let r = q(&mut con, &[&b"XRANGE"[..], key, b"-", b"+"]).await;
        assert_eq!(r, V::Array(vec![entry.clone()]));
        let r = q(&mut con, &[&b"XREAD"[..], b"STREAMS", key, b"0"]).await;
        let expected = if resp3 {
            V::Map(vec![(V::BulkString(key.to_vec()), V::Array(vec![entry.clone()]))])
        } else {
            V::Array(vec![V::Array(vec![
                V::BulkString(key.to_vec()),
                V::Array(vec![entry.clone()]),
            ])])
        };
        assert_eq!(r, expected);
        q(&mut con, &[&b"XGROUP"[..], b"CREATE", key, g, b"0"]).await;
        let r = q(
            &mut con,
            &[&b"XREADGROUP"[..], b"GROUP", g, cons, b"STREAMS", key, b">"],
        )
        .await;
        assert_eq!(r, expected);
        let p = q(&mut con, &[&b"XPENDING"[..], key, g]).await;
        assert_eq!(
            p,
            V::Array(vec![
                V::Int(1),
                V::BulkString(b"1-1".to_vec()),
                V::BulkString(b"1-1".to_vec()),
                V::Array(vec![V::Array(vec![
                    V::BulkString(cons.to_vec()),
                    V::BulkString(b"1".to_vec())
                ])]),
            ])
        );
        let info = q(&mut con, &[&b"XINFO"[..], b"STREAM", key]).await;
        assert_eq!(field(&info, "first-entry"), &entry);
        let groups = q(&mut con, &[&b"XINFO"[..], b"GROUPS", key]).await;
        assert_eq!(value_bytes(field(&items(&groups)[0], "name")), g);
        let c = q(&mut con, &[&b"XINFO"[..], b"CONSUMERS", key, g]).await;
        assert_eq!(value_bytes(field(&items(&c)[0], "name")), cons);
        assert_eq!(q(&mut con, &[&b"XACK"[..], key, g, b"1-1"]).await, V::Int(1));
        let keys = q(&mut con, &["KEYS", "*"]).await;
        assert_eq!(keys, V::Array(vec![V::BulkString(key.to_vec())]));
        assert_eq!(
            q(&mut con, &[&b"TYPE"[..], key]).await,
            V::SimpleString("stream".into())
        );
    }
}

/// A work queue on a consumer group: two workers share the jobs, one crashes holding a
/// job, and another worker's XAUTOCLAIM takes it over (delivery count 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_group_work_queue_end_to_end() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut producer = s.conn(resp3).await;
        let mut w1 = s.conn(resp3).await;
        let mut w2 = s.conn(!resp3).await;
        q(&mut producer, &["FLUSHALL"]).await;
        q(&mut producer, &["XGROUP", "CREATE", "jobs", "workers", "$", "MKSTREAM"]).await;
        for i in 0..10 {
            q(&mut producer, &["XADD", "jobs", "*", "job", &i.to_string()]).await;
        }
        // w1 takes 3 and acks them; w2 takes 1 and crashes (never acks).
        let got = q(
            &mut w1,
            &[
                "XREADGROUP",
                "GROUP",
                "workers",
                "w1",
                "COUNT",
                "3",
                "STREAMS",
                "jobs",
                ">",
            ],
        )
        .await;
        let entries: Vec<String> = match &got {
            V::Map(p) => items(&p[0].1).iter().map(|e| text(&items(e)[0])).collect(),
            V::Array(a) => items(&items(&a[0])[1]).iter().map(|e| text(&items(e)[0])).collect(),
            other => panic!("{}", show(other)),
        };
        assert_eq!(entries.len(), 3);
        let mut ack = vec!["XACK".to_string(), "jobs".into(), "workers".into()];
        ack.extend(entries);
        assert_eq!(q(&mut w1, &ack).await, V::Int(3));
        let crashed = q(
            &mut w2,
            &[
                "XREADGROUP",
                "GROUP",
                "workers",
                "w2",
                "COUNT",
                "1",
                "STREAMS",
                "jobs",
                ">",
            ],
        )
        .await;
        drop(w2);
        let crashed_id = match &crashed {
            V::Map(p) => text(&items(&items(&p[0].1)[0])[0]),
            V::Array(a) => text(&items(&items(&items(&a[0])[1])[0])[0]),
            other => panic!("{}", show(other)),
        };
        // w1 drains the rest.
        let rest = q(
            &mut w1,
            &["XREADGROUP", "GROUP", "workers", "w1", "STREAMS", "jobs", ">"],
        )
        .await;
        let rest_ids: Vec<String> = match &rest {
            V::Map(p) => items(&p[0].1).iter().map(|e| text(&items(e)[0])).collect(),
            V::Array(a) => items(&items(&a[0])[1]).iter().map(|e| text(&items(e)[0])).collect(),
            other => panic!("{}", show(other)),
        };
        assert_eq!(rest_ids.len(), 6);
        let mut ack = vec!["XACK".to_string(), "jobs".into(), "workers".into()];
        ack.extend(rest_ids);
        assert_eq!(q(&mut w1, &ack).await, V::Int(6));
        // The crashed job is the only one pending; once idle 20 ms, w1 claims it.
        assert_eq!(
            show(&q(&mut w1, &["XPENDING", "jobs", "workers"]).await),
            format!(r#"[1,"{crashed_id}","{crashed_id}",[["w2","1"]]]"#)
        );
        let deadline = tokio::time::Instant::now() + WAIT;
        let claimed = loop {
            let r = q(
                &mut w1,
                &["XAUTOCLAIM", "jobs", "workers", "w1", "20", "0-0", "COUNT", "10"],
            )
            .await;
            if !items(&items(&r)[1]).is_empty() {
                break r;
            }
            assert!(tokio::time::Instant::now() < deadline, "never claimable");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let claimed = items(&claimed);
        assert_eq!(text(&claimed[0]), "0-0");
        assert_eq!(text(&items(&items(&claimed[1])[0])[0]), crashed_id);
        assert_eq!(show(&claimed[2]), "[]");
        let rows = pending_rows(&q(&mut w1, &["XPENDING", "jobs", "workers", "-", "+", "10"]).await);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].0.as_str(), rows[0].1.as_str(), rows[0].3),
            (crashed_id.as_str(), "w1", 2)
        );
        assert_eq!(q(&mut w1, &["XACK", "jobs", "workers", &crashed_id]).await, V::Int(1));
        assert_eq!(
            show(&q(&mut w1, &["XPENDING", "jobs", "workers"]).await),
            "[0,nil,nil,nil]"
        );
        let groups = q(&mut w1, &["XINFO", "GROUPS", "jobs"]).await;
        assert_eq!(show(field(&items(&groups)[0], "lag")), "0");
        assert_eq!(show(field(&items(&groups)[0], "entries-read")), "10");
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

// ---------------------------------------------------------------------------------------
// Blocking reads
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xread_block_is_woken_by_xadd_from_another_connection() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut ctl = s.conn(false).await;
        q(&mut ctl, &["FLUSHALL"]).await;
        q(&mut ctl, &["XADD", "other", "1-1", "f", "v"]).await;
        let reader = s.conn(resp3).await;
        let h = spawn_cmd(reader, c(&["XREAD", "BLOCK", "0", "STREAMS", "other", "s", "$", "$"]));
        wait_blocked(&mut ctl, 1).await;
        q(&mut ctl, &["XADD", "s", "5-1", "f", "v"]).await;
        let v = join(h).await.unwrap();
        assert_eq!(show(&v), read_reply(resp3, &[("s", r#"[["5-1",["f","v"]]]"#)]));
        wait_blocked(&mut ctl, 0).await;
        // XREADGROUP BLOCK is woken the same way, and its consumer exists while blocked.
        q(&mut ctl, &["XGROUP", "CREATE", "s", "g", "$"]).await;
        let reader = s.conn(resp3).await;
        let h = spawn_cmd(
            reader,
            c(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]),
        );
        wait_blocked(&mut ctl, 1).await;
        let cons = q(&mut ctl, &["XINFO", "CONSUMERS", "s", "g"]).await;
        assert_eq!(items(&cons).len(), 1);
        q(&mut ctl, &["XADD", "s", "6-1", "f", "w"]).await;
        let v = join(h).await.unwrap();
        assert_eq!(show(&v), read_reply(resp3, &[("s", r#"[["6-1",["f","w"]]]"#)]));
        assert_eq!(
            show(&q(&mut ctl, &["XPENDING", "s", "g"]).await),
            r#"[1,"6-1","6-1",[["c","1"]]]"#
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_timeout_answers_nil() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]).await;
        let t = std::time::Instant::now();
        assert_eq!(
            show(&q(&mut con, &["XREAD", "BLOCK", "100", "STREAMS", "s", "$"]).await),
            "nil"
        );
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(90) && took < WAIT, "{took:?}");
        let t = std::time::Instant::now();
        assert_eq!(
            show(
                &q(
                    &mut con,
                    &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "100", "STREAMS", "s", ">"]
                )
                .await
            ),
            "nil"
        );
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(90) && took < WAIT, "{took:?}");
        // The connection goes on normally.
        assert_eq!(show(&q(&mut con, &["PING"]).await), "PONG");
        q(&mut con, &["DEL", "s"]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_xadd_wakes_fifty_readers() {
    let s = start_server().await;
    let mut ctl = s.conn(false).await;
    let mut handles = Vec::new();
    for i in 0..50 {
        let r = s.conn(i % 2 == 1).await;
        handles.push((
            i % 2 == 1,
            spawn_cmd(r, c(&["XREAD", "BLOCK", "0", "STREAMS", "k", "$"])),
        ));
    }
    wait_blocked(&mut ctl, 50).await;
    q(&mut ctl, &["XADD", "k", "1-1", "f", "v"]).await;
    for (resp3, h) in handles {
        let v = join(h).await.unwrap();
        assert_eq!(show(&v), read_reply(resp3, &[("k", r#"[["1-1",["f","v"]]]"#)]));
    }
    wait_blocked(&mut ctl, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xreadgroup_block_serves_readers_in_fifo_order() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut ctl = s.conn(false).await;
        q(&mut ctl, &["FLUSHALL"]).await;
        q(&mut ctl, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]).await;
        let first = spawn_cmd(
            s.conn(resp3).await,
            c(&["XREADGROUP", "GROUP", "g", "one", "BLOCK", "0", "STREAMS", "s", ">"]),
        );
        wait_blocked(&mut ctl, 1).await;
        let second = spawn_cmd(
            s.conn(resp3).await,
            c(&["XREADGROUP", "GROUP", "g", "two", "BLOCK", "0", "STREAMS", "s", ">"]),
        );
        wait_blocked(&mut ctl, 2).await;
        q(&mut ctl, &["XADD", "s", "1-1", "f", "a"]).await;
        let v = join(first).await.unwrap();
        assert_eq!(show(&v), read_reply(resp3, &[("s", r#"[["1-1",["f","a"]]]"#)]));
        // The second stays blocked: the group's entry went to the first.
        wait_blocked(&mut ctl, 1).await;
        assert!(!second.is_finished());
        q(&mut ctl, &["XADD", "s", "1-2", "f", "b"]).await;
        let v = join(second).await.unwrap();
        assert_eq!(show(&v), read_reply(resp3, &[("s", r#"[["1-2",["f","b"]]]"#)]));
        assert_eq!(
            show(&q(&mut ctl, &["XPENDING", "s", "g"]).await),
            r#"[2,"1-1","1-2",[["one","1"],["two","1"]]]"#
        );
    }
}

/// DEL, FLUSHALL and XGROUP DESTROY end a blocked XREADGROUP with 7.2's NOGROUP; a
/// blocked XREAD stays blocked and is served by an XADD on the recreated key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_or_group_gone_while_blocked() {
    let s = start_server().await;
    for resp3 in PROTOS {
        for event in ["DEL", "UNLINK", "FLUSHALL", "FLUSHDB", "DESTROY", "EXPIRE"] {
            let mut ctl = s.conn(false).await;
            q(&mut ctl, &["FLUSHALL"]).await;
            q(&mut ctl, &["XADD", "s", "1-1", "f", "v"]).await;
            q(&mut ctl, &["XGROUP", "CREATE", "s", "g", "$"]).await;
            let group = spawn_cmd(
                s.conn(resp3).await,
                c(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]),
            );
            let plain = spawn_cmd(s.conn(resp3).await, c(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]));
            wait_blocked(&mut ctl, 2).await;
            match event {
                "DESTROY" => assert_eq!(q(&mut ctl, &["XGROUP", "DESTROY", "s", "g"]).await, V::Int(1)),
                "DEL" | "UNLINK" => assert_eq!(q(&mut ctl, &[event, "s"]).await, V::Int(1)),
                // Expiry is a deletion; nobody touches the key, the cron removes it.
                "EXPIRE" => assert_eq!(q(&mut ctl, &["PEXPIRE", "s", "20"]).await, V::Int(1)),
                _ => assert_eq!(show(&q(&mut ctl, &[event]).await), "OK"),
            }
            let err = join(group).await.expect_err("the XREADGROUP must fail");
            assert_eq!(
                redis_err_text(&err),
                "NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option",
                "{event} resp3={resp3}"
            );
            wait_blocked(&mut ctl, 1).await;
            assert!(!plain.is_finished(), "{event}: the plain XREAD must stay blocked");
            q(&mut ctl, &["XADD", "s", "2-1", "f", "new"]).await;
            let v = join(plain).await.unwrap();
            assert_eq!(
                show(&v),
                read_reply(resp3, &[("s", r#"[["2-1",["f","new"]]]"#)]),
                "{event}"
            );
        }
    }
}

/// RENAME of another stream onto the key serves the blocked readers from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_onto_a_blocked_key_serves_the_readers() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut ctl = s.conn(false).await;
        q(&mut ctl, &["FLUSHALL"]).await;
        let plain = spawn_cmd(s.conn(resp3).await, c(&["XREAD", "BLOCK", "0", "STREAMS", "k", "0"]));
        wait_blocked(&mut ctl, 1).await;
        q(&mut ctl, &["XADD", "other", "3-1", "f", "v"]).await;
        q(&mut ctl, &["RENAME", "other", "k"]).await;
        let v = join(plain).await.unwrap();
        assert_eq!(show(&v), read_reply(resp3, &[("k", r#"[["3-1",["f","v"]]]"#)]));
        // XREADGROUP: served from the new stream if it has the group, else NOGROUP.
        q(&mut ctl, &["XGROUP", "CREATE", "k", "g", "$"]).await;
        let group = spawn_cmd(
            s.conn(resp3).await,
            c(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "k", ">"]),
        );
        wait_blocked(&mut ctl, 1).await;
        q(&mut ctl, &["XADD", "o2", "4-1", "f", "w"]).await;
        q(&mut ctl, &["XGROUP", "CREATE", "o2", "g", "0"]).await;
        q(&mut ctl, &["RENAME", "o2", "k"]).await;
        let v = join(group).await.unwrap();
        assert_eq!(show(&v), read_reply(resp3, &[("k", r#"[["4-1",["f","w"]]]"#)]));
        let group = spawn_cmd(
            s.conn(resp3).await,
            c(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "k", ">"]),
        );
        wait_blocked(&mut ctl, 1).await;
        q(&mut ctl, &["XADD", "o3", "5-1", "f", "x"]).await;
        q(&mut ctl, &["RENAME", "o3", "k"]).await;
        let err = join(group).await.expect_err("no group on the new stream");
        assert_eq!(
            redis_err_text(&err),
            "NOGROUP No such key 'k' or consumer group 'g' in XREADGROUP with GROUP option"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_unblock_timeout_and_error() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut ctl = s.conn(false).await;
        let mut r = s.conn(resp3).await;
        let id = client_id(&mut r).await.to_string();
        let h = spawn_cmd(r, c(&["XREAD", "BLOCK", "0", "STREAMS", "k", "$"]));
        wait_blocked(&mut ctl, 1).await;
        assert_eq!(q(&mut ctl, &["CLIENT", "UNBLOCK", &id]).await, V::Int(1));
        assert_eq!(show(&join(h).await.unwrap()), "nil");
        assert_eq!(q(&mut ctl, &["CLIENT", "UNBLOCK", &id]).await, V::Int(0));

        let mut r = s.conn(resp3).await;
        let id = client_id(&mut r).await.to_string();
        q(&mut ctl, &["XGROUP", "CREATE", "g", "g", "$", "MKSTREAM"]).await;
        let h = spawn_cmd(
            r,
            c(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "g", ">"]),
        );
        wait_blocked(&mut ctl, 1).await;
        assert_eq!(
            e(&mut ctl, &["CLIENT", "UNBLOCK", &id, "FOO"]).await,
            "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
        );
        assert_eq!(q(&mut ctl, &["CLIENT", "UNBLOCK", &id, "ERROR"]).await, V::Int(1));
        let err = join(h).await.expect_err("UNBLOCKED");
        assert_eq!(redis_err_text(&err), "UNBLOCKED client unblocked via CLIENT UNBLOCK");
        wait_blocked(&mut ctl, 0).await;
        q(&mut ctl, &["FLUSHALL"]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_client_in_info_client_list_and_client_kill() {
    let s = start_server().await;
    let mut ctl = s.conn(false).await;
    let mut raw = s.raw().await;
    let id = raw.call(&["CLIENT", "ID"]).await.int().to_string();
    raw.send(&["XREAD", "BLOCK", "0", "STREAMS", "k", "$"]).await;
    wait_blocked(&mut ctl, 1).await;
    let list = text(&q(&mut ctl, &["CLIENT", "LIST"]).await);
    let line = list
        .lines()
        .find(|l| client_field(l, "id").as_deref() == Some(id.as_str()))
        .expect("blocked client listed");
    assert_eq!(client_field(line, "flags").as_deref(), Some("b"), "{line}");
    assert_eq!(client_field(line, "cmd").as_deref(), Some("xread"), "{line}");
    assert_eq!(q(&mut ctl, &["CLIENT", "KILL", "ID", &id]).await, V::Int(1));
    raw.expect_eof().await;
    wait_blocked(&mut ctl, 0).await;
    // Nothing left waiting: an XADD has nobody to serve and the server is fine.
    q(&mut ctl, &["XADD", "k", "1-1", "f", "v"]).await;
    let list = text(&q(&mut ctl, &["CLIENT", "LIST"]).await);
    assert!(!list
        .lines()
        .any(|l| client_field(l, "id").as_deref() == Some(id.as_str())));
    s.assert_alive().await;
}

/// Commands pipelined after a blocking read run after it, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_pipelined_after_a_blocking_read_wait_for_it() {
    let s = start_server().await;
    let mut ctl = s.conn(false).await;
    let mut raw = s.raw().await;
    let mut req = resp_command(&["XREAD", "BLOCK", "0", "STREAMS", "k", "$"]);
    req.extend(resp_command(&["PING"]));
    req.extend(resp_command(&["XLEN", "k"]));
    raw.send_raw(&req).await;
    wait_blocked(&mut ctl, 1).await;
    raw.expect_silence(Duration::from_millis(50)).await;
    q(&mut ctl, &["XADD", "k", "1-1", "f", "v"]).await;
    raw.expect(b"*1\r\n*2\r\n$1\r\nk\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n+PONG\r\n:1\r\n")
        .await;
}

/// Inside MULTI/EXEC a read that would block answers nil at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_reads_inside_multi_answer_nil() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut con = s.conn(resp3).await;
        q(&mut con, &["FLUSHALL"]).await;
        q(&mut con, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]).await;
        let (a, b, n): (V, V, V) = tokio::time::timeout(
            WAIT,
            redis::pipe()
                .atomic()
                .cmd("XREAD")
                .arg(&["BLOCK", "0", "STREAMS", "s", "$"])
                .cmd("XREADGROUP")
                .arg(&["GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"])
                .cmd("XLEN")
                .arg("s")
                .query_async(&mut con),
        )
        .await
        .expect("EXEC must not block")
        .unwrap();
        assert_eq!((show(&a), show(&b), show(&n)), ("nil".into(), "nil".into(), "0".into()));
        // Data written earlier in the same transaction is served.
        let (_, r): (V, V) = redis::pipe()
            .atomic()
            .cmd("XADD")
            .arg(&["s", "1-1", "f", "v"])
            .cmd("XREAD")
            .arg(&["BLOCK", "0", "STREAMS", "s", "0"])
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(show(&r), read_reply(resp3, &[("s", r#"[["1-1",["f","v"]]]"#)]));
    }
}

/// A blocked XREADGROUP that ends in NOGROUP counts in errorstats and in the command's
/// failed_calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nogroup_unblock_counts_in_errorstats() {
    let s = start_server().await;
    let mut ctl = s.conn(false).await;
    q(&mut ctl, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]).await;
    q(&mut ctl, &["CONFIG", "RESETSTAT"]).await;
    let h = spawn_cmd(
        s.conn(false).await,
        c(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]),
    );
    wait_blocked(&mut ctl, 1).await;
    q(&mut ctl, &["XGROUP", "DESTROY", "s", "g"]).await;
    let err = join(h).await.expect_err("NOGROUP");
    assert!(redis_err_text(&err).starts_with("NOGROUP "));
    let errs = info(&mut ctl, "errorstats").await;
    assert_eq!(
        info_field(&errs, "errorstat_NOGROUP").as_deref(),
        Some("count=1"),
        "{errs}"
    );
    let stats = info(&mut ctl, "commandstats").await;
    let row = info_field(&stats, "cmdstat_xreadgroup").expect("cmdstat_xreadgroup");
    assert!(row.starts_with("calls=1,"), "{row}");
    assert!(row.ends_with(",rejected_calls=0,failed_calls=1"), "{row}");
    let st = info(&mut ctl, "stats").await;
    assert_eq!(info_field(&st, "total_error_replies").as_deref(), Some("1"), "{st}");
}

/// 7.2's wake-up rules: a write that leaves nothing new keeps readers blocked; a
/// transaction's writes are seen together; keys and databases are told apart; a reader
/// served after blocking gets every entry (no 1000-entry cap) unless it gave COUNT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_wake_up_rules() {
    let s = start_server().await;
    for resp3 in PROTOS {
        let mut ctl = s.conn(false).await;
        q(&mut ctl, &["FLUSHALL"]).await;
        q(&mut ctl, &["XADD", "k", "1-1", "f", "v"]).await;
        let plain = spawn_cmd(
            s.conn(resp3).await,
            c(&["XREAD", "BLOCK", "0", "STREAMS", "a", "k", "$", "$"]),
        );
        wait_blocked(&mut ctl, 1).await;
        // XADD MAXLEN 0, and XADD + XDEL in one MULTI: nothing to serve, still blocked.
        q(&mut ctl, &["XADD", "k", "MAXLEN", "0", "2-1", "f", "v"]).await;
        q(&mut ctl, &["MULTI"]).await;
        q(&mut ctl, &["XADD", "k", "3-1", "f", "v"]).await;
        q(&mut ctl, &["XDEL", "k", "3-1"]).await;
        q(&mut ctl, &["EXEC"]).await;
        // The same key in another database, and another key: not for this reader.
        q(&mut ctl, &["SELECT", "1"]).await;
        q(&mut ctl, &["XADD", "k", "9-9", "f", "v"]).await;
        q(&mut ctl, &["SELECT", "0"]).await;
        q(&mut ctl, &["XADD", "b", "1-1", "f", "v"]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!plain.is_finished(), "woken without data");
        assert_eq!(blocked_clients(&mut ctl).await, 1);
        // The second key of the list serves it, in a one-key reply.
        q(&mut ctl, &["XADD", "k", "4-1", "f", "w"]).await;
        let v = join(plain).await.unwrap();
        assert_eq!(show(&v), read_reply(resp3, &[("k", r#"[["4-1",["f","w"]]]"#)]));

        // A MULTI of two XADDs: the next group reader gets both (subject to COUNT).
        q(&mut ctl, &["XGROUP", "CREATE", "k", "g", "$"]).await;
        let one = spawn_cmd(
            s.conn(resp3).await,
            c(&["XREADGROUP", "GROUP", "g", "one", "BLOCK", "0", "STREAMS", "k", ">"]),
        );
        wait_blocked(&mut ctl, 1).await;
        let two = spawn_cmd(
            s.conn(resp3).await,
            c(&[
                "XREADGROUP",
                "GROUP",
                "g",
                "two",
                "COUNT",
                "1",
                "BLOCK",
                "0",
                "STREAMS",
                "k",
                ">",
            ]),
        );
        wait_blocked(&mut ctl, 2).await;
        q(&mut ctl, &["MULTI"]).await;
        q(&mut ctl, &["XADD", "k", "5-1", "f", "a"]).await;
        q(&mut ctl, &["XADD", "k", "5-2", "f", "b"]).await;
        q(&mut ctl, &["EXEC"]).await;
        let v = join(one).await.unwrap();
        assert_eq!(
            show(&v),
            read_reply(resp3, &[("k", r#"[["5-1",["f","a"]],["5-2",["f","b"]]]"#)])
        );
        wait_blocked(&mut ctl, 1).await;
        q(&mut ctl, &["XADD", "k", "6-1", "f", "c"]).await;
        q(&mut ctl, &["XADD", "k", "6-2", "f", "d"]).await;
        let v = join(two).await.unwrap();
        assert_eq!(show(&v), read_reply(resp3, &[("k", r#"[["6-1",["f","c"]]]"#)]));

        // No 1000-entry cap after blocking (7.2).
        let big = spawn_cmd(s.conn(resp3).await, c(&["XREAD", "BLOCK", "0", "STREAMS", "big", "$"]));
        wait_blocked(&mut ctl, 1).await;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for i in 1..=1500 {
            pipe.cmd("XADD")
                .arg("big")
                .arg(format!("1-{i}"))
                .arg("f")
                .arg("v")
                .ignore();
        }
        let () = pipe.query_async(&mut ctl).await.unwrap();
        let v = join(big).await.unwrap();
        let entries = match &v {
            V::Map(p) => items(&p[0].1).len(),
            V::Array(a) => items(&items(&a[0])[1]).len(),
            other => panic!("{}", show(other)),
        };
        assert_eq!(entries, 1500);
    }
}
