//! `conntrack`: the connection table's memory and its behaviour when full.
//!
//! - Memory: what the kernel charges for `LB_FLOWS` (the `memlock` line of
//!   the map's fdinfo) divided by its entries, at the default size, next to
//!   the contract's key + value sizes; and the same for the two tables
//!   sized like it (NAT replies, persistence templates).
//! - When full: the compiled program with private maps and a small flow
//!   table, one Maglev service of eight reals (the row built by the real
//!   Maglev builder, written here), run with `BPF_PROG_TEST_RUN` (repeat 1:
//!   the program rewrites the frame). Several times as many distinct new
//!   flows as the table holds are sent; each must come back on the real the
//!   row predicts (`row[flow_hash(key) % size]`, computed here, read back
//!   from the output frame's destination MAC). Then the most recent flows
//!   are sent again as established (ACK) packets, and must hit the table.
//! - Walking it: what lbd's per-second connection count costs over a full
//!   default-sized table (batched lookups, `dataplane::batch`), next to the
//!   same walk an entry at a time (two syscalls per entry, aya's iterator).

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    os::fd::{AsFd as _, AsRawFd as _},
    time::Instant,
};

use anyhow::{Context as _, Result, ensure};
use aya::{
    maps::{IterableMap, MapData, PerCpuValues},
    programs::{TestRun as _, TestRunOptions},
};
use lb_common::{
    Addr, ConnectionState, Family, FlowKey, FlowState, GlobalCounter, REAL_ACTIVE,
    REAL_NEXT_HOP_KNOWN, Real, SCHED_FLAG_PORT, Scheduler, Service, ServiceKey, Settings, VipInfo,
    VipKey, flow_hash::flow_hash, programs, proto,
};
use lb_tests::frames::{LB_MAC, Packet, Transport, real_mac};
use lb_userspace::{
    config,
    config::identity::identity_bytes,
    dataplane::{Dataplane, Geometry, monotonic_now_ns},
    maglev::{self, Backend},
    reaper,
};

use crate::{
    options::{Options, Section},
    report::{Figure, Report},
};

/// The flow table of the "when full" run, and how many times its size in
/// distinct new flows are sent.
const FULL_TABLE_ENTRIES: u32 = 16_384;
const QUICK_TABLE_ENTRIES: u32 = 1_024;
const FLOWS_PER_ENTRY: u32 = 4;
const REALS: u32 = 8;
const SERVICE_ID: u32 = 1;
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);
const VIP_PORT: u16 = 80;
/// Clients are `CLIENT_BASE + n / 50,000` on port `10,000 + n % 50,000`.
const CLIENT_BASE: Ipv4Addr = Ipv4Addr::new(198, 18, 64, 0);
const CLIENT_PORTS: u32 = 50_000;
/// Without `ctx_in`, a test run comes in on the namespace's loopback.
const INGRESS_IFINDEX: u32 = 1;
const XDP_TX: u32 = 3;

pub fn run(options: &Options, report: &mut Report) -> Result<()> {
    memory(report)?;
    when_full(options, report)?;
    walk(options, report)
}

// ---------------------------------------------------------------------------
// Memory per entry

fn memory(report: &mut Report) -> Result<()> {
    // The default geometry: the sizes a production lbd creates.
    let geometry = Geometry::default();
    let dataplane = Dataplane::load(geometry, None)?;
    let entries = geometry.flow_table_entries;
    let flows = memlock_bytes(IterableMap::map(&dataplane.maps.flows))?;
    let replies = memlock_bytes(IterableMap::map(&dataplane.maps.nat_replies))?;
    let templates = memlock_bytes(IterableMap::map(&dataplane.maps.persist))?;
    let contract = (size_of::<FlowKey>() + size_of::<FlowState>()) as f64;
    let cpus = aya::util::nr_cpus().map_err(|(_, error)| error)?;
    report.add(
        Figure::new(
            Section::ConnTable,
            "flow table, kernel memory per entry",
            flows as f64 / f64::from(entries),
            "bytes",
        )
        .compared_to("FlowKey + FlowState", contract)
        .note(format!(
            "memlock of LB_FLOWS (LRU hash, preallocated) / {entries} entries, {cpus} CPUs; \
             key {} + value {} bytes",
            size_of::<FlowKey>(),
            size_of::<FlowState>()
        )),
    );
    report.add(
        Figure::new(
            Section::ConnTable,
            "flow table, max entries (default)",
            f64::from(entries),
            "entries",
        )
        .note("dataplane.flow_table_entries, 1024 ..= 67108864"),
    );
    report.add(
        Figure::new(
            Section::ConnTable,
            "flow table, kernel memory (default)",
            mib(flows),
            "MiB",
        )
        .note(format!("memlock of LB_FLOWS at {entries} entries")),
    );
    report.add(
        Figure::new(
            Section::ConnTable,
            "flow-sized tables, kernel memory (default)",
            mib(flows + replies + templates),
            "MiB",
        )
        .note(format!(
            "LB_FLOWS {:.1} + LB_NAT_REPLIES {:.1} + LB_PERSIST {:.1} MiB, each sized \
             flow_table_entries",
            mib(flows),
            mib(replies),
            mib(templates)
        )),
    );
    Ok(())
}

/// What the kernel charges for a map: the `memlock` line of its fdinfo
/// (the map's memory usage on kernels since 6.4).
fn memlock_bytes(map: &MapData) -> Result<u64> {
    let fd = map.fd().as_fd().as_raw_fd();
    let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))?;
    fdinfo
        .lines()
        .find_map(|line| line.strip_prefix("memlock:"))
        .context("no memlock in the map's fdinfo")?
        .trim()
        .parse()
        .context("odd memlock value")
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// ---------------------------------------------------------------------------
// Walking a full table

const QUICK_WALK_FLOWS: u32 = 1 << 16;

fn walk(options: &Options, report: &mut Report) -> Result<()> {
    let geometry = Geometry {
        // The ring plays no part here; a small prime loads fast.
        maglev_table_size: 13,
        ..Geometry::default()
    };
    let flows = if options.quick {
        QUICK_WALK_FLOWS
    } else {
        geometry.flow_table_entries
    };
    let mut dataplane = Dataplane::load(geometry, None)?;
    let now_ns = monotonic_now_ns();
    fill_flows(&mut dataplane, flows, now_ns)?;
    let settings = Settings::IPVS_DEFAULTS;
    let (batched, counts) = best_of_3(|| {
        reaper::count_connections(&dataplane.maps, &settings, now_ns)
            .get(&1)
            .map_or(0, |conns| conns.active)
    });
    ensure!(counts == flows, "counted {counts} of {flows} flows");
    let (one_by_one, walked) = best_of_3(|| dataplane.maps.flows.iter().count() as u32);
    ensure!(walked == flows, "walked {walked} of {flows} flows");
    report.add(
        Figure::new(
            Section::ConnTable,
            "count connections, full flow table",
            batched * 1e3,
            "ms",
        )
        .compared_to("entry at a time", one_by_one * 1e3)
        .note(format!(
            "{flows} flows; lbd's per-second count (batched lookups) vs aya's \
             iterator (a syscall per key and per value); best of 3"
        )),
    );
    Ok(())
}

/// Seconds of the fastest of three runs of `run`, and what it returned.
fn best_of_3<T>(mut run: impl FnMut() -> T) -> (f64, T) {
    let mut fastest = f64::INFINITY;
    let mut result = None;
    for _ in 0..3 {
        let started = Instant::now();
        result = Some(run());
        fastest = fastest.min(started.elapsed().as_secs_f64());
    }
    (fastest, result.expect("three runs"))
}

/// `count` distinct established flows of real 1 in service 1, seen now.
fn fill_flows(dataplane: &mut Dataplane, count: u32, now_ns: u64) -> Result<()> {
    let maps = &mut dataplane.maps;
    let real = Real {
        flags: REAL_ACTIVE,
        service_id: SERVICE_ID,
        ..Real::default()
    };
    maps.reals.set(1, real, 0)?;
    let state = FlowState {
        real_id: 1,
        service_id: SERVICE_ID,
        last_seen_ns: now_ns,
        state: ConnectionState::TcpEstablished as u8,
        ..FlowState::default()
    };
    on_one_cpu(|| {
        for n in 0..count {
            maps.flows.insert(flow_key(n), state, 0)?;
        }
        Ok(())
    })?
}

/// Runs `work` on a thread bound to one CPU. Filling an LRU table to the
/// last entry needs that: the kernel hands each CPU free entries 128 at a
/// time, and a CPU that runs out while another still holds some evicts a
/// live entry rather than take them (bpf_lru_list shrinks before it
/// steals), so a fill that migrates between CPUs can end 128 short.
fn on_one_cpu<T: Send>(work: impl FnOnce() -> T + Send) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: a zeroed cpu_set_t is a valid empty set, and the
                // calls only read it (0: this thread).
                unsafe {
                    let cpu = usize::try_from(libc::sched_getcpu()).unwrap_or(0);
                    let mut set: libc::cpu_set_t = std::mem::zeroed();
                    libc::CPU_SET(cpu, &mut set);
                    if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
                        return Err(std::io::Error::last_os_error())
                            .context("binding the filling thread to one CPU");
                    }
                }
                Ok(work())
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the filling thread panicked"))?
    })
}

// ---------------------------------------------------------------------------
// When full

/// The data plane under test, and the row it was given.
struct Balancer {
    dataplane: Dataplane,
    row: Vec<u32>,
}

/// What one run of frames did.
#[derive(Default)]
struct Tally {
    sent: u64,
    /// Came back with XDP_TX to the real the row predicts.
    as_predicted: u64,
}

fn when_full(options: &Options, report: &mut Report) -> Result<()> {
    let entries = if options.quick {
        QUICK_TABLE_ENTRIES
    } else {
        FULL_TABLE_ENTRIES
    };
    let mut balancer = Balancer::load(entries)?;
    let new_flows = entries * FLOWS_PER_ENTRY;
    let before = balancer.global_counters()?;
    let fresh = balancer.send((0..new_flows).map(|n| flow(n, true)))?;
    let after_fresh = balancer.global_counters()?;
    let table_entries = balancer.flow_entries();
    // The most recent quarter of the table's worth: an LRU keeps these.
    let recent = entries / 4;
    let established = balancer.send((new_flows - recent..new_flows).map(|n| flow(n, false)))?;
    let after = balancer.global_counters()?;
    let hits = counter_delta(&after_fresh, &after, GlobalCounter::FlowHit);

    ensure!(
        fresh.as_predicted == fresh.sent,
        "{} of {} new flows went to another real than Maglev's",
        fresh.sent - fresh.as_predicted,
        fresh.sent
    );
    let load = format!(
        "{} distinct new TCP flows (SYN) into a table of {entries} entries, one Maglev \
         service of {REALS} reals, {} slots",
        fresh.sent,
        balancer.row.len()
    );
    report.add(
        Figure::new(
            Section::ConnTable,
            "full table: new flows scheduled as Maglev predicts",
            fresh.as_predicted as f64,
            "flows",
        )
        .note(format!(
            "{} of {}: {load}; each checked against row[flow_hash % size] computed here",
            fresh.as_predicted, fresh.sent
        )),
    );
    report.add(
        Figure::new(
            Section::ConnTable,
            "full table: entries held after",
            table_entries as f64,
            "entries",
        )
        .note(format!("LB_FLOWS walked after {load}")),
    );
    report.add(
        Figure::new(
            Section::ConnTable,
            "full table: recent established flows that hit",
            hits as f64,
            "flows",
        )
        .note(format!(
            "{hits} of {} ACKs of the last {recent} flows counted flow_hit; \
             {} of them on the predicted real",
            established.sent, established.as_predicted
        )),
    );
    for (name, moved) in moved_counters(&before, &after) {
        report.add(
            Figure::new(
                Section::ConnTable,
                format!("full table: counter {name}"),
                moved as f64,
                "packets",
            )
            .note(format!(
                "global counter over the whole run: {} SYNs then {} ACKs",
                fresh.sent, established.sent
            )),
        );
    }
    Ok(())
}

impl Balancer {
    /// The compiled program with private maps: one service, its reals and
    /// its Maglev row, and IPVS's default timeouts (so nothing expires).
    fn load(flow_table_entries: u32) -> Result<Self> {
        let geometry = Geometry {
            flow_table_entries,
            max_services: 1,
            max_reals: REALS,
            ..Geometry::default()
        };
        let mut dataplane = Dataplane::load(geometry, None)?;
        let maps = &mut dataplane.maps;
        let backends: Vec<Backend> = (1..=REALS)
            .map(|id| Backend {
                identity: identity_bytes(real_address(id).into(), VIP_PORT),
                id,
                weight: 1,
            })
            .collect();
        let row = maglev::build_table(&backends, geometry.maglev_table_size)?;
        for id in 1..=REALS {
            maps.reals.set(id, real(id), 0)?;
        }
        for (slot, &real_id) in row.iter().enumerate() {
            let index = SERVICE_ID * geometry.maglev_table_size + slot as u32;
            maps.maglev.set(index, real_id, 0)?;
        }
        maps.settings.set(0, default_settings(), 0)?;
        let (vip_key, service_key) = keys();
        maps.vips.insert(vip_key, VipInfo { services: 1 }, 0)?;
        let service = Service {
            id: SERVICE_ID,
            scheduler: Scheduler::Maglev as u8,
            sched_flags: SCHED_FLAG_PORT,
            row_len: geometry.maglev_table_size,
            ..Service::default()
        };
        maps.services.insert(service_key, service, 0)?;
        Ok(Self { dataplane, row })
    }

    /// Runs each frame once and checks where it went.
    fn send(&mut self, flows: impl Iterator<Item = Flow>) -> Result<Tally> {
        let mut tally = Tally::default();
        for flow in flows {
            let (action, out) = self.run_once(&flow.frame)?;
            let predicted = self.row[(flow_hash(&flow.key) % self.row.len() as u32) as usize];
            tally.sent += 1;
            if action == XDP_TX && out.get(..6) == Some(&real_mac(predicted)[..]) {
                tally.as_predicted += 1;
            }
        }
        Ok(tally)
    }

    /// One `BPF_PROG_TEST_RUN`, repeat 1: a second run would see the frame
    /// the first one rewrote.
    fn run_once(&mut self, frame: &[u8]) -> Result<(u32, Vec<u8>)> {
        let program = self.dataplane.program_mut(programs::BALANCER)?;
        let mut out = vec![0u8; 4096];
        let result = program.test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..TestRunOptions::new()
        })?;
        out.truncate(result.data_size_out as usize);
        Ok((result.return_value, out))
    }

    fn flow_entries(&self) -> usize {
        self.dataplane
            .maps
            .flows
            .keys()
            .filter(Result::is_ok)
            .count()
    }

    /// Every global counter, summed over the CPUs.
    fn global_counters(&self) -> Result<Counters> {
        GlobalCounter::ALL
            .into_iter()
            .map(|counter| {
                let values: PerCpuValues<u64> =
                    self.dataplane.maps.global_stats.get(&(counter as u32), 0)?;
                Ok((counter.name(), values.iter().sum()))
            })
            .collect()
    }
}

/// Global counters by name.
type Counters = BTreeMap<&'static str, u64>;

fn counter_delta(before: &Counters, after: &Counters, counter: GlobalCounter) -> u64 {
    after[counter.name()] - before[counter.name()]
}

/// The counters that moved, in the contract's order.
fn moved_counters(before: &Counters, after: &Counters) -> Vec<(&'static str, u64)> {
    GlobalCounter::ALL
        .into_iter()
        .map(|counter| (counter.name(), counter_delta(before, after, counter)))
        .filter(|(_, moved)| *moved > 0)
        .collect()
}

fn keys() -> (VipKey, ServiceKey) {
    let addr = Addr::from(std::net::IpAddr::V4(VIP));
    let family = Family::V4 as u8;
    let vip = VipKey {
        addr,
        family,
        _pad: [0; 3],
    };
    let service = ServiceKey {
        addr,
        port_be: VIP_PORT.to_be(),
        protocol: proto::TCP,
        family,
    };
    (vip, service)
}

/// IPVS's default timeouts, as lbd writes them for a default config.
fn default_settings() -> Settings {
    Settings {
        tcp: config::DEFAULT_TCP_TIMEOUT,
        tcp_fin: config::DEFAULT_TCP_FIN_TIMEOUT,
        udp: config::DEFAULT_UDP_TIMEOUT,
        flags: 0,
    }
}

fn real_address(id: u32) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 2, id as u8)
}

/// A real as lbd writes it for DR: active, next hop known, out of the
/// ingress interface (so the program answers XDP_TX).
fn real(id: u32) -> Real {
    let address = std::net::IpAddr::V4(real_address(id));
    Real {
        addr: Addr::from(address),
        family: Family::of(&address) as u8,
        flags: REAL_ACTIVE | REAL_NEXT_HOP_KNOWN,
        forwarding: lb_common::ForwardingMethod::DirectRouting as u8,
        service_id: SERVICE_ID,
        ifindex: INGRESS_IFINDEX,
        dst_mac: real_mac(id),
        src_mac: LB_MAC,
        weight: 1,
        ..Real::default()
    }
}

/// One client connection's frame and the key the data plane files it under.
struct Flow {
    frame: Vec<u8>,
    key: FlowKey,
}

/// Flow `n`: a SYN opening it, or an ACK within it.
fn flow(n: u32, syn: bool) -> Flow {
    let packet = packet(n, syn);
    Flow {
        frame: packet.bytes(),
        key: packet.flow_key(),
    }
}

fn packet(n: u32, syn: bool) -> Packet {
    let (client, port) = client_of(n);
    let transport = Transport::Tcp {
        src_port: port,
        dst_port: VIP_PORT,
        syn,
        ack: !syn,
        fin: false,
    };
    Packet {
        payload: b"bench".to_vec(),
        ..Packet::new(IpAddr::V4(client), IpAddr::V4(VIP), transport)
    }
}

/// Flow `n`'s client address and source port.
fn client_of(n: u32) -> (Ipv4Addr, u16) {
    let client = Ipv4Addr::from(u32::from(CLIENT_BASE) + n / CLIENT_PORTS);
    (client, (10_000 + n % CLIENT_PORTS) as u16)
}

/// Flow `n`'s key in the flow table.
fn flow_key(n: u32) -> FlowKey {
    packet(n, false).flow_key()
}
