//! Runs: consecutive publishes from one batch to one channel, delivered to each
//! subscriber as one frame.
//!
//! Why: a pipelined batch of 32 PUBLISHes to a channel with 1,000 subscribers is
//! otherwise 32,000 queue pushes, each taking a subscriber's lock and bumping the shared
//! frame's reference count, a cache line both cores fight over. That per-delivery work,
//! not the socket, was most of fanout's CPU in pipelined fan-out. A run costs each
//! subscriber two queue operations per batch, whatever the batch holds.
//!
//! How: the second consecutive publish to the same subscriber set opens a run. It
//! queues, for each subscriber, a *pending* frame holding the subscriber's place (and
//! counting the first message against its output limit), and starts a buffer with the
//! message encoded once per protocol in use. Further publishes to the same set only
//! append to that buffer. When the batch ends (or a publish goes elsewhere) the run is
//! completed: each pending frame becomes the shared buffer, the rest of the run is counted
//! against the subscriber's limit, and its writer is woken.
//!
//! Order and the unsubscribe guarantee hold: every append happens under the channel's
//! shard read lock after checking that the subscriber set is still the one the run was
//! opened with (subscribing or unsubscribing replaces the set), so a message in a run
//! was published before any change to the set, and it sits in each queue at the place
//! reserved when the run opened, ahead of anything queued later.

use std::sync::Arc;

use bytes::BytesMut;

use super::registry::{Namespace, Subscribers};
use crate::client::Outbox;
use crate::protocol::wire::{encode_message, Wire};

/// A run stops growing at this size, so that its first messages are not held back for
/// long and a subscriber's share of memory stays in proportion to what it is sent.
const RUN_MAX: usize = 256 * 1024;

/// A publisher's state across the requests of one batch (one read from its socket).
#[derive(Default)]
pub struct Batch {
    /// Subscribers whose writers are owed a wake-up at the end of the batch (see
    /// [`Outbox::push_message`]).
    pub wakes: Vec<Arc<Outbox>>,
    /// Publishes in this batch so far.
    pub(super) publishes: u32,
    /// The subscriber set the previous request published to, when it was a publish to
    /// two or more subscribers: a second publish to the same set opens a run.
    pub(super) last: Option<(Namespace, Subscribers)>,
    pub(super) run: Option<Box<Run>>,
}

impl Batch {
    /// Whether this batch queued messages for subscribers (still to be sent).
    pub fn has_deliveries(&self) -> bool {
        !self.wakes.is_empty() || self.run.is_some()
    }
}

pub(super) struct Run {
    /// The publishing connection: its pending frames carry its id.
    pub publisher: u64,
    pub ns: Namespace,
    pub subs: Subscribers,
    /// The run's messages, encoded for each format its subscribers read.
    pub bytes: [Option<BytesMut>; Wire::COUNT],
    pub messages: u32,
    /// Subscribers holding a place in their queue: what each PUBLISH of the run returns.
    pub receivers: usize,
    /// Subscribers refused a place under a drop policy: they miss the whole run.
    pub refused: Vec<Arc<Outbox>>,
}

impl Batch {
    /// Is `subs` (the set a publish is about to reach) the same set as the open run's,
    /// with room left in the run?
    pub(super) fn continues(&self, ns: Namespace, subs: &Subscribers) -> bool {
        self.run
            .as_ref()
            .is_some_and(|r| r.ns == ns && Arc::ptr_eq(&r.subs, subs) && r.size() < RUN_MAX)
    }

    /// Did the previous publish of this batch reach the same set?
    pub(super) fn repeats(&self, ns: Namespace, subs: &Subscribers) -> bool {
        self.last
            .as_ref()
            .is_some_and(|(n, s)| *n == ns && Arc::ptr_eq(s, subs))
    }
}

impl Run {
    fn size(&self) -> usize {
        self.bytes.iter().flatten().map(|b| b.len()).max().unwrap_or(0)
    }

    /// Appends one message in every protocol the run is encoded for.
    pub(super) fn append(&mut self, kind: &[u8], channel: &[u8], payload: &[u8]) {
        for (i, b) in self.bytes.iter_mut().enumerate() {
            if let Some(b) = b {
                encode_message(b, Wire::from_index(i), kind, None, channel, payload);
            }
        }
        self.messages += 1;
    }
}
