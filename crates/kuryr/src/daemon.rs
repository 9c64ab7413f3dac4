//! Assemble and run the driver daemon from kuryr.conf.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kuryr_openstack::{Neutron, Session, chain};
use tracing::{error, info, warn};

use crate::binding::{Binder, NestedConfig, NestedKind, VethConfig};
use crate::config::{BindingDriverKind, Config, PortDriverKind};
use crate::driver::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_ORPHAN_GRACE, DEFAULT_ORPHAN_INTERVAL, Driver, DriverConfig,
};
use crate::notify;
use crate::server;

/// Why the daemon could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Client(#[from] kuryr_openstack::Error),
    #[error(
        "port driver {0} is not supported by this driver (supported: veth, nested, vlan); \
         set [DEFAULT] default_port_driver accordingly"
    )]
    UnsupportedPortDriver(String),
    #[error(
        "the kernel of this node cannot create {kind} devices (\"Unknown device type\"), which \
         [binding] default_driver needs: load the {module} module or choose another binding driver"
    )]
    KernelLacks {
        kind: &'static str,
        module: &'static str,
    },
    #[error("start-up: {0}")]
    Startup(#[from] crate::driver::DriverError),
    #[error(transparent)]
    Server(#[from] server::ServerError),
    #[error("nothing to listen on: plugin_socket is empty and kuryr_uri is not set")]
    NoListener,
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// The host name Neutron agents register with (`/proc` follows the UTS
/// namespace, as `hostname` does).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Driver settings from the configuration.
pub fn driver_config(config: &Config) -> DriverConfig {
    let d = &config.default;
    DriverConfig {
        host_id: d.host.clone().unwrap_or_else(hostname),
        scope: d.capability_scope,
        connectivity_scope: d.connectivity_scope(),
        local_address_space: d.local_default_address_space.clone(),
        global_address_space: d.global_default_address_space.clone(),
        subnetpool_prefix: d.subnetpool_name_prefix.clone(),
        default_subnetpool_v4: config.neutron.default_subnetpool_v4.clone(),
        default_subnetpool_v6: config.neutron.default_subnetpool_v6.clone(),
        enable_dhcp: config.neutron.enable_dhcp,
        dst_prefix: config.binding.veth_dst_prefix.clone(),
        process_external_connectivity: d.process_external_connectivity,
        vif_plugging_is_fatal: config.neutron.vif_plugging_is_fatal,
        vif_plugging_timeout: config.vif_plugging_timeout(),
        port_driver: d.default_port_driver,
        link_iface: config.binding.link_iface.clone(),
        link_netns: None,
        orphan_grace: d.orphan_grace.unwrap_or(DEFAULT_ORPHAN_GRACE),
        orphan_interval: d.orphan_interval.unwrap_or(DEFAULT_ORPHAN_INTERVAL),
        docker_host: d.docker_host.clone(),
        ports_pool_size: d.ports_pool_size,
        call_timeout: d
            .call_timeout
            .filter(|t| !t.is_zero())
            .unwrap_or(DEFAULT_CALL_TIMEOUT),
        allowed_projects: crate::driver::AllowedProjects::from_list(
            &config.neutron.allowed_projects,
        ),
        faults: test_faults(),
    }
}

/// Fault points for the fault suite: `KURYR_FAULT_POINTS` is read only
/// when set (tests set it; see [`crate::driver::Faults::parse`]). A
/// crash there kills the daemon. A bad value is a warning, not a start-up
/// failure: it is a test setting, not configuration.
fn test_faults() -> Option<std::sync::Arc<crate::driver::Faults>> {
    let spec = std::env::var("KURYR_FAULT_POINTS").ok()?;
    match crate::driver::Faults::parse(&spec) {
        Ok(mut f) => {
            f.kill_process = true;
            warn!(%spec, "fault points armed (a test setting)");
            Some(std::sync::Arc::new(f))
        }
        Err(e) => {
            warn!(error = %e, "KURYR_FAULT_POINTS ignored");
            None
        }
    }
}

/// The host binding for the configured port driver and `[binding]
/// default_driver` (whose compatibility `Config` already checked).
pub fn binder(config: &Config) -> Result<Binder, DaemonError> {
    let nested = |kind| Binder::nested(NestedConfig::new(kind));
    Ok(match config.default.default_port_driver {
        PortDriverKind::Veth => Binder::veth(VethConfig::default()),
        PortDriverKind::Nested => match config.binding.default_driver {
            BindingDriverKind::Ipvlan => nested(NestedKind::Ipvlan),
            _ => nested(NestedKind::Macvlan),
        },
        PortDriverKind::Vlan => nested(NestedKind::Vlan),
        PortDriverKind::Sriov => {
            return Err(DaemonError::UnsupportedPortDriver(
                PortDriverKind::Sriov.as_str().into(),
            ));
        }
    })
}

/// Nested modes: can this kernel make the configured sub-interfaces?
/// Tried once at start-up, so a missing module is one clear error instead
/// of a failure at every `docker run`.
fn check_kernel(binder: &Binder) -> Result<(), DaemonError> {
    let Binder::Nested(b) = binder else {
        return Ok(());
    };
    let kind = b.config().kind;
    match crate::binding::probe_link_kind(kind) {
        Ok(true) => Ok(()),
        Ok(false) => Err(DaemonError::KernelLacks {
            kind: kind.as_str(),
            module: match kind {
                NestedKind::Vlan => "8021q",
                other => other.as_str(),
            },
        }),
        Err(e) => {
            warn!(kind = %kind, error = %e, "cannot probe the kernel for {kind} support; going on");
            Ok(())
        }
    }
}

/// Build the driver (no Neutron call yet).
pub fn build_driver(config: &Config) -> Result<Driver, DaemonError> {
    let session = Session::new(config.session_config()?)?;
    let neutron = Neutron::new(session);
    Ok(Driver::new(neutron, driver_config(config), binder(config)?))
}

/// Check Neutron and rebuild the index, retrying while Neutron is not up
/// yet (at boot the driver starts before dockerd, maybe before Neutron).
async fn start_with_retry(driver: &Driver) -> Result<(), DaemonError> {
    let mut delay = Duration::from_secs(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match driver.start().await {
            Ok(()) => return Ok(()),
            Err(crate::driver::DriverError::Neutron(e)) if e.is_transient() && attempt < 8 => {
                warn!(error = %chain(&e), attempt, "Neutron not reachable yet; retrying in {}s", delay.as_secs());
                driver.set_starting(chain(&e));
                notify::notify(&format!(
                    "STATUS=waiting for Neutron (attempt {attempt}): {e}"
                ));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The Neutron endpoint comes from the catalog: say so when tokens would
/// travel to it in clear (Keystone's URL is checked with the
/// configuration).
async fn warn_plain_neutron(neutron: &Neutron) {
    if let Ok(url) = neutron.base_url().await
        && crate::config::plain_http_beyond_loopback(&url)
    {
        warn!(endpoint = %url, "the Neutron endpoint is plain http://: every token crosses the network in clear; use an https endpoint (catalog interface or [neutron] endpoint_type)");
    }
}

/// The listener of an explicit `kuryr_uri`: loopback unless
/// `allow_remote_api`, HTTPS with `enable_ssl` (certificate and key read
/// before binding, so a bad file fails start-up).
async fn tcp_listener(config: &Config) -> Result<server::TcpListen, DaemonError> {
    let d = &config.default;
    let https_uri = d.kuryr_uri.to_ascii_lowercase().starts_with("https://");
    if https_uri && !d.enable_ssl {
        warn!(kuryr_uri = %d.kuryr_uri, "kuryr_uri is https:// but enable_ssl is false: serving plain HTTP, as kuryr-libnetwork does");
    } else if !https_uri && d.enable_ssl {
        warn!(kuryr_uri = %d.kuryr_uri, "enable_ssl is true: serving HTTPS although kuryr_uri says http://");
    }
    let acceptor = if d.enable_ssl {
        Some(server::tls::acceptor(&d.ssl_cert_file, &d.ssl_key_file)?)
    } else {
        None
    };
    let l = &d.kuryr_listen;
    let listener = server::bind_tcp(&l.host, l.port, d.allow_remote_api).await?;
    Ok(match acceptor {
        Some(acceptor) => {
            server::TcpListen::Tls(server::tls::TlsListener::new(listener, acceptor)?)
        }
        None => server::TcpListen::Plain(listener),
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = int.recv() => info!("SIGINT: shutting down"),
    }
}

/// Run the daemon until SIGTERM/SIGINT.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    for w in config.warnings.iter().chain(&config.transport_warnings()) {
        warn!("{w}");
    }
    let driver = Arc::new(build_driver(&config)?);
    check_kernel(driver.binder())?;
    info!(
        host_id = %driver.config().host_id,
        scope = %driver.config().scope,
        port_driver = %driver.config().port_driver,
        "kuryr starting"
    );
    // Listen first: dockerd's plugin client gives up after ~15 s of
    // connection errors, and Neutron may take longer at boot.
    let unix = match &config.default.plugin_socket {
        Some(path) if !path.as_os_str().is_empty() => {
            let path: PathBuf = path.clone();
            Some((server::bind_unix(&path).await?, path))
        }
        _ => None,
    };
    let tcp = if config.default.kuryr_uri_explicit {
        Some(tcp_listener(&config).await?)
    } else {
        None
    };
    if unix.is_none() && tcp.is_none() {
        return Err(DaemonError::NoListener);
    }
    // Off unless configured; stops (and removes its socket) when dropped.
    let _metrics = match &config.metrics.listen {
        Some(listen) => Some(crate::metrics::http::start(listen, driver.clone()).await?),
        None => None,
    };
    // Serve while starting: Activate and the capabilities are answered at
    // once; stateful calls wait a little, then get the reason.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        tokio::select! {
            _ = shutdown_signal() => notify::notify(notify::STOPPING),
            _ = stopped => {}
        }
    };
    let mut server = tokio::spawn(server::serve(driver.clone(), unix, tcp, shutdown));
    let started = tokio::select! {
        started = start_with_retry(&driver) => started,
        // SIGTERM while still starting: the server stopped, so do we.
        served = &mut server => return served_result(served),
    };
    if let Err(e) = started {
        error!(error = %chain(&e), "cannot start");
        driver.set_start_failed(chain(&e));
        // The server stops and removes its socket file.
        let _ = stop.send(());
        let _ = server.await;
        return Err(e);
    }
    warn_plain_neutron(driver.neutron()).await;
    // What a crash or a lost call left: now, then every orphan_interval.
    tokio::spawn(driver.clone().collect_orphans_forever());
    if driver.config().ports_pool_size > 0 {
        tokio::spawn(driver.clone().keep_ports_ready());
    }
    notify::notify(&format!("{}\nSTATUS=serving the plugin API", notify::READY));
    let served = server.await;
    drop(stop);
    served_result(served)
}

fn served_result(
    served: Result<std::io::Result<()>, tokio::task::JoinError>,
) -> Result<(), DaemonError> {
    served.map_err(|e| DaemonError::Io(std::io::Error::other(e)))??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> Config {
        text.parse()
            .unwrap_or_else(|e| panic!("{e}\n--- config:\n{text}"))
    }

    fn nested_kind(b: &Binder) -> Option<NestedKind> {
        match b {
            Binder::Nested(n) => Some(n.config().kind),
            _ => None,
        }
    }

    #[test]
    fn the_port_driver_picks_the_binder() {
        let c = conf("");
        assert!(matches!(binder(&c).unwrap(), Binder::Veth(_)));
        assert_eq!(driver_config(&c).port_driver, PortDriverKind::Veth);
        assert_eq!(driver_config(&c).link_iface, None);

        let cases = [
            (
                "[DEFAULT]\nport_driver = nested\nenabled_port_drivers = nested\n\
                 [binding]\ndefault_driver = kuryr.lib.binding.drivers.macvlan\n\
                 enabled_drivers = kuryr.lib.binding.drivers.macvlan\nlink_iface = ens3\n",
                PortDriverKind::Nested,
                NestedKind::Macvlan,
                Some("ens3"),
            ),
            (
                "[DEFAULT]\ndefault_port_driver = kuryr_libnetwork.port_driver.drivers.nested\n\
                 enabled_port_drivers = kuryr_libnetwork.port_driver.drivers.nested\n\
                 [binding]\ndefault_driver = ipvlan\nenabled_drivers = ipvlan\n",
                PortDriverKind::Nested,
                NestedKind::Ipvlan,
                None,
            ),
            (
                "[DEFAULT]\ndefault_port_driver = vlan\nenabled_port_drivers = vlan\n\
                 [binding]\ndriver = kuryr.lib.binding.drivers.vlan\nenabled_drivers = vlan\n\
                 link_iface = eth0\n",
                PortDriverKind::Vlan,
                NestedKind::Vlan,
                Some("eth0"),
            ),
        ];
        for (text, port_driver, kind, link) in cases {
            let c = conf(text);
            assert_eq!(nested_kind(&binder(&c).unwrap()), Some(kind), "{text}");
            let d = driver_config(&c);
            assert_eq!(d.port_driver, port_driver);
            assert_eq!(d.link_iface.as_deref(), link);
            assert_eq!(d.link_netns, None);
        }
    }

    #[test]
    fn sriov_is_refused_with_a_clear_message() {
        let c = conf(
            "[DEFAULT]\ndefault_port_driver = sriov\nenabled_port_drivers = sriov\n\
             [binding]\nenabled_drivers = veth,hw_veb\n",
        );
        let e = binder(&c).unwrap_err();
        assert!(matches!(e, DaemonError::UnsupportedPortDriver(ref d) if d == "sriov"));
        let s = e.to_string();
        assert!(
            s.contains("sriov") && s.contains("veth, nested, vlan"),
            "{s}"
        );
    }

    #[test]
    fn a_kernel_without_the_link_kind_is_named() {
        let s = DaemonError::KernelLacks {
            kind: "vlan",
            module: "8021q",
        }
        .to_string();
        assert!(s.contains("cannot create vlan devices"), "{s}");
        assert!(s.contains("load the 8021q module"), "{s}");
        assert!(s.contains("[binding] default_driver"), "{s}");
    }
}
