//! Replaying the files a manifest names, base first, as Redis 7.0's
//! `loadAppendOnlyFiles` does: each command goes to `exec` (the command layer runs it as
//! the AOF client); a MULTI's commands run only once its EXEC is read.
//!
//! What can be wrong, and what happens:
//! * the last file ends inside a command (or inside a MULTI): with `aof-load-truncated
//!   yes` the partial tail is dropped (the file is cut there, so appends continue on a
//!   clean boundary) with a warning; otherwise start-up stops;
//! * any other file ends early, or a byte is not what the format needs: start-up stops,
//!   naming the file, the offset and what was expected;
//! * a command fanout does not have (a Redis AOF holding strings or lists): start-up
//!   stops, naming it.

use std::fs::File;
use std::io::BufReader;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::manifest::{Kind, Manifest};
use super::reader::{CommandReader, ReadError};
use super::Files;

/// Replays every file of `m`. `exec` runs one command; its error stops the load.
pub fn load(
    files: &Files,
    m: &Manifest,
    truncated_ok: bool,
    mut exec: impl FnMut(Vec<Bytes>) -> Result<(), String>,
) -> Result<(), String> {
    let list = m.files_to_load();
    let total: u64 = list
        .iter()
        .filter_map(|f| std::fs::metadata(files.path(&f.name)).ok())
        .map(|md| md.len())
        .sum();
    let started = Instant::now();
    let mut last_log = Instant::now();
    let mut commands = 0u64;
    let mut done_bytes = 0u64;
    for (i, f) in list.iter().enumerate() {
        let last = i + 1 == list.len();
        let path = files.path(&f.name);
        if matches!(f.kind, Kind::Base) && f.is_rdb_name() {
            return Err(format!(
                "The AOF base file {} is an RDB file: fanout has no RDB support; rewrite the AOF with `aof-use-rdb-preamble no` on Redis first",
                f.name
            ));
        }
        let file = File::open(&path).map_err(|e| format!("Can't open the append-only file {}: {e}", f.name))?;
        let size = file.metadata().map(|md| md.len()).unwrap_or(0);
        let mut reader = CommandReader::new(BufReader::with_capacity(1 << 20, file));
        // Commands of an open MULTI, and where it started.
        let mut multi: Option<(Vec<Vec<Bytes>>, u64)> = None;
        let cut = loop {
            let (args, at) = match reader.next() {
                Ok(Some(c)) => c,
                Ok(None) => break multi.as_ref().map(|(_, at)| *at),
                Err(ReadError::Truncated { offset }) => break Some(multi.as_ref().map_or(offset, |(_, at)| *at)),
                Err(ReadError::Corrupt { offset, expected }) => {
                    return Err(format!(
                        "Bad file format reading the append only file {}: at offset {offset}, expected {expected}. Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>",
                        f.name
                    ))
                }
                Err(ReadError::Io(e)) => return Err(format!("Error reading the append only file {}: {e}", f.name)),
            };
            commands += 1;
            let name = &args[0];
            if name.eq_ignore_ascii_case(b"MULTI") {
                multi = Some((Vec::new(), at));
                continue;
            }
            if name.eq_ignore_ascii_case(b"EXEC") {
                if let Some((queued, _)) = multi.take() {
                    for q in queued {
                        exec(q)
                            .map_err(|e| format!("{e} (append only file {}, transaction at offset {at})", f.name))?;
                    }
                }
                continue;
            }
            if let Some((queued, _)) = &mut multi {
                queued.push(args);
                continue;
            }
            exec(args).map_err(|e| format!("{e} (append only file {}, offset {at})", f.name))?;
            if last_log.elapsed() >= Duration::from_secs(1) {
                last_log = Instant::now();
                tracing::info!(
                    "Loading the AOF: {} of {} MB, {commands} commands",
                    (done_bytes + reader.offset()) >> 20,
                    total >> 20
                );
            }
        };
        if let Some(at) = cut {
            if !last {
                return Err(format!(
                    "Unexpected end of file reading the append only file {} at offset {at} (it is not the last file, so it cannot be a cut write)",
                    f.name
                ));
            }
            if !truncated_ok {
                return Err(format!(
                    "Unexpected end of file reading the append only file {} at offset {at}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server.",
                    f.name
                ));
            }
            tracing::warn!("!!! Warning: short read while loading the AOF file {}!!!", f.name);
            tracing::warn!("!!! Truncating the AOF {} at offset {at} (of {size} bytes) !!!", f.name);
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| format!("Can't open {} to truncate it: {e}", f.name))?;
            file.set_len(at)
                .and_then(|_| file.sync_all())
                .map_err(|e| format!("Error truncating the AOF file {}: {e}", f.name))?;
            tracing::warn!("AOF {} loaded anyway because aof-load-truncated is enabled", f.name);
        }
        done_bytes += size;
    }
    if commands > 0 {
        tracing::info!(
            "DB loaded from append only files: {:.3} seconds, {commands} commands",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
