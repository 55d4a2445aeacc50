//! Reads the commands of one AOF file (RESP multibulks, `*N\r\n$L\r\n<bytes>\r\n...`)
//! one at a time from any [`Read`], as Redis 7.0's `loadSingleAppendOnlyFile` does:
//! `#` lines between commands are annotations (`#TS:<unix time>`) and are skipped; end
//! of file between commands is a clean end, anywhere inside one is a truncation; any
//! other unexpected byte is a format error.
//!
//! Where Redis is lax this reader is strict, since the difference only shows on files
//! no Redis or fanout wrote: Redis reads numbers with `atoi`/`strtol` (so `*3abc`
//! counts 3 and `$-1` asks for a huge allocation) and skips the two bytes after a bulk
//! without checking them; here numbers are plain digits and every line ends in CRLF.
//!
//! Memory follows the bytes actually read, never a declared length alone: a corrupt
//! `$999999999999` costs what the file really holds before the truncation is seen.
//! The file is never read whole; a [`BufReader`] of [`BUF`] bytes sits in front.

use bytes::Bytes;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};

/// The read buffer, and the step by which a bulk's buffer grows.
pub const BUF: usize = 64 * 1024;

/// Redis reads an annotation with `fgets` into a 1024-byte buffer: past 1023 bytes the
/// rest of the line is read as the start of the next command (and fails as one).
const ANNOTATION_MAX: u64 = 1023;

#[derive(Debug)]
pub enum ReadError {
    /// End of file inside a command; `offset` is where that command starts.
    /// [`CommandReader::offset`] is where Redis would truncate the file.
    Truncated {
        offset: u64,
    },
    /// A byte that cannot be there: `offset` is its position.
    Corrupt {
        offset: u64,
        expected: &'static str,
    },
    Io(io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Truncated { offset } => {
                write!(
                    f,
                    "unexpected end of file inside the command starting at offset {offset}"
                )
            }
            ReadError::Corrupt { offset, expected } => {
                write!(f, "bad file format at offset {offset}: expected {expected}")
            }
            ReadError::Io(e) => write!(f, "read error: {e}"),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

pub struct CommandReader<R> {
    inner: BufReader<R>,
    /// Bytes consumed from `inner`.
    pos: u64,
    /// End of the last complete command.
    end: u64,
}

impl<R: Read> CommandReader<R> {
    pub fn new(r: R) -> Self {
        CommandReader {
            inner: BufReader::with_capacity(BUF, r),
            pos: 0,
            end: 0,
        }
    }

    /// End of the last complete command (0 before the first): Redis's `valid_up_to`,
    /// where `aof-load-truncated` cuts a truncated file. Annotations after it, even
    /// complete ones, are cut with the partial command.
    pub fn offset(&self) -> u64 {
        self.end
    }

    /// The next command's arguments and the offset of its `*`; `Ok(None)` at a clean
    /// end. After an error the reader's position is unspecified.
    #[allow(clippy::should_implement_trait)] // errors end the sequence; an Iterator would hide that
    pub fn next(&mut self) -> Result<Option<(Vec<Bytes>, u64)>, ReadError> {
        let start = loop {
            match self.peek()? {
                None => return Ok(None),
                Some(b'#') => self.skip_annotation()?,
                Some(b'*') => break self.pos,
                Some(_) => {
                    // A file with an RDB preamble (or an RDB base) would land here;
                    // say so rather than leave a puzzling "expected '*'" at offset 0.
                    let rdb = self.pos == 0 && self.inner.buffer().starts_with(b"REDIS");
                    let expected = if rdb {
                        "'*' starting a command, not an RDB preamble"
                    } else {
                        "'*' starting a command"
                    };
                    return Err(ReadError::Corrupt {
                        offset: self.pos,
                        expected,
                    });
                }
            }
        };
        self.bump();
        let argc = self.number(start, i32::MAX as u64)?;
        if argc == 0 {
            return Err(ReadError::Corrupt {
                offset: start + 1,
                expected: "an argument count of at least 1",
            });
        }
        // The count is only a claim too: capacity grows with arguments actually read.
        let mut args = Vec::with_capacity(argc.min(64) as usize);
        for _ in 0..argc {
            self.expect(start, b'$', "'$' starting an argument")?;
            let len = self.number(start, i64::MAX as u64)?;
            args.push(self.bulk(start, len)?);
            self.crlf(start)?;
        }
        self.end = self.pos;
        Ok(Some((args, start)))
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        loop {
            match self.inner.fill_buf() {
                Ok(b) => return Ok(b.first().copied()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn bump(&mut self) {
        self.inner.consume(1);
        self.pos += 1;
    }

    /// The next byte inside the command starting at `start`, not consumed.
    fn byte(&mut self, start: u64) -> Result<u8, ReadError> {
        self.peek()?.ok_or(ReadError::Truncated { offset: start })
    }

    fn expect(&mut self, start: u64, want: u8, expected: &'static str) -> Result<(), ReadError> {
        if self.byte(start)? != want {
            return Err(ReadError::Corrupt {
                offset: self.pos,
                expected,
            });
        }
        self.bump();
        Ok(())
    }

    fn crlf(&mut self, start: u64) -> Result<(), ReadError> {
        self.expect(start, b'\r', "CRLF")?;
        self.expect(start, b'\n', "CRLF")
    }

    /// Decimal digits up to `max`, then CRLF.
    fn number(&mut self, start: u64, max: u64) -> Result<u64, ReadError> {
        let first = self.pos;
        let mut n: u64 = 0;
        loop {
            let b = self.byte(start)?;
            if !b.is_ascii_digit() {
                break;
            }
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(b - b'0')))
                .filter(|&n| n <= max)
                .ok_or(ReadError::Corrupt {
                    offset: self.pos,
                    expected: "a number within range",
                })?;
            self.bump();
        }
        if self.pos == first {
            return Err(ReadError::Corrupt {
                offset: self.pos,
                expected: "a number",
            });
        }
        self.crlf(start)?;
        Ok(n)
    }

    /// `len` bytes of a bulk. The buffer doubles (from [`BUF`]) up to `len`, each step
    /// reserved only once the previous one was filled from the file.
    fn bulk(&mut self, start: u64, len: u64) -> Result<Bytes, ReadError> {
        let mut v = Vec::new();
        while (v.len() as u64) < len {
            let step = (len - v.len() as u64).min(v.len().max(BUF) as u64);
            v.reserve_exact(step as usize);
            let n = (&mut self.inner).take(step).read_to_end(&mut v)? as u64;
            self.pos += n;
            if n < step {
                return Err(ReadError::Truncated { offset: start });
            }
        }
        Ok(Bytes::from(v))
    }

    /// Skips one annotation line, through its '\n' or [`ANNOTATION_MAX`] bytes. End of
    /// file inside one is a clean end, as for Redis (its `fgets` returns the partial
    /// line, the next one finds EOF).
    fn skip_annotation(&mut self) -> io::Result<()> {
        for _ in 0..ANNOTATION_MAX {
            match self.peek()? {
                None => break,
                Some(b) => {
                    self.bump();
                    if b == b'\n' {
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command, or the error that ended the file, with the final `offset()`.
    type Command = (Vec<Bytes>, u64);

    fn read_all(data: &[u8]) -> (Vec<Command>, Option<ReadError>, u64) {
        let mut r = CommandReader::new(data);
        let mut out = Vec::new();
        loop {
            match r.next() {
                Ok(Some(c)) => out.push(c),
                Ok(None) => return (out, None, r.offset()),
                Err(e) => return (out, Some(e), r.offset()),
            }
        }
    }

    fn args(c: &Command) -> Vec<&[u8]> {
        c.0.iter().map(|b| b.as_ref()).collect()
    }

    fn corrupt_at(data: &[u8]) -> (u64, &'static str) {
        match read_all(data).1 {
            Some(ReadError::Corrupt { offset, expected }) => (offset, expected),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(data)),
        }
    }

    const THREE: &[u8] =
        b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n*1\r\n$4\r\nPING\r\n";
    const STARTS: [u64; 3] = [0, 23, 49];

    #[test]
    fn commands_and_offsets() {
        let (cmds, err, end) = read_all(THREE);
        assert!(err.is_none());
        assert_eq!(cmds.iter().map(|c| c.1).collect::<Vec<_>>(), STARTS);
        assert_eq!(args(&cmds[1]), [&b"SET"[..], b"k", b""]);
        assert_eq!(end, THREE.len() as u64);
        // Bulks are binary: CRLF inside one is data.
        let (cmds, err, _) = read_all(b"*1\r\n$4\r\na\r\nb\r\n");
        assert!(err.is_none());
        assert_eq!(args(&cmds[0]), [b"a\r\nb"]);
        assert!(read_all(b"").0.is_empty());
    }

    #[test]
    fn annotations_are_skipped() {
        let data = b"#TS:1\r\n*1\r\n$1\r\na\r\n#TS:2\r\n#x\n*1\r\n$1\r\nb\r\n#TS:3 cut";
        let (cmds, err, end) = read_all(data);
        assert!(err.is_none());
        assert_eq!(cmds.iter().map(|c| c.1).collect::<Vec<_>>(), [7, 28]);
        assert_eq!(end, 39);
        // A '#' inside a command is not an annotation.
        assert_eq!(corrupt_at(b"*1\r\n#TS:1\r\n"), (4, "'$' starting an argument"));
        // An annotation longer than Redis's 1023-byte read: the rest is a bad command.
        let mut long = vec![b'x'; 1100];
        long[0] = b'#';
        long.extend_from_slice(b"\r\n*1\r\n$1\r\na\r\n");
        assert_eq!(corrupt_at(&long), (1023, "'*' starting a command"));
    }

    #[test]
    fn truncated_at_every_byte() {
        let ends = [23, 49, THREE.len() as u64];
        for cut in 0..THREE.len() as u64 {
            let (cmds, err, end) = read_all(&THREE[..cut as usize]);
            let complete = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(cmds.len(), complete, "cut {cut}");
            assert_eq!(end, if complete == 0 { 0 } else { ends[complete - 1] }, "cut {cut}");
            let start = STARTS[complete];
            match err {
                None => assert_eq!(cut, start, "cut {cut}"),
                Some(ReadError::Truncated { offset }) => assert_eq!(offset, start, "cut {cut}"),
                Some(e) => panic!("cut {cut}: {e}"),
            }
        }
    }

    #[test]
    fn corruption_offsets() {
        let one = b"*1\r\n$1\r\na\r\n";
        let after = |tail: &[u8]| [&one[..], tail].concat();
        assert_eq!(corrupt_at(b"+OK\r\n"), (0, "'*' starting a command"));
        assert_eq!(corrupt_at(&after(b"\r\n")), (11, "'*' starting a command"));
        assert_eq!(
            corrupt_at(b"REDIS0009\xfa"),
            (0, "'*' starting a command, not an RDB preamble")
        );
        assert_eq!(corrupt_at(b"*\r\n"), (1, "a number"));
        assert_eq!(corrupt_at(b"*-1\r\n"), (1, "a number"));
        assert_eq!(corrupt_at(b"*0\r\n"), (1, "an argument count of at least 1"));
        assert_eq!(corrupt_at(b"*3abc\r\n"), (2, "CRLF"));
        assert_eq!(corrupt_at(b"*1\n$1\r\na\r\n"), (2, "CRLF"));
        assert_eq!(corrupt_at(b"*9999999999\r\n"), (10, "a number within range"));
        assert_eq!(
            corrupt_at(&after(b"*2\r\n$1\r\nb\r\n:1\r\n")),
            (22, "'$' starting an argument")
        );
        assert_eq!(corrupt_at(b"*1\r\n$x\r\n"), (5, "a number"));
        assert_eq!(
            corrupt_at(b"*1\r\n$99999999999999999999\r\n"),
            (23, "a number within range")
        );
        assert_eq!(corrupt_at(b"*1\r\n$1\r\nabc\r\n"), (9, "CRLF"));
        assert_eq!(corrupt_at(b"*1\r\n$1\r\na\rX"), (10, "CRLF"));
        let e = ReadError::Corrupt {
            offset: 9,
            expected: "CRLF",
        };
        assert_eq!(e.to_string(), "bad file format at offset 9: expected CRLF");
    }

    #[test]
    fn huge_declared_length_is_truncation() {
        // Allocating the declared terabyte up front would abort the test.
        let data = b"*1\r\n$1\r\na\r\n*1\r\n$999999999999\r\nabc";
        let (cmds, err, end) = read_all(data);
        assert_eq!(cmds.len(), 1);
        assert!(matches!(err, Some(ReadError::Truncated { offset: 11 })), "{err:?}");
        assert_eq!(end, 11);
        // Same for a huge argument count.
        assert!(matches!(
            read_all(b"*2000000000\r\n$1\r\na\r\n").1,
            Some(ReadError::Truncated { offset: 0 })
        ));
    }

    #[test]
    fn bulks_larger_than_the_buffer() {
        let big = vec![7u8; 3 * BUF + 5];
        let mut data = format!("*2\r\n$3\r\nSET\r\n${}\r\n", big.len()).into_bytes();
        data.extend_from_slice(&big);
        data.extend_from_slice(b"\r\n");
        let (cmds, err, _) = read_all(&data);
        assert!(err.is_none());
        assert_eq!(cmds[0].0[1], big);
        let (_, err, _) = read_all(&data[..data.len() - 3]);
        assert!(matches!(err, Some(ReadError::Truncated { offset: 0 })));
    }

    /// Hands out one byte per read, with an `Interrupted` before each, then fails.
    struct Trickle<'a>(&'a [u8], bool);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 = !self.1;
            if self.1 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            match self.0.split_first() {
                Some((&b, rest)) if !buf.is_empty() => {
                    buf[0] = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    /// A base and an incr written by redis-server 7.0.15 (`--appendonly yes
    /// --aof-use-rdb-preamble no`, then `CONFIG SET aof-timestamp-enabled yes`).
    #[test]
    fn files_written_by_redis() {
        let base: &[u8] = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nn\r\n$1\r\n1\r\n\
            *5\r\n$5\r\nRPUSH\r\n$1\r\nl\r\n$1\r\na\r\n$1\r\nb\r\n$3\r\nc d\r\n\
            *3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$11\r\nline1\nline2\r\n*3\r\n$3\r\nSET\r\n$3\r\nfoo\r\n$3\r\nbar\r\n";
        let incr: &[u8] = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nset\r\n$5\r\nafter\r\n$8\r\nrewrite2\r\n\
            #TS:1796199125\r\n*3\r\n$3\r\nset\r\n$2\r\nts\r\n$3\r\nyes\r\n";
        let (cmds, err, end) = read_all(base);
        assert!(err.is_none());
        assert_eq!((cmds.len(), end), (5, 165));
        assert_eq!(args(&cmds[3]), [&b"SET"[..], b"k1", b"line1\nline2"]);

        let mut r = CommandReader::new(Trickle(incr, false));
        let mut got = Vec::new();
        while let Some((a, at)) = r.next().unwrap() {
            got.push((String::from_utf8(a.concat()).unwrap(), at));
        }
        assert_eq!(
            got,
            [
                ("SELECT0".into(), 0),
                ("setafterrewrite2".into(), 23),
                ("settsyes".into(), 77)
            ]
        );
        assert_eq!(r.offset(), 107);
    }

    #[test]
    fn io_errors_pass_through() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let err = CommandReader::new(Broken).next().unwrap_err();
        assert_eq!(err.to_string(), "read error: disk on fire");
    }
}
