//! Test rigs made of network namespaces, shared by the integration tests
//! and by `cargo xtask demo`.
//!
//! Everything runs in namespaces this process creates, with addresses from
//! 198.18.0.0/15 and fd00::/8 only. Servers and clients are sockets created
//! inside those namespaces by this process (a socket stays in the namespace
//! it was created in), so a rig needs no external server software.
//!
//! [`frames`] builds the Ethernet frames of the packet fixtures and of
//! lb-bench.

pub mod frames;
pub mod lbd;
pub mod netns;
pub mod responders;
pub mod rig;
pub mod traffic;

/// True when this process may create namespaces and load BPF programs.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Privileged tests call this first: under CI (CI=true, run as root) they
/// must run, so being unprivileged there is a failure, never a skip.
/// Returns false when the test should be skipped (local, unprivileged).
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} needs root (network namespaces, BPF), and CI must run it");
    }
    eprintln!("SKIPPED {test}: needs root (run `cargo xtask test` as root)");
    false
}
