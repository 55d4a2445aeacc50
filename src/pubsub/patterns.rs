//! Pattern subscriptions, indexed so that a PUBLISH costs what matches rather than
//! every pattern on the server.
//!
//! Redis tests every pattern on every publish. Here each distinct pattern is filed
//! under its literal prefix (the bytes before its first `*`, `?` or `[`), and a publish
//! looks up only the prefixes the channel actually starts with: one hash lookup per
//! distinct prefix length in use. `news.*` and `news.sports.*` are only tested against
//! channels that start with `news.`; a pattern that starts with a wildcard has the empty
//! prefix and is tested against everything, as it must be.
//!
//! Patterns change rarely next to publishes, so the table sits behind a read-write lock
//! that a publish holds only while it queues frames (it never awaits under it).

use crate::sync::RwLockExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use super::registry::{with, without, Subscribers};
use crate::client::Outbox;
use crate::glob;

#[derive(Default)]
pub struct PatternIndex {
    table: RwLock<Table>,
    /// Distinct patterns; lets a publish skip the lock when there are none.
    count: AtomicUsize,
}

#[derive(Default)]
struct Table {
    subscribers: HashMap<Bytes, Subscribers>,
    by_prefix: HashMap<Bytes, Vec<Bytes>>,
    /// Distinct prefix lengths in use, with how many prefixes have each length.
    prefix_lens: BTreeMap<usize, usize>,
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
        if let Some(subs) = t.subscribers.get_mut(pattern) {
            *subs = with(subs, sub);
            return false;
        }
        let pattern = Bytes::copy_from_slice(pattern);
        let prefix = Bytes::from(glob::literal_prefix(&pattern).to_vec());
        t.subscribers.insert(pattern.clone(), Arc::from([sub.clone()]));
        let same_prefix = t.by_prefix.entry(prefix.clone()).or_default();
        same_prefix.push(pattern);
        if same_prefix.len() == 1 {
            *t.prefix_lens.entry(prefix.len()).or_default() += 1;
        }
        self.count.store(t.subscribers.len(), Relaxed);
        true
    }

    /// Removes subscriber `id`; true when the pattern is gone.
    pub fn unsubscribe(&self, pattern: &[u8], id: u64) -> bool {
        let mut t = self.table.write_locked();
        let Some(subs) = t.subscribers.get_mut(pattern) else {
            return false;
        };
        *subs = without(subs, id);
        if !subs.is_empty() {
            return false;
        }
        t.subscribers.remove(pattern);
        let prefix = glob::literal_prefix(pattern);
        if let Some(same_prefix) = t.by_prefix.get_mut(&prefix[..]) {
            same_prefix.retain(|p| p != pattern);
            if same_prefix.is_empty() {
                t.by_prefix.remove(&prefix[..]);
                if let Some(n) = t.prefix_lens.get_mut(&prefix.len()) {
                    *n -= 1;
                    if *n == 0 {
                        t.prefix_lens.remove(&prefix.len());
                    }
                }
            }
        }
        self.count.store(t.subscribers.len(), Relaxed);
        true
    }

    /// Calls `f(pattern, subscribers)` for every distinct pattern (ACL revocation scans).
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &Subscribers)) {
        let t = self.table.read_locked();
        for (pattern, subs) in &t.subscribers {
            f(pattern, subs);
        }
    }

    /// Up to `limit` distinct patterns with their subscriber counts, in byte order (so a
    /// capped list is the same prefix each time), and how many patterns there are. No
    /// Redis command lists patterns; the dashboard reads them here. The lock is held
    /// while the names are copied, never while they are sorted.
    pub fn counts(&self, limit: usize) -> (Vec<(Bytes, usize)>, usize) {
        let mut all: Vec<(Bytes, usize)> = {
            let t = self.table.read_locked();
            t.subscribers.iter().map(|(p, s)| (p.clone(), s.len())).collect()
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

    /// Calls `f(pattern, subscribers)` for every distinct pattern that matches `channel`.
    pub fn for_each_match(&self, channel: &[u8], mut f: impl FnMut(&[u8], &Subscribers)) {
        let t = self.table.read_locked();
        for &len in t.prefix_lens.keys() {
            if len > channel.len() {
                break;
            }
            let Some(candidates) = t.by_prefix.get(&channel[..len]) else {
                continue;
            };
            for pattern in candidates {
                if glob::matches(pattern, channel) {
                    if let Some(subs) = t.subscribers.get(pattern) {
                        f(pattern, subs);
                    }
                }
            }
        }
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
}
