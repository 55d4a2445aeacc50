//! The packed node: many entries in one byte buffer.
//!
//! Why: a stream of small entries must cost about what Redis's listpacks cost (76 bytes
//! per entry with one field and a 64-byte value). A heap object per entry (or per field)
//! costs 100+ bytes before the payload, so entries are packed, Redis-style, into nodes
//! of up to `stream-node-max-entries` entries; the stream keeps the nodes in a `BTreeMap`
//! keyed by each node's first ("master") ID.
//!
//! Layout of `Node::buf`:
//!
//! ```text
//! master fields:  [len varint][field bytes] x master_nfields
//! entry:          [flags u8][ms delta varint][seq varint]
//!                 SAME_FIELDS:  ([len varint][value]) x master_nfields
//!                 otherwise:    [nfields varint] ([len][field][len][value]) x nfields
//! ```
//!
//! * The ms part is stored as `ms - master.ms`; the seq as `seq - master.seq` when the
//!   ms is the master's, else as-is (so a new millisecond usually costs one byte for
//!   seq 0). Both are LEB128 varints: one byte each for the usual small deltas.
//! * Field names equal to the master entry's are stored once, in the master section,
//!   and such entries carry the SAME_FIELDS flag. The typical stream (same fields in
//!   every entry) then stores only values.
//! * There is no per-entry back-length: reverse iteration scans a node forward once,
//!   collecting entry offsets (a node holds at most a few hundred entries), which saves
//!   a byte per entry.
//! * XDEL and trimming only set the DELETED flag; the node is freed when its last live
//!   entry goes, as in Redis.
//!
//! The node also tracks an *estimate of the Redis listpack size* of the same entries
//! (`lp_bytes`): Redis starts a new node when that size plus the new entry's payload
//! reaches `stream-node-max-bytes`, and the approximate-trim results (`MAXLEN ~`) that
//! clients and tests see depend on where nodes end.

use bytes::Bytes;

use super::id::Id;

pub(crate) const FLAG_DELETED: u8 = 1;
pub(crate) const FLAG_SAME_FIELDS: u8 = 2;

/// Redis caps a listpack at 1 GiB; `stream-node-max-bytes 0` means that cap.
const LISTPACK_MAX_SIZE: usize = 1 << 30;

/// A node of packed entries. The master ID is the key it is stored under.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    buf: Vec<u8>,
    /// ID of the last entry (live or deleted): approximate MINID trimming drops a node
    /// whose last ID is below the threshold without decoding it.
    pub(crate) last: Id,
    pub(crate) live: u32,
    pub(crate) deleted: u32,
    /// Estimated listpack bytes, without the live/deleted counters (their encoded size
    /// changes with their values; `lp_bytes()` adds them).
    lp_rest: u32,
    master_nfields: u32,
    entries_start: u32,
}

// ---------------------------------------------------------------------------- varints

#[inline]
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
pub(crate) fn get_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut v: u64 = 0;
    let mut shift = 0;
    loop {
        let b = buf[*pos];
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

#[cfg(test)]
fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

#[inline]
fn get_slice<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let len = get_varint(buf, pos) as usize;
    let s = &buf[*pos..*pos + len];
    *pos += len;
    s
}

#[inline]
fn skip_slice(buf: &[u8], pos: &mut usize) {
    let len = get_varint(buf, pos) as usize;
    *pos += len;
}

// ------------------------------------------------------------- listpack size estimate

/// Bytes of a listpack integer element (encoding + back-length byte).
fn lp_int_size(v: i64) -> usize {
    let enc = if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if (-32768..=32767).contains(&v) {
        3
    } else if (-8_388_608..=8_388_607).contains(&v) {
        4
    } else if (i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&v) {
        5
    } else {
        9
    };
    enc + 1
}

/// listpack's `lpStringToInt64`: canonical decimal integers are stored as integers.
fn lp_string_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s.strip_prefix(b"-") {
        Some(d) => (true, d),
        None => (false, s),
    };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Bytes of a listpack string element (or integer, if it reads as one).
fn lp_str_size(s: &[u8]) -> usize {
    if let Some(v) = lp_string_int(s) {
        return lp_int_size(v);
    }
    let len = s.len();
    let enc = if len < 64 {
        1 + len
    } else if len < 4096 {
        2 + len
    } else {
        5 + len
    };
    let back = if enc <= 127 {
        1
    } else if enc < 16383 {
        2
    } else if enc < 2_097_151 {
        3
    } else if enc < 268_435_455 {
        4
    } else {
        5
    };
    enc + back
}

/// Sizes in a Redis listpack node: 6-byte header + end byte, and the master entry's
/// num-fields, fields and zero terminator (count and deleted are added by `lp_bytes`).
fn lp_master_size(fields: &[Bytes]) -> usize {
    let mut n = 7 + lp_int_size(fields.len() as i64 / 2) + lp_int_size(0);
    for f in fields.iter().step_by(2) {
        n += lp_str_size(f);
    }
    n
}

// ------------------------------------------------------------------------------- node

/// Node-size limits: Redis's `stream-node-max-entries` (default 100) and
/// `stream-node-max-bytes` (default 4096); 0 means no limit for either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeLimits {
    pub max_entries: usize,
    pub max_bytes: usize,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            max_entries: 100,
            max_bytes: 4096,
        }
    }
}

/// A decoded entry header: where it lives in the node and what it is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawEntry {
    pub(crate) id: Id,
    pub(crate) flags: u8,
    /// Offset of the flags byte (to mark it deleted).
    pub(crate) at: u32,
    /// Offset of the first field (or value, with SAME_FIELDS).
    pub(crate) body: u32,
    pub(crate) nfields: u32,
}

impl Node {
    /// A node whose master entry takes its fields from `fields` (`f1, v1, f2, v2, ..`).
    pub(crate) fn new(fields: &[Bytes]) -> Node {
        let mut buf = Vec::with_capacity(256);
        for f in fields.iter().step_by(2) {
            put_varint(&mut buf, f.len() as u64);
            buf.extend_from_slice(f);
        }
        let entries_start = buf.len() as u32;
        Node {
            buf,
            last: Id::MIN,
            live: 0,
            deleted: 0,
            lp_rest: lp_master_size(fields) as u32,
            master_nfields: (fields.len() / 2) as u32,
            entries_start,
        }
    }

    /// Estimated size of the equivalent Redis listpack.
    pub(crate) fn lp_bytes(&self) -> usize {
        self.lp_rest as usize + lp_int_size(i64::from(self.live)) + lp_int_size(i64::from(self.deleted))
    }

    /// Entries in the node, deleted ones included (Redis's count rule counts both).
    pub(crate) fn total(&self) -> u32 {
        self.live + self.deleted
    }

    /// Redis's rule for starting a new node before appending `fields`.
    pub(crate) fn is_full_for(&self, fields: &[Bytes], limits: &NodeLimits) -> bool {
        let payload: usize = fields.iter().map(|f| f.len()).sum();
        let max_bytes = if limits.max_bytes == 0 || limits.max_bytes > LISTPACK_MAX_SIZE {
            LISTPACK_MAX_SIZE
        } else {
            limits.max_bytes
        };
        if self.lp_bytes() + payload >= max_bytes {
            return true;
        }
        limits.max_entries != 0 && self.total() as usize >= limits.max_entries
    }

    /// Drops the growth slack: called when the node stops being the tail, so only the
    /// tail node ever holds spare capacity.
    pub(crate) fn seal(&mut self) {
        self.buf.shrink_to_fit();
    }

    /// Heap bytes held by the buffer.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    fn same_as_master(&self, fields: &[Bytes]) -> bool {
        if fields.len() / 2 != self.master_nfields as usize {
            return false;
        }
        let mut pos = 0;
        fields
            .iter()
            .step_by(2)
            .all(|f| get_slice(&self.buf, &mut pos) == &f[..])
    }

    /// Appends an entry. `id` is greater than every ID in the node; `master` is the key.
    pub(crate) fn push(&mut self, master: Id, id: Id, fields: &[Bytes]) {
        let same = self.same_as_master(fields);
        let ms_delta = id.ms - master.ms;
        let seq = if ms_delta == 0 { id.seq - master.seq } else { id.seq };
        let flags = if same { FLAG_SAME_FIELDS } else { 0 };
        let payload: usize = fields.iter().map(|f| f.len() + 2).sum();
        self.buf.reserve(payload + 24);
        self.buf.push(flags);
        put_varint(&mut self.buf, ms_delta);
        put_varint(&mut self.buf, seq);
        let nfields = fields.len() / 2;
        // What Redis's listpack spends on this entry: flags, ms and seq deltas,
        // [num-fields, fields], values, lp-count.
        let mut lp = lp_int_size(i64::from(flags & FLAG_SAME_FIELDS))
            + lp_int_size(ms_delta as i64)
            + lp_int_size(id.seq.wrapping_sub(master.seq) as i64);
        let mut lp_count = 3 + nfields;
        if same {
            for v in fields.iter().skip(1).step_by(2) {
                put_varint(&mut self.buf, v.len() as u64);
                self.buf.extend_from_slice(v);
                lp += lp_str_size(v);
            }
        } else {
            put_varint(&mut self.buf, nfields as u64);
            lp += lp_int_size(nfields as i64);
            for f in fields {
                put_varint(&mut self.buf, f.len() as u64);
                self.buf.extend_from_slice(f);
                lp += lp_str_size(f);
            }
            lp_count += nfields + 1;
        }
        lp += lp_int_size(lp_count as i64);
        self.lp_rest = self.lp_rest.saturating_add(lp as u32);
        self.live += 1;
        self.last = id;
    }

    /// Offset of the first entry.
    pub(crate) fn start(&self) -> usize {
        self.entries_start as usize
    }

    /// Offset just past the last entry.
    pub(crate) fn end(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn buf(&self) -> &[u8] {
        &self.buf
    }

    /// Decodes the entry at `pos`; returns it and the offset of the next one.
    #[inline]
    pub(crate) fn entry_at(&self, master: Id, pos: usize) -> (RawEntry, usize) {
        let buf = &self.buf[..];
        let at = pos;
        let mut p = pos;
        let flags = buf[p];
        p += 1;
        let ms_delta = get_varint(buf, &mut p);
        let seq_raw = get_varint(buf, &mut p);
        let ms = master.ms + ms_delta;
        let seq = if ms_delta == 0 { master.seq + seq_raw } else { seq_raw };
        let (nfields, body) = if flags & FLAG_SAME_FIELDS != 0 {
            let body = p;
            for _ in 0..self.master_nfields {
                skip_slice(buf, &mut p);
            }
            (self.master_nfields, body)
        } else {
            let n = get_varint(buf, &mut p) as u32;
            let body = p;
            for _ in 0..n * 2 {
                skip_slice(buf, &mut p);
            }
            (n, body)
        };
        let e = RawEntry {
            id: Id { ms, seq },
            flags,
            at: at as u32,
            body: body as u32,
            nfields,
        };
        (e, p)
    }

    /// Marks the entry whose flags byte is at `at` deleted. Returns false if it already was.
    pub(crate) fn mark_deleted(&mut self, at: usize) -> bool {
        if self.buf[at] & FLAG_DELETED != 0 {
            return false;
        }
        self.buf[at] |= FLAG_DELETED;
        self.live -= 1;
        self.deleted += 1;
        true
    }

    /// Finds the entry with `id` (live or deleted).
    pub(crate) fn find(&self, master: Id, id: Id) -> Option<RawEntry> {
        if id > self.last {
            return None;
        }
        let mut pos = self.start();
        while pos < self.end() {
            let (e, next) = self.entry_at(master, pos);
            if e.id >= id {
                return (e.id == id).then_some(e);
            }
            pos = next;
        }
        None
    }
}

/// The field/value pairs of one entry, borrowed from its node.
#[derive(Clone, Debug)]
pub struct FieldIter<'a> {
    buf: &'a [u8],
    /// Position in the master fields (SAME_FIELDS entries), or None.
    master_pos: Option<usize>,
    pos: usize,
    remaining: u32,
}

impl<'a> FieldIter<'a> {
    pub(crate) fn new(buf: &'a [u8], e: &RawEntry) -> FieldIter<'a> {
        FieldIter {
            buf,
            master_pos: (e.flags & FLAG_SAME_FIELDS != 0).then_some(0),
            pos: e.body as usize,
            remaining: e.nfields,
        }
    }
}

impl<'a> Iterator for FieldIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let field = match &mut self.master_pos {
            Some(mp) => get_slice(self.buf, mp),
            None => get_slice(self.buf, &mut self.pos),
        };
        let value = get_slice(self.buf, &mut self.pos);
        Some((field, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining as usize, Some(self.remaining as usize))
    }
}

impl ExactSizeIterator for FieldIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn varints_roundtrip() {
        let mut v = Vec::new();
        for x in [0u64, 1, 127, 128, 300, u64::MAX] {
            put_varint(&mut v, x);
        }
        let mut p = 0;
        for x in [0u64, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(get_varint(&v, &mut p), x);
        }
        assert_eq!(p, v.len());
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
    }

    #[test]
    fn listpack_estimates() {
        assert_eq!(lp_int_size(0), 2);
        assert_eq!(lp_int_size(128), 3);
        assert_eq!(lp_str_size(b"f"), 3);
        assert_eq!(lp_str_size(b"12"), 2);
        assert_eq!(lp_str_size(b"012"), 5);
        assert_eq!(lp_str_size(&[b'x'; 64]), 67);
        // One field, one 64-byte value: Redis's node is 18 + 75 per entry, so the 4096-byte
        // rule closes it at 54 entries (18,525 nodes per million, as measured).
        let fields = [b("f"), Bytes::from(vec![b'x'; 64])];
        let mut n = Node::new(&fields);
        assert_eq!(n.lp_bytes(), 7 + 2 + 2 + 2 + 3 + 2);
        let limits = NodeLimits {
            max_entries: 0,
            max_bytes: 4096,
        };
        let master = Id::new(1000, 0);
        let mut count = 0;
        while !n.is_full_for(&fields, &limits) {
            n.push(master, Id::new(1000 + count, 0), &fields);
            count += 1;
        }
        assert_eq!(count, 54);
    }

    #[test]
    fn push_and_decode() {
        let master = Id::new(5, 3);
        let mut n = Node::new(&[b("a"), b("1"), b("b"), b("2")]);
        n.push(master, master, &[b("a"), b("1"), b("b"), b("2")]);
        n.push(master, Id::new(5, 9), &[b("x"), b("y")]);
        n.push(master, Id::new(900, 0), &[b("a"), b(""), b("b"), b("zz")]);
        let mut pos = n.start();
        let mut got = Vec::new();
        while pos < n.end() {
            let (e, next) = n.entry_at(master, pos);
            let fields: Vec<(Vec<u8>, Vec<u8>)> = FieldIter::new(n.buf(), &e)
                .map(|(f, v)| (f.to_vec(), v.to_vec()))
                .collect();
            got.push((e.id, e.flags, fields));
            pos = next;
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, master);
        assert_eq!(got[0].1, FLAG_SAME_FIELDS);
        assert_eq!(
            got[0].2,
            vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]
        );
        assert_eq!(got[1].0, Id::new(5, 9));
        assert_eq!(got[1].1, 0);
        assert_eq!(got[1].2, vec![(b"x".to_vec(), b"y".to_vec())]);
        assert_eq!(got[2].0, Id::new(900, 0));
        assert_eq!(
            got[2].2,
            vec![(b"a".to_vec(), b"".to_vec()), (b"b".to_vec(), b"zz".to_vec())]
        );
        let e = n.find(master, Id::new(5, 9)).unwrap();
        assert!(n.mark_deleted(e.at as usize));
        assert!(!n.mark_deleted(e.at as usize));
        assert_eq!((n.live, n.deleted), (2, 1));
        assert!(n.find(master, Id::new(5, 10)).is_none());
    }
}
