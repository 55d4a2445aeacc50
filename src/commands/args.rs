//! An argument reader for Redis's option syntax: keywords in any case and order, integers
//! with Redis's parsing and error texts, `COUNT n`-style pairs. Commands read their
//! arguments through it instead of indexing `args[i]`, so the error for a missing or bad
//! value is always Redis's.

use bytes::Bytes;

use super::errors::Error;

/// A cursor over a command's arguments (after the name and subcommand).
pub struct Args<'a> {
    args: &'a [Bytes],
    pos: usize,
}

impl<'a> Args<'a> {
    pub fn new(args: &'a [Bytes]) -> Args<'a> {
        Args { args, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.args.len()
    }

    pub fn remaining(&self) -> usize {
        self.args.len().saturating_sub(self.pos)
    }

    /// The next argument, or a syntax error when there is none.
    pub fn bytes(&mut self) -> Result<&'a Bytes, Error> {
        let a = self.args.get(self.pos).ok_or(Error::Syntax)?;
        self.pos += 1;
        Ok(a)
    }

    /// The next argument without consuming it.
    pub fn peek(&self) -> Option<&'a Bytes> {
        self.args.get(self.pos)
    }

    /// Consumes the next argument if it is `keyword` (any case).
    pub fn keyword(&mut self, keyword: &str) -> bool {
        match self.peek() {
            Some(a) if a.eq_ignore_ascii_case(keyword.as_bytes()) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    /// Consumes the next argument if it is one of `keywords` (any case) and says which.
    pub fn one_of(&mut self, keywords: &[&'static str]) -> Option<&'static str> {
        let a = self.peek()?;
        let k = keywords.iter().find(|k| a.eq_ignore_ascii_case(k.as_bytes()))?;
        self.pos += 1;
        Some(k)
    }

    /// The next argument as an integer (Redis's `string2ll`: no `+`, no leading zeros,
    /// no spaces).
    pub fn i64(&mut self) -> Result<i64, Error> {
        parse_i64(self.bytes()?).ok_or(Error::NotInteger)
    }

    /// An integer within `range`; `err` when outside it.
    pub fn i64_in(&mut self, range: std::ops::RangeInclusive<i64>, err: Error) -> Result<i64, Error> {
        let n = self.i64()?;
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(err)
        }
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [Bytes] {
        let r = &self.args[self.pos.min(self.args.len())..];
        self.pos = self.args.len();
        r
    }

    /// Nothing must be left: a syntax error otherwise.
    pub fn finish(&self) -> Result<(), Error> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::Syntax)
        }
    }
}

/// Parses an integer argument as Redis's `string2ll` does: an optional `-` and digits,
/// no `+`, no leading zeros (`01`, `-0` are refused), no spaces.
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    let valid = match digits {
        [] => false,
        [b'0'] => digits.len() == b.len(),
        [first, ..] => *first != b'0' && digits.iter().all(u8::is_ascii_digit),
    };
    if !valid {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// An option word in upper case, in `buf` (no allocation), for `match`ing against
/// keywords. Words longer than any keyword come back empty, which matches none.
pub fn upper<'a>(arg: &[u8], buf: &'a mut [u8; 16]) -> &'a [u8] {
    if arg.len() > buf.len() {
        return &[];
    }
    let out = &mut buf[..arg.len()];
    out.copy_from_slice(arg);
    out.make_ascii_uppercase();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
    }

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"01",
            b"-0",
            b" 1",
            b"1 ",
            b"1.0",
            b"9223372036854775808",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn options_in_any_order_and_case() {
        let a = args(&["count", "5", "NOW", "x"]);
        let mut r = Args::new(&a);
        let (mut count, mut now) = (None, false);
        while !r.is_empty() {
            if r.keyword("COUNT") {
                count = Some(r.i64().unwrap());
            } else if r.keyword("now") {
                now = true;
            } else {
                break;
            }
        }
        assert_eq!((count, now), (Some(5), true));
        assert_eq!(r.finish(), Err(Error::Syntax));
        assert_eq!(r.one_of(&["Y", "X"]), Some("X"));
        assert!(r.finish().is_ok());
        let a = args(&["count"]);
        let mut r = Args::new(&a);
        assert!(r.keyword("COUNT"));
        assert_eq!(r.i64(), Err(Error::Syntax));
        let a = args(&["abc", "-3"]);
        let mut r = Args::new(&a);
        assert_eq!(r.i64(), Err(Error::NotInteger));
        assert_eq!(r.i64_in(-1..=10, Error::SlowlogCount), Err(Error::SlowlogCount));
    }
}
