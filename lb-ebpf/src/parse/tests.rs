//! Frames built byte by byte, then parsed.

use lb_common::{Addr, Family, proto};

use super::{L3, L3Verdict, L4, L4Verdict, l3, l4};
use crate::wire::frame::test_frame::Bytes;

const MACS: [u8; 12] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
const VLAN: [u8; 4] = [0x81, 0x00, 0x00, 0x2a];
const IPV4: [u8; 2] = [0x08, 0x00];
const IPV6: [u8; 2] = [0x86, 0xdd];

/// 198.18.0.1 -> 198.18.0.2, TOS 0xb8, TTL 63, `frags` as on the wire.
fn ipv4(protocol: u8, frags: [u8; 2], options: &[u8], payload_len: u16) -> Vec<u8> {
    let header_len = 20 + options.len() as u16;
    let total = (header_len + payload_len).to_be_bytes();
    let vihl = 0x40 | (header_len / 4) as u8;
    let mut ip = vec![
        vihl, 0xb8, total[0], total[1], 0, 1, frags[0], frags[1], 63, protocol,
    ];
    ip.extend_from_slice(&[0, 0, 198, 18, 0, 1, 198, 18, 0, 2]);
    ip.extend_from_slice(options);
    ip
}

/// fd00::1 -> fd00::2, traffic class 0x2e, hop limit 9.
fn ipv6(next_header: u8, payload_len: u16) -> Vec<u8> {
    let len = payload_len.to_be_bytes();
    let mut ip = vec![0x62, 0xe0, 0, 0, len[0], len[1], next_header, 9];
    for last in [1, 2] {
        ip.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last]);
    }
    ip
}

/// Ports 40000 -> 80, then a TCP header with `flags`.
fn tcp(flags: u8) -> Vec<u8> {
    let mut tcp = vec![0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags];
    tcp.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    tcp
}

/// Ports 5353 -> 53.
const UDP: [u8; 8] = [0x14, 0xe9, 0x00, 0x35, 0, 8, 0, 0];

fn frame(parts: &[&[u8]]) -> Bytes<256> {
    Bytes::new(&parts.concat())
}

fn parsed_l3(frame: &Bytes<256>) -> L3 {
    match l3(frame) {
        L3Verdict::Packet(l3) => l3,
        _ => panic!("not parsed"),
    }
}

fn parsed_l4(frame: &Bytes<256>) -> L4 {
    match l4(frame, &parsed_l3(frame)) {
        L4Verdict::Packet(l4) => l4,
        _ => panic!("no ports"),
    }
}

#[test]
fn ipv4_tcp_syn() {
    let frame = frame(&[
        &MACS,
        &IPV4,
        &ipv4(proto::TCP, [0x40, 0], &[], 20),
        &tcp(0x02),
    ]);
    let l3 = parsed_l3(&frame);
    assert!(matches!(l3.family, Family::V4));
    assert_eq!(l3.src, Addr::from_v4_octets([198, 18, 0, 1]));
    assert_eq!(l3.dst, Addr::from_v4_octets([198, 18, 0, 2]));
    assert_eq!(
        (l3.protocol, l3.l3_offset, l3.l4_offset),
        (proto::TCP, 14, 34)
    );
    assert_eq!((l3.ip_len, l3.tos, l3.ttl), (40, 0xb8, 63));
    assert!(l3.dont_fragment && !l3.is_fragment && !l3.has_ipv4_options);
    let l4 = parsed_l4(&frame);
    assert_eq!(l4.src_port, 40000u16.to_be());
    assert_eq!(l4.dst_port, 80u16.to_be());
    assert!(l4.is_tcp_syn);
    assert_eq!(l4.tcp_flags, 0x02);
}

#[test]
fn syn_ack_is_not_a_new_connection() {
    let frame = frame(&[&MACS, &IPV4, &ipv4(proto::TCP, [0, 0], &[], 20), &tcp(0x12)]);
    let l4 = parsed_l4(&frame);
    assert!(!l4.is_tcp_syn);
    assert_eq!(l4.tcp_flags, 0x12);
    assert!(!parsed_l3(&frame).dont_fragment);
}

#[test]
fn vlan_tag_and_ipv4_options_move_the_offsets() {
    let options = [1, 1, 1, 0];
    let ip = ipv4(proto::UDP, [0, 0], &options, 8);
    let frame = frame(&[&MACS, &VLAN, &IPV4, &ip, &UDP]);
    let l3 = parsed_l3(&frame);
    assert_eq!((l3.l3_offset, l3.l4_offset), (18, 42));
    assert!(l3.has_ipv4_options);
    let l4 = parsed_l4(&frame);
    assert_eq!((l4.src_port, l4.dst_port), (5353u16.to_be(), 53u16.to_be()));
    assert!(!l4.is_tcp_syn);
}

#[test]
fn ipv6_udp() {
    let frame = frame(&[&MACS, &IPV6, &ipv6(proto::UDP, 8), &UDP]);
    let l3 = parsed_l3(&frame);
    assert!(matches!(l3.family, Family::V6));
    let mut dst = [0u8; 16];
    dst[0] = 0xfd;
    dst[15] = 2;
    assert_eq!(l3.dst, Addr::from_v6_octets(dst));
    assert_eq!((l3.l4_offset, l3.ip_len, l3.tos, l3.ttl), (54, 48, 0x2e, 9));
    assert!(l3.dont_fragment && !l3.is_fragment);
    assert_eq!(parsed_l4(&frame).dst_port, 53u16.to_be());
}

#[test]
fn fragments_have_no_ports() {
    for frags in [[0x20, 0], [0, 0x10]] {
        let frame = frame(&[&MACS, &IPV4, &ipv4(proto::UDP, frags, &[], 8), &UDP]);
        assert!(parsed_l3(&frame).is_fragment);
        assert!(matches!(
            l4(&frame, &parsed_l3(&frame)),
            L4Verdict::Fragment
        ));
    }
    let frame = frame(&[
        &MACS,
        &IPV6,
        &ipv6(44, 16),
        &[17, 0, 0, 1, 0, 0, 0, 1],
        &UDP,
    ]);
    assert!(matches!(
        l4(&frame, &parsed_l3(&frame)),
        L4Verdict::Fragment
    ));
}

#[test]
fn ipv6_extension_headers_and_other_protocols() {
    for (next_header, expected_extension) in [(0, true), (60, true), (50, false), (58, false)] {
        let frame = frame(&[&MACS, &IPV6, &ipv6(next_header, 8), &UDP]);
        let verdict = l4(&frame, &parsed_l3(&frame));
        if expected_extension {
            assert!(
                matches!(verdict, L4Verdict::ExtensionHeader),
                "{next_header}"
            );
        } else {
            assert!(matches!(verdict, L4Verdict::OtherProtocol), "{next_header}");
        }
    }
    // Protocol 0 is no extension header in IPv4.
    let frame = frame(&[&MACS, &IPV4, &ipv4(0, [0, 0], &[], 8), &UDP]);
    assert!(matches!(
        l4(&frame, &parsed_l3(&frame)),
        L4Verdict::OtherProtocol
    ));
}

#[test]
fn short_frames_are_truncated_and_others_not_ip() {
    let ip = ipv4(proto::TCP, [0, 0], &[], 20);
    assert!(matches!(
        l3(&frame(&[&MACS, &IPV4, &ip[..19]])),
        L3Verdict::Truncated
    ));
    assert!(matches!(l3(&frame(&[&MACS[..10]])), L3Verdict::Truncated));
    let arp = [0x08, 0x06];
    assert!(matches!(
        l3(&frame(&[&MACS, &arp, &[0; 28]])),
        L3Verdict::NotIp
    ));
    // An IHL below five words.
    let mut short_ihl = ip.clone();
    short_ihl[0] = 0x44;
    assert!(matches!(
        l3(&frame(&[&MACS, &IPV4, &short_ihl])),
        L3Verdict::Truncated
    ));
    let cut_tcp = frame(&[&MACS, &IPV4, &ip, &tcp(0x02)[..19]]);
    assert!(matches!(
        l4(&cut_tcp, &parsed_l3(&cut_tcp)),
        L4Verdict::Truncated
    ));
    let cut_udp = frame(&[&MACS, &IPV6, &ipv6(proto::UDP, 8), &UDP[..7]]);
    assert!(matches!(
        l4(&cut_udp, &parsed_l3(&cut_udp)),
        L4Verdict::Truncated
    ));
}
