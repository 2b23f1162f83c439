//! The addresses the fixtures share: VIPs in 198.18.0.0/15 (benchmarking
//! range) and fd00::/8 (ULA), a client outside them, the balancer's tunnel
//! sources.

pub const VIP4: &str = "198.18.0.10";
pub const VIP6: &str = "fd00::10";
pub const WEB4: &str = "198.18.0.10:80";
pub const WEB6: &str = "[fd00::10]:80";
pub const DNS4: &str = "198.18.0.10:53";
pub const DNS6: &str = "[fd00::10]:53";
pub const CLIENT4: &str = "198.19.7.7:40000";
pub const CLIENT6: &str = "[fd00:c::7]:40000";
pub const TUNNEL_SRC4: &str = "198.18.0.1";
pub const TUNNEL_SRC6: &str = "fd00::1";
