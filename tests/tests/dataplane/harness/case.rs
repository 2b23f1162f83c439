//! One fixture case (a frame in, an action and a frame out, the global
//! counters that move) and the comparisons that report every mismatch.

use lb_common::{GlobalCounter, Real, TrafficCounters};
use lb_tests::frames::Packet;

pub mod xdp {
    pub const ABORTED: u32 = 0;
    pub const DROP: u32 = 1;
    pub const PASS: u32 = 2;
    pub const TX: u32 = 3;
    pub const REDIRECT: u32 = 4;

    pub fn name(action: u32) -> String {
        match action {
            ABORTED => "XDP_ABORTED".into(),
            DROP => "XDP_DROP".into(),
            PASS => "XDP_PASS".into(),
            TX => "XDP_TX".into(),
            REDIRECT => "XDP_REDIRECT".into(),
            other => format!("unknown action {other}"),
        }
    }
}

/// The action and output frame of one run against `case`'s expectations
/// (no expected output: the frame must come out as it went in).
pub fn outcome_mismatches(name: &str, (action, out): (u32, &[u8]), case: &Case) -> Vec<String> {
    let mut errors = Vec::new();
    if action != case.action {
        errors.push(format!(
            "{name}: action {} but expected {}",
            xdp::name(action),
            xdp::name(case.action)
        ));
    }
    let expected_out = case.output.as_ref().unwrap_or(&case.frame);
    if out != expected_out.as_slice() {
        errors.push(format!(
            "{name}: output frame differs\n  got      {}\n  expected {}",
            hex(out),
            hex(expected_out)
        ));
    }
    errors
}

/// Every global counter must have moved by exactly `expected(counter)`.
pub fn counter_mismatches(
    name: &str,
    before: &[u64],
    after: &[u64],
    expected: impl Fn(GlobalCounter) -> u64,
) -> Vec<String> {
    GlobalCounter::ALL
        .iter()
        .enumerate()
        .filter_map(|(i, &counter)| {
            let moved = after[i].wrapping_sub(before[i]);
            let want = expected(counter);
            (moved != want).then(|| {
                format!(
                    "{name}: counter {} moved by {moved}, expected {want}",
                    counter.name()
                )
            })
        })
        .collect()
}

/// Fails with every mismatch of a batch of cases at once.
pub fn assert_no_mismatches(errors: &[String], cases: usize) {
    assert!(
        errors.is_empty(),
        "{} mismatches in {cases} fixture cases:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What `after - before` of a [`TrafficCounters`] should be for one packet.
pub fn traffic(packets: u64, bytes: usize, new_connections: u64, drops: u64) -> TrafficCounters {
    TrafficCounters {
        packets,
        bytes: bytes as u64,
        new_connections,
        drops,
        ..TrafficCounters::default()
    }
}

pub fn delta(after: TrafficCounters, before: TrafficCounters) -> TrafficCounters {
    TrafficCounters {
        packets: after.packets - before.packets,
        bytes: after.bytes - before.bytes,
        new_connections: after.new_connections - before.new_connections,
        drops: after.drops - before.drops,
        out_packets: after.out_packets - before.out_packets,
        out_bytes: after.out_bytes - before.out_bytes,
    }
}

/// One fixture: a frame in, an action and a frame out, counters moved.
/// `Received` always moves by one; `counters` lists every other counter
/// that must move (by one each); all the rest must stay put.
pub struct Case {
    pub name: String,
    pub frame: Vec<u8>,
    pub action: u32,
    /// `None`: the frame must come out unchanged.
    pub output: Option<Vec<u8>>,
    pub counters: Vec<GlobalCounter>,
    /// The ingress ifindex; `None`: the loopback (`INGRESS_IFINDEX`).
    pub ingress: Option<u32>,
}

impl Case {
    /// Handed to the kernel untouched.
    pub fn pass(name: impl Into<String>, frame: Vec<u8>, reason: GlobalCounter) -> Self {
        Self {
            name: name.into(),
            frame,
            action: xdp::PASS,
            output: None,
            counters: vec![reason],
            ingress: None,
        }
    }

    /// Dropped, untouched.
    pub fn drop(name: impl Into<String>, frame: Vec<u8>, reason: GlobalCounter) -> Self {
        Self {
            name: name.into(),
            frame,
            action: xdp::DROP,
            output: None,
            counters: vec![reason],
            ingress: None,
        }
    }

    /// Sent back out of the ingress interface as `packet.forwarded_to(real)`.
    pub fn tx(name: impl Into<String>, packet: &Packet, real: &Real) -> Self {
        Self {
            name: name.into(),
            frame: packet.bytes(),
            action: xdp::TX,
            output: Some(packet.forwarded_to(real).bytes()),
            counters: vec![GlobalCounter::Forwarded],
            ingress: None,
        }
    }

    /// Redirected to another interface as `packet.forwarded_to(real)`.
    pub fn redirect(name: impl Into<String>, packet: &Packet, real: &Real) -> Self {
        Self {
            action: xdp::REDIRECT,
            ..Self::tx(name, packet, real)
        }
    }

    /// Another counter that must move by one.
    pub fn counts(mut self, counter: GlobalCounter) -> Self {
        self.counters.push(counter);
        self
    }

    /// As if the frame came in on this interface.
    pub fn ingress(mut self, ifindex: u32) -> Self {
        self.ingress = Some(ifindex);
        self
    }

    /// The exact output frame, for a drop that happens after the rewrite.
    pub fn output(mut self, frame: Vec<u8>) -> Self {
        self.output = Some(frame);
        self
    }

    pub fn expected_delta(&self, counter: GlobalCounter) -> u64 {
        let listed = self.counters.iter().filter(|c| **c == counter).count() as u64;
        listed + u64::from(counter == GlobalCounter::Received)
    }
}
