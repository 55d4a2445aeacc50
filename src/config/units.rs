//! Redis's memory units: `100`, `100b`, `1k` (1000), `1kb` (1024), `1m`, `1mb`, `1g`, `1gb`,
//! in any case. Anything else (`10mbs`, `1.5mb`, `-1`) is refused.

pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let digits_end = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    if digits_end == 0 {
        return None;
    }
    let n: u64 = lower[..digits_end].parse().ok()?;
    let mul: u64 = match &lower[digits_end..] {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::parse_memory;

    #[test]
    fn units() {
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1KB"), Some(1024));
        assert_eq!(parse_memory("512mb"), Some(536870912));
        assert_eq!(parse_memory("1g"), Some(1_000_000_000));
        assert_eq!(parse_memory("10mbs"), None);
        assert_eq!(parse_memory("mb"), None);
        assert_eq!(parse_memory("-1"), None);
    }
}
