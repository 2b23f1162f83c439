//! Network namespaces and the commands that configure them.

use std::{
    fs::File,
    os::fd::AsRawFd as _,
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{Context as _, Result, bail};

/// Runs a command, failing with its stderr when it fails.
pub fn run(program: &str, args: &[&str]) -> Result<()> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// A short prefix unique to this process and rig, so rigs built by tests
/// running in parallel never share a name (interface names max 15 bytes).
pub fn unique_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("lb{}x{n}", std::process::id() % 100_000)
}

/// A named network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn create(name: &str) -> Result<Self> {
        run("ip", &["netns", "add", name])?;
        let netns = Self {
            name: name.to_owned(),
        };
        netns.ip(&["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    pub fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }

    /// `ip -n NAME ...`
    pub fn ip(&self, args: &[&str]) -> Result<()> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// `nsenter --net=PATH -- program`: a command that runs in this
    /// namespace and still sees the host's /sys (bpffs), unlike `ip netns
    /// exec`, which mounts a fresh one.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net={}", self.path()))
            .arg("--")
            .arg(program);
        command
    }

    /// Writes a sysctl inside the namespace (/proc/sys/net is per namespace).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        let key = format!("/proc/sys/{}", key.replace('.', "/"));
        self.enter(|| std::fs::write(&key, value).with_context(|| format!("writing {key}")))
    }

    /// Runs `f` on a thread that has entered this namespace. Sockets it
    /// creates stay in the namespace after it returns.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        let file = File::open(self.path()).with_context(|| format!("opening {}", self.path()))?;
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    // SAFETY: setns on a valid namespace fd affects only
                    // this (short-lived) thread.
                    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        bail!("setns: {}", std::io::Error::last_os_error());
                    }
                    f()
                })
                .join()
                .map_err(|_| anyhow::anyhow!("thread in namespace panicked"))?
        })
    }
}

/// A veth pair: `left_name` in `left`, its peer `right_name` in `right`.
/// Both ends start down and unaddressed.
pub fn veth_pair(left: &Netns, left_name: &str, right: &Netns, right_name: &str) -> Result<()> {
    run(
        "ip",
        &[
            "link",
            "add",
            left_name,
            "netns",
            &left.name,
            "type",
            "veth",
            "peer",
            "name",
            right_name,
            "netns",
            &right.name,
        ],
    )
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

/// Two namespaces, `near` and `far`, joined by a veth pair (`eth0` in each)
/// on 198.18.0.0/24: near is .1 and routes `routed` (a CIDR) through far,
/// .2. The benches' shape: lbd on the near side, one namespace standing in
/// for many reals on the far side.
pub fn routed_pair(near: &str, far: &str, routed: &str) -> Result<(Netns, Netns)> {
    let (near, far) = (Netns::create(near)?, Netns::create(far)?);
    veth_pair(&near, "eth0", &far, "eth0")?;
    near.ip(&["addr", "add", "198.18.0.1/24", "dev", "eth0"])?;
    near.ip(&["link", "set", "eth0", "up"])?;
    near.ip(&["route", "add", routed, "via", "198.18.0.2"])?;
    far.ip(&["addr", "add", "198.18.0.2/24", "dev", "eth0"])?;
    far.ip(&["link", "set", "eth0", "up"])?;
    Ok((near, far))
}
