//! Internet checksums. Incremental updates follow RFC 1624
//! (HC' = ~(~HC + ~m + m')). All arithmetic is on 16-bit words exactly as
//! they sit in memory: the ones'-complement sum does not care about byte
//! order as long as the result is stored back the same way.

use lb_common::Addr;

#[inline(always)]
pub fn fold(mut sum: u64) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// Adds the two 16-bit halves of a 32-bit word as it sits in memory.
#[inline(always)]
fn word_sum(word: u32) -> u64 {
    (word & 0xffff) as u64 + (word >> 16) as u64
}

/// Updates `checksum` for a 16-bit field going from `old` to `new`.
#[inline(always)]
pub fn replace16(checksum: u16, old: u16, new: u16) -> u16 {
    let sum = (!checksum) as u64 + (!old) as u64 + new as u64;
    !fold(sum)
}

/// Updates `checksum` for a 32-bit field going from `old` to `new`.
#[inline(always)]
pub fn replace32(checksum: u16, old: u32, new: u32) -> u16 {
    let sum = (!checksum) as u64 + word_sum(!old) + word_sum(new);
    !fold(sum)
}

/// Updates `checksum` for an address going from `old` to `new` (IPv4 uses
/// the first word only; the other words are zero in both and cancel out).
#[inline(always)]
pub fn replace_addr(checksum: u16, old: &Addr, new: &Addr) -> u16 {
    let mut sum = (!checksum) as u64;
    let mut i = 0;
    while i < 4 {
        sum += word_sum(!old.words[i]) + word_sum(new.words[i]);
        i += 1;
    }
    !fold(sum)
}

/// Checksum of a fresh 20-byte IPv4 header (its checksum field zero).
#[inline(always)]
pub fn ipv4_header(words: &[u16; 10]) -> u16 {
    let mut sum = 0u64;
    let mut i = 0;
    while i < 10 {
        sum += words[i] as u64;
        i += 1;
    }
    !fold(sum)
}
