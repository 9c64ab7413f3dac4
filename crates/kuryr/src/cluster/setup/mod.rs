//! `kuryr node setup`: make a node match its plan, idempotently.
//!
//! 1. Validate the template and the parameters (every problem at once).
//! 2. Gather the node facts and render the plan ([`super::render`]).
//! 3. Compare every file with what is under `--root`: contents, mode,
//!    owner; print one line per file (`create`, `update`, `unchanged`,
//!    `remove`) and, unless `--dry-run`, write what differs (atomically:
//!    a temporary file renamed over the old one). Unchanged files are not
//!    touched, so their mtime stays.
//! 4. Service steps (`systemctl enable --now ...`, `systemctl restart ...`
//!    for changed configuration, the OVS bridge, package installation) run
//!    only on the live root (`--root /`) and not in a dry run; with another
//!    root they are printed as `skipped (not the live root)`. Managed
//!    plugin mode adds the plugin bundle (config.json, a rootfs of one
//!    statically linked `kuryr` and the CA bundle) and its digest to the
//!    files, and `docker plugin rm/create/set/enable` when the plugin is
//!    absent or the bundle changed; `--docker-host URL` runs those against
//!    that dockerd even off the live root.
//!
//! `plan.rs` prepares the plan, `files.rs` compares and writes the files,
//! `steps.rs` runs the service steps and `plugin.rs` the managed plugin's
//! bundle and step; every command goes through `runner.rs`, which tests
//! replace with a recording fake.

#[cfg(test)]
mod agent_tests;
pub mod elf;
mod files;
mod ovs;
mod plan;
mod plugin;
mod process;
mod runner;
mod steps;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::PathBuf;

use super::ClusterError;
use super::render::{Plan, Role};
use runner::{CommandRunner, Runner, System};

pub use files::under_root;

/// What `kuryr node setup` was asked to do.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    pub template: PathBuf,
    pub params: PathBuf,
    pub role: Role,
    /// Every path is written under this directory (`/` for the node itself).
    pub root: PathBuf,
    pub dry_run: bool,
    /// Use this host name instead of the machine's.
    pub hostname: Option<String>,
    /// Managed plugin mode: run the `docker plugin` steps against this
    /// dockerd (`docker -H URL`), even when the root is not `/`.
    pub docker_host: Option<String>,
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileChange {
    Create,
    Update,
    Unchanged,
    Remove,
}

impl FileChange {
    pub fn as_str(self) -> &'static str {
        match self {
            FileChange::Create => "create",
            FileChange::Update => "update",
            FileChange::Unchanged => "unchanged",
            FileChange::Remove => "remove",
        }
    }
}

/// The result of a setup run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub plan: Plan,
    /// Every file of the plan (and every file removed), with its change.
    pub files: Vec<(PathBuf, FileChange)>,
    /// Number of commands run (0 in a dry run or off the live root).
    pub commands_run: usize,
    /// A service step failed.
    pub failed: bool,
}

impl Outcome {
    /// Files created, updated or removed.
    pub fn changed(&self) -> usize {
        self.files
            .iter()
            .filter(|(_, c)| *c != FileChange::Unchanged)
            .count()
    }
}

/// Run node setup, writing progress lines to `out`.
pub fn run(opts: &SetupOptions, out: &mut dyn Write) -> Result<Outcome, ClusterError> {
    run_with(opts, out, &mut System)
}

/// [`run`], every command going through `commands`.
fn run_with(
    opts: &SetupOptions,
    out: &mut dyn Write,
    commands: &mut dyn CommandRunner,
) -> Result<Outcome, ClusterError> {
    let node = plan::prepare(opts)?;
    say_what_and_where(opts, &node, out)?;
    let mut outcome = Outcome {
        plan: node.plan.clone(),
        files: Vec::new(),
        commands_run: 0,
        failed: false,
    };
    let mut runner = Runner {
        live: node.live,
        dry_run: opts.dry_run,
        docker_host: opts.docker_host.clone(),
        root: node.root.clone(),
        commands,
    };
    // Packages first: they must not find our files as foreign conffiles.
    if !runner.install_packages(&node.plan, out, &mut outcome)? {
        return Ok(outcome);
    }
    let changed = files::sync(&node.plan, &node.root, opts.dry_run, out, &mut outcome)?;
    if !runner.services(&node.plan, &changed, out, &mut outcome)? {
        return Ok(outcome);
    }
    say_summary(opts.dry_run, &outcome, out)?;
    Ok(outcome)
}

/// The first lines: the template, the role, the binding host and the
/// credential; the root; a dry run; the plan's notes.
fn say_what_and_where(
    opts: &SetupOptions,
    node: &plan::Prepared,
    out: &mut dyn Write,
) -> Result<(), ClusterError> {
    let (template, plan) = (&node.template, &node.plan);
    let k = &template.kuryr;
    let mode = if k.mode == super::KuryrMode::Agent {
        format!("agent/{}", k.agent_type)
    } else {
        k.mode.to_string()
    };
    say(
        out,
        format!(
            "node setup: template \"{}\" (coe {}, network_driver {}, kuryr_mode {mode}), role {}, binding host {}, {}, init {}",
            template.display_name(),
            template.coe,
            template.network_driver,
            opts.role,
            plan.binding_host,
            node.params.credential.describe(),
            plan.init.as_str(),
        ),
    )?;
    if node.live {
        say(out, "root: / (this node)".into())?;
    } else {
        say(
            out,
            format!(
                "root: {} (not the live root: files only, services are not touched)",
                node.root.display()
            ),
        )?;
    }
    if opts.dry_run {
        say(
            out,
            "dry run: nothing is written and no command is run".into(),
        )?;
    }
    for note in &plan.notes {
        say(out, format!("note: {note}"))?;
    }
    Ok(())
}

/// The last line: how many files were (or would be) created, updated,
/// left unchanged and removed.
fn say_summary(dry_run: bool, outcome: &Outcome, out: &mut dyn Write) -> Result<(), ClusterError> {
    let count = |c: FileChange| outcome.files.iter().filter(|(_, x)| *x == c).count();
    say(
        out,
        format!(
            "{}{} created, {} updated, {} unchanged, {} removed",
            if dry_run {
                "dry run, would be: "
            } else {
                "done: "
            },
            count(FileChange::Create),
            count(FileChange::Update),
            count(FileChange::Unchanged),
            count(FileChange::Remove),
        ),
    )
}

/// One line of progress.
fn say(out: &mut dyn Write, line: String) -> Result<(), ClusterError> {
    writeln!(out, "{line}").map_err(|source| ClusterError::Write {
        path: PathBuf::from("<stdout>"),
        source,
    })
}
