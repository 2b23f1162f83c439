//! Loading the XDP object, adopting pinned maps, attaching to interfaces.
//!
//! Restarts must not disturb traffic, so everything that carries state lives
//! in bpffs, not in this process:
//! - `<pin>/maps/<NAME>`: every map. A new daemon opens these instead of
//!   creating fresh ones, so flows, tables and counters carry over.
//! - `<pin>/links/<ifname>`: the XDP bpf_link of each interface. The link
//!   outlives the process; a new daemon atomically swaps its own program in
//!   with `bpf_link_update`, so there is no moment without a program.
//!
//! [`batch`] reads whole hash maps (the flow table) a batch per syscall;
//! [`ring`] reads and writes the scheduling rows a row at a time.

pub mod batch;
pub mod bench;
pub mod ring;

use std::{
    ffi::CString,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, Map, MapData, PerCpuArray, xdp::DevMapHash},
    programs::{
        Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        xdp::XdpLink,
    },
};
use lb_common::{
    FloodGuard, FlowKey, FlowState, NatRealKey, NatReply, PersistKey, PersistState, Real,
    RealConns, Service, ServiceKey, Settings, TrafficCounters, VipInfo, VipKey, capacity, globals,
    names, programs,
};
use tracing::{info, warn};

use crate::config::DataplaneConfig;
use ring::{Access, Ring};

/// The compiled `lb-ebpf` object, built by this crate's build script.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lb"));

/// Sizes fixed when the maps are created (the YAML's `dataplane` section).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub maglev_table_size: u32,
    pub flow_table_entries: u32,
    /// Services that can be configured at once (ids `1..=max_services`).
    pub max_services: u32,
    /// Reals across all services (ids `1..=max_reals`).
    pub max_reals: u32,
}

impl Default for Geometry {
    /// The sizes the BPF object declares.
    fn default() -> Self {
        Self {
            maglev_table_size: capacity::DEFAULT_MAGLEV_TABLE_SIZE,
            flow_table_entries: capacity::DEFAULT_FLOW_TABLE_ENTRIES,
            max_services: capacity::MAX_SERVICES - 1,
            max_reals: capacity::MAX_REALS - 1,
        }
    }
}

impl Geometry {
    pub fn of(dataplane: &DataplaneConfig) -> Self {
        Self {
            maglev_table_size: dataplane.maglev_table_size,
            flow_table_entries: dataplane.flow_table_entries,
            max_services: dataplane.max_services,
            max_reals: dataplane.max_reals,
        }
    }

    /// Entries of the maps indexed by service id: id 0 means "none".
    pub fn service_entries(&self) -> u32 {
        self.max_services + 1
    }

    /// Entries of the maps indexed by real id: id 0 means "no real".
    pub fn real_entries(&self) -> u32 {
        self.max_reals + 1
    }

    /// Slots of the Maglev ring: a row of `maglev_table_size` per service id.
    /// Config validation keeps this within `u32`.
    pub fn maglev_entries(&self) -> u32 {
        self.service_entries() * self.maglev_table_size
    }
}

#[derive(Clone)]
pub struct PinLayout {
    pub root: PathBuf,
}

impl PinLayout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    pub fn maps_dir(&self) -> PathBuf {
        self.root.join("maps")
    }
    pub fn map(&self, name: &str) -> PathBuf {
        self.maps_dir().join(name)
    }
    pub fn links_dir(&self) -> PathBuf {
        self.root.join("links")
    }
    pub fn link(&self, interface: &str) -> PathBuf {
        self.links_dir().join(interface)
    }
}

/// Typed handles on every map of the data plane.
pub struct Maps {
    pub vips: HashMap<MapData, VipKey, VipInfo>,
    pub services: HashMap<MapData, ServiceKey, Service>,
    pub reals: Array<MapData, Real>,
    pub maglev: Array<MapData, u32>,
    pub flows: HashMap<MapData, FlowKey, FlowState>,
    pub tx_ports: DevMapHash<MapData>,
    pub global_stats: PerCpuArray<MapData, u64>,
    pub service_stats: PerCpuArray<MapData, TrafficCounters>,
    pub real_stats: PerCpuArray<MapData, TrafficCounters>,
    pub settings: Array<MapData, Settings>,
    pub nat_reals: HashMap<MapData, NatRealKey, u32>,
    pub nat_replies: HashMap<MapData, FlowKey, NatReply>,
    /// Connections per real id, for the least-connection schedulers (see
    /// `reaper::count_connections`).
    pub real_conns: Array<MapData, RealConns>,
    /// Persistence templates (an LRU hash, sized like the flow table).
    pub persist: HashMap<MapData, PersistKey, PersistState>,
    /// rr / wrr position per service id, per CPU.
    pub rr_cursor: PerCpuArray<MapData, u32>,
    /// Entry 0: the generation the data plane's flow cache slots must
    /// carry (see [`Maps::invalidate_flow_cache`]).
    pub flow_cache_generation: Array<MapData, u32>,
    /// Entry 0: how many new flows a second each CPU records.
    pub flood_guard: Array<MapData, FloodGuard>,
}

impl Maps {
    /// Builds the typed handles from `source`, which yields each map by name.
    fn from_source(mut source: impl FnMut(&str) -> Result<Map>) -> Result<Self> {
        Ok(Self {
            vips: source(names::VIPS)?.try_into()?,
            services: source(names::SERVICES)?.try_into()?,
            reals: source(names::REALS)?.try_into()?,
            maglev: source(names::MAGLEV)?.try_into()?,
            flows: source(names::FLOWS)?.try_into()?,
            tx_ports: source(names::TX_PORTS)?.try_into()?,
            global_stats: source(names::GLOBAL_STATS)?.try_into()?,
            service_stats: source(names::SERVICE_STATS)?.try_into()?,
            real_stats: source(names::REAL_STATS)?.try_into()?,
            settings: source(names::SETTINGS)?.try_into()?,
            nat_reals: source(names::NAT_REALS)?.try_into()?,
            nat_replies: source(names::NAT_REPLIES)?.try_into()?,
            real_conns: source(names::REAL_CONNS)?.try_into()?,
            persist: source(names::PERSIST)?.try_into()?,
            rr_cursor: source(names::RR_CURSOR)?.try_into()?,
            flow_cache_generation: source(names::FLOW_CACHE_GENERATION)?.try_into()?,
            flood_guard: source(names::FLOOD_GUARD)?.try_into()?,
        })
    }

    /// Makes every CPU's flow cache and NAT reply cache forget what they
    /// hold, so the next packet of each flow goes through the flow table
    /// and the services. Call it after changing anything a cached decision
    /// depends on other than the real's own entry: services, VIPs,
    /// settings, NAT reals (the NAT reply cache shares the generation), or
    /// a flow entry written from here (`lb_common::FlowCacheEntry`). The
    /// reaper needs none: it removes only flows idle past their timeout,
    /// and no slot answers for a flow idle over a second.
    pub fn invalidate_flow_cache(&mut self) -> Result<()> {
        let current = self.flow_cache_generation.get(&0, 0)?;
        self.flow_cache_generation
            .set(0, current.wrapping_add(1), 0)
            .context("bumping the flow cache generation")?;
        Ok(())
    }

    /// Takes the maps out of a freshly loaded object.
    fn take_from(ebpf: &mut Ebpf) -> Result<Self> {
        Self::from_source(|name| {
            ebpf.take_map(name)
                .with_context(|| format!("map {name} missing from the BPF object"))
        })
    }

    /// Opens the maps a running (or stopped) daemon pinned, for tools that
    /// only read or tweak them (`lbadm`).
    pub fn open_pinned(layout: &PinLayout) -> Result<Self> {
        Self::from_source(|name| {
            let path = layout.map(name);
            let data = MapData::from_pin(&path)
                .with_context(|| format!("opening {} (is lbd running?)", path.display()))?;
            Ok(Map::from_map_data(data)?)
        })
    }
}

/// The loaded program plus its maps.
pub struct Dataplane {
    ebpf: Ebpf,
    pub maps: Maps,
    /// True when the maps were adopted from a previous daemon.
    pub adopted: bool,
}

impl Dataplane {
    /// Loads the object. With `pins`, maps are adopted from bpffs when
    /// present (and pinned there when not); without, they are private to
    /// this process (tests).
    pub fn load(geometry: Geometry, pins: Option<&PinLayout>) -> Result<Self> {
        if OBJECT.is_empty() {
            bail!("this build has no BPF object (it was built with AYA_BUILD_SKIP)");
        }
        let mut adopted = false;
        let mut loader = EbpfLoader::new();
        loader
            .override_global(
                globals::MAGLEV_TABLE_SIZE,
                &geometry.maglev_table_size,
                true,
            )
            .map_max_entries(names::MAGLEV, geometry.maglev_entries())
            .map_max_entries(names::VIPS, geometry.service_entries())
            .map_max_entries(names::SERVICES, geometry.service_entries())
            .map_max_entries(names::SERVICE_STATS, geometry.service_entries())
            .map_max_entries(names::RR_CURSOR, geometry.service_entries())
            .map_max_entries(names::REALS, geometry.real_entries())
            .map_max_entries(names::REAL_STATS, geometry.real_entries())
            .map_max_entries(names::NAT_REALS, geometry.real_entries())
            .map_max_entries(names::REAL_CONNS, geometry.real_entries())
            .map_max_entries(names::FLOWS, geometry.flow_table_entries)
            .map_max_entries(names::NAT_REPLIES, geometry.flow_table_entries)
            .map_max_entries(names::PERSIST, geometry.flow_table_entries);
        let pin_paths: Vec<(&str, PathBuf)> = match pins {
            Some(layout) => {
                ensure_bpffs(&layout.root)?;
                fs::create_dir_all(layout.maps_dir())?;
                let paths: Vec<_> = names::ALL_PINNED
                    .iter()
                    .map(|name| (*name, layout.map(name)))
                    .collect();
                adopted = paths.iter().any(|(_, path)| path.exists());
                if adopted {
                    check_pinned_geometry(layout, geometry)?;
                }
                paths
            }
            None => Vec::new(),
        };
        for (name, path) in &pin_paths {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader.load(OBJECT).context("loading the BPF object")?;
        for name in [programs::BALANCER, programs::PASS, programs::DECAP] {
            verify(xdp_program(&mut ebpf, name)?, name)?;
        }
        let maps = Maps::take_from(&mut ebpf)?;
        log_ring_access(&maps.maglev, geometry)?;
        Ok(Self {
            ebpf,
            maps,
            adopted,
        })
    }

    pub fn program_mut(&mut self, name: &str) -> Result<&mut Xdp> {
        xdp_program(&mut self.ebpf, name)
    }

    /// Attaches the balancer to `interface`, or swaps it in for the program
    /// already behind the pinned link there. The link stays pinned, so the
    /// program keeps running after this process exits.
    pub fn attach_pinned(
        &mut self,
        layout: &PinLayout,
        interface: &str,
        mode: XdpMode,
    ) -> Result<()> {
        let ifindex = ifindex(interface)?;
        self.maps
            .tx_ports
            .insert(ifindex, ifindex, None, 0)
            .with_context(|| format!("adding {interface} to the redirect map"))?;
        let program = self.program_mut(programs::BALANCER)?;
        attach_program_pinned(program, layout, interface, mode)
    }
}

/// Attaches `program` to `interface` behind a pinned bpf_link, or swaps it
/// in behind the link a previous run pinned (`bpf_link_update`): there is no
/// moment without a program, and the link outlives this process.
pub fn attach_program_pinned(
    program: &mut Xdp,
    layout: &PinLayout,
    interface: &str,
    mode: XdpMode,
) -> Result<()> {
    let link_path = layout.link(interface);
    if link_path.exists() {
        match replace_behind_link(program, &link_path) {
            Ok(()) => {
                info!(interface, "replaced the program behind the pinned XDP link");
                return Ok(());
            }
            Err(error) => {
                // E.g. the interface was deleted and recreated: the old
                // link is defunct. Start over with a fresh one.
                warn!(interface, %error, "pinned XDP link unusable; attaching anew");
                fs::remove_file(&link_path)?;
            }
        }
    }
    let link_id = program
        .attach(interface, mode)
        .with_context(|| format!("attaching XDP to {interface} in {mode:?} mode"))?;
    let link = program.take_link(link_id)?;
    let fd_link: FdLink = link
        .try_into()
        .context("the kernel attached XDP without a bpf_link; cannot keep it across restarts")?;
    fs::create_dir_all(layout.links_dir())?;
    fd_link
        .pin(&link_path)
        .with_context(|| format!("pinning the XDP link at {}", link_path.display()))?;
    info!(interface, ?mode, "attached");
    Ok(())
}

fn replace_behind_link(program: &mut Xdp, link_path: &Path) -> Result<()> {
    let pinned = PinnedLink::from_pin(link_path)?;
    let fd_link: FdLink = pinned.into();
    let xdp_link = XdpLink::try_from(fd_link)?;
    let link_id = program.attach_to_link(xdp_link)?;
    // The pin keeps the link; dropping our handle must not detach it.
    let link = program.take_link(link_id)?;
    std::mem::forget(link);
    Ok(())
}

/// Unpins an interface's XDP link; with the last reference gone the kernel
/// detaches the program.
pub fn detach_pinned_link(path: &Path) -> Result<()> {
    match PinnedLink::from_pin(path) {
        Ok(link) => drop(link.unpin()?),
        Err(_) => fs::remove_file(path)?,
    }
    Ok(())
}

/// Detaches from every interface and removes all pins: the data plane stops.
pub fn teardown(layout: &PinLayout) -> Result<()> {
    if let Ok(entries) = fs::read_dir(layout.links_dir()) {
        for entry in entries {
            detach_pinned_link(&entry?.path())?;
        }
    }
    if layout.root.exists() {
        fs::remove_dir_all(&layout.root)
            .with_context(|| format!("removing {}", layout.root.display()))?;
    }
    Ok(())
}

/// Says how scheduling rows will be written: a ring pinned by an lbd from
/// before `BPF_F_MMAPABLE` is kept (forwarding depends on it) but is
/// written more slowly.
fn log_ring_access(maglev: &Array<MapData, u32>, geometry: Geometry) -> Result<()> {
    match Ring::new(maglev, geometry.maglev_table_size)?.access() {
        Access::Mapped => info!("scheduling rows are written through a shared mapping"),
        Access::Batched => warn!(
            "the pinned scheduling ring was created without BPF_F_MMAPABLE (by an older lbd): \
             rows are written with batch syscalls, which is slower; `lbd teardown` and a start \
             recreate it (that interrupts forwarding)"
        ),
    }
    Ok(())
}

/// Refuses to adopt maps whose sizes differ from what the config asks for:
/// a Maglev ring of another size would be read with the wrong stride, and
/// id-indexed maps of another size would refuse or strand ids.
fn check_pinned_geometry(layout: &PinLayout, geometry: Geometry) -> Result<()> {
    let wanted = [
        (
            names::MAGLEV,
            geometry.maglev_entries(),
            "maglev_table_size and max_services",
        ),
        (names::SERVICES, geometry.service_entries(), "max_services"),
        (names::REALS, geometry.real_entries(), "max_reals"),
    ];
    for (name, entries, settings) in wanted {
        let pinned = MapData::from_pin(layout.map(name))?.info()?.max_entries();
        if pinned != entries {
            bail!(
                "the pinned map {name} under {} holds {pinned} entries, but the config's {settings} \
                 ask for {entries}; run `lbd teardown` to start afresh",
                layout.root.display(),
            );
        }
    }
    Ok(())
}

/// Mounts bpffs at /sys/fs/bpf when it is missing: not mounted at boot on
/// some hosts, and `ip netns exec` gives a fresh /sys without it.
pub fn ensure_bpffs(pin_root: &Path) -> Result<()> {
    const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
    let mount_point = Path::new("/sys/fs/bpf");
    if !pin_root.starts_with(mount_point) {
        return Ok(());
    }
    let c_path = CString::new(mount_point.as_os_str().as_encoded_bytes())?;
    // SAFETY: statfs fills the zeroed struct; the path is NUL-terminated.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c_path.as_ptr(), &mut stat) } == 0 && stat.f_type == BPF_FS_MAGIC {
        return Ok(());
    }
    fs::create_dir_all(mount_point)?;
    let (source, fstype) = (c"bpf", c"bpf");
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            c_path.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        bail!(
            "mounting bpffs at /sys/fs/bpf: {}",
            std::io::Error::last_os_error()
        );
    }
    info!("mounted bpffs at /sys/fs/bpf");
    Ok(())
}

pub fn ifindex(interface: &str) -> Result<u32> {
    let c_name = CString::new(interface)?;
    // SAFETY: NUL-terminated name.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        bail!("no interface named {interface}");
    }
    Ok(index)
}

/// Resets one id's per-CPU traffic counters: a newly created service or
/// real starts from zero (an id may have been used before), and `-Z`.
pub fn zero_traffic(counters: &mut PerCpuArray<MapData, TrafficCounters>, id: u32) -> Result<()> {
    batch::zero_all(counters, &[id]).with_context(|| format!("zeroing the counters of id {id}"))
}

/// The XDP program `name` in `ebpf`.
pub fn xdp_program<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp> {
    Ok(ebpf
        .program_mut(name)
        .with_context(|| format!("program {name} missing"))?
        .try_into()?)
}

/// Loads (verifies) an XDP program. The kernel gives up verifying with
/// EAGAIN when a signal arrives meanwhile (the balancer takes ~100k
/// verifier steps; a busy test process gets SIGCHLDs), so like libbpf this
/// tries up to five times.
pub fn verify(program: &mut Xdp, name: &str) -> Result<()> {
    const ATTEMPTS: usize = 5;
    for attempt in 1..=ATTEMPTS {
        match program.load() {
            Err(aya::programs::ProgramError::LoadError { io_error, .. })
                if io_error.raw_os_error() == Some(libc::EAGAIN) && attempt < ATTEMPTS =>
            {
                warn!(
                    program = name,
                    attempt, "verification interrupted; retrying"
                );
            }
            result => return result.with_context(|| format!("verifying program {name}")),
        }
    }
    unreachable!("the last attempt returns")
}

/// Now, on the data plane's clock (CLOCK_MONOTONIC_COARSE, what
/// `bpf_ktime_get_coarse_ns` reads; see lb-ebpf's `clock.rs`): the
/// timestamps in flow, NAT and persistence entries are on it.
pub fn monotonic_now_ns() -> u64 {
    // SAFETY: clock_gettime writes the zeroed timespec.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
