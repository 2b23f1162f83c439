//! Scheduling a new connection: TCP over IPv4, UDP and IPv6, port-0
//! services.

use std::collections::BTreeSet;

use lb_common::GlobalCounter::*;
use lb_common::proto;
use lb_tests::frames::Packet;

use super::{TLS6, new_flows::expect_new_flow};
use crate::{
    addresses::{CLIENT4, CLIENT6, DNS4, DNS6, WEB4},
    harness::{Case, Lb},
};

#[test]
fn tcp_syn_to_an_ipv4_vip_goes_to_the_real_maglev_predicts() {
    let mut lb = Lb::load();
    let row = lb.service_with_three_reals(WEB4, proto::TCP, 1, 1);

    // Many clients, so that the prediction has to tell reals apart: with
    // slot % 3 -> real, a data plane that ignored the hash (or hashed other
    // bytes) would not match on all of them.
    let syns: Vec<Packet> = (0..24)
        .map(|i| Packet::tcp_syn(&format!("198.19.{i}.{}:{}", 1 + i, 40_000 + 7 * i), WEB4))
        .collect();
    let predicted: BTreeSet<u32> = syns.iter().map(|p| row.predict(&p.flow_key())).collect();
    assert_eq!(
        predicted,
        BTreeSet::from([1, 2, 3]),
        "the clients should spread over all three reals, or the test proves little"
    );

    for (i, syn) in syns.iter().enumerate() {
        expect_new_flow(&mut lb, &row, 1, &format!("SYN #{i} to {WEB4}"), syn);
    }
}

// ---------------------------------------------------------------------------
// 2. UDP and IPv6
// ---------------------------------------------------------------------------

#[test]
fn udp_and_ipv6_services_are_forwarded_to_the_predicted_real() {
    let mut lb = Lb::load();
    let dns4 = lb.service_with_three_reals(DNS4, proto::UDP, 1, 1);
    let tls6 = lb.service_with_three_reals(TLS6, proto::TCP, 2, 4);
    let dns6 = lb.service_with_three_reals(DNS6, proto::UDP, 3, 7);

    let cases = [
        (1, &dns4, "UDP to an IPv4 VIP", Packet::udp(CLIENT4, DNS4)),
        (
            2,
            &tls6,
            "TCP SYN to an IPv6 VIP",
            Packet::tcp_syn(CLIENT6, TLS6),
        ),
        (3, &dns6, "UDP to an IPv6 VIP", Packet::udp(CLIENT6, DNS6)),
        (
            3,
            &dns6,
            "UDP to an IPv6 VIP, other client",
            Packet::udp("[fd00:c::8]:5353", DNS6),
        ),
    ];
    for (service_id, row, name, packet) in &cases {
        expect_new_flow(&mut lb, row, *service_id, name, packet);
    }

    // A second datagram of a UDP flow is a flow-table hit, not a new flow.
    let udp = Packet::udp(CLIENT4, DNS4);
    let real = lb.real(dns4.predict(&udp.flow_key()));
    let again = Case::tx("second UDP datagram of the flow", &udp, real).counts(FlowHit);
    lb.expect(&again);
}

// ---------------------------------------------------------------------------
// 3. Port-0 services
// ---------------------------------------------------------------------------

#[test]
fn port_zero_service_catches_every_port_and_a_specific_port_wins() {
    let mut lb = Lb::load();
    let any_port = lb.service_with_three_reals("198.18.0.10:0", proto::TCP, 1, 1);
    let https = lb.service_with_three_reals("198.18.0.10:443", proto::TCP, 2, 4);
    let any_port6 = lb.service_with_three_reals("[fd00::10]:0", proto::TCP, 3, 7);

    let to_8080 = Packet::tcp_syn(CLIENT4, "198.18.0.10:8080");
    let to_443 = Packet::tcp_syn(CLIENT4, "198.18.0.10:443");
    let to_22_v6 = Packet::tcp_syn(CLIENT6, "[fd00::10]:22");
    expect_new_flow(
        &mut lb,
        &any_port,
        1,
        "TCP to port 8080 -> port-0 service",
        &to_8080,
    );
    expect_new_flow(
        &mut lb,
        &https,
        2,
        "TCP to port 443 -> its own service",
        &to_443,
    );
    expect_new_flow(
        &mut lb,
        &any_port6,
        3,
        "IPv6 TCP to port 22 -> port-0",
        &to_22_v6,
    );

    // Port 0 is per protocol: it does not make UDP ours.
    lb.expect(&Case::pass(
        "UDP to a VIP with only a TCP port-0 service",
        Packet::udp(CLIENT4, "198.18.0.10:8080").bytes(),
        PassNoService,
    ));
}
