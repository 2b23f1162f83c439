//! The direct-routing rig: a client, the balancer and N real servers on one
//! L2 segment (a bridge in a "switch" namespace).
//!
//! ```text
//!   client .100 ─┐
//!   balancer .1 ─┼─ br0 (switch ns)     VIPs 198.18.1.10, fd00:18:1::10
//!   real-1 .11  ─┤                      routed by the client via .1 / ::1;
//!   real-2 .12  ─┤                      held on `lo` by every real, which
//!   real-3 .13  ─┘                      answers the client directly.
//! ```
//! Segment: 198.18.0.0/24 and fd00:18::/64.

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
    traffic::{self, Behaviour, Server},
};

pub const VIP4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x18, 0x1, 0, 0, 0, 0, 0x10);
pub const HTTP_PORT: u16 = 80;
pub const ECHO_PORT: u16 = 8080;
const BALANCER_HOST: u8 = 1;
const CLIENT_HOST: u8 = 100;
const FIRST_REAL_HOST: u8 = 11;

fn v4(host: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, host)
}

fn v6(host: u8) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x18, 0, 0, 0, 0, 0, host as u16)
}

pub struct RealHost {
    pub name: String,
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
    pub weight: u32,
    _servers: Vec<Server>,
    pub netns: Netns,
}

pub struct DrRig {
    pub lbd: Option<Lbd>,
    pub pins: PinLayout,
    pub workdir: PathBuf,
    /// Keeps XDP_PASS on the balancer's switch port: veth drops XDP_TX'd
    /// frames unless the peer runs an XDP program.
    _peer_pass: Dataplane,
    pub reals: Vec<RealHost>,
    pub client: Netns,
    pub balancer: Netns,
    pub switch: Netns,
}

impl DrRig {
    /// Builds the namespaces, addresses and servers; `weights` has one
    /// entry per real. lbd is not started yet.
    pub fn build(weights: &[u32]) -> Result<Self> {
        dataplane::ensure_bpffs(std::path::Path::new("/sys/fs/bpf/"))?;
        let prefix = unique_prefix();
        let workdir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&workdir)?;
        let switch = Netns::create(&format!("{prefix}-sw"))?;
        switch.ip(&["link", "add", "br0", "type", "bridge"])?;
        switch.ip(&["link", "set", "br0", "up"])?;

        let balancer = host(&prefix, "lb", &switch, BALANCER_HOST)?;
        let client = host(&prefix, "cl", &switch, CLIENT_HOST)?;
        for (vip, gateway) in [
            (format!("{VIP4}/32"), v4(BALANCER_HOST).to_string()),
            (format!("{VIP6}/128"), v6(BALANCER_HOST).to_string()),
        ] {
            client.ip(&["route", "add", &vip, "via", &gateway])?;
        }
        let mut reals = Vec::new();
        for (index, &weight) in weights.iter().enumerate() {
            let number = index as u8 + 1;
            let name = format!("real-{number}");
            let netns = host(
                &prefix,
                &format!("r{number}"),
                &switch,
                FIRST_REAL_HOST + index as u8,
            )?;
            prepare_dr_real(&netns)?;
            let servers = vec![
                traffic::serve(&netns, HTTP_PORT, &name, Behaviour::Http)?,
                traffic::serve(&netns, ECHO_PORT, &name, Behaviour::Echo)?,
            ];
            reals.push(RealHost {
                name,
                v4: v4(FIRST_REAL_HOST + index as u8),
                v6: v6(FIRST_REAL_HOST + index as u8),
                weight,
                _servers: servers,
                netns,
            });
        }
        let peer_pass = attach_pass(&switch, &port_name("lb"))?;
        Ok(Self {
            lbd: None,
            pins: PinLayout::new(format!("/sys/fs/bpf/{prefix}")),
            workdir,
            _peer_pass: peer_pass,
            reals,
            client,
            balancer,
            switch,
        })
    }

    /// A config for this rig with the reals whose indices are in `include`:
    /// TCP/80 over IPv4 and IPv6, and TCP/8080 (echo) over IPv4.
    pub fn config_yaml(&self, include: &[usize]) -> String {
        let reals = |family: fn(&RealHost) -> IpAddr| {
            include
                .iter()
                .map(|&i| {
                    let real = &self.reals[i];
                    format!(
                        "      - {{ address: \"{}\", weight: {} }}\n",
                        family(real),
                        real.weight
                    )
                })
                .collect::<String>()
        };
        let v4_reals = reals(|r| IpAddr::V4(r.v4));
        let v6_reals = reals(|r| IpAddr::V6(r.v6));
        format!(
            "interfaces:\n  - {{ name: eth0, xdp_mode: native }}\n\
             pin_path: {pin}\n\
             services:\n\
             \x20 - name: web\n    vip: {VIP4}\n    port: {HTTP_PORT}\n    protocol: tcp\n    reals:\n{v4_reals}\
             \x20 - name: web6\n    vip: \"{VIP6}\"\n    port: {HTTP_PORT}\n    protocol: tcp\n    reals:\n{v6_reals}\
             \x20 - name: echo\n    vip: {VIP4}\n    port: {ECHO_PORT}\n    protocol: tcp\n    reals:\n{v4_reals}",
            pin = self.pins.root.display(),
        )
    }

    pub fn config_path(&self) -> PathBuf {
        self.workdir.join("lb.yaml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.workdir.join("lbd.log")
    }

    pub fn write_config(&self, include: &[usize]) -> Result<()> {
        std::fs::write(self.config_path(), self.config_yaml(include))?;
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

    pub fn lbd_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for DrRig {
    fn drop(&mut self) {
        drop(self.lbd.take());
        let _ = dataplane::teardown(&self.pins);
        let _ = std::fs::remove_dir_all(&self.workdir);
    }
}

fn port_name(tag: &str) -> String {
    format!("p-{tag}")
}

/// A namespace with `eth0` on the switch, addressed .host / ::host.
fn host(prefix: &str, tag: &str, switch: &Netns, host: u8) -> Result<Netns> {
    let netns = Netns::create(&format!("{prefix}-{tag}"))?;
    let port = port_name(tag);
    crate::netns::run(
        "ip",
        &[
            "link",
            "add",
            "eth0",
            "netns",
            &netns.name,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            &switch.name,
        ],
    )?;
    switch.ip(&["link", "set", &port, "master", "br0", "up"])?;
    netns.ip(&["addr", "add", &format!("{}/24", v4(host)), "dev", "eth0"])?;
    // nodad: the address is usable at once instead of after DAD's ~1-2 s.
    netns.ip(&[
        "addr",
        "add",
        &format!("{}/64", v6(host)),
        "dev",
        "eth0",
        "nodad",
    ])?;
    netns.ip(&["link", "set", "eth0", "up"])?;
    // veth leaves TCP/UDP checksums to "hardware" (CHECKSUM_PARTIAL) that
    // never runs once XDP turns the skb into a raw frame: the real would
    // get a bad checksum. A physical NIC fills them in before the wire.
    netns.enter(|| crate::netns::run("ethtool", &["-K", "eth0", "tx", "off"]))?;
    Ok(netns)
}

/// The usual LVS-DR real-server setup: the VIP on `lo`, and ARP tuned so
/// the real never answers or announces it on the segment.
fn prepare_dr_real(netns: &Netns) -> Result<()> {
    netns.ip(&["addr", "add", &format!("{VIP4}/32"), "dev", "lo"])?;
    netns.ip(&["addr", "add", &format!("{VIP6}/128"), "dev", "lo"])?;
    for interface in ["all", "eth0"] {
        netns.sysctl(&format!("net.ipv4.conf.{interface}.arp_ignore"), "1")?;
        netns.sysctl(&format!("net.ipv4.conf.{interface}.arp_announce"), "2")?;
    }
    Ok(())
}

fn attach_pass(switch: &Netns, interface: &str) -> Result<Dataplane> {
    let geometry = Geometry {
        maglev_table_size: 3,
        flow_table_entries: 1024,
    };
    switch.enter(|| {
        let mut dataplane = Dataplane::load(geometry, None)?;
        dataplane
            .program_mut(programs::PASS)?
            .attach(interface, aya::programs::XdpMode::Driver)
            .with_context(|| format!("attaching XDP_PASS to {interface}"))?;
        Ok(dataplane)
    })
}
