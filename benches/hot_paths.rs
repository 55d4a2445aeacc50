//! Criterion benches of the hot paths: parsing pipelined PUBLISH requests, encoding
//! message frames, glob matching, publishing to N in-process subscribers, and
//! publishing with 10,000 patterns registered.
//!
//! `cargo bench` runs them all; `cargo bench -- publish` a subset.

use std::hint::black_box;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fanout::client::outbox::Take;
use fanout::client::Outbox;
use fanout::config::Settings;
use fanout::glob;
use fanout::protocol::request::{Limits, RequestParser};
use fanout::protocol::wire::{message_frame, Wire};
use fanout::pubsub::{Namespace, Registry};
use fanout::stats::Stats;

fn parse(c: &mut Criterion) {
    let mut wire = BytesMut::new();
    let n = 1000;
    for i in 0..n {
        let payload = format!("payload-{i:056}");
        wire.put_slice(
            format!(
                "*3\r\n$7\r\nPUBLISH\r\n$7\r\nchannel\r\n${}\r\n{}\r\n",
                payload.len(),
                payload
            )
            .as_bytes(),
        );
    }
    let wire = wire.freeze();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(n));
    g.bench_function("pipelined_publish_x1000", |b| {
        let limits = Limits {
            proto_max_bulk_len: 512 << 20,
            authenticated: true,
        };
        b.iter(|| {
            let mut buf = BytesMut::from(&wire[..]);
            let mut p = RequestParser::new();
            let mut count = 0;
            while let Ok(Some(r)) = p.next(&mut buf, &limits) {
                count += r.args.len();
            }
            black_box(count)
        })
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let payload = vec![b'x'; 64];
    let mut g = c.benchmark_group("encode");
    g.bench_function("message_64b_resp2", |b| {
        b.iter(|| black_box(message_frame(Wire::Resp2, b"message", None, b"news.tech", &payload)))
    });
    g.bench_function("pmessage_64b_resp3", |b| {
        b.iter(|| {
            black_box(message_frame(
                Wire::Resp3,
                b"pmessage",
                Some(b"news.*"),
                b"news.tech",
                &payload,
            ))
        })
    });
    g.finish();
}

fn globs(c: &mut Criterion) {
    let mut g = c.benchmark_group("glob");
    g.bench_function("prefix_star", |b| {
        b.iter(|| black_box(glob::matches(b"news.*", b"news.sports.football")))
    });
    g.bench_function("class_and_qmark", |b| {
        b.iter(|| black_box(glob::matches(b"user:[0-9]?:*:inbox", b"user:42:device:inbox")))
    });
    let subject = vec![b'a'; 4096];
    g.bench_function("hostile_stars_4k", |b| {
        b.iter(|| black_box(glob::matches(b"*a*a*a*a*a*a*a*a*b", &subject)))
    });
    g.finish();
}

fn registry_with(n_subs: usize) -> (Registry, Vec<Arc<Outbox>>) {
    let settings = Arc::new(Settings::default());
    let reg = Registry::new(settings, Arc::new(Stats::default()));
    let subs: Vec<Arc<Outbox>> = (0..n_subs as u64).map(|i| Arc::new(Outbox::new(i + 1))).collect();
    for s in &subs {
        s.set_pubsub_mode(true);
        reg.subscribe(Namespace::Global, b"bench", s);
    }
    (reg, subs)
}

/// Empties the outboxes as a writer would, so queues stay small between iterations.
fn drain(subs: &[Arc<Outbox>], batch: &mut Vec<Bytes>) {
    for s in subs {
        if let Take::Write(n) = s.take(batch, usize::MAX) {
            s.written(n);
        }
        batch.clear();
    }
}

fn publish(c: &mut Criterion) {
    let mut g = c.benchmark_group("publish");
    let payload = vec![b'x'; 64];
    for n in [1usize, 10, 100, 1000] {
        let (reg, subs) = registry_with(n);
        let mut batch = Vec::new();
        let mut to_self = Vec::new();
        let mut published = fanout::pubsub::Batch::default();
        g.throughput(Throughput::Elements(16 * n as u64));
        g.bench_with_input(BenchmarkId::new("subscribers", n), &n, |b, _| {
            b.iter(|| {
                // 16 publishes per drain, as a writer would find several messages queued.
                for _ in 0..16 {
                    black_box(reg.publish(Namespace::Global, b"bench", &payload, 0, &mut to_self, &mut published));
                }
                reg.end_batch(&mut published);
                drain(&subs, &mut batch);
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("patterns");
    for n in [100usize, 10_000] {
        let (reg, _) = registry_with(0);
        let sub = Arc::new(Outbox::new(1));
        sub.set_pubsub_mode(true);
        for i in 0..n {
            reg.patterns.subscribe(format!("bench:{i}:*").as_bytes(), &sub);
        }
        let channels: Vec<Vec<u8>> = (0..256)
            .map(|i| format!("bench:{}:x", i * 37 % n).into_bytes())
            .collect();
        let mut batch = Vec::new();
        let mut to_self = Vec::new();
        let mut published = fanout::pubsub::Batch::default();
        let mut i = 0;
        g.bench_with_input(BenchmarkId::new("publish_one_match", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) % channels.len();
                black_box(reg.publish(
                    Namespace::Global,
                    &channels[i],
                    &payload,
                    0,
                    &mut to_self,
                    &mut published,
                ));
                reg.end_batch(&mut published);
                drain(std::slice::from_ref(&sub), &mut batch);
            })
        });
    }
    g.finish();
    pattern_lookup(c);
}

/// The pattern shapes of issue 15: `(name, pattern i, channel k matching pattern i only)`.
type Shape = (&'static str, fn(usize) -> String, fn(usize, usize) -> String);

const SHAPES: [Shape; 5] = [
    ("prefix", |i| format!("p{i}.*"), |i, k| format!("p{i}.x{k}")),
    (
        "inner_wildcard",
        |i| format!("bench.*.p{i}"),
        |i, k| format!("bench.x{k}.p{i}"),
    ),
    ("leading_wildcard", |i| format!("*.p{i}"), |i, k| format!("x{k}.p{i}")),
    ("literal_between", |i| format!("*:{i}:*"), |i, k| format!("x{k}:{i}:y")),
    (
        "class",
        |i| format!("room.[0-9]*.{i}"),
        |i, k| format!("room.5z{k}.{i}"),
    ),
];

/// Pattern lookup alone (the part of a publish that finds the matching patterns), per
/// shape and pattern count. `hot` cycles over 256 channels, as a server whose channels
/// are published again and again; `cold` over 8,192, more than the lookup cache holds,
/// so every lookup goes through the index. `miss` publishes channels no pattern matches,
/// with the five shapes' patterns registered together.
fn pattern_lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("patterns_lookup");
    g.sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_millis(1200));
    let sub = Arc::new(Outbox::new(1));
    let shapes = SHAPES.iter().map(|&(name, pat, ch)| (name, pat, ch));
    let miss: Shape = (
        "miss",
        |i| (SHAPES[i % SHAPES.len()].1)(i),
        |_, k| format!("nomatch.{k}"),
    );
    for (name, pat, ch) in shapes.chain(std::iter::once(miss)) {
        for n in [100usize, 1000, 10_000] {
            let (reg, _) = registry_with(0);
            for i in 0..n {
                reg.patterns.subscribe(pat(i).as_bytes(), &sub);
            }
            for (temp, distinct) in [("hot", 256usize), ("cold", 8192)] {
                let channels: Vec<Vec<u8>> = (0..distinct).map(|k| ch(k * 37 % n, k).into_bytes()).collect();
                let mut k = 0;
                g.bench_function(BenchmarkId::new(format!("{name}/{temp}"), n), |b| {
                    b.iter(|| {
                        k = (k + 1) % channels.len();
                        let mut found = 0;
                        reg.patterns.for_each_match(&channels[k], |_, s| found += s.len());
                        black_box(found)
                    })
                });
            }
        }
    }
    g.finish();
}

criterion_group!(benches, parse, encode, globs, publish);
criterion_main!(benches);
