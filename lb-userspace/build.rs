//! Compiles `lb-ebpf` for the BPF target and leaves its two objects in
//! OUT_DIR: `lb`, the data plane `dataplane::OBJECT` embeds, and
//! `lb-bench-xdp`, the benchmark's programs `dataplane::bench::OBJECT`
//! embeds (only `lb-bench` uses that one, so lbd's binary leaves it out).
use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")?;
    let ebpf_dir = std::path::Path::new(&manifest_dir).join("../lb-ebpf");
    let ebpf_dir = ebpf_dir
        .to_str()
        .ok_or_else(|| anyhow!("non-UTF-8 path"))?
        .to_owned();
    // aya-build watches lb-ebpf itself; the contract it compiles in changes too.
    println!("cargo:rerun-if-changed={manifest_dir}/../lb-common");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "lb-ebpf",
            root_dir: &ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom("stable"),
    )
    .context("building the XDP object (`cargo xtask setup` installs rust-src and bpf-linker)")?;
    // With AYA_BUILD_SKIP (tooling that only needs the host code) leave
    // empty objects: the loaders then say so instead of failing here.
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    for name in ["lb", "lb-bench-xdp"] {
        let object = out_dir.join(name);
        if !object.exists() {
            std::fs::write(&object, [])?;
        }
    }
    Ok(())
}
