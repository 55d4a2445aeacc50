//! `GET /v1/ws`: a WebSocket client speaking a small JSON protocol.
//!
//! Requests are text frames holding one JSON object with an `"op"`:
//!
//! ```text
//! {"op": "subscribe",   "channel": "news"}          (or "channels": [...])
//! {"op": "psubscribe",  "pattern": "news.*"}        (or "patterns": [...])
//! {"op": "ssubscribe",  "channel": "s"}             unsubscribe / punsubscribe /
//!                                                   sunsubscribe alike (none named: all)
//! {"op": "publish", "channel": "news", "data": "hi"}      ("data_b64" for binary,
//!                                                          "shard": true for SPUBLISH)
//! {"op": "ping"}
//! ```
//!
//! or a binary frame: the same JSON object for `publish` without `data`, a newline, then
//! the payload's raw bytes. The server sends text frames: messages as
//! `{"type": "message", "channel": ..., "data": ...}` (`pmessage` adds `"pattern"`),
//! confirmations as `{"type": "subscribe", "channel": ..., "count": N}`, replies as
//! `{"type": "reply", "op": "publish", "result": N}`, `{"type": "pong"}`, and errors
//! as `{"type": "error", "op": ..., "error": "<Redis's text>"}`; a message whose
//! payload is not UTF-8 comes as a binary frame: its JSON object without `data`, a
//! newline, the payload.
//!
//! Each request runs as the Redis command it names, on the connection's own session,
//! so permissions, limits and texts are RESP's. The connection's outbox holds WebSocket
//! frames, written by the same writer task as a RESP connection's.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;

use super::{open, ApiError, Peer, Web, WebSession};
use crate::commands::Flow;
use crate::protocol::web::{event, json_field, json_str};
use crate::protocol::websocket::{self, close_payload, encode_frame, Decoder, Incoming, Opcode};
use crate::protocol::wire::Wire;
use crate::stats::Stats;

/// `GET /v1/ws`: checks the handshake, logs the client in (from the request's headers,
/// before the upgrade, so a refusal is an HTTP status), then upgrades.
pub async fn upgrade(
    State(web): State<Web>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    mut req: Request,
) -> Result<Response, ApiError> {
    let has = |name: header::HeaderName, word: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .unwrap_or_default()
                .split(',')
                .any(|w| w.trim().eq_ignore_ascii_case(word))
        })
    };
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "ERR /v1/ws is a WebSocket endpoint: send Upgrade: websocket",
        ));
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        let mut r = ApiError::new(StatusCode::UPGRADE_REQUIRED, "ERR unsupported WebSocket version").into_response();
        r.headers_mut()
            .insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return Ok(r);
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "ERR missing Sec-WebSocket-Key"));
    };
    let accept = websocket::accept_key(key.as_bytes().trim_ascii());
    let session = open(&web, &peer, &headers, Wire::WebSocket, "websocket").await?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let tracker = web.tracker.clone();
    tracker.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => serve(session, TokioIo::new(upgraded)).await,
            Err(e) => tracing::debug!("websocket: upgrade failed: {e}"),
        }
    });
    Ok((
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::UPGRADE, HeaderValue::from_static("websocket")),
            (header::CONNECTION, HeaderValue::from_static("Upgrade")),
            (
                header::SEC_WEBSOCKET_ACCEPT,
                HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
            ),
        ],
    )
        .into_response())
}

/// Reads requests until the client closes; the writer drains the outbox meanwhile.
async fn serve<S>(mut session: WebSession, io: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut rd, wr) = tokio::io::split(io);
    let broker = session.broker.clone();
    let outbox = session.outbox().clone();
    let writer = tokio::spawn(crate::client::writer::drain(outbox.clone(), wr, broker.stats.clone()));
    let mut decoder = Decoder::new(super::max_body(&broker.settings));
    let mut buf = BytesMut::new();
    let mut small = [0u8; 512];
    let keepalive = super::keepalive(&broker.settings);
    let shutdown = broker.shutdown.clone();
    'conn: loop {
        // An idle connection holds no read buffer: the next request is read into a small
        // buffer on the stack; only a frame that arrives in pieces gets a growing one.
        let read = async {
            if buf.is_empty() {
                let n = rd.read(&mut small).await?;
                buf.extend_from_slice(&small[..n]);
                Ok(n)
            } else {
                buf.reserve(decoder.bytes_wanted(&buf).clamp(4096, 64 * 1024));
                rd.read_buf(&mut buf).await
            }
        };
        tokio::select! {
            _ = outbox.gone.cancelled() => break,
            _ = shutdown.cancelled() => {
                close(&session, 1001, "server shutting down");
                break;
            }
            // Keeps proxies from closing an idle connection.
            _ = super::idle(keepalive) => {
                control(&session, Opcode::Ping, b"");
                continue;
            }
            r = read => match r {
                Ok(0) | Err(_) => {
                    outbox.close_after_flush();
                    break;
                }
                Ok(n) => Stats::add(&broker.stats.net_input_bytes, n as u64),
            },
        }
        loop {
            match decoder.next(&mut buf) {
                Ok(Some(Incoming::Text(text))) => request(&mut session, &text, None).await,
                Ok(Some(Incoming::Binary(frame))) => {
                    let Some(nl) = frame.iter().position(|&b| b == b'\n') else {
                        error(
                            &session,
                            None,
                            "ERR a binary frame is a JSON header, a newline, then the payload",
                        );
                        continue;
                    };
                    request(&mut session, &frame[..nl], Some(frame.slice(nl + 1..))).await
                }
                Ok(Some(Incoming::Ping(p))) => control(&session, Opcode::Pong, &p),
                Ok(Some(Incoming::Pong(_))) => {}
                Ok(Some(Incoming::Close(..))) => {
                    close(&session, 1000, "");
                    break 'conn;
                }
                Ok(None) => break,
                Err(e) => {
                    close(&session, e.close_code(), e.reason());
                    break 'conn;
                }
            }
            if outbox.is_gone() {
                break 'conn;
            }
        }
        if buf.is_empty() {
            buf = BytesMut::new();
        }
    }
    // The writer sends what is queued (a close frame included), then ends.
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    // Still writing after that: give up (a writer that finished ignores this).
    outbox.kill();
    drop(session);
}

/// Queues a control frame; never dropped (it is a reply).
fn control(session: &WebSession, op: Opcode, payload: &[u8]) {
    let mut out = BytesMut::new();
    encode_frame(&mut out, op, payload);
    session.outbox().push_reply(out.freeze(), &session.broker.settings);
}

/// Queues a close frame, then closes once it is written.
fn close(session: &WebSession, code: u16, reason: &str) {
    control(session, Opcode::Close, &close_payload(code, reason));
    session.outbox().close_after_flush();
}

fn error(session: &WebSession, op: Option<&str>, text: &str) {
    let mut out = BytesMut::new();
    event(&mut out, Wire::WebSocket, "error", |b| {
        if let Some(op) = op {
            json_field(b, "op", op.as_bytes());
            b.extend_from_slice(b",");
        }
        json_field(b, "error", text.as_bytes());
    });
    session.outbox().push_reply(out.freeze(), &session.broker.settings);
}

/// The Redis command an op runs, and the names of its JSON arguments.
fn command(op: &str) -> Option<(&'static str, &'static [u8], &'static str)> {
    Some(match op {
        "subscribe" => ("subscribe", b"SUBSCRIBE", "channel"),
        "psubscribe" => ("psubscribe", b"PSUBSCRIBE", "pattern"),
        "ssubscribe" => ("ssubscribe", b"SSUBSCRIBE", "channel"),
        "unsubscribe" => ("unsubscribe", b"UNSUBSCRIBE", "channel"),
        "punsubscribe" => ("punsubscribe", b"PUNSUBSCRIBE", "pattern"),
        "sunsubscribe" => ("sunsubscribe", b"SUNSUBSCRIBE", "channel"),
        "publish" => ("publish", b"PUBLISH", "channel"),
        "ping" => ("ping", b"", ""),
        _ => return None,
    })
}

/// Runs one request: `json` is the object, `raw` a binary frame's payload.
async fn request(session: &mut WebSession, json: &[u8], raw: Option<Bytes>) {
    let obj: serde_json::Map<String, serde_json::Value> = match serde_json::from_slice(json) {
        Ok(o) => o,
        Err(e) => {
            return error(
                session,
                None,
                &format!("ERR a request is a JSON object with an \"op\": {e}"),
            )
        }
    };
    let op_name = obj.get("op").and_then(|v| v.as_str()).unwrap_or_default();
    let Some((op, cmd, arg)) = command(op_name) else {
        let mut quoted = BytesMut::new();
        json_str(&mut quoted, op_name);
        let quoted = String::from_utf8_lossy(&quoted[1..quoted.len() - 1]).into_owned();
        return error(session, None, &format!("ERR unknown op '{quoted}' (subscribe, psubscribe, ssubscribe, unsubscribe, punsubscribe, sunsubscribe, publish, ping)"));
    };
    if op == "ping" {
        let mut out = BytesMut::new();
        event(&mut out, Wire::WebSocket, "pong", |_| {});
        session.outbox().push_reply(out.freeze(), &session.broker.settings);
        return;
    }
    let text = |v: &serde_json::Value| v.as_str().map(|s| Bytes::copy_from_slice(s.as_bytes()));
    let mut names: Vec<Bytes> = Vec::new();
    if let Some(v) = obj.get(arg) {
        names.extend(text(v));
    }
    if let Some(serde_json::Value::Array(items)) = obj.get(&format!("{arg}s")) {
        names.extend(items.iter().filter_map(text));
    }
    let mut args = vec![Bytes::from_static(cmd)];
    if op == "publish" {
        let shard = obj.get("shard").and_then(|v| v.as_bool()).unwrap_or(false);
        if shard {
            args[0] = Bytes::from_static(b"SPUBLISH");
        }
        let payload = match (raw, obj.get("data"), obj.get("data_b64")) {
            (Some(raw), _, _) => Some(raw),
            (None, Some(d), _) => text(d),
            (None, None, Some(b)) => match b.as_str().map(|s| base64::engine::general_purpose::STANDARD.decode(s)) {
                Some(Ok(bytes)) => Some(Bytes::from(bytes)),
                _ => return error(session, Some(op), "ERR data_b64 is not valid base64"),
            },
            _ => None,
        };
        match (names.len(), payload) {
            (1, Some(payload)) => {
                args.push(names.pop().expect("one name"));
                args.push(payload);
            }
            _ => {
                return error(
                    session,
                    Some(op),
                    "ERR publish needs a \"channel\" and \"data\" (or \"data_b64\")",
                )
            }
        }
    } else {
        if names.is_empty() && op.contains("un") {
            // Unsubscribing from nothing named: from everything, as in Redis.
        } else if names.is_empty() {
            return error(
                session,
                Some(op),
                &format!("ERR {op} needs a \"{arg}\" (or \"{arg}s\": [...])"),
            );
        }
        args.extend(names);
    }
    session.web_op = Some(op);
    let Some(flow) = super::run(session, &args).await else {
        return;
    };
    session.send_replies().await;
    session.web_op = None;
    match flow {
        Flow::CloseAfterReply => session.outbox().close_after_flush(),
        Flow::CloseNow => session.outbox().kill(),
        _ => {}
    }
}
