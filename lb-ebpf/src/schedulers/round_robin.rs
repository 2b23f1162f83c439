//! rr and wrr: the first `row_len` slots of the row are the order (each
//! real once for rr, IPVS's interleaved weighted sequence for wrr), and a
//! cursor per service goes round them, one step per new connection,
//! skipping reals that are unavailable (IPVS's `ip_vs_rr_schedule`,
//! `ip_vs_wrr_schedule`).
//!
//! The cursor (`LB_RR_CURSOR[service id]`) is per CPU: each CPU goes round
//! on its own, so consecutive connections on one CPU follow the order
//! exactly, while connections spread over CPUs interleave their sequences.
//! Over many connections every real still gets its share, without a
//! cache line shared by every CPU written per connection.
//!
//! At most [`MAX_TRIES`] slots are tried per connection, then the
//! connection finds no real (`DropNoReal`), as when every real is
//! unavailable. A wrr sequence holds a real for at most `weight / gcd`
//! consecutive slots, so the bound matters only when one real with a
//! weight over 256 times another's is unavailable; IPVS would then go on
//! to the next real.
//!
//! The walk runs under `bpf_loop` (see `least_connection.rs` for why).

use core::ffi::c_void;

use aya_ebpf::{helpers::bpf_loop, macros::map, maps::PerCpuArray};
use lb_common::{NO_REAL, capacity};

use super::row::Row;

/// rr / wrr: the next slot of each service's row to try. Per CPU, so each
/// CPU goes round its own way (no shared cache line written per new
/// connection); over many connections every CPU spreads them evenly.
#[map]
pub static LB_RR_CURSOR: PerCpuArray<u32> =
    PerCpuArray::with_max_entries(capacity::MAX_SERVICES, 0);

/// Slots tried per new connection.
pub const MAX_TRIES: u32 = 256;

/// The walk's state, in the caller's frame, which `bpf_loop` hands to each
/// step.
#[repr(C)]
struct Walk {
    row: Row,
    len: u32,
    /// The next slot to try.
    slot: u32,
    found: u32,
}

#[inline(always)]
pub fn pick(row: &Row, row_len: u32) -> u32 {
    let len = if row_len < row.size {
        row_len
    } else {
        row.size
    };
    if len == 0 {
        return NO_REAL;
    }
    let Some(cursor) = LB_RR_CURSOR.get_ptr_mut(row.service_id) else {
        return NO_REAL;
    };
    // SAFETY: a per-CPU slot: only this program run on this CPU uses it.
    let cursor = unsafe { &mut *cursor };
    let mut walk = Walk {
        row: *row,
        len,
        // The row may have shrunk since the cursor was stored.
        slot: if *cursor < len { *cursor } else { 0 },
        found: NO_REAL,
    };
    let tries = if len < MAX_TRIES { len } else { MAX_TRIES };
    // SAFETY: `step` has the callback's signature; `walk` outlives the call.
    unsafe {
        bpf_loop(
            tries,
            step as *const () as *mut c_void,
            (&raw mut walk).cast(),
            0,
        )
    };
    if walk.found != NO_REAL {
        *cursor = walk.slot;
    }
    walk.found
}

/// One slot: 1 (stop) once an available real is found.
extern "C" fn step(_index: u64, walk: *mut c_void) -> i64 {
    // SAFETY: `bpf_loop` passes the `Walk` `pick` gave it.
    let walk = unsafe { &mut *walk.cast::<Walk>() };
    let real_id = walk.row.available(walk.slot);
    walk.slot += 1;
    if walk.slot >= walk.len {
        walk.slot = 0;
    }
    if real_id == NO_REAL {
        return 0;
    }
    walk.found = real_id;
    1
}
