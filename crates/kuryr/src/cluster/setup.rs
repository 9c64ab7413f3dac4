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
//!    plugin mode adds the plugin bundle (config.json, a rootfs from this
//!    binary, its `ldd` libraries and the CA bundle) and its digest to the
//!    files, and `docker plugin rm/create/set/enable` when the plugin is
//!    absent or the bundle changed; `--docker-host URL` runs those against
//!    that dockerd even off the live root.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::render::{self, FileSpec, Plan, Role, Step};
use super::{ClusterError, facts, load_inputs};
use crate::cluster::params::{DatapathType, Installer};
use crate::config::Config;
use crate::paths;

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

/// The desired ownership of a file, resolved on the target root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    uid: u32,
    gid: u32,
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The gid of `group` in `root/etc/group`.
fn group_gid(root: &Path, group: &str) -> Option<u32> {
    let text = std::fs::read_to_string(root.join("etc/group")).ok()?;
    text.lines().find_map(|line| {
        let mut f = line.split(':');
        (f.next()? == group)
            .then(|| f.nth(1)?.parse().ok())
            .flatten()
    })
}

/// `root` + an absolute node path.
pub fn under_root(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Run node setup, writing progress lines to `out`.
pub fn run(opts: &SetupOptions, out: &mut dyn Write) -> Result<Outcome, ClusterError> {
    let (template, params) = load_inputs(&opts.template, Some(&opts.params))?;
    let params = params.ok_or_else(|| ClusterError::Invalid(vec![]))?;
    let facts = facts::gather(&params, &template.kuryr, opts.hostname.as_deref())
        .map_err(ClusterError::Invalid)?;
    let mut plan =
        render::render(&template, &params, opts.role, &facts).map_err(ClusterError::Invalid)?;
    let config = check_rendered_config(&plan)?;
    if let Some(note) = unsupported_mode_note(&config) {
        plan.notes.push(note);
    }

    let root = std::fs::canonicalize(&opts.root).map_err(|source| ClusterError::Read {
        path: opts.root.clone(),
        source,
    })?;
    if !root.is_dir() {
        return Err(ClusterError::Read {
            path: opts.root.clone(),
            source: io::Error::new(io::ErrorKind::NotADirectory, "--root is not a directory"),
        });
    }
    let live = root == Path::new("/");
    add_plugin_bundle(&mut plan, &root)?;
    let w = |out: &mut dyn Write, line: String| -> Result<(), ClusterError> {
        writeln!(out, "{line}").map_err(|source| ClusterError::Write {
            path: PathBuf::from("<stdout>"),
            source,
        })
    };

    let k = &template.kuryr;
    let mode = if k.mode == super::KuryrMode::Agent {
        format!("agent/{}", k.agent_type)
    } else {
        k.mode.to_string()
    };
    w(
        out,
        format!(
            "node setup: template \"{}\" (coe {}, network_driver {}, kuryr_mode {mode}), role {}, binding host {}, {}",
            template.display_name(),
            template.coe,
            template.network_driver,
            opts.role,
            plan.binding_host,
            params.credential.describe(),
        ),
    )?;
    if live {
        w(out, "root: / (this node)".into())?;
    } else {
        w(
            out,
            format!(
                "root: {} (not the live root: files only, services are not touched)",
                root.display()
            ),
        )?;
    }
    if opts.dry_run {
        w(
            out,
            "dry run: nothing is written and no command is run".into(),
        )?;
    }
    for note in &plan.notes {
        w(out, format!("note: {note}"))?;
    }

    let mut outcome = Outcome {
        plan: plan.clone(),
        files: Vec::new(),
        commands_run: 0,
        failed: false,
    };
    let runner = Runner {
        live,
        dry_run: opts.dry_run,
        docker_host: opts.docker_host.clone(),
        root: root.clone(),
    };

    // Packages first: a package must not find our files as foreign
    // conffiles, and it creates the `neutron` group the agent files use.
    for step in plan
        .steps
        .iter()
        .filter(|s| matches!(s, Step::Install { .. }))
    {
        if !runner.step(step, &BTreeSet::new(), out, &mut outcome)? {
            return Ok(outcome);
        }
    }

    let enforce_owner = effective_uid() == 0;
    if !enforce_owner {
        w(
            out,
            "note: not running as root: file owners are neither checked nor set".into(),
        )?;
    }
    let mut changed_paths = BTreeSet::new();
    for spec in plan.files.values() {
        let owner = if enforce_owner {
            let gid = match spec.group {
                None => Some(0),
                Some(g) => group_gid(&root, g),
            };
            if gid.is_none() {
                w(
                    out,
                    format!(
                        "note: group {} does not exist under {} yet (its package creates it): {} stays group root",
                        spec.group.unwrap_or_default(),
                        root.display(),
                        spec.path.display()
                    ),
                )?;
            }
            Some(Owner {
                uid: 0,
                gid: gid.unwrap_or(0),
            })
        } else {
            None
        };
        let target = under_root(&root, &spec.path);
        let (change, details) =
            inspect(&target, spec, owner).map_err(|source| ClusterError::Write {
                path: target.clone(),
                source,
            })?;
        let mut line = format!(
            "{} {} ({:04o}{})",
            change.as_str(),
            spec.path.display(),
            spec.mode,
            spec.group
                .map(|g| format!(", group {g}"))
                .unwrap_or_default()
        );
        if !details.is_empty() {
            line.push_str(": ");
            line.push_str(&details.join(", "));
        }
        w(out, line)?;
        if change != FileChange::Unchanged {
            changed_paths.insert(spec.path.clone());
            if !opts.dry_run {
                apply(&target, spec, owner, change, &details).map_err(|source| {
                    ClusterError::Write {
                        path: target.clone(),
                        source,
                    }
                })?;
            }
        }
        outcome.files.push((spec.path.clone(), change));
    }
    for (path, reason) in &plan.absent {
        let target = under_root(&root, path);
        if target.symlink_metadata().is_ok() {
            w(out, format!("remove {} ({reason})", path.display()))?;
            if !opts.dry_run {
                std::fs::remove_file(&target).map_err(|source| ClusterError::Write {
                    path: target.clone(),
                    source,
                })?;
            }
            outcome.files.push((path.clone(), FileChange::Remove));
        }
    }

    if changed_paths
        .iter()
        .any(|p| p.starts_with(paths::SYSTEMD_DIR))
    {
        let reload = Cmd::new(&["systemctl", "daemon-reload"]);
        if !runner.execute(&[reload], out, &mut outcome)? {
            return Ok(outcome);
        }
    }
    for step in plan
        .steps
        .iter()
        .filter(|s| !matches!(s, Step::Install { .. }))
    {
        if !runner.step(step, &changed_paths, out, &mut outcome)? {
            return Ok(outcome);
        }
    }

    let count = |c: FileChange| outcome.files.iter().filter(|(_, x)| *x == c).count();
    w(
        out,
        format!(
            "{}{} created, {} updated, {} unchanged, {} removed",
            if opts.dry_run {
                "dry run, would be: "
            } else {
                "done: "
            },
            count(FileChange::Create),
            count(FileChange::Update),
            count(FileChange::Unchanged),
            count(FileChange::Remove),
        ),
    )?;
    Ok(outcome)
}

/// Load the rendered kuryr.conf back as the daemon will: a file that does
/// not load, or loads with warnings, is a rendering bug.
fn check_rendered_config(plan: &Plan) -> Result<Config, ClusterError> {
    let path = PathBuf::from(paths::KURYR_CONF);
    let text = plan.text(paths::KURYR_CONF).unwrap_or_default();
    let bug = |reason: String| ClusterError::Render {
        path: path.clone(),
        reason,
    };
    let config =
        Config::from_texts(&[(paths::KURYR_CONF, text)]).map_err(|e| bug(e.to_string()))?;
    if !config.warnings.is_empty() {
        return Err(bug(config.warnings.join("; ")));
    }
    config.session_config().map_err(|e| bug(e.to_string()))?;
    Ok(config)
}

/// Say so when this build's daemon would refuse the configured port driver
/// (sriov is not supported; a kernel may lack ipvlan or 8021q).
fn unsupported_mode_note(config: &Config) -> Option<String> {
    let mut probe = config.clone();
    probe.neutron.cafile = None;
    probe.neutron.certfile = None;
    probe.neutron.keyfile = None;
    match crate::daemon::build_driver(&probe) {
        Err(crate::daemon::DaemonError::UnsupportedPortDriver(driver)) => Some(format!(
            "this build of the driver does not serve port driver {driver} yet: kuryr.service will not \
             start until it does (kuryr_mode agent works)"
        )),
        _ => None,
    }
}

/// Compare a file on disk with its spec.
fn inspect(
    target: &Path,
    spec: &FileSpec,
    owner: Option<Owner>,
) -> io::Result<(FileChange, Vec<String>)> {
    let meta = match target.symlink_metadata() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((FileChange::Create, vec![])),
        Err(e) => return Err(e),
        Ok(m) => m,
    };
    let mut details = Vec::new();
    if meta.file_type().is_symlink() {
        details.push("replaces a symbolic link".to_string());
        return Ok((FileChange::Update, details));
    }
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "exists and is not a regular file; move it away",
        ));
    }
    if std::fs::read(target)? != spec.contents {
        details.push("contents".to_string());
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode != spec.mode {
        details.push(format!("mode {mode:04o} -> {:04o}", spec.mode));
    }
    if let Some(o) = owner
        && (meta.uid() != o.uid || meta.gid() != o.gid)
    {
        details.push(format!(
            "owner {}:{} -> {}:{}",
            meta.uid(),
            meta.gid(),
            o.uid,
            o.gid
        ));
    }
    let change = if details.is_empty() {
        FileChange::Unchanged
    } else {
        FileChange::Update
    };
    Ok((change, details))
}

/// Make `target` match `spec`. Contents are replaced atomically; a
/// mode-only or owner-only difference is fixed in place.
fn apply(
    target: &Path,
    spec: &FileSpec,
    owner: Option<Owner>,
    change: FileChange,
    details: &[String],
) -> io::Result<()> {
    let rewrite = change == FileChange::Create
        || details
            .iter()
            .any(|d| d == "contents" || d.starts_with("replaces"));
    if !rewrite {
        std::fs::set_permissions(target, std::fs::Permissions::from_mode(spec.mode))?;
        if let Some(o) = owner {
            std::os::unix::fs::chown(target, Some(o.uid), Some(o.gid))?;
        }
        return Ok(());
    }
    let dir = target
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent directory"))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.kuryr-new"));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&spec.contents)?;
        f.sync_all()?;
        if let Some(o) = owner {
            std::os::unix::fs::chown(&tmp, Some(o.uid), Some(o.gid))?;
        }
        // After chown, which may clear set-id bits; the umask does not apply.
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(spec.mode))?;
        std::fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Managed plugin mode: add the bundle's rootfs (this binary, the shared
/// libraries `ldd` lists for it, the system CA bundle) and the bundle's
/// digest to the plan, and point `etc-kuryr.source` at the root's
/// `/etc/kuryr`.
fn add_plugin_bundle(plan: &mut Plan, root: &Path) -> Result<(), ClusterError> {
    let Some(Step::ManagedPlugin { etc_kuryr, .. }) = plan
        .steps
        .iter_mut()
        .find(|s| matches!(s, Step::ManagedPlugin { .. }))
    else {
        return Ok(());
    };
    *etc_kuryr = under_root(root, Path::new(paths::ETC_KURYR));
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| ClusterError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let exe = std::env::current_exe().map_err(|source| ClusterError::Read {
        path: PathBuf::from("/proc/self/exe"),
        source,
    })?;
    let rootfs = Path::new(paths::PLUGIN_ROOTFS);
    let mut add = |node_path: &Path, mode: u32, contents: Vec<u8>| {
        let path = rootfs.join(node_path.strip_prefix("/").unwrap_or(node_path));
        plan.files.insert(
            path.clone(),
            FileSpec {
                path,
                mode,
                group: None,
                contents,
            },
        );
    };
    add(Path::new(paths::PLUGIN_ENTRYPOINT), 0o755, read(&exe)?);
    for lib in shared_libraries(&exe) {
        add(&lib, 0o755, read(&lib)?);
    }
    let ca = Path::new(paths::SYSTEM_CA_BUNDLE);
    if ca.is_file() {
        add(ca, 0o644, read(ca)?);
    }
    // FNV-1a over every bundle file's path and contents.
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
    let path = PathBuf::from(paths::PLUGIN_DIGEST);
    plan.files.insert(
        path.clone(),
        FileSpec {
            path,
            mode: 0o644,
            group: None,
            contents: format!("fnv1a64:{h:016x}\n").into_bytes(),
        },
    );
    Ok(())
}

/// The absolute paths `ldd` lists for `exe` (none for a static binary).
fn shared_libraries(exe: &Path) -> Vec<PathBuf> {
    let Ok(out) = Command::new("ldd").arg(exe).output() else {
        return vec![];
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut libs: Vec<PathBuf> = text
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect();
    libs.sort();
    libs.dedup();
    libs
}

/// Runs (or reports) service steps.
struct Runner {
    live: bool,
    dry_run: bool,
    docker_host: Option<String>,
    root: PathBuf,
}

/// A command line, for display and execution.
struct Cmd {
    argv: Vec<String>,
    env: Vec<(&'static str, &'static str)>,
}

impl Cmd {
    fn new(args: &[&str]) -> Cmd {
        Cmd {
            argv: args.iter().map(|s| s.to_string()).collect(),
            env: vec![],
        }
    }

    fn show(&self) -> String {
        let mut s: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        s.extend(self.argv.iter().cloned());
        s.join(" ")
    }

    /// Exit status zero?
    fn succeeds(&self) -> bool {
        Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn output(&self) -> Option<String> {
        let out = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn run(&self) -> Result<(), String> {
        let out = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .envs(self.env.iter().copied())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(format!(
                "{} ({})",
                stderr.trim().lines().last().unwrap_or_default(),
                out.status
            ))
        }
    }
}

impl Runner {
    fn say(out: &mut dyn Write, line: String) -> Result<(), ClusterError> {
        writeln!(out, "{line}").map_err(|source| ClusterError::Write {
            path: PathBuf::from("<stdout>"),
            source,
        })
    }

    /// Report or run `cmds` (needed on this node). Returns false when one
    /// failed.
    fn execute(
        &self,
        cmds: &[Cmd],
        out: &mut dyn Write,
        outcome: &mut Outcome,
    ) -> Result<bool, ClusterError> {
        self.execute_as(self.live, cmds, out, outcome)
    }

    fn execute_as(
        &self,
        live: bool,
        cmds: &[Cmd],
        out: &mut dyn Write,
        outcome: &mut Outcome,
    ) -> Result<bool, ClusterError> {
        for cmd in cmds {
            if !live {
                Self::say(out, format!("skipped (not the live root): {}", cmd.show()))?;
            } else if self.dry_run {
                Self::say(out, format!("would run: {}", cmd.show()))?;
            } else {
                Self::say(out, format!("run: {}", cmd.show()))?;
                outcome.commands_run += 1;
                if let Err(e) = cmd.run() {
                    Self::say(out, format!("failed: {}: {e}", cmd.show()))?;
                    outcome.failed = true;
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    fn step(
        &self,
        step: &Step,
        changed: &BTreeSet<PathBuf>,
        out: &mut dyn Write,
        outcome: &mut Outcome,
    ) -> Result<bool, ClusterError> {
        match step {
            Step::Install {
                installer,
                packages,
            } => {
                let missing: Vec<&str> = if self.live {
                    packages
                        .iter()
                        .filter(|p| !package_installed(*installer, p))
                        .map(String::as_str)
                        .collect()
                } else {
                    packages.iter().map(String::as_str).collect()
                };
                if missing.is_empty() {
                    Self::say(
                        out,
                        format!("unchanged: packages {} installed", packages.join(" ")),
                    )?;
                    return Ok(true);
                }
                let cmd = match installer {
                    Installer::Dnf => {
                        let mut a = vec!["dnf", "install", "-y"];
                        a.extend(&missing);
                        Cmd::new(&a)
                    }
                    _ => {
                        let mut a = vec![
                            "apt-get",
                            "install",
                            "-y",
                            "--no-install-recommends",
                            "-o",
                            "Dpkg::Options::=--force-confold",
                        ];
                        a.extend(&missing);
                        let mut c = Cmd::new(&a);
                        c.env.push(("DEBIAN_FRONTEND", "noninteractive"));
                        c
                    }
                };
                self.execute(&[cmd], out, outcome)
            }
            Step::Service {
                unit,
                restart_when_changed,
            } => {
                let config_changed = restart_when_changed.iter().any(|p| changed.contains(p));
                let (enabled, active) = if self.live {
                    (
                        Cmd::new(&["systemctl", "is-enabled", "--quiet", unit]).succeeds(),
                        Cmd::new(&["systemctl", "is-active", "--quiet", unit]).succeeds(),
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
                    Self::say(out, format!("unchanged: {unit} is enabled and running"))?;
                    return Ok(true);
                }
                self.execute(&cmds, out, outcome)
            }
            Step::ManagedPlugin {
                reference,
                bundle,
                etc_kuryr,
            } => {
                let live = self.live || self.docker_host.is_some();
                let docker = |args: &[&str]| {
                    let mut a = vec!["docker"];
                    if let Some(h) = &self.docker_host {
                        a.extend(["-H", h.as_str()]);
                    }
                    a.extend(args);
                    Cmd::new(&a)
                };
                let bundle_changed = changed
                    .iter()
                    .any(|p| p.starts_with(bundle) || p == Path::new(paths::PLUGIN_DIGEST));
                let enabled = if live {
                    docker(&["plugin", "inspect", "-f", "{{.Enabled}}", reference]).output()
                } else {
                    None
                };
                let mut cmds = Vec::new();
                if enabled.is_none() || bundle_changed {
                    if enabled.is_some() || !live {
                        cmds.push(docker(&["plugin", "rm", "-f", reference]));
                    }
                    // The docker client reads the bundle: the one under --root.
                    let dir = under_root(&self.root, bundle);
                    if live && !self.dry_run {
                        make_rootfs_dirs(&dir);
                    }
                    let dir = dir.to_string_lossy();
                    cmds.push(docker(&["plugin", "create", reference, &dir]));
                    let source = format!("etc-kuryr.source={}", etc_kuryr.display());
                    cmds.push(docker(&["plugin", "set", reference, &source]));
                    cmds.push(docker(&["plugin", "enable", reference]));
                } else if enabled.as_deref() != Some("true") {
                    cmds.push(docker(&["plugin", "enable", reference]));
                } else {
                    Self::say(
                        out,
                        format!("unchanged: plugin {reference} is installed and enabled"),
                    )?;
                    return Ok(true);
                }
                self.execute_as(live, &cmds, out, outcome)
            }
            Step::OvsBridge {
                bridge,
                datapath_type,
            } => {
                if self.live
                    && Cmd::new(&["ovs-vsctl", "--timeout=10", "br-exists", bridge]).succeeds()
                {
                    let current = Cmd::new(&[
                        "ovs-vsctl",
                        "--timeout=10",
                        "get",
                        "Bridge",
                        bridge,
                        "datapath_type",
                    ])
                    .output()
                    .unwrap_or_default();
                    let current = current.trim_matches('"');
                    let same = current == datapath_type.as_str()
                        || (current.is_empty() && *datapath_type == DatapathType::System);
                    if same {
                        Self::say(
                            out,
                            format!(
                                "unchanged: Open vSwitch bridge {bridge} exists (datapath {})",
                                datapath_type.as_str()
                            ),
                        )?;
                        return Ok(true);
                    }
                }
                let dp = format!("datapath_type={}", datapath_type.as_str());
                let cmd = Cmd::new(&[
                    "ovs-vsctl",
                    "--timeout=10",
                    "--may-exist",
                    "add-br",
                    bridge,
                    "--",
                    "set",
                    "Bridge",
                    bridge,
                    &dp,
                ]);
                self.execute(&[cmd], out, outcome)
            }
        }
    }
}

/// The mount points and runtime directories the plugin's rootfs needs.
fn make_rootfs_dirs(bundle: &Path) {
    for d in paths::PLUGIN_ROOTFS_DIRS {
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(bundle.join("rootfs").join(d));
    }
}

fn package_installed(installer: Installer, package: &str) -> bool {
    match installer {
        Installer::Dnf => Cmd::new(&["rpm", "-q", package]).succeeds(),
        _ => Cmd::new(&["dpkg-query", "-W", "-f=${db:Status-Status}", package])
            .output()
            .is_some_and(|s| s == "installed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::SystemTime;

    /// A scratch directory with a template, parameters and a root.
    struct Scratch {
        dir: PathBuf,
    }

    impl Scratch {
        fn new(name: &str, template: serde_json::Value, params: serde_json::Value) -> Scratch {
            let dir = std::env::temp_dir().join(format!(
                "kuryr-setup-{name}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("root")).unwrap();
            std::fs::write(dir.join("template.json"), template.to_string()).unwrap();
            std::fs::write(dir.join("params.json"), params.to_string()).unwrap();
            Scratch { dir }
        }

        fn opts(&self, dry_run: bool) -> SetupOptions {
            SetupOptions {
                template: self.dir.join("template.json"),
                params: self.dir.join("params.json"),
                role: Role::Worker,
                root: self.dir.join("root"),
                dry_run,
                hostname: Some("node-1".into()),
                docker_host: None,
            }
        }

        fn root(&self) -> PathBuf {
            self.dir.join("root")
        }

        fn run(&self, dry_run: bool) -> (Outcome, String) {
            let mut out = Vec::new();
            let outcome = run(&self.opts(dry_run), &mut out).expect("setup runs");
            (outcome, String::from_utf8(out).unwrap())
        }

        /// Every file under the root with its mtime and mode.
        fn snapshot(&self) -> Vec<(PathBuf, SystemTime, u32, Vec<u8>)> {
            fn walk(dir: &Path, out: &mut Vec<(PathBuf, SystemTime, u32, Vec<u8>)>) {
                let mut entries: Vec<_> = std::fs::read_dir(dir)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .collect();
                entries.sort();
                for p in entries {
                    let m = p.symlink_metadata().unwrap();
                    if m.is_dir() {
                        walk(&p, out);
                    } else {
                        out.push((
                            p.clone(),
                            m.modified().unwrap(),
                            m.permissions().mode() & 0o7777,
                            std::fs::read(&p).unwrap(),
                        ));
                    }
                }
            }
            let mut out = Vec::new();
            walk(&self.root(), &mut out);
            out
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn agent_template() -> serde_json::Value {
        json!({"name": "swarm-kuryr", "coe": "swarm-mode", "network_driver": "kuryr",
               "labels": {"kuryr_mode": "agent"}})
    }

    fn agent_params() -> serde_json::Value {
        json!({
            "keystone": {"auth_url": "https://keystone.example.com:5000/v3",
                         "ca_pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
            "credential": {"type": "application_credential", "application_credential_id": "8f0c1d",
                           "application_credential_secret": "s3cr3t-never-printed"},
            "agent": {"local_ip": "10.0.0.11", "transport_url": "rabbit://n:bus-secret@10.0.0.1:5672/"}
        })
    }

    #[test]
    fn first_run_creates_second_changes_nothing() {
        let s = Scratch::new("idem", agent_template(), agent_params());
        let (first, text) = s.run(false);
        assert!(!first.failed);
        assert_eq!(
            first.commands_run, 0,
            "never runs commands off the live root"
        );
        let created: Vec<String> = first
            .files
            .iter()
            .map(|(p, c)| format!("{} {}", c.as_str(), p.display()))
            .collect();
        assert_eq!(
            created,
            vec![
                "create /etc/kuryr/ca.pem",
                "create /etc/kuryr/kuryr.conf",
                "create /etc/neutron/plugins/ml2/openvswitch_agent.ini",
                "create /etc/systemd/system/docker.service.d/kuryr.conf",
                "create /etc/systemd/system/kuryr.service",
            ]
        );
        assert!(
            text.contains("\ncreate /etc/kuryr/kuryr.conf (0600)\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "\ncreate /etc/neutron/plugins/ml2/openvswitch_agent.ini (0640, group neutron)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("\nskipped (not the live root): systemctl daemon-reload\n"),
            "{text}"
        );
        assert!(
            text.contains("\nskipped (not the live root): systemctl enable --now kuryr.service\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "\nskipped (not the live root): systemctl restart neutron-openvswitch-agent\n"
            ),
            "{text}"
        );
        assert!(
            !text.contains("s3cr3t") && !text.contains("bus-secret"),
            "{text}"
        );
        let conf = s.root().join("etc/kuryr/kuryr.conf");
        let meta = conf.metadata().unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
        if effective_uid() == 0 {
            assert_eq!((meta.uid(), meta.gid()), (0, 0));
        }
        let loaded = Config::load(std::slice::from_ref(&conf)).expect("written kuryr.conf loads");
        assert_eq!(loaded.default.host.as_deref(), Some("node-1"));
        assert_eq!(
            loaded.neutron.cafile.as_deref(),
            Some(Path::new("/etc/kuryr/ca.pem"))
        );

        let before = s.snapshot();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (second, text) = s.run(false);
        assert_eq!(second.changed(), 0, "{text}");
        assert!(
            second
                .files
                .iter()
                .all(|(_, c)| *c == FileChange::Unchanged),
            "{text}"
        );
        for line in text.lines() {
            assert!(
                !line.starts_with("create")
                    && !line.starts_with("update")
                    && !line.starts_with("remove"),
                "{line}"
            );
        }
        assert!(!text.contains("daemon-reload"), "nothing to reload: {text}");
        assert!(
            !text.contains("systemctl restart"),
            "nothing to restart: {text}"
        );
        assert!(
            text.contains("\nunchanged /etc/kuryr/kuryr.conf (0600)\n"),
            "{text}"
        );
        assert!(
            text.ends_with("done: 0 created, 0 updated, 5 unchanged, 0 removed\n"),
            "{text}"
        );
        assert_eq!(s.snapshot(), before, "mtimes, modes and bytes untouched");
    }

    #[test]
    fn dry_run_writes_nothing() {
        let s = Scratch::new("dry", agent_template(), agent_params());
        let (outcome, text) = s.run(true);
        assert!(s.snapshot().is_empty(), "{text}");
        assert!(!s.root().join("etc").exists());
        assert_eq!(outcome.changed(), 5);
        assert!(
            text.contains("dry run: nothing is written and no command is run"),
            "{text}"
        );
        assert!(
            text.contains("\ncreate /etc/kuryr/kuryr.conf (0600)\n"),
            "{text}"
        );
        assert!(
            text.ends_with("dry run, would be: 5 created, 0 updated, 0 unchanged, 0 removed\n"),
            "{text}"
        );
        // After a real run, a dry run reports everything unchanged.
        s.run(false);
        let before = s.snapshot();
        let (outcome, _) = s.run(true);
        assert_eq!(outcome.changed(), 0);
        assert_eq!(s.snapshot(), before);
    }

    #[test]
    fn repairs_drift_and_removes_the_stale_spec_file() {
        let s = Scratch::new("drift", agent_template(), agent_params());
        s.run(false);
        let root = s.root();
        let conf = root.join("etc/kuryr/kuryr.conf");
        let unit = root.join("etc/systemd/system/kuryr.service");
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&unit, "edited by hand\n").unwrap();
        std::fs::set_permissions(&unit, std::fs::Permissions::from_mode(0o644)).unwrap();
        let spec = root.join("usr/lib/docker/plugins/kuryr/kuryr.spec");
        std::fs::create_dir_all(spec.parent().unwrap()).unwrap();
        std::fs::write(&spec, "http://127.0.0.1:23750\n").unwrap();
        let conf_mtime = conf.metadata().unwrap().modified().unwrap();

        let (outcome, text) = s.run(false);
        assert!(
            text.contains("\nupdate /etc/kuryr/kuryr.conf (0600): mode 0644 -> 0600\n"),
            "{text}"
        );
        assert!(
            text.contains("\nupdate /etc/systemd/system/kuryr.service (0644): contents\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "\nremove /usr/lib/docker/plugins/kuryr/kuryr.spec (socket mode: Docker finds the driver by its socket)\n"
            ),
            "{text}"
        );
        assert!(text.contains("systemctl daemon-reload"), "{text}");
        assert!(text.contains("systemctl restart kuryr.service"), "{text}");
        assert_eq!(outcome.changed(), 3);
        assert_eq!(
            conf.metadata().unwrap().permissions().mode() & 0o7777,
            0o600
        );
        assert_eq!(
            conf.metadata().unwrap().modified().unwrap(),
            conf_mtime,
            "a mode fix does not rewrite the file"
        );
        assert!(!spec.exists());
        assert!(
            std::fs::read_to_string(&unit)
                .unwrap()
                .contains("ExecStart=")
        );
        let (again, _) = s.run(false);
        assert_eq!(again.changed(), 0);
    }

    #[test]
    fn tcp_mode_writes_the_spec_file() {
        let mut p = agent_params();
        p["driver"] = json!({"plugin": "tcp"});
        let t = json!({"name": "t", "coe": "swarm", "network_driver": "kuryr",
                       "labels": {"kuryr_mode": "nested"}});
        let s = Scratch::new("tcp", t, p);
        let (_, text) = s.run(false);
        assert!(
            text.contains("\ncreate /usr/lib/docker/plugins/kuryr/kuryr.spec (0644)\n"),
            "{text}"
        );
        assert_eq!(
            std::fs::read_to_string(s.root().join("usr/lib/docker/plugins/kuryr/kuryr.spec"))
                .unwrap(),
            "http://127.0.0.1:23750\n"
        );
        assert!(
            !s.root().join("etc/neutron").exists(),
            "no agent in nested mode"
        );
    }

    fn managed_params() -> serde_json::Value {
        let mut p = agent_params();
        p["driver"] = json!({"plugin": "managed"});
        p
    }

    fn nested_template() -> serde_json::Value {
        json!({"name": "t", "coe": "swarm-mode", "network_driver": "kuryr",
               "labels": {"kuryr_mode": "nested", "kuryr_link_iface": "eth0"}})
    }

    #[test]
    fn managed_mode_writes_the_bundle_idempotently() {
        let s = Scratch::new("managed", nested_template(), managed_params());
        let (dry, text) = s.run(true);
        assert!(s.snapshot().is_empty(), "{text}");
        assert!(
            text.contains("\ncreate /var/lib/kuryr/plugin/config.json (0644)\n"),
            "{text}"
        );
        assert!(
            text.contains("\ncreate /var/lib/kuryr/plugin/rootfs/usr/bin/kuryr (0755)\n"),
            "{text}"
        );
        assert!(
            text.contains("\ncreate /var/lib/kuryr/plugin.digest (0644)\n"),
            "{text}"
        );
        assert!(!text.contains("kuryr.service"), "{text}");
        assert!(!text.contains("docker.service.d"), "{text}");
        let root = s.root();
        let create = format!(
            "\nskipped (not the live root): docker plugin create kuryr/kuryr:latest {}/var/lib/kuryr/plugin\n",
            std::fs::canonicalize(&root).unwrap().display()
        );
        assert!(text.contains(&create), "{text}");
        assert!(
            text.contains(&format!(
                "\nskipped (not the live root): docker plugin set kuryr/kuryr:latest etc-kuryr.source={}/etc/kuryr\n",
                std::fs::canonicalize(&root).unwrap().display()
            )),
            "{text}"
        );
        assert!(
            text.contains(
                "\nskipped (not the live root): docker plugin enable kuryr/kuryr:latest\n"
            ),
            "{text}"
        );
        assert_eq!(dry.commands_run, 0);

        let (first, text) = s.run(false);
        assert!(first.changed() >= 4, "{text}");
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(
            std::fs::read(root.join("var/lib/kuryr/plugin/rootfs/usr/bin/kuryr")).unwrap(),
            exe
        );
        let config =
            std::fs::read_to_string(root.join("var/lib/kuryr/plugin/config.json")).unwrap();
        assert_eq!(config, render::plugin_config_json("/etc/kuryr"));
        assert!(!config.contains("s3cr3t"), "{config}");
        let conf = std::fs::read_to_string(root.join("etc/kuryr/kuryr.conf")).unwrap();
        assert!(
            conf.contains("\nplugin_socket = /run/docker/plugins/kuryr.sock\n"),
            "{conf}"
        );
        assert!(!root.join("etc/systemd").exists());

        let before = s.snapshot();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (second, text) = s.run(false);
        assert_eq!(second.changed(), 0, "{text}");
        assert_eq!(s.snapshot(), before, "mtimes, modes and bytes untouched");
        let (dry, text) = s.run(true);
        assert_eq!(dry.changed(), 0, "{text}");
    }

    #[test]
    fn managed_mode_uses_the_docker_host() {
        let s = Scratch::new("managed-host", nested_template(), managed_params());
        let mut opts = s.opts(true);
        // Nothing listens there: the plugin is absent, so all four steps.
        opts.docker_host = Some("unix:///nonexistent/docker.sock".into());
        let mut out = Vec::new();
        let outcome = run(&opts, &mut out).expect("setup runs");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(outcome.commands_run, 0, "dry run: {text}");
        assert!(
            text.contains("\nwould run: docker -H unix:///nonexistent/docker.sock plugin create kuryr/kuryr:latest "),
            "{text}"
        );
        assert!(
            text.contains("\nwould run: docker -H unix:///nonexistent/docker.sock plugin enable kuryr/kuryr:latest\n"),
            "{text}"
        );
    }

    #[test]
    fn invalid_inputs_report_every_problem_and_write_nothing() {
        let t = json!({"coe": "swarm", "network_driver": "Kuryr", "labels": {"kuryr_mode": "bad"}});
        let p = json!({"keystone": {"auth_url": "nope"}, "credential": {"type": "password"}});
        let s = Scratch::new("invalid", t, p);
        let mut out = Vec::new();
        let err = run(&s.opts(false), &mut out).unwrap_err();
        let ClusterError::Invalid(problems) = err else {
            panic!("{err}")
        };
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "keystone.auth_url",
                "credential.password",
                "credential.username",
                "credential.project_name",
                "network_driver",
                "labels/kuryr_mode",
            ]
        );
        assert!(s.snapshot().is_empty());
        assert!(out.is_empty());
    }

    #[test]
    fn a_directory_in_the_way_is_an_error() {
        let s = Scratch::new("dir", agent_template(), agent_params());
        std::fs::create_dir_all(s.root().join("etc/kuryr/kuryr.conf")).unwrap();
        let mut out = Vec::new();
        let err = run(&s.opts(false), &mut out).unwrap_err();
        assert!(err.to_string().contains("is not a regular file"), "{err}");
    }

    #[test]
    fn groups_from_the_target_root() {
        let dir = std::env::temp_dir().join(format!("kuryr-groups-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(
            dir.join("etc/group"),
            "root:x:0:\nneutron:x:111:\nbroken\ndocker:x:998:alice\n",
        )
        .unwrap();
        assert_eq!(group_gid(&dir, "neutron"), Some(111));
        assert_eq!(group_gid(&dir, "docker"), Some(998));
        assert_eq!(group_gid(&dir, "nova"), None);
        assert_eq!(group_gid(Path::new("/nonexistent"), "root"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn under_root_joins() {
        assert_eq!(
            under_root(Path::new("/tmp/r"), Path::new("/etc/kuryr/kuryr.conf")),
            PathBuf::from("/tmp/r/etc/kuryr/kuryr.conf")
        );
        assert_eq!(
            under_root(Path::new("/"), Path::new("/etc/x")),
            PathBuf::from("/etc/x")
        );
    }
}
