//! ipvsadm-compatible listings (`-L -n`, `--stats`), read from the maps.
//! Formats follow ipvsadm 1.31 to the byte so scripts that parse
//! `ipvsadm -L -n` keep working.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use anyhow::Result;
use lb_common::{
    ConnectionState, Family, ForwardingMethod, REAL_ACTIVE, Real, Scheduler, ServiceKey, Settings,
    TrafficCounters, capacity, proto,
};

use crate::dataplane::{Maps, monotonic_now_ns};

/// One destination as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealRow {
    pub address: SocketAddr,
    pub forwarding: ForwardingMethod,
    pub weight: u32,
    pub active_connections: u64,
    pub inactive_connections: u64,
    pub stats: TrafficCounters,
}

/// One virtual service and its destinations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRow {
    pub protocol: u8,
    pub address: SocketAddr,
    pub scheduler: &'static str,
    pub stats: TrafficCounters,
    pub reals: Vec<RealRow>,
}

/// A flow counts as active while it has seen a packet this recently; older
/// entries linger in the LRU until evicted and count as inactive.
pub const ACTIVE_FLOW_WINDOW: Duration = Duration::from_secs(60);

/// Collects every service, sorted like ipvsadm (by protocol, then address).
pub fn collect(maps: &Maps) -> Result<Vec<ServiceRow>> {
    let now_ns = monotonic_now_ns();
    let (active, inactive) = flow_counts(maps, now_ns)?;
    let mut reals_by_service: BTreeMap<u32, Vec<(u32, Real)>> = BTreeMap::new();
    for id in 1..capacity::MAX_REALS {
        let real = maps.reals.get(&id, 0)?;
        if real.flags & REAL_ACTIVE != 0 {
            reals_by_service
                .entry(real.service_id)
                .or_default()
                .push((id, real));
        }
    }
    let mut rows = Vec::new();
    for entry in maps.services.iter() {
        let (key, service) = entry?;
        let reals = reals_by_service
            .remove(&service.id)
            .unwrap_or_default()
            .into_iter()
            .map(|(id, real)| -> Result<RealRow> {
                let family = Family::from_u8(real.family).unwrap_or(Family::V4);
                Ok(RealRow {
                    address: SocketAddr::new(real.addr.to_ip(family), u16::from_be(real.port_be)),
                    forwarding: ForwardingMethod::from_u8(real.forwarding)
                        .unwrap_or(ForwardingMethod::DirectRouting),
                    weight: real.weight,
                    active_connections: active.get(&id).copied().unwrap_or(0),
                    inactive_connections: inactive.get(&id).copied().unwrap_or(0),
                    stats: sum(maps.real_stats.get(&id, 0)?.iter()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        rows.push(ServiceRow {
            protocol: key.protocol,
            address: service_address(&key),
            scheduler: Scheduler::from_u8(service.scheduler).map_or("?", Scheduler::name),
            stats: sum(maps.service_stats.get(&service.id, 0)?.iter()),
            reals,
        });
    }
    rows.sort_by_key(|row| (row.protocol, row.address));
    for row in &mut rows {
        row.reals.sort_by_key(|real| real.address);
    }
    Ok(rows)
}

fn service_address(key: &ServiceKey) -> SocketAddr {
    let family = Family::from_u8(key.family).unwrap_or(Family::V4);
    SocketAddr::new(key.addr.to_ip(family), u16::from_be(key.port_be))
}

fn sum<'a>(per_cpu: impl Iterator<Item = &'a TrafficCounters>) -> TrafficCounters {
    let mut total = TrafficCounters::default();
    for counters in per_cpu {
        total.add(counters);
    }
    total
}

fn flow_counts(maps: &Maps, now_ns: u64) -> Result<(BTreeMap<u32, u64>, BTreeMap<u32, u64>)> {
    let mut active = BTreeMap::new();
    let mut inactive = BTreeMap::new();
    let window = ACTIVE_FLOW_WINDOW.as_nanos() as u64;
    for entry in maps.flows.iter() {
        let (_, flow) = entry?;
        let bucket = if now_ns.saturating_sub(flow.last_seen_ns) <= window {
            &mut active
        } else {
            &mut inactive
        };
        *bucket.entry(flow.real_id).or_insert(0) += 1;
    }
    Ok((active, inactive))
}

const VERSION_LINE: &str = "IP Virtual Server version 1.2.1";

fn protocol_name(protocol: u8) -> &'static str {
    match protocol {
        proto::TCP => "TCP",
        proto::UDP => "UDP",
        _ => "???",
    }
}

/// `addr:port`, IPv6 in brackets, as ipvsadm prints with `-n`.
fn endpoint(address: &SocketAddr) -> String {
    match address.ip() {
        IpAddr::V4(v4) => format!("{v4}:{}", address.port()),
        IpAddr::V6(v6) => format!("[{v6}]:{}", address.port()),
    }
}

fn forward_name(method: ForwardingMethod) -> &'static str {
    match method {
        ForwardingMethod::DirectRouting => "Route",
        ForwardingMethod::Tunnel => "Tunnel",
        ForwardingMethod::Masquerade => "Masq",
    }
}

/// `ipvsadm -L -n`.
pub fn render_list(rows: &[ServiceRow], table_size: u32) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{VERSION_LINE} (size={table_size})");
    out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
    out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
    for row in rows {
        let _ = writeln!(
            out,
            "{:<4} {} {}",
            protocol_name(row.protocol),
            endpoint(&row.address),
            row.scheduler
        );
        for real in &row.reals {
            let _ = writeln!(
                out,
                "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
                endpoint(&real.address),
                forward_name(real.forwarding),
                real.weight,
                real.active_connections,
                real.inactive_connections
            );
        }
    }
    out
}

/// `ipvsadm -L -n --stats` (`exact` = `--exact`).
pub fn render_stats(rows: &[ServiceRow], table_size: u32, exact: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{VERSION_LINE} (size={table_size})");
    out.push_str(
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
    );
    out.push_str("  -> RemoteAddress:Port\n");
    let line = |out: &mut String, name: String, stats: &TrafficCounters| {
        let _ = write!(out, "{name:<33}");
        // The balancer sees no replies in DR, so Out* stay 0, as in IPVS.
        for value in [stats.new_connections, stats.packets, 0, stats.bytes, 0] {
            out.push_str(&large_number(value, exact));
        }
        out.push('\n');
    };
    for row in rows {
        let name = format!(
            "{:<4} {}",
            protocol_name(row.protocol),
            endpoint(&row.address)
        );
        line(&mut out, name, &row.stats);
        for real in &row.reals {
            line(
                &mut out,
                format!("  -> {}", endpoint(&real.address)),
                &real.stats,
            );
        }
    }
    out
}

/// One connection as `ipvsadm -L -n -c` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionRow {
    pub protocol: u8,
    /// Seconds until the entry expires if idle.
    pub expires_in: u64,
    pub state: &'static str,
    pub source: SocketAddr,
    pub virtual_address: SocketAddr,
    pub destination: SocketAddr,
}

/// Every flow that has not expired, from the flow table.
pub fn collect_connections(maps: &Maps) -> Result<Vec<ConnectionRow>> {
    let settings = maps.settings.get(&0, 0).unwrap_or_default();
    let now_ns = monotonic_now_ns();
    let mut rows = Vec::new();
    for entry in maps.flows.iter() {
        // An entry evicted during the walk ends it early; the rest is shown.
        let Ok((key, flow)) = entry else { break };
        let idle_ns = now_ns.saturating_sub(flow.last_seen_ns);
        let Some(left_ns) = settings.for_state_ns(flow.state).checked_sub(idle_ns) else {
            continue;
        };
        let Ok(real) = maps.reals.get(&flow.real_id, 0) else {
            continue;
        };
        let family = Family::from_u8(key.family).unwrap_or(Family::V4);
        let endpoint = |addr: &lb_common::Addr, port_be: u16| {
            SocketAddr::new(addr.to_ip(family), u16::from_be(port_be))
        };
        let real_family = Family::from_u8(real.family).unwrap_or(family);
        let real_port = if real.port_be == 0 {
            key.dst_port
        } else {
            real.port_be
        };
        rows.push(ConnectionRow {
            protocol: key.protocol,
            expires_in: left_ns.div_ceil(1_000_000_000),
            state: ConnectionState::from_u8(flow.state).map_or("NONE", ConnectionState::name),
            source: endpoint(&key.src, key.src_port),
            virtual_address: endpoint(&key.dst, key.dst_port),
            destination: SocketAddr::new(real.addr.to_ip(real_family), u16::from_be(real_port)),
        });
    }
    rows.sort_by_key(|row| (row.protocol, row.virtual_address, row.source));
    Ok(rows)
}

/// `ipvsadm -L -n -c`.
pub fn render_connections(rows: &[ConnectionRow]) -> String {
    let mut out = String::from(
        "IPVS connection entries\npro expire state       source             virtual            destination\n",
    );
    for row in rows {
        let expire = format!("{:02}:{:02}", row.expires_in / 60, row.expires_in % 60);
        let _ = writeln!(
            out,
            "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
            protocol_name(row.protocol),
            expire,
            row.state,
            endpoint(&row.source),
            endpoint(&row.virtual_address),
            endpoint(&row.destination)
        );
    }
    out
}

/// `ipvsadm -L --timeout`.
pub fn render_timeouts(settings: &Settings) -> String {
    let seconds = |state: ConnectionState| settings.for_state_ns(state as u8) / 1_000_000_000;
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        seconds(ConnectionState::TcpEstablished),
        seconds(ConnectionState::TcpClosing),
        seconds(ConnectionState::Udp)
    )
}

/// The service table as JSON (`lbadm -L -o json`), with the counters.
pub fn services_json(rows: &[ServiceRow]) -> serde_json::Value {
    let counters = |stats: &TrafficCounters| {
        serde_json::json!({
            "connections": stats.new_connections,
            "packets": stats.packets,
            "bytes": stats.bytes,
            "drops": stats.drops,
        })
    };
    serde_json::Value::Array(
        rows.iter()
            .map(|row| {
                serde_json::json!({
                    "protocol": protocol_name(row.protocol),
                    "address": row.address,
                    "scheduler": row.scheduler,
                    "stats": counters(&row.stats),
                    "reals": row.reals.iter().map(|real| serde_json::json!({
                        "address": real.address,
                        "forward": forward_name(real.forwarding),
                        "weight": real.weight,
                        "active_connections": real.active_connections,
                        "inactive_connections": real.inactive_connections,
                        "stats": counters(&real.stats),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// The connection entries as JSON (`lbadm -L -c -o json`).
pub fn connections_json(rows: &[ConnectionRow]) -> serde_json::Value {
    serde_json::Value::Array(
        rows.iter()
            .map(|row| {
                serde_json::json!({
                    "protocol": protocol_name(row.protocol),
                    "expires_in_seconds": row.expires_in,
                    "state": row.state,
                    "source": row.source,
                    "virtual": row.virtual_address,
                    "destination": row.destination,
                })
            })
            .collect(),
    )
}

/// ipvsadm's `print_largenum`: width 9, scaled by 1000s from 10^8 upward.
pub fn large_number(value: u64, exact: bool) -> String {
    if exact {
        let digits = value.to_string();
        let width = if digits.len() <= 8 {
            9
        } else {
            digits.len() + 1
        };
        return format!("{value:>width$}");
    }
    match value {
        v if v < 100_000_000 => format!("{v:>9}"),
        v if v < 1_000_000_000 => format!("{:>8}K", v / 1_000),
        v if v < 100_000_000_000 => format!("{:>8}M", v / 1_000_000),
        v if v < 100_000_000_000_000 => format!("{:>8}G", v / 1_000_000_000),
        v => format!("{:>8}T", v / 1_000_000_000_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<ServiceRow> {
        let stats = |c, p, b| TrafficCounters {
            packets: p,
            bytes: b,
            new_connections: c,
            ..TrafficCounters::default()
        };
        vec![
            ServiceRow {
                protocol: proto::TCP,
                address: "198.18.1.10:80".parse().unwrap(),
                scheduler: "mh",
                stats: stats(401, 8_939_187, 830_843_123),
                reals: vec![RealRow {
                    address: "198.18.2.11:80".parse().unwrap(),
                    forwarding: ForwardingMethod::DirectRouting,
                    weight: 1,
                    active_connections: 12,
                    inactive_connections: 40,
                    stats: stats(134, 3_026_088, 281_255_999),
                }],
            },
            ServiceRow {
                protocol: proto::UDP,
                address: "[fd00::10]:53".parse().unwrap(),
                scheduler: "mh",
                stats: stats(0, 0, 1_135_000_001),
                reals: vec![],
            },
        ]
    }

    #[test]
    fn list_matches_ipvsadm_layout() {
        let expected = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.18.1.10:80 mh
  -> 198.18.2.11:80               Route   1      12         40        
UDP  [fd00::10]:53 mh
";
        assert_eq!(render_list(&sample(), 4096), expected);
    }

    #[test]
    fn stats_match_ipvsadm_layout_and_scaling() {
        let expected = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  198.18.1.10:80                    401  8939187        0  830843K        0
  -> 198.18.2.11:80                    134  3026088        0  281255K        0
UDP  [fd00::10]:53                       0        0        0    1135M        0
";
        assert_eq!(render_stats(&sample(), 4096, false), expected);
    }

    #[test]
    fn connections_match_ipvsadm_layout() {
        let rows = vec![
            ConnectionRow {
                protocol: proto::TCP,
                expires_in: 895,
                state: "ESTABLISHED",
                source: "198.51.100.7:51922".parse().unwrap(),
                virtual_address: "198.18.1.10:80".parse().unwrap(),
                destination: "198.18.2.11:8000".parse().unwrap(),
            },
            ConnectionRow {
                protocol: proto::UDP,
                expires_in: 299,
                state: "UDP",
                source: "[fd00:c::9]:40113".parse().unwrap(),
                virtual_address: "[fd00::10]:53".parse().unwrap(),
                destination: "[fd00:2::21]:53".parse().unwrap(),
            },
        ];
        let expected = "\
IPVS connection entries
pro expire state       source             virtual            destination
TCP 14:55  ESTABLISHED 198.51.100.7:51922 198.18.1.10:80     198.18.2.11:8000
UDP 04:59  UDP         [fd00:c::9]:40113  [fd00::10]:53      [fd00:2::21]:53
";
        assert_eq!(render_connections(&rows), expected);
        let json = connections_json(&rows);
        assert_eq!(json[0]["state"], "ESTABLISHED");
        assert_eq!(json[1]["destination"], "[fd00:2::21]:53");
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
    fn service_json_carries_reals_and_counters() {
        let json = services_json(&sample());
        assert_eq!(json[0]["address"], "198.18.1.10:80");
        assert_eq!(json[0]["reals"][0]["forward"], "Route");
        assert_eq!(json[0]["reals"][0]["stats"]["packets"], 3_026_088);
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
}
