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
use lb_common::{Addr, Family, GlobalCounter, REAL_NEXT_HOP_KNOWN, Real, proto};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

use super::{
    IcmpHdr, Verdict, call,
    quote::{self, Quote},
};
use crate::{
    csum, forward,
    parse::{self, L3, L3Verdict, header},
};

/// Offsets of the checksum in the TCP and UDP headers.
const TCP_CHECKSUM: usize = 16;
const UDP_CHECKSUM: usize = 6;

/// What the quoted reply's source becomes, and what that does to sums.
struct Rewrite<'a> {
    real: &'a Addr,
    real_port: u16,
    /// RFC 1624's `~m + m'`, folded, for the address and for the port.
    addr_delta: u16,
    port_delta: u16,
}

/// The error in the frame, translated for `real` (which serves the quoted
/// flow) and sent to it. In a BPF function of its own (see `call`).
#[inline(always)]
pub fn to_real(ctx: &XdpContext, real: &Real) -> Verdict {
    call::decode(to_real_call(
        call::ctx_arg(ctx),
        real as *const Real as usize,
    ))
}

#[inline(never)]
fn to_real_call(ctx: usize, real: usize) -> u64 {
    let ctx = call::ctx_from(ctx);
    // SAFETY: `to_real` passes a reference to a map value, valid while the
    // program runs.
    let real = unsafe { &*(real as *const Real) };
    let verdict = match parse::l3(&ctx) {
        L3Verdict::Packet(l3) => translate(&ctx, &l3, real),
        // Cannot happen: the balancer parsed the same frame.
        _ => (xdp_action::XDP_DROP, GlobalCounter::DropTruncatedL4),
    };
    call::encode(verdict)
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
        addr_delta: addr_delta(&l3.dst, &real.addr),
        port_delta: csum::fold((!vip_port) as u64 + real_port as u64),
    };
    if rewrite_message(ctx, l3, &quote, &rewrite).is_none() || set_macs(ctx, real).is_none() {
        return (xdp_action::XDP_DROP, GlobalCounter::DropTruncatedL4);
    }
    match forward::transmit(ctx, real.ifindex) {
        Ok(action) => (action, GlobalCounter::IcmpErrorForwarded),
        Err(reason) => (xdp_action::XDP_DROP, reason),
    }
}

/// `~old + new` over the 16-bit words of two addresses, folded.
#[inline(always)]
fn addr_delta(old: &Addr, new: &Addr) -> u16 {
    let mut sum = 0u64;
    let mut i = 0;
    while i < 4 {
        let (old, new) = (!old.words[i], new.words[i]);
        sum += (old & 0xffff) as u64 + (old >> 16) as u64;
        sum += (new & 0xffff) as u64 + (new >> 16) as u64;
        i += 1;
    }
    csum::fold(sum)
}

/// `checksum` with a change worth `delta` (RFC 1624: HC' = ~(~HC + delta)).
#[inline(always)]
fn apply(checksum: u16, delta: u16) -> u16 {
    !csum::fold((!checksum) as u64 + delta as u64)
}

/// The ICMP message and the outer IP header.
#[inline(always)]
fn rewrite_message(ctx: &XdpContext, l3: &L3, quote: &Quote, rewrite: &Rewrite) -> Option<()> {
    let icmp = header::<IcmpHdr>(ctx, l3.l4_offset)?;
    // SAFETY: bounds checked by `header`.
    let mut checksum = u16::from_ne_bytes(unsafe { (*icmp).checksum });
    checksum = match l3.family {
        Family::V4 => quoted_ipv4(ctx, quote.ip_offset, rewrite, checksum)?,
        Family::V6 => {
            // The pseudo-header's destination is the outer one, VIP -> real.
            let checksum = apply(checksum, rewrite.addr_delta);
            quoted_ipv6(ctx, quote.ip_offset, rewrite, checksum)?
        }
    };
    checksum = quoted_ports(ctx, quote, l3.family, rewrite, checksum)?;
    // SAFETY: as above.
    unsafe { (*icmp).checksum = checksum.to_ne_bytes() };
    match l3.family {
        Family::V4 => outer_ipv4(ctx, l3.l3_offset, rewrite),
        Family::V6 => outer_ipv6(ctx, l3.l3_offset, rewrite.real),
    }
}

/// The quoted IPv4 header's source and checksum; returns the ICMP
/// checksum with both changes in it.
#[inline(always)]
fn quoted_ipv4(ctx: &XdpContext, offset: usize, rewrite: &Rewrite, icmp: u16) -> Option<u16> {
    let ip = header::<Ipv4Hdr>(ctx, offset)?;
    // SAFETY: bounds checked by `header`.
    let ip = unsafe { &mut *ip };
    let old = u16::from_ne_bytes(ip.check);
    let new = apply(old, rewrite.addr_delta);
    ip.src_addr = rewrite.real.words[0].to_ne_bytes();
    ip.check = new.to_ne_bytes();
    let icmp = apply(icmp, rewrite.addr_delta);
    Some(csum::replace16(icmp, old, new))
}

#[inline(always)]
fn quoted_ipv6(ctx: &XdpContext, offset: usize, rewrite: &Rewrite, icmp: u16) -> Option<u16> {
    let ip = header::<Ipv6Hdr>(ctx, offset)?;
    // SAFETY: bounds checked by `header`.
    unsafe { write_addr(&mut (*ip).src_addr, rewrite.real) };
    Some(apply(icmp, rewrite.addr_delta))
}

/// The quoted source port and, when the quote holds it, the quoted TCP/UDP
/// checksum (its pseudo-header has the source address, then the port).
#[inline(always)]
fn quoted_ports(
    ctx: &XdpContext,
    quote: &Quote,
    family: Family,
    rewrite: &Rewrite,
    icmp: u16,
) -> Option<u16> {
    let port = header::<u16>(ctx, quote.l4_offset)?;
    // SAFETY: bounds checked by `header`.
    unsafe { *port = rewrite.real_port };
    let icmp = apply(icmp, rewrite.port_delta);
    let is_udp = quote.protocol == proto::UDP;
    let offset = quote.l4_offset + if is_udp { UDP_CHECKSUM } else { TCP_CHECKSUM };
    if offset + 2 > quote.end {
        return Some(icmp);
    }
    let Some(field) = header::<u16>(ctx, offset) else {
        return Some(icmp);
    };
    // SAFETY: bounds checked by `header`.
    let old = unsafe { *field };
    // UDP over IPv4 without a checksum says so with 0; leave it that way.
    if is_udp && old == 0 && family == Family::V4 {
        return Some(icmp);
    }
    let mut new = apply(apply(old, rewrite.addr_delta), rewrite.port_delta);
    // A computed UDP checksum of 0 is sent as all ones (RFC 768).
    if is_udp && new == 0 {
        new = 0xffff;
    }
    // SAFETY: as above.
    unsafe { *field = new };
    Some(csum::replace16(icmp, old, new))
}

/// The outer destination becomes the real; the TTL goes down by one.
#[inline(always)]
fn outer_ipv4(ctx: &XdpContext, offset: usize, rewrite: &Rewrite) -> Option<()> {
    let ip = header::<Ipv4Hdr>(ctx, offset)?;
    // SAFETY: bounds checked by `header`.
    let ip = unsafe { &mut *ip };
    let old_ttl = u16::from_ne_bytes([ip.ttl, ip.proto]);
    ip.ttl -= 1;
    let new_ttl = u16::from_ne_bytes([ip.ttl, ip.proto]);
    let check = apply(u16::from_ne_bytes(ip.check), rewrite.addr_delta);
    ip.check = csum::replace16(check, old_ttl, new_ttl).to_ne_bytes();
    ip.dst_addr = rewrite.real.words[0].to_ne_bytes();
    Some(())
}

#[inline(always)]
fn outer_ipv6(ctx: &XdpContext, offset: usize, real: &Addr) -> Option<()> {
    let ip = header::<Ipv6Hdr>(ctx, offset)?;
    // SAFETY: bounds checked by `header`.
    unsafe {
        write_addr(&mut (*ip).dst_addr, real);
        (*ip).hop_limit -= 1;
    }
    Some(())
}

/// An address into a header, word by word (no 16-byte copy on the stack).
#[inline(always)]
fn write_addr(to: &mut [u8; 16], addr: &Addr) {
    let mut i = 0;
    while i < 4 {
        let [a, b, c, d] = addr.words[i].to_ne_bytes();
        to[4 * i] = a;
        to[4 * i + 1] = b;
        to[4 * i + 2] = c;
        to[4 * i + 3] = d;
        i += 1;
    }
}

/// Towards the real: its MAC, from the egress interface's.
#[inline(always)]
fn set_macs(ctx: &XdpContext, real: &Real) -> Option<()> {
    let eth = header::<[[u8; 6]; 2]>(ctx, 0)?;
    // SAFETY: bounds checked by `header`.
    unsafe { *eth = [real.dst_mac, real.src_mac] };
    Some(())
}
