//! Ids: the one piece of state that must survive a restart. The flow table
//! refers to reals by id, so a restarted daemon first *adopts* the ids it
//! finds in the pinned maps, then assigns ids only to what is new.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use lb_common::ServiceKey;

use crate::{
    config::{
        Config,
        identity::{RealIdentity, service_key},
    },
    dataplane::Geometry,
};

/// Ids handed out so far. Freed ids are reused last (allocation moves on
/// round-robin), so a flow entry that outlived its real rarely meets a new
/// real under the same id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ids {
    pub services: BTreeMap<ServiceKey, u32>,
    pub reals: BTreeMap<RealIdentity, u32>,
    next_service: u32,
    next_real: u32,
}

impl Ids {
    /// Keeps the ids of everything still configured, drops the rest and
    /// allocates ids for what is new.
    pub fn plan(&self, config: &Config) -> Result<Ids> {
        let limits = Geometry::of(&config.dataplane);
        let mut next = Ids {
            next_service: self.next_service,
            next_real: self.next_real,
            ..Ids::default()
        };
        // Ids held before or already given out in this plan: neither may be
        // handed out, so a removed object's id is not reused by the same
        // apply. Kept up to date as ids are given out (rebuilding it per
        // allocation made planning 100,000 reals quadratic).
        let mut services_taken: BTreeSet<u32> = self.services.values().copied().collect();
        let mut reals_taken: BTreeSet<u32> = self.reals.values().copied().collect();
        for service in &config.services {
            let key = service_key(service);
            let id = match self.services.get(&key) {
                Some(&id) => id,
                None => next.allocate_service(&mut services_taken, &limits)?,
            };
            next.services.insert(key, id);
        }
        for service in &config.services {
            let service_id = next.services[&service_key(service)];
            for real in &service.reals {
                let identity = RealIdentity::new(service_id, real);
                let id = match self.reals.get(&identity) {
                    Some(&id) => id,
                    None => next.allocate_real(&mut reals_taken, &limits)?,
                };
                next.reals.insert(identity, id);
            }
        }
        Ok(next)
    }

    fn allocate_service(&mut self, taken: &mut BTreeSet<u32>, limits: &Geometry) -> Result<u32> {
        next_free(taken, &mut self.next_service, limits.service_entries())
            .context("too many services for the data plane")
    }

    fn allocate_real(&mut self, taken: &mut BTreeSet<u32>, limits: &Geometry) -> Result<u32> {
        next_free(taken, &mut self.next_real, limits.real_entries())
            .context("too many reals for the data plane")
    }
}

/// The first id in `1..limit` after `cursor` (wrapping) not in `taken`,
/// which it then joins.
fn next_free(taken: &mut BTreeSet<u32>, cursor: &mut u32, limit: u32) -> Option<u32> {
    let span = limit - 1;
    let id = (0..span)
        .map(|step| (*cursor + step) % span + 1)
        .find(|id| !taken.contains(id))?;
    *cursor = id % span;
    taken.insert(id);
    Some(id)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::testing::with_services;

    const WEB: &str = "{ name: web, vip: 198.18.1.10, port: 80, protocol: tcp, \
                       reals: [{ address: 198.18.2.11 }, { address: 198.18.2.12 }] }";
    const DNS: &str = "{ name: dns, vip: fd00::10, port: 53, protocol: udp, \
                       reals: [{ address: fd00::2:11 }] }";

    /// The id `ids` gave the real at `address`.
    fn real_id(ids: &Ids, address: &str) -> u32 {
        let address: IpAddr = address.parse().unwrap();
        ids.reals
            .iter()
            .find(|(identity, _)| identity.address == address)
            .map(|(_, id)| *id)
            .unwrap()
    }

    #[test]
    fn ids_are_dense_from_one_and_stable_across_replans() {
        let config = with_services(&[WEB, DNS]);
        let first = Ids::default().plan(&config).unwrap();
        assert_eq!(
            first.services.values().copied().collect::<BTreeSet<_>>(),
            BTreeSet::from([1, 2])
        );
        assert_eq!(
            first.reals.values().copied().collect::<BTreeSet<_>>(),
            BTreeSet::from([1, 2, 3])
        );
        assert_eq!(first.plan(&config).unwrap(), first);
    }

    #[test]
    fn removing_a_real_keeps_every_other_id_and_does_not_reuse_its_id_next() {
        let before = Ids::default().plan(&with_services(&[WEB, DNS])).unwrap();
        let without = WEB.replace(", { address: 198.18.2.12 }", "");
        let after = before.plan(&with_services(&[&without, DNS])).unwrap();
        for (identity, id) in &after.reals {
            assert_eq!(before.reals[identity], *id);
        }
        assert_eq!(after.reals.len(), 2);
        let removed_id = real_id(&before, "198.18.2.12");
        let with_new = WEB.replace("198.18.2.12", "198.18.2.13");
        let again = after.plan(&with_services(&[&with_new, DNS])).unwrap();
        let new_id = real_id(&again, "198.18.2.13");
        assert_ne!(
            new_id, removed_id,
            "a freed id is not handed out straight away"
        );
    }

    #[test]
    fn allocation_wraps_and_reports_exhaustion() {
        let mut cursor = 0;
        let mut taken = BTreeSet::from([1, 2]);
        assert_eq!(next_free(&mut taken, &mut cursor, 5), Some(3));
        assert_eq!(next_free(&mut taken, &mut cursor, 5), Some(4));
        // Both joined the taken ids: 1..5 is now full.
        assert_eq!(taken, BTreeSet::from([1, 2, 3, 4]));
        assert_eq!(next_free(&mut taken, &mut cursor, 5), None);
    }
}
