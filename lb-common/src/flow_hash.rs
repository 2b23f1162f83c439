//! The flow hash that picks a Maglev slot.
//!
//! It lives here, not in the BPF crate, so that tests and tools can predict
//! which slot (and so which real) a given 5-tuple lands on.

use crate::maps::FlowKey;

/// murmur3's 32-bit finaliser: cheap, branch-free and well mixed, which is
/// all a slot index needs (this is not a defence against chosen flows).
#[inline(always)]
const fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

#[inline(always)]
const fn mix(h: u32, word: u32) -> u32 {
    let k = word
        .wrapping_mul(0xcc9e_2d51)
        .rotate_left(15)
        .wrapping_mul(0x1b87_3593);
    (h ^ k)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

/// Hash of a flow's 5-tuple. Unrolled by hand: the BPF verifier accepts it
/// without a loop and it costs a handful of ALU ops.
#[inline(always)]
pub const fn flow_hash(key: &FlowKey) -> u32 {
    let s = key.src.words;
    let d = key.dst.words;
    let mut h = 0x9747_b28c;
    h = mix(h, s[0]);
    h = mix(h, s[1]);
    h = mix(h, s[2]);
    h = mix(h, s[3]);
    h = mix(h, d[0]);
    h = mix(h, d[1]);
    h = mix(h, d[2]);
    h = mix(h, d[3]);
    h = mix(h, ((key.src_port as u32) << 16) | key.dst_port as u32);
    h = mix(h, ((key.protocol as u32) << 8) | key.family as u32);
    fmix32(h ^ 40)
}
