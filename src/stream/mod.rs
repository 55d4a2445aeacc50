//! The Redis stream data type: entries, trimming, consumer groups. Pure data: no I/O, no
//! reply encoding, nothing from the rest of the crate (only `bytes` and std).
//!
//! Why it looks like this:
//!
//! * **Memory.** Redis stores a 1-field, 64-byte-value entry in 76 bytes. A map of
//!   per-entry objects costs twice that, so entries are packed into nodes (see
//!   [`node`]): one byte buffer per node of up to `stream-node-max-entries` entries,
//!   delta-encoded against the node's first ("master") ID, field names stored once when
//!   they repeat the master entry's. The nodes sit in a `BTreeMap<Id, Node>` keyed by
//!   master ID, so a range read seeks in O(log nodes) and then scans one node.
//! * **Redis-visible layout.** Approximate trimming (`MAXLEN ~`) removes whole nodes
//!   only, and `XINFO STREAM radix-tree-keys` reports the node count, so nodes start
//!   and end where Redis's do: a new node when the tail has `max_entries` entries
//!   (deleted ones included) or when its estimated *listpack* size plus the new
//!   payload reaches `max_bytes`.
//! * **Deletes are marks.** XDEL and exact trimming flag entries deleted inside their
//!   node; a node is freed when its last live entry goes (as in Redis).
//! * **Consumer groups** keep one PEL per group (see [`group`]); a consumer's own
//!   pending entries are found by filtering it, which saves a second tree per consumer.
//!
//! API notes for callers (the command layer), including where the API differs from the
//! design brief:
//!
//! * Group operations on a group that does not exist do nothing and return empty
//!   results: callers check [`Stream::group`] first, because the NOGROUP texts name the
//!   key, which this module does not know.
//! * [`Stream::read_group_new`] returns IDs; they are consecutive live entries, so one
//!   `range(first, last)` yields their fields (cheaper than a `get` per ID).
//! * [`Stream::set_id`] validates in Redis 7.2's order as observed on 7.2.6 and Valkey
//!   8.0 (the brief listed another order): provided MAXDELETEDID above the ID, then the
//!   ID below the current max-deleted ID, then the ID below the last live entry, then
//!   ENTRIESADDED below the length. The first is a pure argument check that Redis makes
//!   before the key lookup, so [`check_set_id_args`] is exposed for that.
//! * [`ClaimOptions`]`::idle`/`time` are `i64` (the brief said u64): Redis takes signed
//!   values and turns a delivery time outside [0, now] into now.
//! * Pending delivery counts are u32 (saturating), to keep a PEL entry at 16 bytes.
//! * Lag is computed as Redis does but saturates at 0 instead of going negative (only
//!   reachable with an ENTRIESREAD above entries-added).
//! * ID numbers follow `string2ull` for the usual forms (digits, leading `+`, leading
//!   zeros); Redis's `strtoull` fallback also accepts leading spaces and `-0`, which is
//!   not copied.

pub mod group;
pub mod id;
pub mod node;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

pub use group::{ClaimOptions, Consumer, Group, Pending, PendingSummary};
pub use id::{parse_add_id, parse_id, parse_range_end, parse_range_start, AddId, Id, RangeError};
pub use node::{FieldIter, NodeLimits};

use node::{Node, RawEntry, FLAG_DELETED};

/// Every error the stream module can produce; the command layer owns the texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamError {
    /// `ERR The ID specified in XADD must be greater than 0-0`
    IdZero,
    /// `ERR The ID specified in XADD is equal or smaller than the target stream top item`
    IdTooSmall,
    /// `ERR The stream has exhausted the last possible ID, unable to add more items`
    Exhausted,
    /// `ERR The entries_added specified in XSETID is smaller than the target stream length`
    EntriesAddedTooSmall,
    /// `ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id`
    MaxDeletedGreaterThanId,
    /// `ERR The ID specified in XSETID is smaller than the target stream top item`
    SetIdTooSmall,
    /// `ERR The ID specified in XSETID is smaller than current max_deleted_entry_id` (7.2)
    SetIdBelowMaxDeleted,
}

/// A trimming strategy: MAXLEN or MINID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrimStrategy {
    MaxLen(u64),
    MinId(Id),
}

/// XADD/XTRIM trimming arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trim {
    pub strategy: TrimStrategy,
    /// `~`: whole nodes only.
    pub approx: bool,
    /// LIMIT (approximate only). None = the default, `100 * max_entries`; Some(0) = none.
    pub limit: Option<u64>,
}

/// XSETID's pure argument check (Redis makes it before looking the key up).
pub fn check_set_id_args(last: Id, max_deleted: Option<Id>) -> Result<(), StreamError> {
    match max_deleted {
        Some(md) if md > last => Err(StreamError::MaxDeletedGreaterThanId),
        _ => Ok(()),
    }
}

/// Estimated bytes of one `BTreeMap` slot beyond key and value: nodes hold 11 slots and
/// are about 6/11 full when keys arrive in order, plus parent/len fields and the
/// internal levels. Used by the memory estimates.
pub(crate) fn btree_bytes_per_slot(key_and_value: usize) -> usize {
    // A leaf is 11 slots + ~16 bytes of header; sequential inserts leave ~6 of 11 used,
    // and internal nodes add about 1/6 on top.
    (11 * key_and_value + 16) * 7 / 6 / 6
}

/// One stream key.
#[derive(Clone, Debug, Default)]
pub struct Stream {
    /// Shared, so that a snapshot (the AOF rewrite) copies pointers, not entries; a
    /// write to a node a snapshot still holds copies that node first.
    nodes: BTreeMap<Id, Arc<Node>>,
    len: u64,
    last_id: Id,
    first_id: Id,
    max_deleted_id: Id,
    entries_added: u64,
    /// The last live entry's ID (meaningful while `len > 0`): XREAD/XREADGROUP ask for
    /// it on every call to decide whether to block.
    last_live: Id,
    groups: BTreeMap<Bytes, Group>,
}

/// A live entry, borrowed from its node.
#[derive(Clone, Copy, Debug)]
pub struct EntryRef<'a> {
    pub id: Id,
    buf: &'a [u8],
    raw: RawEntry,
}

impl<'a> EntryRef<'a> {
    /// The field/value pairs, in the order they were added.
    pub fn fields(&self) -> FieldIter<'a> {
        FieldIter::new(self.buf, &self.raw)
    }

    /// The number of field/value pairs.
    pub fn field_count(&self) -> usize {
        self.raw.nfields as usize
    }
}

impl Stream {
    pub fn new() -> Stream {
        Stream::default()
    }

    /// Live entries (XLEN).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// last-generated-id: never lowered by XDEL or trimming.
    pub fn last_id(&self) -> Id {
        self.last_id
    }

    /// recorded-first-entry-id: the first live entry, 0-0 when empty.
    pub fn first_id(&self) -> Id {
        self.first_id
    }

    pub fn max_deleted_id(&self) -> Id {
        self.max_deleted_id
    }

    pub fn entries_added(&self) -> u64 {
        self.entries_added
    }

    /// The last live entry's ID.
    pub fn last_entry_id(&self) -> Option<Id> {
        (self.len > 0).then_some(self.last_live)
    }

    /// The first live entry's ID.
    pub fn first_entry_id(&self) -> Option<Id> {
        self.range(Id::MIN, Id::MAX).next().map(|e| e.id)
    }

    /// Number of nodes (XINFO STREAM radix-tree-keys).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Bytes this stream holds, groups and PELs included (MEMORY USAGE). An estimate:
    /// buffers at their capacity, map nodes at their typical fill.
    pub fn memory_usage(&self) -> usize {
        let node_slot = btree_bytes_per_slot(std::mem::size_of::<Id>() + std::mem::size_of::<Arc<Node>>());
        // The node struct and the Arc's two counters live beside the buffer.
        let node_box = std::mem::size_of::<Node>() + 16;
        let mut n = std::mem::size_of::<Stream>();
        for node in self.nodes.values() {
            n += node.capacity() + node_slot + node_box;
        }
        for (name, g) in &self.groups {
            n += name.len() + g.memory_usage() + btree_bytes_per_slot(32 + std::mem::size_of::<Group>());
        }
        n
    }

    // ------------------------------------------------------------------------ adding

    /// The ID XADD would use (§2); does not change the stream.
    pub fn next_id(&self, spec: AddId, now_ms: u64) -> Result<Id, StreamError> {
        if spec.is_zero() {
            return Err(StreamError::IdZero);
        }
        let last = self.last_id;
        if last == Id::MAX {
            return Err(StreamError::Exhausted);
        }
        match spec {
            AddId::Auto => {
                if now_ms > last.ms {
                    Ok(Id::new(now_ms, 0))
                } else {
                    // The clock went back (or the same ms): never go backwards.
                    last.next().ok_or(StreamError::Exhausted)
                }
            }
            AddId::AutoSeq(ms) => {
                if ms == last.ms {
                    // 7.2: seq exhausted in this ms is the equal-or-smaller error.
                    if last.seq == u64::MAX {
                        Err(StreamError::IdTooSmall)
                    } else {
                        Ok(Id::new(ms, last.seq + 1))
                    }
                } else if ms > last.ms {
                    Ok(Id::new(ms, 0))
                } else {
                    Err(StreamError::IdTooSmall)
                }
            }
            AddId::Explicit(id) => {
                if id > last {
                    Ok(id)
                } else {
                    Err(StreamError::IdTooSmall)
                }
            }
        }
    }

    /// Appends an entry. `id` comes from `next_id`; `fields` is `f1, v1, f2, v2, ..`
    /// (even length, at least 2).
    pub fn append(&mut self, id: Id, fields: &[Bytes], limits: &NodeLimits) {
        debug_assert!(fields.len() >= 2 && fields.len().is_multiple_of(2));
        debug_assert!(id > self.last_id);
        let new_node = match self.nodes.last_key_value() {
            None => true,
            Some((_, tail)) => tail.is_full_for(fields, limits),
        };
        if new_node {
            if let Some(mut tail) = self.nodes.last_entry() {
                Arc::make_mut(tail.get_mut()).seal();
            }
            let mut node = Node::new(fields);
            node.push(id, id, fields);
            self.nodes.insert(id, Arc::new(node));
        } else if let Some(mut tail) = self.nodes.last_entry() {
            let master = *tail.key();
            Arc::make_mut(tail.get_mut()).push(master, id, fields);
        }
        self.len += 1;
        self.entries_added = self.entries_added.wrapping_add(1);
        self.last_id = id;
        self.last_live = id;
        if self.len == 1 {
            self.first_id = id;
        }
    }

    // ----------------------------------------------------------------------- reading

    /// Live entries with `start <= id <= end`, ascending.
    pub fn range(&self, start: Id, end: Id) -> Range<'_> {
        let nodes = if start > end {
            None
        } else {
            // The node that may hold `start` is the last one whose master is <= start.
            let from = self.nodes.range(..=start).next_back().map(|(k, _)| *k).unwrap_or(start);
            Some(self.nodes.range((Bound::Included(from), Bound::Included(end))))
        };
        Range {
            nodes,
            cur: None,
            start,
            end,
        }
    }

    /// Live entries with `start <= id <= end`, descending (XREVRANGE takes end first).
    pub fn range_rev(&self, end: Id, start: Id) -> RevRange<'_> {
        let nodes = (start <= end).then(|| self.nodes.range(..=end).rev());
        RevRange {
            nodes,
            buf: &[],
            pending: Vec::new(),
            start,
            end,
            done: false,
        }
    }

    /// The live entry `id`.
    pub fn get(&self, id: Id) -> Option<EntryRef<'_>> {
        let (master, node) = self.nodes.range(..=id).next_back()?;
        let raw = node.find(*master, id)?;
        (raw.flags & FLAG_DELETED == 0).then_some(EntryRef {
            id,
            buf: node.buf(),
            raw,
        })
    }

    /// Whether the live entry `id` exists.
    pub fn contains(&self, id: Id) -> bool {
        self.get(id).is_some()
    }

    // ---------------------------------------------------------------------- removing

    /// XDEL of one ID: true if a live entry was deleted.
    pub fn delete(&mut self, id: Id) -> bool {
        let Some((&master, node)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let Some(raw) = node.find(master, id) else {
            return false;
        };
        if !Arc::make_mut(node).mark_deleted(raw.at as usize) {
            return false;
        }
        if node.live == 0 {
            self.nodes.remove(&master);
        }
        self.len -= 1;
        if id > self.max_deleted_id {
            self.max_deleted_id = id;
        }
        if self.len == 0 {
            self.first_id = Id::MIN;
        } else {
            if id == self.first_id {
                self.first_id = self.first_entry_id().unwrap_or(Id::MIN);
            }
            if id == self.last_live {
                self.last_live = self.range_rev(Id::MAX, Id::MIN).next().map(|e| e.id).unwrap_or(Id::MIN);
            }
        }
        true
    }

    /// XTRIM / XADD trimming (§6). Returns the number of entries removed.
    pub fn trim(&mut self, t: &Trim, limits: &NodeLimits) -> u64 {
        let limit = if t.approx {
            match t.limit {
                Some(n) => n,
                None => default_trim_limit(limits),
            }
        } else {
            0
        };
        let mut removed: u64 = 0;
        loop {
            if let TrimStrategy::MaxLen(max) = t.strategy {
                if self.len <= max {
                    break;
                }
            }
            let Some(mut head) = self.nodes.first_entry() else {
                break;
            };
            let live = u64::from(head.get().live);
            if limit != 0 && removed + live > limit {
                break;
            }
            let whole = match t.strategy {
                TrimStrategy::MaxLen(max) => self.len - live >= max,
                TrimStrategy::MinId(min) => head.get().last < min,
            };
            if whole {
                head.remove();
                self.len -= live;
                removed += live;
                continue;
            }
            if t.approx {
                break;
            }
            // Exact: mark entries deleted inside this node, then stop (the next node
            // cannot be reached without emptying this one).
            let master = *head.key();
            let node = Arc::make_mut(head.get_mut());
            let mut pos = node.start();
            while pos < node.end() {
                let (e, next) = node.entry_at(master, pos);
                let stop = match t.strategy {
                    TrimStrategy::MaxLen(max) => self.len <= max,
                    TrimStrategy::MinId(min) => e.id >= min,
                };
                if stop {
                    break;
                }
                if node.mark_deleted(e.at as usize) {
                    self.len -= 1;
                    removed += 1;
                }
                pos = next;
            }
            if node.live == 0 {
                head.remove();
            }
            break;
        }
        if self.len == 0 {
            self.first_id = Id::MIN;
        } else if removed > 0 {
            self.first_id = self.first_entry_id().unwrap_or(Id::MIN);
        }
        removed
    }

    /// XSETID (§3), in Redis 7.2's order (see the module notes).
    pub fn set_id(&mut self, last: Id, entries_added: Option<u64>, max_deleted: Option<Id>) -> Result<(), StreamError> {
        check_set_id_args(last, max_deleted)?;
        if last < self.max_deleted_id {
            return Err(StreamError::SetIdBelowMaxDeleted);
        }
        if self.len > 0 {
            if last < self.last_live {
                return Err(StreamError::SetIdTooSmall);
            }
            if entries_added.is_some_and(|n| n < self.len) {
                return Err(StreamError::EntriesAddedTooSmall);
            }
        }
        self.last_id = last;
        if let Some(n) = entries_added {
            self.entries_added = n;
        }
        if let Some(md) = max_deleted {
            if !md.is_zero() {
                self.max_deleted_id = md;
            }
        }
        Ok(())
    }
}

fn default_trim_limit(limits: &NodeLimits) -> u64 {
    let l = (limits.max_entries as u64).saturating_mul(100);
    if l == 0 {
        10_000
    } else {
        l.min(1_000_000)
    }
}

/// Ascending iterator over live entries (see [`Stream::range`]).
pub struct Range<'a> {
    nodes: Option<std::collections::btree_map::Range<'a, Id, Arc<Node>>>,
    cur: Option<(Id, &'a Node, usize)>,
    start: Id,
    end: Id,
}

impl<'a> Iterator for Range<'a> {
    type Item = EntryRef<'a>;

    fn next(&mut self) -> Option<EntryRef<'a>> {
        loop {
            if let Some((master, node, pos)) = &mut self.cur {
                while *pos < node.end() {
                    let (raw, next) = node.entry_at(*master, *pos);
                    *pos = next;
                    if raw.id > self.end {
                        self.nodes = None;
                        self.cur = None;
                        return None;
                    }
                    if raw.id < self.start || raw.flags & FLAG_DELETED != 0 {
                        continue;
                    }
                    return Some(EntryRef {
                        id: raw.id,
                        buf: node.buf(),
                        raw,
                    });
                }
                self.cur = None;
            }
            let (master, node) = self.nodes.as_mut()?.next()?;
            if node.last < self.start {
                continue;
            }
            self.cur = Some((*master, node, node.start()));
        }
    }
}

/// Descending iterator over live entries (see [`Stream::range_rev`]). A node is scanned
/// forward once to collect its matching entries, which are then yielded backwards.
pub struct RevRange<'a> {
    nodes: Option<std::iter::Rev<std::collections::btree_map::Range<'a, Id, Arc<Node>>>>,
    buf: &'a [u8],
    pending: Vec<RawEntry>,
    start: Id,
    end: Id,
    done: bool,
}

impl<'a> Iterator for RevRange<'a> {
    type Item = EntryRef<'a>;

    fn next(&mut self) -> Option<EntryRef<'a>> {
        loop {
            if let Some(raw) = self.pending.pop() {
                return Some(EntryRef {
                    id: raw.id,
                    buf: self.buf,
                    raw,
                });
            }
            if self.done {
                return None;
            }
            let Some((master, node)) = self.nodes.as_mut().and_then(|n| n.next()) else {
                self.done = true;
                return None;
            };
            if node.last < self.start {
                self.done = true;
                return None;
            }
            if *master <= self.start {
                // Nodes before this one hold only smaller IDs.
                self.done = true;
            }
            self.buf = node.buf();
            let mut pos = node.start();
            while pos < node.end() {
                let (raw, next) = node.entry_at(*master, pos);
                pos = next;
                if raw.id > self.end {
                    break;
                }
                if raw.id >= self.start && raw.flags & FLAG_DELETED == 0 {
                    self.pending.push(raw);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
