//! `control`: what the control plane costs at scale, measured on the real
//! `lbd` and `lbadm` binaries (and, for Maglev, the real table builder).
//!
//! - Applying 1,000 services x 100 reals from YAML: once as a SIGHUP reload
//!   of a running lbd that had no services (what a user changing the file
//!   waits for: parse, validate, resolve next hops, write every map), once as
//!   a cold start (the same plus loading, verifying and attaching the XDP
//!   program). The clock stops at the log line lbd writes after the last map
//!   write (`reloaded`, `ready`).
//! - lbd's memory (VmRSS now, VmHWM its peak) with that configuration loaded.
//! - Maglev table builds for 10, 100 and 1,000 reals at 65,537 slots.
//! - `lbadm -L -n` over 10,000 services (two reals each), read from the
//!   pinned maps of a running lbd.
//!
//! lbd runs in a namespace of its own; its reals (NAT, so they may share
//! addresses across ports) sit behind a gateway in a second namespace that
//! answers ARP, so every real has a next hop and a share of its Maglev row,
//! as in production.

use std::{
    collections::HashMap,
    fs::File,
    io::{Read as _, Seek as _, SeekFrom},
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use lb_tests::{
    lbd::{Lbd, binary},
    netns::{self, Netns, unique_prefix},
};
use lb_userspace::{
    config::identity::identity_bytes,
    dataplane::{self, PinLayout},
    maglev::{self, Backend},
};

use crate::{
    options::{Options, Section},
    report::{Figure, Report, Target},
};

/// Services x reals per service of one generated configuration.
#[derive(Clone, Copy)]
struct Scale {
    services: usize,
    reals_per_service: usize,
    maglev_table_size: u32,
}

impl Scale {
    fn reals(&self) -> usize {
        self.services * self.reals_per_service
    }

    fn describe(&self) -> String {
        format!(
            "{} services x {} reals",
            thousands(self.services),
            thousands(self.reals_per_service)
        )
    }
}

const APPLY: Scale = Scale {
    services: 1_000,
    reals_per_service: 100,
    maglev_table_size: 65_537,
};
const APPLY_QUICK: Scale = Scale {
    services: 100,
    reals_per_service: 10,
    maglev_table_size: 65_537,
};
/// The ring is services x table size slots: 10,000 rows of 65,537 would be
/// 2.4 GiB of kernel memory, so the listing uses a small prime table. The
/// listing reads services and reals, not rows, so this does not change what
/// is measured.
const LISTING: Scale = Scale {
    services: 10_000,
    reals_per_service: 2,
    maglev_table_size: 1_021,
};
const LISTING_QUICK: Scale = Scale {
    services: 1_000,
    ..LISTING
};
const MAGLEV_REALS: [usize; 3] = [10, 100, 1_000];
/// What the issue holds applying 1,000 x 100 to.
const APPLY_TARGET_SECONDS: f64 = 2.0;
/// A generous bound for one apply (it took over half a minute when rows
/// were written one map update per slot).
const APPLY_TIMEOUT: Duration = Duration::from_secs(600);

/// Reals are `REAL_BASE + i` (wrapping within the /16) on port
/// `REAL_PORT + i / 65,536`: distinct within every service.
const REAL_BASE: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 0);
const REAL_RANGE: &str = "198.19.0.0/16";
const REAL_PORT: u16 = 8_000;
/// VIPs are `VIP_BASE + service index`, port 80.
const VIP_BASE: Ipv4Addr = Ipv4Addr::new(198, 18, 16, 0);

pub fn run(options: &Options, report: &mut Report) -> Result<()> {
    maglev_builds(options, report)?;
    let rig = Rig::new()?;
    let result = rig
        .apply_and_memory(options, report)
        .and_then(|()| rig.listing(options, report));
    match &result {
        // The configurations alone are megabytes: a run must not leave them.
        Ok(()) => std::fs::remove_dir_all(&rig.workdir)
            .with_context(|| format!("removing {}", rig.workdir.display()))?,
        Err(_) => eprintln!("  lbd's logs are under {}", rig.workdir.display()),
    }
    result
}

// ---------------------------------------------------------------------------
// Maglev builds, in process

fn maglev_builds(options: &Options, report: &mut Report) -> Result<()> {
    let table_size = maglev::DEFAULT_TABLE_SIZE;
    // A third of the measurement time per size, and at least a few builds.
    let budget = options.duration / MAGLEV_REALS.len() as u32;
    for reals in MAGLEV_REALS {
        let backends = maglev_backends(reals);
        let mut samples = Vec::new();
        let started = Instant::now();
        while samples.len() < 3 || started.elapsed() < budget {
            let start = Instant::now();
            let table = maglev::build_table(&backends, table_size)?;
            samples.push(start.elapsed().as_secs_f64());
            ensure!(
                table.iter().all(|&id| id != 0),
                "the Maglev table of {reals} reals left a slot empty"
            );
        }
        let builds = samples.len();
        report.add(
            Figure::new(
                Section::ControlPlane,
                format!("Maglev build, {} reals", thousands(reals)),
                median(&mut samples) * 1e3,
                "ms",
            )
            .note(format!(
                "lb_userspace::maglev::build_table, {table_size} slots, weight 1 each; \
                 median of {builds} builds"
            )),
        );
    }
    Ok(())
}

fn maglev_backends(count: usize) -> Vec<Backend> {
    (0..count)
        .map(|i| {
            let (address, port) = real_endpoint(i);
            Backend {
                identity: identity_bytes(address.into(), port),
                id: i as u32 + 1,
                weight: 1,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The rig: lbd's namespace, and a gateway towards the reals

struct Rig {
    balancer: Netns,
    _gateway: Netns,
    workdir: PathBuf,
    pins: PinLayout,
}

impl Rig {
    fn new() -> Result<Self> {
        dataplane::ensure_bpffs(Path::new("/sys/fs/bpf/"))?;
        let prefix = unique_prefix();
        let workdir = std::env::temp_dir().join(format!("{prefix}-bench-control"));
        std::fs::create_dir_all(&workdir)?;
        let (balancer, gateway) =
            netns::routed_pair(&format!("{prefix}-lb"), &format!("{prefix}-gw"), REAL_RANGE)?;
        let pins = PinLayout::new(format!("/sys/fs/bpf/{prefix}-bench-control"));
        Ok(Self {
            balancer,
            _gateway: gateway,
            workdir,
            pins,
        })
    }

    fn socket(&self) -> PathBuf {
        self.workdir.join("lbd.sock")
    }

    /// Writes the configuration of `scale` (its first `services` services)
    /// under `name` and returns its path.
    fn write_config(&self, name: &str, scale: Scale, services: usize) -> Result<PathBuf> {
        let path = self.workdir.join(name);
        let yaml = config_yaml(&self.pins.root, &self.socket(), scale, services);
        std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Starts lbd on `config` with a log of its own and waits for `ready`;
    /// returns it and how long that took.
    fn start_lbd(&self, config: &Path, log_name: &str) -> Result<(Lbd, Duration)> {
        let log = self.workdir.join(log_name);
        let _ = std::fs::remove_file(&log);
        let mut watch = LogWatch::new(&log);
        let started = Instant::now();
        let mut lbd = Lbd::start(&self.balancer, config, &log)?;
        watch.wait_for(&mut lbd, " ready ", APPLY_TIMEOUT)?;
        Ok((lbd, started.elapsed()))
    }

    fn apply_and_memory(&self, options: &Options, report: &mut Report) -> Result<()> {
        let scale = if options.quick { APPLY_QUICK } else { APPLY };
        let empty = self.write_config("empty.yaml", scale, 0)?;
        let full = self.write_config("full.yaml", scale, scale.services)?;
        let start_time = self.cold_start(&full, scale)?;
        let reloads = self.reloads(options, scale, &empty, &full)?;
        report_apply(report, scale, start_time, &reloads);
        Ok(())
    }

    /// Cold start: no pinned state, lbd handed the whole file; how long it
    /// took to log `ready`.
    fn cold_start(&self, full: &Path, scale: Scale) -> Result<Duration> {
        let _ = dataplane::teardown(&self.pins);
        let (lbd, start_time) = self.start_lbd(full, "start.log")?;
        check_applied(&lbd, scale)?;
        lbd.stop()?;
        let _ = dataplane::teardown(&self.pins);
        Ok(start_time)
    }

    /// Reload: a running lbd without services is handed the whole file,
    /// then the empty one again, at least three times: one apply is a
    /// single sample on a shared machine. Then its idle CPU with the whole
    /// file loaded.
    fn reloads(
        &self,
        options: &Options,
        scale: Scale,
        empty: &Path,
        full: &Path,
    ) -> Result<Reloads> {
        let reload_config = self.workdir.join("lb.yaml");
        std::fs::copy(empty, &reload_config)?;
        let (mut lbd, _) = self.start_lbd(&reload_config, "reload.log")?;
        let mut samples = Vec::new();
        let mut phases: [Vec<f64>; 3] = Default::default();
        let mut memory = None;
        let started = Instant::now();
        while samples.len() < 3 || started.elapsed() < options.duration {
            samples.push(self.reload(&mut lbd, full, &reload_config)?.as_secs_f64());
            check_applied(&lbd, scale)?;
            for (samples, ms) in phases.iter_mut().zip(reload_phases(&lbd)?) {
                samples.push(ms as f64);
            }
            memory = Some(Memory::of(lbd.pid())?);
            self.reload(&mut lbd, empty, &reload_config)?;
        }
        let memory = memory.expect("at least one reload");
        let count = samples.len();
        let seconds = median(&mut samples);
        let (idle_share, idle_window) = self.idle_cpu(&mut lbd, full, &reload_config, options)?;
        lbd.stop()?;
        let _ = dataplane::teardown(&self.pins);
        Ok(Reloads {
            seconds,
            count,
            phases_ms: phases.map(|mut samples| median(&mut samples)),
            memory,
            idle_share,
            idle_window,
        })
    }

    /// What lbd costs the host while nothing changes: every second it
    /// re-reads the neighbour table, samples rates, reaps idle flows. Its
    /// share of one core with `full` loaded, and the window measured.
    fn idle_cpu(
        &self,
        lbd: &mut Lbd,
        full: &Path,
        reload_config: &Path,
        options: &Options,
    ) -> Result<(f64, Duration)> {
        self.reload(lbd, full, reload_config)?;
        std::thread::sleep(IDLE_SETTLE);
        let idle_window = options.duration.max(IDLE_MIN_WINDOW);
        let before = thread_cpu_ns(lbd.pid())?;
        std::thread::sleep(idle_window);
        let busy = cpu_seconds_between(&before, &thread_cpu_ns(lbd.pid())?);
        Ok((busy / idle_window.as_secs_f64(), idle_window))
    }

    /// Makes `config` the file lbd reads, sends SIGHUP and waits for
    /// `reloaded`; returns how long that took.
    fn reload(&self, lbd: &mut Lbd, config: &Path, reload_config: &Path) -> Result<Duration> {
        std::fs::copy(config, reload_config)?;
        let mut watch = LogWatch::new(&self.workdir.join("reload.log"));
        watch.skip_existing()?;
        let started = Instant::now();
        lbd.signal(libc::SIGHUP)?;
        watch.wait_for(lbd, "reloaded", APPLY_TIMEOUT)?;
        Ok(started.elapsed())
    }

    fn listing(&self, options: &Options, report: &mut Report) -> Result<()> {
        let scale = if options.quick {
            LISTING_QUICK
        } else {
            LISTING
        };
        let config = self.write_config("listing.yaml", scale, scale.services)?;
        let _ = dataplane::teardown(&self.pins);
        let (lbd, _) = self.start_lbd(&config, "listing.log")?;
        let result = self.time_listing(options, scale);
        lbd.stop()?;
        let _ = dataplane::teardown(&self.pins);
        let (seconds, runs) = result?;
        report.add(
            Figure::new(
                Section::ControlPlane,
                format!("lbadm -L -n, {} services", thousands(scale.services)),
                seconds,
                "s",
            )
            .note(format!(
                "{}; Maglev table {} slots (the ring is services x table size); \
                 output to a pipe, median of {runs} runs",
                scale.describe(),
                scale.maglev_table_size
            )),
        );
        Ok(())
    }

    /// Runs `lbadm -L -n` for the measurement time (at least three times);
    /// the median wall time and the number of runs.
    fn time_listing(&self, options: &Options, scale: Scale) -> Result<(f64, usize)> {
        let expected_lines = listing_lines(scale);
        let mut samples = Vec::new();
        let started = Instant::now();
        while samples.len() < 3 || started.elapsed() < options.duration {
            let (seconds, lines) = self.list_once()?;
            ensure!(
                lines == expected_lines,
                "lbadm -L -n printed {lines} lines, expected {expected_lines}"
            );
            samples.push(seconds);
        }
        let runs = samples.len();
        Ok((median(&mut samples), runs))
    }

    fn list_once(&self) -> Result<(f64, usize)> {
        let socket = self.socket();
        let started = Instant::now();
        let output = Command::new(binary("lbadm")?)
            .args(["-L", "-n", "--pin-path"])
            .arg(&self.pins.root)
            .arg("--socket")
            .arg(&socket)
            .stdin(Stdio::null())
            .output()
            .context("running lbadm")?;
        let seconds = started.elapsed().as_secs_f64();
        ensure!(
            output.status.success(),
            "lbadm -L -n failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        Ok((seconds, output.stdout.split(|&b| b == b'\n').count() - 1))
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = dataplane::teardown(&self.pins);
    }
}

/// What the reloads of [`Rig::reloads`] measured.
struct Reloads {
    /// One apply by SIGHUP, seconds (median).
    seconds: f64,
    count: usize,
    /// lbd's own account of an apply, ms (medians): parse, resolve, apply.
    phases_ms: [f64; 3],
    /// After the last reload of the whole file.
    memory: Memory,
    /// lbd's CPU share of one core while idle, and the window measured.
    idle_share: f64,
    idle_window: Duration,
}

/// The apply, start, idle CPU and memory figures of one scale.
fn report_apply(report: &mut Report, scale: Scale, start_time: Duration, reloads: &Reloads) {
    let what = scale.describe();
    report.add(
        Figure::new(
            Section::ControlPlane,
            format!("apply {what} (SIGHUP reload)"),
            reloads.seconds,
            "s",
        )
        .target(Target::ValueAtMost(APPLY_TARGET_SECONDS))
        .note(format!(
            "lbd running with no services is sent SIGHUP with the full file; until it logs \
             `reloaded`: parse, validate, resolve next hops, write reals, Maglev rows \
             ({} slots each) and services; median of {} reloads, each from no \
             services; lbd's own account (medians): parse {:.0} ms, resolve {:.0} ms, \
             apply {:.0} ms",
            scale.maglev_table_size,
            reloads.count,
            reloads.phases_ms[0],
            reloads.phases_ms[1],
            reloads.phases_ms[2],
        )),
    );
    report.add(
        Figure::new(
            Section::ControlPlane,
            format!("start lbd with {what}"),
            start_time.as_secs_f64(),
            "s",
        )
        .note(
            "from spawning lbd (no pinned state) until it logs `ready`: the apply above \
             plus loading, verifying and attaching the XDP program",
        ),
    );
    report.add(
        Figure::new(
            Section::ControlPlane,
            format!("lbd CPU while idle with {what}"),
            reloads.idle_share * 100.0,
            "% of a core",
        )
        .note(format!(
            "CPU time of lbd's threads (/proc/PID/task/*/schedstat) over {:.0} s, {:.0} s \
             after a reload to {what}, no traffic and no changes",
            reloads.idle_window.as_secs_f64(),
            IDLE_SETTLE.as_secs_f64()
        )),
    );
    let memory_note = format!("/proc/PID/status after the last reload to {what}");
    report.add(
        Figure::new(
            Section::ControlPlane,
            format!("lbd VmRSS with {what}"),
            reloads.memory.rss_mib,
            "MiB",
        )
        .note(memory_note.clone()),
    );
    report.add(
        Figure::new(
            Section::ControlPlane,
            format!("lbd VmHWM with {what}"),
            reloads.memory.peak_mib,
            "MiB",
        )
        .note(format!("{memory_note}: the peak resident size")),
    );
}

/// ipvsadm's three header lines, then a line per service and per real.
fn listing_lines(scale: Scale) -> usize {
    3 + scale.services + scale.reals()
}

/// Fails unless lbd's last apply wrote every real: a silently partial apply
/// (reals without next hops get no slots) would flatter the timing.
fn check_applied(lbd: &Lbd, scale: Scale) -> Result<()> {
    let log = lbd.log_text();
    let line = last_line(&log, "applied configuration")?;
    let written = log_field(line, "reals_written").context("no reals_written in lbd's log")?;
    ensure!(
        written == scale.reals(),
        "lbd wrote {written} reals, expected {}: {line}",
        scale.reals()
    );
    ensure!(
        !log.contains("have no next hop"),
        "some reals had no next hop:\n{log}"
    );
    Ok(())
}

/// The phases lbd logged for its last reload, in ms: parse, resolve, apply.
fn reload_phases(lbd: &Lbd) -> Result<[usize; 3]> {
    let log = lbd.log_text();
    let line = last_line(&log, "reloaded")?;
    let field = |name| log_field(line, name).with_context(|| format!("no {name} in: {line}"));
    Ok([field("parse_ms")?, field("resolve_ms")?, field("apply_ms")?])
}

/// The last line of `log` that mentions `what`.
fn last_line<'log>(log: &'log str, what: &str) -> Result<&'log str> {
    log.lines()
        .rev()
        .find(|line| line.contains(what))
        .with_context(|| format!("lbd logged no `{what}`"))
}

/// The value of `name=N` in a tracing log line.
fn log_field(line: &str, name: &str) -> Option<usize> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    let digits: String = line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

// ---------------------------------------------------------------------------
// The generated configuration

fn real_endpoint(index: usize) -> (Ipv4Addr, u16) {
    let address = Ipv4Addr::from(u32::from(REAL_BASE) + (index % 65_536) as u32);
    (address, REAL_PORT + (index / 65_536) as u16)
}

fn vip(service: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(VIP_BASE) + service as u32)
}

/// lbd's YAML with the first `services` services of `scale`, sized for all
/// of them (so the reload from an empty file keeps the same geometry).
fn config_yaml(pins: &Path, socket: &Path, scale: Scale, services: usize) -> String {
    let mut yaml = format!(
        "interfaces: [{{ name: eth0, xdp_mode: native }}]\n\
         pin_path: {}\n\
         control: {{ socket: {} }}\n\
         dataplane:\n  maglev_table_size: {}\n  max_services: {}\n  max_reals: {}\n\
         services:{}\n",
        pins.display(),
        socket.display(),
        scale.maglev_table_size,
        scale.services,
        scale.reals(),
        if services == 0 { " []" } else { "" }
    );
    for service in 0..services {
        yaml += &format!(
            "  - name: s{service}\n    vip: {}\n    port: 80\n    protocol: tcp\n    \
             forwarding: nat\n    reals:\n",
            vip(service)
        );
        for real in 0..scale.reals_per_service {
            let (address, port) = real_endpoint(service * scale.reals_per_service + real);
            yaml += &format!("      - {{ address: {address}, port: {port} }}\n");
        }
    }
    yaml
}

// ---------------------------------------------------------------------------
// Waiting on lbd's log, and its memory

/// Follows a log file from an offset, so that waiting for a line costs a
/// read of what is new (the clock runs while we poll: every millisecond).
struct LogWatch {
    path: PathBuf,
    offset: u64,
    pending: String,
}

impl LogWatch {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            offset: 0,
            pending: String::new(),
        }
    }

    /// Starts after what the log holds now.
    fn skip_existing(&mut self) -> Result<()> {
        self.offset = std::fs::metadata(&self.path)?.len();
        Ok(())
    }

    fn read_new(&mut self) -> Result<()> {
        let Ok(mut file) = File::open(&self.path) else {
            return Ok(());
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        self.offset += file.read_to_end(&mut bytes)? as u64;
        self.pending += &String::from_utf8_lossy(&bytes);
        Ok(())
    }

    fn wait_for(&mut self, lbd: &mut Lbd, marker: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.read_new()?;
            if self.pending.contains(marker) {
                return Ok(());
            }
            if self.pending.contains(" ERROR ") {
                bail!("lbd logged an error before {marker:?}:\n{}", self.pending);
            }
            if Instant::now() > deadline {
                bail!("lbd did not log {marker:?} within {timeout:?}");
            }
            if let Some(status) = lbd.exited()? {
                bail!(
                    "lbd exited ({status}) before logging {marker:?}:\n{}",
                    self.pending
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Time lbd is left alone after a reload before its idle CPU is measured.
const IDLE_SETTLE: Duration = Duration::from_secs(2);
/// The shortest window the idle CPU is measured over (a few of lbd's
/// one-second ticks).
const IDLE_MIN_WINDOW: Duration = Duration::from_secs(5);

/// CPU time each thread of process `pid` has run so far, in nanoseconds
/// (`/proc/PID/task/TID/schedstat`: ticks would round a quiet lbd to 0).
fn thread_cpu_ns(pid: u32) -> Result<HashMap<u32, u64>> {
    let mut threads = HashMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let entry = entry?;
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // A thread may exit between listing and reading.
        let Ok(schedstat) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        let ns = schedstat
            .split_whitespace()
            .next()
            .context("empty schedstat")?
            .parse()?;
        threads.insert(tid, ns);
    }
    Ok(threads)
}

/// CPU seconds process `pid` spent between two [`thread_cpu_ns`] samples
/// (threads that exited in between are left out).
fn cpu_seconds_between(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) -> f64 {
    let ns: u64 = after
        .iter()
        .map(|(tid, &ns)| ns.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    ns as f64 / 1e9
}

struct Memory {
    rss_mib: f64,
    peak_mib: f64,
}

impl Memory {
    fn of(pid: u32) -> Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib = |field: &str| -> Result<f64> {
            let line = status
                .lines()
                .find(|line| line.starts_with(field))
                .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
            let value = line
                .split_whitespace()
                .nth(1)
                .context("odd /proc status line")?;
            Ok(value.parse::<f64>()?)
        };
        Ok(Self {
            rss_mib: kib("VmRSS:")? / 1024.0,
            peak_mib: kib("VmHWM:")? / 1024.0,
        })
    }
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// 1,000-style grouping for names and notes.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
