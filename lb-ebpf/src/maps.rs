//! The maps, declared with the shared types from `lb-common`. Sizes here are
//! defaults; the daemon overrides them at load time and pins the maps itself
//! (so tests can load the same object without touching a running daemon's).

use aya_ebpf::{
    bindings::BPF_F_MMAPABLE,
    macros::map,
    maps::{Array, DevMapHash, HashMap, LruHashMap, PerCpuArray},
};
use lb_common::{
    FloodGuard, FlowCacheEntry, FlowKey, FlowState, GlobalCounter, NatRealKey, NatReply,
    NatReplyCacheEntry, NewFlowWindow, PersistKey, PersistState, Real, RealConns, Service,
    ServiceKey, Settings, TrafficCounters, VipInfo, VipKey, capacity,
};

#[map]
pub static LB_VIPS: HashMap<VipKey, VipInfo> = HashMap::with_max_entries(capacity::MAX_SERVICES, 0);

#[map]
pub static LB_SERVICES: HashMap<ServiceKey, Service> =
    HashMap::with_max_entries(capacity::MAX_SERVICES, 0);

#[map]
pub static LB_REALS: Array<Real> = Array::with_max_entries(capacity::MAX_REALS, 0);

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

/// Shared (not per-CPU) LRU: replies and retransmits may land on any CPU,
/// and the daemon must see one view of every flow.
#[map]
pub static LB_FLOWS: LruHashMap<FlowKey, FlowState> =
    LruHashMap::with_max_entries(capacity::DEFAULT_FLOW_TABLE_ENTRIES, 0);

/// Each CPU's exact-match cache in front of `LB_FLOWS` (see
/// `flow_cache.rs`): an array, so a lookup is an address computation the
/// verifier inlines, not a hash-table walk.
#[map]
pub static LB_FLOW_CACHE: PerCpuArray<FlowCacheEntry> =
    PerCpuArray::with_max_entries(capacity::FLOW_CACHE_SLOTS, 0);

/// Each CPU's cache of NAT replies, in front of the reply path (see
/// `nat/reply_cache.rs`); indexed like `LB_FLOW_CACHE`.
#[map]
pub static LB_NAT_REPLY_CACHE: PerCpuArray<NatReplyCacheEntry> =
    PerCpuArray::with_max_entries(capacity::FLOW_CACHE_SLOTS, 0);

/// Entry 0: the generation flow cache slots must carry to be used.
#[map]
pub static LB_FLOW_CACHE_GEN: Array<u32> = Array::with_max_entries(1, 0);

/// Entry 0: how many new flows a second each CPU records (see
/// `flood_guard.rs`).
#[map]
pub static LB_FLOOD_GUARD: Array<FloodGuard> = Array::with_max_entries(1, 0);

/// Each CPU's second of recorded new flows, for the flood guard.
#[map]
pub static LB_NEW_FLOW_WINDOW: PerCpuArray<NewFlowWindow> = PerCpuArray::with_max_entries(1, 0);

/// Egress interfaces for redirect, keyed by ifindex.
#[map]
pub static LB_TX_PORTS: DevMapHash = DevMapHash::with_max_entries(capacity::MAX_INTERFACES, 0);

#[map]
pub static LB_GLOBAL_STATS: PerCpuArray<u64> =
    PerCpuArray::with_max_entries(GlobalCounter::COUNT, 0);

#[map]
pub static LB_SVC_STATS: PerCpuArray<TrafficCounters> =
    PerCpuArray::with_max_entries(capacity::MAX_SERVICES, 0);

#[map]
pub static LB_REAL_STATS: PerCpuArray<TrafficCounters> =
    PerCpuArray::with_max_entries(capacity::MAX_REALS, 0);

/// Entry 0: idle timeouts per connection state (ipvsadm --set).
#[map]
pub static LB_SETTINGS: Array<Settings> = Array::with_max_entries(1, 0);

/// Addresses of reals behind NAT services: only packets from these can be
/// replies that need rewriting back to a VIP.
#[map]
pub static LB_NAT_REALS: HashMap<NatRealKey, u32> =
    HashMap::with_max_entries(capacity::MAX_REALS, 0);

/// NAT reply 5-tuple (real -> client) -> the VIP it must come from. Sized
/// like the flow table: one entry per NAT flow.
#[map]
pub static LB_NAT_REPLIES: LruHashMap<FlowKey, NatReply> =
    LruHashMap::with_max_entries(capacity::DEFAULT_FLOW_TABLE_ENTRIES, 0);

/// Connections per real, for the least-connection family. Shared, not
/// per-CPU: the schedulers compare totals, and the daemon writes the
/// recount from the flow table into it; new connections add to it with an
/// atomic add in between.
#[map]
pub static LB_REAL_CONNS: Array<RealConns> = Array::with_max_entries(capacity::MAX_REALS, 0);

/// Persistence templates: (masked client, service) -> real. Sized like the
/// flow table (at most one template per flow); an LRU, so a full table
/// forgets the templates idle longest.
#[map]
pub static LB_PERSIST: LruHashMap<PersistKey, PersistState> =
    LruHashMap::with_max_entries(capacity::DEFAULT_FLOW_TABLE_ENTRIES, 0);

/// rr / wrr: the next slot of each service's row to try. Per CPU, so each
/// CPU goes round its own way (no shared cache line written per new
/// connection); over many connections every CPU spreads them evenly.
#[map]
pub static LB_RR_CURSOR: PerCpuArray<u32> =
    PerCpuArray::with_max_entries(capacity::MAX_SERVICES, 0);

/// On the reals: local addresses the decap program strips tunnels for.
#[map]
pub static LB_DECAP_ADDRS: HashMap<VipKey, u32> =
    HashMap::with_max_entries(capacity::MAX_DECAP_ADDRS, 0);

/// Slots per service in `LB_MAGLEV`; set by the loader (`.rodata`).
#[unsafe(no_mangle)]
static LB_MAGLEV_TABLE_SIZE: u32 = capacity::DEFAULT_MAGLEV_TABLE_SIZE;

#[inline(always)]
pub fn maglev_table_size() -> u32 {
    // SAFETY: a plain read of a u32 static; volatile so the compiler does not
    // fold in the default that the loader rewrites.
    unsafe { core::ptr::read_volatile(&LB_MAGLEV_TABLE_SIZE) }
}
