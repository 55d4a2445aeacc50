//! Feeds arbitrary bytes, cut into arbitrary chunks, to `RequestParser` with arbitrary
//! `Limits`, the way the connection's read loop does (append a chunk, call `next` until it
//! yields `Ok(None)`, stop at the first error).
//!
//! Checks, besides "never panics":
//! * the parser only ever removes bytes from the front of the buffer, never more than are
//!   there, and the requests it returns account for no more bytes than it removed;
//! * an `Ok(Some(req))` has a non-empty argument vector whose payload fits in `wire_len`;
//! * `bytes_wanted` never exceeds what the limits allow for one bulk;
//! * for inputs of at most `PROTO_INLINE_MAX_SIZE` bytes (where Redis's "too big" check cannot
//!   depend on read sizes), the chunking does not matter: the requests, the final error and
//!   the bytes left over are the same as when everything arrives in one read.

#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use fanout::protocol::request::{Limits, ProtocolError, Request, RequestParser, PROTO_INLINE_MAX_SIZE};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum MaxBulk {
    Default,
    Small(u16),
    Any(u64),
}

/// The input is built from pieces so that a small fuzz input can stand for the long lines
/// and big bulks the limits are about (a 70 KB inline request, a header after 64 KB).
#[derive(Arbitrary, Debug)]
enum Piece {
    Bytes(Vec<u8>),
    /// `byte` repeated `len % 140_000` times.
    Run {
        byte: u8,
        len: u32,
    },
    /// A well-formed multibulk request with these arguments.
    Command(Vec<Vec<u8>>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    max_bulk: MaxBulk,
    authenticated: bool,
    /// Chunk sizes, used cyclically; empty means "all at once".
    splits: Vec<u16>,
    pieces: Vec<Piece>,
}

#[derive(Debug, PartialEq)]
struct Outcome {
    requests: Vec<Request>,
    error: Option<ProtocolError>,
    /// What is left in the buffer when the input ran out without an error.
    leftover: Option<Vec<u8>>,
}

fn run(data: &[u8], splits: &[u16], limits: &Limits) -> Outcome {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    let mut appended = 0usize;
    let mut wire_total = 0usize;
    let mut pos = 0usize;
    let mut i = 0usize;
    while pos < data.len() {
        let n = if splits.is_empty() {
            data.len()
        } else {
            // Chunks of 1..=65536 bytes, but at most ~256 of them so that the long inputs
            // stay fast to run.
            (usize::from(splits[i % splits.len()]) + 1).max(data.len() / 256)
        };
        i += 1;
        let end = data.len().min(pos + n);
        buf.extend_from_slice(&data[pos..end]);
        appended += end - pos;
        pos = end;
        loop {
            let before = buf.len();
            let result = parser.next(&mut buf, limits);
            assert!(buf.len() <= before, "parser grew the buffer: {before} -> {}", buf.len());
            let consumed = appended - buf.len();
            match result {
                Ok(Some(req)) => {
                    assert!(!req.args.is_empty(), "empty argument vector: {req:?}");
                    assert!(req.wire_len > 0, "zero wire_len: {req:?}");
                    let payload: usize = req.args.iter().map(|a| a.len()).sum();
                    assert!(
                        payload <= req.wire_len,
                        "args longer than the request on the wire: {req:?}"
                    );
                    wire_total += req.wire_len;
                    assert!(
                        wire_total <= consumed,
                        "requests claim {wire_total} wire bytes but only {consumed} were consumed"
                    );
                    requests.push(req);
                }
                Ok(None) => {
                    let cap = limits.proto_max_bulk_len.saturating_add(2);
                    assert!(
                        parser.bytes_wanted() as u64 <= cap,
                        "bytes_wanted {} above the bulk limit {cap}",
                        parser.bytes_wanted()
                    );
                    break;
                }
                Err(error) => {
                    return Outcome {
                        requests,
                        error: Some(error),
                        leftover: None,
                    };
                }
            }
        }
    }
    Outcome {
        requests,
        error: None,
        leftover: Some(buf.to_vec()),
    }
}

fuzz_target!(|input: Input| {
    let limits = Limits {
        proto_max_bulk_len: match input.max_bulk {
            MaxBulk::Default => fanout::protocol::request::DEFAULT_PROTO_MAX_BULK_LEN,
            MaxBulk::Small(n) => u64::from(n),
            MaxBulk::Any(n) => n,
        },
        authenticated: input.authenticated,
    };
    let mut data = Vec::new();
    for piece in &input.pieces {
        match piece {
            Piece::Bytes(b) => data.extend_from_slice(b),
            Piece::Run { byte, len } => data.resize(data.len() + (*len % 140_000) as usize, *byte),
            Piece::Command(args) => {
                data.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
                for a in args {
                    data.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                    data.extend_from_slice(a);
                    data.extend_from_slice(b"\r\n");
                }
            }
        }
        if data.len() > 1 << 20 {
            break;
        }
    }
    let chunked = run(&data, &input.splits, &limits);
    if data.len() <= PROTO_INLINE_MAX_SIZE && !input.splits.is_empty() {
        let whole = run(&data, &[], &limits);
        assert_eq!(chunked, whole, "chunking changed the outcome");
    }
});
