//! The configuration's types: what a file decodes to and prints back from.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Serialize, Serializer, ser::SerializeMap};

use super::health::check::HealthCheck;
use super::keyword::{Keyword, keyword_display_and_serialize, keywords};
use super::limits::*;

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
    pub(super) fn maglev_ring_slots(&self) -> u64 {
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
    pub(super) fn name(self) -> &'static str {
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

keywords!(XdpMode, "xdp_mode" {
    Auto => "auto",
    Native => "native",
    Skb => "skb",
});

keywords!(Protocol, "protocol" {
    Tcp => "tcp",
    Udp => "udp",
});

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

keywords!(SchedulerFlag, "scheduler flag" {
    MhFallback => "mh-fallback",
    MhPort => "mh-port",
    ShFallback => "sh-fallback",
    ShPort => "sh-port",
    Flag1 => "flag-1",
    Flag2 => "flag-2",
});

keywords!(Forwarding, "forwarding" {
    Dr => "dr",
    Tun => "tun",
    Nat => "nat",
});

// ---------------------------------------------------------------------------
// What a service does about failed reals.

/// The health settings of a service (flattened into its YAML mapping).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct ServiceHealth {
    #[serde(skip_serializing_if = "is_unchecked")]
    pub health_check: HealthCheck,
    /// A failed real keeps its place with weight 0 (its established
    /// connections carry on) instead of leaving the service.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inhibit_on_failure: bool,
    /// keepalived's `alpha`: a real whose state is unknown (lbd starting
    /// without pinned state, a real just added) starts down and joins after
    /// its first successful probe. Off, it starts up and leaves after
    /// `fall` failures.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub alpha: bool,
    /// Minimum total weight of healthy reals; below it the service applies
    /// `on_quorum_loss`.
    #[serde(skip_serializing_if = "is_default_quorum")]
    pub quorum: u32,
    /// What happens below quorum; unset: `sorry_server` if one is
    /// configured, else `drop`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_quorum_loss: Option<QuorumLoss>,
    /// Where new connections go below quorum: a real that is never probed.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_sorry_server"
    )]
    pub sorry_server: Option<RealConfig>,
    /// Run when a real comes up / goes down (no shell); `{service}`,
    /// `{address}`, `{port}`, `{state}` and `{reason}` are replaced.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notify_up: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notify_down: Vec<String>,
}

pub const DEFAULT_QUORUM: u32 = 1;

/// The fields `sorry_server` takes: address, port and forwarding.
fn serialize_sorry_server<S: Serializer>(
    sorry: &Option<RealConfig>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(None)?;
    if let Some(sorry) = sorry {
        map.serialize_entry("address", &sorry.address)?;
        map.serialize_entry("port", &sorry.port)?;
        if let Some(forwarding) = sorry.forwarding {
            map.serialize_entry("forwarding", &forwarding)?;
        }
    }
    map.end()
}

fn is_unchecked(check: &HealthCheck) -> bool {
    *check == HealthCheck::default()
}

fn is_default_quorum(quorum: &u32) -> bool {
    *quorum == DEFAULT_QUORUM
}

impl ServiceHealth {
    pub fn unchecked() -> Self {
        Self {
            quorum: DEFAULT_QUORUM,
            ..Self::default()
        }
    }

    /// The policy in force below quorum.
    pub fn quorum_loss(&self) -> QuorumLoss {
        self.on_quorum_loss
            .unwrap_or(if self.sorry_server.is_some() {
                QuorumLoss::SorryServer
            } else {
                QuorumLoss::Drop
            })
    }
}

/// What a service does when its healthy weight falls below its quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuorumLoss {
    /// New connections go to the sorry server.
    SorryServer,
    /// New connections are dropped.
    Drop,
    /// The reals that last made quorum keep taking new connections
    /// (better a server that may be sick than none).
    Keep,
}

keywords!(QuorumLoss, "on_quorum_loss" {
    SorryServer => "sorry_server",
    Drop => "drop",
    Keep => "keep",
});

keyword_display_and_serialize!(
    XdpMode,
    Protocol,
    Scheduler,
    SchedulerFlag,
    Forwarding,
    QuorumLoss
);
