//! Logging through `tracing`. Redis's `loglevel` maps onto tracing levels; `RUST_LOG`,
//! when set, takes precedence. The level can be changed at run time (CONFIG SET loglevel).
//! The text format is coloured only when stderr is a terminal and `NO_COLOR` is unset.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::{reload, EnvFilter, Registry};

static RELOAD: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Redis level name -> tracing filter.
fn filter_for(loglevel: &str) -> EnvFilter {
    if let Ok(f) = EnvFilter::try_from_default_env() {
        return f;
    }
    let level = match loglevel {
        "debug" => "trace",
        "verbose" => "debug",
        "warning" => "warn",
        "nothing" => "off",
        _ => "info",
    };
    EnvFilter::new(level)
}

/// Whether text logs are coloured: only for a person at a terminal, since escape codes are
/// noise in a file or `docker logs`; and never when `NO_COLOR` is set to anything but the
/// empty string (https://no-color.org).
fn colour(stderr_is_terminal: bool, no_color: Option<OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber. `format` is `text` or `json`. Safe to call twice
/// (the second call does nothing), which tests rely on.
pub fn init(loglevel: &str, format: &str) {
    use tracing_subscriber::prelude::*;
    let (filter, handle) = reload::Layer::new(filter_for(loglevel));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let result = if format == "json" {
        tracing_subscriber::registry().with(filter).with(fmt.json()).try_init()
    } else {
        let ansi = colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR"));
        tracing_subscriber::registry()
            .with(filter)
            .with(fmt.with_ansi(ansi))
            .try_init()
    };
    if result.is_ok() {
        let _ = RELOAD.set(handle);
    }
}

/// Applies a new `loglevel` (CONFIG SET).
pub fn set_log_level(loglevel: &str) {
    if let Some(h) = RELOAD.get() {
        let _ = h.reload(filter_for(&loglevel.to_ascii_lowercase()));
    }
}

/// Lets a kind of warning through at most `per_second` times a second, so a flood (a
/// thousand slow subscribers disconnected at once) cannot flood the log. What it holds
/// back is counted and reported with the next line it lets through.
pub struct RateLimit {
    per_second: u64,
    window: std::sync::atomic::AtomicU64,
    used: std::sync::atomic::AtomicU64,
    suppressed: std::sync::atomic::AtomicU64,
}

impl RateLimit {
    pub const fn new(per_second: u64) -> RateLimit {
        use std::sync::atomic::AtomicU64;
        RateLimit {
            per_second,
            window: AtomicU64::new(0),
            used: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` if a line may be written now, `n` being how many were held back since
    /// the last one; `None` if this one must be held back.
    pub fn allow(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.window.swap(now, Relaxed) != now {
            self.used.store(0, Relaxed);
        }
        if self.used.fetch_add(1, Relaxed) < self.per_second {
            Some(self.suppressed.swap(0, Relaxed))
        } else {
            self.suppressed.fetch_add(1, Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
        assert!(!colour(false, Some("".into())));
    }
}
