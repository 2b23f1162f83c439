//! The running configuration seen as ipvsadm's table and back: `lbadm`
//! commands are applied to the table with IPVS's rules, and the result
//! becomes the daemon's next configuration.

use std::{
    collections::{BTreeMap, HashMap},
    net::{IpAddr, SocketAddr},
};

use crate::{
    config::{
        Forwarding, PersistenceConfig, Protocol, RealConfig, Scheduler, SchedulerFlag,
        ServiceConfig, ServiceHealth,
    },
    ipvsadm::{self, Destination, Persistence, ServiceId, Table, VirtualService},
};

pub fn service_id(service: &ServiceConfig) -> ServiceId {
    ServiceId {
        protocol: match service.protocol {
            Protocol::Tcp => ipvsadm::Protocol::Tcp,
            Protocol::Udp => ipvsadm::Protocol::Udp,
        },
        address: SocketAddr::new(service.vip, service.port),
    }
}

pub fn virtual_service(service: &ServiceConfig) -> VirtualService {
    VirtualService {
        id: service_id(service),
        scheduler: service.scheduler.dataplane(),
        fallback: service
            .scheduler_flags
            .iter()
            .any(|flag| flag.is_fallback()),
        hash_port: service
            .scheduler_flags
            .iter()
            .any(|flag| !flag.is_fallback()),
        persistence: service.persistence.map(|persistence| Persistence {
            timeout: persistence.timeout,
            netmask: persistence.prefix,
        }),
    }
}

pub fn destination(service: &ServiceConfig, real: &RealConfig) -> Destination {
    Destination {
        address: real.endpoint(),
        forwarding: service.forwarding_of(real).dataplane(),
        weight: real.weight,
        upper_threshold: real.upper_threshold,
        lower_threshold: real.lower_threshold,
    }
}

/// The services of a configuration, in order, as ipvsadm lists them.
pub fn table_of(services: &[ServiceConfig]) -> Table {
    Table {
        services: services
            .iter()
            .map(|service| {
                let reals = service
                    .reals
                    .iter()
                    .map(|real| destination(service, real))
                    .collect();
                (virtual_service(service), reals)
            })
            .collect(),
    }
}

/// The services `table` describes. Services that were already running keep
/// their names (metrics labels, YAML export) and health checks, and their
/// reals their own checks; new ones are named after their protocol,
/// address and port, and are not probed (ipvsadm knows no checks).
pub fn services_of(table: &Table, previous: &[ServiceConfig]) -> Vec<ServiceConfig> {
    let previous: HashMap<ServiceId, &ServiceConfig> = previous
        .iter()
        .map(|service| (service_id(service), service))
        .collect();
    table
        .services
        .iter()
        .map(|(virtual_service, destinations)| {
            let before = previous.get(&virtual_service.id).copied();
            service_config(before, virtual_service, destinations)
        })
        .collect()
}

fn service_config(
    previous: Option<&ServiceConfig>,
    service: &VirtualService,
    destinations: &[Destination],
) -> ServiceConfig {
    let name = previous.map_or_else(
        || generated_name(&service.id),
        |previous| previous.name.clone(),
    );
    let previous_check = |address: SocketAddr| {
        previous?
            .reals
            .iter()
            .find(|real| real.endpoint() == address)?
            .health_check
            .clone()
    };
    let scheduler = Scheduler::from_dataplane(service.scheduler);
    let mut scheduler_flags = Vec::new();
    if service.fallback {
        scheduler_flags.push(SchedulerFlag::for_scheduler(scheduler, true));
    }
    if service.hash_port {
        scheduler_flags.push(SchedulerFlag::for_scheduler(scheduler, false));
    }
    let default_forwarding = most_common_forwarding(destinations);
    ServiceConfig {
        name,
        vip: service.id.address.ip(),
        port: service.id.address.port(),
        protocol: match service.id.protocol {
            ipvsadm::Protocol::Tcp => Protocol::Tcp,
            ipvsadm::Protocol::Udp => Protocol::Udp,
        },
        scheduler,
        scheduler_flags,
        persistence: service.persistence.map(|persistence| PersistenceConfig {
            timeout: persistence.timeout,
            prefix: persistence.netmask,
        }),
        forwarding: default_forwarding,
        health: previous.map_or_else(ServiceHealth::unchecked, |previous| previous.health.clone()),
        reals: destinations
            .iter()
            .map(|destination| {
                let method = Forwarding::from_dataplane(destination.forwarding);
                RealConfig {
                    address: destination.address.ip(),
                    port: destination.address.port(),
                    weight: destination.weight,
                    forwarding: (method != default_forwarding).then_some(method),
                    upper_threshold: destination.upper_threshold,
                    lower_threshold: destination.lower_threshold,
                    health_check: previous_check(destination.address),
                }
            })
            .collect(),
    }
}

/// The service-level method of a YAML export: the one most reals use
/// (the first such on a tie), DR for a service without reals.
fn most_common_forwarding(destinations: &[Destination]) -> Forwarding {
    let mut counts: BTreeMap<usize, (usize, Forwarding)> = BTreeMap::new();
    for (position, destination) in destinations.iter().enumerate() {
        let method = Forwarding::from_dataplane(destination.forwarding);
        let first = destinations
            .iter()
            .position(|other| Forwarding::from_dataplane(other.forwarding) == method)
            .unwrap_or(position);
        counts.entry(first).or_insert((0, method)).0 += 1;
    }
    counts
        .into_iter()
        .max_by(|(first_a, (count_a, _)), (first_b, (count_b, _))| {
            count_a.cmp(count_b).then(first_b.cmp(first_a))
        })
        .map_or(Forwarding::Dr, |(_, (_, method))| method)
}

/// `tcp-198.18.0.10-80`, `udp-fd00..10-53`: a valid service name (colons
/// are not allowed in names, so IPv6 addresses use dots).
fn generated_name(id: &ServiceId) -> String {
    let protocol = match id.protocol {
        ipvsadm::Protocol::Tcp => "tcp",
        ipvsadm::Protocol::Udp => "udp",
    };
    let address = match id.address.ip() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6.to_string().replace(':', "."),
    };
    format!("{protocol}-{address}-{}", id.address.port())
}

#[cfg(test)]
mod tests {
    use lb_common::ForwardingMethod;

    use super::*;

    const YAML: &str = "
interfaces: [{ name: eth0 }]
services:
  - name: web
    vip: 198.18.1.10
    port: 80
    protocol: tcp
    scheduler: wlc
    persistence: { timeout: 600, prefix: 24 }
    forwarding: nat
    reals:
      - { address: 198.18.2.11, port: 8080, weight: 3, upper_threshold: 10 }
      - { address: 198.18.2.12, forwarding: dr }
  - name: dns
    vip: fd00::10
    port: 53
    protocol: udp
    reals:
      - { address: fd00::2:11 }
";

    fn services() -> Vec<ServiceConfig> {
        crate::testing::config(YAML).services
    }

    #[test]
    fn the_table_round_trips_to_the_same_services() {
        let services = services();
        let table = table_of(&services);
        assert_eq!(services_of(&table, &services), services);
    }

    #[test]
    fn the_table_carries_what_ipvsadm_shows() {
        let table = table_of(&services());
        let (web, reals) = &table.services[0];
        assert_eq!(web.scheduler, lb_common::Scheduler::WeightedLeastConnection);
        assert_eq!(
            web.persistence,
            Some(Persistence {
                timeout: 600,
                netmask: 24
            })
        );
        assert_eq!(reals[0].forwarding, ForwardingMethod::Masquerade);
        assert_eq!(reals[0].upper_threshold, 10);
        assert_eq!(reals[1].forwarding, ForwardingMethod::DirectRouting);
        let (dns, _) = &table.services[1];
        assert!(dns.hash_port, "mh's product default hashes the port");
        assert!(!dns.fallback);
    }

    #[test]
    fn new_services_get_names_from_their_address() {
        let mut table = table_of(&services());
        let (mut extra, _) = table.services[1];
        extra.id.address = "[fd00::99]:5353".parse().unwrap();
        table.services.push((extra, Vec::new()));
        let services = services_of(&table, &services());
        assert_eq!(services[0].name, "web");
        assert_eq!(services[2].name, "udp-fd00..99-5353");
        // The generated name is one a config file accepts.
        crate::testing::with_services(&[format!(
            "{{ name: {}, vip: fd00::99, port: 1, protocol: udp }}",
            services[2].name
        )]);
    }

    #[test]
    fn the_service_method_is_the_one_most_reals_use() {
        let mut table = table_of(&services());
        let reals = &mut table.services[0].1;
        reals[0].forwarding = ForwardingMethod::Tunnel;
        reals[1].forwarding = ForwardingMethod::DirectRouting;
        let mut third = reals[1];
        third.address = "198.18.2.13:80".parse().unwrap();
        reals.push(third);
        let web = &services_of(&table, &services())[0];
        assert_eq!(web.forwarding, Forwarding::Dr);
        assert_eq!(web.reals[0].forwarding, Some(Forwarding::Tun));
        assert_eq!(web.reals[1].forwarding, None);
    }
}
