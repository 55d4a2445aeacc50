//! A minimal HTTP/1 responder for `GET /metrics`: one request per connection, then close.
//!
//! A scraper is the only expected client, so this is deliberately small, and bounded so
//! that a bad or slow client costs little: the request head is capped at
//! [`MAX_REQUEST_HEAD`] bytes, each connection at [`CONNECTION_TIMEOUT`] from accept to
//! close, and at most [`MAX_CONNECTIONS`] are served at once (more are closed at once).
//! The body is never read; a request's body, if any, is ignored.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Largest request line plus headers accepted.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Longest a connection may take, from accept to the last byte of the response.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Scrape connections served at once.
pub const MAX_CONNECTIONS: usize = 16;

/// `Content-Type` of the Prometheus text format, served unless the client asks for
/// OpenMetrics.
pub const PROMETHEUS_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// `Content-Type` of OpenMetrics, served when the `Accept` header names it (as
/// Prometheus's own scraper does).
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `registry` on `listener` until `stop` is cancelled; connections still open
/// then are dropped.
pub async fn serve(listener: TcpListener, registry: Registry, stop: CancellationToken) {
    let registry = Arc::new(registry);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("metrics: accept failed: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Too many scrapes in flight: close this one rather than queue it.
            continue;
        };
        let registry = registry.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                _ = stop.cancelled() => {}
                r = tokio::time::timeout(CONNECTION_TIMEOUT, handle(stream, &registry)) => {
                    if let Ok(Err(e)) = r {
                        tracing::debug!("metrics: connection error: {e}");
                    }
                }
            }
        });
    }
}

/// What a request asked for, from its head.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub openmetrics: bool,
}

/// Parses a request head (request line and headers, without the blank line). `None`
/// when the request line is malformed.
pub fn parse_head(head: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let mut words = lines.next()?.split(' ');
    let (method, target, version) = (words.next()?, words.next()?, words.next()?);
    if words.next().is_some() || method.is_empty() || !version.starts_with("HTTP/1.") {
        return None;
    }
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let openmetrics = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("accept") && v.to_ascii_lowercase().contains("application/openmetrics-text")
        })
    });
    Some(Request {
        method: method.to_string(),
        path: path.to_string(),
        openmetrics,
    })
}

/// Where the head ends: the index of the first byte after the blank line.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = memchr::memmem::find(buf, b"\r\n\r\n").map(|i| i + 4);
    let lf = memchr::memmem::find(buf, b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn handle(mut stream: TcpStream, registry: &Registry) -> io::Result<()> {
    let mut buf = vec![0u8; MAX_REQUEST_HEAD];
    let mut len = 0;
    let head = loop {
        if let Some(end) = head_end(&buf[..len]) {
            break &buf[..end];
        }
        if len == buf.len() {
            return respond(&mut stream, "431 Request Header Fields Too Large", "", b"").await;
        }
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            // The client closed before finishing its request: nothing to answer.
            return Ok(());
        }
        len += n;
    };
    let Some(req) = parse_head(head) else {
        return respond(&mut stream, "400 Bad Request", "", b"bad request\n").await;
    };
    if req.method != "GET" && req.method != "HEAD" {
        return respond(
            &mut stream,
            "405 Method Not Allowed",
            "Allow: GET, HEAD\r\n",
            b"only GET is supported\n",
        )
        .await;
    }
    if req.path != "/metrics" {
        return respond(
            &mut stream,
            "404 Not Found",
            "",
            b"not found: metrics are at /metrics\n",
        )
        .await;
    }
    let body = super::render(registry, req.openmetrics);
    let content_type = if req.openmetrics {
        OPENMETRICS_TEXT
    } else {
        PROMETHEUS_TEXT
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if req.method == "GET" {
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await
}

async fn respond(stream: &mut TcpStream, status: &str, extra_headers: &str, body: &[u8]) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{extra_headers}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads() {
        let r = parse_head(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n").unwrap();
        assert_eq!(
            r,
            Request {
                method: "GET".into(),
                path: "/metrics".into(),
                openmetrics: true
            }
        );
        let r = parse_head(b"HEAD / HTTP/1.0\naccept: text/plain\n").unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.openmetrics),
            ("HEAD", "/", false)
        );
        assert!(parse_head(b"GET /metrics").is_none());
        assert!(parse_head(b"GET /metrics SPDY/3").is_none());
        assert!(parse_head(b"GET  /metrics HTTP/1.1").is_none());
        assert!(parse_head(b"\xff\xfe").is_none());
    }

    #[test]
    fn head_ends_at_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\nbody"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }
}
