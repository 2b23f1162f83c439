//! Errors quoting a NAT flow are translated for its real.

use etherparse::{Icmpv4Type, Icmpv6Type};
use lb_common::GlobalCounter::*;
use lb_common::{ForwardingMethod, proto};
use lb_tests::frames::{Packet, sa};

use super::{
    CLIENT4, CLIENT6, DNS4, DNS6, REAL4, REAL6, ROUTER4, ROUTER6, VIP4, VIP6, WEB4, WEB6,
    checks::{expect_icmp_out, tx},
    frames::cut,
    frames::{
        frag_needed, frame_to, hop_limit_exceeded6, icmp4, icmp6, inbound, packet_too_big,
        port_unreachable4, port_unreachable6, tagged, tcp, ttl_exceeded4, udp, with_ipv4_options,
    },
    services::{one_real_service, open_flow},
};
use crate::harness::{Case, Lb};

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

/// Four NAT services (TCP and UDP, both families), each with a flow open.
fn nat_services_with_open_flows() -> Lb {
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
    lb
}

#[test]
fn errors_quoting_a_nat_flow_are_translated_for_its_real() {
    let mut lb = nat_services_with_open_flows();
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
