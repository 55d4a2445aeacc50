//! Reading RESP replies back: the web endpoints run commands through a `Session`, which
//! answers in RESP3, and turn the answers into JSON (see [`super::web`]).
//!
//! Only fanout's own output is read here, but it is still parsed defensively: bounded
//! nesting, no length trusted beyond the bytes present, no panic on any input.

/// One RESP2/RESP3 value, borrowing its bytes from the buffer it was read from.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Simple(&'a [u8]),
    Error(&'a [u8]),
    Int(i64),
    Bulk(&'a [u8]),
    Null,
    Bool(bool),
    /// Doubles, big numbers: kept as their text.
    Number(&'a [u8]),
    Array(Vec<Value<'a>>),
    Map(Vec<(Value<'a>, Value<'a>)>),
    Push(Vec<Value<'a>>),
}

/// Deeper nesting than this is refused (fanout's replies nest a handful of levels).
const MAX_DEPTH: usize = 32;

impl<'a> Value<'a> {
    /// The bytes of a string-like value.
    pub fn bytes(&self) -> Option<&'a [u8]> {
        match *self {
            Value::Simple(b) | Value::Bulk(b) | Value::Number(b) => Some(b),
            _ => None,
        }
    }

    /// The elements of an array, set or push.
    pub fn items(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::Array(v) | Value::Push(v) => Some(v),
            _ => None,
        }
    }
}

/// Reads every complete value in `buf`, in order. A malformed or cut value ends the list
/// (the caller sees fewer values; fanout never writes one).
pub fn parse_all(buf: &[u8]) -> Vec<Value<'_>> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < buf.len() {
        match parse(buf, &mut at, 0) {
            Some(v) => out.push(v),
            None => break,
        }
    }
    out
}

fn line<'a>(buf: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let rest = buf.get(*at..)?;
    let end = memchr::memmem::find(rest, b"\r\n")?;
    *at += end + 2;
    Some(&rest[..end])
}

fn number(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn parse<'a>(buf: &'a [u8], at: &mut usize, depth: usize) -> Option<Value<'a>> {
    if depth > MAX_DEPTH {
        return None;
    }
    let kind = *buf.get(*at)?;
    *at += 1;
    let head = line(buf, at)?;
    let aggregate = |at: &mut usize, n: usize| -> Option<Vec<Value<'a>>> {
        // Each element takes at least 3 bytes: no reservation beyond what is present.
        let mut v = Vec::with_capacity(n.min(buf.len().saturating_sub(*at) / 3));
        for _ in 0..n {
            v.push(parse(buf, at, depth + 1)?);
        }
        Some(v)
    };
    Some(match kind {
        b'+' => Value::Simple(head),
        b'-' => Value::Error(head),
        b':' => Value::Int(number(head)?),
        b'_' => Value::Null,
        b'#' => Value::Bool(head == b"t"),
        b',' | b'(' => Value::Number(head),
        b'$' | b'=' | b'!' => {
            let n = number(head)?;
            if n < 0 {
                return Some(Value::Null);
            }
            let n = n as usize;
            let body = buf.get(*at..at.checked_add(n)?)?;
            if buf.get(*at + n..*at + n + 2)? != b"\r\n" {
                return None;
            }
            *at += n + 2;
            match kind {
                b'!' => Value::Error(body),
                // Verbatim strings carry a 4-byte format prefix (`txt:`).
                b'=' => Value::Bulk(body.get(4..).unwrap_or_default()),
                _ => Value::Bulk(body),
            }
        }
        b'*' | b'~' | b'>' => {
            let n = number(head)?;
            if n < 0 {
                return Some(Value::Null);
            }
            let items = aggregate(at, n as usize)?;
            if kind == b'>' {
                Value::Push(items)
            } else {
                Value::Array(items)
            }
        }
        b'%' | b'|' => {
            let n = usize::try_from(number(head)?).ok()?;
            let flat = aggregate(at, n.checked_mul(2)?)?;
            let mut pairs = Vec::with_capacity(n);
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            if kind == b'|' {
                // An attribute annotates the value after it: skip to that value.
                return parse(buf, at, depth + 1);
            }
            Value::Map(pairs)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_replies_and_pushes() {
        let v =
            parse_all(b">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n:5\r\n-NOPERM no\r\n_\r\n%1\r\n$1\r\nk\r\n*0\r\n");
        assert_eq!(
            v,
            vec![
                Value::Push(vec![Value::Bulk(b"subscribe"), Value::Bulk(b"a"), Value::Int(1)]),
                Value::Int(5),
                Value::Error(b"NOPERM no"),
                Value::Null,
                Value::Map(vec![(Value::Bulk(b"k"), Value::Array(vec![]))]),
            ]
        );
    }

    #[test]
    fn cut_or_hostile_input_ends_the_list() {
        assert_eq!(parse_all(b"$5\r\nab"), vec![]);
        assert_eq!(parse_all(b"*99999999999\r\n"), vec![]);
        assert_eq!(parse_all(b":1\r\n$-1\r\n*1\r\n"), vec![Value::Int(1), Value::Null]);
        let deep = "*1\r\n".repeat(100);
        assert_eq!(parse_all(deep.as_bytes()), vec![]);
        assert_eq!(parse_all(b"?x\r\n"), vec![]);
    }
}
