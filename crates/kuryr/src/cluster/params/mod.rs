//! Cluster parameters: what Magnum kept in `magnum.conf` and passed to
//! Heat, for every node of a cluster: where Keystone is, the credential the
//! nodes use, how binding hosts are named, how the driver is served, and
//! the agent-mode services.
//!
//! Secrets (`application_credential_secret`, `password`, the agent's
//! `transport_url`) are held as [`secrecy::SecretString`]: `Debug` redacts
//! them and no message of this module ever includes them.
//!
//! Each top-level object has its file: `keystone.rs`, `credential.rs`,
//! `driver.rs`, `agent.rs`; this one reads the whole file, the operator's
//! network-driver policy (`cluster_template`) and `binding_host`. Every
//! reader records each problem and goes on, so one run reports them all.
//!
//! An example, with every field:
//!
//! ```json
//! {
//!   "cluster_template": {
//!     "swarm_allowed_network_drivers": ["all"],
//!     "swarm_default_network_driver": "kuryr"
//!   },
//!   "keystone": {
//!     "auth_url": "https://keystone.example.com:5000/v3",
//!     "region_name": "RegionOne",
//!     "interface": "internal",
//!     "ca_file": "/etc/ssl/certs/openstack-ca.pem"
//!   },
//!   "credential": {
//!     "type": "application_credential",
//!     "application_credential_id": "8f0c...",
//!     "application_credential_secret": "..."
//!   },
//!   "binding_host": "hostname",
//!   "init": "auto",
//!   "driver": {"binary": "/usr/local/bin/kuryr", "plugin": "socket", "enable_dhcp": true},
//!   "agent": {
//!     "local_ip": {"interface": "eth0"},
//!     "datapath_type": "system",
//!     "physical_bridge": {"bridge": "br-phy", "interface": "eth0"},
//!     "tunnel_types": ["vxlan"],
//!     "l2_population": true,
//!     "transport_url": "rabbit://neutron:...@10.0.0.10:5672/",
//!     "install": "apt"
//!   }
//! }
//! ```

mod agent;
mod credential;
mod driver;
mod keystone;
#[cfg(test)]
mod tests;

use std::path::{Component, Path};

use serde_json::{Map, Value};
use url::Url;

pub use agent::{AgentParams, DatapathType, Installer, LocalIpSource, PhysicalBridge};
pub use credential::{CREDENTIAL_OPTION_ORDER, CredentialKind, NodeCredential};
pub use driver::{DEFAULT_PLUGIN_REF, DriverParams, PluginMode};
pub use keystone::{CaBundle, KeystoneParams};

use super::Problem;
use super::json::{Fields, parse_object};
use super::template::NetworkDriverPolicy;
use crate::paths;

/// All cluster parameters.
#[derive(Debug, Clone)]
pub struct ClusterParams {
    /// `cluster_template`: the operator's network-driver policy.
    pub network_drivers: NetworkDriverPolicy,
    pub keystone: KeystoneParams,
    pub credential: NodeCredential,
    pub binding_host: HostNaming,
    /// Who starts the node's services.
    pub init: InitChoice,
    pub driver: DriverParams,
    pub agent: AgentParams,
}

impl ClusterParams {
    /// Parse and validate a parameters file, every problem reported.
    pub fn from_json(text: &str) -> Result<Self, Vec<Problem>> {
        let obj = parse_object(text, "cluster parameters").map_err(|p| vec![p])?;
        Self::from_object(&obj)
    }

    pub fn from_object(obj: &Map<String, Value>) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut f = Fields::new(obj, "", &mut problems);
        f.reject_unknown(TOP_FIELDS, "cluster parameters");
        let network_drivers = read_policy(&mut f);
        let keystone = keystone::read(&mut f);
        let credential = credential::read(&mut f);
        let binding_host = read_binding_host(&mut f);
        let init = read_init(&mut f);
        let driver = driver::read(&mut f);
        if driver.plugin == PluginMode::Managed {
            ca_file_seen_by_the_plugin(&mut f);
        }
        let agent = agent::read(&mut f);
        match (keystone, credential) {
            (Some(keystone), Some(credential)) if problems.is_empty() => Ok(ClusterParams {
                network_drivers,
                keystone,
                credential,
                binding_host,
                init,
                driver,
                agent,
            }),
            _ => Err(problems),
        }
    }
}

const TOP_FIELDS: &[&str] = &[
    "cluster_template",
    "keystone",
    "credential",
    "binding_host",
    "init",
    "driver",
    "agent",
];

/// Managed plugin mode: the plugin sees only the node's `/etc/kuryr` (and
/// the OVS database socket), so a `keystone.ca_file` elsewhere is a file
/// the driver cannot read. Read from the raw object, so the problem is
/// reported even when other `keystone` fields are wrong.
fn ca_file_seen_by_the_plugin(f: &mut Fields<'_>) {
    let Some(path) = f
        .get("keystone")
        .and_then(|k| k.get("ca_file"))
        .and_then(|v| v.as_str())
    else {
        return;
    };
    let p = Path::new(path);
    if !p.is_absolute() || path.contains('\n') {
        return; // keystone::read reports it
    }
    let inside = p.strip_prefix(paths::ETC_KURYR).is_ok_and(|rest| {
        rest.components().next().is_some()
            && rest.components().all(|c| matches!(c, Component::Normal(_)))
    });
    if !inside {
        f.problem(
            "keystone.ca_file",
            format!(
                "keystone.ca_file {path:?} is outside {dir}, the only directory of the node the managed \
                 plugin sees (mounted read-only): the driver in the plugin could not read it. Give the \
                 PEM text as keystone.ca_pem (node setup writes it to {ca_pem}) or put the file under {dir}",
                dir = paths::ETC_KURYR,
                ca_pem = paths::CA_PEM,
            ),
        );
    }
}

/// The operator's network-driver policy from a parameters file, even when
/// other parts of it are wrong (so a template is still judged by it).
pub fn policy_only(text: &str) -> NetworkDriverPolicy {
    let Ok(obj) = parse_object(text, "cluster parameters") else {
        return NetworkDriverPolicy::default();
    };
    let mut sink = Vec::new();
    let mut f = Fields::new(&obj, "", &mut sink);
    read_policy(&mut f)
}

/// `cluster_template`: which network drivers the operator allows.
fn read_policy(f: &mut Fields<'_>) -> NetworkDriverPolicy {
    let mut policy = NetworkDriverPolicy::default();
    let Some(obj) = f.object("cluster_template") else {
        return policy;
    };
    let mut g = Fields::new(obj, "cluster_template", f.out);
    g.reject_unknown(
        &[
            "swarm_allowed_network_drivers",
            "swarm_default_network_driver",
        ],
        "cluster_template",
    );
    if let Some(list) = g.str_list("swarm_allowed_network_drivers") {
        if list.is_empty() {
            g.problem(
                "swarm_allowed_network_drivers",
                "cluster_template.swarm_allowed_network_drivers must not be empty: use [\"all\"] to allow every supported driver",
            );
        } else {
            policy.allowed = list;
        }
    }
    if let Some(d) = g.opt_str("swarm_default_network_driver") {
        policy.default = d;
    }
    policy
}

/// How a node's binding host (`binding:host_id`, the L2 agent's `host`)
/// is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostNaming {
    /// The machine's host name, what both kuryr-libnetwork and the Neutron
    /// agents use by default.
    Hostname,
    /// A pattern with `{hostname}` (the host name) or `{short_hostname}`
    /// (up to its first dot), e.g. `{short_hostname}.swarm.example.com`.
    Pattern(String),
}

impl HostNaming {
    /// The binding host for a machine called `hostname`.
    pub fn apply(&self, hostname: &str) -> String {
        match self {
            HostNaming::Hostname => hostname.to_string(),
            HostNaming::Pattern(p) => {
                let short = hostname.split('.').next().unwrap_or(hostname);
                p.replace("{hostname}", hostname)
                    .replace("{short_hostname}", short)
            }
        }
    }
}

/// `binding_host`: `"hostname"` or a pattern naming every node apart.
fn read_binding_host(f: &mut Fields<'_>) -> HostNaming {
    let Some(s) = f.opt_str("binding_host") else {
        return HostNaming::Hostname;
    };
    if s == "hostname" {
        return HostNaming::Hostname;
    }
    let has_placeholder = s.contains("{hostname}") || s.contains("{short_hostname}");
    let rest = s.replace("{hostname}", "").replace("{short_hostname}", "");
    let clean = !rest.contains(['{', '}'])
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && s.len() <= 255;
    if !has_placeholder || !clean {
        f.problem(
            "binding_host",
            format!(
                "binding_host {s:?} is not \"hostname\" or a pattern with {{hostname}} or {{short_hostname}} \
                 (e.g. \"{{short_hostname}}.swarm.example.com\"): every node needs its own binding host, \
                 without spaces"
            ),
        );
        return HostNaming::Hostname;
    }
    HostNaming::Pattern(s)
}

/// Who starts the node's services (Open vSwitch, the L2 agent, the driver
/// in socket and TCP modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitChoice {
    /// systemd when it runs the machine (`/run/systemd/system` exists),
    /// otherwise node setup itself.
    #[default]
    Auto,
    /// Unit files, `systemctl enable --now`.
    Systemd,
    /// No systemd (many containers, minimal images): node setup starts the
    /// daemons itself and records them under `/run/kuryr`; running it
    /// again (at every boot) starts what is not running.
    Process,
}

impl InitChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            InitChoice::Auto => "auto",
            InitChoice::Systemd => "systemd",
            InitChoice::Process => "process",
        }
    }
}

/// `init`: `auto`, `systemd` or `process`.
fn read_init(f: &mut Fields<'_>) -> InitChoice {
    match f.opt_str("init").as_deref() {
        None | Some("auto") => InitChoice::Auto,
        Some("systemd") => InitChoice::Systemd,
        Some("process") => InitChoice::Process,
        Some(other) => {
            f.problem(
                "init",
                format!(
                    "init {other:?} is not one of auto (systemd when it runs the machine), systemd, \
                     process (node setup starts and records the daemons itself)"
                ),
            );
            InitChoice::Auto
        }
    }
}

/// Why a secret cannot go into an oslo.config file, without showing it.
fn secret_problem(s: &str) -> Option<&'static str> {
    if s.contains(['\n', '\r']) {
        Some("must not contain line breaks")
    } else if s.contains("\\$") {
        Some("must not contain the sequence \\$, which oslo.config cannot read back")
    } else if s.trim() != s {
        Some("must not start or end with spaces, which oslo.config strips")
    } else {
        None
    }
}

/// `s` as an absolute URL with a host and, when it names a port, not port
/// 0; `None` otherwise.
pub(crate) fn parse_url(s: &str) -> Option<Url> {
    let u = Url::parse(s).ok()?;
    let has_host = u.host_str().is_some_and(|h| !h.is_empty());
    (has_host && u.port() != Some(0)).then_some(u)
}
