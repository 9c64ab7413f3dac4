//! The managed plugin as the tests see it: the statically linked `kuryr`
//! its root file system holds (`packaging/build-static`), what that root
//! file system may contain, and the capabilities a running plugin process
//! holds (`/proc/<pid>/status`, decoded by name, checked against `capsh
//! --decode` when it is installed) compared with the lists the docs quote.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::env::{output_text, repo_root};
use kuryr::capabilities;
use kuryr::paths;

/// What dockerd 20.10 gives a managed plugin beyond what its config.json
/// asks for: its default container set (moby `oci/caps`), as the plugin's
/// `kuryr` finds it at start and logs it (`capabilities: held ...`),
/// measured by `swarm_cluster`. Bit order. docs/user-guide.md (section 6.1)
/// and docs/security.md quote it.
pub const DOCKERD_GIVES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_SYS_CHROOT",
    "CAP_MKNOD",
    "CAP_AUDIT_WRITE",
    "CAP_SETFCAP",
];

/// What the running plugin process holds after `--drop-capabilities`, in
/// each of CapEff, CapPrm and CapBnd (CapInh and CapAmb empty).
pub const PLUGIN_HOLDS: &[&str] = &["CAP_NET_ADMIN"];

/// A capability list as the docs write it: `` `CAP_A`, `CAP_B` ``.
pub fn as_quoted(list: &[&str]) -> String {
    list.iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Both lists appear, as [`as_quoted`] writes them, in the user guide and
/// in docs/security.md.
pub fn assert_docs_quote_the_capabilities() {
    for doc in ["docs/user-guide.md", "docs/security.md"] {
        let text = std::fs::read_to_string(repo_root().join(doc)).unwrap();
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        for list in [DOCKERD_GIVES, PLUGIN_HOLDS] {
            let quoted = as_quoted(list);
            assert!(
                flat.contains(&format!("{quoted}.")) || flat.contains(&format!("{quoted} ")),
                "{doc} does not quote the measured capability list {quoted}"
            );
        }
    }
}

/// The statically linked `kuryr` (`packaging/build-static`, dev profile),
/// built or brought up to date once per test process; run-tests builds it
/// before the tests, so here it is a no-op then.
pub fn static_kuryr() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let script = repo_root().join("packaging/build-static");
        let out = Command::new(&script)
            .env("CARGO", env!("CARGO"))
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
        assert!(
            out.status.success(),
            "packaging/build-static failed: {}",
            output_text(&out)
        );
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let elf = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            kuryr::cluster::setup::elf::interpreter(&elf),
            Ok(None),
            "{} names a program interpreter: not static",
            path.display()
        );
        path
    })
    .clone()
}

/// A plugin root file system node setup wrote holds the static binary and
/// the CA bundle, and otherwise only the empty directories the plugin
/// needs (its mount points and runtime directories) and their parents.
pub fn assert_rootfs_is_the_binary_and_the_ca(rootfs: &Path) {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    walk(rootfs, rootfs, &mut files, &mut dirs);
    files.sort();
    let mut expected = vec![paths::PLUGIN_ENTRYPOINT[1..].to_string()];
    if Path::new(paths::SYSTEM_CA_BUNDLE).is_file() {
        expected.insert(0, paths::SYSTEM_CA_BUNDLE[1..].to_string());
    }
    assert_eq!(files, expected, "files of {}", rootfs.display());
    let elf = std::fs::read(rootfs.join(&paths::PLUGIN_ENTRYPOINT[1..])).unwrap();
    assert_eq!(
        kuryr::cluster::setup::elf::interpreter(&elf),
        Ok(None),
        "the plugin's kuryr names a program interpreter"
    );
    let allowed = |d: &str| {
        files
            .iter()
            .map(String::as_str)
            .chain(paths::PLUGIN_ROOTFS_DIRS.iter().copied())
            .any(|p| Path::new(p).starts_with(d))
    };
    for d in &dirs {
        assert!(allowed(d), "{} holds a directory {d}", rootfs.display());
        let entries = std::fs::read_dir(rootfs.join(d)).unwrap().count();
        assert!(
            entries > 0 || paths::PLUGIN_ROOTFS_DIRS.contains(&d.as_str()),
            "{} holds an empty directory {d} the plugin does not use",
            rootfs.display()
        );
    }
}

fn walk(base: &Path, dir: &Path, files: &mut Vec<String>, dirs: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let rel = path
            .strip_prefix(base)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            dirs.push(rel);
            walk(base, &path, files, dirs);
        } else {
            files.push(rel);
        }
    }
}

/// The capability sets of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub effective: u64,
    pub permitted: u64,
    pub bounding: u64,
    pub inheritable: u64,
    pub ambient: u64,
    /// `NoNewPrivs:`.
    pub no_new_privs: u64,
    /// `Seccomp:` (0 none, 1 strict, 2 filter).
    pub seccomp: u64,
}

impl Caps {
    pub fn of(pid: u32) -> Caps {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |name: &str| {
            let value = status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"));
            u64::from_str_radix(value.trim(), 16).unwrap()
        };
        Caps {
            effective: field("CapEff:"),
            permitted: field("CapPrm:"),
            bounding: field("CapBnd:"),
            inheritable: field("CapInh:"),
            ambient: field("CapAmb:"),
            no_new_privs: field("NoNewPrivs:"),
            seccomp: field("Seccomp:"),
        }
    }
}

/// The namespaces of `pid` that are not those of `other` (`mnt`, `pid`,
/// ...), and those that are.
pub fn namespaces_apart(pid: u32, other: u32) -> (Vec<&'static str>, Vec<&'static str>) {
    let kinds = ["mnt", "pid", "ipc", "uts", "net", "cgroup", "user"];
    let ns = |p: u32, k: &str| std::fs::read_link(format!("/proc/{p}/ns/{k}")).ok();
    kinds.into_iter().partition(|k| ns(pid, k) != ns(other, k))
}

/// The names in `mask`, in bit order; `capsh --decode` agrees when it is
/// installed.
pub fn decode(mask: u64) -> Vec<String> {
    let names = capabilities::names(mask);
    if let Ok(out) = Command::new("capsh")
        .arg(format!("--decode={mask:#x}"))
        .output()
        && out.status.success()
    {
        // `0x...=cap_a,cap_b`
        let text = String::from_utf8_lossy(&out.stdout);
        let listed: Vec<String> = text
            .trim()
            .split_once('=')
            .map(|(_, l)| l)
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_uppercase)
            .collect();
        assert_eq!(listed, names, "capsh --decode={mask:#x} disagrees");
    }
    names
}

/// The pids of the managed plugin's `kuryr` processes in the network
/// namespace `netns` (a file such as `/run/netns/node1`): a host-network
/// plugin runs in its node's. (Its `/proc/<pid>/root` reads `/` from
/// outside its mount namespace, so the root cannot tell nodes apart.)
pub fn plugin_pids(netns: &Path) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let want = std::fs::metadata(netns)
        .unwrap_or_else(|e| panic!("{}: {e}", netns.display()))
        .ino();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        if argv0 != paths::PLUGIN_ENTRYPOINT.as_bytes() {
            continue;
        }
        if std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() == want) {
            pids.push(pid);
        }
    }
    pids
}
