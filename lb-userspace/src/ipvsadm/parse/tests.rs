use super::*;

fn parse(line: &str) -> Result<Invocation, UsageError> {
    let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    parse_args(&words)
}

fn command(line: &str) -> Command {
    match parse(line) {
        Ok(Invocation::Command(command)) => command,
        other => panic!("{line}: {other:?}"),
    }
}

fn error(line: &str) -> (i32, String) {
    let error = parse(line).expect_err(line);
    (error.exit_code, error.message)
}

fn tcp(address: &str) -> ServiceId {
    ServiceId::new(Protocol::Tcp, address.parse().unwrap())
}

#[test]
fn the_command_table_rows_cover_every_column() {
    for kind in [
        CommandKind::Add,
        CommandKind::Edit,
        CommandKind::Delete,
        CommandKind::Flush,
        CommandKind::List,
        CommandKind::AddDest,
        CommandKind::DeleteDest,
        CommandKind::EditDest,
        CommandKind::Timeout,
        CommandKind::Restore,
        CommandKind::Save,
        CommandKind::Zero,
    ] {
        assert!(
            kind.rules().iter().all(|rule| b"+x1 ".contains(rule)),
            "{kind:?}"
        );
    }
    let position = |column| Column::ALL.iter().position(|&c| c == column).unwrap();
    assert_eq!(CommandKind::Add.rules()[position(Column::SchedFlags)], b' ');
    assert_eq!(
        CommandKind::AddDest.rules()[position(Column::TunType)],
        b' '
    );
    assert_eq!(CommandKind::List.rules()[position(Column::Timeout)], b'1');
    assert_eq!(CommandKind::List.rules()[position(Column::Output)], b' ');
}

#[test]
fn without_s_the_service_hashes_the_whole_connection() {
    let Command::AddService(service) = command("-A -t 192.0.2.1:80") else {
        panic!()
    };
    assert_eq!(
        service,
        VirtualService::with_product_defaults(tcp("192.0.2.1:80"))
    );
}

#[test]
fn an_explicit_mh_has_no_flags_unless_given() {
    let Command::AddService(service) = command("-A -t 192.0.2.1:80 -s mh") else {
        panic!()
    };
    assert!(!service.hash_port && !service.fallback);
    let Command::AddService(service) = command("-A -t 192.0.2.1:80 -b mh-fallback") else {
        panic!()
    };
    assert!(service.fallback && !service.hash_port);
    assert_eq!(service.scheduler, Scheduler::Maglev);
}

#[test]
fn flag_numbers_are_the_scheduler_flags() {
    let Command::AddService(service) = command("-A -t 192.0.2.1:80 -s rr -b flag-2,,flag-1") else {
        panic!()
    };
    assert!(service.fallback && service.hash_port);
}

#[test]
fn a_netmask_before_an_ipv6_service_is_overridden() {
    let Command::AddService(service) = command("-A -M 255.255.0.0 -t [2001:db8::1]:80 -p") else {
        panic!()
    };
    assert_eq!(service.persistence.unwrap().netmask, 128);
    let Command::AddService(service) = command("-A -t [2001:db8::1]:80 -p -M 48") else {
        panic!()
    };
    assert_eq!(service.persistence.unwrap().netmask, 48);
}

#[test]
fn a_real_without_port_takes_the_service_port_known_so_far() {
    // Masquerading keeps whatever port the real was given: here the
    // service's port was not known yet when -r was read.
    let Command::AddReal(_, real) = command("-a -r 10.0.0.1 -t 192.0.2.1:80 -m") else {
        panic!()
    };
    assert_eq!(real.address, "10.0.0.1:0".parse().unwrap());
    let Command::AddReal(_, real) = command("-a -r 10.0.0.1 -t 192.0.2.1:80") else {
        panic!()
    };
    assert_eq!(real.address, "10.0.0.1:80".parse().unwrap());
}

#[test]
fn edit_server_without_weight_resets_it_to_one() {
    let Command::EditReal(_, real) = command("-e -t 192.0.2.1:80 -r 10.0.0.1") else {
        panic!()
    };
    assert_eq!(real.weight, 1);
    assert_eq!(real.forwarding, ForwardingMethod::DirectRouting);
}

#[test]
fn errors_come_in_ipvsadm_order() {
    // An option's own error comes before the command table's.
    assert_eq!(
        error("-D -w x -t 192.0.2.1:80"),
        (2, "illegal weight specified".into())
    );
    // A stray argument comes before the command table.
    assert_eq!(
        error("-C -n extra"),
        (2, "unexpected argument extra".into())
    );
    // -b is checked before the command table too.
    assert_eq!(
        error("-D -t 192.0.2.1:80 -b bogus"),
        (2, "invalid scheduler flag `bogus'".into())
    );
    // The first column in table order wins.
    assert_eq!(
        error("-A -w 1 -n"),
        (
            2,
            "Illegal 'numeric' option with the 'add-service' command".into()
        )
    );
}

#[test]
fn help_and_version_only_lead() {
    assert!(matches!(parse("-h -L"), Ok(Invocation::Help(_))));
    assert!(matches!(parse("--version"), Ok(Invocation::Version(_))));
    assert_eq!(error("-L -v"), (2, "invalid option `-v'".into()));
}

#[test]
fn set_reads_its_values_wherever_they_are() {
    assert_eq!(
        command("900 --set 120 300"),
        Command::SetTimeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300
        }
    );
}

#[test]
fn an_empty_s_is_no_s() {
    let words = ["-A", "-t", "192.0.2.1:80", "-s", ""].map(String::from);
    let Ok(Invocation::Command(Command::AddService(service))) = parse_args(&words) else {
        panic!()
    };
    assert_eq!(
        service,
        VirtualService::with_product_defaults(tcp("192.0.2.1:80"))
    );
}

#[test]
fn zeroing_the_unspecified_address_zeroes_everything() {
    assert_eq!(command("-Z -t 0.0.0.0:0"), Command::Zero(None));
    assert_eq!(command("-Z -u [::]:0"), Command::Zero(None));
    assert_eq!(
        command("-Z -t 0.0.0.0:80"),
        Command::Zero(Some(tcp("0.0.0.0:80")))
    );
}

#[test]
fn an_empty_b_means_no_flags() {
    let words = ["-A", "-t", "192.0.2.1:80", "-b", ""].map(String::from);
    let Ok(Invocation::Command(Command::AddService(service))) = parse_args(&words) else {
        panic!()
    };
    assert!(!service.hash_port && !service.fallback);
}
