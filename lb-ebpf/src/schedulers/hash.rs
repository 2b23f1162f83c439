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

use super::Row;

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
        slot += step;
        if slot >= row.size {
            slot -= row.size;
        }
        let real_id = row.available(slot);
        if real_id != NO_REAL {
            return real_id;
        }
    }
    NO_REAL
}
