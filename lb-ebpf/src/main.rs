//! The XDP data plane.
//!
//! `lb_balancer` runs on every interface the daemon attaches it to:
//! parse -> is it for a service? -> which real (flow table, else the
//! service's scheduler) -> forward. Each step lives in its own module; this
//! file only wires them.
//!
//! The benchmark's programs are a separate object (`bin/lb-bench-xdp.rs`).
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
// Inline assembly on BPF (one atomic add: see `schedulers::count_connection`).
// The object is built with RUSTC_BOOTSTRAP=1 (see .cargo/config.toml).
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]
// On the host only the modules with pure logic (and the maps and parser
// types they name) are built, for their unit tests; what only the BPF
// programs call is unused there.
#![cfg_attr(not(target_arch = "bpf"), allow(dead_code))]

mod clock;
mod counters;
#[cfg(target_arch = "bpf")]
mod decap;
mod flood_guard;
mod flow_cache;
mod flow_state;
#[cfg(target_arch = "bpf")]
mod forward;
#[cfg(target_arch = "bpf")]
mod icmp;
mod maps;
mod parse;
mod persistence;
mod runtime;
mod schedulers;
#[cfg(target_arch = "bpf")]
mod scheduling;
mod wire;

#[cfg(target_arch = "bpf")]
mod program {
    use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
    use lb_common::{FlowKey, ForwardingMethod, GlobalCounter, Service, flow_hash::flow_hash};

    use crate::{
        clock,
        counters::{count, count_real, count_service},
        decap, flow_cache,
        flow_state::{self, Choice},
        forward::{dr, nat, tun},
        icmp, parse,
        parse::{L3, L3Verdict, L4, L4Verdict},
        scheduling,
    };

    #[xdp]
    pub fn lb_balancer(ctx: XdpContext) -> u32 {
        count(GlobalCounter::Received);
        let (action, counter) = balance(&ctx);
        count(counter);
        action
    }

    /// Passes every frame. See `lb_common::programs::PASS` for why it exists.
    #[xdp]
    pub fn lb_pass(_ctx: XdpContext) -> u32 {
        xdp_action::XDP_PASS
    }

    /// On the reals: strips tunnels addressed to this host.
    #[xdp]
    pub fn lb_decap(ctx: XdpContext) -> u32 {
        decap::decapsulate(&ctx)
    }

    /// Returns the XDP action and the one global counter that explains it.
    #[inline(always)]
    fn balance(ctx: &XdpContext) -> (u32, GlobalCounter) {
        let l3 = match parse::l3(ctx) {
            L3Verdict::Packet(l3) => l3,
            L3Verdict::NotIp => return (xdp_action::XDP_PASS, GlobalCounter::PassNotIp),
            L3Verdict::Truncated => return (xdp_action::XDP_PASS, GlobalCounter::PassTruncatedL3),
        };
        let l4 = parse::l4(ctx, &l3);
        // The common cases first: a packet of a flow this CPU has cached
        // needs no hash lookup at all, and TCP or UDP for a service's own
        // port is found with one lookup, not two (is it a VIP? which
        // service?). Everything else takes the careful path below.
        if let L4Verdict::Packet(l4) = &l4 {
            let now = clock::now_ns();
            let key = flow_state::flow_key(&l3, l4);
            if let Some(choice) = flow_cache::find(&key, l4, now) {
                count(GlobalCounter::FlowHit);
                return forward(ctx, &l3, &choice);
            }
            if let Some(verdict) = nat::cached_reply(ctx, &l3, l4, &key, now) {
                return verdict;
            }
            if let Some(service) = scheduling::find_exact_service(&l3, l4) {
                return balance_service(ctx, &l3, l4, &service, key, now);
            }
        }
        if !scheduling::is_vip(&l3) {
            return nat::reply(ctx, &l3)
                .unwrap_or((xdp_action::XDP_PASS, GlobalCounter::PassNotVip));
        }
        // Only a VIP's packets are dropped for what the parser found.
        let l4 = match l4 {
            L4Verdict::Packet(l4) => l4,
            L4Verdict::Fragment => return (xdp_action::XDP_DROP, GlobalCounter::DropFragment),
            L4Verdict::ExtensionHeader => {
                return (xdp_action::XDP_DROP, GlobalCounter::DropIpv6ExtensionHeader);
            }
            L4Verdict::OtherProtocol => {
                return icmp::to_vip(ctx, &l3)
                    .unwrap_or((xdp_action::XDP_PASS, GlobalCounter::PassOtherProtocol));
            }
            L4Verdict::Truncated => return (xdp_action::XDP_DROP, GlobalCounter::DropTruncatedL4),
        };
        // The exact port missed above: only the VIP's every-port service
        // is left.
        let Some(service) = scheduling::find_every_port_service(&l3) else {
            return (xdp_action::XDP_PASS, GlobalCounter::PassNoService);
        };
        let key = flow_state::flow_key(&l3, &l4);
        balance_service(ctx, &l3, &l4, &service, key, clock::now_ns())
    }

    /// Schedules and forwards a packet of `service`.
    #[inline(always)]
    fn balance_service(
        ctx: &XdpContext,
        l3: &L3,
        l4: &L4,
        service: &Service,
        key: FlowKey,
        now: u64,
    ) -> (u32, GlobalCounter) {
        match scheduling::choose_real(l3, l4, service, key, now) {
            Ok(choice) => forward(ctx, l3, &choice),
            Err(reason) => {
                count_ipv4_options(l3);
                count_service(service.id, frame_len(ctx), false, true);
                (xdp_action::XDP_DROP, reason)
            }
        }
    }

    #[inline(always)]
    fn frame_len(ctx: &XdpContext) -> u64 {
        (ctx.data_end() - ctx.data()) as u64
    }

    #[inline(always)]
    fn count_ipv4_options(l3: &L3) {
        if l3.has_ipv4_options {
            count(GlobalCounter::Ipv4Options);
        }
    }

    /// Forwards a packet to the real `choice` names, counting it for the
    /// real and its service.
    #[inline(always)]
    fn forward(ctx: &XdpContext, l3: &L3, choice: &Choice) -> (u32, GlobalCounter) {
        count_ipv4_options(l3);
        let frame_len = frame_len(ctx);
        count_service(choice.service_id, frame_len, choice.new_connection, false);
        let forwarded = match ForwardingMethod::from_u8(choice.real.forwarding) {
            Some(ForwardingMethod::Tunnel) => {
                tun::tunnel(ctx, l3, choice.real, flow_hash(&choice.key))
            }
            Some(ForwardingMethod::Masquerade) => nat::request(ctx, l3, choice, choice.real),
            _ => dr::direct_routing(ctx, choice.real)
                .map(|action| (action, GlobalCounter::Forwarded)),
        };
        match forwarded {
            Ok((action, counter)) => {
                count_real(choice.real_id, frame_len, choice.new_connection, false);
                (action, counter)
            }
            Err(reason) => {
                count_real(choice.real_id, frame_len, false, true);
                (xdp_action::XDP_DROP, reason)
            }
        }
    }
}

#[cfg(not(target_arch = "bpf"))]
pub use runtime::main;
