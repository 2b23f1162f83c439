//! Header parsing. Every read goes through [`header`], which proves to the
//! verifier that the whole header lies inside the frame.

use aya_ebpf::programs::XdpContext;
use lb_common::{Addr, Family, proto};
use network_types::{
    eth::{EthHdr, EtherType},
    ip::{Ipv4Hdr, Ipv6Hdr},
    tcp::TcpHdr,
    udp::UdpHdr,
    vlan::VlanHdr,
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

/// A pointer to a `T` at `offset`, if the frame is long enough to hold it.
#[inline(always)]
pub fn header<T>(ctx: &XdpContext, offset: usize) -> Option<*mut T> {
    let start = ctx.data() + offset;
    if start + core::mem::size_of::<T>() > ctx.data_end() {
        return None;
    }
    Some(start as *mut T)
}

/// Ethernet (with at most one 802.1Q tag) and the IP header.
#[inline(always)]
pub fn l3(ctx: &XdpContext) -> L3Verdict {
    let Some(eth) = header::<EthHdr>(ctx, 0) else {
        return L3Verdict::Truncated;
    };
    // SAFETY: `header` checked the bounds.
    let mut ether_type = unsafe { (*eth).ether_type };
    let mut offset = EthHdr::LEN;
    if ether_type == EtherType::Ieee8021q as u16 {
        let Some(vlan) = header::<VlanHdr>(ctx, offset) else {
            return L3Verdict::Truncated;
        };
        // SAFETY: as above.
        ether_type = unsafe { (*vlan).ether_type };
        offset += VlanHdr::LEN;
    }
    if ether_type == EtherType::Ipv4 as u16 {
        ipv4(ctx, offset)
    } else if ether_type == EtherType::Ipv6 as u16 {
        ipv6(ctx, offset)
    } else {
        L3Verdict::NotIp
    }
}

/// IPv4 "more fragments" flag and fragment offset bits of `frags`.
const IPV4_MF_AND_OFFSET: u16 = 0x3fff;
const IPV4_DF: u16 = 0x4000;

#[inline(always)]
fn ipv4(ctx: &XdpContext, offset: usize) -> L3Verdict {
    let Some(ip) = header::<Ipv4Hdr>(ctx, offset) else {
        return L3Verdict::Truncated;
    };
    // SAFETY: bounds checked by `header`.
    let ip = unsafe { &*ip };
    let header_len = ip.ihl() as usize;
    if header_len < Ipv4Hdr::LEN {
        return L3Verdict::Truncated;
    }
    let frags = u16::from_be_bytes(ip.frags);
    L3Verdict::Packet(L3 {
        family: Family::V4,
        src: Addr::from_v4_octets(ip.src_addr),
        dst: Addr::from_v4_octets(ip.dst_addr),
        protocol: ip.proto,
        l3_offset: offset,
        l4_offset: offset + header_len,
        ip_len: u16::from_be_bytes(ip.tot_len),
        tos: ip.tos,
        ttl: ip.ttl,
        dont_fragment: frags & IPV4_DF != 0,
        is_fragment: frags & IPV4_MF_AND_OFFSET != 0,
        has_ipv4_options: header_len > Ipv4Hdr::LEN,
    })
}

#[inline(always)]
fn ipv6(ctx: &XdpContext, offset: usize) -> L3Verdict {
    let Some(ip) = header::<Ipv6Hdr>(ctx, offset) else {
        return L3Verdict::Truncated;
    };
    // SAFETY: bounds checked by `header`.
    let ip = unsafe { &*ip };
    // Version (4 bits), traffic class (8), flow label (20).
    let vcf = u32::from_be_bytes(ip.vcf);
    L3Verdict::Packet(L3 {
        family: Family::V6,
        src: Addr::from_v6_octets(ip.src_addr),
        dst: Addr::from_v6_octets(ip.dst_addr),
        protocol: ip.next_hdr,
        l3_offset: offset,
        l4_offset: offset + Ipv6Hdr::LEN,
        ip_len: u16::from_be_bytes(ip.payload_len).wrapping_add(Ipv6Hdr::LEN as u16),
        tos: (vcf >> 20) as u8,
        ttl: ip.hop_limit,
        dont_fragment: true,
        is_fragment: ip.next_hdr == IPV6_FRAGMENT,
        has_ipv4_options: false,
    })
}

const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_AUTH: u8 = 51;
const IPV6_DEST_OPTS: u8 = 60;
const IPV6_MOBILITY: u8 = 135;
const IPV6_HIP: u8 = 139;
const IPV6_SHIM6: u8 = 140;
const IPV6_EXPERIMENT_1: u8 = 253;
const IPV6_EXPERIMENT_2: u8 = 254;

/// TCP flags byte offset inside the TCP header, and the bits we read.
const TCP_FLAGS_OFFSET: usize = 13;
pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

/// TCP or UDP ports of a packet to a VIP.
#[inline(always)]
pub fn l4(ctx: &XdpContext, l3: &L3) -> L4Verdict {
    if l3.is_fragment {
        return L4Verdict::Fragment;
    }
    match l3.protocol {
        proto::TCP => {
            let Some(tcp) = header::<TcpHdr>(ctx, l3.l4_offset) else {
                return L4Verdict::Truncated;
            };
            // SAFETY: the whole TCP header is inside the frame.
            let (tcp, flags) = unsafe { (&*tcp, *(tcp as *const u8).add(TCP_FLAGS_OFFSET)) };
            L4Verdict::Packet(L4 {
                src_port: u16::from_ne_bytes(tcp.source),
                dst_port: u16::from_ne_bytes(tcp.dest),
                is_tcp_syn: flags & (TCP_SYN | TCP_ACK) == TCP_SYN,
                tcp_flags: flags,
            })
        }
        proto::UDP => {
            let Some(udp) = header::<UdpHdr>(ctx, l3.l4_offset) else {
                return L4Verdict::Truncated;
            };
            // SAFETY: the whole UDP header is inside the frame.
            let udp = unsafe { &*udp };
            L4Verdict::Packet(L4 {
                src_port: u16::from_ne_bytes(udp.src),
                dst_port: u16::from_ne_bytes(udp.dst),
                is_tcp_syn: false,
                tcp_flags: 0,
            })
        }
        // Extension headers (IANA's list, RFC 7045) hide the transport
        // header; following the chain costs verifier complexity for traffic
        // real clients do not send to a TCP/UDP service, so it is dropped and
        // counted instead. ESP is left out: it is a transport of its own,
        // passed to the host like any other protocol.
        IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_AUTH | IPV6_DEST_OPTS | IPV6_MOBILITY | IPV6_HIP
        | IPV6_SHIM6 | IPV6_EXPERIMENT_1 | IPV6_EXPERIMENT_2
            if matches!(l3.family, Family::V6) =>
        {
            L4Verdict::ExtensionHeader
        }
        _ => L4Verdict::OtherProtocol,
    }
}
