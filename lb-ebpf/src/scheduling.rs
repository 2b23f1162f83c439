//! Which service a packet belongs to and which real serves it: the flow
//! table first, the service's scheduler (and persistence) for new flows.

use lb_common::{
    ConnectionState, FlowKey, FlowState, GlobalCounter, NO_REAL, Real, SETTINGS_EXPIRE_NODEST_CONN,
    Service, ServiceKey, Settings, VipKey, proto,
};

use crate::{
    clock, flood_guard, flow_cache,
    maps::{LB_FLOWS, LB_REALS, LB_SERVICES, LB_SETTINGS, LB_VIPS},
    parse::{L3, L4, TCP_FIN, TCP_RST},
    persistence, schedulers,
};

/// Refresh a flow's timestamp at most this often: fewer writes to a shared
/// map line on the hot path, and one-second resolution is plenty for aging.
pub const LAST_SEEN_GRANULARITY_NS: u64 = 1_000_000_000;

#[inline(always)]
pub fn is_vip(l3: &L3) -> bool {
    let key = VipKey {
        addr: l3.dst,
        family: l3.family as u8,
        _pad: [0; 3],
    };
    LB_VIPS.get_ptr(&key).is_some()
}

/// The service for (VIP, port, protocol) exactly.
#[inline(always)]
pub fn find_exact_service(l3: &L3, l4: &L4) -> Option<Service> {
    find_service_on_port(l3, l4.dst_port)
}

/// The VIP's port-0 ("every port") service.
#[inline(always)]
pub fn find_every_port_service(l3: &L3) -> Option<Service> {
    find_service_on_port(l3, 0)
}

#[inline(always)]
fn find_service_on_port(l3: &L3, port_be: u16) -> Option<Service> {
    let key = ServiceKey {
        addr: l3.dst,
        port_be,
        protocol: l3.protocol,
        family: l3.family as u8,
    };
    // SAFETY: hash map values are valid while this program runs.
    LB_SERVICES.get_ptr(&key).map(|service| unsafe { *service })
}

pub struct Choice<'a> {
    pub real_id: u32,
    pub service_id: u32,
    pub real: &'a Real,
    pub new_connection: bool,
    /// This packet wrote the flow's entry (a new flow, a state change, or
    /// the once-a-second timestamp): the moment for checks too costly to
    /// make on every packet.
    pub refreshed: bool,
    /// The flow's key (client -> VIP), for NAT's reverse entry.
    pub key: FlowKey,
}

/// The state a flow moves to on this packet (IPVS-like, simplified): a
/// FIN or RST closes, any other packet after the SYN establishes.
#[inline(always)]
pub fn next_state(current: u8, protocol: u8, tcp_flags: u8, is_tcp_syn: bool) -> u8 {
    if protocol != proto::TCP {
        return ConnectionState::Udp as u8;
    }
    if tcp_flags & (TCP_FIN | TCP_RST) != 0 {
        return ConnectionState::TcpClosing as u8;
    }
    if is_tcp_syn {
        return ConnectionState::TcpSynSeen as u8;
    }
    if current == ConnectionState::TcpClosing as u8 {
        return current;
    }
    ConnectionState::TcpEstablished as u8
}

/// Whether a packet of an established flow writes its table entry: when
/// it changes the flow's state, and once a second for the timestamp. The
/// flow cache answers exactly the packets for which this is false.
#[inline(always)]
pub fn writes_flow_entry(state: u8, next_state: u8, idle_ns: u64) -> bool {
    next_state != state || idle_ns > LAST_SEEN_GRANULARITY_NS
}

#[inline(always)]
pub fn settings() -> Settings {
    LB_SETTINGS
        .get(0)
        .copied()
        .unwrap_or(Settings::IPVS_DEFAULTS)
}

/// The flow table's key for this packet (client -> VIP).
#[inline(always)]
pub fn flow_key(l3: &L3, l4: &L4) -> FlowKey {
    FlowKey {
        src: l3.src,
        dst: l3.dst,
        src_port: l4.src_port,
        dst_port: l4.dst_port,
        protocol: l3.protocol,
        family: l3.family as u8,
        _pad: [0; 2],
    }
}

/// Picks the real for this packet, recording new flows (in the flow table
/// and this CPU's flow cache). The error is the drop counter that explains
/// why no real could be chosen.
#[inline(always)]
pub fn choose_real(
    l3: &L3,
    l4: &L4,
    service: &Service,
    key: FlowKey,
    now: u64,
) -> Result<Choice<'static>, GlobalCounter> {
    // A SYN always schedules afresh: a client reusing a port must not stick
    // to the real an old, dead connection went to.
    if !l4.is_tcp_syn
        && let Some(flow) = LB_FLOWS.get_ptr_mut(&key)
    {
        // SAFETY: LRU values stay valid for the duration of the program.
        let flow = unsafe { &mut *flow };
        let idle = clock::elapsed_ns(now, flow.last_seen_ns);
        let settings = settings();
        if idle > settings.for_state_ns(flow.state) {
            crate::counters::count(GlobalCounter::FlowExpired);
        } else if let Some(real) = live_real(flow.real_id, service.id) {
            let state = next_state(flow.state, l3.protocol, l4.tcp_flags, false);
            let refreshed = writes_flow_entry(flow.state, state, idle);
            if refreshed {
                flow.state = state;
                flow.last_seen_ns = now;
                if service.persistence_timeout != 0 {
                    persistence::touch(&key, service, flow.real_id);
                }
            }
            flow_cache::remember(
                &key,
                flow.real_id,
                service.id,
                flow.last_seen_ns,
                flow.state,
            );
            crate::counters::count(GlobalCounter::FlowHit);
            return Ok(Choice {
                real_id: flow.real_id,
                service_id: service.id,
                real,
                new_connection: false,
                refreshed,
                key,
            });
        } else if settings.flags & SETTINGS_EXPIRE_NODEST_CONN != 0 {
            // IPVS's expire_nodest_conn: the connection is given up and
            // the packet scheduled as a new one.
            crate::counters::count(GlobalCounter::FlowRescheduled);
        } else {
            // IPVS's default: the packets of a connection whose real was
            // removed are dropped until it idles out (the entry is left
            // alone: the real may come back, as its id in the same service).
            return Err(GlobalCounter::DropRealRemoved);
        }
    }
    let real_id = schedulers::new_connection(&key, service, now);
    let Some(real) = live_real(real_id, service.id) else {
        return Err(GlobalCounter::DropNoReal);
    };
    let state = FlowState {
        real_id,
        service_id: service.id,
        last_seen_ns: now,
        state: next_state(0, l3.protocol, l4.tcp_flags, l4.is_tcp_syn),
        _pad: [0; 7],
    };
    if flood_guard::records(service, real, now) {
        // A full LRU evicts its oldest entry, so insert only fails on a
        // kernel allocation failure; the packet still goes to the
        // scheduler's choice, and the next packet of the flow is scheduled
        // again.
        let _ = LB_FLOWS.insert(&key, &state, 0);
        flow_cache::remember(&key, real_id, service.id, now, state.state);
    } else {
        // Not cached either: a slot answers only for flows in the table.
        crate::counters::count(GlobalCounter::FlowUnrecorded);
    }
    crate::counters::count(GlobalCounter::FlowNew);
    Ok(Choice {
        real_id,
        service_id: service.id,
        real,
        new_connection: true,
        refreshed: true,
        key,
    })
}

/// The real with this id if it is configured and still belongs to the
/// service (an id freed by a removal may have been given to another one).
#[inline(always)]
pub fn live_real(real_id: u32, service_id: u32) -> Option<&'static Real> {
    if real_id == NO_REAL {
        return None;
    }
    let real = LB_REALS.get(real_id)?;
    real.is_live(service_id).then_some(real)
}
