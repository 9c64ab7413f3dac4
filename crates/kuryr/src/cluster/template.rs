//! A cluster template: the Magnum `ClusterTemplate` fields that matter for a
//! Swarm cluster's networking, validated with Magnum's rules.
//!
//! Magnum's network-driver check (`magnum/api/validation.py`), as done here:
//! 1. the COE picks the validator: `swarm` and `swarm-mode` share one, whose
//!    supported drivers are `docker`, `flannel` and (our addition, which
//!    Magnum never merged) `kuryr`; any other COE is refused;
//! 2. no `network_driver` → the operator's default for the COE is filled in
//!    (`swarm_default_network_driver`, default `docker`), and is itself
//!    validated;
//! 3. the driver must be supported, then allowed by the operator's list
//!    (`swarm_allowed_network_drivers`, where `all` allows every supported
//!    driver);
//! 4. names are case-sensitive (`Kuryr` is not `kuryr`).
//!
//! Unlike Magnum, which raises at the first problem, every problem of the
//! file is reported, one message each.

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
    /// Every label, values as strings (Magnum allows strings, numbers and
    /// booleans). Non-kuryr labels are kept as they are.
    pub labels: BTreeMap<String, String>,
    /// The `kuryr_*` labels, parsed.
    pub kuryr: KuryrLabels,
    pub fixed_network: Option<String>,
    pub fixed_subnet: Option<String>,
    pub external_network_id: Option<String>,
    pub dns_nameserver: Vec<Ipv4Addr>,
    pub tls_disabled: bool,
}

/// The fields this module reads.
const USED_FIELDS: &[&str] = &[
    "name",
    "coe",
    "network_driver",
    "labels",
    "fixed_network",
    "fixed_subnet",
    "external_network_id",
    "dns_nameserver",
    "tls_disabled",
];

/// Other Magnum `ClusterTemplate` attributes: accepted (so the output of
/// `openstack coe cluster template show -f json` can be used as is) and
/// ignored.
const OTHER_MAGNUM_FIELDS: &[&str] = &[
    "uuid",
    "id",
    "image_id",
    "flavor_id",
    "master_flavor_id",
    "keypair_id",
    "volume_driver",
    "apiserver_port",
    "docker_volume_size",
    "docker_storage_driver",
    "cluster_distro",
    "links",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "registry_enabled",
    "public",
    "server_type",
    "insecure_registry",
    "master_lb_enabled",
    "floating_ip_enabled",
    "hidden",
    "tags",
    "driver",
    "project_id",
    "user_id",
    "created_at",
    "updated_at",
];

/// Magnum's string attributes hold 1 to 255 characters.
const MAX_FIELD_LEN: usize = 255;

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
        let known: Vec<&str> = USED_FIELDS
            .iter()
            .chain(OTHER_MAGNUM_FIELDS)
            .copied()
            .collect();
        f.reject_unknown(&known, "cluster template");

        let name = f.opt_name("name", MAX_FIELD_LEN);
        let coe = match f.get("coe") {
            None => {
                f.problem(
                    "coe",
                    "Invalid input for field/attribute coe. Mandatory field missing.",
                );
                None
            }
            Some(Value::String(s)) => match s.as_str() {
                "swarm" => Some(Coe::Swarm),
                "swarm-mode" => Some(Coe::SwarmMode),
                other => {
                    f.problem(
                        "coe",
                        format!(
                            "Requested COE type {other} is not supported. This integration serves swarm and swarm-mode."
                        ),
                    );
                    None
                }
            },
            Some(other) => {
                let t = type_name(other);
                f.problem("coe", format!("coe must be a string, not {t}"));
                None
            }
        };

        let given_driver = f.opt_name("network_driver", MAX_FIELD_LEN);
        let (network_driver, defaulted) = match given_driver {
            Some(d) => (d, false),
            None => (policy.default.clone(), true),
        };
        if let Some(coe) = coe
            && let Some(message) = policy.check(coe, &network_driver)
        {
            let message = if defaulted {
                format!(
                    "{message} (the template names no network_driver, so the operator's default \
                     swarm_default_network_driver = {network_driver} was used; fix that default \
                     or name a driver in the template)"
                )
            } else {
                message
            };
            f.problem("network_driver", message);
        }

        let labels = read_labels(&mut f);
        let fixed_network = f.opt_name("fixed_network", MAX_FIELD_LEN);
        let fixed_subnet = f.opt_name("fixed_subnet", MAX_FIELD_LEN);
        let external_network_id = f.opt_name("external_network_id", MAX_FIELD_LEN);
        let dns_nameserver = match f.opt_str("dns_nameserver") {
            None => Vec::new(),
            Some(list) => match parse_dns_list(&list) {
                Some(v) => v,
                None => {
                    f.problem(
                        "dns_nameserver",
                        format!(
                            "Expected a single dns address or comma separated dns list, but received {list}."
                        ),
                    );
                    Vec::new()
                }
            },
        };
        let tls_disabled = f.bool("tls_disabled", false);

        let (kuryr, mut label_problems) = labels::parse(&labels, coe);
        problems.append(&mut label_problems);

        match coe {
            Some(coe) if problems.is_empty() => Ok(ClusterTemplate {
                name,
                coe,
                network_driver,
                network_driver_defaulted: defaulted,
                labels,
                kuryr,
                fixed_network,
                fixed_subnet,
                external_network_id,
                dns_nameserver,
                tls_disabled,
            }),
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

/// Labels as a JSON object of strings, numbers and booleans, or as the
/// `key=value,key=value` string of `openstack coe cluster template create
/// --labels`.
fn read_labels(f: &mut Fields<'_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match f.get("labels") {
        None => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    other => {
                        let t = type_name(other);
                        f.problem(
                            "labels",
                            format!("labels/{k} must be a string, a number or a boolean, not {t}"),
                        );
                        continue;
                    }
                };
                out.insert(k.clone(), value);
            }
        }
        Some(Value::String(s)) => {
            for item in s.split(',').filter(|i| !i.trim().is_empty()) {
                match item.split_once('=') {
                    Some((k, v)) if !k.trim().is_empty() => {
                        out.insert(k.trim().to_string(), v.trim().to_string());
                    }
                    _ => f.problem("labels", format!("labels: \"{item}\" is not key=value")),
                }
            }
        }
        Some(other) => {
            let t = type_name(other);
            f.problem(
                "labels",
                format!("labels must be an object (or a key=value,... string), not {t}"),
            );
        }
    }
    out
}

/// Magnum's `validate_dns`: one IPv4 address or a comma-separated list.
fn parse_dns_list(s: &str) -> Option<Vec<Ipv4Addr>> {
    s.split(',').map(|a| a.trim().parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str], default: &str) -> NetworkDriverPolicy {
        NetworkDriverPolicy {
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
            default: default.into(),
        }
    }

    fn parse(v: Value, p: &NetworkDriverPolicy) -> Result<ClusterTemplate, Vec<String>> {
        ClusterTemplate::from_json(&v.to_string(), p)
            .map_err(|ps| ps.into_iter().map(|p| p.message).collect())
    }

    fn errors(v: Value, p: &NetworkDriverPolicy) -> Vec<String> {
        parse(v, p).expect_err("invalid")
    }

    #[test]
    fn minimal_kuryr_template() {
        let t = parse(
            json!({"coe": "swarm-mode", "network_driver": "kuryr"}),
            &NetworkDriverPolicy::default(),
        )
        .expect("valid");
        assert_eq!(t.coe, Coe::SwarmMode);
        assert!(t.uses_kuryr());
        assert!(!t.network_driver_defaulted);
        assert_eq!(t.kuryr, KuryrLabels::default());
        assert!(!t.tls_disabled);
        assert_eq!(t.display_name(), "(unnamed)");
    }

    #[test]
    fn full_template_round_trips_to_json() {
        let input = json!({
            "name": "swarm-kuryr",
            "coe": "swarm",
            "network_driver": "kuryr",
            "labels": {"kuryr_mode": "agent", "kuryr_mtu": 1450, "swarm_strategy": "spread", "debug": true},
            "fixed_network": "private",
            "fixed_subnet": "private-subnet",
            "external_network_id": "public",
            "dns_nameserver": "8.8.8.8, 1.1.1.1",
            "tls_disabled": "True",
            "image_id": "fedora-atomic",
            "uuid": "0b2e0a4c-0000-0000-0000-000000000000",
            "keypair_id": null
        });
        let t = parse(input, &NetworkDriverPolicy::default()).expect("valid");
        assert_eq!(t.kuryr.mtu, Some(1450));
        assert_eq!(t.labels["swarm_strategy"], "spread");
        assert_eq!(t.labels["debug"], "true");
        assert_eq!(t.dns_nameserver.len(), 2);
        assert!(t.tls_disabled);
        assert_eq!(
            t.to_json(),
            json!({
                "name": "swarm-kuryr",
                "coe": "swarm",
                "network_driver": "kuryr",
                "labels": {"debug": "true", "kuryr_mode": "agent", "kuryr_mtu": "1450", "swarm_strategy": "spread"},
                "fixed_network": "private",
                "fixed_subnet": "private-subnet",
                "external_network_id": "public",
                "dns_nameserver": "8.8.8.8,1.1.1.1",
                "tls_disabled": true
            })
        );
        // The effective template validates again to the same thing.
        let again = parse(t.to_json(), &NetworkDriverPolicy::default()).expect("valid");
        assert_eq!(again, t);
    }

    #[test]
    fn labels_in_cli_form() {
        let t = parse(
            json!({"coe": "swarm", "network_driver": "kuryr", "labels": "kuryr_mode=nested, kuryr_link_iface=ens4"}),
            &NetworkDriverPolicy::default(),
        )
        .expect("valid");
        assert_eq!(t.kuryr.mode, labels::KuryrMode::Nested);
        assert_eq!(t.kuryr.link_iface.as_deref(), Some("ens4"));
        assert_eq!(
            errors(
                json!({"coe": "swarm", "labels": "kuryr_mode"}),
                &NetworkDriverPolicy::default()
            ),
            vec!["labels: \"kuryr_mode\" is not key=value"]
        );
    }

    /// Magnum's matrix: supported × allowed × default, for both COEs.
    #[test]
    fn network_driver_matrix() {
        let all = NetworkDriverPolicy::default();
        let only_kuryr = policy(&["kuryr"], "kuryr");
        let docker_flannel = policy(&["docker", "flannel"], "docker");
        for coe in ["swarm", "swarm-mode"] {
            for driver in ["docker", "flannel", "kuryr"] {
                assert!(
                    parse(json!({"coe": coe, "network_driver": driver}), &all).is_ok(),
                    "{coe} {driver}"
                );
            }
            assert!(parse(json!({"coe": coe, "network_driver": "kuryr"}), &only_kuryr).is_ok());
            assert_eq!(
                errors(
                    json!({"coe": coe, "network_driver": "kuryr"}),
                    &docker_flannel
                ),
                vec![
                    "Network driver type kuryr is not allowed, expecting a docker/flannel/unspecified network driver."
                ]
            );
            assert_eq!(
                errors(json!({"coe": coe, "network_driver": "docker"}), &only_kuryr),
                vec![
                    "Network driver type docker is not allowed, expecting a kuryr/unspecified network driver."
                ]
            );
            // Supported is checked before allowed, and names are case-sensitive.
            for bad in ["Kuryr", "calico", "KURYR", "kuryr "] {
                assert_eq!(
                    errors(json!({"coe": coe, "network_driver": bad}), &only_kuryr),
                    vec![format!(
                        "Network driver type {bad} is not supported, expecting a docker/flannel/kuryr/unspecified network driver."
                    )],
                    "{bad:?}"
                );
            }
        }
    }

    #[test]
    fn default_driver_filled_in_and_validated() {
        let t = parse(json!({"coe": "swarm"}), &NetworkDriverPolicy::default()).expect("valid");
        assert_eq!(t.network_driver, "docker");
        assert!(t.network_driver_defaulted);
        assert!(!t.uses_kuryr());
        let t = parse(json!({"coe": "swarm-mode"}), &policy(&["all"], "kuryr")).expect("valid");
        assert_eq!(t.network_driver, "kuryr");
        // An empty string is no driver, as in Magnum.
        let t = parse(
            json!({"coe": "swarm", "network_driver": ""}),
            &policy(&["all"], "kuryr"),
        )
        .expect("valid");
        assert!(t.network_driver_defaulted);
        // A bad default is an error too (Magnum:
        // test_enforce_network_driver_types_default_invalid_create).
        assert_eq!(
            errors(json!({"coe": "swarm"}), &policy(&["all"], "calico")),
            vec![
                "Network driver type calico is not supported, expecting a docker/flannel/kuryr/unspecified network driver. \
                 (the template names no network_driver, so the operator's default swarm_default_network_driver = calico \
                 was used; fix that default or name a driver in the template)"
            ]
        );
        assert_eq!(
            errors(json!({"coe": "swarm"}), &policy(&["kuryr"], "docker")),
            vec![
                "Network driver type docker is not allowed, expecting a kuryr/unspecified network driver. \
                 (the template names no network_driver, so the operator's default swarm_default_network_driver = docker \
                 was used; fix that default or name a driver in the template)"
            ]
        );
    }

    #[test]
    fn coe_errors() {
        let p = NetworkDriverPolicy::default();
        assert_eq!(
            errors(json!({"network_driver": "kuryr"}), &p),
            vec!["Invalid input for field/attribute coe. Mandatory field missing."]
        );
        assert_eq!(
            errors(json!({"coe": "kubernetes"}), &p),
            vec![
                "Requested COE type kubernetes is not supported. This integration serves swarm and swarm-mode."
            ]
        );
        assert_eq!(
            errors(json!({"coe": "Swarm"}), &p),
            vec![
                "Requested COE type Swarm is not supported. This integration serves swarm and swarm-mode."
            ]
        );
        assert_eq!(
            errors(json!({"coe": 1}), &p),
            vec!["coe must be a string, not a number"]
        );
    }

    #[test]
    fn field_errors() {
        let p = NetworkDriverPolicy::default();
        let long = "x".repeat(256);
        let cases: Vec<(Value, String)> = vec![
            (
                json!({"coe": "swarm", "dns_nameserver": "8.8.8.8,dns.example.com"}),
                "Expected a single dns address or comma separated dns list, but received 8.8.8.8,dns.example.com."
                    .into(),
            ),
            (
                json!({"coe": "swarm", "tls_disabled": "yes"}),
                "Invalid input for field/attribute tls_disabled. Value: \"yes\". Wrong type: expecting true or false."
                    .into(),
            ),
            (
                json!({"coe": "swarm", "fixed_network": long}),
                "Invalid input for field/attribute fixed_network: expecting 1 to 255 characters without control characters"
                    .into(),
            ),
            (
                json!({"coe": "swarm", "name": 3}),
                "name must be a string, not a number".into(),
            ),
            (
                json!({"coe": "swarm", "labels": [1]}),
                "labels must be an object (or a key=value,... string), not an array".into(),
            ),
            (
                json!({"coe": "swarm", "labels": {"a": {"b": 1}}}),
                "labels/a must be a string, a number or a boolean, not an object".into(),
            ),
            (
                json!({"coe": "swarm", "netwrok_driver": "kuryr"}),
                "Unknown attribute for cluster template: netwrok_driver (did you mean network_driver?)"
                    .into(),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(errors(input.clone(), &p), vec![expected], "{input}");
        }
        assert_eq!(
            ClusterTemplate::from_json("[1]", &p)
                .unwrap_err()
                .into_iter()
                .map(|p| p.message)
                .collect::<Vec<_>>(),
            vec!["a cluster template file holds one JSON object, not an array"]
        );
        let e = ClusterTemplate::from_json("{", &p).unwrap_err();
        assert!(
            e[0].message
                .starts_with("the cluster template file is not valid JSON: "),
            "{e:?}"
        );
    }

    /// One message per problem, all of them in one go.
    #[test]
    fn collects_every_problem() {
        let got = errors(
            json!({
                "coe": "swarm",
                "network_driver": "Kuryr",
                "dns_nameserver": "x",
                "tls_disabled": 3,
                "labels": {"kuryr_mode": "bad", "kuryr_scope": "global", "kuryr_mtu": "1"},
                "flavour": "m1.small"
            }),
            &NetworkDriverPolicy::default(),
        );
        assert_eq!(got.len(), 7, "{got:#?}");
        let fields: Vec<String> = ClusterTemplate::from_json(
            &json!({"coe": "kubernetes", "network_driver": "x", "labels": {"kuryr_scope": "global"}})
                .to_string(),
            &NetworkDriverPolicy::default(),
        )
        .unwrap_err()
        .into_iter()
        .map(|p| p.field)
        .collect();
        // With the COE unknown, the driver and the COE-dependent label
        // checks are skipped rather than guessed.
        assert_eq!(fields, vec!["coe"]);
    }
}
