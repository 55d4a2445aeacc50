//! Pattern subscriptions, indexed so that a PUBLISH costs what matches rather than
//! every pattern on the server, whatever the patterns look like.
//!
//! Redis tests every pattern on every publish. Here each distinct pattern is filed once,
//! under the most selective literal part it has, and a publish tests only the patterns
//! filed under parts its channel actually has:
//!
//! * **Anchored prefix** (`news.*` under `news.`): for each distinct prefix length in use,
//!   one hash lookup of the channel's first bytes.
//! * **Anchored suffix** (`*.p7`, `bench.*.p7` under `.p7`): the same from the end.
//! * **Inner literal** (`*:42:*` under the gram `:42`): a pattern that must contain a
//!   run of at least 3 literal bytes is filed under one 3-, 4- or 6-byte window of it (a
//!   *gram*, see [`GRAMS`]), and a publish slides windows of those lengths over the
//!   channel, one lookup per position (channels are short, and a bit filter skips most
//!   positions without hashing). Several lengths, because short grams are too few to
//!   spread 10,000 `*:<i>:*` patterns thin (digits alone make 1,000 3-byte grams, and a
//!   channel's other digits hit them), while `*:7:*` offers nothing longer than 3 bytes.
//! * **Fallback**: patterns with no anchored literal and no inner run of 3 bytes (`*`,
//!   `*a*`, `?[0-9]*`) are tested against every channel, as Redis does.
//!
//! [`glob::literals`] finds the runs with the matcher's own token boundaries; a run is a
//! necessary condition, never a sufficient one, so every candidate is confirmed with
//! [`glob::matches`] and correctness never depends on the index. Among the keys a pattern
//! offers (its prefix, its suffix, every gram of its runs) it is filed under the one with
//! the fewest patterns already filed there, preferring keys of 2 bytes or more, then
//! anchored ones, then longer grams. So `room.[0-9]*.42` goes under the suffix `.42`
//! once another room pattern holds the prefix `room.`, and 10,000 `*:<i>:*` spread over
//! the digit grams. The choice is greedy and made once, at PSUBSCRIBE: bucket sizes are
//! known then, how common a literal is among channels is not, so the first few patterns
//! of a family can take a literal that many channels share (`room.`, `room`) and be
//! confirmed against all of them; what keeps the rest apart is that later patterns avoid
//! keys already taken. No rebuild is ever needed. Aho-Corasick over all runs was the
//! alternative: exact substring search in one pass, but the automaton must be rebuilt
//! when patterns change, which with 10,000 patterns is too slow per PSUBSCRIBE unless
//! deferred and batched, while the gram table is plain hash maps updated in place.
//!
//! What a hostile pattern can cost is capped: keys are at most [`MAX_KEY`] bytes (so at
//! most 32 prefix and 32 suffix lengths are ever probed), only the first [`MAX_RUNS`]
//! runs and [`MAX_WINDOWS`] windows are considered, and each pattern is filed under
//! exactly one key, so the index is O(patterns) whatever the patterns contain.
//!
//! **Cache.** Each thread keeps a bounded map channel -> matching patterns (slot
//! numbers, not subscriber sets), valid for one generation of the index. The generation
//! moves whenever a pattern appears or goes, so a channel published again costs one
//! lookup, and a cached slot number always names the pattern it was computed for.
//! Subscriber sets are read from the table each time, under the same read lock as
//! before: the cache never keeps a set alive or delivers to a client whose PUNSUBSCRIBE
//! was confirmed. Per-thread caches need no lock on the publish path; a thread's cache
//! serves one index at a time (the server has one). When a cache is full
//! ([`CACHE_ENTRIES`] channels or [`CACHE_IDS`] cached slot numbers) it is cleared:
//! cheaper than tracking recency, and a miss only costs the index lookup. Channels longer
//! than [`CACHE_MAX_CHANNEL`] bytes are not cached.
//!
//! **Order.** Matching patterns are delivered by literal-prefix length, shortest first,
//! then oldest pattern first: exactly the order of the former prefix-only index (which
//! visited prefix lengths in ascending order and each prefix's patterns in the order they
//! were created), now made explicit and applied after matching. Redis 7 keeps patterns in
//! a dict and delivers in hash order, so no client can depend on Redis's order.
//!
//! Patterns change rarely next to publishes, so the table sits behind a read-write lock
//! that a publish holds only while it queues frames (it never awaits under it).

use crate::sync::RwLockExt;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use foldhash::HashMap;

use super::registry::{with, without, Subscribers};
use crate::client::Outbox;
use crate::glob;

/// Lengths of the windows (grams) inner literals are filed under, shortest first.
pub const GRAMS: [usize; 3] = [3, 4, 6];
/// Anchored keys shorter than this rank after any gram: a 1-byte prefix matches a
/// 256th of channels at best. Two bytes anchored at an end (`room.[0-9]*.7` under `.7`)
/// beat a longer literal that other patterns of the family share (`room`): the first
/// index version ranked keys under 3 bytes last and confirmed six room patterns on
/// every room channel.
const SHORT: usize = 2;
// Grams are packed into a u64 under a length byte.
const _: () = assert!(GRAMS[GRAMS.len() - 1] <= 7);
/// Longest prefix or suffix key: enough to be selective, and it bounds the number of
/// distinct lengths a publish probes.
pub const MAX_KEY: usize = 32;
/// Runs of one pattern considered when choosing its key.
pub const MAX_RUNS: usize = 32;
/// Windows of one pattern considered when choosing its key.
pub const MAX_WINDOWS: usize = 256;
/// Channels a thread's cache holds before it is cleared.
pub const CACHE_ENTRIES: usize = 4096;
/// Slot numbers a thread's cache holds before it is cleared (8 bytes each).
pub const CACHE_IDS: usize = 1 << 17;
/// Longer channels are looked up in the index every time.
pub const CACHE_MAX_CHANNEL: usize = 256;

pub struct PatternIndex {
    table: RwLock<Table>,
    /// Distinct patterns; lets a publish skip the lock when there are none.
    count: AtomicUsize,
    /// Names this index to the per-thread caches.
    id: u64,
}

impl Default for PatternIndex {
    fn default() -> PatternIndex {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        PatternIndex {
            table: RwLock::default(),
            count: AtomicUsize::new(0),
            id: NEXT.fetch_add(1, Relaxed),
        }
    }
}

#[derive(Default)]
struct Table {
    /// Pattern -> its slot.
    slots_by_pattern: HashMap<Bytes, usize>,
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    next_seq: u64,
    /// Moves whenever a pattern appears or goes (see the module doc's cache).
    generation: u64,
    prefixes: Anchored,
    suffixes: Anchored,
    grams: HashMap<u64, Vec<usize>>,
    /// Grams filed, per length in [`GRAMS`]: a length with none is not probed.
    gram_lens: [usize; GRAMS.len()],
    gram_filter: GramFilter,
    fallback: Vec<usize>,
}

struct Entry {
    pattern: Bytes,
    subs: Subscribers,
    key: Key,
    /// Delivery order: literal-prefix length, then creation (see the module doc).
    order: (usize, u64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Key {
    Prefix(Bytes),
    Suffix(Bytes),
    Gram(u64),
    Fallback,
}

/// Prefix or suffix keys, with the distinct key lengths in use and how many keys have each.
#[derive(Default)]
struct Anchored {
    map: HashMap<Bytes, Vec<usize>>,
    lens: BTreeMap<usize, usize>,
}

impl Anchored {
    fn size(&self, key: &[u8]) -> usize {
        self.map.get(key).map_or(0, Vec::len)
    }

    fn add(&mut self, key: &Bytes, slot: usize) {
        let same = self.map.entry(key.clone()).or_default();
        same.push(slot);
        if same.len() == 1 {
            *self.lens.entry(key.len()).or_default() += 1;
        }
    }

    fn remove(&mut self, key: &[u8], slot: usize) {
        let Some(same) = self.map.get_mut(key) else {
            return;
        };
        same.retain(|&s| s != slot);
        if same.is_empty() {
            self.map.remove(key);
            if let Some(n) = self.lens.get_mut(&key.len()) {
                *n -= 1;
                if *n == 0 {
                    self.lens.remove(&key.len());
                }
            }
        }
    }

    /// Slots whose key the channel starts with (`from_end`: ends with).
    fn collect(&self, channel: &[u8], from_end: bool, out: &mut Vec<usize>) {
        for &len in self.lens.keys() {
            if len > channel.len() {
                break;
            }
            let part = if from_end {
                &channel[channel.len() - len..]
            } else {
                &channel[..len]
            };
            if let Some(same) = self.map.get(part) {
                out.extend_from_slice(same);
            }
        }
    }
}

/// A window of at most 7 bytes as a key: its bytes, and its length in the top byte so
/// that grams of different lengths never collide.
fn gram(window: &[u8]) -> u64 {
    let bytes = window.iter().rev().fold(0u64, |k, &b| k << 8 | u64::from(b));
    bytes | (window.len() as u64) << 56
}

/// One bit per hash of the grams in use (256 Ki bits, 32 KB): a channel position whose bit is
/// clear cannot hold a gram of the table, and is skipped without hashing. Bits are not
/// cleared one by one when grams go; the filter is rebuilt from the table once as many
/// grams have gone as remain, so stale bits cost a wasted lookup at most.
#[derive(Default)]
struct GramFilter {
    bits: Vec<u64>,
    stale: usize,
}

impl GramFilter {
    const WORDS: usize = 4096;

    fn bit(g: u64) -> usize {
        (g.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 46) as usize
    }

    fn insert(&mut self, g: u64) {
        if self.bits.is_empty() {
            self.bits = vec![0; Self::WORDS];
        }
        let b = Self::bit(g);
        self.bits[b / 64] |= 1 << (b % 64);
    }

    fn may_contain(&self, g: u64) -> bool {
        let b = Self::bit(g);
        self.bits.get(b / 64).is_some_and(|w| w & (1 << (b % 64)) != 0)
    }

    fn removed(&mut self, grams: &HashMap<u64, Vec<usize>>) {
        self.stale += 1;
        if self.stale > grams.len() + 64 {
            self.stale = 0;
            self.bits.clear();
            for &g in grams.keys() {
                self.insert(g);
            }
        }
    }
}

impl Table {
    /// The key `pattern` is filed under (see the module doc).
    fn choose_key(&self, pattern: &[u8]) -> Key {
        let lits = glob::literals(pattern, MAX_RUNS, MAX_KEY);
        // Lower is better: bucket size, then "shorter than a gram", then anchored first,
        // then longer grams.
        let mut best: Option<((usize, bool, usize), Key)> = None;
        let mut consider = |rank: (usize, bool, usize), key: Key| {
            if best.as_ref().is_none_or(|(r, _)| rank < *r) {
                best = Some((rank, key));
            }
        };
        if let Some(p) = lits.prefix {
            consider((self.prefixes.size(&p), p.len() < SHORT, 0), Key::Prefix(p.into()));
        }
        if let Some(s) = lits.suffix {
            consider((self.suffixes.size(&s), s.len() < SHORT, 1), Key::Suffix(s.into()));
        }
        let windows = GRAMS
            .iter()
            .rev()
            .flat_map(|&n| lits.runs.iter().flat_map(move |run| run.windows(n)));
        for w in windows.take(MAX_WINDOWS) {
            let g = gram(w);
            let size = self.grams.get(&g).map_or(0, Vec::len);
            consider((size, false, 10 - w.len()), Key::Gram(g));
        }
        best.map_or(Key::Fallback, |(_, key)| key)
    }

    fn file(&mut self, key: &Key, slot: usize) {
        match key {
            Key::Prefix(k) => self.prefixes.add(k, slot),
            Key::Suffix(k) => self.suffixes.add(k, slot),
            Key::Gram(g) => {
                self.grams.entry(*g).or_default().push(slot);
                self.gram_filter.insert(*g);
                self.gram_lens[gram_len_index(*g)] += 1;
            }
            Key::Fallback => self.fallback.push(slot),
        }
    }

    fn unfile(&mut self, key: &Key, slot: usize) {
        match key {
            Key::Prefix(k) => self.prefixes.remove(k, slot),
            Key::Suffix(k) => self.suffixes.remove(k, slot),
            Key::Gram(g) => {
                let filed = &mut self.gram_lens[gram_len_index(*g)];
                *filed = filed.saturating_sub(1);
                if let Some(same) = self.grams.get_mut(g) {
                    same.retain(|&s| s != slot);
                    if same.is_empty() {
                        self.grams.remove(g);
                        self.gram_filter.removed(&self.grams);
                    }
                }
            }
            Key::Fallback => self.fallback.retain(|&s| s != slot),
        }
    }

    fn entry(&self, slot: usize) -> Option<&Entry> {
        self.slots.get(slot).and_then(Option::as_ref)
    }

    /// The slots of the patterns matching `channel`, in delivery order: the index's
    /// candidates, each confirmed by the matcher.
    fn find(&self, channel: &[u8]) -> Vec<usize> {
        let mut found = Vec::new();
        self.prefixes.collect(channel, false, &mut found);
        self.suffixes.collect(channel, true, &mut found);
        for (&n, &filed) in GRAMS.iter().zip(&self.gram_lens) {
            if filed == 0 {
                continue;
            }
            for w in channel.windows(n) {
                let g = gram(w);
                if self.gram_filter.may_contain(g) {
                    if let Some(same) = self.grams.get(&g) {
                        found.extend_from_slice(same);
                    }
                }
            }
        }
        found.extend_from_slice(&self.fallback);
        found.retain(|&slot| self.entry(slot).is_some_and(|e| glob::matches(&e.pattern, channel)));
        if found.len() > 1 {
            found.sort_unstable_by_key(|&slot| self.entry(slot).map(|e| e.order));
            // A pattern is filed once, but a channel can hold the same gram twice.
            found.dedup();
        }
        found
    }
}

/// Where gram `g`'s length is in [`GRAMS`].
fn gram_len_index(g: u64) -> usize {
    let len = (g >> 56) as usize;
    GRAMS.iter().position(|&n| n == len).unwrap_or(0)
}

/// A thread's channel -> matching slots cache (see the module doc).
#[derive(Default)]
struct Cache {
    owner: u64,
    generation: u64,
    ids: usize,
    map: HashMap<Box<[u8]>, Rc<[usize]>>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::default();
}

impl PatternIndex {
    pub fn is_empty(&self) -> bool {
        self.count.load(Relaxed) == 0
    }

    /// PUBSUB NUMPAT: distinct patterns with at least one subscriber.
    pub fn len(&self) -> usize {
        self.count.load(Relaxed)
    }

    /// Adds `sub`; true when the pattern is new.
    pub fn subscribe(&self, pattern: &[u8], sub: &Arc<Outbox>) -> bool {
        let mut t = self.table.write_locked();
        if let Some(&slot) = t.slots_by_pattern.get(pattern) {
            if let Some(e) = t.slots.get_mut(slot).and_then(Option::as_mut) {
                e.subs = with(&e.subs, sub);
            }
            return false;
        }
        let pattern = Bytes::copy_from_slice(pattern);
        let key = t.choose_key(&pattern);
        let order = (glob::literal_prefix(&pattern).len(), t.next_seq);
        t.next_seq += 1;
        let slot = match t.free.pop() {
            Some(slot) => slot,
            None => {
                t.slots.push(None);
                t.slots.len() - 1
            }
        };
        t.file(&key, slot);
        t.slots[slot] = Some(Entry {
            pattern: pattern.clone(),
            subs: Arc::from([sub.clone()]),
            key,
            order,
        });
        t.slots_by_pattern.insert(pattern, slot);
        t.generation = t.generation.wrapping_add(1);
        self.count.store(t.slots_by_pattern.len(), Relaxed);
        true
    }

    /// Removes subscriber `id`; true when the pattern is gone.
    pub fn unsubscribe(&self, pattern: &[u8], id: u64) -> bool {
        let mut t = self.table.write_locked();
        let Some(&slot) = t.slots_by_pattern.get(pattern) else {
            return false;
        };
        let Some(e) = t.slots.get_mut(slot).and_then(Option::as_mut) else {
            return false;
        };
        e.subs = without(&e.subs, id);
        if !e.subs.is_empty() {
            return false;
        }
        let key = e.key.clone();
        t.slots[slot] = None;
        t.free.push(slot);
        t.unfile(&key, slot);
        t.slots_by_pattern.remove(pattern);
        t.generation = t.generation.wrapping_add(1);
        self.count.store(t.slots_by_pattern.len(), Relaxed);
        true
    }

    /// Calls `f(pattern, subscribers)` for every distinct pattern (ACL revocation scans).
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &Subscribers)) {
        let t = self.table.read_locked();
        for e in t.slots.iter().flatten() {
            f(&e.pattern, &e.subs);
        }
    }

    /// Up to `limit` distinct patterns with their subscriber counts, in byte order (so a
    /// capped list is the same prefix each time), and how many patterns there are. No
    /// Redis command lists patterns; the dashboard reads them here. The lock is held
    /// while the names are copied, never while they are sorted.
    pub fn counts(&self, limit: usize) -> (Vec<(Bytes, usize)>, usize) {
        let mut all: Vec<(Bytes, usize)> = {
            let t = self.table.read_locked();
            t.slots
                .iter()
                .flatten()
                .map(|e| (e.pattern.clone(), e.subs.len()))
                .collect()
        };
        let total = all.len();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all.truncate(limit);
        (all, total)
    }

    /// Does any pattern match `channel`?
    pub fn any_match(&self, channel: &[u8]) -> bool {
        let mut hit = false;
        if !self.is_empty() {
            self.for_each_match(channel, |_, _| hit = true);
        }
        hit
    }

    /// Calls `f(pattern, subscribers)` for every distinct pattern that matches `channel`,
    /// in the order described in the module doc.
    pub fn for_each_match(&self, channel: &[u8], mut f: impl FnMut(&[u8], &Subscribers)) {
        // The read lock is held while `f` queues: PUNSUBSCRIBE's write lock waits for it,
        // which is the registry's unsubscribe guarantee.
        let t = self.table.read_locked();
        let slots = match self.cached(t.generation, channel) {
            Some(slots) => slots,
            None => {
                let slots: Rc<[usize]> = t.find(channel).into();
                self.remember(t.generation, channel, &slots);
                slots
            }
        };
        for &slot in slots.iter() {
            if let Some(e) = t.entry(slot) {
                f(&e.pattern, &e.subs);
            }
        }
    }

    fn cached(&self, generation: u64, channel: &[u8]) -> Option<Rc<[usize]>> {
        CACHE
            .try_with(|c| {
                let c = c.try_borrow().ok()?;
                if c.owner != self.id || c.generation != generation {
                    return None;
                }
                c.map.get(channel).cloned()
            })
            .ok()
            .flatten()
    }

    fn remember(&self, generation: u64, channel: &[u8], slots: &Rc<[usize]>) {
        if channel.len() > CACHE_MAX_CHANNEL || slots.len() > CACHE_IDS {
            return;
        }
        // Without the cache (a thread being torn down) lookups still work, only slower.
        let _ = CACHE.try_with(|c| {
            let Ok(mut c) = c.try_borrow_mut() else {
                return;
            };
            let stale = c.owner != self.id || c.generation != generation;
            if stale || c.map.len() >= CACHE_ENTRIES || c.ids + slots.len() > CACHE_IDS {
                c.map.clear();
                c.ids = 0;
                c.owner = self.id;
                c.generation = generation;
            }
            c.ids += slots.len();
            c.map.insert(channel.into(), slots.clone());
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches_of(idx: &PatternIndex, ch: &[u8]) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        idx.for_each_match(ch, |p, _| v.push(p.to_vec()));
        v.sort();
        v
    }

    #[test]
    fn index_finds_exactly_the_matching_patterns() {
        let idx = PatternIndex::default();
        let a = Arc::new(Outbox::new(1));
        let b = Arc::new(Outbox::new(2));
        for p in [
            &b"news.*"[..],
            b"news.sports.*",
            b"*",
            b"*.x",
            b"n?ws.*",
            b"\\*lit",
            b"other",
        ] {
            idx.subscribe(p, &a);
        }
        idx.subscribe(b"news.*", &b);
        assert_eq!(idx.len(), 7);
        assert_eq!(
            matches_of(&idx, b"news.sports.x"),
            vec![
                b"*".to_vec(),
                b"*.x".to_vec(),
                b"n?ws.*".to_vec(),
                b"news.*".to_vec(),
                b"news.sports.*".to_vec()
            ]
        );
        assert_eq!(matches_of(&idx, b"*lit"), vec![b"*".to_vec(), b"\\*lit".to_vec()]);
        assert!(matches_of(&idx, b"").is_empty());
        idx.unsubscribe(b"news.*", 1);
        assert_eq!(idx.len(), 7);
        idx.unsubscribe(b"news.*", 2);
        idx.unsubscribe(b"news.sports.*", 1);
        assert_eq!(idx.len(), 5);
        assert_eq!(
            matches_of(&idx, b"news.sports.x"),
            vec![b"*".to_vec(), b"*.x".to_vec(), b"n?ws.*".to_vec()]
        );
    }

    #[test]
    fn counts_are_sorted_and_capped() {
        let idx = PatternIndex::default();
        let a = Arc::new(Outbox::new(1));
        let b = Arc::new(Outbox::new(2));
        for p in [&b"z*"[..], b"a*", b"m?"] {
            idx.subscribe(p, &a);
        }
        idx.subscribe(b"m?", &b);
        let (list, total) = idx.counts(2);
        assert_eq!(total, 3);
        assert_eq!(
            list,
            vec![(Bytes::from_static(b"a*"), 1), (Bytes::from_static(b"m?"), 2)]
        );
        assert_eq!(idx.counts(0), (vec![], 3));
    }
    /// The matches in delivery order, looked up twice (the second answer comes from the
    /// thread's cache) and checked to agree.
    fn ordered(idx: &PatternIndex, ch: &[u8]) -> Vec<Vec<u8>> {
        let mut first = Vec::new();
        idx.for_each_match(ch, |p, _| first.push(p.to_vec()));
        let mut again = Vec::new();
        idx.for_each_match(ch, |p, _| again.push(p.to_vec()));
        assert_eq!(first, again, "cached answer differs for {ch:?}");
        first
    }

    #[test]
    fn every_shape_is_filed_under_a_selective_key() {
        let idx = PatternIndex::default();
        let a = Arc::new(Outbox::new(1));
        for i in 0..200 {
            for p in [
                format!("p{i}.*"),
                format!("bench.*.p{i}"),
                format!("*.q{i}"),
                format!("*:{i}:*"),
                format!("room.[0-9]*.{i}"),
            ] {
                idx.subscribe(p.as_bytes(), &a);
            }
        }
        let t = idx.table.read_locked();
        // Only the first of each family shares its key with nobody yet.
        assert!(t.fallback.is_empty());
        assert!(t.prefixes.map.values().all(|v| v.len() == 1), "prefix buckets");
        assert!(t.suffixes.map.values().all(|v| v.len() == 1), "suffix buckets");
        assert!(t.grams.values().all(|v| v.len() <= 2), "gram buckets");
        // Only the first room pattern takes a literal every room channel has.
        let shared = |k: &Key| match k {
            Key::Prefix(p) => &p[..] == b"room.",
            Key::Gram(g) => {
                let len = (g >> 56) as usize;
                let bytes = &g.to_le_bytes()[..len];
                b"room.".windows(len).any(|w| w == bytes)
            }
            _ => false,
        };
        assert_eq!(t.slots.iter().flatten().filter(|e| shared(&e.key)).count(), 1);
        drop(t);
        assert_eq!(ordered(&idx, b"x:57:y"), vec![b"*:57:*".to_vec()]);
        assert_eq!(ordered(&idx, b"room.1a.57"), vec![b"room.[0-9]*.57".to_vec()]);
        assert_eq!(ordered(&idx, b"bench.z.p57"), vec![b"bench.*.p57".to_vec()]);
        assert!(ordered(&idx, b"nomatch.57").is_empty());
    }

    #[test]
    fn delivery_order_is_prefix_length_then_age() {
        let idx = PatternIndex::default();
        let a = Arc::new(Outbox::new(1));
        for p in [&b"news.s*"[..], b"*s", b"news.*", b"n*", b"*", b"news.?ports", b"ne*"] {
            idx.subscribe(p, &a);
        }
        assert_eq!(
            ordered(&idx, b"news.sports"),
            [&b"*s"[..], b"*", b"n*", b"ne*", b"news.*", b"news.?ports", b"news.s*"]
                .map(|p| p.to_vec())
                .to_vec()
        );
        // A pattern subscribed again after going is the youngest of its length.
        idx.unsubscribe(b"*s", 1);
        idx.subscribe(b"*s", &a);
        assert_eq!(ordered(&idx, b"news.sports")[..2], [b"*".to_vec(), b"*s".to_vec()]);
    }

    #[test]
    fn the_cache_follows_pattern_changes_and_subscriber_changes() {
        let idx = PatternIndex::default();
        let a = Arc::new(Outbox::new(1));
        let b = Arc::new(Outbox::new(2));
        idx.subscribe(b"a.*", &a);
        let subs = |idx: &PatternIndex| {
            let mut ids = Vec::new();
            idx.for_each_match(b"a.b", |_, s| ids.extend(s.iter().map(|o| o.id)));
            ids
        };
        assert_eq!(subs(&idx), vec![1]);
        idx.subscribe(b"a.*", &b);
        assert_eq!(subs(&idx), vec![1, 2]);
        idx.unsubscribe(b"a.*", 1);
        assert_eq!(subs(&idx), vec![2]);
        idx.unsubscribe(b"a.*", 2);
        assert_eq!(subs(&idx), Vec::<u64>::new());
        // The freed slot is reused by another pattern: the old answer must not name it.
        idx.subscribe(b"zzz", &a);
        assert_eq!(subs(&idx), Vec::<u64>::new());
        idx.subscribe(b"*.b", &a);
        assert_eq!(subs(&idx), vec![1]);
        assert!(idx.any_match(b"a.b"));
        assert!(!idx.any_match(b"a.c"));
    }

    #[test]
    fn hostile_patterns_are_capped() {
        let idx = PatternIndex::default();
        let a = Arc::new(Outbox::new(1));
        let many_runs: Vec<u8> = (0..100_000).flat_map(|i| [b'a' + (i % 26) as u8, b'*']).collect();
        let long_literal = vec![b'x'; 1 << 20];
        let long_suffix: Vec<u8> = b"*".iter().chain(&long_literal).copied().collect();
        for p in [
            &many_runs[..],
            &long_literal,
            &long_suffix,
            b"[",
            b"\\",
            b"[^",
            b"*\\",
            b"[a-",
        ] {
            idx.subscribe(p, &a);
        }
        let t = idx.table.read_locked();
        assert!(t
            .prefixes
            .map
            .keys()
            .chain(t.suffixes.map.keys())
            .all(|k| k.len() <= MAX_KEY));
        drop(t);
        // Shorter literal prefix first; compared without printing (megabytes).
        assert!(ordered(&idx, &long_literal) == [long_suffix.clone(), long_literal.clone()]);
        assert_eq!(
            ordered(&idx, b"\\"),
            vec![b"[^".to_vec(), b"*\\".to_vec(), b"\\".to_vec()]
        );
        for p in [&many_runs[..], &long_literal, &long_suffix] {
            assert!(idx.unsubscribe(p, 1));
        }
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn bytes(alphabet: &'static [u8], max: usize) -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(proptest::sample::select(alphabet), 0..max)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(400))]

            /// The index finds exactly what testing every pattern would, in the same order,
            /// before and after unsubscribes, from the index and from the cache.
            #[test]
            fn index_agrees_with_brute_force(
                patterns in proptest::collection::vec(bytes(b"*?[]^-\\abc.", 9), 1..40),
                channels in proptest::collection::vec(bytes(b"abc.-]^\\*?", 10), 1..20),
                drop_mask in any::<u64>(),
            ) {
                let idx = PatternIndex::default();
                let sub = Arc::new(Outbox::new(1));
                let mut live: Vec<Vec<u8>> = Vec::new();
                for p in &patterns {
                    idx.subscribe(p, &sub);
                    if !live.contains(p) {
                        live.push(p.clone());
                    }
                }
                for round in 0..2 {
                    prop_assert_eq!(idx.len(), live.len());
                    for ch in &channels {
                        // `live` is in creation order; the stable sort gives the
                        // delivery order of the module doc.
                        let mut want: Vec<Vec<u8>> =
                            live.iter().filter(|p| glob::matches(p, ch)).cloned().collect();
                        want.sort_by_key(|p| glob::literal_prefix(p).len());
                        for _ in 0..2 {
                            let mut got = Vec::new();
                            idx.for_each_match(ch, |p, _| got.push(p.to_vec()));
                            prop_assert_eq!(&got, &want, "round {} channel {:?}", round, ch);
                        }
                    }
                    let before = live.clone();
                    for (i, p) in before.iter().enumerate() {
                        if drop_mask >> (i % 64) & 1 == 1 {
                            prop_assert!(idx.unsubscribe(p, 1));
                            live.retain(|q| q != p);
                        }
                    }
                }
            }
        }
    }
}
