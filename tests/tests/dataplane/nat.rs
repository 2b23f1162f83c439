//! NAT (LVS-NAT) packet fixtures, through the real compiled program with
//! `BPF_PROG_TEST_RUN` (repeat = 1): requests rewritten to the real, the
//! reverse entries they leave, replies (and the reals' ICMP errors)
//! rewritten back to the VIP and routed with the kernel's FIB, and the
//! connection state replies advance.
//!
//! As in `packet_fixtures.rs`, everything expected is built independently
//! with `etherparse` (the exact output frame, its checksums computed from
//! scratch), and every output is also checked with etherparse's own
//! checksum computation.
//!
//! Needs root (CAP_BPF, CAP_NET_ADMIN). Tests that route replies run in a
//! private network namespace with their own interfaces, routes and
//! permanent neighbour entries, so `bpf_fib_lookup` answers from tables the
//! test wrote.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    process::Command,
};

use crate::harness::{
    Case, INGRESS_IFINDEX, MAGLEV_TABLE_SIZE, add_veth_pair, assert_no_mismatches,
    counter_mismatches, delta, in_private_netns, outcome_mismatches, pin_to_current_cpu, xdp,
};
use aya::{
    maps::PerCpuValues,
    programs::{TestRun, TestRunOptions},
};
use etherparse::{
    Icmpv4Header, Icmpv4Type, Icmpv6Header, Icmpv6Type, IpHeaders, IpNumber, Ipv4Header,
    Ipv6Header, NetHeaders, PacketBuilder, PacketHeaders, TcpHeader, TransportHeader, UdpHeader,
    icmpv4::{DestUnreachableHeader, TimeExceededCode},
    icmpv6::DestUnreachableCode,
};
use lb_common::{
    Addr, ConnectionState, Family, FloodGuard, FlowKey, FlowState, ForwardingMethod, GlobalCounter,
    GlobalCounter::*, NatRealKey, NatReply, REAL_ACTIVE, REAL_NEXT_HOP_KNOWN, Real, Scheduler,
    Service, ServiceKey, TrafficCounters, VipInfo, VipKey, proto,
};
use lb_tests::frames::{LB_EGRESS_MAC, LB_MAC, ROUTER_MAC, ip, real_mac, sa};
use lb_userspace::dataplane::{Dataplane, Geometry, monotonic_now_ns};

// Services: the real listens on another port than the service's.
const WEB4: &str = "198.18.0.10:80";
const WEB4_REAL: &str = "198.18.1.1:8080";
const DNS4: &str = "198.18.0.10:53";
const DNS4_REAL: &str = "198.18.1.2:5353";
const WEB6: &str = "[fd00::10]:80";
const WEB6_REAL: &str = "[fd00:1::1]:8080";
const DNS6: &str = "[fd00::10]:53";
const DNS6_REAL: &str = "[fd00:1::2]:5353";

const CLIENT4: &str = "198.19.7.7:40000";
const CLIENT6: &str = "[fd00:c::7]:40000";

// ---------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum L4 {
    Tcp { syn: bool, ack: bool, fin: bool },
    Udp,
}

const SYN: L4 = L4::Tcp {
    syn: true,
    ack: false,
    fin: false,
};
const SYN_ACK: L4 = L4::Tcp {
    syn: true,
    ack: true,
    fin: false,
};
const ACK: L4 = L4::Tcp {
    syn: false,
    ack: true,
    fin: false,
};
const FIN_ACK: L4 = L4::Tcp {
    syn: false,
    ack: true,
    fin: true,
};

/// One frame, described so that an expected output is the same description
/// with a few fields changed, built the same independent way.
#[derive(Clone, Debug)]
struct Frame {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: SocketAddr,
    dst: SocketAddr,
    l4: L4,
    ttl: u8,
    dont_fragment: bool,
    /// IPv4 UDP sent without a checksum (0 on the wire).
    no_udp_checksum: bool,
    payload: Vec<u8>,
}

impl Frame {
    /// A client's packet as the router in front of the balancer sends it.
    fn new(src: &str, dst: &str, l4: L4) -> Self {
        let (src, dst) = (sa(src), sa(dst));
        assert_eq!(src.is_ipv4(), dst.is_ipv4(), "mixed families");
        Self {
            src_mac: ROUTER_MAC,
            dst_mac: LB_MAC,
            src,
            dst,
            l4,
            ttl: 64,
            dont_fragment: false,
            no_udp_checksum: false,
            payload: b"nat fixture payload".to_vec(),
        }
    }

    /// A real's packet as it reaches its gateway, the balancer.
    fn from_real(real_id: u32, src: &str, dst: &str, l4: L4) -> Self {
        Self {
            src_mac: real_mac(real_id),
            ..Self::new(src, dst, l4)
        }
    }

    fn ttl(self, ttl: u8) -> Self {
        Self { ttl, ..self }
    }

    fn without_udp_checksum(self) -> Self {
        assert!(self.src.is_ipv4() && self.l4 == L4::Udp);
        Self {
            no_udp_checksum: true,
            ..self
        }
    }

    fn dont_fragment(self) -> Self {
        Self {
            dont_fragment: true,
            ..self
        }
    }

    fn payload_len(self, len: usize) -> Self {
        Self {
            payload: vec![0x5a; len],
            ..self
        }
    }

    /// As the balancer must send a request on: to `real`, one hop older,
    /// with the MACs of the real's next hop.
    fn to_real(&self, real: &Real, real_addr: &str) -> Self {
        Self {
            src_mac: real.src_mac,
            dst_mac: real.dst_mac,
            dst: sa(real_addr),
            ttl: self.ttl - 1,
            ..self.clone()
        }
    }

    /// As the balancer must send a reply on: from `vip`, one hop older.
    fn sent_from_vip(&self, vip: &str, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Self {
        Self {
            src_mac,
            dst_mac,
            src: sa(vip),
            ttl: self.ttl - 1,
            ..self.clone()
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let ip = match (self.src, self.dst) {
            (SocketAddr::V4(src), SocketAddr::V4(dst)) => {
                let mut header = Ipv4Header::new(
                    0,
                    self.ttl,
                    IpNumber::TCP,
                    src.ip().octets(),
                    dst.ip().octets(),
                )
                .expect("IPv4 header");
                header.identification = 0x1234;
                header.dont_fragment = self.dont_fragment;
                IpHeaders::Ipv4(header, Default::default())
            }
            (SocketAddr::V6(src), SocketAddr::V6(dst)) => IpHeaders::Ipv6(
                Ipv6Header {
                    hop_limit: self.ttl,
                    source: src.ip().octets(),
                    destination: dst.ip().octets(),
                    ..Default::default()
                },
                Default::default(),
            ),
            _ => unreachable!("checked in Frame::new"),
        };
        let step = PacketBuilder::ethernet2(self.src_mac, self.dst_mac).ip(ip);
        let (sport, dport) = (self.src.port(), self.dst.port());
        let mut out = Vec::new();
        match self.l4 {
            L4::Tcp { syn, ack, fin } => {
                let mut tcp = step.tcp(sport, dport, 1_000, 64_240);
                if syn {
                    tcp = tcp.syn();
                }
                if ack {
                    tcp = tcp.ack(2_000);
                }
                if fin {
                    tcp = tcp.fin();
                }
                tcp.write(&mut out, &self.payload)
            }
            L4::Udp => step.udp(sport, dport).write(&mut out, &self.payload),
        }
        .expect("etherparse builds the frame");
        if self.no_udp_checksum {
            // Ethernet (14) + IPv4 (20) + the checksum's offset in UDP (6).
            out[40..42].copy_from_slice(&[0, 0]);
        }
        out
    }

    fn protocol(&self) -> u8 {
        match self.l4 {
            L4::Tcp { .. } => proto::TCP,
            L4::Udp => proto::UDP,
        }
    }

    /// The 5-tuple as the data plane keys it.
    fn key(&self) -> FlowKey {
        FlowKey {
            src: Addr::from(self.src.ip()),
            dst: Addr::from(self.dst.ip()),
            src_port: self.src.port().to_be(),
            dst_port: self.dst.port().to_be(),
            protocol: self.protocol(),
            family: Family::of(&self.src.ip()) as u8,
            _pad: [0; 2],
        }
    }
}

/// Checks every checksum of `frame` with etherparse's own computation, and
/// returns the UDP checksum as found (to check that 0 stayed 0).
fn assert_checksums_valid(name: &str, frame: &[u8]) -> Option<u16> {
    let headers = PacketHeaders::from_ethernet_slice(frame)
        .unwrap_or_else(|e| panic!("{name}: output does not parse: {e:?}"));
    let payload = headers.payload.slice();
    let (net, transport) = (
        headers.net.expect("an IP header"),
        headers.transport.expect("a transport header"),
    );
    match (&net, &transport) {
        (NetHeaders::Ipv4(ip, _), _) => {
            assert_eq!(
                ip.header_checksum,
                ip.calc_header_checksum(),
                "{name}: IPv4 header checksum"
            );
        }
        (NetHeaders::Ipv6(..), _) => {}
        _ => panic!("{name}: not IP"),
    }
    match (net, transport) {
        (NetHeaders::Ipv4(ip, _), TransportHeader::Tcp(tcp)) => {
            let expected = tcp.calc_checksum_ipv4(&ip, payload).unwrap();
            assert_eq!(tcp.checksum, expected, "{name}: TCP checksum (IPv4)");
            None
        }
        (NetHeaders::Ipv6(ip, _), TransportHeader::Tcp(tcp)) => {
            let expected = tcp.calc_checksum_ipv6(&ip, payload).unwrap();
            assert_eq!(tcp.checksum, expected, "{name}: TCP checksum (IPv6)");
            None
        }
        (NetHeaders::Ipv4(ip, _), TransportHeader::Udp(udp)) => {
            if udp.checksum != 0 {
                let expected = udp.calc_checksum_ipv4(&ip, payload).unwrap();
                assert_eq!(udp.checksum, expected, "{name}: UDP checksum (IPv4)");
            }
            Some(udp.checksum)
        }
        (NetHeaders::Ipv6(ip, _), TransportHeader::Udp(udp)) => {
            let expected = udp.calc_checksum_ipv6(&ip, payload).unwrap();
            assert_eq!(udp.checksum, expected, "{name}: UDP checksum (IPv6)");
            Some(udp.checksum)
        }
        (NetHeaders::Ipv4(_, _), TransportHeader::Icmpv4(icmp)) => {
            let expected = Icmpv4Header::with_checksum(icmp.icmp_type.clone(), payload);
            assert_eq!(icmp.checksum, expected.checksum, "{name}: ICMP checksum");
            assert_quote_checksums(name, payload);
            None
        }
        (NetHeaders::Ipv6(ip, _), TransportHeader::Icmpv6(icmp)) => {
            let expected =
                Icmpv6Header::with_checksum(icmp.icmp_type, ip.source, ip.destination, payload)
                    .unwrap();
            assert_eq!(icmp.checksum, expected.checksum, "{name}: ICMPv6 checksum");
            assert_quote_checksums(name, payload);
            None
        }
        other => panic!("{name}: unexpected headers {other:?}"),
    }
}

/// The quoted IPv4 header's checksum, and the quoted TCP/UDP checksum when
/// the whole packet is quoted.
fn assert_quote_checksums(name: &str, quote: &[u8]) {
    let (ip, l4, v4) = match quote[0] >> 4 {
        4 => {
            let (ip, rest) = Ipv4Header::from_slice(quote).expect("quoted IPv4 header");
            assert_eq!(
                ip.header_checksum,
                ip.calc_header_checksum(),
                "{name}: quoted IPv4 header checksum"
            );
            (IpHeaders::Ipv4(ip, Default::default()), rest, true)
        }
        _ => {
            let (ip, rest) = Ipv6Header::from_slice(quote).expect("quoted IPv6 header");
            (IpHeaders::Ipv6(ip, Default::default()), rest, false)
        }
    };
    let whole = match &ip {
        IpHeaders::Ipv4(ip, _) => usize::from(ip.total_len) == quote.len(),
        IpHeaders::Ipv6(ip, _) => usize::from(ip.payload_length) + 40 == quote.len(),
    };
    if !whole {
        return;
    }
    let checksums = match ip.next_header().unwrap() {
        IpNumber::UDP => {
            let (udp, payload) = UdpHeader::from_slice(l4).unwrap();
            let expected = match &ip {
                IpHeaders::Ipv4(ip, _) => udp.calc_checksum_ipv4(ip, payload),
                IpHeaders::Ipv6(ip, _) => udp.calc_checksum_ipv6(ip, payload),
            };
            (udp.checksum, expected.unwrap())
        }
        _ => {
            let (tcp, payload) = TcpHeader::from_slice(l4).unwrap();
            let expected = match &ip {
                IpHeaders::Ipv4(ip, _) => tcp.calc_checksum_ipv4(ip, payload),
                IpHeaders::Ipv6(ip, _) => tcp.calc_checksum_ipv6(ip, payload),
            };
            (tcp.checksum, expected.unwrap())
        }
    };
    assert_eq!(
        checksums.0, checksums.1,
        "{name}: quoted checksum (v4: {v4})"
    );
}

/// The ICMP errors the fixtures send.
#[derive(Clone, Copy, Debug)]
enum IcmpError {
    PortUnreachable,
    TimeExceeded,
    PacketTooBig,
}

/// An ICMP (ICMPv6 for IPv6 addresses) error from `src` to `dst`, quoting
/// `quote` (an IP packet, or the start of one).
fn icmp_error(
    macs: ([u8; 6], [u8; 6]),
    (src, dst): (IpAddr, IpAddr),
    ttl: u8,
    kind: IcmpError,
    quote: &[u8],
) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(macs.0, macs.1);
    let mut out = Vec::new();
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let kind =
                match kind {
                    IcmpError::PortUnreachable => {
                        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port)
                    }
                    IcmpError::TimeExceeded => {
                        Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit)
                    }
                    IcmpError::PacketTooBig => Icmpv4Type::DestinationUnreachable(
                        DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1280 },
                    ),
                };
            eth.ipv4(src.octets(), dst.octets(), ttl)
                .icmpv4(kind)
                .write(&mut out, quote)
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let kind = match kind {
                IcmpError::PortUnreachable => {
                    Icmpv6Type::DestinationUnreachable(DestUnreachableCode::Port)
                }
                IcmpError::TimeExceeded => {
                    Icmpv6Type::TimeExceeded(etherparse::icmpv6::TimeExceededCode::HopLimitExceeded)
                }
                IcmpError::PacketTooBig => Icmpv6Type::PacketTooBig { mtu: 1280 },
            };
            eth.ipv6(src.octets(), dst.octets(), ttl)
                .icmpv6(kind)
                .write(&mut out, quote)
        }
        _ => panic!("mixed families"),
    }
    .expect("etherparse builds the ICMP error");
    out
}

// ---------------------------------------------------------------------------
// The data plane, with NAT services
// ---------------------------------------------------------------------------

/// The compiled program with private maps. The harness's `Lb` keeps its
/// maps to itself and only writes DR services; NAT needs LB_NAT_REALS and
/// LB_NAT_REPLIES as well, so this loads its own copy the same way and
/// checks cases with the same rules (action, exact frame, every counter).
struct NatLb {
    dataplane: Dataplane,
}

impl NatLb {
    fn load() -> Self {
        let geometry = Geometry {
            maglev_table_size: MAGLEV_TABLE_SIZE,
            flow_table_entries: 1024,
            ..Geometry::default()
        };
        let dataplane =
            Dataplane::load(geometry, None).expect("loading the data plane (needs root / CAP_BPF)");
        Self { dataplane }
    }

    /// A NAT service on `vip` (VIP:port) whose only real is `real_addr`
    /// (address:port), reached through `ifindex`. Returns the real as
    /// written, for the expected MACs.
    fn nat_service(
        &mut self,
        vip: &str,
        protocol: u8,
        service_id: u32,
        real_id: u32,
        real_addr: &str,
        ifindex: u32,
    ) -> Real {
        let (vip, real_addr) = (sa(vip), sa(real_addr));
        let family = Family::of(&vip.ip()) as u8;
        let maps = &mut self.dataplane.maps;
        let vip_key = VipKey {
            addr: Addr::from(vip.ip()),
            family,
            _pad: [0; 3],
        };
        let services = maps.vips.get(&vip_key, 0).map_or(0, |info| info.services);
        maps.vips
            .insert(
                vip_key,
                VipInfo {
                    services: services + 1,
                },
                0,
            )
            .expect("insert VIP");
        let key = ServiceKey {
            addr: Addr::from(vip.ip()),
            port_be: vip.port().to_be(),
            protocol,
            family,
        };
        let service = Service {
            id: service_id,
            scheduler: Scheduler::Maglev as u8,
            sched_flags: lb_common::SCHED_FLAG_PORT,
            row_len: MAGLEV_TABLE_SIZE,
            ..Service::default()
        };
        maps.services
            .insert(key, service, 0)
            .expect("insert service");
        let real = Real {
            addr: Addr::from(real_addr.ip()),
            family,
            flags: REAL_ACTIVE | REAL_NEXT_HOP_KNOWN,
            forwarding: ForwardingMethod::Masquerade as u8,
            port_be: real_addr.port().to_be(),
            service_id,
            ifindex,
            dst_mac: real_mac(real_id),
            src_mac: LB_EGRESS_MAC,
            weight: 1,
            ..Real::default()
        };
        maps.reals.set(real_id, real, 0).expect("write real");
        for slot in 0..MAGLEV_TABLE_SIZE {
            maps.maglev
                .set(service_id * MAGLEV_TABLE_SIZE + slot, real_id, 0)
                .expect("write Maglev slot");
        }
        let nat_real = NatRealKey {
            addr: Addr::from(real_addr.ip()),
            family,
            _pad: [0; 3],
        };
        maps.nat_reals
            .insert(nat_real, 1, 0)
            .expect("insert NAT real");
        real
    }

    fn set_real(&mut self, real_id: u32, real: Real) {
        self.dataplane
            .maps
            .reals
            .set(real_id, real, 0)
            .expect("write real");
    }

    fn add_tx_port(&mut self, ifindex: u32) {
        self.dataplane
            .maps
            .tx_ports
            .insert(ifindex, ifindex, None, 0)
            .expect("insert into the devmap");
    }

    fn nat_reply(&self, key: &FlowKey) -> Option<NatReply> {
        self.dataplane.maps.nat_replies.get(key, 0).ok()
    }

    fn forget_nat_reply(&mut self, key: &FlowKey) {
        self.dataplane
            .maps
            .nat_replies
            .remove(key)
            .expect("remove NAT reply entry");
    }

    fn flow(&self, key: &FlowKey) -> Option<FlowState> {
        self.dataplane.maps.flows.get(key, 0).ok()
    }

    /// Makes the flow's entry look `seconds` old.
    fn age_flow(&mut self, key: &FlowKey, seconds: u64) {
        let mut flow = self.flow(key).expect("the flow");
        flow.last_seen_ns = monotonic_now_ns() - seconds * 1_000_000_000;
        self.dataplane
            .maps
            .flows
            .insert(key, flow, 0)
            .expect("write the flow");
        self.dataplane
            .maps
            .invalidate_flow_cache()
            .expect("bump the flow cache generation");
    }

    /// The real's traffic counters, summed over the CPUs.
    fn real_counters(&self, real_id: u32) -> TrafficCounters {
        let values = self
            .dataplane
            .maps
            .real_stats
            .get(&real_id, 0)
            .expect("real counters");
        values
            .iter()
            .fold(TrafficCounters::default(), |mut sum, value| {
                sum.add(value);
                sum
            })
    }

    fn service_counters(&self, service_id: u32) -> TrafficCounters {
        let values = self
            .dataplane
            .maps
            .service_stats
            .get(&service_id, 0)
            .expect("service counters");
        values
            .iter()
            .fold(TrafficCounters::default(), |mut sum, value| {
                sum.add(value);
                sum
            })
    }

    /// The real's and the service's counters (in this file every service
    /// has one real, with the service's id).
    fn svc_counters(&self, svc: Svc) -> (TrafficCounters, TrafficCounters) {
        (self.real_counters(svc.id), self.service_counters(svc.id))
    }

    fn global_counters(&self) -> Vec<u64> {
        GlobalCounter::ALL
            .iter()
            .map(|counter| {
                let values: PerCpuValues<u64> = self
                    .dataplane
                    .maps
                    .global_stats
                    .get(&(*counter as u32), 0)
                    .expect("read global counter");
                values.iter().sum()
            })
            .collect()
    }

    /// One run: the action and the frame as the program left it. The
    /// ingress ifindex goes in through `ctx_in` (struct xdp_md: data,
    /// data_end, data_meta, ingress_ifindex, rx_queue_index,
    /// egress_ifindex); `bpf_fib_lookup` then uses that interface's
    /// namespace.
    fn run(&mut self, frame: &[u8], ingress: Option<u32>) -> (u32, Vec<u8>) {
        let ctx: Vec<u8> = ingress
            .map(|ifindex| [0, frame.len() as u32, 0, ifindex, 0, 0])
            .into_iter()
            .flatten()
            .flat_map(u32::to_ne_bytes)
            .collect();
        let program = self
            .dataplane
            .program_mut(lb_common::programs::BALANCER)
            .expect("balancer program");
        let mut out = vec![0u8; 4096];
        let result = program
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: ingress.map(|_| ctx.as_slice()),
                ..TestRunOptions::new()
            })
            .expect("BPF_PROG_TEST_RUN");
        out.truncate(result.data_size_out as usize);
        (result.return_value, out)
    }

    /// Runs one case; returns what went wrong. Rewritten output frames also
    /// get their checksums checked by etherparse.
    fn check(&mut self, case: &Case) -> Vec<String> {
        let before = self.global_counters();
        let (action, out) = self.run(&case.frame, case.ingress);
        let after = self.global_counters();
        let mut errors = outcome_mismatches(&case.name, (action, &out), case);
        if case.output.is_some() {
            assert_checksums_valid(&case.name, &out);
        }
        errors.extend(counter_mismatches(&case.name, &before, &after, |counter| {
            case.counters.iter().filter(|c| **c == counter).count() as u64
                + u64::from(counter == Received)
        }));
        errors
    }

    fn expect_all(&mut self, cases: &[Case]) {
        let errors: Vec<String> = cases.iter().flat_map(|case| self.check(case)).collect();
        assert_no_mismatches(&errors, cases.len());
    }
}

/// A frame that must come out as `output`, with `action` and `counters`.
fn case(
    name: &str,
    input: &Frame,
    action: u32,
    output: Option<&Frame>,
    counters: &[GlobalCounter],
) -> Case {
    Case {
        name: name.into(),
        frame: input.bytes(),
        action,
        output: output.map(Frame::bytes),
        counters: counters.to_vec(),
        ingress: None,
    }
}

/// The reverse entry a request to `vip` forwarded to `real_addr` must leave.
fn expected_reply_entry(request: &Frame, real_id: u32, real_addr: &str) -> (FlowKey, NatReply) {
    let real_addr = sa(real_addr);
    let key = FlowKey {
        src: Addr::from(real_addr.ip()),
        dst: Addr::from(request.src.ip()),
        src_port: real_addr.port().to_be(),
        dst_port: request.src.port().to_be(),
        protocol: request.protocol(),
        family: Family::of(&real_addr.ip()) as u8,
        _pad: [0; 2],
    };
    let value = NatReply {
        vip: Addr::from(request.dst.ip()),
        vip_port_be: request.dst.port().to_be(),
        _pad: [0; 2],
        real_id,
        forward: request.key(),
    };
    (key, value)
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// For each family and protocol: a new connection to the service is
/// rewritten to real:port (another port than the service's), one hop
/// older, with checksums that match a frame built from scratch, and leaves
/// the reverse entry replies will be matched against.
#[test]
fn requests_are_rewritten_to_the_real_and_leave_a_reverse_entry() {
    let mut lb = NatLb::load();
    let services = [
        ("TCP/IPv4", WEB4, WEB4_REAL, CLIENT4, SYN),
        ("UDP/IPv4", DNS4, DNS4_REAL, CLIENT4, L4::Udp),
        ("TCP/IPv6", WEB6, WEB6_REAL, CLIENT6, SYN),
        ("UDP/IPv6", DNS6, DNS6_REAL, CLIENT6, L4::Udp),
    ];
    for (i, (name, vip, real_addr, client, l4)) in (1..).zip(services) {
        let protocol = Frame::new(client, vip, l4).protocol();
        let real = lb.nat_service(vip, protocol, i, 10 + i, real_addr, INGRESS_IFINDEX);
        let request = Frame::new(client, vip, l4);
        let forwarded = request.to_real(&real, real_addr);
        lb.expect_all(&[case(
            &format!("{name}: new connection"),
            &request,
            xdp::TX,
            Some(&forwarded),
            &[Forwarded, FlowNew],
        )]);

        let (key, expected) = expected_reply_entry(&request, 10 + i, real_addr);
        assert_eq!(
            lb.nat_reply(&key),
            Some(expected),
            "{name}: LB_NAT_REPLIES entry"
        );
        let flow = lb.flow(&request.key()).expect("forward flow recorded");
        assert_eq!(flow.real_id, 10 + i, "{name}: flow's real");

        // The next packet of the same flow is rewritten the same way.
        let next = Frame::new(client, vip, if l4 == SYN { ACK } else { l4 });
        lb.expect_all(&[case(
            &format!("{name}: same flow"),
            &next,
            xdp::TX,
            Some(&next.to_real(&real, real_addr)),
            &[Forwarded, FlowHit],
        )]);
    }
}

#[test]
fn ipv4_udp_without_checksum_keeps_none() {
    let mut lb = NatLb::load();
    let real = lb.nat_service(DNS4, proto::UDP, 1, 1, DNS4_REAL, INGRESS_IFINDEX);
    let request = Frame::new(CLIENT4, DNS4, L4::Udp).without_udp_checksum();
    let forwarded = request.to_real(&real, DNS4_REAL);
    lb.expect_all(&[case(
        "IPv4 UDP with checksum 0",
        &request,
        xdp::TX,
        Some(&forwarded),
        &[Forwarded, FlowNew],
    )]);
    // The same flow again, to look at the checksum field itself.
    let (_, out) = lb.run(&request.bytes(), None);
    assert_eq!(
        assert_checksums_valid("checksum 0", &out),
        Some(0),
        "the UDP checksum must stay 0"
    );
}

/// A real configured without a port keeps the port the client asked for.
#[test]
fn real_without_port_keeps_the_service_port() {
    let mut lb = NatLb::load();
    let mut real = lb.nat_service(WEB4, proto::TCP, 1, 1, "198.18.1.1:80", INGRESS_IFINDEX);
    real.port_be = 0;
    lb.set_real(1, real);
    let request = Frame::new(CLIENT4, WEB4, SYN);
    let forwarded = request.to_real(&real, "198.18.1.1:80");
    lb.expect_all(&[case(
        "real port 0",
        &request,
        xdp::TX,
        Some(&forwarded),
        &[Forwarded, FlowNew],
    )]);
    let (key, expected) = expected_reply_entry(&request, 1, "198.18.1.1:80");
    assert_eq!(lb.nat_reply(&key), Some(expected));
}

/// TTL / hop limit 1 would expire on the balancer: left to the kernel,
/// untouched, so it answers "time exceeded"; no reverse entry.
#[test]
fn expiring_requests_are_passed_unchanged() {
    let mut lb = NatLb::load();
    let real = lb.nat_service(WEB4, proto::TCP, 1, 1, WEB4_REAL, INGRESS_IFINDEX);
    lb.nat_service(WEB6, proto::TCP, 2, 2, WEB6_REAL, INGRESS_IFINDEX);
    let v4 = Frame::new(CLIENT4, WEB4, SYN).ttl(1);
    let v6 = Frame::new(CLIENT6, WEB6, SYN).ttl(1);
    lb.expect_all(&[
        case(
            "IPv4 TTL 1",
            &v4,
            xdp::PASS,
            None,
            &[PassTtlExceeded, FlowNew],
        ),
        case(
            "IPv6 hop limit 1",
            &v6,
            xdp::PASS,
            None,
            &[PassTtlExceeded, FlowNew],
        ),
    ]);
    assert_eq!(
        lb.nat_reply(&expected_reply_entry(&v4, 1, WEB4_REAL).0),
        None
    );
    assert_eq!(
        lb.nat_reply(&expected_reply_entry(&v6, 2, WEB6_REAL).0),
        None
    );
    // TTL 2 leaves with 1: still forwarded.
    let v4 = Frame::new(CLIENT4, WEB4, SYN).ttl(2);
    lb.expect_all(&[case(
        "IPv4 TTL 2",
        &v4,
        xdp::TX,
        Some(&v4.to_real(&real, WEB4_REAL)),
        &[Forwarded, FlowNew],
    )]);
}

#[test]
fn real_without_next_hop_is_dropped() {
    let mut lb = NatLb::load();
    let mut real = lb.nat_service(WEB4, proto::TCP, 1, 1, WEB4_REAL, INGRESS_IFINDEX);
    real.flags = REAL_ACTIVE;
    lb.set_real(1, real);
    let request = Frame::new(CLIENT4, WEB4, SYN);
    lb.expect_all(&[case(
        "no next hop",
        &request,
        xdp::DROP,
        None,
        &[DropNoNextHop, FlowNew],
    )]);
}

/// The reverse entry lives in an LRU of its own: if it was evicted while
/// the flow survived, the next request that refreshes the flow (a state
/// change, or its once-a-second timestamp) writes it again; the requests
/// in between do not look.
#[test]
fn missing_reverse_entry_is_written_again() {
    let mut lb = NatLb::load();
    let real = lb.nat_service(WEB4, proto::TCP, 1, 1, WEB4_REAL, INGRESS_IFINDEX);
    let syn = Frame::new(CLIENT4, WEB4, SYN);
    let ack = Frame::new(CLIENT4, WEB4, ACK);
    let (key, expected) = expected_reply_entry(&syn, 1, WEB4_REAL);
    lb.expect_all(&[case(
        "SYN",
        &syn,
        xdp::TX,
        Some(&syn.to_real(&real, WEB4_REAL)),
        &[Forwarded, FlowNew],
    )]);
    lb.forget_nat_reply(&key);
    lb.expect_all(&[case(
        "ACK after eviction (established now)",
        &ack,
        xdp::TX,
        Some(&ack.to_real(&real, WEB4_REAL)),
        &[Forwarded, FlowHit],
    )]);
    assert_eq!(lb.nat_reply(&key), Some(expected));

    lb.forget_nat_reply(&key);
    let next_ack = [case(
        "ACK",
        &ack,
        xdp::TX,
        Some(&ack.to_real(&real, WEB4_REAL)),
        &[Forwarded, FlowHit],
    )];
    lb.expect_all(&next_ack);
    assert_eq!(
        lb.nat_reply(&key),
        None,
        "within the second: not looked for"
    );
    lb.age_flow(&syn.key(), 2);
    lb.expect_all(&next_ack);
    assert_eq!(lb.nat_reply(&key), Some(expected), "on the refresh");
}

/// A NAT flow's replies need its entries, so the flood guard never holds
/// one back: past the limit (one a second here), new NAT connections are
/// still recorded, with their reverse entries.
#[test]
fn nat_flows_are_recorded_past_the_flood_guard_limit() {
    pin_to_current_cpu();
    let mut lb = NatLb::load();
    let guard = FloodGuard {
        new_flows_per_second: 1,
        _pad: 0,
    };
    lb.dataplane
        .maps
        .flood_guard
        .set(0, guard, 0)
        .expect("write the guard");
    let real = lb.nat_service(WEB4, proto::TCP, 1, 1, WEB4_REAL, INGRESS_IFINDEX);
    for port in 40_000..40_003 {
        let client = format!("198.19.7.7:{port}");
        let syn = Frame::new(&client, WEB4, SYN);
        lb.expect_all(&[case(
            &format!("{client}: SYN"),
            &syn,
            xdp::TX,
            Some(&syn.to_real(&real, WEB4_REAL)),
            &[Forwarded, FlowNew],
        )]);
        assert!(lb.flow(&syn.key()).is_some(), "{client}: flow recorded");
        let (key, expected) = expected_reply_entry(&syn, 1, WEB4_REAL);
        assert_eq!(
            lb.nat_reply(&key),
            Some(expected),
            "{client}: reverse entry"
        );
    }
}

// ---------------------------------------------------------------------------
// Replies, routed by the kernel's FIB in a private namespace
// ---------------------------------------------------------------------------

/// A NAT service of the rig: VIP:port and its only real's address:port.
/// The service and the real share the id.
#[derive(Clone, Copy)]
struct Svc {
    id: u32,
    vip: &'static str,
    real: &'static str,
}

const WEB4_SVC: Svc = Svc {
    id: 1,
    vip: WEB4,
    real: WEB4_REAL,
};
const DNS4_SVC: Svc = Svc {
    id: 2,
    vip: DNS4,
    real: DNS4_REAL,
};
const WEB6_SVC: Svc = Svc {
    id: 3,
    vip: WEB6,
    real: WEB6_REAL,
};
const DNS6_SVC: Svc = Svc {
    id: 4,
    vip: DNS6,
    real: DNS6_REAL,
};

/// The outside interface's own MAC: the source of routed replies.
const OUTSIDE_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0e, 0x02];
/// The gateway towards the clients: the destination of routed replies.
const GATEWAY_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0xfe];
/// Clients behind a gateway without a neighbour entry.
const UNRESOLVED_CLIENT4: &str = "198.19.8.7:40000";
const UNRESOLVED_CLIENT6: &str = "[fd00:d::7]:40000";
/// Clients nothing routes to.
const UNROUTABLE_CLIENT4: &str = "198.18.200.7:40000";
const UNROUTABLE_CLIENT6: &str = "[fd00:e::7]:40000";
/// Clients behind a blackhole route.
const BLACKHOLED_CLIENT4: &str = "198.19.9.7:40000";
/// Clients behind a path with an MTU of 1280.
const NARROW_CLIENT4: &str = "198.19.10.7:40000";
const NARROW_CLIENT6: &str = "[fd00:f::7]:40000";

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
struct Rig {
    lb: NatLb,
    inside: u32,
    outside: u32,
    reals: BTreeMap<u32, Real>,
}

impl Rig {
    fn new() -> Self {
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
        lb.add_tx_port(inside);
        lb.add_tx_port(outside);
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
    fn request(&mut self, svc: Svc, client: &str, l4: L4) {
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

    fn expect_all(&mut self, cases: Vec<Case>) {
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
    fn state(&self, svc: Svc, client: &str) -> Option<ConnectionState> {
        let key = Frame::new(client, svc.vip, SYN).key();
        let flow = self.lb.flow(&key).expect("forward flow");
        ConnectionState::from_u8(flow.state)
    }
}

/// The real's packet to `client`, as it reaches the balancer.
fn reply(svc: Svc, client: &str, l4: L4) -> Frame {
    Frame::from_real(svc.id, svc.real, client, l4)
}

/// Rewritten to come from the VIP and redirected to the client's gateway
/// with the MACs the route lookup returned.
fn routed(name: &str, reply: &Frame, svc: Svc) -> Case {
    let translated = reply.sent_from_vip(svc.vip, OUTSIDE_MAC, GATEWAY_MAC);
    case(name, reply, xdp::REDIRECT, Some(&translated), &[NatReplies])
}

/// Rewritten to come from the VIP and passed to the kernel (the MACs are
/// its business then).
fn passed_translated(name: &str, reply: &Frame, svc: Svc, counter: GlobalCounter) -> Case {
    let translated = reply.sent_from_vip(svc.vip, reply.src_mac, reply.dst_mac);
    case(name, reply, xdp::PASS, Some(&translated), &[counter])
}

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
            let (real_before, service_before) = rig.lb.svc_counters(svc);
            rig.expect_all(vec![routed(&format!("{name}: reply"), &answer, svc)]);
            // ipvsadm's OutPkts / OutBytes, for the real and its service.
            let out = TrafficCounters {
                out_packets: 1,
                out_bytes: answer.bytes().len() as u64,
                ..TrafficCounters::default()
            };
            let (real_after, service_after) = rig.lb.svc_counters(svc);
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
        let (_, out) = rig.lb.run(&answer.bytes(), Some(rig.inside));
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
        let untouched = |name: &str, frame: &Frame, action, counter| {
            case(name, frame, action, None, &[counter])
        };
        let before = [WEB4_SVC, WEB6_SVC].map(|svc| rig.lb.svc_counters(svc));
        rig.expect_all(vec![
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
        ]);
        // Out counters: only the replies that went on translated (to the
        // kernel, for want of a neighbour), one per service; not the
        // dropped ones nor those passed as they came.
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
            let (real_after, service_after) = rig.lb.svc_counters(svc);
            assert_eq!(delta(real_after, real_before), out, "{}: real", svc.vip);
            assert_eq!(
                delta(service_after, service_before),
                out,
                "{}: service",
                svc.vip
            );
        }
    });
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

// ---------------------------------------------------------------------------
// The reply cache (lb-ebpf/src/nat/reply_cache.rs)
// ---------------------------------------------------------------------------

impl Rig {
    /// An established TCP flow from `client` whose first data reply (from
    /// the reply path) filled this CPU's reply cache; its reverse entry is
    /// then removed behind the cache's back, as lbd never does without
    /// bumping the generation. A reply the cache answers is still routed
    /// to the client; one that takes the reply path is not a reply any
    /// more, and passes untouched.
    fn cached_flow(&mut self, svc: Svc, client: &str) -> Frame {
        pin_to_current_cpu();
        self.request(svc, client, SYN);
        self.request(svc, client, ACK);
        let data = reply(svc, client, ACK);
        self.expect_all(vec![routed("first data reply", &data, svc)]);
        let reverse = data.key();
        self.lb
            .dataplane
            .maps
            .nat_replies
            .remove(&reverse)
            .expect("remove the reverse entry");
        data
    }
}

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
            let before = rig.lb.svc_counters(svc);
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
            let after = rig.lb.svc_counters(svc);
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

            rig.lb
                .dataplane
                .maps
                .invalidate_flow_cache()
                .expect("bump the generation");
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
            rig.lb
                .dataplane
                .maps
                .nat_replies
                .remove(&data.key())
                .expect("remove the reverse entry");
            rig.expect_all(vec![not_a_reply("nothing was cached", &data)]);
        }
    });
}

/// `client` ("addr:port") with its port moved up by `by`.
fn client_port(client: &'static str, by: u16) -> &'static str {
    let address = sa(client);
    let moved = SocketAddr::new(address.ip(), address.port() + by).to_string();
    Box::leak(moved.into_boxed_str())
}

/// ICMP errors a NAT real sends about a NAT flow are translated like its
/// replies: from the VIP, quoting client -> VIP:port as the client sent it
/// (quoted IPv4 header checksum, quoted TCP/UDP checksum when quoted, ICMP
/// checksum with the ICMPv6 pseudo-header), and routed to the client.
#[test]
fn icmp_errors_from_reals_are_translated() {
    in_private_netns(|| {
        let mut rig = Rig::new();
        rig.request(DNS4_SVC, CLIENT4, L4::Udp);
        rig.request(DNS6_SVC, CLIENT6, L4::Udp);
        rig.request(WEB4_SVC, CLIENT4, SYN);
        rig.request(WEB6_SVC, CLIENT6, SYN);
        // (name, service, client, what the client sent, error, bytes quoted)
        let errors = [
            (
                "IPv4 UDP port unreachable",
                DNS4_SVC,
                CLIENT4,
                L4::Udp,
                IcmpError::PortUnreachable,
                None,
            ),
            (
                "IPv6 UDP port unreachable",
                DNS6_SVC,
                CLIENT6,
                L4::Udp,
                IcmpError::PortUnreachable,
                None,
            ),
            // RFC 792's minimum quote: the TCP checksum is not in it.
            (
                "IPv4 TCP time exceeded, header and 8 bytes quoted",
                WEB4_SVC,
                CLIENT4,
                SYN,
                IcmpError::TimeExceeded,
                Some(28),
            ),
            (
                "IPv4 TCP fragmentation needed, whole segment quoted",
                WEB4_SVC,
                CLIENT4,
                SYN,
                IcmpError::PacketTooBig,
                None,
            ),
            (
                "IPv6 TCP packet too big, whole segment quoted",
                WEB6_SVC,
                CLIENT6,
                SYN,
                IcmpError::PacketTooBig,
                None,
            ),
        ];
        let mut cases = Vec::new();
        for (name, svc, client, l4, kind, quoted) in errors {
            let sent = Frame::new(client, svc.vip, l4);
            // As the real received it, and as the client must see it
            // quoted: its own packet, one hop older.
            let received = sent.to_real(&rig.reals[&svc.id], svc.real).bytes();
            let expected = sent.clone().ttl(sent.ttl - 1).bytes();
            let len = quoted.unwrap_or(received.len() - 14);
            let (real, vip, client) = (sa(svc.real).ip(), sa(svc.vip).ip(), sa(client).ip());
            let from_real = icmp_error(
                (real_mac(svc.id), LB_MAC),
                (real, client),
                64,
                kind,
                &received[14..14 + len],
            );
            let from_vip = icmp_error(
                (OUTSIDE_MAC, GATEWAY_MAC),
                (vip, client),
                63,
                kind,
                &expected[14..14 + len],
            );
            cases.push(Case {
                name: name.into(),
                frame: from_real,
                action: xdp::REDIRECT,
                output: Some(from_vip),
                counters: vec![NatReplies],
                ingress: None,
            });
        }

        // What stays as it came.
        let quote = |client: &str, svc: Svc| {
            let sent = Frame::new(client, svc.vip, L4::Udp);
            sent.to_real(&rig.reals[&svc.id], svc.real).bytes()[14..].to_vec()
        };
        let untouched = |name: &str, frame: Vec<u8>, action, counter| Case {
            name: name.into(),
            frame,
            action,
            output: None,
            counters: vec![counter],
            ingress: None,
        };
        let (real4, client4) = (sa(DNS4_REAL).ip(), sa(CLIENT4).ip());
        let error = |from, ttl, quote: &[u8]| {
            icmp_error(
                (real_mac(2), LB_MAC),
                (from, client4),
                ttl,
                IcmpError::PortUnreachable,
                quote,
            )
        };
        let mut echo = Vec::new();
        PacketBuilder::ethernet2(real_mac(2), LB_MAC)
            .ipv4([198, 18, 1, 2], [198, 19, 7, 7], 64)
            .icmpv4_echo_request(7, 1)
            .write(&mut echo, b"ping")
            .unwrap();
        cases.extend([
            untouched(
                "about a flow the balancer does not know",
                error(real4, 64, &quote("198.19.7.7:40001", DNS4_SVC)),
                xdp::PASS,
                PassNotVip,
            ),
            untouched(
                "from a router, not the real",
                error(ip("198.18.1.200"), 64, &quote(CLIENT4, DNS4_SVC)),
                xdp::PASS,
                PassNotVip,
            ),
            untouched("a NAT real's echo request", echo, xdp::PASS, PassNotVip),
            untouched(
                "TTL 1",
                error(real4, 1, &quote(CLIENT4, DNS4_SVC)),
                xdp::PASS,
                PassTtlExceeded,
            ),
        ]);
        rig.expect_all(cases);
    });
}
