//! Typed domain events as JSON.
//!
//! An order service publishes what happened to orders as JSON on `events:orders`, each
//! event tagged with its type (`{"type":"OrderPlaced",...}`, serde's internally tagged
//! enum). Two independent consumers decode them into the same Rust enum:
//!
//! * `order-status`, a projection that keeps the current status of each order;
//! * `billing`, which only cares about captured payments and ignores everything else.
//!
//! A consumer meets event types it does not know yet when producers are upgraded first;
//! here it logs and skips them rather than failing, which keeps deployments independent.
//!
//! ```sh
//! cargo run --release -- --port 6379 &
//! cargo run --example domain_events            # FANOUT_URL=redis://host:port/ to change
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

type Error = Box<dyn std::error::Error + Send + Sync>;

const CHANNEL: &str = "events:orders";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
enum OrderEvent {
    OrderPlaced {
        order_id: u64,
        customer: String,
        total_cents: u64,
    },
    PaymentCaptured {
        order_id: u64,
        amount_cents: u64,
    },
    OrderShipped {
        order_id: u64,
        carrier: String,
        tracking: String,
    },
    OrderCancelled {
        order_id: u64,
        reason: String,
    },
}

impl OrderEvent {
    fn order_id(&self) -> u64 {
        match self {
            OrderEvent::OrderPlaced { order_id, .. }
            | OrderEvent::PaymentCaptured { order_id, .. }
            | OrderEvent::OrderShipped { order_id, .. }
            | OrderEvent::OrderCancelled { order_id, .. } => *order_id,
        }
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

    let mut status_sub = client.get_async_pubsub().await?;
    status_sub.subscribe(CHANNEL).await?;
    let mut billing_sub = client.get_async_pubsub().await?;
    billing_sub.subscribe(CHANNEL).await?;
    println!("order-status and billing subscribed to {CHANNEL}");

    let events = vec![
        OrderEvent::OrderPlaced {
            order_id: 1001,
            customer: "alice".into(),
            total_cents: 4999,
        },
        OrderEvent::OrderPlaced {
            order_id: 1002,
            customer: "bob".into(),
            total_cents: 1250,
        },
        OrderEvent::PaymentCaptured {
            order_id: 1001,
            amount_cents: 4999,
        },
        OrderEvent::OrderShipped {
            order_id: 1001,
            carrier: "DHL".into(),
            tracking: "JD014600006281".into(),
        },
        OrderEvent::OrderCancelled {
            order_id: 1002,
            reason: "customer request".into(),
        },
    ];

    // Publish each event as JSON, plus one of a type these consumers do not know yet.
    let mut con = client.get_multiplexed_async_connection().await?;
    let mut wire: Vec<String> = events.iter().map(serde_json::to_string).collect::<Result<_, _>>()?;
    wire.insert(
        3,
        r#"{"type":"InventoryReserved","order_id":1001,"sku":"LAMP-01"}"#.to_string(),
    );
    for json in &wire {
        let receivers: usize = con.publish(CHANNEL, json).await?;
        println!("publish ({receivers} receivers): {json}");
        if receivers != 2 {
            return Err(format!("expected 2 receivers, got {receivers}").into());
        }
    }

    // order-status: a projection of each order's current status.
    let mut status: BTreeMap<u64, String> = BTreeMap::new();
    let mut decoded = Vec::new();
    let mut skipped = 0;
    let mut messages = std::pin::pin!(status_sub.on_message());
    for _ in 0..wire.len() {
        let payload: String = next(&mut messages).await?.get_payload()?;
        match serde_json::from_str::<OrderEvent>(&payload) {
            Ok(event) => {
                let s = match &event {
                    OrderEvent::OrderPlaced { customer, .. } => format!("placed by {customer}"),
                    OrderEvent::PaymentCaptured { .. } => "paid".to_string(),
                    OrderEvent::OrderShipped { carrier, tracking, .. } => format!("shipped ({carrier} {tracking})"),
                    OrderEvent::OrderCancelled { reason, .. } => format!("cancelled: {reason}"),
                };
                println!("order-status: order {} -> {s}", event.order_id());
                status.insert(event.order_id(), s);
                decoded.push(event);
            }
            Err(e) => {
                skipped += 1;
                println!("order-status: skipping an event it does not understand ({e})");
            }
        }
    }
    if decoded != events {
        return Err("decoded events differ from the published ones".into());
    }

    // billing: only captured payments matter.
    let mut captured_cents = 0;
    let mut messages = std::pin::pin!(billing_sub.on_message());
    for _ in 0..wire.len() {
        let payload: String = next(&mut messages).await?.get_payload()?;
        if let Ok(OrderEvent::PaymentCaptured { order_id, amount_cents }) = serde_json::from_str(&payload) {
            println!("billing: order {order_id} paid {amount_cents} cents");
            captured_cents += amount_cents;
        }
    }

    println!(
        "ok: {} events published as JSON and decoded by 2 consumers ({skipped} unknown type skipped); {}; billing captured {captured_cents} cents",
        wire.len(),
        status
            .iter()
            .map(|(id, s)| format!("order {id} {s}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// The next message, or an error after two seconds without one.
async fn next<S>(messages: &mut S) -> Result<redis::Msg, Error>
where
    S: futures_util::Stream<Item = redis::Msg> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(2), messages.next())
        .await
        .map_err(|_| "no message within 2s")?
        .ok_or_else(|| "connection closed".into())
}
