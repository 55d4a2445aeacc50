//! Generic key commands: DEL, UNLINK, EXISTS, TYPE, KEYS, SCAN, RANDOMKEY, DBSIZE,
//! FLUSHDB, FLUSHALL, RENAME(NX), COPY, TOUCH, the EXPIRE and TTL families, PERSIST,
//! OBJECT and MEMORY USAGE, with Redis's replies and keyspace notifications.

use bytes::Bytes;

use super::args::Args;
use super::errors::Error;
use super::{Flow, Session};
use crate::config::notify::GENERIC;
use crate::keyspace::{now_ms, Keyspace};
use crate::spec::{Cmd, Spec};

/// How an EXPIRE-family command reads its time argument.
#[derive(Clone, Copy)]
struct ExpireForm {
    name: &'static str,
    /// Seconds (EXPIRE, EXPIREAT) rather than milliseconds.
    seconds: bool,
    /// An absolute Unix time (EXPIREAT, PEXPIREAT) rather than a time to live.
    absolute: bool,
}

impl Session {
    pub(super) fn keys(&mut self, spec: &'static Spec, args: &[Bytes]) -> Flow {
        match spec.cmd {
            Cmd::Del | Cmd::Unlink => self.del(args),
            Cmd::Exists => self.exists(&args[1..]),
            Cmd::Touch => self.touch(&args[1..]),
            Cmd::Type => self.key_type(&args[1]),
            Cmd::Keys => self.keys_matching(&args[1]),
            Cmd::Scan => self.scan(&args[1..]),
            Cmd::Randomkey => self.random_key(),
            Cmd::Flushdb => self.flush_db(Some(self.db), args),
            Cmd::Rename | Cmd::Renamenx => self.rename(args, spec.cmd == Cmd::Renamenx),
            Cmd::Copy => self.copy(args),
            Cmd::Expire => self.expire(
                args,
                ExpireForm {
                    name: "expire",
                    seconds: true,
                    absolute: false,
                },
            ),
            Cmd::Pexpire => self.expire(
                args,
                ExpireForm {
                    name: "pexpire",
                    seconds: false,
                    absolute: false,
                },
            ),
            Cmd::Expireat => self.expire(
                args,
                ExpireForm {
                    name: "expireat",
                    seconds: true,
                    absolute: true,
                },
            ),
            Cmd::Pexpireat => self.expire(
                args,
                ExpireForm {
                    name: "pexpireat",
                    seconds: false,
                    absolute: true,
                },
            ),
            Cmd::Ttl | Cmd::Pttl | Cmd::Expiretime | Cmd::Pexpiretime => self.ttl(spec.cmd, &args[1]),
            Cmd::Persist => self.persist(args),
            Cmd::ObjectEncoding | Cmd::ObjectIdletime | Cmd::ObjectFreq | Cmd::ObjectRefcount | Cmd::ObjectHelp => {
                self.object(spec.cmd, args)
            }
            _ => unreachable!("dispatch routes only keyspace commands here"),
        }
    }

    fn del(&mut self, args: &[Bytes]) -> Flow {
        let n = self.with_keys(|s, ks| {
            let now = now_ms();
            let mut n = 0;
            for k in &args[1..] {
                if ks.exists(s.db, k, now) {
                    ks.remove(s.db, k);
                    ks.notify(s.db, GENERIC, "del", k);
                    n += 1;
                }
            }
            if n > 0 {
                ks.journal.verbatim(s.db, args);
            }
            n
        });
        self.reply().integer(n);
        Flow::Continue
    }

    fn exists(&mut self, keys: &[Bytes]) -> Flow {
        let n = self.with_keys(|s, ks| {
            let now = now_ms();
            keys.iter().filter(|k| ks.lookup(s.db, k, now).is_some()).count()
        });
        self.reply().integer(n as i64);
        Flow::Continue
    }

    fn touch(&mut self, keys: &[Bytes]) -> Flow {
        self.exists(keys)
    }

    fn key_type(&mut self, key: &[u8]) -> Flow {
        let t = self.with_keys(|s, ks| {
            ks.peek(s.db, key, now_ms())
                .map_or("none", |slot| slot.value.type_name())
        });
        self.reply().simple(t);
        Flow::Continue
    }

    fn keys_matching(&mut self, pattern: &[u8]) -> Flow {
        let keys: Vec<Bytes> = self.with_keys(|s, ks| {
            let now = now_ms();
            let all = pattern == b"*";
            ks.keys(s.db)
                .filter(|slot| Keyspace::is_live(slot, now) && (all || crate::glob::matches(pattern, &slot.key)))
                .map(|slot| slot.key.clone())
                .collect()
        });
        let mut e = self.reply();
        e.array(keys.len());
        for k in &keys {
            e.bulk(k);
        }
        Flow::Continue
    }

    fn scan(&mut self, args: &[Bytes]) -> Flow {
        let Some(cursor) = std::str::from_utf8(&args[0]).ok().and_then(|c| c.parse::<u64>().ok()) else {
            self.fail(Error::InvalidCursor);
            return Flow::Continue;
        };
        let mut a = Args::new(&args[1..]);
        let (mut pattern, mut count, mut kind) = (None, 10usize, None);
        while !a.is_empty() {
            let r = match a.one_of(&["MATCH", "COUNT", "TYPE"]) {
                Some("MATCH") => a.bytes().map(|p| pattern = Some(p.clone())),
                Some("COUNT") => a.i64().and_then(|n| {
                    if n < 1 {
                        return Err(Error::Syntax);
                    }
                    count = n as usize;
                    Ok(())
                }),
                Some(_) => a.bytes().map(|t| kind = Some(t.to_ascii_lowercase())),
                None => Err(Error::Syntax),
            };
            if let Err(e) = r {
                self.fail(e);
                return Flow::Continue;
            }
        }
        let (next, keys) = self.with_keys(|s, ks| {
            let now = now_ms();
            let mut keys = Vec::new();
            let next = ks.db(s.db).scan(cursor, count, |slot| {
                let keep = Keyspace::is_live(slot, now)
                    && pattern.as_ref().is_none_or(|p| crate::glob::matches(p, &slot.key))
                    && kind
                        .as_ref()
                        .is_none_or(|t| t.as_slice() == slot.value.type_name().as_bytes());
                if keep {
                    keys.push(slot.key.clone());
                }
            });
            (next, keys)
        });
        let mut e = self.reply();
        e.array(2);
        e.bulk(next.to_string().as_bytes());
        e.array(keys.len());
        for k in &keys {
            e.bulk(k);
        }
        Flow::Continue
    }

    fn random_key(&mut self) -> Flow {
        let key = self.with_keys(|s, ks| ks.random_key(s.db, now_ms()));
        self.reply().bulk_or_null(key.as_deref());
        Flow::Continue
    }

    pub(super) fn dbsize(&mut self) -> Flow {
        let n = self.with_keys(|s, ks| ks.db(s.db).len());
        self.reply().integer(n as i64);
        Flow::Continue
    }

    /// FLUSHDB (`db`) and FLUSHALL (`None`) [ASYNC|SYNC]. ASYNC frees the old data on
    /// another thread; either way the keyspace is empty when the reply is sent.
    pub(super) fn flush_db(&mut self, db: Option<usize>, args: &[Bytes]) -> Flow {
        let mut a = Args::new(&args[1..]);
        let asynchronous = match a.one_of(&["ASYNC", "SYNC"]) {
            Some(m) => m == "ASYNC",
            None if a.is_empty() => false,
            None => {
                self.fail(Error::Syntax);
                return Flow::Continue;
            }
        };
        if a.finish().is_err() {
            self.fail(Error::Syntax);
            return Flow::Continue;
        }
        let old = self.with_keys(|s, ks| {
            ks.journal.verbatim(s.db, args);
            ks.flush(db)
        });
        if asynchronous {
            std::thread::spawn(move || drop(old));
        } else {
            drop(old);
        }
        self.ok();
        Flow::Continue
    }

    fn rename(&mut self, args: &[Bytes], nx: bool) -> Flow {
        let (from, to) = (&args[1], &args[2]);
        let r = self.with_keys(|s, ks| {
            let (db, now) = (s.db, now_ms());
            if !ks.exists(db, from, now) {
                return Err(Error::NoSuchKey);
            }
            if from == to {
                return Ok(if nx { 0 } else { 1 });
            }
            if nx && ks.exists(db, to, now) {
                return Ok(0);
            }
            let slot = ks.remove(db, from).expect("checked above");
            ks.remove(db, to);
            ks.put_slot(db, to, slot);
            ks.notify(db, GENERIC, "rename_from", from);
            ks.notify(db, GENERIC, "rename_to", to);
            ks.journal.verbatim(db, args);
            Ok(1)
        });
        match r {
            Err(e) => self.fail(e),
            Ok(n) if nx => self.reply().integer(n),
            Ok(_) => self.ok(),
        }
        Flow::Continue
    }

    fn copy(&mut self, all: &[Bytes]) -> Flow {
        let args = &all[1..];
        let (from, to) = (&args[0], &args[1]);
        let mut a = Args::new(&args[2..]);
        let (mut dst_db, mut replace) = (self.db, false);
        while !a.is_empty() {
            match a.one_of(&["DB", "REPLACE"]) {
                Some("REPLACE") => replace = true,
                Some(_) => match a.i64() {
                    Ok(n) if n >= 0 && (n as u64) < self.broker.settings.databases() => dst_db = n as usize,
                    Ok(_) => {
                        self.fail(Error::DbIndexOutOfRange);
                        return Flow::Continue;
                    }
                    Err(e) => {
                        self.fail(e);
                        return Flow::Continue;
                    }
                },
                None => {
                    self.fail(Error::Syntax);
                    return Flow::Continue;
                }
            }
        }
        if dst_db == self.db && from == to {
            self.fail(Error::SameObject);
            return Flow::Continue;
        }
        let n = self.with_keys(|s, ks| {
            let now = now_ms();
            let Some(slot) = ks.lookup(s.db, from, now).map(|slot| slot.clone()) else {
                return 0;
            };
            if ks.exists(dst_db, to, now) {
                if !replace {
                    return 0;
                }
                ks.remove(dst_db, to);
            }
            ks.put_slot(dst_db, to, slot);
            ks.notify(dst_db, GENERIC, "copy_to", to);
            ks.journal.verbatim(s.db, all);
            1
        });
        self.reply().integer(n);
        Flow::Continue
    }

    fn expire(&mut self, args: &[Bytes], form: ExpireForm) -> Flow {
        let key = &args[1];
        let Some(n) = super::parse_i64(&args[2]) else {
            self.fail(Error::NotInteger);
            return Flow::Continue;
        };
        let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
        for opt in &args[3..] {
            match super::args::upper(opt, &mut [0u8; 16]) {
                b"NX" => nx = true,
                b"XX" => xx = true,
                b"GT" => gt = true,
                b"LT" => lt = true,
                _ => {
                    self.fail(Error::Quoted("ERR Unsupported option ", opt.clone(), ""));
                    return Flow::Continue;
                }
            }
        }
        if nx && (xx || gt || lt) {
            self.fail(Error::ExpireNxXx);
            return Flow::Continue;
        }
        if gt && lt {
            self.fail(Error::ExpireGtLt);
            return Flow::Continue;
        }
        let now = now_ms() as i64;
        let when = if form.seconds { n.checked_mul(1000) } else { Some(n) };
        let when = match when.and_then(|w| if form.absolute { Some(w) } else { w.checked_add(now) }) {
            Some(w) => w,
            None => {
                self.fail(Error::InvalidExpireTime(form.name));
                return Flow::Continue;
            }
        };
        let r = self.with_keys(|s, ks| {
            let db = s.db;
            let Some(slot) = ks.lookup(db, key, now as u64) else {
                return 0;
            };
            let current = slot.expire_at;
            let allowed = match current {
                None => !(xx || gt),
                Some(cur) => !nx && (!gt || when > cur as i64) && (!lt || when < cur as i64),
            };
            if !allowed {
                return 0;
            }
            // A replayed deadline in the past is kept: the key expires after loading.
            if when <= now && !ks.loading {
                ks.remove(db, key);
                ks.notify(db, GENERIC, "del", key);
                ks.journal.command(db, 2).arg(b"DEL").arg(key);
            } else {
                ks.set_expire(db, key, Some(when.max(0) as u64));
                // Absolute, so a replay at any later time keeps the same deadline.
                ks.journal.command(db, 3).arg(b"PEXPIREAT").arg(key).arg_int(when);
                ks.written(db, key);
                ks.notify(db, GENERIC, "expire", key);
            }
            1
        });
        self.reply().integer(r);
        Flow::Continue
    }

    fn ttl(&mut self, cmd: Cmd, key: &[u8]) -> Flow {
        let now = now_ms();
        let at = self.with_keys(|s, ks| ks.peek(s.db, key, now).map(|slot| slot.expire_at));
        let n = match at {
            None => -2,
            Some(None) => -1,
            Some(Some(at)) => match cmd {
                Cmd::Ttl => (at.saturating_sub(now) as i64 + 500) / 1000,
                Cmd::Pttl => at.saturating_sub(now) as i64,
                Cmd::Expiretime => (at / 1000) as i64,
                _ => at as i64,
            },
        };
        self.reply().integer(n);
        Flow::Continue
    }

    fn persist(&mut self, args: &[Bytes]) -> Flow {
        let key = &args[1];
        let n = self.with_keys(|s, ks| {
            let db = s.db;
            match ks.lookup(db, key, now_ms()) {
                Some(slot) if slot.expire_at.is_some() => {
                    ks.set_expire(db, key, None);
                    ks.written(db, key);
                    ks.notify(db, GENERIC, "persist", key);
                    ks.journal.verbatim(db, args);
                    1
                }
                _ => 0,
            }
        });
        self.reply().integer(n);
        Flow::Continue
    }

    fn object(&mut self, cmd: Cmd, args: &[Bytes]) -> Flow {
        if cmd == Cmd::ObjectHelp {
            self.help(
                "OBJECT",
                &[
                    "ENCODING <key>",
                    "    Return the kind of internal representation used in order to store the value",
                    "    associated with a <key>.",
                    "FREQ <key>",
                    "    Return the access frequency index of the <key>. The returned integer is",
                    "    proportional to the logarithm of the recent access frequency of the key.",
                    "IDLETIME <key>",
                    "    Return the idle time of the <key>, that is the approximated number of",
                    "    seconds elapsed since the last access to the key.",
                    "REFCOUNT <key>",
                    "    Return the number of references of the value associated with the specified",
                    "    <key>.",
                ],
            );
            return Flow::Continue;
        }
        let policy = self.broker.settings.get("maxmemory-policy").unwrap_or_default();
        let lfu = policy.ends_with("lfu");
        let r = self.with_keys(|s, ks| {
            let clock = ks.clock();
            let slot = ks.peek(s.db, &args[2], now_ms())?;
            Some(match cmd {
                Cmd::ObjectEncoding => Ok(Err(slot.value.encoding())),
                Cmd::ObjectRefcount => Ok(Ok(1)),
                Cmd::ObjectFreq if !lfu => Err(Error::LfuNotSelected),
                Cmd::ObjectFreq => Ok(Ok(slot.freq as i64)),
                _ if lfu => Err(Error::LruNotSelected),
                _ => Ok(Ok(clock.saturating_sub(slot.accessed) as i64)),
            })
        });
        match r {
            None => self.reply().null(),
            Some(Err(e)) => self.fail(e),
            Some(Ok(Ok(n))) => self.reply().integer(n),
            Some(Ok(Err(enc))) => self.reply().bulk(enc.as_bytes()),
        }
        Flow::Continue
    }

    /// MEMORY USAGE's figure for a key: its value, key and slot (None: no such key).
    pub(super) fn key_memory(&mut self, key: &[u8]) -> Option<usize> {
        self.with_keys(|s, ks| {
            ks.peek(s.db, key, now_ms())
                .map(|slot| key.len() + std::mem::size_of::<crate::keyspace::Slot>() + slot.value.memory_usage())
        })
    }
}
