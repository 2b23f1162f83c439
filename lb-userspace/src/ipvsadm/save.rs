//! `ipvsadm -S -n` (the rules as commands) and `ipvsadm -R` (those
//! commands read back).
//!
//! Save follows ipvsadm 1.31's `print_service_entry` with `FMT_RULE`:
//! services sorted by family, protocol, address, port (`ipvs_cmp_services`),
//! reals by address and port (`ipvs_cmp_dests`), and per service
//!
//! ```text
//! -A -t ADDR:PORT -s SCHED [-p TIMEOUT [-M MASK]] [-b FLAGS]
//! -a -t ADDR:PORT -r ADDR:PORT -g|-i|-m -w WEIGHT [--tun-type ipip]
//! ```
//!
//! plus ` -x N` / ` -y N` when set, which ipvsadm does not write (lbadm
//! keeps them).

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use lb_common::{ForwardingMethod, Scheduler};

use super::addr::ipv4_mask;
use super::errors::UsageError;
use super::parse::parse_args;
use super::table::Table;
use super::types::{Command, Destination, Invocation, ServiceId, VirtualService, full_prefix};

/// The whole table as `ipvsadm -S -n` prints it.
pub fn save(table: &Table) -> String {
    let mut services: Vec<_> = table.services.iter().collect();
    services.sort_by(|(a, _), (b, _)| compare_services(&a.id, &b.id));
    services
        .into_iter()
        .map(|(service, reals)| save_entry(service, reals))
        .collect()
}

/// One service and its reals (`lbadm -S -t VIP:PORT`, lbadm's extension);
/// a missing service is refused as `ipvsadm -L -t` refuses it.
pub fn save_service(table: &Table, id: &ServiceId) -> Result<String, UsageError> {
    let selected = table.select(Some(id))?;
    Ok(selected
        .into_iter()
        .map(|(service, reals)| save_entry(service, reals))
        .collect())
}

fn save_entry(service: &VirtualService, reals: &[Destination]) -> String {
    let mut text = service_line(service);
    let mut reals: Vec<&Destination> = reals.iter().collect();
    reals.sort_by(|a, b| compare_reals(a.address, b.address));
    for real in reals {
        text.push_str(&real_line(&service.id, real));
    }
    text
}

/// `-t ADDR:PORT` / `-u [ADDR]:PORT`.
fn service_switch(id: &ServiceId) -> String {
    format!("{} {}", id.protocol.switch(), numeric(id.address))
}

/// ipvsadm's `addrport_to_anyname` with `FMT_NUMERIC`.
fn numeric(address: SocketAddr) -> String {
    match address.ip() {
        IpAddr::V4(ip) => format!("{ip}:{}", address.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", address.port()),
    }
}

fn service_line(service: &VirtualService) -> String {
    let mut line = format!(
        "-A {} -s {}",
        service_switch(&service.id),
        service.scheduler.name()
    );
    if let Some(persistence) = service.persistence {
        write!(line, " -p {}", persistence.timeout).unwrap();
        let address = service.id.address.ip();
        if persistence.netmask != full_prefix(address) {
            match address {
                IpAddr::V4(_) => write!(line, " -M {}", ipv4_mask(persistence.netmask)),
                IpAddr::V6(_) => write!(line, " -M {}", persistence.netmask),
            }
            .unwrap();
        }
    }
    let flags = scheduler_flags(service);
    if !flags.is_empty() {
        write!(line, " -b {}", flags.join(",")).unwrap();
    }
    line.push('\n');
    line
}

/// ipvsadm's `print_sched_flags`: named for sh and mh, numbered otherwise.
fn scheduler_flags(service: &VirtualService) -> Vec<&'static str> {
    let (fallback, port) = match service.scheduler {
        Scheduler::SourceHash => ("sh-fallback", "sh-port"),
        Scheduler::Maglev => ("mh-fallback", "mh-port"),
        _ => ("flag-1", "flag-2"),
    };
    [(service.fallback, fallback), (service.hash_port, port)]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect()
}

fn real_line(id: &ServiceId, real: &Destination) -> String {
    let mut line = format!(
        "-a {} -r {} {} -w {}",
        service_switch(id),
        numeric(real.address),
        forwarding_switch(real.forwarding),
        real.weight
    );
    if real.forwarding == ForwardingMethod::Tunnel {
        // 1.31's print_tunnel_rule names the (default) tunnel type.
        line.push_str(" --tun-type ipip");
    }
    if real.upper_threshold != 0 {
        write!(line, " -x {}", real.upper_threshold).unwrap();
    }
    if real.lower_threshold != 0 {
        write!(line, " -y {}", real.lower_threshold).unwrap();
    }
    line.push('\n');
    line
}

fn forwarding_switch(method: ForwardingMethod) -> &'static str {
    match method {
        ForwardingMethod::DirectRouting => "-g",
        ForwardingMethod::Tunnel => "-i",
        ForwardingMethod::Masquerade => "-m",
    }
}

/// `ipvs_cmp_services`: AF_INET before AF_INET6, TCP before UDP, then
/// address and port. (ipvsadm subtracts 32-bit words into an `int`, which
/// misorders addresses 2^31 or more apart; this is the order it means.)
fn compare_services(a: &ServiceId, b: &ServiceId) -> Ordering {
    let family = |id: &ServiceId| id.address.is_ipv6();
    family(a)
        .cmp(&family(b))
        .then(a.protocol.number().cmp(&b.protocol.number()))
        .then(a.address.ip().cmp(&b.address.ip()))
        .then(a.address.port().cmp(&b.address.port()))
}

/// `ipvs_cmp_dests`: the kernel's 16-byte address (IPv4 in the first
/// four bytes), then port.
fn compare_reals(a: SocketAddr, b: SocketAddr) -> Ordering {
    kernel_address(a.ip())
        .cmp(&kernel_address(b.ip()))
        .then(a.port().cmp(&b.port()))
}

fn kernel_address(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V6(ip) => ip.octets(),
        IpAddr::V4(ip) => {
            let mut bytes = [0; 16];
            bytes[..4].copy_from_slice(&ip.octets());
            bytes
        }
    }
}

/// `ipvsadm -R`'s input: one invocation per line, words separated by
/// blanks, any word `ipvsadm` dropped (as `config_stream_read` does), blank
/// lines skipped. From a word starting with `#` the line is a comment (what
/// ipvsadm documents; its reader never actually sees the `#`). Only
/// commands that change the table are accepted. The first bad line stops
/// the restore, named by number.
pub fn parse_restore(text: &str) -> Result<Vec<Command>, UsageError> {
    let mut commands = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let words = restore_words(line);
        if words.is_empty() {
            continue;
        }
        let command = restore_command(&words).map_err(|error| UsageError {
            message: format!("lbadm -R: line {}: {}", index + 1, error.message),
            exit_code: error.exit_code,
        })?;
        commands.push(command);
    }
    Ok(commands)
}

fn restore_words(line: &str) -> Vec<String> {
    line.split([' ', '\t', '\r'])
        .filter(|word| !word.is_empty())
        .take_while(|word| !word.starts_with('#'))
        .filter(|word| *word != "ipvsadm")
        .map(str::to_string)
        .collect()
}

fn restore_command(words: &[String]) -> Result<Command, UsageError> {
    match parse_args(words)? {
        Invocation::Command(command) => Ok(command),
        // ipvsadm refuses -R inside -R ("avoid infinite loop").
        Invocation::Restore => Err(UsageError::try_help()),
        _ => Err(UsageError::not_supported(
            "only -A -E -D -C -a -e -d -Z --set belong in a restore",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::types::{Persistence, Protocol};
    use super::*;

    fn id(protocol: Protocol, address: &str) -> ServiceId {
        ServiceId::new(protocol, address.parse().unwrap())
    }

    fn virtual_service(protocol: Protocol, address: &str, scheduler: Scheduler) -> VirtualService {
        VirtualService::with_scheduler(id(protocol, address), scheduler)
    }

    #[test]
    fn a_service_line_orders_its_parts_like_ipvsadm() {
        let mut service = virtual_service(Protocol::Tcp, "192.0.2.1:443", Scheduler::SourceHash);
        service.fallback = true;
        service.hash_port = true;
        service.persistence = Some(Persistence {
            timeout: 300,
            netmask: 24,
        });
        assert_eq!(
            service_line(&service),
            "-A -t 192.0.2.1:443 -s sh -p 300 -M 255.255.255.0 -b sh-fallback,sh-port\n"
        );
    }

    #[test]
    fn ipv6_masks_are_prefix_lengths_and_whole_masks_are_not_written() {
        let mut service = virtual_service(Protocol::Udp, "[2001:db8::1]:53", Scheduler::RoundRobin);
        let whole = "-A -u [2001:db8::1]:53 -s rr -p 60\n";
        let prefix = "-A -u [2001:db8::1]:53 -s rr -p 60 -M 64\n";
        for (netmask, line) in [(128, whole), (64, prefix)] {
            service.persistence = Some(Persistence {
                timeout: 60,
                netmask,
            });
            assert_eq!(service_line(&service), line);
        }
    }

    #[test]
    fn other_schedulers_number_their_flags() {
        let mut service =
            virtual_service(Protocol::Tcp, "192.0.2.1:80", Scheduler::WeightedRoundRobin);
        service.hash_port = true;
        assert_eq!(
            service_line(&service),
            "-A -t 192.0.2.1:80 -s wrr -b flag-2\n"
        );
    }

    #[test]
    fn a_real_line_appends_what_ipvsadm_forgets() {
        let svc = id(Protocol::Tcp, "192.0.2.1:80");
        let mut real = Destination::new(
            "[2001:db8::7]:80".parse().unwrap(),
            ForwardingMethod::Tunnel,
        );
        real.upper_threshold = 100;
        real.lower_threshold = 50;
        assert_eq!(
            real_line(&svc, &real),
            "-a -t 192.0.2.1:80 -r [2001:db8::7]:80 -i -w 1 --tun-type ipip -x 100 -y 50\n"
        );
    }

    #[test]
    fn an_empty_table_saves_as_nothing() {
        assert_eq!(save(&Table::new()), "");
    }

    #[test]
    fn services_sort_by_family_protocol_address_port() {
        let mut ids = [
            id(Protocol::Udp, "192.0.2.1:53"),
            id(Protocol::Tcp, "[2001:db8::1]:80"),
            id(Protocol::Tcp, "192.0.2.10:80"),
            id(Protocol::Tcp, "192.0.2.9:443"),
            id(Protocol::Tcp, "192.0.2.9:80"),
        ];
        ids.sort_by(compare_services);
        let order: Vec<String> = ids.iter().map(service_switch).collect();
        assert_eq!(
            order,
            [
                "-t 192.0.2.9:80",
                "-t 192.0.2.9:443",
                "-t 192.0.2.10:80",
                "-u 192.0.2.1:53",
                "-t [2001:db8::1]:80"
            ]
        );
    }

    #[test]
    fn restore_skips_blank_lines_comments_and_the_program_name() {
        let commands = parse_restore(
            "\n  # a comment\nipvsadm -C\n\t-Z   # zero all\n-A ipvsadm -t 192.0.2.1:80\n",
        )
        .unwrap();
        assert_eq!(commands.len(), 3);
        assert_eq!(commands[0], Command::Clear);
        assert_eq!(commands[1], Command::Zero(None));
    }

    #[test]
    fn restore_names_the_failing_line() {
        let error = parse_restore("-C\n\n-A -t 192.0.2.1:80 -w 3\n").unwrap_err();
        assert_eq!(
            error.message,
            "lbadm -R: line 3: Illegal 'weight' option with the 'add-service' command"
        );
        assert_eq!(error.exit_code, 2);
    }

    #[test]
    fn restore_accepts_only_table_commands() {
        for line in ["-L -n", "-S", "-h"] {
            let error = parse_restore(line).unwrap_err();
            assert!(error.message.contains("only -A -E -D -C"), "{line}");
        }
        let error = parse_restore("-R").unwrap_err();
        assert_eq!(
            error.message,
            "lbadm -R: line 1: Try `lbadm -h' or 'lbadm --help' for more information."
        );
    }
}
