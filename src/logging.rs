//! Logging through `tracing`. Redis's `loglevel` maps onto tracing levels; `RUST_LOG`,
//! when set, takes precedence. The level can be changed at run time (CONFIG SET loglevel).

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

/// Installs the global subscriber. `format` is `text` or `json`. Safe to call twice
/// (the second call does nothing), which tests rely on.
pub fn init(loglevel: &str, format: &str) {
    use tracing_subscriber::prelude::*;
    let (filter, handle) = reload::Layer::new(filter_for(loglevel));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let result = if format == "json" {
        tracing_subscriber::registry().with(filter).with(fmt.json()).try_init()
    } else {
        tracing_subscriber::registry().with(filter).with(fmt).try_init()
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
