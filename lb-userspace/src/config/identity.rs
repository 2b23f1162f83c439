//! How the data plane names what the config declares: a service by its
//! [`ServiceKey`], its VIP by a [`VipKey`], a real by its [`RealIdentity`]
//! (ids are handed out per identity) and its [`identity_bytes`] (Maglev's
//! order), plus the run-time [`Settings`] a config asks for. Health
//! checking and the reconciler both name objects this way, so it lives with
//! the config types rather than with either of them.

use std::{collections::BTreeSet, net::IpAddr};

use lb_common::{
    Addr, Family, SETTINGS_EXPIRE_NODEST_CONN, SETTINGS_NO_ECHO_REPLY, ServiceKey, Settings, VipKey,
};

use super::schema::{Config, RealConfig, ServiceConfig};

/// A destination: one real within one service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RealIdentity {
    pub service_id: u32,
    pub address: IpAddr,
    pub port: u16,
}

impl RealIdentity {
    pub fn new(service_id: u32, real: &RealConfig) -> Self {
        Self {
            service_id,
            address: real.address,
            port: real.port,
        }
    }
}

pub fn service_key(service: &ServiceConfig) -> ServiceKey {
    ServiceKey {
        addr: Addr::from(service.vip),
        port_be: service.port.to_be(),
        protocol: service.protocol.number(),
        family: Family::of(&service.vip) as u8,
    }
}

/// The VIP a service listens on.
pub fn vip_key(key: &ServiceKey) -> VipKey {
    VipKey {
        addr: key.addr,
        family: key.family,
        _pad: [0; 3],
    }
}

/// An address as the address-keyed maps name it (`LB_VIPS`, and
/// `LB_NAT_REALS` for a NAT real's address).
pub fn address_key(address: IpAddr) -> VipKey {
    VipKey {
        addr: Addr::from(address),
        family: Family::of(&address) as u8,
        _pad: [0; 3],
    }
}

/// The data plane's run-time settings for `config`.
pub fn settings_of(config: &Config) -> Settings {
    Settings {
        tcp: config.timeouts.tcp,
        tcp_fin: config.timeouts.tcp_fin,
        udp: config.timeouts.udp,
        flags: if config.icmp_echo_reply {
            0
        } else {
            SETTINGS_NO_ECHO_REPLY
        } | if config.expire_nodest_conn {
            SETTINGS_EXPIRE_NODEST_CONN
        } else {
            0
        },
    }
}

/// Maglev's notion of "the same real": its address and port, never an id,
/// so every balancer with the same config builds the same table.
pub fn identity_bytes(address: IpAddr, port: u16) -> Vec<u8> {
    let mut bytes = match address {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    bytes.extend_from_slice(&port.to_be_bytes());
    bytes
}

/// Every real address the config names, sorry servers included (the
/// resolver's work list), each once and in order.
pub fn real_addresses(config: &Config) -> Vec<IpAddr> {
    let mut addresses = BTreeSet::new();
    for service in &config.services {
        let reals = service.reals.iter().chain(&service.health.sorry_server);
        addresses.extend(reals.map(|real| real.address));
    }
    addresses.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_address_then_port() {
        assert_eq!(
            identity_bytes("198.18.2.11".parse().unwrap(), 80),
            vec![198, 18, 2, 11, 0, 80]
        );
    }
}
