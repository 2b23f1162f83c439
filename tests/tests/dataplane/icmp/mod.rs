//! ICMP and ICMPv6 through the compiled program (`BPF_PROG_TEST_RUN`):
//! "fragmentation needed" / "packet too big" for packets a tunnel cannot
//! carry, echo replies from the VIPs, and errors quoting a VIP flow sent on
//! to its real (DR, TUN) or translated for it (NAT).
//!
//! Every expected frame is built from scratch with `etherparse` (so its
//! checksums are etherparse's, not the data plane's), and the checksums of
//! what the program sent are verified with `etherparse` on top of the exact
//! byte comparison, so a mismatch says which checksum is off.
//!
//! Needs root (CAP_BPF, CAP_NET_ADMIN), like the other fixtures.

mod checks;
mod echo;
mod errors_dr;
mod errors_nat;
mod errors_tun;
mod frames;
mod services;
mod too_big;

use crate::addresses::{
    CLIENT4, CLIENT6, DNS4, DNS6, TUNNEL_SRC4, TUNNEL_SRC6, VIP4, VIP6, WEB4, WEB6,
};

/// A router between the reals and the clients: the sender of most errors.
const ROUTER4: &str = "198.19.0.1";
const ROUTER6: &str = "fd00:99::1";
const REAL4: &str = "198.18.1.1";
const REAL6: &str = "fd00:1::1";

/// Quote lengths of the "too big" answers: as much of the packet as fits
/// in 576 bytes for IPv4 (RFC 1812 4.3.2.3) and in the 1280-byte IPv6
/// minimum MTU (RFC 4443 2.4(c)), after the IP and ICMP headers.
const QUOTE_V4: usize = 576 - 20 - 8;
const QUOTE_V6: usize = 1280 - 40 - 8;

/// TTL / hop limit of packets the data plane originates.
const ANSWER_TTL: u8 = 64;
