//! lbadm: inspect the balancer the way ipvsadm inspects IPVS.
//!
//! This version lists (`-L -n`, `--stats`, `-c`, `--timeout`, `-o json`)
//! from the pinned maps; the rest of ipvsadm's command set arrives with the
//! daemon's control API.
use std::path::PathBuf;

use anyhow::Result;
use aya::maps::IterableMap as _;
use clap::{Parser, ValueEnum};
use lb_userspace::{
    dataplane::{Maps, PinLayout},
    listing,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    /// ipvsadm's text layout.
    Text,
    /// Machine-readable JSON.
    Json,
}

#[derive(Parser)]
#[command(version, about = "ipvsadm-compatible view of the XDP balancer")]
struct Cli {
    /// List the virtual server table (the default action).
    #[arg(short = 'L', long = "list", visible_short_alias = 'l')]
    list: bool,
    /// Numeric output (lbadm never resolves names; accepted for ipvsadm compatibility).
    #[arg(short = 'n', long = "numeric")]
    numeric: bool,
    /// List the connection entries instead of the services.
    #[arg(short = 'c', long = "connection")]
    connection: bool,
    /// Show the idle timeouts (tcp tcpfin udp).
    #[arg(long, conflicts_with_all = ["connection", "stats"])]
    timeout: bool,
    /// Show packet, byte and connection counters.
    #[arg(long, conflicts_with = "connection")]
    stats: bool,
    /// Print counters without K/M/G scaling.
    #[arg(long)]
    exact: bool,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: Output,
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
    let text = if cli.timeout {
        let settings = maps.settings.get(&0, 0).unwrap_or_default();
        match cli.output {
            Output::Text => listing::render_timeouts(&settings),
            Output::Json => {
                let seconds = |state: lb_common::ConnectionState| {
                    settings.for_state_ns(state as u8) / 1_000_000_000
                };
                serde_json::json!({
                    "tcp": seconds(lb_common::ConnectionState::TcpEstablished),
                    "tcp_fin": seconds(lb_common::ConnectionState::TcpClosing),
                    "udp": seconds(lb_common::ConnectionState::Udp),
                })
                .to_string()
                    + "\n"
            }
        }
    } else if cli.connection {
        let rows = listing::collect_connections(&maps)?;
        match cli.output {
            Output::Text => listing::render_connections(&rows),
            Output::Json => listing::connections_json(&rows).to_string() + "\n",
        }
    } else {
        let table_size = maps.flows.map().info()?.max_entries();
        let rows = listing::collect(&maps)?;
        match (cli.output, cli.stats) {
            (Output::Json, _) => listing::services_json(&rows).to_string() + "\n",
            (Output::Text, true) => listing::render_stats(&rows, table_size, cli.exact),
            (Output::Text, false) => listing::render_list(&rows, table_size),
        }
    };
    print!("{text}");
    Ok(())
}
