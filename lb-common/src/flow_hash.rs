//! The hashes that pick a slot of a service's scheduling row, and the
//! order in which the hash schedulers probe further slots.
//!
//! They live here, not in the BPF crate, so that tests and tools can
//! predict which slot (and so which real) a given packet lands on:
//!
//! | scheduler | hash                                                        |
//! |-----------|-------------------------------------------------------------|
//! | mh        | [`flow_hash`] of the 5-tuple with `SCHED_FLAG_PORT`, else [`addr_hash`] of the client |
//! | sh        | [`addr_port_hash`] of the client with `SCHED_FLAG_PORT`, else [`addr_hash`] of the client |
//! | dh        | [`addr_hash`] of the destination (the VIP)                  |
//!
//! The slot is `hash % table_size`; with `SCHED_FLAG_FALLBACK` an
//! unavailable real there sends the packet on to [`probe_slot`]`(hash, 1..)`.

use crate::{
    addr::Addr,
    maps::{FlowKey, capacity::FLOW_CACHE_SLOTS},
};

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

/// Hash of an address alone: sh and mh without `SCHED_FLAG_PORT` (every
/// connection of a client to the same slot), dh (of the destination).
#[inline(always)]
pub const fn addr_hash(addr: &Addr) -> u32 {
    let w = addr.words;
    let mut h = 0x5bd1_e995;
    h = mix(h, w[0]);
    h = mix(h, w[1]);
    h = mix(h, w[2]);
    h = mix(h, w[3]);
    fmix32(h ^ 16)
}

/// Hash of an address and a port (network byte order, as in [`FlowKey`]):
/// sh with `SCHED_FLAG_PORT`.
#[inline(always)]
pub const fn addr_port_hash(addr: &Addr, port_be: u16) -> u32 {
    let w = addr.words;
    let mut h = 0x1b87_3593;
    h = mix(h, w[0]);
    h = mix(h, w[1]);
    h = mix(h, w[2]);
    h = mix(h, w[3]);
    h = mix(h, port_be as u32);
    fmix32(h ^ 20)
}

const FLOW_CACHE_SLOT_BITS: u32 = FLOW_CACHE_SLOTS.trailing_zeros();
const _: () = assert!(FLOW_CACHE_SLOTS.is_power_of_two());

/// The slot of `LB_FLOW_CACHE` a flow is cached in: a fold of the 5-tuple
/// spread by one multiplication whose top bits are the index (Fibonacci
/// hashing). Cheaper than [`flow_hash`] by half, and a collision only
/// costs a trip to the flow table.
#[inline(always)]
pub const fn flow_cache_slot(key: &FlowKey) -> u32 {
    let s = key.src.words;
    let d = key.dst.words;
    let mut h = (s[0] ^ s[1] ^ s[2] ^ s[3])
        ^ (d[0] ^ d[1] ^ d[2] ^ d[3]).rotate_left(16)
        ^ (((key.src_port as u32) << 16) | key.dst_port as u32)
        ^ key.protocol as u32;
    // IPv4 octets sit in wire order in a little-endian word: a client's
    // last octet is in the top byte. Fold it down before multiplying, or
    // clients differing only there would share a slot.
    h ^= h >> 16;
    h.wrapping_mul(0x9e37_79b1) >> (32 - FLOW_CACHE_SLOT_BITS)
}

/// How many further slots the hash schedulers (mh, sh) try with
/// `SCHED_FLAG_FALLBACK` when the hashed slot's real is unavailable, before
/// they give up (`DropNoReal`). IPVS walks up to its whole table (256
/// buckets for sh, 4093 slots for mh); 65 537 slots cannot be walked per
/// packet, and with a fraction `f` of the slots unavailable all 32 probes
/// fail with probability `f^32` (under 0.1% while three quarters of the
/// reals are unavailable).
pub const MAX_FALLBACK_PROBES: u32 = 32;

/// The distance between consecutive probes of a hash: from 1 to
/// `table_size - 1`, and derived from the hash by another mix so that keys
/// sharing a slot do not share the probe sequence. The table size is
/// prime, so the sequence visits every slot before it repeats. Not simply
/// the next slot: sh rows hold each real in runs of `weight` consecutive
/// buckets, which a step of 1 would mostly probe again.
#[inline(always)]
pub const fn probe_step(hash: u32, table_size: u32) -> u32 {
    if table_size < 2 {
        return 1;
    }
    1 + fmix32(hash ^ 0x2f69_3a5b) % (table_size - 1)
}

/// The slot the `probe`-th try of `hash` reads: 0 is the hashed slot
/// itself, `1..=MAX_FALLBACK_PROBES` the fallback probes. `table_size`
/// must not be 0.
#[inline(always)]
pub const fn probe_slot(hash: u32, probe: u32, table_size: u32) -> u32 {
    let first = (hash % table_size) as u64;
    let step = probe_step(hash, table_size) as u64;
    ((first + probe as u64 * step) % table_size as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_hashes_depend_on_every_word_and_the_port() {
        let a = Addr::from_v4_octets([198, 19, 7, 7]);
        let b = Addr::from_v4_octets([198, 19, 7, 8]);
        assert_ne!(addr_hash(&a), addr_hash(&b));
        let mut v6 = a;
        v6.words[3] = 1;
        assert_ne!(addr_hash(&a), addr_hash(&v6));
        assert_ne!(addr_port_hash(&a, 1), addr_port_hash(&a, 2));
        assert_ne!(addr_port_hash(&a, 0), addr_hash(&a));
    }

    #[test]
    fn flow_cache_slots_spread_clients_ports_and_addresses() {
        let key = |client: [u8; 4], port: u16| FlowKey {
            src: Addr::from_v4_octets(client),
            dst: Addr::from_v4_octets([198, 18, 0, 10]),
            src_port: port.to_be(),
            dst_port: 80u16.to_be(),
            protocol: 6,
            family: 4,
            _pad: [0; 2],
        };
        let mut used = [false; FLOW_CACHE_SLOTS as usize];
        for n in 0..1024u16 {
            for k in [
                key([198, 19, 7, 7], 40_000 + n),
                key([198, 19, (n >> 8) as u8, n as u8], 40_000),
            ] {
                let slot = flow_cache_slot(&k);
                assert!(slot < FLOW_CACHE_SLOTS);
                used[slot as usize] = true;
            }
        }
        // 2,048 keys into 8,192 slots: a fair spread leaves ~1,800 slots
        // used (balls into bins); a weak fold of ports or octets far fewer.
        let used = used.iter().filter(|used| **used).count();
        assert!(used > 1_700, "only {used} slots used");
    }

    #[test]
    fn probes_visit_every_slot_of_a_prime_table_once_per_cycle() {
        for hash in [0, 1, 12, 0xdead_beef, u32::MAX] {
            let mut seen = [false; 13];
            for probe in 0..13 {
                let slot = probe_slot(hash, probe, 13) as usize;
                assert!(!seen[slot], "hash {hash:#x} probe {probe} revisits {slot}");
                seen[slot] = true;
            }
            assert_eq!(probe_slot(hash, 0, 13), hash % 13);
            assert_eq!(probe_slot(hash, 13, 13), hash % 13);
            let step = probe_step(hash, 65_537);
            assert!((1..65_537).contains(&step));
        }
    }
}
