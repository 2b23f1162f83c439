//! NAT (LVS-NAT) packet fixtures, through the real compiled program with
//! `BPF_PROG_TEST_RUN` (repeat = 1): requests rewritten to the real, the
//! reverse entries they leave, replies (and the reals' ICMP errors)
//! rewritten back to the VIP and routed with the kernel's FIB, and the
//! connection state replies advance.
//!
//! As in `dataplane::packet`, everything expected is built independently
//! with `etherparse` (the exact output frame, its checksums computed from
//! scratch), and every output is also checked with etherparse's own
//! checksum computation.
//!
//! Needs root (CAP_BPF, CAP_NET_ADMIN). Tests that route replies run in a
//! private network namespace with their own interfaces, routes and
//! permanent neighbour entries, so `bpf_fib_lookup` answers from tables the
//! test wrote.

mod frames;
mod icmp_errors;
mod nat_lb;
mod replies;
mod reply_cache;
mod reply_rig;
mod requests;

use crate::addresses::{CLIENT4, CLIENT6, DNS4, DNS6, WEB4, WEB6};

// Services: the real listens on another port than the service's.
const WEB4_REAL: &str = "198.18.1.1:8080";
const DNS4_REAL: &str = "198.18.1.2:5353";
const WEB6_REAL: &str = "[fd00:1::1]:8080";
const DNS6_REAL: &str = "[fd00:1::2]:5353";
