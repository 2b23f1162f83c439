//! Internet checksums, all of them (the one home Katran's
//! `csum_helpers.h` is for its data plane).
//!
//! Incremental updates follow RFC 1624 (HC' = ~(~HC + ~m + m')). All
//! arithmetic is on 16-bit words exactly as they sit in memory: the
//! ones'-complement sum does not care about byte order as long as the
//! result is stored back the same way (RFC 1071 2(B)). So a field is read
//! with `from_ne_bytes`, and a checksum written with `to_ne_bytes`.

use aya_ebpf::helpers::bpf_csum_diff;
use lb_common::{Addr, Family, proto};

/// A sum folded to 16 bits (not complemented).
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
pub fn word_sum(word: u32) -> u64 {
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
    !fold((!checksum) as u64 + addr_delta(old, new) as u64)
}

/// RFC 1624's `~m + m'` for an address going from `old` to `new`, folded:
/// a change that can be applied to several checksums with [`apply`]
/// without holding both addresses.
#[inline(always)]
pub fn addr_delta(old: &Addr, new: &Addr) -> u16 {
    let mut sum = 0u64;
    let mut i = 0;
    while i < 4 {
        sum += word_sum(!old.words[i]) + word_sum(new.words[i]);
        i += 1;
    }
    fold(sum)
}

/// RFC 1624's `~m + m'` for a 16-bit field going from `old` to `new`.
#[inline(always)]
pub fn delta16(old: u16, new: u16) -> u16 {
    fold((!old) as u64 + new as u64)
}

/// `checksum` with a change worth `delta` (HC' = ~(~HC + delta)).
#[inline(always)]
pub fn apply(checksum: u16, delta: u16) -> u16 {
    !fold((!checksum) as u64 + delta as u64)
}

/// A TCP/UDP checksum after the address (in the pseudo-header) and the
/// port (as on the wire in `port`, becoming `new_port`) change.
#[inline(always)]
pub fn l4_replace(
    checksum: u16,
    old_addr: &Addr,
    new_addr: &Addr,
    port: &[u8; 2],
    new_port: u16,
) -> u16 {
    let checksum = replace_addr(checksum, old_addr, new_addr);
    replace16(checksum, u16::from_ne_bytes(*port), new_port)
}

/// A TCP or UDP checksum `old` after the change `update` works out, or
/// `None` where it must stay as it is: an IPv4 UDP checksum of 0 says the
/// sender computed none (RFC 768). IPv6 requires one, so 0 there is just a
/// broken packet, updated like any other. A computed UDP checksum of 0 is
/// sent as all ones: 0 on the wire would mean "no checksum".
#[inline(always)]
pub fn l4_update(
    old: u16,
    protocol: u8,
    family: Family,
    update: impl FnOnce(u16) -> u16,
) -> Option<u16> {
    let is_udp = protocol == proto::UDP;
    if is_udp && old == 0 && family == Family::V4 {
        return None;
    }
    let new = update(old);
    Some(if is_udp && new == 0 { 0xffff } else { new })
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

/// Checksum of a fresh 20-byte IPv4 header whose identification, flags
/// and fragment offset are zero, from its other words in memory order:
/// version/IHL and TOS, total length, TTL and protocol, and the addresses.
/// For writers that store field by field (no array on the stack).
#[inline(always)]
pub fn ipv4_header_of(vihl_tos: u16, total_len: u16, ttl_proto: u16, src: u32, dst: u32) -> u16 {
    let sum = vihl_tos as u64 + total_len as u64 + ttl_proto as u64 + word_sum(src) + word_sum(dst);
    !fold(sum)
}

/// Sum of the ICMPv6 pseudo-header (RFC 8200 8.1) for a message of
/// `upper_len` bytes, folded to 16 bits so it can seed [`sum_region`].
#[inline(always)]
pub fn icmpv6_pseudo_header(src: &Addr, dst: &Addr, upper_len: u32) -> u32 {
    let mut sum = 0u64;
    let mut i = 0;
    while i < 4 {
        sum += word_sum(src.words[i]) + word_sum(dst.words[i]);
        i += 1;
    }
    // Length and next header, as 32-bit big-endian words.
    sum += word_sum(upper_len.to_be()) + word_sum((proto::ICMPV6 as u32).to_be());
    fold(sum) as u32
}

/// `bpf_csum_diff` takes at most 512 bytes (a multiple of 4) per call.
const CHUNK: usize = 512;

/// Ones'-complement sum of `LEN` bytes at `start` (inside the frame, as the
/// caller checked), added to `seed`, with the kernel's `bpf_csum_diff`.
/// Unfolded, 32 bits. BPF only.
#[inline(always)]
pub fn sum_region<const LEN: usize>(start: *mut u8, seed: u32) -> Option<u32> {
    const { assert!(LEN.is_multiple_of(4)) };
    let mut sum = seed;
    let mut done = 0;
    // At most three rounds, with constant sizes: the compiler unrolls it.
    while done < LEN {
        let len = if LEN - done < CHUNK {
            LEN - done
        } else {
            CHUNK
        };
        // SAFETY: `start + done .. + len` lies within the checked range.
        let result = unsafe {
            bpf_csum_diff(
                core::ptr::null_mut(),
                0,
                start.add(done) as *mut u32,
                len as u32,
                sum,
            )
        };
        if result < 0 {
            return None;
        }
        sum = result as u32;
        done += len;
    }
    Some(sum)
}

#[cfg(test)]
mod tests;
