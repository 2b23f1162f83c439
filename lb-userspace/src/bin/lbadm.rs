//! lbadm: inspect the balancer the way ipvsadm inspects IPVS.
//!
//! This first version lists (`-L -n`, `--stats`) from the pinned maps; the
//! rest of ipvsadm's command set arrives with the daemon's control API.
use std::path::PathBuf;

use anyhow::Result;
use aya::maps::IterableMap as _;
use clap::Parser;
use lb_userspace::{
    dataplane::{Maps, PinLayout},
    listing,
};

#[derive(Parser)]
#[command(version, about = "ipvsadm-compatible view of the XDP balancer")]
struct Cli {
    /// List the virtual server table (the default action).
    #[arg(short = 'L', long = "list", visible_short_alias = 'l')]
    list: bool,
    /// Numeric output (lbadm never resolves names; accepted for ipvsadm compatibility).
    #[arg(short = 'n', long = "numeric")]
    numeric: bool,
    /// Show packet, byte and connection counters.
    #[arg(long)]
    stats: bool,
    /// Print counters without K/M/G scaling.
    #[arg(long)]
    exact: bool,
    /// Where lbd pinned its maps (the config's pin_path).
    #[arg(long, default_value = "/sys/fs/bpf/lb")]
    pin_path: PathBuf,
}

fn main() {
    if let Err(error) = run(Cli::parse()) {
        eprintln!("lbadm: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let _ = (cli.list, cli.numeric);
    let maps = Maps::open_pinned(&PinLayout::new(&cli.pin_path))?;
    let table_size = maps.flows.map().info()?.max_entries();
    let rows = listing::collect(&maps)?;
    let text = if cli.stats {
        listing::render_stats(&rows, table_size, cli.exact)
    } else {
        listing::render_list(&rows, table_size)
    };
    print!("{text}");
    Ok(())
}
