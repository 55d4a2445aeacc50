//! Webhooks: push subscriptions that POST every message matching a pattern to a URL (as
//! SNS HTTP subscriptions and Google Pub/Sub push do).
//!
//! A webhook is a subscriber like any connection: it owns an [`Outbox`] in the
//! [`Wire::Record`] format, subscribed to its pattern in the registry, so a publish
//! queues the same shared record frame for it as for every other subscriber (encoded once,
//! never awaited), under a byte limit of its own (MAXQUEUE) and its own overflow policy.
//! A tokio task per webhook drains that outbox: it takes frames one by one, reads the
//! records back ([`crate::protocol::web::records`]), POSTs each message, and only then
//! marks its frame written, so queued bytes count until a message is delivered or given
//! up, and a slow receiver makes its queue fill and overflow as a slow socket would.
//!
//! Each message is one POST (body = the payload) retried on a non-2xx status, a connection
//! error or a timeout, with exponential backoff and full jitter, up to RETRIES times; then
//! it is dead-lettered: added to a stream through the keyspace as an XADD is (the command
//! layer installs that path, see [`DeadLetter`]: this module sits below it).
//!
//! Ordering: up to [`MAX_IN_FLIGHT`] POSTs of one webhook run at once, so messages may
//! arrive out of order (and a retried one after its successors). A receiver that needs
//! order has the channel and can sequence by payload; one-at-a-time delivery would let a
//! single slow or failing message (RETRIES with backoff up to 30 s) hold back everything
//! behind it and overflow the queue, which is worse for the common case.
//!
//! The dead-letter stream is capped (`MAXLEN ~` [`DEADLETTER_MAXLEN`]) so a receiver that
//! stays down cannot grow the keyspace without bound.
//!
//! Locks: the webhook table's lock is taken after the keyspace lock when both are held
//! (WEBHOOK ADD journals under the keyspace lock; the AOF rewrite reads the definitions
//! under it), never the other way round, and never across an `.await`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use crate::client::outbox::{Outbox, TakeFrame};
use crate::config::OverflowPolicy;
use crate::protocol::web::{records, Record};

use crate::protocol::wire::Wire;
use crate::pubsub::Registry;
use crate::sync::LockExt;

/// Entries a dead-letter stream keeps (about: the trim is `~`).
pub const DEADLETTER_MAXLEN: u64 = 100_000;
/// POSTs of one webhook in flight at once.
pub const MAX_IN_FLIGHT: usize = 8;
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// A receiver's response body is read (for connection reuse) up to this much, then dropped.
const MAX_RESPONSE_BODY: usize = 64 * 1024;
/// `last-error` texts are cut here: they come from the network.
const MAX_ERROR_LEN: usize = 256;

/// What WEBHOOK ADD said: everything needed to make the webhook again (the AOF keeps it
/// as the command, [`Def::to_args`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Def {
    pub name: Bytes,
    pub url: String,
    pub pattern: Bytes,
    pub secret: Option<Bytes>,
    pub retries: u32,
    pub timeout_ms: u64,
    /// Hard limit on queued (and in-flight) bytes.
    pub maxqueue: u64,
    pub policy: OverflowPolicy,
    /// The stream that receives the messages given up on.
    pub deadletter: Bytes,
}

impl Def {
    pub const DEFAULT_RETRIES: u32 = 5;
    pub const DEFAULT_TIMEOUT_MS: u64 = 5000;
    pub const DEFAULT_MAXQUEUE: u64 = 8 * 1024 * 1024;

    /// `webhook:<name>:dead`.
    pub fn default_deadletter(name: &[u8]) -> Bytes {
        let mut k = b"webhook:".to_vec();
        k.extend_from_slice(name);
        k.extend_from_slice(b":dead");
        Bytes::from(k)
    }

    /// The WEBHOOK ADD that makes this webhook, every option spelled out (so a replay
    /// does not depend on the server's `pubsub-overflow-policy` at that time). Carries
    /// the secret: it is written only to the AOF.
    pub fn to_args(&self) -> Vec<Bytes> {
        let mut a = vec![
            Bytes::from_static(b"WEBHOOK"),
            Bytes::from_static(b"ADD"),
            self.name.clone(),
            Bytes::from(self.url.clone()),
            self.pattern.clone(),
        ];
        if let Some(s) = &self.secret {
            a.push(Bytes::from_static(b"SECRET"));
            a.push(s.clone());
        }
        let mut opt = |k: &'static [u8], v: Bytes| {
            a.push(Bytes::from_static(k));
            a.push(v);
        };
        opt(b"RETRIES", Bytes::from(self.retries.to_string()));
        opt(b"TIMEOUT", Bytes::from(self.timeout_ms.to_string()));
        opt(b"MAXQUEUE", Bytes::from(self.maxqueue.to_string()));
        opt(b"POLICY", Bytes::from_static(self.policy.name().as_bytes()));
        opt(b"DEADLETTER", self.deadletter.clone());
        a
    }
}

/// Adds a message given up on to the dead-letter stream, as an XADD would (journaled,
/// serving blocked readers, notifying). Installed by the command layer, which owns that
/// path; `fields` are the entry's field/value pairs.
pub trait DeadLetter: Send + Sync {
    fn dead_letter(&self, key: &[u8], fields: Vec<Bytes>) -> Result<(), String>;
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    in_flight: AtomicU64,
    last_status: AtomicU64,
    last_error: Mutex<String>,
    last_delivery: Mutex<Option<Instant>>,
}

/// One live webhook.
struct Hook {
    def: Def,
    outbox: Arc<Outbox>,
    counters: Counters,
    /// Why deliveries stopped (`queue-overflow`), or `None` while active.
    suspended: Mutex<Option<&'static str>>,
    /// Cancelled when the webhook is deleted or replaced, or the server stops.
    stop: CancellationToken,
}

/// WEBHOOK INFO's figures for one webhook, read at one moment.
#[derive(Clone, Debug)]
pub struct Info {
    pub name: Bytes,
    pub url: String,
    pub pattern: Bytes,
    pub retries: u32,
    pub timeout_ms: u64,
    pub maxqueue: u64,
    pub policy: OverflowPolicy,
    pub deadletter: Bytes,
    pub has_secret: bool,
    /// `active` or `suspended:<reason>`.
    pub state: String,
    pub queued_bytes: u64,
    pub queued_messages: u64,
    pub in_flight: u64,
    pub delivered: u64,
    pub failed: u64,
    pub retried: u64,
    pub dropped: u64,
    pub dead_lettered: u64,
    pub last_error: String,
    pub last_status: u64,
    /// Milliseconds since the last successful delivery, -1 if none yet.
    pub last_delivery_ms_ago: i64,
}

/// What the drain tasks share.
struct Shared {
    registry: Arc<Registry>,
    client: OnceLock<reqwest::Client>,
    sink: OnceLock<Arc<dyn DeadLetter>>,
    /// Totals over every webhook there has been (INFO stats).
    delivered_total: AtomicU64,
    failed_total: AtomicU64,
}

/// Every webhook of the server, by name.
pub struct Webhooks {
    hooks: Mutex<BTreeMap<Bytes, Arc<Hook>>>,
    shared: Arc<Shared>,
    /// The server's stop: every webhook's own token is a child of it.
    stop: CancellationToken,
}

impl Webhooks {
    pub fn new(registry: Arc<Registry>) -> Webhooks {
        Webhooks {
            hooks: Mutex::new(BTreeMap::new()),
            shared: Arc::new(Shared {
                registry,
                client: OnceLock::new(),
                sink: OnceLock::new(),
                delivered_total: AtomicU64::new(0),
                failed_total: AtomicU64::new(0),
            }),
            stop: CancellationToken::new(),
        }
    }

    /// Where dead letters go (set once; later calls are ignored).
    pub fn set_dead_letter(&self, sink: Arc<dyn DeadLetter>) {
        let _ = self.shared.sink.set(sink);
    }

    pub fn has_dead_letter(&self) -> bool {
        self.shared.sink.get().is_some()
    }

    /// Makes the HTTP client if it is not made yet (it loads the system's root
    /// certificates: WEBHOOK ADD calls this before it takes the keyspace lock).
    pub fn prepare(&self) -> Result<(), String> {
        self.client().map(|_| ())
    }

    /// The one HTTP client (its connection pool is shared by every webhook), made on
    /// first use so a server without webhooks never loads the system's root certificates.
    fn client(&self) -> Result<reqwest::Client, String> {
        if let Some(c) = self.shared.client.get() {
            return Ok(c.clone());
        }
        let c = reqwest::Client::builder()
            .user_agent(concat!("fanout/", env!("CARGO_PKG_VERSION"), " webhook"))
            // The POST goes to the URL given, never elsewhere: a redirect is a failure.
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("can't make the HTTP client: {e}"))?;
        Ok(self.shared.client.get_or_init(|| c).clone())
    }

    /// Creates the webhook `def.name`, replacing one of that name (its queue is
    /// discarded). Adding a definition identical to an active webhook's changes nothing,
    /// so replaying the AOF (or DEBUG LOADAOF) never starts a second delivery task.
    /// `id` is the outbox's id: a fresh client id, so the registry tells it apart.
    /// Must run inside the tokio runtime (the drain task is spawned here).
    pub fn add(&self, def: Def, id: u64) -> Result<(), String> {
        let client = self.client()?;
        let rt = tokio::runtime::Handle::try_current().map_err(|_| "no runtime to deliver from".to_string())?;
        let mut hooks = self.hooks.locked();
        if let Some(old) = hooks.get(&def.name) {
            if old.def == def && old.suspended.locked().is_none() {
                return Ok(());
            }
        }
        // The old one goes first: a publish in between reaches neither, rather than both.
        if let Some(old) = hooks.remove(&def.name) {
            self.retire(&old);
        }
        let outbox = Arc::new(Outbox::new(id));
        outbox.set_wire(Wire::Record);
        outbox.set_pubsub_mode(true);
        outbox.set_policy(Some(def.policy));
        outbox.set_hard_limit(Some(usize::try_from(def.maxqueue).unwrap_or(usize::MAX)));
        let hook = Arc::new(Hook {
            def,
            outbox,
            counters: Counters::default(),
            suspended: Mutex::new(None),
            stop: self.stop.child_token(),
        });
        rt.spawn(drain(hook.clone(), self.shared.clone(), client));
        self.shared.registry.psubscribe(&hook.def.pattern, &hook.outbox);
        tracing::info!(webhook = %String::from_utf8_lossy(&hook.def.name), url = %hook.def.url, "webhook added");
        hooks.insert(hook.def.name.clone(), hook);
        Ok(())
    }

    /// WEBHOOK DEL: whether there was one.
    pub fn remove(&self, name: &[u8]) -> bool {
        let Some(old) = self.hooks.locked().remove(name) else {
            return false;
        };
        self.retire(&old);
        tracing::info!(webhook = %String::from_utf8_lossy(name), "webhook deleted");
        true
    }

    /// Stops a webhook: no more messages, its task ends, its queue is dropped.
    fn retire(&self, hook: &Hook) {
        hook.stop.cancel();
        self.shared.registry.punsubscribe(&hook.def.pattern, hook.outbox.id);
        hook.outbox.kill();
    }

    /// Every webhook's name, sorted.
    pub fn names(&self) -> Vec<Bytes> {
        self.hooks.locked().keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.hooks.locked().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn info(&self, name: &[u8]) -> Option<Info> {
        let hook = self.hooks.locked().get(name).cloned()?;
        Some(hook.info())
    }

    /// Every webhook's figures, by name (metrics).
    pub fn infos(&self) -> Vec<Info> {
        let hooks: Vec<Arc<Hook>> = self.hooks.locked().values().cloned().collect();
        hooks.iter().map(|h| h.info()).collect()
    }

    /// The commands that make every webhook again: the AOF rewrite writes them into the
    /// new base (called under the keyspace lock, at the rewrite's snapshot).
    pub fn definitions(&self) -> Vec<Vec<Bytes>> {
        self.hooks.locked().values().map(|h| h.def.to_args()).collect()
    }

    /// Messages delivered and given up on, over every webhook there has been.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.shared.delivered_total.load(Relaxed),
            self.shared.failed_total.load(Relaxed),
        )
    }

    /// The server stops: every delivery task ends at its next step (an in-flight POST is
    /// abandoned), so shutdown never waits on a receiver.
    pub fn shutdown(&self) {
        self.stop.cancel();
    }
}

impl Hook {
    fn info(&self) -> Info {
        let c = &self.counters;
        let d = &self.def;
        let (queued_bytes, frames) = self.outbox.usage();
        Info {
            name: d.name.clone(),
            url: d.url.clone(),
            pattern: d.pattern.clone(),
            retries: d.retries,
            timeout_ms: d.timeout_ms,
            maxqueue: d.maxqueue,
            policy: d.policy,
            deadletter: d.deadletter.clone(),
            has_secret: d.secret.is_some(),
            state: match *self.suspended.locked() {
                None => "active".into(),
                Some(why) => format!("suspended:{why}"),
            },
            queued_bytes: queued_bytes as u64,
            // A webhook's frames hold one message each: a pattern subscriber never gets
            // a publisher's run (see `pubsub::registry`).
            queued_messages: frames as u64,
            in_flight: c.in_flight.load(Relaxed),
            delivered: c.delivered.load(Relaxed),
            failed: c.failed.load(Relaxed),
            retried: c.retried.load(Relaxed),
            dropped: self.outbox.dropped.load(Relaxed),
            dead_lettered: c.dead_lettered.load(Relaxed),
            last_error: c.last_error.locked().clone(),
            last_status: c.last_status.load(Relaxed),
            last_delivery_ms_ago: c
                .last_delivery
                .locked()
                .map_or(-1, |t| t.elapsed().as_millis().min(i64::MAX as u128) as i64),
        }
    }
}

/// The delivery task of one webhook: drains its outbox until the webhook is deleted,
/// replaced or suspended, or the server stops. Frames are taken one at a time, up to
/// [`MAX_IN_FLIGHT`] being delivered at once; each counts against MAXQUEUE until it is
/// delivered or given up ([`Outbox::written`]), so a slow receiver fills the queue.
async fn drain(hook: Arc<Hook>, shared: Arc<Shared>, client: reqwest::Client) {
    let outbox = hook.outbox.clone();
    let mut running = FuturesUnordered::new();
    let mut closing = false;
    loop {
        while running.len() < MAX_IN_FLIGHT && !closing {
            match outbox.take_frame() {
                TakeFrame::Frame(frame, cost) => {
                    let (hook, shared, client) = (hook.clone(), shared.clone(), client.clone());
                    running.push(async move {
                        // One message per frame for a pattern subscriber; a frame with
                        // several (a run) has them delivered in order.
                        for rec in records(&frame) {
                            deliver(&hook, &shared, &client, rec).await;
                        }
                        cost
                    });
                }
                TakeFrame::Idle => break,
                TakeFrame::Close => closing = true,
            }
        }
        if closing && running.is_empty() {
            break;
        }
        let room = running.len() < MAX_IN_FLIGHT && !closing;
        tokio::select! {
            Some(cost) = running.next(), if !running.is_empty() => outbox.written(cost),
            _ = outbox.wait(), if room => {}
            _ = hook.stop.cancelled() => return,
            // Overflow under the disconnect policy: the in-flight POSTs are abandoned
            // with the queue.
            _ = outbox.gone.cancelled() => break,
        }
    }
    if hook.stop.is_cancelled() {
        return;
    }
    // The outbox was killed for going over MAXQUEUE (the disconnect policy): the webhook
    // stops receiving until WEBHOOK ADD makes it again. Logged once: it happens once.
    *hook.suspended.locked() = Some("queue-overflow");
    shared.registry.punsubscribe(&hook.def.pattern, outbox.id);
    tracing::warn!(
        webhook = %String::from_utf8_lossy(&hook.def.name),
        maxqueue = hook.def.maxqueue,
        "webhook suspended: its queue went over MAXQUEUE under the disconnect policy; WEBHOOK ADD re-activates it"
    );
}

/// Decrements `in-flight` however the delivery ends (also when its future is dropped).
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// One message: POSTed until a 2xx, retried with backoff, then dead-lettered.
async fn deliver(hook: &Hook, shared: &Shared, client: &reqwest::Client, rec: Record) {
    let c = &hook.counters;
    let d = &hook.def;
    c.in_flight.fetch_add(1, Relaxed);
    let _in_flight = InFlight(&c.in_flight);
    let mut attempt = 0u32;
    let (error, status) = loop {
        attempt += 1;
        if attempt > 1 {
            c.retried.fetch_add(1, Relaxed);
        }
        let (error, status) = match post(client, d, &rec, attempt).await {
            Ok(status) if (200..300).contains(&status) => {
                c.last_status.store(status as u64, Relaxed);
                c.delivered.fetch_add(1, Relaxed);
                shared.delivered_total.fetch_add(1, Relaxed);
                *c.last_delivery.locked() = Some(Instant::now());
                return;
            }
            Ok(status) => (format!("HTTP status {status}"), status),
            Err(e) => (e, 0),
        };
        c.last_status.store(status as u64, Relaxed);
        *c.last_error.locked() = error.clone();
        if attempt > d.retries {
            break (error, status);
        }
        tokio::time::sleep(backoff(attempt)).await;
    };
    c.failed.fetch_add(1, Relaxed);
    shared.failed_total.fetch_add(1, Relaxed);
    let Some(sink) = shared.sink.get() else {
        return;
    };
    let fields = vec![
        Bytes::from_static(b"webhook"),
        d.name.clone(),
        Bytes::from_static(b"channel"),
        rec.channel.clone(),
        Bytes::from_static(b"payload"),
        rec.payload.clone(),
        Bytes::from_static(b"error"),
        Bytes::from(error),
        Bytes::from_static(b"attempts"),
        Bytes::from(attempt.to_string()),
        Bytes::from_static(b"status"),
        Bytes::from(status.to_string()),
    ];
    match sink.dead_letter(&d.deadletter, fields) {
        Ok(()) => {
            c.dead_lettered.fetch_add(1, Relaxed);
        }
        Err(e) => tracing::warn!(
            webhook = %String::from_utf8_lossy(&d.name),
            "webhook could not dead-letter a message: {e}"
        ),
    }
}

/// One attempt: the response's status, or why there was none.
async fn post(client: &reqwest::Client, d: &Def, rec: &Record, attempt: u32) -> Result<u16, String> {
    let mut req = client
        .post(&d.url)
        .timeout(Duration::from_millis(d.timeout_ms))
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .header("X-Fanout-Channel", header_safe(&rec.channel))
        .header("X-Fanout-Webhook", header_safe(&d.name))
        .header("X-Fanout-Attempt", attempt.to_string());
    if let Some(p) = &rec.pattern {
        req = req.header("X-Fanout-Pattern", header_safe(p));
    }
    if let Some(secret) = &d.secret {
        req = req.header("X-Fanout-Signature", format!("sha256={}", sign(secret, &rec.payload)));
    }
    let mut resp = req
        .body(rec.payload.clone())
        .send()
        .await
        .map_err(|e| describe(&e, d))?;
    let status = resp.status().as_u16();
    // Read a little of the body so the connection can go back to the pool; a long or
    // slow body is cut off (the status is what counts).
    let mut read = 0usize;
    while read < MAX_RESPONSE_BODY {
        match resp.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            _ => break,
        }
    }
    Ok(status)
}

/// An error as `last-error` shows it: what kind, then the cause chain, bounded.
fn describe(e: &reqwest::Error, d: &Def) -> String {
    let mut s = if e.is_timeout() {
        format!("timeout after {} ms", d.timeout_ms)
    } else if e.is_connect() {
        "connect error".to_string()
    } else {
        "request error".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
        if s.len() > MAX_ERROR_LEN {
            break;
        }
    }
    if s.len() > MAX_ERROR_LEN {
        let mut cut = MAX_ERROR_LEN;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// A header value for arbitrary bytes: visible ASCII as it is, everything else (and `%`
/// itself, so the value decodes back) as `%XX`. Always a valid header value.
pub fn header_safe(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        if (0x21..=0x7e).contains(&c) && c != b'%' {
            s.push(c as char);
        } else {
            s.push_str(&format!("%{c:02X}"));
        }
    }
    s
}

/// Lowercase hex HMAC-SHA256 of `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    let mut s = String::with_capacity(64);
    for b in mac.finalize().into_bytes() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The wait before retry number `attempt` (1 for the first retry): full jitter over an
/// exponential ceiling (100 ms doubling, capped at 30 s), so many webhooks failing at
/// once do not retry in step.
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(20))
        .min(BACKOFF_CAP);
    let ms = ceiling.as_millis() as u64;
    Duration::from_millis(random() % (ms + 1))
}

/// A cheap random number for jitter (not for anything secret): the std hasher's
/// random keys over a counter.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static KEYS: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = KEYS.get_or_init(Default::default).build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Relaxed));
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_signature_is_rfc4231_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn webhook_headers_are_always_valid() {
        assert_eq!(header_safe(b"news.tech"), "news.tech");
        assert_eq!(header_safe(b"a b%\r\n\xff"), "a%20b%25%0D%0A%FF");
        for b in 0..=255u8 {
            let v = header_safe(&[b]);
            assert!(reqwest::header::HeaderValue::from_str(&v).is_ok(), "{b}");
        }
    }

    #[test]
    fn webhook_backoff_stays_under_its_ceiling() {
        for _ in 0..100 {
            assert!(backoff(1) <= Duration::from_millis(100));
            assert!(backoff(3) <= Duration::from_millis(400));
            assert!(backoff(40) <= BACKOFF_CAP);
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| backoff(10)).collect();
        assert!(spread.len() > 1, "jittered");
    }

    #[test]
    fn webhook_definition_spells_every_option() {
        let d = Def {
            name: Bytes::from_static(b"h"),
            url: "http://x/".into(),
            pattern: Bytes::from_static(b"a*"),
            secret: Some(Bytes::from_static(b"s")),
            retries: 2,
            timeout_ms: 10,
            maxqueue: 100,
            policy: OverflowPolicy::DropNewest,
            deadletter: Def::default_deadletter(b"h"),
        };
        let a: Vec<String> = d
            .to_args()
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        assert_eq!(
            a,
            [
                "WEBHOOK",
                "ADD",
                "h",
                "http://x/",
                "a*",
                "SECRET",
                "s",
                "RETRIES",
                "2",
                "TIMEOUT",
                "10",
                "MAXQUEUE",
                "100",
                "POLICY",
                "drop-newest",
                "DEADLETTER",
                "webhook:h:dead"
            ]
        );
    }
}
