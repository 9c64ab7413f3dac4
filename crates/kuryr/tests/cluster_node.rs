//! `kuryr template` and `kuryr node` through the built binary: node setup
//! into a temporary root (never the machine's /etc), then `kuryr node check`
//! on the configuration it wrote, against the running lab (Keystone,
//! Neutron, the OVS agent, the kuryr daemon and dockerd).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::docker_cli::ensure_daemon;
use common::env::{TempDir, repo_root, stdout_stderr as text, var};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_kuryr");

fn kuryr(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run kuryr")
}

/// A scratch directory with a `root/` for node setup, removed at the end.
struct Scratch(TempDir);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = TempDir::new(&format!("kuryr-cluster-{name}-"));
        std::fs::create_dir_all(dir.join("root")).unwrap();
        Scratch(dir)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    fn write(&self, rel: &str, v: &Value) -> String {
        let p = self.path(rel);
        std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
        p.display().to_string()
    }

    fn files(&self) -> Vec<(PathBuf, std::time::SystemTime)> {
        fn walk(d: &Path, out: &mut Vec<(PathBuf, std::time::SystemTime)>) {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push((p.clone(), p.metadata().unwrap().modified().unwrap()));
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.path("root"), &mut out);
        out.sort();
        out
    }
}

fn setup(s: &Scratch, template: &str, params: &str, extra: &[&str]) -> (Output, String) {
    let root = s.path("root").display().to_string();
    let mut args = vec![
        "node",
        "setup",
        "--template",
        template,
        "--params",
        params,
        "--role",
        "worker",
        "--root",
        &root,
    ];
    args.extend(extra);
    let out = kuryr(&args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "node setup failed: {stdout}{stderr}");
    (out, stdout)
}

#[test]
fn documented_examples_validate() {
    let out = kuryr(&[
        "template",
        "validate",
        "--template",
        &repo_root()
            .join("docs/examples/cluster-template.json")
            .display()
            .to_string(),
        "--params",
        &repo_root()
            .join("docs/examples/cluster-params.json")
            .display()
            .to_string(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let effective: Value = serde_json::from_str(&stdout).expect("prints JSON");
    assert_eq!(effective["network_driver"], "kuryr");
    assert_eq!(effective["coe"], "swarm-mode");
}

#[test]
fn invalid_template_lists_every_problem() {
    let s = Scratch::new("invalid");
    let t = s.write(
        "t.json",
        &json!({"coe": "swarm", "network_driver": "Kuryr",
                "labels": {"kuryr_mode": "macvlan", "kuryr_scope": "global"}}),
    );
    let out = kuryr(&["template", "validate", "--template", &t]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stdout.is_empty());
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        vec![
            "kuryr: 3 problems found:",
            "  network_driver: Network driver type Kuryr is not supported, expecting a docker/flannel/kuryr/unspecified network driver.",
            "  labels/kuryr_mode: property \"labels/kuryr_mode\" with value \"macvlan\" is not supported, supported values are: agent, nested, vlan",
            "  labels/kuryr_scope: property \"labels/kuryr_scope\" with value \"global\" requires coe swarm-mode, but coe is swarm: \
             Docker 23 and later keep global-scope networks only in swarm mode (classic Swarm needed the removed --cluster-store); \
             use kuryr_scope local",
        ]
    );
    // node setup refuses the same inputs and writes nothing.
    let p = s.write(
        "p.json",
        &json!({"keystone": {"auth_url": "https://k/v3"},
                "credential": {"type": "application_credential", "application_credential_id": "a",
                               "application_credential_secret": "b"}}),
    );
    let root = s.path("root").display().to_string();
    let out = kuryr(&[
        "node",
        "setup",
        "--template",
        &t,
        "--params",
        &p,
        "--role",
        "manager",
        "--root",
        &root,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(s.files().is_empty());
}

#[test]
fn access_rules_are_json() {
    let out = kuryr(&["template", "access-rules"]);
    assert!(out.status.success());
    let rules: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON list");
    // As many as the driver's client methods need (the unit tests of
    // cluster/access_rules check which).
    let expected =
        kuryr::cluster::access_rules::rules_for(kuryr::cluster::access_rules::DRIVER_USES).len();
    assert_eq!(rules.len(), expected);
    assert_eq!(rules.len(), 36);
    assert!(rules.iter().all(|r| r["service"] == "network"));
    let out = kuryr(&["template", "access-rules", "--with-check"]);
    let rules: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON list");
    assert!(
        rules.contains(&json!({"service": "network", "method": "GET", "path": "/v2.0/agents"}))
    );
}

fn agent_template() -> Value {
    json!({"name": "lab", "coe": "swarm-mode", "network_driver": "kuryr",
           "labels": {"kuryr_mode": "agent", "kuryr_agent_type": "ovs", "kuryr_subnetpool": "kuryr"}})
}

fn offline_params() -> Value {
    json!({
        "keystone": {"auth_url": "https://keystone.example.com:5000/v3"},
        "credential": {"type": "application_credential", "application_credential_id": "8f0c1d",
                       "application_credential_secret": "never-printed-secret"},
        "agent": {"local_ip": "127.0.0.1", "datapath_type": "netdev"},
        // The units are what this file checks (this machine runs no
        // systemd: `auto` would start processes).
        "init": "systemd"
    })
}

#[test]
fn setup_into_a_temp_root_twice_changes_nothing_the_second_time() {
    let s = Scratch::new("idempotent");
    let t = s.write("t.json", &agent_template());
    let p = s.write("p.json", &offline_params());

    let (_, dry) = setup(&s, &t, &p, &["--dry-run", "--hostname", "node-1"]);
    assert!(s.files().is_empty(), "dry run wrote files: {dry}");
    assert!(
        dry.contains("\ncreate /etc/kuryr/kuryr.conf (0600)\n"),
        "{dry}"
    );

    let (_, first) = setup(&s, &t, &p, &["--hostname", "node-1"]);
    for path in [
        "/etc/kuryr/kuryr.conf",
        "/etc/neutron/plugins/ml2/openvswitch_agent.ini",
        "/etc/systemd/system/kuryr.service",
        "/etc/systemd/system/docker.service.d/kuryr.conf",
    ] {
        assert!(
            first.contains(&format!("\ncreate {path} (")),
            "{path}: {first}"
        );
    }
    assert!(
        first.contains("\nskipped (not the live root): systemctl enable --now kuryr.service\n"),
        "{first}"
    );
    assert!(!first.contains("never-printed-secret"), "{first}");
    let conf = std::fs::read_to_string(s.path("root/etc/kuryr/kuryr.conf")).unwrap();
    assert!(conf.contains("\nhost = node-1\n"), "{conf}");
    let files = s.files();
    assert_eq!(files.len(), 4);

    std::thread::sleep(std::time::Duration::from_millis(20));
    let (_, second) = setup(&s, &t, &p, &["--hostname", "node-1"]);
    let file_lines: Vec<&str> = second
        .lines()
        .filter(|l| {
            l.starts_with("create")
                || l.starts_with("update")
                || l.starts_with("remove")
                || l.starts_with("unchanged /")
        })
        .collect();
    assert_eq!(file_lines.len(), 4, "{second}");
    assert!(
        file_lines.iter().all(|l| l.starts_with("unchanged ")),
        "{second}"
    );
    assert!(
        second.ends_with("done: 0 created, 0 updated, 4 unchanged, 0 removed\n"),
        "{second}"
    );
    assert_eq!(s.files(), files, "no file rewritten (same mtimes)");

    // Another binding host is a change of exactly the two files that hold it.
    let (_, third) = setup(&s, &t, &p, &["--hostname", "node-2"]);
    assert!(
        third.contains("\nupdate /etc/kuryr/kuryr.conf (0600): contents\n"),
        "{third}"
    );
    assert!(
        third.contains("\nupdate /etc/neutron/plugins/ml2/openvswitch_agent.ini (0640, group neutron): contents"),
        "{third}"
    );
    assert!(
        third.contains("\nunchanged /etc/systemd/system/kuryr.service (0644)\n"),
        "{third}"
    );
    assert!(
        third.contains(
            "\nskipped (not the live root): systemctl restart neutron-openvswitch-agent\n"
        ),
        "{third}"
    );
}

/// Parameters for the lab's kuryr account.
fn lab_params(credential: Value) -> Value {
    json!({
        "keystone": {"auth_url": var("OS_AUTH_URL"), "region_name": var("OS_REGION_NAME"),
                     "interface": "public"},
        "credential": credential,
        "agent": {"local_ip": "127.0.0.1", "datapath_type": "netdev", "l2_population": true}
    })
}

fn lab_password(password: &str) -> Value {
    json!({"type": "password", "username": var("KURYR_LAB_KURYR_USERNAME"),
           "user_domain_name": "Default", "password": password,
           "project_name": var("KURYR_LAB_KURYR_PROJECT"), "project_domain_name": "Default"})
}

/// `node setup` for the lab host into a temp root, then `node check` on
/// the kuryr.conf it wrote.
fn setup_and_check(name: &str, credential: Value) -> (Output, String) {
    let s = Scratch::new(name);
    let t = s.write("t.json", &agent_template());
    let p = s.write("p.json", &lab_params(credential));
    setup(&s, &t, &p, &["--hostname", &var("KURYR_LAB_HOST")]);
    // The check asks the lab's driver daemon: make sure this build runs.
    ensure_daemon();
    let conf = s.path("root/etc/kuryr/kuryr.conf").display().to_string();
    let check = || {
        kuryr(&[
            "node",
            "check",
            "--config-file",
            &conf,
            "--docker-host",
            "unix:///run/docker.sock",
        ])
    };
    let mut out = check();
    // Other lab tests restart the shared driver daemon; a check that only
    // caught it restarting is retried.
    for _ in 0..5 {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let only_daemon = stdout
            .lines()
            .filter(|l| l.starts_with("FAIL"))
            .all(|l| l.starts_with("FAIL driver:") || l.starts_with("FAIL docker:"));
        if out.status.success() || !only_daemon {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
        out = check();
    }
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, stdout)
}

fn names(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| l[5..].split(':').next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn node_check_passes_on_the_lab_with_the_config_node_setup_wrote() {
    let (out, stdout) = setup_and_check("lab-ok", lab_password(&var("KURYR_LAB_KURYR_PASSWORD")));
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(
        names(&stdout),
        vec![
            "config", "keystone", "neutron", "agent", "ovs", "tunnel", "driver", "docker"
        ],
        "{stdout}"
    );
    for line in stdout.lines() {
        // The lab's agent tunnels from 127.0.0.1: a single node.
        let single_node = line.starts_with("SKIP tunnel: ") && line.contains("loopback address");
        assert!(line.starts_with("OK   ") || single_node, "{line}");
    }
    let host = var("KURYR_LAB_HOST");
    assert!(
        stdout.contains(&format!(
            "OK   agent: Open vSwitch agent on host {host} is alive"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("OK   ovs: Open vSwitch bridge br-int exists"),
        "{stdout}"
    );
    assert!(
        stdout.contains("OK   driver: /run/docker/plugins/kuryr.sock answers /Plugin.Activate (NetworkDriver, IpamDriver)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("finds driver kuryr at /run/docker/plugins/kuryr.sock"),
        "{stdout}"
    );
}

#[test]
fn node_check_fails_clearly_on_a_wrong_password() {
    let (out, stdout) = setup_and_check("lab-badpw", lab_password("not-the-password-4711"));
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let keystone = stdout
        .lines()
        .find(|l| l.contains(" keystone: "))
        .expect("a keystone line");
    assert!(
        keystone.starts_with("FAIL keystone: Keystone at ")
            && keystone
                .contains("refused the password credential of user kuryr (401 Unauthorized)")
            && keystone.contains("Fix the credential in [neutron]"),
        "{keystone}"
    );
    assert!(!stdout.contains("not-the-password-4711"), "{stdout}");
    assert!(
        stdout.contains("SKIP neutron: needs a Keystone token"),
        "{stdout}"
    );
    // The rest of the node is still checked.
    assert!(stdout.contains("OK   config: "), "{stdout}");
    assert!(stdout.contains("OK   driver: "), "{stdout}");
}

/// An application credential of the kuryr user, deleted at the end.
struct AppCred {
    id: String,
    secret: String,
}

impl AppCred {
    fn create(name: &str, access_rules: Option<&str>) -> AppCred {
        let mut cmd = Command::new("openstack");
        cmd.args(["application", "credential", "create", name, "-f", "json"]);
        if let Some(rules) = access_rules {
            cmd.args(["--access-rules", rules]);
        }
        // The kuryr account of the lab, whatever OS_* the caller exported.
        cmd.env("OS_AUTH_URL", var("OS_AUTH_URL"))
            .env("OS_USERNAME", var("KURYR_LAB_KURYR_USERNAME"))
            .env("OS_PASSWORD", var("KURYR_LAB_KURYR_PASSWORD"))
            .env("OS_PROJECT_NAME", var("KURYR_LAB_KURYR_PROJECT"))
            .env("OS_USER_DOMAIN_NAME", "Default")
            .env("OS_PROJECT_DOMAIN_NAME", "Default")
            .env("OS_IDENTITY_API_VERSION", "3");
        let out = cmd.output().expect("run openstack");
        assert!(
            out.status.success(),
            "openstack application credential create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        AppCred {
            id: v["id"].as_str().expect("id").to_string(),
            secret: v["secret"].as_str().expect("secret").to_string(),
        }
    }
}

impl Drop for AppCred {
    fn drop(&mut self) {
        let _ = Command::new("openstack")
            .args(["application", "credential", "delete", &self.id])
            .env("OS_AUTH_URL", var("OS_AUTH_URL"))
            .env("OS_USERNAME", var("KURYR_LAB_KURYR_USERNAME"))
            .env("OS_PASSWORD", var("KURYR_LAB_KURYR_PASSWORD"))
            .env("OS_PROJECT_NAME", var("KURYR_LAB_KURYR_PROJECT"))
            .env("OS_USER_DOMAIN_NAME", "Default")
            .env("OS_PROJECT_DOMAIN_NAME", "Default")
            .env("OS_IDENTITY_API_VERSION", "3")
            .output();
    }
}

#[test]
fn node_check_with_application_credentials() {
    let suffix = std::process::id();
    let open = AppCred::create(&format!("kuryr-node-check-{suffix}"), None);
    let (out, stdout) = setup_and_check(
        "lab-appcred",
        json!({"type": "application_credential", "application_credential_id": open.id,
               "application_credential_secret": open.secret}),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains(&open.secret), "{stdout}");

    // Restricted to the driver's calls (and the check's agent listing).
    // Keystone issues the token either way; Neutron honours the rules only
    // with [keystone_authtoken] service_type = network, and refuses such
    // tokens without it, which the check must then explain.
    let rules = kuryr(&["template", "access-rules", "--with-check"]);
    let rules = String::from_utf8(rules.stdout).unwrap();
    let restricted = AppCred::create(&format!("kuryr-node-check-r-{suffix}"), Some(&rules));
    let (out, stdout) = setup_and_check(
        "lab-restricted",
        json!({"type": "application_credential", "application_credential_id": restricted.id,
               "application_credential_secret": restricted.secret}),
    );
    assert!(stdout.contains("OK   keystone: "), "{stdout}");
    let neutron = stdout
        .lines()
        .find(|l| l.contains(" neutron: "))
        .expect("a neutron line");
    if neutron.starts_with("OK") {
        assert_eq!(out.status.code(), Some(0), "{stdout}");
    } else {
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(
            neutron.starts_with("FAIL neutron: ")
                && neutron.contains("401")
                && neutron.contains("[keystone_authtoken] needs service_type = network"),
            "{neutron}"
        );
    }
}
