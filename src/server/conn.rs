//! One client connection: a reader that parses and executes requests, and a writer task
//! that drains the connection's outbox to the socket.
//!
//! The two halves run as separate tasks so that a subscriber whose socket is full never
//! stops its own commands from being read, and so that publishers on other connections
//! never wait for its socket: they queue in the outbox, and write to the socket
//! themselves only when the writer is idle and the socket takes it at once
//! (`Outbox::write_or_wake`).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::AsyncWrite;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::broker::Broker;
use crate::client::{ClientHandle, Outbox};
use crate::commands::{Flow, Session};
use crate::protocol::request::{Limits, RequestParser};
use crate::stats::Stats;

use super::arrival::Arrival;
use super::transport::{Accepted, ReadHalf};

/// First read size of a connection. Most connections send a few small commands (a
/// SUBSCRIBE, then nothing), so they start small; a read that fills the buffer doubles
/// the next one, up to [`MAX_READ_CHUNK`], for publishers that pipeline.
const FIRST_READ_CHUNK: usize = 512;
const MAX_READ_CHUNK: usize = 64 * 1024;
/// Never grow the read buffer by more than this at once, whatever a header announced:
/// the bytes have to arrive before they earn memory.
const MAX_READ_RESERVE: usize = 1024 * 1024;

/// Serves one accepted connection until it closes.
///
/// `shutdown` asks the connection to send what it has queued and close (once the
/// shutdown grace period is over, the server kills it: see [`Outbox::kill`]).
pub async fn serve<R: ReadHalf, W: AsyncWrite + Unpin + Send + 'static>(
    broker: Arc<Broker>,
    id: u64,
    conn: Accepted<R, W>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let Accepted {
        rd,
        wr,
        direct,
        peer,
        local,
        fd,
        unix,
    } = conn;
    let outbox = Arc::new(Outbox::new(id));
    if let Some(d) = direct {
        outbox.set_direct(d);
    }
    let client = Arc::new(ClientHandle::new(
        outbox.clone(),
        peer,
        local,
        fd,
        unix,
        broker.acl.default_user(),
    ));
    broker.clients.insert(client.clone());
    Stats::add(&broker.stats.connections_received, 1);
    tracing::debug!("accepted");

    tracker.spawn(crate::client::writer::drain(outbox.clone(), wr, broker.stats.clone()).in_current_span());

    let mut guard = Cleanup(Session::new(broker.clone(), client));
    read_loop(&mut guard.0, rd, &shutdown).await;
    let session = &guard.0;
    if outbox.overflowed.load(Relaxed) {
        if let Some(held_back) = super::OVERFLOW_LOG.allow() {
            let c = &session.client;
            tracing::warn!(
                client = id,
                name = %c.name_lossy(),
                addr = %c.peer,
                held_back,
                "client closed for overcoming of output buffer limits"
            );
        }
    }
    tracing::debug!(client = id, "closed");
}

/// Undoes a connection's registrations when its task ends, normally or by a panic: a
/// connection that panicked must not stay in CLIENT LIST, keep its subscriptions
/// receiving messages, or hold a maxclients slot.
struct Cleanup(Session);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let session = &mut self.0;
        if std::thread::panicking() {
            tracing::error!(client = session.id(), "connection task panicked; closing it");
            session.outbox().kill();
        }
        session.close();
        session.broker.clients.release_slot();
    }
}

async fn read_loop<R: ReadHalf>(session: &mut Session, rd: R, shutdown: &CancellationToken) {
    let outbox = session.outbox().clone();
    let broker = session.broker.clone();
    let handle = session.client.clone();
    let cluster = broker.cluster.enabled;
    let settings = &broker.settings;
    let mut parser = RequestParser::new();
    // Idle connections hold no read buffer: it is allocated when bytes are readable and
    // released when everything read has been parsed.
    let mut buf = BytesMut::new();
    let mut chunk = FIRST_READ_CHUNK;
    let arrival = Arrival::default();
    loop {
        let readable = std::pin::pin!(rd.readable());
        tokio::select! {
            biased;
            _ = outbox.gone.cancelled() => return,
            _ = shutdown.cancelled() => {
                session.send_replies().await;
                outbox.close_after_flush();
                return;
            }
            r = arrival.watch(readable) => if r.is_err() { outbox.kill(); return; },
            // Polled (a waiter registered, a lock taken) only where a reload can matter.
            _ = handle.recheck.notified(), if cluster && !session.shard_channels.is_empty() => {
                session.drop_moved_shard_channels();
                session.send_replies().await;
                continue;
            }
        }
        // Taken here whichever branch woke us; held until the first command ran.
        let mut ticket = arrival.take();
        if buf.capacity() - buf.len() < chunk / 4 {
            buf.reserve(parser.bytes_wanted().clamp(chunk, MAX_READ_RESERVE));
        }
        let spare = buf.capacity() - buf.len();
        match rd.try_read_buf(&mut buf) {
            Ok(0) => {
                // The peer is done sending; what we owe it still goes out.
                session.send_replies().await;
                outbox.close_after_flush();
                return;
            }
            Ok(n) => {
                Stats::add(&broker.stats.net_input_bytes, n as u64);
                if n == spare {
                    chunk = (chunk * 2).min(MAX_READ_CHUNK);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => {
                outbox.kill();
                return;
            }
        }
        // Under `appendfsync always`, connections executing a batch are counted, so that
        // the fsync waits for the batches arriving together (see `send_replies`).
        let mut executing = broker.aof.executing();
        ticket.wait_turn().await;
        loop {
            let limits = Limits {
                proto_max_bulk_len: settings.proto_max_bulk_len.load(Relaxed),
                authenticated: !session.auth_required(),
            };
            match parser.next(&mut buf, &limits) {
                Ok(Some(req)) => {
                    let mut flow = session.execute(&req.args, req.wire_len);
                    ticket.done();
                    while let Flow::Wait(wait) = flow {
                        // What is queued goes out, then this request runs again once
                        // what it waits for happened; the rest of the pipeline waits in
                        // `buf`. A waiting connection is not executing (group commit).
                        executing.done();
                        session.send_replies().await;
                        tokio::select! {
                            _ = outbox.gone.cancelled() => return,
                            _ = shutdown.cancelled() => {
                                outbox.close_after_flush();
                                return;
                            }
                            _ = session.ready(wait) => {}
                        }
                        flow = session.rerun(wait, &req.args, req.wire_len);
                    }
                    match flow {
                        Flow::Continue | Flow::Wait(_) => {}
                        Flow::CloseAfterReply => {
                            session.send_replies().await;
                            outbox.close_after_flush();
                            return;
                        }
                        Flow::CloseNow => {
                            outbox.kill();
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // Redis replies with the protocol error, then closes; anything
                    // pipelined after the bad request is never run.
                    let mut msg = b"ERR ".to_vec();
                    msg.extend_from_slice(&e.message_bytes());
                    session.protocol_error(&msg);
                    session.send_replies().await;
                    outbox.close_after_flush();
                    tracing::debug!(client = session.id(), error = %e, "protocol error");
                    return;
                }
            }
        }
        executing.done();
        session.send_replies().await;
        if buf.len() as u64 > settings.query_buffer_limit.load(Relaxed) {
            tracing::warn!(client = session.id(), addr = %session.client.peer, "Closing client that reached max query buffer length");
            Stats::add(&broker.stats.qbuf_limit_disconnections, 1);
            outbox.kill();
            return;
        }
        if buf.is_empty() {
            buf = BytesMut::new();
        }
    }
}
