//! The wire layer under the data plane: what packets look like, and
//! nothing about what the balancer does with them.
//!
//! - [`frame`]: the one bounds check every header access goes through;
//! - [`ip`], [`l4`], [`icmp`], [`eth`]: protocol constants and small header
//!   facts, each defined once;
//! - [`layout`]: where a packet's headers are, in one register;
//! - [`quote`]: where the packet an ICMP error quotes lies;
//! - [`rewrite`]: one end's address and port changed, with the TTL and
//!   every checksum they feed (NAT);
//! - [`csum`]: every Internet checksum helper;
//! - [`verdict`]: what a path decides, and how that crosses a BPF-to-BPF
//!   call's single return register.
//!
//! Everything here also compiles for the host, where the unit tests beside
//! each file run the same code over byte arrays (no root, no BPF).

pub mod csum;
pub mod eth;
pub mod frame;
pub mod icmp;
pub mod ip;
pub mod l4;
pub mod layout;
pub mod quote;
#[cfg(test)]
mod reference;
pub mod rewrite;
pub mod verdict;
