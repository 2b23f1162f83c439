//! Per-CPU scratch memory for the NAT paths' larger structs.
//!
//! Every byte a NAT function keeps on its stack counts on top of the
//! balancer's own frame against BPF's 512 bytes (see `wire::verdict`). Map
//! keys, the reverse entry being written and the `bpf_fib_lookup` parameters
//! therefore live here: helpers accept map values wherever they accept
//! stack memory. One program runs at a time per CPU, so a per-CPU slot is
//! never shared.
//!
//! The map starts zeroed. The padding of `real` is never written, so it
//! stays zero, as map keys need; the other keys are written whole.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::bpf_fib_lookup, helpers::bpf_map_lookup_elem, macros::map, maps::PerCpuArray,
};
use lb_common::{Addr, FlowKey, NatRealKey, NatReply};

#[repr(C)]
pub struct Scratch {
    /// Parameters and results of the reply path's route lookup.
    pub fib: bpf_fib_lookup,
    /// A 5-tuple to look up or insert in `LB_NAT_REPLIES`.
    pub key: FlowKey,
    /// A reverse entry about to be inserted.
    pub reply: NatReply,
    /// A source address to look up in `LB_NAT_REALS`.
    pub real: NatRealKey,
    /// Where an ICMP error from a real is going.
    pub client: Addr,
}

/// Private to the program: nothing outside reads it, so it is neither
/// pinned nor part of the contract.
#[map]
static LB_NAT_SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

/// The key of the only slot, as a constant in `.rodata`: helpers take keys
/// from map values too, and this one then needs no stack slot
/// (`PerCpuArray::get_ptr_mut` builds its key on the stack).
static SLOT: u32 = 0;

/// This CPU's scratch slot. `None` never happens (entry 0 of a one-entry
/// array always exists), but the verifier wants the check.
#[inline(always)]
pub fn get() -> Option<&'static mut Scratch> {
    let map = &LB_NAT_SCRATCH as *const PerCpuArray<Scratch> as *mut c_void;
    // SAFETY: `PerCpuArray` is a transparent wrapper around the map
    // definition, whose address is what the helper takes (as aya's own
    // lookups pass it); the key is a valid u32.
    let slot = unsafe { bpf_map_lookup_elem(map, (&SLOT as *const u32).cast()) };
    // SAFETY: per-CPU memory that only this program run uses.
    (!slot.is_null()).then(|| unsafe { &mut *slot.cast::<Scratch>() })
}
