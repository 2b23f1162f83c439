//! Errors quoting a DR flow go to its real unchanged; errors that quote no
//! known flow are left to the host.

use etherparse::Ipv4Header;
use lb_common::GlobalCounter::*;
use lb_common::{FlowKey, Real, proto};
use lb_tests::frames::{Packet, sa};

use super::{
    CLIENT4, CLIENT6, DNS4, DNS6, ROUTER4, ROUTER6, VIP4, VIP6, WEB4, WEB6,
    checks::{expect_icmp_out, tx},
    frames::cut,
    frames::{
        frag_needed, hop_limit_exceeded6, icmp4, icmp6, inbound, packet_too_big, port_unreachable4,
        port_unreachable6, tagged, tcp, to_real_mac, ttl_exceeded4, udp,
    },
    services::open_flow,
};
use crate::harness::{Case, Lb, MaglevRow};

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
