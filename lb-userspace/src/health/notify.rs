//! `notify_up` / `notify_down`: commands run on a transition, as
//! keepalived's. They run detached (no shell); a slow or failing one is
//! logged and never delays health checking.

use std::{net::SocketAddr, time::Duration};

use tokio::process::Command;
use tracing::warn;

use super::tracker::Verdict;

/// A notification that has not finished by then is killed.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// The command line with `{service}`, `{address}`, `{port}`, `{state}`
/// and `{reason}` replaced.
pub fn argv(
    command: &[String],
    service: &str,
    real: SocketAddr,
    state: Verdict,
    reason: &str,
) -> Vec<String> {
    let (address, port) = (real.ip().to_string(), real.port().to_string());
    command
        .iter()
        .map(|arg| {
            arg.replace("{service}", service)
                .replace("{address}", &address)
                .replace("{port}", &port)
                .replace("{state}", state.name())
                .replace("{reason}", reason)
        })
        .collect()
}

pub fn spawn(command: &[String], service: &str, real: SocketAddr, state: Verdict, reason: &str) {
    let argv = argv(command, service, real, state, reason);
    tokio::spawn(async move {
        let Some((program, args)) = argv.split_first() else {
            return;
        };
        let child = Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(error) => {
                warn!(command = %program, "notify command did not start: {error}");
                return;
            }
        };
        match tokio::time::timeout(NOTIFY_TIMEOUT, child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => warn!(command = %program, %status, "notify command failed"),
            Ok(Err(error)) => warn!(command = %program, "notify command: {error}"),
            Err(_) => warn!(command = %program, "notify command killed after 30s"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_in_every_argument() {
        let command = vec![
            "/bin/echo".to_owned(),
            "{service}:{address}:{port}".to_owned(),
            "{state} because {reason}".to_owned(),
        ];
        let real: SocketAddr = "[fd00::2]:8080".parse().unwrap();
        assert_eq!(
            argv(&command, "web", real, Verdict::Down, "timed out"),
            ["/bin/echo", "web:fd00::2:8080", "down because timed out"]
        );
    }
}
