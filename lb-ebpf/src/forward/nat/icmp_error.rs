//! ICMP errors a NAT real sends to a client about a NAT flow: "port
//! unreachable" from a UDP service with nothing listening, "packet too
//! big", and the like.
//!
//! The error quotes the packet as the real received it, client ->
//! real:port. The client's stack matches errors to its sockets by the
//! quote, and its socket talks to VIP:port, so both the error's source and
//! the quote's destination are translated back (real -> VIP, real port ->
//! service port), with every checksum involved: the quoted IPv4 header's,
//! the quoted TCP/UDP checksum when the quote holds it, and the ICMP
//! checksum over all of that (plus, for ICMPv6, the pseudo-header with the
//! new source). The error is then routed like a reply.
//!
//! Errors from routers on the way to the real (not NAT reals themselves)
//! are not translated: the kernel forwards them as they are.

use aya_ebpf::{
    bindings::{xdp_action, xdp_md},
    programs::XdpContext,
};
use lb_common::{Addr, Family, GlobalCounter, NatReply};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

use super::{
    deliver::{UNTRANSLATABLE, deliver, translate_first},
    headers, route, scratch,
};
use crate::{
    maps::LB_NAT_REPLIES,
    parse::{self, L3Verdict},
    wire::{
        csum,
        frame::{header, view, view_mut},
        icmp::{self, IcmpHdr},
        l4::{UDP_HDR_LEN, checksum_offset},
        layout::{End, Layout},
        quote, rewrite,
        verdict::{self, Verdict},
    },
};

/// Where the quote's headers are.
#[derive(Clone, Copy)]
struct Quote {
    /// The quoted packet, seen as the real received it.
    at: Layout,
    /// The quote reaches the TCP/UDP checksum.
    has_l4_check: bool,
}

/// An ICMP/ICMPv6 packet from a NAT real (the reply path checked that):
/// translated if it is an error about a NAT flow, `None` otherwise.
#[inline(never)]
pub fn call(ctx: *mut xdp_md) -> u64 {
    verdict::encode_option(from_real(&XdpContext::new(ctx)))
}

#[inline(always)]
fn from_real(ctx: &XdpContext) -> Option<Verdict> {
    let scratch = scratch::get()?;
    let L3Verdict::Packet(l3) = parse::l3(ctx) else {
        return None;
    };
    if l3.protocol != icmp::protocol(l3.family) || l3.is_fragment {
        return None;
    }
    let outer = l3.layout();
    let expiring = l3.ttl <= 1;
    let may_fragment = route::may_fragment(&l3);
    let quote = quote(ctx, outer, l3.l3_offset + l3.ip_len as usize)?;
    route::prepare(ctx, &mut scratch.fib, &l3);
    headers::address(ctx, outer, End::Destination, &mut scratch.client)?;
    let entry = quoted_entry(ctx, scratch, &quote)?;
    if expiring {
        return Some((xdp_action::XDP_PASS, GlobalCounter::PassTtlExceeded));
    }
    let route = route::lookup(ctx, &mut scratch.fib, (&entry.vip, 0), (&scratch.client, 0));
    if translate_first(&route, may_fragment) && translate(ctx, outer, quote, entry).is_none() {
        return Some(UNTRANSLATABLE);
    }
    Some(deliver(ctx, &scratch.fib, route))
}

/// The quote of an ICMP error, if it quotes a whole IP header of the same
/// family and at least the eight bytes of TCP/UDP header that carry the
/// ports.
#[inline(always)]
fn quote(ctx: &XdpContext, outer: Layout, ip_end: usize) -> Option<Quote> {
    if !icmp::is_error(outer.family, view::<IcmpHdr>(ctx, outer.l4_offset)?.kind) {
        return None;
    }
    let quote = quote::locate::<UDP_HDR_LEN>(ctx, outer.family, outer.l4_offset, ip_end)?;
    header::<[u8; UDP_HDR_LEN]>(ctx, quote.l4_offset)?;
    Some(Quote {
        at: Layout {
            family: outer.family,
            protocol: quote.protocol,
            l3_offset: quote.ip_offset,
            l4_offset: quote.l4_offset,
        },
        has_l4_check: quote.l4_offset + checksum_offset(quote.protocol) + 2 <= ip_end,
    })
}

/// The reverse entry for the quoted packet: the quote is client ->
/// real:port, the entry's key the reply's way, real:port -> client.
#[inline(always)]
fn quoted_entry(
    ctx: &XdpContext,
    scratch: &mut scratch::Scratch,
    quote: &Quote,
) -> Option<&'static NatReply> {
    let at = quote.at;
    let ports = view::<[[u8; 2]; 4]>(ctx, at.l4_offset)?;
    let key = &mut scratch.key;
    headers::addresses(ctx, at, &mut key.dst, &mut key.src)?;
    key.src_port = u16::from_ne_bytes(ports[1]);
    key.dst_port = u16::from_ne_bytes(ports[0]);
    key.protocol = at.protocol;
    key.family = at.family as u8;
    key._pad = [0; 2];
    // SAFETY: LRU values stay valid (RCU) while the program runs.
    #[allow(clippy::needless_borrows_for_generic_args)]
    LB_NAT_REPLIES
        .get_ptr(&*key)
        .map(|entry| unsafe { &*entry })
}

/// The error from the VIP, about client -> VIP:port.
#[inline(always)]
fn translate(ctx: &XdpContext, outer: Layout, quote: Quote, entry: &NatReply) -> Option<()> {
    let icmp = header::<IcmpHdr>(ctx, outer.l4_offset)?;
    // SAFETY: bounds checked by `header`.
    let check = u16::from_ne_bytes(unsafe { (*icmp).checksum });
    let check = translate_quote(ctx, quote, &entry.vip, entry.vip_port_be, check)?;
    let check = match outer.family {
        Family::V4 => {
            let ip = view_mut::<Ipv4Hdr>(ctx, outer.l3_offset)?;
            rewrite::ipv4(ip, End::Source, ip.src_addr, &entry.vip);
            check
        }
        Family::V6 => {
            let ip = view_mut::<Ipv6Hdr>(ctx, outer.l3_offset)?;
            // ICMPv6 sums a pseudo-header with the addresses, as TCP/UDP do.
            let old = Addr::from_v6_octets(ip.src_addr);
            rewrite::ipv6(ip, End::Source, &entry.vip);
            csum::replace_addr(check, &old, &entry.vip)
        }
    };
    // SAFETY: bounds checked by `header` above; the frame did not move.
    unsafe { (*icmp).checksum = check.to_ne_bytes() };
    Some(())
}

/// The quote's destination becomes VIP:port. Returns the ICMP checksum
/// updated for every quoted byte that changed (all at even offsets in the
/// message, so each update is one of 16-bit words).
#[inline(always)]
fn translate_quote(
    ctx: &XdpContext,
    quote: Quote,
    vip: &Addr,
    vip_port: u16,
    mut icmp_check: u16,
) -> Option<u16> {
    let at = quote.at;
    let old_addr = match at.family {
        Family::V4 => {
            let ip = view_mut::<Ipv4Hdr>(ctx, at.l3_offset)?;
            let old = u32::from_ne_bytes(ip.dst_addr);
            let old_check = u16::from_ne_bytes(ip.check);
            let new_check = csum::replace32(old_check, old, vip.words[0]);
            ip.check = new_check.to_ne_bytes();
            ip.dst_addr = vip.words[0].to_ne_bytes();
            icmp_check = csum::replace32(icmp_check, old, vip.words[0]);
            icmp_check = csum::replace16(icmp_check, old_check, new_check);
            Addr::from_v4_octets(old.to_ne_bytes())
        }
        Family::V6 => {
            let ip = view_mut::<Ipv6Hdr>(ctx, at.l3_offset)?;
            let old = Addr::from_v6_octets(ip.dst_addr);
            ip.dst_addr = vip.octets();
            icmp_check = csum::replace_addr(icmp_check, &old, vip);
            old
        }
    };
    let ports = view_mut::<[[u8; 2]; 4]>(ctx, at.l4_offset)?;
    let old_port = ports[1];
    ports[1] = vip_port.to_ne_bytes();
    icmp_check = csum::replace16(icmp_check, u16::from_ne_bytes(old_port), vip_port);
    // The quoted TCP/UDP checksum, when the quote reaches that far (UDP's
    // is in the first eight bytes; TCP's often is not quoted from IPv4).
    if !quote.has_l4_check {
        return Some(icmp_check);
    }
    let Some(field) = view_mut::<[u8; 2]>(ctx, at.l4_offset + checksum_offset(at.protocol)) else {
        return Some(icmp_check);
    };
    let old = u16::from_ne_bytes(*field);
    let update = |old| csum::l4_replace(old, &old_addr, vip, &old_port, vip_port);
    let Some(new) = csum::l4_update(old, at.protocol, at.family, update) else {
        return Some(icmp_check);
    };
    *field = new.to_ne_bytes();
    Some(csum::replace16(icmp_check, old, new))
}
