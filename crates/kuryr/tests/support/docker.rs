//! Helpers for tests that drive the real dockerd of the lab through the
//! kuryr daemon built by this test run.

#![allow(dead_code)]

use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kuryr_openstack::neutron::{Network, Port};
use kuryr_openstack::{
    Credential, DomainRef, Neutron, Query, Scope, Session, SessionConfig, UserRef,
};
use secrecy::SecretString;

pub const SOCKET: &str = "/run/docker/plugins/kuryr.sock";

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: these tests need the lab. Run `sudo lab/up` and \
             `eval \"$(lab/env)\"`, or use ./run-tests which does both"
        )
    })
}

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn lab_dir() -> String {
    var("KURYR_LAB_DIR")
}

pub fn host() -> String {
    var("KURYR_LAB_HOST")
}

/// A Neutron client as the kuryr service user.
pub fn neutron() -> Neutron {
    let cred = Credential::Password {
        user: UserRef {
            id: None,
            name: Some(var("KURYR_LAB_KURYR_USERNAME")),
            domain: DomainRef::default_domain(),
        },
        password: SecretString::from(var("KURYR_LAB_KURYR_PASSWORD")),
        scope: Scope::Project {
            id: None,
            name: Some(var("KURYR_LAB_KURYR_PROJECT")),
            domain: DomainRef::default_domain(),
        },
    };
    let url = std::env::var("OS_AUTH_URL").unwrap_or_else(|_| "http://127.0.0.1:5000/v3".into());
    Neutron::new(Session::new(SessionConfig::new(url, cred)).expect("session"))
}

/// Run the docker CLI against the lab's dockerd.
pub fn docker(args: &[&str]) -> Output {
    Command::new("/usr/bin/docker")
        .arg("-H")
        .arg("unix:///run/docker.sock")
        .args(args)
        .output()
        .expect("run docker")
}

/// Run docker and insist on success; returns trimmed stdout.
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Start (or restart) the daemon under test unless it already runs this
/// very binary.
pub fn ensure_daemon() {
    let bin = env!("CARGO_BIN_EXE_kuryr");
    let record = format!("{}/run/kuryr.pid", lab_dir());
    let running_same = std::fs::read_to_string(&record)
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok())
        .map(|exe| exe == std::fs::canonicalize(bin).unwrap_or_default())
        .unwrap_or(false);
    if running_same && std::path::Path::new(SOCKET).exists() {
        return;
    }
    restart_daemon();
}

/// Restart the daemon (a new process: nothing but Neutron survives).
pub fn restart_daemon() {
    let bin = env!("CARGO_BIN_EXE_kuryr");
    let out = Command::new(repo_root().join("lab/kuryr-up"))
        .arg(bin)
        .output()
        .expect("run lab/kuryr-up");
    assert!(
        out.status.success(),
        "lab/kuryr-up failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A short name no other run uses.
pub fn unique(prefix: &str) -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}{:x}",
        (n as u64 ^ u64::from(std::process::id())) & 0xff_ffff
    )
}

/// A /24 for a test, in 10.40.0.0/16..10.79.0.0/16 (never routed anywhere).
pub fn test_subnet(name: &str) -> (String, String) {
    let h = name.bytes().fold(2166136261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16777619)
    });
    let a = 40 + (h % 40);
    let b = (h >> 8) % 256;
    (format!("10.{a}.{b}.0/24"), format!("10.{a}.{b}"))
}

pub fn network_id(name: &str) -> String {
    docker_ok(&["network", "inspect", "-f", "{{.Id}}", name])
}

/// The Neutron network of a Docker network, found by kuryr's tags.
pub async fn neutron_network(n: &Neutron, docker_id: &str) -> Vec<Network> {
    let tags = [
        format!("kuryr.net.uuid.lh:{}", &docker_id[..32]),
        format!("kuryr.net.uuid.uh:{}", &docker_id[32..]),
    ];
    n.list_networks(&Query::new().tags(&tags)).await.unwrap()
}

/// Ports kuryr bound in a Neutron network.
pub async fn kuryr_ports(n: &Neutron, network_id: &str) -> Vec<Port> {
    n.list_ports(
        &Query::new()
            .eq("network_id", network_id)
            .eq("device_owner", "compute:kuryr"),
    )
    .await
    .unwrap()
}

/// Run a command inside a container; returns (success, stdout+stderr).
pub fn exec(container: &str, cmd: &[&str]) -> (bool, String) {
    let mut args = vec!["exec", container];
    args.extend_from_slice(cmd);
    let out = docker(&args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text.trim().to_string())
}

pub fn link_exists(name: &str) -> bool {
    std::path::Path::new(&format!("/sys/class/net/{name}")).exists()
}

pub fn ovs_ports() -> Vec<String> {
    let out = Command::new("ovs-vsctl")
        .args(["--timeout=10", "list-ports", "br-int"])
        .output()
        .expect("ovs-vsctl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Poll `f` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if f().await {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Removes containers and networks of a test even when it fails.
pub struct Cleanup {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
}

impl Cleanup {
    pub fn new() -> Self {
        Cleanup {
            containers: Vec::new(),
            networks: Vec::new(),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = docker(&["rm", "-f", c]);
        }
        for n in &self.networks {
            let _ = docker(&["network", "rm", n]);
        }
    }
}

impl Cleanup {
    /// `docker network create -d kuryr --ipam-driver kuryr [--subnet S] NAME
    /// [extra...]`, removed at the end of the test.
    pub fn kuryr_network(&mut self, name: &str, subnet: Option<&str>, extra: &[&str]) {
        let mut args = vec!["network", "create", "-d", "kuryr", "--ipam-driver", "kuryr"];
        if let Some(s) = subnet {
            args.extend(["--subnet", s]);
        }
        args.extend_from_slice(extra);
        args.push(name);
        docker_ok(&args);
        self.networks.push(name.to_string());
    }

    /// `docker run -d --name NAME --net=NET [extra...] busybox sleep 600`,
    /// removed at the end of the test.
    pub fn container(&mut self, name: &str, net: &str, extra: &[&str]) {
        let net = format!("--net={net}");
        let mut args = vec!["run", "-d", "--name", name, net.as_str()];
        args.extend_from_slice(extra);
        args.extend(["busybox", "sleep", "600"]);
        self.containers.push(name.to_string());
        docker_ok(&args);
    }
}
