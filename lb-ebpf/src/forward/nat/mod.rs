//! NAT (LVS-NAT): requests rewritten to the real, replies back to the VIP.
//!
//! The balancer is the reals' gateway, so it sees both directions:
//! - a request to a NAT service gets the real's address and port as its
//!   destination ([`request`]), and the reverse 5-tuple goes into
//!   `LB_NAT_REPLIES`;
//! - a packet from a NAT real that matches such an entry gets the VIP and
//!   the service port back as its source ([`reply`]) and goes on to the
//!   client. ICMP errors a real sends about such a flow are translated the
//!   same way ([`icmp_error`]).
//!
//! Both directions act as the router the balancer is: TTL / hop limit go
//! down by one (a packet that would expire is left to the kernel, which
//! answers "time exceeded"), and every checksum is updated incrementally.
//!
//! Next hops differ by direction. Requests go to a real, which the daemon
//! resolved in advance (MACs and egress interface in `LB_REALS`, as for DR
//! and TUN): no helper call per packet. Replies go to arbitrary client
//! addresses that nobody can resolve in advance, so the reply path asks the
//! kernel's FIB and neighbour tables (`bpf_fib_lookup`, see [`route`]) and
//! leaves to the kernel what it cannot finish itself. What it finished, the
//! reply cache ([`reply_cache`]) repeats for the flow's next replies for up
//! to a second without any lookup.

mod conntrack;
mod deliver;
mod headers;
mod icmp_error;
mod reply_cache;
mod route;
mod scratch;

use aya_ebpf::{
    bindings::{xdp_action, xdp_md},
    programs::XdpContext,
};
use lb_common::{GlobalCounter, REAL_NEXT_HOP_KNOWN, Real};

use self::{
    conntrack::ReverseEntry,
    deliver::{UNTRANSLATABLE, deliver, translate_first},
};
use super::transmit::transmit;
use crate::{
    counters,
    flow_state::Choice,
    parse::{self, L3, L3Verdict, L4, L4Verdict},
    wire::{
        eth::set_macs,
        layout::{End, Layout},
        rewrite,
        verdict::{self, Verdict},
    },
};

/// What the reply path hands back for a packet from a NAT real that is
/// neither TCP nor UDP: an ICMP error maybe, for [`icmp_error`].
const ICMP_FROM_NAT_REAL: u64 = verdict::SIGNAL;

/// A request to a NAT service: destination VIP:port becomes real:port.
///
/// The work happens in a BPF function of its own (see `wire::verdict`),
/// which is handed where the headers are (one register) instead of `l3`
/// and `l4`: pointers to the balancer's locals would force them into its
/// stack frame, and it reads the few fields it needs from the frame again.
#[inline(always)]
pub fn request(
    ctx: &XdpContext,
    l3: &L3,
    choice: &Choice,
    real: &Real,
) -> Result<Verdict, GlobalCounter> {
    verdict::decode_result(request_call(
        ctx.ctx,
        real,
        choice.real_id,
        ReverseEntry::for_choice(choice) as u8,
        l3.layout().packed(),
    ))
}

#[inline(never)]
fn request_call(ctx: *mut xdp_md, real: &Real, real_id: u32, reverse: u8, at: u32) -> u64 {
    verdict::encode_result(to_real(
        &XdpContext::new(ctx),
        real,
        real_id,
        ReverseEntry::from_u8(reverse),
        Layout::unpacked(at),
    ))
}

#[inline(always)]
fn to_real(
    ctx: &XdpContext,
    real: &Real,
    real_id: u32,
    reverse: ReverseEntry,
    at: Layout,
) -> Result<Verdict, GlobalCounter> {
    // Neither read can fail: the balancer parsed the same frame a moment
    // ago. Checked first, like a router: the kernel answers "time exceeded"
    // to the client from the packet as it came.
    if headers::ttl(ctx, at).ok_or(GlobalCounter::DropTruncatedL4)? <= 1 {
        return Ok((xdp_action::XDP_PASS, GlobalCounter::PassTtlExceeded));
    }
    let ports = headers::ports(ctx, at).ok_or(GlobalCounter::DropTruncatedL4)?;
    // The config only accepts NAT reals of the VIP's family; anything else
    // in the map would make a malformed packet, so it counts as unreachable.
    if real.flags & REAL_NEXT_HOP_KNOWN == 0 || real.family != at.family as u8 {
        return Err(GlobalCounter::DropNoNextHop);
    }
    // Port 0 in the real means "the service's port" (port-0 services keep
    // whatever port the client asked for).
    let real_port = if real.port_be != 0 {
        real.port_be
    } else {
        ports.1
    };
    // None of these can fail (the headers were just parsed); the verifier
    // still wants every pointer proved again.
    conntrack::remember_reply(ctx, at, ports, real, real_port, (real_id, reverse))
        .ok_or(GlobalCounter::DropTruncatedL4)?;
    rewrite::translate(ctx, at, End::Destination, (&real.addr, real_port))
        .ok_or(GlobalCounter::DropTruncatedL4)?;
    set_macs(ctx, &real.dst_mac, &real.src_mac).ok_or(GlobalCounter::DropTruncatedL4)?;
    transmit(ctx, real.ifindex).map(|action| (action, GlobalCounter::Forwarded))
}

/// A reply of a flow this CPU's reply cache holds: translated and sent on
/// without the reply path's lookups (see `reply_cache.rs`). `None`: not
/// cached, or not answerable from the cache.
#[inline(always)]
pub fn cached_reply(
    ctx: &XdpContext,
    l3: &L3,
    l4: &L4,
    key: &lb_common::FlowKey,
    now: u64,
) -> Option<Verdict> {
    reply_cache::answer(ctx, l3, l4, key, now)
}

/// A packet not addressed to a VIP: if it is a reply from a NAT real,
/// rewrite it back to the VIP and route it to the client. `None`: not a NAT
/// reply, the host handles it as it came. In a BPF function of its own,
/// like [`request`]; ICMP errors from NAT reals in another one, called
/// after the first returned (frames add up only along a chain of calls).
#[inline(always)]
pub fn reply(ctx: &XdpContext, _l3: &L3) -> Option<Verdict> {
    let mut packed = reply_call(ctx.ctx);
    if packed == ICMP_FROM_NAT_REAL {
        packed = icmp_error::call(ctx.ctx);
    }
    verdict::decode_option(packed)
}

/// What the reply path made of a packet it took (`None`: not from a NAT
/// real, or no NAT flow of theirs).
enum Reply {
    Done(Verdict),
    /// Neither TCP nor UDP, from a NAT real: an ICMP error, maybe.
    OtherProtocol,
}

#[inline(never)]
fn reply_call(ctx: *mut xdp_md) -> u64 {
    match to_client(&XdpContext::new(ctx)) {
        Some(Reply::Done(verdict)) => verdict::encode_option(Some(verdict)),
        Some(Reply::OtherProtocol) => ICMP_FROM_NAT_REAL,
        None => verdict::encode_option(None),
    }
}

#[inline(always)]
fn to_client(ctx: &XdpContext) -> Option<Reply> {
    let scratch = scratch::get()?;
    let L3Verdict::Packet(l3) = parse::l3(ctx) else {
        return None;
    };
    let at = l3.layout();
    // One hash lookup keeps the cost for everything else (the host's own
    // traffic, routed traffic) at that.
    if !conntrack::is_nat_real(ctx, scratch, at) {
        return None;
    }
    // Whatever is needed from `l3` later is taken now: values kept across
    // the helper calls below would each take a stack slot.
    let expiring = l3.ttl <= 1;
    let may_fragment = route::may_fragment(&l3);
    route::prepare(ctx, &mut scratch.fib, &l3);
    let l4 = match parse::l4(ctx, &l3) {
        L4Verdict::Packet(l4) => l4,
        L4Verdict::OtherProtocol => return Some(Reply::OtherProtocol),
        // Fragments carry no ports past the first, and headers cut short or
        // hidden behind extension headers cannot be matched: the kernel
        // forwards them as they are, like any routed packet.
        _ => return None,
    };
    let entry = conntrack::reply_entry(ctx, scratch, at, &l4)?;
    if expiring {
        return Some(Reply::Done((
            xdp_action::XDP_PASS,
            GlobalCounter::PassTtlExceeded,
        )));
    }
    let flow = conntrack::track_reply(entry, at.protocol, l4.tcp_flags);
    // The client's address and port are in the key just looked up.
    let route = route::lookup(
        ctx,
        &mut scratch.fib,
        (&entry.vip, entry.vip_port_be),
        (&scratch.key.dst, scratch.key.dst_port),
    );
    let translated = translate_first(&route, may_fragment);
    if translated
        && rewrite::translate(ctx, at, End::Source, (&entry.vip, entry.vip_port_be)).is_none()
    {
        return Some(Reply::Done(UNTRANSLATABLE));
    }
    let verdict = deliver(ctx, &scratch.fib, route);
    // Out as the VIP's reply, by us or by the kernel: the real's and its
    // service's outgoing traffic (what the kernel is handed untranslated
    // goes back to the real, and drops go nowhere).
    if translated && verdict.0 != xdp_action::XDP_DROP {
        let bytes = (ctx.data_end() - ctx.data()) as u64;
        match flow {
            // The flow names the real's service: no need to read the real.
            Some(flow) => counters::count_out_of(entry.real_id, flow.service_id, bytes),
            None => counters::count_out(entry.real_id, bytes),
        }
    }
    // Sent on by the program itself: the next replies can be too.
    if verdict.1 == GlobalCounter::NatReplies
        && let Some(flow) = flow
    {
        reply_cache::remember(&scratch.key, entry, flow, &scratch.fib);
    }
    Some(Reply::Done(verdict))
}
