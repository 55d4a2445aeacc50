//! The shared server context: everything the connections share, one per server.
//!
//! It sits above the parts it holds (settings, ACL, counters, the pub/sub registry, the
//! client table) and does what needs more than one of them: disconnecting the
//! subscribers whose channels an ACL change revoked.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::acl::{channel_allowed, Revoker, User};
use crate::client::{ClientHandle, ClientTable};
use crate::config::Settings;
use crate::pubsub::registry::Subscribers;
use crate::pubsub::{Namespace, Registry};
use crate::stats::Stats;
use crate::sync::LockExt;

/// Everything the connections share. One per server.
pub struct Broker {
    pub settings: Arc<Settings>,
    /// Users and their permissions.
    pub acl: crate::acl::Acl,
    pub stats: Arc<Stats>,
    pub registry: Registry,
    pub clients: ClientTable,
    pub next_client_id: AtomicU64,
    pub started: Instant,
    /// A random 40-hex-digit id for this run (INFO `run_id`).
    pub run_id: String,
    pub config_file: Option<PathBuf>,
    /// Ports actually bound (INFO `tcp_port`).
    pub tcp_port: AtomicU64,
}

impl Broker {
    pub fn new(settings: Arc<Settings>, config_file: Option<PathBuf>) -> Arc<Broker> {
        let stats = Arc::new(Stats::default());
        Arc::new(Broker {
            registry: Registry::new(settings.clone(), stats.clone()),
            acl: crate::acl::Acl::new(settings.clone()),
            settings,
            stats,
            clients: ClientTable::default(),
            next_client_id: AtomicU64::new(1),
            started: Instant::now(),
            run_id: run_id(),
            config_file,
            tcp_port: AtomicU64::new(0),
        })
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
