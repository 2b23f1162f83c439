//! Putting a frame on the wire, for every forwarding method.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use lb_common::GlobalCounter;

use crate::maps::LB_TX_PORTS;

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
