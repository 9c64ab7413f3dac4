//! `driver`: the driver's socket (or TCP address, or the managed plugin's
//! socket) answers `/Plugin.Activate`; `docker`: dockerd answers, and its
//! plugin discovery finds the driver where it listens (or runs the managed
//! plugin).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{Report, Status};
use crate::cluster::http::{self, Endpoint};
use crate::config::Config;
use crate::paths::{self, DOCKER_PLUGIN_LOOKUP};

/// Where the driver serves Docker according to the configuration (the
/// default socket when the configuration does not load), or the managed
/// plugin dockerd runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Listener {
    Socket(PathBuf),
    /// `host:port` of `kuryr_uri`.
    Tcp(String),
    Managed(ManagedPlugin),
}

/// A managed kuryr plugin, as dockerd shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ManagedPlugin {
    /// `kuryr/kuryr:latest`: also the driver's name in `docker network
    /// create -d`.
    pub name: String,
    pub id: String,
    pub enabled: bool,
    /// Its socket under dockerd's default exec root.
    pub socket: PathBuf,
}

/// The managed kuryr plugin dockerd at `docker_host` has installed, if
/// any: a plugin whose entrypoint is the one node setup builds and that
/// is a network driver.
pub(super) async fn managed_plugin(docker_host: &str, timeout: Duration) -> Option<ManagedPlugin> {
    let endpoint = Endpoint::parse(docker_host)?;
    let plugins = get_json(&endpoint, "/plugins", timeout).await?;
    find_managed(&plugins)
}

/// [`managed_plugin`] in a `GET /plugins` answer.
pub(super) fn find_managed(plugins: &Value) -> Option<ManagedPlugin> {
    plugins.as_array()?.iter().find_map(|p| {
        let config = &p["Config"];
        let ours = config["Entrypoint"][0] == paths::PLUGIN_ENTRYPOINT
            && config["Interface"]["Types"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "docker.networkdriver/1.0"));
        if !ours {
            return None;
        }
        let id = p["Id"].as_str()?.to_string();
        let socket = config["Interface"]["Socket"]
            .as_str()
            .unwrap_or("kuryr.sock");
        Some(ManagedPlugin {
            name: p["Name"].as_str().unwrap_or_default().to_string(),
            enabled: p["Enabled"].as_bool().unwrap_or(false),
            socket: Path::new(paths::DOCKER_PLUGIN_RUNDIR)
                .join(&id)
                .join(socket),
            id,
        })
    })
}

pub(super) fn driver_listener(c: Option<&Config>) -> Listener {
    match c {
        Some(c) => match &c.default.plugin_socket {
            Some(p) => Listener::Socket(p.clone()),
            None => Listener::Tcp(c.default.kuryr_listen.to_string()),
        },
        None => Listener::Socket(PathBuf::from(paths::PLUGIN_SOCKET)),
    }
}

/// The driver answers as a network and IPAM driver.
pub(super) async fn check_driver(r: &mut Report, listener: &Listener, timeout: Duration) {
    match driver_answers(listener, timeout).await {
        Ok(message) => r.push("driver", Status::Ok, message),
        Err(message) => r.push("driver", Status::Fail, message),
    }
}

async fn driver_answers(listener: &Listener, timeout: Duration) -> Result<String, String> {
    let (endpoint, shown) = driver_endpoint(listener)?;
    let activate = plugin_activate(&endpoint, &shown, timeout).await?;
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
        return Err(format!(
            "{shown} implements {implements:?}, not NetworkDriver and IpamDriver: is another program on this socket?"
        ));
    }
    let scope = capability_scope(&endpoint, timeout).await;
    Ok(format!(
        "{shown} answers /Plugin.Activate ({}); scope {scope}",
        implements.join(", ")
    ))
}

/// Where to reach the driver, and how to show it.
fn driver_endpoint(listener: &Listener) -> Result<(Endpoint, String), String> {
    match listener {
        Listener::Managed(m) if !m.enabled => Err(format!(
            "the managed plugin {} is disabled: docker plugin enable {}",
            m.name, m.name
        )),
        Listener::Managed(m) if !m.socket.exists() => Err(format!(
            "the managed plugin {} is enabled but its socket {} is missing: dockerd could not start it \
             (its log says why; in agent mode with Open vSwitch the database socket it mounts must exist \
             when dockerd starts it), or dockerd's exec root is not the default",
            m.name,
            m.socket.display()
        )),
        Listener::Managed(m) => Ok((
            Endpoint::Unix(m.socket.clone()),
            format!("managed plugin {} ({})", m.name, m.socket.display()),
        )),
        Listener::Socket(p) if !p.exists() => Err(format!(
            "no socket at {}: the driver is not running; start it (systemctl enable --now kuryr.service) \
             and read its log (journalctl -u kuryr)",
            p.display()
        )),
        Listener::Socket(p) => Ok((Endpoint::Unix(p.clone()), p.display().to_string())),
        Listener::Tcp(hp) => Ok((Endpoint::Tcp(hp.clone()), format!("http://{hp}"))),
    }
}

/// `POST /Plugin.Activate`: its JSON body, when it answers 200.
async fn plugin_activate(
    endpoint: &Endpoint,
    shown: &str,
    timeout: Duration,
) -> Result<Option<Value>, String> {
    match http::request(endpoint, "POST", "/Plugin.Activate", None, timeout).await {
        Ok(resp) if resp.status == 200 => Ok(resp.json()),
        Ok(resp) => Err(format!(
            "{shown} answered /Plugin.Activate with HTTP {}: {}",
            resp.status,
            String::from_utf8_lossy(&resp.body).trim()
        )),
        Err(http::HttpError::Connect(e)) => Err(format!(
            "cannot connect to {shown} ({e}): nothing listens there; restart the driver \
             (systemctl restart kuryr.service) and read its log (journalctl -u kuryr)"
        )),
        Err(e) => Err(format!("{shown}: {e}")),
    }
}

/// The scope `/NetworkDriver.GetCapabilities` reports, or `unknown`.
async fn capability_scope(endpoint: &Endpoint, timeout: Duration) -> String {
    http::request(
        endpoint,
        "POST",
        "/NetworkDriver.GetCapabilities",
        None,
        timeout,
    )
    .await
    .ok()
    .and_then(|resp| resp.json())
    .and_then(|v| v["Scope"].as_str().map(str::to_string))
    .unwrap_or_else(|| "unknown".into())
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
pub(super) fn spec_target(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let url = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str::<Value>(&text).ok()?["Addr"]
            .as_str()?
            .to_string()
    } else {
        text.trim().to_string()
    };
    let u = crate::cluster::params::parse_url(&url)?;
    Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?))
}

/// dockerd answers, and finds the driver where it listens.
pub(super) async fn check_docker(
    r: &mut Report,
    listener: &Listener,
    docker_host: &str,
    timeout: Duration,
) {
    match docker_finds_driver(listener, docker_host, timeout).await {
        Ok(message) => r.push("docker", Status::Ok, message),
        Err(message) => r.push("docker", Status::Fail, message),
    }
}

async fn docker_finds_driver(
    listener: &Listener,
    docker_host: &str,
    timeout: Duration,
) -> Result<String, String> {
    let endpoint = Endpoint::parse(docker_host).ok_or_else(|| {
        format!("--docker-host {docker_host:?} is not unix:///PATH or tcp://HOST:PORT")
    })?;
    let version = docker_version(&endpoint, timeout).await?;
    let (expected, driver) = match listener {
        Listener::Socket(p) => (found_socket(p)?, "kuryr"),
        Listener::Tcp(hp) => (found_spec(hp)?, "kuryr"),
        Listener::Managed(m) if m.enabled => (
            format!("the managed plugin {} (enabled)", m.name),
            m.name.as_str(),
        ),
        Listener::Managed(m) => {
            return Err(format!(
                "dockerd has the managed plugin {} but it is disabled: docker plugin enable {}",
                m.name, m.name
            ));
        }
    };
    let info = get_json(&endpoint, "/info", timeout).await;
    let filter = serde_json::json!({"driver": [driver]}).to_string();
    let networks = get_json(
        &endpoint,
        &format!("/networks?filters={}", query_escape(&filter)),
        timeout,
    )
    .await
    .and_then(|v| v.as_array().map(Vec::len));
    Ok(docker_summary(
        &endpoint,
        &version,
        &expected,
        driver,
        info.as_ref(),
        networks,
    ))
}

/// `GET /version`, which must answer 200.
async fn docker_version(endpoint: &Endpoint, timeout: Duration) -> Result<Value, String> {
    match http::request(endpoint, "GET", "/version", None, timeout).await {
        Ok(resp) if resp.status == 200 => Ok(resp.json().unwrap_or_default()),
        Ok(resp) => Err(format!(
            "dockerd at {endpoint} answered /version with HTTP {}",
            resp.status
        )),
        Err(e) => Err(format!(
            "cannot reach dockerd at {endpoint}: {e}: is docker running? (systemctl status docker)"
        )),
    }
}

async fn get_json(endpoint: &Endpoint, path: &str, timeout: Duration) -> Option<Value> {
    http::request(endpoint, "GET", path, None, timeout)
        .await
        .ok()
        .and_then(|resp| resp.json())
}

/// Socket mode: Docker's discovery finds the driver's socket `p` first.
fn found_socket(p: &Path) -> Result<String, String> {
    let found = docker_finds();
    let same = found
        .as_ref()
        .is_some_and(|f| f == p || std::fs::canonicalize(f).ok() == std::fs::canonicalize(p).ok());
    if same {
        return Ok(p.display().to_string());
    }
    Err(match &found {
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
    })
}

/// TCP mode: Docker's discovery finds a spec file pointing at `hp`.
fn found_spec(hp: &str) -> Result<String, String> {
    let found = docker_finds();
    let target = found.as_ref().and_then(|f| spec_target(f));
    if target.as_deref() == Some(hp) {
        let f = found.unwrap_or_default();
        return Ok(format!("{} (http://{hp})", f.display()));
    }
    Err(match &found {
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
    })
}

/// `s` with every byte but unreserved ones percent-encoded, for a query.
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The `docker` line: dockerd's version, where it finds the driver, the
/// networks of `driver`, and a word on swarm mode.
fn docker_summary(
    endpoint: &Endpoint,
    version: &Value,
    expected: &str,
    driver: &str,
    info: Option<&Value>,
    networks: Option<usize>,
) -> String {
    let in_use = info
        .and_then(|i| i["Plugins"]["Network"].as_array())
        .is_some_and(|n| n.iter().any(|d| d == driver));
    let swarm = info
        .and_then(|i| i["Swarm"]["LocalNodeState"].as_str())
        .unwrap_or_default();
    let mut msg = format!(
        "dockerd {} (API {}) at {endpoint} finds driver {driver} at {expected}",
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
        msg.push_str(&format!(" (in use: Plugins.Network lists {driver})"));
    }
    if swarm == "active" && driver != "kuryr" {
        msg.push_str("; swarm mode is active: swarm services can use it");
    } else if swarm == "active" {
        msg.push_str(
            "; swarm mode is active: `docker run` works on kuryr networks, swarm services need the managed \
             v2 plugin (driver.plugin managed in the cluster parameters)",
        );
    }
    msg
}
