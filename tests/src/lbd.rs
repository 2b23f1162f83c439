//! Running the real `lbd` binary inside a rig's balancer namespace.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::netns::Netns;

/// The `lbd` built next to the running test or demo binary (`cargo build
/// --bins` puts them in the same target directory); `LBD_BIN` overrides.
pub fn binary(name: &str) -> Result<PathBuf> {
    let variable = format!("{}_BIN", name.to_uppercase());
    if let Ok(path) = std::env::var(&variable) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    exe.ancestors()
        .skip(1)
        .take(3)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!(
                "no {name} binary near {} (run `cargo build --bins` first, or set {variable})",
                exe.display()
            )
        })
}

/// A running `lbd`. Dropping it kills the process (the pinned data plane
/// stays; the rig tears that down).
pub struct Lbd {
    child: Child,
    log: PathBuf,
    /// `ready` lines already in the (appended) log when this one started.
    ready_before_start: usize,
}

impl Lbd {
    /// Starts `lbd --config CONFIG` in `netns`. `nsenter --net` switches only
    /// the network namespace, so the host's bpffs stays visible (unlike
    /// `ip netns exec`, which mounts a fresh /sys).
    pub fn start(netns: &Netns, config: &Path, log: &Path) -> Result<Self> {
        let config = config.to_string_lossy();
        Self::start_with_args(netns, &["--config", &config], log)
    }

    /// Starts `lbd ARGS...` in `netns`, logging to `log`.
    pub fn start_with_args(netns: &Netns, args: &[&str], log: &Path) -> Result<Self> {
        let ready_before_start = std::fs::read_to_string(log)
            .unwrap_or_default()
            .matches(READY)
            .count();
        let stderr = File::options().create(true).append(true).open(log)?;
        let child = Command::new("nsenter")
            .arg(format!("--net={}", netns.path()))
            .arg("--")
            .arg(binary("lbd")?)
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("spawning lbd")?;
        Ok(Self {
            child,
            log: log.to_owned(),
            ready_before_start,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if lbd has exited.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has shown `marker` more than `seen` times; fails
    /// early if lbd exits.
    pub fn wait_for_log(&mut self, marker: &str, seen: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.log_text();
            if text.matches(marker).count() > seen {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("lbd exited ({status}) before logging {marker:?}:\n{text}");
            }
            if Instant::now() > deadline {
                bail!("lbd did not log {marker:?} within {timeout:?}:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the `ready` line of this process's start-up.
    pub fn wait_ready(&mut self) -> Result<()> {
        self.wait_for_log(READY, self.ready_before_start, Duration::from_secs(20))
    }

    pub fn signal(&self, signal: i32) -> Result<()> {
        // SAFETY: plain kill(2) on our own child.
        if unsafe { libc::kill(self.child.id() as i32, signal) } != 0 {
            bail!("kill: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// SIGTERM, then waits for the exit.
    pub fn stop(mut self) -> Result<ExitStatus> {
        self.signal(libc::SIGTERM)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("lbd ignored SIGTERM:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs lbd to completion (for `check` and bad configs).
    pub fn run_to_exit(netns: &Netns, args: &[&str]) -> Result<(ExitStatus, String)> {
        let output = Command::new("nsenter")
            .arg(format!("--net={}", netns.path()))
            .arg("--")
            .arg(binary("lbd")?)
            .args(args)
            .env("NO_COLOR", "1")
            .output()?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        Ok((output.status, text))
    }
}

/// What `lbd` logs once it forwards.
const READY: &str = " ready ";

impl Drop for Lbd {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
