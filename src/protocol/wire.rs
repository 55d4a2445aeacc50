//! The formats a delivered pub/sub message can take on its way out.
//!
//! A message is encoded once per format in use and the same `Bytes` is queued for every
//! subscriber that reads that format (see `pubsub::Registry::publish`): RESP2 and RESP3
//! for Redis clients, a Server-Sent Event or a WebSocket frame for browsers (see
//! [`super::web`]), and a length-framed record for the webhook senders, which read
//! channel and payload back without parsing RESP.

use bytes::{Bytes, BytesMut};

use super::reply::Proto;
use super::web;

/// How a connection's outbox receives messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    Resp2 = 0,
    Resp3 = 1,
    /// `event: message\ndata: {json}\n\n` (the `/v1/sse` endpoint).
    Sse = 2,
    /// One WebSocket frame per message (the `/v1/ws` endpoint).
    WebSocket = 3,
    /// Length-framed kind, pattern, channel, payload (webhooks).
    Record = 4,
}

impl Wire {
    /// How many formats there are: the size of per-format caches.
    pub const COUNT: usize = 5;

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(i: usize) -> Wire {
        match i {
            1 => Wire::Resp3,
            2 => Wire::Sse,
            3 => Wire::WebSocket,
            4 => Wire::Record,
            _ => Wire::Resp2,
        }
    }

    pub fn of(proto: Proto) -> Wire {
        match proto {
            Proto::Resp2 => Wire::Resp2,
            Proto::Resp3 => Wire::Resp3,
        }
    }

    /// A connection reading RESP: its format follows HELLO. The others are fixed when
    /// the connection is made.
    pub fn is_resp(self) -> bool {
        matches!(self, Wire::Resp2 | Wire::Resp3)
    }
}

/// An upper bound on a message's encoded size in any format, for sizing buffers.
pub fn message_len(kind: &[u8], pattern: Option<&[u8]>, channel: &[u8], payload: &[u8]) -> usize {
    let raw = kind.len() + channel.len() + payload.len() + pattern.map_or(0, |p| p.len());
    // JSON escapes at most 6 bytes per byte only for control characters; base64 is 4/3.
    // Sized for the common case; the buffer grows for the rest.
    64 + 3 * 16 + raw + raw / 3
}

/// Appends one pub/sub message (`message`, `pmessage` or `smessage`) in `wire`'s format.
pub fn encode_message(
    out: &mut BytesMut,
    wire: Wire,
    kind: &[u8],
    pattern: Option<&[u8]>,
    channel: &[u8],
    payload: &[u8],
) {
    match wire {
        Wire::Resp2 => super::reply::encode_message(out, Proto::Resp2, kind, pattern, channel, payload),
        Wire::Resp3 => super::reply::encode_message(out, Proto::Resp3, kind, pattern, channel, payload),
        Wire::Sse => web::sse_message(out, kind, pattern, channel, payload),
        Wire::WebSocket => web::ws_message(out, kind, pattern, channel, payload),
        Wire::Record => web::record(out, kind, pattern, channel, payload),
    }
}

/// One message as a frame of its own, sized to be a single allocation in the common case.
pub fn message_frame(wire: Wire, kind: &[u8], pattern: Option<&[u8]>, channel: &[u8], payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(message_len(kind, pattern, channel, payload));
    encode_message(&mut out, wire, kind, pattern, channel, payload);
    out.freeze()
}
