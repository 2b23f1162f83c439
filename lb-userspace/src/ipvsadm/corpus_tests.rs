//! ipvsadm compatibility corpus: realistic command lines and what they
//! mean, command lines ipvsadm refuses with its exact words, an
//! administrator's session against one table, and `ipvsadm -S -n` files
//! that must come back byte for byte through restore, apply and save.
//! Data lives in `tests/ipvsadm-corpus/`.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::ipvsadm::{
    Command, Destination, Invocation, ListOptions, Persistence, Protocol, ServiceId, Table,
    UsageError, VirtualService, parse_args, parse_restore, save,
};
use lb_common::{ForwardingMethod, Scheduler};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/ipvsadm-corpus")
        .join(name)
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

fn parse(line: &str) -> Result<Invocation, UsageError> {
    parse_args(&words(line))
}

// --- builders for expected values -------------------------------------

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn tcp(address: &str) -> ServiceId {
    ServiceId::new(Protocol::Tcp, addr(address))
}

fn udp(address: &str) -> ServiceId {
    ServiceId::new(Protocol::Udp, addr(address))
}

fn svc(id: ServiceId, scheduler: Scheduler) -> VirtualService {
    VirtualService::with_scheduler(id, scheduler)
}

fn flags(mut service: VirtualService, fallback: bool, hash_port: bool) -> VirtualService {
    service.fallback = fallback;
    service.hash_port = hash_port;
    service
}

fn persistent(mut service: VirtualService, timeout: u32, netmask: u8) -> VirtualService {
    service.persistence = Some(Persistence { timeout, netmask });
    service
}

fn real(address: &str, forwarding: ForwardingMethod, weight: u32) -> Destination {
    Destination {
        weight,
        ..Destination::new(addr(address), forwarding)
    }
}

fn thresholds(mut real: Destination, upper: u32, lower: u32) -> Destination {
    real.upper_threshold = upper;
    real.lower_threshold = lower;
    real
}

fn list(edit: impl FnOnce(&mut ListOptions)) -> Invocation {
    let mut options = ListOptions::default();
    edit(&mut options);
    Invocation::List(options)
}

fn cmd(command: Command) -> Invocation {
    Invocation::Command(command)
}

use ForwardingMethod::{DirectRouting as DR, Masquerade as NAT, Tunnel as TUN};
use Scheduler::*;

/// Realistic command lines and the invocation each one means.
fn command_corpus() -> Vec<(&'static str, Invocation)> {
    let web = tcp("192.0.2.10:80");
    let dns6 = udp("[2001:db8::53]:53");
    vec![
        // -A: schedulers, flags, persistence, port 0, both families.
        (
            "-A -t 192.0.2.10:80 -s rr",
            cmd(Command::AddService(svc(web, RoundRobin))),
        ),
        (
            "-A -t 192.0.2.10:80",
            cmd(Command::AddService(VirtualService::with_product_defaults(
                web,
            ))),
        ),
        (
            "-A -t 192.0.2.10:80 -s mh",
            cmd(Command::AddService(svc(web, Maglev))),
        ),
        (
            "-A -u 192.0.2.53:53 -s mh -b mh-fallback,mh-port",
            cmd(Command::AddService(flags(
                svc(udp("192.0.2.53:53"), Maglev),
                true,
                true,
            ))),
        ),
        (
            "-A -t 192.0.2.10:80 -s sh -b sh-port",
            cmd(Command::AddService(flags(
                svc(web, SourceHash),
                false,
                true,
            ))),
        ),
        (
            "-A -t 192.0.2.10:80 -s sh -b sh-fallback",
            cmd(Command::AddService(flags(
                svc(web, SourceHash),
                true,
                false,
            ))),
        ),
        (
            "-A -t 192.0.2.10:80 -s rr -b flag-1,flag-2",
            cmd(Command::AddService(flags(svc(web, RoundRobin), true, true))),
        ),
        (
            "-A -t [2001:db8::10]:443 -s wlc -p",
            cmd(Command::AddService(persistent(
                svc(tcp("[2001:db8::10]:443"), WeightedLeastConnection),
                300,
                128,
            ))),
        ),
        (
            "-A -t 198.51.100.5:0 -s sh -p 3600 -M 255.255.255.0",
            cmd(Command::AddService(persistent(
                svc(tcp("198.51.100.5:0"), SourceHash),
                3600,
                24,
            ))),
        ),
        (
            "-A -u [2001:db8::1]:0 -s sh -b sh-port -p 600 -M 64",
            cmd(Command::AddService(persistent(
                flags(svc(udp("[2001:db8::1]:0"), SourceHash), false, true),
                600,
                64,
            ))),
        ),
        (
            "-A -t 192.0.2.10:80 -p -s rr",
            cmd(Command::AddService(persistent(
                svc(web, RoundRobin),
                300,
                32,
            ))),
        ),
        (
            "-A -t 192.0.2.10:80 -s dh -M 255.255.0.0",
            cmd(Command::AddService(svc(web, DestinationHash))),
        ),
        (
            "-A -t 192.0.2.10:80 -s lc",
            cmd(Command::AddService(svc(web, LeastConnection))),
        ),
        (
            "-A -t 192.0.2.10:80 -s sed",
            cmd(Command::AddService(svc(web, ShortestExpectedDelay))),
        ),
        (
            "-A -t 192.0.2.10:80 -s nq",
            cmd(Command::AddService(svc(web, NeverQueue))),
        ),
        (
            "-A -t 192.0.2.10:80 -s wrr",
            cmd(Command::AddService(svc(web, WeightedRoundRobin))),
        ),
        (
            "--add-service --tcp-service=192.0.2.10:80 --scheduler=rr --persistent=60 --netmask=255.255.0.0",
            cmd(Command::AddService(persistent(
                svc(web, RoundRobin),
                60,
                16,
            ))),
        ),
        (
            "-At 192.0.2.10:80 -srr -p120",
            cmd(Command::AddService(persistent(
                svc(web, RoundRobin),
                120,
                32,
            ))),
        ),
        // -E replaces the whole spec; without -s the product default.
        (
            "-E -t 192.0.2.10:80 -s wrr",
            cmd(Command::EditService(svc(web, WeightedRoundRobin))),
        ),
        (
            "-E -t 192.0.2.10:80 -p 60",
            cmd(Command::EditService(persistent(
                VirtualService::with_product_defaults(web),
                60,
                32,
            ))),
        ),
        // -D
        ("-D -t 192.0.2.10:80", cmd(Command::DeleteService(web))),
        (
            "--delete-service --udp-service [2001:db8::53]:53",
            cmd(Command::DeleteService(dns6)),
        ),
        // -C
        ("-C", cmd(Command::Clear)),
        ("--clear", cmd(Command::Clear)),
        // -a: each forwarding method, port forcing, another family, thresholds.
        (
            "-a -t 192.0.2.10:80 -r 10.0.0.11:80 -m -w 3",
            cmd(Command::AddReal(web, real("10.0.0.11:80", NAT, 3))),
        ),
        (
            "-a -t 192.0.2.10:80 -r 10.0.0.11 -g",
            cmd(Command::AddReal(web, real("10.0.0.11:80", DR, 1))),
        ),
        (
            "-a -t 192.0.2.10:80 -r 10.0.0.11:8080",
            cmd(Command::AddReal(web, real("10.0.0.11:80", DR, 1))),
        ),
        (
            "-a -t 192.0.2.10:80 -r 10.0.0.11:8080 -i",
            cmd(Command::AddReal(web, real("10.0.0.11:80", TUN, 1))),
        ),
        (
            "-a -t 192.0.2.10:80 -r 10.0.0.11:8080 -m",
            cmd(Command::AddReal(web, real("10.0.0.11:8080", NAT, 1))),
        ),
        (
            "-a -t 192.0.2.10:80 -r 2001:db8::11 -i",
            cmd(Command::AddReal(web, real("[2001:db8::11]:80", TUN, 1))),
        ),
        (
            "-a -t 192.0.2.10:80 -r 10.0.0.12 -i --tun-type ipip -w 0 -x 1000 -y 800",
            cmd(Command::AddReal(
                web,
                thresholds(real("10.0.0.12:80", TUN, 0), 1000, 800),
            )),
        ),
        (
            "-a -u [2001:db8::53]:53 -r [2001:db8:1::21]:5353 -m -w 65535",
            cmd(Command::AddReal(
                dns6,
                real("[2001:db8:1::21]:5353", NAT, 65535),
            )),
        ),
        (
            "--add-server --udp-service 192.0.2.53:53 --real-server 10.0.1.21:53 --masquerading --weight 2 --u-threshold 10 --l-threshold 5",
            cmd(Command::AddReal(
                udp("192.0.2.53:53"),
                thresholds(real("10.0.1.21:53", NAT, 2), 10, 5),
            )),
        ),
        (
            "-a -t 198.51.100.5:0 -r 10.0.0.5 -g",
            cmd(Command::AddReal(
                tcp("198.51.100.5:0"),
                real("10.0.0.5:0", DR, 1),
            )),
        ),
        // -e replaces the whole spec: weight 1 and -g when not given.
        (
            "-e -t 192.0.2.10:80 -r 10.0.0.11:80 -m",
            cmd(Command::EditReal(web, real("10.0.0.11:80", NAT, 1))),
        ),
        (
            "-e -t 192.0.2.10:80 -r 10.0.0.11 -w 5",
            cmd(Command::EditReal(web, real("10.0.0.11:80", DR, 5))),
        ),
        // -d keeps the port as written (or the service's).
        (
            "-d -t 192.0.2.10:80 -r 10.0.0.11",
            cmd(Command::DeleteReal(web, addr("10.0.0.11:80"))),
        ),
        (
            "-d -t 192.0.2.10:80 -r 10.0.0.11:8080",
            cmd(Command::DeleteReal(web, addr("10.0.0.11:8080"))),
        ),
        // -L
        ("", list(|_| {})),
        ("-L", list(|_| {})),
        ("-Ln", list(|o| o.numeric = true)),
        (
            "-l -n --stats --exact",
            list(|o| (o.numeric, o.stats, o.exact) = (true, true, true)),
        ),
        (
            "-L -n --stats -X",
            list(|o| (o.numeric, o.stats, o.exact) = (true, true, true)),
        ),
        ("-L -n --rate", list(|o| (o.numeric, o.rate) = (true, true))),
        (
            "-L -n -c",
            list(|o| (o.numeric, o.connections) = (true, true)),
        ),
        (
            "-L -n -c --persistent-conn",
            list(|o| (o.numeric, o.connections, o.persistent_conn) = (true, true, true)),
        ),
        ("-L --timeout", list(|o| o.timeout = true)),
        (
            "-L -n --thresholds",
            list(|o| (o.numeric, o.thresholds) = (true, true)),
        ),
        (
            "-L -n --nosort",
            list(|o| (o.numeric, o.sort) = (true, false)),
        ),
        ("-L -n --sort", list(|o| o.numeric = true)),
        (
            "-L -n -t 192.0.2.10:80",
            list(|o| (o.numeric, o.service) = (true, Some(web))),
        ),
        (
            "-L -n -o json",
            list(|o| (o.numeric, o.json) = (true, true)),
        ),
        (
            "--list --numeric --connection",
            list(|o| (o.numeric, o.connections) = (true, true)),
        ),
        // -Z
        ("-Z", cmd(Command::Zero(None))),
        (
            "--zero --tcp-service 192.0.2.10:80",
            cmd(Command::Zero(Some(web))),
        ),
        // --set
        (
            "--set 900 120 300",
            cmd(Command::SetTimeouts {
                tcp: 900,
                tcp_fin: 120,
                udp: 300,
            }),
        ),
        (
            "--set 0 0 60",
            cmd(Command::SetTimeouts {
                tcp: 0,
                tcp_fin: 0,
                udp: 60,
            }),
        ),
        // -S, -R, reload
        (
            "-S -n",
            Invocation::Save {
                numeric: true,
                yaml: false,
                service: None,
            },
        ),
        (
            "-S",
            Invocation::Save {
                numeric: false,
                yaml: false,
                service: None,
            },
        ),
        (
            "-S -n -o yaml",
            Invocation::Save {
                numeric: true,
                yaml: true,
                service: None,
            },
        ),
        (
            "-S -n -t 192.0.2.10:80",
            Invocation::Save {
                numeric: true,
                yaml: false,
                service: Some(web),
            },
        ),
        ("-R", Invocation::Restore),
        ("--restore", Invocation::Restore),
        ("reload", Invocation::Reload),
    ]
}

#[test]
fn command_lines_mean_what_ipvsadm_means() {
    let corpus = command_corpus();
    assert!(corpus.len() >= 40);
    for (line, expected) in corpus {
        assert_eq!(parse(line), Ok(expected), "{line}");
    }
}

#[test]
fn every_scheduler_is_accepted_by_its_ipvsadm_name() {
    for scheduler in Scheduler::ALL {
        let line = format!("-A -t 192.0.2.10:80 -s {}", scheduler.name());
        assert_eq!(
            parse(&line),
            Ok(cmd(Command::AddService(svc(
                tcp("192.0.2.10:80"),
                scheduler
            )))),
            "{line}"
        );
    }
}

#[test]
fn help_and_version_are_text_for_stdout() {
    for line in ["-h", "--help", "-h -L -n"] {
        let Ok(Invocation::Help(text)) = parse(line) else {
            panic!("{line}")
        };
        assert!(
            text.contains("Usage:") && text.contains("--add-service"),
            "{line}"
        );
    }
    let Ok(Invocation::Version(text)) = parse("-v") else {
        panic!("-v")
    };
    assert!(text.contains("ipvsadm v1.31"));
}

/// Pairs of (command line, indented expectation) from a corpus file.
fn cases(text: &str) -> Vec<(usize, String, String)> {
    let mut cases = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(expectation) = line.strip_prefix("  ") {
            let (number, command) = pending
                .take()
                .expect("an expectation follows a command line");
            cases.push((number, command, expectation.to_string()));
        } else if !line.is_empty() {
            assert!(
                pending.is_none(),
                "line {}: no expectation for the line before",
                index + 1
            );
            pending = Some((index + 1, line.to_string()));
        }
    }
    assert!(
        pending.is_none(),
        "the last command line has no expectation"
    );
    cases
}

/// "255 No such service" → (255, "No such service").
fn exit_and_message(expectation: &str) -> (i32, String) {
    let (code, message) = expectation
        .split_once(' ')
        .expect("exit status, then message");
    (code.parse().expect("an exit status"), message.to_string())
}

#[test]
fn refused_command_lines_get_ipvsadm_words_and_exit_status() {
    let cases = cases(&read(&corpus("errors.txt")));
    assert!(cases.len() >= 60, "{} cases", cases.len());
    for (number, line, expectation) in cases {
        let expected = exit_and_message(&expectation);
        let error = parse(&line).expect_err(&format!("errors.txt:{number}: {line} should fail"));
        assert_eq!(
            (error.exit_code, error.message),
            expected,
            "errors.txt:{number}: {line}"
        );
    }
}

#[test]
fn a_session_against_one_table_is_refused_like_the_kernel_refuses() {
    let mut table = Table::new();
    for (number, line, expectation) in cases(&read(&corpus("session.txt"))) {
        let Ok(Invocation::Command(command)) = parse(&line) else {
            panic!("session.txt:{number}: {line} is not a table command")
        };
        let outcome = match table.apply(&command) {
            Ok(()) => "ok".to_string(),
            Err(error) => format!("{} {}", error.exit_code(), error.message()),
        };
        assert_eq!(outcome, expectation, "session.txt:{number}: {line}");
    }
    assert_eq!(save(&table), read(&corpus("session.save")));
}

fn restore_into_table(text: &str, origin: &str) -> Table {
    let commands = parse_restore(text).unwrap_or_else(|e| panic!("{origin}: {e}"));
    let mut table = Table::new();
    for command in &commands {
        table
            .apply(command)
            .unwrap_or_else(|e| panic!("{origin}: {command:?}: {e}"));
    }
    table
}

fn files_with_extension(directory: &str, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(corpus(directory))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

#[test]
fn save_files_come_back_byte_for_byte() {
    let files = files_with_extension("save", "save");
    assert!(files.len() >= 6, "{files:?}");
    for path in files {
        let text = read(&path);
        let origin = path.display().to_string();
        let table = restore_into_table(&text, &origin);
        let lines = text.lines().count();
        let entries: usize = table
            .services
            .iter()
            .map(|(_, reals)| 1 + reals.len())
            .sum();
        assert_eq!(entries, lines, "{origin}: one service or real per line");
        assert_eq!(save(&table), text, "{origin}");
    }
}

#[test]
fn hand_written_rules_restore_to_the_canonical_save() {
    for input in files_with_extension("restore", "in") {
        let origin = input.display().to_string();
        let table = restore_into_table(&read(&input), &origin);
        let expected = read(&input.with_extension("expected"));
        assert_eq!(save(&table), expected, "{origin}");
    }
}

#[test]
fn the_save_corpus_covers_every_scheduler_method_and_family() {
    let mut table = Table::new();
    for path in files_with_extension("save", "save") {
        let other = restore_into_table(&read(&path), &path.display().to_string());
        table.services.extend(other.services);
    }
    let services: Vec<&VirtualService> = table.services.iter().map(|(s, _)| s).collect();
    let reals: Vec<&Destination> = table.services.iter().flat_map(|(_, r)| r).collect();
    for scheduler in Scheduler::ALL {
        assert!(
            services.iter().any(|s| s.scheduler == scheduler),
            "{scheduler:?}"
        );
    }
    for method in [DR, TUN, NAT] {
        assert!(reals.iter().any(|r| r.forwarding == method), "{method:?}");
    }
    assert!(services.iter().any(|s| s.id.address.is_ipv6()));
    assert!(services.iter().any(|s| s.id.address.port() == 0));
    assert!(services.iter().any(|s| {
        s.persistence
            .is_some_and(|p| p.netmask != 32 && p.netmask != 128)
    }));
    assert!(
        reals
            .iter()
            .any(|r| r.upper_threshold > 0 && r.lower_threshold > 0)
    );
    assert!(table.services.iter().any(|(s, r)| {
        r.iter()
            .any(|r| r.address.is_ipv6() != s.id.address.is_ipv6())
    }));
}

#[test]
fn a_restore_stops_at_the_first_bad_line_and_names_it() {
    let text = "-A -t 192.0.2.10:80 -s rr\n-a -t 192.0.2.10:80 -r 10.0.0.1 -w 70000\n-C\n";
    let error = parse_restore(text).unwrap_err();
    assert_eq!(error.message, "lbadm -R: line 2: illegal weight specified");
    assert_eq!(error.exit_code, 2);
}

#[test]
fn invocations_travel_as_snake_case_json() {
    let invocation = parse("-a -u [2001:db8::53]:53 -r [2001:db8:1::21]:5353 -m -w 7").unwrap();
    let json = serde_json::to_value(&invocation).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"command": {"add_real": [
            {"protocol": "udp", "address": "[2001:db8::53]:53"},
            {"address": "[2001:db8:1::21]:5353", "forwarding": "masquerade", "weight": 7,
             "upper_threshold": 0, "lower_threshold": 0}
        ]}})
    );
    let service = parse("-A -t 192.0.2.10:80 -s sh -b sh-port -p 60 -M 255.255.255.0").unwrap();
    let json = serde_json::to_value(&service).unwrap();
    assert_eq!(
        json["command"]["add_service"],
        serde_json::json!({"id": {"protocol": "tcp", "address": "192.0.2.10:80"}, "scheduler": "sh",
                            "fallback": false, "hash_port": true,
                            "persistence": {"timeout": 60, "netmask": 24}})
    );
    for line in [
        "-L -n -o json",
        "-Z",
        "--set 1 2 3",
        "-C",
        "-S -o yaml",
        "reload",
        "-R",
    ] {
        let invocation = parse(line).unwrap();
        let back: Invocation =
            serde_json::from_str(&serde_json::to_string(&invocation).unwrap()).unwrap();
        assert_eq!(back, invocation, "{line}");
    }
    let table = restore_into_table(&read(&corpus("save/mixed.save")), "mixed.save");
    let back: Table = serde_json::from_str(&serde_json::to_string(&table).unwrap()).unwrap();
    assert_eq!(back, table);
}
