//! The keyspace seen from a connection: taking the keyspace lock for a command (or for
//! a whole EXEC), what happens once a write is done (blocked readers served, keyspace
//! notifications published), and blocked reads from the blocked client's side
//! (`crate::keyspace::blocked` explains the design).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::errors::Error;
use super::{Flow, KeysGuard, Session, Wait};
use crate::broker::Broker;
use crate::config::notify;
use crate::keyspace::blocked::{Outcome, Waiter};
use crate::keyspace::{Event, Keyspace};
use crate::pubsub::{Batch, Namespace};
use crate::spec::Spec;
use crate::sync::{LockExt, RwLockExt};

/// A command parked until a writer serves it, its deadline passes or CLIENT UNBLOCK.
pub struct BlockedCall {
    waiter: Arc<Waiter>,
    spec: &'static Spec,
    deadline: Option<Instant>,
}

impl Session {
    /// Runs `f` with the keyspace locked. Outside EXEC, the lock is released when `f`
    /// returns, after serving the readers the command's writes unblocked; the
    /// command's keyspace notifications are then published. Inside EXEC the lock stays
    /// held until EXEC is done ([`Session::end_exec_keys`]).
    pub(super) fn with_keys<R>(&mut self, f: impl FnOnce(&mut Session, &mut Keyspace) -> R) -> R {
        let mut guard: KeysGuard = match self.exec_keys.take() {
            Some(g) => g,
            None => self.broker.keyspace.lock_arc(),
        };
        let r = f(self, &mut guard);
        if self.in_exec {
            self.exec_keys = Some(guard);
        } else {
            let events = settle(&mut guard);
            drop(guard);
            self.publish_events(events);
        }
        r
    }

    /// The end of EXEC: what its commands left to do, then the lock goes.
    pub(super) fn end_exec_keys(&mut self) {
        if let Some(mut guard) = self.exec_keys.take() {
            let events = settle(&mut guard);
            drop(guard);
            self.publish_events(events);
        }
    }

    /// Publishes keyspace notifications through the ordinary fan-out path.
    fn publish_events(&mut self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let broker = self.broker.clone();
        let _gate = (!self.in_exec).then(|| broker.publish_gate.read_locked());
        let mut to_self = Vec::new();
        publish_events(&broker, events, self.id(), &mut to_self, &mut self.batch);
        for frame in to_self {
            self.out.extend_from_slice(&frame);
        }
    }

    /// Parks the current command on `waiter` (registered here) for `timeout_ms`
    /// (0: forever).
    pub(super) fn block(&mut self, ks: &mut Keyspace, spec: &'static Spec, waiter: Waiter, timeout_ms: u64) -> Flow {
        // Replies to the requests before this one go out first: once registered, a
        // writer on another thread may serve this one at any moment.
        self.flush();
        let waiter = Arc::new(waiter);
        ks.blocked.add(waiter.clone());
        let deadline = (timeout_ms > 0)
            .then(|| Instant::now() + std::time::Duration::from_millis(timeout_ms.min(u32::MAX as u64 * 1000)));
        self.blocked = Some(BlockedCall { waiter, spec, deadline });
        self.client.info.locked().blocked = true;
        Flow::Wait(Wait::Keys)
    }

    /// What the connection waits for while blocked: the waiter's wake, or the deadline.
    pub fn blocked_on(&self) -> Option<(Arc<Waiter>, Option<Instant>)> {
        self.blocked.as_ref().map(|b| (b.waiter.clone(), b.deadline))
    }

    /// After a wake or the deadline: sends the blocked command's reply, or blocks on
    /// (a wake that was not for us, or a deadline not reached yet).
    pub fn resume(&mut self) -> Flow {
        let Some(b) = self.blocked.take() else {
            return Flow::Continue;
        };
        // Served (the common case): whoever ended the wait already removed it from the
        // table, so no lock is needed. Otherwise the timeout is decided under the lock,
        // where no writer can be serving it at the same time.
        let outcome = match b.waiter.take() {
            Some(o) => Some(o),
            None if b.deadline.is_some_and(|d| Instant::now() >= d) => {
                let mut ks = self.broker.keyspace.lock();
                match b.waiter.take() {
                    Some(o) => Some(o),
                    None => {
                        ks.blocked.remove(&b.waiter);
                        b.waiter.finish(Outcome::TimedOut);
                        b.waiter.take()
                    }
                }
            }
            None => None,
        };
        let Some(outcome) = outcome else {
            self.blocked = Some(b);
            return Flow::Wait(Wait::Keys);
        };
        self.client.info.locked().blocked = false;
        match outcome {
            // Already in the outbox, sent by the writer that served it.
            Outcome::Delivered => {}
            Outcome::Error(text) => {
                self.error_bytes(&text);
                self.broker.stats.command_calls.failed(b.spec);
            }
            Outcome::TimedOut => self.reply().null_array(),
        }
        Flow::Continue
    }

    /// The client goes away while blocked.
    pub(super) fn forget_blocked(&mut self) {
        if let Some(b) = self.blocked.take() {
            self.broker.keyspace.lock().blocked.remove(&b.waiter);
            self.client.info.locked().blocked = false;
        }
    }
}

/// CLIENT UNBLOCK: ends client `id`'s blocked read with the null reply or
/// (`error`) the UNBLOCKED error. False if it is not blocked on keys.
pub(super) fn unblock(ks: &mut Keyspace, id: u64, error: bool) -> bool {
    let Some(w) = ks.blocked.of_client(id) else {
        return false;
    };
    let outcome = if error {
        Outcome::Error(Bytes::from(Error::UnblockedByClient.text()))
    } else {
        Outcome::TimedOut
    };
    ks.blocked.remove(&w);
    w.finish(outcome)
}

/// Once a command (or EXEC) is done: serves the readers blocked on the keys it wrote,
/// in the order they blocked, then hands back the notifications to publish.
fn settle(ks: &mut Keyspace) -> Vec<Event> {
    while !ks.effects.ready.is_empty() {
        let ready = std::mem::take(&mut ks.effects.ready);
        for (db, key) in ready {
            super::streams::serve_key(ks, db, &key);
        }
    }
    std::mem::take(&mut ks.effects.events)
}

/// Publishes keyspace notifications on `__keyspace@<db>__:<key>` and
/// `__keyevent@<db>__:<event>`, as the classes in `notify-keyspace-events` ask. The
/// caller holds the publish gate (or EXEC does).
fn publish_events(broker: &Broker, events: Vec<Event>, publisher: u64, to_self: &mut Vec<Bytes>, batch: &mut Batch) {
    let flags = broker.settings.notify_flags.load(std::sync::atomic::Ordering::Relaxed);
    for ev in events {
        if flags & notify::KEYSPACE != 0 {
            let mut ch = format!("__keyspace@{}__:", ev.db).into_bytes();
            ch.extend_from_slice(&ev.key);
            broker
                .registry
                .publish(Namespace::Global, &ch, ev.name.as_bytes(), publisher, to_self, batch);
        }
        if flags & notify::KEYEVENT != 0 {
            let ch = format!("__keyevent@{}__:{}", ev.db, ev.name);
            broker
                .registry
                .publish(Namespace::Global, ch.as_bytes(), &ev.key, publisher, to_self, batch);
        }
    }
}

/// The cron's active expiry: due keys go in bounded steps (so no tick holds the
/// keyspace long), with the wake-ups and notifications a deletion brings.
pub fn expire_cycle(broker: &Broker) {
    const STEP: usize = 64;
    for _ in 0..16 {
        let (done, events) = {
            let mut ks = broker.keyspace.lock();
            let done = ks.expire_due(crate::keyspace::now_ms(), STEP);
            (done, settle(&mut ks))
        };
        if !events.is_empty() {
            let _gate = broker.publish_gate.read_locked();
            let mut batch = Batch::default();
            publish_events(broker, events, 0, &mut Vec::new(), &mut batch);
            broker.registry.end_batch(&mut batch);
        }
        if done < STEP {
            break;
        }
    }
}
