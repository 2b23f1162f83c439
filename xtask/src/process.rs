//! Finding programs, running them, and the few facts about the host the
//! tasks need (root, paths). Kept free of task logic.

use std::{
    env,
    ffi::{OsStr, OsString},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

/// Directories searched after `PATH`: `cargo install` puts bpf-linker in the
/// cargo bin dir, which a fresh shell (or `sudo`) may not have on `PATH`, and
/// Debian keeps `ip`, `sysctl`, `bpftool`... in sbin, which non-root `PATH`s
/// often lack.
fn extra_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = cargo_bin_dir().into_iter().collect();
    dirs.extend(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from));
    dirs
}

/// `$CARGO_HOME/bin`, else `~/.cargo/bin`.
pub fn cargo_bin_dir() -> Option<PathBuf> {
    match env::var_os("CARGO_HOME") {
        Some(home) if !home.is_empty() => Some(PathBuf::from(home).join("bin")),
        _ => home_dir().map(|home| home.join(".cargo/bin")),
    }
}

pub fn home_dir() -> Option<PathBuf> {
    env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
}

/// `PATH` followed by [`extra_dirs`]. Every child gets this, so that the BPF
/// build (aya-build looks up `bpf-linker` by name) finds what `setup`
/// installed even when the caller's `PATH` does not include it.
fn search_path() -> OsString {
    let mut dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|path| env::split_paths(&path).collect())
        .unwrap_or_default();
    for dir in extra_dirs() {
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    env::join_paths(dirs).expect("PATH entries never contain ':'")
}

/// Full path of an executable `name` on the extended search path.
pub fn find_program(name: &str) -> Option<PathBuf> {
    env::split_paths(&search_path())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// A `Command` for `program` with the extended `PATH`. Bare names are
/// resolved here, because std looks them up in xtask's own `PATH`.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let program = program.as_ref();
    let resolved = program
        .to_str()
        .filter(|name| !name.contains('/'))
        .and_then(find_program)
        .map_or_else(|| program.to_owned(), PathBuf::into_os_string);
    let mut cmd = Command::new(resolved);
    cmd.env("PATH", search_path());
    cmd
}

/// The cargo that is running us (cargo sets `$CARGO`), so every step uses
/// the same toolchain as the `cargo xtask` invocation.
pub fn cargo() -> Command {
    let mut cmd = command(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

/// Runs `cmd` with inherited stdio; fails unless it exits successfully.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = display(cmd);
    eprintln!("+ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its stdout, or `None` if it could not be
/// started or failed. For probes, where failure just means "not there".
pub fn probe(cmd: &mut Command) -> Option<String> {
    let output = cmd.output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Like [`probe`], but a failure is an error worth reporting.
pub fn capture(cmd: &mut Command) -> Result<String> {
    let shown = display(cmd);
    let output = cmd
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !output.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// `program args...` for messages (program shown by file name only).
fn display(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program());
    let program = program.file_name().unwrap_or(program.as_os_str());
    std::iter::once(program)
        .chain(cmd.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Effective uid 0, read from /proc so no libc binding is needed.
pub fn is_root() -> Result<bool> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let uids = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .context("no Uid line in /proc/self/status")?;
    // Fields: real, effective, saved, filesystem.
    Ok(uids.split_whitespace().nth(1) == Some("0"))
}

/// The workspace root: the parent of this crate's directory.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
}

/// Cargo's target dir: `CARGO_TARGET_DIR` (relative to the workspace root,
/// where we run cargo) if set, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR"]
        .into_iter()
        .find_map(|var| env::var_os(var).filter(|dir| !dir.is_empty()))
        .map_or_else(
            || workspace_root().join("target"),
            |dir| workspace_root().join(dir),
        )
}
