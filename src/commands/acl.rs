//! ACL subcommands, and what the dispatcher does when a user may not run a command:
//! the NOPERM reply and the ACL LOG entry. The users themselves live in [`crate::acl`].

use std::io::Read;

use bytes::Bytes;

use super::errors::Error;
use super::{Flow, Session};
use crate::acl::log::Context;
use crate::acl::rules::{self, Denial};
use crate::acl::Acl;
use crate::spec::{self as table, Cmd, Spec};

/// Longest password ACL GENPASS makes, in bits.
const GENPASS_MAX_BITS: i64 = 4096;

/// `count` random lowercase hex digits from the kernel's CSPRNG.
fn random_hex(count: usize) -> std::io::Result<String> {
    let mut bytes = vec![0u8; count.div_ceil(2)];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let mut hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(count);
    Ok(hex)
}

/// What ACL LOG names as refused: the command's full name, or the channel or key.
fn acl_object(spec: &Spec, args: &[Bytes], (denial, pos): (Denial, usize)) -> Bytes {
    match denial {
        Denial::Command => Bytes::from_static(spec.name.as_bytes()),
        Denial::Channel | Denial::Key | Denial::Auth => args[pos].clone(),
    }
}

impl Session {
    /// Replies to a command the user may not run and records it in ACL LOG (context
    /// `multi` while a transaction is queued).
    pub(super) fn acl_denied(&mut self, spec: &'static Spec, args: &[Bytes], (denial, pos): (Denial, usize)) -> Flow {
        let context = if self.multi.is_some() {
            Context::Multi
        } else {
            Context::Toplevel
        };
        self.log_acl((denial, context), acl_object(spec, args, (denial, pos)), None);
        self.fail(match denial {
            Denial::Command => Error::NoPermCommand(spec.name),
            Denial::Channel => Error::NoPermChannel,
            // Logins are not commands: only keys reach here.
            Denial::Key | Denial::Auth => Error::NoPermKey,
        });
        Flow::Continue
    }

    /// EXEC found a queued command its user may no longer run (the rules changed since
    /// it was queued): that command's reply in the EXEC array, as Redis words it.
    pub(super) fn acl_denied_at_exec(&mut self, spec: &'static Spec, args: &[Bytes], (denial, pos): (Denial, usize)) {
        self.log_acl((denial, Context::Multi), acl_object(spec, args, (denial, pos)), None);
        self.fail(Error::NoPermAtExec(denial));
    }

    /// Adds an ACL LOG entry for this connection (for its current user unless `username`
    /// names the one a login was attempted as).
    pub(super) fn log_acl(&mut self, reason: (Denial, Context), object: Bytes, username: Option<Bytes>) {
        let mut info = Vec::new();
        self.client.render(&mut info, self.wire_len);
        let username = username.unwrap_or_else(|| self.user.name.clone());
        let acl = &self.broker.acl;
        acl.log.add(reason, object, username, info, acl.log_max_len());
    }

    fn acl_syntax_error(&mut self, args: &[Bytes]) {
        self.fail(Error::SubcommandSyntax {
            sub: args[1].clone(),
            container: "acl",
        });
    }

    pub(super) fn acl_command(&mut self, cmd: Cmd, args: &[Bytes]) -> Flow {
        let broker = self.broker.clone();
        let acl = &broker.acl;
        let me = self.id();
        match cmd {
            Cmd::AclSetuser => match acl.set_user(&args[2], &args[3..], &*broker, me) {
                Ok(killed_me) => {
                    self.ok();
                    if killed_me {
                        return Flow::CloseAfterReply;
                    }
                }
                Err(e) => self.fail(e.into()),
            },
            Cmd::AclDeluser => match acl.del_users(&args[2..], &*broker, me) {
                Ok((n, killed_me)) => {
                    self.reply().integer(n);
                    if killed_me {
                        return Flow::CloseAfterReply;
                    }
                }
                Err(e) => self.fail(e.into()),
            },
            Cmd::AclGetuser => self.acl_getuser(acl, &args[2]),
            Cmd::AclList | Cmd::AclUsers => {
                let users = acl.all();
                let mut e = self.reply();
                e.array(users.len());
                for u in &users {
                    if cmd == Cmd::AclList {
                        e.bulk(&Acl::describe(u));
                    } else {
                        e.bulk(&u.name);
                    }
                }
            }
            Cmd::AclWhoami => {
                let name = self.user.name.clone();
                self.reply().bulk(&name);
            }
            Cmd::AclCat => self.acl_cat(args),
            Cmd::AclGenpass => self.acl_genpass(args),
            Cmd::AclLog => self.acl_log(acl, args),
            Cmd::AclDryrun => self.acl_dryrun(acl, args),
            Cmd::AclLoad => match acl.load(&*broker, me) {
                Ok(killed_me) => {
                    self.ok();
                    if killed_me {
                        return Flow::CloseAfterReply;
                    }
                }
                Err(e) => self.fail(e.into()),
            },
            Cmd::AclSave => match acl.save() {
                Ok(()) => self.ok(),
                Err(e) => self.fail(e.into()),
            },
            _ => self.help(
                "ACL",
                &[
                    "CAT [<category>]",
                    "    List all commands that belong to <category>, or all command categories",
                    "    when no category is specified.",
                    "DELUSER <username> [<username> ...]",
                    "    Delete a list of users.",
                    "DRYRUN <username> <command> [<arg> ...]",
                    "    Returns whether the user can execute the given command without executing the command.",
                    "GETUSER <username>",
                    "    Get the user's details.",
                    "GENPASS [<bits>]",
                    "    Generate a secure 256-bit user password. The optional `bits` argument can",
                    "    be used to specify a different size.",
                    "LIST",
                    "    Show users details in config file format.",
                    "LOAD",
                    "    Reload users from the ACL file.",
                    "LOG [<count> | RESET]",
                    "    Show the ACL log entries.",
                    "SAVE",
                    "    Save the current config to the ACL file.",
                    "SETUSER <username> <attribute> [<attribute> ...]",
                    "    Create or modify a user with the specified attributes.",
                    "USERS",
                    "    List all the registered usernames.",
                    "WHOAMI",
                    "    Return the current connection username.",
                ],
            ),
        }
        Flow::Continue
    }

    /// ACL GETUSER: Redis 7.0's map of flags, passwords, the root selector's commands,
    /// keys and channels, then the other selectors.
    fn acl_getuser(&mut self, acl: &Acl, name: &[u8]) {
        let Some(user) = acl.user(name) else {
            self.reply().null();
            return;
        };
        let st = user.state();
        let r = &st.rules;
        let describe = |e: &mut crate::protocol::reply::Encoder<'_>, s: &rules::Selector| {
            e.bulk(b"commands");
            e.bulk(s.describe_commands().as_bytes());
            e.bulk(b"keys");
            e.bulk(&s.describe_keys());
            e.bulk(b"channels");
            e.bulk(&s.describe_channels());
        };
        let mut e = self.reply();
        e.map(6);
        e.bulk(b"flags");
        let flags = r.flags();
        e.set(flags.len());
        for f in flags {
            e.bulk(f.as_bytes());
        }
        e.bulk(b"passwords");
        e.array(r.passwords.len());
        for p in &r.passwords {
            e.bulk(p.as_bytes());
        }
        describe(&mut e, r.root());
        e.bulk(b"selectors");
        e.array(r.selectors.len() - 1);
        for s in &r.selectors[1..] {
            e.map(3);
            describe(&mut e, s);
        }
    }

    fn acl_cat(&mut self, args: &[Bytes]) {
        match args.get(2) {
            None => {
                let mut e = self.reply();
                e.array(rules::CATEGORIES.len());
                for c in rules::CATEGORIES {
                    e.bulk(c.as_bytes());
                }
            }
            Some(_) if args.len() > 3 => self.acl_syntax_error(args),
            Some(name) => match rules::category(name) {
                None => {
                    self.fail(Error::Quoted(
                        "ERR Unknown category '",
                        name.slice(..name.len().min(128)),
                        "'",
                    ));
                }
                Some(cat) => {
                    let members = rules::index().category_members(cat);
                    let mut e = self.reply();
                    e.array(members.len());
                    for m in members {
                        e.bulk(m.as_bytes());
                    }
                }
            },
        }
    }

    fn acl_genpass(&mut self, args: &[Bytes]) {
        if args.len() > 3 {
            return self.acl_syntax_error(args);
        }
        let bits = match args.get(2).map(|b| super::parse_i64(b)) {
            None => 256,
            Some(Some(n)) => n,
            Some(None) => return self.fail(Error::NotInteger),
        };
        if bits <= 0 || bits > GENPASS_MAX_BITS {
            let msg = format!("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to {GENPASS_MAX_BITS}");
            return self.error(&msg);
        }
        match random_hex(((bits + 3) / 4) as usize) {
            Ok(hex) => self.reply().bulk(hex.as_bytes()),
            Err(e) => {
                tracing::warn!("ACL GENPASS: cannot read /dev/urandom: {e}");
                self.fail(Error::GenpassFailed);
            }
        }
    }

    fn acl_log(&mut self, acl: &Acl, args: &[Bytes]) {
        if args.len() > 3 {
            return self.acl_syntax_error(args);
        }
        let count = match args.get(2) {
            None => 10,
            Some(a) if a.eq_ignore_ascii_case(b"reset") => {
                acl.log.reset();
                return self.ok();
            }
            Some(a) => match super::parse_i64(a) {
                Some(n) => n.max(0) as usize,
                None => return self.fail(Error::NotInteger),
            },
        };
        let entries = acl.log.newest(count);
        let now = crate::acl::log::now_ms();
        self.reply().array(entries.len());
        for le in entries {
            let mut e = self.reply();
            e.map(7);
            e.bulk(b"count");
            e.integer(le.count as i64);
            e.bulk(b"reason");
            e.bulk(le.reason.reason().as_bytes());
            e.bulk(b"context");
            e.bulk(le.context().as_bytes());
            e.bulk(b"object");
            e.bulk(&le.object);
            e.bulk(b"username");
            e.bulk(&le.username);
            e.bulk(b"age-seconds");
            e.double(le.age_seconds(now));
            e.bulk(b"client-info");
            e.bulk(&le.client_info);
        }
    }

    /// ACL DRYRUN user command [arg ...]: would the user be allowed to run it?
    fn acl_dryrun(&mut self, acl: &Acl, args: &[Bytes]) {
        let Some(user) = acl.user(&args[2]) else {
            return self.fail(Error::Quoted("ERR User '", args[2].clone(), "' not found"));
        };
        let cmd = &args[3..];
        let spec = table::lookup(&cmd[0]).and_then(|base| {
            if cmd.len() == 1 || base.subcommands.is_empty() {
                Some(base)
            } else {
                base.sub(&cmd[1])
            }
        });
        let Some(spec) = spec else {
            return self.fail(Error::Quoted("ERR Command '", cmd[0].clone(), "' not found"));
        };
        if (spec.arity > 0 && spec.arity as usize != cmd.len()) || (cmd.len() as i64) < -(spec.arity as i64) {
            let msg = format!("ERR wrong number of arguments for '{}' command", spec.name);
            return self.error(&msg);
        }
        let result = user.state().rules.check(spec, cmd);
        match result {
            Ok(()) => self.ok(),
            Err((denial, pos)) => {
                // The refused channel or key as the client sent it, bytes and all.
                let quoted = |what: &str| {
                    let mut t = b"This user has no permissions to access the '".to_vec();
                    t.extend_from_slice(&cmd[pos]);
                    t.extend_from_slice(format!("' {what}").as_bytes());
                    t
                };
                let text = match denial {
                    Denial::Command => {
                        format!("This user has no permissions to run the '{}' command", spec.name).into_bytes()
                    }
                    Denial::Channel => quoted("channel"),
                    Denial::Key | Denial::Auth => quoted("key"),
                };
                self.reply().bulk(&text);
            }
        }
    }
}
