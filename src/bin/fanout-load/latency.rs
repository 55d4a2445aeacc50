//! `latency`: open-loop publisher at a fixed rate, end-to-end latency
//! measured from each message's *intended* send time (so a stalled server
//! or a late publisher shows up as latency: no coordinated omission).
//!
//! The publisher runs on two OS threads with blocking sockets: the writer
//! sleeps with nanosecond-resolution `thread::sleep` (tokio timers tick at
//! 1 ms, which would add up to 1 ms of artificial latency), the reader only
//! consumes PUBLISH replies so the writer never waits for them.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::net::{OnMessage, SubSpec};
use crate::report::{Report, Val};
use crate::resp::{self, Kind, ReadBuf};
use crate::scenarios::{drain, ratio, start_subs, CpuMark, Opts};

/// Payload layout: 16 lowercase hex digits of the intended send time in ns
/// since the run's epoch, then padding.
pub const STAMP_LEN: usize = 16;

pub fn new_hist() -> Histogram<u64> {
    // 1 ns .. 1 hour, 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("histogram bounds")
}

#[inline]
pub fn write_stamp(out: &mut [u8], v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in out.iter_mut().enumerate().take(STAMP_LEN) {
        *b = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

#[inline]
pub fn read_stamp(p: &[u8]) -> Option<u64> {
    if p.len() < STAMP_LEN {
        return None;
    }
    let mut v = 0u64;
    for &c in &p[..STAMP_LEN] {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | d as u64;
    }
    Some(v)
}

/// Subscriber-side recorder: messages intended in [from, to) only.
struct Recorder {
    hist: Histogram<u64>,
    from: Arc<AtomicU64>,
    to: Arc<AtomicU64>,
    bad: u64,
}

impl OnMessage for Recorder {
    #[inline]
    fn on_message(&mut self, payload: &[u8], now_ns: u64) {
        match read_stamp(payload) {
            Some(t) => {
                if t >= self.from.load(Relaxed) && t < self.to.load(Relaxed) {
                    self.hist.saturating_record(now_ns.saturating_sub(t).max(1));
                }
            }
            None => self.bad += 1,
        }
    }
}

/// Intended send time of message `k`.
#[inline]
pub fn due_at(k: u64, t_start: u64, interval: f64) -> u64 {
    t_start + (k as f64 * interval) as u64
}

/// An open-loop sender (no coordinated omission): item k is due at `t_start + k *
/// interval` ns after `epoch`; everything due by now (at most 4,096 items) goes out in one
/// write, `item(batch, due, now)` appending one. Stops at `t_end`, or 1 s after it when
/// the server cannot keep up (what is still unsent then is reported as unsent).
/// `sent_total` follows the count; the error is the failed write's.
pub fn open_loop(
    ws: &mut impl std::io::Write,
    epoch: std::time::Instant,
    t_start: u64,
    t_end: u64,
    interval: f64,
    sent_total: &std::sync::atomic::AtomicU64,
    mut item: impl FnMut(&mut Vec<u8>, u64, u64),
) -> Option<std::io::Error> {
    let mut batch: Vec<u8> = Vec::new();
    let mut k = 0u64;
    let hard_stop = t_end + 1_000_000_000;
    loop {
        let due = due_at(k, t_start, interval);
        if due >= t_end {
            return None;
        }
        let now = epoch.elapsed().as_nanos() as u64;
        if now >= hard_stop {
            return None;
        }
        if due > now {
            std::thread::sleep(std::time::Duration::from_nanos(due - now));
            continue;
        }
        batch.clear();
        let mut d = due;
        let mut n = 0;
        while d <= now && d < t_end && n < 4096 {
            item(&mut batch, d, now);
            k += 1;
            n += 1;
            d = due_at(k, t_start, interval);
        }
        sent_total.store(k, std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = ws.write_all(&batch) {
            return Some(e);
        }
    }
}

/// Smallest k whose intended send time is at or after `t`.
pub fn first_due_at(t: u64, t_start: u64, interval: f64) -> u64 {
    let mut k = (t.saturating_sub(t_start) as f64 / interval) as u64;
    while due_at(k, t_start, interval) < t {
        k += 1;
    }
    while k > 0 && due_at(k - 1, t_start, interval) >= t {
        k -= 1;
    }
    k
}

struct WriterOut {
    sent: u64,
    in_window: u64,
    lag: Histogram<u64>,
    error: Option<String>,
}

struct ReaderOut {
    replies: u64,
    reply_sum: u64,
    errors: u64,
}

pub struct LatencyArgs {
    pub rate: f64,
    pub subscribers: usize,
    pub payload: usize,
    pub channel: String,
}

pub async fn run_latency(o: &Opts, a: LatencyArgs, mut report: Report) -> Result<Report, String> {
    if a.rate <= 0.0 {
        return Err("--rate must be > 0".into());
    }
    let payload = a.payload.max(STAMP_LEN);
    let probe = o.server();
    let epoch = Instant::now();
    // Window bounds are set once the publisher start time is known; until
    // then nothing is recorded (from = to = MAX).
    let from = Arc::new(AtomicU64::new(u64::MAX));
    let to = Arc::new(AtomicU64::new(u64::MAX));
    let specs = (0..a.subscribers)
        .map(|_| SubSpec {
            cmd: resp::cmd(&["SUBSCRIBE", a.channel.as_str()]),
            confirms: 1,
        })
        .collect();
    eprintln!("  setting up {} subscriber(s)", a.subscribers);
    let subs = start_subs(o, specs, 256 * 1024, epoch, |_| Recorder {
        hist: new_hist(),
        from: from.clone(),
        to: to.clone(),
        bad: 0,
    })
    .await?;

    // Publisher connection (blocking std socket for precise pacing).
    let addr = (o.target.host.as_str(), o.target.port)
        .to_socket_addrs()
        .map_err(|e| format!("resolve {}: {e}", o.target.host))?
        .next()
        .ok_or("no address")?;
    let ws = TcpStream::connect_timeout(&addr, o.target.connect_timeout)
        .map_err(|e| crate::net::explain(&e, "publisher connect", &o.target))?;
    let _ = ws.set_nodelay(true);
    let _ = ws.set_write_timeout(Some(Duration::from_secs(5)));
    let mut rs = ws.try_clone().map_err(|e| e.to_string())?;
    let _ = rs.set_read_timeout(Some(Duration::from_millis(100)));

    let interval = 1e9 / a.rate;
    let t_start = epoch.elapsed().as_nanos() as u64 + 10_000_000;
    let t_warm = t_start + o.warmup.as_nanos() as u64;
    let t_end = t_warm + o.duration.as_nanos() as u64;
    from.store(t_warm, Relaxed);
    to.store(t_end, Relaxed);

    let sent_total = Arc::new(AtomicU64::new(0));
    let writer_done = Arc::new(AtomicBool::new(false));

    let reader = {
        let sent_total = sent_total.clone();
        let writer_done = writer_done.clone();
        std::thread::spawn(move || {
            let mut rb = ReadBuf::new(64 * 1024);
            let mut out = ReaderOut {
                replies: 0,
                reply_sum: 0,
                errors: 0,
            };
            let mut give_up: Option<Instant> = None;
            loop {
                while let Ok(Some((f, _))) = rb.next_frame() {
                    match f.kind {
                        Kind::Integer(v) => {
                            out.replies += 1;
                            out.reply_sum += v.max(0) as u64;
                        }
                        _ => out.errors += 1,
                    }
                }
                if writer_done.load(Relaxed) {
                    if out.replies + out.errors >= sent_total.load(Relaxed) {
                        break;
                    }
                    let g = *give_up.get_or_insert_with(|| Instant::now() + Duration::from_secs(2));
                    if Instant::now() > g {
                        break;
                    }
                }
                match rb.fill_blocking(&mut rs) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(_) => break,
                }
            }
            out
        })
    };

    let writer = {
        let sent_total = sent_total.clone();
        let writer_done = writer_done.clone();
        let channel = a.channel.clone();
        let mut ws = ws;
        std::thread::spawn(move || {
            let mut tmpl = Vec::new();
            resp::push_cmd(
                &mut tmpl,
                &[b"PUBLISH".as_slice(), channel.as_bytes(), &vec![b'x'; payload]],
            );
            let stamp_off = tmpl.len() - 2 - payload;
            let mut out = WriterOut {
                sent: 0,
                in_window: 0,
                lag: new_hist(),
                error: None,
            };
            out.error = open_loop(
                &mut ws,
                epoch,
                t_start,
                t_end,
                interval,
                &sent_total,
                |batch, due, now| {
                    let base = batch.len();
                    batch.extend_from_slice(&tmpl);
                    write_stamp(&mut batch[base + stamp_off..], due);
                    out.lag.saturating_record((now - due).max(1));
                    if due >= t_warm {
                        out.in_window += 1;
                    }
                    out.sent += 1;
                },
            )
            .map(|e| format!("publisher write: {e}"));
            writer_done.store(true, Relaxed);
            out
        })
    };

    eprintln!(
        "  publishing {} msg/s: {:.1}s warm-up + {:.1}s measured",
        a.rate,
        o.warmup.as_secs_f64(),
        o.duration.as_secs_f64()
    );
    let until = |t: u64| {
        let now = epoch.elapsed().as_nanos() as u64;
        Duration::from_nanos(t.saturating_sub(now))
    };
    tokio::time::sleep(until(t_warm)).await;
    let cpu0 = CpuMark::take(probe);
    let d0 = subs.delivered();
    tokio::time::sleep(until(t_end)).await;
    let cpu1 = CpuMark::take(probe);
    let d1 = subs.delivered();
    let w = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|_| "publisher thread panicked".to_string())?;
    let r = tokio::task::spawn_blocking(move || reader.join())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|_| "reply reader thread panicked".to_string())?;
    // Messages scheduled in [t_warm, t_end).
    let scheduled = first_due_at(t_end, t_start, interval) - first_due_at(t_warm, t_start, interval);
    let expected = w.in_window * a.subscribers as u64;
    let total_expected = w.sent * a.subscribers as u64;
    let waited = drain(o.grace, total_expected, || subs.delivered()).await;
    let closed = subs.closed();
    let rss_end = probe.and_then(|p| p.rss_bytes());
    let recs = subs.finish().await;
    let mut hist = new_hist();
    let mut bad = 0;
    for rec in &recs {
        let _ = hist.add(&rec.hist);
        bad += rec.bad;
    }
    if recs.len() < a.subscribers {
        eprintln!(
            "  warning: only {} of {} subscribers returned histograms",
            recs.len(),
            a.subscribers
        );
    }
    let window = cpu1.at.duration_since(cpu0.at).as_secs_f64();
    let us = |ns: u64| ns as f64 / 1000.0;
    report.float("window_s", window, 3);
    report.float(
        "achieved_publish_rate",
        w.in_window as f64 / o.duration.as_secs_f64(),
        1,
    );
    report.float("delivered_rate", (d1 - d0) as f64 / window, 1);
    report.int("scheduled_in_window", scheduled);
    report.int("published_in_window", w.in_window);
    report.int("unsent_in_window", scheduled.saturating_sub(w.in_window));
    report.int("delivered_in_window", hist.len());
    report.float("delivered_fraction", ratio(hist.len(), expected), 6);
    report.int("publish_replies", r.replies);
    report.int("publish_reply_sum", r.reply_sum);
    report.int("publish_errors", r.errors);
    report.float("p50_us", us(hist.value_at_quantile(0.5)), 1);
    report.float("p90_us", us(hist.value_at_quantile(0.9)), 1);
    report.float("p99_us", us(hist.value_at_quantile(0.99)), 1);
    report.float("p999_us", us(hist.value_at_quantile(0.999)), 1);
    report.float("max_us", us(hist.max()), 1);
    report.float("mean_us", hist.mean() / 1000.0, 1);
    report.float("send_lag_p50_us", us(w.lag.value_at_quantile(0.5)), 1);
    report.float("send_lag_p99_us", us(w.lag.value_at_quantile(0.99)), 1);
    report.float("send_lag_max_us", us(w.lag.max()), 1);
    report.int("bad_payloads", bad);
    report.int("subscribers_closed", closed);
    report.int("drain_ms", waited.as_millis() as u64);
    cpu0.report(&cpu1, d1 - d0, &mut report);
    report.opt_int("server_rss_bytes", rss_end);
    if let Some(e) = w.error {
        report.fig("publisher_error", Val::Str(e));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_roundtrip() {
        let mut b = [b'x'; 20];
        for v in [0u64, 1, 123_456_789_012, u64::MAX] {
            write_stamp(&mut b, v);
            assert_eq!(read_stamp(&b), Some(v));
        }
        assert_eq!(read_stamp(b"xyz"), None);
    }
}
