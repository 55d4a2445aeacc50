//! Allocation-free RESP2 frame scanner and command encoder.
//!
//! The scanner never copies payloads: bulk strings are skipped by their
//! declared length, so counting `message` frames costs a handful of short
//! line scans per frame whatever the payload size. RESP3 push frames (`>`)
//! are accepted as arrays, which is all a pub/sub client needs.

use std::io;

/// What a complete top-level frame was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `message` push (SUBSCRIBE delivery), or `smessage` (SSUBSCRIBE delivery).
    Message,
    /// `pmessage` push (PSUBSCRIBE delivery).
    PMessage,
    /// `subscribe` (or `ssubscribe`) confirmation.
    Subscribe,
    /// `psubscribe` confirmation.
    PSubscribe,
    /// Any other array / push.
    OtherArray,
    /// `:N` integer reply.
    Integer(i64),
    /// `+...` simple string.
    Simple,
    /// `-...` error reply.
    Error,
    /// `$N` bulk string (or null bulk).
    Bulk,
}

/// One complete frame found at the front of a buffer.
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    pub kind: Kind,
    /// Total encoded length of the frame in bytes.
    pub len: usize,
    /// Byte range (relative to the start of the frame) of the last bulk
    /// string element of an array (the payload of `message`/`pmessage`),
    /// or of the line of a simple/error reply.
    pub last: (usize, usize),
}

/// Protocol violation found while scanning.
#[derive(Debug)]
pub struct ProtoError(pub &'static str);

impl From<ProtoError> for io::Error {
    fn from(e: ProtoError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, format!("RESP error: {}", e.0))
    }
}

type PResult<T> = Result<Option<T>, ProtoError>;

/// Finds the CRLF-terminated line starting at `pos`: returns (end of line
/// content, position after CRLF).
#[inline]
fn line(buf: &[u8], pos: usize) -> PResult<(usize, usize)> {
    match memchr::memchr(b'\n', &buf[pos..]) {
        None => Ok(None),
        Some(i) => {
            let nl = pos + i;
            if nl == pos || buf[nl - 1] != b'\r' {
                return Err(ProtoError("line not terminated by CRLF"));
            }
            Ok(Some((nl - 1, nl + 1)))
        }
    }
}

#[inline]
fn parse_int(s: &[u8]) -> Result<i64, ProtoError> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 {
        return Err(ProtoError("bad integer"));
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(ProtoError("bad integer"));
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((c - b'0') as i64))
            .ok_or(ProtoError("integer overflow"))?;
    }
    Ok(if neg { -v } else { v })
}

/// A scanned element: its tag byte, content range and the position after it.
struct Elem {
    tag: u8,
    start: usize,
    end: usize,
    int: i64,
    next: usize,
}

fn elem(buf: &[u8], pos: usize, depth: u32) -> PResult<Elem> {
    if pos >= buf.len() {
        return Ok(None);
    }
    let tag = buf[pos];
    let Some((lend, next)) = line(buf, pos + 1)? else {
        return Ok(None);
    };
    let head = &buf[pos + 1..lend];
    match tag {
        b'+' | b'-' => Ok(Some(Elem {
            tag,
            start: pos + 1,
            end: lend,
            int: 0,
            next,
        })),
        b':' => Ok(Some(Elem {
            tag,
            start: pos + 1,
            end: lend,
            int: parse_int(head)?,
            next,
        })),
        b'$' => {
            let n = parse_int(head)?;
            if n < 0 {
                return Ok(Some(Elem {
                    tag,
                    start: next,
                    end: next,
                    int: -1,
                    next,
                }));
            }
            let n = n as usize;
            let end = next + n;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ProtoError("bulk string not terminated by CRLF"));
            }
            Ok(Some(Elem {
                tag,
                start: next,
                end,
                int: n as i64,
                next: end + 2,
            }))
        }
        b'*' | b'>' => {
            if depth > 8 {
                return Err(ProtoError("arrays nested too deeply"));
            }
            let n = parse_int(head)?;
            let mut p = next;
            for _ in 0..n.max(0) {
                match elem(buf, p, depth + 1)? {
                    None => return Ok(None),
                    Some(e) => p = e.next,
                }
            }
            Ok(Some(Elem {
                tag,
                start: next,
                end: p,
                int: n,
                next: p,
            }))
        }
        _ => Err(ProtoError("unexpected type byte")),
    }
}

#[inline]
fn classify(first: &[u8]) -> Kind {
    match first {
        b"message" | b"smessage" => Kind::Message,
        b"pmessage" => Kind::PMessage,
        b"subscribe" | b"ssubscribe" => Kind::Subscribe,
        b"psubscribe" => Kind::PSubscribe,
        _ => Kind::OtherArray,
    }
}

/// Scans one complete frame at the start of `buf`. `Ok(None)` means more
/// bytes are needed.
pub fn parse_frame(buf: &[u8]) -> PResult<Frame> {
    if buf.is_empty() {
        return Ok(None);
    }
    match buf[0] {
        b'*' | b'>' => {
            let Some((lend, mut p)) = line(buf, 1)? else {
                return Ok(None);
            };
            let n = parse_int(&buf[1..lend])?;
            let mut kind = Kind::OtherArray;
            let mut last = (p, p);
            for i in 0..n.max(0) {
                let Some(e) = elem(buf, p, 1)? else {
                    return Ok(None);
                };
                if i == 0 && e.tag == b'$' {
                    kind = classify(&buf[e.start..e.end]);
                }
                if e.tag == b'$' {
                    last = (e.start, e.end);
                }
                p = e.next;
            }
            Ok(Some(Frame { kind, len: p, last }))
        }
        _ => {
            let Some(e) = elem(buf, 0, 0)? else {
                return Ok(None);
            };
            let kind = match e.tag {
                b':' => Kind::Integer(e.int),
                b'+' => Kind::Simple,
                b'-' => Kind::Error,
                _ => Kind::Bulk,
            };
            Ok(Some(Frame {
                kind,
                len: e.next,
                last: (e.start, e.end),
            }))
        }
    }
}

/// A growable read buffer that frames are scanned out of in place.
pub struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    pub fn new(cap: usize) -> ReadBuf {
        ReadBuf {
            buf: vec![0; cap.max(64)],
            start: 0,
            end: 0,
        }
    }

    /// Makes room at the tail (compacting or growing) and returns it.
    fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                // A single frame larger than the buffer: grow.
                let n = self.buf.len() * 2;
                self.buf.resize(n, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Reads once from an async stream; returns bytes read (0 = EOF).
    pub async fn fill<R: tokio::io::AsyncRead + Unpin>(&mut self, r: &mut R) -> io::Result<usize> {
        use tokio::io::AsyncReadExt;
        let n = r.read(self.spare()).await?;
        self.end += n;
        Ok(n)
    }

    /// Reads once from a blocking stream; returns bytes read (0 = EOF).
    pub fn fill_blocking<R: io::Read>(&mut self, r: &mut R) -> io::Result<usize> {
        let n = r.read(self.spare())?;
        self.end += n;
        Ok(n)
    }

    /// Pops the next complete frame, if any. The returned slice (the frame's
    /// bytes) stays valid until the next `fill`.
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<(Frame, &[u8])>, ProtoError> {
        let data = &self.buf[self.start..self.end];
        match parse_frame(data)? {
            None => Ok(None),
            Some(f) => {
                let s = self.start;
                self.start += f.len;
                Ok(Some((f, &self.buf[s..s + f.len])))
            }
        }
    }
}

/// Appends the decimal form of `v` without allocating.
pub fn push_uint(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Appends a RESP bulk string.
pub fn push_bulk(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'$');
    push_uint(out, s.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(s);
    out.extend_from_slice(b"\r\n");
}

/// Appends a RESP command (array of bulk strings).
pub fn push_cmd<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    out.push(b'*');
    push_uint(out, args.len() as u64);
    out.extend_from_slice(b"\r\n");
    for a in args {
        push_bulk(out, a.as_ref());
    }
}

/// Encodes a whole command into a new buffer (setup paths only).
pub fn cmd<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut v = Vec::new();
    push_cmd(&mut v, args);
    v
}

/// Appends `PUBLISH <prefix><n><suffix> <payload>` without allocating
/// (once `out` has grown to its working size).
pub fn push_publish_numbered(out: &mut Vec<u8>, prefix: &[u8], n: u64, suffix: &[u8], payload: &[u8]) {
    push_numbered(out, b"PUBLISH", prefix, n, suffix, payload);
}

/// Appends `<verb> <prefix><n><suffix> <payload>` (PUBLISH or SPUBLISH)
/// without allocating.
pub fn push_numbered(out: &mut Vec<u8>, verb: &[u8], prefix: &[u8], n: u64, suffix: &[u8], payload: &[u8]) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let num = &digits[i..];
    out.extend_from_slice(b"*3\r\n");
    push_bulk(out, verb);
    out.push(b'$');
    push_uint(out, (prefix.len() + num.len() + suffix.len()) as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(prefix);
    out.extend_from_slice(num);
    out.extend_from_slice(suffix);
    out.extend_from_slice(b"\r\n");
    push_bulk(out, payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(buf: &[u8]) -> Vec<Kind> {
        let mut v = Vec::new();
        let mut p = 0;
        while let Some(f) = parse_frame(&buf[p..]).unwrap() {
            v.push(f.kind);
            p += f.len;
        }
        assert_eq!(p, buf.len());
        v
    }

    #[test]
    fn frames() {
        let s = b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nhello\r\n:42\r\n-ERR x\r\n+OK\r\n*4\r\n$8\r\npmessage\r\n$3\r\na:*\r\n$3\r\na:b\r\n$2\r\nhi\r\n$-1\r\n";
        assert_eq!(
            all(s),
            vec![
                Kind::Subscribe,
                Kind::Message,
                Kind::Integer(42),
                Kind::Error,
                Kind::Simple,
                Kind::PMessage,
                Kind::Bulk
            ]
        );
        let first = parse_frame(s).unwrap().unwrap().len;
        let f = parse_frame(&s[first..]).unwrap().unwrap();
        assert_eq!(f.kind, Kind::Message);
        assert_eq!(&s[first..][f.last.0..f.last.1], b"hello");
    }

    #[test]
    fn sharded_frames() {
        // RESP2 confirmation and delivery, then the RESP3 push form.
        let s = b"*3\r\n$10\r\nssubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$8\r\nsmessage\r\n$1\r\na\r\n$2\r\nhi\r\n>3\r\n$8\r\nsmessage\r\n$1\r\na\r\n$2\r\nho\r\n";
        assert_eq!(all(s), vec![Kind::Subscribe, Kind::Message, Kind::Message]);
        let first = parse_frame(s).unwrap().unwrap().len;
        let f = parse_frame(&s[first..]).unwrap().unwrap();
        assert_eq!(&s[first..][f.last.0..f.last.1], b"hi");
    }

    #[test]
    fn split_reads_are_incomplete_not_errors() {
        let s = b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nhello\r\n";
        for cut in 0..s.len() {
            assert!(parse_frame(&s[..cut]).unwrap().is_none(), "cut {cut}");
        }
        assert!(parse_frame(s).unwrap().is_some());
    }

    #[test]
    fn readbuf_grows_and_compacts() {
        let mut one = Vec::new();
        one.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n");
        push_bulk(&mut one, &[b'x'; 300]);
        let stream: Vec<u8> = one.iter().cycle().take(one.len() * 10).copied().collect();
        let mut rb = ReadBuf::new(64);
        let mut cur = std::io::Cursor::new(stream);
        let mut n = 0;
        while rb.fill_blocking(&mut cur).unwrap() > 0 {
            while let Some((f, _)) = rb.next_frame().unwrap() {
                assert_eq!(f.kind, Kind::Message);
                n += 1;
            }
        }
        assert_eq!(n, 10);
    }

    #[test]
    fn encode() {
        let mut v = Vec::new();
        push_publish_numbered(&mut v, b"ch:", 1234, b"", b"xy");
        assert_eq!(v, cmd(&["PUBLISH", "ch:1234", "xy"]));
        v.clear();
        push_numbered(&mut v, b"SPUBLISH", b"s:", 7, b":x", b"");
        assert_eq!(v, cmd(&["SPUBLISH", "s:7:x", ""]));
        v.clear();
        push_uint(&mut v, 0);
        assert_eq!(v, b"0");
    }
}
