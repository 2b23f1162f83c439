//! Fixture tests of `lb_decap`, the reals' tunnel stripper: each case is an
//! input frame, the XDP action, the exact frame that must come out and the
//! global counters that must move, run through the real compiled program
//! (loaded as `lbd decap` loads it) with `BPF_PROG_TEST_RUN`, repeat = 1.
//!
//! Expected frames are built independently with `etherparse`: the inner
//! packet on its own, then the tunnelled input (Ethernet, optional VLAN
//! tag, outer IP header, inner packet) and the expected output (the same
//! Ethernet header with the inner ethertype, the inner packet) from it.
//!
//! Needs root (CAP_BPF). Every test loads its own copy of the program with
//! private maps, so tests are independent and run in parallel.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
};

use aya::programs::{TestRun, TestRunOptions};
use etherparse::{
    EtherType, Ethernet2Header, IpDscp, IpEcn, IpFragOffset, IpHeaders, IpNumber, Ipv4Header,
    Ipv4Options, Ipv6Extensions, Ipv6FragmentHeader, Ipv6Header, PacketBuilder, SingleVlanHeader,
    VlanId, VlanPcp,
};
use lb_common::GlobalCounter::{self, Decapsulated};
use lb_tests::frames::{REAL_MAC, ROUTER_MAC, ip, padded_to_ethernet_minimum, truncated};
use lb_userspace::decap::Decap;

use crate::harness::{assert_no_mismatches, counter_mismatches, hex, xdp};

/// Addresses of the real under test (198.18.0.0/15 and fd00::/8 only).
const REAL4: &str = "198.18.0.11";
const REAL6: &str = "fd00:18::11";
/// Another address on the same host, e.g. on a second interface.
const REAL4_OTHER_IF: &str = "198.19.5.11";
/// The balancer, source of every tunnel.
const LB4: &str = "198.18.0.1";
const LB6: &str = "fd00:18::1";
/// Someone else on the segment: tunnels to it are not ours.
const NOT_OURS4: &str = "198.18.0.99";
const NOT_OURS6: &str = "fd00:18::99";
/// Inner packets: a client to a VIP.
const CLIENT4: &str = "198.19.7.7";
const CLIENT6: &str = "fd00:c::7";
const VIP4: &str = "198.18.1.10";
const VIP6: &str = "fd00:18:1::10";

fn v4(text: &str) -> [u8; 4] {
    text.parse::<Ipv4Addr>().expect("IPv4 address").octets()
}

// ---------------------------------------------------------------------------
// Inner packets (bare IP packets, no L2)
// ---------------------------------------------------------------------------

/// A bare IP packet as the balancer received it from the client.
#[derive(Clone, Debug)]
struct Inner {
    bytes: Vec<u8>,
    family: IpNumber,
}

impl Inner {
    /// A UDP datagram client -> VIP, with the given ECN bits.
    fn udp(src: &str, dst: &str, ecn: IpEcn) -> Self {
        let (headers, family) = match (ip(src), ip(dst)) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut header = Ipv4Header::new(0, 63, IpNumber::UDP, s.octets(), d.octets())
                    .expect("IPv4 header");
                header.identification = 0x4242;
                header.dont_fragment = true;
                header.dscp = IpDscp::try_new(10).unwrap();
                header.ecn = ecn;
                (IpHeaders::Ipv4(header, Default::default()), IpNumber::IPV4)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let header = Ipv6Header {
                    traffic_class: (10 << 2) | ecn.value(),
                    flow_label: 0x1_2345.try_into().unwrap(),
                    hop_limit: 63,
                    source: s.octets(),
                    destination: d.octets(),
                    ..Default::default()
                };
                (IpHeaders::Ipv6(header, Default::default()), IpNumber::IPV6)
            }
            _ => panic!("mixed families in an inner packet"),
        };
        let mut bytes = Vec::new();
        PacketBuilder::ip(headers)
            .udp(40_000, 53)
            .write(&mut bytes, b"inner payload")
            .expect("etherparse builds the inner packet");
        Self { bytes, family }
    }

    fn udp4() -> Self {
        Self::udp(CLIENT4, VIP4, IpEcn::ZERO)
    }

    fn udp6() -> Self {
        Self::udp(CLIENT6, VIP6, IpEcn::ZERO)
    }

    /// A TCP SYN client -> VIP.
    fn tcp_syn(src: &str, dst: &str) -> Self {
        let mut bytes = Vec::new();
        let family = match (ip(src), ip(dst)) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                PacketBuilder::ipv4(s.octets(), d.octets(), 64)
                    .tcp(40_001, 443, 1_000, 64_240)
                    .syn()
                    .write(&mut bytes, &[])
                    .expect("etherparse builds the inner packet");
                IpNumber::IPV4
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                PacketBuilder::ipv6(s.octets(), d.octets(), 64)
                    .tcp(40_001, 443, 1_000, 64_240)
                    .syn()
                    .write(&mut bytes, &[])
                    .expect("etherparse builds the inner packet");
                IpNumber::IPV6
            }
            _ => panic!("mixed families in an inner packet"),
        };
        Self { bytes, family }
    }

    fn ether_type(&self) -> EtherType {
        if self.family == IpNumber::IPV4 {
            EtherType::IPV4
        } else {
            EtherType::IPV6
        }
    }
}

// ---------------------------------------------------------------------------
// Tunnelled frames
// ---------------------------------------------------------------------------

/// An IP-in-IP frame as the balancer sends it, described (not bytes) so the
/// expected output is derived from the same description.
#[derive(Clone, Debug)]
struct Tunnel {
    vlan: Option<u16>,
    outer_src: IpAddr,
    outer_dst: IpAddr,
    ipv4_options: Vec<u8>,
    /// IPv4: fragment offset (8-byte units) and MF. IPv6: a Fragment header.
    fragment: Option<(u16, bool)>,
    outer_ecn: IpEcn,
    /// The protocol / next header the outer header announces; defaults to
    /// the inner packet's family.
    protocol: Option<IpNumber>,
    inner: Inner,
}

impl Tunnel {
    fn new(outer_src: &str, outer_dst: &str, inner: Inner) -> Self {
        Self {
            vlan: None,
            outer_src: ip(outer_src),
            outer_dst: ip(outer_dst),
            ipv4_options: Vec::new(),
            fragment: None,
            outer_ecn: IpEcn::ZERO,
            protocol: None,
            inner,
        }
    }

    /// From the balancer to this real's main address, of `outer`'s family.
    fn to_real(outer_v6: bool, inner: Inner) -> Self {
        if outer_v6 {
            Self::new(LB6, REAL6, inner)
        } else {
            Self::new(LB4, REAL4, inner)
        }
    }

    fn vlan(mut self, id: u16) -> Self {
        self.vlan = Some(id);
        self
    }

    fn ipv4_options(mut self, options: &[u8]) -> Self {
        self.ipv4_options = options.to_vec();
        self
    }

    fn fragment(mut self, offset: u16, more: bool) -> Self {
        self.fragment = Some((offset, more));
        self
    }

    fn outer_ecn(mut self, ecn: IpEcn) -> Self {
        self.outer_ecn = ecn;
        self
    }

    fn protocol(mut self, protocol: IpNumber) -> Self {
        self.protocol = Some(protocol);
        self
    }

    fn outer_headers(&self) -> IpHeaders {
        match (self.outer_src, self.outer_dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let mut header = Ipv4Header::new(0, 64, IpNumber::IPV4, src.octets(), dst.octets())
                    .expect("outer IPv4 header");
                header.identification = 0x0707;
                header.dont_fragment = self.fragment.is_none();
                header.ecn = self.outer_ecn;
                if let Some((offset, more)) = self.fragment {
                    header.more_fragments = more;
                    header.fragment_offset = IpFragOffset::try_new(offset).unwrap();
                }
                header.options = Ipv4Options::try_from(self.ipv4_options.as_slice())
                    .expect("IPv4 options: a multiple of 4 bytes, at most 40");
                IpHeaders::Ipv4(header, Default::default())
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let header = Ipv6Header {
                    traffic_class: self.outer_ecn.value(),
                    flow_label: 0xa_bcde.try_into().unwrap(),
                    hop_limit: 64,
                    source: src.octets(),
                    destination: dst.octets(),
                    ..Default::default()
                };
                let mut exts = Ipv6Extensions::default();
                if let Some((offset, more)) = self.fragment {
                    exts.fragment = Some(Ipv6FragmentHeader::new(
                        IpNumber::IPV4,
                        IpFragOffset::try_new(offset).unwrap(),
                        more,
                        0x1234_5678,
                    ));
                }
                IpHeaders::Ipv6(header, exts)
            }
            _ => panic!("mixed families in an outer header"),
        }
    }

    /// The frame on the wire.
    fn bytes(&self) -> Vec<u8> {
        let protocol = self.protocol.unwrap_or(self.inner.family);
        let eth = PacketBuilder::ethernet2(ROUTER_MAC, REAL_MAC);
        let mut out = Vec::new();
        match self.vlan {
            Some(id) => eth
                .single_vlan(VlanId::try_new(id).unwrap())
                .ip(self.outer_headers())
                .write(&mut out, protocol, &self.inner.bytes),
            None => eth
                .ip(self.outer_headers())
                .write(&mut out, protocol, &self.inner.bytes),
        }
        .expect("etherparse builds the tunnelled frame");
        out
    }

    /// What the real's stack must receive: the same L2 header, announcing
    /// the inner family, then the inner packet as the client sent it.
    fn decapsulated(&self) -> Vec<u8> {
        decapsulated_frame(self.vlan, &self.inner)
    }
}

/// The frame a real's stack receives for `inner` (built without the
/// tunnel, so nothing of the outer header can leak into the expectation).
fn decapsulated_frame(vlan: Option<u16>, inner: &Inner) -> Vec<u8> {
    let mut eth = Ethernet2Header {
        source: ROUTER_MAC,
        destination: REAL_MAC,
        ether_type: inner.ether_type(),
    };
    let mut out = Vec::new();
    if let Some(id) = vlan {
        eth.ether_type = EtherType::VLAN_TAGGED_FRAME;
        out.extend_from_slice(&eth.to_bytes());
        let tag = SingleVlanHeader {
            pcp: VlanPcp::ZERO,
            drop_eligible_indicator: false,
            vlan_id: VlanId::try_new(id).unwrap(),
            ether_type: inner.ether_type(),
        };
        out.extend_from_slice(&tag.to_bytes());
    } else {
        out.extend_from_slice(&eth.to_bytes());
    }
    out.extend_from_slice(&inner.bytes);
    out
}

// ---------------------------------------------------------------------------
// The program under test
// ---------------------------------------------------------------------------

struct Case {
    name: String,
    frame: Vec<u8>,
    /// `None`: the frame must come out unchanged.
    output: Option<Vec<u8>>,
    /// Whether `Decapsulated` must move (by one); nothing else ever may.
    decapsulated: bool,
}

impl Case {
    /// Stripped: the inner packet goes up the stack.
    fn stripped(name: impl Into<String>, tunnel: &Tunnel) -> Self {
        Self {
            name: name.into(),
            frame: tunnel.bytes(),
            output: Some(tunnel.decapsulated()),
            decapsulated: true,
        }
    }

    /// Passed exactly as it came, nothing counted.
    fn untouched(name: impl Into<String>, frame: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            frame,
            output: None,
            decapsulated: false,
        }
    }
}

/// `lb_decap` loaded as `lbd decap` loads it, with private maps.
struct Real {
    decap: Decap,
}

impl Real {
    /// Owns REAL4, REAL6 and REAL4_OTHER_IF (ifindexes are informational).
    fn load() -> Self {
        let mut decap = Decap::load(None).expect("loading lb_decap (needs root / CAP_BPF)");
        let addresses = BTreeMap::from([(ip(REAL4), 2), (ip(REAL6), 2), (ip(REAL4_OTHER_IF), 3)]);
        decap
            .sync_addresses(&addresses)
            .expect("filling LB_DECAP_ADDRS");
        Self { decap }
    }

    fn counters(&self) -> Vec<u64> {
        GlobalCounter::ALL
            .iter()
            .map(|counter| {
                self.decap
                    .global_stats
                    .get(&(*counter as u32), 0)
                    .expect("read global counter")
                    .iter()
                    .sum()
            })
            .collect()
    }

    fn run(&mut self, frame: &[u8]) -> (u32, Vec<u8>) {
        let program = self.decap.program_mut().expect("lb_decap");
        let mut out = vec![0u8; 4096];
        let result = program
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ..TestRunOptions::new()
            })
            .expect("BPF_PROG_TEST_RUN");
        out.truncate(result.data_size_out as usize);
        (result.return_value, out)
    }

    fn check(&mut self, case: &Case) -> Vec<String> {
        let before = self.counters();
        let (action, out) = self.run(&case.frame);
        let after = self.counters();
        let mut errors = Vec::new();
        if action != xdp::PASS {
            errors.push(format!(
                "{}: action {action}, expected xdp::PASS",
                case.name
            ));
        }
        let expected = case.output.as_ref().unwrap_or(&case.frame);
        if &out != expected {
            errors.push(format!(
                "{}: output frame differs\n  got      {}\n  expected {}",
                case.name,
                hex(&out),
                hex(expected)
            ));
        }
        errors.extend(counter_mismatches(&case.name, &before, &after, |counter| {
            u64::from(counter == Decapsulated && case.decapsulated)
        }));
        errors
    }

    /// Runs every case and fails with all mismatches at once.
    fn expect_all(&mut self, cases: &[Case]) {
        let errors: Vec<String> = cases.iter().flat_map(|case| self.check(case)).collect();
        assert_no_mismatches(&errors, cases.len());
    }
}

fn load() -> Option<Real> {
    lb_tests::require_root("decap_fixtures").then(Real::load)
}

// ---------------------------------------------------------------------------
// 1. The four tunnel kinds
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// 3. Not ours
// ---------------------------------------------------------------------------

#[test]
fn tunnels_to_other_hosts_and_ordinary_traffic_pass_unchanged() {
    let Some(mut real) = load() else { return };
    let plain = |src: &str, dst: &str| {
        let mut out = Vec::new();
        let builder = PacketBuilder::ethernet2(ROUTER_MAC, REAL_MAC);
        match (ip(src), ip(dst)) {
            (IpAddr::V4(s), IpAddr::V4(d)) => builder
                .ipv4(s.octets(), d.octets(), 64)
                .udp(5353, 53)
                .write(&mut out, b"plain"),
            (IpAddr::V6(s), IpAddr::V6(d)) => builder
                .ipv6(s.octets(), d.octets(), 64)
                .udp(5353, 53)
                .write(&mut out, b"plain"),
            _ => unreachable!(),
        }
        .unwrap();
        out
    };
    let gre = Tunnel::to_real(false, Inner::udp4()).protocol(IpNumber::GRE);
    let mut arp = Vec::new();
    PacketBuilder::ethernet2(ROUTER_MAC, [0xff; 6])
        .arp(
            etherparse::ArpEthIpv4Packet {
                operation: etherparse::ArpOperation::REQUEST,
                sender_mac: ROUTER_MAC,
                sender_ipv4: v4(LB4),
                target_mac: [0; 6],
                target_ipv4: v4(REAL4),
            }
            .into(),
        )
        .write(&mut arp)
        .unwrap();
    real.expect_all(&[
        Case::untouched(
            "IPv4 in IPv4 to another host",
            Tunnel::new(LB4, NOT_OURS4, Inner::udp4()).bytes(),
        ),
        Case::untouched(
            "IPv6 in IPv6 to another host",
            Tunnel::new(LB6, NOT_OURS6, Inner::udp6()).bytes(),
        ),
        Case::untouched(
            "IPv6 in IPv4 to a VIP (VIPs are not tunnel endpoints)",
            Tunnel::new(LB4, VIP4, Inner::udp6()).bytes(),
        ),
        Case::untouched(
            "an IPv6 outer header to the IPv4-mapped form of our address",
            Tunnel::new(LB6, "::ffff:198.18.0.11", Inner::udp4()).bytes(),
        ),
        Case::untouched("UDP to our IPv4 address", plain(LB4, REAL4)),
        Case::untouched("UDP to our IPv6 address", plain(LB6, REAL6)),
        Case::untouched("GRE to our address", gre.bytes()),
        Case::untouched("ARP who-has our address", arp),
    ]);
}

// ---------------------------------------------------------------------------
// 4. Fragments, truncation, malformed tunnels
// ---------------------------------------------------------------------------

#[test]
fn outer_fragments_pass_unchanged() {
    let Some(mut real) = load() else { return };
    real.expect_all(&[
        Case::untouched(
            "IPv4 outer, first fragment (MF)",
            Tunnel::to_real(false, Inner::udp4())
                .fragment(0, true)
                .bytes(),
        ),
        Case::untouched(
            "IPv4 outer, last fragment (offset)",
            Tunnel::to_real(false, Inner::udp4())
                .fragment(185, false)
                .bytes(),
        ),
        Case::untouched(
            "IPv6 outer with a Fragment header",
            Tunnel::to_real(true, Inner::udp4())
                .fragment(0, true)
                .bytes(),
        ),
    ]);
}

#[test]
fn truncated_and_malformed_tunnels_pass_unchanged() {
    let Some(mut real) = load() else { return };
    let v4_in_v4 = Tunnel::to_real(false, Inner::udp4()).bytes();
    let v6_in_v6 = Tunnel::to_real(true, Inner::udp6()).bytes();
    let tagged = Tunnel::to_real(false, Inner::udp4()).vlan(42).bytes();
    let with_options = Tunnel::to_real(false, Inner::udp4())
        .ipv4_options(&[1u8; 40])
        .bytes();
    // An inner header that says IPv6 where the outer announced IPv4.
    let wrong_version = Tunnel::to_real(false, Inner::udp6())
        .protocol(IpNumber::IPV4)
        .bytes();
    // The outer total length covers only 10 bytes of inner header; the rest
    // of the frame is Ethernet padding that happens to look like one.
    let mut short_total_len = Tunnel::to_real(false, Inner::udp4()).bytes();
    short_total_len[16..18].copy_from_slice(&30u16.to_be_bytes());
    let short_total_len = fix_ipv4_checksum(short_total_len, 14);
    // An IPv6 payload length shorter than an inner IPv6 header.
    let mut short_payload_len = Tunnel::to_real(true, Inner::udp6()).bytes();
    short_payload_len[18..20].copy_from_slice(&39u16.to_be_bytes());
    // An outer IHL below 5.
    let mut bad_ihl = Tunnel::to_real(false, Inner::udp4()).bytes();
    bad_ihl[14] = 0x44;

    real.expect_all(&[
        Case::untouched("Ethernet only", truncated(v4_in_v4.clone(), 14)),
        Case::untouched("VLAN tag cut short", truncated(tagged.clone(), 16)),
        Case::untouched(
            "outer IPv4 header cut short",
            truncated(v4_in_v4.clone(), 14 + 19),
        ),
        Case::untouched(
            "outer IPv4 options cut short",
            truncated(with_options, 14 + 50),
        ),
        Case::untouched(
            "outer IPv6 header cut short",
            truncated(v6_in_v6.clone(), 14 + 39),
        ),
        Case::untouched(
            "inner IPv4 header cut short",
            truncated(v4_in_v4, 14 + 20 + 19),
        ),
        Case::untouched(
            "inner IPv6 header cut short",
            truncated(v6_in_v6, 14 + 40 + 39),
        ),
        Case::untouched(
            "inner IPv4 header cut short behind a VLAN tag",
            truncated(tagged, 18 + 20 + 10),
        ),
        Case::untouched(
            "inner version differs from the outer protocol",
            wrong_version,
        ),
        Case::untouched(
            "outer total length shorter than the inner header",
            short_total_len,
        ),
        Case::untouched(
            "IPv6 payload length shorter than the inner header",
            short_payload_len,
        ),
        Case::untouched("outer IHL 4", bad_ihl),
    ]);
}

/// Recomputes the IPv4 header checksum of the header at `offset`, after a
/// test edited a field (so only the field under test is wrong).
fn fix_ipv4_checksum(mut frame: Vec<u8>, offset: usize) -> Vec<u8> {
    let (header, _) = Ipv4Header::from_slice(&frame[offset..]).expect("an IPv4 header");
    let checksum = header.calc_header_checksum();
    frame[offset + 10..offset + 12].copy_from_slice(&checksum.to_be_bytes());
    frame
}

#[test]
fn ethernet_padding_stays_behind_a_short_inner_packet() {
    let Some(mut real) = load() else { return };
    // IPv4 in IPv4 with an empty inner packet: 54 bytes, padded to 60 by
    // the NIC. The padding follows the inner packet, whose total length
    // tells the stack where it ends.
    let mut inner = Vec::new();
    PacketBuilder::ipv4(v4(CLIENT4), v4(VIP4), 64)
        .write(&mut inner, IpNumber::IPV6_NO_NEXT_HEADER, &[])
        .unwrap();
    let inner = Inner {
        bytes: inner,
        family: IpNumber::IPV4,
    };
    let tunnel = Tunnel::to_real(false, inner.clone());
    let mut expected = decapsulated_frame(None, &inner);
    expected.resize(60 - 20, 0);
    real.expect_all(&[Case {
        name: "padded IPv4 in IPv4".into(),
        frame: padded_to_ethernet_minimum(tunnel.bytes()),
        output: Some(expected),
        decapsulated: true,
    }]);
}

// ---------------------------------------------------------------------------
// 5. ECN (RFC 6040)
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// 6. The address map follows the host
// ---------------------------------------------------------------------------

#[test]
fn an_address_removed_from_the_map_is_no_longer_decapsulated() {
    let Some(mut real) = load() else { return };
    let to_other_if = Tunnel::new(LB4, REAL4_OTHER_IF, Inner::udp4());
    real.expect_all(&[Case::stripped("before", &to_other_if)]);

    let changes = real
        .decap
        .sync_addresses(&BTreeMap::from([(ip(REAL4), 2), (ip(REAL6), 2)]))
        .expect("syncing the address map");
    assert_eq!(changes.removed, [ip(REAL4_OTHER_IF)]);
    assert!(changes.added.is_empty(), "{changes:?}");
    real.expect_all(&[
        Case::untouched("after its removal", to_other_if.bytes()),
        Case::stripped(
            "the others still work",
            &Tunnel::to_real(true, Inner::udp6()),
        ),
    ]);
    assert_eq!(real.decap.decapsulated().unwrap(), 2);
}
