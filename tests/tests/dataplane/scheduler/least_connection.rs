//! The least-connection family: lc, wlc, sed, nq.

use lb_common::GlobalCounter::*;
use lb_common::{REAL_OVERLOADED, RealConns, Scheduler};

use super::services::{client, new_to, service, set_flags, set_weight, syn};
use crate::harness::{Case, Lb};

/// One SYN to a least-connection service with three reals of `weights` and
/// `conns` (active, inactive) each: it must go to `expected`, and add one
/// inactive connection to it.
fn expect_least(scheduler: Scheduler, weights: [u32; 3], conns: [(u32, u32); 3], expected: u32) {
    let mut lb = Lb::load();
    service(&mut lb, scheduler, 0, &weights, &[1, 2, 3]);
    for (id, (active, inactive)) in (1..).zip(conns) {
        lb.set_real_conns(id, active, inactive);
    }
    let name = format!("{} with {weights:?} {conns:?}", scheduler.name());
    lb.expect(&new_to(&lb, &name, &syn(&client(0)), expected));
    let (active, inactive) = conns[expected as usize - 1];
    assert_eq!(
        lb.real_conns(expected),
        RealConns {
            active,
            inactive: inactive + 1
        },
        "{name}: the new connection is counted"
    );
}

#[test]
fn lc_picks_the_least_active_times_256_plus_inactive() {
    // Overheads 256, 522, 266: real 1, though the weights favour 2.
    expect_least(
        Scheduler::LeastConnection,
        [1, 4, 2],
        [(1, 0), (2, 10), (1, 10)],
        1,
    );
    // 256 + 300 inactive is more than 2 * 256: inactive counts too.
    expect_least(
        Scheduler::LeastConnection,
        [1, 1, 1],
        [(1, 300), (2, 0), (3, 0)],
        2,
    );
    // One active connection weighs as much as 256 inactive ones.
    expect_least(
        Scheduler::LeastConnection,
        [1, 1, 1],
        [(1, 0), (0, 255), (1, 1)],
        2,
    );
    expect_least(
        Scheduler::LeastConnection,
        [1, 1, 1],
        [(1, 0), (0, 257), (1, 1)],
        1,
    );
    // Ties go to the first candidate.
    expect_least(
        Scheduler::LeastConnection,
        [1, 1, 1],
        [(1, 5), (1, 5), (0, 261)],
        1,
    );
}

#[test]
fn wlc_divides_the_overhead_by_the_weight() {
    // 256 / 1, 522 / 4 = 130.5, 266 / 2 = 133: real 2.
    expect_least(
        Scheduler::WeightedLeastConnection,
        [1, 4, 2],
        [(1, 0), (2, 10), (1, 10)],
        2,
    );
    // 256 / 1, 522 / 4 = 130.5, 256 / 2 = 128: real 3.
    expect_least(
        Scheduler::WeightedLeastConnection,
        [1, 4, 2],
        [(1, 0), (2, 10), (1, 0)],
        3,
    );
}

#[test]
fn sed_divides_active_plus_one_by_the_weight() {
    // (1+1)/1, (3+1)/4 = 1, (2+1)/2 = 1.5: real 2; its 1000 inactive
    // connections do not count.
    expect_least(
        Scheduler::ShortestExpectedDelay,
        [1, 4, 2],
        [(1, 0), (3, 1000), (2, 0)],
        2,
    );
    // (0+1)/1 = 1 against (1+1)/4 = 0.5: real 2 despite real 1 being idle.
    expect_least(
        Scheduler::ShortestExpectedDelay,
        [1, 4, 2],
        [(0, 0), (1, 0), (3, 0)],
        2,
    );
}

#[test]
fn nq_takes_the_first_idle_real_else_as_sed() {
    // Real 1 is idle: nq takes it where sed takes real 2 (see above).
    expect_least(
        Scheduler::NeverQueue,
        [1, 4, 2],
        [(0, 0), (1, 0), (3, 0)],
        1,
    );
    // The first idle one, not the best weighted.
    expect_least(
        Scheduler::NeverQueue,
        [1, 1, 4],
        [(1, 0), (0, 50), (0, 0)],
        2,
    );
    // Nobody idle: as sed.
    expect_least(
        Scheduler::NeverQueue,
        [1, 4, 2],
        [(1, 0), (3, 1000), (2, 0)],
        2,
    );
}

#[test]
fn least_connection_skips_overloaded_and_weight_zero_reals() {
    for scheduler in [
        Scheduler::LeastConnection,
        Scheduler::WeightedLeastConnection,
        Scheduler::ShortestExpectedDelay,
        Scheduler::NeverQueue,
    ] {
        let mut lb = Lb::load();
        service(&mut lb, scheduler, 0, &[1, 1, 1], &[1, 2, 3]);
        lb.set_real_conns(1, 0, 0);
        lb.set_real_conns(2, 0, 1);
        lb.set_real_conns(3, 9, 9);
        set_flags(&mut lb, 1, REAL_OVERLOADED, 0);
        set_weight(&mut lb, 2, 0);
        let name = format!("{}: only real 3 is available", scheduler.name());
        lb.expect(&new_to(&lb, name, &syn(&client(0)), 3));
        set_flags(&mut lb, 3, REAL_OVERLOADED, 0);
        let name = format!("{}: none available", scheduler.name());
        lb.expect(&Case::drop(name, syn(&client(1)).bytes(), DropNoReal));
    }
}
