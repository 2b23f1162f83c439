//! The programs `lb-bench` measures the balancer with, in an object of
//! their own: the daemon's object (`lb`, from `main.rs`) carries none of
//! them. `lb-bench` loads a private copy of this one beside the balancer;
//! `lb_replay` tail-calls into the balancer across the two objects.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod programs {
    use aya_ebpf::{
        bindings::xdp_action,
        macros::{map, xdp},
        maps::{Array, ProgramArray},
        programs::XdpContext,
    };
    use lb_common::{BenchFrame, proto};

    use crate::frame::header;
    use network_types::eth::{EthHdr, EtherType};

    /// The frame [`lb_replay`] restores before each run.
    #[map]
    static LB_BENCH_FRAME: Array<BenchFrame> = Array::with_max_entries(1, 0);

    /// Slot 0: the program [`lb_replay`] hands the restored frame to.
    #[map]
    static LB_BENCH_NEXT: ProgramArray = ProgramArray::with_max_entries(1, 0);

    /// Writes `LB_BENCH_FRAME` over the frame, then tail-calls the program in
    /// `LB_BENCH_NEXT`. BPF_PROG_RUN's live-frames mode recycles its pages
    /// without restoring their contents, so a program that rewrites packets
    /// (NAT) would otherwise see its own output again; this puts the original
    /// request back every time, for the price of one small copy.
    #[xdp]
    pub fn lb_replay(ctx: XdpContext) -> u32 {
        let (Some(template), Some(frame)) = (LB_BENCH_FRAME.get(0), header::<BenchFrame>(&ctx, 0))
        else {
            return xdp_action::XDP_ABORTED;
        };
        // SAFETY: bounds checked by `header`; the template is a map value.
        unsafe { *frame = *template };
        // SAFETY: a tail call with our own context; on failure we fall through.
        unsafe { LB_BENCH_NEXT.tail_call(&ctx, 0) };
        xdp_action::XDP_ABORTED
    }

    /// Swaps the Ethernet addresses and sends the frame back where it came
    /// from: what every XDP forwarder does at least, so the floor the
    /// balancer's per-packet cost is compared with.
    #[xdp]
    pub fn lb_reflect(ctx: XdpContext) -> u32 {
        let Some(eth) = header::<EthHdr>(&ctx, 0) else {
            return xdp_action::XDP_DROP;
        };
        // SAFETY: bounds checked by `header`.
        unsafe {
            let destination = (*eth).dst_addr;
            (*eth).dst_addr = (*eth).src_addr;
            (*eth).src_addr = destination;
        }
        xdp_action::XDP_TX
    }

    /// Next header of the IPv6 fixed header, and the ICMPv6 type after it.
    const IPV6_NEXT_HEADER: usize = EthHdr::LEN + 6;
    const ICMPV6_TYPE: usize = EthHdr::LEN + 40;
    /// Router solicitation .. redirect: the neighbour discovery messages.
    const NEIGHBOUR_DISCOVERY: core::ops::RangeInclusive<u8> = 133..=137;

    /// Stands in for the reals: drops the frames the balancer sends them (veth
    /// counts what its XDP program saw, and dropping costs the least) but lets
    /// ARP and neighbour discovery through, so the host still answers for the
    /// reals' addresses and the daemon resolves their MACs as in production.
    #[xdp]
    pub fn lb_sink(ctx: XdpContext) -> u32 {
        let Some(eth) = header::<EthHdr>(&ctx, 0) else {
            return xdp_action::XDP_DROP;
        };
        // SAFETY: bounds checked by `header`.
        let ether_type = unsafe { (*eth).ether_type };
        if ether_type == EtherType::Arp as u16 {
            return xdp_action::XDP_PASS;
        }
        if ether_type == EtherType::Ipv6 as u16 && is_neighbour_discovery(&ctx) {
            return xdp_action::XDP_PASS;
        }
        xdp_action::XDP_DROP
    }

    #[inline(always)]
    fn is_neighbour_discovery(ctx: &XdpContext) -> bool {
        let (Some(next_header), Some(icmp_type)) = (
            header::<u8>(ctx, IPV6_NEXT_HEADER),
            header::<u8>(ctx, ICMPV6_TYPE),
        ) else {
            return false;
        };
        // SAFETY: bounds checked by `header`.
        unsafe { *next_header == proto::ICMPV6 && NEIGHBOUR_DISCOVERY.contains(&*icmp_type) }
    }
}

// The data plane's one bounds check, shared rather than written again; the
// balancer's other frame helpers are unused here.
#[cfg(target_arch = "bpf")]
#[path = "../wire/frame.rs"]
#[allow(dead_code)]
mod frame;
#[path = "../runtime.rs"]
mod runtime;
#[cfg(not(target_arch = "bpf"))]
pub use runtime::main;
