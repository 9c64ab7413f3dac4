//! The files of the plan under `--root`: compare each with what is there
//! (contents, mode, owner), print one line per file (`create`, `update`,
//! `unchanged`, `remove`), and unless it is a dry run write what differs
//! (atomically: a temporary file renamed over the old one) and remove what
//! must not exist. Unchanged files are not touched, so their mtime stays.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{FileChange, Outcome, say};
use crate::cluster::ClusterError;
use crate::cluster::render::{FileSpec, Plan};

/// The desired ownership of a file, resolved on the target root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Owner {
    uid: u32,
    gid: u32,
}

pub(super) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The gid of `group` in `root/etc/group`.
pub(super) fn group_gid(root: &Path, group: &str) -> Option<u32> {
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

/// Make the files under `root` match the plan (or, in a dry run, say how
/// they differ). Returns the paths created or updated.
pub(super) fn sync(
    plan: &Plan,
    root: &Path,
    dry_run: bool,
    out: &mut dyn Write,
    outcome: &mut Outcome,
) -> Result<BTreeSet<PathBuf>, ClusterError> {
    let enforce_owner = effective_uid() == 0;
    if !enforce_owner {
        say(
            out,
            "note: not running as root: file owners are neither checked nor set".into(),
        )?;
    }
    let mut changed = BTreeSet::new();
    for spec in plan.files.values() {
        let owner = if enforce_owner {
            Some(owner_on(root, spec, out)?)
        } else {
            None
        };
        let change = sync_file(root, spec, owner, dry_run, out)?;
        if change != FileChange::Unchanged {
            changed.insert(spec.path.clone());
        }
        outcome.files.push((spec.path.clone(), change));
    }
    remove_absent(plan, root, dry_run, out, outcome)?;
    Ok(changed)
}

/// root and the file's group as `root` knows it (root, while the package
/// that creates the group is not installed yet).
fn owner_on(root: &Path, spec: &FileSpec, out: &mut dyn Write) -> Result<Owner, ClusterError> {
    let gid = match spec.group {
        None => Some(0),
        Some(g) => group_gid(root, g),
    };
    if gid.is_none() {
        say(
            out,
            format!(
                "note: group {} does not exist under {} yet (its package creates it): {} stays group root",
                spec.group.unwrap_or_default(),
                root.display(),
                spec.path.display()
            ),
        )?;
    }
    Ok(Owner {
        uid: 0,
        gid: gid.unwrap_or(0),
    })
}

/// Compare one file, print its line, and fix it unless `dry_run`.
fn sync_file(
    root: &Path,
    spec: &FileSpec,
    owner: Option<Owner>,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<FileChange, ClusterError> {
    let target = under_root(root, &spec.path);
    let write_error = |source| ClusterError::Write {
        path: target.clone(),
        source,
    };
    let (change, details) = inspect(&target, spec, owner).map_err(write_error)?;
    say(out, file_line(change, spec, &details))?;
    if change != FileChange::Unchanged && !dry_run {
        apply(&target, spec, owner, change, &details).map_err(write_error)?;
    }
    Ok(change)
}

/// `update /etc/kuryr/kuryr.conf (0600): mode 0644 -> 0600`.
fn file_line(change: FileChange, spec: &FileSpec, details: &[String]) -> String {
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
    line
}

/// Remove the files the plan says must not exist, with the reason.
fn remove_absent(
    plan: &Plan,
    root: &Path,
    dry_run: bool,
    out: &mut dyn Write,
    outcome: &mut Outcome,
) -> Result<(), ClusterError> {
    for (path, reason) in &plan.absent {
        let target = under_root(root, path);
        if target.symlink_metadata().is_err() {
            continue;
        }
        say(out, format!("remove {} ({reason})", path.display()))?;
        if !dry_run {
            std::fs::remove_file(&target).map_err(|source| ClusterError::Write {
                path: target.clone(),
                source,
            })?;
        }
        outcome.files.push((path.clone(), FileChange::Remove));
    }
    Ok(())
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
    let result = write_new(&tmp, spec, owner).and_then(|()| std::fs::rename(&tmp, target));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Write `spec` into the new file `tmp`: contents synced, then owner, then
/// mode (after chown, which may clear set-id bits; the umask does not
/// apply).
fn write_new(tmp: &Path, spec: &FileSpec, owner: Option<Owner>) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    f.write_all(&spec.contents)?;
    f.sync_all()?;
    if let Some(o) = owner {
        std::os::unix::fs::chown(tmp, Some(o.uid), Some(o.gid))?;
    }
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(spec.mode))
}
