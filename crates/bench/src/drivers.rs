//! The three drivers under test, one at a time on the lab's dockerd:
//!
//! - ours: the release build, (re)started by `lab/kuryr-up` (driver name
//!   `kuryr`, `vif_plugging_is_fatal = True`, timeout 60 s); measured
//!   twice: as configured by default, and with ports made ahead
//!   (`[DEFAULT] ports_pool_size`, [`Kind::OursPool`]);
//! - kuryr-libnetwork 18.0.0 from the lab's venv (`lab/kuryr-python
//!   install`), a `kuryr-server` of the benchmark's own on
//!   [`PYTHON_URL`] with the same `[neutron]` settings (waiting for
//!   ACTIVE too) and `debug = false`, registered with dockerd under
//!   another name ([`PYTHON_NAME`], a spec file) so that the name `kuryr`
//!   stays ours and the lab's own Python instance is left alone;
//! - Docker's `bridge` driver with Docker's default IPAM: no Neutron at
//!   all, the floor for Docker's own part;
//! - ours with ready ports and kuryr-libnetwork again, both with
//!   `vif_plugging_is_fatal = False` (each project's default): no wait for
//!   the L2 agent, like the Neutron floor ([`Kind::waits`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

/// Where the benchmark's Python driver listens.
pub const PYTHON_ADDR: &str = "127.0.0.1:23751";
pub const PYTHON_URL: &str = "http://127.0.0.1:23751";
/// The driver name dockerd knows the benchmark's Python driver by.
pub const PYTHON_NAME: &str = "kuryrpy";
/// Its spec file: dockerd finds plugins there by name.
pub const PYTHON_SPEC: &str = "/etc/docker/plugins/kuryrpy.spec";

/// Which driver a run measures.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Kind {
    Ours,
    Python,
    Bridge,
    /// Ours with `ports_pool_size` set (after the others in the saved
    /// results, so older results still read).
    OursPool,
    /// [`Kind::OursPool`] not waiting for ACTIVE.
    OursPoolNoWait,
    /// [`Kind::Python`] not waiting for ACTIVE.
    PythonNoWait,
}

/// The name of a port ours made ahead (`ports_pool_size`).
pub const READY_PORT_NAME: &str = "kuryr-ready-port";

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Ours => "kuryr-rs",
            Kind::OursPool => "kuryr-rs + ready ports",
            Kind::OursPoolNoWait => "kuryr-rs + ready ports, no wait",
            Kind::Python => "kuryr-libnetwork",
            Kind::PythonNoWait => "kuryr-libnetwork, no wait",
            Kind::Bridge => "bridge",
        }
    }

    /// Whether it waits for the L2 agent to make a port ACTIVE
    /// (`vif_plugging_is_fatal = True`).
    pub fn waits(self) -> bool {
        !matches!(
            self,
            Kind::OursPoolNoWait | Kind::PythonNoWait | Kind::Bridge
        )
    }

    /// The kuryr-libnetwork run to compare ours with: the same wait.
    pub fn peer(self) -> Kind {
        if self.waits() {
            Kind::Python
        } else {
            Kind::PythonNoWait
        }
    }

    /// `docker network create` arguments for a network on `subnet`.
    pub fn network_args(self, subnet: &str, name: &str) -> Vec<String> {
        let mut a: Vec<String> = vec!["network".into(), "create".into()];
        match self {
            Kind::Ours | Kind::OursPool | Kind::OursPoolNoWait => {
                a.extend(["-d", "kuryr", "--ipam-driver", "kuryr"].map(String::from))
            }
            Kind::Python | Kind::PythonNoWait => {
                a.extend(["-d", PYTHON_NAME, "--ipam-driver", PYTHON_NAME].map(String::from))
            }
            // No gateway device on the host: like the Neutron networks,
            // nothing on the host answers for the subnet.
            Kind::Bridge => a.extend(
                [
                    "-d",
                    "bridge",
                    "-o",
                    "com.docker.network.bridge.inhibit_ipv4=true",
                ]
                .map(String::from),
            ),
        }
        // kuryr-libnetwork cannot pick a gateway itself (its RequestAddress
        // answers nothing for the gateway of a network without a subnet
        // yet): every driver is given the first host.
        let gateway = subnet.replacen(".0/24", ".1", 1);
        a.extend(["--subnet", subnet, "--gateway", &gateway, name].map(String::from));
        a
    }

    /// Ours, either way.
    pub fn is_ours(self) -> bool {
        matches!(self, Kind::Ours | Kind::OursPool | Kind::OursPoolNoWait)
    }

    /// A short tag for the Docker object names of its runs.
    pub fn tag(self) -> &'static str {
        match self {
            Kind::Ours => "o",
            Kind::OursPool => "r",
            Kind::OursPoolNoWait => "n",
            Kind::Python => "p",
            Kind::PythonNoWait => "y",
            Kind::Bridge => "b",
        }
    }
}

/// The lab's directory (`$KURYR_LAB_DIR`).
pub fn lab_dir() -> PathBuf {
    PathBuf::from(std::env::var("KURYR_LAB_DIR").unwrap_or_else(|_| "/var/lib/kuryr-lab".into()))
}

pub fn log_path(name: &str) -> PathBuf {
    lab_dir().join("log").join(name)
}

/// The resident set of a process, in MiB.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// (Re)start ours with `lab/kuryr-up`; its pid.
pub fn start_ours(repo: &Path, bin: &Path) -> Result<u32> {
    start_ours_with(repo, bin, 0, true)
}

/// (Re)start ours keeping `pool` ports ready per subnet (0: none),
/// waiting for ACTIVE or not.
pub fn start_ours_with(repo: &Path, bin: &Path, pool: usize, wait: bool) -> Result<u32> {
    let mut up = Command::new(repo.join("lab/kuryr-up"));
    if !wait {
        up.env("KURYR_UP_NO_PLUG_WAIT", "1");
    }
    let out = up
        .arg(bin)
        .env(
            "KURYR_UP_CONF_EXTRA",
            format!("[DEFAULT]\nports_pool_size = {pool}\n"),
        )
        .output()
        .map_err(|e| format!("lab/kuryr-up: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "lab/kuryr-up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    ours_pid().ok_or_else(|| "lab/kuryr-up left no pid record".into())
}

/// The pid `lab/kuryr-up` recorded.
pub fn ours_pid() -> Option<u32> {
    let record = std::fs::read_to_string(lab_dir().join("run/kuryr.pid")).ok()?;
    record.split_whitespace().next()?.parse().ok()
}

/// The venv `lab/kuryr-python install` made.
pub fn python_server() -> PathBuf {
    lab_dir().join("venv-kuryr/bin/kuryr-server")
}

/// The installed kuryr-libnetwork version.
pub fn python_version() -> String {
    let venv = lab_dir().join("venv-kuryr/bin/python");
    Command::new(venv)
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('kuryr-libnetwork'))",
        ])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// A config for a kuryr-libnetwork of the benchmark's own: the lab's
/// `kuryr.conf` (credentials, pools) with ours' `[neutron]` wait settings
/// (or its default, not waiting, when `wait` is false), listening on
/// `url`, or with Keystone at `auth_url` when given.
pub fn python_conf(
    url: &str,
    log_file: &str,
    auth_url: Option<&str>,
    wait: bool,
) -> Result<PathBuf> {
    let lab = lab_dir();
    let base = std::fs::read_to_string(lab.join("kuryr.conf"))
        .map_err(|e| format!("{}: {e} (run lab/up)", lab.join("kuryr.conf").display()))?;
    let fatal = if wait { "True" } else { "False" };
    let mut text = base.replacen(
        "[neutron]\n",
        &format!("[neutron]\nvif_plugging_is_fatal = {fatal}\nvif_plugging_timeout = 60\n"),
        1,
    );
    if let Some(a) = auth_url {
        text = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("auth_url") {
                    format!("auth_url = {a}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
    }
    text.push_str(&format!(
        "\n[DEFAULT]\nkuryr_uri = {url}\ncapability_scope = local\nbindir = {}\nlog_dir = {}\n\
         log_file = {log_file}\ndebug = false\n",
        lab.join("venv-kuryr/libexec/kuryr").display(),
        lab.join("log").display()
    ));
    let path = lab.join(format!("etc/{log_file}.conf"));
    write_private(&path, &text)?;
    Ok(path)
}

/// Write a file only root can read (it holds the lab's password).
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

/// A `kuryr-server` (Python) the benchmark started.
pub struct Python {
    child: Child,
}

impl Python {
    /// Start it with `conf`; `None` once it answers `Plugin.Activate` on
    /// `addr`, else why not within `within`. Returns the time to answer.
    pub fn start(conf: &Path, addr: &str, within: Duration) -> Result<(Python, Option<Duration>)> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path("kuryr-bench-python.out"))
            .map_err(|e| format!("kuryr-bench-python.out: {e}"))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let started = Instant::now();
        let child = Command::new(python_server())
            .arg("--config-file")
            .arg(conf)
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("{}: {e}", python_server().display()))?;
        let mut p = Python { child };
        let ready = crate::ready::wait_http(addr, within, &mut p.child);
        Ok((p, ready.map(|_| started.elapsed())))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Register the benchmark's Python driver with dockerd (a spec file;
/// dockerd reads it when the name is first used).
pub fn register_python() -> Result<()> {
    std::fs::create_dir_all("/etc/docker/plugins").map_err(|e| e.to_string())?;
    std::fs::write(PYTHON_SPEC, format!("{PYTHON_URL}\n"))
        .map_err(|e| format!("{PYTHON_SPEC}: {e}"))?;
    Ok(())
}

pub fn unregister_python() {
    let _ = std::fs::remove_file(PYTHON_SPEC);
}
