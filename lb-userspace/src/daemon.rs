//! `lbd`'s main loop: load, adopt, apply, attach, then follow signals,
//! control requests and neighbour changes until told to stop.

mod health_reports;
mod requests;

use std::{
    collections::{BTreeSet, HashMap},
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use aya::programs::XdpMode;
use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
    sync::{mpsc, watch},
};
use tracing::{debug, error, info, warn};

use crate::{
    config::{
        self, Config,
        identity::{real_addresses, settings_of},
    },
    control::{
        self,
        server::{ControlSocket, Pending},
    },
    dataplane::{Dataplane, Geometry, PinLayout, ifindex, monotonic_now_ns},
    estimator::{self, Estimator},
    health::{Monitor, runner::Report},
    metrics::{self, Labels},
    neighbours::{Resolution, Resolver},
    reaper,
    reconcile::Reconciler,
    tasks::AbortOnDrop,
};

/// How often next hops are re-read. Neighbour entries are managed by the
/// kernel, so this only bounds how long a changed MAC goes unnoticed.
const NEXT_HOP_REFRESH: Duration = Duration::from_secs(1);
/// How often idle flows are looked for. Expired entries are already
/// ignored by the data plane; this only frees their space.
const REAP_INTERVAL: Duration = Duration::from_secs(5);
/// How often connections are counted per real, while anything reads the
/// counts (least-connection schedulers, thresholds, metrics; see
/// `requests::connection_counts_read`). Listings count for themselves.
const CONNECTION_COUNT_INTERVAL: Duration = Duration::from_secs(1);
/// How long start-up waits for ARP/ND before applying what it has.
const INITIAL_RESOLUTION_WAIT: Duration = Duration::from_secs(3);
/// Probe results waiting for the daemon loop; probes wait when it is full.
const HEALTH_REPORT_QUEUE: usize = 4096;

/// Reads and validates a config file against this host's interfaces.
pub fn load_config(path: &Path) -> Result<Config> {
    config::load(path, &|name| ifindex(name).is_ok()).map_err(|errors| anyhow::anyhow!("{errors}"))
}

pub fn geometry(config: &Config) -> Geometry {
    Geometry::of(&config.dataplane)
}

fn xdp_mode(mode: config::XdpMode) -> XdpMode {
    match mode {
        config::XdpMode::Auto => XdpMode::Default,
        config::XdpMode::Native => XdpMode::Driver,
        config::XdpMode::Skb => XdpMode::Skb,
    }
}

struct Daemon {
    config_path: PathBuf,
    /// The configuration as declared (file, then lbadm changes).
    config: Config,
    /// What the data plane runs: `config` after health checking (failed
    /// reals out or at weight 0, sorry servers in).
    running: Config,
    health: Monitor,
    layout: PinLayout,
    dataplane: Dataplane,
    reconciler: Reconciler,
    resolver: Resolver,
    /// The addresses of `config`'s reals, for the next-hop refresh every
    /// second (a set of 100,000 is too much to rebuild that often).
    real_addresses: Vec<IpAddr>,
    next_hops: HashMap<IpAddr, Resolution>,
    /// The metrics endpoint's address and its view of what ids mean,
    /// republished after every apply; `None` when metrics are off.
    metrics: Option<(SocketAddr, watch::Sender<Arc<Labels>>)>,
    estimator: Estimator,
    /// Whether the last count tick counted (something read the counts).
    counting_connections: bool,
}

/// Runs until SIGTERM or SIGINT. The data plane keeps forwarding after this
/// returns; `teardown` is what stops it.
pub async fn run(config_path: &Path) -> Result<()> {
    let config = load_config(config_path)?;
    let listeners = Listeners::bind(&config).await?;
    let (mut daemon, health_reports) = Daemon::start(config_path, config).await?;
    daemon.apply()?;
    daemon.attach_interfaces(&[])?;
    // Control requests (the socket, and health for metrics scrapes).
    let (request_sender, requests) = mpsc::channel(16);
    // Dropped (and so stopped) when `run` returns.
    let _servers = daemon.serve(listeners, request_sender);
    let control_path = daemon.config.control.socket.display();
    info!(config = %config_path.display(), control = %control_path, "ready");
    daemon.follow(health_reports, requests).await?;
    info!(
        "stopping; the XDP program stays attached and keeps forwarding (`lbd teardown` detaches it)"
    );
    Ok(())
}

/// The sockets `lbd` answers on, bound before anything else: a taken port
/// stops lbd before it touches the data plane.
struct Listeners {
    metrics: Option<(SocketAddr, TcpListener)>,
    control: ControlSocket,
}

impl Listeners {
    async fn bind(config: &Config) -> Result<Self> {
        let metrics = match config.metrics.listen {
            Some(address) => Some((address, metrics::bind(address).await?)),
            None => None,
        };
        let control = control::server::bind(&config.control.socket)?;
        Ok(Self { metrics, control })
    }
}

/// The tasks serving the sockets; each stops when dropped.
struct Servers {
    _metrics: Option<AbortOnDrop>,
    _control: AbortOnDrop,
}

impl Daemon {
    /// Loads (or adopts) the data plane and resolves the reals' next hops,
    /// ready for the first apply; also returns where probe results arrive.
    async fn start(config_path: &Path, config: Config) -> Result<(Self, mpsc::Receiver<Report>)> {
        let layout = PinLayout::new(&config.pin_path);
        let geometry = geometry(&config);
        // Loading (verifying the programs, creating or opening the maps) and
        // resolving (a route lookup per real) are independent, and each
        // takes a good part of a second at scale: both at once.
        let loading = {
            let layout = layout.clone();
            tokio::task::spawn_blocking(move || Dataplane::load(geometry, Some(&layout)))
        };
        let mut resolver = Resolver::new()?;
        let addresses = real_addresses(&config);
        let next_hops = resolve_initial(&mut resolver, &addresses).await?;
        let dataplane = loading.await.context("loading the data plane")??;
        let reconciler = if dataplane.adopted {
            Reconciler::adopt(geometry, &dataplane.maps)?
        } else {
            Reconciler::new(geometry)
        };
        let (report_sender, health_reports) = mpsc::channel::<Report>(HEALTH_REPORT_QUEUE);
        let mut health = Monitor::new(report_sender);
        health.configure(&config, &reconciler.pinned_health());
        let daemon = Daemon {
            config_path: config_path.to_owned(),
            running: config.clone(),
            real_addresses: addresses,
            config,
            health,
            layout,
            dataplane,
            reconciler,
            resolver,
            next_hops,
            metrics: None,
            estimator: Estimator::default(),
            counting_connections: false,
        };
        Ok((daemon, health_reports))
    }

    /// Serves the control socket and, if configured, the metrics endpoint;
    /// both send their requests to `requests`.
    fn serve(&mut self, listeners: Listeners, requests: mpsc::Sender<Pending>) -> Servers {
        let metrics = listeners.metrics.map(|(address, listener)| {
            let labels = Labels::new(&self.running, self.reconciler.ids());
            let (sender, receiver) = watch::channel(Arc::new(labels));
            self.metrics = Some((address, sender));
            let pins = self.layout.root.clone();
            info!(%address, "serving Prometheus metrics at http://{address}/metrics");
            AbortOnDrop(tokio::spawn(metrics::serve(
                listener,
                pins,
                receiver,
                requests.clone(),
            )))
        });
        let control = AbortOnDrop(tokio::spawn(control::server::serve(
            listeners.control,
            requests,
        )));
        Servers {
            _metrics: metrics,
            _control: control,
        }
    }

    /// Follows signals, timers, probe results and control requests until
    /// SIGTERM or SIGINT.
    async fn follow(
        &mut self,
        mut health_reports: mpsc::Receiver<Report>,
        mut requests: mpsc::Receiver<Pending>,
    ) -> Result<()> {
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sighup = signal(SignalKind::hangup())?;
        let mut refresh = tokio::time::interval(NEXT_HOP_REFRESH);
        let mut reap = tokio::time::interval(REAP_INTERVAL);
        let mut count = tokio::time::interval(CONNECTION_COUNT_INTERVAL);
        let mut estimate =
            tokio::time::interval(Duration::from_secs_f64(estimator::SAMPLE_INTERVAL_SECONDS));
        loop {
            tokio::select! {
                _ = sigterm.recv() => return Ok(()),
                _ = sigint.recv() => return Ok(()),
                _ = sighup.recv() => {
                    if let Err(error) = self.reload().await {
                        error!("reload rejected, the running state is unchanged: {error:#}");
                    }
                }
                _ = refresh.tick() => {
                    if let Err(error) = self.refresh_next_hops().await {
                        warn!("next-hop refresh failed: {error:#}");
                    }
                }
                _ = reap.tick() => self.reap_idle_flows(),
                _ = count.tick() => self.count_connections_if_read(),
                _ = estimate.tick() => self.sample_rates(),
                Some(report) = health_reports.recv() => self.on_health_reports(report, &mut health_reports),
                Some((request, reply)) = requests.recv() => {
                    let response = self.handle(request).await;
                    let _ = reply.send(response);
                }
            }
        }
    }
}

/// Resolves the reals' `addresses`, giving ARP/ND a moment for the ones
/// not yet in the neighbour table, so the first tables include every
/// reachable real.
async fn resolve_initial(
    resolver: &mut Resolver,
    addresses: &[IpAddr],
) -> Result<HashMap<IpAddr, Resolution>> {
    let deadline = tokio::time::Instant::now() + INITIAL_RESOLUTION_WAIT;
    // Routes once (the expensive part, one lookup per real); then only the
    // neighbour table while ARP/ND answers.
    resolver.refresh_routes(addresses).await?;
    loop {
        let hops = resolver.next_hops().await?;
        let pending = hops
            .values()
            .filter(|hop| matches!(hop, Err(crate::neighbours::Unresolved::Resolving)))
            .count();
        if pending == 0 || tokio::time::Instant::now() >= deadline {
            if pending > 0 {
                warn!(
                    pending,
                    "some reals have no next hop yet; they get traffic once resolved"
                );
            }
            return Ok(hops);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where a switch to a new configuration spent its time (logged).
struct SwitchPhases {
    /// Routes and neighbours of every real.
    resolve: Duration,
    /// Health plan, real entries, scheduling rows, services, attachments.
    apply: Duration,
}

impl Daemon {
    fn apply(&mut self) -> Result<()> {
        // Redirect needs every egress device in the devmap; inserting an
        // existing key is harmless. Once per device, not per real: reals
        // share a handful of interfaces.
        let egress: BTreeSet<u32> = self
            .next_hops
            .values()
            .flatten()
            .map(|hop| hop.ifindex)
            .collect();
        for ifindex in egress {
            self.dataplane
                .maps
                .tx_ports
                .insert(ifindex, ifindex, None, 0)
                .context("adding an egress interface to the redirect map")?;
        }
        let (running, marks) = self.health.plan(&self.config);
        let applied =
            self.reconciler
                .apply(&mut self.dataplane.maps, &running, &self.next_hops, &marks)?;
        self.running = running;
        info!(
            services = self.config.services.len(),
            added = applied.services_added,
            removed = applied.services_removed,
            reals_written = applied.reals_written,
            reals_removed = applied.reals_removed,
            maglev_slots_written = applied.maglev_slots_written,
            rows_built = applied.rows_built,
            "applied configuration"
        );
        if let Some((_, labels)) = &self.metrics {
            let fresh = Labels::new(&self.running, self.reconciler.ids());
            labels.send_if_modified(|current| {
                let changed = **current != fresh;
                if changed {
                    *current = Arc::new(fresh);
                }
                changed
            });
        }
        self.resume_counting_if_read();
        Ok(())
    }

    /// Attaches to every configured interface not in `already_attached`
    /// and detaches from pinned links no longer configured.
    fn attach_interfaces(&mut self, already_attached: &[config::InterfaceConfig]) -> Result<()> {
        for interface in &self.config.interfaces {
            if already_attached.contains(interface) {
                continue;
            }
            self.dataplane.attach_pinned(
                &self.layout,
                &interface.name,
                xdp_mode(interface.xdp_mode),
            )?;
        }
        // Interfaces dropped from the config since the last run: detach.
        let configured: BTreeSet<&str> = self
            .config
            .interfaces
            .iter()
            .map(|interface| interface.name.as_str())
            .collect();
        if let Ok(entries) = std::fs::read_dir(self.layout.links_dir()) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !configured.contains(name.as_str()) {
                    info!(interface = %name, "no longer configured; detaching");
                    crate::dataplane::detach_pinned_link(&entry.path())?;
                }
            }
        }
        Ok(())
    }

    /// Re-reads the config file. Anything invalid leaves the running state
    /// exactly as it was; changes made with `lbadm` since are replaced.
    async fn reload(&mut self) -> Result<()> {
        let started = Instant::now();
        let config = load_config(&self.config_path)?;
        let parsed = started.elapsed();
        if config.pin_path != self.config.pin_path || geometry(&config) != geometry(&self.config) {
            bail!("pin_path and dataplane sizes only change with a restart");
        }
        if config.control != self.config.control {
            warn!("control.socket changed: that takes effect when lbd restarts");
        }
        let phases = self.switch_to(config).await?;
        info!(
            parse_ms = parsed.as_millis(),
            resolve_ms = phases.resolve.as_millis(),
            apply_ms = phases.apply.as_millis(),
            "reloaded {}",
            self.config_path.display()
        );
        Ok(())
    }

    /// Makes `config` the running state: resolves its reals and applies
    /// it, or leaves everything as it was. Returns how long each step took.
    async fn switch_to(&mut self, config: Config) -> Result<SwitchPhases> {
        let started = Instant::now();
        let previous = std::mem::replace(&mut self.config, config);
        let addresses = real_addresses(&self.config);
        match self.resolver.resolve(&addresses).await {
            Ok(hops) => self.next_hops = hops,
            Err(error) => {
                self.config = previous;
                return Err(error);
            }
        }
        let previous_addresses = std::mem::replace(&mut self.real_addresses, addresses);
        let resolve = started.elapsed();
        // Reals already probed keep their verdicts; new ones start unknown.
        self.health.configure(&self.config, &HashMap::new());
        if let Err(error) = self.apply() {
            // Maps may hold part of the new state; put the old one back.
            self.config = previous;
            self.real_addresses = previous_addresses;
            self.health.configure(&self.config, &HashMap::new());
            self.apply()?;
            return Err(error);
        }
        self.attach_interfaces(&previous.interfaces)?;
        let serving = self.metrics.as_ref().map(|(address, _)| *address);
        if self.config.metrics.listen != serving {
            let show = |address: Option<SocketAddr>| {
                address.map_or_else(|| "off".to_owned(), |address| address.to_string())
            };
            warn!(
                "metrics.listen changed from {} to {}: that takes effect when lbd restarts",
                show(serving),
                show(self.config.metrics.listen)
            );
        }
        Ok(SwitchPhases {
            resolve,
            apply: started.elapsed() - resolve,
        })
    }

    fn reap_idle_flows(&mut self) {
        let settings = settings_of(&self.config);
        match reaper::reap(&mut self.dataplane.maps, &settings, monotonic_now_ns()) {
            Ok(reaped) if reaped.flows > 0 => {
                debug!(
                    flows = reaped.flows,
                    nat_replies = reaped.nat_replies,
                    "reaped idle flows"
                )
            }
            Ok(_) => {}
            Err(error) => warn!("reaping idle flows failed: {error:#}"),
        }
    }

    async fn refresh_next_hops(&mut self) -> Result<()> {
        let Some(hops) = self
            .resolver
            .resolve_if_changed(&self.real_addresses)
            .await?
        else {
            return Ok(());
        };
        if hops != self.next_hops {
            for (address, hop) in &hops {
                if self.next_hops.get(address) != Some(hop) {
                    info!(real = %address, next_hop = ?hop, "next hop changed");
                }
            }
            self.next_hops = hops;
            self.apply()?;
        }
        Ok(())
    }
}
