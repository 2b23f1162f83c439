//! Echo requests to a VIP answered from the VIP, other ICMP to a VIP left
//! to the host, and the setting that turns replies off.

use etherparse::{Icmpv4Type, Icmpv6Type, PacketBuilder, icmpv4, icmpv6};
use lb_common::GlobalCounter::*;
use lb_common::{
    Addr, Family, GlobalCounter, SETTINGS_NO_ECHO_REPLY, Settings, VipInfo, VipKey, proto,
};
use lb_tests::frames::{LB_MAC, Packet, ROUTER_MAC, ip, sa};

use super::{
    ANSWER_TTL, CLIENT4, CLIENT6, ROUTER4, ROUTER6, VIP4, VIP6, WEB4, WEB6,
    checks::{expect_icmp_out, tx},
    frames::{frame, icmp4, icmp6, inbound, ip_headers, tcp},
    services::open_flow,
};
use crate::harness::{Case, Lb, xdp};

fn echo_request4(src: &str, dst: &str, ttl: u8) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ip(ip_headers(ip(src), ip(dst), ttl))
        .icmpv4_echo_request(0x0107, 3)
        .write(&mut out, b"are you there?")
        .expect("echo request");
    out
}

fn echo_reply4(src: &str, dst: &str) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ip(ip_headers(ip(src), ip(dst), ANSWER_TTL))
        .icmpv4_echo_reply(0x0107, 3)
        .write(&mut out, b"are you there?")
        .expect("echo reply");
    out
}

fn echo_request6(src: &str, dst: &str, ttl: u8) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ip(ip_headers(ip(src), ip(dst), ttl))
        .icmpv6_echo_request(0x0107, 3)
        .write(&mut out, b"are you there?")
        .expect("echo request");
    out
}

fn echo_reply6(src: &str, dst: &str) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ip(ip_headers(ip(src), ip(dst), ANSWER_TTL))
        .icmpv6_echo_reply(0x0107, 3)
        .write(&mut out, b"are you there?")
        .expect("echo reply");
    out
}

#[test]
fn echo_requests_to_a_vip_are_answered_from_the_vip() {
    let mut lb = Lb::load();
    lb.service(WEB4, proto::TCP, 1);
    lb.service(WEB6, proto::TCP, 2);
    let client4 = sa(CLIENT4).ip().to_string();
    let client6 = sa(CLIENT6).ip().to_string();
    let back = |packet: Vec<u8>| frame(ROUTER_MAC, LB_MAC, None, &packet);

    expect_icmp_out(
        &mut lb,
        &[
            tx(
                "ICMP echo request to the IPv4 VIP",
                inbound(&echo_request4(&client4, VIP4, 57)),
                back(echo_reply4(VIP4, &client4)),
                &[IcmpEchoReplied],
            ),
            tx(
                "ICMPv6 echo request to the IPv6 VIP",
                inbound(&echo_request6(&client6, VIP6, 57)),
                back(echo_reply6(VIP6, &client6)),
                &[IcmpEchoReplied],
            ),
            tx(
                "802.1Q-tagged echo request",
                frame(
                    LB_MAC,
                    ROUTER_MAC,
                    Some(7),
                    &echo_request4(&client4, VIP4, 1),
                ),
                frame(ROUTER_MAC, LB_MAC, Some(7), &echo_reply4(VIP4, &client4)),
                &[IcmpEchoReplied],
            ),
        ],
    );
    // IPv4 options (a record route, say) are the host's to honour.
    let with_options = Packet::icmp_echo(&client4, VIP4).ipv4_options(&[1, 1, 1, 0]);
    lb.expect(&Case::pass(
        "echo request with IPv4 options",
        with_options.bytes(),
        PassOtherProtocol,
    ));
}

#[test]
fn other_icmp_to_a_vip_is_left_to_the_host() {
    let mut lb = Lb::load();
    lb.service_with_three_reals(WEB4, proto::TCP, 1, 1);
    lb.service_with_three_reals(WEB6, proto::TCP, 2, 4);
    // Known flows: a parameter problem quoting one would be relayed if the
    // type were.
    open_flow(&mut lb, &Packet::tcp_syn(CLIENT4, WEB4));
    open_flow(&mut lb, &Packet::tcp_syn(CLIENT6, WEB6));
    let quoted4 = tcp(WEB4, CLIENT4, 64, 0);
    let quoted6 = tcp(WEB6, CLIENT6, 64, 0);
    let client4 = sa(CLIENT4).ip().to_string();
    let client6 = sa(CLIENT6).ip().to_string();
    let parameter_problem4 =
        Icmpv4Type::ParameterProblem(icmpv4::ParameterProblemHeader::PointerIndicatesError(0));
    let parameter_problem6 = Icmpv6Type::ParameterProblem(icmpv6::ParameterProblemHeader {
        code: icmpv6::ParameterProblemCode::ErroneousHeaderField,
        pointer: 0,
    });
    let solicitation = Icmpv6Type::NeighborSolicitation;

    let pass = |name: &str, packet: Vec<u8>| Case::pass(name, inbound(&packet), PassOtherProtocol);
    lb.expect_all(&[
        pass("echo reply to the IPv4 VIP", echo_reply4(&client4, VIP4)),
        pass("echo reply to the IPv6 VIP", echo_reply6(&client6, VIP6)),
        pass(
            "parameter problem quoting a flow (not relayed)",
            icmp4(ROUTER4, VIP4, 64, parameter_problem4, &quoted4),
        ),
        pass(
            "ICMPv6 parameter problem quoting a flow (not relayed)",
            icmp6(ROUTER6, VIP6, 64, parameter_problem6, &quoted6),
        ),
        pass(
            "neighbour solicitation for the IPv6 VIP",
            icmp6(ROUTER6, VIP6, 255, solicitation, &[0; 20]),
        ),
    ]);
}

/// A balancer with VIPs but no service behind them, and the settings
/// under test: all the echo answer reads.
struct SettingsRig {
    lb: Lb,
}

impl SettingsRig {
    fn load(flags: u32, vips: &[&str]) -> Self {
        let mut lb = Lb::load();
        lb.set_settings(Settings {
            flags,
            ..Settings::IPVS_DEFAULTS
        });
        for vip in vips {
            let address = ip(vip);
            let key = VipKey {
                addr: Addr::from(address),
                family: Family::of(&address) as u8,
                _pad: [0; 3],
            };
            lb.maps_mut()
                .vips
                .insert(key, VipInfo { services: 1 }, 0)
                .expect("insert VIP");
        }
        Self { lb }
    }

    fn counter(&self, counter: GlobalCounter) -> u64 {
        self.lb.global_counter(counter)
    }

    /// The action, the frame out, and how far `counter` moved.
    fn run(&mut self, frame: &[u8], counter: GlobalCounter) -> (u32, Vec<u8>, u64) {
        let before = self.counter(counter);
        let (action, out) = self.lb.try_run(frame).expect("test run");
        (action, out, self.counter(counter) - before)
    }
}

#[test]
fn echo_requests_go_to_the_host_when_replies_are_turned_off() {
    let client4 = sa(CLIENT4).ip().to_string();
    let client6 = sa(CLIENT6).ip().to_string();
    let requests = [
        inbound(&echo_request4(&client4, VIP4, 57)),
        inbound(&echo_request6(&client6, VIP6, 57)),
    ];

    let mut off = SettingsRig::load(SETTINGS_NO_ECHO_REPLY, &[VIP4, VIP6]);
    for request in &requests {
        assert_eq!(
            off.run(request, PassOtherProtocol),
            (xdp::PASS, request.clone(), 1),
            "with SETTINGS_NO_ECHO_REPLY the host gets the request as it came"
        );
        assert_eq!(off.counter(IcmpEchoReplied), 0);
    }
    // The same rig without the flag answers: the pass above is the flag's.
    let mut on = SettingsRig::load(0, &[VIP4, VIP6]);
    for request in &requests {
        let (action, _, replied) = on.run(request, IcmpEchoReplied);
        assert_eq!((action, replied), (xdp::TX, 1));
    }
}
