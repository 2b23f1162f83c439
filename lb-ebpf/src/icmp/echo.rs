//! Echo requests to a VIP, answered in place: the VIP stays reachable by
//! ping whatever the reals do, and the host never sees the request.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use lb_common::{Family, GlobalCounter, SETTINGS_NO_ECHO_REPLY};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

use crate::{
    parse::{self, L3, L3Verdict},
    scheduling,
    wire::{
        eth::swap_macs,
        frame::{ctx_arg, ctx_from, header},
        icmp::{ICMP_ECHO_REPLY, ICMPV6_ECHO_REPLY, IcmpHdr, set_type},
        ip::{DEFAULT_TTL, is_unicast, turn_ipv4, turn_ipv6},
        verdict::{self, Verdict},
    },
};

/// The reply, or `None` when the host should answer: turned off in the
/// settings, a source that must not be answered, or IPv4 options (a source
/// route or record route wants the host's full treatment). In a BPF
/// function of its own (see `wire::verdict`).
#[inline(always)]
pub fn reply(ctx: &XdpContext) -> Option<Verdict> {
    verdict::decode_option(reply_call(ctx_arg(ctx)))
}

#[inline(never)]
fn reply_call(ctx: usize) -> u64 {
    let ctx = ctx_from(ctx);
    let verdict = match parse::l3(&ctx) {
        L3Verdict::Packet(l3) => answer(&ctx, &l3),
        _ => None,
    };
    verdict::encode_option(verdict)
}

#[inline(always)]
fn answer(ctx: &XdpContext, l3: &L3) -> Option<Verdict> {
    // The source is judged before the settings lookup: held across a
    // helper call, its sixteen bytes would spill into the stack.
    if l3.has_ipv4_options || !is_unicast(l3.family, &l3.src) {
        return None;
    }
    if scheduling::settings().flags & SETTINGS_NO_ECHO_REPLY != 0 {
        return None;
    }
    // Cannot fail: `to_vip` read the ICMP header and the parser the IP one.
    // The verifier still wants each pointer proved, and all of them are
    // taken before the first write so a failure leaves the frame as it was.
    let icmp = header::<IcmpHdr>(ctx, l3.l4_offset)?;
    let eth = header::<[[u8; 6]; 2]>(ctx, 0)?;
    match l3.family {
        Family::V4 => {
            let ip = header::<Ipv4Hdr>(ctx, l3.l3_offset)?;
            // SAFETY: bounds checked by `header`.
            unsafe {
                set_type(&mut *icmp, ICMP_ECHO_REPLY);
                turn_ipv4(&mut *ip, DEFAULT_TTL);
            }
        }
        Family::V6 => {
            let ip = header::<Ipv6Hdr>(ctx, l3.l3_offset)?;
            // SAFETY: as above.
            unsafe {
                set_type(&mut *icmp, ICMPV6_ECHO_REPLY);
                turn_ipv6(&mut *ip, DEFAULT_TTL);
            }
        }
    }
    // SAFETY: as above.
    unsafe { swap_macs(&mut *eth) };
    Some((xdp_action::XDP_TX, GlobalCounter::IcmpEchoReplied))
}
