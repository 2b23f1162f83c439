//! The packet an ICMP error to a VIP quotes: which VIP flow it belongs to.
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
use lb_common::{Addr, Family, FlowKey};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

use crate::{
    parse::L3,
    wire::{
        frame::view,
        l4::PORTS_LEN,
        quote::{self, Quote},
    },
};

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
            let ip = view::<Ipv4Hdr>(ctx, quote.ip_offset)?;
            key.src = Addr::from_v4_octets(ip.dst_addr);
            key.dst = Addr::from_v4_octets(ip.src_addr);
        }
        Family::V6 => {
            let ip = view::<Ipv6Hdr>(ctx, quote.ip_offset)?;
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
        Family::V4 => Addr::from_v4_octets(view::<Ipv4Hdr>(ctx, l3.l3_offset)?.dst_addr),
        Family::V6 => Addr::from_v6_octets(view::<Ipv6Hdr>(ctx, l3.l3_offset)?.dst_addr),
    })
}

/// The quoted source and destination ports, as on the wire.
#[inline(always)]
pub fn ports(ctx: &XdpContext, quote: &Quote) -> Option<[u16; 2]> {
    view::<[u16; 2]>(ctx, quote.l4_offset).copied()
}

/// Where the ICMP message ends, from the outer IP length: the frame may
/// run on (Ethernet padding), the quote may stop anywhere after the ports.
#[inline(always)]
pub fn end(l3: &L3) -> usize {
    l3.l3_offset + l3.ip_len as usize
}

/// Where the quoted packet lies, if it holds the ports (see
/// `wire::quote`).
#[inline(always)]
pub fn locate(ctx: &XdpContext, l3: &L3) -> Option<Quote> {
    quote::locate::<PORTS_LEN>(ctx, l3.family, l3.l4_offset, end(l3))
}
