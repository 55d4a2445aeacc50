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

use bytes::Bytes;
use dashmap::DashMap;

use super::outbox::{Outbox, Pushed};
use super::patterns::PatternIndex;
use crate::config::Settings;
use crate::protocol::reply::{message_frame, Proto};
use crate::stats::Stats;

/// The connections subscribed to one channel or pattern, in subscription order.
pub type Subscribers = Arc<[Arc<Outbox>]>;

/// Global channels (SUBSCRIBE/PUBLISH) and shard channels (SSUBSCRIBE/SPUBLISH) are
/// separate namespaces: a PUBLISH never reaches an SSUBSCRIBE subscriber.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Namespace {
    Global,
    Shard,
}

pub struct Registry {
    channels: DashMap<Bytes, Subscribers>,
    shard_channels: DashMap<Bytes, Subscribers>,
    pub patterns: PatternIndex,
    settings: Arc<Settings>,
    stats: Arc<Stats>,
}

/// One frame per protocol, encoded on first use and shared by every subscriber that
/// speaks it: a publish to 1,000 subscribers encodes at most twice.
struct Frames<'a> {
    kind: &'a [u8],
    pattern: Option<&'a [u8]>,
    channel: &'a [u8],
    payload: &'a [u8],
    encoded: [Option<Bytes>; 2],
}

impl Frames<'_> {
    fn get(&mut self, proto: Proto) -> &Bytes {
        let (kind, pattern, channel, payload) = (self.kind, self.pattern, self.channel, self.payload);
        self.encoded[proto.index()].get_or_insert_with(|| message_frame(proto, kind, pattern, channel, payload))
    }
}

impl Registry {
    pub fn new(settings: Arc<Settings>, stats: Arc<Stats>) -> Registry {
        Registry {
            // More shards than cores: subscribing to one channel then rarely waits on a
            // publish to an unrelated channel that happens to share its shard.
            channels: DashMap::with_shard_amount(64),
            shard_channels: DashMap::with_shard_amount(64),
            patterns: PatternIndex::default(),
            settings,
            stats,
        }
    }

    fn map(&self, ns: Namespace) -> &DashMap<Bytes, Subscribers> {
        match ns {
            Namespace::Global => &self.channels,
            Namespace::Shard => &self.shard_channels,
        }
    }

    pub fn subscribe(&self, ns: Namespace, channel: &[u8], sub: &Arc<Outbox>) {
        // The key is copied: it outlives the read buffer it was sliced from and must
        // not pin that whole buffer in memory.
        self.map(ns)
            .entry(Bytes::copy_from_slice(channel))
            .and_modify(|subs| *subs = with(subs, sub))
            .or_insert_with(|| Arc::from([sub.clone()]));
    }

    pub fn unsubscribe(&self, ns: Namespace, channel: &[u8], id: u64) {
        let map = self.map(ns);
        let mut now_empty = false;
        if let Some(mut subs) = map.get_mut(channel) {
            *subs = without(&subs, id);
            now_empty = subs.is_empty();
        }
        if now_empty {
            // Re-checked under the shard lock: someone may have subscribed meanwhile.
            map.remove_if(channel, |_, subs| subs.is_empty());
        }
    }

    /// PUBLISH / SPUBLISH. Returns the number of deliveries queued.
    ///
    /// Frames for the publisher itself (a RESP3 client publishing to a channel it is
    /// subscribed to) go to `to_self` instead, so the caller can write its `:N` reply
    /// before them, as Redis 7.2 does. Subscribers whose writers must be woken are
    /// added to `wakes`; the caller wakes them once its batch of requests is done.
    pub fn publish(
        &self,
        ns: Namespace,
        channel: &[u8],
        payload: &[u8],
        publisher: u64,
        to_self: &mut Vec<Bytes>,
        wakes: &mut Vec<Arc<Outbox>>,
    ) -> usize {
        crate::stats::Stats::add(&self.stats.messages_published, 1);
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
            let mut frames = Frames {
                kind,
                pattern: None,
                channel,
                payload,
                encoded: [None, None],
            };
            delivered += self.deliver(&subs, &mut frames, publisher, to_self, wakes);
        }
        // Patterns never see shard channels.
        if ns == Namespace::Global && !self.patterns.is_empty() {
            self.patterns.for_each_match(channel, |pattern, subs| {
                let mut frames = Frames {
                    kind: b"pmessage",
                    pattern: Some(pattern),
                    channel,
                    payload,
                    encoded: [None, None],
                };
                delivered += self.deliver(subs, &mut frames, publisher, to_self, wakes);
            });
        }
        crate::stats::Stats::add(&self.stats.messages_delivered, delivered as u64);
        delivered
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
            let frame = frames.get(sub.proto());
            if sub.id == publisher {
                to_self.push(frame.clone());
                delivered += 1;
                continue;
            }
            match sub.push_message(frame, &self.settings, wakes) {
                Pushed::Queued => delivered += 1,
                Pushed::QueuedAfterDropping(n) => {
                    delivered += 1;
                    crate::stats::Stats::add(&self.stats.messages_dropped, n);
                }
                Pushed::Dropped => crate::stats::Stats::add(&self.stats.messages_dropped, 1),
                Pushed::DroppedAfterDropping(n) => crate::stats::Stats::add(&self.stats.messages_dropped, n + 1),
                Pushed::Disconnected => crate::stats::Stats::add(&self.stats.obuf_limit_disconnections, 1),
                Pushed::Gone => {}
            }
        }
        delivered
    }

    /// PUBSUB NUMSUB / SHARDNUMSUB: exact-channel subscribers only.
    pub fn numsub(&self, ns: Namespace, channel: &[u8]) -> usize {
        self.map(ns).get(channel).map_or(0, |s| s.len())
    }

    /// PUBSUB CHANNELS / SHARDCHANNELS: channels with at least one subscriber.
    pub fn channels(&self, ns: Namespace, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.map(ns)
            .iter()
            .filter(|e| pattern.is_none_or(|p| super::glob::matches(p, e.key())))
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
