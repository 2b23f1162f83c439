//! Sending a packet on to its real, one module per forwarding method:
//! [`dr`] (only the MACs change), [`tun`] (IP-in-IP towards the real, with
//! "too big" answered here), [`nat`] (addresses and ports rewritten, both
//! ways). [`transmit`] is how they all put a frame on the wire.
//!
//! Next hops come from the daemon, not from `bpf_fib_lookup`: it resolves
//! each real's MAC and egress interface over rtnetlink, asks the kernel to
//! keep those neighbours resolved, and rewrites `LB_REALS` when they change.
//! That keeps a helper call and a FIB walk off every packet, and makes the
//! program's output a pure function of the maps (which is what the fixture
//! tests check byte for byte). NAT replies, which go to arbitrary clients,
//! are the exception (see `nat::route`).

pub mod dr;
pub mod nat;
pub mod transmit;
pub mod tun;
