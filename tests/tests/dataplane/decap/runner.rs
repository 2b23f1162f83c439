//! `lb_decap` loaded as `lbd decap` loads it, with private maps, and the
//! cases run through it: every one must pass, as the expected frame, with
//! only `Decapsulated` moving.

use std::collections::BTreeMap;

use lb_common::GlobalCounter::{self, Decapsulated};
use lb_tests::frames::ip;
use lb_userspace::decap::Decap;

use super::{REAL4, REAL4_OTHER_IF, REAL6, frames::Tunnel};
use crate::harness::{assert_no_mismatches, counter_mismatches, hex, test_run, xdp};

pub(super) struct Case {
    pub(super) name: String,
    pub(super) frame: Vec<u8>,
    /// `None`: the frame must come out unchanged.
    pub(super) output: Option<Vec<u8>>,
    /// Whether `Decapsulated` must move (by one); nothing else ever may.
    pub(super) decapsulated: bool,
}

impl Case {
    /// Stripped: the inner packet goes up the stack.
    pub(super) fn stripped(name: impl Into<String>, tunnel: &Tunnel) -> Self {
        Self {
            name: name.into(),
            frame: tunnel.bytes(),
            output: Some(tunnel.decapsulated()),
            decapsulated: true,
        }
    }

    /// Passed exactly as it came, nothing counted.
    pub(super) fn untouched(name: impl Into<String>, frame: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            frame,
            output: None,
            decapsulated: false,
        }
    }
}

/// `lb_decap` loaded as `lbd decap` loads it, with private maps.
pub(super) struct Real {
    pub(super) decap: Decap,
}

impl Real {
    /// Owns REAL4, REAL6 and REAL4_OTHER_IF (ifindexes are informational).
    pub(super) fn load() -> Self {
        let mut decap = Decap::load(None).expect("loading lb_decap (needs root / CAP_BPF)");
        let addresses = BTreeMap::from([(ip(REAL4), 2), (ip(REAL6), 2), (ip(REAL4_OTHER_IF), 3)]);
        decap
            .sync_addresses(&addresses)
            .expect("filling LB_DECAP_ADDRS");
        Self { decap }
    }

    pub(super) fn counters(&self) -> Vec<u64> {
        GlobalCounter::ALL
            .iter()
            .map(|counter| {
                self.decap
                    .global_stats
                    .get(&(*counter as u32), 0)
                    .expect("read global counter")
                    .iter()
                    .sum()
            })
            .collect()
    }

    pub(super) fn run(&mut self, frame: &[u8]) -> (u32, Vec<u8>) {
        let program = self.decap.program_mut().expect("lb_decap");
        test_run(program, frame, None).expect("BPF_PROG_TEST_RUN")
    }

    pub(super) fn check(&mut self, case: &Case) -> Vec<String> {
        let before = self.counters();
        let (action, out) = self.run(&case.frame);
        let after = self.counters();
        let mut errors = Vec::new();
        if action != xdp::PASS {
            errors.push(format!(
                "{}: action {action}, expected xdp::PASS",
                case.name
            ));
        }
        let expected = case.output.as_ref().unwrap_or(&case.frame);
        if &out != expected {
            errors.push(format!(
                "{}: output frame differs\n  got      {}\n  expected {}",
                case.name,
                hex(&out),
                hex(expected)
            ));
        }
        errors.extend(counter_mismatches(&case.name, &before, &after, |counter| {
            u64::from(counter == Decapsulated && case.decapsulated)
        }));
        errors
    }

    /// Runs every case and fails with all mismatches at once.
    pub(super) fn expect_all(&mut self, cases: &[Case]) {
        let errors: Vec<String> = cases.iter().flat_map(|case| self.check(case)).collect();
        assert_no_mismatches(&errors, cases.len());
    }
}

pub(super) fn load() -> Option<Real> {
    lb_tests::require_root("dataplane::decap").then(Real::load)
}
