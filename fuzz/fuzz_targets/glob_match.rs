//! The glob matcher against a recursive reference that mirrors Redis's `stringmatchlen`.
//!
//! * Short inputs: `matches` / `matches_nocase` agree with the reference (a copy of the
//!   port in `src/broker/glob.rs`'s tests, which follows Redis 7.0.15's C line by line,
//!   including the CVE-2024-31228 nesting limit).
//! * Any input: no panic, and the iterative matcher finishes (libFuzzer's `-timeout`
//!   flags a slow unit); the reference is skipped for long inputs because it may recurse
//!   once per star.
//! * `literal_prefix`: every subject the pattern matches starts with it, and a pattern
//!   without special bytes matches exactly itself.

#![no_main]

use arbitrary::Arbitrary;
use fanout::broker::glob::{literal_prefix, matches, matches_nocase};
use libfuzzer_sys::fuzz_target;

/// Longest pattern / subject handed to the recursive reference.
const REFERENCE_MAX: usize = 64;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Repeat the subject this many times (long subjects for the hostile-pattern case).
    repeat: u8,
    pattern: Vec<u8>,
    subject: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let pattern = &input.pattern[..];
    let subject: Vec<u8> = if input.repeat > 1 && !input.subject.is_empty() {
        input.subject.repeat(usize::from(input.repeat))
    } else {
        input.subject.clone()
    };
    let subject = &subject[..];

    let m = matches(pattern, subject);
    let mi = matches_nocase(pattern, subject);
    if pattern.len() <= REFERENCE_MAX && subject.len() <= REFERENCE_MAX {
        assert_eq!(
            m,
            reference(pattern, subject, false),
            "matches({pattern:?}, {subject:?})"
        );
        assert_eq!(
            mi,
            reference(pattern, subject, true),
            "matches_nocase({pattern:?}, {subject:?})"
        );
    }

    let prefix = literal_prefix(pattern);
    if m {
        assert!(
            subject.starts_with(&prefix),
            "{subject:?} matches {pattern:?} but lacks its literal prefix {prefix:?}"
        );
    }
    if !pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\')) {
        assert_eq!(&prefix[..], pattern, "a plain pattern is its own prefix");
        assert_eq!(m, pattern == subject, "plain pattern {pattern:?} vs {subject:?}");
    }
});

/// C `tolower` in the C locale (ASCII only; negative values pass through).
fn c_tolower(c: i32) -> i32 {
    if (i32::from(b'A')..=i32::from(b'Z')).contains(&c) {
        c + 32
    } else {
        c
    }
}

/// A direct port of Redis 7.0.15's recursive `stringmatchlen_impl` (Debian build, with
/// the nesting limit), kept structurally close to the C so the two can be compared by
/// eye. `at` stands in for reading the NUL terminator past the end of an sds string.
fn reference(pattern: &[u8], subject: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    reference_impl(pattern, 0, subject, 0, nocase, &mut skip_longer, 0)
}

fn at(buf: &[u8], i: usize) -> u8 {
    buf.get(i).copied().unwrap_or(0)
}

fn lower(c: i32) -> i32 {
    c_tolower(c)
}

fn reference_impl(
    pat: &[u8],
    mut p: usize,
    sub: &[u8],
    mut s: usize,
    nocase: bool,
    skip_longer: &mut bool,
    nesting: usize,
) -> bool {
    if nesting > 1000 {
        return false;
    }
    let mut plen = pat.len() as isize - p as isize;
    let mut slen = sub.len() as isize - s as isize;
    while plen != 0 && slen != 0 {
        match at(pat, p) {
            b'*' => {
                while plen != 0 && at(pat, p + 1) == b'*' {
                    p += 1;
                    plen -= 1;
                }
                if plen == 1 {
                    return true;
                }
                while slen != 0 {
                    if reference_impl(pat, p + 1, sub, s, nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s += 1;
                    slen -= 1;
                }
                *skip_longer = true;
                return false;
            }
            b'?' => {
                s += 1;
                slen -= 1;
            }
            b'[' => {
                p += 1;
                plen -= 1;
                let not = at(pat, p) == b'^';
                if not {
                    p += 1;
                    plen -= 1;
                }
                let mut matched = false;
                loop {
                    if at(pat, p) == b'\\' && plen >= 2 {
                        p += 1;
                        plen -= 1;
                        if at(pat, p) == sub[s] {
                            matched = true;
                        }
                    } else if at(pat, p) == b']' {
                        break;
                    } else if plen == 0 {
                        p -= 1;
                        plen += 1;
                        break;
                    } else if plen >= 3 && at(pat, p + 1) == b'-' {
                        let mut start = at(pat, p) as i8 as i32;
                        let mut end = at(pat, p + 2) as i8 as i32;
                        let mut c = sub[s] as i8 as i32;
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = lower(start);
                            end = lower(end);
                            c = lower(c);
                        }
                        p += 2;
                        plen -= 2;
                        if c >= start && c <= end {
                            matched = true;
                        }
                    } else if !nocase {
                        if at(pat, p) == sub[s] {
                            matched = true;
                        }
                    } else if lower(at(pat, p) as i8 as i32) == lower(sub[s] as i8 as i32) {
                        matched = true;
                    }
                    p += 1;
                    plen -= 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s += 1;
                slen -= 1;
            }
            first => {
                let mut lit = first;
                if first == b'\\' && plen >= 2 {
                    p += 1;
                    plen -= 1;
                    lit = at(pat, p);
                }
                let equal = if nocase {
                    lower(lit as i8 as i32) == lower(sub[s] as i8 as i32)
                } else {
                    lit == sub[s]
                };
                if !equal {
                    return false;
                }
                s += 1;
                slen -= 1;
            }
        }
        p += 1;
        plen -= 1;
        if slen == 0 {
            while at(pat, p) == b'*' {
                p += 1;
                plen -= 1;
            }
            break;
        }
    }
    plen == 0 && slen == 0
}
