//! BGREWRITEAOF: a new base file written from a snapshot while clients keep writing.
//!
//! The snapshot is taken under the keyspace lock together with the journal's rotation,
//! so the base holds everything before that point and the new incr file everything
//! after. Streams keep their entries in shared immutable nodes, so the snapshot copies
//! pointers, not entries. The base is written to a temporary file and synced; then,
//! under the manifest's lock, it is renamed into place, the manifest switched to the new
//! base and the incr files from the snapshot on, and the older files deleted (Redis
//! 7.0's order: a crash anywhere leaves a manifest naming complete files).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Shared;
use crate::keyspace::{Keyspace, Slot, Value};
use crate::stream::{Id, Stream};
use crate::sync::LockExt;

/// The keyspace at one instant: per database, its keys; then commands for server state
/// kept in the AOF (WEBHOOK ADD), written after the keys.
pub struct Snapshot {
    dbs: Vec<(usize, Vec<Slot>)>,
    extra: Vec<Vec<bytes::Bytes>>,
}

impl Snapshot {
    pub fn take(ks: &Keyspace, extra: Vec<Vec<bytes::Bytes>>) -> Snapshot {
        let dbs = (0..ks.databases())
            .filter(|&d| !ks.db(d).is_empty())
            .map(|d| (d, ks.db(d).iter().cloned().collect()))
            .collect();
        Snapshot { dbs, extra }
    }

    /// The commands that rebuild the snapshot, written to `out`. Gives up (Interrupted)
    /// when `stop` is set: the AOF is being turned off or the server stops.
    pub fn write(&self, out: &mut impl Write, stop: &AtomicBool) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(64 * 1024);
        for (db, slots) in &self.dbs {
            put(&mut buf, &[b"SELECT", db.to_string().as_bytes()]);
            for slot in slots {
                match &slot.value {
                    Value::Stream(st) => write_stream(&mut buf, &slot.key, st, out, stop)?,
                }
                if let Some(at) = slot.expire_at {
                    put(&mut buf, &[b"PEXPIREAT", &slot.key, at.to_string().as_bytes()]);
                }
                if buf.len() >= 64 * 1024 {
                    out.write_all(&buf)?;
                    buf.clear();
                    if stop.load(Relaxed) {
                        return Err(std::io::ErrorKind::Interrupted.into());
                    }
                }
            }
        }
        for cmd in &self.extra {
            let args: Vec<&[u8]> = cmd.iter().map(|a| &a[..]).collect();
            put(&mut buf, &args);
        }
        out.write_all(&buf)
    }
}

fn id(i: Id) -> Vec<u8> {
    let mut v = Vec::with_capacity(42);
    i.write_to(&mut v);
    v
}

/// One stream as Redis 7.0 rewrites it (`rewriteStreamObject`): its entries as XADD
/// (an empty stream through `XADD key MAXLEN 0 0-1 x y`), XSETID for the last ID,
/// entries-added and max-deleted ID; each group as XGROUP CREATE with its entries-read,
/// each pending entry as XCLAIM with its owner, delivery time and count, and consumers
/// without pending entries as XGROUP CREATECONSUMER.
fn write_stream(
    buf: &mut Vec<u8>,
    key: &[u8],
    st: &Stream,
    out: &mut impl Write,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    if st.is_empty() {
        put(buf, &[b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"]);
    }
    for e in st.range(Id::MIN, Id::MAX) {
        let n = 3 + e.field_count() * 2;
        header(buf, b'*', n);
        bulk(buf, b"XADD");
        bulk(buf, key);
        bulk(buf, &id(e.id));
        for (f, v) in e.fields() {
            bulk(buf, f);
            bulk(buf, v);
        }
        if buf.len() >= 64 * 1024 {
            out.write_all(buf)?;
            buf.clear();
            if stop.load(Relaxed) {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
        }
    }
    put(
        buf,
        &[
            b"XSETID",
            key,
            &id(st.last_id()),
            b"ENTRIESADDED",
            st.entries_added().to_string().as_bytes(),
            b"MAXDELETEDID",
            &id(st.max_deleted_id()),
        ],
    );
    for (name, g) in st.groups() {
        let read = g.entries_read().map_or(-1, |n| n as i64).to_string();
        put(
            buf,
            &[
                b"XGROUP",
                b"CREATE",
                key,
                name,
                &id(g.last_id()),
                b"ENTRIESREAD",
                read.as_bytes(),
            ],
        );
        for (consumer, c) in g.consumers() {
            if c.pending == 0 {
                put(buf, &[b"XGROUP", b"CREATECONSUMER", key, name, consumer]);
                continue;
            }
            for (pid, p) in g.consumer_pel(consumer) {
                put(
                    buf,
                    &[
                        b"XCLAIM",
                        key,
                        name,
                        consumer,
                        b"0",
                        &id(pid),
                        b"TIME",
                        p.delivery_ms.to_string().as_bytes(),
                        b"RETRYCOUNT",
                        p.count.to_string().as_bytes(),
                        b"JUSTID",
                        b"FORCE",
                    ],
                );
                if buf.len() >= 64 * 1024 {
                    out.write_all(buf)?;
                    buf.clear();
                }
            }
        }
    }
    Ok(())
}

fn header(buf: &mut Vec<u8>, prefix: u8, n: usize) {
    buf.push(prefix);
    buf.extend_from_slice(n.to_string().as_bytes());
    buf.extend_from_slice(b"\r\n");
}

fn bulk(buf: &mut Vec<u8>, a: &[u8]) {
    header(buf, b'$', a.len());
    buf.extend_from_slice(a);
    buf.extend_from_slice(b"\r\n");
}

fn put(buf: &mut Vec<u8>, args: &[&[u8]]) {
    header(buf, b'*', args.len());
    for a in args {
        bulk(buf, a);
    }
}

/// The rewrite thread: writes the base, then switches the manifest to it.
pub fn run(shared: Arc<Shared>, snapshot: Snapshot, rotation: u64) {
    let t0 = Instant::now();
    let stats = &shared.stats;
    let result = rewrite(&shared, &snapshot, rotation);
    drop(snapshot);
    let secs = t0.elapsed().as_secs() as i64;
    stats.last_rewrite_secs.store(secs, Relaxed);
    stats.rewrite_in_progress.store(false, Relaxed);
    match result {
        Ok(Some(size)) => {
            stats.base_size.store(size, Relaxed);
            stats.last_bgrewrite_ok.store(true, Relaxed);
            stats.rewrites.fetch_add(1, Relaxed);
            stats.rewrites_consecutive_failures.store(0, Relaxed);
            stats.last_save_unix.store(crate::keyspace::now_ms() / 1000, Relaxed);
            tracing::info!("Background AOF rewrite finished successfully");
        }
        Ok(None) => tracing::info!("Background AOF rewrite abandoned: the AOF was turned off"),
        Err(e) => {
            stats.last_bgrewrite_ok.store(false, Relaxed);
            stats.rewrites_consecutive_failures.fetch_add(1, Relaxed);
            tracing::warn!("Background AOF rewrite failed: {e}");
            // Turning the AOF on is done only once a base is in place: try again.
            if shared.wait_rewrite.load(Relaxed) {
                stats.rewrite_scheduled.store(true, Relaxed);
            }
        }
    }
}

/// Ok(Some(new size)) once installed; Ok(None) if the AOF was turned off meanwhile.
fn rewrite(shared: &Shared, snapshot: &Snapshot, rotation: u64) -> std::io::Result<Option<u64>> {
    let files = &shared.files;
    let tmp = files.path(&format!("temp-rewriteaof-bg-{}.aof", std::process::id()));
    let written = (|| {
        let f = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        snapshot.write(&mut w, &shared.stop)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        if shared.stop.load(Relaxed) {
            return Ok(None);
        }
        return Err(e);
    }
    tracing::info!("Successfully created the temporary AOF base file {}", tmp.display());
    // The incr file the snapshot switched to must exist (and be in the manifest)
    // before the manifest drops the older ones.
    while shared.rotated_at.load(Relaxed) < rotation + 1 {
        if shared.stop.load(Relaxed) {
            let _ = std::fs::remove_file(&tmp);
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut m = shared.manifest.locked();
    let mut next = m.clone();
    let base = next.new_base(&files.filename);
    std::fs::rename(&tmp, files.path(&base))?;
    tracing::info!("Successfully renamed the temporary AOF base file into {base}");
    next.retire_incrs(true);
    files.persist_manifest(&next)?;
    shared.wait_rewrite.store(false, Relaxed);
    // The manifest stops naming the history files before they go (Redis 7.0's
    // `aofDelHistoryFiles` order): a kill between the two then leaves an unnamed file,
    // never a manifest naming a missing one.
    let history = next.take_history();
    files.persist_manifest(&next)?;
    for old in history {
        tracing::info!("Removing the history file {} in the background", old.name);
        let _ = std::fs::remove_file(files.path(&old.name));
    }
    let size = files.size_of(&next);
    shared.stats.current_size.store(size, Relaxed);
    *m = next;
    Ok(Some(size))
}
