//! exec probes: a command that exits 0 when the real is up.

use std::{
    net::SocketAddr,
    os::unix::process::ExitStatusExt,
    process::{ExitStatus, Stdio},
    time::Duration,
};

use tokio::{
    process::{Child, Command},
    sync::Semaphore,
    time::{Instant, timeout_at},
};

use super::failure::Failure;
use crate::config::health::ExecCheck;

/// How long a killed check may take to die before it is left to tokio's
/// background reaping (a process stuck in the kernel ignores SIGKILL until
/// it leaves it).
const REAP_GRACE: Duration = Duration::from_secs(1);

/// Runs the check's command once `processes` lets it; waiting for a turn
/// counts against `timeout`, so a backlog shows as timeouts rather than
/// as probes running late.
pub(super) async fn probe(
    check: &ExecCheck,
    target: SocketAddr,
    timeout: Duration,
    processes: &Semaphore,
) -> Result<(), Failure> {
    let deadline = Instant::now() + timeout;
    let timed_out = |killed| Failure::Timeout {
        after: timeout,
        killed,
    };
    let _turn = timeout_at(deadline, processes.acquire())
        .await
        .map_err(|_| timed_out(false))?
        .map_err(|_| Failure::Io("the exec check limiter was closed".to_owned()))?;
    let mut group = ProcessGroup::spawn(&check.argv(target))?;
    match timeout_at(deadline, group.child.wait()).await {
        Ok(status) => {
            group.reaped = true;
            verdict(status.map_err(|error| Failure::Io(format!("waiting for the check: {error}")))?)
        }
        Err(_) => {
            group.kill().await;
            Err(timed_out(true))
        }
    }
}

/// The check's process, leader of its own process group so that a check
/// written as a script is killed with everything it started.
struct ProcessGroup {
    child: Child,
    /// The leader's pid, which is also the group's id.
    pgid: libc::pid_t,
    /// Once the leader is reaped its pid may be reused: no more killing.
    reaped: bool,
}

impl ProcessGroup {
    /// Starts `argv` directly (no shell: arguments are not re-parsed), with
    /// nothing to read and nowhere to write.
    fn spawn(argv: &[String]) -> Result<Self, Failure> {
        let (program, arguments) = argv
            .split_first()
            .ok_or_else(|| Failure::Config("the exec command is empty".to_owned()))?;
        let child = Command::new(program)
            .args(arguments)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| Failure::Io(format!("cannot run {program:?}: {error}")))?;
        let pgid = child
            .id()
            .and_then(|pid| libc::pid_t::try_from(pid).ok())
            .ok_or_else(|| Failure::Io(format!("{program:?} has no process id")))?;
        Ok(Self {
            child,
            pgid,
            reaped: false,
        })
    }

    /// Kills the whole group and reaps the leader, giving up on the reaping
    /// after `REAP_GRACE`.
    async fn kill(&mut self) {
        self.signal_group();
        if let Ok(Ok(_)) = tokio::time::timeout(REAP_GRACE, self.child.wait()).await {
            self.reaped = true;
        }
    }

    fn signal_group(&self) {
        if !self.reaped {
            // SAFETY: kill(2) touches no memory of ours. The group id is
            // still ours: its leader is not reaped yet, so it is alive or a
            // zombie, and its pid cannot have been reused.
            unsafe {
                libc::kill(-self.pgid, libc::SIGKILL);
            }
        }
    }
}

/// A probe dropped mid-run (the real was removed, the daemon stops) must
/// not leave its processes behind; `kill_on_drop` alone only reaches the
/// leader. tokio reaps the leader in the background.
impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.signal_group();
    }
}

/// Exit 0 is up; anything else says why not.
fn verdict(status: ExitStatus) -> Result<(), Failure> {
    if status.success() {
        Ok(())
    } else if let Some(code) = status.code() {
        Err(Failure::ExitStatus(code))
    } else if let Some(signal) = status.signal() {
        Err(Failure::Signal(signal))
    } else {
        Err(Failure::Io(format!("the check ended with {status}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::health::Probe, health::probe::Prober};

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn target() -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 7], 8080))
    }

    fn exec(command: &[&str]) -> Probe {
        Probe::Exec(ExecCheck {
            command: command.iter().map(|arg| (*arg).to_owned()).collect(),
        })
    }

    fn shell(script: &str) -> Probe {
        exec(&["/bin/sh", "-c", script])
    }

    async fn run(probe: &Probe, timeout: Duration) -> Result<(), Failure> {
        Prober::new(4).probe(probe, target(), timeout).await
    }

    /// Whether a process is gone: no such pid, or only its zombie (a
    /// grandchild is reaped by init, which may take its time in containers).
    fn gone(pid: &str) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            // The state follows the parenthesised command name.
            Ok(stat) => stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z')),
        }
    }

    async fn eventually_gone(pid: &str) -> bool {
        for _ in 0..100 {
            if gone(pid) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn exit_0_is_up() {
        assert_eq!(run(&shell("exit 0"), TIMEOUT).await, Ok(()));
    }

    #[tokio::test]
    async fn a_non_zero_exit_is_down_with_its_code() {
        let failure = run(&shell("exit 1"), TIMEOUT).await.unwrap_err();
        assert_eq!(failure, Failure::ExitStatus(1));
        assert_eq!(failure.to_string(), "exit status 1");
    }

    #[tokio::test]
    async fn a_signal_is_reported() {
        let failure = run(&shell("kill -TERM $$"), TIMEOUT).await.unwrap_err();
        assert_eq!(failure, Failure::Signal(libc::SIGTERM));
    }

    #[tokio::test]
    async fn address_and_port_are_substituted() {
        let probe = exec(&[
            "/bin/sh",
            "-c",
            r#"[ "$1" = 192.0.2.7 ] && [ "$2" = 8080 ] && [ "$3" = "http://192.0.2.7:8080/" ]"#,
            "check",
            "{address}",
            "{port}",
            "http://{address}:{port}/",
        ]);
        assert_eq!(run(&probe, TIMEOUT).await, Ok(()));
    }

    #[tokio::test]
    async fn a_missing_program_is_an_io_failure() {
        let failure = run(&exec(&["/nonexistent/check"]), TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(failure.kind(), "io");
        assert!(
            failure
                .to_string()
                .starts_with("cannot run \"/nonexistent/check\""),
            "{failure}"
        );
    }

    #[tokio::test]
    async fn an_empty_command_is_a_config_failure() {
        let failure = run(&exec(&[]), TIMEOUT).await.unwrap_err();
        assert_eq!(failure.kind(), "config");
    }

    #[tokio::test]
    async fn a_check_past_its_timeout_is_killed_with_its_children() {
        let dir = std::env::temp_dir().join(format!("lbd-exec-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pids = dir.join("pids");
        // The shell forks sleep (it does not exec it: a command follows),
        // so killing only the shell would leave sleep running.
        let script = format!("sleep 5 & echo $$ $! > {}; wait; true", pids.display());
        let timeout = Duration::from_millis(200);
        let started = std::time::Instant::now();
        let failure = run(&shell(&script), timeout).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            failure,
            Failure::Timeout {
                after: timeout,
                killed: true
            }
        );
        assert_eq!(failure.to_string(), "killed after timeout 200ms");
        let written = std::fs::read_to_string(&pids).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        for pid in written.split_whitespace() {
            assert!(eventually_gone(pid).await, "process {pid} still runs");
        }
    }

    #[tokio::test]
    async fn waiting_for_a_turn_counts_against_the_timeout() {
        let prober = Prober::new(1);
        let busy = tokio::spawn({
            let prober = prober.clone();
            async move { prober.probe(&shell("sleep 0.5"), target(), TIMEOUT).await }
        });
        // Let the first check take the only turn.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let timeout = Duration::from_millis(100);
        let failure = prober
            .probe(&shell("exit 0"), target(), timeout)
            .await
            .unwrap_err();
        assert_eq!(
            failure,
            Failure::Timeout {
                after: timeout,
                killed: false
            }
        );
        assert_eq!(busy.await.unwrap(), Ok(()));
    }

    #[test]
    fn verdicts_follow_the_wait_status() {
        // Raw wait statuses: exit code in the second byte, signal in the first.
        assert_eq!(verdict(ExitStatus::from_raw(0)), Ok(()));
        assert_eq!(
            verdict(ExitStatus::from_raw(3 << 8)),
            Err(Failure::ExitStatus(3))
        );
        assert_eq!(verdict(ExitStatus::from_raw(9)), Err(Failure::Signal(9)));
    }
}
