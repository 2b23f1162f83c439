//! The Prometheus metrics endpoint: `GET /metrics` in the text exposition
//! format (version 0.0.4).
//!
//! Three parts, each testable alone:
//! - [`Labels`]: what the maps' ids mean (service names, VIPs, real
//!   addresses), built from the running config and the reconciler's ids. The
//!   daemon publishes a fresh one after every apply.
//! - [`read_snapshot`]: the counters, read from the pinned maps.
//! - [`render`]: a pure function from a [`Snapshot`] to the text.
//!
//! [`serve`] is a minimal HTTP/1.1 server over tokio: one request per
//! connection, a bounded request head and a read timeout.

use std::{
    fmt::Write as _,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, Result};
use aya::maps::MapError;
use lb_common::{
    GlobalCounter, REAL_ACTIVE, REAL_NEXT_HOP_KNOWN, REAL_OVERLOADED, RealConns, TrafficCounters,
};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, mpsc, oneshot, watch},
};
use tracing::{debug, warn};

use crate::{
    config::{
        Config, Protocol,
        identity::{RealIdentity, service_key},
    },
    control::{CheckStatus, LiveService, Request, Response, server::Pending},
    dataplane::{Maps, PinLayout, batch},
    reconcile::Ids,
};

/// The flow table is counted by walking it (a batch of entries per
/// syscall, see `dataplane::batch`); the walk stops here, so a scrape's
/// cost stays bounded whatever the table's size.
pub const FLOW_WALK_LIMIT: u64 = 1 << 20;

// ---------------------------------------------------------------------------
// What ids mean.

/// A service as its metrics are labelled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceLabels {
    pub id: u32,
    /// The YAML name.
    pub name: String,
    pub vip: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
}

/// A real (one destination of one service) as its metrics are labelled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealLabels {
    pub id: u32,
    pub service_id: u32,
    /// The YAML name of its service.
    pub service: String,
    pub address: SocketAddr,
    pub weight: u32,
}

/// Names for the ids in the maps, in config order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels {
    pub services: Vec<ServiceLabels>,
    pub reals: Vec<RealLabels>,
    pub flow_table_capacity: u32,
}

impl Labels {
    /// Names every service and real of `config` that `ids` has an id for
    /// (after a successful apply, all of them).
    pub fn new(config: &Config, ids: &Ids) -> Self {
        let mut labels = Labels {
            flow_table_capacity: config.dataplane.flow_table_entries,
            ..Labels::default()
        };
        for service in &config.services {
            let Some(&service_id) = ids.services.get(&service_key(service)) else {
                continue;
            };
            labels.services.push(ServiceLabels {
                id: service_id,
                name: service.name.clone(),
                vip: service.vip,
                port: service.port,
                protocol: service.protocol,
            });
            for real in &service.reals {
                let Some(&id) = ids.reals.get(&RealIdentity::new(service_id, real)) else {
                    continue;
                };
                labels.reals.push(RealLabels {
                    id,
                    service_id,
                    service: service.name.clone(),
                    address: real.endpoint(),
                    weight: real.weight,
                });
            }
        }
        labels
    }
}

// ---------------------------------------------------------------------------
// What the maps say.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealSample {
    pub labels: RealLabels,
    pub counters: TrafficCounters,
    /// The daemon knows a MAC and egress interface for it
    /// (`REAL_NEXT_HOP_KNOWN`): the stand-in for reachability until health
    /// checks exist.
    pub next_hop_resolved: bool,
    /// Over its upper connection threshold (`REAL_OVERLOADED`).
    pub overloaded: bool,
    /// Connections as the daemon last counted them (`LB_REAL_CONNS`).
    pub connections: RealConns,
}

/// Everything one scrape reports, counters summed over CPUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Every [`GlobalCounter`], in [`GlobalCounter::ALL`] order.
    pub global: Vec<(GlobalCounter, u64)>,
    pub services: Vec<(ServiceLabels, TrafficCounters)>,
    pub reals: Vec<RealSample>,
    pub flow_table_entries: u64,
    pub flow_table_capacity: u32,
}

/// Reads the counters of everything `labels` names. A real whose entry no
/// longer matches its labels (a reload between the two reads) is left out
/// of this scrape rather than reported under the wrong name.
pub fn read_snapshot(maps: &Maps, labels: &Labels) -> Result<Snapshot> {
    let mut global = Vec::with_capacity(GlobalCounter::ALL.len());
    for counter in GlobalCounter::ALL {
        let per_cpu = match maps.global_stats.get(&(counter as u32), 0) {
            Ok(per_cpu) => per_cpu,
            // Counters added since an older lbd pinned the map: the data
            // plane cannot count them there, so they are left out rather
            // than shown as zero (`lbd teardown` recreates the map).
            Err(MapError::OutOfBounds { .. }) => continue,
            Err(error) => {
                return Err(error).with_context(|| format!("reading counter {}", counter.name()));
            }
        };
        global.push((counter, per_cpu.iter().sum()));
    }
    let mut services = Vec::with_capacity(labels.services.len());
    for service in &labels.services {
        let per_cpu = maps.service_stats.get(&service.id, 0)?;
        services.push((service.clone(), per_cpu.iter().sum()));
    }
    let mut reals = Vec::with_capacity(labels.reals.len());
    for real_labels in &labels.reals {
        let entry = maps.reals.get(&real_labels.id, 0)?;
        let family = lb_common::Family::from_u8(entry.family);
        let matches = entry.flags & REAL_ACTIVE != 0
            && entry.service_id == real_labels.service_id
            && family.map(|family| entry.addr.to_ip(family)) == Some(real_labels.address.ip())
            && u16::from_be(entry.port_be) == real_labels.address.port();
        if !matches {
            continue;
        }
        let per_cpu = maps.real_stats.get(&real_labels.id, 0)?;
        reals.push(RealSample {
            labels: RealLabels {
                weight: entry.weight,
                ..real_labels.clone()
            },
            counters: per_cpu.iter().sum(),
            next_hop_resolved: entry.flags & REAL_NEXT_HOP_KNOWN != 0,
            overloaded: entry.flags & REAL_OVERLOADED != 0,
            connections: maps.real_conns.get(&real_labels.id, 0)?,
        });
    }
    let limit = FLOW_WALK_LIMIT.min(u64::from(labels.flow_table_capacity));
    let mut flow_table_entries = 0;
    for entry in batch::entries(&maps.flows) {
        entry.context("walking the flow table")?;
        flow_table_entries += 1;
        if flow_table_entries >= limit {
            break;
        }
    }
    Ok(Snapshot {
        global,
        services,
        reals,
        flow_table_entries,
        flow_table_capacity: labels.flow_table_capacity,
    })
}

/// Opens the pinned maps and reads a snapshot (blocking: one syscall per
/// value read).
pub fn scrape(pins: &PinLayout, labels: &Labels) -> Result<String> {
    let maps = Maps::open_pinned(pins)?;
    Ok(render(&read_snapshot(&maps, labels)?))
}

// ---------------------------------------------------------------------------
// The text format.

/// A sample without labels.
const NO_LABELS: &[(&str, &str)] = &[];

/// One metric family: its HELP and TYPE lines, then its samples.
struct Family<'a> {
    out: &'a mut String,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &str, kind: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, impl AsRef<str>)], value: u64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let value = escape_label_value(value.as_ref());
                let _ = write!(self.out, "{label}=\"{value}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// HELP text: backslash and line feed escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Label values: backslash, double quote and line feed escaped.
fn escape_label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One metric read off each item of a kind: its name after the prefix,
/// the start of its HELP text, and how to get its value.
struct Column<T> {
    suffix: &'static str,
    help: &'static str,
    value: fn(&T) -> u64,
}

/// An array of [`Column`]s, one `suffix: help => value;` row each.
macro_rules! columns {
    ($($suffix:literal: $help:literal => $value:expr;)+) => {
        [$(Column { suffix: $suffix, help: $help, value: $value }),+]
    };
}

/// The traffic counters, for services and reals alike.
const TRAFFIC: [Column<TrafficCounters>; 6] = columns! {
    "packets_total": "Packets balanced" => |counters| counters.packets;
    "bytes_total": "Bytes balanced (L3)" => |counters| counters.bytes;
    "connections_total": "New connections scheduled" => |counters| counters.new_connections;
    "drops_total": "Packets dropped" => |counters| counters.drops;
    "out_packets_total": "Reply packets rewritten back to the VIP (NAT; DR and TUN replies bypass the balancer)" => |counters| counters.out_packets;
    "out_bytes_total": "Reply bytes rewritten back to the VIP (NAT)" => |counters| counters.out_bytes;
};

/// The gauges of a real.
const REAL_GAUGES: [Column<RealSample>; 5] = columns! {
    "weight": "Configured weight of the real (0 takes no new connections)." => |sample| u64::from(sample.labels.weight);
    "next_hop_resolved": "1 if the real's next hop (MAC and egress interface) is resolved, 0 if not; \
               an unresolved real gets no new connections." => |sample| u64::from(sample.next_hop_resolved);
    "overloaded": "1 while the real is at its upper connection threshold (takes no new connections)." => |sample| u64::from(sample.overloaded);
    "active_connections": "Established TCP connections to the real (ipvsadm's ActiveConn)." => |sample| u64::from(sample.connections.active);
    "inactive_connections": "Other tracked connections to the real: handshakes, closing, UDP (ipvsadm's InActConn)." => |sample| u64::from(sample.connections.inactive);
};

/// Renders `snapshot` in the Prometheus text exposition format 0.0.4.
pub fn render(snapshot: &Snapshot) -> String {
    let mut out = String::new();

    let name = "lb_dataplane_packets_total";
    let mut family = Family::new(
        &mut out,
        name,
        "counter",
        "Packets seen by the XDP program, by outcome (received, forwarded, \
         pass_*, drop_* reasons and other events), summed over CPUs.",
    );
    for (counter, value) in &snapshot.global {
        family.sample(name, &[("outcome", counter.name())], *value);
    }

    let services: Vec<_> = snapshot
        .services
        .iter()
        .map(|(labels, counters)| {
            let values = vec![
                ("service", labels.name.clone()),
                ("vip", labels.vip.to_string()),
                ("port", labels.port.to_string()),
                ("protocol", labels.protocol.to_string()),
            ];
            (values, counters)
        })
        .collect();
    let per_service = ("lb_service_", "counter", " per virtual service.");
    column_families(&mut out, per_service, &TRAFFIC, &services);

    let reals: Vec<_> = snapshot
        .reals
        .iter()
        .map(|sample| {
            let real = sample.labels.address.to_string();
            let values = vec![("service", sample.labels.service.clone()), ("real", real)];
            (values, sample)
        })
        .collect();
    let traffic: Vec<_> = reals
        .iter()
        .map(|(labels, sample)| (labels.clone(), &sample.counters))
        .collect();
    let per_real = ("lb_real_", "counter", " per real server (per service).");
    column_families(&mut out, per_real, &TRAFFIC, &traffic);
    column_families(&mut out, ("lb_real_", "gauge", ""), &REAL_GAUGES, &reals);

    Family::new(
        &mut out,
        "lb_flow_table_entries",
        "gauge",
        &format!(
            "Entries in the connection table, idle ones not yet reaped included \
             (counted up to {FLOW_WALK_LIMIT})."
        ),
    )
    .sample(
        "lb_flow_table_entries",
        NO_LABELS,
        snapshot.flow_table_entries,
    );
    Family::new(
        &mut out,
        "lb_flow_table_capacity",
        "gauge",
        "Capacity of the connection table (dataplane.flow_table_entries).",
    )
    .sample(
        "lb_flow_table_capacity",
        NO_LABELS,
        u64::from(snapshot.flow_table_capacity),
    );
    out
}

/// Rates and health from the daemon loop (it answers between two of its
/// other duties).
async fn ask_live(daemon: &mpsc::Sender<Pending>) -> Result<Vec<LiveService>> {
    let (reply, answer) = oneshot::channel();
    daemon
        .send((Request::Live, reply))
        .await
        .context("the daemon loop is gone")?;
    match tokio::time::timeout(Duration::from_secs(3), answer).await {
        Ok(Ok(Response::Ok { result })) => Ok(serde_json::from_value(result)?),
        Ok(Ok(Response::Error { message, .. })) => anyhow::bail!("{message}"),
        Ok(Err(_)) => anyhow::bail!("the daemon dropped the health request"),
        Err(_) => anyhow::bail!("the daemon did not answer the health request within 3s"),
    }
}

/// Health checking's metrics: verdicts, transitions, failures by kind and
/// quorum, for probed reals and every service.
pub fn render_health(live: &[LiveService]) -> String {
    let mut out = String::new();
    let probed: Vec<(&str, String, &CheckStatus)> = live
        .iter()
        .flat_map(|service| {
            service.reals.iter().filter_map(move |real| {
                let check = real.check.as_ref()?;
                Some((service.name.as_str(), real.address.to_string(), check))
            })
        })
        .collect();
    let up = "Health checking's verdict on the real: 1 up, 0 down (probed reals only).";
    real_family(&mut out, ("lb_real_up", "gauge", up), &probed, |check| {
        vec![(None, u64::from(check.state == "up"))]
    });
    let transitions = "Verdict changes of the real since lbd started, by the state reached.";
    let name = "lb_real_health_transitions_total";
    real_family(&mut out, (name, "counter", transitions), &probed, |check| {
        let to = |state| Some(("to", state));
        vec![(to("up"), check.went_up), (to("down"), check.went_down)]
    });
    let failures = "Failed health probes of the real since lbd started, by reason.";
    let name = "lb_real_probe_failures_total";
    real_family(&mut out, (name, "counter", failures), &probed, |check| {
        let by_kind = check.failures_by_kind.iter();
        by_kind
            .map(|(reason, count)| (Some(("reason", reason.as_str())), *count))
            .collect()
    });
    let name = "lb_service_quorum";
    let mut family = Family::new(
        &mut out,
        name,
        "gauge",
        "1 while the service's healthy weight reaches its quorum, 0 while it applies on_quorum_loss.",
    );
    for service in live {
        if let Some(quorum) = &service.quorum {
            family.sample(
                name,
                &[("service", service.name.as_str())],
                u64::from(quorum.quorate),
            );
        }
    }
    out
}

/// A family per column, named `{prefix}{suffix}` with the column's HELP
/// then `help_tail`, and in each a sample per item, with the item's labels.
fn column_families<T>(
    out: &mut String,
    (prefix, kind, help_tail): (&str, &str, &str),
    columns: &[Column<T>],
    items: &[(Vec<(&str, String)>, &T)],
) {
    for column in columns {
        let name = format!("{prefix}{}", column.suffix);
        let help = format!("{}{help_tail}", column.help);
        let mut family = Family::new(out, &name, kind, &help);
        for (labels, item) in items {
            family.sample(&name, labels, (column.value)(item));
        }
    }
}

/// One family with samples of each probed real, labelled with its service
/// and address, then with the label a sample adds, if any.
fn real_family<'c>(
    out: &mut String,
    (name, kind, help): (&str, &str, &str),
    probed: &[(&str, String, &'c CheckStatus)],
    samples: impl Fn(&'c CheckStatus) -> Vec<(Option<(&'static str, &'c str)>, u64)>,
) {
    let mut family = Family::new(out, name, kind, help);
    for (service, real, check) in probed {
        for (extra, value) in samples(check) {
            let mut labels = vec![("service", *service), ("real", real.as_str())];
            labels.extend(extra);
            family.sample(name, &labels, value);
        }
    }
}

// ---------------------------------------------------------------------------
// HTTP.

/// The largest request head accepted; Prometheus sends a few hundred bytes.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// How long a client may take to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests served at once; more wait for a slot.
pub const MAX_CONNECTIONS: usize = 16;
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds the metrics listener (done before anything else, so a taken port
/// stops `lbd` before it touches the data plane).
pub async fn bind(address: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the metrics endpoint to {address} (metrics.listen)"))
}

/// Serves `GET /metrics` on `listener` until the task is dropped, reading
/// the pinned maps under `pins` and naming ids with the latest `labels`;
/// health checking's state is asked of the daemon through `daemon`.
pub async fn serve(
    listener: TcpListener,
    pins: PathBuf,
    labels: watch::Receiver<Arc<Labels>>,
    daemon: mpsc::Sender<Pending>,
) {
    let scrape = move || {
        let labels = labels.borrow().clone();
        let pins = PinLayout::new(pins.clone());
        let daemon = daemon.clone();
        async move {
            let mut text = tokio::task::spawn_blocking(move || scrape(&pins, &labels))
                .await
                .context("the scrape task failed")??;
            text.push_str(&render_health(&ask_live(&daemon).await?));
            Ok(text)
        }
    };
    serve_with(listener, READ_TIMEOUT, scrape).await
}

/// [`serve`] with the scrape and the read timeout injected (tests).
pub async fn serve_with<F, Fut>(listener: TcpListener, read_timeout: Duration, scrape: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<String>> + Send,
{
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // E.g. out of file descriptors: back off instead of spinning.
                warn!("metrics endpoint: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let scrape = scrape.clone();
        tokio::spawn(async move {
            if let Err(error) = handle(stream, read_timeout, scrape).await {
                debug!(%peer, "metrics request: {error:#}");
            }
            drop(slot);
        });
    }
}

/// Answers one request, then closes the connection.
async fn handle<F, Fut>(mut stream: TcpStream, read_timeout: Duration, scrape: F) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<String>>,
{
    let head = match tokio::time::timeout(read_timeout, read_head(&mut stream)).await {
        Ok(Ok(Some(head))) => head,
        Ok(Ok(None)) => {
            return respond(&mut stream, 431, "request head too large\n", &[]).await;
        }
        Ok(Err(error)) => return Err(error.into()),
        Err(_) => return respond(&mut stream, 408, "request timeout\n", &[]).await,
    };
    let request_line = head.lines().next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return respond(&mut stream, 400, "bad request\n", &[]).await;
    };
    if !version.starts_with("HTTP/1.") {
        return respond(&mut stream, 400, "bad request\n", &[]).await;
    }
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if path != "/metrics" {
        return respond(
            &mut stream,
            404,
            "not found; metrics are at /metrics\n",
            &[],
        )
        .await;
    }
    if method != "GET" && method != "HEAD" {
        return respond(
            &mut stream,
            405,
            "method not allowed\n",
            &[("Allow", "GET, HEAD")],
        )
        .await;
    }
    match scrape().await {
        Ok(body) => {
            let body = if method == "HEAD" { "" } else { body.as_str() };
            respond(&mut stream, 200, body, &[("Content-Type", CONTENT_TYPE)]).await
        }
        Err(error) => {
            warn!("metrics scrape failed: {error:#}");
            let body = format!("scrape failed: {error:#}\n");
            respond(&mut stream, 500, &body, &[]).await
        }
    }
}

/// Reads up to the blank line that ends the request head. `None` if it
/// does not fit in [`MAX_REQUEST_BYTES`].
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            if end > MAX_REQUEST_BYTES {
                return Ok(None);
            }
            buffer.truncate(end);
            return Ok(Some(String::from_utf8_lossy(&buffer).into_owned()));
        }
        if buffer.len() > MAX_REQUEST_BYTES + 3 {
            return Ok(None);
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    body: &str,
    headers: &[(&str, &str)],
) -> Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "Internal Server Error",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    let has_content_type = headers.iter().any(|(name, _)| *name == "Content-Type");
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if !has_content_type {
        head.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    }
    let _ = write!(
        head,
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await?;
    // Closing with unread request bytes queued would reset the connection
    // and could destroy the response in flight: read until the client
    // closes, for a moment.
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(LINGER, async {
        let mut drained = 0;
        while drained < MAX_REQUEST_BYTES * 8 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
    Ok(())
}

/// How long a finished connection waits for the client to close.
const LINGER: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests;

#[cfg(test)]
mod health_tests;
