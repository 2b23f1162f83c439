//! Interfaces, data-plane sizes and how many services and reals fit.

use super::*;

#[test]
fn unknown_interface() {
    assert_one(
        "interfaces:\n  - name: eth0\n  - name: eth9\n",
        "3:11 interfaces[1].name",
        "no interface named `eth9` on this host",
    );
}

#[test]
fn duplicate_interface() {
    assert_one(
        "interfaces:\n  - name: eth0\n  - { name: eth0, xdp_mode: skb }\n",
        "3:13 interfaces[1].name",
        "interface `eth0` is already listed as interfaces[0]",
    );
}

#[test]
fn maglev_table_size() {
    let size = |size: &str| top(&format!("dataplane:\n  maglev_table_size: {size}\n"));
    assert_eq!(ok(&size("2")).dataplane.maglev_table_size, 2);
    assert_eq!(ok(&size("65521")).dataplane.maglev_table_size, 65_521);
    assert_each! {
        size("65536") => "3:22 dataplane.maglev_table_size", "65536 is not a prime number";
        size("1") => "3:22 dataplane.maglev_table_size", "1 is out of range 2..=2147483647";
        size("4294967291") => "3:22 dataplane.maglev_table_size", "is out of range 2..=2147483647";
    }
    // A prime the default 127 services cannot afford: 128 rows of it
    // overflow the ring's 32-bit index (reported where `dataplane`'s
    // settings are, since max_services is left at its default).
    assert_one(
        &size("33554467"),
        "3:3 dataplane.max_services",
        "127 services with maglev_table_size 33554467 need a Maglev ring of 4294971776 slots",
    );
}

#[test]
fn maglev_table_smaller_than_a_service() {
    let text = format!(
        "\
interfaces: [{{ name: eth0 }}]
dataplane: {{ maglev_table_size: 3 }}
services:
{WEB}    reals: [{{ address: 198.18.2.1 }}, {{ address: 198.18.2.2 }}, {{ address: 198.18.2.3 }}, {{ address: 198.18.2.4 }}]
"
    );
    assert_one(
        &text,
        "2:33 dataplane.maglev_table_size",
        "3 is smaller than the 4 reals of service `web` (services[0])",
    );
}

#[test]
fn flow_table_entries_range() {
    let entries = |n: &str| top(&format!("dataplane: {{ flow_table_entries: {n} }}\n"));
    assert_each! {
        entries("512") => "2:34 dataplane.flow_table_entries", "512 is out of range 1024..=67108864";
        entries("67108865") => "2:34 dataplane.flow_table_entries", "out of range 1024..=67108864";
    }
    assert_eq!(ok(&entries("1024")).dataplane.flow_table_entries, 1024);
}

#[test]
fn relative_pin_path() {
    assert_one(
        "interfaces: [{ name: eth0 }]\npin_path: bpf/lb\n",
        "2:11 pin_path",
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
        "130:5 services[127]",
        "too many services: 128 configured, at most 127 are supported (dataplane.max_services)",
    );
    let last = body.rfind("  - ").unwrap();
    ok(&with_services(&body[..last]));
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
        "6:5 services[2]",
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
    assert_each! {
        setting("max_services: 0") => "2:28 dataplane.max_services", "0 is out of range 1..=1048575";
        setting("max_reals: 16777216") => "2:25 dataplane.max_reals", "16777216 is out of range 1..=16777215";
    }
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
        "2:28 dataplane.max_services",
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
        "16396:9 services[1].reals[8191]",
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
        "18:9 services[1].reals[1]",
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
