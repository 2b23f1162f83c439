//! A flow's state, as every path that follows flows reads it: the key a
//! packet's flow is filed under, the state a packet moves it to, whether
//! the packet writes the flow's entry, the decision a packet leaves with,
//! and whether the real a remembered decision names may still be used.
//!
//! The flow table path (`scheduling`), the flow cache, persistence
//! templates and NAT's reverse entries all build on this module; it builds
//! on none of them.

use lb_common::{ConnectionState, FlowKey, NO_REAL, Real, proto};

use crate::{
    maps::LB_REALS,
    parse::{L3, L4},
    wire::l4::{TCP_FIN, TCP_RST},
};

/// Refresh a flow's timestamp at most this often: fewer writes to a shared
/// map line on the hot path, and one-second resolution is plenty for aging.
pub const LAST_SEEN_GRANULARITY_NS: u64 = 1_000_000_000;

/// Which real a packet goes to, and what the flow table did on the way.
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

#[cfg(test)]
mod tests;
