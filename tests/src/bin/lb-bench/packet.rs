//! (being written)

use anyhow::Result;

use crate::{Options, report::Report};

pub fn cost(_options: &Options, _report: &mut Report) -> Result<()> {
    anyhow::bail!("not measured yet")
}

pub fn rate(_options: &Options, _report: &mut Report) -> Result<()> {
    anyhow::bail!("not measured yet")
}

pub fn nftables_rate(_options: &Options, _report: &mut Report) -> Result<()> {
    anyhow::bail!("not measured yet")
}
