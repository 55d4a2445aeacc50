//! Clients blocked on keys (XREAD / XREADGROUP with BLOCK).
//!
//! A blocked client parks its connection task on its [`Waiter`] (no thread, no poll):
//! it costs the waiter and a timer entry. A write to a key marks it ready; once the
//! write's command (or the whole EXEC) is done, the writer serves the waiters of the
//! ready keys in the order they blocked, under the keyspace lock: it computes each
//! reply (the same bytes for every reader that asked for the same thing), stores it in
//! the waiter and wakes the connection task, which sends it and goes on with its
//! pipeline. Serving in the writer keeps Redis's FIFO order between readers of one
//! consumer group and lets one XADD wake 10,000 readers with one encoding.
//!
//! A waiter ends exactly once ([`Waiter::finish`]): served, failed (the key or the group
//! went away), timed out, or unblocked by CLIENT UNBLOCK. Whoever ends it removes it
//! from the table; the connection task only reads the outcome.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::stream::Id;
use crate::sync::LockExt;

/// What a blocked reader reads.
pub enum Read {
    /// XREAD: entries after the given ID of each key.
    Plain { after: Vec<Id> },
    /// XREADGROUP `>`: new entries for the group.
    Group { group: Bytes, consumer: Bytes, noack: bool },
}

/// Hands a served reply straight to the blocked client's output queue (its writer
/// sends it without waiting for the client's own task to run first).
pub type Deliver = Box<dyn Fn(Bytes) + Send + Sync>;

/// How a blocked command ended.
pub enum Outcome {
    /// The reply (already encoded in the client's protocol) went out through
    /// [`Waiter::deliver`].
    Delivered,
    /// An error reply's text (without the leading `-`).
    Error(Bytes),
    /// The timeout passed, or CLIENT UNBLOCK ... TIMEOUT: the null reply.
    TimedOut,
}

pub struct Waiter {
    pub client: u64,
    pub db: usize,
    pub keys: Vec<Bytes>,
    /// The keyspace hash of each key.
    pub hashes: Vec<u64>,
    pub read: Read,
    /// COUNT (0: no limit).
    pub count: usize,
    /// RESP3 replies.
    pub resp3: bool,
    deliver: Deliver,
    outcome: Mutex<State>,
    wake: tokio::sync::Notify,
}

enum State {
    Waiting,
    Done(Outcome),
    Taken,
}

impl Waiter {
    pub fn new(
        client: u64,
        db: usize,
        keys: Vec<(Bytes, u64)>,
        read: Read,
        count: usize,
        resp3: bool,
        deliver: Deliver,
    ) -> Waiter {
        let (keys, hashes) = keys.into_iter().unzip();
        Waiter {
            client,
            db,
            keys,
            hashes,
            read,
            count,
            resp3,
            deliver,
            outcome: Mutex::new(State::Waiting),
            wake: tokio::sync::Notify::new(),
        }
    }

    pub fn is_waiting(&self) -> bool {
        matches!(*self.outcome.locked(), State::Waiting)
    }

    /// Ends the wait with `o` and wakes the client; false if it had already ended.
    /// The caller removes the waiter from the table.
    pub fn finish(&self, o: Outcome) -> bool {
        let mut s = self.outcome.locked();
        if !matches!(*s, State::Waiting) {
            return false;
        }
        *s = State::Done(o);
        drop(s);
        // A permit: a wake before the task awaits is not lost.
        self.wake.notify_one();
        true
    }

    /// Serves the wait with `reply`: sent at once, then the client goes on with its
    /// pipeline. False if the wait had already ended.
    pub fn serve(&self, reply: Bytes) -> bool {
        let mut s = self.outcome.locked();
        if !matches!(*s, State::Waiting) {
            return false;
        }
        (self.deliver)(reply);
        *s = State::Done(Outcome::Delivered);
        drop(s);
        self.wake.notify_one();
        true
    }

    /// The outcome, once (None while still waiting).
    pub fn take(&self) -> Option<Outcome> {
        let mut s = self.outcome.locked();
        match std::mem::replace(&mut *s, State::Taken) {
            State::Done(o) => Some(o),
            State::Waiting => {
                *s = State::Waiting;
                None
            }
            State::Taken => None,
        }
    }

    /// Resolves when [`Waiter::finish`] was called (possibly before this was awaited).
    pub async fn woken(&self) {
        self.wake.notified().await
    }
}

/// Every blocked client, by key and by client id.
#[derive(Default)]
pub struct Blocked {
    /// (database, key hash) -> waiters in the order they blocked.
    by_key: HashMap<(usize, u64), VecDeque<Arc<Waiter>>>,
    by_client: HashMap<u64, Arc<Waiter>>,
}

impl Blocked {
    pub fn add(&mut self, w: Arc<Waiter>) {
        for &h in &w.hashes {
            self.by_key.entry((w.db, h)).or_default().push_back(w.clone());
        }
        self.by_client.insert(w.client, w);
    }

    /// Takes a waiter out of every queue (it was served, failed, timed out, or its
    /// client went away).
    pub fn remove(&mut self, w: &Arc<Waiter>) {
        for &h in &w.hashes {
            if let Some(q) = self.by_key.get_mut(&(w.db, h)) {
                q.retain(|x| !Arc::ptr_eq(x, w));
                if q.is_empty() {
                    self.by_key.remove(&(w.db, h));
                }
            }
        }
        if self.by_client.get(&w.client).is_some_and(|x| Arc::ptr_eq(x, w)) {
            self.by_client.remove(&w.client);
        }
    }

    /// Whether anyone waits on the key with this hash.
    pub fn has(&self, db: usize, h: u64) -> bool {
        !self.by_key.is_empty() && self.by_key.contains_key(&(db, h))
    }

    /// The waiters of a key, in the order they blocked (a snapshot: serving one
    /// removes it from the table).
    pub fn waiters(&self, db: usize, h: u64) -> Vec<Arc<Waiter>> {
        self.by_key
            .get(&(db, h))
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn of_client(&self, id: u64) -> Option<Arc<Waiter>> {
        self.by_client.get(&id).cloned()
    }

    /// Blocked clients (INFO `blocked_clients`).
    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    /// Keys clients wait on in `db` (FLUSHDB/FLUSHALL wake them).
    pub fn keys_of_db(&self, db: usize) -> Vec<Bytes> {
        let mut keys: Vec<Bytes> = Vec::new();
        for w in self.by_client.values().filter(|w| w.db == db) {
            for k in &w.keys {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
        keys
    }

    /// Keys blocked on (INFO `blocked_keys`... and `total_blocking_keys`).
    pub fn key_count(&self) -> usize {
        self.by_key.len()
    }
}
