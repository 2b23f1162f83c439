//! The NAT side of the connection table: the reverse entries replies are
//! matched against (`LB_NAT_REPLIES`), and the forward flow's state, which
//! replies advance too, so a connection lives as long as either direction
//! is active and closes when either side sends FIN or RST.

// Keys go to the map helpers by reference on purpose: they sit in scratch
// or map memory, and by value they would be copied to the stack first.
#![allow(clippy::needless_borrows_for_generic_args)]

use aya_ebpf::programs::XdpContext;
use lb_common::{FlowState, NatReply, Real, proto};

use super::{
    headers,
    scratch::{self, Scratch},
};
use crate::{
    clock,
    flow_state::{Choice, next_state, writes_flow_entry},
    maps::{LB_FLOWS, LB_NAT_REALS, LB_NAT_REPLIES},
    parse::L4,
    wire::{
        l4::{TCP_FIN, TCP_RST, TCP_SYN},
        layout::{End, Layout},
    },
};

/// Is the packet's source the address of a real behind a NAT service?
#[inline(always)]
pub fn is_nat_real(ctx: &XdpContext, scratch: &mut Scratch, at: Layout) -> bool {
    let key = &mut scratch.real;
    // The padding is left alone: it is zero from the map's creation (see
    // `scratch.rs`), and writing three zero bytes costs a call to memset.
    key.family = at.family as u8;
    headers::address(ctx, at, End::Source, &mut key.addr).is_some()
        && LB_NAT_REALS.get_ptr(&*key).is_some()
}

/// What a request does to its flow's reverse entry.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ReverseEntry {
    /// A new connection: the real or the VIP may differ from a previous
    /// connection's with the same client port.
    Write,
    /// The flow just refreshed its own entry: the LRU may have evicted the
    /// reverse one while the flow survived (a flow whose replies stopped).
    WriteIfMissing,
    /// Any other packet of the flow: the lookup that would check is a third
    /// of a flow-table hit's cost, and a missing entry waits for the next
    /// refresh (a second at most).
    Keep,
}

impl ReverseEntry {
    #[inline(always)]
    pub fn for_choice(choice: &Choice) -> Self {
        if choice.new_connection {
            Self::Write
        } else if choice.refreshed {
            Self::WriteIfMissing
        } else {
            Self::Keep
        }
    }

    #[inline(always)]
    pub fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Write,
            1 => Self::WriteIfMissing,
            _ => Self::Keep,
        }
    }
}

/// Records how replies to this request will arrive (real:port -> client:
/// port) and what they must be turned back into, as `reverse` says. Called
/// before the rewrite: the addresses are read from the frame as the client
/// sent it.
#[inline(always)]
pub fn remember_reply(
    ctx: &XdpContext,
    at: Layout,
    (src_port, dst_port): (u16, u16),
    real: &Real,
    real_port: u16,
    (real_id, reverse): (u32, ReverseEntry),
) -> Option<()> {
    if reverse == ReverseEntry::Keep {
        return Some(());
    }
    // Scratch only now: most requests keep their entry, and need none.
    let scratch = scratch::get()?;
    // `forward` is the flow table's key for the request, as
    // `scheduling::choose_real` builds it.
    let value = &mut scratch.reply;
    let forward = &mut value.forward;
    headers::addresses(ctx, at, &mut forward.src, &mut forward.dst)?;
    forward.src_port = src_port;
    forward.dst_port = dst_port;
    forward.protocol = at.protocol;
    forward.family = at.family as u8;
    forward._pad = [0; 2];
    value.vip = forward.dst;
    value.vip_port_be = dst_port;
    value._pad = [0; 2];
    value.real_id = real_id;
    let key = &mut scratch.key;
    key.src = real.addr;
    key.dst = forward.src;
    key.src_port = real_port;
    key.dst_port = src_port;
    key.protocol = at.protocol;
    key.family = at.family as u8;
    key._pad = [0; 2];
    if reverse == ReverseEntry::WriteIfMissing && LB_NAT_REPLIES.get_ptr(&*key).is_some() {
        return Some(());
    }
    // An LRU insert only fails if the kernel cannot allocate; the request
    // still goes out, and the next packet of the flow tries again.
    let _ = LB_NAT_REPLIES.insert(key, value, 0);
    Some(())
}

/// The entry for a packet from a NAT real, keyed by its 5-tuple as it
/// came. The key stays in `scratch.key` (the route lookup reads the
/// client's address from there).
#[inline(always)]
pub fn reply_entry(
    ctx: &XdpContext,
    scratch: &mut Scratch,
    at: Layout,
    l4: &L4,
) -> Option<&'static NatReply> {
    let key = &mut scratch.key;
    headers::addresses(ctx, at, &mut key.src, &mut key.dst)?;
    key.src_port = l4.src_port;
    key.dst_port = l4.dst_port;
    key.protocol = at.protocol;
    key.family = at.family as u8;
    key._pad = [0; 2];
    // SAFETY: LRU values stay valid (RCU) while the program runs, even if
    // another CPU evicts the entry meanwhile.
    LB_NAT_REPLIES
        .get_ptr(&*key)
        .map(|entry| unsafe { &*entry })
}

/// Advances the forward flow on a reply and counts it as activity, with the
/// same write economy as the request path: the timestamp at most once a
/// second, at once when the state changes. A reply also revives a flow
/// past its idle timeout: the real still has the connection, so the
/// client's next packet had better keep going there. Returns the flow when
/// it is the reply's (for the reply cache).
#[inline(always)]
pub fn track_reply(entry: &NatReply, protocol: u8, tcp_flags: u8) -> Option<&'static FlowState> {
    // SAFETY: LRU values stay valid while the program runs.
    let flow = unsafe { &mut *LB_FLOWS.get_ptr_mut(&entry.forward)? };
    // The client's flow was scheduled afresh elsewhere (it expired, or its
    // real went away): this real's late replies must not keep it alive.
    if flow.real_id != entry.real_id {
        return None;
    }
    let now = clock::now_ns();
    let state = reply_state(flow.state, protocol, tcp_flags);
    if writes_flow_entry(flow.state, state, clock::elapsed_ns(now, flow.last_seen_ns)) {
        flow.state = state;
        flow.last_seen_ns = now;
    }
    Some(flow)
}

/// The state a reply moves the connection to. As on the request path, FIN
/// or RST closes; but the real's SYN-ACK does not establish: the client's
/// ACK does (IPVS stays in SYN_RECV too), so a SYN flood the reals answer
/// keeps its short timeout.
#[inline(always)]
pub fn reply_state(current: u8, protocol: u8, tcp_flags: u8) -> u8 {
    if protocol == proto::TCP && tcp_flags & (TCP_SYN | TCP_FIN | TCP_RST) == TCP_SYN {
        return current;
    }
    next_state(current, protocol, tcp_flags, false)
}
