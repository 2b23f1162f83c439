//! Replies, routed by the kernel's FIB in a private namespace: rewritten
//! to the VIP and routed to the client, or left to the kernel.

use lb_common::GlobalCounter::*;
use lb_common::{ConnectionState, TrafficCounters};

use super::{
    CLIENT4, CLIENT6,
    frames::{ACK, FIN_ACK, Frame, L4, SYN, SYN_ACK, assert_checksums_valid},
    nat_lb::case,
    reply_rig::{
        BLACKHOLED_CLIENT4, DNS4_SVC, DNS6_SVC, NARROW_CLIENT4, NARROW_CLIENT6, Rig,
        UNRESOLVED_CLIENT4, UNRESOLVED_CLIENT6, UNROUTABLE_CLIENT4, UNROUTABLE_CLIENT6, WEB4_SVC,
        WEB6_SVC, passed_translated, reply, routed,
    },
};
use crate::harness::{Case, delta, in_private_netns, xdp};

/// For each family and protocol: the real's reply is found through the
/// reverse entry, rewritten from real:port to VIP:port (checksums as a
/// frame built from scratch), one hop older, and redirected to the client's
/// gateway with the MACs the FIB lookup returned.
#[test]
fn replies_are_rewritten_to_the_vip_and_routed_to_the_client() {
    in_private_netns(|| {
        let mut rig = Rig::new();
        let flows = [
            ("TCP/IPv4", WEB4_SVC, CLIENT4, SYN, SYN_ACK),
            ("UDP/IPv4", DNS4_SVC, CLIENT4, L4::Udp, L4::Udp),
            ("TCP/IPv6", WEB6_SVC, CLIENT6, SYN, SYN_ACK),
            ("UDP/IPv6", DNS6_SVC, CLIENT6, L4::Udp, L4::Udp),
        ];
        for (name, svc, client, request, answer) in flows {
            rig.request(svc, client, request);
            let answer = reply(svc, client, answer);
            let (real_before, service_before) = svc.counters(&rig.lb);
            rig.expect_all(vec![routed(&format!("{name}: reply"), &answer, svc)]);
            // ipvsadm's OutPkts / OutBytes, for the real and its service.
            let out = TrafficCounters {
                out_packets: 1,
                out_bytes: answer.bytes().len() as u64,
                ..TrafficCounters::default()
            };
            let (real_after, service_after) = svc.counters(&rig.lb);
            assert_eq!(delta(real_after, real_before), out, "{name}: real counters");
            assert_eq!(
                delta(service_after, service_before),
                out,
                "{name}: service counters"
            );
        }

        // IPv4 UDP without a checksum keeps none on the way back too.
        let answer = reply(DNS4_SVC, CLIENT4, L4::Udp).without_udp_checksum();
        rig.expect_all(vec![routed(
            "UDP/IPv4 reply with checksum 0",
            &answer,
            DNS4_SVC,
        )]);
        let (_, out) = rig
            .lb
            .try_run_on(&answer.bytes(), Some(rig.inside))
            .expect("BPF_PROG_TEST_RUN");
        assert_eq!(assert_checksums_valid("checksum 0", &out), Some(0));
    });
}

/// Replies the balancer cannot finish itself, and packets that are not
/// replies at all.
#[test]
fn replies_without_neighbour_or_route_and_non_replies() {
    in_private_netns(|| {
        let mut rig = Rig::new();
        for (svc, client) in [
            (WEB4_SVC, CLIENT4),
            (WEB6_SVC, CLIENT6),
            (WEB4_SVC, UNRESOLVED_CLIENT4),
            (WEB6_SVC, UNRESOLVED_CLIENT6),
            (WEB4_SVC, UNROUTABLE_CLIENT4),
            (WEB6_SVC, UNROUTABLE_CLIENT6),
            (WEB4_SVC, BLACKHOLED_CLIENT4),
        ] {
            rig.request(svc, client, SYN);
        }
        let before = [WEB4_SVC, WEB6_SVC].map(|svc| svc.counters(&rig.lb));
        rig.expect_all(replies_not_routed());
        only_translated_replies_count_out(&rig, before);
    });
}

/// Replies passed translated for want of a neighbour, dropped for want of
/// a route, passed as they came when expiring, and frames that are no
/// replies at all.
fn replies_not_routed() -> Vec<Case> {
    let untouched =
        |name: &str, frame: &Frame, action, counter| case(name, frame, action, None, &[counter]);
    vec![
        passed_translated(
            "IPv4: no neighbour entry for the gateway",
            &reply(WEB4_SVC, UNRESOLVED_CLIENT4, SYN_ACK),
            WEB4_SVC,
            PassNoNeighbour,
        ),
        passed_translated(
            "IPv6: no neighbour entry for the gateway",
            &reply(WEB6_SVC, UNRESOLVED_CLIENT6, SYN_ACK),
            WEB6_SVC,
            PassNoNeighbour,
        ),
        untouched(
            "IPv4: no route",
            &reply(WEB4_SVC, UNROUTABLE_CLIENT4, SYN_ACK),
            xdp::DROP,
            DropNoRoute,
        ),
        untouched(
            "IPv6: no route",
            &reply(WEB6_SVC, UNROUTABLE_CLIENT6, SYN_ACK),
            xdp::DROP,
            DropNoRoute,
        ),
        untouched(
            "IPv4: blackhole route",
            &reply(WEB4_SVC, BLACKHOLED_CLIENT4, SYN_ACK),
            xdp::DROP,
            DropNoRoute,
        ),
        // Left to the kernel as they came: it answers the real with
        // "time exceeded".
        untouched(
            "IPv4: TTL 1",
            &reply(WEB4_SVC, CLIENT4, ACK).ttl(1),
            xdp::PASS,
            PassTtlExceeded,
        ),
        untouched(
            "IPv6: hop limit 1",
            &reply(WEB6_SVC, CLIENT6, ACK).ttl(1),
            xdp::PASS,
            PassTtlExceeded,
        ),
        // From the real, but from a port no request went to.
        untouched(
            "not in LB_NAT_REPLIES",
            &Frame::from_real(1, "198.18.1.1:9999", CLIENT4, ACK),
            xdp::PASS,
            PassNotVip,
        ),
        // The right 5-tuple, but another protocol.
        untouched(
            "UDP from a TCP real's port",
            &reply(WEB4_SVC, CLIENT4, L4::Udp),
            xdp::PASS,
            PassNotVip,
        ),
        // From the real, to a client it has no NAT flow with.
        untouched(
            "to another client",
            &reply(WEB6_SVC, "[fd00:c::8]:40000", ACK),
            xdp::PASS,
            PassNotVip,
        ),
        // Not a NAT real at all: ordinary routed traffic.
        untouched(
            "from a non-NAT-real address",
            &Frame::from_real(9, "198.18.1.99:8080", CLIENT4, ACK),
            xdp::PASS,
            PassNotVip,
        ),
        untouched(
            "from a non-NAT-real IPv6 address",
            &Frame::from_real(9, "[fd00:1::99]:8080", CLIENT6, ACK),
            xdp::PASS,
            PassNotVip,
        ),
    ]
}

/// Out counters: only the replies that went on translated (to the kernel,
/// for want of a neighbour), one per service; not the dropped ones nor
/// those passed as they came.
fn only_translated_replies_count_out(rig: &Rig, before: [(TrafficCounters, TrafficCounters); 2]) {
    for (svc, (real_before, service_before)) in [WEB4_SVC, WEB6_SVC].into_iter().zip(before) {
        let unresolved = if svc.id == WEB4_SVC.id {
            UNRESOLVED_CLIENT4
        } else {
            UNRESOLVED_CLIENT6
        };
        let out = TrafficCounters {
            out_packets: 1,
            out_bytes: reply(svc, unresolved, SYN_ACK).bytes().len() as u64,
            ..TrafficCounters::default()
        };
        let (real_after, service_after) = svc.counters(&rig.lb);
        assert_eq!(delta(real_after, real_before), out, "{}: real", svc.vip);
        assert_eq!(
            delta(service_after, service_before),
            out,
            "{}: service",
            svc.vip
        );
    }
}

/// A reply too big for the path to the client: IPv4 without DF is passed
/// translated (the kernel fragments it); with DF, and IPv6, it is passed as
/// the real sent it, so the kernel's "fragmentation needed" / "packet too
/// big" goes to the real, which can send smaller packets.
#[test]
fn replies_too_big_for_the_path_go_to_the_kernel() {
    in_private_netns(|| {
        let mut rig = Rig::new();
        rig.request(WEB4_SVC, NARROW_CLIENT4, SYN);
        rig.request(WEB6_SVC, NARROW_CLIENT6, SYN);
        let big = reply(WEB4_SVC, NARROW_CLIENT4, ACK).payload_len(1300);
        let big_df = big.clone().dont_fragment();
        let big6 = reply(WEB6_SVC, NARROW_CLIENT6, ACK).payload_len(1300);
        let fitting = reply(WEB4_SVC, NARROW_CLIENT4, ACK)
            .payload_len(1200)
            .dont_fragment();
        rig.expect_all(vec![
            passed_translated(
                "IPv4 without DF: fragmented by the kernel",
                &big,
                WEB4_SVC,
                PassReplyTooBig,
            ),
            case(
                "IPv4 with DF: the real learns the MTU",
                &big_df,
                xdp::PASS,
                None,
                &[PassReplyTooBig],
            ),
            case(
                "IPv6: the real learns the MTU",
                &big6,
                xdp::PASS,
                None,
                &[PassReplyTooBig],
            ),
            routed("IPv4 with DF that fits", &fitting, WEB4_SVC),
        ]);
    });
}

/// Replies advance the forward flow: the real's SYN-ACK leaves it in
/// SYN_RECV (the client's ACK establishes it), and a FIN from the real
/// closes it.
#[test]
fn replies_advance_the_connection_state() {
    in_private_netns(|| {
        let mut rig = Rig::new();
        for (svc, client) in [(WEB4_SVC, CLIENT4), (WEB6_SVC, CLIENT6)] {
            let name = svc.vip;
            rig.request(svc, client, SYN);
            assert_eq!(rig.state(svc, client), Some(ConnectionState::TcpSynSeen));

            let syn_ack = reply(svc, client, SYN_ACK);
            rig.expect_all(vec![routed("SYN-ACK from the real", &syn_ack, svc)]);
            assert_eq!(
                rig.state(svc, client),
                Some(ConnectionState::TcpSynSeen),
                "{name}: the real's SYN-ACK must not establish"
            );

            rig.request(svc, client, ACK);
            assert_eq!(
                rig.state(svc, client),
                Some(ConnectionState::TcpEstablished)
            );

            let data = reply(svc, client, ACK);
            rig.expect_all(vec![routed("data from the real", &data, svc)]);
            assert_eq!(
                rig.state(svc, client),
                Some(ConnectionState::TcpEstablished)
            );

            let fin = reply(svc, client, FIN_ACK);
            rig.expect_all(vec![routed("FIN from the real", &fin, svc)]);
            assert_eq!(
                rig.state(svc, client),
                Some(ConnectionState::TcpClosing),
                "{name}: the real's FIN must close the flow"
            );
        }
    });
}
