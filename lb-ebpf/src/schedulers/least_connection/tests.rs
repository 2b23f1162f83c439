use lb_common::{RealConns, Scheduler};

use super::{MAX_WEIGHT, less_per_weight, load, mode, weight};

fn conns(active: u32, inactive: u32) -> RealConns {
    RealConns { active, inactive }
}

/// The load each scheduler compares for a real with `conns` and `weight`,
/// as (load, divisor).
fn measure(scheduler: Scheduler, conns: RealConns, real_weight: u32) -> (u64, u64) {
    let mode = mode(scheduler);
    (load(&conns, mode), weight(real_weight, mode))
}

#[test]
fn lc_and_wlc_count_an_active_connection_as_256_inactive_ones() {
    let busy = conns(3, 7);
    assert_eq!(
        measure(Scheduler::LeastConnection, busy, 5),
        (3 * 256 + 7, 1)
    );
    assert_eq!(
        measure(Scheduler::WeightedLeastConnection, busy, 5),
        (3 * 256 + 7, 5)
    );
}

#[test]
fn sed_and_nq_count_active_connections_plus_the_new_one() {
    let busy = conns(3, 7);
    assert_eq!(measure(Scheduler::ShortestExpectedDelay, busy, 5), (4, 5));
    assert_eq!(measure(Scheduler::NeverQueue, busy, 5), (4, 5));
}

#[test]
fn weights_beyond_the_configurations_limit_are_clamped() {
    let idle = conns(0, 0);
    assert_eq!(
        measure(Scheduler::WeightedLeastConnection, idle, u32::MAX).1,
        u64::from(MAX_WEIGHT)
    );
    // The largest load times the largest weight still fits.
    let worst = load(&conns(u32::MAX, u32::MAX), mode(Scheduler::LeastConnection));
    assert!(worst.checked_mul(u64::from(MAX_WEIGHT)).is_some());
}

#[test]
fn less_load_per_weight_wins_and_ties_keep_the_earlier_real() {
    // 3 / 2 < 2 / 1
    assert!(less_per_weight(3, 2, 2, 1));
    assert!(!less_per_weight(2, 1, 3, 2));
    // 4 / 2 == 2 / 1: the real already chosen stays.
    assert!(!less_per_weight(4, 2, 2, 1));
    // An idle real beats a busy one whatever the weights.
    assert!(less_per_weight(0, 1, 1, 100));
}
