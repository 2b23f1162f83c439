//! Traffic that is not for a service passes unchanged.

use lb_common::GlobalCounter::*;
use lb_common::proto;
use lb_tests::frames::{Packet, arp_request};

use super::{CLIENT4_IP, CLIENT6_IP, OTHER_WEB4, OTHER_WEB6, OTHER4, OTHER6};
use crate::{
    addresses::{CLIENT4, CLIENT6, VIP4, VIP6, WEB4, WEB6},
    harness::{Case, Lb},
};

#[test]
fn traffic_that_is_not_for_a_service_passes_unchanged() {
    let mut lb = Lb::load();
    lb.service_with_three_reals(WEB4, proto::TCP, 1, 1);
    lb.service_with_three_reals(WEB6, proto::TCP, 2, 4);
    // Echo replies off: pings to a VIP are then the host's (`icmp::echo`
    // covers the data plane answering them).
    lb.set_settings(lb_common::Settings {
        flags: lb_common::SETTINGS_NO_ECHO_REPLY,
        ..lb_common::Settings::IPVS_DEFAULTS
    });

    lb.expect_all(&[
        Case::pass(
            "IPv4 TCP to a non-VIP",
            Packet::tcp_syn(CLIENT4, OTHER_WEB4).bytes(),
            PassNotVip,
        ),
        Case::pass(
            "IPv6 TCP to a non-VIP",
            Packet::tcp_syn(CLIENT6, OTHER_WEB6).bytes(),
            PassNotVip,
        ),
        Case::pass(
            "IPv4 UDP to a non-VIP",
            Packet::udp(CLIENT4, "198.18.0.99:53").bytes(),
            PassNotVip,
        ),
        Case::pass(
            "ICMP echo to a non-VIP",
            Packet::icmp_echo(CLIENT4_IP, OTHER4).bytes(),
            PassNotVip,
        ),
        Case::pass(
            "ICMPv6 echo to a non-VIP",
            Packet::icmp_echo(CLIENT6_IP, OTHER6).bytes(),
            PassNotVip,
        ),
        Case::pass("ARP who-has the VIP", arp_request(VIP4), PassNotIp),
        Case::pass(
            "TCP to a VIP port without a service",
            Packet::tcp_syn(CLIENT4, "198.18.0.10:81").bytes(),
            PassNoService,
        ),
        Case::pass(
            "UDP to a TCP-only VIP port",
            Packet::udp(CLIENT4, WEB4).bytes(),
            PassNoService,
        ),
        Case::pass(
            "IPv6 TCP to a VIP port without a service",
            Packet::tcp_syn(CLIENT6, "[fd00::10]:22").bytes(),
            PassNoService,
        ),
        Case::pass(
            "ICMP echo to the IPv4 VIP with echo replies off",
            Packet::icmp_echo(CLIENT4_IP, VIP4).bytes(),
            PassOtherProtocol,
        ),
        Case::pass(
            "ICMPv6 echo to the IPv6 VIP with echo replies off",
            Packet::icmp_echo(CLIENT6_IP, VIP6).bytes(),
            PassOtherProtocol,
        ),
    ]);
}
