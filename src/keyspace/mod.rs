//! The keyspace: `databases` numbered maps from key (bytes) to value, as Redis has them.
//! The stream ([`crate::stream::Stream`]) is the one value type.
//!
//! * [`Keyspace`] holds the databases and everything a write must act on: the clients
//!   blocked on keys ([`blocked`]), the WATCHed keys ([`watch`]) and the keyspace
//!   notifications a command raised. It lives behind one lock in the broker (Redis runs
//!   commands one at a time; so do we, for the few microseconds a command holds the
//!   keys). Replies are encoded under it; sockets, parsing and fan-out are not.
//! * Keys are ordered by a keyed hash ([`Db`]): SCAN's cursor is the next hash to visit,
//!   so a key present for the whole scan is returned however the map changed meanwhile
//!   (Redis's reverse-binary cursor gives the same promise over its rehashing tables),
//!   and RANDOMKEY is a seek to a random hash. The keyed hash keeps the order
//!   unpredictable to clients.
//! * Expiry, as in Redis: a key past its deadline is removed when a command touches it
//!   ([`Keyspace::lookup`]), and the cron removes due keys in small bounded steps
//!   ([`Keyspace::expire_due`]) from an index ordered by deadline, so it never scans
//!   everything at once.
//! * Every change is also written, in the order the lock gives, as the commands that
//!   redo it ([`journal`]), for the append-only file (`crate::persistence`).
//! * Effects that must wait for the end of the command (or of the whole EXEC): keys
//!   whose blocked readers may now be served (`ready`) and keyspace notifications
//!   (`events`), published once the lock is released.

pub mod blocked;
pub mod journal;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher;
use std::sync::Arc;

use bytes::Bytes;

use crate::config::{notify, Settings};
use crate::stream::Stream;

/// Milliseconds since the Unix epoch (expiry deadlines, stream IDs, idle times).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A value held by a key.
#[derive(Clone)]
pub enum Value {
    Stream(Box<Stream>),
}

impl Value {
    /// TYPE's answer.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Stream(_) => "stream",
        }
    }

    /// OBJECT ENCODING's answer.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Stream(_) => "stream",
        }
    }

    pub fn as_stream_mut(&mut self) -> Option<&mut Stream> {
        match self {
            Value::Stream(s) => Some(s),
        }
    }

    pub fn memory_usage(&self) -> usize {
        match self {
            Value::Stream(s) => std::mem::size_of::<Stream>() + s.memory_usage(),
        }
    }
}

/// The key holds a value of another type (Redis's WRONGTYPE).
#[derive(Debug, PartialEq, Eq)]
pub struct WrongType;

/// One key and its value.
#[derive(Clone)]
pub struct Slot {
    pub key: Bytes,
    pub value: Value,
    /// Unix milliseconds after which the key is gone.
    pub expire_at: Option<u64>,
    /// Last access in seconds since start (OBJECT IDLETIME).
    pub accessed: u32,
    /// Redis's logarithmic access counter (OBJECT FREQ), see [`lfu_touch`].
    pub freq: u8,
}

/// One database. Keys are kept in a map ordered by their keyed hash; the rare keys
/// that share a hash share its bucket.
#[derive(Default)]
pub struct Db {
    slots: BTreeMap<u64, Vec<Slot>>,
    len: usize,
    /// (deadline, hash, key) of every key with a TTL, soonest first.
    expires: BTreeSet<(u64, u64, Bytes)>,
    /// Sum of the deadlines in `expires` (INFO keyspace `avg_ttl`).
    deadline_sum: u128,
}

impl Db {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn expires(&self) -> usize {
        self.expires.len()
    }

    /// Average time to live in ms of the keys with a TTL (0 when none).
    pub fn avg_ttl(&self, now: u64) -> u64 {
        let n = self.expires.len() as u128;
        if n == 0 {
            return 0;
        }
        (self.deadline_sum / n).saturating_sub(now as u128) as u64
    }

    fn get(&self, h: u64, key: &[u8]) -> Option<&Slot> {
        self.slots.get(&h)?.iter().find(|s| s.key == key)
    }

    fn get_mut(&mut self, h: u64, key: &[u8]) -> Option<&mut Slot> {
        self.slots.get_mut(&h)?.iter_mut().find(|s| s.key == key)
    }

    fn insert(&mut self, h: u64, slot: Slot) {
        let bucket = self.slots.entry(h).or_default();
        if let Some(i) = bucket.iter().position(|s| s.key == slot.key) {
            let old = std::mem::replace(&mut bucket[i], slot);
            self.forget_deadline(h, &old);
            let new = &self.slots[&h][i];
            if let Some(at) = new.expire_at {
                let key = new.key.clone();
                self.remember_deadline(h, at, key);
            }
        } else {
            let deadline = slot.expire_at.map(|at| (at, slot.key.clone()));
            bucket.push(slot);
            self.len += 1;
            if let Some((at, key)) = deadline {
                self.remember_deadline(h, at, key);
            }
        }
    }

    fn remove(&mut self, h: u64, key: &[u8]) -> Option<Slot> {
        let bucket = self.slots.get_mut(&h)?;
        let i = bucket.iter().position(|s| s.key == key)?;
        let slot = bucket.swap_remove(i);
        if bucket.is_empty() {
            self.slots.remove(&h);
        }
        self.len -= 1;
        self.forget_deadline(h, &slot);
        Some(slot)
    }

    fn remember_deadline(&mut self, h: u64, at: u64, key: Bytes) {
        self.expires.insert((at, h, key));
        self.deadline_sum += at as u128;
    }

    fn forget_deadline(&mut self, h: u64, slot: &Slot) {
        if let Some(at) = slot.expire_at {
            if self.expires.remove(&(at, h, slot.key.clone())) {
                self.deadline_sum -= at as u128;
            }
        }
    }

    fn set_expire(&mut self, h: u64, key: &[u8], at: Option<u64>) -> bool {
        let Some(slot) = self.get_mut(h, key) else {
            return false;
        };
        let old = slot.expire_at;
        slot.expire_at = at;
        let key = slot.key.clone();
        if let Some(old) = old {
            if self.expires.remove(&(old, h, key.clone())) {
                self.deadline_sum -= old as u128;
            }
        }
        if let Some(at) = at {
            self.remember_deadline(h, at, key);
        }
        true
    }

    /// Visits keys in hash order from `cursor`, at most `count` buckets; returns the
    /// cursor to continue from (0 when the end was reached).
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&Slot)) -> u64 {
        for (seen, (&h, bucket)) in self.slots.range(cursor..).enumerate() {
            if seen == count.max(1) {
                return h.max(1);
            }
            for s in bucket {
                visit(s);
            }
        }
        0
    }

    /// A key at a random position (`r` is a random hash).
    pub fn random(&self, r: u64) -> Option<&Slot> {
        let bucket = self.slots.range(r..).next().or_else(|| self.slots.iter().next())?.1;
        bucket.first()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.slots.values().flatten()
    }
}

/// A keyspace notification to publish once the command is done.
pub struct Event {
    pub db: usize,
    pub class: u32,
    pub name: &'static str,
    pub key: Bytes,
}

/// What the current command (or EXEC) left to do once it is done.
#[derive(Default)]
pub struct Effects {
    /// Keys that may let blocked clients go on, in the order they were written.
    pub ready: Vec<(usize, Bytes)>,
    pub events: Vec<Event>,
}

pub struct Keyspace {
    dbs: Vec<Db>,
    hasher: std::hash::RandomState,
    pub blocked: blocked::Blocked,
    pub watches: Arc<watch::WatchTable>,
    pub effects: Effects,
    /// Every change, as commands that redo it, for the append-only file.
    pub journal: journal::Journal,
    pub settings: Arc<Settings>,
    /// Keys removed because their TTL passed (INFO `expired_keys`).
    pub expired: u64,
    /// State of the LFU counters' coin flips.
    rng: u64,
    /// Lookups that found their key, and that did not (INFO `keyspace_hits/misses`).
    pub hits: u64,
    pub misses: u64,
    started: std::time::Instant,
    /// Replaying the AOF: nothing expires (as in Redis, a key's later commands in the
    /// file ran while it was alive; it expires once loading is done).
    pub loading: bool,
}

impl Keyspace {
    pub fn new(settings: Arc<Settings>, watches: Arc<watch::WatchTable>) -> Keyspace {
        let databases = settings.databases() as usize;
        Keyspace {
            dbs: (0..databases.max(1)).map(|_| Db::default()).collect(),
            hasher: std::hash::RandomState::new(),
            blocked: Default::default(),
            watches,
            effects: Default::default(),
            journal: Default::default(),
            settings,
            expired: 0,
            rng: now_ms(),
            hits: 0,
            misses: 0,
            started: std::time::Instant::now(),
            loading: false,
        }
    }

    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    pub fn databases(&self) -> usize {
        self.dbs.len()
    }

    pub fn db(&self, db: usize) -> &Db {
        &self.dbs[db]
    }

    /// Seconds since start: the access clock behind OBJECT IDLETIME.
    pub fn clock(&self) -> u32 {
        self.started.elapsed().as_secs() as u32
    }

    /// The key's slot if it exists and has not expired (an expired key is removed
    /// here, as Redis's `expireIfNeeded`). Counts as an access.
    pub fn lookup(&mut self, db: usize, key: &[u8], now: u64) -> Option<&mut Slot> {
        self.lookup_with(db, key, now, true)
    }

    /// As [`Keyspace::lookup`], but leaves the access time alone (OBJECT, TTL, TYPE
    /// with `no-touch` semantics).
    pub fn peek(&mut self, db: usize, key: &[u8], now: u64) -> Option<&mut Slot> {
        self.lookup_with(db, key, now, false)
    }

    fn lookup_with(&mut self, db: usize, key: &[u8], now: u64, touch: bool) -> Option<&mut Slot> {
        let h = self.hash(key);
        // Only a database holding TTLs can hold an expired key: one walk of the map
        // otherwise (the XADD path), two when the deadline has to be looked at first.
        if !self.dbs[db].expires.is_empty()
            && !self.loading
            && self.dbs[db]
                .get(h, key)
                .is_some_and(|slot| slot.expire_at.is_some_and(|at| at <= now))
        {
            self.misses += touch as u64;
            self.expire_key(db, h, key);
            return None;
        }
        let clock = self.clock();
        let Some(slot) = self.dbs[db].get_mut(h, key) else {
            self.misses += touch as u64;
            return None;
        };
        if touch {
            self.hits += 1;
            slot.freq = lfu_touch(slot.freq, clock.saturating_sub(slot.accessed), &mut self.rng);
            slot.accessed = clock;
        }
        Some(slot)
    }

    pub fn exists(&mut self, db: usize, key: &[u8], now: u64) -> bool {
        self.peek(db, key, now).is_some()
    }

    /// The stream at `key`: `Ok(None)` if there is no key.
    pub fn stream_mut(&mut self, db: usize, key: &[u8], now: u64) -> Result<Option<&mut Stream>, WrongType> {
        match self.lookup(db, key, now) {
            None => Ok(None),
            Some(slot) => slot.value.as_stream_mut().map(Some).ok_or(WrongType),
        }
    }

    /// Stores a value under a key (replacing any), with no TTL. The key is copied so
    /// that it never pins a connection's read buffer.
    pub fn insert(&mut self, db: usize, key: &[u8], value: Value) {
        let h = self.hash(key);
        let slot = Slot {
            key: Bytes::copy_from_slice(key),
            value,
            expire_at: None,
            accessed: self.clock(),
            freq: LFU_INIT,
        };
        self.dbs[db].insert(h, slot);
    }

    /// Creates an empty stream at `key` (which must be free) and returns it.
    pub fn create_stream(&mut self, db: usize, key: &[u8]) -> &mut Stream {
        self.insert(db, key, Value::Stream(Box::default()));
        self.notify(db, notify::NEW, "new", key);
        let h = self.hash(key);
        match self.dbs[db].get_mut(h, key).map(|s| &mut s.value) {
            Some(Value::Stream(s)) => s,
            None => unreachable!("just inserted"),
        }
    }

    /// Removes a key (DEL, UNLINK, RENAME's source, expiry). Returns its slot.
    pub fn remove(&mut self, db: usize, key: &[u8]) -> Option<Slot> {
        let h = self.hash(key);
        let slot = self.dbs[db].remove(h, key)?;
        self.written(db, key);
        Some(slot)
    }

    /// Puts a whole slot (with its TTL) under `key`: RENAME, COPY, MOVE.
    pub fn put_slot(&mut self, db: usize, key: &[u8], mut slot: Slot) {
        let h = self.hash(key);
        slot.key = Bytes::copy_from_slice(key);
        self.dbs[db].insert(h, slot);
        self.written(db, key);
        self.notify(db, notify::NEW, "new", key);
    }

    /// Sets or clears a key's deadline. False if there is no such key.
    pub fn set_expire(&mut self, db: usize, key: &[u8], at: Option<u64>) -> bool {
        let h = self.hash(key);
        self.dbs[db].set_expire(h, key, at)
    }

    fn expire_key(&mut self, db: usize, h: u64, key: &[u8]) {
        if let Some(slot) = self.dbs[db].remove(h, key) {
            self.expired += 1;
            // Replicas and the AOF see an expiry as a deletion (Redis's `propagateDeletion`).
            self.journal.command(db, 2).arg(b"DEL").arg(&slot.key);
            self.written(db, &slot.key);
            self.notify(db, notify::EXPIRED, "expired", &slot.key);
        }
    }

    /// Removes up to `max` keys whose deadline has passed, soonest first (the cron's
    /// active expiry). Returns how many went.
    pub fn expire_due(&mut self, now: u64, max: usize) -> usize {
        let mut done = 0;
        if self.loading {
            return 0;
        }
        for db in 0..self.dbs.len() {
            while done < max {
                let Some((at, h, key)) = self.dbs[db].expires.first().cloned() else {
                    break;
                };
                if at > now {
                    break;
                }
                self.expire_key(db, h, &key);
                done += 1;
            }
        }
        done
    }

    /// A write changed `key`: WATCHers fail their EXEC and readers blocked on it are
    /// looked at once the command is done (Redis's `signalModifiedKey` +
    /// `signalKeyAsReady`).
    pub fn written(&mut self, db: usize, key: &[u8]) {
        self.watches.touch(db, key);
        self.signal_ready(db, key);
    }

    /// Readers blocked on `key` get looked at after the command.
    pub fn signal_ready(&mut self, db: usize, key: &[u8]) {
        // Nobody blocked (the common case): no hashing, no scan.
        if self.blocked.is_empty() {
            return;
        }
        if self.blocked.has(db, self.hash(key)) && !self.effects.ready.iter().any(|(d, k)| *d == db && k == key) {
            self.effects.ready.push((db, Bytes::copy_from_slice(key)));
        }
    }

    /// Raises a keyspace notification of `class` (published after the command).
    pub fn notify(&mut self, db: usize, class: u32, name: &'static str, key: &[u8]) {
        let f = self.settings.notify_flags.load(std::sync::atomic::Ordering::Relaxed);
        if f & (notify::KEYSPACE | notify::KEYEVENT) != 0 && f & class != 0 {
            self.effects.events.push(Event {
                db,
                class,
                name,
                key: Bytes::copy_from_slice(key),
            });
        }
    }

    /// Empties one database (FLUSHDB) or all (FLUSHALL). Returns the old contents so
    /// that ASYNC can free them elsewhere.
    pub fn flush(&mut self, db: Option<usize>) -> Vec<Db> {
        let range = match db {
            Some(d) => d..d + 1,
            None => 0..self.dbs.len(),
        };
        let mut old = Vec::new();
        for d in range {
            if self.dbs[d].is_empty() {
                continue;
            }
            let taken = std::mem::take(&mut self.dbs[d]);
            for key in self.blocked.keys_of_db(d) {
                if taken.get(self.hash(&key), &key).is_some() {
                    self.effects.ready.push((d, key));
                }
            }
            old.push(taken);
        }
        self.watches.touch_db(db);
        old
    }

    /// Keys in a database, with their hashes (KEYS).
    pub fn keys(&self, db: usize) -> impl Iterator<Item = &Slot> {
        self.dbs[db].iter()
    }

    /// A key that has not expired yet at a random position; None if empty.
    pub fn random_key(&mut self, db: usize, now: u64) -> Option<Bytes> {
        // As Redis: a few tries to step over expired keys, which are removed on the way.
        for _ in 0..100 {
            let r = self.hasher.hash_one(now ^ self.dbs[db].len as u64 ^ rand_seed());
            let slot = self.dbs[db].random(r)?;
            if slot.expire_at.is_some_and(|at| at <= now) {
                let key = slot.key.clone();
                let h = self.hash(&key);
                self.expire_key(db, h, &key);
                continue;
            }
            return Some(slot.key.clone());
        }
        None
    }

    /// Whether `key` has expired (without removing it): SCAN and KEYS leave such keys out.
    pub fn is_live(slot: &Slot, now: u64) -> bool {
        slot.expire_at.is_none_or(|at| at > now)
    }

    /// (keys, keys with a TTL) over every database.
    pub fn key_counts(&self) -> (u64, u64) {
        self.dbs
            .iter()
            .fold((0, 0), |(k, e), d| (k + d.len() as u64, e + d.expires() as u64))
    }

    /// Bytes the values hold (MEMORY STATS `dataset.bytes`, `used_memory`).
    pub fn dataset_bytes(&self) -> usize {
        self.dbs
            .iter()
            .flat_map(|d| d.iter())
            .map(|s| s.key.len() + std::mem::size_of::<Slot>() + s.value.memory_usage())
            .sum()
    }
}

/// A new key's access counter (Redis's `LFU_INIT_VAL`), so it is not the first evicted.
const LFU_INIT: u8 = 5;

/// Redis's LFU counter on an access, with its defaults (`lfu-decay-time 1`,
/// `lfu-log-factor 10`): minus one per idle minute, then plus one with probability
/// 1 / ((counter - 5) * 10 + 1), so it grows with the logarithm of the access rate.
fn lfu_touch(counter: u8, idle_secs: u32, rng: &mut u64) -> u8 {
    let c = counter.saturating_sub((idle_secs / 60).min(255) as u8);
    if c == 255 {
        return c;
    }
    let base = f64::from(c.saturating_sub(LFU_INIT));
    let p = 1.0 / (base * 10.0 + 1.0);
    let r = (splitmix64(rng) >> 11) as f64 / (1u64 << 53) as f64;
    if r < p {
        c + 1
    } else {
        c
    }
}

/// The next number of a splitmix64 sequence.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A per-call seed so RANDOMKEY does not return the same key twice in a row.
fn rand_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    N.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lfu_counter_grows_with_the_log_of_accesses_and_decays_per_idle_minute() {
        let mut rng = 42;
        let mut c = LFU_INIT;
        c = lfu_touch(c, 0, &mut rng);
        assert_eq!(c, LFU_INIT + 1, "the first access always counts");
        for _ in 0..1000 {
            c = lfu_touch(c, 0, &mut rng);
        }
        assert!((10..=30).contains(&c), "1,000 accesses: {c}");
        let mut hot = c;
        for _ in 0..100_000 {
            hot = lfu_touch(hot, 0, &mut rng);
        }
        assert!(hot > c && hot < 255, "100,000 more: {hot}");
        // Two idle minutes take two off before the access is counted.
        let decayed = lfu_touch(c, 120, &mut rng);
        assert!(decayed == c - 2 || decayed == c - 1, "{c} -> {decayed}");
    }
}
