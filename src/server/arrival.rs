//! Arrival order across connections.
//!
//! Redis runs commands in the order their bytes arrive, from one thread, and clients (and
//! Redis's own tests) count on it across connections: SUBSCRIBE or UNSUBSCRIBE sent on one
//! connection without reading the reply, then PUBLISH on another, must see it. With
//! several workers, tokio runs the task woken last in a batch of readiness events first
//! (its LIFO slot) and another worker may steal the ones before it, so the PUBLISH ran
//! first about half the time when the two writes were back to back (measured with a raw
//! socket probe, 3,000 tries; never with `--threads 1` or on redis-server).
//!
//! So every wake-up of a connection's reader by the reactor takes a [`Ticket`], in the
//! reactor's event order (which is the kernel's readiness order). Before it runs what it
//! read, a connection waits until every earlier ticket is done; a ticket is done once its
//! connection has run its first command (not its whole pipeline: two pipelining
//! publishers still run side by side) or has nothing to run. The wait is bounded by
//! [`MAX_WAIT`], so a stalled connection can delay others by no more than that.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use tokio::sync::Notify;

use crate::sync::LockExt;

/// The longest a connection waits for earlier arrivals before running anyway.
const MAX_WAIT: Duration = Duration::from_micros(200);
/// Tickets outstanding at most; past it, wake-ups take none (and wait for none) until
/// the oldest are done, so a flood of connections cannot grow the ledger.
const MAX_OUTSTANDING: u64 = 4096;

/// The ledger of tickets: which are done, from the oldest outstanding one on.
struct Ledger {
    /// The oldest ticket not yet done (every ticket below it is done).
    oldest: u64,
    /// `done[i]` is ticket `oldest + i`; the next ticket is `oldest + done.len()`.
    done: VecDeque<bool>,
}

static LEDGER: Mutex<Ledger> = Mutex::new(Ledger {
    oldest: 0,
    done: VecDeque::new(),
});
/// `Ledger::oldest`, readable without the lock.
static OLDEST: AtomicU64 = AtomicU64::new(0);
/// Connections waiting for their turn, woken each time `OLDEST` moves.
static TURNS: Notify = Notify::const_new();
static WAITING: AtomicUsize = AtomicUsize::new(0);

fn issue() -> Option<u64> {
    let mut l = LEDGER.locked();
    if l.done.len() as u64 >= MAX_OUTSTANDING {
        return None;
    }
    l.done.push_back(false);
    Some(l.oldest + l.done.len() as u64 - 1)
}

fn finish(t: u64) {
    let mut l = LEDGER.locked();
    let Some(i) = t.checked_sub(l.oldest) else { return };
    if let Some(d) = l.done.get_mut(i as usize) {
        *d = true;
    }
    while l.done.front() == Some(&true) {
        l.done.pop_front();
        l.oldest += 1;
    }
    // SeqCst here and in `wait_turn`: a waiter counts itself, then reads `OLDEST`; this
    // stores `OLDEST`, then reads the count. One of the two sees the other.
    let advanced = OLDEST.swap(l.oldest, Ordering::SeqCst) != l.oldest;
    drop(l);
    if advanced && WAITING.load(Ordering::SeqCst) > 0 {
        TURNS.notify_waiters();
    }
}

/// A place in the arrival order, held from a reader's wake-up until its first command ran.
pub struct Ticket(Option<u64>);

impl Ticket {
    /// Waits until every connection woken before this one has run its first command, or
    /// [`MAX_WAIT`] (rounded up to the timer's millisecond) has passed. Parked, not
    /// spinning: the core it would burn may be the one the earlier connection needs.
    pub async fn wait_turn(&self) {
        let Some(t) = self.0 else { return };
        if OLDEST.load(Ordering::Acquire) >= t {
            return;
        }
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        WAITING.fetch_add(1, Ordering::SeqCst);
        loop {
            let mut turn = std::pin::pin!(TURNS.notified());
            turn.as_mut().enable();
            if OLDEST.load(Ordering::SeqCst) >= t || tokio::time::timeout_at(deadline, turn).await.is_err() {
                break;
            }
        }
        WAITING.fetch_sub(1, Ordering::AcqRel);
    }

    /// Marks this connection's turn as taken.
    pub fn done(&mut self) {
        if let Some(t) = self.0.take() {
            finish(t);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.done();
    }
}

/// The waker a reader's readiness future is polled with: it takes a ticket when the
/// reactor wakes it, then wakes the connection's task.
struct Waiter {
    task: AtomicWaker,
    /// The ticket taken, plus one (0: none).
    ticket: AtomicU64,
}

impl Wake for Waiter {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.ticket.load(Ordering::Acquire) == 0 {
            if let Some(t) = issue() {
                if self
                    .ticket
                    .compare_exchange(0, t + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    finish(t);
                }
            }
        }
        self.task.wake();
    }
}

/// One connection's place in the arrival order.
pub struct Arrival {
    waiter: Arc<Waiter>,
    waker: Waker,
}

impl Default for Arrival {
    fn default() -> Self {
        let waiter = Arc::new(Waiter {
            task: AtomicWaker::new(),
            ticket: AtomicU64::new(0),
        });
        Arrival {
            waker: Waker::from(waiter.clone()),
            waiter,
        }
    }
}

impl Arrival {
    /// `readable`, polled so that the reactor's wake-up takes a ticket.
    pub fn watch<F: Future + Unpin>(&self, readable: F) -> Watched<'_, F> {
        Watched {
            arrival: self,
            readable,
        }
    }

    /// The ticket taken since the last call, if the reactor woke this connection.
    pub fn take(&self) -> Ticket {
        let t = self.waiter.ticket.swap(0, Ordering::AcqRel);
        Ticket(t.checked_sub(1))
    }
}

impl Drop for Arrival {
    fn drop(&mut self) {
        self.take().done();
    }
}

pub struct Watched<'a, F> {
    arrival: &'a Arrival,
    readable: F,
}

impl<F: Future + Unpin> Future for Watched<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        this.arrival.waiter.task.register(cx.waker());
        Pin::new(&mut this.readable).poll(&mut Context::from_waker(&this.arrival.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_done(t: u64) -> bool {
        let l = LEDGER.locked();
        t < l.oldest || l.done[(t - l.oldest) as usize]
    }

    #[test]
    fn tickets_finish_in_any_order_and_the_oldest_follows() {
        let a = Ticket(issue());
        let mut b = Ticket(issue());
        let (ta, tb) = (a.0.unwrap(), b.0.unwrap());
        assert!(tb > ta);
        b.done();
        assert!(is_done(tb) && !is_done(ta));
        assert!(OLDEST.load(Ordering::Acquire) <= ta, "b is done but a is not");
        drop(a);
        assert!(is_done(ta));
    }
}
