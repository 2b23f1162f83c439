//! ICMP and ICMPv6 through the compiled program (`BPF_PROG_TEST_RUN`):
//! "fragmentation needed" / "packet too big" for packets a tunnel cannot
//! carry, echo replies from the VIPs, and errors quoting a VIP flow sent on
//! to its real (DR, TUN) or translated for it (NAT).
//!
//! Every expected frame is built from scratch with `etherparse` (so its
//! checksums are etherparse's, not the data plane's), and the checksums of
//! what the program sent are verified with `etherparse` on top of the exact
//! byte comparison, so a mismatch says which checksum is off.
//!
//! Needs root (CAP_BPF, CAP_NET_ADMIN), like the other fixtures.

use std::net::IpAddr;

use crate::harness::{Case, Lb, MaglevRow, real, xdp};
use etherparse::{
    Icmpv4Type, Icmpv6Type, IpHeaders, IpNumber, Ipv4Header, Ipv4HeaderSlice, Ipv6FlowLabel,
    Ipv6Header, NetSlice, PacketBuilder, SlicedPacket, TransportSlice, icmpv4, icmpv6,
};
use lb_common::{
    Addr, Family, FlowKey, ForwardingMethod, GlobalCounter, GlobalCounter::*, Real,
    SETTINGS_NO_ECHO_REPLY, Settings, VipInfo, VipKey, flow_hash::flow_hash, proto,
};
use lb_tests::frames::{LB_MAC, Packet, ROUTER_MAC, ip, sa};
use lb_userspace::dataplane::{Dataplane, Geometry};

/// VIPs live in 198.18.0.0/15 (benchmarking range) and fd00::/8 (ULA).
const VIP4: &str = "198.18.0.10";
const VIP6: &str = "fd00::10";
const WEB4: &str = "198.18.0.10:80";
const WEB6: &str = "[fd00::10]:80";
const DNS4: &str = "198.18.0.10:53";
const DNS6: &str = "[fd00::10]:53";
const CLIENT4: &str = "198.19.7.7:40000";
const CLIENT6: &str = "[fd00:c::7]:40000";
/// A router between the reals and the clients: the sender of most errors.
const ROUTER4: &str = "198.19.0.1";
const ROUTER6: &str = "fd00:99::1";
const REAL4: &str = "198.18.1.1";
const REAL6: &str = "fd00:1::1";
const TUNNEL_SRC4: &str = "198.18.0.1";
const TUNNEL_SRC6: &str = "fd00::1";

/// Quote lengths of the "too big" answers: as much of the packet as fits
/// in 576 bytes for IPv4 (RFC 1812 4.3.2.3) and in the 1280-byte IPv6
/// minimum MTU (RFC 4443 2.4(c)), after the IP and ICMP headers.
const QUOTE_V4: usize = 576 - 20 - 8;
const QUOTE_V6: usize = 1280 - 40 - 8;

/// TTL / hop limit of packets the data plane originates.
const ANSWER_TTL: u8 = 64;

// ---------------------------------------------------------------------------
// Frames, built with etherparse
// ---------------------------------------------------------------------------

/// An Ethernet frame (with an 802.1Q tag if `vlan`) around an IP packet.
fn frame(dst_mac: [u8; 6], src_mac: [u8; 6], vlan: Option<u16>, packet: &[u8]) -> Vec<u8> {
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
fn inbound(packet: &[u8]) -> Vec<u8> {
    frame(LB_MAC, ROUTER_MAC, None, packet)
}

/// IP headers for the builder: protocol, lengths and checksums are filled
/// in from what follows. IPv4 with DF and an identification that a
/// rewrite must keep.
fn ip_headers(src: IpAddr, dst: IpAddr, ttl: u8) -> IpHeaders {
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
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

/// A TCP packet (ACK) with `len` bytes of payload.
fn tcp(src: &str, dst: &str, ttl: u8, len: usize) -> Vec<u8> {
    let (src, dst) = (sa(src), sa(dst));
    let mut out = Vec::new();
    PacketBuilder::ip(ip_headers(src.ip(), dst.ip(), ttl))
        .tcp(src.port(), dst.port(), 1_000, 64_240)
        .ack(2_000)
        .write(&mut out, &payload(len))
        .expect("TCP packet");
    out
}

fn udp(src: &str, dst: &str, ttl: u8, len: usize) -> Vec<u8> {
    let (src, dst) = (sa(src), sa(dst));
    let mut out = Vec::new();
    PacketBuilder::ip(ip_headers(src.ip(), dst.ip(), ttl))
        .udp(src.port(), dst.port())
        .write(&mut out, &payload(len))
        .expect("UDP packet");
    out
}

/// An ICMP error (or any ICMP message) from `src` to `dst` carrying `body`.
fn icmp4(src: &str, dst: &str, ttl: u8, kind: Icmpv4Type, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ip(ip_headers(ip(src), ip(dst), ttl))
        .icmpv4(kind)
        .write(&mut out, body)
        .expect("ICMP packet");
    out
}

fn icmp6(src: &str, dst: &str, ttl: u8, kind: Icmpv6Type, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ip(ip_headers(ip(src), ip(dst), ttl))
        .icmpv6(kind)
        .write(&mut out, body)
        .expect("ICMPv6 packet");
    out
}

fn frag_needed(next_hop_mtu: u16) -> Icmpv4Type {
    Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::FragmentationNeeded {
        next_hop_mtu,
    })
}

fn port_unreachable4() -> Icmpv4Type {
    Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::Port)
}

fn ttl_exceeded4() -> Icmpv4Type {
    Icmpv4Type::TimeExceeded(icmpv4::TimeExceededCode::TtlExceededInTransit)
}

fn packet_too_big(mtu: u32) -> Icmpv6Type {
    Icmpv6Type::PacketTooBig { mtu }
}

fn port_unreachable6() -> Icmpv6Type {
    Icmpv6Type::DestinationUnreachable(icmpv6::DestUnreachableCode::Port)
}

fn hop_limit_exceeded6() -> Icmpv6Type {
    Icmpv6Type::TimeExceeded(icmpv6::TimeExceededCode::HopLimitExceeded)
}

/// The IP packet of an untagged frame.
fn l3(frame: &[u8]) -> &[u8] {
    &frame[14..]
}

/// `frame` with the Ethernet addresses a DR forward gives it.
fn to_real_mac(frame: &[u8], real: &Real) -> Vec<u8> {
    let mut out = frame.to_vec();
    out[..6].copy_from_slice(&real.dst_mac);
    out[6..12].copy_from_slice(&real.src_mac);
    out
}

/// The same case with an 802.1Q tag (VLAN `id`) in every frame: the tag
/// moves the IP header, and every offset after it, by four bytes.
fn tagged(case: Case, id: u16) -> Case {
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
fn with_ipv4_options(packet: &[u8], options: &[u8]) -> Vec<u8> {
    let (mut header, rest) = Ipv4Header::from_slice(packet).expect("IPv4 packet");
    header.options = options.try_into().expect("IPv4 options");
    header.total_len += options.len() as u16;
    header.header_checksum = header.calc_header_checksum();
    [header.to_bytes().as_slice(), rest].concat()
}

/// What TUN makes of an untagged `frame`: the IP packet inside an outer
/// header from the tunnel source to the real, with the inner packet's
/// DSCP/ECN, TTL and DF, and (IPv6) the flow's hash as the flow label.
fn encapsulated(frame: &[u8], real: &Real, flow: &FlowKey) -> Vec<u8> {
    let inner = l3(frame);
    let (inner_proto, tos, ttl, dont_fragment) = match inner[0] >> 4 {
        4 => {
            let (h, _) = Ipv4Header::from_slice(inner).expect("inner IPv4");
            let tos = (h.dscp.value() << 2) | h.ecn.value();
            (IpNumber::IPV4, tos, h.time_to_live, h.dont_fragment)
        }
        _ => {
            let (h, _) = Ipv6Header::from_slice(inner).expect("inner IPv6");
            (IpNumber::IPV6, h.traffic_class, h.hop_limit, true)
        }
    };
    let (src, dst) = (real.tunnel_src.octets(), real.addr.octets());
    let mut outer = Vec::new();
    if real.family == Family::V4 as u8 {
        let mut h = Ipv4Header::new(
            inner.len() as u16,
            ttl,
            inner_proto,
            src[..4].try_into().unwrap(),
            dst[..4].try_into().unwrap(),
        )
        .expect("outer IPv4");
        h.dont_fragment = dont_fragment;
        h.dscp = (tos >> 2).try_into().unwrap();
        h.ecn = (tos & 3).try_into().unwrap();
        h.header_checksum = h.calc_header_checksum();
        h.write(&mut outer).unwrap();
    } else {
        let h = Ipv6Header {
            traffic_class: tos,
            flow_label: Ipv6FlowLabel::try_new(flow_hash(flow) & 0xf_ffff).unwrap(),
            payload_length: inner.len() as u16,
            next_header: inner_proto,
            hop_limit: ttl,
            source: src,
            destination: dst,
        };
        h.write(&mut outer).unwrap();
    }
    outer.extend_from_slice(inner);
    frame_to(real, &outer)
}

/// An IP packet in a frame towards `real`'s next hop.
fn frame_to(real: &Real, packet: &[u8]) -> Vec<u8> {
    frame(real.dst_mac, real.src_mac, None, packet)
}

/// The forward flow of a client -> VIP packet, as `LB_FLOWS` keys it.
fn flow_key(protocol: u8, client: &str, vip: &str) -> FlowKey {
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

// ---------------------------------------------------------------------------
// Independent checksum checks
// ---------------------------------------------------------------------------

/// Verifies, with etherparse, every checksum of an ICMP frame that can be
/// verified: the IPv4 header, the ICMP message (ICMPv6 with its
/// pseudo-header), the quoted IPv4 header, and the quoted TCP/UDP checksum
/// when the quote holds the whole segment.
fn checksum_errors(name: &str, frame: &[u8]) -> Vec<String> {
    let mut errors = Vec::new();
    let packet = match SlicedPacket::from_ethernet(frame) {
        Ok(packet) => packet,
        Err(error) => return vec![format!("{name}: etherparse cannot read the frame: {error}")],
    };
    let quote = match (&packet.net, &packet.transport) {
        (Some(NetSlice::Ipv4(ipv4)), Some(TransportSlice::Icmpv4(icmp))) => {
            let header = ipv4.header().to_header();
            if header.calc_header_checksum() != header.header_checksum {
                errors.push(format!("{name}: bad IPv4 header checksum"));
            }
            if icmp.icmp_type().calc_checksum(icmp.payload()) != icmp.checksum() {
                errors.push(format!("{name}: bad ICMP checksum"));
            }
            icmp.payload()
        }
        (Some(NetSlice::Ipv6(ipv6)), Some(TransportSlice::Icmpv6(icmp))) => {
            let header = ipv6.header();
            if !icmp.is_checksum_valid(header.source(), header.destination()) {
                errors.push(format!("{name}: bad ICMPv6 checksum"));
            }
            icmp.payload()
        }
        _ => return vec![format!("{name}: not an ICMP or ICMPv6 packet")],
    };
    if quote.first().is_some_and(|b| b >> 4 == 4) {
        match Ipv4HeaderSlice::from_slice(quote) {
            Ok(quoted) => {
                let quoted = quoted.to_header();
                if quoted.calc_header_checksum() != quoted.header_checksum {
                    errors.push(format!("{name}: bad quoted IPv4 header checksum"));
                }
            }
            Err(error) => errors.push(format!("{name}: quoted IPv4 header: {error}")),
        }
    }
    if let Some(error) = quoted_segment_checksum_error(quote) {
        errors.push(format!("{name}: {error}"));
    }
    errors
}

/// The quoted segment's own checksum, when the quote is the whole packet
/// (a cut quote cannot be verified by anyone).
fn quoted_segment_checksum_error(quote: &[u8]) -> Option<String> {
    let quoted = SlicedPacket::from_ip(quote).ok()?;
    let (src, dst): (Vec<u8>, Vec<u8>) = match &quoted.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            if usize::from(h.total_len()) != quote.len() {
                return None;
            }
            (h.source().to_vec(), h.destination().to_vec())
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            if usize::from(h.payload_length()) + 40 != quote.len() {
                return None;
            }
            (h.source().to_vec(), h.destination().to_vec())
        }
        _ => return None,
    };
    let v4 = |a: &[u8]| -> [u8; 4] { a.try_into().unwrap() };
    let v6 = |a: &[u8]| -> [u8; 16] { a.try_into().unwrap() };
    let (expected, got) = match &quoted.transport {
        Some(TransportSlice::Tcp(tcp)) if src.len() == 4 => (
            tcp.calc_checksum_ipv4(v4(&src), v4(&dst)).ok()?,
            tcp.checksum(),
        ),
        Some(TransportSlice::Tcp(tcp)) => (
            tcp.calc_checksum_ipv6(v6(&src), v6(&dst)).ok()?,
            tcp.checksum(),
        ),
        Some(TransportSlice::Udp(udp)) if udp.checksum() == 0 && src.len() == 4 => return None,
        Some(TransportSlice::Udp(udp)) if src.len() == 4 => (
            udp.to_header()
                .calc_checksum_ipv4_raw(v4(&src), v4(&dst), udp.payload())
                .ok()?,
            udp.checksum(),
        ),
        Some(TransportSlice::Udp(udp)) => (
            udp.to_header()
                .calc_checksum_ipv6_raw(v6(&src), v6(&dst), udp.payload())
                .ok()?,
            udp.checksum(),
        ),
        _ => return None,
    };
    (expected != got).then(|| format!("bad quoted TCP/UDP checksum {got:#06x}, {expected:#06x}"))
}

/// Runs the cases with the harness and verifies the checksums of every
/// frame the program sent, reporting all mismatches at once. (Each sent
/// case runs a second time for its output: the harness keeps it to
/// itself. The second run may count differently, a flow hit for a new
/// flow, but sends the same bytes.)
fn expect_icmp_out(lb: &mut Lb, cases: &[Case]) {
    let mut errors = Vec::new();
    for case in cases {
        errors.extend(lb.check(case));
        if case.action == xdp::TX || case.action == xdp::REDIRECT {
            let (_, out) = lb.try_run(&case.frame).expect("test run");
            errors.extend(checksum_errors(&case.name, &out));
        }
    }
    assert!(
        errors.is_empty(),
        "{} mismatches in {} cases:\n{}",
        errors.len(),
        cases.len(),
        errors.join("\n")
    );
}

/// Sent back out (XDP_TX) as `output`, with `counters` moved.
fn tx(name: &str, input: Vec<u8>, output: Vec<u8>, counters: &[GlobalCounter]) -> Case {
    Case {
        name: name.into(),
        frame: input,
        action: xdp::TX,
        output: Some(output),
        counters: counters.to_vec(),
        ingress: None,
    }
}

// ---------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------

/// Service `id` at `vip` with one real (`id` as well) at `real_addr`,
/// forwarding with `method`. The real's next hop is known and is reached
/// through the ingress interface, so forwarding is XDP_TX.
fn one_real_service(
    lb: &mut Lb,
    vip: &str,
    protocol: u8,
    id: u32,
    method: ForwardingMethod,
    real_addr: &str,
) -> Real {
    lb.service(vip, protocol, id);
    let mut entry = real(id, id, ip(real_addr));
    entry.forwarding = method as u8;
    entry.tunnel_src = Addr::from(ip(if entry.family == Family::V4 as u8 {
        TUNNEL_SRC4
    } else {
        TUNNEL_SRC6
    }));
    entry.mtu = 1500;
    lb.set_real(id, entry);
    lb.set_maglev_row(id, &MaglevRow::all(id));
    entry
}

fn tun_service(lb: &mut Lb, vip: &str, id: u32, real_addr: &str, mtu: u16) -> Real {
    let mut entry = one_real_service(lb, vip, proto::TCP, id, ForwardingMethod::Tunnel, real_addr);
    entry.mtu = mtu;
    lb.set_real(id, entry);
    entry
}

/// Opens the flow `packet` starts (whatever the method does with the packet
/// itself) and checks it was recorded.
fn open_flow(lb: &mut Lb, packet: &Packet) -> FlowKey {
    let key = packet.flow_key();
    lb.try_run(&packet.bytes()).expect("test run");
    assert!(lb.flow(&key).is_some(), "no flow entry for {packet:?}");
    key
}

// ---------------------------------------------------------------------------
// 1. Too big for the tunnel
// ---------------------------------------------------------------------------

/// The answer TUN must send for `packet` (an IP packet from `client` to
/// `vip`): from the VIP, back to the router it came through.
fn expected_frag_needed(vip: &str, client: &str, mtu: u16, packet: &[u8]) -> Vec<u8> {
    let (IpAddr::V4(vip), IpAddr::V4(client)) = (ip(vip), ip(client)) else {
        panic!("IPv4 only");
    };
    // Linux sends its ICMP errors without DF too: small enough for any path.
    let mut header = Ipv4Header::new(0, ANSWER_TTL, IpNumber::ICMP, vip.octets(), client.octets())
        .expect("IPv4 header");
    header.dont_fragment = false;
    let mut answer = Vec::new();
    PacketBuilder::ip(IpHeaders::Ipv4(header, Default::default()))
        .icmpv4(frag_needed(mtu))
        .write(&mut answer, &packet[..QUOTE_V4])
        .expect("ICMP packet");
    answer
}

fn expected_packet_too_big(vip: &str, client: &str, mtu: u32, packet: &[u8]) -> Vec<u8> {
    let mut answer = Vec::new();
    PacketBuilder::ip(ip_headers(ip(vip), ip(client), ANSWER_TTL))
        .icmpv6(packet_too_big(mtu))
        .write(&mut answer, &packet[..QUOTE_V6])
        .expect("ICMPv6 packet");
    answer
}

#[test]
fn packets_too_big_for_the_tunnel_are_answered_with_the_mtu_that_fits() {
    let mut lb = Lb::load();
    // Outer IPv4 (20 bytes) on a 1300-byte link: 1280 bytes fit inside.
    // Outer IPv6 (40 bytes): 1260.
    let real4 = tun_service(&mut lb, WEB4, 1, REAL4, 1300);
    tun_service(&mut lb, WEB6, 2, REAL6, 1300);
    // An IPv6 service tunnelled over IPv4: 1280 fit.
    tun_service(&mut lb, "[fd00::10]:443", 3, "198.18.1.3", 1300);

    let client4 = sa(CLIENT4).ip().to_string();
    let client6 = sa(CLIENT6).ip().to_string();
    // 1400-byte packets (20 + 20 + 1360, 40 + 20 + 1340).
    let big4 = tcp(CLIENT4, WEB4, 57, 1360);
    let big6 = tcp(CLIENT6, WEB6, 57, 1340);
    let big6_443 = tcp(CLIENT6, "[fd00::10]:443", 57, 1340);
    // Exactly one byte more than fits, and exactly what fits.
    let over4 = tcp("198.19.7.8:40001", WEB4, 57, 1281 - 40);
    let fits4 = tcp("198.19.7.9:40002", WEB4, 57, 1280 - 40);
    let fits4_key = flow_key(proto::TCP, "198.19.7.9:40002", WEB4);

    let answer = |packet: Vec<u8>| frame(ROUTER_MAC, LB_MAC, None, &packet);
    let counted = [FlowNew, IcmpTooBigSent];
    expect_icmp_out(
        &mut lb,
        &[
            tx(
                "IPv4, 1400 bytes into 1280",
                inbound(&big4),
                answer(expected_frag_needed(VIP4, &client4, 1280, &big4)),
                &counted,
            ),
            tx(
                "IPv4, one byte too many",
                inbound(&over4),
                answer(expected_frag_needed(VIP4, "198.19.7.8", 1280, &over4)),
                &counted,
            ),
            tx(
                "IPv6, 1400 bytes into 1260",
                inbound(&big6),
                answer(expected_packet_too_big(VIP6, &client6, 1260, &big6)),
                &counted,
            ),
            tx(
                "IPv6 over an IPv4 tunnel, 1400 bytes into 1280",
                inbound(&big6_443),
                answer(expected_packet_too_big(VIP6, &client6, 1280, &big6_443)),
                &counted,
            ),
            tx(
                "802.1Q-tagged IPv4: the tag stays",
                frame(LB_MAC, ROUTER_MAC, Some(100), &big4),
                frame(
                    ROUTER_MAC,
                    LB_MAC,
                    Some(100),
                    &expected_frag_needed(VIP4, &client4, 1280, &big4),
                ),
                // The same flow as the first case.
                &[FlowHit, IcmpTooBigSent],
            ),
        ],
    );
    // What fits is tunnelled as usual.
    lb.expect(&tx(
        "IPv4, exactly 1280 bytes",
        inbound(&fits4),
        encapsulated(&inbound(&fits4), &real4, &fits4_key),
        &[FlowNew, Forwarded],
    ));
}

#[test]
fn a_frame_shorter_than_the_quote_is_dropped() {
    let mut lb = Lb::load();
    tun_service(&mut lb, WEB4, 1, REAL4, 1300);
    // The IP header claims 1400 bytes; the frame stops after 300. Nothing
    // sensible can be quoted, and the tunnel could not carry it either.
    let cut = inbound(&tcp(CLIENT4, WEB4, 57, 1360))[..300].to_vec();
    lb.expect(
        &Case::drop(
            "IPv4 header claims more than the frame holds",
            cut,
            DropEncapFailed,
        )
        .counts(FlowNew),
    );
}

// ---------------------------------------------------------------------------
// 2. Echo
// ---------------------------------------------------------------------------

fn echo_request4(src: &str, dst: &str, ttl: u8) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ip(ip_headers(ip(src), ip(dst), ttl))
        .icmpv4_echo_request(0x0107, 3)
        .write(&mut out, b"are you there?")
        .expect("echo request");
    out
}

fn echo_reply4(src: &str, dst: &str) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ip(ip_headers(ip(src), ip(dst), ANSWER_TTL))
        .icmpv4_echo_reply(0x0107, 3)
        .write(&mut out, b"are you there?")
        .expect("echo reply");
    out
}

fn echo_request6(src: &str, dst: &str, ttl: u8) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ip(ip_headers(ip(src), ip(dst), ttl))
        .icmpv6_echo_request(0x0107, 3)
        .write(&mut out, b"are you there?")
        .expect("echo request");
    out
}

fn echo_reply6(src: &str, dst: &str) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ip(ip_headers(ip(src), ip(dst), ANSWER_TTL))
        .icmpv6_echo_reply(0x0107, 3)
        .write(&mut out, b"are you there?")
        .expect("echo reply");
    out
}

#[test]
fn echo_requests_to_a_vip_are_answered_from_the_vip() {
    let mut lb = Lb::load();
    lb.service(WEB4, proto::TCP, 1);
    lb.service(WEB6, proto::TCP, 2);
    let client4 = sa(CLIENT4).ip().to_string();
    let client6 = sa(CLIENT6).ip().to_string();
    let back = |packet: Vec<u8>| frame(ROUTER_MAC, LB_MAC, None, &packet);

    expect_icmp_out(
        &mut lb,
        &[
            tx(
                "ICMP echo request to the IPv4 VIP",
                inbound(&echo_request4(&client4, VIP4, 57)),
                back(echo_reply4(VIP4, &client4)),
                &[IcmpEchoReplied],
            ),
            tx(
                "ICMPv6 echo request to the IPv6 VIP",
                inbound(&echo_request6(&client6, VIP6, 57)),
                back(echo_reply6(VIP6, &client6)),
                &[IcmpEchoReplied],
            ),
            tx(
                "802.1Q-tagged echo request",
                frame(
                    LB_MAC,
                    ROUTER_MAC,
                    Some(7),
                    &echo_request4(&client4, VIP4, 1),
                ),
                frame(ROUTER_MAC, LB_MAC, Some(7), &echo_reply4(VIP4, &client4)),
                &[IcmpEchoReplied],
            ),
        ],
    );
    // IPv4 options (a record route, say) are the host's to honour.
    let with_options = Packet::icmp_echo(&client4, VIP4).ipv4_options(&[1, 1, 1, 0]);
    lb.expect(&Case::pass(
        "echo request with IPv4 options",
        with_options.bytes(),
        PassOtherProtocol,
    ));
}

#[test]
fn other_icmp_to_a_vip_is_left_to_the_host() {
    let mut lb = Lb::load();
    lb.service_with_three_reals(WEB4, proto::TCP, 1, 1);
    lb.service_with_three_reals(WEB6, proto::TCP, 2, 4);
    // Known flows: a parameter problem quoting one would be relayed if the
    // type were.
    open_flow(&mut lb, &Packet::tcp_syn(CLIENT4, WEB4));
    open_flow(&mut lb, &Packet::tcp_syn(CLIENT6, WEB6));
    let quoted4 = tcp(WEB4, CLIENT4, 64, 0);
    let quoted6 = tcp(WEB6, CLIENT6, 64, 0);
    let client4 = sa(CLIENT4).ip().to_string();
    let client6 = sa(CLIENT6).ip().to_string();
    let parameter_problem4 =
        Icmpv4Type::ParameterProblem(icmpv4::ParameterProblemHeader::PointerIndicatesError(0));
    let parameter_problem6 = Icmpv6Type::ParameterProblem(icmpv6::ParameterProblemHeader {
        code: icmpv6::ParameterProblemCode::ErroneousHeaderField,
        pointer: 0,
    });
    let solicitation = Icmpv6Type::NeighborSolicitation;

    let pass = |name: &str, packet: Vec<u8>| Case::pass(name, inbound(&packet), PassOtherProtocol);
    lb.expect_all(&[
        pass("echo reply to the IPv4 VIP", echo_reply4(&client4, VIP4)),
        pass("echo reply to the IPv6 VIP", echo_reply6(&client6, VIP6)),
        pass(
            "parameter problem quoting a flow (not relayed)",
            icmp4(ROUTER4, VIP4, 64, parameter_problem4, &quoted4),
        ),
        pass(
            "ICMPv6 parameter problem quoting a flow (not relayed)",
            icmp6(ROUTER6, VIP6, 64, parameter_problem6, &quoted6),
        ),
        pass(
            "neighbour solicitation for the IPv6 VIP",
            icmp6(ROUTER6, VIP6, 255, solicitation, &[0; 20]),
        ),
    ]);
}

/// `Lb` has no handle on `LB_SETTINGS`, so this test loads the program on
/// its own: the VIP and the settings are all it needs.
struct SettingsRig {
    dataplane: Dataplane,
}

impl SettingsRig {
    fn load(flags: u32, vips: &[&str]) -> Self {
        let geometry = Geometry {
            maglev_table_size: crate::harness::MAGLEV_TABLE_SIZE,
            flow_table_entries: 1024,
            ..Geometry::default()
        };
        let mut dataplane =
            Dataplane::load(geometry, None).expect("loading the data plane (needs root / CAP_BPF)");
        let settings = Settings {
            flags,
            ..Settings::IPVS_DEFAULTS
        };
        dataplane
            .maps
            .settings
            .set(0, settings, 0)
            .expect("write settings");
        for vip in vips {
            let address = ip(vip);
            let key = VipKey {
                addr: Addr::from(address),
                family: Family::of(&address) as u8,
                _pad: [0; 3],
            };
            dataplane
                .maps
                .vips
                .insert(key, VipInfo { services: 1 }, 0)
                .expect("insert VIP");
        }
        Self { dataplane }
    }

    fn counter(&self, counter: GlobalCounter) -> u64 {
        let values = self
            .dataplane
            .maps
            .global_stats
            .get(&(counter as u32), 0)
            .expect("read counter");
        values.iter().sum()
    }

    /// The action, the frame out, and how far `counter` moved.
    fn run(&mut self, frame: &[u8], counter: GlobalCounter) -> (u32, Vec<u8>, u64) {
        let before = self.counter(counter);
        use aya::programs::TestRun as _;
        let program = self
            .dataplane
            .program_mut(lb_common::programs::BALANCER)
            .expect("balancer program");
        let mut out = vec![0u8; 4096];
        let result = program
            .test_run(aya::programs::TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ..aya::programs::TestRunOptions::new()
            })
            .expect("test run");
        out.truncate(result.data_size_out as usize);
        (result.return_value, out, self.counter(counter) - before)
    }
}

#[test]
fn echo_requests_go_to_the_host_when_replies_are_turned_off() {
    let client4 = sa(CLIENT4).ip().to_string();
    let client6 = sa(CLIENT6).ip().to_string();
    let requests = [
        inbound(&echo_request4(&client4, VIP4, 57)),
        inbound(&echo_request6(&client6, VIP6, 57)),
    ];

    let mut off = SettingsRig::load(SETTINGS_NO_ECHO_REPLY, &[VIP4, VIP6]);
    for request in &requests {
        assert_eq!(
            off.run(request, PassOtherProtocol),
            (xdp::PASS, request.clone(), 1),
            "with SETTINGS_NO_ECHO_REPLY the host gets the request as it came"
        );
        assert_eq!(off.counter(IcmpEchoReplied), 0);
    }
    // The same rig without the flag answers: the pass above is the flag's.
    let mut on = SettingsRig::load(0, &[VIP4, VIP6]);
    for request in &requests {
        let (action, _, replied) = on.run(request, IcmpEchoReplied);
        assert_eq!((action, replied), (xdp::TX, 1));
    }
}

// ---------------------------------------------------------------------------
// 3. Errors quoting a flow: DR
// ---------------------------------------------------------------------------

/// The first `len` bytes of `packet` (all of it if shorter): what an error
/// quotes.
fn cut(packet: &[u8], len: usize) -> &[u8] {
    &packet[..len.min(packet.len())]
}

#[test]
fn errors_quoting_a_dr_flow_go_to_its_real_unchanged() {
    let mut lb = Lb::load();
    let web4 = lb.service_with_three_reals(WEB4, proto::TCP, 1, 1);
    let dns4 = lb.service_with_three_reals(DNS4, proto::UDP, 2, 4);
    let web6 = lb.service_with_three_reals(WEB6, proto::TCP, 3, 7);
    let dns6 = lb.service_with_three_reals(DNS6, proto::UDP, 4, 10);
    let tcp4 = open_flow(&mut lb, &Packet::tcp_syn(CLIENT4, WEB4));
    let udp4 = open_flow(&mut lb, &Packet::udp(CLIENT4, DNS4));
    let tcp6 = open_flow(&mut lb, &Packet::tcp_syn(CLIENT6, WEB6));
    let udp6 = open_flow(&mut lb, &Packet::udp(CLIENT6, DNS6));
    let real_of = |row: &MaglevRow, key: &FlowKey| *lb.real(row.predict(key));
    let (r_tcp4, r_udp4) = (real_of(&web4, &tcp4), real_of(&dns4, &udp4));
    let (r_tcp6, r_udp6) = (real_of(&web6, &tcp6), real_of(&dns6, &udp6));

    // What the reals sent to the clients, from the VIP.
    let reply4 = tcp(WEB4, CLIENT4, 63, 1400);
    let dgram4 = udp(DNS4, CLIENT4, 64, 100);
    let reply6 = tcp(WEB6, CLIENT6, 63, 1400);
    let dgram6 = udp(DNS6, CLIENT6, 64, 100);
    let client4 = sa(CLIENT4).ip().to_string();
    let client6 = sa(CLIENT6).ip().to_string();

    let relayed = |name: &str, error: Vec<u8>, real: &Real| {
        let input = inbound(&error);
        let output = to_real_mac(&input, real);
        tx(name, input, output, &[IcmpErrorForwarded])
    };
    expect_icmp_out(
        &mut lb,
        &[
            relayed(
                "fragmentation needed, quoting IP header + 8 bytes",
                icmp4(ROUTER4, VIP4, 60, frag_needed(1400), cut(&reply4, 28)),
                &r_tcp4,
            ),
            relayed(
                "fragmentation needed, quoting 548 bytes",
                icmp4(ROUTER4, VIP4, 60, frag_needed(1400), cut(&reply4, 548)),
                &r_tcp4,
            ),
            relayed(
                "time exceeded",
                icmp4(ROUTER4, VIP4, 60, ttl_exceeded4(), cut(&reply4, 28)),
                &r_tcp4,
            ),
            tagged(
                relayed(
                    "time exceeded",
                    icmp4(ROUTER4, VIP4, 60, ttl_exceeded4(), cut(&reply4, 28)),
                    &r_tcp4,
                ),
                100,
            ),
            relayed(
                "port unreachable from the client",
                icmp4(&client4, VIP4, 60, port_unreachable4(), &dgram4),
                &r_udp4,
            ),
            relayed(
                "packet too big",
                icmp6(ROUTER6, VIP6, 60, packet_too_big(1280), cut(&reply6, 1232)),
                &r_tcp6,
            ),
            relayed(
                "hop limit exceeded",
                icmp6(ROUTER6, VIP6, 60, hop_limit_exceeded6(), cut(&reply6, 48)),
                &r_tcp6,
            ),
            relayed(
                "ICMPv6 port unreachable from the client",
                icmp6(&client6, VIP6, 60, port_unreachable6(), &dgram6),
                &r_udp6,
            ),
        ],
    );
}

#[test]
fn errors_that_quote_no_known_flow_are_left_to_the_host() {
    let mut lb = Lb::load();
    lb.service_with_three_reals(WEB4, proto::TCP, 1, 1);
    lb.service_with_three_reals(WEB6, proto::TCP, 2, 4);
    open_flow(&mut lb, &Packet::tcp_syn(CLIENT4, WEB4));
    open_flow(&mut lb, &Packet::tcp_syn(CLIENT6, WEB6));
    let reply4 = tcp(WEB4, CLIENT4, 63, 100);

    // Another client port: no such flow.
    let other_port = tcp(WEB4, "198.19.7.7:40001", 63, 100);
    let other_port6 = tcp(WEB6, "[fd00:c::7]:40001", 63, 100);
    // The right ports, but from another address than the VIP the error
    // came to.
    let other_source = tcp("198.18.0.11:80", CLIENT4, 63, 100);
    // A non-first fragment of the reply: no ports in it.
    let mut fragment = reply4.clone();
    fragment[6..8].copy_from_slice(&0x00b9u16.to_be_bytes());
    let (mut header, _) = Ipv4Header::from_slice(&fragment).unwrap();
    header.header_checksum = header.calc_header_checksum();
    fragment[..20].copy_from_slice(&header.to_bytes());
    // An IPv4 error whose quote stops inside the ports.
    let short = cut(&reply4, 22);
    // A quoted UDP datagram of a flow that is TCP.
    let wrong_protocol = udp(WEB4, CLIENT4, 63, 10);

    let pass = |name: &str, error: Vec<u8>| Case::pass(name, inbound(&error), PassOtherProtocol);
    lb.expect_all(&[
        pass(
            "IPv4 error about an unknown flow",
            icmp4(ROUTER4, VIP4, 60, frag_needed(1400), cut(&other_port, 28)),
        ),
        pass(
            "IPv6 error about an unknown flow",
            icmp6(
                ROUTER6,
                VIP6,
                60,
                packet_too_big(1280),
                cut(&other_port6, 48),
            ),
        ),
        pass(
            "quoting a packet from another address",
            icmp4(ROUTER4, VIP4, 60, frag_needed(1400), cut(&other_source, 28)),
        ),
        pass(
            "quoting a non-first fragment",
            icmp4(ROUTER4, VIP4, 60, frag_needed(1400), cut(&fragment, 28)),
        ),
        pass(
            "quote cut inside the ports",
            icmp4(ROUTER4, VIP4, 60, frag_needed(1400), short),
        ),
        pass(
            "quoting another protocol",
            icmp4(
                ROUTER4,
                VIP4,
                60,
                frag_needed(1400),
                cut(&wrong_protocol, 28),
            ),
        ),
    ]);
}

// ---------------------------------------------------------------------------
// 4. TUN
// ---------------------------------------------------------------------------

#[test]
fn errors_quoting_a_tun_flow_are_tunnelled_to_its_real() {
    let mut lb = Lb::load();
    let real4 = tun_service(&mut lb, WEB4, 1, REAL4, 1500);
    let real6 = tun_service(&mut lb, WEB6, 2, REAL6, 1500);
    // A tunnel too narrow for a full-size IPv4 error (576 + 20 > 590).
    tun_service(&mut lb, "198.18.0.10:443", 3, "198.18.1.3", 590);
    let key4 = open_flow(&mut lb, &Packet::tcp_syn(CLIENT4, WEB4));
    let key6 = open_flow(&mut lb, &Packet::tcp_syn(CLIENT6, WEB6));
    open_flow(&mut lb, &Packet::tcp_syn(CLIENT4, "198.18.0.10:443"));

    let reply4 = tcp(WEB4, CLIENT4, 63, 1400);
    let reply6 = tcp(WEB6, CLIENT6, 63, 1400);
    let narrow = tcp("198.18.0.10:443", CLIENT4, 63, 1400);
    let error4 = inbound(&icmp4(
        ROUTER4,
        VIP4,
        60,
        frag_needed(1400),
        cut(&reply4, 548),
    ));
    let error6 = inbound(&icmp6(
        ROUTER6,
        VIP6,
        60,
        packet_too_big(1280),
        cut(&reply6, 1232),
    ));
    let small = inbound(&icmp4(
        ROUTER4,
        VIP4,
        60,
        frag_needed(1400),
        cut(&narrow, 28),
    ));
    let full = inbound(&icmp4(
        ROUTER4,
        VIP4,
        60,
        frag_needed(1400),
        cut(&narrow, 548),
    ));

    let cases = [
        tx(
            "IPv4 fragmentation needed, in IPIP",
            error4.clone(),
            encapsulated(&error4, &real4, &key4),
            &[IcmpErrorForwarded],
        ),
        tx(
            "1280-byte packet too big, in IPv6 (flow label of the flow)",
            error6.clone(),
            encapsulated(&error6, &real6, &key6),
            &[IcmpErrorForwarded],
        ),
        tx(
            "a small error fits the narrow tunnel",
            small.clone(),
            encapsulated(
                &small,
                lb.real(3),
                &flow_key(proto::TCP, CLIENT4, "198.18.0.10:443"),
            ),
            &[IcmpErrorForwarded],
        ),
        // Never answered with "too big": no ICMP error about an ICMP error.
        Case::drop("an error too big for the tunnel", full, DropEncapFailed),
    ];
    lb.expect_all(&cases);
}

// ---------------------------------------------------------------------------
// 5. NAT
// ---------------------------------------------------------------------------

/// A NAT service whose real listens on `real_port` (0: the service's port).
fn nat_service(lb: &mut Lb, vip: &str, protocol: u8, id: u32, real_addr: &str, real_port: u16) {
    let mut entry = one_real_service(
        lb,
        vip,
        protocol,
        id,
        ForwardingMethod::Masquerade,
        real_addr,
    );
    entry.port_be = real_port.to_be();
    lb.set_real(id, entry);
}

/// One NAT error case: `error(quote)` arrives quoting the reply as the
/// balancer sent it on (from the VIP); it must leave towards the real with
/// one TTL less, quoting the reply as the real sent it.
struct NatError<'a> {
    name: &'a str,
    /// The reply from the VIP, and the same reply as the real sent it.
    from_vip: Vec<u8>,
    from_real: Vec<u8>,
    quote_len: usize,
    real: &'a str,
}

impl NatError<'_> {
    fn case(&self, lb: &Lb, real_id: u32, error: impl Fn(&str, &[u8]) -> Vec<u8>) -> Case {
        let vip = match self.from_vip[0] >> 4 {
            4 => VIP4,
            _ => VIP6,
        };
        let input = inbound(&error(vip, cut(&self.from_vip, self.quote_len)));
        let output = frame_to(
            lb.real(real_id),
            &error(self.real, cut(&self.from_real, self.quote_len)),
        );
        tx(self.name, input, output, &[IcmpErrorForwarded])
    }
}

/// `packet` with its UDP checksum zeroed (IPv4: "no checksum").
fn without_udp_checksum(mut packet: Vec<u8>) -> Vec<u8> {
    packet[26..28].copy_from_slice(&[0, 0]);
    packet
}

#[test]
fn errors_quoting_a_nat_flow_are_translated_for_its_real() {
    let mut lb = Lb::load();
    nat_service(&mut lb, WEB4, proto::TCP, 1, REAL4, 8080);
    nat_service(&mut lb, DNS4, proto::UDP, 2, "198.18.1.2", 0);
    nat_service(&mut lb, WEB6, proto::TCP, 3, REAL6, 8080);
    nat_service(&mut lb, DNS6, proto::UDP, 4, "fd00:1::2", 5353);
    for packet in [
        Packet::tcp_syn(CLIENT4, WEB4),
        Packet::udp(CLIENT4, DNS4),
        Packet::tcp_syn(CLIENT6, WEB6),
        Packet::udp(CLIENT6, DNS6),
    ] {
        open_flow(&mut lb, &packet);
    }
    let client4 = sa(CLIENT4).ip().to_string();
    let client6 = sa(CLIENT6).ip().to_string();

    let tcp4 = |len| NatError {
        name: "",
        from_vip: tcp(WEB4, CLIENT4, 63, 300),
        from_real: tcp("198.18.1.1:8080", CLIENT4, 63, 300),
        quote_len: len,
        real: REAL4,
    };
    let named = |name, e: NatError<'static>| NatError { name, ..e };
    // An error from a router: TTL 60 in, 59 out.
    let frag4 = |at: &str, quote: &[u8]| icmp4_ttl(ROUTER4, at, frag_needed(1400), quote);
    let unreach4 = |at: &str, quote: &[u8]| icmp4_ttl(&client4, at, port_unreachable4(), quote);
    let exceeded4 = |at: &str, quote: &[u8]| icmp4_ttl(ROUTER4, at, ttl_exceeded4(), quote);
    let ptb6 = |at: &str, quote: &[u8]| icmp6_ttl(ROUTER6, at, packet_too_big(1280), quote);
    let unreach6 = |at: &str, quote: &[u8]| icmp6_ttl(&client6, at, port_unreachable6(), quote);
    let exceeded6 = |at: &str, quote: &[u8]| icmp6_ttl(ROUTER6, at, hop_limit_exceeded6(), quote);

    let udp4 = NatError {
        name: "port unreachable; the real keeps the service's port",
        from_vip: udp(DNS4, CLIENT4, 64, 40),
        from_real: udp("198.18.1.2:53", CLIENT4, 64, 40),
        quote_len: usize::MAX,
        real: "198.18.1.2",
    };
    let udp4_none = NatError {
        name: "port unreachable quoting UDP without a checksum",
        from_vip: without_udp_checksum(udp(DNS4, CLIENT4, 64, 40)),
        from_real: without_udp_checksum(udp("198.18.1.2:53", CLIENT4, 64, 40)),
        ..udp4
    };
    let tcp6 = |len| NatError {
        name: "",
        from_vip: tcp(WEB6, CLIENT6, 63, 300),
        from_real: tcp("[fd00:1::1]:8080", CLIENT6, 63, 300),
        quote_len: len,
        real: REAL6,
    };
    let udp6 = NatError {
        name: "ICMPv6 port unreachable",
        from_vip: udp(DNS6, CLIENT6, 64, 40),
        from_real: udp("[fd00:1::2]:5353", CLIENT6, 64, 40),
        quote_len: usize::MAX,
        real: "fd00:1::2",
    };

    let cases = [
        named("fragmentation needed, IP header + 8 bytes", tcp4(28)).case(&lb, 1, frag4),
        named("fragmentation needed, 64 bytes", tcp4(64)).case(&lb, 1, frag4),
        named("fragmentation needed, whole reply", tcp4(usize::MAX)).case(&lb, 1, frag4),
        named("time exceeded", tcp4(40)).case(&lb, 1, exceeded4),
        udp4.case(&lb, 2, unreach4),
        udp4_none.case(&lb, 2, unreach4),
        named("packet too big, IP header + 8 bytes", tcp6(48)).case(&lb, 3, ptb6),
        named("packet too big, whole reply", tcp6(usize::MAX)).case(&lb, 3, ptb6),
        named("hop limit exceeded", tcp6(100)).case(&lb, 3, exceeded6),
        udp6.case(&lb, 4, unreach6),
        // Offsets that move: a tag, IPv4 options in the error's header and
        // in the quoted one.
        tagged(
            named("fragmentation needed", tcp4(64)).case(&lb, 1, frag4),
            9,
        ),
        tagged(named("packet too big", tcp6(100)).case(&lb, 3, ptb6), 9),
        named("fragmentation needed with IPv4 options", tcp4(64)).case(&lb, 1, |at, quote| {
            with_ipv4_options(&frag4(at, quote), &[1, 1, 1, 0])
        }),
        NatError {
            name: "quoting a reply with IPv4 options",
            from_vip: with_ipv4_options(&tcp4(0).from_vip, &[1; 8]),
            from_real: with_ipv4_options(&tcp4(0).from_real, &[1; 8]),
            ..tcp4(72)
        }
        .case(&lb, 1, frag4),
    ];
    expect_icmp_out(&mut lb, &cases);

    // Like any packet the balancer routes: one that would expire here goes
    // to the kernel, untouched.
    let expiring = icmp4(
        ROUTER4,
        VIP4,
        1,
        frag_needed(1400),
        cut(&tcp4(0).from_vip, 28),
    );
    lb.expect(&Case::pass("TTL 1", inbound(&expiring), PassTtlExceeded));
}

/// Errors at TTL 60 to `at` (the VIP coming in, the real going out: one
/// less).
fn icmp4_ttl(src: &str, at: &str, kind: Icmpv4Type, quote: &[u8]) -> Vec<u8> {
    let ttl = if at == VIP4 { 60 } else { 59 };
    icmp4(src, at, ttl, kind, quote)
}

fn icmp6_ttl(src: &str, at: &str, kind: Icmpv6Type, quote: &[u8]) -> Vec<u8> {
    let ttl = if at == VIP6 { 60 } else { 59 };
    icmp6(src, at, ttl, kind, quote)
}
