//! Decoding: the schema, node by node, from the marked YAML tree to a
//! [`Draft`] of the configuration.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use saphyr::{Scalar, YamlData};

use super::draft::{Draft, DraftService};
use super::health::check::HealthCheck;
use super::limits::*;
use super::problem::EMPTY_FILE;
use super::reader::{Field, Fields, Reader, family, scalar};
use super::schema::*;

/// The fields of the file itself.
const CONFIG_FIELDS: &[&str] = &[
    "interfaces",
    "pin_path",
    "control",
    "dataplane",
    "tunnel",
    "timeouts",
    "icmp_echo_reply",
    "expire_nodest_conn",
    "flood_guard",
    "metrics",
    "services",
];

/// The fields of a service.
const SERVICE_FIELDS: &[&str] = &[
    "name",
    "vip",
    "port",
    "protocol",
    "scheduler",
    "scheduler_flags",
    "persistence",
    "forwarding",
    "health_check",
    "inhibit_on_failure",
    "alpha",
    "quorum",
    "on_quorum_loss",
    "sorry_server",
    "notify_up",
    "notify_down",
    "reals",
];

/// The fields of a real.
const REAL_FIELDS: &[&str] = &[
    "address",
    "port",
    "weight",
    "forwarding",
    "upper_threshold",
    "lower_threshold",
    "health_check",
];

impl Reader<'_> {
    /// An idle timeout: whole seconds, as `ipvsadm --set` takes them.
    fn seconds(&mut self, field: &Field<'_, '_>) -> Option<u32> {
        let range = i64::from(MIN_TIMEOUT)..=i64::from(MAX_TIMEOUT);
        self.integer_as(field, range, "a number of seconds")
            .and_then(|n| u32::try_from(n).ok())
    }

    pub(super) fn decode_config(&mut self, root: &Field<'_, '_>) -> Option<Draft> {
        let empty = matches!(scalar(root.node), Some((_, Scalar::Null)));
        if empty || matches!(root.node.data, YamlData::BadValue) {
            self.report_on(root, EMPTY_FILE);
            return None;
        }
        let fields = self.mapping(root, CONFIG_FIELDS)?;
        let interfaces = self
            .required_with(&fields, "interfaces", Self::decode_interfaces)
            .unwrap_or_default();
        let default_pin_path = PathBuf::from(DEFAULT_PIN_PATH);
        let pin_path = self.optional(&fields, "pin_path", default_pin_path, Self::decode_pin_path);
        let control = self.or_default(&fields, "control", Self::decode_control);
        let dataplane = self.or_default(&fields, "dataplane", Self::decode_dataplane);
        let tunnel = self.or_default(&fields, "tunnel", Self::decode_tunnel);
        let timeouts = self.or_default(&fields, "timeouts", Self::decode_timeouts);
        let icmp_echo_reply = self.optional(
            &fields,
            "icmp_echo_reply",
            DEFAULT_ICMP_ECHO_REPLY,
            Self::boolean,
        );
        let expire_nodest_conn = self.optional(&fields, "expire_nodest_conn", false, Self::boolean);
        let flood_guard = self.or_default(&fields, "flood_guard", Self::decode_flood_guard);
        let metrics = self.or_default(&fields, "metrics", Self::decode_metrics);
        let services = match fields.get("services") {
            Some(list) => self.list(&list, Self::decode_service).unwrap_or_default(),
            None => Vec::new(),
        };
        Some(Draft {
            interfaces,
            pin_path,
            control,
            dataplane,
            tunnel,
            timeouts,
            icmp_echo_reply,
            expire_nodest_conn,
            flood_guard,
            metrics,
            services,
        })
    }

    fn decode_interfaces(&mut self, list: &Field<'_, '_>) -> Option<Vec<Option<InterfaceConfig>>> {
        let interfaces = self.list(list, Self::decode_interface)?;
        if interfaces.is_empty() {
            self.report_on(list, "at least one interface is required");
        }
        Some(interfaces)
    }

    fn decode_interface(&mut self, item: &Field<'_, '_>) -> Option<InterfaceConfig> {
        let fields = self.mapping(item, &["name", "xdp_mode"])?;
        let name = self.required_with(&fields, "name", |r, f| r.text(f, "an interface name"));
        let xdp_mode = self.optional(&fields, "xdp_mode", XdpMode::default(), Self::keyword);
        Some(InterfaceConfig {
            name: name?.to_owned(),
            xdp_mode: xdp_mode?,
        })
    }

    fn decode_control(&mut self, field: &Field<'_, '_>) -> Option<ControlConfig> {
        let fields = self.mapping(field, &["socket"])?;
        let default = PathBuf::from(DEFAULT_CONTROL_SOCKET);
        let socket = self.optional(&fields, "socket", default, Self::decode_pin_path);
        Some(ControlConfig { socket: socket? })
    }

    /// An absolute path (pin directory, control socket).
    fn decode_pin_path(&mut self, field: &Field<'_, '_>) -> Option<PathBuf> {
        let path = PathBuf::from(self.text(field, "a path")?);
        // The daemon may run from any directory; a relative pin path would
        // make it lose track of its own maps.
        self.ensure(field, path.is_absolute(), || {
            let shown = path.display();
            format!("`{shown}` must be an absolute path")
        })?;
        Some(path)
    }

    fn decode_dataplane(&mut self, field: &Field<'_, '_>) -> Option<DataplaneConfig> {
        let fields = self.mapping(
            field,
            &[
                "maglev_table_size",
                "flow_table_entries",
                "max_services",
                "max_reals",
            ],
        )?;
        let maglev_table_size = self.optional(
            &fields,
            "maglev_table_size",
            DEFAULT_MAGLEV_TABLE_SIZE,
            Self::decode_maglev_table_size,
        );
        let flow_table_entries = self.optional(
            &fields,
            "flow_table_entries",
            DEFAULT_FLOW_TABLE_ENTRIES,
            |r, f| r.u32_in(f, MIN_FLOW_TABLE_ENTRIES..=MAX_FLOW_TABLE_ENTRIES),
        );
        let max_services = self.optional(&fields, "max_services", DEFAULT_MAX_SERVICES, |r, f| {
            r.u32_in(f, 1..=MAX_MAX_SERVICES)
        });
        let max_reals = self.optional(&fields, "max_reals", DEFAULT_MAX_REALS, |r, f| {
            r.u32_in(f, 1..=MAX_MAX_REALS)
        });
        Some(DataplaneConfig {
            maglev_table_size: maglev_table_size?,
            flow_table_entries: flow_table_entries?,
            max_services: max_services?,
            max_reals: max_reals?,
        })
    }

    fn decode_maglev_table_size(&mut self, field: &Field<'_, '_>) -> Option<u32> {
        let size = self.u32_in(field, MIN_MAGLEV_TABLE_SIZE..=MAX_MAGLEV_TABLE_SIZE)?;
        // Maglev's permutations (offset + j * skip mod size) only visit every
        // slot when the size is prime.
        self.ensure(field, is_prime(size), || {
            format!("{size} is not a prime number (Maglev needs a prime table size, e.g. 65537)")
        })?;
        Some(size)
    }

    fn decode_tunnel(&mut self, field: &Field<'_, '_>) -> Option<TunnelConfig> {
        let fields = self.mapping(field, &["source_v4", "source_v6"])?;
        let source_v4 = self.optional(&fields, "source_v4", None, |r, f| {
            r.tunnel_source(f, "IPv4", "source_v6", |address| match address {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
        });
        let source_v6 = self.optional(&fields, "source_v6", None, |r, f| {
            r.tunnel_source(f, "IPv6", "source_v4", |address| match address {
                IpAddr::V6(v6) => Some(v6),
                IpAddr::V4(_) => None,
            })
        });
        Some(TunnelConfig {
            source_v4: source_v4?,
            source_v6: source_v6?,
        })
    }

    /// A unicast address of the family `pick` accepts; `other` names the
    /// field that takes the other family.
    fn tunnel_source<A>(
        &mut self,
        field: &Field<'_, '_>,
        wanted: &str,
        other: &str,
        pick: impl FnOnce(IpAddr) -> Option<A>,
    ) -> Option<Option<A>> {
        let address = self.ip(field)?;
        let picked = pick(address);
        if picked.is_none() {
            let found = family(address);
            self.report_on(
                field,
                format!(
                    "{address} is an {found} address, this field takes an {wanted} address \
                     ({found} tunnels take theirs from `tunnel.{other}`)"
                ),
            );
        }
        picked.map(Some)
    }

    fn decode_timeouts(&mut self, field: &Field<'_, '_>) -> Option<TimeoutsConfig> {
        let fields = self.mapping(field, &["tcp", "tcp_fin", "udp"])?;
        let tcp = self.optional(&fields, "tcp", DEFAULT_TCP_TIMEOUT, Self::seconds);
        let tcp_fin = self.optional(&fields, "tcp_fin", DEFAULT_TCP_FIN_TIMEOUT, Self::seconds);
        let udp = self.optional(&fields, "udp", DEFAULT_UDP_TIMEOUT, Self::seconds);
        Some(TimeoutsConfig {
            tcp: tcp?,
            tcp_fin: tcp_fin?,
            udp: udp?,
        })
    }

    fn decode_flood_guard(&mut self, field: &Field<'_, '_>) -> Option<FloodGuardConfig> {
        let fields = self.mapping(field, &["new_flows_per_second"])?;
        let new_flows_per_second = self.optional(
            &fields,
            "new_flows_per_second",
            DEFAULT_FLOOD_GUARD_NEW_FLOWS,
            |r, f| r.u32_in(f, 0..=u32::MAX),
        );
        Some(FloodGuardConfig {
            new_flows_per_second: new_flows_per_second?,
        })
    }

    fn decode_metrics(&mut self, field: &Field<'_, '_>) -> Option<MetricsConfig> {
        let fields = self.mapping(field, &["listen"])?;
        let listen = self.optional(&fields, "listen", None, |r, f| {
            r.listen_address(f).map(Some)
        });
        Some(MetricsConfig { listen: listen? })
    }

    /// An address and port to listen on: `IP:PORT`, IPv6 in brackets.
    fn listen_address(&mut self, field: &Field<'_, '_>) -> Option<SocketAddr> {
        const EXAMPLE: &str = "`127.0.0.1:9105` or `\"[::1]:9105\"`";
        let text = self.text(field, &format!("an address and port such as {EXAMPLE}"))?;
        let Ok(address) = text.parse::<SocketAddr>() else {
            self.report_on(
                field,
                format!(
                    "`{text}` is not an address and port \
                     (IP:PORT with IPv6 in brackets, such as {EXAMPLE})"
                ),
            );
            return None;
        };
        let ip = address.ip();
        let unicast = !(ip.is_multicast() || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()));
        self.ensure(field, unicast, || {
            format!("cannot listen on {ip}: not a unicast address")
        })?;
        self.ensure(field, address.port() != 0, || {
            format!("port 0 would pick a random port; give the port to scrape (e.g. {ip}:9105)")
        })?;
        Some(address)
    }

    fn decode_service(&mut self, item: &Field<'_, '_>) -> Option<DraftService> {
        let fields = self.mapping(item, SERVICE_FIELDS)?;
        let name = self.required_with(&fields, "name", Self::decode_service_name);
        let vip = self.required_with(&fields, "vip", Self::ip);
        let port = self.required_with(&fields, "port", Self::port);
        let protocol = self.required_with(&fields, "protocol", Self::keyword);
        let scheduler = self.optional(&fields, "scheduler", Scheduler::default(), Self::keyword);
        let scheduler_flags = match (fields.get("scheduler_flags"), scheduler) {
            (Some(list), Some(scheduler)) => self.decode_scheduler_flags(&list, scheduler),
            (Some(_), None) => None,
            (None, scheduler) => scheduler.map(default_scheduler_flags),
        };
        let persistence = self.optional(&fields, "persistence", None, |r, f| {
            r.decode_persistence(f, vip.ok_or(())).map(Some)
        });
        let forwarding = self.optional(&fields, "forwarding", Forwarding::default(), Self::keyword);
        // A real's port defaults to the service's; if that is broken the
        // service is rejected anyway, and 0 lets its reals still be read.
        let default_port = port.unwrap_or(0);
        let health = self.decode_service_health(&fields, default_port);
        let service_check = health.as_ref().map(|health| health.health_check.clone());
        let reals = match fields.get("reals") {
            Some(list) => self.list(&list, |r, item| {
                r.decode_real(item, default_port, service_check.as_ref())
            }),
            None => Some(Vec::new()),
        };
        let service = ServiceConfig {
            name: name?,
            vip: vip?,
            port: port?,
            protocol: protocol?,
            scheduler: scheduler?,
            scheduler_flags: scheduler_flags?,
            persistence: persistence?,
            forwarding: forwarding?,
            health: health?,
            reals: Vec::new(),
        };
        Some(DraftService {
            service,
            reals: reals?,
        })
    }

    fn decode_service_name(&mut self, field: &Field<'_, '_>) -> Option<String> {
        let name = self.text(field, "a service name")?;
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        let valid =
            (1..=MAX_SERVICE_NAME_LEN).contains(&name.len()) && name.chars().all(valid_char);
        self.ensure(field, valid, || {
            format!(
                "`{name}` is not a valid service name \
                     (1 to {MAX_SERVICE_NAME_LEN} of A-Z a-z 0-9 _ . -)"
            )
        })?;
        Some(name.to_owned())
    }

    /// A list of flags, each of `scheduler`.
    fn decode_scheduler_flags(
        &mut self,
        list: &Field<'_, '_>,
        scheduler: Scheduler,
    ) -> Option<Vec<SchedulerFlag>> {
        let flags = self.list(list, |r, item| {
            let flag: SchedulerFlag = r.keyword(item)?;
            if !flag.belongs_to(scheduler) {
                let spelled = SchedulerFlag::for_scheduler(scheduler, flag.is_fallback());
                let owner = flag.scheduler().map_or_else(
                    || "the numbered flags".to_owned(),
                    |own| format!("the `{own}` scheduler"),
                );
                r.report_on(
                    item,
                    format!("`{flag}` is a flag of {owner}; for `{scheduler}` write `{spelled}`"),
                );
                return None;
            }
            Some(flag)
        })?;
        let mut flags: Vec<SchedulerFlag> = flags.into_iter().collect::<Option<_>>()?;
        flags.sort_by_key(|flag| !flag.is_fallback());
        flags.dedup();
        Some(flags)
    }

    /// `{ timeout: N, prefix: P }`; the prefix defaults to the whole
    /// address of the VIP's family.
    fn decode_persistence(
        &mut self,
        field: &Field<'_, '_>,
        vip: Result<IpAddr, ()>,
    ) -> Option<PersistenceConfig> {
        let fields = self.mapping(field, &["timeout", "prefix"])?;
        let timeout = self.optional(
            &fields,
            "timeout",
            DEFAULT_PERSISTENCE_TIMEOUT,
            Self::seconds,
        );
        let whole = match vip {
            Ok(IpAddr::V6(_)) => 128,
            _ => 32,
        };
        let prefix = self.optional(&fields, "prefix", whole, |r, f| {
            r.integer_as(f, 1..=i64::from(whole), "a prefix length")
                .and_then(|n| u8::try_from(n).ok())
        });
        Some(PersistenceConfig {
            timeout: timeout?,
            prefix: prefix?,
        })
    }

    /// The service's health settings; reals are decoded after, against
    /// its check.
    fn decode_service_health(
        &mut self,
        fields: &Fields,
        default_port: u16,
    ) -> Option<ServiceHealth> {
        let defaults = ServiceHealth::unchecked();
        let health_check = self.optional(
            fields,
            "health_check",
            defaults.health_check.clone(),
            |r, f| r.decode_health_check(f, &HealthCheck::default()),
        );
        let inhibit_on_failure = self.optional(fields, "inhibit_on_failure", false, Self::boolean);
        let alpha = self.optional(fields, "alpha", false, Self::boolean);
        let quorum = self.optional(fields, "quorum", defaults.quorum, |r, f| {
            r.u32_in(f, 0..=u32::MAX)
        });
        let on_quorum_loss = self.optional(fields, "on_quorum_loss", None, |r, f| {
            r.keyword(f).map(Some)
        });
        let sorry_server = self.optional(fields, "sorry_server", None, |r, f| {
            r.decode_sorry_server(f, default_port).map(Some)
        });
        let notify_up = self.optional(fields, "notify_up", Vec::new(), Self::command);
        let notify_down = self.optional(fields, "notify_down", Vec::new(), Self::command);
        Some(ServiceHealth {
            health_check: health_check?,
            inhibit_on_failure: inhibit_on_failure?,
            alpha: alpha?,
            quorum: quorum?,
            on_quorum_loss: on_quorum_loss?,
            sorry_server: sorry_server?,
            notify_up: notify_up?,
            notify_down: notify_down?,
        })
    }

    /// `{ address, port, forwarding }`: a real that is never probed.
    fn decode_sorry_server(
        &mut self,
        field: &Field<'_, '_>,
        default_port: u16,
    ) -> Option<RealConfig> {
        let fields = self.mapping(field, &["address", "port", "forwarding"])?;
        let address = self.required_with(&fields, "address", Self::ip);
        let port = self.optional(&fields, "port", default_port, Self::port);
        let forwarding = self.optional(&fields, "forwarding", None, |r, f| r.keyword(f).map(Some));
        Some(RealConfig {
            address: address?,
            port: port?,
            weight: DEFAULT_WEIGHT,
            forwarding: forwarding?,
            upper_threshold: 0,
            lower_threshold: 0,
            health_check: None,
        })
    }

    fn decode_real(
        &mut self,
        item: &Field<'_, '_>,
        default_port: u16,
        service_check: Option<&HealthCheck>,
    ) -> Option<RealConfig> {
        let fields = self.mapping(item, REAL_FIELDS)?;
        let address = self.required_with(&fields, "address", Self::ip);
        let port = self.optional(&fields, "port", default_port, Self::port);
        let weight = self.optional(&fields, "weight", DEFAULT_WEIGHT, |r, f| {
            r.u32_in(f, 0..=MAX_WEIGHT)
        });
        let forwarding = self.optional(&fields, "forwarding", None, |r, f| r.keyword(f).map(Some));
        let upper_threshold = self.optional(&fields, "upper_threshold", 0, |r, f| {
            r.u32_in(f, 0..=MAX_THRESHOLD)
        });
        let lower_threshold = self.optional(&fields, "lower_threshold", 0, |r, f| {
            r.u32_in(f, 0..=MAX_THRESHOLD)
        });
        // Decoded against the service's check; if that one was broken the
        // service is rejected anyway and the defaults stand in.
        let base = service_check.cloned().unwrap_or_default();
        let health_check = self.optional(&fields, "health_check", None, |r, f| {
            r.decode_health_check(f, &base).map(Some)
        });
        Some(RealConfig {
            address: address?,
            port: port?,
            weight: weight?,
            forwarding: forwarding?,
            upper_threshold: upper_threshold?,
            lower_threshold: lower_threshold?,
            health_check: health_check?,
        })
    }
}

fn is_prime(n: u32) -> bool {
    let n = u64::from(n);
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}
