//! Sans-IO WebSocket (RFC 6455) framing: the handshake's accept key, server frame encoding and
//! an incremental decoder for client frames. Nothing here does I/O.
//!
//! The connection task owns a `BytesMut`, appends whatever the socket returns and calls
//! [`Decoder::next`] until it yields `Ok(None)`; replies are encoded straight into the outbox
//! with [`encode_frame`] (or [`encode_header`] followed by a payload written in pieces). Keeping
//! the codec free of sockets means every framing rule, and every way a hostile client can break
//! one, is tested with plain byte strings.
//!
//! Design:
//!
//! * **Server role only.** Frames from the client must be masked and frames to it must not be
//!   (RFC 6455 section 5.1), so the decoder rejects unmasked frames and the encoder never masks.
//!   No extension is negotiated, so any RSV bit is an error (section 5.2).
//! * **Whole frames.** A frame is consumed only once all of it is in the buffer; until then the
//!   header is re-read on every call. Headers are at most 14 bytes, so that costs nothing, and it
//!   keeps the decoder's own state down to the fragmented message being assembled. Validation
//!   follows the bytes as they arrive (first byte, then length, then mask key), so a bad header
//!   fails as soon as its offending byte is in, and feeding the stream in any chunking gives the
//!   same results.
//! * **Limits before allocation.** The payload length comes from an untrusted peer. A data frame
//!   whose length would take its message over `max_message` is rejected as soon as the length is
//!   readable, before any of its payload arrives, so a header announcing 2^62 bytes costs nothing.
//!   The buffer of a fragmented message grows with what actually arrives and is never given more
//!   capacity than `max_message`.
//! * **Zero copy where it is free.** An unfragmented message (the common case) is unmasked in
//!   place and cut out of the read buffer with `split_to(..).freeze()`. Fragments have to be
//!   joined, so they are copied once into the message being assembled.
//! * **UTF-8 at the end.** A text message is checked when its last fragment arrives (a fragment
//!   boundary may split a character), as is the reason in a close frame.
//!
//! Every [`WsError`] is fatal: the caller sends a close frame with [`WsError::close_code`] and
//! [`WsError::reason`] (see [`close_payload`]) and closes the connection.

use base64::Engine;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use sha1::{Digest, Sha1};

/// Appended to the client's key before hashing (RFC 6455 section 1.3).
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Control frames carry at most this many payload bytes (section 5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// A close reason must fit in a control frame after the 2-byte status code.
const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key (base64(sha1(key + GUID))).
///
/// `client_key` is the header value as sent, without surrounding whitespace. The RFC wants it
/// to be 16 base64-encoded bytes; checking that is left to the handshake, since the answer is
/// well defined for any key.
pub fn accept_key(client_key: &[u8]) -> String {
    let mut hash = Sha1::new();
    hash.update(client_key);
    hash.update(ACCEPT_GUID);
    base64::engine::general_purpose::STANDARD.encode(hash.finalize())
}

/// A frame's opcode (section 5.2). Values 3-7 and 11-15 are reserved and rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_wire(bits: u8) -> Option<Opcode> {
        match bits {
            0x0 => Some(Opcode::Continuation),
            0x1 => Some(Opcode::Text),
            0x2 => Some(Opcode::Binary),
            0x8 => Some(Opcode::Close),
            0x9 => Some(Opcode::Ping),
            0xA => Some(Opcode::Pong),
            _ => None,
        }
    }

    fn wire(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Control opcodes have the high bit of the nibble set.
    fn is_control(self) -> bool {
        self.wire() & 0x8 != 0
    }
}

/// Length of the header of an unmasked frame carrying `payload_len` bytes.
fn header_len(payload_len: usize) -> usize {
    match payload_len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}

/// Appends one unfragmented, unmasked server frame (FIN set) to `out`.
///
/// Control frames (`Close`, `Ping`, `Pong`) must not carry more than 125 bytes; keeping to that
/// is the caller's job, as is sending `Text` payloads that are valid UTF-8.
pub fn encode_frame(out: &mut BytesMut, opcode: Opcode, payload: &[u8]) {
    out.reserve(frame_len(payload.len()));
    encode_header(out, opcode, payload.len());
    out.extend_from_slice(payload);
}

/// Length on the wire of such a frame.
pub fn frame_len(payload_len: usize) -> usize {
    header_len(payload_len).saturating_add(payload_len)
}

/// Writes just the header of an unmasked FIN frame of `payload_len` bytes (so a caller can
/// write a payload assembled in pieces without copying twice).
///
/// The length uses the shortest encoding, as section 5.2 requires of senders.
pub fn encode_header(out: &mut BytesMut, opcode: Opcode, payload_len: usize) {
    out.reserve(header_len(payload_len));
    out.put_u8(0x80 | opcode.wire());
    match payload_len {
        0..=125 => out.put_u8(payload_len as u8),
        126..=0xFFFF => {
            out.put_u8(126);
            out.put_u16(payload_len as u16);
        }
        _ => {
            out.put_u8(127);
            out.put_u64(payload_len as u64);
        }
    }
}

/// A close frame's payload: 2-byte status code then a UTF-8 reason (truncated to fit 123 bytes
/// on a char boundary).
///
/// The code is written as given; codes 1005 and 1006 are reserved for reporting and must not
/// be sent.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    // Cutting inside a character would make the reason invalid UTF-8, which the peer must
    // treat as a protocol error. 0 is always a boundary, so this stops.
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

/// One complete message or control frame from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A complete text message; always valid UTF-8.
    Text(Bytes),
    /// A complete binary message.
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    /// The status code (`None` for an empty close frame) and the reason, valid UTF-8.
    Close(Option<u16>, Bytes),
}

/// A client broke the framing rules. All of them are fatal; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsError {
    /// A client frame without the MASK bit (section 5.1).
    Unmasked,
    /// An RSV bit is set, but no extension was negotiated.
    ReservedBits,
    /// Opcode 3-7 or 11-15.
    UnknownOpcode,
    /// A control frame announcing more than 125 payload bytes.
    ControlFrameTooLong,
    /// A control frame without FIN.
    FragmentedControlFrame,
    /// A continuation frame with no fragmented message in progress.
    UnexpectedContinuation,
    /// A text or binary frame while a fragmented message is still in progress.
    ExpectedContinuation,
    /// The message would exceed the decoder's `max_message`.
    MessageTooLarge,
    /// A complete text message is not valid UTF-8.
    InvalidUtf8,
    /// A close frame's reason is not valid UTF-8.
    InvalidCloseReason,
    /// A close frame whose payload is a single byte: too short for a status code.
    TruncatedCloseCode,
    /// A close frame with a status code a peer may not send.
    InvalidCloseCode,
    /// A 64-bit payload length with the most significant bit set.
    LengthTooLong,
}

impl WsError {
    /// The RFC 6455 close status code to send (1002 protocol error, 1007 invalid payload, 1009
    /// too big).
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::InvalidUtf8 | WsError::InvalidCloseReason => 1007,
            WsError::MessageTooLarge => 1009,
            WsError::Unmasked
            | WsError::ReservedBits
            | WsError::UnknownOpcode
            | WsError::ControlFrameTooLong
            | WsError::FragmentedControlFrame
            | WsError::UnexpectedContinuation
            | WsError::ExpectedContinuation
            | WsError::TruncatedCloseCode
            | WsError::InvalidCloseCode
            | WsError::LengthTooLong => 1002,
        }
    }

    /// A short reason for the close frame; always fits in one (at most 123 bytes).
    pub fn reason(&self) -> &'static str {
        match self {
            WsError::Unmasked => "client frame not masked",
            WsError::ReservedBits => "reserved bits set",
            WsError::UnknownOpcode => "unknown opcode",
            WsError::ControlFrameTooLong => "control frame payload over 125 bytes",
            WsError::FragmentedControlFrame => "fragmented control frame",
            WsError::UnexpectedContinuation => "continuation frame without a message to continue",
            WsError::ExpectedContinuation => "new data frame before the fragmented message ended",
            WsError::MessageTooLarge => "message too big",
            WsError::InvalidUtf8 => "invalid UTF-8 in text message",
            WsError::InvalidCloseReason => "invalid UTF-8 in close reason",
            WsError::TruncatedCloseCode => "close frame payload of one byte",
            WsError::InvalidCloseCode => "invalid close code",
            WsError::LengthTooLong => "64-bit payload length with the top bit set",
        }
    }
}

impl std::fmt::Display for WsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for WsError {}

/// A frame header that passed every check that can be made before the payload is in.
#[derive(Debug, Clone, Copy)]
struct Header {
    fin: bool,
    opcode: Opcode,
    mask: [u8; 4],
    header_len: usize,
    /// At most `max_message` (data) or 125 (control), so it fits in memory.
    payload_len: usize,
}

/// A fragmented text or binary message being assembled.
#[derive(Debug)]
struct Fragmented {
    /// `Text` or `Binary`, from the first frame.
    opcode: Opcode,
    /// Unmasked payload so far; never longer, nor with more capacity, than `max_message`.
    data: Vec<u8>,
}

/// Decodes client frames from a read buffer (the caller appends socket bytes to `buf`).
#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    fragmented: Option<Fragmented>,
}

impl Decoder {
    /// A decoder accepting messages (after joining fragments) of at most `max_message` bytes.
    pub fn new(max_message: usize) -> Decoder {
        Decoder {
            max_message,
            fragmented: None,
        }
    }

    /// Consumes whole frames from `buf`; returns the next complete message/control frame,
    /// `Ok(None)` when more bytes are needed. Control frames may arrive between fragments of a
    /// data message and are returned at once. Unmasks in place. Never allocates more than
    /// `max_message` (+ one frame header) for a message, whatever the headers claim: a header
    /// announcing a payload over the limit is an error before its bytes arrive.
    ///
    /// After an error the connection must be closed; the decoder drops any partial message, and
    /// `buf` is left at the offending frame (header errors) or just after it (payload errors).
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, WsError> {
        let result = self.decode(buf);
        if result.is_err() {
            self.fragmented = None;
        }
        result
    }

    /// How many more bytes the current frame needs, for sizing the next read (0 if unknown,
    /// i.e. while its header is incomplete or invalid). The payload length behind it has passed
    /// the `max_message` check, but it is still the peer's claim: the caller should cap it.
    pub fn bytes_wanted(&self, buf: &BytesMut) -> usize {
        match self.header(buf) {
            Ok(Some(h)) => h.header_len.saturating_add(h.payload_len).saturating_sub(buf.len()),
            Ok(None) | Err(_) => 0,
        }
    }

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, WsError> {
        loop {
            let Some(h) = self.header(buf)? else {
                return Ok(None);
            };
            if buf.len() < h.header_len.saturating_add(h.payload_len) {
                return Ok(None);
            }
            buf.advance(h.header_len);
            let mut payload = buf.split_to(h.payload_len);
            unmask(&mut payload, h.mask);
            match h.opcode {
                Opcode::Ping => return Ok(Some(Incoming::Ping(payload.freeze()))),
                Opcode::Pong => return Ok(Some(Incoming::Pong(payload.freeze()))),
                Opcode::Close => return close(payload.freeze()).map(Some),
                Opcode::Text | Opcode::Binary if h.fin => return message(h.opcode, payload.freeze()).map(Some),
                Opcode::Text | Opcode::Binary => {
                    let mut data = Vec::new();
                    append(&mut data, &payload, self.max_message);
                    self.fragmented = Some(Fragmented { opcode: h.opcode, data });
                }
                Opcode::Continuation => {
                    // `header` has checked that a message is in progress.
                    let Some(frag) = self.fragmented.as_mut() else {
                        return Err(WsError::UnexpectedContinuation);
                    };
                    append(&mut frag.data, &payload, self.max_message);
                    if h.fin {
                        if let Some(frag) = self.fragmented.take() {
                            return message(frag.opcode, Bytes::from(frag.data)).map(Some);
                        }
                    }
                }
            }
        }
    }

    /// Reads and checks the header at the front of `buf`. `Ok(None)`: incomplete. Checks are
    /// made in wire order, each as soon as its bytes are present, so the outcome does not depend
    /// on how the stream was split into reads.
    fn header(&self, buf: &[u8]) -> Result<Option<Header>, WsError> {
        let Some(&b0) = buf.first() else {
            return Ok(None);
        };
        if b0 & 0x70 != 0 {
            return Err(WsError::ReservedBits);
        }
        let fin = b0 & 0x80 != 0;
        let opcode = Opcode::from_wire(b0 & 0x0F).ok_or(WsError::UnknownOpcode)?;
        if opcode.is_control() {
            if !fin {
                return Err(WsError::FragmentedControlFrame);
            }
        } else {
            match (opcode, self.fragmented.is_some()) {
                (Opcode::Continuation, false) => return Err(WsError::UnexpectedContinuation),
                (Opcode::Text | Opcode::Binary, true) => return Err(WsError::ExpectedContinuation),
                _ => {}
            }
        }

        let Some(&b1) = buf.get(1) else {
            return Ok(None);
        };
        if b1 & 0x80 == 0 {
            return Err(WsError::Unmasked);
        }
        let len7 = b1 & 0x7F;
        if opcode.is_control() && usize::from(len7) > MAX_CONTROL_PAYLOAD {
            return Err(WsError::ControlFrameTooLong);
        }
        let (len, len_bytes): (u64, usize) = match len7 {
            126 => {
                let Some(&[hi, lo]) = buf.get(2..4) else {
                    return Ok(None);
                };
                (u64::from(u16::from_be_bytes([hi, lo])), 2)
            }
            127 => {
                let Some(Ok(bytes)) = buf.get(2..10).map(<[u8; 8]>::try_from) else {
                    return Ok(None);
                };
                let len = u64::from_be_bytes(bytes);
                if len >> 63 != 0 {
                    return Err(WsError::LengthTooLong);
                }
                (len, 8)
            }
            n => (u64::from(n), 0),
        };
        if !opcode.is_control() {
            // What the message already holds plus this frame; `already <= max_message` holds
            // by induction, and comparing in u64 keeps a huge claim from wrapping.
            let already = self.fragmented.as_ref().map_or(0, |f| f.data.len());
            let room = self.max_message.saturating_sub(already);
            if len > room as u64 {
                return Err(WsError::MessageTooLarge);
            }
        }
        // Bounded by `max_message` or 125 just above.
        let payload_len = len as usize;

        let key_at = 2 + len_bytes;
        let Some(&[k0, k1, k2, k3]) = buf.get(key_at..key_at + 4) else {
            return Ok(None);
        };
        Ok(Some(Header {
            fin,
            opcode,
            mask: [k0, k1, k2, k3],
            header_len: key_at + 4,
            payload_len,
        }))
    }
}

/// XORs `data` with the mask key (section 5.3). The payload starts at key index 0, so eight
/// bytes at a time see the key twice over; the fixed-size inner loop compiles to one 64-bit XOR.
fn unmask(data: &mut [u8], key: [u8; 4]) {
    let [a, b, c, d] = key;
    let wide = [a, b, c, d, a, b, c, d];
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        for (byte, k) in chunk.iter_mut().zip(wide) {
            *byte ^= k;
        }
    }
    for (byte, k) in chunks.into_remainder().iter_mut().zip(wide) {
        *byte ^= k;
    }
}

/// Appends a fragment to the message being assembled. Grows like a `Vec` would (doubling) but
/// never past `max`, so a message's buffer costs at most `max_message` however it is split.
/// The header check guarantees `data.len() + more.len() <= max`.
fn append(data: &mut Vec<u8>, more: &[u8], max: usize) {
    let needed = data.len().saturating_add(more.len());
    if needed > data.capacity() {
        let target = data.capacity().saturating_mul(2).min(max).max(needed);
        data.reserve_exact(target - data.len());
    }
    data.extend_from_slice(more);
}

/// A complete data message.
fn message(opcode: Opcode, payload: Bytes) -> Result<Incoming, WsError> {
    if opcode == Opcode::Text {
        if std::str::from_utf8(&payload).is_err() {
            return Err(WsError::InvalidUtf8);
        }
        Ok(Incoming::Text(payload))
    } else {
        Ok(Incoming::Binary(payload))
    }
}

/// Status codes a peer may send (section 7.4): the defined ones except those reserved for
/// reporting (1004-1006, 1015), and the ranges for libraries and applications.
fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// A close frame's payload: empty, or a status code and a UTF-8 reason (section 5.5.1).
fn close(payload: Bytes) -> Result<Incoming, WsError> {
    match *payload {
        [] => Ok(Incoming::Close(None, payload)),
        [_] => Err(WsError::TruncatedCloseCode),
        [hi, lo, ref reason @ ..] => {
            let code = u16::from_be_bytes([hi, lo]);
            if !valid_close_code(code) {
                return Err(WsError::InvalidCloseCode);
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(WsError::InvalidCloseReason);
            }
            Ok(Incoming::Close(Some(code), payload.slice(2..)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A client frame: `first` is the whole first byte (FIN, RSV, opcode), the length uses the
    /// shortest encoding and the payload is masked with `key`.
    fn masked(first: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
        let mut out = Vec::new();
        match payload.len() {
            n @ 0..=125 => out.extend_from_slice(&[first, 0x80 | n as u8]),
            n @ 126..=0xFFFF => {
                out.extend_from_slice(&[first, 0x80 | 126]);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.extend_from_slice(&[first, 0x80 | 127]);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        out
    }

    type Outcome = (Vec<Incoming>, Option<WsError>);

    /// Appends `input` chunk by chunk (ending at each cut point), draining the decoder after
    /// each append.
    fn decode_chunked(input: &[u8], cut_points: &[usize], max: usize) -> Outcome {
        let mut decoder = Decoder::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut from = 0;
        for &to in cut_points {
            buf.extend_from_slice(&input[from..to]);
            from = to;
            loop {
                match decoder.next(&mut buf) {
                    Ok(Some(m)) => out.push(m),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
            if let Some(frag) = &decoder.fragmented {
                assert!(frag.data.capacity() <= max);
            }
        }
        (out, None)
    }

    fn decode_all(input: &[u8], max: usize) -> Outcome {
        decode_chunked(input, &[input.len()], max)
    }

    fn decode_bytewise(input: &[u8], max: usize) -> Outcome {
        let every: Vec<usize> = (1..=input.len()).collect();
        decode_chunked(input, &every, max)
    }

    fn err_of(input: &[u8]) -> WsError {
        let (_, err) = decode_all(input, 1 << 20);
        err.expect("expected an error")
    }

    fn text(s: &str) -> Incoming {
        Incoming::Text(Bytes::copy_from_slice(s.as_bytes()))
    }

    // Handshake

    #[test]
    fn accept_key_rfc_example() {
        // RFC 6455 section 1.3.
        assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    // Encoding (RFC 6455 section 5.7)

    #[test]
    fn encode_rfc_examples() {
        let mut out = BytesMut::new();
        encode_frame(&mut out, Opcode::Text, b"Hello");
        assert_eq!(&out[..], b"\x81\x05\x48\x65\x6c\x6c\x6f");

        let mut out = BytesMut::new();
        encode_frame(&mut out, Opcode::Ping, b"Hello");
        assert_eq!(&out[..], b"\x89\x05\x48\x65\x6c\x6c\x6f");

        let payload = vec![0xAB; 256];
        let mut out = BytesMut::new();
        encode_frame(&mut out, Opcode::Binary, &payload);
        assert_eq!(&out[..4], b"\x82\x7E\x01\x00");
        assert_eq!(&out[4..], &payload[..]);
        assert_eq!(out.len(), frame_len(256));

        let payload = vec![0xCD; 65536];
        let mut out = BytesMut::new();
        encode_frame(&mut out, Opcode::Binary, &payload);
        assert_eq!(&out[..10], b"\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00");
        assert_eq!(&out[10..], &payload[..]);
        assert_eq!(out.len(), frame_len(65536));
    }

    #[test]
    fn length_encoding_boundaries() {
        for (len, header) in [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            assert_eq!(frame_len(len), header + len, "{len}");
            let mut out = BytesMut::new();
            encode_header(&mut out, Opcode::Binary, len);
            assert_eq!(out.len(), header, "{len}");
            // The header plus the payload is exactly what encode_frame writes.
            let payload = vec![7u8; len];
            out.extend_from_slice(&payload);
            let mut whole = BytesMut::new();
            encode_frame(&mut whole, Opcode::Binary, &payload);
            assert_eq!(out, whole, "{len}");
        }
    }

    #[test]
    fn server_frames_decode_once_masked() {
        // What the encoder writes is what the decoder reads, up to the mask.
        for len in [0, 1, 125, 126, 65535, 65536] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let (msgs, err) = decode_all(&masked(0x82, &payload, KEY), 1 << 20);
            assert_eq!(err, None);
            assert_eq!(msgs, vec![Incoming::Binary(Bytes::from(payload))]);
        }
    }

    #[test]
    fn close_payload_truncates_on_a_char_boundary() {
        assert_eq!(close_payload(1000, ""), b"\x03\xe8");
        assert_eq!(close_payload(1001, "bye"), b"\x03\xe9bye");
        let long = "x".repeat(200);
        assert_eq!(close_payload(1000, &long).len(), 125);
        // 'é' is two bytes: 61 of them are 122 bytes, the 62nd would end at 124.
        let accents = "é".repeat(70);
        let p = close_payload(1002, &accents);
        assert_eq!(p.len(), 2 + 122);
        assert!(std::str::from_utf8(&p[2..]).is_ok());
        // The result always decodes as a valid close frame.
        let (msgs, err) = decode_all(&masked(0x88, &p, KEY), 1024);
        assert_eq!(err, None);
        assert_eq!(msgs, vec![Incoming::Close(Some(1002), Bytes::from(p[2..].to_vec()))]);
    }

    #[test]
    fn error_reasons_fit_a_close_frame() {
        use WsError::*;
        for e in [
            Unmasked,
            ReservedBits,
            UnknownOpcode,
            ControlFrameTooLong,
            FragmentedControlFrame,
            UnexpectedContinuation,
            ExpectedContinuation,
            MessageTooLarge,
            InvalidUtf8,
            InvalidCloseReason,
            TruncatedCloseCode,
            InvalidCloseCode,
            LengthTooLong,
        ] {
            assert!(e.reason().len() <= MAX_CLOSE_REASON);
            assert_eq!(close_payload(e.close_code(), e.reason())[2..], *e.reason().as_bytes());
            assert!(matches!(e.close_code(), 1002 | 1007 | 1009));
        }
        assert_eq!(MessageTooLarge.close_code(), 1009);
        assert_eq!(InvalidUtf8.close_code(), 1007);
        assert_eq!(InvalidCloseReason.close_code(), 1007);
        assert_eq!(Unmasked.close_code(), 1002);
    }

    // Decoding (RFC 6455 section 5.7)

    #[test]
    fn decode_rfc_masked_hello() {
        let frame = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
        assert_eq!(masked(0x81, b"Hello", KEY), frame);
        assert_eq!(decode_all(frame, 1024), (vec![text("Hello")], None));
    }

    #[test]
    fn decode_rfc_fragmented_hello() {
        // The RFC's unmasked fragments "\x01\x03Hel" and "\x80\x02lo", masked as a client must.
        let mut input = masked(0x01, b"Hel", KEY);
        input.extend(masked(0x80, b"lo", [1, 2, 3, 4]));
        assert_eq!(decode_all(&input, 1024), (vec![text("Hello")], None));
    }

    #[test]
    fn decode_rfc_ping_and_pong() {
        let ping = masked(0x89, b"Hello", KEY);
        assert_eq!(
            decode_all(&ping, 1024),
            (vec![Incoming::Ping(Bytes::from_static(b"Hello"))], None)
        );
        let pong = b"\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
        assert_eq!(
            decode_all(pong, 1024),
            (vec![Incoming::Pong(Bytes::from_static(b"Hello"))], None)
        );
    }

    #[test]
    fn decode_64_bit_length() {
        let payload = vec![0x5A; 65536];
        let frame = masked(0x82, &payload, KEY);
        assert_eq!(&frame[..10], b"\x82\xFF\x00\x00\x00\x00\x00\x01\x00\x00");
        assert_eq!(
            decode_all(&frame, 65536),
            (vec![Incoming::Binary(Bytes::from(payload))], None)
        );
    }

    #[test]
    fn control_frames_between_fragments() {
        let mut input = masked(0x02, b"ab", KEY);
        input.extend(masked(0x89, b"p1", KEY));
        input.extend(masked(0x00, b"cd", KEY));
        input.extend(masked(0x8A, b"", KEY));
        input.extend(masked(0x80, b"ef", KEY));
        input.extend(masked(0x88, b"\x03\xe8done", KEY));
        assert_eq!(
            decode_all(&input, 1024),
            (
                vec![
                    Incoming::Ping(Bytes::from_static(b"p1")),
                    Incoming::Pong(Bytes::new()),
                    Incoming::Binary(Bytes::from_static(b"abcdef")),
                    Incoming::Close(Some(1000), Bytes::from_static(b"done")),
                ],
                None
            )
        );
    }

    #[test]
    fn close_frames() {
        let cases: [(&[u8], Incoming); 4] = [
            (b"", Incoming::Close(None, Bytes::new())),
            (b"\x03\xe8", Incoming::Close(Some(1000), Bytes::new())),
            (b"\x0b\xb8app", Incoming::Close(Some(3000), Bytes::from_static(b"app"))),
            (
                b"\x13\x87\xc3\xa9",
                Incoming::Close(Some(4999), Bytes::from_static("é".as_bytes())),
            ),
        ];
        for (payload, expected) in cases {
            assert_eq!(decode_all(&masked(0x88, payload, KEY), 1024), (vec![expected], None));
        }
        for code in [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999] {
            let p = close_payload(code, "");
            assert_eq!(decode_all(&masked(0x88, &p, KEY), 1024).1, None, "{code}");
        }
    }

    #[test]
    fn text_split_inside_a_character() {
        // "é" is C3 A9; each fragment alone is invalid, the message is fine.
        let mut input = masked(0x01, b"\xc3", KEY);
        input.extend(masked(0x80, b"\xa9", KEY));
        assert_eq!(decode_all(&input, 1024), (vec![text("é")], None));
    }

    #[test]
    fn empty_messages() {
        let mut input = masked(0x81, b"", KEY);
        input.extend(masked(0x02, b"", KEY));
        input.extend(masked(0x00, b"", KEY));
        input.extend(masked(0x80, b"", KEY));
        assert_eq!(
            decode_all(&input, 0),
            (vec![text(""), Incoming::Binary(Bytes::new())], None)
        );
    }

    #[test]
    fn unfragmented_payloads_are_not_copied() {
        let mut buf = BytesMut::from(&masked(0x82, b"payload", KEY)[..]);
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let Ok(Some(Incoming::Binary(b))) = Decoder::new(64).next(&mut buf) else {
            panic!("expected a binary message");
        };
        assert_eq!(&b[..], b"payload");
        assert!(range.contains(&(b.as_ptr() as usize)));
    }

    #[test]
    fn byte_at_a_time_matches_whole() {
        let mut input = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58".to_vec();
        input.extend(masked(0x01, b"Hel", KEY));
        input.extend(masked(0x89, b"Hello", KEY));
        input.extend(masked(0x80, b"lo", KEY));
        input.extend(masked(0x82, &[9; 300], KEY));
        input.extend(masked(0x82, &[8; 70000], KEY));
        input.extend(masked(0x88, b"\x03\xe8", KEY));
        let whole = decode_all(&input, 1 << 20);
        assert_eq!(whole.1, None);
        assert_eq!(whole.0.len(), 6);
        assert_eq!(decode_bytewise(&input, 1 << 20), whole);
        // Including a stream that ends in an error.
        input.extend(masked(0x83, b"x", KEY));
        let whole = decode_all(&input, 1 << 20);
        assert_eq!(whole.1, Some(WsError::UnknownOpcode));
        assert_eq!(decode_bytewise(&input, 1 << 20), whole);
    }

    #[test]
    fn bytes_wanted() {
        let frame = masked(0x82, &[1; 1000], KEY);
        let mut decoder = Decoder::new(4096);
        let mut buf = BytesMut::new();
        // Unknown until the 8-byte header (16-bit length) is complete.
        for i in 0..7 {
            buf.extend_from_slice(&frame[i..i + 1]);
            assert_eq!(decoder.next(&mut buf), Ok(None));
            assert_eq!(decoder.bytes_wanted(&buf), 0, "{i}");
        }
        buf.extend_from_slice(&frame[7..8]);
        assert_eq!(decoder.bytes_wanted(&buf), 1000);
        buf.extend_from_slice(&frame[8..100]);
        assert_eq!(decoder.next(&mut buf), Ok(None));
        assert_eq!(decoder.bytes_wanted(&buf), frame.len() - 100);
        buf.extend_from_slice(&frame[100..]);
        assert!(matches!(decoder.next(&mut buf), Ok(Some(Incoming::Binary(_)))));
        assert_eq!(decoder.bytes_wanted(&buf), 0);
        // An invalid header wants nothing.
        let bad = BytesMut::from(&b"\x82\x05"[..]);
        assert_eq!(decoder.bytes_wanted(&bad), 0);
    }

    // Errors

    #[test]
    fn unmasked_client_frame() {
        assert_eq!(err_of(b"\x81\x05Hello"), WsError::Unmasked);
        // Known from the second byte.
        assert_eq!(err_of(b"\x81\x05"), WsError::Unmasked);
    }

    #[test]
    fn reserved_bits() {
        for rsv in [0x40, 0x20, 0x10] {
            assert_eq!(err_of(&masked(0x81 | rsv, b"x", KEY)), WsError::ReservedBits);
            assert_eq!(err_of(&[0x81 | rsv]), WsError::ReservedBits);
        }
    }

    #[test]
    fn unknown_opcodes() {
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(err_of(&masked(0x80 | op, b"", KEY)), WsError::UnknownOpcode, "{op}");
        }
    }

    #[test]
    fn control_frame_rules() {
        for op in [0x88, 0x89, 0x8A] {
            assert_eq!(err_of(&masked(op, &[b'a'; 126], KEY)), WsError::ControlFrameTooLong);
            // 127 is the 64-bit length marker: still too long, known from the second byte.
            assert_eq!(err_of(&[op, 0xFF]), WsError::ControlFrameTooLong);
            assert_eq!(err_of(&masked(op & 0x0F, b"", KEY)), WsError::FragmentedControlFrame);
        }
        // 125 bytes are fine.
        let ping = masked(0x89, &[b'a'; 125], KEY);
        assert_eq!(decode_all(&ping, 0).1, None);
    }

    #[test]
    fn continuation_rules() {
        assert_eq!(err_of(&masked(0x80, b"x", KEY)), WsError::UnexpectedContinuation);
        assert_eq!(err_of(&masked(0x00, b"x", KEY)), WsError::UnexpectedContinuation);
        for op in [0x01, 0x02, 0x81, 0x82] {
            let mut input = masked(0x01, b"a", KEY);
            input.extend(masked(op, b"b", KEY));
            assert_eq!(err_of(&input), WsError::ExpectedContinuation, "{op}");
        }
        // A finished message allows a new one.
        let mut input = masked(0x01, b"a", KEY);
        input.extend(masked(0x80, b"b", KEY));
        input.extend(masked(0x80, b"c", KEY));
        assert_eq!(
            decode_all(&input, 64),
            (vec![text("ab")], Some(WsError::UnexpectedContinuation))
        );
    }

    #[test]
    fn message_too_large() {
        // A single frame one byte over, rejected from its header alone.
        let frame = masked(0x82, &[0; 101], KEY);
        assert_eq!(decode_all(&frame[..2], 100), (vec![], Some(WsError::MessageTooLarge)));
        assert_eq!(decode_all(&masked(0x82, &[0; 100], KEY), 100).1, None);
        // Fragments adding up to one byte over.
        let mut input = masked(0x02, &[0; 60], KEY);
        input.extend(masked(0x00, &[0; 40], KEY));
        let ok = decode_all(&input, 100);
        assert_eq!(ok, (vec![], None));
        input.extend(&masked(0x80, &[0; 1], KEY)[..2]);
        assert_eq!(decode_all(&input, 100), (vec![], Some(WsError::MessageTooLarge)));
    }

    #[test]
    fn header_claiming_2_pow_62_is_rejected_at_once() {
        let header = b"\x82\xFF\x40\x00\x00\x00\x00\x00\x00\x00";
        let mut decoder = Decoder::new(1 << 20);
        let mut buf = BytesMut::from(&header[..]);
        let cap = buf.capacity();
        assert_eq!(decoder.next(&mut buf), Err(WsError::MessageTooLarge));
        assert_eq!(buf.capacity(), cap);
        assert!(decoder.fragmented.is_none());
        // The same in the middle of a fragmented message.
        let mut input = masked(0x02, b"abc", KEY);
        input.extend(b"\x00\xFF\x40\x00\x00\x00\x00\x00\x00\x00");
        assert_eq!(decode_all(&input, 1 << 20), (vec![], Some(WsError::MessageTooLarge)));
    }

    #[test]
    fn length_with_top_bit_set() {
        assert_eq!(
            err_of(b"\x82\xFF\x80\x00\x00\x00\x00\x00\x00\x00"),
            WsError::LengthTooLong
        );
        assert_eq!(
            err_of(b"\x82\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF"),
            WsError::LengthTooLong
        );
    }

    #[test]
    fn invalid_utf8() {
        assert_eq!(err_of(&masked(0x81, b"\xff", KEY)), WsError::InvalidUtf8);
        // Checked when the message is complete: a dangling lead byte at the end.
        let mut input = masked(0x01, b"ok", KEY);
        input.extend(masked(0x80, b"\xc3", KEY));
        assert_eq!(err_of(&input), WsError::InvalidUtf8);
        // Binary messages may hold anything.
        assert_eq!(decode_all(&masked(0x82, b"\xff", KEY), 8).1, None);
    }

    #[test]
    fn bad_close_frames() {
        assert_eq!(err_of(&masked(0x88, b"\x03", KEY)), WsError::TruncatedCloseCode);
        for code in [0u16, 999, 1004, 1005, 1006, 1012, 1015, 1016, 2000, 2999, 5000, 65535] {
            let p = close_payload(code, "");
            assert_eq!(err_of(&masked(0x88, &p, KEY)), WsError::InvalidCloseCode, "{code}");
        }
        assert_eq!(err_of(&masked(0x88, b"\x03\xe8\xff", KEY)), WsError::InvalidCloseReason);
    }

    #[test]
    fn error_drops_the_partial_message() {
        let mut decoder = Decoder::new(64);
        let mut buf = BytesMut::from(&masked(0x01, b"abc", KEY)[..]);
        buf.extend(masked(0x83, b"", KEY));
        assert_eq!(decoder.next(&mut buf), Err(WsError::UnknownOpcode));
        assert!(decoder.fragmented.is_none());
    }

    #[test]
    fn fragment_buffer_never_exceeds_the_limit() {
        // Many small fragments: doubling growth is capped at max_message.
        let mut input = masked(0x02, &[1; 10], KEY);
        for _ in 0..98 {
            input.extend(masked(0x00, &[2; 10], KEY));
        }
        input.extend(masked(0x80, &[3; 10], KEY));
        let (msgs, err) = decode_bytewise(&input, 1000);
        assert_eq!(err, None);
        assert_eq!(msgs.len(), 1);
    }

    // Properties

    /// A data message, how it is split into frames, and pings to interleave.
    #[derive(Debug, Clone)]
    struct GenMessage {
        text: bool,
        payload: Vec<u8>,
        /// Cut points within the payload (sorted, deduplicated when used).
        cuts: Vec<usize>,
        /// Pings sent after the n-th fragment (taken modulo the fragment count).
        pings: Vec<(usize, Vec<u8>)>,
        key: [u8; 4],
    }

    fn gen_message() -> impl Strategy<Value = GenMessage> {
        let payload = prop_oneof![
            ".{0,80}".prop_map(|s: String| (true, s.into_bytes())),
            proptest::collection::vec(any::<u8>(), 0..400).prop_map(|b| (false, b)),
        ];
        (
            payload,
            proptest::collection::vec(any::<usize>(), 0..5),
            proptest::collection::vec((any::<usize>(), proptest::collection::vec(any::<u8>(), 0..=125)), 0..3),
            any::<[u8; 4]>(),
        )
            .prop_map(|((text, payload), cuts, pings, key)| GenMessage {
                text,
                payload,
                cuts,
                pings,
                key,
            })
    }

    /// The wire bytes for `msgs` and what the decoder should return for them.
    fn encode_messages(msgs: &[GenMessage]) -> (Vec<u8>, Vec<Incoming>) {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for m in msgs {
            let mut cuts: Vec<usize> = m.cuts.iter().map(|c| c % (m.payload.len() + 1)).collect();
            cuts.push(m.payload.len());
            cuts.sort_unstable();
            cuts.dedup();
            let mut from = 0;
            for (i, &to) in cuts.iter().enumerate() {
                let last = i + 1 == cuts.len();
                let opcode = match (i, m.text) {
                    (0, true) => 0x1,
                    (0, false) => 0x2,
                    _ => 0x0,
                };
                let fin = if last { 0x80 } else { 0 };
                wire.extend(masked(fin | opcode, &m.payload[from..to], m.key));
                from = to;
                if !last {
                    for (after, ping) in &m.pings {
                        if after % cuts.len() == i {
                            wire.extend(masked(0x89, ping, m.key));
                            expected.push(Incoming::Ping(Bytes::from(ping.clone())));
                        }
                    }
                }
            }
            let payload = Bytes::from(m.payload.clone());
            expected.push(if m.text {
                Incoming::Text(payload)
            } else {
                Incoming::Binary(payload)
            });
        }
        (wire, expected)
    }

    fn cut_points(len: usize, raw: &[usize]) -> Vec<usize> {
        let mut c: Vec<usize> = raw.iter().map(|x| x % (len + 1)).collect();
        c.push(len);
        c.sort_unstable();
        c.dedup();
        c
    }

    /// Mostly random bytes, with a bias towards the bytes that make plausible headers.
    fn frameish_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                3 => any::<u8>(),
                1 => proptest::sample::select(&[0x00u8, 0x01, 0x02, 0x80, 0x81, 0x82, 0x88, 0x89, 0x8A, 0xFE, 0xFF, 0x85][..]),
            ],
            0..300,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn masked_round_trip_with_any_fragmentation(
            msgs in proptest::collection::vec(gen_message(), 0..5),
            raw_cuts in proptest::collection::vec(any::<usize>(), 0..12),
        ) {
            let (wire, expected) = encode_messages(&msgs);
            let whole = decode_all(&wire, 400);
            prop_assert_eq!(&whole, &(expected, None));
            let split = decode_chunked(&wire, &cut_points(wire.len(), &raw_cuts), 400);
            prop_assert_eq!(&split, &whole);
        }

        #[test]
        fn random_bytes_never_panic_and_chunking_never_matters(
            input in frameish_bytes(),
            raw_cuts in proptest::collection::vec(any::<usize>(), 0..8),
            max in 0usize..200,
        ) {
            let whole = decode_all(&input, max);
            let split = decode_chunked(&input, &cut_points(input.len(), &raw_cuts), max);
            prop_assert_eq!(&split, &whole);
            let mut decoder = Decoder::new(max);
            let mut buf = BytesMut::from(&input[..]);
            let _ = decoder.bytes_wanted(&buf);
            while let Ok(Some(_)) = decoder.next(&mut buf) {
                let _ = decoder.bytes_wanted(&buf);
            }
        }
    }
}
