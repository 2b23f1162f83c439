//! Fixture tests of `lb_decap`, the reals' tunnel stripper: each case is an
//! input frame, the XDP action, the exact frame that must come out and the
//! global counters that must move, run through the real compiled program
//! (loaded as `lbd decap` loads it) with `BPF_PROG_TEST_RUN`, repeat = 1.
//!
//! Expected frames are built independently with `etherparse`: the inner
//! packet on its own, then the tunnelled input (Ethernet, optional VLAN
//! tag, outer IP header, inner packet) and the expected output (the same
//! Ethernet header with the inner ethertype, the inner packet) from it.
//!
//! Needs root (CAP_BPF). Every test loads its own copy of the program with
//! private maps, so tests are independent and run in parallel.

mod addresses;
mod frames;
mod runner;
mod stripped;
mod untouched;

/// Addresses of the real under test (198.18.0.0/15 and fd00::/8 only).
const REAL4: &str = "198.18.0.11";
const REAL6: &str = "fd00:18::11";
/// Another address on the same host, e.g. on a second interface.
const REAL4_OTHER_IF: &str = "198.19.5.11";
/// The balancer, source of every tunnel.
const LB4: &str = "198.18.0.1";
const LB6: &str = "fd00:18::1";
/// Someone else on the segment: tunnels to it are not ours.
const NOT_OURS4: &str = "198.18.0.99";
const NOT_OURS6: &str = "fd00:18::99";
/// Inner packets: a client to a VIP.
const CLIENT4: &str = "198.19.7.7";
const CLIENT6: &str = "fd00:c::7";
const VIP4: &str = "198.18.1.10";
const VIP6: &str = "fd00:18:1::10";
