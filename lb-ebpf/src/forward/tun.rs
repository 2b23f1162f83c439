//! TUN: IP-in-IP encapsulation towards a real anywhere routable (IPIP,
//! IPv6-in-IPv6, and either inside the other when the families differ).
//!
//! The outer header copies DSCP/ECN and TTL/hop limit from the inner one,
//! so QoS and ECN survive and a looping tunnel still dies. Its source is
//! the balancer's address (`Real::tunnel_src`), its destination the real;
//! next hop and MTU come from the daemon like DR's (a gateway's MAC when the
//! real is behind a router). A packet that would not fit once wrapped is
//! answered with "too big" ([`too_big`]) so path MTU discovery works.

mod too_big;

use aya_ebpf::{helpers::bpf_xdp_adjust_head, programs::XdpContext};
use lb_common::{Family, GlobalCounter, REAL_NEXT_HOP_KNOWN, Real};
use network_types::{
    eth::EthHdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
    vlan::VlanHdr,
};

use super::transmit::transmit;
use crate::{
    parse::L3,
    wire::{
        csum, eth,
        frame::{header, view_mut},
        ip::{self, IPV4_DF},
        verdict::Verdict,
    },
};

/// Whether a packet of `ip_len` bytes fits the real's tunnel once wrapped
/// in an outer header of the real's family.
#[inline(always)]
pub fn fits(ip_len: u16, real: &Real, outer_len: usize) -> bool {
    ip_len as usize + outer_len <= real.mtu as usize
}

#[inline(always)]
pub fn tunnel(
    ctx: &XdpContext,
    l3: &L3,
    real: &Real,
    flow_hash: u32,
) -> Result<Verdict, GlobalCounter> {
    if real.flags & REAL_NEXT_HOP_KNOWN == 0 {
        return Err(GlobalCounter::DropNoNextHop);
    }
    let outer_family = Family::from_u8(real.family).ok_or(GlobalCounter::DropNoNextHop)?;
    let outer_len = ip::header_len(outer_family);
    if !fits(l3.ip_len, real, outer_len) {
        return Ok(too_big::reply(
            ctx,
            real.mtu.saturating_sub(outer_len as u16),
        ));
    }
    let has_vlan = l3.l3_offset > EthHdr::LEN;
    // SAFETY: growing the head by a constant the verifier checks.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(outer_len as i32)) } != 0 {
        return Err(GlobalCounter::DropEncapFailed);
    }
    let ether_type = eth::ether_type(outer_family);
    // Move the L2 header to the new front; the outer IP header goes where
    // it used to end.
    if has_vlan {
        move_l2_header::<{ EthHdr::LEN + VlanHdr::LEN }>(ctx, outer_len, real)?;
        let vlan = view_mut::<VlanHdr>(ctx, EthHdr::LEN).ok_or(GlobalCounter::DropEncapFailed)?;
        vlan.ether_type = ether_type;
    } else {
        move_l2_header::<{ EthHdr::LEN }>(ctx, outer_len, real)?;
        let eth = view_mut::<EthHdr>(ctx, 0).ok_or(GlobalCounter::DropEncapFailed)?;
        eth.ether_type = ether_type;
    }
    let inner_proto = ip::tunnel_protocol(l3.family);
    match outer_family {
        Family::V4 => write_outer_v4(ctx, l3, real, inner_proto)?,
        Family::V6 => write_outer_v6(ctx, l3, real, inner_proto, flow_hash)?,
    }
    transmit(ctx, real.ifindex).map(|action| (action, GlobalCounter::Forwarded))
}

/// Copies the `N`-byte L2 header from `shift` bytes in to the front, with
/// the real's next-hop MACs.
#[inline(always)]
fn move_l2_header<const N: usize>(
    ctx: &XdpContext,
    shift: usize,
    real: &Real,
) -> Result<(), GlobalCounter> {
    let old = header::<[u8; N]>(ctx, shift).ok_or(GlobalCounter::DropEncapFailed)?;
    let new = header::<[u8; N]>(ctx, 0).ok_or(GlobalCounter::DropEncapFailed)?;
    // SAFETY: both ranges are inside the frame (checked above); they may
    // overlap when `shift` < N, so copy through a local.
    unsafe {
        let mut l2 = *old;
        l2[..6].copy_from_slice(&real.dst_mac);
        l2[6..12].copy_from_slice(&real.src_mac);
        *new = l2;
    }
    Ok(())
}

#[inline(always)]
fn write_outer_v4(
    ctx: &XdpContext,
    l3: &L3,
    real: &Real,
    inner_proto: u8,
) -> Result<(), GlobalCounter> {
    let ip = header::<Ipv4Hdr>(ctx, l3.l3_offset).ok_or(GlobalCounter::DropEncapFailed)?;
    let total = l3.ip_len.wrapping_add(Ipv4Hdr::LEN as u16);
    // Keep DF where the inner packet had it (and always for IPv6 inside):
    // path MTU discovery then works end to end.
    let frags: u16 = if l3.dont_fragment { IPV4_DF } else { 0 };
    let src = real.tunnel_src.words[0].to_ne_bytes();
    let dst = real.addr.words[0].to_ne_bytes();
    let mut words = [0u16; 10];
    words[0] = u16::from_ne_bytes([0x45, l3.tos]);
    words[1] = total.to_be();
    words[3] = frags.to_be();
    words[4] = u16::from_ne_bytes([l3.ttl, inner_proto]);
    words[6] = u16::from_ne_bytes([src[0], src[1]]);
    words[7] = u16::from_ne_bytes([src[2], src[3]]);
    words[8] = u16::from_ne_bytes([dst[0], dst[1]]);
    words[9] = u16::from_ne_bytes([dst[2], dst[3]]);
    words[5] = csum::ipv4_header(&words);
    // SAFETY: bounds checked by `header`; the header is exactly 10 words.
    unsafe { *(ip as *mut [u16; 10]) = words };
    Ok(())
}

#[inline(always)]
fn write_outer_v6(
    ctx: &XdpContext,
    l3: &L3,
    real: &Real,
    inner_proto: u8,
    flow_hash: u32,
) -> Result<(), GlobalCounter> {
    let ip = view_mut::<Ipv6Hdr>(ctx, l3.l3_offset).ok_or(GlobalCounter::DropEncapFailed)?;
    // The flow label carries the flow hash so ECMP on the way keeps a
    // connection's packets on one path (RFC 6438).
    let vcf = (6u32 << 28) | ((l3.tos as u32) << 20) | (flow_hash & 0xf_ffff);
    ip.vcf = vcf.to_be_bytes();
    ip.payload_len = l3.ip_len.to_be_bytes();
    ip.next_hdr = inner_proto;
    ip.hop_limit = l3.ttl;
    ip.src_addr = real.tunnel_src.octets();
    ip.dst_addr = real.addr.octets();
    Ok(())
}
