//! `cargo xtask setup`: bring a fresh Debian machine to the point where the
//! XDP object builds and the demo and netns tests run. Every step checks
//! first and does nothing when its work is already done.

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail, ensure};

use crate::process::{capture, cargo, command, find_program, home_dir, is_root, probe, run};

/// bpf-linker release known to work with the LLVM rustc 1.95 ships.
const BPF_LINKER_VERSION: &str = "0.13.0";

/// Commands the demo, tests and benchmarks shell out to, and the Debian
/// package of each (the benchmark's `--quick` run is part of the tests).
const DEBIAN_TOOLS: [(&str, &str); 9] = [
    ("ip", "iproute2"),
    ("nsenter", "util-linux"),
    ("ethtool", "ethtool"),
    ("bpftool", "bpftool"),
    ("sysctl", "procps"),
    ("nft", "nftables"),
    ("iperf3", "iperf3"),
    ("wrk", "wrk"),
    ("nginx", "nginx"),
];

const BPFFS: &str = "/sys/fs/bpf";

pub fn setup() -> Result<()> {
    rust_src()?;
    bpf_linker()?;
    debian_packages()?;
    bpffs()?;
    Ok(())
}

/// `-Z build-std=core` for the BPF target compiles core from source.
fn rust_src() -> Result<()> {
    let Some(rustup) = find_program("rustup") else {
        // Toolchain not managed by rustup: we can only check, not install.
        let library = sysroot()?.join("lib/rustlib/src/rust/library");
        ensure!(
            library.is_dir(),
            "rust-src: missing ({} does not exist) and rustup is not available to install it",
            library.display()
        );
        println!("rust-src: present");
        return Ok(());
    };
    let installed = capture(command(&rustup).args(["component", "list", "--installed"]))?;
    // Lines are component names, e.g. `rust-src` or `rustc-x86_64-unknown-linux-gnu`.
    if installed.lines().any(|line| line.trim() == "rust-src") {
        println!("rust-src: present");
        return Ok(());
    }
    println!("rust-src: installing");
    run(command(&rustup).args(["component", "add", "rust-src"]))
}

fn bpf_linker() -> Result<()> {
    if let Some(version) = bpf_linker_version() {
        println!("bpf-linker: present ({version})");
        return Ok(());
    }
    println!("bpf-linker: installing {BPF_LINKER_VERSION} (takes about a minute)");
    // No system LLVM of the right version exists here, so link against the
    // one rustc itself ships; bpf-linker's build wants an LLVM prefix.
    let (prefix, llvm_major) = rust_llvm_prefix()?;
    run(cargo()
        .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
        .args(["--no-default-features", "--features"])
        .arg(format!("llvm-{llvm_major}"))
        // We only get here when no working bpf-linker exists; a broken one
        // (e.g. its LLVM went away with an old toolchain) would otherwise
        // make `cargo install` say "already installed" and do nothing.
        .arg("--force")
        .env("LLVM_PREFIX", &prefix))?;
    let version = bpf_linker_version()
        .context("bpf-linker was installed but `bpf-linker --version` still does not run")?;
    println!("bpf-linker: installed ({version})");
    Ok(())
}

/// `bpf-linker --version` output if it runs (from PATH or the cargo bin dir).
fn bpf_linker_version() -> Option<String> {
    let linker = find_program("bpf-linker")?;
    probe(command(linker).arg("--version")).map(|out| out.trim().to_owned())
}

/// Builds `~/.cache/lb-llvm`, an LLVM "prefix" whose `lib/` points at the
/// libLLVM inside rustc's sysroot, and returns it with LLVM's major version.
///
/// The installed bpf-linker keeps this directory as its runpath, so it must
/// stay; it is rebuilt whenever bpf-linker has to be reinstalled.
fn rust_llvm_prefix() -> Result<(PathBuf, String)> {
    let llvm = rust_libllvm()?;
    let name = llvm.file_name().context("libLLVM path has no file name")?;
    let prefix = home_dir()
        .context("HOME is not set")?
        .join(".cache/lb-llvm");
    let lib = prefix.join("lib");
    fs::create_dir_all(&lib).with_context(|| format!("creating {}", lib.display()))?;
    // `libLLVM.so` for the link step; the versioned name (the library's
    // soname) for the dynamic loader at run time.
    for link in [lib.join("libLLVM.so"), lib.join(name)] {
        replace_symlink(&llvm, &link)?;
    }
    Ok((prefix, rust_llvm_major()?))
}

/// The real shared object, e.g. `libLLVM.so.22.1-rust-1.95.0-stable`.
/// (`libLLVM-22-rust-*.so` next to it is only a linker script.)
fn rust_libllvm() -> Result<PathBuf> {
    let lib = sysroot()?.join("lib");
    let mut found: Vec<PathBuf> = fs::read_dir(&lib)
        .with_context(|| format!("reading {}", lib.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("libLLVM.so.") && name.contains("-rust-"))
        })
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!("no libLLVM.so.*-rust-* in {}", lib.display()),
        _ => bail!(
            "several libLLVM.so.*-rust-* in {}: {found:?}",
            lib.display()
        ),
    }
}

fn replace_symlink(target: &Path, link: &Path) -> Result<()> {
    if fs::read_link(link).is_ok_and(|current| current == target) {
        return Ok(());
    }
    if link.symlink_metadata().is_ok() {
        fs::remove_file(link).with_context(|| format!("removing {}", link.display()))?;
    }
    symlink(target, link)
        .with_context(|| format!("linking {} -> {}", link.display(), target.display()))
}

fn sysroot() -> Result<PathBuf> {
    let out = capture(command("rustc").args(["--print", "sysroot"]))?;
    Ok(PathBuf::from(out.trim()))
}

/// "22" from `rustc -vV`'s `LLVM version: 22.1.2`: bpf-linker picks its
/// LLVM with an `llvm-<major>` feature.
fn rust_llvm_major() -> Result<String> {
    let out = capture(command("rustc").arg("-vV"))?;
    out.lines()
        .find_map(|line| line.strip_prefix("LLVM version: "))
        .and_then(|version| version.split('.').next())
        .map(str::to_owned)
        .context("`rustc -vV` does not report an LLVM version")
}

fn debian_packages() -> Result<()> {
    let missing: Vec<&str> = DEBIAN_TOOLS
        .iter()
        .filter(|(tool, _)| find_program(tool).is_none())
        .map(|&(_, package)| package)
        .collect();
    if missing.is_empty() {
        let tools: Vec<&str> = DEBIAN_TOOLS.iter().map(|&(tool, _)| tool).collect();
        println!("packages: present ({})", tools.join(", "));
        return Ok(());
    }
    println!("packages: installing {}", missing.join(" "));
    require_root("installing Debian packages")?;
    let apt = || {
        let mut cmd = command("apt-get");
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    run(apt().arg("update"))?;
    run(apt()
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing))?;
    for (tool, package) in DEBIAN_TOOLS {
        ensure!(
            find_program(tool).is_some(),
            "`{tool}` still missing after installing {package}"
        );
    }
    Ok(())
}

/// Pinned maps and links live on bpffs; without it pinning fails.
fn bpffs() -> Result<()> {
    if bpffs_mounted()? {
        println!("bpffs: mounted on {BPFFS}");
        return Ok(());
    }
    println!("bpffs: mounting on {BPFFS}");
    require_root("mounting bpffs")?;
    run(command("mount").args(["-t", "bpf", "bpf", BPFFS]))?;
    ensure!(bpffs_mounted()?, "{BPFFS} is still not a bpf filesystem");
    Ok(())
}

fn bpffs_mounted() -> Result<bool> {
    let mounts = fs::read_to_string("/proc/mounts").context("reading /proc/mounts")?;
    Ok(mounts.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        matches!(fields[..], [_, mountpoint, "bpf", ..] if mountpoint == BPFFS)
    }))
}

fn require_root(step: &str) -> Result<()> {
    ensure!(
        is_root()?,
        "{step} needs root: run `cargo xtask setup` as root once (later runs need no root)"
    );
    Ok(())
}
