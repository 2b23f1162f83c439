//! One service's row of `LB_MAGLEV`, as every scheduler reads it: the real
//! id in a slot, and whether that real takes new connections.

use aya_ebpf::{bindings::BPF_F_MMAPABLE, macros::map, maps::Array};
use lb_common::{NO_REAL, Real, capacity};

use crate::maps::LB_REALS;

/// Every service's Maglev table back to back: slot `s` of service `id` is at
/// `id * LB_MAGLEV_TABLE_SIZE + s`. One flat array instead of map-in-map: a
/// single lookup per new flow, and no inner-map churn on updates.
/// Mmapable, so the daemon writes whole rows with plain stores instead of
/// one `bpf()` call per slot (a row is 65,537 slots).
#[map]
pub static LB_MAGLEV: Array<u32> = Array::with_max_entries(
    capacity::MAX_SERVICES * capacity::DEFAULT_MAGLEV_TABLE_SIZE,
    BPF_F_MMAPABLE,
);

/// Slots per service in `LB_MAGLEV`; set by the loader (`.rodata`).
#[unsafe(no_mangle)]
static LB_MAGLEV_TABLE_SIZE: u32 = capacity::DEFAULT_MAGLEV_TABLE_SIZE;

#[inline(always)]
pub fn maglev_table_size() -> u32 {
    // SAFETY: a plain read of a u32 static; volatile so the compiler does not
    // fold in the default that the loader rewrites.
    unsafe { core::ptr::read_volatile(&LB_MAGLEV_TABLE_SIZE) }
}

/// One service's row of `LB_MAGLEV`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Row {
    pub service_id: u32,
    /// Index of the row's first slot.
    base: u32,
    /// Slots in the row (`LB_MAGLEV_TABLE_SIZE`), never 0.
    pub size: u32,
}

impl Row {
    #[inline(always)]
    pub fn of(service_id: u32) -> Option<Self> {
        let size = maglev_table_size();
        // Never true for a loader-set size, but it lets the compiler drop
        // the division-by-zero panic paths, which the verifier rejects.
        if size == 0 {
            return None;
        }
        Some(Self {
            service_id,
            base: service_id.wrapping_mul(size),
            size,
        })
    }

    /// The real id in `slot` (below `size`).
    #[inline(always)]
    pub fn real(&self, slot: u32) -> u32 {
        LB_MAGLEV
            .get(self.base.wrapping_add(slot))
            .copied()
            .unwrap_or(NO_REAL)
    }

    /// The real id in `slot` if that real takes new connections of this
    /// service (see `Real::takes_new_connections`), else `NO_REAL`.
    #[inline(always)]
    pub fn available(&self, slot: u32) -> u32 {
        self.available_real(slot)
            .map_or(NO_REAL, |(real_id, _)| real_id)
    }

    /// As [`Row::available`], with the real.
    #[inline(always)]
    pub fn available_real(&self, slot: u32) -> Option<(u32, &'static Real)> {
        let real_id = self.real(slot);
        if real_id == NO_REAL {
            return None;
        }
        let real = LB_REALS.get(real_id)?;
        real.takes_new_connections(self.service_id)
            .then_some((real_id, real))
    }
}
