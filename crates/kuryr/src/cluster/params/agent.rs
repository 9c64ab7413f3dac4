//! `agent`: the Neutron L2 agent of agent mode (Open vSwitch or Linux
//! bridge): its tunnel endpoint, datapath, mappings, message bus, and how
//! node setup installs and names its services.

use std::collections::BTreeMap;
use std::net::IpAddr;

use secrecy::SecretString;
use serde_json::{Map, Value};

use super::secret_problem;
use crate::cluster::json::{Fields, type_name};
use crate::cluster::labels::{AgentType, valid_ifname};

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

/// The Open vSwitch bridge that carries the tunnel endpoint address: the
/// node's NIC as its port and the NIC's addresses (and routes) on its
/// internal port. The userspace (`netdev`) datapath sends and receives
/// tunnel packets only through such a bridge (Open vSwitch's "userspace
/// tunneling" guide calls it `br-phy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysicalBridge {
    pub bridge: String,
    /// The NIC that becomes its port.
    pub interface: String,
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
    /// Open vSwitch: the bridge of the tunnel endpoint (userspace datapath).
    pub physical_bridge: Option<PhysicalBridge>,
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
            physical_bridge: None,
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

/// Read `agent`; what is missing or wrong keeps its default.
pub(super) fn read(f: &mut Fields<'_>) -> AgentParams {
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
            "physical_bridge",
            "physical_interface_mappings",
            "transport_url",
            "install",
            "packages",
            "services",
        ],
        "agent",
    );
    a.local_ip = read_local_ip(&mut g);
    if let Some(datapath_type) = read_datapath_type(&mut g) {
        a.datapath_type = datapath_type;
    }
    if let Some(types) = read_tunnel_types(&mut g) {
        a.tunnel_types = types;
    }
    a.l2_population = g.bool("l2_population", false);
    a.bridge_mappings = read_mappings(&mut g, "bridge_mappings", false);
    a.physical_bridge = read_physical_bridge(&mut g);
    a.physical_interface_mappings = read_mappings(&mut g, "physical_interface_mappings", true);
    a.transport_url = read_transport_url(&mut g);
    if let Some(install) = read_installer(&mut g) {
        a.install = install;
    }
    a.packages = read_packages(&mut g);
    (a.openvswitch_service, a.agent_service) = read_services(&mut g);
    a
}

/// `local_ip`: an address, `{"interface": NAME}` or `{"route_to": ADDRESS}`.
fn read_local_ip(g: &mut Fields<'_>) -> Option<LocalIpSource> {
    match g.get("local_ip")? {
        Value::String(s) => match s.parse::<IpAddr>() {
            Ok(ip) => Some(LocalIpSource::Address(ip)),
            Err(_) => {
                g.problem(
                    "local_ip",
                    format!("agent.local_ip {s:?} is not an IP address"),
                );
                None
            }
        },
        Value::Object(src) => read_local_ip_source(g, src),
        other => {
            let t = type_name(other);
            g.problem(
                "local_ip",
                format!(
                    "agent.local_ip must be an address, {{\"interface\": NAME}} or {{\"route_to\": ADDRESS}}, not {t}"
                ),
            );
            None
        }
    }
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

fn read_datapath_type(g: &mut Fields<'_>) -> Option<DatapathType> {
    match g.opt_str("datapath_type").as_deref() {
        None => None,
        Some("system") => Some(DatapathType::System),
        Some("netdev") => Some(DatapathType::Netdev),
        Some(other) => {
            g.problem(
                "datapath_type",
                format!("agent.datapath_type {other:?} is not one of system, netdev"),
            );
            None
        }
    }
}

/// `tunnel_types`: kept as given, each unknown type reported.
fn read_tunnel_types(g: &mut Fields<'_>) -> Option<Vec<String>> {
    let types = g.str_list("tunnel_types")?;
    for t in &types {
        if !["vxlan", "gre", "geneve"].contains(&t.as_str()) {
            g.problem(
                "tunnel_types",
                format!("agent.tunnel_types: {t:?} is not one of vxlan, gre, geneve"),
            );
        }
    }
    Some(types)
}

/// A physical network → bridge (or interface) map.
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

/// `physical_bridge`: `{"bridge": NAME, "interface": NIC}`.
fn read_physical_bridge(g: &mut Fields<'_>) -> Option<PhysicalBridge> {
    let obj = g.object("physical_bridge")?;
    let mut h = Fields::new(obj, "agent.physical_bridge", g.out);
    h.reject_unknown(&["bridge", "interface"], "agent.physical_bridge");
    let name = |h: &mut Fields<'_>, key: &str| {
        let v = h.req_str(key)?;
        if valid_ifname(&v) {
            return Some(v);
        }
        h.problem(
            key,
            format!("agent.physical_bridge.{key} {v:?} is not an interface name"),
        );
        None
    };
    let bridge = name(&mut h, "bridge");
    let interface = name(&mut h, "interface");
    let (bridge, interface) = (bridge?, interface?);
    if bridge == interface {
        h.problem(
            "interface",
            format!("agent.physical_bridge: the bridge and its interface are both {bridge:?}"),
        );
        return None;
    }
    Some(PhysicalBridge { bridge, interface })
}

/// `transport_url`: a secret, never echoed (it holds the message-bus
/// password).
fn read_transport_url(g: &mut Fields<'_>) -> Option<SecretString> {
    match g.get("transport_url")? {
        Value::String(s) if s.contains("://") => match secret_problem(s) {
            None => Some(SecretString::from(s.clone())),
            Some(why) => {
                g.problem("transport_url", format!("agent.transport_url {why}"));
                None
            }
        },
        _ => {
            g.problem(
                "transport_url",
                "agent.transport_url must be a string like rabbit://USER:PASSWORD@HOST:5672/",
            );
            None
        }
    }
}

fn read_installer(g: &mut Fields<'_>) -> Option<Installer> {
    match g.opt_str("install").as_deref() {
        None => None,
        Some("none") => Some(Installer::None),
        Some("apt") => Some(Installer::Apt),
        Some("dnf") => Some(Installer::Dnf),
        Some(other) => {
            g.problem(
                "install",
                format!("agent.install {other:?} is not one of none, apt, dnf"),
            );
            None
        }
    }
}

/// `packages`: names a package manager takes as names, never as options.
fn read_packages(g: &mut Fields<'_>) -> Option<Vec<String>> {
    let p = g.str_list("packages")?;
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
        return Some(p);
    }
    g.problem(
        "packages",
        format!("agent.packages: {bad:?} are not package names"),
    );
    None
}

/// `services`: the Open vSwitch and agent unit names, when not the
/// distribution's.
fn read_services(g: &mut Fields<'_>) -> (Option<String>, Option<String>) {
    let Some(services) = g.object("services") else {
        return (None, None);
    };
    let mut s = Fields::new(services, "agent.services", g.out);
    s.reject_unknown(&["openvswitch", "agent"], "agent.services");
    let openvswitch = read_unit(&mut s, "openvswitch");
    let agent = read_unit(&mut s, "agent");
    (openvswitch, agent)
}

fn read_unit(s: &mut Fields<'_>, key: &str) -> Option<String> {
    let v = s.opt_str(key)?;
    let ok = !v.starts_with('-')
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@:".contains(c));
    if ok {
        return Some(v);
    }
    s.problem(
        key,
        format!("agent.services.{key} {v:?} is not a unit name"),
    );
    None
}
