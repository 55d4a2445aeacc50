//! The table of connected clients, for CLIENT LIST / INFO / KILL, INFO and the periodic
//! checks (soft output limits, idle timeout).
//!
//! Each connection registers a [`ClientHandle`]: its outbox (so it can be killed and its
//! output measured from anywhere) and a small [`ClientInfo`] that the connection updates
//! as it runs commands and that others read to render CLIENT LIST.

use crate::sync::LockExt;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;

use super::outbox::Outbox;

/// What CLIENT LIST shows about a connection besides its output buffer.
pub struct ClientInfo {
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    /// Full name of the last command, `client|list` style; `NULL` before the first.
    pub last_cmd: &'static str,
    pub last_active: Instant,
    pub db: u64,
    pub sub: usize,
    pub psub: usize,
    pub ssub: usize,
    pub resp: u8,
    pub no_evict: bool,
    pub no_touch: bool,
    /// The user the connection is logged in as.
    pub user: Arc<crate::acl::User>,
    /// A MONITOR client (`O`).
    pub monitor: bool,
    /// Blocked on keys (`b` in CLIENT LIST flags).
    pub blocked: bool,
    /// Commands queued by MULTI (`x`, `multi=`); -1 outside a transaction.
    pub multi: i64,
    /// Bytes those commands hold (`multi-mem=`).
    pub multi_mem: usize,
}

pub struct ClientHandle {
    pub outbox: Arc<Outbox>,
    pub peer: String,
    pub local: String,
    pub fd: i64,
    /// Connected through the Unix socket (`U` in CLIENT LIST flags).
    pub unix: bool,
    pub created: Instant,
    pub info: Mutex<ClientInfo>,
    /// Raised when the cluster topology was reloaded: the connection checks that its
    /// shard channels are still served here (Redis pushes `sunsubscribe` otherwise).
    pub recheck: tokio::sync::Notify,
}

impl ClientHandle {
    pub fn new(
        outbox: Arc<Outbox>,
        peer: String,
        local: String,
        fd: i64,
        unix: bool,
        user: Arc<crate::acl::User>,
    ) -> ClientHandle {
        let now = Instant::now();
        ClientHandle {
            outbox,
            unix,
            peer,
            local,
            fd,
            created: now,
            info: Mutex::new(ClientInfo {
                name: None,
                lib_name: None,
                lib_ver: None,
                last_cmd: "NULL",
                last_active: now,
                db: 0,
                sub: 0,
                psub: 0,
                ssub: 0,
                resp: 2,
                no_evict: false,
                no_touch: false,
                user,
                monitor: false,
                blocked: false,
                multi: -1,
                multi_mem: 0,
            }),
            recheck: tokio::sync::Notify::new(),
        }
    }

    pub fn id(&self) -> u64 {
        self.outbox.id
    }

    /// The client name for log lines (empty when unset).
    pub fn name_lossy(&self) -> String {
        let i = self.info.locked();
        String::from_utf8_lossy(i.name.as_deref().unwrap_or_default()).into_owned()
    }

    pub fn is_pubsub(&self) -> bool {
        let i = self.info.locked();
        i.sub + i.psub + i.ssub > 0
    }

    /// One CLIENT LIST line (without the trailing newline), in Redis 7.2's field order,
    /// followed by fanout's own fields. `qbuf` is the size of the request being executed:
    /// the caller's own line shows its CLIENT LIST request, everyone else's shows 0
    /// (fanout keeps no unparsed input between reads for an idle client).
    pub fn render(&self, out: &mut Vec<u8>, qbuf: usize) {
        use std::io::Write;
        let i = self.info.locked();
        let (omem, oll) = self.outbox.usage();
        let now = Instant::now();
        let mut flags = String::new();
        if i.monitor {
            flags.push('O');
        }
        if i.sub + i.psub + i.ssub > 0 {
            flags.push('P');
        }
        if i.multi >= 0 {
            flags.push('x');
        }
        if i.blocked {
            flags.push('b');
        }
        if i.no_evict {
            flags.push('e');
        }
        if i.no_touch {
            flags.push('T');
        }
        if self.unix {
            flags.push('U');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let qbuf_free = if qbuf > 0 { 20474usize.saturating_sub(qbuf) } else { 0 };
        let _ = write!(
            out,
            "id={} addr={} laddr={} fd={} name=",
            self.id(),
            self.peer,
            self.local,
            self.fd
        );
        out.extend_from_slice(i.name.as_deref().unwrap_or_default());
        let _ = write!(
            out,
            " age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={} rbp={} obl=0 oll={} omem={} tot-mem={} events={} cmd={} user={} redir=-1 resp={} lib-name=",
            now.duration_since(self.created).as_secs(),
            now.duration_since(i.last_active).as_secs(),
            flags,
            i.db,
            i.sub,
            i.psub,
            i.ssub,
            i.multi,
            qbuf,
            qbuf_free,
            qbuf.saturating_sub(16),
            i.multi_mem,
            if qbuf > 0 { 1024 } else { 0 },
            qbuf,
            oll,
            omem,
            1024 + omem,
            if omem > 0 { "rw" } else { "r" },
            i.last_cmd,
            i.user,
            i.resp,
        );
        out.extend_from_slice(i.lib_name.as_deref().unwrap_or_default());
        out.extend_from_slice(b" lib-ver=");
        out.extend_from_slice(i.lib_ver.as_deref().unwrap_or_default());
        let _ = write!(out, " dropped={}", self.outbox.dropped.load(Relaxed));
    }
}

/// Connected clients by id. Ids grow with each connection and are never reused, so the
/// map's order is connection order, which is the order CLIENT LIST shows.
#[derive(Default)]
pub struct ClientTable {
    map: Mutex<BTreeMap<u64, Arc<ClientHandle>>>,
    /// Connections accepted and not yet finished, for `maxclients`.
    slots: std::sync::atomic::AtomicU64,
}

impl ClientTable {
    /// Takes a connection slot if fewer than `max` are taken.
    pub fn reserve_slot(&self, max: u64) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        self.slots
            .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
            .is_ok()
    }

    /// Gives back a slot taken by [`ClientTable::reserve_slot`] when its connection ends.
    pub fn release_slot(&self) {
        self.slots.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn insert(&self, c: Arc<ClientHandle>) {
        self.map.locked().insert(c.id(), c);
    }

    /// Idempotent: a killed client is removed at once (so INFO stops counting it) and
    /// again by its own connection task when it finishes.
    pub fn remove(&self, id: u64) {
        self.map.locked().remove(&id);
    }

    pub fn len(&self) -> usize {
        self.map.locked().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientHandle>> {
        self.map.locked().get(&id).cloned()
    }

    /// A snapshot of the live clients, so callers never hold the table's lock while
    /// they work. A client that has been told to close is no longer listed, even if its
    /// task has not finished yet.
    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        self.map
            .lock()
            .unwrap()
            .values()
            .filter(|c| !c.outbox.is_gone())
            .cloned()
            .collect()
    }

    /// Closes a client now and stops counting it.
    pub fn kill(&self, c: &ClientHandle) {
        c.outbox.kill();
        self.remove(c.id());
    }
}
