//! Durability: Redis 7's multi-part append-only file (AOF), in Redis's layout, so that
//! `redis-server` and `redis-check-aof` read fanout's files and fanout reads theirs.
//!
//! ```text
//! command (keyspace lock held) -> keyspace::journal (the commands that redo it)
//!        -> commit at the end of the command: one unit, MULTI/EXEC if several
//! before the replies go out: the committed bytes -> write(2) to the incr file, by the
//!        connection itself under everysec/no (as Redis's thread writes before it
//!        replies), by the writer thread under always, followed by its fsync (one fsync
//!        for every connection's writes = group commit); everysec: the writer thread
//!        syncs once a second; no: the OS does
//! rewrite thread: a snapshot of the keyspace (taken with the journal's rotation, under
//!        the lock) -> a new base file; the manifest then names the new base and the
//!        incr file opened at the snapshot, and the older files are deleted
//! ```
//!
//! * [`manifest`]: `appendonly.aof.manifest`, which files make up the data.
//! * [`reader`]: the commands of one file, with truncation and corruption told apart.
//! * [`writer`]: appending and syncing, and what a failing disk does (`-MISCONF` for
//!   writes until a write succeeds again; nothing acknowledged is lost).
//! * [`rewrite`]: BGREWRITEAOF, and the base file's commands for a stream.
//! * [`load`]: replaying the files at start (and for DEBUG LOADAOF) through a callback
//!   that runs each command (the command layer owns execution).
//!
//! Every file change that must survive a crash is made atomic the usual way: write a
//! temporary file, fsync it, rename it, fsync the directory. A crash at any point leaves
//! a manifest that names complete files only.

pub mod load;
pub mod manifest;
pub mod reader;
pub mod rewrite;
pub mod writer;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::config::Settings;
use crate::keyspace::Keyspace;
use crate::sync::LockExt;
use manifest::Manifest;

/// Where the files are: `dir/appenddirname/appendfilename.*`.
#[derive(Clone, Debug)]
pub struct Files {
    pub dir: PathBuf,
    pub filename: String,
}

impl Files {
    pub fn from_settings(settings: &Settings) -> Files {
        let get = |k: &str| settings.get(k).unwrap_or_default();
        Files {
            dir: PathBuf::from(get("dir")).join(get("appenddirname")),
            filename: get("appendfilename"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.path(&manifest::manifest_name(&self.filename))
    }

    /// The manifest on disk; None if there is none.
    pub fn read_manifest(&self) -> Result<Option<Manifest>, String> {
        let path = self.manifest_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => Manifest::parse(&text)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("Can't open the AOF manifest {}: {e}", path.display())),
        }
    }

    /// Writes the manifest atomically: temporary file, fsync, rename, fsync the folder.
    pub fn persist_manifest(&self, m: &Manifest) -> std::io::Result<()> {
        let tmp = self.path(&manifest::temp_manifest_name(&self.filename));
        let mut f = File::create(&tmp)?;
        f.write_all(m.render().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.manifest_path())?;
        sync_dir(&self.dir)
    }

    /// Bytes of the files the manifest names (INFO `aof_current_size`).
    pub fn size_of(&self, m: &Manifest) -> u64 {
        m.files_to_load()
            .iter()
            .filter_map(|f| std::fs::metadata(self.path(&f.name)).ok())
            .map(|md| md.len())
            .sum()
    }
}

/// At start no rewrite runs: a `temp-rewriteaof-bg-<pid>.aof` left by a process killed
/// during BGREWRITEAOF is never named by a manifest and would stay forever (a full copy
/// of the data each time), so it goes. A leftover temporary manifest goes too.
fn remove_stale_rewrite_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let stale = (name.starts_with("temp-rewriteaof-bg-") && name.ends_with(".aof"))
            || (name.starts_with("temp-") && name.ends_with(".manifest"));
        if stale && entry.file_type().is_ok_and(|t| t.is_file()) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::warn!("Removed {name}, left by a rewrite that did not finish"),
                Err(e) => tracing::warn!("Can't remove {name}, left by a rewrite that did not finish: {e}"),
            }
        }
    }
}

/// A Redis 6 (or older) single-file AOF, `dir/appendfilename`, and no manifest: moved
/// into the folder as its base, as Redis 7 upgrades it (`aofUpgradePrepare`).
fn upgrade_single_file(files: &Files) -> Result<Option<Manifest>, String> {
    let Some(parent) = files.dir.parent() else {
        return Ok(None);
    };
    let old = parent.join(&files.filename);
    if !old.is_file() {
        return Ok(None);
    }
    let m = Manifest {
        base: Some(manifest::FileInfo {
            name: files.filename.clone(),
            seq: 1,
            kind: manifest::Kind::Base,
        }),
        base_seq: 1,
        ..Manifest::default()
    };
    files
        .persist_manifest(&m)
        .map_err(|e| format!("Can't persist the AOF manifest: {e}"))?;
    std::fs::rename(&old, files.path(&files.filename)).map_err(|e| {
        format!(
            "Error trying to move the old AOF file {} into dir {}: {e}",
            old.display(),
            files.dir.display()
        )
    })?;
    tracing::info!(
        "Successfully migrated an old-style AOF file ({}) into the AOF directory ({}).",
        old.display(),
        files.dir.display()
    );
    Ok(Some(m))
}

/// fsync on a folder makes a rename or a new file in it durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The figures INFO `persistence` and /metrics show, in Redis's names.
#[derive(Default)]
pub struct AofStats {
    pub enabled: AtomicBool,
    pub rewrite_in_progress: AtomicBool,
    pub rewrite_scheduled: AtomicBool,
    /// Seconds the last rewrite took (-1: none yet).
    pub last_rewrite_secs: AtomicI64,
    /// Unix ms the running rewrite started at.
    pub rewrite_started_ms: AtomicU64,
    pub last_bgrewrite_ok: AtomicBool,
    pub rewrites: AtomicU64,
    pub rewrites_consecutive_failures: AtomicU64,
    /// False after a failed write or fsync, until one succeeds: writes get `-MISCONF`.
    pub last_write_ok: AtomicBool,
    pub last_write_errno: AtomicI32,
    pub write_errors: AtomicU64,
    pub current_size: AtomicU64,
    pub base_size: AtomicU64,
    pub delayed_fsync: AtomicU64,
    /// Loading the files at start.
    pub loading: AtomicBool,
    /// Unix seconds of the last successful rewrite (LASTSAVE).
    pub last_save_unix: AtomicU64,
    /// Offset (in the journal) known to be on disk.
    pub synced: AtomicU64,
}

impl AofStats {
    pub fn new() -> AofStats {
        let s = AofStats::default();
        s.last_rewrite_secs.store(-1, Relaxed);
        s.last_bgrewrite_ok.store(true, Relaxed);
        s.last_write_ok.store(true, Relaxed);
        s
    }

    /// While the disk fails: why (the OS's text), for the `-MISCONF` writes get.
    pub fn misconf(&self) -> Option<String> {
        if self.last_write_ok.load(Relaxed) {
            return None;
        }
        let e = std::io::Error::from_raw_os_error(self.last_write_errno.load(Relaxed));
        Some(strerror(&e))
    }
}

/// `strerror`'s text, without Rust's " (os error N)" suffix.
pub fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// What is shared by the writer and rewrite threads and the server.
pub struct Shared {
    pub files: Files,
    pub keyspace: Arc<parking_lot::Mutex<Keyspace>>,
    pub settings: Arc<Settings>,
    pub stats: Arc<AofStats>,
    pub manifest: Mutex<Manifest>,
    /// Set while turning the AOF on at run time: the files on disk still describe the
    /// data before, so the manifest is only written once the first rewrite is done.
    pub wait_rewrite: AtomicBool,
    /// Journal offset of the last rotation the writer carried out.
    pub rotated_at: AtomicU64,
    pub stop: AtomicBool,
    /// An fsync is wanted now, whatever the policy.
    pub sync_requested: AtomicBool,
    /// Held by whoever runs an fsync (the writer thread, or under `always` the first
    /// connection that waits for one).
    pub syncing: Mutex<()>,
    /// The file and what is on its way to it.
    pub state: Mutex<writer::State>,
    /// Journal offset written and synced as the policy asks; `appendfsync always`
    /// replies wait on it.
    pub durable: tokio::sync::watch::Sender<u64>,
}

/// A connection counted as executing a batch; uncounted by `done` or drop.
pub struct Executing {
    count: Option<Arc<std::sync::atomic::AtomicUsize>>,
}

impl Executing {
    pub fn done(&mut self) {
        if let Some(c) = self.count.take() {
            c.fetch_sub(1, Relaxed);
        }
    }
}

impl Drop for Executing {
    fn drop(&mut self) {
        self.done();
    }
}

/// The append-only file of a running server.
pub struct Aof {
    pub stats: Arc<AofStats>,
    keyspace: Arc<parking_lot::Mutex<Keyspace>>,
    settings: Arc<Settings>,
    durable: tokio::sync::watch::Sender<u64>,
    running: Mutex<Option<Running>>,
    /// Connections executing a batch of requests, counted under `appendfsync always`
    /// (group commit, see [`Aof::executing`]).
    executing: Arc<std::sync::atomic::AtomicUsize>,
    /// The running AOF's shared part and its writer thread (what a connection needs
    /// on every batch of replies, outside `running`'s lock).
    active: Mutex<Option<(Arc<Shared>, std::thread::Thread)>>,
    /// Commands a rewrite writes after the keyspace (the webhooks' definitions), read
    /// under the keyspace lock at the snapshot. Set once by a higher layer.
    rewrite_extra: std::sync::OnceLock<RewriteExtra>,
}

/// See [`Aof::set_rewrite_extra`].
pub type RewriteExtra = Box<dyn Fn() -> Vec<Vec<bytes::Bytes>> + Send + Sync>;

struct Running {
    shared: Arc<Shared>,
    writer: std::thread::JoinHandle<()>,
    rewrite: Option<std::thread::JoinHandle<()>>,
}

impl Aof {
    pub fn new(keyspace: Arc<parking_lot::Mutex<Keyspace>>, settings: Arc<Settings>) -> Aof {
        Aof {
            stats: Arc::new(AofStats::new()),
            keyspace,
            settings,
            durable: tokio::sync::watch::Sender::new(0),
            running: Mutex::new(None),
            active: Mutex::new(None),
            executing: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            rewrite_extra: std::sync::OnceLock::new(),
        }
    }

    /// What a rewrite writes into the new base after the keyspace: server state kept in
    /// the AOF as commands (WEBHOOK ADD). Called under the keyspace lock, at the same
    /// point as the snapshot, so the base and the new incr file split it as they split
    /// the data. Only the first call counts.
    pub fn set_rewrite_extra(&self, f: RewriteExtra) {
        let _ = self.rewrite_extra.set(f);
    }

    pub fn is_on(&self) -> bool {
        self.stats.enabled.load(Relaxed)
    }

    /// Waits until the journal is on disk up to `offset` (`appendfsync always`), or the
    /// AOF is turned off.
    pub async fn durable(&self, offset: u64) {
        self.wake();
        let mut rx = self.durable.subscribe();
        let stats = self.stats.clone();
        let _ = rx.wait_for(|&v| v >= offset || !stats.enabled.load(Relaxed)).await;
    }

    /// At start, with `appendonly yes`: replays the files (`exec` runs one command),
    /// then appends to the last incr file (a new one if needed). With no files yet, an
    /// empty base and incr are created, as Redis does.
    pub fn open_at_start(&self, exec: impl FnMut(Vec<bytes::Bytes>) -> Result<(), String>) -> Result<(), String> {
        let files = Files::from_settings(&self.settings);
        std::fs::create_dir_all(&files.dir)
            .map_err(|e| format!("Can't open or create append-only dir {}: {e}", files.dir.display()))?;
        remove_stale_rewrite_files(&files.dir);
        let found = match files.read_manifest()? {
            Some(m) => Some(m),
            None => upgrade_single_file(&files)?,
        };
        // A manifest naming no base and no incr (only comments) loads nothing; as Redis,
        // a fresh base is written.
        let manifest = match found.filter(|m| !m.is_empty()) {
            Some(m) => {
                self.stats.loading.store(true, Relaxed);
                let truncated_ok = self.settings.get("aof-load-truncated").as_deref() == Some("yes");
                let r = load::load(&files, &m, truncated_ok, exec);
                self.stats.loading.store(false, Relaxed);
                r?;
                m
            }
            None => {
                let mut m = Manifest::default();
                let base = m.new_base(&files.filename);
                File::create(files.path(&base))
                    .and_then(|f| f.sync_all())
                    .map_err(|e| format!("Can't create the AOF base file {base}: {e}"))?;
                tracing::info!("Creating AOF base file {base} on server start");
                m
            }
        };
        self.start(files, manifest, false)
    }

    /// Starts the writer on `manifest`'s last incr file (created when there is none).
    fn start(&self, files: Files, mut manifest: Manifest, wait_rewrite: bool) -> Result<(), String> {
        let (file, name) = match manifest.incrs.last() {
            Some(last) if !wait_rewrite => {
                let name = last.name.clone();
                let f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(files.path(&name))
                    .map_err(|e| format!("Can't open the append-only file {name}: {e}"))?;
                (f, name)
            }
            _ => {
                let name = manifest.new_incr(&files.filename);
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(files.path(&name))
                    .map_err(|e| format!("Can't create the append-only file {name}: {e}"))?;
                if !wait_rewrite {
                    tracing::info!("Creating AOF incr file {name} on server start");
                    files
                        .persist_manifest(&manifest)
                        .map_err(|e| format!("Can't persist the AOF manifest: {e}"))?;
                }
                (f, name)
            }
        };
        let size = files.size_of(&manifest);
        self.stats.current_size.store(size, Relaxed);
        if self.stats.base_size.load(Relaxed) == 0 {
            self.stats.base_size.store(size, Relaxed);
        }
        let start = self.keyspace.lock().journal.committed();
        let shared = Arc::new(Shared {
            files,
            keyspace: self.keyspace.clone(),
            settings: self.settings.clone(),
            stats: self.stats.clone(),
            manifest: Mutex::new(manifest),
            wait_rewrite: AtomicBool::new(wait_rewrite),
            rotated_at: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            sync_requested: AtomicBool::new(false),
            syncing: Mutex::new(()),
            state: Mutex::new(writer::State::new(file, name, start)),
            durable: self.durable.clone(),
        });
        self.durable.send_replace(start);
        self.stats.synced.store(start, Relaxed);
        let s = shared.clone();
        let writer = std::thread::Builder::new()
            .name("aof-writer".into())
            .spawn(move || writer::run(s))
            .map_err(|e| format!("Can't start the AOF writer: {e}"))?;
        *self.active.locked() = Some((shared.clone(), writer.thread().clone()));
        self.keyspace.lock().journal.start();
        self.stats.enabled.store(true, Relaxed);
        *self.running.locked() = Some(Running {
            shared,
            writer,
            rewrite: None,
        });
        Ok(())
    }

    /// CONFIG SET appendonly yes at run time: journaling starts now and a rewrite writes
    /// the data already held as the new base (Redis's `startAppendOnly`).
    pub fn turn_on(&self) -> Result<(), String> {
        if self.is_on() {
            return Ok(());
        }
        let files = Files::from_settings(&self.settings);
        std::fs::create_dir_all(&files.dir).map_err(|e| format!("Can't create {}: {e}", files.dir.display()))?;
        let mut manifest = files.read_manifest()?.unwrap_or_default();
        // Whatever the folder held describes other data: it goes once the rewrite is done.
        manifest.retire_all();
        self.start(files, manifest, true)?;
        self.rewrite()
    }

    /// CONFIG SET appendonly no, and shutdown: what is committed is written and synced,
    /// then the writer stops (a rewrite in progress is abandoned, as Redis kills it).
    pub fn turn_off(&self) {
        let Some(run) = self.running.locked().take() else {
            return;
        };
        run.shared.stop.store(true, Relaxed);
        *self.active.locked() = None;
        run.writer.thread().unpark();
        let _ = run.writer.join();
        if let Some(r) = run.rewrite {
            let _ = r.join();
        }
        self.keyspace.lock().journal.stop();
        self.stats.enabled.store(false, Relaxed);
        self.stats.rewrite_in_progress.store(false, Relaxed);
        // Wake anyone waiting for durability: the AOF is gone.
        self.durable.send_modify(|_| {});
    }

    /// BGREWRITEAOF: Err if one is already running (the caller schedules it).
    pub fn rewrite(&self) -> Result<(), String> {
        let mut running = self.running.locked();
        let Some(run) = running.as_mut() else {
            return Err("AOF is off".into());
        };
        if let Some(r) = &run.rewrite {
            if !r.is_finished() {
                return Err("Background append only file rewriting already in progress".into());
            }
        }
        if let Some(r) = run.rewrite.take() {
            let _ = r.join();
        }
        let shared = run.shared.clone();
        self.stats.rewrite_in_progress.store(true, Relaxed);
        self.stats.rewrite_scheduled.store(false, Relaxed);
        self.stats.rewrite_started_ms.store(crate::keyspace::now_ms(), Relaxed);
        // The snapshot and the switch to a new incr file happen at one point in the
        // keyspace's history: what came before is in the base, what follows in the incr.
        let (snapshot, rotation) = {
            let mut ks = self.keyspace.lock();
            let extra = self.rewrite_extra.get().map(|f| f()).unwrap_or_default();
            (rewrite::Snapshot::take(&ks, extra), ks.journal.rotate())
        };
        run.writer.thread().unpark();
        let handle = std::thread::Builder::new()
            .name("aof-rewrite".into())
            .spawn(move || rewrite::run(shared, snapshot, rotation))
            .map_err(|e| format!("Can't start the AOF rewrite: {e}"))?;
        run.rewrite = Some(handle);
        Ok(())
    }

    /// Counts this connection as executing a batch until [`Executing::done`] (or drop),
    /// when the AOF is on under `appendfsync always`; otherwise counts nothing.
    pub fn executing(&self) -> Executing {
        let on = self.fsync_always();
        if on {
            self.executing.fetch_add(1, Relaxed);
        }
        Executing {
            count: on.then(|| self.executing.clone()),
        }
    }

    /// The AOF is on under `appendfsync always`: replies wait for an fsync.
    pub fn fsync_always(&self) -> bool {
        self.is_on() && self.settings.fsync_always()
    }

    /// Other connections are executing a batch (this one is done with its own).
    pub fn others_executing(&self) -> bool {
        self.executing.load(Relaxed) > 0 && self.fsync_always()
    }

    /// Wakes the writer: there are bytes someone waits for.
    pub fn wake(&self) {
        if let Some((_, w)) = self.active.locked().as_ref() {
            w.unpark();
        }
    }

    /// Before a connection's replies: true if the journal is written up to `offset`,
    /// by this call or before (see [`writer::write_inline`]); false: wait with
    /// [`Aof::durable`].
    pub fn write_inline(&self, offset: u64) -> bool {
        // Already there (another connection wrote or synced it): no lock taken.
        if *self.durable.borrow() >= offset {
            return true;
        }
        let shared = match self.active.locked().as_ref() {
            Some((s, _)) => s.clone(),
            None => return true,
        };
        writer::write_inline(&shared, offset)
    }

    pub fn rewrite_running(&self) -> bool {
        self.stats.rewrite_in_progress.load(Relaxed)
    }

    /// The cron's part: a scheduled rewrite starts when none runs, and an automatic one
    /// when the files grew by `auto-aof-rewrite-percentage` over their size after the
    /// last rewrite and are over `auto-aof-rewrite-min-size`.
    pub fn cron(&self) {
        if !self.is_on() {
            return;
        }
        // What no client waits for (the cron's expiries) is written within a tick.
        self.wake();
        if self.rewrite_running() {
            return;
        }
        // A rewrite that must happen (turning the AOF on) and failed is tried again,
        // every 5 seconds while the disk refuses it.
        if self.stats.rewrite_scheduled.load(Relaxed) {
            let since = crate::keyspace::now_ms().saturating_sub(self.stats.rewrite_started_ms.load(Relaxed));
            if since >= 5000 {
                let _ = self.rewrite();
            }
            return;
        }
        let num = |k: &str| self.settings.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let (perc, min) = (num("auto-aof-rewrite-percentage"), num("auto-aof-rewrite-min-size"));
        let (cur, base) = (
            self.stats.current_size.load(Relaxed),
            self.stats.base_size.load(Relaxed).max(1),
        );
        if perc > 0 && cur > min && (cur * 100 / base).saturating_sub(100) >= perc {
            tracing::info!(
                "Starting automatic rewriting of AOF on {}% growth",
                (cur * 100 / base).saturating_sub(100)
            );
            let _ = self.rewrite();
        }
    }

    /// Everything committed so far is written and synced (DEBUG LOADAOF, tests).
    pub fn sync_now(&self) {
        let target = self.keyspace.lock().journal.committed();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.is_on() && self.stats.synced.load(Relaxed) < target && std::time::Instant::now() < deadline {
            if let Some(run) = self.running.locked().as_ref() {
                writer::request_sync(&run.shared);
                run.writer.thread().unpark();
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// The files of the running AOF (DEBUG LOADAOF).
    pub fn current_files(&self) -> Option<(Files, Manifest)> {
        let running = self.running.locked();
        let run = running.as_ref()?;
        let m = run.shared.manifest.locked().clone();
        Some((run.shared.files.clone(), m))
    }
}
