//! lbd: the balancer daemon.
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use lb_userspace::{daemon, dataplane};

#[derive(Parser)]
#[command(version, about = "XDP L4 load balancer daemon")]
struct Cli {
    /// The YAML configuration.
    #[arg(long, short, global = true, default_value = "/etc/lb/lb.yaml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run in the foreground until SIGTERM/SIGINT; SIGHUP reloads (default).
    Run,
    /// Validate the configuration and exit.
    Check,
    /// Detach the data plane and remove its pinned maps: traffic stops.
    Teardown,
    /// On a real server: strip TUN tunnels addressed to this host (no ipip
    /// module needed) until SIGTERM/SIGINT; `--teardown` detaches.
    Decap(lb_userspace::decap::DecapArgs),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(error) = run(Cli::parse()) {
        eprintln!("lbd: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(daemon::run(&cli.config)),
        Command::Check => {
            let config = daemon::load_config(&cli.config)?;
            println!(
                "{}: ok ({} services, {} reals)",
                cli.config.display(),
                config.services.len(),
                config.services.iter().map(|s| s.reals.len()).sum::<usize>()
            );
            Ok(())
        }
        Command::Teardown => {
            let config = daemon::load_config(&cli.config)?;
            dataplane::teardown(&dataplane::PinLayout::new(&config.pin_path))
        }
        Command::Decap(args) => lb_userspace::decap::command(args),
    }
}
