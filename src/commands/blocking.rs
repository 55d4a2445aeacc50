//! Blocked reads (XREAD / XREADGROUP BLOCK) from the blocked client's side: parking the
//! command, resuming it when a writer served it or its deadline passed, CLIENT UNBLOCK.
//! `crate::keyspace::blocked` explains the design; `streams::serve_key` is the writer's
//! side.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::errors::Error;
use super::{Flow, Session, Wait};
use crate::keyspace::blocked::{Outcome, Waiter};
use crate::keyspace::Keyspace;
use crate::spec::Spec;
use crate::sync::LockExt;

/// A command parked until a writer serves it, its deadline passes or CLIENT UNBLOCK.
pub struct BlockedCall {
    waiter: Arc<Waiter>,
    spec: &'static Spec,
    deadline: Option<Instant>,
}

impl Session {
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
