//! Errors quoting a TUN flow are tunnelled to its real.

use lb_common::GlobalCounter::*;
use lb_common::proto;
use lb_tests::frames::{Packet, tunnelled};

use super::{
    CLIENT4, CLIENT6, REAL4, REAL6, ROUTER4, ROUTER6, VIP4, VIP6, WEB4, WEB6,
    checks::tx,
    frames::cut,
    frames::{flow_key, frag_needed, icmp4, icmp6, inbound, packet_too_big, tcp},
    services::{open_flow, tun_service},
};
use crate::harness::{Case, Lb};

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
            tunnelled(&error4, &real4, &key4),
            &[IcmpErrorForwarded],
        ),
        tx(
            "1280-byte packet too big, in IPv6 (flow label of the flow)",
            error6.clone(),
            tunnelled(&error6, &real6, &key6),
            &[IcmpErrorForwarded],
        ),
        tx(
            "a small error fits the narrow tunnel",
            small.clone(),
            tunnelled(
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
