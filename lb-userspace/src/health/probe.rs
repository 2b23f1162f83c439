//! TEMPORARY stand-in until the real probes land (tcp only).
use std::{fmt, net::SocketAddr, time::Duration};

use crate::config::health::Probe;

#[derive(Clone)]
pub struct Prober;

impl Prober {
    pub fn new(_max_processes: usize) -> Self {
        Self
    }

    pub async fn probe(
        &self,
        probe: &Probe,
        target: SocketAddr,
        timeout: Duration,
    ) -> Result<(), Failure> {
        match probe {
            Probe::None => Ok(()),
            _ => {
                match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(target)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(_)) => Err(Failure::Refused),
                    Err(_) => Err(Failure::Timeout(timeout)),
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Timeout(Duration),
    Refused,
}

impl Failure {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Refused => "refused",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(t) => write!(f, "timed out after {t:?}"),
            Self::Refused => f.write_str("connection refused"),
        }
    }
}
