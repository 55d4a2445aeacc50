//! Event replay from an ID, and retention with MAXLEN / MINID.
//!
//! A stream keeps its entries after they are read, in ID order, and an ID (`<ms>-<seq>`)
//! is a position in it. A consumer that remembers the ID of the last event it handled
//! (its checkpoint) can be offline for a while and then replay everything after that ID
//! with `XRANGE events (<checkpoint> + COUNT n`: `(` makes the start exclusive, `+` is the
//! end of the stream, and COUNT pages through a long backlog, each page starting after the
//! last ID of the one before.
//!
//! A stream grows until it is trimmed. `XADD events MAXLEN ~ 1000 * ...` keeps roughly the
//! newest 1000 entries: `~` lets the server drop only whole internal nodes, which is
//! cheap, so a few more may stay (up to one node, `stream-node-max-entries`). `=` (or no
//! modifier) trims to exactly 1000. `MINID` trims by ID instead, that is by age, since
//! `*` IDs are millisecond timestamps. A checkpoint older than the first retained entry
//! means events were trimmed away before the consumer replayed them, which it can detect.
//!
//! ```sh
//! cargo run --release -- --port 6379 &
//! cargo run --example event_replay             # FANOUT_URL=redis://host:port/ to change
//! ```

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamInfoStreamReply, StreamRangeReply};
use redis::AsyncCommands;

type Error = Box<dyn std::error::Error + Send + Sync>;

const STREAM: &str = "events:orders";
const PAGE: usize = 3;
const RETAIN: usize = 1000;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("FANOUT_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    tokio::time::timeout(Duration::from_secs(10), run(&url))
        .await
        .map_err(|_| "timed out after 10s")?
}

async fn run(url: &str) -> Result<(), Error> {
    let client = redis::Client::open(url)?;
    println!("connecting to {url}");
    let mut con = client.get_multiplexed_async_connection().await?;
    // Start from nothing, so the example can be run again against the same server.
    let _: usize = con.del(STREAM).await?;

    // An order service appends what happens, as it happens.
    let events = [
        ("placed", 1001),
        ("placed", 1002),
        ("paid", 1001),
        ("shipped", 1001),
        ("paid", 1002),
        ("placed", 1003),
        ("cancelled", 1003),
        ("shipped", 1002),
        ("delivered", 1001),
        ("delivered", 1002),
    ];
    let mut ids = Vec::new();
    for (n, (kind, order)) in events.iter().enumerate() {
        let id: String = con
            .xadd(
                STREAM,
                "*",
                &[
                    ("n", (n + 1).to_string()),
                    ("type", kind.to_string()),
                    ("order", order.to_string()),
                ],
            )
            .await?;
        println!("XADD {STREAM} * n {} type {kind} order {order} -> {id}", n + 1);
        ids.push(id);
    }

    // A consumer handled the first 4 events, saved the ID of the 4th as its checkpoint,
    // and went offline.
    let checkpoint = ids[3].clone();
    println!("consumer: handled events 1-4, checkpoint {checkpoint}; goes offline");

    // Back online: replay everything after the checkpoint, a page at a time.
    let replayed = replay_after(&mut con, &checkpoint).await?;
    let numbers: Vec<usize> = replayed.iter().filter_map(|e| e.get("n")).collect();
    println!("consumer: replayed events {numbers:?} after {checkpoint}");
    if numbers != (5..=events.len()).collect::<Vec<_>>() {
        return Err(format!("replayed {numbers:?}, expected 5..={}", events.len()).into());
    }

    // The newest entry without scanning: XREVRANGE takes the end first.
    let newest: StreamRangeReply = con.xrevrange_count(STREAM, "+", "-", 1).await?;
    let newest = newest.ids.first().ok_or("empty stream")?;
    println!(
        "XREVRANGE {STREAM} + - COUNT 1 -> {} ({} order {})",
        newest.id,
        newest.get::<String>("type").unwrap_or_default(),
        newest.get::<String>("order").unwrap_or_default()
    );

    // Retention. Appending with MAXLEN ~ keeps the stream near RETAIN entries however
    // long the service runs.
    let node: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("stream-node-max-entries")
        .query_async(&mut con)
        .await?;
    let node_entries: usize = node
        .get(1)
        .and_then(|v| v.parse().ok())
        .ok_or("no stream-node-max-entries")?;
    let more = 2500;
    let mut pipe = redis::pipe();
    for n in 0..more {
        pipe.cmd("XADD")
            .arg(STREAM)
            .arg("MAXLEN")
            .arg("~")
            .arg(RETAIN)
            .arg("*")
            .arg("n")
            .arg(events.len() + 1 + n)
            .arg("type")
            .arg("heartbeat")
            .ignore();
    }
    let _: () = pipe.query_async(&mut con).await?;
    let approx_len: usize = con.xlen(STREAM).await?;
    println!(
        "{more} x XADD {STREAM} MAXLEN ~ {RETAIN} * ... -> XLEN {approx_len} (at least {RETAIN}; `~` drops whole nodes of {node_entries} entries only)"
    );
    // (With stream-node-max-entries 0, nodes are bounded by bytes only: no upper bound here.)
    if approx_len < RETAIN || (node_entries > 0 && approx_len >= RETAIN + node_entries) {
        return Err(format!("XLEN {approx_len} after MAXLEN ~ {RETAIN}").into());
    }
    let trimmed: usize = redis::cmd("XTRIM")
        .arg(STREAM)
        .arg("MAXLEN")
        .arg("=")
        .arg(RETAIN)
        .query_async(&mut con)
        .await?;
    let len: usize = con.xlen(STREAM).await?;
    println!("XTRIM {STREAM} MAXLEN = {RETAIN} -> removed {trimmed}; XLEN {len}");
    if len != RETAIN {
        return Err(format!("XLEN {len} after MAXLEN = {RETAIN}").into());
    }

    // MINID: drop every entry older than a given ID (here the 901st newest, so 900 stay).
    let tail: StreamRangeReply = con.xrevrange_count(STREAM, "+", "-", 900).await?;
    let min_id = tail.ids.last().ok_or("empty stream")?.id.clone();
    let trimmed: usize = redis::cmd("XTRIM")
        .arg(STREAM)
        .arg("MINID")
        .arg(&min_id)
        .query_async(&mut con)
        .await?;
    let len: usize = con.xlen(STREAM).await?;
    println!("XTRIM {STREAM} MINID {min_id} -> removed {trimmed}; XLEN {len}");
    if len != 900 {
        return Err(format!("XLEN {len} after MINID").into());
    }

    // The old checkpoint now points before the oldest retained entry: the events in
    // between are gone, and a consumer can tell by comparing IDs before replaying.
    let info: StreamInfoStreamReply = con.xinfo_stream(STREAM).await?;
    let first = info.first_entry.id;
    let gap = parse_id(&first)? > next_id(parse_id(&checkpoint)?);
    println!(
        "XINFO STREAM {STREAM}: first entry {first}, checkpoint {checkpoint} -> events trimmed before replay: {gap}"
    );
    if !gap {
        return Err("expected the trimmed events to be detected".into());
    }

    println!(
        "ok: replayed events 5-{} after checkpoint {checkpoint} in pages of {PAGE}; of {} entries MAXLEN ~ {RETAIN} kept {approx_len}, MAXLEN = {RETAIN} kept {RETAIN}, MINID kept 900",
        events.len(),
        events.len() + more
    );
    Ok(())
}

/// Every entry after `after`, read with `XRANGE key (after + COUNT PAGE` page by page.
async fn replay_after(con: &mut MultiplexedConnection, after: &str) -> Result<Vec<StreamId>, Error> {
    let mut cursor = after.to_string();
    let mut all = Vec::new();
    loop {
        let start = format!("({cursor}");
        let page: StreamRangeReply = con.xrange_count(STREAM, &start, "+", PAGE).await?;
        let numbers: Vec<usize> = page.ids.iter().filter_map(|e| e.get("n")).collect();
        println!("consumer: XRANGE {STREAM} {start} + COUNT {PAGE} -> events {numbers:?}");
        let Some(last) = page.ids.last() else {
            return Ok(all);
        };
        cursor = last.id.clone();
        let full = page.ids.len() == PAGE;
        all.extend(page.ids);
        if !full {
            // A short page is the end of the stream: no need for an empty round trip.
            return Ok(all);
        }
    }
}

fn parse_id(id: &str) -> Result<(u64, u64), Error> {
    let (ms, seq) = id.split_once('-').ok_or("bad stream ID")?;
    Ok((ms.parse()?, seq.parse()?))
}

/// The smallest ID after `id`.
fn next_id((ms, seq): (u64, u64)) -> (u64, u64) {
    match seq.checked_add(1) {
        Some(seq) => (ms, seq),
        None => (ms + 1, 0),
    }
}
