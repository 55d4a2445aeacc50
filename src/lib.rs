//! fanout: an in-memory publish/subscribe broker that speaks the Redis protocol.
//!
//! One PUBLISH, end to end:
//!
//! ```text
//! socket -> server::connection (reader task) -> protocol::request (parse, no I/O)
//!        -> commands::Session::execute (checks in Redis's order, then the command)
//!        -> broker::Registry::publish: exact subscribers, then matching patterns;
//!           one frame encoded per protocol, the same Bytes queued in every
//!           subscriber's broker::Outbox (never copied per subscriber, never awaited)
//!        -> each subscriber's writer task: everything queued, few syscalls -> socket
//! ```
//!
//! * [`acl`]: users and their permissions (ACL SETUSER and friends, AUTH as a user).
//! * [`config`]: directives, their defaults, file/env/argv precedence, CONFIG GET/SET.
//! * [`protocol`]: the request parser and the RESP2/RESP3 reply encoder. Pure, no I/O.
//! * [`broker`]: the subscription registry, the Redis glob matcher, per-connection
//!   outboxes with byte accounting and overflow policies, the client table.
//! * [`commands`]: the command table and one file per command family.
//! * [`server`]: the listener, the connection tasks, periodic checks and shutdown.
//! * [`stats`]: server-wide counters as plain atomics.
//! * [`metrics`]: Prometheus metrics read from those at scrape time (`metrics-addr`).

pub mod acl;
pub mod broker;
pub mod client;
pub mod commands;
pub mod config;
pub mod glob;
pub mod keyspace;
pub mod logging;
pub mod metrics;
pub mod protocol;
pub mod pubsub;
pub mod server;
pub mod spec;
pub mod stats;
pub mod sync;

/// The Redis version fanout reports (HELLO, INFO). Clients read it to pick features;
/// fanout follows Redis 7.2's pub/sub behaviour, so it reports a 7.2 version.
pub const REDIS_VERSION: &str = "7.2.4";
