//! The journal: every change to the keyspace, written as the commands that redo it, in
//! the order the changes happened (Redis's propagation to the append-only file).
//!
//! A replay must rebuild the same data without the clock or chance, so what is written
//! is the effect, not always the request: XADD with the ID it generated, a `~` trim as
//! the exact length or first ID it left, XREADGROUP's deliveries as XCLAIM with their
//! times and counts, EXPIRE as PEXPIREAT, an expired key as DEL.
//!
//! Commands write into the current unit; [`Journal::commit`] ends it when the command
//! (or the whole EXEC) is done, wrapped in MULTI/EXEC when it holds more than one
//! command, so a replay applies it whole or not at all (Redis does the same). Committed
//! bytes wait in `pending` until the AOF writer (`crate::persistence`) takes them; it
//! takes them under the keyspace lock, so the file has the writes in the order the lock
//! gave them.

use bytes::{BufMut, BytesMut};

use crate::protocol::reply::{Encoder, Proto};
use crate::stream::Id;

#[derive(Default)]
pub struct Journal {
    on: bool,
    unit: BytesMut,
    unit_commands: usize,
    /// The database the file's last command ran in (None at the start of a file, where a
    /// replay starts in database 0 but Redis writes SELECT anyway).
    selected: Option<usize>,
    pending: BytesMut,
    /// Where (as journal offsets) the writer must start a new incr file: the point a
    /// rewrite took its snapshot.
    rotations: Vec<u64>,
    /// Bytes committed since the journal was created: the offset `pending` ends at.
    committed: u64,
    /// Where numbers and IDs are formatted (no allocation per argument).
    scratch: Vec<u8>,
}

/// What the writer takes at once.
pub struct Taken {
    pub bytes: BytesMut,
    /// Rotation points within (or at the end of) `bytes`.
    pub rotations: Vec<u64>,
}

impl Journal {
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Starts journaling. (The writer is woken by whoever waits for its bytes, once per
    /// batch of replies, not here once per command.)
    pub fn start(&mut self) {
        self.on = true;
        self.selected = None;
    }

    /// Stops journaling and forgets what was not taken.
    pub fn stop(&mut self) {
        self.on = false;
        self.unit.clear();
        self.unit_commands = 0;
        self.committed += self.pending.len() as u64;
        self.pending = BytesMut::new();
        self.rotations.clear();
    }

    /// Stops journaling for a while (DEBUG LOADAOF replays the files it came from);
    /// returns whether it was on, for [`Journal::resume`].
    pub fn suspend(&mut self) -> bool {
        std::mem::replace(&mut self.on, false)
    }

    pub fn resume(&mut self, was_on: bool) {
        self.on = was_on;
    }

    /// Offset of the end of what was committed so far.
    pub fn committed(&self) -> u64 {
        self.committed + self.pending.len() as u64
    }

    /// Starts a command of `argc` arguments run in database `db`; the arguments follow
    /// with [`Journal::arg`] and friends. Everything is a no-op while the journal is off,
    /// so commands journal without asking.
    pub fn command(&mut self, db: usize, argc: usize) -> &mut Self {
        if !self.on {
            return self;
        }
        if self.selected != Some(db) {
            self.selected = Some(db);
            Encoder::new(&mut self.unit, Proto::Resp2).array(2);
            self.arg(b"SELECT").arg_int(db as i64);
        }
        self.unit_commands += 1;
        Encoder::new(&mut self.unit, Proto::Resp2).array(argc);
        self
    }

    pub fn arg(&mut self, a: &[u8]) -> &mut Self {
        if !self.on {
            return self;
        }
        Encoder::new(&mut self.unit, Proto::Resp2).bulk(a);
        self
    }

    pub fn arg_int(&mut self, n: i64) -> &mut Self {
        if !self.on {
            return self;
        }
        self.scratch.clear();
        if n < 0 {
            self.scratch.push(b'-');
        }
        crate::stream::id::write_u64(n.unsigned_abs(), &mut self.scratch);
        Encoder::new(&mut self.unit, Proto::Resp2).bulk(&self.scratch);
        self
    }

    pub fn arg_id(&mut self, id: Id) -> &mut Self {
        if !self.on {
            return self;
        }
        self.scratch.clear();
        id.write_to(&mut self.scratch);
        Encoder::new(&mut self.unit, Proto::Resp2).bulk(&self.scratch);
        self
    }

    /// A command as it was sent.
    pub fn verbatim(&mut self, db: usize, args: &[bytes::Bytes]) {
        if !self.on {
            return;
        }
        self.command(db, args.len());
        for a in args {
            self.arg(a);
        }
    }

    /// A pending entry's state (Redis's `streamPropagateXCLAIM`): idempotent, so a replay
    /// gives the entry the same owner, delivery time and count, or drops it if the entry
    /// is gone; LASTID carries the group's position.
    #[allow(clippy::too_many_arguments)]
    pub fn xclaim(
        &mut self,
        db: usize,
        key: &[u8],
        group: &[u8],
        consumer: &[u8],
        id: Id,
        time: u64,
        count: u32,
        last: Id,
    ) {
        self.command(db, 14)
            .arg(b"XCLAIM")
            .arg(key)
            .arg(group)
            .arg(consumer)
            .arg(b"0")
            .arg_id(id)
            .arg(b"TIME")
            .arg_int(time as i64)
            .arg(b"RETRYCOUNT")
            .arg_int(i64::from(count))
            .arg(b"FORCE")
            .arg(b"JUSTID")
            .arg(b"LASTID")
            .arg_id(last);
    }

    /// A group's position (Redis's `streamPropagateGroupID`); -1: entries-read unknown.
    pub fn group_setid(&mut self, db: usize, key: &[u8], group: &[u8], last: Id, entries_read: Option<u64>) {
        self.command(db, 7)
            .arg(b"XGROUP")
            .arg(b"SETID")
            .arg(key)
            .arg(group)
            .arg_id(last)
            .arg(b"ENTRIESREAD")
            .arg_int(entries_read.map_or(-1, |n| n as i64));
    }

    pub fn create_consumer(&mut self, db: usize, key: &[u8], group: &[u8], consumer: &[u8]) {
        self.command(db, 5)
            .arg(b"XGROUP")
            .arg(b"CREATECONSUMER")
            .arg(key)
            .arg(group)
            .arg(consumer);
    }

    /// Ends the unit. Returns the offset it ends at, or None if it wrote nothing.
    pub fn commit(&mut self) -> Option<u64> {
        if self.unit.is_empty() {
            return None;
        }
        let wrap = self.unit_commands > 1;
        if wrap {
            self.pending.put_slice(b"*1\r\n$5\r\nMULTI\r\n");
        }
        self.pending.put_slice(&self.unit);
        if wrap {
            self.pending.put_slice(b"*1\r\n$4\r\nEXEC\r\n");
        }
        self.unit.clear();
        self.unit_commands = 0;
        Some(self.committed())
    }

    /// Marks the point where the writer starts a new file (what follows belongs to the
    /// new file, which starts with its own SELECT). Returns that offset.
    pub fn rotate(&mut self) -> u64 {
        let at = self.committed();
        self.rotations.push(at);
        self.selected = None;
        at
    }

    /// Everything committed and not yet taken.
    pub fn take(&mut self) -> Taken {
        let bytes = self.pending.split();
        self.committed += bytes.len() as u64;
        Taken {
            bytes,
            rotations: std::mem::take(&mut self.rotations),
        }
    }

    /// Bytes waiting for the writer (INFO `aof_buffer_length`).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_of_several_commands_is_one_transaction_and_select_comes_when_the_db_changes() {
        let mut j = Journal::default();
        j.start();
        assert_eq!(j.commit(), None);
        j.command(0, 2).arg(b"DEL").arg(b"k");
        let end = j.commit().unwrap();
        j.command(0, 2).arg(b"DEL").arg(b"a");
        j.command(3, 2).arg(b"DEL").arg(b"b");
        j.commit();
        let t = j.take();
        let text = String::from_utf8(t.bytes.to_vec()).unwrap().replace("\r\n", " ");
        assert_eq!(
            text,
            "*2 $6 SELECT $1 0 *2 $3 DEL $1 k *1 $5 MULTI *2 $3 DEL $1 a *2 $6 SELECT $1 3 *2 $3 DEL $1 b *1 $4 EXEC "
        );
        assert_eq!(end, 43);
        j.rotate();
        j.command(3, 2).arg(b"DEL").arg(b"c");
        j.commit();
        let t2 = j.take();
        assert_eq!(t2.rotations, vec![t.bytes.len() as u64]);
        assert!(
            t2.bytes.starts_with(b"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n"),
            "a new file selects again"
        );
    }
}
