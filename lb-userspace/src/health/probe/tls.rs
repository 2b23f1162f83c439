//! TLS for https probes: rustls on ring, any certificate accepted.

use std::{net::SocketAddr, sync::Arc};

use rustls::{
    ClientConfig, DigitallySignedStruct as Signed, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{self, WebPkiSupportedAlgorithms},
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream};

use super::failure::Failure;

/// What a handshake signature check answers.
type Verdict = Result<HandshakeSignatureValid, rustls::Error>;

/// The client side shared by every https probe.
pub(super) fn client_config() -> Arc<ClientConfig> {
    let provider = Arc::new(crypto::ring::default_provider());
    let verifier = Arc::new(AcceptAnyCertificate {
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        // Only fails for a provider without cipher suites for the default
        // versions, which ring's default provider always has: a build
        // mistake, not a run-time condition (the tests construct it).
        .expect("ring's default provider supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // Servers that insist on ALPN would otherwise refuse the handshake.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Runs the TLS handshake over an established connection to `target`.
pub(super) async fn connect(
    connector: &TlsConnector,
    host: Option<&str>,
    target: SocketAddr,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, Failure> {
    connector
        .connect(server_name(host, target), tcp)
        .await
        .map_err(|error| Failure::from_io(&error))
}

/// The name sent as SNI: the configured host when it is a DNS name.
/// rustls sends no SNI for an IP address, as RFC 6066 requires.
fn server_name(host: Option<&str>, target: SocketAddr) -> ServerName<'static> {
    host.map(without_port)
        .and_then(|name| ServerName::try_from(name.to_owned()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(target.ip().into()))
}

/// `example.com` of `example.com:8443`, `::1` of `[::1]:443`: the `Host`
/// header may carry a port, SNI may not.
fn without_port(host: &str) -> &str {
    if let Some(bracketed) = host.strip_prefix('[') {
        return bracketed.split_once(']').map_or(host, |(ip, _)| ip);
    }
    match host.split_once(':') {
        // More than one colon: a bare IPv6 address.
        Some((name, port)) if !port.contains(':') => name,
        _ => host,
    }
}

/// Accepts whatever certificate the real presents, as keepalived's
/// `SSL_GET` does: reals are addressed by IP behind the balancer and
/// commonly serve self-signed or internal-CA certificates, or ones issued
/// for the service name rather than the real. The probe asks "does the
/// real speak TLS and answer", not "is it who it claims to be"; the
/// handshake signatures are still checked, so the real does hold the key
/// of the certificate it sent.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(&self, msg: &[u8], cert: &CertificateDer, dss: &Signed) -> Verdict {
        crypto::verify_tls12_signature(msg, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(&self, msg: &[u8], cert: &CertificateDer, dss: &Signed) -> Verdict {
        crypto::verify_tls13_signature(msg, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_is_the_configured_dns_name_without_port() {
        let target = SocketAddr::from(([10, 0, 0, 1], 443));
        let dns = |name: &str| ServerName::try_from(name.to_owned()).unwrap();
        assert_eq!(
            server_name(Some("www.example.com"), target),
            dns("www.example.com")
        );
        assert_eq!(
            server_name(Some("www.example.com:8443"), target),
            dns("www.example.com")
        );
    }

    #[test]
    fn no_sni_without_a_dns_name() {
        let target = SocketAddr::from(([10, 0, 0, 1], 443));
        let ip =
            |text: &str| ServerName::IpAddress(text.parse::<std::net::IpAddr>().unwrap().into());
        assert_eq!(server_name(None, target), ip("10.0.0.1"));
        assert_eq!(
            server_name(Some("[2001:db8::1]:443"), target),
            ip("2001:db8::1")
        );
        assert_eq!(server_name(Some("2001:db8::1"), target), ip("2001:db8::1"));
        assert_eq!(server_name(Some("not a name!"), target), ip("10.0.0.1"));
    }
}
