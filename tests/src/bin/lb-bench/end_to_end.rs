//! End to end: TCP throughput (one iperf3 stream) and short connections per
//! second (wrk, one HTTP request per connection) from the client through the
//! VIP, next to the same client reaching the same real without the VIP, for
//! DR, TUN and NAT over IPv4 and IPv6; in DR and TUN also next to the
//! balancer host's kernel forwarding the same packets over the VIP's hops
//! (the direct path there skips the balancer host, so it has fewer hops
//! sharing the same CPUs); and the NAT rig's VIP served by nftables DNAT
//! (kube-proxy's way) instead of lbd.
//!
//! Every rig has one real: iperf3's control and data connections must meet
//! the same server, and "direct" can only ever reach one real, so the VIP
//! gets no more servers than the direct path does.

use std::{
    fs::File,
    net::{IpAddr, SocketAddr},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use lb_tests::{
    netns::Netns,
    rig::{Mode, RealHost, Rig, VIP4, VIP6},
};
use lb_userspace::dataplane;

use crate::{
    options::{Options, Section},
    process::RunWithInput as _,
    report::{Figure, Report, Target},
    spread::Spread,
};

const IPERF_PORT: u16 = 5201;
/// nginx's port on the real (and the VIP's): the rig's own responder holds
/// port 80, and a thread per connection caps it near 10,000 connections/s,
/// well under what the network paths here carry.
const NGINX_PORT: u16 = 8081;
/// The services the benchmark configures on both VIPs: (name, port, protocol).
const SERVICES: [(&str, u16, &str); 2] =
    [("http", NGINX_PORT, "tcp"), ("iperf", IPERF_PORT, "tcp")];
/// wrk's load: one thread per core of this 2-core machine's client, and
/// enough connections in flight that the client never waits on one.
const WRK_THREADS: u32 = 2;
const WRK_CONNECTIONS: u32 = 32;
/// What a stuck tool gets before it is killed (beyond its own duration).
const TOOL_GRACE: Duration = Duration::from_secs(20);

/// Each comparison alternates its two sides this many times and reports
/// the median: single runs on 2 shared cores swing by tens of percent.
const ROUNDS: usize = 3;

pub fn run(options: &Options, report: &mut Report) -> Result<()> {
    for mode in Mode::ALL {
        measure_mode(options, report, mode).with_context(|| format!("{} rig", mode.name()))?;
    }
    Ok(())
}

/// Alternates "direct" (measured while nothing of lbd is attached) with
/// "via VIP" (lbd running) and, in DR and TUN, with the same hops as the
/// VIP's routed by the balancer host's kernel (NAT's direct path already
/// is that).
fn measure_mode(options: &Options, report: &mut Report, mode: Mode) -> Result<()> {
    let mut rig = Rig::build(mode, &[1])?;
    let _servers = start_servers(&rig, &rig.reals[0])?;
    rig.route_client_to_reals()?;
    let (mut direct, mut via_vip) = (Samples::default(), Samples::default());
    let mut kernel_routed = (mode != Mode::Nat).then(Samples::default);
    for _ in 0..rounds(options) {
        direct.measure_round(options, &rig, Route::Direct)?;
        if let Some(samples) = &mut kernel_routed {
            rig.route_client_to_reals_through_balancer(true)?;
            let measured = samples.measure_round(options, &rig, Route::Direct);
            rig.route_client_to_reals_through_balancer(false)?;
            measured?;
        }
        start_lbd(&mut rig)?;
        via_vip.measure_round(options, &rig, Route::ViaVip)?;
        remove_lbd(&mut rig)?;
    }
    for family in Family::BOTH {
        add_e2e_figures(report, mode, family, &via_vip, &direct);
        if let Some(kernel_routed) = &kernel_routed {
            add_kernel_routed_figures(report, mode, family, &via_vip, kernel_routed);
        }
    }
    Ok(())
}

/// Alternates nftables DNAT (lbd not attached) with lbd, on one NAT rig.
pub fn nftables_throughput(options: &Options, report: &mut Report) -> Result<()> {
    let mut rig = Rig::build(Mode::Nat, &[1])?;
    let _servers = start_servers(&rig, &rig.reals[0])?;
    let (mut by_nftables, mut by_balancer) = (Samples::default(), Samples::default());
    for _ in 0..rounds(options) {
        load_nftables_dnat(&rig)?;
        by_nftables.measure_round(options, &rig, Route::ViaVip)?;
        remove_nftables_dnat(&rig)?;
        start_lbd(&mut rig)?;
        by_balancer.measure_round(options, &rig, Route::ViaVip)?;
        remove_lbd(&mut rig)?;
    }
    for family in Family::BOTH {
        add_nftables_figures(report, family, &by_balancer, &by_nftables);
    }
    Ok(())
}

fn rounds(options: &Options) -> usize {
    if options.quick { 1 } else { ROUNDS }
}

fn start_lbd(rig: &mut Rig) -> Result<()> {
    let config = rig.config_yaml_for(&SERVICES, &rig.all_reals(), "");
    std::fs::write(rig.config_path(), config)?;
    rig.start_lbd()
}

/// Stops lbd and detaches its program: pinned, it would keep forwarding
/// (and sit in the direct path's way on the NAT balancer).
fn remove_lbd(rig: &mut Rig) -> Result<()> {
    rig.stop_lbd()?;
    dataplane::teardown(&rig.pins)
}

fn load_nftables_dnat(rig: &Rig) -> Result<()> {
    rig.balancer
        .command("nft")
        .args(["--file", "-"])
        .run_with_input(&nftables_ruleset(rig))
        .context("loading the nftables DNAT ruleset")?;
    Ok(())
}

/// Deleting the table also takes conntrack off the balancer's traffic, so
/// lbd's turn runs on a host without netfilter rules.
fn remove_nftables_dnat(rig: &Rig) -> Result<()> {
    rig.balancer
        .command("nft")
        .args(["delete", "table", "inet", NFT_TABLE])
        .run_with_input("")?;
    Ok(())
}

/// Every round's results along one route, per family (indexed by
/// [`Family::index`]).
#[derive(Default)]
struct Samples {
    gbits_per_second: [Vec<f64>; 2],
    retransmits: [u64; 2],
    connections_per_second: [Vec<f64>; 2],
    failed_requests: [u64; 2],
}

impl Samples {
    fn measure_round(&mut self, options: &Options, rig: &Rig, route: Route) -> Result<()> {
        for family in Family::BOTH {
            let index = family.index();
            let throughput = iperf(
                &rig.client,
                target(rig, route, family, IPERF_PORT),
                options.duration,
            )?;
            self.gbits_per_second[index].push(throughput.gbits_per_second);
            self.retransmits[index] += throughput.retransmits;
            let connections = wrk(
                &rig.client,
                target(rig, route, family, NGINX_PORT),
                options.duration,
            )?;
            self.connections_per_second[index].push(connections.per_second);
            self.failed_requests[index] += connections.failures;
        }
        Ok(())
    }

    fn throughput(&self, family: Family) -> Spread {
        Spread::of(&self.gbits_per_second[family.index()])
    }

    fn connections(&self, family: Family) -> Spread {
        Spread::of(&self.connections_per_second[family.index()])
    }
}

/// How the client reaches the real.
#[derive(Clone, Copy)]
enum Route {
    ViaVip,
    Direct,
}

#[derive(Clone, Copy)]
enum Family {
    V4,
    V6,
}

impl Family {
    const BOTH: [Family; 2] = [Family::V4, Family::V6];

    fn index(self) -> usize {
        match self {
            Family::V4 => 0,
            Family::V6 => 1,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    fn vip(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(VIP4),
            Family::V6 => IpAddr::V6(VIP6),
        }
    }

    fn address_of(self, real: &RealHost) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(real.v4),
            Family::V6 => IpAddr::V6(real.v6),
        }
    }

    /// nftables' name for the family in `ip daddr` and `dnat ip to`.
    fn nft(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }
}

/// Where the client connects for `service_port`: the VIP, or the real's own
/// address and the port it listens on (NAT reals use other ports).
fn target(rig: &Rig, route: Route, family: Family, service_port: u16) -> SocketAddr {
    match route {
        Route::ViaVip => SocketAddr::new(family.vip(), service_port),
        Route::Direct => SocketAddr::new(
            family.address_of(&rig.reals[0]),
            rig.mode.real_port(service_port),
        ),
    }
}

/// One side of a [`Comparison`]: its rounds and how the notes call it.
struct Side<'a> {
    samples: &'a Samples,
    label: &'a str,
}

/// Two routes measured in the same alternating rounds, reported as a TCP
/// throughput figure and a short-connections figure for one family.
struct Comparison<'a> {
    section: Section,
    /// "DR IPv4", "NAT IPv6".
    name: String,
    /// After "via VIP" in the figures' names: "", ", same hops".
    suffix: &'a str,
    measured: Side<'a>,
    reference: Side<'a>,
    /// The reference as the table names it.
    reference_name: &'a str,
    /// What the notes start with: how the two routes differ.
    context: &'a str,
    throughput_target: Option<Target>,
}

impl Comparison<'_> {
    fn add_to(&self, report: &mut Report, family: Family) {
        let index = family.index();
        let (measured, reference) = (&self.measured.samples, &self.reference.samples);
        let mut throughput = self.figure(
            &THROUGHPUT,
            (measured.throughput(family), reference.throughput(family)),
            (measured.retransmits[index], reference.retransmits[index]),
        );
        if let Some(target) = self.throughput_target {
            throughput = throughput.target(target);
        }
        report.add(throughput);
        report.add(self.figure(
            &CONNECTIONS,
            (measured.connections(family), reference.connections(family)),
            (
                measured.failed_requests[index],
                reference.failed_requests[index],
            ),
        ));
    }

    /// One figure of `kind` through the VIP against the reference route:
    /// both medians, the runs' ranges and what went wrong on each side.
    fn figure(
        &self,
        kind: &FigureKind,
        (rate, reference_rate): (Spread, Spread),
        (trouble, reference_trouble): (u64, u64),
    ) -> Figure {
        let (measured, reference) = (&self.measured.label, &self.reference.label);
        Figure::new(
            self.section,
            format!("{} {} via VIP{}", self.name, kind.what, self.suffix),
            rate.median,
            kind.unit,
        )
        .compared_to(self.reference_name, reference_rate.median)
        .note(format!(
            "{}; {}; {}{} {measured}, {} {reference}; {} {measured} {trouble}, \
             {reference} {reference_trouble}",
            self.context,
            kind.rig_note,
            rate.describe(),
            kind.range_unit,
            reference_rate.describe(),
            kind.trouble,
        ))
    }
}

fn add_e2e_figures(
    report: &mut Report,
    mode: Mode,
    family: Family,
    via_vip: &Samples,
    direct: &Samples,
) {
    Comparison {
        section: Section::EndToEnd,
        name: format!("{} {}", mode.name(), family.label()),
        suffix: "",
        measured: Side {
            samples: via_vip,
            label: "via VIP",
        },
        reference: Side {
            samples: direct,
            label: "direct",
        },
        reference_name: "direct to the real",
        context: direct_path(mode),
        throughput_target: Some(Target::RatioAtLeast(0.95)),
    }
    .add_to(report, family);
}

/// The VIP against the kernel forwarding the same packets across the same
/// hosts: what lbd's program costs on top of the hops themselves, which
/// on this one-host rig share the CPUs with the client and the real.
fn add_kernel_routed_figures(
    report: &mut Report,
    mode: Mode,
    family: Family,
    via_vip: &Samples,
    kernel_routed: &Samples,
) {
    Comparison {
        section: Section::EndToEnd,
        name: format!("{} {}", mode.name(), family.label()),
        suffix: ", same hops",
        measured: Side {
            samples: via_vip,
            label: "via VIP",
        },
        reference: Side {
            samples: kernel_routed,
            label: "kernel-routed",
        },
        reference_name: "kernel-routed via the balancer host",
        context: KERNEL_ROUTED_NOTE,
        throughput_target: None,
    }
    .add_to(report, family);
}

fn add_nftables_figures(
    report: &mut Report,
    family: Family,
    by_balancer: &Samples,
    by_nftables: &Samples,
) {
    Comparison {
        section: Section::Nftables,
        name: format!("NAT {}", family.label()),
        suffix: ", balancer",
        measured: Side {
            samples: by_balancer,
            label: "balancer",
        },
        reference: Side {
            samples: by_nftables,
            label: "nftables",
        },
        reference_name: "nftables DNAT",
        context: NFTABLES_NOTE,
        throughput_target: None,
    }
    .add_to(report, family);
}

/// What the VIP is compared with, per mode.
fn direct_path(mode: Mode) -> &'static str {
    match mode {
        Mode::Dr => {
            "direct: client -> real across the shared segment; via VIP the requests \
             also cross the balancer (XDP_TX back onto the segment), replies go straight back"
        }
        Mode::Tun => {
            "direct: client -> router (kernel forwarding) -> real; via VIP the requests \
             first cross the balancer (XDP, IP-in-IP) and are decapsulated by lbd decap on \
             the real, whose XDP program sees the direct traffic too; replies go back through \
             the router either way"
        }
        Mode::Nat => {
            "direct: client -> balancer host's kernel forwarding (no XDP program, no \
             netfilter rules: measured before lbd starts) -> real, both ways; via VIP lbd's \
             XDP program rewrites both directions on the same host"
        }
    }
}

/// What sets the two end-to-end figures of a route apart.
struct FigureKind {
    what: &'static str,
    unit: &'static str,
    rig_note: &'static str,
    /// After the measured runs' range in the note (the reference's range
    /// shares it).
    range_unit: &'static str,
    /// What counts as going wrong, counted on each side.
    trouble: &'static str,
}

const THROUGHPUT: FigureKind = FigureKind {
    what: "TCP throughput",
    unit: "Gbit/s",
    rig_note: RIG_NOTE,
    range_unit: " Gbit/s",
    trouble: "retransmits",
};

const CONNECTIONS: FigureKind = FigureKind {
    what: "short connections",
    unit: "conn/s",
    rig_note: WRK_NOTE,
    range_unit: "",
    trouble: "failed requests",
};

const RIG_NOTE: &str = "one iperf3 stream to one real, veth pairs and bridges on 2 shared cores; \
    tx checksum offload is off on every host in both paths (the rig needs it: XDP turns skbs \
    into raw frames), so no TSO either; the switch ports facing the balancer run an XDP_PASS \
    program (veth drops XDP_TX frames otherwise)";

const KERNEL_ROUTED_NOTE: &str = "kernel-routed: the client sends to the real's own address \
    through the balancer host, whose kernel forwards it (no XDP program, redirects off), so the \
    packets cross the same hosts and veths as via the VIP; via VIP: lbd's XDP program forwards \
    them (veth first copies every skb that is cloned, as a TCP \
    sender's segments are, or has under 256 bytes of headroom into a fresh page for the program; \
    the kernel path forwards the skb as it is)";

const WRK_NOTE: &str = "wrk, 2 threads, 32 connections, one request per connection \
    (Connection: close) to nginx on one real; client, balancer and real share 2 cores";

const NFTABLES_NOTE: &str = "same NAT rig and real; nftables: a prerouting DNAT rule per VIP:port \
    with `numgen random mod N map` over the reals (kube-proxy's nftables shape, conntrack \
    undoes it on replies), lbd not running; balancer: lbd in NAT mode, nftables table deleted";

const NFT_TABLE: &str = "lb_bench";

/// kube-proxy's nftables mode in miniature: per service a DNAT to an
/// endpoint picked by `numgen` for each new connection; conntrack keeps
/// the rest of the connection on it and reverses the translation on replies.
fn nftables_ruleset(rig: &Rig) -> String {
    let mut rules = String::new();
    for (_, port, protocol) in SERVICES {
        let real_port = rig.mode.real_port(port);
        for family in Family::BOTH {
            let endpoints: Vec<String> = rig
                .reals
                .iter()
                .enumerate()
                .map(|(index, real)| format!("{index} : {} . {real_port}", family.address_of(real)))
                .collect();
            rules.push_str(&format!(
                "    {nft} daddr {vip} {protocol} dport {port} dnat {nft} to numgen random mod {count} map {{ {endpoints} }}\n",
                nft = family.nft(),
                vip = family.vip(),
                count = rig.reals.len(),
                endpoints = endpoints.join(", "),
            ));
        }
    }
    format!(
        "table inet {NFT_TABLE} {{\n  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n{rules}  }}\n}}\n"
    )
}

/// A server process in a namespace, stopped when dropped.
struct Background(Child);

impl Drop for Background {
    /// SIGTERM first: SIGKILL on nginx's master would leave its workers
    /// running, orphaned, in a namespace kept alive only by them.
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// iperf3 and nginx on `real`, once both listen.
fn start_servers(rig: &Rig, real: &RealHost) -> Result<[Background; 2]> {
    Ok([start_iperf_server(rig, real)?, start_nginx(rig, real)?])
}

/// nginx answering every request with a short body, with its files in the
/// rig's work directory.
fn start_nginx(rig: &Rig, real: &RealHost) -> Result<Background> {
    let directory = rig.workdir.join(format!("nginx-{}", real.name));
    std::fs::create_dir_all(&directory)?;
    let config = directory.join("nginx.conf");
    std::fs::write(&config, nginx_config(&directory, &real.name))?;
    let log = File::create(directory.join("stderr.log"))?;
    let child = real
        .netns
        .command("nginx")
        .arg("-c")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting nginx")?;
    let server = Background(child);
    wait_until_listening(&real.netns, NGINX_PORT, Duration::from_secs(10))
        .with_context(|| format!("nginx on {}: see {}", real.name, directory.display()))?;
    Ok(server)
}

fn nginx_config(directory: &Path, body: &str) -> String {
    let directory = directory.display();
    format!(
        r#"worker_processes auto;
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server {{
        listen {NGINX_PORT};
        listen [::]:{NGINX_PORT};
        location / {{ return 200 "{body}\n"; }}
    }}
}}
"#
    )
}

/// Polls a TCP connect to `port` on the namespace's loopback.
fn wait_until_listening(netns: &Netns, port: u16, timeout: Duration) -> Result<()> {
    netns.enter(|| {
        let deadline = Instant::now() + timeout;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        while std::net::TcpStream::connect(address).is_err() {
            ensure!(
                Instant::now() < deadline,
                "nothing listens on port {port} after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    })
}

/// `iperf3 --server` in the real's namespace, once it listens.
fn start_iperf_server(rig: &Rig, real: &RealHost) -> Result<Background> {
    let log_path = rig.workdir.join(format!("iperf3-{}.log", real.name));
    let log = File::create(&log_path)?;
    let child = real
        .netns
        .command("iperf3")
        .args(["--server", "--port", &IPERF_PORT.to_string()])
        // Its stdout is a file: without this the "listening" line would sit
        // in a buffer.
        .arg("--forceflush")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting iperf3 --server")?;
    let server = Background(child);
    wait_for_text(&log_path, "Server listening", Duration::from_secs(10))?;
    Ok(server)
}

fn wait_for_text(path: &Path, text: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::fs::read_to_string(path)?.contains(text) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!(
        "{} did not show {text:?} within {timeout:?}: {}",
        path.display(),
        std::fs::read_to_string(path)?
    )
}

/// iperf3 and wrk take whole seconds.
fn whole_seconds(duration: Duration) -> u64 {
    (duration.as_secs_f64().ceil() as u64).max(1)
}

struct Throughput {
    gbits_per_second: f64,
    retransmits: u64,
}

/// One iperf3 stream from `client` to `target` for `duration`; the rate
/// the receiver counted.
fn iperf(client: &Netns, target: SocketAddr, duration: Duration) -> Result<Throughput> {
    let seconds = whole_seconds(duration);
    let stdout = within(client, Duration::from_secs(seconds) + TOOL_GRACE, "iperf3")
        .args(["--client", &target.ip().to_string()])
        .args(["--port", &target.port().to_string()])
        .args(["--time", &seconds.to_string()])
        .args(["--connect-timeout", "3000", "--json"])
        .run_with_input("")
        .with_context(|| format!("iperf3 to {target}"))?;
    parse_iperf(&stdout).with_context(|| format!("iperf3 to {target}"))
}

fn parse_iperf(stdout: &str) -> Result<Throughput> {
    let json: serde_json::Value = serde_json::from_str(stdout).context("iperf3's JSON")?;
    if let Some(error) = json.get("error") {
        bail!("iperf3: {error}");
    }
    let end = &json["end"];
    let bits_per_second = end["sum_received"]["bits_per_second"]
        .as_f64()
        .context("no end.sum_received.bits_per_second in iperf3's JSON")?;
    Ok(Throughput {
        gbits_per_second: bits_per_second / 1e9,
        retransmits: end["sum_sent"]["retransmits"].as_u64().unwrap_or(0),
    })
}

struct ConnectionRate {
    per_second: f64,
    /// Socket errors and non-2xx answers.
    failures: u64,
}

/// wrk from `client` against `target` for `duration`, each request on a
/// new connection.
fn wrk(client: &Netns, target: SocketAddr, duration: Duration) -> Result<ConnectionRate> {
    let seconds = whole_seconds(duration);
    let stdout = within(client, Duration::from_secs(seconds) + TOOL_GRACE, "wrk")
        .args(["--threads", &WRK_THREADS.to_string()])
        .args(["--connections", &WRK_CONNECTIONS.to_string()])
        .args(["--duration", &format!("{seconds}s")])
        .args(["--header", "Connection: close"])
        .arg(format!("http://{target}/"))
        .run_with_input("")
        .with_context(|| format!("wrk against {target}"))?;
    parse_wrk(&stdout).with_context(|| format!("wrk against {target}:\n{stdout}"))
}

/// Reads `Requests/sec:`, and the failures from `Socket errors: connect
/// A, read B, write C, timeout D` and `Non-2xx or 3xx responses: N` (wrk
/// prints those lines only when they are not zero).
fn parse_wrk(stdout: &str) -> Result<ConnectionRate> {
    let mut per_second = None;
    let mut failures = 0;
    for line in stdout.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            per_second = Some(rest.trim().parse::<f64>().context("Requests/sec")?);
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            for count in rest.split(',') {
                let number = count.split_whitespace().last().unwrap_or_default();
                failures += number.parse::<u64>().context("Socket errors")?;
            }
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            failures += rest.trim().parse::<u64>().context("Non-2xx")?;
        }
    }
    let per_second = per_second.context("no Requests/sec line")?;
    ensure!(per_second > 0.0, "no request completed");
    Ok(ConnectionRate {
        per_second,
        failures,
    })
}

/// `program` in `netns`, killed by coreutils' `timeout` after `limit` so a
/// path that stops forwarding fails the run instead of hanging it.
fn within(netns: &Netns, limit: Duration, program: &str) -> Command {
    let mut command = netns.command("timeout");
    command.arg(limit.as_secs().to_string()).arg(program);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_gives_rate_and_failures() {
        let stdout = "Running 1s test @ http://198.18.1.10:80/\n  2 threads and 32 connections\n  \
            12000 requests in 1.00s, 1.2MB read\n  Socket errors: connect 0, read 3, write 0, timeout 2\n  \
            Non-2xx or 3xx responses: 1\nRequests/sec:  11990.51\nTransfer/sec:      1.20MB\n";
        let rate = parse_wrk(stdout).unwrap();
        assert_eq!(rate.per_second, 11990.51);
        assert_eq!(rate.failures, 6);
        assert!(parse_wrk("Requests/sec: 0.00\n").is_err());
    }

    #[test]
    fn iperf_json_gives_received_rate() {
        let json = r#"{"end": {"sum_sent": {"retransmits": 7, "bits_per_second": 2.1e9},
                               "sum_received": {"bits_per_second": 2.0e9}}}"#;
        let throughput = parse_iperf(json).unwrap();
        assert_eq!(throughput.gbits_per_second, 2.0);
        assert_eq!(throughput.retransmits, 7);
        assert!(parse_iperf(r#"{"error": "unable to connect"}"#).is_err());
    }
}
