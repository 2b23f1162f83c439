//! The programs `cargo xtask bench` measures the balancer with.

use aya_ebpf::{
    bindings::xdp_action,
    macros::map,
    maps::{Array, ProgramArray},
    programs::XdpContext,
};
use lb_common::BenchFrame;
use network_types::eth::{EthHdr, EtherType};

use crate::parse::header;

/// The frame [`replay`] restores before each run.
#[map]
static LB_BENCH_FRAME: Array<BenchFrame> = Array::with_max_entries(1, 0);

/// Slot 0: the program [`replay`] hands the restored frame to.
#[map]
static LB_BENCH_NEXT: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// Writes `LB_BENCH_FRAME` over the frame, then tail-calls the program in
/// `LB_BENCH_NEXT`. BPF_PROG_RUN's live-frames mode recycles its pages
/// without restoring their contents, so a program that rewrites packets
/// (NAT) would otherwise see its own output again; this puts the original
/// request back every time, for the price of one small copy.
#[inline(always)]
pub fn replay(ctx: &XdpContext) -> u32 {
    let (Some(template), Some(frame)) = (LB_BENCH_FRAME.get(0), header::<BenchFrame>(ctx, 0))
    else {
        return xdp_action::XDP_ABORTED;
    };
    // SAFETY: bounds checked by `header`; the template is a map value.
    unsafe { *frame = *template };
    // SAFETY: a tail call with our own context; on failure we fall through.
    unsafe { LB_BENCH_NEXT.tail_call(ctx, 0) };
    xdp_action::XDP_ABORTED
}

/// Swaps the Ethernet addresses and sends the frame back where it came
/// from: what every XDP forwarder does at least, so the floor the
/// balancer's per-packet cost is compared with.
#[inline(always)]
pub fn reflect(ctx: &XdpContext) -> u32 {
    let Some(eth) = header::<EthHdr>(ctx, 0) else {
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

const ETHERNET_LEN: usize = 14;
/// Next header of the IPv6 fixed header, and the ICMPv6 type after it.
const IPV6_NEXT_HEADER: usize = ETHERNET_LEN + 6;
const ICMPV6_TYPE: usize = ETHERNET_LEN + 40;
const ICMPV6: u8 = 58;
/// Router solicitation .. redirect: the neighbour discovery messages.
const NEIGHBOUR_DISCOVERY: core::ops::RangeInclusive<u8> = 133..=137;

/// Stands in for the reals: drops the frames the balancer sends them (veth
/// counts what its XDP program saw, and dropping costs the least) but lets
/// ARP and neighbour discovery through, so the host still answers for the
/// reals' addresses and the daemon resolves their MACs as in production.
#[inline(always)]
pub fn sink(ctx: &XdpContext) -> u32 {
    let Some(eth) = header::<EthHdr>(ctx, 0) else {
        return xdp_action::XDP_DROP;
    };
    // SAFETY: bounds checked by `header`.
    let ether_type = unsafe { (*eth).ether_type };
    if ether_type == EtherType::Arp as u16 {
        return xdp_action::XDP_PASS;
    }
    if ether_type == EtherType::Ipv6 as u16 && is_neighbour_discovery(ctx) {
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
    unsafe { *next_header == ICMPV6 && NEIGHBOUR_DISCOVERY.contains(&*icmp_type) }
}
