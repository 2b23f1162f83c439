//! Probe results reaching the daemon loop, and what the control API shows
//! of health checking.

use std::time::SystemTime;

use tokio::sync::mpsc;
use tracing::error;

use super::Daemon;
use crate::{
    config::{RealConfig, ServiceConfig, identity::service_key},
    control::{CheckStatus, QuorumStatus},
    health::{runner::Report, tracker::RealKey},
};

/// Reports handled before the loop looks at its other duties again.
const REPORTS_PER_TURN: usize = 1024;

impl Daemon {
    /// Records `first` and whatever else is already queued, then applies
    /// once if any verdict changed: a burst of failures (a switch port
    /// going down) rebuilds each table once, not once per real.
    pub(super) fn on_health_reports(&mut self, first: Report, queue: &mut mpsc::Receiver<Report>) {
        let mut changed = self.health.record(first).is_some();
        for _ in 1..REPORTS_PER_TURN {
            let Ok(report) = queue.try_recv() else {
                break;
            };
            changed |= self.health.record(report).is_some();
        }
        if changed && let Err(error) = self.apply() {
            error!("applying health changes failed: {error:#}");
        }
    }

    /// A real's checks as the control API shows them.
    pub(super) fn check_status(
        &self,
        service: &ServiceConfig,
        real: &RealConfig,
    ) -> Option<CheckStatus> {
        let check = service.health_check_of(real);
        if !check.is_active() {
            return None;
        }
        let key = RealKey::new(service_key(service), real);
        let state = self.health.state(&key)?;
        let counters = self.health.counters(&key).cloned().unwrap_or_default();
        Some(CheckStatus {
            kind: check.probe.keyword().to_owned(),
            state: state.verdict.name().to_owned(),
            seconds_in_state: SystemTime::now()
                .duration_since(state.since)
                .map_or(0, |elapsed| elapsed.as_secs()),
            last_failure: state.last_failure.as_ref().map(ToString::to_string),
            last_probe_ms: (state.last_probe).map(|(_, took)| took.as_millis() as u64),
            probes: state.probes,
            failures: state.failures,
            failures_by_kind: counters
                .failures
                .iter()
                .map(|(kind, count)| ((*kind).to_owned(), *count))
                .collect(),
            went_up: counters.went_up,
            went_down: counters.went_down,
        })
    }

    pub(super) fn quorum_status(&self, service: &ServiceConfig) -> Option<QuorumStatus> {
        let plan = self.health.plan_of(&service_key(service))?;
        Some(QuorumStatus {
            quorate: plan.quorate,
            healthy_weight: plan.healthy_weight,
            quorum: service.health.quorum,
            on_quorum_loss: service.health.quorum_loss().to_string(),
        })
    }
}
