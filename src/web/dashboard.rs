//! The dashboard: `GET /v1/stats` (JSON) and the static page that polls it (`/`,
//! `/app.js`, `/style.css`), plus `GET /demo`, a minimal SSE example.
//!
//! `/v1/stats` is computed by running commands as the request's client (INFO, PUBSUB
//! CHANNELS / NUMSUB / NUMPAT, CLIENT LIST), so ACL decides what a user may see and a
//! refusal carries the command's own text. INFO is the entry ticket: refused, the whole
//! request is refused (401 / 403 with `{"error": ...}`). A later section that is refused
//! (a user allowed INFO but not CLIENT LIST) is `null`, with its error under `"errors"`,
//! so a monitoring user with a narrower ACL still gets the cards.
//!
//! Every list is bounded ([`LIST_LIMIT`]) and says when it was cut, so the JSON stays
//! small on a server with a million channels. Rates are not computed here: the page
//! divides the difference of two samples' counters by the difference of their `time_ms`.
//!
//! The static files are compiled in (`include_str!`): no build step, nothing fetched from
//! elsewhere. They hold no data, so they need no credentials; the page's first
//! `/v1/stats` request is what makes the browser ask for them (401 with
//! `WWW-Authenticate: Basic`, same origin).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use serde_json::{json, Map, Value as Json};

use super::{call, open, reply_of, ApiError, Peer, Web};
use crate::protocol::value::Value;
use crate::protocol::wire::Wire;

/// The most channels, patterns and clients listed (each list says when it was capped).
pub const LIST_LIMIT: usize = 500;

/// The INFO fields copied into `"info"`: what the cards and totals need, nothing that
/// names files or hosts (`executable`, `config_file`) even to a user allowed INFO.
const INFO_FIELDS: &[&str] = &[
    "redis_version",
    "fanout_version",
    "uptime_in_seconds",
    "tcp_port",
    "connected_clients",
    "maxclients",
    "blocked_clients",
    "pubsub_clients",
    "client_recent_max_output_buffer",
    "used_memory",
    "used_memory_human",
    "used_memory_rss",
    "used_memory_rss_human",
    "maxmemory",
    "maxmemory_policy",
    "total_connections_received",
    "total_commands_processed",
    "instantaneous_ops_per_sec",
    "total_net_input_bytes",
    "total_net_output_bytes",
    "rejected_connections",
    "pubsub_channels",
    "pubsub_patterns",
    "pubsubshard_channels",
    "client_query_buffer_limit_disconnections",
    "client_output_buffer_limit_disconnections",
    "pubsub_published_messages",
    "pubsub_delivered_messages",
    "pubsub_dropped_messages",
    "auth_failures",
];

/// The CLIENT LIST fields kept per client; numbers become JSON numbers.
const CLIENT_FIELDS: &[&str] = &[
    "id", "addr", "name", "lib-name", "lib-ver", "user", "age", "idle", "flags", "sub", "psub", "ssub", "oll", "omem",
    "dropped", "cmd", "resp",
];

/// `GET /v1/stats`.
pub async fn stats(
    State(web): State<Web>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut session = open(&web, &peer, &headers, Wire::Resp3, "stats").await?;
    let cmd = |parts: &[&[u8]]| parts.iter().map(|p| Bytes::copy_from_slice(p)).collect::<Vec<_>>();

    let reply = call(
        &mut session,
        &cmd(&[b"INFO", b"server", b"clients", b"memory", b"stats"]),
    )
    .await;
    let info = match reply_of(&reply)? {
        Value::Bulk(text) | Value::Simple(text) => parse_info(text),
        _ => Map::new(),
    };
    let totals = json!({
        "published": info.get("pubsub_published_messages").cloned().unwrap_or(json!(0)),
        "delivered": info.get("pubsub_delivered_messages").cloned().unwrap_or(json!(0)),
        "dropped": info.get("pubsub_dropped_messages").cloned().unwrap_or(json!(0)),
        "obuf_disconnections": info.get("client_output_buffer_limit_disconnections").cloned().unwrap_or(json!(0)),
    });

    let mut errors = Map::new();

    // Channels: the first LIST_LIMIT in byte order (stable from one poll to the next),
    // then NUMSUB for those only.
    let reply = call(&mut session, &cmd(&[b"PUBSUB", b"CHANNELS"])).await;
    let channels = match reply_of(&reply) {
        Err(e) => {
            errors.insert("channels".into(), e.text.into());
            Json::Null
        }
        Ok(v) => {
            let mut names: Vec<&[u8]> = v.items().unwrap_or_default().iter().filter_map(Value::bytes).collect();
            let total = names.len();
            names.sort_unstable();
            names.truncate(LIST_LIMIT);
            let mut args = cmd(&[b"PUBSUB", b"NUMSUB"]);
            args.extend(names.iter().map(|n| Bytes::copy_from_slice(n)));
            let reply = call(&mut session, &args).await;
            match reply_of(&reply) {
                Err(e) => {
                    errors.insert("channels".into(), e.text.into());
                    Json::Null
                }
                Ok(counts) => {
                    let list = name_counts(&counts)
                        .into_iter()
                        .map(|(name, n)| entry("channel", name, n))
                        .collect();
                    listing(list, total)
                }
            }
        }
    };

    // Patterns: no command lists them, so the registry is read directly, but only for a
    // user allowed PUBSUB NUMPAT (the command that counts them), with its refusal text.
    let reply = call(&mut session, &cmd(&[b"PUBSUB", b"NUMPAT"])).await;
    let patterns = match reply_of(&reply) {
        Err(e) => {
            errors.insert("patterns".into(), e.text.into());
            Json::Null
        }
        Ok(_) => {
            let (list, total) = web.broker.registry.patterns.counts(LIST_LIMIT);
            let list = list.iter().map(|(p, n)| entry("pattern", p, *n)).collect();
            listing(list, total)
        }
    };

    let reply = call(&mut session, &cmd(&[b"CLIENT", b"LIST"])).await;
    let clients = match reply_of(&reply) {
        Err(e) => {
            errors.insert("clients".into(), e.text.into());
            Json::Null
        }
        Ok(v) => {
            let text = v.bytes().unwrap_or_default();
            let mut all: Vec<Map<String, Json>> = text
                .split(|&b| b == b'\n')
                .filter(|l| !l.trim_ascii().is_empty())
                .map(parse_client)
                .collect();
            let total = all.len();
            // Past the cap, the clients worth seeing are the ones losing messages or
            // holding output: most dropped first, then most output memory, then oldest.
            if total > LIST_LIMIT {
                let num = |c: &Map<String, Json>, k: &str| c.get(k).and_then(Json::as_u64).unwrap_or(0);
                all.sort_by(|a, b| {
                    num(b, "dropped")
                        .cmp(&num(a, "dropped"))
                        .then(num(b, "omem").cmp(&num(a, "omem")))
                        .then(num(a, "id").cmp(&num(b, "id")))
                });
                all.truncate(LIST_LIMIT);
            }
            listing(all.into_iter().map(Json::Object).collect(), total)
        }
    };

    let time_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let body = json!({
        "time_ms": time_ms,
        "info": info,
        "totals": totals,
        "channels": channels,
        "patterns": patterns,
        "clients": clients,
        "limit": LIST_LIMIT,
        "errors": errors,
    });
    let mut text = serde_json::to_vec(&body).unwrap_or_default();
    text.push(b'\n');
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            // Per-user and changing every second: never served from a cache.
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response())
}

/// `{"total": N, "capped": bool, "list": [...]}`.
fn listing(list: Vec<Json>, total: usize) -> Json {
    json!({ "total": total, "capped": total > list.len(), "list": list })
}

/// `{"<kind>": name, "subscribers": n}`, or `"<kind>_b64"` for a name that is not
/// UTF-8 (as SSE messages carry binary names).
fn entry(kind: &str, name: &[u8], subscribers: usize) -> Json {
    let mut m = Map::new();
    insert_name(&mut m, kind, name);
    m.insert("subscribers".into(), subscribers.into());
    Json::Object(m)
}

fn insert_name(m: &mut Map<String, Json>, key: &str, value: &[u8]) {
    use base64::Engine;
    match std::str::from_utf8(value) {
        Ok(s) => m.insert(key.into(), s.into()),
        Err(_) => m.insert(
            format!("{key}_b64"),
            base64::engine::general_purpose::STANDARD.encode(value).into(),
        ),
    };
}

/// PUBSUB NUMSUB's reply: a flat array of name, count (a map accepted too).
fn name_counts<'a>(v: &Value<'a>) -> Vec<(&'a [u8], usize)> {
    let count = |v: &Value| match v {
        Value::Int(n) => usize::try_from(*n).unwrap_or(0),
        _ => 0,
    };
    match v {
        Value::Map(pairs) => pairs.iter().filter_map(|(k, n)| Some((k.bytes()?, count(n)))).collect(),
        _ => v
            .items()
            .unwrap_or_default()
            .chunks_exact(2)
            .filter_map(|p| Some((p[0].bytes()?, count(&p[1]))))
            .collect(),
    }
}

/// A JSON number when `s` is an integer, else the text.
fn scalar(s: &str) -> Json {
    match s.parse::<i64>() {
        Ok(n) => n.into(),
        Err(_) => s.into(),
    }
}

/// INFO's `key:value` lines, keeping only [`INFO_FIELDS`].
fn parse_info(text: &[u8]) -> Map<String, Json> {
    let text = String::from_utf8_lossy(text);
    let mut out = Map::new();
    for line in text.lines() {
        let Some((k, v)) = line.trim_end().split_once(':') else {
            continue;
        };
        if INFO_FIELDS.contains(&k) {
            out.insert(k.to_string(), scalar(v));
        }
    }
    out
}

/// One CLIENT LIST line (`id=1 addr=... name=... lib-name=... dropped=0`), keeping
/// [`CLIENT_FIELDS`]. Names cannot hold spaces (CLIENT SETNAME refuses them), so fields
/// split on spaces; a name or library that is not UTF-8 gets the `_b64` form.
fn parse_client(line: &[u8]) -> Map<String, Json> {
    let mut m = Map::new();
    for field in line.trim_ascii().split(|&b| b == b' ') {
        let Some(eq) = field.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (k, v) = (&field[..eq], &field[eq + 1..]);
        let Some(&k) = CLIENT_FIELDS.iter().find(|f| f.as_bytes() == k) else {
            continue;
        };
        match std::str::from_utf8(v) {
            Ok(s) if k != "name" && k != "lib-name" && k != "lib-ver" => {
                m.insert(k.into(), scalar(s));
            }
            _ => insert_name(&mut m, k, v),
        }
    }
    m
}

/// A compiled-in file with its type. `no-cache`: the browser revalidates, so a new
/// fanout's page is picked up at once.
fn file(content_type: &'static str, csp: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // Scripts and connections to this origin only: even a bug that put server
            // data into markup could not load or send anything elsewhere.
            (header::CONTENT_SECURITY_POLICY, csp),
        ],
        body,
    )
        .into_response()
}

const CSP: &str =
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/// The demo keeps its script and style inline so the example is one file to read.
const DEMO_CSP: &str =
    "default-src 'self'; img-src 'self' data:; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; \
                        frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub async fn index() -> Response {
    file("text/html; charset=utf-8", CSP, include_str!("static/index.html"))
}

pub async fn app_js() -> Response {
    file("text/javascript; charset=utf-8", CSP, include_str!("static/app.js"))
}

pub async fn style_css() -> Response {
    file("text/css; charset=utf-8", CSP, include_str!("static/style.css"))
}

pub async fn demo() -> Response {
    file("text/html; charset=utf-8", DEMO_CSP, include_str!("static/demo.html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_keeps_the_listed_fields_as_numbers_or_text() {
        let m = parse_info(b"# Memory\r\nused_memory:123\r\nused_memory_human:1.2K\r\nexecutable:/x\r\n\r\nbroken\r\n");
        assert_eq!(m.get("used_memory"), Some(&json!(123)));
        assert_eq!(m.get("used_memory_human"), Some(&json!("1.2K")));
        assert!(!m.contains_key("executable"));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn client_lines_parse_without_panicking_on_anything() {
        let m = parse_client(b"id=7 addr=1.2.3.4:5 name=web lib-name=ioredis omem=10 dropped=3 flags=P cmd=subscribe");
        assert_eq!(m.get("id"), Some(&json!(7)));
        assert_eq!(m.get("name"), Some(&json!("web")));
        assert_eq!(m.get("lib-name"), Some(&json!("ioredis")));
        assert_eq!(m.get("dropped"), Some(&json!(3)));
        assert_eq!(m.get("flags"), Some(&json!("P")));
        // A name of digits stays text; odd bytes get the base64 form.
        let m = parse_client(b"name=123 lib-name=\xff x = =y id=");
        assert_eq!(m.get("name"), Some(&json!("123")));
        assert_eq!(m.get("lib-name_b64"), Some(&json!("/w==")));
        assert_eq!(m.get("id"), Some(&json!("")));
        assert!(parse_client(b"").is_empty());
    }

    #[test]
    fn numsub_replies_pair_up() {
        let v = Value::Array(vec![Value::Bulk(b"a"), Value::Int(2), Value::Bulk(b"b")]);
        assert_eq!(name_counts(&v), vec![(&b"a"[..], 2)]);
        let v = Value::Map(vec![(Value::Bulk(b"a"), Value::Int(-1))]);
        assert_eq!(name_counts(&v), vec![(&b"a"[..], 0)]);
        assert!(name_counts(&Value::Null).is_empty());
    }
}
