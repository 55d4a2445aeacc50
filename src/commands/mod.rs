//! Command dispatch and the per-connection command state.
//!
//! A [`Session`] is everything a connection knows about itself (protocol, subscriptions,
//! reply mode, authentication). It does no I/O: commands write replies into
//! `Session::out`, which the connection hands to its outbox, and publish through the
//! shared [`Broker`]. That keeps every command testable without a socket.
//!
//! The checks before a command runs follow Redis's order exactly, because clients and
//! Redis's own tests see which error wins: unknown command, unknown subcommand, arity,
//! authentication, ACL permissions, then the RESP2 subscribed-context rule.

mod acl;
mod client;
mod connection;
mod pubsub;
mod server;

use crate::sync::LockExt;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::broker::Broker;
use crate::client::{ClientHandle, Outbox};
use crate::protocol::reply::{Encoder, Proto};
use crate::pubsub::Batch;
use crate::spec::{self as table, Spec};
use crate::stats::Stats;

/// What the connection should do after a command.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Flow {
    Continue,
    /// Send what is queued, then close (QUIT, killing oneself).
    CloseAfterReply,
    /// Close without replying (cross-protocol requests such as an HTTP `POST`).
    CloseNow,
}

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

    pub fn error(&mut self, msg: &str) {
        Stats::add(&self.broker.stats.error_replies, 1);
        self.reply().error(msg);
    }

    /// A protocol error's reply, sent before the connection closes.
    pub fn protocol_error(&mut self, msg: &[u8]) {
        Stats::add(&self.broker.stats.error_replies, 1);
        self.reply().error_bytes(msg);
    }

    pub fn ok(&mut self) {
        self.reply().simple("OK");
    }

    pub fn subscription_count(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }

    /// Wakes the writers of the subscribers this connection published to, then hands
    /// the replies gathered so far to the outbox.
    ///
    /// The connection's own writer is woken last on purpose: tokio runs the task woken
    /// last first, so a publisher waiting for its reply gets it before the fan-out to
    /// subscribers is written (Redis, too, writes the publisher first).
    pub fn flush(&mut self) {
        self.broker.registry.end_batch(&mut self.batch);
        if !self.out.is_empty() {
            let bytes = self.out.split().freeze();
            self.client.outbox.push_reply(bytes, &self.broker.settings);
        }
    }

    /// Runs one request. `wire_len` is its size on the wire (CLIENT LIST `qbuf`).
    pub fn execute(&mut self, args: &[Bytes], wire_len: usize) -> Flow {
        let flow = self.dispatch(args, wire_len);
        self.sink.clear();
        flow
    }

    fn dispatch(&mut self, args: &[Bytes], wire_len: usize) -> Flow {
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
        let Some(spec) = table::lookup(name) else {
            if name.eq_ignore_ascii_case(b"post") || name.eq_ignore_ascii_case(b"host:") {
                tracing::warn!(
                    client = self.id(),
                    "Possible SECURITY ATTACK detected: a HTTP request was sent to fanout; connection aborted"
                );
                return Flow::CloseNow;
            }
            let msg = unknown_command(name, &args[1..]);
            self.error(&msg);
            return Flow::Continue;
        };
        let spec = if spec.subcommands.is_empty() || args.len() < 2 {
            spec
        } else {
            match spec.sub(&args[1]) {
                Some(sub) => sub,
                None => {
                    let msg = format!(
                        "ERR unknown subcommand '{}'. Try {} HELP.",
                        String::from_utf8_lossy(&args[1][..args[1].len().min(128)]),
                        spec.name.to_ascii_uppercase()
                    );
                    self.error(&msg);
                    return Flow::Continue;
                }
            }
        };
        if (spec.arity > 0 && args.len() != spec.arity as usize)
            || (spec.arity < 0 && args.len() < (-spec.arity) as usize)
        {
            let msg = format!("ERR wrong number of arguments for '{}' command", spec.name);
            self.error(&msg);
            return Flow::Continue;
        }
        {
            let mut info = self.client.info.locked();
            info.last_cmd = spec.name;
            info.last_active = Instant::now();
        }
        self.wire_len = wire_len;
        let flow = if self.auth_required() && !spec.no_auth() {
            self.error("NOAUTH Authentication required.");
            Flow::Continue
        } else {
            // A subscribe keeps its user's rules locked (shared) from this check until the
            // subscription is recorded, so a concurrent ACL change cannot miss it (see
            // `crate::acl`). Other commands only read them, without touching the `Arc`.
            let subscriber = crate::acl::holds_rules(spec).then(|| self.user.clone());
            let checked = match &subscriber {
                Some(u) => u.check_and_hold(spec, args).map(Some),
                None => self.user.check(spec, args).map(|()| None),
            };
            match checked {
                Err(denied) => self.acl_denied(spec, args, denied),
                Ok(_rules) => {
                    if self.proto == Proto::Resp2 && self.subscription_count() > 0 && !spec.is_pubsub_context_allowed()
                    {
                        let msg = format!(
                            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                            spec.name
                        );
                        self.error(&msg);
                        Flow::Continue
                    } else {
                        self.run(spec, args)
                    }
                }
            }
        };
        flow
    }

    fn run(&mut self, spec: &'static Spec, args: &[Bytes]) -> Flow {
        self.broker.stats.command_calls.count(spec);
        match spec.name {
            "publish" => self.publish(crate::pubsub::Namespace::Global, args),
            "spublish" => self.publish(crate::pubsub::Namespace::Shard, args),
            "subscribe" | "psubscribe" | "ssubscribe" => self.subscribe(spec.name, &args[1..]),
            "unsubscribe" | "punsubscribe" | "sunsubscribe" => self.unsubscribe(spec.name, &args[1..]),
            "pubsub|channels"
            | "pubsub|shardchannels"
            | "pubsub|numsub"
            | "pubsub|shardnumsub"
            | "pubsub|numpat"
            | "pubsub|help" => self.pubsub(spec.name, args),
            "ping" => self.ping(args),
            "echo" => {
                self.reply().bulk(&args[1]);
                Flow::Continue
            }
            "quit" => {
                self.ok();
                Flow::CloseAfterReply
            }
            "reset" => self.reset(),
            "hello" => self.hello(args),
            "auth" => self.auth(args),
            "select" => self.select(args),
            "info" => self.info(args),
            "flushall" | "function|flush" => {
                self.ok();
                Flow::Continue
            }
            "debug" => {
                self.error("ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.");
                Flow::Continue
            }
            name if name.starts_with("client|") => self.client_command(name, args),
            name if name.starts_with("acl|") => self.acl_command(name, args),
            name if name.starts_with("command|") || name == "command" => self.command_command(name, args),
            name if name.starts_with("config|") => self.config_command(name, args),
            // A container called without a subcommand that passed its arity (`COMMAND`
            // alone is the only such case and is handled above).
            _ => {
                let msg = unknown_command(&args[0], &args[1..]);
                self.error(&msg);
                Flow::Continue
            }
        }
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
        e.simple("    Prints this help.");
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
            reg.patterns.unsubscribe(&p, id);
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

/// Parses an integer argument as Redis's `string2ll` does: an optional `-` and digits,
/// no `+`, no leading zeros (`01`, `-0` are refused), no spaces.
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    let valid = match digits {
        [] => false,
        [b'0'] => digits.len() == b.len(),
        [first, ..] => *first != b'0' && digits.iter().all(u8::is_ascii_digit),
    };
    if !valid {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Redis's unknown-command text: the name cut to 128 bytes, then each argument quoted
/// while the argument text is shorter than 128 characters, each cut to the room left.
fn unknown_command(name: &[u8], args: &[Bytes]) -> String {
    let mut list = String::new();
    for a in args {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        let text = c_string(a);
        let cut: String = text.chars().take(room).collect();
        list.push('\'');
        list.push_str(&cut);
        list.push_str("' ");
    }
    let name = c_string(&name[..name.len().min(128)]);
    format!("ERR unknown command '{name}', with args beginning with: {list}")
}

/// Redis formats these with `%s`, which stops at the first NUL byte.
fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"01",
            b"-0",
            b" 1",
            b"1 ",
            b"1.0",
            b"9223372036854775808",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn unknown_command_text() {
        assert_eq!(
            unknown_command(b"NOSUCH", &[Bytes::from_static(b"a"), Bytes::from_static(b"b")]),
            "ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            unknown_command(b"x", &[]),
            "ERR unknown command 'x', with args beginning with: "
        );
        let long = Bytes::from(vec![b'z'; 300]);
        let msg = unknown_command(b"x", &[long.clone(), long]);
        assert!(msg.ends_with(&format!("'{}' ", "z".repeat(128))));
    }
}
