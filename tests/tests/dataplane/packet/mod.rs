//! Fixture-driven packet tests of the XDP data plane: each case is an input
//! frame, the XDP action it must get, the exact frame that must come out and
//! the global counters that must move, run through the real compiled program
//! with `BPF_PROG_TEST_RUN`.
//!
//! Needs root (CAP_BPF, CAP_NET_ADMIN). Every test loads its own copy of the
//! program with private maps, so the tests are independent and run in
//! parallel.

mod established;
mod malformed;
mod new_flows;
mod no_real;
mod not_ours;
mod scheduling;

const TLS6: &str = "[fd00::10]:443";
const CLIENT4_IP: &str = "198.19.7.7";
const CLIENT6_IP: &str = "fd00:c::7";
/// Addresses on the same networks that are not VIPs.
const OTHER4: &str = "198.18.0.99";
const OTHER6: &str = "fd00::99";
const OTHER_WEB4: &str = "198.18.0.99:80";
const OTHER_WEB6: &str = "[fd00::99]:80";
