//! The listener, the periodic client checks and shutdown.
//!
//! An accept error (out of file descriptors, say) is logged and retried after a short
//! pause, never fatal. Shutdown stops accepting, asks every connection to send what it
//! has queued and close, waits up to `shutdown-timeout` for that, then drops the rest.

pub mod connection;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::config::Settings;
use crate::stats::Stats;

pub use crate::logging::set_log_level;

/// Overflow warnings (disconnects and first drops) share one budget of lines a second.
pub(crate) static OVERFLOW_LOG: crate::logging::RateLimit = crate::logging::RateLimit::new(10);

/// How often soft output limits and idle timeouts are checked (Redis's `hz 10`).
const CRON_INTERVAL: Duration = Duration::from_millis(100);

pub struct Server {
    broker: Arc<Broker>,
    listeners: Vec<TcpListener>,
    /// The `metrics-addr` listener, when metrics are on.
    metrics: Option<TcpListener>,
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

/// Applies `tcp-keepalive` (seconds; 0 leaves keepalive off).
pub(crate) fn set_keepalive(stream: &TcpStream, secs: u64) {
    if secs > 0 {
        let ka = socket2::TcpKeepalive::new().with_time(Duration::from_secs(secs));
        let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&ka);
    }
}

impl Server {
    /// Binds every `bind` address on `port`. Fails if any cannot be bound.
    pub async fn bind(settings: Arc<Settings>, config_file: Option<std::path::PathBuf>) -> io::Result<Server> {
        let port = settings.port();
        let backlog: i32 = settings.get("tcp-backlog").and_then(|b| b.parse().ok()).unwrap_or(511);
        let mut listeners = Vec::new();
        for host in settings.binds() {
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
        let metrics = match settings.get("metrics-addr").filter(|a| !a.is_empty()) {
            Some(addr) => Some(
                TcpListener::bind(addr.as_str())
                    .await
                    .map_err(|e| io::Error::new(e.kind(), format!("could not bind metrics-addr {addr}: {e}")))?,
            ),
            None => None,
        };
        let broker = Broker::new(settings, config_file);
        if let Some(l) = listeners.first() {
            broker.tcp_port.store(l.local_addr()?.port() as u64, Relaxed);
        }
        Ok(Server {
            broker,
            listeners,
            metrics,
            shutdown: CancellationToken::new(),
        })
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().filter_map(|l| l.local_addr().ok()).collect()
    }

    /// Where `GET /metrics` is served, when `metrics-addr` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Serves until `stop` resolves, then shuts down gracefully.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let tracker = TaskTracker::new();
        let accept_stop = CancellationToken::new();
        let hard_stop = CancellationToken::new();
        for listener in self.listeners {
            tokio::spawn(accept_loop(
                listener,
                self.broker.clone(),
                accept_stop.clone(),
                self.shutdown.clone(),
                hard_stop.clone(),
                tracker.clone(),
            ));
        }
        tokio::spawn(cron(self.broker.clone(), accept_stop.clone()));
        if let Some(listener) = self.metrics {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!("serving Prometheus metrics at http://{addr}/metrics");
            }
            let registry = crate::metrics::registry(self.broker.clone());
            tokio::spawn(crate::metrics::http::serve(listener, registry, accept_stop.clone()));
        }
        stop.await;

        tracing::info!("shutting down: no longer accepting, draining connections");
        accept_stop.cancel();
        self.shutdown.cancel();
        tracker.close();
        let grace = Duration::from_secs(self.broker.settings.shutdown_timeout.load(Relaxed));
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!("output still queued after {grace:?}; closing the remaining connections");
            for c in self.broker.clients.all() {
                c.outbox.kill();
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await;
        }
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
    listener: TcpListener,
    broker: Arc<Broker>,
    stop: CancellationToken,
    shutdown: CancellationToken,
    hard_stop: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _)) => {
                if broker.clients.len() as u64 >= broker.settings.maxclients.load(Relaxed) {
                    Stats::add(&broker.stats.rejected_connections, 1);
                    tokio::spawn(async move {
                        let mut stream = stream;
                        let _ = tokio::time::timeout(
                            Duration::from_secs(1),
                            stream.write_all(b"-ERR max number of clients reached\r\n"),
                        )
                        .await;
                    });
                    continue;
                }
                // Ids are handed out here, in accept order, as Redis does.
                let id = broker.next_client_id.fetch_add(1, Relaxed);
                tracker.spawn(connection::serve(
                    broker.clone(),
                    id,
                    stream,
                    shutdown.clone(),
                    hard_stop.clone(),
                    tracker.clone(),
                ));
            }
            Err(e) => {
                // Typically EMFILE/ENFILE: back off so we do not spin, then keep serving.
                tracing::error!("accept failed: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
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
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let timeout = broker.settings.timeout.load(Relaxed);
        for c in broker.clients.all() {
            if c.outbox.soft_limit_expired(&broker.settings) {
                Stats::add(&broker.stats.obuf_limit_disconnections, 1);
                c.outbox.kill_for_overflow();
                broker.clients.remove(c.id());
            } else if timeout > 0 && !c.is_pubsub() {
                let idle = c.info.lock().unwrap().last_active.elapsed();
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
