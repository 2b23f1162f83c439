//! The reply cache (lb-ebpf/src/forward/nat/reply_cache.rs): replies it answers,
//! replies it cannot vouch for, and replies it must not cache.

use lb_common::GlobalCounter::*;
use lb_common::TrafficCounters;

use super::{
    CLIENT4, CLIENT6,
    frames::{ACK, FIN_ACK, Frame, SYN},
    nat_lb::case,
    reply_rig::client_port,
    reply_rig::{
        NARROW_CLIENT4, NARROW_CLIENT6, Rig, UNRESOLVED_CLIENT4, UNRESOLVED_CLIENT6, WEB4_SVC,
        WEB6_SVC, passed_translated, reply, routed,
    },
};
use crate::harness::{Case, delta, in_private_netns, pin_to_current_cpu, xdp};

/// Not a reply (its reverse entry is gone): the host's to route.
fn not_a_reply(name: &str, frame: &Frame) -> Case {
    case(name, frame, xdp::PASS, None, &[PassNotVip])
}

#[test]
fn cached_replies_skip_the_reply_path_until_the_daemon_changes_something() {
    in_private_netns(|| {
        let mut rig = Rig::new();
        for (svc, client) in [(WEB4_SVC, CLIENT4), (WEB6_SVC, CLIENT6)] {
            let data = rig.cached_flow(svc, client);
            let before = svc.counters(&rig.lb);
            rig.expect_all(vec![routed(
                &format!("{}: cached reply", svc.vip),
                &data,
                svc,
            )]);
            // Counted as the reply path counts it.
            let out = TrafficCounters {
                out_packets: 1,
                out_bytes: data.bytes().len() as u64,
                ..TrafficCounters::default()
            };
            let after = svc.counters(&rig.lb);
            assert_eq!(delta(after.0, before.0), out, "{}: real counters", svc.vip);
            assert_eq!(
                delta(after.1, before.1),
                out,
                "{}: service counters",
                svc.vip
            );
            // Any length up to the path's MTU.
            for len in [1, 1400] {
                let other_length = reply(svc, client, ACK).payload_len(len);
                rig.expect_all(vec![routed("another length", &other_length, svc)]);
            }

            rig.lb.forget_cached_flows();
            rig.expect_all(vec![not_a_reply("after the daemon's change", &data)]);
        }
    });
}

#[test]
fn replies_the_cache_cannot_vouch_for_take_the_reply_path() {
    in_private_netns(|| {
        let mut rig = Rig::new();
        // Clients behind a path with an MTU of 1,280.
        for (svc, client) in [(WEB4_SVC, NARROW_CLIENT4), (WEB6_SVC, NARROW_CLIENT6)] {
            let data = rig.cached_flow(svc, client);
            rig.expect_all(vec![
                // Within the path's MTU, which the route lookup reported.
                routed("a reply that fits", &data.clone().payload_len(1200), svc),
                // Longer than that: the reply path hands it to the kernel.
                not_a_reply("a reply too big", &data.clone().payload_len(1300)),
                // Expiring: the reply path leaves it to the kernel.
                not_a_reply("TTL 1", &data.clone().ttl(1)),
                // Closing the flow writes its entry.
                not_a_reply("FIN", &reply(svc, client, FIN_ACK)),
                // Another flow's reply.
                not_a_reply(
                    "another client port",
                    &reply(svc, client_port(client, 1), ACK),
                ),
            ]);
            // The forward flow's entry gets its timestamp once a second:
            // a slot answers no longer than that.
            rig.expect_all(vec![routed("within the second", &data, svc)]);
            std::thread::sleep(std::time::Duration::from_millis(1_100));
            rig.expect_all(vec![not_a_reply("a second later", &data)]);
        }
    });
}

#[test]
fn replies_the_program_does_not_send_itself_are_not_cached() {
    in_private_netns(|| {
        let mut rig = Rig::new();
        pin_to_current_cpu();
        for (svc, client) in [
            (WEB4_SVC, UNRESOLVED_CLIENT4),
            (WEB6_SVC, UNRESOLVED_CLIENT6),
        ] {
            rig.request(svc, client, SYN);
            rig.request(svc, client, ACK);
            let data = reply(svc, client, ACK);
            rig.expect_all(vec![passed_translated(
                "no neighbour entry: the kernel forwards it",
                &data,
                svc,
                PassNoNeighbour,
            )]);
            rig.lb.forget_nat_reply(&data.key());
            rig.expect_all(vec![not_a_reply("nothing was cached", &data)]);
        }
    });
}
