//! The ICMP fixtures' frames, built with etherparse: IP packets of every
//! kind the cases quote, the Ethernet around them, and what DR and TUN make
//! of a frame.

use std::net::IpAddr;

use etherparse::{
    Icmpv4Type, Icmpv6Type, IpHeaders, IpNumber, Ipv4Header, Ipv6Header, PacketBuilder, icmpv4,
    icmpv6,
};
use lb_common::{Addr, Family, FlowKey, Real};
use lb_tests::frames::{LB_MAC, ROUTER_MAC, ip, sa};

use crate::harness::Case;

/// An Ethernet frame (with an 802.1Q tag if `vlan`) around an IP packet.
pub(super) fn frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    vlan: Option<u16>,
    packet: &[u8],
) -> Vec<u8> {
    let ether_type: u16 = match packet[0] >> 4 {
        4 => 0x0800,
        6 => 0x86dd,
        version => panic!("IP version {version}"),
    };
    let mut out = [dst_mac, src_mac].concat();
    if let Some(id) = vlan {
        out.extend_from_slice(&[0x81, 0x00]);
        out.extend_from_slice(&id.to_be_bytes());
    }
    out.extend_from_slice(&ether_type.to_be_bytes());
    out.extend_from_slice(packet);
    out
}

/// From the router in front of the balancer to the balancer.
pub(super) fn inbound(packet: &[u8]) -> Vec<u8> {
    frame(LB_MAC, ROUTER_MAC, None, packet)
}

/// IP headers for the builder: protocol, lengths and checksums are filled
/// in from what follows. IPv4 with DF and an identification that a
/// rewrite must keep.
pub(super) fn ip_headers(src: IpAddr, dst: IpAddr, ttl: u8) -> IpHeaders {
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let mut header = Ipv4Header::new(0, ttl, IpNumber::TCP, src.octets(), dst.octets())
                .expect("IPv4 header");
            header.identification = 0x4242;
            header.dont_fragment = true;
            IpHeaders::Ipv4(header, Default::default())
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => IpHeaders::Ipv6(
            Ipv6Header {
                hop_limit: ttl,
                source: src.octets(),
                destination: dst.octets(),
                ..Default::default()
            },
            Default::default(),
        ),
        _ => panic!("mixed address families"),
    }
}

/// Recognisable payload bytes: a misplaced quote shows.
pub(super) fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

/// A TCP packet (ACK) with `len` bytes of payload.
pub(super) fn tcp(src: &str, dst: &str, ttl: u8, len: usize) -> Vec<u8> {
    let (src, dst) = (sa(src), sa(dst));
    let mut out = Vec::new();
    PacketBuilder::ip(ip_headers(src.ip(), dst.ip(), ttl))
        .tcp(src.port(), dst.port(), 1_000, 64_240)
        .ack(2_000)
        .write(&mut out, &payload(len))
        .expect("TCP packet");
    out
}

pub(super) fn udp(src: &str, dst: &str, ttl: u8, len: usize) -> Vec<u8> {
    let (src, dst) = (sa(src), sa(dst));
    let mut out = Vec::new();
    PacketBuilder::ip(ip_headers(src.ip(), dst.ip(), ttl))
        .udp(src.port(), dst.port())
        .write(&mut out, &payload(len))
        .expect("UDP packet");
    out
}

/// An ICMP error (or any ICMP message) from `src` to `dst` carrying `body`.
pub(super) fn icmp4(src: &str, dst: &str, ttl: u8, kind: Icmpv4Type, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ip(ip_headers(ip(src), ip(dst), ttl))
        .icmpv4(kind)
        .write(&mut out, body)
        .expect("ICMP packet");
    out
}

pub(super) fn icmp6(src: &str, dst: &str, ttl: u8, kind: Icmpv6Type, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ip(ip_headers(ip(src), ip(dst), ttl))
        .icmpv6(kind)
        .write(&mut out, body)
        .expect("ICMPv6 packet");
    out
}

pub(super) fn frag_needed(next_hop_mtu: u16) -> Icmpv4Type {
    Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::FragmentationNeeded {
        next_hop_mtu,
    })
}

pub(super) fn port_unreachable4() -> Icmpv4Type {
    Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::Port)
}

pub(super) fn ttl_exceeded4() -> Icmpv4Type {
    Icmpv4Type::TimeExceeded(icmpv4::TimeExceededCode::TtlExceededInTransit)
}

pub(super) fn packet_too_big(mtu: u32) -> Icmpv6Type {
    Icmpv6Type::PacketTooBig { mtu }
}

pub(super) fn port_unreachable6() -> Icmpv6Type {
    Icmpv6Type::DestinationUnreachable(icmpv6::DestUnreachableCode::Port)
}

pub(super) fn hop_limit_exceeded6() -> Icmpv6Type {
    Icmpv6Type::TimeExceeded(icmpv6::TimeExceededCode::HopLimitExceeded)
}

/// `frame` with the Ethernet addresses a DR forward gives it.
pub(super) fn to_real_mac(frame: &[u8], real: &Real) -> Vec<u8> {
    let mut out = frame.to_vec();
    out[..6].copy_from_slice(&real.dst_mac);
    out[6..12].copy_from_slice(&real.src_mac);
    out
}

/// The same case with an 802.1Q tag (VLAN `id`) in every frame: the tag
/// moves the IP header, and every offset after it, by four bytes.
pub(super) fn tagged(case: Case, id: u16) -> Case {
    let tag = |frame: &[u8]| {
        let mut out = frame.to_vec();
        out.splice(12..12, [[0x81, 0x00], id.to_be_bytes()].concat());
        out
    };
    Case {
        name: format!("{}, 802.1Q-tagged", case.name),
        frame: tag(&case.frame),
        output: case.output.as_deref().map(tag),
        ..case
    }
}

/// An IPv4 packet with `options` in its header: every offset after the
/// header moves.
pub(super) fn with_ipv4_options(packet: &[u8], options: &[u8]) -> Vec<u8> {
    let (mut header, rest) = Ipv4Header::from_slice(packet).expect("IPv4 packet");
    header.options = options.try_into().expect("IPv4 options");
    header.total_len += options.len() as u16;
    header.header_checksum = header.calc_header_checksum();
    [header.to_bytes().as_slice(), rest].concat()
}

/// An IP packet in a frame towards `real`'s next hop.
pub(super) fn frame_to(real: &Real, packet: &[u8]) -> Vec<u8> {
    frame(real.dst_mac, real.src_mac, None, packet)
}

/// The forward flow of a client -> VIP packet, as `LB_FLOWS` keys it.
pub(super) fn flow_key(protocol: u8, client: &str, vip: &str) -> FlowKey {
    let (client, vip) = (sa(client), sa(vip));
    FlowKey {
        src: Addr::from(client.ip()),
        dst: Addr::from(vip.ip()),
        src_port: client.port().to_be(),
        dst_port: vip.port().to_be(),
        protocol,
        family: Family::of(&client.ip()) as u8,
        _pad: [0; 2],
    }
}

/// The first `len` bytes of `packet` (all of it if shorter): what an error
/// quotes.
pub(super) fn cut(packet: &[u8], len: usize) -> &[u8] {
    &packet[..len.min(packet.len())]
}
