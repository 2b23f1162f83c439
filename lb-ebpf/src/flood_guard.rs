//! Which new flows are recorded in the flow table during a flood of them.
//!
//! Recording a flow is the dearest thing the data plane does: an insert
//! into a table of a million entries, which once full also evicts the
//! oldest one (about a microsecond here, against ~100 ns for a hit). A
//! flood of new 5-tuples would pay that on every packet and push
//! established flows out. Each CPU counts the flows it records in the
//! current second whose entry nothing needs (`lb_common::FloodGuard` says
//! which, and what going without costs); past the limit in
//! `LB_FLOOD_GUARD`, such flows are forwarded unrecorded.

use lb_common::{ForwardingMethod, Real, Scheduler, Service};

use crate::maps::{LB_FLOOD_GUARD, LB_NEW_FLOW_WINDOW};

const ONE_SECOND_NS: u64 = 1_000_000_000;

/// Whether this new flow of `service`, scheduled to `real`, goes into the
/// flow table. Counts it against this CPU's second when it does.
#[inline(always)]
pub fn records(service: &Service, real: &Real, now: u64) -> bool {
    !can_go_unrecorded(service, real) || within_limit(now)
}

/// The flow's packets reach the same real without an entry, and nothing
/// else reads one.
#[inline(always)]
fn can_go_unrecorded(service: &Service, real: &Real) -> bool {
    service.persistence_timeout == 0
        && real.forwarding != ForwardingMethod::Masquerade as u8
        && Scheduler::from_u8(service.scheduler).is_some_and(Scheduler::is_stateless_hash)
}

/// Counts one more recorded flow this second unless the limit is reached.
#[inline(always)]
fn within_limit(now: u64) -> bool {
    let limit = match LB_FLOOD_GUARD.get(0) {
        Some(guard) if guard.new_flows_per_second != 0 => guard.new_flows_per_second as u64,
        _ => return true,
    };
    let Some(window) = LB_NEW_FLOW_WINDOW.get_ptr_mut(0) else {
        return true;
    };
    // SAFETY: this CPU's slot; nothing else writes it while we run.
    let window = unsafe { &mut *window };
    if now.wrapping_sub(window.started_ns) >= ONE_SECOND_NS {
        window.started_ns = now;
        window.recorded = 0;
    }
    if window.recorded >= limit {
        return false;
    }
    window.recorded += 1;
    true
}
