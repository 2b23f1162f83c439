//! Persistence templates (IPVS's `-p`, `-M`): while a client (its address
//! masked to the service's prefix) keeps connecting to a persistent
//! service, its new connections go to the real its first one went to.
//!
//! As IPVS (`ip_vs_sched_persist`, `ip_vs_check_template`):
//! - a template is good while it is younger than the service's timeout and
//!   its real is still configured in the service; it is used even when that
//!   real has weight 0 or is overloaded (`expire_quiescent_template` off,
//!   IPVS's default), which is what keeps sessions on a real being drained;
//! - using it refreshes it, and so does every connection it placed, when
//!   the flow table refreshes the flow's timestamp (at most once a second,
//!   [`touch`]): a template outlives its last connection by the timeout.
//!
//! Templates live in `LB_PERSIST` (an LRU); the daemon's reaper removes the
//! expired ones.

// Keys and values go to the map helpers by reference on purpose: by value
// they would be copied to the stack once more.
#![allow(clippy::needless_borrows_for_generic_args)]

use aya_ebpf::{macros::map, maps::LruHashMap};
use lb_common::{Addr, FlowKey, PersistKey, PersistState, Service, capacity};

use crate::{clock, flow_state::live_real};

/// Persistence templates: (masked client, service) -> real. Sized like the
/// flow table (at most one template per flow); an LRU, so a full table
/// forgets the templates idle longest.
#[map]
pub static LB_PERSIST: LruHashMap<PersistKey, PersistState> =
    LruHashMap::with_max_entries(capacity::DEFAULT_FLOW_TABLE_ENTRIES, 0);

/// The template's key for `client` in service `service_id`.
#[inline(always)]
pub fn key(client: &Addr, prefix: u8, service_id: u32) -> PersistKey {
    PersistKey {
        client: client.masked(prefix),
        service_id,
    }
}

#[inline(always)]
fn timeout_ns(seconds: u32) -> u64 {
    seconds as u64 * 1_000_000_000
}

/// The real of a good template under `key`, refreshed.
#[inline(always)]
pub fn lookup(key: &PersistKey, service: &Service, now: u64) -> Option<u32> {
    // SAFETY: LRU values stay valid while the program runs.
    let template = unsafe { &mut *LB_PERSIST.get_ptr_mut(key)? };
    if clock::elapsed_ns(now, template.last_seen_ns) > timeout_ns(service.persistence_timeout) {
        return None;
    }
    let real_id = template.real_id;
    live_real(real_id, service.id)?;
    template.last_seen_ns = now;
    Some(real_id)
}

/// A new template (or a replacement for an expired or stale one).
#[inline(always)]
pub fn remember(key: &PersistKey, real_id: u32, now: u64) {
    let template = PersistState {
        real_id,
        _pad: 0,
        last_seen_ns: now,
    };
    // Only fails if the kernel cannot allocate; the connection goes ahead,
    // and the client's next one is scheduled afresh.
    let _ = LB_PERSIST.insert(key, &template, 0);
}

/// An established flow of a persistent service (`key`, placed on
/// `real_id`) was seen: refresh its client's template. A BPF function of
/// its own, like the scheduling (see `schedulers`): the masked key and the
/// lookup stay out of the balancer's frame.
#[inline(always)]
pub fn touch(key: &FlowKey, service: &Service, real_id: u32) {
    let packed = service.id as u64 | (service.persistence_prefix as u64) << 32;
    touch_call(key as *const FlowKey as usize, packed, real_id);
}

#[inline(never)]
fn touch_call(key: usize, packed: u64, real_id: u32) -> u64 {
    // SAFETY: the caller's flow key, in its frame, which outlives this call.
    let flow = unsafe { &*(key as *const FlowKey) };
    let template_key = self::key(&flow.src, (packed >> 32) as u8, packed as u32);
    let now = clock::now_ns();
    match LB_PERSIST.get_ptr_mut(&template_key) {
        // SAFETY: LRU values stay valid while the program runs.
        Some(template) => {
            let template = unsafe { &mut *template };
            // A newer connection was placed elsewhere (this one outlived
            // its template): the newer decision stands.
            if template.real_id == real_id {
                template.last_seen_ns = now;
            }
        }
        // Evicted, or reaped while the flow was idle: the flow still
        // holds its client to the real, as its template would in IPVS.
        None => remember(&template_key, real_id, now),
    }
    0
}

#[cfg(test)]
mod tests {
    use lb_common::{Addr, PersistKey};

    use super::key;

    #[test]
    fn clients_in_one_prefix_share_a_template_per_service() {
        let client = Addr::from_v4_octets([198, 18, 3, 77]);
        let neighbour = Addr::from_v4_octets([198, 18, 3, 200]);
        let expected = PersistKey {
            client: Addr::from_v4_octets([198, 18, 3, 0]),
            service_id: 7,
        };
        assert_eq!(key(&client, 24, 7), expected);
        assert_eq!(key(&neighbour, 24, 7), expected);
        assert_ne!(key(&client, 24, 8), expected);
        assert_ne!(key(&client, 32, 7), key(&neighbour, 32, 7));
    }
}
