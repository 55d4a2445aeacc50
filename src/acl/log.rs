//! ACL LOG: the latest refused commands, channels and logins, newest first.
//!
//! As in Redis, an event like one of the 10 newest entries (same reason, object and user,
//! within a minute of it) bumps that entry's count and moves it to the front instead of
//! adding a new one, so a client retrying in a loop does not flush the log.

use crate::sync::LockExt;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::rules::Denial;

/// Events further apart than this are never merged.
const GROUPING_MAX_MS: u64 = 60_000;
/// How many of the newest entries are looked at for a merge.
const GROUPING_SCAN: usize = 10;

/// Where the refused command was: at the top level, or inside a transaction (queued
/// after MULTI, or checked again at EXEC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    Toplevel,
    Multi,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub count: u64,
    pub reason: Denial,
    pub context: Context,
    /// The command's full name, the channel, or for logins the command as typed.
    pub object: Bytes,
    pub username: Bytes,
    /// When it last happened, in ms since the epoch.
    pub ctime_ms: u64,
    /// The client's CLIENT LIST line, from the latest occurrence.
    pub client_info: Vec<u8>,
}

impl Entry {
    /// `age-seconds`.
    pub fn age_seconds(&self, now_ms: u64) -> f64 {
        now_ms.saturating_sub(self.ctime_ms) as f64 / 1000.0
    }

    /// `context`, as Redis names it (fanout has no scripts or modules).
    pub fn context(&self) -> &'static str {
        match self.context {
            Context::Toplevel => "toplevel",
            Context::Multi => "multi",
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Default)]
pub struct AclLog {
    entries: Mutex<VecDeque<Entry>>,
}

impl AclLog {
    pub fn add(
        &self,
        (reason, context): (Denial, Context),
        object: Bytes,
        username: Bytes,
        client_info: Vec<u8>,
        max_len: usize,
    ) {
        let now = now_ms();
        let mut entries = self.entries.locked();
        let found = entries.iter().take(GROUPING_SCAN).position(|e| {
            e.reason == reason
                && e.context == context
                && e.ctime_ms.abs_diff(now) <= GROUPING_MAX_MS
                && e.object == object
                && e.username == username
        });
        match found {
            Some(i) => {
                let mut e = entries.remove(i).expect("found above");
                e.count += 1;
                e.ctime_ms = now;
                e.client_info = client_info;
                entries.push_front(e);
            }
            None => {
                entries.push_front(Entry {
                    count: 1,
                    reason,
                    context,
                    object,
                    username,
                    ctime_ms: now,
                    client_info,
                });
                entries.truncate(max_len);
            }
        }
    }

    pub fn reset(&self) {
        self.entries.locked().clear();
    }

    /// The `count` newest entries.
    pub fn newest(&self, count: usize) -> Vec<Entry> {
        self.entries.locked().iter().take(count).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.entries.locked().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_events_are_merged_and_moved_to_the_front() {
        let log = AclLog::default();
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        log.add((Denial::Command, Context::Toplevel), b("get"), b("u"), vec![], 128);
        log.add((Denial::Channel, Context::Toplevel), b("ch"), b("u"), vec![], 128);
        log.add(
            (Denial::Command, Context::Toplevel),
            b("get"),
            b("u"),
            b"last".to_vec(),
            128,
        );
        // The same refusal inside a transaction is an entry of its own, as in Redis.
        log.add((Denial::Command, Context::Multi), b("get"), b("u"), vec![], 128);
        let e = log.newest(10);
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].count, e[0].context()), (1, "multi"));
        assert_eq!(
            (e[1].count, &e[1].object[..], &e[1].client_info[..], e[1].context()),
            (2, &b"get"[..], &b"last"[..], "toplevel")
        );
        assert_eq!(e[2].reason, Denial::Channel);
        for i in 0..10 {
            log.add((Denial::Key, Context::Toplevel), b(&format!("k{i}")), b("u"), vec![], 5);
        }
        assert_eq!(log.len(), 5);
        log.reset();
        assert!(log.is_empty());
    }
}
