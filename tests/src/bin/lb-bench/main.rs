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
mod options;
mod packet;
mod process;
mod report;
mod spread;

use anyhow::{Context as _, Result};

use crate::{
    options::{Options, Section},
    report::{HostCannot, Report},
};

fn main() {
    if !lb_tests::is_root() {
        eprintln!("lb-bench needs root (network namespaces and XDP)");
        std::process::exit(1);
    }
    if let Err(error) = options::parse().and_then(|options| bench(&options)) {
        eprintln!("bench failed: {error:#}");
        std::process::exit(1);
    }
}

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
