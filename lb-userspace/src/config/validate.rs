//! Validation: rules about the configuration as a whole, reported at the
//! nodes decoding recorded.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, SocketAddr};

use super::draft::{Draft, DraftService};
use super::limits::MAX_INTERFACES;
use super::reader::{Reader, family};
use super::schema::*;

/// The items of a list that decoded, with their index in the file.
fn decoded<T>(items: &[Option<T>]) -> impl Iterator<Item = (usize, &T)> {
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| Some((i, item.as_ref()?)))
}

impl Reader<'_> {
    pub(super) fn validate(&mut self, draft: &Draft, interface_exists: &dyn Fn(&str) -> bool) {
        self.check_interfaces(&draft.interfaces, interface_exists);
        self.check_services(&draft.services);
        // The limits come from `dataplane`; if it did not decode, its own
        // error is the one to fix first.
        if let Some(dataplane) = &draft.dataplane {
            self.check_maglev_ring(dataplane);
            self.check_capacity(dataplane, &draft.services);
        }
    }

    /// The ring is indexed with a `u32` (`service id * size + slot`).
    fn check_maglev_ring(&mut self, dataplane: &DataplaneConfig) {
        let slots = dataplane.maglev_ring_slots();
        if slots > u64::from(u32::MAX) {
            let (services, size) = (dataplane.max_services, dataplane.maglev_table_size);
            self.report_at(
                "dataplane.max_services",
                format!(
                    "{services} services with maglev_table_size {size} need a Maglev ring of \
                     {slots} slots, more than the 4294967295 a 32-bit index reaches"
                ),
            );
        }
    }
    fn check_interfaces(
        &mut self,
        interfaces: &[Option<InterfaceConfig>],
        interface_exists: &dyn Fn(&str) -> bool,
    ) {
        if interfaces.len() > MAX_INTERFACES {
            let count = interfaces.len();
            self.report_at(
                &format!("interfaces[{MAX_INTERFACES}]"),
                format!(
                    "too many interfaces: {count} listed, at most {MAX_INTERFACES} are supported"
                ),
            );
        }
        let mut first_seen: HashMap<&str, usize> = HashMap::new();
        for (i, interface) in decoded(interfaces) {
            let path = format!("interfaces[{i}].name");
            let name = interface.name.as_str();
            match first_seen.entry(name) {
                Entry::Occupied(first) => {
                    let first = first.get();
                    self.report_at(
                        &path,
                        format!("interface `{name}` is already listed as interfaces[{first}]"),
                    );
                }
                Entry::Vacant(slot) => {
                    slot.insert(i);
                    if !interface_exists(name) {
                        self.report_at(&path, format!("no interface named `{name}` on this host"));
                    }
                }
            }
        }
    }

    fn check_services(&mut self, services: &[Option<DraftService>]) {
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut keys: HashMap<(IpAddr, u16, Protocol), usize> = HashMap::new();
        for (i, DraftService { service, reals }) in decoded(services) {
            let path = format!("services[{i}]");
            if let Some(first) = names.get(service.name.as_str()) {
                let name = &service.name;
                self.report_at(
                    &format!("{path}.name"),
                    format!("duplicate service name `{name}`, already used by services[{first}]"),
                );
            } else {
                names.insert(&service.name, i);
            }
            // The data plane looks services up by (VIP, port, protocol).
            let key = (service.vip, service.port, service.protocol);
            if let Some(first) = keys.get(&key) {
                let address = SocketAddr::new(service.vip, service.port);
                let protocol = service.protocol;
                self.report_at(
                    &path,
                    format!(
                        "duplicate service {address}/{protocol}, \
                         already defined by services[{first}]"
                    ),
                );
            } else {
                keys.insert(key, i);
            }
            self.check_service(&path, service, reals);
        }
    }

    fn check_service(&mut self, path: &str, service: &ServiceConfig, reals: &[Option<RealConfig>]) {
        let scheduler = service.scheduler;
        let limit = lb_common::MAX_LEAST_CONNECTION_CANDIDATES as usize;
        if scheduler.dataplane().is_least_connection() && reals.len() > limit {
            self.report_at(
                &format!("{path}.reals[{limit}]"),
                format!(
                    "the `{scheduler}` scheduler compares at most {limit} reals per new \
                     connection; this service has {}",
                    reals.len()
                ),
            );
        }
        let mut first_seen: HashMap<(IpAddr, u16), usize> = HashMap::new();
        for (j, real) in decoded(reals) {
            // Formatted only for a problem: a string per real adds up.
            let real_path = || format!("{path}.reals[{j}]");
            self.check_real(&real_path, service, real);
            match first_seen.entry((real.address, real.port)) {
                Entry::Occupied(first) => {
                    let first = first.get();
                    let address = real.endpoint();
                    self.report_at(
                        &real_path(),
                        format!("duplicate real {address}, already listed as reals[{first}]"),
                    );
                }
                Entry::Vacant(slot) => {
                    slot.insert(j);
                }
            }
        }
        self.check_service_health(path, service, &first_seen);
    }

    fn check_service_health(
        &mut self,
        path: &str,
        service: &ServiceConfig,
        reals: &HashMap<(IpAddr, u16), usize>,
    ) {
        let health = &service.health;
        if let Some(sorry) = &health.sorry_server {
            let sorry_path = format!("{path}.sorry_server");
            self.check_real(&|| sorry_path.clone(), service, sorry);
            if let Some(j) = reals.get(&(sorry.address, sorry.port)) {
                let address = SocketAddr::new(sorry.address, sorry.port);
                self.report_at(
                    &sorry_path,
                    format!(
                        "the sorry server {address} is also reals[{j}]: it would take \
                         traffic only when it is itself down"
                    ),
                );
            }
        } else if health.on_quorum_loss == Some(QuorumLoss::SorryServer) {
            self.report_at(
                &format!("{path}.on_quorum_loss"),
                "`on_quorum_loss: sorry_server` needs a `sorry_server`",
            );
        }
    }

    /// What the service's forwarding method can do with a real's address
    /// family and port.
    ///
    /// DR only rewrites the MAC and TUN wraps the packet as it came: either
    /// way the real receives the client's packet, VIP and port unchanged.
    /// So the real's port must be the service's (`ipvsadm` silently forces
    /// it; a file that says otherwise is rejected rather than half obeyed),
    /// and DR needs the VIP's family too (TUN may carry IPv4 in IPv6 and
    /// back). NAT rewrites the destination to the real's address and port:
    /// the family must stay, the port may change, except on a port-0
    /// service, where each packet keeps the port it was sent to.
    fn check_real(
        &mut self,
        real_path: &dyn Fn() -> String,
        service: &ServiceConfig,
        real: &RealConfig,
    ) {
        let forwarding = service.forwarding_of(real);
        let method = forwarding.name();
        let same_family = real.address.is_ipv4() == service.vip.is_ipv4();
        if !same_family && forwarding != Forwarding::Tun {
            let (address, vip) = (real.address, service.vip);
            let (real_family, vip_family) = (family(address), family(vip));
            self.report_at(
                &format!("{}.address", real_path()),
                format!(
                    "real {address} is {real_family} but the VIP {vip} is {vip_family}; \
                     {method} forwarding needs the same address family (only `tun` can mix them)"
                ),
            );
        }
        // A port left out is the service's, so a mismatch was written out:
        // `.port` has a position.
        let (port, service_port) = (real.port, service.port);
        let port_path = || format!("{}.port", real_path());
        if port != service_port && (service_port == 0 || forwarding != Forwarding::Nat) {
            let reason = if service_port == 0 {
                format!(
                    "real port {port} on a port-0 service: the service takes every port and \
                     {method} forwarding keeps each packet's port; omit `port` or set it to 0"
                )
            } else {
                format!(
                    "real port {port} differs from the service port {service_port}, and \
                     {method} forwarding cannot rewrite ports; omit `port` or set it to \
                     {service_port} (only `nat` can change ports)"
                )
            };
            self.report_at(&port_path(), reason);
        } else if port == 0 && service_port != 0 {
            // Only NAT gets here: it would rewrite the destination port to 0.
            self.report_at(
                &port_path(),
                format!(
                    "real port 0 on a NAT service of port {service_port}: NAT rewrites the \
                     destination port to the real's; omit `port` to keep {service_port}"
                ),
            );
        }
        let (upper, lower) = (real.upper_threshold, real.lower_threshold);
        if upper != 0 && lower > upper {
            self.report_at(
                &format!("{}.lower_threshold", real_path()),
                format!("lower threshold {lower} is above the upper threshold {upper}"),
            );
        }
    }

    /// Counts every service and real listed, decoded or not: each will need
    /// an id, and each real a slot.
    fn check_capacity(
        &mut self,
        dataplane: &DataplaneConfig,
        draft_services: &[Option<DraftService>],
    ) {
        let max_services = dataplane.max_services as usize;
        if draft_services.len() > max_services {
            let count = draft_services.len();
            self.report_at(
                &format!("services[{max_services}]"),
                format!(
                    "too many services: {count} configured, at most {max_services} are supported \
                     (dataplane.max_services)"
                ),
            );
        }
        let services: Vec<_> = decoded(draft_services).collect();
        // Every real needs at least one slot in its service's Maglev table.
        let largest = services.iter().max_by_key(|(_, svc)| svc.reals.len());
        if let Some((i, svc)) = largest {
            let (size, reals) = (dataplane.maglev_table_size, svc.reals.len());
            if u32::try_from(reals).is_ok_and(|reals| reals > size) {
                let name = &svc.service.name;
                self.report_at(
                    "dataplane.maglev_table_size",
                    format!(
                        "{size} is smaller than the {reals} reals of service `{name}` \
                         (services[{i}]); each real needs a slot"
                    ),
                );
            }
        }
        // Real ids are global to the data plane: point at the first real past the limit.
        let total: usize = services.iter().map(|(_, svc)| svc.reals.len()).sum();
        let max_reals = dataplane.max_reals as usize;
        let mut before = 0;
        for (i, svc) in &services {
            if before + svc.reals.len() > max_reals {
                let j = max_reals - before;
                self.report_at(
                    &format!("services[{i}].reals[{j}]"),
                    format!(
                        "too many reals: {total} configured across all services, \
                         at most {max_reals} are supported (dataplane.max_reals)"
                    ),
                );
                return;
            }
            before += svc.reals.len();
        }
    }
}
