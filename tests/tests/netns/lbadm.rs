//! `lbadm` driving a running balancer the way ipvsadm drives IPVS: edits
//! through the control socket take effect on live traffic, `-S | -R`
//! round-trips, errors read like ipvsadm's, the socket refuses non-root,
//! reloads touch only what changed, and the schedulers behave as their
//! IPVS namesakes. Needs root; under CI it must run, never skip.

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use anyhow::{Result, ensure};
use lb_tests::{
    require_root,
    rig::{ECHO_PORT, HTTP_PORT, Mode, Rig},
    traffic::{self, EchoStream},
};
use lb_userspace::ipvsadm;

fn web4(rig: &Rig) -> SocketAddr {
    rig.vip4(HTTP_PORT)
}

fn real4(rig: &Rig, index: usize, port: u16) -> String {
    format!("{}:{port}", rig.reals[index].v4)
}

/// One GET from each of `count` fixed source ports starting at `base`.
fn gets(rig: &Rig, base: u16, count: u16) -> Result<BTreeMap<String, usize>> {
    traffic::http_get_from_ports(&rig.client, web4(rig), base..base + count)
}

fn count_of(answered: &BTreeMap<String, usize>, rig: &Rig, index: usize) -> usize {
    answered.get(&rig.reals[index].name).copied().unwrap_or(0)
}

/// Replaces the IPv4 web service with an `rr` one over every real, using
/// ipvsadm commands only.
fn recreate_web_as_round_robin(rig: &Rig) -> Result<()> {
    let vip = web4(rig).to_string();
    rig.lbadm(&["-D", "-t", &vip])?;
    rig.lbadm(&["-A", "-t", &vip, "-s", "rr"])?;
    for index in 0..rig.reals.len() {
        rig.lbadm(&[
            "-a",
            "-t",
            &vip,
            "-r",
            &real4(rig, index, HTTP_PORT),
            "-g",
            "-w",
            "1",
        ])?;
    }
    Ok(())
}

/// A DR rig with three reals whose IPv4 web service lbadm has turned into
/// an `rr` one; the service's address.
fn rig_with_round_robin_web() -> Result<(Rig, String)> {
    let mut rig = Rig::build(Mode::Dr, &[1, 1, 1])?;
    rig.write_config(&rig.all_reals())?;
    rig.start_lbd()?;
    recreate_web_as_round_robin(&rig)?;
    let vip = web4(&rig).to_string();
    Ok((rig, vip))
}

#[test]
fn lbadm_edits_the_running_balancer_like_ipvsadm() -> Result<()> {
    if !require_root("lbadm_edits_the_running_balancer_like_ipvsadm") {
        return Ok(());
    }
    let (rig, vip) = rig_with_round_robin_web()?;
    listed_and_spread_round_robin(&rig, &vip)?;
    weight_zero_quiesces(&rig, &vip)?;
    errors_read_like_ipvsadm(&rig, &vip)?;
    save_clear_restore_round_trips(&rig, &vip)?;
    zero_counters_and_set_timeouts(&rig, &vip)?;
    json_carries_health(&rig, &vip)?;
    yaml_export_loads_back(&rig)?;
    Ok(())
}

/// The service lists as rr, and rr spreads connections evenly.
fn listed_and_spread_round_robin(rig: &Rig, vip: &str) -> Result<()> {
    let listed = rig.lbadm(&["-L", "-n", "-t", vip])?;
    ensure!(
        listed.lines().nth(2) == Some(&format!("TCP  {vip} rr")[..]),
        "{listed}"
    );
    let answered = gets(rig, 41_000, 30)?;
    for index in 0..3 {
        let count = count_of(&answered, rig, index);
        ensure!(
            (5..=15).contains(&count),
            "rr spreads 30 connections evenly: {answered:?}"
        );
    }
    Ok(())
}

/// Weight 0 quiesces: no new connections.
fn weight_zero_quiesces(rig: &Rig, vip: &str) -> Result<()> {
    rig.lbadm(&[
        "-e",
        "-t",
        vip,
        "-r",
        &real4(rig, 0, HTTP_PORT),
        "-g",
        "-w",
        "0",
    ])?;
    let answered = gets(rig, 41_100, 30)?;
    ensure!(
        count_of(&answered, rig, 0) == 0,
        "a quiesced real gets no new connection: {answered:?}"
    );
    Ok(())
}

/// ipvsadm's errors, word for word, with a failing exit status.
fn errors_read_like_ipvsadm(rig: &Rig, vip: &str) -> Result<()> {
    let again = rig.lbadm_with_input(&["-A", "-t", vip, "-s", "rr"], "")?;
    ensure!(
        again.code != Some(0) && again.stderr.trim() == "Service already exists",
        "{again:?}"
    );
    let missing = rig.lbadm_with_input(&["-d", "-t", vip, "-r", "198.18.0.99:80"], "")?;
    ensure!(
        missing.code != Some(0) && missing.stderr.trim() == "No such destination",
        "{missing:?}"
    );
    Ok(())
}

/// `-S | -C | -R` round-trips, thresholds included.
fn save_clear_restore_round_trips(rig: &Rig, vip: &str) -> Result<()> {
    rig.lbadm(&[
        "-e",
        "-t",
        vip,
        "-r",
        &real4(rig, 1, HTTP_PORT),
        "-g",
        "-w",
        "2",
        "-x",
        "500",
        "-y",
        "100",
    ])?;
    let saved = rig.lbadm(&["-S", "-n"])?;
    ensure!(saved.contains(&format!("-A -t {vip} -s rr\n")), "{saved}");
    ensure!(
        saved.contains(&format!(
            "-a -t {vip} -r {} -g -w 2 -x 500 -y 100\n",
            real4(rig, 1, HTTP_PORT)
        )),
        "{saved}"
    );
    rig.lbadm(&["-C"])?;
    let empty = rig.lbadm(&["-L", "-n"])?;
    ensure!(
        empty.lines().count() == 3,
        "only the header after -C: {empty}"
    );
    let restored = rig.lbadm_with_input(&["-R"], &saved)?;
    ensure!(restored.code == Some(0), "{restored:?}");
    ensure!(rig.lbadm(&["-S", "-n"])? == saved, "-S after -R differs");
    let answered = gets(rig, 41_200, 12)?;
    ensure!(
        answered.values().sum::<usize>() == 12,
        "traffic flows after the restore: {answered:?}"
    );
    Ok(())
}

/// `-Z` zeroes; `--set` changes the timeouts (0 keeps one).
fn zero_counters_and_set_timeouts(rig: &Rig, vip: &str) -> Result<()> {
    rig.lbadm(&["-Z"])?;
    let stats = rig.lbadm(&["-L", "-n", "--stats", "-t", vip])?;
    let service = stats.lines().nth(2).unwrap_or_default().to_owned();
    ensure!(
        service.split_whitespace().nth(2) == Some("0"),
        "connections zeroed: {stats}"
    );
    rig.lbadm(&["--set", "100", "0", "10"])?;
    ensure!(
        rig.lbadm(&["-L", "--timeout"])? == "Timeout (tcp tcpfin udp): 100 120 10\n",
        "timeouts after --set"
    );
    Ok(())
}

/// JSON carries each real's health.
fn json_carries_health(rig: &Rig, vip: &str) -> Result<()> {
    let json: serde_json::Value = serde_json::from_str(&rig.lbadm(&["-L", "-n", "-o", "json"])?)?;
    let web = json
        .as_array()
        .and_then(|all| all.iter().find(|s| s["address"] == vip))
        .ok_or_else(|| anyhow::anyhow!("no {vip} in {json}"))?;
    let health: Vec<&str> = web["reals"]
        .as_array()
        .map(|reals| reals.iter().filter_map(|r| r["health"].as_str()).collect())
        .unwrap_or_default();
    ensure!(health == ["quiesced", "up", "up"], "{web}");
    Ok(())
}

/// The YAML export loads back as a configuration.
fn yaml_export_loads_back(rig: &Rig) -> Result<()> {
    let yaml = rig.lbadm(&["-S", "-o", "yaml"])?;
    lb_userspace::config::parse(&yaml, "export", &|_| true)
        .map_err(|error| anyhow::anyhow!("export does not load: {error}\n{yaml}"))?;
    ensure!(yaml.contains("scheduler: rr"), "{yaml}");
    Ok(())
}

#[test]
fn the_control_socket_refuses_non_root() -> Result<()> {
    if !require_root("the_control_socket_refuses_non_root") {
        return Ok(());
    }
    let mut rig = Rig::build(Mode::Dr, &[1])?;
    rig.write_config(&rig.all_reals())?;
    rig.start_lbd()?;
    let socket = rig.control_socket();
    let mode = std::fs::metadata(&socket)?.permissions();
    ensure!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777 == 0o600,
        "socket mode {mode:?}"
    );
    let as_nobody = |args: &[&str]| -> Result<(Option<i32>, String)> {
        let output = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(lb_tests::lbd::binary("lbadm")?)
            .args(args)
            .arg("--socket")
            .arg(&socket)
            .output()?;
        Ok((output.status.code(), String::from_utf8(output.stderr)?))
    };
    let (code, stderr) = as_nobody(&["-S", "-n"])?;
    ensure!(code != Some(0), "a non-root -S must fail: {stderr}");
    // Even with the file opened up, the daemon checks who is calling.
    std::fs::set_permissions(&socket, std::os::unix::fs::PermissionsExt::from_mode(0o666))?;
    let (code, stderr) = as_nobody(&["-C"])?;
    ensure!(
        code != Some(0) && stderr.trim() == "Permission denied (you must be root)",
        "{code:?} {stderr}"
    );
    ensure!(
        rig.lbadm(&["-L", "-n"])?.contains("TCP  198.18.1.10:80"),
        "the refused -C changed nothing"
    );
    Ok(())
}

/// Rewrites one real's weight in one service of the rig's YAML.
fn with_weight(yaml: &str, service: &str, address: &str, weight: u32) -> String {
    let start = yaml
        .find(&format!("name: {service}\n"))
        .expect("service in the YAML");
    let end = yaml[start..]
        .find("  - name:")
        .map_or(yaml.len(), |offset| start + offset);
    let block = yaml[start..end].replace(
        &format!("address: \"{address}\", port: 80, weight: 1 }}"),
        &format!("address: \"{address}\", port: 80, weight: {weight} }}"),
    );
    assert_ne!(block, yaml[start..end], "the real is in the block");
    format!("{}{block}{}", &yaml[..start], &yaml[end..])
}

#[test]
fn reload_changes_only_what_changed_and_replaces_runtime_edits() -> Result<()> {
    if !require_root("reload_changes_only_what_changed_and_replaces_runtime_edits") {
        return Ok(());
    }
    let mut rig = Rig::build(Mode::Dr, &[1, 1, 1])?;
    rig.write_config(&rig.all_reals())?;
    rig.start_lbd()?;
    let echo = rig.vip4(ECHO_PORT);
    let streams: Vec<EchoStream> = (0..6)
        .map(|_| EchoStream::open(&rig.client, echo))
        .collect::<Result<_>>()?;
    for stream in &streams {
        stream.expect_progress(8 << 10, Duration::from_secs(5))?;
    }

    // A runtime edit to the echo service...
    let echo_text = echo.to_string();
    rig.lbadm(&[
        "-e",
        "-t",
        &echo_text,
        "-r",
        &real4(&rig, 2, ECHO_PORT),
        "-g",
        "-w",
        "7",
    ])?;
    // ...then the file changes the web service only, and lbadm reloads it.
    let first = rig.reals[0].v4.to_string();
    let yaml = with_weight(&rig.config_yaml(&rig.all_reals()), "web4", &first, 0);
    std::fs::write(rig.config_path(), yaml)?;
    rig.lbadm(&["reload"])?;

    for stream in &streams {
        stream.expect_progress(8 << 10, Duration::from_secs(5))?;
    }
    let answered = gets(&rig, 42_000, 30)?;
    ensure!(
        count_of(&answered, &rig, 0) == 0 && answered.values().sum::<usize>() == 30,
        "the reloaded web service quiesced its first real: {answered:?}"
    );
    let listed = rig.lbadm(&["-L", "-n", "-t", &echo_text])?;
    ensure!(
        listed.contains(&format!("{:<28} Route   1 ", real4(&rig, 2, ECHO_PORT))),
        "the reload put the file's weight back: {listed}"
    );
    for stream in streams {
        let report = stream.finish()?;
        ensure!(
            report.longest_stall < Duration::from_secs(1),
            "an unchanged service's connection stalled {:?}",
            report.longest_stall
        );
    }
    Ok(())
}

/// wrr: shares follow the weights 1:2:3.
fn wrr_shares_follow_the_weights(rig: &Rig, vip: &str) -> Result<()> {
    rig.lbadm(&["-E", "-t", vip, "-s", "wrr"])?;
    for (index, weight) in [(0, "1"), (1, "2"), (2, "3")] {
        rig.lbadm(&[
            "-e",
            "-t",
            vip,
            "-r",
            &real4(rig, index, HTTP_PORT),
            "-w",
            weight,
        ])?;
    }
    let answered = gets(rig, 43_000, 60)?;
    for (index, expected) in [(0, 10), (1, 20), (2, 30)] {
        let count = count_of(&answered, rig, index);
        ensure!(
            count.abs_diff(expected) <= 6,
            "wrr 1:2:3 over 60 connections: {answered:?}"
        );
    }
    Ok(())
}

/// The daemon's rate estimator saw that burst (it samples every 2 s).
fn the_rate_estimator_saw_the_burst(rig: &Rig, vip: &str) -> Result<()> {
    std::thread::sleep(Duration::from_millis(2_500));
    let rates = rig.lbadm(&["-L", "-n", "--rate", "-t", vip])?;
    ensure!(
        rates.lines().next()
            == Some(
                "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS"
            ),
        "{rates}"
    );
    let service_rates: Vec<u64> = rates
        .lines()
        .nth(2)
        .unwrap_or_default()
        .split_whitespace()
        .skip(2)
        .filter_map(|column| column.parse().ok())
        .collect();
    ensure!(
        service_rates.len() == 5 && service_rates[0] > 0 && service_rates[1] > 0,
        "connections and packets per second after a burst: {rates}"
    );
    Ok(())
}

/// Persistence: every connection of the client goes to one real, and
/// the template shows in -c and --persistent-conn.
fn persistence_keeps_the_client_on_one_real(rig: &Rig, vip: &str) -> Result<()> {
    rig.lbadm(&["-E", "-t", vip, "-s", "rr", "-p", "120"])?;
    let answered = gets(rig, 43_100, 20)?;
    ensure!(
        answered.len() == 1,
        "persistent: one real for the client: {answered:?}"
    );
    let connections = rig.lbadm(&["-L", "-n", "-c"])?;
    let template = connections
        .lines()
        .find(|line| line.contains(" NONE "))
        .ok_or_else(|| anyhow::anyhow!("no template in {connections}"))?;
    ensure!(
        template.contains("198.18.0.") && template.contains(":0 "),
        "{template}"
    );
    let persistent = rig.lbadm(&["-L", "-n", "--persistent-conn", "-t", vip])?;
    let with_template = persistent
        .lines()
        .filter(|line| line.starts_with("  -> 198"))
        .filter(|line| line.split_whitespace().nth(3) == Some("1"))
        .count();
    ensure!(
        with_template == 1,
        "one real holds the template: {persistent}"
    );
    Ok(())
}

/// Least connections, from the data plane's live counts: long-lived
/// connections land on three different reals. Returns the echo service
/// and the connections, still open.
fn least_connections_spread_open_connections(rig: &Rig) -> Result<(String, Vec<EchoStream>)> {
    let echo = rig.vip4(ECHO_PORT).to_string();
    rig.lbadm(&["-E", "-t", &echo, "-s", "lc"])?;
    let streams: Vec<EchoStream> = (0..3)
        .map(|_| EchoStream::open(&rig.client, rig.vip4(ECHO_PORT)))
        .collect::<Result<_>>()?;
    let mut servers: Vec<&str> = streams.iter().map(|s| s.server.as_str()).collect();
    servers.sort_unstable();
    servers.dedup();
    ensure!(
        servers.len() == 3,
        "lc spreads open connections: {servers:?}"
    );
    Ok((echo, streams))
}

/// An upper threshold of 1 overloads a real holding a connection; the
/// daemon sees it within its one-second count.
fn an_upper_threshold_overloads_a_busy_real(
    rig: &Rig,
    echo: &str,
    streams: &[EchoStream],
) -> Result<()> {
    let busy = rig
        .reals
        .iter()
        .position(|real| real.name == streams[0].server)
        .ok_or_else(|| anyhow::anyhow!("{} is no real", streams[0].server))?;
    rig.lbadm(&[
        "-e",
        "-t",
        echo,
        "-r",
        &real4(rig, busy, ECHO_PORT),
        "-w",
        "1",
        "-x",
        "1",
    ])?;
    let health_of_busy = || -> Result<String> {
        let json: serde_json::Value =
            serde_json::from_str(&rig.lbadm(&["-L", "-n", "-o", "json"])?)?;
        let address = real4(rig, busy, ECHO_PORT);
        Ok(json
            .as_array()
            .into_iter()
            .flatten()
            .filter(|service| service["address"] == echo)
            .flat_map(|service| service["reals"].as_array().cloned().unwrap_or_default())
            .find(|real| real["address"] == address.as_str())
            .and_then(|real| real["health"].as_str().map(str::to_owned))
            .unwrap_or_default())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while health_of_busy()? != "overloaded" {
        ensure!(
            std::time::Instant::now() < deadline,
            "the real over its threshold is not overloaded: {}",
            health_of_busy()?
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

#[test]
fn schedulers_weigh_persist_and_count_connections() -> Result<()> {
    if !require_root("schedulers_weigh_persist_and_count_connections") {
        return Ok(());
    }
    let (rig, vip) = rig_with_round_robin_web()?;
    wrr_shares_follow_the_weights(&rig, &vip)?;
    the_rate_estimator_saw_the_burst(&rig, &vip)?;
    persistence_keeps_the_client_on_one_real(&rig, &vip)?;
    let (echo, streams) = least_connections_spread_open_connections(&rig)?;
    an_upper_threshold_overloads_a_busy_real(&rig, &echo, &streams)?;
    for stream in streams {
        stream.finish()?;
    }
    Ok(())
}

/// The corpus's save files use documentation and private addresses; a live
/// rig only ever uses the benchmarking range and fd00::/8, so each address
/// is renamed into those, in order (ipvsadm sorts by address, so the
/// renaming must keep the order).
fn into_test_ranges(save: &str) -> String {
    use std::net::IpAddr;
    let token = |word: &str| -> Option<(IpAddr, String)> {
        let (host, rest) = match word.strip_prefix('[') {
            Some(v6) => {
                let (host, rest) = v6.split_once(']')?;
                (host, format!("]{rest}"))
            }
            None => match word.rsplit_once(':') {
                Some((host, port)) => (host, format!(":{port}")),
                None => (word, String::new()),
            },
        };
        Some((host.parse().ok()?, rest))
    };
    // Addresses follow -t, -u and -r (a -M mask is no address).
    let is_endpoint = |previous: &str| matches!(previous, "-t" | "-u" | "-r");
    let words: Vec<&str> = save.split_whitespace().collect();
    let mut addresses: Vec<IpAddr> = words
        .windows(2)
        .filter(|pair| is_endpoint(pair[0]))
        .filter_map(|pair| token(pair[1]).map(|(address, _)| address))
        .collect();
    addresses.sort();
    addresses.dedup();
    let renamed: BTreeMap<IpAddr, IpAddr> = addresses
        .iter()
        .enumerate()
        .map(|(index, address)| {
            let index = index as u16 + 1;
            let new = match address {
                IpAddr::V4(_) => IpAddr::from([198, 19, (index >> 8) as u8, index as u8]),
                IpAddr::V6(_) => IpAddr::from([0xfd00, 0x99, 0, 0, 0, 0, 0, index]),
            };
            (*address, new)
        })
        .collect();
    let rename = |word: &str| match token(word) {
        Some((IpAddr::V6(v6), rest)) if word.starts_with('[') => {
            format!("[{}{rest}", renamed[&IpAddr::V6(v6)])
        }
        Some((address, rest)) => format!("{}{rest}", renamed[&address]),
        None => word.to_owned(),
    };
    save.lines()
        .map(|line| {
            let mut previous = "";
            let words: Vec<String> = line
                .split(' ')
                .map(|word| {
                    let out = if is_endpoint(previous) {
                        rename(word)
                    } else {
                        word.to_owned()
                    };
                    previous = word;
                    out
                })
                .collect();
            words.join(" ") + "\n"
        })
        .collect()
}

#[test]
fn saved_ipvsadm_rule_files_restore_into_lbd_and_save_back_identically() -> Result<()> {
    if !require_root("saved_ipvsadm_rule_files_restore_into_lbd_and_save_back_identically") {
        return Ok(());
    }
    let mut rig = Rig::build(Mode::Dr, &[1])?;
    rig.write_config(&rig.all_reals())?;
    rig.start_lbd()?;
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../lb-userspace/tests/ipvsadm-corpus/save");
    let mut files: Vec<_> = std::fs::read_dir(&corpus)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    ensure!(
        files.len() >= 5,
        "the save corpus is at {}",
        corpus.display()
    );
    for file in files {
        let save = into_test_ranges(&std::fs::read_to_string(&file)?);
        rig.lbadm(&["-C"])?;
        let restored = rig.lbadm_with_input(&["-R"], &save)?;
        ensure!(restored.code == Some(0), "{}: {restored:?}", file.display());
        // Renaming into the test ranges can reorder a service's reals of
        // mixed families; ipvsadm's own sort of the renamed rules is what
        // -S must print (the corpus test holds that sort to the originals).
        let mut table = ipvsadm::Table::new();
        for command in ipvsadm::parse_restore(&save).map_err(|e| anyhow::anyhow!("{e}"))? {
            table.apply(&command).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let expected = ipvsadm::save(&table);
        let saved = rig.lbadm(&["-S", "-n"])?;
        ensure!(
            saved == expected,
            "{} does not save back identically:\n--- restored\n{expected}--- saved\n{saved}",
            file.display()
        );
    }
    Ok(())
}
