//! `kuryr node check`: is this node ready to serve kuryr networks? One line
//! per check, `OK`, `FAIL` (with what to do) or `SKIP` (not applicable, or
//! blocked by an earlier failure):
//!
//! | check | how |
//! |---|---|
//! | `config` | `kuryr.conf` loads as the daemon loads it |
//! | `keystone` | a token is issued for the configured credential |
//! | `neutron` | Neutron answers and has the extensions the mode needs |
//! | `agent` | agent mode: a live L2 agent reports this binding host |
//! | `ovs` | agent mode with Open vSwitch: `ovs-vsctl br-exists br-int` |
//! | `link` | nested/vlan mode: `[binding] link_iface` exists |
//! | `driver` | the driver's socket answers `/Plugin.Activate` |
//! | `docker` | dockerd answers, and its plugin discovery finds the driver |

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kuryr_openstack::{Error as OsError, Neutron, Query, Session};

use super::http::{self, Endpoint};
use crate::config::{Config, PortDriverKind};
use crate::paths::{self, DOCKER_PLUGIN_LOOKUP};

/// What `kuryr node check` looks at.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub config_file: PathBuf,
    /// `unix:///run/docker.sock` or `tcp://host:port`.
    pub docker_host: String,
    /// Bound on each network call.
    pub timeout: Duration,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            config_file: PathBuf::from(crate::config::DEFAULT_CONFIG_FILE),
            docker_host: paths::DOCKER_HOST.into(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Fail,
    Skip,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Status::Ok => "OK",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    pub name: &'static str,
    pub status: Status,
    pub message: String,
}

impl fmt::Display for CheckLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<4} {}: {}", self.status, self.name, self.message)
    }
}

/// All lines, in check order.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub lines: Vec<CheckLine>,
}

impl Report {
    fn push(&mut self, name: &'static str, status: Status, message: impl Into<String>) {
        self.lines.push(CheckLine {
            name,
            status,
            message: message.into(),
        });
    }

    pub fn failed(&self) -> bool {
        self.lines.iter().any(|l| l.status == Status::Fail)
    }

    pub fn line(&self, name: &str) -> Option<&CheckLine> {
        self.lines.iter().find(|l| l.name == name)
    }
}

/// Neutron agent types that bind `binding:host_id` ports with a veth.
const L2_AGENT_TYPES: [&str; 2] = ["Open vSwitch agent", "Linux bridge agent"];

/// Run every check.
pub async fn run(opts: &CheckOptions) -> Report {
    let mut r = Report::default();
    let path = opts.config_file.display().to_string();
    let config = match Config::load(std::slice::from_ref(&opts.config_file)) {
        Ok(c) => Some(c),
        Err(e) => {
            r.push(
                "config",
                Status::Fail,
                format!("{e}: fix {path} or re-run `kuryr node setup`"),
            );
            None
        }
    };
    let session_config = config.as_ref().and_then(|c| match c.session_config() {
        Ok(mut sc) => {
            sc.timeout = Some(sc.timeout.unwrap_or(opts.timeout).min(opts.timeout));
            Some(sc)
        }
        Err(e) => {
            r.push(
                "config",
                Status::Fail,
                format!(
                    "{path}: {e}: fix the [neutron] credential options or re-run `kuryr node setup`"
                ),
            );
            None
        }
    });
    let host = config.as_ref().map(|c| {
        c.default
            .host
            .clone()
            .unwrap_or_else(crate::daemon::hostname)
    });
    if let (Some(c), Some(_)) = (&config, &session_config) {
        let warnings = if c.warnings.is_empty() {
            String::new()
        } else {
            format!("; warnings: {}", c.warnings.join("; "))
        };
        r.push(
            "config",
            Status::Ok,
            format!(
                "{path} loads: port driver {}, scope {}, binding host {}{warnings}",
                c.default.default_port_driver,
                c.default.capability_scope,
                host.as_deref().unwrap_or_default()
            ),
        );
    }

    // --- Keystone ---
    let session = match &session_config {
        None => {
            r.push("keystone", Status::Skip, "needs a loadable configuration");
            None
        }
        Some(sc) => match Session::new(sc.clone()) {
            Err(e) => {
                r.push(
                    "keystone",
                    Status::Fail,
                    format!("{e}: check [neutron] cafile, certfile and keyfile in {path}"),
                );
                None
            }
            Ok(session) => match session.token().await {
                Ok(t) => {
                    r.push(
                        "keystone",
                        Status::Ok,
                        format!(
                            "{}: token for user {} in project {} (roles {})",
                            sc.auth_url,
                            t.user_id,
                            t.project_id.as_deref().unwrap_or("none"),
                            if t.roles.is_empty() {
                                "none".to_string()
                            } else {
                                t.roles.join(", ")
                            }
                        ),
                    );
                    Some(session)
                }
                Err(e) => {
                    let what = config
                        .as_ref()
                        .map(credential_description)
                        .unwrap_or_default();
                    r.push(
                        "keystone",
                        Status::Fail,
                        keystone_advice(&e, &what, &sc.auth_url, &path),
                    );
                    None
                }
            },
        },
    };

    // --- Neutron ---
    let neutron = session.map(Neutron::new);
    let port_driver = config.as_ref().map(|c| c.default.default_port_driver);
    let neutron_ok = match (&neutron, &config) {
        (Some(n), Some(c)) => check_neutron(&mut r, n, c).await,
        _ => {
            r.push("neutron", Status::Skip, "needs a Keystone token");
            false
        }
    };

    // --- the node's networking ---
    let mut agent_type = None;
    match port_driver {
        Some(PortDriverKind::Veth) => {
            match (&neutron, &host) {
                (Some(n), Some(h)) if neutron_ok => agent_type = check_agent(&mut r, n, h).await,
                (Some(_), _) => r.push("agent", Status::Skip, "needs a working Neutron"),
                _ => r.push("agent", Status::Skip, "needs a Keystone token"),
            }
            if agent_type.as_deref() == Some(L2_AGENT_TYPES[1]) {
                r.push(
                    "ovs",
                    Status::Skip,
                    "the Linux bridge agent serves this host: no Open vSwitch",
                );
            } else {
                check_ovs(&mut r, opts.timeout).await;
            }
        }
        Some(other) => {
            let why = format!("port driver {other} runs no L2 agent on the node");
            r.push("agent", Status::Skip, why.clone());
            r.push("ovs", Status::Skip, why);
            match config.as_ref().and_then(|c| c.binding.link_iface.clone()) {
                None => r.push(
                    "link",
                    Status::Skip,
                    "[binding] link_iface is not set: the driver finds the NIC by the VM port's MAC",
                ),
                Some(iface) => {
                    if Path::new("/sys/class/net").join(&iface).exists() {
                        r.push("link", Status::Ok, format!("interface {iface} exists"));
                    } else {
                        r.push(
                            "link",
                            Status::Fail,
                            format!(
                                "interface {iface} ([binding] link_iface) does not exist on this node: \
                                 fix the kuryr_link_iface label (`ip link` lists the interfaces)"
                            ),
                        );
                    }
                }
            }
        }
        None => {
            r.push("agent", Status::Skip, "needs a loadable configuration");
            r.push("ovs", Status::Skip, "needs a loadable configuration");
        }
    }

    // --- the driver and Docker ---
    let listener = driver_listener(config.as_ref());
    check_driver(&mut r, &listener, opts.timeout).await;
    check_docker(&mut r, &listener, &opts.docker_host, opts.timeout).await;
    r
}

fn credential_description(c: &Config) -> String {
    let a = &c.neutron.auth;
    match a.auth_type {
        Some(crate::config::AuthType::V3ApplicationCredential) => format!(
            "application credential {}",
            a.application_credential_id
                .as_deref()
                .or(a.application_credential_name.as_deref())
                .unwrap_or("?")
        ),
        Some(t) => format!(
            "{t} credential of user {}",
            a.username
                .as_deref()
                .or(a.user_id.as_deref())
                .unwrap_or("?")
        ),
        None => "credential".into(),
    }
}

fn keystone_advice(e: &OsError, what: &str, auth_url: &str, path: &str) -> String {
    match e {
        OsError::Auth(api) => format!(
            "Keystone at {auth_url} refused the {what} ({} {}): {}. Fix the credential in [neutron] of {path} \
             (password or application_credential_secret, user and project), or re-run `kuryr node setup` \
             with working cluster parameters",
            api.status,
            api.kind,
            api.message.trim_end_matches('.')
        ),
        OsError::Transport { .. } => format!(
            "{e}. Check [neutron] auth_url ({auth_url}), that this node can reach it, and for https the CA \
             bundle ([neutron] cafile)"
        ),
        other => format!("{other}: check [neutron] auth_url ({auth_url}) in {path}"),
    }
}

/// Extensions the configuration needs, with why.
fn required_extensions(c: &Config) -> Vec<(&'static [&'static str], &'static str)> {
    let mut req: Vec<(&'static [&'static str], &'static str)> = vec![
        (&["subnet_allocation"], "subnet pools back Docker's IPAM"),
        (
            &["standard-attr-tag", "tag"],
            "kuryr keeps its state in Neutron tags",
        ),
    ];
    match c.default.default_port_driver {
        PortDriverKind::Veth => req.push((&["binding"], "ports are bound to this host")),
        PortDriverKind::Nested => req.push((
            &["allowed-address-pairs"],
            "container addresses are added to the VM port",
        )),
        PortDriverKind::Vlan => {
            req.push((&["trunk"], "containers are subports of the VM's trunk"));
            req.push((&["trunk-details"], "the VM port shows its trunk"));
        }
        PortDriverKind::Sriov => {}
    }
    if c.default.process_external_connectivity {
        req.push((
            &["security-group"],
            "`--expose` opens ports with a security group",
        ));
    }
    req
}

/// Returns whether Neutron is usable.
async fn check_neutron(r: &mut Report, n: &Neutron, c: &Config) -> bool {
    let base = match n.base_url().await {
        Ok(b) => b,
        Err(e) => {
            r.push(
                "neutron",
                Status::Fail,
                format!("{e}: check [neutron] endpoint_type and region_name"),
            );
            return false;
        }
    };
    let extensions = match n.list_extensions().await {
        Ok(x) => x,
        Err(e) => {
            let advice = match e.status() {
                Some(401) => {
                    " Neutron refused the token: if the credential is an application credential with access \
                     rules, Neutron's [keystone_authtoken] needs service_type = network to accept it \
                     (docs/security.md)"
                }
                Some(403) => {
                    " The credential may not read extensions: add the access rule GET /v2.0/extensions \
                     (docs/security.md) or grant the role"
                }
                _ => " Check that Neutron is up and reachable from this node.",
            };
            r.push("neutron", Status::Fail, format!("{base}: {e}.{advice}"));
            return false;
        }
    };
    let has = |alias: &str| extensions.iter().any(|x| x.alias == alias);
    let mut missing = Vec::new();
    let mut present = Vec::new();
    for (aliases, why) in required_extensions(c) {
        match aliases.iter().find(|a| has(a)) {
            Some(a) => present.push(*a),
            None => missing.push(format!("{} ({why})", aliases[0])),
        }
    }
    if missing.is_empty() {
        r.push(
            "neutron",
            Status::Ok,
            format!("{base} answers; extensions {}", present.join(", ")),
        );
        true
    } else {
        r.push(
            "neutron",
            Status::Fail,
            format!(
                "{base} lacks {}: ask the cloud operator to enable them (service plugins and ML2 extension drivers)",
                missing.join(", ")
            ),
        );
        // Reachable: the agent can still be looked at.
        true
    }
}

/// The L2 agent of this host; returns its type when found alive.
async fn check_agent(r: &mut Report, n: &Neutron, host: &str) -> Option<String> {
    let agents = match n.list_agents(&Query::new().eq("host", host)).await {
        Ok(a) => a,
        Err(e) if matches!(e.status(), Some(401 | 403)) => {
            r.push(
                "agent",
                Status::Skip,
                format!(
                    "the credential may not list Neutron agents ({e}); with an application credential add the \
                     access rule GET /v2.0/agents to let this check run, or look on a controller: \
                     openstack network agent list --host {host}"
                ),
            );
            return None;
        }
        Err(e) => {
            r.push(
                "agent",
                Status::Fail,
                format!("cannot list Neutron agents: {e}"),
            );
            return None;
        }
    };
    let l2: Vec<_> = agents
        .iter()
        .filter(|a| L2_AGENT_TYPES.contains(&a.agent_type.as_str()))
        .collect();
    if let Some(a) = l2.iter().find(|a| a.alive && a.admin_state_up) {
        r.push(
            "agent",
            Status::Ok,
            format!("{} on host {host} is alive ({})", a.agent_type, a.binary),
        );
        return Some(a.agent_type.clone());
    }
    if let Some(a) = l2.first() {
        let why = if !a.admin_state_up {
            "is administratively down: openstack network agent set --enable"
        } else {
            "is not alive (no recent heartbeat): check `systemctl status` of the agent and its message-bus \
             connection ([DEFAULT] transport_url)"
        };
        r.push(
            "agent",
            Status::Fail,
            format!("{} on host {host} {why}", a.agent_type),
        );
        return None;
    }
    // Nothing for this host: the usual cause is a host name mismatch.
    let others = n
        .list_agents(&Query::new())
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|a| L2_AGENT_TYPES.contains(&a.agent_type.as_str()))
        .map(|a| a.host)
        .collect::<Vec<_>>();
    let hint = if others.is_empty() {
        String::new()
    } else {
        format!(" (L2 agents report hosts {})", others.join(", "))
    };
    r.push(
        "agent",
        Status::Fail,
        format!(
            "no Neutron L2 agent reports host {host}{hint}: start the agent (systemctl enable --now \
             neutron-openvswitch-agent) with [DEFAULT] host = {host}, the binding host kuryr uses"
        ),
    );
    None
}

async fn check_ovs(r: &mut Report, timeout: Duration) {
    let run = tokio::process::Command::new("ovs-vsctl")
        .args([
            format!("--timeout={}", timeout.as_secs().max(1)),
            "br-exists".into(),
            crate::cluster::render::INTEGRATION_BRIDGE.into(),
        ])
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(timeout + Duration::from_secs(1), run).await {
        Err(_) => r.push(
            "ovs",
            Status::Fail,
            "ovs-vsctl did not answer: is ovsdb-server running? (systemctl status openvswitch-switch)",
        ),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => r.push(
            "ovs",
            Status::Fail,
            "ovs-vsctl not found: install Open vSwitch (kuryr_mode agent with the ovs agent needs it)",
        ),
        Ok(Err(e)) => r.push("ovs", Status::Fail, format!("cannot run ovs-vsctl: {e}")),
        Ok(Ok(out)) => match out.status.code() {
            Some(0) => r.push("ovs", Status::Ok, "Open vSwitch bridge br-int exists"),
            Some(2) => r.push(
                "ovs",
                Status::Fail,
                "Open vSwitch bridge br-int does not exist: the OVS agent creates it when it starts \
                 (check the agent), or re-run `kuryr node setup`",
            ),
            _ => r.push(
                "ovs",
                Status::Fail,
                format!(
                    "ovs-vsctl br-exists br-int failed: {}: is ovsdb-server running?",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ),
        },
    }
}

/// Where the driver serves Docker according to the configuration (the
/// default socket when the configuration does not load).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Listener {
    Socket(PathBuf),
    /// `host:port` of `kuryr_uri`.
    Tcp(String),
}

fn driver_listener(c: Option<&Config>) -> Listener {
    match c {
        Some(c) => match &c.default.plugin_socket {
            Some(p) => Listener::Socket(p.clone()),
            None => Listener::Tcp(c.default.kuryr_listen.to_string()),
        },
        None => Listener::Socket(PathBuf::from(paths::PLUGIN_SOCKET)),
    }
}

async fn check_driver(r: &mut Report, listener: &Listener, timeout: Duration) {
    let (endpoint, shown) = match listener {
        Listener::Socket(p) => {
            if !p.exists() {
                r.push(
                    "driver",
                    Status::Fail,
                    format!(
                        "no socket at {}: the driver is not running; start it (systemctl enable --now kuryr.service) \
                         and read its log (journalctl -u kuryr)",
                        p.display()
                    ),
                );
                return;
            }
            (Endpoint::Unix(p.clone()), p.display().to_string())
        }
        Listener::Tcp(hp) => (Endpoint::Tcp(hp.clone()), format!("http://{hp}")),
    };
    let activate = match http::request(&endpoint, "POST", "/Plugin.Activate", None, timeout).await {
        Ok(resp) if resp.status == 200 => resp.json(),
        Ok(resp) => {
            r.push(
                "driver",
                Status::Fail,
                format!(
                    "{shown} answered /Plugin.Activate with HTTP {}: {}",
                    resp.status,
                    String::from_utf8_lossy(&resp.body).trim()
                ),
            );
            return;
        }
        Err(http::HttpError::Connect(e)) => {
            r.push(
                "driver",
                Status::Fail,
                format!(
                    "cannot connect to {shown} ({e}): nothing listens there; restart the driver \
                     (systemctl restart kuryr.service) and read its log (journalctl -u kuryr)"
                ),
            );
            return;
        }
        Err(e) => {
            r.push("driver", Status::Fail, format!("{shown}: {e}"));
            return;
        }
    };
    let implements: Vec<String> = activate
        .as_ref()
        .and_then(|v| v["Implements"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    if !(implements.iter().any(|i| i == "NetworkDriver")
        && implements.iter().any(|i| i == "IpamDriver"))
    {
        r.push(
            "driver",
            Status::Fail,
            format!(
                "{shown} implements {implements:?}, not NetworkDriver and IpamDriver: is another program on this socket?"
            ),
        );
        return;
    }
    let scope = http::request(
        &endpoint,
        "POST",
        "/NetworkDriver.GetCapabilities",
        None,
        timeout,
    )
    .await
    .ok()
    .and_then(|resp| resp.json())
    .and_then(|v| v["Scope"].as_str().map(str::to_string))
    .unwrap_or_else(|| "unknown".into());
    r.push(
        "driver",
        Status::Ok,
        format!(
            "{shown} answers /Plugin.Activate ({}); scope {scope}",
            implements.join(", ")
        ),
    );
}

/// What Docker's plugin discovery finds first for `kuryr`, on this host.
fn docker_finds() -> Option<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    DOCKER_PLUGIN_LOOKUP.iter().map(PathBuf::from).find(|p| {
        if p.extension().is_some_and(|e| e == "sock") {
            std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
        } else {
            p.exists()
        }
    })
}

/// The `host:port` a spec (`URL`) or json (`{"Addr": URL}`) plugin file
/// points at.
fn spec_target(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let url = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str::<serde_json::Value>(&text).ok()?["Addr"]
            .as_str()?
            .to_string()
    } else {
        text.trim().to_string()
    };
    let u = super::params::parse_url(&url)?;
    Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?))
}

async fn check_docker(r: &mut Report, listener: &Listener, docker_host: &str, timeout: Duration) {
    let Some(endpoint) = Endpoint::parse(docker_host) else {
        r.push(
            "docker",
            Status::Fail,
            format!("--docker-host {docker_host:?} is not unix:///PATH or tcp://HOST:PORT"),
        );
        return;
    };
    let version = match http::request(&endpoint, "GET", "/version", None, timeout).await {
        Ok(resp) if resp.status == 200 => resp.json().unwrap_or_default(),
        Ok(resp) => {
            r.push(
                "docker",
                Status::Fail,
                format!(
                    "dockerd at {endpoint} answered /version with HTTP {}",
                    resp.status
                ),
            );
            return;
        }
        Err(e) => {
            r.push(
                "docker",
                Status::Fail,
                format!("cannot reach dockerd at {endpoint}: {e}: is docker running? (systemctl status docker)"),
            );
            return;
        }
    };
    let found = docker_finds();
    let expected = match listener {
        Listener::Socket(p) => {
            let ok = found.as_ref().is_some_and(|f| {
                f == p || std::fs::canonicalize(f).ok() == std::fs::canonicalize(p).ok()
            });
            if !ok {
                let why = match &found {
                    Some(f) => format!(
                        "dockerd would use {} for driver kuryr, not the driver's socket {}: remove {}",
                        f.display(),
                        p.display(),
                        f.display()
                    ),
                    None => format!(
                        "dockerd finds no plugin named kuryr: it looks for {} (then {}, then spec files), but the \
                         driver listens on {}: set [DEFAULT] plugin_socket = {}",
                        DOCKER_PLUGIN_LOOKUP[0],
                        DOCKER_PLUGIN_LOOKUP[1],
                        p.display(),
                        DOCKER_PLUGIN_LOOKUP[0]
                    ),
                };
                r.push("docker", Status::Fail, why);
                return;
            }
            p.display().to_string()
        }
        Listener::Tcp(hp) => {
            let target = found.as_ref().and_then(|f| spec_target(f));
            if target.as_deref() != Some(hp.as_str()) {
                let why = match &found {
                    Some(f) => format!(
                        "dockerd would use {} ({}) for driver kuryr, but the driver listens on {hp}",
                        f.display(),
                        target.as_deref().unwrap_or("unreadable")
                    ),
                    None => format!(
                        "dockerd finds no plugin named kuryr: write http://{hp} into {} (kuryr node setup does, \
                         with driver.plugin tcp)",
                        paths::PLUGIN_SPEC
                    ),
                };
                r.push("docker", Status::Fail, why);
                return;
            }
            let f = found.unwrap_or_default();
            format!("{} (http://{hp})", f.display())
        }
    };
    let info = http::request(&endpoint, "GET", "/info", None, timeout)
        .await
        .ok()
        .and_then(|resp| resp.json());
    let in_use = info
        .as_ref()
        .and_then(|i| i["Plugins"]["Network"].as_array().cloned())
        .is_some_and(|n| n.iter().any(|d| d == "kuryr"));
    let swarm = info
        .as_ref()
        .and_then(|i| i["Swarm"]["LocalNodeState"].as_str().map(str::to_string))
        .unwrap_or_default();
    let networks = http::request(
        &endpoint,
        "GET",
        "/networks?filters=%7B%22driver%22%3A%5B%22kuryr%22%5D%7D",
        None,
        timeout,
    )
    .await
    .ok()
    .and_then(|resp| resp.json())
    .and_then(|v| v.as_array().map(Vec::len));
    let mut msg = format!(
        "dockerd {} (API {}) at {endpoint} finds driver kuryr at {expected}",
        version["Version"].as_str().unwrap_or("?"),
        version["ApiVersion"].as_str().unwrap_or("?"),
    );
    if let Some(n) = networks {
        msg.push_str(&format!(
            "; {n} kuryr network{}",
            if n == 1 { "" } else { "s" }
        ));
    }
    if in_use {
        msg.push_str(" (in use: Plugins.Network lists kuryr)");
    }
    if swarm == "active" {
        msg.push_str(
            "; swarm mode is active: `docker run` works on kuryr networks, swarm services need the managed \
             v2 plugin (driver.plugin managed in the cluster parameters)",
        );
    }
    r.push("docker", Status::Ok, msg);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format() {
        let l = CheckLine {
            name: "keystone",
            status: Status::Fail,
            message: "x".into(),
        };
        assert_eq!(l.to_string(), "FAIL keystone: x");
        let l = CheckLine {
            name: "docker",
            status: Status::Ok,
            message: "y".into(),
        };
        assert_eq!(l.to_string(), "OK   docker: y");
    }

    #[test]
    fn extensions_per_mode() {
        let conf = |port: &str, binding: &str| {
            Config::from_texts(&[(
                "t",
                &format!(
                    "[DEFAULT]\ndefault_port_driver = {port}\nenabled_port_drivers = {port}\n\
                     [binding]\ndefault_driver = {binding}\nenabled_drivers = {binding}\n"
                ),
            )])
            .expect("config")
        };
        let aliases = |c: &Config| {
            required_extensions(c)
                .into_iter()
                .map(|(a, _)| a[0])
                .collect::<Vec<_>>()
        };
        assert_eq!(
            aliases(&conf("veth", "veth")),
            vec![
                "subnet_allocation",
                "standard-attr-tag",
                "binding",
                "security-group"
            ]
        );
        assert_eq!(
            aliases(&conf("nested", "macvlan")),
            vec![
                "subnet_allocation",
                "standard-attr-tag",
                "allowed-address-pairs",
                "security-group"
            ]
        );
        assert_eq!(
            aliases(&conf("vlan", "vlan")),
            vec![
                "subnet_allocation",
                "standard-attr-tag",
                "trunk",
                "trunk-details",
                "security-group"
            ]
        );
    }

    #[test]
    fn spec_targets() {
        let dir = std::env::temp_dir().join(format!("kuryr-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = dir.join("kuryr.spec");
        std::fs::write(&spec, "http://127.0.0.1:23750\n").unwrap();
        assert_eq!(spec_target(&spec).as_deref(), Some("127.0.0.1:23750"));
        let json = dir.join("kuryr.json");
        std::fs::write(&json, r#"{"Name": "kuryr", "Addr": "http://[::1]:23750"}"#).unwrap();
        assert_eq!(spec_target(&json).as_deref(), Some("[::1]:23750"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn listeners() {
        let c = Config::from_texts(&[(
            "t",
            "[DEFAULT]\nplugin_socket =\nkuryr_uri = http://127.0.0.1:23750\n",
        )])
        .unwrap();
        assert_eq!(
            driver_listener(Some(&c)),
            Listener::Tcp("127.0.0.1:23750".into())
        );
        assert_eq!(
            driver_listener(None),
            Listener::Socket("/run/docker/plugins/kuryr.sock".into())
        );
    }
}
