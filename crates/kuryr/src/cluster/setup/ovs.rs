//! Open vSwitch on an agent-mode node: its daemons when node setup starts
//! them itself (init `process`: `ovsdb-server` on the database, created or
//! converted first, then `ovs-vswitchd`, each in its own daemon mode with
//! its pid file in the run directory), the integration bridge, and the
//! physical bridge of the tunnel endpoint (the NIC its port, the NIC's
//! addresses and routes moved onto the bridge's internal port, where the
//! userspace datapath's tunnels look for them). Each looks first and runs
//! only what is missing.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use super::Outcome;
use super::runner::{Cmd, Runner};
use super::say;
use crate::cluster::ClusterError;
use crate::cluster::params::DatapathType;
use crate::paths::{OVS_DB, OVS_DB_SOCKET, OVS_LOGDIR, OVS_RUNDIR, OVS_SCHEMA};

/// `ovs-vsctl --timeout=10 ARGS...`.
fn vsctl(args: &[&str]) -> Cmd {
    let mut a = vec!["ovs-vsctl", "--timeout=10"];
    a.extend(args);
    Cmd::new(&a)
}

/// `ovs-appctl --timeout=5 -t DAEMON version`: the daemon answers.
fn appctl_version(daemon: &str) -> Cmd {
    Cmd::new(&["ovs-appctl", "--timeout=5", "-t", daemon, "version"])
}

impl Runner<'_> {
    /// Init `process`: start `ovsdb-server` and `ovs-vswitchd` unless they
    /// answer.
    pub(super) fn ovs_daemons(
        &mut self,
        out: &mut dyn Write,
        outcome: &mut Outcome,
    ) -> Result<bool, ClusterError> {
        let mut cmds = Vec::new();
        if self.live && self.succeeds(&appctl_version("ovsdb-server")) {
            say(out, "unchanged: ovsdb-server is running".into())?;
        } else {
            let db_dir = Path::new(OVS_DB)
                .parent()
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_default();
            cmds.push(Cmd::new(&["mkdir", "-p", OVS_RUNDIR, OVS_LOGDIR, &db_dir]));
            cmds.extend(self.database_commands());
            let remote = format!("--remote=punix:{OVS_DB_SOCKET}");
            let log = format!("--log-file={OVS_LOGDIR}/ovsdb-server.log");
            cmds.push(Cmd::new(&[
                "ovsdb-server",
                OVS_DB,
                &remote,
                "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
                "--pidfile",
                "--detach",
                &log,
                "-vconsole:off",
            ]));
            cmds.push(vsctl(&["--no-wait", "init"]));
            if !self.execute(&cmds, out, outcome)? {
                return Ok(false);
            }
        }
        if self.live && self.succeeds(&appctl_version("ovs-vswitchd")) {
            say(out, "unchanged: ovs-vswitchd is running".into())?;
            return Ok(true);
        }
        let db = format!("unix:{OVS_DB_SOCKET}");
        let log = format!("--log-file={OVS_LOGDIR}/ovs-vswitchd.log");
        let vswitchd = Cmd::new(&[
            "ovs-vswitchd",
            &db,
            "--pidfile",
            "--detach",
            &log,
            "-vconsole:off",
        ]);
        self.execute(&[vswitchd], out, outcome)
    }

    /// Create the database, or convert it to the installed schema.
    fn database_commands(&mut self) -> Vec<Cmd> {
        let exists = self.live && self.succeeds(&Cmd::new(&["ovsdb-tool", "db-version", OVS_DB]));
        if !exists {
            return vec![Cmd::new(&["ovsdb-tool", "create", OVS_DB, OVS_SCHEMA])];
        }
        let needs = self.output(&Cmd::new(&[
            "ovsdb-tool",
            "needs-conversion",
            OVS_DB,
            OVS_SCHEMA,
        ]));
        if needs.as_deref() == Some("yes") {
            return vec![Cmd::new(&["ovsdb-tool", "convert", OVS_DB, OVS_SCHEMA])];
        }
        vec![]
    }

    /// Create the Open vSwitch bridge unless it exists with the datapath.
    pub(super) fn ovs_bridge(
        &mut self,
        bridge: &str,
        datapath_type: DatapathType,
        out: &mut dyn Write,
        outcome: &mut Outcome,
    ) -> Result<bool, ClusterError> {
        if self.live && self.bridge_has_datapath(bridge, datapath_type) {
            say(
                out,
                format!(
                    "unchanged: Open vSwitch bridge {bridge} exists (datapath {})",
                    datapath_type.as_str()
                ),
            )?;
            return Ok(true);
        }
        self.execute(&[add_bridge(bridge, datapath_type)], out, outcome)
    }

    /// The bridge exists, with this datapath (none set means `system`).
    fn bridge_has_datapath(&mut self, bridge: &str, datapath_type: DatapathType) -> bool {
        if !self.succeeds(&vsctl(&["br-exists", bridge])) {
            return false;
        }
        let current = self
            .output(&vsctl(&["get", "Bridge", bridge, "datapath_type"]))
            .unwrap_or_default();
        let current = current.trim_matches('"');
        current == datapath_type.as_str()
            || (current.is_empty() && datapath_type == DatapathType::System)
    }

    /// The physical bridge: the bridge, `interface` as its port, and the
    /// interface's addresses and (non-kernel) routes on the bridge.
    pub(super) fn physical_bridge(
        &mut self,
        bridge: &str,
        interface: &str,
        datapath_type: DatapathType,
        out: &mut dyn Write,
        outcome: &mut Outcome,
    ) -> Result<bool, ClusterError> {
        let mut cmds = Vec::new();
        if !(self.live && self.bridge_has_datapath(bridge, datapath_type)) {
            cmds.push(add_bridge(bridge, datapath_type));
        }
        let port_of = if self.live {
            self.output(&vsctl(&["port-to-br", interface]))
        } else {
            None
        };
        if port_of.as_deref() != Some(bridge) {
            cmds.push(vsctl(&["--may-exist", "add-port", bridge, interface]));
        }
        // The bridge's internal port exists once the bridge does.
        if !self.execute(&cmds, out, outcome)? {
            return Ok(false);
        }
        if !self.live {
            say(
                out,
                format!(
                    "skipped (not the live root): move the addresses and routes of {interface} to {bridge}, \
                     ip link set {bridge} up"
                ),
            )?;
            return Ok(true);
        }
        let mut moves = Vec::new();
        let held = self.addresses(bridge);
        for addr in self.addresses(interface) {
            if !held.contains(&addr) {
                moves.push(Cmd::new(&["ip", "addr", "add", &addr, "dev", bridge]));
            }
            moves.push(Cmd::new(&["ip", "addr", "del", &addr, "dev", interface]));
        }
        for (family, route) in self.routes(interface) {
            let mut a = vec![
                "ip".to_string(),
                family.into(),
                "route".into(),
                "replace".into(),
            ];
            a.extend(route);
            a.extend(["dev".into(), bridge.to_string()]);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            moves.push(Cmd::new(&a));
        }
        if !self.link_up(bridge) {
            moves.push(Cmd::new(&["ip", "link", "set", bridge, "up"]));
        }
        if moves.is_empty() && cmds.is_empty() {
            let held = held.join(", ");
            say(
                out,
                format!(
                    "unchanged: Open vSwitch bridge {bridge} has port {interface} and the addresses ({held})"
                ),
            )?;
            return Ok(true);
        }
        self.execute(&moves, out, outcome)
    }

    /// The global addresses of `dev`, `address/prefix`.
    fn addresses(&mut self, dev: &str) -> Vec<String> {
        let Some(text) = self.output(&Cmd::new(&["ip", "-j", "addr", "show", "dev", dev])) else {
            return vec![];
        };
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|link| link["addr_info"].as_array())
            .flatten()
            .filter(|a| a["scope"] == "global")
            .filter_map(|a| Some(format!("{}/{}", a["local"].as_str()?, a["prefixlen"])))
            .collect()
    }

    /// The routes through `dev` that the kernel did not make for an
    /// address (a default route, static routes): the family and the `ip
    /// route` arguments without the device.
    fn routes(&mut self, dev: &str) -> Vec<(&'static str, Vec<String>)> {
        let mut routes = Vec::new();
        for family in ["-4", "-6"] {
            let Some(text) = self.output(&Cmd::new(&[
                "ip", "-j", family, "route", "show", "dev", dev,
            ])) else {
                continue;
            };
            let v: Value = serde_json::from_str(&text).unwrap_or_default();
            for r in v.as_array().into_iter().flatten() {
                if matches!(r["protocol"].as_str(), Some("kernel" | "ra") | None) {
                    continue;
                }
                let Some(dst) = r["dst"].as_str() else {
                    continue;
                };
                let mut args = vec![dst.to_string()];
                if let Some(gw) = r["gateway"].as_str() {
                    args.extend(["via".into(), gw.to_string()]);
                }
                if let Some(m) = r["metric"].as_u64() {
                    args.extend(["metric".into(), m.to_string()]);
                }
                routes.push((family, args));
            }
        }
        routes
    }

    /// `dev` is administratively up.
    fn link_up(&mut self, dev: &str) -> bool {
        let Some(text) = self.output(&Cmd::new(&["ip", "-j", "link", "show", "dev", dev])) else {
            return false;
        };
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        v[0]["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "UP"))
    }
}

/// `ovs-vsctl --may-exist add-br B -- set Bridge B datapath_type=D`.
fn add_bridge(bridge: &str, datapath_type: DatapathType) -> Cmd {
    let dp = format!("datapath_type={}", datapath_type.as_str());
    vsctl(&[
        "--may-exist",
        "add-br",
        bridge,
        "--",
        "set",
        "Bridge",
        bridge,
        &dp,
    ])
}
