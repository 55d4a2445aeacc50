//! The append-only file seen from the command layer: replaying it as Redis's AOF client
//! does (at start and for DEBUG LOADAOF), BGREWRITEAOF, SAVE/BGSAVE (fanout has no RDB),
//! and DEBUG.

use std::sync::Arc;

use bytes::Bytes;

use super::errors::Error;
use super::{Flow, Session};
use crate::broker::Broker;
use crate::client::{ClientHandle, Outbox};
use crate::spec;

impl Session {
    /// A session that replays the AOF (Redis's fake AOF client): in no client list,
    /// checked by no ACL, its replies dropped.
    pub fn for_replay(broker: Arc<Broker>) -> Session {
        let client = Arc::new(ClientHandle::new(
            Arc::new(Outbox::new(0)),
            "aof".into(),
            String::new(),
            -1,
            false,
            broker.acl.default_user(),
        ));
        let mut s = Session::new(broker, client);
        s.replaying = true;
        s.authenticated = true;
        s
    }

    /// Runs one command read from the AOF. Fails only for a command fanout does not
    /// have; a command that replies with an error is skipped, as Redis skips it.
    pub fn replay(&mut self, args: &[Bytes]) -> Result<(), String> {
        let top = spec::lookup(&args[0]);
        let found = match top {
            Some(c) if !c.subcommands.is_empty() && args.len() >= 2 => c.sub(&args[1]),
            other => other,
        };
        let Some(spec) = found.filter(|s| s.arity_ok(args.len())) else {
            return Err(format!(
                "Unknown command '{}' reading the append only file (fanout holds streams only: an AOF with strings, lists, hashes or sets cannot be loaded)",
                String::from_utf8_lossy(&args[0])
            ));
        };
        self.run(spec, args);
        if self.out.first() == Some(&b'-') {
            tracing::debug!(
                command = %String::from_utf8_lossy(&args[0]),
                reply = %String::from_utf8_lossy(&self.out),
                "AOF command replied with an error"
            );
        }
        self.out.clear();
        Ok(())
    }

    pub(super) fn bgrewriteaof(&mut self) -> Flow {
        let aof = &self.broker.aof;
        if !aof.is_on() {
            // Redis rewrites a file even with appendonly off; fanout writes files only
            // while the AOF is on.
            self.fail(Error::RewriteNeedsAof);
        } else if aof.rewrite_running() {
            self.fail(Error::RewriteInProgress);
        } else {
            match aof.rewrite() {
                Ok(()) => self.reply().simple("Background append only file rewriting started"),
                Err(e) => {
                    tracing::warn!("Can't rewrite the append only file in background: {e}");
                    self.fail(Error::RewriteFailed)
                }
            }
        }
        Flow::Continue
    }

    /// SAVE and BGSAVE: fanout writes no RDB snapshot (README, "Durability").
    pub(super) fn save(&mut self) -> Flow {
        self.fail(Error::NoRdb);
        Flow::Continue
    }

    /// DEBUG, allowed as `enable-debug-command` says: LOADAOF (sync the AOF, empty the
    /// keyspace, load the files again), LOG, HELP.
    pub(super) fn debug(&mut self, args: &[Bytes]) -> Flow {
        let allowed = match self.broker.settings.get("enable-debug-command").as_deref() {
            Some("yes") => true,
            Some("local") => self.client.unix || is_loopback(&self.client.peer),
            _ => false,
        };
        if !allowed {
            self.fail(Error::DebugDisabled);
            return Flow::Continue;
        }
        let sub = String::from_utf8_lossy(&args[1]).to_ascii_uppercase();
        match sub.as_str() {
            "LOADAOF" if args.len() == 2 => match self.load_aof_again() {
                Ok(()) => self.ok(),
                Err(e) => self.fail(Error::AofLoad(e)),
            },
            "LOG" if args.len() == 3 => {
                tracing::warn!("DEBUG LOG: {}", String::from_utf8_lossy(&args[2]));
                self.ok();
            }
            "HELP" => self.help(
                "DEBUG",
                &[
                    "LOADAOF",
                    "    Flush the AOF buffers on disk and reload the AOF in memory.",
                    "LOG <message>",
                    "    Write <message> to the server log.",
                ],
            ),
            _ => self.fail(Error::UnknownSubcommand {
                sub: args[1].clone(),
                container: "debug",
            }),
        }
        Flow::Continue
    }

    /// DEBUG LOADAOF: everything committed goes to disk, then, holding the keyspace so
    /// no write slips in between, the data is replaced by what the files say.
    fn load_aof_again(&mut self) -> Result<(), String> {
        let broker = self.broker.clone();
        if self.in_exec {
            return Err("not inside a transaction".into());
        }
        // Holding the keyspace, every committed byte must be on disk and no rewrite may
        // be switching files; otherwise let go, sync, and look again.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let (mut guard, files, manifest) = loop {
            if broker.aof.current_files().is_none() {
                return Err("appendonly is off".into());
            }
            broker.aof.sync_now();
            let g = broker.keyspace.lock_arc();
            let synced = broker.aof.stats.synced.load(std::sync::atomic::Ordering::Relaxed);
            if !broker.aof.rewrite_running() && synced >= g.journal.committed() {
                let (files, manifest) = broker.aof.current_files().ok_or("appendonly is off")?;
                break (g, files, manifest);
            }
            drop(g);
            if std::time::Instant::now() > deadline {
                return Err("the AOF stayed busy (a rewrite or a slow disk) for 30 s".into());
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        let mut replay = Session::for_replay(broker.clone());
        let was_on = guard.journal.suspend();
        guard.loading = true;
        drop(guard.flush(None));
        replay.exec_keys = Some(guard);
        replay.in_exec = true;
        let truncated_ok = broker.settings.get("aof-load-truncated").as_deref() == Some("yes");
        let r = crate::persistence::load::load(&files, &manifest, truncated_ok, |args| replay.replay(&args));
        replay.in_exec = false;
        if let Some(mut guard) = replay.exec_keys.take() {
            guard.journal.resume(was_on);
            guard.loading = false;
            // A reload is not a change clients subscribed to: no notifications.
            guard.effects.events.clear();
            replay.exec_keys = Some(guard);
        }
        replay.end_exec_keys();
        r
    }
}

fn is_loopback(peer: &str) -> bool {
    peer.parse::<std::net::SocketAddr>().is_ok_and(|a| a.ip().is_loopback())
}

/// At start with `appendonly yes`: the files are replayed before the port is bound,
/// then the AOF runs. An error stops start-up.
pub fn open_aof_at_start(broker: &Arc<Broker>) -> Result<(), String> {
    if !broker.settings.appendonly.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    let mut replay = Session::for_replay(broker.clone());
    broker.keyspace.lock().loading = true;
    let r = broker.aof.open_at_start(|args| replay.replay(&args));
    broker.keyspace.lock().loading = false;
    r
}
