//! What a run measures and how: the sections, the command line and its
//! parsing.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

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

/// Parses the command line (`--help` prints [`USAGE`] and exits).
pub fn parse() -> Result<Options> {
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
