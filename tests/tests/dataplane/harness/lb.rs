//! The compiled program with private maps, and what a test writes into
//! them: services, reals, Maglev rows, settings, flows.

use std::{collections::BTreeMap, net::IpAddr};

use aya::{maps::PerCpuValues, programs::ProgramError};
use lb_common::{
    Addr, Family, FlowKey, FlowState, ForwardingMethod, GlobalCounter, PersistKey, PersistState,
    REAL_ACTIVE, REAL_NEXT_HOP_KNOWN, Real, RealConns, Scheduler, Service, ServiceKey,
    TrafficCounters, VipInfo, VipKey, flow_hash::flow_hash, programs,
};
use lb_tests::frames::{LB_EGRESS_MAC, ip, real_mac, sa};
use lb_userspace::dataplane::{Dataplane, Geometry, Maps};

use super::case::{Case, assert_no_mismatches, counter_mismatches, outcome_mismatches};
use super::run::test_run;

/// A small prime keeps loading fast; every slot is still written by hand.
pub const MAGLEV_TABLE_SIZE: u32 = 13;
const FLOW_TABLE_ENTRIES: u32 = 1024;

/// Without a `ctx_in`, the kernel runs an XDP test run as if the frame came
/// in on the loopback device of the current network namespace.
pub const INGRESS_IFINDEX: u32 = 1;

/// A real as the daemon would write it: active, next hop known, reachable
/// through the ingress interface (so DR answers with XDP_TX).
pub fn real(real_id: u32, service_id: u32, addr: IpAddr) -> Real {
    Real {
        addr: Addr::from(addr),
        family: Family::of(&addr) as u8,
        flags: REAL_ACTIVE | REAL_NEXT_HOP_KNOWN,
        forwarding: ForwardingMethod::DirectRouting as u8,
        port_be: 0,
        service_id,
        ifindex: INGRESS_IFINDEX,
        dst_mac: real_mac(real_id),
        src_mac: LB_EGRESS_MAC,
        weight: 1,
        ..Real::default()
    }
}

/// One service's Maglev row as the test wrote it, kept to predict choices.
#[derive(Clone, Debug)]
pub struct MaglevRow(pub Vec<u32>);

impl MaglevRow {
    pub fn from_fn(slot_to_real: impl Fn(u32) -> u32) -> Self {
        Self((0..MAGLEV_TABLE_SIZE).map(slot_to_real).collect())
    }

    /// Every slot to the same real (or `NO_REAL`).
    pub fn all(real_id: u32) -> Self {
        Self::from_fn(|_| real_id)
    }

    /// The real the data plane must pick for a new flow with this key.
    pub fn predict(&self, key: &FlowKey) -> u32 {
        self.0[(flow_hash(key) % MAGLEV_TABLE_SIZE) as usize]
    }
}

/// The compiled program with private maps, plus what the test configured.
pub struct Lb {
    dataplane: Dataplane,
    /// Reals as written, to build expected output frames.
    pub reals: BTreeMap<u32, Real>,
}

impl Lb {
    pub fn load() -> Self {
        let geometry = Geometry {
            maglev_table_size: MAGLEV_TABLE_SIZE,
            flow_table_entries: FLOW_TABLE_ENTRIES,
            ..Geometry::default()
        };
        let dataplane =
            Dataplane::load(geometry, None).expect("loading the data plane (needs root / CAP_BPF)");
        Self {
            dataplane,
            reals: BTreeMap::new(),
        }
    }

    /// Registers `vip` (port 0: every port) for `protocol`, as service `id`.
    pub fn service(&mut self, vip: &str, protocol: u8, id: u32) {
        let vip = sa(vip);
        let addr = Addr::from(vip.ip());
        let family = Family::of(&vip.ip()) as u8;
        let vip_key = VipKey {
            addr,
            family,
            _pad: [0; 3],
        };
        let maps = &mut self.dataplane.maps;
        let services = maps.vips.get(&vip_key, 0).map_or(0, |info| info.services);
        maps.vips
            .insert(
                vip_key,
                VipInfo {
                    services: services + 1,
                },
                0,
            )
            .expect("insert VIP");
        let key = ServiceKey {
            addr,
            port_be: vip.port().to_be(),
            protocol,
            family,
        };
        let value = Service {
            id,
            scheduler: Scheduler::Maglev as u8,
            sched_flags: lb_common::SCHED_FLAG_PORT,
            row_len: MAGLEV_TABLE_SIZE,
            ..Service::default()
        };
        maps.services.insert(key, value, 0).expect("insert service");
        self.forget_cached_flows();
    }

    /// What lbd does after changing services, settings or flow entries:
    /// the data plane's flow caches drop every decision made before.
    pub fn forget_cached_flows(&mut self) {
        self.dataplane
            .maps
            .invalidate_flow_cache()
            .expect("bump the flow cache generation");
    }

    /// Changes the service entry of `vip` (as given to [`Lb::service`]):
    /// scheduler, flags, persistence, row length.
    pub fn configure_service(
        &mut self,
        vip: &str,
        protocol: u8,
        configure: impl FnOnce(&mut Service),
    ) {
        let vip = sa(vip);
        let key = ServiceKey {
            addr: Addr::from(vip.ip()),
            port_be: vip.port().to_be(),
            protocol,
            family: Family::of(&vip.ip()) as u8,
        };
        let services = &mut self.dataplane.maps.services;
        let mut service = services.get(&key, 0).expect("the service exists");
        configure(&mut service);
        services.insert(key, service, 0).expect("write service");
        self.forget_cached_flows();
    }

    /// Writes `slots` at the start of the service's row, `NO_REAL` in the
    /// rest (rr, wrr and the least-connection family read only the first
    /// `row_len` slots).
    pub fn set_row(&mut self, service_id: u32, slots: &[u32]) {
        assert!(slots.len() <= MAGLEV_TABLE_SIZE as usize);
        let row = MaglevRow::from_fn(|slot| slots.get(slot as usize).copied().unwrap_or(0));
        self.set_maglev_row(service_id, &row);
    }

    /// `LB_REAL_CONNS[real_id]`.
    pub fn set_real_conns(&mut self, real_id: u32, active: u32, inactive: u32) {
        self.dataplane
            .maps
            .real_conns
            .set(real_id, RealConns { active, inactive }, 0)
            .expect("write connection counts");
    }

    pub fn real_conns(&self, real_id: u32) -> RealConns {
        self.dataplane
            .maps
            .real_conns
            .get(&real_id, 0)
            .expect("read connection counts")
    }

    /// The persistence template under `key`.
    pub fn template(&self, key: &PersistKey) -> Option<PersistState> {
        self.dataplane.maps.persist.get(key, 0).ok()
    }

    pub fn set_template(&mut self, key: PersistKey, template: PersistState) {
        self.dataplane
            .maps
            .persist
            .insert(key, template, 0)
            .expect("write template");
    }

    pub fn set_flow(&mut self, key: FlowKey, flow: FlowState) {
        self.dataplane
            .maps
            .flows
            .insert(key, flow, 0)
            .expect("write flow");
        self.forget_cached_flows();
    }

    /// The maps, for the daemon's own functions (reaper, counts).
    pub fn maps(&self) -> &Maps {
        &self.dataplane.maps
    }

    pub fn maps_mut(&mut self) -> &mut Maps {
        &mut self.dataplane.maps
    }

    /// Writes the run-time settings (timeouts, behaviour flags).
    pub fn set_settings(&mut self, settings: lb_common::Settings) {
        self.dataplane
            .maps
            .settings
            .set(0, settings, 0)
            .expect("write settings");
        self.forget_cached_flows();
    }

    /// New flows each CPU records per second (`LB_FLOOD_GUARD`); 0, the
    /// value of a fresh map, records them all.
    pub fn set_flood_guard(&mut self, new_flows_per_second: u32) {
        let guard = lb_common::FloodGuard {
            new_flows_per_second,
            _pad: 0,
        };
        self.dataplane
            .maps
            .flood_guard
            .set(0, guard, 0)
            .expect("write the flood guard");
    }

    pub fn set_real(&mut self, id: u32, real: Real) {
        self.dataplane
            .maps
            .reals
            .set(id, real, 0)
            .expect("write real");
        self.reals.insert(id, real);
    }

    pub fn real(&self, id: u32) -> &Real {
        &self.reals[&id]
    }

    pub fn set_maglev_row(&mut self, service_id: u32, row: &MaglevRow) {
        assert_eq!(row.0.len(), MAGLEV_TABLE_SIZE as usize);
        for (slot, real_id) in (0..).zip(&row.0) {
            self.dataplane
                .maps
                .maglev
                .set(service_id * MAGLEV_TABLE_SIZE + slot, real_id, 0)
                .expect("write Maglev slot");
        }
    }

    /// A service with three usable reals (`first_real`, +1, +2) and a row
    /// that spreads the slots over them round robin (slot % 3), so that
    /// different flows really do land on different reals.
    pub fn service_with_three_reals(
        &mut self,
        vip: &str,
        protocol: u8,
        service_id: u32,
        first_real: u32,
    ) -> MaglevRow {
        self.service(vip, protocol, service_id);
        let real_addr = |n: u32| match sa(vip).ip() {
            IpAddr::V4(_) => ip(&format!("198.18.1.{n}")),
            IpAddr::V6(_) => ip(&format!("fd00:1::{n:x}")),
        };
        for id in first_real..first_real + 3 {
            self.set_real(id, real(id, service_id, real_addr(id)));
        }
        let row = MaglevRow::from_fn(|slot| first_real + slot % 3);
        self.set_maglev_row(service_id, &row);
        row
    }

    /// `LB_TX_PORTS[key] = target` (both ifindexes).
    pub fn add_tx_port(&mut self, key: u32, target_ifindex: u32) {
        self.dataplane
            .maps
            .tx_ports
            .insert(key, target_ifindex, None, 0)
            .expect("insert into the devmap");
    }

    pub fn flow(&self, key: &FlowKey) -> Option<FlowState> {
        self.dataplane.maps.flows.get(key, 0).ok()
    }

    /// Every global counter, summed over the CPUs.
    pub fn global_counters(&self) -> [u64; GlobalCounter::COUNT as usize] {
        GlobalCounter::ALL.map(|counter| self.global_counter(counter))
    }

    /// One global counter, summed over the CPUs.
    pub fn global_counter(&self, counter: GlobalCounter) -> u64 {
        let values: PerCpuValues<u64> = self
            .dataplane
            .maps
            .global_stats
            .get(&(counter as u32), 0)
            .expect("read global counter");
        values.iter().sum()
    }

    pub fn service_counters(&self, service_id: u32) -> TrafficCounters {
        let values = self
            .dataplane
            .maps
            .service_stats
            .get(&service_id, 0)
            .expect("read service counters");
        sum(&values)
    }

    pub fn real_counters(&self, real_id: u32) -> TrafficCounters {
        let values = self
            .dataplane
            .maps
            .real_stats
            .get(&real_id, 0)
            .expect("read real counters");
        sum(&values)
    }

    /// One run of the balancer on `frame`: the action and the frame as the
    /// program left it. `repeat` stays 1: a second run would see the frame
    /// the first one rewrote.
    pub fn try_run(&mut self, frame: &[u8]) -> Result<(u32, Vec<u8>), ProgramError> {
        self.try_run_on(frame, None)
    }

    /// As [`Lb::try_run`], as if the frame came in on `ingress` (an ifindex
    /// of the current namespace) instead of the loopback.
    pub fn try_run_on(
        &mut self,
        frame: &[u8],
        ingress: Option<u32>,
    ) -> Result<(u32, Vec<u8>), ProgramError> {
        let program = self
            .dataplane
            .program_mut(programs::BALANCER)
            .expect("balancer program");
        test_run(program, frame, ingress)
    }

    /// Runs one case; returns what went wrong, if anything.
    pub fn check(&mut self, case: &Case) -> Vec<String> {
        self.check_output(case, |_| {})
    }

    /// As [`Lb::check`], handing the frame that came out to `inspect` too
    /// (for checks of its own, e.g. checksums).
    pub fn check_output(&mut self, case: &Case, inspect: impl FnOnce(&[u8])) -> Vec<String> {
        let before = self.global_counters();
        let (action, out) = match self.try_run_on(&case.frame, case.ingress) {
            Ok(result) => result,
            Err(error) => return vec![format!("{}: test run failed: {error}", case.name)],
        };
        let after = self.global_counters();
        inspect(&out);
        let mut errors = outcome_mismatches(&case.name, (action, &out), case);
        errors.extend(counter_mismatches(&case.name, &before, &after, |counter| {
            case.expected_delta(counter)
        }));
        errors
    }

    /// Runs every case, in order, and fails with all mismatches at once.
    pub fn expect_all(&mut self, cases: &[Case]) {
        let errors: Vec<String> = cases.iter().flat_map(|case| self.check(case)).collect();
        assert_no_mismatches(&errors, cases.len());
    }

    pub fn expect(&mut self, case: &Case) {
        self.expect_all(std::slice::from_ref(case));
    }
}

fn sum(values: &PerCpuValues<TrafficCounters>) -> TrafficCounters {
    let mut total = TrafficCounters::default();
    for value in values.iter() {
        total.add(value);
    }
    total
}
