//! Placeholder until the stream commands land.
use crate::keyspace::Keyspace;
pub(super) fn serve_key(_ks: &mut Keyspace, _db: usize, _key: &[u8]) {}
