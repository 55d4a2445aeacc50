//! Generic key commands: DEL, EXISTS, TYPE, SCAN, RENAME, COPY, the expiry commands, OBJECT.
//!
//! The command table has their rows (`spec::keyspace`); the handlers are not here yet, so
//! each answers as an unknown command would.

use bytes::Bytes;

use super::errors::Error;
use super::{Flow, Session};
use crate::spec::Spec;

impl Session {
    pub(super) fn keys(&mut self, _spec: &'static Spec, args: &[Bytes]) -> Flow {
        self.fail(Error::UnknownCommand {
            name: args[0].clone(),
            args: args[1..].to_vec(),
        });
        Flow::Continue
    }
}
