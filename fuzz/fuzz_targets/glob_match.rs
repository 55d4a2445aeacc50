//! The glob matcher against a recursive reference that mirrors Redis's `stringmatchlen`.
//!
//! * Short inputs: `matches` / `matches_nocase` agree with `glob::reference`, the port
//!   of Redis 7.0.15's recursive C that the crate's own tests use (it follows the C line
//!   by line, including the CVE-2024-31228 nesting limit).
//! * Any input: no panic, and the iterative matcher finishes (libFuzzer's `-timeout`
//!   flags a slow unit); the reference is skipped for long inputs because it may recurse
//!   once per star.
//! * `literal_prefix`: every subject the pattern matches starts with it, and a pattern
//!   without special bytes matches exactly itself.

#![no_main]

use arbitrary::Arbitrary;
use fanout::glob::{literal_prefix, matches, matches_nocase, reference};
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
            reference::matches(pattern, subject, false),
            "matches({pattern:?}, {subject:?})"
        );
        assert_eq!(
            mi,
            reference::matches(pattern, subject, true),
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
