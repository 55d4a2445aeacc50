//! The wake relay: with a single-threaded event loop, the writer tasks owed a wake-up
//! by an unpipelined publish to many connections are woken from a second thread.
//!
//! Why: woken by the loop itself, right after the publish, 1,000 writers each ran before
//! the publisher's next request was read, and each sent its one message (0.89 sends per
//! delivery, 447k deliveries/s with one publisher). Woken from another thread, tokio queues
//! them behind the loop's own ready tasks, and the relay takes a moment to wake them
//! all; meanwhile the loop has replied to the publisher and run its next publishes, and
//! a connection whose messages are still waiting is not woken again. Each writer's write
//! then carries every message queued by then (0.037 sends per delivery, 5.1M
//! deliveries/s). Redis's io-threads take the same work off its main thread. Pipelined
//! batches and smaller fan-outs stay on the loop (see `Registry::end_batch`).

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

use super::Outbox;

/// An unpipelined publish reaching at least this many connections is relayed.
pub const RELAY_MIN: usize = 64;
/// Lists of connections waiting for the relay, at most; past it the loop wakes the
/// writers itself.
const QUEUED_MAX: usize = 16;

pub struct WakeRelay {
    tx: SyncSender<Vec<Arc<Outbox>>>,
}

impl WakeRelay {
    /// Starts the thread; it ends when the `WakeRelay` is dropped.
    pub fn start() -> std::io::Result<WakeRelay> {
        let (tx, rx) = sync_channel::<Vec<Arc<Outbox>>>(QUEUED_MAX);
        std::thread::Builder::new().name("fanout-wakes".into()).spawn(move || {
            for list in rx {
                for o in list {
                    o.wake();
                }
            }
        })?;
        Ok(WakeRelay { tx })
    }

    /// Hands the connections in `wakes` to the relay, leaving `wakes` empty. Returns
    /// false, with `wakes` as it was, when the relay is that far behind: the caller then
    /// wakes them itself.
    pub fn offer(&self, wakes: &mut Vec<Arc<Outbox>>) -> bool {
        // One allocation per relayed publish (not per message): the next publish's list.
        let list = std::mem::replace(wakes, Vec::with_capacity(wakes.len()));
        match self.tx.try_send(list) {
            Ok(()) => true,
            Err(TrySendError::Full(list) | TrySendError::Disconnected(list)) => {
                *wakes = list;
                false
            }
        }
    }
}
