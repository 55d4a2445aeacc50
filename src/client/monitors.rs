//! MONITOR: the clients that receive a line for every command others run.
//!
//! Command execution checks [`Monitors::any`] (one relaxed atomic load) and formats
//! nothing when nobody monitors. A line is formatted once and the same `Bytes` queued in
//! every monitor's outbox, under its normal output-buffer limit.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::table::ClientHandle;
use crate::config::Settings;
use crate::sync::LockExt;

#[derive(Default)]
pub struct Monitors {
    count: AtomicUsize,
    list: Mutex<Vec<Arc<ClientHandle>>>,
}

impl Monitors {
    pub fn any(&self) -> bool {
        self.count.load(Relaxed) > 0
    }

    pub fn add(&self, c: Arc<ClientHandle>) {
        let mut list = self.list.locked();
        if !list.iter().any(|x| x.id() == c.id()) {
            list.push(c);
            self.count.store(list.len(), Relaxed);
        }
    }

    pub fn remove(&self, id: u64) {
        let mut list = self.list.locked();
        list.retain(|c| c.id() != id);
        self.count.store(list.len(), Relaxed);
    }

    pub fn len(&self) -> usize {
        self.count.load(Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `line` for every monitor but `from` (a monitor sees its own commands too,
    /// as in Redis, but after their replies: its own session writes that line).
    pub fn feed(&self, from: u64, line: &Bytes, settings: &Settings) {
        let list = self.list.locked().clone();
        for m in list {
            if m.id() != from {
                m.outbox.push_reply(line.clone(), settings);
            }
        }
    }
}

/// The monitor line for a command, as Redis's `replicationFeedMonitors` writes it:
/// `+<seconds>.<micros> [<db> <addr>] "arg" "arg"...` with each argument escaped as
/// `sdscatrepr` does.
pub fn line(unix_micros: u128, db: usize, addr: &str, args: &[impl AsRef<[u8]>]) -> Bytes {
    let mut out = format!(
        "+{}.{:06} [{db} {addr}]",
        unix_micros / 1_000_000,
        unix_micros % 1_000_000
    )
    .into_bytes();
    for a in args {
        out.push(b' ');
        repr(&mut out, a.as_ref());
    }
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// Redis's `sdscatrepr`: a quoted string with `\\`, `\"`, `\n`, `\r`, `\t`, `\a`, `\b`
/// escaped, other printable bytes as they are and the rest as `\xhh`.
pub fn repr(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_escape_as_redis() {
        let l = line(
            1_700_000_000_000_042,
            0,
            "127.0.0.1:5000",
            &[&b"PUBLISH"[..], b"a \"b\"\n", b"\xff\x01\\"],
        );
        assert_eq!(
            &l[..],
            b"+1700000000.000042 [0 127.0.0.1:5000] \"PUBLISH\" \"a \\\"b\\\"\\n\" \"\\xff\\x01\\\\\"\r\n"
        );
    }
}
