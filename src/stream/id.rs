//! Stream entry IDs and the ways commands spell them.
//!
//! An ID is two u64s compared as one 128-bit number (`ms` first), which is exactly what
//! the derived `Ord` on `{ ms, seq }` gives. Parsing follows Redis's `string2ull` rules
//! (a leading `+` is accepted, no `-` sign, no spaces, overflow is invalid) because clients
//! and the conformance tests rely on the quirks (`XADD s +8-1 f v` answers `8-1`).
//! Every parser returns `Option`/`Result` without text: the command layer owns the error
//! strings.

use std::fmt;

use bytes::Bytes;

/// A stream entry ID, `ms-seq`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Id {
    pub ms: u64,
    pub seq: u64,
}

impl Id {
    /// `0-0`, what `-` means.
    pub const MIN: Id = Id { ms: 0, seq: 0 };
    /// `u64::MAX-u64::MAX`, what `+` means.
    pub const MAX: Id = Id {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> Id {
        Id { ms, seq }
    }

    /// The smallest ID greater than `self`; None for `Id::MAX`.
    pub fn next(self) -> Option<Id> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                None
            } else {
                Some(Id {
                    ms: self.ms + 1,
                    seq: 0,
                })
            }
        } else {
            Some(Id {
                ms: self.ms,
                seq: self.seq + 1,
            })
        }
    }

    /// The greatest ID smaller than `self`; None for `Id::MIN`.
    pub fn prev(self) -> Option<Id> {
        if self.seq == 0 {
            if self.ms == 0 {
                None
            } else {
                Some(Id {
                    ms: self.ms - 1,
                    seq: u64::MAX,
                })
            }
        } else {
            Some(Id {
                ms: self.ms,
                seq: self.seq - 1,
            })
        }
    }

    pub fn is_zero(self) -> bool {
        self.ms == 0 && self.seq == 0
    }

    /// Appends `ms-seq` in decimal. Replies write thousands of IDs, so this avoids
    /// `format!` and its allocation.
    pub fn write_to(self, out: &mut Vec<u8>) {
        write_u64(self.ms, out);
        out.push(b'-');
        write_u64(self.seq, out);
    }

    /// `ms-seq` as a bulk-string payload.
    pub fn to_bytes(self) -> Bytes {
        let mut v = Vec::with_capacity(41);
        self.write_to(&mut v);
        Bytes::from(v)
    }
}

/// Appends `n` in decimal, without `format!`.
pub fn write_u64(mut n: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Redis copies an ID argument into a 128-byte buffer (with its NUL), so 127 is the limit.
const MAX_ID_LEN: usize = 127;

/// Redis's `string2ull`: optional leading `+`, then 1..=20 decimal digits that fit in u64.
/// (`string2ull` also accepts leading zeros, as `strtoull` does.)
fn parse_u64(s: &[u8]) -> Option<u64> {
    let s = s.strip_prefix(b"+").unwrap_or(s);
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// Splits at the first `-`, as Redis's `strchr` does (so `1-2-3` leaves `2-3` as the seq,
/// which then fails to parse).
fn split_dash(arg: &[u8]) -> (&[u8], Option<&[u8]>) {
    match memchr_dash(arg) {
        Some(i) => (&arg[..i], Some(&arg[i + 1..])),
        None => (arg, None),
    }
}

fn memchr_dash(arg: &[u8]) -> Option<usize> {
    arg.iter().position(|&c| c == b'-')
}

/// `ms` or `ms-seq` (`ms` alone takes `missing_seq`). `-` and `+` are not IDs here.
pub fn parse_id(arg: &[u8], missing_seq: u64) -> Option<Id> {
    if arg.len() > MAX_ID_LEN || arg == b"-" || arg == b"+" {
        return None;
    }
    let (ms, seq) = split_dash(arg);
    let ms = parse_u64(ms)?;
    let seq = match seq {
        Some(s) => parse_u64(s)?,
        None => missing_seq,
    };
    Some(Id { ms, seq })
}

/// Why a range bound was rejected; each is a different Redis error text.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RangeError {
    /// `ERR Invalid stream ID specified as stream command argument`
    Invalid,
    /// `ERR invalid start ID for the interval` (`(` + the maximum ID as a start)
    StartExclusiveMax,
    /// `ERR invalid end ID for the interval` (`(0-0` as an end)
    EndExclusiveMin,
}

/// Splits off the exclusive `(` prefix. As in Redis a lone `(` is not exclusive (and then
/// fails as an ID).
fn exclusive(arg: &[u8]) -> (bool, &[u8]) {
    if arg.len() > 1 && arg[0] == b'(' {
        (true, &arg[1..])
    } else {
        (false, arg)
    }
}

/// A range start: `-`, `+`, `ms` (seq 0), `ms-seq`, or exclusive `(id`.
pub fn parse_range_start(arg: &[u8]) -> Result<Id, RangeError> {
    let (excl, body) = exclusive(arg);
    if excl {
        let id = parse_id(body, 0).ok_or(RangeError::Invalid)?;
        return id.next().ok_or(RangeError::StartExclusiveMax);
    }
    parse_bound(arg, 0)
}

/// A range end: `-`, `+`, `ms` (seq u64::MAX), `ms-seq`, or exclusive `(id`.
pub fn parse_range_end(arg: &[u8]) -> Result<Id, RangeError> {
    let (excl, body) = exclusive(arg);
    if excl {
        let id = parse_id(body, u64::MAX).ok_or(RangeError::Invalid)?;
        return id.prev().ok_or(RangeError::EndExclusiveMin);
    }
    parse_bound(arg, u64::MAX)
}

fn parse_bound(arg: &[u8], missing_seq: u64) -> Result<Id, RangeError> {
    match arg {
        b"-" => Ok(Id::MIN),
        b"+" => Ok(Id::MAX),
        _ => parse_id(arg, missing_seq).ok_or(RangeError::Invalid),
    }
}

/// The ID argument of XADD.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AddId {
    /// `*`
    Auto,
    /// `ms-*`
    AutoSeq(u64),
    /// `ms` (seq 0) or `ms-seq`
    Explicit(Id),
}

impl AddId {
    /// `0-0` (or `0`) is rejected before the key is even looked up, so the caller asks first.
    pub fn is_zero(&self) -> bool {
        matches!(self, AddId::Explicit(id) if id.is_zero())
    }
}

/// `*`, `ms-*`, `ms` or `ms-seq`.
pub fn parse_add_id(arg: &[u8]) -> Option<AddId> {
    if arg == b"*" {
        return Some(AddId::Auto);
    }
    if arg.len() > MAX_ID_LEN || arg == b"-" || arg == b"+" {
        return None;
    }
    let (ms, seq) = split_dash(arg);
    let ms = parse_u64(ms)?;
    match seq {
        Some(b"*") => Some(AddId::AutoSeq(ms)),
        Some(s) => Some(AddId::Explicit(Id { ms, seq: parse_u64(s)? })),
        None => Some(AddId::Explicit(Id { ms, seq: 0 })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_prev_edges() {
        assert_eq!(Id::new(1, 2).next(), Some(Id::new(1, 3)));
        assert_eq!(Id::new(1, u64::MAX).next(), Some(Id::new(2, 0)));
        assert_eq!(Id::MAX.next(), None);
        assert_eq!(Id::new(2, 0).prev(), Some(Id::new(1, u64::MAX)));
        assert_eq!(Id::MIN.prev(), None);
    }

    #[test]
    fn formatting() {
        assert_eq!(&Id::new(0, 0).to_bytes()[..], b"0-0");
        assert_eq!(&Id::MAX.to_bytes()[..], b"18446744073709551615-18446744073709551615");
        assert_eq!(Id::new(1526919030474, 55).to_string(), "1526919030474-55");
        let mut v = b"x".to_vec();
        Id::new(10, 7).write_to(&mut v);
        assert_eq!(v, b"x10-7");
    }

    #[test]
    fn parse_plain_ids() {
        assert_eq!(parse_id(b"5", 0), Some(Id::new(5, 0)));
        assert_eq!(parse_id(b"5", 9), Some(Id::new(5, 9)));
        assert_eq!(parse_id(b"5-3", 9), Some(Id::new(5, 3)));
        assert_eq!(parse_id(b"+8-1", 0), Some(Id::new(8, 1)));
        assert_eq!(parse_id(b"8-+1", 0), Some(Id::new(8, 1)));
        assert_eq!(parse_id(b"18446744073709551615-18446744073709551615", 0), Some(Id::MAX));
        for bad in [
            &b"18446744073709551616-0"[..],
            b"0-18446744073709551616",
            b"-7",
            b"7-",
            b"1-2-3",
            b"abc",
            b"",
            b"-",
            b"+",
            b"1 ",
            b"++1",
            b"1-*",
        ] {
            assert_eq!(parse_id(bad, 0), None, "{:?}", String::from_utf8_lossy(bad));
        }
        // 127 bytes are fine (leading zeros), 128 are not.
        let mut long = vec![b'0'; 125];
        long.extend_from_slice(b"-1");
        assert_eq!(long.len(), 127);
        assert_eq!(parse_id(&long, 0), Some(Id::new(0, 1)));
        long.insert(0, b'0');
        assert_eq!(parse_id(&long, 0), None);
    }

    #[test]
    fn parse_ranges() {
        assert_eq!(parse_range_start(b"-"), Ok(Id::MIN));
        assert_eq!(parse_range_start(b"+"), Ok(Id::MAX));
        assert_eq!(parse_range_end(b"-"), Ok(Id::MIN));
        assert_eq!(parse_range_end(b"+"), Ok(Id::MAX));
        assert_eq!(parse_range_start(b"5"), Ok(Id::new(5, 0)));
        assert_eq!(parse_range_end(b"5"), Ok(Id::new(5, u64::MAX)));
        assert_eq!(parse_range_start(b"(5-1"), Ok(Id::new(5, 2)));
        assert_eq!(parse_range_end(b"(5-1"), Ok(Id::new(5, 0)));
        // `(ms` alone: the start excludes ms-0, the end excludes ms-MAX.
        assert_eq!(parse_range_start(b"(5"), Ok(Id::new(5, 1)));
        assert_eq!(parse_range_end(b"(5"), Ok(Id::new(5, u64::MAX - 1)));
        assert_eq!(parse_range_start(b"(-"), Err(RangeError::Invalid));
        assert_eq!(parse_range_start(b"(+"), Err(RangeError::Invalid));
        assert_eq!(parse_range_end(b"(-"), Err(RangeError::Invalid));
        assert_eq!(parse_range_end(b"(+"), Err(RangeError::Invalid));
        assert_eq!(
            parse_range_start(b"(18446744073709551615-18446744073709551615"),
            Err(RangeError::StartExclusiveMax)
        );
        assert_eq!(parse_range_end(b"(0-0"), Err(RangeError::EndExclusiveMin));
        assert_eq!(parse_range_end(b"(0"), Ok(Id::new(0, u64::MAX - 1)));
        assert_eq!(parse_range_start(b"("), Err(RangeError::Invalid));
        assert_eq!(parse_range_start(b"abc"), Err(RangeError::Invalid));
    }

    #[test]
    fn parse_add_ids() {
        assert_eq!(parse_add_id(b"*"), Some(AddId::Auto));
        assert_eq!(parse_add_id(b"5-*"), Some(AddId::AutoSeq(5)));
        assert_eq!(parse_add_id(b"5"), Some(AddId::Explicit(Id::new(5, 0))));
        assert_eq!(parse_add_id(b"+8-1"), Some(AddId::Explicit(Id::new(8, 1))));
        assert_eq!(parse_add_id(b"5-3"), Some(AddId::Explicit(Id::new(5, 3))));
        assert!(parse_add_id(b"0-0").unwrap().is_zero());
        assert!(parse_add_id(b"0").unwrap().is_zero());
        assert!(!parse_add_id(b"0-*").unwrap().is_zero());
        for bad in [&b"-"[..], b"+", b"*-1", b"**", b"1-**", b"abc", b"1-2-3"] {
            assert_eq!(parse_add_id(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
