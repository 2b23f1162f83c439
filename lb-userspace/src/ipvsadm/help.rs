//! `-h` and `-v`, laid out like ipvsadm's `usage_exit` and `version`, listing
//! what lbadm accepts.

use lb_common::Scheduler;

/// `-v`: which ipvsadm this speaks for.
pub(super) fn version() -> String {
    format!(
        "lbadm v{} (ipvsadm v1.31 command set, IPVS v1.2.1 formats)\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// `-h`: ipvsadm's usage text for the subset lbadm has, and its additions.
pub(super) fn usage() -> String {
    let schedulers: Vec<&str> = Scheduler::ALL.iter().map(|s| s.name()).collect();
    format!(
        "{version}{synopsis}{commands}{services}{options}",
        version = version(),
        synopsis = SYNOPSIS,
        commands = COMMANDS,
        services = SERVICES,
        options = OPTIONS.replace("{schedulers}", &schedulers.join("|")),
    )
}

const SYNOPSIS: &str = "\
Usage:
  lbadm -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [-b sched-flags]
  lbadm -D virtual-service
  lbadm -C
  lbadm -R
  lbadm -S [-n] [virtual-service] [-o yaml]
  lbadm -a|e virtual-service -r server-address [options]
  lbadm -d virtual-service -r server-address
  lbadm -L|l [virtual-service] [options] [-o json]
  lbadm -Z [virtual-service]
  lbadm --set tcp tcpfin udp
  lbadm reload
  lbadm -h

";

const COMMANDS: &str = "\
Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  reload                      re-read the daemon's configuration file
  --help            -h        display this help message

";

const SERVICES: &str = "\
virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]
                                      host is a numeric IPv4 address or [IPv6]

";

const OPTIONS: &str = "\
Options:
  --scheduler    -s scheduler         one of {schedulers},
                                      the default is mh with mh-port.
  --persistent   -p [timeout]         persistent service
  --netmask      -M netmask           persistent granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --connection   -c                   output of current connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact                             expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --numeric      -n                   numeric output of addresses and ports
  --sched-flags  -b flags             scheduler flags (comma-separated)
                 -o json|yaml         -L as JSON; -S as the daemon's YAML configuration
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_names_every_scheduler_and_no_placeholder() {
        let text = usage();
        assert!(text.contains("mh|rr|wrr|sh|dh|lc|wlc|sed|nq"));
        assert!(!text.contains('{'));
        assert!(text.starts_with("lbadm v"));
    }
}
