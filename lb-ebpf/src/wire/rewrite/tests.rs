//! A packet translated in place must equal the same packet built afresh
//! with the new address, port and TTL, every checksum computed from
//! scratch: the incremental updates leave no trace.

use lb_common::{Addr, Family, proto};

use super::translate;
use crate::wire::{
    frame::test_frame::Bytes,
    layout::{End, Layout},
};

/// RFC 1071 over `bytes` (an odd tail padded with zero), big-endian.
fn checksum(bytes: &[u8]) -> [u8; 2] {
    let mut sum = 0u32;
    for pair in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    (!(sum as u16)).to_be_bytes()
}

/// One end of a packet: address octets (4 or 16) and port.
struct At<'a>(&'a [u8], u16);

/// Ethernet, IP (TTL / hop limit `ttl`), then a TCP or UDP segment with a
/// short payload, every checksum right; `udp_checksum: false` leaves an
/// IPv4 UDP checksum 0 ("none").
fn packet(protocol: u8, src: At, dst: At, ttl: u8, udp_checksum: bool) -> Vec<u8> {
    let mut l4 = [&src.1.to_be_bytes()[..], &dst.1.to_be_bytes()].concat();
    let payload = b"hello";
    if protocol == proto::TCP {
        l4.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        l4.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
        l4.extend_from_slice(&[0, 0]);
    }
    l4.extend_from_slice(payload);
    let len = l4.len() as u16;
    let pseudo = [src.0, dst.0, &[0, protocol], &len.to_be_bytes()].concat();
    let check_at = if protocol == proto::TCP { 16 } else { 6 };
    if protocol == proto::TCP || udp_checksum {
        let mut sum = checksum(&[pseudo, l4.clone()].concat());
        if sum == [0, 0] {
            sum = [0xff, 0xff];
        }
        l4[check_at..check_at + 2].copy_from_slice(&sum);
    }
    let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    if src.0.len() == 4 {
        frame.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + len).to_be_bytes();
        let mut ip = vec![
            0x45, 0, total[0], total[1], 0x12, 0x34, 0x40, 0, ttl, protocol, 0, 0,
        ];
        ip.extend_from_slice(src.0);
        ip.extend_from_slice(dst.0);
        let sum = checksum(&ip);
        ip[10..12].copy_from_slice(&sum);
        frame.extend_from_slice(&ip);
    } else {
        frame.extend_from_slice(&[0x86, 0xdd]);
        let len = len.to_be_bytes();
        frame.extend_from_slice(&[0x60, 0, 0, 0, len[0], len[1], protocol, ttl]);
        frame.extend_from_slice(src.0);
        frame.extend_from_slice(dst.0);
    }
    frame.extend_from_slice(&l4);
    frame
}

fn layout(family: Family, protocol: u8) -> Layout {
    Layout {
        family,
        protocol,
        l3_offset: 14,
        l4_offset: match family {
            Family::V4 => 34,
            Family::V6 => 54,
        },
    }
}

const CLIENT: [u8; 4] = [198, 18, 5, 9];
const VIP: [u8; 4] = [198, 18, 0, 100];
const REAL: [u8; 4] = [198, 19, 0, 7];

fn v6(last: u8) -> [u8; 16] {
    let mut addr = [0u8; 16];
    addr[0] = 0xfd;
    addr[15] = last;
    addr
}

/// Translates `input` and compares it with `expected`.
fn assert_translates(input: Vec<u8>, at: Layout, end: End, new: (&Addr, u16), expected: Vec<u8>) {
    let frame = Bytes::<256>::new(&input);
    translate(&frame, at, end, new).unwrap();
    assert_eq!(frame.as_slice(), &expected[..]);
}

#[test]
fn a_request_goes_to_the_real() {
    for protocol in [proto::TCP, proto::UDP] {
        let request = packet(protocol, At(&CLIENT, 40000), At(&VIP, 80), 64, true);
        let to_real = packet(protocol, At(&CLIENT, 40000), At(&REAL, 8080), 63, true);
        let new = (&Addr::from_v4_octets(REAL), 8080u16.to_be());
        let at = layout(Family::V4, protocol);
        assert_translates(request, at, End::Destination, new, to_real);
    }
}

#[test]
fn a_reply_comes_back_from_the_vip() {
    for protocol in [proto::TCP, proto::UDP] {
        let (real, vip, client) = (v6(7), v6(100), v6(9));
        let reply = packet(protocol, At(&real, 8080), At(&client, 40000), 9, true);
        let from_vip = packet(protocol, At(&vip, 443), At(&client, 40000), 8, true);
        let new = (&Addr::from_v6_octets(vip), 443u16.to_be());
        let at = layout(Family::V6, protocol);
        assert_translates(reply, at, End::Source, new, from_vip);
    }
}

#[test]
fn ipv4_udp_without_a_checksum_keeps_none() {
    let request = packet(proto::UDP, At(&CLIENT, 5353), At(&VIP, 53), 2, false);
    let to_real = packet(proto::UDP, At(&CLIENT, 5353), At(&REAL, 53), 1, false);
    let new = (&Addr::from_v4_octets(REAL), 53u16.to_be());
    let at = layout(Family::V4, proto::UDP);
    assert_translates(request, at, End::Destination, new, to_real);
}

#[test]
fn neither_tcp_nor_udp_is_left_alone() {
    let request = packet(proto::UDP, At(&CLIENT, 5353), At(&VIP, 53), 64, true);
    let frame = Bytes::<256>::new(&request);
    let new = (&Addr::from_v4_octets(REAL), 53u16.to_be());
    let at = layout(Family::V4, proto::ICMP);
    assert!(translate(&frame, at, End::Destination, new).is_none());
    assert_eq!(frame.as_slice(), &request[..]);
}
