//! `lbd decap` end to end: two namespaces joined by a veth pair. In "lb",
//! tunnelled frames are built with etherparse and sent on an AF_PACKET
//! socket (this kernel has no ipip module to build them with); in "real",
//! the real `lbd decap --interface eth0` strips them with XDP in native
//! mode, and a UDP socket bound to the VIP on `lo` must get the payload.
//! Needs root; under CI it must run, never skip.
//!
//! ```text
//!   lb   eth0 198.18.0.1  fd00:18::1   ──veth──  real eth0 198.18.0.11 fd00:18::11
//!                                                     lo   198.18.1.10 fd00:18:1::10 (VIPs)
//! ```

use std::{
    ffi::CString,
    net::{IpAddr, SocketAddr, UdpSocket},
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Result, bail, ensure};
use aya::maps::{Map, MapData, PerCpuArray};
use etherparse::{IpNumber, PacketBuilder};
use lb_common::{GlobalCounter, names};
use lb_tests::{
    frames::{LB_MAC, REAL_MAC, ip},
    lbd::Lbd,
    netns::{Netns, unique_prefix},
};
use lb_userspace::dataplane::{PinLayout, ensure_bpffs};

const LB4: &str = "198.18.0.1";
const LB6: &str = "fd00:18::1";
const REAL4: &str = "198.18.0.11";
const REAL6: &str = "fd00:18::11";
/// Added while `lbd decap` runs: it must start decapsulating for it.
const REAL4_LATER: &str = "198.18.0.12";
const VIP4: &str = "198.18.1.10";
const VIP6: &str = "fd00:18:1::10";
/// The client behind the balancer, source of every inner packet.
const CLIENT4: &str = "198.19.7.7";
const CLIENT6: &str = "fd00:c::7";
const PORT: u16 = 5353;

/// The two namespaces; `lbd decap` runs in `real`.
struct Rig {
    lb: Netns,
    real: Netns,
    pin_path: PathBuf,
    log: PathBuf,
}

impl Rig {
    fn build() -> Result<Self> {
        ensure_bpffs(std::path::Path::new("/sys/fs/bpf/"))?;
        let prefix = unique_prefix();
        let lb = Netns::create(&format!("{prefix}-lb"))?;
        let real = Netns::create(&format!("{prefix}-real"))?;
        lb_tests::netns::run(
            "ip",
            &[
                "link",
                "add",
                "eth0",
                "netns",
                &lb.name,
                "address",
                &mac(LB_MAC),
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &real.name,
                "address",
                &mac(REAL_MAC),
            ],
        )?;
        for (netns, v4, v6) in [(&lb, LB4, LB6), (&real, REAL4, REAL6)] {
            netns.ip(&["addr", "add", &format!("{v4}/24"), "dev", "eth0"])?;
            netns.ip(&["addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"])?;
            netns.ip(&["link", "set", "eth0", "up"])?;
        }
        // The real as deploy/tun-real-setup.sh leaves it: VIPs on lo, ARP
        // quiet about them, loose reverse-path filtering; and, as any host,
        // a default route (through the balancer's side here).
        real.ip(&["addr", "add", &format!("{VIP4}/32"), "dev", "lo"])?;
        real.ip(&["addr", "add", &format!("{VIP6}/128"), "dev", "lo"])?;
        for interface in ["all", "default", "eth0"] {
            real.sysctl(&format!("net.ipv4.conf.{interface}.arp_ignore"), "1")?;
            real.sysctl(&format!("net.ipv4.conf.{interface}.arp_announce"), "2")?;
            real.sysctl(&format!("net.ipv4.conf.{interface}.rp_filter"), "2")?;
        }
        real.ip(&["route", "add", "default", "via", LB4])?;
        real.ip(&["-6", "route", "add", "default", "via", LB6])?;
        let pin_path = PathBuf::from(format!("/sys/fs/bpf/{prefix}-decap"));
        let log = std::env::temp_dir().join(format!("{prefix}-lbd-decap.log"));
        Ok(Self {
            lb,
            real,
            pin_path,
            log,
        })
    }

    /// `lbd decap --interface eth0` in the real's namespace; waits for
    /// `ready`.
    fn start_decap(&self) -> Result<Lbd> {
        let pin_path = self.pin_path.to_string_lossy();
        let mut decap = Lbd::start_with_args(
            &self.real,
            &[
                "decap",
                "--interface",
                "eth0",
                "--xdp-mode",
                "native",
                "--pin-path",
                &pin_path,
            ],
            &self.log,
        )?;
        decap.wait_ready()?;
        Ok(decap)
    }

    /// `lbd decap --interface eth0 --teardown`, to completion.
    fn teardown(&self) -> Result<()> {
        let pin_path = self.pin_path.to_string_lossy();
        let (status, output) = Lbd::run_to_exit(
            &self.real,
            &[
                "decap",
                "--interface",
                "eth0",
                "--teardown",
                "--pin-path",
                &pin_path,
            ],
        )?;
        ensure!(status.success(), "lbd decap --teardown: {status}\n{output}");
        Ok(())
    }

    /// A UDP socket in the real's namespace, bound to `addr`:PORT.
    fn listen(&self, addr: &str) -> Result<UdpSocket> {
        let bind = SocketAddr::new(ip(addr), PORT);
        let socket = self.real.enter(|| Ok(UdpSocket::bind(bind)?))?;
        socket.set_read_timeout(Some(Duration::from_millis(300)))?;
        Ok(socket)
    }

    /// Sends `frame` out of the balancer side's eth0.
    fn send(&self, frame: &[u8]) -> Result<()> {
        self.lb.enter(|| send_raw("eth0", frame))
    }

    /// Sends `frame` until `socket` receives `payload` (a few tries, so a
    /// veth still settling does not fail the test), or fails.
    fn expect_delivery(
        &self,
        what: &str,
        frame: &[u8],
        socket: &UdpSocket,
        payload: &[u8],
    ) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            self.send(frame)?;
            if let Some(got) = receive(socket)? {
                ensure!(
                    got == payload,
                    "{what}: received {got:?}, expected {payload:?}"
                );
                return Ok(());
            }
        }
        bail!(
            "{what}: the UDP socket on the real never got the datagram\n{}",
            log_text(&self.log)
        )
    }

    /// Sends `frame` a few times; `socket` must get nothing.
    fn expect_no_delivery(&self, what: &str, frame: &[u8], socket: &UdpSocket) -> Result<()> {
        for _ in 0..3 {
            self.send(frame)?;
            if let Some(got) = receive(socket)? {
                bail!("{what}: the real received {got:?}, but nothing should strip the tunnel");
            }
        }
        Ok(())
    }

    fn decapsulated(&self) -> Result<u64> {
        let layout = PinLayout::new(self.pin_path.join("eth0"));
        let data = MapData::from_pin(layout.map(names::GLOBAL_STATS))?;
        let stats: PerCpuArray<_, u64> = Map::from_map_data(data)?.try_into()?;
        Ok(stats
            .get(&(GlobalCounter::Decapsulated as u32), 0)?
            .iter()
            .sum())
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = lb_userspace::decap::teardown(&self.pin_path, "eth0");
        let _ = std::fs::remove_file(&self.log);
    }
}

/// What `lbd decap` logs once it is attached.
fn log_text(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// SIGTERM to `lbd decap`; it must exit cleanly.
fn stop(decap: Lbd) -> Result<()> {
    let status = decap.stop()?;
    ensure!(status.success(), "lbd decap exited with {status}");
    Ok(())
}

fn mac(bytes: [u8; 6]) -> String {
    bytes.map(|b| format!("{b:02x}")).join(":")
}

/// One datagram, or `None` after the socket's read timeout.
fn receive(socket: &UdpSocket) -> Result<Option<Vec<u8>>> {
    let mut buffer = [0u8; 2048];
    match socket.recv(&mut buffer) {
        Ok(len) => Ok(Some(buffer[..len].to_vec())),
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        Err(error) => Err(error.into()),
    }
}

/// Writes a whole Ethernet frame to `interface` through an AF_PACKET
/// socket of the calling thread's namespace.
fn send_raw(interface: &str, frame: &[u8]) -> Result<()> {
    let name = CString::new(interface)?;
    // SAFETY: NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    ensure!(ifindex != 0, "no interface {interface}");
    // Protocol 0: a send-only packet socket, it receives nothing.
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    ensure!(
        fd >= 0,
        "socket(AF_PACKET): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the fd is ours; OwnedFd closes it on every path.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: zeroed sockaddr_ll, then filled in.
    let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    address.sll_family = libc::AF_PACKET as u16;
    address.sll_ifindex = ifindex as i32;
    address.sll_halen = 6;
    address.sll_addr[..6].copy_from_slice(&frame[..6]);
    // SAFETY: valid buffer and address of the sizes given.
    let sent = unsafe {
        libc::sendto(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&raw const address).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    ensure!(
        sent == frame.len() as isize,
        "sendto(AF_PACKET): {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// client:40000 -> VIP:PORT carrying `payload`, wrapped in an outer header
/// from the balancer to `outer_dst` (the families may differ), in an
/// Ethernet frame to the real's MAC.
fn tunnelled_udp(outer_dst: &str, vip: &str, payload: &[u8]) -> Vec<u8> {
    let mut inner = Vec::new();
    let inner_family = match (
        ip(vip),
        ip(if ip(vip).is_ipv4() { CLIENT4 } else { CLIENT6 }),
    ) {
        (IpAddr::V4(vip), IpAddr::V4(client)) => {
            PacketBuilder::ipv4(client.octets(), vip.octets(), 64)
                .udp(40_000, PORT)
                .write(&mut inner, payload)
                .expect("inner packet");
            IpNumber::IPV4
        }
        (IpAddr::V6(vip), IpAddr::V6(client)) => {
            PacketBuilder::ipv6(client.octets(), vip.octets(), 64)
                .udp(40_000, PORT)
                .write(&mut inner, payload)
                .expect("inner packet");
            IpNumber::IPV6
        }
        _ => unreachable!(),
    };
    let eth = PacketBuilder::ethernet2(LB_MAC, REAL_MAC);
    let mut frame = Vec::new();
    match ip(outer_dst) {
        IpAddr::V4(dst) => {
            eth.ipv4(ip4(LB4), dst.octets(), 64)
                .write(&mut frame, inner_family, &inner)
        }
        IpAddr::V6(dst) => {
            eth.ipv6(ip6(LB6), dst.octets(), 64)
                .write(&mut frame, inner_family, &inner)
        }
    }
    .expect("tunnelled frame");
    frame
}

fn ip4(text: &str) -> [u8; 4] {
    match ip(text) {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(_) => panic!("{text} is not IPv4"),
    }
}

fn ip6(text: &str) -> [u8; 16] {
    match ip(text) {
        IpAddr::V6(v6) => v6.octets(),
        IpAddr::V4(_) => panic!("{text} is not IPv6"),
    }
}

#[test]
fn lbd_decap_delivers_tunnelled_datagrams_across_restarts_until_teardown() -> Result<()> {
    if !lb_tests::require_root("lbd_decap_delivers_tunnelled_datagrams") {
        return Ok(());
    }
    let rig = Rig::build()?;
    let v4_socket = rig.listen(VIP4)?;
    let v6_socket = rig.listen(VIP6)?;
    let v4_in_v4 = tunnelled_udp(REAL4, VIP4, b"ipv4 in ipv4");
    let v6_in_v6 = tunnelled_udp(REAL6, VIP6, b"ipv6 in ipv6");

    // Without decap this kernel cannot open the tunnel (no ipip module; a
    // kernel with one would, through its own fallback device).
    let kernel_has_ipip = std::path::Path::new("/sys/module/ipip").exists();
    if !kernel_has_ipip {
        rig.expect_no_delivery("before lbd decap", &v4_in_v4, &v4_socket)?;
    }

    let decap = rig.start_decap()?;
    rig.expect_delivery("IPv4 in IPv4", &v4_in_v4, &v4_socket, b"ipv4 in ipv4")?;
    rig.expect_delivery("IPv6 in IPv6", &v6_in_v6, &v6_socket, b"ipv6 in ipv6")?;
    let mixed = tunnelled_udp(REAL6, VIP4, b"ipv4 in ipv6");
    rig.expect_delivery("IPv4 in IPv6", &mixed, &v4_socket, b"ipv4 in ipv6")?;
    assert!(rig.decapsulated()? >= 3, "decapsulated counter");

    // An address added while it runs is picked up by the refresh.
    rig.real
        .ip(&["addr", "add", &format!("{REAL4_LATER}/24"), "dev", "eth0"])?;
    let to_new_address = tunnelled_udp(REAL4_LATER, VIP4, b"to a new address");
    rig.expect_delivery(
        "new address",
        &to_new_address,
        &v4_socket,
        b"to a new address",
    )?;

    // Stopped: the pinned link keeps stripping.
    stop(decap)?;
    rig.expect_delivery("lbd decap stopped", &v4_in_v4, &v4_socket, b"ipv4 in ipv4")?;

    // Restarted: adopts the pins and swaps its program in.
    let decap = rig.start_decap()?;
    assert!(
        log_text(&rig.log).contains("replaced the program behind the pinned XDP link"),
        "the restart should adopt the pinned link:\n{}",
        log_text(&rig.log)
    );
    rig.expect_delivery("after a restart", &v6_in_v6, &v6_socket, b"ipv6 in ipv6")?;
    stop(decap)?;

    // Teardown: detached, pins gone, tunnels no longer opened.
    rig.teardown()?;
    assert!(
        !rig.pin_path.exists(),
        "{} left behind",
        rig.pin_path.display()
    );
    if !kernel_has_ipip {
        rig.expect_no_delivery("after teardown", &v4_in_v4, &v4_socket)?;
    }
    Ok(())
}
