//! The rig of the reply tests: a private network namespace with
//! interfaces, routes and permanent neighbour entries, so `bpf_fib_lookup`
//! answers from tables the test wrote, and the NAT services of the cases.

use std::{collections::BTreeMap, net::SocketAddr, process::Command};

use lb_common::GlobalCounter::*;
use lb_common::{ConnectionState, GlobalCounter, Real, TrafficCounters, proto};
use lb_tests::frames::sa;

use super::{
    DNS4, DNS4_REAL, DNS6, DNS6_REAL, WEB4, WEB4_REAL, WEB6, WEB6_REAL,
    frames::{ACK, Frame, L4, SYN},
    nat_lb::{NatLb, case},
};
use crate::harness::{Case, Lb, add_veth_pair, pin_to_current_cpu, xdp};

/// A NAT service of the rig: VIP:port and its only real's address:port.
/// The service and the real share the id.
#[derive(Clone, Copy)]
pub(super) struct Svc {
    pub(super) id: u32,
    pub(super) vip: &'static str,
    pub(super) real: &'static str,
}

impl Svc {
    /// The real's and the service's counters (every service of the rig has
    /// one real, with the service's id).
    pub(super) fn counters(self, lb: &Lb) -> (TrafficCounters, TrafficCounters) {
        (lb.real_counters(self.id), lb.service_counters(self.id))
    }
}

pub(super) const WEB4_SVC: Svc = Svc {
    id: 1,
    vip: WEB4,
    real: WEB4_REAL,
};
pub(super) const DNS4_SVC: Svc = Svc {
    id: 2,
    vip: DNS4,
    real: DNS4_REAL,
};
pub(super) const WEB6_SVC: Svc = Svc {
    id: 3,
    vip: WEB6,
    real: WEB6_REAL,
};
pub(super) const DNS6_SVC: Svc = Svc {
    id: 4,
    vip: DNS6,
    real: DNS6_REAL,
};

/// The outside interface's own MAC: the source of routed replies.
pub(super) const OUTSIDE_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0e, 0x02];
/// The gateway towards the clients: the destination of routed replies.
pub(super) const GATEWAY_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0xfe];
/// Clients behind a gateway without a neighbour entry.
pub(super) const UNRESOLVED_CLIENT4: &str = "198.19.8.7:40000";
pub(super) const UNRESOLVED_CLIENT6: &str = "[fd00:d::7]:40000";
/// Clients nothing routes to.
pub(super) const UNROUTABLE_CLIENT4: &str = "198.18.200.7:40000";
pub(super) const UNROUTABLE_CLIENT6: &str = "[fd00:e::7]:40000";
/// Clients behind a blackhole route.
pub(super) const BLACKHOLED_CLIENT4: &str = "198.19.9.7:40000";
/// Clients behind a path with an MTU of 1280.
pub(super) const NARROW_CLIENT4: &str = "198.19.10.7:40000";
pub(super) const NARROW_CLIENT6: &str = "[fd00:f::7]:40000";

fn ip_cmd(args: &str) {
    let status = Command::new("ip")
        .args(args.split_whitespace())
        .status()
        .expect("running ip(8)");
    assert!(status.success(), "ip {args}: {status}");
}

/// A balancer in a private namespace (the caller's: see
/// `in_private_netns`), between the reals' side (`inside`, where replies
/// come in) and the clients' side (`outside`, towards a gateway whose
/// neighbour entry is permanent), with the four services above.
pub(super) struct Rig {
    pub(super) lb: NatLb,
    pub(super) inside: u32,
    pub(super) outside: u32,
    pub(super) reals: BTreeMap<u32, Real>,
}

impl Rig {
    pub(super) fn new() -> Self {
        let (inside, outside) = add_veth_pair("natfx-in", "natfx-out");
        for command in [
            "link set natfx-out address 02:00:00:00:0e:02",
            "link set natfx-in up",
            "link set natfx-out up",
            "addr add 198.18.1.254/24 dev natfx-in",
            "-6 addr add fd00:1::fe/64 dev natfx-in nodad",
            "addr add 198.18.100.1/24 dev natfx-out",
            "-6 addr add fd00:64::1/64 dev natfx-out nodad",
            // Clients behind a gateway whose MAC is known for good.
            "route add 198.19.7.0/24 via 198.18.100.254 dev natfx-out",
            "-6 route add fd00:c::/64 via fd00:64::fe dev natfx-out",
            "neigh add 198.18.100.254 lladdr 02:00:00:00:00:fe nud permanent dev natfx-out",
            "-6 neigh add fd00:64::fe lladdr 02:00:00:00:00:fe nud permanent dev natfx-out",
            // Behind a gateway nobody resolved yet.
            "route add 198.19.8.0/24 via 198.18.100.253 dev natfx-out",
            "-6 route add fd00:d::/64 via fd00:64::fd dev natfx-out",
            "route add blackhole 198.19.9.0/24",
            // A narrow path (the MTU locked, so IPv4 forwarding honours it).
            "route add 198.19.10.0/24 via 198.18.100.254 dev natfx-out mtu lock 1280",
            "-6 route add fd00:f::/64 via fd00:64::fe dev natfx-out mtu lock 1280",
        ] {
            ip_cmd(command);
        }
        // `bpf_fib_lookup` answers "forwarding disabled" without these.
        for sysctl in [
            "/proc/sys/net/ipv4/ip_forward",
            "/proc/sys/net/ipv6/conf/all/forwarding",
        ] {
            std::fs::write(sysctl, "1").unwrap_or_else(|e| panic!("{sysctl}: {e}"));
        }
        let mut lb = NatLb::load();
        // As the daemon does for every interface it attaches to.
        lb.add_tx_port(inside, inside);
        lb.add_tx_port(outside, outside);
        let mut reals = BTreeMap::new();
        for (svc, protocol) in [
            (WEB4_SVC, proto::TCP),
            (DNS4_SVC, proto::UDP),
            (WEB6_SVC, proto::TCP),
            (DNS6_SVC, proto::UDP),
        ] {
            let real = lb.nat_service(svc.vip, protocol, svc.id, svc.id, svc.real, inside);
            reals.insert(svc.id, real);
        }
        Self {
            lb,
            inside,
            outside,
            reals,
        }
    }

    /// Sends a client's packet through the balancer (which records the
    /// reverse entry), checking that it is redirected to the real.
    pub(super) fn request(&mut self, svc: Svc, client: &str, l4: L4) {
        let request = Frame::new(client, svc.vip, l4);
        let forwarded = request.to_real(&self.reals[&svc.id], svc.real);
        let counters = if l4 == SYN || l4 == L4::Udp {
            [Forwarded, FlowNew]
        } else {
            [Forwarded, FlowHit]
        };
        let mut case = case(
            &format!("request {client} -> {}", svc.vip),
            &request,
            xdp::REDIRECT,
            Some(&forwarded),
            &counters,
        );
        case.ingress = Some(self.outside);
        self.lb.expect_all(&[case]);
    }

    pub(super) fn expect_all(&mut self, cases: Vec<Case>) {
        let inside = self.inside;
        let cases: Vec<Case> = cases
            .into_iter()
            .map(|case| Case {
                ingress: Some(inside),
                ..case
            })
            .collect();
        self.lb.expect_all(&cases);
    }

    /// The forward flow's state.
    pub(super) fn state(&self, svc: Svc, client: &str) -> Option<ConnectionState> {
        let key = Frame::new(client, svc.vip, SYN).key();
        let flow = self.lb.flow(&key).expect("forward flow");
        ConnectionState::from_u8(flow.state)
    }
}

/// The real's packet to `client`, as it reaches the balancer.
pub(super) fn reply(svc: Svc, client: &str, l4: L4) -> Frame {
    Frame::from_real(svc.id, svc.real, client, l4)
}

/// Rewritten to come from the VIP and redirected to the client's gateway
/// with the MACs the route lookup returned.
pub(super) fn routed(name: &str, reply: &Frame, svc: Svc) -> Case {
    let translated = reply.sent_from_vip(svc.vip, OUTSIDE_MAC, GATEWAY_MAC);
    case(name, reply, xdp::REDIRECT, Some(&translated), &[NatReplies])
}

/// Rewritten to come from the VIP and passed to the kernel (the MACs are
/// its business then).
pub(super) fn passed_translated(
    name: &str,
    reply: &Frame,
    svc: Svc,
    counter: GlobalCounter,
) -> Case {
    let translated = reply.sent_from_vip(svc.vip, reply.src_mac, reply.dst_mac);
    case(name, reply, xdp::PASS, Some(&translated), &[counter])
}

impl Rig {
    /// An established TCP flow from `client` whose first data reply (from
    /// the reply path) filled this CPU's reply cache; its reverse entry is
    /// then removed behind the cache's back, as lbd never does without
    /// bumping the generation. A reply the cache answers is still routed
    /// to the client; one that takes the reply path is not a reply any
    /// more, and passes untouched.
    pub(super) fn cached_flow(&mut self, svc: Svc, client: &str) -> Frame {
        pin_to_current_cpu();
        self.request(svc, client, SYN);
        self.request(svc, client, ACK);
        let data = reply(svc, client, ACK);
        self.expect_all(vec![routed("first data reply", &data, svc)]);
        let reverse = data.key();
        self.lb.forget_nat_reply(&reverse);
        data
    }
}

/// `client` ("addr:port") with its port moved up by `by`.
pub(super) fn client_port(client: &'static str, by: u16) -> &'static str {
    let address = sa(client);
    let moved = SocketAddr::new(address.ip(), address.port() + by).to_string();
    Box::leak(moved.into_boxed_str())
}
