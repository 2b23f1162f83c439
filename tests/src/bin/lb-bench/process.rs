//! Running the tools the bench drives (nft, iperf3, wrk).

use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, ensure};

pub trait RunWithInput {
    /// Runs to completion with `input` on stdin; its stdout, or an error
    /// with its stderr when it fails.
    fn run_with_input(&mut self, input: &str) -> Result<String>;
}

impl RunWithInput for Command {
    fn run_with_input(&mut self, input: &str) -> Result<String> {
        use std::io::Write as _;
        let mut child = self
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawning {:?}", self.get_program()))?;
        child
            .stdin
            .take()
            .context("child's stdin")?
            .write_all(input.as_bytes())?;
        let output = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        ensure!(
            output.status.success(),
            "exited with {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            // iperf3 --json reports its errors on stdout.
            stdout.trim()
        );
        Ok(stdout)
    }
}
