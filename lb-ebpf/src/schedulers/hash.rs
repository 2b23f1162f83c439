//! mh, sh and dh: the packet's hash picks a slot of the row (IPVS's
//! `ip_vs_mh_get`, `ip_vs_sh_get`, `ip_vs_dh_get`); only the row differs
//! (a Maglev table, weighted buckets, plain buckets: see `rows.rs` in the
//! daemon) and what is hashed (see `lb_common::flow_hash`).
//!
//! An unavailable real in that slot (overloaded, weight 0, gone) means no
//! real, as in IPVS, unless the service has the fallback flag (mh and sh
//! only; IPVS's `*_get_fallback`): then the next slots of the hash's probe
//! sequence are tried, at most `MAX_FALLBACK_PROBES` of them. IPVS ends its
//! walk at an empty bucket, which in its tables only occurs when there are
//! no reals at all; here a `NO_REAL` slot is merely skipped, and an empty
//! hashed slot ends the search at once (an empty row).

use lb_common::{
    NO_REAL,
    flow_hash::{MAX_FALLBACK_PROBES, probe_step},
};

use super::row::Row;

#[inline(always)]
pub fn pick(row: &Row, hash: u32, fallback: bool) -> u32 {
    let first = hash % row.size;
    let real_id = row.real(first);
    if real_id == NO_REAL {
        return NO_REAL;
    }
    let real_id = row.available(first);
    if real_id != NO_REAL || !fallback {
        return real_id;
    }
    // The same sequence as `flow_hash::probe_slot(hash, 1..)`, stepped
    // without a division per probe: slot < size and step < size.
    let step = probe_step(hash, row.size);
    let mut slot = first;
    for _ in 0..MAX_FALLBACK_PROBES {
        slot = next_probe(slot, step, row.size);
        let real_id = row.available(slot);
        if real_id != NO_REAL {
            return real_id;
        }
    }
    NO_REAL
}

/// The probe after `slot`, `step` further round a row of `size` slots
/// (both below `size`).
#[inline(always)]
fn next_probe(slot: u32, step: u32, size: u32) -> u32 {
    let next = slot + step;
    if next >= size { next - size } else { next }
}

#[cfg(test)]
mod tests {
    use lb_common::flow_hash::{MAX_FALLBACK_PROBES, probe_slot, probe_step};

    use super::next_probe;

    /// The daemon and the docs describe the fallback walk as
    /// `probe_slot(hash, 1..)`; the data plane steps it without a division.
    #[test]
    fn stepping_visits_the_slots_probe_slot_names() {
        for size in [3, 251, 4_093, 65_537] {
            for hash in [0, 1, 7, 0x9e37_79b9, u32::MAX - 1, u32::MAX] {
                let step = probe_step(hash, size);
                let mut slot = hash % size;
                for probe in 1..=MAX_FALLBACK_PROBES {
                    slot = next_probe(slot, step, size);
                    assert_eq!(slot, probe_slot(hash, probe, size), "{hash} {size} {probe}");
                }
            }
        }
    }
}
