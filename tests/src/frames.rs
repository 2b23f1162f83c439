//! The one frame builder of the fixtures and the benchmarks: Ethernet
//! frames described as data ([`Packet`]) and built with `etherparse`, the
//! MAC addresses every test rig agrees on, and the few byte-level edits
//! (padding, truncating, an extension header, a new flow) `etherparse`
//! cannot express.
//!
//! A frame is kept as a description, not bytes, so the expected output of a
//! forwarded frame is the same description with other MACs, built the same
//! independent way.

use std::net::{IpAddr, SocketAddr};

use etherparse::{
    ArpEthIpv4Packet, ArpOperation, EtherType, IpDscp, IpEcn, IpFragOffset, IpHeaders, IpNumber,
    Ipv4Header, Ipv4Options, Ipv6Extensions, Ipv6FlowLabel, Ipv6FragmentHeader, Ipv6Header,
    Ipv6RawExtHeader, PacketBuilder, PacketBuilderStep, VlanId,
};
use lb_common::{Addr, Family, FlowKey, Real, flow_hash::flow_hash, proto};

/// The router in front of the balancer: source MAC of every client frame.
pub const ROUTER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
/// The balancer's ingress MAC: destination of every client frame.
pub const LB_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
/// The balancer's egress MAC, the source MAC of forwarded frames. Deliberately
/// not `LB_MAC`, so a test notices if the source is left untouched.
pub const LB_EGRESS_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0xe1];
/// A real server's own MAC where a test plays the real (decapsulation).
pub const REAL_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x11];

/// Ethernet's minimum frame without the FCS: 64 bytes on the wire.
pub const MIN_FRAME: usize = 60;

/// Parses a literal address: fixtures read better with "198.18.0.10:80".
pub fn sa(text: &str) -> SocketAddr {
    text.parse()
        .unwrap_or_else(|_| panic!("bad socket address {text}"))
}

pub fn ip(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|_| panic!("bad address {text}"))
}

/// A distinct, recognisable MAC per real id.
pub fn real_mac(real_id: u32) -> [u8; 6] {
    let [_, _, hi, lo] = real_id.to_be_bytes();
    [0x02, 0x00, 0x5e, 0x10, hi, lo]
}

#[derive(Clone, Copy, Debug)]
pub enum Transport {
    Tcp {
        src_port: u16,
        dst_port: u16,
        syn: bool,
        ack: bool,
        fin: bool,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
    },
    IcmpEcho,
}

/// IPv4 fragment fields, or an IPv6 Fragment extension header.
#[derive(Clone, Copy, Debug)]
pub struct Fragment {
    /// In 8-byte units.
    pub offset: u16,
    pub more: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipv6Ext {
    HopByHop,
    DestinationOptions,
}

/// Everything needed to build one frame with `etherparse`. Kept as a
/// description (not bytes) so the expected output of a forwarded frame is
/// the same description with other MACs, built the same independent way.
#[derive(Clone, Debug)]
pub struct Packet {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub vlan: Option<u16>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub transport: Transport,
    pub ipv4_options: Vec<u8>,
    /// TTL or hop limit.
    pub ttl: u8,
    pub dont_fragment: bool,
    pub fragment: Option<Fragment>,
    pub ipv6_ext: Option<Ipv6Ext>,
    pub payload: Vec<u8>,
}

impl Packet {
    /// A frame from the router to the balancer carrying a short payload.
    pub fn new(src: IpAddr, dst: IpAddr, transport: Transport) -> Self {
        assert_eq!(
            src.is_ipv4(),
            dst.is_ipv4(),
            "mixed address families in a fixture"
        );
        Self {
            src_mac: ROUTER_MAC,
            dst_mac: LB_MAC,
            vlan: None,
            src,
            dst,
            transport,
            ipv4_options: Vec::new(),
            ttl: 64,
            dont_fragment: false,
            fragment: None,
            ipv6_ext: None,
            payload: b"fixture payload".to_vec(),
        }
    }

    /// A client's SYN (no ACK): opens a connection.
    pub fn tcp_syn(client: &str, vip: &str) -> Self {
        Self::tcp(client, vip, true, false)
    }

    /// A client's ACK within an established connection.
    pub fn tcp_ack(client: &str, vip: &str) -> Self {
        Self::tcp(client, vip, false, true)
    }

    fn tcp(client: &str, vip: &str, syn: bool, ack: bool) -> Self {
        let (client, vip) = (sa(client), sa(vip));
        Self::new(
            client.ip(),
            vip.ip(),
            Transport::Tcp {
                src_port: client.port(),
                dst_port: vip.port(),
                syn,
                ack,
                fin: false,
            },
        )
    }

    pub fn udp(client: &str, vip: &str) -> Self {
        let (client, vip) = (sa(client), sa(vip));
        Self::new(
            client.ip(),
            vip.ip(),
            Transport::Udp {
                src_port: client.port(),
                dst_port: vip.port(),
            },
        )
    }

    /// ICMP echo request (ICMPv6 for IPv6 addresses).
    pub fn icmp_echo(src: &str, dst: &str) -> Self {
        Self::new(ip(src), ip(dst), Transport::IcmpEcho)
    }

    pub fn vlan(mut self, id: u16) -> Self {
        self.vlan = Some(id);
        self
    }

    /// IPv4 options; a multiple of four bytes, at most 40 (IHL 6..15).
    pub fn ipv4_options(mut self, options: &[u8]) -> Self {
        assert!(self.src.is_ipv4());
        self.ipv4_options = options.to_vec();
        self
    }

    pub fn dont_fragment(mut self) -> Self {
        self.dont_fragment = true;
        self
    }

    /// IPv4: fragment offset and MF. IPv6: a Fragment extension header.
    pub fn fragment(mut self, offset: u16, more: bool) -> Self {
        self.fragment = Some(Fragment { offset, more });
        self
    }

    pub fn ipv6_ext(mut self, ext: Ipv6Ext) -> Self {
        assert!(self.src.is_ipv6());
        self.ipv6_ext = Some(ext);
        self
    }

    /// The same packet as the balancer should send it to `real` with direct
    /// routing: only the Ethernet addresses change.
    pub fn forwarded_to(&self, real: &Real) -> Self {
        let mut out = self.clone();
        out.src_mac = real.src_mac;
        out.dst_mac = real.dst_mac;
        out
    }

    pub fn bytes(&self) -> Vec<u8> {
        let ip = self.ip_headers();
        let eth = PacketBuilder::ethernet2(self.src_mac, self.dst_mac);
        match self.vlan {
            Some(id) => {
                let id = VlanId::try_new(id).expect("VLAN id fits in 12 bits");
                self.write_transport(eth.single_vlan(id).ip(ip))
            }
            None => self.write_transport(eth.ip(ip)),
        }
    }

    fn ip_headers(&self) -> IpHeaders {
        // Protocol/next-header, lengths and checksums are filled in by the
        // builder from what follows.
        match (self.src, self.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let mut header =
                    Ipv4Header::new(0, self.ttl, IpNumber::TCP, src.octets(), dst.octets())
                        .expect("valid IPv4 header");
                header.identification = 0x1234;
                header.dont_fragment = self.dont_fragment;
                if let Some(fragment) = self.fragment {
                    header.more_fragments = fragment.more;
                    header.fragment_offset =
                        IpFragOffset::try_new(fragment.offset).expect("13-bit offset");
                }
                header.options = Ipv4Options::try_from(self.ipv4_options.as_slice())
                    .expect("IPv4 options: a multiple of 4 bytes, at most 40");
                IpHeaders::Ipv4(header, Default::default())
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let header = Ipv6Header {
                    hop_limit: self.ttl,
                    source: src.octets(),
                    destination: dst.octets(),
                    ..Default::default()
                };
                // PadN options filling the 6 bytes an extension header
                // carries at minimum.
                let padding = [1, 4, 0, 0, 0, 0];
                let raw = || Ipv6RawExtHeader::new_raw(IpNumber::TCP, &padding).unwrap();
                let mut exts = Ipv6Extensions::default();
                match self.ipv6_ext {
                    Some(Ipv6Ext::HopByHop) => exts.hop_by_hop_options = Some(raw()),
                    Some(Ipv6Ext::DestinationOptions) => exts.destination_options = Some(raw()),
                    None => {}
                }
                if let Some(fragment) = self.fragment {
                    exts.fragment = Some(Ipv6FragmentHeader::new(
                        IpNumber::TCP,
                        IpFragOffset::try_new(fragment.offset).expect("13-bit offset"),
                        fragment.more,
                        0x1234_5678,
                    ));
                }
                IpHeaders::Ipv6(header, exts)
            }
            _ => unreachable!("checked in Packet::new"),
        }
    }

    fn write_transport(&self, step: PacketBuilderStep<IpHeaders>) -> Vec<u8> {
        let mut out = Vec::new();
        let payload = &self.payload;
        match self.transport {
            Transport::Tcp {
                src_port,
                dst_port,
                syn,
                ack,
                fin,
            } => {
                let mut tcp = step.tcp(src_port, dst_port, 1_000, 64_240);
                if syn {
                    tcp = tcp.syn();
                }
                if ack {
                    tcp = tcp.ack(2_000);
                }
                if fin {
                    tcp = tcp.fin();
                }
                tcp.write(&mut out, payload)
            }
            Transport::Udp { src_port, dst_port } => {
                step.udp(src_port, dst_port).write(&mut out, payload)
            }
            Transport::IcmpEcho if self.src.is_ipv4() => {
                step.icmpv4_echo_request(7, 1).write(&mut out, payload)
            }
            Transport::IcmpEcho => step.icmpv6_echo_request(7, 1).write(&mut out, payload),
        }
        .expect("etherparse builds the frame");
        out
    }

    /// The 5-tuple the data plane keys the flow table and the hash with.
    pub fn flow_key(&self) -> FlowKey {
        let (protocol, src_port, dst_port) = match self.transport {
            Transport::Tcp {
                src_port, dst_port, ..
            } => (proto::TCP, src_port, dst_port),
            Transport::Udp { src_port, dst_port } => (proto::UDP, src_port, dst_port),
            Transport::IcmpEcho => panic!("ICMP has no flow key"),
        };
        FlowKey {
            src: Addr::from(self.src),
            dst: Addr::from(self.dst),
            src_port: src_port.to_be(),
            dst_port: dst_port.to_be(),
            protocol,
            family: Family::of(&self.src) as u8,
            _pad: [0; 2],
        }
    }
}

/// What TUN makes of `frame` for `real`: the client's IP packet, unchanged,
/// inside an outer header from the tunnel source to the real, with the
/// inner packet's DSCP/ECN, TTL and DF (IPv6: DF always), and (IPv6) the
/// flow's hash as the flow label; the Ethernet header (and a VLAN tag, if
/// any) is kept with the next hop's MACs and the outer ethertype.
pub fn tunnelled(frame: &[u8], real: &Real, flow: &FlowKey) -> Vec<u8> {
    let l2_len = if frame[12..14] == [0x81, 0x00] {
        18
    } else {
        14
    };
    let inner = &frame[l2_len..];
    let (inner_proto, tos, ttl, dont_fragment) = match inner[0] >> 4 {
        4 => {
            let (header, _) = Ipv4Header::from_slice(inner).expect("inner IPv4");
            let tos = (header.dscp.value() << 2) | header.ecn.value();
            (
                IpNumber::IPV4,
                tos,
                header.time_to_live,
                header.dont_fragment,
            )
        }
        _ => {
            let (header, _) = Ipv6Header::from_slice(inner).expect("inner IPv6");
            (IpNumber::IPV6, header.traffic_class, header.hop_limit, true)
        }
    };
    let outer_v4 = real.family == Family::V4 as u8;
    let ether_type = if outer_v4 {
        EtherType::IPV4
    } else {
        EtherType::IPV6
    };
    let mut out = frame[..l2_len].to_vec();
    out[..6].copy_from_slice(&real.dst_mac);
    out[6..12].copy_from_slice(&real.src_mac);
    out[l2_len - 2..].copy_from_slice(&ether_type.0.to_be_bytes());
    let (src, dst) = (real.tunnel_src.octets(), real.addr.octets());
    if outer_v4 {
        let mut outer = Ipv4Header::new(
            inner.len() as u16,
            ttl,
            inner_proto,
            src[..4].try_into().expect("an IPv4 tunnel source"),
            dst[..4].try_into().expect("an IPv4 real"),
        )
        .expect("outer IPv4");
        outer.dont_fragment = dont_fragment;
        outer.dscp = IpDscp::try_new(tos >> 2).expect("6-bit DSCP");
        outer.ecn = IpEcn::try_new(tos & 3).expect("2-bit ECN");
        outer.header_checksum = outer.calc_header_checksum();
        outer.write(&mut out).expect("write IPv4");
    } else {
        let outer = Ipv6Header {
            traffic_class: tos,
            flow_label: Ipv6FlowLabel::try_new(flow_hash(flow) & 0xf_ffff).expect("20 bits"),
            payload_length: inner.len() as u16,
            next_header: inner_proto,
            hop_limit: ttl,
            source: src,
            destination: dst,
        };
        outer.write(&mut out).expect("write IPv6");
    }
    out.extend_from_slice(inner);
    out
}

/// An ARP who-has from the router, broadcast.
pub fn arp_request(target: &str) -> Vec<u8> {
    let IpAddr::V4(target) = ip(target) else {
        panic!("ARP is IPv4 only");
    };
    let arp = ArpEthIpv4Packet {
        operation: ArpOperation::REQUEST,
        sender_mac: ROUTER_MAC,
        sender_ipv4: [198, 18, 0, 1],
        target_mac: [0; 6],
        target_ipv4: target.octets(),
    };
    let mut out = Vec::new();
    PacketBuilder::ethernet2(ROUTER_MAC, [0xff; 6])
        .arp(arp.into())
        .write(&mut out)
        .expect("etherparse builds the ARP frame");
    out
}

/// Pads a frame with zeros to the 60-byte Ethernet minimum (without FCS),
/// as a NIC delivers a short packet.
pub fn padded_to_ethernet_minimum(mut frame: Vec<u8>) -> Vec<u8> {
    assert!(frame.len() < MIN_FRAME);
    frame.resize(MIN_FRAME, 0);
    frame
}

/// Inserts a minimal (8-byte) IPv6 extension header of type `kind` right
/// after the IPv6 header of an untagged frame, for extension headers
/// `etherparse` cannot build. The transport checksum is unaffected: the
/// pseudo-header holds the upper-layer length, which does not change.
pub fn with_ipv6_extension_header(frame: &[u8], kind: u8) -> Vec<u8> {
    const ETH: usize = 14;
    assert_eq!(frame[12..14], [0x86, 0xdd], "an untagged IPv6 frame");
    let mut out = frame.to_vec();
    let next_header = std::mem::replace(&mut out[ETH + 6], kind);
    let payload_len = u16::from_be_bytes([out[ETH + 4], out[ETH + 5]]) + 8;
    out[ETH + 4..ETH + 6].copy_from_slice(&payload_len.to_be_bytes());
    // Next Header, Hdr Ext Len 0 (8 bytes in all), six zero bytes (for an
    // options header: six Pad1 options).
    let ext = [next_header, 0, 0, 0, 0, 0, 0, 0];
    out.splice(ETH + 40..ETH + 40, ext);
    out
}

/// Cuts a frame to its first `len` bytes.
pub fn truncated(mut frame: Vec<u8>, len: usize) -> Vec<u8> {
    assert!(len < frame.len(), "truncating to {len} of {}", frame.len());
    frame.truncate(len);
    frame
}

const ETHERNET: usize = 14;
const IPV4_SRC: usize = ETHERNET + 12;
const IPV4_CHECKSUM: usize = ETHERNET + 10;
const IPV6_SRC: usize = ETHERNET + 8;

/// Gives `frame` (built by [`Flow::frame`]) the `index`-th distinct source
/// address and port, so each index is a flow never seen before. The IPv4
/// header checksum is recomputed; the L4 checksum is left stale, which
/// neither the balancer (it updates checksums incrementally) nor the sink
/// (it drops) reads.
pub fn make_new_flow(frame: &mut [u8], ipv6: bool, index: u64) {
    const PORTS: u64 = 64_512;
    let port = 1024 + (index % PORTS) as u16;
    let host = (index / PORTS) as u16;
    let (src, l4) = if ipv6 {
        (IPV6_SRC + 14, ETHERNET + 40)
    } else {
        (IPV4_SRC + 2, ETHERNET + 20)
    };
    frame[src..src + 2].copy_from_slice(&host.to_be_bytes());
    frame[l4..l4 + 2].copy_from_slice(&port.to_be_bytes());
    if !ipv6 {
        frame[IPV4_CHECKSUM..IPV4_CHECKSUM + 2].fill(0);
        let checksum = ipv4_header_checksum(&frame[ETHERNET..ETHERNET + 20]);
        frame[IPV4_CHECKSUM..IPV4_CHECKSUM + 2].copy_from_slice(&checksum.to_be_bytes());
    }
}

fn ipv4_header_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks_exact(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use etherparse::{LinkExtSlice, NetSlice, SlicedPacket, TransportSlice};

    use super::*;

    fn source(frame: &[u8]) -> (IpAddr, u16) {
        let packet = SlicedPacket::from_ethernet(frame).unwrap();
        let address = match packet.net.unwrap() {
            NetSlice::Ipv4(ip) => {
                assert!(
                    ip.header().to_header().calc_header_checksum() == ip.header().header_checksum()
                );
                IpAddr::V4(ip.header().source_addr())
            }
            NetSlice::Ipv6(ip) => IpAddr::V6(ip.header().source_addr()),
            _ => unreachable!(),
        };
        let port = match packet.transport.unwrap() {
            TransportSlice::Tcp(tcp) => tcp.source_port(),
            TransportSlice::Udp(udp) => udp.source_port(),
            _ => unreachable!(),
        };
        (address, port)
    }

    #[test]
    fn every_index_is_a_distinct_flow_with_a_valid_ipv4_header() {
        for (client, vip, ipv6) in [
            ("198.18.0.100:40000", "198.18.1.10:80", false),
            ("[fd00:18::100]:40000", "[fd00:18:1::10]:80", true),
        ] {
            let template = Packet::tcp_ack(client, vip).bytes();
            let mut seen = std::collections::HashSet::new();
            for index in [0, 1, 64_511, 64_512, 64_513, 1_000_000] {
                let mut frame = template.clone();
                make_new_flow(&mut frame, ipv6, index);
                assert!(seen.insert(source(&frame)), "index {index} repeats a flow");
            }
        }
    }

    #[test]
    fn a_packet_parses_back_to_its_description() {
        let packet = Packet {
            ttl: 9,
            ..Packet::tcp_syn("198.19.7.7:40000", "198.18.0.10:80").vlan(7)
        };
        let frame = packet.bytes();
        let parsed = SlicedPacket::from_ethernet(&frame).unwrap();
        let Some(LinkExtSlice::Vlan(vlan)) = parsed.link_exts.first() else {
            panic!("no VLAN tag: {parsed:?}");
        };
        assert_eq!(vlan.vlan_identifier().value(), 7);
        let Some(NetSlice::Ipv4(ipv4)) = &parsed.net else {
            panic!("not IPv4");
        };
        assert_eq!(ipv4.header().ttl(), 9);
        assert_eq!(IpAddr::V4(ipv4.header().source_addr()), ip("198.19.7.7"));
        assert_eq!(
            IpAddr::V4(ipv4.header().destination_addr()),
            ip("198.18.0.10")
        );
        let Some(TransportSlice::Tcp(tcp)) = &parsed.transport else {
            panic!("not TCP");
        };
        assert_eq!((tcp.source_port(), tcp.destination_port()), (40_000, 80));
        assert!(tcp.syn() && !tcp.ack() && !tcp.fin());
        assert_eq!(tcp.payload(), b"fixture payload");
        assert_eq!(&frame[..12], &[LB_MAC, ROUTER_MAC].concat()[..]);
    }

    #[test]
    fn tunnelled_puts_the_inner_packet_unchanged_behind_an_outer_header() {
        let packet = Packet {
            ttl: 33,
            ..Packet::udp("198.19.7.7:40000", "198.18.0.10:53")
        };
        let frame = packet.bytes();
        let real = Real {
            addr: Addr::from(ip("198.18.1.1")),
            tunnel_src: Addr::from(ip("198.18.0.1")),
            family: Family::V4 as u8,
            dst_mac: real_mac(1),
            src_mac: LB_EGRESS_MAC,
            ..Real::default()
        };
        let out = tunnelled(&frame, &real, &packet.flow_key());
        assert_eq!(&out[..12], &[real_mac(1), LB_EGRESS_MAC].concat()[..]);
        let (outer, inner) = Ipv4Header::from_slice(&out[14..]).unwrap();
        assert_eq!(outer.protocol, IpNumber::IPV4);
        assert_eq!(outer.time_to_live, 33);
        assert_eq!(outer.source, [198, 18, 0, 1]);
        assert_eq!(outer.destination, [198, 18, 1, 1]);
        assert_eq!(outer.header_checksum, outer.calc_header_checksum());
        assert_eq!(inner, &frame[14..]);
    }

    #[test]
    fn an_extension_header_goes_after_the_ipv6_header_and_counts_in_its_length() {
        let frame = Packet::udp("[fd00:c::7]:40000", "[fd00::10]:53").bytes();
        let out = with_ipv6_extension_header(&frame, 60);
        assert_eq!(out.len(), frame.len() + 8);
        let length = |frame: &[u8]| u16::from_be_bytes([frame[18], frame[19]]);
        assert_eq!(length(&out), length(&frame) + 8);
        assert_eq!(out[20], 60, "the IPv6 header names the extension");
        assert_eq!(out[54], u8::from(IpNumber::UDP), "which names UDP");
        assert_eq!(out[62..], frame[54..]);
    }
}
