//! `lbd decap`: the reals' half of TUN, for hosts without the `ipip` /
//! `ip6_tunnel` modules. Attaches `lb_decap` (see `lb-ebpf/src/decap.rs`)
//! to the interface tunnels arrive on and keeps `LB_DECAP_ADDRS`, the outer
//! destinations it strips tunnels for, equal to this host's addresses.
//!
//! Which addresses: every IPv4/IPv6 address of the host, on any interface
//! (the balancer tunnels to the real's configured address, which may live
//! on another interface than the one the packet comes in on), except
//! - everything on loopback interfaces: 127/8 and ::1 are never a tunnel's
//!   destination, and the VIPs on `lo` must not be either. The balancer
//!   addresses the outer header to the real, never to the VIP; a VIP is
//!   shared with every other real and the balancers, so opening tunnels
//!   aimed at it would strip traffic that was never sent to this host;
//! - link-local addresses: not routable, so a balancer cannot reach them
//!   through a tunnel, and IPv6 gives every interface one, which would
//!   crowd the map.
//!
//! The map holds [`capacity::MAX_DECAP_ADDRS`] entries; the addresses of
//! the attached interface go in first, and anything left out is logged.
//!
//! Like `lbd`, the state lives in bpffs, one directory per interface under
//! the pin path (`<pin>/<IF>/maps/*`, `<pin>/<IF>/links/<IF>`), so several
//! interfaces can run their own instance and a restarted `lbd decap` adopts
//! the address map and swaps its program in behind the pinned link: tunnels
//! keep being stripped while it restarts. `--teardown` detaches it.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap, MapData, PerCpuArray},
    programs::{Xdp, XdpMode},
};
use futures_util::TryStreamExt as _;
use lb_common::{Addr, Family, GlobalCounter, VipKey, capacity, names, programs};
use netlink_packet_route::{address::AddressAttribute, link::LinkFlags};
use rtnetlink::Handle;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

use crate::dataplane::{self, OBJECT, PinLayout, attach_program_pinned, ensure_bpffs, ifindex};

pub const DEFAULT_PIN_PATH: &str = "/sys/fs/bpf/lb-decap";

/// How often the host's addresses are re-read: bounds how long a new
/// address goes without decapsulation (or a removed one keeps it).
const ADDRESS_REFRESH: Duration = Duration::from_secs(1);

/// The maps `lb_decap` uses, pinned so a restart adopts them (addresses,
/// and the `decapsulated` counter).
const PINNED_MAPS: [&str; 2] = [names::DECAP_ADDRS, names::GLOBAL_STATS];

/// `lbd decap`'s command line.
#[derive(clap::Args, Clone, Debug)]
pub struct DecapArgs {
    /// The interface tunnelled traffic arrives on.
    #[arg(long)]
    pub interface: String,
    /// bpffs directory for the pinned link and maps; each interface gets a
    /// subdirectory of its own.
    #[arg(long, default_value = DEFAULT_PIN_PATH)]
    pub pin_path: PathBuf,
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    pub xdp_mode: Mode,
    /// Detach from the interface, remove its pins and exit.
    #[arg(long)]
    pub teardown: bool,
}

/// How the program is attached, as in `lb.yaml`'s `xdp_mode`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Native if the driver supports it, else generic (skb).
    Auto,
    /// In the driver; fails where the driver has no XDP support.
    Native,
    /// Generic XDP in the stack: works on any interface, costs more.
    Skb,
}

impl From<Mode> for XdpMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Auto => XdpMode::Default,
            Mode::Native => XdpMode::Driver,
            Mode::Skb => XdpMode::Skb,
        }
    }
}

/// Where one interface's decap state lives.
pub fn layout(pin_path: &Path, interface: &str) -> PinLayout {
    PinLayout::new(pin_path.join(interface))
}

/// Runs `lbd decap`: until SIGTERM/SIGINT, or the teardown and exit.
pub fn command(args: DecapArgs) -> Result<()> {
    if args.teardown {
        return teardown(&args.pin_path, &args.interface);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(&args))
}

/// The loaded `lb_decap` and the two maps it uses.
pub struct Decap {
    ebpf: Ebpf,
    /// Outer destinations to strip tunnels for -> the ifindex holding the
    /// address (informational: the data plane only tests membership).
    pub addresses: HashMap<MapData, VipKey, u32>,
    pub global_stats: PerCpuArray<MapData, u64>,
}

impl Decap {
    /// Loads the object with only `lb_decap` verified. The balancer's maps
    /// are created anyway (a BPF object is loaded whole) but shrunk to one
    /// entry: the Maglev ring and flow tables would otherwise cost a real
    /// server tens of MiB for nothing. With `pins`, the maps `lb_decap` uses
    /// are adopted from bpffs (or pinned there); without, all are private.
    pub fn load(pins: Option<&PinLayout>) -> Result<Self> {
        if OBJECT.is_empty() {
            bail!("this build has no BPF object (it was built with AYA_BUILD_SKIP)");
        }
        let mut loader = EbpfLoader::new();
        for name in names::ALL_PINNED {
            if !PINNED_MAPS.contains(&name) {
                loader.map_max_entries(name, 1);
            }
        }
        loader.map_max_entries(names::FLOW_CACHE, 1);
        if let Some(layout) = pins {
            ensure_bpffs(&layout.root)?;
            fs::create_dir_all(layout.maps_dir())
                .with_context(|| format!("creating {}", layout.maps_dir().display()))?;
            for name in PINNED_MAPS {
                loader.map_pin_path(name, layout.map(name));
            }
        }
        let mut ebpf = loader.load(OBJECT).context("loading the BPF object")?;
        dataplane::verify(
            dataplane::xdp_program(&mut ebpf, programs::DECAP)?,
            programs::DECAP,
        )?;
        let mut take = |name: &str| {
            ebpf.take_map(name)
                .with_context(|| format!("map {name} missing from the BPF object"))
        };
        let addresses = take(names::DECAP_ADDRS)?.try_into()?;
        let global_stats = take(names::GLOBAL_STATS)?.try_into()?;
        Ok(Self {
            ebpf,
            addresses,
            global_stats,
        })
    }

    pub fn program_mut(&mut self) -> Result<&mut Xdp> {
        Ok(self
            .ebpf
            .program_mut(programs::DECAP)
            .with_context(|| format!("program {} missing", programs::DECAP))?
            .try_into()?)
    }

    /// Makes the address map hold exactly `wanted` (address -> ifindex).
    /// Removes first, so a full map has room for the newcomers.
    pub fn sync_addresses(&mut self, wanted: &BTreeMap<IpAddr, u32>) -> Result<AddressChanges> {
        let keys = self
            .addresses
            .keys()
            .collect::<Result<Vec<_>, _>>()
            .context("reading the decap address map")?;
        let mut present = BTreeMap::new();
        for key in keys {
            let value = self.addresses.get(&key, 0).unwrap_or(0);
            if let Some(family) = Family::from_u8(key.family) {
                present.insert(key.addr.to_ip(family), (key, value));
            } else {
                // Not a key this program writes: nothing could match it.
                self.addresses.remove(&key)?;
            }
        }
        let mut changes = AddressChanges::default();
        for (ip, (key, _)) in &present {
            if !wanted.contains_key(ip) {
                self.addresses
                    .remove(key)
                    .with_context(|| format!("removing {ip}"))?;
                changes.removed.push(*ip);
            }
        }
        for (ip, ifindex) in wanted {
            match present.get(ip) {
                Some((_, value)) if value == ifindex => continue,
                Some(_) => {}
                None => changes.added.push(*ip),
            }
            self.addresses
                .insert(key_of(*ip), ifindex, 0)
                .with_context(|| format!("adding {ip}"))?;
        }
        Ok(changes)
    }

    /// The `decapsulated` counter, summed over the CPUs.
    pub fn decapsulated(&self) -> Result<u64> {
        let values = self
            .global_stats
            .get(&(GlobalCounter::Decapsulated as u32), 0)?;
        Ok(values.iter().sum())
    }
}

/// What [`Decap::sync_addresses`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AddressChanges {
    pub added: Vec<IpAddr>,
    pub removed: Vec<IpAddr>,
}

fn key_of(ip: IpAddr) -> VipKey {
    VipKey {
        addr: Addr::from(ip),
        family: Family::of(&ip) as u8,
        _pad: [0; 3],
    }
}

/// One address configured on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostAddress {
    pub ifindex: u32,
    pub ip: IpAddr,
}

/// Every address configured on the host, and the loopback interfaces.
pub async fn host_addresses(handle: &Handle) -> Result<(Vec<HostAddress>, BTreeSet<u32>)> {
    let mut loopbacks = BTreeSet::new();
    let mut links = handle.link().get().execute();
    while let Some(link) = links.try_next().await? {
        if link.header.flags.contains(LinkFlags::Loopback) {
            loopbacks.insert(link.header.index);
        }
    }
    let mut addresses = Vec::new();
    let mut dump = handle.address().get().execute();
    while let Some(message) = dump.try_next().await? {
        // IFA_LOCAL is the host's own address; IFA_ADDRESS is the peer's on
        // a point-to-point link, and the only one IPv6 usually sends.
        let (mut local, mut address) = (None, None);
        for attribute in &message.attributes {
            match attribute {
                AddressAttribute::Local(ip) => local = Some(*ip),
                AddressAttribute::Address(ip) => address = Some(*ip),
                _ => {}
            }
        }
        if let Some(ip) = local.or(address) {
            addresses.push(HostAddress {
                ifindex: message.header.index,
                ip,
            });
        }
    }
    Ok((addresses, loopbacks))
}

/// The addresses to decapsulate for (see the module docs for the choice),
/// at most `capacity`, those of `preferred` (the attached interface) first;
/// also returns how many did not fit.
pub fn decap_addresses(
    host: &[HostAddress],
    loopbacks: &BTreeSet<u32>,
    preferred: u32,
    capacity: usize,
) -> (BTreeMap<IpAddr, u32>, usize) {
    let mut candidates: Vec<HostAddress> = host
        .iter()
        .filter(|a| !loopbacks.contains(&a.ifindex) && is_tunnel_destination(&a.ip))
        .copied()
        .collect();
    // Deterministic: the preferred interface, then by interface and address.
    candidates.sort_by_key(|a| (a.ifindex != preferred, a.ifindex, a.ip));
    let mut chosen = BTreeMap::new();
    let mut left_out = 0;
    for candidate in candidates {
        if chosen.contains_key(&candidate.ip) {
            continue; // the same address on two interfaces: first one wins
        }
        if chosen.len() == capacity {
            left_out += 1;
            continue;
        }
        chosen.insert(candidate.ip, candidate.ifindex);
    }
    (chosen, left_out)
}

/// Could a balancer address a tunnel to this address?
fn is_tunnel_destination(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_loopback() || v4.is_link_local() || v4.is_unspecified()),
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unicast_link_local()
                || v6.is_unspecified()
                || v6.is_multicast())
        }
    }
}

/// Re-reads the host's addresses and writes the difference to the map.
async fn refresh(decap: &mut Decap, handle: &Handle, interface: &str, ifindex: u32) -> Result<()> {
    let (host, loopbacks) = host_addresses(handle).await?;
    let capacity = capacity::MAX_DECAP_ADDRS as usize;
    let (wanted, left_out) = decap_addresses(&host, &loopbacks, ifindex, capacity);
    if left_out > 0 {
        warn!(
            left_out,
            capacity,
            "more addresses than the decap map holds; tunnels to the others pass as they came"
        );
    }
    let changes = decap.sync_addresses(&wanted)?;
    for ip in &changes.added {
        info!(interface, address = %ip, "decapsulating tunnels to this address");
    }
    for ip in &changes.removed {
        info!(interface, address = %ip, "address gone; no longer decapsulating for it");
    }
    Ok(())
}

/// Loads (adopting pinned state), fills the address map, attaches, then
/// follows address changes until SIGTERM or SIGINT. The program stays
/// attached after this returns.
pub async fn run(args: &DecapArgs) -> Result<()> {
    let interface = args.interface.as_str();
    let ifindex = ifindex(interface)?;
    let layout = layout(&args.pin_path, interface);
    let mut decap = Decap::load(Some(&layout))?;
    let (connection, handle, _) =
        rtnetlink::new_connection().context("opening an rtnetlink socket")?;
    tokio::spawn(connection);
    // Addresses before the attach: a fresh program must not start with an
    // empty map (an adopted one already holds the previous run's view).
    refresh(&mut decap, &handle, interface, ifindex).await?;
    // Behind a pinned bpf_link, or swapped in behind the one a previous run
    // pinned.
    attach_program_pinned(
        decap.program_mut()?,
        &layout,
        interface,
        args.xdp_mode.into(),
    )?;
    info!(
        interface,
        addresses = decap.addresses.keys().count(),
        pins = %layout.root.display(),
        "ready"
    );

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(ADDRESS_REFRESH);
    loop {
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = tick.tick() => {
                if let Err(error) = refresh(&mut decap, &handle, interface, ifindex).await {
                    warn!("address refresh failed: {error:#}");
                }
            }
        }
    }
    info!(
        interface,
        decapsulated = decap.decapsulated().unwrap_or_default(),
        "stopping; lb_decap stays attached with the addresses it has \
         (`lbd decap --interface {interface} --teardown` detaches it)"
    );
    Ok(())
}

/// Detaches `lb_decap` from `interface` and removes its pins (and the pin
/// directory once no interface is left in it).
pub fn teardown(pin_path: &Path, interface: &str) -> Result<()> {
    let layout = layout(pin_path, interface);
    if !layout.root.exists() {
        info!(interface, pins = %layout.root.display(), "nothing pinned; nothing to tear down");
        return Ok(());
    }
    dataplane::teardown(&layout)?;
    // Fails (and may) while other interfaces still have state there.
    let _ = fs::remove_dir(pin_path);
    info!(interface, "detached lb_decap and removed its pins");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ifindex: u32, ip: &str) -> HostAddress {
        HostAddress {
            ifindex,
            ip: ip.parse().unwrap(),
        }
    }

    fn ips(chosen: &BTreeMap<IpAddr, u32>) -> Vec<String> {
        chosen.keys().map(ToString::to_string).collect()
    }

    #[test]
    fn loopback_interfaces_and_link_local_addresses_are_left_out() {
        let host = [
            at(1, "127.0.0.1"),
            at(1, "::1"),
            at(1, "198.18.1.10"), // a VIP on lo
            at(1, "fd00:18:1::10"),
            at(2, "198.18.0.11"),
            at(2, "fd00:18::11"),
            at(2, "fe80::1"),
            at(2, "169.254.3.4"),
            at(3, "198.19.0.11"), // another interface: kept
        ];
        let (chosen, left_out) = decap_addresses(&host, &BTreeSet::from([1]), 2, 64);
        assert_eq!(
            ips(&chosen),
            ["198.18.0.11", "198.19.0.11", "fd00:18::11"],
            "{chosen:?}"
        );
        assert_eq!((chosen[&"198.19.0.11".parse().unwrap()], left_out), (3, 0));
    }

    #[test]
    fn the_attached_interface_goes_first_when_the_map_is_full() {
        let host = [
            at(2, "198.18.0.2"),
            at(3, "198.18.0.3"),
            at(4, "198.18.0.4"),
            at(4, "198.18.0.44"),
        ];
        let (chosen, left_out) = decap_addresses(&host, &BTreeSet::new(), 4, 3);
        assert_eq!(ips(&chosen), ["198.18.0.2", "198.18.0.4", "198.18.0.44"]);
        assert_eq!(left_out, 1);
    }

    #[test]
    fn an_address_on_two_interfaces_is_counted_once() {
        let host = [at(3, "198.18.0.9"), at(2, "198.18.0.9")];
        let (chosen, left_out) = decap_addresses(&host, &BTreeSet::new(), 3, 64);
        assert_eq!(chosen, BTreeMap::from([("198.18.0.9".parse().unwrap(), 3)]));
        assert_eq!(left_out, 0);
    }
}
