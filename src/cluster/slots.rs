//! Hash slots: which of Redis Cluster's 16,384 slots a key or shard channel belongs to.
//! CRC16/XMODEM (polynomial 0x1021, init 0, no reflection) of the key, or of its hash
//! tag, modulo 16,384: the function every cluster client computes for itself, so the
//! server's MOVED and CROSSSLOT must agree with it bit for bit.

/// Redis Cluster's slot count.
pub const SLOTS: usize = 16384;

const fn table() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        t[i] = crc;
        i += 1;
    }
    t
}

static TABLE: [u16; 256] = table();

/// CRC16/XMODEM.
pub fn crc16(bytes: &[u8]) -> u16 {
    bytes
        .iter()
        .fold(0u16, |crc, &b| (crc << 8) ^ TABLE[((crc >> 8) as u8 ^ b) as usize])
}

/// The part of a key that is hashed: the bytes between the first `{` and the first `}`
/// after it, when there are any; otherwise the whole key (Redis's `keyHashSlot`).
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = memchr::memchr(b'{', key) {
        if let Some(len) = memchr::memchr(b'}', &key[open + 1..]) {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The slot of a key or shard channel.
pub fn slot_of(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) & (SLOTS as u16 - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    /// `CLUSTER KEYSLOT` on Redis 7.0.15.
    #[test]
    fn redis_vectors() {
        for (key, slot) in [
            (&b"123456789"[..], 12739),
            (b"foo", 12182),
            (b"bar", 5061),
            (b"channel:123", 3018),
            (b"channel.0", 7312),
            (b"mychannel", 10059),
            (b"{user1000}.following", 3443),
            (b"{user1000}.followers", 3443),
            (b"foo{}{bar}", 8363),
            (b"foo{{bar}}zap", 4015),
            (b"foo{bar}{zap}", 5061),
            (b"", 0),
        ] {
            assert_eq!(slot_of(key), slot, "{}", String::from_utf8_lossy(key));
        }
    }
}
