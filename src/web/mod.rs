//! The HTTP listener: Server-Sent Events, WebSocket, HTTP publish and stream appends,
//! the dashboard and `/metrics`, for browsers and web services that do not speak RESP.
//!
//! Every request runs as a client of the broker like any other: a [`Session`] with its
//! own outbox, logged in as an ACL user from the `Authorization` header, running the
//! same commands through the same dispatch (ACL, cluster routing, CLIENT PAUSE, the
//! append-only file), so permissions, limits and error texts are the RESP ones. An SSE
//! or WebSocket subscriber is a subscriber in the registry whose outbox receives
//! messages already encoded as events (see `protocol::wire`): encoded once per publish,
//! shared by every browser, under the same output limits and overflow policies.
//!
//! * this file: the accept loop (TLS, connection limits, shutdown), the router,
//!   authentication and the error mapping.
//! * [`h1`]: the front of each connection: an HTTP/1 SSE subscribe leaves hyper once
//!   answered and streams from the RESP writer (memory and CPU of a RESP subscriber).
//! * [`sse`]: `GET /v1/sse` and `GET /v1/streams/<key>/sse` (replay, then follow).
//! * [`ws`]: `GET /v1/ws`, the JSON protocol over WebSocket.
//! * [`api`]: `POST /v1/publish/<channel>`, `POST /v1/streams/<key>`, `/metrics`.
//! * [`dashboard`]: `GET /v1/stats`, the dashboard page (`/`) and the SSE demo (`/demo`).

pub mod api;
pub mod dashboard;
pub mod h1;
pub mod sse;
pub mod ws;

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::broker::Broker;
use crate::client::outbox::Take;
use crate::client::{ClientHandle, Outbox};
use crate::commands::{Flow, Session};
use crate::protocol::reply::Proto;
use crate::protocol::value::{self, Value};
use crate::protocol::wire::Wire;
use crate::stats::Stats;

/// What the handlers share.
#[derive(Clone)]
pub struct Web {
    pub broker: Arc<Broker>,
    pub metrics: Arc<prometheus_client::registry::Registry>,
    /// WebSocket connections, once upgraded, run here: shutdown waits for them.
    pub tracker: TaskTracker,
}

/// The connection a request arrived on (put in each request's extensions).
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub addr: SocketAddr,
    pub local: SocketAddr,
}

/// A TLS handshake or a request head must arrive within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head read (browsers' cookies fit; a flood does not).
const MAX_REQUEST_HEAD: usize = 64 * 1024;
/// Scrape connections served at once on `metrics-addr` (outside maxclients).
const METRICS_CONNECTIONS: usize = 16;

/// The routes of `http-port`.
pub fn router(web: Web) -> Router {
    let cors = cors(web.broker.clone());
    Router::new()
        .route("/v1/sse", get(sse::channels))
        .route("/v1/streams/{*rest}", get(sse::stream).post(api::append))
        .route("/v1/ws", get(ws::upgrade))
        .route("/v1/publish/{*channel}", post(api::publish))
        .route("/metrics", get(api::metrics))
        .route("/v1/stats", get(dashboard::stats))
        // The page and its files hold no data: served without credentials (still behind
        // protected mode, below); the page's own /v1/stats requests are what log in.
        .route("/", get(dashboard::index))
        .route("/app.js", get(dashboard::app_js))
        .route("/style.css", get(dashboard::style_css))
        .route("/demo", get(dashboard::demo))
        .fallback(not_found)
        .layer(cors)
        .layer(axum::middleware::from_fn_with_state(web.clone(), protected_mode))
        .with_state(web)
}

/// The routes of `metrics-addr`: `/metrics` only, without authentication (as before the
/// HTTP listener existed; bind it where only the scraper reaches).
pub fn metrics_router(web: Web) -> Router {
    Router::new()
        .route("/metrics", get(api::open_metrics))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found: metrics are at /metrics\n") })
        .with_state(web)
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ERR not found: see the HTTP section of the README",
    )
}

/// Browsers may call the API from the origins in `http-cors-origins` (read at each
/// request, so CONFIG SET takes effect at once). None by default: a page elsewhere
/// cannot use a browser's stored credentials against fanout.
fn cors(broker: Arc<Broker>) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            let allowed = broker.settings.get("http-cors-origins").unwrap_or_default();
            allowed
                .split_ascii_whitespace()
                .any(|o| o == "*" || o.as_bytes() == origin.as_bytes())
        }))
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            "last-event-id".parse().expect("header name"),
        ])
        .max_age(Duration::from_secs(600))
}

/// Protected mode, as on the RESP port: without a password for `default`, only loopback
/// clients are served.
async fn protected_mode(State(web): State<Web>, req: Request, next: Next) -> Response {
    let b = &web.broker;
    let local = req.extensions().get::<Peer>().is_none_or(|p| p.addr.ip().is_loopback());
    if !local && b.settings.protected_mode.load(Relaxed) && b.acl.default_nopass() {
        return ApiError::new(StatusCode::FORBIDDEN, crate::commands::errors::PROTECTED_MODE).into_response();
    }
    next.run(req).await
}

/// Serves `router` on `listener` until `stop`; `drain` then asks open connections to
/// finish (SSE streams end, WebSocket connections close after what is queued).
/// With `clients`, each connection takes a `maxclients` slot as a RESP one does.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    broker: Arc<Broker>,
    clients: bool,
    stop: CancellationToken,
    drain: CancellationToken,
    tracker: TaskTracker,
) {
    let scrapes = Arc::new(tokio::sync::Semaphore::new(METRICS_CONNECTIONS));
    loop {
        let (stream, addr) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and the like: back off, never end the listener.
                    tracing::warn!("http: accept failed: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let slot = if clients {
            if !broker.clients.reserve_slot(broker.settings.maxclients.load(Relaxed)) {
                Stats::add(&broker.stats.rejected_connections, 1);
                continue;
            }
            Stats::add(&broker.stats.connections_received, 1);
            Slot::Client(broker.clone())
        } else {
            match scrapes.clone().try_acquire_owned() {
                Ok(p) => Slot::Scrape(p),
                Err(_) => continue,
            }
        };
        let _ = stream.set_nodelay(true);
        let peer = Peer {
            addr,
            local: stream.local_addr().unwrap_or(addr),
        };
        let (router, tls, drain) = (router.clone(), tls.clone(), drain.clone());
        tracker.spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_connection(stream, peer, router, drain).await,
                // Boxed: the TLS states are large and plain connections should not carry them.
                Some(acceptor) => {
                    match Box::pin(tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))).await {
                        Ok(Ok(stream)) => Box::pin(serve_connection(stream, peer, router, drain)).await,
                        Ok(Err(e)) => tracing::debug!(addr = %peer.addr, "http: TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(addr = %peer.addr, "http: TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// A connection's claim on `maxclients` (HTTP port) or on the scrape budget (metrics).
enum Slot {
    Client(Arc<Broker>),
    Scrape(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit),
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Slot::Client(b) = self {
            b.clients.release_slot();
        }
    }
}

async fn serve_connection<S>(stream: S, peer: Peer, router: Router, drain: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let stream = match h1::front(stream, peer, &router, MAX_REQUEST_HEAD, HANDSHAKE_TIMEOUT).await {
        h1::Front::Done => return,
        h1::Front::Hyper(stream) => stream,
    };
    // Boxed: hyper's connection state is large, and a task's future is allocated at its
    // largest for the task's whole life; an SSE stream served by `h1` never needs it.
    Box::pin(serve_hyper(stream, peer, router, drain)).await
}

async fn serve_hyper<S>(stream: S, peer: Peer, router: Router, drain: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(peer);
        router.clone().oneshot(req.map(axum::body::Body::new))
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        // A request head over this is refused (431), never buffered.
        .max_buf_size(MAX_REQUEST_HEAD);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => if let Err(e) = r {
            tracing::debug!(addr = %peer.addr, "http: connection ended: {e}");
        },
        _ = drain.cancelled() => {
            // Finish the response in flight (an SSE stream ends on its own at shutdown),
            // then close.
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn.as_mut()).await;
        }
    }
}

/// A Redis error as an HTTP response: the status says what kind of failure it is, the
/// body carries Redis's text (`{"error": "NOPERM ..."}`).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub text: String,
}

impl ApiError {
    pub fn new(status: StatusCode, text: impl Into<String>) -> ApiError {
        ApiError {
            status,
            text: text.into(),
        }
    }

    /// From a Redis error reply's text: the status follows its code.
    pub fn from_redis(text: &[u8]) -> ApiError {
        let text = String::from_utf8_lossy(text).into_owned();
        let code = text.split(' ').next().unwrap_or_default();
        let status = match code {
            "NOAUTH" | "WRONGPASS" => StatusCode::UNAUTHORIZED,
            "NOPERM" | "DENIED" => StatusCode::FORBIDDEN,
            "MOVED" | "ASK" => StatusCode::MISDIRECTED_REQUEST,
            "CLUSTERDOWN" | "LOADING" | "BUSY" | "MISCONF" | "TRYAGAIN" | "MASTERDOWN" | "OOM" => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError { status, text }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = BytesMut::new();
        crate::protocol::web::object(&mut body, |b| {
            crate::protocol::web::json_field(b, "error", self.text.as_bytes())
        });
        body.extend_from_slice(b"\n");
        let mut r = (self.status, [(header::CONTENT_TYPE, "application/json")], body.freeze()).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // Lets a browser ask for the user and password (EventSource cannot send headers).
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"fanout\", charset=\"UTF-8\""),
            );
        }
        r
    }
}

/// A web request's client: in CLIENT LIST (named after its endpoint), subscribed like
/// any other, and removed from everything when the request or stream ends.
pub struct WebSession(pub Session);

impl Drop for WebSession {
    fn drop(&mut self) {
        self.0.outbox().kill();
        self.0.close();
    }
}

impl std::ops::Deref for WebSession {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.0
    }
}

impl std::ops::DerefMut for WebSession {
    fn deref_mut(&mut self) -> &mut Session {
        &mut self.0
    }
}

/// Opens a client for a request on `peer`, receiving messages as `wire`, and logs it in
/// from the request's `Authorization` header (`Basic user:password`, or `Bearer
/// password` for `default`), with AUTH's own checks and texts.
pub async fn open(web: &Web, peer: &Peer, headers: &HeaderMap, wire: Wire, name: &str) -> Result<WebSession, ApiError> {
    let broker = &web.broker;
    let id = broker.next_client_id.fetch_add(1, Relaxed);
    let outbox = Arc::new(Outbox::new(id));
    let client = Arc::new(ClientHandle::new(
        outbox,
        peer.addr.to_string(),
        peer.local.to_string(),
        -1,
        false,
        broker.acl.default_user(),
    ));
    {
        let mut info = client.info.lock().unwrap_or_else(|e| e.into_inner());
        info.name = Some(Bytes::copy_from_slice(name.as_bytes()));
        info.lib_name = Some(Bytes::from_static(crate::client::WEB_LIB_NAME));
    }
    broker.clients.insert(client.clone());
    let mut session = WebSession(Session::new(broker.clone(), client));
    session.set_proto(Proto::Resp3);
    let mut auth = vec![Bytes::from_static(b"AUTH")];
    match credentials(headers)? {
        Some((user, password)) => {
            auth.extend(user);
            auth.push(password);
            let reply = call(&mut session, &auth).await;
            if let Some(Value::Error(e)) = value::parse_all(&reply).first() {
                return Err(ApiError::from_redis(e));
            }
        }
        None if session.auth_required() => {
            return Err(ApiError::from_redis(&crate::commands::errors::Error::NoAuth.text()));
        }
        None => {}
    }
    // Only now: AUTH's reply was read back as RESP.
    session.outbox().set_wire(wire);
    Ok(session)
}

/// The `Authorization` header's user (None: `default`) and password.
#[allow(clippy::type_complexity)]
fn credentials(headers: &HeaderMap) -> Result<Option<(Option<Bytes>, Bytes)>, ApiError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "ERR unreadable Authorization header: use Basic or Bearer",
        )
    };
    let v = v.as_bytes();
    let (scheme, rest) = v.split_at(v.iter().position(|&b| b == b' ').ok_or_else(bad)?);
    let rest = rest.trim_ascii();
    if scheme.eq_ignore_ascii_case(b"bearer") {
        return Ok(Some((None, Bytes::copy_from_slice(rest))));
    }
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return Err(bad());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .map_err(|_| bad())?;
    let colon = decoded.iter().position(|&b| b == b':').ok_or_else(bad)?;
    let user = Bytes::copy_from_slice(&decoded[..colon]);
    let password = Bytes::copy_from_slice(&decoded[colon + 1..]);
    Ok(Some((Some(user), password)))
}

/// Runs one command as the session's client, waiting as its connection would (CLIENT
/// PAUSE, a blocked read, the cluster bus's confirmation); its replies stay in
/// `session.out`. `None` when the client went away or the server stopped meanwhile.
pub async fn run(session: &mut Session, args: &[Bytes]) -> Option<Flow> {
    let wire_len = args.iter().map(|a| a.len() + 16).sum();
    let mut flow = session.execute(args, wire_len);
    while let Flow::Wait(wait) = flow {
        session.send_replies().await;
        let gone = session.outbox().gone.clone();
        let shutdown = session.broker.shutdown.clone();
        tokio::select! {
            _ = session.ready(wait) => {}
            _ = gone.cancelled() => return None,
            _ = shutdown.cancelled() => return None,
        }
        flow = session.rerun(wait, args, wire_len);
    }
    Some(flow)
}

/// [`run`], then once the append-only file has its writes, everything the session sent
/// (RESP3), its reply first.
pub async fn call(session: &mut Session, args: &[Bytes]) -> Bytes {
    run(session, args).await;
    session.send_replies().await;
    take_all(session.outbox())
}

/// Everything queued in `outbox`, as one buffer (counted as written).
pub fn take_all(outbox: &Outbox) -> Bytes {
    let mut frames = Vec::new();
    let mut out = BytesMut::new();
    while let Take::Write(n) = outbox.take(&mut frames, usize::MAX) {
        for f in frames.drain(..) {
            out.extend_from_slice(&f);
        }
        outbox.written(n);
    }
    out.freeze()
}

/// The first reply in `resp`, or its error as an [`ApiError`].
pub fn reply_of(resp: &[u8]) -> Result<Value<'_>, ApiError> {
    match value::parse_all(resp).into_iter().next() {
        Some(Value::Error(e)) => Err(ApiError::from_redis(e)),
        Some(v) => Ok(v),
        None => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ERR the server is shutting down",
        )),
    }
}

/// Decodes `%XX` escapes (and `+` as a space in query strings) into bytes: channel
/// names and payloads are binary, so nothing is forced into UTF-8.
pub fn percent_decode(s: &[u8], plus_is_space: bool) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// A query string's `name=value` pairs, decoded, in order (names may repeat).
pub fn query_pairs(query: Option<&str>) -> Vec<(Vec<u8>, Vec<u8>)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k.as_bytes(), true), percent_decode(v.as_bytes(), true))
        })
        .collect()
}

/// The time between keep-alives on an idle stream (`http-sse-keepalive`: SSE comments,
/// WebSocket pings), if any.
pub fn keepalive(settings: &crate::config::Settings) -> Option<Duration> {
    let secs: u64 = settings
        .get("http-sse-keepalive")
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// Resolves once a keep-alive is due (never without keep-alives).
pub async fn idle(keepalive: Option<Duration>) {
    match keepalive {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// The largest request body or WebSocket message (`http-max-body-size`).
pub fn max_body(settings: &crate::config::Settings) -> usize {
    settings
        .get("http-max-body-size")
        .and_then(|v| v.parse().ok())
        .unwrap_or(8 << 20)
}

/// The request body, refused past `http-max-body-size` (413) without reading further.
pub async fn read_body(web: &Web, body: axum::body::Body) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let limit = max_body(&web.broker.settings);
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("ERR request body over http-max-body-size ({limit} bytes)"),
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("ERR could not read the request body: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_to_bytes() {
        assert_eq!(
            query_pairs(Some("channel=a%20b&channel=n%2A&pattern=x+y&bad=%zz&end=%4")),
            vec![
                (b"channel".to_vec(), b"a b".to_vec()),
                (b"channel".to_vec(), b"n*".to_vec()),
                (b"pattern".to_vec(), b"x y".to_vec()),
                (b"bad".to_vec(), b"%zz".to_vec()),
                (b"end".to_vec(), b"%4".to_vec()),
            ]
        );
        assert_eq!(percent_decode(b"%ff%00", false), vec![0xff, 0]);
        assert_eq!(percent_decode(b"a+b%", false), b"a+b%".to_vec());
    }

    #[test]
    fn redis_errors_map_to_statuses() {
        assert_eq!(
            ApiError::from_redis(b"NOPERM User x has no permissions").status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            ApiError::from_redis(b"WRONGPASS invalid").status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            ApiError::from_redis(b"MOVED 1 h:1").status,
            StatusCode::MISDIRECTED_REQUEST
        );
        assert_eq!(
            ApiError::from_redis(b"ERR syntax error").status,
            StatusCode::BAD_REQUEST
        );
    }
}
