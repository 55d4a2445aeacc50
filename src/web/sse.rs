//! Server-Sent Events.
//!
//! `GET /v1/sse?channel=a&pattern=news.*&shard=s` subscribes with SUBSCRIBE, PSUBSCRIBE
//! and SSUBSCRIBE (so ACL and cluster routing apply, and a refusal is an HTTP error
//! before the stream starts), then streams what the subscriber's outbox receives:
//! confirmations, then one event per message, already encoded as SSE. On an HTTP/1
//! connection the connection's own writer streams it (see [`super::h1`]); otherwise
//! (HTTP/2, a kept-alive connection's later request) hyper polls it as the response body.
//! Either way a browser that reads too slowly fills its outbox and meets its output limit
//! and overflow policy like any subscriber; messages dropped under a drop policy are
//! announced in the stream (`event: dropped`, from `Outbox::take`).
//!
//! `GET /v1/streams/<key>/sse?from=<id>` replays a stream after an ID and follows it
//! with blocking XREADs; each entry's `id:` is its entry ID, so a browser that
//! reconnects sends `Last-Event-ID` and resumes right after the last entry it got.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::stream;

use super::{call, open, percent_decode, query_pairs, reply_of, ApiError, Peer, Web, WebSession};
use crate::client::outbox::Take;
use crate::client::writer::MAX_TAKE;
use crate::protocol::value::Value;
use crate::protocol::web::{json_field, object, sse_event};
use crate::protocol::wire::Wire;
use crate::stats::Stats;

/// Entries read per XREAD while replaying or following a stream.
const STREAM_BATCH: usize = 100;

fn event_stream(body: Body) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            // Tells nginx-style proxies not to buffer the stream.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
    )
        .into_response()
}

/// `GET /v1/sse`.
pub async fn channels(
    State(web): State<Web>,
    Extension(peer): Extension<Peer>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut families: [(&'static [u8], Vec<Bytes>); 3] =
        [(b"SUBSCRIBE", vec![]), (b"PSUBSCRIBE", vec![]), (b"SSUBSCRIBE", vec![])];
    for (k, v) in query_pairs(uri.query()) {
        let i = match &k[..] {
            b"channel" => 0,
            b"pattern" => 1,
            b"shard" => 2,
            _ => continue,
        };
        families[i].1.push(Bytes::from(v));
    }
    if families.iter().all(|(_, names)| names.is_empty()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERR name at least one channel=, pattern= or shard= to subscribe to",
        ));
    }
    let mut session = open(&web, &peer, &headers, Wire::Sse, "sse").await?;
    for (cmd, names) in families {
        if names.is_empty() {
            continue;
        }
        let mut args = vec![Bytes::from_static(cmd)];
        args.extend(names);
        subscribe(&mut session, &args).await?;
    }
    session.flush();
    // Whoever comes first serves the stream: the HTTP/1 connection itself (it takes the
    // subscriber from the response's extension, see `super::h1`), or hyper polling the body
    // (HTTP/2, or a request after others on a kept-alive connection).
    let slot = Takeover(Arc::new(Mutex::new(Some(session))));
    let keepalive = super::keepalive(&web.broker.settings);
    let from_body = slot.clone();
    let body = stream::unfold(None, move |state: Option<Sse>| {
        let from_body = from_body.clone();
        async move {
            let mut sse = match state {
                Some(s) => s,
                None => Sse {
                    session: from_body.take()?,
                    keepalive,
                    frames: Vec::new(),
                    started: false,
                },
            };
            sse.next().await.map(|chunk| (Ok::<_, Infallible>(chunk), Some(sse)))
        }
    });
    let mut response = event_stream(Body::from_stream(body));
    response.extensions_mut().insert(slot);
    Ok(response)
}

/// An SSE subscriber not yet streaming, for whichever path serves it first.
#[derive(Clone)]
pub struct Takeover(Arc<Mutex<Option<WebSession>>>);

impl Takeover {
    pub fn take(&self) -> Option<WebSession> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// What precedes the events: how long a browser waits before reconnecting.
pub const PREAMBLE: &[u8] = b"retry: 2000\n\n";

/// The keep-alive comment.
pub const KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// Runs a subscribe; a refusal (ACL, cluster routing, limits) is the request's error.
/// The confirmations reach the outbox (as events) only when it succeeded.
async fn subscribe(session: &mut WebSession, args: &[Bytes]) -> Result<(), ApiError> {
    if super::run(session, args).await.is_none() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ERR the server is shutting down",
        ));
    }
    match crate::protocol::value::parse_all(&session.out).first() {
        Some(Value::Error(e)) => Err(ApiError::from_redis(e)),
        _ => Ok(()),
    }
}

/// An SSE subscriber's stream: its outbox, read as a connection's writer reads it.
struct Sse {
    session: WebSession,
    keepalive: Option<Duration>,
    frames: Vec<Bytes>,
    started: bool,
}

impl Sse {
    async fn next(&mut self) -> Option<Bytes> {
        let outbox = self.session.outbox().clone();
        let shutdown = self.session.broker.shutdown.clone();
        if !self.started {
            self.started = true;
            // How long a browser waits before reconnecting; then the confirmations.
            return Some(Bytes::from_static(PREAMBLE));
        }
        loop {
            let mut chunk = BytesMut::new();
            match outbox.take(&mut self.frames, MAX_TAKE) {
                Take::Write(n) => {
                    for f in self.frames.drain(..) {
                        chunk.extend_from_slice(&f);
                    }
                    // Handed to hyper, which writes one chunk before asking for the next:
                    // what a slow browser has not read stays counted in the outbox.
                    outbox.written(n);
                    Stats::add(&self.session.broker.stats.net_output_bytes, chunk.len() as u64);
                    return Some(chunk.freeze());
                }
                Take::Close => return None,
                Take::Idle => {}
            }
            tokio::select! {
                _ = outbox.wait() => {}
                _ = outbox.gone.cancelled() => return None,
                _ = shutdown.cancelled() => return None,
                _ = super::idle(self.keepalive) => return Some(Bytes::from_static(KEEPALIVE)),
            }
        }
    }
}

/// `GET /v1/streams/<key>/sse` (the route also serves `POST /v1/streams/<key>`).
pub async fn stream(
    State(web): State<Web>,
    Extension(peer): Extension<Peer>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let path = uri.path().as_bytes();
    let Some(key) = path.strip_prefix(b"/v1/streams/").and_then(|k| k.strip_suffix(b"/sse")) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ERR not found: streams are read at /v1/streams/<key>/sse",
        ));
    };
    let key = Bytes::from(percent_decode(key, false));
    let mut from = query_pairs(uri.query())
        .into_iter()
        .find(|(k, _)| k == b"from")
        .map(|(_, v)| Bytes::from(v));
    // A reconnecting browser resends the URL it first opened: the last entry it got wins
    // over `from`.
    if let Some(last) = headers.get("last-event-id").filter(|v| !v.is_empty()) {
        from = Some(Bytes::copy_from_slice(last.as_bytes()));
    }
    let mut session = open(&web, &peer, &headers, Wire::Resp3, "sse-stream").await?;
    // `$` (or nothing): entries added from now on. Resolved to the stream's last ID once,
    // so nothing added between two reads is missed.
    let after = match from.as_deref() {
        None | Some(b"$") => {
            let reply = call(
                &mut session,
                &[
                    Bytes::from_static(b"XREVRANGE"),
                    key.clone(),
                    "+".into(),
                    "-".into(),
                    "COUNT".into(),
                    "1".into(),
                ],
            )
            .await;
            match reply_of(&reply)? {
                Value::Array(entries) => entries
                    .first()
                    .and_then(|e| e.items()?.first()?.bytes())
                    .map_or(Bytes::from_static(b"0-0"), Bytes::copy_from_slice),
                _ => Bytes::from_static(b"0-0"),
            }
        }
        Some(id) => Bytes::copy_from_slice(id),
    };
    let mut follow = Follow {
        session,
        key,
        after,
        keepalive: super::keepalive(&web.broker.settings),
        first: None,
    };
    // The first read is not blocking: a bad ID, a wrong type or a refusal is the
    // request's error, and the history is sent at once.
    let first = follow.read(None).await?;
    follow.first = Some(first);
    Ok(event_stream(Body::from_stream(stream::unfold(
        follow,
        |mut f| async move { f.next().await.map(|chunk| (Ok::<_, Infallible>(chunk), f)) },
    ))))
}

struct Follow {
    session: WebSession,
    key: Bytes,
    /// The last entry ID sent.
    after: Bytes,
    keepalive: Option<Duration>,
    first: Option<Bytes>,
}

impl Follow {
    /// One XREAD after the last ID sent, blocking for `block` when given; the entries as
    /// SSE events (empty when none came).
    async fn read(&mut self, block: Option<Duration>) -> Result<Bytes, ApiError> {
        let mut args: Vec<Bytes> = vec!["XREAD".into(), "COUNT".into(), STREAM_BATCH.to_string().into()];
        if let Some(b) = block {
            args.push("BLOCK".into());
            args.push(b.as_millis().to_string().into());
        }
        args.extend(["STREAMS".into(), self.key.clone(), self.after.clone()]);
        let reply = call(&mut self.session, &args).await;
        let mut out = BytesMut::new();
        // RESP3: a map of key => entries, or null when nothing came.
        if let Value::Map(streams) = reply_of(&reply)? {
            for (_, entries) in streams {
                for entry in entries.items().unwrap_or_default() {
                    let Some([id, fields]) = entry.items().and_then(|e| <&[Value; 2]>::try_from(e.get(..2)?).ok())
                    else {
                        continue;
                    };
                    let Some(id) = id.bytes() else { continue };
                    entry_event(&mut out, id, fields.items().unwrap_or_default());
                    self.after = Bytes::copy_from_slice(id);
                }
            }
        }
        Ok(out.freeze())
    }

    async fn next(&mut self) -> Option<Bytes> {
        if let Some(first) = self.first.take() {
            let mut chunk = BytesMut::from(PREAMBLE);
            chunk.extend_from_slice(&first);
            return Some(chunk.freeze());
        }
        let shutdown = self.session.broker.shutdown.clone();
        loop {
            // A blocked read times out at each keep-alive, so the comment goes out and a
            // closed browser is noticed.
            let block = self.keepalive.unwrap_or(Duration::from_secs(3600));
            let read = tokio::select! {
                r = self.read(Some(block)) => r,
                _ = shutdown.cancelled() => return None,
            };
            match read {
                Ok(events) if !events.is_empty() => {
                    Stats::add(&self.session.broker.stats.net_output_bytes, events.len() as u64);
                    return Some(events);
                }
                Ok(_) if self.keepalive.is_some() => return Some(Bytes::from_static(KEEPALIVE)),
                Ok(_) => continue,
                Err(e) => {
                    // The key was deleted and recreated as another type, ACL changed...:
                    // say why, then end the stream.
                    let mut out = BytesMut::new();
                    sse_event(&mut out, None, "error", |b| {
                        object(b, |b| json_field(b, "error", e.text.as_bytes()))
                    });
                    self.keepalive = None;
                    self.session.outbox().kill();
                    return (!self.session.outbox().is_gone() || !out.is_empty()).then(|| out.freeze());
                }
            }
        }
    }
}

/// `id: <id>\nevent: entry\ndata: {"id": ..., "fields": {...}}`. Field names and
/// values that are not UTF-8 make the entry's fields a list of pairs in base64 instead
/// (`"fields_b64": [name, value, name, value, ...]`).
fn entry_event(out: &mut BytesMut, id: &[u8], fields: &[Value]) {
    let text = fields
        .iter()
        .all(|f| f.bytes().is_some_and(|b| std::str::from_utf8(b).is_ok()));
    sse_event(out, Some(id), "entry", |b| {
        object(b, |b| {
            json_field(b, "id", id);
            if text {
                b.put_slice(b",\"fields\":{");
                for (i, pair) in fields.chunks(2).enumerate() {
                    if i > 0 {
                        b.put_u8(b',');
                    }
                    let name = pair[0].bytes().unwrap_or_default();
                    crate::protocol::web::json_str(b, std::str::from_utf8(name).unwrap_or_default());
                    b.put_u8(b':');
                    let value = pair.get(1).and_then(Value::bytes).unwrap_or_default();
                    crate::protocol::web::json_str(b, std::str::from_utf8(value).unwrap_or_default());
                }
                b.put_u8(b'}');
            } else {
                b.put_slice(b",\"fields_b64\":[");
                for (i, f) in fields.iter().enumerate() {
                    b.put_slice(if i == 0 { b"" } else { b"," });
                    b.put_u8(b'"');
                    b.put_slice(
                        base64::Engine::encode(
                            &base64::engine::general_purpose::STANDARD,
                            f.bytes().unwrap_or_default(),
                        )
                        .as_bytes(),
                    );
                    b.put_u8(b'"');
                }
                b.put_u8(b']');
            }
        })
    });
}
