//! DR: the IP packet is left untouched and only the Ethernet addresses
//! change; the real holds the VIP itself.

use aya_ebpf::programs::XdpContext;
use lb_common::{GlobalCounter, REAL_NEXT_HOP_KNOWN, Real};

use super::transmit::transmit;
use crate::wire::eth::set_macs;

#[inline(always)]
pub fn direct_routing(ctx: &XdpContext, real: &Real) -> Result<u32, GlobalCounter> {
    if real.flags & REAL_NEXT_HOP_KNOWN == 0 {
        return Err(GlobalCounter::DropNoNextHop);
    }
    // The parser already read the Ethernet header, so this cannot fail; the
    // verifier still wants the check on this pointer.
    set_macs(ctx, &real.dst_mac, &real.src_mac).ok_or(GlobalCounter::DropNoNextHop)?;
    transmit(ctx, real.ifindex)
}
