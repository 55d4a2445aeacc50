//! Pattern shapes of the `patterns` scenario (issue 15): N patterns, K channels
//! published to. Channel `j` (0..K) matches exactly pattern `j % N` and no other
//! (variant `k = j / N` keeps the K channels distinct when K > N); under `miss`
//! it matches none.
//!
//! | shape     | pattern i         | channel j (i = j % N, k = j / N) |
//! |-----------|-------------------|----------------------------------|
//! | `prefix`  | `p<i>.*`          | `p<i>.x<k>`                      |
//! | `inner`   | `bench.*.p<i>`    | `bench.x<k>.p<i>`                |
//! | `leading` | `*.p<i>`          | `x<k>.p<i>`                      |
//! | `infix`   | `*:<i>:*`         | `x<k>:<i>:y`                     |
//! | `class`   | `room.[0-9]*.<i>` | `room.<j % 10>x<k>.<i>`          |
//! | `miss`    | `bench.*.p<i>`    | `bench.x<k>.q<i>` (matches none) |
//! | `colon`   | `bench:<i>:*`     | `bench:<i>:x` (`x<k>` for k > 0), the shape before issue 15 |

use clap::ValueEnum;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Distinct literal prefixes: `p<i>.*`, channels `p<i>.x<k>`.
    Prefix,
    /// Shared prefix, inner wildcard: `bench.*.p<i>`, channels `bench.x<k>.p<i>`.
    Inner,
    /// Leading wildcard: `*.p<i>`, channels `x<k>.p<i>`.
    Leading,
    /// Literal between two wildcards: `*:<i>:*`, channels `x<k>:<i>:y`.
    Infix,
    /// Character class: `room.[0-9]*.<i>`, channels `room.<digit>x<k>.<i>`.
    Class,
    /// Patterns as `inner`, channels `bench.x<k>.q<i>` that match no pattern.
    Miss,
    /// The scenario's shape before issue 15: `bench:<i>:*`, channels `bench:<i>:x`.
    Colon,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Prefix => "prefix",
            Shape::Inner => "inner",
            Shape::Leading => "leading",
            Shape::Infix => "infix",
            Shape::Class => "class",
            Shape::Miss => "miss",
            Shape::Colon => "colon",
        }
    }

    /// Pattern `i`.
    pub fn pattern(self, i: usize) -> String {
        match self {
            Shape::Prefix => format!("p{i}.*"),
            Shape::Inner | Shape::Miss => format!("bench.*.p{i}"),
            Shape::Leading => format!("*.p{i}"),
            Shape::Infix => format!("*:{i}:*"),
            Shape::Class => format!("room.[0-9]*.{i}"),
            Shape::Colon => format!("bench:{i}:*"),
        }
    }

    /// Channel `j` of `patterns` patterns: matches pattern `j % patterns` only
    /// (none under `miss`).
    pub fn channel(self, j: usize, patterns: usize) -> String {
        let (i, k) = (j % patterns, j / patterns);
        match self {
            Shape::Prefix => format!("p{i}.x{k}"),
            Shape::Inner => format!("bench.x{k}.p{i}"),
            Shape::Leading => format!("x{k}.p{i}"),
            Shape::Infix => format!("x{k}:{i}:y"),
            Shape::Class => format!("room.{}x{k}.{i}", j % 10),
            Shape::Miss => format!("bench.x{k}.q{i}"),
            Shape::Colon if k == 0 => format!("bench:{i}:x"),
            Shape::Colon => format!("bench:{i}:x{k}"),
        }
    }

    /// Deliveries per PUBLISH (one subscriber per pattern).
    pub fn fan(self) -> u64 {
        u64::from(self != Shape::Miss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const ALL: [Shape; 7] = [
        Shape::Prefix,
        Shape::Inner,
        Shape::Leading,
        Shape::Infix,
        Shape::Class,
        Shape::Miss,
        Shape::Colon,
    ];

    /// Every channel matches exactly its pattern (none under miss), checked
    /// with fanout's own glob matcher and the Redis reference port.
    fn check(shape: Shape, n: usize, k: usize) {
        let pats: Vec<String> = (0..n).map(|i| shape.pattern(i)).collect();
        assert_eq!(
            pats.iter().collect::<HashSet<_>>().len(),
            n,
            "{shape:?}: patterns distinct"
        );
        let mut seen = HashSet::new();
        for j in 0..k {
            let ch = shape.channel(j, n);
            assert!(seen.insert(ch.clone()), "{shape:?}: channel {ch} repeated");
            let hits: Vec<usize> = (0..n)
                .filter(|&i| fanout::glob::matches(pats[i].as_bytes(), ch.as_bytes()))
                .collect();
            let reference: Vec<usize> = (0..n)
                .filter(|&i| fanout::glob::reference::matches(pats[i].as_bytes(), ch.as_bytes(), false))
                .collect();
            assert_eq!(hits, reference, "{shape:?}: {ch}: fanout::glob vs reference");
            let want: Vec<usize> = if shape == Shape::Miss { vec![] } else { vec![j % n] };
            assert_eq!(hits, want, "{shape:?}: channel {ch} matched {hits:?}");
        }
    }

    #[test]
    fn each_channel_matches_its_pattern_only() {
        for shape in ALL {
            check(shape, 37, 500); // K > N: variants k = 0..13
            check(shape, 120, 100); // K < N
            check(shape, 1, 20);
        }
    }

    #[test]
    fn issue_defaults() {
        // 1,000 patterns, 4,096 channels: the issue's workload.
        for shape in [Shape::Inner, Shape::Class, Shape::Miss] {
            check(shape, 1000, 4096);
        }
    }

    #[test]
    fn examples() {
        assert_eq!(Shape::Inner.pattern(7), "bench.*.p7");
        assert_eq!(Shape::Inner.channel(7, 1000), "bench.x0.p7");
        assert_eq!(Shape::Inner.channel(1007, 1000), "bench.x1.p7");
        assert_eq!(Shape::Class.channel(1007, 1000), "room.7x1.7");
        assert_eq!(Shape::Colon.channel(7, 1000), "bench:7:x");
        assert_eq!(Shape::Miss.fan(), 0);
    }
}
