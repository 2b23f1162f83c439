//! What passes unchanged: tunnels to other hosts, ordinary traffic, outer
//! fragments, truncated and malformed tunnels; and Ethernet padding behind
//! a short inner packet.

use std::net::IpAddr;

use etherparse::{IpNumber, Ipv4Header, PacketBuilder};
use lb_tests::frames::{REAL_MAC, ROUTER_MAC, ip, padded_to_ethernet_minimum, truncated};

use super::{
    CLIENT4, LB4, LB6, NOT_OURS4, NOT_OURS6, REAL4, REAL6, VIP4,
    frames::v4,
    frames::{Inner, Tunnel, decapsulated_frame},
    runner::{Case, load},
};

#[test]
fn tunnels_to_other_hosts_and_ordinary_traffic_pass_unchanged() {
    let Some(mut real) = load() else { return };
    let plain = |src: &str, dst: &str| {
        let mut out = Vec::new();
        let builder = PacketBuilder::ethernet2(ROUTER_MAC, REAL_MAC);
        match (ip(src), ip(dst)) {
            (IpAddr::V4(s), IpAddr::V4(d)) => builder
                .ipv4(s.octets(), d.octets(), 64)
                .udp(5353, 53)
                .write(&mut out, b"plain"),
            (IpAddr::V6(s), IpAddr::V6(d)) => builder
                .ipv6(s.octets(), d.octets(), 64)
                .udp(5353, 53)
                .write(&mut out, b"plain"),
            _ => unreachable!(),
        }
        .unwrap();
        out
    };
    let gre = Tunnel::to_real(false, Inner::udp4()).protocol(IpNumber::GRE);
    let mut arp = Vec::new();
    PacketBuilder::ethernet2(ROUTER_MAC, [0xff; 6])
        .arp(
            etherparse::ArpEthIpv4Packet {
                operation: etherparse::ArpOperation::REQUEST,
                sender_mac: ROUTER_MAC,
                sender_ipv4: v4(LB4),
                target_mac: [0; 6],
                target_ipv4: v4(REAL4),
            }
            .into(),
        )
        .write(&mut arp)
        .unwrap();
    real.expect_all(&[
        Case::untouched(
            "IPv4 in IPv4 to another host",
            Tunnel::new(LB4, NOT_OURS4, Inner::udp4()).bytes(),
        ),
        Case::untouched(
            "IPv6 in IPv6 to another host",
            Tunnel::new(LB6, NOT_OURS6, Inner::udp6()).bytes(),
        ),
        Case::untouched(
            "IPv6 in IPv4 to a VIP (VIPs are not tunnel endpoints)",
            Tunnel::new(LB4, VIP4, Inner::udp6()).bytes(),
        ),
        Case::untouched(
            "an IPv6 outer header to the IPv4-mapped form of our address",
            Tunnel::new(LB6, "::ffff:198.18.0.11", Inner::udp4()).bytes(),
        ),
        Case::untouched("UDP to our IPv4 address", plain(LB4, REAL4)),
        Case::untouched("UDP to our IPv6 address", plain(LB6, REAL6)),
        Case::untouched("GRE to our address", gre.bytes()),
        Case::untouched("ARP who-has our address", arp),
    ]);
}

#[test]
fn outer_fragments_pass_unchanged() {
    let Some(mut real) = load() else { return };
    real.expect_all(&[
        Case::untouched(
            "IPv4 outer, first fragment (MF)",
            Tunnel::to_real(false, Inner::udp4())
                .fragment(0, true)
                .bytes(),
        ),
        Case::untouched(
            "IPv4 outer, last fragment (offset)",
            Tunnel::to_real(false, Inner::udp4())
                .fragment(185, false)
                .bytes(),
        ),
        Case::untouched(
            "IPv6 outer with a Fragment header",
            Tunnel::to_real(true, Inner::udp4())
                .fragment(0, true)
                .bytes(),
        ),
    ]);
}

#[test]
fn truncated_and_malformed_tunnels_pass_unchanged() {
    let Some(mut real) = load() else { return };
    let v4_in_v4 = Tunnel::to_real(false, Inner::udp4()).bytes();
    let v6_in_v6 = Tunnel::to_real(true, Inner::udp6()).bytes();
    let tagged = Tunnel::to_real(false, Inner::udp4()).vlan(42).bytes();
    let with_options = Tunnel::to_real(false, Inner::udp4())
        .ipv4_options(&[1u8; 40])
        .bytes();
    // An inner header that says IPv6 where the outer announced IPv4.
    let wrong_version = Tunnel::to_real(false, Inner::udp6())
        .protocol(IpNumber::IPV4)
        .bytes();
    // The outer total length covers only 10 bytes of inner header; the rest
    // of the frame is Ethernet padding that happens to look like one.
    let mut short_total_len = Tunnel::to_real(false, Inner::udp4()).bytes();
    short_total_len[16..18].copy_from_slice(&30u16.to_be_bytes());
    let short_total_len = fix_ipv4_checksum(short_total_len, 14);
    // An IPv6 payload length shorter than an inner IPv6 header.
    let mut short_payload_len = Tunnel::to_real(true, Inner::udp6()).bytes();
    short_payload_len[18..20].copy_from_slice(&39u16.to_be_bytes());
    // An outer IHL below 5.
    let mut bad_ihl = Tunnel::to_real(false, Inner::udp4()).bytes();
    bad_ihl[14] = 0x44;

    real.expect_all(&[
        Case::untouched("Ethernet only", truncated(v4_in_v4.clone(), 14)),
        Case::untouched("VLAN tag cut short", truncated(tagged.clone(), 16)),
        Case::untouched(
            "outer IPv4 header cut short",
            truncated(v4_in_v4.clone(), 14 + 19),
        ),
        Case::untouched(
            "outer IPv4 options cut short",
            truncated(with_options, 14 + 50),
        ),
        Case::untouched(
            "outer IPv6 header cut short",
            truncated(v6_in_v6.clone(), 14 + 39),
        ),
        Case::untouched(
            "inner IPv4 header cut short",
            truncated(v4_in_v4, 14 + 20 + 19),
        ),
        Case::untouched(
            "inner IPv6 header cut short",
            truncated(v6_in_v6, 14 + 40 + 39),
        ),
        Case::untouched(
            "inner IPv4 header cut short behind a VLAN tag",
            truncated(tagged, 18 + 20 + 10),
        ),
        Case::untouched(
            "inner version differs from the outer protocol",
            wrong_version,
        ),
        Case::untouched(
            "outer total length shorter than the inner header",
            short_total_len,
        ),
        Case::untouched(
            "IPv6 payload length shorter than the inner header",
            short_payload_len,
        ),
        Case::untouched("outer IHL 4", bad_ihl),
    ]);
}

/// Recomputes the IPv4 header checksum of the header at `offset`, after a
/// test edited a field (so only the field under test is wrong).
fn fix_ipv4_checksum(mut frame: Vec<u8>, offset: usize) -> Vec<u8> {
    let (header, _) = Ipv4Header::from_slice(&frame[offset..]).expect("an IPv4 header");
    let checksum = header.calc_header_checksum();
    frame[offset + 10..offset + 12].copy_from_slice(&checksum.to_be_bytes());
    frame
}

#[test]
fn ethernet_padding_stays_behind_a_short_inner_packet() {
    let Some(mut real) = load() else { return };
    // IPv4 in IPv4 with an empty inner packet: 54 bytes, padded to 60 by
    // the NIC. The padding follows the inner packet, whose total length
    // tells the stack where it ends.
    let mut inner = Vec::new();
    PacketBuilder::ipv4(v4(CLIENT4), v4(VIP4), 64)
        .write(&mut inner, IpNumber::IPV6_NO_NEXT_HEADER, &[])
        .unwrap();
    let inner = Inner {
        bytes: inner,
        family: IpNumber::IPV4,
    };
    let tunnel = Tunnel::to_real(false, inner.clone());
    let mut expected = decapsulated_frame(None, &inner);
    expected.resize(60 - 20, 0);
    real.expect_all(&[Case {
        name: "padded IPv4 in IPv4".into(),
        frame: padded_to_ethernet_minimum(tunnel.bytes()),
        output: Some(expected),
        decapsulated: true,
    }]);
}
