//! Each CPU's exact-match cache in front of the flow table.
//!
//! A flow-table hit costs two hash lookups (the service, then the flow),
//! which are most of the program's time on an established flow. The cache
//! answers the same question with one array slot: the slot index is a
//! hash of the 5-tuple, the slot holds the full key and the decision.
//!
//! A slot answers only when the table path would write nothing (see
//! `lb_common::FlowCacheEntry` for the rules), so the flow table's
//! contents, timestamps and states are exactly what they would be without
//! the cache. Being per CPU, slots are written without atomics or locks;
//! a flow whose packets land on another CPU takes the table path once
//! there and is cached on that CPU too.

use aya_ebpf::{
    macros::map,
    maps::{Array, PerCpuArray},
};
use lb_common::{FlowCacheEntry, FlowKey, capacity, flow_hash::flow_cache_slot};

use crate::{
    clock,
    flow_state::{Choice, live_real, next_state, writes_flow_entry},
    parse::L4,
};

/// The cache itself: an array, so a lookup is an address computation the
/// verifier inlines, not a hash-table walk.
#[map]
pub static LB_FLOW_CACHE: PerCpuArray<FlowCacheEntry> =
    PerCpuArray::with_max_entries(capacity::FLOW_CACHE_SLOTS, 0);

/// Entry 0: the generation flow cache slots must carry to be used.
#[map]
pub static LB_FLOW_CACHE_GEN: Array<u32> = Array::with_max_entries(1, 0);

/// Compares the ten words of two keys with one branch instead of ten.
#[inline(always)]
pub fn same_flow(a: &FlowKey, b: &FlowKey) -> bool {
    let (a, b) = (words(a), words(b));
    let mut diff = 0;
    let mut i = 0;
    while i < a.len() {
        diff |= a[i] ^ b[i];
        i += 1;
    }
    diff == 0
}

#[inline(always)]
fn words(key: &FlowKey) -> &[u32; 10] {
    const _: () = assert!(core::mem::size_of::<FlowKey>() == 40);
    const _: () = assert!(core::mem::align_of::<FlowKey>() == 4);
    // SAFETY: FlowKey is repr(C), 40 bytes, 4-aligned, and every byte of
    // it is an initialised integer (the padding is a field).
    unsafe { &*(key as *const FlowKey as *const [u32; 10]) }
}

#[inline(always)]
pub fn generation() -> u32 {
    LB_FLOW_CACHE_GEN.get(0).copied().unwrap_or(0)
}

/// The cached decision for this packet, if the flow table would only
/// confirm it.
#[inline(always)]
pub fn find(key: &FlowKey, l4: &L4, now: u64) -> Option<Choice<'static>> {
    // A SYN schedules afresh (see `scheduling::choose_real`).
    if l4.is_tcp_syn {
        return None;
    }
    let slot = LB_FLOW_CACHE.get_ptr(flow_cache_slot(key))?;
    // SAFETY: this CPU's slot; nothing else writes it while we run.
    let slot = unsafe { &*slot };
    if !same_flow(&slot.key, key) || slot.generation != generation() {
        return None;
    }
    let next = next_state(slot.state, key.protocol, l4.tcp_flags, false);
    let idle = clock::elapsed_ns(now, slot.last_seen_ns);
    if writes_flow_entry(slot.state, next, idle) {
        return None;
    }
    let real = live_real(slot.real_id, slot.service_id)?;
    Some(Choice {
        real_id: slot.real_id,
        service_id: slot.service_id,
        real,
        new_connection: false,
        refreshed: false,
        key: *key,
    })
}

/// Caches what the flow table just said (or was just told) about `key`.
#[inline(always)]
pub fn remember(key: &FlowKey, real_id: u32, service_id: u32, last_seen_ns: u64, state: u8) {
    let Some(slot) = LB_FLOW_CACHE.get_ptr_mut(flow_cache_slot(key)) else {
        return;
    };
    // SAFETY: as in `find`.
    let slot = unsafe { &mut *slot };
    *slot = FlowCacheEntry {
        key: *key,
        real_id,
        service_id,
        last_seen_ns,
        generation: generation(),
        state,
        _pad: [0; 3],
    };
}

#[cfg(test)]
mod tests {
    use lb_common::{Addr, FlowKey, proto};

    use super::same_flow;

    fn key() -> FlowKey {
        FlowKey {
            src: Addr::from_v4_octets([198, 18, 0, 100]),
            dst: Addr::from_v4_octets([198, 18, 1, 10]),
            src_port: 40_000u16.to_be(),
            dst_port: 80u16.to_be(),
            protocol: proto::TCP,
            family: 4,
            _pad: [0; 2],
        }
    }

    #[test]
    fn a_key_is_the_same_flow_as_its_copy() {
        assert!(same_flow(&key(), &key()));
    }

    #[test]
    fn any_field_tells_flows_apart() {
        let changes: [fn(&mut FlowKey); 6] = [
            |k| k.src = Addr::from_v4_octets([198, 18, 0, 101]),
            |k| k.dst = Addr::from_v4_octets([198, 18, 1, 11]),
            |k| k.src_port ^= 1 << 15,
            |k| k.dst_port ^= 1,
            |k| k.protocol = proto::UDP,
            |k| k.family = 6,
        ];
        for (index, change) in changes.iter().enumerate() {
            let mut other = key();
            change(&mut other);
            assert!(!same_flow(&key(), &other), "change {index}");
            assert!(!same_flow(&other, &key()), "change {index}");
        }
    }
}
