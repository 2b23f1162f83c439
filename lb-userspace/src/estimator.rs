//! Rate estimation (ipvsadm's `--rate` columns), the way IPVS does it: every
//! two seconds each counter's increase becomes a per-second rate, and the
//! shown rate is an exponentially weighted average with weight 1/4 per
//! sample (`ip_vs_est.c`), so a step in traffic shows fully after about
//! ten seconds and a short burst does not flap the numbers.

use std::collections::HashMap;

use lb_common::TrafficCounters;
use serde::{Deserialize, Serialize};

/// How often the daemon samples the counters (IPVS: 2 s).
pub const SAMPLE_INTERVAL_SECONDS: f64 = 2.0;
/// Weight of each new sample in the average (IPVS: 1/4).
const SMOOTHING: f64 = 0.25;

/// Per-second rates, as ipvsadm shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    pub cps: u64,
    pub in_pps: u64,
    pub out_pps: u64,
    pub in_bps: u64,
    pub out_bps: u64,
}

impl From<[u64; 5]> for Rates {
    /// In the fields' order.
    fn from([cps, in_pps, out_pps, in_bps, out_bps]: [u64; 5]) -> Self {
        Rates {
            cps,
            in_pps,
            out_pps,
            in_bps,
            out_bps,
        }
    }
}

/// What identifies a counter set: a service id or a real id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    Service(u32),
    Real(u32),
}

#[derive(Clone, Copy, Debug, Default)]
struct Average {
    last: Option<TrafficCounters>,
    /// conns, in pkts, out pkts, in bytes, out bytes per second.
    rates: [f64; 5],
}

impl Average {
    fn update(&mut self, now: TrafficCounters, seconds: f64) {
        let Some(last) = self.last.replace(now) else {
            return;
        };
        let per_second = |now: u64, before: u64| now.saturating_sub(before) as f64 / seconds;
        let samples = [
            per_second(now.new_connections, last.new_connections),
            per_second(now.packets, last.packets),
            per_second(now.out_packets, last.out_packets),
            // IPVS's "BPS" columns are bytes (not bits) per second.
            per_second(now.bytes, last.bytes),
            per_second(now.out_bytes, last.out_bytes),
        ];
        for (average, sample) in self.rates.iter_mut().zip(samples) {
            *average += (sample - *average) * SMOOTHING;
        }
    }

    fn rates(&self) -> Rates {
        // IPVS rounds to nearest when it scales its fixed-point averages down.
        Rates::from(self.rates.map(|rate| rate.round() as u64))
    }
}

/// The averages of every service and real the daemon knows.
#[derive(Debug, Default)]
pub struct Estimator {
    averages: HashMap<Subject, Average>,
    /// Whether a sample was taken yet. Subjects that appear after the first
    /// sample were created since, with zeroed counters, so their first
    /// sample is already a rate (as IPVS's estimator starts from zero);
    /// those present at the first sample (adopted after a restart) are not.
    sampled: bool,
}

impl Estimator {
    /// Feeds one sample taken `seconds` after the previous one. Subjects
    /// missing from `samples` (removed) are forgotten.
    pub fn sample(&mut self, samples: &HashMap<Subject, TrafficCounters>, seconds: f64) {
        self.averages
            .retain(|subject, _| samples.contains_key(subject));
        let new = Average {
            last: self.sampled.then(TrafficCounters::default),
            ..Average::default()
        };
        for (subject, counters) in samples {
            self.averages
                .entry(*subject)
                .or_insert(new)
                .update(*counters, seconds);
        }
        self.sampled = true;
    }

    pub fn rates(&self, subject: Subject) -> Rates {
        self.averages
            .get(&subject)
            .map(Average::rates)
            .unwrap_or_default()
    }

    /// After `-Z`: the counters restart from zero, and so do the rates.
    pub fn zero(&mut self, subjects: impl IntoIterator<Item = Subject>) {
        for subject in subjects {
            let zeroed = Average {
                last: Some(TrafficCounters::default()),
                ..Average::default()
            };
            self.averages.insert(subject, zeroed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(conns: u64, packets: u64, bytes: u64) -> TrafficCounters {
        TrafficCounters {
            new_connections: conns,
            packets,
            bytes,
            out_packets: packets / 2,
            out_bytes: bytes / 2,
            ..TrafficCounters::default()
        }
    }

    /// An estimator that has seen `subject` once, at `counters`: which
    /// shows no rate (`why`).
    fn sampled_once(subject: Subject, counters: TrafficCounters, why: &str) -> Estimator {
        let mut estimator = Estimator::default();
        estimator.sample(&HashMap::from([(subject, counters)]), 2.0);
        assert_eq!(estimator.rates(subject), Rates::default(), "{why}");
        estimator
    }

    #[test]
    fn a_steady_rate_converges_to_itself() {
        let subject = Subject::Service(1);
        let mut estimator = Estimator::default();
        for step in 0..80u64 {
            // 100 connections, 1000 packets, 1 MB per second.
            let sample =
                HashMap::from([(subject, counters(step * 200, step * 2000, step * 2_000_000))]);
            estimator.sample(&sample, SAMPLE_INTERVAL_SECONDS);
        }
        assert_eq!(
            estimator.rates(subject),
            Rates {
                cps: 100,
                in_pps: 1000,
                out_pps: 500,
                in_bps: 1_000_000,
                out_bps: 500_000,
            }
        );
    }

    #[test]
    fn a_step_shows_a_quarter_per_sample_like_ipvs() {
        let subject = Subject::Real(7);
        let mut estimator = sampled_once(subject, counters(0, 0, 0), "one sample is no rate yet");
        estimator.sample(&HashMap::from([(subject, counters(800, 0, 0))]), 2.0);
        // 400/s measured, a quarter of it shown.
        assert_eq!(estimator.rates(subject).cps, 100);
        estimator.sample(&HashMap::from([(subject, counters(1600, 0, 0))]), 2.0);
        assert_eq!(estimator.rates(subject).cps, 175);
    }

    #[test]
    fn a_subject_created_later_counts_from_zero() {
        let (old, new) = (Subject::Service(1), Subject::Service(2));
        let mut estimator = sampled_once(old, counters(1000, 0, 0), "adopted counters are no rate");
        let sample = HashMap::from([(old, counters(1000, 0, 0)), (new, counters(80, 0, 0))]);
        estimator.sample(&sample, 2.0);
        assert_eq!(
            estimator.rates(new).cps,
            10,
            "40/s seen at once, a quarter shown"
        );
    }

    #[test]
    fn zeroing_and_removal_forget_the_average() {
        let (kept, removed) = (Subject::Service(1), Subject::Service(2));
        let mut estimator = Estimator::default();
        for step in 0..3 {
            let sample = HashMap::from([
                (kept, counters(step * 100, 0, 0)),
                (removed, counters(step * 100, 0, 0)),
            ]);
            estimator.sample(&sample, 2.0);
        }
        assert_ne!(estimator.rates(kept).cps, 0);
        estimator.sample(&HashMap::from([(kept, counters(300, 0, 0))]), 2.0);
        assert_eq!(estimator.rates(removed), Rates::default());
        estimator.zero([kept]);
        assert_eq!(estimator.rates(kept), Rates::default());
    }
}
