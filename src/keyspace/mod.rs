//! The keyspace. fanout keeps no keys yet (streams come next); what exists already is
//! the part transactions need: [`watch::WatchTable`], who WATCHes which key, so that the
//! write commands to come abort the EXEC of every client watching what they change.

pub mod watch;
