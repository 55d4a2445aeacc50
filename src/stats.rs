//! Server-wide counters. Plain relaxed atomics: they are bumped on hot paths and read
//! only by INFO, CLIENT LIST and metrics, which need no cross-counter consistency.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default)]
pub struct Stats {
    pub connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub commands_processed: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub error_replies: AtomicU64,
    pub messages_published: AtomicU64,
    pub messages_delivered: AtomicU64,
    pub messages_dropped: AtomicU64,
    pub obuf_limit_disconnections: AtomicU64,
    pub qbuf_limit_disconnections: AtomicU64,
    pub auth_failures: AtomicU64,
    /// Clients closed by CLIENT KILL.
    pub killed_disconnections: AtomicU64,
    /// Clients closed by the idle `timeout`.
    pub timeout_disconnections: AtomicU64,
    /// Calls per command, by position in the command table (metrics).
    pub command_calls: crate::metrics::CommandCalls,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
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
            c.store(0, Relaxed);
        }
        self.command_calls.reset();
    }
}
