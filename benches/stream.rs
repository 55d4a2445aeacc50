//! Criterion benches of the stream data type: appending 64-byte entries, reading 100
//! entries from the middle of a 1M-entry stream (forwards and backwards), and iterating
//! every field of every entry.
//!
//! `cargo bench --bench stream`; `cargo bench --bench stream -- --test` just runs each once.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fanout::stream::{AddId, Id, NodeLimits, Stream};

const LIMITS: NodeLimits = NodeLimits {
    max_entries: 100,
    max_bytes: 4096,
};

fn fields() -> [Bytes; 2] {
    [Bytes::from_static(b"f"), Bytes::from(vec![b'x'; 64])]
}

fn filled(n: u64) -> Stream {
    let f = fields();
    let mut s = Stream::new();
    for i in 0..n {
        let id = s.next_id(AddId::Auto, 1_700_000_000_000 + i / 8).unwrap();
        s.append(id, &f, &LIMITS);
    }
    s
}

fn append(c: &mut Criterion) {
    let f = fields();
    let mut g = c.benchmark_group("stream");
    g.throughput(Throughput::Elements(1));
    let mut s = Stream::new();
    let mut now = 1_700_000_000_000u64;
    g.bench_function("append_64b", |b| {
        b.iter(|| {
            now += 1;
            let id = s.next_id(AddId::Auto, now / 8).unwrap();
            s.append(id, black_box(&f), &LIMITS);
        })
    });
    g.finish();
}

fn read(c: &mut Criterion) {
    let s = filled(1_000_000);
    let start = s.range(Id::MIN, Id::MAX).nth(500_000).unwrap().id;
    let mut g = c.benchmark_group("stream");
    g.throughput(Throughput::Elements(100));
    g.bench_function("range_100_of_1m", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in s.range(black_box(start), Id::MAX).take(100) {
                for (f, v) in e.fields() {
                    n += f.len() + v.len();
                }
            }
            n
        })
    });
    g.bench_function("range_rev_100_of_1m", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in s.range_rev(black_box(start), Id::MIN).take(100) {
                for (f, v) in e.fields() {
                    n += f.len() + v.len();
                }
            }
            n
        })
    });
    g.finish();

    let small = filled(100_000);
    let mut g = c.benchmark_group("stream");
    g.throughput(Throughput::Elements(100_000));
    g.sample_size(10);
    g.bench_function("iterate_all_fields_100k", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in small.range(Id::MIN, Id::MAX) {
                for (f, v) in e.fields() {
                    n += f.len() + v.len();
                }
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, append, read);
criterion_main!(benches);
