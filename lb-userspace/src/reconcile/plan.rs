//! What the maps should hold for a config: worked out without touching
//! them, from the config, the ids, the next hops and the marks (health
//! verdicts, overloaded reals). [`super::write`] then compares it with what
//! the maps hold and writes the difference.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
};

use lb_common::{
    Addr, Family, FloodGuard, NatRealKey, REAL_ACTIVE, REAL_DOWN, REAL_NEXT_HOP_KNOWN,
    REAL_OVERLOADED, Real, Scheduler, Service, ServiceKey, Settings, VipInfo, VipKey,
};
use tracing::warn;

use crate::{
    config::{
        Config, Forwarding, RealConfig, ServiceConfig,
        identity::{RealIdentity, address_key, identity_bytes, service_key, settings_of, vip_key},
        sched_flag_bits,
    },
    health::{admission::Mark, tracker::RealKey},
    neighbours::Resolution,
    reconcile::ids::Ids,
    rows::RowReal,
};

/// What a real's entry carries besides its config and next hop.
pub struct Marks<'a> {
    /// Health checking's verdicts: a removed real keeps its id and entry
    /// (flagged [`REAL_DOWN`]) but gets no slots.
    pub health: &'a HashMap<RealKey, Mark>,
    /// Reals over their upper connection threshold (the daemon decides).
    pub overloaded: &'a BTreeSet<u32>,
}

/// The contents the maps should have.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Desired {
    /// `LB_REALS`, by id.
    pub reals: HashMap<u32, Real>,
    /// `LB_SERVICES`, in the config's order. Each entry's `row_len` is 0
    /// here: it is its row's, known once the row is built.
    pub services: Vec<(ServiceKey, Service)>,
    /// What each service's row of `LB_MAGLEV` is built from, in the same
    /// order.
    pub rows: Vec<RowPlan>,
    pub vips: BTreeMap<VipKey, VipInfo>,
    pub nat_reals: BTreeSet<NatRealKey>,
    pub settings: Settings,
    pub flood_guard: FloodGuard,
}

/// What one service's scheduling row is built from.
#[derive(Debug, PartialEq, Eq)]
pub struct RowSource {
    pub scheduler: Scheduler,
    pub candidates: Vec<RowReal>,
}

/// A service's row, to build and write unless it was built from the same
/// source last time.
#[derive(Debug, PartialEq, Eq)]
pub struct RowPlan {
    pub service_id: u32,
    pub source: RowSource,
}

/// The map contents for `config` under `ids`. Reals without a next hop get
/// no slots in their service's row: they could not be reached, so new
/// flows go elsewhere. (It logs why a resolved real still cannot be sent
/// to, and touches nothing else.)
pub fn desired(
    config: &Config,
    ids: &Ids,
    next_hops: &HashMap<IpAddr, Resolution>,
    marks: &Marks,
) -> Desired {
    let mut desired = Desired {
        nat_reals: nat_reals(config),
        settings: settings_of(config),
        flood_guard: FloodGuard {
            new_flows_per_second: config.flood_guard.new_flows_per_second,
            _pad: 0,
        },
        ..Desired::default()
    };
    for service in &config.services {
        let key = service_key(service);
        let service_id = ids.services[&key];
        let mut candidates = Vec::with_capacity(service.reals.len());
        for real in &service.reals {
            let identity = RealIdentity::new(service_id, real);
            let id = ids.reals[&identity];
            let mark = marks.health.get(&RealKey::new(key, real));
            let next_hop = next_hops.get(&real.address);
            let mut entry = real_entry(
                identity,
                real,
                service.forwarding_of(real),
                next_hop,
                config,
            );
            if marks.overloaded.contains(&id) {
                entry.flags |= REAL_OVERLOADED;
            }
            let mark = mark.copied().unwrap_or_default();
            if mark.removed {
                entry.flags |= REAL_DOWN;
            }
            entry.health = mark.health as u8;
            desired.reals.insert(id, entry);
            candidates.push(row_real(real, id, entry.flags));
        }
        let scheduler = service.scheduler.dataplane();
        desired
            .services
            .push((key, service_entry(service, service_id)));
        desired.rows.push(RowPlan {
            service_id,
            source: RowSource {
                scheduler,
                candidates,
            },
        });
        desired.vips.entry(vip_key(&key)).or_default().services += 1;
    }
    desired
}

/// A real as its service's row sees it: weight 0 (no new connections)
/// unless it can be reached and health checking has not removed it.
fn row_real(real: &RealConfig, id: u32, flags: u8) -> RowReal {
    let schedulable = flags & REAL_NEXT_HOP_KNOWN != 0 && flags & REAL_DOWN == 0;
    RowReal {
        identity: identity_bytes(real.address, real.port),
        id,
        weight: if schedulable { real.weight } else { 0 },
    }
}

/// The service entry, but for its row's length.
fn service_entry(service: &ServiceConfig, id: u32) -> Service {
    Service {
        id,
        scheduler: service.scheduler.dataplane() as u8,
        sched_flags: sched_flag_bits(&service.scheduler_flags),
        persistence_prefix: service.persistence.map_or(0, |p| p.prefix),
        persistence_timeout: service.persistence.map_or(0, |p| p.timeout),
        row_len: 0,
        _pad: 0,
    }
}

/// Addresses of NAT reals: the data plane looks for replies only from
/// these.
fn nat_reals(config: &Config) -> BTreeSet<NatRealKey> {
    let mut keys = BTreeSet::new();
    for service in &config.services {
        let nat = |real: &&RealConfig| service.forwarding_of(real) == Forwarding::Nat;
        keys.extend(
            service
                .reals
                .iter()
                .filter(nat)
                .map(|real| address_key(real.address)),
        );
    }
    keys
}

/// A real's entry from its config and next hop; flagged
/// [`REAL_NEXT_HOP_KNOWN`] only if frames can be sent to it the way its
/// forwarding method needs.
fn real_entry(
    identity: RealIdentity,
    config_real: &RealConfig,
    forwarding: Forwarding,
    next_hop: Option<&Resolution>,
    config: &Config,
) -> Real {
    let mut real = Real {
        addr: Addr::from(identity.address),
        family: Family::of(&identity.address) as u8,
        forwarding: forwarding.dataplane() as u8,
        flags: REAL_ACTIVE,
        port_be: identity.port.to_be(),
        service_id: identity.service_id,
        weight: config_real.weight,
        upper_threshold: config_real.upper_threshold,
        lower_threshold: config_real.lower_threshold,
        ..Real::default()
    };
    let Some(Ok(hop)) = next_hop else {
        return real;
    };
    if let (Forwarding::Dr, Some(gateway)) = (forwarding, hop.gateway) {
        warn!(real = %identity.address, %gateway, "DR needs reals on a directly connected network; this one is behind a gateway (use tun or nat)");
        return real;
    }
    let tunnel_source = match identity.address {
        IpAddr::V4(_) => config.tunnel.source_v4.map(IpAddr::V4),
        IpAddr::V6(_) => config.tunnel.source_v6.map(IpAddr::V6),
    }
    .or(hop.source);
    if forwarding == Forwarding::Tun && tunnel_source.is_none() {
        warn!(real = %identity.address, "no tunnel source address towards this real (set tunnel.source_v4/v6)");
        return real;
    }
    real.flags |= REAL_NEXT_HOP_KNOWN;
    real.ifindex = hop.ifindex;
    real.dst_mac = hop.dst_mac;
    real.src_mac = hop.src_mac;
    real.mtu = hop.mtu;
    real.tunnel_src = tunnel_source.map(Addr::from).unwrap_or_default();
    real
}

#[cfg(test)]
mod tests {
    use lb_common::{RealHealth, SETTINGS_NO_ECHO_REPLY};

    use super::*;
    use crate::{neighbours::NextHop, testing};

    /// Three services, two on one VIP; DR, NAT and TUN reals; a tunnel
    /// source for IPv4 only.
    const YAML: &str = "interfaces: [{ name: eth0 }]
icmp_echo_reply: false
tunnel: { source_v4: 198.18.0.1 }
services:
  - { name: web, vip: 198.18.1.10, port: 80, protocol: tcp, scheduler: wrr, \
      persistence: { timeout: 600, prefix: 24 }, \
      reals: [{ address: 198.18.2.11, weight: 3 }, { address: 198.18.2.12 }, { address: 198.18.2.13 }] }
  - { name: tls, vip: 198.18.1.10, port: 443, protocol: tcp, forwarding: nat, \
      reals: [{ address: 198.18.2.21 }, { address: 198.18.2.22, forwarding: tun }] }
  - { name: dns, vip: fd00::10, port: 53, protocol: udp, forwarding: tun, \
      reals: [{ address: fd00::2:11 }] }
";

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// A next hop on ifindex 7, through `gateway` if any, with `source` as
    /// the kernel's preferred source.
    fn hop(gateway: Option<&str>, source: Option<&str>) -> Resolution {
        Ok(NextHop {
            ifindex: 7,
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_mac: [2, 0, 0, 0, 0, 2],
            gateway: gateway.map(ip),
            mtu: 1500,
            source: source.map(ip),
        })
    }

    /// Plans `YAML` with `hops`, `marks` and the reals at `overloaded`;
    /// returns the plan and the id of each real address.
    fn plan(
        hops: &[(&str, Resolution)],
        marks: &HashMap<RealKey, Mark>,
        overloaded: &[&str],
    ) -> (Desired, impl Fn(&str) -> u32 + use<>) {
        let config = testing::config(YAML);
        let ids = Ids::default().plan(&config).unwrap();
        let by_address: HashMap<IpAddr, u32> = (ids.reals.iter())
            .map(|(identity, id)| (identity.address, *id))
            .collect();
        let id = move |address: &str| by_address[&ip(address)];
        let hops = hops
            .iter()
            .map(|(address, hop)| (ip(address), hop.clone()))
            .collect();
        let overloaded = overloaded.iter().map(|address| id(address)).collect();
        let marks = Marks {
            health: marks,
            overloaded: &overloaded,
        };
        (desired(&config, &ids, &hops, &marks), id)
    }

    #[test]
    fn a_real_takes_new_connections_only_when_reachable_and_not_removed() {
        let config = testing::config(YAML);
        let web = &config.services[0];
        let removed = RealKey::new(service_key(web), &web.reals[2]);
        let marks = HashMap::from([(
            removed,
            Mark {
                health: RealHealth::Down,
                removed: true,
            },
        )]);
        let hops = [
            ("198.18.2.11", hop(None, None)),
            ("198.18.2.12", Err(crate::neighbours::Unresolved::Resolving)),
            ("198.18.2.13", hop(None, None)),
        ];
        let (desired, id) = plan(&hops, &marks, &["198.18.2.11"]);

        let reachable = desired.reals[&id("198.18.2.11")];
        assert_eq!(
            reachable.flags,
            REAL_ACTIVE | REAL_NEXT_HOP_KNOWN | REAL_OVERLOADED
        );
        assert_eq!((reachable.ifindex, reachable.mtu), (7, 1500));
        assert_eq!(reachable.dst_mac, [2, 0, 0, 0, 0, 1]);
        assert_eq!(desired.reals[&id("198.18.2.12")].flags, REAL_ACTIVE);
        let down = desired.reals[&id("198.18.2.13")];
        assert_eq!(down.flags, REAL_ACTIVE | REAL_NEXT_HOP_KNOWN | REAL_DOWN);
        assert_eq!(down.health, RealHealth::Down as u8);

        let row = &desired.rows[0].source;
        assert_eq!(row.scheduler, Scheduler::WeightedRoundRobin);
        let weights: Vec<u32> = row.candidates.iter().map(|real| real.weight).collect();
        assert_eq!(weights, [3, 0, 0], "overloaded is the data plane's to skip");
        assert_eq!(
            row.candidates[0].identity,
            identity_bytes(ip("198.18.2.11"), 80)
        );
    }

    #[test]
    fn dr_behind_a_gateway_and_tun_without_a_source_are_unreachable() {
        let hops = [
            ("198.18.2.11", hop(Some("198.18.0.254"), None)),
            ("198.18.2.21", hop(Some("198.18.0.254"), None)),
            ("198.18.2.22", hop(None, None)),
            ("fd00::2:11", hop(None, None)),
        ];
        let (desired, id) = plan(&hops, &HashMap::new(), &[]);
        let reachable = |address| desired.reals[&id(address)].flags & REAL_NEXT_HOP_KNOWN != 0;
        assert!(!reachable("198.18.2.11"), "DR behind a gateway");
        assert!(reachable("198.18.2.21"), "NAT behind a gateway");
        assert!(reachable("198.18.2.22"), "TUN from the configured source");
        assert_eq!(
            desired.reals[&id("198.18.2.22")].tunnel_src,
            Addr::from(ip("198.18.0.1"))
        );
        assert!(!reachable("fd00::2:11"), "TUN without any IPv6 source");

        let (desired, id) = plan(
            &[("fd00::2:11", hop(None, Some("fd00::1")))],
            &HashMap::new(),
            &[],
        );
        let tun = desired.reals[&id("fd00::2:11")];
        assert_ne!(tun.flags & REAL_NEXT_HOP_KNOWN, 0);
        assert_eq!(
            tun.tunnel_src,
            Addr::from(ip("fd00::1")),
            "the kernel's source"
        );
    }

    #[test]
    fn services_vips_nat_reals_and_settings_follow_the_config() {
        let config = testing::config(YAML);
        let (desired, id) = plan(&[], &HashMap::new(), &[]);
        let keys: Vec<ServiceKey> = config.services.iter().map(service_key).collect();
        assert_eq!(
            desired
                .services
                .iter()
                .map(|(key, _)| *key)
                .collect::<Vec<_>>(),
            keys
        );
        let (_, web) = desired.services[0];
        assert_eq!(web.scheduler, Scheduler::WeightedRoundRobin as u8);
        assert_eq!((web.persistence_prefix, web.persistence_timeout), (24, 600));
        assert_eq!(web.row_len, 0, "known once the row is built");
        let row_ids: Vec<u32> = desired.rows.iter().map(|row| row.service_id).collect();
        let service_ids: Vec<u32> = desired.services.iter().map(|(_, s)| s.id).collect();
        assert_eq!(row_ids, service_ids);

        let vips: BTreeMap<VipKey, u32> = (desired.vips.iter())
            .map(|(key, info)| (*key, info.services))
            .collect();
        assert_eq!(
            vips,
            BTreeMap::from([(vip_key(&keys[0]), 2), (vip_key(&keys[2]), 1)]),
            "two services share the IPv4 VIP"
        );
        assert_eq!(
            desired.nat_reals,
            BTreeSet::from([address_key(ip("198.18.2.21"))]),
            "the TUN real of a NAT service is not one"
        );
        assert_eq!(desired.reals.len(), 6);
        assert!(desired.reals.contains_key(&id("fd00::2:11")));
        assert_eq!(desired.settings, settings_of(&config));
        assert_ne!(desired.settings.flags & SETTINGS_NO_ECHO_REPLY, 0);
    }
}
