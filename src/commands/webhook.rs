//! WEBHOOK ADD/DEL/LIST/INFO/HELP, and the dead-letter path the delivery engine
//! ([`crate::webhook`]) uses: an XADD run through an internal session, so a dead letter
//! is journaled, serves blocked readers and notifies exactly as a client's XADD.
//!
//! WEBHOOK ADD with the name of an existing webhook replaces it (as CONFIG SET replaces
//! a value): its queued messages are dropped and the new one starts empty. Adding the
//! same definition again keeps the running webhook untouched (and re-activates a
//! suspended one). With `appendonly yes`, ADD and DEL are journaled as they were sent,
//! secret included, under the keyspace lock, so the AOF orders them with the writes.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};

use bytes::Bytes;

use super::errors::Error;
use super::{Flow, Session};
use crate::broker::Broker;
use crate::config::OverflowPolicy;
use crate::spec::{self, Cmd};
use crate::webhook::{DeadLetter, Def};

/// RETRIES at most (with the 30 s backoff cap, about an hour of trying).
const MAX_RETRIES: i64 = 100;
/// TIMEOUT at most: one hour.
const MAX_TIMEOUT_MS: i64 = 3_600_000;

impl Session {
    pub(super) fn webhook(&mut self, cmd: Cmd, args: &[Bytes]) -> Flow {
        let r = match cmd {
            Cmd::WebhookAdd => self.webhook_add(args),
            Cmd::WebhookDel => {
                self.webhook_del(&args[2]);
                Ok(())
            }
            Cmd::WebhookList => {
                let names = self.broker.webhooks.names();
                let mut e = self.reply();
                e.array(names.len());
                for n in &names {
                    e.bulk(n);
                }
                Ok(())
            }
            Cmd::WebhookInfo => self.webhook_info(&args[2]),
            _ => {
                self.help(
                    "WEBHOOK",
                    &[
                        "ADD <name> <url> <pattern> [SECRET <secret>] [RETRIES <n>] [TIMEOUT <ms>]",
                        "    [MAXQUEUE <bytes>] [POLICY drop-oldest|drop-newest|disconnect] [DEADLETTER <key>]",
                        "    POST every message published to a channel matching <pattern> to <url>.",
                        "    Re-adding a name replaces that webhook. Defaults: RETRIES 5, TIMEOUT 5000,",
                        "    MAXQUEUE 8mb, POLICY the server's pubsub-overflow-policy,",
                        "    DEADLETTER webhook:<name>:dead (a stream of the messages given up on).",
                        "DEL <name>",
                        "    Delete a webhook and its queued messages.",
                        "LIST",
                        "    The webhooks' names, sorted.",
                        "INFO <name>",
                        "    A webhook's settings, state and delivery counters.",
                    ],
                );
                Ok(())
            }
        };
        if let Err(e) = r {
            self.fail(e);
        }
        Flow::Continue
    }

    fn webhook_add(&mut self, args: &[Bytes]) -> Result<(), Error> {
        let default_policy = self.broker.settings.overflow_policy();
        let def = parse_add(args, default_policy)?;
        if !self.broker.webhooks.has_dead_letter() {
            self.broker.webhooks.set_dead_letter(Arc::new(DeadLetters {
                broker: Arc::downgrade(&self.broker),
            }));
        }
        // Outside the keyspace lock: the first ADD loads the system's root certificates.
        self.broker.webhooks.prepare().map_err(Error::WebhookStart)?;
        let id = self.broker.next_client_id.fetch_add(1, Relaxed);
        let journal = def.to_args();
        // Under the keyspace lock: the AOF rewrite reads the webhooks there too, so this
        // webhook is either in its snapshot or in the incr file after it, never both or
        // neither.
        self.with_keys(|s, ks| -> Result<(), Error> {
            s.broker.webhooks.add(def, id).map_err(Error::WebhookStart)?;
            ks.journal.verbatim(s.db, &journal);
            Ok(())
        })?;
        self.ok();
        Ok(())
    }

    fn webhook_del(&mut self, name: &Bytes) {
        let removed = self.with_keys(|s, ks| {
            let removed = s.broker.webhooks.remove(name);
            if removed {
                ks.journal.verbatim(
                    s.db,
                    &[Bytes::from_static(b"WEBHOOK"), Bytes::from_static(b"DEL"), name.clone()],
                );
            }
            removed
        });
        self.reply().integer(removed as i64);
    }

    fn webhook_info(&mut self, name: &Bytes) -> Result<(), Error> {
        let i = self
            .broker
            .webhooks
            .info(name)
            .ok_or_else(|| Error::NoSuchWebhook(name.clone()))?;
        // The fields are gathered first so the map's length is theirs, whatever is added.
        enum F {
            Text(Vec<u8>),
            Int(i64),
        }
        let n = |v: u64| F::Int(v.min(i64::MAX as u64) as i64);
        let fields = [
            ("name", F::Text(i.name.to_vec())),
            ("url", F::Text(i.url.into_bytes())),
            ("pattern", F::Text(i.pattern.to_vec())),
            ("retries", n(i.retries as u64)),
            ("timeout", n(i.timeout_ms)),
            ("maxqueue", n(i.maxqueue)),
            ("policy", F::Text(i.policy.name().into())),
            ("deadletter", F::Text(i.deadletter.to_vec())),
            ("has-secret", F::Int(i.has_secret as i64)),
            ("state", F::Text(i.state.into_bytes())),
            ("queued-bytes", n(i.queued_bytes)),
            ("queued-messages", n(i.queued_messages)),
            ("in-flight", n(i.in_flight)),
            ("delivered", n(i.delivered)),
            ("failed", n(i.failed)),
            ("retried", n(i.retried)),
            ("dropped", n(i.dropped)),
            ("dead-lettered", n(i.dead_lettered)),
            ("last-error", F::Text(i.last_error.into_bytes())),
            ("last-status", n(i.last_status)),
            ("last-delivery-ms-ago", F::Int(i.last_delivery_ms_ago)),
        ];
        let mut e = self.reply();
        e.map(fields.len());
        for (k, v) in fields {
            e.bulk(k.as_bytes());
            match v {
                F::Text(t) => e.bulk(&t),
                F::Int(v) => e.integer(v),
            }
        }
        Ok(())
    }
}

/// `WEBHOOK ADD name url pattern [options]` read into a definition.
fn parse_add(args: &[Bytes], default_policy: OverflowPolicy) -> Result<Def, Error> {
    let name = args[2].clone();
    if name.is_empty() {
        return Err(Error::WebhookEmptyName);
    }
    let url = valid_url(&args[3]).ok_or_else(|| Error::WebhookUrl(args[3].clone()))?;
    let mut def = Def {
        deadletter: Def::default_deadletter(&name),
        name,
        url,
        pattern: args[4].clone(),
        secret: None,
        retries: Def::DEFAULT_RETRIES,
        timeout_ms: Def::DEFAULT_TIMEOUT_MS,
        maxqueue: Def::DEFAULT_MAXQUEUE,
        policy: default_policy,
    };
    let mut i = 5;
    while i < args.len() {
        let value = args.get(i + 1).ok_or(Error::Syntax)?;
        let int = |what: &'static str, min: i64, max: i64, range: &'static str| {
            super::parse_i64(value)
                .filter(|v| (min..=max).contains(v))
                .ok_or(Error::WebhookOption(what, range))
        };
        let opt = args[i].to_ascii_uppercase();
        match &opt[..] {
            b"SECRET" => def.secret = Some(value.clone()),
            b"RETRIES" => def.retries = int("RETRIES", 0, MAX_RETRIES, "an integer from 0 to 100")? as u32,
            b"TIMEOUT" => def.timeout_ms = int("TIMEOUT", 1, MAX_TIMEOUT_MS, "milliseconds from 1 to 3600000")? as u64,
            b"MAXQUEUE" => {
                def.maxqueue = std::str::from_utf8(value)
                    .ok()
                    .and_then(crate::config::units::parse_memory)
                    .filter(|&b| b > 0)
                    .ok_or(Error::WebhookOption(
                        "MAXQUEUE",
                        "a positive size in bytes (units: kb, mb, gb)",
                    ))?
            }
            b"POLICY" => {
                def.policy = std::str::from_utf8(value)
                    .ok()
                    .and_then(OverflowPolicy::parse)
                    .ok_or(Error::WebhookOption("POLICY", "drop-oldest, drop-newest or disconnect"))?
            }
            b"DEADLETTER" => def.deadletter = value.clone(),
            _ => return Err(Error::Syntax),
        }
        i += 2;
    }
    Ok(def)
}

/// `url` as given when it is http:// or https:// with a host; `None` otherwise.
fn valid_url(url: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(url).ok()?;
    let parsed = reqwest::Url::parse(s).ok()?;
    let web = matches!(parsed.scheme(), "http" | "https");
    (web && parsed.host_str().is_some_and(|h| !h.is_empty())).then(|| s.to_string())
}

/// The dead-letter path: XADD through an internal session (full rights, in no client
/// list), as the AOF's replay session runs commands, but journaled like a client's. It
/// runs the command directly (no ACL or `maxmemory` check: the server itself writes), with
/// `MAXLEN ~` so the stream stays bounded.
struct DeadLetters {
    broker: Weak<Broker>,
}

impl DeadLetter for DeadLetters {
    fn dead_letter(&self, key: &[u8], fields: Vec<Bytes>) -> Result<(), String> {
        let broker = self.broker.upgrade().ok_or("the server is gone")?;
        let mut s = Session::for_replay(broker.clone());
        // Not a replay: the entry is journaled and the XADD takes no replay-only options.
        s.replaying = false;
        let mut args = Vec::with_capacity(6 + fields.len());
        args.push(Bytes::from_static(b"XADD"));
        args.push(Bytes::copy_from_slice(key));
        args.push(Bytes::from_static(b"MAXLEN"));
        args.push(Bytes::from_static(b"~"));
        args.push(Bytes::from(crate::webhook::DEADLETTER_MAXLEN.to_string()));
        args.push(Bytes::from_static(b"*"));
        args.extend(fields);
        s.run(spec::of(Cmd::Xadd), &args);
        let reply = std::mem::take(&mut s.out);
        // Nobody waits for this reply: the AOF writer is woken rather than awaited, and
        // ending the batch wakes the subscribers its notifications reached.
        s.durable_wait = None;
        s.flush();
        broker.aof.wake();
        match reply.first() {
            Some(b'-') => Err(String::from_utf8_lossy(&reply[1..]).trim_end().to_string()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<Bytes> {
        w.iter().map(|x| Bytes::copy_from_slice(x.as_bytes())).collect()
    }

    #[test]
    fn webhook_add_defaults_and_options() {
        let d = parse_add(
            &words(&["WEBHOOK", "ADD", "h", "https://example.com/x", "news.*"]),
            OverflowPolicy::DropOldest,
        )
        .unwrap();
        assert_eq!(d.retries, 5);
        assert_eq!(d.timeout_ms, 5000);
        assert_eq!(d.maxqueue, 8 * 1024 * 1024);
        assert_eq!(d.policy, OverflowPolicy::DropOldest);
        assert_eq!(&d.deadletter[..], b"webhook:h:dead");
        let d = parse_add(
            &words(&[
                "WEBHOOK",
                "ADD",
                "h",
                "http://h:1/",
                "*",
                "secret",
                "s",
                "RETRIES",
                "0",
                "TIMEOUT",
                "10",
                "MAXQUEUE",
                "1kb",
                "POLICY",
                "DISCONNECT",
                "DEADLETTER",
                "dl",
            ]),
            OverflowPolicy::DropOldest,
        )
        .unwrap();
        assert_eq!(
            (d.retries, d.timeout_ms, d.maxqueue, d.policy),
            (0, 10, 1024, OverflowPolicy::Disconnect)
        );
        assert_eq!(d.secret.as_deref(), Some(&b"s"[..]));
        assert_eq!(&d.deadletter[..], b"dl");
        // What the AOF gets back parses to the same definition.
        assert_eq!(parse_add(&d.to_args(), OverflowPolicy::DropNewest).unwrap(), d);
    }

    #[test]
    fn webhook_add_refuses_bad_input() {
        let p = OverflowPolicy::Disconnect;
        let bad = |w: &[&str]| parse_add(&words(w), p).unwrap_err();
        assert!(matches!(
            bad(&["WEBHOOK", "ADD", "h", "ftp://x/", "*"]),
            Error::WebhookUrl(_)
        ));
        assert!(matches!(
            bad(&["WEBHOOK", "ADD", "h", "http://", "*"]),
            Error::WebhookUrl(_)
        ));
        assert!(matches!(
            bad(&["WEBHOOK", "ADD", "h", "\u{ff}", "*"]),
            Error::WebhookUrl(_)
        ));
        assert_eq!(bad(&["WEBHOOK", "ADD", "", "http://x/", "*"]), Error::WebhookEmptyName);
        assert_eq!(
            bad(&["WEBHOOK", "ADD", "h", "http://x/", "*", "RETRIES"]),
            Error::Syntax
        );
        assert_eq!(
            bad(&["WEBHOOK", "ADD", "h", "http://x/", "*", "NOPE", "1"]),
            Error::Syntax
        );
        for (opt, v) in [
            ("RETRIES", "-1"),
            ("RETRIES", "101"),
            ("TIMEOUT", "0"),
            ("MAXQUEUE", "0"),
            ("MAXQUEUE", "1xb"),
            ("POLICY", "maybe"),
        ] {
            assert!(
                matches!(
                    bad(&["WEBHOOK", "ADD", "h", "http://x/", "*", opt, v]),
                    Error::WebhookOption(..)
                ),
                "{opt} {v}"
            );
        }
    }
}
