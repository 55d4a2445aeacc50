//! The listener, the periodic client checks and shutdown.
//!
//! An accept error (out of file descriptors, say) is logged and retried after a short
//! pause, never fatal. Shutdown stops accepting, asks every connection to send what it
//! has queued and close, waits up to `shutdown-timeout` for that, then drops the rest.

mod arrival;
pub mod conn;
pub mod tls;
pub mod transport;

use crate::sync::LockExt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::config::Settings;
use crate::stats::Stats;
use tracing::Instrument;
use transport::Listener;

/// Overflow warnings (disconnects and first drops) share one budget of lines a second.
pub(crate) static OVERFLOW_LOG: crate::logging::RateLimit = crate::logging::RateLimit::new(10);

/// How often soft output limits and idle timeouts are checked (Redis's `hz 10`).
const CRON_INTERVAL: Duration = Duration::from_millis(100);

pub struct Server {
    broker: Arc<Broker>,
    listeners: Vec<Listener>,
    /// The `metrics-addr` listener, when metrics are on.
    metrics: Option<TcpListener>,
    /// The `http-port` listeners (SSE, WebSocket, HTTP publish, dashboard).
    http: Vec<TcpListener>,
    http_tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
}

fn listen(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        // `bind ::` should not also claim IPv4, so `bind 0.0.0.0 ::` works as in Redis.
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    TcpListener::from_std(socket.into())
}

/// Binds every address of `binds` (`bind`'s syntax) on `port`.
fn listen_all(binds: Vec<String>, port: u16, backlog: i32) -> io::Result<Vec<TcpListener>> {
    let mut listeners: Vec<TcpListener> = Vec::new();
    for host in binds {
        // Redis accepts a leading `-` meaning "skip if unavailable".
        let (optional, host) = match host.strip_prefix('-') {
            Some(h) => (true, h.to_string()),
            None => (false, host),
        };
        let ip: IpAddr = match host.as_str() {
            "*" => IpAddr::from([0, 0, 0, 0]),
            "::*" => "::".parse().unwrap(),
            h => h
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("invalid bind address '{h}'")))?,
        };
        // With port 0 every listener after the first reuses the first one's port.
        let p = listeners
            .first()
            .map_or(port, |l: &TcpListener| l.local_addr().map_or(port, |a| a.port()));
        match listen(SocketAddr::new(ip, p), backlog) {
            Ok(l) => listeners.push(l),
            Err(e) if optional => tracing::warn!("could not bind {host}:{p}: {e}"),
            Err(e) => return Err(io::Error::new(e.kind(), format!("could not bind {host}:{p}: {e}"))),
        }
    }
    Ok(listeners)
}

impl Server {
    /// Binds every `bind` address on `port`, and on `tls-port` when TLS is on. Fails if
    /// any cannot be bound, or if the TLS files are missing or unusable.
    ///
    /// As in Redis, `port 0` with a non-zero `tls-port` serves TLS only. `port 0` alone
    /// picks a free port; `port 0` with `tls-port 0` and a `tls-cert-file` picks a free
    /// port for each (for tests and embedding).
    pub async fn bind(settings: Arc<Settings>, config_file: Option<std::path::PathBuf>) -> io::Result<Server> {
        let port = settings.port();
        let tls_port: u16 = settings.get("tls-port").and_then(|p| p.parse().ok()).unwrap_or(0);
        let tls_on = tls_port != 0 || (port == 0 && settings.get("tls-cert-file").is_some_and(|f| !f.is_empty()));
        let backlog: i32 = settings.get("tcp-backlog").and_then(|b| b.parse().ok()).unwrap_or(511);
        let tls = if tls_on {
            let ctx = tls::TlsContext::from_settings(&settings)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            Some(ctx)
        } else {
            None
        };
        let listeners = if port != 0 || tls_port == 0 {
            listen_all(settings.binds(), port, backlog)?
        } else {
            Vec::new()
        };
        let tls_listeners = match &tls {
            Some(_) => listen_all(settings.binds(), tls_port, backlog)?,
            None => Vec::new(),
        };
        let metrics = match settings.get("metrics-addr").filter(|a| !a.is_empty()) {
            Some(addr) => Some(
                TcpListener::bind(addr.as_str())
                    .await
                    .map_err(|e| io::Error::new(e.kind(), format!("could not bind metrics-addr {addr}: {e}")))?,
            ),
            None => None,
        };
        let http_port: u16 = settings.get("http-port").and_then(|p| p.parse().ok()).unwrap_or(0);
        let http = if http_port == 0 {
            Vec::new()
        } else {
            let binds = settings.get("http-bind").filter(|b| !b.is_empty()).map_or_else(
                || settings.binds(),
                |b| b.split_ascii_whitespace().map(str::to_string).collect(),
            );
            listen_all(binds, http_port, backlog)?
        };
        let http_tls = if settings.get("http-tls").as_deref() == Some("yes") {
            let ctx =
                tls::TlsContext::for_http(&settings).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            Some(ctx.acceptor())
        } else {
            None
        };
        let mut listeners: Vec<Listener> = listeners.into_iter().map(Listener::Tcp).collect();
        if let Some(ctx) = &tls {
            listeners.extend(tls_listeners.into_iter().map(|l| Listener::Tls(l, ctx.clone())));
        }
        if let Some(path) = settings.get("unixsocket").filter(|p| !p.is_empty()) {
            let perm = settings.get("unixsocketperm").unwrap_or_default();
            let l = transport::bind_unix(&path, &perm)
                .map_err(|e| io::Error::new(e.kind(), format!("could not bind unixsocket {path}: {e}")))?;
            listeners.push(l);
        }
        // Cluster mode finds this node in the topology by its announced address and the
        // port it actually listens on.
        let bound_port = listeners.iter().find_map(Listener::tcp_addr).map_or(port, |a| a.port());
        let cluster = crate::cluster::Cluster::from_settings(&settings, bound_port)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let broker = Broker::new(settings, config_file, cluster);
        broker
            .attach_bus()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        broker
            .acl
            .load_at_startup(&*broker)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        // The append-only file is replayed before any connection is accepted.
        crate::commands::open_aof_at_start(&broker).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if let Some(addr) = listeners.iter().find_map(Listener::tcp_addr) {
            broker.tcp_port.store(addr.port() as u64, Relaxed);
        }
        Ok(Server {
            broker,
            listeners,
            metrics,
            http,
            http_tls,
            shutdown: CancellationToken::new(),
        })
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().filter_map(Listener::tcp_addr).collect()
    }

    /// The TLS listeners' addresses (empty when `tls-port` is off).
    pub fn tls_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| match l {
                Listener::Tls(l, _) => l.local_addr().ok(),
                _ => None,
            })
            .collect()
    }

    /// The HTTP listener's addresses (empty when `http-port` is 0).
    pub fn http_addrs(&self) -> Vec<SocketAddr> {
        self.http.iter().filter_map(|l| l.local_addr().ok()).collect()
    }

    /// Where `GET /metrics` is served, when `metrics-addr` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Serves until `stop` resolves or a client sends SHUTDOWN, then shuts down
    /// gracefully.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let tracker = TaskTracker::new();
        let accept_stop = CancellationToken::new();
        let unix_paths: Vec<std::path::PathBuf> = self
            .listeners
            .iter()
            .filter_map(|l| match l {
                Listener::Unix(_, p) => Some(p.clone()),
                _ => None,
            })
            .collect();
        for listener in self.listeners {
            tokio::spawn(accept_loop(
                listener,
                self.broker.clone(),
                accept_stop.clone(),
                self.shutdown.clone(),
                tracker.clone(),
            ));
        }
        tokio::spawn(cron(self.broker.clone(), accept_stop.clone()));
        let bus_stop = CancellationToken::new();
        if let Some(bus) = self.broker.cluster.bus() {
            bus.run(bus_stop.clone());
        }
        if self.broker.cluster.enabled {
            tokio::spawn(reload_on_sighup(self.broker.clone(), accept_stop.clone()));
            if self.broker.cluster.bus().is_none() {
                tracing::warn!("cluster-enabled yes without cluster-bus: PUBLISH reaches this node's subscribers only, and other nodes' failures go unseen");
            }
        }
        let web = crate::web::Web {
            broker: self.broker.clone(),
            metrics: Arc::new(crate::metrics::registry(self.broker.clone())),
            tracker: tracker.clone(),
        };
        if let Some(listener) = self.metrics {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!("serving Prometheus metrics at http://{addr}/metrics");
            }
            tokio::spawn(crate::web::serve(
                listener,
                None,
                crate::web::metrics_router(web.clone()),
                self.broker.clone(),
                false,
                accept_stop.clone(),
                self.shutdown.clone(),
                tracker.clone(),
            ));
        }
        let router = crate::web::router(web);
        for listener in self.http {
            if let Ok(addr) = listener.local_addr() {
                let scheme = if self.http_tls.is_some() { "https" } else { "http" };
                tracing::info!("serving SSE, WebSocket, HTTP publish and the dashboard at {scheme}://{addr}/");
            }
            tokio::spawn(crate::web::serve(
                listener,
                self.http_tls.clone(),
                router.clone(),
                self.broker.clone(),
                true,
                accept_stop.clone(),
                self.shutdown.clone(),
                tracker.clone(),
            ));
        }
        // SIGTERM (through `stop`) and SHUTDOWN take the same path.
        tokio::select! {
            _ = stop => {}
            _ = self.broker.shutdown.cancelled() => {}
        }
        // What SHUTDOWN cancels, `stop` cancels too: SSE streams, stream followers and
        // WebSocket connections end on it (they would otherwise hold their connection
        // until the drain's timeout cuts it).
        self.broker.shutdown.cancel();

        tracing::info!("shutting down: no longer accepting, draining connections");
        accept_stop.cancel();
        self.shutdown.cancel();
        // Webhook deliveries end now: shutdown never waits on a receiver.
        self.broker.webhooks.shutdown();
        tracker.close();
        let grace = Duration::from_secs(self.broker.settings.shutdown_timeout.load(Relaxed));
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!("output still queued after {grace:?}; closing the remaining connections");
            for c in self.broker.clients.all() {
                c.outbox.kill();
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await;
        }
        for l in &unix_paths {
            let _ = std::fs::remove_file(l);
        }
        bus_stop.cancel();
        // What the journal holds goes to disk and is synced before the process ends.
        self.broker.aof.turn_off();
        tracing::info!("fanout is now ready to exit, bye bye...");
    }

    /// Starts serving in the background (for tests and embedding). Dropping or
    /// cancelling the returned token shuts the server down.
    pub fn spawn(self) -> (Vec<SocketAddr>, Arc<Broker>, CancellationToken) {
        let addrs = self.local_addrs();
        let broker = self.broker.clone();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(self.run(async move { stopped.cancelled().await }));
        (addrs, broker, stop)
    }
}

async fn accept_loop(
    listener: Listener,
    broker: Arc<Broker>,
    stop: CancellationToken,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept(&broker) => r,
        };
        let conn = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // Typically EMFILE/ENFILE: back off so we do not spin, then keep serving.
                tracing::error!("accept failed: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Counted here, at accept, not when the connection's task registers itself: a
        // burst of connections must not slip past maxclients before their tasks run.
        let refusal: Option<&'static [u8]> = if !broker.clients.reserve_slot(broker.settings.maxclients.load(Relaxed)) {
            Stats::add(&broker.stats.rejected_connections, 1);
            Some(b"-ERR max number of clients reached\r\n")
        } else if broker.settings.protected_mode.load(Relaxed) && broker.acl.default_nopass() && !conn.is_local() {
            tracing::warn!(addr = %conn.peer(), "refused a non-loopback client: protected mode is on and no password is set");
            broker.clients.release_slot();
            Some(DENIED.as_slice())
        } else {
            None
        };
        // Ids are handed out here, in accept order, as Redis does.
        let id = if refusal.is_some() {
            0
        } else {
            broker.next_client_id.fetch_add(1, Relaxed)
        };
        // A child token: each connection waits on its own node, so connections do not all
        // contend for the server-wide token's lock every time they go idle.
        let (broker, shutdown, t) = (broker.clone(), shutdown.child_token(), tracker.clone());
        macro_rules! serve {
            ($conn:expr) => {
                if let Some(line) = refusal {
                    tokio::spawn(transport::refuse($conn.wr, line));
                } else {
                    // A debug span: entering and leaving an enabled span on every poll
                    // takes the log filter's locks, shared by both workers (4% of the
                    // server's time with 100 busy subscribers); the warnings a connection
                    // logs name the client themselves.
                    let span = tracing::debug_span!("conn", client = id, addr = %$conn.peer);
                    tracker.spawn(conn::serve(broker, id, $conn, shutdown, t).instrument(span));
                }
            };
        }
        match conn {
            Conn::Tcp(c) => serve!(c),
            Conn::Unix(c) => serve!(c),
            // The handshake runs in the connection's task, never in this loop.
            Conn::Tls(c) => match refusal {
                Some(line) => {
                    tokio::spawn(c.refuse(line));
                }
                None => {
                    let span = tracing::debug_span!("conn", client = id, addr = %c.peer, tls = true);
                    let serve = async move {
                        match c.handshake(&shutdown).await {
                            Some(c) => conn::serve(broker, id, c, shutdown, t).await,
                            // serve() gives the slot back when a connection ends; this one never started.
                            None => broker.clients.release_slot(),
                        }
                    };
                    tracker.spawn(serve.instrument(span));
                }
            },
        }
    }
}

/// A connection just accepted, of either kind.
enum Conn {
    Tcp(transport::TcpConn),
    Unix(transport::UnixConn),
    /// On a TLS port, before its handshake.
    Tls(tls::PendingTls),
}

impl Conn {
    fn peer(&self) -> &str {
        match self {
            Conn::Tcp(c) => &c.peer,
            Conn::Unix(c) => &c.peer,
            Conn::Tls(c) => &c.peer,
        }
    }

    /// Loopback or Unix socket: who protected mode still serves.
    fn is_local(&self) -> bool {
        let peer = match self {
            Conn::Tcp(c) => &c.peer,
            Conn::Tls(c) => &c.peer,
            Conn::Unix(_) => return true,
        };
        peer.parse::<SocketAddr>().is_ok_and(|a| match a.ip() {
            IpAddr::V4(ip) => ip.is_loopback(),
            IpAddr::V6(ip) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        })
    }
}

/// Redis's protected-mode refusal as a RESP error line.
static DENIED: std::sync::LazyLock<Vec<u8>> =
    std::sync::LazyLock::new(|| format!("-{}\r\n", crate::commands::errors::PROTECTED_MODE).into_bytes());

impl Listener {
    fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(..) | Listener::Tls(..) => None,
        }
    }

    async fn accept(&self, broker: &Broker) -> io::Result<Conn> {
        match self {
            Listener::Tcp(l) => {
                let (stream, _) = l.accept().await?;
                Ok(Conn::Tcp(transport::tcp(
                    stream,
                    broker.settings.tcp_keepalive.load(Relaxed),
                )))
            }
            Listener::Unix(l, path) => {
                let (stream, _) = l.accept().await?;
                Ok(Conn::Unix(transport::unix(stream, path)))
            }
            Listener::Tls(l, ctx) => {
                let (stream, _) = l.accept().await?;
                let keepalive = broker.settings.tcp_keepalive.load(Relaxed);
                Ok(Conn::Tls(tls::pending(stream, keepalive, ctx.clone())))
            }
        }
    }
}

/// Periodic checks, as Redis's clientsCron: clients that have stayed over their soft
/// output limit too long are closed even when no new message arrives to trigger the
/// check, and idle clients are closed when `timeout` is set.
async fn cron(broker: Arc<Broker>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(CRON_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rates = crate::stats::RateSampler::default();
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        rates.sample(&broker.stats);
        // Active expiry, in bounded steps so that no tick holds the keyspace long.
        crate::commands::expire_cycle(&broker);
        broker.aof.cron();
        broker.cluster.refresh_state(&broker.settings);
        // used_memory walks the keyspace: every tick while maxmemory needs it fresh,
        // else once a second (INFO and /metrics measure for themselves).
        ticks = ticks.wrapping_add(1);
        if broker.settings.maxmemory.load(Relaxed) > 0 || ticks.is_multiple_of(10) {
            broker.measure_memory();
        }
        let timeout = broker.settings.timeout.load(Relaxed);
        for c in broker.clients.all() {
            if c.outbox.soft_limit_expired(&broker.settings) {
                Stats::add(&broker.stats.obuf_limit_disconnections, 1);
                c.outbox.kill_for_overflow();
                broker.clients.remove(c.id());
            } else if timeout > 0 && !c.is_pubsub() && !c.info.locked().blocked {
                let idle = c.info.locked().last_active.elapsed();
                if idle.as_secs() >= timeout {
                    tracing::debug!(client = c.id(), "closing idle client (timeout)");
                    Stats::add(&broker.stats.timeout_disconnections, 1);
                    broker.clients.kill(&c);
                }
            }
            if c.outbox.dropped.load(Relaxed) > 0 && !c.outbox.drop_logged.swap(true, Relaxed) {
                if let Some(held_back) = OVERFLOW_LOG.allow() {
                    tracing::warn!(
                        client = c.id(),
                        name = %c.name_lossy(),
                        addr = %c.peer,
                        policy = c.outbox.policy(&broker.settings).name(),
                        held_back,
                        "client's output buffer is full: dropping messages for it"
                    );
                }
            }
        }
    }
}

/// SIGHUP rereads the cluster topology file, as CLUSTER RELOAD does.
async fn reload_on_sighup(broker: Arc<Broker>, stop: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = hup.recv() => if r.is_none() { return },
        }
        match broker.cluster_reload() {
            Ok(()) => tracing::info!("SIGHUP: cluster topology reread"),
            Err(e) => tracing::error!("SIGHUP: the cluster topology could not be reread, the old one stays: {e}"),
        }
    }
}
