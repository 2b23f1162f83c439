//! The reals' side of TUN: strips IP-in-IP / IPv6 tunnels addressed to this
//! host and passes the inner packet up the stack, so a real needs neither
//! the `ipip` nor the `ip6_tunnel` module (many hosts cannot load them).
//!
//! It strips exactly what `forward::tun` builds: Ethernet with at most one
//! 802.1Q tag, then an outer IPv4 header (options allowed) with protocol 4
//! (IPv4 inside) or 41 (IPv6 inside), or an outer IPv6 header whose next
//! header is 4 or 41, then a whole inner IP header of the version the outer
//! one names. The outer destination must be in `LB_DECAP_ADDRS` (the
//! host's own addresses, kept by `lbd decap`): a tunnel to someone else is
//! not ours to open. The L2 header stays, with the inner packet's
//! ethertype, so the stack sees an ordinary frame from the same neighbour.
//!
//! Everything else passes untouched and counts nothing: this program sees
//! every frame the real receives, and the host's own traffic should not pay
//! a map write per packet. Only `Decapsulated` moves. In particular:
//! - outer fragments (IPv4 MF or offset; an IPv6 Fragment header is simply
//!   not next header 4/41): the inner header may not even be in this one.
//!   The balancer sets DF whenever it can and answers "too big" itself, so
//!   these only come from inner IPv4 packets without DF fragmented on the way;
//! - IPv6 extension headers before the tunnel header (the balancer adds none);
//! - anything malformed or cut short: the kernel judges it as it came.
//!
//! The outer IPv4 checksum is not verified (the Ethernet FCS already has,
//! as in Katran's decap); the inner header reaches the stack, which checks it.

use aya_ebpf::{bindings::xdp_action, helpers::bpf_xdp_adjust_head, programs::XdpContext};
use lb_common::{Addr, Family, GlobalCounter, VipKey};
use network_types::{
    eth::EthHdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
    vlan::VlanHdr,
};

use crate::{
    counters::count,
    maps::LB_DECAP_ADDRS,
    parse::{self, L3, L3Verdict},
    wire::{
        csum, eth,
        frame::{view, view_mut},
        ip::{ECN_CE, ECN_MASK, header_len, tunnelled_family},
    },
};

/// A tunnel addressed to this host, ready to be stripped.
struct Tunnel {
    /// Outer IP header bytes to remove, IPv4 options included.
    outer_len: usize,
    /// The inner packet's family: picks the new ethertype and the header
    /// that receives the ECN mark.
    inner: Family,
    /// A router on the way marked the outer header Congestion Experienced.
    outer_ce: bool,
}

#[inline(always)]
pub fn decapsulate(ctx: &XdpContext) -> u32 {
    let L3Verdict::Packet(outer) = parse::l3(ctx) else {
        return xdp_action::XDP_PASS;
    };
    let Some(tunnel) = tunnel(ctx, &outer) else {
        return xdp_action::XDP_PASS;
    };
    // One instance per L2 header size: the copies must have a length the
    // verifier knows.
    let stripped = if outer.l3_offset == EthHdr::LEN {
        strip::<{ EthHdr::LEN }>(ctx, &tunnel)
    } else {
        strip::<{ EthHdr::LEN + VlanHdr::LEN }>(ctx, &tunnel)
    };
    if stripped.is_some() {
        count(GlobalCounter::Decapsulated);
    }
    xdp_action::XDP_PASS
}

/// The frame's outer IP header, as parsed, if it opens a tunnel to this
/// host.
#[inline(always)]
fn tunnel(ctx: &XdpContext, outer: &L3) -> Option<Tunnel> {
    // The parser goes by the ethertype; the header must say the same.
    if *view::<u8>(ctx, outer.l3_offset)? >> 4 != outer.family as u8 {
        return None;
    }
    // Extension headers (a Fragment header among them) are next header
    // values other than 4/41: not a tunnel the balancer built.
    let inner = tunnelled_family(outer.protocol)?;
    let outer_len = outer.l4_offset - outer.l3_offset;
    if outer.is_fragment || !length_covers(outer, outer_len, header_len(inner)) {
        return None;
    }
    if !is_local(outer.dst, outer.family) {
        return None;
    }
    inner_header_present(ctx, outer.l4_offset, inner)?;
    Some(Tunnel {
        outer_len,
        inner,
        outer_ce: outer.tos & ECN_MASK == ECN_CE,
    })
}

/// Whether the outer header's own length covers `len` bytes behind it (a
/// whole inner header): Ethernet padding behind a short packet must not
/// pass for one. IPv6's is its payload length field, as it stands.
#[inline(always)]
fn length_covers(outer: &L3, outer_len: usize, len: usize) -> bool {
    match outer.family {
        Family::V4 => outer.ip_len as usize >= outer_len + len,
        Family::V6 => outer.ip_len.wrapping_sub(Ipv6Hdr::LEN as u16) as usize >= len,
    }
}

/// Is `addr` one of the addresses `lbd decap` keeps for this host?
#[inline(always)]
fn is_local(addr: Addr, family: Family) -> bool {
    let key = VipKey {
        addr,
        family: family as u8,
        _pad: [0; 3],
    };
    LB_DECAP_ADDRS.get_ptr(key).is_some()
}

/// A whole inner header at `offset`, of the version the outer header
/// announced. Anything else is not worth handing up without its tunnel.
#[inline(always)]
fn inner_header_present(ctx: &XdpContext, offset: usize, family: Family) -> Option<()> {
    let version = match family {
        Family::V4 => view::<Ipv4Hdr>(ctx, offset)?.vihl >> 4,
        Family::V6 => view::<Ipv6Hdr>(ctx, offset)?.vcf[0] >> 4,
    };
    (version == family as u8).then_some(())
}

/// Removes the outer header: the `L2`-byte L2 header is saved, the head
/// moved past the outer IP header, and the L2 header written back in front
/// of the inner packet with the inner ethertype. Saving it on the stack
/// (rather than copying it forward inside the frame first) means a failed
/// `bpf_xdp_adjust_head` leaves the frame exactly as it came, and there is
/// no overlapping copy to get wrong.
#[inline(always)]
fn strip<const L2: usize>(ctx: &XdpContext, tunnel: &Tunnel) -> Option<()> {
    let mut l2 = *view::<[u8; L2]>(ctx, 0)?;
    // The ethertype is the last field of the L2 header, tagged or not (with
    // a tag it is the inner one, after the TCI).
    l2[L2 - 2..].copy_from_slice(&eth::ether_type(tunnel.inner).to_ne_bytes());
    // SAFETY: shrinking the head by at most 60 bytes; the parse above
    // proved an L2 header and a whole inner IP header remain behind them.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, tunnel.outer_len as i32) } != 0 {
        return None;
    }
    // Cannot fail (the inner header is there), but the verifier wants the
    // bounds of the new frame proved again.
    *view_mut::<[u8; L2]>(ctx, 0)? = l2;
    if tunnel.outer_ce {
        propagate_ce(ctx, L2, tunnel.inner);
    }
    Some(())
}

/// RFC 6040: congestion a router signalled on the outer header must reach
/// the endpoint, so CE is copied onto an ECN-capable inner packet (as the
/// kernel's own tunnels do). A not-ECT inner packet is left as it is: the
/// balancer copies the inner ECN bits outwards, so an ECT outer header
/// never carries a not-ECT packet unless a router misbehaved.
#[inline(always)]
fn propagate_ce(ctx: &XdpContext, offset: usize, inner: Family) {
    match inner {
        Family::V4 => {
            let Some(ip) = view_mut::<Ipv4Hdr>(ctx, offset) else {
                return;
            };
            if ip.tos & ECN_MASK == 0 {
                return;
            }
            // The checksum covers TOS as the low byte of the first 16-bit
            // word (in memory order, which is what `csum` works in).
            let old = u16::from_ne_bytes([ip.vihl, ip.tos]);
            ip.tos |= ECN_CE;
            let new = u16::from_ne_bytes([ip.vihl, ip.tos]);
            let check = csum::replace16(u16::from_ne_bytes(ip.check), old, new);
            ip.check = check.to_ne_bytes();
        }
        Family::V6 => {
            let Some(ip) = view_mut::<Ipv6Hdr>(ctx, offset) else {
                return;
            };
            // ECN bits: the high nibble's low two bits of the second byte.
            if (ip.vcf[1] >> 4) & ECN_MASK != 0 {
                ip.vcf[1] |= ECN_CE << 4;
            }
        }
    }
}
