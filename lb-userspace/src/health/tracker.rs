//! Rise and fall: turning a stream of probe results into a verdict that
//! one late heartbeat cannot flip.

use std::{
    collections::HashMap,
    net::SocketAddr,
    time::{Duration, SystemTime},
};

use lb_common::{RealHealth, ServiceKey};

use super::probe::Failure;
use crate::config::RealConfig;

/// A real of a service: what health state is kept for. Addresses, not
/// data-plane ids, so the state survives reloads that renumber.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RealKey {
    pub service: ServiceKey,
    pub real: SocketAddr,
}

impl RealKey {
    pub fn new(service: ServiceKey, real: &RealConfig) -> Self {
        Self {
            service,
            real: real.endpoint(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Up,
    Down,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
        }
    }

    pub fn as_real_health(self) -> RealHealth {
        match self {
            Self::Up => RealHealth::Up,
            Self::Down => RealHealth::Down,
        }
    }
}

/// Everything known about one probed real.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealState {
    pub verdict: Verdict,
    /// Consecutive results that disagree with the verdict so far.
    pub streak: u32,
    /// No probe has answered yet: with `alpha`, the first success is
    /// enough to come up (the real was never seen failing).
    pub unproven: bool,
    /// When the verdict last changed (or tracking began).
    pub since: SystemTime,
    pub probes: u64,
    pub failures: u64,
    /// When the last probe ended, and how long it took.
    pub last_probe: Option<(SystemTime, Duration)>,
    /// Why the last probe failed, until one succeeds.
    pub last_failure: Option<Failure>,
}

impl RealState {
    /// A real first seen: `known` is what the pinned maps remember from a
    /// previous daemon; `alpha` decides for reals nobody has judged yet.
    pub fn new(known: RealHealth, alpha: bool, now: SystemTime) -> Self {
        let (verdict, unproven) = match known {
            RealHealth::Up => (Verdict::Up, false),
            RealHealth::Down => (Verdict::Down, false),
            RealHealth::Unknown if alpha => (Verdict::Down, true),
            RealHealth::Unknown => (Verdict::Up, true),
        };
        Self {
            verdict,
            streak: 0,
            unproven,
            since: now,
            probes: 0,
            failures: 0,
            last_probe: None,
            last_failure: None,
        }
    }
}

/// A change of verdict, with the failure that caused a fall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub key: RealKey,
    pub to: Verdict,
    pub reason: String,
}

/// The verdicts of every probed real.
#[derive(Debug, Default)]
pub struct Tracker {
    states: HashMap<RealKey, RealState>,
}

/// What one probe found, as the tracker needs it.
pub struct Outcome<'a> {
    pub result: &'a Result<(), Failure>,
    pub at: SystemTime,
    pub took: Duration,
}

impl Tracker {
    pub fn get(&self, key: &RealKey) -> Option<&RealState> {
        self.states.get(key)
    }

    /// Starts tracking `key` unless it already is.
    pub fn track(&mut self, key: RealKey, known: RealHealth, alpha: bool, now: SystemTime) {
        self.states
            .entry(key)
            .or_insert_with(|| RealState::new(known, alpha, now));
    }

    /// Forgets every real not in `keep` (removed from the config, or no
    /// longer probed).
    pub fn retain(&mut self, keep: impl Fn(&RealKey) -> bool) {
        self.states.retain(|key, _| keep(key));
    }

    /// Counts one probe result; returns the transition it completes.
    pub fn record(
        &mut self,
        key: RealKey,
        outcome: Outcome<'_>,
        rise: u32,
        fall: u32,
    ) -> Option<Transition> {
        let state = self.states.get_mut(&key)?;
        state.probes += 1;
        state.last_probe = Some((outcome.at, outcome.took));
        let passed = outcome.result.is_ok();
        match outcome.result {
            Ok(()) => state.last_failure = None,
            Err(failure) => {
                state.failures += 1;
                state.last_failure = Some(failure.clone());
            }
        }
        let agrees = passed == (state.verdict == Verdict::Up);
        if agrees {
            state.streak = 0;
            // An unproven down real stays one success away from joining.
            state.unproven &= !passed;
            return None;
        }
        state.streak += 1;
        let needed = match state.verdict {
            Verdict::Down if state.unproven => 1,
            Verdict::Down => rise,
            Verdict::Up => fall,
        };
        if state.streak < needed {
            return None;
        }
        let to = if passed { Verdict::Up } else { Verdict::Down };
        let reason = match outcome.result {
            Ok(()) => format!("{} successful probe(s) in a row", state.streak),
            Err(failure) => format!("{failure} ({} failed probe(s) in a row)", state.streak),
        };
        state.verdict = to;
        state.streak = 0;
        state.unproven = false;
        state.since = outcome.at;
        Some(Transition { key, to, reason })
    }

    pub fn verdict(&self, key: &RealKey) -> Option<Verdict> {
        self.states.get(key).map(|state| state.verdict)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn key() -> RealKey {
        RealKey {
            service: ServiceKey::default(),
            real: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)), 80),
        }
    }

    /// Feeds results (true = pass) and returns the verdict after each.
    fn run(start: RealHealth, alpha: bool, results: &[bool], rise: u32, fall: u32) -> String {
        let mut tracker = Tracker::default();
        tracker.track(key(), start, alpha, SystemTime::UNIX_EPOCH);
        results
            .iter()
            .map(|&pass| {
                let result = if pass { Ok(()) } else { Err(Failure::Refused) };
                let outcome = Outcome {
                    result: &result,
                    at: SystemTime::UNIX_EPOCH,
                    took: Duration::ZERO,
                };
                tracker.record(key(), outcome, rise, fall);
                match tracker.verdict(&key()).unwrap() {
                    Verdict::Up => 'U',
                    Verdict::Down => 'D',
                }
            })
            .collect()
    }

    #[test]
    fn falls_after_fall_consecutive_failures_only() {
        assert_eq!(
            run(
                RealHealth::Up,
                false,
                &[false, false, true, false, false, false],
                2,
                3
            ),
            "UUUUUD"
        );
    }

    #[test]
    fn rises_after_rise_consecutive_successes() {
        assert_eq!(
            run(RealHealth::Down, false, &[true, false, true, true], 2, 3),
            "DDDU"
        );
    }

    #[test]
    fn alternating_results_never_flap() {
        let alternating: Vec<bool> = (0..20).map(|i| i % 2 == 0).collect();
        assert_eq!(
            run(RealHealth::Up, false, &alternating, 2, 2),
            "U".repeat(20)
        );
        assert_eq!(
            run(RealHealth::Down, false, &alternating, 2, 2),
            "D".repeat(20)
        );
    }

    #[test]
    fn alpha_starts_unknown_reals_down_and_one_success_brings_them_up() {
        assert_eq!(run(RealHealth::Unknown, true, &[false, true], 3, 3), "DU");
        // Proven once, the usual rise applies.
        assert_eq!(
            run(
                RealHealth::Unknown,
                true,
                &[true, false, false, false, true],
                3,
                3
            ),
            "UUUDD"
        );
    }

    #[test]
    fn without_alpha_unknown_reals_start_up_and_pinned_state_wins() {
        assert_eq!(run(RealHealth::Unknown, false, &[false, false], 2, 2), "UD");
        assert_eq!(run(RealHealth::Down, true, &[true], 2, 2), "D");
    }

    #[test]
    fn the_reason_names_the_failure() {
        let mut tracker = Tracker::default();
        tracker.track(key(), RealHealth::Up, false, SystemTime::UNIX_EPOCH);
        let result = Err(Failure::Refused);
        let outcome = || Outcome {
            result: &result,
            at: SystemTime::UNIX_EPOCH,
            took: Duration::ZERO,
        };
        assert_eq!(tracker.record(key(), outcome(), 1, 2), None);
        let transition = tracker.record(key(), outcome(), 1, 2).unwrap();
        assert_eq!(transition.to, Verdict::Down);
        assert!(
            transition.reason.starts_with(&Failure::Refused.to_string()),
            "{}",
            transition.reason
        );
    }
}
