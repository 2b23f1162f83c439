//! Good configurations: what they decode to, and printing them back.

use super::*;

// --- Good configurations.

#[test]
fn minimal_config_takes_the_defaults() {
    let text = format!(
        "interfaces:\n  - name: eth0\nservices:\n{WEB}    reals:
      - {{ address: 198.18.2.11 }}
      - {{ address: 198.18.2.12, port: 80, weight: 3 }}
"
    );
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
        services: vec![service(
            "web",
            v4(198, 18, 1, 10),
            80,
            vec![
                real(v4(198, 18, 2, 11), 80, 1),
                real(v4(198, 18, 2, 12), 80, 3),
            ],
        )],
    };
    assert_eq!(ok(&text), expected);
}

#[test]
fn services_and_reals_may_be_left_out() {
    let config = ok("interfaces: [{ name: eth0 }]\n");
    assert!(config.services.is_empty());
    let config = ok(&with_services(WEB));
    assert!(config.services[0].reals.is_empty());
}

/// A TCP service as the YAML gives it when it leaves out everything but its
/// address, port and reals: `mh` with its default flags, DR, no persistence,
/// no health checks.
fn service(name: &str, vip: IpAddr, port: u16, reals: Vec<RealConfig>) -> ServiceConfig {
    ServiceConfig {
        name: name.into(),
        vip,
        port,
        protocol: Protocol::Tcp,
        scheduler: Scheduler::Mh,
        scheduler_flags: vec![SchedulerFlag::MhPort],
        persistence: None,
        forwarding: Forwarding::Dr,
        health: ServiceHealth::unchecked(),
        reals,
    }
}

/// What `tests/config/dual-stack.yaml` reads as.
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
        services: dual_stack_services(),
    }
}

fn dual_stack_services() -> Vec<ServiceConfig> {
    let (v4_reals, v6_reals) = (
        vec![
            real(v4(198, 18, 2, 11), 443, 2),
            real(v4(198, 18, 2, 12), 443, 1),
        ],
        vec![
            real(v6("fd00:18:2::11"), 443, 2),
            real(v6("fd00:18:2::12"), 443, 0),
        ],
    );
    let all_ports = vec![
        real(v6("fd00:18:2::21"), 0, 1),
        real(v6("fd00:18:2::22"), 0, 65_535),
    ];
    let tunnelled = vec![
        real(v4(198, 18, 3, 11), 8443, 1),
        real(v6("fd00:18:3::12"), 8443, 3),
    ];
    let natted = vec![
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
    ];
    vec![
        service("web-v4", v4(198, 18, 1, 10), 443, v4_reals),
        service("web-v6", v6("fd00:18:1::10"), 443, v6_reals),
        ServiceConfig {
            protocol: Protocol::Udp,
            scheduler: Scheduler::Sh,
            scheduler_flags: vec![SchedulerFlag::ShFallback, SchedulerFlag::ShPort],
            ..service("dns-v6.all-ports", v6("fd00:18:1::10"), 0, all_ports)
        },
        ServiceConfig {
            forwarding: Forwarding::Tun,
            ..service("api-tun", v4(198, 18, 1, 20), 8443, tunnelled)
        },
        ServiceConfig {
            scheduler: Scheduler::Wlc,
            scheduler_flags: vec![],
            persistence: Some(PersistenceConfig {
                timeout: 600,
                prefix: 64,
            }),
            forwarding: Forwarding::Nat,
            ..service("app-nat", v6("fd00:18:1::30"), 80, natted)
        },
    ]
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
