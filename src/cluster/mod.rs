//! Several fanout nodes as one Redis Cluster for clients, with NATS as the only link
//! between them.
//!
//! * [`topology`]: the operator's file (shards, slots, primaries, replicas). It is the
//!   same on every node and fanout never changes it: no gossip, no elections, no slot
//!   migration. SIGHUP or CLUSTER RELOAD rereads it.
//! * [`slots`]: CRC16 hash slots, as every cluster client computes them.
//! * [`Cluster::route`]: the dispatch stage that answers `-MOVED`/`-CROSSSLOT` for keyed
//!   commands and shard channels, as Redis's `getNodeByQuery` does.
//! * [`bus`]: PUBLISH (and SPUBLISH within a shard) to the other nodes over core NATS,
//!   interest-routed, with liveness from heartbeats.
//! * [`nats`]: a small NATS client: one connection, one ordered reader.
//!
//! With `cluster-enabled no` and `cluster-bus` set, there is no topology: every node is
//! equal and both PUBLISH and SPUBLISH cross the bus (the replicated mode).

pub mod bus;
pub mod nats;
pub mod slots;
pub mod topology;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use crate::config::Settings;
use bus::Bus;
use topology::{Node, Topology};

/// Where a command with keys (or shard channels) must run.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Here,
    Moved {
        slot: u16,
        addr: String,
    },
    CrossSlot,
    /// `-CLUSTERDOWN <why>`.
    Down(&'static str),
}

/// What a client's command asks of the routing stage.
pub struct Query<'a, I: Iterator<Item = &'a [u8]>> {
    pub keys: I,
    /// SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH: replicas of the shard serve them.
    pub shard_pubsub: bool,
    /// The client sent READONLY.
    pub readonly: bool,
    pub write: bool,
}

pub struct Cluster {
    /// `cluster-enabled yes`.
    pub enabled: bool,
    file: Option<PathBuf>,
    /// The addresses this node may be listed under, and its port.
    me_hosts: Vec<String>,
    me_port: u16,
    topology: RwLock<Option<Arc<Topology>>>,
    /// The NATS bus, when `cluster-bus` is set.
    pub bus: OnceLock<Arc<Bus>>,
    /// `cluster_state:ok`, as of the last [`Cluster::refresh_state`] (the cron, every
    /// 100 ms): the routing stage reads it per keyed command without a lock.
    ok: AtomicBool,
}

impl Cluster {
    /// A node outside any cluster.
    pub fn disabled() -> Cluster {
        Cluster {
            enabled: false,
            file: None,
            me_hosts: Vec::new(),
            me_port: 0,
            topology: RwLock::new(None),
            bus: OnceLock::new(),
            ok: AtomicBool::new(true),
        }
    }

    /// Reads the topology when `cluster-enabled yes`; `port` is the port actually bound.
    /// Errors say what is wrong with the file or this node's place in it.
    pub fn from_settings(settings: &Settings, port: u16) -> Result<Cluster, String> {
        let on = settings.get("cluster-enabled").as_deref() == Some("yes");
        if !on {
            return Ok(Cluster::disabled());
        }
        let text = |name: &str| settings.get(name).unwrap_or_default();
        let file = text("cluster-config-file");
        if file.is_empty() {
            return Err("cluster-enabled yes needs cluster-config-file (the topology file)".into());
        }
        let mut me_hosts = Vec::new();
        match text("cluster-announce-ip") {
            ip if !ip.is_empty() => me_hosts.push(ip),
            _ => me_hosts.extend(
                text("bind")
                    .split_ascii_whitespace()
                    .next()
                    .map(|b| b.trim_start_matches('-').to_string()),
            ),
        }
        let hostname = text("cluster-announce-hostname");
        if !hostname.is_empty() {
            me_hosts.push(hostname);
        }
        let me_port = match text("cluster-announce-port").parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => port,
        };
        let cluster = Cluster {
            enabled: true,
            file: Some(PathBuf::from(file)),
            me_hosts,
            me_port,
            topology: RwLock::new(None),
            bus: OnceLock::new(),
            ok: AtomicBool::new(true),
        };
        let t = cluster.read_file()?;
        *cluster.topology.write() = Some(Arc::new(t));
        Ok(cluster)
    }

    fn read_file(&self) -> Result<Topology, String> {
        let path = self.file.as_ref().ok_or("no cluster-config-file")?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the topology file {}: {e}", path.display()))?;
        let hosts: Vec<&str> = self.me_hosts.iter().map(String::as_str).collect();
        Topology::parse(&text, &hosts, self.me_port).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The topology in force (`None` when cluster mode is off).
    pub fn topology(&self) -> Option<Arc<Topology>> {
        self.topology.read().clone()
    }

    /// Rereads the file (SIGHUP, CLUSTER RELOAD). On error the old topology stays.
    /// Returns the new topology and whether it changed.
    pub fn reload(&self) -> Result<(Arc<Topology>, bool), String> {
        let t = Arc::new(self.read_file()?);
        let mut slot = self.topology.write();
        let changed = slot.as_ref().is_none_or(|old| old.digest != t.digest || old.me != t.me);
        *slot = Some(t.clone());
        drop(slot);
        if changed {
            tracing::warn!(digest = %t.digest, "cluster topology reloaded: this node is {} in shard {}", t.me().addr(), t.my_shard().name);
        }
        Ok((t, changed))
    }

    pub fn bus(&self) -> Option<&Arc<Bus>> {
        self.bus.get()
    }

    /// Whether `node` is failed: silent on the bus for longer than the node timeout
    /// while this node's own bus connection was up. Without a bus nothing is known, so
    /// nothing is failed.
    pub fn failed(&self, t: &Topology, node: &Node) -> bool {
        if node.id == t.me().id {
            return false;
        }
        self.bus().is_some_and(|b| b.peer_failed(&node.id))
    }

    /// Slots served by live primaries, and `cluster_state:ok` (every slot served, as
    /// `cluster-require-full-coverage yes` demands).
    pub fn slots_ok(&self, t: &Topology) -> usize {
        t.shards
            .iter()
            .filter(|s| !self.failed(t, &t.nodes[s.nodes[0]]))
            .map(|s| s.slot_count())
            .sum()
    }

    pub fn state_ok(&self, t: &Topology, settings: &Settings) -> bool {
        self.slots_ok(t) == slots::SLOTS || settings.get("cluster-require-full-coverage").as_deref() == Some("no")
    }

    /// `cluster_state:ok` as the routing stage sees it (CLUSTER INFO shows the same).
    pub fn ok(&self) -> bool {
        self.ok.load(Relaxed)
    }

    /// Recomputes `cluster_state` for the routing stage (a node failed or came back).
    pub fn refresh_state(&self, settings: &Settings) {
        if let Some(t) = self.topology() {
            self.ok.store(self.state_ok(&t, settings), Relaxed);
        }
    }

    /// Redis's `getNodeByQuery` for a static topology: every key in one slot, served
    /// here (the shard's primary, or a replica of it for shard channels and READONLY
    /// reads), else `-MOVED` to the slot's primary.
    pub fn route<'a>(&self, settings: &Settings, q: Query<'a, impl Iterator<Item = &'a [u8]>>) -> Route {
        // Read under the lock (no `Arc` clone per command); reloads are rare.
        let guard = self.topology.read();
        let Some(t) = guard.as_deref() else {
            return Route::Here;
        };
        let mut first: Option<(&[u8], u16)> = None;
        for key in q.keys {
            match first {
                None => first = Some((key, slots::slot_of(key))),
                Some((k, slot)) => {
                    if k != key && slots::slot_of(key) != slot {
                        return Route::CrossSlot;
                    }
                }
            }
        }
        let Some((_, slot)) = first else {
            return Route::Here;
        };
        if !self.ok.load(Relaxed) {
            let yes = |name: &str| settings.get(name).as_deref() == Some("yes");
            if q.shard_pubsub {
                if !yes("cluster-allow-pubsubshard-when-down") {
                    return Route::Down("The cluster is down");
                }
            } else if !yes("cluster-allow-reads-when-down") {
                return Route::Down("The cluster is down");
            } else if q.write {
                return Route::Down("The cluster is down and only accepts read commands");
            }
        }
        let me = t.me();
        if t.in_my_shard(slot) && (me.primary || ((q.readonly || q.shard_pubsub) && !q.write)) {
            return Route::Here;
        }
        Route::Moved {
            slot,
            addr: t.primary_of(slot).addr(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(port: u16) -> Cluster {
        let t = Topology::parse(
            "shard a slots 0-5460 primary 127.0.0.1:7001\n\
             shard b slots 5461-10922 primary 127.0.0.1:7002 replica 127.0.0.1:7005\n\
             shard c slots 10923-16383 primary 127.0.0.1:7003\n",
            &["127.0.0.1"],
            port,
        )
        .unwrap();
        let c = Cluster::disabled();
        *c.topology.write() = Some(Arc::new(t));
        c
    }

    fn route(c: &Cluster, keys: &[&[u8]], shard_pubsub: bool, readonly: bool, write: bool) -> Route {
        let settings = Settings::default();
        c.route(
            &settings,
            Query {
                keys: keys.iter().copied(),
                shard_pubsub,
                readonly,
                write,
            },
        )
    }

    #[test]
    fn moved_crossslot_and_replicas() {
        let a = node(7001);
        assert_eq!(route(&a, &[b"channel:123"], true, false, false), Route::Here);
        assert_eq!(
            route(&a, &[b"mychannel"], true, false, false),
            Route::Moved {
                slot: 10059,
                addr: "127.0.0.1:7002".into()
            }
        );
        assert_eq!(
            route(&a, &[b"channel.0", b"channel.1"], true, false, false),
            Route::CrossSlot
        );
        assert_eq!(
            route(
                &a,
                &[b"{channel:123}a", b"{channel:123}b", b"{channel:123}a"],
                false,
                false,
                true
            ),
            Route::Here
        );
        assert_eq!(route(&a, &[], false, false, true), Route::Here);
        // The replica serves shard channels of its shard, and reads after READONLY.
        let r = node(7005);
        assert_eq!(route(&r, &[b"channel.0"], true, false, false), Route::Here);
        assert_eq!(route(&r, &[b"channel.0"], false, true, false), Route::Here);
        assert_eq!(
            route(&r, &[b"channel.0"], false, false, false),
            Route::Moved {
                slot: 7312,
                addr: "127.0.0.1:7002".into()
            }
        );
        assert!(matches!(
            route(&r, &[b"channel.0"], false, true, true),
            Route::Moved { .. }
        ));
        assert!(matches!(
            route(&r, &[b"channel:123"], true, false, false),
            Route::Moved { slot: 3018, .. }
        ));
    }
}
