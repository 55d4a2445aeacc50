//! The shared server context: everything the connections share, one per server.
//!
//! It sits above the parts it holds (settings, ACL, counters, the pub/sub registry, the
//! client table) and does what needs more than one of them: disconnecting the
//! subscribers whose channels an ACL change revoked.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::acl::{channel_allowed, Revoker, User};
use crate::client::monitors::Monitors;
use crate::client::pause::Pause;
use crate::client::{ClientHandle, ClientTable};
use crate::config::Settings;
use crate::keyspace::watch::WatchTable;
use crate::keyspace::Keyspace;
use crate::pubsub::registry::Subscribers;
use crate::pubsub::{Namespace, Registry};
use crate::spec::{Flags, Spec};
use crate::stats::latency::LatencyMonitor;
use crate::stats::slowlog::SlowLog;
use crate::stats::{Figure, Stats};
use crate::sync::LockExt;

/// Everything the connections share. One per server.
pub struct Broker {
    pub settings: Arc<Settings>,
    /// Users and their permissions.
    pub acl: crate::acl::Acl,
    pub stats: Arc<Stats>,
    /// Shared with the webhooks, which subscribe and unsubscribe from their own tasks.
    pub registry: Arc<Registry>,
    /// WEBHOOK: push subscriptions delivering over HTTP.
    pub webhooks: Arc<crate::webhook::Webhooks>,
    pub clients: ClientTable,
    pub next_client_id: AtomicU64,
    pub started: Instant,
    /// A random 40-hex-digit id for this run (INFO `run_id`).
    pub run_id: String,
    pub config_file: Option<PathBuf>,
    /// Ports actually bound (INFO `tcp_port`).
    pub tcp_port: AtomicU64,
    /// MONITOR clients.
    pub monitors: Monitors,
    /// CLIENT PAUSE.
    pub pause: Pause,
    /// WATCHed keys.
    pub watches: Arc<WatchTable>,
    /// The databases, behind the one keyspace lock (see [`crate::keyspace`]).
    pub keyspace: Arc<parking_lot::Mutex<Keyspace>>,
    /// Held shared by each PUBLISH and exclusively by an EXEC that publishes, so a
    /// transaction's messages reach each subscriber with nothing from other clients in
    /// between. Never held across an `.await`.
    pub publish_gate: RwLock<()>,
    /// Cancelled by SHUTDOWN: the server then stops as on SIGTERM.
    pub shutdown: CancellationToken,
    pub slowlog: SlowLog,
    pub latency: LatencyMonitor,
    /// RSS when the server started and the largest seen (MEMORY STATS).
    pub startup_rss: AtomicU64,
    pub peak_rss: AtomicU64,
    /// What fanout holds, as INFO `used_memory` reports it: the memory at start, the
    /// keyspace and the clients' buffers. Refreshed by the cron ([`Broker::measure_memory`]),
    /// read by the maxmemory check on every write.
    pub used_memory: AtomicU64,
    /// The keyspace's part of `used_memory` (MEMORY STATS `dataset.bytes`).
    pub dataset_bytes: AtomicU64,
    /// The append-only file (off unless `appendonly yes`).
    pub aof: crate::persistence::Aof,
    /// Cluster mode (topology, routing) and the bus to other nodes.
    pub cluster: crate::cluster::Cluster,
}

impl Broker {
    pub fn new(settings: Arc<Settings>, config_file: Option<PathBuf>, cluster: crate::cluster::Cluster) -> Arc<Broker> {
        let stats = Arc::new(Stats::default());
        let watches = Arc::new(WatchTable::default());
        let keyspace = Arc::new(parking_lot::Mutex::new(Keyspace::new(
            settings.clone(),
            watches.clone(),
        )));
        let registry = Arc::new(Registry::new(settings.clone(), stats.clone()));
        let webhooks = Arc::new(crate::webhook::Webhooks::new(registry.clone()));
        let aof = crate::persistence::Aof::new(keyspace.clone(), settings.clone());
        // The AOF rewrite writes the webhooks after the keyspace, read at its snapshot.
        let defs = webhooks.clone();
        aof.set_rewrite_extra(Box::new(move || defs.definitions()));
        Arc::new(Broker {
            registry,
            webhooks,
            acl: crate::acl::Acl::new(settings.clone()),
            stats,
            clients: ClientTable::default(),
            next_client_id: AtomicU64::new(1),
            started: Instant::now(),
            run_id: run_id(),
            config_file,
            tcp_port: AtomicU64::new(0),
            monitors: Monitors::default(),
            pause: Pause::default(),
            watches,
            keyspace: keyspace.clone(),
            publish_gate: RwLock::new(()),
            shutdown: CancellationToken::new(),
            slowlog: SlowLog::default(),
            latency: LatencyMonitor::default(),
            startup_rss: AtomicU64::new(crate::stats::process_usage().0),
            peak_rss: AtomicU64::new(0),
            used_memory: AtomicU64::new(0),
            dataset_bytes: AtomicU64::new(0),
            aof,
            cluster,
            settings,
        })
    }

    /// Sets up the cluster bus, when `cluster-bus` is set (it connects once the server
    /// runs): messages from other nodes enter the local fan-out path, and the registry
    /// reports channels coming and going so the bus subscribes on NATS only to what
    /// local subscribers want.
    pub fn attach_bus(self: &Arc<Self>) -> Result<(), String> {
        let me = self.cluster.topology();
        let (id, name) = match &me {
            Some(t) => (t.me().id.clone(), format!("fanout {}", t.me().addr())),
            None => (self.run_id.clone(), format!("fanout {}", self.run_id)),
        };
        let Some(bus) = crate::cluster::bus::Bus::from_settings(&self.settings, &id, &name)? else {
            return Ok(());
        };
        if let Some(t) = &me {
            bus.set_topology(&t.digest, t.my_shard().nodes.len() > 1);
        }
        bus.set_sink(Arc::new(BusSink {
            broker: Arc::downgrade(self),
            batch: parking_lot::Mutex::new(crate::pubsub::Batch::default()),
        }));
        self.registry.set_interest(bus.clone());
        let _ = self.cluster.bus.set(bus);
        Ok(())
    }
}

impl Broker {
    /// CLUSTER RELOAD and SIGHUP: reread the topology file; connections subscribed to
    /// shard channels check whether their slots are still served here.
    pub fn cluster_reload(&self) -> Result<(), String> {
        let (t, changed) = self.cluster.reload()?;
        if let Some(bus) = self.cluster.bus() {
            bus.set_topology(&t.digest, t.my_shard().nodes.len() > 1);
        }
        if changed {
            for c in self.clients.all() {
                if c.info.locked().ssub > 0 {
                    c.recheck.notify_one();
                }
            }
        }
        Ok(())
    }
}

/// Messages from the bus: delivered as a local PUBLISH is (encoded once, output limits,
/// overflow policies), with the writers woken once per burst.
struct BusSink {
    broker: std::sync::Weak<Broker>,
    batch: parking_lot::Mutex<crate::pubsub::Batch>,
}

impl crate::cluster::bus::Deliver for BusSink {
    fn deliver(&self, ns: Namespace, channel: &[u8], payload: &[u8]) {
        let Some(broker) = self.broker.upgrade() else {
            return;
        };
        let _gate = broker.publish_gate.read().unwrap_or_else(|e| e.into_inner());
        let mut to_self = Vec::new();
        broker
            .registry
            .publish(ns, channel, payload, 0, &mut to_self, &mut self.batch.lock());
    }

    fn batch_end(&self) {
        if let Some(broker) = self.broker.upgrade() {
            broker.registry.end_batch(&mut self.batch.lock());
        }
    }
}

impl Broker {
    /// Disconnects `clients`, except `me`; returns whether `me` was one of them.
    fn disconnect(&self, clients: impl Iterator<Item = Arc<ClientHandle>>, me: u64, user: &User, why: &str) -> bool {
        let mut killed_me = false;
        for c in clients {
            tracing::info!(client = c.id(), user = %user, addr = %c.peer, "disconnecting client: {why}");
            if c.id() == me {
                killed_me = true;
            } else {
                self.clients.kill(&c);
            }
        }
        killed_me
    }
}

impl Broker {
    /// After a command ran for `usec`: the slow log and the latency monitor, as Redis's
    /// `call` feeds them. Costs two relaxed loads when the command was fast. `args` are
    /// already redacted ([`Spec::redacted`]).
    pub fn record_call(&self, spec: &Spec, args: &[Bytes], usec: u64, client: &ClientHandle) {
        let s = &self.settings;
        let slower_than = s.slowlog_slower_than.load(Relaxed);
        if slower_than >= 0 && usec >= slower_than as u64 && !spec.has(Flags::SKIP_SLOWLOG) {
            let shown = args;
            let name = client.info.locked().name.clone().unwrap_or_default();
            let max = s.slowlog_max_len.load(Relaxed) as usize;
            self.slowlog.record(slower_than, max, usec, shown, &client.peer, name);
        }
        let threshold = s.latency_threshold_ms.load(Relaxed);
        if threshold > 0 {
            let event = if spec.has(Flags::FAST) {
                "fast-command"
            } else {
                "command"
            };
            self.latency.add_if_needed(threshold, event, usec / 1000);
        }
    }
}

impl Broker {
    /// Recomputes `used_memory` (the cron, every tick; INFO and MEMORY STATS).
    pub fn measure_memory(&self) -> u64 {
        self.measure_memory_in(&self.keyspace.lock())
    }

    /// [`Broker::measure_memory`] with the keyspace already in hand (a session reads it
    /// through `with_keys`: inside EXEC it holds the lock already).
    pub fn measure_memory_in(&self, ks: &Keyspace) -> u64 {
        let dataset = ks.dataset_bytes() as u64;
        let clients: u64 = self.clients.all().iter().map(|c| c.outbox.usage().0 as u64).sum();
        // The journal's bytes the AOF writer has not taken (a slow disk) count too, as
        // Redis counts its AOF buffer.
        let journal = ks.journal.pending_len() as u64;
        let used = self.startup_rss.load(Relaxed) + dataset + clients + journal;
        self.dataset_bytes.store(dataset, Relaxed);
        self.used_memory.store(used, Relaxed);
        used
    }

    /// Above `maxmemory` (never when it is 0): writes that add data are refused.
    pub fn over_maxmemory(&self) -> bool {
        let max = self.settings.maxmemory.load(Relaxed);
        max > 0 && self.used_memory.load(Relaxed) > max
    }

    /// MEMORY STATS under Redis's field names and order. There is no allocator
    /// accounting: the allocator figures are the process RSS (as INFO `used_memory`),
    /// so their ratios are 1; the client buffers are what the outboxes hold, pub/sub
    /// subscribers' included (Redis counts those under `clients.normal` too).
    pub fn memory_figures(&self, ks: &Keyspace) -> Vec<(&'static str, Figure)> {
        use Figure::{Bytes as B, Ratio as R};
        let (rss, _, _) = crate::stats::process_usage();
        let peak = self.peak_rss.fetch_max(rss, Relaxed).max(rss);
        let clients: u64 = self.clients.all().iter().map(|c| c.outbox.usage().0 as u64).sum();
        let startup = self.startup_rss.load(Relaxed);
        let overhead = startup + clients;
        self.measure_memory_in(ks);
        let dataset = self.dataset_bytes.load(Relaxed);
        let (keys, _) = ks.key_counts();
        let pct = |part: u64, whole: u64| {
            if whole == 0 {
                0.0
            } else {
                part as f32 * 100.0 / whole as f32
            }
        };
        vec![
            ("peak.allocated", B(peak)),
            ("total.allocated", B(rss)),
            ("startup.allocated", B(startup)),
            ("replication.backlog", B(0)),
            ("clients.slaves", B(0)),
            ("clients.normal", B(clients)),
            ("cluster.links", B(0)),
            ("aof.buffer", B(0)),
            ("lua.caches", B(0)),
            ("functions.caches", B(0)),
            ("overhead.total", B(overhead)),
            ("keys.count", B(keys)),
            ("keys.bytes-per-key", B(dataset.checked_div(keys).unwrap_or(0))),
            ("dataset.bytes", B(dataset)),
            ("dataset.percentage", R(pct(dataset, rss.saturating_sub(startup)))),
            ("peak.percentage", R(pct(rss, peak))),
            ("allocator.allocated", B(rss)),
            ("allocator.active", B(rss)),
            ("allocator.resident", B(rss)),
            ("allocator-fragmentation.ratio", R(1.0)),
            ("allocator-fragmentation.bytes", B(0)),
            ("allocator-rss.ratio", R(1.0)),
            ("allocator-rss.bytes", B(0)),
            ("rss-overhead.ratio", R(1.0)),
            ("rss-overhead.bytes", B(0)),
            ("fragmentation", R(1.0)),
            ("fragmentation.bytes", B(0)),
        ]
    }
}

impl Revoker for Broker {
    /// Walks the registry's channels, shard channels and patterns that `allowed` refuses
    /// and disconnects the user's connections found there (see `crate::acl` for why a
    /// scan rather than a per-client copy of subscriptions).
    fn revoke_channels(&self, user: &Arc<User>, allowed: &[Bytes], me: u64) -> bool {
        // The user's connections that hold subscriptions: the only ones to look for.
        let suspects: HashMap<u64, Arc<ClientHandle>> = self
            .clients
            .all()
            .into_iter()
            .filter(|c| c.is_pubsub() && Arc::ptr_eq(&c.info.locked().user, user))
            .map(|c| (c.id(), c))
            .collect();
        if suspects.is_empty() {
            return false;
        }
        let mut doomed = HashSet::new();
        let mut check = |name: &[u8], subs: &Subscribers, is_pattern: bool| {
            if !channel_allowed(allowed, name, is_pattern) {
                doomed.extend(subs.iter().map(|s| s.id).filter(|id| suspects.contains_key(id)));
            }
        };
        let reg = &self.registry;
        reg.for_each_channel(Namespace::Global, |ch, subs| check(ch, subs, false));
        reg.for_each_channel(Namespace::Shard, |ch, subs| check(ch, subs, false));
        reg.patterns.for_each(|p, subs| check(p, subs, true));
        let doomed = doomed.into_iter().filter_map(|id| suspects.get(&id).cloned());
        self.disconnect(doomed, me, user, "its user's channel permissions were revoked")
    }

    fn disconnect_user(&self, user: &Arc<User>, me: u64) -> bool {
        let theirs = self
            .clients
            .all()
            .into_iter()
            .filter(|c| Arc::ptr_eq(&c.info.locked().user, user));
        self.disconnect(theirs, me, user, "its user was deleted")
    }
}

/// 40 hex digits that differ between runs. Not security-sensitive: it only tells runs apart.
fn run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(40);
    while out.len() < 40 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(40);
    out
}
