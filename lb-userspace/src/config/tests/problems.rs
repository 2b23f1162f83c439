//! How problems are shown, and the ones of syntax, shape, types and values.

use super::*;

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
    let text = format!(
        "\
interfaces:
  - {{ name: eth9 }}
pin_path: relative/dir
tunnel: {{ source_v4: fd00:18::1 }}
timeouts: {{ tcp: 0, udp: 300 }}
services:
{WEB}    reals:
      - {{ address: 198.18.2.11, wieght: 2 }}
      - {{ address: 198.18.2.12, weight: 70000 }}
      - {{ address: fd00::12 }}
      - {{ address: 198.18.2.13, port: 8080 }}
  - {{ name: web, vip: 198.18.1.10, port: 80, protocol: udp, forwarding: nat }}
  - name: dns
    vip: 198.18.1.53
    port: 53
    protocol: sctp
"
    );
    let error = parse(&text, "config.yaml", &host).unwrap_err();
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
    assert_each! {
        "interfaces:\n  - name: eth0\nservices: [ {name: web\n" => "4:1", "invalid YAML: while parsing a flow mapping";
        "interfaces:\n  - name: eth0\n xdp_mode: auto\n" => "3:2", "invalid YAML";
    }
}

#[test]
fn duplicate_key() {
    assert_one(
        "interfaces: [{ name: eth0 }]\ninterfaces: []\n",
        "2:1",
        "duplicated key in mapping",
    );
    // Differently quoted, the YAML loader sees two keys; the schema does not.
    assert_one(
        "interfaces: [{ name: eth0, \"name\": eth1 }]\n",
        "1:28 interfaces[0].name",
        "duplicate field `name`",
    );
}

#[test]
fn empty_or_several_documents() {
    assert_each! {
        "" => "1:1", "the file is empty";
        "# nothing yet\n" => "1:1", "the file is empty";
        "---\n" => "2:1", "the file is empty";
        "interfaces: [{ name: eth0 }]\n---\ninterfaces: [{ name: eth1 }]\n" => "3:1", "expected one YAML document, found 2";
        "- eth0\n" => "1:1", "expected a mapping, found a list";
    }
}

// --- Unknown fields, wrong types, missing fields.

#[test]
fn unknown_field_in_a_real() {
    let text = with_services(&format!(
        "{WEB}    reals: [{{ address: 198.18.2.11, wieght: 2 }}]\n"
    ));
    assert_one(
        &text,
        "7:37 services[0].reals[0].wieght",
        "unknown field `wieght`, expected one of `address`, `port`, `weight`",
    );
}

#[test]
fn unknown_field_elsewhere() {
    assert_each! {
        "interfaces: [{ name: eth0 }]\nservice: []\n" => "2:1 service", "unknown field `service`, expected one of `interfaces`, `pin_path`, `control`, \
             `dataplane`, `tunnel`, `timeouts`, `icmp_echo_reply`, `expire_nodest_conn`, \
             `flood_guard`, `metrics`, `services`";
        "interfaces: [{ name: eth0, mode: skb }]\n" => "1:28 interfaces[0].mode", "unknown field `mode`, expected one of `name`, `xdp_mode`";
        "interfaces: [{ name: eth0 }]\ndataplane:\n  maglev_size: 7\n" => "3:3 dataplane.maglev_size", "unknown field `maglev_size`";
        with_services(&format!("{WEB}    weight: 1\n")) => "7:5 services[0].weight", "unknown field `weight`";
    }
}

#[test]
fn wrong_types() {
    assert_each! {
        "interfaces: eth0\n" => "1:13 interfaces", "expected a list, found string `eth0`";
        "interfaces: [{ name: eth0 }]\nservices: { name: web }\n" => "2:11 services", "expected a list, found a mapping";
        with_services("  - { name: web, vip: 198.18.1.10, port: \"80\", protocol: tcp }\n") => "3:42 services[0].port", "expected an integer in 0..=65535, found string `80`";
        with_services("  - { name: web, vip: 198.18.1.10, port: http, protocol: tcp }\n") => "3:42 services[0].port", "expected an integer in 0..=65535, found string `http`";
        with_services(&format!("{WEB}    reals: [198.18.2.11]\n")) => "7:13 services[0].reals[0]", "expected a mapping, found string `198.18.2.11`";
        with_services(&format!(
            "{WEB}    reals: [{{ address: 198.18.2.11, weight: 1.5 }}]\n"
        )) => "7:45 services[0].reals[0].weight", "found number `1.5`";
        with_services("  - { name: [web], vip: 198.18.1.10, port: 80, protocol: tcp }\n") => "3:13 services[0].name", "expected a service name, found a list";
        with_services("  - { name: web, vip: ~, port: 80, protocol: tcp }\n") => "3:23 services[0].vip", "expected an IP address, found null";
        with_services("  - { name: web, vip: 198.18.1.10, port: !port 80, protocol: tcp }\n") => "3:42 services[0].port", "found `80` tagged `!port`";
    }
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
    assert_each! {
        with_services("  - name: web\n    vip: 198.18.1.10\n    protocol: tcp\n") => "3:5 services[0].port", "missing required field `port`";
        with_services(&format!("{WEB}    reals:\n      - port: 80\n")) => "8:9 services[0].reals[0].address", "missing required field `address`";
        "pin_path: /sys/fs/bpf/lb\n" => "1:1 interfaces", "missing required field `interfaces`";
        "interfaces:\n  - xdp_mode: skb\n" => "2:5 interfaces[0].name", "missing required field `name`";
    }
}

#[test]
fn empty_interface_list() {
    assert_one(
        "interfaces: []\n",
        "1:13 interfaces",
        "at least one interface is required",
    );
}

// --- Values.

#[test]
fn bad_addresses() {
    let vip =
        |vip: &str| inline_service(&format!("name: web, vip: {vip}, port: 80, protocol: tcp"));
    assert_each! {
        vip("198.18.1.300") => "3:23 services[0].vip", "`198.18.1.300` is not a valid IP address";
        vip("\"not-an-ip\"") => "3:23 services[0].vip", "`not-an-ip` is not a valid IP address";
        vip("0.0.0.0") => "3:23 services[0].vip", "0.0.0.0 is not a unicast address";
        vip("ff02::1") => "3:23 services[0].vip", "ff02::1 is not a unicast address";
        with_services(&format!("{WEB}    reals:\n      - address: 198.18.2.256\n")) => "8:18 services[0].reals[0].address", "`198.18.2.256` is not a valid IP address";
    }
}

#[test]
fn ports_out_of_range() {
    let web = |port: &str| format!("name: web, vip: 198.18.1.10, port: {port}, protocol: tcp");
    let port = |port: &str| inline_service(&web(port));
    assert_each! {
        port("70000") => "3:42 services[0].port", "70000 is out of range 0..=65535";
        port("-1") => "3:42 services[0].port", "-1 is out of range 0..=65535";
        port("99999999999999999999") => "3:42 services[0].port", "99999999999999999999 is out of range 0..=65535";
        with_services(&format!(
            "{WEB}    reals:\n      - address: 198.18.2.11\n        port: 70000\n"
        )) => "9:15 services[0].reals[0].port", "70000 is out of range 0..=65535";
    }
}

#[test]
fn weights_out_of_range() {
    let real = |field: &str| {
        with_services(&format!(
            "{WEB}    reals:\n      - address: 198.18.2.11\n{field}"
        ))
    };
    let weight = |weight: &str| real(&format!("        weight: {weight}\n"));
    assert_each! {
        weight("70000") => "9:17 services[0].reals[0].weight", "70000 is out of range 0..=65535";
        weight("-1") => "9:17 services[0].reals[0].weight", "-1 is out of range 0..=65535";
    }
}

#[test]
fn unknown_keywords() {
    assert_each! {
        with_services("  - { name: web, vip: 198.18.1.10, port: 80, protocol: sctp }\n") => "3:56 services[0].protocol", "unknown protocol `sctp`, expected one of `tcp`, `udp`";
        with_services(&format!("{WEB}    scheduler: lblc\n")) => "7:16 services[0].scheduler", "unknown scheduler `lblc`, expected one of `mh`, `rr`, `wrr`, `sh`, `dh`, `lc`, \
             `wlc`, `sed`, `nq`";
        with_services(&format!(
            "{WEB}    scheduler: rr\n    scheduler_flags: [mh-port]\n"
        )) => "8:23 services[0].scheduler_flags[0]", "`mh-port` is a flag of the `mh` scheduler; for `rr` write `flag-2`";
        with_services(&format!(
            "{WEB}    persistence: {{ timeout: 60, prefix: 33 }}\n"
        )) => "7:41 services[0].persistence.prefix", "33 is out of range 1..=32";
        with_services(&format!("{WEB}    forwarding: fullnat\n")) => "7:17 services[0].forwarding", "unknown forwarding `fullnat`, expected one of `dr`, `tun`, `nat`";
        "interfaces: [{ name: eth0, xdp_mode: hw }]\n" => "1:38 interfaces[0].xdp_mode", "unknown xdp_mode `hw`, expected one of `auto`, `native`, `skb`";
    }
}

#[test]
fn invalid_service_name() {
    let name = |name: &str| {
        inline_service(&format!(
            "name: {name}, {}",
            "vip: 198.18.1.10, port: 80, protocol: tcp"
        ))
    };
    assert_each! {
        name("\"web server\"") => "3:13 services[0].name", "`web server` is not a valid service name";
        name(&"a".repeat(65)) => "3:13 services[0].name", "is not a valid service name";
        name("\"\"") => "3:13 services[0].name", "`` is not a valid service name";
    }
    ok(&name(&"a".repeat(64)));
}
