//! lbadm: drive the balancer the way ipvsadm drives IPVS.
//!
//! The command line is ipvsadm 1.31's (see `lb_userspace::ipvsadm`).
//! Listings read the pinned maps, so they work while the daemon restarts;
//! changes, `-S`, `--rate` and health go through the daemon's control
//! socket. lbadm's own additions: `--pin-path DIR` (where lbd pinned its
//! maps), `--socket PATH` (its control socket), `--health` (with `-L`: each
//! real's checks and verdict) and `lbadm health-check -t|-u SERVICE [-r
//! REAL] CHECK|none` (sets a health check, CHECK being a `health_check`
//! mapping in YAML).

use std::{
    io::Read as _,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context as _, Result};
use aya::maps::IterableMap as _;
use lb_userspace::{
    config::{DEFAULT_CONTROL_SOCKET, DEFAULT_PIN_PATH},
    control::{Applied, CallError, Client, LiveService, Request, Status},
    dataplane::{Maps, PinLayout},
    ipvsadm::{self, Invocation, ListOptions, ServiceId, Table},
    listing::{self, Layout, View},
};

/// lbadm's own options, taken off the command line before ipvsadm's
/// grammar sees it.
struct Paths {
    pins: PathBuf,
    socket: PathBuf,
    /// `--health`: the health view of `-L`.
    health_view: bool,
}

fn main() -> ExitCode {
    let (paths, args) = match own_options(std::env::args().skip(1).collect()) {
        Ok(split) => split,
        Err(message) => return fail(&message, 2),
    };
    if args.first().map(String::as_str) == Some("health-check") {
        // Its own errors are usage errors: exit 2, as ipvsadm's fail().
        return finish(health_check(&args[1..], &paths.socket), 2);
    }
    let invocation = match ipvsadm::parse_args(&args) {
        Ok(invocation) => invocation,
        Err(error) => return fail(&error.message, error.exit_code),
    };
    finish(run(invocation, &paths), 1)
}

/// The exit of a command: the daemon's refusal with its own status, an
/// unreachable daemon with 1, anything else lbadm found with `own_code`.
fn finish(result: Result<()>, own_code: i32) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => match error.downcast::<CallError>() {
            Ok(CallError::Refused { message, exit_code }) => fail(&message, exit_code),
            Ok(unreachable) => fail(&format!("lbadm: {unreachable}"), 1),
            Err(error) => fail(&format!("lbadm: {error:#}"), own_code),
        },
    }
}

fn fail(message: &str, code: i32) -> ExitCode {
    eprintln!("{message}");
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn own_options(args: Vec<String>) -> Result<(Paths, Vec<String>), String> {
    let mut paths = Paths {
        pins: PathBuf::from(DEFAULT_PIN_PATH),
        socket: PathBuf::from(DEFAULT_CONTROL_SOCKET),
        health_view: false,
    };
    let mut rest = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let slot = match name.as_str() {
            "--health" => {
                paths.health_view = true;
                continue;
            }
            "--pin-path" => &mut paths.pins,
            "--socket" => &mut paths.socket,
            _ => {
                rest.push(arg);
                continue;
            }
        };
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("lbadm: {name} needs a path"))?;
        *slot = PathBuf::from(value);
    }
    Ok((paths, rest))
}

fn run(invocation: Invocation, paths: &Paths) -> Result<()> {
    match invocation {
        Invocation::Help(text) | Invocation::Version(text) => print!("{text}"),
        Invocation::Command(command) => {
            apply(&paths.socket, vec![command])?;
        }
        Invocation::Restore => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the rules from standard input")?;
            let commands = ipvsadm::parse_restore(&text).map_err(|error| CallError::Refused {
                message: error.message,
                exit_code: error.exit_code,
            })?;
            apply(&paths.socket, commands)?;
        }
        Invocation::Save { yaml: true, .. } => {
            let yaml: String = Client::connect(&paths.socket)?.call(Request::Config)?;
            print!("{yaml}");
        }
        Invocation::Save { service, .. } => {
            let mut table: Table = Client::connect(&paths.socket)?.call(Request::Services)?;
            if let Some(only) = service {
                table
                    .services
                    .retain(|(virtual_service, _)| virtual_service.id == only);
            }
            print!("{}", ipvsadm::save(&table));
        }
        Invocation::Reload => {
            let _: Status = Client::connect(&paths.socket)?.call(Request::Reload)?;
        }
        Invocation::List(options) => print!("{}", list(&options, paths)?),
    }
    Ok(())
}

fn apply(socket: &Path, commands: Vec<ipvsadm::Command>) -> Result<()> {
    let _: Applied = Client::connect(socket)?.call(Request::Apply { commands })?;
    Ok(())
}

fn list(options: &ListOptions, paths: &Paths) -> Result<String> {
    let maps = Maps::open_pinned(&PinLayout::new(&paths.pins))?;
    if options.timeout {
        let settings = maps.settings.get(&0, 0).unwrap_or_default();
        return Ok(if options.json {
            let seconds = |state: lb_common::ConnectionState| {
                settings.for_state_ns(state as u8) / 1_000_000_000
            };
            serde_json::json!({
                "tcp": seconds(lb_common::ConnectionState::TcpEstablished),
                "tcp_fin": seconds(lb_common::ConnectionState::TcpClosing),
                "udp": seconds(lb_common::ConnectionState::Udp),
            })
            .to_string()
                + "\n"
        } else {
            listing::render_timeouts(&settings)
        });
    }
    if options.connections {
        let rows = listing::collect_connections(&maps)?;
        return Ok(if options.json {
            listing::connections_json(&rows).to_string() + "\n"
        } else {
            listing::render_connections(&rows, options.persistent_conn)
        });
    }
    let mut rows = listing::collect(&maps, options.sort)?;
    if let Some(only) = options.service {
        rows.retain(|row| matches_service(row, &only));
        if rows.is_empty() {
            // ipvsadm's words when the kernel has no such service.
            return Err(CallError::Refused {
                message: "No such service".to_owned(),
                exit_code: 1,
            }
            .into());
        }
    }
    if options.rate || options.json || paths.health_view {
        match live(&paths.socket) {
            Ok(live) => listing::merge_live(&mut rows, &live),
            // Rates only exist in the daemon; the JSON listing does without.
            Err(error) if options.rate || paths.health_view => return Err(error.into()),
            Err(_) => {}
        }
    }
    if options.json {
        return Ok(listing::services_json(&rows).to_string() + "\n");
    }
    let view = if paths.health_view {
        View::Health
    } else if options.stats {
        View::Stats
    } else if options.rate {
        View::Rate
    } else if options.thresholds {
        View::Thresholds
    } else if options.persistent_conn {
        View::PersistentConn
    } else {
        View::Plain
    };
    let table_size = maps.flows.map().info()?.max_entries();
    let layout = Layout {
        view,
        exact: options.exact,
        version_line: options.service.is_none(),
    };
    Ok(listing::render(&rows, table_size, layout))
}

/// `health-check -t|-u VIP:PORT [-r REAL:PORT] CHECK|none`.
fn health_check(args: &[String], socket: &Path) -> Result<()> {
    let usage = "usage: lbadm health-check -t|-u VIP:PORT [-r REAL:PORT] CHECK|none\n\
                 CHECK is a health_check mapping, e.g. '{type: http, interval: 2s, http: {path: /healthz}}'";
    let mut service = None;
    let mut real = None;
    let mut check = None;
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let mut address = |what: &str| -> Result<std::net::SocketAddr> {
            let text = words
                .next()
                .with_context(|| format!("{what} needs ADDRESS:PORT"))?;
            text.parse()
                .with_context(|| format!("`{text}` is not ADDRESS:PORT ([v6]:port for IPv6)"))
        };
        match word.as_str() {
            "-t" | "--tcp-service" => {
                service = Some(ServiceId::new(ipvsadm::Protocol::Tcp, address(word)?));
            }
            "-u" | "--udp-service" => {
                service = Some(ServiceId::new(ipvsadm::Protocol::Udp, address(word)?));
            }
            "-r" | "--real-server" => real = Some(address(word)?),
            text if check.is_none() => check = Some(text.to_owned()),
            other => anyhow::bail!("unexpected `{other}`\n{usage}"),
        }
    }
    let (Some(service), Some(check)) = (service, check) else {
        anyhow::bail!("{usage}");
    };
    let check = (check != "none").then_some(check);
    let _: Applied = Client::connect(socket)?.call(Request::SetHealthCheck {
        service,
        real,
        check,
    })?;
    Ok(())
}

fn matches_service(row: &listing::ServiceRow, id: &ServiceId) -> bool {
    row.protocol == id.protocol.number() && row.address == id.address
}

fn live(socket: &Path) -> Result<Vec<LiveService>, CallError> {
    Client::connect(socket)?.call(Request::Live)
}
