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
    /// Every map the daemon pins, in a fixed order.
    pub const ALL_PINNED: [&str; 12] = [
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

/// Names of the load-time constants in the BPF object's `.rodata`.
pub mod globals {
    /// Slots per service in the Maglev ring (a prime, same for all services).
    pub const MAGLEV_TABLE_SIZE: &str = "LB_MAGLEV_TABLE_SIZE";
}

/// Default sizes; all but the stats arrays can be changed in the YAML.
pub mod capacity {
    pub const DEFAULT_MAGLEV_TABLE_SIZE: u32 = 65_537;
    /// Service ids are `1..MAX_SERVICES`; the Maglev ring holds
    /// `MAX_SERVICES * table size` slots (a little over 32 MiB by default).
    pub const MAX_SERVICES: u32 = 128;
    /// Real ids are `1..MAX_REALS`, one per (service, real) pair.
    pub const MAX_REALS: u32 = 4_096;
    /// Local addresses the decap program accepts tunnels for.
    pub const MAX_DECAP_ADDRS: u32 = 64;
    pub const DEFAULT_FLOW_TABLE_ENTRIES: u32 = 1 << 20;
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
    /// Index into the Maglev ring and `LB_SVC_STATS`; never 0.
    pub id: u32,
    /// A [`ForwardingMethod`].
    pub forwarding: u8,
    /// A [`Scheduler`]; the data plane only reads the table it produced,
    /// the tag is for listings and for a restarted daemon.
    pub scheduler: u8,
    pub _pad: [u8; 2],
}

/// How a service's Maglev ring was filled.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheduler {
    /// Maglev consistent hashing.
    Maglev = 1,
}

impl Scheduler {
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(Self::Maglev),
            _ => None,
        }
    }

    /// The name ipvsadm prints.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Maglev => "mh",
        }
    }
}

/// Value of `LB_REALS`, indexed by real id. One entry per (service, real):
/// weights, counters and the next hop are per destination, as in IPVS.
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
    /// Configured weight (the Maglev table already reflects it; kept for
    /// listings and for a restarted daemon).
    pub weight: u32,
    /// TUN: the outer source address (of the real's family).
    pub tunnel_src: Addr,
    /// MTU of the egress interface: TUN answers packets that would not fit
    /// once encapsulated with "fragmentation needed" / "packet too big".
    pub mtu: u16,
    pub _pad: [u8; 2],
}

/// The entry describes a configured real (cleared when it is removed).
pub const REAL_ACTIVE: u8 = 1 << 0;
/// The daemon knows a next hop (MAC and egress interface) for it. Without
/// one the data plane drops rather than sending to a zero MAC.
pub const REAL_NEXT_HOP_KNOWN: u8 = 1 << 1;

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
    /// `bpf_ktime_get_ns()` of the last packet, refreshed at most once a
    /// second so an established flow does not write the map per packet
    /// (and at once whenever `state` changes).
    pub last_seen_ns: u64,
    /// A [`ConnectionState`]: picks the timeout, as in IPVS.
    pub state: u8,
    pub _pad: [u8; 7],
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
    assert!(core::mem::size_of::<Service>() == 8);
    assert!(core::mem::size_of::<Real>() == 64);
    assert!(core::mem::size_of::<FlowKey>() == 40);
    assert!(core::mem::size_of::<FlowState>() == 24);
    assert!(core::mem::size_of::<Settings>() == 16);
    assert!(core::mem::size_of::<NatReply>() == 64);
};

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
    unsafe impl aya::Pod for Settings {}
    unsafe impl aya::Pod for NatReply {}
}
