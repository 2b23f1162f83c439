//! http and https probes: one HTTP/1.1 GET on a fresh connection.

use std::{
    error::Error as _,
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{
    Request, Response,
    body::Incoming,
    client::conn::http1,
    header::{CONNECTION, HOST, HeaderValue, USER_AGENT},
    rt::{Read, Write},
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{failure::Failure, matching::contains, tls};
use crate::config::health::HttpCheck;

/// How much of a body is searched for `expect_body`: health pages are
/// small, and a real streaming something huge must not cost us memory.
const MAX_BODY: usize = 64 * 1024;

const USER_AGENT_VALUE: &str = "lbd-health-check";

/// Up when `GET path` is answered with an expected status (and body).
/// `tls` makes it an https probe.
pub(super) async fn probe(
    check: &HttpCheck,
    target: SocketAddr,
    tls: Option<&TlsConnector>,
) -> Result<(), Failure> {
    let default_port = if tls.is_some() { 443 } else { 80 };
    let request = request(check, target, default_port)?;
    let tcp = TcpStream::connect(target)
        .await
        .map_err(|error| Failure::from_io(&error))?;
    match tls {
        None => exchange(TokioIo::new(tcp), request, check).await,
        Some(connector) => {
            let stream = tls::connect(connector, check.host.as_deref(), target, tcp).await?;
            exchange(TokioIo::new(stream), request, check).await
        }
    }
}

/// The GET sent to the real.
fn request(
    check: &HttpCheck,
    target: SocketAddr,
    default_port: u16,
) -> Result<Request<Empty<Bytes>>, Failure> {
    let host = host_header(check.host.as_deref(), target, default_port);
    let host = HeaderValue::from_str(&host)
        .map_err(|_| Failure::Config(format!("invalid HTTP Host {host:?}")))?;
    Request::get(check.path.as_str())
        .header(HOST, host)
        // One request per connection: say so, so the real frees it at once.
        .header(CONNECTION, "close")
        .header(USER_AGENT, USER_AGENT_VALUE)
        .body(Empty::new())
        .map_err(|error| Failure::Config(format!("invalid HTTP path {:?}: {error}", check.path)))
}

/// The configured host, else the real's address with its port unless it is
/// the scheme's default (RFC 9110, 7.2).
fn host_header(host: Option<&str>, target: SocketAddr, default_port: u16) -> String {
    if let Some(host) = host {
        return host.to_owned();
    }
    let ip = match target.ip() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    if target.port() == default_port {
        ip
    } else {
        format!("{ip}:{}", target.port())
    }
}

/// Sends `request` over `io` and checks the response.
async fn exchange<T>(
    io: T,
    request: Request<Empty<Bytes>>,
    check: &HttpCheck,
) -> Result<(), Failure>
where
    T: Read + Write + Unpin,
{
    let (mut sender, connection) = http1::handshake(io).await.map_err(from_hyper)?;
    alongside(connection, async move {
        let response = sender.send_request(request).await.map_err(from_hyper)?;
        verdict(response, check).await
    })
    .await
}

/// Runs `work` while driving `connection`, which does the socket I/O for
/// it. Both stay inside the probe's future (rather than a spawned task),
/// so the probe's timeout drops the connection too. A connection that ends
/// first (closed, or failed) leaves `work` to learn the outcome from hyper.
async fn alongside<C: Future, W: Future>(connection: C, work: W) -> W::Output {
    let mut work = std::pin::pin!(work);
    tokio::select! {
        output = &mut work => return output,
        _ = connection => {}
    }
    work.await
}

/// Checks the status, then (only if asked to) the body.
async fn verdict(response: Response<Incoming>, check: &HttpCheck) -> Result<(), Failure> {
    let status = response.status().as_u16();
    if !check.expect_status.contains(status) {
        return Err(Failure::BadStatus {
            status,
            expected: check.expect_status,
        });
    }
    match &check.expect_body {
        None => Ok(()),
        Some(expected) if body_contains(response.into_body(), expected.as_bytes()).await? => Ok(()),
        Some(expected) => Err(Failure::BodyMismatch {
            expected: expected.clone(),
        }),
    }
}

/// Whether the first `MAX_BODY` bytes of `body` contain `needle`; stops
/// reading as soon as they do.
async fn body_contains(mut body: Incoming, needle: &[u8]) -> Result<bool, Failure> {
    if needle.is_empty() {
        return Ok(true);
    }
    let mut seen = Vec::new();
    while seen.len() < MAX_BODY {
        let Some(frame) = body.frame().await else {
            break;
        };
        let Ok(data) = frame.map_err(from_hyper)?.into_data() else {
            continue; // trailers
        };
        let before = seen.len();
        let room = MAX_BODY - before;
        seen.extend_from_slice(&data[..data.len().min(room)]);
        // A new match ends in the new data: no need to search far before it.
        if contains(&seen[before.saturating_sub(needle.len())..], needle) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Socket errors say what happened to the real; the rest is a reply hyper
/// could not make sense of.
fn from_hyper(error: hyper::Error) -> Failure {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return Failure::from_io(io);
        }
        source = cause.source();
    }
    if error.is_incomplete_message() {
        return Failure::BadReply("connection closed before a complete HTTP reply".to_owned());
    }
    Failure::BadReply(format!("bad HTTP reply: {error}"))
}

#[cfg(test)]
mod tests {
    use std::{
        net::{Ipv4Addr, Ipv6Addr},
        sync::Arc,
        time::Duration,
    };

    use rustls::{
        ServerConfig,
        pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer},
    };
    use tokio::{
        io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
        net::TcpListener,
    };
    use tokio_rustls::TlsAcceptor;

    use super::*;
    use crate::{
        config::health::{Probe, StatusRange},
        health::probe::Prober,
    };

    const TIMEOUT: Duration = Duration::from_secs(2);

    /// What the responder is told of a request: its head (request line and
    /// headers) and, over TLS, the SNI the client sent.
    type Respond = fn(head: &str, sni: Option<&str>) -> String;

    fn http(check: HttpCheck) -> Probe {
        Probe::Http(check)
    }

    fn reply(status: u16, body: &str) -> String {
        format!(
            "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    /// A header's value in a request head (names are case-insensitive).
    fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> String {
        let mut head = Vec::new();
        let mut byte = [0; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        String::from_utf8_lossy(&head).into_owned()
    }

    async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
        mut stream: S,
        sni: Option<String>,
        respond: Respond,
    ) {
        let head = read_head(&mut stream).await;
        let response = respond(&head, sni.as_deref());
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    /// A plain HTTP server on `ip`, answering every connection once.
    async fn http_server(ip: IpAddr, respond: Respond) -> SocketAddr {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, None, respond));
            }
        });
        address
    }

    /// A server that sends `text` as soon as it accepts, without reading.
    async fn eager_server(text: &'static str) -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(text.as_bytes()).await;
            }
        });
        address
    }

    /// An HTTPS server with a fresh self-signed certificate for localhost.
    async fn https_server(respond: Respond) -> SocketAddr {
        let acceptor = TlsAcceptor::from(Arc::new(self_signed_server_config()));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let sni = tls.get_ref().1.server_name().map(str::to_owned);
                        answer(tls, sni, respond).await;
                    }
                });
            }
        });
        address
    }

    fn self_signed_server_config() -> ServerConfig {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![certified.cert.der().clone()],
                PrivateKeyDer::Pkcs8(key),
            )
            .unwrap()
    }

    async fn run(probe: &Probe, target: SocketAddr) -> Result<(), Failure> {
        Prober::new(1).probe(probe, target, TIMEOUT).await
    }

    /// Probes a local server answering as `respond` does, for a body that
    /// contains "ok".
    async fn expecting_ok(respond: Respond) -> Result<(), Failure> {
        let target = http_server(Ipv4Addr::LOCALHOST.into(), respond).await;
        let check = HttpCheck {
            expect_body: Some("ok".into()),
            ..HttpCheck::default()
        };
        run(&http(check), target).await
    }

    #[tokio::test]
    async fn expected_status_is_up() {
        let target = http_server(Ipv4Addr::LOCALHOST.into(), |_, _| reply(204, "")).await;
        assert_eq!(run(&http(HttpCheck::default()), target).await, Ok(()));
    }

    #[tokio::test]
    async fn unexpected_status_is_down() {
        let target = http_server(Ipv4Addr::LOCALHOST.into(), |_, _| reply(503, "busy")).await;
        let failure = run(&http(HttpCheck::default()), target).await.unwrap_err();
        assert_eq!(
            failure,
            Failure::BadStatus {
                status: 503,
                expected: StatusRange::SUCCESS
            }
        );
        assert_eq!(failure.to_string(), "HTTP status 503, expected 200-299");
    }

    #[tokio::test]
    async fn a_configured_status_range_is_honoured() {
        let target = http_server(Ipv4Addr::LOCALHOST.into(), |_, _| reply(302, "")).await;
        let check = HttpCheck {
            expect_status: StatusRange::parse("300-399").unwrap(),
            ..HttpCheck::default()
        };
        assert_eq!(run(&http(check), target).await, Ok(()));
    }

    #[tokio::test]
    async fn body_with_the_expected_text_is_up() {
        let result = expecting_ok(|_, _| reply(200, "status: ok\n")).await;
        assert_eq!(result, Ok(()));
    }

    #[tokio::test]
    async fn body_without_the_expected_text_is_down() {
        let failure = expecting_ok(|_, _| reply(200, "status: degraded"))
            .await
            .unwrap_err();
        assert_eq!(
            failure,
            Failure::BodyMismatch {
                expected: "ok".into()
            }
        );
        assert_eq!(failure.to_string(), "body does not contain \"ok\"");
    }

    #[tokio::test]
    async fn text_past_the_body_limit_is_not_seen() {
        let result = expecting_ok(|_, _| reply(200, &format!("{}ok", "x".repeat(MAX_BODY)))).await;
        assert!(matches!(result, Err(Failure::BodyMismatch { .. })));
    }

    #[tokio::test]
    async fn the_request_carries_the_configured_host_and_path() {
        let target = http_server(Ipv4Addr::LOCALHOST.into(), |head, _| {
            let expected = head.starts_with("GET /health?deep=1 HTTP/1.1\r\n")
                && header(head, "host") == Some("www.example.com")
                && header(head, "connection") == Some("close")
                && header(head, "user-agent") == Some(USER_AGENT_VALUE);
            reply(if expected { 200 } else { 400 }, head)
        })
        .await;
        let check = HttpCheck {
            path: "/health?deep=1".into(),
            host: Some("www.example.com".into()),
            ..HttpCheck::default()
        };
        assert_eq!(run(&http(check), target).await, Ok(()));
    }

    #[tokio::test]
    async fn the_default_host_is_the_bracketed_ipv6_address_and_port() {
        let target = http_server(Ipv6Addr::LOCALHOST.into(), |head, _| {
            let ok = header(head, "host").is_some_and(|host| host.starts_with("[::1]:"));
            reply(if ok { 200 } else { 400 }, head)
        })
        .await;
        assert_eq!(run(&http(HttpCheck::default()), target).await, Ok(()));
    }

    #[test]
    fn the_default_port_is_left_out_of_the_host() {
        let v4 = SocketAddr::from(([10, 0, 0, 1], 80));
        assert_eq!(host_header(None, v4, 80), "10.0.0.1");
        assert_eq!(host_header(None, v4, 443), "10.0.0.1:80");
        let v6: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        assert_eq!(host_header(None, v6, 443), "[2001:db8::1]");
        assert_eq!(host_header(Some("a.example"), v6, 443), "a.example");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        // The kernel completes the handshake from the backlog; no one reads.
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let target = listener.local_addr().unwrap();
        let timeout = Duration::from_millis(200);
        let result = Prober::new(1)
            .probe(&http(HttpCheck::default()), target, timeout)
            .await;
        let failure = result.unwrap_err();
        assert_eq!(
            failure,
            Failure::Timeout {
                after: timeout,
                killed: false
            }
        );
        assert_eq!(failure.to_string(), "timed out after 200ms");
    }

    #[tokio::test]
    async fn a_reply_that_is_not_http_is_a_bad_reply() {
        let target = http_server(Ipv4Addr::LOCALHOST.into(), |_, _| {
            "SSH-2.0-OpenSSH\r\n".into()
        })
        .await;
        let failure = run(&http(HttpCheck::default()), target).await.unwrap_err();
        assert_eq!(failure.kind(), "bad_reply", "{failure}");
    }

    #[tokio::test]
    async fn https_accepts_a_self_signed_certificate_without_sni_for_an_ip() {
        let target = https_server(|head, sni| {
            let ok = sni.is_none()
                && header(head, "host").is_some_and(|host| host.starts_with("127.0.0.1:"));
            reply(if ok { 200 } else { 400 }, "secure ok")
        })
        .await;
        let check = HttpCheck {
            expect_body: Some("secure".into()),
            ..HttpCheck::default()
        };
        assert_eq!(run(&Probe::Https(check), target).await, Ok(()));
    }

    #[tokio::test]
    async fn https_sends_the_host_as_sni() {
        let check = HttpCheck {
            host: Some("localhost".into()),
            ..HttpCheck::default()
        };
        let target = https_server(|head, sni| {
            let ok = sni == Some("localhost") && header(head, "host") == Some("localhost");
            reply(if ok { 200 } else { 400 }, head)
        })
        .await;
        assert_eq!(run(&Probe::Https(check), target).await, Ok(()));
    }

    #[tokio::test]
    async fn https_to_a_plain_http_server_is_a_tls_failure() {
        // A plain server would wait for a request line that never comes.
        let target = eager_server("HTTP/1.1 400 Bad Request\r\n\r\n").await;
        let failure = run(&Probe::Https(HttpCheck::default()), target)
            .await
            .unwrap_err();
        assert_eq!(failure.kind(), "tls", "{failure}");
    }
}
