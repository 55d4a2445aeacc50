//! Redis glob matching, byte for byte compatible with `stringmatchlen` in Redis 7.0.15.
//!
//! Clients see these semantics through PSUBSCRIBE, PUNSUBSCRIBE, PUBSUB CHANNELS and
//! PUBSUB NUMPAT (case-sensitive) and CONFIG GET (ASCII case-insensitive). A pattern
//! that behaves even slightly differently from Redis would silently route messages to
//! the wrong subscribers, so every quirk below is reproduced on purpose:
//!
//! | syntax     | meaning                                                                  |
//! |------------|--------------------------------------------------------------------------|
//! | `*`        | any run of bytes, including none; consecutive `*` act as one             |
//! | `?`        | exactly one byte                                                         |
//! | `[abc]`    | one byte from the set; `[^abc]` one byte not in it (`!` does not negate)  |
//! | `[a-z]`    | an inclusive range; a reversed range `[z-a]` is swapped                  |
//! | `\x`       | a literal `x`, also inside a set; a lone trailing `\` is a literal `\`   |
//!
//! Quirks that follow from how Redis walks the pattern:
//!
//! * If either the pattern or the subject is empty, they match only if both are. So `*`
//!   does not match the empty subject, although `a*` matches `a`.
//! * `[]]` matches nothing: the first `]` closes an empty set.
//! * Inside a set, a byte followed by `-` and at least one more byte starts a range, even
//!   when that byte is the `]` meant to close the set: `[a-]` is the range `]`..`a`, and
//!   the set then runs on to the next `]` or the end of the pattern.
//! * A set without a closing `]` runs to the end of the pattern: `[abc` is `[abc]`, `[^`
//!   matches any single byte and a lone `[` matches nothing. A set always consumes one
//!   subject byte, so `a[` never matches.
//! * Ranges compare bytes as C's signed `char` (x86-64, where Redis is built and tested),
//!   so a range with one end at or above 0x80 wraps: `[a-\xff]` is the range
//!   `\xff`..`a`, i.e. `\xff` together with `\x00`..`a`, and never matches `\x80`.
//! * Case folding is C-locale `tolower`, ASCII only. A range is swapped *before* both
//!   ends are folded, so with folding `[Z-a]` becomes `z`..`a` and matches nothing, and
//!   an escaped byte inside a set (`[\A]`) is compared exactly even when folding.
//! * A pattern with more than [`MAX_STAR_GROUPS`] star groups that each have more
//!   pattern after them never matches, mirroring the recursion limit that Redis added
//!   against abusive patterns (CVE-2024-31228). The Debian and Ubuntu builds of 7.0.15
//!   include that fix, and so does upstream Redis from 7.2.6.
//!
//! Redis implements `*` by recursing once per star for every candidate start offset.
//! That can use deep stack, and without its "skip longer matches" shortcut it takes
//! exponential time. This matcher is iterative instead and only ever returns to the most
//! recent `*`. That is exact here because `*` is the only token whose width varies:
//! once the text after the latest star cannot match from any later offset, letting an
//! earlier star swallow more bytes only pushes that same text further right, where it
//! has already failed. That is the argument Redis itself relies on to stop early, and
//! it bounds the cost at O(pattern length * subject length) with no recursion at all.

use std::borrow::Cow;

/// How many star groups a pattern may recurse through in Redis before it gives up.
///
/// Redis starts a new recursion level at each `*` run that has more pattern after it,
/// and a call nested deeper than this returns "no match". A match has to pass every one
/// of those levels, so a pattern with more of them can never match.
pub const MAX_STAR_GROUPS: usize = 1000;

/// Does `subject` match the Redis glob `pattern`? Byte-exact, case-sensitive (PSUBSCRIBE, PUBSUB CHANNELS).
pub fn matches(pattern: &[u8], subject: &[u8]) -> bool {
    match_impl(pattern, subject, false)
}

/// Same with ASCII case folding (CONFIG GET).
pub fn matches_nocase(pattern: &[u8], subject: &[u8]) -> bool {
    match_impl(pattern, subject, true)
}

/// The literal prefix of a pattern: the bytes every matching subject must start with.
///
/// It stops at the first `*`, `?` or `[`. An escape `\x` contributes the literal `x`, and a
/// lone trailing `\` contributes `\`. The pattern index relies on this being exact: if
/// `matches(p, s)` then `s.starts_with(&literal_prefix(p))`. It borrows from the pattern
/// unless an escape had to be removed.
pub fn literal_prefix(pattern: &[u8]) -> Cow<'_, [u8]> {
    let stop = pattern
        .iter()
        .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(pattern.len());
    if pattern.get(stop) != Some(&b'\\') {
        return Cow::Borrowed(&pattern[..stop]);
    }

    let mut prefix = pattern[..stop].to_vec();
    let mut i = stop;
    while i < pattern.len() {
        match pattern[i] {
            b'*' | b'?' | b'[' => break,
            b'\\' if i + 1 < pattern.len() => {
                prefix.push(pattern[i + 1]);
                i += 2;
            }
            // Includes a lone trailing `\`, which Redis compares as a literal backslash.
            byte => {
                prefix.push(byte);
                i += 1;
            }
        }
    }
    Cow::Owned(prefix)
}

/// The literal runs of a pattern, for the pattern index (see `pubsub::patterns`).
///
/// A run is a maximal sequence of literal bytes (`\x` counts as the byte `x`, a lone
/// trailing `\` as `\`); `*`, `?` and a `[...]` set end it, with set boundaries found
/// exactly as the matcher finds them. Every non-star token consumes exactly one subject
/// byte, so for any subject that `matches` the pattern:
///
/// * it starts with `prefix` (the first run, when the pattern starts with a literal),
/// * it ends with `suffix` (the last run, when the pattern ends with a literal),
/// * it contains every entry of `runs` as a substring.
///
/// Client patterns may be huge, so what is kept is capped: `prefix` and each entry of
/// `runs` are the first `max_len` bytes of their run, `suffix` the last `max_len` bytes,
/// and only the first `max_runs` runs are listed. A part of a run is still a necessary
/// condition, so the caps cost selectivity, never correctness.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Literals {
    pub prefix: Option<Vec<u8>>,
    pub suffix: Option<Vec<u8>>,
    pub runs: Vec<Vec<u8>>,
}

pub fn literals(pattern: &[u8], max_runs: usize, max_len: usize) -> Literals {
    let mut out = Literals::default();
    // The current run: its first `max_len` bytes, and a window holding at least its last
    // `max_len` bytes (trimmed now and then, so a long run costs O(1) per byte).
    let mut head: Vec<u8> = Vec::new();
    let mut tail: Vec<u8> = Vec::new();
    let mut starts_pattern = false;
    let mut p = 0;
    let mut close = |head: &mut Vec<u8>, tail: &mut Vec<u8>, starts_pattern: bool, ends_pattern: bool| {
        if tail.is_empty() {
            return;
        }
        if starts_pattern {
            out.prefix = Some(head.clone());
        }
        if ends_pattern {
            out.suffix = Some(tail[tail.len().saturating_sub(max_len)..].to_vec());
        }
        if out.runs.len() < max_runs {
            out.runs.push(std::mem::take(head));
        }
        head.clear();
        tail.clear();
    };
    while p < pattern.len() {
        let (literal, next) = match pattern[p] {
            b'*' | b'?' => (None, p + 1),
            b'[' => (None, match_set(pattern, p + 1, 0, false).1),
            b'\\' if p + 1 < pattern.len() => (Some(pattern[p + 1]), p + 2),
            byte => (Some(byte), p + 1),
        };
        match literal {
            Some(byte) => {
                if head.is_empty() && tail.is_empty() {
                    starts_pattern = p == 0;
                }
                if head.len() < max_len {
                    head.push(byte);
                }
                tail.push(byte);
                if tail.len() > 2 * max_len.max(1) {
                    tail.drain(..tail.len() - max_len);
                }
            }
            None => close(&mut head, &mut tail, starts_pattern, false),
        }
        p = next;
    }
    close(&mut head, &mut tail, starts_pattern, true);
    out
}

fn match_impl(pattern: &[u8], subject: &[u8], nocase: bool) -> bool {
    // Redis's main loop only runs while both sides are non-empty, and an empty side
    // leaves nothing for trailing-star stripping to act on.
    if pattern.is_empty() || subject.is_empty() {
        return pattern.is_empty() && subject.is_empty();
    }
    if inner_star_groups(pattern) > MAX_STAR_GROUPS {
        return false;
    }

    let mut p = 0;
    let mut s = 0;
    // Where to resume after the most recent `*`: the pattern just past it and the subject
    // offset at which that remainder was last tried.
    let mut resume: Option<(usize, usize)> = None;

    loop {
        // Invariant: s < subject.len(), because reaching the end of the subject decides.
        let matched = if p == pattern.len() {
            false
        } else if pattern[p] == b'*' {
            p = skip_stars(pattern, p);
            if p == pattern.len() {
                return true;
            }
            // The star first matches nothing; a failure later widens it one byte at a time.
            resume = Some((p, s));
            continue;
        } else {
            let (ok, next) = match_token(pattern, p, subject[s], nocase);
            if ok {
                p = next;
                s += 1;
                if s == subject.len() {
                    // Only stars may be left, and they then match nothing.
                    return skip_stars(pattern, p) == pattern.len();
                }
            }
            ok
        };
        if matched {
            continue;
        }

        // Redis tries the rest of the pattern only against non-empty tails of the subject;
        // the empty tail could never match anyway since the rest is not empty.
        match resume {
            Some((rp, rs)) if rs + 1 < subject.len() => {
                resume = Some((rp, rs + 1));
                p = rp;
                s = rs + 1;
            }
            _ => return false,
        }
    }
}

fn skip_stars(pattern: &[u8], mut p: usize) -> usize {
    while pattern.get(p) == Some(&b'*') {
        p += 1;
    }
    p
}

/// Counts the `*` runs that have more pattern after them, which is how deep Redis would
/// recurse on a successful match. Token boundaries do not depend on the subject, so a
/// dummy byte is enough to walk them.
fn inner_star_groups(pattern: &[u8]) -> usize {
    let mut groups = 0;
    let mut p = 0;
    while p < pattern.len() {
        if pattern[p] == b'*' {
            p = skip_stars(pattern, p);
            if p < pattern.len() {
                groups += 1;
            }
        } else {
            p = match_token(pattern, p, 0, false).1;
        }
    }
    groups
}

/// Matches the single-byte token at `pattern[p]` (anything but `*`) against `byte`.
/// Returns whether it matched and where the next token starts.
fn match_token(pattern: &[u8], p: usize, byte: u8, nocase: bool) -> (bool, usize) {
    match pattern[p] {
        b'?' => (true, p + 1),
        b'[' => match_set(pattern, p + 1, byte, nocase),
        b'\\' if p + 1 < pattern.len() => (bytes_equal(pattern[p + 1], byte, nocase), p + 2),
        literal => (bytes_equal(literal, byte, nocase), p + 1),
    }
}

/// Matches a set whose body starts at `pattern[start]` (just after the `[`).
///
/// This walks the body exactly as Redis does, which is what produces the quirks listed in
/// the module docs: `]` is only recognised where a range did not swallow it, and running
/// out of pattern closes the set.
fn match_set(pattern: &[u8], start: usize, byte: u8, nocase: bool) -> (bool, usize) {
    let len = pattern.len();
    let mut i = start;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut found = false;
    let end = loop {
        let rest = len - i;
        if rest == 0 {
            break len;
        }
        let b = pattern[i];
        if b == b'\\' && rest >= 2 {
            i += 1;
            // Redis compares an escaped set member exactly, even when folding case.
            found |= pattern[i] == byte;
        } else if b == b']' {
            break i + 1;
        } else if rest >= 3 && pattern[i + 1] == b'-' {
            found |= in_range(b, pattern[i + 2], byte, nocase);
            i += 2;
        } else {
            found |= bytes_equal(b, byte, nocase);
        }
        i += 1;
    };
    (found != negate, end)
}

/// A range test with Redis's operand order: swap the ends if reversed, then fold case.
/// Bytes are widened as C's signed `char` so that ranges touching 0x80..=0xff wrap the
/// way they do in Redis on x86-64.
fn in_range(from: u8, to: u8, byte: u8, nocase: bool) -> bool {
    let (mut lo, mut hi) = (signed(from), signed(to));
    let mut c = signed(byte);
    if lo > hi {
        std::mem::swap(&mut lo, &mut hi);
    }
    if nocase {
        lo = c_tolower(lo);
        hi = c_tolower(hi);
        c = c_tolower(c);
    }
    lo <= c && c <= hi
}

fn signed(byte: u8) -> i32 {
    i32::from(byte as i8)
}

/// `tolower` in the C locale, which Redis never changes for character classes: only
/// `A`..=`Z` fold, and negative values pass through unchanged.
fn c_tolower(c: i32) -> i32 {
    if (i32::from(b'A')..=i32::from(b'Z')).contains(&c) {
        c + 32
    } else {
        c
    }
}

fn bytes_equal(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

/// The oracle for tests and fuzzing: a direct port of Redis's recursive matcher. Not for
/// production use (its recursion is what the iterative matcher exists to avoid).
#[doc(hidden)]
pub mod reference {
    use super::c_tolower;

    /// A direct port of Redis 7.0.15's recursive `stringmatchlen_impl` (Debian build, with
    /// the nesting limit), kept structurally close to the C so the two can be compared by
    /// eye. `at` stands in for reading the NUL terminator past the end of an sds string.
    pub fn matches(pattern: &[u8], subject: &[u8], nocase: bool) -> bool {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn yes(pattern: &str, subject: &str) {
        assert!(
            matches(pattern.as_bytes(), subject.as_bytes()),
            "{pattern:?} should match {subject:?}"
        );
        assert!(reference::matches(pattern.as_bytes(), subject.as_bytes(), false));
    }

    fn no(pattern: &str, subject: &str) {
        assert!(
            !matches(pattern.as_bytes(), subject.as_bytes()),
            "{pattern:?} should not match {subject:?}"
        );
        assert!(!reference::matches(pattern.as_bytes(), subject.as_bytes(), false));
    }

    #[test]
    fn star_matches_any_run_including_none() {
        yes("*", "x");
        yes("*", "anything at all");
        yes("a*", "a");
        yes("a*", "abc");
        yes("*c", "abc");
        yes("*c", "c");
        yes("a*c", "ac");
        yes("a*c", "abbbc");
        yes("a*b*c", "abc");
        yes("a*b*c", "aXbYc");
        no("a*c", "ab");
        no("a*c", "acb");
        yes("news.*", "news.tech");
        no("news.*", "news");
        yes("*.*", "a.b");
        no("*.*", "ab");
    }

    #[test]
    fn consecutive_stars_act_as_one() {
        yes("**", "abc");
        yes("a***b", "ab");
        yes("a***b", "axxb");
        yes("***", "z");
        yes("a**", "a");
        no("**b", "a");
    }

    #[test]
    fn question_mark_is_exactly_one_byte() {
        yes("?", "a");
        no("?", "ab");
        yes("a?c", "abc");
        no("a?c", "ac");
        yes("??", "\u{e9}"); // two UTF-8 bytes
        no("?", "\u{e9}");
        yes("*?*", "x");
        no("*?", "");
    }

    #[test]
    fn empty_pattern_or_subject_matches_only_when_both_are_empty() {
        yes("", "");
        no("", "a");
        no("*", "");
        no("**", "");
        no("*?*", "");
        no("?", "");
        no("[^a]", "");
        no("\\", "");
    }

    #[test]
    fn sets() {
        yes("[abc]", "a");
        yes("[abc]", "c");
        no("[abc]", "d");
        no("[abc]", "ab");
        yes("h[ae]llo", "hello");
        yes("h[ae]llo", "hallo");
        no("h[ae]llo", "hillo");
        no("[]", "a");
        no("[]", "]");
    }

    #[test]
    fn only_caret_negates() {
        yes("[^abc]", "d");
        no("[^abc]", "a");
        no("[^abc]", "dd");
        yes("[!a]", "!");
        yes("[!a]", "a");
        no("[!a]", "b");
        // A caret later in the set is an ordinary member.
        yes("[a^]", "^");
        yes("[^^]", "a");
        no("[^^]", "^");
    }

    #[test]
    fn ranges_are_inclusive_and_reversed_ranges_swap() {
        yes("[a-z]", "a");
        yes("[a-z]", "m");
        yes("[a-z]", "z");
        no("[a-z]", "A");
        no("[a-z]", "{");
        for subject in ["a", "m", "z"] {
            yes("[z-a]", subject);
        }
        no("[z-a]", "{");
        yes("[0-9a-f]", "7");
        yes("[0-9a-f]", "e");
        no("[0-9a-f]", "g");
        yes("[^0-9]", "x");
        no("[^0-9]", "5");
    }

    #[test]
    fn backslash_escapes_outside_sets() {
        yes("\\*", "*");
        no("\\*", "a");
        yes("\\?", "?");
        no("\\?", "a");
        yes("\\[a]", "[a]");
        yes("\\a", "a");
        yes("\\\\", "\\");
        yes("a\\*b", "a*b");
        no("a\\*b", "axb");
    }

    #[test]
    fn lone_trailing_backslash_is_literal() {
        yes("\\", "\\");
        no("\\", "a");
        yes("a\\", "a\\");
        no("a\\", "a");
        yes("*\\", "abc\\");
    }

    #[test]
    fn backslash_escapes_inside_sets() {
        yes("[\\]]", "]");
        no("[\\]]", "\\");
        yes("[a\\-c]", "-");
        yes("[a\\-c]", "a");
        yes("[a\\-c]", "c");
        no("[a\\-c]", "b");
        yes("[\\^a]", "^");
        yes("[\\\\]", "\\");
        // A backslash that is the last byte of an unterminated set is a member itself.
        yes("[a\\", "\\");
        yes("[a\\", "a");
    }

    #[test]
    fn close_bracket_first_closes_an_empty_set() {
        for subject in ["]", "a", "[", "]]"] {
            no("[]]", subject);
        }
        no("[]a]", "a");
        yes("[^]", "a");
        yes("[^]]", "a]");
        no("[^]]", "a");
    }

    #[test]
    fn a_range_can_swallow_the_closing_bracket() {
        // `[a-]` is the range `a`..`]`, swapped to `]`..`a`.
        for subject in ["]", "^", "_", "`", "a"] {
            yes("[a-]", subject);
        }
        for subject in ["b", "-", "\\", "[", "Z"] {
            no("[a-]", subject);
        }
        // `[--]` is the range `-`..`]`.
        for subject in ["-", ".", "0", "A", "\\", "]"] {
            yes("[--]", subject);
        }
        no("[--]", ",");
        no("[--]", "^");
        // After the swallowed `]` the set keeps going: `x` is a member, not a literal after
        // the set, and the whole pattern still consumes one byte.
        yes("[a-]x", "x");
        yes("[a-]x", "_");
        no("[a-]x", "_x");
        yes("[a-]x]y", "xy");
    }

    #[test]
    fn dash_without_a_following_byte_is_a_member() {
        yes("[-]", "-");
        no("[-]", "a");
        yes("[a-", "a");
        yes("[a-", "-");
        no("[a-", "b");
        yes("[a-]b", "b");
        yes("[-a]", "-");
        yes("[-a]", "a");
        no("[-a]", "b");
    }

    #[test]
    fn unterminated_sets_run_to_the_end_of_the_pattern() {
        yes("[abc", "a");
        yes("[abc", "c");
        no("[abc", "d");
        no("[abc", "ab");
        yes("x[abc", "xb");
        for subject in ["a", "[", "^", "\u{7f}"] {
            yes("[^", subject);
        }
        no("[^", "ab");
        for subject in ["a", "[", "]"] {
            no("[", subject);
        }
        no("[", "");
        no("a[", "a");
        no("a[", "ab");
        no("a[", "a[");
        yes("[^a", "b");
        no("[^a", "a");
    }

    #[test]
    fn stars_and_specials_inside_sets_are_members() {
        yes("[*]", "*");
        no("[*]", "a");
        yes("[?]", "?");
        no("[?]", "a");
        yes("[[]", "[");
        yes("a[*?]b", "a?b");
    }

    #[test]
    fn matching_is_case_sensitive_unless_asked() {
        no("ABC", "abc");
        no("[A-Z]", "a");
        assert!(matches_nocase(b"ABC", b"abc"));
        assert!(matches_nocase(b"abc", b"ABC"));
        assert!(matches_nocase(b"maxmemory*", b"MAXMEMORY-policy"));
        assert!(matches_nocase(b"[A-Z]", b"q"));
        assert!(matches_nocase(b"[a-z]", b"Q"));
        assert!(matches_nocase(b"[XYZ]", b"y"));
        assert!(matches_nocase(b"[^XYZ]", b"a"));
        assert!(!matches_nocase(b"[^XYZ]", b"y"));
        assert!(matches_nocase(b"\\A", b"a"));
        assert!(matches_nocase(b"a?C*", b"AbcDEF"));
        assert!(!matches_nocase(b"abc", b"abd"));
        // Only ASCII letters fold.
        assert!(!matches_nocase("\u{c9}".as_bytes(), "\u{e9}".as_bytes()));
        assert!(!matches_nocase(b"@", b"`"));
    }

    #[test]
    fn nocase_quirks_follow_redis() {
        // The range is swapped before folding, so `Z`..`a` folds into the empty `z`..`a`.
        assert!(matches(b"[Z-a]", b"_"));
        assert!(!matches_nocase(b"[Z-a]", b"_"));
        assert!(!matches_nocase(b"[Z-a]", b"a"));
        assert!(!matches_nocase(b"[Z-a]", b"Z"));
        // `A`..`z` folds to `a`..`z`, which no longer covers the punctuation in between.
        assert!(matches(b"[A-z]", b"_"));
        assert!(!matches_nocase(b"[A-z]", b"_"));
        assert!(matches_nocase(b"[A-z]", b"Q"));
        // An escaped set member is compared exactly.
        assert!(!matches_nocase(b"[\\A]", b"a"));
        assert!(matches_nocase(b"[\\A]", b"A"));
        assert!(matches_nocase(b"[A]", b"a"));
    }

    #[test]
    fn ranges_compare_bytes_as_signed_chars() {
        // 0xff is -1 as a signed char, so this range is -1..=97: 0xff and 0x00..=b'a'.
        assert!(matches(b"[a-\xff]", b"\xff"));
        assert!(matches(b"[a-\xff]", b"\x00"));
        assert!(matches(b"[a-\xff]", b"a"));
        assert!(!matches(b"[a-\xff]", b"b"));
        assert!(!matches(b"[a-\xff]", b"\x80"));
        assert!(!matches(b"[a-\xff]", b"\xfe"));
        // Both ends high: an ordinary range in signed order.
        assert!(matches(b"[\x80-\xff]", b"\xc3"));
        assert!(!matches(b"[\x80-\xff]", b"a"));
        // Plain members and literals are compared as equal bytes.
        assert!(matches(b"[\xe9]", b"\xe9"));
        assert!(matches(b"\xe9*", b"\xe9t\xe9"));
        assert!(!matches(b"[\xe9]", b"\xe8"));
    }

    #[test]
    fn binary_bytes_including_nul() {
        assert!(matches(b"a\x00*", b"a\x00b"));
        assert!(matches(b"[\x00]", b"\x00"));
        assert!(!matches(b"[\x00]", b"0"));
        assert!(matches(b"?", b"\x00"));
        assert!(!matches(b"[", b"\x00"));
        assert!(matches(b"[^", b"\x00"));
    }

    #[test]
    fn deep_star_patterns_hit_the_redis_recursion_limit() {
        let subject = vec![b'a'; 1100];
        let at_limit = b"*a".repeat(MAX_STAR_GROUPS);
        let over_limit = b"*a".repeat(MAX_STAR_GROUPS + 1);
        assert!(matches(&at_limit, &subject));
        assert!(!matches(&over_limit, &subject));
        // A trailing star costs Redis no recursion level.
        let mut trailing = at_limit.clone();
        trailing.push(b'*');
        assert!(matches(&trailing, &subject));
        // Escaped stars and stars inside sets are not star groups.
        let escaped = b"\\*a".repeat(MAX_STAR_GROUPS + 1);
        assert!(matches(&escaped, &b"*a".repeat(MAX_STAR_GROUPS + 1)));
        assert_eq!(inner_star_groups(b"[*]*a*\\*b*"), 2);
        assert_eq!(inner_star_groups(b"**a**"), 1);
        assert_eq!(inner_star_groups(b"[*"), 0);
    }

    #[test]
    fn hostile_patterns_finish() {
        let subject = vec![b'a'; 10_000];
        assert!(!matches(b"*a*a*a*a*a*a*a*a*b", &subject));
        assert!(!matches_nocase(b"*a*a*a*a*a*a*a*a*b", &subject));
        assert!(matches(b"*a*a*a*a*a*a*a*a*a", &subject));
        assert!(!matches(b"*?*?*?*?*?*?*?*?*?*b", &subject));
        assert!(!matches(b"*[a]*[a]*[a]*[a]*[a]*[^a]", &subject));
        let many = b"*a".repeat(500);
        assert!(matches(&many, &subject));
        let mut many_b = many.clone();
        many_b.extend_from_slice(b"*b");
        assert!(!matches(&many_b, &subject));
    }

    #[test]
    fn literal_prefix_rules() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"news.*", b"news."),
            (b"news", b"news"),
            (b"a?b", b"a"),
            (b"ab[c]", b"ab"),
            (b"*abc", b""),
            (b"a\\*b*", b"a*b"),
            (b"a\\[b?", b"a[b"),
            (b"\\\\x", b"\\x"),
            (b"ab\\", b"ab\\"),
            (b"\\", b"\\"),
            (b"x\\]", b"x]"),
            (b"-^]!", b"-^]!"),
        ];
        for &(pattern, prefix) in cases {
            assert_eq!(&*literal_prefix(pattern), prefix, "{pattern:?}");
        }
        assert!(matches!(literal_prefix(b"abc*"), Cow::Borrowed(_)));
        assert!(matches!(literal_prefix(b"a\\bc*"), Cow::Owned(_)));
    }

    #[test]
    fn reference_agrees_with_hand_checked_quirks() {
        assert!(reference::matches(b"[a-]", b"_", false));
        assert!(!reference::matches(b"[]]", b"]", false));
        assert!(reference::matches(b"[^", b"x", false));
        assert!(!reference::matches(b"[Z-a]", b"_", true));
        assert!(reference::matches(b"[a-\xff]", b"\x00", false));
        assert!(!reference::matches(&b"*a".repeat(1001), &[b'a'; 1100], false));
        assert!(reference::matches(&b"*a".repeat(1000), &[b'a'; 1100], false));
    }

    const PATTERN_ALPHABET: &[u8] = b"ab*?[]^-\\";
    const SUBJECT_ALPHABET: &[u8] = b"ab]^-\\*?[";
    const CASE_ALPHABET: &[u8] = b"aAZ_z*?[]^-\\\xe9\xff";

    fn bytes_over(alphabet: &'static [u8], max_len: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(alphabet), 0..=max_len)
    }

    fn no_specials() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>().prop_filter("special", |b| !b"*?[\\".contains(b)), 0..24)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn iterative_equals_recursive_reference(
            pattern in bytes_over(PATTERN_ALPHABET, 10),
            subject in bytes_over(SUBJECT_ALPHABET, 8),
        ) {
            prop_assert_eq!(matches(&pattern, &subject), reference::matches(&pattern, &subject, false));
        }

        #[test]
        fn iterative_equals_reference_with_case_and_high_bytes(
            pattern in bytes_over(CASE_ALPHABET, 10),
            subject in bytes_over(CASE_ALPHABET, 8),
        ) {
            prop_assert_eq!(matches(&pattern, &subject), reference::matches(&pattern, &subject, false));
            prop_assert_eq!(
                matches_nocase(&pattern, &subject),
                reference::matches(&pattern, &subject, true)
            );
        }

        #[test]
        fn literal_prefix_is_a_prefix_of_every_match(
            pattern in bytes_over(PATTERN_ALPHABET, 10),
            subject in bytes_over(SUBJECT_ALPHABET, 8),
        ) {
            if matches(&pattern, &subject) {
                let prefix = literal_prefix(&pattern);
                prop_assert!(subject.starts_with(&prefix));
            }
        }

        #[test]
        fn literal_prefix_of_matching_subjects_is_a_prefix(
            pattern in bytes_over(PATTERN_ALPHABET, 10),
            tail in bytes_over(SUBJECT_ALPHABET, 6),
        ) {
            // Random subjects rarely match long literal prefixes, so also build subjects
            // that start with the prefix and check the property where it bites.
            let prefix = literal_prefix(&pattern);
            let mut subject = prefix.to_vec();
            subject.extend_from_slice(&tail);
            if matches(&pattern, &subject) {
                prop_assert!(subject.starts_with(&prefix));
            }
            let mut shifted = tail.clone();
            shifted.extend_from_slice(&prefix);
            if matches(&pattern, &shifted) {
                prop_assert!(shifted.starts_with(&prefix));
            }
        }

        #[test]
        fn plain_pattern_matches_exactly_itself(
            pattern in no_specials(),
            other in no_specials(),
        ) {
            prop_assert!(matches(&pattern, &pattern));
            prop_assert!(matches_nocase(&pattern, &pattern));
            prop_assert_eq!(matches(&pattern, &other), pattern == other);
            prop_assert_eq!(&*literal_prefix(&pattern), &pattern[..]);
        }
    }
    #[test]
    fn literal_runs_follow_the_matchers_tokens() {
        let lit = |p: &[u8]| literals(p, 8, 4);
        let v = |s: &[u8]| s.to_vec();
        assert_eq!(
            lit(b"room.[0-9]*.12"),
            Literals {
                prefix: Some(v(b"room")),
                suffix: Some(v(b".12")),
                runs: vec![v(b"room"), v(b".12")]
            }
        );
        assert_eq!(
            lit(b"*:1:*"),
            Literals {
                prefix: None,
                suffix: None,
                runs: vec![v(b":1:")]
            }
        );
        // Escapes are literal, a lone trailing `\` is `\`, the suffix keeps the last bytes.
        assert_eq!(
            lit(b"\\*ab?cdefgh\\"),
            Literals {
                prefix: Some(v(b"*ab")),
                suffix: Some(v(b"fgh\\")),
                runs: vec![v(b"*ab"), v(b"cdef")]
            }
        );
        // `[a-]xy`: the range swallows `]`, so the set runs to the end: no literal at all.
        assert_eq!(lit(b"[a-]xy"), Literals::default());
        // `[]]xy`: the first `]` closes an empty set, the second is a literal.
        assert_eq!(
            lit(b"[]]xy"),
            Literals {
                prefix: None,
                suffix: Some(v(b"]xy")),
                runs: vec![v(b"]xy")]
            }
        );
        assert_eq!(lit(b""), Literals::default());
        assert_eq!(literals(b"a*b*c*d", 2, 4).runs, vec![v(b"a"), v(b"b")]);
    }
}
