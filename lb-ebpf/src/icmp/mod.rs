//! ICMP and ICMPv6 addressed to a VIP: echo requests are answered
//! ([`echo`]), and errors that quote a VIP flow go on to the flow's real
//! ([`relay`], with [`translate`] for NAT), so path MTU discovery (and
//! "port unreachable", "time exceeded") work through the balancer.
//! ("Too big" for a packet TUN cannot carry is TUN's: `forward::tun`.)

mod echo;
mod quote;
mod relay;
mod translate;

use aya_ebpf::programs::XdpContext;
use lb_common::{Family, proto};

use crate::{
    parse::L3,
    wire::{
        frame::view,
        icmp::{
            ICMP_DEST_UNREACH, ICMP_ECHO_REQUEST, ICMP_TIME_EXCEEDED, ICMPV6_DEST_UNREACH,
            ICMPV6_ECHO_REQUEST, ICMPV6_PACKET_TOO_BIG, ICMPV6_TIME_EXCEEDED, IcmpHdr,
        },
        verdict::Verdict,
    },
};

/// ICMP/ICMPv6 addressed to a VIP: echo requests are answered; errors that
/// quote a VIP flow go on to that flow's real (or are translated for NAT).
/// `None`: not ours to handle, pass it to the host.
///
/// The dispatch runs in the balancer's own frame, and so do DR and TUN
/// forwarding (which share the stack slots of the balancer's own DR and TUN
/// paths). The echo reply, the flow lookup and the NAT translation are BPF
/// functions of their own (see `wire::verdict`), called one after the
/// other, never one inside another: the deepest call chain is the balancer
/// plus one function.
#[inline(always)]
pub fn to_vip(ctx: &XdpContext, l3: &L3) -> Option<Verdict> {
    let kind = view::<IcmpHdr>(ctx, l3.l4_offset)?.kind;
    match (l3.family, l3.protocol, kind) {
        (Family::V4, proto::ICMP, ICMP_ECHO_REQUEST)
        | (Family::V6, proto::ICMPV6, ICMPV6_ECHO_REQUEST) => echo::reply(ctx),
        (Family::V4, proto::ICMP, ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED)
        | (
            Family::V6,
            proto::ICMPV6,
            ICMPV6_DEST_UNREACH | ICMPV6_PACKET_TOO_BIG | ICMPV6_TIME_EXCEEDED,
        ) => relay::to_real(ctx, l3),
        // Redirects, router advertisements, neighbour discovery and the
        // rest are the host's business.
        _ => None,
    }
}
