//! Linux /proc probes (server CPU and RSS) and the open-files limit, without
//! libc.

use std::sync::OnceLock;

/// Clock ticks per second for /proc/PID/stat utime/stime. Read once with
/// `getconf CLK_TCK`; Linux has used 100 on every mainstream architecture
/// for decades, so that is the fallback.
pub fn clk_tck() -> u64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t: &u64| t > 0)
            .unwrap_or(100)
    })
}

/// A process observed through /proc (the server, or this tool itself).
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    /// `None` means /proc/self.
    pub pid: Option<u32>,
}

impl Probe {
    pub fn server(pid: u32) -> Probe {
        Probe { pid: Some(pid) }
    }

    pub fn this_process() -> Probe {
        Probe { pid: None }
    }

    fn path(&self, file: &str) -> String {
        match self.pid {
            Some(p) => format!("/proc/{p}/{file}"),
            None => format!("/proc/self/{file}"),
        }
    }

    /// utime + stime in microseconds.
    pub fn cpu_us(&self) -> Option<u64> {
        let s = std::fs::read_to_string(self.path("stat")).ok()?;
        // comm (field 2) may contain spaces and parentheses: split after the
        // last ')'. Fields after it start at field 3 (state), so utime (14)
        // and stime (15) are at indices 11 and 12.
        let rest = &s[s.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        Some(ticks * 1_000_000 / clk_tck())
    }

    /// Context switches (voluntary, involuntary) summed over the process's
    /// threads (`/proc/PID/task/*/status`: a thread's own counters; the
    /// process-level status file shows the main thread's only). Threads that
    /// exited are no longer counted.
    pub fn ctxt_switches(&self) -> Option<(u64, u64)> {
        let dir = std::fs::read_dir(self.path("task")).ok()?;
        let (mut vol, mut invol, mut any) = (0u64, 0u64, false);
        for e in dir.flatten() {
            let Ok(s) = std::fs::read_to_string(e.path().join("status")) else {
                continue; // the thread exited meanwhile
            };
            let field = |name: &str| {
                s.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            if let (Some(v), Some(n)) = (field("voluntary_ctxt_switches:"), field("nonvoluntary_ctxt_switches:")) {
                vol += v;
                invol += n;
                any = true;
            }
        }
        any.then_some((vol, invol))
    }

    /// Resident set size (VmRSS) in bytes.
    pub fn rss_bytes(&self) -> Option<u64> {
        let s = std::fs::read_to_string(self.path("status")).ok()?;
        let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    /// (soft, hard) "Max open files"; `None` for unlimited.
    pub fn nofile(&self) -> Option<(Option<u64>, Option<u64>)> {
        let s = std::fs::read_to_string(self.path("limits")).ok()?;
        let line = s.lines().find(|l| l.starts_with("Max open files"))?;
        let mut it = line["Max open files".len()..].split_whitespace();
        let p = |x: Option<&str>| x.and_then(|v| v.parse::<u64>().ok());
        Some((p(it.next()), p(it.next())))
    }

    pub fn exists(&self) -> bool {
        std::path::Path::new(&self.path("stat")).exists()
    }
}

/// Makes sure this process may open `needed` descriptors. Raises the soft
/// limit up to the hard limit with util-linux `prlimit` if needed (no libc
/// dependency); otherwise fails with a clear message.
pub fn ensure_nofile(needed: u64) -> Result<(), String> {
    let me = Probe::this_process();
    let Some((soft, hard)) = me.nofile() else {
        return Ok(());
    };
    let ok = |l: Option<u64>| l.is_none_or(|l| l >= needed);
    if ok(soft) {
        return Ok(());
    }
    if ok(hard) {
        let target = hard.map_or("unlimited".to_string(), |h| h.to_string());
        let _ = std::process::Command::new("prlimit")
            .arg(format!("--pid={}", std::process::id()))
            .arg(format!("--nofile={target}:{target}"))
            .status();
        if let Some((soft2, _)) = me.nofile() {
            if ok(soft2) {
                eprintln!(
                    "note: raised this process's open-files soft limit from {} to {target}",
                    soft.unwrap_or(0)
                );
                return Ok(());
            }
        }
    }
    Err(format!(
        "this run needs about {needed} open files but the limit is {} (hard {}); \
         run `ulimit -n 65536` (as root, or raise the hard limit) in the shell first",
        soft.map_or("unlimited".into(), |v| v.to_string()),
        hard.map_or("unlimited".into(), |v| v.to_string()),
    ))
}

/// Warns when the server's own open-files limit looks too low.
pub fn warn_server_nofile(pid: u32, needed: u64) {
    if let Some((Some(soft), _)) = Probe::server(pid).nofile() {
        if soft < needed {
            eprintln!(
                "warning: server pid {pid} may open only {soft} files but this run makes \
                 about {needed} connections; raise its limit (ulimit -n) before starting it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_probe() {
        let p = Probe::this_process();
        assert!(p.cpu_us().is_some());
        assert!(p.rss_bytes().unwrap() > 0);
        assert!(p.nofile().is_some());
        let (v, n) = p.ctxt_switches().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let (v2, n2) = p.ctxt_switches().unwrap();
        assert!(v2 + n2 > v + n, "sleeping switches out");
    }
}
