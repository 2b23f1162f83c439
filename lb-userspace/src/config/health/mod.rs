//! The health-checking part of the schema: how each real is probed, and
//! what a service does when too few of its reals pass.

use std::{fmt, net::SocketAddr, time::Duration};

use saphyr::Scalar;
use serde::{Serialize, Serializer, ser::SerializeMap};

use super::{ConfigError, Field, Positions, Reader, load_document, scalar};

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

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpCheck {
    pub path: String,
    /// The `Host` header; the real's address when `None`.
    pub host: Option<String>,
    /// Accepted status codes, inclusive.
    pub expect_status: StatusRange,
    /// Text the response body must contain.
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

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct UdpCheck {
    /// The datagram sent.
    pub send: String,
    /// Text the reply must contain; any reply will do when `None`.
    pub expect: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsCheck {
    /// The name asked for.
    pub name: String,
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

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

impl Serialize for HttpCheck {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("path", &self.path)?;
        if let Some(host) = &self.host {
            map.serialize_entry("host", host)?;
        }
        map.serialize_entry("expect_status", &self.expect_status.to_string())?;
        if let Some(body) = &self.expect_body {
            map.serialize_entry("expect_body", body)?;
        }
        map.end()
    }
}

impl Serialize for UdpCheck {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("send", &self.send)?;
        if let Some(expect) = &self.expect {
            map.serialize_entry("expect", expect)?;
        }
        map.end()
    }
}

impl Serialize for DnsCheck {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("name", &self.name)?;
        map.serialize_entry("type", self.record_type.name())?;
        map.end()
    }
}

impl Serialize for ExecCheck {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("command", &self.command)?;
        map.end()
    }
}

// ---------------------------------------------------------------------------
// What a service does about failed reals.

/// The health settings of a service (flattened into its YAML mapping).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct ServiceHealth {
    #[serde(skip_serializing_if = "is_unchecked")]
    pub health_check: HealthCheck,
    /// A failed real keeps its place with weight 0 (its established
    /// connections carry on) instead of leaving the service.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inhibit_on_failure: bool,
    /// keepalived's `alpha`: a real whose state is unknown (lbd starting
    /// without pinned state, a real just added) starts down and joins after
    /// its first successful probe. Off, it starts up and leaves after
    /// `fall` failures.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub alpha: bool,
    /// Minimum total weight of healthy reals; below it the service applies
    /// `on_quorum_loss`.
    #[serde(skip_serializing_if = "is_default_quorum")]
    pub quorum: u32,
    /// What happens below quorum; unset: `sorry_server` if one is
    /// configured, else `drop`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_quorum_loss: Option<QuorumLoss>,
    /// Where new connections go below quorum: a real that is never probed.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_sorry_server"
    )]
    pub sorry_server: Option<super::RealConfig>,
    /// Run when a real comes up / goes down (no shell); `{service}`,
    /// `{address}`, `{port}`, `{state}` and `{reason}` are replaced.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notify_up: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notify_down: Vec<String>,
}

pub const DEFAULT_QUORUM: u32 = 1;

/// The fields `sorry_server` takes: address, port and forwarding.
fn serialize_sorry_server<S: Serializer>(
    sorry: &Option<super::RealConfig>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(None)?;
    if let Some(sorry) = sorry {
        map.serialize_entry("address", &sorry.address)?;
        map.serialize_entry("port", &sorry.port)?;
        if let Some(forwarding) = sorry.forwarding {
            map.serialize_entry("forwarding", &forwarding)?;
        }
    }
    map.end()
}

fn is_unchecked(check: &HealthCheck) -> bool {
    *check == HealthCheck::default()
}

fn is_default_quorum(quorum: &u32) -> bool {
    *quorum == DEFAULT_QUORUM
}

impl ServiceHealth {
    pub fn unchecked() -> Self {
        Self {
            quorum: DEFAULT_QUORUM,
            ..Self::default()
        }
    }

    /// The policy in force below quorum.
    pub fn quorum_loss(&self) -> QuorumLoss {
        self.on_quorum_loss
            .unwrap_or(if self.sorry_server.is_some() {
                QuorumLoss::SorryServer
            } else {
                QuorumLoss::Drop
            })
    }
}

/// What a service does when its healthy weight falls below its quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuorumLoss {
    /// New connections go to the sorry server.
    SorryServer,
    /// New connections are dropped.
    Drop,
    /// The reals that last made quorum keep taking new connections
    /// (better a server that may be sick than none).
    Keep,
}

impl QuorumLoss {
    pub const ALL: &'static [Self] = &[Self::SorryServer, Self::Drop, Self::Keep];

    pub fn keyword(self) -> &'static str {
        match self {
            Self::SorryServer => "sorry_server",
            Self::Drop => "drop",
            Self::Keep => "keep",
        }
    }
}

impl Serialize for QuorumLoss {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.keyword())
    }
}

impl fmt::Display for QuorumLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

// ---------------------------------------------------------------------------
// Reading.

/// Shortest interval and timeout: below this probes are a load, not a check.
pub const MIN_PROBE_PERIOD: Duration = Duration::from_millis(10);
pub const MAX_PROBE_PERIOD: Duration = Duration::from_secs(3600);
pub const MAX_RISE_FALL: u32 = 1000;

const CHECK_FIELDS: &[&str] = &[
    "type", "interval", "timeout", "rise", "fall", "port", "http", "udp", "dns", "exec",
];
const PROBE_KINDS: &[&str] = &["none", "tcp", "http", "https", "udp", "dns", "exec"];

impl Reader<'_> {
    /// A `health_check` mapping; fields left out come from `base` (the
    /// service's check for a real, the defaults for a service).
    pub(super) fn decode_health_check(
        &mut self,
        field: &Field<'_, '_>,
        base: &HealthCheck,
    ) -> Option<HealthCheck> {
        let fields = self.mapping(field, CHECK_FIELDS)?;
        let kind = self.optional(&fields, "type", base.probe.keyword(), |r, f| {
            r.probe_kind(f)
        });
        let interval = self.optional(&fields, "interval", base.interval, Self::probe_period);
        let timeout = self.optional(&fields, "timeout", base.timeout, Self::probe_period);
        let rise = self.optional(&fields, "rise", base.rise, |r, f| {
            r.u32_in(f, 1..=MAX_RISE_FALL)
        });
        let fall = self.optional(&fields, "fall", base.fall, |r, f| {
            r.u32_in(f, 1..=MAX_RISE_FALL)
        });
        let port = self.optional(&fields, "port", base.port, |r, f| {
            r.integer(f, 1..=i64::from(u16::MAX))
                .and_then(|n| u16::try_from(n).ok())
                .map(Some)
        });
        let kind = kind?;
        // Settings of another kind than the one probed are a mistake.
        let settings_key = match kind {
            "https" => "http",
            other => other,
        };
        for key in ["http", "udp", "dns", "exec"] {
            if key != settings_key
                && let Some(settings) = fields.get(key)
            {
                self.report_on(
                    &settings,
                    format!("`{key}` settings do not apply to `type: {kind}`"),
                );
            }
        }
        let settings = fields.get(settings_key);
        let probe = match kind {
            "none" => Some(Probe::None),
            "tcp" => Some(Probe::Tcp),
            "http" | "https" => {
                let base = match &base.probe {
                    Probe::Http(http) | Probe::Https(http) => http.clone(),
                    _ => HttpCheck::default(),
                };
                let http = match &settings {
                    Some(f) => self.decode_http(f, &base),
                    None => Some(base),
                };
                http.map(|http| {
                    if kind == "http" {
                        Probe::Http(http)
                    } else {
                        Probe::Https(http)
                    }
                })
            }
            "udp" => {
                let base = match &base.probe {
                    Probe::Udp(udp) => udp.clone(),
                    _ => UdpCheck::default(),
                };
                match &settings {
                    Some(f) => self.decode_udp(f, &base).map(Probe::Udp),
                    None => Some(Probe::Udp(base)),
                }
            }
            "dns" => {
                let base = match &base.probe {
                    Probe::Dns(dns) => dns.clone(),
                    // keepalived's DNS_CHECK asks for the root's SOA.
                    _ => DnsCheck {
                        name: ".".to_owned(),
                        record_type: DnsRecordType::Soa,
                    },
                };
                match &settings {
                    Some(f) => self.decode_dns(f, &base).map(Probe::Dns),
                    None => Some(Probe::Dns(base)),
                }
            }
            _ => {
                let base = match &base.probe {
                    Probe::Exec(exec) => Some(exec.clone()),
                    _ => None,
                };
                match (&settings, base) {
                    (Some(f), _) => self.decode_exec(f).map(Probe::Exec),
                    (None, Some(base)) => Some(Probe::Exec(base)),
                    (None, None) => {
                        self.report_on(
                            &fields.mapping,
                            "`type: exec` needs `exec: { command: [...] }`",
                        );
                        None
                    }
                }
            }
        };
        let check = HealthCheck {
            probe: probe?,
            interval: interval?,
            timeout: timeout?,
            rise: rise?,
            fall: fall?,
            port: port?,
        };
        if check.timeout > check.interval {
            let at = fields.get("timeout").unwrap_or(fields.mapping.clone());
            self.report_on(
                &at,
                format!(
                    "timeout {} is longer than the interval {}: a probe must end before the next starts",
                    format_duration(check.timeout),
                    format_duration(check.interval)
                ),
            );
            return None;
        }
        Some(check)
    }

    fn probe_kind(&mut self, field: &Field<'_, '_>) -> Option<&'static str> {
        let choices = PROBE_KINDS
            .iter()
            .map(|kind| format!("`{kind}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let text = self.text(field, &format!("one of {choices}"))?;
        let kind = PROBE_KINDS.iter().copied().find(|kind| *kind == text);
        if kind.is_none() {
            self.report_on(
                field,
                format!("unknown check type `{text}`, expected one of {choices}"),
            );
        }
        kind
    }

    /// `2s`, `500ms`, `1.5s`, or a number of seconds.
    fn probe_period(&mut self, field: &Field<'_, '_>) -> Option<Duration> {
        let (min, max) = (
            format_duration(MIN_PROBE_PERIOD),
            format_duration(MAX_PROBE_PERIOD),
        );
        let expected = format!("a duration from {min} to {max} (like `2s` or `500ms`)");
        let parsed = match scalar(field.node) {
            Some((_, Scalar::Integer(n))) => u64::try_from(n).ok().map(Duration::from_secs),
            Some((text, Scalar::String(_) | Scalar::FloatingPoint(_))) => parse_duration(text),
            _ => None,
        };
        match parsed {
            Some(d) if (MIN_PROBE_PERIOD..=MAX_PROBE_PERIOD).contains(&d) => Some(d),
            _ => {
                self.expected(field, &expected);
                None
            }
        }
    }

    fn decode_http(&mut self, field: &Field<'_, '_>, base: &HttpCheck) -> Option<HttpCheck> {
        let fields = self.mapping(field, &["path", "host", "expect_status", "expect_body"])?;
        let path = self.optional(&fields, "path", base.path.clone(), |r, f| {
            let path = r.text(f, "a path")?;
            if !path.starts_with('/') || path.chars().any(|c| c.is_ascii_whitespace()) {
                r.report_on(
                    f,
                    format!("`{path}` is not a request path (`/...`, no spaces)"),
                );
                return None;
            }
            Some(path.to_owned())
        });
        let host = self.optional(&fields, "host", base.host.clone(), |r, f| {
            r.text(f, "a host name").map(|host| Some(host.to_owned()))
        });
        let expect_status = self.optional(&fields, "expect_status", base.expect_status, |r, f| {
            let text = r.text(f, "a status or range like \"200-299\"")?;
            let range = StatusRange::parse(text);
            if range.is_none() {
                r.report_on(
                    f,
                    format!("`{text}` is not a status (100-599) or a range like \"200-299\""),
                );
            }
            range
        });
        let expect_body =
            self.optional(&fields, "expect_body", base.expect_body.clone(), |r, f| {
                r.text(f, "text the body must contain")
                    .map(|text| Some(text.to_owned()))
            });
        Some(HttpCheck {
            path: path?,
            host: host?,
            expect_status: expect_status?,
            expect_body: expect_body?,
        })
    }

    fn decode_udp(&mut self, field: &Field<'_, '_>, base: &UdpCheck) -> Option<UdpCheck> {
        let fields = self.mapping(field, &["send", "expect"])?;
        let send = self.optional(&fields, "send", base.send.clone(), |r, f| {
            r.text(f, "the text to send").map(str::to_owned)
        });
        let expect = self.optional(&fields, "expect", base.expect.clone(), |r, f| {
            r.text(f, "text the reply must contain")
                .map(|text| Some(text.to_owned()))
        });
        Some(UdpCheck {
            send: send?,
            expect: expect?,
        })
    }

    fn decode_dns(&mut self, field: &Field<'_, '_>, base: &DnsCheck) -> Option<DnsCheck> {
        let fields = self.mapping(field, &["name", "type"])?;
        let name = self.optional(&fields, "name", base.name.clone(), |r, f| {
            let name = r.text(f, "a domain name")?;
            let valid = name == "."
                || (name.len() <= 253
                    && name
                        .trim_end_matches('.')
                        .split('.')
                        .all(|label| !label.is_empty() && label.len() <= 63));
            if !valid {
                r.report_on(f, format!("`{name}` is not a domain name"));
                return None;
            }
            Some(name.to_owned())
        });
        let record_type = self.optional(&fields, "type", base.record_type, |r, f| {
            let choices = DnsRecordType::ALL
                .iter()
                .map(|t| format!("`{}`", t.name()))
                .collect::<Vec<_>>()
                .join(", ");
            let text = r.text(f, &format!("one of {choices}"))?;
            let found = DnsRecordType::ALL
                .iter()
                .copied()
                .find(|t| t.name().eq_ignore_ascii_case(text));
            if found.is_none() {
                r.report_on(
                    f,
                    format!("unknown record type `{text}`, expected one of {choices}"),
                );
            }
            found
        });
        Some(DnsCheck {
            name: name?,
            record_type: record_type?,
        })
    }

    fn decode_exec(&mut self, field: &Field<'_, '_>) -> Option<ExecCheck> {
        let fields = self.mapping(field, &["command"])?;
        let command = self.required_with(&fields, "command", Self::command)?;
        Some(ExecCheck { command })
    }

    /// A program and its arguments, as a non-empty list of strings.
    pub(super) fn command(&mut self, field: &Field<'_, '_>) -> Option<Vec<String>> {
        let items = self.list(field, |r, item| r.text(item, "a string").map(str::to_owned))?;
        let command: Vec<String> = items.into_iter().collect::<Option<_>>()?;
        if command.is_empty() || command[0].is_empty() {
            self.report_on(field, "expected a program and its arguments, like [\"/usr/local/bin/check\", \"{address}\"]");
            return None;
        }
        Some(command)
    }

    pub(super) fn quorum_loss(&mut self, field: &Field<'_, '_>) -> Option<QuorumLoss> {
        let choices = QuorumLoss::ALL
            .iter()
            .map(|policy| format!("`{policy}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let text = self.text(field, &format!("one of {choices}"))?;
        let policy = QuorumLoss::ALL
            .iter()
            .copied()
            .find(|policy| policy.keyword() == text);
        if policy.is_none() {
            self.report_on(
                field,
                format!("unknown on_quorum_loss `{text}`, expected one of {choices}"),
            );
        }
        policy
    }
}

/// Reads a `health_check` mapping on its own (the control API's
/// `set_health_check`), fields left out taken from `base`.
pub fn parse_health_check(text: &str, base: &HealthCheck) -> Result<HealthCheck, ConfigError> {
    let mut reader = Reader::new("health_check", Positions::Record);
    let check = match load_document(text) {
        Ok(root) => reader.decode_health_check(&Field::root(&root), base),
        Err((pos, reason)) => {
            reader.report(pos, "", reason);
            None
        }
    };
    match check {
        Some(check) if reader.problems.is_empty() => Ok(check),
        _ => Err(ConfigError {
            problems: reader.problems,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, parse};

    fn config(services: &str) -> Result<Config, Vec<String>> {
        let text = format!("interfaces: [{{ name: eth0 }}]\nservices:\n{services}");
        parse(&text, "c.yaml", &|_| true).map_err(|error| {
            error
                .problems
                .iter()
                .map(|p| format!("{}:{}: {}: {}", p.line, p.column, p.path, p.reason))
                .collect()
        })
    }

    const WEB: &str = "  - name: web\n    vip: 198.18.1.10\n    port: 80\n    protocol: tcp\n";

    #[test]
    fn a_real_overrides_the_service_check_field_by_field() {
        let config = config(&format!(
            "{WEB}    health_check:\n      type: http\n      interval: 2s\n      timeout: 500ms\n      \
             http: {{ path: /healthz, expect_status: \"200-204\", expect_body: ok }}\n    reals:\n      \
             - {{ address: 198.18.2.2 }}\n      \
             - {{ address: 198.18.2.3, health_check: {{ fall: 5, http: {{ path: /ready }} }} }}\n      \
             - {{ address: 198.18.2.4, health_check: {{ type: tcp, port: 8080 }} }}\n"
        ))
        .unwrap();
        let service = &config.services[0];
        let [first, second, third] = &service.reals[..] else {
            panic!("three reals")
        };
        let Probe::Http(http) = &service.health_check_of(first).probe else {
            panic!("http")
        };
        assert_eq!(http.path, "/healthz");
        assert_eq!(
            http.expect_status,
            StatusRange {
                first: 200,
                last: 204
            }
        );
        assert_eq!(
            service.health_check_of(first).timeout,
            Duration::from_millis(500)
        );
        let second = service.health_check_of(second);
        assert_eq!((second.fall, second.rise), (5, DEFAULT_RISE));
        let Probe::Http(http) = &second.probe else {
            panic!("http")
        };
        // The path is the real's; the rest of the http settings the service's.
        assert_eq!(
            (http.path.as_str(), http.expect_body.as_deref()),
            ("/ready", Some("ok"))
        );
        let third = service.health_check_of(third);
        assert_eq!((third.probe.clone(), third.port), (Probe::Tcp, Some(8080)));
        assert_eq!(third.interval, Duration::from_secs(2));
    }

    #[test]
    fn health_settings_round_trip_through_yaml() {
        let config = config(&format!(
            "{WEB}    health_check: {{ type: dns, interval: 1500ms, timeout: 1s, dns: {{ name: example.test, type: aaaa }} }}\n    \
             inhibit_on_failure: true\n    alpha: true\n    quorum: 2\n    on_quorum_loss: keep\n    \
             sorry_server: {{ address: 198.18.2.99 }}\n    notify_down: [/bin/logger, \"{{address}} {{reason}}\"]\n    reals:\n      \
             - {{ address: 198.18.2.2, health_check: {{ type: exec, exec: {{ command: [/bin/true, \"{{port}}\"] }} }} }}\n"
        ))
        .unwrap();
        let yaml = serde_yaml::to_string(&config).unwrap();
        let again = parse(&yaml, "again.yaml", &|_| true).unwrap();
        assert_eq!(again, config);
        let health = &config.services[0].health;
        assert_eq!(health.quorum_loss(), QuorumLoss::Keep);
        assert_eq!(health.sorry_server.as_ref().unwrap().port, 80);
    }

    #[test]
    fn mistakes_are_located() {
        let problems = config(&format!(
            "{WEB}    health_check: {{ type: htp, rise: 0 }}\n    on_quorum_loss: sorry_server\n    reals:\n      \
             - {{ address: 198.18.2.2, health_check: {{ timeout: 3s, udp: {{ send: x }} }} }}\n      \
             - {{ address: 198.18.2.3, health_check: {{ type: exec }} }}\n"
        ))
        .unwrap_err();
        assert_eq!(
            problems,
            [
                "7:27: services[0].health_check.type: unknown check type `htp`, expected one of `none`, `tcp`, `http`, `https`, `udp`, `dns`, `exec`",
                "7:38: services[0].health_check.rise: 0 is out of range 1..=1000",
                "10:57: services[0].reals[0].health_check.timeout: timeout 3s is longer than the interval 2s: a probe must end before the next starts",
                "10:66: services[0].reals[0].health_check.udp: `udp` settings do not apply to `type: none`",
                "11:46: services[0].reals[1].health_check: `type: exec` needs `exec: { command: [...] }`",
            ]
        );
    }

    #[test]
    fn a_sorry_policy_needs_a_sorry_server_that_is_not_a_real() {
        let problems = config(&format!(
            "{WEB}    on_quorum_loss: sorry_server\n  - name: api\n    vip: 198.18.1.11\n    port: 80\n    \
             protocol: tcp\n    sorry_server: {{ address: 198.18.2.2 }}\n    reals: [{{ address: 198.18.2.2 }}]\n"
        ))
        .unwrap_err();
        assert_eq!(
            problems,
            [
                "7:21: services[0].on_quorum_loss: `on_quorum_loss: sorry_server` needs a `sorry_server`",
                "12:19: services[1].sorry_server: the sorry server 198.18.2.2:80 is also reals[0]: it would take traffic only when it is itself down",
            ]
        );
    }

    #[test]
    fn durations_and_status_ranges() {
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("0.0001s"), None);
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(3)), "3s");
        assert_eq!(
            StatusRange::parse("200"),
            Some(StatusRange {
                first: 200,
                last: 200
            })
        );
        assert_eq!(StatusRange::parse("300-200"), None);
        assert_eq!(StatusRange::parse("99"), None);
    }
}
