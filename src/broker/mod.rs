//! Subscriptions and delivery: who receives a message and how it is queued for them.
//!
//! * [`Registry`]: channel, shard-channel and pattern subscriptions, and PUBLISH.
//! * [`patterns::PatternIndex`]: patterns filed by literal prefix.
//! * [`glob`]: Redis's glob matcher, byte for byte.
//! * [`Outbox`]: one per connection; the single ordered, byte-counted output path.
//! * [`run`]: a batch's repeated publishes to one channel, queued once per subscriber.
//! * [`ClientTable`]: who is connected, for CLIENT LIST/KILL and INFO.

pub mod clients;
pub mod glob;
pub mod outbox;
pub mod patterns;
pub mod registry;
pub mod run;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

pub use clients::{ClientHandle, ClientTable};
pub use outbox::Outbox;
pub use registry::{Namespace, Registry};
pub use run::Batch;

use crate::config::Settings;
use crate::stats::Stats;

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
