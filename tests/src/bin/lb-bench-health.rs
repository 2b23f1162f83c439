//! `cargo xtask bench health`: what health checking costs at scale.
//!
//! lbd runs in a namespace with 10,000 reals (10 services of 1,000) whose
//! addresses all lead, through one veth, to a namespace that accepts TCP
//! for the whole range (an AnyIP route: `ip route add local ... dev lo`)
//! with a single responder. Two phases, side by side in one run, on the
//! same lbd: reals unprobed (`type: none`), then probed with `type: tcp`
//! at a 1 s interval after a reload. For each phase: lbd's CPU time from
//! /proc/PID/stat; for the probed phase, the interval between two probes
//! of each real as the responder sees them, against the configured 1 s.

use std::{
    collections::HashMap,
    io::Write as _,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, atomic::AtomicBool, atomic::Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use lb_tests::{
    lbd::Lbd,
    netns::{Netns, routed_pair, unique_prefix},
};
use lb_userspace::dataplane::{self, PinLayout};

const SERVICES: usize = 10;
const REALS_PER_SERVICE: usize = 1_000;
const INTERVAL: Duration = Duration::from_secs(1);
/// The reals' range: routed to the responder, which accepts all of it.
const REAL_BASE: Ipv4Addr = Ipv4Addr::new(198, 18, 128, 0);
const REAL_RANGE: &str = "198.18.128.0/18";

struct Options {
    seconds: u64,
}

fn options() -> Result<Options> {
    let mut options = Options { seconds: 20 };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                options.seconds = args
                    .next()
                    .context("--seconds needs a value")?
                    .parse()
                    .context("--seconds takes a whole number")?;
            }
            "--help" | "-h" => {
                println!("lb-bench-health [--seconds N]   (N seconds per phase, default 20)");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    ensure!(options.seconds >= 5, "--seconds must be at least 5");
    Ok(options)
}

fn main() {
    if !lb_tests::is_root() {
        eprintln!("lb-bench-health needs root (network namespaces and XDP)");
        std::process::exit(1);
    }
    if let Err(error) = options().and_then(|options| bench(&options)) {
        eprintln!("bench failed: {error:#}");
        std::process::exit(1);
    }
}

fn real_address(index: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(REAL_BASE) + index as u32)
}

fn config(pins: &Path, socket: &Path, check: &str) -> String {
    let mut yaml = format!(
        "interfaces: [{{ name: eth0, xdp_mode: native }}]\npin_path: {}\ncontrol: {{ socket: {} }}\n\
         services:\n",
        pins.display(),
        socket.display()
    );
    for service in 0..SERVICES {
        yaml += &format!(
            "  - name: s{service}\n    vip: 198.18.1.{}\n    port: 80\n    protocol: tcp\n    \
             forwarding: nat\n    health_check: {check}\n    reals:\n",
            service + 1
        );
        for real in 0..REALS_PER_SERVICE {
            let address = real_address(service * REALS_PER_SERVICE + real);
            yaml += &format!("      - {{ address: {address} }}\n");
        }
    }
    yaml
}

/// Accept times per local (real) address.
type Arrivals = Arc<Mutex<HashMap<Ipv4Addr, Vec<Instant>>>>;

struct Responder {
    listener: TcpListener,
    arrivals: Arrivals,
    recording: Arc<AtomicBool>,
}

fn start_responder(netns: &Netns) -> Result<Responder> {
    let listener = netns.enter(|| {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.bind(&SocketAddr::from(([0, 0, 0, 0], 80)).into())?;
        socket.listen(65_535)?;
        Ok(TcpListener::from(socket))
    })?;
    let arrivals: Arrivals = Arc::default();
    let recording = Arc::new(AtomicBool::new(false));
    let accept_from = listener.try_clone()?;
    let (record_into, record) = (arrivals.clone(), recording.clone());
    std::thread::spawn(move || {
        for stream in accept_from.incoming() {
            let Ok(stream) = stream else { break };
            let at = Instant::now();
            if record.load(Ordering::Relaxed)
                && let Ok(SocketAddr::V4(local)) = stream.local_addr()
                && let Ok(mut arrivals) = record_into.lock()
            {
                arrivals.entry(*local.ip()).or_default().push(at);
            }
        }
    });
    Ok(Responder {
        listener,
        arrivals,
        recording,
    })
}

/// User + system CPU seconds of a process so far.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").context("odd /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after ") ".
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks as f64 / per_second)
}

/// CPU share of one core lbd used over `seconds`.
fn measure_cpu(lbd: &Lbd, seconds: u64) -> Result<f64> {
    let (start, cpu_start) = (Instant::now(), cpu_seconds(lbd.pid())?);
    std::thread::sleep(Duration::from_secs(seconds));
    let used = cpu_seconds(lbd.pid())? - cpu_start;
    Ok(used / start.elapsed().as_secs_f64())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn bench(options: &Options) -> Result<()> {
    dataplane::ensure_bpffs(Path::new("/sys/fs/bpf/"))?;
    let prefix = unique_prefix();
    let workdir = std::env::temp_dir().join(format!("{prefix}-bench"));
    std::fs::create_dir_all(&workdir)?;
    let (balancer, responder_ns) = namespaces(&prefix)?;
    let responder = start_responder(&responder_ns)?;
    let files = Files {
        pins: PinLayout::new(format!("/sys/fs/bpf/{prefix}-bench")),
        socket: workdir.join("lbd.sock"),
        config: workdir.join("lb.yaml"),
        log: workdir.join("lbd.log"),
    };
    let result = measure_phases(options, &balancer, &responder, &files)
        .and_then(|phases| print_summary(options, &phases));
    drop(responder.listener);
    let _ = dataplane::teardown(&files.pins);
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&workdir);
    } else {
        eprintln!("lbd's log: {}", files.log.display());
    }
    result
}

/// lbd's namespace, and the responder's behind it, which holds the whole
/// real range (AnyIP) and has queues deep enough for every real's probes.
fn namespaces(prefix: &str) -> Result<(Netns, Netns)> {
    let (balancer, responder_ns) =
        routed_pair(&format!("{prefix}-lb"), &format!("{prefix}-rs"), REAL_RANGE)?;
    responder_ns.ip(&["route", "add", "local", REAL_RANGE, "dev", "lo"])?;
    responder_ns.sysctl("net.core.somaxconn", "65535")?;
    responder_ns.sysctl("net.ipv4.tcp_max_syn_backlog", "65535")?;
    balancer.sysctl("net.ipv4.ip_local_port_range", "10000 65000")?;
    balancer.sysctl("net.ipv4.tcp_tw_reuse", "1")?;
    Ok((balancer, responder_ns))
}

/// Where one run keeps lbd's pins, socket, configuration and log.
struct Files {
    pins: PinLayout,
    socket: PathBuf,
    config: PathBuf,
    log: PathBuf,
}

/// What the two phases measured.
struct Phases {
    /// lbd's CPU share of one core, reals unprobed.
    idle: f64,
    /// The same, every real probed each interval.
    probing: f64,
    /// When the responder accepted each real's probes (probed phase).
    arrivals: HashMap<Ipv4Addr, Vec<Instant>>,
    /// lbd's log at the end of the run.
    log_text: String,
}

/// The unprobed phase, then a reload to TCP probes and the probed phase,
/// on the same lbd.
fn measure_phases(
    options: &Options,
    balancer: &Netns,
    responder: &Responder,
    files: &Files,
) -> Result<Phases> {
    let reals = SERVICES * REALS_PER_SERVICE;
    let write_config = |check: &str| {
        std::fs::write(
            &files.config,
            config(&files.pins.root, &files.socket, check),
        )
    };
    write_config("{ type: none }")?;
    println!("health checking at scale: {reals} reals, lbd in a namespace, one responder");
    let mut lbd = Lbd::start(balancer, &files.config, &files.log)?;
    lbd.wait_ready()?;
    // Let start-up work (first tables, ARP) settle before measuring.
    std::thread::sleep(Duration::from_secs(3));
    let idle = measure_cpu(&lbd, options.seconds)?;

    write_config(&format!(
        "{{ type: tcp, interval: {}s, timeout: 500ms }}",
        INTERVAL.as_secs()
    ))?;
    let seen = lbd.log_text().matches("reloaded").count();
    lbd.signal(libc::SIGHUP)?;
    lbd.wait_for_log("reloaded", seen, Duration::from_secs(30))?;
    // One interval for the jittered starts, one more to settle.
    std::thread::sleep(INTERVAL * 2);
    responder.recording.store(true, Ordering::Relaxed);
    let probing = measure_cpu(&lbd, options.seconds)?;
    responder.recording.store(false, Ordering::Relaxed);
    let arrivals = std::mem::take(&mut *responder.arrivals.lock().expect("arrivals"));
    let log_text = lbd.log_text();
    drop(lbd);
    Ok(Phases {
        idle,
        probing,
        arrivals,
        log_text,
    })
}

/// Prints both phases' CPU, the probes the responder saw and their
/// interval jitter; fails unless every real was probed.
fn print_summary(options: &Options, phases: &Phases) -> Result<()> {
    let reals = SERVICES * REALS_PER_SERVICE;
    let Phases {
        idle,
        probing,
        arrivals,
        log_text,
    } = phases;
    let (idle, probing) = (*idle, *probing);
    let mut intervals: Vec<f64> = Vec::new();
    let mut probes = 0usize;
    for times in arrivals.values() {
        probes += times.len();
        intervals.extend(
            times
                .windows(2)
                .map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0),
        );
    }
    let mut jitter: Vec<f64> = intervals
        .iter()
        .map(|ms| (ms - INTERVAL.as_secs_f64() * 1000.0).abs())
        .collect();
    jitter.sort_by(f64::total_cmp);
    let rate = probes as f64 / options.seconds as f64;
    let probed_reals = arrivals.len();
    let down = log_text.matches("real is down").count();
    let mut out = std::io::stdout().lock();
    writeln!(out, "phase                       lbd CPU (% of one core)")?;
    writeln!(out, "  {reals} reals, unprobed     {:>8.2}", idle * 100.0)?;
    writeln!(
        out,
        "  {reals} reals, tcp every 1s {:>8.2}",
        probing * 100.0
    )?;
    writeln!(
        out,
        "probing costs {:.2}% of a core more ({:.1} us of CPU per probe); probed/unprobed CPU = {:.2}x",
        (probing - idle) * 100.0,
        (probing - idle) * 1e6 / rate.max(1.0),
        probing / idle.max(1e-9)
    )?;
    writeln!(
        out,
        "probes seen by the responder: {probes} in {}s = {rate:.0}/s from {probed_reals} reals (expected {reals}/s)",
        options.seconds
    )?;
    writeln!(
        out,
        "probe interval jitter |interval - 1s| over {} intervals: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        jitter.len(),
        percentile(&jitter, 0.5),
        percentile(&jitter, 0.99),
        jitter.last().copied().unwrap_or(f64::NAN)
    )?;
    writeln!(out, "reals marked down during the run: {down}")?;
    ensure!(
        probed_reals == reals,
        "only {probed_reals} of {reals} reals were probed"
    );
    Ok(())
}
