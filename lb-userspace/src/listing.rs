//! ipvsadm-compatible listings, read from the pinned maps (so they work
//! while the daemon restarts); rates and health, which only the daemon
//! knows, are merged in when it answers. Formats follow ipvsadm 1.31 to the
//! byte so scripts that parse `ipvsadm -L -n` keep working.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, SocketAddr},
};

use anyhow::Result;
use lb_common::{
    ConnectionState, Family, ForwardingMethod, REAL_ACTIVE, REAL_DOWN, Real, SCHED_FLAG_FALLBACK,
    SCHED_FLAG_PORT, Scheduler, Service, ServiceKey, Settings, TrafficCounters, proto,
};

use crate::{
    control::{CheckStatus, Health, LiveService, QuorumStatus},
    dataplane::{Maps, batch, monotonic_now_ns},
    estimator::Rates,
    reaper,
};

/// One destination as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealRow {
    pub address: SocketAddr,
    pub forwarding: ForwardingMethod,
    pub weight: u32,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
    pub active_connections: u64,
    pub inactive_connections: u64,
    /// Live persistence templates pointing at this real.
    pub persistent_connections: u64,
    pub stats: TrafficCounters,
    /// From the daemon; zero when it did not answer.
    pub rates: Rates,
    /// From the daemon; `None` when it did not answer.
    pub health: Option<Health>,
    /// Taken out by health checks (`REAL_DOWN`): keepalived would have
    /// removed it from IPVS, so ipvsadm's views leave it out.
    pub down: bool,
    /// From the daemon; `None` when not probed or it did not answer.
    pub check: Option<CheckStatus>,
    /// The service's sorry server (from the daemon).
    pub sorry_server: bool,
}

impl RealRow {
    /// The daemon's word on the real's health; without one, a real the
    /// maps flag as failed is still shown down.
    fn shown_health(&self) -> Option<Health> {
        self.health.or(self.down.then_some(Health::Down))
    }
}

/// Client persistence as listed: timeout and prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Persistence {
    pub timeout: u32,
    pub prefix: u8,
}

/// One virtual service and its destinations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRow {
    pub protocol: u8,
    pub address: SocketAddr,
    pub scheduler: Scheduler,
    /// `SCHED_FLAG_*` bits.
    pub sched_flags: u8,
    pub persistence: Option<Persistence>,
    pub stats: TrafficCounters,
    pub rates: Rates,
    /// From the daemon.
    pub quorum: Option<QuorumStatus>,
    pub reals: Vec<RealRow>,
}

/// Which of ipvsadm's service listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// `-L -n`.
    Plain,
    /// `--stats`.
    Stats,
    /// `--rate`.
    Rate,
    /// `--thresholds`.
    Thresholds,
    /// `--persistent-conn`.
    PersistentConn,
    /// lbadm's `--health`: each real's checks and verdict, failed reals
    /// included.
    Health,
}

/// How to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub view: View,
    /// `--exact`: counters unscaled.
    pub exact: bool,
    /// ipvsadm prints the version line only when listing every service.
    pub version_line: bool,
}

/// Collects every service. `sorted` orders them like ipvsadm (protocol,
/// address, port; reals by address and port); otherwise they come in the
/// data plane's order (`--nosort`).
pub fn collect(maps: &Maps, sorted: bool) -> Result<Vec<ServiceRow>> {
    let settings = maps.settings.get(&0, 0).unwrap_or_default();
    let now_ns = monotonic_now_ns();
    let connections = reaper::count_connections(maps, &settings, now_ns);
    let templates = template_counts(maps, now_ns)?;
    let mut reals_by_service: BTreeMap<u32, Vec<(u32, Real)>> = BTreeMap::new();
    // The array's length is the id space `max_reals` gave it.
    for id in 1..maps.reals.len() {
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
                let conns = connections.get(&id).copied().unwrap_or_default();
                Ok(RealRow {
                    address: SocketAddr::new(real.addr.to_ip(family), u16::from_be(real.port_be)),
                    forwarding: ForwardingMethod::from_u8(real.forwarding)
                        .unwrap_or(ForwardingMethod::DirectRouting),
                    weight: real.weight,
                    upper_threshold: real.upper_threshold,
                    lower_threshold: real.lower_threshold,
                    active_connections: u64::from(conns.active),
                    inactive_connections: u64::from(conns.inactive),
                    persistent_connections: templates.get(&id).copied().unwrap_or(0),
                    stats: maps.real_stats.get(&id, 0)?.iter().sum(),
                    rates: Rates::default(),
                    health: None,
                    down: real.flags & REAL_DOWN != 0,
                    check: None,
                    sorry_server: false,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        rows.push(service_row(
            &key,
            &service,
            maps.service_stats.get(&service.id, 0)?.iter().sum(),
            reals,
        ));
    }
    if sorted {
        rows.sort_by_key(|row| (row.protocol, row.address.ip(), row.address.port()));
        for row in &mut rows {
            row.reals
                .sort_by_key(|real| (real.address.ip(), real.address.port()));
        }
    }
    Ok(rows)
}

fn service_row(
    key: &ServiceKey,
    service: &Service,
    stats: TrafficCounters,
    reals: Vec<RealRow>,
) -> ServiceRow {
    ServiceRow {
        protocol: key.protocol,
        address: service_address(key),
        scheduler: Scheduler::from_u8(service.scheduler).unwrap_or(Scheduler::Maglev),
        sched_flags: service.sched_flags,
        persistence: (service.persistence_timeout != 0).then_some(Persistence {
            timeout: service.persistence_timeout,
            prefix: service.persistence_prefix,
        }),
        stats,
        rates: Rates::default(),
        quorum: None,
        reals,
    }
}

/// Live persistence templates per real id.
fn template_counts(maps: &Maps, now_ns: u64) -> Result<HashMap<u32, u64>> {
    let timeouts = reaper::persistence_timeouts(maps);
    let mut counts = HashMap::new();
    for entry in batch::entries(&maps.persist) {
        let Ok((key, template)) = entry else { break };
        let Some(&timeout) = timeouts.get(&key.service_id) else {
            continue;
        };
        if template_left_ns(template.last_seen_ns, timeout, now_ns).is_some() {
            *counts.entry(template.real_id).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

fn template_left_ns(last_seen_ns: u64, timeout_seconds: u32, now_ns: u64) -> Option<u64> {
    let idle = now_ns.saturating_sub(last_seen_ns);
    (u64::from(timeout_seconds) * 1_000_000_000)
        .checked_sub(idle)
        .filter(|left| *left > 0)
}

/// Merges what only the daemon knows: rates and health.
pub fn merge_live(rows: &mut [ServiceRow], live: &[LiveService]) {
    for row in rows {
        let protocol = protocol_name(row.protocol);
        let Some(service) = live
            .iter()
            .find(|service| service.address == row.address && service.protocol == protocol)
        else {
            continue;
        };
        row.rates = service.rates;
        row.quorum = service.quorum.clone();
        for real in &mut row.reals {
            if let Some(found) = service.reals.iter().find(|r| r.address == real.address) {
                real.rates = found.rates;
                real.health = Some(found.health);
                real.check = found.check.clone();
                real.sorry_server = found.sorry_server;
            }
        }
    }
}

fn service_address(key: &ServiceKey) -> SocketAddr {
    let family = Family::from_u8(key.family).unwrap_or(Family::V4);
    SocketAddr::new(key.addr.to_ip(family), u16::from_be(key.port_be))
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

/// ipvsadm's `print_sched_flags`: named for sh and mh, numbered otherwise.
fn sched_flags_text(scheduler: Scheduler, flags: u8) -> Option<String> {
    let prefix = match scheduler {
        Scheduler::SourceHash => "sh",
        Scheduler::Maglev => "mh",
        _ => "",
    };
    let names: Vec<String> = [
        (SCHED_FLAG_FALLBACK, "fallback", 1),
        (SCHED_FLAG_PORT, "port", 2),
    ]
    .into_iter()
    .filter(|(bit, _, _)| flags & bit != 0)
    .map(|(_, name, number)| {
        if prefix.is_empty() {
            format!("flag-{number}")
        } else {
            format!("{prefix}-{name}")
        }
    })
    .collect();
    (!names.is_empty()).then(|| names.join(","))
}

/// ipvsadm's mask: dotted for IPv4, a prefix length for IPv6; `None` for
/// the whole address (not printed).
pub fn mask_text(vip: IpAddr, prefix: u8) -> Option<String> {
    match vip {
        IpAddr::V4(_) if prefix < 32 => {
            let bits = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            Some(Ipv4Addr::from(bits).to_string())
        }
        IpAddr::V6(_) if prefix < 128 => Some(prefix.to_string()),
        _ => None,
    }
}

/// The header lines of a view.
fn title(view: View) -> &'static str {
    match view {
        View::Plain => {
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        }
        View::Stats => {
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n"
        }
        View::Rate => {
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n  -> RemoteAddress:Port\n"
        }
        View::Thresholds => {
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n  -> RemoteAddress:Port\n"
        }
        View::PersistentConn => {
            "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n  -> RemoteAddress:Port\n"
        }
        View::Health => {
            "Prot LocalAddress:Port Quorum\n  -> RemoteAddress:Port           Health      Check  Since    Last failure\n"
        }
    }
}

/// A service listing in ipvsadm's layout.
pub fn render(rows: &[ServiceRow], table_size: u32, layout: Layout) -> String {
    let mut out = String::new();
    if layout.version_line {
        let _ = writeln!(out, "{VERSION_LINE} (size={table_size})");
    }
    out.push_str(title(layout.view));
    for row in rows {
        service_line(&mut out, row, layout);
        for real in &row.reals {
            if layout.view == View::Health {
                health_line(&mut out, real);
            } else if !real.down {
                real_line(&mut out, real, layout);
            }
        }
    }
    out
}

fn health_line(out: &mut String, real: &RealRow) {
    // Spelled as in the JSON listing (serde's names).
    let health = real
        .shown_health()
        .and_then(|health| serde_json::to_value(health).ok())
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| "-".to_owned());
    let (kind, since, failure) = match &real.check {
        Some(check) => (
            check.kind.as_str(),
            format!("{}s", check.seconds_in_state),
            check.last_failure.clone().unwrap_or_default(),
        ),
        None if real.sorry_server => ("-", "-".to_owned(), "(sorry server)".to_owned()),
        None => ("none", "-".to_owned(), String::new()),
    };
    let line = format!(
        "  -> {:<28} {:<11} {:<6} {:<8} {}",
        endpoint(&real.address),
        health,
        kind,
        since,
        failure
    );
    let _ = writeln!(out, "{}", line.trim_end());
}

fn service_line(out: &mut String, row: &ServiceRow, layout: Layout) {
    let name = format!(
        "{:<4} {}",
        protocol_name(row.protocol),
        endpoint(&row.address)
    );
    match layout.view {
        View::Health => {
            let quorum = match &row.quorum {
                Some(q) if q.quorate => format!("ok ({}/{})", q.healthy_weight, q.quorum),
                Some(q) => format!(
                    "lost ({}/{}, {})",
                    q.healthy_weight, q.quorum, q.on_quorum_loss
                ),
                None => "-".to_owned(),
            };
            let _ = writeln!(out, "{name} {quorum}");
        }
        View::Stats => counters_line(out, &name, &stats_columns(&row.stats), layout.exact),
        View::Rate => counters_line(out, &name, &rate_columns(&row.rates), layout.exact),
        _ => {
            let _ = write!(out, "{name} {}", row.scheduler.name());
            if let Some(flags) = sched_flags_text(row.scheduler, row.sched_flags) {
                let _ = write!(out, " ({flags})");
            }
            if let Some(persistence) = row.persistence {
                let _ = write!(out, " persistent {}", persistence.timeout);
                if let Some(mask) = mask_text(row.address.ip(), persistence.prefix) {
                    let _ = write!(out, " mask {mask}");
                }
            }
            out.push('\n');
        }
    }
}

fn real_line(out: &mut String, real: &RealRow, layout: Layout) {
    let name = endpoint(&real.address);
    let _ = match layout.view {
        View::Plain => writeln!(
            out,
            "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
            name,
            forward_name(real.forwarding),
            real.weight,
            real.active_connections,
            real.inactive_connections
        ),
        View::Stats => {
            counters_line(
                out,
                &format!("  -> {name}"),
                &stats_columns(&real.stats),
                layout.exact,
            );
            Ok(())
        }
        View::Rate => {
            // ipvsadm prints the per-real CPS and PPS unscaled (%8u).
            let rates = &real.rates;
            let _ = write!(
                out,
                "  -> {:<28} {:>8} {:>8} {:>8}",
                name, rates.cps, rates.in_pps, rates.out_pps
            );
            out.push_str(&large_number(rates.in_bps, layout.exact));
            out.push_str(&large_number(rates.out_bps, layout.exact));
            out.push('\n');
            Ok(())
        }
        View::Thresholds => writeln!(
            out,
            "  -> {:<28} {:<10} {:<10} {:<10} {:<10}",
            name,
            real.upper_threshold,
            real.lower_threshold,
            real.active_connections,
            real.inactive_connections
        ),
        View::PersistentConn => writeln!(
            out,
            "  -> {:<28} {:<9} {:<11} {:<10} {:<10}",
            name,
            real.weight,
            real.persistent_connections,
            real.active_connections,
            real.inactive_connections
        ),
        View::Health => Ok(()),
    };
}

fn stats_columns(stats: &TrafficCounters) -> [u64; 5] {
    [
        stats.new_connections,
        stats.packets,
        stats.out_packets,
        stats.bytes,
        stats.out_bytes,
    ]
}

fn rate_columns(rates: &Rates) -> [u64; 5] {
    [
        rates.cps,
        rates.in_pps,
        rates.out_pps,
        rates.in_bps,
        rates.out_bps,
    ]
}

fn counters_line(out: &mut String, name: &str, values: &[u64; 5], exact: bool) {
    let _ = write!(out, "{name:<33}");
    for value in values {
        out.push_str(&large_number(*value, exact));
    }
    out.push('\n');
}

/// One connection entry as `ipvsadm -L -n -c` shows it: a tracked flow or
/// a persistence template (state `NONE`, client port 0).
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

/// Every flow and template that has not expired.
pub fn collect_connections(maps: &Maps) -> Result<Vec<ConnectionRow>> {
    let settings = maps.settings.get(&0, 0).unwrap_or_default();
    let now_ns = monotonic_now_ns();
    let mut rows = Vec::new();
    for entry in batch::entries(&maps.flows) {
        // A batch the kernel refuses ends the walk early; the rest is shown.
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
            destination: real_address(&real, real_port),
        });
    }
    rows.extend(template_rows(maps, now_ns)?);
    rows.sort_by_key(|row| (row.protocol, row.virtual_address, row.source));
    Ok(rows)
}

fn real_address(real: &Real, port_be: u16) -> SocketAddr {
    let family = Family::from_u8(real.family).unwrap_or(Family::V4);
    SocketAddr::new(real.addr.to_ip(family), u16::from_be(port_be))
}

/// Persistence templates, listed as IPVS lists its templates.
fn template_rows(maps: &Maps, now_ns: u64) -> Result<Vec<ConnectionRow>> {
    let mut services: HashMap<u32, (ServiceKey, u32)> = HashMap::new();
    for entry in maps.services.iter() {
        let (key, service) = entry?;
        if service.persistence_timeout != 0 {
            services.insert(service.id, (key, service.persistence_timeout));
        }
    }
    let mut rows = Vec::new();
    for entry in batch::entries(&maps.persist) {
        let Ok((key, template)) = entry else { break };
        let Some((service_key, timeout)) = services.get(&key.service_id) else {
            continue;
        };
        let Some(left_ns) = template_left_ns(template.last_seen_ns, *timeout, now_ns) else {
            continue;
        };
        let Ok(real) = maps.reals.get(&template.real_id, 0) else {
            continue;
        };
        let family = Family::from_u8(service_key.family).unwrap_or(Family::V4);
        rows.push(ConnectionRow {
            protocol: service_key.protocol,
            expires_in: left_ns.div_ceil(1_000_000_000),
            state: "NONE",
            source: SocketAddr::new(key.client.to_ip(family), 0),
            virtual_address: service_address(service_key),
            destination: real_address(&real, real.port_be),
        });
    }
    Ok(rows)
}

/// `ipvsadm -L -n -c` (`persistent_conn` adds the persistence-engine
/// columns to the header; no entry carries engine data here).
pub fn render_connections(rows: &[ConnectionRow], persistent_conn: bool) -> String {
    let mut out = String::from("IPVS connection entries\n");
    if persistent_conn {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        );
    } else {
        out.push_str("pro expire state       source             virtual            destination\n");
    }
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

/// The service table as JSON (`lbadm -L -o json`): everything the text
/// views show, plus rates and each real's health when the daemon answered.
pub fn services_json(rows: &[ServiceRow]) -> serde_json::Value {
    let counters = |stats: &TrafficCounters| {
        serde_json::json!({
            "connections": stats.new_connections,
            "packets": stats.packets,
            "bytes": stats.bytes,
            "out_packets": stats.out_packets,
            "out_bytes": stats.out_bytes,
            "drops": stats.drops,
        })
    };
    serde_json::Value::Array(
        rows.iter()
            .map(|row| {
                serde_json::json!({
                    "protocol": protocol_name(row.protocol),
                    "address": row.address,
                    "scheduler": row.scheduler.name(),
                    "flags": sched_flags_text(row.scheduler, row.sched_flags)
                        .map(|flags| flags.split(',').map(str::to_owned).collect::<Vec<_>>())
                        .unwrap_or_default(),
                    "persistence": row.persistence.map(|p| serde_json::json!({
                        "timeout": p.timeout,
                        "prefix": p.prefix,
                    })),
                    "stats": counters(&row.stats),
                    "rates": row.rates,
                    "quorum": row.quorum,
                    "reals": row.reals.iter().map(|real| serde_json::json!({
                        "address": real.address,
                        "forward": forward_name(real.forwarding),
                        "weight": real.weight,
                        "upper_threshold": real.upper_threshold,
                        "lower_threshold": real.lower_threshold,
                        "active_connections": real.active_connections,
                        "inactive_connections": real.inactive_connections,
                        "persistent_connections": real.persistent_connections,
                        "health": real.shown_health(),
                        "check": real.check,
                        "sorry_server": real.sorry_server,
                        "stats": counters(&real.stats),
                        "rates": real.rates,
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
mod tests;
