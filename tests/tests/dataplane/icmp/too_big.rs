//! Packets too big for the tunnel: answered with "fragmentation needed" /
//! "packet too big" carrying the MTU that fits.

use std::net::IpAddr;

use etherparse::{IpHeaders, IpNumber, Ipv4Header, PacketBuilder};
use lb_common::GlobalCounter::*;
use lb_common::proto;
use lb_tests::frames::{LB_MAC, ROUTER_MAC, ip, sa, tunnelled};

use super::{
    ANSWER_TTL, CLIENT4, CLIENT6, QUOTE_V4, QUOTE_V6, REAL4, REAL6, VIP4, VIP6, WEB4, WEB6,
    checks::{expect_icmp_out, tx},
    frames::{flow_key, frag_needed, frame, inbound, ip_headers, packet_too_big, tcp},
    services::tun_service,
};
use crate::harness::{Case, Lb};

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
        tunnelled(&inbound(&fits4), &real4, &fits4_key),
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
