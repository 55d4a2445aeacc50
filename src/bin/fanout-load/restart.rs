//! `restart`: how long a server takes to come back with N stream entries in its
//! append-only file. fanout and redis-server alternate, each run on a fresh folder with
//! the same entries and the same settings (`appendonly yes`, `appendfsync everysec`,
//! redis with `aof-use-rdb-preamble no` so both replay commands). Optionally the files
//! are rewritten first (`--rewrite`: the entries are then in a base file).
//!
//! The time is from spawning the process to its first PING reply, polled every 2 ms;
//! the entries are counted afterwards (XLEN) to make sure everything came back.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::net::{self, Target};
use crate::streams::{fill, Ctl, V};

pub struct RestartArgs {
    pub entries: u64,
    pub streams: u64,
    pub payload: usize,
    pub rewrite: bool,
    pub runs: usize,
    pub fanout: (PathBuf, u16),
    pub redis: (PathBuf, u16),
    pub host: String,
    /// `--client-threads`, named in the output.
    pub client_threads: usize,
}

struct Measure {
    secs: f64,
    aof_bytes: u64,
    rss_kb: u64,
}

pub async fn run(a: RestartArgs) -> Result<String, String> {
    let mut results: [Vec<Measure>; 2] = [Vec::new(), Vec::new()];
    for run in 0..a.runs.max(1) {
        for (i, name) in ["fanout", "redis"].into_iter().enumerate() {
            let (bin, port) = if i == 0 { &a.fanout } else { &a.redis };
            let m = one(&a, name, bin, *port, run).await?;
            eprintln!(
                "run {run} {name}: {:.3} s to answer PING with {} entries ({} MB of AOF, RSS {} MB)",
                m.secs,
                a.entries,
                m.aof_bytes >> 20,
                m.rss_kb >> 10
            );
            results[i].push(m);
        }
    }
    let med = |v: &mut Vec<Measure>| {
        v.sort_by(|x, y| x.secs.total_cmp(&y.secs));
        (v[v.len() / 2].secs, v[v.len() / 2].aof_bytes, v[v.len() / 2].rss_kb)
    };
    let (f, fb, frss) = med(&mut results[0]);
    let (r, rb, rrss) = med(&mut results[1]);
    Ok(format!(
        "restart with {} entries ({} streams, {} B values{}), median of {}, client threads {}:\n  fanout {f:.3} s (AOF {} MB, RSS {} MB)\n  redis  {r:.3} s (AOF {} MB, RSS {} MB)\n  fanout/redis time {:.2}x\n{{\"scenario\":\"restart\",\"entries\":{},\"rewrite\":{},\"client_threads\":{},\"fanout_secs\":{f:.4},\"redis_secs\":{r:.4},\"ratio\":{:.3}}}\n",
        a.entries,
        a.streams,
        a.payload,
        if a.rewrite { ", after BGREWRITEAOF" } else { "" },
        a.runs.max(1),
        a.client_threads,
        fb >> 20,
        frss >> 10,
        rb >> 20,
        rrss >> 10,
        f / r,
        a.entries,
        a.rewrite,
        a.client_threads,
        f / r
    ))
}

async fn one(a: &RestartArgs, name: &'static str, bin: &PathBuf, port: u16, run: usize) -> Result<Measure, String> {
    let t = Target {
        host: a.host.clone(),
        port,
        connect_timeout: Duration::from_secs(5),
    };
    let dir = std::env::temp_dir().join(format!("fanout-load-restart-{name}-{}-{run}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let cleanup = DirGuard(dir.clone());
    let mut args: Vec<String> = ["--port", &port.to_string(), "--bind", &a.host, "--dir"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(dir.display().to_string());
    args.extend(["--appendonly", "yes", "--appendfsync", "everysec"].map(String::from));
    if name == "redis" {
        args.extend(["--save", "", "--aof-use-rdb-preamble", "no"].map(String::from));
    }
    // Fill.
    {
        let mut child = spawn(bin, &args, &dir)?;
        wait_ping(&t, &mut child, Duration::from_secs(10)).await?;
        let per = a.entries / a.streams.max(1);
        for s in 0..a.streams.max(1) {
            let n = if s + 1 == a.streams.max(1) {
                a.entries - per * s
            } else {
                per
            };
            fill(&t, &format!("bench:r:{s}"), n, a.payload, Duration::from_secs(600)).await?;
        }
        let mut ctl = Ctl::open(&t, Duration::from_secs(60)).await?;
        if a.rewrite {
            ctl.ok(&["BGREWRITEAOF"]).await?;
            let deadline = Instant::now() + Duration::from_secs(300);
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let busy = ctl.info("persistence", "aof_rewrite_in_progress").await?.unwrap_or(0)
                    + ctl.info("persistence", "aof_rewrite_scheduled").await?.unwrap_or(0);
                if busy == 0 {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("{name}: BGREWRITEAOF still running after 300 s"));
                }
            }
        }
        let _ = ctl.call(&["SHUTDOWN"]).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(_)) = child.0.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("{name} did not exit after SHUTDOWN"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let aof_bytes = dir_size(&dir.join("appendonlydir"));
    // Restart, timed.
    let t0 = Instant::now();
    let mut child = spawn(bin, &args, &dir)?;
    wait_ping(&t, &mut child, Duration::from_secs(600)).await?;
    let secs = t0.elapsed().as_secs_f64();
    let mut ctl = Ctl::open(&t, Duration::from_secs(60)).await?;
    let mut total = 0u64;
    for s in 0..a.streams.max(1) {
        if let V::Int(n) = ctl.ok(&["XLEN", &format!("bench:r:{s}")]).await? {
            total += n as u64;
        }
    }
    if total != a.entries {
        return Err(format!("{name} came back with {total} entries, not {}", a.entries));
    }
    let rss_kb = crate::sys::Probe::server(child.0.id()).rss_bytes().unwrap_or(0) >> 10;
    drop(child);
    drop(cleanup);
    Ok(Measure {
        secs,
        aof_bytes,
        rss_kb,
    })
}

/// The started server; killed on drop.
struct Kid(std::process::Child);

impl Drop for Kid {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

struct DirGuard(PathBuf);

impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn spawn(bin: &PathBuf, args: &[String], dir: &std::path::Path) -> Result<Kid, String> {
    let log = std::fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map(Kid)
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))
}

async fn wait_ping(t: &Target, child: &mut Kid, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(st)) = child.0.try_wait() {
            return Err(format!("server exited at start ({st})"));
        }
        if net::ping(t).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("no PING reply within {limit:?}"));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}
