//! The lab's real dockerd through the `docker` CLI, and the kuryr daemon
//! built by this test run (started through `lab/kuryr-up`).

use std::process::{Command, Output};

use super::env::{lab_dir, output_text, repo_root};

pub use kuryr::paths::PLUGIN_SOCKET as SOCKET;

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

/// The daemon binary under test: this build, or `KURYR_TEST_DAEMON_BIN`
/// (a test run against another build, e.g. to see it fail before a fix).
pub fn daemon_bin() -> String {
    std::env::var("KURYR_TEST_DAEMON_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_kuryr").to_string())
}

/// Start (or restart) the daemon under test unless it already runs this
/// very binary.
pub fn ensure_daemon() {
    let bin = daemon_bin();
    let running_same = daemon_pid()
        .and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok())
        .map(|exe| exe == std::fs::canonicalize(&bin).unwrap_or_default())
        .unwrap_or(false);
    if running_same && std::path::Path::new(SOCKET).exists() {
        return;
    }
    restart_daemon();
}

/// Restart the daemon (a new process: nothing but Neutron survives).
pub fn restart_daemon() {
    restart_daemon_with(&[], "");
}

/// Restart the daemon with these environment variables (e.g.
/// `KURYR_FAULT_POINTS`) and these lines added to its kuryr.conf.
pub fn restart_daemon_with(env: &[(&str, &str)], conf_extra: &str) {
    let out = Command::new(repo_root().join("lab/kuryr-up"))
        .arg(daemon_bin())
        .env_remove("KURYR_FAULT_POINTS")
        .env_remove("KURYR_UP_NO_PLUG_WAIT")
        .envs(env.iter().copied())
        .env("KURYR_UP_CONF_EXTRA", conf_extra)
        .output()
        .expect("run lab/kuryr-up");
    assert!(
        out.status.success(),
        "lab/kuryr-up failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The pid of the lab's daemon, if it runs.
pub fn daemon_pid() -> Option<u32> {
    let record = format!("{}/run/kuryr.pid", lab_dir());
    let pid: u32 = std::fs::read_to_string(record)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    daemon_alive(pid).then_some(pid)
}

/// Is process `pid` alive (not gone, not a zombie)?
pub fn daemon_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

pub fn network_id(name: &str) -> String {
    docker_ok(&["network", "inspect", "-f", "{{.Id}}", name])
}

/// Run a command inside a container; returns (success, stdout+stderr).
pub fn exec(container: &str, cmd: &[&str]) -> (bool, String) {
    let mut args = vec!["exec", container];
    args.extend_from_slice(cmd);
    let out = docker(&args);
    (out.status.success(), output_text(&out))
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

/// Stop the lab's driver daemon (the one `lab/kuryr-up` started), if it
/// runs; it removes its socket as it stops.
pub fn stop_daemon() {
    let record = format!("{}/run/kuryr.pid", lab_dir());
    let Some(pid) = std::fs::read_to_string(&record)
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
    else {
        return;
    };
    let is_kuryr =
        std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.contains("kuryr"));
    if !is_kuryr {
        return;
    }
    let _ = Command::new("kill").args(["-TERM", &pid]).output();
    for _ in 0..100 {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = std::fs::remove_file(SOCKET);
}

/// Restart the lab's dockerd (`lab/dockerd restart`) with extra flags:
/// it forgets the plugin clients it kept. Needs the exclusive lab lock.
pub fn restart_dockerd(flags: &[&str]) {
    let out = Command::new(repo_root().join("lab/dockerd"))
        .arg("restart")
        .args(flags)
        .output()
        .expect("run lab/dockerd");
    assert!(
        out.status.success(),
        "lab/dockerd restart failed: {}",
        output_text(&out)
    );
}
