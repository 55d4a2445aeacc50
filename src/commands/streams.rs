//! Stream commands on entries: XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM, XSETID, and
//! the reads XREAD / XREADGROUP (blocking included: [`serve_key`] is what a write runs
//! for the readers blocked on its key). Consumer-group administration and XINFO are in
//! `groups`. Reply shapes and argument rules are Redis 7.2's
//! (`../shared/reference/redis-streams.md`).

use bytes::{Bytes, BytesMut};

use super::errors::Error;
use super::{Flow, Session};
use crate::config::notify::STREAM;
use crate::config::Settings;
use crate::keyspace::blocked::{Outcome, Read, Waiter};
use crate::keyspace::{now_ms, Keyspace};
use crate::protocol::reply::{Encoder, Proto};
use crate::spec::{Cmd, Spec};
use crate::stream::{
    self, parse_add_id, parse_id, parse_range_end, parse_range_start, EntryRef, Id, NodeLimits, RangeError, Stream,
    StreamError, Trim, TrimStrategy,
};

impl From<RangeError> for Error {
    fn from(e: RangeError) -> Error {
        match e {
            RangeError::Invalid => Error::InvalidStreamId,
            RangeError::StartExclusiveMax => Error::InvalidStartInterval,
            RangeError::EndExclusiveMin => Error::InvalidEndInterval,
        }
    }
}

impl From<StreamError> for Error {
    fn from(e: StreamError) -> Error {
        match e {
            StreamError::IdZero => Error::XaddIdZero,
            StreamError::IdTooSmall => Error::XaddIdTooSmall,
            StreamError::Exhausted => Error::StreamExhausted,
            StreamError::EntriesAddedTooSmall => Error::XsetidEntriesAddedTooSmall,
            StreamError::MaxDeletedGreaterThanId => Error::XsetidMaxDeletedAboveId,
            StreamError::SetIdTooSmall => Error::XsetidTooSmall,
            StreamError::SetIdBelowMaxDeleted => Error::XsetidBelowMaxDeleted,
        }
    }
}

impl From<crate::keyspace::WrongType> for Error {
    fn from(_: crate::keyspace::WrongType) -> Error {
        Error::WrongType
    }
}

/// A strict ID argument (no `-`/`+`): a missing sequence is 0.
pub(super) fn strict_id(arg: &[u8]) -> Result<Id, Error> {
    parse_id(arg, 0).ok_or(Error::InvalidStreamId)
}

/// The node layout for new nodes, from `stream-node-max-entries/bytes`.
pub(super) fn node_limits(settings: &Settings) -> NodeLimits {
    use std::sync::atomic::Ordering::Relaxed;
    NodeLimits {
        max_entries: settings.stream_node_max_entries.load(Relaxed) as usize,
        max_bytes: settings.stream_node_max_bytes.load(Relaxed) as usize,
    }
}

/// `["id", [f, v, ...]]`.
pub(super) fn write_entry(e: &mut Encoder, entry: &EntryRef, id_buf: &mut Vec<u8>) {
    e.array(2);
    write_id(e, entry.id, id_buf);
    e.array(entry.field_count() * 2);
    for (f, v) in entry.fields() {
        e.bulk(f);
        e.bulk(v);
    }
}

pub(super) fn write_id(e: &mut Encoder, id: Id, id_buf: &mut Vec<u8>) {
    id_buf.clear();
    id.write_to(id_buf);
    e.bulk(id_buf);
}

/// Entries in [start, end] (reversed: from end down to start), at most `count` (0: all).
fn write_range(e: &mut Encoder, s: &Stream, start: Id, end: Id, count: usize, rev: bool) {
    let limit = if count == 0 { usize::MAX } else { count };
    let entries: Vec<EntryRef> = if rev {
        s.range_rev(end, start).take(limit).collect()
    } else {
        s.range(start, end).take(limit).collect()
    };
    let mut id_buf = Vec::with_capacity(42);
    e.array(entries.len());
    for entry in &entries {
        write_entry(e, entry, &mut id_buf);
    }
}

/// Parsed MAXLEN/MINID/LIMIT options (XADD and XTRIM share them).
struct TrimArgs {
    trim: Option<Trim>,
    nomkstream: bool,
    /// Where `~` is: the journal writes `=` there and the exact threshold after it.
    approx_at: Option<usize>,
}

/// Redis's `streamParseAddOrTrimArgsOrReply`: reads options from `args[2..]`; for XADD
/// stops at the first argument that is not an option (the ID) and returns its index.
/// `replaying` (the AOF): LIMIT is allowed after `=` and ignored, as Redis ignores it for
/// its master and its AOF, whose trims were made exact.
fn parse_trim_args(args: &[Bytes], xadd: bool, replaying: bool) -> Result<(TrimArgs, usize), Error> {
    let mut i = 2;
    let (mut strategy, mut approx, mut limit, mut nomkstream) = (None, false, None::<u64>, false);
    let mut approx_at = None;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let mut word = [0u8; 16];
        let opt = super::args::upper(&args[i], &mut word);
        match opt {
            b"MAXLEN" | b"MINID" if more > 0 => {
                let maxlen = opt == b"MAXLEN";
                if matches!(
                    (&strategy, maxlen),
                    (Some(TrimStrategy::MinId(_)), true) | (Some(TrimStrategy::MaxLen(_)), false)
                ) {
                    return Err(Error::MaxlenWithMinid);
                }
                let next = &args[i + 1];
                if more >= 2 && (next.as_ref() == b"~" || next.as_ref() == b"=") {
                    approx = next.as_ref() == b"~";
                    approx_at = approx.then_some(i + 1);
                    i += 1;
                } else {
                    approx_at = None;
                }
                i += 1;
                strategy = Some(if maxlen {
                    let n = super::parse_i64(&args[i]).ok_or(Error::NotInteger)?;
                    if n < 0 {
                        return Err(Error::MaxlenNegative);
                    }
                    TrimStrategy::MaxLen(n as u64)
                } else {
                    TrimStrategy::MinId(strict_id(&args[i])?)
                });
                i += 1;
            }
            b"LIMIT" if more > 0 => {
                let n = super::parse_i64(&args[i + 1]).ok_or(Error::LimitNegative)?;
                if n < 0 {
                    return Err(Error::LimitNegative);
                }
                limit = Some(n as u64);
                i += 2;
            }
            b"NOMKSTREAM" if xadd => {
                nomkstream = true;
                i += 1;
            }
            _ if xadd => break,
            _ => return Err(Error::Syntax),
        }
    }
    if limit.is_some_and(|l| l > 0) && strategy.is_none() {
        return Err(Error::LimitWithoutStrategy);
    }
    if !xadd && strategy.is_none() {
        return Err(Error::XtrimNoStrategy);
    }
    if replaying {
        limit = None;
    } else if limit.is_some() && !approx {
        return Err(Error::LimitWithoutApprox);
    }
    let trim = strategy.map(|strategy| Trim {
        strategy,
        approx,
        limit,
    });
    Ok((
        TrimArgs {
            trim,
            nomkstream,
            approx_at,
        },
        i,
    ))
}

/// A `~` trim made exact for the journal: its position in the request and what it left.
struct Exact {
    at: usize,
    threshold: Threshold,
}

enum Threshold {
    Len(u64),
    First(Id),
}

/// After an approximate trim: the exact threshold that leaves the same entries (Redis's
/// `streamRewriteTrimArgument`; an empty stream's first ID is the maximum).
fn exact_threshold(st: &Stream, opts: &TrimArgs) -> Option<Exact> {
    let at = opts.approx_at?;
    let threshold = match opts.trim?.strategy {
        TrimStrategy::MaxLen(_) => Threshold::Len(st.len()),
        TrimStrategy::MinId(_) => Threshold::First(st.first_entry_id().unwrap_or(Id::MAX)),
    };
    Some(Exact { at, threshold })
}

/// Journals XADD/XTRIM/XDEL as Redis propagates them: the request, with the ID XADD
/// generated in place of its ID argument, and a `~` trim as `=` and its exact threshold.
fn journal_rewritten(ks: &mut Keyspace, db: usize, args: &[Bytes], id: Option<(usize, Id)>, exact: Option<Exact>) {
    if !ks.journal.is_on() {
        return;
    }
    let j = ks.journal.command(db, args.len());
    for (i, a) in args.iter().enumerate() {
        match (&id, &exact) {
            (Some((at, id)), _) if *at == i => j.arg_id(*id),
            (_, Some(e)) if e.at == i => j.arg(b"="),
            (_, Some(e)) if e.at + 1 == i => match e.threshold {
                Threshold::Len(n) => j.arg_int(n as i64),
                Threshold::First(id) => j.arg_id(id),
            },
            _ => j.arg(a),
        };
    }
}

/// What XREAD/XREADGROUP were asked.
struct ReadArgs<'a> {
    count: usize,
    /// BLOCK in milliseconds.
    block: Option<u64>,
    group: Option<(&'a Bytes, &'a Bytes)>,
    noack: bool,
    keys: &'a [Bytes],
    ids: &'a [Bytes],
}

fn parse_read_args(args: &[Bytes], group_cmd: bool) -> Result<ReadArgs<'_>, Error> {
    let (mut count, mut block, mut group, mut noack) = (0usize, None, None, false);
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let mut word = [0u8; 16];
        let opt = super::args::upper(&args[i], &mut word);
        match opt {
            b"BLOCK" if more > 0 => {
                i += 1;
                let n = super::parse_i64(&args[i]).ok_or(Error::TimeoutNotInteger)?;
                if n < 0 {
                    return Err(Error::TimeoutNegative);
                }
                if n as u64 > i64::MAX as u64 - now_ms() {
                    return Err(Error::TimeoutOutOfRange);
                }
                block = Some(n as u64);
            }
            b"COUNT" if more > 0 => {
                i += 1;
                let n = super::parse_i64(&args[i]).ok_or(Error::NotInteger)?;
                count = n.max(0) as usize;
            }
            b"STREAMS" if more > 0 => {
                let rest = &args[i + 1..];
                if !rest.len().is_multiple_of(2) {
                    return Err(Error::Unbalanced(if group_cmd { "xreadgroup" } else { "xread" }));
                }
                let (keys, ids) = rest.split_at(rest.len() / 2);
                if group_cmd && group.is_none() {
                    return Err(Error::MissingGroup);
                }
                return Ok(ReadArgs {
                    count,
                    block,
                    group,
                    noack,
                    keys,
                    ids,
                });
            }
            b"GROUP" if more >= 2 => {
                if !group_cmd {
                    return Err(Error::GroupOnlyXreadgroup);
                }
                group = Some((&args[i + 1], &args[i + 2]));
                i += 2;
            }
            b"NOACK" => {
                if !group_cmd {
                    return Err(Error::NoackOnlyXreadgroup);
                }
                noack = true;
            }
            _ => return Err(Error::Syntax),
        }
        i += 1;
    }
    Err(Error::Syntax)
}

/// Per key, what a read starts after.
#[derive(Clone, Copy)]
enum After {
    Id(Id),
    /// XREADGROUP `>`.
    New,
}

impl Session {
    pub(super) fn streams(&mut self, spec: &'static Spec, args: &[Bytes]) -> Flow {
        let r = match spec.cmd {
            Cmd::Xadd => self.xadd(args),
            Cmd::Xrange => self.xrange(args, false),
            Cmd::Xrevrange => self.xrange(args, true),
            Cmd::Xlen => self.xlen(&args[1]),
            Cmd::Xdel => self.xdel(args),
            Cmd::Xtrim => self.xtrim(args),
            Cmd::Xsetid => self.xsetid(args),
            Cmd::Xread | Cmd::Xreadgroup => return self.xread(spec, args),
            _ => self.stream_groups(spec, args),
        };
        if let Err(e) = r {
            self.fail(e);
        }
        Flow::Continue
    }

    fn xadd(&mut self, args: &[Bytes]) -> Result<(), Error> {
        let (opts, id_pos) = parse_trim_args(args, true, self.replaying)?;
        let id_arg = args.get(id_pos).ok_or(Error::WrongArity("xadd"))?;
        let add = parse_add_id(id_arg).ok_or(Error::InvalidStreamId)?;
        let fields = &args[id_pos + 1..];
        if fields.len() < 2 || fields.len() % 2 == 1 {
            return Err(Error::WrongArity("xadd"));
        }
        if add.is_zero() {
            return Err(Error::XaddIdZero);
        }
        let limits = node_limits(&self.broker.settings);
        let id = self.with_keys(|s, ks| -> Result<Option<Id>, Error> {
            let (db, key, now) = (s.db, &args[1], now_ms());
            let add_to = |st: &mut Stream| -> Result<(Id, bool, Option<Exact>), Error> {
                let id = st.next_id(add, now)?;
                st.append(id, fields, &limits);
                let trimmed = opts.trim.is_some_and(|t| st.trim(&t, &limits) > 0);
                Ok((id, trimmed, exact_threshold(st, &opts)))
            };
            let (id, trimmed, exact) = match ks.stream_mut(db, key, now)? {
                Some(st) => add_to(st)?,
                None if opts.nomkstream => return Ok(None),
                None => {
                    // Checked on an empty stream first, so a refused ID creates no key.
                    Stream::new().next_id(add, now)?;
                    add_to(ks.create_stream(db, key))?
                }
            };
            ks.written(db, key);
            ks.notify(db, STREAM, "xadd", key);
            if trimmed {
                ks.notify(db, STREAM, "xtrim", key);
            }
            journal_rewritten(ks, db, args, Some((id_pos, id)), exact);
            Ok(Some(id))
        })?;
        match id {
            Some(id) => {
                let mut buf = Vec::with_capacity(42);
                write_id(&mut self.reply(), id, &mut buf);
            }
            None => self.reply().null(),
        }
        Ok(())
    }

    fn xrange(&mut self, args: &[Bytes], rev: bool) -> Result<(), Error> {
        let (start_arg, end_arg) = if rev {
            (&args[3], &args[2])
        } else {
            (&args[2], &args[3])
        };
        let start = parse_range_start(start_arg)?;
        let end = parse_range_end(end_arg)?;
        let mut count = None;
        let mut j = 4;
        while j < args.len() {
            if args[j].eq_ignore_ascii_case(b"COUNT") && j + 1 < args.len() {
                count = Some(super::parse_i64(&args[j + 1]).ok_or(Error::NotInteger)?.max(0) as usize);
                j += 2;
            } else {
                return Err(Error::Syntax);
            }
        }
        if count == Some(0) {
            self.reply().null_array();
            return Ok(());
        }
        self.with_keys(|s, ks| -> Result<(), Error> {
            let st = ks.stream_mut(s.db, &args[1], now_ms())?;
            let mut e = s.reply();
            match st {
                None => e.array(0),
                Some(st) => write_range(&mut e, st, start, end, count.unwrap_or(0), rev),
            }
            Ok(())
        })
    }

    fn xlen(&mut self, key: &[u8]) -> Result<(), Error> {
        let n = self.with_keys(|s, ks| ks.stream_mut(s.db, key, now_ms()).map(|st| st.map_or(0, |st| st.len())))?;
        self.reply().integer(n as i64);
        Ok(())
    }

    fn xdel(&mut self, args: &[Bytes]) -> Result<(), Error> {
        let ids = args[2..]
            .iter()
            .map(|a| strict_id(a))
            .collect::<Result<Vec<Id>, Error>>()?;
        self.remove_entries(args, "xdel", |st| {
            (ids.iter().filter(|&&id| st.delete(id)).count() as u64, None)
        })
    }

    fn xtrim(&mut self, args: &[Bytes]) -> Result<(), Error> {
        let (opts, _) = parse_trim_args(args, false, self.replaying)?;
        let trim = opts.trim.expect("XTRIM requires a strategy");
        let limits = node_limits(&self.broker.settings);
        self.remove_entries(args, "xtrim", |st| {
            (st.trim(&trim, &limits), exact_threshold(st, &opts))
        })
    }

    /// XDEL and XTRIM: `remove` on the stream at `args[1]` (0 when there is none) is the
    /// reply; a removal is a write, raises `event` and is journaled (exact, for `~`).
    fn remove_entries(
        &mut self,
        args: &[Bytes],
        event: &'static str,
        remove: impl FnOnce(&mut Stream) -> (u64, Option<Exact>),
    ) -> Result<(), Error> {
        let key = &args[1];
        let n = self.with_keys(|s, ks| -> Result<u64, Error> {
            let db = s.db;
            let Some(st) = ks.stream_mut(db, key, now_ms())? else {
                return Ok(0);
            };
            let (n, exact) = remove(st);
            if n > 0 {
                ks.written(db, key);
                ks.notify(db, STREAM, event, key);
                journal_rewritten(ks, db, args, None, exact);
            }
            Ok(n)
        })?;
        self.reply().integer(n as i64);
        Ok(())
    }

    fn xsetid(&mut self, args: &[Bytes]) -> Result<(), Error> {
        let last = strict_id(&args[2])?;
        let (mut added, mut max_deleted) = (None, None);
        let mut i = 3;
        while i < args.len() {
            let more = args.len() - 1 - i;
            let mut word = [0u8; 16];
            let opt = super::args::upper(&args[i], &mut word);
            match opt {
                b"ENTRIESADDED" if more > 0 => {
                    let n = super::parse_i64(&args[i + 1]).ok_or(Error::NotInteger)?;
                    if n < 0 {
                        return Err(Error::EntriesAddedNegative);
                    }
                    added = Some(n as u64);
                }
                b"MAXDELETEDID" if more > 0 => {
                    let id = strict_id(&args[i + 1])?;
                    stream::check_set_id_args(last, Some(id))?;
                    max_deleted = Some(id);
                }
                _ => return Err(Error::Syntax),
            }
            i += 2;
        }
        self.with_keys(|s, ks| -> Result<(), Error> {
            let (db, key) = (s.db, &args[1]);
            let st = ks.stream_mut(db, key, now_ms())?.ok_or(Error::NoSuchKey)?;
            st.set_id(last, added, max_deleted.filter(|id| *id != Id::MIN))?;
            ks.written(db, key);
            ks.notify(db, STREAM, "xsetid", key);
            ks.journal.verbatim(db, args);
            Ok(())
        })?;
        self.ok();
        Ok(())
    }

    /// XREAD and XREADGROUP: serve what is there, else block (or answer null).
    fn xread(&mut self, spec: &'static Spec, args: &[Bytes]) -> Flow {
        let group_cmd = spec.cmd == Cmd::Xreadgroup;
        let r = parse_read_args(args, group_cmd);
        let a = match r {
            Ok(a) => a,
            Err(e) => {
                self.fail(e);
                return Flow::Continue;
            }
        };
        let r = self.with_keys(|s, ks| s.read_streams(ks, spec, &a));
        match r {
            Ok(flow) => flow,
            Err(e) => {
                self.fail(e);
                Flow::Continue
            }
        }
    }

    fn read_streams(&mut self, ks: &mut Keyspace, spec: &'static Spec, a: &ReadArgs) -> Result<Flow, Error> {
        let (db, now) = (self.db, now_ms());
        // Resolve every key's starting point first, in argument order, as Redis does
        // (the first problem is the one reported).
        let mut afters = Vec::with_capacity(a.keys.len());
        for (key, id) in a.keys.iter().zip(a.ids) {
            let st = ks.stream_mut(db, key, now)?;
            if let Some((group, _)) = a.group {
                if st.as_ref().is_none_or(|st| st.group(group).is_none()) {
                    return Err(Error::NoGroupRead(key.clone(), group.clone()));
                }
            }
            let after = match id.as_ref() {
                b"$" if a.group.is_some() => return Err(Error::DollarInXreadgroup),
                b"$" => After::Id(st.map_or(Id::MIN, |st| st.last_id())),
                b">" if a.group.is_none() => return Err(Error::XreadGreaterId),
                b">" => After::New,
                other => After::Id(strict_id(other)?),
            };
            afters.push(after);
        }
        let proto = self.proto;
        let journaling = ks.journal.is_on();
        let mut out = BytesMut::new();
        let mut served = 0;
        {
            let mut e = Encoder::new(&mut out, proto);
            for (key, after) in a.keys.iter().zip(&afters) {
                let Some(st) = ks.stream_mut(db, key, now)? else {
                    continue;
                };
                let wrote = match (a.group, *after) {
                    (None, After::Id(id)) => {
                        if st.last_entry_id().is_none_or(|last| last <= id) {
                            false
                        } else {
                            write_key_header(&mut e, key, proto);
                            write_range(&mut e, st, id.next().unwrap_or(Id::MAX), Id::MAX, a.count, false);
                            true
                        }
                    }
                    (Some((group, consumer)), after) => {
                        let created = st.create_consumer(group, consumer, now);
                        let new = matches!(after, After::New);
                        let (wrote, delivered) = match after {
                            After::Id(id) => {
                                write_key_header(&mut e, key, proto);
                                let hist = st.read_group_history(group, consumer, id, a.count, now);
                                write_history(&mut e, st, &hist);
                                let live = match journaling {
                                    true => hist.iter().filter(|h| h.1).map(|h| h.0).collect(),
                                    false => Vec::new(),
                                };
                                (true, live)
                            }
                            After::New if st.has_new_for_group(group) => {
                                write_key_header(&mut e, key, proto);
                                let ids = st.read_group_new(group, consumer, a.count, a.noack, now);
                                write_delivered(&mut e, st, &ids);
                                (true, ids)
                            }
                            After::New => (false, Vec::new()),
                        };
                        let record = journaling.then(|| PelChanges::read(st, group, &delivered, a.noack, new));
                        if created {
                            ks.notify(db, STREAM, "xgroup-createconsumer", key);
                        }
                        if let Some(r) = record {
                            r.journal(ks, db, key, group, consumer, created);
                        }
                        wrote
                    }
                    (None, After::New) => unreachable!("`>` needs GROUP"),
                };
                served += wrote as usize;
            }
        }
        if served > 0 {
            let mut e = self.reply();
            if proto == Proto::Resp3 {
                e.map(served);
            } else {
                e.array(served);
            }
            if !self.silenced {
                self.out.extend_from_slice(&out);
            }
            return Ok(Flow::Continue);
        }
        let Some(timeout) = a.block else {
            self.reply().null_array();
            return Ok(Flow::Continue);
        };
        if self.in_exec {
            // Inside EXEC a read that would block answers as a timeout would.
            self.reply().null_array();
            return Ok(Flow::Continue);
        }
        let keys: Vec<(Bytes, u64)> = a.keys.iter().map(|k| (Bytes::copy_from_slice(k), ks.hash(k))).collect();
        let read = match a.group {
            Some((group, consumer)) => Read::Group {
                group: Bytes::copy_from_slice(group),
                consumer: Bytes::copy_from_slice(consumer),
                noack: a.noack,
            },
            None => Read::Plain {
                after: afters
                    .iter()
                    .map(|a| match a {
                        After::Id(id) => *id,
                        After::New => Id::MAX,
                    })
                    .collect(),
            },
        };
        let (outbox, settings, silenced) = (self.client.outbox.clone(), self.broker.settings.clone(), self.silenced);
        let deliver = Box::new(move |reply: Bytes| {
            if !silenced {
                outbox.push_reply(reply, &settings);
            }
        });
        let waiter = Waiter::new(self.id(), db, keys, read, a.count, proto == Proto::Resp3, deliver);
        Ok(self.block(ks, spec, waiter, timeout))
    }
}

/// `key =>` in RESP3, `[key, ...]` in RESP2.
fn write_key_header(e: &mut Encoder, key: &[u8], proto: Proto) {
    if proto != Proto::Resp3 {
        e.array(2);
    }
    e.bulk(key);
}

/// Entries a `>` read delivered (consecutive live entries).
fn write_delivered(e: &mut Encoder, st: &Stream, ids: &[Id]) {
    match (ids.first(), ids.last()) {
        (Some(&first), Some(&last)) => write_range(e, st, first, last, 0, false),
        _ => e.array(0),
    }
}

/// A consumer's history: deleted entries as `[id, nil]`.
fn write_history(e: &mut Encoder, st: &Stream, hist: &[(Id, bool)]) {
    let mut id_buf = Vec::with_capacity(42);
    e.array(hist.len());
    for &(id, exists) in hist {
        match st.get(id).filter(|_| exists) {
            Some(entry) => write_entry(e, &entry, &mut id_buf),
            None => {
                e.array(2);
                write_id(e, id, &mut id_buf);
                e.null_array();
            }
        }
    }
}

/// Serves the readers blocked on `key` after a write, in the order they blocked (see
/// `crate::keyspace::blocked`). XREAD readers that asked for the same thing share one
/// encoded reply.
pub(super) fn serve_key(ks: &mut Keyspace, db: usize, key: &[u8]) {
    let h = ks.hash(key);
    let waiters = ks.blocked.waiters(db, h);
    let mut shared: Vec<((Id, usize, bool), Bytes)> = Vec::new();
    let now = now_ms();
    for w in waiters {
        if !w.is_waiting() || !w.keys.iter().any(|k| k == key) {
            continue;
        }
        let i = w.keys.iter().position(|k| k == key).expect("checked");
        let proto = if w.resp3 { Proto::Resp3 } else { Proto::Resp2 };
        let outcome = match &w.read {
            Read::Plain { after } => {
                let after = after[i];
                let Ok(Some(st)) = ks.stream_mut(db, key, now) else {
                    continue;
                };
                if st.last_entry_id().is_none_or(|last| last <= after) {
                    continue;
                }
                let tag = (after, w.count, w.resp3);
                let bytes = match shared.iter().find(|(t, _)| *t == tag) {
                    Some((_, b)) => b.clone(),
                    None => {
                        let mut out = BytesMut::new();
                        let mut e = Encoder::new(&mut out, proto);
                        one_key_reply(&mut e, key, proto);
                        write_range(&mut e, st, after.next().unwrap_or(Id::MAX), Id::MAX, w.count, false);
                        let b = out.freeze();
                        shared.push((tag, b.clone()));
                        b
                    }
                };
                Served::Reply(bytes)
            }
            Read::Group { group, consumer, noack } => {
                // 7.2: the command runs again; a key or group gone is its NOGROUP.
                let missing = w
                    .keys
                    .iter()
                    .find(|k| !matches!(ks.stream_mut(db, k, now), Ok(Some(st)) if st.group(group).is_some()));
                if let Some(k) = missing {
                    let err = match ks.stream_mut(db, k, now) {
                        Err(_) => Error::WrongType,
                        _ => Error::NoGroupRead(k.clone(), group.clone()),
                    };
                    Served::Failed(Outcome::Error(Bytes::from(err.text())))
                } else {
                    let st = ks.stream_mut(db, key, now).ok().flatten().expect("checked above");
                    if !st.has_new_for_group(group) {
                        continue;
                    }
                    let ids = st.read_group_new(group, consumer, w.count, *noack, now);
                    let mut out = BytesMut::new();
                    let mut e = Encoder::new(&mut out, proto);
                    one_key_reply(&mut e, key, proto);
                    write_delivered(&mut e, st, &ids);
                    if ks.journal.is_on() {
                        let st = ks.stream_mut(db, key, now).ok().flatten().expect("checked above");
                        PelChanges::read(st, group, &ids, *noack, true).journal(ks, db, key, group, consumer, false);
                    }
                    Served::Reply(out.freeze())
                }
            }
        };
        ks.blocked.remove(&w);
        match outcome {
            Served::Reply(bytes) => w.serve(bytes),
            Served::Failed(o) => w.finish(o),
        };
    }
}

/// What a group read or claim changed in a PEL, gathered while the stream is at hand
/// and journaled as Redis propagates it: an XCLAIM per entry delivered or claimed (its
/// owner, delivery time and count, and LASTID, the group's position), an XCLAIM per
/// pending entry dropped because its entry is gone (the replay drops it too), the group's
/// position as XGROUP SETID whenever it moved (its entries-read, which LASTID does not
/// carry, survives a restart; Redis 7.0 loses it), and XGROUP CREATECONSUMER for a
/// consumer nothing else creates on replay.
pub(super) struct PelChanges {
    last: Id,
    entries_read: Option<u64>,
    /// (id, delivery time, delivery count) of each entry now pending.
    pending: Vec<(Id, u64, u32)>,
    gone: Vec<Id>,
    moved: bool,
    now: u64,
}

impl PelChanges {
    /// After XREADGROUP delivered `delivered`: new entries (`new`, the group's position
    /// moved: written as XGROUP SETID with its entries-read too, which XCLAIM's LASTID
    /// does not carry), or the consumer's history.
    pub(super) fn read(st: &Stream, group: &[u8], delivered: &[Id], noack: bool, new: bool) -> PelChanges {
        let ids = if noack { &[][..] } else { delivered };
        PelChanges::of(st, group, ids, Vec::new(), new && !delivered.is_empty(), 0)
    }

    /// After XCLAIM/XAUTOCLAIM: `claimed`, `gone` (pending entries whose entry was
    /// deleted), and the group's position before (LASTID may move it).
    pub(super) fn claim(
        st: &Stream,
        group: &[u8],
        claimed: &[Id],
        gone: Vec<Id>,
        last_before: Option<Id>,
        now: u64,
    ) -> PelChanges {
        let moved = st.group(group).map(|g| g.last_id()) != last_before;
        PelChanges::of(st, group, claimed, gone, moved, now)
    }

    fn of(st: &Stream, group: &[u8], ids: &[Id], gone: Vec<Id>, moved: bool, now: u64) -> PelChanges {
        let g = st.group(group);
        PelChanges {
            last: g.map_or(Id::MIN, |g| g.last_id()),
            entries_read: g.and_then(|g| g.entries_read()),
            pending: ids
                .iter()
                .filter_map(|&id| g?.pending(id).map(|p| (id, p.delivery_ms, p.count)))
                .collect(),
            gone,
            moved,
            now,
        }
    }

    /// `created`: the command created `consumer`.
    pub(super) fn journal(
        self,
        ks: &mut Keyspace,
        db: usize,
        key: &[u8],
        group: &[u8],
        consumer: &[u8],
        created: bool,
    ) {
        let j = &mut ks.journal;
        let claims = !self.pending.is_empty() || !self.gone.is_empty();
        if created && !claims {
            j.create_consumer(db, key, group, consumer);
        }
        for (id, time, count) in self.pending {
            j.xclaim(db, key, group, consumer, id, time, count, self.last);
        }
        for id in self.gone {
            j.xclaim(db, key, group, consumer, id, self.now, 1, self.last);
        }
        if self.moved {
            j.group_setid(db, key, group, self.last, self.entries_read);
        }
    }
}

/// What serving one blocked reader came to.
enum Served {
    Reply(Bytes),
    Failed(Outcome),
}

/// The outer shape of a reply that serves one key.
fn one_key_reply(e: &mut Encoder, key: &[u8], proto: Proto) {
    if proto == Proto::Resp3 {
        e.map(1);
    } else {
        e.array(1);
    }
    write_key_header(e, key, proto);
}
