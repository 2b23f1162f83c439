//! ICMP errors about a VIP flow, sent on to the real that serves it.
//!
//! Routers between a real and its clients send their errors to the VIP
//! (the source of the real's replies): "fragmentation needed" / "packet
//! too big", "time exceeded", and clients send "port unreachable". Only the
//! real can act on them (lower its path MTU, give up on the connection),
//! so each goes where the flow goes: DR and TUN deliver it as it is (the
//! real holds the VIP), NAT translates it into what the real knows.
//!
//! An error about a flow the table does not know, or a flow whose real is
//! gone, is left to the host: there is no one else to tell.
//!
//! Finding the flow's real runs as a BPF function of its own (see
//! `wire::verdict`),
//! and so does the NAT translation; DR and TUN run in the balancer's frame,
//! where they share the stack slots of the balancer's own DR and TUN paths
//! (measured: as functions of their own they would only add depth). Values
//! held across map lookups spill into the stack, so each step reads the
//! headers it needs from the frame again (a few instructions; the frame
//! has not changed in between).

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use lb_common::{
    Family, FlowKey, ForwardingMethod, GlobalCounter, Real, Service, ServiceKey,
    flow_hash::flow_hash,
};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

use super::{quote, translate};
use crate::{
    flow_state,
    forward::{dr, tun},
    maps::{LB_FLOWS, LB_REALS, LB_SERVICES},
    parse::{self, L3, L3Verdict},
    wire::{
        frame::{ctx_arg, ctx_from},
        verdict::Verdict,
    },
};

/// The error to a VIP in the frame, sent towards the quoted flow's real;
/// `None` when it quotes no flow the balancer knows.
#[inline(always)]
pub fn to_real(ctx: &XdpContext, l3: &L3) -> Option<Verdict> {
    let found = Found::unpack(find_call(ctx_arg(ctx)))?;
    // Read again here, not in the functions below: what they parse first
    // would otherwise be held (and spilled) across the lookup. It was there
    // a moment ago; if the daemon removed it since, the error is dropped
    // like a packet to a service without reals.
    let Some(real) = LB_REALS.get(found.real_id) else {
        return Some((xdp_action::XDP_DROP, GlobalCounter::DropNoReal));
    };
    let verdict = match ForwardingMethod::from_u8(found.forwarding) {
        Some(ForwardingMethod::Tunnel) => tunnel(ctx, l3, real, found.flow_hash),
        Some(ForwardingMethod::Masquerade) => translate::to_real(ctx, real),
        _ => direct_routing(ctx, real),
    };
    Some(verdict)
}

/// What [`find_call`] found: the real serving the quoted flow, its
/// service's forwarding method, and the flow's hash (TUN's IPv6 flow
/// label). Packed into the one register a BPF function returns.
struct Found {
    real_id: u32,
    forwarding: u8,
    flow_hash: u32,
}

/// Real ids are below `capacity::MAX_REALS`; 24 bits leave room to spare.
const REAL_ID_BITS: u32 = 24;
const NOT_FOUND: u64 = u64::MAX;

impl Found {
    #[inline(always)]
    fn pack(&self) -> u64 {
        if self.real_id >> REAL_ID_BITS != 0 {
            return NOT_FOUND;
        }
        ((self.flow_hash as u64) << 32)
            | ((self.forwarding as u64) << REAL_ID_BITS)
            | self.real_id as u64
    }

    #[inline(always)]
    fn unpack(packed: u64) -> Option<Self> {
        (packed != NOT_FOUND).then_some(Self {
            real_id: packed as u32 & ((1 << REAL_ID_BITS) - 1),
            forwarding: (packed >> REAL_ID_BITS) as u8,
            flow_hash: (packed >> 32) as u32,
        })
    }
}

#[inline(never)]
fn find_call(ctx: usize) -> u64 {
    let ctx = ctx_from(ctx);
    let L3Verdict::Packet(l3) = parse::l3(&ctx) else {
        return NOT_FOUND;
    };
    // The key lives in this frame: the map lookups need it in memory.
    let mut key = FlowKey::default();
    if quote::parse(&ctx, &l3, &mut key).is_none() {
        return NOT_FOUND;
    }
    match destination(&key) {
        Some((real_id, forwarding)) => Found {
            real_id,
            forwarding,
            flow_hash: flow_hash(&key),
        }
        .pack(),
        None => NOT_FOUND,
    }
}

/// The id of the real serving the flow and its service's forwarding
/// method, if the flow is known and its real still serves it.
#[inline(always)]
fn destination(key: &FlowKey) -> Option<(u32, u8)> {
    let (real_id, service_id) = flow(key)?;
    let real = flow_state::live_real(real_id, service_id)?;
    let service = service(key)?;
    // The flow was scheduled by another service than the one now at that
    // address and port (a configuration change): its method may differ.
    if service.id != service_id {
        return None;
    }
    Some((real_id, real.forwarding))
}

/// The flow's real and service ids. Read only: an error says nothing about
/// whether the connection is alive, so it neither refreshes nor advances
/// the entry.
#[inline(always)]
fn flow(key: &FlowKey) -> Option<(u32, u32)> {
    // SAFETY: LRU values stay valid for the duration of the program.
    LB_FLOWS
        .get_ptr(key)
        .map(|flow| unsafe { ((*flow).real_id, (*flow).service_id) })
}

/// The service the flow's VIP, port and protocol belong to, falling back to
/// the VIP's port-0 service (as scheduling does).
#[inline(always)]
fn service(key: &FlowKey) -> Option<Service> {
    let mut service_key = ServiceKey {
        addr: key.dst,
        port_be: key.dst_port,
        protocol: key.protocol,
        family: key.family,
    };
    if let Some(service) = LB_SERVICES.get_ptr(service_key) {
        // SAFETY: hash map values are valid while this program runs.
        return Some(unsafe { *service });
    }
    service_key.port_be = 0;
    // SAFETY: as above.
    LB_SERVICES
        .get_ptr(service_key)
        .map(|service| unsafe { *service })
}

/// DR: the error goes to the real's MAC as it is; the real holds the VIP.
#[inline(always)]
fn direct_routing(ctx: &XdpContext, real: &Real) -> Verdict {
    match dr::direct_routing(ctx, real) {
        Ok(action) => (action, GlobalCounter::IcmpErrorForwarded),
        Err(reason) => (xdp_action::XDP_DROP, reason),
    }
}

/// TUN: the error is encapsulated to the real like the flow's packets (same
/// flow label on IPv6). One that would not fit the tunnel is dropped here:
/// `tun::tunnel` would answer it with "too big", and an ICMP error must
/// never be answered with another (RFC 1122 3.2.2, RFC 4443 2.4(e)).
#[inline(always)]
fn tunnel(ctx: &XdpContext, l3: &L3, real: &Real, flow_hash: u32) -> Verdict {
    let outer_len = if real.family == Family::V4 as u8 {
        Ipv4Hdr::LEN
    } else {
        Ipv6Hdr::LEN
    };
    if !tun::fits(l3.ip_len, real, outer_len) {
        return (xdp_action::XDP_DROP, GlobalCounter::DropEncapFailed);
    }
    match tun::tunnel(ctx, l3, real, flow_hash) {
        Ok((action, GlobalCounter::Forwarded)) => (action, GlobalCounter::IcmpErrorForwarded),
        // Anything else is a refusal (and `too_big` refuses ICMP anyway).
        Ok(verdict) => verdict,
        Err(reason) => (xdp_action::XDP_DROP, reason),
    }
}
