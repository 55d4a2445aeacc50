//! The front of every HTTP connection: an HTTP/1 `GET /v1/sse` leaves hyper.
//!
//! Why: an SSE subscriber holds its connection for as long as it is subscribed, and
//! through hyper that costs what an HTTP/1 connection costs hyper (two 8 KiB buffers kept
//! for the connection's life, a body stream polled per chunk, chunked framing), several
//! times an idle RESP subscriber, and more CPU per delivery. So the first request's head
//! is read here: a `GET /v1/sse` still goes through the router (protected mode, CORS,
//! authentication, the subscribes, every refusal as the same HTTP error), but once its
//! answer is a stream, this connection writes the head itself (`Connection: close`: the
//! events run until the connection ends) and hands the socket to the same writer task a
//! RESP connection has; the outbox already holds SSE events, encoded once per publish.
//! Everything else (any other request, HTTP/2, a head that does not parse) goes to hyper
//! with the bytes already read put back in front ([`Rewind`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, Response, Version};
use axum::Router;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tower::ServiceExt;

use super::sse::{Takeover, KEEPALIVE, PREAMBLE};
use super::{Peer, WebSession};
use crate::stats::Stats;

/// Headers accepted in the first request's head (more: hyper's path answers it).
const MAX_HEADERS: usize = 64;
/// An error answer's body read back to write it out (they are short JSON).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// What the first bytes of a connection are.
pub enum Front<S> {
    /// Served here: the SSE stream ran and ended.
    Done,
    /// For hyper: the stream with what was read put back in front.
    Hyper(Rewind<S>),
}

/// Reads the first request's head; serves it here if it is an HTTP/1 `GET /v1/sse`.
pub async fn front<S>(mut stream: S, peer: Peer, router: &Router, limit: usize, timeout: Duration) -> Front<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut buf = BytesMut::with_capacity(1024);
    let read_head = async {
        loop {
            match head_end(&buf) {
                Some(end) => return Some(end),
                None if buf.len() >= limit => return None,
                None => {}
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) if buf.len() >= 16 && !buf.starts_with(b"GET ") => return None,
                Ok(_) => {}
            }
        }
    };
    // Whatever stops the head here (a timeout, a cut, another method, an oversized head)
    // is hyper's to answer, with the bytes read so far.
    let end = tokio::time::timeout(timeout, read_head).await.ok().flatten();
    let request = end.and_then(|end| parse(&buf[..end]).map(|r| (end, r)));
    let Some((_, request)) = request else {
        return Front::Hyper(Rewind::new(buf.freeze(), stream));
    };
    if request.uri().path() != "/v1/sse" {
        return Front::Hyper(Rewind::new(buf.freeze(), stream));
    }
    let mut request = request;
    request.extensions_mut().insert(peer);
    // Boxed, as every large state here: the task keeps its future's largest state for
    // as long as the stream lasts.
    let response = match Box::pin(router.clone().oneshot(request)).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    drop(buf);
    match response.extensions().get::<Takeover>().and_then(Takeover::take) {
        Some(session) => stream_events(stream, response, session).await,
        None => {
            let _ = Box::pin(answer(&mut stream, response)).await;
        }
    }
    Front::Done
}

/// Where the head ends (after the blank line).
fn head_end(buf: &[u8]) -> Option<usize> {
    memchr::memmem::find(buf, b"\r\n\r\n").map(|i| i + 4)
}

/// An HTTP/1 GET head as a request for the router, or `None` for anything this path
/// leaves to hyper (bodies, upgrades, unparsable heads).
fn parse(head: &[u8]) -> Option<Request<Body>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(head), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    if req.method != Some("GET") {
        return None;
    }
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri(req.path?)
        .version(if req.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        });
    for h in req.headers.iter() {
        let name = header::HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        if name == header::UPGRADE || name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            return None;
        }
        builder = builder.header(name, HeaderValue::from_bytes(h.value).ok()?);
    }
    builder.body(Body::empty()).ok()
}

/// Writes a response's head (closing the connection after it).
fn head(out: &mut BytesMut, response: &Response<Body>, content_length: Option<usize>) {
    let status = response.status();
    out.put_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .as_bytes(),
    );
    for (name, value) in response.headers() {
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    if let Some(n) = content_length {
        out.put_slice(format!("content-length: {n}\r\n").as_bytes());
    }
    out.put_slice(b"connection: close\r\n\r\n");
}

/// A refusal (401, 403, 400...): written whole, then the connection closes.
async fn answer<S: AsyncWrite + Unpin>(stream: &mut S, response: Response<Body>) -> io::Result<()> {
    let (parts, body) = response.into_parts();
    let body = http_body_util::Limited::new(body, MAX_ERROR_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let response = Response::from_parts(parts, Body::empty());
    let mut out = BytesMut::with_capacity(256 + body.len());
    head(&mut out, &response, Some(body.len()));
    out.put_slice(&body);
    stream.write_all(&out).await?;
    stream.shutdown().await
}

/// The SSE stream on this connection: the head, then what the subscriber's outbox holds,
/// written by the connection writer RESP clients have, until either side closes.
async fn stream_events<S>(stream: S, response: Response<Body>, session: WebSession)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut out = BytesMut::with_capacity(256);
    head(&mut out, &response, None);
    out.put_slice(PREAMBLE);
    drop(response);
    let broker = session.broker.clone();
    if wr.write_all(&out).await.is_err() {
        return;
    }
    Stats::add(&broker.stats.net_output_bytes, out.len() as u64);
    drop(out);
    let outbox = session.outbox().clone();
    let writer = tokio::spawn(crate::client::writer::drain(outbox.clone(), wr, broker.stats.clone()));
    let keepalive = super::keepalive(&broker.settings);
    let shutdown = broker.shutdown.clone();
    // A browser sends nothing more; what it does send is read and dropped, in small
    // reads, so an idle stream holds no read buffer.
    let mut sink = [0u8; 64];
    loop {
        tokio::select! {
            _ = outbox.gone.cancelled() => break,
            _ = shutdown.cancelled() => {
                outbox.close_after_flush();
                break;
            }
            _ = super::idle(keepalive) => {
                outbox.push_reply(Bytes::from_static(KEEPALIVE), &broker.settings);
            }
            r = rd.read(&mut sink) => match r {
                Ok(0) | Err(_) => {
                    outbox.kill();
                    break;
                }
                Ok(_) => {}
            },
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    // Still writing after that: give up (a writer that finished ignores this).
    outbox.kill();
    drop(session);
}

/// A stream with bytes already read from it put back in front.
pub struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Rewind<S> {
    pub fn new(prefix: Bytes, inner: S) -> Rewind<S> {
        Rewind { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_gets_are_taken() {
        let r = parse(b"GET /v1/sse?channel=a HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 1\r\n\r\n").unwrap();
        assert_eq!(r.uri().path(), "/v1/sse");
        assert_eq!(r.uri().query(), Some("channel=a"));
        assert_eq!(r.headers()["last-event-id"], "1");
        assert!(parse(b"POST /v1/sse HTTP/1.1\r\n\r\n").is_none());
        assert!(parse(b"GET /v1/sse HTTP/1.1\r\nUpgrade: websocket\r\n\r\n").is_none());
        assert!(parse(b"GET /v1/sse HTTP/1.1\r\nContent-Length: 3\r\n\r\n").is_none());
        assert!(parse(b"GET \xff HTTP/1.1\r\n\r\n").is_none());
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
    }
}
