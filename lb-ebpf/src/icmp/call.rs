//! The bigger ICMP paths ("too big", the echo reply, the flow lookup of an
//! error, the NAT translation) run as BPF functions of their own
//! (BPF-to-BPF calls) rather than inlined into the balancer: inlined, the
//! values they keep alive across helper calls spill into the one stack
//! frame every path of the balancer shares, and it outgrows BPF's 512
//! bytes. As separate functions their frames exist only while they run.
//! (Measured with the NAT paths of the time: the balancer's frame 272
//! bytes, these 24 to 128.)
//!
//! A BPF function returns one 64-bit register, so verdicts travel packed:
//! the XDP action in the high half, the counter in the low half, and an
//! all-ones value for "none". (The NAT paths do the same, privately.)
//!
//! Pointer arguments travel as integers: LLVM rewrites a pointer argument
//! that the function only reads through into the values read (argument
//! promotion), and the verifier then finds packet pointers where it wants
//! the context ("arg#0 expects pointer to ctx"). Integers are left alone.

use aya_ebpf::{bindings::xdp_md, programs::XdpContext};
use lb_common::GlobalCounter;

use super::Verdict;

/// The context as a BPF function's argument.
#[inline(always)]
pub fn ctx_arg(ctx: &XdpContext) -> usize {
    ctx.ctx as usize
}

/// The context back from [`ctx_arg`].
#[inline(always)]
pub fn ctx_from(arg: usize) -> XdpContext {
    XdpContext::new(arg as *mut xdp_md)
}

const NONE: u64 = u64::MAX;

#[inline(always)]
pub fn encode((action, counter): Verdict) -> u64 {
    ((action as u64) << 32) | counter as u32 as u64
}

#[inline(always)]
pub fn decode(packed: u64) -> Verdict {
    // SAFETY: the low half only ever holds a `GlobalCounter` that `encode`
    // stored, and the enum is `repr(u32)`.
    let counter = unsafe { core::mem::transmute::<u32, GlobalCounter>(packed as u32) };
    ((packed >> 32) as u32, counter)
}

#[inline(always)]
pub fn encode_option(verdict: Option<Verdict>) -> u64 {
    verdict.map_or(NONE, encode)
}

#[inline(always)]
pub fn decode_option(packed: u64) -> Option<Verdict> {
    (packed != NONE).then(|| decode(packed))
}
