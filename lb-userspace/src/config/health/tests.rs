use std::time::Duration;

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
