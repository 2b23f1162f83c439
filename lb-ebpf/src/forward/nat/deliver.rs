//! Sending a packet from a NAT real on, once the route to the client is
//! known: shared by the reply path, the reply cache and ICMP errors.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use lb_common::GlobalCounter;

use super::route::{self, FibParams, Route};
use crate::{
    forward::transmit::transmit,
    wire::{eth::set_macs, verdict::Verdict},
};

/// Whether a packet from a NAT real that `route` leads on must be
/// translated first: not when it is dropped, nor when the kernel must see
/// it as the real sent it.
#[inline(always)]
pub fn translate_first(route: &Route, may_fragment: bool) -> bool {
    match route {
        Route::Resolved | Route::Unresolved => true,
        // Too big for the egress link. IPv4 without DF: the kernel
        // fragments the translated packet. Otherwise it drops it and tells
        // the sender; left untranslated, that sender is the real, which is
        // the one that can send smaller packets (path MTU discovery works
        // through the balancer; translated, the error would go to the VIP).
        Route::TooBig => may_fragment,
        Route::Unroutable => false,
    }
}

/// Sends a packet from a NAT real on as `route` says, once
/// [`translate_first`] was honoured.
#[inline(always)]
pub fn deliver(ctx: &XdpContext, fib: &FibParams, route: Route) -> Verdict {
    match route {
        Route::Resolved => send_to_client(ctx, &fib.dmac, &fib.smac, fib.ifindex),
        // The route is there, the neighbour is not resolved yet: the kernel
        // forwards the translated packet and resolves it on the way (which
        // needs forwarding enabled on the balancer, as NAT does anyway).
        Route::Unresolved => (xdp_action::XDP_PASS, GlobalCounter::PassNoNeighbour),
        Route::TooBig => (xdp_action::XDP_PASS, route::PASS_TOO_BIG),
        Route::Unroutable => (xdp_action::XDP_DROP, GlobalCounter::DropNoRoute),
    }
}

/// A translation that cannot fail did: a header the parser read is gone.
pub const UNTRANSLATABLE: Verdict = (xdp_action::XDP_DROP, GlobalCounter::DropTruncatedL4);

/// Out to the next hop a route lookup found (now, or for the reply cache).
#[inline(always)]
pub fn send_to_client(
    ctx: &XdpContext,
    dst_mac: &[u8; 6],
    src_mac: &[u8; 6],
    ifindex: u32,
) -> Verdict {
    if set_macs(ctx, dst_mac, src_mac).is_none() {
        return UNTRANSLATABLE;
    }
    match transmit(ctx, ifindex) {
        Ok(action) => (action, GlobalCounter::NatReplies),
        Err(reason) => (xdp_action::XDP_DROP, reason),
    }
}
