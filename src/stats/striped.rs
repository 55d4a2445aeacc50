//! Counters that every worker adds to: one cache line per thread slot, summed when read.
//!
//! A plain atomic that both workers bump on every PUBLISH bounces its cache line between
//! the cores on each add: with the per-command counters and the message totals, five
//! such lines per publish. Striped, the pipelined rows of BENCHMARKS.md spent 3-6% less
//! CPU per delivery. Reads (INFO, metrics) are rare and add up the slots.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;

/// One cache line (two, for the adjacent-line prefetcher) per slot.
#[repr(align(128))]
#[derive(Default)]
struct Padded<T>(T);

/// How many slots a striped value has: one per core, at most 64; threads beyond that
/// share slots, which stays correct and only costs contention again.
pub fn stripes() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 64))
}

/// This thread's slot: threads take slots in the order they first count something.
pub fn slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Relaxed) % stripes();
    }
    SLOT.try_with(|s| *s).unwrap_or(0)
}

/// A sum that many threads add to.
pub struct Counter {
    slots: Box<[Padded<AtomicU64>]>,
}

impl Default for Counter {
    fn default() -> Self {
        Counter {
            slots: (0..stripes()).map(|_| Padded::default()).collect(),
        }
    }
}

/// A counter: a [`Counter`] where every worker adds, a plain atomic where one task does.
pub trait Count {
    fn add(&self, n: u64);
    fn get(&self) -> u64;
}

impl Count for AtomicU64 {
    fn add(&self, n: u64) {
        self.fetch_add(n, Relaxed);
    }

    fn get(&self) -> u64 {
        self.load(Relaxed)
    }
}

impl Count for Counter {
    fn add(&self, n: u64) {
        self.slots[slot()].0.fetch_add(n, Relaxed);
    }

    fn get(&self) -> u64 {
        self.slots.iter().map(|s| s.0.load(Relaxed)).fold(0, u64::wrapping_add)
    }
}

impl Counter {
    pub fn reset(&self) {
        self.slots.iter().for_each(|s| s.0.store(0, Relaxed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_what_every_thread_added() {
        let c = std::sync::Arc::new(Counter::default());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| c.add(2)))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(c.get(), 16_000);
        c.reset();
        assert_eq!(c.get(), 0);
    }
}
