//! The fault suite's hands on the lab: the daemon under test started with
//! a fault point armed and a short orphan grace, killed, restarted; lab
//! services stopped (SIGSTOP), continued and restarted; Docker commands
//! run in the background while that happens; and the wait for orphan
//! collection to leave nothing unexplained. Only `alone_*` test binaries
//! use it: they disturb services every other test shares.

use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::docker_cli::{daemon_alive, daemon_pid, docker, restart_daemon, restart_daemon_with};
use super::env::{lab_dir, output_text, repo_root};
use super::explain::{DockerView, Scope, unexplained};

/// The daemon's settings in the fault suite: orphans are collected every
/// 2 s once 3 s old (a RequestAddress is claimed within milliseconds).
pub const FAULT_CONF: &str = "[DEFAULT]\norphan_grace = 3\norphan_interval = 2\n";

/// How long the suite waits for orphan collection to clean up.
pub const SETTLE: Duration = Duration::from_secs(30);

/// Restores the lab's ordinary daemon when dropped (also after a panic).
pub struct OrdinaryDaemonAfter;

impl Drop for OrdinaryDaemonAfter {
    fn drop(&mut self) {
        restart_daemon();
    }
}

/// (Re)start the daemon under test with the suite's settings and, if
/// given, one fault point set to crash it. Its pid.
pub fn start_daemon(crash_at: Option<&str>) -> u32 {
    let spec = crash_at.map(|p| format!("{p}=crash"));
    let env: Vec<(&str, &str)> = spec
        .iter()
        .map(|s| ("KURYR_FAULT_POINTS", s.as_str()))
        .collect();
    restart_daemon_with(&env, FAULT_CONF);
    daemon_pid().expect("the daemon runs")
}

/// Wait until process `pid` is gone, or `done` says the work is over.
/// True if it died.
pub fn wait_death(pid: u32, timeout: Duration, done: impl Fn() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if !daemon_alive(pid) {
            return true;
        }
        if done() {
            // One last look: it may die as the command ends.
            std::thread::sleep(Duration::from_millis(200));
            return !daemon_alive(pid);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// `docker ARGS` in a thread: (success, output, how long it took).
pub fn docker_bg(args: &[&str]) -> JoinHandle<(bool, String, Duration)> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    std::thread::spawn(move || {
        let started = Instant::now();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = docker(&refs);
        (out.status.success(), output_text(&out), started.elapsed())
    })
}

/// `docker ARGS`: (success, output).
pub fn docker_try(args: &[&str]) -> (bool, String) {
    let out = docker(args);
    (out.status.success(), output_text(&out))
}

/// A Docker command failed the way a user can act on: dockerd's error
/// naming the plugin call or the driver, not a hang or a crash.
pub fn assert_clear_error(what: &str, out: &str) {
    assert!(
        out.contains("Error response from daemon") || out.contains("Error"),
        "{what}: not a Docker error: {out}"
    );
    assert!(!out.trim().is_empty(), "{what}: an error without a message");
}

/// Wait (at most [`SETTLE`]) until no object of the daemon under test is
/// left that the lab's dockerd does not explain; what is left then.
pub async fn settle(neutron: &kuryr_openstack::Neutron, scope: &Scope) -> Vec<String> {
    let started = Instant::now();
    loop {
        let view = DockerView::of_dockerd("kuryr");
        let left = unexplained(neutron, &view, scope).await;
        if left.is_empty() || started.elapsed() > SETTLE {
            return left;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The scope of the lab-wide daemon from now on: nothing else runs beside
/// an `alone_*` test.
pub fn exclusive_scope() -> Scope {
    Scope {
        exclusive: true,
        ..Scope::from_now(&super::env::host())
    }
}

/// The pid of a lab service's main process, the leader of its process
/// group: the recorded pid, or (when the record names the shell that
/// started it in a new session) that shell's child leading its group.
pub fn service_pid(name: &str) -> u32 {
    let record = format!("{}/run/{name}.pid", lab_dir());
    let pid: u32 = std::fs::read_to_string(&record)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{record}: no pid: is the lab up?"));
    if group_of(pid) == Some(pid) {
        return pid;
    }
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    children
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .find(|&c| group_of(c) == Some(c))
        .unwrap_or_else(|| panic!("{name}: no process group leader under pid {pid}"))
}

/// The process group of `pid` (field 5 of /proc/PID/stat).
fn group_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// A lab service's process group stopped with SIGSTOP until dropped
/// (SIGCONT, also after a panic).
pub struct Stopped {
    pgid: u32,
    pub since: Instant,
}

impl Stopped {
    pub fn service(name: &str) -> Stopped {
        let pgid = service_pid(name);
        signal_group(pgid, "STOP");
        Stopped {
            pgid,
            since: Instant::now(),
        }
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal_group(self.pgid, "CONT");
    }
}

fn signal_group(pgid: u32, sig: &str) {
    let out = Command::new("kill")
        .args([&format!("-{sig}"), "--", &format!("-{pgid}")])
        .output()
        .expect("kill");
    assert!(
        out.status.success(),
        "kill -{sig} -{pgid}: {}",
        output_text(&out)
    );
}

/// `lab/restart SERVICE...`: stop them, start them again, healthy.
pub fn restart_services(names: &[&str]) -> Duration {
    let started = Instant::now();
    let out = Command::new(repo_root().join("lab/restart"))
        .args(names)
        .output()
        .expect("run lab/restart");
    assert!(
        out.status.success(),
        "lab/restart {}: {}",
        names.join(" "),
        output_text(&out)
    );
    started.elapsed()
}

/// Wait until Neutron answers again (after a stop or restart).
pub async fn neutron_answers(neutron: &kuryr_openstack::Neutron) {
    let q = kuryr_openstack::Query::new().eq("name", "kt-nothing");
    super::env::eventually("Neutron to answer", Duration::from_secs(120), || async {
        neutron.list_networks(&q).await.ok()
    })
    .await;
}
