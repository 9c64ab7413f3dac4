//! `driver`: the driver service on the nodes, and how Docker reaches it
//! (a socket, kuryr-libnetwork's TCP spec file, or a managed v2 plugin).

use std::path::{Path, PathBuf};

use url::{Host, Url};

use super::parse_url;
use crate::cluster::json::Fields;
use crate::paths::{self, SOCKET_PATHS};

/// How Docker reaches the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PluginMode {
    /// The driver serves `/run/docker/plugins/kuryr.sock` (root only);
    /// Docker discovers it there, no plugin file needed.
    #[default]
    Socket,
    /// kuryr-libnetwork's way: HTTP on loopback, announced by
    /// `/usr/lib/docker/plugins/kuryr/kuryr.spec`.
    Tcp,
    /// A managed (v2) Docker plugin, built by node setup from this binary
    /// and run by dockerd (swarm services need it).
    Managed,
}

impl PluginMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginMode::Socket => "socket",
            PluginMode::Tcp => "tcp",
            PluginMode::Managed => "managed",
        }
    }
}

/// The driver service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverParams {
    /// The `kuryr` binary on the nodes.
    pub binary: PathBuf,
    pub plugin: PluginMode,
    /// Socket mode: where the driver listens.
    pub socket: PathBuf,
    /// TCP mode: `kuryr_uri`.
    pub tcp_uri: String,
    /// `[DEFAULT] debug`.
    pub debug: bool,
    /// `[neutron] enable_dhcp` of the subnets the driver creates (Docker
    /// gives containers their addresses itself; with DHCP on, a DHCP
    /// agent's port joins each network).
    pub enable_dhcp: bool,
    /// Managed mode: the plugin reference (`docker plugin create NAME`).
    pub plugin_ref: String,
    /// Managed mode: a statically linked `kuryr` for the plugin's root file
    /// system, read by node setup where it runs; `None`: the running
    /// `kuryr`, which must then be static.
    pub plugin_binary: Option<PathBuf>,
}

/// The default managed plugin reference.
pub const DEFAULT_PLUGIN_REF: &str = "kuryr/kuryr:latest";

impl Default for DriverParams {
    fn default() -> Self {
        DriverParams {
            binary: PathBuf::from(paths::KURYR_BINARY),
            plugin: PluginMode::Socket,
            socket: PathBuf::from(paths::PLUGIN_SOCKET),
            tcp_uri: "http://127.0.0.1:23750".into(),
            debug: false,
            enable_dhcp: true,
            plugin_ref: DEFAULT_PLUGIN_REF.into(),
            plugin_binary: None,
        }
    }
}

/// Read `driver`; what is missing or wrong keeps its default.
pub(super) fn read(f: &mut Fields<'_>) -> DriverParams {
    let mut d = DriverParams::default();
    let Some(obj) = f.object("driver") else {
        return d;
    };
    let mut g = Fields::new(obj, "driver", f.out);
    g.reject_unknown(
        &[
            "binary",
            "plugin",
            "plugin_ref",
            "plugin_binary",
            "socket",
            "tcp_uri",
            "debug",
            "enable_dhcp",
        ],
        "driver",
    );
    if let Some(binary) = read_binary(&mut g) {
        d.binary = binary;
    }
    if let Some(plugin) = read_plugin(&mut g) {
        d.plugin = plugin;
    }
    if let Some(reference) = read_plugin_ref(&mut g) {
        d.plugin_ref = reference;
    }
    d.plugin_binary = read_plugin_binary(&mut g, d.plugin);
    if let Some(socket) = read_socket(&mut g) {
        d.socket = socket;
    }
    if let Some(uri) = read_tcp_uri(&mut g) {
        d.tcp_uri = uri;
    }
    d.debug = g.bool("debug", false);
    d.enable_dhcp = g.bool("enable_dhcp", true);
    d
}

fn read_binary(g: &mut Fields<'_>) -> Option<PathBuf> {
    let b = g.opt_str("binary")?;
    if Path::new(&b).is_absolute() {
        return Some(PathBuf::from(b));
    }
    g.problem(
        "binary",
        format!("driver.binary {b:?} must be an absolute path"),
    );
    None
}

fn read_plugin(g: &mut Fields<'_>) -> Option<PluginMode> {
    match g.opt_str("plugin").as_deref() {
        None => None,
        Some("socket") => Some(PluginMode::Socket),
        Some("tcp") => Some(PluginMode::Tcp),
        Some("managed") => Some(PluginMode::Managed),
        Some(other) => {
            g.problem(
                "plugin",
                format!(
                    "driver.plugin {other:?} is not supported: socket (the driver serves {}), \
                     tcp (kuryr-libnetwork's kuryr.spec on loopback) or managed (a v2 Docker plugin, \
                     for swarm services)",
                    paths::PLUGIN_SOCKET
                ),
            );
            None
        }
    }
}

fn read_plugin_ref(g: &mut Fields<'_>) -> Option<String> {
    let r = g.opt_str("plugin_ref")?;
    let ok = !r.is_empty()
        && r.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/:._-".contains(c));
    if ok {
        return Some(r);
    }
    g.problem(
        "plugin_ref",
        format!("driver.plugin_ref {r:?} is not a plugin reference like kuryr/kuryr:latest"),
    );
    None
}

/// Managed mode only: an absolute path.
fn read_plugin_binary(g: &mut Fields<'_>, plugin: PluginMode) -> Option<PathBuf> {
    let b = g.opt_str("plugin_binary")?;
    if plugin != PluginMode::Managed {
        g.problem(
            "plugin_binary",
            "driver.plugin_binary is the managed plugin's binary: set driver.plugin to managed, or remove it",
        );
        return None;
    }
    if Path::new(&b).is_absolute() && !b.contains('\n') {
        return Some(PathBuf::from(b));
    }
    g.problem(
        "plugin_binary",
        format!("driver.plugin_binary {b:?} must be an absolute path"),
    );
    None
}

/// Socket mode: only where Docker looks for a plugin named kuryr.
fn read_socket(g: &mut Fields<'_>) -> Option<PathBuf> {
    let s = g.opt_str("socket")?;
    if SOCKET_PATHS.contains(&s.as_str()) {
        return Some(PathBuf::from(s));
    }
    g.problem(
        "socket",
        format!(
            "driver.socket {s:?}: Docker finds a socket plugin named kuryr only at {} or {}",
            SOCKET_PATHS[0], SOCKET_PATHS[1]
        ),
    );
    None
}

/// TCP mode: an http URL on loopback with a port, without the trailing `/`.
fn read_tcp_uri(g: &mut Fields<'_>) -> Option<String> {
    let uri = g.opt_str("tcp_uri")?;
    if parse_url(&uri).is_some_and(|u| is_loopback_http(&uri, &u)) {
        return Some(uri.trim_end_matches('/').to_string());
    }
    g.problem(
        "tcp_uri",
        format!(
            "driver.tcp_uri {uri:?} must be http://127.0.0.1:PORT or http://[::1]:PORT: \
             the plugin API has no authentication, so it must stay on loopback"
        ),
    );
    None
}

/// `http://` + a loopback address + a port, and nothing after it: what
/// `uri` (parsed as `u`) must be to serve the unauthenticated plugin API.
fn is_loopback_http(uri: &str, u: &Url) -> bool {
    let host_is_loopback = match u.host() {
        Some(Host::Ipv4(a)) => a.is_loopback(),
        Some(Host::Ipv6(a)) => a.is_loopback(),
        _ => false,
    };
    // `uri` itself goes into kuryr.conf and the spec file, so its host must
    // be written as the address it parses to (127.1 is 127.0.0.1 to the url
    // crate, a host name to Docker), and the url crate forgets a scheme's
    // default port: an explicit `:80` is only visible in the text.
    let written = u
        .host_str()
        .is_some_and(|h| uri.contains(&format!("//{h}:")) || uri.contains(&format!("@{h}:")));
    let has_port = u.port().is_some() || uri.trim_end_matches('/').ends_with(":80");
    u.scheme() == "http"
        && host_is_loopback
        && written
        && has_port
        && u.path().trim_end_matches('/').is_empty()
        && u.query().is_none()
        && u.fragment().is_none()
}
