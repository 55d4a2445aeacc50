//! Server-wide counters. Striped relaxed atomics ([`striped::Counter`]): they are bumped
//! on hot paths by every worker and read only by INFO, CLIENT LIST and metrics, which
//! need no cross-counter consistency.

pub mod calls;
pub mod latency;
pub mod slowlog;
pub mod striped;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub use calls::CommandCalls;
pub use striped::{Count, Counter};

/// The memory allocator, as INFO's `mem_allocator` names it: set by the `fanout` binary,
/// which links jemalloc; anything else embedding the library uses the system's.
pub static ALLOCATOR: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

#[derive(Default)]
pub struct Stats {
    pub connections_received: Counter,
    pub rejected_connections: Counter,
    pub commands_processed: Counter,
    pub net_input_bytes: Counter,
    pub net_output_bytes: Counter,
    pub error_replies: Counter,
    pub messages_published: Counter,
    pub messages_delivered: Counter,
    pub messages_dropped: Counter,
    pub obuf_limit_disconnections: Counter,
    pub qbuf_limit_disconnections: Counter,
    pub auth_failures: Counter,
    /// Clients closed by CLIENT KILL.
    pub killed_disconnections: Counter,
    /// Clients closed by the idle `timeout`.
    pub timeout_disconnections: Counter,
    pub instantaneous: Instantaneous,
    /// Calls per command, by position in the command table (metrics).
    pub command_calls: CommandCalls,
    /// Error replies by their first word (INFO `errorstats`).
    pub errors: ErrorCounts,
}

impl Stats {
    pub fn add(counter: &impl Count, n: u64) {
        counter.add(n);
    }

    pub fn get(counter: &impl Count) -> u64 {
        counter.get()
    }

    /// CONFIG RESETSTAT: zero what Redis zeroes (everything but gauges).
    pub fn reset(&self) {
        for c in [
            &self.connections_received,
            &self.rejected_connections,
            &self.commands_processed,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.error_replies,
            &self.messages_published,
            &self.messages_delivered,
            &self.messages_dropped,
            &self.obuf_limit_disconnections,
            &self.qbuf_limit_disconnections,
            &self.auth_failures,
            &self.killed_disconnections,
            &self.timeout_disconnections,
        ] {
            c.reset();
        }
        self.command_calls.reset();
        self.errors.reset();
    }
}

/// INFO's `instantaneous_*` figures: rates over the last 16 samples (1.6 s at the cron's
/// 100 ms), as Redis computes them, published as plain atomics.
#[derive(Default)]
pub struct Instantaneous {
    pub ops_per_sec: AtomicU64,
    /// Kilobytes per second, times 100 (INFO prints two decimals).
    pub input_kbps_x100: AtomicU64,
    pub output_kbps_x100: AtomicU64,
}

/// Kept by the periodic task; feeds [`Instantaneous`].
#[derive(Default)]
pub struct RateSampler {
    /// (when, commands, bytes in, bytes out)
    samples: std::collections::VecDeque<(std::time::Instant, u64, u64, u64)>,
}

impl RateSampler {
    const SAMPLES: usize = 16;

    pub fn sample(&mut self, stats: &Stats) {
        let now = (
            std::time::Instant::now(),
            Stats::get(&stats.commands_processed),
            Stats::get(&stats.net_input_bytes),
            Stats::get(&stats.net_output_bytes),
        );
        self.samples.push_back(now);
        if self.samples.len() > Self::SAMPLES {
            self.samples.pop_front();
        }
        let first = self.samples[0];
        let secs = now.0.duration_since(first.0).as_secs_f64();
        if secs <= 0.0 {
            return;
        }
        // A CONFIG RESETSTAT in the window makes a counter go backwards: report 0.
        let rate = |a: u64, b: u64| b.saturating_sub(a) as f64 / secs;
        let inst = &stats.instantaneous;
        inst.ops_per_sec.store(rate(first.1, now.1).round() as u64, Relaxed);
        inst.input_kbps_x100
            .store((rate(first.2, now.2) / 1024.0 * 100.0).round() as u64, Relaxed);
        inst.output_kbps_x100
            .store((rate(first.3, now.3) / 1024.0 * 100.0).round() as u64, Relaxed);
    }
}

/// Error replies counted by their code (the first word: `ERR`, `NOPERM`, `WRONGTYPE`),
/// for INFO `errorstats`. Like Redis, at most 128 codes are tracked; past that, new codes
/// are not added (a client sending made-up error codes cannot grow the table).
#[derive(Default)]
pub struct ErrorCounts {
    codes: std::sync::Mutex<std::collections::BTreeMap<Vec<u8>, u64>>,
}

impl ErrorCounts {
    const MAX_CODES: usize = 128;

    pub fn count(&self, code: &[u8]) {
        use crate::sync::LockExt;
        let mut codes = self.codes.locked();
        if let Some(n) = codes.get_mut(code) {
            *n += 1;
        } else if codes.len() < Self::MAX_CODES {
            codes.insert(code.to_vec(), 1);
        }
    }

    pub fn snapshot(&self) -> Vec<(Vec<u8>, u64)> {
        use crate::sync::LockExt;
        self.codes.locked().iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    pub fn reset(&self) {
        use crate::sync::LockExt;
        self.codes.locked().clear();
    }
}

/// Resident set size and CPU times of this process, from /proc (Linux).
pub fn process_usage() -> (u64, f64, f64) {
    let page = 4096;
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .map_or(0, |pages| pages * page);
    let (user, sys) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((
                f.get(11)?.parse::<f64>().ok()? / 100.0,
                f.get(12)?.parse::<f64>().ok()? / 100.0,
            ))
        })
        .unwrap_or((0.0, 0.0));
    (rss, user, sys)
}

/// One MEMORY STATS figure: bytes, or a ratio or percentage (a float in Redis, sent as a
/// double).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Figure {
    Bytes(u64),
    Ratio(f32),
}
