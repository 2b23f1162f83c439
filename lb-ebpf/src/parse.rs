//! What the balancer needs to know about a packet: its L3 and L4 facts,
//! parsed once. Every read goes through `wire::frame`, which proves to the
//! verifier that the whole header lies inside the frame; the same code
//! runs over byte arrays in the tests beside it.

use lb_common::{Addr, Family, proto};
use network_types::{
    eth::EtherType,
    ip::{Ipv4Hdr, Ipv6Hdr},
    tcp::TcpHdr,
    udp::UdpHdr,
};

use crate::wire::{
    eth,
    frame::{Frame, view},
    ip::{IPV4_DF, IPV4_MF_AND_OFFSET, IPV6_FRAGMENT, is_ipv6_extension},
    l4::{TCP_ACK, TCP_FLAGS_OFFSET, TCP_SYN},
    layout::Layout,
};

/// What the balancer needs from L2/L3.
pub struct L3 {
    pub family: Family,
    pub src: Addr,
    pub dst: Addr,
    /// IPv4 protocol or IPv6 next header.
    pub protocol: u8,
    /// Offset of the IP header from the start of the frame (after the
    /// Ethernet header and any VLAN tag).
    pub l3_offset: usize,
    /// Offset of the L4 header from the start of the frame.
    pub l4_offset: usize,
    /// The IP packet's length from its header (IPv6: payload + 40).
    pub ip_len: u16,
    /// IPv4 TOS / IPv6 traffic class: DSCP and ECN.
    pub tos: u8,
    /// IPv4 TTL / IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 DF bit (IPv6 packets are never fragmented on the way).
    pub dont_fragment: bool,
    pub is_fragment: bool,
    pub has_ipv4_options: bool,
}

impl L3 {
    /// Where its headers are and what they are: what a rewrite needs.
    #[inline(always)]
    pub fn layout(&self) -> Layout {
        Layout {
            family: self.family,
            protocol: self.protocol,
            l3_offset: self.l3_offset,
            l4_offset: self.l4_offset,
        }
    }

    /// An IP header of `family` at `l3_offset`, its transport header at
    /// `l4_offset`: what the version and the layout alone say. The parser
    /// fills in the rest from the header.
    #[inline(always)]
    fn at(family: Family, l3_offset: usize, l4_offset: usize) -> Self {
        Self {
            family,
            src: Addr::UNSPECIFIED,
            dst: Addr::UNSPECIFIED,
            protocol: 0,
            l3_offset,
            l4_offset,
            ip_len: 0,
            tos: 0,
            ttl: 0,
            // IPv6 packets are never fragmented on the way.
            dont_fragment: true,
            is_fragment: false,
            has_ipv4_options: false,
        }
    }
}

pub enum L3Verdict {
    Packet(L3),
    NotIp,
    Truncated,
}

/// What the balancer needs from L4.
pub struct L4 {
    /// Network byte order, as on the wire.
    pub src_port: u16,
    pub dst_port: u16,
    /// A TCP SYN without ACK: the start of a new connection.
    pub is_tcp_syn: bool,
    /// TCP flags byte (0 for UDP).
    pub tcp_flags: u8,
}

pub enum L4Verdict {
    Packet(L4),
    Fragment,
    ExtensionHeader,
    OtherProtocol,
    Truncated,
}

/// Ethernet (with at most one 802.1Q tag) and the IP header.
#[inline(always)]
pub fn l3(frame: &impl Frame) -> L3Verdict {
    let Some((offset, ether_type)) = eth::l2(frame) else {
        return L3Verdict::Truncated;
    };
    let l3 = if ether_type == EtherType::Ipv4 as u16 {
        ipv4(frame, offset)
    } else if ether_type == EtherType::Ipv6 as u16 {
        ipv6(frame, offset)
    } else {
        return L3Verdict::NotIp;
    };
    match l3 {
        Some(l3) => L3Verdict::Packet(l3),
        None => L3Verdict::Truncated,
    }
}

#[inline(always)]
fn ipv4(frame: &impl Frame, offset: usize) -> Option<L3> {
    let ip = view::<Ipv4Hdr>(frame, offset)?;
    let header_len = ip.ihl() as usize;
    if header_len < Ipv4Hdr::LEN {
        return None;
    }
    let frags = u16::from_be_bytes(ip.frags);
    Some(L3 {
        src: Addr::from_v4_octets(ip.src_addr),
        dst: Addr::from_v4_octets(ip.dst_addr),
        protocol: ip.proto,
        ip_len: u16::from_be_bytes(ip.tot_len),
        tos: ip.tos,
        ttl: ip.ttl,
        dont_fragment: frags & IPV4_DF != 0,
        is_fragment: frags & IPV4_MF_AND_OFFSET != 0,
        has_ipv4_options: header_len > Ipv4Hdr::LEN,
        ..L3::at(Family::V4, offset, offset + header_len)
    })
}

#[inline(always)]
fn ipv6(frame: &impl Frame, offset: usize) -> Option<L3> {
    let ip = view::<Ipv6Hdr>(frame, offset)?;
    // Version (4 bits), traffic class (8), flow label (20).
    let vcf = u32::from_be_bytes(ip.vcf);
    Some(L3 {
        src: Addr::from_v6_octets(ip.src_addr),
        dst: Addr::from_v6_octets(ip.dst_addr),
        protocol: ip.next_hdr,
        ip_len: u16::from_be_bytes(ip.payload_len).wrapping_add(Ipv6Hdr::LEN as u16),
        tos: (vcf >> 20) as u8,
        ttl: ip.hop_limit,
        is_fragment: ip.next_hdr == IPV6_FRAGMENT,
        ..L3::at(Family::V6, offset, offset + Ipv6Hdr::LEN)
    })
}

/// TCP or UDP ports of a packet to a VIP.
#[inline(always)]
pub fn l4(frame: &impl Frame, l3: &L3) -> L4Verdict {
    if l3.is_fragment {
        return L4Verdict::Fragment;
    }
    match l3.protocol {
        proto::TCP => {
            let Some(tcp) = view::<TcpHdr>(frame, l3.l4_offset) else {
                return L4Verdict::Truncated;
            };
            // SAFETY: the flags byte is inside the TCP header just checked.
            let flags = unsafe { *(tcp as *const TcpHdr as *const u8).add(TCP_FLAGS_OFFSET) };
            L4Verdict::Packet(L4 {
                src_port: u16::from_ne_bytes(tcp.source),
                dst_port: u16::from_ne_bytes(tcp.dest),
                is_tcp_syn: flags & (TCP_SYN | TCP_ACK) == TCP_SYN,
                tcp_flags: flags,
            })
        }
        proto::UDP => {
            let Some(udp) = view::<UdpHdr>(frame, l3.l4_offset) else {
                return L4Verdict::Truncated;
            };
            L4Verdict::Packet(L4 {
                src_port: u16::from_ne_bytes(udp.src),
                dst_port: u16::from_ne_bytes(udp.dst),
                is_tcp_syn: false,
                tcp_flags: 0,
            })
        }
        // Extension headers hide the transport header; following the chain
        // costs verifier complexity for traffic real clients do not send to
        // a TCP/UDP service, so it is dropped and counted instead. ESP is
        // not one: it is a transport of its own, passed to the host like
        // any other protocol.
        next if matches!(l3.family, Family::V6) && is_ipv6_extension(next) => {
            L4Verdict::ExtensionHeader
        }
        _ => L4Verdict::OtherProtocol,
    }
}

#[cfg(test)]
mod tests;
