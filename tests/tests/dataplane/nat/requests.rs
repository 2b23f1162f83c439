//! Requests: rewritten to the real, leaving the reverse entry replies are
//! matched against.

use lb_common::GlobalCounter::*;
use lb_common::{REAL_ACTIVE, proto};

use super::{
    CLIENT4, CLIENT6, DNS4, DNS4_REAL, DNS6, DNS6_REAL, WEB4, WEB4_REAL, WEB6, WEB6_REAL,
    frames::{ACK, Frame, L4, SYN, assert_checksums_valid},
    nat_lb::{NatLb, case, expected_reply_entry},
};
use crate::harness::{INGRESS_IFINDEX, pin_to_current_cpu, xdp};

/// For each family and protocol: a new connection to the service is
/// rewritten to real:port (another port than the service's), one hop
/// older, with checksums that match a frame built from scratch, and leaves
/// the reverse entry replies will be matched against.
#[test]
fn requests_are_rewritten_to_the_real_and_leave_a_reverse_entry() {
    let mut lb = NatLb::load();
    let services = [
        ("TCP/IPv4", WEB4, WEB4_REAL, CLIENT4, SYN),
        ("UDP/IPv4", DNS4, DNS4_REAL, CLIENT4, L4::Udp),
        ("TCP/IPv6", WEB6, WEB6_REAL, CLIENT6, SYN),
        ("UDP/IPv6", DNS6, DNS6_REAL, CLIENT6, L4::Udp),
    ];
    for (i, (name, vip, real_addr, client, l4)) in (1..).zip(services) {
        let protocol = Frame::new(client, vip, l4).protocol();
        let real = lb.nat_service(vip, protocol, i, 10 + i, real_addr, INGRESS_IFINDEX);
        let request = Frame::new(client, vip, l4);
        let forwarded = request.to_real(&real, real_addr);
        lb.expect_all(&[case(
            &format!("{name}: new connection"),
            &request,
            xdp::TX,
            Some(&forwarded),
            &[Forwarded, FlowNew],
        )]);

        let (key, expected) = expected_reply_entry(&request, 10 + i, real_addr);
        assert_eq!(
            lb.nat_reply(&key),
            Some(expected),
            "{name}: LB_NAT_REPLIES entry"
        );
        let flow = lb.flow(&request.key()).expect("forward flow recorded");
        assert_eq!(flow.real_id, 10 + i, "{name}: flow's real");

        // The next packet of the same flow is rewritten the same way.
        let next = Frame::new(client, vip, if l4 == SYN { ACK } else { l4 });
        lb.expect_all(&[case(
            &format!("{name}: same flow"),
            &next,
            xdp::TX,
            Some(&next.to_real(&real, real_addr)),
            &[Forwarded, FlowHit],
        )]);
    }
}

#[test]
fn ipv4_udp_without_checksum_keeps_none() {
    let mut lb = NatLb::load();
    let real = lb.nat_service(DNS4, proto::UDP, 1, 1, DNS4_REAL, INGRESS_IFINDEX);
    let request = Frame::new(CLIENT4, DNS4, L4::Udp).without_udp_checksum();
    let forwarded = request.to_real(&real, DNS4_REAL);
    lb.expect_all(&[case(
        "IPv4 UDP with checksum 0",
        &request,
        xdp::TX,
        Some(&forwarded),
        &[Forwarded, FlowNew],
    )]);
    // The same flow again, to look at the checksum field itself.
    let (_, out) = lb.try_run(&request.bytes()).expect("BPF_PROG_TEST_RUN");
    assert_eq!(
        assert_checksums_valid("checksum 0", &out),
        Some(0),
        "the UDP checksum must stay 0"
    );
}

/// A real configured without a port keeps the port the client asked for.
#[test]
fn real_without_port_keeps_the_service_port() {
    let mut lb = NatLb::load();
    let mut real = lb.nat_service(WEB4, proto::TCP, 1, 1, "198.18.1.1:80", INGRESS_IFINDEX);
    real.port_be = 0;
    lb.set_real(1, real);
    let request = Frame::new(CLIENT4, WEB4, SYN);
    let forwarded = request.to_real(&real, "198.18.1.1:80");
    lb.expect_all(&[case(
        "real port 0",
        &request,
        xdp::TX,
        Some(&forwarded),
        &[Forwarded, FlowNew],
    )]);
    let (key, expected) = expected_reply_entry(&request, 1, "198.18.1.1:80");
    assert_eq!(lb.nat_reply(&key), Some(expected));
}

/// TTL / hop limit 1 would expire on the balancer: left to the kernel,
/// untouched, so it answers "time exceeded"; no reverse entry.
#[test]
fn expiring_requests_are_passed_unchanged() {
    let mut lb = NatLb::load();
    let real = lb.nat_service(WEB4, proto::TCP, 1, 1, WEB4_REAL, INGRESS_IFINDEX);
    lb.nat_service(WEB6, proto::TCP, 2, 2, WEB6_REAL, INGRESS_IFINDEX);
    let v4 = Frame::new(CLIENT4, WEB4, SYN).ttl(1);
    let v6 = Frame::new(CLIENT6, WEB6, SYN).ttl(1);
    lb.expect_all(&[
        case(
            "IPv4 TTL 1",
            &v4,
            xdp::PASS,
            None,
            &[PassTtlExceeded, FlowNew],
        ),
        case(
            "IPv6 hop limit 1",
            &v6,
            xdp::PASS,
            None,
            &[PassTtlExceeded, FlowNew],
        ),
    ]);
    assert_eq!(
        lb.nat_reply(&expected_reply_entry(&v4, 1, WEB4_REAL).0),
        None
    );
    assert_eq!(
        lb.nat_reply(&expected_reply_entry(&v6, 2, WEB6_REAL).0),
        None
    );
    // TTL 2 leaves with 1: still forwarded.
    let v4 = Frame::new(CLIENT4, WEB4, SYN).ttl(2);
    lb.expect_all(&[case(
        "IPv4 TTL 2",
        &v4,
        xdp::TX,
        Some(&v4.to_real(&real, WEB4_REAL)),
        &[Forwarded, FlowNew],
    )]);
}

#[test]
fn real_without_next_hop_is_dropped() {
    let mut lb = NatLb::load();
    let mut real = lb.nat_service(WEB4, proto::TCP, 1, 1, WEB4_REAL, INGRESS_IFINDEX);
    real.flags = REAL_ACTIVE;
    lb.set_real(1, real);
    let request = Frame::new(CLIENT4, WEB4, SYN);
    lb.expect_all(&[case(
        "no next hop",
        &request,
        xdp::DROP,
        None,
        &[DropNoNextHop, FlowNew],
    )]);
}

/// The reverse entry lives in an LRU of its own: if it was evicted while
/// the flow survived, the next request that refreshes the flow (a state
/// change, or its once-a-second timestamp) writes it again; the requests
/// in between do not look.
#[test]
fn missing_reverse_entry_is_written_again() {
    let mut lb = NatLb::load();
    let real = lb.nat_service(WEB4, proto::TCP, 1, 1, WEB4_REAL, INGRESS_IFINDEX);
    let syn = Frame::new(CLIENT4, WEB4, SYN);
    let ack = Frame::new(CLIENT4, WEB4, ACK);
    let (key, expected) = expected_reply_entry(&syn, 1, WEB4_REAL);
    lb.expect_all(&[case(
        "SYN",
        &syn,
        xdp::TX,
        Some(&syn.to_real(&real, WEB4_REAL)),
        &[Forwarded, FlowNew],
    )]);
    lb.forget_nat_reply(&key);
    lb.expect_all(&[case(
        "ACK after eviction (established now)",
        &ack,
        xdp::TX,
        Some(&ack.to_real(&real, WEB4_REAL)),
        &[Forwarded, FlowHit],
    )]);
    assert_eq!(lb.nat_reply(&key), Some(expected));

    lb.forget_nat_reply(&key);
    let next_ack = [case(
        "ACK",
        &ack,
        xdp::TX,
        Some(&ack.to_real(&real, WEB4_REAL)),
        &[Forwarded, FlowHit],
    )];
    lb.expect_all(&next_ack);
    assert_eq!(
        lb.nat_reply(&key),
        None,
        "within the second: not looked for"
    );
    lb.age_flow(&syn.key(), 2);
    lb.expect_all(&next_ack);
    assert_eq!(lb.nat_reply(&key), Some(expected), "on the refresh");
}

/// A NAT flow's replies need its entries, so the flood guard never holds
/// one back: past the limit (one a second here), new NAT connections are
/// still recorded, with their reverse entries.
#[test]
fn nat_flows_are_recorded_past_the_flood_guard_limit() {
    pin_to_current_cpu();
    let mut lb = NatLb::load();
    lb.set_flood_guard(1);
    let real = lb.nat_service(WEB4, proto::TCP, 1, 1, WEB4_REAL, INGRESS_IFINDEX);
    for port in 40_000..40_003 {
        let client = format!("198.19.7.7:{port}");
        let syn = Frame::new(&client, WEB4, SYN);
        lb.expect_all(&[case(
            &format!("{client}: SYN"),
            &syn,
            xdp::TX,
            Some(&syn.to_real(&real, WEB4_REAL)),
            &[Forwarded, FlowNew],
        )]);
        assert!(lb.flow(&syn.key()).is_some(), "{client}: flow recorded");
        let (key, expected) = expected_reply_entry(&syn, 1, WEB4_REAL);
        assert_eq!(
            lb.nat_reply(&key),
            Some(expected),
            "{client}: reverse entry"
        );
    }
}
