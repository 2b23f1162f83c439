//! What the daemon does for control requests, and the once-a-second and
//! once-every-two-seconds bookkeeping that listings and schedulers read:
//! connection counts, thresholds, rates.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Result;
use aya::maps::PerCpuValues;
use lb_common::{REAL_DOWN, REAL_NEXT_HOP_KNOWN, RealConns, TrafficCounters};
use tracing::{info, warn};

use super::Daemon;
use crate::{
    config::{
        self,
        identity::{RealIdentity, service_key, settings_of},
    },
    control::{
        Applied, Health, LiveReal, LiveService, Request, Response, Status,
        table::{services_of, table_of},
    },
    dataplane::{monotonic_now_ns, zero_traffic},
    estimator::{self, Subject},
    ipvsadm::{Command, ServiceId},
    reaper, thresholds,
};

impl Daemon {
    pub(super) async fn handle(&mut self, request: Request) -> Response {
        match request {
            Request::Status => Response::ok(self.status()),
            Request::Services => Response::ok(table_of(&self.config.services)),
            Request::Config => match serde_yaml::to_string(&self.config) {
                Ok(yaml) => Response::ok(yaml),
                Err(error) => {
                    Response::error(format!("cannot render the configuration: {error}"), 1)
                }
            },
            Request::Apply { commands } => self.apply_commands(&commands).await,
            Request::Reload => match self.reload().await {
                Ok(()) => Response::ok(self.status()),
                Err(error) => Response::error(
                    format!("reload rejected, the running state is unchanged: {error:#}"),
                    1,
                ),
            },
            Request::Live => Response::ok(self.live()),
            Request::SetHealthCheck {
                service,
                real,
                check,
            } => {
                self.set_health_check(&service, real, check.as_deref())
                    .await
            }
        }
    }

    /// A service's (or one real's) health check, changed at run time.
    async fn set_health_check(
        &mut self,
        id: &ServiceId,
        real: Option<std::net::SocketAddr>,
        check: Option<&str>,
    ) -> Response {
        let mut next = self.config.clone();
        let Some(service) = next
            .services
            .iter_mut()
            .find(|service| crate::control::table::service_id(service) == *id)
        else {
            return Response::error("No such service".to_owned(), 1);
        };
        let base = match real {
            Some(_) => service.health.health_check.clone(),
            None => config::HealthCheck::default(),
        };
        let parsed = match check {
            Some(text) => match config::health::parse_health_check(text, &base) {
                Ok(check) => Some(check),
                Err(problems) => return Response::error(problems.to_string(), 1),
            },
            None => None,
        };
        match real {
            None => service.health.health_check = parsed.unwrap_or_default(),
            Some(address) => {
                let Some(real) = service.reals.iter_mut().find(|r| r.endpoint() == address) else {
                    return Response::error("No such destination".to_owned(), 1);
                };
                real.health_check = parsed;
            }
        }
        if let Err(problems) = config::check(&next, "lbadm") {
            return Response::error(problems.to_string(), 1);
        }
        if let Err(error) = self.switch_to(next).await {
            return Response::error(
                format!("change rejected, the running state is unchanged: {error:#}"),
                1,
            );
        }
        info!(service = %id.address, real = ?real, "health check changed");
        Response::ok(Applied {
            commands: 1,
            ..Applied::default()
        })
    }

    fn status(&self) -> Status {
        Status {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            config_path: self.config_path.display().to_string(),
            services: self.config.services.len(),
            reals: self.config.services.iter().map(|s| s.reals.len()).sum(),
        }
    }

    /// ipvsadm commands as one change: each is checked against the table
    /// as IPVS would (so errors read like ipvsadm's), the result against
    /// the configuration rules, and only then is anything written.
    async fn apply_commands(&mut self, commands: &[Command]) -> Response {
        let mut table = table_of(&self.config.services);
        let mut timeouts = self.config.timeouts;
        let mut zero: Vec<Option<ServiceId>> = Vec::new();
        for command in commands {
            if let Err(error) = table.apply(command) {
                return Response::error(error.message(), error.exit_code());
            }
            match command {
                Command::SetTimeouts { tcp, tcp_fin, udp } => {
                    // ipvsadm --set: 0 keeps the current value.
                    for (current, wanted) in [
                        (&mut timeouts.tcp, *tcp),
                        (&mut timeouts.tcp_fin, *tcp_fin),
                        (&mut timeouts.udp, *udp),
                    ] {
                        if wanted != 0 {
                            *current = wanted;
                        }
                    }
                }
                Command::Zero(service) => zero.push(*service),
                _ => {}
            }
        }
        let mut next = self.config.clone();
        next.services = services_of(&table, &self.config.services);
        next.timeouts = timeouts;
        if let Err(problems) = config::check(&next, "lbadm") {
            let reasons: Vec<String> = problems
                .problems
                .iter()
                .map(|problem| format!("{}: {}", problem.path, problem.reason))
                .collect();
            return Response::error(reasons.join("\n"), 1);
        }
        let before = self.reconciler.ids().clone();
        if next != self.config
            && let Err(error) = self.switch_to(next).await
        {
            return Response::error(
                format!("change rejected, the running state is unchanged: {error:#}"),
                1,
            );
        }
        for service in &zero {
            if let Err(error) = self.zero_counters(service.as_ref()) {
                return Response::error(format!("zeroing counters failed: {error:#}"), 1);
            }
        }
        let after = self.reconciler.ids();
        info!(commands = commands.len(), "applied lbadm commands");
        Response::ok(Applied {
            commands: commands.len(),
            services_added: missing_from(&before.services, &after.services),
            services_removed: missing_from(&after.services, &before.services),
            reals_written: missing_from(&before.reals, &after.reals),
            reals_removed: missing_from(&after.reals, &before.reals),
        })
    }

    /// `-Z`: every counter of one service (and its reals) or of all.
    fn zero_counters(&mut self, only: Option<&ServiceId>) -> Result<()> {
        let ids = self.reconciler.ids().clone();
        let mut subjects = Vec::new();
        for service in &self.config.services {
            if only.is_some_and(|only| *only != crate::control::table::service_id(service)) {
                continue;
            }
            let service_id = ids.services[&service_key(service)];
            zero_traffic(&mut self.dataplane.maps.service_stats, service_id)?;
            subjects.push(Subject::Service(service_id));
            for real in &service.reals {
                let real_id = ids.reals[&RealIdentity::new(service_id, real)];
                zero_traffic(&mut self.dataplane.maps.real_stats, real_id)?;
                subjects.push(Subject::Real(real_id));
            }
        }
        self.estimator.zero(subjects);
        Ok(())
    }

    /// Rates and health of everything configured, for `lbadm --rate` and
    /// the JSON listings.
    fn live(&self) -> Vec<LiveService> {
        let ids = self.reconciler.ids();
        let entries = self.reconciler.reals();
        self.running
            .services
            .iter()
            .filter_map(|service| {
                let service_id = *ids.services.get(&service_key(service))?;
                let reals = service
                    .reals
                    .iter()
                    .filter_map(|real| {
                        let real_id = *ids.reals.get(&RealIdentity::new(service_id, real))?;
                        let entry = entries.get(&real_id)?;
                        let check = self.check_status(service, real);
                        let failed = check.as_ref().is_some_and(|check| check.state == "down");
                        let health = if failed || entry.flags & REAL_DOWN != 0 {
                            Health::Down
                        } else if entry.flags & REAL_NEXT_HOP_KNOWN == 0 {
                            Health::Unreachable
                        } else if self.reconciler.is_overloaded(real_id) {
                            Health::Overloaded
                        } else if real.weight == 0 {
                            Health::Quiesced
                        } else {
                            Health::Up
                        };
                        Some(LiveReal {
                            address: real.endpoint(),
                            rates: self.estimator.rates(Subject::Real(real_id)),
                            health,
                            check,
                            sorry_server: service.health.sorry_server.as_ref() == Some(real),
                        })
                    })
                    .collect();
                Some(LiveService {
                    name: service.name.clone(),
                    protocol: service.protocol.to_string().to_uppercase(),
                    address: std::net::SocketAddr::new(service.vip, service.port),
                    rates: self.estimator.rates(Subject::Service(service_id)),
                    quorum: self.quorum_status(service),
                    reals,
                })
            })
            .collect()
    }

    /// Every second: recounts connections if anything reads the counts
    /// (see [`connection_counts_read`]). Otherwise the walk of a flow table
    /// of up to millions of entries would be spent on nothing.
    pub(super) fn count_connections_if_read(&mut self) {
        let read = self.connection_counts_read();
        if read != self.counting_connections {
            log_counting(read);
        }
        self.counting_connections = read;
        if read {
            self.count_connections();
        }
    }

    /// After every apply: when the counts are read again after a pause (a
    /// reload or `lbadm` added a least-connection service or a threshold),
    /// recounts at once rather than at the next tick, because
    /// `LB_REAL_CONNS` went stale meanwhile (the data plane only adds).
    pub(super) fn resume_counting_if_read(&mut self) {
        if !self.counting_connections && self.connection_counts_read() {
            self.count_connections_if_read();
        }
    }

    fn connection_counts_read(&self) -> bool {
        connection_counts_read(
            &self.running.services,
            self.reconciler.any_overloaded(),
            self.metrics.is_some(),
        )
    }

    /// Recounts connections per real from the flow table, publishes them
    /// for the least-connection schedulers and applies the thresholds.
    fn count_connections(&mut self) {
        let settings = settings_of(&self.config);
        let counts = reaper::count_connections(&self.dataplane.maps, &settings, monotonic_now_ns());
        let ids: BTreeSet<u32> = self.reconciler.reals().keys().copied().collect();
        if let Err(error) =
            reaper::write_connection_counts(&mut self.dataplane.maps, &counts, ids.iter().copied())
        {
            warn!("publishing connection counts failed: {error:#}");
        }
        for id in ids {
            let Some(real) = self.reconciler.reals().get(&id).copied() else {
                continue;
            };
            let conns = counts.get(&id).copied().unwrap_or_default();
            let currently = self.reconciler.is_overloaded(id);
            let wanted = thresholds::overloaded(currently, conns, &real);
            if wanted != currently {
                log_threshold(id, wanted, conns);
                if let Err(error) =
                    self.reconciler
                        .set_overloaded(&mut self.dataplane.maps, id, wanted)
                {
                    warn!(real_id = id, "updating the overload flag failed: {error:#}");
                }
            }
        }
    }

    /// Feeds the rate estimator one sample of every counter.
    pub(super) fn sample_rates(&mut self) {
        let ids = self.reconciler.ids();
        let mut samples = HashMap::new();
        let maps = &self.dataplane.maps;
        let sum = |values: PerCpuValues<TrafficCounters>| values.iter().sum();
        for &id in ids.services.values() {
            if let Ok(values) = maps.service_stats.get(&id, 0) {
                samples.insert(Subject::Service(id), sum(values));
            }
        }
        for &id in ids.reals.values() {
            if let Ok(values) = maps.real_stats.get(&id, 0) {
                samples.insert(Subject::Real(id), sum(values));
            }
        }
        self.estimator
            .sample(&samples, estimator::SAMPLE_INTERVAL_SECONDS);
    }
}

/// Whether anything reads the connection counts the daemon takes every
/// second: the least-connection schedulers (lc, wlc, sed, nq) in the data
/// plane, through `LB_REAL_CONNS`; connection thresholds, and a real still
/// marked overloaded (one more count releases it once its thresholds are
/// gone); and the metrics endpoint, which exports `LB_REAL_CONNS`. Listings
/// (`lbadm -L`) count for themselves.
pub(super) fn connection_counts_read(
    services: &[config::ServiceConfig],
    any_real_overloaded: bool,
    metrics_served: bool,
) -> bool {
    let reads_counts = |service: &config::ServiceConfig| {
        service.scheduler.dataplane().is_least_connection()
            || service.reals.iter().any(|real| real.upper_threshold != 0)
    };
    metrics_served || any_real_overloaded || services.iter().any(reads_counts)
}

fn log_counting(counting: bool) {
    if counting {
        info!(
            "counting connections per real every second (least-connection schedulers, thresholds or metrics read them)"
        );
    } else {
        info!("not counting connections per real: nothing reads them");
    }
}

/// How many keys of `these` are not in `those`.
fn missing_from<K: Ord, V>(those: &BTreeMap<K, V>, these: &BTreeMap<K, V>) -> usize {
    these.keys().filter(|key| !those.contains_key(key)).count()
}

fn log_threshold(real_id: u32, overloaded: bool, conns: RealConns) {
    let total = u64::from(conns.active) + u64::from(conns.inactive);
    if overloaded {
        info!(
            real_id,
            connections = total,
            "real reached its upper threshold; no new connections"
        );
    } else {
        info!(
            real_id,
            connections = total,
            "real back below its lower threshold"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Services made from one line of YAML each: `scheduler` and the first
    /// real's `upper_threshold`.
    fn services(specs: &[(&str, u32)]) -> Vec<config::ServiceConfig> {
        let services: Vec<String> = (specs.iter().enumerate())
            .map(|(index, (scheduler, upper_threshold))| {
                format!(
                    "{{ name: s{index}, vip: 198.18.1.10, port: {port}, protocol: tcp, \
                     scheduler: {scheduler}, \
                     reals: [{{ address: 198.18.2.11, upper_threshold: {upper_threshold} }}] }}",
                    port = 80 + index,
                )
            })
            .collect();
        crate::testing::with_services(&services).services
    }

    #[test]
    fn nothing_reads_the_counts_of_hashing_and_round_robin_services() {
        let hashing = services(&[("mh", 0), ("rr", 0), ("wrr", 0), ("sh", 0), ("dh", 0)]);
        assert!(!connection_counts_read(&hashing, false, false));
        assert!(!connection_counts_read(&[], false, false));
    }

    #[test]
    fn least_connection_schedulers_read_the_counts() {
        for scheduler in ["lc", "wlc", "sed", "nq"] {
            assert!(
                connection_counts_read(&services(&[("mh", 0), (scheduler, 0)]), false, false),
                "{scheduler}"
            );
        }
    }

    #[test]
    fn thresholds_and_overloaded_reals_read_the_counts() {
        assert!(connection_counts_read(
            &services(&[("mh", 10)]),
            false,
            false
        ));
        assert!(
            connection_counts_read(&services(&[("mh", 0)]), true, false),
            "a real still overloaded is released by the next count"
        );
    }

    #[test]
    fn the_metrics_endpoint_reads_the_counts() {
        assert!(connection_counts_read(&services(&[("mh", 0)]), false, true));
    }
}
