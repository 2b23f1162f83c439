//! Per-CPU counters: no atomics needed, the daemon sums the CPUs.

use aya_ebpf::{macros::map, maps::PerCpuArray};
use lb_common::{GlobalCounter, TrafficCounters, capacity};

use crate::maps::LB_REALS;

/// Indexed by `GlobalCounter`.
#[map]
pub static LB_GLOBAL_STATS: PerCpuArray<u64> =
    PerCpuArray::with_max_entries(GlobalCounter::COUNT, 0);

/// Indexed by service id.
#[map]
pub static LB_SVC_STATS: PerCpuArray<TrafficCounters> =
    PerCpuArray::with_max_entries(capacity::MAX_SERVICES, 0);

/// Indexed by real id.
#[map]
pub static LB_REAL_STATS: PerCpuArray<TrafficCounters> =
    PerCpuArray::with_max_entries(capacity::MAX_REALS, 0);

#[inline(always)]
pub fn count(counter: GlobalCounter) {
    if let Some(value) = LB_GLOBAL_STATS.get_ptr_mut(counter as u32) {
        // SAFETY: per-CPU slot, only this CPU writes it while we run.
        unsafe { *value += 1 };
    }
}

#[inline(always)]
fn add(counters: Option<*mut TrafficCounters>, bytes: u64, new_connection: bool, dropped: bool) {
    if let Some(c) = counters {
        // SAFETY: per-CPU slot, as above.
        let c = unsafe { &mut *c };
        c.packets += 1;
        c.bytes += bytes;
        c.new_connections += new_connection as u64;
        c.drops += dropped as u64;
    }
}

#[inline(always)]
pub fn count_service(service_id: u32, bytes: u64, new_connection: bool, dropped: bool) {
    add(
        LB_SVC_STATS.get_ptr_mut(service_id),
        bytes,
        new_connection,
        dropped,
    );
}

#[inline(always)]
pub fn count_real(real_id: u32, bytes: u64, new_connection: bool, dropped: bool) {
    add(
        LB_REAL_STATS.get_ptr_mut(real_id),
        bytes,
        new_connection,
        dropped,
    );
}

#[inline(always)]
fn add_out(counters: Option<*mut TrafficCounters>, bytes: u64) {
    if let Some(c) = counters {
        // SAFETY: per-CPU slot, as above.
        let c = unsafe { &mut *c };
        c.out_packets += 1;
        c.out_bytes += bytes;
    }
}

/// A reply from `real_id` to a client that the balancer rewrote and sent
/// on (NAT): counted for the real and for its service (ipvsadm's OutPkts
/// and OutBytes).
#[inline(always)]
pub fn count_out(real_id: u32, bytes: u64) {
    if let Some(real) = LB_REALS.get(real_id) {
        count_out_of(real_id, real.service_id, bytes);
    } else {
        add_out(LB_REAL_STATS.get_ptr_mut(real_id), bytes);
    }
}

/// [`count_out`] for a caller that knows the real's service.
#[inline(always)]
pub fn count_out_of(real_id: u32, service_id: u32, bytes: u64) {
    add_out(LB_REAL_STATS.get_ptr_mut(real_id), bytes);
    add_out(LB_SVC_STATS.get_ptr_mut(service_id), bytes);
}
