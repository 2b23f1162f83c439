//! The packet an ICMP error quotes: which VIP flow it belongs to.
//!
//! An error addressed to a VIP quotes a packet the VIP sent: a real's reply
//! VIP:vport -> client:cport (DR and TUN reals send as the VIP; NAT replies
//! were rewritten to it here). Its flow is the reverse, the client -> VIP
//! 5-tuple `LB_FLOWS` is keyed by.
//!
//! Written for a small stack: the key is filled in place, in the caller's
//! slot the map lookup needs anyway, and addresses go straight from the
//! packet into it instead of being held in registers (which spill).

use aya_ebpf::programs::XdpContext;
use lb_common::{Addr, Family, FlowKey, proto};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

use super::ICMP_HDR_LEN;
use crate::parse::{L3, header};

/// IPv4 fragment offset bits: a quoted non-first fragment has no ports.
const IPV4_OFFSET_MASK: u16 = 0x1fff;

/// Where the quoted packet lies in the frame.
pub struct Quote {
    /// Offset of the quoted IP header.
    pub ip_offset: usize,
    /// Offset of the quoted TCP/UDP header.
    pub l4_offset: usize,
    /// TCP or UDP.
    pub protocol: u8,
    /// Where the ICMP message ends, from the outer IP length: the frame may
    /// run on (Ethernet padding), the quote may stop anywhere after the
    /// ports.
    pub end: usize,
}

/// The quoted packet of the error in the frame, if it is a TCP or UDP
/// packet from the VIP the error was sent to, complete up to its ports;
/// `key` becomes its forward flow (client -> VIP).
#[inline(always)]
pub fn parse(ctx: &XdpContext, l3: &L3, key: &mut FlowKey) -> Option<Quote> {
    let quote = locate(ctx, l3)?;
    key.family = l3.family as u8;
    key.protocol = quote.protocol;
    match l3.family {
        Family::V4 => {
            let ip = header::<Ipv4Hdr>(ctx, quote.ip_offset)?;
            // SAFETY: bounds checked by `header`.
            let ip = unsafe { &*ip };
            key.src = Addr::from_v4_octets(ip.dst_addr);
            key.dst = Addr::from_v4_octets(ip.src_addr);
        }
        Family::V6 => {
            let ip = header::<Ipv6Hdr>(ctx, quote.ip_offset)?;
            // SAFETY: bounds checked by `header`.
            let ip = unsafe { &*ip };
            key.src = Addr::from_v6_octets(ip.dst_addr);
            key.dst = Addr::from_v6_octets(ip.src_addr);
        }
    }
    let [src_port, dst_port] = ports(ctx, &quote)?;
    key.src_port = dst_port;
    key.dst_port = src_port;
    // Sent by the VIP the error came back to: anything else is not a reply
    // of ours (and must not steer this error to another VIP's flows). The
    // address is read again here rather than taken from `l3`, so it is not
    // held (and spilled) while the quote is read.
    (key.dst == outer_destination(ctx, l3)?).then_some(quote)
}

/// The error's own destination (a VIP), from the frame.
#[inline(always)]
fn outer_destination(ctx: &XdpContext, l3: &L3) -> Option<Addr> {
    Some(match l3.family {
        Family::V4 => {
            let ip = header::<Ipv4Hdr>(ctx, l3.l3_offset)?;
            // SAFETY: bounds checked by `header`.
            Addr::from_v4_octets(unsafe { (*ip).dst_addr })
        }
        Family::V6 => {
            let ip = header::<Ipv6Hdr>(ctx, l3.l3_offset)?;
            // SAFETY: bounds checked by `header`.
            Addr::from_v6_octets(unsafe { (*ip).dst_addr })
        }
    })
}

/// The quoted source and destination ports, as on the wire.
#[inline(always)]
pub fn ports(ctx: &XdpContext, quote: &Quote) -> Option<[u16; 2]> {
    let ports = header::<[u16; 2]>(ctx, quote.l4_offset)?;
    // SAFETY: bounds checked by `header`.
    Some(unsafe { *ports })
}

/// Where the quoted packet lies: a TCP or UDP packet with an IP header of
/// the error's family, not (IPv4) a non-first fragment, whose ports the
/// quote holds. Cheap, so it is done again rather than kept across helper
/// calls.
#[inline(always)]
pub fn locate(ctx: &XdpContext, l3: &L3) -> Option<Quote> {
    let ip_offset = l3.l4_offset + ICMP_HDR_LEN;
    let (l4_offset, protocol) = match l3.family {
        Family::V4 => {
            let ip = header::<Ipv4Hdr>(ctx, ip_offset)?;
            // SAFETY: bounds checked by `header`.
            let ip = unsafe { &*ip };
            let header_len = ip.ihl() as usize;
            let frag_offset = u16::from_be_bytes(ip.frags) & IPV4_OFFSET_MASK;
            if ip.version() != 4 || header_len < Ipv4Hdr::LEN || frag_offset != 0 {
                return None;
            }
            (ip_offset + header_len, ip.proto)
        }
        // Extension headers are not followed: replies from our reals have
        // none, like the flows the balancer accepts.
        Family::V6 => {
            let ip = header::<Ipv6Hdr>(ctx, ip_offset)?;
            // SAFETY: bounds checked by `header`.
            let ip = unsafe { &*ip };
            if ip.version() != 6 {
                return None;
            }
            (ip_offset + Ipv6Hdr::LEN, ip.next_hdr)
        }
    };
    let end = l3.l3_offset + l3.ip_len as usize;
    // TCP or UDP, and the ports, at least, inside the message.
    let usable = (protocol == proto::TCP || protocol == proto::UDP) && l4_offset + 4 <= end;
    usable.then_some(Quote {
        ip_offset,
        l4_offset,
        protocol,
        end,
    })
}
