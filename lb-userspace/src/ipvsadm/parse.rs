//! ipvsadm 1.31's `process_options`: the command line to an [`Invocation`],
//! checked in ipvsadm's order so the first complaint is the one ipvsadm
//! would print.
//!
//! 1. the first option must be a command (else "Try ... -h");
//! 2. the other options, in order: values read and checked as they come,
//!    a second use of one option refused;
//! 3. `--set`'s three values, then any stray argument;
//! 4. `-b` against the scheduler;
//! 5. which options each command takes (`commands_v_options`);
//! 6. per command: port 0 needs persistence, a real's port and family,
//!    list options that exclude each other.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use lb_common::{ForwardingMethod, Scheduler};

use super::addr::{self, AddressError, HostPort};
use super::errors::UsageError;
use super::help;
use super::options::{Found, Opt, Scanner};
use super::types::{
    Command, DEFAULT_PERSISTENCE_TIMEOUT, DEFAULT_WEIGHT, Destination, Invocation, ListOptions,
    MAX_TIMEOUT, MAX_WEIGHT, Persistence, Protocol, ServiceId, VirtualService,
};

/// The scheduler `-A`/`-E` use without `-s` (ipvsadm's is `wlc`).
const PRODUCT_DEFAULT_SCHEDULER: Scheduler = Scheduler::Maglev;

/// Parses one `lbadm` command line (without the program name).
pub fn parse_args(args: &[String]) -> Result<Invocation, UsageError> {
    if args.is_empty() {
        // ipvsadm with no argument lists the table.
        return Ok(Invocation::List(ListOptions::default()));
    }
    if args[0] == "reload" {
        return parse_reload(&args[1..]);
    }
    let mut scanner = Scanner::new(args);
    let kind = match scanner.next() {
        Some(Ok(first)) => match first.opt {
            Opt::Help => return Ok(Invocation::Help(help::usage())),
            Opt::Version => return Ok(Invocation::Version(help::version())),
            opt => command_kind(opt)?,
        },
        _ => return Err(UsageError::try_help()),
    };
    let mut draft = Draft::new(kind);
    for found in scanner.by_ref() {
        draft.take(found.map_err(|error| error.into_usage())?)?;
    }
    draft.take_arguments(scanner.into_arguments())?;
    draft.finish()
}

/// `lbadm reload`, lbadm's own word.
fn parse_reload(rest: &[String]) -> Result<Invocation, UsageError> {
    match rest.first() {
        None => Ok(Invocation::Reload),
        Some(extra) => Err(UsageError::fail(format!("unexpected argument {extra}"))),
    }
}

/// The command an invocation starts with; anything else is ipvsadm's
/// "Try ... -h".
fn command_kind(opt: Opt) -> Result<CommandKind, UsageError> {
    Ok(match opt {
        Opt::AddService => CommandKind::Add,
        Opt::EditService => CommandKind::Edit,
        Opt::DeleteService => CommandKind::Delete,
        Opt::Clear => CommandKind::Flush,
        Opt::List => CommandKind::List,
        Opt::AddServer => CommandKind::AddDest,
        Opt::DeleteServer => CommandKind::DeleteDest,
        Opt::EditServer => CommandKind::EditDest,
        Opt::Set => CommandKind::Timeout,
        Opt::Restore => CommandKind::Restore,
        Opt::Save => CommandKind::Save,
        Opt::Zero => CommandKind::Zero,
        Opt::StartDaemon | Opt::StopDaemon => return Err(sync_daemon_not_supported()),
        _ => return Err(UsageError::try_help()),
    })
}

/// ipvsadm's commands, in its `cmdnames` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CommandKind {
    Add,
    Edit,
    Delete,
    Flush,
    List,
    AddDest,
    DeleteDest,
    EditDest,
    Timeout,
    Restore,
    Save,
    Zero,
}

impl CommandKind {
    const fn name(self) -> &'static str {
        match self {
            Self::Add => "add-service",
            Self::Edit => "edit-service",
            Self::Delete => "delete-service",
            Self::Flush => "flush",
            Self::List => "list",
            Self::AddDest => "add-server",
            Self::DeleteDest => "delete-server",
            Self::EditDest => "edit-server",
            Self::Timeout => "set",
            Self::Restore => "restore",
            Self::Save => "save",
            Self::Zero => "zero",
        }
    }

    /// ipvsadm's `commands_v_options` row over [`Column::ALL`]: `+`
    /// compulsory, `x` illegal, `1` at most one of them, ` ` optional.
    const fn rules(self) -> &'static [u8; Column::COUNT] {
        match self {
            //          n c svc s p M r fwd w x y tot st rt thr pc srt ex b tt out
            Self::Add | Self::Edit => b"xx+   xxxxxxxxxxxx xx",
            Self::Delete => b"xx+xxxxxxxxxxxxxxxxxx",
            Self::List => b" 11xxxxxxxx1      xx ",
            Self::AddDest | Self::EditDest => b"xx+xxx+    xxxxxxxx x",
            Self::DeleteDest => b"xx+xxx+xxxxxxxxxxxxxx",
            // lbadm's extensions: -S may name one service and take -o yaml.
            Self::Save => b" x xxxxxxxxxxxxxxxxx ",
            Self::Zero => b"xx xxxxxxxxxxxxxxxxxx",
            Self::Flush | Self::Timeout | Self::Restore => b"xxxxxxxxxxxxxxxxxxxxx",
        }
    }
}

/// The options ipvsadm's command table speaks of, in its column order
/// (those lbadm refuses outright are left out), plus lbadm's `-o`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Numeric,
    Connection,
    ServiceAddress,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    ForwardingMethod,
    Weight,
    UThreshold,
    LThreshold,
    Timeout,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Exact,
    SchedFlags,
    TunType,
    Output,
}

impl Column {
    const COUNT: usize = 21;
    const ALL: [Column; Self::COUNT] = [
        Self::Numeric,
        Self::Connection,
        Self::ServiceAddress,
        Self::Scheduler,
        Self::Persistent,
        Self::Netmask,
        Self::RealServer,
        Self::ForwardingMethod,
        Self::Weight,
        Self::UThreshold,
        Self::LThreshold,
        Self::Timeout,
        Self::Stats,
        Self::Rate,
        Self::Thresholds,
        Self::PersistentConn,
        Self::NoSort,
        Self::Exact,
        Self::SchedFlags,
        Self::TunType,
        Self::Output,
    ];

    /// ipvsadm's `optnames`.
    const fn name(self) -> &'static str {
        match self {
            Self::Numeric => "numeric",
            Self::Connection => "connection",
            Self::ServiceAddress => "service-address",
            Self::Scheduler => "scheduler",
            Self::Persistent => "persistent",
            Self::Netmask => "netmask",
            Self::RealServer => "real-server",
            Self::ForwardingMethod => "forwarding-method",
            Self::Weight => "weight",
            Self::UThreshold => "u-threshold",
            Self::LThreshold => "l-threshold",
            Self::Timeout => "timeout",
            Self::Stats => "stats",
            Self::Rate => "rate",
            Self::Thresholds => "thresholds",
            Self::PersistentConn => "persistent-conn",
            Self::NoSort => "nosort",
            Self::Exact => "exact",
            Self::SchedFlags => "sched-flags",
            Self::TunType => "tun-type",
            Self::Output => "output",
        }
    }

    const fn bit(self) -> u32 {
        1 << self as u32
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutputFormat {
    Json,
    Yaml,
}

/// The persistence mask as ipvsadm holds it while reading options: a
/// 32-bit IPv4 mask until an IPv6 service address resets it to 128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Netmask {
    V4(Ipv4Addr),
    V6(i64),
}

/// ipvsadm's `ipvs_command_entry` while options are read, with its
/// defaults: weight 1, direct routing, a /32 persistence mask.
struct Draft {
    kind: CommandKind,
    present: u32,
    protocol: Protocol,
    service: Option<SocketAddr>,
    scheduler: Option<String>,
    persistence_timeout: Option<u32>,
    netmask: Netmask,
    sched_flags: Option<String>,
    real: Option<SocketAddr>,
    forwarding: ForwardingMethod,
    weight: u32,
    upper_threshold: u32,
    lower_threshold: u32,
    output: Option<OutputFormat>,
    timeouts: Option<[u32; 3]>,
}

impl Draft {
    fn new(kind: CommandKind) -> Self {
        Self {
            kind,
            present: 0,
            protocol: Protocol::Tcp,
            service: None,
            scheduler: None,
            persistence_timeout: None,
            netmask: Netmask::V4(Ipv4Addr::BROADCAST),
            sched_flags: None,
            real: None,
            forwarding: ForwardingMethod::DirectRouting,
            weight: DEFAULT_WEIGHT,
            upper_threshold: 0,
            lower_threshold: 0,
            output: None,
            timeouts: None,
        }
    }

    fn has(&self, column: Column) -> bool {
        self.present & column.bit() != 0
    }

    /// ipvsadm's `set_option`: each option at most once.
    fn mark(&mut self, column: Column) -> Result<(), UsageError> {
        if self.has(column) {
            return Err(UsageError::fail(format!(
                "multiple '{}' options specified",
                column.name()
            )));
        }
        self.present |= column.bit();
        Ok(())
    }

    /// One option after the command, as ipvsadm's `parse_options` loop.
    fn take(&mut self, found: Found<'_>) -> Result<(), UsageError> {
        let value = found.value.unwrap_or_default();
        match found.opt {
            Opt::TcpService => self.take_service(Protocol::Tcp, value),
            Opt::UdpService => self.take_service(Protocol::Udp, value),
            Opt::Scheduler => {
                self.mark(Column::Scheduler)?;
                self.scheduler = Some(value.to_string());
                Ok(())
            }
            Opt::Persistent => {
                self.mark(Column::Persistent)?;
                self.persistence_timeout = Some(persistence_timeout(found.value)?);
                Ok(())
            }
            Opt::Netmask => self.take_netmask(value),
            Opt::RealServer => self.take_real(value),
            Opt::Gatewaying => self.take_forwarding(ForwardingMethod::DirectRouting),
            Opt::Ipip => self.take_forwarding(ForwardingMethod::Tunnel),
            Opt::Masquerading => self.take_forwarding(ForwardingMethod::Masquerade),
            Opt::Weight => {
                self.mark(Column::Weight)?;
                self.weight = number(value, i64::from(MAX_WEIGHT), "illegal weight specified")?;
                Ok(())
            }
            Opt::UThreshold => {
                self.mark(Column::UThreshold)?;
                self.upper_threshold = threshold(value, "illegal u_threshold specified")?;
                Ok(())
            }
            Opt::LThreshold => {
                self.mark(Column::LThreshold)?;
                self.lower_threshold = threshold(value, "illegal l_threshold specified")?;
                Ok(())
            }
            Opt::SchedFlags => {
                self.mark(Column::SchedFlags)?;
                self.sched_flags = Some(value.to_string());
                Ok(())
            }
            Opt::TunType => self.take_tunnel_type(value),
            Opt::Output => self.take_output(found.value),
            Opt::Numeric => self.mark(Column::Numeric),
            Opt::Connection => self.mark(Column::Connection),
            Opt::Timeout => self.mark(Column::Timeout),
            Opt::Stats => self.mark(Column::Stats),
            Opt::Rate => self.mark(Column::Rate),
            Opt::Thresholds => self.mark(Column::Thresholds),
            Opt::PersistentConn => self.mark(Column::PersistentConn),
            Opt::NoSort => self.mark(Column::NoSort),
            Opt::Exact => self.mark(Column::Exact),
            // ipvsadm: "Sort is the default, this is a no-op for compatibility".
            Opt::Sort => Ok(()),
            unsupported => refuse(unsupported, found.token),
        }
    }

    fn take_service(&mut self, protocol: Protocol, text: &str) -> Result<(), UsageError> {
        self.mark(Column::ServiceAddress)?;
        let parsed = host_port(text, "illegal virtual server address[:port] specified")?;
        self.protocol = protocol;
        self.service = Some(SocketAddr::new(parsed.ip, parsed.port.unwrap_or(0)));
        if parsed.ip.is_ipv6() {
            // parse_service sets an IPv6 service's netmask to 128, over
            // any -M read before it.
            self.netmask = Netmask::V6(128);
        }
        Ok(())
    }

    fn take_netmask(&mut self, text: &str) -> Result<(), UsageError> {
        self.mark(Column::Netmask)?;
        // Read by the family of the service address given *so far*.
        let service_is_ipv6 = self.service.is_some_and(|service| service.is_ipv6());
        self.netmask = if service_is_ipv6 {
            let prefix = addr::atoi(text);
            if !(1..=128).contains(&prefix) {
                return Err(UsageError::fail("illegal ipv6 netmask specified"));
            }
            Netmask::V6(prefix)
        } else {
            let mask = addr::inet_aton(text).ok_or_else(|| {
                UsageError::fail("illegal virtual server persistent mask specified")
            })?;
            Netmask::V4(mask)
        };
        Ok(())
    }

    fn take_real(&mut self, text: &str) -> Result<(), UsageError> {
        self.mark(Column::RealServer)?;
        let parsed = host_port(text, "illegal real server address[:port] specified")?;
        // Without a port the real takes the service's, as known so far.
        let service_port = self.service.map_or(0, |service| service.port());
        self.real = Some(SocketAddr::new(
            parsed.ip,
            parsed.port.unwrap_or(service_port),
        ));
        Ok(())
    }

    fn take_forwarding(&mut self, method: ForwardingMethod) -> Result<(), UsageError> {
        self.mark(Column::ForwardingMethod)?;
        self.forwarding = method;
        Ok(())
    }

    fn take_tunnel_type(&mut self, name: &str) -> Result<(), UsageError> {
        self.mark(Column::TunType)?;
        match name {
            // ipvsadm -S writes `--tun-type ipip` for every -i real; it is
            // the only kind of tunnel there is here.
            "ipip" => Ok(()),
            "gue" | "gre" => Err(UsageError::not_supported(format!(
                "tunnel type `{name}' is not supported; -i tunnels are IP-in-IP (--tun-type ipip)"
            ))),
            _ => Err(UsageError::fail("illegal tunnel type specified")),
        }
    }

    fn take_output(&mut self, value: Option<&str>) -> Result<(), UsageError> {
        let format = match value {
            None => return refuse(Opt::Ops, "-o"),
            Some("json") => OutputFormat::Json,
            Some("yaml") => OutputFormat::Yaml,
            Some(other) => {
                return Err(UsageError::not_supported(format!(
                    "unknown output format `{other}' (-L -o json, -S -o yaml)"
                )));
            }
        };
        self.mark(Column::Output)?;
        self.output = Some(format);
        Ok(())
    }

    /// The words that are not options: `--set`'s three timeouts, then
    /// nothing else.
    fn take_arguments(&mut self, arguments: Vec<&str>) -> Result<(), UsageError> {
        let mut arguments = arguments.into_iter();
        if self.kind == CommandKind::Timeout {
            let values: Vec<&str> = arguments.by_ref().take(3).collect();
            let [tcp, tcp_fin, udp] = values[..] else {
                return Err(UsageError::fail("--set option requires 3 timeout values"));
            };
            self.timeouts = Some([timeout(tcp, 0)?, timeout(tcp_fin, 0)?, timeout(udp, 0)?]);
        }
        match arguments.next() {
            Some(extra) => Err(UsageError::fail(format!("unexpected argument {extra}"))),
            None => Ok(()),
        }
    }

    fn finish(self) -> Result<Invocation, UsageError> {
        let flags = self.scheduler_flags()?;
        self.check_options_against_command()?;
        match self.kind {
            CommandKind::Add => Ok(Invocation::Command(Command::AddService(
                self.virtual_service(flags)?,
            ))),
            CommandKind::Edit => Ok(Invocation::Command(Command::EditService(
                self.virtual_service(flags)?,
            ))),
            CommandKind::Delete => Ok(Invocation::Command(Command::DeleteService(
                self.required_service(),
            ))),
            CommandKind::Flush => Ok(Invocation::Command(Command::Clear)),
            CommandKind::AddDest => Ok(Invocation::Command(Command::AddReal(
                self.required_service(),
                self.destination()?,
            ))),
            CommandKind::EditDest => Ok(Invocation::Command(Command::EditReal(
                self.required_service(),
                self.destination()?,
            ))),
            CommandKind::DeleteDest => Ok(Invocation::Command(Command::DeleteReal(
                self.required_service(),
                self.real.expect("-r is compulsory for -d"),
            ))),
            CommandKind::Zero => Ok(Invocation::Command(Command::Zero(self.zero_target()))),
            CommandKind::Timeout => {
                let [tcp, tcp_fin, udp] = self.timeouts.expect("--set read its values");
                Ok(Invocation::Command(Command::SetTimeouts {
                    tcp,
                    tcp_fin,
                    udp,
                }))
            }
            CommandKind::List => self.list(),
            CommandKind::Save => self.save(),
            CommandKind::Restore => Ok(Invocation::Restore),
        }
    }

    /// ipvsadm's `generic_opt_check`, column by column.
    fn check_options_against_command(&self) -> Result<(), UsageError> {
        let command = self.kind.name();
        let rules = self.kind.rules();
        let mut exclusive: Option<Column> = None;
        for (column, rule) in Column::ALL.into_iter().zip(rules) {
            let present = self.has(column);
            match (rule, present) {
                (b'+', false) => {
                    return Err(UsageError::fail(format!(
                        "You need to supply the '{}' option for the '{command}' command",
                        column.name()
                    )));
                }
                (b'x', true) => {
                    return Err(UsageError::fail(format!(
                        "Illegal '{}' option with the '{command}' command",
                        column.name()
                    )));
                }
                (b'1', true) => match exclusive {
                    None => exclusive = Some(column),
                    Some(first) => {
                        return Err(UsageError::fail(format!(
                            "The option '{}' conflicts with the '{}' option in the '{command}' command",
                            column.name(),
                            first.name()
                        )));
                    }
                },
                _ => {}
            }
        }
        Ok(())
    }

    /// `-b` read against the scheduler named so far (ipvsadm parses it
    /// after every option). Returns (fallback, hash_port); without `-b` a
    /// service with no `-s` gets the product default, mh-port.
    fn scheduler_flags(&self) -> Result<(bool, bool), UsageError> {
        let Some(list) = &self.sched_flags else {
            return Ok((false, self.scheduler_name().is_none()));
        };
        let scheduler = self
            .scheduler_name()
            .unwrap_or(PRODUCT_DEFAULT_SCHEDULER.name());
        let (mut fallback, mut hash_port) = (false, false);
        // strtok: empty items between commas are skipped.
        for flag in list.split(',').filter(|flag| !flag.is_empty()) {
            match scheduler_flag(flag, scheduler)? {
                SchedulerFlag::Fallback => fallback = true,
                SchedulerFlag::HashPort => hash_port = true,
            }
        }
        Ok((fallback, hash_port))
    }

    /// `-s`, where an empty name counts as none (ipvsadm tests `strlen`).
    fn scheduler_name(&self) -> Option<&str> {
        self.scheduler.as_deref().filter(|name| !name.is_empty())
    }

    fn service_id(&self) -> Option<ServiceId> {
        self.service
            .map(|address| ServiceId::new(self.protocol, address))
    }

    /// libipvs zeroes every service when the one named is the unspecified
    /// address with port 0.
    fn zero_target(&self) -> Option<ServiceId> {
        self.service_id()
            .filter(|id| !(id.address.ip().is_unspecified() && id.address.port() == 0))
    }

    fn required_service(&self) -> ServiceId {
        self.service_id()
            .expect("the command table makes the service compulsory")
    }

    /// `-A` / `-E`: port 0 needs persistence; the scheduler must exist.
    fn virtual_service(
        &self,
        (fallback, hash_port): (bool, bool),
    ) -> Result<VirtualService, UsageError> {
        let id = self.required_service();
        if id.address.port() == 0 && self.persistence_timeout.is_none() {
            return Err(UsageError::fail(
                "Zero port specified for non-persistent service",
            ));
        }
        let scheduler = match self.scheduler_name() {
            None => PRODUCT_DEFAULT_SCHEDULER,
            // The kernel's answer to a scheduler it has no module for.
            Some(name) => Scheduler::from_name(name)
                .ok_or_else(|| UsageError::kernel("Scheduler or persistence engine not found"))?,
        };
        let persistence = self
            .persistence_timeout
            .map(|timeout| self.persistence(timeout, id.address.ip()))
            .transpose()?;
        Ok(VirtualService {
            id,
            scheduler,
            fallback,
            hash_port,
            persistence,
        })
    }

    fn persistence(&self, timeout: u32, service: IpAddr) -> Result<Persistence, UsageError> {
        let netmask = match (self.netmask, service) {
            (Netmask::V6(prefix), IpAddr::V6(_)) => prefix as u8,
            (Netmask::V4(mask), IpAddr::V4(_)) => addr::ipv4_mask_prefix(mask).ok_or_else(|| {
                UsageError::not_supported(format!(
                    "persistence netmask {mask} is not contiguous; only prefix masks are supported"
                ))
            })?,
            _ => unreachable!("an IPv6 service address resets the mask to /128"),
        };
        Ok(Persistence { timeout, netmask })
    }

    /// `-a` / `-e`: direct routing and tunnelling keep the service's port;
    /// another address family only through a tunnel.
    fn destination(&self) -> Result<Destination, UsageError> {
        let service = self.required_service().address;
        let mut address = self.real.expect("-r is compulsory for -a and -e");
        if self.forwarding != ForwardingMethod::Masquerade {
            address.set_port(service.port());
        }
        if address.is_ipv6() != service.is_ipv6() && self.forwarding != ForwardingMethod::Tunnel {
            return Err(UsageError::fail(
                "Different address family is allowed only for tunneling servers",
            ));
        }
        if self.has(Column::TunType) && self.forwarding != ForwardingMethod::Tunnel {
            return Err(UsageError::fail(
                "Tunnel options conflict with forward method",
            ));
        }
        Ok(Destination {
            address,
            forwarding: self.forwarding,
            weight: self.weight,
            upper_threshold: self.upper_threshold,
            lower_threshold: self.lower_threshold,
        })
    }

    fn list(&self) -> Result<Invocation, UsageError> {
        let any = |columns: &[Column]| columns.iter().any(|&column| self.has(column));
        let what = [Column::Connection, Column::Timeout];
        let details = [Column::Stats, Column::Rate, Column::Thresholds];
        if (any(&what) && any(&details))
            || (self.has(Column::Timeout) && self.has(Column::PersistentConn))
        {
            return Err(UsageError::fail("options conflicts in the list command"));
        }
        if self.output == Some(OutputFormat::Yaml) {
            return Err(UsageError::not_supported(
                "-o yaml goes with -S (the daemon's configuration); -L takes -o json",
            ));
        }
        Ok(Invocation::List(ListOptions {
            numeric: self.has(Column::Numeric),
            connections: self.has(Column::Connection),
            stats: self.has(Column::Stats),
            rate: self.has(Column::Rate),
            exact: self.has(Column::Exact),
            timeout: self.has(Column::Timeout),
            thresholds: self.has(Column::Thresholds),
            persistent_conn: self.has(Column::PersistentConn),
            sort: !self.has(Column::NoSort),
            json: self.output == Some(OutputFormat::Json),
            service: self.service_id(),
        }))
    }

    fn save(&self) -> Result<Invocation, UsageError> {
        if self.output == Some(OutputFormat::Json) {
            return Err(UsageError::not_supported(
                "-o json goes with -L; -S takes -o yaml (the daemon's configuration)",
            ));
        }
        Ok(Invocation::Save {
            numeric: self.has(Column::Numeric),
            yaml: self.output == Some(OutputFormat::Yaml),
            service: self.service_id(),
        })
    }
}

/// The two scheduler flags IPVS defines (`IP_VS_SVC_F_SCHED1`, `_SCHED2`).
enum SchedulerFlag {
    Fallback,
    HashPort,
}

/// ipvsadm's `parse_sched_flags` for one flag: the numbered names fit
/// any scheduler, the named ones only theirs.
fn scheduler_flag(flag: &str, scheduler: &str) -> Result<SchedulerFlag, UsageError> {
    let (meaning, only_for) = match flag {
        "flag-1" => (SchedulerFlag::Fallback, None),
        "flag-2" => (SchedulerFlag::HashPort, None),
        "sh-fallback" => (SchedulerFlag::Fallback, Some("sh")),
        "sh-port" => (SchedulerFlag::HashPort, Some("sh")),
        "mh-fallback" => (SchedulerFlag::Fallback, Some("mh")),
        "mh-port" => (SchedulerFlag::HashPort, Some("mh")),
        "flag-3" => {
            return Err(UsageError::not_supported(
                "scheduler flag `flag-3' is not supported (no scheduler here uses it)",
            ));
        }
        _ => return Err(UsageError::fail(format!("invalid scheduler flag `{flag}'"))),
    };
    if only_for.is_some_and(|only_for| only_for != scheduler) {
        return Err(UsageError::fail(format!(
            "incompatible scheduler flag `{flag}'"
        )));
    }
    Ok(meaning)
}

fn host_port(text: &str, illegal: &str) -> Result<HostPort, UsageError> {
    addr::parse_host_port(text).map_err(|error| match error {
        AddressError::Illegal => UsageError::fail(illegal),
        AddressError::HostName(name) => UsageError::not_supported(format!(
            "host names are not supported (`{name}'); give a numeric IPv4 or [IPv6] address"
        )),
        AddressError::PortName(name) => UsageError::not_supported(format!(
            "service names are not supported (`{name}'); give a port number"
        )),
    })
}

/// `-p [timeout]`: 1 second to 31 days, 300 when absent.
fn persistence_timeout(value: Option<&str>) -> Result<u32, UsageError> {
    value.map_or(Ok(DEFAULT_PERSISTENCE_TIMEOUT), |text| timeout(text, 1))
}

/// ipvsadm's `parse_timeout`.
fn timeout(text: &str, min: i64) -> Result<u32, UsageError> {
    addr::string_to_number(text, min, i64::from(MAX_TIMEOUT))
        .map(|seconds| seconds as u32)
        .ok_or_else(|| UsageError::fail(format!("invalid timeout value `{text}' specified")))
}

fn number(text: &str, max: i64, illegal: &str) -> Result<u32, UsageError> {
    addr::string_to_number(text, 0, max)
        .map(|value| value as u32)
        .ok_or_else(|| UsageError::fail(illegal))
}

/// `-x` / `-y`: 0 to INT_MAX.
fn threshold(text: &str, illegal: &str) -> Result<u32, UsageError> {
    number(text, i64::from(i32::MAX), illegal)
}

fn sync_daemon_not_supported() -> UsageError {
    UsageError::not_supported(
        "the connection synchronisation daemon (--start-daemon, --stop-daemon and their options) is not supported",
    )
}

/// Options of ipvsadm 1.31 this product does not have, and commands given
/// where an option belongs (ipvsadm's "invalid option").
fn refuse(opt: Opt, token: &str) -> Result<(), UsageError> {
    Err(match opt {
        Opt::FwmarkService => {
            UsageError::not_supported("firewall-mark services (-f) are not supported; use -t/-u")
        }
        Opt::SctpService => {
            UsageError::not_supported("SCTP services (--sctp-service) are not supported; use -t/-u")
        }
        Opt::Ipv6 => UsageError::not_supported(
            "-6 (IPv6 firewall-mark services) is not supported; give the IPv6 address with -t/-u",
        ),
        Opt::Ops => UsageError::not_supported("one-packet scheduling (-o/--ops) is not supported"),
        Opt::PersistenceEngine => {
            UsageError::not_supported("persistence engines (--pe) are not supported")
        }
        Opt::TunPort | Opt::TunNocsum | Opt::TunCsum | Opt::TunRemcsum => {
            UsageError::not_supported(format!(
                "{token} is not supported; -i tunnels are IP-in-IP, without GUE/GRE options"
            ))
        }
        Opt::TunInfo => {
            UsageError::not_supported("--tun-info is not supported; every -i tunnel is IP-in-IP")
        }
        Opt::StartDaemon
        | Opt::StopDaemon
        | Opt::Daemon
        | Opt::McastInterface
        | Opt::McastGroup
        | Opt::McastPort
        | Opt::McastTtl
        | Opt::SyncMaxlen
        | Opt::SyncId => sync_daemon_not_supported(),
        _ => UsageError::fail(format!("invalid option `{token}'")),
    })
}

#[cfg(test)]
mod tests;
