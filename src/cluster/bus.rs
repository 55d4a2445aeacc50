//! The bus between nodes: PUBLISH (and SPUBLISH, where a shard has several nodes or in
//! the replicated mode) carried over core NATS, at most once, as Redis's cluster bus is.
//!
//! * **Interest routing.** A node subscribes on NATS only to the channels it has local
//!   subscribers for (the registry reports the first subscriber of a channel and the
//!   last one leaving, and the bus counts them), plus one catch-all while it has pattern
//!   subscribers, since Redis globs do not map onto NATS subjects. NATS then carries
//!   each PUBLISH only to the nodes that want it.
//! * **Subjects.** `<prefix>.g.=<channel>` (global) and `<prefix>.s.=<channel>` (shard
//!   channels), the channel's bytes kept where NATS allows them and `%XX` where it does
//!   not (`.`, `*`, `>`, `%`, spaces, control and non-ASCII bytes), so any binary name
//!   works and a subject stays readable with `nats sub`. A channel whose subject would
//!   pass [`LONG_SUBJECT`] bytes travels as `<prefix>.g.#<hash>` with the channel in
//!   each record.
//! * **Records, batched.** A NATS message holds records (a `u32` length, then the
//!   payload); the PUB for a channel still waiting in the NATS client's buffer takes
//!   the next message for the same channel as one more record, so a burst leaves as
//!   one NATS message (one routing decision in nats-server, one MSG per node) with no
//!   added wait.
//! * **Once each, in order.** Every message arrives on the one ordered NATS connection
//!   (see [`super::nats`]). A node holding both the exact subscription for a channel and
//!   the catch-all gets such a message twice; it delivers the copy that came on the
//!   older of the two subscriptions (the lower sid, which the server processed first,
//!   so every message routed to the newer one was also routed to it). Subscribing and
//!   unsubscribing never loses or duplicates a message, and one publisher's messages
//!   reach every subscriber in publish order, across channels too.
//! * **Liveness.** Each node publishes a heartbeat (every second, or four times per
//!   `cluster-node-timeout` when that is shorter) on `<prefix>.hb.<id>`
//!   with its topology digest; a node unheard for `cluster-node-timeout` while this
//!   node's bus was up is failed in CLUSTER NODES/INFO/SHARDS. A peer whose topology
//!   differs is logged and counted.
//! * **Faults, counted.** While the bus is down local delivery goes on; messages that
//!   could not go out are counted as dropped. Reconnects are automatic (the NATS
//!   client's backoff) and logged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::nats::{self, Nats, Refused};
use crate::config::Settings;
use crate::pubsub::{Interest, Namespace};
use crate::stats::Stats;

/// Encoded subjects longer than this travel hashed (NATS's control line is 4 KB).
pub const LONG_SUBJECT: usize = 1024;

/// Where bus messages go: the local fan-out path (the broker implements it).
pub trait Deliver: Send + Sync + 'static {
    fn deliver(&self, ns: Namespace, channel: &[u8], payload: &[u8]);
    /// The end of a burst of messages read together: wake the subscribers' writers.
    fn batch_end(&self);
}

#[derive(Default)]
pub struct BusStats {
    /// Messages this node published on the bus.
    pub sent: AtomicU64,
    /// Messages that could not go out (bus down, its buffer full): lost for the other
    /// nodes, and counted here.
    pub dropped: AtomicU64,
    /// Messages from other nodes delivered here.
    pub received: AtomicU64,
    /// Second copies of messages skipped (a channel both subscribed exactly and by the
    /// catch-all).
    pub duplicates: AtomicU64,
    /// PUBLISH refused because the message was larger than the bus takes.
    pub too_large: AtomicU64,
    /// Heartbeats from nodes whose topology file differs from this one.
    pub topology_mismatches: AtomicU64,
}

enum SidRoute {
    Exact(Namespace, Bytes),
    CatchAll,
    Heartbeat,
}

#[derive(Default)]
struct Sub {
    /// Channel entries created minus removed in the registry (may dip below zero when
    /// two threads' reports cross).
    count: i64,
    sid: Option<u64>,
}

#[derive(Default)]
struct Interests {
    exact: HashMap<(Namespace, Bytes), Sub>,
    patterns: i64,
    catch_all: Option<u64>,
    routes: HashMap<u64, SidRoute>,
}

#[derive(Default)]
struct Link {
    up_since: Option<Instant>,
    down_at: Option<Instant>,
}

struct Peer {
    last: Instant,
    digest: Bytes,
}

pub struct Bus {
    nats: Arc<Nats>,
    prefix: String,
    my_id: String,
    /// This node's topology digest (empty in the replicated mode).
    digest: Mutex<Bytes>,
    /// SPUBLISH crosses the bus: in the replicated mode, or when this node's shard has
    /// other nodes.
    shard_crosses: AtomicBool,
    interests: Mutex<Interests>,
    peers: Mutex<HashMap<String, Peer>>,
    /// When this node's bus connection last came up, and when it went down (`None`
    /// while up).
    link: Mutex<Link>,
    settings: Arc<Settings>,
    sink: OnceLock<Arc<dyn Deliver>>,
    pub stats: BusStats,
}

/// Whether NATS subjects hold `b` as it is (others are `%XX`, and so is `%` itself).
fn plain(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && !matches!(b, b'.' | b'*' | b'>' | b'%')
}

/// A channel too long for a subject once escaped: it travels hashed, its name in each
/// record.
fn is_long(channel: &[u8]) -> bool {
    channel.len() > LONG_SUBJECT / 3
        && channel.iter().map(|&b| if plain(b) { 1 } else { 3 }).sum::<usize>() > LONG_SUBJECT
}

/// The bytes a message takes on the bus: its record (see [`Bus::publish`]).
fn record_len(channel: &[u8], payload_len: usize) -> usize {
    4 + payload_len + if is_long(channel) { 4 + channel.len() } else { 0 }
}

fn escape(channel: &[u8], out: &mut BytesMut) {
    for &b in channel {
        if plain(b) {
            out.put_u8(b);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.put_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
    }
}

fn unescape(token: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(token.len());
    let mut i = 0;
    while i < token.len() {
        if token[i] == b'%' {
            let hex = std::str::from_utf8(token.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(token[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The records of a bus message: each a `u32` length and that many bytes. A cut or
/// malformed tail ends the iteration (the bus is trusted; nothing is guessed).
fn split_records(payload: &Bytes) -> impl Iterator<Item = Bytes> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let len = u32::from_be_bytes(payload.get(at..at + 4)?.try_into().ok()?) as usize;
        let body = payload
            .get(at + 4..at + 4 + len)
            .map(|_| payload.slice(at + 4..at + 4 + len))?;
        at += 4 + len;
        Some(body)
    })
}

/// A long channel's record: `u32` channel length, channel, payload.
fn long_record(record: Bytes) -> Option<(Bytes, Bytes)> {
    let len = u32::from_be_bytes(record.get(..4)?.try_into().ok()?) as usize;
    record.get(4..4 + len)?;
    Some((record.slice(4..4 + len), record.slice(4 + len..)))
}

impl Bus {
    /// Builds the bus from the `cluster-bus*` directives (`None` when `cluster-bus` is
    /// empty); nothing connects until [`Bus::run`].
    pub fn from_settings(settings: &Arc<Settings>, my_id: &str, name: &str) -> Result<Option<Arc<Bus>>, String> {
        let text = |n: &str| settings.get(n).unwrap_or_default();
        let list = text("cluster-bus");
        if list.trim().is_empty() {
            return Ok(None);
        }
        let servers = nats::parse_servers(&list).map_err(|e| format!("cluster-bus: {e}"))?;
        let some = |n: &str| Some(text(n)).filter(|v| !v.is_empty());
        let tls_files = nats::TlsFiles {
            ca_file: some("cluster-bus-tls-ca-cert-file").map(Into::into),
            cert_file: some("cluster-bus-tls-cert-file").map(Into::into),
            key_file: some("cluster-bus-tls-key-file").map(Into::into),
        };
        let tls = (tls_files.ca_file.is_some() || tls_files.cert_file.is_some()).then_some(tls_files);
        let opts = nats::Options {
            servers,
            user: some("cluster-bus-user"),
            password: some("cluster-bus-password"),
            token: some("cluster-bus-token"),
            tls,
            name: name.to_string(),
            ..nats::Options::default()
        };
        let bus = Arc::new_cyclic(|weak: &std::sync::Weak<Bus>| {
            let handler: Arc<dyn nats::Handler> = Arc::new(Handler(weak.clone()));
            Bus {
                nats: Nats::new(opts, handler),
                prefix: text("cluster-bus-subject-prefix"),
                my_id: my_id.to_string(),
                digest: Mutex::new(Bytes::new()),
                shard_crosses: AtomicBool::new(true),
                interests: Mutex::new(Interests::default()),
                peers: Mutex::new(HashMap::new()),
                link: Mutex::new(Link::default()),
                settings: settings.clone(),
                sink: OnceLock::new(),
                stats: BusStats::default(),
            }
        });
        Ok(Some(bus))
    }

    /// Where messages from other nodes go. Set once, before [`Bus::run`].
    pub fn set_sink(&self, sink: Arc<dyn Deliver>) {
        let _ = self.sink.set(sink);
    }

    /// The topology this node runs (heartbeats carry its digest) and whether its shard
    /// has other nodes that SPUBLISH must reach. The replicated mode never calls it.
    pub fn set_topology(&self, digest: &str, shard_has_peers: bool) {
        *self.digest.lock() = Bytes::copy_from_slice(digest.as_bytes());
        self.shard_crosses.store(shard_has_peers, Relaxed);
    }

    /// Connects (and reconnects) until `shutdown`, and sends the heartbeats.
    pub fn run(self: &Arc<Self>, shutdown: CancellationToken) {
        let hb = format!("{}.hb.*", self.prefix);
        let sid = self.nats.subscribe(hb.as_bytes());
        self.interests.lock().routes.insert(sid, SidRoute::Heartbeat);
        self.nats.run(shutdown.clone());
        let me = self.clone();
        tokio::spawn(async move {
            let subject = format!("{}.hb.{}", me.prefix, me.my_id);
            loop {
                // Four heartbeats per node timeout (at most one a second), so one late
                // heartbeat on a busy machine does not fail a node.
                let period = (me.node_timeout() / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(period) => {}
                }
                let digest = me.digest.lock().clone();
                // Down: nothing to tell; the NATS client refuses and that is fine.
                let _ = me.nats.publish(subject.as_bytes(), &digest);
            }
        });
    }

    /// Writes the subject of `channel` into `s` (cleared first).
    fn subject_into(&self, ns: Namespace, channel: &[u8], s: &mut BytesMut) {
        s.clear();
        s.put_slice(self.prefix.as_bytes());
        s.put_slice(match ns {
            Namespace::Global => b".g.",
            Namespace::Shard => b".s.",
        });
        if is_long(channel) {
            s.put_u8(b'#');
            for b in Sha256::digest(channel).iter().take(20) {
                s.put_slice(format!("{b:02x}").as_bytes());
            }
        } else {
            s.put_u8(b'=');
            escape(channel, s);
        }
    }

    /// Whether PUBLISH (or SPUBLISH) of `len` bytes may go out: refused, before any
    /// local delivery, when the bus would refuse it.
    pub fn check_size(&self, ns: Namespace, channel: &[u8], len: usize) -> Result<(), usize> {
        if ns == Namespace::Shard && !self.shard_crosses.load(Relaxed) {
            return Ok(());
        }
        let max = self.nats.max_payload();
        if record_len(channel, len) > max {
            Stats::add(&self.stats.too_large, 1);
            return Err(max);
        }
        Ok(())
    }

    /// After local delivery: the message to the other nodes. Each goes as a record
    /// (`u32` length, then the payload, or for a long channel `u32` length, channel,
    /// payload) so that a burst on one channel can leave as one NATS message (see
    /// [`Nats::publish_batched`]).
    /// Returns whether the caller owes the NATS writer a wake-up ([`Bus::wake`]) at the
    /// end of its batch of requests.
    #[must_use]
    pub fn publish(&self, ns: Namespace, channel: &[u8], payload: &[u8]) -> bool {
        if ns == Namespace::Shard && !self.shard_crosses.load(Relaxed) {
            return false;
        }
        // One subject buffer per thread: no allocation per message.
        thread_local!(static SUBJECT: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new()));
        let result = SUBJECT.with_borrow_mut(|subject| {
            self.subject_into(ns, channel, subject);
            let body = (record_len(channel, payload.len()) - 4) as u32;
            if is_long(channel) {
                let ch = (channel.len() as u32).to_be_bytes();
                self.nats
                    .publish_batched(subject, &[&body.to_be_bytes(), &ch, channel, payload])
            } else {
                self.nats.publish_batched(subject, &[&body.to_be_bytes(), payload])
            }
        });
        match result {
            Ok(wake) => {
                Stats::add(&self.stats.sent, 1);
                wake
            }
            Err(Refused::TooLarge { .. }) => {
                Stats::add(&self.stats.too_large, 1);
                false
            }
            Err(_) => {
                Stats::add(&self.stats.dropped, 1);
                false
            }
        }
    }

    /// Sends what [`Bus::publish`] queued.
    pub fn wake(&self) {
        self.nats.wake_writer();
    }

    /// Whether `id` is failed: unheard for `cluster-node-timeout` while this node's
    /// connection had been up at least that long. While this node's own bus is down
    /// nothing new is known: the answer is the one of the moment it went down (a NATS
    /// outage must not make a static cluster refuse its keys; there is no failover to
    /// wait for).
    pub fn peer_failed(&self, id: &str) -> bool {
        let timeout = self.node_timeout();
        let (up_since, at) = {
            let l = self.link.lock();
            match (l.up_since, l.down_at) {
                (Some(up), None) => (up, Instant::now()),
                (Some(up), Some(down)) => (up, down),
                // Never connected: nothing is known.
                (None, _) => return false,
            }
        };
        if at.saturating_duration_since(up_since) <= timeout {
            return false;
        }
        match self.peers.lock().get(id) {
            Some(p) => at.saturating_duration_since(p.last) > timeout,
            None => true,
        }
    }

    fn node_timeout(&self) -> Duration {
        Duration::from_millis(
            self.settings
                .get("cluster-node-timeout")
                .and_then(|v| v.parse().ok())
                .unwrap_or(15000),
        )
    }

    /// Milliseconds since a heartbeat from `id` (for CLUSTER NODES's pong-recv).
    pub fn last_heard(&self, id: &str) -> Option<Instant> {
        self.peers.lock().get(id).map(|p| p.last)
    }

    pub fn peers_heard(&self) -> usize {
        self.peers.lock().len()
    }

    /// Whether SPUBLISH goes over the bus (replicated mode, or a shard with replicas).
    pub fn shard_crosses(&self) -> bool {
        self.shard_crosses.load(Relaxed)
    }

    /// Whether a subscription for `channel` (or, with `None`, the catch-all for
    /// patterns) is held on NATS.
    pub fn has_interest(&self, ns: Option<Namespace>, channel: &[u8]) -> bool {
        let i = self.interests.lock();
        match ns {
            None => i.catch_all.is_some(),
            Some(ns) => i
                .exact
                .get(&(ns, Bytes::copy_from_slice(channel)))
                .is_some_and(|s| s.sid.is_some()),
        }
    }

    pub fn nats(&self) -> &Nats {
        &self.nats
    }

    pub fn subscriptions(&self) -> usize {
        self.interests.lock().routes.len()
    }

    fn on_message(&self, sid: u64, subject: &[u8], payload: Bytes) {
        let prefix = self.prefix.as_bytes();
        let tail = |kind: &[u8]| -> Option<&[u8]> {
            subject
                .strip_prefix(prefix)?
                .strip_prefix(b".")?
                .strip_prefix(kind)?
                .strip_prefix(b".")
        };
        // Which copy is delivered (see the module doc), and the channel when the subject
        // names it: `None` for a long channel, named in each record instead.
        let (ns, channel) = {
            let interests = self.interests.lock();
            let Some(route) = interests.routes.get(&sid) else {
                // A subscription just dropped: its copies are not wanted.
                return;
            };
            match route {
                SidRoute::Heartbeat => {
                    drop(interests);
                    if let Some(id) = tail(b"hb") {
                        self.heartbeat(id, payload);
                    }
                    return;
                }
                SidRoute::Exact(ns, channel) => {
                    // The catch-all is older: its copy is the one delivered.
                    if *ns == Namespace::Global && interests.catch_all.is_some_and(|c| c < sid) {
                        Stats::add(&self.stats.duplicates, split_records(&payload).count() as u64);
                        return;
                    }
                    let token = tail(if *ns == Namespace::Global { b"g" } else { b"s" }).unwrap_or(b"");
                    (*ns, (token.first() == Some(&b'=')).then(|| channel.clone()))
                }
                SidRoute::CatchAll => {
                    let Some(token) = tail(b"g") else {
                        return;
                    };
                    let channel = match token.first() {
                        Some(b'=') => match unescape(&token[1..]) {
                            Some(c) => Some(Bytes::from(c)),
                            None => return,
                        },
                        Some(b'#') => None,
                        _ => return,
                    };
                    // An older exact subscription's copy is the one delivered. (A long
                    // channel's name is in its records: the first one tells.)
                    let named = channel
                        .clone()
                        .or_else(|| split_records(&payload).next().and_then(long_record).map(|(c, _)| c));
                    let older_exact = named.is_some_and(|c| {
                        interests
                            .exact
                            .get(&(Namespace::Global, c))
                            .and_then(|s| s.sid)
                            .is_some_and(|e| e < sid)
                    });
                    if older_exact {
                        Stats::add(&self.stats.duplicates, split_records(&payload).count() as u64);
                        return;
                    }
                    (Namespace::Global, channel)
                }
            }
        };
        let Some(sink) = self.sink.get() else {
            return;
        };
        for record in split_records(&payload) {
            let (channel, body) = match &channel {
                Some(c) => (c.clone(), record),
                None => match long_record(record) {
                    Some(parts) => parts,
                    None => return,
                },
            };
            Stats::add(&self.stats.received, 1);
            sink.deliver(ns, &channel, &body);
        }
    }

    fn heartbeat(&self, id: &[u8], digest: Bytes) {
        let Ok(id) = std::str::from_utf8(id) else {
            return;
        };
        if id == self.my_id {
            return;
        }
        let mine = self.digest.lock().clone();
        let mut peers = self.peers.lock();
        let changed = peers.get(id).is_none_or(|p| p.digest != digest);
        if changed && !mine.is_empty() && !digest.is_empty() && digest != mine {
            Stats::add(&self.stats.topology_mismatches, 1);
            tracing::warn!(
                peer = id,
                "cluster node {id} runs a different topology file (digest {} here, {} there): clients will be redirected inconsistently",
                String::from_utf8_lossy(&mine),
                String::from_utf8_lossy(&digest)
            );
        }
        if !peers.contains_key(id) {
            tracing::info!(peer = id, "cluster node {id} heard on the bus");
        }
        peers.insert(
            id.to_string(),
            Peer {
                last: Instant::now(),
                digest,
            },
        );
    }
}

impl Interest for Bus {
    /// Shard channels are followed even while SPUBLISH stays local (a shard with one
    /// node): a reload that adds a replica then needs no resubscription.
    fn channel(&self, ns: Namespace, channel: &[u8], present: bool) {
        let mut i = self.interests.lock();
        let key = (ns, Bytes::copy_from_slice(channel));
        let sub = i.exact.entry(key.clone()).or_default();
        sub.count += if present { 1 } else { -1 };
        let (count, sid) = (sub.count, sub.sid);
        match (count > 0, sid) {
            (true, None) => {
                let mut subject = BytesMut::new();
                self.subject_into(ns, channel, &mut subject);
                let sid = self.nats.subscribe(&subject);
                i.exact.get_mut(&key).expect("just inserted").sid = Some(sid);
                i.routes.insert(sid, SidRoute::Exact(ns, key.1.clone()));
            }
            (false, Some(sid)) => {
                self.nats.unsubscribe(sid);
                i.routes.remove(&sid);
                i.exact.get_mut(&key).expect("present").sid = None;
            }
            _ => {}
        }
        if count == 0 {
            i.exact.remove(&key);
        }
    }

    fn patterns(&self, present: bool) {
        let mut i = self.interests.lock();
        i.patterns += if present { 1 } else { -1 };
        match (i.patterns > 0, i.catch_all) {
            (true, None) => {
                let sid = self.nats.subscribe(format!("{}.g.>", self.prefix).as_bytes());
                i.catch_all = Some(sid);
                i.routes.insert(sid, SidRoute::CatchAll);
            }
            (false, Some(sid)) => {
                self.nats.unsubscribe(sid);
                i.routes.remove(&sid);
                i.catch_all = None;
            }
            _ => {}
        }
    }
}

/// The NATS client's handler: a weak link back, so the bus can be dropped.
struct Handler(std::sync::Weak<Bus>);

impl nats::Handler for Handler {
    fn message(&self, sid: u64, subject: &[u8], payload: Bytes) {
        if let Some(bus) = self.0.upgrade() {
            bus.on_message(sid, subject, payload);
        }
    }

    fn batch_end(&self) {
        if let Some(sink) = self.0.upgrade().and_then(|b| b.sink.get().cloned()) {
            sink.batch_end();
        }
    }

    fn connection(&self, up: bool, server: &str) {
        let Some(bus) = self.0.upgrade() else {
            return;
        };
        {
            let mut link = bus.link.lock();
            if up {
                *link = Link {
                    up_since: Some(Instant::now()),
                    down_at: None,
                };
            } else if link.down_at.is_none() {
                link.down_at = Some(Instant::now());
            }
        }
        if up {
            tracing::info!(server, "cluster bus connected");
        } else {
            tracing::warn!(server, "cluster bus connection lost; local delivery goes on, messages for other nodes are dropped and counted until it is back");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_hold_any_channel() {
        for ch in [
            &b"news.sports"[..],
            b"a b",
            b"",
            b"%41",
            b"*>",
            b"\xff\x00",
            "caf\u{e9}".as_bytes(),
        ] {
            let mut s = BytesMut::new();
            escape(ch, &mut s);
            assert!(s
                .iter()
                .all(|&b| (0x21..=0x7e).contains(&b) && !matches!(b, b'.' | b'*' | b'>')));
            assert_eq!(unescape(&s).unwrap(), ch);
        }
        let mut s = BytesMut::new();
        escape(b"user:1", &mut s);
        assert_eq!(&s[..], b"user:1");
    }
}
