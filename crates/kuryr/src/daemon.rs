//! Assemble and run the driver daemon from kuryr.conf.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kuryr_openstack::{Neutron, Session};
use tracing::{error, info, warn};

use crate::binding::{Binder, VethConfig};
use crate::config::{Config, PortDriverKind};
use crate::driver::{Driver, DriverConfig};
use crate::server;

/// Why the daemon could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Client(#[from] kuryr_openstack::Error),
    #[error("port driver {0} is not available in this build")]
    UnsupportedPortDriver(String),
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
    let scope = d.capability_scope.as_str().to_string();
    DriverConfig {
        host_id: d.host.clone().unwrap_or_else(hostname),
        connectivity_scope: d
            .connectivity_scope
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| scope.clone()),
        scope,
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
    }
}

/// Build the driver (no Neutron call yet).
pub fn build_driver(config: &Config) -> Result<Driver, DaemonError> {
    let session = Session::new(config.session_config()?)?;
    let neutron = Neutron::new(session);
    let binder = match config.default.default_port_driver {
        PortDriverKind::Veth => Binder::veth(VethConfig::default()),
        other => return Err(DaemonError::UnsupportedPortDriver(other.as_str().into())),
    };
    Ok(Driver::new(neutron, driver_config(config), binder))
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
                warn!(error = %e, attempt, "Neutron not reachable yet; retrying in {}s", delay.as_secs());
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e.into()),
        }
    }
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
    for w in &config.warnings {
        warn!("{w}");
    }
    let driver = Arc::new(build_driver(&config)?);
    info!(host_id = %driver.config().host_id, scope = %driver.config().scope, "kuryr starting");
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
        let l = &config.default.kuryr_listen;
        Some(server::bind_tcp(&l.host, l.port).await?)
    } else {
        None
    };
    if unix.is_none() && tcp.is_none() {
        return Err(DaemonError::NoListener);
    }
    if let Err(e) = start_with_retry(&driver).await {
        error!(error = %e, "cannot start");
        return Err(e);
    }
    server::serve(driver, unix, tcp, shutdown_signal()).await?;
    Ok(())
}
