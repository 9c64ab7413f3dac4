//! The `kuryr_*` labels of a cluster template, validated up front.
//!
//! Magnum never validated network-driver labels at its API: a bad flannel
//! label surfaced as `CREATE_FAILED` from Heat, long after the API had said
//! 202. Here every `kuryr_*` label is checked when the template is read,
//! with one message per bad label in Magnum's label wording
//! (`property "labels/X" with value "Y" is not supported, ...`). Labels that
//! do not start with `kuryr_` belong to other parts of the cluster: Magnum's
//! own label rules (`swarm_strategy`, `mesos_slave_*`) are applied with the
//! template's (template/rules.rs), and every other label is passed through
//! untouched.

use std::collections::BTreeMap;
use std::fmt;

use super::Problem;
use super::json::closest;
use super::template::Coe;
use crate::config::CapabilityScope;

/// How containers reach Neutron on a node (`kuryr_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KuryrMode {
    /// The node runs a Neutron L2 agent (Open vSwitch or Linux bridge) and
    /// kuryr plugs a veth per container into it (port driver `veth`).
    #[default]
    Agent,
    /// Nodes are Nova VMs: containers get macvlan interfaces on the VM's NIC
    /// and their addresses are added to the VM port's allowed address pairs
    /// (port driver `nested`, binding `macvlan`).
    Nested,
    /// Nodes are Nova VMs with a trunk port: one VLAN subport per container
    /// (port driver `vlan`, binding `vlan`).
    Vlan,
}

impl KuryrMode {
    pub fn as_str(self) -> &'static str {
        match self {
            KuryrMode::Agent => "agent",
            KuryrMode::Nested => "nested",
            KuryrMode::Vlan => "vlan",
        }
    }
}

impl fmt::Display for KuryrMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which Neutron L2 agent runs on the node in agent mode
/// (`kuryr_agent_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AgentType {
    #[default]
    Ovs,
    LinuxBridge,
}

impl AgentType {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentType::Ovs => "ovs",
            AgentType::LinuxBridge => "linuxbridge",
        }
    }

    /// Neutron's `agent_type` string for this agent (`GET /v2.0/agents`).
    pub fn neutron_agent_type(self) -> &'static str {
        match self {
            AgentType::Ovs => "Open vSwitch agent",
            AgentType::LinuxBridge => "Linux bridge agent",
        }
    }
}

impl fmt::Display for AgentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kuryr settings a template's labels ask for, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KuryrLabels {
    pub mode: KuryrMode,
    /// Only meaningful in agent mode.
    pub agent_type: AgentType,
    /// Name of the Neutron subnet pool Docker networks get their subnets
    /// from when `--subnet` is not given (`[neutron] default_subnetpool_v4`).
    pub subnetpool: Option<String>,
    /// libnetwork scope (`[DEFAULT] capability_scope`).
    pub scope: CapabilityScope,
    /// Validated; not applied by this version (see [`LABELS`]).
    pub mtu: Option<u32>,
    /// The VM NIC for nested and vlan mode (`[binding] link_iface`).
    pub link_iface: Option<String>,
    /// Wait up to this many seconds for a port to become ACTIVE and fail
    /// the container otherwise; 0 does not wait.
    pub vif_plugging_timeout: Option<u32>,
    /// Ports kept made ahead per subnet (`[DEFAULT] ports_pool_size`;
    /// local scope only).
    pub ports_pool_size: Option<u32>,
}

/// Documentation of one label, shown by the docs and checked by tests.
#[derive(Debug, Clone, Copy)]
pub struct LabelSpec {
    pub name: &'static str,
    pub values: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

pub const MODE: &str = "kuryr_mode";
pub const AGENT_TYPE: &str = "kuryr_agent_type";
pub const SUBNETPOOL: &str = "kuryr_subnetpool";
pub const SCOPE: &str = "kuryr_scope";
pub const MTU: &str = "kuryr_mtu";
pub const LINK_IFACE: &str = "kuryr_link_iface";
pub const VIF_PLUGGING_TIMEOUT: &str = "kuryr_vif_plugging_timeout";
pub const PORTS_POOL_SIZE: &str = "kuryr_ports_pool_size";

/// Every kuryr label.
pub const LABELS: &[LabelSpec] = &[
    LabelSpec {
        name: MODE,
        values: "agent, nested, vlan",
        default: "agent",
        meaning: "how containers reach Neutron: a local L2 agent and a veth per container (agent), \
                  macvlan on the VM's NIC with allowed address pairs (nested), or a VLAN subport \
                  of the VM's trunk per container (vlan)",
    },
    LabelSpec {
        name: AGENT_TYPE,
        values: "ovs, linuxbridge",
        default: "ovs",
        meaning: "the Neutron L2 agent node setup configures and starts (agent mode only)",
    },
    LabelSpec {
        name: SUBNETPOOL,
        values: "a Neutron subnet pool name",
        default: "kuryr",
        meaning: "the pool Docker networks created without --subnet take their subnet from \
                  ([neutron] default_subnetpool_v4)",
    },
    LabelSpec {
        name: SCOPE,
        values: "local, global",
        default: "local",
        meaning: "the libnetwork scope the driver reports ([DEFAULT] capability_scope); global \
                  needs coe swarm-mode, since Docker 23 and later keep global networks only in a swarm",
    },
    LabelSpec {
        name: MTU,
        values: "an integer from 68 to 9000",
        default: "the Neutron network's MTU",
        meaning: "validated only: this version does not apply it yet (containers get the MTU of \
                  their Neutron network)",
    },
    LabelSpec {
        name: LINK_IFACE,
        values: "an interface name (1 to 15 characters)",
        default: "found from the VM port's MAC address",
        meaning: "the VM NIC that container interfaces hang off ([binding] link_iface; nested and \
                  vlan mode only)",
    },
    LabelSpec {
        name: VIF_PLUGGING_TIMEOUT,
        values: "whole seconds from 0 to 3600",
        default: "0",
        meaning: "when above 0, wait up to that long for a container's Neutron port to become \
                  ACTIVE and fail the container otherwise ([neutron] vif_plugging_is_fatal, \
                  vif_plugging_timeout)",
    },
    LabelSpec {
        name: PORTS_POOL_SIZE,
        values: "whole numbers from 0 to 1000",
        default: "0",
        meaning: "ports kept made ahead per subnet, so containers started together on a network \
                  do not wait for each other's port creates ([DEFAULT] ports_pool_size; \
                  kuryr_scope local only)",
    },
];

const MTU_RANGE: std::ops::RangeInclusive<u32> = 68..=9000;
const MAX_VIF_TIMEOUT: u32 = 3600;
const MAX_PORTS_POOL_SIZE: u32 = crate::config::MAX_PORTS_POOL_SIZE as u32;

fn not_supported(name: &str, value: &str, expected: &str) -> Problem {
    Problem::new(
        format!("labels/{name}"),
        format!(
            "property \"labels/{name}\" with value \"{value}\" is not supported, supported values are: {expected}"
        ),
    )
}

fn choice<T: Copy>(
    labels: &BTreeMap<String, String>,
    name: &str,
    options: &[(&str, T)],
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let value = labels.get(name)?;
    match options.iter().find(|(s, _)| *s == value) {
        Some((_, v)) => Some(*v),
        None => {
            let expected = options.iter().map(|(s, _)| *s).collect::<Vec<_>>();
            problems.push(not_supported(name, value, &expected.join(", ")));
            None
        }
    }
}

fn integer(
    labels: &BTreeMap<String, String>,
    name: &str,
    range: std::ops::RangeInclusive<u32>,
    expected: &str,
    problems: &mut Vec<Problem>,
) -> Option<u32> {
    let value = labels.get(name)?;
    match value.trim().parse::<u32>() {
        Ok(n) if range.contains(&n) => Some(n),
        _ => {
            problems.push(not_supported(name, value, expected));
            None
        }
    }
}

/// A Linux interface name: 1 to 15 bytes, no `/`, `:` or whitespace, not
/// `.` or `..`.
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s.contains(|c: char| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
}

/// Validate the `kuryr_*` labels; `coe` is `None` when the template's COE
/// itself is invalid (the checks that depend on it are then skipped).
pub fn parse(labels: &BTreeMap<String, String>, coe: Option<Coe>) -> (KuryrLabels, Vec<Problem>) {
    let mut problems = Vec::new();
    unknown_names(labels, &mut problems);
    let (mode, mode_valid) = mode(labels, &mut problems);
    let agent_type = agent_type(labels, mode, mode_valid, &mut problems);
    let subnetpool = subnetpool(labels, &mut problems);
    let scope = scope(labels, coe, &mut problems);
    let mtu = integer(
        labels,
        MTU,
        MTU_RANGE,
        "an integer from 68 to 9000",
        &mut problems,
    );
    let link_iface = link_iface(labels, mode, mode_valid, &mut problems);
    let vif_plugging_timeout = integer(
        labels,
        VIF_PLUGGING_TIMEOUT,
        0..=MAX_VIF_TIMEOUT,
        "whole seconds from 0 to 3600",
        &mut problems,
    );
    let ports_pool_size = ports_pool_size(labels, scope, &mut problems);
    let kuryr = KuryrLabels {
        mode,
        agent_type,
        subnetpool,
        scope,
        mtu,
        link_iface,
        vif_plugging_timeout,
        ports_pool_size,
    };
    (kuryr, problems)
}

/// A label that looks like a kuryr label (any case) but is not one.
fn unknown_names(labels: &BTreeMap<String, String>, problems: &mut Vec<Problem>) {
    let known: Vec<&str> = LABELS.iter().map(|l| l.name).collect();
    for name in labels.keys() {
        let lower = name.to_ascii_lowercase();
        if !lower.starts_with("kuryr_") || known.contains(&name.as_str()) {
            continue;
        }
        let hint = closest(name, &known)
            .map(|k| format!("did you mean {k}? "))
            .unwrap_or_default();
        let case = if name.starts_with("kuryr_") {
            ""
        } else {
            "label names are case-sensitive; "
        };
        problems.push(Problem::new(
            format!("labels/{name}"),
            format!(
                "label \"{name}\" is not a kuryr label: {case}{hint}kuryr labels are {}",
                known.join(", ")
            ),
        ));
    }
}

/// `kuryr_mode`, and whether it is valid (absent counts as valid: the
/// mode-dependent checks then apply to the default).
fn mode(labels: &BTreeMap<String, String>, problems: &mut Vec<Problem>) -> (KuryrMode, bool) {
    let mode = choice(
        labels,
        MODE,
        &[
            ("agent", KuryrMode::Agent),
            ("nested", KuryrMode::Nested),
            ("vlan", KuryrMode::Vlan),
        ],
        problems,
    );
    let valid = mode.is_some() || !labels.contains_key(MODE);
    (mode.unwrap_or_default(), valid)
}

fn agent_type(
    labels: &BTreeMap<String, String>,
    mode: KuryrMode,
    mode_valid: bool,
    problems: &mut Vec<Problem>,
) -> AgentType {
    let agent_type = choice(
        labels,
        AGENT_TYPE,
        &[
            ("ovs", AgentType::Ovs),
            ("linuxbridge", AgentType::LinuxBridge),
        ],
        problems,
    );
    if agent_type.is_some() && mode_valid && mode != KuryrMode::Agent {
        problems.push(Problem::new(
            format!("labels/{AGENT_TYPE}"),
            format!(
                "property \"labels/{AGENT_TYPE}\" applies to kuryr_mode agent only, but kuryr_mode is {mode}: \
                 remove it (nested and vlan nodes run no L2 agent)"
            ),
        ));
    }
    agent_type.unwrap_or_default()
}

fn subnetpool(labels: &BTreeMap<String, String>, problems: &mut Vec<Problem>) -> Option<String> {
    let v = labels.get(SUBNETPOOL)?;
    let ok = !v.trim().is_empty()
        && v.trim() == v
        && v.chars().count() <= 255
        && !v.chars().any(char::is_control);
    if ok {
        return Some(v.clone());
    }
    problems.push(not_supported(
        SUBNETPOOL,
        v,
        "the name of a Neutron subnet pool (1 to 255 characters, no control characters, \
         no leading or trailing spaces)",
    ));
    None
}

fn scope(
    labels: &BTreeMap<String, String>,
    coe: Option<Coe>,
    problems: &mut Vec<Problem>,
) -> CapabilityScope {
    let scope = choice(
        labels,
        SCOPE,
        &[
            ("local", CapabilityScope::Local),
            ("global", CapabilityScope::Global),
        ],
        problems,
    );
    if scope == Some(CapabilityScope::Global)
        && let Some(coe) = coe
        && coe != Coe::SwarmMode
    {
        problems.push(Problem::new(
            format!("labels/{SCOPE}"),
            format!(
                "property \"labels/{SCOPE}\" with value \"global\" requires coe swarm-mode, but coe is {coe}: \
                 Docker 23 and later keep global-scope networks only in swarm mode (classic Swarm needed \
                 the removed --cluster-store); use kuryr_scope local"
            ),
        ));
    }
    scope.unwrap_or_default()
}

/// `kuryr_ports_pool_size`: ready ports serve local scope only (in global
/// scope the swarm manager hands addresses out for other nodes).
fn ports_pool_size(
    labels: &BTreeMap<String, String>,
    scope: CapabilityScope,
    problems: &mut Vec<Problem>,
) -> Option<u32> {
    let size = integer(
        labels,
        PORTS_POOL_SIZE,
        0..=MAX_PORTS_POOL_SIZE,
        "whole numbers from 0 to 1000",
        problems,
    );
    if size.is_some_and(|n| n > 0) && scope == CapabilityScope::Global {
        problems.push(Problem::new(
            format!("labels/{PORTS_POOL_SIZE}"),
            format!(
                "property \"labels/{PORTS_POOL_SIZE}\" applies to kuryr_scope local only, but kuryr_scope \
                 is global: the swarm manager hands addresses out for tasks on other nodes; remove it"
            ),
        ));
    }
    size
}

fn link_iface(
    labels: &BTreeMap<String, String>,
    mode: KuryrMode,
    mode_valid: bool,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    let v = labels.get(LINK_IFACE)?;
    let iface = valid_ifname(v).then(|| v.clone());
    if iface.is_none() {
        problems.push(not_supported(
            LINK_IFACE,
            v,
            "a network interface name (1 to 15 characters, no '/', ':' or whitespace)",
        ));
    }
    if mode_valid && mode == KuryrMode::Agent {
        problems.push(Problem::new(
            format!("labels/{LINK_IFACE}"),
            format!(
                "property \"labels/{LINK_IFACE}\" applies to kuryr_mode nested or vlan only, but kuryr_mode is agent: \
                 remove it, or set kuryr_mode"
            ),
        ));
    }
    iface
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn messages(pairs: &[(&str, &str)], coe: Option<Coe>) -> Vec<String> {
        parse(&labels(pairs), coe)
            .1
            .into_iter()
            .map(|p| p.message)
            .collect()
    }

    #[test]
    fn defaults() {
        let (k, problems) = parse(&labels(&[("other", "x")]), Some(Coe::Swarm));
        assert!(problems.is_empty());
        assert_eq!(k, KuryrLabels::default());
        assert_eq!(k.mode, KuryrMode::Agent);
        assert_eq!(k.agent_type, AgentType::Ovs);
        assert_eq!(k.scope, CapabilityScope::Local);
    }

    #[test]
    fn a_ports_pool_is_for_local_scope_only() {
        let (k, problems) = parse(
            &labels(&[("kuryr_ports_pool_size", "20")]),
            Some(Coe::Swarm),
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(k.ports_pool_size, Some(20));
        let global = [("kuryr_scope", "global"), ("kuryr_ports_pool_size", "20")];
        let (_, problems) = parse(&labels(&global), Some(Coe::SwarmMode));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .to_string()
                .contains("applies to kuryr_scope local only")
        );
        let (_, problems) = parse(&labels(&[("kuryr_ports_pool_size", "1001")]), None);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn every_label_valid() {
        let (k, problems) = parse(
            &labels(&[
                ("kuryr_mode", "nested"),
                ("kuryr_subnetpool", "pool A"),
                ("kuryr_scope", "global"),
                ("kuryr_mtu", "1450"),
                ("kuryr_link_iface", "ens3"),
                ("kuryr_vif_plugging_timeout", "60"),
                ("kuryr_ports_pool_size", "0"),
            ]),
            Some(Coe::SwarmMode),
        );
        assert_eq!(problems, vec![]);
        assert_eq!(
            k,
            KuryrLabels {
                mode: KuryrMode::Nested,
                agent_type: AgentType::Ovs,
                subnetpool: Some("pool A".into()),
                scope: CapabilityScope::Global,
                mtu: Some(1450),
                link_iface: Some("ens3".into()),
                vif_plugging_timeout: Some(60),
                ports_pool_size: Some(0),
            }
        );
        let (k, problems) = parse(
            &labels(&[("kuryr_mode", "agent"), ("kuryr_agent_type", "linuxbridge")]),
            Some(Coe::Swarm),
        );
        assert!(problems.is_empty());
        assert_eq!(k.agent_type, AgentType::LinuxBridge);
        let (k, _) = parse(&labels(&[("kuryr_mode", "vlan")]), None);
        assert_eq!(k.mode, KuryrMode::Vlan);
    }

    #[test]
    fn every_error_message() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<Coe>, &'a str);
        let cases: &[Case] = &[
            (
                &[("kuryr_mode", "Agent")],
                Some(Coe::Swarm),
                "property \"labels/kuryr_mode\" with value \"Agent\" is not supported, supported values are: agent, nested, vlan",
            ),
            (
                &[("kuryr_agent_type", "openvswitch")],
                Some(Coe::Swarm),
                "property \"labels/kuryr_agent_type\" with value \"openvswitch\" is not supported, supported values are: ovs, linuxbridge",
            ),
            (
                &[("kuryr_mode", "vlan"), ("kuryr_agent_type", "ovs")],
                Some(Coe::Swarm),
                "property \"labels/kuryr_agent_type\" applies to kuryr_mode agent only, but kuryr_mode is vlan: \
                 remove it (nested and vlan nodes run no L2 agent)",
            ),
            (
                &[("kuryr_subnetpool", " ")],
                Some(Coe::Swarm),
                "property \"labels/kuryr_subnetpool\" with value \" \" is not supported, supported values are: \
                 the name of a Neutron subnet pool (1 to 255 characters, no control characters, no leading or trailing spaces)",
            ),
            (
                &[("kuryr_scope", "swarm")],
                Some(Coe::SwarmMode),
                "property \"labels/kuryr_scope\" with value \"swarm\" is not supported, supported values are: local, global",
            ),
            (
                &[("kuryr_scope", "global")],
                Some(Coe::Swarm),
                "property \"labels/kuryr_scope\" with value \"global\" requires coe swarm-mode, but coe is swarm: \
                 Docker 23 and later keep global-scope networks only in swarm mode (classic Swarm needed the \
                 removed --cluster-store); use kuryr_scope local",
            ),
            (
                &[("kuryr_mtu", "67")],
                Some(Coe::Swarm),
                "property \"labels/kuryr_mtu\" with value \"67\" is not supported, supported values are: an integer from 68 to 9000",
            ),
            (
                &[("kuryr_mode", "nested"), ("kuryr_link_iface", "eth0:1")],
                Some(Coe::Swarm),
                "property \"labels/kuryr_link_iface\" with value \"eth0:1\" is not supported, supported values are: \
                 a network interface name (1 to 15 characters, no '/', ':' or whitespace)",
            ),
            (
                &[("kuryr_link_iface", "eth1")],
                Some(Coe::Swarm),
                "property \"labels/kuryr_link_iface\" applies to kuryr_mode nested or vlan only, but kuryr_mode is agent: \
                 remove it, or set kuryr_mode",
            ),
            (
                &[("kuryr_vif_plugging_timeout", "-1")],
                Some(Coe::Swarm),
                "property \"labels/kuryr_vif_plugging_timeout\" with value \"-1\" is not supported, supported values are: \
                 whole seconds from 0 to 3600",
            ),
            (
                &[("kuryr_mdoe", "agent")],
                Some(Coe::Swarm),
                "label \"kuryr_mdoe\" is not a kuryr label: did you mean kuryr_mode? kuryr labels are kuryr_mode, \
                 kuryr_agent_type, kuryr_subnetpool, kuryr_scope, kuryr_mtu, kuryr_link_iface, kuryr_vif_plugging_timeout, kuryr_ports_pool_size",
            ),
            (
                &[("Kuryr_Mode", "agent")],
                Some(Coe::Swarm),
                "label \"Kuryr_Mode\" is not a kuryr label: label names are case-sensitive; did you mean kuryr_mode? \
                 kuryr labels are kuryr_mode, kuryr_agent_type, kuryr_subnetpool, kuryr_scope, kuryr_mtu, \
                 kuryr_link_iface, kuryr_vif_plugging_timeout, kuryr_ports_pool_size",
            ),
        ];
        for (pairs, coe, expected) in cases {
            assert_eq!(
                messages(pairs, *coe),
                vec![expected.to_string()],
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn bounds() {
        for ok in ["68", "9000", "1500"] {
            assert!(messages(&[("kuryr_mtu", ok)], None).is_empty(), "{ok}");
        }
        for bad in ["9001", "0", "1500.0", "x", ""] {
            assert_eq!(messages(&[("kuryr_mtu", bad)], None).len(), 1, "{bad}");
        }
        for ok in ["0", "3600"] {
            assert!(messages(&[("kuryr_vif_plugging_timeout", ok)], None).is_empty());
        }
        assert_eq!(
            messages(&[("kuryr_vif_plugging_timeout", "3601")], None).len(),
            1
        );
        for bad in ["", "a/b", "a b", "sixteen-chars-xx", ".", ".."] {
            assert!(!valid_ifname(bad), "{bad}");
        }
        assert!(valid_ifname("enp0s31f6.100"));
    }

    #[test]
    fn all_problems_at_once() {
        let got = messages(
            &[
                ("kuryr_mode", "bad"),
                ("kuryr_scope", "bad"),
                ("kuryr_mtu", "bad"),
                ("kuryr_vif_plugging_timeout", "bad"),
                ("kuryr_x", "1"),
            ],
            Some(Coe::Swarm),
        );
        assert_eq!(got.len(), 5, "{got:#?}");
    }

    #[test]
    fn invalid_mode_does_not_cascade() {
        // With kuryr_mode itself wrong, the mode-dependent checks stay quiet.
        let got = messages(
            &[("kuryr_mode", "bad"), ("kuryr_link_iface", "eth1")],
            Some(Coe::Swarm),
        );
        assert_eq!(got.len(), 1, "{got:#?}");
    }

    /// Every label is documented in the user guide's label table.
    #[test]
    fn documented_in_the_user_guide() {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/user-guide.md"),
        )
        .expect("docs/user-guide.md");
        for l in LABELS {
            assert!(
                doc.contains(&format!("| `{}` |", l.name)),
                "docs/user-guide.md has no table row for {}",
                l.name
            );
        }
    }

    #[test]
    fn global_scope_needs_a_known_coe_to_be_refused() {
        assert!(messages(&[("kuryr_scope", "global")], None).is_empty());
    }
}
