//! Reply encoding for RESP2 and RESP3.
//!
//! Every writer takes the connection's protocol so that one call site produces the
//! right bytes for both: a map is `%N` in RESP3 and a flat `*2N` array in RESP2, a
//! null is `_` or `$-1`, a push is `>N` or `*N`. Writers append to a `BytesMut`; they
//! never allocate per element beyond the buffer's own growth.

use bytes::{BufMut, BytesMut};

/// The protocol a connection speaks, chosen with HELLO. Every connection starts in RESP2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Resp2 = 2,
    Resp3 = 3,
}

impl Proto {
    pub fn from_u8(v: u8) -> Proto {
        if v == 3 {
            Proto::Resp3
        } else {
            Proto::Resp2
        }
    }
}

/// Appends RESP values to a buffer in one protocol.
pub struct Encoder<'a> {
    pub out: &'a mut BytesMut,
    pub proto: Proto,
}

fn put_len(out: &mut BytesMut, prefix: u8, n: i64) {
    out.put_u8(prefix);
    out.put_slice(SmallNum::new(n).as_slice());
    out.put_slice(b"\r\n");
}

/// Formats an integer without going through `fmt` (this runs once per message frame).
struct SmallNum {
    buf: [u8; 20],
    start: usize,
}

impl SmallNum {
    fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn new(n: i64) -> SmallNum {
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        let neg = n < 0;
        let mut v = n.unsigned_abs();
        loop {
            i -= 1;
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        if neg {
            i -= 1;
            buf[i] = b'-';
        }
        SmallNum { buf, start: i }
    }
}

impl<'a> Encoder<'a> {
    pub fn new(out: &'a mut BytesMut, proto: Proto) -> Self {
        Encoder { out, proto }
    }

    pub fn simple(&mut self, s: &str) {
        self.out.put_u8(b'+');
        self.out.put_slice(s.as_bytes());
        self.out.put_slice(b"\r\n");
    }

    /// An error reply. `msg` carries its own code (`ERR ...`, `NOAUTH ...`); CR and LF
    /// inside it become spaces, as Redis does, so a reply can never break the framing.
    pub fn error(&mut self, msg: &str) {
        self.error_bytes(msg.as_bytes())
    }

    /// [`Encoder::error`] for messages that may hold bytes that are not UTF-8 (a protocol
    /// error quotes the offending byte raw, as Redis does).
    pub fn error_bytes(&mut self, msg: &[u8]) {
        self.out.put_u8(b'-');
        for &b in msg {
            self.out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
        self.out.put_slice(b"\r\n");
    }

    pub fn integer(&mut self, n: i64) {
        put_len(self.out, b':', n);
    }

    pub fn bulk(&mut self, b: &[u8]) {
        put_len(self.out, b'$', b.len() as i64);
        self.out.put_slice(b);
        self.out.put_slice(b"\r\n");
    }

    pub fn null(&mut self) {
        match self.proto {
            Proto::Resp2 => self.out.put_slice(b"$-1\r\n"),
            Proto::Resp3 => self.out.put_slice(b"_\r\n"),
        }
    }

    /// A null array (`*-1` in RESP2): EXEC aborted by WATCH, a blocking read that timed
    /// out.
    pub fn null_array(&mut self) {
        match self.proto {
            Proto::Resp2 => self.out.put_slice(b"*-1\r\n"),
            Proto::Resp3 => self.out.put_slice(b"_\r\n"),
        }
    }

    /// A double as Redis's `addReplyDouble` sends it: a RESP3 double, or in RESP2 a bulk
    /// string, both in C's `%.17g`.
    pub fn double(&mut self, d: f64) {
        let text = format_g17(d);
        match self.proto {
            Proto::Resp2 => self.bulk(text.as_bytes()),
            Proto::Resp3 => {
                self.out.put_u8(b',');
                self.out.put_slice(text.as_bytes());
                self.out.put_slice(b"\r\n");
            }
        }
    }

    pub fn array(&mut self, n: usize) {
        put_len(self.out, b'*', n as i64);
    }

    /// A map of `n` pairs: `%n` in RESP3, a flat array of `2n` items in RESP2.
    pub fn map(&mut self, n: usize) {
        match self.proto {
            Proto::Resp2 => put_len(self.out, b'*', 2 * n as i64),
            Proto::Resp3 => put_len(self.out, b'%', n as i64),
        }
    }

    /// A set: `~n` in RESP3, an array in RESP2.
    pub fn set(&mut self, n: usize) {
        match self.proto {
            Proto::Resp2 => put_len(self.out, b'*', n as i64),
            Proto::Resp3 => put_len(self.out, b'~', n as i64),
        }
    }

    /// Out-of-band data (pub/sub messages and confirmations): `>n` in RESP3.
    pub fn push(&mut self, n: usize) {
        match self.proto {
            Proto::Resp2 => put_len(self.out, b'*', n as i64),
            Proto::Resp3 => put_len(self.out, b'>', n as i64),
        }
    }

    /// Human-readable text (INFO, CLIENT LIST): verbatim `txt` in RESP3, bulk in RESP2.
    pub fn verbatim(&mut self, text: &[u8]) {
        match self.proto {
            Proto::Resp2 => self.bulk(text),
            Proto::Resp3 => {
                put_len(self.out, b'=', text.len() as i64 + 4);
                self.out.put_slice(b"txt:");
                self.out.put_slice(text);
                self.out.put_slice(b"\r\n");
            }
        }
    }

    pub fn bulk_or_null(&mut self, b: Option<&[u8]>) {
        match b {
            Some(b) => self.bulk(b),
            None => self.null(),
        }
    }
}

/// Appends a pub/sub message frame (`message`, `pmessage` or `smessage`) to `out`.
pub fn encode_message(
    out: &mut BytesMut,
    proto: Proto,
    kind: &[u8],
    pattern: Option<&[u8]>,
    channel: &[u8],
    payload: &[u8],
) {
    let parts = 2 + pattern.is_some() as usize;
    let mut e = Encoder::new(out, proto);
    e.push(parts + 1);
    e.bulk(kind);
    if let Some(p) = pattern {
        e.bulk(p);
    }
    e.bulk(channel);
    e.bulk(payload);
}

/// C's `%.17g`, which Redis uses for doubles (ACL LOG's `age-seconds`): 17 significant
/// digits, trailing zeros dropped, exponent form outside 1e-4 ..= 1e17.
fn format_g17(d: f64) -> String {
    if d == 0.0 || !d.is_finite() {
        return if d.is_nan() {
            "nan".into()
        } else if d == 0.0 {
            "0".into()
        } else {
            "inf".into()
        };
    }
    let strip = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    let sci = format!("{d:.16e}");
    let (mantissa, exp) = sci.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    if !(-4..17).contains(&exp) {
        format!(
            "{}e{}{:02}",
            strip(mantissa),
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    } else {
        strip(&format!("{:.*}", (16 - exp) as usize, d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_as_redis_prints_them() {
        // Values seen in redis-server 7.0.15's ACL LOG replies.
        assert_eq!(format_g17(0.448), "0.44800000000000001");
        assert_eq!(format_g17(1.349), "1.349");
        assert_eq!(format_g17(6.384), "6.3840000000000003");
        assert_eq!(format_g17(0.0), "0");
        assert_eq!(format_g17(12.0), "12");
        assert_eq!(format_g17(1e20), "1e+20");
        assert_eq!(format_g17(0.00001), "1.0000000000000001e-05");
    }

    fn enc(proto: Proto, f: impl FnOnce(&mut Encoder)) -> Vec<u8> {
        let mut b = BytesMut::new();
        f(&mut Encoder::new(&mut b, proto));
        b.to_vec()
    }

    #[test]
    fn message_frames_in_both_protocols() {
        assert_eq!(
            &enc(Proto::Resp2, |e| encode_message(
                e.out,
                Proto::Resp2,
                b"message",
                None,
                b"ch1",
                b"hello"
            ))[..],
            b"*3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$5\r\nhello\r\n"
        );
        assert_eq!(
            &enc(Proto::Resp3, |e| encode_message(
                e.out,
                Proto::Resp3,
                b"pmessage",
                Some(b"c*"),
                b"ch1",
                b""
            ))[..],
            b">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$3\r\nch1\r\n$0\r\n\r\n"
        );
    }

    #[test]
    fn nulls_maps_and_verbatim() {
        assert_eq!(enc(Proto::Resp2, |e| e.null()), b"$-1\r\n");
        assert_eq!(enc(Proto::Resp3, |e| e.null()), b"_\r\n");
        assert_eq!(enc(Proto::Resp2, |e| e.map(7)), b"*14\r\n");
        assert_eq!(enc(Proto::Resp3, |e| e.map(7)), b"%7\r\n");
        assert_eq!(enc(Proto::Resp3, |e| e.verbatim(b"ab")), b"=6\r\ntxt:ab\r\n");
        assert_eq!(enc(Proto::Resp2, |e| e.integer(-12)), b":-12\r\n");
        assert_eq!(enc(Proto::Resp2, |e| e.integer(0)), b":0\r\n");
        assert_eq!(enc(Proto::Resp2, |e| e.error("ERR a\r\nb")), b"-ERR a  b\r\n");
    }
}
