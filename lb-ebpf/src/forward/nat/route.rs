//! Routing replies to clients with the kernel's FIB (`bpf_fib_lookup`).
//!
//! Requests use the next hop the daemon resolved for each real; replies
//! cannot: they go to whatever address the client has, and the daemon
//! cannot resolve every client in advance. The kernel's routing and
//! neighbour tables already know the way (the balancer is the reals'
//! gateway, so it routes for them anyway), and the helper reads them
//! without leaving XDP.

pub use aya_ebpf::bindings::bpf_fib_lookup as FibParams;
use aya_ebpf::{
    bindings::{BPF_FIB_LKUP_RET_FRAG_NEEDED, BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS},
    helpers::bpf_fib_lookup,
    programs::XdpContext,
};
use lb_common::{Addr, Family, GlobalCounter};

use crate::parse::L3;

/// Address families as the helper wants them (`AF_INET`, `AF_INET6`).
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// A reply too big for the egress link, handed to the kernel (which
/// fragments it or answers the real with "fragmentation needed" / "packet
/// too big").
pub const PASS_TOO_BIG: GlobalCounter = GlobalCounter::PassReplyTooBig;

pub enum Route {
    /// Route and neighbour known: send it ourselves, with the egress
    /// interface and MACs the lookup left in its parameters.
    Resolved,
    /// Route known, neighbour not resolved (or stale): the kernel resolves
    /// it while forwarding.
    Unresolved,
    /// Larger than the egress MTU.
    TooBig,
    /// No route, a blackhole / unreachable / prohibit route, a local
    /// destination, or forwarding disabled on the ingress interface.
    Unroutable,
}

/// Fills in what the lookup takes from the packet as it came: family,
/// protocol, length, DSCP and the ingress interface (so policy routing and
/// the ingress namespace's tables apply). `fib` is memory the helper can
/// write (scratch, not stack: see `scratch.rs`). Done as soon as the parse
/// is over, so none of it has to be kept until [`lookup`].
#[inline(always)]
pub fn prepare(ctx: &XdpContext, fib: &mut FibParams, l3: &L3) {
    fib.family = match l3.family {
        Family::V4 => AF_INET,
        Family::V6 => AF_INET6,
    };
    fib.l4_protocol = l3.protocol;
    // Host byte order; the whole IP packet, compared with the egress MTU.
    fib.__bindgen_anon_1.tot_len = l3.ip_len;
    fib.ifindex = ctx.ingress_ifindex() as u32;
    match l3.family {
        Family::V4 => {
            fib.__bindgen_anon_2.flowinfo = 0;
            fib.__bindgen_anon_2.tos = l3.tos;
        }
        // Flow info in network order: the traffic class, for routing rules
        // on DSCP (the flow label plays no part in routing).
        Family::V6 => fib.__bindgen_anon_2.flowinfo = ((l3.tos as u32) << 20).to_be(),
    }
    fib.__bindgen_anon_5.tbid = 0;
}

/// Looks up the way for the packet as it will leave: from `src` to `dst`
/// (address and port, network byte order). On [`Route::Resolved`], `fib`
/// holds the egress ifindex and both MACs.
#[inline(always)]
pub fn lookup(
    ctx: &XdpContext,
    fib: &mut FibParams,
    (src, src_port): (&Addr, u16),
    (dst, dst_port): (&Addr, u16),
) -> Route {
    fib.sport = src_port;
    fib.dport = dst_port;
    // IPv4 addresses are the first word of both the union and `Addr`,
    // whose other words are zero: one store fits both families.
    fib.__bindgen_anon_3.ipv6_src = src.words;
    fib.__bindgen_anon_4.ipv6_dst = dst.words;
    // SAFETY: `fib` is valid, writable memory of the size passed.
    let rc = unsafe {
        bpf_fib_lookup(
            ctx.ctx as *mut _,
            fib,
            core::mem::size_of::<FibParams>() as i32,
            0,
        )
    };
    // Negative errors (bad arguments) read as huge and land in the last arm.
    match rc as u32 {
        BPF_FIB_LKUP_RET_SUCCESS => Route::Resolved,
        BPF_FIB_LKUP_RET_NO_NEIGH => Route::Unresolved,
        BPF_FIB_LKUP_RET_FRAG_NEEDED => Route::TooBig,
        _ => Route::Unroutable,
    }
}

/// Whether the kernel may fragment the packet on the way (IPv4 without DF;
/// IPv6 routers never fragment).
#[inline(always)]
pub fn may_fragment(l3: &L3) -> bool {
    matches!(l3.family, Family::V4) && !l3.dont_fragment
}
