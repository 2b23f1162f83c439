//! Health checking driving a live balancer: reals whose health endpoints
//! the tests break and mend, watched through `lbadm` and through where new
//! connections land. Needs root; under CI it must run, never skip.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use lb_tests::{
    require_root,
    responders::{Answer, HealthEndpoint, UdpResponder},
    rig::{ECHO_PORT, HTTP_PORT, Mode, Rig},
    traffic::{self, EchoStream},
};
use serde_json::Value;

/// Where each real's health endpoint listens (the services' checks probe
/// it instead of the service port).
const HEALTH_PORT: u16 = 7000;

/// A DR rig over the reals in `include`, each service given the YAML lines
/// `extra` returns for its head (name, VIP...), at the service's
/// indentation; a health endpoint on every real.
fn start(
    weights: &[u32],
    include: &[usize],
    extra: impl Fn(&str) -> String,
) -> Result<(Rig, Vec<HealthEndpoint>)> {
    let mut rig = Rig::build(Mode::Dr, weights)?;
    let endpoints = rig
        .reals
        .iter()
        .map(|real| HealthEndpoint::start(&real.netns, HEALTH_PORT))
        .collect::<Result<Vec<_>>>()?;
    let yaml = rig
        .config_yaml(include)
        .split_inclusive("    reals:\n")
        .map(|part| match part.strip_suffix("    reals:\n") {
            Some(head) => format!("{head}{}    reals:\n", extra(head)),
            None => part.to_owned(),
        })
        .collect::<String>();
    std::fs::write(rig.config_path(), yaml)?;
    rig.start_lbd()?;
    Ok((rig, endpoints))
}

fn web(rig: &Rig) -> String {
    rig.vip4(HTTP_PORT).to_string()
}

fn real(rig: &Rig, index: usize, port: u16) -> String {
    format!("{}:{port}", rig.reals[index].v4)
}

/// `lbadm -L -n -o json`, the entry of one real of one service.
fn real_json(rig: &Rig, service: &str, real: &str) -> Result<Value> {
    let listing: Value = serde_json::from_str(&rig.lbadm(&["-L", "-n", "-o", "json"])?)?;
    let service = listing
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["address"] == service && s["protocol"] == "TCP")
        .with_context(|| format!("no service {service} in {listing}"))?;
    service["reals"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["address"] == real)
        .cloned()
        .with_context(|| format!("no real {real} in {service}"))
}

fn health(rig: &Rig, service: &str, real: &str) -> Result<String> {
    Ok(real_json(rig, service, real)?["health"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// Waits until the real's health reads `wanted`; how long that took.
fn wait_health(
    rig: &Rig,
    service: &str,
    real: &str,
    wanted: &str,
    within: Duration,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        let now = health(rig, service, real)?;
        if now == wanted {
            return Ok(start.elapsed());
        }
        if start.elapsed() > within {
            bail!(
                "{real} of {service} is still {now}, not {wanted}, after {within:?}:\n{}\n{}",
                rig.lbadm(&["-L", "-n", "--health"]).unwrap_or_default(),
                rig.lbd_log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One GET from each of `count` source ports from `base`: answers per real.
fn spread(rig: &Rig, base: u16, count: u16) -> Result<BTreeMap<String, usize>> {
    traffic::http_get_from_ports(&rig.client, rig.vip4(HTTP_PORT), base..base + count)
}

/// Long-lived echo streams, at least one on each real in `reals`.
fn streams_on(rig: &Rig, reals: &[usize]) -> Result<Vec<EchoStream>> {
    let mut kept = Vec::new();
    for _ in 0..40 {
        let stream = EchoStream::open(&rig.client, rig.vip4(ECHO_PORT))?;
        let wanted = reals.iter().any(|&i| {
            stream.server == rig.reals[i].name
                && !kept.iter().any(|s: &EchoStream| s.server == stream.server)
        });
        if wanted {
            kept.push(stream);
        }
        if kept.len() == reals.len() {
            return Ok(kept);
        }
    }
    bail!("could not land a stream on each of {reals:?}")
}

fn finish_without_stalls(streams: Vec<EchoStream>) -> Result<()> {
    for stream in streams {
        let server = stream.server.clone();
        let report = stream.finish()?;
        ensure!(
            report.longest_stall < Duration::from_secs(1),
            "the stream to {server} stalled for {:?}",
            report.longest_stall
        );
    }
    Ok(())
}

const FAST_HTTP: &str = "    health_check: { type: http, interval: 300ms, timeout: 250ms, rise: 2, fall: 3, port: 7000, http: { path: /healthz, expect_body: ok } }\n";

#[test]
fn a_killed_real_leaves_within_fall_intervals_and_returns_within_rise() -> Result<()> {
    if !require_root("a_killed_real_leaves_within_fall_intervals_and_returns_within_rise") {
        return Ok(());
    }
    let (rig, mut endpoints) = start(&[1, 1, 1], &[0, 1, 2], |_| FAST_HTTP.to_owned())?;
    let (vip, third) = (web(&rig), real(&rig, 2, HTTP_PORT));
    for index in 0..3 {
        wait_health(
            &rig,
            &vip,
            &real(&rig, index, HTTP_PORT),
            "up",
            Duration::from_secs(5),
        )?;
    }
    let streams = streams_on(&rig, &[0, 1])?;
    // Slow but within the timeout: must stay up throughout.
    endpoints[0].set(Answer::Slow(Duration::from_millis(150)));
    let before = spread(&rig, 42_000, 30)?;
    ensure!(
        before.get(&rig.reals[2].name).copied().unwrap_or(0) > 0,
        "{before:?}"
    );

    endpoints[2].kill();
    let killed = Instant::now();
    // interval x fall, plus one interval of phase and a scheduling margin.
    let down = wait_health(
        &rig,
        &vip,
        &third,
        "down",
        Duration::from_millis(300 * 4 + 700),
    )?;
    let listed = rig.lbadm(&["-L", "-n", "-t", &vip])?;
    ensure!(
        !listed.contains(&third),
        "a failed real is left out like keepalived does:\n{listed}"
    );
    let after = spread(&rig, 42_000, 30)?;
    ensure!(
        !after.contains_key(&rig.reals[2].name),
        "new connections still reach the killed real {:?} after it went down: {after:?}",
        killed.elapsed()
    );
    for index in 0..2 {
        let name = &rig.reals[index].name;
        ensure!(
            after.get(name) > before.get(name),
            "{name} did not take a share of the dead real's connections: {before:?} -> {after:?}"
        );
    }
    let entry = real_json(&rig, &vip, &third)?;
    let failure = entry["check"]["last_failure"].as_str().unwrap_or_default();
    ensure!(failure.contains("refused"), "reason: {entry}");
    ensure!(rig.lbd_log().contains("real is down"), "{}", rig.lbd_log());

    endpoints[2].restart(&rig.reals[2].netns)?;
    let up = wait_health(
        &rig,
        &vip,
        &third,
        "up",
        Duration::from_millis(300 * 3 + 700),
    )?;
    let back = spread(&rig, 42_000, 30)?;
    ensure!(
        back == before,
        "the same clients land where they did before: {before:?} vs {back:?}"
    );
    ensure!(
        health(&rig, &vip, &real(&rig, 0, HTTP_PORT))? == "up",
        "the slow real was taken down"
    );
    finish_without_stalls(streams)?;
    eprintln!("down after {down:?}, up after {up:?}");
    Ok(())
}

#[test]
fn status_body_and_flapping_reals_and_the_sorry_server() -> Result<()> {
    if !require_root("status_body_and_flapping_reals_and_the_sorry_server") {
        return Ok(());
    }
    // Real 4 (index 3) is not in the service: it is the sorry server.
    let sorry = "    sorry_server: { address: 198.18.0.14 }\n";
    let checks = "    health_check: { type: http, interval: 200ms, timeout: 150ms, rise: 2, fall: 2, port: 7000, http: { path: /healthz, expect_status: \"200-299\", expect_body: ok } }\n";
    let (rig, endpoints) = start(&[1, 1, 1, 1], &[0, 1, 2], |head| {
        // Only web4 probes, so the endpoint's alternation is this check's.
        if head.contains("name: web4") {
            format!("{checks}{sorry}")
        } else {
            String::new()
        }
    })?;
    let vip = web(&rig);
    let reals: Vec<String> = (0..3).map(|i| real(&rig, i, HTTP_PORT)).collect();
    let streams = streams_on(&rig, &[0])?;
    endpoints[0].set(Answer::EveryOther);
    endpoints[1].set(Answer::Status(503));
    endpoints[2].set(Answer::Body("not well".to_owned()));
    wait_health(&rig, &vip, &reals[1], "down", Duration::from_secs(3))?;
    wait_health(&rig, &vip, &reals[2], "down", Duration::from_secs(3))?;
    let reason = |index: usize| -> Result<String> {
        Ok(
            real_json(&rig, &vip, &reals[index])?["check"]["last_failure"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    ensure!(reason(1)?.contains("503"), "{}", reason(1)?);
    ensure!(reason(2)?.contains("body"), "{}", reason(2)?);
    // Every other probe fails: with rise 2 / fall 2 it never changes.
    std::thread::sleep(Duration::from_secs(2));
    let flapper = real_json(&rig, &vip, &reals[0])?;
    ensure!(flapper["health"] == "up", "{flapper}");
    ensure!(flapper["check"]["went_down"] == 0, "{flapper}");
    ensure!(
        flapper["check"]["failures"].as_u64().unwrap_or(0) >= 4,
        "the flapping endpoint did fail probes: {flapper}"
    );
    let answered = spread(&rig, 43_000, 20)?;
    ensure!(
        answered.keys().eq([&rig.reals[0].name]),
        "only the healthy real takes connections: {answered:?}"
    );

    // The last real fails for good: below quorum, the sorry server serves.
    endpoints[0].set(Answer::Status(500));
    wait_health(&rig, &vip, &reals[0], "down", Duration::from_secs(3))?;
    let answered = spread(&rig, 43_000, 20)?;
    ensure!(
        answered.keys().eq([&rig.reals[3].name]),
        "the sorry server takes every new connection: {answered:?}"
    );
    let health_view = rig.lbadm(&["-L", "-n", "--health", "-t", &vip])?;
    ensure!(
        health_view.contains("lost (0/1, sorry_server)"),
        "{health_view}"
    );
    ensure!(health_view.contains("(sorry server)"), "{health_view}");

    // Mended: rise 2, and the sorry server steps back.
    endpoints[1].set(Answer::Healthy);
    wait_health(&rig, &vip, &reals[1], "up", Duration::from_secs(3))?;
    let answered = spread(&rig, 43_000, 20)?;
    ensure!(
        answered.keys().eq([&rig.reals[1].name]),
        "the mended real takes over from the sorry server: {answered:?}"
    );
    // The stream to real 1 was on a real that went down: dropped, as IPVS
    // does without expire_nodest_conn; nothing to check there.
    drop(streams);
    Ok(())
}

#[test]
fn udp_dns_and_exec_checkers_against_real_responders() -> Result<()> {
    if !require_root("udp_dns_and_exec_checkers_against_real_responders") {
        return Ok(());
    }
    let mut rig = Rig::build(Mode::Dr, &[1, 1, 1])?;
    let udp = UdpResponder::text(&rig.reals[0].netns, 5300, "pong")?;
    let dns = UdpResponder::dns(&rig.reals[1].netns, 5354)?;
    let flags = rig.workdir.join("exec-flags");
    std::fs::create_dir_all(&flags)?;
    let flag = flags.join(rig.reals[2].v4.to_string());
    std::fs::write(&flag, "")?;
    let overrides = [
        "{ type: udp, port: 5300, udp: { send: ping, expect: pong } }".to_owned(),
        "{ type: dns, port: 5354, dns: { name: health.example.test, type: A } }".to_owned(),
        format!(
            "{{ type: exec, exec: {{ command: [/bin/sh, -c, \"test -e {}/$0\", \"{{address}}\"] }} }}",
            flags.display()
        ),
    ];
    let mut yaml = rig.config_yaml(&[0, 1, 2]).replace(
        "    forwarding: dr\n    reals:\n",
        "    forwarding: dr\n    health_check: { type: tcp, interval: 200ms, timeout: 150ms, rise: 1, fall: 2 }\n    reals:\n",
    );
    // Per-real overrides on the IPv4 web service only.
    for (index, check) in overrides.iter().enumerate() {
        let line = format!(
            "      - {{ address: \"{}\", port: 80, weight: 1 }}\n",
            rig.reals[index].v4
        );
        let with_check = format!(
            "      - {{ address: \"{}\", port: 80, weight: 1, health_check: {check} }}\n",
            rig.reals[index].v4
        );
        yaml = yaml.replacen(&line, &with_check, 1);
    }
    std::fs::write(rig.config_path(), &yaml)?;
    rig.start_lbd()?;
    let vip = web(&rig);
    let reals: Vec<String> = (0..3).map(|i| real(&rig, i, HTTP_PORT)).collect();
    for (index, kind) in ["udp", "dns", "exec"].iter().enumerate() {
        let entry = real_json(&rig, &vip, &reals[index])?;
        ensure!(entry["check"]["type"] == *kind, "{entry}");
        wait_health(&rig, &vip, &reals[index], "up", Duration::from_secs(3))?;
    }
    udp.set_text("pang");
    dns.set_dns_rcode(2); // SERVFAIL
    std::fs::remove_file(&flag)?;
    for address in &reals {
        wait_health(&rig, &vip, address, "down", Duration::from_secs(3))?;
    }
    let reasons: Vec<String> = (0..3)
        .map(|index| {
            real_json(&rig, &vip, &reals[index])
                .map(|entry| entry["check"]["last_failure"].to_string())
        })
        .collect::<Result<_>>()?;
    ensure!(reasons[0].contains("pong"), "{reasons:?}");
    ensure!(
        reasons[1].to_lowercase().contains("servfail"),
        "{reasons:?}"
    );
    ensure!(reasons[2].contains("exit"), "{reasons:?}");
    // Every real down and no sorry server: the service drops new
    // connections rather than sending them to a failed real.
    let answered = traffic::http_get_from_port(rig.vip4(HTTP_PORT), 44_000);
    ensure!(answered.is_err(), "a connection was served: {answered:?}");

    udp.set_text("pong");
    dns.set_dns_rcode(0);
    std::fs::write(&flag, "")?;
    for address in &reals {
        wait_health(&rig, &vip, address, "up", Duration::from_secs(3))?;
    }
    // The other services kept the plain TCP check on port 80: all up.
    let echo = rig.vip4(ECHO_PORT).to_string();
    ensure!(health(&rig, &echo, &real(&rig, 0, ECHO_PORT))? == "up");
    Ok(())
}

#[test]
fn health_checks_are_set_through_the_control_api() -> Result<()> {
    if !require_root("health_checks_are_set_through_the_control_api") {
        return Ok(());
    }
    let (rig, endpoints) = start(&[1, 1], &[0, 1], |_| String::new())?;
    let (vip, first) = (web(&rig), real(&rig, 0, HTTP_PORT));
    ensure!(real_json(&rig, &vip, &first)?["check"].is_null());
    endpoints[0].set(Answer::Status(500));
    rig.lbadm(&[
        "health-check",
        "-t",
        &vip,
        "{type: http, interval: 200ms, timeout: 100ms, fall: 2, port: 7000}",
    ])?;
    wait_health(&rig, &vip, &first, "down", Duration::from_secs(3))?;
    // A real's own check, read over the service's.
    rig.lbadm(&[
        "health-check",
        "-t",
        &vip,
        "-r",
        &first,
        "{type: tcp, port: 7000}",
    ])?;
    wait_health(&rig, &vip, &first, "up", Duration::from_secs(3))?;
    let saved = rig.lbadm(&["-S", "-o", "yaml"])?;
    ensure!(
        saved.contains("type: tcp") && saved.contains("type: http"),
        "{saved}"
    );
    let refused = rig.lbadm_with_input(&["health-check", "-t", &vip, "{type: smtp}"], "")?;
    ensure!(
        refused.code != Some(0) && refused.stderr.contains("unknown check type"),
        "{refused:?}"
    );
    Ok(())
}
