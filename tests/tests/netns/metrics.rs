//! The Prometheus endpoint of the real `lbd` in a DR rig: traffic through
//! the VIPs shows up per real, per service and per data-plane outcome.
//! Needs root; under CI it must run, never skip.

use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use anyhow::{Context as _, Result, bail, ensure};
use lb_tests::{
    require_root,
    rig::{HTTP_PORT, Mode, Rig},
    traffic,
};

const METRICS: &str = "127.0.0.1:9105";

/// One HTTP request to the metrics endpoint from inside the balancer
/// namespace (lbd's loopback); the status line, the head and the body.
fn request(rig: &Rig, path: &str) -> Result<(String, String, String)> {
    let response = rig.balancer.enter(|| {
        let address: SocketAddr = METRICS.parse()?;
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(3))
            .with_context(|| format!("connecting to {address}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {METRICS}\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    })?;
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        bail!("malformed response: {response:?}");
    };
    let status = head.lines().next().unwrap_or_default().to_owned();
    Ok((status, head.to_owned(), body.to_owned()))
}

/// A sample line: `name{label="value",...} value`, or `name value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse_labels(text: &str) -> Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once("=\"")
            .with_context(|| format!("no `=\"` in labels {text:?}"))?;
        ensure!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad label name {name:?} in {text:?}"
        );
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => bail!("bad escape {other:?} in {text:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => bail!("unterminated label value in {text:?}"),
            }
        };
        labels.insert(name.to_owned(), value);
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    Ok(labels)
}

/// Parses the exposition text: every line a comment (`# HELP`/`# TYPE`) or
/// a sample, every sample's family declared by a TYPE line before it.
fn parse(text: &str) -> Result<Vec<Sample>> {
    let mut typed = Vec::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("TYPE"), Some(name), Some("counter" | "gauge")) => {
                    typed.push(name.to_owned())
                }
                (Some("HELP"), Some(_), Some(_)) => {}
                _ => bail!("unexpected comment line {line:?}"),
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .with_context(|| format!("no value in {line:?}"))?;
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels
                    .strip_suffix('}')
                    .with_context(|| format!("unclosed labels in {line:?}"))?;
                (name, parse_labels(labels)?)
            }
            None => (series, BTreeMap::new()),
        };
        ensure!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        ensure!(
            typed.iter().any(|t| t == name),
            "{name} has no TYPE line before {line:?}"
        );
        let value: f64 = value
            .parse()
            .with_context(|| format!("bad value in {line:?}"))?;
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    Ok(samples)
}

/// The value of the one sample named `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Result<f64> {
    let matching: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    match matching.as_slice() {
        [one] => Ok(one.value),
        _ => bail!(
            "{} samples of {name} with {labels:?}: {matching:?}",
            matching.len()
        ),
    }
}

#[test]
fn metrics_endpoint_counts_traffic_per_real_and_per_outcome() -> Result<()> {
    if !require_root("metrics_endpoint_counts_traffic_per_real_and_per_outcome") {
        return Ok(());
    }
    let mut rig = Rig::build(Mode::Dr, &[1, 1])?;
    rig.write_config_with(
        &rig.all_reals(),
        &format!("metrics: {{ listen: \"{METRICS}\" }}\n"),
    )?;
    rig.start_lbd()?;
    connections_reach_every_real(&rig)?;
    let (samples, body) = scrape(&rig)?;
    packets_are_counted_per_outcome(&samples, &body)?;
    services_and_reals_are_counted(&rig, &samples, &body)?;
    let (status, _, _) = request(&rig, "/")?;
    ensure!(status == "HTTP/1.1 404 Not Found", "{status}");
    a_new_address_needs_a_restart(&mut rig)
}

/// Sixty connections over each family reach every real.
fn connections_reach_every_real(rig: &Rig) -> Result<()> {
    let v4 = traffic::http_get_from_ports(&rig.client, rig.vip4(HTTP_PORT), 44_000..44_060)?;
    let v6 = traffic::http_get_from_ports(&rig.client, rig.vip6(HTTP_PORT), 45_000..45_060)?;
    for real in &rig.reals {
        ensure!(
            v4.contains_key(&real.name) && v6.contains_key(&real.name),
            "{} got no connection: {v4:?} {v6:?}",
            real.name
        );
    }
    Ok(())
}

/// `/metrics` in Prometheus' text format, parsed.
fn scrape(rig: &Rig) -> Result<(Vec<Sample>, String)> {
    let (status, head, body) = request(rig, "/metrics")?;
    ensure!(status == "HTTP/1.1 200 OK", "{head}\n\n{body}");
    ensure!(
        head.lines()
            .any(|line| line.starts_with("Content-Type: text/plain; version=0.0.4")),
        "{head}"
    );
    let samples = parse(&body).with_context(|| format!("parsing:\n{body}"))?;
    Ok((samples, body))
}

/// The data plane's packets by outcome.
fn packets_are_counted_per_outcome(samples: &[Sample], body: &str) -> Result<()> {
    let forwarded = value(
        samples,
        "lb_dataplane_packets_total",
        &[("outcome", "forwarded")],
    )?;
    ensure!(forwarded > 0.0, "nothing forwarded:\n{body}");
    for outcome in ["received", "drop_no_next_hop", "drop_fragment"] {
        value(
            samples,
            "lb_dataplane_packets_total",
            &[("outcome", outcome)],
        )?;
    }
    Ok(())
}

/// Per service and per real: packets, bytes, connections, drops, weight,
/// next hop; and the flow table.
fn services_and_reals_are_counted(rig: &Rig, samples: &[Sample], body: &str) -> Result<()> {
    for (service, vip) in [("web4", "198.18.1.10"), ("web6", "fd00:18:1::10")] {
        let labels = [
            ("service", service),
            ("vip", vip),
            ("port", "80"),
            ("protocol", "tcp"),
        ];
        ensure!(value(samples, "lb_service_packets_total", &labels)? > 0.0);
        ensure!(value(samples, "lb_service_connections_total", &labels)? >= 60.0);
    }
    for real in &rig.reals {
        for (service, address) in [
            ("web4", format!("{}:{HTTP_PORT}", real.v4)),
            ("web6", format!("[{}]:{HTTP_PORT}", real.v6)),
        ] {
            let labels = [("service", service), ("real", address.as_str())];
            let packets = value(samples, "lb_real_packets_total", &labels)?;
            ensure!(packets > 0.0, "no packets for {labels:?}:\n{body}");
            ensure!(value(samples, "lb_real_bytes_total", &labels)? > packets);
            ensure!(value(samples, "lb_real_connections_total", &labels)? > 0.0);
            ensure!(value(samples, "lb_real_drops_total", &labels)? == 0.0);
            ensure!(value(samples, "lb_real_weight", &labels)? == 1.0);
            ensure!(value(samples, "lb_real_next_hop_resolved", &labels)? == 1.0);
        }
    }
    ensure!(value(samples, "lb_flow_table_entries", &[])? >= 120.0);
    ensure!(value(samples, "lb_flow_table_capacity", &[])? == 1_048_576.0);
    Ok(())
}

/// A new address needs a restart: the reload says so and the endpoint
/// stays where it was.
fn a_new_address_needs_a_restart(rig: &mut Rig) -> Result<()> {
    rig.write_config_with(
        &rig.all_reals(),
        "metrics: { listen: \"127.0.0.1:9106\" }\n",
    )?;
    rig.reload_lbd()?;
    let log = rig.lbd_log();
    ensure!(
        log.contains("metrics.listen changed from 127.0.0.1:9105 to 127.0.0.1:9106"),
        "{log}"
    );
    let (status, _, _) = request(rig, "/metrics")?;
    ensure!(status == "HTTP/1.1 200 OK", "{status}");
    Ok(())
}
