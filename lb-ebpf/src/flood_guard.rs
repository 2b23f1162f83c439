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

use aya_ebpf::{
    macros::map,
    maps::{Array, PerCpuArray},
};
use lb_common::{FloodGuard, ForwardingMethod, NewFlowWindow, Real, Scheduler, Service};

/// Entry 0: how many new flows a second each CPU records.
#[map]
pub static LB_FLOOD_GUARD: Array<FloodGuard> = Array::with_max_entries(1, 0);

/// Each CPU's second of recorded new flows, for the flood guard.
#[map]
pub static LB_NEW_FLOW_WINDOW: PerCpuArray<NewFlowWindow> = PerCpuArray::with_max_entries(1, 0);

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
    admits(unsafe { &mut *window }, limit, now)
}

/// Whether `window` has room for one more recorded flow at `now`, under
/// `limit` a second; counts it if so. A second after the window began,
/// a fresh one begins.
#[inline(always)]
fn admits(window: &mut NewFlowWindow, limit: u64, now: u64) -> bool {
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

#[cfg(test)]
mod tests {
    use lb_common::NewFlowWindow;

    use super::{ONE_SECOND_NS, admits};

    /// How many of `offered` flows at `now` the window admits.
    fn admitted(window: &mut NewFlowWindow, limit: u64, now: u64, offered: u32) -> u32 {
        (0..offered)
            .map(|_| u32::from(admits(window, limit, now)))
            .sum()
    }

    #[test]
    fn a_second_admits_the_limit_and_no_more() {
        let start = 5 * ONE_SECOND_NS;
        let mut window = NewFlowWindow::default();
        assert_eq!(admitted(&mut window, 3, start, 5), 3);
        assert_eq!(admitted(&mut window, 3, start + ONE_SECOND_NS - 1, 1), 0);
        assert_eq!(
            window,
            NewFlowWindow {
                started_ns: start,
                recorded: 3
            }
        );
    }

    #[test]
    fn the_next_second_starts_afresh_where_it_is_first_seen() {
        let start = 5 * ONE_SECOND_NS;
        let mut window = NewFlowWindow::default();
        admitted(&mut window, 3, start, 3);
        let later = start + ONE_SECOND_NS + 123;
        assert_eq!(admitted(&mut window, 3, later, 4), 3);
        assert_eq!(window.started_ns, later);
    }

    #[test]
    fn a_clock_behind_the_window_starts_a_fresh_one() {
        // Another CPU's reading may be ahead of this one's: the wrapping
        // difference is huge, as after a long pause.
        let mut window = NewFlowWindow {
            started_ns: 10 * ONE_SECOND_NS,
            recorded: 3,
        };
        assert!(admits(&mut window, 3, 10 * ONE_SECOND_NS - 1));
        assert_eq!(window.recorded, 1);
    }
}
