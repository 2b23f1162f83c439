//! "Fragmentation needed" (ICMP 3/4) and "packet too big" (ICMPv6 2/0) for
//! a packet TUN cannot carry, built in place from the packet itself:
//!
//! ```text
//! before: | L2 | IP header + payload ............................ |
//! after:  | L2 | IP | ICMP | quote: IP header + payload, cut |
//! ```
//!
//! The tail is cut to a fixed-size quote, the head grows by the new IP and
//! ICMP headers, the L2 header moves to the new front with its MACs swapped
//! and the frame goes back out the way it came (XDP_TX).
//!
//! The quote is as long as the RFCs allow: the whole error within 576 bytes
//! for IPv4 (RFC 1812 4.3.2.3), within the 1280-byte minimum MTU for IPv6
//! (RFC 4443 2.4(c)). A fixed length keeps every access one constant-size
//! range the verifier checks once, and the checksum a few `bpf_csum_diff`
//! calls over constant-size chunks. A packet too big for the tunnel holds
//! that much whenever the tunnel's MTU is at least 576 (IPv4 inside) or
//! 1280 (IPv6 inside); a frame shorter than the quote (an IP header that
//! claims more than the frame holds, or an absurd MTU) is dropped.

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_xdp_adjust_head, bpf_xdp_adjust_tail},
    programs::XdpContext,
};
use lb_common::{Addr, Family, GlobalCounter, proto};
use network_types::{
    eth::EthHdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
    vlan::VlanHdr,
};

use crate::{
    parse::{self, L3, L3Verdict},
    wire::{
        csum,
        frame::{ctx_arg, ctx_from, header, view_mut},
        icmp::{ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, ICMP_HDR_LEN, ICMPV6_PACKET_TOO_BIG, IcmpHdr},
        ip::{DEFAULT_TTL, is_unicast},
        verdict::{self, Verdict},
    },
};

/// Answers a packet that will not fit once encapsulated with ICMP
/// "fragmentation needed" (IPv4) / ICMPv6 "packet too big", carrying `mtu`.
///
/// The work happens in a BPF function of its own (see `wire::verdict`),
/// which parses the IP header again instead of receiving `l3`: a pointer
/// to the caller's local would pin it in the caller's stack frame.
#[inline(always)]
pub fn reply(ctx: &XdpContext, mtu: u16) -> Verdict {
    verdict::decode(reply_call(ctx_arg(ctx), mtu as u32))
}

#[inline(never)]
fn reply_call(ctx: usize, mtu: u32) -> u64 {
    let ctx = ctx_from(ctx);
    // Cannot fail: the caller parsed the same, untouched frame.
    let verdict = match parse::l3(&ctx) {
        L3Verdict::Packet(l3) => match answer(&ctx, &l3, mtu as u16) {
            Ok(()) => (xdp_action::XDP_TX, GlobalCounter::IcmpTooBigSent),
            Err(reason) => (xdp_action::XDP_DROP, reason),
        },
        _ => (xdp_action::XDP_DROP, GlobalCounter::DropEncapFailed),
    };
    verdict::encode(verdict)
}

/// Bytes of the original packet each error quotes.
const QUOTE_V4: usize = 576 - Ipv4Hdr::LEN - ICMP_HDR_LEN;
const QUOTE_V6: usize = 1280 - Ipv6Hdr::LEN - ICMP_HDR_LEN;

/// Why a packet cannot be answered. There is no counter of its own: this
/// only happens to a packet TUN could not send either.
const NOT_ANSWERED: GlobalCounter = GlobalCounter::DropEncapFailed;

/// Rewrites the frame into the answer; on `Err` the caller drops it.
#[inline(always)]
fn answer(ctx: &XdpContext, l3: &L3, mtu: u16) -> Result<(), GlobalCounter> {
    // Never an error about ICMP (RFC 1122 3.2.2 forbids it about errors;
    // only TCP and UDP reach a tunnel anyway) and never to a source that
    // must not be answered.
    if l3.protocol == proto::ICMP || l3.protocol == proto::ICMPV6 || !is_unicast(l3.family, &l3.src)
    {
        return Err(NOT_ANSWERED);
    }
    match l3.family {
        Family::V4 => answer_v4(ctx, l3, mtu),
        Family::V6 => answer_v6(ctx, l3, mtu),
    }
}

#[inline(always)]
fn answer_v4(ctx: &XdpContext, l3: &L3, mtu: u16) -> Result<(), GlobalCounter> {
    const HEADERS: usize = Ipv4Hdr::LEN + ICMP_HDR_LEN;
    reshape::<QUOTE_V4, HEADERS>(ctx, l3)?;
    write_ipv4(ctx, l3, (HEADERS + QUOTE_V4) as u16)?;
    // Unused (16 bits), then the next-hop MTU (RFC 1191).
    let icmp = (ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu as u32);
    // ICMPv4 has no pseudo-header.
    write_icmp::<{ ICMP_HDR_LEN + QUOTE_V4 }>(ctx, l3.l3_offset + Ipv4Hdr::LEN, icmp, 0)
}

#[inline(always)]
fn answer_v6(ctx: &XdpContext, l3: &L3, mtu: u16) -> Result<(), GlobalCounter> {
    const HEADERS: usize = Ipv6Hdr::LEN + ICMP_HDR_LEN;
    const ICMP_LEN: usize = ICMP_HDR_LEN + QUOTE_V6;
    reshape::<QUOTE_V6, HEADERS>(ctx, l3)?;
    write_ipv6(ctx, l3, ICMP_LEN as u16)?;
    let icmp = (ICMPV6_PACKET_TOO_BIG, 0, mtu as u32);
    // From the VIP (the packet's destination) back to its source.
    let seed = csum::icmpv6_pseudo_header(&l3.dst, &l3.src, ICMP_LEN as u32);
    write_icmp::<ICMP_LEN>(ctx, l3.l3_offset + Ipv6Hdr::LEN, icmp, seed)
}

/// Cuts the frame to the L2 header and `QUOTE` bytes of the packet, then
/// makes room for `HEADERS` bytes of new headers in front of the packet.
/// Afterwards the frame has the same L2 header (MACs swapped) at the front
/// and the new headers at `l3.l3_offset`.
#[inline(always)]
fn reshape<const QUOTE: usize, const HEADERS: usize>(
    ctx: &XdpContext,
    l3: &L3,
) -> Result<(), GlobalCounter> {
    header::<[u8; QUOTE]>(ctx, l3.l3_offset).ok_or(NOT_ANSWERED)?;
    let excess = ctx.data_end() - ctx.data() - (l3.l3_offset + QUOTE);
    // SAFETY: the helpers check the new bounds themselves; every packet
    // pointer is derived afresh from the context afterwards.
    unsafe {
        if excess > 0 && bpf_xdp_adjust_tail(ctx.ctx, -(excess as i32)) != 0 {
            return Err(NOT_ANSWERED);
        }
        if bpf_xdp_adjust_head(ctx.ctx, -(HEADERS as i32)) != 0 {
            return Err(NOT_ANSWERED);
        }
    }
    if l3.l3_offset > EthHdr::LEN {
        move_l2_header::<{ EthHdr::LEN + VlanHdr::LEN }>(ctx, HEADERS)
    } else {
        move_l2_header::<{ EthHdr::LEN }>(ctx, HEADERS)
    }
}

/// Copies the `N`-byte L2 header from `shift` bytes in to the front, with
/// the MACs swapped (the answer goes back to the neighbour that sent the
/// packet). The ethertype stays: the answer is of the packet's family.
/// Packet to packet, without a copy on the stack: the stack is shared with
/// the rest of the program and tight.
#[inline(always)]
fn move_l2_header<const N: usize>(ctx: &XdpContext, shift: usize) -> Result<(), GlobalCounter> {
    const { assert!(N >= 12) };
    let old = header::<[u8; N]>(ctx, shift).ok_or(NOT_ANSWERED)? as *const u8;
    let new = header::<[u8; N]>(ctx, 0).ok_or(NOT_ANSWERED)? as *mut u8;
    if shift < N {
        // The ranges would overlap; the headers grow by at least 28 bytes.
        return Err(NOT_ANSWERED);
    }
    // SAFETY: both N-byte ranges are inside the frame (checked above) and
    // apart (`shift` >= N).
    unsafe {
        core::ptr::copy_nonoverlapping(old.add(6), new, 6);
        core::ptr::copy_nonoverlapping(old, new.add(6), 6);
        core::ptr::copy_nonoverlapping(old.add(12), new.add(12), N - 12);
    }
    Ok(())
}

/// A fresh IPv4 header from the VIP to the packet's source. No DF: the
/// answer is small enough for any path. Written field by field, with the
/// checksum summed from the same values, so nothing goes through the stack.
#[inline(always)]
fn write_ipv4(ctx: &XdpContext, l3: &L3, total_len: u16) -> Result<(), GlobalCounter> {
    let ip = view_mut::<Ipv4Hdr>(ctx, l3.l3_offset).ok_or(NOT_ANSWERED)?;
    let (src, dst) = (l3.dst.words[0], l3.src.words[0]);
    const VERSION_IHL: u8 = 0x45;
    // Identification, flags and fragment offset are zero.
    let check = csum::ipv4_header_of(
        u16::from_ne_bytes([VERSION_IHL, 0]),
        total_len.to_be(),
        u16::from_ne_bytes([DEFAULT_TTL, proto::ICMP]),
        src,
        dst,
    );
    ip.vihl = VERSION_IHL;
    ip.tos = 0;
    ip.tot_len = total_len.to_be_bytes();
    ip.id = [0; 2];
    ip.frags = [0; 2];
    ip.ttl = DEFAULT_TTL;
    ip.proto = proto::ICMP;
    ip.check = check.to_ne_bytes();
    ip.src_addr = src.to_ne_bytes();
    ip.dst_addr = dst.to_ne_bytes();
    Ok(())
}

/// A fresh IPv6 header from the VIP to the packet's source.
#[inline(always)]
fn write_ipv6(ctx: &XdpContext, l3: &L3, payload_len: u16) -> Result<(), GlobalCounter> {
    let ip = header::<Ipv6Hdr>(ctx, l3.l3_offset).ok_or(NOT_ANSWERED)?;
    // SAFETY: bounds checked by `header`; the addresses are 16 bytes each,
    // written as the four words `Addr` holds.
    unsafe {
        (*ip).vcf = (6u32 << 28).to_be_bytes();
        (*ip).payload_len = payload_len.to_be_bytes();
        (*ip).next_hdr = proto::ICMPV6;
        (*ip).hop_limit = DEFAULT_TTL;
        write_addr((*ip).src_addr.as_mut_ptr(), &l3.dst);
        write_addr((*ip).dst_addr.as_mut_ptr(), &l3.src);
    }
    Ok(())
}

/// # Safety
/// `to` must point at 16 writable bytes.
#[inline(always)]
unsafe fn write_addr(to: *mut u8, addr: &Addr) {
    let mut i = 0;
    while i < 4 {
        // SAFETY: within the 16 bytes the caller vouches for.
        unsafe { core::ptr::write_unaligned((to as *mut u32).add(i), addr.words[i]) };
        i += 1;
    }
}

/// Writes the ICMP header (type, code, the four type-specific bytes) at
/// `offset`, then its checksum over the `LEN` bytes of the message (header
/// and quote), starting from `seed`.
#[inline(always)]
fn write_icmp<const LEN: usize>(
    ctx: &XdpContext,
    offset: usize,
    (kind, code, rest): (u8, u8, u32),
    seed: u32,
) -> Result<(), GlobalCounter> {
    let message = header::<[u8; LEN]>(ctx, offset).ok_or(NOT_ANSWERED)?;
    let hdr = message as *mut IcmpHdr;
    // SAFETY: the header is the first 8 of the `LEN` bytes checked.
    unsafe {
        (*hdr).kind = kind;
        (*hdr).code = code;
        (*hdr).checksum = [0; 2];
        (*hdr).rest = rest.to_be_bytes();
    }
    let sum = csum::sum_region::<LEN>(message as *mut u8, seed).ok_or(NOT_ANSWERED)?;
    // SAFETY: as above.
    unsafe { (*hdr).checksum = (!csum::fold(sum as u64)).to_ne_bytes() };
    Ok(())
}
