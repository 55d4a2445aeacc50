//! The `fanout` binary: read the configuration, start logging, serve until SIGINT/SIGTERM.
//!
//! `fanout [config-file] [--directive value ...]`, as `redis-server`: every directive is
//! also a line of the optional config file and an environment variable `FANOUT_<NAME>`
//! (upper case, `-` as `_`). Precedence: command line, environment, file, default.
//!
//! `fanout healthcheck [--host H] [--port N] [--timeout-ms T]` sends a PING and exits 0 on
//! a reply, for container health checks in images that have no redis-cli.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Arg, ArgAction, Command};
use fanout::config::{self, Settings, DIRECTIVES};
use fanout::server::Server;

fn cli() -> Command {
    let mut cmd = Command::new("fanout")
        .version(env!("CARGO_PKG_VERSION"))
        .about("An in-memory pub/sub broker that speaks the Redis protocol")
        .after_help(
            "Every --directive is also a line of the config file (`port 7000`) and an environment \
             variable (FANOUT_PORT=7000). Precedence: command line, environment, file, default.\n\
             `fanout healthcheck [--host H] [--port N] [--timeout-ms T]` pings a running server.",
        )
        .arg(
            Arg::new("config-file")
                .value_name("CONFIG_FILE")
                .help("redis.conf-style file"),
        );
    for d in DIRECTIVES {
        let help = if d.default.is_empty() {
            d.help.to_string()
        } else {
            format!("{} [default: {}]", d.help, d.default)
        };
        let mut arg = Arg::new(d.name)
            .long(d.name)
            .value_name("VALUE")
            .help(help)
            .allow_hyphen_values(true);
        if d.multi {
            arg = arg.num_args(1..).action(ArgAction::Append);
        }
        cmd = cmd.arg(arg);
    }
    cmd
}

/// Builds the settings from defaults, file, environment and command line, in that order,
/// so each later source overrides the earlier ones.
fn load(matches: &clap::ArgMatches) -> Result<(Settings, Option<std::path::PathBuf>), String> {
    let settings = Settings::default();
    let file = matches.get_one::<String>("config-file").map(std::path::PathBuf::from);
    if let Some(path) = &file {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("can't open config file '{}': {e}", path.display()))?;
        let (known, unknown) =
            config::parse_file(&text).map_err(|e| format!("config file '{}': {e}", path.display()))?;
        if !unknown.is_empty() {
            eprintln!(
                "warning: config file '{}': ignoring unknown directives: {}",
                path.display(),
                unknown.join(", ")
            );
        }
        for (k, v) in known {
            settings
                .set(&k, &v)
                .map_err(|e| format!("config file '{}': '{k} {v}': {e}", path.display()))?;
        }
    }
    for d in DIRECTIVES {
        let var = format!("FANOUT_{}", d.name.to_ascii_uppercase().replace('-', "_"));
        if let Ok(v) = std::env::var(&var) {
            settings.set(d.name, &v).map_err(|e| format!("{var}={v}: {e}"))?;
        }
    }
    for d in DIRECTIVES {
        if let Some(values) = matches.get_many::<String>(d.name) {
            let v = values.cloned().collect::<Vec<_>>().join(" ");
            settings.set(d.name, &v).map_err(|e| format!("--{} {v}: {e}", d.name))?;
        }
    }
    Ok((settings, file))
}

fn healthcheck(args: &[String]) -> ExitCode {
    let mut host = "127.0.0.1".to_string();
    let mut port = std::env::var("FANOUT_PORT").unwrap_or_else(|_| "6379".into());
    let mut timeout_ms = 2000u64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match (a.as_str(), it.next()) {
            ("--host", Some(v)) => host = v.clone(),
            ("--port", Some(v)) => port = v.clone(),
            ("--timeout-ms", Some(v)) => timeout_ms = v.parse().unwrap_or(timeout_ms),
            _ => {
                eprintln!("usage: fanout healthcheck [--host H] [--port N] [--timeout-ms T]");
                return ExitCode::from(2);
            }
        }
    }
    let timeout = Duration::from_millis(timeout_ms);
    let target = format!("{host}:{port}");
    let result = (|| -> Result<String, String> {
        let addr = target
            .to_socket_addrs()
            .map_err(|e| e.to_string())?
            .next()
            .ok_or("no address")?;
        let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
        s.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
        s.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&buf[..n]).trim_end().to_string())
    })();
    match result {
        // A server that asks for a password is up and answering.
        Ok(reply) if reply == "+PONG" || reply.starts_with("-NOAUTH") => {
            println!("fanout at {target} is healthy ({reply})");
            ExitCode::SUCCESS
        }
        Ok(reply) => {
            eprintln!("fanout at {target} answered unexpectedly: {reply:?}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("fanout at {target} is not answering: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("healthcheck") {
        return healthcheck(&argv[2..]);
    }
    let matches = cli().get_matches();
    let (settings, file) = match load(&matches) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("*** FATAL CONFIG ERROR *** {e}");
            return ExitCode::FAILURE;
        }
    };
    let settings = Arc::new(settings);
    fanout::logging::init(
        &settings.get("loglevel").unwrap_or_default(),
        &settings.get("log-format").unwrap_or_default(),
    );
    let threads: usize = settings.get("threads").and_then(|t| t.parse().ok()).unwrap_or(0);
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    // One thread: a current-thread runtime, with no cross-thread wake-ups at all.
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let server = match Server::bind(settings.clone(), file.clone()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            addrs = ?server.local_addrs(),
            tls_addrs = ?server.tls_addrs(),
            maxclients = settings.get("maxclients").unwrap_or_default(),
            client_output_buffer_limit = settings.get("client-output-buffer-limit").unwrap_or_default(),
            pubsub_overflow_policy = settings.get("pubsub-overflow-policy").unwrap_or_default(),
            config_file = ?file,
            "fanout ready to accept connections"
        );
        server.run(stop_signal()).await;
        ExitCode::SUCCESS
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        // Without signal handlers we can still serve; we just cannot stop gracefully.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => tracing::info!("received SIGINT, scheduling shutdown"),
        _ = term.recv() => tracing::info!("received SIGTERM, scheduling shutdown"),
    }
}
