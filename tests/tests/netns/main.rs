//! The balancer end to end in network namespaces: each test builds a rig
//! (client, balancer, reals; see `lb_tests::rig`), starts the built `lbd`
//! in it and talks to it through sockets, `lbadm` and the metrics endpoint.
//! One binary, a module per feature. Rigs take names unique to the process
//! and rig, so the tests run side by side.
//!
//! Needs root (network namespaces, BPF); `cargo xtask test` builds `lbd`
//! first and runs this as root.

mod bench_quick;
mod decap;
mod dr;
mod health;
mod lbadm;
mod metrics;
mod modes;
mod next_hops;
