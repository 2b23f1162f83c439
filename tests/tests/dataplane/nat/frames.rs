//! The NAT fixtures' frames: a request or reply described by its
//! addresses, ports and TCP flags, built with etherparse, the rewrites the
//! balancer must make of it, and the reals' ICMP errors; with independent
//! checksum checks of what the program sent.

use std::net::{IpAddr, SocketAddr};

use etherparse::{
    Icmpv4Header, Icmpv4Type, Icmpv6Header, Icmpv6Type, IpHeaders, IpNumber, Ipv4Header,
    Ipv6Header, NetHeaders, PacketBuilder, PacketHeaders, TcpHeader, TransportHeader, UdpHeader,
    icmpv4::{DestUnreachableHeader, TimeExceededCode},
    icmpv6::DestUnreachableCode,
};
use lb_common::{Addr, Family, FlowKey, Real, proto};
use lb_tests::frames::{LB_MAC, Packet, ROUTER_MAC, Transport, real_mac, sa};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum L4 {
    Tcp { syn: bool, ack: bool, fin: bool },
    Udp,
}

pub(super) const SYN: L4 = L4::Tcp {
    syn: true,
    ack: false,
    fin: false,
};
pub(super) const SYN_ACK: L4 = L4::Tcp {
    syn: true,
    ack: true,
    fin: false,
};
pub(super) const ACK: L4 = L4::Tcp {
    syn: false,
    ack: true,
    fin: false,
};
pub(super) const FIN_ACK: L4 = L4::Tcp {
    syn: false,
    ack: true,
    fin: true,
};

/// One frame, described so that an expected output is the same description
/// with a few fields changed, built the same independent way.
#[derive(Clone, Debug)]
pub(super) struct Frame {
    pub(super) src_mac: [u8; 6],
    pub(super) dst_mac: [u8; 6],
    pub(super) src: SocketAddr,
    pub(super) dst: SocketAddr,
    pub(super) l4: L4,
    pub(super) ttl: u8,
    pub(super) dont_fragment: bool,
    /// IPv4 UDP sent without a checksum (0 on the wire).
    pub(super) no_udp_checksum: bool,
    pub(super) payload: Vec<u8>,
}

impl Frame {
    /// A client's packet as the router in front of the balancer sends it.
    pub(super) fn new(src: &str, dst: &str, l4: L4) -> Self {
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
    pub(super) fn from_real(real_id: u32, src: &str, dst: &str, l4: L4) -> Self {
        Self {
            src_mac: real_mac(real_id),
            ..Self::new(src, dst, l4)
        }
    }

    pub(super) fn ttl(self, ttl: u8) -> Self {
        Self { ttl, ..self }
    }

    pub(super) fn without_udp_checksum(self) -> Self {
        assert!(self.src.is_ipv4() && self.l4 == L4::Udp);
        Self {
            no_udp_checksum: true,
            ..self
        }
    }

    pub(super) fn dont_fragment(self) -> Self {
        Self {
            dont_fragment: true,
            ..self
        }
    }

    pub(super) fn payload_len(self, len: usize) -> Self {
        Self {
            payload: vec![0x5a; len],
            ..self
        }
    }

    /// As the balancer must send a request on: to `real`, one hop older,
    /// with the MACs of the real's next hop.
    pub(super) fn to_real(&self, real: &Real, real_addr: &str) -> Self {
        Self {
            src_mac: real.src_mac,
            dst_mac: real.dst_mac,
            dst: sa(real_addr),
            ttl: self.ttl - 1,
            ..self.clone()
        }
    }

    /// As the balancer must send a reply on: from `vip`, one hop older.
    pub(super) fn sent_from_vip(&self, vip: &str, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Self {
        Self {
            src_mac,
            dst_mac,
            src: sa(vip),
            ttl: self.ttl - 1,
            ..self.clone()
        }
    }

    /// The frame, built by the shared frame builder.
    pub(super) fn bytes(&self) -> Vec<u8> {
        let (src_port, dst_port) = (self.src.port(), self.dst.port());
        let transport = match self.l4 {
            L4::Tcp { syn, ack, fin } => Transport::Tcp {
                src_port,
                dst_port,
                syn,
                ack,
                fin,
            },
            L4::Udp => Transport::Udp { src_port, dst_port },
        };
        let packet = Packet {
            src_mac: self.src_mac,
            dst_mac: self.dst_mac,
            ttl: self.ttl,
            dont_fragment: self.dont_fragment,
            payload: self.payload.clone(),
            ..Packet::new(self.src.ip(), self.dst.ip(), transport)
        };
        let mut out = packet.bytes();
        if self.no_udp_checksum {
            // Ethernet (14) + IPv4 (20) + the checksum's offset in UDP (6).
            out[40..42].copy_from_slice(&[0, 0]);
        }
        out
    }

    pub(super) fn protocol(&self) -> u8 {
        match self.l4 {
            L4::Tcp { .. } => proto::TCP,
            L4::Udp => proto::UDP,
        }
    }

    /// The 5-tuple as the data plane keys it.
    pub(super) fn key(&self) -> FlowKey {
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
pub(super) fn assert_checksums_valid(name: &str, frame: &[u8]) -> Option<u16> {
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
pub(super) enum IcmpError {
    PortUnreachable,
    TimeExceeded,
    PacketTooBig,
}

/// An ICMP (ICMPv6 for IPv6 addresses) error from `src` to `dst`, quoting
/// `quote` (an IP packet, or the start of one).
pub(super) fn icmp_error(
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
