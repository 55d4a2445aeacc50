//! The NATS client protocol as bytes, with no I/O: a resumable parser for what a server
//! sends and encoders for what a client sends, so every corner of the wire format can be
//! tested with plain byte strings.
//!
//! The reader appends whatever the socket returns to a `BytesMut` and calls
//! [`Parser::next`] until it yields `Ok(None)`. A read may stop anywhere: inside a control
//! line or in the middle of a payload. A message whose control line is complete is taken
//! out of the buffer and kept in the parser until its payload has arrived, and the search
//! for a line's end resumes where the previous call stopped, so a message that trickles in
//! costs linear time.
//!
//! Every length on the wire comes from the server, which is trusted no more than any peer:
//! a control line may not grow past `max_control_line` bytes without its CRLF, and a
//! message may not announce more than `max_payload` bytes (headers included, as the server
//! counts them). Both are checked before anything is reserved; the reader grows its buffer
//! by [`Parser::bytes_wanted`], which is bounded by them. A payload is cut out of the read
//! buffer with `split_to(..).freeze()`, as fanout's own request parser does, so it reaches
//! the handler without a copy.
//!
//! Anything malformed is a [`ProtoError`]: the connection is dropped and made anew, since
//! there is no way to find the next operation in a stream that broke its own framing.

use bytes::{BufMut, Bytes, BytesMut};

/// The longest control line (the text before CRLF) a server may send, by default. It is
/// nats-server's own limit for what clients send (`MAX_CONTROL_LINE_SIZE`).
pub const DEFAULT_MAX_CONTROL_LINE: usize = 4096;

/// nats-server's default `max_payload`, assumed until the server's INFO says otherwise.
pub const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;

/// One operation sent by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOp {
    Info(Info),
    /// `MSG` and `HMSG` alike: for `HMSG` the header block is skipped.
    Msg(Msg),
    Ping,
    Pong,
    Ok,
    /// `-ERR 'text'`, quotes removed.
    Err(String),
}

/// A message delivered on one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub subject: Bytes,
    pub sid: u64,
    pub reply: Option<Bytes>,
    pub payload: Bytes,
}

/// The fields of the server's INFO the client uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    pub server_id: String,
    pub version: String,
    /// `None` when the INFO does not say.
    pub max_payload: Option<usize>,
    pub tls_required: bool,
    pub tls_available: bool,
    pub headers: bool,
}

impl Info {
    /// Reads the JSON object of an INFO line. Unknown fields are ignored.
    pub fn parse(json: &[u8]) -> Result<Info, ProtoError> {
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| malformed("INFO", &format!("{e}: {}", shown(json))))?;
        let obj = value
            .as_object()
            .ok_or_else(|| malformed("INFO", &format!("not a JSON object: {}", shown(json))))?;
        let text = |k: &str| obj.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let flag = |k: &str| obj.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
        let max_payload = match obj.get("max_payload") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
                Some(n) if n > 0 => Some(n),
                _ => return Err(malformed("INFO", &format!("max_payload {v}"))),
            },
        };
        Ok(Info {
            server_id: text("server_id"),
            version: text("version"),
            max_payload,
            tls_required: flag("tls_required"),
            tls_available: flag("tls_available"),
            headers: flag("headers"),
        })
    }
}

/// Why the bytes from the server cannot be read on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("control line longer than {max} bytes")]
    LineTooLong { max: usize },
    #[error("message of {len} bytes over the {max} byte limit")]
    PayloadTooLarge { len: usize, max: usize },
    #[error("malformed {op}: {detail}")]
    Malformed { op: &'static str, detail: String },
    #[error("unknown operation: {0}")]
    Unknown(String),
}

fn malformed(op: &'static str, detail: &str) -> ProtoError {
    ProtoError::Malformed {
        op,
        detail: detail.to_string(),
    }
}

/// Bytes from the wire for an error text: lossy UTF-8, cut at 200 bytes.
fn shown(b: &[u8]) -> String {
    let cut = &b[..b.len().min(200)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if cut.len() < b.len() {
        s.push('…');
    }
    s
}

/// A message whose control line has been read, waiting for its body.
#[derive(Debug)]
struct Pending {
    subject: Bytes,
    sid: u64,
    reply: Option<Bytes>,
    /// Header bytes at the start of the body (0 for `MSG`).
    hdr: usize,
    /// Body bytes (headers and payload), without the CRLF after them.
    total: usize,
}

/// The resumable parser of one connection's incoming bytes.
#[derive(Debug)]
pub struct Parser {
    max_control_line: usize,
    max_payload: usize,
    pending: Option<Pending>,
    /// How much of the buffer's current line has been searched for its end already.
    scanned: usize,
}

impl Parser {
    pub fn new(max_control_line: usize, max_payload: usize) -> Parser {
        Parser {
            max_control_line: max_control_line.max(16),
            max_payload,
            pending: None,
            scanned: 0,
        }
    }

    /// The largest message body (headers and payload) accepted from now on: the server's
    /// `max_payload` from its INFO.
    pub fn set_max_payload(&mut self, max: usize) {
        self.max_payload = max;
    }

    /// How many more bytes than `buffered` the next operation needs, when the parser knows
    /// (a message body): the reader's hint for growing its buffer. Never more than the
    /// largest allowed message.
    pub fn bytes_wanted(&self, buffered: usize) -> usize {
        match &self.pending {
            Some(p) => (p.total + 2).saturating_sub(buffered),
            None => 0,
        }
    }

    /// The next complete operation in `buf`, taken out of it; `Ok(None)` when more bytes
    /// are needed.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<ServerOp>, ProtoError> {
        loop {
            if let Some(op) = self.step(buf)? {
                return Ok(Some(op));
            }
            // A message's control line was read: its body may be buffered already.
            match &self.pending {
                Some(p) if buf.len() >= p.total + 2 => {}
                _ => return Ok(None),
            }
        }
    }

    /// One operation, or one message's control line (`Ok(None)` with a message pending),
    /// or `Ok(None)` for more bytes.
    fn step(&mut self, buf: &mut BytesMut) -> Result<Option<ServerOp>, ProtoError> {
        if let Some(p) = &self.pending {
            if buf.len() < p.total + 2 {
                return Ok(None);
            }
            let p = self.pending.take().expect("checked above");
            let mut body = buf.split_to(p.total + 2);
            if &body[p.total..] != b"\r\n" {
                return Err(malformed("MSG", "payload not followed by CRLF"));
            }
            body.truncate(p.total);
            let payload = body.split_off(p.hdr).freeze();
            return Ok(Some(ServerOp::Msg(Msg {
                subject: p.subject,
                sid: p.sid,
                reply: p.reply,
                payload,
            })));
        }

        // A line of max_control_line bytes plus CRLF is the longest allowed.
        let limit = buf.len().min(self.max_control_line + 2);
        let Some(nl) = memchr::memchr(b'\n', &buf[self.scanned.min(limit)..limit]).map(|i| i + self.scanned) else {
            if buf.len() >= self.max_control_line + 2 {
                return Err(ProtoError::LineTooLong {
                    max: self.max_control_line,
                });
            }
            self.scanned = buf.len();
            return Ok(None);
        };
        self.scanned = 0;
        let line = buf.split_to(nl + 1).freeze();
        if nl == 0 || line[nl - 1] != b'\r' {
            return Err(malformed("control line", &format!("no CR before LF: {}", shown(&line))));
        }
        let text = line.slice(..nl - 1);
        self.control_line(text)
    }

    fn control_line(&mut self, line: Bytes) -> Result<Option<ServerOp>, ProtoError> {
        let op_end = line.iter().position(|b| is_space(*b)).unwrap_or(line.len());
        let op = &line[..op_end];
        let rest = trim_start(&line[op_end..]);
        let eq = |name: &[u8]| op.eq_ignore_ascii_case(name);
        if eq(b"MSG") {
            self.message(&line, false).map(|()| None)
        } else if eq(b"HMSG") {
            self.message(&line, true).map(|()| None)
        } else if eq(b"PING") {
            Ok(Some(ServerOp::Ping))
        } else if eq(b"PONG") {
            Ok(Some(ServerOp::Pong))
        } else if eq(b"+OK") {
            Ok(Some(ServerOp::Ok))
        } else if eq(b"-ERR") {
            let text = trim_end(rest);
            let text = text
                .strip_prefix(b"'")
                .and_then(|t| t.strip_suffix(b"'"))
                .unwrap_or(text);
            Ok(Some(ServerOp::Err(String::from_utf8_lossy(text).into_owned())))
        } else if eq(b"INFO") {
            Info::parse(rest).map(|i| Some(ServerOp::Info(i)))
        } else {
            Err(ProtoError::Unknown(shown(&line)))
        }
    }

    /// `MSG <subject> <sid> [reply-to] <#bytes>` or
    /// `HMSG <subject> <sid> [reply-to] <#header bytes> <#total bytes>`: checks the sizes and
    /// leaves the message pending until its body arrives.
    fn message(&mut self, line: &Bytes, headers: bool) -> Result<(), ProtoError> {
        let op = if headers { "HMSG" } else { "MSG" };
        let bad = || malformed(op, &shown(line));
        // Op, subject, sid, optional reply, then one or two sizes.
        let mut args = [(0usize, 0usize); 6];
        let mut n = 0;
        let mut i = 0;
        while i < line.len() {
            if is_space(line[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < line.len() && !is_space(line[i]) {
                i += 1;
            }
            if n == args.len() {
                return Err(bad());
            }
            args[n] = (start, i);
            n += 1;
        }
        let sizes = if headers { 2 } else { 1 };
        if n != 3 + sizes && n != 4 + sizes {
            return Err(bad());
        }
        let arg = |k: usize| &line[args[k].0..args[k].1];
        let sid = parse_u64(arg(2)).ok_or_else(bad)?;
        let reply = (n == 4 + sizes).then(|| line.slice(args[3].0..args[3].1));
        let (hdr, total) = if headers {
            let hdr = parse_u64(arg(n - 2)).ok_or_else(bad)?;
            let total = parse_u64(arg(n - 1)).ok_or_else(bad)?;
            if hdr > total {
                return Err(bad());
            }
            (hdr, total)
        } else {
            (0, parse_u64(arg(n - 1)).ok_or_else(bad)?)
        };
        if total > self.max_payload as u64 {
            return Err(ProtoError::PayloadTooLarge {
                len: usize::try_from(total).unwrap_or(usize::MAX),
                max: self.max_payload,
            });
        }
        // Both fit in usize: total <= max_payload.
        self.pending = Some(Pending {
            subject: line.slice(args[1].0..args[1].1),
            sid,
            reply,
            hdr: hdr as usize,
            total: total as usize,
        });
        Ok(())
    }
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| is_space(**c)).count();
    &b[n..]
}

fn trim_end(b: &[u8]) -> &[u8] {
    let n = b.iter().rev().take_while(|c| is_space(**c)).count();
    &b[..b.len() - n]
}

/// A decimal number of at most 19 digits (so it cannot overflow), nothing else.
fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Whether `subject` can be written in a PUB or SUB line: not empty, and no byte that
/// would end or split the line (space, tab, CR, LF, or any other control byte).
pub fn valid_subject(subject: &[u8]) -> bool {
    !subject.is_empty() && subject.iter().all(|b| *b > b' ' && *b != 0x7f)
}

/// What the client says in CONNECT.
#[derive(Debug, Clone, Default)]
pub struct Connect<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub tls_required: bool,
    pub user: Option<&'a str>,
    pub pass: Option<&'a str>,
    pub auth_token: Option<&'a str>,
}

/// `CONNECT {json}\r\n`: no +OK after every operation (verbose off), no echo of the
/// client's own messages, no headers (so the server sends MSG, never HMSG).
pub fn encode_connect(out: &mut BytesMut, c: &Connect<'_>) {
    let mut json = serde_json::json!({
        "verbose": false,
        "pedantic": false,
        "echo": false,
        "lang": "rust",
        "version": c.version,
        "protocol": 1,
        "headers": false,
        "name": c.name,
        "tls_required": c.tls_required,
    });
    let obj = json.as_object_mut().expect("a JSON object");
    for (key, value) in [("user", c.user), ("pass", c.pass), ("auth_token", c.auth_token)] {
        if let Some(v) = value {
            obj.insert(key.into(), v.into());
        }
    }
    out.put_slice(b"CONNECT ");
    out.put_slice(json.to_string().as_bytes());
    out.put_slice(b"\r\n");
}

/// The bytes [`encode_pub`] appends for a message.
pub fn pub_len(subject: &[u8], payload: &[u8]) -> usize {
    // "PUB " + subject + " " + digits + CRLF + payload + CRLF
    4 + subject.len() + 1 + decimal_len(payload.len()) + 2 + payload.len() + 2
}

/// `PUB <subject> <#bytes>\r\n<payload>\r\n`. The subject must pass [`valid_subject`].
pub fn encode_pub(out: &mut BytesMut, subject: &[u8], payload: &[u8]) {
    out.reserve(pub_len(subject, payload));
    out.put_slice(b"PUB ");
    out.put_slice(subject);
    out.put_u8(b' ');
    put_decimal(out, payload.len() as u64);
    out.put_slice(b"\r\n");
    out.put_slice(payload);
    out.put_slice(b"\r\n");
}

/// Digits of the size field of an extendable PUB: nats-server reads at most 9 (999 MB,
/// more than its largest max_payload) and takes leading zeros.
pub const PADDED_SIZE: usize = 9;

/// `PUB <subject> <#bytes, 9 digits>\r\n<payload>\r\n`, whose payload can be extended
/// in place (see [`extend_pub`]). Returns the offset of the size digits in `out`.
pub fn encode_pub_padded(out: &mut BytesMut, subject: &[u8], payload: &[&[u8]]) -> usize {
    let len: usize = payload.iter().map(|p| p.len()).sum();
    out.reserve(4 + subject.len() + 1 + PADDED_SIZE + 4 + len);
    out.put_slice(b"PUB ");
    out.put_slice(subject);
    out.put_u8(b' ');
    let at = out.len();
    out.put_slice(&padded(len));
    out.put_slice(b"\r\n");
    for p in payload {
        out.put_slice(p);
    }
    out.put_slice(b"\r\n");
    at
}

fn padded(mut n: usize) -> [u8; PADDED_SIZE] {
    let mut digits = [b'0'; PADDED_SIZE];
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    digits
}

/// Appends `more` to the payload of the padded PUB that ends `out` (its size digits at
/// `size_at`, its payload now `len` bytes); returns the new payload length.
pub fn extend_pub(out: &mut BytesMut, size_at: usize, len: usize, more: &[&[u8]]) -> usize {
    out.truncate(out.len() - 2);
    let mut new = len;
    for p in more {
        out.put_slice(p);
        new += p.len();
    }
    out.put_slice(b"\r\n");
    out[size_at..size_at + PADDED_SIZE].copy_from_slice(&padded(new));
    new
}

/// `SUB <subject> <sid>\r\n`. The subject must pass [`valid_subject`].
pub fn encode_sub(out: &mut BytesMut, subject: &[u8], sid: u64) {
    out.put_slice(b"SUB ");
    out.put_slice(subject);
    out.put_u8(b' ');
    put_decimal(out, sid);
    out.put_slice(b"\r\n");
}

/// `UNSUB <sid>\r\n`.
pub fn encode_unsub(out: &mut BytesMut, sid: u64) {
    out.put_slice(b"UNSUB ");
    put_decimal(out, sid);
    out.put_slice(b"\r\n");
}

pub fn encode_ping(out: &mut BytesMut) {
    out.put_slice(b"PING\r\n");
}

pub fn encode_pong(out: &mut BytesMut) {
    out.put_slice(b"PONG\r\n");
}

fn decimal_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

fn put_decimal(out: &mut BytesMut, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser() -> Parser {
        Parser::new(DEFAULT_MAX_CONTROL_LINE, DEFAULT_MAX_PAYLOAD)
    }

    /// Every operation in `input`, fed in one piece.
    fn parse_all(p: &mut Parser, input: &[u8]) -> Result<Vec<ServerOp>, ProtoError> {
        let mut buf = BytesMut::from(input);
        let mut ops = Vec::new();
        while let Some(op) = p.next(&mut buf)? {
            ops.push(op);
        }
        assert!(buf.is_empty(), "left over: {:?}", buf);
        Ok(ops)
    }

    /// Every operation in `input`, fed as `input[..cut]` then the rest.
    fn parse_split(input: &[u8], cut: usize) -> Vec<ServerOp> {
        let mut p = parser();
        let mut buf = BytesMut::new();
        let mut ops = Vec::new();
        for part in [&input[..cut], &input[cut..]] {
            buf.extend_from_slice(part);
            while let Some(op) = p.next(&mut buf).unwrap() {
                ops.push(op);
            }
        }
        assert!(buf.is_empty());
        ops
    }

    fn msg(subject: &str, sid: u64, reply: Option<&str>, payload: &[u8]) -> ServerOp {
        ServerOp::Msg(Msg {
            subject: Bytes::copy_from_slice(subject.as_bytes()),
            sid,
            reply: reply.map(|r| Bytes::copy_from_slice(r.as_bytes())),
            payload: Bytes::copy_from_slice(payload),
        })
    }

    const STREAM: &[u8] =
        b"INFO {\"server_id\":\"X\",\"version\":\"2.9.10\",\"max_payload\":1048576,\"headers\":true}\r\n\
        +OK\r\nPING\r\npong\r\n\
        MSG foo.bar 1 5\r\nhello\r\n\
        MSG foo 22 reply.to 0\r\n\r\n\
        HMSG h 3 18 23\r\nNATS/1.0\r\nA: b\r\n\r\nhello\r\n\
        HMSG h 4 _INBOX.x 12 12\r\nNATS/1.0\r\n\r\n\r\n\
        MSG\tbin  7\t4\r\n\r\n\0\xff\r\n\
        -ERR 'Authorization Violation'\r\n";

    fn expected() -> Vec<ServerOp> {
        vec![
            ServerOp::Info(Info {
                server_id: "X".into(),
                version: "2.9.10".into(),
                max_payload: Some(1048576),
                tls_required: false,
                tls_available: false,
                headers: true,
            }),
            ServerOp::Ok,
            ServerOp::Ping,
            ServerOp::Pong,
            msg("foo.bar", 1, None, b"hello"),
            msg("foo", 22, Some("reply.to"), b""),
            msg("h", 3, None, b"hello"),
            msg("h", 4, Some("_INBOX.x"), b""),
            msg("bin", 7, None, b"\r\n\0\xff"),
            ServerOp::Err("Authorization Violation".into()),
        ]
    }

    #[test]
    fn parses_every_op() {
        assert_eq!(parse_all(&mut parser(), STREAM).unwrap(), expected());
    }

    #[test]
    fn split_at_every_byte() {
        for cut in 0..=STREAM.len() {
            assert_eq!(parse_split(STREAM, cut), expected(), "cut at {cut}");
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let mut p = parser();
        let mut buf = BytesMut::new();
        let mut ops = Vec::new();
        for b in STREAM {
            buf.extend_from_slice(&[*b]);
            while let Some(op) = p.next(&mut buf).unwrap() {
                ops.push(op);
            }
        }
        assert_eq!(ops, expected());
    }

    #[test]
    fn bytes_wanted_tracks_the_body() {
        let mut p = parser();
        let mut buf = BytesMut::from(&b"MSG a 1 10\r\nabc"[..]);
        assert_eq!(p.next(&mut buf).unwrap(), None);
        assert_eq!(p.bytes_wanted(buf.len()), 12 - 3);
        buf.extend_from_slice(b"defghij\r\n");
        assert_eq!(p.next(&mut buf).unwrap(), Some(msg("a", 1, None, b"abcdefghij")));
        assert_eq!(p.bytes_wanted(0), 0);
    }

    #[test]
    fn control_line_bounded() {
        let mut p = Parser::new(64, DEFAULT_MAX_PAYLOAD);
        // Exactly 64 bytes before CRLF: accepted.
        let line = format!("-ERR '{}'\r\n", "x".repeat(64 - 7));
        assert_eq!(line.len(), 66);
        assert!(parse_all(&mut p, line.as_bytes()).is_ok());
        // 65 bytes: refused as soon as 66 bytes are buffered with no LF among them.
        let mut buf = BytesMut::from(format!("-ERR '{}", "x".repeat(57)).as_bytes());
        assert_eq!(p.next(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"x'");
        assert_eq!(p.next(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"\r");
        assert_eq!(p.next(&mut buf), Err(ProtoError::LineTooLong { max: 64 }));
        // A line that never ends is refused without waiting for it.
        let mut buf = BytesMut::from(&[b'A'; 1000][..]);
        assert_eq!(p.next(&mut buf), Err(ProtoError::LineTooLong { max: 64 }));
    }

    #[test]
    fn payload_bounded_before_it_arrives() {
        let mut p = Parser::new(DEFAULT_MAX_CONTROL_LINE, 100);
        assert!(parse_all(&mut p, format!("MSG a 1 100\r\n{}\r\n", "x".repeat(100)).as_bytes()).is_ok());
        let mut buf = BytesMut::from(&b"MSG a 1 101\r\n"[..]);
        assert_eq!(
            p.next(&mut buf),
            Err(ProtoError::PayloadTooLarge { len: 101, max: 100 })
        );
        let mut buf = BytesMut::from(&b"HMSG a 1 10 101\r\n"[..]);
        assert_eq!(
            p.next(&mut buf),
            Err(ProtoError::PayloadTooLarge { len: 101, max: 100 })
        );
        let mut buf = BytesMut::from(&b"MSG a 1 99999999999999999999999\r\n"[..]);
        assert!(matches!(p.next(&mut buf), Err(ProtoError::Malformed { .. })));
        // The limit follows the server's INFO.
        p.set_max_payload(1000);
        assert!(parse_all(&mut p, format!("MSG a 1 101\r\n{}\r\n", "x".repeat(101)).as_bytes()).is_ok());
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bad in [
            &b"MSG a 1\r\n"[..],
            b"MSG a b 1\r\n",
            b"MSG a 1 -1\r\n",
            b"MSG a 1 x\r\n",
            b"MSG a 1 r 2 3\r\n",
            b"HMSG a 1 5\r\n",
            b"HMSG a 1 6 5\r\n",
            b"MSG a 1 2\r\nabcd\r\n",
            b"NOPE\r\n",
            b"INFO {\r\n",
            b"INFO []\r\n",
            b"INFO {\"max_payload\":-1}\r\n",
            b"PING\n",
            b"\r\n",
        ] {
            let r = parse_all(&mut parser(), bad);
            assert!(r.is_err(), "{:?} gave {r:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn info_fields() {
        let info =
            Info::parse(br#"{"tls_required":true,"tls_available":true,"max_payload":1024,"extra":[1]}"#).unwrap();
        assert_eq!(info.max_payload, Some(1024));
        assert!(info.tls_required && info.tls_available && !info.headers);
        assert_eq!(Info::parse(b"{}").unwrap().max_payload, None);
    }

    #[test]
    fn encoders() {
        let mut out = BytesMut::new();
        encode_pub(&mut out, b"a.b", b"hello");
        assert_eq!(out.len(), pub_len(b"a.b", b"hello"));
        encode_pub(&mut out, b"x", b"");
        encode_pub(&mut out, b"y", &[b'z'; 1234]);
        encode_sub(&mut out, b"a.*", 7);
        encode_unsub(&mut out, 1234567890123);
        encode_ping(&mut out);
        encode_pong(&mut out);
        let mut expected = b"PUB a.b 5\r\nhello\r\nPUB x 0\r\n\r\nPUB y 1234\r\n".to_vec();
        expected.extend_from_slice(&[b'z'; 1234]);
        expected.extend_from_slice(b"\r\nSUB a.* 7\r\nUNSUB 1234567890123\r\nPING\r\nPONG\r\n");
        assert_eq!(&out[..], &expected[..]);
        assert_eq!(pub_len(b"y", &[0; 1234]), "PUB y 1234\r\n\r\n".len() + 1234);
    }

    #[test]
    fn connect_json() {
        let mut out = BytesMut::new();
        encode_connect(
            &mut out,
            &Connect {
                name: "fanout",
                version: "0.1.0",
                tls_required: true,
                user: Some("u"),
                pass: Some("p\"q"),
                auth_token: None,
            },
        );
        let line = std::str::from_utf8(&out).unwrap();
        let json = line.strip_prefix("CONNECT ").unwrap().strip_suffix("\r\n").unwrap();
        assert!(!json.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["verbose"], false);
        assert_eq!(v["echo"], false);
        assert_eq!(v["headers"], false);
        assert_eq!(v["protocol"], 1);
        assert_eq!(v["lang"], "rust");
        assert_eq!(v["name"], "fanout");
        assert_eq!(v["tls_required"], true);
        assert_eq!(v["user"], "u");
        assert_eq!(v["pass"], "p\"q");
        assert!(v.get("auth_token").is_none());
    }

    #[test]
    fn subjects() {
        assert!(valid_subject(b"a.b.>"));
        assert!(valid_subject("ü.*".as_bytes()));
        for bad in [&b""[..], b"a b", b"a\tb", b"a\r\nPUB", b"a\0"] {
            assert!(!valid_subject(bad), "{bad:?}");
        }
    }

    #[test]
    fn padded_pub_is_extended_in_place() {
        let mut out = BytesMut::new();
        out.put_slice(b"PING\r\n");
        let at = encode_pub_padded(&mut out, b"a.b", &[b"he", b"llo"]);
        assert_eq!(&out[..], b"PING\r\nPUB a.b 000000005\r\nhello\r\n");
        let len = extend_pub(&mut out, at, 5, &[b" ", b"world"]);
        assert_eq!(len, 11);
        assert_eq!(&out[..], b"PING\r\nPUB a.b 000000011\r\nhello world\r\n");
    }
}
