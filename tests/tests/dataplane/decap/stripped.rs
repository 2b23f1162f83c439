//! What is stripped to the exact inner frame: the four tunnel kinds, VLAN
//! tags, outer IPv4 options, and the outer header's ECN (RFC 6040).

use etherparse::IpEcn;

use super::{
    CLIENT4, CLIENT6, LB4, REAL4_OTHER_IF, VIP4, VIP6,
    frames::{Inner, Tunnel, decapsulated_frame},
    runner::{Case, load},
};

#[test]
fn each_family_combination_is_stripped_to_the_exact_inner_frame() {
    let Some(mut real) = load() else { return };
    real.expect_all(&[
        Case::stripped("IPv4 in IPv4 (UDP)", &Tunnel::to_real(false, Inner::udp4())),
        Case::stripped("IPv6 in IPv6 (UDP)", &Tunnel::to_real(true, Inner::udp6())),
        Case::stripped(
            "IPv4 in IPv6 (ethertype becomes IPv4)",
            &Tunnel::to_real(true, Inner::udp4()),
        ),
        Case::stripped(
            "IPv6 in IPv4 (ethertype becomes IPv6)",
            &Tunnel::to_real(false, Inner::udp6()),
        ),
        Case::stripped(
            "IPv4 in IPv4 (TCP SYN)",
            &Tunnel::to_real(false, Inner::tcp_syn(CLIENT4, VIP4)),
        ),
        Case::stripped(
            "IPv6 in IPv6 (TCP SYN)",
            &Tunnel::to_real(true, Inner::tcp_syn(CLIENT6, VIP6)),
        ),
        Case::stripped(
            "to the host's address on another interface",
            &Tunnel::new(LB4, REAL4_OTHER_IF, Inner::udp4()),
        ),
    ]);
}

// ---------------------------------------------------------------------------
// 2. VLAN tags and IPv4 options
// ---------------------------------------------------------------------------

#[test]
fn a_vlan_tag_is_kept_with_the_inner_ethertype_after_it() {
    let Some(mut real) = load() else { return };
    real.expect_all(&[
        Case::stripped(
            "VLAN 42, IPv4 in IPv4",
            &Tunnel::to_real(false, Inner::udp4()).vlan(42),
        ),
        Case::stripped(
            "VLAN 42, IPv6 in IPv6",
            &Tunnel::to_real(true, Inner::udp6()).vlan(42),
        ),
        Case::stripped(
            "VLAN 4094, IPv6 in IPv4",
            &Tunnel::to_real(false, Inner::udp6()).vlan(4094),
        ),
        Case::stripped(
            "VLAN 7, IPv4 in IPv6",
            &Tunnel::to_real(true, Inner::udp4()).vlan(7),
        ),
    ]);
}

#[test]
fn outer_ipv4_options_are_stripped_with_the_header() {
    let Some(mut real) = load() else { return };
    // NOP NOP NOP EOL; a 40-byte record-route-sized block of NOPs (IHL 15).
    let four = [1, 1, 1, 0];
    let forty = [1u8; 40];
    real.expect_all(&[
        Case::stripped(
            "4 bytes of options, IPv4 inside",
            &Tunnel::to_real(false, Inner::udp4()).ipv4_options(&four),
        ),
        Case::stripped(
            "40 bytes of options (IHL 15), IPv6 inside",
            &Tunnel::to_real(false, Inner::udp6()).ipv4_options(&forty),
        ),
        Case::stripped(
            "options and a VLAN tag",
            &Tunnel::to_real(false, Inner::tcp_syn(CLIENT4, VIP4))
                .ipv4_options(&four)
                .vlan(100),
        ),
    ]);
}

#[test]
fn congestion_experienced_on_the_outer_header_reaches_the_inner_packet() {
    let Some(mut real) = load() else { return };
    let mut cases = Vec::new();
    for (name, outer_v6, inner_ect, inner_ce) in [
        (
            "IPv4 in IPv4",
            false,
            Inner::udp(CLIENT4, VIP4, IpEcn::TWO),
            Inner::udp(CLIENT4, VIP4, IpEcn::THREE),
        ),
        (
            "IPv4 in IPv6",
            true,
            Inner::udp(CLIENT4, VIP4, IpEcn::ONE),
            Inner::udp(CLIENT4, VIP4, IpEcn::THREE),
        ),
        (
            "IPv6 in IPv6",
            true,
            Inner::udp(CLIENT6, VIP6, IpEcn::TWO),
            Inner::udp(CLIENT6, VIP6, IpEcn::THREE),
        ),
        (
            "IPv6 in IPv4",
            false,
            Inner::udp(CLIENT6, VIP6, IpEcn::ONE),
            Inner::udp(CLIENT6, VIP6, IpEcn::THREE),
        ),
    ] {
        // The expected inner packet is built with CE by etherparse, so the
        // IPv4 checksum the program patched is checked against a fresh one.
        let tunnel = Tunnel::to_real(outer_v6, inner_ect.clone()).outer_ecn(IpEcn::THREE);
        cases.push(Case {
            name: format!("{name}: outer CE, inner ECT -> inner CE"),
            frame: tunnel.bytes(),
            output: Some(decapsulated_frame(None, &inner_ce)),
            decapsulated: true,
        });
        // Outer ECT without CE: the inner packet is left as it was.
        cases.push(Case::stripped(
            format!("{name}: outer ECT(0), inner ECT -> unchanged"),
            &Tunnel::to_real(outer_v6, inner_ect).outer_ecn(IpEcn::TWO),
        ));
    }
    cases.push(Case::stripped(
        "outer CE, inner not-ECT -> left not-ECT",
        &Tunnel::to_real(false, Inner::udp4()).outer_ecn(IpEcn::THREE),
    ));
    real.expect_all(&cases);
}
