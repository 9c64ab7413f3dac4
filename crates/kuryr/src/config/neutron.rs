//! `[neutron]`: Neutron defaults, the keystoneauth session options, and
//! where the credentials are.

use std::path::PathBuf;
use std::time::Duration;

use kuryr_openstack::Interface;

use super::auth::{self, AuthOptions};
use super::error::ConfigError;
use super::oslo;
use super::source::{Group, Opt, Sources, parse_bool};

/// The longest we wait for a port to become ACTIVE when
/// `vif_plugging_is_fatal` is set with `vif_plugging_timeout = 0`.
/// kuryr-libnetwork waits forever there and so blocks a worker for good.
pub const MAX_VIF_PLUGGING_WAIT: Duration = Duration::from_secs(300);

/// Longer waits are clamped to this, so that adding one to an `Instant`
/// can never overflow.
const MAX_CONFIGURED_SECONDS: u64 = 86_400;

/// The `[neutron]` section.
#[derive(Debug, Clone)]
pub struct NeutronSection {
    /// `enable_dhcp` of the subnets kuryr creates. kuryr-libnetwork passes
    /// the string to Neutron; we send the boolean it means.
    pub enable_dhcp: bool,
    /// Name of the subnet pool used when Docker asks for any IPv4 pool.
    pub default_subnetpool_v4: String,
    /// Same for IPv6.
    pub default_subnetpool_v6: String,
    /// Fail CreateEndpoint when the port does not become ACTIVE in time.
    pub vif_plugging_is_fatal: bool,
    /// `vif_plugging_timeout` as configured; see
    /// [`NeutronSection::vif_plugging_timeout`] for the wait to use.
    pub vif_plugging_timeout_secs: u64,
    pub region_name: Option<String>,
    /// `endpoint_type`: which catalog interface to use for Neutron.
    pub endpoint_type: Interface,
    /// keystoneauth session: CA bundle replacing the system roots.
    pub cafile: Option<PathBuf>,
    /// keystoneauth session: client certificate.
    pub certfile: Option<PathBuf>,
    /// keystoneauth session: key of the client certificate.
    pub keyfile: Option<PathBuf>,
    pub insecure: bool,
    /// keystoneauth session: per-request timeout as configured (`None`:
    /// not set, [`kuryr_openstack::session::DEFAULT_TIMEOUT`] applies).
    pub timeout: Option<Duration>,
    /// keystoneauth `auth_section`: the section holding the auth options.
    pub auth_section: Option<String>,
    /// The auth options, from `auth_section` or this section.
    pub auth: AuthOptions,
    /// `allowed_projects` (ours): IDs of projects besides the credential's
    /// own whose networks, subnets and pools may be used; `*` for any.
    pub allowed_projects: Vec<String>,
}

impl NeutronSection {
    /// How long to wait for a port to become ACTIVE. Only meaningful when
    /// `vif_plugging_is_fatal`: kuryr-libnetwork does not wait otherwise.
    /// A fatal wait with timeout 0 ("forever") is bounded by
    /// [`MAX_VIF_PLUGGING_WAIT`].
    pub fn vif_plugging_timeout(&self) -> Duration {
        if self.vif_plugging_is_fatal && self.vif_plugging_timeout_secs == 0 {
            MAX_VIF_PLUGGING_WAIT
        } else {
            Duration::from_secs(self.vif_plugging_timeout_secs)
        }
    }
}

pub(crate) const SECTION: &str = "neutron";

const ENABLE_DHCP: Opt = Opt::new("enable_dhcp").default("True");
const DEFAULT_SUBNETPOOL_V4: Opt = Opt::new("default_subnetpool_v4").default("kuryr");
const DEFAULT_SUBNETPOOL_V6: Opt = Opt::new("default_subnetpool_v6").default("kuryr6");
const VIF_PLUGGING_IS_FATAL: Opt = Opt::new("vif_plugging_is_fatal").default("false");
const VIF_PLUGGING_TIMEOUT: Opt = Opt::new("vif_plugging_timeout").default("0");
const REGION_NAME: Opt = Opt::new("region_name");
const ENDPOINT_TYPE: Opt = Opt::new("endpoint_type").default("public");
const CAFILE: Opt = Opt::new("cafile");
const CERTFILE: Opt = Opt::new("certfile");
const KEYFILE: Opt = Opt::new("keyfile");
const INSECURE: Opt = Opt::new("insecure").default("false");
const TIMEOUT: Opt = Opt::new("timeout");
const ALLOWED_PROJECTS: Opt = Opt::new("allowed_projects").default("");

/// Options of `[neutron]` itself (the auth ones are registered separately,
/// in whichever section `auth_section` names).
pub(crate) const OPTS: &[Opt] = &[
    ENABLE_DHCP,
    DEFAULT_SUBNETPOOL_V4,
    DEFAULT_SUBNETPOOL_V6,
    VIF_PLUGGING_IS_FATAL,
    VIF_PLUGGING_TIMEOUT,
    REGION_NAME,
    ENDPOINT_TYPE,
    CAFILE,
    CERTFILE,
    KEYFILE,
    INSECURE,
    TIMEOUT,
    ALLOWED_PROJECTS,
    auth::AUTH_SECTION,
];

/// keystoneauth session options we accept but have no use for.
pub(crate) const IGNORED_OPTS: &[Opt] = &[Opt::new("collect_timing"), Opt::new("split_loggers")];

/// The section the auth options live in: `auth_section`, or `[neutron]`.
pub(crate) fn auth_section(src: &Sources) -> Result<Option<String>, ConfigError> {
    let g = Group::new(src, SECTION);
    Ok(g.opt_string(&auth::AUTH_SECTION)?
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .map(|s| oslo::normalize_section(&s)))
}

fn clamp(src: &Sources, key: &str, secs: u64) -> u64 {
    if secs > MAX_CONFIGURED_SECONDS {
        src.warn(format!(
            "[neutron] {key} = {secs} s is longer than a day; using {MAX_CONFIGURED_SECONDS} s"
        ));
        MAX_CONFIGURED_SECONDS
    } else {
        secs
    }
}

impl NeutronSection {
    pub(crate) fn load(src: &Sources, auth_section: Option<String>) -> Result<Self, ConfigError> {
        let g = Group::new(src, SECTION);
        let vif_plugging_is_fatal = g.bool(&VIF_PLUGGING_IS_FATAL)?;
        let configured = g.seconds(&VIF_PLUGGING_TIMEOUT)?.map_or(0, |d| d.as_secs());
        let vif_plugging_timeout_secs = clamp(src, "vif_plugging_timeout", configured);
        if vif_plugging_is_fatal && vif_plugging_timeout_secs == 0 {
            src.warn(format!(
                "[neutron] vif_plugging_is_fatal is set with vif_plugging_timeout = 0, which kuryr-libnetwork \
                 takes as \"wait forever\"; waiting at most {} s instead",
                MAX_VIF_PLUGGING_WAIT.as_secs()
            ));
        }
        let timeout = match g.found(&TIMEOUT)? {
            Some(f) if f.text.trim().is_empty() => None,
            Some(f) => match super::source::parse_u64(&f.text) {
                Some(secs) if secs > 0 => Some(Duration::from_secs(clamp(src, "timeout", secs))),
                _ => {
                    return Err(g.invalid(
                        &TIMEOUT,
                        &f,
                        "a whole number of seconds greater than 0",
                    ));
                }
            },
            None => None,
        };
        let path = |opt: &Opt| -> Result<Option<PathBuf>, ConfigError> {
            Ok(g.opt_string(opt)?.map(|s| PathBuf::from(s.trim())))
        };
        let auth_group = Group::new(src, auth_section.as_deref().unwrap_or(SECTION));
        Ok(NeutronSection {
            enable_dhcp: g.parse(&ENABLE_DHCP, super::source::BOOL_EXPECTED, parse_bool)?,
            default_subnetpool_v4: g.string(&DEFAULT_SUBNETPOOL_V4)?,
            default_subnetpool_v6: g.string(&DEFAULT_SUBNETPOOL_V6)?,
            vif_plugging_is_fatal,
            vif_plugging_timeout_secs,
            region_name: g
                .opt_string(&REGION_NAME)?
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            endpoint_type: g.parse(
                &ENDPOINT_TYPE,
                "one of public, internal, admin (or publicURL, internalURL, adminURL)",
                |s| s.parse().ok(),
            )?,
            cafile: path(&CAFILE)?,
            certfile: path(&CERTFILE)?,
            keyfile: path(&KEYFILE)?,
            insecure: g.bool(&INSECURE)?,
            timeout,
            auth: AuthOptions::load(&auth_group)?,
            auth_section,
            allowed_projects: super::source::parse_list(&g.string(&ALLOWED_PROJECTS)?),
        })
    }
}
