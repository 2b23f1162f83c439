//! Every forwarding mode end to end, over IPv4 and IPv6: HTTP and UDP
//! through the VIPs reach every real, and a bulk TCP transfer comes back
//! byte-exact. DR reals share the client's segment; TUN reals sit behind a
//! router and strip tunnels with `lbd decap`; NAT reals route through the
//! balancer and listen on other ports than the services.
//! Needs root; under CI it must run, never skip.

use std::collections::BTreeMap;

use anyhow::{Result, ensure};
use lb_common::GlobalCounter;
use lb_tests::{
    require_root,
    rig::{ECHO_PORT, HTTP_PORT, Mode, Rig, UDP_PORT},
    traffic,
};
use lb_userspace::dataplane::Maps;

/// Enough bytes for full-size segments (and, in TUN, path-MTU discovery)
/// to matter.
const BULK_BYTES: usize = 4 << 20;

fn assert_every_real_answered(
    rig: &Rig,
    what: &str,
    answered: &BTreeMap<String, usize>,
) -> Result<()> {
    for real in &rig.reals {
        ensure!(
            answered.get(&real.name).copied().unwrap_or(0) > 0,
            "{:?} {what}: {} never answered: {answered:?}",
            rig.mode,
            real.name
        );
    }
    Ok(())
}

fn serves_every_real_over_both_families(mode: Mode) -> Result<()> {
    let mut rig = Rig::build(mode, &[1, 1, 1])?;
    rig.write_config(&rig.all_reals())?;
    rig.start_lbd()?;
    let families = [("IPv4", rig.vip4(0)), ("IPv6", rig.vip6(0))];
    for (index, (family, vip)) in families.into_iter().enumerate() {
        let base = 44_000 + index as u16 * 1_000;
        let http = vip.ip();
        let http = traffic::http_get_from_ports(
            &rig.client,
            std::net::SocketAddr::new(http, HTTP_PORT),
            base..base + 60,
        )?;
        assert_every_real_answered(&rig, &format!("{family} HTTP"), &http)?;
        let udp = traffic::udp_ask_from_ports(
            &rig.client,
            std::net::SocketAddr::new(vip.ip(), UDP_PORT),
            base + 100..base + 160,
        )?;
        assert_every_real_answered(&rig, &format!("{family} UDP"), &udp)?;
        traffic::bulk_echo(
            &rig.client,
            std::net::SocketAddr::new(vip.ip(), ECHO_PORT),
            BULK_BYTES,
        )?;
    }
    let maps = Maps::open_pinned(&rig.pins)?;
    let counter = |c: GlobalCounter| -> Result<u64> {
        Ok(maps.global_stats.get(&(c as u32), 0)?.iter().sum())
    };
    ensure!(
        counter(GlobalCounter::Forwarded)? > 0,
        "nothing went through the data plane"
    );
    match mode {
        // Full-size segments do not fit once encapsulated: the clients
        // learned the path MTU from the balancer's ICMP.
        Mode::Tun => ensure!(
            counter(GlobalCounter::IcmpTooBigSent)? >= 2,
            "no fragmentation-needed/packet-too-big was sent for IPv4 and IPv6"
        ),
        Mode::Nat => ensure!(
            counter(GlobalCounter::NatReplies)? > 0,
            "no reply was rewritten back to the VIP"
        ),
        Mode::Dr => {}
    }
    Ok(())
}

#[test]
fn direct_routing_serves_http_udp_and_bulk_over_ipv4_and_ipv6() -> Result<()> {
    if !require_root("direct_routing_serves_http_udp_and_bulk") {
        return Ok(());
    }
    serves_every_real_over_both_families(Mode::Dr)
}

#[test]
fn tunnelling_through_a_router_serves_http_udp_and_bulk_over_ipv4_and_ipv6() -> Result<()> {
    if !require_root("tunnelling_serves_http_udp_and_bulk") {
        return Ok(());
    }
    serves_every_real_over_both_families(Mode::Tun)
}

#[test]
fn nat_serves_http_udp_and_bulk_over_ipv4_and_ipv6() -> Result<()> {
    if !require_root("nat_serves_http_udp_and_bulk") {
        return Ok(());
    }
    serves_every_real_over_both_families(Mode::Nat)
}

#[test]
fn idle_nat_flows_and_their_reply_entries_are_reaped() -> Result<()> {
    if !require_root("idle_nat_flows_and_their_reply_entries_are_reaped") {
        return Ok(());
    }
    let mut rig = Rig::build(Mode::Nat, &[1, 1])?;
    rig.write_config_with(
        &rig.all_reals(),
        "timeouts: { tcp: 2, tcp_fin: 1, udp: 1 }\n",
    )?;
    rig.start_lbd()?;
    let udp = std::net::SocketAddr::new(rig.vip4(0).ip(), UDP_PORT);
    traffic::udp_ask_from_ports(&rig.client, udp, 47_000..47_020)?;
    let maps = Maps::open_pinned(&rig.pins)?;
    let entries = |maps: &Maps| (maps.flows.keys().count(), maps.nat_replies.keys().count());
    let (flows, replies) = entries(&maps);
    ensure!(
        flows >= 20 && replies >= 20,
        "flows {flows}, NAT replies {replies} before reaping"
    );
    // One second of UDP idle timeout plus the daemon's 5 s reaping pass.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while entries(&maps) != (0, 0) {
        ensure!(
            std::time::Instant::now() < deadline,
            "still {:?} (flows, NAT replies) after the timeout and a reaping pass",
            entries(&maps)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    Ok(())
}

/// `lbadm` output for a NAT rig with `args`.
fn lbadm(rig: &Rig, args: &[&str]) -> Result<String> {
    let output = std::process::Command::new(lb_tests::lbd::binary("lbadm")?)
        .args(args)
        .arg("--pin-path")
        .arg(&rig.pins.root)
        .output()?;
    ensure!(
        output.status.success(),
        "lbadm {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

#[test]
fn lbadm_lists_connections_timeouts_and_json_from_the_live_maps() -> Result<()> {
    if !require_root("lbadm_lists_connections_timeouts_and_json_from_the_live_maps") {
        return Ok(());
    }
    let mut rig = Rig::build(Mode::Nat, &[1, 1])?;
    rig.write_config_with(
        &rig.all_reals(),
        "timeouts: { tcp: 600, tcp_fin: 60, udp: 30 }\n",
    )?;
    rig.start_lbd()?;
    let udp = std::net::SocketAddr::new(rig.vip4(0).ip(), UDP_PORT);
    traffic::udp_ask_from_ports(&rig.client, udp, 48_000..48_010)?;

    let connections = lbadm(&rig, &["-L", "-n", "-c"])?;
    let mut lines = connections.lines();
    ensure!(
        lines.next() == Some("IPVS connection entries"),
        "{connections}"
    );
    ensure!(
        lines.next()
            == Some("pro expire state       source             virtual            destination"),
        "{connections}"
    );
    let entries: Vec<&str> = lines.collect();
    ensure!(entries.len() == 10, "10 UDP flows expected:\n{connections}");
    for entry in &entries {
        let fields: Vec<&str> = entry.split_whitespace().collect();
        ensure!(fields[0] == "UDP" && fields[2] == "UDP", "{entry}");
        ensure!(
            fields[1].starts_with("00:"),
            "UDP expires within 30 s: {entry}"
        );
        ensure!(fields[4] == "198.18.1.10:53", "{entry}");
        // NAT: the destination is the real's own address and port.
        ensure!(
            fields[5].ends_with(":5353") && fields[5].starts_with("198.18.2."),
            "{entry}"
        );
    }
    ensure!(
        lbadm(&rig, &["-L", "--timeout"])? == "Timeout (tcp tcpfin udp): 600 60 30\n",
        "timeouts from the config"
    );
    let json: serde_json::Value = serde_json::from_str(&lbadm(&rig, &["-L", "-n", "-o", "json"])?)?;
    let services = json.as_array().map(Vec::len).unwrap_or(0);
    ensure!(services == 6, "six services in JSON: {json}");
    let dns = json
        .as_array()
        .and_then(|all| all.iter().find(|s| s["address"] == "198.18.1.10:53"))
        .ok_or_else(|| anyhow::anyhow!("no UDP/53 service in {json}"))?;
    ensure!(dns["stats"]["connections"] == 10, "{dns}");
    ensure!(dns["reals"][0]["forward"] == "Masq", "{dns}");
    Ok(())
}
