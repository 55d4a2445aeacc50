//! Prometheus metrics, served at `GET /metrics` on `metrics-addr` (off by default) and
//! on the HTTP listener (see `web`).
//!
//! Nothing here sits on a hot path. The counters are the plain atomics of
//! [`Stats`](crate::stats::Stats), bumped where things happen; the gauges (clients,
//! subscriptions, output buffers) are computed from the client table and the registry.
//! Both are read only when a scrape arrives, by [`BrokerCollector`], a
//! `prometheus-client` collector that the crate calls on every encode.
//!
//! * [`commands`]: per-command call counters, indexed by position in the command table.

use crate::sync::LockExt;
use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::broker::Broker;
use crate::pubsub::Namespace;
use crate::stats::Stats;

/// `Content-Type` of the Prometheus text format, served unless the client asks for
/// OpenMetrics.
pub const PROMETHEUS_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// `Content-Type` of OpenMetrics, served when the `Accept` header names it (as
/// Prometheus's own scraper does).
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A registry whose only member reads `broker` at each scrape.
pub fn registry(broker: Arc<Broker>) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(BrokerCollector { broker }));
    r
}

/// Renders the metrics in the Prometheus text format (0.0.4), or in OpenMetrics.
pub fn render(registry: &Registry, openmetrics: bool) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let result = if openmetrics {
        prometheus_client::encoding::text::encode(&mut out, registry)
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut out, registry)
    };
    // Writing to a String cannot fail, and our collector never returns an error itself.
    debug_assert!(result.is_ok());
    out
}

/// Reads the broker's counters and gauges on each scrape.
pub struct BrokerCollector {
    broker: Arc<Broker>,
}

impl fmt::Debug for BrokerCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerCollector").finish_non_exhaustive()
    }
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> fmt::Result {
    let m = ConstCounter::new(v);
    m.encode(e.encode_descriptor(name, help, None, m.metric_type())?)
}

fn gauge<N>(e: &mut DescriptorEncoder, name: &str, help: &str, v: N) -> fmt::Result
where
    N: prometheus_client::encoding::EncodeGaugeValue,
{
    let m = ConstGauge::new(v);
    m.encode(e.encode_descriptor(name, help, None, m.metric_type())?)
}

/// One metric family with a single label.
fn family<'a>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    label: &str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, kind)?;
    for (value, v) in values {
        let labels = [(label, value)];
        let series = m.encode_family(&labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(v).encode(series)?,
            _ => ConstGauge::new(v).encode(series)?,
        }
    }
    Ok(())
}

/// One family per webhook figure, labelled `webhook="<name>"`.
fn webhooks(e: &mut DescriptorEncoder, hooks: &[crate::webhook::Info]) -> fmt::Result {
    let names: Vec<String> = hooks
        .iter()
        .map(|h| String::from_utf8_lossy(&h.name).into_owned())
        .collect();
    type Figure = fn(&crate::webhook::Info) -> u64;
    let figures: [(&str, &str, MetricType, Figure); 6] = [
        (
            "fanout_webhook_delivered",
            "Messages a webhook's receiver accepted (2xx)",
            MetricType::Counter,
            |h| h.delivered,
        ),
        (
            "fanout_webhook_failed",
            "Messages a webhook gave up on after its retries",
            MetricType::Counter,
            |h| h.failed,
        ),
        (
            "fanout_webhook_retried",
            "Webhook delivery attempts beyond each message's first",
            MetricType::Counter,
            |h| h.retried,
        ),
        (
            "fanout_webhook_dropped",
            "Messages a webhook's queue dropped on overflow (MAXQUEUE)",
            MetricType::Counter,
            |h| h.dropped,
        ),
        (
            "fanout_webhook_dead_lettered",
            "Messages added to a webhook's dead-letter stream",
            MetricType::Counter,
            |h| h.dead_lettered,
        ),
        (
            "fanout_webhook_queued_bytes",
            "Bytes a webhook holds queued or in flight",
            MetricType::Gauge,
            |h| h.queued_bytes,
        ),
    ];
    for (name, help, kind, get) in figures {
        // Counters get their `_total` from the encoder, as the others here.
        let values = names.iter().zip(hooks).map(|(n, h)| (n.as_str(), get(h)));
        family(e, name, help, kind, "webhook", values)?;
    }
    Ok(())
}

impl Collector for BrokerCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let b = &self.broker;
        let st = &b.stats;
        let get = Stats::get;

        let clients = b.clients.all();
        let (mut sub, mut psub, mut ssub, mut pubsub_clients, mut queued) = (0, 0, 0, 0, 0);
        // The HTTP listener's clients, by what they are (their client name).
        let mut web = [("sse", 0u64), ("sse-stream", 0), ("websocket", 0), ("http", 0)];
        for c in &clients {
            queued += c.outbox.usage().0 as u64;
            let i = c.info.locked();
            if i.lib_name.as_deref() == Some(crate::client::WEB_LIB_NAME) {
                if let Some(k) = web.iter_mut().find(|(k, _)| i.name.as_deref() == Some(k.as_bytes())) {
                    k.1 += 1;
                }
            }
            sub += i.sub as u64;
            psub += i.psub as u64;
            ssub += i.ssub as u64;
            if i.sub + i.psub + i.ssub > 0 {
                pubsub_clients += 1u64;
            }
        }

        let info = [
            ("version", env!("CARGO_PKG_VERSION")),
            ("redis_version", crate::REDIS_VERSION),
        ];
        ConstGauge::new(1i64).encode(
            e.encode_descriptor(
                "fanout_build_info",
                "fanout's version and the Redis version it reports, as labels; always 1",
                None,
                MetricType::Gauge,
            )?
            .encode_family(&info)?,
        )?;
        gauge(
            &mut e,
            "fanout_uptime_seconds",
            "Seconds since the server started",
            b.started.elapsed().as_secs_f64(),
        )?;

        gauge(
            &mut e,
            "fanout_connected_clients",
            "Client connections open now",
            clients.len() as u64,
        )?;
        gauge(
            &mut e,
            "fanout_pubsub_clients",
            "Connected clients with at least one subscription",
            pubsub_clients,
        )?;
        family(
            &mut e,
            "fanout_subscriptions",
            "Subscriptions held by connected clients, by kind (channel: SUBSCRIBE, pattern: PSUBSCRIBE, shard: SSUBSCRIBE)",
            MetricType::Gauge,
            "kind",
            [("channel", sub), ("pattern", psub), ("shard", ssub)],
        )?;
        gauge(
            &mut e,
            "fanout_channels",
            "Channels with at least one subscriber",
            b.registry.channel_count(Namespace::Global) as u64,
        )?;
        gauge(
            &mut e,
            "fanout_shard_channels",
            "Shard channels with at least one subscriber",
            b.registry.channel_count(Namespace::Shard) as u64,
        )?;
        gauge(
            &mut e,
            "fanout_patterns",
            "Distinct patterns with at least one subscriber",
            b.registry.patterns.len() as u64,
        )?;
        gauge(
            &mut e,
            "fanout_output_buffer_bytes",
            "Bytes queued in client output buffers, not yet written to their sockets",
            queued,
        )?;

        let (keys, volatile, blocked, expired) = {
            let ks = b.keyspace.lock();
            let (keys, volatile) = ks.key_counts();
            (keys, volatile, ks.blocked.len() as u64, ks.expired)
        };
        gauge(&mut e, "fanout_keys", "Keys in all databases", keys)?;
        gauge(&mut e, "fanout_keys_with_ttl", "Keys with a time to live", volatile)?;
        gauge(
            &mut e,
            "fanout_blocked_clients",
            "Clients blocked in XREAD/XREADGROUP BLOCK",
            blocked,
        )?;
        gauge(
            &mut e,
            "fanout_used_memory_bytes",
            "What fanout holds (INFO used_memory): memory at start, the keyspace, client buffers",
            b.measure_memory(),
        )?;
        counter(
            &mut e,
            "fanout_expired_keys",
            "Keys removed because their TTL passed",
            expired,
        )?;
        webhooks(&mut e, &b.webhooks.infos())?;
        // The append-only file (INFO persistence, Redis's names after `fanout_`).
        let aof = &b.aof.stats;
        let load = |v: &std::sync::atomic::AtomicU64| v.load(std::sync::atomic::Ordering::Relaxed);
        let flag = |v: &std::sync::atomic::AtomicBool| v.load(std::sync::atomic::Ordering::Relaxed) as u64;
        gauge(
            &mut e,
            "fanout_aof_enabled",
            "1 while the append-only file is on",
            flag(&aof.enabled),
        )?;
        gauge(
            &mut e,
            "fanout_aof_rewrite_in_progress",
            "1 while BGREWRITEAOF (or an automatic rewrite) runs",
            flag(&aof.rewrite_in_progress),
        )?;
        gauge(
            &mut e,
            "fanout_aof_last_write_ok",
            "0 while writes to the AOF fail (writes then get -MISCONF)",
            flag(&aof.last_write_ok),
        )?;
        gauge(
            &mut e,
            "fanout_aof_current_size_bytes",
            "Bytes of the AOF files the manifest names",
            load(&aof.current_size),
        )?;
        gauge(
            &mut e,
            "fanout_aof_base_size_bytes",
            "Bytes of the AOF after the last rewrite",
            load(&aof.base_size),
        )?;
        counter(
            &mut e,
            "fanout_aof_rewrites",
            "AOF rewrites completed",
            load(&aof.rewrites),
        )?;
        counter(
            &mut e,
            "fanout_aof_write_errors",
            "Failed writes or fsyncs of the AOF (each retried)",
            load(&aof.write_errors),
        )?;
        counter(
            &mut e,
            "fanout_aof_delayed_fsync",
            "everysec fsyncs that took longer than 2 seconds (INFO aof_delayed_fsync)",
            load(&aof.delayed_fsync),
        )?;
        // The cluster bus (INFO cluster's cluster_bus_* fields), when there is one.
        if let Some(bus) = b.cluster.bus() {
            let n = bus.nats().stats();
            gauge(
                &mut e,
                "fanout_cluster_bus_connected",
                "1 while the NATS connection between nodes is up",
                n.connected as u64,
            )?;
            counter(
                &mut e,
                "fanout_cluster_bus_disconnects",
                "NATS connections lost (each followed by automatic reconnects)",
                n.disconnects,
            )?;
            counter(
                &mut e,
                "fanout_cluster_bus_messages_sent",
                "Messages published to other nodes over the bus",
                load(&bus.stats.sent),
            )?;
            counter(
                &mut e,
                "fanout_cluster_bus_messages_received",
                "Messages from other nodes delivered here",
                load(&bus.stats.received),
            )?;
            counter(
                &mut e,
                "fanout_cluster_bus_dropped_messages",
                "Messages for other nodes lost: bus down, its buffer full, or discarded with a dead connection",
                load(&bus.stats.dropped) + n.lost_out,
            )?;
            counter(
                &mut e,
                "fanout_cluster_bus_refused_too_large",
                "PUBLISH refused because the message exceeded the NATS server's max_payload",
                load(&bus.stats.too_large),
            )?;
            gauge(
                &mut e,
                "fanout_cluster_bus_subscriptions",
                "NATS subscriptions held for local subscribers' channels, patterns and heartbeats",
                bus.subscriptions() as u64,
            )?;
            gauge(
                &mut e,
                "fanout_cluster_bus_peers_heard",
                "Other nodes heard on the bus since start",
                bus.peers_heard() as u64,
            )?;
        }

        counter(
            &mut e,
            "fanout_messages_published",
            "Messages published (PUBLISH and SPUBLISH), whether or not anyone received them",
            get(&st.messages_published),
        )?;
        counter(
            &mut e,
            "fanout_messages_delivered",
            "Messages queued for subscribers: one per receiving subscription",
            get(&st.messages_delivered),
        )?;
        counter(
            &mut e,
            "fanout_messages_dropped",
            "Messages discarded for subscribers over their output buffer limit (drop-newest and drop-oldest policies)",
            get(&st.messages_dropped),
        )?;
        family(
            &mut e,
            "fanout_web_clients",
            "Clients of the HTTP listener open now, by kind (SSE subscribers, stream followers, WebSocket connections, requests in progress)",
            MetricType::Gauge,
            "kind",
            web,
        )?;
        family(
            &mut e,
            "fanout_disconnects",
            "Clients closed by the server, by reason",
            MetricType::Counter,
            "reason",
            [
                ("output_buffer", get(&st.obuf_limit_disconnections)),
                ("query_buffer", get(&st.qbuf_limit_disconnections)),
                ("killed", get(&st.killed_disconnections)),
                ("timeout", get(&st.timeout_disconnections)),
            ],
        )?;

        counter(
            &mut e,
            "fanout_connections_received",
            "Connections accepted",
            get(&st.connections_received),
        )?;
        counter(
            &mut e,
            "fanout_rejected_connections",
            "Connections refused because maxclients was reached",
            get(&st.rejected_connections),
        )?;
        counter(
            &mut e,
            "fanout_auth_failures",
            "Failed AUTH and HELLO AUTH attempts",
            get(&st.auth_failures),
        )?;
        counter(
            &mut e,
            "fanout_net_input_bytes",
            "Bytes read from client sockets",
            get(&st.net_input_bytes),
        )?;
        counter(
            &mut e,
            "fanout_net_output_bytes",
            "Bytes written to client sockets",
            get(&st.net_output_bytes),
        )?;
        counter(
            &mut e,
            "fanout_commands_processed",
            "Requests processed, including refused and unknown ones",
            get(&st.commands_processed),
        )?;
        counter(
            &mut e,
            "fanout_error_replies",
            "Error replies sent",
            get(&st.error_replies),
        )?;
        family(
            &mut e,
            "fanout_command_calls",
            "Commands run, by full name (publish, client|list), as INFO commandstats calls",
            MetricType::Counter,
            "command",
            st.command_calls.snapshot().map(|(n, f)| (n, f.calls)),
        )?;
        Ok(())
    }
}
