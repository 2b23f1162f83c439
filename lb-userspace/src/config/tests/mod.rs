use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::keyword::Keyword;
use super::*;

/// The host these tests pretend to run on has eth0 and eth1.
fn host(name: &str) -> bool {
    matches!(name, "eth0" | "eth1")
}

fn ok(text: &str) -> Config {
    parse(text, "config.yaml", &host).unwrap_or_else(|e| panic!("unexpected problems:\n{e}"))
}

fn problems(text: &str) -> Vec<Problem> {
    match parse(text, "config.yaml", &host) {
        Ok(config) => panic!("accepted a bad config: {config:?}"),
        Err(e) => e.problems,
    }
}

#[track_caller]
fn assert_problem(problem: &Problem, line: usize, column: usize, path: &str, reason: &str) {
    let at = (
        problem.file.as_str(),
        problem.line,
        problem.column,
        problem.path.as_str(),
    );
    assert_eq!(at, ("config.yaml", line, column, path), "{problem}");
    assert!(
        problem.reason.contains(reason),
        "`{problem}` does not say `{reason}`"
    );
}

/// Asserts that `text` has exactly one problem, at `at` (`line:column`, then
/// the path after a space unless it is empty), and that its reason contains
/// `reason`.
#[track_caller]
fn assert_one(text: &str, at: &str, reason: &str) {
    let (position, path) = at.split_once(' ').unwrap_or((at, ""));
    let (line, column) = position.split_once(':').expect("`line:column`");
    let (line, column) = (line.parse().unwrap(), column.parse().unwrap());
    let problems = problems(text);
    let listing = ConfigError {
        problems: problems.clone(),
    };
    assert_eq!(problems.len(), 1, "expected one problem, got:\n{listing}");
    assert_problem(&problems[0], line, column, path, reason);
}

/// [`assert_one`] for each `text => at, reason;`, a case a line.
macro_rules! assert_each {
    ($($text:expr => $at:literal, $reason:expr;)+) => {
        $(assert_one(&$text, $at, $reason);)+
    };
}

/// A config with one interface and `body` as its `services:` list; `body`
/// starts on line 3.
fn with_services(body: &str) -> String {
    format!("interfaces: [{{ name: eth0 }}]\nservices:\n{body}")
}

/// Lines 3-6 of a service `web` (columns: `name` value 11, `vip` value
/// 10, `port` value 11, `protocol` value 15); line 7 is free.
const WEB: &str = "  - name: web
    vip: 198.18.1.10
    port: 80
    protocol: tcp
";

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(text: &str) -> IpAddr {
    IpAddr::V6(text.parse::<Ipv6Addr>().unwrap())
}

fn real(address: IpAddr, port: u16, weight: u32) -> RealConfig {
    RealConfig {
        address,
        port,
        weight,
        forwarding: None,
        upper_threshold: 0,
        lower_threshold: 0,
        health_check: None,
    }
}

/// A config whose one service is the inline mapping `{ fields }`, on line 3.
fn inline_service(fields: &str) -> String {
    with_services(&format!("  - {{ {fields} }}\n"))
}

/// The interface line, then `extra` from line 2.
fn top(extra: &str) -> String {
    format!("interfaces: [{{ name: eth0 }}]\n{extra}")
}

/// A config with `dataplane` set to `settings` (line 2) and `body` as its
/// `services:` list, starting on line 4.
fn with_dataplane(settings: &str, body: &str) -> String {
    format!("interfaces: [{{ name: eth0 }}]\ndataplane: {{ {settings} }}\nservices:\n{body}")
}

/// A file under `tests/config`.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/config")
        .join(name)
}

mod capacity;
mod deploy_example;
mod good;
mod problems;
mod sections;
mod services;
