//! The data plane through the compiled program: each case loads the XDP
//! object into this process with private maps, writes what it needs into
//! them and runs frames through `BPF_PROG_TEST_RUN`. One binary, a module
//! per feature; `harness` is the runner, `lb_tests::frames` the packet
//! builder, and the case tables live in the feature modules.
//!
//! Needs root (CAP_BPF); `cargo xtask test` runs it as such.

mod addresses;
mod harness;

mod batch_updates;
mod decap;
mod flood_guard;
mod flow_cache;
mod flow_walk;
mod icmp;
mod nat;
mod packet;
mod scheduler;
mod scheduling_ring;
mod tun;
mod verifier;
