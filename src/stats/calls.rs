//! Calls per command, for `fanout_command_calls_total{command="..."}`.
//!
//! One relaxed atomic per entry of the command table, found from the `&'static Spec`
//! that dispatch already holds by pointer arithmetic: the table is a handful of static
//! slices (the top-level commands and each container's subcommands), so finding the
//! slot is at most a few range checks, with no hashing and no string comparison.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use crate::spec::{Spec, COMMANDS};

/// The command table as contiguous slices: (first address, entries, first slot).
struct Layout {
    ranges: Vec<(usize, usize, usize)>,
    names: Vec<&'static str>,
}

fn layout() -> &'static Layout {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let mut ranges = Vec::new();
        let mut names = Vec::new();
        let mut add = |slice: &'static [Spec]| {
            ranges.push((slice.as_ptr() as usize, slice.len(), names.len()));
            names.extend(slice.iter().map(|s| s.name));
        };
        add(COMMANDS);
        for c in COMMANDS.iter().filter(|c| !c.subcommands.is_empty()) {
            add(c.subcommands);
        }
        Layout { ranges, names }
    })
}

/// The slot of a command or subcommand of the command table.
fn slot(spec: &'static Spec) -> Option<usize> {
    let addr = spec as *const Spec as usize;
    let size = std::mem::size_of::<Spec>();
    layout()
        .ranges
        .iter()
        .find(|&&(start, len, _)| addr >= start && addr < start + len * size)
        .map(|&(start, _, first)| first + (addr - start) / size)
}

/// One counter per command and subcommand of the command table.
pub struct CommandCalls {
    counts: Box<[AtomicU64]>,
}

impl Default for CommandCalls {
    fn default() -> Self {
        CommandCalls {
            counts: (0..layout().names.len()).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl CommandCalls {
    /// Counts one call of `spec` (a no-op for a spec that is not in the table).
    pub fn count(&self, spec: &'static Spec) {
        if let Some(c) = slot(spec).and_then(|i| self.counts.get(i)) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// Every command's full name (`publish`, `client|list`) with its calls so far, in
    /// table order.
    pub fn snapshot(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        layout()
            .names
            .iter()
            .zip(self.counts.iter())
            .map(|(n, c)| (*n, c.load(Relaxed)))
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for c in self.counts.iter() {
            c.store(0, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec as table;

    #[test]
    fn every_spec_has_its_own_slot() {
        let calls = CommandCalls::default();
        let all: Vec<&'static Spec> = table::all().collect();
        assert_eq!(all.len(), calls.snapshot().count());
        let mut seen = std::collections::HashSet::new();
        for spec in &all {
            let i = slot(spec).unwrap_or_else(|| panic!("{} has no slot", spec.name));
            assert!(seen.insert(i), "{} shares a slot", spec.name);
            assert_eq!(layout().names[i], spec.name);
        }
    }

    #[test]
    fn counts_by_name_and_resets() {
        let calls = CommandCalls::default();
        let publish = table::lookup(b"PUBLISH").unwrap();
        let numsub = table::lookup(b"pubsub").unwrap().sub(b"numsub").unwrap();
        calls.count(publish);
        calls.count(publish);
        calls.count(numsub);
        let get = |name: &str| calls.snapshot().find(|(n, _)| *n == name).unwrap().1;
        assert_eq!(get("publish"), 2);
        assert_eq!(get("pubsub|numsub"), 1);
        assert_eq!(get("ping"), 0);
        calls.reset();
        assert_eq!(get("publish"), 0);
    }
}
