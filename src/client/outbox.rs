//! The per-connection output queue.
//!
//! Everything a connection sends (replies to its own commands, and messages pushed by
//! publishers on other connections) goes through its `Outbox`, so there is one ordered
//! output path. Publishers append a shared `Bytes` frame and return at once: they never
//! wait for a subscriber's socket. The connection's writer task takes everything queued
//! and writes it in as few syscalls as it can; or, when the writer holds nothing and the
//! socket takes it without waiting, the publisher writes it itself ([`Outbox::write_or_wake`]).
//!
//! The byte count lives here because only here are the bytes known: it is what CLIENT
//! LIST shows as `omem` and what `client-output-buffer-limit` is checked against.
//! Bytes stay counted from the moment they are queued until the writer has handed them
//! to the kernel, so a subscriber whose socket is full keeps its count up.
//!
//! A `std::sync::Mutex` (not tokio's) guards the queue: it is held only for a push or a
//! take, never across `.await`, and an uncontended lock is a couple of atomic operations.

use crate::sync::LockExt;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{OverflowPolicy, Settings};
use crate::protocol::reply::Proto;
use crate::protocol::wire::Wire;

/// A socket that may be written from any thread without waiting (a non-blocking write).
pub trait DirectWrite: Send + Sync {
    fn try_write_vectored(&self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize>;
}

/// At most this many frames (and bytes) go out in one direct write.
const DIRECT_MAX_FRAMES: usize = 64;
const DIRECT_MAX_BYTES: usize = 256 * 1024;

/// Per-connection policy override meaning "use the server's `pubsub-overflow-policy`".
const POLICY_DEFAULT: u8 = u8::MAX;

/// Hard-limit override meaning "use the `client-output-buffer-limit` class".
const NO_HARD_LIMIT: usize = usize::MAX;

/// Rough cost of one queued frame beyond its bytes, counted like Redis's reply-list nodes
/// so that many tiny messages still add up towards the limit.
const FRAME_OVERHEAD: usize = 16;

struct Frame {
    body: Body,
    /// Bytes counted for this frame: its length plus [`FRAME_OVERHEAD`] per message.
    cost: usize,
    /// Pub/sub messages in the frame (0 for a reply). Messages may be dropped whole
    /// under a drop policy; replies and subscribe confirmations never are, or the
    /// client would lose its place.
    messages: u32,
}

enum Body {
    Ready(Bytes),
    /// The place of a publisher's open run (see [`crate::pubsub::run`]): the run's
    /// bytes replace it when the publisher's batch ends. The writer stops here until
    /// then, so everything queued behind it keeps its order.
    Pending {
        publisher: u64,
        wire: Wire,
    },
}

impl Frame {
    fn is_message(&self) -> bool {
        self.messages > 0 && matches!(self.body, Body::Ready(_))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Open,
    /// Write what is queued, then close (QUIT, protocol errors, shutdown).
    Closing,
}

struct Queue {
    frames: VecDeque<Frame>,
    /// Queued plus taken-but-not-yet-written bytes (with per-frame overhead).
    bytes: usize,
    /// Frames taken by the writer and not yet written.
    in_flight: usize,
    state: State,
    /// When the buffer first reached the soft limit, if it is still above it.
    soft_since: Option<Instant>,
    /// The soft limit seen by the last push, so the writer can reset the timer when
    /// usage falls below it without consulting the settings.
    soft: usize,
    /// `dropped` as last announced to a browser (see [`Outbox::take`]).
    announced: u64,
}

/// What a push did with the frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Queued after dropping this many older messages (drop-oldest policy).
    QueuedAfterDropping(u64),
    /// Dropped under a drop policy; counted in `dropped`.
    Dropped,
    /// Dropped, together with this many older messages (drop-oldest, queue full of replies).
    DroppedAfterDropping(u64),
    /// The connection is closing or closed; nothing was queued.
    Gone,
    /// The connection went over its limit under the disconnect policy and is now closing.
    Disconnected,
}

/// What [`Outbox::admit`] decided.
enum Admit {
    /// Queue it (after drop-oldest dropped this many messages).
    Yes(u64),
    /// Drop it (after drop-oldest dropped this many messages and still had no room).
    Drop(u64),
    /// Over the limit under the disconnect policy.
    Disconnect,
}

/// What [`Outbox::complete_run`] did beyond queuing the run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Completed {
    pub dropped: u64,
    pub disconnected: bool,
}

/// What the writer should do next.
pub enum Take {
    /// Write these frames, then call [`Outbox::written`] with the returned count.
    Write(usize),
    /// Nothing queued: wait on [`Outbox::wait`].
    Idle,
    /// Everything is written and the connection should be closed.
    Close,
}

/// What [`Outbox::take_frame`] found.
pub enum TakeFrame {
    /// A frame and its cost (to give back to [`Outbox::written`]).
    Frame(Bytes, usize),
    Idle,
    Close,
}

pub struct Outbox {
    pub id: u64,
    /// The [`Wire`] messages are queued in.
    wire: AtomicU8,
    /// Set while the connection has any subscription: selects the `pubsub` limit class.
    pubsub_mode: AtomicBool,
    policy: AtomicU8,
    /// A hard limit of this outbox's own (a webhook's MAXQUEUE), in place of its
    /// `client-output-buffer-limit` class; [`NO_HARD_LIMIT`] when the class applies.
    hard_limit: AtomicUsize,
    queue: Mutex<Queue>,
    writer_wake: Notify,
    /// The socket, for [`Outbox::write_or_wake`] (plain TCP connections).
    direct: std::sync::OnceLock<Arc<dyn DirectWrite>>,
    /// Cancelled when the connection must stop now: killed, over its limit, or its
    /// socket failed. Both the reader and the writer watch it.
    pub gone: CancellationToken,
    /// `gone` as a flag: checking the token takes a lock, and the cron and CLIENT LIST
    /// check every client.
    gone_flag: AtomicBool,
    /// Messages dropped under a drop policy (CLIENT LIST `dropped=`).
    pub dropped: AtomicU64,
    /// Set once a drop has been logged, so a flood of drops logs one line.
    pub drop_logged: AtomicBool,
    /// Set when the connection was closed for going over its output limit, so the
    /// connection can say so (with its name and address) when it goes away.
    pub overflowed: AtomicBool,
}

/// A limit class resolved for one push.
struct Limit {
    hard: usize,
    soft: usize,
    soft_secs: u64,
}

impl Outbox {
    pub fn new(id: u64) -> Outbox {
        Outbox {
            id,
            wire: AtomicU8::new(Wire::Resp2 as u8),
            pubsub_mode: AtomicBool::new(false),
            policy: AtomicU8::new(POLICY_DEFAULT),
            hard_limit: AtomicUsize::new(NO_HARD_LIMIT),
            queue: Mutex::new(Queue {
                frames: VecDeque::new(),
                bytes: 0,
                in_flight: 0,
                state: State::Open,
                soft_since: None,
                soft: 0,
                announced: 0,
            }),
            writer_wake: Notify::new(),
            direct: std::sync::OnceLock::new(),
            gone: CancellationToken::new(),
            gone_flag: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            drop_logged: AtomicBool::new(false),
            overflowed: AtomicBool::new(false),
        }
    }

    /// The format this connection receives messages in.
    pub fn wire(&self) -> Wire {
        Wire::from_index(self.wire.load(Relaxed) as usize)
    }

    /// Follows HELLO on a RESP connection; a web or webhook outbox keeps its format.
    pub fn set_proto(&self, p: Proto) {
        if self.wire().is_resp() {
            self.set_wire(Wire::of(p));
        }
    }

    /// Fixes the format (web connections and webhooks, when they are made).
    pub fn set_wire(&self, w: Wire) {
        self.wire.store(w as u8, Relaxed);
    }

    pub fn set_pubsub_mode(&self, on: bool) {
        self.pubsub_mode.store(on, Relaxed);
    }

    /// This connection's overflow policy: its own override, else the server's.
    pub fn policy(&self, settings: &Settings) -> OverflowPolicy {
        match self.policy.load(Relaxed) {
            POLICY_DEFAULT => settings.overflow_policy(),
            p => OverflowPolicy::from_u8(p),
        }
    }

    /// Overrides the server's policy for this connection (`None` follows the server).
    pub fn set_policy(&self, p: Option<OverflowPolicy>) {
        self.policy.store(p.map_or(POLICY_DEFAULT, |p| p as u8), Relaxed);
    }

    /// Gives this outbox a hard limit of its own in bytes, used instead of its
    /// `client-output-buffer-limit` class (no soft limit then); `None` goes back to the
    /// class. Webhooks use it: their queue has a size of its own (MAXQUEUE), whatever
    /// the server's client limits say.
    pub fn set_hard_limit(&self, bytes: Option<usize>) {
        self.hard_limit
            .store(bytes.map_or(NO_HARD_LIMIT, |b| b.min(NO_HARD_LIMIT - 1)), Relaxed);
    }

    fn limit(&self, settings: &Settings) -> Limit {
        let own = self.hard_limit.load(Relaxed);
        if own != NO_HARD_LIMIT {
            return Limit {
                hard: own,
                soft: 0,
                soft_secs: 0,
            };
        }
        let class = if self.pubsub_mode.load(Relaxed) {
            &settings.obuf_pubsub
        } else {
            &settings.obuf_normal
        };
        Limit {
            hard: class.hard.load(Relaxed) as usize,
            soft: class.soft.load(Relaxed) as usize,
            soft_secs: class.soft_seconds.load(Relaxed),
        }
    }

    /// Queues a pub/sub message. Never blocks on the socket.
    ///
    /// The writer is not woken here: if the queue was empty, `self` is added to `wakes`
    /// and the publisher wakes everyone at the end of its batch of requests ([`Outbox::wake`]).
    /// A pipelined batch of 32 publishes then reaches each subscriber as one write
    /// instead of a write per message, which is what Redis gets from flushing every
    /// client once per event-loop pass.
    pub fn push_message(self: &Arc<Self>, frame: &Bytes, settings: &Settings, wakes: &mut Vec<Arc<Outbox>>) -> Pushed {
        let (pushed, wake) = self.push(Body::Ready(frame.clone()), frame.len(), 1, settings);
        if wake {
            wakes.push(self.clone());
        }
        pushed
    }

    /// Queues a reply (or a subscribe confirmation): never dropped, but it still counts
    /// towards the limit, and a disconnect policy still applies to it.
    pub fn push_reply(&self, bytes: Bytes, settings: &Settings) -> Pushed {
        let len = bytes.len();
        let (pushed, wake) = self.push(Body::Ready(bytes), len, 0, settings);
        if wake {
            self.wake();
        }
        pushed
    }

    /// Queues a reply like [`Outbox::push_reply`], then sends it at once if it can
    /// ([`Outbox::write_or_wake`]). Returns the bytes written now.
    pub fn push_reply_now(&self, bytes: Bytes, settings: &Settings) -> usize {
        let len = bytes.len();
        match self.push(Body::Ready(bytes), len, 0, settings) {
            (_, true) => self.write_or_wake(),
            _ => 0,
        }
    }

    /// Wakes the writer (after [`Outbox::push_message`] said a wake is owed).
    pub fn wake(&self) {
        self.writer_wake.notify_one();
    }

    /// Lets other threads write to this connection's socket ([`Outbox::write_or_wake`]).
    pub fn set_direct(&self, d: Arc<dyn DirectWrite>) {
        let _ = self.direct.set(d);
    }

    /// What is owed after a push that asked for a wake, done from the calling thread when
    /// it can: if the writer holds nothing taken, what is queued goes out now with one
    /// non-blocking write under the queue's lock, and the writer is woken only for what
    /// the socket did not take. Returns the bytes written.
    ///
    /// Why: when every delivery is its own write (few subscribers, no pipelining), waking
    /// a writer task per delivery costs a task switch and often a thread wake-up, most of
    /// the cost of the delivery, and the writes come out spread in time, which wakes the
    /// reading client more often too. Redis writes to its clients from the thread that
    /// produced the output; so does this. Order holds: the write is from the front of the
    /// queue, under its lock, only while the writer has nothing in flight, and what is
    /// left stays first in line.
    pub fn write_or_wake(&self) -> usize {
        let Some(direct) = self.direct.get() else {
            self.wake();
            return 0;
        };
        let mut q = self.queue.locked();
        if q.in_flight > 0 || q.state != State::Open {
            drop(q);
            self.wake();
            return 0;
        }
        let mut slices = [std::io::IoSlice::new(&[]); DIRECT_MAX_FRAMES];
        let mut n = 0;
        let mut bytes = 0;
        for f in q.frames.iter() {
            let Body::Ready(b) = &f.body else { break };
            if n == DIRECT_MAX_FRAMES || bytes >= DIRECT_MAX_BYTES {
                break;
            }
            slices[n] = std::io::IoSlice::new(b);
            n += 1;
            bytes += b.len();
        }
        if n == 0 {
            // A run's place is first: its completion wakes the writer.
            return 0;
        }
        // WouldBlock, or an error the writer will meet (and close the connection for).
        let mut written = direct.try_write_vectored(&slices[..n]).unwrap_or(0);
        let total = written;
        let mut freed = 0;
        while written > 0 {
            let Some(f) = q.frames.front_mut() else { break };
            let Body::Ready(b) = &mut f.body else { break };
            if written >= b.len() {
                written -= b.len();
                freed += f.cost;
                q.frames.pop_front();
            } else {
                // Part of this frame went out: the rest stays first in line, counted as
                // what is left of it plus its per-message overhead.
                bytes::Buf::advance(b, written);
                f.cost -= written;
                freed += written;
                written = 0;
            }
        }
        q.bytes -= freed;
        if q.bytes < q.soft {
            q.soft_since = None;
        }
        let rest = !q.frames.is_empty();
        drop(q);
        if rest {
            self.wake();
        }
        total
    }

    /// Holds `publisher`'s place for a run whose first message is `len` bytes (counted
    /// now, like any message). The writer is woken when the run is completed
    /// ([`Outbox::complete_run`]), not now: until then it could not write past it anyway.
    pub fn push_pending(&self, publisher: u64, wire: Wire, len: usize, settings: &Settings) -> Pushed {
        self.push(Body::Pending { publisher, wire }, len, 1, settings).0
    }

    /// Replaces `publisher`'s pending frame with its run's bytes (`runs`, one per
    /// protocol: the one the frame was queued for) and counts the
    /// `extra_messages` beyond the first that the run holds, under the same limits as a
    /// push: over the hard limit the connection is closed (disconnect policy) or only the
    /// first message is kept (drop policies, after drop-oldest made what room it could).
    /// Returns how many messages were dropped, or `None` if no pending frame was found
    /// (the connection went away, or the first message was already dropped).
    pub fn complete_run(
        &self,
        publisher: u64,
        runs: &[Option<Bytes>; Wire::COUNT],
        extra_messages: u32,
        settings: &Settings,
    ) -> Option<Completed> {
        let limit = self.limit(settings);
        let mut q = self.queue.locked();
        let pending = |f: &Frame| matches!(f.body, Body::Pending { publisher: p, .. } if p == publisher);
        let (at, wire) = q.frames.iter().enumerate().rev().find_map(|(i, f)| match f.body {
            Body::Pending { publisher: p, wire } if p == publisher => Some((i, wire)),
            _ => None,
        })?;
        // The publisher encoded the run for every protocol it queued a place for.
        let run = runs[wire.index()].as_ref()?;
        let first_len = q.frames[at].cost - FRAME_OVERHEAD;
        let extra = run.len() - first_len + extra_messages as usize * FRAME_OVERHEAD;
        let mut done = Completed::default();
        let admitted = if extra_messages == 0 {
            Admit::Yes(0)
        } else {
            self.admit(&mut q, extra, true, &limit, settings)
        };
        let whole = match admitted {
            Admit::Yes(n) => {
                done.dropped = n;
                true
            }
            Admit::Drop(n) => {
                // `admit` counted one dropped message; the run drops all but its first.
                self.dropped.fetch_add(extra_messages as u64 - 1, Relaxed);
                done.dropped = n + extra_messages as u64;
                false
            }
            Admit::Disconnect => {
                drop(q);
                self.kill_for_overflow();
                done.disconnected = true;
                return Some(done);
            }
        };
        // Drop-oldest may have removed frames in front of it.
        let at = if done.dropped > 0 {
            q.frames.iter().rposition(pending)?
        } else {
            at
        };
        let f = &mut q.frames[at];
        if whole {
            f.body = Body::Ready(run.clone());
            f.cost += extra;
            f.messages += extra_messages;
            q.bytes += extra;
        } else {
            // A copy, not a slice: a slice would keep the whole run in memory while only
            // its first message is counted against this (already full) subscriber.
            f.body = Body::Ready(Bytes::copy_from_slice(&run[..first_len]));
        }
        drop(q);
        self.writer_wake.notify_one();
        Some(done)
    }

    /// Queues a frame; also says whether the writer must be woken (the queue was empty).
    fn push(&self, body: Body, len: usize, messages: u32, settings: &Settings) -> (Pushed, bool) {
        // No `gone.is_cancelled()` here: it takes a lock, and `kill` moves the queue out
        // of `Open` under the queue's own lock, which is checked below.
        let limit = self.limit(settings);
        let cost = len + FRAME_OVERHEAD;
        let mut q = self.queue.locked();
        if q.state != State::Open {
            return (Pushed::Gone, false);
        }
        let made_room = match self.admit(&mut q, cost, messages > 0, &limit, settings) {
            Admit::Yes(n) => n,
            Admit::Drop(0) => return (Pushed::Dropped, false),
            Admit::Drop(n) => return (Pushed::DroppedAfterDropping(n), false),
            Admit::Disconnect => {
                drop(q);
                self.kill_for_overflow();
                return (Pushed::Disconnected, false);
            }
        };
        let was_empty = q.frames.is_empty();
        q.bytes += cost;
        q.frames.push_back(Frame { body, cost, messages });
        drop(q);
        let pushed = if made_room > 0 {
            Pushed::QueuedAfterDropping(made_room)
        } else {
            Pushed::Queued
        };
        (pushed, was_empty)
    }

    /// Decides whether `cost` more bytes may be queued, applying the connection's
    /// overflow policy: drop-oldest makes room first. Counts the drops in `dropped`.
    /// Only messages are ever dropped; replies are bounded by the client's own requests.
    fn admit(&self, q: &mut Queue, cost: usize, message: bool, limit: &Limit, settings: &Settings) -> Admit {
        let mut made_room = 0;
        if limit.hard > 0 && q.bytes + cost >= limit.hard {
            match self.policy(settings) {
                OverflowPolicy::Disconnect => return Admit::Disconnect,
                OverflowPolicy::DropNewest if message => {
                    self.dropped.fetch_add(1, Relaxed);
                    return Admit::Drop(0);
                }
                OverflowPolicy::DropOldest if message => {
                    let (n, fits) = Self::drop_oldest(q, cost, limit.hard);
                    self.dropped.fetch_add(n, Relaxed);
                    if !fits {
                        // Only replies are left queued: this message cannot fit either.
                        self.dropped.fetch_add(1, Relaxed);
                        return Admit::Drop(n);
                    }
                    made_room = n;
                }
                _ => {}
            }
        }
        q.soft = limit.soft;
        if limit.soft > 0 && q.bytes + cost >= limit.soft {
            let now = Instant::now();
            match q.soft_since {
                None => q.soft_since = Some(now),
                Some(since)
                    if self.policy(settings) == OverflowPolicy::Disconnect
                        && now.duration_since(since) > Duration::from_secs(limit.soft_secs) =>
                {
                    return Admit::Disconnect;
                }
                _ => {}
            }
        }
        Admit::Yes(made_room)
    }

    /// Makes room for `cost` more bytes below `hard` by dropping the oldest queued
    /// messages. Frees down to 7/8 of the limit so that a subscriber stuck at the limit
    /// does not pay a scan on every message. Returns how many were dropped and whether
    /// the new message now fits (it may not when the queue holds mostly replies).
    fn drop_oldest(q: &mut Queue, cost: usize, hard: usize) -> (u64, bool) {
        let target = (hard - hard / 8).saturating_sub(cost);
        let mut freed = 0usize;
        let mut n = 0u64;
        let excess = q.bytes.saturating_sub(target);
        // Frames at the front are messages in the common case: pop them cheaply.
        while freed < excess {
            match q.frames.front() {
                Some(f) if f.is_message() => {
                    let f = q.frames.pop_front().unwrap();
                    freed += f.cost;
                    n += f.messages as u64;
                }
                _ => break,
            }
        }
        if freed < excess {
            q.frames.retain(|f| {
                if freed < excess && f.is_message() {
                    freed += f.cost;
                    n += f.messages as u64;
                    false
                } else {
                    true
                }
            });
        }
        q.bytes -= freed;
        (n, q.bytes + cost < hard)
    }

    /// Moves queued frames into `batch` (up to about `max_bytes`) for the writer.
    ///
    /// A browser (SSE, WebSocket) is told in band when messages were dropped for it: a
    /// `dropped` event goes first, where the gap is (drop-oldest removes from the front;
    /// drop-newest refused what came after the last message taken). RESP has no such
    /// message: Redis clients see only the `dropped=` count in CLIENT LIST.
    pub fn take(&self, batch: &mut Vec<Bytes>, max_bytes: usize) -> Take {
        let mut q = self.queue.locked();
        let mut taken = 0usize;
        let mut announced = false;
        let wire = self.wire();
        if matches!(wire, Wire::Sse | Wire::WebSocket) {
            let dropped = self.dropped.load(Relaxed);
            if dropped > q.announced {
                batch.push(crate::protocol::web::dropped_notice(
                    wire,
                    dropped - q.announced,
                    dropped,
                ));
                q.announced = dropped;
                announced = true;
            }
        }
        while let Some(f) = q.frames.front() {
            if matches!(f.body, Body::Pending { .. }) || taken >= max_bytes {
                break;
            }
            let f = q.frames.pop_front().unwrap();
            taken += f.cost;
            if let Body::Ready(bytes) = f.body {
                batch.push(bytes);
            }
        }
        if taken == 0 && !announced {
            return if q.frames.is_empty() && q.state == State::Closing && q.in_flight == 0 {
                Take::Close
            } else {
                Take::Idle
            };
        }
        q.in_flight += taken;
        if q.frames.is_empty() && q.frames.capacity() > 256 {
            // A burst is over: give the queue's memory back rather than keep it per client.
            q.frames = VecDeque::new();
        }
        Take::Write(taken)
    }

    /// Moves the first queued frame out, with its cost, for a consumer that finishes
    /// frames one at a time and out of order (a webhook's concurrent deliveries): it hands
    /// each cost back to [`Outbox::written`] when that frame is done with, so the frame
    /// counts towards the limit until then.
    pub fn take_frame(&self) -> TakeFrame {
        let mut q = self.queue.locked();
        if !matches!(
            q.frames.front(),
            Some(Frame {
                body: Body::Ready(_),
                ..
            })
        ) {
            let closed = q.frames.is_empty() && q.state == State::Closing && q.in_flight == 0;
            return if closed { TakeFrame::Close } else { TakeFrame::Idle };
        }
        let Some(Frame {
            body: Body::Ready(bytes),
            cost,
            ..
        }) = q.frames.pop_front()
        else {
            return TakeFrame::Idle;
        };
        q.in_flight += cost;
        if q.frames.is_empty() && q.frames.capacity() > 256 {
            q.frames = VecDeque::new();
        }
        TakeFrame::Frame(bytes, cost)
    }

    /// The writer has handed `n` taken bytes to the kernel.
    pub fn written(&self, n: usize) {
        let mut q = self.queue.locked();
        q.in_flight -= n;
        q.bytes -= n;
        if q.bytes < q.soft {
            q.soft_since = None;
        }
    }

    /// Waits until something is queued (or the connection is closing).
    pub async fn wait(&self) {
        self.writer_wake.notified().await
    }

    /// Write what is queued, then close. Further pushes are dropped.
    pub fn close_after_flush(&self) {
        self.queue.locked().state = State::Closing;
        self.writer_wake.notify_one();
    }

    /// [`Outbox::kill`] because the output limit was passed under the disconnect policy.
    pub fn kill_for_overflow(&self) {
        self.overflowed.store(true, Relaxed);
        self.kill();
    }

    /// Stop now: queued output is discarded and both tasks of the connection end.
    /// The connection is finished: its tasks stop (see `gone`).
    pub fn set_gone(&self) {
        self.gone_flag.store(true, std::sync::atomic::Ordering::Release);
        self.gone.cancel();
    }

    /// Whether [`Outbox::set_gone`] was called (a lock-free `gone.is_cancelled()`).
    pub fn is_gone(&self) -> bool {
        self.gone_flag.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn kill(&self) {
        {
            let mut q = self.queue.locked();
            q.state = State::Closing;
            q.bytes -= q.frames.iter().map(|f| f.cost).sum::<usize>();
            q.frames.clear();
        }
        self.set_gone();
        self.writer_wake.notify_one();
    }

    /// Called by the periodic check: has this connection been over its soft limit for
    /// longer than allowed? Catches subscribers that went quiet while over the limit.
    pub fn soft_limit_expired(&self, settings: &Settings) -> bool {
        let limit = self.limit(settings);
        if limit.soft == 0 || self.policy(settings) != OverflowPolicy::Disconnect {
            return false;
        }
        let q = self.queue.locked();
        match q.soft_since {
            Some(since) => q.bytes >= limit.soft && since.elapsed() > Duration::from_secs(limit.soft_secs),
            None => false,
        }
    }

    /// (bytes, frames) queued or in flight: CLIENT LIST's `omem` and `oll`.
    pub fn usage(&self) -> (usize, usize) {
        let q = self.queue.locked();
        (q.bytes, q.frames.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(limit: &str, policy: &str) -> Settings {
        let s = Settings::default();
        s.set("client-output-buffer-limit", limit).unwrap();
        s.set("pubsub-overflow-policy", policy).unwrap();
        s
    }

    /// A socket that takes at most `room` more bytes, recording them.
    struct Socket {
        room: Mutex<usize>,
        got: Mutex<Vec<u8>>,
    }

    impl DirectWrite for Socket {
        fn try_write_vectored(&self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
            let mut room = self.room.lock().unwrap();
            if *room == 0 {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(*room - n);
                self.got.lock().unwrap().extend_from_slice(&b[..take]);
                n += take;
            }
            *room -= n;
            Ok(n)
        }
    }

    fn direct(room: usize) -> (Arc<Outbox>, Arc<Socket>) {
        let o = Arc::new(Outbox::new(1));
        let sock = Arc::new(Socket {
            room: Mutex::new(room),
            got: Mutex::new(Vec::new()),
        });
        o.set_direct(sock.clone());
        (o, sock)
    }

    #[test]
    fn an_idle_outbox_is_written_at_once_in_order() {
        let s = settings("pubsub 0 0 0", "disconnect");
        let (o, sock) = direct(usize::MAX);
        let mut wakes = Vec::new();
        o.push_message(&Bytes::from_static(b"one "), &s, &mut wakes);
        o.push_message(&Bytes::from_static(b"two "), &s, &mut wakes);
        assert_eq!(wakes.len(), 1, "one wake owed for the batch");
        assert_eq!(
            o.push_reply_now(Bytes::from_static(b"reply"), &s),
            0,
            "a wake was already owed"
        );
        assert_eq!(o.write_or_wake(), 13);
        assert_eq!(&sock.got.lock().unwrap()[..], b"one two reply");
        assert_eq!(o.usage(), (0, 0));
        assert!(matches!(o.take(&mut Vec::new(), 1 << 20), Take::Idle));
        assert_eq!(o.push_reply_now(Bytes::from_static(b"+OK"), &s), 3);
    }

    #[test]
    fn what_the_socket_did_not_take_stays_first_for_the_writer() {
        let s = settings("pubsub 0 0 0", "disconnect");
        let (o, sock) = direct(6);
        o.push_message(&Bytes::from_static(b"abcd"), &s, &mut Vec::new());
        o.push_message(&Bytes::from_static(b"efgh"), &s, &mut Vec::new());
        assert_eq!(o.write_or_wake(), 6);
        let mut batch = Vec::new();
        let Take::Write(counted) = o.take(&mut batch, 1 << 20) else {
            panic!("the rest is queued")
        };
        assert_eq!(batch, [Bytes::from_static(b"gh")]);
        // The partly written frame counts what is left of it plus its overhead.
        assert_eq!(counted, 2 + FRAME_OVERHEAD);
        o.written(counted);
        assert_eq!(o.usage(), (0, 0));
        assert_eq!(&sock.got.lock().unwrap()[..], b"abcdef");
    }

    #[test]
    fn a_busy_writer_keeps_the_socket() {
        let s = settings("pubsub 0 0 0", "disconnect");
        let (o, sock) = direct(usize::MAX);
        o.push_message(&Bytes::from_static(b"first"), &s, &mut Vec::new());
        let mut batch = Vec::new();
        let Take::Write(counted) = o.take(&mut batch, 1 << 20) else {
            panic!("queued")
        };
        // The writer holds "first": a direct write now could overtake it.
        o.push_message(&Bytes::from_static(b"second"), &s, &mut Vec::new());
        assert_eq!(o.write_or_wake(), 0);
        assert!(sock.got.lock().unwrap().is_empty());
        o.written(counted);
        assert_eq!(o.write_or_wake(), 6);
    }

    #[test]
    fn hard_limit_disconnects() {
        let s = settings("pubsub 1000 0 0", "disconnect");
        let o = Arc::new(Outbox::new(1));
        o.set_pubsub_mode(true);
        let f = Bytes::from(vec![b'x'; 100]);
        let mut n = 0;
        while o.push_message(&f, &s, &mut Vec::new()) == Pushed::Queued {
            n += 1;
        }
        assert_eq!(n, 8);
        assert!(o.gone.is_cancelled());
        assert_eq!(o.usage(), (0, 0));
    }

    #[test]
    fn an_own_hard_limit_replaces_the_class() {
        // The class would allow far more; the outbox's own limit wins.
        let s = settings("pubsub 100000 0 0", "drop-newest");
        let o = Arc::new(Outbox::new(1));
        o.set_pubsub_mode(true);
        o.set_hard_limit(Some(300));
        let f = Bytes::from(vec![b'x'; 100]);
        for _ in 0..5 {
            o.push_message(&f, &s, &mut Vec::new());
        }
        assert_eq!(o.dropped.load(Relaxed), 3);
        o.set_hard_limit(None);
        assert_eq!(o.push_message(&f, &s, &mut Vec::new()), Pushed::Queued);
    }

    #[test]
    fn frames_taken_one_by_one_count_until_written() {
        let s = settings("pubsub 0 0 0", "disconnect");
        let o = Arc::new(Outbox::new(1));
        let f = Bytes::from(vec![b'x'; 10]);
        o.push_message(&f, &s, &mut Vec::new());
        o.push_message(&f, &s, &mut Vec::new());
        let TakeFrame::Frame(a, cost) = o.take_frame() else {
            panic!("queued")
        };
        assert_eq!((a.len(), cost), (10, 10 + FRAME_OVERHEAD));
        assert!(matches!(o.take_frame(), TakeFrame::Frame(..)));
        assert!(matches!(o.take_frame(), TakeFrame::Idle));
        assert_eq!(o.usage(), (2 * cost, 0));
        o.written(cost);
        o.close_after_flush();
        assert!(matches!(o.take_frame(), TakeFrame::Idle), "one still in flight");
        o.written(cost);
        assert!(matches!(o.take_frame(), TakeFrame::Close));
    }

    #[test]
    fn drop_newest_keeps_the_oldest() {
        let s = settings("pubsub 1000 0 0", "drop-newest");
        let o = Arc::new(Outbox::new(1));
        o.set_pubsub_mode(true);
        for i in 0..20u8 {
            o.push_message(&Bytes::from(vec![i; 100]), &s, &mut Vec::new());
        }
        assert!(!o.gone.is_cancelled());
        assert_eq!(o.dropped.load(Relaxed), 12);
        let mut batch = Vec::new();
        assert!(matches!(o.take(&mut batch, usize::MAX), Take::Write(_)));
        assert_eq!(batch.len(), 8);
        assert_eq!(batch[0][0], 0);
    }

    #[test]
    fn drop_oldest_keeps_the_newest_and_replies() {
        let s = settings("pubsub 1000 0 0", "drop-oldest");
        let o = Arc::new(Outbox::new(1));
        o.set_pubsub_mode(true);
        o.push_reply(Bytes::from_static(b"+reply\r\n"), &s);
        for i in 0..20u8 {
            let pushed = o.push_message(&Bytes::from(vec![i; 100]), &s, &mut Vec::new());
            assert!(
                matches!(pushed, Pushed::Queued | Pushed::QueuedAfterDropping(_)),
                "{pushed:?}"
            );
        }
        assert!(o.usage().0 < 1000);
        let mut batch = Vec::new();
        o.take(&mut batch, usize::MAX);
        assert_eq!(&batch[0][..], b"+reply\r\n");
        assert_eq!(batch.last().unwrap()[0], 19);
        assert_eq!(o.dropped.load(Relaxed) as usize + batch.len() - 1, 20);
    }
    /// A run of three 100-byte messages: the first is counted at `push_pending`, the
    /// other two when the run completes.
    fn run_of_three(o: &Outbox, s: &Settings) -> Option<Completed> {
        assert_eq!(o.push_pending(7, Wire::Resp2, 100, s), Pushed::Queued);
        let run = Bytes::from(vec![b'r'; 300]);
        o.complete_run(7, &[Some(run), None, None, None, None], 2, s)
    }

    #[test]
    fn writer_stops_at_a_pending_run_until_it_completes() {
        let s = settings("pubsub 0 0 0", "disconnect");
        let o = Outbox::new(1);
        o.push_reply(Bytes::from_static(b"+before\r\n"), &s);
        assert_eq!(o.push_pending(7, Wire::Resp2, 100, &s), Pushed::Queued);
        o.push_reply(Bytes::from_static(b"+after\r\n"), &s);
        let mut batch = Vec::new();
        let Take::Write(n) = o.take(&mut batch, usize::MAX) else {
            panic!("the reply in front of the run is ready");
        };
        o.written(n);
        assert_eq!(batch, [Bytes::from_static(b"+before\r\n")]);
        batch.clear();
        assert!(
            matches!(o.take(&mut batch, usize::MAX), Take::Idle),
            "the run is pending"
        );
        let run = Bytes::from(vec![b'r'; 300]);
        assert_eq!(
            o.complete_run(8, &[Some(run.clone()), None, None, None, None], 2, &s),
            None,
            "not its run"
        );
        assert_eq!(
            o.complete_run(7, &[Some(run.clone()), None, None, None, None], 2, &s),
            Some(Completed::default())
        );
        assert_eq!(o.usage(), (300 + 3 * FRAME_OVERHEAD + 8 + FRAME_OVERHEAD, 2));
        let Take::Write(n) = o.take(&mut batch, usize::MAX) else {
            panic!("completed");
        };
        o.written(n);
        assert_eq!(batch, [run, Bytes::from_static(b"+after\r\n")]);
        assert_eq!(o.usage(), (0, 0));
    }

    #[test]
    fn a_run_over_the_limit_disconnects_or_keeps_its_first_message() {
        let s = settings("pubsub 300 0 0", "disconnect");
        let o = Outbox::new(1);
        o.set_pubsub_mode(true);
        let done = run_of_three(&o, &s).unwrap();
        assert!(done.disconnected);
        assert!(o.gone.is_cancelled());

        let s = settings("pubsub 300 0 0", "drop-newest");
        let o = Outbox::new(1);
        o.set_pubsub_mode(true);
        assert_eq!(run_of_three(&o, &s).unwrap().dropped, 2);
        assert_eq!(o.dropped.load(Relaxed), 2);
        let mut batch = Vec::new();
        o.take(&mut batch, usize::MAX);
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].len(), 100, "only the first message of the run");

        let s = settings("pubsub 300 0 0", "drop-oldest");
        let o = Arc::new(Outbox::new(1));
        o.set_pubsub_mode(true);
        for _ in 0..2 {
            o.push_message(&Bytes::from(vec![b'o'; 50]), &s, &mut Vec::new());
        }
        // The two older messages make room, and the run still does not fit whole.
        assert_eq!(run_of_three(&o, &s).unwrap().dropped, 4);
        assert_eq!(o.dropped.load(Relaxed), 4);
        let mut batch = Vec::new();
        o.take(&mut batch, usize::MAX);
        assert_eq!(batch.iter().map(Bytes::len).collect::<Vec<_>>(), [100]);
    }
}
