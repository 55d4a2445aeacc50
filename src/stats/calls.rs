//! Per-command counters: INFO `commandstats` (`cmdstat_<name>:calls=..,usec=..,
//! usec_per_call=..,rejected_calls=..,failed_calls=..`) and
//! `fanout_command_calls_total{command="..."}`.
//!
//! One slot of relaxed atomics per entry of the command table, indexed by its
//! [`Cmd`](crate::spec::Cmd): no hashing and no string comparison on the hot path. One
//! row of slots per stripe ([`super::striped`]), so two workers running PUBLISH never
//! write the same cache line; reads add the rows up.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use super::striped;
use crate::spec::{self, Cmd, Spec};

#[derive(Default)]
struct Slot {
    calls: AtomicU64,
    usec: AtomicU64,
    /// Refused before running (arity, auth, ACL, MULTI queue errors), as Redis counts
    /// `rejected_calls`.
    rejected: AtomicU64,
    /// Ran and replied with an error.
    failed: AtomicU64,
    /// Latency histogram (INFO `latencystats`), allocated at the first call.
    histogram: OnceLock<Histogram>,
}

/// Durations in microseconds, log-linear: exact below 16, then 8 buckets per power of
/// two (at most 12.5% wide), relaxed atomics only.
struct Histogram {
    buckets: Box<[AtomicU64]>,
}

impl Histogram {
    const BUCKETS: usize = 16 + 60 * 8;

    fn new() -> Histogram {
        Histogram {
            buckets: (0..Self::BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn index(v: u64) -> usize {
        if v < 16 {
            return v as usize;
        }
        let e = 63 - v.leading_zeros() as usize;
        let sub = ((v >> (e - 3)) & 7) as usize;
        (16 + (e - 4) * 8 + sub).min(Self::BUCKETS - 1)
    }

    /// The largest value of bucket `i`.
    fn upper(i: usize) -> u64 {
        if i < 16 {
            return i as u64;
        }
        let e = (i - 16) / 8 + 4;
        let sub = ((i - 16) % 8) as u64;
        ((8 + sub + 1) << (e - 3)) - 1
    }

    fn record(&self, usec: u64) {
        self.buckets[Self::index(usec)].fetch_add(1, Relaxed);
    }

    /// The value at each percentile (0-100) of a histogram's `counts`, as the top of the
    /// bucket that holds it.
    fn percentiles(counts: &[u64], ps: &[f64]) -> Option<Vec<u64>> {
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        Some(
            ps.iter()
                .map(|p| {
                    let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
                    let mut seen = 0;
                    for (i, c) in counts.iter().enumerate() {
                        seen += c;
                        if seen >= rank {
                            return Self::upper(i);
                        }
                    }
                    Self::upper(counts.len() - 1)
                })
                .collect(),
        )
    }
}

/// One command's figures at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallFigures {
    pub calls: u64,
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
}

/// One counter slot per command and subcommand of the command table, per stripe. Each
/// row is its own allocation, so rows share no cache line (but at their ends).
pub struct CommandCalls {
    rows: Box<[Box<[Slot]>]>,
}

impl Default for CommandCalls {
    fn default() -> Self {
        CommandCalls {
            rows: (0..striped::stripes())
                .map(|_| Cmd::ALL.iter().map(|_| Slot::default()).collect())
                .collect(),
        }
    }
}

impl CommandCalls {
    /// This thread's slot for `cmd`.
    fn mine(&self, cmd: Cmd) -> &Slot {
        &self.rows[striped::slot()][cmd as usize]
    }

    /// `cmd`'s slot in every row.
    fn all(&self, cmd: Cmd) -> impl Iterator<Item = &Slot> {
        self.rows.iter().map(move |r| &r[cmd as usize])
    }

    /// `cmd`'s latency histogram, all rows added up; `None` if it was never tracked.
    fn histogram(&self, cmd: Cmd) -> Option<Vec<u64>> {
        let mut sum: Option<Vec<u64>> = None;
        for h in self.all(cmd).filter_map(|s| s.histogram.get()) {
            let sum = sum.get_or_insert_with(|| vec![0; Histogram::BUCKETS]);
            sum.iter_mut()
                .zip(h.buckets.iter())
                .for_each(|(t, b)| *t += b.load(Relaxed));
        }
        sum
    }

    /// Counts one call of `spec` that took `usec` microseconds; `track` adds it to the
    /// command's latency histogram (`latency-tracking`).
    pub fn count(&self, spec: &Spec, usec: u64, track: bool) {
        let s = self.mine(spec.cmd);
        s.calls.fetch_add(1, Relaxed);
        s.usec.fetch_add(usec, Relaxed);
        if track {
            s.histogram.get_or_init(Histogram::new).record(usec);
        }
    }

    /// INFO `latencystats`: each tracked command's duration at the percentiles `ps`
    /// (0-100), in microseconds.
    pub fn percentiles(&self, ps: &[f64]) -> Vec<(&'static str, Vec<u64>)> {
        spec::all()
            .filter_map(|s| Some((s.name, Histogram::percentiles(&self.histogram(s.cmd)?, ps)?)))
            .collect()
    }

    /// LATENCY HISTOGRAM: a tracked command's calls and cumulative distribution, as
    /// Redis reports it: (upper bound in microseconds, calls at or under it) at each
    /// power of two of 1,024 ns, listed only where the count grows.
    pub fn distribution(&self, spec: &Spec) -> Option<(u64, Vec<(u64, u64)>)> {
        let counts = self.histogram(spec.cmd)?;
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let mut out = Vec::new();
        let (mut seen, mut next, mut prev) = (0u64, 0usize, 0u64);
        for k in 0..64u32 {
            let bound = (1024u128 << k) / 1000;
            let bound = bound.min(u64::MAX as u128) as u64;
            while next < counts.len() && Histogram::upper(next) <= bound {
                seen += counts[next];
                next += 1;
            }
            if seen > prev {
                out.push((bound, seen));
                prev = seen;
            }
            if seen == total {
                break;
            }
        }
        Some((total, out))
    }

    pub fn rejected(&self, spec: &Spec) {
        self.mine(spec.cmd).rejected.fetch_add(1, Relaxed);
    }

    pub fn failed(&self, spec: &Spec) {
        self.mine(spec.cmd).failed.fetch_add(1, Relaxed);
    }

    /// Every command's full name (`publish`, `client|list`) with its figures so far, in
    /// table order.
    pub fn snapshot(&self) -> impl Iterator<Item = (&'static str, CallFigures)> + '_ {
        spec::all().map(|s| {
            let mut f = CallFigures::default();
            for slot in self.all(s.cmd) {
                f.calls += slot.calls.load(Relaxed);
                f.usec += slot.usec.load(Relaxed);
                f.rejected += slot.rejected.load(Relaxed);
                f.failed += slot.failed.load(Relaxed);
            }
            (s.name, f)
        })
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for s in self.rows.iter().flat_map(|r| r.iter()) {
            for c in [&s.calls, &s.usec, &s.rejected, &s.failed] {
                c.store(0, Relaxed);
            }
            if let Some(h) = s.histogram.get() {
                h.buckets.iter().for_each(|b| b.store(0, Relaxed));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_name_and_resets() {
        let calls = CommandCalls::default();
        let publish = spec::lookup(b"PUBLISH").unwrap();
        let numsub = spec::lookup(b"pubsub").unwrap().sub(b"numsub").unwrap();
        calls.count(publish, 3, true);
        calls.count(publish, 4, true);
        calls.count(numsub, 1, true);
        calls.count(numsub, 1_000_000, false);
        calls.rejected(numsub);
        let get = |name: &str| calls.snapshot().find(|(n, _)| *n == name).unwrap().1;
        assert_eq!(get("publish").calls, 2);
        assert_eq!(get("publish").usec, 7);
        assert_eq!(get("pubsub|numsub").rejected, 1);
        assert_eq!(get("pubsub|numsub").calls, 2);
        assert_eq!(get("ping").calls, 0);
        assert_eq!(
            calls.percentiles(&[50.0, 99.0, 99.9]),
            vec![("publish", vec![3, 4, 4]), ("pubsub|numsub", vec![1, 1, 1])]
        );
        // Cumulative counts at 1, 2, 4... microseconds, only where they grow.
        assert_eq!(calls.distribution(publish), Some((2, vec![(4, 2)])));
        assert_eq!(calls.distribution(numsub), Some((1, vec![(1, 1)])));
        assert_eq!(calls.distribution(spec::lookup(b"ping").unwrap()), None);
        calls.reset();
        assert_eq!(get("publish"), CallFigures::default());
    }

    #[test]
    fn histogram_buckets_hold_their_values() {
        for v in [0u64, 1, 15, 16, 17, 100, 1000, 123_456, u32::MAX as u64] {
            let i = Histogram::index(v);
            assert!(Histogram::upper(i) >= v, "{v}");
            assert!(i == 0 || Histogram::upper(i - 1) < v, "{v}");
        }
    }
}
