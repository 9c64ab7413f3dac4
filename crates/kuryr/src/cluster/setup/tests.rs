//! Node setup into scratch roots (files, idempotence, drift, dry runs), and
//! with a recording fake for the commands a live root runs.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::SystemTime;

use serde_json::json;

use super::files::{effective_uid, group_gid};
use super::*;
use crate::cluster::render;
use crate::config::Config;

/// A scratch directory with a template, parameters and a root.
pub(super) struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    pub(super) fn new(
        name: &str,
        template: serde_json::Value,
        params: serde_json::Value,
    ) -> Scratch {
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

    pub(super) fn opts(&self, dry_run: bool) -> SetupOptions {
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

    pub(super) fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    pub(super) fn run(&self, dry_run: bool) -> (Outcome, String) {
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

pub(super) fn agent_template() -> serde_json::Value {
    json!({"name": "swarm-kuryr", "coe": "swarm-mode", "network_driver": "kuryr",
           "labels": {"kuryr_mode": "agent"}})
}

pub(super) fn agent_params() -> serde_json::Value {
    json!({
        "keystone": {"auth_url": "https://keystone.example.com:5000/v3",
                     "ca_pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
        "credential": {"type": "application_credential", "application_credential_id": "8f0c1d",
                       "application_credential_secret": "s3cr3t-never-printed"},
        "agent": {"local_ip": "10.0.0.11", "transport_url": "rabbit://n:bus-secret@10.0.0.1:5672/"},
        "init": "systemd"
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
        std::fs::read_to_string(s.root().join("usr/lib/docker/plugins/kuryr/kuryr.spec")).unwrap(),
        "http://127.0.0.1:23750\n"
    );
    assert!(
        !s.root().join("etc/neutron").exists(),
        "no agent in nested mode"
    );
}

pub(super) fn managed_params() -> serde_json::Value {
    let mut p = agent_params();
    p["driver"] = json!({"plugin": "managed", "plugin_binary": fake_static_kuryr()});
    p
}

/// A statically linked "kuryr" for the bundle (a synthetic ELF header:
/// the test binary itself is dynamically linked).
pub(super) fn fake_static_kuryr() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("kuryr-static-{}", std::process::id()));
        std::fs::write(&path, super::elf::synthetic(None)).unwrap();
        path
    })
    .clone()
}

pub(super) fn nested_template() -> serde_json::Value {
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
        text.contains("\nskipped (not the live root): docker plugin enable kuryr/kuryr:latest\n"),
        "{text}"
    );
    assert_eq!(dry.commands_run, 0);

    let (first, text) = s.run(false);
    assert!(first.changed() >= 4, "{text}");
    assert_eq!(
        std::fs::read(root.join("var/lib/kuryr/plugin/rootfs/usr/bin/kuryr")).unwrap(),
        std::fs::read(fake_static_kuryr()).unwrap()
    );
    let mut expected = vec!["usr/bin/kuryr"];
    if Path::new(crate::paths::SYSTEM_CA_BUNDLE).is_file() {
        expected.insert(0, "etc/ssl/certs/ca-certificates.crt");
    }
    assert_eq!(
        rootfs_files(&root.join("var/lib/kuryr/plugin/rootfs")),
        expected,
        "the binary and the CA bundle, nothing else"
    );
    let config = std::fs::read_to_string(root.join("var/lib/kuryr/plugin/config.json")).unwrap();
    assert_eq!(config, render::plugin_config_json("/etc/kuryr", false));
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

/// The regular files under `dir`, relative, sorted.
fn rootfs_files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path.strip_prefix(base).unwrap();
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn managed_mode_refuses_a_dynamically_linked_binary() {
    let dir = std::env::temp_dir().join(format!("kuryr-dynamic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dynamic = dir.join("kuryr-dynamic");
    std::fs::write(
        &dynamic,
        super::elf::synthetic(Some("/lib64/ld-linux-x86-64.so.2")),
    )
    .unwrap();
    let script = dir.join("kuryr-script");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();

    // The running binary, when no plugin_binary is given.
    let running = dynamic.clone();
    let err = plugin_binary_error(None, &running);
    assert_eq!(
        err,
        format!(
            "driver.plugin_binary: this kuryr ({}) is dynamically linked (it needs \
             /lib64/ld-linux-x86-64.so.2): the managed plugin's root file system holds one statically \
             linked kuryr and the CA bundle, no shared library. Build one with `packaging/build-static \
             --release` and set driver.plugin_binary to it (or run node setup with it)",
            running.display()
        )
    );
    // driver.plugin_binary names a dynamic binary, or no binary at all.
    let err = plugin_binary_error(Some(&dynamic), &running);
    assert!(
        err.starts_with(&format!(
            "driver.plugin_binary: driver.plugin_binary {} is dynamically linked (it needs \
             /lib64/ld-linux-x86-64.so.2): ",
            dynamic.display()
        )),
        "{err}"
    );
    assert!(
        err.ends_with("build one with `packaging/build-static --release`"),
        "{err}"
    );
    let err = plugin_binary_error(Some(&script), &running);
    assert!(
        err.contains(" is not an executable kuryr (not an ELF file): "),
        "{err}"
    );
    // A static one is taken as it is, given or running.
    let fake = fake_static_kuryr();
    let ok = std::fs::read(&fake).unwrap();
    assert_eq!(
        super::plugin::static_binary(Some(&fake), &running).unwrap(),
        ok
    );
    assert_eq!(super::plugin::static_binary(None, &fake).unwrap(), ok);

    // Through node setup: invalid input, nothing written, no command run.
    let mut params = managed_params();
    params["driver"]["plugin_binary"] = json!(dynamic);
    let s = Scratch::new("managed-dynamic", nested_template(), params);
    let mut out = Vec::new();
    let mut rec = Recording::default();
    let err = run_with(&s.opts(false), &mut out, &mut rec).unwrap_err();
    assert!(matches!(err, ClusterError::Invalid(_)), "{err}");
    assert!(s.snapshot().is_empty());
    assert!(rec.lines.is_empty(), "{:?}", rec.lines);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn plugin_binary_error(given: Option<&Path>, running: &Path) -> String {
    match super::plugin::static_binary(given, running) {
        Err(ClusterError::Invalid(problems)) => problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect::<Vec<_>>()
            .join("\n"),
        other => panic!("{other:?}"),
    }
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

// --- The commands of a live node, through the recording fake ---

use std::collections::BTreeSet;

use super::runner::{Finished, Recording, Runner};
use crate::cluster::render::{NodeFacts, Plan};
use crate::cluster::template::NetworkDriverPolicy;
use crate::cluster::{ClusterParams, ClusterTemplate};

pub(super) const DOCKER_HOST: &str = "unix:///fake/docker.sock";
pub(super) const DOCKER: &str = "docker -H unix:///fake/docker.sock";

pub(super) fn exit(code: i32, stdout: &str, stderr: &str) -> Result<Finished, String> {
    Ok(Finished::exit(code, stdout, stderr))
}

/// Managed mode setup of a scratch root against a fake dockerd.
pub(super) fn run_managed(s: &Scratch, rec: &mut Recording) -> (Outcome, String) {
    let mut opts = s.opts(false);
    opts.docker_host = Some(DOCKER_HOST.into());
    let mut out = Vec::new();
    let outcome = run_with(&opts, &mut out, rec).expect("setup runs");
    (outcome, String::from_utf8(out).unwrap())
}

pub(super) fn inspect() -> String {
    format!("{DOCKER} plugin inspect -f {{{{.Enabled}}}} kuryr/kuryr:latest")
}

pub(super) fn plugin_absent() -> Recording {
    Recording::default().answer(
        &inspect(),
        exit(1, "", "Error: No such plugin: kuryr/kuryr:latest"),
    )
}

pub(super) fn plugin_enabled(enabled: &str) -> Recording {
    Recording::default().answer(&inspect(), exit(0, &format!("{enabled}\n"), ""))
}

/// `docker plugin rm` (optionally), `create`, `set`, `enable` for `root`.
pub(super) fn plugin_install(root: &Path, rm: bool) -> Vec<String> {
    let root = std::fs::canonicalize(root).unwrap();
    let mut lines = Vec::new();
    if rm {
        lines.push(format!("{DOCKER} plugin rm -f kuryr/kuryr:latest"));
    }
    lines.push(format!(
        "{DOCKER} plugin create kuryr/kuryr:latest {}/var/lib/kuryr/plugin",
        root.display()
    ));
    lines.push(format!(
        "{DOCKER} plugin set kuryr/kuryr:latest etc-kuryr.source={}/etc/kuryr",
        root.display()
    ));
    lines.push(format!("{DOCKER} plugin enable kuryr/kuryr:latest"));
    lines
}

#[test]
fn managed_plugin_absent_is_created_set_and_enabled() {
    let s = Scratch::new("fake-absent", nested_template(), managed_params());
    let mut rec = plugin_absent();
    let (outcome, text) = run_managed(&s, &mut rec);
    let mut expected = vec![inspect()];
    expected.extend(plugin_install(&s.root(), false));
    assert_eq!(rec.lines, expected, "{text}");
    assert_eq!(outcome.commands_run, 3);
    assert!(!outcome.failed);
    assert!(
        text.contains(&format!("\nrun: {}\n", expected[1])),
        "{text}"
    );
    assert!(
        s.root()
            .join("var/lib/kuryr/plugin/rootfs/etc/kuryr")
            .is_dir(),
        "the plugin's mount points are made before docker plugin create"
    );
}

#[test]
fn managed_plugin_installed_with_the_same_digest_is_left_alone() {
    let s = Scratch::new("fake-same", nested_template(), managed_params());
    run_managed(&s, &mut plugin_absent());
    let mut rec = plugin_enabled("true");
    let (outcome, text) = run_managed(&s, &mut rec);
    assert_eq!(rec.lines, vec![inspect()], "{text}");
    assert_eq!((outcome.changed(), outcome.commands_run), (0, 0), "{text}");
    assert!(
        text.contains("\nunchanged: plugin kuryr/kuryr:latest is installed and enabled\n"),
        "{text}"
    );

    // Installed but disabled: enabled, nothing else.
    let mut rec = plugin_enabled("false");
    let (outcome, _) = run_managed(&s, &mut rec);
    let enable = format!("{DOCKER} plugin enable kuryr/kuryr:latest");
    assert_eq!(rec.lines, vec![inspect(), enable]);
    assert_eq!(outcome.commands_run, 1);
}

#[test]
fn managed_plugin_with_another_digest_is_replaced() {
    let s = Scratch::new("fake-other", nested_template(), managed_params());
    run_managed(&s, &mut plugin_absent());
    let digest = s.root().join("var/lib/kuryr/plugin.digest");
    std::fs::write(&digest, "fnv1a64:0000000000000000\n").unwrap();
    let mut rec = plugin_enabled("true");
    let (outcome, text) = run_managed(&s, &mut rec);
    assert!(
        text.contains("\nupdate /var/lib/kuryr/plugin.digest (0644): contents\n"),
        "{text}"
    );
    let mut expected = vec![inspect()];
    expected.extend(plugin_install(&s.root(), true));
    assert_eq!(rec.lines, expected, "{text}");
    assert_eq!(outcome.commands_run, 4);
}

#[test]
fn a_failing_plugin_command_stops_setup() {
    let s = Scratch::new("fake-fail", nested_template(), managed_params());
    let create = format!("{DOCKER} plugin create");
    let mut rec = plugin_absent().answer(
        &create,
        exit(
            1,
            "",
            "some detail\nError response from daemon: plugin already exists",
        ),
    );
    let (outcome, text) = run_managed(&s, &mut rec);
    assert!(outcome.failed);
    assert_eq!(outcome.commands_run, 1);
    assert_eq!(
        rec.lines.len(),
        2,
        "no set or enable after the failure: {text}"
    );
    let line = format!(
        "failed: {}: Error response from daemon: plugin already exists (exit status: 1)\n",
        rec.lines[1]
    );
    assert!(text.ends_with(&line), "{text}");
    assert!(!text.contains("done:"), "{text}");
}

#[test]
fn off_the_live_root_no_command_runs() {
    let s = Scratch::new("fake-off", agent_template(), agent_params());
    let mut rec = Recording::default();
    let mut out = Vec::new();
    let outcome = run_with(&s.opts(false), &mut out, &mut rec).expect("setup runs");
    assert_eq!(rec.lines, Vec::<String>::new(), "not even a look");
    assert_eq!(outcome.commands_run, 0);
}

/// An agent-mode (Open vSwitch) plan, packages installed with `install`.
pub(super) fn agent_plan(agent: serde_json::Value) -> Plan {
    let mut p = agent_params();
    for (k, v) in agent.as_object().unwrap() {
        p["agent"][k] = v.clone();
    }
    let t = ClusterTemplate::from_json(
        &agent_template().to_string(),
        &NetworkDriverPolicy::default(),
    )
    .unwrap();
    let p = ClusterParams::from_json(&p.to_string()).unwrap();
    let facts = NodeFacts {
        hostname: "node-1".into(),
        local_ip: Some("10.0.0.11".parse().unwrap()),
        init: render::Init::Systemd,
    };
    render::render(&t, &p, Role::Worker, &facts).unwrap()
}

/// The service steps of `plan` on a live root (or a dry run of them), the
/// files in `changed` having been created or updated. Returns whether
/// every command succeeded, the outcome and the output.
pub(super) fn live_steps(
    plan: &Plan,
    changed: &BTreeSet<PathBuf>,
    dry_run: bool,
    rec: &mut Recording,
) -> (bool, Outcome, String) {
    let mut runner = Runner {
        live: true,
        dry_run,
        docker_host: None,
        root: PathBuf::from("/"),
        commands: rec,
    };
    let mut out = Vec::new();
    let mut outcome = Outcome {
        plan: plan.clone(),
        files: Vec::new(),
        commands_run: 0,
        failed: false,
    };
    let ok = runner
        .install_packages(plan, &mut out, &mut outcome)
        .unwrap()
        && runner
            .services(plan, changed, &mut out, &mut outcome)
            .unwrap();
    (ok, outcome, String::from_utf8(out).unwrap())
}

pub(super) const DPKG: &str = "dpkg-query -W -f=${db:Status-Status}";
pub(super) const APT_GET: &str = "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
                       -o Dpkg::Options::=--force-confold";

pub(super) fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn agent_mode_first_run_on_a_live_root() {
    let plan = agent_plan(json!({"install": "apt"}));
    let every_file: BTreeSet<PathBuf> = plan.files.keys().cloned().collect();
    let mut rec = Recording::default()
        .answer(
            &format!("{DPKG} openvswitch-switch"),
            exit(0, "installed", ""),
        )
        .answer(
            &format!("{DPKG} neutron-openvswitch-agent"),
            exit(
                1,
                "",
                "dpkg-query: no packages found matching neutron-openvswitch-agent",
            ),
        )
        .answer("ovs-vsctl --timeout=10 br-exists br-int", exit(2, "", ""))
        .answer(
            "systemctl is-enabled --quiet neutron-openvswitch-agent",
            exit(1, "", ""),
        )
        .answer(
            "systemctl is-active --quiet neutron-openvswitch-agent",
            exit(3, "", ""),
        );
    let (ok, outcome, text) = live_steps(&plan, &every_file, false, &mut rec);
    assert!(ok && !outcome.failed, "{text}");
    let apt = format!("{APT_GET} neutron-openvswitch-agent");
    let dpkg_ovs = format!("{DPKG} openvswitch-switch");
    let dpkg_agent = format!("{DPKG} neutron-openvswitch-agent");
    assert_eq!(
        rec.lines,
        lines(&[
            &dpkg_ovs,
            &dpkg_agent,
            &apt,
            "systemctl daemon-reload",
            "systemctl is-enabled --quiet openvswitch-switch",
            "systemctl is-active --quiet openvswitch-switch",
            "ovs-vsctl --timeout=10 br-exists br-int",
            "ovs-vsctl --timeout=10 --may-exist add-br br-int -- set Bridge br-int datapath_type=system",
            "systemctl is-enabled --quiet neutron-openvswitch-agent",
            "systemctl is-active --quiet neutron-openvswitch-agent",
            "systemctl enable --now neutron-openvswitch-agent",
            "systemctl is-enabled --quiet kuryr.service",
            "systemctl is-active --quiet kuryr.service",
            "systemctl restart kuryr.service",
        ])
    );
    assert_eq!(outcome.commands_run, 5);
    assert!(
        text.contains("\nunchanged: openvswitch-switch is enabled and running\n"),
        "{text}"
    );
    assert!(text.starts_with(&format!("run: {apt}\n")), "{text}");
    assert!(
        !text.contains("restart neutron-openvswitch-agent"),
        "a unit that was not running is started, not restarted: {text}"
    );
}

#[test]
fn agent_mode_on_a_node_already_set_up_only_looks() {
    let plan = agent_plan(json!({"install": "apt"}));
    let mut rec = Recording::default()
        .answer(DPKG, exit(0, "installed", ""))
        .answer(
            "ovs-vsctl --timeout=10 get Bridge br-int datapath_type",
            exit(0, "\"\"\n", ""),
        );
    let (ok, outcome, text) = live_steps(&plan, &BTreeSet::new(), false, &mut rec);
    assert!(ok, "{text}");
    assert_eq!(outcome.commands_run, 0, "{text}");
    assert_eq!(
        rec.lines,
        lines(&[
            &format!("{DPKG} openvswitch-switch"),
            &format!("{DPKG} neutron-openvswitch-agent"),
            "systemctl is-enabled --quiet openvswitch-switch",
            "systemctl is-active --quiet openvswitch-switch",
            "ovs-vsctl --timeout=10 br-exists br-int",
            "ovs-vsctl --timeout=10 get Bridge br-int datapath_type",
            "systemctl is-enabled --quiet neutron-openvswitch-agent",
            "systemctl is-active --quiet neutron-openvswitch-agent",
            "systemctl is-enabled --quiet kuryr.service",
            "systemctl is-active --quiet kuryr.service",
        ])
    );
    assert_eq!(
        text,
        "unchanged: packages openvswitch-switch neutron-openvswitch-agent installed\n\
         unchanged: openvswitch-switch is enabled and running\n\
         unchanged: Open vSwitch bridge br-int exists (datapath system)\n\
         unchanged: neutron-openvswitch-agent is enabled and running\n\
         unchanged: kuryr.service is enabled and running\n"
    );
}

#[test]
fn agent_mode_with_dnf_and_another_datapath() {
    let plan = agent_plan(json!({"install": "dnf", "datapath_type": "netdev"}));
    let mut rec = Recording::default()
        .answer("rpm -q openvswitch", exit(0, "openvswitch-3.1", ""))
        .answer("rpm -q", exit(1, "", "package is not installed"))
        .answer(
            "ovs-vsctl --timeout=10 get Bridge br-int datapath_type",
            exit(0, "system\n", ""),
        );
    let (ok, outcome, text) = live_steps(&plan, &BTreeSet::new(), false, &mut rec);
    assert!(ok, "{text}");
    let run: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("run: "))
        .collect();
    assert_eq!(
        run,
        vec![
            "dnf install -y openstack-neutron-openvswitch",
            "ovs-vsctl --timeout=10 --may-exist add-br br-int -- set Bridge br-int datapath_type=netdev",
        ]
    );
    assert_eq!(outcome.commands_run, 2);
}

#[test]
fn a_dry_run_on_a_live_root_looks_but_changes_nothing() {
    let plan = agent_plan(json!({"install": "apt"}));
    let every_file: BTreeSet<PathBuf> = plan.files.keys().cloned().collect();
    let mut rec = Recording::default()
        .answer(DPKG, exit(1, "", ""))
        .answer("systemctl is-", exit(1, "", ""))
        .answer("ovs-vsctl --timeout=10 br-exists", exit(2, "", ""));
    let (ok, outcome, text) = live_steps(&plan, &every_file, true, &mut rec);
    assert!(ok, "{text}");
    assert_eq!(outcome.commands_run, 0);
    assert!(
        rec.lines.iter().all(|l| l.starts_with("dpkg-query")
            || l.starts_with("systemctl is-")
            || l.starts_with("ovs-vsctl --timeout=10 br-exists")),
        "only looks: {:?}",
        rec.lines
    );
    assert!(
        text.contains("\nwould run: systemctl enable --now neutron-openvswitch-agent\n"),
        "{text}"
    );
    assert!(
        text.contains("\nwould run: systemctl daemon-reload\n"),
        "{text}"
    );
}

#[test]
fn a_failing_command_stops_the_steps() {
    let plan = agent_plan(json!({"install": "apt"}));
    let mut rec = Recording::default()
        .answer(DPKG, exit(0, "installed", ""))
        .answer(
            "systemctl is-enabled --quiet openvswitch-switch",
            exit(1, "", ""),
        )
        .answer(
            "systemctl enable --now openvswitch-switch",
            exit(
                1,
                "",
                "Failed to enable unit: Unit file openvswitch-switch.service does not exist.\n",
            ),
        );
    let (ok, outcome, text) = live_steps(&plan, &BTreeSet::new(), false, &mut rec);
    assert!(!ok && outcome.failed);
    assert_eq!(
        rec.lines.last().map(String::as_str),
        Some("systemctl enable --now openvswitch-switch"),
        "nothing runs after the failure"
    );
    assert!(
        text.ends_with(
            "\nfailed: systemctl enable --now openvswitch-switch: Failed to enable unit: Unit file \
             openvswitch-switch.service does not exist. (exit status: 1)\n"
        ),
        "{text}"
    );

    // A command that cannot start at all stops setup the same way.
    let mut rec = Recording::default().answer(DPKG, exit(1, "", "")).answer(
        "DEBIAN_FRONTEND=noninteractive apt-get",
        Err("No such file or directory (os error 2)".into()),
    );
    let (ok, outcome, text) = live_steps(&plan, &BTreeSet::new(), false, &mut rec);
    assert!(!ok && outcome.failed);
    assert_eq!(rec.lines.len(), 3, "two looks and apt-get: {:?}", rec.lines);
    assert!(
        text.ends_with(&format!(
            "\nfailed: {APT_GET} openvswitch-switch neutron-openvswitch-agent: No such file or directory \
             (os error 2)\n"
        )),
        "{text}"
    );
}
