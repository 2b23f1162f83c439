//! Probe scheduling: one small task per probed real on the tokio runtime,
//! each starting at a random point of its first interval so that a
//! thousand reals are not probed in the same millisecond, and a semaphore
//! bounding the probes in flight (sockets, processes).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::{
    sync::{Semaphore, mpsc},
    task::JoinHandle,
    time::{Instant, MissedTickBehavior},
};

use super::{
    probe::{Failure, Prober},
    tracker::RealKey,
};
use crate::config::HealthCheck;

/// Probes in flight at once, all kinds together; more wait their turn.
pub const MAX_PROBES_IN_FLIGHT: usize = 2048;
/// Exec checks running at once (each is a process).
pub const MAX_CHECK_PROCESSES: usize = 32;

/// What one probe is: the check and the address it goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeSpec {
    pub check: HealthCheck,
    pub target: SocketAddr,
}

/// One probe's result, sent to the daemon loop.
#[derive(Debug)]
pub struct Report {
    pub key: RealKey,
    pub result: Result<(), Failure>,
    pub at: SystemTime,
    pub took: Duration,
}

pub struct Runner {
    tasks: HashMap<RealKey, (ProbeSpec, JoinHandle<()>)>,
    reports: mpsc::Sender<Report>,
    prober: Prober,
    in_flight: Arc<Semaphore>,
}

impl Runner {
    /// Starts with no probes; reports go to `reports`.
    pub fn new(reports: mpsc::Sender<Report>) -> Self {
        Self {
            tasks: HashMap::new(),
            reports,
            prober: Prober::new(MAX_CHECK_PROCESSES),
            in_flight: Arc::new(Semaphore::new(MAX_PROBES_IN_FLIGHT)),
        }
    }

    /// Makes the running probes exactly `wanted`: new ones start (at a
    /// random point of their first interval), changed ones restart, the
    /// rest stop. Unchanged probes keep their rhythm.
    pub fn sync(&mut self, wanted: HashMap<RealKey, ProbeSpec>) {
        self.tasks.retain(|key, (spec, task)| {
            let keep = wanted.get(key) == Some(spec);
            if !keep {
                task.abort();
            }
            keep
        });
        for (key, spec) in wanted {
            if self.tasks.contains_key(&key) {
                continue;
            }
            let task = tokio::spawn(probe_loop(
                key,
                spec.clone(),
                self.prober.clone(),
                self.in_flight.clone(),
                self.reports.clone(),
            ));
            self.tasks.insert(key, (spec, task));
        }
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        for (_, task) in self.tasks.values() {
            task.abort();
        }
    }
}

async fn probe_loop(
    key: RealKey,
    spec: ProbeSpec,
    prober: Prober,
    in_flight: Arc<Semaphore>,
    reports: mpsc::Sender<Report>,
) {
    let interval = spec.check.interval;
    let first = Instant::now() + interval.mul_f64(fastrand::f64());
    let mut ticks = tokio::time::interval_at(first, interval);
    // A probe that ran long (or waited) shifts the rhythm rather than
    // firing a burst of catch-up probes.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Ok(_permit) = in_flight.acquire().await else {
            return;
        };
        let started = Instant::now();
        let at = SystemTime::now();
        let result = prober
            .probe(&spec.check.probe, spec.target, spec.check.timeout)
            .await;
        let report = Report {
            key,
            result,
            at,
            took: started.elapsed(),
        };
        if reports.send(report).await.is_err() {
            return;
        }
    }
}
