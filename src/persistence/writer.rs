//! Appending the journal to the current incr file, and syncing it as `appendfsync`
//! asks.
//!
//! Replies wait for their writes' bytes (Redis writes its AOF buffer before it replies,
//! so a crash of the process loses nothing acknowledged). The connection about to reply
//! writes them itself ([`write_inline`]: one write(2) for everything committed so far,
//! from every connection), as Redis's one thread does; a connection that finds another
//! writing waits for it. Under `everysec` and `no` the replies then go. The writer
//! thread does the rest: the fsyncs (outside the state lock, so writes go on meanwhile),
//! under `always` the fsync the replies wait for (one covers everything that arrived
//! meanwhile: group commit), retries, and the final write at shutdown.
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

/// The file being appended to and what is on its way there (behind `Shared::state`).
pub struct State {
    /// Shared with the fsync, which runs outside the lock (an fsync through any
    /// descriptor of the file syncs it).
    file: Arc<File>,
    name: String,
    /// Bytes taken from the journal and not yet written.
    carry: BytesMut,
    /// Journal offset of the first byte of `carry`: everything before is written.
    written: u64,
    rotations: std::collections::VecDeque<u64>,
    /// The error being retried (logged once).
    failing: Option<String>,
    /// The last fsync failed: the writes are not known to be on disk.
    sync_failing: bool,
}

impl State {
    pub fn new(file: File, name: String, start: u64) -> State {
        State {
            file: Arc::new(file),
            name,
            carry: BytesMut::new(),
            written: start,
            rotations: Default::default(),
            failing: None,
            sync_failing: false,
        }
    }
}

/// Takes what the journal committed and writes it. False on an error.
fn take_and_write(shared: &Shared, st: &mut State) -> bool {
    let taken = shared.keyspace.lock().journal.take();
    if st.carry.is_empty() {
        st.carry = taken.bytes;
    } else {
        st.carry.extend_from_slice(&taken.bytes);
    }
    st.rotations.extend(taken.rotations);
    write_out(shared, st)
}

/// From the connection about to reply: writes everything committed so far, unless
/// someone else is writing. True if the replies up to `offset` may go: under
/// `everysec`/`no` once written, under `always` once synced.
///
/// Under `always` the first connection to get here writes and syncs, on its own worker
/// (Redis syncs on its one thread): no hop to the writer thread and back for a lone
/// client. Writing and syncing are one step under the `syncing` lock, so no write runs
/// during an fsync, and what arrives meanwhile waits in the journal for the next step:
/// one write and one fsync per group.
/// The others wait for it, or for the writer thread's next step.
pub fn write_inline(shared: &Shared, offset: u64) -> bool {
    let always = shared.settings.fsync() == Fsync::Always;
    let _leader = match always.then(|| shared.syncing.try_lock()) {
        Some(Ok(g)) => Some(g),
        Some(Err(_)) => return false,
        None => None,
    };
    let Ok(mut st) = shared.state.try_lock() else {
        return false;
    };
    if st.failing.is_some() {
        return false;
    }
    let ok = take_and_write(shared, &mut st);
    let written = st.written;
    let file = st.file.clone();
    drop(st);
    if !ok {
        return false;
    }
    if !always {
        shared.durable.send_replace(written);
        return written >= offset;
    }
    if shared.stats.synced.load(Relaxed) < written {
        sync_file(shared, &file, written, Fsync::Always);
    }
    shared.stats.synced.load(Relaxed) >= offset
}

/// fdatasync of `file` (its size is metadata it covers), then everything up to `written`
/// is on disk: recorded, and under `always` the replies waiting for it go. False on an
/// error (recorded too: writes get MISCONF until a sync succeeds).
fn sync_file(shared: &Shared, file: &File, written: u64, policy: Fsync) -> bool {
    let t = Instant::now();
    let r = file.sync_data();
    let mut st = shared.state.locked();
    match r {
        Ok(()) => {
            st.sync_failing = false;
            if policy == Fsync::Everysec && t.elapsed() > DELAYED_FSYNC {
                shared.stats.delayed_fsync.fetch_add(1, Relaxed);
                tracing::warn!("Asynchronous AOF fsync is taking too long (disk is busy?). Writing the AOF buffer without waiting for fsync to complete, this may slow down Redis.");
            }
            if st.carry.is_empty() {
                recovered(shared, &mut st);
            }
            drop(st);
            shared.stats.synced.fetch_max(written, Relaxed);
            if policy == Fsync::Always {
                shared.durable.send_if_modified(|v| {
                    let grew = written > *v;
                    *v = (*v).max(written);
                    grew
                });
            }
            true
        }
        Err(e) => {
            st.sync_failing = true;
            failed(shared, &mut st, "fsync of the AOF", &e);
            false
        }
    }
}

pub fn run(shared: Arc<Shared>) {
    let mut last_fsync = Instant::now();
    loop {
        let stopping = shared.stop.load(Relaxed);
        let policy = shared.settings.fsync();
        let forced = shared.sync_requested.swap(false, Relaxed);
        let due = match policy {
            Fsync::Always => true,
            Fsync::Everysec => last_fsync.elapsed() >= Duration::from_secs(1),
            Fsync::No => false,
        };
        // Under always, write and fsync as one step (see `write_inline`).
        let mut step = (policy == Fsync::Always).then(|| shared.syncing.locked());
        let synced = shared.stats.synced.load(Relaxed);
        let (ok, written, failing, to_sync) = {
            let mut st = shared.state.locked();
            let ok = take_and_write(&shared, &mut st);
            let want = ok && (st.written > synced || st.sync_failing) && (due || forced || stopping);
            let to_sync = want.then(|| st.file.clone());
            (ok, st.written, st.failing.is_some(), to_sync)
        };
        if ok && policy != Fsync::Always {
            shared.durable.send_replace(written);
        }
        if let Some(file) = to_sync {
            let _sync = step.take().unwrap_or_else(|| shared.syncing.locked());
            // A connection may have synced it meanwhile (under always).
            let done = shared.stats.synced.load(Relaxed) >= written && !forced;
            if done || sync_file(&shared, &file, written, policy) {
                last_fsync = Instant::now();
            }
        }
        drop(step);
        if stopping {
            let st = shared.state.locked();
            if st.carry.is_empty() || st.failing.is_some() {
                if st.failing.is_some() {
                    tracing::warn!(
                        bytes = st.carry.len(),
                        "stopping the AOF writer while the disk fails: the last writes are not in the file"
                    );
                }
                return;
            }
            continue;
        }
        // Under always, a round right after the previous one: what arrived during the
        // fsync is the next group. Otherwise wait to be woken, for the next due fsync,
        // or a second for a retry.
        let wait = if failing {
            Duration::from_secs(1)
        } else if written > shared.stats.synced.load(Relaxed) && policy == Fsync::Everysec {
            Duration::from_secs(1)
                .saturating_sub(last_fsync.elapsed())
                .max(Duration::from_millis(1))
        } else {
            Duration::from_secs(1)
        };
        std::thread::park_timeout(wait);
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
                shared.stats.current_size.fetch_add(n as u64, Relaxed);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return failed(shared, st, "writing the AOF", &e),
        }
    }
}

/// Starts the next incr file: the current one is synced, the new one created and
/// named in the manifest before anything is written to it (unless the AOF is being
/// turned on, when the first rewrite writes the manifest).
fn rotate(shared: &Shared, st: &mut State) -> std::io::Result<()> {
    st.file.sync_data()?;
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
    st.file = Arc::new(file);
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
