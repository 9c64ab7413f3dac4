//! Every attribute of Magnum's API `ClusterTemplate`, read as Magnum's API
//! parses it (`magnum/api/controllers/v1/cluster_template.py`, WSME types):
//! strings of 1 to 255 characters (an empty string is refused, not taken as
//! absent), integers with bounds, oslo's strict booleans, a UUID, the DNS
//! list, the labels, and the `coe` / `server_type` enumerations. JSON `null`
//! is "not given" everywhere but `server_type`, which Magnum refuses.
//!
//! Where Magnum answers 500 on a value (a number where it splits a string,
//! a boolean it cannot read, a `null` label), a clear problem is reported
//! instead.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde_json::{Map, Value};

use super::python;
use crate::cluster::json::{Fields, type_name};

/// How Magnum's API types one attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `wtypes.StringType(min_length, max_length=255)`.
    Str { min: usize },
    /// `wtypes.IntegerType(minimum, maximum)`.
    Int { min: i128, max: i128 },
    /// `types.boolean`: oslo `bool_from_string(strict=True)`.
    Bool,
    /// `types.uuid`.
    Uuid,
    /// `types.dns_list`.
    Dns,
    /// A dict of strings, integers, booleans and floats.
    Labels,
    /// The `coe` and `server_type` enumerations: read in template.rs and
    /// rules.rs, which know their values.
    Enum,
    /// Not settable through Magnum's create API (read-only there, or not
    /// an attribute of Zed's), but part of `openstack coe cluster template
    /// show -f json` output: accepted and ignored here.
    ShowOnly,
}

/// Magnum's string attributes hold at most 255 characters.
pub(super) const MAX_LEN: usize = 255;

const STR1: Kind = Kind::Str { min: 1 };

/// Every attribute, in Magnum's declaration order.
pub(super) const ATTRS: &[(&str, Kind)] = &[
    ("uuid", Kind::Uuid),
    ("name", STR1),
    ("coe", Kind::Enum),
    ("image_id", STR1),
    ("flavor_id", STR1),
    ("master_flavor_id", STR1),
    ("dns_nameserver", Kind::Dns),
    ("keypair_id", STR1),
    ("external_network_id", STR1),
    ("fixed_network", STR1),
    ("fixed_subnet", STR1),
    ("network_driver", STR1),
    (
        "apiserver_port",
        Kind::Int {
            min: 1024,
            max: 65535,
        },
    ),
    (
        "docker_volume_size",
        Kind::Int {
            min: 1,
            max: i128::MAX,
        },
    ),
    ("cluster_distro", STR1),
    ("http_proxy", STR1),
    ("https_proxy", STR1),
    ("no_proxy", STR1),
    ("volume_driver", STR1),
    ("registry_enabled", Kind::Bool),
    ("labels", Kind::Labels),
    ("tls_disabled", Kind::Bool),
    ("public", Kind::Bool),
    ("server_type", Kind::Enum),
    ("insecure_registry", STR1),
    ("docker_storage_driver", STR1),
    ("master_lb_enabled", Kind::Bool),
    ("floating_ip_enabled", Kind::Bool),
    ("hidden", Kind::Bool),
    ("tags", Kind::Str { min: 0 }),
    ("links", Kind::ShowOnly),
    ("project_id", Kind::ShowOnly),
    ("user_id", Kind::ShowOnly),
    ("created_at", Kind::ShowOnly),
    ("updated_at", Kind::ShowOnly),
    ("id", Kind::ShowOnly),
    ("driver", Kind::ShowOnly),
];

/// The attributes of one template, each read by its kind. An attribute
/// with a problem is in `broken` and nowhere else, so later rules do not
/// report it twice.
#[derive(Debug, Default)]
pub(super) struct Attrs {
    strings: BTreeMap<&'static str, String>,
    ints: BTreeMap<&'static str, i128>,
    bools: BTreeMap<&'static str, bool>,
    pub dns: Vec<Ipv4Addr>,
    /// Label values as Magnum stores them (`str()` of the value).
    pub labels: BTreeMap<String, String>,
    /// Labels whose JSON value was not a string, with its type (Magnum's
    /// label checks split strings and fail with a 500 on anything else).
    pub non_string_labels: BTreeMap<String, &'static str>,
    broken: BTreeSet<&'static str>,
}

impl Attrs {
    pub fn str(&self, key: &str) -> Option<&str> {
        self.strings.get(key).map(String::as_str)
    }

    pub fn owned(&self, key: &str) -> Option<String> {
        self.strings.get(key).cloned()
    }

    pub fn int(&self, key: &str) -> Option<i128> {
        self.ints.get(key).copied()
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.bools.get(key).copied()
    }

    pub fn is_broken(&self, key: &str) -> bool {
        self.broken.contains(key)
    }
}

/// Read every attribute of `obj` (unknown ones are reported by the caller).
pub(super) fn read(f: &mut Fields<'_>) -> Attrs {
    let mut a = Attrs::default();
    for &(key, kind) in ATTRS {
        let Some(value) = f.get(key) else { continue };
        let ok = match kind {
            Kind::Str { min } => read_str(f, key, value, min).map(|s| {
                a.strings.insert(key, s);
            }),
            Kind::Int { min, max } => read_int(f, key, value, min, max).map(|n| {
                a.ints.insert(key, n);
            }),
            Kind::Bool => read_bool(f, key, value).map(|b| {
                a.bools.insert(key, b);
            }),
            Kind::Uuid => read_uuid(f, key, value),
            Kind::Dns => read_dns(f, key, value).map(|d| a.dns = d),
            Kind::Labels => read_labels(f, value, &mut a),
            Kind::Enum | Kind::ShowOnly => Some(()),
        };
        if ok.is_none() {
            a.broken.insert(key);
        }
    }
    a
}

/// WSME's wording for a value it refuses.
fn invalid(key: &str, shown: &str, why: &str) -> String {
    format!("Invalid input for field/attribute {key}. Value: '{shown}'. {why}")
}

fn read_str(f: &mut Fields<'_>, key: &str, value: &Value, min: usize) -> Option<String> {
    let Value::String(s) = value else {
        let t = type_name(value);
        f.problem(key, format!("{key} must be a string, not {t}"));
        return None;
    };
    let len = s.chars().count();
    if len < min {
        f.problem(
            key,
            invalid(
                key,
                s,
                "Value should have a minimum character requirement of 1 (an empty string is not \
                 \"no value\" to Magnum: leave the field out, or null)",
            ),
        );
        return None;
    }
    if len > MAX_LEN {
        f.problem(
            key,
            format!(
                "Invalid input for field/attribute {key}: {len} characters. Value should have a \
                 maximum character requirement of {MAX_LEN}"
            ),
        );
        return None;
    }
    Some(s.clone())
}

/// Python's `int()` of a JSON value, as WSME converts integer attributes.
fn python_int(value: &Value) -> Result<i128, String> {
    match value {
        Value::Bool(b) => Ok(i128::from(*b)),
        Value::Number(n) => Ok(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i128::from(i),
            (_, Some(u), _) => i128::from(u),
            (_, _, Some(x)) => python::int_from_float(x),
            _ => 0,
        }),
        Value::String(s) => python::int_from_str(s).ok_or_else(|| format!("\"{s}\"")),
        other => Err(type_name(other).to_string()),
    }
}

fn read_int(f: &mut Fields<'_>, key: &str, value: &Value, min: i128, max: i128) -> Option<i128> {
    let n = match python_int(value) {
        Ok(n) => n,
        Err(shown) => {
            f.problem(key, format!("{key} must be an integer, not {shown}"));
            return None;
        }
    };
    let shown = n.to_string();
    if n < min {
        let why = format!("Value should be greater or equal to {min}");
        f.problem(key, invalid(key, &shown, &why));
        return None;
    }
    if n > max {
        let why = format!("Value should be lower or equal to {max}");
        f.problem(key, invalid(key, &shown, &why));
        return None;
    }
    Some(n)
}

fn read_bool(f: &mut Fields<'_>, key: &str, value: &Value) -> Option<bool> {
    let read = match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) if n.is_i64() || n.is_u64() => python::bool_from_string(&n.to_string()),
        Value::String(s) => python::bool_from_string(s),
        _ => None,
    };
    if read.is_none() {
        let shown = value.to_string();
        let t: Vec<&str> = python::TRUE_STRINGS.to_vec();
        let fl: Vec<&str> = python::FALSE_STRINGS.to_vec();
        f.problem(
            key,
            format!(
                "Invalid input for field/attribute {key}. Value: {shown}. Expecting true or false, \
                 or a string Magnum reads as one (any case): {} for true, {} for false \
                 (Magnum's API fails with a 500 on this value)",
                t.join(", "),
                fl.join(", ")
            ),
        );
    }
    read
}

fn read_uuid(f: &mut Fields<'_>, key: &str, value: &Value) -> Option<()> {
    let ok = matches!(value, Value::String(s) if python::is_uuid_like(s));
    if !ok {
        let shown = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        f.problem(key, format!("Expected a uuid but received {shown}."));
        return None;
    }
    Some(())
}

/// Magnum's `validate_dns`: one IPv4 address or a comma-separated list,
/// each item stripped of whitespace, dotted quads only.
fn read_dns(f: &mut Fields<'_>, key: &str, value: &Value) -> Option<Vec<Ipv4Addr>> {
    let Value::String(list) = value else {
        let t = type_name(value);
        f.problem(
            key,
            format!(
                "{key} must be a string (one IPv4 address or a comma-separated list), not {t} \
                 (Magnum's API fails with a 500 on it)"
            ),
        );
        return None;
    };
    let parsed: Option<Vec<Ipv4Addr>> = list
        .split(',')
        .map(|a| python::strip(a).parse().ok())
        .collect();
    if parsed.is_none() {
        f.problem(
            key,
            format!(
                "Expected a single dns address or comma separated dns list, but received {list}."
            ),
        );
    }
    parsed
}

/// Labels as a JSON object of strings, numbers and booleans (Magnum's
/// API), or as the `key=value,key=value` string of `openstack coe cluster
/// template create --labels` (ours: Magnum's API refuses a string).
fn read_labels(f: &mut Fields<'_>, value: &Value, a: &mut Attrs) -> Option<()> {
    match value {
        Value::Object(map) => read_label_object(f, map, a),
        Value::String(s) => read_label_string(f, s, a),
        other => {
            let t = type_name(other);
            f.problem(
                "labels",
                format!("labels must be an object (or a key=value,... string), not {t}"),
            );
            None
        }
    }
}

fn read_label_object(f: &mut Fields<'_>, map: &Map<String, Value>, a: &mut Attrs) -> Option<()> {
    let mut ok = true;
    for (k, v) in map {
        let stored = match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Value::Number(n) if n.is_f64() => python::float_str(n.as_f64().unwrap_or(0.0)),
            Value::Number(n) => n.to_string(),
            Value::Null => {
                ok = false;
                f.problem(
                    &format!("labels/{k}"),
                    format!(
                        "labels/{k} is null: a label value must be a string, a number or a \
                         boolean (Magnum's API fails with a 500 on a null label); remove the label"
                    ),
                );
                continue;
            }
            other => {
                ok = false;
                let t = type_name(other);
                f.problem(
                    &format!("labels/{k}"),
                    format!("labels/{k} must be a string, a number or a boolean, not {t}"),
                );
                continue;
            }
        };
        if !v.is_string() {
            a.non_string_labels.insert(k.clone(), type_name(v));
        }
        a.labels.insert(k.clone(), stored);
    }
    ok.then_some(())
}

fn read_label_string(f: &mut Fields<'_>, s: &str, a: &mut Attrs) -> Option<()> {
    let mut ok = true;
    for item in s.split(',').filter(|i| !i.trim().is_empty()) {
        match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                a.labels.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => {
                ok = false;
                f.problem("labels", format!("labels: \"{item}\" is not key=value"));
            }
        }
    }
    ok.then_some(())
}
