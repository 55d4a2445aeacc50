//! The `fanout` binary: read the configuration, start logging, serve until SIGINT/SIGTERM.
//!
//! `fanout [config-file | -] [--directive word ...]...`, read as `redis-server` reads its
//! command line (see [`parse_args`]): every directive is also a line of the optional config
//! file and an environment variable `FANOUT_<NAME>` (upper case, `-` as `_`). Precedence:
//! command line, environment, file, default.
//!
//! `fanout healthcheck [--host H] [--port N] [--timeout-ms T]` sends a PING and exits 0 on
//! a reply, for container health checks in images that have no redis-cli.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use fanout::config::{self, Settings, DIRECTIVES};
use fanout::server::Server;

/// jemalloc, as Redis links it. A message's frame is allocated by the publisher's thread
/// and freed by the writer's, often on the other worker; glibc's malloc then takes the
/// other thread's arena lock for the free, and with 10 busy subscriber connections a
/// fifth of the server's time went to malloc, free and that lock (`perf`). jemalloc cut
/// CPU per delivery by 10-16% there, at the same RSS per idle connection.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Where the config file comes from: `fanout path.conf`, or `fanout -` for stdin.
#[derive(Debug, PartialEq)]
enum ConfigSource {
    File(PathBuf),
    Stdin,
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
enum Invocation {
    Help,
    Version,
    Serve {
        config: Option<ConfigSource>,
        /// `(name, words)` in command-line order: the name as typed, without `--`.
        directives: Vec<(String, Vec<String>)>,
    },
}

/// Groups the arguments (program name excluded) as redis-server does (`main` in its
/// server.c): `[config-file | -] [--name word ...]...`. Each `--name` starts a directive
/// and every following word up to the next `--word` is one of its arguments, so a value of
/// several words needs no quoting (`--bind 127.0.0.1 ::1 --port 7000`) and words such as
/// `-1` or `-` are plain values. The words are joined into a config line later.
fn parse_args(args: &[String]) -> Result<Invocation, String> {
    let (config, rest) = match args.first().map(String::as_str) {
        Some("-h" | "--help") => return Ok(Invocation::Help),
        Some("-v" | "-V" | "--version") => return Ok(Invocation::Version),
        Some("-") => (Some(ConfigSource::Stdin), &args[1..]),
        Some(a) if !a.starts_with('-') => (Some(ConfigSource::File(a.into())), &args[1..]),
        _ => (None, args),
    };
    let mut directives: Vec<(String, Vec<String>)> = Vec::new();
    // As in Redis, a directive's first argument is taken whatever it looks like
    // (`--requirepass --x` sets the password `--x`); only after it does `--` start a new one.
    let mut wants_value = false;
    for arg in rest {
        match arg.strip_prefix("--") {
            Some(spec) if !wants_value => {
                // `"--port 7000"` in one word (a quoted unit-file line) is a name and its
                // value, as Redis reads it.
                let mut words = spec.split_ascii_whitespace().map(str::to_string);
                let name = words.next().unwrap_or_default();
                match name.as_str() {
                    "help" => return Ok(Invocation::Help),
                    "version" => return Ok(Invocation::Version),
                    _ => {}
                }
                let words: Vec<String> = words.collect();
                // A bare `--save` means `save ""`: Redis keeps this for command lines
                // generated from a list of save points that came out empty.
                wants_value = words.is_empty() && !name.eq_ignore_ascii_case("save");
                directives.push((name, words));
            }
            _ => match directives.last_mut() {
                Some((_, words)) => {
                    words.push(arg.clone());
                    wants_value = false;
                }
                None => {
                    return Err(format!(
                        "unexpected argument '{arg}': only the config file may come before the first --directive"
                    ))
                }
            },
        }
    }
    if wants_value {
        if let Some((name, _)) = directives.last() {
            return Err(format!("--{name} needs a value"));
        }
    }
    Ok(Invocation::Serve { config, directives })
}

/// `fanout --help`, written from [`DIRECTIVES`] so it cannot miss one.
fn help() -> String {
    let mut s = String::from(
        "An in-memory pub/sub broker that speaks the Redis protocol\n\n\
         Usage: fanout [CONFIG_FILE | -] [--DIRECTIVE VALUE...]...\n\
         \x20      fanout healthcheck [--host H] [--port N] [--timeout-ms T]\n\
         \x20      fanout --help | --version\n\n\
         As with redis-server, a directive's value is every word up to the next --word\n\
         (`--bind 127.0.0.1 ::1 --port 7000`), and `-` as the config file reads it from stdin.\n\
         Every --directive is also a line of the config file (`port 7000`) and an environment\n\
         variable (FANOUT_PORT=7000). Precedence: command line, environment, file, default.\n\
         `fanout healthcheck` pings a running server and exits 0 when it answers.\n\n\
         Directives:\n",
    );
    for d in DIRECTIVES {
        let value = if d.multi { "<VALUE>..." } else { "<VALUE>" };
        let default = if d.default.is_empty() {
            String::new()
        } else {
            format!(" [default: {}]", d.default)
        };
        s += &format!("  --{} {value}\n          {}{default}\n", d.name, d.help);
    }
    s
}

/// Builds the settings from defaults, file, environment and command line, in that order,
/// so each later source overrides the earlier ones.
fn load(config: Option<&ConfigSource>, directives: &[(String, Vec<String>)]) -> Result<Settings, String> {
    // Command-line names are checked first, so a typo is reported before stdin is read.
    let cli = directives
        .iter()
        .map(|(name, words)| {
            let shown = std::iter::once(format!("--{name}")).chain(words.iter().cloned());
            let shown = shown.collect::<Vec<_>>().join(" ");
            match config::directive(name) {
                Some(d) => Ok((d, words.join(" "), shown)),
                None => Err(format!(
                    "{shown}: unknown directive '{name}' (`fanout --help` lists them)"
                )),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let settings = Settings::default();
    if let Some(source) = config {
        let (what, text) = match source {
            ConfigSource::File(path) => (
                format!("config file '{}'", path.display()),
                std::fs::read_to_string(path)
                    .map_err(|e| format!("can't open config file '{}': {e}", path.display()))?,
            ),
            ConfigSource::Stdin => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| format!("can't read the config from stdin: {e}"))?;
                ("config from stdin".to_string(), text)
            }
        };
        let (known, unknown) = config::parse_file(&text).map_err(|e| format!("{what}: {e}"))?;
        if !unknown.is_empty() {
            eprintln!("warning: {what}: ignoring unknown directives: {}", unknown.join(", "));
        }
        for (k, v) in known {
            settings.set(&k, &v).map_err(|e| format!("{what}: '{k} {v}': {e}"))?;
        }
    }
    for d in DIRECTIVES {
        let var = format!("FANOUT_{}", d.name.to_ascii_uppercase().replace('-', "_"));
        if let Ok(v) = std::env::var(&var) {
            settings.set(d.name, &v).map_err(|e| format!("{var}={v}: {e}"))?;
        }
    }
    for (d, value, shown) in cli {
        settings.set(d.name, &value).map_err(|e| format!("{shown}: {e}"))?;
    }
    Ok(settings)
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

/// Prints a configuration error with Redis's prefix; returns the exit status for it.
fn fatal(e: &str) -> ExitCode {
    eprintln!("*** FATAL CONFIG ERROR *** {e}");
    ExitCode::FAILURE
}

/// Worker threads when `threads` is 0: one per core, except on a machine with two
/// cores or fewer, where one event loop (plus the wake relay) leaves the other core to
/// the network stack and to clients on the same host. Measured on 2 cores against the
/// two-worker runtime (BENCHMARKS.md, issue 15, third rerun): 10,000 channels on 100
/// connections 2x the deliveries at half the CPU each, pipelined fan-outs 1.1x-1.2x;
/// but 8 unpipelined XADD producers 0.8x (each command alone on the one thread).
fn default_threads() -> usize {
    match std::thread::available_parallelism().map_or(1, |n| n.get()) {
        n if n <= 2 => 1,
        n => n,
    }
}

fn main() -> ExitCode {
    let args = match std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(a) => a,
        Err(bad) => return fatal(&format!("argument {bad:?} is not valid UTF-8")),
    };
    let _ = fanout::stats::ALLOCATOR.set("jemalloc-5.3.1");
    if args.first().map(String::as_str) == Some("healthcheck") {
        return healthcheck(&args[1..]);
    }
    let (config, directives) = match parse_args(&args) {
        Ok(Invocation::Help) => {
            print!("{}", help());
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Version) => {
            println!("fanout {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Serve { config, directives }) => (config, directives),
        Err(e) => return fatal(&e),
    };
    let settings = match load(config.as_ref(), &directives) {
        Ok(s) => s,
        Err(e) => return fatal(&e),
    };
    // INFO shows the file's path; a config read from stdin has none.
    let file = match config {
        Some(ConfigSource::File(path)) => Some(path),
        _ => None,
    };
    let settings = Arc::new(settings);
    fanout::logging::init(
        &settings.get("loglevel").unwrap_or_default(),
        &settings.get("log-format").unwrap_or_default(),
    );
    let threads: usize = settings.get("threads").and_then(|t| t.parse().ok()).unwrap_or(0);
    let threads = if threads == 0 { default_threads() } else { threads };
    // One thread: a current-thread event loop, with no cross-thread wake-ups, plus the
    // wake relay for unpipelined publishes to many connections (started below).
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
        if threads == 1 {
            if let Err(e) = server.broker().registry.start_wake_relay() {
                tracing::error!("cannot start the wake relay: {e}");
                return ExitCode::FAILURE;
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &[&str]) -> Result<Invocation, String> {
        parse_args(&line.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    /// `(name, words)` pairs as `parse_args` returns them.
    fn groups(pairs: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        pairs
            .iter()
            .map(|(n, w)| (n.to_string(), w.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    fn serve(config: Option<ConfigSource>, pairs: &[(&str, &[&str])]) -> Result<Invocation, String> {
        Ok(Invocation::Serve {
            config,
            directives: groups(pairs),
        })
    }

    #[test]
    fn words_up_to_the_next_double_dash_belong_to_a_directive() {
        assert_eq!(parse(&[]), serve(None, &[]));
        assert_eq!(
            parse(&["--bind", "127.0.0.1", "::1", "--port", "7000"]),
            serve(None, &[("bind", &["127.0.0.1", "::1"]), ("port", &["7000"])])
        );
        assert_eq!(
            parse(&[
                "--client-output-buffer-limit",
                "pubsub",
                "32mb",
                "8mb",
                "60",
                "--port",
                "7000"
            ]),
            serve(
                None,
                &[
                    ("client-output-buffer-limit", &["pubsub", "32mb", "8mb", "60"]),
                    ("port", &["7000"])
                ]
            )
        );
        assert_eq!(
            parse(&["--save", "", "--appendonly", "no"]),
            serve(None, &[("save", &[""]), ("appendonly", &["no"])])
        );
    }

    #[test]
    fn single_dash_words_are_values() {
        assert_eq!(
            parse(&["--maxclients", "-1", "--requirepass", "-", "-x"]),
            serve(None, &[("maxclients", &["-1"]), ("requirepass", &["-", "-x"])])
        );
    }

    #[test]
    fn a_first_argument_is_taken_whatever_it_looks_like() {
        assert_eq!(
            parse(&["--requirepass", "--secret", "--port", "1"]),
            serve(None, &[("requirepass", &["--secret"]), ("port", &["1"])])
        );
        // ...except after a bare --save, which means `save ""`.
        assert_eq!(
            parse(&["--save", "--port", "1"]),
            serve(None, &[("save", &[]), ("port", &["1"])])
        );
        assert_eq!(
            parse(&["--port", "1", "--save"]),
            serve(None, &[("port", &["1"]), ("save", &[])])
        );
        assert_eq!(parse(&["--port"]), Err("--port needs a value".to_string()));
    }

    #[test]
    fn name_and_value_in_one_word() {
        assert_eq!(
            parse(&["--port 7000", "--bind 127.0.0.1 ::1"]),
            serve(None, &[("port", &["7000"]), ("bind", &["127.0.0.1", "::1"])])
        );
    }

    #[test]
    fn config_file_comes_first() {
        assert_eq!(
            parse(&["fanout.conf", "--port", "7000"]),
            serve(Some(ConfigSource::File("fanout.conf".into())), &[("port", &["7000"])])
        );
        assert_eq!(
            parse(&["-", "--port", "7"]),
            serve(Some(ConfigSource::Stdin), &[("port", &["7"])])
        );
        assert!(parse(&["a.conf", "b.conf"]).unwrap_err().contains("'b.conf'"));
        assert!(parse(&["-x"]).is_err());
    }

    #[test]
    fn help_and_version() {
        for h in ["-h", "--help"] {
            assert_eq!(parse(&[h]), Ok(Invocation::Help));
        }
        for v in ["-v", "-V", "--version"] {
            assert_eq!(parse(&[v]), Ok(Invocation::Version));
        }
        assert_eq!(parse(&["--port", "1", "--help"]), Ok(Invocation::Help));
        assert_eq!(parse(&["a.conf", "--version"]), Ok(Invocation::Version));
    }

    #[test]
    fn unknown_directives_and_bad_values_are_refused_with_the_words_given() {
        let directives = groups(&[("port", &["0"]), ("daemonize", &["no"])]);
        let e = load(None, &directives).err().unwrap();
        assert!(e.contains("--daemonize no") && e.contains("unknown directive"), "{e}");
        let directives = groups(&[("maxclients", &["-1"])]);
        let e = load(None, &directives).err().unwrap();
        assert!(e.starts_with("--maxclients -1:"), "{e}");
        let directives = groups(&[("client-output-buffer-limit", &["pubsub", "1mb", "512kb", "10"])]);
        let s = load(None, &directives).unwrap();
        assert!(s
            .get("client-output-buffer-limit")
            .unwrap()
            .ends_with("pubsub 1048576 524288 10"));
    }
}
