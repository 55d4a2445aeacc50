//! SUBSCRIBE and friends, PUBLISH, SPUBLISH and PUBSUB.

use bytes::Bytes;

use super::errors::Error;
use super::{Flow, Session};
use crate::pubsub::Namespace;
use crate::spec::{Cmd, Spec};
use crate::sync::RwLockExt;

/// Which of the three subscription families a command acts on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Channel,
    Pattern,
    Shard,
}

impl Family {
    fn of(cmd: Cmd) -> Family {
        match cmd {
            Cmd::Subscribe | Cmd::Unsubscribe => Family::Channel,
            Cmd::Psubscribe | Cmd::Punsubscribe => Family::Pattern,
            _ => Family::Shard,
        }
    }
}

impl Session {
    fn set_of(&mut self, f: Family) -> &mut std::collections::HashSet<Bytes> {
        match f {
            Family::Channel => &mut self.channels,
            Family::Pattern => &mut self.patterns,
            Family::Shard => &mut self.shard_channels,
        }
    }

    /// The count a confirmation reports: channels + patterns, or shard channels alone.
    fn confirmation_count(&self, f: Family) -> usize {
        match f {
            Family::Shard => self.shard_channels.len(),
            _ => self.channels.len() + self.patterns.len(),
        }
    }

    fn confirm(&mut self, kind: &str, name: Option<&[u8]>, count: usize) {
        let mut e = self.push();
        e.push(3);
        e.bulk(kind.as_bytes());
        e.bulk_or_null(name);
        e.integer(count as i64);
    }

    /// SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE; each confirmation is named after the command.
    pub(super) fn subscribe(&mut self, spec: &'static Spec, names: &[Bytes]) -> Flow {
        let (family, cmd) = (Family::of(spec.cmd), spec.name);
        // Redis lets SUBSCRIBE and PSUBSCRIBE run inside EXEC, for old clients, but not
        // SSUBSCRIBE.
        if self.in_exec && family == Family::Shard {
            self.fail(Error::DenyBlocking("SSUBSCRIBE"));
            return Flow::Continue;
        }
        let limit = self
            .broker
            .settings
            .max_subscriptions
            .load(std::sync::atomic::Ordering::Relaxed) as usize;
        if limit > 0 {
            let set = self.set_of(family);
            let new: std::collections::HashSet<&Bytes> = names.iter().filter(|n| !set.contains(*n)).collect();
            if self.subscription_count() + new.len() > limit {
                let msg = format!(
                    "ERR max-subscriptions-per-client reached: this connection may hold at most {limit} subscriptions"
                );
                self.error(&msg);
                return Flow::Continue;
            }
        }
        if let Some(flow) = self.wait_for_bus_interest(family, names) {
            return flow;
        }
        let mut added = Vec::new();
        for name in names {
            // A copy, not a slice: a slice would pin the whole read buffer it came from
            // for as long as the subscription lasts (16 KB per idle subscriber).
            if !self.set_of(family).contains(name) {
                self.set_of(family).insert(Bytes::copy_from_slice(name));
                added.push(name.clone());
            }
            let count = self.confirmation_count(family);
            self.confirm(cmd, Some(name), count);
        }
        self.sync_subscription_info();
        // The confirmations must reach the outbox before the registry can route a
        // message here: a client must never see a message before its confirmation.
        self.flush();
        let outbox = self.outbox().clone();
        let reg = &self.broker.registry;
        for name in &added {
            match family {
                Family::Channel => reg.subscribe(Namespace::Global, name, &outbox),
                Family::Shard => reg.subscribe(Namespace::Shard, name, &outbox),
                Family::Pattern => reg.psubscribe(name, &outbox),
            }
        }
        self.release_bus_pins();
        Flow::Continue
    }

    /// With a cluster bus, a subscribe that needs interest the bus does not hold yet
    /// takes it first and waits for the NATS server to confirm it (`Wait::Bus`): Redis
    /// Cluster delivers every PUBLISH made after a SUBSCRIBE's confirmation, on any
    /// node, and so must fanout. The interest is pinned until the subscriptions hold
    /// their own (the registry reports them), then released.
    fn wait_for_bus_interest(&mut self, family: Family, names: &[Bytes]) -> Option<Flow> {
        if std::mem::take(&mut self.bus_ready) || self.in_exec {
            return None;
        }
        let bus = self.broker.cluster.bus()?.clone();
        let ns = match family {
            Family::Channel => Some(Namespace::Global),
            // Nothing to wait for where SPUBLISH stays on this node.
            Family::Shard if !bus.shard_crosses() => return None,
            Family::Shard => Some(Namespace::Shard),
            Family::Pattern => None,
        };
        let set = self.set_of(family);
        let missing: Vec<Bytes> = names
            .iter()
            .filter(|n| !set.contains(*n) && !bus.has_interest(ns, n))
            .cloned()
            .collect();
        if missing.is_empty() || !bus.nats().stats().connected {
            return None;
        }
        for n in missing {
            match ns {
                Some(ns) => crate::pubsub::Interest::channel(&*bus, ns, &n, true),
                None => crate::pubsub::Interest::patterns(&*bus, true),
            }
            self.bus_pins.push((ns, n));
        }
        Some(Flow::Wait(super::Wait::Bus))
    }

    pub(super) fn release_bus_pins(&mut self) {
        if self.bus_pins.is_empty() {
            return;
        }
        if let Some(bus) = self.broker.cluster.bus() {
            for (ns, n) in self.bus_pins.drain(..) {
                match ns {
                    Some(ns) => crate::pubsub::Interest::channel(&**bus, ns, &n, false),
                    None => crate::pubsub::Interest::patterns(&**bus, false),
                }
            }
        }
    }

    pub(super) fn unsubscribe(&mut self, spec: &'static Spec, names: &[Bytes]) -> Flow {
        let (family, cmd) = (Family::of(spec.cmd), spec.name);
        let names: Vec<Bytes> = if names.is_empty() {
            self.set_of(family).iter().cloned().collect()
        } else {
            names.to_vec()
        };
        if names.is_empty() {
            let count = self.confirmation_count(family);
            self.confirm(cmd, None, count);
            return Flow::Continue;
        }
        let id = self.id();
        for name in &names {
            if self.set_of(family).remove(name) {
                let reg = &self.broker.registry;
                match family {
                    Family::Channel => reg.unsubscribe(Namespace::Global, name, id),
                    Family::Shard => reg.unsubscribe(Namespace::Shard, name, id),
                    Family::Pattern => reg.punsubscribe(name, id),
                }
            }
            let count = self.confirmation_count(family);
            self.confirm(cmd, Some(name), count);
        }
        self.sync_subscription_info();
        Flow::Continue
    }

    pub(super) fn publish(&mut self, ns: Namespace, args: &[Bytes]) -> Flow {
        let broker = self.broker.clone();
        let bus = broker.cluster.bus();
        if let Some(bus) = bus {
            if let Err(max) = bus.check_size(ns, &args[1], args[2].len()) {
                self.fail(Error::BusTooLarge(args[2].len(), max));
                return Flow::Continue;
            }
        }
        let mut to_self = Vec::new();
        let id = self.id();
        // Shared with every other publisher; an EXEC that publishes holds it alone (and
        // already, when this runs inside it).
        let _gate = (!self.in_exec).then(|| broker.publish_gate.read_locked());
        let n = broker
            .registry
            .publish(ns, &args[1], &args[2], id, &mut to_self, &mut self.batch);
        // Then to the other nodes (the reply counts this node's receivers, as in Redis
        // Cluster).
        if let Some(bus) = bus {
            self.bus_wake |= bus.publish(ns, &args[1], &args[2]);
        }
        self.reply().integer(n as i64);
        // Redis 7.2 order: the publisher's reply, then its own copies of the message.
        for frame in to_self {
            self.out.extend_from_slice(&frame);
        }
        Flow::Continue
    }

    /// After a topology reload: the shard channels whose slot this node no longer serves
    /// are unsubscribed with the `sunsubscribe` pushes Redis sends when a slot leaves.
    pub fn drop_moved_shard_channels(&mut self) {
        let Some(t) = self.broker.cluster.topology() else {
            return;
        };
        let gone: Vec<Bytes> = self
            .shard_channels
            .iter()
            .filter(|c| !t.in_my_shard(crate::cluster::slots::slot_of(c)))
            .cloned()
            .collect();
        if !gone.is_empty() {
            self.unsubscribe(crate::spec::of(Cmd::Sunsubscribe), &gone);
            self.flush();
        }
    }

    pub(super) fn pubsub(&mut self, cmd: Cmd, args: &[Bytes]) -> Flow {
        let reg = &self.broker.registry;
        match cmd {
            Cmd::PubsubChannels | Cmd::PubsubShardchannels => {
                if args.len() > 3 {
                    self.fail(Error::SubcommandSyntax {
                        sub: args[1].clone(),
                        container: "pubsub",
                    });
                    return Flow::Continue;
                }
                let ns = if cmd == Cmd::PubsubChannels {
                    Namespace::Global
                } else {
                    Namespace::Shard
                };
                let list = reg.channels(ns, args.get(2).map(|p| &p[..]));
                let mut e = self.reply();
                e.array(list.len());
                for ch in &list {
                    e.bulk(ch);
                }
            }
            Cmd::PubsubNumsub | Cmd::PubsubShardnumsub => {
                let ns = if cmd == Cmd::PubsubNumsub {
                    Namespace::Global
                } else {
                    Namespace::Shard
                };
                let counts: Vec<usize> = args[2..].iter().map(|c| reg.numsub(ns, c)).collect();
                let mut e = self.reply();
                e.array(2 * counts.len());
                for (ch, n) in args[2..].iter().zip(counts) {
                    e.bulk(ch);
                    e.integer(n as i64);
                }
            }
            Cmd::PubsubNumpat => {
                let n = reg.patterns.len();
                self.reply().integer(n as i64);
            }
            _ => self.help(
                "PUBSUB",
                &[
                    "CHANNELS [<pattern>]",
                    "    Return the currently active channels matching a <pattern> (default: '*').",
                    "NUMPAT",
                    "    Return number of subscriptions to patterns.",
                    "NUMSUB [<channel> ...]",
                    "    Return the number of subscribers for the specified channels, excluding",
                    "    pattern subscriptions(default: no channels).",
                    "SHARDCHANNELS [<pattern>]",
                    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                    "SHARDNUMSUB [<shardchannel> ...]",
                    "    Return the number of subscribers for the specified shard level channel(s)",
                ],
            ),
        }
        Flow::Continue
    }
}
