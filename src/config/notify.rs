//! `notify-keyspace-events`: which keyspace notifications are published, as bits.

pub const KEYSPACE: u32 = 1 << 0;
pub const KEYEVENT: u32 = 1 << 1;
pub const GENERIC: u32 = 1 << 2;
pub const STRING: u32 = 1 << 3;
pub const LIST: u32 = 1 << 4;
pub const SET: u32 = 1 << 5;
pub const HASH: u32 = 1 << 6;
pub const ZSET: u32 = 1 << 7;
pub const EXPIRED: u32 = 1 << 8;
pub const EVICTED: u32 = 1 << 9;
pub const STREAM: u32 = 1 << 10;
pub const KEY_MISS: u32 = 1 << 11;
pub const MODULE: u32 = 1 << 12;
pub const NEW: u32 = 1 << 13;
/// `A`: every class but key-miss and new.
pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
const LETTERS: [(char, u32); 13] = [
    ('g', GENERIC),
    ('$', STRING),
    ('l', LIST),
    ('s', SET),
    ('h', HASH),
    ('z', ZSET),
    ('x', EXPIRED),
    ('e', EVICTED),
    ('K', KEYSPACE),
    ('E', KEYEVENT),
    ('t', STREAM),
    ('m', KEY_MISS),
    ('d', MODULE),
];

/// Parses the directive's letters (Redis's `keyspaceEventsStringToFlags`).
pub fn parse(s: &str) -> Option<u32> {
    let mut flags = 0;
    for c in s.chars() {
        flags |= match c {
            'A' => ALL,
            'n' => NEW,
            c => LETTERS.iter().find(|(l, _)| *l == c)?.1,
        };
    }
    Some(flags)
}

/// The directive's canonical text (Redis's `keyspaceEventsFlagsToString`).
pub fn render(flags: u32) -> String {
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        for (c, bit) in LETTERS {
            if bit & (KEYSPACE | KEYEVENT | KEY_MISS) == 0 && flags & bit != 0 {
                s.push(c);
            }
        }
        // Redis writes `n` only without `A` (so `KAn` reads back as `AK`); the flag
        // itself stays on.
        if flags & NEW != 0 {
            s.push('n');
        }
    }
    if flags & KEYSPACE != 0 {
        s.push('K');
    }
    if flags & KEYEVENT != 0 {
        s.push('E');
    }
    if flags & KEY_MISS != 0 {
        s.push('m');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_as_redis_does() {
        for (set, shown) in [
            ("gKE", "gKE"),
            ("$lshzxeKE", "$lshzxeKE"),
            ("KA", "AK"),
            ("EA", "AE"),
            ("Kt", "tK"),
            ("KEAn", "AKE"),
            ("En", "nE"),
            ("Km", "Km"),
            ("", ""),
        ] {
            assert_eq!(render(parse(set).unwrap()), shown, "{set}");
        }
        assert!(parse("Kq").is_none());
    }
}
