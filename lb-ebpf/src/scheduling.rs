//! Which service a packet belongs to and which real serves it: the flow
//! table first, the service's scheduler (and persistence) for new flows.

use lb_common::{
    FlowKey, FlowState, GlobalCounter, Real, SETTINGS_EXPIRE_NODEST_CONN, Service, ServiceKey,
    Settings, VipKey,
};

use crate::{
    clock,
    counters::count,
    flood_guard, flow_cache,
    flow_state::{Choice, live_real, next_state, writes_flow_entry},
    maps::{LB_FLOWS, LB_SERVICES, LB_SETTINGS, LB_VIPS},
    parse::{L3, L4},
    persistence, schedulers,
};

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

#[inline(always)]
pub fn settings() -> Settings {
    LB_SETTINGS
        .get(0)
        .copied()
        .unwrap_or(Settings::IPVS_DEFAULTS)
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
        match follow_flow(flow, l3, l4, service, &key, now) {
            Followed::Real { real, refreshed } => {
                return Ok(Choice {
                    real_id: flow.real_id,
                    service_id: service.id,
                    real,
                    new_connection: false,
                    refreshed,
                    key,
                });
            }
            Followed::Dropped(reason) => return Err(reason),
            Followed::Rescheduled => {}
        }
    }
    schedule_new_flow(l3, l4, service, &key, now)
}

/// What became of a packet of a flow in the table.
enum Followed {
    /// It goes to the flow's real; `refreshed` as in [`Choice`].
    Real {
        real: &'static Real,
        refreshed: bool,
    },
    /// It is dropped, for this reason.
    Dropped(GlobalCounter),
    /// It is scheduled as a new connection: the flow idled out, or its
    /// real is gone and the settings say to reschedule.
    Rescheduled,
}

/// A packet of a flow in the table: its real, with the flow's entry
/// brought up to date.
#[inline(always)]
fn follow_flow(
    flow: &mut FlowState,
    l3: &L3,
    l4: &L4,
    service: &Service,
    key: &FlowKey,
    now: u64,
) -> Followed {
    let idle = clock::elapsed_ns(now, flow.last_seen_ns);
    let settings = settings();
    if idle > settings.for_state_ns(flow.state) {
        count(GlobalCounter::FlowExpired);
        return Followed::Rescheduled;
    }
    let Some(real) = live_real(flow.real_id, service.id) else {
        if settings.flags & SETTINGS_EXPIRE_NODEST_CONN != 0 {
            // IPVS's expire_nodest_conn: the connection is given up and
            // the packet scheduled as a new one.
            count(GlobalCounter::FlowRescheduled);
            return Followed::Rescheduled;
        }
        // IPVS's default: the packets of a connection whose real was
        // removed are dropped until it idles out (the entry is left
        // alone: the real may come back, as its id in the same service).
        return Followed::Dropped(GlobalCounter::DropRealRemoved);
    };
    let state = next_state(flow.state, l3.protocol, l4.tcp_flags, false);
    let refreshed = writes_flow_entry(flow.state, state, idle);
    if refreshed {
        flow.state = state;
        flow.last_seen_ns = now;
        if service.persistence_timeout != 0 {
            persistence::touch(key, service, flow.real_id);
        }
    }
    flow_cache::remember(key, flow.real_id, service.id, flow.last_seen_ns, flow.state);
    count(GlobalCounter::FlowHit);
    Followed::Real { real, refreshed }
}

/// A new connection: the scheduler's real, recorded in the flow table (and
/// this CPU's flow cache) unless the flood guard says otherwise.
#[inline(always)]
fn schedule_new_flow(
    l3: &L3,
    l4: &L4,
    service: &Service,
    key: &FlowKey,
    now: u64,
) -> Result<Choice<'static>, GlobalCounter> {
    let real_id = schedulers::new_connection(key, service, now);
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
        let _ = LB_FLOWS.insert(key, &state, 0);
        flow_cache::remember(key, real_id, service.id, now, state.state);
    } else {
        // Not cached either: a slot answers only for flows in the table.
        count(GlobalCounter::FlowUnrecorded);
    }
    count(GlobalCounter::FlowNew);
    Ok(Choice {
        real_id,
        service_id: service.id,
        real,
        new_connection: true,
        refreshed: true,
        key: *key,
    })
}
