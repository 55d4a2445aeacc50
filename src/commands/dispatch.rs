//! The checks before a command runs, in Redis's order (clients and Redis's own tests see
//! which error wins): unknown command, unknown subcommand, arity, authentication, ACL,
//! MULTI's refusals, the RESP2 subscribed-context rule, CLIENT PAUSE; then MULTI queues
//! the command or it runs: an exhaustive `match` on its [`Cmd`], so every table entry has
//! a handler. After it ran: counters, slow log and MONITOR.

use std::sync::atomic::Ordering::{self, Relaxed};
use std::time::Instant;

use bytes::Bytes;

use super::errors::Error;
use super::{Flow, ReplyMode, Session, Wait};
use crate::client::pause::PauseMode;
use crate::protocol::reply::Proto;
use crate::pubsub::Namespace;
use crate::spec::{self, Cmd, Flags, Spec};
use crate::stats::Stats;
use crate::sync::LockExt;

impl Session {
    pub(super) fn dispatch(&mut self, args: &[Bytes], wire_len: usize) -> Flow {
        let Some(name) = args.first() else {
            return Flow::Continue;
        };
        Stats::add(&self.broker.stats.commands_processed, 1);
        self.silenced = match self.reply_mode {
            ReplyMode::On => false,
            ReplyMode::Off => true,
            ReplyMode::SkipNext => {
                self.reply_mode = ReplyMode::On;
                true
            }
        };
        let top = spec::lookup(name);
        // The subcommand, for a container called with one (`None`: unknown subcommand).
        let found = match top {
            Some(c) if !c.subcommands.is_empty() && args.len() >= 2 => c.sub(&args[1]),
            other => other,
        };
        // CLIENT LIST's `cmd` and idle time: set before any check, as Redis sets
        // `lastcmd` at lookup (`NULL` for what it does not know). One clock read also
        // serves the command's duration.
        let start = Instant::now();
        {
            let mut info = self.client.info.locked();
            info.last_cmd = found.map_or("NULL", |s| s.name);
            info.last_active = start;
        }
        let (Some(_), Some(spec)) = (top, found) else {
            let err = match top {
                Some(container) => Error::UnknownSubcommand {
                    sub: args[1].clone(),
                    container: container.name,
                },
                None if name.eq_ignore_ascii_case(b"post") || name.eq_ignore_ascii_case(b"host:") => {
                    tracing::warn!(
                        client = self.id(),
                        "Possible SECURITY ATTACK detected: a HTTP request was sent to fanout; connection aborted"
                    );
                    return Flow::CloseNow;
                }
                None => Error::UnknownCommand {
                    name: name.clone(),
                    args: args[1..].to_vec(),
                },
            };
            return self.reject(None, args, err);
        };
        if !spec.arity_ok(args.len()) {
            return self.reject(Some(spec), args, Error::WrongArity(spec.name));
        }
        self.wire_len = wire_len;
        if self.auth_required() && !spec.has(Flags::NO_AUTH) {
            return self.reject(Some(spec), args, Error::NoAuth);
        }
        // A subscribe keeps its user's rules locked (shared) from this check until the
        // subscription is recorded, so a concurrent ACL change cannot miss it (see
        // `crate::acl`). Other commands only read them, without touching the `Arc`.
        let subscriber = spec.has(Flags::SUBSCRIBES).then(|| self.user.clone());
        let checked = match &subscriber {
            Some(u) => u.check_and_hold(spec, args).map(Some),
            None => self.user.check(spec, args).map(|()| None),
        };
        let _rules = match checked {
            Ok(rules) => rules,
            Err(denied) => {
                self.flag_transaction();
                self.broker.stats.command_calls.rejected(spec);
                return self.acl_denied(spec, args, denied);
            }
        };
        // Cluster mode: keys and shard channels must all be in one slot this node serves
        // (Redis's order: after ACL, before maxmemory). The AOF replay obeys.
        if self.broker.cluster.enabled && !self.replaying && (!spec.keys.is_empty() || spec.cmd == Cmd::Exec) {
            if let Some(err) = self.misrouted(spec, args) {
                if spec.cmd == Cmd::Exec && self.multi.take().is_some() {
                    // Redis discards the transaction and answers with the redirection
                    // itself, not EXECABORT.
                    self.show_no_transaction();
                    self.unwatch_all();
                    self.broker.stats.command_calls.rejected(spec);
                    self.fail(err);
                    return Flow::Continue;
                }
                return self.reject(Some(spec), args, err);
            }
        }
        // maxmemory: what would add data is refused while fanout holds more than the
        // limit (Redis's rule: inside MULTI everything but EXEC/DISCARD, which queue
        // memory too; EXEC when its queue holds such a command).
        if self.broker.over_maxmemory() {
            let denyoom = spec.has(Flags::DENYOOM)
                || (spec.cmd == Cmd::Exec
                    && self
                        .multi
                        .as_ref()
                        .is_some_and(|m| m.queue.iter().any(|(s, _)| s.has(Flags::DENYOOM))))
                || (self.multi.is_some() && !matches!(spec.cmd, Cmd::Exec | Cmd::Discard | Cmd::Quit | Cmd::Reset));
            if denyoom {
                return self.reject(Some(spec), args, Error::Oom);
            }
        }
        // The disk refuses the AOF's writes: so are writes (and PING, so that health
        // checks see it), as Redis does, until a write succeeds again.
        if spec.has(Flags::WRITE) || spec.cmd == Cmd::Ping {
            if let Some(text) = self.broker.aof.stats.misconf() {
                return self.reject(Some(spec), args, Error::Misconf(text));
            }
        }
        if self.multi.is_some() && spec.has(Flags::NO_MULTI) {
            return self.reject(Some(spec), args, Error::NotInMulti);
        }
        if self.proto == Proto::Resp2 && self.subscription_count() > 0 && !spec.has(Flags::SUBSCRIBED_OK) {
            return self.reject(Some(spec), args, Error::SubscribedContext(spec.name));
        }
        // A MONITOR client is a replica to Redis: it may not touch the keyspace or
        // publish, and it is never paused.
        if self.monitoring && spec.has(Flags::WRITE | Flags::READONLY | Flags::MAY_REPLICATE) {
            return self.reject(Some(spec), args, Error::ReplicaKeyspace);
        }
        if self.multi.is_none() && !self.monitoring && self.paused_for(spec) {
            return Flow::Wait(Wait::Pause);
        }
        if let Some(multi) = &mut self.multi {
            if !spec.has(Flags::NOT_QUEUED) {
                multi.bytes += wire_len;
                if multi.bytes as u64 > self.broker.settings.query_buffer_limit.load(Relaxed) {
                    // As for unparsed input over the limit: the client is closed.
                    tracing::warn!(client = self.id(), addr = %self.client.peer, "Closing client whose MULTI queue reached client-query-buffer-limit");
                    Stats::add(&self.broker.stats.qbuf_limit_disconnections, 1);
                    return Flow::CloseNow;
                }
                // Copies, not slices: a slice would keep the read buffer it came from
                // alive until EXEC, far more memory than `bytes` counts.
                multi
                    .queue
                    .push((spec, args.iter().map(|a| Bytes::copy_from_slice(a)).collect()));
                let mut info = self.client.info.locked();
                info.multi = multi.queue.len() as i64;
                info.multi_mem = multi.bytes;
                drop(info);
                self.reply().simple("QUEUED");
                return Flow::Continue;
            }
        }
        self.call(spec, args, start)
    }

    /// The cluster stage: `None` when this node serves the command (or its queued
    /// transaction), else `-MOVED`, `-CROSSSLOT` or `-CLUSTERDOWN`.
    fn misrouted(&self, spec: &'static Spec, args: &[Bytes]) -> Option<Error> {
        // Shard channels are the table's `not_key` key specs (SSUBSCRIBE, SUNSUBSCRIBE,
        // SPUBLISH): Redis's `is_pubsubshard`.
        let shard_pubsub = spec.keys.iter().any(|k| k.not_key());
        // Most keyed commands name one key at a fixed place: no allocation.
        if let Some(i) = spec.single_key_at() {
            let query = crate::cluster::Query {
                keys: args.get(i).map(|k| &k[..]).into_iter(),
                shard_pubsub,
                readonly: self.readonly,
                write: spec.has(Flags::WRITE),
            };
            return self.route_error(query);
        }
        let single = [(spec, args)];
        let queued: Vec<(&'static Spec, &[Bytes])>;
        let cmds: &[(&'static Spec, &[Bytes])] = if spec.cmd == Cmd::Exec {
            let m = self.multi.as_ref()?;
            queued = m.queue.iter().map(|(s, a)| (*s, &a[..])).collect();
            &queued
        } else {
            &single
        };
        let mut keys: Vec<&[u8]> = Vec::new();
        let mut write = false;
        for (s, a) in cmds {
            write |= s.has(Flags::WRITE);
            // A malformed key layout is the command's own error to report.
            if let Ok(positions) = s.key_positions(a, true) {
                keys.extend(positions.iter().map(|&(i, _)| &a[i][..]));
            }
        }
        let query = crate::cluster::Query {
            keys: keys.into_iter(),
            shard_pubsub,
            readonly: self.readonly,
            write,
        };
        self.route_error(query)
    }

    fn route_error<'a>(&self, query: crate::cluster::Query<'a, impl Iterator<Item = &'a [u8]>>) -> Option<Error> {
        match self.broker.cluster.route(&self.broker.settings, query) {
            crate::cluster::Route::Here => None,
            crate::cluster::Route::Moved { slot, addr } => Some(Error::Moved { slot, addr }),
            crate::cluster::Route::CrossSlot => Some(Error::CrossSlot),
            crate::cluster::Route::Down(why) => Some(Error::ClusterDown(why)),
        }
    }

    /// Does CLIENT PAUSE hold this command now? Redis holds every command under ALL,
    /// and under WRITE those that write or may propagate (PUBLISH, SPUBLISH), and an
    /// EXEC whose queue holds such a command.
    fn paused_for(&self, spec: &Spec) -> bool {
        match self.broker.pause.mode() {
            PauseMode::Off => false,
            PauseMode::All => true,
            PauseMode::Write => {
                writes(spec)
                    || (spec.cmd == Cmd::Exec
                        && self
                            .multi
                            .as_ref()
                            .is_some_and(|m| m.queue.iter().any(|(s, _)| writes(s))))
            }
        }
    }

    /// Refuses a command before it runs: the error, counted, and, inside MULTI, the
    /// transaction flagged so that EXEC aborts. A refused EXEC ends the transaction and
    /// says why, and MONITOR still sees it (Redis's `execCommandAbort`).
    fn reject(&mut self, spec: Option<&'static Spec>, args: &[Bytes], err: Error) -> Flow {
        self.flag_transaction();
        let Some(spec) = spec else {
            self.fail(err);
            return Flow::Continue;
        };
        self.broker.stats.command_calls.rejected(spec);
        if spec.cmd != Cmd::Exec {
            self.fail(err);
            return Flow::Continue;
        }
        if self.multi.take().is_some() {
            self.show_no_transaction();
        }
        self.unwatch_all();
        self.fail(Error::ExecAbortBecause(Box::new(err)));
        if self.broker.monitors.any() {
            self.feed_monitors(args);
        }
        Flow::Continue
    }

    /// Runs a command that passed every check, then accounts for it (Redis's `call`);
    /// `start` is when it began.
    pub(super) fn call(&mut self, spec: &'static Spec, args: &[Bytes], start: Instant) -> Flow {
        let errors_before = self.errors_replied;
        let flow = self.run(spec, args);
        let usec = start.elapsed().as_micros() as u64;
        let stats = &self.broker.stats;
        stats
            .command_calls
            .count(spec, usec, self.broker.settings.latency_tracking.load(Relaxed));
        if self.errors_replied != errors_before {
            stats.command_calls.failed(spec);
        }
        let shown = spec.redacted(args);
        self.broker.record_call(spec, &shown, usec, self.client.as_ref());
        if self.broker.monitors.any() && !spec.has(Flags::ADMIN | Flags::SKIP_MONITOR) {
            self.feed_monitors(&shown);
        }
        flow
    }

    /// One MONITOR line for a command (already redacted). A monitoring client's own
    /// line follows its reply, as Redis writes it, so it goes into this session's
    /// replies; other monitors get it in their outboxes.
    fn feed_monitors(&mut self, shown: &[Bytes]) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        let addr = if self.client.unix {
            format!("unix:{}", self.client.local)
        } else {
            self.client.peer.clone()
        };
        let line = crate::client::monitors::line(now, self.db, &addr, shown);
        self.broker.monitors.feed(self.id(), &line, &self.broker.settings);
        if self.monitoring {
            self.out.extend_from_slice(&line);
        }
    }

    pub(super) fn run(&mut self, spec: &'static Spec, args: &[Bytes]) -> Flow {
        match spec.cmd {
            Cmd::Publish => self.publish(Namespace::Global, args),
            Cmd::Spublish => self.publish(Namespace::Shard, args),
            Cmd::Subscribe | Cmd::Psubscribe | Cmd::Ssubscribe => self.subscribe(spec, &args[1..]),
            Cmd::Unsubscribe | Cmd::Punsubscribe | Cmd::Sunsubscribe => self.unsubscribe(spec, &args[1..]),
            Cmd::PubsubChannels
            | Cmd::PubsubShardchannels
            | Cmd::PubsubNumsub
            | Cmd::PubsubShardnumsub
            | Cmd::PubsubNumpat
            | Cmd::PubsubHelp => self.pubsub(spec.cmd, args),
            Cmd::Ping => self.ping(args),
            Cmd::Echo => {
                self.reply().bulk(&args[1]);
                Flow::Continue
            }
            Cmd::Quit => {
                self.ok();
                Flow::CloseAfterReply
            }
            Cmd::Reset => self.reset(),
            Cmd::Hello => self.hello(args),
            Cmd::Auth => self.auth(args),
            Cmd::Select => self.select(args),
            Cmd::ClientId
            | Cmd::ClientSetname
            | Cmd::ClientGetname
            | Cmd::ClientSetinfo
            | Cmd::ClientInfo
            | Cmd::ClientList
            | Cmd::ClientKill
            | Cmd::ClientReply
            | Cmd::ClientNoEvict
            | Cmd::ClientNoTouch
            | Cmd::ClientOverflow
            | Cmd::ClientTrackinginfo
            | Cmd::ClientGetredir
            | Cmd::ClientUnblock
            | Cmd::ClientHelp => self.client_command(spec.cmd, args),
            Cmd::ClientPause | Cmd::ClientUnpause => self.client_pause(spec.cmd, args),
            Cmd::Multi => self.multi(),
            Cmd::Exec => self.exec(),
            Cmd::Discard => self.discard(),
            Cmd::Watch => self.watch(&args[1..]),
            Cmd::Unwatch => self.unwatch_reply(),
            Cmd::Command
            | Cmd::CommandCount
            | Cmd::CommandDocs
            | Cmd::CommandInfo
            | Cmd::CommandList
            | Cmd::CommandGetkeys
            | Cmd::CommandGetkeysandflags
            | Cmd::CommandHelp => self.command_command(spec.cmd, args),
            Cmd::Info => self.info(args),
            Cmd::ConfigGet | Cmd::ConfigSet | Cmd::ConfigResetstat | Cmd::ConfigHelp => {
                self.config_command(spec.cmd, args)
            }
            Cmd::AclCat
            | Cmd::AclDeluser
            | Cmd::AclDryrun
            | Cmd::AclGenpass
            | Cmd::AclGetuser
            | Cmd::AclList
            | Cmd::AclLoad
            | Cmd::AclLog
            | Cmd::AclSave
            | Cmd::AclSetuser
            | Cmd::AclUsers
            | Cmd::AclWhoami
            | Cmd::AclHelp => self.acl_command(spec.cmd, args),
            Cmd::Flushall => self.flush_db(None, args),
            // fanout has no functions: there is nothing to flush (see README).
            Cmd::FunctionFlush => {
                self.ok();
                Flow::Continue
            }
            Cmd::Debug => self.debug(args),
            Cmd::Bgrewriteaof => self.bgrewriteaof(),
            Cmd::Bgsave | Cmd::Save => self.save(),
            Cmd::Monitor => self.monitor(),
            Cmd::Shutdown => self.shutdown(args),
            Cmd::Time => self.time(),
            Cmd::Dbsize => self.dbsize(),
            Cmd::Lastsave => self.lastsave(),
            Cmd::SlowlogGet | Cmd::SlowlogLen | Cmd::SlowlogReset | Cmd::SlowlogHelp => self.slowlog(spec.cmd, args),
            Cmd::LatencyLatest
            | Cmd::LatencyHistory
            | Cmd::LatencyReset
            | Cmd::LatencyDoctor
            | Cmd::LatencyHistogram
            | Cmd::LatencyHelp => self.latency(spec.cmd, args),
            Cmd::MemoryUsage
            | Cmd::MemoryStats
            | Cmd::MemoryDoctor
            | Cmd::MemoryPurge
            | Cmd::MemoryMallocStats
            | Cmd::MemoryHelp => self.memory(spec.cmd, args),
            Cmd::Del
            | Cmd::Unlink
            | Cmd::Exists
            | Cmd::Type
            | Cmd::Keys
            | Cmd::Scan
            | Cmd::Randomkey
            | Cmd::Flushdb
            | Cmd::Rename
            | Cmd::Renamenx
            | Cmd::Copy
            | Cmd::Touch
            | Cmd::Expire
            | Cmd::Pexpire
            | Cmd::Expireat
            | Cmd::Pexpireat
            | Cmd::Ttl
            | Cmd::Pttl
            | Cmd::Expiretime
            | Cmd::Pexpiretime
            | Cmd::Persist
            | Cmd::ObjectEncoding
            | Cmd::ObjectIdletime
            | Cmd::ObjectFreq
            | Cmd::ObjectRefcount
            | Cmd::ObjectHelp => self.keys(spec, args),
            Cmd::Xadd
            | Cmd::Xrange
            | Cmd::Xrevrange
            | Cmd::Xlen
            | Cmd::Xdel
            | Cmd::Xtrim
            | Cmd::Xread
            | Cmd::Xreadgroup
            | Cmd::Xack
            | Cmd::Xpending
            | Cmd::Xclaim
            | Cmd::Xautoclaim
            | Cmd::Xsetid
            | Cmd::XgroupCreate
            | Cmd::XgroupCreateconsumer
            | Cmd::XgroupDelconsumer
            | Cmd::XgroupDestroy
            | Cmd::XgroupSetid
            | Cmd::XgroupHelp
            | Cmd::XinfoStream
            | Cmd::XinfoGroups
            | Cmd::XinfoConsumers
            | Cmd::XinfoHelp => self.streams(spec, args),
            Cmd::Readonly
            | Cmd::Readwrite
            | Cmd::Asking
            | Cmd::Cluster
            | Cmd::ClusterAddslots
            | Cmd::ClusterAddslotsrange
            | Cmd::ClusterBumpepoch
            | Cmd::ClusterCountFailureReports
            | Cmd::ClusterCountkeysinslot
            | Cmd::ClusterDelslots
            | Cmd::ClusterDelslotsrange
            | Cmd::ClusterFailover
            | Cmd::ClusterFlushslots
            | Cmd::ClusterForget
            | Cmd::ClusterGetkeysinslot
            | Cmd::ClusterHelp
            | Cmd::ClusterInfo
            | Cmd::ClusterKeyslot
            | Cmd::ClusterLinks
            | Cmd::ClusterMeet
            | Cmd::ClusterMyid
            | Cmd::ClusterMyshardid
            | Cmd::ClusterNodes
            | Cmd::ClusterReplicas
            | Cmd::ClusterReplicate
            | Cmd::ClusterReset
            | Cmd::ClusterSaveconfig
            | Cmd::ClusterSetConfigEpoch
            | Cmd::ClusterSetslot
            | Cmd::ClusterShards
            | Cmd::ClusterSlaves
            | Cmd::ClusterSlots
            | Cmd::ClusterReload => self.cluster(spec.cmd, args),
            Cmd::WebhookAdd | Cmd::WebhookDel | Cmd::WebhookList | Cmd::WebhookInfo | Cmd::WebhookHelp => {
                self.webhook(spec.cmd, args)
            }
            // Containers reach here only without their subcommand, which their arity
            // refuses first; Redis's reply for a container it cannot run is this.
            Cmd::Pubsub
            | Cmd::Client
            | Cmd::Config
            | Cmd::Acl
            | Cmd::Function
            | Cmd::Slowlog
            | Cmd::Latency
            | Cmd::Memory
            | Cmd::Object
            | Cmd::Xgroup
            | Cmd::Xinfo
            | Cmd::Webhook => {
                self.fail(Error::WrongArity(spec.name));
                Flow::Continue
            }
        }
    }
}

/// Commands CLIENT PAUSE WRITE holds.
fn writes(spec: &Spec) -> bool {
    spec.has(Flags::WRITE | Flags::MAY_REPLICATE)
}

impl Session {
    /// Inside MULTI, a refused command makes EXEC abort (Redis's `flagTransaction`).
    pub(super) fn flag_transaction(&mut self) {
        if let Some(m) = &mut self.multi {
            m.dirty = true;
        }
    }

    /// A watched key changed since WATCH.
    pub(super) fn watch_broken(&self) -> bool {
        self.watcher.load(Ordering::Acquire)
    }
}
