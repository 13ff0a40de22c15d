//! Key encoding: big-endian ids so that range scans come back in id order.

pub fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// Reads a big-endian id from the first 8 bytes (0 if shorter).
pub fn key_id(bytes: &[u8]) -> u64 {
    bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// `parent|child`, so that one prefix scan lists a parent's children in id order.
pub fn pair_key(parent: u64, child: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&parent.to_be_bytes());
    key[8..].copy_from_slice(&child.to_be_bytes());
    key
}

/// A signed value as a key part that sorts in numeric order (prices, times).
pub fn ordered_i64(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1u64 << 63)).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_numbers() {
        assert!(id_key(255) < id_key(256));
        assert!(pair_key(1, 900) < pair_key(2, 1));
        assert!(ordered_i64(-5) < ordered_i64(3));
        assert!(ordered_i64(3) < ordered_i64(1 << 40));
        assert_eq!(key_id(&pair_key(7, 9)), 7);
        assert_eq!(key_id(&pair_key(7, 9)[8..]), 9);
    }
}
