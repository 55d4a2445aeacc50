//! Drives `fanout::commands::Session` with arbitrary requests from several clients that
//! share one in-process `Broker`, as the connection tasks do, minus the sockets.
//!
//! Arguments are mostly drawn from a dictionary built from the command table, the config
//! directives and the option keywords the commands look for, so the fuzzer reaches deep
//! into each command instead of guessing names byte by byte; raw bytes and numbers are
//! mixed in.
//!
//! Checks, besides "never panics":
//! * every byte a client would receive (replies, pushes, messages), drained from its outbox
//!   as the writer task does, is a sequence of complete, well-formed RESP2/RESP3 frames;
//! * a connection that ends (QUIT, CLIENT KILL, a cross-protocol request, overflow) is
//!   cleaned up as `server::connection::serve` does, and once every client is gone the
//!   registry holds no channel, shard channel or pattern, and the client table is empty.

#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use bytes::Bytes;
use fanout::broker::Broker;
use fanout::client::outbox::Take;
use fanout::client::{ClientHandle, Outbox};
use fanout::commands::{Flow, Session};
use fanout::config::Settings;
use fanout::pubsub::Namespace;
use libfuzzer_sys::fuzz_target;

const CLIENTS: usize = 3;

#[derive(Arbitrary, Debug)]
enum Word {
    /// An entry of the dictionary (modulo its length).
    Known(u16),
    /// A small integer, as text.
    Int(i16),
    /// The id of one of the clients, as text (CLIENT KILL ID, CLIENT LIST ID).
    ClientId(u8),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Step {
    client: u8,
    words: Vec<Word>,
    /// Drain the outboxes after this step (the writer may lag behind the reader).
    drain: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    requirepass: bool,
    max_subscriptions: Option<u8>,
    unix: [bool; CLIENTS],
    steps: Vec<Step>,
}

/// Option keywords and values the commands look for, besides command and directive names.
const EXTRA_WORDS: &[&str] = &[
    "id",
    "addr",
    "laddr",
    "user",
    "skipme",
    "type",
    "maxage",
    "normal",
    "pubsub",
    "master",
    "slave",
    "replica",
    "yes",
    "no",
    "on",
    "off",
    "skip",
    "lib-name",
    "lib-ver",
    "default",
    "auth",
    "setname",
    "filterby",
    "module",
    "aclcat",
    "pattern",
    "all",
    "everything",
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "cluster",
    "keyspace",
    "commandstats",
    "2",
    "3",
    "4",
    "0",
    "-1",
    "pw",
    "ch",
    "ch2",
    "news.*",
    "*",
    "?",
    "[a-z]*",
    "\\",
    "h*llo",
    "drop-oldest",
    "drop-newest",
    "disconnect",
    "pubsub 64 32 1",
    "normal 0 0 0",
    "1kb",
    "1gb",
    "debug",
    "warning",
    "127.0.0.1:1",
    "fanout",
    "",
    // ACL users and rules (ACL SETUSER, AUTH user pass, HELLO 3 AUTH user pass).
    "alice",
    "on",
    "off",
    "nopass",
    "resetpass",
    ">pw",
    "<pw",
    "#0123",
    "+@all",
    "-@all",
    "+@pubsub",
    "-@dangerous",
    "+publish",
    "-subscribe",
    "+client|list",
    "allchannels",
    "resetchannels",
    "&ch*",
    "&news.*",
    "~*",
    "allkeys",
    "allcommands",
    "nocommands",
    "reset",
    "(",
    ")",
    "%R~*",
];

fn dictionary() -> Vec<Bytes> {
    let mut words: Vec<Bytes> = Vec::new();
    for c in fanout::spec::commands() {
        words.push(Bytes::from_static(c.name.as_bytes()));
        for s in c.subcommands {
            words.push(Bytes::from_static(s.short_name().as_bytes()));
        }
    }
    for d in fanout::config::DIRECTIVES {
        words.push(Bytes::from_static(d.name.as_bytes()));
        words.push(Bytes::from_static(d.default.as_bytes()));
    }
    words.extend(EXTRA_WORDS.iter().map(|w| Bytes::from_static(w.as_bytes())));
    words
}

struct Client {
    session: Session,
    /// Everything drained from the outbox and not yet checked.
    received: Vec<u8>,
    open: bool,
}

fn drain(c: &mut Client) {
    let mut batch = Vec::new();
    loop {
        match c.session.outbox().take(&mut batch, usize::MAX) {
            Take::Write(counted) => {
                for b in batch.drain(..) {
                    c.received.extend_from_slice(&b);
                }
                c.session.outbox().written(counted);
            }
            Take::Idle | Take::Close => break,
        }
    }
    let mut pos = 0;
    while pos < c.received.len() {
        match frame(&c.received[pos..]) {
            Ok(used) => pos += used,
            Err(why) => panic!(
                "malformed output ({why}) at byte {pos}: {:?}",
                String::from_utf8_lossy(&c.received[pos..c.received.len().min(pos + 300)])
            ),
        }
    }
    c.received.clear();
}

/// Closes a connection the way `serve` does when its read loop returns.
fn close(c: &mut Client) {
    if c.open {
        c.session.flush();
        c.session.close();
        c.open = false;
    }
}

fuzz_target!(|input: Input| {
    let dict = dictionary();
    let settings = Arc::new(Settings::default());
    if input.requirepass {
        settings.set("requirepass", "pw").unwrap();
    }
    if let Some(n) = input.max_subscriptions {
        settings.set("max-subscriptions-per-client", &n.to_string()).unwrap();
    }
    let broker = Broker::new(settings, None);
    let mut clients: Vec<Client> = (0..CLIENTS)
        .map(|i| {
            let id = broker.next_client_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let outbox = Arc::new(Outbox::new(id));
            let peer = format!("127.0.0.1:{}", 40000 + i);
            let handle = Arc::new(ClientHandle::new(
                outbox,
                peer,
                "127.0.0.1:6379".into(),
                10 + i as i64,
                input.unix[i],
                broker.acl.default_user(),
            ));
            broker.clients.insert(handle.clone());
            Client {
                session: Session::new(broker.clone(), handle),
                received: Vec::new(),
                open: true,
            }
        })
        .collect();

    for step in input.steps.iter().take(64) {
        let i = usize::from(step.client) % CLIENTS;
        // A client killed by another one (CLIENT KILL, overflow) ends its read loop.
        if clients[i].open && clients[i].session.outbox().gone.is_cancelled() {
            close(&mut clients[i]);
        }
        if !clients[i].open || step.words.is_empty() {
            continue;
        }
        let args: Vec<Bytes> = step
            .words
            .iter()
            .take(16)
            .map(|w| match w {
                Word::Known(k) => dict[usize::from(*k) % dict.len()].clone(),
                Word::Int(n) => Bytes::from(n.to_string()),
                Word::ClientId(c) => Bytes::from((u64::from(*c) % (CLIENTS as u64 + 1)).to_string()),
                Word::Raw(b) => Bytes::from(b.clone()),
            })
            .collect();
        let wire_len = args.iter().map(|a| a.len() + 16).sum();
        let mut flow = clients[i].session.execute(&args, wire_len);
        // A request held by CLIENT PAUSE: let the pause end (time passing), then it runs,
        // as the connection's read loop does.
        while let Flow::Wait(_) = flow {
            clients[i].session.flush();
            broker.pause.stop();
            flow = clients[i].session.execute(&args, wire_len);
        }
        clients[i].session.flush();
        match flow {
            Flow::Continue | Flow::Wait(_) => {}
            Flow::CloseAfterReply => {
                clients[i].session.outbox().close_after_flush();
                close(&mut clients[i]);
            }
            Flow::CloseNow => {
                clients[i].session.outbox().kill();
                close(&mut clients[i]);
            }
        }
        if step.drain {
            for c in &mut clients {
                drain(c);
            }
        }
    }

    for c in &mut clients {
        drain(c);
        close(c);
    }
    assert_eq!(
        broker.registry.channel_count(Namespace::Global),
        0,
        "channels left behind"
    );
    assert_eq!(
        broker.registry.channel_count(Namespace::Shard),
        0,
        "shard channels left behind"
    );
    assert!(broker.registry.patterns.is_empty(), "patterns left behind");
    assert!(broker.clients.is_empty(), "clients left in the table");
});

/// Length of the complete RESP2/RESP3 frame at the front of `buf`.
fn frame(buf: &[u8]) -> Result<usize, String> {
    let (&kind, _) = buf.split_first().ok_or("empty")?;
    let end = buf
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(|| "no CRLF after the type byte".to_string())?;
    let line = &buf[1..end];
    if line.iter().any(|&b| b == b'\r' || b == b'\n') {
        return Err("CR or LF inside a line".into());
    }
    let next = end + 2;
    let int = || -> Result<i64, String> {
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad integer {:?}", String::from_utf8_lossy(line)))
    };
    match kind {
        b'+' | b'-' | b',' | b'(' => Ok(next),
        b':' => int().map(|_| next),
        b'#' => match line {
            b"t" | b"f" => Ok(next),
            _ => Err("bad boolean".into()),
        },
        b'_' if line.is_empty() => Ok(next),
        b'$' | b'=' | b'!' => {
            let n = int()?;
            if n == -1 && kind == b'$' {
                return Ok(next);
            }
            let n = usize::try_from(n).map_err(|_| "negative length")?;
            let total = next + n + 2;
            if buf.len() < total {
                return Err("bulk cut short".into());
            }
            if &buf[next + n..total] != b"\r\n" {
                return Err("bulk not followed by CRLF".into());
            }
            if kind == b'=' && (n < 4 || buf[next + 3] != b':') {
                return Err("bad verbatim string".into());
            }
            Ok(total)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = int()?;
            if n == -1 && kind == b'*' {
                return Ok(next);
            }
            let n = usize::try_from(n).map_err(|_| "negative count")?;
            let items = if matches!(kind, b'%' | b'|') { 2 * n } else { n };
            let mut pos = next;
            for _ in 0..items {
                pos += frame(&buf[pos..])?;
            }
            Ok(pos)
        }
        other => Err(format!("unknown type byte {:?}", other as char)),
    }
}
