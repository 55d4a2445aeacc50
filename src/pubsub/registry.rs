//! The subscription registry: channel -> subscribers, shard channel -> subscribers,
//! pattern -> subscribers.
//!
//! Channels live in sharded maps (`DashMap`), so publishing on one channel never waits
//! on a global lock, and publishes share a shard's read lock. Each channel's subscriber
//! set is an immutable `Arc<[..]>` replaced on subscribe and unsubscribe (copy-on-write),
//! so those pay the copy, not the publish. A publish holds the read lock while it queues
//! (never across an await) so that unsubscribing is a clean cut: see [`Registry::publish`].
//!
//! A connection owns its own subscription sets; the registry holds only the reverse map,
//! and the connection removes itself from every entry it added when it goes away.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use dashmap::DashMap;

use super::patterns::PatternIndex;
use super::run::{Batch, Run};
use crate::client::outbox::{Outbox, Pushed};
use crate::client::wake_relay::{WakeRelay, RELAY_MIN};
use crate::config::Settings;
use crate::protocol::wire::{encode_message, message_frame, message_len, Wire};
use crate::stats::Stats;

/// Subscribers a publisher's thread writes to itself after a single publish, at most
/// ([`Registry::end_batch`]). Measured (BENCHMARKS.md, issue 15): at 10 unpipelined
/// subscribers, writing from the publisher's thread, its reply first, cut CPU per delivery
/// from 5.6 to 3.1 µs (redis-server: 3.1) and context switches 20-fold; at 1,000 one thread
/// writing them all was slower than both workers' writer tasks (0.93x against 1.6x of
/// redis-server), and so were pipelined batches to 10 pattern subscribers (0.90x).
pub const WRITE_NOW_MAX: usize = 16;

/// The connections subscribed to one channel or pattern, in subscription order.
pub type Subscribers = Arc<[Arc<Outbox>]>;

/// Global channels (SUBSCRIBE/PUBLISH) and shard channels (SSUBSCRIBE/SPUBLISH) are
/// separate namespaces: a PUBLISH never reaches an SSUBSCRIBE subscriber.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Namespace {
    Global,
    Shard,
}

/// Told when a channel gets its first subscriber or loses its last one, and when a
/// pattern appears or goes (the cluster bus subscribes on NATS accordingly). Reports
/// from different threads may arrive out of order: count them, do not toggle.
pub trait Interest: Send + Sync {
    fn channel(&self, ns: Namespace, channel: &[u8], present: bool);
    fn patterns(&self, present: bool);
}

/// A channel map. foldhash (seeded per process, like the pattern index) rather than
/// SipHash: hashing the channel is on every publish's path.
type ChannelMap = DashMap<Bytes, Subscribers, foldhash::fast::RandomState>;

pub struct Registry {
    channels: ChannelMap,
    interest: std::sync::OnceLock<Arc<dyn Interest>>,
    /// Wakes the writers of large fan-outs when the event loop is single-threaded.
    wake_relay: std::sync::OnceLock<WakeRelay>,
    shard_channels: ChannelMap,
    pub patterns: PatternIndex,
    settings: Arc<Settings>,
    stats: Arc<Stats>,
}

/// One frame per format, encoded on first use and shared by every subscriber that
/// reads it: a publish to 1,000 subscribers encodes once per format in use.
struct Frames<'a> {
    kind: &'a [u8],
    pattern: Option<&'a [u8]>,
    channel: &'a [u8],
    payload: &'a [u8],
    encoded: [Option<Bytes>; Wire::COUNT],
}

impl Frames<'_> {
    fn get(&mut self, wire: Wire) -> &Bytes {
        let (kind, pattern, channel, payload) = (self.kind, self.pattern, self.channel, self.payload);
        self.encoded[wire.index()].get_or_insert_with(|| message_frame(wire, kind, pattern, channel, payload))
    }
}

impl Registry {
    pub fn new(settings: Arc<Settings>, stats: Arc<Stats>) -> Registry {
        Registry {
            // More shards than cores: subscribing to one channel then rarely waits on a
            // publish to an unrelated channel that happens to share its shard.
            channels: DashMap::with_hasher_and_shard_amount(Default::default(), 64),
            shard_channels: DashMap::with_hasher_and_shard_amount(Default::default(), 64),
            interest: std::sync::OnceLock::new(),
            wake_relay: std::sync::OnceLock::new(),
            patterns: PatternIndex::default(),
            settings,
            stats,
        }
    }

    fn map(&self, ns: Namespace) -> &ChannelMap {
        match ns {
            Namespace::Global => &self.channels,
            Namespace::Shard => &self.shard_channels,
        }
    }

    /// Relays the writer wake-ups of large fan-outs from now on (a single-threaded
    /// event loop: see [`crate::client::wake_relay`]).
    pub fn start_wake_relay(&self) -> std::io::Result<()> {
        if self.wake_relay.get().is_none() {
            let _ = self.wake_relay.set(WakeRelay::start()?);
        }
        Ok(())
    }

    /// Whether large fan-outs' wake-ups are relayed (INFO `io_threads_active`).
    pub fn has_wake_relay(&self) -> bool {
        self.wake_relay.get().is_some()
    }

    /// Who hears of channels and patterns coming and going (set once, at start).
    pub fn set_interest(&self, interest: Arc<dyn Interest>) {
        let _ = self.interest.set(interest);
    }

    pub fn subscribe(&self, ns: Namespace, channel: &[u8], sub: &Arc<Outbox>) {
        let mut created = false;
        // The key is copied: it outlives the read buffer it was sliced from and must
        // not pin that whole buffer in memory.
        self.map(ns)
            .entry(Bytes::copy_from_slice(channel))
            .and_modify(|subs| *subs = with(subs, sub))
            .or_insert_with(|| {
                created = true;
                Arc::from([sub.clone()])
            });
        if created {
            if let Some(i) = self.interest.get() {
                i.channel(ns, channel, true);
            }
        }
    }

    pub fn psubscribe(&self, pattern: &[u8], sub: &Arc<Outbox>) {
        if self.patterns.subscribe(pattern, sub) {
            if let Some(i) = self.interest.get() {
                i.patterns(true);
            }
        }
    }

    pub fn punsubscribe(&self, pattern: &[u8], id: u64) {
        if self.patterns.unsubscribe(pattern, id) {
            if let Some(i) = self.interest.get() {
                i.patterns(false);
            }
        }
    }

    pub fn unsubscribe(&self, ns: Namespace, channel: &[u8], id: u64) {
        let map = self.map(ns);
        let mut now_empty = false;
        if let Some(mut subs) = map.get_mut(channel) {
            *subs = without(&subs, id);
            now_empty = subs.is_empty();
        }
        // Re-checked under the shard lock: someone may have subscribed meanwhile.
        if now_empty && map.remove_if(channel, |_, subs| subs.is_empty()).is_some() {
            if let Some(i) = self.interest.get() {
                i.channel(ns, channel, false);
            }
        }
    }

    /// PUBLISH / SPUBLISH. Returns the number of deliveries queued.
    ///
    /// Frames for the publisher itself (a RESP3 client publishing to a channel it is
    /// subscribed to) go to `to_self` instead, so the caller can write its `:N` reply
    /// before them, as Redis 7.2 does. Subscribers whose writers must be woken, and the
    /// run a repeated publish joins (see [`super::run`]), are kept in `batch`; the
    /// caller ends it with [`Registry::end_batch`] once its batch of requests is done.
    pub fn publish(
        &self,
        ns: Namespace,
        channel: &[u8],
        payload: &[u8],
        publisher: u64,
        to_self: &mut Vec<Bytes>,
        batch: &mut Batch,
    ) -> usize {
        crate::stats::Stats::add(&self.stats.messages_published, 1);
        batch.publishes += 1;
        let kind: &[u8] = match ns {
            Namespace::Global => b"message",
            Namespace::Shard => b"smessage",
        };
        let mut delivered = 0;
        // The shard's read lock is held while this publish queues its frames (it never
        // awaits). An UNSUBSCRIBE takes the write lock to remove its connection, so once
        // its confirmation is queued no publish still working from the old subscriber set
        // can queue a message behind it. Without this a client could read a message after
        // its unsubscribe confirmation, which Redis never sends and RESP2 clients
        // mistake for the reply to their next command.
        if let Some(subs) = self.map(ns).get(channel) {
            // A run carries `message` frames only: a channel that patterns match too
            // gets its `pmessage` frames in between, so it is published one by one.
            let unpatterned = || ns == Namespace::Shard || !self.patterns.any_match(channel);
            if batch.continues(ns, &subs) && unpatterned() {
                let run = batch.run.as_mut().expect("checked by `continues`");
                run.append(kind, channel, payload);
                crate::stats::Stats::add(&self.stats.messages_delivered, run.receivers as u64);
                return run.receivers;
            }
            self.end_run(batch);
            if batch.repeats(ns, &subs) && unpatterned() && !subs.iter().any(|s| s.id == publisher) {
                delivered = self.open_run(ns, &subs, kind, channel, payload, publisher, batch);
            } else {
                let mut frames = Frames {
                    kind,
                    pattern: None,
                    channel,
                    payload,
                    encoded: Default::default(),
                };
                delivered += self.deliver(&subs, &mut frames, publisher, to_self, &mut batch.wakes);
                batch.last = (subs.len() > 1).then(|| (ns, subs.clone()));
            }
        } else {
            self.end_run(batch);
            batch.last = None;
        }
        // Patterns never see shard channels.
        if ns == Namespace::Global && !self.patterns.is_empty() {
            self.patterns.for_each_match(channel, |pattern, subs| {
                let mut frames = Frames {
                    kind: b"pmessage",
                    pattern: Some(pattern),
                    channel,
                    payload,
                    encoded: Default::default(),
                };
                delivered += self.deliver(subs, &mut frames, publisher, to_self, &mut batch.wakes);
            });
        }
        crate::stats::Stats::add(&self.stats.messages_delivered, delivered as u64);
        delivered
    }

    /// Opens a run on `subs` with this message: each subscriber gets a pending frame.
    #[allow(clippy::too_many_arguments)]
    fn open_run(
        &self,
        ns: Namespace,
        subs: &Subscribers,
        kind: &[u8],
        channel: &[u8],
        payload: &[u8],
        publisher: u64,
        batch: &mut Batch,
    ) -> usize {
        let mut run = Box::new(Run {
            publisher,
            ns,
            subs: subs.clone(),
            bytes: Default::default(),
            messages: 1,
            receivers: 0,
            refused: Vec::new(),
        });
        let frame_len = message_len(kind, None, channel, payload);
        for sub in subs.iter() {
            let wire = sub.wire();
            let buf = run.bytes[wire.index()].get_or_insert_with(|| {
                // Room for a few more messages like this one before the buffer grows.
                let mut b = BytesMut::with_capacity(frame_len.saturating_mul(4).min(frame_len + 64 * 1024));
                encode_message(&mut b, wire, kind, None, channel, payload);
                b
            });
            let pushed = sub.push_pending(publisher, wire, buf.len(), &self.settings);
            if self.tally(&pushed) {
                run.receivers += 1;
            } else if matches!(pushed, Pushed::Dropped | Pushed::DroppedAfterDropping(_)) {
                run.refused.push(sub.clone());
            }
        }
        let receivers = run.receivers;
        batch.run = Some(run);
        receivers
    }

    fn deliver(
        &self,
        subs: &[Arc<Outbox>],
        frames: &mut Frames,
        publisher: u64,
        to_self: &mut Vec<Bytes>,
        wakes: &mut Vec<Arc<Outbox>>,
    ) -> usize {
        let mut delivered = 0;
        for sub in subs {
            if sub.id == publisher {
                // The publisher's copy joins its own replies, which are RESP (a web
                // session's replies are turned into its format with them).
                let wire = if sub.wire().is_resp() { sub.wire() } else { Wire::Resp3 };
                to_self.push(frames.get(wire).clone());
                delivered += 1;
                continue;
            }
            let frame = frames.get(sub.wire());
            if self.tally(&sub.push_message(frame, &self.settings, wakes)) {
                delivered += 1;
            }
        }
        delivered
    }

    /// Counts what a push dropped or closed in the server's stats; says whether the
    /// message was queued.
    fn tally(&self, pushed: &Pushed) -> bool {
        let dropped = match *pushed {
            Pushed::Queued => return true,
            Pushed::QueuedAfterDropping(n) => {
                crate::stats::Stats::add(&self.stats.messages_dropped, n);
                return true;
            }
            Pushed::Dropped => 1,
            Pushed::DroppedAfterDropping(n) => n + 1,
            Pushed::Disconnected => {
                crate::stats::Stats::add(&self.stats.obuf_limit_disconnections, 1);
                return false;
            }
            Pushed::Gone => return false,
        };
        crate::stats::Stats::add(&self.stats.messages_dropped, dropped);
        false
    }

    /// Completes the batch's open run, if any: every pending frame becomes the run's
    /// bytes and its writer is woken.
    fn end_run(&self, batch: &mut Batch) {
        let Some(run) = batch.run.take() else {
            return;
        };
        let bytes = run.bytes.map(|b| b.map(BytesMut::freeze));
        let extra = run.messages - 1;
        let mut dropped = 0;
        for sub in run.subs.iter() {
            if let Some(done) = sub.complete_run(run.publisher, &bytes, extra, &self.settings) {
                dropped += done.dropped;
                if done.disconnected {
                    crate::stats::Stats::add(&self.stats.obuf_limit_disconnections, 1);
                }
            }
        }
        for sub in &run.refused {
            sub.dropped
                .fetch_add(extra as u64, std::sync::atomic::Ordering::Relaxed);
            dropped += extra as u64;
        }
        crate::stats::Stats::add(&self.stats.messages_dropped, dropped);
    }

    /// Ends a publisher's batch of requests: completes its run and sends what it queued
    /// for its subscribers. After a single publish to at most [`WRITE_NOW_MAX`]
    /// subscribers (each delivery its own write, the publisher waiting for its reply),
    /// this thread writes to them itself ([`Outbox::write_or_wake`]), as Redis does, with
    /// no task or thread woken. A single publish to [`RELAY_MIN`] or more has its
    /// writers woken by the wake relay when there is one (a single-threaded event loop),
    /// so that they write after the loop's next publishes. Otherwise (a pipelined batch,
    /// or no relay) the writer tasks are woken here: they write once the loop has run
    /// what else is ready, one write carrying every message queued by then.
    pub fn end_batch(&self, batch: &mut Batch) {
        self.end_run(batch);
        batch.last = None;
        let single = batch.publishes <= 1;
        batch.publishes = 0;
        if single && batch.wakes.len() <= WRITE_NOW_MAX {
            let mut written = 0;
            for o in batch.wakes.drain(..) {
                written += o.write_or_wake();
            }
            Stats::add(&self.stats.net_output_bytes, written as u64);
        } else {
            let offloaded = single
                && batch.wakes.len() >= RELAY_MIN
                && self.wake_relay.get().is_some_and(|t| t.offer(&mut batch.wakes));
            if !offloaded {
                for o in batch.wakes.drain(..) {
                    o.wake();
                }
            }
        }
        if batch.wakes.capacity() > 1024 {
            batch.wakes = Vec::new();
        }
    }

    /// PUBSUB NUMSUB / SHARDNUMSUB: exact-channel subscribers only.
    pub fn numsub(&self, ns: Namespace, channel: &[u8]) -> usize {
        self.map(ns).get(channel).map_or(0, |s| s.len())
    }

    /// PUBSUB CHANNELS / SHARDCHANNELS: channels with at least one subscriber.
    pub fn channels(&self, ns: Namespace, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.map(ns)
            .iter()
            .filter(|e| pattern.is_none_or(|p| crate::glob::matches(p, e.key())))
            .map(|e| e.key().clone())
            .collect()
    }

    /// Calls `f(channel, subscribers)` for every channel of `ns` (ACL revocation scans).
    pub fn for_each_channel(&self, ns: Namespace, mut f: impl FnMut(&[u8], &Subscribers)) {
        for e in self.map(ns).iter() {
            f(e.key(), e.value());
        }
    }

    pub fn channel_count(&self, ns: Namespace) -> usize {
        self.map(ns).len()
    }
}

/// A copy of `subs` with `sub` appended.
pub(super) fn with(subs: &[Arc<Outbox>], sub: &Arc<Outbox>) -> Subscribers {
    subs.iter().cloned().chain(std::iter::once(sub.clone())).collect()
}

/// A copy of `subs` without connection `id`.
pub(super) fn without(subs: &[Arc<Outbox>], id: u64) -> Subscribers {
    subs.iter().filter(|s| s.id != id).cloned().collect()
}
