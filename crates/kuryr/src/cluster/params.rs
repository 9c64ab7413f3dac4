//! Cluster parameters: what Magnum kept in `magnum.conf` and passed to
//! Heat, for every node of a cluster: where Keystone is, the credential the
//! nodes use, how binding hosts are named, how the driver is served, and
//! the agent-mode services.
//!
//! Secrets (`application_credential_secret`, `password`, the agent's
//! `transport_url`) are held as [`SecretString`]: `Debug` redacts them and
//! no message of this module ever includes them.
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
//!   "driver": {"binary": "/usr/local/bin/kuryr", "plugin": "socket"},
//!   "agent": {
//!     "local_ip": {"interface": "eth0"},
//!     "datapath_type": "system",
//!     "tunnel_types": ["vxlan"],
//!     "l2_population": true,
//!     "transport_url": "rabbit://neutron:...@10.0.0.10:5672/",
//!     "install": "apt"
//!   }
//! }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use kuryr_openstack::Interface;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::Problem;
use super::json::{Fields, parse_object, type_name};
use super::labels::{AgentType, valid_ifname};
use super::template::NetworkDriverPolicy;
use crate::paths::{self, SOCKET_PATHS};

/// All cluster parameters.
#[derive(Debug, Clone)]
pub struct ClusterParams {
    /// `cluster_template`: the operator's network-driver policy.
    pub network_drivers: NetworkDriverPolicy,
    pub keystone: KeystoneParams,
    pub credential: NodeCredential,
    pub binding_host: HostNaming,
    pub driver: DriverParams,
    pub agent: AgentParams,
}

/// Where Keystone is and how to trust it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoneParams {
    /// Keystone v3 URL.
    pub auth_url: String,
    pub region_name: Option<String>,
    /// Which catalog interface reaches Neutron from the nodes.
    pub interface: Interface,
    pub ca: Option<CaBundle>,
}

/// The CA bundle that signs the cloud's API certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaBundle {
    /// A file already on the nodes.
    Path(PathBuf),
    /// PEM text, written to `/etc/kuryr/ca.pem` by node setup.
    Pem(String),
}

/// Which kind of Keystone credential the nodes hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A Keystone application credential: preferred, ideally restricted by
    /// access rules to the Neutron calls of the driver.
    ApplicationCredential,
    /// A service account's password: still works, but is usable for
    /// anything the account may do, anywhere, until it is changed.
    Password,
}

impl CredentialKind {
    /// keystoneauth's `auth_type` for this credential.
    pub fn auth_type(self) -> &'static str {
        match self {
            CredentialKind::ApplicationCredential => "v3applicationcredential",
            CredentialKind::Password => "password",
        }
    }

    /// The keystoneauth option holding the secret.
    pub fn secret_option(self) -> &'static str {
        match self {
            CredentialKind::ApplicationCredential => "application_credential_secret",
            CredentialKind::Password => "password",
        }
    }
}

impl CredentialKind {
    /// The `credential.type` value.
    pub fn type_name(self) -> &'static str {
        match self {
            CredentialKind::ApplicationCredential => "application_credential",
            CredentialKind::Password => "password",
        }
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CredentialKind::ApplicationCredential => "application credential",
            CredentialKind::Password => "password",
        })
    }
}

/// The node credential, as keystoneauth options.
#[derive(Debug, Clone)]
pub struct NodeCredential {
    pub kind: CredentialKind,
    /// The non-secret keystoneauth options, in [`CREDENTIAL_OPTION_ORDER`].
    pub options: Vec<(&'static str, String)>,
    pub secret: SecretString,
}

/// Every non-secret keystoneauth option a credential may carry, in the
/// order they are written to `kuryr.conf`.
pub const CREDENTIAL_OPTION_ORDER: &[&str] = &[
    "application_credential_id",
    "application_credential_name",
    "user_id",
    "username",
    "user_domain_id",
    "user_domain_name",
    "project_id",
    "project_name",
    "project_domain_id",
    "project_domain_name",
];

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

/// How Docker reaches the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PluginMode {
    /// The driver serves `/run/docker/plugins/kuryr.sock` (root only);
    /// Docker discovers it there, no plugin file needed.
    #[default]
    Socket,
    /// kuryr-libnetwork's way: HTTP on loopback, announced by
    /// `/usr/lib/docker/plugins/kuryr/kuryr.spec`.
    Tcp,
    /// A managed (v2) Docker plugin, built by node setup from this binary
    /// and run by dockerd (swarm services need it).
    Managed,
}

impl PluginMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginMode::Socket => "socket",
            PluginMode::Tcp => "tcp",
            PluginMode::Managed => "managed",
        }
    }
}

/// The driver service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverParams {
    /// The `kuryr` binary on the nodes.
    pub binary: PathBuf,
    pub plugin: PluginMode,
    /// Socket mode: where the driver listens.
    pub socket: PathBuf,
    /// TCP mode: `kuryr_uri`.
    pub tcp_uri: String,
    /// `[DEFAULT] debug`.
    pub debug: bool,
    /// Managed mode: the plugin reference (`docker plugin create NAME`).
    pub plugin_ref: String,
}

/// The default managed plugin reference.
pub const DEFAULT_PLUGIN_REF: &str = "kuryr/kuryr:latest";

impl Default for DriverParams {
    fn default() -> Self {
        DriverParams {
            binary: PathBuf::from(paths::KURYR_BINARY),
            plugin: PluginMode::Socket,
            socket: PathBuf::from(SOCKET_PATHS[0]),
            tcp_uri: "http://127.0.0.1:23750".into(),
            debug: false,
            plugin_ref: DEFAULT_PLUGIN_REF.into(),
        }
    }
}

/// Where the tunnel endpoint address of a node comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalIpSource {
    /// A fixed address (one parameter file per node).
    Address(IpAddr),
    /// The first global address of this interface (IPv4 preferred).
    Interface(String),
    /// The source address the kernel picks to reach this address (e.g. the
    /// Neutron server); no packet is sent.
    RouteTo(IpAddr),
}

/// Open vSwitch datapath (`[ovs] datapath_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DatapathType {
    /// The kernel datapath.
    #[default]
    System,
    /// The userspace datapath (no openvswitch kernel module; DPDK).
    Netdev,
}

impl DatapathType {
    pub fn as_str(self) -> &'static str {
        match self {
            DatapathType::System => "system",
            DatapathType::Netdev => "netdev",
        }
    }
}

/// How node setup installs the agent-mode packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Installer {
    /// Packages are already in the image; nothing is installed.
    #[default]
    None,
    /// `apt-get install` (Debian, Ubuntu).
    Apt,
    /// `dnf install` (RDO on CentOS Stream, RHEL, Fedora).
    Dnf,
}

/// The Neutron L2 agent of agent mode.
#[derive(Debug, Clone)]
pub struct AgentParams {
    pub local_ip: Option<LocalIpSource>,
    pub datapath_type: DatapathType,
    /// `[agent] tunnel_types`; empty for VLAN or flat networks only.
    pub tunnel_types: Vec<String>,
    pub l2_population: bool,
    /// Open vSwitch: physical network → bridge.
    pub bridge_mappings: BTreeMap<String, String>,
    /// Linux bridge: physical network → interface.
    pub physical_interface_mappings: BTreeMap<String, String>,
    /// The message bus of Neutron (the agent's `[DEFAULT] transport_url`),
    /// unless `/etc/neutron/neutron.conf` already has it.
    pub transport_url: Option<SecretString>,
    pub install: Installer,
    /// Overrides the packages installed for the agent type.
    pub packages: Option<Vec<String>>,
    /// Overrides the Open vSwitch systemd unit.
    pub openvswitch_service: Option<String>,
    /// Overrides the agent systemd unit.
    pub agent_service: Option<String>,
}

impl Default for AgentParams {
    fn default() -> Self {
        AgentParams {
            local_ip: None,
            datapath_type: DatapathType::System,
            tunnel_types: vec!["vxlan".into()],
            l2_population: false,
            bridge_mappings: BTreeMap::new(),
            physical_interface_mappings: BTreeMap::new(),
            transport_url: None,
            install: Installer::None,
            packages: None,
            openvswitch_service: None,
            agent_service: None,
        }
    }
}

impl AgentParams {
    /// The packages an agent of `agent_type` needs.
    pub fn packages_for(&self, agent_type: AgentType) -> Vec<String> {
        if let Some(p) = &self.packages {
            return p.clone();
        }
        let names: &[&str] = match (self.install, agent_type) {
            (Installer::Dnf, AgentType::Ovs) => &["openvswitch", "openstack-neutron-openvswitch"],
            (Installer::Dnf, AgentType::LinuxBridge) => &["openstack-neutron-linuxbridge"],
            (_, AgentType::Ovs) => &["openvswitch-switch", "neutron-openvswitch-agent"],
            (_, AgentType::LinuxBridge) => &["neutron-linuxbridge-agent"],
        };
        names.iter().map(|s| s.to_string()).collect()
    }

    /// The Open vSwitch unit (OVS agents only).
    pub fn openvswitch_unit(&self) -> String {
        self.openvswitch_service.clone().unwrap_or_else(|| {
            match self.install {
                Installer::Dnf => "openvswitch",
                _ => "openvswitch-switch",
            }
            .into()
        })
    }

    /// The agent's unit.
    pub fn agent_unit(&self, agent_type: AgentType) -> String {
        self.agent_service.clone().unwrap_or_else(|| {
            match agent_type {
                AgentType::Ovs => "neutron-openvswitch-agent",
                AgentType::LinuxBridge => "neutron-linuxbridge-agent",
            }
            .into()
        })
    }
}

const TOP_FIELDS: &[&str] = &[
    "cluster_template",
    "keystone",
    "credential",
    "binding_host",
    "driver",
    "agent",
];

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
        let keystone = read_keystone(&mut f);
        let credential = read_credential(&mut f);
        let binding_host = read_binding_host(&mut f);
        let driver = read_driver(&mut f);
        let agent = read_agent(&mut f);
        match (keystone, credential) {
            (Some(keystone), Some(credential)) if problems.is_empty() => Ok(ClusterParams {
                network_drivers,
                keystone,
                credential,
                binding_host,
                driver,
                agent,
            }),
            _ => Err(problems),
        }
    }
}

fn read_keystone(f: &mut Fields<'_>) -> Option<KeystoneParams> {
    let Some(obj) = f.object("keystone") else {
        if f.get("keystone").is_none() {
            f.problem(
                "keystone",
                "keystone is missing: the nodes need keystone.auth_url",
            );
        }
        return None;
    };
    let mut g = Fields::new(obj, "keystone", f.out);
    g.reject_unknown(
        &["auth_url", "region_name", "interface", "ca_file", "ca_pem"],
        "keystone",
    );
    let auth_url = g.req_str("auth_url");
    if let Some(url) = &auth_url {
        let ok = split_url(url).filter(|u| matches!(u.scheme.as_str(), "http" | "https"));
        if ok.is_none() {
            g.problem(
                "auth_url",
                format!("keystone.auth_url {url:?} is not an http:// or https:// URL"),
            );
        } else if url.trim_end_matches('/').ends_with("/v2.0") {
            g.problem(
                "auth_url",
                "keystone.auth_url points at Keystone v2.0, which is gone; use the /v3 endpoint",
            );
        }
    }
    let region_name = g.opt_name("region_name", 255);
    let interface = match g.opt_str("interface") {
        None => Interface::Public,
        Some(s) => match s.parse() {
            Ok(i) => i,
            Err(_) => {
                g.problem(
                    "interface",
                    format!("keystone.interface {s:?} is not one of public, internal, admin"),
                );
                Interface::Public
            }
        },
    };
    let ca_file = g.opt_str("ca_file");
    let ca_pem = g.opt_str("ca_pem");
    let ca = match (ca_file, ca_pem) {
        (Some(_), Some(_)) => {
            g.problem(
                "ca_file",
                "set keystone.ca_file or keystone.ca_pem, not both",
            );
            None
        }
        (Some(path), None) => {
            if Path::new(&path).is_absolute() && !path.contains('\n') {
                Some(CaBundle::Path(PathBuf::from(path)))
            } else {
                g.problem(
                    "ca_file",
                    format!("keystone.ca_file {path:?} must be an absolute path on the nodes"),
                );
                None
            }
        }
        (None, Some(pem)) => {
            if pem.contains("-----BEGIN CERTIFICATE-----")
                && pem.contains("-----END CERTIFICATE-----")
            {
                let mut pem = pem;
                if !pem.ends_with('\n') {
                    pem.push('\n');
                }
                Some(CaBundle::Pem(pem))
            } else {
                g.problem(
                    "ca_pem",
                    "keystone.ca_pem must hold PEM certificates (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
                );
                None
            }
        }
        (None, None) => None,
    };
    Some(KeystoneParams {
        auth_url: auth_url?,
        region_name,
        interface,
        ca,
    })
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

fn read_credential(f: &mut Fields<'_>) -> Option<NodeCredential> {
    let Some(obj) = f.object("credential") else {
        if f.get("credential").is_none() {
            f.problem(
                "credential",
                "credential is missing: the nodes need a Keystone application credential \
                 (preferred) or a password account to call Neutron",
            );
        }
        return None;
    };
    let mut g = Fields::new(obj, "credential", f.out);
    let kind = match g.opt_str("type").as_deref() {
        Some("application_credential") => CredentialKind::ApplicationCredential,
        Some("password") => CredentialKind::Password,
        Some(other) => {
            g.problem(
                "type",
                format!(
                    "credential.type {other:?} is not supported: use application_credential (preferred) or password"
                ),
            );
            return None;
        }
        None => {
            g.problem(
                "type",
                "credential.type is missing: use application_credential (preferred) or password",
            );
            return None;
        }
    };
    let secret_key = kind.secret_option();
    let allowed: Vec<&str> = match kind {
        CredentialKind::ApplicationCredential => vec![
            "type",
            "application_credential_id",
            "application_credential_name",
            "application_credential_secret",
            "user_id",
            "username",
            "user_domain_id",
            "user_domain_name",
        ],
        CredentialKind::Password => vec![
            "type",
            "password",
            "user_id",
            "username",
            "user_domain_id",
            "user_domain_name",
            "project_id",
            "project_name",
            "project_domain_id",
            "project_domain_name",
        ],
    };
    let all_known: Vec<&str> = CREDENTIAL_OPTION_ORDER
        .iter()
        .copied()
        .chain(["type", "password", "application_credential_secret"])
        .collect();
    let wrong_kind: Vec<String> = obj
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()) && all_known.contains(&k.as_str()))
        .cloned()
        .collect();
    for key in &wrong_kind {
        let why = if key.starts_with("project_") {
            ": an application credential is bound to the project it was created in"
        } else {
            ""
        };
        let kind_name = kind.type_name();
        g.problem(
            key,
            format!("credential.{key} does not apply to credential type {kind_name}{why}"),
        );
    }
    g.reject_unknown(&all_known, "credential");

    let secret = match g.get(secret_key) {
        Some(Value::String(s)) if !s.is_empty() => match secret_problem(s) {
            Some(why) => {
                g.problem(secret_key, format!("credential.{secret_key} {why}"));
                None
            }
            None => Some(SecretString::from(s.clone())),
        },
        Some(Value::String(_)) | None => {
            g.problem(secret_key, format!("credential.{secret_key} is missing"));
            None
        }
        Some(other) => {
            let t = type_name(other);
            g.problem(
                secret_key,
                format!("credential.{secret_key} must be a string, not {t}"),
            );
            None
        }
    };

    let mut options = Vec::new();
    for key in CREDENTIAL_OPTION_ORDER {
        if !allowed.contains(key) {
            continue;
        }
        if let Some(v) = g.opt_name(key, 255) {
            if v.trim() != v {
                g.problem(
                    key,
                    format!("credential.{key} must not start or end with spaces"),
                );
                continue;
            }
            options.push((*key, v));
        }
    }
    let has = |k: &str| options.iter().any(|(o, _)| *o == k);
    let user_ok =
        has("user_id") || (has("username") && (has("user_domain_name") || has("user_domain_id")));
    match kind {
        CredentialKind::ApplicationCredential => {
            if !has("application_credential_id") && !has("application_credential_name") {
                g.problem(
                    "application_credential_id",
                    "credential.application_credential_id is missing (or give application_credential_name with its owner)",
                );
            } else if !has("application_credential_id") && !user_ok {
                g.problem(
                    "application_credential_name",
                    "credential.application_credential_name needs the owner: user_id, or username with user_domain_name or user_domain_id",
                );
            }
        }
        CredentialKind::Password => {
            if !user_ok {
                g.problem(
                    "username",
                    "a password credential needs user_id, or username with user_domain_name or user_domain_id \
                     (a Keystone v3 user name is only unique within its domain)",
                );
            }
            let project_ok = has("project_id")
                || (has("project_name")
                    && (has("project_domain_name") || has("project_domain_id")));
            if !project_ok {
                g.problem(
                    "project_name",
                    "a password credential needs project_id, or project_name with project_domain_name or \
                     project_domain_id: kuryr needs a token scoped to the project that owns the networks",
                );
            }
        }
    }
    Some(NodeCredential {
        kind,
        options,
        secret: secret?,
    })
}

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

fn read_driver(f: &mut Fields<'_>) -> DriverParams {
    let mut d = DriverParams::default();
    let Some(obj) = f.object("driver") else {
        return d;
    };
    let mut g = Fields::new(obj, "driver", f.out);
    g.reject_unknown(
        &[
            "binary",
            "plugin",
            "plugin_ref",
            "socket",
            "tcp_uri",
            "debug",
        ],
        "driver",
    );
    if let Some(b) = g.opt_str("binary") {
        if Path::new(&b).is_absolute() {
            d.binary = PathBuf::from(b);
        } else {
            g.problem(
                "binary",
                format!("driver.binary {b:?} must be an absolute path"),
            );
        }
    }
    match g.opt_str("plugin").as_deref() {
        None | Some("socket") => {}
        Some("tcp") => d.plugin = PluginMode::Tcp,
        Some("managed") => d.plugin = PluginMode::Managed,
        Some(other) => g.problem(
            "plugin",
            format!(
                "driver.plugin {other:?} is not supported: socket (the driver serves {}), \
                 tcp (kuryr-libnetwork's kuryr.spec on loopback) or managed (a v2 Docker plugin, \
                 for swarm services)",
                paths::PLUGIN_SOCKET
            ),
        ),
    }
    if let Some(r) = g.opt_str("plugin_ref") {
        let ok = !r.is_empty()
            && r.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/:._-".contains(c));
        if ok {
            d.plugin_ref = r;
        } else {
            g.problem(
                "plugin_ref",
                format!(
                    "driver.plugin_ref {r:?} is not a plugin reference like kuryr/kuryr:latest"
                ),
            );
        }
    }
    if let Some(s) = g.opt_str("socket") {
        if SOCKET_PATHS.contains(&s.as_str()) {
            d.socket = PathBuf::from(s);
        } else {
            g.problem(
                "socket",
                format!(
                    "driver.socket {s:?}: Docker finds a socket plugin named kuryr only at {} or {}",
                    SOCKET_PATHS[0], SOCKET_PATHS[1]
                ),
            );
        }
    }
    if let Some(uri) = g.opt_str("tcp_uri") {
        let loopback = split_url(&uri).filter(|u| {
            u.scheme == "http"
                && u.port.is_some()
                && u.path.trim_end_matches('/').is_empty()
                && u.host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
        });
        if loopback.is_some() {
            d.tcp_uri = uri.trim_end_matches('/').to_string();
        } else {
            g.problem(
                "tcp_uri",
                format!(
                    "driver.tcp_uri {uri:?} must be http://127.0.0.1:PORT or http://[::1]:PORT: \
                     the plugin API has no authentication, so it must stay on loopback"
                ),
            );
        }
    }
    d.debug = g.bool("debug", false);
    d
}

fn read_mappings(g: &mut Fields<'_>, key: &str, value_is_iface: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(obj) = g.object(key) else {
        return out;
    };
    for (physnet, v) in obj {
        let field = g.path(key);
        match v {
            Value::String(s)
                if !physnet.is_empty()
                    && !physnet.contains([':', ',', ' '])
                    && (!value_is_iface || valid_ifname(s))
                    && !s.is_empty()
                    && !s.contains([':', ',', ' ']) =>
            {
                out.insert(physnet.clone(), s.clone());
            }
            _ => g.problem(
                key,
                format!(
                    "{field}: {physnet:?} → {v} is not a physical network name mapped to {}",
                    if value_is_iface {
                        "an interface name"
                    } else {
                        "a bridge name"
                    }
                ),
            ),
        }
    }
    out
}

fn read_agent(f: &mut Fields<'_>) -> AgentParams {
    let mut a = AgentParams::default();
    let Some(obj) = f.object("agent") else {
        return a;
    };
    let mut g = Fields::new(obj, "agent", f.out);
    g.reject_unknown(
        &[
            "local_ip",
            "datapath_type",
            "tunnel_types",
            "l2_population",
            "bridge_mappings",
            "physical_interface_mappings",
            "transport_url",
            "install",
            "packages",
            "services",
        ],
        "agent",
    );
    a.local_ip = match g.get("local_ip") {
        None => None,
        Some(Value::String(s)) => match s.parse::<IpAddr>() {
            Ok(ip) => Some(LocalIpSource::Address(ip)),
            Err(_) => {
                g.problem(
                    "local_ip",
                    format!("agent.local_ip {s:?} is not an IP address"),
                );
                None
            }
        },
        Some(Value::Object(src)) => read_local_ip_source(&mut g, src),
        Some(other) => {
            let t = type_name(other);
            g.problem(
                "local_ip",
                format!(
                    "agent.local_ip must be an address, {{\"interface\": NAME}} or {{\"route_to\": ADDRESS}}, not {t}"
                ),
            );
            None
        }
    };
    match g.opt_str("datapath_type").as_deref() {
        None | Some("system") => {}
        Some("netdev") => a.datapath_type = DatapathType::Netdev,
        Some(other) => g.problem(
            "datapath_type",
            format!("agent.datapath_type {other:?} is not one of system, netdev"),
        ),
    }
    if let Some(types) = g.str_list("tunnel_types") {
        for t in &types {
            if !["vxlan", "gre", "geneve"].contains(&t.as_str()) {
                g.problem(
                    "tunnel_types",
                    format!("agent.tunnel_types: {t:?} is not one of vxlan, gre, geneve"),
                );
            }
        }
        a.tunnel_types = types;
    }
    a.l2_population = g.bool("l2_population", false);
    a.bridge_mappings = read_mappings(&mut g, "bridge_mappings", false);
    a.physical_interface_mappings = read_mappings(&mut g, "physical_interface_mappings", true);
    a.transport_url = match g.get("transport_url") {
        None => None,
        Some(Value::String(s)) if s.contains("://") => match secret_problem(s) {
            None => Some(SecretString::from(s.clone())),
            Some(why) => {
                g.problem("transport_url", format!("agent.transport_url {why}"));
                None
            }
        },
        Some(_) => {
            // Never echo it: it holds the message-bus password.
            g.problem(
                "transport_url",
                "agent.transport_url must be a string like rabbit://USER:PASSWORD@HOST:5672/",
            );
            None
        }
    };
    match g.opt_str("install").as_deref() {
        None | Some("none") => {}
        Some("apt") => a.install = Installer::Apt,
        Some("dnf") => a.install = Installer::Dnf,
        Some(other) => g.problem(
            "install",
            format!("agent.install {other:?} is not one of none, apt, dnf"),
        ),
    }
    if let Some(p) = g.str_list("packages") {
        let bad: Vec<&String> = p
            .iter()
            .filter(|n| {
                n.starts_with('-')
                    || !n
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-._:".contains(c))
            })
            .collect();
        if bad.is_empty() {
            a.packages = Some(p);
        } else {
            g.problem(
                "packages",
                format!("agent.packages: {bad:?} are not package names"),
            );
        }
    }
    if let Some(services) = g.object("services") {
        let mut s = Fields::new(services, "agent.services", g.out);
        s.reject_unknown(&["openvswitch", "agent"], "agent.services");
        let unit = |s: &mut Fields<'_>, key: &str| -> Option<String> {
            let v = s.opt_str(key)?;
            let ok = !v.starts_with('-')
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.@:".contains(c));
            if ok {
                Some(v)
            } else {
                s.problem(
                    key,
                    format!("agent.services.{key} {v:?} is not a unit name"),
                );
                None
            }
        };
        a.openvswitch_service = unit(&mut s, "openvswitch");
        a.agent_service = unit(&mut s, "agent");
    }
    a
}

fn read_local_ip_source(g: &mut Fields<'_>, src: &Map<String, Value>) -> Option<LocalIpSource> {
    let mut h = Fields::new(src, "agent.local_ip", g.out);
    h.reject_unknown(&["interface", "route_to"], "agent.local_ip");
    match (h.opt_str("interface"), h.opt_str("route_to")) {
        (Some(i), None) if valid_ifname(&i) => Some(LocalIpSource::Interface(i)),
        (Some(i), None) => {
            h.problem(
                "interface",
                format!("agent.local_ip.interface {i:?} is not an interface name"),
            );
            None
        }
        (None, Some(r)) => match r.parse() {
            Ok(ip) => Some(LocalIpSource::RouteTo(ip)),
            Err(_) => {
                h.problem(
                    "route_to",
                    format!("agent.local_ip.route_to {r:?} is not an IP address"),
                );
                None
            }
        },
        _ => {
            g.problem(
                "local_ip",
                "agent.local_ip needs exactly one of interface or route_to",
            );
            None
        }
    }
}

/// The parts of an `scheme://host[:port][/path]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlParts {
    pub scheme: String,
    /// Without IPv6 brackets.
    pub host: String,
    pub port: Option<u16>,
    pub path: String,
}

/// Split a URL; `None` unless it has a scheme and a host.
pub(crate) fn split_url(s: &str) -> Option<UrlParts> {
    let (scheme, rest) = s.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+')
    {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0)?),
    };
    Some(UrlParts {
        scheme: scheme.to_ascii_lowercase(),
        host: host.to_string(),
        port,
        path: path.to_string(),
    })
}

impl NodeCredential {
    /// The secret, for writing into `kuryr.conf` only.
    pub(crate) fn expose(&self) -> &str {
        self.secret.expose_secret()
    }

    /// A short description without the secret: `application credential
    /// 8f0c…` or `password of user kuryr`.
    pub fn describe(&self) -> String {
        let get = |k: &str| {
            self.options
                .iter()
                .find(|(o, _)| *o == k)
                .map(|(_, v)| v.as_str())
        };
        match self.kind {
            CredentialKind::ApplicationCredential => format!(
                "application credential {}",
                get("application_credential_id")
                    .or(get("application_credential_name"))
                    .unwrap_or("?")
            ),
            CredentialKind::Password => format!(
                "password of user {}",
                get("username").or(get("user_id")).unwrap_or("?")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn minimal() -> Value {
        json!({
            "keystone": {"auth_url": "https://keystone.example.com:5000/v3"},
            "credential": {
                "type": "application_credential",
                "application_credential_id": "8f0c1d",
                "application_credential_secret": "s3cr3t-VALUE"
            }
        })
    }

    fn parse(v: &Value) -> Result<ClusterParams, Vec<String>> {
        ClusterParams::from_json(&v.to_string())
            .map_err(|ps| ps.into_iter().map(|p| p.message).collect())
    }

    fn with(mut base: Value, pointer: &str, value: Value) -> Value {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let target = if parent.is_empty() {
            &mut base
        } else {
            base.pointer_mut(parent).unwrap()
        };
        target[key] = value;
        base
    }

    #[test]
    fn defaults() {
        let p = parse(&minimal()).expect("valid");
        assert_eq!(p.network_drivers, NetworkDriverPolicy::default());
        assert_eq!(p.keystone.interface, Interface::Public);
        assert_eq!(p.keystone.ca, None);
        assert_eq!(p.credential.kind, CredentialKind::ApplicationCredential);
        assert_eq!(
            p.credential.options,
            vec![("application_credential_id", "8f0c1d".to_string())]
        );
        assert_eq!(p.binding_host, HostNaming::Hostname);
        assert_eq!(p.driver, DriverParams::default());
        assert_eq!(p.agent.tunnel_types, vec!["vxlan"]);
        assert_eq!(
            p.agent.packages_for(AgentType::Ovs),
            vec!["openvswitch-switch", "neutron-openvswitch-agent"]
        );
        assert_eq!(p.agent.openvswitch_unit(), "openvswitch-switch");
        assert_eq!(
            p.agent.agent_unit(AgentType::LinuxBridge),
            "neutron-linuxbridge-agent"
        );
        assert_eq!(p.credential.describe(), "application credential 8f0c1d");
    }

    #[test]
    fn secrets_never_show() {
        let p = parse(&with(
            minimal(),
            "/agent",
            json!({"transport_url": "rabbit://neutron:bus-PASSWORD@10.0.0.1:5672/"}),
        ))
        .expect("valid");
        let debug = format!("{p:?}");
        assert!(!debug.contains("s3cr3t-VALUE"), "{debug}");
        assert!(!debug.contains("bus-PASSWORD"), "{debug}");
        // Nor in any error message.
        for bad in [
            json!("line\nbreak s3cr3t-VALUE"),
            json!(" s3cr3t-VALUE"),
            json!("x\\$s3cr3t-VALUE"),
        ] {
            let errs = parse(&with(
                minimal(),
                "/credential/application_credential_secret",
                bad,
            ))
            .unwrap_err();
            assert_eq!(errs.len(), 1);
            assert!(!errs[0].contains("s3cr3t-VALUE"), "{errs:?}");
        }
        let errs = parse(&with(
            minimal(),
            "/agent",
            json!({"transport_url": "bus-PASSWORD"}),
        ))
        .unwrap_err();
        assert!(!errs[0].contains("bus-PASSWORD"), "{errs:?}");
    }

    #[test]
    fn password_credential() {
        let v = with(
            minimal(),
            "/credential",
            json!({
                "type": "password", "username": "kuryr", "user_domain_name": "Default",
                "password": "pw", "project_name": "service", "project_domain_name": "Default"
            }),
        );
        let p = parse(&v).expect("valid");
        assert_eq!(p.credential.kind, CredentialKind::Password);
        assert_eq!(
            p.credential
                .options
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>(),
            vec![
                "username",
                "user_domain_name",
                "project_name",
                "project_domain_name"
            ]
        );
        assert_eq!(p.credential.describe(), "password of user kuryr");
    }

    #[test]
    fn credential_errors() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"type": "password", "username": "kuryr", "password": "pw"}),
                vec![
                    "a password credential needs user_id, or username with user_domain_name or user_domain_id \
                     (a Keystone v3 user name is only unique within its domain)",
                    "a password credential needs project_id, or project_name with project_domain_name or \
                     project_domain_id: kuryr needs a token scoped to the project that owns the networks",
                ],
            ),
            (
                json!({"type": "application_credential", "application_credential_id": "x",
                       "application_credential_secret": "s", "project_name": "service"}),
                vec![
                    "credential.project_name does not apply to credential type application_credential: an \
                     application credential is bound to the project it was created in",
                ],
            ),
            (
                json!({"type": "application_credential", "application_credential_id": "x",
                       "application_credential_secret": "s", "password": "p"}),
                vec![
                    "credential.password does not apply to credential type application_credential",
                ],
            ),
            (
                json!({"type": "application_credential", "application_credential_secret": "s"}),
                vec![
                    "credential.application_credential_id is missing (or give application_credential_name with its owner)",
                ],
            ),
            (
                json!({"type": "application_credential", "application_credential_name": "kuryr",
                       "application_credential_secret": "s"}),
                vec![
                    "credential.application_credential_name needs the owner: user_id, or username with \
                     user_domain_name or user_domain_id",
                ],
            ),
            (
                json!({"type": "application_credential", "application_credential_id": "x"}),
                vec!["credential.application_credential_secret is missing"],
            ),
            (
                json!({"type": "token", "token": "x"}),
                vec![
                    "credential.type \"token\" is not supported: use application_credential (preferred) or password",
                ],
            ),
            (
                json!({"application_credential_id": "x"}),
                vec![
                    "credential.type is missing: use application_credential (preferred) or password",
                ],
            ),
        ];
        for (cred, expected) in cases {
            let errs = parse(&with(minimal(), "/credential", cred.clone())).unwrap_err();
            assert_eq!(errs, expected, "{cred}");
        }
        let mut v = minimal();
        v.as_object_mut().unwrap().remove("credential");
        v.as_object_mut().unwrap().remove("keystone");
        assert_eq!(
            parse(&v).unwrap_err(),
            vec![
                "keystone is missing: the nodes need keystone.auth_url",
                "credential is missing: the nodes need a Keystone application credential (preferred) or a \
                 password account to call Neutron",
            ]
        );
    }

    #[test]
    fn keystone_and_driver_and_agent_errors() {
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "/keystone/auth_url",
                json!("keystone.example.com:5000"),
                "keystone.auth_url \"keystone.example.com:5000\" is not an http:// or https:// URL",
            ),
            (
                "/keystone/auth_url",
                json!("https://k/v2.0"),
                "keystone.auth_url points at Keystone v2.0, which is gone; use the /v3 endpoint",
            ),
            (
                "/keystone/interface",
                json!("private"),
                "keystone.interface \"private\" is not one of public, internal, admin",
            ),
            (
                "/keystone/ca_file",
                json!("certs/ca.pem"),
                "keystone.ca_file \"certs/ca.pem\" must be an absolute path on the nodes",
            ),
            (
                "/keystone/ca_pem",
                json!("not a certificate"),
                "keystone.ca_pem must hold PEM certificates (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
            ),
            (
                "/binding_host",
                json!("node.example.com"),
                "binding_host \"node.example.com\" is not \"hostname\" or a pattern with {hostname} or {short_hostname} \
                 (e.g. \"{short_hostname}.swarm.example.com\"): every node needs its own binding host, without spaces",
            ),
            (
                "/driver",
                json!({"plugin": "v1"}),
                "driver.plugin \"v1\" is not supported: socket (the driver serves /run/docker/plugins/kuryr.sock), \
                 tcp (kuryr-libnetwork's kuryr.spec on loopback) or managed (a v2 Docker plugin, for swarm services)",
            ),
            (
                "/driver",
                json!({"socket": "/run/kuryr.sock"}),
                "driver.socket \"/run/kuryr.sock\": Docker finds a socket plugin named kuryr only at \
                 /run/docker/plugins/kuryr.sock or /run/docker/plugins/kuryr/kuryr.sock",
            ),
            (
                "/driver",
                json!({"tcp_uri": "http://0.0.0.0:23750"}),
                "driver.tcp_uri \"http://0.0.0.0:23750\" must be http://127.0.0.1:PORT or http://[::1]:PORT: \
                 the plugin API has no authentication, so it must stay on loopback",
            ),
            (
                "/driver",
                json!({"binary": "kuryr"}),
                "driver.binary \"kuryr\" must be an absolute path",
            ),
            (
                "/agent",
                json!({"local_ip": "10.0.0.300"}),
                "agent.local_ip \"10.0.0.300\" is not an IP address",
            ),
            (
                "/agent",
                json!({"local_ip": {"interface": "eth0", "route_to": "10.0.0.1"}}),
                "agent.local_ip needs exactly one of interface or route_to",
            ),
            (
                "/agent",
                json!({"datapath_type": "dpdk"}),
                "agent.datapath_type \"dpdk\" is not one of system, netdev",
            ),
            (
                "/agent",
                json!({"tunnel_types": ["vxlan", "stt"]}),
                "agent.tunnel_types: \"stt\" is not one of vxlan, gre, geneve",
            ),
            (
                "/agent",
                json!({"install": "yum"}),
                "agent.install \"yum\" is not one of none, apt, dnf",
            ),
            (
                "/agent",
                json!({"packages": ["openvswitch-switch", "-o evil"]}),
                "agent.packages: [\"-o evil\"] are not package names",
            ),
            (
                "/agent",
                json!({"services": {"agent": "x; rm"}}),
                "agent.services.agent \"x; rm\" is not a unit name",
            ),
            (
                "/agent",
                json!({"bridge_mappings": {"physnet1": "br ex"}}),
                "agent.bridge_mappings: \"physnet1\" → \"br ex\" is not a physical network name mapped to a bridge name",
            ),
            (
                "/cluster_template",
                json!({"swarm_allowed_network_drivers": []}),
                "cluster_template.swarm_allowed_network_drivers must not be empty: use [\"all\"] to allow every supported driver",
            ),
            (
                "/colour",
                json!("blue"),
                "Unknown attribute for cluster parameters: colour",
            ),
        ];
        for (pointer, value, expected) in cases {
            let v = with(minimal(), pointer, value.clone());
            assert_eq!(parse(&v).unwrap_err(), vec![expected], "{pointer} {value}");
        }
    }

    #[test]
    fn full_params() {
        let v = json!({
            "cluster_template": {"swarm_allowed_network_drivers": ["kuryr"], "swarm_default_network_driver": "kuryr"},
            "keystone": {"auth_url": "https://k:5000/v3", "region_name": "R2", "interface": "internal",
                         "ca_pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
            "credential": {"type": "application_credential", "application_credential_name": "kuryr-nodes",
                           "username": "kuryr", "user_domain_name": "Default",
                           "application_credential_secret": "s"},
            "binding_host": "{short_hostname}.swarm.example.com",
            "driver": {"binary": "/opt/kuryr/bin/kuryr", "plugin": "tcp", "tcp_uri": "http://127.0.0.1:23750/", "debug": true},
            "agent": {"local_ip": {"route_to": "10.0.0.1"}, "datapath_type": "netdev", "tunnel_types": [],
                      "l2_population": true, "bridge_mappings": {"physnet1": "br-ex"},
                      "install": "dnf", "services": {"openvswitch": "openvswitch.service"}}
        });
        let p = parse(&v).expect("valid");
        assert_eq!(p.network_drivers.default, "kuryr");
        assert_eq!(p.keystone.interface, Interface::Internal);
        assert_eq!(
            p.keystone.ca,
            Some(CaBundle::Pem(
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into()
            ))
        );
        assert_eq!(
            p.binding_host.apply("node-1.cloud.local"),
            "node-1.swarm.example.com"
        );
        assert_eq!(
            HostNaming::Pattern("{hostname}-k".into()).apply("a.b"),
            "a.b-k"
        );
        assert_eq!(p.driver.plugin, PluginMode::Tcp);
        assert_eq!(p.driver.tcp_uri, "http://127.0.0.1:23750");
        assert!(p.driver.debug);
        assert_eq!(
            p.agent.local_ip,
            Some(LocalIpSource::RouteTo("10.0.0.1".parse().unwrap()))
        );
        assert!(p.agent.tunnel_types.is_empty());
        assert_eq!(
            p.agent.packages_for(AgentType::Ovs),
            vec!["openvswitch", "openstack-neutron-openvswitch"]
        );
        assert_eq!(p.agent.openvswitch_unit(), "openvswitch.service");
        assert_eq!(
            p.credential.describe(),
            "application credential kuryr-nodes"
        );
    }

    #[test]
    fn urls() {
        let u = split_url("http://[::1]:23750/x").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", Some(23750), "/x")
        );
        let u = split_url("https://user:pw@keystone:5000").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("keystone", Some(5000)));
        for bad in [
            "keystone:5000",
            "http://",
            "http://h:0",
            "http://h:x",
            "://h",
            "http://[::1",
        ] {
            assert_eq!(split_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn policy_survives_other_errors() {
        let v =
            json!({"cluster_template": {"swarm_default_network_driver": "kuryr"}, "keystone": 1});
        assert_eq!(policy_only(&v.to_string()).default, "kuryr");
        assert_eq!(policy_only("nonsense"), NetworkDriverPolicy::default());
    }
}
