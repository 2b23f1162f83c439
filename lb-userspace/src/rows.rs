//! Scheduling rows: what each IPVS scheduler needs in a service's row of
//! `LB_MAGLEV` (`table_size` slots of real ids), and how many leading slots
//! of it are in use (`Service::row_len`).
//!
//! | scheduler          | row                                              | `row_len`    |
//! |--------------------|--------------------------------------------------|--------------|
//! | mh                 | the Maglev table ([`maglev::build_table`])       | `table_size` |
//! | sh                 | weighted buckets: each real `weight` in a row    | `table_size` |
//! | dh                 | buckets: one real after the other                | `table_size` |
//! | rr                 | each real once                                   | reals        |
//! | wrr                | IPVS's interleaved weighted sequence             | its length   |
//! | lc, wlc, sed, nq   | the candidate list                               | reals        |
//!
//! Reals with weight 0 are left out of every row (IPVS's quiesced reals get
//! no new connections; the caller passes weight 0 for unreachable reals
//! too). A row without any real is all `NO_REAL`, with `row_len` 0.
//!
//! Order. The hash rows (mh, sh, dh) are pure functions of the *set* of
//! reals, sorted by identity as Maglev does: every balancer of a fleet, and
//! every restart of one, sends a client to the same real. The others keep
//! the caller's order, which is IPVS's destination list order (ipvsadm
//! lists and round-robins the reals in the order they were added).

use anyhow::{Result, bail, ensure};
use lb_common::{MAX_LEAST_CONNECTION_CANDIDATES, NO_REAL, Scheduler};

use crate::maglev::{self, Backend, MAX_WEIGHT};

/// One real of a service, as the row builders see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowReal {
    /// The real's id in `LB_REALS` (never 0).
    pub id: u32,
    /// `config::identity::identity_bytes(address, port)`: orders the hash rows.
    pub identity: Vec<u8>,
    /// 0 = no new connections (quiesced, or no next hop).
    pub weight: u32,
}

impl From<&RowReal> for Backend {
    fn from(real: &RowReal) -> Self {
        Backend {
            identity: real.identity.clone(),
            id: real.id,
            weight: real.weight,
        }
    }
}

/// The service's whole row (`table_size` slots, unused ones `NO_REAL`) and
/// how many leading slots are in use.
///
/// # Errors
///
/// A real with id 0 or a weight above [`MAX_WEIGHT`], two reals with the
/// same identity, more weighted reals than slots, more than
/// [`MAX_LEAST_CONNECTION_CANDIDATES`] for the least-connection family, and
/// for mh whatever [`maglev::build_table`] refuses (a table size that is
/// not prime).
pub fn build_row(
    scheduler: Scheduler,
    reals: &[RowReal],
    table_size: u32,
) -> Result<(Vec<u32>, u32)> {
    ensure!(table_size > 0, "scheduling rows need at least one slot");
    check(reals)?;
    let weighted: Vec<&RowReal> = reals.iter().filter(|real| real.weight > 0).collect();
    ensure!(
        weighted.len() <= table_size as usize,
        "{} weighted reals do not fit in {table_size} slots",
        weighted.len()
    );
    let empty_row = || vec![NO_REAL; table_size as usize];
    if weighted.is_empty() {
        return Ok((empty_row(), 0));
    }
    Ok(match scheduler {
        // Built whole by the fill: no empty row to start from.
        Scheduler::Maglev => {
            let backends: Vec<Backend> = weighted.iter().map(|real| Backend::from(*real)).collect();
            (maglev::build_table(&backends, table_size)?, table_size)
        }
        Scheduler::SourceHash | Scheduler::DestinationHash => {
            let mut row = empty_row();
            let weighted_buckets = scheduler == Scheduler::SourceHash;
            fill_buckets(&mut row, &by_identity(&weighted), weighted_buckets);
            (row, table_size)
        }
        Scheduler::RoundRobin => placed(empty_row(), weighted.iter().map(|real| real.id)),
        Scheduler::WeightedRoundRobin => {
            placed(empty_row(), wrr_sequence(&weighted, table_size).into_iter())
        }
        Scheduler::LeastConnection
        | Scheduler::WeightedLeastConnection
        | Scheduler::ShortestExpectedDelay
        | Scheduler::NeverQueue => {
            ensure!(
                weighted.len() <= MAX_LEAST_CONNECTION_CANDIDATES as usize,
                "{} reals with weight: the {} scheduler takes at most {}",
                weighted.len(),
                scheduler.name(),
                MAX_LEAST_CONNECTION_CANDIDATES
            );
            placed(empty_row(), weighted.iter().map(|real| real.id))
        }
    })
}

/// Ids, weights and identities the data plane and the hash rows can use.
fn check(reals: &[RowReal]) -> Result<()> {
    let mut identities: Vec<(&[u8], u32)> = Vec::with_capacity(reals.len());
    for real in reals {
        ensure!(real.id != NO_REAL, "real id 0 is reserved for \"no real\"");
        ensure!(
            real.weight <= MAX_WEIGHT,
            "real {} has weight {} (max {MAX_WEIGHT})",
            real.id,
            real.weight
        );
        identities.push((&real.identity, real.id));
    }
    identities.sort_unstable();
    for pair in identities.windows(2) {
        if pair[0].0 == pair[1].0 {
            bail!(
                "duplicate real identity {:02x?} (ids {} and {})",
                pair[0].0,
                pair[0].1,
                pair[1].1
            );
        }
    }
    Ok(())
}

fn by_identity<'a>(reals: &[&'a RowReal]) -> Vec<&'a RowReal> {
    let mut sorted = reals.to_vec();
    sorted.sort_by(|a, b| a.identity.cmp(&b.identity));
    sorted
}

/// `row` with `ids` written from its start, and how many were.
fn placed(mut row: Vec<u32>, ids: impl Iterator<Item = u32>) -> (Vec<u32>, u32) {
    let mut len = 0;
    for (slot, id) in row.iter_mut().zip(ids) {
        *slot = id;
        len += 1;
    }
    (row, len)
}

/// IPVS's sh and dh bucket tables (`ip_vs_sh_reassign`,
/// `ip_vs_dh_reassign`), over the whole row: the reals in turn, each taking
/// `weight` consecutive buckets (sh) or one (dh), round and round until
/// every bucket is taken.
///
/// Unlike IPVS, sh weights are first divided by their greatest common
/// divisor (same proportions, shorter cycle), and scaled down to fit when
/// one cycle would be longer than the row: IPVS's 256 buckets simply cut
/// such a cycle short, and the reals late in it get nothing.
fn fill_buckets(row: &mut [u32], reals: &[&RowReal], weighted: bool) {
    let weights: Vec<u32> = if weighted {
        fitted_weights(reals, row.len() as u32)
    } else {
        vec![1; reals.len()]
    };
    let mut buckets = reals
        .iter()
        .zip(&weights)
        .flat_map(|(real, &weight)| std::iter::repeat_n(real.id, weight as usize))
        .cycle();
    for slot in row.iter_mut() {
        // `reals` is not empty and every weight is at least 1.
        *slot = buckets.next().expect("a cycle of buckets never ends");
    }
}

/// The weights divided by their gcd and, if they still add up to more than
/// `room`, scaled down proportionally (every real keeping at least 1) so
/// that they add up to at most `room`. `reals.len() <= room`.
fn fitted_weights(reals: &[&RowReal], room: u32) -> Vec<u32> {
    let divisor = reals.iter().fold(0, |g, real| gcd(g, real.weight)).max(1);
    let weights: Vec<u32> = reals.iter().map(|real| real.weight / divisor).collect();
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    if total <= u64::from(room) {
        return weights;
    }
    // Each real keeps max(1, floor(w * budget / total)) <= floor(...) + 1,
    // and budget + n = room bounds the sum.
    let n = reals.len() as u64;
    let budget = u64::from(room) - n;
    weights
        .iter()
        .map(|&w| ((u64::from(w) * budget / total) as u32).max(1))
        .collect()
}

/// IPVS's weighted round-robin order (`ip_vs_wrr_schedule`), one whole
/// cycle of it: with `di` the gcd of the weights and `mw` the largest
/// weight less `di - 1`, the current weight `cw` starts at `mw` and drops
/// by `di` after each pass over the reals (in order), and each pass picks
/// every real whose weight is at least `cw`. Weights 4, 3, 2 give
/// A A B A B C A B C: each real as often as its weight (divided by the
/// gcd), the heavier ones spread over the cycle rather than in a block.
///
/// A cycle is `sum(weights) / gcd` long. One longer than `table_size` is
/// built from weights scaled down proportionally to fit (see
/// [`fitted_weights`]), which keeps the proportions to within one pick per
/// real.
fn wrr_sequence(reals: &[&RowReal], table_size: u32) -> Vec<u32> {
    let weights = fitted_weights(reals, table_size);
    let di = weights.iter().fold(0, |g, &w| gcd(g, w)).max(1);
    let max = weights.iter().copied().max().unwrap_or(0);
    let mw = max - (di - 1);
    let mut sequence = Vec::new();
    let mut cw = mw;
    while cw > 0 {
        for (real, &weight) in reals.iter().zip(&weights) {
            if weight >= cw {
                sequence.push(real.id);
            }
        }
        cw = cw.saturating_sub(di);
    }
    sequence
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SIZE: u32 = 13;
    const BIG: u32 = 65_537;

    /// Reals 1..=n with distinct identities that sort in id order.
    fn reals(weights: &[u32]) -> Vec<RowReal> {
        (1..)
            .zip(weights)
            .map(|(id, &weight)| RowReal {
                id,
                identity: vec![10, 0, 0, id as u8, 0, 80],
                weight,
            })
            .collect()
    }

    fn counts(row: &[u32]) -> HashMap<u32, usize> {
        let mut counts = HashMap::new();
        for &id in row {
            *counts.entry(id).or_insert(0) += 1;
        }
        counts
    }

    #[test]
    fn empty_input_gives_an_empty_row() {
        for scheduler in Scheduler::ALL {
            for input in [reals(&[]), reals(&[0, 0])] {
                let (row, len) = build_row(scheduler, &input, SIZE).unwrap();
                assert_eq!(len, 0, "{}", scheduler.name());
                assert_eq!(row, vec![NO_REAL; SIZE as usize], "{}", scheduler.name());
            }
        }
    }

    #[test]
    fn mh_is_the_maglev_table() {
        let input = reals(&[1, 2, 0, 3]);
        let (row, len) = build_row(Scheduler::Maglev, &input, BIG).unwrap();
        let backends: Vec<Backend> = input.iter().map(Backend::from).collect();
        assert_eq!(row, maglev::build_table(&backends, BIG).unwrap());
        assert_eq!(len, BIG);
        assert!(!row.contains(&3), "weight 0 gets no slot");
        assert!(
            build_row(Scheduler::Maglev, &input, 12).is_err(),
            "not prime"
        );
    }

    #[test]
    fn sh_gives_each_real_weight_consecutive_buckets() {
        let (row, len) = build_row(Scheduler::SourceHash, &reals(&[1, 2, 3]), SIZE).unwrap();
        assert_eq!(len, SIZE);
        assert_eq!(row, [1, 2, 2, 3, 3, 3, 1, 2, 2, 3, 3, 3, 1]);

        let (row, _) = build_row(Scheduler::SourceHash, &reals(&[100, 200, 0, 300]), BIG).unwrap();
        let counts = counts(&row);
        assert_eq!(counts.get(&3), None, "weight 0 gets no bucket");
        // The gcd is taken out: runs of 1, 2 and 3 (not 100, 200, 300).
        assert_eq!(row[..6], [1, 2, 2, 4, 4, 4]);
        let share = |id| counts[&id] as f64 / f64::from(BIG);
        assert!((share(1) - 1.0 / 6.0).abs() < 1e-3);
        assert!((share(2) - 2.0 / 6.0).abs() < 1e-3);
        assert!((share(4) - 3.0 / 6.0).abs() < 1e-3);
    }

    #[test]
    fn sh_weights_too_large_for_the_row_are_scaled_down() {
        let (row, _) = build_row(Scheduler::SourceHash, &reals(&[40, 40, 1]), SIZE).unwrap();
        let counts = counts(&row);
        // Weights 4, 4, 1 after scaling: 1 1 1 1 2 2 2 2 3, then cut short.
        assert_eq!(row[..9], [1, 1, 1, 1, 2, 2, 2, 2, 3]);
        assert!(counts[&1] >= 4 && counts[&2] >= 4, "{row:?}");
        assert!(
            counts[&3] >= 1,
            "every weighted real keeps a bucket: {row:?}"
        );
    }

    #[test]
    fn hash_rows_depend_on_the_set_not_the_order() {
        let input = reals(&[1, 2, 3]);
        let reversed: Vec<RowReal> = input.iter().rev().cloned().collect();
        for scheduler in [Scheduler::SourceHash, Scheduler::DestinationHash] {
            assert_eq!(
                build_row(scheduler, &input, SIZE).unwrap(),
                build_row(scheduler, &reversed, SIZE).unwrap(),
                "{}",
                scheduler.name()
            );
        }
    }

    #[test]
    fn dh_cycles_through_the_reals_ignoring_weights() {
        let (row, len) =
            build_row(Scheduler::DestinationHash, &reals(&[5, 0, 1, 2]), SIZE).unwrap();
        assert_eq!(len, SIZE);
        assert_eq!(row, [1, 3, 4, 1, 3, 4, 1, 3, 4, 1, 3, 4, 1]);
    }

    #[test]
    fn rr_lists_each_weighted_real_once_in_the_given_order() {
        let mut input = reals(&[1, 7, 0, 2]);
        input.reverse();
        let (row, len) = build_row(Scheduler::RoundRobin, &input, SIZE).unwrap();
        assert_eq!(len, 3);
        assert_eq!(row[..3], [4, 2, 1]);
        assert!(row[3..].iter().all(|&id| id == NO_REAL));
    }

    #[test]
    fn wrr_is_ipvs_interleaved_sequence() {
        // Worked through ip_vs_wrr_schedule by hand: mw 4, di 1; passes
        // for cw = 4, 3, 2, 1 pick {A}, {A, B}, {A, B, C}, {A, B, C}.
        let (row, len) =
            build_row(Scheduler::WeightedRoundRobin, &reals(&[4, 3, 2]), SIZE).unwrap();
        assert_eq!(len, 9);
        assert_eq!(row[..9], [1, 1, 2, 1, 2, 3, 1, 2, 3]);
        assert!(row[9..].iter().all(|&id| id == NO_REAL));

        // di 2, mw 4 - 1 = 3: cw = 3 picks {A}, cw = 1 picks {A, B}.
        let (row, len) = build_row(Scheduler::WeightedRoundRobin, &reals(&[4, 2]), SIZE).unwrap();
        assert_eq!(row[..len as usize], [1, 1, 2]);

        // Equal weights: plain round robin; weight 0 left out.
        let (row, len) =
            build_row(Scheduler::WeightedRoundRobin, &reals(&[3, 0, 3, 3]), SIZE).unwrap();
        assert_eq!(row[..len as usize], [1, 3, 4]);
    }

    #[test]
    fn wrr_proportions_follow_the_weights() {
        let (row, len) = build_row(Scheduler::WeightedRoundRobin, &reals(&[5, 1, 3]), BIG).unwrap();
        assert_eq!(len, 9);
        let counts = counts(&row[..len as usize]);
        assert_eq!((counts[&1], counts[&2], counts[&3]), (5, 1, 3));
    }

    #[test]
    fn wrr_too_long_for_the_row_is_scaled_down() {
        let (row, len) =
            build_row(Scheduler::WeightedRoundRobin, &reals(&[60, 30, 1]), SIZE).unwrap();
        assert!(len <= SIZE);
        let counts = counts(&row[..len as usize]);
        assert!(counts[&1] > counts[&2], "{row:?}");
        assert!(counts[&2] >= counts[&3] && counts[&3] >= 1, "{row:?}");
    }

    #[test]
    fn least_connection_rows_are_the_candidates() {
        for scheduler in Scheduler::ALL
            .into_iter()
            .filter(|s| s.is_least_connection())
        {
            let (row, len) = build_row(scheduler, &reals(&[2, 0, 1]), SIZE).unwrap();
            assert_eq!((len, &row[..2]), (2, &[1, 3][..]), "{}", scheduler.name());
        }
        let many: Vec<RowReal> = (1..=257)
            .map(|id: u32| RowReal {
                id,
                identity: id.to_be_bytes().to_vec(),
                weight: 1,
            })
            .collect();
        assert!(build_row(Scheduler::LeastConnection, &many, BIG).is_err());
        assert!(build_row(Scheduler::LeastConnection, &many[..256], BIG).is_ok());
    }

    #[test]
    fn invalid_input_is_refused() {
        let mut zero_id = reals(&[1]);
        zero_id[0].id = 0;
        assert!(build_row(Scheduler::RoundRobin, &zero_id, SIZE).is_err());
        assert!(build_row(Scheduler::RoundRobin, &reals(&[70_000]), SIZE).is_err());
        let mut twins = reals(&[1, 1]);
        twins[1].identity = twins[0].identity.clone();
        assert!(build_row(Scheduler::SourceHash, &twins, SIZE).is_err());
        assert!(build_row(Scheduler::RoundRobin, &reals(&[1; 14]), SIZE).is_err());
    }
}
