//! Connection commands: PING, RESET, HELLO, AUTH, SELECT (ECHO and QUIT are one-liners
//! in the dispatcher).

use crate::sync::LockExt;
use bytes::Bytes;

use super::errors::Error;
use super::{Flow, ReplyMode, Session};
use crate::protocol::reply::Proto;
use crate::stats::Stats;

/// Redis's text for failed credentials.
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

impl Session {
    pub(super) fn ping(&mut self, args: &[Bytes]) -> Flow {
        if args.len() > 2 {
            self.error("ERR wrong number of arguments for 'ping' command");
            return Flow::Continue;
        }
        if self.proto == Proto::Resp2 && self.subscription_count() > 0 {
            let mut e = self.reply();
            e.array(2);
            e.bulk(b"pong");
            e.bulk(args.get(1).map_or(&b""[..], |m| &m[..]));
        } else if let Some(m) = args.get(1) {
            self.reply().bulk(m);
        } else {
            self.reply().simple("PONG");
        }
        Flow::Continue
    }

    /// Back to the state of a new connection, keeping the id (and library info, as 7.2).
    pub(super) fn reset(&mut self) -> Flow {
        self.drop_subscriptions();
        self.multi = None;
        self.unwatch_all();
        self.broker.monitors.remove(self.id());
        self.monitoring = false;
        self.db = 0;
        self.readonly = false;
        self.set_proto(Proto::Resp2);
        self.reply_mode = ReplyMode::On;
        self.silenced = false;
        // Logged in again as `default`, authenticated only if it needs no password.
        self.authenticated = !self.broker.acl.default_needs_auth();
        self.user = self.broker.acl.default_user();
        {
            let mut info = self.client.info.locked();
            info.user = self.user.clone();
            info.name = None;
            info.db = 0;
            info.no_evict = false;
            info.no_touch = false;
            info.monitor = false;
            info.multi = -1;
            info.multi_mem = 0;
        }
        self.client.outbox.set_policy(None);
        self.reply().simple("RESET");
        Flow::Continue
    }

    /// Logs in as an ACL user (`default` when `user` is not given); `command` is the
    /// command as typed, for ACL LOG. `Err` carries the error reply.
    fn check_credentials(&mut self, command: &Bytes, user: Option<&Bytes>, pass: &[u8]) -> Result<(), &'static str> {
        let acl = &self.broker.acl;
        let name = match user {
            Some(u) => u.clone(),
            None if acl.default_nopass() => {
                return Err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
            }
            None => Bytes::from_static(b"default"),
        };
        let client = &self.client;
        match acl.authenticate(&name, pass, |u| client.info.locked().user = u.clone()) {
            Some(u) => {
                self.user = u;
                self.authenticated = true;
                Ok(())
            }
            None => {
                Stats::add(&self.broker.stats.auth_failures, 1);
                // Never log the password.
                tracing::warn!(client = self.id(), addr = %self.client.peer, user = %String::from_utf8_lossy(&name), "failed AUTH attempt");
                self.log_acl(
                    (crate::acl::rules::Denial::Auth, crate::acl::log::Context::Toplevel),
                    command.clone(),
                    Some(name),
                );
                Err(WRONGPASS)
            }
        }
    }

    pub(super) fn auth(&mut self, args: &[Bytes]) -> Flow {
        let result = match args.len() {
            2 => self.check_credentials(&args[0], None, &args[1]),
            3 => self.check_credentials(&args[0], Some(&args[1]), &args[2]),
            _ => Err("ERR syntax error"),
        };
        match result {
            Ok(()) => self.ok(),
            Err(e) => self.error(e),
        }
        Flow::Continue
    }

    pub(super) fn hello(&mut self, args: &[Bytes]) -> Flow {
        let mut version = None;
        if let Some(v) = args.get(1) {
            match super::parse_i64(v) {
                None => {
                    self.fail(Error::ProtocolVersionNotInteger);
                    return Flow::Continue;
                }
                Some(v) if v != 2 && v != 3 => {
                    self.fail(Error::NoProto);
                    return Flow::Continue;
                }
                Some(v) => version = Some(v),
            }
        }
        let mut credentials = None;
        let mut name = None;
        let mut j = 2;
        while j < args.len() {
            let more = args.len() - 1 - j;
            let opt = &args[j];
            if opt.eq_ignore_ascii_case(b"AUTH") && more >= 2 {
                credentials = Some((args[j + 1].clone(), args[j + 2].clone()));
                j += 3;
            } else if opt.eq_ignore_ascii_case(b"SETNAME") && more >= 1 {
                if let Err(e) = super::client::validate_name(&args[j + 1], "Client names") {
                    self.error(&e);
                    return Flow::Continue;
                }
                name = Some(args[j + 1].clone());
                j += 2;
            } else {
                self.fail(Error::Quoted("ERR Syntax error in HELLO option '", opt.clone(), "'"));
                return Flow::Continue;
            }
        }
        if let Some((user, pass)) = credentials {
            if let Err(e) = self.check_credentials(&args[0], Some(&user), &pass) {
                self.error(e);
                return Flow::Continue;
            }
        }
        if !self.authenticated {
            self.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
            return Flow::Continue;
        }
        if let Some(name) = name {
            self.client.info.locked().name = (!name.is_empty()).then_some(name);
        }
        if let Some(v) = version {
            self.set_proto(if v == 3 { Proto::Resp3 } else { Proto::Resp2 });
        }
        let id = self.id();
        let proto = self.proto as i64;
        let cluster = self.broker.cluster.enabled;
        // A node listed as a replica in the topology says so, as a Redis Cluster replica
        // does (CLUSTER NODES calls it `myself,slave`).
        let replica = self.broker.cluster.topology().is_some_and(|t| !t.me().primary);
        let mut e = self.reply();
        e.map(7);
        e.bulk(b"server");
        e.bulk(b"redis");
        e.bulk(b"version");
        e.bulk(crate::REDIS_VERSION.as_bytes());
        e.bulk(b"proto");
        e.integer(proto);
        e.bulk(b"id");
        e.integer(id as i64);
        e.bulk(b"mode");
        e.bulk(if cluster { b"cluster" as &[u8] } else { b"standalone" });
        e.bulk(b"role");
        e.bulk(if replica { b"replica" as &[u8] } else { b"master" });
        e.bulk(b"modules");
        e.array(0);
        Flow::Continue
    }

    pub(super) fn select(&mut self, args: &[Bytes]) -> Flow {
        match super::parse_i64(&args[1]) {
            None => self.fail(Error::NotInteger),
            Some(n) if n < 0 || n as u64 >= self.broker.settings.databases() => self.fail(Error::DbIndexOutOfRange),
            Some(n) if n != 0 && self.broker.cluster.enabled => self.fail(Error::SelectInCluster),
            // Pub/sub ignores the database, as in Redis; only CLIENT LIST shows it.
            Some(n) => {
                self.db = n as usize;
                self.client.info.locked().db = n as u64;
                self.ok();
            }
        }
        Flow::Continue
    }
}
