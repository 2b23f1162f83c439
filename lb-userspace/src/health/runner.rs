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
    time::{Instant, MissedTickBehavior},
};

use super::{
    probe::{Failure, Prober},
    tracker::RealKey,
};
use crate::{config::HealthCheck, tasks::AbortOnDrop};

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
    /// A probe stops when its entry goes (or with the runner).
    tasks: HashMap<RealKey, (ProbeSpec, AbortOnDrop)>,
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
        self.tasks
            .retain(|key, (spec, _)| wanted.get(key) == Some(spec));
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
            self.tasks.insert(key, (spec, AbortOnDrop(task)));
        }
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
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

#[cfg(test)]
mod tests {
    use std::{
        collections::HashSet,
        net::{IpAddr, Ipv4Addr},
    };

    use lb_common::ServiceKey;

    use super::*;

    fn key(last_octet: u8) -> RealKey {
        RealKey {
            service: ServiceKey::default(),
            real: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, last_octet)), 80),
        }
    }

    /// A probe that always passes at once, every 5 ms.
    fn spec(key: &RealKey) -> ProbeSpec {
        ProbeSpec {
            check: HealthCheck {
                interval: Duration::from_millis(5),
                ..HealthCheck::default()
            },
            target: key.real,
        }
    }

    /// The reals that reported within `window`.
    async fn reporting(reports: &mut mpsc::Receiver<Report>, window: Duration) -> HashSet<RealKey> {
        let mut seen = HashSet::new();
        let deadline = Instant::now() + window;
        while let Ok(Some(report)) = tokio::time::timeout_at(deadline, reports.recv()).await {
            seen.insert(report.key);
        }
        seen
    }

    #[tokio::test]
    async fn probes_stop_when_no_longer_wanted_and_with_the_runner() {
        let (sender, mut reports) = mpsc::channel(1024);
        let mut runner = Runner::new(sender);
        let (a, b) = (key(2), key(3));
        runner.sync(HashMap::from([(a, spec(&a)), (b, spec(&b))]));
        let window = Duration::from_millis(200);
        assert_eq!(reporting(&mut reports, window).await, HashSet::from([a, b]));

        runner.sync(HashMap::from([(a, spec(&a))]));
        assert_eq!(runner.len(), 1);
        // Reports already queued may still name b; after them, only a.
        reporting(&mut reports, Duration::from_millis(20)).await;
        assert_eq!(reporting(&mut reports, window).await, HashSet::from([a]));

        // Every sender goes with the runner and its stopped tasks.
        drop(runner);
        let closed =
            tokio::time::timeout(window, async { while reports.recv().await.is_some() {} }).await;
        assert!(closed.is_ok(), "a probe outlived its runner");
    }
}
