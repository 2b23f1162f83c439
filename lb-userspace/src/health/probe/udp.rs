//! udp probes: a datagram out, one datagram back.

use std::{
    io,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
};

use tokio::net::UdpSocket;

use super::{failure::Failure, matching::contains};
use crate::config::health::UdpCheck;

/// The largest UDP payload: a reply is never cut short by our buffer.
const MAX_DATAGRAM: usize = 65_535;

/// How much of a mismatching reply is shown to operators.
const EXCERPT: usize = 64;

/// Up when the real answers `send` (with `expect` in the reply, if set).
pub(super) async fn probe(check: &UdpCheck, target: SocketAddr) -> Result<(), Failure> {
    let socket = connected_socket(target).await?;
    let reply = exchange(&socket, check.send.as_bytes()).await?;
    match &check.expect {
        Some(expected) if !contains(&reply, expected.as_bytes()) => Err(Failure::ReplyMismatch {
            reply: excerpt(&reply),
            expected: expected.clone(),
        }),
        _ => Ok(()),
    }
}

/// A socket connected to `target`: the kernel then drops datagrams from
/// anyone else, and reports the ICMP errors `target` causes.
pub(super) async fn connected_socket(target: SocketAddr) -> Result<UdpSocket, Failure> {
    let any = if target.is_ipv4() {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
    };
    let socket = UdpSocket::bind(any)
        .await
        .map_err(|error| from_io(&error))?;
    socket
        .connect(target)
        .await
        .map_err(|error| from_io(&error))?;
    Ok(socket)
}

/// Sends `request` and waits for one datagram (the caller's timeout bounds
/// the wait: no reply at all is a timeout).
pub(super) async fn exchange(socket: &UdpSocket, request: &[u8]) -> Result<Vec<u8>, Failure> {
    socket
        .send(request)
        .await
        .map_err(|error| from_io(&error))?;
    let mut reply = vec![0; MAX_DATAGRAM];
    let length = socket
        .recv(&mut reply)
        .await
        .map_err(|error| from_io(&error))?;
    reply.truncate(length);
    Ok(reply)
}

/// On a connected UDP socket, ECONNREFUSED is the ICMP port unreachable
/// the real sent back.
fn from_io(error: &io::Error) -> Failure {
    match Failure::from_io(error) {
        Failure::Refused => Failure::PortUnreachable,
        other => other,
    }
}

/// The start of a reply, as text.
fn excerpt(reply: &[u8]) -> String {
    let shown = String::from_utf8_lossy(&reply[..reply.len().min(EXCERPT)]);
    if reply.len() > EXCERPT {
        format!("{shown}...")
    } else {
        shown.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{config::health::Probe, health::probe::Prober};

    const TIMEOUT: Duration = Duration::from_secs(2);

    /// A server on `ip` that answers each datagram with `answer(datagram)`.
    async fn responder(ip: std::net::IpAddr, answer: fn(&[u8]) -> Vec<u8>) -> SocketAddr {
        let socket = UdpSocket::bind((ip, 0)).await.unwrap();
        let address = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buffer = [0; 1500];
            while let Ok((length, peer)) = socket.recv_from(&mut buffer).await {
                let _ = socket.send_to(&answer(&buffer[..length]), peer).await;
            }
        });
        address
    }

    fn udp(send: &str, expect: Option<&str>) -> Probe {
        Probe::Udp(UdpCheck {
            send: send.into(),
            expect: expect.map(Into::into),
        })
    }

    async fn run(probe: &Probe, target: SocketAddr, timeout: Duration) -> Result<(), Failure> {
        Prober::new(1).probe(probe, target, timeout).await
    }

    #[tokio::test]
    async fn an_echo_with_the_expected_text_is_up() {
        for ip in [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()] {
            let target = responder(ip, |datagram| datagram.to_vec()).await;
            let result = run(&udp("ping pong", Some("pong")), target, TIMEOUT).await;
            assert_eq!(result, Ok(()), "{target}");
        }
    }

    #[tokio::test]
    async fn any_reply_will_do_without_expect() {
        let target = responder(Ipv4Addr::LOCALHOST.into(), |_| b"whatever".to_vec()).await;
        assert_eq!(run(&udp("ping", None), target, TIMEOUT).await, Ok(()));
    }

    #[tokio::test]
    async fn a_reply_without_the_expected_text_is_down() {
        let target = responder(Ipv4Addr::LOCALHOST.into(), |_| b"pang".to_vec()).await;
        let failure = run(&udp("ping", Some("pong")), target, TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(
            failure.to_string(),
            "reply \"pang\" does not contain \"pong\""
        );
        assert_eq!(failure.kind(), "bad_reply");
    }

    #[tokio::test]
    async fn no_reply_is_a_timeout() {
        // Bound but never read: datagrams are queued, nothing answers.
        let silent = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let target = silent.local_addr().unwrap();
        let timeout = Duration::from_millis(200);
        let result = run(&udp("ping", None), target, timeout).await;
        assert_eq!(
            result,
            Err(Failure::Timeout {
                after: timeout,
                killed: false
            })
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let closed = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let target = closed.local_addr().unwrap();
        drop(closed);
        let failure = run(&udp("ping", None), target, TIMEOUT).await.unwrap_err();
        assert_eq!(failure, Failure::PortUnreachable);
        assert_eq!(failure.to_string(), "port unreachable (ICMP)");
    }

    #[test]
    fn long_replies_are_cut_for_display() {
        assert_eq!(excerpt(b"short"), "short");
        let long = excerpt(&[b'a'; 100]);
        assert_eq!(long, format!("{}...", "a".repeat(EXCERPT)));
    }
}
