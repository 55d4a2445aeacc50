//! Consumer groups: the group's position, its pending entries list (PEL) and consumers.
//!
//! Why one PEL per group and none per consumer: Redis keeps the pending entry in two
//! radix trees (group and consumer) pointing at one shared NACK, about 84 bytes per
//! pending entry. Here a pending entry lives only in the group's `BTreeMap<Id, Pending>`
//! as 32 bytes (16-byte key, 16-byte value: delivery time, delivery count, consumer as
//! a small integer), and each consumer keeps only its pending *count*. The trade-off:
//! the operations that need one consumer's pending entries in ID order (XREADGROUP
//! with a history ID, XINFO STREAM FULL, XPENDING with a consumer, XGROUP DELCONSUMER)
//! filter the group PEL, O(group PEL) instead of O(consumer PEL). Those are the rare
//! paths; `>` reads, XACK, XCLAIM and XAUTOCLAIM stay O(log PEL) per entry.
//!
//! Delivery counts are u32 and saturate (RETRYCOUNT above 4,294,967,295 is stored as
//! that maximum): the price of the 16-byte value.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::id::Id;
use super::{btree_bytes_per_slot, Stream};

/// A pending (delivered, not acknowledged) entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Last delivery time, unix ms.
    pub delivery_ms: u64,
    /// Delivery count.
    pub count: u32,
    /// The owning consumer's slot in its group (see [`Group::consumer_name`]).
    pub consumer: u32,
}

/// A consumer of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    /// Last attempted interaction (XREADGROUP, XCLAIM, XAUTOCLAIM), unix ms.
    pub seen_ms: u64,
    /// 7.2 active-time: last successful interaction; None = never (`inactive` -1).
    pub active_ms: Option<u64>,
    /// Number of pending entries it owns.
    pub pending: u64,
    slot: u32,
}

impl Consumer {
    /// Its slot, the value of [`Pending::consumer`] for its entries.
    pub fn slot(&self) -> u32 {
        self.slot
    }
}

/// XCLAIM options.
///
/// Deviation from the brief: `idle` and `time` are `i64`, because Redis takes them as
/// signed numbers and turns a delivery time outside [0, now] into now (a negative IDLE
/// means a time in the future, so now).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClaimOptions {
    pub idle: Option<i64>,
    pub time: Option<i64>,
    pub retry_count: Option<u64>,
    pub force: bool,
    pub justid: bool,
    pub last_id: Option<Id>,
}

/// One consumer group.
#[derive(Clone, Debug, Default)]
pub struct Group {
    last_id: Id,
    entries_read: Option<u64>,
    pel: BTreeMap<Id, Pending>,
    consumers: BTreeMap<Bytes, Consumer>,
    /// slot -> consumer name; freed slots are reused.
    names: Vec<Option<Bytes>>,
    free: Vec<u32>,
}

impl Group {
    pub fn new(last_id: Id, entries_read: Option<u64>) -> Group {
        Group {
            last_id,
            entries_read,
            ..Group::default()
        }
    }

    /// last-delivered-id.
    pub fn last_id(&self) -> Id {
        self.last_id
    }

    /// entries-read (None = invalid, shown as nil).
    pub fn entries_read(&self) -> Option<u64> {
        self.entries_read
    }

    /// Number of pending entries (pel-count / XINFO GROUPS pending).
    pub fn pel_len(&self) -> usize {
        self.pel.len()
    }

    /// The whole PEL in ID order.
    pub fn pel(&self) -> impl Iterator<Item = (Id, &Pending)> + '_ {
        self.pel.iter().map(|(id, p)| (*id, p))
    }

    /// One pending entry.
    pub fn pending(&self, id: Id) -> Option<&Pending> {
        self.pel.get(&id)
    }

    /// Consumers in name order.
    pub fn consumers(&self) -> impl Iterator<Item = (&Bytes, &Consumer)> + '_ {
        self.consumers.iter()
    }

    pub fn consumer_count(&self) -> usize {
        self.consumers.len()
    }

    pub fn consumer(&self, name: &[u8]) -> Option<&Consumer> {
        self.consumers.get(name)
    }

    /// The name of the consumer in `slot` (from [`Pending::consumer`]).
    pub fn consumer_name(&self, slot: u32) -> Option<&Bytes> {
        self.names.get(slot as usize).and_then(|n| n.as_ref())
    }

    /// One consumer's pending entries in ID order (filters the group PEL).
    pub fn consumer_pel<'a>(&'a self, name: &[u8]) -> impl Iterator<Item = (Id, &'a Pending)> + 'a {
        let slot = self.consumers.get(name).map(|c| c.slot);
        self.pel
            .iter()
            .filter(move |(_, p)| Some(p.consumer) == slot)
            .map(|(id, p)| (*id, p))
    }

    /// Every consumer's pending entries in one pass over the PEL (XINFO STREAM FULL),
    /// indexed by slot, at most `limit` each (0 = all).
    pub fn pel_by_consumer(&self, limit: usize) -> Vec<Vec<(Id, Pending)>> {
        let mut out: Vec<Vec<(Id, Pending)>> = vec![Vec::new(); self.names.len()];
        for (id, p) in &self.pel {
            if let Some(v) = out.get_mut(p.consumer as usize) {
                if limit == 0 || v.len() < limit {
                    v.push((*id, *p));
                }
            }
        }
        out
    }

    pub(crate) fn memory_usage(&self) -> usize {
        let mut n = self.pel.len() * btree_bytes_per_slot(16 + 16);
        let cslot = btree_bytes_per_slot(std::mem::size_of::<Bytes>() + std::mem::size_of::<Consumer>());
        for name in self.consumers.keys() {
            n += cslot + name.len();
        }
        n + self.names.capacity() * std::mem::size_of::<Option<Bytes>>() + self.free.capacity() * 4
    }

    /// The consumer's slot, creating it (seen now, never active) if needed.
    fn ensure_consumer(&mut self, name: &[u8], now: u64) -> (u32, bool) {
        if let Some(c) = self.consumers.get(name) {
            return (c.slot, false);
        }
        let name = Bytes::copy_from_slice(name);
        let slot = match self.free.pop() {
            Some(s) => {
                self.names[s as usize] = Some(name.clone());
                s
            }
            None => {
                self.names.push(Some(name.clone()));
                (self.names.len() - 1) as u32
            }
        };
        self.consumers.insert(
            name,
            Consumer {
                seen_ms: now,
                active_ms: None,
                pending: 0,
                slot,
            },
        );
        (slot, true)
    }

    fn consumer_mut(&mut self, slot: u32) -> Option<&mut Consumer> {
        let name = self.names.get(slot as usize)?.as_ref()?;
        self.consumers.get_mut(&name[..])
    }

    fn touch(&mut self, slot: u32, now: u64, active: bool) {
        if let Some(c) = self.consumer_mut(slot) {
            c.seen_ms = now;
            if active {
                c.active_ms = Some(now);
            }
        }
    }

    fn adjust_pending(&mut self, slot: u32, add: bool) {
        if let Some(c) = self.consumer_mut(slot) {
            if add {
                c.pending += 1;
            } else {
                c.pending = c.pending.saturating_sub(1);
            }
        }
    }

    fn remove_pending(&mut self, id: Id) -> bool {
        match self.pel.remove(&id) {
            Some(p) => {
                self.adjust_pending(p.consumer, false);
                true
            }
            None => false,
        }
    }

    /// Moves (or creates) the pending entry `id` to consumer `slot`.
    fn assign(&mut self, id: Id, slot: u32, delivery_ms: u64, count: u32) {
        let old = self.pel.insert(
            id,
            Pending {
                delivery_ms,
                count,
                consumer: slot,
            },
        );
        match old {
            Some(p) if p.consumer == slot => {}
            Some(p) => {
                self.adjust_pending(p.consumer, false);
                self.adjust_pending(slot, true);
            }
            None => self.adjust_pending(slot, true),
        }
    }
}

/// The stream state the lag rules read, copied so a group can be mutated meanwhile.
#[derive(Clone, Copy)]
struct Meta {
    len: u64,
    last_id: Id,
    first_id: Id,
    max_deleted_id: Id,
    entries_added: u64,
}

impl Meta {
    fn of(s: &Stream) -> Meta {
        Meta {
            len: s.len(),
            last_id: s.last_id(),
            first_id: s.first_id(),
            max_deleted_id: s.max_deleted_id(),
            entries_added: s.entries_added(),
        }
    }

    /// `streamRangeHasTombstones(start, +)`.
    fn has_tombstone_from(&self, start: Id) -> bool {
        if self.len == 0 || self.max_deleted_id.is_zero() || self.first_id > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id
    }

    /// `streamEstimateDistanceFromFirstEverEntry`.
    fn estimate(&self, id: Id) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.len == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            if id < self.first_id {
                return Some(self.entries_added.wrapping_sub(self.len));
            }
            if id == self.first_id {
                return Some(self.entries_added.wrapping_sub(self.len).wrapping_add(1));
            }
        }
        None
    }
}

/// XPENDING's summary: `(count, Some((smallest, greatest)) unless empty, [(consumer, pending)])`.
pub type PendingSummary = (u64, Option<(Id, Id)>, Vec<(Bytes, u64)>);

fn clamp_count(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Stream {
    /// XGROUP CREATE. False if the name is taken (BUSYGROUP).
    pub fn create_group(&mut self, name: Bytes, last: Id, entries_read: Option<u64>) -> bool {
        if self.groups.contains_key(&name) {
            return false;
        }
        self.groups.insert(name, Group::new(last, entries_read));
        true
    }

    pub fn group(&self, name: &[u8]) -> Option<&Group> {
        self.groups.get(name)
    }

    /// Groups in byte-lexicographic name order.
    pub fn groups(&self) -> impl Iterator<Item = (&Bytes, &Group)> + '_ {
        self.groups.iter()
    }

    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// XGROUP DESTROY.
    pub fn destroy_group(&mut self, name: &[u8]) -> bool {
        self.groups.remove(name).is_some()
    }

    /// XGROUP SETID. False if there is no such group.
    pub fn set_group_id(&mut self, name: &[u8], last: Id, entries_read: Option<u64>) -> bool {
        match self.groups.get_mut(name) {
            Some(g) => {
                g.last_id = last;
                g.entries_read = entries_read;
                true
            }
            None => false,
        }
    }

    /// XGROUP CREATECONSUMER (and the implicit creation by reads and claims): true if
    /// created. Seen time is now; active time stays unset.
    pub fn create_consumer(&mut self, group: &[u8], name: &[u8], now: u64) -> bool {
        match self.groups.get_mut(group) {
            Some(g) => g.ensure_consumer(name, now).1,
            None => false,
        }
    }

    /// XGROUP DELCONSUMER: removes the consumer and its pending entries; returns how many
    /// were pending.
    pub fn del_consumer(&mut self, group: &[u8], name: &[u8]) -> u64 {
        let Some(g) = self.groups.get_mut(group) else {
            return 0;
        };
        let Some(c) = g.consumers.remove(name) else {
            return 0;
        };
        let slot = c.slot;
        let before = g.pel.len();
        g.pel.retain(|_, p| p.consumer != slot);
        g.names[slot as usize] = None;
        g.free.push(slot);
        (before - g.pel.len()) as u64
    }

    /// Whether a `>` read would deliver anything now (else XREADGROUP blocks).
    pub fn has_new_for_group(&self, group: &[u8]) -> bool {
        match (self.groups.get(group), self.last_entry_id()) {
            (Some(g), Some(last)) => last > g.last_id,
            _ => false,
        }
    }

    /// XREADGROUP `>`: delivers up to `count` (0 = all) live entries after the group's
    /// last ID to `consumer` (created if needed). Returns their IDs, ascending; they are
    /// consecutive live entries, so `range(first, last)` yields exactly them.
    pub fn read_group_new(&mut self, group: &[u8], consumer: &[u8], count: usize, noack: bool, now: u64) -> Vec<Id> {
        let Some(g) = self.groups.get(group) else {
            return Vec::new();
        };
        let ids: Vec<Id> = match g.last_id.next() {
            Some(start) => {
                let it = self.range(start, Id::MAX).map(|e| e.id);
                if count == 0 {
                    it.collect()
                } else {
                    it.take(count).collect()
                }
            }
            None => Vec::new(),
        };
        let meta = Meta::of(self);
        let Some(g) = self.groups.get_mut(group) else {
            return ids;
        };
        let (slot, _) = g.ensure_consumer(consumer, now);
        for &id in &ids {
            if id > g.last_id {
                if g.entries_read.is_some() && !meta.has_tombstone_from(id) {
                    g.entries_read = g.entries_read.map(|n| n + 1);
                } else if meta.entries_added != 0 {
                    g.entries_read = meta.estimate(id);
                }
                g.last_id = id;
            }
            if !noack {
                // An ID already pending (XGROUP SETID moved the group back) moves to this
                // consumer with its count reset.
                g.assign(id, slot, now, 1);
            }
        }
        g.touch(slot, now, !noack && !ids.is_empty());
        ids
    }

    /// XREADGROUP with an ID: the consumer's own pending entries after `after`, up to
    /// `count` (0 = all). `(id, true)` entries exist (their delivery count and time are
    /// updated); `(id, false)` were deleted from the stream (reply `[id, nil]`).
    /// As in Redis, `after` = the maximum ID wraps to the start.
    pub fn read_group_history(
        &mut self,
        group: &[u8],
        consumer: &[u8],
        after: Id,
        count: usize,
        now: u64,
    ) -> Vec<(Id, bool)> {
        let Some(g) = self.groups.get_mut(group) else {
            return Vec::new();
        };
        let (slot, _) = g.ensure_consumer(consumer, now);
        g.touch(slot, now, false);
        let start = after.next().unwrap_or(Id::MIN);
        let limit = if count == 0 { usize::MAX } else { count };
        let ids: Vec<Id> = g
            .pel
            .range(start..)
            .filter(|(_, p)| p.consumer == slot)
            .map(|(id, _)| *id)
            .take(limit)
            .collect();
        let out: Vec<(Id, bool)> = ids.into_iter().map(|id| (id, self.contains(id))).collect();
        if let Some(g) = self.groups.get_mut(group) {
            for &(id, exists) in &out {
                if exists {
                    if let Some(p) = g.pel.get_mut(&id) {
                        p.delivery_ms = now;
                        p.count = p.count.saturating_add(1);
                    }
                }
            }
        }
        out
    }

    /// XACK: the number of IDs removed from the PEL.
    pub fn ack(&mut self, group: &[u8], ids: &[Id]) -> u64 {
        let Some(g) = self.groups.get_mut(group) else {
            return 0;
        };
        ids.iter().filter(|&&id| g.remove_pending(id)).count() as u64
    }

    /// XPENDING summary: total, (smallest, greatest) pending ID, and per consumer with
    /// pending entries (name order) its count.
    pub fn pending_summary(&self, group: &[u8]) -> PendingSummary {
        let Some(g) = self.groups.get(group) else {
            return (0, None, Vec::new());
        };
        let bounds = match (g.pel.first_key_value(), g.pel.last_key_value()) {
            (Some((a, _)), Some((b, _))) => Some((*a, *b)),
            _ => None,
        };
        let consumers = g
            .consumers
            .iter()
            .filter(|(_, c)| c.pending > 0)
            .map(|(n, c)| (n.clone(), c.pending))
            .collect();
        (g.pel.len() as u64, bounds, consumers)
    }

    /// XPENDING extended form: `(id, consumer, idle ms, delivery count)` for pending
    /// entries in [start, end], at most `count`, optionally one consumer's (unknown
    /// consumer: none) and with idle >= `min_idle`.
    #[allow(clippy::too_many_arguments)]
    pub fn pending_range(
        &self,
        group: &[u8],
        start: Id,
        end: Id,
        count: usize,
        consumer: Option<&[u8]>,
        min_idle: Option<u64>,
        now: u64,
    ) -> Vec<(Id, Bytes, u64, u64)> {
        let Some(g) = self.groups.get(group) else {
            return Vec::new();
        };
        if start > end || count == 0 {
            return Vec::new();
        }
        let slot = match consumer {
            Some(name) => match g.consumers.get(name) {
                Some(c) => Some(c.slot),
                None => return Vec::new(),
            },
            None => None,
        };
        let min_idle = min_idle.unwrap_or(0);
        let mut out = Vec::new();
        for (id, p) in g.pel.range(start..=end) {
            if slot.is_some_and(|s| s != p.consumer) {
                continue;
            }
            let idle = now.saturating_sub(p.delivery_ms);
            if min_idle > 0 && idle < min_idle {
                continue;
            }
            let name = g.consumer_name(p.consumer).cloned().unwrap_or_default();
            out.push((*id, name, idle, u64::from(p.count)));
            if out.len() == count {
                break;
            }
        }
        out
    }

    /// XCLAIM (§3): the IDs claimed, in argument order. Creates the consumer (7.2).
    pub fn claim(
        &mut self,
        group: &[u8],
        consumer: &[u8],
        min_idle: u64,
        ids: &[Id],
        opts: &ClaimOptions,
        now: u64,
    ) -> Vec<Id> {
        // Which IDs still exist, before the group is borrowed mutably.
        let exists: Vec<bool> = ids.iter().map(|&id| self.contains(id)).collect();
        let Some(g) = self.groups.get_mut(group) else {
            return Vec::new();
        };
        if let Some(l) = opts.last_id {
            if l > g.last_id {
                g.last_id = l;
            }
        }
        let snow = i64::try_from(now).unwrap_or(i64::MAX);
        let delivery = match (opts.idle, opts.time) {
            // The last of IDLE/TIME given wins in Redis; the parser passes just one.
            (_, Some(t)) => t,
            (Some(idle), None) => snow.saturating_sub(idle),
            (None, None) => snow,
        };
        let delivery = if delivery < 0 || delivery > snow {
            now
        } else {
            delivery as u64
        };
        let (slot, _) = g.ensure_consumer(consumer, now);
        g.touch(slot, now, false);
        let mut claimed = Vec::new();
        for (&id, &exists) in ids.iter().zip(&exists) {
            if !exists {
                // Pending entries whose entry is gone leave the PEL (7.0+).
                g.remove_pending(id);
                continue;
            }
            let (forced, prev) = match g.pel.get(&id) {
                Some(p) => (false, *p),
                None if opts.force => (
                    true,
                    Pending {
                        delivery_ms: now,
                        count: 1,
                        consumer: slot,
                    },
                ),
                None => continue,
            };
            if !forced && min_idle > 0 && now.saturating_sub(prev.delivery_ms) < min_idle {
                continue;
            }
            let count = match opts.retry_count {
                Some(n) => clamp_count(n),
                None if !opts.justid => prev.count.saturating_add(1),
                None => prev.count,
            };
            if forced {
                g.pel.insert(
                    id,
                    Pending {
                        delivery_ms: delivery,
                        count,
                        consumer: slot,
                    },
                );
                g.adjust_pending(slot, true);
            } else {
                g.assign(id, slot, delivery, count);
            }
            g.touch(slot, now, true);
            claimed.push(id);
        }
        claimed
    }

    /// XAUTOCLAIM (§3): `(next cursor (0-0 at the end), claimed, deleted)`. Scans at most
    /// `10 * count` PEL entries from `start`; deleted entries leave the PEL and count
    /// against `count`; JUSTID does not increment delivery counts.
    #[allow(clippy::too_many_arguments)]
    pub fn autoclaim(
        &mut self,
        group: &[u8],
        consumer: &[u8],
        min_idle: u64,
        start: Id,
        count: usize,
        justid: bool,
        now: u64,
    ) -> (Id, Vec<Id>, Vec<Id>) {
        if !self.groups.contains_key(group) {
            return (Id::MIN, Vec::new(), Vec::new());
        }
        let mut claimed = Vec::new();
        let mut deleted = Vec::new();
        let mut attempts = count.saturating_mul(10);
        let mut left = count;
        // Next PEL key to look at; None once the maximum ID was examined.
        let mut cursor = Some(start);
        let mut eof = false;
        let slot = {
            let g = self.groups.get_mut(group).expect("checked above");
            let (slot, _) = g.ensure_consumer(consumer, now);
            g.touch(slot, now, false);
            slot
        };
        while attempts > 0 && left > 0 {
            attempts -= 1;
            let Some(from) = cursor else {
                eof = true;
                break;
            };
            let next = self
                .groups
                .get(group)
                .and_then(|g| g.pel.range(from..).next().map(|(id, p)| (*id, *p)));
            let Some((id, p)) = next else {
                eof = true;
                break;
            };
            cursor = id.next();
            let exists = self.contains(id);
            let g = self.groups.get_mut(group).expect("checked above");
            if !exists {
                g.remove_pending(id);
                deleted.push(id);
                left -= 1;
                continue;
            }
            if min_idle > 0 && (now < p.delivery_ms || now - p.delivery_ms < min_idle) {
                continue;
            }
            let count = if justid { p.count } else { p.count.saturating_add(1) };
            g.assign(id, slot, now, count);
            g.touch(slot, now, true);
            claimed.push(id);
            left -= 1;
        }
        let next = if eof {
            Id::MIN
        } else {
            cursor
                .and_then(|from| {
                    self.groups
                        .get(group)
                        .and_then(|g| g.pel.range(from..).next().map(|(id, _)| *id))
                })
                .unwrap_or(Id::MIN)
        };
        (next, claimed, deleted)
    }

    /// `(entries-read, lag)` as XINFO shows them (§4; nil = None).
    pub fn entries_read_and_lag(&self, group: &[u8]) -> (Option<u64>, Option<u64>) {
        let Some(g) = self.groups.get(group) else {
            return (None, None);
        };
        let meta = Meta::of(self);
        let lag = if meta.entries_added == 0 {
            Some(0)
        } else if let (Some(read), false) = (g.entries_read, meta.has_tombstone_from(g.last_id)) {
            Some(meta.entries_added.saturating_sub(read))
        } else {
            meta.estimate(g.last_id)
                .map(|read| meta.entries_added.saturating_sub(read))
        };
        (g.entries_read, lag)
    }
}
