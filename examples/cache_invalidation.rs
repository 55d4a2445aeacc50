//! Cache invalidation across application instances.
//!
//! Several instances of an application each keep a local in-process cache (a `HashMap`)
//! in front of a slower shared store (a database). When one instance changes a record
//! it publishes the record's key on `cache:invalidate`; every instance, the writer
//! included, is subscribed and drops that key from its cache, so the next read anywhere
//! goes to the store and sees the new value.
//!
//! Pub/sub is fire-and-forget: an instance that is disconnected when an invalidation is
//! published misses it. Real deployments pair this with a TTL on cached entries, and
//! clear the whole cache when the subscription (re)connects.
//!
//! ```sh
//! cargo run --release -- --port 6379 &
//! cargo run --example cache_invalidation       # FANOUT_URL=redis://host:port/ to change
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use tokio::sync::{mpsc, oneshot};

type Error = Box<dyn std::error::Error + Send + Sync>;

const CHANNEL: &str = "cache:invalidate";
const INSTANCES: usize = 3;

/// The slow shared store every instance reads through to.
type Database = Arc<Mutex<HashMap<String, String>>>;

/// One application instance: its name, its local cache and its view of the database.
struct Instance {
    name: String,
    cache: Arc<Mutex<HashMap<String, String>>>,
    db: Database,
}

impl Instance {
    /// Read-through: the cache if it has the key, else the database (then cached).
    fn read(&self, key: &str) -> Option<(String, &'static str)> {
        if let Some(v) = self.cache.lock().unwrap().get(key) {
            return Some((v.clone(), "cache hit"));
        }
        let v = self.db.lock().unwrap().get(key).cloned()?;
        self.cache.lock().unwrap().insert(key.to_string(), v.clone());
        Some((v, "cache miss, loaded"))
    }

    fn cached_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.cache.lock().unwrap().keys().cloned().collect();
        keys.sort();
        keys
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
    println!("connecting to {url}");
    let db: Database = Arc::new(Mutex::new(HashMap::from([
        ("user:1".to_string(), "Alice <alice@example.com>".to_string()),
        ("user:2".to_string(), "Bob <bob@example.com>".to_string()),
        ("product:9".to_string(), "Desk lamp, 30 EUR".to_string()),
    ])));

    // Start the instances; each listens for invalidations in a task of its own and
    // reports every key it dropped on `dropped_tx`.
    let (dropped_tx, mut dropped_rx) = mpsc::unbounded_channel::<(String, String)>();
    let mut instances = Vec::new();
    let mut stops = Vec::new();
    let mut listeners = Vec::new();
    for i in 1..=INSTANCES {
        let instance = Instance {
            name: format!("app-{i}"),
            cache: Arc::default(),
            db: db.clone(),
        };
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(CHANNEL).await?;
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let (name, cache, dropped_tx) = (instance.name.clone(), instance.cache.clone(), dropped_tx.clone());
        listeners.push(tokio::spawn(async move {
            let mut messages = std::pin::pin!(pubsub.on_message());
            loop {
                let msg = tokio::select! {
                    _ = &mut stop_rx => return,
                    m = messages.next() => match m { Some(m) => m, None => return },
                };
                let Ok(key) = msg.get_payload::<String>() else {
                    continue;
                };
                let had_it = cache.lock().unwrap().remove(&key).is_some();
                println!(
                    "{name}: invalidation for {key:?}: {}",
                    if had_it { "dropped from cache" } else { "was not cached" }
                );
                let _ = dropped_tx.send((name.clone(), key));
            }
        }));
        stops.push(stop_tx);
        instances.push(instance);
    }
    println!("{INSTANCES} instances subscribed to {CHANNEL}");

    // Warm every cache.
    for inst in &instances {
        for key in ["user:1", "user:2", "product:9"] {
            let (v, how) = inst.read(key).ok_or("missing key")?;
            println!("{}: read {key} = {v:?} ({how})", inst.name);
        }
    }

    // app-2 changes two records, then tells everyone.
    let writer = &instances[1];
    let mut con = client.get_multiplexed_async_connection().await?;
    let changes = [
        ("user:1", "Alice <alice@new-domain.example>"),
        ("product:9", "Desk lamp, 25 EUR (sale)"),
    ];
    for (key, value) in changes {
        writer.db.lock().unwrap().insert(key.to_string(), value.to_string());
        println!(
            "{}: updated {key} in the database; PUBLISH {CHANNEL} {key}",
            writer.name
        );
        let receivers: usize = con.publish(CHANNEL, key).await?;
        println!("{}: ... received by {receivers} instance(s)", writer.name);
        if receivers != INSTANCES {
            return Err(format!("expected {INSTANCES} receivers, got {receivers}").into());
        }
    }

    // Wait until every instance has handled every invalidation.
    let expected = INSTANCES * changes.len();
    for _ in 0..expected {
        tokio::time::timeout(Duration::from_secs(2), dropped_rx.recv())
            .await
            .map_err(|_| "an instance did not handle an invalidation within 2s")?
            .ok_or("listeners stopped early")?;
    }
    for stop in stops {
        let _ = stop.send(());
    }
    for l in listeners {
        l.await?;
    }

    // No instance holds a stale copy; the next read anywhere sees the new value.
    for inst in &instances {
        let keys = inst.cached_keys();
        if keys != ["user:2"] {
            return Err(format!("{} still caches {keys:?}", inst.name).into());
        }
        for (key, value) in changes {
            let (v, how) = inst.read(key).ok_or("missing key")?;
            println!("{}: read {key} = {v:?} ({how})", inst.name);
            if v != value {
                return Err(format!("{} read a stale {key}", inst.name).into());
            }
        }
    }
    println!(
        "ok: {} invalidations cleared {expected} cache entries across {INSTANCES} instances; every instance now reads the new values",
        changes.len()
    );
    Ok(())
}
