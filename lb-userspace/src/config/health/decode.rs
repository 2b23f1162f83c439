//! Reading a `health_check` mapping.

use std::time::Duration;

use saphyr::Scalar;

use super::check::*;
use crate::config::problem::{ConfigError, EMPTY_FILE};
use crate::config::reader::{Field, Fields, Positions, Reader, load_document, scalar};

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
    pub(crate) fn decode_health_check(
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
        let probe = self.decode_probe(&fields, kind?, &base.probe);
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

    /// The probe of `kind`, its settings (`http:`, `udp:`...) over those
    /// of `base` when it is of the same kind.
    fn decode_probe(&mut self, fields: &Fields<'_, '_>, kind: &str, base: &Probe) -> Option<Probe> {
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
        match kind {
            "none" => Some(Probe::None),
            "tcp" => Some(Probe::Tcp),
            "http" | "https" => {
                let base = match base {
                    Probe::Http(http) | Probe::Https(http) => http.clone(),
                    _ => HttpCheck::default(),
                };
                let http = self.settings(settings, base, Self::decode_http)?;
                Some(if kind == "http" {
                    Probe::Http(http)
                } else {
                    Probe::Https(http)
                })
            }
            "udp" => {
                let base = match base {
                    Probe::Udp(udp) => udp.clone(),
                    _ => UdpCheck::default(),
                };
                self.settings(settings, base, Self::decode_udp)
                    .map(Probe::Udp)
            }
            "dns" => {
                let base = match base {
                    Probe::Dns(dns) => dns.clone(),
                    // keepalived's DNS_CHECK asks for the root's SOA.
                    _ => DnsCheck {
                        name: ".".to_owned(),
                        record_type: DnsRecordType::Soa,
                    },
                };
                self.settings(settings, base, Self::decode_dns)
                    .map(Probe::Dns)
            }
            _ => match (&settings, base) {
                (Some(f), _) => self.decode_exec(f).map(Probe::Exec),
                (None, Probe::Exec(base)) => Some(Probe::Exec(base.clone())),
                (None, _) => {
                    self.report_on(
                        &fields.mapping,
                        "`type: exec` needs `exec: { command: [...] }`",
                    );
                    None
                }
            },
        }
    }

    /// A kind's settings read over `base`, or `base` if there are none.
    fn settings<T>(
        &mut self,
        settings: Option<Field<'_, '_>>,
        base: T,
        decode: impl FnOnce(&mut Self, &Field<'_, '_>, &T) -> Option<T>,
    ) -> Option<T> {
        match settings {
            Some(field) => decode(self, &field, &base),
            None => Some(base),
        }
    }

    fn probe_kind(&mut self, field: &Field<'_, '_>) -> Option<&'static str> {
        self.choice(field, "check type", PROBE_KINDS, |kind| kind, str::eq)
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
            let all = DnsRecordType::ALL;
            r.choice(
                f,
                "record type",
                all,
                DnsRecordType::name,
                str::eq_ignore_ascii_case,
            )
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
    pub(crate) fn command(&mut self, field: &Field<'_, '_>) -> Option<Vec<String>> {
        let items = self.list(field, |r, item| r.text(item, "a string").map(str::to_owned))?;
        let command: Vec<String> = items.into_iter().collect::<Option<_>>()?;
        if command.is_empty() || command[0].is_empty() {
            self.report_on(field, "expected a program and its arguments, like [\"/usr/local/bin/check\", \"{address}\"]");
            return None;
        }
        Some(command)
    }
}

/// Reads a `health_check` mapping on its own (the control API's
/// `set_health_check`), fields left out taken from `base`.
pub fn parse_health_check(text: &str, base: &HealthCheck) -> Result<HealthCheck, ConfigError> {
    let mut reader = Reader::new("health_check", Positions::Record);
    let check = match load_document(text, EMPTY_FILE) {
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
