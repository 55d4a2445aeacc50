//! Subscriptions and delivery: who receives a message and how it is queued for them.
//!
//! * [`Registry`]: channel, shard-channel and pattern subscriptions, and PUBLISH.
//! * [`patterns::PatternIndex`]: patterns filed by literal prefix, suffix or inner gram,
//!   with a per-thread cache of each channel's matching patterns.
//! * [`run`]: a batch's repeated publishes to one channel, queued once per subscriber.

pub mod patterns;
pub mod registry;
pub mod run;

pub use registry::{Interest, Namespace, Registry};
pub use run::Batch;
