//! The contract between the XDP data plane (`lb-ebpf`) and the control
//! plane (`lb-userspace`).
//!
//! Every map key and value is defined here exactly once, `#[repr(C)]` with
//! explicit padding so that the BPF and host layouts can never drift apart.
//! Sizes are pinned by compile-time assertions at the bottom of each module.
#![no_std]

pub mod addr;
pub mod flow_hash;
pub mod maps;
pub mod stats;

pub use addr::{Addr, Family};
pub use maps::*;
pub use stats::{GlobalCounter, TrafficCounters};

/// IANA protocol numbers the data plane understands.
pub mod proto {
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMP: u8 = 1;
    pub const ICMPV6: u8 = 58;
}
