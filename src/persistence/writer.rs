//! The writer thread: appends what the journal committed to the current incr file and
//! syncs it as `appendfsync` asks. No client ever waits on a disk here except under
//! `always`, where the replies of the writes a round covered go out after its fsync
//! (one fsync for everything that arrived meanwhile, from every connection).
//!
//! A failed write or fsync (disk full, EIO, a file size limit) keeps the bytes not yet
//! written and is retried each second; meanwhile writes get `-MISCONF` and the error is
//! logged once. The file only ever holds a prefix of the journal, so it stays loadable
//! at any moment (at worst with a cut last command, which loading drops).

use std::fs::File;
use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};

use super::{strerror, Shared};
use crate::config::Fsync;
use crate::sync::LockExt;

/// An everysec fsync slower than this counts as delayed (INFO `aof_delayed_fsync`), as
/// Redis counts a write it had to let through while a 2-second-old fsync still ran.
const DELAYED_FSYNC: Duration = Duration::from_secs(2);

/// Asks the writer for an fsync now, whatever the policy (DEBUG LOADAOF, shutdown).
pub fn request_sync(shared: &Shared) {
    shared.sync_requested.store(true, Relaxed);
}

struct State {
    file: File,
    name: String,
    /// Bytes taken from the journal and not yet written.
    carry: BytesMut,
    /// Journal offset of the first byte of `carry`.
    written: u64,
    rotations: std::collections::VecDeque<u64>,
    unsynced: bool,
    last_fsync: Instant,
    /// The error being retried (logged once).
    failing: Option<String>,
    /// The last fsync failed: the writes are not known to be on disk.
    sync_failing: bool,
}

pub fn run(shared: Arc<Shared>, file: File, name: String, start: u64) {
    let mut st = State {
        file,
        name,
        carry: BytesMut::new(),
        written: start,
        rotations: Default::default(),
        unsynced: false,
        last_fsync: Instant::now(),
        failing: None,
        sync_failing: false,
    };
    loop {
        let stopping = shared.stop.load(Relaxed);
        {
            let mut ks = shared.keyspace.lock();
            let taken = ks.journal.take();
            drop(ks);
            if st.carry.is_empty() {
                st.carry = taken.bytes;
            } else {
                st.carry.extend_from_slice(&taken.bytes);
            }
            st.rotations.extend(taken.rotations);
        }
        let ok = write_out(&shared, &mut st);
        let policy = shared.settings.fsync();
        let forced = shared.sync_requested.swap(false, Relaxed);
        let due = match policy {
            Fsync::Always => true,
            Fsync::Everysec => st.last_fsync.elapsed() >= Duration::from_secs(1),
            Fsync::No => false,
        };
        let mut synced = false;
        if ok && st.unsynced && (due || forced || stopping) {
            synced = sync(&shared, &mut st, policy);
        } else if ok && !st.unsynced {
            synced = true;
        }
        if synced || (ok && policy != Fsync::Always) {
            // Under everysec/no nobody waits; the offset still tells what was written.
            shared.durable.send_replace(st.written);
        }
        if synced {
            shared.stats.synced.store(st.written, Relaxed);
        }
        if stopping && (st.carry.is_empty() || st.failing.is_some()) {
            if st.failing.is_some() {
                tracing::warn!(
                    bytes = st.carry.len(),
                    "stopping the AOF writer while the disk fails: the last writes are not in the file"
                );
            }
            return;
        }
        let wait = if st.failing.is_some() {
            Duration::from_secs(1)
        } else if st.unsynced && policy == Fsync::Everysec {
            Duration::from_secs(1)
                .saturating_sub(st.last_fsync.elapsed())
                .max(Duration::from_millis(1))
        } else {
            Duration::from_secs(1)
        };
        if st.carry.is_empty() || st.failing.is_some() {
            std::thread::park_timeout(wait);
        }
    }
}

/// Writes the carried bytes, switching files at rotation points. False on an error
/// (the rest stays carried).
fn write_out(shared: &Shared, st: &mut State) -> bool {
    loop {
        if let Some(&at) = st.rotations.front() {
            if at <= st.written {
                if let Err(e) = rotate(shared, st) {
                    return failed(shared, st, "opening a new AOF incr file", &e);
                }
                st.rotations.pop_front();
                shared.rotated_at.store(at + 1, Relaxed);
                continue;
            }
        }
        if st.carry.is_empty() {
            return st.sync_failing || recovered(shared, st);
        }
        let limit = match st.rotations.front() {
            Some(&at) => (at - st.written) as usize,
            None => st.carry.len(),
        };
        let chunk = &st.carry[..limit.min(st.carry.len())];
        match st.file.write(chunk) {
            Ok(0) => {
                let e = std::io::Error::new(std::io::ErrorKind::WriteZero, "write returned 0");
                return failed(shared, st, "writing the AOF", &e);
            }
            Ok(n) => {
                st.carry.advance(n);
                st.written += n as u64;
                st.unsynced = true;
                shared.stats.current_size.fetch_add(n as u64, Relaxed);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return failed(shared, st, "writing the AOF", &e),
        }
    }
}

/// Syncs the current file (fdatasync; the size change is metadata it covers).
fn sync(shared: &Shared, st: &mut State, policy: Fsync) -> bool {
    let t = Instant::now();
    match st.file.sync_data() {
        Ok(()) => {
            st.unsynced = false;
            st.sync_failing = false;
            st.last_fsync = Instant::now();
            if policy == Fsync::Everysec && t.elapsed() > DELAYED_FSYNC {
                shared.stats.delayed_fsync.fetch_add(1, Relaxed);
                tracing::warn!("Asynchronous AOF fsync is taking too long (disk is busy?). Writing the AOF buffer without waiting for fsync to complete, this may slow down Redis.");
            }
            recovered(shared, st)
        }
        Err(e) => {
            st.sync_failing = true;
            failed(shared, st, "fsync of the AOF", &e)
        }
    }
}

/// Starts the next incr file: the current one is synced, the new one created and
/// named in the manifest before anything is written to it (unless the AOF is being
/// turned on, when the first rewrite writes the manifest).
fn rotate(shared: &Shared, st: &mut State) -> std::io::Result<()> {
    st.file.sync_data()?;
    st.unsynced = false;
    let mut m = shared.manifest.locked();
    let mut next = m.clone();
    let name = next.new_incr(&shared.files.filename);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(shared.files.path(&name))?;
    if !shared.wait_rewrite.load(Relaxed) {
        shared.files.persist_manifest(&next)?;
    }
    *m = next;
    tracing::info!("Creating AOF incr file {name} on background rewrite");
    st.file = file;
    st.name = name;
    Ok(())
}

fn failed(shared: &Shared, st: &mut State, what: &str, e: &std::io::Error) -> bool {
    let stats = &shared.stats;
    stats.last_write_ok.store(false, Relaxed);
    stats
        .last_write_errno
        .store(e.raw_os_error().unwrap_or(libc_eio()), Relaxed);
    stats.write_errors.fetch_add(1, Relaxed);
    let text = format!("{what} ({}): {}", st.name, strerror(e));
    if st.failing.as_deref() != Some(text.as_str()) {
        tracing::warn!("Error {text}; writes are refused with MISCONF until the disk accepts them again");
        st.failing = Some(text);
    }
    false
}

fn recovered(shared: &Shared, st: &mut State) -> bool {
    if st.failing.take().is_some() {
        tracing::warn!("AOF write error looks solved, fanout can write again.");
    }
    shared.stats.last_write_ok.store(true, Relaxed);
    true
}

/// EIO, for errors that carry no OS code.
fn libc_eio() -> i32 {
    5
}
