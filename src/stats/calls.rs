//! Per-command counters: INFO `commandstats` (`cmdstat_<name>:calls=..,usec=..,
//! usec_per_call=..,rejected_calls=..,failed_calls=..`) and
//! `fanout_command_calls_total{command="..."}`.
//!
//! One slot of relaxed atomics per entry of the command table, indexed by its
//! [`Cmd`](crate::spec::Cmd): no hashing and no string comparison on the hot path.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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
}

/// One command's figures at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallFigures {
    pub calls: u64,
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
}

/// One counter slot per command and subcommand of the command table.
pub struct CommandCalls {
    slots: Box<[Slot]>,
}

impl Default for CommandCalls {
    fn default() -> Self {
        CommandCalls {
            slots: Cmd::ALL.iter().map(|_| Slot::default()).collect(),
        }
    }
}

impl CommandCalls {
    /// Counts one call of `spec` that took `usec` microseconds.
    pub fn count(&self, spec: &Spec, usec: u64) {
        let s = &self.slots[spec.cmd as usize];
        s.calls.fetch_add(1, Relaxed);
        s.usec.fetch_add(usec, Relaxed);
    }

    pub fn rejected(&self, spec: &Spec) {
        self.slots[spec.cmd as usize].rejected.fetch_add(1, Relaxed);
    }

    pub fn failed(&self, spec: &Spec) {
        self.slots[spec.cmd as usize].failed.fetch_add(1, Relaxed);
    }

    /// Every command's full name (`publish`, `client|list`) with its figures so far, in
    /// table order.
    pub fn snapshot(&self) -> impl Iterator<Item = (&'static str, CallFigures)> + '_ {
        spec::all().map(|s| {
            let slot = &self.slots[s.cmd as usize];
            let f = CallFigures {
                calls: slot.calls.load(Relaxed),
                usec: slot.usec.load(Relaxed),
                rejected: slot.rejected.load(Relaxed),
                failed: slot.failed.load(Relaxed),
            };
            (s.name, f)
        })
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for s in self.slots.iter() {
            for c in [&s.calls, &s.usec, &s.rejected, &s.failed] {
                c.store(0, Relaxed);
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
        calls.count(publish, 3);
        calls.count(publish, 4);
        calls.count(numsub, 1);
        calls.rejected(numsub);
        let get = |name: &str| calls.snapshot().find(|(n, _)| *n == name).unwrap().1;
        assert_eq!(get("publish").calls, 2);
        assert_eq!(get("publish").usec, 7);
        assert_eq!(get("pubsub|numsub").rejected, 1);
        assert_eq!(get("ping").calls, 0);
        calls.reset();
        assert_eq!(get("publish"), CallFigures::default());
    }
}
