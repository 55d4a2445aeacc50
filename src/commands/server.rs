//! Server commands: INFO, CONFIG, COMMAND.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::errors::Error;
use super::{Flow, Session};
use crate::config::DIRECTIVES;
use crate::glob;
use crate::protocol::reply::Encoder;
use crate::pubsub::Namespace;
use crate::spec::{self as table, Arg, Begin, Cmd, Find, KeySpec, Spec};
use crate::stats::Stats;

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];

impl Session {
    pub(super) fn info(&mut self, args: &[Bytes]) -> Flow {
        let mut wanted: Vec<String> = args[1..]
            .iter()
            .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
            .collect();
        if wanted.is_empty() || wanted.iter().any(|w| w == "default") {
            wanted.retain(|w| w != "default");
            wanted.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string()));
        }
        if wanted.iter().any(|w| w == "all" || w == "everything") {
            wanted = DEFAULT_SECTIONS.iter().map(|s| s.to_string()).collect();
            wanted.push("commandstats".into());
            wanted.push("latencystats".into());
        }
        // Read through the session (inside EXEC it already holds the keyspace).
        let ks = self.with_keys(|s, ks| KeyspaceInfo::of(&s.broker, ks));
        let mut text = String::new();
        for section in DEFAULT_SECTIONS.iter().chain(["commandstats", "latencystats"].iter()) {
            if wanted.iter().any(|w| w == section) {
                if !text.is_empty() {
                    text.push_str("\r\n");
                }
                self.info_section(section, &mut text, &ks);
            }
        }
        self.reply().verbatim(text.as_bytes());
        Flow::Continue
    }

    fn info_section(&self, section: &str, t: &mut String, ks: &KeyspaceInfo) {
        let b = &self.broker;
        let st = &b.stats;
        let uptime = b.started.elapsed().as_secs();
        let (rss, cpu_user, cpu_sys) = crate::stats::process_usage();
        let title = {
            let mut c = section.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        };
        let _ = write!(t, "# {title}\r\n");
        let mut kv = |k: &str, v: &dyn std::fmt::Display| {
            let _ = write!(t, "{k}:{v}\r\n");
        };
        match section {
            "server" => {
                kv("redis_version", &crate::REDIS_VERSION);
                kv("fanout_version", &env!("CARGO_PKG_VERSION"));
                kv("redis_git_sha1", &"00000000");
                kv("redis_git_dirty", &0);
                kv("redis_build_id", &"fanout");
                kv("redis_mode", &if b.cluster.enabled { "cluster" } else { "standalone" });
                kv("os", &format!("{} {}", std::env::consts::OS, std::env::consts::ARCH));
                kv("arch_bits", &(usize::BITS));
                kv("multiplexing_api", &"epoll");
                kv("process_id", &std::process::id());
                kv("process_supervised", &"no");
                kv("run_id", &b.run_id);
                kv("tcp_port", &b.tcp_port.load(Relaxed));
                kv(
                    "server_time_usec",
                    &std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_micros()),
                );
                kv("uptime_in_seconds", &uptime);
                kv("uptime_in_days", &(uptime / 86400));
                kv("hz", &10);
                kv("configured_hz", &10);
                kv(
                    "executable",
                    &std::env::current_exe()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                );
                kv(
                    "config_file",
                    &b.config_file
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                );
            }
            "clients" => {
                let clients = b.clients.all();
                let pubsub = clients.iter().filter(|c| c.is_pubsub()).count();
                let max_out = clients.iter().map(|c| c.outbox.usage().0).max().unwrap_or(0);
                kv("connected_clients", &clients.len());
                kv("cluster_connections", &0);
                kv("maxclients", &b.settings.maxclients.load(Relaxed));
                kv("client_recent_max_input_buffer", &0);
                kv("client_recent_max_output_buffer", &max_out);
                kv("blocked_clients", &ks.blocked);
                kv("tracking_clients", &0);
                kv("pubsub_clients", &pubsub);
                kv("clients_in_timeout_table", &0);
            }
            "memory" => {
                kv("used_memory", &ks.used_memory);
                kv("used_memory_human", &human(ks.used_memory));
                kv("used_memory_rss", &rss);
                kv("used_memory_rss_human", &human(rss));
                kv("used_memory_peak", &rss);
                kv("maxmemory", &b.settings.maxmemory.load(Relaxed));
                kv(
                    "maxmemory_policy",
                    &b.settings.get("maxmemory-policy").unwrap_or_default(),
                );
                kv("mem_allocator", crate::stats::ALLOCATOR.get().unwrap_or(&"libc"));
            }
            "persistence" => {
                // Redis's fields; the rdb ones describe a server that never saves an RDB.
                let a = &self.broker.aof.stats;
                let flag = |b: &std::sync::atomic::AtomicBool| b.load(Relaxed) as u8;
                let status = |ok: bool| if ok { "ok" } else { "err" };
                kv("loading", &flag(&a.loading));
                kv("async_loading", &0);
                kv("rdb_changes_since_last_save", &0);
                kv("rdb_bgsave_in_progress", &0);
                kv("rdb_last_save_time", &self.last_save_time());
                kv("rdb_last_bgsave_status", &"ok");
                kv("rdb_last_bgsave_time_sec", &-1);
                kv("rdb_current_bgsave_time_sec", &-1);
                kv("rdb_saves", &0);
                kv("aof_enabled", &flag(&a.enabled));
                kv("aof_rewrite_in_progress", &flag(&a.rewrite_in_progress));
                kv("aof_rewrite_scheduled", &flag(&a.rewrite_scheduled));
                kv("aof_last_rewrite_time_sec", &a.last_rewrite_secs.load(Relaxed));
                let current = if a.rewrite_in_progress.load(Relaxed) {
                    (crate::keyspace::now_ms().saturating_sub(a.rewrite_started_ms.load(Relaxed)) / 1000) as i64
                } else {
                    -1
                };
                kv("aof_current_rewrite_time_sec", &current);
                kv("aof_last_bgrewrite_status", &status(a.last_bgrewrite_ok.load(Relaxed)));
                kv("aof_rewrites", &a.rewrites.load(Relaxed));
                kv(
                    "aof_rewrites_consecutive_failures",
                    &a.rewrites_consecutive_failures.load(Relaxed),
                );
                kv("aof_last_write_status", &status(a.last_write_ok.load(Relaxed)));
                kv("aof_last_cow_size", &0);
                if a.enabled.load(Relaxed) {
                    kv("aof_current_size", &a.current_size.load(Relaxed));
                    kv("aof_base_size", &a.base_size.load(Relaxed));
                    kv("aof_pending_rewrite", &flag(&a.rewrite_scheduled));
                    kv("aof_buffer_length", &ks.aof_buffer);
                    kv("aof_pending_bio_fsync", &0);
                    kv("aof_delayed_fsync", &a.delayed_fsync.load(Relaxed));
                }
            }
            "stats" => {
                kv("total_connections_received", &Stats::get(&st.connections_received));
                kv("total_commands_processed", &Stats::get(&st.commands_processed));
                let inst = &st.instantaneous;
                kv("instantaneous_ops_per_sec", &inst.ops_per_sec.load(Relaxed));
                let kbps = |v: &std::sync::atomic::AtomicU64| format!("{:.2}", v.load(Relaxed) as f64 / 100.0);
                kv("instantaneous_input_kbps", &kbps(&inst.input_kbps_x100));
                kv("instantaneous_output_kbps", &kbps(&inst.output_kbps_x100));
                kv("total_net_input_bytes", &Stats::get(&st.net_input_bytes));
                kv("total_net_output_bytes", &Stats::get(&st.net_output_bytes));
                kv("rejected_connections", &Stats::get(&st.rejected_connections));
                kv("expired_keys", &ks.expired);
                kv("evicted_keys", &0);
                kv("evicted_clients", &0);
                kv("keyspace_hits", &ks.hits);
                kv("keyspace_misses", &ks.misses);
                kv("pubsub_channels", &b.registry.channel_count(Namespace::Global));
                kv("pubsub_patterns", &b.registry.patterns.len());
                kv("pubsubshard_channels", &b.registry.channel_count(Namespace::Shard));
                kv("total_error_replies", &Stats::get(&st.error_replies));
                kv(
                    "client_query_buffer_limit_disconnections",
                    &Stats::get(&st.qbuf_limit_disconnections),
                );
                kv(
                    "client_output_buffer_limit_disconnections",
                    &Stats::get(&st.obuf_limit_disconnections),
                );
                kv("pubsub_published_messages", &Stats::get(&st.messages_published));
                kv("pubsub_delivered_messages", &Stats::get(&st.messages_delivered));
                kv("pubsub_dropped_messages", &Stats::get(&st.messages_dropped));
                kv("auth_failures", &Stats::get(&st.auth_failures));
                kv("io_threads_active", &u8::from(b.registry.has_wake_relay()));
                let (delivered, failed) = b.webhooks.totals();
                kv("webhooks", &b.webhooks.len());
                kv("webhook_deliveries", &delivered);
                kv("webhook_failures", &failed);
            }
            "replication" => {
                kv("role", &"master");
                kv("connected_slaves", &0);
                kv("master_replid", &b.run_id);
                kv("master_repl_offset", &0);
            }
            "cpu" => {
                kv("used_cpu_sys", &format!("{cpu_sys:.6}"));
                kv("used_cpu_user", &format!("{cpu_user:.6}"));
            }
            "cluster" => {
                kv("cluster_enabled", &(b.cluster.enabled as u8));
                // fanout's own: the NATS bus between nodes, when there is one.
                if let Some(bus) = b.cluster.bus() {
                    let n = bus.nats().stats();
                    let get = |c: &std::sync::atomic::AtomicU64| c.load(Relaxed);
                    kv("cluster_bus_connected", &(n.connected as u8));
                    kv("cluster_bus_server", &n.server);
                    kv("cluster_bus_connects", &n.connects);
                    kv("cluster_bus_disconnects", &n.disconnects);
                    kv("cluster_bus_subscriptions", &bus.subscriptions());
                    kv("cluster_bus_messages_sent", &get(&bus.stats.sent));
                    kv("cluster_bus_messages_received", &get(&bus.stats.received));
                    kv("cluster_bus_dropped_messages", &(get(&bus.stats.dropped) + n.lost_out));
                    kv("cluster_bus_refused_too_large", &get(&bus.stats.too_large));
                    kv("cluster_bus_duplicates_skipped", &get(&bus.stats.duplicates));
                    kv("cluster_bus_bytes_sent", &n.bytes_out);
                    kv("cluster_bus_bytes_received", &n.bytes_in);
                    kv("cluster_bus_pending_bytes", &n.pending_bytes);
                    kv("cluster_bus_max_payload", &n.max_payload);
                    kv("cluster_bus_peers_heard", &bus.peers_heard());
                    kv("cluster_bus_topology_mismatches", &get(&bus.stats.topology_mismatches));
                    kv("cluster_bus_last_error", &n.last_error);
                }
            }
            "keyspace" => {
                for (i, keys, expires, avg_ttl) in &ks.dbs {
                    kv(
                        &format!("db{i}"),
                        &format_args!("keys={keys},expires={expires},avg_ttl={avg_ttl}"),
                    );
                }
            }
            "commandstats" => {
                for (name, f) in st.command_calls.snapshot() {
                    if f.calls + f.rejected + f.failed > 0 {
                        let per_call = if f.calls > 0 {
                            f.usec as f64 / f.calls as f64
                        } else {
                            0.0
                        };
                        kv(
                            &format!("cmdstat_{name}"),
                            &format_args!(
                                "calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}",
                                f.calls, f.usec, f.rejected, f.failed
                            ),
                        );
                    }
                }
            }
            "errorstats" => {
                for (code, n) in st.errors.snapshot() {
                    kv(
                        &format!("errorstat_{}", String::from_utf8_lossy(&code)),
                        &format_args!("count={n}"),
                    );
                }
            }
            "latencystats" => {
                let ps = b
                    .settings
                    .get("latency-tracking-info-percentiles")
                    .and_then(|v| crate::config::parse_percentiles(&v).ok())
                    .unwrap_or_default();
                for (name, values) in st.command_calls.percentiles(&ps) {
                    let fields: Vec<String> = ps.iter().zip(values).map(|(p, v)| format!("p{p}={v}.000")).collect();
                    kv(&format!("latency_percentiles_usec_{name}"), &fields.join(","));
                }
            }
            _ => {}
        }
    }

    pub(super) fn config_command(&mut self, cmd: Cmd, args: &[Bytes]) -> Flow {
        match cmd {
            Cmd::ConfigGet => {
                // (name as shown, directive, value); a name asked for without glob
                // characters is shown as the client wrote it, as Redis does.
                let mut pairs: Vec<(Vec<u8>, &str, String)> = Vec::new();
                for pattern in &args[2..] {
                    let literal = !pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
                    for d in DIRECTIVES {
                        let seen = pairs.iter().any(|(_, n, _)| *n == d.name);
                        if !seen && glob::matches_nocase(pattern, d.name.as_bytes()) {
                            let shown = if literal {
                                pattern.to_vec()
                            } else {
                                d.name.as_bytes().to_vec()
                            };
                            pairs.push((shown, d.name, self.broker.settings.get(d.name).unwrap_or_default()));
                        }
                    }
                }
                let mut e = self.reply();
                e.map(pairs.len());
                for (k, _, v) in pairs {
                    e.bulk(&k);
                    e.bulk(v.as_bytes());
                }
            }
            Cmd::ConfigSet => self.config_set(&args[2..]),
            Cmd::ConfigResetstat => {
                self.broker.stats.reset();
                self.with_keys(|_, ks| (ks.hits, ks.misses, ks.expired) = (0, 0, 0));
                self.ok();
            }
            _ => self.help(
                "CONFIG",
                &[
                    "GET <pattern>",
                    "    Return parameters matching the glob-like <pattern> and their values.",
                    "SET <directive> <value>",
                    "    Set the configuration <directive> to <value>.",
                    "RESETSTAT",
                    "    Reset statistics reported by the INFO command.",
                ],
            ),
        }
        Flow::Continue
    }

    /// CONFIG SET name value [name value ...]: every pair is validated before any is
    /// applied, and a failure names the argument, as Redis does.
    fn config_set(&mut self, pairs: &[Bytes]) {
        if !pairs.len().is_multiple_of(2) {
            self.error("ERR wrong number of arguments for 'config|set' command");
            return;
        }
        let settings = &self.broker.settings;
        let mut checked = Vec::new();
        for kv in pairs.chunks(2) {
            let name = String::from_utf8_lossy(&kv[0]).to_string();
            let value = String::from_utf8_lossy(&kv[1]).to_string();
            match crate::config::directive(&name) {
                Some(d) if d.mutable => {
                    if checked
                        .iter()
                        .any(|(n, _): &(String, String)| n.eq_ignore_ascii_case(&name))
                    {
                        let msg = format!(
                            "ERR CONFIG SET failed (possibly related to argument '{name}') - duplicate parameter"
                        );
                        self.error(&msg);
                        return;
                    }
                    // Validate on a scratch copy so nothing is applied on failure.
                    if let Err(reason) = crate::config::Settings::default().set(&name, &value) {
                        let msg = format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}");
                        self.error(&msg);
                        return;
                    }
                    checked.push((name, value));
                }
                Some(_) => {
                    let msg = format!(
                        "ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
                    );
                    self.error(&msg);
                    return;
                }
                None => {
                    let e = Error::Quoted(
                        "ERR Unknown option or number of arguments for CONFIG SET - '",
                        kv[0].clone(),
                        "'",
                    );
                    return self.fail(e);
                }
            }
        }
        for (name, value) in checked {
            let _ = settings.set(&name, &value);
            if name.eq_ignore_ascii_case("loglevel") {
                crate::logging::set_log_level(&value);
            }
            if name.eq_ignore_ascii_case("appendonly") {
                // As Redis: turning it on writes the data held as a new base (in the
                // background); turning it off syncs and closes the files.
                if value.eq_ignore_ascii_case("yes") {
                    if let Err(e) = self.broker.aof.turn_on() {
                        tracing::warn!("Unable to turn on AOF: {e}");
                        let _ = settings.set("appendonly", "no");
                        self.fail(Error::AofTurnOn);
                        return;
                    }
                } else {
                    self.broker.aof.turn_off();
                }
            }
            if name.eq_ignore_ascii_case("requirepass") {
                // As in Redis, requirepass is the `default` user's password.
                self.broker.acl.set_default_password(settings.requirepass().as_deref());
            }
        }
        self.ok();
    }

    pub(super) fn command_command(&mut self, cmd: Cmd, args: &[Bytes]) -> Flow {
        match cmd {
            Cmd::Command => {
                let mut e = self.reply();
                e.array(table::commands().count());
                for c in table::commands() {
                    command_info(&mut e, c);
                }
            }
            Cmd::CommandCount => self.reply().integer(table::commands().count() as i64),
            Cmd::CommandInfo => {
                // With no names, every command, as COMMAND alone.
                let found: Vec<Option<&'static Spec>> = if args.len() == 2 {
                    table::commands().map(Some).collect()
                } else {
                    args[2..].iter().map(|n| find_spec(n)).collect()
                };
                let mut e = self.reply();
                e.array(found.len());
                for f in found {
                    match f {
                        Some(c) => command_info(&mut e, c),
                        None => e.null(),
                    }
                }
            }
            Cmd::CommandDocs => {
                let specs: Vec<&'static Spec> = if args.len() == 2 {
                    table::commands().collect()
                } else {
                    args[2..].iter().filter_map(|n| find_spec(n)).collect()
                };
                let mut e = self.reply();
                e.map(specs.len());
                for c in specs {
                    e.bulk(c.name.as_bytes());
                    command_docs(&mut e, c);
                }
            }
            Cmd::CommandList => {
                let filter = match args.len() {
                    2 => None,
                    5 if args[2].eq_ignore_ascii_case(b"filterby")
                        && [&b"module"[..], b"aclcat", b"pattern"]
                            .iter()
                            .any(|k| args[3].eq_ignore_ascii_case(k)) =>
                    {
                        Some((args[3].to_ascii_lowercase(), args[4].clone()))
                    }
                    _ => {
                        self.fail(Error::Syntax);
                        return Flow::Continue;
                    }
                };
                let names: Vec<&str> = table::all()
                    .filter(|c| match &filter {
                        None => true,
                        Some((kind, v)) => match kind.as_slice() {
                            b"module" => false,
                            b"aclcat" => c.acl.iter().any(|a| a.as_bytes()[1..].eq_ignore_ascii_case(v)),
                            b"pattern" => glob::matches_nocase(v, c.name.as_bytes()),
                            _ => false,
                        },
                    })
                    .map(|c| c.name)
                    .collect();
                let mut e = self.reply();
                e.array(names.len());
                for n in names {
                    e.bulk(n.as_bytes());
                }
            }
            Cmd::CommandGetkeys | Cmd::CommandGetkeysandflags => self.command_getkeys(cmd, &args[2..]),
            _ => self.help(
                "COMMAND",
                &[
                    "(no subcommand)",
                    "    Return details about all Redis commands.",
                    "COUNT",
                    "    Return the total number of commands in this Redis server.",
                    "LIST",
                    "    Return a list of all commands in this Redis server.",
                    "INFO [<command-name> ...]",
                    "    Return details about multiple Redis commands.",
                    "    If no command names are given, documentation details for all",
                    "    commands are returned.",
                    "DOCS [<command-name> ...]",
                    "    Return documentation details about multiple Redis commands.",
                    "    If no command names are given, documentation details for all",
                    "    commands are returned.",
                    "GETKEYS <full-command>",
                    "    Return the keys from a full Redis command.",
                    "GETKEYSANDFLAGS <full-command>",
                    "    Return the keys and the access flags from a full Redis command.",
                ],
            ),
        }
        Flow::Continue
    }
}

impl Session {
    /// COMMAND GETKEYS / GETKEYSANDFLAGS: the keys of a full command, from its key specs.
    fn command_getkeys(&mut self, cmd: Cmd, full: &[Bytes]) {
        let spec = match table::lookup(&full[0]) {
            Some(c) if !c.subcommands.is_empty() && full.len() >= 2 => c.sub(&full[1]),
            found => found,
        };
        // Redis's order: the command, whether it has keys at all, its arity, the keys.
        let Some(spec) = spec else {
            return self.fail(Error::InvalidCommand);
        };
        if spec.keys.iter().all(|k| k.not_key()) {
            return self.fail(Error::NoKeyArguments);
        }
        if !spec.arity_ok(full.len()) {
            return self.fail(Error::InvalidNumberOfArgsForCommand);
        }
        let keys = match spec.key_positions(full, false) {
            Ok(k) if !k.is_empty() => k,
            _ => return self.fail(Error::InvalidArgsForCommand),
        };
        let mut e = self.reply();
        e.array(keys.len());
        for (pos, flags) in keys {
            if cmd == Cmd::CommandGetkeys {
                e.bulk(&full[pos]);
            } else {
                e.array(2);
                e.bulk(&full[pos]);
                e.set(flags.len());
                for f in flags {
                    e.simple(f);
                }
            }
        }
    }
}

/// `publish` or `pubsub|numsub`, any case.
pub(super) fn find_spec(name: &[u8]) -> Option<&'static Spec> {
    match name.iter().position(|&b| b == b'|') {
        None => table::lookup(name),
        Some(i) => table::lookup(&name[..i])?.sub(&name[i + 1..]),
    }
}

/// One COMMAND / COMMAND INFO entry: 10 items, as Redis 7.
fn command_info(e: &mut Encoder, c: &Spec) {
    e.array(10);
    e.bulk(c.name.as_bytes());
    e.integer(c.arity as i64);
    let flags = c.flags.names(c.movable_keys());
    e.set(flags.len());
    for f in flags {
        e.simple(f);
    }
    let (first, last, step) = c.legacy_range();
    e.integer(first);
    e.integer(last);
    e.integer(step);
    e.set(c.acl.len());
    for a in c.acl {
        e.simple(a);
    }
    e.set(c.tips.len());
    for t in c.tips {
        e.bulk(t.as_bytes());
    }
    // Redis 7.2 replies with a set of key specs, and with an empty set, not an empty
    // array, for a command without subcommands (RESP3 tells them apart).
    e.set(c.keys.len());
    for k in c.keys {
        key_spec(e, k);
    }
    if c.subcommands.is_empty() {
        e.set(0);
    } else {
        e.array(c.subcommands.len());
    }
    for s in c.subcommands {
        command_info(e, s);
    }
}

/// A Redis 7 key-spec object, as COMMAND INFO shows it.
fn key_spec(e: &mut Encoder, k: &KeySpec) {
    e.map(3 + k.notes.is_some() as usize);
    if let Some(notes) = k.notes {
        e.bulk(b"notes");
        e.bulk(notes.as_bytes());
    }
    e.bulk(b"flags");
    e.set(k.flags.len());
    for f in k.flags {
        e.simple(f);
    }
    e.bulk(b"begin_search");
    e.map(2);
    e.bulk(b"type");
    match k.begin {
        Begin::Index(i) => {
            e.bulk(b"index");
            e.bulk(b"spec");
            e.map(1);
            e.bulk(b"index");
            e.integer(i as i64);
        }
        Begin::Keyword { keyword, startfrom } => {
            e.bulk(b"keyword");
            e.bulk(b"spec");
            e.map(2);
            e.bulk(b"keyword");
            e.bulk(keyword.as_bytes());
            e.bulk(b"startfrom");
            e.integer(startfrom as i64);
        }
    }
    e.bulk(b"find_keys");
    e.map(2);
    e.bulk(b"type");
    match k.find {
        Find::Range { lastkey, step, limit } => {
            e.bulk(b"range");
            e.bulk(b"spec");
            e.map(3);
            e.bulk(b"lastkey");
            e.integer(lastkey as i64);
            e.bulk(b"keystep");
            e.integer(step as i64);
            e.bulk(b"limit");
            e.integer(limit as i64);
        }
        Find::Keynum {
            keynumidx,
            firstkey,
            step,
        } => {
            e.bulk(b"keynum");
            e.bulk(b"spec");
            e.map(3);
            e.bulk(b"keynumidx");
            e.integer(keynumidx as i64);
            e.bulk(b"firstkey");
            e.integer(firstkey as i64);
            e.bulk(b"keystep");
            e.integer(step as i64);
        }
    }
}

/// One COMMAND DOCS entry (the doc map for `c`), in Redis's order.
fn command_docs(e: &mut Encoder, c: &Spec) {
    let has_cx = !c.complexity.is_empty();
    let has_history = !c.history.is_empty();
    let has_args = !c.args.is_empty();
    let has_subs = !c.subcommands.is_empty();
    let deprecated = 3 * c.deprecated.is_some() as usize;
    e.map(3 + has_cx as usize + deprecated + has_history as usize + has_args as usize + has_subs as usize);
    e.bulk(b"summary");
    e.bulk(c.summary.as_bytes());
    e.bulk(b"since");
    e.bulk(c.since.as_bytes());
    e.bulk(b"group");
    e.bulk(c.group.as_bytes());
    if has_cx {
        e.bulk(b"complexity");
        e.bulk(c.complexity.as_bytes());
    }
    if let Some((since, replaced_by)) = c.deprecated {
        e.bulk(b"doc_flags");
        e.set(1);
        e.simple("deprecated");
        e.bulk(b"deprecated_since");
        e.bulk(since.as_bytes());
        e.bulk(b"replaced_by");
        e.bulk(replaced_by.as_bytes());
    }
    if has_history {
        e.bulk(b"history");
        e.set(c.history.len());
        for (version, change) in c.history {
            e.array(2);
            e.bulk(version.as_bytes());
            e.bulk(change.as_bytes());
        }
    }
    if has_args {
        e.bulk(b"arguments");
        arguments_docs(e, c.args);
    }
    if has_subs {
        e.bulk(b"subcommands");
        e.map(c.subcommands.len());
        for s in c.subcommands {
            e.bulk(s.name.as_bytes());
            command_docs(e, s);
        }
    }
}

/// COMMAND DOCS `arguments`: one map per argument, nested for `oneof` and `block`.
fn arguments_docs(e: &mut Encoder, args: &[Arg]) {
    e.array(args.len());
    for a in args {
        // Redis 7.2 shows a `display_text` (the name unless the table says otherwise) for
        // every argument but `oneof` and `block` ones, pure tokens included.
        let display = !matches!(a.kind, "oneof" | "block");
        let flags: Vec<&str> = [(a.optional, "optional"), (a.multiple, "multiple")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| *f)
            .collect();
        let key = a.kind == "key";
        e.map(
            2 + display as usize
                + key as usize
                + a.token.is_some() as usize
                + a.since.is_some() as usize
                + !flags.is_empty() as usize
                + !a.subargs.is_empty() as usize,
        );
        e.bulk(b"name");
        e.bulk(a.name.as_bytes());
        e.bulk(b"type");
        e.bulk(a.kind.as_bytes());
        if display {
            e.bulk(b"display_text");
            e.bulk(a.display.unwrap_or(a.name).as_bytes());
        }
        if key {
            e.bulk(b"key_spec_index");
            e.integer(a.key_spec as i64);
        }
        if let Some(t) = a.token {
            e.bulk(b"token");
            e.bulk(t.as_bytes());
        }
        if let Some(since) = a.since {
            e.bulk(b"since");
            e.bulk(since.as_bytes());
        }
        if !flags.is_empty() {
            e.bulk(b"flags");
            e.set(flags.len());
            for f in flags {
                e.simple(f);
            }
        }
        if !a.subargs.is_empty() {
            e.bulk(b"arguments");
            arguments_docs(e, a.subargs);
        }
    }
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.2}G", bytes as f64 / (1u64 << 30) as f64)
    } else if bytes >= 1 << 20 {
        format!("{:.2}M", bytes as f64 / (1u64 << 20) as f64)
    } else if bytes >= 1 << 10 {
        format!("{:.2}K", bytes as f64 / 1024.0)
    } else {
        format!("{bytes}B")
    }
}

/// What INFO shows of the keyspace, read once per INFO.
struct KeyspaceInfo {
    blocked: usize,
    expired: u64,
    hits: u64,
    misses: u64,
    used_memory: u64,
    /// Journal bytes the AOF writer has not taken yet.
    aof_buffer: usize,
    /// (db, keys, expires, avg_ttl) of the non-empty databases.
    dbs: Vec<(usize, usize, usize, u64)>,
}

impl KeyspaceInfo {
    fn of(broker: &crate::broker::Broker, ks: &crate::keyspace::Keyspace) -> KeyspaceInfo {
        let now = crate::keyspace::now_ms();
        KeyspaceInfo {
            blocked: ks.blocked.len(),
            expired: ks.expired,
            hits: ks.hits,
            misses: ks.misses,
            used_memory: broker.measure_memory_in(ks),
            aof_buffer: ks.journal.pending_len(),
            dbs: (0..ks.databases())
                .map(|i| (i, ks.db(i)))
                .filter(|(_, db)| !db.is_empty())
                .map(|(i, db)| (i, db.len(), db.expires(), db.avg_ttl(now)))
                .collect(),
        }
    }
}
