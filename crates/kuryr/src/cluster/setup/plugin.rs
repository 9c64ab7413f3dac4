//! Managed plugin mode: the plugin bundle Docker installs (`config.json`
//! from the renderer; a root file system holding one statically linked
//! `kuryr` and the system CA bundle, nothing else; a digest of all of it),
//! and the step that runs `docker plugin rm/create/set/enable` when the
//! plugin is absent or the bundle changed. When dockerd is not running yet
//! (a boot under init `process`: Open vSwitch and the agent first, then
//! dockerd) and the bundle is unchanged, the step leaves the plugin to
//! dockerd.
//!
//! The binary is `driver.plugin_binary` when the parameters name one, else
//! the running `kuryr`; either way it must be statically linked (no program
//! interpreter, [`super::elf`]), or setup stops saying how to get one.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::elf;
use super::runner::{Cmd, Runner};
use super::{Outcome, say, under_root};
use crate::cluster::render::{FileSpec, Plan, Step};
use crate::cluster::{ClusterError, Problem};
use crate::paths;

/// The command that builds a static `kuryr`, named in refusals.
pub const STATIC_BUILD: &str = "packaging/build-static --release";

/// Add the bundle's root file system and digest to the plan, and point
/// `etc-kuryr.source` at the root's `/etc/kuryr`. Nothing to do unless the
/// plan has a managed plugin step. `plugin_binary` is
/// `driver.plugin_binary`.
pub(super) fn add_bundle(
    plan: &mut Plan,
    root: &Path,
    plugin_binary: Option<&Path>,
) -> Result<(), ClusterError> {
    let Some(Step::ManagedPlugin { etc_kuryr, .. }) = plan
        .steps
        .iter_mut()
        .find(|s| matches!(s, Step::ManagedPlugin { .. }))
    else {
        return Ok(());
    };
    *etc_kuryr = under_root(root, Path::new(paths::ETC_KURYR));
    let running = std::env::current_exe().map_err(|source| ClusterError::Read {
        path: PathBuf::from("/proc/self/exe"),
        source,
    })?;
    let binary = static_binary(plugin_binary, &running)?;
    add_to_rootfs(plan, Path::new(paths::PLUGIN_ENTRYPOINT), 0o755, binary);
    let ca = Path::new(paths::SYSTEM_CA_BUNDLE);
    if ca.is_file() {
        add_to_rootfs(plan, ca, 0o644, read(ca)?);
    }
    let digest = bundle_digest(plan);
    add_file(plan, PathBuf::from(paths::PLUGIN_DIGEST), 0o644, digest);
    Ok(())
}

/// The contents of the plugin's `kuryr`: `given` (`driver.plugin_binary`)
/// or else `running`, refused unless it is statically linked.
pub(super) fn static_binary(given: Option<&Path>, running: &Path) -> Result<Vec<u8>, ClusterError> {
    let path = given.unwrap_or(running);
    let bytes = read(path)?;
    let why = match elf::interpreter(&bytes) {
        Ok(None) => return Ok(bytes),
        Ok(Some(loader)) => format!("is dynamically linked (it needs {loader})"),
        Err(e) => format!("is not an executable kuryr ({e})"),
    };
    let message = match given {
        Some(p) => format!(
            "driver.plugin_binary {} {why}: the managed plugin's root file system holds one statically \
             linked kuryr and the CA bundle, no shared library; build one with `{STATIC_BUILD}`",
            p.display()
        ),
        None => format!(
            "this kuryr ({}) {why}: the managed plugin's root file system holds one statically linked \
             kuryr and the CA bundle, no shared library. Build one with `{STATIC_BUILD}` and set \
             driver.plugin_binary to it (or run node setup with it)",
            running.display()
        ),
    };
    Err(ClusterError::Invalid(vec![Problem::new(
        "driver.plugin_binary",
        message,
    )]))
}

fn read(path: &Path) -> Result<Vec<u8>, ClusterError> {
    std::fs::read(path).map_err(|source| ClusterError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// `node_path` (a path inside the plugin) in the bundle's root file system.
fn add_to_rootfs(plan: &mut Plan, node_path: &Path, mode: u32, contents: Vec<u8>) {
    let relative = node_path.strip_prefix("/").unwrap_or(node_path);
    add_file(
        plan,
        Path::new(paths::PLUGIN_ROOTFS).join(relative),
        mode,
        contents,
    );
}

fn add_file(plan: &mut Plan, path: PathBuf, mode: u32, contents: Vec<u8>) {
    plan.files.insert(
        path.clone(),
        FileSpec {
            path,
            mode,
            group: None,
            contents,
        },
    );
}

/// FNV-1a over every bundle file's path, mode and contents, as the digest
/// file's contents.
fn bundle_digest(plan: &Plan) -> Vec<u8> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bundle = Path::new(paths::PLUGIN_BUNDLE);
    for spec in plan.files.values().filter(|f| f.path.starts_with(bundle)) {
        let path = spec.path.to_string_lossy();
        let mode = spec.mode.to_le_bytes();
        for b in path
            .as_bytes()
            .iter()
            .chain(&[0])
            .chain(&mode)
            .chain(&spec.contents)
        {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("fnv1a64:{h:016x}\n").into_bytes()
}

impl Runner<'_> {
    /// (Re-)create and enable plugin `reference` from `bundle` when it is
    /// absent or the bundle changed; enable it when it is disabled. With
    /// `--docker-host` this runs against that dockerd even off the live
    /// root.
    pub(super) fn managed_plugin(
        &mut self,
        reference: &str,
        bundle: &Path,
        etc_kuryr: &Path,
        changed: &BTreeSet<PathBuf>,
        out: &mut dyn Write,
        outcome: &mut Outcome,
    ) -> Result<bool, ClusterError> {
        let live = self.live || self.docker_host.is_some();
        let enabled = if live {
            let inspect = self.docker(&["plugin", "inspect", "-f", "{{.Enabled}}", reference]);
            self.output(&inspect)
        } else {
            None
        };
        let bundle_changed = bundle_changed(changed, bundle);
        if live && enabled.is_none() && !bundle_changed && !self.dockerd_answers() {
            // At boot under init `process`, node setup starts Open vSwitch
            // and the agent before dockerd, which then starts the plugin
            // (it mounts the OVS database socket, which must exist by then).
            say(
                out,
                format!(
                    "unchanged: plugin {reference}: dockerd does not answer; the bundle is the one an \
                     earlier setup installed, and dockerd starts the plugin when it starts"
                ),
            )?;
            return Ok(true);
        }
        let cmds = if enabled.is_none() || bundle_changed {
            if live && !self.dry_run {
                make_rootfs_dirs(&under_root(&self.root, Path::new(paths::PLUGIN_ROOTFS)));
            }
            let installed = enabled.is_some() || !live;
            self.install_plugin(reference, bundle, etc_kuryr, installed)
        } else if enabled.as_deref() != Some("true") {
            vec![self.docker(&["plugin", "enable", reference])]
        } else {
            say(
                out,
                format!("unchanged: plugin {reference} is installed and enabled"),
            )?;
            return Ok(true);
        };
        self.execute_as(live, &cmds, out, outcome)
    }

    /// `docker plugin rm` (when it may be `installed`), `create`, `set`,
    /// `enable`.
    fn install_plugin(
        &self,
        reference: &str,
        bundle: &Path,
        etc_kuryr: &Path,
        installed: bool,
    ) -> Vec<Cmd> {
        let mut cmds = Vec::new();
        if installed {
            cmds.push(self.docker(&["plugin", "rm", "-f", reference]));
        }
        // The docker client reads the bundle: the one under --root.
        let dir = under_root(&self.root, bundle);
        cmds.push(self.docker(&["plugin", "create", reference, &dir.to_string_lossy()]));
        let source = format!("etc-kuryr.source={}", etc_kuryr.display());
        cmds.push(self.docker(&["plugin", "set", reference, &source]));
        cmds.push(self.docker(&["plugin", "enable", reference]));
        cmds
    }

    /// dockerd answers (`docker version` reaches its server).
    fn dockerd_answers(&mut self) -> bool {
        let version = self.docker(&["version", "-f", "{{.Server.Version}}"]);
        self.succeeds(&version)
    }

    /// `docker [-H URL] args...`.
    fn docker(&self, args: &[&str]) -> Cmd {
        let mut a = vec!["docker"];
        if let Some(h) = &self.docker_host {
            a.extend(["-H", h.as_str()]);
        }
        a.extend(args);
        Cmd::new(&a)
    }
}

/// A file of the bundle, or its digest, was created or updated.
fn bundle_changed(changed: &BTreeSet<PathBuf>, bundle: &Path) -> bool {
    changed
        .iter()
        .any(|p| p.starts_with(bundle) || p == Path::new(paths::PLUGIN_DIGEST))
}

/// The mount points and runtime directories the plugin's root file system
/// needs.
fn make_rootfs_dirs(rootfs: &Path) {
    for d in paths::PLUGIN_ROOTFS_DIRS {
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(rootfs.join(d));
    }
}
