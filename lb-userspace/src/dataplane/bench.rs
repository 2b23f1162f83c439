//! The benchmark's programs (lb-ebpf's `lb-bench-xdp` object), for
//! `lb-bench`: a reflector (the floor the balancer is compared with), a
//! sink where the reals would be, and `lb_replay`, which restores a frame
//! before handing it to another program. Kept out of the data plane's
//! object so the daemon neither loads nor ships them.

use anyhow::{Context as _, Result, bail};
use aya::{
    Ebpf,
    maps::{Array, ProgramArray},
    programs::{ProgramFd, Xdp},
};
use lb_common::{
    BenchFrame,
    bench::{names, programs},
};

use super::{verify, xdp_program};

/// The compiled object, built by this crate's build script beside `lb`.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lb-bench-xdp"));

/// A private copy of the benchmark's programs and maps.
pub struct BenchPrograms {
    ebpf: Ebpf,
}

impl BenchPrograms {
    /// Loads the object and verifies every program in it.
    pub fn load() -> Result<Self> {
        if OBJECT.is_empty() {
            bail!("this build has no benchmark object (it was built with AYA_BUILD_SKIP)");
        }
        let mut ebpf = Ebpf::load(OBJECT).context("loading the benchmark's BPF object")?;
        for name in [programs::REFLECT, programs::SINK, programs::REPLAY] {
            verify(xdp_program(&mut ebpf, name)?, name)?;
        }
        Ok(Self { ebpf })
    }

    pub fn program_mut(&mut self, name: &str) -> Result<&mut Xdp> {
        xdp_program(&mut self.ebpf, name)
    }

    /// Makes `lb_replay` restore `frame` before every run and then hand it
    /// to `target`: any loaded XDP program, this object's or another's (the
    /// balancer, `lb_pass`).
    pub fn replay_into(&mut self, target: &ProgramFd, frame: BenchFrame) -> Result<()> {
        let mut next: ProgramArray<_> = self
            .ebpf
            .map_mut(names::NEXT)
            .with_context(|| format!("map {} missing", names::NEXT))?
            .try_into()?;
        next.set(0, target, 0)?;
        let mut template: Array<_, BenchFrame> = self
            .ebpf
            .map_mut(names::FRAME)
            .with_context(|| format!("map {} missing", names::FRAME))?
            .try_into()?;
        template.set(0, frame, 0)?;
        Ok(())
    }
}
