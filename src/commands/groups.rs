//! Consumer groups and introspection: XACK, XPENDING, XCLAIM, XAUTOCLAIM, XGROUP and
//! XINFO, with Redis 7.2's argument order, errors and reply shapes.

use bytes::Bytes;

use super::errors::Error;
use super::streams::{strict_id, write_entry, write_id, PelChanges};
use super::Session;
use crate::config::notify::STREAM;
use crate::keyspace::now_ms;
use crate::protocol::reply::Encoder;
use crate::spec::{Cmd, Spec};
use crate::stream::{parse_id, parse_range_end, parse_range_start, ClaimOptions, Group, Id, Stream};

/// `XAUTOCLAIM ... COUNT` above this would overflow Redis's allocation size.
const MAX_AUTOCLAIM_COUNT: i64 = i64::MAX / 16;

impl Session {
    pub(super) fn stream_groups(&mut self, spec: &'static Spec, args: &[Bytes]) -> Result<(), Error> {
        match spec.cmd {
            Cmd::Xack => self.xack(args),
            Cmd::Xpending => self.xpending(args),
            Cmd::Xclaim => self.xclaim(args),
            Cmd::Xautoclaim => self.xautoclaim(args),
            Cmd::XgroupHelp => {
                self.help(
                    "XGROUP",
                    &[
                        "CREATE <key> <groupname> <id|$> [option]",
                        "    Create a new consumer group. Options are:",
                        "    * MKSTREAM",
                        "      Create the empty stream if it does not exist.",
                        "    * ENTRIESREAD entries_read",
                        "      Set the group's entries_read counter (internal use).",
                        "CREATECONSUMER <key> <groupname> <consumer>",
                        "    Create a new consumer in the specified group.",
                        "DELCONSUMER <key> <groupname> <consumer>",
                        "    Remove the specified consumer.",
                        "DESTROY <key> <groupname>",
                        "    Remove the specified group.",
                        "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
                        "    Set the current group ID and entries_read counter.",
                    ],
                );
                Ok(())
            }
            Cmd::XinfoHelp => {
                self.help(
                    "XINFO",
                    &[
                        "CONSUMERS <key> <groupname>",
                        "    Show consumers of <groupname>.",
                        "GROUPS <key>",
                        "    Show the stream consumer groups.",
                        "STREAM <key> [FULL [COUNT <count>]",
                        "    Show information about the stream.",
                    ],
                );
                Ok(())
            }
            Cmd::XgroupCreate
            | Cmd::XgroupSetid
            | Cmd::XgroupDestroy
            | Cmd::XgroupCreateconsumer
            | Cmd::XgroupDelconsumer => self.xgroup(spec.cmd, args),
            Cmd::XinfoStream | Cmd::XinfoGroups | Cmd::XinfoConsumers => self.xinfo(spec.cmd, args),
            _ => unreachable!("dispatch routes only stream commands here"),
        }
    }

    fn xack(&mut self, args: &[Bytes]) -> Result<(), Error> {
        let (key, group) = (&args[1], &args[2]);
        let n = self.with_keys(|s, ks| -> Result<u64, Error> {
            let Some(st) = ks.stream_mut(s.db, key, now_ms())? else {
                return Ok(0);
            };
            if st.group(group).is_none() {
                return Ok(0);
            }
            // All or nothing: every ID is checked before any is acknowledged.
            let ids = args[3..]
                .iter()
                .map(|a| strict_id(a))
                .collect::<Result<Vec<Id>, Error>>()?;
            let n = st.ack(group, &ids);
            if n > 0 {
                ks.journal.verbatim(s.db, args);
            }
            Ok(n)
        })?;
        self.reply().integer(n as i64);
        Ok(())
    }

    fn xpending(&mut self, args: &[Bytes]) -> Result<(), Error> {
        let (key, group) = (&args[1], &args[2]);
        let argc = args.len();
        if argc != 3 && !(6..=9).contains(&argc) {
            return Err(Error::Syntax);
        }
        let mut range = None;
        if argc >= 6 {
            let mut at = 3;
            let mut min_idle = None;
            if args[3].eq_ignore_ascii_case(b"IDLE") {
                min_idle = Some(super::parse_i64(&args[4]).ok_or(Error::NotInteger)?.max(0) as u64);
                if argc < 8 {
                    return Err(Error::Syntax);
                }
                at += 2;
            }
            let count = super::parse_i64(&args[at + 2]).ok_or(Error::NotInteger)?.max(0) as usize;
            let start = parse_range_start(&args[at])?;
            let end = parse_range_end(&args[at + 1])?;
            let consumer = args.get(at + 3).cloned();
            if at + 4 < argc {
                return Err(Error::Syntax);
            }
            range = Some((start, end, count, consumer, min_idle));
        }
        self.with_keys(|s, ks| -> Result<(), Error> {
            let now = now_ms();
            let st = ks
                .stream_mut(s.db, key, now)?
                .filter(|st| st.group(group).is_some())
                .ok_or_else(|| Error::NoGroup(key.clone(), group.clone()))?;
            let mut id_buf = Vec::with_capacity(42);
            let mut e = s.reply();
            match range {
                None => {
                    let (count, bounds, consumers) = st.pending_summary(group);
                    e.array(4);
                    e.integer(count as i64);
                    match bounds {
                        None => {
                            e.null();
                            e.null();
                            e.null_array();
                        }
                        Some((first, last)) => {
                            write_id(&mut e, first, &mut id_buf);
                            write_id(&mut e, last, &mut id_buf);
                            e.array(consumers.len());
                            for (name, n) in &consumers {
                                e.array(2);
                                e.bulk(name);
                                e.bulk(n.to_string().as_bytes());
                            }
                        }
                    }
                }
                Some((start, end, count, consumer, min_idle)) => {
                    let rows = st.pending_range(group, start, end, count, consumer.as_deref(), min_idle, now);
                    e.array(rows.len());
                    for (id, name, idle, deliveries) in &rows {
                        e.array(4);
                        write_id(&mut e, *id, &mut id_buf);
                        e.bulk(name);
                        e.integer(*idle as i64);
                        e.integer(*deliveries as i64);
                    }
                }
            }
            Ok(())
        })
    }

    fn xclaim(&mut self, args: &[Bytes]) -> Result<(), Error> {
        let (key, group, consumer) = (&args[1], &args[2], &args[3]);
        self.with_keys(|s, ks| -> Result<(), Error> {
            let (db, now) = (s.db, now_ms());
            let journaling = ks.journal.is_on();
            let st = ks
                .stream_mut(db, key, now)?
                .filter(|st| st.group(group).is_some())
                .ok_or_else(|| Error::NoGroup(key.clone(), group.clone()))?;
            let min_idle = super::parse_i64(&args[4])
                .ok_or(Error::InvalidMinIdle("XCLAIM"))?
                .max(0) as u64;
            let mut j = 5;
            let mut ids = Vec::new();
            while j < args.len() {
                match parse_id(&args[j], 0) {
                    Some(id) => ids.push(id),
                    None => break,
                }
                j += 1;
            }
            let mut opts = ClaimOptions::default();
            while j < args.len() {
                let more = args.len() - 1 - j;
                let mut word = [0u8; 16];
                let opt = super::args::upper(&args[j], &mut word);
                let number = |name: &'static str, a: &[u8]| super::parse_i64(a).ok_or(Error::XclaimOptionArg(name));
                match opt {
                    b"FORCE" => opts.force = true,
                    b"JUSTID" => opts.justid = true,
                    b"IDLE" if more > 0 => {
                        j += 1;
                        opts.idle = Some(number("IDLE", &args[j])?);
                    }
                    b"TIME" if more > 0 => {
                        j += 1;
                        opts.time = Some(number("TIME", &args[j])?);
                    }
                    b"RETRYCOUNT" if more > 0 => {
                        j += 1;
                        opts.retry_count = Some(number("RETRYCOUNT", &args[j])? as u64);
                    }
                    b"LASTID" if more > 0 => {
                        j += 1;
                        opts.last_id = Some(strict_id(&args[j])?);
                    }
                    _ => return Err(Error::Quoted("ERR Unrecognized XCLAIM option '", args[j].clone(), "'")),
                }
                j += 1;
            }
            let existed = st.group(group).is_some_and(|g| g.consumer(consumer).is_some());
            let last_before = st.group(group).map(|g| g.last_id());
            // Pending entries whose entry is gone leave the PEL: journaled as an XCLAIM,
            // which drops them on replay too.
            let gone: Vec<Id> = match journaling {
                true => ids
                    .iter()
                    .copied()
                    .filter(|&id| !st.contains(id) && st.group(group).is_some_and(|g| g.pending(id).is_some()))
                    .collect(),
                false => Vec::new(),
            };
            let claimed = st.claim(group, consumer, min_idle, &ids, &opts, now);
            let mut id_buf = Vec::with_capacity(42);
            let mut e = s.reply();
            e.array(claimed.len());
            for &id in &claimed {
                match st.get(id).filter(|_| !opts.justid) {
                    Some(entry) => write_entry(&mut e, &entry, &mut id_buf),
                    None => write_id(&mut e, id, &mut id_buf),
                }
            }
            let record = journaling.then(|| PelChanges::claim(st, group, &claimed, gone, last_before, now));
            if !existed {
                ks.notify(db, STREAM, "xgroup-createconsumer", key);
            }
            if let Some(r) = record {
                r.journal(ks, db, key, group, consumer, !existed);
            }
            Ok(())
        })
    }

    fn xautoclaim(&mut self, args: &[Bytes]) -> Result<(), Error> {
        let (key, group, consumer) = (&args[1], &args[2], &args[3]);
        let min_idle = super::parse_i64(&args[4])
            .ok_or(Error::InvalidMinIdle("XAUTOCLAIM"))?
            .max(0) as u64;
        let start = parse_range_start(&args[5])?;
        let (mut count, mut justid) = (100usize, false);
        let mut j = 6;
        while j < args.len() {
            let more = args.len() - 1 - j;
            if args[j].eq_ignore_ascii_case(b"COUNT") && more > 0 {
                count = match super::parse_i64(&args[j + 1]) {
                    Some(n) if (1..=MAX_AUTOCLAIM_COUNT).contains(&n) => n as usize,
                    _ => return Err(Error::CountNotPositive),
                };
                j += 1;
            } else if args[j].eq_ignore_ascii_case(b"JUSTID") {
                justid = true;
            } else {
                return Err(Error::Syntax);
            }
            j += 1;
        }
        self.with_keys(|s, ks| -> Result<(), Error> {
            let (db, now) = (s.db, now_ms());
            let journaling = ks.journal.is_on();
            let st = ks
                .stream_mut(db, key, now)?
                .filter(|st| st.group(group).is_some())
                .ok_or_else(|| Error::NoGroup(key.clone(), group.clone()))?;
            let existed = st.group(group).is_some_and(|g| g.consumer(consumer).is_some());
            let last_before = st.group(group).map(|g| g.last_id());
            let (next, claimed, deleted) = st.autoclaim(group, consumer, min_idle, start, count, justid, now);
            let record = journaling.then(|| PelChanges::claim(st, group, &claimed, deleted.clone(), last_before, now));
            let mut id_buf = Vec::with_capacity(42);
            let mut e = s.reply();
            e.array(3);
            write_id(&mut e, next, &mut id_buf);
            e.array(claimed.len());
            for &id in &claimed {
                match st.get(id).filter(|_| !justid) {
                    Some(entry) => write_entry(&mut e, &entry, &mut id_buf),
                    None => write_id(&mut e, id, &mut id_buf),
                }
            }
            e.array(deleted.len());
            for &id in &deleted {
                write_id(&mut e, id, &mut id_buf);
            }
            if !existed {
                ks.notify(db, STREAM, "xgroup-createconsumer", key);
            }
            if let Some(r) = record {
                r.journal(ks, db, key, group, consumer, !existed);
            }
            Ok(())
        })
    }

    fn xgroup(&mut self, cmd: Cmd, args: &[Bytes]) -> Result<(), Error> {
        let sub = &args[1];
        let (key, group) = (&args[2], &args[3]);
        let syntax = || Error::SubcommandSyntax {
            sub: sub.clone(),
            container: "xgroup",
        };
        // CREATE and SETID options: MKSTREAM (CREATE only), ENTRIESREAD n.
        let (mut mkstream, mut entries_read) = (false, None);
        if matches!(cmd, Cmd::XgroupCreate | Cmd::XgroupSetid) {
            let mut i = 5;
            while i < args.len() {
                if cmd == Cmd::XgroupCreate && args[i].eq_ignore_ascii_case(b"MKSTREAM") {
                    mkstream = true;
                    i += 1;
                } else if args[i].eq_ignore_ascii_case(b"ENTRIESREAD") && i + 1 < args.len() {
                    let n = super::parse_i64(&args[i + 1]).ok_or(Error::NotInteger)?;
                    if n < -1 {
                        return Err(Error::EntriesReadInvalid);
                    }
                    entries_read = (n >= 0).then_some(n as u64);
                    i += 2;
                } else {
                    return Err(syntax());
                }
            }
        }
        let argc = args.len();
        let shape_ok = match cmd {
            Cmd::XgroupCreate => (5..=8).contains(&argc),
            Cmd::XgroupSetid => argc == 5 || argc == 7,
            Cmd::XgroupDestroy => argc == 4,
            _ => argc == 5,
        };
        let reply = self.with_keys(|s, ks| -> Result<Option<i64>, Error> {
            let (db, now) = (s.db, now_ms());
            let exists = ks.stream_mut(db, key, now)?.is_some();
            if !exists && !mkstream {
                return Err(Error::XgroupNeedsKey);
            }
            let has_group = exists && ks.stream_mut(db, key, now)?.is_some_and(|st| st.group(group).is_some());
            if !has_group
                && matches!(
                    cmd,
                    Cmd::XgroupSetid | Cmd::XgroupCreateconsumer | Cmd::XgroupDelconsumer
                )
            {
                return Err(Error::NoGroupForKey(group.clone(), key.clone()));
            }
            if !shape_ok {
                return Err(syntax());
            }
            match cmd {
                Cmd::XgroupCreate => {
                    let id = match args[4].as_ref() {
                        b"$" => ks.stream_mut(db, key, now)?.map_or(Id::MIN, |st| st.last_id()),
                        other => strict_id(other)?,
                    };
                    if !exists {
                        ks.create_stream(db, key);
                        ks.written(db, key);
                    }
                    let st = ks.stream_mut(db, key, now)?.expect("exists");
                    if !st.create_group(Bytes::copy_from_slice(group), id, entries_read) {
                        return Err(Error::BusyGroup);
                    }
                    ks.notify(db, STREAM, "xgroup-create", key);
                    ks.journal.verbatim(db, args);
                    Ok(None)
                }
                Cmd::XgroupSetid => {
                    let st = ks.stream_mut(db, key, now)?.expect("exists");
                    let id = match args[4].as_ref() {
                        b"$" => st.last_id(),
                        other => parse_range_start(other).map_err(|_| Error::InvalidStreamId)?,
                    };
                    st.set_group_id(group, id, entries_read);
                    ks.notify(db, STREAM, "xgroup-setid", key);
                    ks.journal.verbatim(db, args);
                    Ok(None)
                }
                Cmd::XgroupDestroy => {
                    let st = ks.stream_mut(db, key, now)?.expect("exists");
                    if !st.destroy_group(group) {
                        return Ok(Some(0));
                    }
                    ks.notify(db, STREAM, "xgroup-destroy", key);
                    ks.journal.verbatim(db, args);
                    // Readers blocked on the group get their NOGROUP.
                    ks.signal_ready(db, key);
                    Ok(Some(1))
                }
                Cmd::XgroupCreateconsumer => {
                    let st = ks.stream_mut(db, key, now)?.expect("exists");
                    let created = st.create_consumer(group, consumer_arg(args), now);
                    if created {
                        ks.notify(db, STREAM, "xgroup-createconsumer", key);
                        ks.journal.verbatim(db, args);
                    }
                    Ok(Some(created as i64))
                }
                _ => {
                    let st = ks.stream_mut(db, key, now)?.expect("exists");
                    let name = consumer_arg(args);
                    let existed = st.group(group).is_some_and(|g| g.consumer(name).is_some());
                    let pending = st.del_consumer(group, name);
                    if existed {
                        ks.notify(db, STREAM, "xgroup-delconsumer", key);
                        ks.journal.verbatim(db, args);
                    }
                    Ok(Some(pending as i64))
                }
            }
        })?;
        match reply {
            None => self.ok(),
            Some(n) => self.reply().integer(n),
        }
        Ok(())
    }

    fn xinfo(&mut self, cmd: Cmd, args: &[Bytes]) -> Result<(), Error> {
        let key = &args[2];
        self.with_keys(|s, ks| -> Result<(), Error> {
            let now = now_ms();
            let st = ks.stream_mut(s.db, key, now)?.ok_or(Error::NoSuchKey)?;
            let syntax = || Error::SubcommandSyntax {
                sub: args[1].clone(),
                container: "xinfo",
            };
            match cmd {
                Cmd::XinfoConsumers => {
                    if args.len() != 4 {
                        return Err(syntax());
                    }
                    let g = st
                        .group(&args[3])
                        .ok_or_else(|| Error::NoGroupForKey(args[3].clone(), key.clone()))?;
                    let mut e = s.reply();
                    e.array(g.consumer_count());
                    for (name, c) in g.consumers() {
                        e.map(4);
                        e.bulk(b"name");
                        e.bulk(name);
                        e.bulk(b"pending");
                        e.integer(c.pending as i64);
                        e.bulk(b"idle");
                        e.integer(now.saturating_sub(c.seen_ms) as i64);
                        e.bulk(b"inactive");
                        e.integer(c.active_ms.map_or(-1, |a| now.saturating_sub(a) as i64));
                    }
                }
                Cmd::XinfoGroups => {
                    if args.len() != 3 {
                        return Err(syntax());
                    }
                    let mut id_buf = Vec::with_capacity(42);
                    let mut e = s.reply();
                    e.array(st.group_count());
                    for (name, g) in st.groups() {
                        let (read, lag) = st.entries_read_and_lag(name);
                        e.map(6);
                        e.bulk(b"name");
                        e.bulk(name);
                        e.bulk(b"consumers");
                        e.integer(g.consumer_count() as i64);
                        e.bulk(b"pending");
                        e.integer(g.pel_len() as i64);
                        e.bulk(b"last-delivered-id");
                        write_id(&mut e, g.last_id(), &mut id_buf);
                        e.bulk(b"entries-read");
                        integer_or_null(&mut e, read);
                        e.bulk(b"lag");
                        integer_or_null(&mut e, lag);
                    }
                }
                _ => {
                    let mut full = None;
                    if args.len() > 3 {
                        if !args[3].eq_ignore_ascii_case(b"FULL") {
                            return Err(syntax());
                        }
                        let mut count = 10usize;
                        if args.len() > 4 {
                            if args.len() != 6 || !args[4].eq_ignore_ascii_case(b"COUNT") {
                                return Err(syntax());
                            }
                            let n = super::parse_i64(&args[5]).ok_or(Error::NotInteger)?;
                            count = if n < 0 { 10 } else { n as usize };
                        }
                        full = Some(count);
                    }
                    let mut e = s.reply();
                    stream_info(&mut e, st, full);
                }
            }
            Ok(())
        })
    }
}

fn consumer_arg(args: &[Bytes]) -> &[u8] {
    &args[4]
}

fn integer_or_null(e: &mut Encoder, v: Option<u64>) {
    match v {
        Some(n) => e.integer(n as i64),
        None => e.null(),
    }
}

/// XINFO STREAM [FULL [COUNT n]] (`full`: the count, 0 = everything).
fn stream_info(e: &mut Encoder, st: &Stream, full: Option<usize>) {
    let mut id_buf = Vec::with_capacity(42);
    e.map(if full.is_some() { 9 } else { 10 });
    e.bulk(b"length");
    e.integer(st.len() as i64);
    e.bulk(b"radix-tree-keys");
    e.integer(st.node_count() as i64);
    e.bulk(b"radix-tree-nodes");
    // rax-internal in Redis; a tree over the node keys has about 1.5 nodes per key.
    e.integer((st.node_count() + st.node_count() / 2 + 1) as i64);
    e.bulk(b"last-generated-id");
    write_id(e, st.last_id(), &mut id_buf);
    e.bulk(b"max-deleted-entry-id");
    write_id(e, st.max_deleted_id(), &mut id_buf);
    e.bulk(b"entries-added");
    e.integer(st.entries_added() as i64);
    e.bulk(b"recorded-first-entry-id");
    write_id(e, st.first_id(), &mut id_buf);
    let Some(count) = full else {
        e.bulk(b"groups");
        e.integer(st.group_count() as i64);
        for (name, entry) in [
            (&b"first-entry"[..], st.range(Id::MIN, Id::MAX).next()),
            (b"last-entry", st.range_rev(Id::MAX, Id::MIN).next()),
        ] {
            e.bulk(name);
            match entry {
                Some(entry) => write_entry(e, &entry, &mut id_buf),
                None => e.null(),
            }
        }
        return;
    };
    let limit = if count == 0 { usize::MAX } else { count };
    e.bulk(b"entries");
    let entries: Vec<_> = st.range(Id::MIN, Id::MAX).take(limit).collect();
    e.array(entries.len());
    for entry in &entries {
        write_entry(e, entry, &mut id_buf);
    }
    e.bulk(b"groups");
    e.array(st.group_count());
    for (name, g) in st.groups() {
        let (read, lag) = st.entries_read_and_lag(name);
        e.map(7);
        e.bulk(b"name");
        e.bulk(name);
        e.bulk(b"last-delivered-id");
        write_id(e, g.last_id(), &mut id_buf);
        e.bulk(b"entries-read");
        integer_or_null(e, read);
        e.bulk(b"lag");
        integer_or_null(e, lag);
        e.bulk(b"pel-count");
        e.integer(g.pel_len() as i64);
        e.bulk(b"pending");
        let pel: Vec<_> = g.pel().take(limit).collect();
        e.array(pel.len());
        for (id, p) in &pel {
            e.array(4);
            write_id(e, *id, &mut id_buf);
            e.bulk(g.consumer_name(p.consumer).map_or(&b""[..], |n| n));
            e.integer(p.delivery_ms as i64);
            e.integer(p.count as i64);
        }
        e.bulk(b"consumers");
        e.array(g.consumer_count());
        for (cname, c) in g.consumers() {
            consumer_info(e, g, cname, c, limit, &mut id_buf);
        }
    }
}

fn consumer_info(
    e: &mut Encoder,
    g: &Group,
    name: &Bytes,
    c: &crate::stream::Consumer,
    limit: usize,
    id_buf: &mut Vec<u8>,
) {
    e.map(5);
    e.bulk(b"name");
    e.bulk(name);
    e.bulk(b"seen-time");
    e.integer(c.seen_ms as i64);
    e.bulk(b"active-time");
    e.integer(c.active_ms.map_or(-1, |a| a as i64));
    e.bulk(b"pel-count");
    e.integer(c.pending as i64);
    e.bulk(b"pending");
    let pel: Vec<_> = g.consumer_pel(name).take(limit).collect();
    e.array(pel.len());
    for (id, p) in &pel {
        e.array(3);
        write_id(e, *id, id_buf);
        e.integer(p.delivery_ms as i64);
        e.integer(p.count as i64);
    }
}
