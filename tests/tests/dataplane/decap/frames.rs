//! The decapsulation fixtures' frames, built with etherparse: the inner
//! packet on its own, the tunnelled input around it and the expected
//! output from it.

use std::net::{IpAddr, Ipv4Addr};

use etherparse::{
    EtherType, Ethernet2Header, IpDscp, IpEcn, IpFragOffset, IpHeaders, IpNumber, Ipv4Header,
    Ipv4Options, Ipv6Extensions, Ipv6FragmentHeader, Ipv6Header, PacketBuilder, SingleVlanHeader,
    VlanId, VlanPcp,
};
use lb_tests::frames::{REAL_MAC, ROUTER_MAC, ip};

use super::{CLIENT4, CLIENT6, LB4, LB6, REAL4, REAL6, VIP4, VIP6};

/// A bare IP packet as the balancer received it from the client.
#[derive(Clone, Debug)]
pub(super) struct Inner {
    pub(super) bytes: Vec<u8>,
    pub(super) family: IpNumber,
}

impl Inner {
    /// A UDP datagram client -> VIP, with the given ECN bits.
    pub(super) fn udp(src: &str, dst: &str, ecn: IpEcn) -> Self {
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

    pub(super) fn udp4() -> Self {
        Self::udp(CLIENT4, VIP4, IpEcn::ZERO)
    }

    pub(super) fn udp6() -> Self {
        Self::udp(CLIENT6, VIP6, IpEcn::ZERO)
    }

    /// A TCP SYN client -> VIP.
    pub(super) fn tcp_syn(src: &str, dst: &str) -> Self {
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

    pub(super) fn ether_type(&self) -> EtherType {
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
pub(super) struct Tunnel {
    pub(super) vlan: Option<u16>,
    pub(super) outer_src: IpAddr,
    pub(super) outer_dst: IpAddr,
    pub(super) ipv4_options: Vec<u8>,
    /// IPv4: fragment offset (8-byte units) and MF. IPv6: a Fragment header.
    pub(super) fragment: Option<(u16, bool)>,
    pub(super) outer_ecn: IpEcn,
    /// The protocol / next header the outer header announces; defaults to
    /// the inner packet's family.
    pub(super) protocol: Option<IpNumber>,
    pub(super) inner: Inner,
}

impl Tunnel {
    pub(super) fn new(outer_src: &str, outer_dst: &str, inner: Inner) -> Self {
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
    pub(super) fn to_real(outer_v6: bool, inner: Inner) -> Self {
        if outer_v6 {
            Self::new(LB6, REAL6, inner)
        } else {
            Self::new(LB4, REAL4, inner)
        }
    }

    pub(super) fn vlan(mut self, id: u16) -> Self {
        self.vlan = Some(id);
        self
    }

    pub(super) fn ipv4_options(mut self, options: &[u8]) -> Self {
        self.ipv4_options = options.to_vec();
        self
    }

    pub(super) fn fragment(mut self, offset: u16, more: bool) -> Self {
        self.fragment = Some((offset, more));
        self
    }

    pub(super) fn outer_ecn(mut self, ecn: IpEcn) -> Self {
        self.outer_ecn = ecn;
        self
    }

    pub(super) fn protocol(mut self, protocol: IpNumber) -> Self {
        self.protocol = Some(protocol);
        self
    }

    pub(super) fn outer_headers(&self) -> IpHeaders {
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
    pub(super) fn bytes(&self) -> Vec<u8> {
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
    pub(super) fn decapsulated(&self) -> Vec<u8> {
        decapsulated_frame(self.vlan, &self.inner)
    }
}

/// The frame a real's stack receives for `inner` (built without the
/// tunnel, so nothing of the outer header can leak into the expectation).
pub(super) fn decapsulated_frame(vlan: Option<u16>, inner: &Inner) -> Vec<u8> {
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

pub(super) fn v4(text: &str) -> [u8; 4] {
    text.parse::<Ipv4Addr>().expect("IPv4 address").octets()
}
