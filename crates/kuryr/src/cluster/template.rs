//! A cluster template: Magnum's `ClusterTemplate` object, validated with the
//! rules Magnum applies on `POST /v1/clustertemplates` for a Swarm COE, plus
//! kuryr's own label checks.
//!
//! Magnum (15, Zed) checks a template in this order, all of which is done
//! here except the cloud look-ups:
//! 1. WSME parses the body: unknown attributes, then each attribute's type
//!    and bounds ([`attrs`]);
//! 2. the create decorators: the COE picks the validator (`swarm` and
//!    `swarm-mode` share one; `mesos` and `dcos` have none), the server
//!    type, the network driver (below), the volume driver, the docker volume
//!    size, and a cluster driver for (server type, distro, COE)
//!    ([`rules`]);
//! 3. `attr_validator`: the image, flavors and external network (cloud
//!    look-ups: not done), and the label checks ([`rules`]).
//!
//! The network-driver rule, as done here:
//! 1. the supported drivers of the Swarm validator are `docker`, `flannel`
//!    and (our addition, which Magnum never merged) `kuryr`;
//! 2. no `network_driver` (absent or null) → the operator's default for the
//!    COE is filled in (`swarm_default_network_driver`, default `docker`),
//!    and is itself validated; an empty string is refused, as by Magnum;
//! 3. the driver must be supported, then allowed by the operator's list
//!    (`swarm_allowed_network_drivers`, where `all` allows every supported
//!    driver);
//! 4. names are case-sensitive (`Kuryr` is not `kuryr`).
//!
//! Unlike Magnum, which raises at the first problem, every problem of the
//! file is reported, one message each. Where this validator deliberately
//! differs from Magnum (kuryr labels checked up front, Swarm COEs only,
//! `openstack coe cluster template show -f json` output accepted, ...) is
//! one table in docs/user-guide.md, which `tests/template_magnum.rs`
//! checks against Magnum's own code.

mod attrs;
mod python;
mod rules;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use serde_json::{Map, Value, json};

use super::Problem;
use super::json::{Fields, parse_object, type_name};
use super::labels::{self, KuryrLabels};

/// The container orchestration engines this integration serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coe {
    /// Classic (standalone) Docker Swarm.
    Swarm,
    /// Docker's built-in swarm mode (`docker swarm init/join`).
    SwarmMode,
}

impl Coe {
    pub fn as_str(self) -> &'static str {
        match self {
            Coe::Swarm => "swarm",
            Coe::SwarmMode => "swarm-mode",
        }
    }

    /// The drivers Magnum's `SwarmValidator` supports, plus kuryr.
    pub fn supported_network_drivers(self) -> &'static [&'static str] {
        SWARM_SUPPORTED_NETWORK_DRIVERS
    }
}

impl fmt::Display for Coe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `SwarmValidator.supported_network_drivers` with kuryr added.
pub const SWARM_SUPPORTED_NETWORK_DRIVERS: &[&str] = &["docker", "flannel", "kuryr"];

/// The network driver this crate configures.
pub const KURYR: &str = "kuryr";

/// The operator's network-driver policy for Swarm COEs: Magnum's
/// `[cluster_template] swarm_allowed_network_drivers` and
/// `swarm_default_network_driver`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkDriverPolicy {
    /// Allowed drivers; `all` allows every supported one.
    pub allowed: Vec<String>,
    /// Filled in when a template names no driver.
    pub default: String,
}

impl Default for NetworkDriverPolicy {
    /// Magnum's defaults: `['all']` and `docker`.
    fn default() -> Self {
        NetworkDriverPolicy {
            allowed: vec!["all".into()],
            default: "docker".into(),
        }
    }
}

/// A validated cluster template, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTemplate {
    pub name: Option<String>,
    pub coe: Coe,
    /// The effective driver (the policy default when the file has none).
    pub network_driver: String,
    /// True when `network_driver` came from the policy default.
    pub network_driver_defaulted: bool,
    /// Every label, values as Magnum stores them: strings as they are,
    /// numbers as Python prints them, booleans as `True` / `False`.
    pub labels: BTreeMap<String, String>,
    /// The `kuryr_*` labels, parsed.
    pub kuryr: KuryrLabels,
    pub fixed_network: Option<String>,
    pub fixed_subnet: Option<String>,
    pub external_network_id: Option<String>,
    pub dns_nameserver: Vec<Ipv4Addr>,
    pub tls_disabled: bool,
}

impl NetworkDriverPolicy {
    /// Slash-joined list plus `unspecified`, as Magnum words it.
    fn expecting(list: &[&str]) -> String {
        let mut items: Vec<&str> = list.to_vec();
        items.push("unspecified");
        items.join("/")
    }

    /// Magnum's `_validate_network_driver_supported` and
    /// `_validate_network_driver_allowed` for one driver name.
    fn check(&self, coe: Coe, driver: &str) -> Option<String> {
        let supported = coe.supported_network_drivers();
        if !supported.contains(&driver) {
            return Some(format!(
                "Network driver type {driver} is not supported, expecting a {} network driver.",
                Self::expecting(supported)
            ));
        }
        if self.allowed.iter().any(|a| a == "all") {
            return None;
        }
        if !self.allowed.iter().any(|a| a == driver) {
            let allowed: Vec<&str> = self.allowed.iter().map(String::as_str).collect();
            return Some(format!(
                "Network driver type {driver} is not allowed, expecting a {} network driver.",
                Self::expecting(&allowed)
            ));
        }
        None
    }

    /// The effective driver and whether it came from the default; `None`
    /// (reported) when it is not supported or not allowed.
    fn effective(
        &self,
        f: &mut Fields<'_>,
        coe: Coe,
        given: Option<&str>,
    ) -> Option<(String, bool)> {
        let (driver, defaulted) = match given {
            Some(d) => (d.to_string(), false),
            None => (self.default.clone(), true),
        };
        let Some(message) = self.check(coe, &driver) else {
            return Some((driver, defaulted));
        };
        let message = if defaulted {
            format!(
                "{message} (the template names no network_driver, so the operator's default \
                 swarm_default_network_driver = {driver} was used; fix that default \
                 or name a driver in the template)"
            )
        } else {
            message
        };
        f.problem("network_driver", message);
        None
    }
}

/// `ClusterType.ALL`: the COEs Magnum's API knows.
const MAGNUM_COES: &[&str] = &["kubernetes", "swarm", "mesos", "dcos", "swarm-mode"];

/// The COE, or `None` (reported) when this integration does not serve it.
fn read_coe(f: &mut Fields<'_>) -> Option<Coe> {
    let s = match f.get("coe") {
        None => {
            f.problem(
                "coe",
                "Invalid input for field/attribute coe. Mandatory field missing.",
            );
            return None;
        }
        Some(Value::String(s)) => s,
        Some(other) => {
            let t = type_name(other);
            f.problem("coe", format!("coe must be a string, not {t}"));
            return None;
        }
    };
    let message = match s.as_str() {
        "swarm" => return Some(Coe::Swarm),
        "swarm-mode" => return Some(Coe::SwarmMode),
        // Ours: Magnum accepts Kubernetes templates.
        "kubernetes" => "Requested COE type kubernetes is not supported here: this integration \
                         serves swarm and swarm-mode (Magnum itself takes kubernetes templates)."
            .to_string(),
        // Magnum's `Validator.get_coe_validator`.
        "mesos" | "dcos" => format!("Requested COE type {s} is not supported."),
        other => format!(
            "Invalid input for field/attribute coe. Value: '{other}'. Value should be one of: {} \
             (this integration serves swarm and swarm-mode)",
            MAGNUM_COES.join(", ")
        ),
    };
    f.problem("coe", message);
    None
}

/// The name, with kuryr's own rule on top of Magnum's: no control
/// characters, since the name is written into the header comments of the
/// files node setup generates.
fn checked_name(f: &mut Fields<'_>, name: Option<String>) -> Option<String> {
    let name = name?;
    if name.chars().any(char::is_control) {
        f.problem(
            "name",
            "name holds control characters: kuryr refuses them (Magnum does not) because node \
             setup writes the name into the header comments of the files it generates",
        );
        return None;
    }
    Some(name)
}

impl ClusterTemplate {
    /// Parse and validate a template file against the operator's policy.
    pub fn from_json(text: &str, policy: &NetworkDriverPolicy) -> Result<Self, Vec<Problem>> {
        let obj = parse_object(text, "cluster template").map_err(|p| vec![p])?;
        Self::from_object(&obj, policy)
    }

    /// Validate an already parsed JSON object.
    pub fn from_object(
        obj: &Map<String, Value>,
        policy: &NetworkDriverPolicy,
    ) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut f = Fields::new(obj, "", &mut problems);
        let known: Vec<&str> = attrs::ATTRS.iter().map(|(k, _)| *k).collect();
        f.reject_unknown(&known, "cluster template");
        let a = attrs::read(&mut f);
        let name = checked_name(&mut f, a.owned("name"));
        let coe = read_coe(&mut f);
        let server_type = rules::server_type(&mut f, obj.contains_key("server_type"));
        let driver = match coe {
            Some(coe) if !a.is_broken("network_driver") => {
                policy.effective(&mut f, coe, a.str("network_driver"))
            }
            _ => None,
        };
        if let Some(coe) = coe {
            rules::check_swarm(&mut f, &a, coe, server_type.as_deref());
        }
        rules::check_labels(&mut f, &a);
        let (kuryr, mut label_problems) = labels::parse(&a.labels, coe);
        problems.append(&mut label_problems);

        match (coe, driver) {
            (Some(coe), Some((network_driver, defaulted))) if problems.is_empty() => {
                Ok(ClusterTemplate {
                    name,
                    coe,
                    network_driver,
                    network_driver_defaulted: defaulted,
                    fixed_network: a.owned("fixed_network"),
                    fixed_subnet: a.owned("fixed_subnet"),
                    external_network_id: a.owned("external_network_id"),
                    dns_nameserver: a.dns.clone(),
                    tls_disabled: a.bool("tls_disabled").unwrap_or(false),
                    labels: a.labels,
                    kuryr,
                })
            }
            _ => Err(problems),
        }
    }

    /// Whether this template asks for kuryr.
    pub fn uses_kuryr(&self) -> bool {
        self.network_driver == KURYR
    }

    /// The display name: the template's name or `(unnamed)`.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or("(unnamed)")
    }

    /// The effective template as JSON, Magnum field names, defaults filled.
    pub fn to_json(&self) -> Value {
        let dns = (!self.dns_nameserver.is_empty()).then(|| {
            self.dns_nameserver
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        });
        json!({
            "name": self.name,
            "coe": self.coe.as_str(),
            "network_driver": self.network_driver,
            "labels": self.labels,
            "fixed_network": self.fixed_network,
            "fixed_subnet": self.fixed_subnet,
            "external_network_id": self.external_network_id,
            "dns_nameserver": dns,
            "tls_disabled": self.tls_disabled,
        })
    }
}
