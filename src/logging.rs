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
        tracing_subscriber::registry()
            .with(filter)
            .with(fmt.json())
            .try_init()
    } else {
        tracing_subscriber::registry()
            .with(filter)
            .with(fmt)
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
