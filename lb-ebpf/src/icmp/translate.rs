//! NAT: an error about a flow to a NAT service, translated for the real.
//!
//! The quoted packet is the reply as the balancer sent it on (VIP:vport ->
//! client); the real only knows it as real:rport -> client. So the error's
//! destination becomes the real, and inside the quote the source becomes
//! real:rport: the real's stack then finds its own connection in it. This
//! is the reverse of what the reply path did to the packet the error
//! quotes, done inside the ICMP message.
//!
//! Checksums, all incrementally (RFC 1624), from two precomputed deltas
//! (VIP -> real address, VIP port -> real port) rather than the addresses
//! themselves, which would have to be held, and spilled, throughout:
//! - the outer IPv4 header (destination, TTL);
//! - the quoted IPv4 header (source);
//! - the quoted TCP/UDP checksum, when the quote reaches it. It covers a
//!   segment the quote usually cuts short, so no receiver can verify it, but
//!   keeping it consistent costs little;
//! - the ICMP checksum, for every byte changed in the quote and, for
//!   ICMPv6, for the destination in its pseudo-header.
//!
//! The balancer routes NAT traffic, so like the request path this one
//! lowers the TTL / hop limit and leaves a packet that would expire to the
//! kernel (which, the packet being an ICMP error, answers nothing).

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use lb_common::{Addr, Family, GlobalCounter, REAL_NEXT_HOP_KNOWN, Real};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

use super::quote;
use crate::{
    forward::transmit::transmit,
    parse::{self, L3, L3Verdict},
    wire::{
        csum::{self, apply},
        eth::set_macs,
        frame::{ctx_arg, ctx_from, view, view_mut},
        icmp::IcmpHdr,
        ip::{set_ttl, write_addr},
        l4::checksum_offset,
        quote::Quote,
        verdict::{self, Verdict},
    },
};

/// What the quoted reply's source becomes, and what that does to sums.
struct Rewrite<'a> {
    real: &'a Addr,
    real_port: u16,
    /// RFC 1624's `~m + m'`, folded, for the address and for the port.
    addr_delta: u16,
    port_delta: u16,
}

/// The error in the frame, translated for `real` (which serves the quoted
/// flow) and sent to it. In a BPF function of its own (see
/// `wire::verdict`).
#[inline(always)]
pub fn to_real(ctx: &XdpContext, real: &Real) -> Verdict {
    verdict::decode(to_real_call(ctx_arg(ctx), real as *const Real as usize))
}

#[inline(never)]
fn to_real_call(ctx: usize, real: usize) -> u64 {
    let ctx = ctx_from(ctx);
    // SAFETY: `to_real` passes a reference to a map value, valid while the
    // program runs.
    let real = unsafe { &*(real as *const Real) };
    let verdict = match parse::l3(&ctx) {
        L3Verdict::Packet(l3) => translate(&ctx, &l3, real),
        // Cannot happen: the balancer parsed the same frame.
        _ => (xdp_action::XDP_DROP, GlobalCounter::DropTruncatedL4),
    };
    verdict::encode(verdict)
}

#[inline(always)]
fn translate(ctx: &XdpContext, l3: &L3, real: &Real) -> Verdict {
    if l3.ttl <= 1 {
        return (xdp_action::XDP_PASS, GlobalCounter::PassTtlExceeded);
    }
    // The config only accepts NAT reals of the VIP's family.
    if real.flags & REAL_NEXT_HOP_KNOWN == 0 || real.family != l3.family as u8 {
        return (xdp_action::XDP_DROP, GlobalCounter::DropNoNextHop);
    }
    // Cannot fail: the headers were read a moment ago, when the flow was
    // looked up. The verifier still wants every pointer proved again.
    let Some(quote) = quote::locate(ctx, l3) else {
        return (xdp_action::XDP_DROP, GlobalCounter::DropTruncatedL4);
    };
    let Some([vip_port, _]) = quote::ports(ctx, &quote) else {
        return (xdp_action::XDP_DROP, GlobalCounter::DropTruncatedL4);
    };
    // Port 0 in the real means "the service's port", as for requests.
    let real_port = if real.port_be != 0 {
        real.port_be
    } else {
        vip_port
    };
    // The quoted source is the VIP the error came to (the lookup checked).
    let rewrite = Rewrite {
        real: &real.addr,
        real_port,
        addr_delta: csum::addr_delta(&l3.dst, &real.addr),
        port_delta: csum::delta16(vip_port, real_port),
    };
    if rewrite_message(ctx, l3, &quote, &rewrite).is_none()
        || set_macs(ctx, &real.dst_mac, &real.src_mac).is_none()
    {
        return (xdp_action::XDP_DROP, GlobalCounter::DropTruncatedL4);
    }
    match transmit(ctx, real.ifindex) {
        Ok(action) => (action, GlobalCounter::IcmpErrorForwarded),
        Err(reason) => (xdp_action::XDP_DROP, reason),
    }
}

/// The ICMP message and the outer IP header.
#[inline(always)]
fn rewrite_message(ctx: &XdpContext, l3: &L3, quote: &Quote, rewrite: &Rewrite) -> Option<()> {
    let mut checksum = u16::from_ne_bytes(view::<IcmpHdr>(ctx, l3.l4_offset)?.checksum);
    checksum = match l3.family {
        Family::V4 => quoted_ipv4(ctx, quote.ip_offset, rewrite, checksum)?,
        Family::V6 => {
            // The pseudo-header's destination is the outer one, VIP -> real.
            let checksum = apply(checksum, rewrite.addr_delta);
            quoted_ipv6(ctx, quote.ip_offset, rewrite, checksum)?
        }
    };
    checksum = quoted_ports(ctx, l3, quote, rewrite, checksum)?;
    view_mut::<IcmpHdr>(ctx, l3.l4_offset)?.checksum = checksum.to_ne_bytes();
    match l3.family {
        Family::V4 => outer_ipv4(ctx, l3.l3_offset, rewrite),
        Family::V6 => outer_ipv6(ctx, l3.l3_offset, rewrite.real),
    }
}

/// The quoted IPv4 header's source and checksum; returns the ICMP
/// checksum with both changes in it.
#[inline(always)]
fn quoted_ipv4(ctx: &XdpContext, offset: usize, rewrite: &Rewrite, icmp: u16) -> Option<u16> {
    let ip = view_mut::<Ipv4Hdr>(ctx, offset)?;
    let old = u16::from_ne_bytes(ip.check);
    let new = apply(old, rewrite.addr_delta);
    ip.src_addr = rewrite.real.words[0].to_ne_bytes();
    ip.check = new.to_ne_bytes();
    let icmp = apply(icmp, rewrite.addr_delta);
    Some(csum::replace16(icmp, old, new))
}

#[inline(always)]
fn quoted_ipv6(ctx: &XdpContext, offset: usize, rewrite: &Rewrite, icmp: u16) -> Option<u16> {
    write_addr(
        &mut view_mut::<Ipv6Hdr>(ctx, offset)?.src_addr,
        rewrite.real,
    );
    Some(apply(icmp, rewrite.addr_delta))
}

/// The quoted source port and, when the quote holds it, the quoted TCP/UDP
/// checksum (its pseudo-header has the source address, then the port).
#[inline(always)]
fn quoted_ports(
    ctx: &XdpContext,
    l3: &L3,
    quote: &Quote,
    rewrite: &Rewrite,
    icmp: u16,
) -> Option<u16> {
    *view_mut::<u16>(ctx, quote.l4_offset)? = rewrite.real_port;
    let icmp = apply(icmp, rewrite.port_delta);
    let offset = quote.l4_offset + checksum_offset(quote.protocol);
    if offset + 2 > quote::end(l3) {
        return Some(icmp);
    }
    let Some(field) = view_mut::<u16>(ctx, offset) else {
        return Some(icmp);
    };
    let old = *field;
    let update = |old| apply(apply(old, rewrite.addr_delta), rewrite.port_delta);
    let Some(new) = csum::l4_update(old, quote.protocol, l3.family, update) else {
        return Some(icmp);
    };
    *field = new;
    Some(csum::replace16(icmp, old, new))
}

/// The outer destination becomes the real; the TTL goes down by one.
#[inline(always)]
fn outer_ipv4(ctx: &XdpContext, offset: usize, rewrite: &Rewrite) -> Option<()> {
    let ip = view_mut::<Ipv4Hdr>(ctx, offset)?;
    ip.check = apply(u16::from_ne_bytes(ip.check), rewrite.addr_delta).to_ne_bytes();
    set_ttl(ip, ip.ttl - 1);
    ip.dst_addr = rewrite.real.words[0].to_ne_bytes();
    Some(())
}

#[inline(always)]
fn outer_ipv6(ctx: &XdpContext, offset: usize, real: &Addr) -> Option<()> {
    let ip = view_mut::<Ipv6Hdr>(ctx, offset)?;
    write_addr(&mut ip.dst_addr, real);
    ip.hop_limit -= 1;
    Some(())
}
