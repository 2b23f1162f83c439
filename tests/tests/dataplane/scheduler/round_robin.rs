//! Round robin and weighted round robin.

use lb_common::GlobalCounter::*;
use lb_common::{REAL_OVERLOADED, Scheduler};
use lb_userspace::rows::build_row;

use super::services::{client, new_to, row_reals, service, set_flags, set_weight, syn};
use crate::harness::{Case, Lb, MAGLEV_TABLE_SIZE, pin_to_current_cpu};

#[test]
fn rr_cycles_through_the_reals_in_order() {
    pin_to_current_cpu();
    let mut lb = Lb::load();
    service(&mut lb, Scheduler::RoundRobin, 0, &[1, 1, 1], &[1, 2, 3]);
    let cases: Vec<Case> = (0..7)
        .map(|n| {
            let expected = 1 + n as u32 % 3;
            new_to(
                &lb,
                format!("connection {n} to real {expected}"),
                &syn(&client(n)),
                expected,
            )
        })
        .collect();
    lb.expect_all(&cases);
}

#[test]
fn wrr_follows_the_ipvs_weighted_sequence() {
    pin_to_current_cpu();
    let mut lb = Lb::load();
    let weights = [4, 3, 2];
    let (row, row_len) = build_row(
        Scheduler::WeightedRoundRobin,
        &row_reals(&weights),
        MAGLEV_TABLE_SIZE,
    )
    .unwrap();
    let sequence = [1, 1, 2, 1, 2, 3, 1, 2, 3];
    assert_eq!(row[..row_len as usize], sequence, "the daemon's wrr row");
    service(
        &mut lb,
        Scheduler::WeightedRoundRobin,
        0,
        &weights,
        &sequence,
    );
    let mut counts = [0; 4];
    let cases: Vec<Case> = (0..18)
        .map(|n| {
            let expected = sequence[n % sequence.len()];
            counts[expected as usize] += 1;
            new_to(
                &lb,
                format!("connection {n} to real {expected}"),
                &syn(&client(n as u16)),
                expected,
            )
        })
        .collect();
    lb.expect_all(&cases);
    assert_eq!(counts[1..], [8, 6, 4], "proportional to the weights");
}

#[test]
fn rr_skips_overloaded_and_weight_zero_reals() {
    pin_to_current_cpu();
    let mut lb = Lb::load();
    service(
        &mut lb,
        Scheduler::RoundRobin,
        0,
        &[1, 1, 1, 1],
        &[1, 2, 3, 4],
    );
    set_flags(&mut lb, 2, REAL_OVERLOADED, 0);
    set_weight(&mut lb, 3, 0);
    let cases: Vec<Case> = [1, 4, 1, 4]
        .into_iter()
        .enumerate()
        .map(|(n, expected)| {
            new_to(
                &lb,
                format!("connection {n}"),
                &syn(&client(n as u16)),
                expected,
            )
        })
        .collect();
    lb.expect_all(&cases);

    // Nobody left: no real.
    set_flags(&mut lb, 1, REAL_OVERLOADED, 0);
    set_weight(&mut lb, 4, 0);
    lb.expect(&Case::drop(
        "every real unavailable",
        syn(&client(9)).bytes(),
        DropNoReal,
    ));
}
