//! Virtual services and their reals in memory, changed with the kernel's
//! semantics (`ip_vs_genl_set_cmd` and friends): the same checks in the
//! same order, refused with the errno libipvs words for that command.

use std::net::{IpAddr, SocketAddr};

use lb_common::ForwardingMethod;
use serde::{Deserialize, Serialize};

use super::errors::{ApplyError, UsageError};
use super::types::{Command, Destination, ServiceId, VirtualService, same_address};

/// Services in insertion order, each with its reals in insertion order
/// (the daemon converts its configuration to and from this, so order is
/// kept; ipvsadm's sorted output is [`super::save`]'s business).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub services: Vec<(VirtualService, Vec<Destination>)>,
}

impl Table {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one command, or changes nothing and says why.
    /// `Zero` and `SetTimeouts` only check (counters and timeouts are the
    /// daemon's).
    pub fn apply(&mut self, command: &Command) -> Result<(), ApplyError> {
        match command {
            Command::AddService(service) => self.add_service(service),
            Command::EditService(service) => self.edit_service(service),
            Command::DeleteService(id) => {
                let index = self.existing(id, ApplyError::NoSuchService)?;
                self.services.remove(index);
                Ok(())
            }
            Command::Clear => {
                self.services.clear();
                Ok(())
            }
            Command::AddReal(id, real) => self.add_real(id, real),
            Command::EditReal(id, real) => self.edit_real(id, real),
            Command::DeleteReal(id, address) => self.delete_real(id, *address),
            Command::Zero(Some(id)) => self.existing(id, ApplyError::NoSuchService).map(drop),
            Command::Zero(None) | Command::SetTimeouts { .. } => Ok(()),
        }
    }

    /// The service and its reals.
    pub fn service(&self, id: &ServiceId) -> Option<&(VirtualService, Vec<Destination>)> {
        self.position(id).map(|index| &self.services[index])
    }

    /// What `-L` / `-S` show: every service, or the one named (ipvsadm's
    /// `list_service`: "No such service", exit 1).
    pub fn select(
        &self,
        service: Option<&ServiceId>,
    ) -> Result<Vec<&(VirtualService, Vec<Destination>)>, UsageError> {
        match service {
            None => Ok(self.services.iter().collect()),
            Some(id) => self
                .service(id)
                .map(|entry| vec![entry])
                .ok_or_else(UsageError::no_such_service_to_list),
        }
    }

    fn position(&self, id: &ServiceId) -> Option<usize> {
        self.services
            .iter()
            .position(|(service, _)| service.id.same_as(id))
    }

    fn existing(&self, id: &ServiceId, missing: ApplyError) -> Result<usize, ApplyError> {
        self.position(id).ok_or(missing)
    }

    fn add_service(&mut self, service: &VirtualService) -> Result<(), ApplyError> {
        if self.position(&service.id).is_some() {
            return Err(ApplyError::ServiceExists);
        }
        check_persistence_netmask(service)?;
        self.services.push((*service, Vec::new()));
        Ok(())
    }

    fn edit_service(&mut self, service: &VirtualService) -> Result<(), ApplyError> {
        let index = self.existing(&service.id, ApplyError::NoSuchService)?;
        check_persistence_netmask(service)?;
        self.services[index].0 = *service;
        Ok(())
    }

    fn add_real(&mut self, id: &ServiceId, real: &Destination) -> Result<(), ApplyError> {
        let index = self.existing(id, ApplyError::ServiceNotDefined)?;
        check_real(id, real)?;
        let reals = &mut self.services[index].1;
        if find_real(reals, real.address).is_some() {
            return Err(ApplyError::DestinationExists);
        }
        reals.push(*real);
        Ok(())
    }

    fn edit_real(&mut self, id: &ServiceId, real: &Destination) -> Result<(), ApplyError> {
        let index = self.existing(id, ApplyError::ServiceNotDefined)?;
        check_real(id, real)?;
        let reals = &mut self.services[index].1;
        let position = find_real(reals, real.address).ok_or(ApplyError::NoSuchDestination)?;
        reals[position] = *real;
        Ok(())
    }

    fn delete_real(&mut self, id: &ServiceId, address: SocketAddr) -> Result<(), ApplyError> {
        let index = self.existing(id, ApplyError::ServiceNotDefined)?;
        let reals = &mut self.services[index].1;
        let position = find_real(reals, address).ok_or(ApplyError::NoSuchDestination)?;
        reals.remove(position);
        Ok(())
    }
}

/// The kernel matches a destination by family, address and port.
fn find_real(reals: &[Destination], address: SocketAddr) -> Option<usize> {
    reals
        .iter()
        .position(|real| same_address(real.address, address))
}

/// `ip_vs_add_service` / `ip_vs_edit_service`: an IPv6 prefix is 1..=128
/// (and an IPv4 mask cannot be longer than 32 bits).
fn check_persistence_netmask(service: &VirtualService) -> Result<(), ApplyError> {
    let Some(persistence) = service.persistence else {
        return Ok(());
    };
    let valid = match service.id.address.ip() {
        IpAddr::V4(_) => persistence.netmask <= 32,
        IpAddr::V6(_) => (1..=128).contains(&persistence.netmask),
    };
    if valid {
        Ok(())
    } else {
        Err(ApplyError::InvalidOperation)
    }
}

/// The kernel's checks on a destination before looking it up: another
/// family only when tunnelling (EINVAL), then the thresholds (ERANGE).
fn check_real(id: &ServiceId, real: &Destination) -> Result<(), ApplyError> {
    let other_family = real.address.is_ipv6() != id.address.is_ipv6();
    if other_family && real.forwarding != ForwardingMethod::Tunnel {
        return Err(ApplyError::InvalidOperation);
    }
    if real.lower_threshold > real.upper_threshold {
        return Err(ApplyError::ThresholdsOutOfRange);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use lb_common::Scheduler;

    use super::super::types::{Persistence, Protocol};
    use super::*;

    fn tcp(address: &str) -> ServiceId {
        ServiceId::new(Protocol::Tcp, address.parse().unwrap())
    }

    fn service(address: &str) -> VirtualService {
        VirtualService::with_scheduler(tcp(address), Scheduler::RoundRobin)
    }

    fn real(address: &str) -> Destination {
        Destination::new(address.parse().unwrap(), ForwardingMethod::Masquerade)
    }

    fn table_with_one_real() -> Table {
        let mut table = Table::new();
        table
            .apply(&Command::AddService(service("192.0.2.1:80")))
            .unwrap();
        table
            .apply(&Command::AddReal(
                tcp("192.0.2.1:80"),
                real("10.0.0.1:8080"),
            ))
            .unwrap();
        table
    }

    #[test]
    fn refusals_carry_ipvs_strerror_wording() {
        use Command::*;
        let mut table = table_with_one_real();
        let svc = tcp("192.0.2.1:80");
        let missing = tcp("192.0.2.2:80");
        // ipvsadm's wording of IPVS's errors.
        let (exists, no_service) = ("Service already exists", "No such service");
        let (undefined, no_real) = ("Service not defined", "No such destination");
        let (listed, unlisted) = (real("10.0.0.1:8080"), real("10.0.0.1:80"));
        let cases = [
            (AddService(service("192.0.2.1:80")), exists),
            (EditService(service("192.0.2.2:80")), no_service),
            (DeleteService(missing), no_service),
            (Zero(Some(missing)), no_service),
            (AddReal(missing, listed), undefined),
            (EditReal(missing, listed), undefined),
            (DeleteReal(missing, listed.address), undefined),
            (AddReal(svc, listed), "Destination already exists"),
            (EditReal(svc, unlisted), no_real),
            (DeleteReal(svc, unlisted.address), no_real),
        ];
        for (command, message) in cases {
            let before = table.clone();
            let error = table.apply(&command).expect_err(message);
            assert_eq!(
                (error.message(), error.exit_code()),
                (message, 255),
                "{command:?}"
            );
            assert_eq!(table, before, "a refused command changes nothing");
        }
    }

    #[test]
    fn thresholds_are_checked_before_the_lookup() {
        let mut table = table_with_one_real();
        let mut inverted = real("10.0.0.1:8080");
        inverted.upper_threshold = 10;
        inverted.lower_threshold = 20;
        let error = table
            .apply(&Command::AddReal(tcp("192.0.2.1:80"), inverted))
            .unwrap_err();
        assert_eq!(error.message(), "Numerical result out of range");
    }

    #[test]
    fn another_family_needs_a_tunnel() {
        let mut table = table_with_one_real();
        let svc = tcp("192.0.2.1:80");
        let ipv6 = real("[2001:db8::1]:80");
        assert_eq!(
            table.apply(&Command::AddReal(svc, ipv6)),
            Err(ApplyError::InvalidOperation)
        );
        let tunnelled = Destination::new(ipv6.address, ForwardingMethod::Tunnel);
        assert_eq!(table.apply(&Command::AddReal(svc, tunnelled)), Ok(()));
    }

    #[test]
    fn editing_a_service_keeps_its_reals_and_position() {
        let mut table = table_with_one_real();
        table
            .apply(&Command::AddService(service("192.0.2.9:80")))
            .unwrap();
        let mut edited = service("192.0.2.1:80");
        edited.persistence = Some(Persistence {
            timeout: 60,
            netmask: 24,
        });
        table.apply(&Command::EditService(edited)).unwrap();
        assert_eq!(table.services[0].0, edited);
        assert_eq!(table.services[0].1, vec![real("10.0.0.1:8080")]);
        assert_eq!(table.services[1].0.id, tcp("192.0.2.9:80"));
    }

    #[test]
    fn an_out_of_range_prefix_is_refused() {
        let mut table = Table::new();
        let mut ipv6 = service("[2001:db8::1]:80");
        ipv6.persistence = Some(Persistence {
            timeout: 60,
            netmask: 0,
        });
        assert_eq!(
            table.apply(&Command::AddService(ipv6)),
            Err(ApplyError::InvalidOperation)
        );
    }

    #[test]
    fn delete_clear_and_no_ops() {
        let mut table = table_with_one_real();
        let svc = tcp("192.0.2.1:80");
        table.apply(&Command::Zero(Some(svc))).unwrap();
        table.apply(&Command::Zero(None)).unwrap();
        table
            .apply(&Command::SetTimeouts {
                tcp: 1,
                tcp_fin: 2,
                udp: 3,
            })
            .unwrap();
        assert_eq!(table, table_with_one_real());
        table
            .apply(&Command::DeleteReal(svc, "10.0.0.1:8080".parse().unwrap()))
            .unwrap();
        assert!(table.service(&svc).unwrap().1.is_empty());
        table.apply(&Command::DeleteService(svc)).unwrap();
        assert!(table.services.is_empty());
        let mut table = table_with_one_real();
        table.apply(&Command::Clear).unwrap();
        assert_eq!(table, Table::new());
    }

    #[test]
    fn select_names_a_missing_service_like_list_service() {
        let table = table_with_one_real();
        assert_eq!(table.select(None).unwrap().len(), 1);
        let error = table.select(Some(&tcp("192.0.2.3:80"))).unwrap_err();
        assert_eq!(
            (error.message.as_str(), error.exit_code),
            ("No such service", 1)
        );
    }
}
