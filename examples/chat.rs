//! A chat room with presence.
//!
//! Everyone in room `chat:room:rust` subscribes to that channel and publishes to it.
//! Presence travels in the same channel: a member announces `JOIN <name>` after
//! subscribing and `LEAVE <name>` before unsubscribing, so everyone keeps a roster, and
//! `PUBSUB NUMSUB chat:room:rust` tells anyone (even a non-member) how many connections
//! are listening right now.
//!
//! Wire format, one line per message: `JOIN <name>`, `LEAVE <name>`, `SAY <name> <text>`.
//!
//! ```sh
//! cargo run --release -- --port 6379 &
//! cargo run --example chat                     # FANOUT_URL=redis://host:port/ to change
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink};
use redis::AsyncCommands;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

type Error = Box<dyn std::error::Error + Send + Sync>;

const ROOM: &str = "chat:room:rust";

/// A member's connection: the subscription half (to leave) and the task reading it.
struct Member {
    sink: PubSubSink,
    listener: JoinHandle<()>,
}

/// Everything the members receive, as (who received it, the line), in one place.
struct Room {
    client: redis::Client,
    con: MultiplexedConnection,
    members: BTreeMap<String, Member>,
    tx: UnboundedSender<(String, String)>,
    rx: UnboundedReceiver<(String, String)>,
    transcripts: BTreeMap<String, Vec<String>>,
    /// The first member to join: the roster is built from what it receives.
    observer: Option<String>,
    /// Who is in the room, from JOIN/LEAVE lines only.
    roster: BTreeSet<String>,
    numsub_history: Vec<usize>,
}

impl Room {
    async fn join(&mut self, name: &str) -> Result<(), Error> {
        let (mut sink, mut stream) = self.client.get_async_pubsub().await?.split();
        sink.subscribe(ROOM).await?;
        let (who, tx) = (name.to_string(), self.tx.clone());
        let listener = tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                if let Ok(line) = msg.get_payload::<String>() {
                    let _ = tx.send((who.clone(), line));
                }
            }
        });
        self.members.insert(name.to_string(), Member { sink, listener });
        self.send(&format!("JOIN {name}")).await?;
        self.numsub().await
    }

    async fn say(&mut self, name: &str, text: &str) -> Result<(), Error> {
        self.send(&format!("SAY {name} {text}")).await
    }

    async fn leave(&mut self, name: &str) -> Result<(), Error> {
        self.send(&format!("LEAVE {name}")).await?;
        let mut m = self.members.remove(name).ok_or("not a member")?;
        m.sink.unsubscribe(ROOM).await?;
        m.listener.abort();
        self.numsub().await
    }

    /// Publishes one line and waits until every member has received it, so the
    /// transcripts below come out in a deterministic order.
    async fn send(&mut self, line: &str) -> Result<(), Error> {
        let receivers: usize = self.con.publish(ROOM, line).await?;
        if receivers != self.members.len() {
            return Err(format!("{receivers} receivers for {} members", self.members.len()).into());
        }
        for _ in 0..receivers {
            let (who, got) = tokio::time::timeout(Duration::from_secs(2), self.rx.recv())
                .await
                .map_err(|_| "a member got nothing within 2s")?
                .ok_or("listeners gone")?;
            if got != line {
                return Err(format!("{who} got {got:?}, expected {line:?}").into());
            }
            // The roster is kept as the first member sees it; the others would agree.
            if self.observer.get_or_insert_with(|| who.clone()) == &who {
                self.track_presence(&got);
            }
            self.transcripts.entry(who).or_default().push(render(&got));
        }
        println!("{}", render(line));
        Ok(())
    }

    fn track_presence(&mut self, line: &str) {
        match line.split_once(' ') {
            Some(("JOIN", who)) => {
                self.roster.insert(who.to_string());
            }
            Some(("LEAVE", who)) => {
                self.roster.remove(who);
            }
            _ => {}
        }
    }

    async fn numsub(&mut self) -> Result<(), Error> {
        let (_, n): (String, usize) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(ROOM)
            .query_async(&mut self.con)
            .await?;
        println!("    PUBSUB NUMSUB {ROOM} -> {n} listening; roster {:?}", self.roster);
        if n != self.members.len() || n != self.roster.len() {
            return Err(format!("NUMSUB {n}, roster {:?}", self.roster).into());
        }
        self.numsub_history.push(n);
        Ok(())
    }
}

/// How a client would show a wire line.
fn render(line: &str) -> String {
    match line.split_once(' ') {
        Some(("JOIN", who)) => format!("* {who} joined"),
        Some(("LEAVE", who)) => format!("* {who} left"),
        Some(("SAY", rest)) => match rest.split_once(' ') {
            Some((who, text)) => format!("<{who}> {text}"),
            None => format!("<{rest}>"),
        },
        _ => format!("? {line}"),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("FANOUT_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    tokio::time::timeout(Duration::from_secs(10), run(&url))
        .await
        .map_err(|_| "timed out after 10s")?
}

async fn run(url: &str) -> Result<(), Error> {
    let client = redis::Client::open(url)?;
    println!("connecting to {url}; room {ROOM}");
    let con = client.get_multiplexed_async_connection().await?;
    let (tx, rx) = unbounded_channel();
    let mut room = Room {
        client,
        con,
        members: BTreeMap::new(),
        tx,
        rx,
        transcripts: BTreeMap::new(),
        observer: None,
        roster: BTreeSet::new(),
        numsub_history: Vec::new(),
    };

    room.join("alice").await?;
    room.join("bob").await?;
    room.say("alice", "hi bob!").await?;
    room.join("carol").await?;
    room.say("bob", "welcome carol").await?;
    room.say("carol", "thanks, can't stay long").await?;
    room.leave("carol").await?;
    room.say("alice", "see you, carol").await?;

    for (who, lines) in &room.transcripts {
        println!("--- {who}'s screen ({} lines)", lines.len());
        for l in lines {
            println!("    {l}");
        }
    }
    let history: Vec<String> = room.numsub_history.iter().map(|n| n.to_string()).collect();
    let counts: Vec<String> = room
        .transcripts
        .iter()
        .map(|(who, lines)| format!("{who} saw {}", lines.len()))
        .collect();
    println!(
        "ok: 3 joined, 1 left, roster now {:?}; NUMSUB went {}; {}",
        room.roster,
        history.join(" -> "),
        counts.join(", ")
    );
    for (_, m) in std::mem::take(&mut room.members) {
        m.listener.abort();
    }
    Ok(())
}
