//! A work queue with at-least-once delivery: a Redis Stream and a consumer group.
//!
//! A producer appends jobs to the stream `jobs` with XADD. The workers share the consumer
//! group `workers`: `XREADGROUP GROUP workers <me> COUNT n BLOCK ms STREAMS jobs >` hands
//! each new job to exactly one of them and records it in the group's pending entries list
//! (PEL) under that worker's name, until the worker confirms it with XACK.
//!
//! A worker that dies between reading a job and acknowledging it leaves the job pending.
//! Nothing is lost: another process runs `XAUTOCLAIM jobs workers <me> <min-idle-ms> 0-0`,
//! which takes over every job that has been pending for longer than min-idle (so a slow
//! but alive worker keeps its jobs), and processes and acknowledges them. Such a job was
//! delivered twice, which XPENDING's delivery count shows: at-least-once means handlers
//! must be idempotent (or check the delivery count).
//!
//! Here `worker-a` is healthy, `worker-b` crashes after its first read, and `rescuer`
//! recovers what `worker-b` held. At the end XPENDING reports 0 and every job was
//! processed at least once.
//!
//! ```sh
//! cargo run --release -- --port 6379 &
//! cargo run --example work_queue               # FANOUT_URL=redis://host:port/ to change
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamPendingReply,
    StreamReadOptions, StreamReadReply,
};
use redis::AsyncCommands;

type Error = Box<dyn std::error::Error + Send + Sync>;

const STREAM: &str = "jobs";
const GROUP: &str = "workers";
const JOBS: usize = 8;
/// A job pending for longer than this is taken to belong to a dead worker.
const MIN_IDLE_MS: u64 = 500;

/// Which worker processed which job (the job number), in the order they finished.
type Done = Arc<Mutex<Vec<(usize, String)>>>;

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
    // `$`: the group starts at the end of the stream and sees only jobs added from now on.
    // MKSTREAM creates the (empty) stream if it does not exist yet.
    let _: () = con.xgroup_create_mkstream(STREAM, GROUP, "$").await?;
    println!("XGROUP CREATE {STREAM} {GROUP} $ MKSTREAM");

    let done: Done = Arc::default();
    let producer_done = Arc::new(AtomicBool::new(false));
    let blocked_before = blocked_clients(&mut con).await?;

    // Each worker needs a connection of its own: a blocked XREADGROUP holds its
    // connection until it is answered.
    let healthy = tokio::spawn(worker(
        client.get_multiplexed_async_connection().await?,
        "worker-a",
        done.clone(),
        producer_done.clone(),
    ));
    let crashing = tokio::spawn(crashing_worker(client.get_multiplexed_async_connection().await?));

    // Let both workers block on the empty stream before the first job arrives, so each
    // gets a share (blocked readers of a group are served in the order they blocked).
    wait_for_blocked_clients(&mut con, blocked_before + 2).await?;
    for n in 1..=JOBS {
        let task = format!("resize photo-{n}.jpg");
        let id: String = con
            .xadd(STREAM, "*", &[("job", n.to_string()), ("task", task.clone())])
            .await?;
        println!("producer: XADD {STREAM} * job {n} task {task:?} -> {id}");
    }
    producer_done.store(true, Ordering::SeqCst);

    let lost = crashing.await??;
    let crashed_at = Instant::now();

    // The rescuer: a worker (or a periodic task) that adopts jobs idle for too long. Right
    // after the crash it finds nothing to take: worker-b's jobs are not idle long enough,
    // and for all the rescuer knows worker-b is only slow.
    let rescuer = "rescuer";
    let opts = || StreamAutoClaimOptions::default().count(10);
    let early: StreamAutoClaimReply = con
        .xautoclaim_options(STREAM, GROUP, rescuer, MIN_IDLE_MS, "0-0", opts())
        .await?;
    println!(
        "{rescuer}: XAUTOCLAIM {STREAM} {GROUP} {rescuer} {MIN_IDLE_MS} 0-0 COUNT 10 -> {} claimed (nothing idle for {MIN_IDLE_MS} ms yet)",
        early.claimed.len()
    );
    if !early.claimed.is_empty() {
        return Err("XAUTOCLAIM took jobs that were not idle long enough".into());
    }

    healthy.await??;

    // worker-b's jobs are still pending, owned by a consumer that will never come back.
    let summary: StreamPendingReply = con.xpending(STREAM, GROUP).await?;
    let StreamPendingReply::Data(data) = &summary else {
        return Err("XPENDING: nothing pending, but worker-b never acknowledged its jobs".into());
    };
    let owners: Vec<String> = data
        .consumers
        .iter()
        .map(|c| format!("{} has {}", c.name, c.pending))
        .collect();
    println!(
        "XPENDING {STREAM} {GROUP} -> {} pending ({} .. {}); {}",
        data.count,
        data.start_id,
        data.end_id,
        owners.join(", ")
    );
    if data.count != lost.len() {
        return Err(format!("{} pending, worker-b held {}", data.count, lost.len()).into());
    }

    // Once min-idle has passed, XAUTOCLAIM hands the jobs to the rescuer.
    let wait = Duration::from_millis(MIN_IDLE_MS + 100);
    tokio::time::sleep(wait.saturating_sub(crashed_at.elapsed())).await;
    let claim: StreamAutoClaimReply = con
        .xautoclaim_options(STREAM, GROUP, rescuer, MIN_IDLE_MS, "0-0", opts())
        .await?;
    let claimed_ids: Vec<&str> = claim.claimed.iter().map(|e| e.id.as_str()).collect();
    println!(
        "{rescuer}: {} ms after the crash, XAUTOCLAIM {STREAM} {GROUP} {rescuer} {MIN_IDLE_MS} 0-0 COUNT 10 -> claimed {claimed_ids:?}, next cursor {}",
        crashed_at.elapsed().as_millis(),
        claim.next_stream_id
    );
    if claimed_ids != lost.iter().map(String::as_str).collect::<Vec<_>>() {
        return Err(format!("claimed {claimed_ids:?}, worker-b lost {lost:?}").into());
    }

    // They are now pending under the rescuer, delivered a second time.
    let mine: StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(STREAM)
        .arg(GROUP)
        .arg("-")
        .arg("+")
        .arg(10)
        .arg(rescuer)
        .query_async(&mut con)
        .await?;
    let mut delivery_counts = Vec::new();
    for p in &mine.ids {
        println!(
            "{rescuer}: XPENDING {STREAM} {GROUP} - + 10 {rescuer}: {} owned by {}, delivery count {}",
            p.id, p.consumer, p.times_delivered
        );
        delivery_counts.push(p.times_delivered);
    }
    if delivery_counts.len() != lost.len() || delivery_counts.iter().any(|&n| n != 2) {
        return Err(format!("expected delivery count 2 for each reclaimed job, got {delivery_counts:?}").into());
    }
    for entry in &claim.claimed {
        process(&mut con, rescuer, entry, &done).await?;
    }

    // Nothing left pending, and every job was processed at least once.
    let summary: StreamPendingReply = con.xpending(STREAM, GROUP).await?;
    println!("XPENDING {STREAM} {GROUP} -> {} pending", summary.count());
    if summary.count() != 0 {
        return Err("jobs are still pending".into());
    }
    let mut by_job: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (job, who) in done.lock().unwrap().iter() {
        by_job.entry(*job).or_default().push(who.clone());
    }
    for (job, who) in &by_job {
        println!("job {job}: processed by {}", who.join(", "));
    }
    if by_job.keys().copied().ne(1..=JOBS) {
        return Err(format!("processed jobs {:?}, expected 1..={JOBS}", by_job.keys()).into());
    }
    let count = |name: &str| done.lock().unwrap().iter().filter(|(_, w)| w == name).count();
    println!(
        "ok: {JOBS} jobs, all processed at least once (worker-a {}, rescuer {} reclaimed from crashed worker-b, each delivered 2 times); XPENDING 0",
        count("worker-a"),
        count(rescuer)
    );
    Ok(())
}

/// A healthy worker: read up to 2 jobs at a time, process, acknowledge; stop once the
/// producer is done and a read times out with nothing new.
async fn worker(
    mut con: MultiplexedConnection,
    me: &'static str,
    done: Done,
    producer_done: Arc<AtomicBool>,
) -> Result<(), Error> {
    let opts = StreamReadOptions::default().group(GROUP, me).count(2).block(300);
    loop {
        let finished = producer_done.load(Ordering::SeqCst);
        let reply: Option<StreamReadReply> = con.xread_options(&[STREAM], &[">"], &opts).await?;
        let entries: Vec<StreamId> = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect();
        if entries.is_empty() {
            if finished {
                println!("{me}: XREADGROUP timed out and the producer is done; stopping");
                return Ok(());
            }
            continue;
        }
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        println!("{me}: XREADGROUP GROUP {GROUP} {me} COUNT 2 BLOCK 300 STREAMS {STREAM} > -> {ids:?}");
        for entry in &entries {
            process(&mut con, me, entry, &done).await?;
        }
    }
}

/// A worker that reads once and dies before acknowledging: returns the IDs it held.
async fn crashing_worker(mut con: MultiplexedConnection) -> Result<Vec<String>, Error> {
    let me = "worker-b";
    let opts = StreamReadOptions::default().group(GROUP, me).count(3).block(2000);
    let reply: Option<StreamReadReply> = con.xread_options(&[STREAM], &[">"], &opts).await?;
    let ids: Vec<String> = reply
        .into_iter()
        .flat_map(|r| r.keys)
        .flat_map(|k| k.ids)
        .map(|e| e.id)
        .collect();
    if ids.is_empty() {
        return Err("worker-b got no job within 2s".into());
    }
    println!("{me}: XREADGROUP GROUP {GROUP} {me} COUNT 3 BLOCK 2000 STREAMS {STREAM} > -> {ids:?}");
    println!("{me}: crashed before XACK (its connection is gone; the jobs stay pending)");
    drop(con);
    Ok(ids)
}

/// "Process" one job (a short sleep), then XACK it.
async fn process(con: &mut MultiplexedConnection, me: &str, entry: &StreamId, done: &Done) -> Result<(), Error> {
    let job: usize = entry.get("job").ok_or("job without a number")?;
    let task: String = entry.get("task").ok_or("job without a task")?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let acked: usize = con.xack(STREAM, GROUP, &[&entry.id]).await?;
    println!(
        "{me}: did job {job} ({task}); XACK {STREAM} {GROUP} {} -> {acked}",
        entry.id
    );
    if acked != 1 {
        return Err(format!("XACK {} acknowledged {acked}", entry.id).into());
    }
    done.lock().unwrap().push((job, me.to_string()));
    Ok(())
}

/// INFO's `blocked_clients`: clients waiting in a blocking command, server-wide.
async fn blocked_clients(con: &mut MultiplexedConnection) -> Result<usize, Error> {
    let info: String = redis::cmd("INFO").arg("clients").query_async(con).await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

/// Polls `blocked_clients` until at least `n` clients are blocked.
async fn wait_for_blocked_clients(con: &mut MultiplexedConnection, n: usize) -> Result<(), Error> {
    for _ in 0..200 {
        if blocked_clients(con).await? >= n {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("fewer than {n} clients blocked after 2s").into())
}
