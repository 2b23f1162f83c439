//! The packet benchmarks' rig: three namespaces in a line, no bridges, so
//! nothing but the program under test sits between generator and sink.
//!
//! ```text
//!  cl eth0 ---- eth0 lb eth1 ---- eth0 sink
//!  .0.100       .0.1    .2.1      .2.254
//! ```
//! `cl` is the clients' side; DR reals (198.18.0.11-12) are on its segment,
//! so DR frames come back to it. TUN and NAT reals (198.18.2.11-12) are on
//! the sink's segment. The reals are extra addresses of the cl and sink
//! hosts, which answer ARP and neighbour discovery for them (lbd resolves
//! reals' MACs as in production); `lb_sink` on both ends drops and counts
//! everything else that arrives. IPv6 mirrors it in fd00:18::/64
//! and fd00:18:2::/64.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    process::Command,
};

use anyhow::{Context as _, Result};
use lb_common::{GlobalCounter, REAL_ACTIVE, REAL_NEXT_HOP_KNOWN, bench};
pub use lb_tests::rig::Mode;
use lb_tests::{
    lbd::Lbd,
    netns::{Netns, unique_prefix, veth_pair},
};
use lb_userspace::dataplane::{self, Maps, PinLayout, bench::BenchPrograms};

use super::stats::program_behind_link;

pub const SERVICE_PORT: u16 = 80;
pub const CLIENT_HOST: u8 = 100;
/// Two reals per service: (tcp, udp) x (IPv4, IPv6) x (DR, TUN, NAT).
const CONFIGURED_REALS: usize = 2 * 2 * 2 * 3;

/// Each mode has its own VIP: 198.18.1.10 + n, fd00:18:1::10 + n.
fn vip_host(mode: Mode) -> u8 {
    match mode {
        Mode::Dr => 0x10,
        Mode::Tun => 0x11,
        Mode::Nat => 0x12,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const BOTH: [Family; 2] = [Family::V4, Family::V6];

    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    pub fn address(self, segment: u8, host: u8) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::new(198, 18, segment, host)),
            Family::V6 => IpAddr::V6(Ipv6Addr::new(
                0xfd00,
                0x18,
                u16::from(segment),
                0,
                0,
                0,
                0,
                u16::from(host),
            )),
        }
    }

    fn prefix_len(self) -> u8 {
        match self {
            Family::V4 => 24,
            Family::V6 => 64,
        }
    }

    pub fn vip(self, mode: Mode) -> IpAddr {
        self.address(1, vip_host(mode))
    }

    pub fn client(self) -> IpAddr {
        self.address(0, CLIENT_HOST)
    }

    pub fn reals(self, mode: Mode) -> [IpAddr; 2] {
        [11, 12].map(|host| self.address(mode.real_segment(), host))
    }
}

pub struct XdpRig {
    pub clients: Netns,
    pub lb: Netns,
    pub sink: Netns,
    pub client_mac: [u8; 6],
    pub sink_mac: [u8; 6],
    pub lb_mac: [u8; 6],
    pub lb_inner_mac: [u8; 6],
    pub pins: PinLayout,
    workdir: PathBuf,
    lbd: Option<Lbd>,
    /// `lb_sink` on the clients and sink ends (veth drops XDP_TX'd or
    /// redirected frames unless the receiving peer runs XDP).
    _sinks: Vec<BenchPrograms>,
}

impl XdpRig {
    pub fn build() -> Result<Self> {
        dataplane::ensure_bpffs(std::path::Path::new("/sys/fs/bpf/"))?;
        let prefix = unique_prefix();
        let workdir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&workdir)?;
        let clients = Netns::create(&format!("{prefix}-cl"))?;
        let lb = Netns::create(&format!("{prefix}-lb"))?;
        let sink = Netns::create(&format!("{prefix}-sink"))?;
        pair(&clients, "eth0", 0, CLIENT_HOST, &lb, "eth0", 0, 1)?;
        pair(&lb, "eth1", 2, 1, &sink, "eth0", 2, 254)?;
        lb.sysctl("net.ipv4.ip_forward", "1")?;
        lb.sysctl("net.ipv6.conf.all.forwarding", "1")?;
        for family in Family::BOTH {
            for (host, mode) in [(&clients, Mode::Dr), (&sink, Mode::Nat)] {
                for real in family.reals(mode) {
                    let address = format!("{real}/{}", family.prefix_len());
                    host.ip(&["addr", "add", &address, "dev", "eth0", "nodad"])?;
                }
            }
        }
        let sinks = vec![
            attach_bench_program(&clients, "eth0", bench::programs::SINK)?,
            attach_bench_program(&sink, "eth0", bench::programs::SINK)?,
        ];
        Ok(Self {
            lb_mac: mac_of(&lb, "eth0")?,
            lb_inner_mac: mac_of(&lb, "eth1")?,
            client_mac: mac_of(&clients, "eth0")?,
            sink_mac: mac_of(&sink, "eth0")?,
            clients,
            lb,
            sink,
            pins: PinLayout::new(format!("/sys/fs/bpf/{prefix}")),
            workdir,
            lbd: None,
            _sinks: sinks,
        })
    }

    /// lbd with one TCP and one UDP service per mode and family, two reals
    /// each, and a flow table of `flow_table_entries`; `flood_guard` sets
    /// `flood_guard.new_flows_per_second`, `None` leaves lbd's default.
    pub fn start_lbd(&mut self, flow_table_entries: u32, flood_guard: Option<u32>) -> Result<()> {
        let config = self.workdir.join("lb.yaml");
        std::fs::write(&config, self.config(flow_table_entries, flood_guard))?;
        let log = self.workdir.join("lbd.log");
        let mut lbd = Lbd::start(&self.lb, &config, &log)?;
        lbd.wait_ready()?;
        self.lbd = Some(lbd);
        self.wait_for_next_hops()
    }

    /// Until every real's MAC is known its packets would be dropped.
    fn wait_for_next_hops(&self) -> Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let maps = Maps::open_pinned(&self.pins)?;
            let mut known = 0;
            for entry in maps.reals.iter() {
                let real = entry?;
                known += usize::from(
                    real.flags & REAL_ACTIVE != 0 && real.flags & REAL_NEXT_HOP_KNOWN != 0,
                );
            }
            if known == CONFIGURED_REALS {
                return Ok(());
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "only {known} of {CONFIGURED_REALS} reals have a next hop after 10 s:\n{}",
                self.lbd_log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Stops lbd and detaches the balancer (the kernel path gets the
    /// packets again).
    pub fn stop_lbd(&mut self) -> Result<()> {
        if let Some(lbd) = self.lbd.take() {
            lbd.stop()?;
        }
        dataplane::teardown(&self.pins)
    }

    pub fn lbd_log(&self) -> String {
        std::fs::read_to_string(self.workdir.join("lbd.log")).unwrap_or_default()
    }

    /// The balancer's non-zero global counters, to explain a failure.
    pub fn global_counters(&self) -> String {
        let Ok(maps) = Maps::open_pinned(&self.pins) else {
            return "(no pinned maps)".to_owned();
        };
        GlobalCounter::ALL
            .iter()
            .filter_map(|&counter| {
                let total = total(&maps, counter).ok()?;
                (total > 0).then(|| format!("{counter:?} {total}"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Global counters of the running lbd's data plane, over all CPUs.
    pub fn counters<const N: usize>(&self, counters: [GlobalCounter; N]) -> Result<[u64; N]> {
        let maps = Maps::open_pinned(&self.pins)?;
        let mut totals = [0; N];
        for (total_of, counter) in totals.iter_mut().zip(counters) {
            *total_of = total(&maps, counter)?;
        }
        Ok(totals)
    }

    pub fn balancer_program_id(&self) -> Result<u32> {
        program_behind_link(&self.pins.link("eth0"))
    }

    fn config(&self, flow_table_entries: u32, flood_guard: Option<u32>) -> String {
        let mut services = String::new();
        for mode in Mode::ALL {
            for family in Family::BOTH {
                for protocol in ["tcp", "udp"] {
                    services.push_str(&format!(
                        "  - {{ name: {}{}{protocol}, vip: \"{}\", port: {SERVICE_PORT}, protocol: {protocol}, forwarding: {}, reals: [",
                        mode.keyword(),
                        family.name(),
                        family.vip(mode),
                        mode.keyword(),
                    ));
                    let reals: Vec<String> = family
                        .reals(mode)
                        .iter()
                        .map(|real| {
                            format!(
                                "{{ address: \"{real}\", port: {} }}",
                                mode.real_port(SERVICE_PORT)
                            )
                        })
                        .collect();
                    services.push_str(&reals.join(", "));
                    services.push_str("] }\n");
                }
            }
        }
        let flood_guard = flood_guard
            .map(|limit| format!("flood_guard: {{ new_flows_per_second: {limit} }}\n"))
            .unwrap_or_default();
        format!(
            "interfaces:\n  - {{ name: eth0, xdp_mode: native }}\n  - {{ name: eth1, xdp_mode: native }}\n\
             pin_path: {}\ncontrol: {{ socket: {} }}\n\
             dataplane: {{ flow_table_entries: {flow_table_entries} }}\n\
             {flood_guard}services:\n{services}",
            self.pins.root.display(),
            self.workdir.join("lbd.sock").display()
        )
    }
}

/// The two ends of the rig, each with a generator and a counting sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Clients, and the DR reals on their segment.
    Clients,
    /// TUN and NAT reals.
    Reals,
}

impl XdpRig {
    pub fn side(&self, side: Side) -> &Netns {
        match side {
            Side::Clients => &self.clients,
            Side::Reals => &self.sink,
        }
    }
}

impl Drop for XdpRig {
    fn drop(&mut self) {
        let _ = self.stop_lbd();
        let _ = std::fs::remove_dir_all(&self.workdir);
    }
}

/// A veth pair between two namespaces, addressed on `segment` in both
/// families.
#[allow(clippy::too_many_arguments)]
fn pair(
    left: &Netns,
    left_name: &str,
    segment: u8,
    left_host: u8,
    right: &Netns,
    right_name: &str,
    right_segment: u8,
    right_host: u8,
) -> Result<()> {
    veth_pair(left, left_name, right, right_name)?;
    for (netns, name, segment, host) in [
        (left, left_name, segment, left_host),
        (right, right_name, right_segment, right_host),
    ] {
        for family in Family::BOTH {
            let address = format!("{}/{}", family.address(segment, host), family.prefix_len());
            netns.ip(&["addr", "add", &address, "dev", name, "nodad"])?;
        }
        netns.ip(&["link", "set", name, "up"])?;
    }
    Ok(())
}

pub fn mac_of(netns: &Netns, interface: &str) -> Result<[u8; 6]> {
    let output = Command::new("ip")
        .args(["-n", &netns.name, "-j", "link", "show", "dev", interface])
        .output()?;
    anyhow::ensure!(output.status.success(), "ip link show {interface} failed");
    let links: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let text = links[0]["address"]
        .as_str()
        .with_context(|| format!("{interface} has no MAC"))?;
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(text.split(':')) {
        *byte = u8::from_str_radix(part, 16)?;
    }
    Ok(mac)
}

/// One of the balancer's global counters, summed over the CPUs.
pub fn total(maps: &Maps, counter: GlobalCounter) -> Result<u64> {
    Ok(maps.global_stats.get(&(counter as u32), 0)?.iter().sum())
}

/// Loads a private copy of the benchmark's programs in `netns` and
/// attaches its `program` to `interface` in native mode; detached when
/// dropped.
pub fn attach_bench_program(
    netns: &Netns,
    interface: &str,
    program: &str,
) -> Result<BenchPrograms> {
    netns.enter(|| {
        let mut programs = BenchPrograms::load()?;
        programs
            .program_mut(program)?
            .attach(interface, aya::programs::XdpMode::Driver)
            .with_context(|| format!("attaching {program} to {interface}"))?;
        Ok(programs)
    })
}
