//! CLIENT subcommands.

use crate::sync::LockExt;
use std::sync::Arc;

use bytes::Bytes;

use super::errors::Error;
use super::{Flow, ReplyMode, Session};
use crate::client::ClientHandle;
use crate::config::OverflowPolicy;
use crate::spec::Cmd;

/// Client names and library info may hold only `!`..`~`: no spaces or newlines, so a
/// CLIENT LIST line stays one line of space-separated fields.
pub(super) fn validate_name(name: &[u8], what: &str) -> Result<(), String> {
    if name.iter().all(|&b| (b'!'..=b'~').contains(&b)) {
        Ok(())
    } else {
        Err(format!(
            "ERR {what} cannot contain spaces, newlines or special characters."
        ))
    }
}

/// CLIENT LIST/KILL TYPE values. fanout has no replicas or masters, so those match nobody.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Pubsub,
    Replica,
    Master,
}

fn client_type(name: &[u8]) -> Option<ClientType> {
    match name.to_ascii_lowercase().as_slice() {
        b"normal" => Some(ClientType::Normal),
        b"pubsub" => Some(ClientType::Pubsub),
        b"replica" | b"slave" => Some(ClientType::Replica),
        b"master" => Some(ClientType::Master),
        _ => None,
    }
}

fn has_type(c: &ClientHandle, t: ClientType) -> bool {
    match t {
        ClientType::Normal => !c.is_pubsub(),
        ClientType::Pubsub => c.is_pubsub(),
        ClientType::Replica | ClientType::Master => false,
    }
}

/// A CLIENT KILL ID: a strict integer of at least 1.
fn parse_id(b: &[u8]) -> Option<u64> {
    super::parse_i64(b).filter(|&n| n >= 1).map(|n| n as u64)
}

fn on_off(b: &[u8]) -> Option<bool> {
    if b.eq_ignore_ascii_case(b"on") {
        Some(true)
    } else if b.eq_ignore_ascii_case(b"off") {
        Some(false)
    } else {
        None
    }
}

/// Filters of CLIENT KILL's new form; all given filters must match.
#[derive(Default)]
struct KillFilter {
    id: Option<u64>,
    kind: Option<ClientType>,
    addr: Option<Bytes>,
    laddr: Option<Bytes>,
    user: Option<Arc<crate::acl::User>>,
    skip_me: bool,
}

impl KillFilter {
    fn parse(args: &[Bytes], acl: &crate::acl::Acl) -> Result<KillFilter, Error> {
        let mut f = KillFilter {
            skip_me: true,
            ..Default::default()
        };
        let mut i = 0;
        while i < args.len() {
            let Some(value) = args.get(i + 1) else {
                return Err(Error::Syntax);
            };
            match args[i].to_ascii_lowercase().as_slice() {
                b"id" => f.id = Some(parse_id(value).ok_or(Error::ClientIdNotPositive)?),
                b"type" => {
                    f.kind = Some(
                        client_type(value)
                            .ok_or_else(|| Error::Quoted("ERR Unknown client type '", value.clone(), "'"))?,
                    )
                }
                b"addr" => f.addr = Some(value.clone()),
                b"laddr" => f.laddr = Some(value.clone()),
                b"user" => {
                    f.user = Some(
                        acl.user(value)
                            .ok_or_else(|| Error::Quoted("ERR No such user '", value.clone(), "'"))?,
                    )
                }
                b"skipme" => f.skip_me = on_off_yes_no(value).ok_or(Error::Syntax)?,
                _ => return Err(Error::Syntax),
            }
            i += 2;
        }
        Ok(f)
    }

    fn matches(&self, c: &ClientHandle, me: u64) -> bool {
        (!self.skip_me || c.id() != me)
            && self.id.is_none_or(|id| c.id() == id)
            && self.kind.is_none_or(|t| has_type(c, t))
            && self.addr.as_ref().is_none_or(|a| a[..] == *c.peer.as_bytes())
            && self.laddr.as_ref().is_none_or(|a| a[..] == *c.local.as_bytes())
            && self.user.as_ref().is_none_or(|u| Arc::ptr_eq(u, &c.info.locked().user))
    }
}

fn on_off_yes_no(b: &[u8]) -> Option<bool> {
    if b.eq_ignore_ascii_case(b"yes") {
        Some(true)
    } else if b.eq_ignore_ascii_case(b"no") {
        Some(false)
    } else {
        None
    }
}

impl Session {
    pub(super) fn client_command(&mut self, cmd: Cmd, args: &[Bytes]) -> Flow {
        match cmd {
            Cmd::ClientId => {
                let id = self.id();
                self.reply().integer(id as i64);
            }
            Cmd::ClientSetname => match validate_name(&args[2], "Client names") {
                Ok(()) => {
                    self.client.info.locked().name = (!args[2].is_empty()).then(|| args[2].clone());
                    self.ok();
                }
                Err(e) => self.error(&e),
            },
            Cmd::ClientGetname => {
                let name = self.client.info.locked().name.clone();
                self.reply().bulk_or_null(name.as_deref());
            }
            Cmd::ClientSetinfo => self.client_setinfo(&args[2], &args[3]),
            Cmd::ClientInfo => {
                let mut line = Vec::new();
                self.client.render(&mut line, self.wire_len);
                line.push(b'\n');
                self.reply().verbatim(&line);
            }
            Cmd::ClientList => self.client_list(args),
            Cmd::ClientKill => return self.client_kill(args),
            Cmd::ClientReply => {
                let mode = &args[2];
                if mode.eq_ignore_ascii_case(b"on") {
                    self.reply_mode = ReplyMode::On;
                    self.silenced = false;
                    self.ok();
                } else if mode.eq_ignore_ascii_case(b"off") {
                    self.reply_mode = ReplyMode::Off;
                    self.silenced = true;
                } else if mode.eq_ignore_ascii_case(b"skip") {
                    // SKIP has no effect while OFF is set.
                    if self.reply_mode == ReplyMode::On {
                        self.reply_mode = ReplyMode::SkipNext;
                    }
                    self.silenced = true;
                } else {
                    self.fail(Error::Syntax);
                }
            }
            Cmd::ClientNoEvict | Cmd::ClientNoTouch => match on_off(&args[2]) {
                Some(on) => {
                    let mut info = self.client.info.locked();
                    if cmd == Cmd::ClientNoEvict {
                        info.no_evict = on;
                    } else {
                        info.no_touch = on;
                    }
                    drop(info);
                    self.ok();
                }
                None => self.fail(Error::Syntax),
            },
            Cmd::ClientOverflow => self.client_overflow(args),
            // fanout has no client-side caching: the replies of a connection without
            // tracking, as Redis gives them.
            Cmd::ClientTrackinginfo => {
                let mut e = self.reply();
                e.map(3);
                e.bulk(b"flags");
                e.set(1);
                e.bulk(b"off");
                e.bulk(b"redirect");
                e.integer(-1);
                e.bulk(b"prefixes");
                e.array(0);
            }
            Cmd::ClientGetredir => self.reply().integer(-1),
            Cmd::ClientUnblock => {
                let error = match args.get(3).map(|a| a.to_ascii_uppercase()) {
                    None => false,
                    Some(m) if m == b"TIMEOUT" => false,
                    Some(m) if m == b"ERROR" => true,
                    Some(_) => {
                        self.fail(Error::UnblockReason);
                        return Flow::Continue;
                    }
                };
                if args.len() > 4 {
                    self.fail(Error::Syntax);
                    return Flow::Continue;
                }
                let Some(id) = super::parse_i64(&args[2]) else {
                    self.fail(Error::NotInteger);
                    return Flow::Continue;
                };
                let done = self.with_keys(|_, ks| super::blocking::unblock(ks, id as u64, error));
                self.reply().integer(done as i64);
            }
            _ => self.help(
                "CLIENT",
                &[
                    "GETNAME",
                    "    Return the name of the current connection.",
                    "ID",
                    "    Return the ID of the current connection.",
                    "INFO",
                    "    Return information about the current client connection.",
                    "KILL <ip:port>",
                    "    Kill connection made from <ip:port>.",
                    "KILL <option> <value> [<option> <value> [...]]",
                    "    Kill connections. Options are:",
                    "    * ADDR (<ip:port>|<unixsocket>:0)",
                    "      Kill connections made from the specified address",
                    "    * LADDR (<ip:port>|<unixsocket>:0)",
                    "      Kill connections made to specified local address",
                    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                    "      Kill connections by type.",
                    "    * USER <username>",
                    "      Kill connections authenticated by <username>.",
                    "    * SKIPME (YES|NO)",
                    "      Skip killing current connection (default: yes).",
                    "    * ID <client-id>",
                    "      Kill connections by client id.",
                    "LIST [options ...]",
                    "    Return information about client connections. Options:",
                    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
                    "      Return clients of specified type.",
                    "    * ID <client-id> [<client-id> ...]",
                    "      Return clients of specified IDs only.",
                    "REPLY (ON|OFF|SKIP)",
                    "    Control the replies sent to the current connection.",
                    "SETNAME <name>",
                    "    Assign the name <name> to the current connection.",
                    "SETINFO <option> <value>",
                    "    Set client meta attr. Options are:",
                    "    * LIB-NAME: the client lib name.",
                    "    * LIB-VER: the client lib version.",
                    "NO-EVICT (ON|OFF)",
                    "    Protect current client connection from eviction.",
                    "NO-TOUCH (ON|OFF)",
                    "    Will not touch LRU/LFU stats when this mode is on.",
                    "OVERFLOW [DEFAULT|DISCONNECT|DROP-NEWEST|DROP-OLDEST]",
                    "    fanout: get or set what happens to messages for this connection when its",
                    "    output buffer is at the pubsub hard limit (DEFAULT follows the server).",
                ],
            ),
        }
        Flow::Continue
    }

    fn client_setinfo(&mut self, attr: &Bytes, value: &Bytes) {
        let lib_name = attr.eq_ignore_ascii_case(b"lib-name");
        if !lib_name && !attr.eq_ignore_ascii_case(b"lib-ver") {
            return self.fail(Error::Quoted("ERR Unrecognized option '", attr.clone(), "'"));
        }
        if let Err(e) = validate_name(value, &String::from_utf8_lossy(attr)) {
            self.error(&e);
            return;
        }
        let v = (!value.is_empty()).then(|| value.clone());
        let mut info = self.client.info.locked();
        if lib_name {
            info.lib_name = v;
        } else {
            info.lib_ver = v;
        }
        drop(info);
        self.ok();
    }

    fn client_list(&mut self, args: &[Bytes]) {
        let clients = self.broker.clients.all();
        let selected: Vec<Arc<ClientHandle>> = if args.len() == 2 {
            clients
        } else if args.len() == 4 && args[2].eq_ignore_ascii_case(b"type") {
            let Some(t) = client_type(&args[3]) else {
                return self.fail(Error::Quoted("ERR Unknown client type '", args[3].clone(), "'"));
            };
            clients.into_iter().filter(|c| has_type(c, t)).collect()
        } else if args.len() > 3 && args[2].eq_ignore_ascii_case(b"id") {
            let mut ids = Vec::new();
            for a in &args[3..] {
                // Any integer is accepted; ids that cannot exist simply match nobody.
                match super::parse_i64(a) {
                    Some(id) => ids.push(id),
                    None => {
                        self.fail(Error::InvalidClientId);
                        return;
                    }
                }
            }
            ids.iter()
                .filter(|&&id| id > 0)
                .filter_map(|&id| self.broker.clients.get(id as u64))
                .collect()
        } else {
            self.fail(Error::Syntax);
            return;
        };
        let mut text = Vec::new();
        for c in selected {
            c.render(&mut text, if c.id() == self.id() { self.wire_len } else { 0 });
            text.push(b'\n');
        }
        self.reply().verbatim(&text);
    }

    fn client_kill(&mut self, args: &[Bytes]) -> Flow {
        let me = self.id();
        let clients = self.broker.clients.all();
        if args.len() == 3 {
            // Old form: CLIENT KILL addr:port. May kill the caller itself.
            let Some(c) = clients.iter().find(|c| c.peer.as_bytes() == &args[2][..]) else {
                self.fail(Error::NoSuchClient);
                return super::Flow::Continue;
            };
            self.ok();
            crate::stats::Stats::add(&self.broker.stats.killed_disconnections, 1);
            if c.id() == me {
                return Flow::CloseAfterReply;
            }
            self.broker.clients.kill(c);
            return Flow::Continue;
        }
        let filter = match KillFilter::parse(&args[2..], &self.broker.acl) {
            Ok(f) => f,
            Err(e) => {
                self.fail(e);
                return Flow::Continue;
            }
        };
        let mut killed = 0;
        let mut killed_me = false;
        for c in clients.iter().filter(|c| filter.matches(c, me)) {
            killed += 1;
            if c.id() == me {
                killed_me = true;
            } else {
                self.broker.clients.kill(c);
            }
        }
        self.reply().integer(killed);
        crate::stats::Stats::add(&self.broker.stats.killed_disconnections, killed as u64);
        if killed_me {
            Flow::CloseAfterReply
        } else {
            Flow::Continue
        }
    }

    /// CLIENT OVERFLOW [policy]: fanout's per-connection override of
    /// `pubsub-overflow-policy`. With no argument, replies with the policy in effect.
    fn client_overflow(&mut self, args: &[Bytes]) {
        match args.get(2) {
            None => {
                let p = self.client.outbox.policy(&self.broker.settings);
                self.reply().bulk(p.name().as_bytes());
            }
            Some(v) if v.eq_ignore_ascii_case(b"default") => {
                self.client.outbox.set_policy(None);
                self.ok();
            }
            Some(v) => match OverflowPolicy::parse(&String::from_utf8_lossy(v)) {
                Some(p) if args.len() == 3 => {
                    self.client.outbox.set_policy(Some(p));
                    self.ok();
                }
                _ => self.fail(Error::Syntax),
            },
        }
    }
}
