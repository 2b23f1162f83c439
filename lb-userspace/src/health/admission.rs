//! From verdicts to scheduling: which reals take new connections, which
//! leave the service, and when the sorry server stands in.

use std::{collections::HashMap, net::SocketAddr};

use lb_common::{RealHealth, ServiceKey};

use super::tracker::{RealKey, Verdict};
use crate::config::{Config, QuorumLoss, RealConfig, ServiceConfig};

/// What scheduling does with one real.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Admission {
    /// Takes new connections at its configured weight.
    Serving,
    /// Stays in the service at weight 0: established connections carry on,
    /// no new ones (`inhibit_on_failure`, or a service below quorum).
    Quiesced,
    /// Out of the service, as keepalived removes a failed real; its
    /// established connections follow `expire_nodest_conn`.
    Removed,
}

/// The health marks the reconciler writes with each real entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    pub health: RealHealth,
    /// Written with `REAL_DOWN`.
    pub removed: bool,
}

/// The outcome for one service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePlan {
    /// Healthy weight reaches the quorum.
    pub quorate: bool,
    pub healthy_weight: u64,
    /// The sorry server takes the new connections.
    pub sorry: bool,
    pub reals: HashMap<SocketAddr, Admission>,
}

/// The last admissions that made quorum, per service, for `keep`.
#[derive(Debug, Default)]
pub struct LastQuorate(HashMap<ServiceKey, HashMap<SocketAddr, Admission>>);

impl LastQuorate {
    pub fn retain(&mut self, keep: impl Fn(&ServiceKey) -> bool) {
        self.0.retain(|key, _| keep(key));
    }
}

/// Plans a service. `verdict` is `None` for reals that are not probed
/// (always up).
pub fn plan_service(
    key: ServiceKey,
    service: &ServiceConfig,
    verdict: impl Fn(&RealConfig) -> Option<Verdict>,
    last_quorate: &mut LastQuorate,
) -> ServicePlan {
    let health = &service.health;
    let mut healthy_weight: u64 = 0;
    let mut reals = HashMap::new();
    for real in &service.reals {
        let admission = match verdict(real) {
            None | Some(Verdict::Up) => {
                healthy_weight += u64::from(real.weight);
                Admission::Serving
            }
            Some(Verdict::Down) if health.inhibit_on_failure => Admission::Quiesced,
            Some(Verdict::Down) => Admission::Removed,
        };
        reals.insert(real.endpoint(), admission);
    }
    let quorate = healthy_weight >= u64::from(health.quorum);
    if quorate {
        last_quorate.0.insert(key, reals.clone());
        return ServicePlan {
            quorate,
            healthy_weight,
            sorry: false,
            reals,
        };
    }
    let policy = health.quorum_loss();
    if policy == QuorumLoss::Keep {
        let last = last_quorate.0.get(&key);
        for (real, admission) in &mut reals {
            if last.and_then(|last| last.get(real)) == Some(&Admission::Serving) {
                *admission = Admission::Serving;
            }
        }
    } else {
        // Too few to serve: healthy reals keep their connections but take
        // no new ones (keepalived removes them once the sorry server is in;
        // quiescing spares their established connections).
        for admission in reals.values_mut() {
            if *admission == Admission::Serving {
                *admission = Admission::Quiesced;
            }
        }
    }
    ServicePlan {
        quorate,
        healthy_weight,
        sorry: policy == QuorumLoss::SorryServer && health.sorry_server.is_some(),
        reals,
    }
}

/// The configuration the data plane should run: quiesced reals at weight
/// 0, active sorry servers as one more real; plus the marks of every real.
pub fn effective(
    config: &Config,
    plans: &HashMap<ServiceKey, ServicePlan>,
    verdict: impl Fn(&RealKey) -> Option<Verdict>,
) -> (Config, HashMap<RealKey, Mark>) {
    let mut effective = config.clone();
    let mut marks = HashMap::new();
    for service in &mut effective.services {
        let key = crate::config::identity::service_key(service);
        let Some(plan) = plans.get(&key) else {
            continue;
        };
        for real in &mut service.reals {
            let real_key = RealKey::new(key, real);
            let admission = plan.reals.get(&real_key.real).copied();
            if admission == Some(Admission::Quiesced) {
                real.weight = 0;
            }
            let health = verdict(&real_key).map_or(RealHealth::Unknown, Verdict::as_real_health);
            marks.insert(
                real_key,
                Mark {
                    health,
                    removed: admission == Some(Admission::Removed),
                },
            );
        }
        if plan.sorry
            && let Some(sorry) = service.health.sorry_server.clone()
        {
            service.reals.push(sorry);
        }
    }
    (effective, marks)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::config::{Forwarding, Protocol, Scheduler, ServiceHealth};

    fn real(last: u8, weight: u32) -> RealConfig {
        RealConfig {
            address: IpAddr::V4(Ipv4Addr::new(198, 18, 0, last)),
            port: 80,
            weight,
            forwarding: None,
            upper_threshold: 0,
            lower_threshold: 0,
            health_check: None,
        }
    }

    fn service(health: ServiceHealth) -> ServiceConfig {
        ServiceConfig {
            name: "web".to_owned(),
            vip: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1)),
            port: 80,
            protocol: Protocol::Tcp,
            scheduler: Scheduler::Mh,
            scheduler_flags: Vec::new(),
            persistence: None,
            forwarding: Forwarding::Dr,
            health,
            reals: vec![real(2, 1), real(3, 2), real(4, 1)],
        }
    }

    /// The service with `quorum` and a sorry server (198.18.0.99).
    fn with_sorry_server(quorum: u32) -> ServiceConfig {
        service(ServiceHealth {
            quorum,
            sorry_server: Some(real(99, 1)),
            ..ServiceHealth::unchecked()
        })
    }

    /// Plans with the reals whose last octet is in `down` failed, and
    /// returns each real's admission as a letter (S, Q, R) plus the sorry
    /// flag.
    fn plan(service: &ServiceConfig, down: &[u8], last: &mut LastQuorate) -> (String, bool) {
        let key = ServiceKey::default();
        let plan = plan_service(
            key,
            service,
            |real| {
                let IpAddr::V4(v4) = real.address else {
                    unreachable!()
                };
                Some(if down.contains(&v4.octets()[3]) {
                    Verdict::Down
                } else {
                    Verdict::Up
                })
            },
            last,
        );
        let letters = service
            .reals
            .iter()
            .map(|real| match plan.reals[&real.endpoint()] {
                Admission::Serving => 'S',
                Admission::Quiesced => 'Q',
                Admission::Removed => 'R',
            })
            .collect();
        (letters, plan.sorry)
    }

    #[test]
    fn failed_reals_leave_or_are_inhibited() {
        let mut last = LastQuorate::default();
        let removing = service(ServiceHealth::unchecked());
        assert_eq!(plan(&removing, &[3], &mut last), ("SRS".to_owned(), false));
        let inhibiting = service(ServiceHealth {
            inhibit_on_failure: true,
            ..ServiceHealth::unchecked()
        });
        assert_eq!(
            plan(&inhibiting, &[3], &mut last),
            ("SQS".to_owned(), false)
        );
    }

    #[test]
    fn below_quorum_the_sorry_server_takes_new_connections() {
        let mut last = LastQuorate::default();
        let with_sorry = with_sorry_server(3);
        // Healthy weight 1 + 2 = 3: quorate.
        assert_eq!(
            plan(&with_sorry, &[4], &mut last),
            ("SSR".to_owned(), false)
        );
        // 1 + 1 = 2 < 3: healthy reals quiesce, the sorry server serves.
        assert_eq!(plan(&with_sorry, &[3], &mut last), ("QRQ".to_owned(), true));
        assert_eq!(
            plan(&with_sorry, &[2, 3, 4], &mut last),
            ("RRR".to_owned(), true)
        );
    }

    #[test]
    fn drop_serves_nobody_below_quorum() {
        let mut last = LastQuorate::default();
        let dropping = service(ServiceHealth::unchecked());
        assert_eq!(
            plan(&dropping, &[2, 3, 4], &mut last),
            ("RRR".to_owned(), false)
        );
        let explicit = service(ServiceHealth {
            quorum: 4,
            on_quorum_loss: Some(QuorumLoss::Drop),
            sorry_server: Some(real(99, 1)),
            ..ServiceHealth::unchecked()
        });
        assert_eq!(plan(&explicit, &[], &mut last), ("SSS".to_owned(), false));
        assert_eq!(plan(&explicit, &[2], &mut last), ("RQQ".to_owned(), false));
    }

    #[test]
    fn keep_serves_the_last_quorate_reals() {
        let mut last = LastQuorate::default();
        let keeping = service(ServiceHealth {
            on_quorum_loss: Some(QuorumLoss::Keep),
            ..ServiceHealth::unchecked()
        });
        assert_eq!(
            plan(&keeping, &[2, 3], &mut last),
            ("RRS".to_owned(), false)
        );
        // The last real fails too: it keeps serving, the others stay out.
        assert_eq!(
            plan(&keeping, &[2, 3, 4], &mut last),
            ("RRS".to_owned(), false)
        );
        // One comes back: quorate again, health decides.
        assert_eq!(
            plan(&keeping, &[3, 4], &mut last),
            ("SRR".to_owned(), false)
        );
    }

    #[test]
    fn effective_config_quiesces_and_adds_the_sorry_server() {
        let mut last = LastQuorate::default();
        let svc = with_sorry_server(5);
        let key = crate::config::identity::service_key(&svc);
        let plan = plan_service(key, &svc, |_| Some(Verdict::Up), &mut last);
        let config = Config {
            services: vec![svc],
            ..crate::testing::config("interfaces: [{ name: lo }]\n")
        };
        let plans = HashMap::from([(key, plan)]);
        let (effective, marks) = effective(&config, &plans, |_| Some(Verdict::Up));
        let reals = &effective.services[0].reals;
        assert_eq!(
            reals.iter().map(|r| r.weight).collect::<Vec<_>>(),
            [0, 0, 0, 1]
        );
        assert_eq!(reals[3], real(99, 1));
        assert_eq!(marks.len(), 3);
        assert!(marks.values().all(|mark| !mark.removed));
    }
}
