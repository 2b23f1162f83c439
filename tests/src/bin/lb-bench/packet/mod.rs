//! The data plane's own figures: what a packet costs the XDP program, how
//! many packets a core forwards, and the same against nftables DNAT.
//!
//! - **cost**: frames from an AF_PACKET generator arrive on the balancer's
//!   veth as real traffic; the kernel's BPF statistics give run time / run
//!   count of the attached program. The floor is `lb_reflect` (swap MACs,
//!   XDP_TX) on the same interface, with the same frames, measured before
//!   and after the balancer.
//! - **rate**: BPF_PROG_RUN in live-frames mode pushes one 64-byte frame
//!   through the program as fast as one core can, and frames really leave
//!   (XDP_TX and redirects are carried out); what reaches the far veth is
//!   counted there.
//! - **nftables**: the same generator, with `lb_pass` instead, feeds the
//!   kernel stack, where nftables DNAT (kube-proxy's rule shape) does what
//!   the balancer's NAT mode does.

mod frames;
mod generator;
mod rig;
mod stats;

use std::{net::IpAddr, time::Duration};

use anyhow::{Context as _, Result, ensure};
use aya::programs::{TestRun as _, TestRunAttrs, TestRunOptions};
use lb_common::{
    BenchFrame, Family as AddrFamily, FlowKey, GlobalCounter,
    bench::programs::{REFLECT, REPLAY},
    capacity, programs,
};
use lb_tests::rig::small_geometry;
use lb_userspace::dataplane::{self, Dataplane, Geometry, Maps, bench::BenchPrograms};

use self::{
    frames::{Flow, Transport},
    generator::{Flows, blast},
    rig::{Family, Mode, SERVICE_PORT, Side, XdpRig, attach_bench_program, total},
    stats::{RunStats, enable_run_time_stats, veth_xdp_packets},
};
use crate::{
    options::{Options, Section},
    process::RunWithInput as _,
    report::{Figure, HostCannot, Report, Target},
    spread::Spread,
};

const QUICK_FLOW_TABLE_ENTRIES: u32 = 1 << 16;
/// Known flows the "hit" cases cycle through.
const KNOWN_FLOWS: u16 = 256;
const FIRST_CLIENT_PORT: u16 = 40_000;
/// Cost targets: ratio to the reflector on a hit and on a new flow.
const HIT_TARGET: f64 = 2.0;
const NEW_FLOW_TARGET: f64 = 3.0;

pub fn cost(options: &Options, report: &mut Report) -> Result<()> {
    let _stats = enable_run_time_stats()?;
    let mut rig = XdpRig::build()?;
    let floor_before = reflector_costs(&rig, options)?;
    // The product's default table; a small one for --quick, whose debug
    // lbd would take long to walk a million flows.
    let flow_table = if options.quick {
        QUICK_FLOW_TABLE_ENTRIES
    } else {
        capacity::DEFAULT_FLOW_TABLE_ENTRIES
    };
    rig.start_lbd(flow_table, None)?;
    let balancer = rig.balancer_program_id()?;
    let mut figures = Vec::new();
    for mode in Mode::ALL {
        for family in Family::BOTH {
            let frames = request_frames(&rig, mode, family, Transport::TcpAck);
            let sink = mode_sink(mode);
            let hit = measure(
                &rig,
                balancer,
                Side::Clients,
                &frames,
                Flows::Known,
                sink,
                options,
            )?;
            figures.push((mode_case(mode), family, HIT, hit, String::new()));
            if mode == Mode::Nat {
                // Answer the flows the hit case just left, before new
                // flows push them out of the LRU.
                let replies = nat_reply_frames(&rig, family)?;
                let reply = measure(
                    &rig,
                    balancer,
                    Side::Reals,
                    &replies,
                    Flows::Known,
                    Side::Clients,
                    options,
                )?;
                figures.push(("NAT reply".to_owned(), family, HIT, reply, String::new()));
            }
            let (new, recorded) = measure_new_flows(&rig, balancer, mode, family, options)?;
            figures.push((mode_case(mode), family, NEW_FLOW, new, recorded));
        }
    }
    rig.stop_lbd()?;
    // The same new flows with every one of them recorded: what the flood
    // guard spares DR and TUN (NAT flows are always recorded).
    rig.start_lbd(flow_table, Some(0))?;
    let balancer = rig.balancer_program_id()?;
    for mode in [Mode::Dr, Mode::Tun] {
        for family in Family::BOTH {
            let (new, recorded) = measure_new_flows(&rig, balancer, mode, family, options)?;
            figures.push((mode_case(mode), family, NEW_FLOW_RECORDED, new, recorded));
        }
    }
    rig.stop_lbd()?;
    let floor_after = reflector_costs(&rig, options)?;
    for (case, family, (flow_case, target), measured, recorded) in figures {
        let index = usize::from(family == Family::V6);
        let floor = (floor_before[index] + floor_after[index]) / 2.0;
        report.add(
            Figure::new(
                Section::Cost,
                format!("{case} {} {flow_case}", family.name()),
                measured.ns_per_packet,
                "ns/packet",
            )
            .compared_to(format!("reflector {}", family.name()), floor)
            .target(Target::RatioAtMost(target))
            .note(format!(
                "{} packets, {} delivered{recorded}; reflector {:.1} ns before, {:.1} ns after",
                measured.runs, measured.delivered, floor_before[index], floor_after[index]
            )),
        );
    }
    Ok(())
}

/// The flow cases of the cost section, with their targets.
const HIT: (&str, f64) = ("flow-table hit", HIT_TARGET);
const NEW_FLOW: (&str, f64) = ("new flow every packet", NEW_FLOW_TARGET);
const NEW_FLOW_RECORDED: (&str, f64) = ("new flow every packet, flood guard off", NEW_FLOW_TARGET);

/// A TCP ACK of a new 5-tuple every packet, from the clients. Also says
/// how many of the new flows the flood guard left unrecorded (warm-up
/// included).
fn measure_new_flows(
    rig: &XdpRig,
    balancer: u32,
    mode: Mode,
    family: Family,
    options: &Options,
) -> Result<(Measured, String)> {
    let counters = || rig.counters([GlobalCounter::FlowNew, GlobalCounter::FlowUnrecorded]);
    let before = counters()?;
    let frames = request_frames(rig, mode, family, Transport::TcpAck);
    let flows = Flows::NewEachPacket {
        ipv6: family == Family::V6,
        first: 0,
    };
    let measured = measure(
        rig,
        balancer,
        Side::Clients,
        &frames,
        flows,
        mode_sink(mode),
        options,
    )?;
    let after = counters()?;
    let (new, unrecorded) = (after[0] - before[0], after[1] - before[1]);
    Ok((
        measured,
        format!(", {new} new flows, {unrecorded} unrecorded"),
    ))
}

fn mode_case(mode: Mode) -> String {
    match mode {
        Mode::Nat => "NAT request".to_owned(),
        mode => mode.name().to_owned(),
    }
}

/// The reflector's ns/packet for IPv4 and IPv6 frames (the DR request
/// frames: the reflector does not look past Ethernet, but frame sizes
/// differ by family).
fn reflector_costs(rig: &XdpRig, options: &Options) -> Result<[f64; 2]> {
    let mut reflector = attach_bench_program(&rig.lb, "eth0", REFLECT)?;
    let id = reflector.program_mut(REFLECT)?.info()?.id();
    let mut costs = [0.0; 2];
    for (index, family) in Family::BOTH.into_iter().enumerate() {
        let frames = request_frames(rig, Mode::Dr, family, Transport::TcpAck);
        costs[index] = measure(
            rig,
            id,
            Side::Clients,
            &frames,
            Flows::Known,
            Side::Clients,
            options,
        )?
        .ns_per_packet;
    }
    drop(reflector);
    Ok(costs)
}

fn mode_sink(mode: Mode) -> Side {
    match mode {
        Mode::Dr => Side::Clients,
        Mode::Tun | Mode::Nat => Side::Reals,
    }
}

struct Measured {
    ns_per_packet: f64,
    runs: u64,
    delivered: u64,
}

/// Sends `frames` for the configured duration after a short warm-up (which
/// also creates the known flows), and divides the program's run time by
/// its runs. Fails unless nearly every run reached the expected sink: a
/// case whose packets took another path would be measuring something else.
fn measure(
    rig: &XdpRig,
    program_id: u32,
    sender: Side,
    frames: &[Vec<u8>],
    flows: Flows,
    sink: Side,
    options: &Options,
) -> Result<Measured> {
    let sender_netns = rig.side(sender);
    let sink_netns = rig.side(sink);
    let warm_up = Duration::from_millis(200);
    let warm_up_sent = sender_netns.enter(|| blast("eth0", frames, flows, warm_up))?;
    let stats_before = RunStats::of(program_id)?;
    let delivered_before = veth_xdp_packets(sink_netns, "eth0")?;
    let flows = flows.after(warm_up_sent);
    sender_netns.enter(|| blast("eth0", frames, flows, options.duration))?;
    // Frames still in the veth ring are handled within microseconds.
    std::thread::sleep(Duration::from_millis(50));
    let run = RunStats::of(program_id)?.since(stats_before);
    let delivered = veth_xdp_packets(sink_netns, "eth0")? - delivered_before;
    ensure!(run.runs > 0, "the program never ran");
    ensure!(
        delivered as f64 >= 0.95 * run.runs as f64,
        "only {delivered} of {} packets reached the expected side; the balancer's counters: {}",
        run.runs,
        rig.global_counters()
    );
    Ok(Measured {
        ns_per_packet: run.ns_per_run(),
        runs: run.runs,
        delivered,
    })
}

fn request_frames(rig: &XdpRig, mode: Mode, family: Family, transport: Transport) -> Vec<Vec<u8>> {
    (0..KNOWN_FLOWS)
        .map(|n| {
            Flow {
                src_mac: rig.client_mac,
                dst_mac: rig.lb_mac,
                src: family.client(),
                dst: family.vip(mode),
                src_port: FIRST_CLIENT_PORT + n,
                dst_port: SERVICE_PORT,
                transport,
            }
            .frame()
            .expect("frames of one family")
        })
        .collect()
}

/// Replies from the reals for every NAT flow of `family` the balancer
/// holds, built from its reply table (which real got which flow is the
/// balancer's choice).
fn nat_reply_frames(rig: &XdpRig, family: Family) -> Result<Vec<Vec<u8>>> {
    let maps = Maps::open_pinned(&rig.pins)?;
    let mut frames = Vec::new();
    for entry in maps.nat_replies.iter() {
        let (key, _reply): (FlowKey, _) = entry?;
        let addr_family = match family {
            Family::V4 => AddrFamily::V4,
            Family::V6 => AddrFamily::V6,
        };
        if key.family != addr_family as u8 || key.protocol != lb_common::proto::TCP {
            continue;
        }
        let src: IpAddr = key.src.to_ip(addr_family);
        let dst: IpAddr = key.dst.to_ip(addr_family);
        if dst != family.client() {
            continue;
        }
        frames.push(
            Flow {
                src_mac: rig.sink_mac,
                dst_mac: rig.lb_inner_mac,
                src,
                dst,
                src_port: u16::from_be(key.src_port),
                dst_port: u16::from_be(key.dst_port),
                transport: Transport::TcpAck,
            }
            .frame()?,
        );
        if frames.len() == usize::from(KNOWN_FLOWS) {
            break;
        }
    }
    ensure!(
        !frames.is_empty(),
        "the balancer holds no {} NAT flows",
        family.name()
    );
    Ok(frames)
}

// ---------------------------------------------------------------- rate

/// Rate target: the balancer forwards at least this share of the
/// reflector's rate on the same core.
const RATE_TARGET: f64 = 0.5;
/// Frames per BPF_PROG_RUN batch (the kernel's default is 64).
const LIVE_BATCH: u32 = 64;

pub fn rate(options: &Options, report: &mut Report) -> Result<()> {
    let mut rig = XdpRig::build()?;
    rig.start_lbd(capacity::DEFAULT_FLOW_TABLE_ENTRIES, None)?;
    // A second instance of the balancer program on lbd's pinned maps: the
    // same code and state, in this process so it can be test-run.
    let mut dataplane = rig
        .lb
        .enter(|| Dataplane::load(Geometry::default(), Some(&rig.pins)))?;
    let mut bench = BenchPrograms::load()?;
    let frame = request_frames(&rig, Mode::Dr, Family::V4, Transport::Udp).remove(0);
    let reflector = live_rate(
        &rig,
        bench.program_mut(REFLECT)?,
        &frame,
        Side::Clients,
        options,
    )?;
    let balancer = live_rate(
        &rig,
        dataplane.program_mut(programs::BALANCER)?,
        &frame,
        Side::Clients,
        options,
    )?;
    report.add(
        Figure::new(
            Section::Rate,
            "DR IPv4 64-byte flow-table hit",
            balancer.delivered_mpps,
            "Mpps",
        )
        .compared_to("reflector", reflector.delivered_mpps)
        .target(Target::RatioAtLeast(RATE_TARGET))
        .note(format!(
            "offered {:.2} / {:.2} Mpps (balancer / reflector), one core",
            balancer.offered_mpps, reflector.offered_mpps
        )),
    );
    Ok(())
}

struct Rate {
    frames: u64,
    offered_mpps: f64,
    delivered_mpps: f64,
}

/// Runs `program` over `frame` in live-frames mode for the configured
/// duration, as if it arrived on the balancer's eth0.
fn live_rate(
    rig: &XdpRig,
    program: &mut aya::programs::Xdp,
    frame: &[u8],
    sink: Side,
    options: &Options,
) -> Result<Rate> {
    let sink_netns = rig.side(sink);
    let delivered_before = veth_xdp_packets(sink_netns, "eth0")?;
    let (frames, elapsed) = rig
        .lb
        .enter(|| run_live(program, frame, options.duration))?;
    std::thread::sleep(Duration::from_millis(50));
    let delivered = veth_xdp_packets(sink_netns, "eth0")? - delivered_before;
    let seconds = elapsed.as_secs_f64();
    Ok(Rate {
        frames,
        offered_mpps: frames as f64 / seconds / 1e6,
        delivered_mpps: delivered as f64 / seconds / 1e6,
    })
}

fn run_live(
    program: &mut aya::programs::Xdp,
    frame: &[u8],
    duration: Duration,
) -> Result<(u64, Duration)> {
    let ifindex = dataplane::ifindex("eth0")?;
    // struct xdp_md { data, data_end, data_meta, ingress_ifindex,
    // rx_queue_index, egress_ifindex }: the kernel wants data and
    // data_meta 0 and data_end the frame length.
    let context: Vec<u8> = [0, frame.len() as u32, 0, ifindex, 0, 0]
        .into_iter()
        .flat_map(u32::to_ne_bytes)
        .collect();
    const REPEAT: u32 = 1 << 18;
    let start = std::time::Instant::now();
    let mut frames = 0u64;
    while start.elapsed() < duration {
        program
            .test_run(TestRunOptions {
                data_in: Some(frame),
                ctx_in: Some(&context),
                repeat: REPEAT,
                attrs: TestRunAttrs::new().xdp_live_frames(LIVE_BATCH),
                ..TestRunOptions::new()
            })
            .map_err(live_frames_error)?;
        frames += u64::from(REPEAT);
    }
    Ok((frames, start.elapsed()))
}

/// Some kernels refuse BPF_PROG_RUN's live-frames mode with EPERM even to
/// root (seen on VMs whose hypervisor filters it); no rate can be measured
/// there, which the report says instead of failing the whole run.
fn live_frames_error(error: aya::programs::ProgramError) -> anyhow::Error {
    let refused = matches!(
        &error,
        aya::programs::ProgramError::SyscallError(syscall)
            if syscall.io_error.raw_os_error() == Some(libc::EPERM)
    );
    if refused {
        anyhow::Error::new(HostCannot(
            "this kernel refuses BPF_PROG_RUN with live frames (EPERM, even as root)".into(),
        ))
    } else {
        anyhow::Error::new(error).context("BPF_PROG_RUN with live frames")
    }
}

/// The balancer's NAT at least this many times nftables DNAT's rate.
const NFTABLES_TARGET: f64 = 3.0;

/// nftables DNAT as kube-proxy's nftables mode lays it out: a jump per
/// service, a random pick among endpoint chains, a DNAT in each.
fn nftables_ruleset(family: Family) -> String {
    let vip = family.vip(Mode::Nat);
    let [first, second] = family.reals(Mode::Nat);
    let port = Mode::Nat.real_port(SERVICE_PORT);
    format!(
        "table ip lb-bench {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr {vip} udp dport {SERVICE_PORT} jump service-nat
  }}
  chain service-nat {{
    numgen random mod 2 vmap {{ 0 : jump endpoint-1, 1 : jump endpoint-2 }}
  }}
  chain endpoint-1 {{
    meta l4proto udp dnat to {first}:{port}
  }}
  chain endpoint-2 {{
    meta l4proto udp dnat to {second}:{port}
  }}
}}
"
    )
}

/// Rounds of the nftables comparison: this machine's speed drifts from
/// minute to minute, so the balancer, the harness floor and the kernel
/// take turns and each figure is the median of its runs.
const NFTABLES_ROUNDS: usize = 3;

pub fn nftables_rate(options: &Options, report: &mut Report) -> Result<()> {
    let mut rig = XdpRig::build()?;
    rig.start_lbd(capacity::DEFAULT_FLOW_TABLE_ENTRIES, None)?;
    let frame = request_frames(&rig, Mode::Nat, Family::V4, Transport::Udp).remove(0);
    // The maps lbd filled live on in this copy of the program after lbd
    // stops, so the kernel's turns run without lbd, as users would have it.
    let mut balancer = rig
        .lb
        .enter(|| Dataplane::load(Geometry::default(), Some(&rig.pins)))?;
    rig.stop_lbd()?;
    let ruleset = nftables_ruleset(Family::V4);
    rig.lb
        .command("nft")
        .args(["--file", "-"])
        .run_with_input(&ruleset)
        .context("loading the nftables DNAT ruleset")?;
    // XDP_PASS in live-frames mode hands each frame to the stack, as the
    // driver would: routing, conntrack and the DNAT rules all run. The
    // stack rewrites the page too (DNAT, TTL, the next hop's MACs), and so
    // does the balancer's NAT, so every side runs behind lb_replay, which
    // restores the original request before each run.
    let mut kernel = rig.lb.enter(|| Dataplane::load(small_geometry(), None))?;
    let mut kernel_replay = BenchPrograms::load()?;
    let mut replay = BenchPrograms::load()?;
    let template = BenchFrame(
        frame
            .as_slice()
            .try_into()
            .context("a minimum-size frame")?,
    );
    kernel_replay.replay_into(kernel.program_mut(programs::PASS)?.fd()?, template)?;
    let balancer_fd = balancer
        .program_mut(programs::BALANCER)?
        .fd()?
        .try_clone()?;
    let reflector_fd = replay.program_mut(REFLECT)?.fd()?.try_clone()?;
    let rounds = if options.quick { 1 } else { NFTABLES_ROUNDS };
    let (mut ours, mut floors, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        replay.replay_into(&balancer_fd, template)?;
        let before = total(&balancer.maps, GlobalCounter::Forwarded)?;
        let rate = live_rate(
            &rig,
            replay.program_mut(REPLAY)?,
            &frame,
            Side::Reals,
            options,
        )?;
        let rewritten = total(&balancer.maps, GlobalCounter::Forwarded)? - before;
        // Every run must have seen the original request (a rewritten page
        // would go to the kernel instead).
        ensure!(
            rewritten as f64 >= 0.99 * rate.frames as f64,
            "the balancer rewrote only {rewritten} of {} frames",
            rate.frames
        );
        ours.push(rate);
        // What this harness carries at most: the same restore in front of
        // the reflector (no lookup, no rewrite, XDP_TX back out).
        replay.replay_into(&reflector_fd, template)?;
        floors.push(live_rate(
            &rig,
            replay.program_mut(REPLAY)?,
            &frame,
            Side::Clients,
            options,
        )?);
        theirs.push(live_rate(
            &rig,
            kernel_replay.program_mut(REPLAY)?,
            &frame,
            Side::Reals,
            options,
        )?);
    }
    report_nftables_rate(report, rounds, &ours, &floors, &theirs);
    Ok(())
}

/// The balancer's rate against nftables DNAT's and against the harness
/// floor, from the medians of the alternating rounds.
fn report_nftables_rate(
    report: &mut Report,
    rounds: usize,
    ours: &[Rate],
    floors: &[Rate],
    theirs: &[Rate],
) {
    let delivered =
        |rates: &[Rate]| Spread::of(&rates.iter().map(|r| r.delivered_mpps).collect::<Vec<_>>());
    let offered =
        |rates: &[Rate]| Spread::of(&rates.iter().map(|r| r.offered_mpps).collect::<Vec<_>>());
    let (ours_delivered, floor, kernel_delivered) =
        (delivered(ours), delivered(floors), delivered(theirs));
    report.add(
        Figure::new(
            Section::Nftables,
            "NAT IPv4 64-byte UDP, one flow",
            ours_delivered.median,
            "Mpps",
        )
        .compared_to("nftables DNAT", kernel_delivered.median)
        .target(Target::RatioAtLeast(NFTABLES_TARGET))
        .note(format!(
            "one core, {rounds} alternating rounds: balancer {}, nftables {} Mpps delivered \
                 (offered: medians {:.2} / {:.2}); both behind lb_replay restoring the frame; \
                 nftables: kube-proxy's rule shape, conntrack on, lbd not running",
            ours_delivered.describe(),
            kernel_delivered.describe(),
            offered(ours).median,
            offered(theirs).median,
        )),
    );
    report.add(
        Figure::new(
            Section::Nftables,
            "NAT IPv4 64-byte UDP, one flow, vs the harness floor",
            ours_delivered.median,
            "Mpps",
        )
        .compared_to("lb_replay + reflector", floor.median)
        .note(format!(
            "the same frame restored by lb_replay and sent straight back by the reflector, in \
             the same rounds ({}): the most this harness delivers on one core; \
             {NFTABLES_TARGET}x nftables DNAT would be {:.2}x of it",
            floor.describe(),
            NFTABLES_TARGET * kernel_delivered.median / floor.median
        )),
    );
}
