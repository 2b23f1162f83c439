//! The maps several parts of the data plane share, declared with the shared
//! types from `lb-common`; a map only one part uses lives with that part
//! (the flow cache, the flood guard, the counters, persistence, the
//! schedulers' rows and round-robin cursors). Sizes here are defaults; the
//! daemon overrides them at load time and pins the maps itself (so tests
//! can load the same object without touching a running daemon's).

use aya_ebpf::{
    macros::map,
    maps::{Array, DevMapHash, HashMap, LruHashMap, PerCpuArray},
};
use lb_common::{
    FlowKey, FlowState, NatRealKey, NatReply, NatReplyCacheEntry, Real, RealConns, Service,
    ServiceKey, Settings, VipInfo, VipKey, capacity,
};

#[map]
pub static LB_VIPS: HashMap<VipKey, VipInfo> = HashMap::with_max_entries(capacity::MAX_SERVICES, 0);

#[map]
pub static LB_SERVICES: HashMap<ServiceKey, Service> =
    HashMap::with_max_entries(capacity::MAX_SERVICES, 0);

#[map]
pub static LB_REALS: Array<Real> = Array::with_max_entries(capacity::MAX_REALS, 0);

/// Shared (not per-CPU) LRU: replies and retransmits may land on any CPU,
/// and the daemon must see one view of every flow.
#[map]
pub static LB_FLOWS: LruHashMap<FlowKey, FlowState> =
    LruHashMap::with_max_entries(capacity::DEFAULT_FLOW_TABLE_ENTRIES, 0);

/// Each CPU's cache of NAT replies, in front of the reply path (see
/// `forward/nat/reply_cache.rs`); indexed like `LB_FLOW_CACHE`.
#[map]
pub static LB_NAT_REPLY_CACHE: PerCpuArray<NatReplyCacheEntry> =
    PerCpuArray::with_max_entries(capacity::FLOW_CACHE_SLOTS, 0);

/// Egress interfaces for redirect, keyed by ifindex.
#[map]
pub static LB_TX_PORTS: DevMapHash = DevMapHash::with_max_entries(capacity::MAX_INTERFACES, 0);

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

/// On the reals: local addresses the decap program strips tunnels for.
#[map]
pub static LB_DECAP_ADDRS: HashMap<VipKey, u32> =
    HashMap::with_max_entries(capacity::MAX_DECAP_ADDRS, 0);
