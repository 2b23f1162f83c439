//! ICMP errors from NAT reals, translated like their replies.

use etherparse::PacketBuilder;
use lb_common::GlobalCounter::*;
use lb_tests::frames::{LB_MAC, ip, real_mac, sa};

use super::{
    CLIENT4, CLIENT6, DNS4_REAL,
    frames::{Frame, IcmpError, L4, SYN, icmp_error},
    reply_rig::{DNS4_SVC, DNS6_SVC, GATEWAY_MAC, OUTSIDE_MAC, Rig, Svc, WEB4_SVC, WEB6_SVC},
};
use crate::harness::{Case, in_private_netns, xdp};

/// ICMP errors a NAT real sends about a NAT flow are translated like its
/// replies: from the VIP, quoting client -> VIP:port as the client sent it
/// (quoted IPv4 header checksum, quoted TCP/UDP checksum when quoted, ICMP
/// checksum with the ICMPv6 pseudo-header), and routed to the client.
#[test]
fn icmp_errors_from_reals_are_translated() {
    in_private_netns(|| {
        let mut rig = Rig::new();
        rig.request(DNS4_SVC, CLIENT4, L4::Udp);
        rig.request(DNS6_SVC, CLIENT6, L4::Udp);
        rig.request(WEB4_SVC, CLIENT4, SYN);
        rig.request(WEB6_SVC, CLIENT6, SYN);
        let mut cases = translated_errors(&rig);
        cases.extend(errors_left_as_they_came(&rig));
        rig.expect_all(cases);
    });
}

/// Errors about each family and protocol, translated and redirected to the
/// client.
fn translated_errors(rig: &Rig) -> Vec<Case> {
    // (name, service, client, what the client sent, error, bytes quoted)
    let errors = [
        (
            "IPv4 UDP port unreachable",
            DNS4_SVC,
            CLIENT4,
            L4::Udp,
            IcmpError::PortUnreachable,
            None,
        ),
        (
            "IPv6 UDP port unreachable",
            DNS6_SVC,
            CLIENT6,
            L4::Udp,
            IcmpError::PortUnreachable,
            None,
        ),
        // RFC 792's minimum quote: the TCP checksum is not in it.
        (
            "IPv4 TCP time exceeded, header and 8 bytes quoted",
            WEB4_SVC,
            CLIENT4,
            SYN,
            IcmpError::TimeExceeded,
            Some(28),
        ),
        (
            "IPv4 TCP fragmentation needed, whole segment quoted",
            WEB4_SVC,
            CLIENT4,
            SYN,
            IcmpError::PacketTooBig,
            None,
        ),
        (
            "IPv6 TCP packet too big, whole segment quoted",
            WEB6_SVC,
            CLIENT6,
            SYN,
            IcmpError::PacketTooBig,
            None,
        ),
    ];
    let mut cases = Vec::new();
    for (name, svc, client, l4, kind, quoted) in errors {
        let sent = Frame::new(client, svc.vip, l4);
        // As the real received it, and as the client must see it
        // quoted: its own packet, one hop older.
        let received = sent.to_real(&rig.reals[&svc.id], svc.real).bytes();
        let expected = sent.clone().ttl(sent.ttl - 1).bytes();
        let len = quoted.unwrap_or(received.len() - 14);
        let (real, vip, client) = (sa(svc.real).ip(), sa(svc.vip).ip(), sa(client).ip());
        let from_real = icmp_error(
            (real_mac(svc.id), LB_MAC),
            (real, client),
            64,
            kind,
            &received[14..14 + len],
        );
        let from_vip = icmp_error(
            (OUTSIDE_MAC, GATEWAY_MAC),
            (vip, client),
            63,
            kind,
            &expected[14..14 + len],
        );
        cases.push(Case {
            name: name.into(),
            frame: from_real,
            action: xdp::REDIRECT,
            output: Some(from_vip),
            counters: vec![NatReplies],
            ingress: None,
        });
    }
    cases
}

/// Errors the balancer must leave as they came: about an unknown flow, from
/// someone else than the real, not an error, or expiring.
fn errors_left_as_they_came(rig: &Rig) -> Vec<Case> {
    // What stays as it came.
    let quote = |client: &str, svc: Svc| {
        let sent = Frame::new(client, svc.vip, L4::Udp);
        sent.to_real(&rig.reals[&svc.id], svc.real).bytes()[14..].to_vec()
    };
    let untouched = |name: &str, frame: Vec<u8>, action, counter| Case {
        name: name.into(),
        frame,
        action,
        output: None,
        counters: vec![counter],
        ingress: None,
    };
    let (real4, client4) = (sa(DNS4_REAL).ip(), sa(CLIENT4).ip());
    let error = |from, ttl, quote: &[u8]| {
        icmp_error(
            (real_mac(2), LB_MAC),
            (from, client4),
            ttl,
            IcmpError::PortUnreachable,
            quote,
        )
    };
    let mut echo = Vec::new();
    PacketBuilder::ethernet2(real_mac(2), LB_MAC)
        .ipv4([198, 18, 1, 2], [198, 19, 7, 7], 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut echo, b"ping")
        .unwrap();
    vec![
        untouched(
            "about a flow the balancer does not know",
            error(real4, 64, &quote("198.19.7.7:40001", DNS4_SVC)),
            xdp::PASS,
            PassNotVip,
        ),
        untouched(
            "from a router, not the real",
            error(ip("198.18.1.200"), 64, &quote(CLIENT4, DNS4_SVC)),
            xdp::PASS,
            PassNotVip,
        ),
        untouched("a NAT real's echo request", echo, xdp::PASS, PassNotVip),
        untouched(
            "TTL 1",
            error(real4, 1, &quote(CLIENT4, DNS4_SVC)),
            xdp::PASS,
            PassTtlExceeded,
        ),
    ]
}
