//! MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! MULTI starts queueing: each command passes the usual checks (a refused one makes EXEC
//! abort with EXECABORT) and answers `+QUEUED`. EXEC runs the queue back to back inside
//! one call, so nothing from this connection can come in between, and holds the publish
//! gate exclusively when the queue publishes, so nothing from other connections reaches
//! a subscriber in between either. WATCH registers keys in the keyspace's
//! [`WatchTable`](crate::keyspace::watch::WatchTable); a write to one of them makes EXEC
//! reply with a null array instead of running.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::errors::Error;
use super::{Flow, Session};
use crate::spec::{Cmd, Spec};
use crate::sync::{LockExt, RwLockExt};

/// A transaction being queued.
#[derive(Default)]
pub struct Multi {
    pub queue: Vec<(&'static Spec, Vec<Bytes>)>,
    /// A command was refused while queueing: EXEC aborts.
    pub dirty: bool,
    /// Bytes the queued requests took on the wire (CLIENT LIST `multi-mem`), bounded by
    /// `client-query-buffer-limit`: queued commands are input not yet run.
    pub bytes: usize,
}

impl Session {
    pub(super) fn multi(&mut self) -> Flow {
        if self.multi.is_some() {
            self.fail(Error::NestedMulti);
        } else {
            self.multi = Some(Multi::default());
            self.client.info.locked().multi = 0;
            self.ok();
        }
        Flow::Continue
    }

    pub(super) fn discard(&mut self) -> Flow {
        if self.multi.take().is_none() {
            self.fail(Error::DiscardWithoutMulti);
        } else {
            self.show_no_transaction();
            self.unwatch_all();
            self.ok();
        }
        Flow::Continue
    }

    pub(super) fn exec(&mut self) -> Flow {
        let Some(multi) = self.multi.take() else {
            self.fail(Error::ExecWithoutMulti);
            return Flow::Continue;
        };
        let broken = self.watch_broken();
        self.unwatch_all();
        if multi.dirty || broken {
            self.show_no_transaction();
            if multi.dirty {
                self.fail(Error::ExecAbort);
            } else {
                self.reply().null_array();
            }
            return Flow::Continue;
        }
        // Writes publish too (keyspace notifications), once EXEC is done.
        let publishes = multi
            .queue
            .iter()
            .any(|(s, _)| matches!(s.cmd, Cmd::Publish | Cmd::Spublish) || s.has(crate::spec::Flags::WRITE));
        let broker = self.broker.clone();
        let _gate = publishes.then(|| broker.publish_gate.write_locked());
        self.in_exec = true;
        self.reply().array(multi.queue.len());
        let mut flow = Flow::Continue;
        for (spec, args) in &multi.queue {
            // Permissions may have changed since the command was queued (Redis checks
            // again too); a refusal is that command's reply.
            if let Err(denied) = self.user.check(spec, args) {
                self.acl_denied_at_exec(spec, args, denied);
                continue;
            }
            match self.call(spec, args, std::time::Instant::now()) {
                Flow::Continue | Flow::Wait(_) => {}
                other => flow = other,
            }
        }
        self.end_exec_keys();
        self.in_exec = false;
        // Until EXEC is done, CLIENT LIST still shows the transaction (`x`, `multi=`).
        self.show_no_transaction();
        flow
    }

    pub(super) fn watch(&mut self, keys: &[Bytes]) -> Flow {
        if self.multi.is_some() {
            // Not a refusal: the transaction stays good, as in Redis.
            self.fail(Error::WatchInMulti);
            return Flow::Continue;
        }
        for k in keys {
            // A copy: a slice would pin the read buffer for as long as the watch lasts.
            let key = (self.db, Bytes::copy_from_slice(k));
            if !self.watched.contains(&key) {
                self.broker.watches.watch(self.db, key.1.clone(), &self.watcher);
                self.watched.push(key);
            }
        }
        self.ok();
        Flow::Continue
    }

    pub(super) fn unwatch_reply(&mut self) -> Flow {
        self.unwatch_all();
        self.ok();
        Flow::Continue
    }

    /// CLIENT LIST: no transaction (`multi=-1`, `multi-mem=0`).
    pub(super) fn show_no_transaction(&self) {
        let mut info = self.client.info.locked();
        info.multi = -1;
        info.multi_mem = 0;
    }

    /// Forgets every watched key and clears the "changed" flag.
    pub fn unwatch_all(&mut self) {
        if !self.watched.is_empty() {
            self.broker.watches.unwatch(&self.watched, &self.watcher);
            self.watched.clear();
        }
        self.watcher.store(false, Ordering::Release);
    }
}
