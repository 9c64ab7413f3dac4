//! Pure rendering: a validated template, the cluster parameters, the node's
//! role and a few facts about the node in; every file the node needs (path
//! → mode, group, bytes) and the service steps out. Nothing here touches
//! the machine, so all of it is tested with exact expected files.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::Problem;
use super::labels::{AgentType, KuryrMode};
use super::params::{
    AgentParams, CaBundle, ClusterParams, CredentialKind, DatapathType, Installer, PluginMode,
};
use super::systemd;
use super::template::{ClusterTemplate, KURYR};
use crate::config::oslo::Writer;
use crate::config::{BindingDriverKind, CapabilityScope, PortDriverKind};
use crate::paths::{
    CA_PEM, DOCKER_DROPIN, ETC_KURYR, KURYR_CONF, KURYR_UNIT, KURYR_UNIT_NAME,
    LINUXBRIDGE_AGENT_INI, NEUTRON_CONF, NEUTRON_RUNTIME_DIRS, OVS_AGENT_INI, OVS_DB_SOCKET,
    PLUGIN_BUNDLE, PLUGIN_CONFIG, PLUGIN_ENTRYPOINT, PLUGIN_SOCKET, PLUGIN_SPEC,
};

/// The integration bridge: the binder always plugs into `br-int`.
pub const INTEGRATION_BRIDGE: &str = "br-int";

/// The managed plugin's `config.json`: a network and IPAM driver on host
/// networking with CAP_NET_ADMIN (dockerd adds its default container
/// capabilities, which the entrypoint's `--drop-capabilities` removes at
/// start: [`crate::capabilities`]), the node's kuryr configuration mounted
/// read-only from `etc_kuryr` (settable), in agent mode with Open vSwitch
/// the node's OVS database socket (and nothing else of Open vSwitch), and
/// no secret anywhere.
pub fn plugin_config_json(etc_kuryr: &str, ovsdb: bool) -> String {
    let mut mounts = vec![serde_json::json!({
        "name": "etc-kuryr",
        "description": "the node's kuryr configuration (kuryr.conf, written by kuryr node setup)",
        "source": etc_kuryr,
        "destination": ETC_KURYR,
        "type": "bind",
        "options": ["rbind", "ro"],
        "settable": ["source"]
    })];
    if ovsdb {
        mounts.push(serde_json::json!({
            "name": "ovsdb",
            "description": "the node's Open vSwitch database socket: the driver plugs ports into br-int \
                            over it (OVSDB JSON-RPC, no ovs-vsctl)",
            "source": OVS_DB_SOCKET,
            "destination": OVS_DB_SOCKET,
            "type": "bind",
            "options": ["bind"],
            "settable": ["source"]
        }));
    }
    let v = serde_json::json!({
        "description": "Kuryr: OpenStack Neutron network and IPAM driver for Docker (kuryr-rs)",
        "documentation": "https://docs.openstack.org/kuryr-libnetwork/",
        "entrypoint": [PLUGIN_ENTRYPOINT, "--config-file", KURYR_CONF, "server", "--drop-capabilities"],
        "workdir": "/",
        "interface": {
            "types": ["docker.networkdriver/1.0", "docker.ipamdriver/1.0"],
            "socket": "kuryr.sock"
        },
        "network": {"type": "host"},
        "linux": {"capabilities": ["CAP_NET_ADMIN"]},
        "mounts": mounts,
        "env": [],
        "args": {"name": "args", "description": "", "settable": null, "value": null}
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

/// The node's role in the swarm. Managers and workers get the same driver
/// configuration today (managers run tasks too); the role is recorded in
/// the generated files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Manager,
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who starts the node's services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// Unit files and `systemctl`.
    Systemd,
    /// Node setup starts the daemons itself and records them
    /// ([`crate::paths::PROCESS_RECORDS`]).
    Process,
}

impl Init {
    pub fn as_str(self) -> &'static str {
        match self {
            Init::Systemd => "systemd",
            Init::Process => "process",
        }
    }
}

/// What rendering needs to know about the node itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    /// The machine's host name (or the `--hostname` override).
    pub hostname: String,
    /// The tunnel endpoint address (agent mode with tunnels).
    pub local_ip: Option<IpAddr>,
    /// Who starts services on this node.
    pub init: Init,
}

/// One file as it must be on the node.
#[derive(Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// Absolute path on the node (under `--root` when applied).
    pub path: PathBuf,
    /// Permission bits.
    pub mode: u32,
    /// Owning group, when not root's (the Neutron agents read their files
    /// as group `neutron`). The owner is always root.
    pub group: Option<&'static str>,
    pub contents: Vec<u8>,
}

impl fmt::Debug for FileSpec {
    /// The contents may hold secrets: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSpec")
            .field("path", &self.path)
            .field("mode", &format_args!("{:04o}", self.mode))
            .field("group", &self.group)
            .field("bytes", &self.contents.len())
            .finish()
    }
}

/// A service step, run after the files are in place (installation runs
/// before them, so packages do not find our files as foreign conffiles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Install packages that are missing.
    Install {
        installer: Installer,
        packages: Vec<String>,
    },
    /// `systemctl enable --now UNIT`, and `systemctl restart UNIT` when one
    /// of `restart_when_changed` was created or updated.
    Service {
        unit: String,
        restart_when_changed: Vec<PathBuf>,
    },
    /// Init `process`: start `argv` in the background unless its record
    /// shows it running with this command line (its `runtime_dirs` made
    /// first), and restart it when one of `restart_when_changed` was
    /// created or updated.
    Process {
        name: String,
        argv: Vec<String>,
        runtime_dirs: Vec<PathBuf>,
        restart_when_changed: Vec<PathBuf>,
    },
    /// Init `process`: `ovsdb-server` (the database created or converted
    /// first) and `ovs-vswitchd`, each started in its own daemon mode (pid
    /// files in the Open vSwitch run directory) unless it answers.
    OvsDaemons,
    /// Create the Open vSwitch bridge if it is missing.
    OvsBridge {
        bridge: String,
        datapath_type: DatapathType,
    },
    /// The bridge of the tunnel endpoint: `interface` its port, and the
    /// interface's addresses and routes moved to the bridge's internal
    /// port.
    PhysicalBridge {
        bridge: String,
        interface: String,
        datapath_type: DatapathType,
    },
    /// (Re-)create and enable the managed plugin `reference` from the
    /// bundle directory when it is missing or the bundle changed.
    ManagedPlugin {
        reference: String,
        bundle: PathBuf,
        /// The node path of the kuryr configuration (`etc-kuryr.source`).
        etc_kuryr: PathBuf,
    },
}

/// Everything a node needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub role: Role,
    /// The node's `binding:host_id` (and the L2 agent's `host`).
    pub binding_host: String,
    /// Who starts the services.
    pub init: Init,
    pub files: BTreeMap<PathBuf, FileSpec>,
    /// Files that must not exist, with the reason.
    pub absent: Vec<(PathBuf, String)>,
    pub steps: Vec<Step>,
    /// Things worth saying that are not errors.
    pub notes: Vec<String>,
}

impl Plan {
    fn add(&mut self, path: &str, mode: u32, group: Option<&'static str>, contents: String) {
        let path = PathBuf::from(path);
        self.files.insert(
            path.clone(),
            FileSpec {
                path,
                mode,
                group,
                contents: contents.into_bytes(),
            },
        );
    }

    /// The text of a rendered file.
    pub fn text(&self, path: &str) -> Option<&str> {
        self.files
            .get(Path::new(path))
            .and_then(|f| std::str::from_utf8(&f.contents).ok())
    }
}

/// The port and binding drivers of a mode.
pub fn drivers_for(mode: KuryrMode) -> (PortDriverKind, BindingDriverKind) {
    match mode {
        KuryrMode::Agent => (PortDriverKind::Veth, BindingDriverKind::Veth),
        KuryrMode::Nested => (PortDriverKind::Nested, BindingDriverKind::Macvlan),
        KuryrMode::Vlan => (PortDriverKind::Vlan, BindingDriverKind::Vlan),
    }
}

/// Render everything. Fails only on inconsistencies between the template,
/// the parameters and the facts (each reported).
pub fn render(
    template: &ClusterTemplate,
    params: &ClusterParams,
    role: Role,
    facts: &NodeFacts,
) -> Result<Plan, Vec<Problem>> {
    let binding_host = params.binding_host.apply(&facts.hostname);
    let problems = inconsistencies(template, params, facts, &binding_host);
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut plan = Plan {
        role,
        binding_host,
        init: facts.init,
        files: BTreeMap::new(),
        absent: Vec::new(),
        steps: Vec::new(),
        notes: Vec::new(),
    };
    let header = header(template, role);
    add_kuryr_conf(&mut plan, template, params, &header)?;
    add_plugin_discovery(&mut plan, params);
    let after_units = if template.kuryr.mode == KuryrMode::Agent {
        add_agent(&mut plan, template, params, &header, facts)?
    } else {
        Vec::new()
    };
    let with_ovs =
        template.kuryr.mode == KuryrMode::Agent && template.kuryr.agent_type == AgentType::Ovs;
    match (params.driver.plugin, facts.init) {
        (PluginMode::Managed, init) => {
            add_managed_plugin(&mut plan, params, &header, init, with_ovs)
        }
        (_, Init::Systemd) => add_driver_service(&mut plan, params, &header, &after_units),
        (_, Init::Process) => add_driver_process(&mut plan, params),
    }
    Ok(finish_notes(plan, template, params))
}

/// What the template, the parameters and the facts disagree on.
fn inconsistencies(
    template: &ClusterTemplate,
    params: &ClusterParams,
    facts: &NodeFacts,
    binding_host: &str,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if !template.uses_kuryr() {
        let how = if template.network_driver_defaulted {
            " (the operator's default swarm_default_network_driver)"
        } else {
            ""
        };
        problems.push(Problem::new(
            "network_driver",
            format!(
                "the template's network_driver is {}{how}: kuryr node setup configures clusters whose \
                 network_driver is {KURYR}",
                template.network_driver
            ),
        ));
    }
    if template.kuryr.mode == KuryrMode::Agent {
        agent_inconsistencies(template.kuryr.agent_type, params, facts, &mut problems);
    }
    if template.kuryr.scope == CapabilityScope::Global
        && params.driver.plugin != PluginMode::Managed
    {
        problems.push(Problem::new(
            "driver.plugin",
            format!(
                "driver.plugin {} cannot serve kuryr_scope global: swarm-scope networks exist only in swarm \
                 mode, and swarm mode refuses legacy plugins (\"legacy plugin kuryr of type NetworkDriver is \
                 not supported in swarm mode\"); socket and tcp plugins are legacy plugins. Use driver.plugin \
                 managed",
                params.driver.plugin.as_str()
            ),
        ));
    }
    if binding_host.is_empty() || binding_host.len() > 255 {
        problems.push(Problem::new(
            "binding_host",
            format!("the binding host {binding_host:?} must have 1 to 255 characters"),
        ));
    }
    problems
}

/// Agent mode: the agent parameters fit the agent type, and tunnels have
/// an endpoint address.
fn agent_inconsistencies(
    agent_type: AgentType,
    params: &ClusterParams,
    facts: &NodeFacts,
    problems: &mut Vec<Problem>,
) {
    let agent = &params.agent;
    if agent_type == AgentType::LinuxBridge {
        if let Some(t) = agent.tunnel_types.iter().find(|t| *t != "vxlan") {
            problems.push(Problem::new(
                "agent.tunnel_types",
                format!("agent.tunnel_types: the linuxbridge agent supports vxlan only, not {t}"),
            ));
        }
        if !agent.bridge_mappings.is_empty() {
            problems.push(Problem::new(
                "agent.bridge_mappings",
                "agent.bridge_mappings is for the ovs agent; the linuxbridge agent uses \
                 agent.physical_interface_mappings",
            ));
        }
    }
    if agent_type == AgentType::LinuxBridge && agent.physical_bridge.is_some() {
        problems.push(Problem::new(
            "agent.physical_bridge",
            "agent.physical_bridge is an Open vSwitch bridge for the ovs agent's userspace datapath; the \
             linuxbridge agent uses the kernel's VXLAN, which sends from any interface",
        ));
    }
    if agent_type == AgentType::Ovs && !agent.physical_interface_mappings.is_empty() {
        problems.push(Problem::new(
            "agent.physical_interface_mappings",
            "agent.physical_interface_mappings is for the linuxbridge agent; the ovs agent uses \
             agent.bridge_mappings",
        ));
    }
    if !agent.tunnel_types.is_empty() && facts.local_ip.is_none() {
        problems.push(Problem::new(
            "agent.local_ip",
            "agent.local_ip is missing: the tunnel endpoint address of this node is needed",
        ));
    }
}

/// The comment every generated file starts with.
fn header(template: &ClusterTemplate, role: Role) -> String {
    let k = &template.kuryr;
    let mode_desc = if k.mode == KuryrMode::Agent {
        format!("kuryr_mode agent/{}", k.agent_type)
    } else {
        format!("kuryr_mode {}", k.mode)
    };
    format!(
        "Generated by `kuryr node setup` from cluster template \"{}\"\n\
         (coe {}, {mode_desc}) for a {role} node.\n\
         Re-run node setup to change it: edits here are overwritten.",
        template.display_name(),
        template.coe,
    )
}

/// `kuryr.conf`, and the CA bundle when the parameters carry it as PEM.
fn add_kuryr_conf(
    plan: &mut Plan,
    template: &ClusterTemplate,
    params: &ClusterParams,
    header: &str,
) -> Result<(), Vec<Problem>> {
    let cafile = match &params.keystone.ca {
        None => None,
        Some(CaBundle::Path(p)) => Some(p.to_string_lossy().into_owned()),
        Some(CaBundle::Pem(pem)) => {
            plan.add(CA_PEM, 0o644, None, pem.clone());
            Some(CA_PEM.to_string())
        }
    };
    let conf = kuryr_conf(
        template,
        params,
        header,
        &plan.binding_host,
        cafile.as_deref(),
    )?;
    plan.add(KURYR_CONF, 0o600, None, conf);
    Ok(())
}

/// How Docker finds the driver: its socket (no spec file), the spec file,
/// or the managed plugin's `config.json`.
fn add_plugin_discovery(plan: &mut Plan, params: &ClusterParams) {
    match params.driver.plugin {
        PluginMode::Socket => plan.absent.push((
            PathBuf::from(PLUGIN_SPEC),
            "socket mode: Docker finds the driver by its socket".into(),
        )),
        PluginMode::Managed => {
            plan.absent.push((
                PathBuf::from(PLUGIN_SPEC),
                "managed mode: Docker runs the plugin".into(),
            ));
        }
        PluginMode::Tcp => plan.add(
            PLUGIN_SPEC,
            0o644,
            None,
            format!("{}\n", params.driver.tcp_uri),
        ),
    }
}

/// Agent mode: the agent's configuration, its packages and services, the
/// integration bridge (and the physical bridge of the tunnel endpoint).
/// Returns the unit files the driver starts after (systemd).
fn add_agent(
    plan: &mut Plan,
    template: &ClusterTemplate,
    params: &ClusterParams,
    header: &str,
    facts: &NodeFacts,
) -> Result<Vec<String>, Vec<Problem>> {
    let agent_type = template.kuryr.agent_type;
    let agent = &params.agent;
    let ini = agent_ini(
        params,
        agent_type,
        header,
        &plan.binding_host,
        facts.local_ip,
    )?;
    let path = match agent_type {
        AgentType::Ovs => OVS_AGENT_INI,
        AgentType::LinuxBridge => LINUXBRIDGE_AGENT_INI,
    };
    plan.add(path, 0o640, Some("neutron"), ini);
    if agent.install != Installer::None {
        plan.steps.push(Step::Install {
            installer: agent.install,
            packages: agent.packages_for(agent_type),
        });
    }
    let mut after_units = Vec::new();
    if agent_type == AgentType::Ovs {
        let ovs = agent.openvswitch_unit();
        plan.steps.push(match facts.init {
            Init::Systemd => Step::Service {
                unit: ovs.clone(),
                restart_when_changed: vec![],
            },
            Init::Process => Step::OvsDaemons,
        });
        plan.steps.push(Step::OvsBridge {
            bridge: INTEGRATION_BRIDGE.into(),
            datapath_type: agent.datapath_type,
        });
        add_physical_bridge(plan, agent);
        after_units.push(unit_file_name(&ovs));
    }
    let agent_unit = agent.agent_unit(agent_type);
    plan.steps.push(match facts.init {
        Init::Systemd => Step::Service {
            unit: agent_unit.clone(),
            restart_when_changed: vec![PathBuf::from(path)],
        },
        Init::Process => Step::Process {
            name: agent_program(agent_type).into(),
            argv: vec![
                format!("/usr/bin/{}", agent_program(agent_type)),
                "--config-file".into(),
                NEUTRON_CONF.into(),
                "--config-file".into(),
                path.into(),
            ],
            runtime_dirs: NEUTRON_RUNTIME_DIRS.iter().map(PathBuf::from).collect(),
            restart_when_changed: vec![PathBuf::from(path)],
        },
    });
    after_units.push(unit_file_name(&agent_unit));
    if agent.transport_url.is_none() {
        plan.notes.push(format!(
            "agent.transport_url is not set: the {agent_type} agent must find Neutron's message bus in \
             {NEUTRON_CONF} ([DEFAULT] transport_url)"
        ));
    }
    Ok(after_units)
}

/// The agent's program, as its packages install it in `/usr/bin`.
fn agent_program(agent_type: AgentType) -> &'static str {
    match agent_type {
        AgentType::Ovs => "neutron-openvswitch-agent",
        AgentType::LinuxBridge => "neutron-linuxbridge-agent",
    }
}

/// The physical bridge step, or a note when the userspace datapath has
/// tunnels and no bridge to carry them.
fn add_physical_bridge(plan: &mut Plan, agent: &AgentParams) {
    match &agent.physical_bridge {
        Some(pb) => plan.steps.push(Step::PhysicalBridge {
            bridge: pb.bridge.clone(),
            interface: pb.interface.clone(),
            datapath_type: agent.datapath_type,
        }),
        None if agent.datapath_type == DatapathType::Netdev && !agent.tunnel_types.is_empty() => {
            plan.notes.push(
                "agent.datapath_type netdev with tunnels: the userspace datapath sends tunnel packets only \
                 from an address on an Open vSwitch bridge port; set agent.physical_bridge (node setup then \
                 adds the NIC to that bridge and moves its addresses there) or configure such a bridge \
                 yourself"
                    .into(),
            )
        }
        None => {}
    }
}

/// Managed mode: Docker runs the driver, so no unit; the plugin's bundle
/// and step instead. With Open vSwitch the plugin mounts its database
/// socket, and under systemd dockerd then starts after Open vSwitch.
fn add_managed_plugin(
    plan: &mut Plan,
    params: &ClusterParams,
    header: &str,
    init: Init,
    with_ovs: bool,
) {
    plan.add(
        PLUGIN_CONFIG,
        0o644,
        None,
        plugin_config_json(ETC_KURYR, with_ovs),
    );
    plan.absent.push((
        PathBuf::from(KURYR_UNIT),
        "managed mode: Docker runs the driver".into(),
    ));
    if with_ovs && init == Init::Systemd {
        let ovs = unit_file_name(&params.agent.openvswitch_unit());
        plan.add(
            DOCKER_DROPIN,
            0o644,
            None,
            systemd::docker_dropin_after_ovs(header, &ovs),
        );
    } else {
        plan.absent.push((
            PathBuf::from(DOCKER_DROPIN),
            "managed mode: Docker runs the driver".into(),
        ));
    }
    plan.steps.push(Step::ManagedPlugin {
        reference: params.driver.plugin_ref.clone(),
        bundle: PathBuf::from(PLUGIN_BUNDLE),
        etc_kuryr: PathBuf::from(ETC_KURYR),
    });
}

/// Init `process`, socket or TCP mode: node setup starts the driver itself;
/// no unit and no drop-in.
fn add_driver_process(plan: &mut Plan, params: &ClusterParams) {
    for path in [KURYR_UNIT, DOCKER_DROPIN] {
        plan.absent.push((
            PathBuf::from(path),
            "init process: node setup starts the driver itself".into(),
        ));
    }
    plan.steps.push(Step::Process {
        name: "kuryr".into(),
        argv: vec![
            params.driver.binary.to_string_lossy().into_owned(),
            "--config-file".into(),
            KURYR_CONF.into(),
            "server".into(),
        ],
        runtime_dirs: vec![],
        restart_when_changed: driver_inputs(plan),
    });
}

/// The files whose change restarts the driver.
fn driver_inputs(plan: &Plan) -> Vec<PathBuf> {
    let mut inputs = vec![PathBuf::from(KURYR_CONF)];
    if plan.files.contains_key(Path::new(CA_PEM)) {
        inputs.push(PathBuf::from(CA_PEM));
    }
    inputs
}

/// Where the driver's plugin socket goes; `None` in TCP mode.
fn socket_dir(params: &ClusterParams) -> Option<&Path> {
    match params.driver.plugin {
        PluginMode::Socket => params.driver.socket.parent(),
        PluginMode::Tcp | PluginMode::Managed => None,
    }
}

/// The driver's unit (after the agent's units), the drop-in that makes
/// dockerd wait for it, and its service step.
fn add_driver_service(
    plan: &mut Plan,
    params: &ClusterParams,
    header: &str,
    after_units: &[String],
) {
    plan.add(
        KURYR_UNIT,
        0o644,
        None,
        systemd::kuryr_service(
            header,
            &params.driver.binary,
            Path::new(KURYR_CONF),
            after_units,
            socket_dir(params),
        ),
    );
    plan.add(DOCKER_DROPIN, 0o644, None, systemd::docker_dropin(header));
    let mut kuryr_inputs = driver_inputs(plan);
    kuryr_inputs.insert(1, PathBuf::from(KURYR_UNIT));
    plan.steps.push(Step::Service {
        unit: KURYR_UNIT_NAME.into(),
        restart_when_changed: kuryr_inputs,
    });
}

fn finish_notes(mut plan: Plan, template: &ClusterTemplate, params: &ClusterParams) -> Plan {
    let k = &template.kuryr;
    if params.credential.kind == CredentialKind::Password {
        plan.notes.push(
            "the node credential is a password: anyone who reads kuryr.conf on any node can use the \
             account for everything it may do; an application credential restricted by access rules \
             limits that to the driver's Neutron calls (docs/security.md)"
                .into(),
        );
    }
    if params.keystone.auth_url.starts_with("http://") {
        plan.notes.push(
            "keystone.auth_url is plain http: the node credential and tokens cross the network unencrypted"
                .into(),
        );
    }
    if k.mtu.is_some() {
        plan.notes.push(
            "label kuryr_mtu is validated but not applied by this version: containers get the MTU of \
             their Neutron network"
                .into(),
        );
    }
    plan
}

/// `neutron-openvswitch-agent` → `neutron-openvswitch-agent.service`.
fn unit_file_name(unit: &str) -> String {
    if unit.contains('.') {
        unit.to_string()
    } else {
        format!("{unit}.service")
    }
}

/// `[neutron] timeout` node setup writes: the driver's default, spelled
/// out so an operator sees it.
const DEFAULT_TIMEOUT: std::time::Duration = kuryr_openstack::session::DEFAULT_TIMEOUT;

fn kuryr_conf(
    template: &ClusterTemplate,
    params: &ClusterParams,
    header: &str,
    binding_host: &str,
    cafile: Option<&str>,
) -> Result<String, Vec<Problem>> {
    let k = &template.kuryr;
    let (port, binding) = drivers_for(k.mode);
    let mut w = Writer::new();
    w.comment(header);
    let d = "DEFAULT";
    w.set(d, "capability_scope", k.scope.as_str());
    if let Some(size) = k.ports_pool_size.filter(|n| *n > 0) {
        w.set(d, "ports_pool_size", size.to_string());
    }
    match params.driver.plugin {
        PluginMode::Socket => {
            w.set(d, "plugin_socket", params.driver.socket.to_string_lossy());
        }
        PluginMode::Managed => {
            w.set(d, "plugin_socket", PLUGIN_SOCKET);
        }
        PluginMode::Tcp => {
            w.set(d, "plugin_socket", "");
            w.set(d, "kuryr_uri", params.driver.tcp_uri.clone());
        }
    }
    // The dockerd the driver serves, for the background collector of
    // networks Docker never recorded (a crash at the end of
    // CreateNetwork). Local scope only (a swarm network may be missing
    // from one node's dockerd), and not from inside the managed plugin,
    // which has no Docker socket.
    if params.driver.plugin != PluginMode::Managed && k.scope == CapabilityScope::Local {
        w.set(d, "docker_host", crate::paths::DOCKER_HOST);
    }
    w.set(d, "host", binding_host);
    if params.driver.debug {
        w.set(d, "debug", "true");
    }
    w.set(d, "default_port_driver", port.module_path());
    w.set_list(d, "enabled_port_drivers", [port.module_path()]);

    let n = "neutron";
    w.set(n, "auth_url", params.keystone.auth_url.clone());
    w.set(n, "auth_type", params.credential.kind.auth_type());
    for (key, value) in &params.credential.options {
        w.set(n, key, value.clone());
    }
    w.set(
        n,
        params.credential.kind.secret_option(),
        params.credential.expose(),
    );
    if let Some(region) = &params.keystone.region_name {
        w.set(n, "region_name", region.clone());
    }
    w.set(n, "endpoint_type", params.keystone.interface.as_str());
    // Every Neutron and Keystone request bounded (keystoneauth sets none).
    w.set(n, "timeout", DEFAULT_TIMEOUT.as_secs().to_string());
    if let Some(cafile) = cafile {
        w.set(n, "cafile", cafile);
    }
    if let Some(pool) = &k.subnetpool {
        w.set(n, "default_subnetpool_v4", pool.clone());
    }
    if !params.driver.enable_dhcp {
        w.set(n, "enable_dhcp", "false");
    }
    match k.vif_plugging_timeout {
        None => {}
        Some(0) => {
            w.set(n, "vif_plugging_is_fatal", "false");
        }
        Some(secs) => {
            w.set(n, "vif_plugging_is_fatal", "true");
            w.set(n, "vif_plugging_timeout", secs.to_string());
        }
    }

    let b = "binding";
    w.set(b, "default_driver", binding.module_path());
    w.set_list(b, "enabled_drivers", [binding.module_path()]);
    if let Some(iface) = &k.link_iface {
        w.set(b, "link_iface", iface.clone());
    }
    render_error(w.render(), "kuryr.conf")
}

fn agent_ini(
    params: &ClusterParams,
    agent_type: AgentType,
    header: &str,
    binding_host: &str,
    local_ip: Option<IpAddr>,
) -> Result<String, Vec<Problem>> {
    use secrecy::ExposeSecret;
    let a = &params.agent;
    let mut w = Writer::new();
    w.comment(header);
    w.set("DEFAULT", "host", binding_host);
    if let Some(url) = &a.transport_url {
        w.set("DEFAULT", "transport_url", url.expose_secret());
    }
    let mappings = |m: &BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
    };
    match agent_type {
        AgentType::Ovs => {
            // No `[ovs] ovsdb_connection = unix:<the database socket>`: the
            // agent would add it as a Manager with its own inactivity
            // probe, and ovsdb-server (with the distributions'
            // `--remote=db:...manager_options`) then replaces the socket
            // file, leaving the managed plugin's bind mount of it dead.
            // The default, tcp:127.0.0.1:6640, is a listener of its own.
            if !a.tunnel_types.is_empty() {
                w.set_list("agent", "tunnel_types", a.tunnel_types.clone());
            }
            w.set("agent", "l2_population", a.l2_population.to_string());
            w.set("ovs", "integration_bridge", INTEGRATION_BRIDGE);
            w.set("ovs", "datapath_type", a.datapath_type.as_str());
            if let Some(ip) = local_ip.filter(|_| !a.tunnel_types.is_empty()) {
                w.set("ovs", "local_ip", ip.to_string());
            }
            if !a.bridge_mappings.is_empty() {
                w.set_list("ovs", "bridge_mappings", mappings(&a.bridge_mappings));
            }
            w.set("securitygroup", "firewall_driver", "openvswitch");
            w.set("securitygroup", "enable_security_group", "true");
        }
        AgentType::LinuxBridge => {
            if !a.physical_interface_mappings.is_empty() {
                w.set_list(
                    "linux_bridge",
                    "physical_interface_mappings",
                    mappings(&a.physical_interface_mappings),
                );
            }
            let vxlan = a.tunnel_types.iter().any(|t| t == "vxlan");
            w.set("vxlan", "enable_vxlan", vxlan.to_string());
            if let Some(ip) = local_ip.filter(|_| vxlan) {
                w.set("vxlan", "local_ip", ip.to_string());
                w.set("vxlan", "l2_population", a.l2_population.to_string());
            }
            w.set("securitygroup", "firewall_driver", "iptables");
            w.set("securitygroup", "enable_security_group", "true");
        }
    }
    render_error(w.render(), "the agent configuration")
}

/// A rendering error names the option, never its value (it may be secret).
fn render_error(
    rendered: Result<String, crate::config::oslo::RenderError>,
    what: &str,
) -> Result<String, Vec<Problem>> {
    rendered.map_err(|e| {
        vec![Problem::new(
            format!("{}.{}", e.section, e.key),
            format!(
                "cannot write [{}] {} to {what}: {}",
                e.section, e.key, e.reason
            ),
        )]
    })
}

#[cfg(test)]
mod tests;
