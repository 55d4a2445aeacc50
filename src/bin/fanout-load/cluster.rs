//! `cluster`: global PUBLISH across the nodes of a cluster (fanout's cluster
//! mode or a Redis Cluster). S subscribers per node on one channel (plain
//! SUBSCRIBE, which every node accepts), P closed-loop publishers connected
//! round-robin to the nodes or all to the first; publishes/s, deliveries/s
//! summed over every subscriber on every node, and the delivered fraction
//! (delivered / published * S * nodes).
//!
//! With `--bus-ports` it also counts the bytes the nodes exchange: the sum of
//! `bytes_sent` (from `ss -tin`, the kernel's tcp_info) over every established
//! TCP socket with either end on one of those ports, before the publishers
//! start and after the drain. For a Redis Cluster the ports are the nodes'
//! cluster bus ports (port + 10000); for fanout the nats-server's client port.
//! On loopback both ends of a connection are listed, and each counts only what
//! it sent, so the sum is every byte carried, in both directions, once. The bus's
//! idle traffic (heartbeats, gossip) is sampled for `--bus-idle` seconds first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::net::{self, CountOnly, Pick, PubStats, SubSpec, Target};
use crate::report::{Report, Val};
use crate::resp;
use crate::scenarios::{drain, ratio, start_subs, stop_publishers, Opts, Subs};
use crate::sys::Probe;

/// Where the publishers connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishTo {
    /// Publisher i on node i % nodes.
    RoundRobin,
    /// Every publisher on the first node.
    First,
}

pub struct ClusterArgs {
    pub nodes: Vec<Target>,
    /// Subscriber connections per node.
    pub subscribers: usize,
    pub publishers: usize,
    pub publish_to: PublishTo,
    pub pipeline: usize,
    pub payload: usize,
    pub channel: String,
    /// Publish (about) this many messages in total, then stop (no warm-up);
    /// `--duration` bounds the run.
    pub messages: Option<u64>,
    /// Server processes whose CPU is summed (the nodes, and the nats-server).
    pub server_pids: Vec<u32>,
    pub bus_ports: Vec<u16>,
    pub bus_idle: Duration,
}

/// Parses `host:port,host:port,...` (`[v6]:port` too).
pub fn parse_nodes(list: &str, connect_timeout: Duration) -> Result<Vec<Target>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (host, port) = match s.strip_prefix('[') {
                Some(rest) => rest.split_once("]:"),
                None => s.rsplit_once(':'),
            }
            .ok_or_else(|| format!("--nodes: '{s}' is not HOST:PORT"))?;
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("--nodes: bad port in '{s}'"))?;
            if host.is_empty() {
                return Err(format!("--nodes: no host in '{s}'"));
            }
            Ok(Target {
                host: host.to_string(),
                port,
                connect_timeout,
            })
        })
        .collect()
}

/// Bytes sent per established TCP socket (keyed by its two endpoints) with
/// either end on one of `ports`, from `ss -tinH state established`.
pub fn parse_ss(text: &str, ports: &[u16]) -> HashMap<(String, String), u64> {
    let port_of = |ep: &str| ep.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok());
    let mut out = HashMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) {
            // Socket line: Recv-Q Send-Q Local Peer (with `state established`
            // the State column is left out).
            let f: Vec<&str> = line.split_whitespace().collect();
            current = match f.as_slice() {
                [_, _, local, peer, ..] => {
                    let hit = [local, peer]
                        .iter()
                        .any(|e| port_of(e).is_some_and(|p| ports.contains(&p)));
                    hit.then(|| (local.to_string(), peer.to_string()))
                }
                _ => None,
            };
        } else if let Some(key) = current.take() {
            let sent = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("bytes_sent:"))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            out.insert(key, sent);
        }
    }
    out
}

fn ss_snapshot(ports: &[u16]) -> Result<HashMap<(String, String), u64>, String> {
    let o = std::process::Command::new("ss")
        .args(["-tinH", "state", "established"])
        .output()
        .map_err(|e| format!("cannot run ss (iproute2): {e}"))?;
    if !o.status.success() {
        return Err(format!("ss failed: {}", String::from_utf8_lossy(&o.stderr)));
    }
    Ok(parse_ss(&String::from_utf8_lossy(&o.stdout), ports))
}

/// Bytes sent between two snapshots; sockets that appeared count from zero.
fn ss_delta(a: &HashMap<(String, String), u64>, b: &HashMap<(String, String), u64>) -> u64 {
    b.iter()
        .map(|(k, &v)| v.saturating_sub(a.get(k).copied().unwrap_or(0)))
        .sum()
}

/// CPU microseconds summed over `pids` (`None` if one is unreadable).
fn cpu_sum(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&p| Probe::server(p).cpu_us()).sum()
}

pub async fn run_cluster(o: &Opts, a: ClusterArgs, mut report: Report) -> Result<Report, String> {
    for &pid in &a.server_pids {
        if !Probe::server(pid).exists() {
            return Err(format!("--server-pids: no process {pid}"));
        }
    }
    for t in &a.nodes {
        net::ping(t)
            .await
            .map_err(|e| format!("node {}:{}: {e}", t.host, t.port))?;
    }
    let epoch = Instant::now();
    let mut subs: Vec<Subs<CountOnly>> = Vec::with_capacity(a.nodes.len());
    for t in &a.nodes {
        let on = Opts {
            target: t.clone(),
            ..o.clone()
        };
        let specs: Vec<SubSpec> = (0..a.subscribers)
            .map(|_| SubSpec {
                cmd: resp::cmd(&["SUBSCRIBE", &a.channel]),
                confirms: 1,
            })
            .collect();
        eprintln!("  {}:{}: {} subscriber(s)", t.host, t.port, a.subscribers);
        match start_subs(&on, specs, 64 * 1024, epoch, |_| CountOnly).await {
            Ok(s) => subs.push(s),
            Err(e) => {
                for s in subs {
                    s.finish().await;
                }
                return Err(format!("node {}:{}: {e}", t.host, t.port));
            }
        }
    }
    let delivered = |subs: &[Subs<CountOnly>]| subs.iter().map(|s| s.delivered()).sum::<u64>();

    let mut pub_conns = Vec::with_capacity(a.publishers);
    let mut pub_nodes = vec![0u64; a.nodes.len()];
    for i in 0..a.publishers {
        let n = match a.publish_to {
            PublishTo::RoundRobin => i % a.nodes.len(),
            PublishTo::First => 0,
        };
        pub_nodes[n] += 1;
        pub_conns.push(net::connect(&a.nodes[n]).await?);
    }
    // A node's bus subscription follows its first SUBSCRIBE; give it time to
    // reach the other nodes (or the NATS server) before anything is published.
    tokio::time::sleep(Duration::from_millis(250)).await;

    let mut bus = None;
    if !a.bus_ports.is_empty() {
        let s0 = ss_snapshot(&a.bus_ports)?;
        let t0 = Instant::now();
        tokio::time::sleep(a.bus_idle).await;
        let s1 = ss_snapshot(&a.bus_ports)?;
        let idle_rate = ss_delta(&s0, &s1) as f64 / t0.elapsed().as_secs_f64().max(1e-9);
        bus = Some((s1, idle_rate, Instant::now()));
    }

    let payload = Arc::new(vec![b'x'; a.payload]);
    let stop = Arc::new(AtomicBool::new(false));
    let pstats = Arc::new(PubStats::default());
    let mut pubs = JoinSet::new();
    for (i, s) in pub_conns.into_iter().enumerate() {
        pubs.spawn(net::publisher(
            s,
            b"PUBLISH",
            Pick::Fixed(a.channel.clone().into_bytes()),
            payload.clone(),
            a.pipeline,
            stop.clone(),
            pstats.clone(),
            0x5eed + i as u64,
        ));
    }
    // (time, server CPU, published, delivered, this tool's CPU)
    let mark = |subs: &[Subs<CountOnly>]| {
        (
            Instant::now(),
            cpu_sum(&a.server_pids),
            pstats.published.load(Relaxed),
            delivered(subs),
            Probe::this_process().cpu_us(),
        )
    };
    let (start, end, cut_short) = match a.messages {
        None => {
            eprintln!(
                "  {} publisher(s) running: {:.1}s warm-up + {:.1}s measured",
                a.publishers,
                o.warmup.as_secs_f64(),
                o.duration.as_secs_f64()
            );
            tokio::time::sleep(o.warmup).await;
            let start = mark(&subs);
            tokio::time::sleep(o.duration).await;
            (start, mark(&subs), false)
        }
        Some(n) => {
            eprintln!(
                "  {} publisher(s) running until {n} messages are published",
                a.publishers
            );
            // No warm-up: every message counts (its bytes on the bus too).
            let start = (
                Instant::now(),
                cpu_sum(&a.server_pids),
                0,
                delivered(&subs),
                Probe::this_process().cpu_us(),
            );
            let limit = o.warmup + o.duration;
            while pstats.published.load(Relaxed) < n && start.0.elapsed() < limit && !pubs.is_empty() {
                tokio::time::sleep(Duration::from_millis(1)).await;
                if pubs.try_join_next().is_some() {
                    // A publisher ended early (its error is reported below).
                    break;
                }
            }
            (start, mark(&subs), pstats.published.load(Relaxed) < n)
        }
    };
    let ((t0, c0, p0, d0, me0), (t1, c1, p1, d1, me1)) = (start, end);
    let stuck = stop_publishers(&stop, &mut pubs).await;

    let published = pstats.published.load(Relaxed);
    let reply_sum = pstats.reply_sum.load(Relaxed);
    let per_node = published * a.subscribers as u64;
    let expected = per_node * a.nodes.len() as u64;
    let waited = drain(o.grace, expected, || delivered(&subs)).await;
    let total = delivered(&subs);
    let bus_bytes = match &bus {
        Some((s1, idle_rate, tb)) => {
            let s2 = ss_snapshot(&a.bus_ports)?;
            Some((ss_delta(s1, &s2), *idle_rate, tb.elapsed().as_secs_f64(), s2.len()))
        }
        None => None,
    };
    let node_fracs: Vec<f64> = subs.iter().map(|s| ratio(s.delivered(), per_node)).collect();
    let closed: u64 = subs.iter().map(|s| s.closed()).sum();
    for s in subs {
        s.finish().await;
    }

    let window = t1.duration_since(t0).as_secs_f64().max(1e-9);
    report.float("window_s", window, 3);
    report.float("publish_rate", (p1 - p0) as f64 / window, 1);
    report.float("delivered_rate", (d1 - d0) as f64 / window, 1);
    report.int("published_total", published);
    report.int("delivered_total", total);
    report.int("expected_total", expected);
    report.float("delivered_fraction", ratio(total, expected), 6);
    let fmin = node_fracs.iter().copied().fold(f64::INFINITY, f64::min);
    let fmax = node_fracs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    report.float("node_fraction_min", fmin, 6);
    report.float("node_fraction_max", fmax, 6);
    // Both Redis Cluster and fanout count only the publishing node's receivers.
    report.int("publish_reply_sum", reply_sum);
    report.float("reply_per_publish", ratio(reply_sum, published), 3);
    report.int("publish_errors", pstats.errors.load(Relaxed));
    report.int("subscribers_closed", closed);
    report.int("drain_ms", waited.as_millis() as u64);
    let server = match (c0, c1) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64),
        _ => None,
    };
    let window_us = window * 1e6;
    report.opt_float("server_cpu_pct", server.map(|c| 100.0 * c / window_us), 1);
    report.opt_float(
        "server_cpu_us_per_delivered",
        server.filter(|_| d1 > d0).map(|c| c / (d1 - d0) as f64),
        3,
    );
    let client = match (me0, me1) {
        (Some(a), Some(b)) => Some(100.0 * b.saturating_sub(a) as f64 / window_us),
        _ => None,
    };
    report.opt_float("client_cpu_pct", client, 1);
    if let Some((bytes, idle_rate, secs, sockets)) = bus_bytes {
        report.int("bus_sockets", sockets as u64);
        report.int("bus_bytes", bytes);
        report.float("bus_idle_bytes_per_s", idle_rate, 1);
        report.float("bus_bytes_per_publish", ratio(bytes, published), 2);
        let net = (bytes as f64 - idle_rate * secs).max(0.0);
        report.float("bus_bytes_per_publish_less_idle", net / published.max(1) as f64, 2);
    }
    if cut_short {
        eprintln!("  warning: fewer than --messages published before the --warmup + --duration limit");
    }
    if let Some(e) = pstats.first_error.lock().unwrap().clone() {
        eprintln!("  warning: {e}");
    }
    if stuck > 0 {
        eprintln!("  warning: {stuck} publisher(s) did not finish within 5 s and were aborted");
    }
    report.fig(
        "publishers_per_node",
        Val::Str(pub_nodes.iter().map(u64::to_string).collect::<Vec<_>>().join("/")),
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes() {
        let t = parse_nodes("127.0.0.1:7001, 127.0.0.1:7002,[::1]:7003", Duration::from_secs(1)).unwrap();
        let v: Vec<(String, u16)> = t.into_iter().map(|t| (t.host, t.port)).collect();
        assert_eq!(
            v,
            vec![
                ("127.0.0.1".into(), 7001),
                ("127.0.0.1".into(), 7002),
                ("::1".into(), 7003)
            ]
        );
        assert!(parse_nodes("127.0.0.1", Duration::from_secs(1)).is_err());
        assert!(parse_nodes("h:0", Duration::from_secs(1)).is_err());
        assert!(parse_nodes(":7000", Duration::from_secs(1)).is_err());
    }

    #[test]
    fn ss_output() {
        // iproute2 6.1 `ss -tinH state established`: a socket line, then its
        // tcp_info line (indented).
        let text = "0      0      127.0.0.1:4222  127.0.0.1:51000\n\
\t cubic wscale:7,7 rto:204 bytes_sent:1200 bytes_acked:1200 bytes_received:300 segs_out:9\n\
0      0      127.0.0.1:51000 127.0.0.1:4222\n\
\t cubic wscale:7,7 bytes_sent:300 bytes_received:1200\n\
0      0      127.0.0.1:6379  127.0.0.1:52000\n\
\t cubic bytes_sent:99999 bytes_received:5\n\
0      0      [::1]:4222  [::1]:53000\n\
\t cubic bytes_received:7\n";
        let m = parse_ss(text, &[4222]);
        assert_eq!(m.len(), 3);
        assert_eq!(m[&("127.0.0.1:4222".into(), "127.0.0.1:51000".into())], 1200);
        assert_eq!(m[&("127.0.0.1:51000".into(), "127.0.0.1:4222".into())], 300);
        // A socket that has sent nothing has no bytes_sent field.
        assert_eq!(m[&("[::1]:4222".into(), "[::1]:53000".into())], 0);
        let mut later = m.clone();
        *later
            .get_mut(&("127.0.0.1:4222".into(), "127.0.0.1:51000".into()))
            .unwrap() += 1000;
        later.insert(("127.0.0.1:4222".into(), "127.0.0.1:54000".into()), 50);
        assert_eq!(ss_delta(&m, &later), 1050);
    }
}
