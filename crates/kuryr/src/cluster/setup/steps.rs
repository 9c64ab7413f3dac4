//! The service steps of the plan: packages (before the files), then
//! `systemctl daemon-reload` when a unit file changed, and the services
//! (Open vSwitch's steps are in `ovs.rs`, init `process` in `process.rs`,
//! the managed plugin's step in `plugin.rs`). On the live root each step
//! first looks at the node and runs only what is missing; off it, every
//! command is reported as skipped.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

use super::Outcome;
use super::runner::{Cmd, Runner};
use super::say;
use crate::cluster::ClusterError;
use crate::cluster::params::Installer;
use crate::cluster::render::{Plan, Step};
use crate::paths;

impl Runner<'_> {
    /// The package installations: they run before the files are written,
    /// so a package does not find our files as foreign conffiles, and it
    /// creates the `neutron` group the agent files use. False when a
    /// command failed.
    pub(super) fn install_packages(
        &mut self,
        plan: &Plan,
        out: &mut dyn Write,
        outcome: &mut Outcome,
    ) -> Result<bool, ClusterError> {
        for step in plan.steps.iter().filter(|s| is_install(s)) {
            if !self.step(step, &BTreeSet::new(), out, outcome)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Every other step, after the files (`changed`: the paths created or
    /// updated). False when a command failed.
    pub(super) fn services(
        &mut self,
        plan: &Plan,
        changed: &BTreeSet<PathBuf>,
        out: &mut dyn Write,
        outcome: &mut Outcome,
    ) -> Result<bool, ClusterError> {
        if changed.iter().any(|p| p.starts_with(paths::SYSTEMD_DIR)) {
            let reload = Cmd::new(&["systemctl", "daemon-reload"]);
            if !self.execute(&[reload], out, outcome)? {
                return Ok(false);
            }
        }
        for step in plan.steps.iter().filter(|s| !is_install(s)) {
            if !self.step(step, changed, out, outcome)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn step(
        &mut self,
        step: &Step,
        changed: &BTreeSet<PathBuf>,
        out: &mut dyn Write,
        outcome: &mut Outcome,
    ) -> Result<bool, ClusterError> {
        match step {
            Step::Install {
                installer,
                packages,
            } => self.install(*installer, packages, out, outcome),
            Step::Service {
                unit,
                restart_when_changed,
            } => {
                let config_changed = restart_when_changed.iter().any(|p| changed.contains(p));
                self.service(unit, config_changed, out, outcome)
            }
            Step::ManagedPlugin {
                reference,
                bundle,
                etc_kuryr,
            } => self.managed_plugin(reference, bundle, etc_kuryr, changed, out, outcome),
            Step::Process {
                name,
                argv,
                runtime_dirs,
                restart_when_changed,
            } => {
                let config_changed = restart_when_changed.iter().any(|p| changed.contains(p));
                self.process(name, argv, runtime_dirs, config_changed, out, outcome)
            }
            Step::OvsDaemons => self.ovs_daemons(out, outcome),
            Step::OvsBridge {
                bridge,
                datapath_type,
            } => self.ovs_bridge(bridge, *datapath_type, out, outcome),
            Step::PhysicalBridge {
                bridge,
                interface,
                datapath_type,
            } => self.physical_bridge(bridge, interface, *datapath_type, out, outcome),
        }
    }

    /// Install the packages that are missing (all of them, off the live
    /// root).
    fn install(
        &mut self,
        installer: Installer,
        packages: &[String],
        out: &mut dyn Write,
        outcome: &mut Outcome,
    ) -> Result<bool, ClusterError> {
        let missing: Vec<&str> = if self.live {
            packages
                .iter()
                .filter(|p| !self.package_installed(installer, p))
                .map(String::as_str)
                .collect()
        } else {
            packages.iter().map(String::as_str).collect()
        };
        if missing.is_empty() {
            say(
                out,
                format!("unchanged: packages {} installed", packages.join(" ")),
            )?;
            return Ok(true);
        }
        self.execute(&[install_command(installer, &missing)], out, outcome)
    }

    fn package_installed(&mut self, installer: Installer, package: &str) -> bool {
        match installer {
            Installer::Dnf => self.succeeds(&Cmd::new(&["rpm", "-q", package])),
            _ => self
                .output(&Cmd::new(&[
                    "dpkg-query",
                    "-W",
                    "-f=${db:Status-Status}",
                    package,
                ]))
                .is_some_and(|s| s == "installed"),
        }
    }

    /// `systemctl enable --now` a unit that is not enabled and running;
    /// `systemctl restart` it when its configuration changed and it was
    /// running.
    fn service(
        &mut self,
        unit: &str,
        config_changed: bool,
        out: &mut dyn Write,
        outcome: &mut Outcome,
    ) -> Result<bool, ClusterError> {
        let (enabled, active) = if self.live {
            (
                self.succeeds(&Cmd::new(&["systemctl", "is-enabled", "--quiet", unit])),
                self.succeeds(&Cmd::new(&["systemctl", "is-active", "--quiet", unit])),
            )
        } else {
            (false, false)
        };
        let mut cmds = Vec::new();
        if !enabled || !active {
            cmds.push(Cmd::new(&["systemctl", "enable", "--now", unit]));
        }
        if config_changed && (active || !self.live) {
            cmds.push(Cmd::new(&["systemctl", "restart", unit]));
        }
        if cmds.is_empty() {
            say(out, format!("unchanged: {unit} is enabled and running"))?;
            return Ok(true);
        }
        self.execute(&cmds, out, outcome)
    }
}

fn is_install(step: &Step) -> bool {
    matches!(step, Step::Install { .. })
}

/// `dnf install -y ...`, or a non-interactive `apt-get install` that keeps
/// configuration files already there.
fn install_command(installer: Installer, missing: &[&str]) -> Cmd {
    if installer == Installer::Dnf {
        let mut a = vec!["dnf", "install", "-y"];
        a.extend(missing);
        return Cmd::new(&a);
    }
    let mut a = vec![
        "apt-get",
        "install",
        "-y",
        "--no-install-recommends",
        "-o",
        "Dpkg::Options::=--force-confold",
    ];
    a.extend(missing);
    let mut c = Cmd::new(&a);
    c.env.push(("DEBIAN_FRONTEND", "noninteractive"));
    c
}
