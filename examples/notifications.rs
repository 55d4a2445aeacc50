//! Per-user real-time notifications.
//!
//! Every user has a channel, `notifications:user:<id>`. Backend services publish to it
//! without knowing who, if anyone, is online. Two kinds of listeners:
//!
//! * a *gateway* (think: the process holding users' WebSocket connections) that serves
//!   every user with one pattern subscription, `PSUBSCRIBE notifications:user:*`, and
//!   routes each message to a user by the channel it came on;
//! * a *device* that listens for one user only, `SUBSCRIBE notifications:user:42`.
//!
//! PUBLISH replies with how many subscriptions received the message, so a publisher can
//! tell "delivered somewhere" from "nobody listening" (and, say, fall back to e-mail).
//!
//! Run against a fanout (or Redis) server:
//!
//! ```sh
//! cargo run --release -- --port 6379 &
//! cargo run --example notifications            # FANOUT_URL=redis://host:port/ to change
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;

type Error = Box<dyn std::error::Error + Send + Sync>;

const PATTERN: &str = "notifications:user:*";

fn user_channel(user: u64) -> String {
    format!("notifications:user:{user}")
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

    // The gateway: one pattern subscription for every user.
    let mut gateway = client.get_async_pubsub().await?;
    gateway.psubscribe(PATTERN).await?;
    println!("gateway: PSUBSCRIBE {PATTERN}");

    // A device of user 42: its own channel only.
    let mut device = client.get_async_pubsub().await?;
    device.subscribe(user_channel(42)).await?;
    println!("device of user 42: SUBSCRIBE {}", user_channel(42));

    // Backend services publish; PUBLISH says how many subscriptions received each one.
    let mut backend = client.get_multiplexed_async_connection().await?;
    let notifications = [
        (42, "bob started following you"),
        (7, "carol commented on your photo"),
        (42, "your order #1001 has shipped"),
        (1001, "weekly digest is ready"),
    ];
    for (user, text) in notifications {
        let receivers: usize = backend.publish(user_channel(user), text).await?;
        println!(
            "backend: PUBLISH {} {text:?} -> {receivers} receiver(s)",
            user_channel(user)
        );
        let expected = if user == 42 { 2 } else { 1 };
        if receivers != expected {
            return Err(format!("expected {expected} receivers, got {receivers}").into());
        }
    }

    // The gateway routes each message to the user named in its channel.
    let mut inboxes: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut messages = std::pin::pin!(gateway.on_message());
    for _ in 0..notifications.len() {
        let msg = next(&mut messages).await?;
        let pattern: String = msg.get_pattern()?;
        let user: u64 = msg
            .get_channel_name()
            .rsplit(':')
            .next()
            .and_then(|id| id.parse().ok())
            .ok_or("channel without a user id")?;
        let text: String = msg.get_payload()?;
        println!("gateway: [{pattern}] user {user} <- {text:?}");
        inboxes.entry(user).or_default().push(text);
    }

    // The device sees user 42's notifications only, in publish order.
    let mut device_messages = std::pin::pin!(device.on_message());
    let mut on_device = Vec::new();
    for _ in 0..2 {
        let text: String = next(&mut device_messages).await?.get_payload()?;
        println!("device of user 42 <- {text:?}");
        on_device.push(text);
    }
    if on_device != inboxes[&42] {
        return Err("the device and the gateway disagree about user 42".into());
    }

    for (user, inbox) in &inboxes {
        println!("inbox of user {user}: {inbox:?}");
    }
    println!(
        "ok: {} notifications routed to {} users via {PATTERN}; user 42's device got its {} too",
        notifications.len(),
        inboxes.len(),
        on_device.len()
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
