//! What an ipvsadm command line means, as plain data. Every type travels as
//! JSON over the daemon's control socket, so each is serde-serialisable with
//! snake_case tags.

use std::net::{IpAddr, SocketAddr};

use lb_common::{ForwardingMethod, Scheduler};
use serde::{Deserialize, Serialize};

/// `-p` without a value (ipvsadm's `IPVS_SVC_PERSISTENT_TIMEOUT`).
pub const DEFAULT_PERSISTENCE_TIMEOUT: u32 = 300;
/// The longest timeout ipvsadm accepts (`MAX_TIMEOUT`, 31 days).
pub const MAX_TIMEOUT: u32 = 86400 * 31;
/// `-w` when absent, for `-a` and `-e` alike.
pub const DEFAULT_WEIGHT: u32 = 1;
/// The largest `-w` ipvsadm accepts.
pub const MAX_WEIGHT: u32 = 65535;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// The ipvsadm option naming a service of this protocol (`-S` output).
    pub const fn switch(self) -> &'static str {
        match self {
            Self::Tcp => "-t",
            Self::Udp => "-u",
        }
    }

    /// IANA protocol number.
    pub const fn number(self) -> u8 {
        match self {
            Self::Tcp => lb_common::proto::TCP,
            Self::Udp => lb_common::proto::UDP,
        }
    }
}

/// A virtual service as the kernel keys it: protocol, address, port
/// (port 0 = every port of the address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceId {
    pub protocol: Protocol,
    pub address: SocketAddr,
}

impl ServiceId {
    pub fn new(protocol: Protocol, address: SocketAddr) -> Self {
        Self { protocol, address }
    }

    /// Identity ignoring IPv6 flow labels and scope ids, which ipvsadm
    /// cannot express and the kernel does not compare.
    pub(super) fn same_as(&self, other: &ServiceId) -> bool {
        self.protocol == other.protocol && same_address(self.address, other.address)
    }
}

/// Persistence (`-p`, `-M`): connections from one client (masked to
/// `netmask` leading bits) go to the same real for `timeout` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persistence {
    pub timeout: u32,
    /// Prefix length; 32 (IPv4) or 128 (IPv6) = the whole address.
    pub netmask: u8,
}

impl Persistence {
    /// `-p [timeout]` without `-M`: the whole client address.
    pub fn whole_address(timeout: u32, address: IpAddr) -> Self {
        Self {
            timeout,
            netmask: full_prefix(address),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualService {
    pub id: ServiceId,
    #[serde(with = "scheduler_by_name")]
    pub scheduler: Scheduler,
    /// `-b sh-fallback` / `mh-fallback` (`flag-1`).
    pub fallback: bool,
    /// `-b sh-port` / `mh-port` (`flag-2`).
    pub hash_port: bool,
    pub persistence: Option<Persistence>,
}

impl VirtualService {
    /// What `-A` without `-s`, `-b`, `-p` creates in this product: Maglev
    /// hashing of the whole connection (`-s mh -b mh-port`).
    pub fn with_product_defaults(id: ServiceId) -> Self {
        Self {
            id,
            scheduler: Scheduler::Maglev,
            fallback: false,
            hash_port: true,
            persistence: None,
        }
    }

    /// A service with `scheduler` and no flags, as `-A ... -s NAME` creates.
    pub fn with_scheduler(id: ServiceId, scheduler: Scheduler) -> Self {
        Self {
            id,
            scheduler,
            fallback: false,
            hash_port: false,
            persistence: None,
        }
    }
}

/// A real server (IPVS "destination") of one service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub address: SocketAddr,
    #[serde(with = "forwarding_by_name")]
    pub forwarding: ForwardingMethod,
    pub weight: u32,
    /// `-x`: no new connections above this many (0 = no limit).
    pub upper_threshold: u32,
    /// `-y`: accept again below this many.
    pub lower_threshold: u32,
}

impl Destination {
    /// ipvsadm's defaults: weight 1, no thresholds.
    pub fn new(address: SocketAddr, forwarding: ForwardingMethod) -> Self {
        Self {
            address,
            forwarding,
            weight: DEFAULT_WEIGHT,
            upper_threshold: 0,
            lower_threshold: 0,
        }
    }
}

/// A command that changes the table (or, for `Zero` and `SetTimeouts`,
/// the daemon's counters and timeouts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    AddService(VirtualService),
    /// Replaces the whole service spec; the reals stay.
    EditService(VirtualService),
    DeleteService(ServiceId),
    Clear,
    AddReal(ServiceId, Destination),
    /// Replaces the whole destination spec (absent options take defaults).
    EditReal(ServiceId, Destination),
    DeleteReal(ServiceId, SocketAddr),
    /// `-Z [service]`: all services when `None`.
    Zero(Option<ServiceId>),
    /// `--set tcp tcpfin udp`, seconds; 0 keeps the current value.
    SetTimeouts {
        tcp: u32,
        tcp_fin: u32,
        udp: u32,
    },
}

/// `-L` and its options.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOptions {
    pub numeric: bool,
    /// `-c`: the connection table.
    pub connections: bool,
    pub stats: bool,
    pub rate: bool,
    pub exact: bool,
    /// `--timeout`: the three timeouts.
    pub timeout: bool,
    pub thresholds: bool,
    pub persistent_conn: bool,
    /// False with `--nosort` (`--sort` is ipvsadm's no-op).
    pub sort: bool,
    /// `-o json` (lbadm's extension).
    pub json: bool,
    /// `-L -t vip:port`: just that service.
    pub service: Option<ServiceId>,
}

impl Default for ListOptions {
    fn default() -> Self {
        Self {
            numeric: false,
            connections: false,
            stats: false,
            rate: false,
            exact: false,
            timeout: false,
            thresholds: false,
            persistent_conn: false,
            sort: true,
            json: false,
            service: None,
        }
    }
}

/// Everything one `lbadm` command line can ask for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Invocation {
    Command(Command),
    List(ListOptions),
    /// `-S`: ipvsadm's rules, or with `-o yaml` the daemon's configuration.
    Save {
        numeric: bool,
        yaml: bool,
        service: Option<ServiceId>,
    },
    /// `-R`: commands from standard input ([`super::parse_restore`]).
    Restore,
    /// `lbadm reload`: the daemon re-reads its configuration file.
    Reload,
    /// `-h`: print this to stdout, exit 0.
    Help(String),
    /// `-v`: print this to stdout, exit 0.
    Version(String),
}

/// 32 for IPv4, 128 for IPv6.
pub fn full_prefix(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Address and port equality without IPv6 flow label and scope id.
pub(super) fn same_address(a: SocketAddr, b: SocketAddr) -> bool {
    a.ip() == b.ip() && a.port() == b.port()
}

/// Serialises a [`Scheduler`] by its ipvsadm name (`"mh"`, `"wlc"`, ...).
mod scheduler_by_name {
    use lb_common::Scheduler;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(
        scheduler: &Scheduler,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(scheduler.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Scheduler, D::Error> {
        let name = String::deserialize(deserializer)?;
        Scheduler::from_name(&name)
            .ok_or_else(|| D::Error::custom(format!("unknown scheduler `{name}'")))
    }
}

/// Serialises a [`ForwardingMethod`] as `direct_routing`, `tunnel` or
/// `masquerade`.
mod forwarding_by_name {
    use lb_common::ForwardingMethod;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    const NAMES: [(ForwardingMethod, &str); 3] = [
        (ForwardingMethod::DirectRouting, "direct_routing"),
        (ForwardingMethod::Tunnel, "tunnel"),
        (ForwardingMethod::Masquerade, "masquerade"),
    ];

    pub fn serialize<S: Serializer>(
        method: &ForwardingMethod,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let (_, name) = NAMES
            .iter()
            .find(|(candidate, _)| candidate == method)
            .expect("every forwarding method has a name");
        serializer.serialize_str(name)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<ForwardingMethod, D::Error> {
        let name = String::deserialize(deserializer)?;
        NAMES
            .iter()
            .find(|(_, candidate)| *candidate == name)
            .map(|(method, _)| *method)
            .ok_or_else(|| D::Error::custom(format!("unknown forwarding method `{name}'")))
    }
}
