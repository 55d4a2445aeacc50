//! The wire protocol: parsing requests and encoding replies. Nothing here does I/O.

pub mod reply;
pub mod request;
