//! The write thread: with a single-threaded event loop, the socket writes that follow an
//! unpipelined publish to many connections go to a second thread, so that the loop
//! reads and runs the next publish meanwhile (Redis's io-threads split its work the
//! same way).
//!
//! Why not the second worker of a multi-threaded runtime, on a machine with two cores:
//! that worker is woken for every few tasks queued (thousands of times a second), lands
//! on the core the clients and the network stack need, and splits writes that one
//! thread would have sent together. The write thread is woken only for a publish to
//! [`OFFLOAD_MIN`] connections or more, where one thread writing them all would hold
//! up the next publish. Measured in BENCHMARKS.md (issue 15, third rerun).

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use super::Outbox;
use crate::stats::Stats;
use crate::sync::LockExt;

/// An unpipelined publish reaching at least this many connections is written by the
/// write thread (fewer: by the publisher's thread at once, see `Registry::end_batch`).
pub const OFFLOAD_MIN: usize = 64;
/// Lists of connections waiting for the write thread, at most; past it the event loop's
/// own writer tasks take them, as they would with no write thread.
const QUEUED_MAX: usize = 16;

pub struct WriteThread {
    tx: SyncSender<Vec<Arc<Outbox>>>,
    /// Emptied lists coming back, so a publish's list is not allocated anew each time.
    spare: Mutex<Receiver<Vec<Arc<Outbox>>>>,
}

impl WriteThread {
    /// Starts the thread; it ends when the `WriteThread` is dropped.
    pub fn start(stats: Arc<Stats>) -> std::io::Result<WriteThread> {
        let (tx, rx) = sync_channel::<Vec<Arc<Outbox>>>(QUEUED_MAX);
        let (back_tx, back_rx) = sync_channel::<Vec<Arc<Outbox>>>(QUEUED_MAX);
        std::thread::Builder::new()
            .name("fanout-writes".into())
            .spawn(move || {
                while let Ok(mut list) = rx.recv() {
                    let (mut written, mut writes) = (0, 0);
                    // Last first: the event loop queues the next publish's messages in list
                    // order, and meeting it head-on rather than following it means the two
                    // threads want the same connection's lock once per pass, not every time.
                    while let Some(o) = list.pop() {
                        let n = o.write_or_wake();
                        written += n;
                        writes += u64::from(n > 0);
                    }
                    Stats::add(&stats.net_output_bytes, written as u64);
                    Stats::add(&stats.io_threaded_writes, writes);
                    let _ = back_tx.try_send(list);
                }
            })?;
        Ok(WriteThread {
            tx,
            spare: Mutex::new(back_rx),
        })
    }

    /// Hands the connections in `wakes` to the write thread, leaving `wakes` empty.
    /// Returns false, with `wakes` as it was, when the thread is that far behind: the
    /// caller then wakes their writer tasks itself.
    pub fn offer(&self, wakes: &mut Vec<Arc<Outbox>>) -> bool {
        let spare = self.spare.locked().try_recv().unwrap_or_default();
        let list = std::mem::replace(wakes, spare);
        match self.tx.try_send(list) {
            Ok(()) => true,
            Err(TrySendError::Full(list) | TrySendError::Disconnected(list)) => {
                *wakes = list;
                false
            }
        }
    }
}
