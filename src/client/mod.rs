//! One connected client as the rest of the server sees it.
//!
//! * [`Outbox`]: the connection's single ordered, byte-counted output path, with the
//!   output-buffer limits and overflow policies.
//! * [`ClientTable`]: who is connected, for CLIENT LIST/KILL, INFO and the cron.
//! * [`monitors`]: the MONITOR clients and their line format.
//! * [`pause`]: CLIENT PAUSE.

pub mod monitors;
pub mod outbox;
pub mod pause;
pub mod table;
pub mod wake_relay;
pub mod writer;

/// The `lib-name` CLIENT LIST shows for the HTTP listener's clients (SSE, WebSocket,
/// HTTP requests); their client name says which.
pub const WEB_LIB_NAME: &[u8] = b"fanout-http";

pub use outbox::Outbox;
pub use table::{ClientHandle, ClientTable};
