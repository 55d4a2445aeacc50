//! Plain HTTP requests: publish, append to a stream, metrics.
//!
//! Each request is a short-lived client running one command (PUBLISH, SPUBLISH, XADD)
//! through the same dispatch as a RESP client, so ACL, cluster routing, maxmemory and
//! the append-only file apply; the reply is turned into JSON.

use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::{BufMut, Bytes, BytesMut};

use super::{call, open, percent_decode, query_pairs, read_body, reply_of, ApiError, Peer, Web};
use crate::protocol::value::Value;
use crate::protocol::web::{json_field, object};
use crate::protocol::wire::Wire;

fn json(status: StatusCode, body: BytesMut) -> Response {
    let mut body = body;
    body.put_u8(b'\n');
    (status, [(header::CONTENT_TYPE, "application/json")], body.freeze()).into_response()
}

/// `POST /v1/publish/<channel>` (`?shard=1` for SPUBLISH): the body is the payload,
/// as it is (binary included). Answers `{"receivers": N}`, PUBLISH's reply.
pub async fn publish(
    State(web): State<Web>,
    Extension(peer): Extension<Peer>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let raw = uri.path().as_bytes().strip_prefix(b"/v1/publish/").unwrap_or_default();
    let channel = percent_decode(raw, false);
    let shard = query_pairs(uri.query())
        .iter()
        .any(|(k, v)| k == b"shard" && !matches!(&v[..], b"0" | b"false" | b"no"));
    let mut session = open(&web, &peer, &headers, Wire::Resp3, "http").await?;
    let payload = read_body(&web, body).await?;
    let cmd: &'static [u8] = if shard { b"SPUBLISH" } else { b"PUBLISH" };
    let reply = call(&mut session, &[Bytes::from_static(cmd), Bytes::from(channel), payload]).await;
    let Value::Int(n) = reply_of(&reply)? else {
        return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "ERR unexpected reply"));
    };
    let mut out = BytesMut::new();
    object(&mut out, |b| b.put_slice(format!("\"receivers\":{n}").as_bytes()));
    Ok(json(StatusCode::OK, out))
}

/// `POST /v1/streams/<key>` with a JSON object of fields (`{"user": "ada", "n": 3}`,
/// in order; numbers and booleans as their text): XADD, with `?id=` (default `*`) and
/// `?maxlen=N` (trimmed with `~`, as most producers do). Answers `{"id": "<entry id>"}`.
pub async fn append(
    State(web): State<Web>,
    Extension(peer): Extension<Peer>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let raw = uri.path().as_bytes().strip_prefix(b"/v1/streams/").unwrap_or_default();
    let key = percent_decode(raw, false);
    let mut session = open(&web, &peer, &headers, Wire::Resp3, "http").await?;
    let body = read_body(&web, body).await?;
    let bad = |why: String| ApiError::new(StatusCode::BAD_REQUEST, format!("ERR {why}"));
    let fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&body).map_err(|e| bad(format!("the body must be a JSON object of fields: {e}")))?;
    if fields.is_empty() {
        return Err(bad("an entry needs at least one field".into()));
    }
    let mut args: Vec<Bytes> = vec!["XADD".into(), Bytes::from(key)];
    let query = query_pairs(uri.query());
    if let Some((_, n)) = query.iter().find(|(k, _)| k == b"maxlen") {
        args.extend(["MAXLEN".into(), "~".into(), Bytes::copy_from_slice(n)]);
    }
    let id = query
        .iter()
        .find(|(k, _)| k == b"id")
        .map_or(Bytes::from_static(b"*"), |(_, v)| Bytes::copy_from_slice(v));
    args.push(id);
    for (name, value) in fields {
        let value = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            other => {
                return Err(bad(format!(
                    "field '{name}' must be a string, number or boolean, not {other}"
                )))
            }
        };
        args.push(Bytes::from(name));
        args.push(Bytes::from(value));
    }
    let reply = call(&mut session, &args).await;
    let id = match reply_of(&reply)? {
        Value::Bulk(id) => Bytes::copy_from_slice(id),
        // XADD with NOMKSTREAM on a missing key; not reachable from here, but not a panic.
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "ERR no such stream")),
    };
    let mut out = BytesMut::new();
    object(&mut out, |b| json_field(b, "id", &id));
    Ok(json(StatusCode::OK, out))
}

/// `GET /metrics` on the HTTP port: logged in as any request is (a scraper sends Basic
/// credentials), and the user must be allowed INFO.
pub async fn metrics(
    State(web): State<Web>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut session = open(&web, &peer, &headers, Wire::Resp3, "metrics").await?;
    // The permission check, with the refusal's text, is the command's.
    let reply = call(
        &mut session,
        &[Bytes::from_static(b"INFO"), Bytes::from_static(b"server")],
    )
    .await;
    reply_of(&reply)?;
    Ok(open_metrics(State(web), headers).await)
}

/// `GET /metrics` on `metrics-addr`: Prometheus text, or OpenMetrics when the `Accept`
/// header asks for it (as Prometheus's scraper does).
pub async fn open_metrics(State(web): State<Web>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.to_str().unwrap_or_default().contains("application/openmetrics-text"));
    let body = crate::metrics::render(&web.metrics, openmetrics);
    let content_type = if openmetrics {
        crate::metrics::OPENMETRICS_TEXT
    } else {
        crate::metrics::PROMETHEUS_TEXT
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
