//! ICMP and ICMPv6 generated or handled by the data plane:
//! - [`too_big`]: TUN answers a packet it cannot carry with "fragmentation
//!   needed" / "packet too big" instead of dropping it silently;
//! - [`to_vip`]: echo requests to a VIP are answered, and errors that quote
//!   a VIP flow go on to the flow's real, so path MTU discovery (and
//!   "port unreachable", "time exceeded") work through the balancer.

mod call;
mod echo;
mod quote;
mod relay;
mod too_big;
mod translate;

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use lb_common::{Addr, Family, GlobalCounter, proto};

use crate::parse::{self, L3, L3Verdict, header};

/// What to do with the packet, and the counter that says why.
pub type Verdict = (u32, GlobalCounter);

/// The part of an ICMP and ICMPv6 header they share: type, code and
/// checksum, then four bytes whose meaning depends on the type (echo id and
/// sequence, next-hop MTU, unused). An error's quote follows it.
#[repr(C)]
pub struct IcmpHdr {
    pub kind: u8,
    pub code: u8,
    /// As on the wire; the `csum` helpers work on it as it sits in memory.
    pub checksum: [u8; 2],
    pub rest: [u8; 4],
}

pub const ICMP_HDR_LEN: usize = core::mem::size_of::<IcmpHdr>();

/// ICMP types (RFC 792) and codes.
pub const ICMP_ECHO_REPLY: u8 = 0;
pub const ICMP_DEST_UNREACH: u8 = 3;
pub const ICMP_FRAG_NEEDED: u8 = 4;
pub const ICMP_ECHO_REQUEST: u8 = 8;
pub const ICMP_TIME_EXCEEDED: u8 = 11;

/// ICMPv6 types (RFC 4443).
pub const ICMPV6_DEST_UNREACH: u8 = 1;
pub const ICMPV6_PACKET_TOO_BIG: u8 = 2;
pub const ICMPV6_TIME_EXCEEDED: u8 = 3;
pub const ICMPV6_ECHO_REQUEST: u8 = 128;
pub const ICMPV6_ECHO_REPLY: u8 = 129;

/// TTL / hop limit of the packets the data plane originates (the Linux
/// default).
pub const DEFAULT_TTL: u8 = 64;

/// Answers a packet that will not fit once encapsulated with ICMP
/// "fragmentation needed" (IPv4) / ICMPv6 "packet too big", carrying `mtu`.
///
/// The work happens in a BPF function of its own (see [`call`]), which
/// parses the IP header again instead of receiving `l3`: a pointer to the
/// caller's local would pin it in the caller's stack frame.
#[inline(always)]
pub fn too_big(ctx: &XdpContext, _l3: &L3, mtu: u16) -> (u32, GlobalCounter) {
    call::decode(too_big_call(call::ctx_arg(ctx), mtu as u32))
}

#[inline(never)]
fn too_big_call(ctx: usize, mtu: u32) -> u64 {
    let ctx = call::ctx_from(ctx);
    // Cannot fail: the caller parsed the same, untouched frame.
    let verdict = match parse::l3(&ctx) {
        L3Verdict::Packet(l3) => match too_big::answer(&ctx, &l3, mtu as u16) {
            Ok(()) => (xdp_action::XDP_TX, GlobalCounter::IcmpTooBigSent),
            Err(reason) => (xdp_action::XDP_DROP, reason),
        },
        _ => (xdp_action::XDP_DROP, GlobalCounter::DropEncapFailed),
    };
    call::encode(verdict)
}

/// ICMP/ICMPv6 addressed to a VIP: echo requests are answered; errors that
/// quote a VIP flow go on to that flow's real (or are translated for NAT).
/// `None`: not ours to handle, pass it to the host.
///
/// The dispatch runs in the balancer's own frame, and so do DR and TUN
/// forwarding (which share the stack slots of the balancer's own DR and TUN
/// paths). The echo reply, the flow lookup and the NAT translation are BPF
/// functions of their own (see [`call`]), called one after the other,
/// never one inside another: the deepest call chain is the balancer plus
/// one function.
#[inline(always)]
pub fn to_vip(ctx: &XdpContext, l3: &L3) -> Option<(u32, GlobalCounter)> {
    let icmp = header::<IcmpHdr>(ctx, l3.l4_offset)?;
    // SAFETY: bounds checked by `header`.
    let kind = unsafe { (*icmp).kind };
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

/// Whether `addr` may be answered at all: never an unspecified, loopback,
/// multicast or broadcast source (RFC 1122 3.2.2, RFC 4443 2.4(e)), which
/// would turn one packet into many or into nonsense.
#[inline(always)]
pub fn is_unicast(family: Family, addr: &Addr) -> bool {
    let first = addr.words[0].to_ne_bytes()[0];
    match family {
        // 0/8 "this network", 127/8 loopback, 224/4 multicast, 240/4
        // reserved and the limited broadcast.
        Family::V4 => first != 0 && first != 127 && first < 224,
        Family::V6 => first != 0xff && *addr != Addr::UNSPECIFIED,
    }
}

/// Swaps the Ethernet destination and source (the first twelve bytes of
/// the frame): it goes back to the neighbour it came from.
#[inline(always)]
pub fn swap_macs(macs: &mut [[u8; 6]; 2]) {
    let [dst, src] = *macs;
    *macs = [src, dst];
}
