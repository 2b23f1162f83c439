//! Removes flows that have been idle past their state's timeout, the NAT
//! reply entries that belong to them, and persistence templates past their
//! service's timeout; and counts the live connections per real, which the
//! least-connection schedulers read.
//!
//! The data plane already ignores an expired entry (it schedules the next
//! packet afresh), so this is about capacity: an LRU evicts the oldest
//! entries when full, but dead flows should not push live ones out first.

use std::collections::HashMap;

use anyhow::Result;
use lb_common::{
    ConnectionState, FlowKey, FlowState, PersistState, REAL_ACTIVE, Real, RealConns, Settings,
};

use crate::dataplane::{Maps, batch};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    pub flows: usize,
    pub nat_replies: usize,
    /// Persistence templates.
    pub templates: usize,
}

/// The key a NAT reply of this flow arrives with (real -> client).
pub fn nat_reply_key(forward: &FlowKey, real: &Real) -> FlowKey {
    FlowKey {
        src: real.addr,
        dst: forward.src,
        // Port-0 NAT services keep the client's destination port.
        src_port: if real.port_be == 0 {
            forward.dst_port
        } else {
            real.port_be
        },
        dst_port: forward.src_port,
        protocol: forward.protocol,
        family: forward.family,
        _pad: [0; 2],
    }
}

pub fn is_expired(flow: &FlowState, settings: &Settings, now_ns: u64) -> bool {
    now_ns.saturating_sub(flow.last_seen_ns) > settings.for_state_ns(flow.state)
}

/// Whether a persistence template has outlived its service's timeout
/// (seconds; 0: the service is no longer persistent, or is gone).
pub fn is_template_expired(template: &PersistState, timeout_s: u32, now_ns: u64) -> bool {
    timeout_s == 0
        || now_ns.saturating_sub(template.last_seen_ns) > u64::from(timeout_s) * 1_000_000_000
}

/// One pass over the flow table and one over the persistence templates
/// (their timeouts are read from `LB_SERVICES`; a template of a service
/// that is gone or no longer persistent goes too).
pub fn reap(maps: &mut Maps, settings: &Settings, now_ns: u64) -> Result<Reaped> {
    let mut reaped = reap_flows(maps, settings, now_ns)?;
    reaped.templates = reap_templates(maps, &persistence_timeouts(maps), now_ns);
    Ok(reaped)
}

/// Persistence timeout (seconds) per service id, as `LB_SERVICES` holds
/// them.
pub fn persistence_timeouts(maps: &Maps) -> HashMap<u32, u32> {
    maps.services
        .iter()
        .map_while(Result::ok)
        .map(|(_, service)| (service.id, service.persistence_timeout))
        .collect()
}

/// Removes the templates past their service's timeout (`timeouts`: seconds
/// per service id; a service missing from it has none).
pub fn reap_templates(maps: &mut Maps, timeouts: &HashMap<u32, u32>, now_ns: u64) -> usize {
    let expired: Vec<_> = batch::entries(&maps.persist)
        // A batch the kernel refuses just ends the walk early.
        .map_while(Result::ok)
        .filter(|(key, template)| {
            let timeout = timeouts.get(&key.service_id).copied().unwrap_or(0);
            is_template_expired(template, timeout, now_ns)
        })
        .map(|(key, _)| key)
        .collect();
    expired
        .iter()
        .filter(|key| maps.persist.remove(key).is_ok())
        .count()
}

/// Live connections per real id, as IPVS counts them: established TCP
/// connections are active, every other unexpired flow (handshake, closing,
/// UDP) inactive. A flow counts for its real only while that real is
/// configured in the flow's service (an id freed by a removal may belong to
/// another service's real by now).
///
/// One batched walk of the flow table (a syscall per few thousand
/// entries, and one per distinct real).
pub fn count_connections(maps: &Maps, settings: &Settings, now_ns: u64) -> HashMap<u32, RealConns> {
    let mut services: HashMap<u32, Option<u32>> = HashMap::new();
    let mut service_of = |real_id: u32| {
        *services.entry(real_id).or_insert_with(|| {
            maps.reals
                .get(&real_id, 0)
                .ok()
                .filter(|real| real.flags & REAL_ACTIVE != 0)
                .map(|real| real.service_id)
        })
    };
    tally(
        batch::entries(&maps.flows).map_while(Result::ok),
        settings,
        now_ns,
        &mut service_of,
    )
}

/// [`count_connections`] over any flows; `service_of(real id)` is the
/// service a configured real belongs to.
pub fn tally(
    flows: impl Iterator<Item = (FlowKey, FlowState)>,
    settings: &Settings,
    now_ns: u64,
    mut service_of: impl FnMut(u32) -> Option<u32>,
) -> HashMap<u32, RealConns> {
    let mut counts: HashMap<u32, RealConns> = HashMap::new();
    for (_, flow) in flows {
        if is_expired(&flow, settings, now_ns) || service_of(flow.real_id) != Some(flow.service_id)
        {
            continue;
        }
        let conns = counts.entry(flow.real_id).or_default();
        if flow.state == ConnectionState::TcpEstablished as u8 {
            conns.active += 1;
        } else {
            conns.inactive += 1;
        }
    }
    counts
}

/// Writes `counts` into `LB_REAL_CONNS` for every id of `real_ids`, zero
/// for those without flows. Overwrites whatever the data plane added since
/// the count (each new connection adds one): the recount is the truth.
pub fn write_connection_counts(
    maps: &mut Maps,
    counts: &HashMap<u32, RealConns>,
    real_ids: impl Iterator<Item = u32>,
) -> Result<()> {
    for real_id in real_ids {
        let conns = counts.get(&real_id).copied().unwrap_or_default();
        maps.real_conns.set(real_id, conns, 0)?;
    }
    Ok(())
}

/// One pass over the flow table.
fn reap_flows(maps: &mut Maps, settings: &Settings, now_ns: u64) -> Result<Reaped> {
    let mut expired = Vec::new();
    for entry in batch::entries(&maps.flows) {
        // A batch the kernel refuses just ends the walk early.
        let Ok((key, flow)) = entry else { break };
        if is_expired(&flow, settings, now_ns) {
            expired.push((key, flow));
        }
    }
    let mut reaped = Reaped::default();
    for (key, flow) in expired {
        if maps.flows.remove(&key).is_ok() {
            reaped.flows += 1;
        }
        if let Ok(real) = maps.reals.get(&flow.real_id, 0)
            && maps.nat_replies.remove(&nat_reply_key(&key, &real)).is_ok()
        {
            reaped.nat_replies += 1;
        }
    }
    Ok(reaped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_common::Addr;

    #[test]
    fn expiry_follows_the_state_timeouts() {
        let settings = Settings::IPVS_DEFAULTS;
        let second = 1_000_000_000;
        let flow = |state: ConnectionState| FlowState {
            last_seen_ns: 1_000 * second,
            state: state as u8,
            ..FlowState::default()
        };
        let now = |idle: u64| 1_000 * second + idle * second;
        // (state, seconds idle, expired)
        let cases = [
            (ConnectionState::TcpEstablished, 900, false),
            (ConnectionState::TcpEstablished, 901, true),
            (ConnectionState::TcpClosing, 121, true),
            (ConnectionState::Udp, 300, false),
            (ConnectionState::TcpSynSeen, 121, true),
        ];
        for (state, idle, expired) in cases {
            assert_eq!(
                is_expired(&flow(state), &settings, now(idle)),
                expired,
                "{state:?} after {idle} s"
            );
        }
    }

    #[test]
    fn templates_expire_after_their_service_timeout() {
        let second = 1_000_000_000;
        let template = PersistState {
            real_id: 7,
            _pad: 0,
            last_seen_ns: 1_000 * second,
        };
        let now = |idle: u64| 1_000 * second + idle * second;
        assert!(!is_template_expired(&template, 300, now(300)));
        assert!(is_template_expired(&template, 300, now(301)));
        assert!(!is_template_expired(&template, 3_600, now(301)));
        assert!(is_template_expired(&template, 0, now(0)), "not persistent");
    }

    #[test]
    fn connections_count_active_when_established_and_skip_the_dead() {
        let settings = Settings::IPVS_DEFAULTS;
        let second = 1_000_000_000;
        let now = 10_000 * second;
        let flow = |real_id: u32, service_id: u32, state: ConnectionState, idle: u64| {
            let key = FlowKey {
                src_port: (real_id * 100 + idle as u32) as u16,
                protocol: 6,
                ..FlowKey::default()
            };
            let flow = FlowState {
                real_id,
                service_id,
                last_seen_ns: now - idle * second,
                state: state as u8,
                ..FlowState::default()
            };
            (key, flow)
        };
        let flows = vec![
            flow(1, 1, ConnectionState::TcpEstablished, 1),
            flow(1, 1, ConnectionState::TcpEstablished, 2),
            flow(1, 1, ConnectionState::TcpSynSeen, 3),
            flow(1, 1, ConnectionState::TcpClosing, 4),
            flow(2, 1, ConnectionState::Udp, 5),
            // Expired: established past 900 s, SYN_RECV past 120 s.
            flow(2, 1, ConnectionState::TcpEstablished, 901),
            flow(2, 1, ConnectionState::TcpSynSeen, 121),
            // Real 3 now belongs to service 2: service 1's flow is stale.
            flow(3, 1, ConnectionState::TcpEstablished, 1),
            flow(3, 2, ConnectionState::TcpEstablished, 1),
            // Real 4 is gone.
            flow(4, 1, ConnectionState::Udp, 1),
        ];
        let service_of = |real_id: u32| match real_id {
            1 | 2 => Some(1),
            3 => Some(2),
            _ => None,
        };
        let counts = tally(flows.into_iter(), &settings, now, service_of);
        let conns = |active, inactive| RealConns { active, inactive };
        assert_eq!(counts.get(&1), Some(&conns(2, 2)));
        assert_eq!(counts.get(&2), Some(&conns(0, 1)));
        assert_eq!(counts.get(&3), Some(&conns(1, 0)));
        assert_eq!(counts.get(&4), None);
    }

    #[test]
    fn the_reply_key_mirrors_the_flow_through_the_real() {
        let forward = FlowKey {
            src: Addr::from_v4_octets([198, 19, 0, 7]),
            dst: Addr::from_v4_octets([198, 18, 1, 10]),
            src_port: 40_000u16.to_be(),
            dst_port: 80u16.to_be(),
            protocol: 6,
            family: 4,
            _pad: [0; 2],
        };
        let real = Real {
            addr: Addr::from_v4_octets([198, 18, 2, 11]),
            port_be: 8080u16.to_be(),
            ..Real::default()
        };
        let reply = nat_reply_key(&forward, &real);
        assert_eq!(reply.src, real.addr);
        assert_eq!(reply.dst, forward.src);
        assert_eq!(u16::from_be(reply.src_port), 8080);
        assert_eq!(u16::from_be(reply.dst_port), 40_000);
        let port_zero = Real { port_be: 0, ..real };
        assert_eq!(
            u16::from_be(nat_reply_key(&forward, &port_zero).src_port),
            80
        );
    }
}
