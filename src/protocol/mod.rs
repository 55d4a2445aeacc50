//! The wire protocol: parsing requests and encoding replies. Nothing here does I/O.
//!
//! * [`request`]: RESP requests (and inline commands) from a read buffer.
//! * [`reply`]: RESP2/RESP3 replies; [`value`]: reading them back.
//! * [`wire`]: the formats a delivered message can take; [`web`]: its SSE, WebSocket
//!   and webhook-record forms; [`websocket`]: RFC 6455 frames.

pub mod reply;
pub mod request;
pub mod value;
pub mod web;
pub mod websocket;
pub mod wire;
