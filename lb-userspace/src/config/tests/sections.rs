//! The top-level sections: tunnel, flood guard, timeouts, ICMP, metrics.

use super::*;

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
    assert_each! {
        top("tunnel:\n  source_v4: fd00:18::1\n") => "3:14 tunnel.source_v4", "fd00:18::1 is an IPv6 address, this field takes an IPv4 address \
             (IPv6 tunnels take theirs from `tunnel.source_v6`)";
        top("tunnel:\n  source_v6: 198.18.0.1\n") => "3:14 tunnel.source_v6", "198.18.0.1 is an IPv4 address, this field takes an IPv6 address \
             (IPv4 tunnels take theirs from `tunnel.source_v4`)";
    }
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
    assert_each! {
        source("source_v4", "224.0.0.1") => "2:22 tunnel.source_v4", "224.0.0.1 is not a unicast address";
        source("source_v4", "255.255.255.255") => "2:22 tunnel.source_v4", "255.255.255.255 is not a unicast address";
        source("source_v6", "\"::\"") => "2:22 tunnel.source_v6", ":: is not a unicast address";
        source("source_v6", "\"ff02::2\"") => "2:22 tunnel.source_v6", "ff02::2 is not a unicast address";
        source("source_v4", "198.18.0") => "2:22 tunnel.source_v4", "`198.18.0` is not a valid IP address";
        source("source_v4", "~") => "2:22 tunnel.source_v4", "expected an IP address, found null";
        source("source", "198.18.0.1") => "2:11 tunnel.source", "unknown field `source`, expected one of `source_v4`, `source_v6`";
        top("tunnel: 198.18.0.1\n") => "2:9 tunnel", "expected a mapping, found string `198.18.0.1`";
    }
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
    assert_each! {
        top("flood_guard: { new_flows_per_second: -1 }\n") => "2:38 flood_guard.new_flows_per_second", "-1 is out of range 0..=4294967295";
        top("flood_guard: { rate: 5 }\n") => "2:16 flood_guard.rate", "unknown field `rate`, expected one of `new_flows_per_second`";
    }
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
    assert_each! {
        timeouts("tcp_fin: 0") => "2:22 timeouts.tcp_fin", "0 is out of range 1..=2147483";
        timeouts("udp: 2147484") => "2:18 timeouts.udp", "2147484 is out of range 1..=2147483";
        timeouts("tcp: -5") => "2:18 timeouts.tcp", "-5 is out of range 1..=2147483";
        timeouts("tcp: 15m") => "2:18 timeouts.tcp", "expected a number of seconds in 1..=2147483, found string `15m`";
        timeouts("tcp: 1.5") => "2:18 timeouts.tcp", "expected a number of seconds in 1..=2147483, found number `1.5`";
        timeouts("tcpfin: 60") => "2:13 timeouts.tcpfin", "unknown field `tcpfin`, expected one of `tcp`, `tcp_fin`, `udp`";
        top("timeouts: 900\n") => "2:11 timeouts", "expected a mapping, found integer `900`";
    }
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
            "2:18 icmp_echo_reply",
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
    assert_each! {
        listen("127.0.0.1") => "3:11 metrics.listen", "`127.0.0.1` is not an address and port (IP:PORT with IPv6 in brackets, \
             such as `127.0.0.1:9105` or `\"[::1]:9105\"`)";
        listen("9105") => "3:11 metrics.listen", "`9105` is not an address and port";
        listen("\"::1:9105\"") => "3:11 metrics.listen", "`::1:9105` is not an address and port";
    }
    // Unquoted, `[::1]:9105` is not even valid YAML; `[::1]` is a list.
    assert_each! {
        listen("[::1]") => "3:11 metrics.listen", "expected an address and port such as `127.0.0.1:9105` or `\"[::1]:9105\"`, \
             found a list";
        listen("127.0.0.1:0") => "3:11 metrics.listen", "port 0 would pick a random port; give the port to scrape (e.g. 127.0.0.1:9105)";
        listen("224.0.0.1:9105") => "3:11 metrics.listen", "cannot listen on 224.0.0.1: not a unicast address";
        listen("~") => "3:11 metrics.listen", "found null";
        top("metrics: 127.0.0.1:9105\n") => "2:10 metrics", "expected a mapping, found string `127.0.0.1:9105`";
        top("metrics: { address: 127.0.0.1:9105 }\n") => "2:12 metrics.address", "unknown field `address`, expected one of `listen`";
    }
}
