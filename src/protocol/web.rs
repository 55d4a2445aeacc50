//! The browser-facing formats: Server-Sent Events and WebSocket messages carrying JSON,
//! and the records the webhook senders read. Pure encoding, no I/O.
//!
//! Every message is one JSON object, the same for both transports:
//! `{"channel": ..., "pattern": ... (pmessage only), "data": ...}`; WebSocket adds
//! `"type"` (SSE has it in its `event:` line). JSON strings hold Unicode text, so a
//! channel, pattern or payload that is not UTF-8 is sent in base64 under
//! `"channel_b64"`, `"pattern_b64"` or `"data_b64"` instead: a browser never sees
//! replacement characters where bytes were.
//!
//! The SSE and WebSocket forms of a message are encoded once per publish and shared by
//! every subscriber reading them, as the RESP forms are.

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};

use super::value::Value;
use super::websocket::{self, Opcode};
use super::wire::Wire;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Appends `s` as a JSON string (quotes included). `s` must be UTF-8.
pub fn json_str(out: &mut BytesMut, s: &str) {
    out.put_u8(b'"');
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.put_slice(&b[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.put_slice(b"\\u00");
            out.put_u8(HEX[(c >> 4) as usize]);
            out.put_u8(HEX[(c & 15) as usize]);
        } else {
            out.put_slice(esc);
        }
        start = i + 1;
    }
    out.put_slice(&b[start..]);
    out.put_u8(b'"');
}

/// Appends `"name":"text"` (UTF-8) or `"name_b64":"base64"` (anything else).
pub fn json_field(out: &mut BytesMut, name: &str, value: &[u8]) {
    out.put_u8(b'"');
    out.put_slice(name.as_bytes());
    match std::str::from_utf8(value) {
        Ok(s) => {
            out.put_slice(b"\":");
            json_str(out, s);
        }
        Err(_) => {
            out.put_slice(b"_b64\":\"");
            let start = out.len();
            out.resize(start + base64::encoded_len(value.len(), true).unwrap_or(0), 0);
            let n = B64.encode_slice(value, &mut out[start..]).unwrap_or(0);
            out.truncate(start + n);
            out.put_u8(b'"');
        }
    }
}

/// The JSON object of a message, with `"type"` first when `typed`.
fn message_json(out: &mut BytesMut, typed: bool, kind: &[u8], pattern: Option<&[u8]>, channel: &[u8], payload: &[u8]) {
    out.put_u8(b'{');
    if typed {
        json_field(out, "type", kind);
        out.put_u8(b',');
    }
    json_field(out, "channel", channel);
    if let Some(p) = pattern {
        out.put_u8(b',');
        json_field(out, "pattern", p);
    }
    out.put_u8(b',');
    json_field(out, "data", payload);
    out.put_u8(b'}');
}

/// `event: <kind>\ndata: {json}\n\n`. JSON never holds a raw newline, so one `data:`
/// line always suffices.
pub fn sse_message(out: &mut BytesMut, kind: &[u8], pattern: Option<&[u8]>, channel: &[u8], payload: &[u8]) {
    out.put_slice(b"event: ");
    out.put_slice(kind);
    out.put_slice(b"\ndata: ");
    message_json(out, false, kind, pattern, channel, payload);
    out.put_slice(b"\n\n");
}

/// An SSE event with a JSON body written by `body`, and an `id:` when given.
pub fn sse_event(out: &mut BytesMut, id: Option<&[u8]>, event: &str, body: impl FnOnce(&mut BytesMut)) {
    if let Some(id) = id {
        out.put_slice(b"id: ");
        out.put_slice(id);
        out.put_u8(b'\n');
    }
    out.put_slice(b"event: ");
    out.put_slice(event.as_bytes());
    out.put_slice(b"\ndata: ");
    body(out);
    out.put_slice(b"\n\n");
}

/// A text frame holding the typed JSON object; a payload that is not UTF-8 travels raw
/// in a binary frame instead: the typed object without `"data"`, a newline, then the
/// payload's bytes (no base64 growth for binary traffic).
pub fn ws_message(out: &mut BytesMut, kind: &[u8], pattern: Option<&[u8]>, channel: &[u8], payload: &[u8]) {
    if std::str::from_utf8(payload).is_ok() {
        return ws_json(out, |b| message_json(b, true, kind, pattern, channel, payload));
    }
    let mut head = BytesMut::with_capacity(64 + channel.len());
    head.put_u8(b'{');
    json_field(&mut head, "type", kind);
    head.put_u8(b',');
    json_field(&mut head, "channel", channel);
    if let Some(p) = pattern {
        head.put_u8(b',');
        json_field(&mut head, "pattern", p);
    }
    head.put_slice(b"}\n");
    websocket::encode_header(out, Opcode::Binary, head.len() + payload.len());
    out.put_slice(&head);
    out.put_slice(payload);
}

/// A WebSocket text frame with a JSON body written by `body`.
pub fn ws_json(out: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let mut json = BytesMut::with_capacity(128);
    body(&mut json);
    websocket::encode_frame(out, Opcode::Text, &json);
}

fn put_part(out: &mut BytesMut, part: &[u8]) {
    out.put_u32(part.len() as u32);
    out.put_slice(part);
}

/// A webhook record: kind byte (see [`Record::kind`]), then pattern (length + 1, 0 for
/// none), channel and payload, each behind a big-endian `u32` length.
pub fn record(out: &mut BytesMut, kind: &[u8], pattern: Option<&[u8]>, channel: &[u8], payload: &[u8]) {
    out.put_u8(match kind {
        b"pmessage" => 1,
        b"smessage" => 2,
        _ => 0,
    });
    match pattern {
        Some(p) => {
            out.put_u32(p.len() as u32 + 1);
            out.put_slice(p);
        }
        None => out.put_u32(0),
    }
    put_part(out, channel);
    put_part(out, payload);
}

/// One message read back from [`record`]s: slices of the shared frame, not copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `message`, `pmessage` or `smessage`.
    pub kind: &'static str,
    pub pattern: Option<Bytes>,
    pub channel: Bytes,
    pub payload: Bytes,
}

/// Every record in `frame` (a frame may hold several: a publisher's run).
pub fn records(frame: &Bytes) -> Vec<Record> {
    fn u32_at(b: &Bytes, at: usize) -> Option<usize> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
    }
    fn part(b: &Bytes, at: &mut usize, len: usize) -> Option<Bytes> {
        let end = at.checked_add(len).filter(|&e| e <= b.len())?;
        let s = b.slice(*at..end);
        *at = end;
        Some(s)
    }
    let mut out = Vec::new();
    let mut at = 0;
    let mut next = || -> Option<Record> {
        let kind = match frame.get(at)? {
            1 => "pmessage",
            2 => "smessage",
            _ => "message",
        };
        at += 1;
        let plen = u32_at(frame, at)?;
        at += 4;
        let pattern = if plen == 0 {
            None
        } else {
            Some(part(frame, &mut at, plen - 1)?)
        };
        let clen = u32_at(frame, at)?;
        at += 4;
        let channel = part(frame, &mut at, clen)?;
        let dlen = u32_at(frame, at)?;
        at += 4;
        let payload = part(frame, &mut at, dlen)?;
        Some(Record {
            kind,
            pattern,
            channel,
            payload,
        })
    };
    while let Some(r) = next() {
        out.push(r);
    }
    out
}

/// A RESP value as JSON (strings that are not UTF-8 in base64 as `{"b64": ...}`).
pub fn value_json(out: &mut BytesMut, v: &Value) {
    match v {
        Value::Simple(b) | Value::Bulk(b) => match std::str::from_utf8(b) {
            Ok(s) => json_str(out, s),
            Err(_) => {
                out.put_u8(b'{');
                json_field(out, "", b);
                out.put_u8(b'}');
            }
        },
        Value::Error(b) => {
            out.put_u8(b'{');
            json_field(out, "error", b);
            out.put_u8(b'}');
        }
        Value::Int(n) => out.put_slice(n.to_string().as_bytes()),
        Value::Number(b) => out.put_slice(b),
        Value::Null => out.put_slice(b"null"),
        Value::Bool(b) => out.put_slice(if *b { b"true" } else { b"false" }),
        Value::Array(items) | Value::Push(items) => {
            out.put_u8(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.put_u8(b',');
                }
                value_json(out, item);
            }
            out.put_u8(b']');
        }
        Value::Map(pairs) => {
            out.put_u8(b'[');
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.put_u8(b',');
                }
                out.put_u8(b'[');
                value_json(out, k);
                out.put_u8(b',');
                value_json(out, v);
                out.put_u8(b']');
            }
            out.put_u8(b']');
        }
    }
}

/// A JSON object whose fields `body` writes (a trailing comma is dropped).
pub fn object(out: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    out.put_u8(b'{');
    body(out);
    if out.last() == Some(&b',') {
        out.truncate(out.len() - 1);
    }
    out.put_u8(b'}');
}

/// Writes `body` as one event of `wire` (SSE `event: <kind>` or a typed WebSocket JSON
/// object): `body` writes the object's fields after `{"type":...,` (WebSocket) or `{`.
pub fn event(out: &mut BytesMut, wire: Wire, kind: &str, body: impl FnOnce(&mut BytesMut)) {
    match wire {
        Wire::WebSocket => ws_json(out, |b| {
            object(b, |b| {
                json_field(b, "type", kind.as_bytes());
                b.put_u8(b',');
                body(b);
            })
        }),
        _ => sse_event(out, None, kind, |b| object(b, body)),
    }
}

/// The `dropped` event a browser gets where messages were dropped for it under a drop
/// policy: `{"dropped": <since the last notice>, "total": <since it connected>}`.
pub fn dropped_notice(wire: Wire, dropped: u64, total: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(64);
    event(&mut out, wire, "dropped", |b| {
        b.put_slice(format!("\"dropped\":{dropped},\"total\":{total}").as_bytes())
    });
    out.freeze()
}

/// Turns a web session's RESP3 output into `wire` events: pushed messages as messages,
/// subscribe confirmations as `subscribe` (etc.) events with the count, errors as
/// `error` events with Redis's text, any other reply as a `reply` event. `op` names the
/// request the replies answer (WebSocket), if known.
pub fn translate(out: &mut BytesMut, wire: Wire, resp3: &[u8], op: Option<&str>) {
    for v in super::value::parse_all(resp3) {
        match &v {
            Value::Push(items) => {
                let kind = items.first().and_then(Value::bytes).unwrap_or_default();
                let arg = |i: usize| items.get(i).and_then(Value::bytes);
                match (kind, items.len()) {
                    (b"message" | b"smessage", 3) => super::wire::encode_message(
                        out,
                        wire,
                        kind,
                        None,
                        arg(1).unwrap_or_default(),
                        arg(2).unwrap_or_default(),
                    ),
                    (b"pmessage", 4) => super::wire::encode_message(
                        out,
                        wire,
                        kind,
                        arg(1),
                        arg(2).unwrap_or_default(),
                        arg(3).unwrap_or_default(),
                    ),
                    _ => {
                        let name = match kind {
                            b"psubscribe" | b"punsubscribe" => "pattern",
                            _ => "channel",
                        };
                        let kind = std::str::from_utf8(kind).unwrap_or("push");
                        event(out, wire, kind, |b| {
                            match items.get(1) {
                                Some(Value::Null) | None => {
                                    b.put_slice(format!("\"{name}\":null").as_bytes());
                                }
                                Some(x) => json_field(b, name, x.bytes().unwrap_or_default()),
                            }
                            if let Some(Value::Int(n)) = items.get(2) {
                                b.put_slice(format!(",\"count\":{n}").as_bytes());
                            }
                        });
                    }
                }
            }
            Value::Error(text) => event(out, wire, "error", |b| {
                if let Some(op) = op {
                    json_field(b, "op", op.as_bytes());
                    b.put_u8(b',');
                }
                json_field(b, "error", text);
            }),
            other => event(out, wire, "reply", |b| {
                if let Some(op) = op {
                    json_field(b, "op", op.as_bytes());
                    b.put_u8(b',');
                }
                b.put_slice(b"\"result\":");
                value_json(b, other);
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: &BytesMut) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    #[test]
    fn sse_messages_with_text_and_binary() {
        let mut b = BytesMut::new();
        sse_message(&mut b, b"message", None, b"news", b"hi \"there\"\n");
        assert_eq!(
            s(&b),
            "event: message\ndata: {\"channel\":\"news\",\"data\":\"hi \\\"there\\\"\\n\"}\n\n"
        );
        b.clear();
        sse_message(&mut b, b"pmessage", Some(b"n*"), b"n\xff", b"\x00\x01");
        assert_eq!(
            s(&b),
            "event: pmessage\ndata: {\"channel_b64\":\"bv8=\",\"pattern\":\"n*\",\"data\":\"\\u0000\\u0001\"}\n\n"
        );
    }

    #[test]
    fn records_round_trip_in_one_frame() {
        let mut b = BytesMut::new();
        record(&mut b, b"pmessage", Some(b"a*"), b"ab", b"x");
        record(&mut b, b"message", None, b"", b"\xffpayload");
        let frame = b.freeze();
        let r = records(&frame);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].kind, r[0].pattern.as_deref()), ("pmessage", Some(&b"a*"[..])));
        assert_eq!((&r[1].channel[..], &r[1].payload[..]), (&b""[..], &b"\xffpayload"[..]));
        // A cut frame yields the whole records before the cut.
        assert_eq!(records(&frame.slice(..frame.len() - 1)).len(), 1);
    }

    #[test]
    fn confirmations_errors_and_replies_translate() {
        let mut b = BytesMut::new();
        translate(
            &mut b,
            Wire::Sse,
            b">3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:1\r\n-NOPERM no\r\n",
            None,
        );
        assert_eq!(
            s(&b),
            "event: psubscribe\ndata: {\"pattern\":\"n*\",\"count\":1}\n\nevent: error\ndata: {\"error\":\"NOPERM no\"}\n\n"
        );
    }
}
