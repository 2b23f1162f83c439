//! (being written)

use anyhow::Result;

use crate::{Options, report::Report};

pub fn run(_options: &Options, _report: &mut Report) -> Result<()> {
    anyhow::bail!("not measured yet")
}
