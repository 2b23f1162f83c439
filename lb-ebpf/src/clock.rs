//! The data plane's clock: CLOCK_MONOTONIC_COARSE.
//!
//! Flows, NAT entries and persistence templates only need to know when they
//! were last seen to within a fraction of their timeouts (seconds), so the
//! clock the tick leaves behind is enough. It is also far cheaper: reading
//! the precise clock (`bpf_ktime_get_ns`) costs ~35 ns a packet in a VM
//! (the TSC read), about a third of a flow-table hit; the coarse one ~5.
//!
//! The daemon reads the same clock (`dataplane::monotonic_now_ns`), so
//! timestamps compare across the two.

use aya_ebpf::helpers::bpf_ktime_get_coarse_ns;

#[inline(always)]
pub fn now_ns() -> u64 {
    // SAFETY: a helper without preconditions.
    unsafe { bpf_ktime_get_coarse_ns() }
}

/// Time from `then` to `now`, zero if `then` is later: a timestamp written
/// by the daemon or by another CPU can be ahead of this CPU's reading by up
/// to a tick, and must not read as an idle time of centuries.
#[inline(always)]
pub fn elapsed_ns(now: u64, then: u64) -> u64 {
    now.saturating_sub(then)
}
