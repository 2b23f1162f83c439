//! The NAT paths run as BPF functions of their own (BPF-to-BPF calls)
//! rather than inlined into the balancer: inlined, the registers they keep
//! alive across helper calls spill into the one stack frame every other
//! path shares, and the balancer outgrew BPF's 512 bytes (by about 200).
//! As separate functions their frames count only while they run: the
//! verifier checks the balancer's frame plus the largest NAT frame (at the
//! time of writing 272 + 184, the ICMP error path; requests and replies
//! take 88) against 512. Hence also the scratch map, and the header layout
//! handed over in one register (the reply path parses again) rather than
//! the balancer's `l3` and `l4`.
//!
//! A BPF function returns a single 64-bit register, so verdicts travel
//! packed: the XDP action in the high half, the counter in the low half,
//! and flag values for "error", "none" and "an ICMP packet from a NAT
//! real" (which the reply path hands on to `icmp_error`).

use lb_common::GlobalCounter;

use super::Verdict;

/// Set on an `Err(counter)`.
const ERROR: u64 = 1 << 63;
/// `None`.
const NONE: u64 = u64::MAX;
/// Neither TCP nor UDP, from a NAT real.
pub const ICMP_FROM_NAT_REAL: u64 = u64::MAX - 1;

#[inline(always)]
fn encode((action, counter): Verdict) -> u64 {
    ((action as u64) << 32) | counter as u32 as u64
}

#[inline(always)]
fn counter(packed: u64) -> GlobalCounter {
    // SAFETY: the low half only ever holds a `GlobalCounter` that `encode`
    // or `encode_result` stored, and the enum is `repr(u32)`.
    unsafe { core::mem::transmute::<u32, GlobalCounter>(packed as u32) }
}

#[inline(always)]
pub fn encode_result(result: Result<Verdict, GlobalCounter>) -> u64 {
    match result {
        Ok(verdict) => encode(verdict),
        Err(counter) => ERROR | counter as u32 as u64,
    }
}

#[inline(always)]
pub fn decode_result(packed: u64) -> Result<Verdict, GlobalCounter> {
    if packed & ERROR != 0 {
        return Err(counter(packed));
    }
    Ok(((packed >> 32) as u32, counter(packed)))
}

#[inline(always)]
pub fn encode_option(verdict: Option<Verdict>) -> u64 {
    verdict.map_or(NONE, encode)
}

#[inline(always)]
pub fn decode_option(packed: u64) -> Option<Verdict> {
    (packed != NONE).then(|| ((packed >> 32) as u32, counter(packed)))
}
