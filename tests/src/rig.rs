//! Test rigs for each forwarding mode: a client, the balancer and N real
//! servers in network namespaces, joined by bridges in "switch" namespaces.
//!
//! ```text
//!  DR:   client .100, balancer .1, reals .11.. all on segment A
//!  TUN:  client, balancer on A; router .254 (A) / .254 (B); reals .11.. on B,
//!        default route via the router, tunnels stripped by `lbd decap`
//!  NAT:  client, balancer eth0 on A; balancer eth1 .1 on B; reals .11.. on B,
//!        default route via the balancer; reals listen on other ports
//! ```
//! Segment A: 198.18.0.0/24, fd00:18::/64. Segment B: 198.18.2.0/24,
//! fd00:18:2::/64. VIPs 198.18.1.10 and fd00:18:1::10, routed by the client
//! via the balancer; DR and TUN reals hold them on `lo`.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use anyhow::{Context as _, Result};
use lb_common::programs;
use lb_userspace::dataplane::{self, Dataplane, Geometry, PinLayout};

use crate::{
    lbd::Lbd,
    netns::{Netns, unique_prefix},
    traffic::{self, Behaviour, Server, UdpServer},
};

pub const VIP4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x18, 0x1, 0, 0, 0, 0, 0x10);
/// Service ports, the same in every mode.
pub const HTTP_PORT: u16 = 80;
pub const ECHO_PORT: u16 = 8080;
pub const UDP_PORT: u16 = 53;
/// The services a rig's config offers by default: (name, port, protocol).
pub const SERVICES: [(&str, u16, &str); 3] = [
    ("web", HTTP_PORT, "tcp"),
    ("echo", ECHO_PORT, "tcp"),
    ("dns", UDP_PORT, "udp"),
];
const BALANCER_HOST: u8 = 1;
const CLIENT_HOST: u8 = 100;
const ROUTER_HOST: u8 = 254;
const FIRST_REAL_HOST: u8 = 11;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Dr,
    Tun,
    Nat,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Dr, Mode::Tun, Mode::Nat];

    /// As people write it ("DR").
    pub fn name(self) -> &'static str {
        match self {
            Mode::Dr => "DR",
            Mode::Tun => "TUN",
            Mode::Nat => "NAT",
        }
    }

    /// As the configuration writes it (`forwarding: dr`).
    pub fn keyword(self) -> &'static str {
        match self {
            Mode::Dr => "dr",
            Mode::Tun => "tun",
            Mode::Nat => "nat",
        }
    }

    /// The port a real listens on for a service port: NAT reals use other
    /// ports, to prove the balancer rewrites them.
    pub fn real_port(self, service_port: u16) -> u16 {
        match (self, service_port) {
            (Mode::Nat, HTTP_PORT) => 8000,
            (Mode::Nat, ECHO_PORT) => 9000,
            (Mode::Nat, UDP_PORT) => 5353,
            _ => service_port,
        }
    }

    /// The segment the mode's reals are on (0: the client's).
    pub fn real_segment(self) -> u8 {
        match self {
            Mode::Dr => 0,
            Mode::Tun | Mode::Nat => 2,
        }
    }
}

fn v4(segment: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, segment, host)
}

fn v6(segment: u8, host: u8) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x18, segment as u16, 0, 0, 0, 0, host as u16)
}

pub struct RealHost {
    pub name: String,
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
    pub weight: u32,
    _servers: Vec<Server>,
    _udp: Vec<UdpServer>,
    /// `lbd decap` (TUN).
    _decap: Option<Lbd>,
    pub netns: Netns,
}

/// What an `lbadm` run printed and how it ended.
#[derive(Debug)]
pub struct LbadmOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub struct Rig {
    pub mode: Mode,
    pub lbd: Option<Lbd>,
    pub pins: PinLayout,
    pub workdir: PathBuf,
    /// XDP_PASS on the switch ports facing the balancer: veth drops frames
    /// sent with XDP_TX or redirect unless the peer runs an XDP program.
    _peer_pass: Vec<Dataplane>,
    pub reals: Vec<RealHost>,
    pub router: Option<Netns>,
    pub client: Netns,
    pub balancer: Netns,
    pub switches: Vec<Netns>,
}

impl Rig {
    /// Builds the namespaces, addresses and servers; `weights` has one
    /// entry per real. lbd is not started yet.
    pub fn build(mode: Mode, weights: &[u32]) -> Result<Self> {
        dataplane::ensure_bpffs(std::path::Path::new("/sys/fs/bpf/"))?;
        let prefix = unique_prefix();
        let workdir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&workdir)?;
        let segment_a = switch(&prefix, "swa")?;
        let balancer = Netns::create(&format!("{prefix}-lb"))?;
        let client = Netns::create(&format!("{prefix}-cl"))?;
        connect(&balancer, "eth0", &segment_a, "p-lb0", 0, BALANCER_HOST)?;
        connect(&client, "eth0", &segment_a, "p-cl", 0, CLIENT_HOST)?;
        // Tests send from fixed source ports (40,000-48,999, so Maglev's
        // choice is the same every run); the kernel's default ephemeral
        // range (32,768-60,999) overlaps them, and a connection that took
        // one of them by chance (bulk transfers, iperf3) makes the fixed
        // bind fail or collide. IANA's range leaves them alone.
        client.sysctl("net.ipv4.ip_local_port_range", "49152 60999")?;
        for (vip, gateway) in [
            (format!("{VIP4}/32"), v4(0, BALANCER_HOST).to_string()),
            (format!("{VIP6}/128"), v6(0, BALANCER_HOST).to_string()),
        ] {
            client.ip(&["route", "add", &vip, "via", &gateway])?;
        }
        let mut switches = vec![segment_a];
        let mut peer_pass = vec![attach_pass(&switches[0], "p-lb0")?];
        let (router, real_gateway) =
            back_segment(mode, &prefix, &balancer, &mut switches, &mut peer_pass)?;
        let reals = weights
            .iter()
            .enumerate()
            .map(|(index, &weight)| {
                let real = RealSpec {
                    index,
                    weight,
                    gateway: real_gateway,
                };
                build_real(mode, &prefix, &workdir, &switches, real)
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            mode,
            lbd: None,
            pins: PinLayout::new(format!("/sys/fs/bpf/{prefix}")),
            workdir,
            _peer_pass: peer_pass,
            reals,
            router,
            client,
            balancer,
            switches,
        })
    }

    /// A config for this rig with the reals whose indices are in `include`:
    /// TCP/80 over IPv4 and IPv6, TCP/8080 (echo) over both, UDP/53 over both.
    pub fn config_yaml(&self, include: &[usize]) -> String {
        self.config_yaml_with(include, "")
    }

    /// As [`Self::config_yaml`], with `extra` top-level YAML (e.g. timeouts).
    pub fn config_yaml_with(&self, include: &[usize], extra: &str) -> String {
        self.config_yaml_for(&SERVICES, include, extra)
    }

    /// As [`Self::config_yaml_with`], offering `services` (name, port,
    /// protocol) on both VIPs instead of [`SERVICES`].
    pub fn config_yaml_for(
        &self,
        services_offered: &[(&str, u16, &str)],
        include: &[usize],
        extra: &str,
    ) -> String {
        let interfaces = match self.mode {
            Mode::Nat => {
                "  - { name: eth0, xdp_mode: native }\n  - { name: eth1, xdp_mode: native }\n"
            }
            Mode::Dr | Mode::Tun => "  - { name: eth0, xdp_mode: native }\n",
        };
        let mut services = String::new();
        for &(name, port, protocol) in services_offered {
            for (suffix, vip) in [("4", IpAddr::V4(VIP4)), ("6", IpAddr::V6(VIP6))] {
                services.push_str(&format!(
                    "  - name: {name}{suffix}\n    vip: \"{vip}\"\n    port: {port}\n    protocol: {protocol}\n    forwarding: {}\n    reals:\n",
                    self.mode.keyword()
                ));
                for &i in include {
                    let real = &self.reals[i];
                    let address = match vip {
                        IpAddr::V4(_) => IpAddr::V4(real.v4),
                        IpAddr::V6(_) => IpAddr::V6(real.v6),
                    };
                    services.push_str(&format!(
                        "      - {{ address: \"{address}\", port: {}, weight: {} }}\n",
                        self.mode.real_port(port),
                        real.weight
                    ));
                }
            }
        }
        format!(
            "interfaces:\n{interfaces}pin_path: {}\ncontrol: {{ socket: {} }}\n{extra}services:\n{services}",
            self.pins.root.display(),
            self.control_socket().display()
        )
    }

    /// Routes the client to the reals' own addresses the way it would reach
    /// them without a balancer: on its segment (DR), through the router
    /// (TUN), through the balancer host's kernel forwarding (NAT). For
    /// measuring the VIP against going straight to a real.
    pub fn route_client_to_reals(&self) -> Result<()> {
        let host = match self.mode {
            Mode::Dr => return Ok(()),
            Mode::Tun => ROUTER_HOST,
            Mode::Nat => BALANCER_HOST,
        };
        let segment = self.mode.real_segment();
        self.client.ip(&[
            "route",
            "add",
            &format!("{}/24", v4(segment, 0)),
            "via",
            &v4(0, host).to_string(),
        ])?;
        self.client.ip(&[
            "-6",
            "route",
            "add",
            &format!("{}/64", v6(segment, 0)),
            "via",
            &v6(0, host).to_string(),
        ])
    }

    /// Sends the client's traffic for the reals' own addresses through the
    /// balancer host's kernel forwarding (`through`), or takes that back:
    /// the same hops as the VIP's path in DR and TUN, with the kernel
    /// routing instead of lbd. The client's host routes win over its
    /// segment (DR) and router (TUN) routes; the balancer forwards out the
    /// interface the packets came in on, so its redirects (which would send
    /// the client straight to the real or router) are off, and the client
    /// ignores them anyway. Replies take their usual way back.
    pub fn route_client_to_reals_through_balancer(&self, through: bool) -> Result<()> {
        let (action, on) = if through { ("add", "1") } else { ("del", "0") };
        if through {
            for interface in ["all", "eth0"] {
                self.client
                    .sysctl(&format!("net.ipv4.conf.{interface}.accept_redirects"), "0")?;
                self.client
                    .sysctl(&format!("net.ipv6.conf.{interface}.accept_redirects"), "0")?;
                self.balancer
                    .sysctl(&format!("net.ipv4.conf.{interface}.send_redirects"), "0")?;
            }
        }
        // NAT's balancer forwards for its reals all the time.
        if self.mode != Mode::Nat {
            self.balancer.sysctl("net.ipv4.ip_forward", on)?;
            self.balancer.sysctl("net.ipv6.conf.all.forwarding", on)?;
        }
        let (gateway4, gateway6) = (v4(0, BALANCER_HOST), v6(0, BALANCER_HOST));
        for real in &self.reals {
            self.client.ip(&[
                "route",
                action,
                &format!("{}/32", real.v4),
                "via",
                &gateway4.to_string(),
            ])?;
            self.client.ip(&[
                "-6",
                "route",
                action,
                &format!("{}/128", real.v6),
                "via",
                &gateway6.to_string(),
            ])?;
        }
        Ok(())
    }

    /// lbd's control socket (one per rig: rigs run side by side).
    pub fn control_socket(&self) -> PathBuf {
        self.workdir.join("lbd.sock")
    }

    pub fn config_path(&self) -> PathBuf {
        self.workdir.join("lb.yaml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.workdir.join("lbd.log")
    }

    pub fn write_config(&self, include: &[usize]) -> Result<()> {
        self.write_config_with(include, "")
    }

    pub fn write_config_with(&self, include: &[usize], extra: &str) -> Result<()> {
        std::fs::write(self.config_path(), self.config_yaml_with(include, extra))?;
        Ok(())
    }

    pub fn all_reals(&self) -> Vec<usize> {
        (0..self.reals.len()).collect()
    }

    /// Starts lbd with the current config file and waits until it forwards.
    pub fn start_lbd(&mut self) -> Result<()> {
        let mut lbd = Lbd::start(&self.balancer, &self.config_path(), &self.log_path())?;
        lbd.wait_ready()?;
        self.lbd = Some(lbd);
        Ok(())
    }

    /// SIGTERM; the data plane stays attached.
    pub fn stop_lbd(&mut self) -> Result<()> {
        if let Some(lbd) = self.lbd.take() {
            let status = lbd.stop()?;
            anyhow::ensure!(status.success(), "lbd exited with {status}");
        }
        Ok(())
    }

    /// SIGHUP, then waits for the reload to be applied.
    pub fn reload_lbd(&mut self) -> Result<()> {
        let lbd = self.lbd.as_mut().context("lbd is not running")?;
        let seen = lbd.log_text().matches("reloaded").count();
        lbd.signal(libc::SIGHUP)?;
        lbd.wait_for_log("reloaded", seen, Duration::from_secs(10))
    }

    pub fn vip4(&self, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(VIP4), port)
    }

    pub fn vip6(&self, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V6(VIP6), port)
    }

    /// Every namespace of the rig.
    pub fn namespaces(&self) -> Vec<&Netns> {
        let mut all: Vec<&Netns> = self.switches.iter().collect();
        all.extend([&self.balancer, &self.client]);
        all.extend(self.router.iter());
        all.extend(self.reals.iter().map(|real| &real.netns));
        all
    }

    /// Runs `lbadm args` against this rig's lbd (its pins and control
    /// socket), feeding `input` on standard input.
    pub fn lbadm_with_input(&self, args: &[&str], input: &str) -> Result<LbadmOutput> {
        use std::io::Write as _;
        let mut child = std::process::Command::new(crate::lbd::binary("lbadm")?)
            .args(args)
            .arg("--pin-path")
            .arg(&self.pins.root)
            .arg("--socket")
            .arg(self.control_socket())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .context("lbadm's stdin")?
            .write_all(input.as_bytes())?;
        let output = child.wait_with_output()?;
        Ok(LbadmOutput {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout)?,
            stderr: String::from_utf8(output.stderr)?,
        })
    }

    /// `lbadm args`, which must succeed; its standard output.
    pub fn lbadm(&self, args: &[&str]) -> Result<String> {
        let output = self.lbadm_with_input(args, "")?;
        anyhow::ensure!(
            output.code == Some(0),
            "lbadm {args:?} exited with {:?}: {}",
            output.code,
            output.stderr
        );
        Ok(output.stdout)
    }

    pub fn lbd_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        drop(self.lbd.take());
        let _ = dataplane::teardown(&self.pins);
        for real in &self.reals {
            let _ = dataplane::teardown(&PinLayout::new(decap_pin_path(&real.netns)));
        }
        let _ = std::fs::remove_dir_all(&self.workdir);
    }
}

/// Behind the balancer: nothing (DR), a router and the reals' segment
/// (TUN), or the reals' segment on the balancer's second interface (NAT).
/// Returns the router and the reals' IPv4 and IPv6 gateway.
fn back_segment(
    mode: Mode,
    prefix: &str,
    balancer: &Netns,
    switches: &mut Vec<Netns>,
    peer_pass: &mut Vec<Dataplane>,
) -> Result<(Option<Netns>, Option<Gateway>)> {
    let mut router = None;
    let gateway = match mode {
        Mode::Dr => None,
        Mode::Tun => {
            let segment_b = switch(prefix, "swb")?;
            let r = Netns::create(&format!("{prefix}-rt"))?;
            connect(&r, "eth0", &switches[0], "p-rt0", 0, ROUTER_HOST)?;
            connect(&r, "eth1", &segment_b, "p-rt1", 2, ROUTER_HOST)?;
            enable_forwarding(&r)?;
            balancer.ip(&[
                "route",
                "add",
                "198.18.2.0/24",
                "via",
                &v4(0, ROUTER_HOST).to_string(),
            ])?;
            balancer.ip(&[
                "-6",
                "route",
                "add",
                "fd00:18:2::/64",
                "via",
                &v6(0, ROUTER_HOST).to_string(),
            ])?;
            switches.push(segment_b);
            router = Some(r);
            Some((v4(2, ROUTER_HOST), v6(2, ROUTER_HOST)))
        }
        Mode::Nat => {
            let segment_b = switch(prefix, "swb")?;
            connect(balancer, "eth1", &segment_b, "p-lb1", 2, BALANCER_HOST)?;
            enable_forwarding(balancer)?;
            peer_pass.push(attach_pass(&segment_b, "p-lb1")?);
            switches.push(segment_b);
            Some((v4(2, BALANCER_HOST), v6(2, BALANCER_HOST)))
        }
    };
    Ok((router, gateway))
}

/// The reals' IPv4 and IPv6 default gateway.
type Gateway = (Ipv4Addr, Ipv6Addr);

/// One real of a rig: where it sits, its weight, its gateway (if it is
/// not on the balancer's segment).
struct RealSpec {
    index: usize,
    weight: u32,
    gateway: Option<Gateway>,
}

/// A real's namespace, addresses, routes, servers and (TUN) decapsulator.
fn build_real(
    mode: Mode,
    prefix: &str,
    workdir: &std::path::Path,
    switches: &[Netns],
    real: RealSpec,
) -> Result<RealHost> {
    let RealSpec {
        index,
        weight,
        gateway: real_gateway,
    } = real;
    let real_segment = mode.real_segment();
    let number = index as u8 + 1;
    let host = FIRST_REAL_HOST + index as u8;
    let name = format!("real-{number}");
    let netns = Netns::create(&format!("{prefix}-r{number}"))?;
    let segment = &switches[usize::from(real_segment != 0)];
    connect(
        &netns,
        "eth0",
        segment,
        &format!("p-r{number}"),
        real_segment,
        host,
    )?;
    if let Some((gateway4, gateway6)) = real_gateway {
        netns.ip(&["route", "add", "default", "via", &gateway4.to_string()])?;
        netns.ip(&[
            "-6",
            "route",
            "add",
            "default",
            "via",
            &gateway6.to_string(),
        ])?;
    }
    let decap = match mode {
        Mode::Nat => None,
        Mode::Dr | Mode::Tun => {
            hold_vips_on_lo(&netns)?;
            if mode == Mode::Tun {
                // The inner packet's source (the client) arrives on
                // eth0 with no route back through it.
                for interface in ["all", "eth0"] {
                    netns.sysctl(&format!("net.ipv4.conf.{interface}.rp_filter"), "0")?;
                }
                Some(start_decap(&netns, workdir, number)?)
            } else {
                None
            }
        }
    };
    let servers = vec![
        traffic::serve(&netns, mode.real_port(HTTP_PORT), &name, Behaviour::Http)?,
        traffic::serve(&netns, mode.real_port(ECHO_PORT), &name, Behaviour::Echo)?,
    ];
    let udp_port = mode.real_port(UDP_PORT);
    let udp = match mode {
        Mode::Nat => vec![traffic::serve_udp(
            &netns,
            SocketAddr::from(([0u16; 8], udp_port)),
            &name,
        )?],
        Mode::Dr | Mode::Tun => vec![
            traffic::serve_udp(&netns, SocketAddr::new(IpAddr::V4(VIP4), udp_port), &name)?,
            traffic::serve_udp(&netns, SocketAddr::new(IpAddr::V6(VIP6), udp_port), &name)?,
        ],
    };
    Ok(RealHost {
        name,
        v4: v4(real_segment, host),
        v6: v6(real_segment, host),
        weight,
        _servers: servers,
        _udp: udp,
        _decap: decap,
        netns,
    })
}

fn switch(prefix: &str, tag: &str) -> Result<Netns> {
    let switch = Netns::create(&format!("{prefix}-{tag}"))?;
    switch.ip(&["link", "add", "br0", "type", "bridge"])?;
    switch.ip(&["link", "set", "br0", "up"])?;
    Ok(switch)
}

/// Connects `netns` to `switch` with a veth pair, addressed .host on the
/// segment's IPv4 and IPv6 networks.
fn connect(
    netns: &Netns,
    interface: &str,
    switch: &Netns,
    port: &str,
    segment: u8,
    host: u8,
) -> Result<()> {
    crate::netns::veth_pair(netns, interface, switch, port)?;
    switch.ip(&["link", "set", port, "master", "br0", "up"])?;
    netns.ip(&[
        "addr",
        "add",
        &format!("{}/24", v4(segment, host)),
        "dev",
        interface,
    ])?;
    // nodad: the address is usable at once instead of after DAD's ~1-2 s.
    netns.ip(&[
        "addr",
        "add",
        &format!("{}/64", v6(segment, host)),
        "dev",
        interface,
        "nodad",
    ])?;
    netns.ip(&["link", "set", interface, "up"])?;
    // veth leaves TCP/UDP checksums to "hardware" (CHECKSUM_PARTIAL) that
    // never runs once XDP turns the skb into a raw frame: the far end would
    // get a bad checksum. A physical NIC fills them in before the wire.
    netns.enter(|| crate::netns::run("ethtool", &["-K", interface, "tx", "off"]))?;
    Ok(())
}

fn enable_forwarding(netns: &Netns) -> Result<()> {
    netns.sysctl("net.ipv4.ip_forward", "1")?;
    netns.sysctl("net.ipv6.conf.all.forwarding", "1")
}

/// The usual LVS-DR/TUN real-server setup: the VIPs on `lo`, and ARP tuned
/// so the real never answers or announces them on the segment.
fn hold_vips_on_lo(netns: &Netns) -> Result<()> {
    netns.ip(&["addr", "add", &format!("{VIP4}/32"), "dev", "lo"])?;
    // nodad: usable at once, or a socket bound to it right after fails.
    netns.ip(&["addr", "add", &format!("{VIP6}/128"), "dev", "lo", "nodad"])?;
    for interface in ["all", "eth0"] {
        netns.sysctl(&format!("net.ipv4.conf.{interface}.arp_ignore"), "1")?;
        netns.sysctl(&format!("net.ipv4.conf.{interface}.arp_announce"), "2")?;
    }
    Ok(())
}

fn decap_pin_path(netns: &Netns) -> String {
    format!("/sys/fs/bpf/{}-decap", netns.name)
}

/// `lbd decap --interface eth0` on a TUN real, as deploy/ tells operators.
fn start_decap(netns: &Netns, workdir: &std::path::Path, number: u8) -> Result<Lbd> {
    let pin_path = decap_pin_path(netns);
    let log = workdir.join(format!("decap-{number}.log"));
    let mut decap = Lbd::start_with_args(
        netns,
        &["decap", "--interface", "eth0", "--pin-path", &pin_path],
        &log,
    )?;
    decap.wait_ready()?;
    Ok(decap)
}

fn attach_pass(switch: &Netns, interface: &str) -> Result<Dataplane> {
    attach_program(switch, interface, programs::PASS)
}

/// Geometry for a copy of the object whose programs never read the big
/// maps (pass, sink, reflector): small maps load fast.
pub fn small_geometry() -> Geometry {
    Geometry {
        maglev_table_size: 3,
        flow_table_entries: 1024,
        ..Geometry::default()
    }
}

/// Loads a private copy of the BPF object in `netns` and attaches its
/// `program` to `interface` in native mode; detached when dropped.
pub fn attach_program(netns: &Netns, interface: &str, program: &str) -> Result<Dataplane> {
    netns.enter(|| {
        let mut dataplane = Dataplane::load(small_geometry(), None)?;
        dataplane
            .program_mut(program)?
            .attach(interface, aya::programs::XdpMode::Driver)
            .with_context(|| format!("attaching {program} to {interface}"))?;
        Ok(dataplane)
    })
}
