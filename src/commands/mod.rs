//! Command dispatch and the per-connection command state.
//!
//! A [`Session`] is everything a connection knows about itself (protocol, subscriptions,
//! reply mode, authentication). It does no I/O: commands write replies into
//! `Session::out`, which the connection hands to its outbox, and publish through the
//! shared [`Broker`]. That keeps every command testable without a socket.
//!
//! * [`dispatch`]: the checks before a command, in Redis's order, and the one `match`
//!   from the command table's [`Cmd`](crate::spec::Cmd) to its handler.
//! * [`errors`]: Redis's error texts; [`args`]: the argument reader.
//! * One file per command family: `pubsub`, `connection`, `client`, `transactions`,
//!   `server` (COMMAND, CONFIG), `info`, `operator` (MONITOR, SHUTDOWN, SLOWLOG,
//!   LATENCY, MEMORY...), `acl`, `keys` (generic key commands), `streams` (entries and
//!   reads), `groups` (consumer groups, XINFO), `cluster` (CLUSTER, READONLY, READWRITE,
//!   ASKING), `webhook` (WEBHOOK, and the dead-letter XADD its deliveries use).
//! * `persistence`: replaying the append-only file, BGREWRITEAOF, DEBUG LOADAOF.
//! * [`keyspace`]: the keyspace lock around a command or an EXEC, and what a write leaves
//!   to do (serving blocked readers, keyspace notifications); [`blocking`]: a blocked
//!   read from its client's side.

mod acl;
pub mod args;
mod blocking;
mod client;
mod cluster;
mod connection;
mod dispatch;
pub mod errors;
mod groups;
mod keys;
mod keyspace;
mod operator;
mod persistence;
mod pubsub;
mod server;
mod streams;
mod transactions;
mod webhook;

use crate::sync::LockExt;
use std::collections::HashSet;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::broker::Broker;
use crate::client::{ClientHandle, Outbox};
use crate::protocol::reply::{Encoder, Proto};
use crate::pubsub::Batch;
use crate::stats::Stats;

/// What the connection should do after a command.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Flow {
    Continue,
    /// The command was not run yet: it must wait. Send what is queued, wait for what
    /// [`Wait`] names (or the client going away, or shutdown), then execute the same
    /// request again, as Redis re-runs a blocked command; later pipelined requests wait
    /// behind it. This is the seam blocking commands (XREAD BLOCK) use.
    Wait(Wait),
    /// Send what is queued, then close (QUIT, killing oneself).
    CloseAfterReply,
    /// Close without replying (cross-protocol requests such as an HTTP `POST`).
    CloseNow,
}

/// What a waiting request waits for.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Wait {
    /// The end of a CLIENT PAUSE that holds the command; then it runs again.
    Pause,
    /// A blocked read (XREAD/XREADGROUP BLOCK): the connection waits for
    /// [`Session::blocked_on`]'s waiter or deadline, then calls [`Session::resume`]
    /// (the command is not run again: a writer served it, see `crate::keyspace::blocked`).
    Keys,
    /// A subscribe that gave the cluster bus new interest: the NATS server confirms it
    /// (a PING/PONG round trip), then the command runs again, so that once a client
    /// has its confirmation, messages published on any node reach it.
    Bus,
}

/// The keyspace lock, held as a value: EXEC keeps it across its commands.
pub type KeysGuard = parking_lot::ArcMutexGuard<parking_lot::RawMutex, crate::keyspace::Keyspace>;

/// CLIENT REPLY state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ReplyMode {
    On,
    Off,
    /// Silence the next command only.
    SkipNext,
}

pub struct Session {
    pub broker: Arc<Broker>,
    pub client: Arc<ClientHandle>,
    pub proto: Proto,
    /// Replies not yet handed to the outbox. The connection moves them there after each
    /// batch of requests; commands whose effects others can observe (subscribing,
    /// publishing to oneself) move them earlier to keep the output in order.
    pub out: BytesMut,
    /// Where silenced replies go (CLIENT REPLY OFF/SKIP); cleared after each command.
    sink: BytesMut,
    silenced: bool,
    reply_mode: ReplyMode,
    pub channels: HashSet<Bytes>,
    pub patterns: HashSet<Bytes>,
    pub shard_channels: HashSet<Bytes>,
    /// Logged in (Redis's `c->authenticated`). Commands still run unauthenticated while
    /// the `default` user needs no password: see [`Session::auth_required`].
    pub authenticated: bool,
    /// The ACL user the connection is logged in as (also in the client info).
    pub user: Arc<crate::acl::User>,
    /// What this connection's publishes left for the end of its batch of requests:
    /// writers to wake and an open run (see [`crate::pubsub::run`]); ended by
    /// [`Session::flush`].
    pub batch: Batch,
    /// Size on the wire of the request being executed (CLIENT LIST `qbuf` for itself).
    wire_len: usize,
    /// SELECTed database.
    pub db: usize,
    /// MULTI in progress.
    multi: Option<transactions::Multi>,
    /// Inside EXEC: the publish gate is already held exclusively.
    in_exec: bool,
    /// WATCHed keys, and the flag a write to one of them raises.
    watched: Vec<(usize, Bytes)>,
    watcher: crate::keyspace::watch::Watcher,
    /// Error replies so far (a command that replied with an error "failed").
    errors_replied: u64,
    /// In MONITOR mode.
    monitoring: bool,
    /// Inside EXEC: the keyspace lock, taken by the first command that needs it and
    /// kept until EXEC is done, so the transaction's writes and reads are one step.
    exec_keys: Option<KeysGuard>,
    /// The blocked command this connection waits on.
    blocked: Option<blocking::BlockedCall>,
    /// This session replays the append-only file (Redis's AOF client): nothing is
    /// journaled again, and arguments only a replay may use are accepted.
    pub replaying: bool,
    /// Under `appendfsync always`: the journal offset that must be on disk before the
    /// replies gathered so far may go out.
    pub durable_wait: Option<u64>,
    /// READONLY: replicas serve this client's reads of their shard's slots.
    pub readonly: bool,
    /// The bus has confirmed the interest the subscribe about to run again needs.
    pub bus_ready: bool,
    /// Interest taken on the bus before a subscribe waited, released once the
    /// subscriptions hold their own.
    bus_pins: Vec<(Option<crate::pubsub::Namespace>, Bytes)>,
    /// This batch of requests published on the cluster bus: its writer is woken once,
    /// when the batch ends, so a pipeline's messages leave together.
    bus_wake: bool,
    /// A WebSocket session: the request its replies answer (they carry it as `"op"`).
    pub web_op: Option<&'static str>,
}

impl Session {
    pub fn new(broker: Arc<Broker>, client: Arc<ClientHandle>) -> Session {
        let authenticated = !broker.acl.default_needs_auth();
        let user = client.info.locked().user.clone();
        Session {
            broker,
            client,
            proto: Proto::Resp2,
            out: BytesMut::new(),
            sink: BytesMut::new(),
            silenced: false,
            reply_mode: ReplyMode::On,
            channels: HashSet::new(),
            patterns: HashSet::new(),
            shard_channels: HashSet::new(),
            authenticated,
            user,
            batch: Batch::default(),
            wire_len: 0,
            db: 0,
            multi: None,
            in_exec: false,
            watched: Vec::new(),
            watcher: Default::default(),
            errors_replied: 0,
            monitoring: false,
            exec_keys: None,
            blocked: None,
            replaying: false,
            durable_wait: None,
            readonly: false,
            bus_ready: false,
            bus_pins: Vec::new(),
            bus_wake: false,
            web_op: None,
        }
    }

    /// Redis's `authRequired`: not logged in, and the `default` user is off or has a
    /// password. Checked per command, so `CONFIG SET requirepass ""` lets waiting
    /// connections in at once.
    pub fn auth_required(&self) -> bool {
        !self.authenticated && self.broker.acl.default_needs_auth()
    }

    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.client.outbox
    }

    pub fn id(&self) -> u64 {
        self.client.id()
    }

    /// An encoder for the reply to the current command (swallowed when silenced).
    pub fn reply(&mut self) -> Encoder<'_> {
        if self.silenced {
            Encoder::new(&mut self.sink, self.proto)
        } else {
            Encoder::new(&mut self.out, self.proto)
        }
    }

    /// An encoder for pushes (subscribe confirmations), which CLIENT REPLY never silences.
    pub fn push(&mut self) -> Encoder<'_> {
        Encoder::new(&mut self.out, self.proto)
    }

    /// An error reply with a text of its own (prefer [`Session::fail`] with a shared
    /// [`Error`](errors::Error)).
    pub fn error(&mut self, msg: &str) {
        self.error_bytes(msg.as_bytes());
    }

    /// Replies with one of Redis's errors.
    pub fn fail(&mut self, err: errors::Error) {
        self.error_bytes(&err.text());
    }

    /// Every error reply goes through here: counted (INFO `total_error_replies`,
    /// `errorstats`, the command's `failed_calls`).
    fn error_bytes(&mut self, msg: &[u8]) {
        Stats::add(&self.broker.stats.error_replies, 1);
        self.broker.stats.errors.count(errors::Error::code(msg));
        self.errors_replied += 1;
        self.reply().error_bytes(msg);
    }

    /// A protocol error's reply, sent before the connection closes.
    pub fn protocol_error(&mut self, msg: &[u8]) {
        self.error_bytes(msg);
    }

    pub fn ok(&mut self) {
        self.reply().simple("OK");
    }

    fn wake_bus(&mut self) {
        if std::mem::take(&mut self.bus_wake) {
            if let Some(bus) = self.broker.cluster.bus() {
                bus.wake();
            }
        }
    }

    pub fn subscription_count(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }

    /// Hands the replies gathered so far to the outbox, then sends what this connection
    /// published to its subscribers ([`crate::pubsub::Registry::end_batch`]).
    pub fn flush(&mut self) {
        self.wake_bus();
        // Replies that wait for the disk (`appendfsync always`) stay, in order, until
        // the connection has seen the writes synced.
        if !self.out.is_empty() && self.durable_wait.is_none() {
            let resp = self.out.split();
            let wire = self.client.outbox.wire();
            let bytes = if wire.is_resp() {
                resp.freeze()
            } else {
                // A browser's session: its RESP3 replies become events of its format.
                let mut events = BytesMut::with_capacity(resp.len() * 2);
                crate::protocol::web::translate(&mut events, wire, &resp, self.web_op);
                events.freeze()
            };
            if self.batch.has_deliveries() {
                // A publisher's reply goes first, written now when it can be, then its
                // subscribers' messages: unpipelined, it sends its next request while
                // they are written. Other replies go through the writer task, which runs
                // once this connection waits for its next request again: a request that
                // arrives meanwhile then takes its place in the arrival order
                // (`server::arrival`) like any other.
                let written = self.client.outbox.push_reply_now(bytes, &self.broker.settings);
                Stats::add(&self.broker.stats.net_output_bytes, written as u64);
            } else {
                self.client.outbox.push_reply(bytes, &self.broker.settings);
            }
        }
        self.broker.registry.end_batch(&mut self.batch);
    }

    /// Waits for what a [`Flow::Wait`] named: the blocked read's waiter or deadline, the
    /// end of a CLIENT PAUSE, the cluster bus's confirmation. The caller also watches
    /// for the client going away and for shutdown, then calls [`Session::rerun`].
    pub async fn ready(&self, wait: Wait) {
        match (wait, self.blocked_on()) {
            (Wait::Keys, Some((waiter, deadline))) => match deadline {
                Some(d) => {
                    tokio::select! {
                        _ = waiter.woken() => {}
                        _ = tokio::time::sleep_until(d.into()) => {}
                    }
                }
                None => waiter.woken().await,
            },
            (Wait::Keys, None) => {}
            (Wait::Pause, _) => self.broker.pause.wait().await,
            (Wait::Bus, _) => {
                if let Some(bus) = self.broker.cluster.bus() {
                    // Bounded: a bus that went down meanwhile does not hold the client.
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), bus.nats().flush()).await;
                }
            }
        }
    }

    /// Goes on with a request that waited, once [`Session::ready`] returned: a paused
    /// command or a subscribe runs again; a blocked read was served by a writer (or
    /// timed out) and only finishes.
    pub fn rerun(&mut self, wait: Wait, args: &[Bytes], wire_len: usize) -> Flow {
        match wait {
            Wait::Pause => self.execute(args, wire_len),
            Wait::Bus => {
                self.bus_ready = true;
                self.execute(args, wire_len)
            }
            Wait::Keys => self.resume(),
        }
    }

    /// Hands the replies gathered so far to the outbox, once the writes they acknowledge
    /// are in the append-only file (written by this call when nobody else is writing), and
    /// under `appendfsync always` synced (the AOF writer syncs everything that arrived
    /// meanwhile with one fsync, so a pipeline or many connections share it).
    pub async fn send_replies(&mut self) {
        if let Some(offset) = self.durable_wait.take() {
            let broker = self.broker.clone();
            // Group commit under always. First the connections that became readable with
            // this one run their batches: a yielded task runs after them (on one event
            // loop, nothing else would let them in before this fsync: 4 pipelining
            // producers then paid 4 fsyncs a round, at 0.56x of redis's XADD rate).
            if broker.aof.fsync_always() {
                tokio::task::yield_now().await;
            }
            // Then, while other connections are still executing the
            // batches they read (they will want an fsync in a moment), let them get here
            // first (yielding, so those on this worker run too), for at most 200 µs; then
            // one fsync covers them all, as Redis's one fsync per event-loop round does.
            if broker.aof.others_executing() {
                let until = std::time::Instant::now() + std::time::Duration::from_micros(200);
                while broker.aof.others_executing() && std::time::Instant::now() < until {
                    tokio::task::yield_now().await;
                }
            }
            if !broker.aof.write_inline(offset) {
                // A client killed meanwhile (CLIENT KILL, output limits) stops waiting: its
                // replies will not be sent anyway.
                let gone = self.outbox().gone.clone();
                tokio::select! {
                    _ = broker.aof.durable(offset) => {}
                    _ = gone.cancelled() => {}
                }
            }
        }
        self.flush();
    }

    /// Runs one request. `wire_len` is its size on the wire (CLIENT LIST `qbuf`).
    pub fn execute(&mut self, args: &[Bytes], wire_len: usize) -> Flow {
        let flow = self.dispatch(args, wire_len);
        self.sink.clear();
        flow
    }

    /// Writes a HELP reply: the header line, then the lines, then HELP's own lines.
    pub fn help(&mut self, container: &str, lines: &[&str]) {
        let mut e = self.reply();
        e.array(lines.len() + 3);
        e.simple(&format!(
            "{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
        ));
        for l in lines {
            e.simple(l);
        }
        e.simple("HELP");
        e.simple("    Print this help.");
    }

    /// The one teardown of a connection, after its last request (normally or by a
    /// panic): completes an open run (it holds places in subscribers' queues, whose
    /// writers would wait for it forever), drops subscriptions, watched keys and monitor
    /// mode, and leaves the client table.
    pub fn close(&mut self) {
        self.wake_bus();
        // What it published before closing mid-batch still goes out (and a run's places in
        // its subscribers' queues are completed, or they would wait for it for good).
        self.broker.registry.end_batch(&mut self.batch);
        self.drop_subscriptions();
        self.release_bus_pins();
        self.unwatch_all();
        self.forget_blocked();
        self.broker.monitors.remove(self.id());
        self.monitoring = false;
        self.broker.clients.remove(self.id());
    }

    /// Drops every subscription without telling the client (RESET, disconnect).
    pub fn drop_subscriptions(&mut self) {
        let id = self.id();
        let reg = &self.broker.registry;
        for ch in self.channels.drain() {
            reg.unsubscribe(crate::pubsub::Namespace::Global, &ch, id);
        }
        for ch in self.shard_channels.drain() {
            reg.unsubscribe(crate::pubsub::Namespace::Shard, &ch, id);
        }
        for p in self.patterns.drain() {
            reg.punsubscribe(&p, id);
        }
        self.sync_subscription_info();
    }

    /// Mirrors the subscription counts where others read them (CLIENT LIST, the outbox's
    /// limit class).
    pub fn sync_subscription_info(&mut self) {
        let total = self.subscription_count();
        self.client.outbox.set_pubsub_mode(total > 0);
        let mut info = self.client.info.locked();
        info.sub = self.channels.len();
        info.psub = self.patterns.len();
        info.ssub = self.shard_channels.len();
    }

    pub fn set_proto(&mut self, p: Proto) {
        self.proto = p;
        self.client.outbox.set_proto(p);
        self.client.info.locked().resp = p as u8;
    }
}

pub use args::parse_i64;
pub use keyspace::expire_cycle;
pub use persistence::open_aof_at_start;
