//! TUN forwarding through the compiled program: every family combination
//! of inner and outer header, built independently with etherparse.

use etherparse::Ipv4Header;
use lb_common::{Addr, ForwardingMethod, GlobalCounter, Real, proto};
use lb_tests::frames::{Packet, ip, tunnelled};

use crate::addresses::{CLIENT4, CLIENT6, TUNNEL_SRC4, TUNNEL_SRC6, WEB4, WEB6};
use crate::harness::{Case, Lb, MaglevRow, real, xdp};

/// A TCP TUN service at `vip` whose every slot goes to one real at `real_addr`.
fn tun_service(lb: &mut Lb, vip: &str, real_addr: &str, mtu: u16) -> Real {
    tun_service_for(lb, vip, proto::TCP, real_addr, mtu)
}

fn tun_service_for(lb: &mut Lb, vip: &str, protocol: u8, real_addr: &str, mtu: u16) -> Real {
    lb.service(vip, protocol, 1);
    let address = ip(real_addr);
    let mut entry = real(1, 1, address);
    entry.forwarding = ForwardingMethod::Tunnel as u8;
    entry.tunnel_src = Addr::from(ip(if address.is_ipv4() {
        TUNNEL_SRC4
    } else {
        TUNNEL_SRC6
    }));
    entry.mtu = mtu;
    lb.set_real(1, entry);
    lb.set_maglev_row(1, &MaglevRow::all(1));
    entry
}

fn tx_case(name: &str, packet: &Packet, real: &Real) -> Case {
    Case::tx(name, packet, real).output(tunnelled(&packet.bytes(), real, &packet.flow_key()))
}

#[test]
fn every_family_combination_is_encapsulated_with_the_inner_tos_and_ttl() {
    for (vip, client, real_addr, name) in [
        (WEB4, CLIENT4, "198.18.5.11", "IPv4 in IPv4"),
        (WEB6, CLIENT6, "fd00:5::11", "IPv6 in IPv6"),
        (WEB4, CLIENT4, "fd00:5::11", "IPv4 in IPv6"),
        (WEB6, CLIENT6, "198.18.5.11", "IPv6 in IPv4"),
    ] {
        let mut lb = Lb::load();
        let real = tun_service(&mut lb, vip, real_addr, 1500);
        let syn = Packet::tcp_syn(client, vip);
        lb.expect(&tx_case(&format!("{name}: SYN"), &syn, &real).counts(GlobalCounter::FlowNew));
        let tagged = Packet::tcp_ack(client, vip).vlan(42);
        lb.expect(
            &tx_case(&format!("{name}: VLAN-tagged ACK"), &tagged, &real)
                .counts(GlobalCounter::FlowHit),
        );
    }
}

#[test]
fn udp_is_encapsulated_in_every_family_combination() {
    for (vip, client, real_addr, name) in [
        ("198.18.0.10:53", CLIENT4, "198.18.5.11", "UDP/IPv4 in IPv4"),
        ("[fd00::10]:53", CLIENT6, "fd00:5::11", "UDP/IPv6 in IPv6"),
        ("198.18.0.10:53", CLIENT4, "fd00:5::11", "UDP/IPv4 in IPv6"),
        ("[fd00::10]:53", CLIENT6, "198.18.5.11", "UDP/IPv6 in IPv4"),
    ] {
        let mut lb = Lb::load();
        let entry = tun_service_for(&mut lb, vip, proto::UDP, real_addr, 1500);
        let datagram = Packet::udp(client, vip);
        lb.expect(&tx_case(name, &datagram, &entry).counts(GlobalCounter::FlowNew));
    }
}

#[test]
fn dscp_ecn_and_dont_fragment_are_copied_to_the_outer_header() {
    let mut lb = Lb::load();
    let real = tun_service(&mut lb, WEB4, "198.18.5.11", 1500);
    let packet = Packet::tcp_syn(CLIENT4, WEB4).dont_fragment();
    let mut frame = packet.bytes();
    // DSCP AF41 (34) with ECT(0): the TOS byte 0x8a.
    frame[15] = 0x8a;
    let (mut header, _) = Ipv4Header::from_slice(&frame[14..]).unwrap();
    header.header_checksum = header.calc_header_checksum();
    let mut fixed = Vec::new();
    header.write(&mut fixed).unwrap();
    frame[14..34].copy_from_slice(&fixed);
    let outer = lb.try_run(&frame).expect("test run");
    assert_eq!(outer.0, xdp::TX);
    let out = &outer.1;
    let (outer_ip, _) = Ipv4Header::from_slice(&out[14..]).expect("outer IPv4");
    assert_eq!((outer_ip.dscp.value() << 2) | outer_ip.ecn.value(), 0x8a);
    assert!(outer_ip.dont_fragment);
    assert_eq!(outer_ip.header_checksum, outer_ip.calc_header_checksum());
    assert_eq!(outer_ip.source, [198, 18, 0, 1]);
    assert_eq!(outer_ip.destination, [198, 18, 5, 11]);
    assert_eq!(&out[34..], &frame[14..], "the inner packet is untouched");
    assert_eq!(&out[..6], &real.dst_mac);
}

#[test]
fn a_packet_that_fits_the_mtu_exactly_is_encapsulated() {
    let mut lb = Lb::load();
    let syn = Packet::tcp_syn(CLIENT4, WEB4);
    let inner_len = syn.bytes().len() - 14;
    let real = tun_service(&mut lb, WEB4, "198.18.5.11", (inner_len + 20) as u16);
    lb.expect(&tx_case("inner + 20 bytes == MTU", &syn, &real).counts(GlobalCounter::FlowNew));
}

#[test]
fn a_real_without_a_next_hop_is_not_tunnelled_to() {
    let mut lb = Lb::load();
    let mut real = tun_service(&mut lb, WEB6, "fd00:5::11", 1500);
    real.flags &= !lb_common::REAL_NEXT_HOP_KNOWN;
    lb.set_real(1, real);
    let syn = Packet::tcp_syn(CLIENT6, WEB6);
    lb.expect(
        &Case::drop("no next hop", syn.bytes(), GlobalCounter::DropNoNextHop)
            .counts(GlobalCounter::FlowNew),
    );
}
