//! Map names, keys and values. The BPF program declares its maps with these
//! types; the daemon opens them by these names.

use crate::addr::Addr;

/// Map names: the symbol names in the BPF object and the file names under the
/// pin directory. Changing one breaks adoption of maps pinned by an older
/// daemon, so treat them as a stable ABI.
pub mod names {
    pub const VIPS: &str = "LB_VIPS";
    pub const SERVICES: &str = "LB_SERVICES";
    pub const REALS: &str = "LB_REALS";
    pub const MAGLEV: &str = "LB_MAGLEV";
    pub const FLOWS: &str = "LB_FLOWS";
    pub const TX_PORTS: &str = "LB_TX_PORTS";
    pub const GLOBAL_STATS: &str = "LB_GLOBAL_STATS";
    pub const SERVICE_STATS: &str = "LB_SVC_STATS";
    pub const REAL_STATS: &str = "LB_REAL_STATS";
    pub const SETTINGS: &str = "LB_SETTINGS";
    pub const NAT_REALS: &str = "LB_NAT_REALS";
    pub const NAT_REPLIES: &str = "LB_NAT_REPLIES";
    /// Addresses the decap program strips tunnels for (on the reals).
    pub const DECAP_ADDRS: &str = "LB_DECAP_ADDRS";
    /// Live connection counts per real (least-connection schedulers).
    pub const REAL_CONNS: &str = "LB_REAL_CONNS";
    /// Persistence templates: (service, masked client) -> real.
    pub const PERSIST: &str = "LB_PERSIST";
    /// Round-robin position per service (per CPU).
    pub const RR_CURSOR: &str = "LB_RR_CURSOR";
    /// Entry 0: the flow cache's generation (see [`super::FlowCacheEntry`]).
    pub const FLOW_CACHE_GENERATION: &str = "LB_FLOW_CACHE_GEN";
    /// The per-CPU flow cache itself. Not pinned: a new program starts with
    /// an empty one, and the pinned generation invalidates the old one's.
    pub const FLOW_CACHE: &str = "LB_FLOW_CACHE";
    /// Each CPU's cache of NAT replies (see [`super::NatReplyCacheEntry`]).
    /// Not pinned, for the same reason as the flow cache.
    pub const NAT_REPLY_CACHE: &str = "LB_NAT_REPLY_CACHE";
    /// Entry 0: the flood guard's limit (see [`super::FloodGuard`]).
    pub const FLOOD_GUARD: &str = "LB_FLOOD_GUARD";
    /// Each CPU's count of new flows recorded this second (not pinned: a
    /// new program starts a fresh second).
    pub const NEW_FLOW_WINDOW: &str = "LB_NEW_FLOW_WINDOW";
    /// Every map the daemon pins, in a fixed order.
    pub const ALL_PINNED: [&str; 17] = [
        VIPS,
        SERVICES,
        REALS,
        MAGLEV,
        FLOWS,
        TX_PORTS,
        GLOBAL_STATS,
        SERVICE_STATS,
        REAL_STATS,
        SETTINGS,
        NAT_REALS,
        NAT_REPLIES,
        REAL_CONNS,
        PERSIST,
        RR_CURSOR,
        FLOW_CACHE_GENERATION,
        FLOOD_GUARD,
    ];
}

/// Program names in the BPF object.
pub mod programs {
    /// The balancer, attached to every configured interface.
    pub const BALANCER: &str = "lb_balancer";
    /// Passes everything. veth only delivers XDP_TX/redirected frames to a
    /// peer that has an XDP program, so test rigs put this one there.
    pub const PASS: &str = "lb_pass";
    /// Runs on the real servers: strips IP-in-IP / IPv6 tunnels addressed
    /// to the host (`lbd decap`), since many hosts have no ipip module.
    pub const DECAP: &str = "lb_decap";
}

/// Names in the benchmark's own BPF object (lb-ebpf's `lb-bench-xdp`
/// binary), which only `lb-bench` loads: the daemon's object has none of
/// these programs or maps.
pub mod bench {
    /// Program names.
    pub mod programs {
        /// Benchmark floor: swaps the MACs and sends the frame back (XDP_TX).
        pub const REFLECT: &str = "lb_reflect";
        /// Benchmark sink where the reals would be: drops all but ARP and
        /// neighbour discovery.
        pub const SINK: &str = "lb_sink";
        /// Restores a frame, then tail-calls another program.
        pub const REPLAY: &str = "lb_replay";
    }

    /// Map names (private to each loaded copy, never pinned).
    pub mod names {
        /// Entry 0: the frame `lb_replay` restores (a [`crate::BenchFrame`]).
        pub const FRAME: &str = "LB_BENCH_FRAME";
        /// Slot 0: the program `lb_replay` hands the restored frame to.
        pub const NEXT: &str = "LB_BENCH_NEXT";
    }
}

/// Names of the load-time constants in the BPF object's `.rodata`.
pub mod globals {
    /// Slots per service in the Maglev ring (a prime, same for all services).
    pub const MAGLEV_TABLE_SIZE: &str = "LB_MAGLEV_TABLE_SIZE";
}

/// Default sizes, as the BPF object declares them. The loader resizes
/// every map from the YAML's `dataplane` settings (`maglev_table_size`,
/// `flow_table_entries`, `max_services`, `max_reals`); only the interface,
/// decap and counter maps keep these sizes.
pub mod capacity {
    pub const DEFAULT_MAGLEV_TABLE_SIZE: u32 = 65_537;
    /// Default id space of the service-indexed maps: service ids are
    /// `1..MAX_SERVICES` (0 is "none"); the Maglev ring holds `MAX_SERVICES *
    /// table size` slots (a little over 32 MiB by default).
    pub const MAX_SERVICES: u32 = 128;
    /// Default id space of the real-indexed maps: real ids are
    /// `1..MAX_REALS`, one per (service, real) pair.
    pub const MAX_REALS: u32 = 16_384;
    /// Real ids must stay below this whatever the configuration: the ICMP
    /// relay packs a real id into 24 bits of a BPF function's return value.
    pub const REAL_ID_LIMIT: u32 = 1 << 24;
    /// Local addresses the decap program accepts tunnels for.
    pub const MAX_DECAP_ADDRS: u32 = 64;
    pub const DEFAULT_FLOW_TABLE_ENTRIES: u32 = 1 << 20;
    /// Slots of each CPU's flow cache (a power of two: the slot is the low
    /// bits of a hash). 512 KiB per CPU.
    pub const FLOW_CACHE_SLOTS: u32 = 1 << 13;
    pub const MAX_INTERFACES: u32 = 64;
}

/// Id 0 means "no real": a zeroed Maglev slot sends nothing anywhere.
pub const NO_REAL: u32 = 0;

/// Key of `LB_VIPS`: every address that has at least one service. Lets the
/// data plane decide "is this ours?" before it knows the port, which is what
/// fragments and unknown protocols need.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VipKey {
    pub addr: Addr,
    pub family: u8,
    pub _pad: [u8; 3],
}

/// Value of `LB_VIPS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VipInfo {
    /// How many services use this address (for the daemon's bookkeeping).
    pub services: u32,
}

/// Key of `LB_SERVICES`: (VIP, port, protocol). Port 0 matches every port.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    pub addr: Addr,
    /// Network byte order, as read from the packet.
    pub port_be: u16,
    pub protocol: u8,
    pub family: u8,
}

/// How a service forwards to its reals.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ForwardingMethod {
    /// Rewrite MACs only; the real holds the VIP on a loopback.
    DirectRouting = 1,
    /// IP-in-IP (or IPv6) encapsulation to the real, anywhere routable.
    Tunnel = 2,
    /// Rewrite the destination to the real (and replies back to the VIP);
    /// the balancer is the reals' gateway.
    Masquerade = 3,
}

impl ForwardingMethod {
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(Self::DirectRouting),
            2 => Some(Self::Tunnel),
            3 => Some(Self::Masquerade),
            _ => None,
        }
    }
}

/// Value of `LB_SERVICES`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Service {
    /// Index into the scheduling rows (`LB_MAGLEV`), `LB_SVC_STATS` and
    /// `LB_RR_CURSOR`; never 0.
    pub id: u32,
    /// A [`Scheduler`]: how the service's row is read for a new connection.
    pub scheduler: u8,
    /// [`SCHED_FLAG_FALLBACK`], [`SCHED_FLAG_PORT`] (ipvsadm's `-b`).
    pub sched_flags: u8,
    /// Persistence: the client address is masked to this many leading bits
    /// before the template lookup (ipvsadm's `-M`; 32 / 128 = whole address).
    pub persistence_prefix: u8,
    pub _pad: u8,
    /// Persistence timeout in seconds (ipvsadm's `-p`); 0 = not persistent.
    pub persistence_timeout: u32,
    /// How many leading slots of the row are in use. Hash schedulers (mh,
    /// sh, dh) use the whole row; rr and wrr cycle through the first
    /// `row_len` slots; the least-connection family scans them as the list
    /// of candidate reals. 0 = no usable real.
    pub row_len: u32,
}

/// The row's slot is an unavailable real (overloaded): try the following
/// slots instead of dropping (ipvsadm `mh-fallback` / `sh-fallback`).
pub const SCHED_FLAG_FALLBACK: u8 = 1 << 0;
/// Hash the client's port too, not just its address (`mh-port` /
/// `sh-port`): one client's connections spread over several reals.
pub const SCHED_FLAG_PORT: u8 = 1 << 1;

/// How a service picks the real for a new connection: IPVS's schedulers.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheduler {
    /// Maglev consistent hashing of the client address (and port with
    /// [`SCHED_FLAG_PORT`]).
    Maglev = 1,
    RoundRobin = 2,
    WeightedRoundRobin = 3,
    /// Client address (and port with [`SCHED_FLAG_PORT`]) hashed into a
    /// weighted bucket table.
    SourceHash = 4,
    /// Destination address hashed into a bucket table.
    DestinationHash = 5,
    LeastConnection = 6,
    WeightedLeastConnection = 7,
    ShortestExpectedDelay = 8,
    NeverQueue = 9,
}

impl Scheduler {
    pub const ALL: [Scheduler; 9] = [
        Self::Maglev,
        Self::RoundRobin,
        Self::WeightedRoundRobin,
        Self::SourceHash,
        Self::DestinationHash,
        Self::LeastConnection,
        Self::WeightedLeastConnection,
        Self::ShortestExpectedDelay,
        Self::NeverQueue,
    ];

    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(Self::Maglev),
            2 => Some(Self::RoundRobin),
            3 => Some(Self::WeightedRoundRobin),
            4 => Some(Self::SourceHash),
            5 => Some(Self::DestinationHash),
            6 => Some(Self::LeastConnection),
            7 => Some(Self::WeightedLeastConnection),
            8 => Some(Self::ShortestExpectedDelay),
            9 => Some(Self::NeverQueue),
            _ => None,
        }
    }

    /// The name ipvsadm uses (`-s`, listings).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Maglev => "mh",
            Self::RoundRobin => "rr",
            Self::WeightedRoundRobin => "wrr",
            Self::SourceHash => "sh",
            Self::DestinationHash => "dh",
            Self::LeastConnection => "lc",
            Self::WeightedLeastConnection => "wlc",
            Self::ShortestExpectedDelay => "sed",
            Self::NeverQueue => "nq",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|scheduler| scheduler.name() == name)
    }

    /// The real is a function of the packet and the row alone, so a flow's
    /// packets find the same real without a flow entry (while the row and
    /// the reals' availability stay as they are).
    pub const fn is_stateless_hash(self) -> bool {
        matches!(
            self,
            Self::Maglev | Self::SourceHash | Self::DestinationHash
        )
    }

    /// The row is scanned as a candidate list (connection counts decide).
    pub const fn is_least_connection(self) -> bool {
        matches!(
            self,
            Self::LeastConnection
                | Self::WeightedLeastConnection
                | Self::ShortestExpectedDelay
                | Self::NeverQueue
        )
    }
}

/// The least-connection family scans at most this many candidates per new
/// connection; the daemon refuses larger services for those schedulers.
pub const MAX_LEAST_CONNECTION_CANDIDATES: u32 = 256;

/// Value of `LB_REALS`, indexed by real id. One entry per (service, real):
/// weights, forwarding method, counters and the next hop are per
/// destination, as in IPVS.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Real {
    pub addr: Addr,
    pub family: u8,
    /// [`REAL_ACTIVE`] and friends.
    pub flags: u8,
    /// Network byte order.
    pub port_be: u16,
    /// The service this destination belongs to.
    pub service_id: u32,
    /// Egress interface towards the real, resolved by the daemon.
    pub ifindex: u32,
    /// The real's MAC (DR) as the daemon's neighbour view knows it.
    pub dst_mac: [u8; 6],
    /// The egress interface's own MAC.
    pub src_mac: [u8; 6],
    /// Configured weight: hash and round-robin rows already reflect it;
    /// the least-connection family reads it per new connection.
    pub weight: u32,
    /// TUN: the outer source address (of the real's family).
    pub tunnel_src: Addr,
    /// MTU of the egress interface: TUN answers packets that would not fit
    /// once encapsulated with "fragmentation needed" / "packet too big".
    pub mtu: u16,
    /// A [`ForwardingMethod`] (per real, as ipvsadm's `-g`/`-i`/`-m`).
    pub forwarding: u8,
    /// The daemon's last health verdict ([`RealHealth`] as `u8`), kept here
    /// so a restarted daemon carries on from it. The data plane reads
    /// [`REAL_DOWN`], never this.
    pub health: u8,
    /// ipvsadm's `-x`: at this many connections the real is overloaded
    /// (the daemon sets [`REAL_OVERLOADED`]); 0 = no limit.
    pub upper_threshold: u32,
    /// ipvsadm's `-y`: below this it takes new connections again (0 =
    /// three quarters of the upper threshold, as IPVS).
    pub lower_threshold: u32,
}

/// The entry describes a configured real (cleared when it is removed).
pub const REAL_ACTIVE: u8 = 1 << 0;
/// The daemon knows a next hop (MAC and egress interface) for it. Without
/// one the data plane drops rather than sending to a zero MAC.
pub const REAL_NEXT_HOP_KNOWN: u8 = 1 << 1;
/// Over its upper connection threshold: schedulers skip it (established
/// flows and persistence templates still reach it).
pub const REAL_OVERLOADED: u8 = 1 << 2;
/// Failed its health checks and was taken out of the service (keepalived
/// removes such reals from IPVS): no new connections, and established ones
/// follow `expire_nodest_conn`. The entry keeps its id, so flows resume if
/// the real comes back before they idle out.
pub const REAL_DOWN: u8 = 1 << 3;

impl Real {
    /// Whether the schedulers may give it a new connection of service
    /// `service_id`: configured, of that service, weight above 0 and not
    /// overloaded (IPVS's `is_unavailable` and the quiesced weight 0).
    /// Established flows and persistence templates only need the first
    /// two.
    #[inline(always)]
    pub const fn takes_new_connections(&self, service_id: u32) -> bool {
        self.flags & (REAL_ACTIVE | REAL_OVERLOADED | REAL_DOWN) == REAL_ACTIVE
            && self.service_id == service_id
            && self.weight > 0
    }

    /// Whether established flows and persistence templates may still reach
    /// it: configured for `service_id` and not taken out by health checks.
    #[inline(always)]
    pub const fn is_live(&self, service_id: u32) -> bool {
        self.flags & (REAL_ACTIVE | REAL_DOWN) == REAL_ACTIVE && self.service_id == service_id
    }
}

/// What the daemon last concluded from a real's health checks.
#[repr(u8)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RealHealth {
    /// Not yet probed (or not probed at all).
    #[default]
    Unknown = 0,
    Up = 1,
    Down = 2,
}

impl RealHealth {
    pub const fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Up,
            2 => Self::Down,
            _ => Self::Unknown,
        }
    }
}

/// Value of `LB_REAL_CONNS`, indexed by real id: the real's connections as
/// ipvsadm counts them. The daemon recounts from the flow table every
/// second while anything reads them (least-connection schedulers,
/// thresholds, metrics); between recounts the data plane adds each new
/// connection (an atomic add to `inactive`, where IPVS counts SYN_RECV and
/// UDP too).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RealConns {
    /// Established TCP connections.
    pub active: u32,
    /// Every other tracked connection (handshake, closing, UDP).
    pub inactive: u32,
}

/// Key of `LB_PERSIST`: a persistence template, as IPVS keeps them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PersistKey {
    /// The client address masked to the service's persistence prefix.
    pub client: Addr,
    pub service_id: u32,
}

/// Value of `LB_PERSIST`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PersistState {
    pub real_id: u32,
    pub _pad: u32,
    /// Refreshed whenever a connection it placed is seen (at most once a
    /// second), so a template outlives its connections by the timeout.
    pub last_seen_ns: u64,
}

/// Key of `LB_FLOWS`: a connection's 5-tuple as the client sent it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: Addr,
    pub dst: Addr,
    /// Network byte order.
    pub src_port: u16,
    /// Network byte order.
    pub dst_port: u16,
    pub protocol: u8,
    pub family: u8,
    pub _pad: [u8; 2],
}

/// Value of `LB_FLOWS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowState {
    pub real_id: u32,
    pub service_id: u32,
    /// The data plane's clock (CLOCK_MONOTONIC_COARSE) at the last packet,
    /// refreshed at most once a second so an established flow does not
    /// write the map per packet (and at once whenever `state` changes).
    pub last_seen_ns: u64,
    /// A [`ConnectionState`]: picks the timeout, as in IPVS.
    pub state: u8,
    pub _pad: [u8; 7],
}

/// A slot of `LB_FLOW_CACHE`: one CPU's copy of a flow's decision, so an
/// established flow's packets skip both hash lookups (service and flow
/// table), which are most of a hit's cost.
///
/// The flow table stays the truth. A slot only answers while the flow's
/// table entry needs no write: within a second of the last refresh (what
/// the table's own timestamp granularity allows), and for packets that
/// leave the state as it is. Anything else (a SYN, FIN or RST, a real that
/// is no longer live, a slot filled before the daemon's last change)
/// falls through to the table, which refills the slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCacheEntry {
    pub key: FlowKey,
    pub real_id: u32,
    pub service_id: u32,
    /// The flow table entry's `last_seen_ns` when the slot was filled.
    pub last_seen_ns: u64,
    /// `LB_FLOW_CACHE_GEN` when the slot was filled. The daemon bumps it
    /// whenever it changes what a flow's packets should do other than
    /// through the real's entry (which every hit reads anyway): services,
    /// VIPs, settings, NAT reals (for the NAT reply cache, which shares the
    /// generation), a flow entry it writes. (A zeroed slot never matches
    /// whatever the generation: its key's family is 0.)
    pub generation: u32,
    /// The flow's [`ConnectionState`].
    pub state: u8,
    pub _pad: [u8; 3],
}

/// A slot of `LB_NAT_REPLY_CACHE`: one CPU's copy of what the NAT reply
/// path did with a flow's reply, so the next ones skip the five hash
/// lookups (service, VIP, NAT real, reverse entry, flow) and the route
/// lookup. Indexed like [`FlowCacheEntry`], by the reply's own 5-tuple.
///
/// Filled only when the reply was translated and sent on by the program
/// itself (route and neighbour known, small enough), and its flow table
/// entry names the reply's real. It answers, like a flow cache slot, only
/// while the table path would write nothing: a second at most from the
/// forward flow's `last_seen_ns`, and for replies that leave its state as
/// it is (so never a SYN, FIN or RST). The route it holds is therefore at
/// most a second old, and it vouches only for frames within the MTU the
/// kernel's route lookup reported.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatReplyCacheEntry {
    /// The reply's 5-tuple as it arrives (real:port -> client:port).
    pub key: FlowKey,
    /// What its source becomes (`NatReply::vip`, `vip_port_be`).
    pub vip: Addr,
    pub vip_port_be: u16,
    /// The forward flow's [`ConnectionState`] when the slot was filled.
    pub state: u8,
    pub _pad: u8,
    pub real_id: u32,
    /// The real's service, for its outgoing counters.
    pub service_id: u32,
    /// The route lookup's egress interface and MACs.
    pub ifindex: u32,
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    /// The route's MTU, as the lookup reported it: longer IP packets take
    /// the reply path (which hands them to the kernel).
    pub route_mtu: u16,
    pub _pad2: [u8; 2],
    /// The forward flow's `last_seen_ns` when the slot was filled.
    pub last_seen_ns: u64,
    /// As in [`FlowCacheEntry`].
    pub generation: u32,
    pub _pad3: [u8; 4],
}

/// Entry 0 of `LB_FLOOD_GUARD`: how many of the new flows that can do
/// without an entry (below) each CPU records in the flow table a second
/// before it stops recording them (Katran's "under flood" rule); flows
/// that need their entry are always recorded and not counted. A flood of new 5-tuples (a
/// SYN flood, a scan) would otherwise make every packet pay for an insert
/// and the eviction of an older flow, a microsecond or more, and push
/// established flows out of a full table.
///
/// Past the limit, a new flow is forwarded to the real its scheduler picks
/// but not recorded when nothing needs its entry: the scheduler is a
/// stateless hash (mh, sh, dh), the service is not persistent, and the
/// real is not reached through NAT (whose replies need the flow's
/// entry). Its later packets are hashed to the same real; the flow is
/// recorded with the first of them that arrives under the limit. Until
/// then a change of the service's row may move it, as it would any
/// Maglev balancer without a connection table, and it is not in
/// `ipvsadm -L -c` or the real's connection counts.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FloodGuard {
    /// New flows recorded per second per CPU; 0 records every new flow.
    pub new_flows_per_second: u32,
    pub _pad: u32,
}

/// A CPU's entry in `LB_NEW_FLOW_WINDOW`: the second being counted.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NewFlowWindow {
    /// When the second began (the data plane's coarse clock).
    pub started_ns: u64,
    /// New flows recorded since then.
    pub recorded: u64,
}

/// Connection states, each with its own idle timeout (see [`Settings`]).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// TCP: only a SYN seen so far (times out like `tcp_fin`, so SYN floods
    /// do not fill the table with long-lived entries).
    TcpSynSeen = 1,
    TcpEstablished = 2,
    /// TCP: a FIN or RST seen in either direction.
    TcpClosing = 3,
    Udp = 4,
}

impl ConnectionState {
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(Self::TcpSynSeen),
            2 => Some(Self::TcpEstablished),
            3 => Some(Self::TcpClosing),
            4 => Some(Self::Udp),
            _ => None,
        }
    }

    /// The IPVS name, as `ipvsadm -L -c` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::TcpSynSeen => "SYN_RECV",
            Self::TcpEstablished => "ESTABLISHED",
            Self::TcpClosing => "FIN_WAIT",
            Self::Udp => "UDP",
        }
    }
}

/// Run-time settings, entry 0 of `LB_SETTINGS`: idle timeouts in seconds
/// (IPVS defaults; `ipvsadm --set`) and behaviour flags.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
    /// `SETTINGS_*` bits; zero is the default behaviour.
    pub flags: u32,
}

/// Do not answer ICMP/ICMPv6 echo requests to VIPs (pass them to the host).
pub const SETTINGS_NO_ECHO_REPLY: u32 = 1 << 0;
/// IPVS's `expire_nodest_conn`: a packet of a flow whose real was removed
/// is scheduled afresh (to a new real). Without it such packets are
/// dropped until the flow idles out, as in IPVS by default.
pub const SETTINGS_EXPIRE_NODEST_CONN: u32 = 1 << 1;

impl Settings {
    pub const IPVS_DEFAULTS: Self = Self {
        tcp: 900,
        tcp_fin: 120,
        udp: 300,
        flags: 0,
    };

    /// The idle timeout of a flow in `state`, in nanoseconds. A zero field
    /// (a settings map nobody wrote yet) means the IPVS default.
    pub const fn for_state_ns(&self, state: u8) -> u64 {
        let (set, default) = match ConnectionState::from_u8(state) {
            Some(ConnectionState::TcpEstablished) => (self.tcp, Self::IPVS_DEFAULTS.tcp),
            Some(ConnectionState::Udp) => (self.udp, Self::IPVS_DEFAULTS.udp),
            _ => (self.tcp_fin, Self::IPVS_DEFAULTS.tcp_fin),
        };
        let seconds = if set == 0 { default } else { set };
        seconds as u64 * 1_000_000_000
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self::IPVS_DEFAULTS
    }
}

/// Value of `LB_NAT_REPLIES`, keyed by the reply's 5-tuple as it arrives
/// from the real (real:port -> client:port). Written with the forward flow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatReply {
    /// The VIP and port the reply must appear to come from.
    pub vip: Addr,
    pub vip_port_be: u16,
    pub _pad: [u8; 2],
    pub real_id: u32,
    /// The forward flow's key, so the reply path can advance its state.
    pub forward: FlowKey,
}

/// Key of `LB_NAT_REALS`: addresses of reals behind a NAT service. Only
/// packets from these are looked up as possible replies.
pub type NatRealKey = VipKey;

const _: () = {
    assert!(core::mem::size_of::<Addr>() == 16);
    assert!(core::mem::size_of::<VipKey>() == 20);
    assert!(core::mem::size_of::<VipInfo>() == 4);
    assert!(core::mem::size_of::<ServiceKey>() == 20);
    assert!(core::mem::size_of::<Service>() == 16);
    assert!(core::mem::size_of::<Real>() == 72);
    assert!(core::mem::size_of::<RealConns>() == 8);
    assert!(core::mem::size_of::<PersistKey>() == 20);
    assert!(core::mem::size_of::<PersistState>() == 16);
    assert!(core::mem::size_of::<FlowKey>() == 40);
    assert!(core::mem::size_of::<FlowState>() == 24);
    assert!(core::mem::size_of::<FlowCacheEntry>() == 64);
    assert!(core::mem::size_of::<NatReplyCacheEntry>() == 104);
    assert!(core::mem::size_of::<Settings>() == 16);
    assert!(core::mem::size_of::<NatReply>() == 64);
};

/// Value of `LB_BENCH_FRAME`: the minimum Ethernet frame (without FCS) the
/// benchmark's `lb_replay` restores before each run.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchFrame(pub [u8; 60]);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all of these are repr(C), made only of integers and arrays of
    // integers, with every padding byte spelled out as a field.
    unsafe impl aya::Pod for VipKey {}
    unsafe impl aya::Pod for VipInfo {}
    unsafe impl aya::Pod for ServiceKey {}
    unsafe impl aya::Pod for Service {}
    unsafe impl aya::Pod for Real {}
    unsafe impl aya::Pod for FlowKey {}
    unsafe impl aya::Pod for FlowState {}
    unsafe impl aya::Pod for FlowCacheEntry {}
    unsafe impl aya::Pod for NatReplyCacheEntry {}
    unsafe impl aya::Pod for Settings {}
    unsafe impl aya::Pod for FloodGuard {}
    unsafe impl aya::Pod for NewFlowWindow {}
    unsafe impl aya::Pod for NatReply {}
    unsafe impl aya::Pod for RealConns {}
    unsafe impl aya::Pod for PersistKey {}
    unsafe impl aya::Pod for PersistState {}
    unsafe impl aya::Pod for BenchFrame {}
}
