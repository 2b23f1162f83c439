//! `cargo xtask bench`: the balancer's figures next to the ones it is
//! judged against, measured side by side in one run.
//!
//! Sections (pick any with their keyword; none means all):
//! - `cost`: ns per packet of the XDP program (kernel BPF stats under real
//!   traffic) per mode and family, flow-table hit and new flow, next to a
//!   trivial XDP_TX reflector on the same interface;
//! - `rate`: 64-byte forwarding rate (BPF_PROG_RUN live frames) of the
//!   balancer and of the reflector, counted where the reals are;
//! - `nftables`: the same VIP served by nftables DNAT: pps and TCP
//!   throughput against the balancer;
//! - `e2e`: iperf3 and many short HTTP connections through the VIP against
//!   straight to a real, per mode, and in DR and TUN against the balancer
//!   host's kernel routing the same packets over the same hops;
//! - `control`: applying 1,000 x 100 from YAML, Maglev builds, `lbadm -L
//!   -n` on 10,000 services, lbd's memory;
//! - `conntrack`: memory per flow entry and the table's behaviour when full.
//!
//! Writes a table to standard output, and `bench.json` and `bench.svg` to
//! `--out` (default `target/bench`).

mod conntrack;
mod control_plane;
mod end_to_end;
mod packet;
mod process;
mod report;

use std::{path::PathBuf, time::Duration};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use crate::report::Report;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Cost,
    Rate,
    Nftables,
    EndToEnd,
    ControlPlane,
    ConnTable,
}

impl Section {
    pub const ALL: [Section; 6] = [
        Section::Cost,
        Section::Rate,
        Section::Nftables,
        Section::EndToEnd,
        Section::ControlPlane,
        Section::ConnTable,
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            Section::Cost => "cost",
            Section::Rate => "rate",
            Section::Nftables => "nftables",
            Section::EndToEnd => "e2e",
            Section::ControlPlane => "control",
            Section::ConnTable => "conntrack",
        }
    }

    fn from_keyword(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.keyword() == word)
    }
}

pub struct Options {
    pub sections: Vec<Section>,
    /// How long each timed measurement runs.
    pub duration: Duration,
    /// Small sizes and short runs: proves the harness works, nothing more.
    pub quick: bool,
    pub out: PathBuf,
}

const USAGE: &str = "lb-bench [SECTION...] [--seconds N] [--quick] [--out DIR]
  SECTION: cost, rate, nftables, e2e, control, conntrack (default: all)
  --seconds N  length of each timed measurement (default 5; --quick: 1)
  --quick      small sizes and short runs, to check the harness works
  --out DIR    where bench.json and bench.svg go (default target/bench)";

fn options() -> Result<Options> {
    let mut sections = Vec::new();
    let mut seconds = None;
    let mut quick = false;
    let mut out = PathBuf::from("target/bench");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value: f64 = args
                    .next()
                    .context("--seconds needs a value")?
                    .parse()
                    .context("--seconds takes a number")?;
                anyhow::ensure!(value > 0.0, "--seconds must be positive");
                seconds = Some(value);
            }
            "--quick" => quick = true,
            "--out" => out = args.next().context("--out needs a directory")?.into(),
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            word => match Section::from_keyword(word) {
                Some(section) if !sections.contains(&section) => sections.push(section),
                Some(_) => {}
                None => bail!("unknown argument {word:?}\n{USAGE}"),
            },
        }
    }
    if sections.is_empty() {
        sections = Section::ALL.to_vec();
    }
    let seconds = seconds.unwrap_or(if quick { 1.0 } else { 5.0 });
    Ok(Options {
        sections,
        duration: Duration::from_secs_f64(seconds),
        quick,
        out,
    })
}

fn main() {
    if !lb_tests::is_root() {
        eprintln!("lb-bench needs root (network namespaces and XDP)");
        std::process::exit(1);
    }
    if let Err(error) = options().and_then(|options| bench(&options)) {
        eprintln!("bench failed: {error:#}");
        std::process::exit(1);
    }
}

/// A measurement this host cannot make, and why: the run goes on without
/// it and the report says so, instead of failing as a whole.
#[derive(Debug)]
pub struct HostCannot(pub String);

impl std::fmt::Display for HostCannot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostCannot {}

fn bench(options: &Options) -> Result<()> {
    let mut report = Report::new(options.duration.as_secs_f64(), options.quick);
    for &section in &options.sections {
        eprintln!("== {}", section.keyword());
        let parts: &[fn(&Options, &mut Report) -> Result<()>] = match section {
            Section::Cost => &[packet::cost],
            Section::Rate => &[packet::rate],
            Section::Nftables => &[packet::nftables_rate, end_to_end::nftables_throughput],
            Section::EndToEnd => &[end_to_end::run],
            Section::ControlPlane => &[control_plane::run],
            Section::ConnTable => &[conntrack::run],
        };
        for part in parts {
            match part(options, &mut report) {
                Err(error) if error.downcast_ref::<HostCannot>().is_some() => {
                    report.not_measured(section, format!("{error:#}"));
                }
                result => result.with_context(|| format!("section {}", section.keyword()))?,
            }
        }
    }
    print!("{}", report.table());
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    report.write_json(&options.out.join("bench.json"))?;
    report.write_svg(&options.out.join("bench.svg"))?;
    eprintln!(
        "wrote {0}/bench.json and {0}/bench.svg",
        options.out.display()
    );
    Ok(())
}
