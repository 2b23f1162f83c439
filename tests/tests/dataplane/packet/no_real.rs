//! No usable real, no next hop, reals behind other interfaces.

use lb_common::GlobalCounter::*;
use lb_common::{NO_REAL, REAL_ACTIVE, REAL_NEXT_HOP_KNOWN, proto};
use lb_tests::frames::Packet;

use crate::{
    addresses::{CLIENT4, WEB4},
    harness::{
        Case, INGRESS_IFINDEX, Lb, MaglevRow, add_veth_pair, delta, in_private_netns, traffic,
    },
};

#[test]
fn packets_without_a_usable_real_or_next_hop_are_dropped() {
    let mut lb = Lb::load();
    // Service 1: an empty row (all slots NO_REAL).
    lb.service(WEB4, proto::TCP, 1);
    lb.set_maglev_row(1, &MaglevRow::all(NO_REAL));
    // Service 2: its only real is configured but not active.
    lb.service("198.18.0.10:443", proto::TCP, 2);
    let mut inactive = crate::harness::real(20, 2, lb_tests::frames::ip("198.18.1.20"));
    inactive.flags = REAL_NEXT_HOP_KNOWN;
    lb.set_real(20, inactive);
    lb.set_maglev_row(2, &MaglevRow::all(20));
    // Service 3: its row points at a real of service 2 (a stale row).
    lb.service("198.18.0.10:8443", proto::TCP, 3);
    lb.set_real(
        21,
        crate::harness::real(21, 2, lb_tests::frames::ip("198.18.1.21")),
    );
    lb.set_maglev_row(3, &MaglevRow::all(21));
    // Service 4: its real's MAC is not resolved yet.
    lb.service("198.18.0.10:25", proto::TCP, 4);
    let mut unresolved = crate::harness::real(30, 4, lb_tests::frames::ip("198.18.1.30"));
    unresolved.flags = REAL_ACTIVE;
    lb.set_real(30, unresolved);
    lb.set_maglev_row(4, &MaglevRow::all(30));

    let empty = Packet::tcp_syn(CLIENT4, WEB4).bytes();
    let before = lb.service_counters(1);
    lb.expect_all(&[
        Case::drop(
            "SYN to a service with an empty row",
            empty.clone(),
            DropNoReal,
        ),
        Case::drop(
            "SYN to a service whose real is inactive",
            Packet::tcp_syn(CLIENT4, "198.18.0.10:443").bytes(),
            DropNoReal,
        ),
        Case::drop(
            "SYN to a service whose row names another service's real",
            Packet::tcp_syn(CLIENT4, "198.18.0.10:8443").bytes(),
            DropNoReal,
        ),
        Case::drop(
            "ACK (no flow entry) to a service with an empty row",
            Packet::tcp_ack(CLIENT4, WEB4).bytes(),
            DropNoReal,
        ),
    ]);
    assert_eq!(
        delta(lb.service_counters(1), before),
        traffic(2, 2 * empty.len(), 0, 2),
        "service counters count the dropped packets"
    );

    // The flow is recorded before forwarding finds no next hop (the next
    // packet will stick to the same real once its MAC is known).
    let no_next_hop = Packet::tcp_syn(CLIENT4, "198.18.0.10:25");
    let real_before = lb.real_counters(30);
    lb.expect(
        &Case::drop(
            "SYN to a real without a known next hop",
            no_next_hop.bytes(),
            DropNoNextHop,
        )
        .counts(FlowNew),
    );
    assert_eq!(
        delta(lb.real_counters(30), real_before),
        traffic(1, no_next_hop.bytes().len(), 0, 1),
        "real counters count the drop"
    );
}

#[test]
fn real_behind_another_interface_is_redirected_through_the_devmap() {
    // A private namespace: its loopback (ifindex 1) is the ingress of the
    // test run, and the veth pair disappears with it.
    in_private_netns(|| {
        // Only `egress` goes into LB_TX_PORTS; its peer stands for an
        // interface the daemon never attached to.
        let (egress, unmapped) = add_veth_pair("lbfx-egress", "lbfx-unmapped");
        assert_ne!(egress, INGRESS_IFINDEX);

        let mut lb = Lb::load();
        // As the daemon does when it attaches to an interface.
        lb.add_tx_port(egress, egress);
        let row = lb.service_with_three_reals(WEB4, proto::TCP, 1, 1);
        for id in 1..=3 {
            let mut behind_egress = *lb.real(id);
            behind_egress.ifindex = egress;
            lb.set_real(id, behind_egress);
        }
        lb.service("198.18.0.10:443", proto::TCP, 2);
        let mut behind_unmapped = crate::harness::real(10, 2, lb_tests::frames::ip("198.18.1.10"));
        behind_unmapped.ifindex = unmapped;
        lb.set_real(10, behind_unmapped);
        lb.set_maglev_row(2, &MaglevRow::all(10));

        let syn = Packet::tcp_syn(CLIENT4, WEB4);
        let real = lb.real(row.predict(&syn.flow_key()));
        let unmapped_syn = Packet::tcp_syn(CLIENT4, "198.18.0.10:443");
        lb.expect_all(&[
            Case::redirect("real behind another interface", &syn, real).counts(FlowNew),
            // The same frame arriving on the real's own interface is sent
            // back out of it; arriving on a third one, it is redirected.
            Case::tx("real behind the ingress interface itself", &syn, real)
                .ingress(egress)
                .counts(FlowNew),
            Case::redirect("real behind another, non-loopback ingress", &syn, real)
                .ingress(unmapped)
                .counts(FlowNew),
            // The MACs are already rewritten when the redirect fails; the
            // frame is dropped, so those bytes go nowhere.
            Case::drop(
                "real behind an interface missing from LB_TX_PORTS",
                unmapped_syn.bytes(),
                DropRedirectFailed,
            )
            .counts(FlowNew)
            .output(unmapped_syn.forwarded_to(lb.real(10)).bytes()),
        ]);
    });
}
