//! Where the packet figures come from: the kernel's per-program run time
//! and run count, and veth's count of frames its XDP program saw.

use std::{os::fd::OwnedFd, path::Path, process::Command};

use anyhow::{Context as _, Result, bail};
use aya::programs::{
    links::{FdLink, PinnedLink},
    loaded_programs,
};
use lb_tests::netns::Netns;

/// Keeps the kernel's BPF run-time statistics on while alive (they cost a
/// little per run, so the kernel leaves them off by default).
pub struct StatsEnabled {
    _fd: OwnedFd,
}

pub fn enable_run_time_stats() -> Result<StatsEnabled> {
    aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .map(|fd| StatsEnabled { _fd: fd })
        .context("enabling BPF run-time statistics")
}

/// Total run time (ns) and run count of a loaded program.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunStats {
    pub nanoseconds: u64,
    pub runs: u64,
}

impl RunStats {
    pub fn of(program_id: u32) -> Result<Self> {
        for info in loaded_programs() {
            let info = info?;
            if info.id() == program_id {
                return Ok(Self {
                    nanoseconds: info.run_time().as_nanos() as u64,
                    runs: info.run_count(),
                });
            }
        }
        bail!("program {program_id} is not loaded")
    }

    pub fn since(self, earlier: RunStats) -> RunStats {
        RunStats {
            nanoseconds: self.nanoseconds - earlier.nanoseconds,
            runs: self.runs - earlier.runs,
        }
    }

    pub fn ns_per_run(self) -> f64 {
        self.nanoseconds as f64 / self.runs.max(1) as f64
    }
}

/// The program behind a pinned XDP link (lbd pins one per interface).
pub fn program_behind_link(link: &Path) -> Result<u32> {
    let pinned = PinnedLink::from_pin(link)
        .with_context(|| format!("opening the pinned link {}", link.display()))?;
    let fd_link: FdLink = pinned.into();
    // Closing our fd leaves the link attached: the pin holds it.
    Ok(fd_link.info()?.program_id())
}

/// Frames the XDP program on `interface` (a veth in `netns`) has seen:
/// the sum of its `rx_queue_N_xdp_packets` counters.
pub fn veth_xdp_packets(netns: &Netns, interface: &str) -> Result<u64> {
    let text = ethtool(netns, interface)?;
    let mut total = 0;
    for line in text.lines() {
        let Some((name, value)) = line.trim().split_once(':') else {
            continue;
        };
        if name.starts_with("rx_queue_") && name.ends_with("_xdp_packets") {
            total += value.trim().parse::<u64>().context("ethtool counter")?;
        }
    }
    Ok(total)
}

/// `ethtool -S interface` in `netns`.
pub fn ethtool(netns: &Netns, interface: &str) -> Result<String> {
    netns.enter(|| {
        let output = Command::new("ethtool").args(["-S", interface]).output()?;
        anyhow::ensure!(output.status.success(), "ethtool -S {interface} failed");
        Ok(String::from_utf8(output.stdout)?)
    })
}
