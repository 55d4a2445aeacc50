//! The sockets fanout serves: TCP and Unix domain sockets.
//!
//! A connection needs two things from its socket's read half: to wait until bytes are
//! readable and then to read them into a buffer it allocates only at that moment (so an
//! idle connection holds no read buffer). [`ReadHalf`] names exactly that, and the write
//! half is any `AsyncWrite`, so the connection code is written once for both kinds.

use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, Interest};
use tokio::net::{tcp, unix, TcpListener, TcpStream, UnixListener, UnixStream};

use crate::client::outbox::DirectWrite;

pub trait ReadHalf: Send + Sync + 'static {
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize>;
}

/// TCP and Unix read halves offer the same calls under the same names.
macro_rules! read_half {
    ($half:ty) => {
        impl ReadHalf for $half {
            fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
                <$half>::readable(self)
            }
            fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
                read_until_drained(
                    buf,
                    |b| <$half>::try_read_buf(self, b),
                    |f| self.as_ref().try_io(Interest::READABLE, f),
                )
            }
        }
    };
}
read_half!(tcp::OwnedReadHalf);
read_half!(unix::OwnedReadHalf);

/// Reads, and tells the runtime the socket is drained when the read came back short.
///
/// Tokio forgets a socket's readiness only when a read fails with `WouldBlock`, so a
/// client that sends one request at a time costs two reads per request: one that gets it
/// and one that finds nothing. A stream socket that filled less than the space offered
/// had nothing more queued, so the read is reported to `try_io` as `WouldBlock` (which
/// clears the readiness only if no new readiness event arrived meanwhile: nothing is
/// missed) and its byte count is returned. Redis reads once per request this way too.
fn read_until_drained(
    buf: &mut BytesMut,
    read: impl Fn(&mut BytesMut) -> io::Result<usize>,
    try_io: impl FnOnce(&mut dyn FnMut() -> io::Result<usize>) -> io::Result<usize>,
) -> io::Result<usize> {
    let spare = buf.capacity() - buf.len();
    let mut got = 0;
    let r = try_io(&mut || {
        got = read(buf)?;
        if got > 0 && got < spare {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(got)
        }
    });
    match r {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok(got),
        r => r,
    }
}

/// An accepted connection, split, with what CLIENT LIST shows about its socket.
pub struct Accepted<R, W> {
    pub rd: R,
    pub wr: W,
    /// The socket, for writes from other threads (plain TCP only).
    pub direct: Option<std::sync::Arc<dyn DirectWrite>>,
    pub peer: String,
    pub local: String,
    pub fd: i64,
    pub unix: bool,
}

pub type TcpConn = Accepted<tcp::OwnedReadHalf, SharedTcpWrite>;

/// A TCP connection's write half, shared by its writer task and by the threads that write
/// to it directly when its outbox is idle (`Outbox::write_or_wake`): both only ever make
/// non-blocking writes, and the outbox's lock says whose turn it is.
#[derive(Clone)]
pub struct SharedTcpWrite(pub std::sync::Arc<tcp::OwnedWriteHalf>);

impl DirectWrite for tcp::OwnedWriteHalf {
    fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        tcp::OwnedWriteHalf::try_write_vectored(self, bufs)
    }
}

impl AsyncWrite for SharedTcpWrite {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let stream: &TcpStream = (*self.0).as_ref();
        loop {
            std::task::ready!(stream.poll_write_ready(cx))?;
            match stream.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let stream: &TcpStream = (*self.0).as_ref();
        Poll::Ready(socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Write))
    }
}
pub type UnixConn = Accepted<unix::OwnedReadHalf, unix::OwnedWriteHalf>;

/// Applies `tcp-keepalive` (seconds; 0 leaves keepalive off).
pub(super) fn set_keepalive(stream: &TcpStream, secs: u64) {
    if secs > 0 {
        let ka = socket2::TcpKeepalive::new().with_time(Duration::from_secs(secs));
        let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&ka);
    }
}

pub fn tcp(stream: TcpStream, keepalive_secs: u64) -> TcpConn {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let local = stream.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let fd = stream.as_raw_fd() as i64;
    // Replies and messages are already coalesced per flush; Nagle would only add delay.
    let _ = stream.set_nodelay(true);
    set_keepalive(&stream, keepalive_secs);
    let (rd, wr) = stream.into_split();
    let wr = std::sync::Arc::new(wr);
    Accepted {
        rd,
        direct: Some(wr.clone()),
        wr: SharedTcpWrite(wr),
        peer,
        local,
        fd,
        unix: false,
    }
}

/// Unix-socket clients show as `<path>:0`, as in Redis.
pub fn unix(stream: UnixStream, path: &std::path::Path) -> UnixConn {
    let fd = stream.as_raw_fd() as i64;
    let addr = format!("{}:0", path.display());
    let (rd, wr) = stream.into_split();
    Accepted {
        rd,
        wr,
        direct: None,
        peer: addr.clone(),
        local: addr,
        fd,
        unix: true,
    }
}

/// A listening socket of either kind.
pub enum Listener {
    Tcp(TcpListener),
    /// The listener and its path, removed again at shutdown.
    Unix(UnixListener, PathBuf),
    /// A `tls-port` listener.
    Tls(TcpListener, std::sync::Arc<super::tls::TlsContext>),
}

/// Binds `unixsocket` with `unixsocketperm` (octal, e.g. `700`; empty keeps the umask's).
/// A stale socket file left by a previous run is replaced.
pub fn bind_unix(path: &str, perm: &str) -> io::Result<Listener> {
    let path = PathBuf::from(path);
    if std::fs::symlink_metadata(&path).is_ok_and(|m| {
        use std::os::unix::fs::FileTypeExt;
        m.file_type().is_socket()
    }) {
        let _ = std::fs::remove_file(&path);
    }
    let listener = UnixListener::bind(&path)?;
    if !perm.is_empty() {
        use std::os::unix::fs::PermissionsExt;
        let mode = u32::from_str_radix(perm, 8)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("invalid unixsocketperm '{perm}'")))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(Listener::Unix(listener, path))
}

/// Writes one line to a connection being turned away (maxclients), bounded in time.
pub async fn refuse<W: AsyncWrite + Unpin>(mut wr: W, line: &'static [u8]) {
    use tokio::io::AsyncWriteExt;
    let _ = tokio::time::timeout(Duration::from_secs(1), wr.write_all(line)).await;
}
