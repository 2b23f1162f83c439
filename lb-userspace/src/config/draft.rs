//! The configuration while it is read: every part that may fail to decode
//! kept apart, so that validation can go on around the failures.

use std::path::PathBuf;

use super::schema::{
    Config, ControlConfig, DataplaneConfig, FloodGuardConfig, InterfaceConfig, MetricsConfig,
    RealConfig, ServiceConfig, TimeoutsConfig, TunnelConfig,
};

/// What decoding produced. A `None` part failed to decode (its problems are
/// recorded); the rest is still validated, so that a typo in one place does
/// not hide a duplicate service in another.
pub(super) struct Draft {
    pub(super) interfaces: Vec<Option<InterfaceConfig>>,
    pub(super) pin_path: Option<PathBuf>,
    pub(super) control: Option<ControlConfig>,
    pub(super) dataplane: Option<DataplaneConfig>,
    pub(super) tunnel: Option<TunnelConfig>,
    pub(super) timeouts: Option<TimeoutsConfig>,
    pub(super) icmp_echo_reply: Option<bool>,
    pub(super) expire_nodest_conn: Option<bool>,
    pub(super) flood_guard: Option<FloodGuardConfig>,
    pub(super) metrics: Option<MetricsConfig>,
    pub(super) services: Vec<Option<DraftService>>,
}

/// A service whose own fields decoded. Its reals are kept apart, each in its
/// place in the file, so that one bad real leaves the service and the other
/// reals checkable.
pub(super) struct DraftService {
    /// Everything but `reals`, which is left empty.
    pub(super) service: ServiceConfig,
    pub(super) reals: Vec<Option<RealConfig>>,
}

impl Draft {
    pub(super) fn from_config(config: Config) -> Self {
        Draft {
            interfaces: config.interfaces.into_iter().map(Some).collect(),
            pin_path: Some(config.pin_path),
            control: Some(config.control),
            dataplane: Some(config.dataplane),
            tunnel: Some(config.tunnel),
            timeouts: Some(config.timeouts),
            icmp_echo_reply: Some(config.icmp_echo_reply),
            expire_nodest_conn: Some(config.expire_nodest_conn),
            flood_guard: Some(config.flood_guard),
            metrics: Some(config.metrics),
            services: config
                .services
                .into_iter()
                .map(|service| {
                    let reals = service.reals.iter().cloned().map(Some).collect();
                    Some(DraftService {
                        service: ServiceConfig {
                            reals: Vec::new(),
                            ..service
                        },
                        reals,
                    })
                })
                .collect(),
        }
    }

    /// The configuration, if every part of it decoded.
    pub(super) fn into_config(self) -> Option<Config> {
        let services = self.services.into_iter().map(|draft| {
            let draft = draft?;
            let reals = draft.reals.into_iter().collect::<Option<_>>()?;
            Some(ServiceConfig {
                reals,
                ..draft.service
            })
        });
        Some(Config {
            interfaces: self.interfaces.into_iter().collect::<Option<_>>()?,
            pin_path: self.pin_path?,
            control: self.control?,
            dataplane: self.dataplane?,
            tunnel: self.tunnel?,
            timeouts: self.timeouts?,
            icmp_echo_reply: self.icmp_echo_reply?,
            expire_nodest_conn: self.expire_nodest_conn?,
            flood_guard: self.flood_guard?,
            metrics: self.metrics?,
            services: services.collect::<Option<_>>()?,
        })
    }
}
