//! TUN: IP-in-IP encapsulation towards a real anywhere routable (IPIP,
//! IPv6-in-IPv6, and either inside the other when the families differ).
//!
//! The outer header copies DSCP/ECN and TTL/hop limit from the inner one,
//! so QoS and ECN survive and a looping tunnel still dies. Its source is
//! the balancer's address (`Real::tunnel_src`), its destination the real;
//! next hop and MTU come from the daemon like DR's (a gateway's MAC when the
//! real is behind a router).

use aya_ebpf::{helpers::bpf_xdp_adjust_head, programs::XdpContext};
use lb_common::{Family, GlobalCounter, REAL_NEXT_HOP_KNOWN, Real};
use network_types::{
    eth::{EthHdr, EtherType},
    ip::{Ipv4Hdr, Ipv6Hdr},
    vlan::VlanHdr,
};

use crate::{
    csum,
    forward::transmit,
    icmp,
    parse::{L3, header},
};

/// IANA protocol numbers of the inner packet, as the outer header names it.
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_IPV6: u8 = 41;

/// What to do with the packet, and the counter that says why.
pub type Verdict = (u32, GlobalCounter);

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
    let outer_len = match outer_family {
        Family::V4 => Ipv4Hdr::LEN,
        Family::V6 => Ipv6Hdr::LEN,
    };
    if l3.ip_len as usize + outer_len > real.mtu as usize {
        let fits = real.mtu.saturating_sub(outer_len as u16);
        return Ok(icmp::too_big(ctx, l3, fits));
    }
    let has_vlan = l3.l3_offset > EthHdr::LEN;
    // SAFETY: growing the head by a constant the verifier checks.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(outer_len as i32)) } != 0 {
        return Err(GlobalCounter::DropEncapFailed);
    }
    let ether_type = match outer_family {
        Family::V4 => EtherType::Ipv4 as u16,
        Family::V6 => EtherType::Ipv6 as u16,
    };
    // Move the L2 header to the new front; the outer IP header goes where
    // it used to end.
    if has_vlan {
        move_l2_header::<{ EthHdr::LEN + VlanHdr::LEN }>(ctx, outer_len, real)?;
        let vlan = header::<VlanHdr>(ctx, EthHdr::LEN).ok_or(GlobalCounter::DropEncapFailed)?;
        // SAFETY: bounds checked by `header`.
        unsafe { (*vlan).ether_type = ether_type };
    } else {
        move_l2_header::<{ EthHdr::LEN }>(ctx, outer_len, real)?;
        let eth = header::<EthHdr>(ctx, 0).ok_or(GlobalCounter::DropEncapFailed)?;
        // SAFETY: bounds checked by `header`.
        unsafe { (*eth).ether_type = ether_type };
    }
    let inner_proto = match l3.family {
        Family::V4 => IPPROTO_IPIP,
        Family::V6 => IPPROTO_IPV6,
    };
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
    let frags: u16 = if l3.dont_fragment { 0x4000 } else { 0 };
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
    let ip = header::<Ipv6Hdr>(ctx, l3.l3_offset).ok_or(GlobalCounter::DropEncapFailed)?;
    // The flow label carries the flow hash so ECMP on the way keeps a
    // connection's packets on one path (RFC 6438).
    let vcf = (6u32 << 28) | ((l3.tos as u32) << 20) | (flow_hash & 0xf_ffff);
    // SAFETY: bounds checked by `header`.
    unsafe {
        (*ip).vcf = vcf.to_be_bytes();
        (*ip).payload_len = l3.ip_len.to_be_bytes();
        (*ip).next_hdr = inner_proto;
        (*ip).hop_limit = l3.ttl;
        (*ip).src_addr = real.tunnel_src.octets();
        (*ip).dst_addr = real.addr.octets();
    }
    Ok(())
}
