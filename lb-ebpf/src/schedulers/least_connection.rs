//! lc, wlc, sed and nq: the first `row_len` slots of the row are the
//! candidates, and the one with the least load per weight wins, from the
//! counts in `LB_REAL_CONNS` (IPVS's `ip_vs_lc_schedule`,
//! `ip_vs_wlc_schedule`, `ip_vs_sed_schedule`, `ip_vs_nq_schedule`):
//!
//! | scheduler | load of a real                     | compared           |
//! |-----------|------------------------------------|--------------------|
//! | lc        | `active * 256 + inactive`          | as is              |
//! | wlc       | `active * 256 + inactive`          | divided by weight  |
//! | sed       | `active + 1`                       | divided by weight  |
//! | nq        | the first real with `active == 0`, else as sed          |
//!
//! "Divided by weight" is compared without division, as IPVS does:
//! `a / wa > b / wb` as `a * wb > b * wa`, in u64 (loads below 2^41,
//! weights clamped to 16 bits, the configuration's limit). Ties go to the
//! earlier candidate. Unavailable reals (overloaded, weight 0, gone) are
//! skipped.
//!
//! At most `MAX_LEAST_CONNECTION_CANDIDATES` (256) candidates are read; the
//! daemon refuses larger services for these schedulers.
//!
//! The scan runs under `bpf_loop`, one candidate per call of [`consider`]:
//! the verifier checks such a callback until its state stops changing (a
//! couple of rounds), where a plain loop of up to 256 rounds, each with a
//! handful of branches, is explored round by round and ran past its budget
//! of a million instructions.

use core::ffi::c_void;

use aya_ebpf::helpers::bpf_loop;
use lb_common::{MAX_LEAST_CONNECTION_CANDIDATES, NO_REAL, RealConns, Scheduler};

use super::row::Row;
use crate::maps::LB_REAL_CONNS;

/// Weights are 16-bit in the configuration; clamping keeps the products
/// within u64 whatever the map holds.
const MAX_WEIGHT: u32 = 0xffff;

/// `Scan::mode` bits.
const BY_WEIGHT: u32 = 1 << 0;
const ACTIVE_ONLY: u32 = 1 << 1;
const IDLE_WINS: u32 = 1 << 2;

/// The scan's state, in the caller's frame, which `bpf_loop` hands to each
/// call of [`consider`].
#[repr(C)]
struct Scan {
    row: Row,
    mode: u32,
    least: u32,
    _pad: u32,
    least_load: u64,
    least_weight: u64,
}

#[inline(always)]
pub fn pick(row: &Row, scheduler: Scheduler, row_len: u32) -> u32 {
    let mut len = if row_len < row.size {
        row_len
    } else {
        row.size
    };
    if len > MAX_LEAST_CONNECTION_CANDIDATES {
        len = MAX_LEAST_CONNECTION_CANDIDATES;
    }
    let mut scan = Scan {
        row: *row,
        mode: mode(scheduler),
        least: NO_REAL,
        _pad: 0,
        least_load: 0,
        least_weight: 1,
    };
    // SAFETY: `consider` has the callback's signature; `scan` outlives the
    // call.
    unsafe {
        bpf_loop(
            len,
            consider as *const () as *mut c_void,
            (&raw mut scan).cast(),
            0,
        )
    };
    scan.least
}

/// Candidate `slot`: taken if it beats the least so far; 1 (stop) for an
/// idle real under nq.
extern "C" fn consider(slot: u64, scan: *mut c_void) -> i64 {
    // SAFETY: `bpf_loop` passes the `Scan` `pick` gave it.
    let scan = unsafe { &mut *scan.cast::<Scan>() };
    let Some((real_id, real)) = scan.row.available_real(slot as u32) else {
        return 0;
    };
    let conns = LB_REAL_CONNS
        .get(real_id)
        .copied()
        .unwrap_or(RealConns::default());
    if scan.mode & IDLE_WINS != 0 && conns.active == 0 {
        scan.least = real_id;
        return 1;
    }
    let load = load(&conns, scan.mode);
    let weight = weight(real.weight, scan.mode);
    if scan.least == NO_REAL || less_per_weight(load, weight, scan.least_load, scan.least_weight) {
        scan.least = real_id;
        scan.least_load = load;
        scan.least_weight = weight;
    }
    0
}

/// The `Scan::mode` of a least-connection scheduler (nq for any other).
#[inline(always)]
fn mode(scheduler: Scheduler) -> u32 {
    match scheduler {
        Scheduler::LeastConnection => 0,
        Scheduler::WeightedLeastConnection => BY_WEIGHT,
        Scheduler::ShortestExpectedDelay => BY_WEIGHT | ACTIVE_ONLY,
        _ => BY_WEIGHT | ACTIVE_ONLY | IDLE_WINS,
    }
}

/// A real's load as `mode` counts it (the table above).
#[inline(always)]
fn load(conns: &RealConns, mode: u32) -> u64 {
    if mode & ACTIVE_ONLY != 0 {
        conns.active as u64 + 1
    } else {
        ((conns.active as u64) << 8) + conns.inactive as u64
    }
}

/// What a real's load is divided by: its weight, clamped, or 1.
#[inline(always)]
fn weight(real_weight: u32, mode: u32) -> u64 {
    if mode & BY_WEIGHT == 0 {
        1
    } else if real_weight > MAX_WEIGHT {
        MAX_WEIGHT as u64
    } else {
        real_weight as u64
    }
}

/// `load / weight < least_load / least_weight`, without a division.
#[inline(always)]
fn less_per_weight(load: u64, weight: u64, least_load: u64, least_weight: u64) -> bool {
    least_load * weight > load * least_weight
}

#[cfg(test)]
mod tests;
