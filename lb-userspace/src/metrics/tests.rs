use super::*;

fn counters(packets: u64, bytes: u64, new_connections: u64, drops: u64) -> TrafficCounters {
    TrafficCounters {
        packets,
        bytes,
        new_connections,
        drops,
        ..TrafficCounters::default()
    }
}

fn sample() -> Snapshot {
    let service = |id, name: &str, vip: &str, port, protocol| ServiceLabels {
        id,
        name: name.into(),
        vip: vip.parse().unwrap(),
        port,
        protocol,
    };
    let web = service(1, "web", "198.18.1.10", 80, Protocol::Tcp);
    let dns = service(2, "dns-v6.all-ports", "fd00:18:1::10", 0, Protocol::Udp);
    let real = |id, service: &ServiceLabels, address: &str, weight| RealLabels {
        id,
        service_id: service.id,
        service: service.name.clone(),
        address: address.parse().unwrap(),
        weight,
    };
    Snapshot {
        global: GlobalCounter::ALL
            .iter()
            .map(|&counter| {
                let value = match counter {
                    GlobalCounter::Received => 1000,
                    GlobalCounter::Forwarded => 990,
                    GlobalCounter::DropFragment => 3,
                    _ => 0,
                };
                (counter, value)
            })
            .take(9)
            .collect(),
        services: vec![
            (web.clone(), counters(990, 123_456, 40, 2)),
            (dns.clone(), counters(0, 0, 0, 0)),
        ],
        reals: vec![
            RealSample {
                labels: real(1, &web, "198.18.0.11:80", 1),
                counters: counters(500, 60_000, 20, 0),
                next_hop_resolved: true,
                overloaded: true,
                connections: RealConns {
                    active: 7,
                    inactive: 3,
                },
            },
            RealSample {
                labels: real(3, &dns, "[fd00:18::21]:0", 0),
                counters: counters(0, 0, 0, 2),
                next_hop_resolved: false,
                overloaded: false,
                connections: RealConns::default(),
            },
        ],
        flow_table_entries: 42,
        flow_table_capacity: 1_048_576,
    }
}

#[test]
fn renders_the_text_exposition_format() {
    // `global` is cut to the first nine counters to keep this short.
    let expected = r#"# HELP lb_dataplane_packets_total Packets seen by the XDP program, by outcome (received, forwarded, pass_*, drop_* reasons and other events), summed over CPUs.
# TYPE lb_dataplane_packets_total counter
lb_dataplane_packets_total{outcome="received"} 1000
lb_dataplane_packets_total{outcome="forwarded"} 990
lb_dataplane_packets_total{outcome="pass_not_ip"} 0
lb_dataplane_packets_total{outcome="pass_not_vip"} 0
lb_dataplane_packets_total{outcome="pass_no_service"} 0
lb_dataplane_packets_total{outcome="pass_other_protocol"} 0
lb_dataplane_packets_total{outcome="pass_truncated_l3"} 0
lb_dataplane_packets_total{outcome="drop_truncated_l4"} 0
lb_dataplane_packets_total{outcome="drop_fragment"} 3
# HELP lb_service_packets_total Packets balanced per virtual service.
# TYPE lb_service_packets_total counter
lb_service_packets_total{service="web",vip="198.18.1.10",port="80",protocol="tcp"} 990
lb_service_packets_total{service="dns-v6.all-ports",vip="fd00:18:1::10",port="0",protocol="udp"} 0
# HELP lb_service_bytes_total Bytes balanced (L3) per virtual service.
# TYPE lb_service_bytes_total counter
lb_service_bytes_total{service="web",vip="198.18.1.10",port="80",protocol="tcp"} 123456
lb_service_bytes_total{service="dns-v6.all-ports",vip="fd00:18:1::10",port="0",protocol="udp"} 0
# HELP lb_service_connections_total New connections scheduled per virtual service.
# TYPE lb_service_connections_total counter
lb_service_connections_total{service="web",vip="198.18.1.10",port="80",protocol="tcp"} 40
lb_service_connections_total{service="dns-v6.all-ports",vip="fd00:18:1::10",port="0",protocol="udp"} 0
# HELP lb_service_drops_total Packets dropped per virtual service.
# TYPE lb_service_drops_total counter
lb_service_drops_total{service="web",vip="198.18.1.10",port="80",protocol="tcp"} 2
lb_service_drops_total{service="dns-v6.all-ports",vip="fd00:18:1::10",port="0",protocol="udp"} 0
# HELP lb_service_out_packets_total Reply packets rewritten back to the VIP (NAT; DR and TUN replies bypass the balancer) per virtual service.
# TYPE lb_service_out_packets_total counter
lb_service_out_packets_total{service="web",vip="198.18.1.10",port="80",protocol="tcp"} 0
lb_service_out_packets_total{service="dns-v6.all-ports",vip="fd00:18:1::10",port="0",protocol="udp"} 0
# HELP lb_service_out_bytes_total Reply bytes rewritten back to the VIP (NAT) per virtual service.
# TYPE lb_service_out_bytes_total counter
lb_service_out_bytes_total{service="web",vip="198.18.1.10",port="80",protocol="tcp"} 0
lb_service_out_bytes_total{service="dns-v6.all-ports",vip="fd00:18:1::10",port="0",protocol="udp"} 0
# HELP lb_real_packets_total Packets balanced per real server (per service).
# TYPE lb_real_packets_total counter
lb_real_packets_total{service="web",real="198.18.0.11:80"} 500
lb_real_packets_total{service="dns-v6.all-ports",real="[fd00:18::21]:0"} 0
# HELP lb_real_bytes_total Bytes balanced (L3) per real server (per service).
# TYPE lb_real_bytes_total counter
lb_real_bytes_total{service="web",real="198.18.0.11:80"} 60000
lb_real_bytes_total{service="dns-v6.all-ports",real="[fd00:18::21]:0"} 0
# HELP lb_real_connections_total New connections scheduled per real server (per service).
# TYPE lb_real_connections_total counter
lb_real_connections_total{service="web",real="198.18.0.11:80"} 20
lb_real_connections_total{service="dns-v6.all-ports",real="[fd00:18::21]:0"} 0
# HELP lb_real_drops_total Packets dropped per real server (per service).
# TYPE lb_real_drops_total counter
lb_real_drops_total{service="web",real="198.18.0.11:80"} 0
lb_real_drops_total{service="dns-v6.all-ports",real="[fd00:18::21]:0"} 2
# HELP lb_real_out_packets_total Reply packets rewritten back to the VIP (NAT; DR and TUN replies bypass the balancer) per real server (per service).
# TYPE lb_real_out_packets_total counter
lb_real_out_packets_total{service="web",real="198.18.0.11:80"} 0
lb_real_out_packets_total{service="dns-v6.all-ports",real="[fd00:18::21]:0"} 0
# HELP lb_real_out_bytes_total Reply bytes rewritten back to the VIP (NAT) per real server (per service).
# TYPE lb_real_out_bytes_total counter
lb_real_out_bytes_total{service="web",real="198.18.0.11:80"} 0
lb_real_out_bytes_total{service="dns-v6.all-ports",real="[fd00:18::21]:0"} 0
# HELP lb_real_weight Configured weight of the real (0 takes no new connections).
# TYPE lb_real_weight gauge
lb_real_weight{service="web",real="198.18.0.11:80"} 1
lb_real_weight{service="dns-v6.all-ports",real="[fd00:18::21]:0"} 0
# HELP lb_real_next_hop_resolved 1 if the real's next hop (MAC and egress interface) is resolved, 0 if not; an unresolved real gets no new connections.
# TYPE lb_real_next_hop_resolved gauge
lb_real_next_hop_resolved{service="web",real="198.18.0.11:80"} 1
lb_real_next_hop_resolved{service="dns-v6.all-ports",real="[fd00:18::21]:0"} 0
# HELP lb_real_overloaded 1 while the real is at its upper connection threshold (takes no new connections).
# TYPE lb_real_overloaded gauge
lb_real_overloaded{service="web",real="198.18.0.11:80"} 1
lb_real_overloaded{service="dns-v6.all-ports",real="[fd00:18::21]:0"} 0
# HELP lb_real_active_connections Established TCP connections to the real (ipvsadm's ActiveConn).
# TYPE lb_real_active_connections gauge
lb_real_active_connections{service="web",real="198.18.0.11:80"} 7
lb_real_active_connections{service="dns-v6.all-ports",real="[fd00:18::21]:0"} 0
# HELP lb_real_inactive_connections Other tracked connections to the real: handshakes, closing, UDP (ipvsadm's InActConn).
# TYPE lb_real_inactive_connections gauge
lb_real_inactive_connections{service="web",real="198.18.0.11:80"} 3
lb_real_inactive_connections{service="dns-v6.all-ports",real="[fd00:18::21]:0"} 0
# HELP lb_flow_table_entries Entries in the connection table, idle ones not yet reaped included (counted up to 1048576).
# TYPE lb_flow_table_entries gauge
lb_flow_table_entries 42
# HELP lb_flow_table_capacity Capacity of the connection table (dataplane.flow_table_entries).
# TYPE lb_flow_table_capacity gauge
lb_flow_table_capacity 1048576
"#;
    assert_eq!(render(&sample()), expected);
}

#[test]
fn every_global_counter_is_exported_under_its_name() {
    let snapshot = Snapshot {
        global: GlobalCounter::ALL.iter().map(|&c| (c, c as u64)).collect(),
        services: vec![],
        reals: vec![],
        flow_table_entries: 0,
        flow_table_capacity: 1024,
    };
    let text = render(&snapshot);
    for counter in GlobalCounter::ALL {
        let line = format!(
            "lb_dataplane_packets_total{{outcome=\"{}\"}} {}\n",
            counter.name(),
            counter as u64
        );
        assert!(text.contains(&line), "no `{line}` in:\n{text}");
    }
    // Families without samples still say what they are.
    assert!(text.contains("# TYPE lb_real_weight gauge\n"));
}

#[test]
fn escapes_label_values_and_help() {
    assert_eq!(escape_label_value(r#"a"b\c"#), r#"a\"b\\c"#);
    assert_eq!(escape_label_value("a\nb"), r"a\nb");
    assert_eq!(escape_help("a\\b\nc \"d\""), "a\\\\b\\nc \"d\"");
    let mut out = String::new();
    Family::new(&mut out, "x", "gauge", "h").sample("x", &[("l", "q\"")], 1);
    assert!(out.ends_with("x{l=\"q\\\"\"} 1\n"), "{out}");
}

#[test]
fn labels_follow_the_config_and_the_ids() {
    let config = crate::testing::config(
        "interfaces: [{ name: eth0 }]
dataplane: { flow_table_entries: 4096 }
services:
  - { name: web, vip: 198.18.1.10, port: 80, protocol: tcp, reals: [{ address: 198.18.0.11, weight: 2 }] }
  - name: web6
    vip: fd00:18:1::10
    port: 443
    protocol: tcp
    reals:
      - { address: fd00:18::11 }
",
    );
    let ids = Ids::default().plan(&config).unwrap();
    let labels = Labels::new(&config, &ids);
    assert_eq!(labels.flow_table_capacity, 4096);
    let services: Vec<_> = labels
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.id, s.vip.to_string(), s.port))
        .collect();
    let web_id = ids.services[&service_key(&config.services[0])];
    let web6_id = ids.services[&service_key(&config.services[1])];
    assert_eq!(
        services,
        [
            ("web", web_id, "198.18.1.10".to_owned(), 80),
            ("web6", web6_id, "fd00:18:1::10".to_owned(), 443),
        ]
    );
    let reals: Vec<_> = labels
        .reals
        .iter()
        .map(|r| {
            (
                r.service.as_str(),
                r.service_id,
                r.address.to_string(),
                r.weight,
            )
        })
        .collect();
    assert_eq!(
        reals,
        [
            ("web", web_id, "198.18.0.11:80".to_owned(), 2),
            ("web6", web6_id, "[fd00:18::11]:443".to_owned(), 1),
        ]
    );
    assert_eq!(Labels::new(&config, &Ids::default()).services, []);
}

/// Sends `request` to a test server and returns the whole response.
async fn exchange(address: SocketAddr, request: &[u8]) -> String {
    let request = request.to_vec();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.write_all(&request).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn http_serves_metrics_and_nothing_else() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_with(listener, READ_TIMEOUT, || async {
        Ok("lb_flow_table_entries 1\n".to_owned())
    }));

    let response = exchange(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(
        response,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: 24\r\nConnection: close\r\n\r\nlb_flow_table_entries 1\n"
    );
    let response = exchange(address, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    let response = exchange(address, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
    assert!(
        response.starts_with("HTTP/1.1 200 OK\r\n") && response.ends_with("\r\n\r\n"),
        "{response}"
    );
    let response = exchange(address, b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(
        response.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{response}"
    );
    let response = exchange(address, b"POST /metrics HTTP/1.1\r\n\r\n").await;
    assert!(
        response.starts_with("HTTP/1.1 405 Method Not Allowed\r\n")
            && response.contains("\r\nAllow: GET, HEAD\r\n"),
        "{response}"
    );
    let response = exchange(address, b"nonsense\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(MAX_REQUEST_BYTES)
    );
    let response = exchange(address, huge.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
    server.abort();
}

#[tokio::test]
async fn http_reports_a_failed_scrape() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_with(listener, READ_TIMEOUT, || async {
        anyhow::bail!("no maps pinned")
    }));
    let response = exchange(address, b"GET /metrics HTTP/1.1\r\n\r\n").await;
    assert!(
        response.starts_with("HTTP/1.1 500 Internal Server Error\r\n")
            && response.ends_with("scrape failed: no maps pinned\n"),
        "{response}"
    );
    server.abort();
}

#[tokio::test]
async fn http_times_out_a_silent_client() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let timeout = Duration::from_millis(200);
    let server = tokio::spawn(serve_with(listener, timeout, || async {
        Ok(String::new())
    }));
    let response = exchange(address, b"GET /metrics HTTP/1.1\r\n").await;
    assert!(response.starts_with("HTTP/1.1 408 "), "{response}");
    server.abort();
}
