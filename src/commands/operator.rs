//! Operator commands: MONITOR, SHUTDOWN, TIME, DBSIZE, LASTSAVE, SLOWLOG, LATENCY,
//! MEMORY and CLIENT PAUSE/UNPAUSE.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::args::Args;
use super::errors::Error;
use super::{Flow, Session};
use crate::client::pause::PauseMode;
use crate::spec::Cmd;
use crate::stats::Figure;
use crate::sync::LockExt;

fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

impl Session {
    pub(super) fn monitor(&mut self) -> Flow {
        if self.in_exec {
            // Redis: a client inside EXEC may not block or turn into a monitor.
            self.fail(Error::DenyBlocking("MONITOR"));
            return Flow::Continue;
        }
        // Already monitoring: Redis ignores it, without a reply.
        if !self.monitoring {
            self.monitoring = true;
            self.broker.monitors.add(self.client.clone());
            self.client.info.locked().monitor = true;
            self.ok();
        }
        Flow::Continue
    }

    /// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: the same graceful stop as SIGTERM.
    /// fanout keeps nothing on disk, so SAVE and NOSAVE stop alike, and a shutdown starts
    /// at once (nothing to wait for): ABORT finds none in progress.
    pub(super) fn shutdown(&mut self, args: &[Bytes]) -> Flow {
        let mut a = Args::new(&args[1..]);
        let (mut save, mut abort, mut other) = (None, false, false);
        while !a.is_empty() {
            match a.one_of(&["NOSAVE", "SAVE", "NOW", "FORCE", "ABORT"]) {
                Some("NOSAVE") if save.is_none() => save = Some(false),
                Some("SAVE") if save.is_none() => save = Some(true),
                Some("NOW") | Some("FORCE") => other = true,
                Some("ABORT") => abort = true,
                _ => {
                    self.fail(Error::Syntax);
                    return Flow::Continue;
                }
            }
        }
        if abort {
            self.fail(if save.is_some() || other {
                Error::Syntax
            } else {
                Error::NoShutdownInProgress
            });
            return Flow::Continue;
        }
        tracing::warn!(client = self.id(), addr = %self.client.peer, "User requested shutdown...");
        self.broker.shutdown.cancel();
        // Redis closes the connection without a reply; redis-cli takes that as success.
        Flow::CloseNow
    }

    pub(super) fn time(&mut self) -> Flow {
        let now = unix_now();
        let mut e = self.reply();
        e.array(2);
        e.bulk(now.as_secs().to_string().as_bytes());
        e.bulk(now.subsec_micros().to_string().as_bytes());
        Flow::Continue
    }

    /// fanout keeps no keys yet.
    /// fanout never saves: like Redis before its first save, the time it started.
    pub(super) fn lastsave(&mut self) -> Flow {
        let t = self.last_save_time();
        self.reply().integer(t);
        Flow::Continue
    }

    /// LASTSAVE: the end of the last successful AOF rewrite, else the start (Redis counts
    /// its start as a save too).
    pub(super) fn last_save_time(&self) -> i64 {
        match self
            .broker
            .aof
            .stats
            .last_save_unix
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            0 => unix_now().saturating_sub(self.broker.started.elapsed()).as_secs() as i64,
            t => t as i64,
        }
    }

    pub(super) fn slowlog(&mut self, cmd: Cmd, args: &[Bytes]) -> Flow {
        let broker = self.broker.clone();
        let log = &broker.slowlog;
        match cmd {
            Cmd::SlowlogGet => {
                if args.len() > 3 {
                    self.fail(Error::SubcommandSyntax {
                        sub: args[1].clone(),
                        container: "slowlog",
                    });
                    return Flow::Continue;
                }
                let count = match args.get(2) {
                    None => Some(10),
                    Some(_) => {
                        match Args::new(&args[2..]).i64_in(-1..=i64::MAX, Error::SlowlogCount) {
                            Ok(-1) => None,
                            Ok(n) => Some(n as usize),
                            // Redis words every bad count alike, non-numbers included.
                            Err(_) => {
                                self.fail(Error::SlowlogCount);
                                return Flow::Continue;
                            }
                        }
                    }
                };
                let mut entries = Vec::new();
                log.get(count, |e| {
                    entries.push((e.id, e.time, e.usec, e.args.clone(), e.peer.clone(), e.name.clone()))
                });
                let mut e = self.reply();
                e.array(entries.len());
                for (id, time, usec, argv, peer, name) in entries {
                    e.array(6);
                    e.integer(id as i64);
                    e.integer(time as i64);
                    e.integer(usec as i64);
                    e.array(argv.len());
                    for a in &argv {
                        e.bulk(a);
                    }
                    e.bulk(peer.as_bytes());
                    e.bulk(&name);
                }
            }
            Cmd::SlowlogLen => self.reply().integer(log.len() as i64),
            Cmd::SlowlogReset => {
                log.reset();
                self.ok();
            }
            _ => self.help(
                "SLOWLOG",
                &[
                    "GET [<count>]",
                    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                    "    Entries are made of:",
                    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
                    "    client name",
                    "LEN",
                    "    Return the length of the slowlog.",
                    "RESET",
                    "    Reset the slowlog.",
                ],
            ),
        }
        Flow::Continue
    }

    pub(super) fn latency(&mut self, cmd: Cmd, args: &[Bytes]) -> Flow {
        let broker = self.broker.clone();
        let mon = &broker.latency;
        match cmd {
            Cmd::LatencyLatest => {
                let events = mon.snapshot();
                let mut e = self.reply();
                e.array(events.len());
                for (name, s) in events {
                    let (time, latest) = s.samples.back().copied().unwrap_or((0, 0));
                    e.array(4);
                    e.bulk(name.as_bytes());
                    e.integer(time as i64);
                    e.integer(latest as i64);
                    e.integer(s.max as i64);
                }
            }
            Cmd::LatencyHistory => {
                let samples = mon.history(&args[2]).map(|s| s.samples).unwrap_or_default();
                let mut e = self.reply();
                e.array(samples.len());
                for (time, ms) in samples {
                    e.array(2);
                    e.integer(time as i64);
                    e.integer(ms as i64);
                }
            }
            Cmd::LatencyReset => {
                let n = mon.reset(&args[2..]);
                self.reply().integer(n as i64);
            }
            Cmd::LatencyDoctor => {
                let threshold = broker.settings.latency_threshold_ms.load(std::sync::atomic::Ordering::Relaxed);
                let slowlog_on = broker.settings.slowlog_slower_than.load(std::sync::atomic::Ordering::Relaxed) >= 0;
                let report = latency_report(&mon.snapshot(), threshold, slowlog_on);
                self.reply().verbatim(report.as_bytes());
            }
            Cmd::LatencyHistogram => {
                // Every tracked command, or those named (a container names its
                // subcommands too); unknown names are skipped, as in Redis.
                let specs: Vec<&'static crate::spec::Spec> = if args.len() == 2 {
                    crate::spec::all().collect()
                } else {
                    args[2..]
                        .iter()
                        .filter_map(|n| super::server::find_spec(n))
                        .flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()))
                        .collect()
                };
                let calls = &broker.stats.command_calls;
                let found: Vec<_> = specs
                    .into_iter()
                    .filter_map(|s| calls.distribution(s).map(|d| (s.name, d)))
                    .collect();
                let mut e = self.reply();
                e.map(found.len());
                for (name, (total, cdf)) in found {
                    e.bulk(name.as_bytes());
                    e.map(2);
                    e.bulk(b"calls");
                    e.integer(total as i64);
                    e.bulk(b"histogram_usec");
                    e.map(cdf.len());
                    for (usec, count) in cdf {
                        e.integer(usec as i64);
                        e.integer(count as i64);
                    }
                }
            }
            _ => self.help(
                "LATENCY",
                &[
                    "DOCTOR",
                    "    Return a human readable latency analysis report.",
                    "HISTORY <event>",
                    "    Return time-latency samples for the <event> class.",
                    "LATEST",
                    "    Return the latest latency samples for all events.",
                    "RESET [<event> ...]",
                    "    Reset latency data of one or more <event> classes.",
                    "    (default: reset all data for all event classes)",
                    "HISTOGRAM [COMMAND ...]",
                    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
                    "    If no commands are specified then all histograms are replied.",
                ],
            ),
        }
        Flow::Continue
    }

    pub(super) fn memory(&mut self, cmd: Cmd, args: &[Bytes]) -> Flow {
        match cmd {
            Cmd::MemoryUsage => {
                let mut a = Args::new(&args[3..]);
                if a.keyword("SAMPLES") {
                    match a.i64() {
                        Ok(n) if n >= 0 => {}
                        Ok(_) => {
                            self.fail(Error::Syntax);
                            return Flow::Continue;
                        }
                        Err(e) => {
                            self.fail(e);
                            return Flow::Continue;
                        }
                    }
                }
                if let Err(e) = a.finish() {
                    self.fail(e);
                    return Flow::Continue;
                }
                match self.key_memory(&args[2]) {
                    Some(n) => self.reply().integer(n as i64),
                    None => self.reply().null(),
                }
            }
            Cmd::MemoryStats => {
                let m = self.with_keys(|s, ks| s.broker.memory_figures(ks));
                let mut e = self.reply();
                e.map(m.len());
                for (k, v) in m {
                    e.bulk(k.as_bytes());
                    match v {
                        Figure::Bytes(n) => e.integer(n as i64),
                        Figure::Ratio(r) => e.double(r as f64),
                    }
                }
            }
            Cmd::MemoryDoctor => {
                let m = self.with_keys(|s, ks| s.broker.memory_figures(ks));
                let get = |k: &str| match m.iter().find(|(n, _)| *n == k) {
                    Some((_, Figure::Bytes(n))) => *n,
                    _ => 0,
                };
                let mut report = String::from("Hi Sam, ");
                let (rss, clients) = (get("total.allocated"), get("clients.normal"));
                if rss < 5 << 20 {
                    report.push_str("this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.");
                } else if clients > rss / 2 {
                    report.push_str(&format!(
                        "I detected a few issues in this instance memory implant:\n\n * Big client buffers: the clients' output buffers hold {clients} bytes, more than half of the process's memory ({rss} bytes). Slow subscribers are being buffered for: check CLIENT LIST (omem) and client-output-buffer-limit.\n\nI'm here to keep you safe, Sam. I want to help you.\n"
                    ));
                } else {
                    report.push_str("I can't find any memory issue in your instance. I can only account for what occurs on this base.");
                }
                self.reply().verbatim(report.as_bytes());
            }
            Cmd::MemoryPurge => self.ok(),
            // Redis's answer with an allocator that keeps no statistics: fanout reports none.
            Cmd::MemoryMallocStats => self.reply().verbatim(b"Stats not supported for the current allocator"),
            _ => self.help(
                "MEMORY",
                &[
                    "DOCTOR",
                    "    Return memory problems reports.",
                    "MALLOC-STATS",
                    "    Return internal statistics report from the memory allocator.",
                    "PURGE",
                    "    Attempt to purge dirty pages for reclamation by the allocator.",
                    "STATS",
                    "    Return information about the memory usage of the server.",
                    "USAGE <key> [SAMPLES <count>]",
                    "    Return memory in bytes used by <key> and its value. Nested values are",
                    "    sampled up to <count> times (default: 5, 0 means sample all).",
                ],
            ),
        }
        Flow::Continue
    }

    /// CLIENT PAUSE <timeout> [WRITE|ALL], CLIENT UNPAUSE.
    pub(super) fn client_pause(&mut self, cmd: Cmd, args: &[Bytes]) -> Flow {
        if cmd == Cmd::ClientUnpause {
            self.broker.pause.stop();
            self.ok();
            return Flow::Continue;
        }
        // Redis's order: the arguments' count, the mode, then the timeout.
        if args.len() > 4 {
            self.fail(Error::SubcommandSyntax {
                sub: args[1].clone(),
                container: "client",
            });
            return Flow::Continue;
        }
        let mode = match args.get(3) {
            None => PauseMode::All,
            Some(m) if m.eq_ignore_ascii_case(b"write") => PauseMode::Write,
            Some(m) if m.eq_ignore_ascii_case(b"all") => PauseMode::All,
            Some(_) => {
                self.fail(Error::PauseMode);
                return Flow::Continue;
            }
        };
        let now_ms = unix_now().as_millis() as i64;
        let ms = match Args::new(&args[2..3]).i64() {
            Err(_) => Err(Error::TimeoutNotInteger),
            Ok(n) if n < 0 => Err(Error::TimeoutNegative),
            // The deadline must fit in Redis's milliseconds since the epoch.
            Ok(n) if n > i64::MAX - now_ms => Err(Error::TimeoutOutOfRange),
            Ok(n) => Ok(n),
        };
        let ms = match ms {
            Ok(ms) => ms,
            Err(e) => {
                self.fail(e);
                return Flow::Continue;
            }
        };
        self.broker.pause.start(mode, Duration::from_millis(ms as u64));
        self.ok();
        Flow::Continue
    }
}

/// LATENCY DOCTOR's report, in the words of Redis's `createLatencyReport` for the events
/// fanout records (`command`, `fast-command`).
fn latency_report(
    events: &[(&'static str, crate::stats::latency::Series)],
    threshold: u64,
    slowlog_on: bool,
) -> String {
    use std::fmt::Write;
    if events.is_empty() && threshold == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".into();
    }
    if events.is_empty() {
        return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n".into();
    }
    let now = unix_now().as_secs();
    let mut r = String::from(
        "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n",
    );
    let (mut slow, mut scheduler) = (false, false);
    for (i, (name, s)) in events.iter().enumerate() {
        let n = s.samples.len().max(1) as u64;
        let avg = s.samples.iter().map(|(_, ms)| ms).sum::<u64>() / n;
        let mad = s.samples.iter().map(|(_, ms)| ms.abs_diff(avg)).sum::<u64>() / n;
        let period = now.saturating_sub(s.samples.front().map_or(now, |(t, _)| *t));
        let _ = writeln!(
            r,
            "{}. {name}: {} latency spikes (average {avg}ms, mean deviation {mad}ms, period {:.2} sec). Worst all time event {}ms.",
            i + 1,
            s.samples.len(),
            period as f64 / n as f64,
            s.max
        );
        slow |= *name == "command";
        scheduler |= *name == "fast-command";
    }
    r.push_str("\nI have a few advices for you:\n\n");
    if slow && !slowlog_on {
        r.push_str("- The slow log is disabled, and it can help find what is slow: enable it with CONFIG SET slowlog-log-slower-than <microseconds>.\n");
    }
    if slow {
        r.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
    }
    if scheduler {
        r.push_str("- The system is slow to execute code paths not containing system calls. This usually means the system does not give fanout CPU time to run for long periods. You should try to: 1) Lower the system load. 2) Use a computer / VM just for fanout if you are running other software in the same system. 3) Check if you have a \"noisy neighbour\" problem.\n");
    }
    r
}
