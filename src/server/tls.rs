//! TLS on `tls-port`, as Redis 6+ offers it: the server certificate and key from
//! `tls-cert-file` / `tls-key-file`, and client certificates checked against
//! `tls-ca-cert-file` as `tls-auth-clients` asks (`yes`: required, `optional`: verified
//! when presented, `no`: not requested).
//!
//! rustls (through tokio-rustls) with the `ring` provider does the TLS. A TLS stream has no
//! readiness API, so its read side is a [`TlsRead`] whose `readable()` performs the actual
//! read into a small buffer and whose `try_read_buf` hands those bytes over; the
//! connection code stays the same for every transport.
//!
//! The handshake runs in the connection's own task, bounded by [`HANDSHAKE_TIMEOUT`], so a
//! slow or silent peer never holds up the accept loop. Its `maxclients` slot is taken at
//! accept, like any connection's.

use crate::sync::LockExt;
use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::transport::{Accepted, ReadHalf};
use crate::config::Settings;

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A refused client (maxclients, protected mode) gets this long for the handshake and the
/// error line together.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(3);
/// The most decrypted bytes a connection's read side holds between `readable()` and
/// `try_read_buf` (one TLS record's worth).
const READ_CHUNK: usize = 16 * 1024;

/// `tls-auth-clients`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthClients {
    Yes,
    No,
    Optional,
}

impl AuthClients {
    pub fn parse(v: &str) -> Option<Self> {
        match v.to_ascii_lowercase().as_str() {
            "yes" => Some(Self::Yes),
            "no" => Some(Self::No),
            "optional" => Some(Self::Optional),
            _ => None,
        }
    }
}

/// What every TLS listener of one server shares.
pub struct TlsContext {
    acceptor: TlsAcceptor,
}

impl TlsContext {
    /// Builds the TLS configuration from the `tls-*` directives. The error names the
    /// directive and file at fault.
    pub fn from_settings(settings: &Settings) -> Result<Arc<TlsContext>, String> {
        Self::build(settings, false)
    }

    /// The HTTPS listener's context: the same certificate, offered with ALPN (HTTP/2,
    /// HTTP/1.1), and no client certificates asked for: browsers authenticate with
    /// ACL passwords, as RESP clients do after the handshake.
    pub fn for_http(settings: &Settings) -> Result<Arc<TlsContext>, String> {
        Self::build(settings, true)
    }

    /// The acceptor, for listeners served outside this module (HTTP).
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    fn build(settings: &Settings, http: bool) -> Result<Arc<TlsContext>, String> {
        let get = |name: &str| settings.get(name).unwrap_or_default();
        let (cert_file, key_file, ca_file) = (get("tls-cert-file"), get("tls-key-file"), get("tls-ca-cert-file"));
        let auth = if http {
            AuthClients::No
        } else {
            AuthClients::parse(&get("tls-auth-clients")).unwrap_or(AuthClients::Yes)
        };
        if cert_file.is_empty() || key_file.is_empty() {
            return Err("TLS needs tls-cert-file and tls-key-file".into());
        }
        let certs = read_certs("tls-cert-file", &cert_file)?;
        let key_pem = read_file("tls-key-file", &key_file)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| format!("tls-key-file '{key_file}': no usable private key in PEM: {e}"))?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = if auth == AuthClients::No {
            builder.with_no_client_auth()
        } else {
            if ca_file.is_empty() {
                return Err("tls-auth-clients yes/optional needs tls-ca-cert-file to verify clients against".into());
            }
            let mut roots = RootCertStore::empty();
            for cert in read_certs("tls-ca-cert-file", &ca_file)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("tls-ca-cert-file '{ca_file}': not a usable CA certificate: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == AuthClients::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| format!("tls-ca-cert-file '{ca_file}': {e}"))?,
            )
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| format!("tls-cert-file '{cert_file}' / tls-key-file '{key_file}': {e}"))?;
        if http {
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        }
        Ok(Arc::new(TlsContext {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }))
    }
}

fn read_file(directive: &str, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{directive} '{path}': {e}"))
}

fn read_certs(directive: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_file(directive, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{directive} '{path}': bad PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{directive} '{path}': no CERTIFICATE found in PEM"));
    }
    Ok(certs)
}

/// A TCP connection accepted on a TLS port, before its handshake.
pub struct PendingTls {
    stream: TcpStream,
    ctx: Arc<TlsContext>,
    pub peer: String,
    local: String,
    fd: i64,
}

pub type TlsWrite = tokio::io::WriteHalf<TlsStream<TcpStream>>;
pub type TlsConn = Accepted<TlsRead, TlsWrite>;

/// Takes a TCP connection from a TLS port. CLIENT LIST shows its TCP addresses.
pub fn pending(stream: TcpStream, keepalive_secs: u64, ctx: Arc<TlsContext>) -> PendingTls {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let local = stream.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let fd = stream.as_raw_fd() as i64;
    let _ = stream.set_nodelay(true);
    super::transport::set_keepalive(&stream, keepalive_secs);
    PendingTls {
        stream,
        ctx,
        peer,
        local,
        fd,
    }
}

impl PendingTls {
    /// Completes the handshake (bounded by [`HANDSHAKE_TIMEOUT`], abandoned at shutdown).
    /// `None` when it fails; the reason is logged at debug level, as a failed handshake
    /// is the client's problem.
    pub async fn handshake(self, shutdown: &CancellationToken) -> Option<TlsConn> {
        let result = tokio::select! {
            r = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.ctx.acceptor.accept(self.stream)) => r,
            _ = shutdown.cancelled() => return None,
        };
        let stream = match result {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                return None;
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out after {HANDSHAKE_TIMEOUT:?}");
                return None;
            }
        };
        let (rd, wr) = tokio::io::split(stream);
        Some(Accepted {
            rd: TlsRead {
                inner: Mutex::new(ReadState {
                    rd,
                    pending: BytesMut::new(),
                    eof: false,
                }),
            },
            wr,
            direct: None,
            peer: self.peer,
            local: self.local,
            fd: self.fd,
            unix: false,
        })
    }

    /// Turns a client away with an error line, sent over TLS so that it can read it.
    pub async fn refuse(self, line: &'static [u8]) {
        use tokio::io::AsyncWriteExt;
        let _ = tokio::time::timeout(REFUSE_TIMEOUT, async move {
            let mut s = self.ctx.acceptor.accept(self.stream).await?;
            s.write_all(line).await?;
            s.shutdown().await
        })
        .await;
    }
}

/// The read side of a TLS connection. `readable()` reads (and decrypts) up to
/// [`READ_CHUNK`] bytes into `pending`; `try_read_buf` moves them to the caller. Like a
/// TCP read half, an idle connection holds no buffer of ours (rustls keeps its own).
pub struct TlsRead {
    // Only the connection's reader task uses it, and never across an await: uncontended.
    inner: Mutex<ReadState>,
}

struct ReadState {
    rd: tokio::io::ReadHalf<TlsStream<TcpStream>>,
    pending: BytesMut,
    /// The peer closed (close_notify, or a TCP close without one).
    eof: bool,
}

impl TlsRead {
    fn poll_fill(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut st = self.inner.locked();
        if !st.pending.is_empty() || st.eof {
            return Poll::Ready(Ok(()));
        }
        let mut chunk = [0u8; READ_CHUNK];
        let mut rb = ReadBuf::new(&mut chunk);
        match Pin::new(&mut st.rd).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => {
                if rb.filled().is_empty() {
                    st.eof = true;
                } else {
                    st.pending.extend_from_slice(rb.filled());
                }
                Poll::Ready(Ok(()))
            }
            // A client that closes its socket without close_notify has still said all it
            // meant to: what it sent was authenticated and is answered, as on TCP.
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                st.eof = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl ReadHalf for TlsRead {
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        std::future::poll_fn(move |cx| self.poll_fill(cx))
    }

    /// Like a socket read: at most the spare capacity the caller reserved (what does not
    /// fit stays pending, and `readable()` is then ready at once).
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        let mut st = self.inner.locked();
        if st.pending.is_empty() {
            return if st.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let spare = buf.capacity() - buf.len();
        let n = match spare {
            0 => st.pending.len(),
            spare => spare.min(st.pending.len()),
        };
        buf.extend_from_slice(&st.pending[..n]);
        st.pending.advance(n);
        if st.pending.is_empty() {
            st.pending = BytesMut::new();
        }
        Ok(n)
    }
}
