//! Catch up on history, then follow live, without missing or repeating an entry.
//!
//! A reader that starts late first reads what the stream already holds, from ID `0`
//! (`XREAD COUNT n STREAMS feed 0`, then again from the last ID each page returned,
//! until a read comes back empty). It then follows new entries with
//! `XREAD BLOCK ms STREAMS feed <last ID seen>`, again moving to the last ID of each
//! reply.
//!
//! The pitfall is `$`. `XREAD BLOCK ms STREAMS feed $` means "entries added after this
//! call", so anything the producer appended between the reader's last read and that call
//! is skipped. Only pass `$` when you want nothing from the past; once you have an ID,
//! always continue from it. Plain XREAD keeps no state on the server (unlike consumer
//! groups): the last ID is the reader's own cursor, and every reader sees every entry.
//!
//! ```sh
//! cargo run --release -- --port 6379 &
//! cargo run --example catch_up_then_follow     # FANOUT_URL=redis://host:port/ to change
//! ```

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;

type Error = Box<dyn std::error::Error + Send + Sync>;

const STREAM: &str = "feed:prices";
const HISTORY: usize = 7;
const TOTAL: usize = 25;

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
    let mut producer = client.get_multiplexed_async_connection().await?;
    // Start from nothing, so the example can be run again against the same server.
    let _: usize = producer.del(STREAM).await?;

    // History: what the stream held before the reader started.
    for seq in 1..=HISTORY {
        add(&mut producer, seq).await?;
    }
    println!("producer: {HISTORY} entries added before the reader starts");

    // The reader has a connection of its own: a blocked XREAD holds it until answered.
    let mut reader = client.get_multiplexed_async_connection().await?;
    let mut seen: Vec<StreamId> = Vec::new();

    // 1. Catch up: page through the history from 0.
    let mut last = "0".to_string();
    let page = StreamReadOptions::default().count(3);
    loop {
        let batch = read(&mut reader, &last, &page).await?;
        println!(
            "reader: XREAD COUNT 3 STREAMS {STREAM} {last} -> seq {:?}",
            seqs(&batch)
        );
        let Some(e) = batch.last() else {
            break;
        };
        last = e.id.clone();
        seen.extend(batch);
    }
    println!("reader: caught up at {last} after {} entries", seen.len());

    // Meanwhile the producer appended one more entry. Continuing from `last` gets it;
    // `$` would not, as this short check (BLOCK 50, then nil) shows.
    add(&mut producer, HISTORY + 1).await?;
    let dollar = read(&mut reader, "$", &StreamReadOptions::default().block(50)).await?;
    println!(
        "reader: (what `$` would do) XREAD BLOCK 50 STREAMS {STREAM} $ -> {} entries: seq {} would be missed",
        dollar.len(),
        HISTORY + 1
    );
    if !dollar.is_empty() {
        return Err("XREAD $ returned an entry added before the call".into());
    }

    // 2. Follow: the producer keeps adding, in bursts of up to 3, while the reader blocks
    // from its last ID (a burst may arrive in one reply, or split over two).
    let live = tokio::spawn(async move {
        let mut seq = HISTORY + 2;
        for burst in (1..=3).cycle() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            for _ in 0..burst {
                if seq > TOTAL {
                    break;
                }
                add(&mut producer, seq).await?;
                seq += 1;
            }
            if seq > TOTAL {
                break;
            }
        }
        println!("producer: done at seq {TOTAL}");
        Ok::<_, Error>(())
    });
    let follow = StreamReadOptions::default().count(5).block(1000);
    while seen.len() < TOTAL {
        let batch = read(&mut reader, &last, &follow).await?;
        println!(
            "reader: XREAD COUNT 5 BLOCK 1000 STREAMS {STREAM} {last} -> seq {:?}",
            seqs(&batch)
        );
        let Some(e) = batch.last() else {
            return Err("no new entry within 1s while the producer was running".into());
        };
        last = e.id.clone();
        seen.extend(batch);
    }
    live.await??;

    // Every entry exactly once, in order.
    let got = seqs(&seen);
    if got != (1..=TOTAL).collect::<Vec<_>>() {
        return Err(format!("received seq {got:?}, expected 1..={TOTAL} once each").into());
    }
    if seen.windows(2).any(|w| parse_id(&w[0].id) >= parse_id(&w[1].id)) {
        return Err("IDs are not strictly increasing".into());
    }
    println!(
        "ok: received all {TOTAL} entries exactly once, in order ({HISTORY} from history, {} live), never using $ after the first read",
        TOTAL - HISTORY
    );
    Ok(())
}

async fn add(con: &mut MultiplexedConnection, seq: usize) -> Result<String, Error> {
    let price = format!("{:.2}", 100.0 + (seq as f64 * 0.37).sin());
    let id: String = con
        .xadd(STREAM, "*", &[("seq", seq.to_string()), ("price", price)])
        .await?;
    Ok(id)
}

/// The entries of one XREAD reply (none when it timed out or there was nothing).
async fn read(con: &mut MultiplexedConnection, after: &str, opts: &StreamReadOptions) -> Result<Vec<StreamId>, Error> {
    let reply: Option<StreamReadReply> = con.xread_options(&[STREAM], &[after], opts).await?;
    Ok(reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect())
}

fn seqs(entries: &[StreamId]) -> Vec<usize> {
    entries.iter().filter_map(|e| e.get("seq")).collect()
}

fn parse_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}
