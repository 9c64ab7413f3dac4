//! `kuryr node check`: is this node ready to serve kuryr networks? One line
//! per check, `OK`, `FAIL` (with what to do) or `SKIP` (not applicable, or
//! blocked by an earlier failure):
//!
//! | check | how |
//! |---|---|
//! | `config` | `kuryr.conf` loads as the daemon loads it |
//! | `keystone` | a token is issued for the configured credential |
//! | `neutron` | Neutron answers and has the extensions the mode needs |
//! | `agent` | agent mode: a live L2 agent reports this binding host |
//! | `ovs` | agent mode with Open vSwitch: `ovs-vsctl br-exists br-int` |
//! | `tunnel` | agent mode with tunnels: the endpoint is an address of this node (on an OVS bridge port for the userspace datapath), and a tunnel port (OVS) or forwarding entry (Linux bridge) reaches every host this host must reach |
//! | `link` | nested/vlan mode: `[binding] link_iface` exists |
//! | `driver` | the driver's socket (the managed plugin's, when dockerd has it) answers `/Plugin.Activate` |
//! | `docker` | dockerd answers, and its plugin discovery finds the driver (or it runs the managed plugin) |
//!
//! [`run`] makes one call per row, in this order; `conf.rs` has the
//! `config` check, `openstack.rs` `keystone`, `neutron` and `agent`,
//! `node.rs` `ovs` and `link`, `tunnel.rs` `tunnel`, `docker.rs` `driver`
//! and `docker`.

mod conf;
mod docker;
mod node;
mod openstack;
#[cfg(test)]
mod tests;
mod tunnel;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use kuryr_openstack::SessionConfig;

use crate::config::{Config, PortDriverKind};
use crate::paths;

/// What `kuryr node check` looks at.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub config_file: PathBuf,
    /// `unix:///run/docker.sock` or `tcp://host:port`.
    pub docker_host: String,
    /// Bound on each network call.
    pub timeout: Duration,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            config_file: PathBuf::from(crate::config::DEFAULT_CONFIG_FILE),
            docker_host: paths::DOCKER_HOST.into(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Fail,
    Skip,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Status::Ok => "OK",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    pub name: &'static str,
    pub status: Status,
    pub message: String,
}

impl fmt::Display for CheckLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<4} {}: {}", self.status, self.name, self.message)
    }
}

/// All lines, in check order.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub lines: Vec<CheckLine>,
}

impl Report {
    fn push(&mut self, name: &'static str, status: Status, message: impl Into<String>) {
        self.lines.push(CheckLine {
            name,
            status,
            message: message.into(),
        });
    }

    pub fn failed(&self) -> bool {
        self.lines.iter().any(|l| l.status == Status::Fail)
    }

    pub fn line(&self, name: &str) -> Option<&CheckLine> {
        self.lines.iter().find(|l| l.name == name)
    }
}

/// Run every check.
pub async fn run(opts: &CheckOptions) -> Report {
    let mut r = Report::default();
    let loaded = conf::check_config(&mut r, opts);
    let session = openstack::check_keystone(&mut r, &loaded).await;
    let neutron = openstack::check_neutron(&mut r, session, &loaded).await;
    let agent = openstack::check_agent(&mut r, neutron.as_ref(), &loaded).await;
    let agent_type = agent.as_ref().map(|a| a.agent_type.as_str());
    node::check_ovs(&mut r, agent_type, &loaded, opts.timeout).await;
    tunnel::check_tunnel(
        &mut r,
        neutron.as_ref(),
        agent.as_ref(),
        &loaded,
        opts.timeout,
    )
    .await;
    node::check_link(&mut r, &loaded);
    let listener = match docker::managed_plugin(&opts.docker_host, opts.timeout).await {
        Some(managed) => docker::Listener::Managed(managed),
        None => docker::driver_listener(loaded.config.as_ref()),
    };
    docker::check_driver(&mut r, &listener, opts.timeout).await;
    docker::check_docker(&mut r, &listener, &opts.docker_host, opts.timeout).await;
    r
}

/// Neutron agent types that bind `binding:host_id` ports with a veth.
const L2_AGENT_TYPES: [&str; 2] = ["Open vSwitch agent", "Linux bridge agent"];

/// What the `config` check found, for the checks after it.
struct Loaded {
    /// The configuration file, as shown.
    path: String,
    /// `None` when it does not load.
    config: Option<Config>,
    /// `None` when the configuration does not load or its credential is
    /// incomplete.
    session_config: Option<SessionConfig>,
    /// The binding host the driver uses.
    host: Option<String>,
}

impl Loaded {
    fn port_driver(&self) -> Option<PortDriverKind> {
        self.config.as_ref().map(|c| c.default.default_port_driver)
    }
}
