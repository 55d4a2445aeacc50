//! fanout: an in-memory publish/subscribe broker that speaks the Redis protocol.
//!
//! One PUBLISH, end to end:
//!
//! ```text
//! socket -> server::conn (reader task) -> protocol::request (parse, no I/O)
//!        -> commands::Session::execute (checks in Redis's order, then the command)
//!        -> pubsub::Registry::publish: exact subscribers, then matching patterns;
//!           one frame encoded per protocol, the same Bytes queued in every
//!           subscriber's client::Outbox (never copied per subscriber, never awaited)
//!        -> each subscriber's writer task: everything queued, few syscalls -> socket
//! ```
//!
//! Modules, from the top down (each uses only those below it; CI checks for cycles):
//!
//! * [`server`]: the listener, the connection tasks, periodic checks and shutdown.
//! * [`web`]: the HTTP listener: Server-Sent Events, WebSocket, HTTP publish, the
//!   dashboard and `/metrics`, each request a client like a RESP connection.
//! * [`commands`]: `Session`, dispatch in Redis's order, one file per command family.
//! * [`metrics`]: Prometheus metrics read from the counters at scrape time.
//! * [`broker`]: `Broker`, what the connections share.
//! * [`webhook`]: WEBHOOK's delivery engine: a subscriber outbox per webhook, drained
//!   by a task that POSTs each message, retries, and dead-letters.
//! * [`cluster`]: Redis Cluster for clients from a static topology file (slots, MOVED),
//!   and the NATS bus that carries PUBLISH between nodes.
//! * [`pubsub`]: the subscription registry, the pattern index, publish runs.
//! * [`client`]: per-connection outboxes, the client table, MONITOR clients, CLIENT PAUSE.
//! * [`acl`]: users and their permissions.
//! * [`persistence`]: the append-only file: writer and rewrite threads, loading.
//! * [`keyspace`]: the databases of keys, expiry, clients blocked on keys, WATCH.
//! * [`stream`]: the stream data type (packed entry nodes, consumer groups, PELs). Pure data.
//! * [`config`]: directives, their defaults, file/env/argv precedence, CONFIG GET/SET.
//! * [`stats`]: counters, per-command figures, SLOWLOG, the latency monitor.
//! * [`spec`]: the command table, the one source of every command fact.
//! * [`protocol`]: the request parser and the RESP2/RESP3 reply encoder. Pure, no I/O.
//! * [`glob`]: Redis's glob matcher.

pub mod acl;
pub mod broker;
pub mod client;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod glob;
pub mod keyspace;
pub mod logging;
pub mod metrics;
pub mod persistence;
pub mod protocol;
pub mod pubsub;
pub mod server;
pub mod spec;
pub mod stats;
pub mod stream;
pub mod sync;
pub mod web;
pub mod webhook;

/// The Redis version fanout reports (HELLO, INFO). Clients read it to pick features;
/// fanout follows Redis 7.2's pub/sub behaviour, so it reports a 7.2 version.
pub const REDIS_VERSION: &str = "7.2.4";
