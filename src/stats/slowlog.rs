//! SLOWLOG: the last `slowlog-max-len` commands that took at least
//! `slowlog-log-slower-than` microseconds, with Redis's entry shape and argument cuts.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;

use crate::sync::LockExt;

/// Redis keeps at most this many arguments of a command, the last replaced by a note.
const MAX_ARGC: usize = 32;
/// And this many bytes of each argument.
const MAX_STRING: usize = 128;

pub struct Entry {
    pub id: u64,
    /// Unix seconds when the command ran.
    pub time: u64,
    pub usec: u64,
    pub args: Vec<Bytes>,
    pub peer: String,
    pub name: Bytes,
}

#[derive(Default)]
pub struct SlowLog {
    inner: Mutex<(VecDeque<Entry>, u64)>,
}

impl SlowLog {
    /// Records a command that took `usec` if the settings say it is slow.
    pub fn record(&self, slower_than: i64, max_len: usize, usec: u64, args: &[Bytes], peer: &str, name: Bytes) {
        if slower_than < 0 || usec < slower_than as u64 {
            return;
        }
        let shown = args.len().min(MAX_ARGC);
        let mut kept: Vec<Bytes> = Vec::with_capacity(shown);
        for (i, a) in args.iter().take(shown).enumerate() {
            if i == MAX_ARGC - 1 && args.len() > MAX_ARGC {
                kept.push(Bytes::from(format!(
                    "... ({} more arguments)",
                    args.len() - MAX_ARGC + 1
                )));
            } else if a.len() > MAX_STRING {
                let mut cut = a[..MAX_STRING].to_vec();
                cut.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes());
                kept.push(Bytes::from(cut));
            } else {
                // A copy, not a slice: a slice would keep the request's whole read
                // buffer alive for as long as the entry stays in the log.
                kept.push(Bytes::copy_from_slice(a));
            }
        }
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut g = self.inner.locked();
        let id = g.1;
        g.1 += 1;
        g.0.push_front(Entry {
            id,
            time,
            usec,
            args: kept,
            peer: peer.to_string(),
            name,
        });
        g.0.truncate(max_len);
    }

    /// The newest `count` entries (all for `None`), newest first.
    pub fn get(&self, count: Option<usize>, f: impl FnMut(&Entry)) {
        let g = self.inner.locked();
        g.0.iter().take(count.unwrap_or(usize::MAX)).for_each(f);
    }

    pub fn len(&self) -> usize {
        self.inner.locked().0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reset(&self) {
        self.inner.locked().0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_cuts_long_commands() {
        let log = SlowLog::default();
        let args: Vec<Bytes> = (0..40).map(|i| Bytes::from(format!("a{i}"))).collect();
        log.record(0, 2, 5, &args, "p", Bytes::new());
        log.record(0, 2, 5, &[Bytes::from(vec![b'x'; 200])], "p", Bytes::new());
        log.record(10, 2, 5, &args, "p", Bytes::new()); // faster than the threshold
        log.record(0, 2, 5, &args[..1], "p", Bytes::new());
        assert_eq!(log.len(), 2);
        let mut seen = Vec::new();
        log.get(None, |e| seen.push((e.id, e.args.clone())));
        assert_eq!(seen[0].0, 2);
        assert_eq!(&seen[1].1[0][128..], b"... (72 more bytes)");
        log.reset();
        log.record(0, 5, 5, &args, "p", Bytes::new());
        log.get(Some(1), |e| {
            assert_eq!(e.args.len(), 32);
            assert_eq!(&e.args[31][..], b"... (9 more arguments)");
        });
    }
}
