//! Removes flows that have been idle past their state's timeout, and the
//! NAT reply entries that belong to them.
//!
//! The data plane already ignores an expired entry (it schedules the next
//! packet afresh), so this is about capacity: an LRU evicts the oldest
//! entries when full, but dead flows should not push live ones out first.

use anyhow::Result;
use lb_common::{FlowKey, FlowState, Real, Settings};

use crate::dataplane::Maps;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    pub flows: usize,
    pub nat_replies: usize,
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

/// One pass over the flow table.
pub fn reap(maps: &mut Maps, settings: &Settings, now_ns: u64) -> Result<Reaped> {
    let mut expired = Vec::new();
    for entry in maps.flows.iter() {
        // An entry evicted while we iterate just ends the walk early.
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
    use lb_common::{Addr, ConnectionState};

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
        assert!(!is_expired(
            &flow(ConnectionState::TcpEstablished),
            &settings,
            now(900)
        ));
        assert!(is_expired(
            &flow(ConnectionState::TcpEstablished),
            &settings,
            now(901)
        ));
        assert!(is_expired(
            &flow(ConnectionState::TcpClosing),
            &settings,
            now(121)
        ));
        assert!(!is_expired(
            &flow(ConnectionState::Udp),
            &settings,
            now(300)
        ));
        assert!(is_expired(
            &flow(ConnectionState::TcpSynSeen),
            &settings,
            now(121)
        ));
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
