//! Test-only references the wire helpers are checked against, written the
//! plain way so that they share no code with what they check.

/// RFC 1071's Internet checksum over `bytes` computed from scratch, stored
/// big-endian (as it sits in a header).
pub fn checksum(bytes: &[u8]) -> [u8; 2] {
    let mut sum = 0u32;
    for pair in bytes.chunks(2) {
        let hi = pair[0] as u32;
        let lo = *pair.get(1).unwrap_or(&0) as u32;
        sum += (hi << 8) | lo;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    (!(sum as u16)).to_be_bytes()
}
