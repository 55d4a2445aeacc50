//! `compare`: the same scenario alternated between a fanout server and a
//! redis-server, medians per server and fanout/redis ratios.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::net::{self, Target};
use crate::report::{self, json_str, Report, Val};
use crate::scenarios::Opts;

/// A server process this tool started; killed (exactly this child) on drop.
pub struct ChildGuard {
    name: &'static str,
    child: Child,
    pub log: String,
}

impl ChildGuard {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        eprintln!("stopped {} (pid {})", self.name, self.child.id());
    }
}

/// Starts `path args...`, logs to /tmp, waits until it answers PING.
pub async fn start_server(
    name: &'static str,
    path: &PathBuf,
    args: &[String],
    t: &Target,
) -> Result<ChildGuard, String> {
    if net::ping(t).await.is_ok() {
        return Err(format!(
            "something already answers on {}:{}; refusing to start {name} there",
            t.host, t.port
        ));
    }
    let log = format!("/tmp/fanout-load-{name}-{}.log", t.port);
    let f = std::fs::File::create(&log).map_err(|e| format!("{log}: {e}"))?;
    let f2 = f.try_clone().map_err(|e| e.to_string())?;
    let child = Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(f)
        .stderr(f2)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
    let mut g = ChildGuard { name, child, log };
    eprintln!(
        "started {name}: {} {} (pid {}, log {})",
        path.display(),
        args.join(" "),
        g.pid(),
        g.log
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(st)) = g.child.try_wait() {
            return Err(format!("{name} exited at start ({st}); see {}", g.log));
        }
        if net::ping(t).await.is_ok() {
            return Ok(g);
        }
        if Instant::now() > deadline {
            return Err(format!("{name} did not answer PING within 10 s; see {}", g.log));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub struct Side {
    pub name: &'static str,
    pub port: u16,
    pub pid: Option<u32>,
}

/// Per-figure values of one server across runs.
fn values(reports: &[Report], key: &str) -> Vec<f64> {
    reports
        .iter()
        .filter_map(|r| r.get(key).and_then(Val::as_f64))
        .collect()
}

/// Per-run non-numeric values (strings, booleans) of one server.
fn texts(reports: &[Report], key: &str) -> Vec<Val> {
    reports
        .iter()
        .filter_map(|r| match r.get(key) {
            Some(v @ (Val::Str(_) | Val::Bool(_))) => Some(v.clone()),
            _ => None,
        })
        .collect()
}

fn joined(v: &[Val]) -> String {
    v.iter().map(Val::human).collect::<Vec<_>>().join(",")
}

/// Runs `run` alternately on both sides `runs` times; returns the table and
/// the JSON line.
pub async fn compare<F, Fut>(
    base: &Opts,
    sides: [Side; 2],
    runs: usize,
    pause: Duration,
    mut run: F,
) -> Result<(String, String), String>
where
    F: FnMut(Opts) -> Fut,
    Fut: std::future::Future<Output = Result<Report, String>>,
{
    let mut results: [Vec<Report>; 2] = [Vec::new(), Vec::new()];
    let mut failures = 0;
    for i in 0..runs {
        for (s, side) in sides.iter().enumerate() {
            if i + s > 0 {
                tokio::time::sleep(pause).await;
            }
            let mut o = base.clone();
            o.target.port = side.port;
            o.server_pid = side.pid;
            eprintln!("== run {}/{runs} on {} (port {})", i + 1, side.name, side.port);
            match run(o).await {
                Ok(r) => {
                    eprintln!("{}", r.json());
                    results[s].push(r);
                }
                Err(e) => {
                    eprintln!("   run failed: {e}");
                    failures += 1;
                }
            }
        }
    }
    if results.iter().any(|r| r.is_empty()) {
        return Err("no successful run on at least one server".into());
    }
    let first = &results[0][0];
    let mut table = String::new();
    let mut json = String::from("{\"mode\":\"compare\"");
    let _ = write!(
        json,
        ",\"runs\":{runs},\"failed_runs\":{failures},\"fanout_port\":{},\"redis_port\":{}",
        sides[0].port, sides[1].port
    );
    let _ = writeln!(
        table,
        "compare: {runs} run(s) per server, fanout port {}, redis port {}{}",
        sides[0].port,
        sides[1].port,
        if failures > 0 {
            format!(", {failures} failed run(s)")
        } else {
            String::new()
        }
    );
    for e in first.entries.iter().filter(|e| e.param && e.key != "port") {
        json.push(',');
        json_str(&mut json, e.key);
        json.push(':');
        report::val_json(&mut json, &e.val);
        let shown = match &e.val {
            Val::Int(i) => i.to_string(),
            v => v.human(),
        };
        let _ = writeln!(table, "  {} = {}", e.key, shown);
    }
    let figs: Vec<&'static str> = first.entries.iter().filter(|e| !e.param).map(|e| e.key).collect();
    let w = figs.iter().map(|k| k.len()).max().unwrap_or(6).max(6);
    let _ = writeln!(
        table,
        "  {:<w$}  {:>16}  {:>16}  {:>10}",
        "figure", "fanout (median)", "redis (median)", "fanout/redis"
    );
    let mut parts: [String; 3] = Default::default();
    for key in figs {
        let f = report::median(&mut values(&results[0], key));
        let r = report::median(&mut values(&results[1], key));
        if f.is_none() && r.is_none() {
            let (tf, tr) = (texts(&results[0], key), texts(&results[1], key));
            if tf.is_empty() && tr.is_empty() {
                continue;
            }
            let _ = writeln!(table, "  {key:<w$}  {:>16}  {:>16}", joined(&tf), joined(&tr));
            for (p, t) in parts.iter_mut().zip([tf, tr]) {
                p.push(',');
                json_str(p, key);
                p.push_str(":[");
                for (j, s) in t.iter().enumerate() {
                    if j > 0 {
                        p.push(',');
                    }
                    report::val_json(p, s);
                }
                p.push(']');
            }
            continue;
        }
        let ratio = match (f, r) {
            (Some(f), Some(r)) if r != 0.0 => Some(f / r),
            _ => None,
        };
        let is_int = matches!(first.get(key), Some(Val::Int(_)));
        let show = |v: Option<f64>| {
            v.map_or("-".to_string(), |v| {
                if (is_int && v.fract() == 0.0) || v.abs() >= 10_000.0 {
                    Val::Int(v.round() as i64).human()
                } else if v != 0.0 && v.abs() < 0.1 {
                    // e.g. context switches per delivery
                    format!("{v:.5}")
                } else {
                    format!("{v:.3}")
                }
            })
        };
        let _ = writeln!(
            table,
            "  {key:<w$}  {:>16}  {:>16}  {:>10}",
            show(f),
            show(r),
            ratio.map_or("-".into(), |x| format!("{x:.3}"))
        );
        for (p, v) in parts.iter_mut().zip([f, r, ratio]) {
            p.push(',');
            json_str(p, key);
            p.push(':');
            match v {
                Some(v) => {
                    let _ = write!(p, "{}", (v * 1e6).round() / 1e6);
                }
                None => p.push_str("null"),
            }
        }
    }
    for (name, p) in ["fanout", "redis", "ratio"].iter().zip(parts.iter()) {
        let _ = write!(json, ",\"{name}\":{{{}}}", p.strip_prefix(',').unwrap_or(""));
    }
    json.push('}');
    Ok((table, json))
}
