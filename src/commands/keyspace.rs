//! The keyspace seen from a connection: taking the keyspace lock for a command (or for a
//! whole EXEC), and what happens once a write is done: readers blocked on the written
//! keys are served, then the keyspace notifications are published (after the lock is
//! released, through the ordinary fan-out path). The cron's active expiry goes through
//! the same steps.

use bytes::Bytes;

use super::{KeysGuard, Session};
use crate::broker::Broker;
use crate::config::notify;
use crate::keyspace::{Event, Keyspace};
use crate::pubsub::{Batch, Namespace};
use crate::sync::RwLockExt;

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
            self.settle(guard);
        }
        r
    }

    /// The end of EXEC: what its commands left to do, then the lock goes.
    pub(super) fn end_exec_keys(&mut self) {
        if let Some(guard) = self.exec_keys.take() {
            self.settle(guard);
        }
    }

    /// After a command or an EXEC: blocked readers served, the journal's unit committed
    /// (the replies wait for its end to be written, and under `appendfsync always`
    /// synced, as Redis writes its AOF buffer before it replies), the lock released, the
    /// notifications published.
    fn settle(&mut self, mut guard: KeysGuard) {
        let events = settle(&mut guard);
        if let Some(end) = guard.journal.commit() {
            self.durable_wait = Some(end);
        }
        drop(guard);
        self.publish_events(events);
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
            let events = settle(&mut ks);
            ks.journal.commit();
            (done, events)
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
