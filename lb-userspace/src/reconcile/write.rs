//! Writing a [`Desired`] into the maps: only what differs from what they
//! hold, in an order that never exposes a half-built service. Reals first,
//! so every id a row is about to name is valid; then the scheduling rows;
//! then the service and VIP entries that make them reachable. Removals go
//! in reverse: unreachable first, then freed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Context as _, Result};
use aya::maps::{Array, MapData, MapError};
use lb_common::{
    Family, FloodGuard, NO_REAL, NatRealKey, REAL_ACTIVE, REAL_OVERLOADED, Real, Service,
    ServiceKey, Settings, VipInfo, VipKey,
};
use rayon::prelude::*;

use crate::{
    config::identity::RealIdentity,
    dataplane::{Geometry, Maps, batch, ring::Ring},
    reconcile::{
        ids::Ids,
        plan::{Desired, RowPlan, RowSource},
    },
    rows::build_row,
};

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

/// The daemon's view of what the maps hold, beside the ids ([`Ids`] say
/// which services and reals have entries). Not the scheduling rows: a
/// thousand of them are a quarter of a GiB, and the ring itself says what
/// each slot holds (`dataplane::ring`), so a row is compared with the ring
/// when it is written.
pub struct Written {
    pub geometry: Geometry,
    pub reals: HashMap<u32, Real>,
    /// Slots in use per service row (rr, wrr, least-connection lists).
    row_lens: HashMap<u32, u32>,
    /// What each service's row was last built from: a row whose plan is
    /// unchanged is neither built nor written again (a health change of one
    /// real rebuilds one row, not a thousand). Empty after adoption, when
    /// nothing says what the pinned rows were built from.
    rows_written: HashMap<u32, RowSource>,
    /// Reals over their upper connection threshold (the daemon decides).
    pub overloaded: BTreeSet<u32>,
    vips: BTreeMap<VipKey, VipInfo>,
    nat_reals: BTreeSet<NatRealKey>,
}

impl Written {
    /// Empty maps.
    pub fn new(geometry: Geometry) -> Self {
        Self {
            geometry,
            reals: HashMap::new(),
            row_lens: HashMap::new(),
            rows_written: HashMap::new(),
            overloaded: BTreeSet::new(),
            vips: BTreeMap::new(),
            nat_reals: BTreeSet::new(),
        }
    }

    /// What a previous daemon left in the pinned maps, and the ids it gave.
    pub fn adopt(geometry: Geometry, maps: &Maps) -> Result<(Self, Ids)> {
        let mut this = Self::new(geometry);
        let mut ids = Ids::default();
        for entry in maps.services.iter() {
            let (key, service) = entry?;
            ids.services.insert(key, service.id);
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
            ids.reals.insert(identity, id);
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
        Ok((this, ids))
    }

    /// Makes the maps hold `desired`. `before` are the ids the maps hold
    /// entries for, `after` the ones `desired` was planned with.
    pub fn write(
        &mut self,
        maps: &mut Maps,
        desired: Desired,
        before: &Ids,
        after: &Ids,
    ) -> Result<Applied> {
        // 1. Real entries, so every id a row is about to name is valid.
        let mut applied = Applied {
            reals_written: self.write_reals(maps, &desired.reals, before)?,
            ..Applied::default()
        };
        // 2. Scheduling rows (and zeroed counters for new services).
        let new_services: Vec<u32> = desired
            .services
            .iter()
            .filter(|(key, _)| !before.services.contains_key(key))
            .map(|(_, service)| service.id)
            .collect();
        batch::zero_all(&maps.service_stats, &new_services)
            .context("zeroing new services' counters")?;
        let rows: Vec<RowPlan> = desired
            .rows
            .into_iter()
            .filter(|row| self.rows_written.get(&row.service_id) != Some(&row.source))
            .collect();
        applied.rows_built = rows.len();
        applied.maglev_slots_written = self.write_rows(&maps.maglev, rows)?;

        // 3. Services and VIPs, now that their rows are complete; then
        // what no service entry points at.
        let mut services_changed;
        (applied.services_added, services_changed) =
            self.write_services(maps, &desired.services, before)?;
        for (key, info) in &desired.vips {
            if self.vips.get(key) != Some(info) {
                maps.vips.insert(key, info, 0)?;
                services_changed = true;
            }
        }
        services_changed |= self.write_nat_reals(maps, desired.nat_reals)?;
        services_changed |= write_settings(maps, desired.flood_guard, desired.settings)?;

        // 4. Removals, in reverse: unreachable first, then freed.
        applied.services_removed = self.remove_services(maps, before, after)?;
        services_changed |= applied.services_removed > 0;
        for key in self.vips.keys() {
            if !desired.vips.contains_key(key) {
                remove_missing(maps.vips.remove(key))?;
                services_changed = true;
            }
        }
        let gone = (before.reals.values().copied()).filter(|id| !desired.reals.contains_key(id));
        applied.reals_removed = self.remove_reals(maps, gone)?;
        // Every packet the flow cache answers reads its real's entry, so
        // real changes need no invalidation; service-level ones do, and so
        // do NAT reals (the reply cache reads no real entry).
        if services_changed {
            maps.invalidate_flow_cache()?;
        }
        self.vips = desired.vips;
        Ok(applied)
    }

    /// Writes the real entries that differ (zeroing the counters of new
    /// ones first); returns how many it wrote.
    fn write_reals(
        &mut self,
        maps: &mut Maps,
        wanted: &HashMap<u32, Real>,
        before: &Ids,
    ) -> Result<usize> {
        let known: BTreeSet<u32> = before.reals.values().copied().collect();
        let new: Vec<u32> = wanted
            .keys()
            .filter(|id| !known.contains(id))
            .copied()
            .collect();
        batch::zero_all(&maps.real_stats, &new).context("zeroing new reals' counters")?;
        let (changed, entries): (Vec<u32>, Vec<Real>) = wanted
            .iter()
            .filter(|(id, entry)| self.reals.get(id) != Some(entry))
            .map(|(&id, &entry)| (id, entry))
            .unzip();
        batch::set_all(&maps.reals, &changed, &entries).context("writing real entries")?;
        self.reals.extend(changed.iter().copied().zip(entries));
        Ok(changed.len())
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

    /// Writes the service entries that differ from the map's, each with
    /// its row's length; returns how many of them are new services and
    /// whether any was written.
    fn write_services(
        &self,
        maps: &mut Maps,
        services: &[(ServiceKey, Service)],
        before: &Ids,
    ) -> Result<(usize, bool)> {
        let mut added = 0;
        let mut changed = false;
        for &(key, entry) in services {
            let entry = Service {
                row_len: self.row_lens.get(&entry.id).copied().unwrap_or(0),
                ..entry
            };
            if maps.services.get(&key, 0).ok() != Some(entry) {
                maps.services.insert(key, entry, 0)?;
                changed = true;
                if !before.services.contains_key(&key) {
                    added += 1;
                }
            }
        }
        Ok((added, changed))
    }

    /// Makes `LB_NAT_REALS` hold `wanted`. Returns whether it changed: the
    /// NAT reply cache answers without asking (see
    /// `lb_common::NatReplyCacheEntry`), so a real no longer behind NAT
    /// must empty it.
    fn write_nat_reals(&mut self, maps: &mut Maps, wanted: BTreeSet<NatRealKey>) -> Result<bool> {
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

    /// Removes the services `after` no longer has, emptying their rows;
    /// returns how many.
    fn remove_services(&mut self, maps: &mut Maps, before: &Ids, after: &Ids) -> Result<usize> {
        let removed: Vec<(ServiceKey, u32)> = before
            .services
            .iter()
            .filter(|(key, _)| !after.services.contains_key(key))
            .map(|(key, id)| (*key, *id))
            .collect();
        if removed.is_empty() {
            return Ok(0);
        }
        let ring = Ring::new(&maps.maglev, self.geometry.maglev_table_size)?;
        let empty = vec![NO_REAL; self.geometry.maglev_table_size as usize];
        for &(key, id) in &removed {
            remove_missing(maps.services.remove(&key))?;
            ring.write_row(id, &empty)?;
            self.row_lens.remove(&id);
            self.rows_written.remove(&id);
        }
        Ok(removed.len())
    }

    /// Clears the entries of the reals `gone`; returns how many.
    fn remove_reals(&mut self, maps: &mut Maps, gone: impl Iterator<Item = u32>) -> Result<usize> {
        let mut removed = 0;
        for id in gone {
            maps.reals.set(id, Real::default(), 0)?;
            self.reals.remove(&id);
            self.overloaded.remove(&id);
            removed += 1;
        }
        Ok(removed)
    }
}

/// Returns whether the settings changed. (The flood guard's limit is not
/// one of them: it decides only whether new flows are recorded, which no
/// cached decision depends on.)
fn write_settings(maps: &mut Maps, guard: FloodGuard, settings: Settings) -> Result<bool> {
    if maps.flood_guard.get(&0, 0).ok() != Some(guard) {
        maps.flood_guard.set(0, guard, 0)?;
    }
    if maps.settings.get(&0, 0).ok() == Some(settings) {
        return Ok(false);
    }
    maps.settings.set(0, settings, 0)?;
    Ok(true)
}

fn remove_missing(result: Result<(), MapError>) -> Result<()> {
    match result {
        Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
        Err(error) => Err(error.into()),
    }
}
