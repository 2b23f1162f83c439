//! Rules about services and their reals as a whole.

use super::*;

// --- Rules about the whole.

#[test]
fn duplicate_service() {
    let text = with_services(&format!(
        "{WEB}  - name: web-again\n    vip: 198.18.1.10\n    port: 80\n    protocol: tcp\n"
    ));
    assert_one(
        &text,
        "7:5 services[1]",
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
        "7:13 services[1].name",
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
        "10:9 services[0].reals[2]",
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
    assert_each! {
        with_services(&format!("{WEB}    reals: [{{ address: fd00::11 }}]\n")) => "7:24 services[0].reals[0].address", "real fd00::11 is IPv6 but the VIP 198.18.1.10 is IPv4; DR forwarding needs the same address family";
        with_services(
            "  - name: web6
    vip: fd00::10
    port: 80
    protocol: tcp
    reals:
      - address: 198.18.2.11
",
        ) => "8:18 services[0].reals[0].address", "real 198.18.2.11 is IPv4 but the VIP fd00::10 is IPv6";
    }
}

#[test]
fn nat_real_in_another_family_than_the_vip() {
    assert_one(
        &with_services(&format!(
            "{WEB}    forwarding: nat\n    reals: [{{ address: fd00::11 }}]\n"
        )),
        "8:24 services[0].reals[0].address",
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
            "11:39 services[0].reals[2].port",
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
        "9:39 services[0].reals[0].port",
        "real port 0 on a NAT service of port 80: NAT rewrites the destination port \
             to the real's; omit `port` to keep 80",
    );
}
