//! Turning a validated [`Config`] into map contents, in two steps: a pure
//! [`plan`] (what the maps should hold, unit-tested without maps) and a
//! [`write`]r that compares it with what they hold and writes only the
//! difference, in an order that never exposes a half-built service.
//! [`ids`] keeps the ids stable across applies and restarts.

pub mod ids;
pub mod plan;
pub mod write;

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
};

use anyhow::{Result, bail};
use lb_common::{REAL_OVERLOADED, Real, RealHealth, ServiceKey};
use tracing::info;

pub use self::{ids::Ids, write::Applied};
use crate::{
    config::Config,
    dataplane::{Geometry, Maps},
    health::{admission::Mark, tracker::RealKey},
    neighbours::Resolution,
    reconcile::{
        plan::{Marks, desired},
        write::Written,
    },
};

/// The ids handed out and what the maps hold under them.
pub struct Reconciler {
    ids: Ids,
    written: Written,
}

impl Reconciler {
    /// Starts from empty maps.
    pub fn new(geometry: Geometry) -> Self {
        Self {
            ids: Ids::default(),
            written: Written::new(geometry),
        }
    }

    /// Reads back what a previous daemon left in the pinned maps.
    pub fn adopt(geometry: Geometry, maps: &Maps) -> Result<Self> {
        let (written, ids) = Written::adopt(geometry, maps)?;
        info!(
            services = ids.services.len(),
            reals = ids.reals.len(),
            "adopted the pinned data-plane state"
        );
        Ok(Self { ids, written })
    }

    pub fn ids(&self) -> &Ids {
        &self.ids
    }

    /// Makes the maps describe `config`. Reals without a next hop get no
    /// Maglev slots: they could not be reached, so new flows go elsewhere.
    ///
    /// `marks` are health checking's verdicts: a removed real keeps its id
    /// and entry (flagged [`lb_common::REAL_DOWN`]) but gets no slots.
    pub fn apply(
        &mut self,
        maps: &mut Maps,
        config: &Config,
        next_hops: &HashMap<IpAddr, Resolution>,
        marks: &HashMap<RealKey, Mark>,
    ) -> Result<Applied> {
        let wanted = Geometry::of(&config.dataplane);
        if wanted != self.written.geometry {
            bail!(
                "the dataplane sizes changed from {:?} to {wanted:?}: that needs `lbd teardown` \
                 and a fresh start",
                self.written.geometry
            );
        }
        let ids = self.ids.plan(config)?;
        let marks = Marks {
            health: marks,
            overloaded: &self.written.overloaded,
        };
        let desired = desired(config, &ids, next_hops, &marks);
        let applied = self.written.write(maps, desired, &self.ids, &ids)?;
        self.ids = ids;
        Ok(applied)
    }

    /// Marks a real over (or back under) its connection threshold: the
    /// schedulers skip overloaded reals. Returns whether anything changed.
    pub fn set_overloaded(&mut self, maps: &mut Maps, id: u32, overloaded: bool) -> Result<bool> {
        let Some(real) = self.written.reals.get_mut(&id) else {
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
            self.written.overloaded.insert(id);
        } else {
            self.written.overloaded.remove(&id);
        }
        Ok(true)
    }

    /// Whether the schedulers currently skip this real.
    pub fn is_overloaded(&self, id: u32) -> bool {
        self.written.overloaded.contains(&id)
    }

    /// Whether the schedulers currently skip any real.
    pub fn any_overloaded(&self) -> bool {
        !self.written.overloaded.is_empty()
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
                Some((key, RealHealth::from_u8(self.written.reals.get(id)?.health)))
            })
            .collect()
    }

    /// The data-plane entry of every configured real, by id.
    pub fn reals(&self) -> &HashMap<u32, Real> {
        &self.written.reals
    }
}
