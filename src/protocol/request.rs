//! Sans-IO parser for client requests, byte-for-byte compatible with Redis 7.0.15
//! (`processMultibulkBuffer` / `processInlineBuffer` in networking.c, `sdssplitargs` in sds.c).
//!
//! The connection task owns a `BytesMut`, appends whatever the socket returns and calls
//! [`RequestParser::next`] until it yields `Ok(None)`. Nothing here does I/O, so every quirk of
//! the wire format can be tested with plain byte strings.
//!
//! Design:
//!
//! * **Resumable state.** A read may stop anywhere: inside a header line, between elements or
//!   in the middle of a 500 MB bulk. Completed elements are taken out of the buffer as soon as
//!   they are complete and kept in the parser, together with how far the current line has
//!   already been searched. Restarting from the first byte of the request on every read would
//!   make a request that trickles in over `n` reads cost O(n²) scanning; resuming keeps it linear.
//!   It also mirrors Redis, which trims the query buffer of parsed elements between reads, so
//!   the buffer length is what Redis reports as `qbuf` in CLIENT LIST.
//! * **Zero copy.** A bulk payload is cut out of the read buffer with `split_to(..).freeze()`,
//!   so the argument shares the allocation the socket read into. A PUBLISH payload then travels
//!   from the socket to every subscriber's outbox without ever being copied. The flip side is
//!   that an argument keeps its read buffer alive until it is dropped, which is why the reader
//!   should not recycle buffers that arguments still point into (`BytesMut` takes care of this
//!   by reallocating when the front is shared).
//! * **Limits before allocation.** Every length on the wire comes from an untrusted peer. The
//!   checks Redis makes (`proto-max-bulk-len`, the stricter limits for unauthenticated clients,
//!   the 64 KB cap on a line) are applied before anything is reserved, and even a length that
//!   passes them is never used to reserve memory: `*2147483647` or a 600 MB bulk header must
//!   cost a few bytes until the bytes actually arrive. Argument vectors start at most
//!   [`MAX_PREALLOCATED_ARGS`] long and grow as elements arrive; the reader grows the buffer
//!   itself, using [`RequestParser::bytes_wanted`] as a (capped) hint.
//!
//! "Too long" follows Redis to the letter: a line (inline request or `*N` / `$N` header) is
//! rejected when more than 64 KB are buffered from its start and no terminator is among them
//! (`sdslen(querybuf) - qb_pos > PROTO_INLINE_MAX_SIZE`). Like Redis, which makes that check after
//! each socket read, the parser makes it on each call, so whether a line just over 64 KB gets
//! through depends on how many bytes the reader appended since the previous call. Real Redis
//! accepts a 70 KB inline line sent in one write and rejects an 80 KB one; a reader that calls
//! `next` after every read of at most 16 KB (`PROTO_IOBUF_LEN`) stays within the same bounds.

use bytes::{Buf, Bytes, BytesMut};

/// `PROTO_INLINE_MAX_SIZE`: the longest an inline request or a `*N` / `$N` header line may
/// grow without its terminator before the connection is dropped.
pub const PROTO_INLINE_MAX_SIZE: usize = 64 * 1024;

/// Default `proto-max-bulk-len` (512 MiB), as in Redis.
pub const DEFAULT_PROTO_MAX_BULK_LEN: u64 = 512 * 1024 * 1024;

/// The argument vector of a multibulk request never starts larger than this, whatever count the
/// header announces, so a lying header costs nothing.
pub const MAX_PREALLOCATED_ARGS: usize = 64;

/// Clients that still have to AUTH may not announce more elements than this.
const UNAUTH_MAX_MULTIBULK_LEN: i64 = 10;
/// Clients that still have to AUTH may not announce bulks longer than this.
const UNAUTH_MAX_BULK_LEN: i64 = 16384;

/// What the connection is currently allowed to send. Both values can change between requests
/// (CONFIG SET proto-max-bulk-len, a successful AUTH), so they are passed to every call rather
/// than captured by the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `proto-max-bulk-len`: the largest bulk a client may announce.
    pub proto_max_bulk_len: u64,
    /// `false` applies Redis's limits for clients that have yet to AUTH (at most 10 elements,
    /// bulks of at most 16384 bytes).
    pub authenticated: bool,
}

impl Default for Limits {
    /// Redis's defaults: 512 MiB bulks and, as without `requirepass`, no pending AUTH.
    fn default() -> Self {
        Limits {
            proto_max_bulk_len: DEFAULT_PROTO_MAX_BULK_LEN,
            authenticated: true,
        }
    }
}

/// One complete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The command name followed by its arguments. Never empty.
    pub args: Vec<Bytes>,
    /// How many bytes this request occupied on the wire (headers, payloads and terminators).
    /// Ignored requests that preceded it (blank lines, `*0`) are not included.
    pub wire_len: usize,
}

/// A malformed request. All of them are fatal: the caller replies `-ERR <Display>` and closes
/// the connection once the reply is written, as Redis does.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ProtocolError {
    #[error("Protocol error: too big inline request")]
    TooBigInlineRequest,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    #[error("Protocol error: too big mbulk count string")]
    TooBigMultibulkCountString,
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCountString,
    /// An element did not start with `$`; holds the byte found instead.
    #[error("Protocol error: expected '$', got '{}'", shown_char(.0))]
    ExpectedDollar(u8),
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
}

impl ProtocolError {
    /// The error text exactly as Redis puts it on the wire after `-ERR `.
    ///
    /// Identical to `Display` except for [`ProtocolError::ExpectedDollar`] with a byte >= 0x80:
    /// Redis sends that byte raw (it is printed with `%c`), which a Rust `String` cannot hold,
    /// so `Display` shows it as the Latin-1 character instead.
    pub fn message_bytes(&self) -> Vec<u8> {
        match self {
            ProtocolError::ExpectedDollar(b) => {
                let mut m = b"Protocol error: expected '$', got '".to_vec();
                m.push(shown_byte(*b));
                m.push(b'\'');
                m
            }
            other => other.to_string().into_bytes(),
        }
    }
}

/// Redis replaces `\r` and `\n` in formatted error replies with spaces (a raw newline would
/// corrupt the reply stream); everything else is echoed as is.
fn shown_byte(b: u8) -> u8 {
    match b {
        b'\r' | b'\n' => b' ',
        b => b,
    }
}

fn shown_char(b: &u8) -> char {
    char::from(shown_byte(*b))
}

/// Where the parser is within the request at the front of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between requests: the next byte decides the form.
    Start,
    /// Waiting for the `\n` that ends an inline request.
    Inline,
    /// Waiting for the `\r` of the `*N` header.
    MultibulkHeader,
    /// Reading elements; `pending` more are expected.
    Elements,
}

/// Progress of the search for a line terminator, so that a resumed call only looks at bytes
/// that arrived since the previous one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct LineScan {
    /// Bytes at the front of the buffer known to hold neither the terminator nor a NUL.
    searched: usize,
    /// A NUL was found first. Redis searches with `strchr`, which stops at NUL, so a terminator
    /// behind it can never be found: the line can only grow until it is too big.
    blocked: bool,
}

enum LineEnd {
    /// Index of the terminator.
    Found(usize),
    /// Not (yet) found within the bytes present.
    Missing,
    /// Not found, and more than `PROTO_INLINE_MAX_SIZE` bytes are buffered: fatal.
    TooBig,
}

impl LineScan {
    fn find(&mut self, buf: &[u8], terminator: u8) -> LineEnd {
        if !self.blocked && self.searched < buf.len() {
            match memchr::memchr2(terminator, 0, &buf[self.searched..]) {
                Some(i) => {
                    let at = self.searched + i;
                    // Kept on the terminator so that a call that still has to wait for the
                    // byte after a header's `\r` finds it again at once.
                    self.searched = at;
                    if buf[at] == terminator {
                        return LineEnd::Found(at);
                    }
                    self.blocked = true;
                }
                None => self.searched = buf.len(),
            }
        }
        if buf.len() > PROTO_INLINE_MAX_SIZE {
            LineEnd::TooBig
        } else {
            LineEnd::Missing
        }
    }
}

/// Incremental request parser for one connection. See the module documentation.
#[derive(Debug)]
pub struct RequestParser {
    phase: Phase,
    scan: LineScan,
    /// Elements of the current multibulk request still to be read.
    pending: usize,
    /// Length of the bulk being read, once its `$N` header has been consumed.
    bulk_len: Option<u64>,
    args: Vec<Bytes>,
    /// Bytes of the current request already consumed from the buffer.
    consumed: usize,
    wanted: usize,
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestParser {
    pub fn new() -> Self {
        RequestParser {
            phase: Phase::Start,
            scan: LineScan::default(),
            pending: 0,
            bulk_len: None,
            args: Vec::new(),
            consumed: 0,
            wanted: 0,
        }
    }

    /// Parse the next complete request from the front of `buf`, removing the bytes it consumed.
    ///
    /// `Ok(None)`: `buf` holds (at most) part of a request; call again once more bytes have been
    /// appended, and the parse resumes where it stopped. Requests Redis ignores without a reply
    /// (blank inline lines, multibulk counts <= 0) are consumed and skipped.
    ///
    /// After an error the connection must be closed; the parser is reset, and `buf` is left
    /// where the error was found.
    pub fn next(&mut self, buf: &mut BytesMut, limits: &Limits) -> Result<Option<Request>, ProtocolError> {
        let result = self.parse(buf, limits);
        if result.is_err() {
            *self = RequestParser::new();
        }
        result
    }

    /// At least how many more bytes the request in progress needs: the rest of the bulk being
    /// read, or 0 when that is unknown (e.g. while waiting for a header line). Meant as a hint
    /// for reserving read buffer space; the caller should cap it, since it comes from the peer.
    pub fn bytes_wanted(&self) -> usize {
        self.wanted
    }

    fn parse(&mut self, buf: &mut BytesMut, limits: &Limits) -> Result<Option<Request>, ProtocolError> {
        self.wanted = 0;
        loop {
            match self.phase {
                Phase::Start => {
                    let Some(&first) = buf.first() else {
                        return Ok(None);
                    };
                    self.scan = LineScan::default();
                    self.phase = if first == b'*' {
                        Phase::MultibulkHeader
                    } else {
                        Phase::Inline
                    };
                }
                Phase::Inline => {
                    let Some(line) = self.inline(buf)? else {
                        return Ok(None);
                    };
                    self.phase = Phase::Start;
                    // None is a blank line: Redis resets the client without replying.
                    if line.is_some() {
                        return Ok(line);
                    }
                }
                Phase::MultibulkHeader => {
                    if !self.multibulk_header(buf, limits)? {
                        return Ok(None);
                    }
                }
                Phase::Elements => {
                    if !self.elements(buf, limits)? {
                        return Ok(None);
                    }
                    self.phase = Phase::Start;
                    return Ok(Some(Request {
                        args: std::mem::take(&mut self.args),
                        wire_len: std::mem::take(&mut self.consumed),
                    }));
                }
            }
        }
    }

    /// `None`: incomplete. `Some(None)`: a blank line, consumed.
    fn inline(&mut self, buf: &mut BytesMut) -> Result<Option<Option<Request>>, ProtocolError> {
        let newline = match self.scan.find(buf, b'\n') {
            LineEnd::Found(i) => i,
            LineEnd::Missing => return Ok(None),
            LineEnd::TooBig => return Err(ProtocolError::TooBigInlineRequest),
        };
        let line_len = if newline > 0 && buf[newline - 1] == b'\r' {
            newline - 1
        } else {
            newline
        };
        // Split before consuming anything so that an error leaves the buffer untouched.
        let words = split_args(&buf[..line_len])?;
        let line = buf.split_to(newline + 1).freeze();
        if words.is_empty() {
            return Ok(Some(None));
        }
        let args = words
            .into_iter()
            .map(|word| match word {
                Word::Raw(start, end) => line.slice(start..end),
                Word::Built(bytes) => Bytes::from(bytes),
            })
            .collect();
        Ok(Some(Some(Request {
            args,
            wire_len: line.len(),
        })))
    }

    /// Consumes the `*N` header. `false`: incomplete.
    fn multibulk_header(&mut self, buf: &mut BytesMut, limits: &Limits) -> Result<bool, ProtocolError> {
        let Some(cr) = self.header_line(buf, ProtocolError::TooBigMultibulkCountString)? else {
            return Ok(false);
        };
        let count = match string2ll(buf.get(1..cr).unwrap_or_default()) {
            Some(n) if n <= i64::from(i32::MAX) => n,
            _ => return Err(ProtocolError::InvalidMultibulkLength),
        };
        if count > UNAUTH_MAX_MULTIBULK_LEN && !limits.authenticated {
            return Err(ProtocolError::UnauthenticatedMultibulkLength);
        }
        buf.advance(cr + 2);
        self.scan = LineScan::default();
        if count <= 0 {
            // `*0`, `*-1`: Redis resets the client without replying.
            self.phase = Phase::Start;
            return Ok(true);
        }
        self.consumed = cr + 2;
        // Bounded by the check above; still only a claim, hence the cap on preallocation.
        self.pending = count as usize;
        self.args = Vec::with_capacity(self.pending.min(MAX_PREALLOCATED_ARGS));
        self.bulk_len = None;
        self.phase = Phase::Elements;
        Ok(true)
    }

    /// Reads elements until none is pending. `false`: incomplete.
    fn elements(&mut self, buf: &mut BytesMut, limits: &Limits) -> Result<bool, ProtocolError> {
        while self.pending > 0 {
            let len = match self.bulk_len {
                Some(len) => len,
                None => {
                    let Some(cr) = self.header_line(buf, ProtocolError::TooBigBulkCountString)? else {
                        return Ok(false);
                    };
                    // Redis only looks at the first byte once it has the whole line, so a
                    // stray byte without a `\r` after it waits rather than failing.
                    if buf[0] != b'$' {
                        return Err(ProtocolError::ExpectedDollar(buf[0]));
                    }
                    let len = match string2ll(&buf[1..cr]) {
                        Some(n) if n >= 0 && n as u64 <= limits.proto_max_bulk_len => n,
                        _ => return Err(ProtocolError::InvalidBulkLength),
                    };
                    if len > UNAUTH_MAX_BULK_LEN && !limits.authenticated {
                        return Err(ProtocolError::UnauthenticatedBulkLength);
                    }
                    buf.advance(cr + 2);
                    self.consumed += cr + 2;
                    self.scan = LineScan::default();
                    self.bulk_len = Some(len as u64);
                    len as u64
                }
            };
            // The payload plus two terminator bytes, which Redis skips without looking at.
            let needed = len + 2;
            let have = buf.len() as u64;
            if have < needed {
                self.wanted = usize::try_from(needed - have).unwrap_or(usize::MAX);
                return Ok(false);
            }
            // `needed <= buf.len()`, so it fits in usize.
            let len = len as usize;
            self.args.push(buf.split_to(len).freeze());
            buf.advance(2);
            self.consumed += len + 2;
            self.bulk_len = None;
            self.pending -= 1;
        }
        Ok(true)
    }

    /// Finds the `\r` ending a `*N` / `$N` header at the front of `buf`. Redis assumes the byte
    /// after it is `\n` without checking, but does wait for it to arrive.
    fn header_line(&mut self, buf: &BytesMut, too_big: ProtocolError) -> Result<Option<usize>, ProtocolError> {
        match self.scan.find(buf, b'\r') {
            LineEnd::Found(cr) if cr + 2 <= buf.len() => Ok(Some(cr)),
            LineEnd::Found(_) | LineEnd::Missing => Ok(None),
            LineEnd::TooBig => Err(too_big),
        }
    }
}

/// Redis's `string2ll`: an optional `-` and digits, nothing else; no `+`, no leading zeros
/// (other than `0` itself), no spaces, not empty, at most 20 characters, within `i64`.
fn string2ll(s: &[u8]) -> Option<i64> {
    // LONG_STR_SIZE is 21, and Redis rejects slen >= LONG_STR_SIZE up front.
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if !matches!(digits.first(), Some(b'1'..=b'9')) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        // -(2^63) is representable; wrapping_neg maps 2^63 as i64 (= i64::MIN) onto itself.
        (v <= 1 << 63).then(|| (v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// A word of an inline request.
enum Word {
    /// Taken verbatim from the line: `line[start..end]`, shared rather than copied.
    Raw(usize, usize),
    /// Built from quotes and escapes.
    Built(Vec<u8>),
}

/// C `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// [`split_args`] for other callers (ACL rules and ACL files, which Redis also splits
/// with `sdssplitargs`): owned words, or `None` for unbalanced quotes.
pub fn split_words(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let words = split_args(line).ok()?;
    Some(
        words
            .into_iter()
            .map(|w| match w {
                Word::Raw(start, end) => line[start..end].to_vec(),
                Word::Built(v) => v,
            })
            .collect(),
    )
}

/// Redis's `sdssplitargs`. The line never contains a NUL (the newline search stops at one), so
/// the end of the slice plays the part of the C string terminator.
///
/// Two quirks are kept on purpose: blanks *between* words are anything `isspace` accepts, but
/// an unquoted word only ends at space, tab, `\r` or `\n`, so `\v` and `\f` inside a word belong
/// to it; and a closing quote must be followed by `isspace` or the end of the line.
fn split_args(line: &[u8]) -> Result<Vec<Word>, ProtocolError> {
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut words = Vec::new();
    let mut p = 0;
    loop {
        while p < line.len() && is_c_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Ok(words);
        }
        let start = p;
        // Stays None while the word is a plain slice of the line.
        let mut built: Option<Vec<u8>> = None;
        let mut in_double = false;
        let mut in_single = false;
        let mut end = None;
        loop {
            let c = at(p);
            if in_double {
                let out = built.as_mut().expect("quoted words are built");
                let hex = (c == b'\\' && at(p + 1) == b'x')
                    .then(|| Some((hex_value(at(p + 2))?, hex_value(at(p + 3))?)))
                    .flatten();
                if let Some((hi, lo)) = hex {
                    out.push(hi * 16 + lo);
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    out.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    end = Some(p);
                } else if c == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    out.push(c);
                }
            } else if in_single {
                let out = built.as_mut().expect("quoted words are built");
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    out.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    end = Some(p);
                } else if c == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    out.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => end = Some(p),
                    b'"' | b'\'' => {
                        // A quote may open mid-word: what came before it is kept.
                        built.get_or_insert_with(|| line[start..p].to_vec());
                        in_double = c == b'"';
                        in_single = c == b'\'';
                    }
                    _ => {
                        if let Some(out) = built.as_mut() {
                            out.push(c);
                        }
                    }
                }
            }
            // As in C: step past the current character unless it is the terminator.
            if at(p) != 0 {
                p += 1;
            }
            if let Some(end) = end {
                words.push(match built {
                    Some(bytes) => Word::Built(bytes),
                    None => Word::Raw(start, end),
                });
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UNAUTH: Limits = Limits {
        proto_max_bulk_len: DEFAULT_PROTO_MAX_BULK_LEN,
        authenticated: false,
    };

    /// Feeds `input` whole and collects everything `next` yields, stopping at the first error.
    fn parse_all(input: &[u8], limits: &Limits) -> (Vec<Request>, Option<ProtocolError>) {
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match parser.next(&mut buf, limits) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    fn args_of(input: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let (reqs, err) = parse_all(input, &Limits::default());
        assert_eq!(err, None, "unexpected error for {input:?}");
        reqs.into_iter()
            .map(|r| r.args.into_iter().map(|a| a.to_vec()).collect())
            .collect()
    }

    fn one(input: &[u8]) -> Vec<Vec<u8>> {
        let mut all = args_of(input);
        assert_eq!(all.len(), 1, "expected exactly one request in {input:?}");
        all.remove(0)
    }

    fn words(ws: &[&[u8]]) -> Vec<Vec<u8>> {
        ws.iter().map(|w| w.to_vec()).collect()
    }

    fn err_of(input: &[u8], limits: &Limits) -> String {
        match parse_all(input, limits) {
            (_, Some(e)) => e.to_string(),
            (reqs, None) => panic!("no error for {input:?}, got {reqs:?}"),
        }
    }

    fn pending(input: &[u8], limits: &Limits) -> bool {
        let (reqs, err) = parse_all(input, limits);
        reqs.is_empty() && err.is_none()
    }

    // Choosing the form

    #[test]
    fn star_selects_multibulk_anything_else_inline() {
        assert_eq!(one(b"*1\r\n$4\r\nPING\r\n"), words(&[b"PING"]));
        // `$` does not start a multibulk element on its own: it is an inline word.
        assert_eq!(args_of(b"$4\r\nPING\r\n"), vec![words(&[b"$4"]), words(&[b"PING"])]);
    }

    // Multibulk

    #[test]
    fn multibulk_basic_and_wire_len() {
        let (reqs, err) = parse_all(b"*2\r\n$7\r\nPUBLISH\r\n$0\r\n\r\n", &Limits::default());
        assert_eq!(err, None);
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].args, vec![Bytes::from("PUBLISH"), Bytes::new()]);
        assert_eq!(reqs[0].wire_len, 23);
    }

    #[test]
    fn header_byte_after_cr_is_not_checked_but_awaited() {
        assert_eq!(one(b"*1\rX$4\rYPING\r\n"), words(&[b"PING"]));
        assert!(pending(b"*1\r", &Limits::default()));
        assert!(pending(b"*1\r\n$4\r", &Limits::default()));
    }

    #[test]
    fn multibulk_count_is_parsed_strictly() {
        for bad in [
            &b"*+1\r\n"[..],
            b"*01\r\n",
            b"* 1\r\n",
            b"*1 \r\n",
            b"*\r\n",
            b"*-\r\n",
            b"*-0\r\n",
            b"*1x\r\n",
            b"*2147483648\r\n",
            b"*9223372036854775808\r\n",
            b"*-9223372036854775809\r\n",
        ] {
            assert_eq!(
                err_of(bad, &Limits::default()),
                "Protocol error: invalid multibulk length",
                "{bad:?}"
            );
        }
        // The largest count is accepted (and waits for its elements).
        assert!(pending(b"*2147483647\r\n", &Limits::default()));
        // The smallest i64 is a valid number, hence a silent no-op.
        assert_eq!(
            args_of(b"*-9223372036854775808\r\n*1\r\n$1\r\nA\r\n"),
            vec![words(&[b"A"])]
        );
    }

    #[test]
    fn huge_count_does_not_preallocate() {
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::from(&b"*2147483647\r\n$1\r\nA\r\n"[..]);
        assert_eq!(parser.next(&mut buf, &Limits::default()), Ok(None));
        assert!(parser.args.capacity() <= MAX_PREALLOCATED_ARGS);
        assert_eq!(parser.args.len(), 1);
    }

    #[test]
    fn non_positive_counts_are_skipped_silently() {
        let (reqs, err) = parse_all(b"*0\r\n*-1\r\n*-10\r\n*1\r\n$4\r\nPING\r\n", &UNAUTH);
        assert_eq!(err, None);
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].args, vec![Bytes::from("PING")]);
        assert_eq!(reqs[0].wire_len, 14);

        let mut parser = RequestParser::new();
        let mut buf = BytesMut::from(&b"*0\r\n*-1\r\n"[..]);
        assert_eq!(parser.next(&mut buf, &Limits::default()), Ok(None));
        assert!(buf.is_empty());
    }

    #[test]
    fn unauthenticated_multibulk_length() {
        let eleven = b"*11\r\n";
        assert_eq!(
            err_of(eleven, &UNAUTH),
            "Protocol error: unauthenticated multibulk length"
        );
        assert!(pending(eleven, &Limits::default()));
        assert!(pending(b"*10\r\n", &UNAUTH));
        // Validity is checked first.
        assert_eq!(
            err_of(b"*2147483648\r\n", &UNAUTH),
            "Protocol error: invalid multibulk length"
        );
    }

    #[test]
    fn element_must_start_with_dollar() {
        let e = parse_all(b"*2\r\n:1\r\n", &Limits::default()).1.unwrap();
        assert_eq!(e, ProtocolError::ExpectedDollar(b':'));
        assert_eq!(e.to_string(), "Protocol error: expected '$', got ':'");
        // Only judged once the line (and the byte after its `\r`) is there.
        assert!(pending(b"*1\r\nX", &Limits::default()));
        assert!(pending(b"*1\r\nX\r", &Limits::default()));
        // Redis maps `\r` and `\n` to spaces in error replies.
        let e = parse_all(b"*1\r\n\r\n", &Limits::default()).1.unwrap();
        assert_eq!(e, ProtocolError::ExpectedDollar(b'\r'));
        assert_eq!(e.to_string(), "Protocol error: expected '$', got ' '");
        assert_eq!(e.message_bytes(), b"Protocol error: expected '$', got ' '");
        // Bytes >= 0x80 go out raw.
        let e = ProtocolError::ExpectedDollar(0xff);
        assert_eq!(e.message_bytes(), b"Protocol error: expected '$', got '\xff'");
    }

    #[test]
    fn bulk_length_must_be_valid() {
        for bad in [
            &b"*1\r\n$-1\r\n"[..],
            b"*1\r\n$-5\r\n",
            b"*1\r\n$+4\r\n",
            b"*1\r\n$04\r\n",
            b"*1\r\n$\r\n",
            b"*1\r\n$ 4\r\n",
            b"*1\r\n$536870913\r\n",
        ] {
            assert_eq!(
                err_of(bad, &Limits::default()),
                "Protocol error: invalid bulk length",
                "{bad:?}"
            );
        }
        assert!(pending(b"*1\r\n$536870912\r\n", &Limits::default()));
        let small = Limits {
            proto_max_bulk_len: 3,
            authenticated: true,
        };
        assert_eq!(
            err_of(b"*1\r\n$4\r\nPING\r\n", &small),
            "Protocol error: invalid bulk length"
        );
        assert_eq!(parse_all(b"*1\r\n$3\r\nGET\r\n", &small).0.len(), 1);
    }

    #[test]
    fn unauthenticated_bulk_length() {
        assert_eq!(
            err_of(b"*1\r\n$16385\r\n", &UNAUTH),
            "Protocol error: unauthenticated bulk length"
        );
        assert!(pending(b"*1\r\n$16384\r\n", &UNAUTH));
        assert!(pending(b"*1\r\n$16385\r\n", &Limits::default()));
    }

    #[test]
    fn bytes_after_payload_are_skipped_unchecked() {
        let (reqs, _) = parse_all(b"*1\r\n$4\r\nPINGxx", &Limits::default());
        assert_eq!(reqs[0].args, vec![Bytes::from("PING")]);
        assert_eq!(reqs[0].wire_len, 14);
        assert!(pending(b"*1\r\n$4\r\nPINGx", &Limits::default()));
    }

    #[test]
    fn too_big_mbulk_count_string() {
        let mut line = b"*".to_vec();
        line.resize(PROTO_INLINE_MAX_SIZE, b'1');
        assert!(pending(&line, &Limits::default()));
        line.push(b'1');
        assert_eq!(
            err_of(&line, &Limits::default()),
            "Protocol error: too big mbulk count string"
        );
        // A NUL hides the `\r` from strchr.
        let mut hidden = b"*1\0\r\n".to_vec();
        assert!(pending(&hidden, &Limits::default()));
        hidden.resize(PROTO_INLINE_MAX_SIZE + 1, b'x');
        assert_eq!(
            err_of(&hidden, &Limits::default()),
            "Protocol error: too big mbulk count string"
        );
    }

    #[test]
    fn too_big_bulk_count_string() {
        let mut input = b"*1\r\n$".to_vec();
        input.resize(4 + PROTO_INLINE_MAX_SIZE, b'1');
        assert!(pending(&input, &Limits::default()));
        input.push(b'1');
        assert_eq!(
            err_of(&input, &Limits::default()),
            "Protocol error: too big bulk count string"
        );
        // A terminator found in time ends the line; the number is then simply invalid.
        let mut input = b"*1\r\n$".to_vec();
        input.resize(4 + PROTO_INLINE_MAX_SIZE, b'1');
        input.extend_from_slice(b"\r\n");
        assert_eq!(
            err_of(&input, &Limits::default()),
            "Protocol error: invalid bulk length"
        );
    }

    // Inline

    #[test]
    fn inline_line_endings() {
        assert_eq!(one(b"PING\n"), words(&[b"PING"]));
        assert_eq!(one(b"PING\r\n"), words(&[b"PING"]));
        // Only one `\r` is part of the terminator; the other is a blank.
        assert_eq!(one(b"PING\r\r\n"), words(&[b"PING"]));
        assert_eq!(one(b"a\rb\n"), words(&[b"a", b"b"]));
        let (reqs, _) = parse_all(b"ECHO hi\r\nPING\n", &Limits::default());
        assert_eq!(reqs[0].wire_len, 9);
        assert_eq!(reqs[1].wire_len, 5);
        assert!(pending(b"PING\r", &Limits::default()));
    }

    #[test]
    fn nul_hides_the_newline() {
        let mut input = b"PING\0\nPING\n".to_vec();
        assert!(pending(&input, &Limits::default()));
        input.resize(PROTO_INLINE_MAX_SIZE + 1, b'x');
        assert_eq!(
            err_of(&input, &Limits::default()),
            "Protocol error: too big inline request"
        );
    }

    #[test]
    fn too_big_inline_request() {
        let mut input = vec![b'a'; PROTO_INLINE_MAX_SIZE];
        assert!(pending(&input, &Limits::default()));
        input.push(b'a');
        assert_eq!(
            err_of(&input, &Limits::default()),
            "Protocol error: too big inline request"
        );
        // Exactly 64 KB may wait for its newline.
        let mut ok = vec![b'a'; PROTO_INLINE_MAX_SIZE];
        ok.push(b'\n');
        let (reqs, err) = parse_chunked(&ok, &[PROTO_INLINE_MAX_SIZE, ok.len()], &Limits::default());
        assert_eq!(err, None);
        assert_eq!(reqs[0].args[0].len(), PROTO_INLINE_MAX_SIZE);
        assert_eq!(reqs[0].wire_len, PROTO_INLINE_MAX_SIZE + 1);
        // As in Redis, the limit applies to what is buffered when no newline has been found:
        // a longer line that arrives in one piece gets through (real Redis answers
        // `ECHO <70000 bytes>` sent in one write), one that trickles in does not.
        let mut late = vec![b'a'; PROTO_INLINE_MAX_SIZE + 1];
        late.push(b'\n');
        assert_eq!(args_of(&late)[0][0].len(), PROTO_INLINE_MAX_SIZE + 1);
        let (reqs, err) = parse_chunked(&late, &[PROTO_INLINE_MAX_SIZE + 1, late.len()], &Limits::default());
        assert!(reqs.is_empty());
        assert_eq!(err, Some(ProtocolError::TooBigInlineRequest));
    }

    #[test]
    fn blank_inline_lines_are_skipped() {
        let (reqs, err) = parse_all(b"\r\n\n   \t\x0b\x0c\r\nPING\r\n", &Limits::default());
        assert_eq!(err, None);
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].args, vec![Bytes::from("PING")]);
        assert_eq!(reqs[0].wire_len, 6);
    }

    #[test]
    fn inline_words_split_on_whitespace() {
        assert_eq!(one(b"  SET\tkey   value \n"), words(&[b"SET", b"key", b"value"]));
        // \v and \f separate words only between them, not inside one.
        assert_eq!(one(b"\x0ba\x0bb \x0cc\n"), words(&[b"a\x0bb", b"c"]));
    }

    #[test]
    fn inline_double_quotes_and_escapes() {
        assert_eq!(
            one(b"SET \"a b\" \"\\n\\r\\t\\b\\a\\\"\\\\\\q\"\n"),
            words(&[b"SET", b"a b", b"\n\r\t\x08\x07\"\\q"])
        );
        assert_eq!(one(b"\"\\x41\\xfF\\x4\\xZZ\"\n"), words(&[b"A\xffx4xZZ"]));
        assert_eq!(one(b"\"\" x\n"), words(&[b"", b"x"]));
        assert_eq!(one(b"'it\\'s' '\\n\"'\n"), words(&[b"it's", b"\\n\""]));
    }

    #[test]
    fn inline_quote_may_open_mid_word() {
        assert_eq!(one(b"foo\"bar baz\"\n"), words(&[b"foobar baz"]));
        assert_eq!(one(b"a'b c'\td\n"), words(&[b"ab c", b"d"]));
        // A closing quote followed by \v is fine: isspace accepts it.
        assert_eq!(one(b"\"a\"\x0bb\n"), words(&[b"a", b"b"]));
    }

    #[test]
    fn unbalanced_quotes() {
        for bad in [
            &b"\"foo\"bar\n"[..],
            b"'foo'bar\n",
            b"\"foo\n",
            b"'foo\n",
            b"\"foo\\\"\n",
            b"\"foo\\\n",
        ] {
            assert_eq!(
                err_of(bad, &Limits::default()),
                "Protocol error: unbalanced quotes in request",
                "{bad:?}"
            );
        }
    }

    // Pipelining, zero copy, big bulks

    #[test]
    fn pipelined_mixed_requests_come_out_in_order() {
        let input = b"PING\r\n*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n\r\nECHO \"x y\"\n*1\r\n$4\r\nQUIT\r\n";
        assert_eq!(
            args_of(input),
            vec![
                words(&[b"PING"]),
                words(&[b"SUBSCRIBE", b"ch"]),
                words(&[b"ECHO", b"x y"]),
                words(&[b"QUIT"]),
            ]
        );
    }

    #[test]
    fn bulk_payloads_are_not_copied() {
        let mut buf = BytesMut::from(&b"*2\r\n$7\r\nPUBLISH\r\n$5\r\nhello\r\nECHO hi\n"[..]);
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let mut parser = RequestParser::new();
        let limits = Limits::default();
        let publish = parser.next(&mut buf, &limits).unwrap().unwrap();
        let echo = parser.next(&mut buf, &limits).unwrap().unwrap();
        for arg in publish.args.iter().chain(&echo.args) {
            assert!(range.contains(&(arg.as_ptr() as usize)), "{arg:?} was copied");
        }
    }

    #[test]
    fn announced_600mb_bulk_allocates_nothing() {
        let header = b"*2\r\n$7\r\nPUBLISH\r\n$600000000\r\n";
        let mut buf = BytesMut::from(&header[..]);
        buf.extend_from_slice(b"0123456789");
        let cap_before = buf.capacity();
        // 600 MB is above the default proto-max-bulk-len (512 MiB)...
        let mut parser = RequestParser::new();
        assert_eq!(
            parser.next(&mut buf.clone(), &Limits::default()),
            Err(ProtocolError::InvalidBulkLength)
        );
        // ...so raise it, as CONFIG SET proto-max-bulk-len 1gb would.
        let limits = Limits {
            proto_max_bulk_len: 1 << 30,
            authenticated: true,
        };
        let mut parser = RequestParser::new();
        assert_eq!(parser.next(&mut buf, &limits), Ok(None));
        assert_eq!(buf.len(), 10);
        assert_eq!(parser.bytes_wanted(), 600_000_000 - 10 + 2);
        assert!(buf.capacity() <= cap_before.max(1024));
        assert!(parser.args.capacity() <= MAX_PREALLOCATED_ARGS);
        // More bytes arriving shrink the estimate; the request completes once all are there.
        buf.extend_from_slice(&[b'x'; 1000]);
        assert_eq!(parser.next(&mut buf, &limits), Ok(None));
        assert_eq!(parser.bytes_wanted(), 600_000_000 - 1010 + 2);
    }

    #[test]
    fn bytes_wanted_for_a_partial_bulk() {
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::from(&b"*1\r\n$10\r\nabc"[..]);
        assert_eq!(parser.next(&mut buf, &Limits::default()), Ok(None));
        assert_eq!(parser.bytes_wanted(), 9);
        buf.extend_from_slice(b"defghij\r\n");
        let req = parser.next(&mut buf, &Limits::default()).unwrap().unwrap();
        assert_eq!(req.args, vec![Bytes::from("abcdefghij")]);
        assert_eq!(req.wire_len, 21);
        assert_eq!(parser.bytes_wanted(), 0);
        // Unknown while waiting for a line.
        buf.extend_from_slice(b"*1\r\n$1");
        assert_eq!(parser.next(&mut buf, &Limits::default()), Ok(None));
        assert_eq!(parser.bytes_wanted(), 0);
    }

    #[test]
    fn resumed_line_search_does_not_rescan() {
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::from(&b"SUBSCRIBE aaaa"[..]);
        assert_eq!(parser.next(&mut buf, &Limits::default()), Ok(None));
        assert_eq!(parser.scan.searched, 14);
        buf.extend_from_slice(b" bbbb\r\n");
        let req = parser.next(&mut buf, &Limits::default()).unwrap().unwrap();
        assert_eq!(req.args.len(), 3);
    }

    // Properties

    /// A request and how it is expected to come out.
    #[derive(Debug, Clone)]
    enum Gen {
        Multibulk(Vec<Vec<u8>>),
        /// Inline, every word written as `"..."` with escapes.
        Inline(Vec<Vec<u8>>),
        /// Something Redis ignores: `*0`, `*-1`, a blank line.
        Ignored(&'static [u8]),
    }

    fn encode(reqs: &[Gen]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in reqs {
            match r {
                Gen::Multibulk(args) => {
                    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
                    for a in args {
                        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                        out.extend_from_slice(a);
                        out.extend_from_slice(b"\r\n");
                    }
                }
                Gen::Inline(args) => {
                    for a in args {
                        out.push(b'"');
                        for &b in a {
                            match b {
                                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b' ' => out.push(b),
                                b'"' => out.extend_from_slice(b"\\\""),
                                _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                            }
                        }
                        out.extend_from_slice(b"\" ");
                    }
                    out.extend_from_slice(b"\r\n");
                }
                Gen::Ignored(raw) => out.extend_from_slice(raw),
            }
        }
        out
    }

    fn gen_request() -> impl Strategy<Value = Gen> {
        let arg = proptest::collection::vec(
            prop_oneof![any::<u8>(), Just(b'\r'), Just(b'\n'), Just(0u8), Just(b'"')],
            0..24,
        );
        prop_oneof![
            4 => proptest::collection::vec(arg.clone(), 1..6).prop_map(Gen::Multibulk),
            2 => proptest::collection::vec(arg, 1..4).prop_map(Gen::Inline),
            1 => prop_oneof![
                Just(&b"*0\r\n"[..]),
                Just(&b"*-1\r\n"[..]),
                Just(&b"\r\n"[..]),
                Just(&b" \t\n"[..]),
            ]
            .prop_map(Gen::Ignored),
        ]
    }

    /// Cut points for `len` bytes, as sorted, deduplicated offsets.
    fn cuts(len: usize, raw: &[usize]) -> Vec<usize> {
        let mut c: Vec<usize> = raw.iter().map(|x| x % (len + 1)).collect();
        c.push(len);
        c.sort_unstable();
        c.dedup();
        c
    }

    type Outcome = (Vec<Request>, Option<ProtocolError>);

    /// Appends `input` chunk by chunk, draining the parser after each append.
    fn parse_chunked(input: &[u8], cut_points: &[usize], limits: &Limits) -> Outcome {
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut from = 0;
        for &to in cut_points {
            buf.extend_from_slice(&input[from..to]);
            from = to;
            loop {
                match parser.next(&mut buf, limits) {
                    Ok(Some(r)) => out.push(r),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
            // Never holds more than it was given.
            let held: usize = parser.args.iter().map(Bytes::len).sum();
            assert!(held + buf.len() <= to);
        }
        (out, None)
    }

    fn protocolish_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                3 => any::<u8>(),
                1 => proptest::sample::select(&b"*$\r\n0123456789-+ \"'\\x\0"[..]),
            ],
            0..200,
        )
    }

    // Inputs stay far below 64 KB, the one place where Redis itself depends on read sizes.
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn split_reads_match_whole_reads(
            reqs in proptest::collection::vec(gen_request(), 0..8),
            raw_cuts in proptest::collection::vec(any::<usize>(), 0..12),
        ) {
            let input = encode(&reqs);
            let expected: Vec<Vec<Bytes>> = reqs
                .iter()
                .filter_map(|r| match r {
                    Gen::Multibulk(a) | Gen::Inline(a) => {
                        Some(a.iter().map(|x| Bytes::from(x.clone())).collect())
                    }
                    Gen::Ignored(_) => None,
                })
                .collect();
            let ignored: usize = reqs
                .iter()
                .map(|r| match r {
                    Gen::Ignored(raw) => raw.len(),
                    _ => 0,
                })
                .sum();

            let (whole, err) = parse_all(&input, &Limits::default());
            prop_assert_eq!(err, None);
            let (split, err) = parse_chunked(&input, &cuts(input.len(), &raw_cuts), &Limits::default());
            prop_assert_eq!(err, None);

            let whole_args: Vec<Vec<Bytes>> = whole.iter().map(|r| r.args.clone()).collect();
            prop_assert_eq!(&whole_args, &expected);
            prop_assert_eq!(&split, &whole);
            let wire: usize = whole.iter().map(|r| r.wire_len).sum();
            prop_assert_eq!(wire + ignored, input.len());
        }

        #[test]
        fn byte_at_a_time_matches_whole(reqs in proptest::collection::vec(gen_request(), 0..4)) {
            let input = encode(&reqs);
            let every: Vec<usize> = (1..=input.len()).collect();
            prop_assert_eq!(
                parse_chunked(&input, &every, &Limits::default()),
                parse_all(&input, &Limits::default())
            );
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_chunking_never_matters(
            input in protocolish_bytes(),
            raw_cuts in proptest::collection::vec(any::<usize>(), 0..8),
            authenticated in any::<bool>(),
        ) {
            let limits = Limits { proto_max_bulk_len: 64, authenticated };
            let whole = parse_all(&input, &limits);
            let split = parse_chunked(&input, &cuts(input.len(), &raw_cuts), &limits);
            prop_assert_eq!(split, whole);
        }
    }
}
