//! Why a probe failed, in words for operators and in labels for metrics.

use std::{fmt, io, time::Duration};

use crate::config::health::{DnsRecordType, StatusRange, format_duration};

/// Why a probe failed: shown to operators in logs, `lbadm -L` and JSON, and
/// counted in metrics by `kind()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No verdict within the check's timeout; `killed` when an exec check's
    /// processes had to be killed for it.
    Timeout {
        after: Duration,
        killed: bool,
    },
    /// The real answered a TCP SYN with a reset.
    Refused,
    /// ICMP port unreachable: nothing listens on the UDP port.
    PortUnreachable,
    /// The connection was reset after it was established.
    Reset,
    HostUnreachable,
    NetworkUnreachable,
    /// The TLS handshake or session failed.
    Tls(String),
    /// The reply could not be understood (not HTTP, not DNS, wrong id...).
    BadReply(String),
    BadStatus {
        status: u16,
        expected: StatusRange,
    },
    BodyMismatch {
        expected: String,
    },
    /// A UDP reply without the expected text (`reply` is an excerpt).
    ReplyMismatch {
        reply: String,
        expected: String,
    },
    /// A DNS reply whose RCODE is not NOERROR.
    DnsRcode(u16),
    /// A NOERROR DNS reply with no record of the type asked for.
    NoRecord(DnsRecordType),
    /// An exec check exited with this non-zero code.
    ExitStatus(i32),
    /// An exec check was killed by this signal (not by us).
    Signal(i32),
    /// The check cannot be carried out as configured (bad DNS name, empty
    /// command, path that is not a URI...).
    Config(String),
    /// Any other I/O error, with its message.
    Io(String),
}

impl Failure {
    /// A short stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            // A closed UDP port is the datagram form of a refused connection.
            Self::Refused | Self::PortUnreachable => "refused",
            Self::Reset => "reset",
            Self::HostUnreachable | Self::NetworkUnreachable => "unreachable",
            Self::Tls(_) => "tls",
            Self::BadReply(_) | Self::ReplyMismatch { .. } => "bad_reply",
            Self::BadStatus { .. } => "bad_status",
            Self::BodyMismatch { .. } => "body_mismatch",
            Self::DnsRcode(_) => "dns_error",
            Self::NoRecord(_) => "no_record",
            Self::ExitStatus(_) => "exit_status",
            Self::Signal(_) => "signal",
            Self::Config(_) => "config",
            Self::Io(_) => "io",
        }
    }

    /// Classifies a socket error by what it says about the real.
    pub(super) fn from_io(error: &io::Error) -> Self {
        // tokio-rustls reports TLS errors as io::Errors wrapping them.
        if let Some(tls) = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Self::Tls(tls.to_string());
        }
        match error.kind() {
            io::ErrorKind::ConnectionRefused => Self::Refused,
            io::ErrorKind::ConnectionReset => Self::Reset,
            io::ErrorKind::HostUnreachable => Self::HostUnreachable,
            io::ErrorKind::NetworkUnreachable => Self::NetworkUnreachable,
            _ => Self::Io(error.to_string()),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout {
                after,
                killed: false,
            } => write!(f, "timed out after {}", format_duration(*after)),
            Self::Timeout {
                after,
                killed: true,
            } => write!(f, "killed after timeout {}", format_duration(*after)),
            Self::Refused => f.write_str("connection refused"),
            Self::PortUnreachable => f.write_str("port unreachable (ICMP)"),
            Self::Reset => f.write_str("connection reset by peer"),
            Self::HostUnreachable => f.write_str("host unreachable"),
            Self::NetworkUnreachable => f.write_str("network unreachable"),
            Self::Tls(reason) => write!(f, "TLS: {reason}"),
            Self::BadReply(reason) | Self::Config(reason) | Self::Io(reason) => f.write_str(reason),
            Self::BadStatus { status, expected } => {
                write!(f, "HTTP status {status}, expected {expected}")
            }
            Self::BodyMismatch { expected } => write!(f, "body does not contain {expected:?}"),
            Self::ReplyMismatch { reply, expected } => {
                write!(f, "reply {reply:?} does not contain {expected:?}")
            }
            Self::DnsRcode(rcode) => match rcode_name(*rcode) {
                Some(name) => write!(f, "DNS answer {name}"),
                None => write!(f, "DNS answer RCODE {rcode}"),
            },
            Self::NoRecord(record_type) => {
                write!(f, "no {} record in the answer", record_type.name())
            }
            Self::ExitStatus(code) => write!(f, "exit status {code}"),
            Self::Signal(signal) => write!(f, "killed by signal {signal}"),
        }
    }
}

/// The mnemonic DNS operators know an RCODE by (RFC 1035, 2136, 6891).
fn rcode_name(rcode: u16) -> Option<&'static str> {
    Some(match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_operators_expect() {
        let cases = [
            (
                Failure::Timeout {
                    after: Duration::from_secs(1),
                    killed: false,
                },
                "timed out after 1s",
                "timeout",
            ),
            (
                Failure::Timeout {
                    after: Duration::from_millis(1500),
                    killed: true,
                },
                "killed after timeout 1500ms",
                "timeout",
            ),
            (Failure::Refused, "connection refused", "refused"),
            (
                Failure::PortUnreachable,
                "port unreachable (ICMP)",
                "refused",
            ),
            (
                Failure::BadStatus {
                    status: 503,
                    expected: StatusRange::SUCCESS,
                },
                "HTTP status 503, expected 200-299",
                "bad_status",
            ),
            (
                Failure::BodyMismatch {
                    expected: "ok".into(),
                },
                "body does not contain \"ok\"",
                "body_mismatch",
            ),
            (
                Failure::ReplyMismatch {
                    reply: "pang".into(),
                    expected: "pong".into(),
                },
                "reply \"pang\" does not contain \"pong\"",
                "bad_reply",
            ),
            (Failure::DnsRcode(2), "DNS answer SERVFAIL", "dns_error"),
            (Failure::DnsRcode(23), "DNS answer RCODE 23", "dns_error"),
            (
                Failure::NoRecord(DnsRecordType::A),
                "no A record in the answer",
                "no_record",
            ),
            (Failure::ExitStatus(1), "exit status 1", "exit_status"),
            (Failure::Signal(9), "killed by signal 9", "signal"),
        ];
        for (failure, reason, kind) in cases {
            assert_eq!(failure.to_string(), reason);
            assert_eq!(failure.kind(), kind, "{failure:?}");
        }
    }

    #[test]
    fn socket_errors_are_classified() {
        let of = |kind: io::ErrorKind| Failure::from_io(&io::Error::from(kind));
        assert_eq!(of(io::ErrorKind::ConnectionRefused), Failure::Refused);
        assert_eq!(of(io::ErrorKind::ConnectionReset), Failure::Reset);
        assert_eq!(
            Failure::from_io(&io::Error::from_raw_os_error(libc::EHOSTUNREACH)),
            Failure::HostUnreachable
        );
        assert_eq!(
            Failure::from_io(&io::Error::from_raw_os_error(libc::ENETUNREACH)),
            Failure::NetworkUnreachable
        );
        let other = Failure::from_io(&io::Error::other("boom"));
        assert_eq!(other, Failure::Io("boom".into()));
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::General("nope".into()),
        );
        assert!(matches!(Failure::from_io(&tls), Failure::Tls(_)));
    }
}
