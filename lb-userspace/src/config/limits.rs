//! Limits and defaults of the schema. The capacities come from `lb-common`,
//! which sizes the data-plane maps, so the two cannot drift apart.

use lb_common::capacity;

/// Services configurable by default (`dataplane.max_services`): the BPF
/// object's own id space, ids `1..capacity::MAX_SERVICES`, 0 is "none".
pub const DEFAULT_MAX_SERVICES: u32 = capacity::MAX_SERVICES - 1;
/// The most `dataplane.max_services` allows. The real bound is the Maglev
/// ring, `(max_services + 1) * maglev_table_size` slots in a `u32` index
/// (checked with the table size); this one keeps the service maps sane.
pub const MAX_MAX_SERVICES: u32 = (1 << 20) - 1;
/// Reals across all services by default (`dataplane.max_services`): one id
/// per (service, real), `1..capacity::MAX_REALS`.
pub const DEFAULT_MAX_REALS: u32 = capacity::MAX_REALS - 1;
/// The most `dataplane.max_reals` allows: real ids stay below
/// `capacity::REAL_ID_LIMIT`.
pub const MAX_MAX_REALS: u32 = capacity::REAL_ID_LIMIT - 1;
/// Interfaces: the data plane's egress device map has this many slots.
pub const MAX_INTERFACES: usize = capacity::MAX_INTERFACES as usize;
pub const DEFAULT_PIN_PATH: &str = "/sys/fs/bpf/lb";
pub const DEFAULT_MAGLEV_TABLE_SIZE: u32 = capacity::DEFAULT_MAGLEV_TABLE_SIZE;
pub const MIN_MAGLEV_TABLE_SIZE: u32 = 2;
/// All services' Maglev tables live in one array indexed by a `u32`
/// (`service id * size + slot`), so the whole ring must fit in `u32` slots:
/// with at least one service (ids 0 and 1), a row can be at most half of
/// that. Checked against `max_services` once both are known.
pub const MAX_MAGLEV_TABLE_SIZE: u32 = u32::MAX / 2;
pub const DEFAULT_FLOW_TABLE_ENTRIES: u32 = capacity::DEFAULT_FLOW_TABLE_ENTRIES;
pub const MIN_FLOW_TABLE_ENTRIES: u32 = 1024;
pub const MAX_FLOW_TABLE_ENTRIES: u32 = 1 << 26;
pub const DEFAULT_WEIGHT: u32 = 1;
pub const MAX_WEIGHT: u32 = 65_535;
/// Connection thresholds (`-x`/`-y`) are unsigned 32-bit in IPVS.
pub const MAX_THRESHOLD: u32 = u32::MAX;
pub const MAX_SERVICE_NAME_LEN: usize = 64;
/// IPVS's default idle timeouts, in seconds (`ipvsadm --set tcp tcpfin udp`).
pub const DEFAULT_TCP_TIMEOUT: u32 = 900;
pub const DEFAULT_TCP_FIN_TIMEOUT: u32 = 120;
pub const DEFAULT_UDP_TIMEOUT: u32 = 300;
pub const MIN_TIMEOUT: u32 = 1;
/// The kernel's limit for IPVS timeouts (`INT_MAX / HZ` seconds at HZ=1000,
/// about 24 days): what `ipvsadm --set` accepts on every build.
pub const MAX_TIMEOUT: u32 = 2_147_483;
pub const DEFAULT_ICMP_ECHO_REPLY: bool = true;
/// New flows a second each CPU records before the flood guard holds back
/// the ones that need no entry (Katran's default is of the same order):
/// at about a microsecond an insert, a tenth of a core.
pub const DEFAULT_FLOOD_GUARD_NEW_FLOWS: u32 = 100_000;
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/lb/lbd.sock";
/// ipvsadm's `-p` without a value.
pub const DEFAULT_PERSISTENCE_TIMEOUT: u32 = 300;
