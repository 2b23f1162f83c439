//! Forwarding methods. DR for now: the IP packet is left untouched and only
//! the Ethernet addresses change.
//!
//! Next hops come from the daemon, not from `bpf_fib_lookup`: it resolves
//! each real's MAC and egress interface over rtnetlink, asks the kernel to
//! keep those neighbours resolved, and rewrites `LB_REALS` when they change.
//! That keeps a helper call and a FIB walk off every packet, and makes the
//! program's output a pure function of the maps (which is what the fixture
//! tests check byte for byte).

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use lb_common::{GlobalCounter, REAL_NEXT_HOP_KNOWN, Real};
use network_types::eth::EthHdr;

use crate::{
    maps::LB_TX_PORTS,
    parse::{L3, header},
};

#[inline(always)]
pub fn direct_routing(ctx: &XdpContext, _l3: &L3, real: &Real) -> Result<u32, GlobalCounter> {
    if real.flags & REAL_NEXT_HOP_KNOWN == 0 {
        return Err(GlobalCounter::DropNoNextHop);
    }
    // The parser already read the Ethernet header, so this cannot fail; the
    // verifier still wants the check on this pointer.
    let Some(eth) = header::<EthHdr>(ctx, 0) else {
        return Err(GlobalCounter::DropNoNextHop);
    };
    // SAFETY: bounds checked by `header`.
    unsafe {
        (*eth).dst_addr = real.dst_mac;
        (*eth).src_addr = real.src_mac;
    }
    transmit(ctx, real.ifindex)
}

/// Out of the interface the frame came in on with XDP_TX, else through the
/// devmap (which batches redirects per device).
#[inline(always)]
pub fn transmit(ctx: &XdpContext, ifindex: u32) -> Result<u32, GlobalCounter> {
    if ifindex == ctx.ingress_ifindex() as u32 {
        return Ok(xdp_action::XDP_TX);
    }
    LB_TX_PORTS
        .redirect(ifindex, 0)
        .map_err(|_| GlobalCounter::DropRedirectFailed)
}
