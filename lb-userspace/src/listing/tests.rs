use super::*;

fn stats(
    conns: u64,
    packets: u64,
    out_packets: u64,
    bytes: u64,
    out_bytes: u64,
) -> TrafficCounters {
    TrafficCounters {
        new_connections: conns,
        packets,
        out_packets,
        bytes,
        out_bytes,
        ..TrafficCounters::default()
    }
}

/// Expected outputs below were printed with the C format strings of
/// ipvsadm 1.31 (`print_title`, `print_service_entry`, `print_largenum`).
fn sample() -> Vec<ServiceRow> {
    vec![
        ServiceRow {
            protocol: proto::TCP,
            address: "198.18.1.10:80".parse().unwrap(),
            scheduler: Scheduler::WeightedLeastConnection,
            sched_flags: 0,
            persistence: Some(Persistence {
                timeout: 300,
                prefix: 24,
            }),
            stats: stats(401, 8_939_187, 8_953_980, 830_843_123, 1_135_000_001),
            rates: Rates::from([12, 345, 340, 33_000, 150_000_000]),
            quorum: None,
            reals: vec![RealRow {
                address: "198.18.2.11:80".parse().unwrap(),
                forwarding: ForwardingMethod::Masquerade,
                weight: 1,
                upper_threshold: 100,
                lower_threshold: 50,
                active_connections: 12,
                inactive_connections: 40,
                persistent_connections: 3,
                stats: stats(134, 3_026_088, 3_031_335, 281_255_999, 384_268_000),
                rates: Rates::from([1, 2, 3, 4, 5]),
                health: Some(Health::Up),
                down: false,
                check: None,
                sorry_server: false,
            }],
        },
        ServiceRow {
            protocol: proto::UDP,
            address: "[fd00::10]:53".parse().unwrap(),
            scheduler: Scheduler::Maglev,
            sched_flags: SCHED_FLAG_FALLBACK | SCHED_FLAG_PORT,
            persistence: Some(Persistence {
                timeout: 60,
                prefix: 64,
            }),
            stats: TrafficCounters::default(),
            rates: Rates::default(),
            quorum: None,
            reals: vec![],
        },
    ]
}

fn listed(view: View) -> String {
    render(
        &sample(),
        4096,
        Layout {
            view,
            exact: false,
            version_line: true,
        },
    )
}

#[test]
fn list_matches_ipvsadm_layout() {
    assert_eq!(listed(View::Plain), PLAIN);
}

#[test]
fn stats_match_ipvsadm_layout_and_scaling() {
    assert_eq!(listed(View::Stats), STATS);
}

#[test]
fn rates_match_ipvsadm_layout() {
    assert_eq!(listed(View::Rate), RATE);
}

#[test]
fn thresholds_of_one_service_match_ipvsadm_layout() {
    let one = &sample()[..1];
    let text = render(
        one,
        4096,
        Layout {
            view: View::Thresholds,
            exact: false,
            version_line: false,
        },
    );
    assert_eq!(text, THRESHOLDS);
}

#[test]
fn persistent_connections_match_ipvsadm_layout() {
    assert_eq!(listed(View::PersistentConn), PERSISTENT);
}

#[test]
fn exact_counters_are_not_scaled() {
    let text = render(
        &sample(),
        4096,
        Layout {
            view: View::Stats,
            exact: true,
            version_line: true,
        },
    );
    assert!(text.contains(" 830843123 1135000001\n"), "{text}");
}

/// A connection: protocol, seconds left and state; then its source,
/// virtual and destination addresses.
fn connection(
    (protocol, expires_in, state): (u8, u64, &'static str),
    [source, virtual_address, destination]: [&str; 3],
) -> ConnectionRow {
    ConnectionRow {
        protocol,
        expires_in,
        state,
        source: source.parse().unwrap(),
        virtual_address: virtual_address.parse().unwrap(),
        destination: destination.parse().unwrap(),
    }
}

#[test]
fn connections_match_ipvsadm_layout() {
    let rows = vec![
        connection(
            (proto::TCP, 895, "ESTABLISHED"),
            ["198.51.100.7:51922", "198.18.1.10:80", "198.18.2.11:8000"],
        ),
        connection(
            (proto::UDP, 299, "UDP"),
            ["[fd00:c::9]:40113", "[fd00::10]:53", "[fd00:2::21]:53"],
        ),
    ];
    let expected = "\
IPVS connection entries
pro expire state       source             virtual            destination
TCP 14:55  ESTABLISHED 198.51.100.7:51922 198.18.1.10:80     198.18.2.11:8000
UDP 04:59  UDP         [fd00:c::9]:40113  [fd00::10]:53      [fd00:2::21]:53
";
    assert_eq!(render_connections(&rows, false), expected);
    let json = connections_json(&rows);
    assert_eq!(json[0]["state"], "ESTABLISHED");
    assert_eq!(json[1]["destination"], "[fd00:2::21]:53");
}

#[test]
fn templates_with_persistent_conn_match_ipvsadm_layout() {
    let rows = vec![connection(
        (proto::TCP, 296, "NONE"),
        ["198.51.100.0:0", "198.18.1.10:80", "198.18.2.11:80"],
    )];
    assert_eq!(render_connections(&rows, true), TEMPLATES);
}

#[test]
fn timeouts_match_ipvsadm_and_zero_means_the_default() {
    let settings = Settings {
        tcp: 0,
        tcp_fin: 60,
        udp: 30,
        flags: 0,
    };
    assert_eq!(
        render_timeouts(&settings),
        "Timeout (tcp tcpfin udp): 900 60 30\n"
    );
}

#[test]
fn masks_print_like_ipvsadm() {
    let v4: IpAddr = "198.18.1.10".parse().unwrap();
    let v6: IpAddr = "fd00::10".parse().unwrap();
    assert_eq!(mask_text(v4, 32), None);
    assert_eq!(mask_text(v4, 24).as_deref(), Some("255.255.255.0"));
    assert_eq!(mask_text(v4, 1).as_deref(), Some("128.0.0.0"));
    assert_eq!(mask_text(v6, 128), None);
    assert_eq!(mask_text(v6, 48).as_deref(), Some("48"));
}

#[test]
fn flags_are_named_for_sh_and_mh_and_numbered_otherwise() {
    assert_eq!(
        sched_flags_text(Scheduler::SourceHash, SCHED_FLAG_PORT).as_deref(),
        Some("sh-port")
    );
    assert_eq!(
        sched_flags_text(Scheduler::RoundRobin, SCHED_FLAG_FALLBACK | SCHED_FLAG_PORT).as_deref(),
        Some("flag-1,flag-2")
    );
    assert_eq!(sched_flags_text(Scheduler::Maglev, 0), None);
}

#[test]
fn service_json_carries_reals_counters_rates_and_health() {
    let json = services_json(&sample());
    assert_eq!(json[0]["address"], "198.18.1.10:80");
    assert_eq!(json[0]["persistence"]["prefix"], 24);
    assert_eq!(json[0]["reals"][0]["forward"], "Masq");
    assert_eq!(json[0]["reals"][0]["health"], "up");
    assert_eq!(json[0]["reals"][0]["upper_threshold"], 100);
    assert_eq!(json[0]["reals"][0]["stats"]["out_packets"], 3_031_335);
    assert_eq!(json[0]["rates"]["in_pps"], 345);
    assert_eq!(json[1]["flags"][1], "mh-port");
    assert_eq!(json[1]["reals"].as_array().map(Vec::len), Some(0));
}

#[test]
fn large_numbers_scale_like_ipvsadm() {
    assert_eq!(large_number(99_999_999, false), " 99999999");
    assert_eq!(large_number(100_000_000, false), "  100000K");
    assert_eq!(large_number(1_135_000_001, false), "    1135M");
    assert_eq!(large_number(123_456_789_012, false), "     123G");
    assert_eq!(large_number(1_135_000_001, true), " 1135000001");
    assert_eq!(large_number(7, true), "        7");
}

const PLAIN: &str = r#"IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.18.1.10:80 wlc persistent 300 mask 255.255.255.0
  -> 198.18.2.11:80               Masq    1      12         40        
UDP  [fd00::10]:53 mh (mh-fallback,mh-port) persistent 60 mask 64
"#;
const STATS: &str = r#"IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  198.18.1.10:80                    401  8939187  8953980  830843K    1135M
  -> 198.18.2.11:80                    134  3026088  3031335  281255K  384268K
UDP  [fd00::10]:53                       0        0        0        0        0
"#;
const RATE: &str = r#"IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  198.18.1.10:80                     12      345      340    33000  150000K
  -> 198.18.2.11:80                      1        2        3        4        5
UDP  [fd00::10]:53                       0        0        0        0        0
"#;
const THRESHOLDS: &str = r#"Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  198.18.1.10:80 wlc persistent 300 mask 255.255.255.0
  -> 198.18.2.11:80               100        50         12         40        
"#;
const PERSISTENT: &str = r#"IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  198.18.1.10:80 wlc persistent 300 mask 255.255.255.0
  -> 198.18.2.11:80               1         3           12         40        
UDP  [fd00::10]:53 mh (mh-fallback,mh-port) persistent 60 mask 64
"#;
const TEMPLATES: &str = r#"IPVS connection entries
pro expire state       source             virtual            destination        pe name          pe_data
TCP 04:56  NONE        198.51.100.0:0     198.18.1.10:80     198.18.2.11:80
"#;
