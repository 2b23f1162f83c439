//! The daemon's YAML configuration (schema v1): types, loading and validation.
//!
//! Operators should see every mistake in a file at once, each as
//! `file:line:column: field.path: reason`. `serde_yaml` can do neither: it
//! stops at the first error and forgets where nodes were once it is done. So
//! the text is loaded once with `saphyr`, which marks every node (keys
//! included) with its position, and a small schema walker turns that tree into
//! a [`Config`] in two passes that both collect problems instead of stopping:
//!
//! 1. *decode*: the shape of each node, its type, range or keyword; unknown,
//!    duplicated and missing fields;
//! 2. *validate*: rules about the whole (duplicates, what each forwarding
//!    method can do with address families and ports, capacity, interfaces
//!    present on the host), located through the positions recorded while
//!    decoding.
//!
//! Going the other way, [`Config`] implements `Serialize`, so
//! `serde_yaml::to_string(&config)` prints it back in the same schema.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use lb_common::capacity;
use saphyr::{MarkedYaml, Marker, Scalar, ScanError, YamlData, YamlLoader};
use saphyr_parser::Parser;
use serde::Serialize;

pub mod health;
pub mod identity;

pub use health::{HealthCheck, QuorumLoss, ServiceHealth};

// ---------------------------------------------------------------------------
// Limits and defaults. The capacities come from `lb-common`, which sizes the
// data-plane maps, so the two cannot drift apart.

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

// ---------------------------------------------------------------------------
// The configuration.

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    pub interfaces: Vec<InterfaceConfig>,
    pub pin_path: PathBuf,
    pub control: ControlConfig,
    pub dataplane: DataplaneConfig,
    pub tunnel: TunnelConfig,
    pub timeouts: TimeoutsConfig,
    /// Answer ICMP/ICMPv6 echo requests to VIPs in the data plane.
    pub icmp_echo_reply: bool,
    /// IPVS's `expire_nodest_conn`: packets of a connection whose real was
    /// removed go to a newly scheduled real. Off (the IPVS default), they
    /// are dropped until the connection idles out.
    pub expire_nodest_conn: bool,
    pub flood_guard: FloodGuardConfig,
    pub metrics: MetricsConfig,
    pub services: Vec<ServiceConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct InterfaceConfig {
    pub name: String,
    pub xdp_mode: XdpMode,
}

/// How the XDP program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum XdpMode {
    /// Native if the driver supports it, else generic (skb).
    #[default]
    Auto,
    Native,
    Skb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct DataplaneConfig {
    /// Slots in each service's Maglev table; a prime.
    pub maglev_table_size: u32,
    /// Capacity of the connection-tracking LRU map.
    pub flow_table_entries: u32,
    /// Services that can exist at once (YAML and lbadm together).
    pub max_services: u32,
    /// Reals across all services that can exist at once.
    pub max_reals: u32,
}

impl Default for DataplaneConfig {
    fn default() -> Self {
        Self {
            maglev_table_size: DEFAULT_MAGLEV_TABLE_SIZE,
            flow_table_entries: DEFAULT_FLOW_TABLE_ENTRIES,
            max_services: DEFAULT_MAX_SERVICES,
            max_reals: DEFAULT_MAX_REALS,
        }
    }
}

impl DataplaneConfig {
    /// Slots of the Maglev ring: one row per service id, id 0 included.
    fn maglev_ring_slots(&self) -> u64 {
        (u64::from(self.max_services) + 1) * u64::from(self.maglev_table_size)
    }
}

/// Outer source addresses of TUN packets. Left out, a tunnel leaves from
/// the egress interface's primary address of the real's family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct TunnelConfig {
    /// For IPv4 tunnels (to IPv4 reals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_v4: Option<Ipv4Addr>,
    /// For IPv6 tunnels (to IPv6 reals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_v6: Option<Ipv6Addr>,
}

/// Idle timeouts of tracked connections, in seconds, as IPVS has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct TimeoutsConfig {
    /// Established TCP connections.
    pub tcp: u32,
    /// TCP connections after a FIN or RST (and before the handshake completes).
    pub tcp_fin: u32,
    pub udp: u32,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        Self {
            tcp: DEFAULT_TCP_TIMEOUT,
            tcp_fin: DEFAULT_TCP_FIN_TIMEOUT,
            udp: DEFAULT_UDP_TIMEOUT,
        }
    }
}

/// When new flows stop being recorded (see `lb_common::FloodGuard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct FloodGuardConfig {
    /// New flows recorded per second on each CPU; 0 records them all.
    pub new_flows_per_second: u32,
}

impl Default for FloodGuardConfig {
    fn default() -> Self {
        Self {
            new_flows_per_second: DEFAULT_FLOOD_GUARD_NEW_FLOWS,
        }
    }
}

/// The daemon's control API (`lbadm` talks to it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ControlConfig {
    /// Unix socket, created mode 0600; only root may use it.
    pub socket: PathBuf,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::from(DEFAULT_CONTROL_SOCKET),
        }
    }
}

/// The Prometheus metrics endpoint. Off unless `listen` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct MetricsConfig {
    /// Where `GET /metrics` is served, e.g. `127.0.0.1:9105`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ServiceConfig {
    pub name: String,
    pub vip: IpAddr,
    /// 0 matches every port of the VIP.
    pub port: u16,
    pub protocol: Protocol,
    pub scheduler: Scheduler,
    /// ipvsadm's `-b`. Left out of the YAML, `mh` gets `mh-port`.
    pub scheduler_flags: Vec<SchedulerFlag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistence: Option<PersistenceConfig>,
    /// The reals' forwarding method unless a real names its own.
    pub forwarding: Forwarding,
    /// Health checks and what failures do.
    #[serde(flatten)]
    pub health: ServiceHealth,
    pub reals: Vec<RealConfig>,
}

impl ServiceConfig {
    /// How packets reach `real`.
    pub fn forwarding_of(&self, real: &RealConfig) -> Forwarding {
        real.forwarding.unwrap_or(self.forwarding)
    }

    /// How `real` is probed: its own check, else the service's.
    pub fn health_check_of<'a>(&'a self, real: &'a RealConfig) -> &'a HealthCheck {
        real.health_check
            .as_ref()
            .unwrap_or(&self.health.health_check)
    }
}

/// Client persistence (ipvsadm's `-p` and `-M`): connections from one
/// client (or one client network) go to the same real while the template
/// lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct PersistenceConfig {
    /// Seconds a template outlives the last connection it placed.
    pub timeout: u32,
    /// Leading bits of the client address that identify a client (32 or
    /// 128 = the whole address).
    pub prefix: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// The IANA protocol number, as in the IP header.
    pub const fn number(&self) -> u8 {
        match self {
            Self::Tcp => lb_common::proto::TCP,
            Self::Udp => lb_common::proto::UDP,
        }
    }
}

/// IPVS's schedulers, by their ipvsadm names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scheduler {
    /// Maglev consistent hashing (this product's default; ipvsadm's is wlc).
    #[default]
    Mh,
    Rr,
    Wrr,
    Sh,
    Dh,
    Lc,
    Wlc,
    Sed,
    Nq,
}

impl Scheduler {
    pub const fn dataplane(self) -> lb_common::Scheduler {
        use lb_common::Scheduler as S;
        match self {
            Self::Mh => S::Maglev,
            Self::Rr => S::RoundRobin,
            Self::Wrr => S::WeightedRoundRobin,
            Self::Sh => S::SourceHash,
            Self::Dh => S::DestinationHash,
            Self::Lc => S::LeastConnection,
            Self::Wlc => S::WeightedLeastConnection,
            Self::Sed => S::ShortestExpectedDelay,
            Self::Nq => S::NeverQueue,
        }
    }

    pub fn from_dataplane(scheduler: lb_common::Scheduler) -> Self {
        *Self::ALL
            .iter()
            .find(|ours| ours.dataplane() == scheduler)
            .expect("every data-plane scheduler has a name")
    }
}

/// ipvsadm's scheduler flags (`-b`). sh and mh name theirs; the same two
/// bits on any other scheduler are `flag-1` and `flag-2`, which IPVS keeps
/// (and ipvsadm saves) but no scheduler of theirs reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchedulerFlag {
    MhFallback,
    MhPort,
    ShFallback,
    ShPort,
    Flag1,
    Flag2,
}

impl SchedulerFlag {
    /// The scheduler whose flag this is; `None` for the numbered ones.
    pub const fn scheduler(self) -> Option<Scheduler> {
        match self {
            Self::MhFallback | Self::MhPort => Some(Scheduler::Mh),
            Self::ShFallback | Self::ShPort => Some(Scheduler::Sh),
            Self::Flag1 | Self::Flag2 => None,
        }
    }

    /// Whether `scheduler` spells its flags this way.
    pub fn belongs_to(self, scheduler: Scheduler) -> bool {
        match self.scheduler() {
            Some(own) => own == scheduler,
            None => !matches!(scheduler, Scheduler::Mh | Scheduler::Sh),
        }
    }

    /// The first bit (`IP_VS_SVC_F_SCHED1`): fallback for sh and mh.
    pub const fn is_fallback(self) -> bool {
        matches!(self, Self::MhFallback | Self::ShFallback | Self::Flag1)
    }

    /// The flag of `scheduler` for the first bit (or the second).
    pub fn for_scheduler(scheduler: Scheduler, fallback: bool) -> Self {
        *Self::ALL
            .iter()
            .find(|flag| flag.belongs_to(scheduler) && flag.is_fallback() == fallback)
            .expect("every scheduler has a spelling for both bits")
    }
}

/// The data plane's `SCHED_FLAG_*` bits for a flag list.
pub fn sched_flag_bits(flags: &[SchedulerFlag]) -> u8 {
    flags.iter().fold(0, |bits, flag| {
        bits | if flag.is_fallback() {
            lb_common::SCHED_FLAG_FALLBACK
        } else {
            lb_common::SCHED_FLAG_PORT
        }
    })
}

/// What a service gets when the YAML leaves `scheduler_flags` out: `mh`
/// hashes the whole connection (client port included), like Katran.
pub fn default_scheduler_flags(scheduler: Scheduler) -> Vec<SchedulerFlag> {
    match scheduler {
        Scheduler::Mh => vec![SchedulerFlag::MhPort],
        _ => Vec::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Forwarding {
    /// Direct routing: only the MAC is rewritten. Reals are of the VIP's
    /// family and take the service's port.
    #[default]
    Dr,
    /// IP-in-IP / IPv6 tunnelling: the packet is encapsulated as it came, so
    /// reals may be of either family but take the service's port.
    Tun,
    /// Destination NAT (LVS-NAT): the VIP and port are rewritten to the
    /// real's, so reals are of the VIP's family and may use another port.
    Nat,
}

impl Forwarding {
    /// The data plane's name for the method.
    pub const fn dataplane(self) -> lb_common::ForwardingMethod {
        use lb_common::ForwardingMethod as M;
        match self {
            Self::Dr => M::DirectRouting,
            Self::Tun => M::Tunnel,
            Self::Nat => M::Masquerade,
        }
    }

    pub const fn from_dataplane(method: lb_common::ForwardingMethod) -> Self {
        use lb_common::ForwardingMethod as M;
        match method {
            M::DirectRouting => Self::Dr,
            M::Tunnel => Self::Tun,
            M::Masquerade => Self::Nat,
        }
    }

    /// How messages name the method.
    fn name(self) -> &'static str {
        match self {
            Self::Dr => "DR",
            Self::Tun => "TUN",
            Self::Nat => "NAT",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RealConfig {
    pub address: IpAddr,
    /// Defaults to the service's port.
    pub port: u16,
    /// 0 takes no new flows (drain); at most [`MAX_WEIGHT`].
    pub weight: u32,
    /// Overrides the service's forwarding method for this real.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarding: Option<Forwarding>,
    /// ipvsadm's `-x`: at this many connections the real takes no new ones
    /// (0 = no limit).
    #[serde(skip_serializing_if = "is_zero")]
    pub upper_threshold: u32,
    /// ipvsadm's `-y`: below this many it takes new ones again (0 = three
    /// quarters of the upper threshold).
    #[serde(skip_serializing_if = "is_zero")]
    pub lower_threshold: u32,
    /// This real's probe, when it differs from the service's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
}

impl RealConfig {
    /// Where the real is reached: its address and port.
    pub fn endpoint(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// The enums above are spelled in YAML as fixed lowercase keywords. This table
/// is the one place that spelling lives: reading, `Display` and `Serialize`
/// all go through it, so what is printed can always be read back.
trait Keyword: Copy + PartialEq + 'static {
    /// What the field is called in messages.
    const WHAT: &'static str;
    /// Every value, in the order messages list them.
    const ALL: &'static [Self];
    fn keyword(self) -> &'static str;
}

impl Keyword for XdpMode {
    const WHAT: &'static str = "xdp_mode";
    const ALL: &'static [Self] = &[Self::Auto, Self::Native, Self::Skb];
    fn keyword(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Native => "native",
            Self::Skb => "skb",
        }
    }
}

impl Keyword for Protocol {
    const WHAT: &'static str = "protocol";
    const ALL: &'static [Self] = &[Self::Tcp, Self::Udp];
    fn keyword(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

impl Keyword for Scheduler {
    const WHAT: &'static str = "scheduler";
    const ALL: &'static [Self] = &[
        Self::Mh,
        Self::Rr,
        Self::Wrr,
        Self::Sh,
        Self::Dh,
        Self::Lc,
        Self::Wlc,
        Self::Sed,
        Self::Nq,
    ];
    fn keyword(self) -> &'static str {
        self.dataplane().name()
    }
}

impl Keyword for SchedulerFlag {
    const WHAT: &'static str = "scheduler flag";
    const ALL: &'static [Self] = &[
        Self::MhFallback,
        Self::MhPort,
        Self::ShFallback,
        Self::ShPort,
        Self::Flag1,
        Self::Flag2,
    ];
    fn keyword(self) -> &'static str {
        match self {
            Self::MhFallback => "mh-fallback",
            Self::MhPort => "mh-port",
            Self::ShFallback => "sh-fallback",
            Self::ShPort => "sh-port",
            Self::Flag1 => "flag-1",
            Self::Flag2 => "flag-2",
        }
    }
}

impl Keyword for Forwarding {
    const WHAT: &'static str = "forwarding";
    const ALL: &'static [Self] = &[Self::Dr, Self::Tun, Self::Nat];
    fn keyword(self) -> &'static str {
        match self {
            Self::Dr => "dr",
            Self::Tun => "tun",
            Self::Nat => "nat",
        }
    }
}

macro_rules! keyword_display_and_serialize {
    ($($ty:ty),+) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.keyword())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.keyword())
            }
        }
    )+};
}

keyword_display_and_serialize!(XdpMode, Protocol, Scheduler, SchedulerFlag, Forwarding);

// ---------------------------------------------------------------------------
// Errors.

/// One thing wrong with a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// 1-based; 0 when the problem is about the whole file (it cannot be read).
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Where in the schema, e.g. `services[1].reals[0].weight`; empty for the
    /// document itself (syntax errors).
    pub path: String,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if self.line > 0 {
            write!(f, "{}:{}:", self.line, self.column)?;
        }
        if !self.path.is_empty() {
            write!(f, " {}:", self.path)?;
        }
        write!(f, " {}", self.reason)
    }
}

/// Every problem found in a configuration, in the order they appear in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    /// One problem per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------------------
// Entry points.

/// Reads and validates the configuration at `path`. `interface_exists` is
/// injected so that tests do not depend on the host; the daemon passes
/// [`host_interface_exists`].
pub fn load(path: &Path, interface_exists: &dyn Fn(&str) -> bool) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &file, interface_exists),
        Err(e) => Err(ConfigError {
            problems: vec![Problem {
                file,
                line: 0,
                column: 0,
                path: String::new(),
                reason: format!("cannot read the configuration: {e}"),
            }],
        }),
    }
}

/// Parses and validates configuration text; `file_name` only labels problems.
pub fn parse(
    text: &str,
    file_name: &str,
    interface_exists: &dyn Fn(&str) -> bool,
) -> Result<Config, ConfigError> {
    // Where each node is only matters for placing problems that validation
    // finds after decoding. Recording it costs a path string and a hash
    // insert per node (a fifth of the time for 100,000 reals), so a file is
    // read without, and read again with positions only if it has problems.
    parse_once(text, file_name, interface_exists, Positions::Skip)
        .or_else(|_| parse_once(text, file_name, interface_exists, Positions::Record))
}

fn parse_once(
    text: &str,
    file_name: &str,
    interface_exists: &dyn Fn(&str) -> bool,
    positions: Positions,
) -> Result<Config, ConfigError> {
    let mut reader = Reader::new(file_name, positions);
    let root = match load_document(text) {
        Ok(root) => root,
        Err((pos, reason)) => {
            reader.report(pos, "", reason);
            return reader.finish(None);
        }
    };
    let draft = reader.decode_config(&Field::root(&root));
    if let Some(draft) = &draft {
        reader.validate(draft, interface_exists);
    }
    reader.finish(draft.and_then(Draft::into_config))
}

/// Validates a configuration built in memory (the running state after
/// `lbadm` changes) with the same rules as a file. Problems carry no
/// position (`line` 0) and are labelled with `source`.
pub fn check(config: &Config, source: &str) -> Result<(), ConfigError> {
    let mut reader = Reader::new(source, Positions::Skip);
    let draft = Draft::from_config(config.clone());
    // Interfaces come from the file and are not changed at run time.
    reader.validate(&draft, &|_| true);
    for problem in &mut reader.problems {
        problem.line = 0;
    }
    reader.finish(Some(config.clone())).map(|_| ())
}

/// Whether this host has a network interface called `name`.
pub fn host_interface_exists(name: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    unsafe { libc::if_nametoindex(name.as_ptr()) != 0 }
}

/// Loads the single YAML document in `text`, every node marked with its position.
fn load_document(text: &str) -> Result<MarkedYaml<'_>, (Pos, String)> {
    let syntax_error = |e: &ScanError| {
        (
            Pos::from(*e.marker()),
            format!("invalid YAML: {}", e.info()),
        )
    };
    let mut loader = YamlLoader::<MarkedYaml<'_>>::default();
    // Keep scalars as written: the decoder resolves them itself, so that a
    // field that wants a string takes `name: 2024` as the user wrote it, and
    // messages quote the user's own spelling (`0x50`, not 80).
    loader.early_parse(false);
    Parser::new_from_str(text)
        .load(&mut loader, true)
        .map_err(|e| syntax_error(&e))?;
    if let Some(e) = loader.error() {
        return Err(syntax_error(e));
    }
    let mut documents = loader.into_documents();
    match documents.len() {
        0 => Err((
            Pos::START,
            "the file is empty: expected at least `interfaces`".to_owned(),
        )),
        1 => Ok(documents.swap_remove(0)),
        n => Err((
            Pos::from(documents[1].span.start),
            format!("expected one YAML document, found {n}"),
        )),
    }
}

// ---------------------------------------------------------------------------
// Decoding: from the marked YAML tree to typed values, one node at a time.

/// A position in the text, 1-based like an editor's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    line: usize,
    column: usize,
}

impl Pos {
    const START: Pos = Pos { line: 1, column: 1 };
}

impl From<Marker> for Pos {
    fn from(marker: Marker) -> Self {
        // saphyr counts lines from 1 but columns from 0.
        Pos {
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

/// A node and the field path that problems about it are reported under.
#[derive(Clone)]
struct Field<'n, 'i> {
    node: &'n MarkedYaml<'i>,
    path: String,
}

impl<'n, 'i> Field<'n, 'i> {
    fn root(node: &'n MarkedYaml<'i>) -> Self {
        Field {
            node,
            path: String::new(),
        }
    }

    fn pos(&self) -> Pos {
        Pos::from(self.node.span.start)
    }

    fn child_path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }
}

/// The entries of a mapping, its keys already checked against the schema.
struct Fields<'n, 'i> {
    mapping: Field<'n, 'i>,
    entries: Vec<(&'n str, Field<'n, 'i>)>,
}

impl<'n, 'i> Fields<'n, 'i> {
    fn get(&self, name: &str) -> Option<Field<'n, 'i>> {
        self.entries
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, field)| field.clone())
    }
}

/// What decoding produced. A `None` part failed to decode (its problems are
/// recorded); the rest is still validated, so that a typo in one place does
/// not hide a duplicate service in another.
struct Draft {
    interfaces: Vec<Option<InterfaceConfig>>,
    pin_path: Option<PathBuf>,
    control: Option<ControlConfig>,
    dataplane: Option<DataplaneConfig>,
    tunnel: Option<TunnelConfig>,
    timeouts: Option<TimeoutsConfig>,
    icmp_echo_reply: Option<bool>,
    expire_nodest_conn: Option<bool>,
    flood_guard: Option<FloodGuardConfig>,
    metrics: Option<MetricsConfig>,
    services: Vec<Option<DraftService>>,
}

/// A service whose own fields decoded. Its reals are kept apart, each in its
/// place in the file, so that one bad real leaves the service and the other
/// reals checkable.
struct DraftService {
    /// Everything but `reals`, which is left empty.
    service: ServiceConfig,
    reals: Vec<Option<RealConfig>>,
}

impl Draft {
    fn from_config(config: Config) -> Self {
        Draft {
            interfaces: config.interfaces.into_iter().map(Some).collect(),
            pin_path: Some(config.pin_path),
            control: Some(config.control),
            dataplane: Some(config.dataplane),
            tunnel: Some(config.tunnel),
            timeouts: Some(config.timeouts),
            icmp_echo_reply: Some(config.icmp_echo_reply),
            expire_nodest_conn: Some(config.expire_nodest_conn),
            flood_guard: Some(config.flood_guard),
            metrics: Some(config.metrics),
            services: config
                .services
                .into_iter()
                .map(|service| {
                    let reals = service.reals.iter().cloned().map(Some).collect();
                    Some(DraftService {
                        service: ServiceConfig {
                            reals: Vec::new(),
                            ..service
                        },
                        reals,
                    })
                })
                .collect(),
        }
    }

    /// The configuration, if every part of it decoded.
    fn into_config(self) -> Option<Config> {
        let services = self.services.into_iter().map(|draft| {
            let draft = draft?;
            let reals = draft.reals.into_iter().collect::<Option<_>>()?;
            Some(ServiceConfig {
                reals,
                ..draft.service
            })
        });
        Some(Config {
            interfaces: self.interfaces.into_iter().collect::<Option<_>>()?,
            pin_path: self.pin_path?,
            control: self.control?,
            dataplane: self.dataplane?,
            tunnel: self.tunnel?,
            timeouts: self.timeouts?,
            icmp_echo_reply: self.icmp_echo_reply?,
            expire_nodest_conn: self.expire_nodest_conn?,
            flood_guard: self.flood_guard?,
            metrics: self.metrics?,
            services: services.collect::<Option<_>>()?,
        })
    }
}

/// Whether a [`Reader`] records where each node is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Positions {
    Record,
    /// A first pass that only finds out whether the file is fine: no
    /// positions, and no field paths either (a string per field, most of
    /// the decoding's allocations). Its problems are never shown: a file
    /// with problems is read again with `Record` (see [`parse`]).
    Skip,
}

/// Walks the document, collecting problems, and (when asked) remembers
/// where each decoded node is so that validation can point at it
/// afterwards.
struct Reader<'a> {
    file: &'a str,
    problems: Vec<Problem>,
    /// `None` when positions are skipped.
    positions: Option<HashMap<String, Pos>>,
}

impl<'a> Reader<'a> {
    fn new(file: &'a str, positions: Positions) -> Self {
        Reader {
            file,
            problems: Vec::new(),
            positions: (positions == Positions::Record).then(HashMap::new),
        }
    }

    /// The path of `name` under `field`, on a pass that keeps paths.
    fn child_path(&self, field: &Field<'_, '_>, name: &str) -> String {
        match self.positions {
            Some(_) => field.child_path(name),
            None => String::new(),
        }
    }

    /// The path of item `index` of the list `field`, likewise.
    fn item_path(&self, field: &Field<'_, '_>, index: usize) -> String {
        match self.positions {
            Some(_) => format!("{}[{index}]", field.path),
            None => String::new(),
        }
    }

    fn remember(&mut self, path: &str, pos: Pos) {
        if let Some(positions) = &mut self.positions {
            positions.insert(path.to_owned(), pos);
        }
    }

    fn finish(mut self, config: Option<Config>) -> Result<Config, ConfigError> {
        match config {
            Some(config) if self.problems.is_empty() => Ok(config),
            _ => {
                if self.problems.is_empty() {
                    // Every failed decode reports why; this is a safety net.
                    self.report(Pos::START, "", "the configuration could not be decoded");
                }
                // Stable, so problems at the same node keep the order found.
                self.problems.sort_by_key(|p| (p.line, p.column));
                Err(ConfigError {
                    problems: self.problems,
                })
            }
        }
    }

    fn report(&mut self, pos: Pos, path: &str, reason: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_owned(),
            line: pos.line,
            column: pos.column,
            path: path.to_owned(),
            reason: reason.into(),
        });
    }

    fn report_on(&mut self, field: &Field<'_, '_>, reason: impl Into<String>) {
        self.report(field.pos(), &field.path, reason);
    }

    fn expected(&mut self, field: &Field<'_, '_>, what: &str) {
        let found = describe(field.node);
        self.report_on(field, format!("expected {what}, found {found}"));
    }

    // --- Structure.

    /// The entries of a mapping whose keys must be among `known`.
    fn mapping<'n, 'i>(&mut self, field: &Field<'n, 'i>, known: &[&str]) -> Option<Fields<'n, 'i>> {
        let YamlData::Mapping(mapping) = &field.node.data else {
            self.expected(field, "a mapping");
            return None;
        };
        let mut entries: Vec<(&'n str, Field<'n, 'i>)> = Vec::new();
        for (key, node) in mapping {
            let key_pos = Pos::from(key.span.start);
            let Some((name, _)) = scalar(key) else {
                let found = describe(key);
                self.report(
                    key_pos,
                    &field.path,
                    format!("expected a field name, found {found}"),
                );
                continue;
            };
            let path = self.child_path(field, name);
            if !known.contains(&name) {
                self.report(key_pos, &path, unknown_field(name, known));
            } else if entries.iter().any(|(seen, _)| *seen == name) {
                // saphyr rejects exact duplicates; this catches `name` vs `"name"`.
                self.report(key_pos, &path, format!("duplicate field `{name}`"));
            } else {
                let value = Field { node, path };
                self.remember(&value.path, value.pos());
                entries.push((name, value));
            }
        }
        self.remember(&field.path, field.pos());
        Some(Fields {
            mapping: field.clone(),
            entries,
        })
    }

    fn required<'n, 'i>(&mut self, fields: &Fields<'n, 'i>, name: &str) -> Option<Field<'n, 'i>> {
        let field = fields.get(name);
        if field.is_none() {
            let at = fields.mapping.pos();
            let path = fields.mapping.child_path(name);
            self.report(at, &path, format!("missing required field `{name}`"));
        }
        field
    }

    /// Decodes a required field. `None` means a problem was reported.
    fn required_with<'n, 'i, T>(
        &mut self,
        fields: &Fields<'n, 'i>,
        name: &str,
        decode: impl FnOnce(&mut Self, &Field<'n, 'i>) -> Option<T>,
    ) -> Option<T> {
        let field = self.required(fields, name)?;
        decode(self, &field)
    }

    /// Decodes an optional field, or takes `default` if it is absent.
    fn optional<'n, 'i, T>(
        &mut self,
        fields: &Fields<'n, 'i>,
        name: &str,
        default: T,
        decode: impl FnOnce(&mut Self, &Field<'n, 'i>) -> Option<T>,
    ) -> Option<T> {
        match fields.get(name) {
            Some(field) => decode(self, &field),
            None => Some(default),
        }
    }

    /// Decodes every item of a sequence; `None` if `field` is no sequence.
    fn list<'n, 'i, T>(
        &mut self,
        field: &Field<'n, 'i>,
        mut decode: impl FnMut(&mut Self, &Field<'n, 'i>) -> Option<T>,
    ) -> Option<Vec<Option<T>>> {
        let YamlData::Sequence(nodes) = &field.node.data else {
            self.expected(field, "a list");
            return None;
        };
        let items = nodes.iter().enumerate().map(|(i, node)| {
            let item = Field {
                node,
                path: self.item_path(field, i),
            };
            self.remember(&item.path, item.pos());
            decode(self, &item)
        });
        Some(items.collect())
    }

    // --- Scalars.

    /// The text of a non-null scalar: for strings, the value as written.
    fn text<'n>(&mut self, field: &Field<'n, '_>, expected: &str) -> Option<&'n str> {
        match scalar(field.node) {
            Some((text, value)) if value != Scalar::Null => Some(text),
            _ => {
                self.expected(field, expected);
                None
            }
        }
    }

    fn integer(&mut self, field: &Field<'_, '_>, range: RangeInclusive<i64>) -> Option<i64> {
        self.integer_as(field, range, "an integer")
    }

    /// An integer in `range`; `what` names it when something else is found.
    fn integer_as(
        &mut self,
        field: &Field<'_, '_>,
        range: RangeInclusive<i64>,
        what: &str,
    ) -> Option<i64> {
        let (min, max) = (range.start(), range.end());
        match scalar(field.node) {
            Some((_, Scalar::Integer(n))) if range.contains(&n) => Some(n),
            Some((text, Scalar::Integer(_))) => {
                self.report_on(field, format!("{text} is out of range {min}..={max}"));
                None
            }
            // Too big for an i64, the core schema makes it a float; the user
            // still wrote an integer.
            Some((text, Scalar::FloatingPoint(_))) if is_decimal_integer(text) => {
                self.report_on(field, format!("{text} is out of range {min}..={max}"));
                None
            }
            _ => {
                self.expected(field, &format!("{what} in {min}..={max}"));
                None
            }
        }
    }

    fn u32_in(&mut self, field: &Field<'_, '_>, range: RangeInclusive<u32>) -> Option<u32> {
        let range = i64::from(*range.start())..=i64::from(*range.end());
        self.integer(field, range)
            .and_then(|n| u32::try_from(n).ok())
    }

    fn port(&mut self, field: &Field<'_, '_>) -> Option<u16> {
        self.integer(field, 0..=i64::from(u16::MAX))
            .and_then(|n| u16::try_from(n).ok())
    }

    /// An idle timeout: whole seconds, as `ipvsadm --set` takes them.
    fn seconds(&mut self, field: &Field<'_, '_>) -> Option<u32> {
        let range = i64::from(MIN_TIMEOUT)..=i64::from(MAX_TIMEOUT);
        self.integer_as(field, range, "a number of seconds")
            .and_then(|n| u32::try_from(n).ok())
    }

    fn boolean(&mut self, field: &Field<'_, '_>) -> Option<bool> {
        match scalar(field.node) {
            Some((_, Scalar::Boolean(value))) => Some(value),
            _ => {
                self.expected(field, "`true` or `false`");
                None
            }
        }
    }

    /// A VIP, a real or a tunnel source: a unicast IPv4 or IPv6 address.
    fn ip(&mut self, field: &Field<'_, '_>) -> Option<IpAddr> {
        let text = self.text(field, "an IP address")?;
        let Ok(address) = text.parse::<IpAddr>() else {
            self.report_on(field, format!("`{text}` is not a valid IP address"));
            return None;
        };
        if !is_unicast(address) {
            self.report_on(field, format!("{address} is not a unicast address"));
            return None;
        }
        Some(address)
    }

    fn keyword<T: Keyword>(&mut self, field: &Field<'_, '_>) -> Option<T> {
        let choices = T::ALL
            .iter()
            .map(|value| format!("`{}`", value.keyword()))
            .collect::<Vec<_>>()
            .join(", ");
        let text = self.text(field, &format!("one of {choices}"))?;
        let value = T::ALL.iter().copied().find(|value| value.keyword() == text);
        if value.is_none() {
            let what = T::WHAT;
            self.report_on(
                field,
                format!("unknown {what} `{text}`, expected one of {choices}"),
            );
        }
        value
    }

    // --- The schema.

    fn decode_config(&mut self, root: &Field<'_, '_>) -> Option<Draft> {
        let empty = matches!(scalar(root.node), Some((_, Scalar::Null)));
        if empty || matches!(root.node.data, YamlData::BadValue) {
            self.report_on(root, "the file is empty: expected at least `interfaces`");
            return None;
        }
        const FIELDS: &[&str] = &[
            "interfaces",
            "pin_path",
            "control",
            "dataplane",
            "tunnel",
            "timeouts",
            "icmp_echo_reply",
            "expire_nodest_conn",
            "flood_guard",
            "metrics",
            "services",
        ];
        let fields = self.mapping(root, FIELDS)?;
        let interfaces = self
            .required_with(&fields, "interfaces", Self::decode_interfaces)
            .unwrap_or_default();
        let default_pin_path = PathBuf::from(DEFAULT_PIN_PATH);
        let pin_path = self.optional(&fields, "pin_path", default_pin_path, Self::decode_pin_path);
        let control = self.optional(
            &fields,
            "control",
            ControlConfig::default(),
            Self::decode_control,
        );
        let dataplane = self.optional(
            &fields,
            "dataplane",
            DataplaneConfig::default(),
            Self::decode_dataplane,
        );
        let tunnel = self.optional(
            &fields,
            "tunnel",
            TunnelConfig::default(),
            Self::decode_tunnel,
        );
        let timeouts = self.optional(
            &fields,
            "timeouts",
            TimeoutsConfig::default(),
            Self::decode_timeouts,
        );
        let icmp_echo_reply = self.optional(
            &fields,
            "icmp_echo_reply",
            DEFAULT_ICMP_ECHO_REPLY,
            Self::boolean,
        );
        let expire_nodest_conn = self.optional(&fields, "expire_nodest_conn", false, Self::boolean);
        let flood_guard = self.optional(
            &fields,
            "flood_guard",
            FloodGuardConfig::default(),
            Self::decode_flood_guard,
        );
        let metrics = self.optional(
            &fields,
            "metrics",
            MetricsConfig::default(),
            Self::decode_metrics,
        );
        let services = match fields.get("services") {
            Some(list) => self.list(&list, Self::decode_service).unwrap_or_default(),
            None => Vec::new(),
        };
        Some(Draft {
            interfaces,
            pin_path,
            control,
            dataplane,
            tunnel,
            timeouts,
            icmp_echo_reply,
            expire_nodest_conn,
            flood_guard,
            metrics,
            services,
        })
    }

    fn decode_interfaces(&mut self, list: &Field<'_, '_>) -> Option<Vec<Option<InterfaceConfig>>> {
        let interfaces = self.list(list, Self::decode_interface)?;
        if interfaces.is_empty() {
            self.report_on(list, "at least one interface is required");
        }
        Some(interfaces)
    }

    fn decode_interface(&mut self, item: &Field<'_, '_>) -> Option<InterfaceConfig> {
        let fields = self.mapping(item, &["name", "xdp_mode"])?;
        let name = self.required_with(&fields, "name", |r, f| r.text(f, "an interface name"));
        let xdp_mode = self.optional(&fields, "xdp_mode", XdpMode::default(), Self::keyword);
        Some(InterfaceConfig {
            name: name?.to_owned(),
            xdp_mode: xdp_mode?,
        })
    }

    fn decode_control(&mut self, field: &Field<'_, '_>) -> Option<ControlConfig> {
        let fields = self.mapping(field, &["socket"])?;
        let socket = self.optional(
            &fields,
            "socket",
            PathBuf::from(DEFAULT_CONTROL_SOCKET),
            Self::decode_pin_path,
        );
        Some(ControlConfig { socket: socket? })
    }

    /// An absolute path (pin directory, control socket).
    fn decode_pin_path(&mut self, field: &Field<'_, '_>) -> Option<PathBuf> {
        let path = PathBuf::from(self.text(field, "a path")?);
        // The daemon may run from any directory; a relative pin path would
        // make it lose track of its own maps.
        if !path.is_absolute() {
            let shown = path.display();
            self.report_on(field, format!("`{shown}` must be an absolute path"));
            return None;
        }
        Some(path)
    }

    fn decode_dataplane(&mut self, field: &Field<'_, '_>) -> Option<DataplaneConfig> {
        let fields = self.mapping(
            field,
            &[
                "maglev_table_size",
                "flow_table_entries",
                "max_services",
                "max_reals",
            ],
        )?;
        let maglev_table_size = self.optional(
            &fields,
            "maglev_table_size",
            DEFAULT_MAGLEV_TABLE_SIZE,
            Self::decode_maglev_table_size,
        );
        let flow_table_entries = self.optional(
            &fields,
            "flow_table_entries",
            DEFAULT_FLOW_TABLE_ENTRIES,
            |r, f| r.u32_in(f, MIN_FLOW_TABLE_ENTRIES..=MAX_FLOW_TABLE_ENTRIES),
        );
        let max_services = self.optional(&fields, "max_services", DEFAULT_MAX_SERVICES, |r, f| {
            r.u32_in(f, 1..=MAX_MAX_SERVICES)
        });
        let max_reals = self.optional(&fields, "max_reals", DEFAULT_MAX_REALS, |r, f| {
            r.u32_in(f, 1..=MAX_MAX_REALS)
        });
        Some(DataplaneConfig {
            maglev_table_size: maglev_table_size?,
            flow_table_entries: flow_table_entries?,
            max_services: max_services?,
            max_reals: max_reals?,
        })
    }

    fn decode_maglev_table_size(&mut self, field: &Field<'_, '_>) -> Option<u32> {
        let size = self.u32_in(field, MIN_MAGLEV_TABLE_SIZE..=MAX_MAGLEV_TABLE_SIZE)?;
        // Maglev's permutations (offset + j * skip mod size) only visit every
        // slot when the size is prime.
        if !is_prime(size) {
            self.report_on(
                field,
                format!(
                    "{size} is not a prime number (Maglev needs a prime table size, e.g. 65537)"
                ),
            );
            return None;
        }
        Some(size)
    }

    fn decode_tunnel(&mut self, field: &Field<'_, '_>) -> Option<TunnelConfig> {
        let fields = self.mapping(field, &["source_v4", "source_v6"])?;
        let source_v4 = self.optional(&fields, "source_v4", None, |r, f| {
            r.tunnel_source(f, "IPv4", "source_v6", |address| match address {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
        });
        let source_v6 = self.optional(&fields, "source_v6", None, |r, f| {
            r.tunnel_source(f, "IPv6", "source_v4", |address| match address {
                IpAddr::V6(v6) => Some(v6),
                IpAddr::V4(_) => None,
            })
        });
        Some(TunnelConfig {
            source_v4: source_v4?,
            source_v6: source_v6?,
        })
    }

    /// A unicast address of the family `pick` accepts; `other` names the
    /// field that takes the other family.
    fn tunnel_source<A>(
        &mut self,
        field: &Field<'_, '_>,
        wanted: &str,
        other: &str,
        pick: impl FnOnce(IpAddr) -> Option<A>,
    ) -> Option<Option<A>> {
        let address = self.ip(field)?;
        let picked = pick(address);
        if picked.is_none() {
            let found = family(address);
            self.report_on(
                field,
                format!(
                    "{address} is an {found} address, this field takes an {wanted} address \
                     ({found} tunnels take theirs from `tunnel.{other}`)"
                ),
            );
        }
        picked.map(Some)
    }

    fn decode_timeouts(&mut self, field: &Field<'_, '_>) -> Option<TimeoutsConfig> {
        let fields = self.mapping(field, &["tcp", "tcp_fin", "udp"])?;
        let tcp = self.optional(&fields, "tcp", DEFAULT_TCP_TIMEOUT, Self::seconds);
        let tcp_fin = self.optional(&fields, "tcp_fin", DEFAULT_TCP_FIN_TIMEOUT, Self::seconds);
        let udp = self.optional(&fields, "udp", DEFAULT_UDP_TIMEOUT, Self::seconds);
        Some(TimeoutsConfig {
            tcp: tcp?,
            tcp_fin: tcp_fin?,
            udp: udp?,
        })
    }

    fn decode_flood_guard(&mut self, field: &Field<'_, '_>) -> Option<FloodGuardConfig> {
        let fields = self.mapping(field, &["new_flows_per_second"])?;
        let new_flows_per_second = self.optional(
            &fields,
            "new_flows_per_second",
            DEFAULT_FLOOD_GUARD_NEW_FLOWS,
            |r, f| r.u32_in(f, 0..=u32::MAX),
        );
        Some(FloodGuardConfig {
            new_flows_per_second: new_flows_per_second?,
        })
    }

    fn decode_metrics(&mut self, field: &Field<'_, '_>) -> Option<MetricsConfig> {
        let fields = self.mapping(field, &["listen"])?;
        let listen = self.optional(&fields, "listen", None, |r, f| {
            r.listen_address(f).map(Some)
        });
        Some(MetricsConfig { listen: listen? })
    }

    /// An address and port to listen on: `IP:PORT`, IPv6 in brackets.
    fn listen_address(&mut self, field: &Field<'_, '_>) -> Option<SocketAddr> {
        const EXAMPLE: &str = "`127.0.0.1:9105` or `\"[::1]:9105\"`";
        let text = self.text(field, &format!("an address and port such as {EXAMPLE}"))?;
        let Ok(address) = text.parse::<SocketAddr>() else {
            self.report_on(
                field,
                format!(
                    "`{text}` is not an address and port \
                     (IP:PORT with IPv6 in brackets, such as {EXAMPLE})"
                ),
            );
            return None;
        };
        let ip = address.ip();
        if ip.is_multicast() || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()) {
            self.report_on(
                field,
                format!("cannot listen on {ip}: not a unicast address"),
            );
            return None;
        }
        if address.port() == 0 {
            self.report_on(
                field,
                format!(
                    "port 0 would pick a random port; give the port to scrape (e.g. {ip}:9105)"
                ),
            );
            return None;
        }
        Some(address)
    }

    fn decode_service(&mut self, item: &Field<'_, '_>) -> Option<DraftService> {
        const FIELDS: &[&str] = &[
            "name",
            "vip",
            "port",
            "protocol",
            "scheduler",
            "scheduler_flags",
            "persistence",
            "forwarding",
            "health_check",
            "inhibit_on_failure",
            "alpha",
            "quorum",
            "on_quorum_loss",
            "sorry_server",
            "notify_up",
            "notify_down",
            "reals",
        ];
        let fields = self.mapping(item, FIELDS)?;
        let name = self.required_with(&fields, "name", Self::decode_service_name);
        let vip = self.required_with(&fields, "vip", Self::ip);
        let port = self.required_with(&fields, "port", Self::port);
        let protocol = self.required_with(&fields, "protocol", Self::keyword);
        let scheduler = self.optional(&fields, "scheduler", Scheduler::default(), Self::keyword);
        let scheduler_flags = match (fields.get("scheduler_flags"), scheduler) {
            (Some(list), Some(scheduler)) => self.decode_scheduler_flags(&list, scheduler),
            (Some(_), None) => None,
            (None, scheduler) => scheduler.map(default_scheduler_flags),
        };
        let persistence = self.optional(&fields, "persistence", None, |r, f| {
            r.decode_persistence(f, vip.ok_or(())).map(Some)
        });
        let forwarding = self.optional(&fields, "forwarding", Forwarding::default(), Self::keyword);
        // A real's port defaults to the service's; if that is broken the
        // service is rejected anyway, and 0 lets its reals still be read.
        let default_port = port.unwrap_or(0);
        let health = self.decode_service_health(&fields, default_port);
        let service_check = health.as_ref().map(|health| health.health_check.clone());
        let reals = match fields.get("reals") {
            Some(list) => self.list(&list, |r, item| {
                r.decode_real(item, default_port, service_check.as_ref())
            }),
            None => Some(Vec::new()),
        };
        let service = ServiceConfig {
            name: name?,
            vip: vip?,
            port: port?,
            protocol: protocol?,
            scheduler: scheduler?,
            scheduler_flags: scheduler_flags?,
            persistence: persistence?,
            forwarding: forwarding?,
            health: health?,
            reals: Vec::new(),
        };
        Some(DraftService {
            service,
            reals: reals?,
        })
    }

    fn decode_service_name(&mut self, field: &Field<'_, '_>) -> Option<String> {
        let name = self.text(field, "a service name")?;
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if name.is_empty() || name.len() > MAX_SERVICE_NAME_LEN || !name.chars().all(valid_char) {
            self.report_on(
                field,
                format!(
                    "`{name}` is not a valid service name \
                     (1 to {MAX_SERVICE_NAME_LEN} of A-Z a-z 0-9 _ . -)"
                ),
            );
            return None;
        }
        Some(name.to_owned())
    }

    /// A list of flags, each of `scheduler`.
    fn decode_scheduler_flags(
        &mut self,
        list: &Field<'_, '_>,
        scheduler: Scheduler,
    ) -> Option<Vec<SchedulerFlag>> {
        let flags = self.list(list, |r, item| {
            let flag: SchedulerFlag = r.keyword(item)?;
            if !flag.belongs_to(scheduler) {
                let spelled = SchedulerFlag::for_scheduler(scheduler, flag.is_fallback());
                let owner = flag.scheduler().map_or_else(
                    || "the numbered flags".to_owned(),
                    |own| format!("the `{own}` scheduler"),
                );
                r.report_on(
                    item,
                    format!("`{flag}` is a flag of {owner}; for `{scheduler}` write `{spelled}`"),
                );
                return None;
            }
            Some(flag)
        })?;
        let mut flags: Vec<SchedulerFlag> = flags.into_iter().collect::<Option<_>>()?;
        flags.sort_by_key(|flag| !flag.is_fallback());
        flags.dedup();
        Some(flags)
    }

    /// `{ timeout: N, prefix: P }`; the prefix defaults to the whole
    /// address of the VIP's family.
    fn decode_persistence(
        &mut self,
        field: &Field<'_, '_>,
        vip: Result<IpAddr, ()>,
    ) -> Option<PersistenceConfig> {
        let fields = self.mapping(field, &["timeout", "prefix"])?;
        let timeout = self.optional(
            &fields,
            "timeout",
            DEFAULT_PERSISTENCE_TIMEOUT,
            Self::seconds,
        );
        let whole = match vip {
            Ok(IpAddr::V6(_)) => 128,
            _ => 32,
        };
        let prefix = self.optional(&fields, "prefix", whole, |r, f| {
            r.integer_as(f, 1..=i64::from(whole), "a prefix length")
                .and_then(|n| u8::try_from(n).ok())
        });
        Some(PersistenceConfig {
            timeout: timeout?,
            prefix: prefix?,
        })
    }

    /// The service's health settings; reals are decoded after, against
    /// its check.
    fn decode_service_health(
        &mut self,
        fields: &Fields<'_, '_>,
        default_port: u16,
    ) -> Option<ServiceHealth> {
        let defaults = ServiceHealth::unchecked();
        let health_check = self.optional(
            fields,
            "health_check",
            defaults.health_check.clone(),
            |r, f| r.decode_health_check(f, &HealthCheck::default()),
        );
        let inhibit_on_failure = self.optional(fields, "inhibit_on_failure", false, Self::boolean);
        let alpha = self.optional(fields, "alpha", false, Self::boolean);
        let quorum = self.optional(fields, "quorum", defaults.quorum, |r, f| {
            r.u32_in(f, 0..=u32::MAX)
        });
        let on_quorum_loss = self.optional(fields, "on_quorum_loss", None, |r, f| {
            r.quorum_loss(f).map(Some)
        });
        let sorry_server = self.optional(fields, "sorry_server", None, |r, f| {
            r.decode_sorry_server(f, default_port).map(Some)
        });
        let notify_up = self.optional(fields, "notify_up", Vec::new(), Self::command);
        let notify_down = self.optional(fields, "notify_down", Vec::new(), Self::command);
        Some(ServiceHealth {
            health_check: health_check?,
            inhibit_on_failure: inhibit_on_failure?,
            alpha: alpha?,
            quorum: quorum?,
            on_quorum_loss: on_quorum_loss?,
            sorry_server: sorry_server?,
            notify_up: notify_up?,
            notify_down: notify_down?,
        })
    }

    /// `{ address, port, forwarding }`: a real that is never probed.
    fn decode_sorry_server(
        &mut self,
        field: &Field<'_, '_>,
        default_port: u16,
    ) -> Option<RealConfig> {
        let fields = self.mapping(field, &["address", "port", "forwarding"])?;
        let address = self.required_with(&fields, "address", Self::ip);
        let port = self.optional(&fields, "port", default_port, Self::port);
        let forwarding = self.optional(&fields, "forwarding", None, |r, f| r.keyword(f).map(Some));
        Some(RealConfig {
            address: address?,
            port: port?,
            weight: DEFAULT_WEIGHT,
            forwarding: forwarding?,
            upper_threshold: 0,
            lower_threshold: 0,
            health_check: None,
        })
    }

    fn decode_real(
        &mut self,
        item: &Field<'_, '_>,
        default_port: u16,
        service_check: Option<&HealthCheck>,
    ) -> Option<RealConfig> {
        const FIELDS: &[&str] = &[
            "address",
            "port",
            "weight",
            "forwarding",
            "upper_threshold",
            "lower_threshold",
            "health_check",
        ];
        let fields = self.mapping(item, FIELDS)?;
        let address = self.required_with(&fields, "address", Self::ip);
        let port = self.optional(&fields, "port", default_port, Self::port);
        let weight = self.optional(&fields, "weight", DEFAULT_WEIGHT, |r, f| {
            r.u32_in(f, 0..=MAX_WEIGHT)
        });
        let forwarding = self.optional(&fields, "forwarding", None, |r, f| r.keyword(f).map(Some));
        let upper_threshold = self.optional(&fields, "upper_threshold", 0, |r, f| {
            r.u32_in(f, 0..=MAX_THRESHOLD)
        });
        let lower_threshold = self.optional(&fields, "lower_threshold", 0, |r, f| {
            r.u32_in(f, 0..=MAX_THRESHOLD)
        });
        // Decoded against the service's check; if that one was broken the
        // service is rejected anyway and the defaults stand in.
        let base = service_check.cloned().unwrap_or_default();
        let health_check = self.optional(&fields, "health_check", None, |r, f| {
            r.decode_health_check(f, &base).map(Some)
        });
        Some(RealConfig {
            address: address?,
            port: port?,
            weight: weight?,
            forwarding: forwarding?,
            upper_threshold: upper_threshold?,
            lower_threshold: lower_threshold?,
            health_check: health_check?,
        })
    }
}

/// A scalar's text as written and what the YAML core schema makes of it.
/// `None` for collections, and for scalars that carry an application tag
/// (`!foo`): this schema uses none, so they are more likely mistakes.
fn scalar<'n>(node: &'n MarkedYaml<'_>) -> Option<(&'n str, Scalar<'n>)> {
    let YamlData::Representation(text, style, tag) = &node.data else {
        return None;
    };
    if tag.as_ref().is_some_and(|tag| !tag.is_yaml_core_schema()) {
        return None;
    }
    let value =
        Scalar::parse_from_cow_and_metadata(Cow::Borrowed(text.as_ref()), *style, tag.as_ref())?;
    Some((text.as_ref(), value))
}

/// How a node is named in "expected X, found Y".
fn describe(node: &MarkedYaml<'_>) -> String {
    match &node.data {
        YamlData::Mapping(_) => "a mapping".to_owned(),
        YamlData::Sequence(_) => "a list".to_owned(),
        YamlData::Representation(text, _, tag) => match (scalar(node), tag) {
            (Some((_, Scalar::Null)), _) => "null".to_owned(),
            (Some((_, Scalar::Boolean(_))), _) => format!("boolean `{text}`"),
            (Some((_, Scalar::Integer(_))), _) => format!("integer `{text}`"),
            (Some((_, Scalar::FloatingPoint(_))), _) => format!("number `{text}`"),
            (Some((_, Scalar::String(_))), _) => format!("string `{text}`"),
            (None, Some(tag)) => format!("`{text}` tagged `{tag}`"),
            (None, None) => format!("`{text}`"),
        },
        YamlData::Tagged(tag, _) => format!("a node tagged `{tag}`"),
        YamlData::Value(_) | YamlData::Alias(_) | YamlData::BadValue => {
            "an invalid value".to_owned()
        }
    }
}

fn unknown_field(name: &str, known: &[&str]) -> String {
    let expected = known
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("unknown field `{name}`, expected one of {expected}")
}

fn is_decimal_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Addresses that can receive a unicast flow: not unspecified, multicast or broadcast.
fn is_unicast(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

fn is_prime(n: u32) -> bool {
    let n = u64::from(n);
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

// ---------------------------------------------------------------------------
// Validation: rules about the configuration as a whole.

/// The items of a list that decoded, with their index in the file.
fn decoded<T>(items: &[Option<T>]) -> impl Iterator<Item = (usize, &T)> {
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| Some((i, item.as_ref()?)))
}

fn family(address: IpAddr) -> &'static str {
    if address.is_ipv4() { "IPv4" } else { "IPv6" }
}

impl Reader<'_> {
    fn validate(&mut self, draft: &Draft, interface_exists: &dyn Fn(&str) -> bool) {
        self.check_interfaces(&draft.interfaces, interface_exists);
        self.check_services(&draft.services);
        // The limits come from `dataplane`; if it did not decode, its own
        // error is the one to fix first.
        if let Some(dataplane) = &draft.dataplane {
            self.check_maglev_ring(dataplane);
            self.check_capacity(dataplane, &draft.services);
        }
    }

    /// The ring is indexed with a `u32` (`service id * size + slot`).
    fn check_maglev_ring(&mut self, dataplane: &DataplaneConfig) {
        let slots = dataplane.maglev_ring_slots();
        if slots > u64::from(u32::MAX) {
            let (services, size) = (dataplane.max_services, dataplane.maglev_table_size);
            self.report_at(
                "dataplane.max_services",
                format!(
                    "{services} services with maglev_table_size {size} need a Maglev ring of \
                     {slots} slots, more than the 4294967295 a 32-bit index reaches"
                ),
            );
        }
    }

    /// Reports at the node `path` names; a field left out (to its default)
    /// is reported at the nearest node that encloses it.
    fn report_at(&mut self, path: &str, reason: impl Into<String>) {
        let mut prefix = path;
        let pos = loop {
            if let Some(pos) = self.positions.as_ref().and_then(|p| p.get(prefix)) {
                break *pos;
            }
            match prefix.rfind(['.', '[']) {
                Some(cut) => prefix = &prefix[..cut],
                None if !prefix.is_empty() => prefix = "",
                None => break Pos::START,
            }
        };
        self.report(pos, path, reason);
    }

    fn check_interfaces(
        &mut self,
        interfaces: &[Option<InterfaceConfig>],
        interface_exists: &dyn Fn(&str) -> bool,
    ) {
        if interfaces.len() > MAX_INTERFACES {
            let count = interfaces.len();
            self.report_at(
                &format!("interfaces[{MAX_INTERFACES}]"),
                format!(
                    "too many interfaces: {count} listed, at most {MAX_INTERFACES} are supported"
                ),
            );
        }
        let mut first_seen: HashMap<&str, usize> = HashMap::new();
        for (i, interface) in decoded(interfaces) {
            let path = format!("interfaces[{i}].name");
            let name = interface.name.as_str();
            match first_seen.entry(name) {
                Entry::Occupied(first) => {
                    let first = first.get();
                    self.report_at(
                        &path,
                        format!("interface `{name}` is already listed as interfaces[{first}]"),
                    );
                }
                Entry::Vacant(slot) => {
                    slot.insert(i);
                    if !interface_exists(name) {
                        self.report_at(&path, format!("no interface named `{name}` on this host"));
                    }
                }
            }
        }
    }

    fn check_services(&mut self, services: &[Option<DraftService>]) {
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut keys: HashMap<(IpAddr, u16, Protocol), usize> = HashMap::new();
        for (i, DraftService { service, reals }) in decoded(services) {
            let path = format!("services[{i}]");
            if let Some(first) = names.get(service.name.as_str()) {
                let name = &service.name;
                self.report_at(
                    &format!("{path}.name"),
                    format!("duplicate service name `{name}`, already used by services[{first}]"),
                );
            } else {
                names.insert(&service.name, i);
            }
            // The data plane looks services up by (VIP, port, protocol).
            let key = (service.vip, service.port, service.protocol);
            if let Some(first) = keys.get(&key) {
                let address = SocketAddr::new(service.vip, service.port);
                let protocol = service.protocol;
                self.report_at(
                    &path,
                    format!(
                        "duplicate service {address}/{protocol}, \
                         already defined by services[{first}]"
                    ),
                );
            } else {
                keys.insert(key, i);
            }
            self.check_service(&path, service, reals);
        }
    }

    fn check_service(&mut self, path: &str, service: &ServiceConfig, reals: &[Option<RealConfig>]) {
        let scheduler = service.scheduler;
        let limit = lb_common::MAX_LEAST_CONNECTION_CANDIDATES as usize;
        if scheduler.dataplane().is_least_connection() && reals.len() > limit {
            self.report_at(
                &format!("{path}.reals[{limit}]"),
                format!(
                    "the `{scheduler}` scheduler compares at most {limit} reals per new \
                     connection; this service has {}",
                    reals.len()
                ),
            );
        }
        let mut first_seen: HashMap<(IpAddr, u16), usize> = HashMap::new();
        for (j, real) in decoded(reals) {
            // Formatted only for a problem: a string per real adds up.
            let real_path = || format!("{path}.reals[{j}]");
            self.check_real(&real_path, service, real);
            match first_seen.entry((real.address, real.port)) {
                Entry::Occupied(first) => {
                    let first = first.get();
                    let address = real.endpoint();
                    self.report_at(
                        &real_path(),
                        format!("duplicate real {address}, already listed as reals[{first}]"),
                    );
                }
                Entry::Vacant(slot) => {
                    slot.insert(j);
                }
            }
        }
        self.check_service_health(path, service, &first_seen);
    }

    fn check_service_health(
        &mut self,
        path: &str,
        service: &ServiceConfig,
        reals: &HashMap<(IpAddr, u16), usize>,
    ) {
        let health = &service.health;
        if let Some(sorry) = &health.sorry_server {
            let sorry_path = format!("{path}.sorry_server");
            self.check_real(&|| sorry_path.clone(), service, sorry);
            if let Some(j) = reals.get(&(sorry.address, sorry.port)) {
                let address = SocketAddr::new(sorry.address, sorry.port);
                self.report_at(
                    &sorry_path,
                    format!(
                        "the sorry server {address} is also reals[{j}]: it would take \
                         traffic only when it is itself down"
                    ),
                );
            }
        } else if health.on_quorum_loss == Some(QuorumLoss::SorryServer) {
            self.report_at(
                &format!("{path}.on_quorum_loss"),
                "`on_quorum_loss: sorry_server` needs a `sorry_server`",
            );
        }
    }

    /// What the service's forwarding method can do with a real's address
    /// family and port.
    ///
    /// DR only rewrites the MAC and TUN wraps the packet as it came: either
    /// way the real receives the client's packet, VIP and port unchanged.
    /// So the real's port must be the service's (`ipvsadm` silently forces
    /// it; a file that says otherwise is rejected rather than half obeyed),
    /// and DR needs the VIP's family too (TUN may carry IPv4 in IPv6 and
    /// back). NAT rewrites the destination to the real's address and port:
    /// the family must stay, the port may change, except on a port-0
    /// service, where each packet keeps the port it was sent to.
    fn check_real(
        &mut self,
        real_path: &dyn Fn() -> String,
        service: &ServiceConfig,
        real: &RealConfig,
    ) {
        let forwarding = service.forwarding_of(real);
        let method = forwarding.name();
        let same_family = real.address.is_ipv4() == service.vip.is_ipv4();
        if !same_family && forwarding != Forwarding::Tun {
            let (address, vip) = (real.address, service.vip);
            let (real_family, vip_family) = (family(address), family(vip));
            self.report_at(
                &format!("{}.address", real_path()),
                format!(
                    "real {address} is {real_family} but the VIP {vip} is {vip_family}; \
                     {method} forwarding needs the same address family (only `tun` can mix them)"
                ),
            );
        }
        // A port left out is the service's, so a mismatch was written out:
        // `.port` has a position.
        let (port, service_port) = (real.port, service.port);
        let port_path = || format!("{}.port", real_path());
        if port != service_port && (service_port == 0 || forwarding != Forwarding::Nat) {
            let reason = if service_port == 0 {
                format!(
                    "real port {port} on a port-0 service: the service takes every port and \
                     {method} forwarding keeps each packet's port; omit `port` or set it to 0"
                )
            } else {
                format!(
                    "real port {port} differs from the service port {service_port}, and \
                     {method} forwarding cannot rewrite ports; omit `port` or set it to \
                     {service_port} (only `nat` can change ports)"
                )
            };
            self.report_at(&port_path(), reason);
        } else if port == 0 && service_port != 0 {
            // Only NAT gets here: it would rewrite the destination port to 0.
            self.report_at(
                &port_path(),
                format!(
                    "real port 0 on a NAT service of port {service_port}: NAT rewrites the \
                     destination port to the real's; omit `port` to keep {service_port}"
                ),
            );
        }
        let (upper, lower) = (real.upper_threshold, real.lower_threshold);
        if upper != 0 && lower > upper {
            self.report_at(
                &format!("{}.lower_threshold", real_path()),
                format!("lower threshold {lower} is above the upper threshold {upper}"),
            );
        }
    }

    /// Counts every service and real listed, decoded or not: each will need
    /// an id, and each real a slot.
    fn check_capacity(
        &mut self,
        dataplane: &DataplaneConfig,
        draft_services: &[Option<DraftService>],
    ) {
        let max_services = dataplane.max_services as usize;
        if draft_services.len() > max_services {
            let count = draft_services.len();
            self.report_at(
                &format!("services[{max_services}]"),
                format!(
                    "too many services: {count} configured, at most {max_services} are supported \
                     (dataplane.max_services)"
                ),
            );
        }
        let services: Vec<_> = decoded(draft_services).collect();
        // Every real needs at least one slot in its service's Maglev table.
        let largest = services.iter().max_by_key(|(_, svc)| svc.reals.len());
        if let Some((i, svc)) = largest {
            let (size, reals) = (dataplane.maglev_table_size, svc.reals.len());
            if u32::try_from(reals).is_ok_and(|reals| reals > size) {
                let name = &svc.service.name;
                self.report_at(
                    "dataplane.maglev_table_size",
                    format!(
                        "{size} is smaller than the {reals} reals of service `{name}` \
                         (services[{i}]); each real needs a slot"
                    ),
                );
            }
        }
        // Real ids are global to the data plane: point at the first real past the limit.
        let total: usize = services.iter().map(|(_, svc)| svc.reals.len()).sum();
        let max_reals = dataplane.max_reals as usize;
        let mut before = 0;
        for (i, svc) in &services {
            if before + svc.reals.len() > max_reals {
                let j = max_reals - before;
                self.report_at(
                    &format!("services[{i}].reals[{j}]"),
                    format!(
                        "too many reals: {total} configured across all services, \
                         at most {max_reals} are supported (dataplane.max_reals)"
                    ),
                );
                return;
            }
            before += svc.reals.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// The host these tests pretend to run on has eth0 and eth1.
    fn host(name: &str) -> bool {
        matches!(name, "eth0" | "eth1")
    }

    fn ok(text: &str) -> Config {
        parse(text, "config.yaml", &host).unwrap_or_else(|e| panic!("unexpected problems:\n{e}"))
    }

    fn problems(text: &str) -> Vec<Problem> {
        match parse(text, "config.yaml", &host) {
            Ok(config) => panic!("accepted a bad config: {config:?}"),
            Err(e) => e.problems,
        }
    }

    #[track_caller]
    fn assert_problem(problem: &Problem, line: usize, column: usize, path: &str, reason: &str) {
        let at = (
            problem.file.as_str(),
            problem.line,
            problem.column,
            problem.path.as_str(),
        );
        assert_eq!(at, ("config.yaml", line, column, path), "{problem}");
        assert!(
            problem.reason.contains(reason),
            "`{problem}` does not say `{reason}`"
        );
    }

    /// Asserts that `text` has exactly one problem, at `line:column` on
    /// `path`, and that its reason contains `reason`.
    #[track_caller]
    fn assert_one(text: &str, line: usize, column: usize, path: &str, reason: &str) {
        let problems = problems(text);
        let listing = ConfigError {
            problems: problems.clone(),
        };
        assert_eq!(problems.len(), 1, "expected one problem, got:\n{listing}");
        assert_problem(&problems[0], line, column, path, reason);
    }

    /// A config with one interface and `body` as its `services:` list; `body`
    /// starts on line 3.
    fn with_services(body: &str) -> String {
        format!("interfaces: [{{ name: eth0 }}]\nservices:\n{body}")
    }

    /// Lines 3-6 of a service `web` (columns: `name` value 11, `vip` value
    /// 10, `port` value 11, `protocol` value 15); line 7 is free.
    const WEB: &str = "  - name: web
    vip: 198.18.1.10
    port: 80
    protocol: tcp
";

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn v6(text: &str) -> IpAddr {
        IpAddr::V6(text.parse::<Ipv6Addr>().unwrap())
    }

    fn real(address: IpAddr, port: u16, weight: u32) -> RealConfig {
        RealConfig {
            address,
            port,
            weight,
            forwarding: None,
            upper_threshold: 0,
            lower_threshold: 0,
            health_check: None,
        }
    }

    // --- Good configurations.

    #[test]
    fn minimal_config_takes_the_defaults() {
        let text = "\
interfaces:
  - name: eth0
services:
  - name: web
    vip: 198.18.1.10
    port: 80
    protocol: tcp
    reals:
      - { address: 198.18.2.11 }
      - { address: 198.18.2.12, port: 80, weight: 3 }
";
        let expected = Config {
            interfaces: vec![InterfaceConfig {
                name: "eth0".into(),
                xdp_mode: XdpMode::Auto,
            }],
            pin_path: PathBuf::from("/sys/fs/bpf/lb"),
            control: ControlConfig::default(),
            dataplane: DataplaneConfig {
                maglev_table_size: 65_537,
                flow_table_entries: 1 << 20,
                max_services: 127,
                max_reals: 16_383,
            },
            tunnel: TunnelConfig {
                source_v4: None,
                source_v6: None,
            },
            timeouts: TimeoutsConfig {
                tcp: 900,
                tcp_fin: 120,
                udp: 300,
            },
            icmp_echo_reply: true,
            expire_nodest_conn: false,
            flood_guard: FloodGuardConfig {
                new_flows_per_second: 100_000,
            },
            metrics: MetricsConfig { listen: None },
            services: vec![ServiceConfig {
                name: "web".into(),
                vip: v4(198, 18, 1, 10),
                port: 80,
                protocol: Protocol::Tcp,
                scheduler: Scheduler::Mh,
                scheduler_flags: vec![SchedulerFlag::MhPort],
                persistence: None,
                forwarding: Forwarding::Dr,
                health: ServiceHealth::unchecked(),
                reals: vec![
                    real(v4(198, 18, 2, 11), 80, 1),
                    real(v4(198, 18, 2, 12), 80, 3),
                ],
            }],
        };
        assert_eq!(ok(text), expected);
    }

    #[test]
    fn services_and_reals_may_be_left_out() {
        let config = ok("interfaces: [{ name: eth0 }]\n");
        assert!(config.services.is_empty());
        let config = ok(&with_services(WEB));
        assert!(config.services[0].reals.is_empty());
    }

    fn dual_stack() -> Config {
        Config {
            interfaces: vec![
                InterfaceConfig {
                    name: "eth0".into(),
                    xdp_mode: XdpMode::Native,
                },
                InterfaceConfig {
                    name: "eth1".into(),
                    xdp_mode: XdpMode::Skb,
                },
            ],
            pin_path: PathBuf::from("/sys/fs/bpf/lb-dual"),
            control: ControlConfig {
                socket: PathBuf::from("/run/lb-dual.sock"),
            },
            dataplane: DataplaneConfig {
                maglev_table_size: 251,
                flow_table_entries: 65_536,
                max_services: 4_000,
                max_reals: 200_000,
            },
            tunnel: TunnelConfig {
                source_v4: Some(Ipv4Addr::new(198, 18, 0, 1)),
                source_v6: Some("fd00:18::1".parse().unwrap()),
            },
            timeouts: TimeoutsConfig {
                tcp: 3600,
                tcp_fin: 60,
                udp: 30,
            },
            icmp_echo_reply: false,
            expire_nodest_conn: true,
            flood_guard: FloodGuardConfig {
                new_flows_per_second: 0,
            },
            metrics: MetricsConfig::default(),
            services: vec![
                ServiceConfig {
                    name: "web-v4".into(),
                    vip: v4(198, 18, 1, 10),
                    port: 443,
                    protocol: Protocol::Tcp,
                    scheduler: Scheduler::Mh,
                    scheduler_flags: vec![SchedulerFlag::MhPort],
                    persistence: None,
                    forwarding: Forwarding::Dr,
                    health: ServiceHealth::unchecked(),
                    reals: vec![
                        real(v4(198, 18, 2, 11), 443, 2),
                        real(v4(198, 18, 2, 12), 443, 1),
                    ],
                },
                ServiceConfig {
                    name: "web-v6".into(),
                    vip: v6("fd00:18:1::10"),
                    port: 443,
                    protocol: Protocol::Tcp,
                    scheduler: Scheduler::Mh,
                    scheduler_flags: vec![SchedulerFlag::MhPort],
                    persistence: None,
                    forwarding: Forwarding::Dr,
                    health: ServiceHealth::unchecked(),
                    reals: vec![
                        real(v6("fd00:18:2::11"), 443, 2),
                        real(v6("fd00:18:2::12"), 443, 0),
                    ],
                },
                ServiceConfig {
                    name: "dns-v6.all-ports".into(),
                    vip: v6("fd00:18:1::10"),
                    port: 0,
                    protocol: Protocol::Udp,
                    scheduler: Scheduler::Sh,
                    scheduler_flags: vec![SchedulerFlag::ShFallback, SchedulerFlag::ShPort],
                    persistence: None,
                    forwarding: Forwarding::Dr,
                    health: ServiceHealth::unchecked(),
                    reals: vec![
                        real(v6("fd00:18:2::21"), 0, 1),
                        real(v6("fd00:18:2::22"), 0, 65_535),
                    ],
                },
                ServiceConfig {
                    name: "api-tun".into(),
                    vip: v4(198, 18, 1, 20),
                    port: 8443,
                    protocol: Protocol::Tcp,
                    scheduler: Scheduler::Mh,
                    scheduler_flags: vec![SchedulerFlag::MhPort],
                    persistence: None,
                    forwarding: Forwarding::Tun,
                    health: ServiceHealth::unchecked(),
                    reals: vec![
                        real(v4(198, 18, 3, 11), 8443, 1),
                        real(v6("fd00:18:3::12"), 8443, 3),
                    ],
                },
                ServiceConfig {
                    name: "app-nat".into(),
                    vip: v6("fd00:18:1::30"),
                    port: 80,
                    protocol: Protocol::Tcp,
                    scheduler: Scheduler::Wlc,
                    scheduler_flags: vec![],
                    persistence: Some(PersistenceConfig {
                        timeout: 600,
                        prefix: 64,
                    }),
                    forwarding: Forwarding::Nat,
                    health: ServiceHealth::unchecked(),
                    reals: vec![
                        RealConfig {
                            upper_threshold: 100,
                            lower_threshold: 50,
                            ..real(v6("fd00:18:4::11"), 8080, 1)
                        },
                        real(v6("fd00:18:4::12"), 80, 1),
                        RealConfig {
                            forwarding: Some(Forwarding::Dr),
                            upper_threshold: 10,
                            ..real(v6("fd00:18:4::13"), 80, 1)
                        },
                    ],
                },
            ],
        }
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/config")
            .join(name)
    }

    #[test]
    fn dual_stack_example_loads() {
        let config = load(&fixture("dual-stack.yaml"), &host).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config, dual_stack());
        assert_eq!(config.services[2].protocol.number(), 17);
        assert_eq!(config.services[0].protocol.number(), 6);
    }

    #[test]
    fn windows_line_endings_read_the_same() {
        let text = std::fs::read_to_string(fixture("dual-stack.yaml")).unwrap();
        assert_eq!(ok(&text.replace('\n', "\r\n")), dual_stack());
    }

    #[test]
    fn printed_config_reads_back_the_same() {
        let config = dual_stack();
        let text = serde_yaml::to_string(&config).unwrap();
        for line in [
            "xdp_mode: native",
            "protocol: udp",
            "scheduler: mh",
            "forwarding: dr",
            "forwarding: tun",
            "forwarding: nat",
            "source_v4: 198.18.0.1",
            "source_v6: fd00:18::1",
            "tcp_fin: 60",
            "icmp_echo_reply: false",
            "expire_nodest_conn: true",
            "new_flows_per_second: 0",
            "scheduler: wlc",
            "- sh-fallback",
            "timeout: 600",
            "upper_threshold: 100",
        ] {
            assert!(text.contains(line), "no `{line}` in:\n{text}");
        }
        assert_eq!(ok(&text), config);
        // Tunnel sources left out are left out of the text too.
        let defaults = ok("interfaces: [{ name: eth0 }]\n");
        let text = serde_yaml::to_string(&defaults).unwrap();
        assert!(text.contains("tunnel: {}"), "{text}");
        assert_eq!(ok(&text), defaults);
    }

    #[test]
    fn scalars_follow_the_yaml_core_schema() {
        // A string field takes the scalar as written, a number field any core integer.
        let config = ok(&with_services(
            "  - { name: 2024, vip: 198.18.1.10, port: 0x50, protocol: tcp }\n",
        ));
        assert_eq!(config.services[0].name, "2024");
        assert_eq!(config.services[0].port, 80);
    }

    #[test]
    fn keywords_round_trip() {
        fn check<T: Keyword + Serialize + fmt::Display>() {
            for value in T::ALL {
                let yaml = serde_yaml::to_string(value).unwrap();
                assert_eq!(yaml.trim(), value.keyword());
                assert_eq!(value.to_string(), value.keyword());
            }
        }
        check::<XdpMode>();
        check::<Protocol>();
        check::<Scheduler>();
        check::<SchedulerFlag>();
        check::<Forwarding>();
    }

    // --- How problems are shown.

    #[test]
    fn problems_display_as_file_line_column_path_reason() {
        let text = with_services(&format!(
            "{WEB}    reals: [{{ address: 198.18.2.11, weight: 70000 }}]\n"
        ));
        let error = parse(&text, "config.yaml", &host).unwrap_err();
        assert_eq!(
            error.to_string(),
            "config.yaml:7:45: services[0].reals[0].weight: 70000 is out of range 0..=65535"
        );
        let error = parse("interfaces: [{ name: eth0 }\n", "lb.yaml", &host).unwrap_err();
        assert!(
            error.to_string().starts_with("lb.yaml:2:1: invalid YAML: "),
            "{error}"
        );
    }

    #[test]
    fn every_problem_is_reported_in_file_order() {
        let text = "\
interfaces:
  - { name: eth9 }
pin_path: relative/dir
tunnel: { source_v4: fd00:18::1 }
timeouts: { tcp: 0, udp: 300 }
services:
  - name: web
    vip: 198.18.1.10
    port: 80
    protocol: tcp
    reals:
      - { address: 198.18.2.11, wieght: 2 }
      - { address: 198.18.2.12, weight: 70000 }
      - { address: fd00::12 }
      - { address: 198.18.2.13, port: 8080 }
  - { name: web, vip: 198.18.1.10, port: 80, protocol: udp, forwarding: nat }
  - name: dns
    vip: 198.18.1.53
    port: 53
    protocol: sctp
";
        let error = parse(text, "config.yaml", &host).unwrap_err();
        let lines: Vec<String> = error.to_string().lines().map(str::to_owned).collect();
        assert_eq!(
            lines,
            [
                "config.yaml:2:13: interfaces[0].name: no interface named `eth9` on this host",
                "config.yaml:3:11: pin_path: `relative/dir` must be an absolute path",
                "config.yaml:4:22: tunnel.source_v4: fd00:18::1 is an IPv6 address, this field takes an IPv4 address (IPv6 tunnels take theirs from `tunnel.source_v6`)",
                "config.yaml:5:18: timeouts.tcp: 0 is out of range 1..=2147483",
                "config.yaml:12:33: services[0].reals[0].wieght: unknown field `wieght`, expected one of `address`, `port`, `weight`, `forwarding`, `upper_threshold`, `lower_threshold`, `health_check`",
                "config.yaml:13:41: services[0].reals[1].weight: 70000 is out of range 0..=65535",
                "config.yaml:14:20: services[0].reals[2].address: real fd00::12 is IPv6 but the VIP 198.18.1.10 is IPv4; DR forwarding needs the same address family (only `tun` can mix them)",
                "config.yaml:15:39: services[0].reals[3].port: real port 8080 differs from the service port 80, and DR forwarding cannot rewrite ports; omit `port` or set it to 80 (only `nat` can change ports)",
                "config.yaml:16:13: services[1].name: duplicate service name `web`, already used by services[0]",
                "config.yaml:20:15: services[2].protocol: unknown protocol `sctp`, expected one of `tcp`, `udp`",
            ]
        );
    }

    #[test]
    fn unreadable_file_is_one_problem_without_a_line() {
        let path = fixture("does-not-exist.yaml");
        let error = load(&path, &host).unwrap_err();
        assert_eq!(error.problems.len(), 1);
        assert_eq!(error.problems[0].line, 0);
        let shown = error.to_string();
        assert!(
            shown.starts_with(&format!(
                "{}: cannot read the configuration: ",
                path.display()
            )),
            "{shown}"
        );
    }

    // --- YAML syntax and document shape.

    #[test]
    fn syntax_error() {
        assert_one(
            "interfaces:\n  - name: eth0\nservices: [ {name: web\n",
            4,
            1,
            "",
            "invalid YAML: while parsing a flow mapping",
        );
        assert_one(
            "interfaces:\n  - name: eth0\n xdp_mode: auto\n",
            3,
            2,
            "",
            "invalid YAML",
        );
    }

    #[test]
    fn duplicate_key() {
        assert_one(
            "interfaces: [{ name: eth0 }]\ninterfaces: []\n",
            2,
            1,
            "",
            "duplicated key in mapping",
        );
        // Differently quoted, the YAML loader sees two keys; the schema does not.
        assert_one(
            "interfaces: [{ name: eth0, \"name\": eth1 }]\n",
            1,
            28,
            "interfaces[0].name",
            "duplicate field `name`",
        );
    }

    #[test]
    fn empty_or_several_documents() {
        assert_one("", 1, 1, "", "the file is empty");
        assert_one("# nothing yet\n", 1, 1, "", "the file is empty");
        assert_one("---\n", 2, 1, "", "the file is empty");
        assert_one(
            "interfaces: [{ name: eth0 }]\n---\ninterfaces: [{ name: eth1 }]\n",
            3,
            1,
            "",
            "expected one YAML document, found 2",
        );
        assert_one("- eth0\n", 1, 1, "", "expected a mapping, found a list");
    }

    // --- Unknown fields, wrong types, missing fields.

    #[test]
    fn unknown_field_in_a_real() {
        let text = with_services(&format!(
            "{WEB}    reals: [{{ address: 198.18.2.11, wieght: 2 }}]\n"
        ));
        assert_one(
            &text,
            7,
            37,
            "services[0].reals[0].wieght",
            "unknown field `wieght`, expected one of `address`, `port`, `weight`",
        );
    }

    #[test]
    fn unknown_field_elsewhere() {
        assert_one(
            "interfaces: [{ name: eth0 }]\nservice: []\n",
            2,
            1,
            "service",
            "unknown field `service`, expected one of `interfaces`, `pin_path`, `control`, \
             `dataplane`, `tunnel`, `timeouts`, `icmp_echo_reply`, `expire_nodest_conn`, \
             `flood_guard`, `metrics`, `services`",
        );
        assert_one(
            "interfaces: [{ name: eth0, mode: skb }]\n",
            1,
            28,
            "interfaces[0].mode",
            "unknown field `mode`, expected one of `name`, `xdp_mode`",
        );
        assert_one(
            "interfaces: [{ name: eth0 }]\ndataplane:\n  maglev_size: 7\n",
            3,
            3,
            "dataplane.maglev_size",
            "unknown field `maglev_size`",
        );
        assert_one(
            &with_services(&format!("{WEB}    weight: 1\n")),
            7,
            5,
            "services[0].weight",
            "unknown field `weight`",
        );
    }

    #[test]
    fn wrong_types() {
        assert_one(
            "interfaces: eth0\n",
            1,
            13,
            "interfaces",
            "expected a list, found string `eth0`",
        );
        assert_one(
            "interfaces: [{ name: eth0 }]\nservices: { name: web }\n",
            2,
            11,
            "services",
            "expected a list, found a mapping",
        );
        assert_one(
            &with_services("  - { name: web, vip: 198.18.1.10, port: \"80\", protocol: tcp }\n"),
            3,
            42,
            "services[0].port",
            "expected an integer in 0..=65535, found string `80`",
        );
        assert_one(
            &with_services("  - { name: web, vip: 198.18.1.10, port: http, protocol: tcp }\n"),
            3,
            42,
            "services[0].port",
            "expected an integer in 0..=65535, found string `http`",
        );
        assert_one(
            &with_services(&format!("{WEB}    reals: [198.18.2.11]\n")),
            7,
            13,
            "services[0].reals[0]",
            "expected a mapping, found string `198.18.2.11`",
        );
        assert_one(
            &with_services(&format!(
                "{WEB}    reals: [{{ address: 198.18.2.11, weight: 1.5 }}]\n"
            )),
            7,
            45,
            "services[0].reals[0].weight",
            "found number `1.5`",
        );
        assert_one(
            &with_services("  - { name: [web], vip: 198.18.1.10, port: 80, protocol: tcp }\n"),
            3,
            13,
            "services[0].name",
            "expected a service name, found a list",
        );
        assert_one(
            &with_services("  - { name: web, vip: ~, port: 80, protocol: tcp }\n"),
            3,
            23,
            "services[0].vip",
            "expected an IP address, found null",
        );
        assert_one(
            &with_services("  - { name: web, vip: 198.18.1.10, port: !port 80, protocol: tcp }\n"),
            3,
            42,
            "services[0].port",
            "found `80` tagged `!port`",
        );
    }

    #[test]
    fn missing_required_fields() {
        // Reported where the mapping that lacks them starts.
        let service = |body: &str| problems(&with_services(body));
        let found = service("  - { port: 80 }\n");
        assert_eq!(found.len(), 3, "{found:?}");
        assert_problem(
            &found[0],
            3,
            5,
            "services[0].name",
            "missing required field `name`",
        );
        assert_problem(
            &found[1],
            3,
            5,
            "services[0].vip",
            "missing required field `vip`",
        );
        assert_problem(
            &found[2],
            3,
            5,
            "services[0].protocol",
            "missing required field `protocol`",
        );
        assert_one(
            &with_services("  - name: web\n    vip: 198.18.1.10\n    protocol: tcp\n"),
            3,
            5,
            "services[0].port",
            "missing required field `port`",
        );
        assert_one(
            &with_services(&format!("{WEB}    reals:\n      - port: 80\n")),
            8,
            9,
            "services[0].reals[0].address",
            "missing required field `address`",
        );
        assert_one(
            "pin_path: /sys/fs/bpf/lb\n",
            1,
            1,
            "interfaces",
            "missing required field `interfaces`",
        );
        assert_one(
            "interfaces:\n  - xdp_mode: skb\n",
            2,
            5,
            "interfaces[0].name",
            "missing required field `name`",
        );
    }

    #[test]
    fn empty_interface_list() {
        assert_one(
            "interfaces: []\n",
            1,
            13,
            "interfaces",
            "at least one interface is required",
        );
    }

    // --- Values.

    #[test]
    fn bad_addresses() {
        let vip = |vip: &str| {
            with_services(&format!(
                "  - {{ name: web, vip: {vip}, port: 80, protocol: tcp }}\n"
            ))
        };
        assert_one(
            &vip("198.18.1.300"),
            3,
            23,
            "services[0].vip",
            "`198.18.1.300` is not a valid IP address",
        );
        assert_one(
            &vip("\"not-an-ip\""),
            3,
            23,
            "services[0].vip",
            "`not-an-ip` is not a valid IP address",
        );
        assert_one(
            &vip("0.0.0.0"),
            3,
            23,
            "services[0].vip",
            "0.0.0.0 is not a unicast address",
        );
        assert_one(
            &vip("ff02::1"),
            3,
            23,
            "services[0].vip",
            "ff02::1 is not a unicast address",
        );
        assert_one(
            &with_services(&format!("{WEB}    reals:\n      - address: 198.18.2.256\n")),
            8,
            18,
            "services[0].reals[0].address",
            "`198.18.2.256` is not a valid IP address",
        );
    }

    #[test]
    fn ports_out_of_range() {
        let port = |port: &str| {
            with_services(&format!(
                "  - {{ name: web, vip: 198.18.1.10, port: {port}, protocol: tcp }}\n"
            ))
        };
        assert_one(
            &port("70000"),
            3,
            42,
            "services[0].port",
            "70000 is out of range 0..=65535",
        );
        assert_one(
            &port("-1"),
            3,
            42,
            "services[0].port",
            "-1 is out of range 0..=65535",
        );
        assert_one(
            &port("99999999999999999999"),
            3,
            42,
            "services[0].port",
            "99999999999999999999 is out of range 0..=65535",
        );
        assert_one(
            &with_services(&format!(
                "{WEB}    reals:\n      - address: 198.18.2.11\n        port: 70000\n"
            )),
            9,
            15,
            "services[0].reals[0].port",
            "70000 is out of range 0..=65535",
        );
    }

    #[test]
    fn weights_out_of_range() {
        let weight = |weight: &str| {
            with_services(&format!(
                "{WEB}    reals:\n      - address: 198.18.2.11\n        weight: {weight}\n"
            ))
        };
        assert_one(
            &weight("70000"),
            9,
            17,
            "services[0].reals[0].weight",
            "70000 is out of range 0..=65535",
        );
        assert_one(
            &weight("-1"),
            9,
            17,
            "services[0].reals[0].weight",
            "-1 is out of range 0..=65535",
        );
    }

    #[test]
    fn unknown_keywords() {
        assert_one(
            &with_services("  - { name: web, vip: 198.18.1.10, port: 80, protocol: sctp }\n"),
            3,
            56,
            "services[0].protocol",
            "unknown protocol `sctp`, expected one of `tcp`, `udp`",
        );
        assert_one(
            &with_services(&format!("{WEB}    scheduler: lblc\n")),
            7,
            16,
            "services[0].scheduler",
            "unknown scheduler `lblc`, expected one of `mh`, `rr`, `wrr`, `sh`, `dh`, `lc`, \
             `wlc`, `sed`, `nq`",
        );
        assert_one(
            &with_services(&format!(
                "{WEB}    scheduler: rr\n    scheduler_flags: [mh-port]\n"
            )),
            8,
            23,
            "services[0].scheduler_flags[0]",
            "`mh-port` is a flag of the `mh` scheduler; for `rr` write `flag-2`",
        );
        assert_one(
            &with_services(&format!(
                "{WEB}    persistence: {{ timeout: 60, prefix: 33 }}\n"
            )),
            7,
            41,
            "services[0].persistence.prefix",
            "33 is out of range 1..=32",
        );
        assert_one(
            &with_services(&format!("{WEB}    forwarding: fullnat\n")),
            7,
            17,
            "services[0].forwarding",
            "unknown forwarding `fullnat`, expected one of `dr`, `tun`, `nat`",
        );
        assert_one(
            "interfaces: [{ name: eth0, xdp_mode: hw }]\n",
            1,
            38,
            "interfaces[0].xdp_mode",
            "unknown xdp_mode `hw`, expected one of `auto`, `native`, `skb`",
        );
    }

    #[test]
    fn invalid_service_name() {
        let name = |name: &str| {
            with_services(&format!(
                "  - {{ name: {name}, vip: 198.18.1.10, port: 80, protocol: tcp }}\n"
            ))
        };
        assert_one(
            &name("\"web server\""),
            3,
            13,
            "services[0].name",
            "`web server` is not a valid service name",
        );
        assert_one(
            &name(&"a".repeat(65)),
            3,
            13,
            "services[0].name",
            "is not a valid service name",
        );
        assert_one(
            &name("\"\""),
            3,
            13,
            "services[0].name",
            "`` is not a valid service name",
        );
        ok(&name(&"a".repeat(64)));
    }

    // --- Rules about the whole.

    #[test]
    fn duplicate_service() {
        let text = with_services(&format!(
            "{WEB}  - name: web-again\n    vip: 198.18.1.10\n    port: 80\n    protocol: tcp\n"
        ));
        assert_one(
            &text,
            7,
            5,
            "services[1]",
            "duplicate service 198.18.1.10:80/tcp, already defined by services[0]",
        );
        // The same address and port over another protocol is another service.
        ok(&with_services(&format!(
            "{WEB}  - {{ name: web-udp, vip: 198.18.1.10, port: 80, protocol: udp }}\n"
        )));
    }

    #[test]
    fn duplicate_service_name() {
        let text = with_services(&format!(
            "{WEB}  - {{ name: web, vip: 198.18.1.11, port: 80, protocol: tcp }}\n"
        ));
        assert_one(
            &text,
            7,
            13,
            "services[1].name",
            "duplicate service name `web`, already used by services[0]",
        );
    }

    #[test]
    fn duplicate_real() {
        // The first real's port defaults to the service's, 80: the same real.
        let text = with_services(&format!(
            "{WEB}    reals:
      - address: 198.18.2.11
      - {{ address: 198.18.2.12 }}
      - {{ address: 198.18.2.11, port: 80 }}
"
        ));
        assert_one(
            &text,
            10,
            9,
            "services[0].reals[2]",
            "duplicate real 198.18.2.11:80, already listed as reals[0]",
        );
        // Another port is another real (NAT can send to several ports of a host).
        let text = with_services(&format!(
            "{WEB}    forwarding: nat
    reals:
      - address: 198.18.2.11
      - {{ address: 198.18.2.11, port: 8080 }}
"
        ));
        assert_eq!(ok(&text).services[0].reals.len(), 2);
    }

    #[test]
    fn real_in_another_family_than_the_vip() {
        assert_one(
            &with_services(&format!("{WEB}    reals: [{{ address: fd00::11 }}]\n")),
            7,
            24,
            "services[0].reals[0].address",
            "real fd00::11 is IPv6 but the VIP 198.18.1.10 is IPv4; DR forwarding needs the same address family",
        );
        assert_one(
            &with_services(
                "  - name: web6
    vip: fd00::10
    port: 80
    protocol: tcp
    reals:
      - address: 198.18.2.11
",
            ),
            8,
            18,
            "services[0].reals[0].address",
            "real 198.18.2.11 is IPv4 but the VIP fd00::10 is IPv6",
        );
    }

    #[test]
    fn nat_real_in_another_family_than_the_vip() {
        assert_one(
            &with_services(&format!(
                "{WEB}    forwarding: nat\n    reals: [{{ address: fd00::11 }}]\n"
            )),
            8,
            24,
            "services[0].reals[0].address",
            "real fd00::11 is IPv6 but the VIP 198.18.1.10 is IPv4; \
             NAT forwarding needs the same address family (only `tun` can mix them)",
        );
    }

    #[test]
    fn tun_reals_may_be_of_either_family() {
        let config = ok(&with_services(&format!(
            "{WEB}    forwarding: tun
    reals:
      - {{ address: 198.18.2.11 }}
      - {{ address: fd00::12, port: 80 }}
  - name: web6
    vip: fd00::10
    port: 443
    protocol: tcp
    forwarding: tun
    reals:
      - {{ address: 198.18.2.11 }}
      - {{ address: fd00::12 }}
"
        )));
        let reals = |i: usize| config.services[i].reals.clone();
        assert_eq!(
            reals(0),
            [real(v4(198, 18, 2, 11), 80, 1), real(v6("fd00::12"), 80, 1)]
        );
        assert_eq!(
            reals(1),
            [
                real(v4(198, 18, 2, 11), 443, 1),
                real(v6("fd00::12"), 443, 1)
            ]
        );
        assert_eq!(config.services[1].forwarding, Forwarding::Tun);
    }

    #[test]
    fn dr_and_tun_reals_take_the_service_port() {
        for (method, name) in [("dr", "DR"), ("tun", "TUN")] {
            // Left out or the same port is fine; another one, 0 included, is not.
            let text = with_services(&format!(
                "{WEB}    forwarding: {method}
    reals:
      - {{ address: 198.18.2.11 }}
      - {{ address: 198.18.2.12, port: 80 }}
      - {{ address: 198.18.2.13, port: 8080 }}
      - {{ address: 198.18.2.14, port: 0 }}
"
            ));
            let found = problems(&text);
            assert_eq!(found.len(), 2, "{found:?}");
            assert_problem(
                &found[0],
                11,
                39,
                "services[0].reals[2].port",
                &format!(
                    "real port 8080 differs from the service port 80, and {name} forwarding \
                     cannot rewrite ports; omit `port` or set it to 80 (only `nat` can change ports)"
                ),
            );
            assert_problem(
                &found[1],
                12,
                39,
                "services[0].reals[3].port",
                "real port 0 differs from the service port 80",
            );
            let last = text.rfind("      - { address: 198.18.2.13").unwrap();
            let config = ok(&text[..last]);
            assert!(config.services[0].reals.iter().all(|real| real.port == 80));
        }
    }

    #[test]
    fn reals_of_a_port_0_service_keep_the_packets_port() {
        for (method, name) in [("dr", "DR"), ("tun", "TUN"), ("nat", "NAT")] {
            let text = with_services(&format!(
                "  - name: all
    vip: 198.18.1.10
    port: 0
    protocol: udp
    forwarding: {method}
    reals:
      - {{ address: 198.18.2.11 }}
      - {{ address: 198.18.2.12, port: 0 }}
      - {{ address: 198.18.2.13, port: 53 }}
"
            ));
            assert_one(
                &text,
                11,
                39,
                "services[0].reals[2].port",
                &format!(
                    "real port 53 on a port-0 service: the service takes every port and \
                     {name} forwarding keeps each packet's port; omit `port` or set it to 0"
                ),
            );
            let last = text.rfind("      - { address: 198.18.2.13").unwrap();
            let config = ok(&text[..last]);
            assert!(config.services[0].reals.iter().all(|real| real.port == 0));
        }
    }

    #[test]
    fn nat_reals_may_use_another_port() {
        let text = with_services(&format!(
            "{WEB}    forwarding: nat
    reals:
      - {{ address: 198.18.2.11, port: 8080 }}
      - {{ address: 198.18.2.12 }}
      - {{ address: 198.18.2.13, port: 65535 }}
"
        ));
        let config = ok(&text);
        assert_eq!(config.services[0].forwarding, Forwarding::Nat);
        assert_eq!(
            config.services[0].reals,
            [
                real(v4(198, 18, 2, 11), 8080, 1),
                real(v4(198, 18, 2, 12), 80, 1),
                real(v4(198, 18, 2, 13), 65_535, 1),
            ]
        );
        // Except to port 0, which is no port to send to.
        assert_one(
            &with_services(&format!(
                "{WEB}    forwarding: nat\n    reals:\n      - {{ address: 198.18.2.11, port: 0 }}\n"
            )),
            9,
            39,
            "services[0].reals[0].port",
            "real port 0 on a NAT service of port 80: NAT rewrites the destination port \
             to the real's; omit `port` to keep 80",
        );
    }

    /// The interface line, then `extra` from line 2.
    fn top(extra: &str) -> String {
        format!("interfaces: [{{ name: eth0 }}]\n{extra}")
    }

    #[test]
    fn tunnel_sources() {
        assert_eq!(ok(&top("")).tunnel, TunnelConfig::default());
        let tunnel = ok(&top("tunnel:\n  source_v4: 198.18.0.1\n")).tunnel;
        assert_eq!(
            tunnel,
            TunnelConfig {
                source_v4: Some(Ipv4Addr::new(198, 18, 0, 1)),
                source_v6: None,
            }
        );
        let tunnel = ok(&top("tunnel: { source_v6: \"fd00:18::1\" }\n")).tunnel;
        assert_eq!(tunnel.source_v4, None);
        assert_eq!(tunnel.source_v6, Some("fd00:18::1".parse().unwrap()));
        assert_eq!(ok(&top("tunnel: {}\n")).tunnel, TunnelConfig::default());
    }

    #[test]
    fn tunnel_source_of_the_wrong_family() {
        assert_one(
            &top("tunnel:\n  source_v4: fd00:18::1\n"),
            3,
            14,
            "tunnel.source_v4",
            "fd00:18::1 is an IPv6 address, this field takes an IPv4 address \
             (IPv6 tunnels take theirs from `tunnel.source_v6`)",
        );
        assert_one(
            &top("tunnel:\n  source_v6: 198.18.0.1\n"),
            3,
            14,
            "tunnel.source_v6",
            "198.18.0.1 is an IPv4 address, this field takes an IPv6 address \
             (IPv4 tunnels take theirs from `tunnel.source_v4`)",
        );
        // Both wrong (swapped): both reported, in order.
        let found = problems(&top(
            "tunnel:\n  source_v4: fd00:18::1\n  source_v6: 198.18.0.1\n",
        ));
        assert_eq!(found.len(), 2, "{found:?}");
        assert_problem(&found[0], 3, 14, "tunnel.source_v4", "is an IPv6 address");
        assert_problem(&found[1], 4, 14, "tunnel.source_v6", "is an IPv4 address");
    }

    #[test]
    fn bad_tunnel_sources() {
        let source = |field: &str, value: &str| top(&format!("tunnel: {{ {field}: {value} }}\n"));
        assert_one(
            &source("source_v4", "224.0.0.1"),
            2,
            22,
            "tunnel.source_v4",
            "224.0.0.1 is not a unicast address",
        );
        assert_one(
            &source("source_v4", "255.255.255.255"),
            2,
            22,
            "tunnel.source_v4",
            "255.255.255.255 is not a unicast address",
        );
        assert_one(
            &source("source_v6", "\"::\""),
            2,
            22,
            "tunnel.source_v6",
            ":: is not a unicast address",
        );
        assert_one(
            &source("source_v6", "\"ff02::2\""),
            2,
            22,
            "tunnel.source_v6",
            "ff02::2 is not a unicast address",
        );
        assert_one(
            &source("source_v4", "198.18.0"),
            2,
            22,
            "tunnel.source_v4",
            "`198.18.0` is not a valid IP address",
        );
        assert_one(
            &source("source_v4", "~"),
            2,
            22,
            "tunnel.source_v4",
            "expected an IP address, found null",
        );
        assert_one(
            &source("source", "198.18.0.1"),
            2,
            11,
            "tunnel.source",
            "unknown field `source`, expected one of `source_v4`, `source_v6`",
        );
        assert_one(
            &top("tunnel: 198.18.0.1\n"),
            2,
            9,
            "tunnel",
            "expected a mapping, found string `198.18.0.1`",
        );
    }

    #[test]
    fn flood_guard() {
        assert_eq!(
            ok(&top("")).flood_guard.new_flows_per_second,
            DEFAULT_FLOOD_GUARD_NEW_FLOWS
        );
        for (text, limit) in [("0", 0), ("250000", 250_000), ("4294967295", u32::MAX)] {
            let config = ok(&top(&format!(
                "flood_guard: {{ new_flows_per_second: {text} }}\n"
            )));
            assert_eq!(config.flood_guard.new_flows_per_second, limit);
        }
        assert_one(
            &top("flood_guard: { new_flows_per_second: -1 }\n"),
            2,
            38,
            "flood_guard.new_flows_per_second",
            "-1 is out of range 0..=4294967295",
        );
        assert_one(
            &top("flood_guard: { rate: 5 }\n"),
            2,
            16,
            "flood_guard.rate",
            "unknown field `rate`, expected one of `new_flows_per_second`",
        );
    }

    #[test]
    fn timeouts() {
        assert_eq!(ok(&top("")).timeouts, TimeoutsConfig::default());
        assert_eq!(
            ok(&top("timeouts: { tcp: 60 }\n")).timeouts,
            TimeoutsConfig {
                tcp: 60,
                tcp_fin: 120,
                udp: 300,
            }
        );
        assert_eq!(
            ok(&top(
                "timeouts:\n  tcp: 2147483\n  tcp_fin: 1\n  udp: 0x10\n"
            ))
            .timeouts,
            TimeoutsConfig {
                tcp: 2_147_483,
                tcp_fin: 1,
                udp: 16,
            }
        );
    }

    #[test]
    fn timeouts_out_of_range_or_not_seconds() {
        let timeouts = |body: &str| top(&format!("timeouts: {{ {body} }}\n"));
        assert_one(
            &timeouts("tcp_fin: 0"),
            2,
            22,
            "timeouts.tcp_fin",
            "0 is out of range 1..=2147483",
        );
        assert_one(
            &timeouts("udp: 2147484"),
            2,
            18,
            "timeouts.udp",
            "2147484 is out of range 1..=2147483",
        );
        assert_one(
            &timeouts("tcp: -5"),
            2,
            18,
            "timeouts.tcp",
            "-5 is out of range 1..=2147483",
        );
        assert_one(
            &timeouts("tcp: 15m"),
            2,
            18,
            "timeouts.tcp",
            "expected a number of seconds in 1..=2147483, found string `15m`",
        );
        assert_one(
            &timeouts("tcp: 1.5"),
            2,
            18,
            "timeouts.tcp",
            "expected a number of seconds in 1..=2147483, found number `1.5`",
        );
        assert_one(
            &timeouts("tcpfin: 60"),
            2,
            13,
            "timeouts.tcpfin",
            "unknown field `tcpfin`, expected one of `tcp`, `tcp_fin`, `udp`",
        );
        assert_one(
            &top("timeouts: 900\n"),
            2,
            11,
            "timeouts",
            "expected a mapping, found integer `900`",
        );
        // Every bad timeout at once.
        let found = problems(&timeouts("tcp: 0, tcp_fin: 0, udp: 0"));
        let at: Vec<_> = found.iter().map(|p| (p.column, p.path.as_str())).collect();
        assert_eq!(
            at,
            [
                (18, "timeouts.tcp"),
                (30, "timeouts.tcp_fin"),
                (38, "timeouts.udp")
            ]
        );
    }

    #[test]
    fn icmp_echo_reply() {
        assert!(ok(&top("")).icmp_echo_reply);
        assert!(ok(&top("icmp_echo_reply: true\n")).icmp_echo_reply);
        assert!(!ok(&top("icmp_echo_reply: false\n")).icmp_echo_reply);
        for (value, found) in [
            ("yes", "string `yes`"),
            ("\"true\"", "string `true`"),
            ("0", "integer `0`"),
            ("~", "null"),
        ] {
            assert_one(
                &top(&format!("icmp_echo_reply: {value}\n")),
                2,
                18,
                "icmp_echo_reply",
                &format!("expected `true` or `false`, found {found}"),
            );
        }
    }

    #[test]
    fn metrics_listen() {
        assert_eq!(ok(&top("")).metrics, MetricsConfig { listen: None });
        assert_eq!(ok(&top("metrics: {}\n")).metrics.listen, None);
        let listen = |yaml: &str| ok(&top(yaml)).metrics.listen;
        let v4: SocketAddr = "127.0.0.1:9105".parse().unwrap();
        assert_eq!(listen("metrics:\n  listen: 127.0.0.1:9105\n"), Some(v4));
        assert_eq!(listen("metrics: { listen: 127.0.0.1:9105 }\n"), Some(v4));
        assert_eq!(
            listen("metrics: { listen: \"[::1]:9105\" }\n"),
            Some("[::1]:9105".parse().unwrap())
        );
        assert_eq!(
            listen("metrics: { listen: \"0.0.0.0:9105\" }\n"),
            Some("0.0.0.0:9105".parse().unwrap())
        );
        // Printed and read back, IPv6 brackets included.
        for text in ["metrics: { listen: \"[fd00::1]:9105\" }\n", "metrics: {}\n"] {
            let config = ok(&top(text));
            let printed = serde_yaml::to_string(&config).unwrap();
            assert_eq!(ok(&printed), config, "{printed}");
        }
    }

    #[test]
    fn bad_metrics_listen() {
        let listen = |value: &str| top(&format!("metrics:\n  listen: {value}\n"));
        assert_one(
            &listen("127.0.0.1"),
            3,
            11,
            "metrics.listen",
            "`127.0.0.1` is not an address and port (IP:PORT with IPv6 in brackets, \
             such as `127.0.0.1:9105` or `\"[::1]:9105\"`)",
        );
        assert_one(
            &listen("9105"),
            3,
            11,
            "metrics.listen",
            "`9105` is not an address and port",
        );
        assert_one(
            &listen("\"::1:9105\""),
            3,
            11,
            "metrics.listen",
            "`::1:9105` is not an address and port",
        );
        // Unquoted, `[::1]:9105` is not even valid YAML; `[::1]` is a list.
        assert_one(
            &listen("[::1]"),
            3,
            11,
            "metrics.listen",
            "expected an address and port such as `127.0.0.1:9105` or `\"[::1]:9105\"`, \
             found a list",
        );
        assert_one(
            &listen("127.0.0.1:0"),
            3,
            11,
            "metrics.listen",
            "port 0 would pick a random port; give the port to scrape (e.g. 127.0.0.1:9105)",
        );
        assert_one(
            &listen("224.0.0.1:9105"),
            3,
            11,
            "metrics.listen",
            "cannot listen on 224.0.0.1: not a unicast address",
        );
        assert_one(&listen("~"), 3, 11, "metrics.listen", "found null");
        assert_one(
            &top("metrics: 127.0.0.1:9105\n"),
            2,
            10,
            "metrics",
            "expected a mapping, found string `127.0.0.1:9105`",
        );
        assert_one(
            &top("metrics: { address: 127.0.0.1:9105 }\n"),
            2,
            12,
            "metrics.address",
            "unknown field `address`, expected one of `listen`",
        );
    }

    #[test]
    fn unknown_interface() {
        assert_one(
            "interfaces:\n  - name: eth0\n  - name: eth9\n",
            3,
            11,
            "interfaces[1].name",
            "no interface named `eth9` on this host",
        );
    }

    #[test]
    fn duplicate_interface() {
        assert_one(
            "interfaces:\n  - name: eth0\n  - { name: eth0, xdp_mode: skb }\n",
            3,
            13,
            "interfaces[1].name",
            "interface `eth0` is already listed as interfaces[0]",
        );
    }

    #[test]
    fn maglev_table_size() {
        let size = |size: &str| {
            format!("interfaces: [{{ name: eth0 }}]\ndataplane:\n  maglev_table_size: {size}\n")
        };
        assert_one(
            &size("65536"),
            3,
            22,
            "dataplane.maglev_table_size",
            "65536 is not a prime number",
        );
        assert_one(
            &size("1"),
            3,
            22,
            "dataplane.maglev_table_size",
            "1 is out of range 2..=2147483647",
        );
        assert_one(
            &size("4294967291"),
            3,
            22,
            "dataplane.maglev_table_size",
            "is out of range 2..=2147483647",
        );
        // A prime the default 127 services cannot afford: 128 rows of it
        // overflow the ring's 32-bit index (reported where `dataplane`'s
        // settings are, since max_services is left at its default).
        assert_one(
            &size("33554467"),
            3,
            3,
            "dataplane.max_services",
            "127 services with maglev_table_size 33554467 need a Maglev ring of 4294971776 slots",
        );
        assert_eq!(ok(&size("2")).dataplane.maglev_table_size, 2);
        assert_eq!(ok(&size("65521")).dataplane.maglev_table_size, 65_521);
    }

    #[test]
    fn maglev_table_smaller_than_a_service() {
        let text = "\
interfaces: [{ name: eth0 }]
dataplane: { maglev_table_size: 3 }
services:
  - name: web
    vip: 198.18.1.10
    port: 80
    protocol: tcp
    reals: [{ address: 198.18.2.1 }, { address: 198.18.2.2 }, { address: 198.18.2.3 }, { address: 198.18.2.4 }]
";
        assert_one(
            text,
            2,
            33,
            "dataplane.maglev_table_size",
            "3 is smaller than the 4 reals of service `web` (services[0])",
        );
    }

    #[test]
    fn flow_table_entries_range() {
        let entries = |n: &str| {
            format!("interfaces: [{{ name: eth0 }}]\ndataplane: {{ flow_table_entries: {n} }}\n")
        };
        assert_one(
            &entries("512"),
            2,
            34,
            "dataplane.flow_table_entries",
            "512 is out of range 1024..=67108864",
        );
        assert_one(
            &entries("67108865"),
            2,
            34,
            "dataplane.flow_table_entries",
            "out of range 1024..=67108864",
        );
        assert_eq!(ok(&entries("1024")).dataplane.flow_table_entries, 1024);
    }

    #[test]
    fn relative_pin_path() {
        assert_one(
            "interfaces: [{ name: eth0 }]\npin_path: bpf/lb\n",
            2,
            11,
            "pin_path",
            "`bpf/lb` must be an absolute path",
        );
    }

    #[test]
    fn too_many_services() {
        let mut body = String::new();
        for i in 0..=DEFAULT_MAX_SERVICES {
            body += &format!(
                "  - {{ name: s{i}, vip: 198.18.1.10, port: {}, protocol: tcp }}\n",
                i + 1
            );
        }
        // services[127] is on line 3 + 127.
        assert_one(
            &with_services(&body),
            130,
            5,
            "services[127]",
            "too many services: 128 configured, at most 127 are supported (dataplane.max_services)",
        );
        let last = body.rfind("  - ").unwrap();
        ok(&with_services(&body[..last]));
    }

    /// A config with `dataplane` set to `settings` (line 2) and `body` as its
    /// `services:` list, starting on line 4.
    fn with_dataplane(settings: &str, body: &str) -> String {
        format!("interfaces: [{{ name: eth0 }}]\ndataplane: {{ {settings} }}\nservices:\n{body}")
    }

    #[test]
    fn max_services_sets_the_service_limit() {
        let body: String = (0..3)
            .map(|i| {
                format!(
                    "  - {{ name: s{i}, vip: 198.18.1.10, port: {}, protocol: tcp }}\n",
                    i + 1
                )
            })
            .collect();
        assert_one(
            &with_dataplane("max_services: 2", &body),
            6,
            5,
            "services[2]",
            "too many services: 3 configured, at most 2 are supported (dataplane.max_services)",
        );
        let config = ok(&with_dataplane("max_services: 3", &body));
        assert_eq!(config.dataplane.max_services, 3);
        assert_eq!(config.dataplane.max_reals, DEFAULT_MAX_REALS);
        // Raised past the default: 200 services fit.
        let body: String = (0..200)
            .map(|i| {
                format!(
                    "  - {{ name: s{i}, vip: 198.18.1.10, port: {}, protocol: tcp }}\n",
                    i + 1
                )
            })
            .collect();
        ok(&with_dataplane("max_services: 1000", &body));
    }

    #[test]
    fn max_services_and_max_reals_ranges() {
        let setting =
            |text: &str| format!("interfaces: [{{ name: eth0 }}]\ndataplane: {{ {text} }}\n");
        assert_one(
            &setting("max_services: 0"),
            2,
            28,
            "dataplane.max_services",
            "0 is out of range 1..=1048575",
        );
        assert_one(
            &setting("max_reals: 16777216"),
            2,
            25,
            "dataplane.max_reals",
            "16777216 is out of range 1..=16777215",
        );
        let config = ok(&setting(
            "max_services: 1048575, maglev_table_size: 4093, max_reals: 16777215",
        ));
        assert_eq!(config.dataplane.max_services, MAX_MAX_SERVICES);
        assert_eq!(config.dataplane.max_reals, MAX_MAX_REALS);
    }

    #[test]
    fn maglev_ring_must_fit_a_32_bit_index() {
        // (65535 + 1) * 65537 = 4295032832 > u32::MAX.
        assert_one(
            "interfaces: [{ name: eth0 }]\ndataplane: { max_services: 65535 }\n",
            2,
            28,
            "dataplane.max_services",
            "65535 services with maglev_table_size 65537 need a Maglev ring of 4295032832 slots",
        );
        ok("interfaces: [{ name: eth0 }]\ndataplane: { max_services: 65533 }\n");
    }

    #[test]
    fn too_many_reals() {
        // Two services of 8192 reals: the 16384th real is services[1].reals[8191].
        let mut body = String::new();
        for s in 1..=2 {
            body += &format!(
                "  - name: s{s}\n    vip: 10.{s}.255.1\n    port: 80\n    protocol: tcp\n    reals:\n"
            );
            for j in 0..8192 {
                body += &format!("      - {{ address: 10.{s}.{}.{} }}\n", j / 256, j % 256);
            }
        }
        // Line 3 + 5 + 8192 (first service) + 5 + 8191.
        assert_one(
            &with_services(&body),
            16396,
            9,
            "services[1].reals[8191]",
            "too many reals: 16384 configured across all services, at most 16383 are supported \
             (dataplane.max_reals)",
        );
        let last = body.rfind("      - ").unwrap();
        ok(&with_services(&body[..last]));
    }

    #[test]
    fn max_reals_sets_the_real_limit() {
        let service = |s: usize, reals: usize| {
            let mut text = format!(
                "  - name: s{s}\n    vip: 198.18.1.{s}\n    port: 80\n    protocol: tcp\n    reals:\n"
            );
            for j in 0..reals {
                text += &format!("      - {{ address: 198.19.{s}.{j} }}\n");
            }
            text
        };
        // Lines 4-8: s1's header; 9-11 its reals; 12-16 s2's header; 17.. its reals.
        let body = service(1, 3) + &service(2, 3);
        assert_one(
            &with_dataplane("max_reals: 4", &body),
            18,
            9,
            "services[1].reals[1]",
            "too many reals: 6 configured across all services, at most 4 are supported \
             (dataplane.max_reals)",
        );
        ok(&with_dataplane("max_reals: 6", &body));
        // Raised past the default: 20,000 reals fit.
        let body: String = (1..=100).map(|s| service(s, 200)).collect();
        ok(&with_dataplane(
            "max_reals: 20000, max_services: 100",
            &body,
        ));
    }

    #[test]
    fn too_many_interfaces() {
        let mut text = String::from("interfaces:\n");
        for i in 0..=MAX_INTERFACES {
            text += &format!("  - name: eth{i}\n");
        }
        let error = parse(&text, "config.yaml", &|_| true).unwrap_err();
        assert_eq!(error.problems.len(), 1, "{error}");
        assert_problem(
            &error.problems[0],
            66,
            5,
            "interfaces[64]",
            "too many interfaces: 65 listed, at most 64 are supported",
        );
    }

    #[test]
    fn host_interfaces() {
        assert!(!host_interface_exists("no-such-if0"));
        assert!(!host_interface_exists("bad\0name"));
    }
}
