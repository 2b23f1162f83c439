//! Each helper against a checksum computed from scratch over the bytes.

use lb_common::{Addr, Family, proto};

use super::*;
use crate::wire::reference::checksum as reference;

/// The 16-bit word at `offset`, as it sits in memory.
fn word(bytes: &[u8], offset: usize) -> u16 {
    u16::from_ne_bytes([bytes[offset], bytes[offset + 1]])
}

/// An IPv4 header (RFC 1071's example, Wikipedia's too): checksum b861.
const IPV4: [u8; 20] = [
    0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01,
    0xc0, 0xa8, 0x00, 0xc7,
];

fn words(header: &[u8; 20]) -> [u16; 10] {
    core::array::from_fn(|i| word(header, 2 * i))
}

#[test]
fn fold_carries_until_sixteen_bits() {
    assert_eq!(fold(0xffff), 0xffff);
    assert_eq!(fold(0x1_0000), 1);
    assert_eq!(fold(0x1_fffe), 0xffff);
    assert_eq!(fold(u64::MAX), 0xffff);
}

#[test]
fn ipv4_header_matches_the_known_checksum() {
    let mut header = IPV4;
    header[10..12].copy_from_slice(&[0, 0]);
    assert_eq!(ipv4_header(&words(&header)).to_ne_bytes(), [0xb8, 0x61]);
    assert_eq!(reference(&header), [0xb8, 0x61]);
}

#[test]
fn ipv4_header_of_fields_matches_the_whole_header() {
    // DF cleared: `ipv4_header_of` is for headers without flags.
    let mut header = IPV4;
    header[6] = 0;
    header[10..12].copy_from_slice(&[0, 0]);
    let w = words(&header);
    let src = u32::from_ne_bytes(header[12..16].try_into().unwrap());
    let dst = u32::from_ne_bytes(header[16..20].try_into().unwrap());
    let of_fields = ipv4_header_of(w[0], w[1], w[4], src, dst);
    assert_eq!(of_fields.to_ne_bytes(), reference(&header));
    assert_eq!(of_fields, ipv4_header(&w));
}

#[test]
fn replace16_equals_a_fresh_sum() {
    let mut header = IPV4;
    let old = word(&header, 8);
    header[8] -= 1; // TTL 64 -> 63
    let new = word(&header, 8);
    let updated = replace16(word(&IPV4, 10), old, new);
    header[10..12].copy_from_slice(&[0, 0]);
    assert_eq!(updated.to_ne_bytes(), reference(&header));
}

#[test]
fn replace32_and_replace_addr_equal_a_fresh_sum() {
    let new_src = [198, 18, 0, 7];
    let mut header = IPV4;
    let old = u32::from_ne_bytes(header[12..16].try_into().unwrap());
    header[12..16].copy_from_slice(&new_src);
    header[10..12].copy_from_slice(&[0, 0]);
    let fresh = reference(&header);
    let by_word = replace32(word(&IPV4, 10), old, u32::from_ne_bytes(new_src));
    assert_eq!(by_word.to_ne_bytes(), fresh);
    let by_addr = replace_addr(
        word(&IPV4, 10),
        &Addr::from_v4_octets(old.to_ne_bytes()),
        &Addr::from_v4_octets(new_src),
    );
    assert_eq!(by_addr.to_ne_bytes(), fresh);
}

/// An IPv6 pseudo-header plus a UDP header and 4 bytes of payload, and
/// where its parts are.
fn udp6(src: [u8; 16], src_port: u16) -> Vec<u8> {
    let dst = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99];
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&src);
    bytes.extend_from_slice(&dst);
    bytes.extend_from_slice(&12u32.to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 17]);
    bytes.extend_from_slice(&src_port.to_be_bytes());
    bytes.extend_from_slice(&[0x1f, 0x90, 0, 12, 0, 0, b'p', b'i', b'n', b'g']);
    bytes
}

const REAL: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
const VIP: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80];

#[test]
fn l4_replace_moves_address_and_port_like_a_fresh_sum() {
    let before = reference(&udp6(REAL, 8080));
    let after = reference(&udp6(VIP, 80));
    let updated = l4_replace(
        u16::from_ne_bytes(before),
        &Addr::from_v6_octets(REAL),
        &Addr::from_v6_octets(VIP),
        &8080u16.to_be_bytes(),
        80u16.to_be(),
    );
    assert_eq!(updated.to_ne_bytes(), after);
}

#[test]
fn deltas_applied_equal_the_direct_update() {
    let before = u16::from_ne_bytes(reference(&udp6(REAL, 8080)));
    let (real, vip) = (Addr::from_v6_octets(REAL), Addr::from_v6_octets(VIP));
    let direct = l4_replace(before, &real, &vip, &8080u16.to_be_bytes(), 80u16.to_be());
    let by_delta = apply(
        apply(before, addr_delta(&real, &vip)),
        delta16(8080u16.to_be(), 80u16.to_be()),
    );
    assert_eq!(by_delta, direct);
}

#[test]
fn l4_update_keeps_ipv4_udp_without_checksum_and_never_sends_zero() {
    let to = |new: u16| move |_| new;
    assert_eq!(l4_update(0, proto::UDP, Family::V4, to(0x1234)), None);
    assert_eq!(
        l4_update(0, proto::UDP, Family::V6, to(0x1234)),
        Some(0x1234)
    );
    assert_eq!(
        l4_update(0, proto::TCP, Family::V4, to(0x1234)),
        Some(0x1234)
    );
    assert_eq!(l4_update(7, proto::UDP, Family::V4, to(0)), Some(0xffff));
    assert_eq!(l4_update(7, proto::TCP, Family::V4, to(0)), Some(0));
    assert_eq!(l4_update(7, proto::UDP, Family::V6, |old| old + 1), Some(8));
}

#[test]
fn icmpv6_pseudo_header_seeds_the_message_sum() {
    let (src, dst) = (REAL, VIP);
    // An echo request: type, code, checksum 0, id, sequence.
    let message = [128, 0, 0, 0, 0x12, 0x34, 0, 1];
    let mut whole = Vec::new();
    whole.extend_from_slice(&src);
    whole.extend_from_slice(&dst);
    whole.extend_from_slice(&(message.len() as u32).to_be_bytes());
    whole.extend_from_slice(&[0, 0, 0, 58]);
    whole.extend_from_slice(&message);
    let seed = icmpv6_pseudo_header(
        &Addr::from_v6_octets(src),
        &Addr::from_v6_octets(dst),
        message.len() as u32,
    );
    let sum = seed as u64
        + (0..message.len())
            .step_by(2)
            .map(|i| word(&message, i) as u64)
            .sum::<u64>();
    assert_eq!((!fold(sum)).to_ne_bytes(), reference(&whole));
}
