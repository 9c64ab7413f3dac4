//! `[DEFAULT]`: how the daemon serves Docker, and global naming.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::drivers::PortDriverKind;
use super::error::{ConfigError, Origin};
use super::oslo::DEFAULT_SECTION;
use super::source::{Found, Group, Opt, Sources};

/// The libnetwork scope reported to Docker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CapabilityScope {
    /// Networks exist per Docker host (the only mode Docker ≥ 23 supports
    /// without an external cluster store).
    #[default]
    Local,
    /// Networks are shared across hosts through Docker's cluster store.
    Global,
}

impl CapabilityScope {
    /// The libnetwork spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CapabilityScope::Local => "local",
            CapabilityScope::Global => "global",
        }
    }
}

impl FromStr for CapabilityScope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "local" => Ok(CapabilityScope::Local),
            "global" => Ok(CapabilityScope::Global),
            _ => Err(SCOPE_EXPECTED.to_string()),
        }
    }
}

impl fmt::Display for CapabilityScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const SCOPE_EXPECTED: &str = "one of local, global";

/// Host and port of the HTTP listener taken from `kuryr_uri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddr {
    /// Host name or address, without IPv6 brackets.
    pub host: String,
    pub port: u16,
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Flask's port when `kuryr_uri` names none: kuryr-libnetwork passes
/// `urlparse(kuryr_uri).port`, i.e. `None`, to `app.run`.
const FLASK_DEFAULT_PORT: u16 = 5000;

/// The `[DEFAULT]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultSection {
    /// `kuryr_uri`: where kuryr-libnetwork's own server listens.
    pub kuryr_uri: String,
    /// Whether `kuryr_uri` was set (in a file or through `OS_KURYR_URI`)
    /// rather than left at its default.
    pub kuryr_uri_explicit: bool,
    /// `kuryr_uri` reduced to what a listener needs.
    pub kuryr_listen: ListenAddr,
    pub capability_scope: CapabilityScope,
    /// Our addition: libnetwork `ConnectivityScope`; `None` reports the
    /// capability scope, which is also what Docker assumes when it is absent.
    pub connectivity_scope: Option<CapabilityScope>,
    pub local_default_address_space: String,
    pub global_default_address_space: String,
    /// `default_port_driver` (formerly `port_driver`).
    pub default_port_driver: PortDriverKind,
    pub enabled_port_drivers: Vec<PortDriverKind>,
    pub process_external_connectivity: bool,
    /// Serve `kuryr_uri` over HTTPS with `ssl_cert_file` and `ssl_key_file`
    /// (kuryr-libnetwork's Flask `ssl_context`).
    pub enable_ssl: bool,
    pub ssl_cert_file: PathBuf,
    pub ssl_key_file: PathBuf,
    /// Our addition: serve `kuryr_uri` on an address other than loopback.
    /// The plugin API has no authentication, so this is refused unless set.
    pub allow_remote_api: bool,
    /// Our addition: a configuration file readable by group or others is
    /// an error instead of a warning.
    pub strict_config_permissions: bool,
    /// Where kuryr-lib's per-vif-type binding scripts live.
    pub bindir: PathBuf,
    pub subnetpool_name_prefix: String,
    pub debug: bool,
    pub log_file: Option<PathBuf>,
    pub log_dir: Option<PathBuf>,
    /// oslo.log's other outputs and formats.
    pub logging: LoggingOptions,
    /// Our addition: the `binding:host_id` to set on ports; `None` means
    /// the machine's host name, as kuryr-libnetwork always uses.
    pub host: Option<String>,
    /// Our addition: the Docker plugin unix socket; `None` (set to "")
    /// serves no socket.
    pub plugin_socket: Option<PathBuf>,
    /// Our addition: leftovers younger than this are not orphans yet
    /// (`None`: the driver's default, 300 s).
    pub orphan_grace: Option<Duration>,
    /// Our addition: seconds between orphan collections after the one at
    /// start-up (`None`: 600 s; 0: only at start-up).
    pub orphan_interval: Option<Duration>,
    /// Our addition: Docker gets an answer within this many seconds
    /// (`None`: 25 s); past it the call rolls back.
    pub call_timeout: Option<Duration>,
    /// Our addition: the dockerd this driver serves (`unix:///path` or
    /// `tcp://host:port`), read by orphan collection only, never by a
    /// request handler, to find networks whose CreateNetwork Docker never
    /// recorded (a crash after Neutron's last write); `None`: not read.
    pub docker_host: Option<String>,
    /// Our addition: ports kept made ahead per subnet this host hands
    /// addresses from (local scope), so a `docker run` makes no port
    /// inside dockerd's per-network queue; 0 (the default): none.
    pub ports_pool_size: usize,
}

/// oslo.log's `use_stderr`, `use_journal`, `use_syslog` (with
/// `syslog_log_facility`) and `use_json`, with oslo.log's defaults (all
/// off). Where the lines go is decided in [`crate::logging`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoggingOptions {
    pub use_stderr: bool,
    pub use_journal: bool,
    pub use_syslog: bool,
    pub syslog_log_facility: SyslogFacility,
    pub use_json: bool,
}

/// A syslog facility, by oslo.log's names (`LOG_USER`, `LOG_LOCAL0`; the
/// `LOG_` prefix and case are optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyslogFacility(pub u8);

impl Default for SyslogFacility {
    fn default() -> Self {
        SyslogFacility(1)
    }
}

impl SyslogFacility {
    const NAMES: [(&'static str, u8); 20] = [
        ("kern", 0),
        ("user", 1),
        ("mail", 2),
        ("daemon", 3),
        ("auth", 4),
        ("syslog", 5),
        ("lpr", 6),
        ("news", 7),
        ("uucp", 8),
        ("cron", 9),
        ("authpriv", 10),
        ("ftp", 11),
        ("local0", 16),
        ("local1", 17),
        ("local2", 18),
        ("local3", 19),
        ("local4", 20),
        ("local5", 21),
        ("local6", 22),
        ("local7", 23),
    ];

    fn parse(s: &str) -> Option<SyslogFacility> {
        let s = s.trim().to_ascii_lowercase();
        let name = s.strip_prefix("log_").unwrap_or(&s);
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, code)| SyslogFacility(*code))
    }
}

impl DefaultSection {
    /// The connectivity scope to report.
    pub fn connectivity_scope(&self) -> CapabilityScope {
        self.connectivity_scope.unwrap_or(self.capability_scope)
    }

    /// The log file as oslo.log computes it: `log_dir/log_file`, or
    /// `log_dir/<program>.log` when only the directory is set.
    pub fn log_path(&self, program: &str) -> Option<PathBuf> {
        match (&self.log_dir, &self.log_file) {
            (None, Some(file)) => Some(file.clone()),
            (Some(dir), Some(file)) => Some(dir.join(file)),
            (Some(dir), None) => Some(dir.join(format!("{program}.log"))),
            (None, None) => None,
        }
    }
}

pub(crate) const KURYR_URI: Opt = Opt::new("kuryr_uri").default("http://127.0.0.1:23750");
pub(crate) const CAPABILITY_SCOPE: Opt = Opt::new("capability_scope").default("local");
const CONNECTIVITY_SCOPE: Opt = Opt::new("connectivity_scope");
const LOCAL_ADDRESS_SPACE: Opt =
    Opt::new("local_default_address_space").default("no_address_space");
const GLOBAL_ADDRESS_SPACE: Opt =
    Opt::new("global_default_address_space").default("no_address_space");
// kuryr-libnetwork registers `port_driver` as a separate, deprecated option
// that nothing reads; we honour it as the old name of default_port_driver.
pub(crate) const DEFAULT_PORT_DRIVER: Opt = Opt::new("default_port_driver")
    .default("kuryr_libnetwork.port_driver.drivers.veth")
    .deprecated(&["port_driver"]);
pub(crate) const ENABLED_PORT_DRIVERS: Opt =
    Opt::new("enabled_port_drivers").default("kuryr_libnetwork.port_driver.drivers.veth");
const PROCESS_EXTERNAL_CONNECTIVITY: Opt =
    Opt::new("process_external_connectivity").default("true");
const ENABLE_SSL: Opt = Opt::new("enable_ssl").default("false");
const SSL_CERT_FILE: Opt = Opt::new("ssl_cert_file").default("/var/lib/kuryr/certs/cert.pem");
const SSL_KEY_FILE: Opt = Opt::new("ssl_key_file").default("/var/lib/kuryr/certs/key.pem");
const ALLOW_REMOTE_API: Opt = Opt::new("allow_remote_api").default("false");
pub(crate) const STRICT_CONFIG_PERMISSIONS: Opt =
    Opt::new("strict_config_permissions").default("false");
const BINDIR: Opt = Opt::new("bindir").default("/usr/libexec/kuryr");
const SUBNETPOOL_NAME_PREFIX: Opt = Opt::new("subnetpool_name_prefix").default("kuryrPool");
const DEBUG: Opt = Opt::new("debug").default("false");
const LOG_FILE: Opt = Opt::new("log_file").deprecated(&["logfile"]);
const LOG_DIR: Opt = Opt::new("log_dir").deprecated(&["logdir"]);
const USE_STDERR: Opt = Opt::new("use_stderr").default("false");
const USE_JOURNAL: Opt = Opt::new("use_journal").default("false");
const USE_SYSLOG: Opt = Opt::new("use_syslog").default("false");
const SYSLOG_LOG_FACILITY: Opt = Opt::new("syslog_log_facility").default("LOG_USER");
const USE_JSON: Opt = Opt::new("use_json").default("false");
const HOST: Opt = Opt::new("host");
pub(crate) const PLUGIN_SOCKET: Opt =
    Opt::new("plugin_socket").default(crate::paths::PLUGIN_SOCKET);
const ORPHAN_GRACE: Opt = Opt::new("orphan_grace");
const ORPHAN_INTERVAL: Opt = Opt::new("orphan_interval");
const CALL_TIMEOUT: Opt = Opt::new("call_timeout");
const DOCKER_HOST: Opt = Opt::new("docker_host");
const PORTS_POOL_SIZE: Opt = Opt::new("ports_pool_size").default("0");
/// The most ports [`DefaultSection::ports_pool_size`] may keep per subnet.
pub const MAX_PORTS_POOL_SIZE: usize = 1000;

/// Options we read.
pub(crate) const OPTS: &[Opt] = &[
    KURYR_URI,
    CAPABILITY_SCOPE,
    CONNECTIVITY_SCOPE,
    LOCAL_ADDRESS_SPACE,
    GLOBAL_ADDRESS_SPACE,
    DEFAULT_PORT_DRIVER,
    ENABLED_PORT_DRIVERS,
    PROCESS_EXTERNAL_CONNECTIVITY,
    ENABLE_SSL,
    SSL_CERT_FILE,
    SSL_KEY_FILE,
    ALLOW_REMOTE_API,
    STRICT_CONFIG_PERMISSIONS,
    BINDIR,
    SUBNETPOOL_NAME_PREFIX,
    DEBUG,
    LOG_FILE,
    LOG_DIR,
    USE_STDERR,
    USE_JOURNAL,
    USE_SYSLOG,
    SYSLOG_LOG_FACILITY,
    USE_JSON,
    HOST,
    PLUGIN_SOCKET,
    ORPHAN_GRACE,
    ORPHAN_INTERVAL,
    CALL_TIMEOUT,
    DOCKER_HOST,
    PORTS_POOL_SIZE,
];

/// Options kuryr-libnetwork registers in `[DEFAULT]` that we accept without
/// a warning but do not use: its unused ones, oslo.log's and oslo.config's.
pub(crate) const IGNORED_OPTS: &[Opt] = &[
    Opt::new("pybasedir"),
    Opt::new("deployment_type"),
    Opt::new("config_file"),
    Opt::new("config_dir"),
    Opt::new("config_source"),
    Opt::new("verbose"),
    Opt::new("log_config_append").deprecated(&["log_config", "log-config"]),
    Opt::new("log_date_format"),
    Opt::new("watch_log_file"),
    Opt::new("use_eventlog"),
    Opt::new("log_color"),
    Opt::new("log_rotate_interval"),
    Opt::new("log_rotate_interval_type"),
    Opt::new("max_logfile_count"),
    Opt::new("max_logfile_size_mb"),
    Opt::new("log_rotation_type"),
    Opt::new("logging_context_format_string"),
    Opt::new("logging_default_format_string"),
    Opt::new("logging_debug_format_suffix"),
    Opt::new("logging_exception_prefix"),
    Opt::new("logging_user_identity_format"),
    Opt::new("default_log_levels"),
    Opt::new("publish_errors"),
    Opt::new("instance_format"),
    Opt::new("instance_uuid_format"),
    Opt::new("rate_limit_interval"),
    Opt::new("rate_limit_burst"),
    Opt::new("rate_limit_except_level"),
    Opt::new("fatal_deprecations"),
];

/// An option whose default kuryr-libnetwork takes from the environment:
/// the file wins, then the variable, then the built-in default.
fn with_env_default(
    g: &Group<'_>,
    opt: &Opt,
    var: &'static str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Found, bool), ConfigError> {
    if let Some(found) = g.found(opt)? {
        return Ok((found, true));
    }
    if let Some(value) = env(var).filter(|v| !v.is_empty()) {
        let found = Found {
            text: value,
            origin: Origin::Env(var),
            key: opt.name.to_string(),
        };
        return Ok((found, true));
    }
    let found = Found {
        text: opt.default.unwrap_or_default().to_string(),
        origin: Origin::Default,
        key: opt.name.to_string(),
    };
    Ok((found, false))
}

/// `plugin_socket`: an absolute path, or empty for no unix socket.
fn plugin_socket(g: &Group) -> Result<Option<PathBuf>, ConfigError> {
    Ok(match g.value(&PLUGIN_SOCKET)? {
        Some(f) if f.text.trim().is_empty() => None,
        Some(f) if !Path::new(f.text.trim()).is_absolute() => {
            return Err(g.invalid(
                &PLUGIN_SOCKET,
                &f,
                "an absolute path, or nothing for no unix socket",
            ));
        }
        Some(f) => Some(PathBuf::from(f.text.trim())),
        None => None,
    })
}

/// `docker_host`: `unix:///path` or `tcp://host:port`, or empty for none.
fn docker_host(g: &Group) -> Result<Option<String>, ConfigError> {
    Ok(match g.value(&DOCKER_HOST)? {
        Some(f) if f.text.trim().is_empty() => None,
        Some(f) if crate::cluster::http::Endpoint::parse(f.text.trim()).is_none() => {
            return Err(g.invalid(
                &DOCKER_HOST,
                &f,
                "unix:///path or tcp://host:port (the dockerd this driver serves), or nothing",
            ));
        }
        Some(f) => Some(f.text.trim().to_string()),
        None => None,
    })
}

impl DefaultSection {
    pub(crate) fn load(
        src: &Sources,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let g = Group::new(src, DEFAULT_SECTION);

        let (uri, kuryr_uri_explicit) = with_env_default(&g, &KURYR_URI, "OS_KURYR_URI", env)?;
        let (host, port) = parse_http_uri(uri.text.trim()).ok_or_else(|| {
            g.invalid(
                &KURYR_URI,
                &uri,
                "an http:// or https:// URL with a host, such as http://127.0.0.1:23750",
            )
        })?;
        let port = port.unwrap_or_else(|| {
            src.warn(format!(
                "{}: [DEFAULT] kuryr_uri {:?} has no port; listening on {FLASK_DEFAULT_PORT} as kuryr-libnetwork (Flask) does",
                uri.origin, uri.text
            ));
            FLASK_DEFAULT_PORT
        });

        let (scope, _) = with_env_default(&g, &CAPABILITY_SCOPE, "CAPABILITY_SCOPE", env)?;
        let capability_scope = scope
            .text
            .parse()
            .map_err(|e: String| g.invalid(&CAPABILITY_SCOPE, &scope, e))?;

        let default_port_driver =
            g.parse(&DEFAULT_PORT_DRIVER, &PortDriverKind::expected(), |s| {
                s.parse().ok()
            })?;
        let enabled_port_drivers =
            parse_each(&g, &ENABLED_PORT_DRIVERS, &PortDriverKind::expected())?;

        let plugin_socket = plugin_socket(&g)?;

        Ok(DefaultSection {
            kuryr_uri: uri.text.trim().to_string(),
            kuryr_uri_explicit,
            kuryr_listen: ListenAddr { host, port },
            capability_scope,
            connectivity_scope: g
                .parse_opt(&CONNECTIVITY_SCOPE, SCOPE_EXPECTED, |s| s.parse().ok())?,
            local_default_address_space: g.string(&LOCAL_ADDRESS_SPACE)?,
            global_default_address_space: g.string(&GLOBAL_ADDRESS_SPACE)?,
            default_port_driver,
            enabled_port_drivers,
            process_external_connectivity: g.bool(&PROCESS_EXTERNAL_CONNECTIVITY)?,
            enable_ssl: g.bool(&ENABLE_SSL)?,
            ssl_cert_file: PathBuf::from(g.string(&SSL_CERT_FILE)?),
            ssl_key_file: PathBuf::from(g.string(&SSL_KEY_FILE)?),
            allow_remote_api: g.bool(&ALLOW_REMOTE_API)?,
            strict_config_permissions: g.bool(&STRICT_CONFIG_PERMISSIONS)?,
            bindir: PathBuf::from(g.string(&BINDIR)?),
            subnetpool_name_prefix: g.string(&SUBNETPOOL_NAME_PREFIX)?,
            debug: g.bool(&DEBUG)?,
            log_file: g.opt_string(&LOG_FILE)?.map(PathBuf::from),
            log_dir: g.opt_string(&LOG_DIR)?.map(PathBuf::from),
            logging: LoggingOptions {
                use_stderr: g.bool(&USE_STDERR)?,
                use_journal: g.bool(&USE_JOURNAL)?,
                use_syslog: g.bool(&USE_SYSLOG)?,
                syslog_log_facility: g.parse(
                    &SYSLOG_LOG_FACILITY,
                    "a syslog facility: LOG_USER, LOG_DAEMON, LOG_LOCAL0 ... LOG_LOCAL7, ...",
                    SyslogFacility::parse,
                )?,
                use_json: g.bool(&USE_JSON)?,
            },
            host: g
                .opt_string(&HOST)?
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty()),
            plugin_socket,
            orphan_grace: g.seconds(&ORPHAN_GRACE)?,
            orphan_interval: g.seconds(&ORPHAN_INTERVAL)?,
            call_timeout: g.seconds(&CALL_TIMEOUT)?,
            docker_host: docker_host(&g)?,
            ports_pool_size: g.parse(
                &PORTS_POOL_SIZE,
                "a whole number of ports from 0 to 1000",
                |v| v.trim().parse().ok().filter(|n| *n <= MAX_PORTS_POOL_SIZE),
            )?,
        })
    }
}

/// Parse every item of a list option, dropping repeats, and name the bad
/// item in errors.
pub(crate) fn parse_each<T: FromStr + PartialEq>(
    g: &Group<'_>,
    opt: &Opt,
    expected: &str,
) -> Result<Vec<T>, ConfigError> {
    let Some(found) = g.value(opt)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in super::source::parse_list(&found.text) {
        let Ok(kind) = item.parse::<T>() else {
            let one = Found {
                text: item,
                ..found.clone()
            };
            return Err(g.invalid(opt, &one, format!("a comma-separated list of {expected}")));
        };
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    Ok(out)
}

/// Host and port of an `http(s)://host[:port][/...]` URL, the parts
/// kuryr-libnetwork takes from `urlparse(kuryr_uri)`.
fn parse_http_uri(uri: &str) -> Option<(String, Option<u16>)> {
    let (scheme, rest) = uri.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Drop any user:password@ part.
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    let port = match port {
        // "host:" has no port either, for urlparse.
        None | Some("") => None,
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0)?),
    };
    Some((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_uris() {
        let p = |s| parse_http_uri(s);
        assert_eq!(
            p("http://127.0.0.1:23750"),
            Some(("127.0.0.1".into(), Some(23750)))
        );
        assert_eq!(
            p("HTTPS://kuryr.local:443/path"),
            Some(("kuryr.local".into(), Some(443)))
        );
        assert_eq!(p("http://[::1]:23750"), Some(("::1".into(), Some(23750))));
        assert_eq!(p("http://[::1]"), Some(("::1".into(), None)));
        assert_eq!(
            p("http://u:pw@0.0.0.0:1"),
            Some(("0.0.0.0".into(), Some(1)))
        );
        assert_eq!(p("http://host:"), Some(("host".into(), None)));
        for bad in [
            "127.0.0.1:23750",
            "tcp://h:1",
            "http://:1",
            "http://h:70000",
            "http://h:x",
            "http://[::1",
            "",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    #[test]
    fn listen_addr_display_brackets_ipv6() {
        let v6 = ListenAddr {
            host: "::1".into(),
            port: 1,
        };
        assert_eq!(v6.to_string(), "[::1]:1");
    }
}
