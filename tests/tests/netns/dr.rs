//! DR end to end in network namespaces: the real lbd binary, the real XDP
//! program on veth in native mode, real TCP connections from a client
//! namespace to the VIPs. Needs root; under CI it must run, never skip.

use std::{collections::BTreeMap, time::Duration};

use anyhow::Result;
use lb_common::GlobalCounter;
use lb_tests::{
    lbd::Lbd,
    netns::Netns,
    require_root,
    rig::{ECHO_PORT, HTTP_PORT, Mode, Rig},
    traffic::{self, Behaviour, EchoStream},
};
use lb_userspace::dataplane::Maps;

/// Asserts every real got within ±30% of its weight share.
fn assert_weight_shares(rig: &Rig, answered: &BTreeMap<String, usize>, included: &[usize]) {
    let total: usize = answered.values().sum();
    let total_weight: u32 = included.iter().map(|&i| rig.reals[i].weight).sum();
    for &i in included {
        let real = &rig.reals[i];
        let expected = total as f64 * real.weight as f64 / total_weight as f64;
        let got = answered.get(&real.name).copied().unwrap_or(0) as f64;
        assert!(
            (got - expected).abs() <= 0.3 * expected,
            "{} (weight {}) answered {got} of {total}, expected {expected:.0} ±30%: {answered:?}",
            real.name,
            real.weight
        );
    }
    for name in answered.keys() {
        assert!(
            included.iter().any(|&i| &rig.reals[i].name == name),
            "{name} answered but is not in the service: {answered:?}"
        );
    }
}

fn global_counter(rig: &Rig, counter: GlobalCounter) -> Result<u64> {
    let maps = Maps::open_pinned(&rig.pins)?;
    Ok(maps.global_stats.get(&(counter as u32), 0)?.iter().sum())
}

#[test]
fn connections_reach_all_three_reals_by_weight_over_ipv4_and_ipv6() -> Result<()> {
    if !require_root("connections_reach_all_three_reals_by_weight") {
        return Ok(());
    }
    let mut rig = Rig::build(Mode::Dr, &[1, 1, 2])?;
    rig.write_config(&rig.all_reals())?;
    rig.start_lbd()?;
    let all = rig.all_reals();
    let v4 = traffic::http_get_from_ports(&rig.client, rig.vip4(HTTP_PORT), 40_000..40_300)?;
    assert_weight_shares(&rig, &v4, &all);
    let v6 = traffic::http_get_from_ports(&rig.client, rig.vip6(HTTP_PORT), 41_000..41_300)?;
    assert_weight_shares(&rig, &v6, &all);
    assert!(global_counter(&rig, GlobalCounter::FlowNew)? >= 600);
    Ok(())
}

#[test]
fn long_lived_connection_survives_real_removal_and_lbd_restart() -> Result<()> {
    if !require_root("long_lived_connection_survives_real_removal_and_lbd_restart") {
        return Ok(());
    }
    let mut rig = Rig::build(Mode::Dr, &[1, 1, 1])?;
    rig.write_config(&rig.all_reals())?;
    rig.start_lbd()?;
    let stream = EchoStream::open(&rig.client, rig.vip4(ECHO_PORT))?;
    let window = Duration::from_secs(5);
    stream.expect_progress(64 * 1024, window)?;

    // Remove a real that is not serving the stream (SIGHUP reload).
    let serving = rig
        .reals
        .iter()
        .position(|r| r.name == stream.server)
        .expect("a real");
    let removed = (serving + 1) % rig.reals.len();
    let remaining: Vec<usize> = rig
        .all_reals()
        .into_iter()
        .filter(|&i| i != removed)
        .collect();
    rig.write_config(&remaining)?;
    rig.reload_lbd()?;
    stream.expect_progress(64 * 1024, window)?;
    let after_removal =
        traffic::http_get_from_ports(&rig.client, rig.vip4(HTTP_PORT), 42_000..42_120)?;
    assert_weight_shares(&rig, &after_removal, &remaining);

    // Stop the daemon: the data plane keeps forwarding without it.
    rig.stop_lbd()?;
    stream.expect_progress(64 * 1024, window)?;
    // A new daemon adopts the pinned maps and swaps its program in.
    rig.start_lbd()?;
    assert!(
        rig.lbd_log()
            .contains("adopted the pinned data-plane state"),
        "{}",
        rig.lbd_log()
    );
    stream.expect_progress(64 * 1024, window)?;

    let report = stream.finish()?;
    assert!(
        report.longest_stall < Duration::from_secs(1),
        "the stream stalled for {:?}",
        report.longest_stall
    );
    let after_restart =
        traffic::http_get_from_ports(&rig.client, rig.vip4(HTTP_PORT), 43_000..43_120)?;
    assert_weight_shares(&rig, &after_restart, &remaining);
    Ok(())
}

#[test]
fn traffic_not_for_a_vip_passes_through_the_balancer_untouched() -> Result<()> {
    if !require_root("traffic_not_for_a_vip_passes_through_the_balancer_untouched") {
        return Ok(());
    }
    let mut rig = Rig::build(Mode::Dr, &[1, 1, 1])?;
    rig.write_config(&rig.all_reals())?;
    rig.start_lbd()?;
    let _server = traffic::serve(&rig.balancer, 9000, "balancer-itself", Behaviour::Http)?;
    let passed_before = global_counter(&rig, GlobalCounter::PassNotVip)?;
    let answers = rig.client.enter(|| {
        Ok([
            traffic::http_get("198.18.0.1:9000".parse()?)?,
            traffic::http_get("[fd00:18::1]:9000".parse()?)?,
            // Client to a real directly: same segment, VIP untouched.
            traffic::http_get("198.18.0.11:80".parse()?)?,
        ])
    })?;
    assert_eq!(answers, ["balancer-itself", "balancer-itself", "real-1"]);
    assert!(
        global_counter(&rig, GlobalCounter::PassNotVip)? > passed_before,
        "the balancer's own traffic went through XDP_PASS"
    );
    Ok(())
}

#[test]
fn an_invalid_config_is_reported_with_its_line_and_applies_nothing() -> Result<()> {
    if !require_root("an_invalid_config_is_reported_with_its_line_and_applies_nothing") {
        return Ok(());
    }
    let netns = Netns::create(&format!("{}-cfg", lb_tests::netns::unique_prefix()))?;
    let dir = std::env::temp_dir().join(&netns.name);
    std::fs::create_dir_all(&dir)?;
    let pin_path = format!("/sys/fs/bpf/{}", netns.name);
    let config = dir.join("bad.yaml");
    std::fs::write(
        &config,
        format!(
            "interfaces:\n  - {{ name: eth7 }}\npin_path: {pin_path}\nservices:\n  - name: web\n    vip: 198.18.1.10\n    port: 80\n    protocol: tcp\n    reals:\n      - {{ address: 198.18.0.11, weight: 70000 }}\n"
        ),
    )?;
    let config_arg = config.to_string_lossy().into_owned();
    let (status, output) = Lbd::run_to_exit(&netns, &["--config", &config_arg])?;
    assert!(!status.success(), "lbd accepted a bad config:\n{output}");
    assert!(
        output.contains("bad.yaml:2:"),
        "no line for the unknown interface:\n{output}"
    );
    assert!(output.contains("eth7"), "{output}");
    assert!(
        output.contains("bad.yaml:10:") && output.contains("services[0].reals[0].weight"),
        "no line and field for the weight:\n{output}"
    );
    assert!(
        !std::path::Path::new(&pin_path).exists(),
        "a rejected config pinned maps"
    );
    let (status, output) = Lbd::run_to_exit(&netns, &["check", "--config", &config_arg])?;
    assert!(!status.success(), "{output}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
