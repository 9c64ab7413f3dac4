//! The Debian package, on this machine: built with the documented command
//! (`packaging/build-deb`), installed with `dpkg -i`, the seed scenario run
//! with the installed `/usr/bin/kuryr` serving the lab's dockerd, upgraded
//! over itself (a new revision: the edited conffile is kept), removed
//! (`dpkg -r`: the conffile stays) and purged (`dpkg --purge`): nothing
//! it installed or made is left.
//!
//! It replaces the lab's driver daemon for its run (and puts the build
//! tree's back at the end, whatever happens): an `alone_*` test, run with
//! the exclusive lab lock (`flock -x /tmp/kuryr-lab.lock`).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::docker_cli::*;
use common::env::{TempDir, output_text, repo_root, unique};
use common::lab::{self, Lab};
use kuryr::package;
use kuryr::paths;

/// Where a package installs or makes files (and where `deb-systemd-helper`
/// keeps its state): compared before install and after purge.
const WATCHED: &[&str] = &[
    "/etc",
    "/usr/bin",
    "/usr/share/man/man1",
    "/usr/share/doc",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/var/lib/systemd",
    "/var/log",
];

/// Every path under the watched directories (dpkg's own database aside).
fn snapshot() -> BTreeSet<String> {
    let out = Command::new("find")
        .args(WATCHED.iter().filter(|d| Path::new(d).exists()))
        .args(["-xdev"])
        .output()
        .expect("find");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        // The lab and other daemons write logs all the time.
        .filter(|l| !l.starts_with("/var/log/") || l.contains("kuryr"))
        .filter(|l| !l.starts_with("/var/log/kuryr-lab"))
        .map(str::to_string)
        .collect()
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        output_text(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn installed_version() -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Status} ${Version}", "kuryr"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.starts_with("install ok installed")
        .then(|| text.rsplit(' ').next().unwrap_or_default().to_string())
}

/// Build the package with the documented command; a copy of it in `dir`.
fn build(revision: &str, dir: &TempDir) -> String {
    let script = repo_root().join("packaging/build-deb");
    let out = Command::new(&script)
        .args(["--deb-revision", revision])
        .output()
        .expect("run packaging/build-deb");
    assert!(
        out.status.success(),
        "packaging/build-deb: {}",
        output_text(&out)
    );
    let deb = String::from_utf8_lossy(&out.stdout)
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(
        deb.ends_with(".deb") && Path::new(&deb).exists(),
        "no .deb printed: {}",
        output_text(&out)
    );
    let copy = dir.join(&format!("kuryr-{revision}.deb"));
    std::fs::copy(&deb, &copy).unwrap();
    copy.display().to_string()
}

/// Purges the package and gives the lab its own daemon back, whatever
/// happened.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        if installed_version().is_some() || Path::new(package::BINARY).exists() {
            let _ = Command::new("dpkg").args(["--purge", "kuryr"]).output();
        }
        restart_daemon();
    }
}

/// Docker's seed scenario against the daemon now serving the lab.
async fn seed_scenario(lab: &Lab) {
    let name = unique("pkg");
    let subnet = lab.cidr4(0);
    let mut cleanup = Cleanup::new();
    cleanup.kuryr_network(&name, Some(&subnet), &[]);
    let nid = network_id(&name);
    lab.track_network(&nid);
    let net = lab.network_of(&nid).await;
    let c = format!("{name}-c");
    cleanup.container(&c, &name, &[]);
    let ports = lab.kuryr_ports_in(&net.id).await;
    assert_eq!(ports.len(), 1, "{ports:#?}");
    assert_eq!(ports[0].status, "ACTIVE");
    let ip = &ports[0].fixed_ips[0].ip_address;
    let (ok, addr) = exec(&c, &["ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(ok && addr.contains(&format!("inet {ip}/24")), "{addr}");
    docker_ok(&["rm", "-f", &c]);
    cleanup.containers.clear();
    docker_ok(&["network", "rm", &name]);
    cleanup.networks.clear();
    assert!(lab.networks_of(&nid).await.is_empty());
}

/// The daemon serving the lab's socket runs `binary`.
fn serving_binary() -> String {
    let record = format!("{}/run/kuryr.pid", common::env::lab_dir());
    let pid = std::fs::read_to_string(record).unwrap();
    let pid = pid.split_whitespace().next().unwrap().to_string();
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .unwrap()
        .display()
        .to_string()
}

#[tokio::test]
async fn install_run_upgrade_remove_purge() {
    if Command::new("dpkg").arg("--version").output().is_err() {
        panic!("dpkg is missing: this test needs a Debian machine");
    }
    assert!(
        installed_version().is_none() && !Path::new(paths::ETC_KURYR).exists(),
        "kuryr is already installed here (or /etc/kuryr exists): this test installs and purges it"
    );
    let debs = TempDir::new("kuryr-debs-");
    let first = build("1", &debs);
    let second = build("2", &debs);
    let before = snapshot();
    let _restore = Restore;

    run("dpkg", &["-i", &first]);
    assert_eq!(installed_version().as_deref(), Some("0.1.0-1"));
    for f in [
        package::BINARY,
        "/usr/bin/kuryr-server",
        package::UNIT,
        paths::KURYR_CONF,
        "/usr/share/man/man1/kuryr.1.gz",
        "/usr/share/man/man1/kuryr-status.1.gz",
        "/usr/share/man/man1/kuryr-server.1.gz",
        "/usr/share/doc/kuryr/copyright",
        "/usr/share/doc/kuryr/changelog.Debian.gz",
    ] {
        assert!(Path::new(f).exists(), "{f} not installed");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = || {
        std::fs::metadata(paths::KURYR_CONF)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(), 0o600, "kuryr.conf holds a credential");
    let conffiles = run("dpkg-query", &["-W", "-f", "${Conffiles}", "kuryr"]);
    assert!(conffiles.contains(paths::KURYR_CONF), "{conffiles}");
    let unit = std::fs::read_to_string(package::UNIT).unwrap();
    assert_eq!(
        unit,
        package::unit(),
        "the unit is the one the code renders"
    );
    assert!(run(package::BINARY, &["--version"]).contains(env!("CARGO_PKG_VERSION")));
    let check = Command::new(package::BINARY)
        .args(["check-config", "--config-file", paths::KURYR_CONF])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "the example kuryr.conf: {}",
        output_text(&check)
    );
    let man = run("zcat", &["/usr/share/man/man1/kuryr-status.1.gz"]);
    assert!(man.contains(".TH") && man.contains("json"), "{man}");

    lab::run(async |lab: &Lab| {
        // The lab's dockerd now reaches the installed binary.
        let out = Command::new(repo_root().join("lab/kuryr-up"))
            .arg(package::BINARY)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "lab/kuryr-up {}: {}",
            package::BINARY,
            output_text(&out)
        );
        assert_eq!(serving_binary(), package::BINARY);
        seed_scenario(lab).await;
        // Off the installed binary before it is replaced and removed.
        restart_daemon();
    })
    .await;

    // Upgrade over itself: the operator's kuryr.conf stays as edited.
    let mut conf = std::fs::read_to_string(paths::KURYR_CONF).unwrap();
    conf.push_str("\n# edited by the operator\n");
    std::fs::write(paths::KURYR_CONF, &conf).unwrap();
    let out = Command::new("dpkg")
        .args(["-i", &second])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap();
    assert!(out.status.success(), "upgrade: {}", output_text(&out));
    assert_eq!(installed_version().as_deref(), Some("0.1.0-2"));
    assert_eq!(
        std::fs::read_to_string(paths::KURYR_CONF).unwrap(),
        conf,
        "the conffile was overwritten"
    );
    assert_eq!(mode(), 0o600);

    // Remove: the binaries go, the conffile stays; purge: nothing stays.
    run("dpkg", &["-r", "kuryr"]);
    assert!(!Path::new(package::BINARY).exists());
    assert!(!Path::new(package::UNIT).exists());
    assert!(
        Path::new(paths::KURYR_CONF).exists(),
        "dpkg -r keeps conffiles"
    );
    run("dpkg", &["--purge", "kuryr"]);
    assert!(installed_version().is_none());
    let after = snapshot();
    let left: Vec<_> = after.difference(&before).collect();
    assert!(left.is_empty(), "left behind after purge: {left:#?}");
    let gone: Vec<_> = before.difference(&after).collect();
    assert!(
        gone.is_empty(),
        "removed although not the package's: {gone:#?}"
    );
}
