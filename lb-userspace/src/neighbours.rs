//! Next hops for direct routing: which interface reaches a real, and the
//! real's MAC on it.
//!
//! The daemon resolves these over rtnetlink instead of calling
//! `bpf_fib_lookup` per packet (see `lb-ebpf/src/forward/mod.rs` for why). To
//! keep them current without traffic from the host itself, each real gets a
//! *managed* neighbour entry (NTF_EXT_MANAGED, Linux 5.16+): the kernel then
//! resolves it and keeps re-confirming it on its own, so a real that changes
//! its MAC is picked up by the next refresh.
//!
//! Routes are the expensive half (one lookup per real) and change rarely:
//! they are looked up again only when the kernel announces a change to
//! something they depend on (see [`Resolver::refresh_routes`]), while the
//! neighbour table is read on every refresh; the answer is rebuilt only
//! when one of those changed (see [`Resolver::resolve_if_changed`]).

use std::{
    collections::{HashMap, hash_map::Entry},
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use futures_util::{StreamExt as _, TryStreamExt as _};
use netlink_packet_route::{
    link::LinkAttribute,
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourExtFlags, NeighbourState},
};
use rtnetlink::{Handle, MulticastGroup};
use tracing::warn;

use crate::tasks::AbortOnDrop;

mod lookup;
mod route;

use route::Route;
pub use route::Unresolved;

/// Where to send a frame for one real.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    pub ifindex: u32,
    /// The MAC of the real itself, or of the gateway towards it.
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    /// `Some` when the real is reached through a router: fine for TUN and
    /// NAT, not for DR (the frame keeps the VIP as its destination).
    pub gateway: Option<IpAddr>,
    /// MTU of the egress interface (TUN checks encapsulated sizes).
    pub mtu: u16,
    /// The kernel's preferred source address towards the real: TUN's
    /// default outer source.
    pub source: Option<IpAddr>,
}

/// What the daemon keeps per interface.
struct Link {
    mac: [u8; 6],
    mtu: u16,
}

pub type Resolution = Result<NextHop, Unresolved>;

/// Below this many addresses per core, [`Resolver::routes`] uses one socket:
/// a thread and a socket cost more than they save.
const ROUTE_LOOKUPS_WORTH_A_THREAD: usize = 4096;

/// The kernel's route to each real, as [`Resolver::routes`] found them.
#[derive(Default)]
pub struct Routes(HashMap<IpAddr, Result<Route, Unresolved>>);

/// What a route lookup's answer depends on, as rtnetlink groups: routes,
/// policy rules and nexthop objects of both families, addresses (their
/// local and prefix routes come and go with them) and links (up, down).
/// Neighbours are not among them: [`Resolver::next_hops`] reads the
/// neighbour table every time.
const ROUTE_INPUTS: [MulticastGroup; 8] = [
    MulticastGroup::Link,
    MulticastGroup::Ipv4Ifaddr,
    MulticastGroup::Ipv6Ifaddr,
    MulticastGroup::Ipv4Route,
    MulticastGroup::Ipv6Route,
    MulticastGroup::Ipv4Rule,
    MulticastGroup::Ipv6Rule,
    MulticastGroup::Nexthop,
];

/// How long route answers are trusted when the kernel announced nothing:
/// a safety net, not the way changes are noticed.
const ROUTE_RECHECK: Duration = Duration::from_secs(60);

/// Which reals the known routes were looked up for, and when.
struct LookedUp {
    reals: Vec<IpAddr>,
    at: Instant,
}

/// Listens to the kernel's announcements in [`ROUTE_INPUTS`]: a route
/// lookup per real every second kept a core nearly half busy for 100,000
/// reals, when routes change rarely and the kernel says when.
struct RouteWatch {
    /// Set by every announcement (and by a lost one: the kernel reports
    /// an overrun when the socket's buffer was full).
    changed: Arc<AtomicBool>,
    /// Cleared if the listening socket fails: every answer is stale then.
    listening: Arc<AtomicBool>,
    _tasks: [AbortOnDrop; 2],
}

impl RouteWatch {
    fn start() -> Result<Self> {
        let (connection, _, mut announcements) = rtnetlink::new_multicast_connection(&ROUTE_INPUTS)
            .context("subscribing to route changes")?;
        let changed = Arc::new(AtomicBool::new(true));
        let listening = Arc::new(AtomicBool::new(true));
        let listener = tokio::spawn({
            let (changed, listening) = (changed.clone(), listening.clone());
            async move {
                while announcements.next().await.is_some() {
                    changed.store(true, Ordering::Release);
                }
                warn!("stopped hearing about route changes: routes are looked up every time");
                listening.store(false, Ordering::Release);
            }
        });
        Ok(Self {
            changed,
            listening,
            _tasks: [AbortOnDrop(tokio::spawn(connection)), AbortOnDrop(listener)],
        })
    }

    /// Whether anything may have changed since the last call.
    fn take_change(&self) -> bool {
        self.changed.swap(false, Ordering::AcqRel) || !self.listening.load(Ordering::Acquire)
    }
}

pub struct Resolver {
    handle: Handle,
    /// Sockets (threads) large lookups are spread over.
    lookup_threads: usize,
    /// `None` if the kernel's announcements cannot be heard: routes are
    /// then looked up on every refresh.
    watch: Option<RouteWatch>,
    /// The answers of the last route lookups; `None` when they failed or
    /// none was made.
    looked_up: Option<LookedUp>,
    known_routes: Routes,
    /// Route lookups made so far, one per real.
    route_lookups: usize,
    /// What the last [`Self::next_hops`] answer was built from; `None`
    /// before the first, or after one that failed.
    hops_basis: Option<HopsBasis>,
}

/// The inputs of a next-hop answer besides the links (whose changes the
/// route watch hears, and which make routes be looked up again): the
/// routes, as of a count of lookups, and the neighbour entries the answer
/// read (`None`: absent). While neither changes, neither does the answer.
struct HopsBasis {
    route_lookups: usize,
    neighbours: HashMap<(u32, IpAddr), Option<NeighbourEntry>>,
}

impl Resolver {
    /// Opens netlink sockets in the current network namespace: one for
    /// requests, one that hears about route changes.
    pub fn new() -> Result<Self> {
        let watch = RouteWatch::start()
            .inspect_err(|error| warn!("{error:#}: routes are looked up every time"))
            .ok();
        Ok(Self {
            handle: connect()?,
            lookup_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            watch,
            looked_up: None,
            known_routes: Routes::default(),
            route_lookups: 0,
            hops_basis: None,
        })
    }

    /// Spreads large route lookups over at most `threads` sockets (default:
    /// one per core).
    pub fn lookup_threads(self, threads: usize) -> Self {
        Self {
            lookup_threads: threads.max(1),
            ..self
        }
    }

    /// Resolves every address, asking the kernel to start resolving the
    /// ones it does not know yet.
    pub async fn resolve(&mut self, reals: &[IpAddr]) -> Result<HashMap<IpAddr, Resolution>> {
        self.refresh_routes(reals).await?;
        self.next_hops().await
    }

    /// [`Self::resolve`], or `None` if it would give the same answer as the
    /// last next-hop lookup (which the caller holds): no routes looked up
    /// since, and the neighbour entries that answer read are as they were.
    /// With 100,000 reals, rebuilding and comparing the answer every second
    /// was most of what an idle lbd did.
    pub async fn resolve_if_changed(
        &mut self,
        reals: &[IpAddr],
    ) -> Result<Option<HashMap<IpAddr, Resolution>>> {
        self.refresh_routes(reals).await?;
        let neighbours = self.neighbours().await?;
        let unchanged = self.hops_basis.as_ref().is_some_and(|basis| {
            basis.route_lookups == self.route_lookups
                && basis
                    .neighbours
                    .iter()
                    .all(|(key, entry)| neighbours.get(key) == entry.as_ref())
        });
        if unchanged {
            return Ok(None);
        }
        self.next_hops_from(&neighbours).await.map(Some)
    }

    /// Makes [`Self::known_routes`] the kernel's routes to `reals`. They
    /// are looked up again only if the reals are not those of the last
    /// lookup, the kernel announced a change to something routes depend
    /// on since (or cannot be heard), or [`ROUTE_RECHECK`] has passed;
    /// otherwise the last answers stand.
    pub async fn refresh_routes(&mut self, reals: &[IpAddr]) -> Result<()> {
        // Taken before the lookups: a change announced while they run
        // makes the next refresh look up again.
        let changed = self.watch.as_ref().is_none_or(RouteWatch::take_change);
        let current = self.looked_up.as_ref().is_some_and(|last| {
            !changed && last.reals == reals && last.at.elapsed() < ROUTE_RECHECK
        });
        if current {
            return Ok(());
        }
        // Until the lookups succeed, the next refresh tries again.
        self.looked_up = None;
        let at = Instant::now();
        self.known_routes = self.routes(reals).await?;
        self.route_lookups += reals.len();
        self.looked_up = Some(LookedUp {
            reals: reals.to_vec(),
            at,
        });
        Ok(())
    }

    /// The routes of the last successful [`Self::refresh_routes`].
    pub fn known_routes(&self) -> &Routes {
        &self.known_routes
    }

    /// Route lookups made so far, one per real: refreshes that changed
    /// nothing add none.
    pub fn route_lookups(&self) -> usize {
        self.route_lookups
    }

    /// The kernel's route to every address: one lookup each, the expensive
    /// half of [`Self::resolve`].
    ///
    /// Sent in batches on a socket of a blocking thread (see `lookup.rs`).
    /// The kernel does a lookup's work in the thread that sends the request,
    /// so large sets are split between several sockets, each on a thread of
    /// its own (see [`Self::lookup_threads`]).
    async fn routes(&self, reals: &[IpAddr]) -> Result<Routes> {
        let sockets = (reals.len() / ROUTE_LOOKUPS_WORTH_A_THREAD).min(self.lookup_threads - 1) + 1;
        let lookups: Vec<_> = reals
            .chunks(reals.len().div_ceil(sockets).max(1))
            .map(|chunk| {
                let chunk = chunk.to_vec();
                tokio::task::spawn_blocking(move || lookup::routes(&chunk))
            })
            .collect();
        let mut routes = HashMap::with_capacity(reals.len());
        for lookup in lookups {
            routes.extend(lookup.await.context("route lookup thread")??);
        }
        Ok(Routes(routes))
    }

    /// The next hop of every routed real, from the neighbour table as it is
    /// now: the cheap half of [`Self::resolve`], to repeat while waiting
    /// for ARP/ND. Neighbours not yet managed become so, once each however
    /// many reals are behind them (typically all behind one gateway);
    /// static entries (permanent, or on links without ARP) are left as the
    /// administrator made them.
    pub async fn next_hops(&mut self) -> Result<HashMap<IpAddr, Resolution>> {
        let neighbours = self.neighbours().await?;
        self.next_hops_from(&neighbours).await
    }

    /// [`Self::next_hops`] from a neighbour table already read.
    async fn next_hops_from(
        &mut self,
        neighbours: &HashMap<(u32, IpAddr), NeighbourEntry>,
    ) -> Result<HashMap<IpAddr, Resolution>> {
        // Until this answer is complete, the next one is built afresh.
        self.hops_basis = None;
        let routes = &self.known_routes;
        let mut links: HashMap<u32, Link> = HashMap::new();
        let mut read: HashMap<(u32, IpAddr), Option<NeighbourEntry>> = HashMap::new();
        let mut out = HashMap::with_capacity(routes.0.len());
        for (&real, route) in &routes.0 {
            let route = match route {
                Ok(route) => route,
                Err(unresolved) => {
                    out.insert(real, Err(unresolved.clone()));
                    continue;
                }
            };
            // The frame goes to the gateway's MAC when there is one.
            let neighbour = (route.ifindex, route.gateway.unwrap_or(real));
            let entry = neighbours.get(&neighbour);
            // Once per neighbour, however many reals are behind it.
            if let Entry::Vacant(first) = read.entry(neighbour) {
                first.insert(entry.cloned());
                if !entry.is_some_and(|entry| entry.maintained) {
                    self.manage(neighbour.0, neighbour.1).await?;
                }
            }
            let resolution = match entry {
                Some(entry) if entry.usable => {
                    if let Entry::Vacant(slot) = links.entry(route.ifindex) {
                        slot.insert(self.link(route.ifindex).await?);
                    }
                    let link = &links[&route.ifindex];
                    Ok(NextHop {
                        ifindex: route.ifindex,
                        dst_mac: entry.mac,
                        src_mac: link.mac,
                        gateway: route.gateway,
                        mtu: link.mtu,
                        source: route.source,
                    })
                }
                _ => Err(Unresolved::Resolving),
            };
            out.insert(real, resolution);
        }
        self.hops_basis = Some(HopsBasis {
            route_lookups: self.route_lookups,
            neighbours: read,
        });
        Ok(out)
    }

    async fn neighbours(&self) -> Result<HashMap<(u32, IpAddr), NeighbourEntry>> {
        let mut dump = self.handle.neighbours().get().execute();
        let mut table = HashMap::new();
        while let Some(message) = dump.try_next().await? {
            let mut address = None;
            let mut mac = None;
            let mut managed = false;
            for attribute in &message.attributes {
                match attribute {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                        address = Some(IpAddr::V4(*v4))
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                        address = Some(IpAddr::V6(*v6))
                    }
                    NeighbourAttribute::LinkLayerAddress(bytes) if bytes.len() == 6 => {
                        let mut m = [0; 6];
                        m.copy_from_slice(bytes);
                        mac = Some(m);
                    }
                    NeighbourAttribute::ExtFlags(flags) => {
                        managed = flags.contains(NeighbourExtFlags::Managed)
                    }
                    _ => {}
                }
            }
            let Some(address) = address else { continue };
            let state = message.header.state;
            let usable = mac.is_some()
                && matches!(
                    state,
                    NeighbourState::Reachable
                        | NeighbourState::Stale
                        | NeighbourState::Delay
                        | NeighbourState::Probe
                        | NeighbourState::Permanent
                        | NeighbourState::Noarp
                );
            let fixed = matches!(state, NeighbourState::Permanent | NeighbourState::Noarp);
            table.insert(
                (message.header.ifindex, address),
                NeighbourEntry {
                    mac: mac.unwrap_or_default(),
                    usable,
                    maintained: managed || fixed,
                },
            );
        }
        Ok(table)
    }

    /// Turns the neighbour into a managed one; the kernel starts resolving
    /// it straight away and keeps it fresh from then on.
    async fn manage(&self, ifindex: u32, addr: IpAddr) -> Result<()> {
        let mut request = self
            .handle
            .neighbours()
            .add(ifindex, addr)
            .state(NeighbourState::None)
            .replace();
        request
            .message_mut()
            .attributes
            .push(NeighbourAttribute::ExtFlags(NeighbourExtFlags::Managed));
        request
            .execute()
            .await
            .with_context(|| format!("adding a managed neighbour entry for {addr}"))
    }

    async fn link(&self, ifindex: u32) -> Result<Link> {
        let mut links = self.handle.link().get().match_index(ifindex).execute();
        let mut mac = None;
        let mut mtu = 1500;
        while let Some(link) = links.try_next().await? {
            for attribute in &link.attributes {
                match attribute {
                    LinkAttribute::Address(bytes) if bytes.len() == 6 => {
                        let mut m = [0; 6];
                        m.copy_from_slice(bytes);
                        mac = Some(m);
                    }
                    LinkAttribute::Mtu(value) => mtu = (*value).min(u16::MAX as u32) as u16,
                    _ => {}
                }
            }
        }
        match mac {
            Some(mac) => Ok(Link { mac, mtu }),
            None => bail!("interface {ifindex} has no Ethernet address"),
        }
    }
}

/// A request socket in the current network namespace, its connection
/// driven by a task of the current runtime.
fn connect() -> Result<Handle> {
    let (connection, handle, _) =
        rtnetlink::new_connection().context("opening an rtnetlink socket")?;
    tokio::spawn(connection);
    Ok(handle)
}

#[derive(Clone, PartialEq, Eq)]
struct NeighbourEntry {
    mac: [u8; 6],
    usable: bool,
    /// Kept fresh by the kernel already: managed, or static (an
    /// administrator's permanent entry, or a link without ARP), which
    /// lbd must leave as it is.
    maintained: bool,
}
