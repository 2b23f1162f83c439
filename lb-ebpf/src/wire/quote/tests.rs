//! Errors built byte by byte, then located.

use lb_common::Family;

use super::locate;
use crate::wire::frame::test_frame::Bytes;

/// Ethernet, an outer IP header of `family` (its fields do not matter
/// here), an ICMP error header, then `quoted`.
fn error(family: Family, quoted: &[u8]) -> (Bytes<256>, usize, usize) {
    let outer_len = match family {
        Family::V4 => 20,
        Family::V6 => 40,
    };
    let mut bytes = vec![0u8; 14 + outer_len];
    bytes.extend_from_slice(&[3, 3, 0, 0, 0, 0, 0, 0]);
    bytes.extend_from_slice(quoted);
    let end = bytes.len();
    (Bytes::new(&bytes), 14 + outer_len, end)
}

fn ipv4(protocol: u8, frags: [u8; 2]) -> Vec<u8> {
    let mut ip = vec![0x45, 0, 0, 48, 0, 0, frags[0], frags[1], 64, protocol, 0, 0];
    ip.extend_from_slice(&[198, 18, 0, 10, 198, 18, 0, 1]);
    ip
}

fn ipv6(version_nibble: u8, next_header: u8) -> Vec<u8> {
    let mut ip = vec![version_nibble << 4, 0, 0, 0, 0, 8, next_header, 64];
    ip.extend_from_slice(&[0xfd; 32]);
    ip
}

const UDP: [u8; 8] = [0x00, 0x50, 0x9c, 0x40, 0, 8, 0, 0];

#[test]
fn a_udp_quote_is_found_after_the_icmp_header() {
    let (frame, icmp, end) = error(Family::V4, &[ipv4(17, [0x40, 0]), UDP.to_vec()].concat());
    let quote = locate::<8>(&frame, Family::V4, icmp, end).unwrap();
    assert_eq!(quote.ip_offset, icmp + 8);
    assert_eq!(quote.l4_offset, icmp + 28);
    assert_eq!(quote.protocol, 17);
    assert_eq!(&frame.as_slice()[quote.l4_offset..][..2], &[0x00, 0x50]);
}

#[test]
fn ipv4_options_move_the_transport_header() {
    let mut ip = ipv4(6, [0, 0]);
    ip[0] = 0x46;
    ip.extend_from_slice(&[1, 1, 1, 0]);
    let (frame, icmp, end) = error(Family::V4, &[ip, UDP.to_vec()].concat());
    let quote = locate::<4>(&frame, Family::V4, icmp, end).unwrap();
    assert_eq!(quote.l4_offset, icmp + 8 + 24);
    assert_eq!(quote.protocol, 6);
}

#[test]
fn later_fragments_and_other_protocols_are_not_quotes_of_a_flow() {
    for (protocol, frags) in [(17, [0, 1]), (17, [0x20, 0xff]), (1, [0, 0]), (58, [0, 0])] {
        let quoted = [ipv4(protocol, frags), UDP.to_vec()].concat();
        let (frame, icmp, end) = error(Family::V4, &quoted);
        assert!(
            locate::<4>(&frame, Family::V4, icmp, end).is_none(),
            "{protocol} {frags:?}"
        );
    }
    // More fragments, offset 0: the first fragment, which has the ports.
    let (frame, icmp, end) = error(Family::V4, &[ipv4(17, [0x20, 0]), UDP.to_vec()].concat());
    assert!(locate::<4>(&frame, Family::V4, icmp, end).is_some());
}

#[test]
fn the_transport_bytes_must_be_inside_the_message() {
    let (frame, icmp, end) = error(Family::V4, &[ipv4(17, [0, 0]), UDP[..6].to_vec()].concat());
    assert!(locate::<4>(&frame, Family::V4, icmp, end).is_some());
    assert!(locate::<8>(&frame, Family::V4, icmp, end).is_none());
    // Padding behind the message is not part of the quote.
    let (padded, icmp, end) = error(Family::V4, &[ipv4(17, [0, 0]), vec![0; 8]].concat());
    assert!(locate::<8>(&padded, Family::V4, icmp, end - 2).is_none());
}

#[test]
fn ipv6_quotes_need_version_six_and_tcp_or_udp() {
    let (frame, icmp, end) = error(Family::V6, &[ipv6(6, 6), UDP.to_vec()].concat());
    let quote = locate::<8>(&frame, Family::V6, icmp, end).unwrap();
    assert_eq!((quote.l4_offset, quote.protocol), (icmp + 48, 6));
    let (frame, icmp, end) = error(Family::V6, &[ipv6(4, 17), UDP.to_vec()].concat());
    assert!(locate::<8>(&frame, Family::V6, icmp, end).is_none());
    let (frame, icmp, end) = error(Family::V6, &[ipv6(6, 0), UDP.to_vec()].concat());
    assert!(locate::<8>(&frame, Family::V6, icmp, end).is_none());
}
