//! `kuryr.conf`: the configuration of kuryr-libnetwork, read with the same
//! rules, names, defaults and deprecated aliases, so an existing
//! `/etc/kuryr/kuryr.conf` works unchanged.
//!
//! - [`oslo`]: the oslo.config INI dialect (parser, `$reference`
//!   expansion, writer).
//! - [`Config`]: the typed sections `[DEFAULT]`, `[neutron]` (with the
//!   keystoneauth options, possibly in an `auth_section`) and `[binding]`,
//!   checked for consistency at load, plus non-fatal [`Config::warnings`].
//! - [`Config::session_config`]: the Keystone/Neutron session settings.

mod auth;
mod binding;
mod default;
mod drivers;
mod error;
mod metrics;
mod neutron;
pub mod oslo;
mod source;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use kuryr_openstack::{SessionConfig, TlsConfig};

pub use auth::{AuthOptions, AuthType};
pub use binding::BindingSection;
pub use default::{CapabilityScope, DefaultSection, ListenAddr, MAX_PORTS_POOL_SIZE};
pub use default::{LoggingOptions, SyslogFacility};
pub use drivers::{BindingDriverKind, PortDriverKind};
pub use error::{ConfigError, Origin, Place};
pub use metrics::{MetricsListen, MetricsSection};
pub use neutron::{MAX_VIF_PLUGGING_WAIT, NeutronSection};

use drivers::names;
use oslo::{DEFAULT_SECTION, Document};
use source::Sources;

/// The path kuryr-libnetwork's packaging and docs use.
pub const DEFAULT_CONFIG_FILE: &str = crate::paths::KURYR_CONF;

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub default: DefaultSection,
    pub neutron: NeutronSection,
    pub binding: BindingSection,
    /// Our addition: `[metrics]`.
    pub metrics: MetricsSection,
    /// The files (or labels) read, in order; later ones override earlier ones.
    pub files: Vec<String>,
    /// Things worth logging that do not stop the daemon: unknown sections
    /// and options, deprecated names, bounded waits.
    pub warnings: Vec<String>,
}

impl Config {
    /// Read and merge `paths` in order (like repeated `--config-file`).
    /// No paths gives the built-in defaults. As in kuryr-libnetwork, the
    /// environment variables `OS_KURYR_URI` and `CAPABILITY_SCOPE` change
    /// the defaults of `kuryr_uri` and `capability_scope`.
    pub fn load(paths: &[PathBuf]) -> Result<Config, ConfigError> {
        let mut docs = Vec::with_capacity(paths.len());
        for path in paths {
            let read_error = |source| ConfigError::Read {
                path: path.clone(),
                source,
            };
            let bytes = std::fs::read(path).map_err(read_error)?;
            let text = String::from_utf8(bytes)
                .map_err(|e| read_error(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
            docs.push(Document::parse_known(
                path.display().to_string(),
                &text,
                &is_known_key,
            )?);
        }
        let mut config = build(docs, &|var| std::env::var(var).ok())?;
        config.check_permissions(paths)?;
        Ok(config)
    }

    /// `kuryr.conf` holds the Keystone credential: a file group or others
    /// may read or write is a warning, or with `[DEFAULT]
    /// strict_config_permissions` an error naming every such file.
    fn check_permissions(&mut self, paths: &[PathBuf]) -> Result<(), ConfigError> {
        use std::os::unix::fs::PermissionsExt;
        let loose: Vec<String> = paths
            .iter()
            .filter_map(|p| {
                let mode = std::fs::metadata(p).ok()?.permissions().mode() & 0o777;
                (mode & 0o077 != 0).then(|| {
                    format!(
                        "{} has mode {mode:04o}: group or others may read it, and it holds the \
                         Keystone credential; chmod 600 {}",
                        p.display(),
                        p.display()
                    )
                })
            })
            .collect();
        if loose.is_empty() {
            return Ok(());
        }
        if self.default.strict_config_permissions {
            return Err(ConfigError::Permissions(loose));
        }
        self.warnings.extend(
            loose.into_iter().map(|w| {
                format!("{w} ([DEFAULT] strict_config_permissions = true refuses to start)")
            }),
        );
        Ok(())
    }

    /// Warnings about how the credential travels: `insecure`, and a plain
    /// What `check-config` points out about a valid setting whose effect
    /// differs from kuryr-libnetwork's.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.neutron.allowed_projects.is_empty() {
            notes.push(
                "[neutron] allowed_projects is empty: a network, subnet or subnet pool of another \
                 project is refused unless it is shared (kuryr-libnetwork used any project's). \
                 When switching a node from kuryr-libnetwork, list the projects whose networks \
                 Docker networks use (IDs, comma separated), or `*` for any"
                    .to_string(),
            );
        }
        notes
    }

    /// `http://` Keystone beyond loopback. Logged at start and by
    /// `check-config`; apart from [`Config::warnings`], which are about the
    /// files themselves.
    pub fn transport_warnings(&self) -> Vec<String> {
        let n = &self.neutron;
        let mut warnings = Vec::new();
        if n.insecure {
            warnings.push(
                "[neutron] insecure = true: the certificates of Keystone and Neutron are not \
                 checked, so anyone on the path can read the credential and every token; give \
                 the CA as [neutron] cafile instead"
                    .to_string(),
            );
        }
        if let Some(url) = &n.auth.auth_url
            && plain_http_beyond_loopback(url)
        {
            warnings.push(format!(
                "[neutron] auth_url {url} is plain http://: the credential and every token cross \
                 the network in clear; use https://"
            ));
        }
        warnings
    }

    /// Like [`Config::load`] for in-memory `(label, text)` pairs, ignoring the
    /// environment.
    pub fn from_texts(texts: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let docs = texts
            .iter()
            .map(|(origin, text)| Document::parse_known(*origin, text, &is_known_key))
            .collect::<Result<Vec<_>, _>>()?;
        build(docs, &|_| None)
    }

    /// The Keystone session settings for Neutron: credential and scope from
    /// the auth options, plus interface, region, TLS and timeout.
    pub fn session_config(&self) -> Result<SessionConfig, ConfigError> {
        let n = &self.neutron;
        if n.keyfile.is_some() && n.certfile.is_none() {
            return Err(ConfigError::Inconsistent(
                "[neutron] keyfile is set without certfile".into(),
            ));
        }
        let (auth_url, credential) = n.auth.credential()?;
        let mut config = SessionConfig::new(auth_url, credential);
        config.region = n.region_name.clone();
        config.interface = n.endpoint_type;
        config.tls = TlsConfig {
            cafile: n.cafile.clone(),
            certfile: n.certfile.clone(),
            keyfile: n.keyfile.clone(),
            insecure: n.insecure,
        };
        // keystoneauth has no default; an unbounded request would hang
        // dockerd for as long as Neutron stalls.
        config.timeout = Some(
            n.timeout
                .unwrap_or(kuryr_openstack::session::DEFAULT_TIMEOUT),
        );
        Ok(config)
    }

    /// See [`NeutronSection::vif_plugging_timeout`].
    pub fn vif_plugging_timeout(&self) -> Duration {
        self.neutron.vif_plugging_timeout()
    }

    /// Cross-option checks kuryr-libnetwork makes when it loads its drivers
    /// (`port_driver/driver.py`), done here so a bad file fails at start-up.
    fn validate(&self) -> Result<(), ConfigError> {
        let d = &self.default;
        let b = &self.binding;
        let list = |items: &mut dyn Iterator<Item = &'static str>| {
            let s = names(items);
            if s.is_empty() {
                "nothing".to_string()
            } else {
                s
            }
        };
        let bindings = list(&mut b.enabled_drivers.iter().map(|k| k.as_str()));
        if !b.enabled_drivers.contains(&b.default_driver) {
            return Err(ConfigError::Inconsistent(format!(
                "[binding] default_driver {} is not in [binding] enabled_drivers ({bindings}); add {} to enabled_drivers",
                b.default_driver,
                b.default_driver.module_path()
            )));
        }
        if !d.enabled_port_drivers.contains(&d.default_port_driver) {
            return Err(ConfigError::Inconsistent(format!(
                "[DEFAULT] default_port_driver {} is not in [DEFAULT] enabled_port_drivers ({}); add {} to enabled_port_drivers",
                d.default_port_driver,
                list(&mut d.enabled_port_drivers.iter().map(|k| k.as_str())),
                d.default_port_driver.module_path()
            )));
        }
        let port = d.default_port_driver;
        let supported = port.supported_bindings();
        let supported_names = || list(&mut supported.iter().map(|k| k.as_str()));
        if port.uses_default_binding() && !supported.contains(&b.default_driver) {
            return Err(ConfigError::Inconsistent(format!(
                "[DEFAULT] default_port_driver {port} is not compatible with [binding] default_driver {}: \
                 the {port} port driver works with {}",
                b.default_driver,
                supported_names()
            )));
        }
        for port in &d.enabled_port_drivers {
            let supported = port.supported_bindings();
            if !supported.iter().any(|k| b.enabled_drivers.contains(k)) {
                return Err(ConfigError::Inconsistent(format!(
                    "port driver {port} (in [DEFAULT] enabled_port_drivers) needs one of the binding drivers {} \
                     in [binding] enabled_drivers, which has {bindings}",
                    list(&mut supported.iter().map(|k| k.as_str()))
                )));
            }
        }
        Ok(())
    }
}

impl FromStr for Config {
    type Err = ConfigError;

    /// One in-memory file, labelled `<string>`; the environment is ignored.
    fn from_str(text: &str) -> Result<Config, ConfigError> {
        Config::from_texts(&[("<string>", text)])
    }
}

/// Whether `url` is plain `http://` to a host other than loopback (where
/// a credential or token would cross the network in clear).
pub fn plain_http_beyond_loopback(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url.trim()) else {
        return false;
    };
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    url.scheme() == "http" && !loopback
}

/// Whether `word` is the name (or a former name) of an option we register,
/// in any section: a parse error may show it (see [`oslo::mask_assignment`]).
fn is_known_key(word: &str) -> bool {
    [
        default::OPTS,
        default::IGNORED_OPTS,
        neutron::OPTS,
        neutron::IGNORED_OPTS,
        binding::OPTS,
        metrics::OPTS,
        auth::OPTS,
    ]
    .iter()
    .flat_map(|opts| opts.iter())
    .any(|o| o.name == word || o.deprecated.contains(&word))
}

/// The file oslo.config would pick for project `kuryr` when no
/// `--config-file` is given: the first `kuryr.conf` in `~/.kuryr/`, `~/`,
/// `/etc/kuryr/`, `/etc/`. Empty if there is none.
pub fn default_config_files() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        dirs.push(home.join(".kuryr"));
        dirs.push(home);
    }
    dirs.push(PathBuf::from(crate::paths::ETC_KURYR));
    dirs.push(PathBuf::from("/etc"));
    first_existing(&dirs, "kuryr.conf")
}

fn first_existing(dirs: &[PathBuf], file: &str) -> Vec<PathBuf> {
    dirs.iter()
        .map(|d| d.join(file))
        .find(|p| Path::exists(p))
        .into_iter()
        .collect()
}

fn build(docs: Vec<Document>, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let files = docs.iter().map(|d| d.origin.clone()).collect();
    let mut src = Sources::new(docs);
    src.register(DEFAULT_SECTION, default::OPTS);
    src.register(DEFAULT_SECTION, default::IGNORED_OPTS);
    src.register(neutron::SECTION, neutron::OPTS);
    src.register(neutron::SECTION, neutron::IGNORED_OPTS);
    src.register(binding::SECTION, binding::OPTS);
    src.register(metrics::SECTION, metrics::OPTS);
    // keystoneauth registers the plugin options where `auth_section` points.
    let auth_section = neutron::auth_section(&src)?;
    src.register(
        auth_section.as_deref().unwrap_or(neutron::SECTION),
        auth::OPTS,
    );

    let default = DefaultSection::load(&src, env)?;
    let neutron = NeutronSection::load(&src, auth_section.clone())?;
    let binding = BindingSection::load(&src)?;
    let metrics = MetricsSection::load(&src)?;
    warn_unknown(&src, auth_section.as_deref());

    let config = Config {
        default,
        neutron,
        binding,
        metrics,
        files,
        warnings: src.take_warnings(),
    };
    config.validate()?;
    Ok(config)
}

/// oslo.config silently ignores what nobody registered; a typo there then
/// goes unnoticed, so we say so.
fn warn_unknown(src: &Sources, auth_section: Option<&str>) {
    if let Some(auth) = auth_section
        && !src.docs().iter().any(|d| d.section(auth).is_some())
    {
        src.warn(format!(
            "[neutron] auth_section = {auth}, but no configuration file has a [{auth}] section"
        ));
    }
    for doc in src.docs() {
        for section in &doc.sections {
            if !src.is_registered_section(&section.name) {
                src.warn(format!(
                    "{}:{}: unknown section [{}] ignored",
                    doc.origin, section.line, section.header
                ));
                continue;
            }
            for key in section.keys() {
                if src.known_key(&section.name, key).is_some() {
                    continue;
                }
                let line = section.get_all(key).next().map_or(section.line, |e| e.line);
                let is_auth_opt = auth::OPTS
                    .iter()
                    .any(|o| o.name == key || o.deprecated.contains(&key));
                if section.name == neutron::SECTION
                    && is_auth_opt
                    && let Some(auth) = auth_section
                {
                    src.warn(format!(
                        "{}:{line}: [neutron] {key} ignored: auth options are read from [{auth}] (auth_section)",
                        doc.origin
                    ));
                } else {
                    src.warn(format!(
                        "{}:{line}: unknown option [{}] {key} ignored",
                        doc.origin, section.header
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
