//! Project tasks. Depends only on crates.io crates (anyhow, clap, and syn
//! with proc-macro2 for `structure`) so it builds on a fresh machine, before
//! any of the eBPF tooling `setup` installs exists.

mod process;
mod setup;
mod structure;

use std::{ffi::OsString, os::unix::process::CommandExt as _, process::ExitCode};

use anyhow::{Context as _, Result, bail, ensure};
use clap::{Args, Parser, Subcommand};

use crate::process::{cargo, command, is_root, run, target_dir, workspace_root};

/// Tasks for the XDP load balancer workspace.
#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Bootstrap this machine: rust-src, bpf-linker, Debian tools, bpffs.
    ///
    /// Idempotent: each step checks first and does nothing when already
    /// done, so it is cheap to run again. Installing Debian packages
    /// (iproute2, util-linux, ethtool, bpftool, procps) and mounting bpffs
    /// on /sys/fs/bpf need root; the other steps do not.
    Setup,

    /// Run `setup`, build the binaries, then run the lb-demo network.
    ///
    /// lb-demo builds network namespaces and runs the balancer in them; it
    /// replaces this process, so Ctrl-C goes straight to it and its exit
    /// code is ours. Needs root.
    Demo {
        /// Arguments for lb-demo (use `--` before ones xtask would take,
        /// e.g. `cargo xtask demo -- --help`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },

    /// Run `setup`, then fmt check, clippy, structure, build and the
    /// workspace tests.
    ///
    /// Steps, stopping at the first failure: `cargo fmt --all -- --check`,
    /// `cargo clippy --workspace --all-targets -- -D warnings`,
    /// `cargo xtask structure`, `cargo build --workspace --bins` (the netns
    /// tests start the built `lbd`), `cargo test --workspace [ARGS]`.
    /// Arguments are taken the way `cargo test` takes them: `cargo xtask
    /// test --lib -- --nocapture` runs `cargo test --workspace --lib --
    /// --nocapture`.
    ///
    /// The network-namespace tests need root. With CI set this refuses to
    /// run as non-root rather than let them fail late.
    Test(TestOpts),

    /// Check the sources' structure: no import circle between the files of
    /// a crate, no source file over 900 lines outside tests, no function
    /// over 80 lines in lb-ebpf or 100 elsewhere.
    ///
    /// Prints each violation as `file:line: message` and fails if there is
    /// any. Reads the sources only; builds nothing.
    Structure,

    /// Run `setup`, build release binaries, then run the benchmarks.
    ///
    /// Figures are measured side by side in one run and printed as one
    /// table, plus `bench.json` and `bench.svg` under `--out` (default
    /// `target/bench`). Pick sections by keyword: `cargo xtask bench cost
    /// rate -- --seconds 10`; `--quick` is the short run the tests use.
    /// `cargo xtask bench health` is the separate health-checking benchmark
    /// (10,000 reals probed every second). Needs root.
    Bench {
        /// Sections (cost, rate, nftables, e2e, control, conntrack; default
        /// all) and options for lb-bench, or `health` and its options.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

#[derive(Args)]
struct TestOpts {
    /// Skip the fmt, clippy and structure steps (for quick local loops).
    #[arg(long)]
    skip_lint: bool,

    /// Options for `cargo test`, e.g. `--lib`, `-p lb-tests` (put xtask's
    /// own options before them).
    #[arg(value_name = "CARGO_TEST_ARGS", allow_hyphen_values = true)]
    cargo_args: Vec<OsString>,

    /// Arguments for the test binaries, e.g. `--nocapture` or a name filter.
    #[arg(value_name = "TEST_BINARY_ARGS", last = true)]
    binary_args: Vec<OsString>,
}

impl TestOpts {
    /// What follows `cargo test --workspace`.
    fn cargo_test_args(&self) -> Vec<OsString> {
        let mut args = self.cargo_args.clone();
        if !self.binary_args.is_empty() {
            args.push("--".into());
            args.extend(self.binary_args.iter().cloned());
        }
        args
    }
}

mod tally;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Setup => setup::setup(),
        Task::Demo { args } => demo(args),
        Task::Test(opts) => test(&opts),
        Task::Structure => structure::run(workspace_root()),
        Task::Bench { args } => bench(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn demo(args: Vec<OsString>) -> Result<()> {
    run_rig_binary("lb-demo", false, args)
}

fn bench(mut args: Vec<OsString>) -> Result<()> {
    let binary = if args.first().is_some_and(|first| first == "health") {
        args.remove(0);
        "lb-bench-health"
    } else {
        "lb-bench"
    };
    ensure!(
        is_root()?,
        "benchmarks build network namespaces: run as root"
    );
    // Figures of an optimised lbd, not a debug one.
    run_rig_binary(binary, true, args)
}

/// Runs `setup`, builds lbd, lbadm and the lb-tests binaries, then becomes
/// `binary`. exec instead of spawn: one process, so the terminal's SIGINT
/// reaches it alone and it can tear its namespaces down before exiting.
fn run_rig_binary(binary: &str, release: bool, args: Vec<OsString>) -> Result<()> {
    setup::setup()?;
    let mut build = cargo();
    build.arg("build");
    if release {
        build.arg("--release");
    }
    run(build.args([
        "--package",
        "lb-userspace",
        "--package",
        "lb-tests",
        "--bins",
    ]))?;
    let profile = if release { "release" } else { "debug" };
    let path = target_dir().join(profile).join(binary);
    ensure!(
        path.is_file(),
        "{} was not built (does lb-tests define the {binary} binary?)",
        path.display()
    );
    let err = command(&path).args(args).exec();
    Err(err).with_context(|| format!("could not run {}", path.display()))
}

fn test(opts: &TestOpts) -> Result<()> {
    check_privileges()?;
    setup::setup()?;
    if !opts.skip_lint {
        run(cargo().args(["fmt", "--all", "--", "--check"]))?;
        run(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
        // In process: it only reads the sources. Shown like the steps
        // above so a failure's output is easy to place.
        eprintln!("+ cargo xtask structure");
        structure::run(workspace_root())?;
    }
    run(cargo().args(["build", "--workspace", "--bins"]))?;
    tally::run_and_total(
        cargo()
            .args(["test", "--workspace"])
            .args(opts.cargo_test_args()),
    )
}

/// The netns tests need root. In CI, where nobody reads warnings, a silent
/// skip or late failure would hide that; fail before doing any work.
fn check_privileges() -> Result<()> {
    if is_root()? {
        return Ok(());
    }
    if in_ci() {
        bail!("CI is set but xtask is not running as root: the privileged tests would fail");
    }
    eprintln!(
        "xtask: warning: not running as root; the privileged network-namespace tests will fail"
    );
    Ok(())
}

/// CI systems set `CI=true` (some `CI=1`).
fn in_ci() -> bool {
    std::env::var("CI")
        .is_ok_and(|ci| !matches!(ci.to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::{Cli, Task};

    /// (skip_lint, what follows `cargo test --workspace`) for an xtask argv.
    fn parse_test(argv: &str) -> (bool, Vec<String>) {
        let cli = Cli::try_parse_from(argv.split_whitespace()).unwrap();
        let Task::Test(opts) = cli.task else {
            panic!("`{argv}` is not the test task");
        };
        let args = opts.cargo_test_args().into_iter();
        let args = args.map(|arg| arg.into_string().unwrap()).collect();
        (opts.skip_lint, args)
    }

    #[test]
    fn test_args_reach_cargo_test_as_written() {
        let cases: [(&str, bool, &[&str]); 6] = [
            ("x test", false, &[]),
            ("x test -- --nocapture", false, &["--", "--nocapture"]),
            ("x test --skip-lint --lib", true, &["--lib"]),
            (
                "x test --skip-lint --lib -- --nocapture",
                true,
                &["--lib", "--", "--nocapture"],
            ),
            (
                "x test -p lb-tests -- maglev --nocapture",
                false,
                &["-p", "lb-tests", "--", "maglev", "--nocapture"],
            ),
            (
                "x test --lib -- --exact -- x",
                false,
                &["--lib", "--", "--exact", "--", "x"],
            ),
        ];
        for (argv, skip_lint, args) in cases {
            assert_eq!(
                parse_test(argv),
                (skip_lint, args.iter().map(|a| a.to_string()).collect()),
                "{argv}"
            );
        }
    }

    #[test]
    fn demo_args_pass_through() {
        let cli = Cli::try_parse_from(["x", "demo", "--backends", "3", "--", "-v"]).unwrap();
        let Task::Demo { args } = cli.task else {
            panic!("not the demo task");
        };
        assert_eq!(args, ["--backends", "3", "--", "-v"]);
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
