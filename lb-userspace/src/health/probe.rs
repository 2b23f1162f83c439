//! Health-check probes: one attempt of one check against one real.
//!
//! Every probe is async on the daemon's tokio runtime, opens its own
//! sockets (nothing is pooled, so a probe sees what a new client would)
//! and is bounded by the check's timeout.

mod dns;
mod exec;
mod failure;
mod http;
mod matching;
mod tls;
mod udp;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{net::TcpStream, sync::Semaphore};
use tokio_rustls::TlsConnector;

pub use failure::Failure;

use crate::config::health::Probe;

/// Shared, cheap-to-clone resources of all probes (TLS client config, limit
/// on concurrent child processes).
#[derive(Clone)]
pub struct Prober {
    tls: TlsConnector,
    processes: Arc<Semaphore>,
}

impl Prober {
    /// `max_processes`: how many exec checks may run at once (others wait
    /// their turn, and the wait counts against their timeout).
    pub fn new(max_processes: usize) -> Self {
        // Zero permits would time out every exec check without running it,
        // and more than the semaphore can count would panic.
        let permits = max_processes.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            tls: TlsConnector::from(tls::client_config()),
            processes: Arc::new(Semaphore::new(permits)),
        }
    }

    /// Runs one probe of `probe` against `target` (address + port already
    /// resolved), giving up after `timeout`.
    pub async fn probe(
        &self,
        probe: &Probe,
        target: SocketAddr,
        timeout: Duration,
    ) -> Result<(), Failure> {
        match probe {
            Probe::None => Ok(()),
            Probe::Tcp => within(timeout, tcp(target)).await,
            Probe::Http(check) => within(timeout, http::probe(check, target, None)).await,
            Probe::Https(check) => {
                within(timeout, http::probe(check, target, Some(&self.tls))).await
            }
            Probe::Udp(check) => within(timeout, udp::probe(check, target)).await,
            Probe::Dns(check) => within(timeout, dns::probe(check, target)).await,
            // Keeps its own deadline: on timeout the process group must be
            // killed, which merely dropping the future would not do.
            Probe::Exec(check) => exec::probe(check, target, timeout, &self.processes).await,
        }
    }
}

/// `probe`, or a timeout failure once `timeout` has passed.
async fn within(
    timeout: Duration,
    probe: impl Future<Output = Result<(), Failure>>,
) -> Result<(), Failure> {
    tokio::time::timeout(timeout, probe)
        .await
        .unwrap_or(Err(Failure::Timeout {
            after: timeout,
            killed: false,
        }))
}

/// Up when the real accepts a TCP connection.
async fn tcp(target: SocketAddr) -> Result<(), Failure> {
    TcpStream::connect(target)
        .await
        .map(drop)
        .map_err(|error| Failure::from_io(&error))
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use tokio::net::TcpListener;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn none_is_always_up() {
        // Nothing listens on port 9 of a documentation address: a probe that
        // touched the network would fail or hang.
        let target = SocketAddr::from(([192, 0, 2, 1], 9));
        let result = Prober::new(1).probe(&Probe::None, target, TIMEOUT).await;
        assert_eq!(result, Ok(()));
    }

    #[tokio::test]
    async fn tcp_is_up_when_the_port_accepts() {
        for ip in [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()] {
            let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await.unwrap();
            let target = listener.local_addr().unwrap();
            let result = Prober::new(1).probe(&Probe::Tcp, target, TIMEOUT).await;
            assert_eq!(result, Ok(()), "{target}");
        }
    }

    #[tokio::test]
    async fn tcp_is_refused_on_a_closed_port() {
        let target = closed_tcp_port().await;
        let result = Prober::new(1).probe(&Probe::Tcp, target, TIMEOUT).await;
        assert_eq!(result, Err(Failure::Refused));
        assert_eq!(Failure::Refused.kind(), "refused");
        assert_eq!(Failure::Refused.to_string(), "connection refused");
    }

    /// A port that was just bound and released, so nothing listens on it.
    async fn closed_tcp_port() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        listener.local_addr().unwrap()
    }
}
