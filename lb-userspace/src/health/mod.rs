//! Health checking: probes run on the tokio runtime ([`runner`]), rise and
//! fall turn their results into verdicts ([`tracker`]), and verdicts become
//! scheduling: removed or inhibited reals, quorum, the sorry server
//! ([`admission`]). The daemon feeds reports in and applies the plan.

pub mod admission;
pub mod notify;
pub mod probe;
pub mod runner;
pub mod tracker;

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::SystemTime};

use lb_common::{RealHealth, ServiceKey};
use tokio::sync::mpsc;
use tracing::{info, warn};

use self::{
    admission::{LastQuorate, Mark, ServicePlan, plan_service},
    runner::{ProbeSpec, Report, Runner},
    tracker::{Outcome, RealKey, RealState, Tracker, Transition, Verdict},
};
use crate::config::{Config, identity::service_key};

/// What a probed real needs at each report.
#[derive(Clone, Debug)]
struct Probed {
    rise: u32,
    fall: u32,
    service_name: Arc<str>,
    notify_up: Arc<[String]>,
    notify_down: Arc<[String]>,
}

/// Transitions and failures so far, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RealCounters {
    pub went_up: u64,
    pub went_down: u64,
    /// Failed probes by [`probe::Failure::kind`].
    pub failures: HashMap<&'static str, u64>,
}

pub struct Monitor {
    tracker: Tracker,
    runner: Runner,
    probed: HashMap<RealKey, Probed>,
    last_quorate: LastQuorate,
    plans: HashMap<ServiceKey, ServicePlan>,
    counters: HashMap<RealKey, RealCounters>,
}

impl Monitor {
    pub fn new(reports: mpsc::Sender<Report>) -> Self {
        Self {
            tracker: Tracker::default(),
            runner: Runner::new(reports),
            probed: HashMap::new(),
            last_quorate: LastQuorate::default(),
            plans: HashMap::new(),
            counters: HashMap::new(),
        }
    }

    /// Follows a new declared configuration: starts probing new reals
    /// (seeded from `pinned`, what a previous daemon left in the maps),
    /// restarts changed probes, forgets reals no longer probed.
    pub fn configure(&mut self, config: &Config, pinned: &HashMap<RealKey, RealHealth>) {
        let now = SystemTime::now();
        let mut wanted = HashMap::new();
        let mut probed = HashMap::new();
        for service in &config.services {
            let service_key = service_key(service);
            let name: Arc<str> = Arc::from(service.name.as_str());
            let notify_up: Arc<[String]> = service.health.notify_up.clone().into();
            let notify_down: Arc<[String]> = service.health.notify_down.clone().into();
            for real in &service.reals {
                let check = service.health_check_of(real);
                if !check.is_active() {
                    continue;
                }
                let key = RealKey::new(service_key, real);
                let known = pinned.get(&key).copied().unwrap_or_default();
                self.tracker.track(key, known, service.health.alpha, now);
                let target = SocketAddr::new(real.address, check.port.unwrap_or(real.port));
                wanted.insert(
                    key,
                    ProbeSpec {
                        check: check.clone(),
                        target,
                    },
                );
                probed.insert(
                    key,
                    Probed {
                        rise: check.rise,
                        fall: check.fall,
                        service_name: name.clone(),
                        notify_up: notify_up.clone(),
                        notify_down: notify_down.clone(),
                    },
                );
            }
        }
        self.tracker.retain(|key| probed.contains_key(key));
        self.counters.retain(|key, _| probed.contains_key(key));
        self.probed = probed;
        let services: Vec<ServiceKey> = config.services.iter().map(service_key).collect();
        self.last_quorate.retain(|key| services.contains(key));
        self.runner.sync(wanted);
        info!(probed = self.runner.len(), "health checks configured");
    }

    /// Counts one probe result. A completed transition is logged, counted
    /// and notified, and returned: the caller re-plans.
    pub fn record(&mut self, report: Report) -> Option<Transition> {
        let probed = self.probed.get(&report.key)?;
        let counters = self.counters.entry(report.key).or_default();
        if let Err(failure) = &report.result {
            *counters.failures.entry(failure.kind()).or_default() += 1;
        }
        let outcome = Outcome {
            result: &report.result,
            at: report.at,
            took: report.took,
        };
        let transition = self
            .tracker
            .record(report.key, outcome, probed.rise, probed.fall)?;
        let service = &probed.service_name;
        let real = transition.key.real;
        let reason = &transition.reason;
        let commands = match transition.to {
            Verdict::Up => {
                counters.went_up += 1;
                info!(%service, %real, %reason, "real is up");
                &probed.notify_up
            }
            Verdict::Down => {
                counters.went_down += 1;
                warn!(%service, %real, %reason, "real is down");
                &probed.notify_down
            }
        };
        if !commands.is_empty() {
            notify::spawn(commands, service, real, transition.to, reason);
        }
        Some(transition)
    }

    /// Decides every service's scheduling from the verdicts, logging quorum
    /// changes, and returns the configuration the data plane should run
    /// with the health marks of its reals.
    pub fn plan(&mut self, config: &Config) -> (Config, HashMap<RealKey, Mark>) {
        let mut plans = HashMap::new();
        for service in &config.services {
            let key = service_key(service);
            let plan = plan_service(
                key,
                service,
                |real| self.tracker.verdict(&RealKey::new(key, real)),
                &mut self.last_quorate,
            );
            let was_quorate = self.plans.get(&key).map(|previous| previous.quorate);
            if was_quorate.is_some_and(|was| was != plan.quorate) {
                let name = &service.name;
                let quorum = service.health.quorum;
                if plan.quorate {
                    info!(service = %name, quorum, "quorum regained");
                } else {
                    let policy = service.health.quorum_loss();
                    warn!(service = %name, quorum, %policy, "quorum lost");
                }
            }
            plans.insert(key, plan);
        }
        let tracker = &self.tracker;
        let result = admission::effective(config, &plans, |key| tracker.verdict(key));
        self.plans = plans;
        result
    }

    pub fn state(&self, key: &RealKey) -> Option<&RealState> {
        self.tracker.get(key)
    }

    pub fn plan_of(&self, service: &ServiceKey) -> Option<&ServicePlan> {
        self.plans.get(service)
    }

    pub fn counters(&self, key: &RealKey) -> Option<&RealCounters> {
        self.counters.get(key)
    }
}
