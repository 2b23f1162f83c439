//! Each CPU's cache of NAT replies, in front of the reply path.
//!
//! A reply that misses the flow cache costs the balancer two lookups that
//! fail (a service, a VIP) before the reply path even starts, then three
//! that hit (the NAT real, the reverse entry, the forward flow) and a FIB
//! and neighbour lookup: several times a request's cost. A slot answers
//! the next replies of the same flow with one array read, on the terms
//! `lb_common::NatReplyCacheEntry` sets out: only while the reply path
//! would write nothing, for frames within the route's MTU, and never for
//! one whose TTL runs out here.

use aya_ebpf::{
    bindings::{xdp_action, xdp_md},
    programs::XdpContext,
};
use lb_common::{FlowKey, FlowState, NatReply, NatReplyCacheEntry, flow_hash::flow_cache_slot};

use super::{
    conntrack::reply_state,
    deliver::{UNTRANSLATABLE, send_to_client},
    route::FibParams,
};
use crate::{
    clock, counters,
    flow_cache::{generation, same_flow},
    flow_state::writes_flow_entry,
    maps::LB_NAT_REPLY_CACHE,
    parse::{L3, L4},
    wire::{
        layout::{End, Layout},
        rewrite,
        verdict::{self, Verdict},
    },
};

/// Sends the packet on as its flow's slot says, if the slot may answer.
/// `key` is the packet's 5-tuple as it came (for a reply: real -> client).
#[inline(always)]
pub fn answer(ctx: &XdpContext, l3: &L3, l4: &L4, key: &FlowKey, now: u64) -> Option<Verdict> {
    let slot = LB_NAT_REPLY_CACHE.get_ptr(flow_cache_slot(key))?;
    // SAFETY: this CPU's slot; nothing else writes it while we run.
    let slot = unsafe { &*slot };
    if !same_flow(&slot.key, key) || slot.generation != generation() {
        return None;
    }
    // The reply path passes expiring packets to the kernel untouched.
    if l3.ttl <= 1 || l3.ip_len > slot.route_mtu {
        return None;
    }
    let state = reply_state(slot.state, key.protocol, l4.tcp_flags);
    if writes_flow_entry(slot.state, state, clock::elapsed_ns(now, slot.last_seen_ns)) {
        return None;
    }
    verdict::decode_option(send_call(ctx.ctx, slot, l3.layout().packed()))
}

/// In a BPF function of its own, like the reply path (see `wire::verdict`),
/// told where the headers are rather than parsing them again.
#[inline(never)]
fn send_call(ctx: *mut xdp_md, slot: &NatReplyCacheEntry, at: u32) -> u64 {
    verdict::encode_option(Some(send(
        &XdpContext::new(ctx),
        slot,
        Layout::unpacked(at),
    )))
}

#[inline(always)]
fn send(ctx: &XdpContext, slot: &NatReplyCacheEntry, at: Layout) -> Verdict {
    if rewrite::translate(ctx, at, End::Source, (&slot.vip, slot.vip_port_be)).is_none() {
        return UNTRANSLATABLE;
    }
    let verdict = send_to_client(ctx, &slot.dst_mac, &slot.src_mac, slot.ifindex);
    // Counted as the reply path counts what it sends on.
    if verdict.0 != xdp_action::XDP_DROP {
        counters::count_out_of(
            slot.real_id,
            slot.service_id,
            (ctx.data_end() - ctx.data()) as u64,
        );
    }
    verdict
}

/// Caches what the reply path just did with the reply whose 5-tuple is
/// `key`: translated as `entry` says, sent where `fib` leads, the forward
/// flow being `flow`. Only for a reply the program sent on itself.
#[inline(always)]
pub fn remember(key: &FlowKey, entry: &NatReply, flow: &FlowState, fib: &FibParams) {
    let Some(slot) = LB_NAT_REPLY_CACHE.get_ptr_mut(flow_cache_slot(key)) else {
        return;
    };
    // SAFETY: as in `answer`.
    let slot = unsafe { &mut *slot };
    *slot = NatReplyCacheEntry {
        key: *key,
        vip: entry.vip,
        vip_port_be: entry.vip_port_be,
        state: flow.state,
        _pad: 0,
        real_id: entry.real_id,
        service_id: flow.service_id,
        ifindex: fib.ifindex,
        dst_mac: fib.dmac,
        src_mac: fib.smac,
        // SAFETY: a union of two u16. On success the helper leaves the
        // egress MTU there, which the packet's length was checked against.
        route_mtu: unsafe { fib.__bindgen_anon_1.mtu_result },
        _pad2: [0; 2],
        last_seen_ns: flow.last_seen_ns,
        generation: generation(),
        _pad3: [0; 4],
    };
}
