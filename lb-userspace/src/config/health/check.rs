//! How a real is probed: the health-check types and how they print back.

use std::{fmt, net::SocketAddr, time::Duration};

use serde::{Serialize, Serializer, ser::SerializeMap};

/// How a real is probed. A service's `health_check` applies to every real;
/// a real's own `health_check` overrides it field by field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HealthCheck {
    pub probe: Probe,
    /// Time between the starts of two probes.
    pub interval: Duration,
    /// A probe that has not succeeded after this long has failed.
    pub timeout: Duration,
    /// Consecutive successes that bring a down real up.
    pub rise: u32,
    /// Consecutive failures that take an up real down.
    pub fall: u32,
    /// Port probed; `None` probes the real's own port.
    pub port: Option<u16>,
}

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
pub const DEFAULT_RISE: u32 = 2;
pub const DEFAULT_FALL: u32 = 3;

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            probe: Probe::None,
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            rise: DEFAULT_RISE,
            fall: DEFAULT_FALL,
            port: None,
        }
    }
}

impl HealthCheck {
    /// Whether the real is probed at all (`type: none` is always up).
    pub fn is_active(&self) -> bool {
        self.probe != Probe::None
    }
}

/// One kind of probe and what it expects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Probe {
    /// Not probed: the real is always up.
    None,
    /// A TCP connection is accepted.
    Tcp,
    /// An HTTP/1.1 GET is answered as expected.
    Http(HttpCheck),
    /// The same over TLS (the certificate is not verified, as keepalived's
    /// `SSL_GET`: reals are usually addressed by IP, behind the balancer).
    Https(HttpCheck),
    /// A datagram is answered (and, if `expect` is set, with that text).
    Udp(UdpCheck),
    /// A DNS query over UDP gets a NOERROR answer with a record of the type.
    Dns(DnsCheck),
    /// A command exits 0 (up) or not (down), like keepalived's `MISC_CHECK`.
    Exec(ExecCheck),
}

impl Probe {
    /// The YAML keyword (`type:`).
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Tcp => "tcp",
            Self::Http(_) => "http",
            Self::Https(_) => "https",
            Self::Udp(_) => "udp",
            Self::Dns(_) => "dns",
            Self::Exec(_) => "exec",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct HttpCheck {
    pub path: String,
    /// The `Host` header; the real's address when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Accepted status codes, inclusive.
    pub expect_status: StatusRange,
    /// Text the response body must contain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect_body: Option<String>,
}

impl Default for HttpCheck {
    fn default() -> Self {
        Self {
            path: "/".to_owned(),
            host: None,
            expect_status: StatusRange::SUCCESS,
            expect_body: None,
        }
    }
}

/// `"200-299"` or `"200"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusRange {
    pub first: u16,
    pub last: u16,
}

impl StatusRange {
    pub const SUCCESS: Self = Self {
        first: 200,
        last: 299,
    };

    pub fn contains(self, status: u16) -> bool {
        (self.first..=self.last).contains(&status)
    }

    /// Reads `"200"` or `"200-299"` (codes 100..=599).
    pub fn parse(text: &str) -> Option<Self> {
        let code = |part: &str| {
            part.trim()
                .parse::<u16>()
                .ok()
                .filter(|code| (100..=599).contains(code))
        };
        let range = match text.split_once('-') {
            Some((first, last)) => Self {
                first: code(first)?,
                last: code(last)?,
            },
            None => {
                let only = code(text)?;
                Self {
                    first: only,
                    last: only,
                }
            }
        };
        (range.first <= range.last).then_some(range)
    }
}

impl fmt::Display for StatusRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct UdpCheck {
    /// The datagram sent.
    pub send: String,
    /// Text the reply must contain; any reply will do when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DnsCheck {
    /// The name asked for.
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: DnsRecordType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DnsRecordType {
    #[default]
    A,
    Aaaa,
    Cname,
    Mx,
    Ns,
    Soa,
    Txt,
    Srv,
    Ptr,
}

impl DnsRecordType {
    pub const ALL: &'static [Self] = &[
        Self::A,
        Self::Aaaa,
        Self::Cname,
        Self::Mx,
        Self::Ns,
        Self::Soa,
        Self::Txt,
        Self::Srv,
        Self::Ptr,
    ];

    /// The name in DNS (and in YAML).
    pub fn name(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Cname => "CNAME",
            Self::Mx => "MX",
            Self::Ns => "NS",
            Self::Soa => "SOA",
            Self::Txt => "TXT",
            Self::Srv => "SRV",
            Self::Ptr => "PTR",
        }
    }

    /// The RR type number (RFC 1035 and successors).
    pub fn code(self) -> u16 {
        match self {
            Self::A => 1,
            Self::Ns => 2,
            Self::Cname => 5,
            Self::Soa => 6,
            Self::Ptr => 12,
            Self::Mx => 15,
            Self::Txt => 16,
            Self::Aaaa => 28,
            Self::Srv => 33,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ExecCheck {
    /// Program and arguments; `{address}` and `{port}` in any of them are
    /// replaced by the real's address and the probed port.
    pub command: Vec<String>,
}

impl ExecCheck {
    /// The command line for one target.
    pub fn argv(&self, target: SocketAddr) -> Vec<String> {
        let (address, port) = (target.ip().to_string(), target.port().to_string());
        self.command
            .iter()
            .map(|arg| arg.replace("{address}", &address).replace("{port}", &port))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Printing back (YAML export, `config` over the control API).

/// `2s`, `1500ms`: the shortest exact spelling.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

/// Reads `2s`, `500ms`, `1.5s`, `1m`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit_ms) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        (text, 1000.0)
    };
    let value: f64 = number.trim().parse().ok()?;
    let millis = value * unit_ms;
    (millis.is_finite() && millis >= 0.0 && millis.fract() == 0.0 && millis <= u32::MAX as f64)
        .then(|| Duration::from_millis(millis as u64))
}

impl Serialize for HealthCheck {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", self.probe.keyword())?;
        map.serialize_entry("interval", &format_duration(self.interval))?;
        map.serialize_entry("timeout", &format_duration(self.timeout))?;
        map.serialize_entry("rise", &self.rise)?;
        map.serialize_entry("fall", &self.fall)?;
        if let Some(port) = self.port {
            map.serialize_entry("port", &port)?;
        }
        match &self.probe {
            Probe::None | Probe::Tcp => {}
            Probe::Http(http) | Probe::Https(http) => map.serialize_entry("http", http)?,
            Probe::Udp(udp) => map.serialize_entry("udp", udp)?,
            Probe::Dns(dns) => map.serialize_entry("dns", dns)?,
            Probe::Exec(exec) => map.serialize_entry("exec", exec)?,
        }
        map.end()
    }
}

impl Serialize for StatusRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Serialize for DnsRecordType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}
