//! IPVS schedulers, persistence, thresholds and connection counting in the
//! data plane, through the real compiled program (`BPF_PROG_TEST_RUN`,
//! repeat = 1), with the fixture harness (`dataplane::harness`).
//!
//! Every expectation comes from the test itself: the rows and connection
//! counts it writes, the IPVS formulas worked by hand, and the contract's
//! hashes (`lb_common::flow_hash`) for which slot a packet hashes to.
//!
//! Needs root (CAP_BPF, CAP_NET_ADMIN).

mod connection_counts;
mod gone_reals;
mod hashing;
mod least_connection;
mod persistence;
mod round_robin;
mod services;

const WEB: &str = "198.18.0.10:80";
const WEB_IP: &str = "198.18.0.10";
const OTHER_WEB: &str = "198.18.0.20:80";
const CLIENT_IP: &str = "198.19.7.7";
const SECOND: u64 = 1_000_000_000;
