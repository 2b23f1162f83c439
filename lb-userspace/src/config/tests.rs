use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::keyword::Keyword;
use super::*;

/// The host these tests pretend to run on has eth0 and eth1.
fn host(name: &str) -> bool {
    matches!(name, "eth0" | "eth1")
}

fn ok(text: &str) -> Config {
    parse(text, "config.yaml", &host).unwrap_or_else(|e| panic!("unexpected problems:\n{e}"))
}

fn problems(text: &str) -> Vec<Problem> {
    match parse(text, "config.yaml", &host) {
        Ok(config) => panic!("accepted a bad config: {config:?}"),
        Err(e) => e.problems,
    }
}

#[track_caller]
fn assert_problem(problem: &Problem, line: usize, column: usize, path: &str, reason: &str) {
    let at = (
        problem.file.as_str(),
        problem.line,
        problem.column,
        problem.path.as_str(),
    );
    assert_eq!(at, ("config.yaml", line, column, path), "{problem}");
    assert!(
        problem.reason.contains(reason),
        "`{problem}` does not say `{reason}`"
    );
}

/// Asserts that `text` has exactly one problem, at `line:column` on
/// `path`, and that its reason contains `reason`.
#[track_caller]
fn assert_one(text: &str, line: usize, column: usize, path: &str, reason: &str) {
    let problems = problems(text);
    let listing = ConfigError {
        problems: problems.clone(),
    };
    assert_eq!(problems.len(), 1, "expected one problem, got:\n{listing}");
    assert_problem(&problems[0], line, column, path, reason);
}

/// A config with one interface and `body` as its `services:` list; `body`
/// starts on line 3.
fn with_services(body: &str) -> String {
    format!("interfaces: [{{ name: eth0 }}]\nservices:\n{body}")
}

/// Lines 3-6 of a service `web` (columns: `name` value 11, `vip` value
/// 10, `port` value 11, `protocol` value 15); line 7 is free.
const WEB: &str = "  - name: web
    vip: 198.18.1.10
    port: 80
    protocol: tcp
";

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(text: &str) -> IpAddr {
    IpAddr::V6(text.parse::<Ipv6Addr>().unwrap())
}

fn real(address: IpAddr, port: u16, weight: u32) -> RealConfig {
    RealConfig {
        address,
        port,
        weight,
        forwarding: None,
        upper_threshold: 0,
        lower_threshold: 0,
        health_check: None,
    }
}

// --- Good configurations.

#[test]
fn minimal_config_takes_the_defaults() {
    let text = "\
interfaces:
  - name: eth0
services:
  - name: web
    vip: 198.18.1.10
    port: 80
    protocol: tcp
    reals:
      - { address: 198.18.2.11 }
      - { address: 198.18.2.12, port: 80, weight: 3 }
";
    let expected = Config {
        interfaces: vec![InterfaceConfig {
            name: "eth0".into(),
            xdp_mode: XdpMode::Auto,
        }],
        pin_path: PathBuf::from("/sys/fs/bpf/lb"),
        control: ControlConfig::default(),
        dataplane: DataplaneConfig {
            maglev_table_size: 65_537,
            flow_table_entries: 1 << 20,
            max_services: 127,
            max_reals: 16_383,
        },
        tunnel: TunnelConfig {
            source_v4: None,
            source_v6: None,
        },
        timeouts: TimeoutsConfig {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        },
        icmp_echo_reply: true,
        expire_nodest_conn: false,
        flood_guard: FloodGuardConfig {
            new_flows_per_second: 100_000,
        },
        metrics: MetricsConfig { listen: None },
        services: vec![ServiceConfig {
            name: "web".into(),
            vip: v4(198, 18, 1, 10),
            port: 80,
            protocol: Protocol::Tcp,
            scheduler: Scheduler::Mh,
            scheduler_flags: vec![SchedulerFlag::MhPort],
            persistence: None,
            forwarding: Forwarding::Dr,
            health: ServiceHealth::unchecked(),
            reals: vec![
                real(v4(198, 18, 2, 11), 80, 1),
                real(v4(198, 18, 2, 12), 80, 3),
            ],
        }],
    };
    assert_eq!(ok(text), expected);
}

#[test]
fn services_and_reals_may_be_left_out() {
    let config = ok("interfaces: [{ name: eth0 }]\n");
    assert!(config.services.is_empty());
    let config = ok(&with_services(WEB));
    assert!(config.services[0].reals.is_empty());
}

fn dual_stack() -> Config {
    Config {
        interfaces: vec![
            InterfaceConfig {
                name: "eth0".into(),
                xdp_mode: XdpMode::Native,
            },
            InterfaceConfig {
                name: "eth1".into(),
                xdp_mode: XdpMode::Skb,
            },
        ],
        pin_path: PathBuf::from("/sys/fs/bpf/lb-dual"),
        control: ControlConfig {
            socket: PathBuf::from("/run/lb-dual.sock"),
        },
        dataplane: DataplaneConfig {
            maglev_table_size: 251,
            flow_table_entries: 65_536,
            max_services: 4_000,
            max_reals: 200_000,
        },
        tunnel: TunnelConfig {
            source_v4: Some(Ipv4Addr::new(198, 18, 0, 1)),
            source_v6: Some("fd00:18::1".parse().unwrap()),
        },
        timeouts: TimeoutsConfig {
            tcp: 3600,
            tcp_fin: 60,
            udp: 30,
        },
        icmp_echo_reply: false,
        expire_nodest_conn: true,
        flood_guard: FloodGuardConfig {
            new_flows_per_second: 0,
        },
        metrics: MetricsConfig::default(),
        services: vec![
            ServiceConfig {
                name: "web-v4".into(),
                vip: v4(198, 18, 1, 10),
                port: 443,
                protocol: Protocol::Tcp,
                scheduler: Scheduler::Mh,
                scheduler_flags: vec![SchedulerFlag::MhPort],
                persistence: None,
                forwarding: Forwarding::Dr,
                health: ServiceHealth::unchecked(),
                reals: vec![
                    real(v4(198, 18, 2, 11), 443, 2),
                    real(v4(198, 18, 2, 12), 443, 1),
                ],
            },
            ServiceConfig {
                name: "web-v6".into(),
                vip: v6("fd00:18:1::10"),
                port: 443,
                protocol: Protocol::Tcp,
                scheduler: Scheduler::Mh,
                scheduler_flags: vec![SchedulerFlag::MhPort],
                persistence: None,
                forwarding: Forwarding::Dr,
                health: ServiceHealth::unchecked(),
                reals: vec![
                    real(v6("fd00:18:2::11"), 443, 2),
                    real(v6("fd00:18:2::12"), 443, 0),
                ],
            },
            ServiceConfig {
                name: "dns-v6.all-ports".into(),
                vip: v6("fd00:18:1::10"),
                port: 0,
                protocol: Protocol::Udp,
                scheduler: Scheduler::Sh,
                scheduler_flags: vec![SchedulerFlag::ShFallback, SchedulerFlag::ShPort],
                persistence: None,
                forwarding: Forwarding::Dr,
                health: ServiceHealth::unchecked(),
                reals: vec![
                    real(v6("fd00:18:2::21"), 0, 1),
                    real(v6("fd00:18:2::22"), 0, 65_535),
                ],
            },
            ServiceConfig {
                name: "api-tun".into(),
                vip: v4(198, 18, 1, 20),
                port: 8443,
                protocol: Protocol::Tcp,
                scheduler: Scheduler::Mh,
                scheduler_flags: vec![SchedulerFlag::MhPort],
                persistence: None,
                forwarding: Forwarding::Tun,
                health: ServiceHealth::unchecked(),
                reals: vec![
                    real(v4(198, 18, 3, 11), 8443, 1),
                    real(v6("fd00:18:3::12"), 8443, 3),
                ],
            },
            ServiceConfig {
                name: "app-nat".into(),
                vip: v6("fd00:18:1::30"),
                port: 80,
                protocol: Protocol::Tcp,
                scheduler: Scheduler::Wlc,
                scheduler_flags: vec![],
                persistence: Some(PersistenceConfig {
                    timeout: 600,
                    prefix: 64,
                }),
                forwarding: Forwarding::Nat,
                health: ServiceHealth::unchecked(),
                reals: vec![
                    RealConfig {
                        upper_threshold: 100,
                        lower_threshold: 50,
                        ..real(v6("fd00:18:4::11"), 8080, 1)
                    },
                    real(v6("fd00:18:4::12"), 80, 1),
                    RealConfig {
                        forwarding: Some(Forwarding::Dr),
                        upper_threshold: 10,
                        ..real(v6("fd00:18:4::13"), 80, 1)
                    },
                ],
            },
        ],
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/config")
        .join(name)
}

#[test]
fn dual_stack_example_loads() {
    let config = load(&fixture("dual-stack.yaml"), &host).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config, dual_stack());
    assert_eq!(config.services[2].protocol.number(), 17);
    assert_eq!(config.services[0].protocol.number(), 6);
}

#[test]
fn windows_line_endings_read_the_same() {
    let text = std::fs::read_to_string(fixture("dual-stack.yaml")).unwrap();
    assert_eq!(ok(&text.replace('\n', "\r\n")), dual_stack());
}

#[test]
fn printed_config_reads_back_the_same() {
    let config = dual_stack();
    let text = serde_yaml::to_string(&config).unwrap();
    for line in [
        "xdp_mode: native",
        "protocol: udp",
        "scheduler: mh",
        "forwarding: dr",
        "forwarding: tun",
        "forwarding: nat",
        "source_v4: 198.18.0.1",
        "source_v6: fd00:18::1",
        "tcp_fin: 60",
        "icmp_echo_reply: false",
        "expire_nodest_conn: true",
        "new_flows_per_second: 0",
        "scheduler: wlc",
        "- sh-fallback",
        "timeout: 600",
        "upper_threshold: 100",
    ] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }
    assert_eq!(ok(&text), config);
    // Tunnel sources left out are left out of the text too.
    let defaults = ok("interfaces: [{ name: eth0 }]\n");
    let text = serde_yaml::to_string(&defaults).unwrap();
    assert!(text.contains("tunnel: {}"), "{text}");
    assert_eq!(ok(&text), defaults);
}

#[test]
fn scalars_follow_the_yaml_core_schema() {
    // A string field takes the scalar as written, a number field any core integer.
    let config = ok(&with_services(
        "  - { name: 2024, vip: 198.18.1.10, port: 0x50, protocol: tcp }\n",
    ));
    assert_eq!(config.services[0].name, "2024");
    assert_eq!(config.services[0].port, 80);
}

#[test]
fn keywords_round_trip() {
    fn check<T: Keyword + Serialize + fmt::Display>() {
        for value in T::ALL {
            let yaml = serde_yaml::to_string(value).unwrap();
            assert_eq!(yaml.trim(), value.keyword());
            assert_eq!(value.to_string(), value.keyword());
        }
    }
    check::<XdpMode>();
    check::<Protocol>();
    check::<Scheduler>();
    check::<SchedulerFlag>();
    check::<Forwarding>();
}

// --- How problems are shown.

#[test]
fn problems_display_as_file_line_column_path_reason() {
    let text = with_services(&format!(
        "{WEB}    reals: [{{ address: 198.18.2.11, weight: 70000 }}]\n"
    ));
    let error = parse(&text, "config.yaml", &host).unwrap_err();
    assert_eq!(
        error.to_string(),
        "config.yaml:7:45: services[0].reals[0].weight: 70000 is out of range 0..=65535"
    );
    let error = parse("interfaces: [{ name: eth0 }\n", "lb.yaml", &host).unwrap_err();
    assert!(
        error.to_string().starts_with("lb.yaml:2:1: invalid YAML: "),
        "{error}"
    );
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let text = "\
interfaces:
  - { name: eth9 }
pin_path: relative/dir
tunnel: { source_v4: fd00:18::1 }
timeouts: { tcp: 0, udp: 300 }
services:
  - name: web
    vip: 198.18.1.10
    port: 80
    protocol: tcp
    reals:
      - { address: 198.18.2.11, wieght: 2 }
      - { address: 198.18.2.12, weight: 70000 }
      - { address: fd00::12 }
      - { address: 198.18.2.13, port: 8080 }
  - { name: web, vip: 198.18.1.10, port: 80, protocol: udp, forwarding: nat }
  - name: dns
    vip: 198.18.1.53
    port: 53
    protocol: sctp
";
    let error = parse(text, "config.yaml", &host).unwrap_err();
    let lines: Vec<String> = error.to_string().lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            "config.yaml:2:13: interfaces[0].name: no interface named `eth9` on this host",
            "config.yaml:3:11: pin_path: `relative/dir` must be an absolute path",
            "config.yaml:4:22: tunnel.source_v4: fd00:18::1 is an IPv6 address, this field takes an IPv4 address (IPv6 tunnels take theirs from `tunnel.source_v6`)",
            "config.yaml:5:18: timeouts.tcp: 0 is out of range 1..=2147483",
            "config.yaml:12:33: services[0].reals[0].wieght: unknown field `wieght`, expected one of `address`, `port`, `weight`, `forwarding`, `upper_threshold`, `lower_threshold`, `health_check`",
            "config.yaml:13:41: services[0].reals[1].weight: 70000 is out of range 0..=65535",
            "config.yaml:14:20: services[0].reals[2].address: real fd00::12 is IPv6 but the VIP 198.18.1.10 is IPv4; DR forwarding needs the same address family (only `tun` can mix them)",
            "config.yaml:15:39: services[0].reals[3].port: real port 8080 differs from the service port 80, and DR forwarding cannot rewrite ports; omit `port` or set it to 80 (only `nat` can change ports)",
            "config.yaml:16:13: services[1].name: duplicate service name `web`, already used by services[0]",
            "config.yaml:20:15: services[2].protocol: unknown protocol `sctp`, expected one of `tcp`, `udp`",
        ]
    );
}

#[test]
fn unreadable_file_is_one_problem_without_a_line() {
    let path = fixture("does-not-exist.yaml");
    let error = load(&path, &host).unwrap_err();
    assert_eq!(error.problems.len(), 1);
    assert_eq!(error.problems[0].line, 0);
    let shown = error.to_string();
    assert!(
        shown.starts_with(&format!(
            "{}: cannot read the configuration: ",
            path.display()
        )),
        "{shown}"
    );
}

// --- YAML syntax and document shape.

#[test]
fn syntax_error() {
    assert_one(
        "interfaces:\n  - name: eth0\nservices: [ {name: web\n",
        4,
        1,
        "",
        "invalid YAML: while parsing a flow mapping",
    );
    assert_one(
        "interfaces:\n  - name: eth0\n xdp_mode: auto\n",
        3,
        2,
        "",
        "invalid YAML",
    );
}

#[test]
fn duplicate_key() {
    assert_one(
        "interfaces: [{ name: eth0 }]\ninterfaces: []\n",
        2,
        1,
        "",
        "duplicated key in mapping",
    );
    // Differently quoted, the YAML loader sees two keys; the schema does not.
    assert_one(
        "interfaces: [{ name: eth0, \"name\": eth1 }]\n",
        1,
        28,
        "interfaces[0].name",
        "duplicate field `name`",
    );
}

#[test]
fn empty_or_several_documents() {
    assert_one("", 1, 1, "", "the file is empty");
    assert_one("# nothing yet\n", 1, 1, "", "the file is empty");
    assert_one("---\n", 2, 1, "", "the file is empty");
    assert_one(
        "interfaces: [{ name: eth0 }]\n---\ninterfaces: [{ name: eth1 }]\n",
        3,
        1,
        "",
        "expected one YAML document, found 2",
    );
    assert_one("- eth0\n", 1, 1, "", "expected a mapping, found a list");
}

// --- Unknown fields, wrong types, missing fields.

#[test]
fn unknown_field_in_a_real() {
    let text = with_services(&format!(
        "{WEB}    reals: [{{ address: 198.18.2.11, wieght: 2 }}]\n"
    ));
    assert_one(
        &text,
        7,
        37,
        "services[0].reals[0].wieght",
        "unknown field `wieght`, expected one of `address`, `port`, `weight`",
    );
}

#[test]
fn unknown_field_elsewhere() {
    assert_one(
        "interfaces: [{ name: eth0 }]\nservice: []\n",
        2,
        1,
        "service",
        "unknown field `service`, expected one of `interfaces`, `pin_path`, `control`, \
             `dataplane`, `tunnel`, `timeouts`, `icmp_echo_reply`, `expire_nodest_conn`, \
             `flood_guard`, `metrics`, `services`",
    );
    assert_one(
        "interfaces: [{ name: eth0, mode: skb }]\n",
        1,
        28,
        "interfaces[0].mode",
        "unknown field `mode`, expected one of `name`, `xdp_mode`",
    );
    assert_one(
        "interfaces: [{ name: eth0 }]\ndataplane:\n  maglev_size: 7\n",
        3,
        3,
        "dataplane.maglev_size",
        "unknown field `maglev_size`",
    );
    assert_one(
        &with_services(&format!("{WEB}    weight: 1\n")),
        7,
        5,
        "services[0].weight",
        "unknown field `weight`",
    );
}

#[test]
fn wrong_types() {
    assert_one(
        "interfaces: eth0\n",
        1,
        13,
        "interfaces",
        "expected a list, found string `eth0`",
    );
    assert_one(
        "interfaces: [{ name: eth0 }]\nservices: { name: web }\n",
        2,
        11,
        "services",
        "expected a list, found a mapping",
    );
    assert_one(
        &with_services("  - { name: web, vip: 198.18.1.10, port: \"80\", protocol: tcp }\n"),
        3,
        42,
        "services[0].port",
        "expected an integer in 0..=65535, found string `80`",
    );
    assert_one(
        &with_services("  - { name: web, vip: 198.18.1.10, port: http, protocol: tcp }\n"),
        3,
        42,
        "services[0].port",
        "expected an integer in 0..=65535, found string `http`",
    );
    assert_one(
        &with_services(&format!("{WEB}    reals: [198.18.2.11]\n")),
        7,
        13,
        "services[0].reals[0]",
        "expected a mapping, found string `198.18.2.11`",
    );
    assert_one(
        &with_services(&format!(
            "{WEB}    reals: [{{ address: 198.18.2.11, weight: 1.5 }}]\n"
        )),
        7,
        45,
        "services[0].reals[0].weight",
        "found number `1.5`",
    );
    assert_one(
        &with_services("  - { name: [web], vip: 198.18.1.10, port: 80, protocol: tcp }\n"),
        3,
        13,
        "services[0].name",
        "expected a service name, found a list",
    );
    assert_one(
        &with_services("  - { name: web, vip: ~, port: 80, protocol: tcp }\n"),
        3,
        23,
        "services[0].vip",
        "expected an IP address, found null",
    );
    assert_one(
        &with_services("  - { name: web, vip: 198.18.1.10, port: !port 80, protocol: tcp }\n"),
        3,
        42,
        "services[0].port",
        "found `80` tagged `!port`",
    );
}

#[test]
fn missing_required_fields() {
    // Reported where the mapping that lacks them starts.
    let service = |body: &str| problems(&with_services(body));
    let found = service("  - { port: 80 }\n");
    assert_eq!(found.len(), 3, "{found:?}");
    assert_problem(
        &found[0],
        3,
        5,
        "services[0].name",
        "missing required field `name`",
    );
    assert_problem(
        &found[1],
        3,
        5,
        "services[0].vip",
        "missing required field `vip`",
    );
    assert_problem(
        &found[2],
        3,
        5,
        "services[0].protocol",
        "missing required field `protocol`",
    );
    assert_one(
        &with_services("  - name: web\n    vip: 198.18.1.10\n    protocol: tcp\n"),
        3,
        5,
        "services[0].port",
        "missing required field `port`",
    );
    assert_one(
        &with_services(&format!("{WEB}    reals:\n      - port: 80\n")),
        8,
        9,
        "services[0].reals[0].address",
        "missing required field `address`",
    );
    assert_one(
        "pin_path: /sys/fs/bpf/lb\n",
        1,
        1,
        "interfaces",
        "missing required field `interfaces`",
    );
    assert_one(
        "interfaces:\n  - xdp_mode: skb\n",
        2,
        5,
        "interfaces[0].name",
        "missing required field `name`",
    );
}

#[test]
fn empty_interface_list() {
    assert_one(
        "interfaces: []\n",
        1,
        13,
        "interfaces",
        "at least one interface is required",
    );
}

// --- Values.

#[test]
fn bad_addresses() {
    let vip = |vip: &str| {
        with_services(&format!(
            "  - {{ name: web, vip: {vip}, port: 80, protocol: tcp }}\n"
        ))
    };
    assert_one(
        &vip("198.18.1.300"),
        3,
        23,
        "services[0].vip",
        "`198.18.1.300` is not a valid IP address",
    );
    assert_one(
        &vip("\"not-an-ip\""),
        3,
        23,
        "services[0].vip",
        "`not-an-ip` is not a valid IP address",
    );
    assert_one(
        &vip("0.0.0.0"),
        3,
        23,
        "services[0].vip",
        "0.0.0.0 is not a unicast address",
    );
    assert_one(
        &vip("ff02::1"),
        3,
        23,
        "services[0].vip",
        "ff02::1 is not a unicast address",
    );
    assert_one(
        &with_services(&format!("{WEB}    reals:\n      - address: 198.18.2.256\n")),
        8,
        18,
        "services[0].reals[0].address",
        "`198.18.2.256` is not a valid IP address",
    );
}

#[test]
fn ports_out_of_range() {
    let port = |port: &str| {
        with_services(&format!(
            "  - {{ name: web, vip: 198.18.1.10, port: {port}, protocol: tcp }}\n"
        ))
    };
    assert_one(
        &port("70000"),
        3,
        42,
        "services[0].port",
        "70000 is out of range 0..=65535",
    );
    assert_one(
        &port("-1"),
        3,
        42,
        "services[0].port",
        "-1 is out of range 0..=65535",
    );
    assert_one(
        &port("99999999999999999999"),
        3,
        42,
        "services[0].port",
        "99999999999999999999 is out of range 0..=65535",
    );
    assert_one(
        &with_services(&format!(
            "{WEB}    reals:\n      - address: 198.18.2.11\n        port: 70000\n"
        )),
        9,
        15,
        "services[0].reals[0].port",
        "70000 is out of range 0..=65535",
    );
}

#[test]
fn weights_out_of_range() {
    let weight = |weight: &str| {
        with_services(&format!(
            "{WEB}    reals:\n      - address: 198.18.2.11\n        weight: {weight}\n"
        ))
    };
    assert_one(
        &weight("70000"),
        9,
        17,
        "services[0].reals[0].weight",
        "70000 is out of range 0..=65535",
    );
    assert_one(
        &weight("-1"),
        9,
        17,
        "services[0].reals[0].weight",
        "-1 is out of range 0..=65535",
    );
}

#[test]
fn unknown_keywords() {
    assert_one(
        &with_services("  - { name: web, vip: 198.18.1.10, port: 80, protocol: sctp }\n"),
        3,
        56,
        "services[0].protocol",
        "unknown protocol `sctp`, expected one of `tcp`, `udp`",
    );
    assert_one(
        &with_services(&format!("{WEB}    scheduler: lblc\n")),
        7,
        16,
        "services[0].scheduler",
        "unknown scheduler `lblc`, expected one of `mh`, `rr`, `wrr`, `sh`, `dh`, `lc`, \
             `wlc`, `sed`, `nq`",
    );
    assert_one(
        &with_services(&format!(
            "{WEB}    scheduler: rr\n    scheduler_flags: [mh-port]\n"
        )),
        8,
        23,
        "services[0].scheduler_flags[0]",
        "`mh-port` is a flag of the `mh` scheduler; for `rr` write `flag-2`",
    );
    assert_one(
        &with_services(&format!(
            "{WEB}    persistence: {{ timeout: 60, prefix: 33 }}\n"
        )),
        7,
        41,
        "services[0].persistence.prefix",
        "33 is out of range 1..=32",
    );
    assert_one(
        &with_services(&format!("{WEB}    forwarding: fullnat\n")),
        7,
        17,
        "services[0].forwarding",
        "unknown forwarding `fullnat`, expected one of `dr`, `tun`, `nat`",
    );
    assert_one(
        "interfaces: [{ name: eth0, xdp_mode: hw }]\n",
        1,
        38,
        "interfaces[0].xdp_mode",
        "unknown xdp_mode `hw`, expected one of `auto`, `native`, `skb`",
    );
}

#[test]
fn invalid_service_name() {
    let name = |name: &str| {
        with_services(&format!(
            "  - {{ name: {name}, vip: 198.18.1.10, port: 80, protocol: tcp }}\n"
        ))
    };
    assert_one(
        &name("\"web server\""),
        3,
        13,
        "services[0].name",
        "`web server` is not a valid service name",
    );
    assert_one(
        &name(&"a".repeat(65)),
        3,
        13,
        "services[0].name",
        "is not a valid service name",
    );
    assert_one(
        &name("\"\""),
        3,
        13,
        "services[0].name",
        "`` is not a valid service name",
    );
    ok(&name(&"a".repeat(64)));
}

// --- Rules about the whole.

#[test]
fn duplicate_service() {
    let text = with_services(&format!(
        "{WEB}  - name: web-again\n    vip: 198.18.1.10\n    port: 80\n    protocol: tcp\n"
    ));
    assert_one(
        &text,
        7,
        5,
        "services[1]",
        "duplicate service 198.18.1.10:80/tcp, already defined by services[0]",
    );
    // The same address and port over another protocol is another service.
    ok(&with_services(&format!(
        "{WEB}  - {{ name: web-udp, vip: 198.18.1.10, port: 80, protocol: udp }}\n"
    )));
}

#[test]
fn duplicate_service_name() {
    let text = with_services(&format!(
        "{WEB}  - {{ name: web, vip: 198.18.1.11, port: 80, protocol: tcp }}\n"
    ));
    assert_one(
        &text,
        7,
        13,
        "services[1].name",
        "duplicate service name `web`, already used by services[0]",
    );
}

#[test]
fn duplicate_real() {
    // The first real's port defaults to the service's, 80: the same real.
    let text = with_services(&format!(
        "{WEB}    reals:
      - address: 198.18.2.11
      - {{ address: 198.18.2.12 }}
      - {{ address: 198.18.2.11, port: 80 }}
"
    ));
    assert_one(
        &text,
        10,
        9,
        "services[0].reals[2]",
        "duplicate real 198.18.2.11:80, already listed as reals[0]",
    );
    // Another port is another real (NAT can send to several ports of a host).
    let text = with_services(&format!(
        "{WEB}    forwarding: nat
    reals:
      - address: 198.18.2.11
      - {{ address: 198.18.2.11, port: 8080 }}
"
    ));
    assert_eq!(ok(&text).services[0].reals.len(), 2);
}

#[test]
fn real_in_another_family_than_the_vip() {
    assert_one(
        &with_services(&format!("{WEB}    reals: [{{ address: fd00::11 }}]\n")),
        7,
        24,
        "services[0].reals[0].address",
        "real fd00::11 is IPv6 but the VIP 198.18.1.10 is IPv4; DR forwarding needs the same address family",
    );
    assert_one(
        &with_services(
            "  - name: web6
    vip: fd00::10
    port: 80
    protocol: tcp
    reals:
      - address: 198.18.2.11
",
        ),
        8,
        18,
        "services[0].reals[0].address",
        "real 198.18.2.11 is IPv4 but the VIP fd00::10 is IPv6",
    );
}

#[test]
fn nat_real_in_another_family_than_the_vip() {
    assert_one(
        &with_services(&format!(
            "{WEB}    forwarding: nat\n    reals: [{{ address: fd00::11 }}]\n"
        )),
        8,
        24,
        "services[0].reals[0].address",
        "real fd00::11 is IPv6 but the VIP 198.18.1.10 is IPv4; \
             NAT forwarding needs the same address family (only `tun` can mix them)",
    );
}

#[test]
fn tun_reals_may_be_of_either_family() {
    let config = ok(&with_services(&format!(
        "{WEB}    forwarding: tun
    reals:
      - {{ address: 198.18.2.11 }}
      - {{ address: fd00::12, port: 80 }}
  - name: web6
    vip: fd00::10
    port: 443
    protocol: tcp
    forwarding: tun
    reals:
      - {{ address: 198.18.2.11 }}
      - {{ address: fd00::12 }}
"
    )));
    let reals = |i: usize| config.services[i].reals.clone();
    assert_eq!(
        reals(0),
        [real(v4(198, 18, 2, 11), 80, 1), real(v6("fd00::12"), 80, 1)]
    );
    assert_eq!(
        reals(1),
        [
            real(v4(198, 18, 2, 11), 443, 1),
            real(v6("fd00::12"), 443, 1)
        ]
    );
    assert_eq!(config.services[1].forwarding, Forwarding::Tun);
}

#[test]
fn dr_and_tun_reals_take_the_service_port() {
    for (method, name) in [("dr", "DR"), ("tun", "TUN")] {
        // Left out or the same port is fine; another one, 0 included, is not.
        let text = with_services(&format!(
            "{WEB}    forwarding: {method}
    reals:
      - {{ address: 198.18.2.11 }}
      - {{ address: 198.18.2.12, port: 80 }}
      - {{ address: 198.18.2.13, port: 8080 }}
      - {{ address: 198.18.2.14, port: 0 }}
"
        ));
        let found = problems(&text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_problem(
            &found[0],
            11,
            39,
            "services[0].reals[2].port",
            &format!(
                "real port 8080 differs from the service port 80, and {name} forwarding \
                     cannot rewrite ports; omit `port` or set it to 80 (only `nat` can change ports)"
            ),
        );
        assert_problem(
            &found[1],
            12,
            39,
            "services[0].reals[3].port",
            "real port 0 differs from the service port 80",
        );
        let last = text.rfind("      - { address: 198.18.2.13").unwrap();
        let config = ok(&text[..last]);
        assert!(config.services[0].reals.iter().all(|real| real.port == 80));
    }
}

#[test]
fn reals_of_a_port_0_service_keep_the_packets_port() {
    for (method, name) in [("dr", "DR"), ("tun", "TUN"), ("nat", "NAT")] {
        let text = with_services(&format!(
            "  - name: all
    vip: 198.18.1.10
    port: 0
    protocol: udp
    forwarding: {method}
    reals:
      - {{ address: 198.18.2.11 }}
      - {{ address: 198.18.2.12, port: 0 }}
      - {{ address: 198.18.2.13, port: 53 }}
"
        ));
        assert_one(
            &text,
            11,
            39,
            "services[0].reals[2].port",
            &format!(
                "real port 53 on a port-0 service: the service takes every port and \
                     {name} forwarding keeps each packet's port; omit `port` or set it to 0"
            ),
        );
        let last = text.rfind("      - { address: 198.18.2.13").unwrap();
        let config = ok(&text[..last]);
        assert!(config.services[0].reals.iter().all(|real| real.port == 0));
    }
}

#[test]
fn nat_reals_may_use_another_port() {
    let text = with_services(&format!(
        "{WEB}    forwarding: nat
    reals:
      - {{ address: 198.18.2.11, port: 8080 }}
      - {{ address: 198.18.2.12 }}
      - {{ address: 198.18.2.13, port: 65535 }}
"
    ));
    let config = ok(&text);
    assert_eq!(config.services[0].forwarding, Forwarding::Nat);
    assert_eq!(
        config.services[0].reals,
        [
            real(v4(198, 18, 2, 11), 8080, 1),
            real(v4(198, 18, 2, 12), 80, 1),
            real(v4(198, 18, 2, 13), 65_535, 1),
        ]
    );
    // Except to port 0, which is no port to send to.
    assert_one(
        &with_services(&format!(
            "{WEB}    forwarding: nat\n    reals:\n      - {{ address: 198.18.2.11, port: 0 }}\n"
        )),
        9,
        39,
        "services[0].reals[0].port",
        "real port 0 on a NAT service of port 80: NAT rewrites the destination port \
             to the real's; omit `port` to keep 80",
    );
}

/// The interface line, then `extra` from line 2.
fn top(extra: &str) -> String {
    format!("interfaces: [{{ name: eth0 }}]\n{extra}")
}

#[test]
fn tunnel_sources() {
    assert_eq!(ok(&top("")).tunnel, TunnelConfig::default());
    let tunnel = ok(&top("tunnel:\n  source_v4: 198.18.0.1\n")).tunnel;
    assert_eq!(
        tunnel,
        TunnelConfig {
            source_v4: Some(Ipv4Addr::new(198, 18, 0, 1)),
            source_v6: None,
        }
    );
    let tunnel = ok(&top("tunnel: { source_v6: \"fd00:18::1\" }\n")).tunnel;
    assert_eq!(tunnel.source_v4, None);
    assert_eq!(tunnel.source_v6, Some("fd00:18::1".parse().unwrap()));
    assert_eq!(ok(&top("tunnel: {}\n")).tunnel, TunnelConfig::default());
}

#[test]
fn tunnel_source_of_the_wrong_family() {
    assert_one(
        &top("tunnel:\n  source_v4: fd00:18::1\n"),
        3,
        14,
        "tunnel.source_v4",
        "fd00:18::1 is an IPv6 address, this field takes an IPv4 address \
             (IPv6 tunnels take theirs from `tunnel.source_v6`)",
    );
    assert_one(
        &top("tunnel:\n  source_v6: 198.18.0.1\n"),
        3,
        14,
        "tunnel.source_v6",
        "198.18.0.1 is an IPv4 address, this field takes an IPv6 address \
             (IPv4 tunnels take theirs from `tunnel.source_v4`)",
    );
    // Both wrong (swapped): both reported, in order.
    let found = problems(&top(
        "tunnel:\n  source_v4: fd00:18::1\n  source_v6: 198.18.0.1\n",
    ));
    assert_eq!(found.len(), 2, "{found:?}");
    assert_problem(&found[0], 3, 14, "tunnel.source_v4", "is an IPv6 address");
    assert_problem(&found[1], 4, 14, "tunnel.source_v6", "is an IPv4 address");
}

#[test]
fn bad_tunnel_sources() {
    let source = |field: &str, value: &str| top(&format!("tunnel: {{ {field}: {value} }}\n"));
    assert_one(
        &source("source_v4", "224.0.0.1"),
        2,
        22,
        "tunnel.source_v4",
        "224.0.0.1 is not a unicast address",
    );
    assert_one(
        &source("source_v4", "255.255.255.255"),
        2,
        22,
        "tunnel.source_v4",
        "255.255.255.255 is not a unicast address",
    );
    assert_one(
        &source("source_v6", "\"::\""),
        2,
        22,
        "tunnel.source_v6",
        ":: is not a unicast address",
    );
    assert_one(
        &source("source_v6", "\"ff02::2\""),
        2,
        22,
        "tunnel.source_v6",
        "ff02::2 is not a unicast address",
    );
    assert_one(
        &source("source_v4", "198.18.0"),
        2,
        22,
        "tunnel.source_v4",
        "`198.18.0` is not a valid IP address",
    );
    assert_one(
        &source("source_v4", "~"),
        2,
        22,
        "tunnel.source_v4",
        "expected an IP address, found null",
    );
    assert_one(
        &source("source", "198.18.0.1"),
        2,
        11,
        "tunnel.source",
        "unknown field `source`, expected one of `source_v4`, `source_v6`",
    );
    assert_one(
        &top("tunnel: 198.18.0.1\n"),
        2,
        9,
        "tunnel",
        "expected a mapping, found string `198.18.0.1`",
    );
}

#[test]
fn flood_guard() {
    assert_eq!(
        ok(&top("")).flood_guard.new_flows_per_second,
        DEFAULT_FLOOD_GUARD_NEW_FLOWS
    );
    for (text, limit) in [("0", 0), ("250000", 250_000), ("4294967295", u32::MAX)] {
        let config = ok(&top(&format!(
            "flood_guard: {{ new_flows_per_second: {text} }}\n"
        )));
        assert_eq!(config.flood_guard.new_flows_per_second, limit);
    }
    assert_one(
        &top("flood_guard: { new_flows_per_second: -1 }\n"),
        2,
        38,
        "flood_guard.new_flows_per_second",
        "-1 is out of range 0..=4294967295",
    );
    assert_one(
        &top("flood_guard: { rate: 5 }\n"),
        2,
        16,
        "flood_guard.rate",
        "unknown field `rate`, expected one of `new_flows_per_second`",
    );
}

#[test]
fn timeouts() {
    assert_eq!(ok(&top("")).timeouts, TimeoutsConfig::default());
    assert_eq!(
        ok(&top("timeouts: { tcp: 60 }\n")).timeouts,
        TimeoutsConfig {
            tcp: 60,
            tcp_fin: 120,
            udp: 300,
        }
    );
    assert_eq!(
        ok(&top(
            "timeouts:\n  tcp: 2147483\n  tcp_fin: 1\n  udp: 0x10\n"
        ))
        .timeouts,
        TimeoutsConfig {
            tcp: 2_147_483,
            tcp_fin: 1,
            udp: 16,
        }
    );
}

#[test]
fn timeouts_out_of_range_or_not_seconds() {
    let timeouts = |body: &str| top(&format!("timeouts: {{ {body} }}\n"));
    assert_one(
        &timeouts("tcp_fin: 0"),
        2,
        22,
        "timeouts.tcp_fin",
        "0 is out of range 1..=2147483",
    );
    assert_one(
        &timeouts("udp: 2147484"),
        2,
        18,
        "timeouts.udp",
        "2147484 is out of range 1..=2147483",
    );
    assert_one(
        &timeouts("tcp: -5"),
        2,
        18,
        "timeouts.tcp",
        "-5 is out of range 1..=2147483",
    );
    assert_one(
        &timeouts("tcp: 15m"),
        2,
        18,
        "timeouts.tcp",
        "expected a number of seconds in 1..=2147483, found string `15m`",
    );
    assert_one(
        &timeouts("tcp: 1.5"),
        2,
        18,
        "timeouts.tcp",
        "expected a number of seconds in 1..=2147483, found number `1.5`",
    );
    assert_one(
        &timeouts("tcpfin: 60"),
        2,
        13,
        "timeouts.tcpfin",
        "unknown field `tcpfin`, expected one of `tcp`, `tcp_fin`, `udp`",
    );
    assert_one(
        &top("timeouts: 900\n"),
        2,
        11,
        "timeouts",
        "expected a mapping, found integer `900`",
    );
    // Every bad timeout at once.
    let found = problems(&timeouts("tcp: 0, tcp_fin: 0, udp: 0"));
    let at: Vec<_> = found.iter().map(|p| (p.column, p.path.as_str())).collect();
    assert_eq!(
        at,
        [
            (18, "timeouts.tcp"),
            (30, "timeouts.tcp_fin"),
            (38, "timeouts.udp")
        ]
    );
}

#[test]
fn icmp_echo_reply() {
    assert!(ok(&top("")).icmp_echo_reply);
    assert!(ok(&top("icmp_echo_reply: true\n")).icmp_echo_reply);
    assert!(!ok(&top("icmp_echo_reply: false\n")).icmp_echo_reply);
    for (value, found) in [
        ("yes", "string `yes`"),
        ("\"true\"", "string `true`"),
        ("0", "integer `0`"),
        ("~", "null"),
    ] {
        assert_one(
            &top(&format!("icmp_echo_reply: {value}\n")),
            2,
            18,
            "icmp_echo_reply",
            &format!("expected `true` or `false`, found {found}"),
        );
    }
}

#[test]
fn metrics_listen() {
    assert_eq!(ok(&top("")).metrics, MetricsConfig { listen: None });
    assert_eq!(ok(&top("metrics: {}\n")).metrics.listen, None);
    let listen = |yaml: &str| ok(&top(yaml)).metrics.listen;
    let v4: SocketAddr = "127.0.0.1:9105".parse().unwrap();
    assert_eq!(listen("metrics:\n  listen: 127.0.0.1:9105\n"), Some(v4));
    assert_eq!(listen("metrics: { listen: 127.0.0.1:9105 }\n"), Some(v4));
    assert_eq!(
        listen("metrics: { listen: \"[::1]:9105\" }\n"),
        Some("[::1]:9105".parse().unwrap())
    );
    assert_eq!(
        listen("metrics: { listen: \"0.0.0.0:9105\" }\n"),
        Some("0.0.0.0:9105".parse().unwrap())
    );
    // Printed and read back, IPv6 brackets included.
    for text in ["metrics: { listen: \"[fd00::1]:9105\" }\n", "metrics: {}\n"] {
        let config = ok(&top(text));
        let printed = serde_yaml::to_string(&config).unwrap();
        assert_eq!(ok(&printed), config, "{printed}");
    }
}

#[test]
fn bad_metrics_listen() {
    let listen = |value: &str| top(&format!("metrics:\n  listen: {value}\n"));
    assert_one(
        &listen("127.0.0.1"),
        3,
        11,
        "metrics.listen",
        "`127.0.0.1` is not an address and port (IP:PORT with IPv6 in brackets, \
             such as `127.0.0.1:9105` or `\"[::1]:9105\"`)",
    );
    assert_one(
        &listen("9105"),
        3,
        11,
        "metrics.listen",
        "`9105` is not an address and port",
    );
    assert_one(
        &listen("\"::1:9105\""),
        3,
        11,
        "metrics.listen",
        "`::1:9105` is not an address and port",
    );
    // Unquoted, `[::1]:9105` is not even valid YAML; `[::1]` is a list.
    assert_one(
        &listen("[::1]"),
        3,
        11,
        "metrics.listen",
        "expected an address and port such as `127.0.0.1:9105` or `\"[::1]:9105\"`, \
             found a list",
    );
    assert_one(
        &listen("127.0.0.1:0"),
        3,
        11,
        "metrics.listen",
        "port 0 would pick a random port; give the port to scrape (e.g. 127.0.0.1:9105)",
    );
    assert_one(
        &listen("224.0.0.1:9105"),
        3,
        11,
        "metrics.listen",
        "cannot listen on 224.0.0.1: not a unicast address",
    );
    assert_one(&listen("~"), 3, 11, "metrics.listen", "found null");
    assert_one(
        &top("metrics: 127.0.0.1:9105\n"),
        2,
        10,
        "metrics",
        "expected a mapping, found string `127.0.0.1:9105`",
    );
    assert_one(
        &top("metrics: { address: 127.0.0.1:9105 }\n"),
        2,
        12,
        "metrics.address",
        "unknown field `address`, expected one of `listen`",
    );
}

#[test]
fn unknown_interface() {
    assert_one(
        "interfaces:\n  - name: eth0\n  - name: eth9\n",
        3,
        11,
        "interfaces[1].name",
        "no interface named `eth9` on this host",
    );
}

#[test]
fn duplicate_interface() {
    assert_one(
        "interfaces:\n  - name: eth0\n  - { name: eth0, xdp_mode: skb }\n",
        3,
        13,
        "interfaces[1].name",
        "interface `eth0` is already listed as interfaces[0]",
    );
}

#[test]
fn maglev_table_size() {
    let size = |size: &str| {
        format!("interfaces: [{{ name: eth0 }}]\ndataplane:\n  maglev_table_size: {size}\n")
    };
    assert_one(
        &size("65536"),
        3,
        22,
        "dataplane.maglev_table_size",
        "65536 is not a prime number",
    );
    assert_one(
        &size("1"),
        3,
        22,
        "dataplane.maglev_table_size",
        "1 is out of range 2..=2147483647",
    );
    assert_one(
        &size("4294967291"),
        3,
        22,
        "dataplane.maglev_table_size",
        "is out of range 2..=2147483647",
    );
    // A prime the default 127 services cannot afford: 128 rows of it
    // overflow the ring's 32-bit index (reported where `dataplane`'s
    // settings are, since max_services is left at its default).
    assert_one(
        &size("33554467"),
        3,
        3,
        "dataplane.max_services",
        "127 services with maglev_table_size 33554467 need a Maglev ring of 4294971776 slots",
    );
    assert_eq!(ok(&size("2")).dataplane.maglev_table_size, 2);
    assert_eq!(ok(&size("65521")).dataplane.maglev_table_size, 65_521);
}

#[test]
fn maglev_table_smaller_than_a_service() {
    let text = "\
interfaces: [{ name: eth0 }]
dataplane: { maglev_table_size: 3 }
services:
  - name: web
    vip: 198.18.1.10
    port: 80
    protocol: tcp
    reals: [{ address: 198.18.2.1 }, { address: 198.18.2.2 }, { address: 198.18.2.3 }, { address: 198.18.2.4 }]
";
    assert_one(
        text,
        2,
        33,
        "dataplane.maglev_table_size",
        "3 is smaller than the 4 reals of service `web` (services[0])",
    );
}

#[test]
fn flow_table_entries_range() {
    let entries = |n: &str| {
        format!("interfaces: [{{ name: eth0 }}]\ndataplane: {{ flow_table_entries: {n} }}\n")
    };
    assert_one(
        &entries("512"),
        2,
        34,
        "dataplane.flow_table_entries",
        "512 is out of range 1024..=67108864",
    );
    assert_one(
        &entries("67108865"),
        2,
        34,
        "dataplane.flow_table_entries",
        "out of range 1024..=67108864",
    );
    assert_eq!(ok(&entries("1024")).dataplane.flow_table_entries, 1024);
}

#[test]
fn relative_pin_path() {
    assert_one(
        "interfaces: [{ name: eth0 }]\npin_path: bpf/lb\n",
        2,
        11,
        "pin_path",
        "`bpf/lb` must be an absolute path",
    );
}

#[test]
fn too_many_services() {
    let mut body = String::new();
    for i in 0..=DEFAULT_MAX_SERVICES {
        body += &format!(
            "  - {{ name: s{i}, vip: 198.18.1.10, port: {}, protocol: tcp }}\n",
            i + 1
        );
    }
    // services[127] is on line 3 + 127.
    assert_one(
        &with_services(&body),
        130,
        5,
        "services[127]",
        "too many services: 128 configured, at most 127 are supported (dataplane.max_services)",
    );
    let last = body.rfind("  - ").unwrap();
    ok(&with_services(&body[..last]));
}

/// A config with `dataplane` set to `settings` (line 2) and `body` as its
/// `services:` list, starting on line 4.
fn with_dataplane(settings: &str, body: &str) -> String {
    format!("interfaces: [{{ name: eth0 }}]\ndataplane: {{ {settings} }}\nservices:\n{body}")
}

#[test]
fn max_services_sets_the_service_limit() {
    let body: String = (0..3)
        .map(|i| {
            format!(
                "  - {{ name: s{i}, vip: 198.18.1.10, port: {}, protocol: tcp }}\n",
                i + 1
            )
        })
        .collect();
    assert_one(
        &with_dataplane("max_services: 2", &body),
        6,
        5,
        "services[2]",
        "too many services: 3 configured, at most 2 are supported (dataplane.max_services)",
    );
    let config = ok(&with_dataplane("max_services: 3", &body));
    assert_eq!(config.dataplane.max_services, 3);
    assert_eq!(config.dataplane.max_reals, DEFAULT_MAX_REALS);
    // Raised past the default: 200 services fit.
    let body: String = (0..200)
        .map(|i| {
            format!(
                "  - {{ name: s{i}, vip: 198.18.1.10, port: {}, protocol: tcp }}\n",
                i + 1
            )
        })
        .collect();
    ok(&with_dataplane("max_services: 1000", &body));
}

#[test]
fn max_services_and_max_reals_ranges() {
    let setting = |text: &str| format!("interfaces: [{{ name: eth0 }}]\ndataplane: {{ {text} }}\n");
    assert_one(
        &setting("max_services: 0"),
        2,
        28,
        "dataplane.max_services",
        "0 is out of range 1..=1048575",
    );
    assert_one(
        &setting("max_reals: 16777216"),
        2,
        25,
        "dataplane.max_reals",
        "16777216 is out of range 1..=16777215",
    );
    let config = ok(&setting(
        "max_services: 1048575, maglev_table_size: 4093, max_reals: 16777215",
    ));
    assert_eq!(config.dataplane.max_services, MAX_MAX_SERVICES);
    assert_eq!(config.dataplane.max_reals, MAX_MAX_REALS);
}

#[test]
fn maglev_ring_must_fit_a_32_bit_index() {
    // (65535 + 1) * 65537 = 4295032832 > u32::MAX.
    assert_one(
        "interfaces: [{ name: eth0 }]\ndataplane: { max_services: 65535 }\n",
        2,
        28,
        "dataplane.max_services",
        "65535 services with maglev_table_size 65537 need a Maglev ring of 4295032832 slots",
    );
    ok("interfaces: [{ name: eth0 }]\ndataplane: { max_services: 65533 }\n");
}

#[test]
fn too_many_reals() {
    // Two services of 8192 reals: the 16384th real is services[1].reals[8191].
    let mut body = String::new();
    for s in 1..=2 {
        body += &format!(
            "  - name: s{s}\n    vip: 10.{s}.255.1\n    port: 80\n    protocol: tcp\n    reals:\n"
        );
        for j in 0..8192 {
            body += &format!("      - {{ address: 10.{s}.{}.{} }}\n", j / 256, j % 256);
        }
    }
    // Line 3 + 5 + 8192 (first service) + 5 + 8191.
    assert_one(
        &with_services(&body),
        16396,
        9,
        "services[1].reals[8191]",
        "too many reals: 16384 configured across all services, at most 16383 are supported \
             (dataplane.max_reals)",
    );
    let last = body.rfind("      - ").unwrap();
    ok(&with_services(&body[..last]));
}

#[test]
fn max_reals_sets_the_real_limit() {
    let service = |s: usize, reals: usize| {
        let mut text = format!(
            "  - name: s{s}\n    vip: 198.18.1.{s}\n    port: 80\n    protocol: tcp\n    reals:\n"
        );
        for j in 0..reals {
            text += &format!("      - {{ address: 198.19.{s}.{j} }}\n");
        }
        text
    };
    // Lines 4-8: s1's header; 9-11 its reals; 12-16 s2's header; 17.. its reals.
    let body = service(1, 3) + &service(2, 3);
    assert_one(
        &with_dataplane("max_reals: 4", &body),
        18,
        9,
        "services[1].reals[1]",
        "too many reals: 6 configured across all services, at most 4 are supported \
             (dataplane.max_reals)",
    );
    ok(&with_dataplane("max_reals: 6", &body));
    // Raised past the default: 20,000 reals fit.
    let body: String = (1..=100).map(|s| service(s, 200)).collect();
    ok(&with_dataplane(
        "max_reals: 20000, max_services: 100",
        &body,
    ));
}

#[test]
fn too_many_interfaces() {
    let mut text = String::from("interfaces:\n");
    for i in 0..=MAX_INTERFACES {
        text += &format!("  - name: eth{i}\n");
    }
    let error = parse(&text, "config.yaml", &|_| true).unwrap_err();
    assert_eq!(error.problems.len(), 1, "{error}");
    assert_problem(
        &error.problems[0],
        66,
        5,
        "interfaces[64]",
        "too many interfaces: 65 listed, at most 64 are supported",
    );
}

#[test]
fn host_interfaces() {
    assert!(!host_interface_exists("no-such-if0"));
    assert!(!host_interface_exists("bad\0name"));
}
