//! The daemon's control API: JSON lines over a Unix socket.
//!
//! Each request is one line, `{"api": 1, "op": ..., ...}`, answered by one
//! line, `{"api": 1, "status": "ok", "result": ...}` or `{"api": 1,
//! "status": "error", "message": ..., "exit_code": N}`. A connection may carry
//! any number of requests. The socket is created mode 0600 and the daemon
//! also checks the peer's credentials: only root may drive the balancer.
//! `lbadm` is one client; anything that can write a line of JSON to a Unix
//! socket is another (`socat - UNIX-CONNECT:/run/lb/lbd.sock`).
//!
//! Requests are handled one at a time by the daemon's main loop, so a
//! change is never interleaved with another, and `apply` is all or nothing:
//! the whole batch is checked (ipvsadm's rules, then the configuration's)
//! before anything reaches the data plane.

pub mod server;
pub mod table;

use std::{
    io::{BufRead as _, BufReader, Write as _},
    net::SocketAddr,
    os::unix::net::UnixStream,
    path::Path,
};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{estimator::Rates, ipvsadm};

/// Bumped when a request or result changes incompatibly.
pub const API_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Who is answering: [`Status`].
    Status,
    /// The running services as ipvsadm sees them: an [`ipvsadm::Table`].
    Services,
    /// The running configuration, as YAML the daemon would load: a string.
    Config,
    /// ipvsadm commands applied as one change, all or nothing: [`Applied`].
    Apply { commands: Vec<ipvsadm::Command> },
    /// Re-reads the configuration file, replacing changes made at run time.
    Reload,
    /// Rates and health of every service and real: `Vec<`[`LiveService`]`>`.
    Live,
    /// Sets (or, with `check: null`, removes) the health check of a service
    /// or of one of its reals. `check` is a `health_check` mapping in YAML
    /// (JSON is YAML too); a real's is read over the service's, as in the
    /// file. Lasts until the next reload, like ipvsadm changes: [`Applied`].
    SetHealthCheck {
        service: ipvsadm::ServiceId,
        #[serde(default)]
        real: Option<SocketAddr>,
        check: Option<String>,
    },
}

/// A request on the wire.
#[derive(Serialize, Deserialize)]
pub struct RequestLine {
    pub api: u32,
    #[serde(flatten)]
    pub request: Request,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Response {
    Ok {
        result: serde_json::Value,
    },
    Error {
        message: String,
        /// What ipvsadm would exit with for this error.
        exit_code: i32,
    },
}

/// A response on the wire.
#[derive(Serialize, Deserialize)]
pub struct ResponseLine {
    pub api: u32,
    #[serde(flatten)]
    pub response: Response,
}

impl Response {
    pub fn ok(result: impl Serialize) -> Self {
        match serde_json::to_value(result) {
            Ok(result) => Self::Ok { result },
            Err(error) => Self::error(format!("cannot encode the result: {error}"), 1),
        }
    }

    pub fn error(message: impl Into<String>, exit_code: i32) -> Self {
        Self::Error {
            message: message.into(),
            exit_code,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub version: String,
    pub config_path: String,
    pub services: usize,
    pub reals: usize,
}

/// What an `apply` changed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub commands: usize,
    pub services_added: usize,
    pub services_removed: usize,
    pub reals_written: usize,
    pub reals_removed: usize,
}

/// Whether a real takes new connections, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Scheduled normally.
    Up,
    /// Weight 0: keeps its connections, takes no new ones.
    Quiesced,
    /// At its upper connection threshold.
    Overloaded,
    /// No next hop (ARP/ND unanswered, no route): nothing can be sent.
    Unreachable,
    /// Failed its health checks: out of the service, or at weight 0 with
    /// `inhibit_on_failure`.
    Down,
}

/// A real's health checks as the daemon last saw them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckStatus {
    /// The check's `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `up` or `down`.
    pub state: String,
    /// Seconds since the state last changed (or checking began).
    pub seconds_in_state: u64,
    /// Why the last probe failed, until one succeeds.
    pub last_failure: Option<String>,
    /// Milliseconds the last probe took.
    pub last_probe_ms: Option<u64>,
    pub probes: u64,
    pub failures: u64,
    /// Failed probes by kind (`timeout`, `refused`, `bad_status`, ...).
    #[serde(default)]
    pub failures_by_kind: std::collections::BTreeMap<String, u64>,
    pub went_up: u64,
    pub went_down: u64,
}

/// Whether a service has enough healthy weight to schedule normally.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumStatus {
    pub quorate: bool,
    pub healthy_weight: u64,
    pub quorum: u32,
    /// What happens below quorum: `sorry_server`, `drop` or `keep`.
    pub on_quorum_loss: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveService {
    /// The service's name (YAML, metrics).
    #[serde(default)]
    pub name: String,
    pub protocol: String,
    pub address: SocketAddr,
    pub rates: Rates,
    #[serde(default)]
    pub quorum: Option<QuorumStatus>,
    pub reals: Vec<LiveReal>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveReal {
    pub address: SocketAddr,
    pub rates: Rates,
    pub health: Health,
    /// `None` when the real is not probed.
    #[serde(default)]
    pub check: Option<CheckStatus>,
    /// The service's sorry server, standing in below quorum.
    #[serde(default)]
    pub sorry_server: bool,
}

/// A failed call: the daemon's answer, or why there was none.
#[derive(Debug)]
pub enum CallError {
    /// The daemon refused the request (ipvsadm's message and exit status).
    Refused { message: String, exit_code: i32 },
    /// No answer: the socket is missing, not ours, or the daemon died.
    Unreachable(anyhow::Error),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused { message, .. } => f.write_str(message),
            Self::Unreachable(error) => write!(f, "{error:#}"),
        }
    }
}

impl std::error::Error for CallError {}

/// A blocking client: one connection, any number of calls.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    pub fn connect(socket: &Path) -> Result<Self, CallError> {
        let stream = UnixStream::connect(socket)
            .with_context(|| {
                format!(
                    "cannot reach lbd's control socket {} (is lbd running, and are you root?)",
                    socket.display()
                )
            })
            .map_err(CallError::Unreachable)?;
        let writer = stream
            .try_clone()
            .context("cloning the control socket")
            .map_err(CallError::Unreachable)?;
        Ok(Self {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Sends `request` and decodes the result as `T`.
    pub fn call<T: DeserializeOwned>(&mut self, request: Request) -> Result<T, CallError> {
        let unreachable = CallError::Unreachable;
        let line = RequestLine {
            api: API_VERSION,
            request,
        };
        let mut text = serde_json::to_string(&line)
            .context("encoding the request")
            .map_err(unreachable)?;
        text.push('\n');
        self.writer
            .write_all(text.as_bytes())
            .context("writing to the control socket")
            .map_err(unreachable)?;
        let mut answer = String::new();
        let read = self
            .reader
            .read_line(&mut answer)
            .context("reading from the control socket")
            .map_err(unreachable)?;
        if read == 0 {
            return Err(unreachable(anyhow::anyhow!(
                "lbd closed the control connection without answering"
            )));
        }
        let answer: ResponseLine = serde_json::from_str(&answer)
            .context("lbd's answer is not a control API response")
            .map_err(unreachable)?;
        match answer.response {
            Response::Ok { result } => serde_json::from_value(result)
                .context("lbd's result has an unexpected shape")
                .map_err(unreachable),
            Response::Error { message, exit_code } => {
                Err(CallError::Refused { message, exit_code })
            }
        }
    }
}
