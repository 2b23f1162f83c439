//! What a route lookup tells about a real: the route, or why there is none.

use std::net::IpAddr;

use netlink_packet_route::route::RouteAddress;

/// Why a real has no next hop (yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// The kernel has no route to it.
    NoRoute,
    /// ARP/ND has not answered (yet); the managed entry keeps trying.
    Resolving,
}

/// The kernel's route towards a real.
pub(super) struct Route {
    pub(super) ifindex: u32,
    pub(super) gateway: Option<IpAddr>,
    pub(super) source: Option<IpAddr>,
}

/// The IP address of a route attribute (gateway, preferred source).
pub(super) fn ip_of(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}
