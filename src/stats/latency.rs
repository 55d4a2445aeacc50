//! The latency monitor (LATENCY LATEST/HISTORY/RESET): per event, the samples at or
//! above `latency-monitor-threshold`, at most one per second (the largest) and the last
//! 160 of them, as Redis's `latency.c` keeps them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use crate::sync::LockExt;

const HISTORY: usize = 160;

#[derive(Default, Clone)]
pub struct Series {
    /// (unix seconds, milliseconds), oldest first.
    pub samples: VecDeque<(u64, u64)>,
    /// The largest latency ever seen for the event.
    pub max: u64,
}

#[derive(Default)]
pub struct LatencyMonitor {
    events: Mutex<BTreeMap<&'static str, Series>>,
}

impl LatencyMonitor {
    /// Adds a sample of `ms` for `event` when the monitor is on and it reaches the
    /// threshold (Redis's `latencyAddSampleIfNeeded`).
    pub fn add_if_needed(&self, threshold_ms: u64, event: &'static str, ms: u64) {
        if threshold_ms == 0 || ms < threshold_ms {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut events = self.events.locked();
        let s = events.entry(event).or_default();
        s.max = s.max.max(ms);
        match s.samples.back_mut() {
            Some((t, v)) if *t == now => *v = (*v).max(ms),
            _ => {
                s.samples.push_back((now, ms));
                if s.samples.len() > HISTORY {
                    s.samples.pop_front();
                }
            }
        }
    }

    /// Every event with its series, by name.
    pub fn snapshot(&self) -> Vec<(&'static str, Series)> {
        self.events.locked().iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    pub fn history(&self, event: &[u8]) -> Option<Series> {
        let events = self.events.locked();
        events
            .iter()
            .find(|(k, _)| k.as_bytes() == event)
            .map(|(_, v)| v.clone())
    }

    /// Forgets the named events (all when `names` is empty); how many there were.
    pub fn reset(&self, names: &[impl AsRef<[u8]>]) -> usize {
        let mut events = self.events.locked();
        if names.is_empty() {
            let n = events.len();
            events.clear();
            return n;
        }
        let before = events.len();
        events.retain(|k, _| !names.iter().any(|n| n.as_ref() == k.as_bytes()));
        before - events.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_at_the_threshold_one_per_second() {
        let m = LatencyMonitor::default();
        m.add_if_needed(0, "command", 500); // monitor off
        m.add_if_needed(100, "command", 50); // below the threshold
        assert!(m.snapshot().is_empty());
        m.add_if_needed(100, "command", 200);
        m.add_if_needed(100, "command", 300);
        let s = m.history(b"command").unwrap();
        assert_eq!(s.samples.len(), 1);
        assert_eq!(s.samples[0].1, 300);
        assert_eq!(s.max, 300);
        assert_eq!(m.reset(&[b"nosuch"]), 0);
        assert_eq!(m.reset(&[b"command"]), 1);
    }
}
