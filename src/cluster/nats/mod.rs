//! A NATS core protocol client with one ordered stream of incoming messages.
//!
//! Why not async-nats: the layer above needs every message the server sends on one
//! connection, across all its subscriptions, in wire order and with the sid each copy came
//! on. It delivers each message once by choosing, per subject, the copy from the oldest live
//! sid, and a publisher's order across channels survives only if one reader sees them all.
//! async-nats gives each subscription a channel of its own, which loses that order. So here
//! one TCP (optionally TLS) connection has one reader task, which calls [`Handler::message`]
//! synchronously for each message as it is parsed.
//!
//! The other direction mirrors fanout's own connections: [`Nats::subscribe`],
//! [`Nats::unsubscribe`] and [`Nats::publish`] are called from synchronous code on any
//! worker thread, take one short `parking_lot` lock, append to one output buffer and wake
//! the writer task, which takes the whole buffer and writes it with one `write_all` (many
//! PUBs per syscall). Nothing on that path awaits or does I/O.
//!
//! Subscriptions outlive connections: the table of live sids is kept here and re-sent, in
//! sid order, on every (re)connect before any PUB, under the same lock that marks the
//! connection usable, so a subscribe racing a reconnect is sent exactly once. PUBs are not
//! kept: while disconnected `publish` refuses, and PUBs buffered when a connection dies are
//! dropped and counted (`lost_out`), since the layer above cannot tell which ones the server
//! had already taken.
//!
//! A connection is dead on any I/O error, EOF, protocol error (see [`proto`]) or after two
//! keepalive PINGs without a PONG; the run loop then tries the servers in turn with capped
//! exponential backoff and jitter, logging once per outage at warn and once at info when
//! back.

pub mod proto;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;

use proto::{Parser, ServerOp};

/// The port of a server address that names none.
pub const DEFAULT_PORT: u16 = 4222;
/// TCP connect, INFO, TLS, CONNECT and its PONG must all be done within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// At shutdown, how long the writer may take to write what is still buffered.
const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);
/// The reader asks the socket for at least this much at a time.
const READ_CHUNK: usize = 64 * 1024;
/// The writer keeps its spare buffer between writes up to this capacity.
const KEEP_CAPACITY: usize = 1024 * 1024;
/// Keepalive PINGs that may go unanswered; at the next tick the connection is dead.
const MAX_PINGS_OUT: u32 = 2;

/// One server to connect to.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerAddr {
    pub host: String,
    pub port: u16,
    /// `tls://`: TLS whatever the server's INFO says.
    pub tls: bool,
    /// Credentials from the URL; they take precedence over [`Options`]'.
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
}

impl ServerAddr {
    pub fn new(host: &str, port: u16) -> ServerAddr {
        ServerAddr {
            host: host.to_string(),
            port,
            tls: false,
            user: None,
            password: None,
            token: None,
        }
    }
}

/// `host:port` (`[v6]:port`), never the credentials.
impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "tls" } else { "nats" };
        let auth = if self.user.is_some() || self.token.is_some() {
            "<credentials>@"
        } else {
            ""
        };
        write!(f, "{scheme}://{auth}{self}")
    }
}

/// Parses a comma-separated server list: `nats://h:4222,tls://user:pass@h2:4223,nats://token@h3`.
/// The scheme (`nats` or `tls`) may be left out (`nats`), the port too (4222); user, password
/// and token may be percent-encoded. The error names the entry at fault.
pub fn parse_servers(list: &str) -> Result<Vec<ServerAddr>, String> {
    let servers = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| parse_server(entry).map_err(|why| format!("NATS server '{entry}': {why}")))
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err("no NATS server given".into());
    }
    Ok(servers)
}

fn parse_server(entry: &str) -> Result<ServerAddr, String> {
    let (tls, rest) = match entry.split_once("://") {
        Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
            "nats" => (false, rest),
            "tls" => (true, rest),
            other => return Err(format!("unknown scheme '{other}' (nats or tls)")),
        },
        None => (false, entry),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (auth, hostport) = match rest.rsplit_once('@') {
        Some((auth, hp)) => (Some(auth), hp),
        None => (None, rest),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed '[' in the host")?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or("expected ':' after ']'")?)),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    if host.contains(['/', '@', '[', ']']) || (host.contains(':') && !hostport.starts_with('[')) {
        return Err(format!("bad host '{host}'"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("bad port '{p}'")),
        },
    };
    let mut addr = ServerAddr::new(host, port);
    addr.tls = tls;
    if let Some(auth) = auth {
        match auth.split_once(':') {
            Some((user, pass)) => {
                addr.user = Some(percent_decode(user)?);
                addr.password = Some(percent_decode(pass)?);
            }
            None if auth.is_empty() => return Err("empty credentials before '@'".into()),
            None => addr.token = Some(percent_decode(auth)?),
        }
    }
    Ok(addr)
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("bad %-escape in the credentials")?;
            out.push(byte);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "credentials are not UTF-8".to_string())
}

/// PEM files for TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificates the server's certificate is verified against; `None`: the system's
    /// bundle (`SSL_CERT_FILE`, or the usual Debian/Red Hat paths).
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its key, for servers that verify clients. Both or neither.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl TlsFiles {
    /// The rustls configuration these files make (ring provider). The files are read anew
    /// on every connect, so this is also a way to check them at start-up; the error names
    /// the file at fault.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, String> {
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(ca) => {
                for cert in read_certs("CA file", ca)? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("CA file '{}': not a usable CA certificate: {e}", ca.display()))?;
                }
            }
            None => {
                let bundle = system_ca_bundle().ok_or("TLS: no CA file given and no system CA bundle found")?;
                let (added, _) = roots.add_parsable_certificates(read_certs("system CA bundle", &bundle)?);
                if added == 0 {
                    return Err(format!(
                        "system CA bundle '{}': no usable certificate",
                        bundle.display()
                    ));
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots);
        let config = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let certs = read_certs("certificate file", cert)?;
                let pem = read_file("key file", key)?;
                let key_der = PrivateKeyDer::from_pem_slice(&pem)
                    .map_err(|e| format!("key file '{}': no usable private key in PEM: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(certs, key_der)
                    .map_err(|e| format!("certificate '{}' / key '{}': {e}", cert.display(), key.display()))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err("TLS: a client certificate needs both cert_file and key_file".into()),
        };
        Ok(Arc::new(config))
    }
}

fn system_ca_bundle() -> Option<PathBuf> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let usual = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ];
    from_env
        .into_iter()
        .chain(usual.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

fn read_file(what: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{what} '{}': {e}", path.display()))
}

fn read_certs(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_file(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} '{}': bad PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{what} '{}': no CERTIFICATE found in PEM", path.display()));
    }
    Ok(certs)
}

/// How to reach the servers and how to behave towards them.
#[derive(Clone)]
pub struct Options {
    /// Tried in turn on (re)connect.
    pub servers: Vec<ServerAddr>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// `Some`: always TLS. `None`: TLS only for `tls://` servers and those whose INFO
    /// requires it, verified against the system's CA bundle.
    pub tls: Option<TlsFiles>,
    /// CONNECT's `name`, shown by the server's monitoring.
    pub name: String,
    /// Bytes buffered for sending before [`Nats::publish`] refuses with [`Refused::Full`].
    pub out_limit: usize,
    /// A PING this often; after two unanswered ones the connection is dead.
    pub ping_interval: Duration,
    /// Reconnect backoff: doubles from `reconnect_min` up to `reconnect_max`, with jitter.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// The longest control line accepted from the server.
    pub max_control_line: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            servers: vec![ServerAddr::new("127.0.0.1", DEFAULT_PORT)],
            user: None,
            password: None,
            token: None,
            tls: None,
            name: "fanout".into(),
            out_limit: 64 * 1024 * 1024,
            ping_interval: Duration::from_secs(2),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            max_control_line: proto::DEFAULT_MAX_CONTROL_LINE,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |o: &Option<String>| o.as_ref().map(|_| "<hidden>");
        f.debug_struct("Options")
            .field("servers", &self.servers)
            .field("user", &self.user)
            .field("password", &hidden(&self.password))
            .field("token", &hidden(&self.token))
            .field("tls", &self.tls)
            .field("name", &self.name)
            .field("out_limit", &self.out_limit)
            .field("ping_interval", &self.ping_interval)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max)
            .field("max_control_line", &self.max_control_line)
            .finish()
    }
}

/// What the client tells the layer above. Both methods are called from the one reader
/// task (the run loop), with no lock of the client held (so they may call `subscribe`,
/// `publish` and the like), and must not block or await.
pub trait Handler: Send + Sync + 'static {
    /// Every MSG/HMSG in the order the server sent them, called from the one reader task;
    /// must not block or await. A message may still arrive on a sid shortly after
    /// [`Nats::unsubscribe`] (it was on its way), and the same message arrives once per
    /// matching sid.
    fn message(&self, sid: u64, subject: &[u8], payload: Bytes);
    /// true once a connection is ready (CONNECT accepted, every live subscription re-sent);
    /// false when it is lost (or closed at shutdown). Always called before the first
    /// `message` of a connection and after its last.
    fn connection(&self, up: bool, server: &str);
    /// After the messages of one read from the socket: a burst's deliveries can wake
    /// their consumers once.
    fn batch_end(&self) {}
}

/// Why a message was not taken for sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not connected to a NATS server")]
    Disconnected,
    #[error("message larger than the NATS server's max_payload of {max} bytes")]
    TooLarge { max: usize },
    #[error("NATS output buffer full")]
    Full,
    /// Empty, or with a space, tab, CR, LF or other control byte, which would break the
    /// PUB line for everyone on the connection.
    #[error("invalid NATS subject")]
    BadSubject,
}

/// A snapshot of the client's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub connected: bool,
    /// The server connected to, or the last one tried (`host:port`).
    pub server: String,
    /// Connections made ready, and lost.
    pub connects: u64,
    pub disconnects: u64,
    /// PUBs taken by `publish`, and their payload bytes.
    pub msgs_out: u64,
    pub bytes_out: u64,
    /// Messages handed to the handler, and their payload bytes.
    pub msgs_in: u64,
    pub bytes_in: u64,
    /// `publish` calls refused, for any reason.
    pub refused_out: u64,
    /// Buffered PUBs discarded when a connection died.
    pub lost_out: u64,
    /// Bytes taken for sending and not yet written to the socket.
    pub pending_bytes: u64,
    /// The last failure: a connect error, why a connection died, or a server's -ERR.
    pub last_error: String,
    pub max_payload: u64,
    /// -ERR lines received.
    pub server_errors: u64,
}

/// Answers the server owes, in PING order.
enum PongWaiter {
    Keepalive,
    Flush(oneshot::Sender<()>),
}

/// Everything `publish`/`subscribe` touch: one short lock.
struct State {
    /// Bytes for the writer: SUB, UNSUB, PUB, PING, PONG in the order they were made.
    out: BytesMut,
    /// Messages in `out` (a batched PUB counts each of its records).
    out_msgs: u64,
    /// Taken by the writer and not yet written.
    inflight_bytes: usize,
    inflight_msgs: u64,
    /// Live subscriptions, re-sent on every connect.
    subs: BTreeMap<u64, Bytes>,
    connected: bool,
    next_sid: u64,
    pongs: VecDeque<PongWaiter>,
    msgs_out: u64,
    bytes_out: u64,
    lost_out: u64,
    server: String,
    last_error: String,
    /// The PUB that ends `out`, which [`Nats::publish_batched`] may extend: where its
    /// subject and size digits are, and its payload length.
    open_pub: Option<OpenPub>,
}

struct OpenPub {
    subject_at: usize,
    subject_len: usize,
    size_at: usize,
    len: usize,
}

/// The client. Make it with [`Nats::new`], start its connection loop with [`Nats::run`].
pub struct Nats {
    opts: Options,
    handler: Arc<dyn Handler>,
    state: Mutex<State>,
    /// Wakes the writer: `out` has something.
    wake: Notify,
    max_payload: AtomicUsize,
    running: AtomicBool,
    connects: AtomicU64,
    disconnects: AtomicU64,
    msgs_in: AtomicU64,
    bytes_in: AtomicU64,
    refused_out: AtomicU64,
    server_errors: AtomicU64,
}

impl Nats {
    pub fn new(opts: Options, handler: Arc<dyn Handler>) -> Arc<Nats> {
        Arc::new(Nats {
            opts,
            handler,
            state: Mutex::new(State {
                out: BytesMut::new(),
                out_msgs: 0,
                inflight_bytes: 0,
                inflight_msgs: 0,
                subs: BTreeMap::new(),
                connected: false,
                next_sid: 1,
                pongs: VecDeque::new(),
                msgs_out: 0,
                bytes_out: 0,
                lost_out: 0,
                server: String::new(),
                last_error: String::new(),
                open_pub: None,
            }),
            wake: Notify::new(),
            max_payload: AtomicUsize::new(proto::DEFAULT_MAX_PAYLOAD),
            running: AtomicBool::new(false),
            connects: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            msgs_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            refused_out: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
        })
    }

    /// Starts the connect/reconnect loop. It ends on `shutdown`, after writing what is
    /// still buffered (best effort, bounded). Only the first call starts a loop.
    pub fn run(self: &Arc<Self>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        if self.running.swap(true, Relaxed) {
            tracing::error!("Nats::run called twice; the second call does nothing");
            return tokio::spawn(async {});
        }
        tokio::spawn(async move { this.run_loop(shutdown).await })
    }

    /// Subscribes to `subject` (wildcards allowed) and returns its sid. Never waits: the
    /// SUB is queued when connected, and sent from the table on every connect. Sids
    /// increase strictly. An invalid subject (see [`Refused::BadSubject`]) gets a sid that
    /// is never sent, and a warning.
    pub fn subscribe(&self, subject: &[u8]) -> u64 {
        let valid = proto::valid_subject(subject);
        let mut st = self.state.lock();
        let sid = st.next_sid;
        st.next_sid += 1;
        if !valid {
            drop(st);
            tracing::warn!(subject = %String::from_utf8_lossy(subject), "NATS: invalid subject not subscribed");
            return sid;
        }
        st.subs.insert(sid, Bytes::copy_from_slice(subject));
        if st.connected {
            let was_empty = st.out.is_empty();
            proto::encode_sub(&mut st.out, subject, sid);
            drop(st);
            if was_empty {
                self.wake.notify_one();
            }
        }
        sid
    }

    /// Forgets `sid` at once; the UNSUB is queued when connected.
    pub fn unsubscribe(&self, sid: u64) {
        let mut st = self.state.lock();
        if st.subs.remove(&sid).is_some() && st.connected {
            let was_empty = st.out.is_empty();
            proto::encode_unsub(&mut st.out, sid);
            drop(st);
            if was_empty {
                self.wake.notify_one();
            }
        }
    }

    /// Publishes `record` on `subject`, appended to the payload of the PUB still waiting
    /// in the buffer when that one is for the same subject and the two fit in
    /// max_payload: a burst on one subject leaves as one NATS message (the server then
    /// routes one message, not 32), with no wait (only what is queued anyway is merged).
    /// Records must carry their own framing so the receiver can split them. Refused as
    /// [`Nats::publish`] refuses. The writer is not woken: `Ok(true)` says the caller
    /// owes it a [`Nats::wake_writer`] (once, when its batch of requests is done, so a
    /// pipeline's messages leave together, as nats-server flushes its own writes).
    pub fn publish_batched(&self, subject: &[u8], record: &[&[u8]]) -> Result<bool, Refused> {
        let refuse = |r: Refused| {
            self.refused_out.fetch_add(1, Relaxed);
            Err(r)
        };
        let max = self.max_payload.load(Relaxed);
        let record_len: usize = record.iter().map(|p| p.len()).sum();
        if record_len > max {
            return refuse(Refused::TooLarge { max });
        }
        if !proto::valid_subject(subject) {
            return refuse(Refused::BadSubject);
        }
        let mut st = self.state.lock();
        if !st.connected {
            drop(st);
            return refuse(Refused::Disconnected);
        }
        let was_empty = st.out.is_empty();
        let extend = st.open_pub.as_ref().is_some_and(|o| {
            o.size_at + proto::PADDED_SIZE + 2 + o.len + 2 == st.out.len()
                && o.len + record_len <= max
                && st.out[o.subject_at..o.subject_at + o.subject_len] == *subject
        });
        if extend {
            let State { out, open_pub, .. } = &mut *st;
            let o = open_pub.as_mut().expect("checked");
            o.len = proto::extend_pub(out, o.size_at, o.len, record);
        } else {
            let len = 4 + subject.len() + 1 + proto::PADDED_SIZE + 4 + record_len;
            if !was_empty && st.out.len() + st.inflight_bytes + len > self.opts.out_limit {
                drop(st);
                return refuse(Refused::Full);
            }
            let subject_at = st.out.len() + 4;
            let size_at = proto::encode_pub_padded(&mut st.out, subject, record);
            st.open_pub = Some(OpenPub {
                subject_at,
                subject_len: subject.len(),
                size_at,
                len: record_len,
            });
        }
        // Messages, not PUBs: a lost batch counts every message in it.
        st.out_msgs += 1;
        st.msgs_out += 1;
        st.bytes_out += record_len as u64;
        drop(st);
        Ok(was_empty)
    }

    /// Wakes the writer for what [`Nats::publish_batched`] queued.
    pub fn wake_writer(&self) {
        self.wake.notify_one();
    }

    /// Queues `PUB subject len\r\npayload\r\n` and wakes the writer. Never waits. Refused
    /// while disconnected, over the server's max_payload, or when more than `out_limit`
    /// bytes would be buffered (a message is always taken into an empty buffer).
    pub fn publish(&self, subject: &[u8], payload: &[u8]) -> Result<(), Refused> {
        let refuse = |r: Refused| {
            self.refused_out.fetch_add(1, Relaxed);
            Err(r)
        };
        let max = self.max_payload.load(Relaxed);
        if payload.len() > max {
            return refuse(Refused::TooLarge { max });
        }
        if !proto::valid_subject(subject) {
            return refuse(Refused::BadSubject);
        }
        let len = proto::pub_len(subject, payload);
        let mut st = self.state.lock();
        if !st.connected {
            drop(st);
            return refuse(Refused::Disconnected);
        }
        let was_empty = st.out.is_empty();
        if !was_empty && st.out.len() + st.inflight_bytes + len > self.opts.out_limit {
            drop(st);
            return refuse(Refused::Full);
        }
        proto::encode_pub(&mut st.out, subject, payload);
        st.out_msgs += 1;
        st.msgs_out += 1;
        st.bytes_out += payload.len() as u64;
        drop(st);
        // A non-empty buffer already has a wake-up on its way (or the writer is about to
        // take it), so only the first message after a take wakes the writer.
        if was_empty {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// The server's max_payload (from its INFO; 1 MiB before the first).
    pub fn max_payload(&self) -> usize {
        self.max_payload.load(Relaxed)
    }

    pub fn stats(&self) -> Stats {
        let st = self.state.lock();
        Stats {
            connected: st.connected,
            server: st.server.clone(),
            connects: self.connects.load(Relaxed),
            disconnects: self.disconnects.load(Relaxed),
            msgs_out: st.msgs_out,
            bytes_out: st.bytes_out,
            msgs_in: self.msgs_in.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            refused_out: self.refused_out.load(Relaxed),
            lost_out: st.lost_out,
            pending_bytes: (st.out.len() + st.inflight_bytes) as u64,
            last_error: st.last_error.clone(),
            max_payload: self.max_payload.load(Relaxed) as u64,
            server_errors: self.server_errors.load(Relaxed),
        }
    }

    /// A PING/PONG round trip: once it returns `Ok`, the server has processed everything
    /// queued before the call. `Disconnected` if the connection is down or dies first
    /// (which keepalive bounds to a few ping intervals).
    pub async fn flush(&self) -> Result<(), Refused> {
        let (tx, rx) = oneshot::channel();
        self.send_ping(PongWaiter::Flush(tx))?;
        rx.await.map_err(|_| Refused::Disconnected)
    }

    fn send_ping(&self, waiter: PongWaiter) -> Result<(), Refused> {
        let mut st = self.state.lock();
        if !st.connected {
            return Err(Refused::Disconnected);
        }
        let was_empty = st.out.is_empty();
        proto::encode_ping(&mut st.out);
        st.pongs.push_back(waiter);
        drop(st);
        if was_empty {
            self.wake.notify_one();
        }
        Ok(())
    }

    fn send_pong(&self) {
        let mut st = self.state.lock();
        let was_empty = st.out.is_empty();
        proto::encode_pong(&mut st.out);
        drop(st);
        if was_empty {
            self.wake.notify_one();
        }
    }

    fn set_error(&self, text: String) {
        self.state.lock().last_error = text;
    }

    async fn run_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let servers = self.opts.servers.clone();
        if servers.is_empty() {
            tracing::error!("NATS: no server configured");
            self.set_error("no server configured".into());
            shutdown.cancelled().await;
            return;
        }
        // Where the next round starts: the server last connected to.
        let mut first = 0;
        let mut failed_rounds = 0u32;
        // Set once an outage has been logged at warn; when it started.
        let mut outage: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            let mut ready = None;
            for i in 0..servers.len() {
                let idx = (first + i) % servers.len();
                let addr = &servers[idx];
                self.state.lock().server = addr.to_string();
                let attempt = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.connect(addr));
                let result = tokio::select! {
                    r = attempt => r.unwrap_or_else(|_| Err(format!("no answer within {HANDSHAKE_TIMEOUT:?}"))),
                    _ = shutdown.cancelled() => return,
                };
                match result {
                    Ok(conn) => {
                        first = idx;
                        ready = Some(conn);
                        break;
                    }
                    Err(why) => {
                        let text = format!("NATS server {addr}: {why}");
                        if outage.is_none() {
                            tracing::warn!("{text}; retrying");
                            outage = Some(Instant::now());
                        } else {
                            tracing::debug!("{text}");
                        }
                        self.set_error(text);
                    }
                }
            }
            let Some((stream, rbuf, parser)) = ready else {
                let delay = backoff(&self.opts, failed_rounds);
                failed_rounds = failed_rounds.saturating_add(1);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return,
                }
                continue;
            };
            failed_rounds = 0;
            let server = servers[first].to_string();
            match outage.take() {
                Some(since) => tracing::info!(
                    "NATS: connected to {server}, {:.1?} after the outage began",
                    since.elapsed()
                ),
                None => tracing::info!("NATS: connected to {server}"),
            }
            let lost = self.serve(stream, rbuf, parser, &server, &shutdown).await;
            if let Err(why) = lost {
                let text = format!("NATS server {server}: {why}");
                tracing::warn!("{text}; reconnecting");
                self.set_error(text);
                outage = Some(Instant::now());
                // Even a server that takes connections and drops them at once is not
                // hammered.
                tokio::select! {
                    _ = tokio::time::sleep(backoff(&self.opts, 0)) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    }

    /// One connection attempt up to ready: INFO, TLS, CONNECT, PING, PONG, then the live
    /// subscriptions queued and the connection marked usable.
    async fn connect(&self, addr: &ServerAddr) -> Result<(Stream, BytesMut, Parser), String> {
        let tcp = TcpStream::connect((addr.host.as_str(), addr.port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let mut tcp = tcp;
        let mut rbuf = BytesMut::with_capacity(self.opts.max_control_line + 2);
        let mut parser = Parser::new(self.opts.max_control_line, proto::DEFAULT_MAX_PAYLOAD);
        let info = match read_op(&mut tcp, &mut parser, &mut rbuf).await? {
            ServerOp::Info(info) => info,
            other => return Err(format!("expected INFO first, got {other:?}")),
        };
        self.apply_info(&info, &mut parser);

        let tls = self.opts.tls.is_some() || addr.tls || info.tls_required;
        let mut stream = if tls {
            if !(info.tls_required || info.tls_available) {
                return Err("TLS is configured but the server does not offer it".into());
            }
            if !rbuf.is_empty() {
                return Err("protocol error: bytes after INFO before the TLS handshake".into());
            }
            let config = self.opts.tls.clone().unwrap_or_default().client_config()?;
            let name = ServerName::try_from(addr.host.clone())
                .map_err(|e| format!("TLS: '{}' is not a valid server name: {e}", addr.host))?;
            let tls_stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            Stream::Tls(Box::new(tls_stream))
        } else {
            Stream::Tcp(tcp)
        };

        let user = addr.user.as_deref().or(self.opts.user.as_deref());
        let (pass, token) = if addr.user.is_some() || addr.token.is_some() {
            (addr.password.as_deref(), addr.token.as_deref())
        } else {
            (self.opts.password.as_deref(), self.opts.token.as_deref())
        };
        let mut hello = BytesMut::new();
        proto::encode_connect(
            &mut hello,
            &proto::Connect {
                name: &self.opts.name,
                version: env!("CARGO_PKG_VERSION"),
                tls_required: tls,
                user,
                pass,
                auth_token: token,
            },
        );
        proto::encode_ping(&mut hello);
        write_flush(&mut stream, &hello).await?;
        loop {
            match read_op(&mut stream, &mut parser, &mut rbuf).await? {
                ServerOp::Pong => break,
                ServerOp::Ok => {}
                ServerOp::Ping => write_flush(&mut stream, b"PONG\r\n").await?,
                ServerOp::Info(info) => self.apply_info(&info, &mut parser),
                ServerOp::Err(text) => {
                    self.server_errors.fetch_add(1, Relaxed);
                    return Err(format!("CONNECT refused: {text}"));
                }
                ServerOp::Msg(_) => return Err("protocol error: MSG before the CONNECT's PONG".into()),
            }
        }

        {
            let mut st = self.state.lock();
            let State {
                out,
                out_msgs,
                subs,
                pongs,
                open_pub,
                ..
            } = &mut *st;
            out.clear();
            *open_pub = None;
            *out_msgs = 0;
            pongs.clear();
            for (sid, subject) in subs.iter() {
                proto::encode_sub(out, subject, *sid);
            }
            st.connected = true;
            st.server = addr.to_string();
        }
        self.connects.fetch_add(1, Relaxed);
        self.handler.connection(true, &addr.to_string());
        Ok((stream, rbuf, parser))
    }

    fn apply_info(&self, info: &proto::Info, parser: &mut Parser) {
        if let Some(max) = info.max_payload {
            self.max_payload.store(max, Relaxed);
            parser.set_max_payload(max);
        }
    }

    /// Runs a ready connection until it dies (`Err`: why) or `shutdown` (`Ok`), then
    /// marks it down, discards what was buffered and tells the handler.
    async fn serve(
        self: &Arc<Self>,
        stream: Stream,
        rbuf: BytesMut,
        parser: Parser,
        server: &str,
        shutdown: &CancellationToken,
    ) -> Result<(), String> {
        let (mut rd, wr) = tokio::io::split(stream);
        let dead = CancellationToken::new();
        let writer = tokio::spawn(self.clone().write_loop(wr, dead.clone(), shutdown.clone()));
        // The SUBs queued at connect.
        self.wake.notify_one();
        let read = self.read_loop(&mut rd, rbuf, parser, &dead, shutdown).await;
        if read.is_err() {
            dead.cancel();
        }
        // At shutdown (`Ok`) the writer is left to write what is buffered.
        let written = writer.await.unwrap_or_else(|e| Err(format!("writer task failed: {e}")));
        // The writer's error is the cause when it stopped first.
        let result = match (read, written) {
            (Err(_), Err(w)) | (Ok(()), Err(w)) => Err(w),
            (r, Ok(())) => r,
        };

        let waiters = {
            let mut st = self.state.lock();
            st.connected = false;
            st.lost_out += st.out_msgs + st.inflight_msgs;
            st.out = BytesMut::new();
            st.open_pub = None;
            st.out_msgs = 0;
            st.inflight_bytes = 0;
            st.inflight_msgs = 0;
            std::mem::take(&mut st.pongs)
        };
        // Pending flush() calls see Disconnected.
        drop(waiters);
        self.disconnects.fetch_add(1, Relaxed);
        self.handler.connection(false, server);
        result
    }

    /// Parses what the server sends, hands messages to the handler in order, answers
    /// PINGs and sends keepalive PINGs. `Ok` on shutdown.
    async fn read_loop(
        &self,
        rd: &mut tokio::io::ReadHalf<Stream>,
        mut buf: BytesMut,
        mut parser: Parser,
        dead: &CancellationToken,
        shutdown: &CancellationToken,
    ) -> Result<(), String> {
        let interval = self.opts.ping_interval.max(Duration::from_millis(10));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pings_out = 0u32;
        loop {
            let (mut msgs, mut bytes) = (0u64, 0u64);
            let parsed = loop {
                match parser.next(&mut buf) {
                    Ok(Some(ServerOp::Msg(m))) => {
                        msgs += 1;
                        bytes += m.payload.len() as u64;
                        self.handler.message(m.sid, &m.subject, m.payload);
                    }
                    Ok(Some(ServerOp::Ping)) => self.send_pong(),
                    Ok(Some(ServerOp::Pong)) => {
                        pings_out = 0;
                        let waiter = self.state.lock().pongs.pop_front();
                        if let Some(PongWaiter::Flush(tx)) = waiter {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Some(ServerOp::Ok)) => {}
                    Ok(Some(ServerOp::Info(info))) => self.apply_info(&info, &mut parser),
                    Ok(Some(ServerOp::Err(text))) => {
                        // The server closes the connection after most errors ('Slow
                        // Consumer', 'Stale Connection', 'Maximum Payload Violation'); the
                        // read then ends. Some ('Permissions Violation') leave it open.
                        self.server_errors.fetch_add(1, Relaxed);
                        tracing::warn!("NATS server error: {text}");
                        self.set_error(format!("server error: {text}"));
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(format!("protocol error: {e}")),
                }
            };
            if msgs > 0 {
                self.handler.batch_end();
                self.msgs_in.fetch_add(msgs, Relaxed);
                self.bytes_in.fetch_add(bytes, Relaxed);
            }
            parsed?;
            buf.reserve(parser.bytes_wanted(buf.len()).max(READ_CHUNK));
            tokio::select! {
                r = rd.read_buf(&mut buf) => match r {
                    Ok(0) => return Err("connection closed by the server".into()),
                    Ok(_) => {}
                    Err(e) => return Err(format!("read: {e}")),
                },
                _ = ticker.tick() => {
                    if pings_out >= MAX_PINGS_OUT {
                        return Err(format!("no PONG to {MAX_PINGS_OUT} PINGs (stale connection)"));
                    }
                    pings_out += 1;
                    let _ = self.send_ping(PongWaiter::Keepalive);
                }
                _ = dead.cancelled() => return Err("writer stopped".into()),
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
    }

    /// Takes everything queued and writes it in one go, until the connection dies. At
    /// shutdown it marks the client disconnected, writes what is left (bounded by
    /// [`SHUTDOWN_FLUSH_TIMEOUT`]) and closes its side.
    async fn write_loop(
        self: Arc<Self>,
        mut wr: tokio::io::WriteHalf<Stream>,
        dead: CancellationToken,
        shutdown: CancellationToken,
    ) -> Result<(), String> {
        let mut spare = BytesMut::new();
        // A write under way when shutdown comes gets SHUTDOWN_FLUSH_TIMEOUT more.
        let grace = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_FLUSH_TIMEOUT).await;
        };
        tokio::pin!(grace);
        loop {
            let stopping = tokio::select! {
                biased;
                _ = dead.cancelled() => return Ok(()),
                _ = shutdown.cancelled() => true,
                _ = self.wake.notified() => false,
            };
            {
                let mut st = self.state.lock();
                if stopping {
                    st.connected = false;
                }
                std::mem::swap(&mut st.out, &mut spare);
                st.open_pub = None;
                st.inflight_bytes = spare.len();
                st.inflight_msgs = std::mem::take(&mut st.out_msgs);
            }
            let write = async {
                if !spare.is_empty() {
                    wr.write_all(&spare).await?;
                }
                wr.flush().await?;
                if stopping {
                    wr.shutdown().await?;
                }
                io::Result::Ok(())
            };
            let result = tokio::select! {
                r = write => r,
                _ = dead.cancelled() => return Ok(()),
                _ = &mut grace => return Ok(()),
            };
            if let Err(e) = result {
                dead.cancel();
                return Err(format!("write: {e}"));
            }
            {
                let mut st = self.state.lock();
                st.inflight_bytes = 0;
                st.inflight_msgs = 0;
            }
            if stopping {
                return Ok(());
            }
            if spare.capacity() > KEEP_CAPACITY {
                spare = BytesMut::new();
            } else {
                spare.clear();
            }
        }
    }
}

/// Reads until the parser yields one operation (the handshake's reads).
async fn read_op<S: AsyncRead + Unpin>(
    stream: &mut S,
    parser: &mut Parser,
    buf: &mut BytesMut,
) -> Result<ServerOp, String> {
    loop {
        if let Some(op) = parser.next(buf).map_err(|e| format!("protocol error: {e}"))? {
            return Ok(op);
        }
        buf.reserve(parser.bytes_wanted(buf.len()).max(4096));
        match stream.read_buf(buf).await {
            Ok(0) => return Err("connection closed by the server".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

async fn write_flush(stream: &mut Stream, bytes: &[u8]) -> Result<(), String> {
    stream.write_all(bytes).await.map_err(|e| format!("write: {e}"))?;
    stream.flush().await.map_err(|e| format!("write: {e}"))
}

/// The delay before reconnect round `n` (0-based): `reconnect_min * 2^n`, capped at
/// `reconnect_max`, then a random point in its upper half so that many clients dropped
/// together do not come back together.
fn backoff(opts: &Options, n: u32) -> Duration {
    let min = opts.reconnect_min.max(Duration::from_millis(1));
    let max = opts.reconnect_max.max(min);
    let full = min.saturating_mul(1u32 << n.min(20)).min(max);
    full / 2 + full.mul_f64(random_unit() / 2.0)
}

/// A number in [0, 1) from std's randomly keyed hasher (no RNG dependency for jitter).
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let r = std::collections::hash_map::RandomState::new().build_hasher().finish();
    (r >> 11) as f64 / (1u64 << 53) as f64
}

/// A plain or TLS connection, as one type for the reader and writer halves.
enum Stream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_lists() {
        let s = parse_servers("nats://h:4222,tls://user:pass@h2:4223,nats://token@h3").unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].host.as_str(), s[0].port, s[0].tls), ("h", 4222, false));
        assert_eq!(s[0].user, None);
        assert_eq!((s[1].host.as_str(), s[1].port, s[1].tls), ("h2", 4223, true));
        assert_eq!(s[1].user.as_deref(), Some("user"));
        assert_eq!(s[1].password.as_deref(), Some("pass"));
        assert_eq!((s[2].host.as_str(), s[2].port), ("h3", DEFAULT_PORT));
        assert_eq!(s[2].token.as_deref(), Some("token"));
        assert_eq!(s[2].user, None);

        let s = parse_servers(" 10.0.0.1 , [::1]:4300, nats://[fe80::1], NATS://u:p%40ss%2C@h/ ,").unwrap();
        assert_eq!((s[0].host.as_str(), s[0].port), ("10.0.0.1", 4222));
        assert_eq!((s[1].host.as_str(), s[1].port), ("::1", 4300));
        assert_eq!(s[1].to_string(), "[::1]:4300");
        assert_eq!((s[2].host.as_str(), s[2].port), ("fe80::1", 4222));
        assert_eq!(s[3].password.as_deref(), Some("p@ss,"));
        assert_eq!(s[3].to_string(), "h:4222");
        assert_eq!(format!("{:?}", s[3]), "nats://<credentials>@h:4222");
    }

    #[test]
    fn server_list_errors_name_the_entry() {
        for (list, needle) in [
            ("nats://ok:1,http://h:1", "'http://h:1'"),
            ("nats://ok:1,h:0", "'h:0'"),
            ("h:99999", "'h:99999'"),
            ("nats://:4222", "no host"),
            ("nats://@h", "empty credentials"),
            ("nats://u:%zz@h", "%-escape"),
            ("[::1", "unclosed"),
            ("::1:4222", "bad host"),
            ("", "no NATS server"),
            (" , ", "no NATS server"),
        ] {
            let err = parse_servers(list).unwrap_err();
            assert!(err.contains(needle), "{list:?}: {err}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let opts = Options {
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            ..Options::default()
        };
        for _ in 0..50 {
            let d0 = backoff(&opts, 0);
            assert!(
                d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100),
                "{d0:?}"
            );
            let d3 = backoff(&opts, 3);
            assert!(
                d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800),
                "{d3:?}"
            );
            let d = backoff(&opts, 1000);
            assert!(d >= Duration::from_millis(2500) && d <= Duration::from_secs(5), "{d:?}");
        }
    }

    #[test]
    fn options_debug_hides_secrets() {
        let opts = Options {
            password: Some("hunter2".into()),
            token: Some("s3cret".into()),
            ..Options::default()
        };
        let shown = format!("{opts:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("s3cret"), "{shown}");
    }

    struct Nop;
    impl Handler for Nop {
        fn message(&self, _: u64, _: &[u8], _: Bytes) {}
        fn connection(&self, _: bool, _: &str) {}
    }

    #[test]
    fn sync_api_while_disconnected() {
        let nats = Nats::new(Options::default(), Arc::new(Nop));
        assert_eq!(nats.max_payload(), proto::DEFAULT_MAX_PAYLOAD);
        let (a, b) = (nats.subscribe(b"a"), nats.subscribe(b"b.>"));
        assert!(b > a);
        assert!(nats.subscribe(b"bad subject") > b);
        assert_eq!(nats.publish(b"a", b"x"), Err(Refused::Disconnected));
        assert_eq!(
            nats.publish(b"a", &vec![0; proto::DEFAULT_MAX_PAYLOAD + 1]),
            Err(Refused::TooLarge {
                max: proto::DEFAULT_MAX_PAYLOAD
            })
        );
        assert_eq!(nats.publish(b"a b", b"x"), Err(Refused::BadSubject));
        nats.unsubscribe(a);
        let st = nats.state.lock();
        assert_eq!(st.subs.keys().copied().collect::<Vec<_>>(), vec![b]);
        assert!(st.out.is_empty(), "nothing is written while disconnected");
        drop(st);
        let stats = nats.stats();
        assert_eq!((stats.refused_out, stats.msgs_out, stats.connected), (3, 0, false));
    }
}
