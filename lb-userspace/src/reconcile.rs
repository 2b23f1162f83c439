//! Turning a validated [`Config`] into map contents.
//!
//! Ids are the one piece of state that must survive a restart: the flow
//! table refers to reals by id, so a restarted daemon first *adopts* the ids
//! it finds in the pinned maps, then assigns ids only to what is new. The
//! planning is pure (unit-tested below); [`Reconciler::apply`] then writes
//! only what differs, in an order that never exposes a half-built service:
//! reals, then Maglev rows, then the service and VIP entries; removals in
//! reverse.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::{IpAddr, SocketAddr},
};

use anyhow::{Context as _, Result, bail};
use aya::maps::{Array, MapData, MapError};
use lb_common::{
    Addr, Family, FloodGuard, NO_REAL, NatRealKey, REAL_ACTIVE, REAL_DOWN, REAL_NEXT_HOP_KNOWN,
    REAL_OVERLOADED, Real, RealHealth, Scheduler, Service, ServiceKey, VipInfo, VipKey,
};
use rayon::prelude::*;
use tracing::{info, warn};

// Re-exported for the benches and tests that name them from here.
pub use crate::config::identity::{RealIdentity, identity_bytes, real_addresses, service_key};
use crate::{
    config::{
        Config, Forwarding, RealConfig,
        identity::{address_key, settings_of, vip_key},
        sched_flag_bits,
    },
    dataplane::{Geometry, Maps, batch, ring::Ring},
    health::{admission::Mark, tracker::RealKey},
    neighbours::Resolution,
    rows::{RowReal, build_row},
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

/// What was learned while applying, for logs and tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub services_added: usize,
    pub services_removed: usize,
    pub reals_written: usize,
    pub reals_removed: usize,
    pub maglev_slots_written: usize,
    /// Scheduling rows built (the others were as last written).
    pub rows_built: usize,
}

/// The daemon's view of what the maps hold. Not the scheduling rows: a
/// thousand of them are a quarter of a GiB, and the ring itself says what
/// each slot holds (`dataplane::ring`), so a row is compared with the ring
/// when it is written.
pub struct Reconciler {
    geometry: Geometry,
    ids: Ids,
    reals: HashMap<u32, Real>,
    /// Slots in use per service row (rr, wrr, least-connection lists).
    row_lens: HashMap<u32, u32>,
    /// What each service's row was last built from: a row whose plan is
    /// unchanged is neither built nor written again (a health change of one
    /// real rebuilds one row, not a thousand). Empty after adoption, when
    /// nothing says what the pinned rows were built from.
    rows_written: HashMap<u32, RowSource>,
    /// Reals over their upper connection threshold (the daemon decides).
    overloaded: BTreeSet<u32>,
    vips: BTreeMap<VipKey, VipInfo>,
    nat_reals: BTreeSet<NatRealKey>,
}

impl Reconciler {
    /// Starts from empty maps.
    pub fn new(geometry: Geometry) -> Self {
        Self {
            geometry,
            ids: Ids::default(),
            reals: HashMap::new(),
            row_lens: HashMap::new(),
            rows_written: HashMap::new(),
            overloaded: BTreeSet::new(),
            vips: BTreeMap::new(),
            nat_reals: BTreeSet::new(),
        }
    }

    /// Reads back what a previous daemon left in the pinned maps.
    pub fn adopt(geometry: Geometry, maps: &Maps) -> Result<Self> {
        let mut this = Self::new(geometry);
        for entry in maps.services.iter() {
            let (key, service) = entry?;
            this.ids.services.insert(key, service.id);
            this.row_lens.insert(service.id, service.row_len);
        }
        for id in 1..geometry.real_entries() {
            let real = maps.reals.get(&id, 0)?;
            if real.flags & REAL_ACTIVE == 0 {
                continue;
            }
            let Some(family) = Family::from_u8(real.family) else {
                continue;
            };
            let identity = RealIdentity {
                service_id: real.service_id,
                address: real.addr.to_ip(family),
                port: u16::from_be(real.port_be),
            };
            this.ids.reals.insert(identity, id);
            this.reals.insert(id, real);
            if real.flags & REAL_OVERLOADED != 0 {
                this.overloaded.insert(id);
            }
        }
        for entry in maps.vips.iter() {
            let (key, info) = entry?;
            this.vips.insert(key, info);
        }
        for key in maps.nat_reals.keys() {
            this.nat_reals.insert(key?);
        }
        info!(
            services = this.ids.services.len(),
            reals = this.ids.reals.len(),
            "adopted the pinned data-plane state"
        );
        Ok(this)
    }

    pub fn ids(&self) -> &Ids {
        &self.ids
    }

    /// Makes the maps describe `config`. Reals without a next hop get no
    /// Maglev slots: they could not be reached, so new flows go elsewhere.
    ///
    /// `marks` are health checking's verdicts: a removed real keeps its id
    /// and entry (flagged [`REAL_DOWN`]) but gets no slots.
    pub fn apply(
        &mut self,
        maps: &mut Maps,
        config: &Config,
        next_hops: &HashMap<IpAddr, Resolution>,
        marks: &HashMap<RealKey, Mark>,
    ) -> Result<Applied> {
        let wanted = Geometry::of(&config.dataplane);
        if wanted != self.geometry {
            bail!(
                "the dataplane sizes changed from {:?} to {wanted:?}: that needs `lbd teardown` \
                 and a fresh start",
                self.geometry
            );
        }
        let ids = self.ids.plan(config)?;
        let mut applied = Applied::default();

        // 1. Real entries, so every id a table is about to name is valid.
        let mut wanted_reals = HashMap::new();
        // Each service's reals as (id, entry flags), in the config's order:
        // the row plans below need both, and looking them up again costs a
        // tree search and a hash per real.
        let mut service_reals: Vec<Vec<(u32, u8)>> = Vec::with_capacity(config.services.len());
        for service in &config.services {
            let key = service_key(service);
            let service_id = ids.services[&key];
            let mut reals = Vec::with_capacity(service.reals.len());
            for real in &service.reals {
                let mark = marks
                    .get(&RealKey::new(key, real))
                    .copied()
                    .unwrap_or_default();
                let identity = RealIdentity::new(service_id, real);
                let id = ids.reals[&identity];
                let entry = real_entry(
                    identity,
                    real,
                    service.forwarding_of(real),
                    next_hops.get(&real.address),
                    config,
                );
                let entry = Real {
                    flags: entry.flags
                        | if self.overloaded.contains(&id) {
                            REAL_OVERLOADED
                        } else {
                            0
                        }
                        | if mark.removed { REAL_DOWN } else { 0 },
                    health: mark.health as u8,
                    ..entry
                };
                wanted_reals.insert(id, entry);
                reals.push((id, entry.flags));
            }
            service_reals.push(reals);
        }
        let known_reals: BTreeSet<u32> = self.ids.reals.values().copied().collect();
        let new_reals: Vec<u32> = wanted_reals
            .keys()
            .filter(|id| !known_reals.contains(id))
            .copied()
            .collect();
        batch::zero_all(&maps.real_stats, &new_reals).context("zeroing new reals' counters")?;
        let (changed, entries): (Vec<u32>, Vec<Real>) = wanted_reals
            .iter()
            .filter(|(id, entry)| self.reals.get(id) != Some(entry))
            .map(|(&id, &entry)| (id, entry))
            .unzip();
        batch::set_all(&maps.reals, &changed, &entries).context("writing real entries")?;
        self.reals.extend(changed.iter().copied().zip(entries));
        applied.reals_written += changed.len();

        // 2. Scheduling rows (and zeroed counters for new services).
        let new_services: Vec<u32> = config
            .services
            .iter()
            .filter(|service| !self.ids.services.contains_key(&service_key(service)))
            .map(|service| ids.services[&service_key(service)])
            .collect();
        batch::zero_all(&maps.service_stats, &new_services)
            .context("zeroing new services' counters")?;
        let mut rows = Vec::with_capacity(config.services.len());
        for (service, reals) in config.services.iter().zip(&service_reals) {
            let service_id = ids.services[&service_key(service)];
            let candidates: Vec<RowReal> = service
                .reals
                .iter()
                .zip(reals)
                .map(|(real, &(id, flags))| {
                    let schedulable = flags & REAL_NEXT_HOP_KNOWN != 0 && flags & REAL_DOWN == 0;
                    RowReal {
                        identity: identity_bytes(real.address, real.port),
                        id,
                        weight: if schedulable { real.weight } else { 0 },
                    }
                })
                .collect();
            let source = RowSource {
                scheduler: service.scheduler.dataplane(),
                candidates,
            };
            if self.rows_written.get(&service_id) != Some(&source) {
                rows.push(RowPlan { service_id, source });
            }
        }
        applied.rows_built += rows.len();
        applied.maglev_slots_written += self.write_rows(&maps.maglev, rows)?;

        // 3. Services and VIPs, now that their tables are complete.
        let mut services_changed = false;
        let mut wanted_vips: BTreeMap<VipKey, VipInfo> = BTreeMap::new();
        for service in &config.services {
            let key = service_key(service);
            let id = ids.services[&key];
            let entry = Service {
                id,
                scheduler: service.scheduler.dataplane() as u8,
                sched_flags: sched_flag_bits(&service.scheduler_flags),
                persistence_prefix: service.persistence.map_or(0, |p| p.prefix),
                persistence_timeout: service.persistence.map_or(0, |p| p.timeout),
                row_len: self.row_lens.get(&id).copied().unwrap_or(0),
                _pad: 0,
            };
            if maps.services.get(&key, 0).ok() != Some(entry) {
                maps.services.insert(key, entry, 0)?;
                services_changed = true;
                if !self.ids.services.contains_key(&key) {
                    applied.services_added += 1;
                }
            }
            wanted_vips.entry(vip_key(&key)).or_default().services += 1;
        }
        for (key, info) in &wanted_vips {
            if self.vips.get(key) != Some(info) {
                maps.vips.insert(key, info, 0)?;
                services_changed = true;
            }
        }

        services_changed |= self.apply_nat_reals(maps, config)?;
        services_changed |= self.apply_settings(maps, config)?;

        // 4. Removals, in reverse: unreachable first, then freed.
        let removed_services: Vec<(ServiceKey, u32)> = self
            .ids
            .services
            .iter()
            .filter(|(key, _)| !ids.services.contains_key(key))
            .map(|(key, id)| (*key, *id))
            .collect();
        if !removed_services.is_empty() {
            let ring = Ring::new(&maps.maglev, self.geometry.maglev_table_size)?;
            let empty = vec![NO_REAL; self.geometry.maglev_table_size as usize];
            for (key, id) in removed_services {
                remove_missing(maps.services.remove(&key))?;
                ring.write_row(id, &empty)?;
                self.row_lens.remove(&id);
                self.rows_written.remove(&id);
                applied.services_removed += 1;
            }
            services_changed = true;
        }
        for key in self.vips.keys() {
            if !wanted_vips.contains_key(key) {
                remove_missing(maps.vips.remove(key))?;
                services_changed = true;
            }
        }
        for &id in self.ids.reals.values() {
            if !wanted_reals.contains_key(&id) {
                maps.reals.set(id, Real::default(), 0)?;
                self.reals.remove(&id);
                self.overloaded.remove(&id);
                applied.reals_removed += 1;
            }
        }
        // Every packet the flow cache answers reads its real's entry, so
        // real changes need no invalidation; service-level ones do, and so
        // do NAT reals (the reply cache reads no real entry).
        if services_changed {
            maps.invalidate_flow_cache()?;
        }
        self.vips = wanted_vips;
        self.ids = ids;
        Ok(applied)
    }

    /// Marks a real over (or back under) its connection threshold: the
    /// schedulers skip overloaded reals. Returns whether anything changed.
    pub fn set_overloaded(&mut self, maps: &mut Maps, id: u32, overloaded: bool) -> Result<bool> {
        let Some(real) = self.reals.get_mut(&id) else {
            return Ok(false);
        };
        let flags = if overloaded {
            real.flags | REAL_OVERLOADED
        } else {
            real.flags & !REAL_OVERLOADED
        };
        if flags == real.flags {
            return Ok(false);
        }
        real.flags = flags;
        maps.reals.set(id, *real, 0)?;
        if overloaded {
            self.overloaded.insert(id);
        } else {
            self.overloaded.remove(&id);
        }
        Ok(true)
    }

    /// Whether the schedulers currently skip this real.
    pub fn is_overloaded(&self, id: u32) -> bool {
        self.overloaded.contains(&id)
    }

    /// Whether the schedulers currently skip any real.
    pub fn any_overloaded(&self) -> bool {
        !self.overloaded.is_empty()
    }

    /// The health verdicts a previous daemon left in the pinned entries.
    pub fn pinned_health(&self) -> HashMap<RealKey, RealHealth> {
        let services: HashMap<u32, ServiceKey> = self
            .ids
            .services
            .iter()
            .map(|(key, id)| (*id, *key))
            .collect();
        self.ids
            .reals
            .iter()
            .filter_map(|(identity, id)| {
                let key = RealKey {
                    service: *services.get(&identity.service_id)?,
                    real: SocketAddr::new(identity.address, identity.port),
                };
                Some((key, RealHealth::from_u8(self.reals.get(id)?.health)))
            })
            .collect()
    }

    /// The data-plane entry of every configured real, by id.
    pub fn reals(&self) -> &HashMap<u32, Real> {
        &self.reals
    }

    /// Addresses of NAT reals: the data plane looks for replies only from
    /// these. Returns whether they changed: the NAT reply cache answers
    /// without asking (see `lb_common::NatReplyCacheEntry`), so a real no
    /// longer behind NAT must empty it.
    fn apply_nat_reals(&mut self, maps: &mut Maps, config: &Config) -> Result<bool> {
        let wanted: BTreeSet<NatRealKey> = config
            .services
            .iter()
            .flat_map(|service| {
                service
                    .reals
                    .iter()
                    .filter(|real| service.forwarding_of(real) == Forwarding::Nat)
            })
            .map(|real| address_key(real.address))
            .collect();
        let added: Vec<NatRealKey> = wanted.difference(&self.nat_reals).copied().collect();
        batch::insert_all(&maps.nat_reals, &added, &vec![1; added.len()])
            .context("adding NAT reals")?;
        for key in self.nat_reals.difference(&wanted) {
            remove_missing(maps.nat_reals.remove(key))?;
        }
        let changed = self.nat_reals != wanted;
        self.nat_reals = wanted;
        Ok(changed)
    }

    /// Returns whether the settings changed. (The flood guard's limit is
    /// not one of them: it decides only whether new flows are recorded,
    /// which no cached decision depends on.)
    fn apply_settings(&mut self, maps: &mut Maps, config: &Config) -> Result<bool> {
        let guard = FloodGuard {
            new_flows_per_second: config.flood_guard.new_flows_per_second,
            _pad: 0,
        };
        if maps.flood_guard.get(&0, 0).ok() != Some(guard) {
            maps.flood_guard.set(0, guard, 0)?;
        }
        let settings = settings_of(config);
        if maps.settings.get(&0, 0).ok() == Some(settings) {
            return Ok(false);
        }
        maps.settings.set(0, settings, 0)?;
        Ok(true)
    }

    /// Builds every planned row and writes the slots that differ from what
    /// the ring holds; returns how many slots were written. Rows are
    /// independent, so they are built and written on every core (a Maglev
    /// row of 65,537 slots takes over a millisecond to build).
    fn write_rows(&mut self, maglev: &Array<MapData, u32>, rows: Vec<RowPlan>) -> Result<usize> {
        let table_size = self.geometry.maglev_table_size;
        let ring = Ring::new(maglev, table_size)?;
        let outcomes: Vec<Result<(u32, usize)>> = rows
            .par_iter()
            .map(|plan| {
                let source = &plan.source;
                let (row, row_len) = build_row(source.scheduler, &source.candidates, table_size)?;
                Ok((row_len, ring.write_row(plan.service_id, &row)?))
            })
            .collect();
        let mut written = 0;
        let mut first_error = None;
        for (plan, outcome) in rows.into_iter().zip(outcomes) {
            match outcome {
                Ok((row_len, slots)) => {
                    self.row_lens.insert(plan.service_id, row_len);
                    self.rows_written.insert(plan.service_id, plan.source);
                    written += slots;
                }
                Err(error) => {
                    // The row may be half written: build it again next time.
                    self.rows_written.remove(&plan.service_id);
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(written),
        }
    }
}

/// What one service's scheduling row is built from.
#[derive(PartialEq, Eq)]
struct RowSource {
    scheduler: Scheduler,
    candidates: Vec<RowReal>,
}

/// A row to build and write.
struct RowPlan {
    service_id: u32,
    source: RowSource,
}

fn remove_missing(result: Result<(), MapError>) -> Result<()> {
    match result {
        Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

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
    use super::*;

    fn config(yaml: &str) -> Config {
        crate::config::parse(yaml, "test.yaml", &|_| true).expect("valid test config")
    }

    const TWO_SERVICES: &str = "
interfaces: [{ name: eth0 }]
services:
  - name: web
    vip: 198.18.1.10
    port: 80
    protocol: tcp
    reals:
      - { address: 198.18.2.11 }
      - { address: 198.18.2.12 }
  - name: dns
    vip: fd00::10
    port: 53
    protocol: udp
    reals:
      - { address: fd00::2:11 }
";

    #[test]
    fn ids_are_dense_from_one_and_stable_across_replans() {
        let config = config(TWO_SERVICES);
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
        let before = Ids::default().plan(&config(TWO_SERVICES)).unwrap();
        let without = TWO_SERVICES.replace("      - { address: 198.18.2.12 }\n", "");
        let after = before.plan(&config(&without)).unwrap();
        for (identity, id) in &after.reals {
            assert_eq!(before.reals[identity], *id);
        }
        assert_eq!(after.reals.len(), 2);
        let removed_id = before
            .reals
            .iter()
            .find(|(identity, _)| identity.address == "198.18.2.12".parse::<IpAddr>().unwrap())
            .map(|(_, id)| *id)
            .unwrap();
        let with_new = TWO_SERVICES.replace("198.18.2.12", "198.18.2.13");
        let again = after.plan(&config(&with_new)).unwrap();
        let new_id = again
            .reals
            .iter()
            .find(|(identity, _)| identity.address == "198.18.2.13".parse::<IpAddr>().unwrap())
            .map(|(_, id)| *id)
            .unwrap();
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
