//! Magnum's rules for a Swarm template after parsing: the create
//! decorators of `ClusterTemplatesController.post`
//! (`magnum/api/validation.py`: server type, volume driver, docker volume
//! size, the cluster driver lookup) and `attr_validator`'s label checks.
//! The network-driver rule lives with [`super::NetworkDriverPolicy`]; the
//! cloud look-ups (image, flavors, external network) need a cloud and are
//! not done here.

use std::fmt::Write as _;

use super::attrs::Attrs;
use super::{Coe, python};
use crate::cluster::json::Fields;

/// `SwarmValidator.supported_volume_driver`.
const SWARM_VOLUME_DRIVERS: &[&str] = &["rexray"];
/// `ServerType.ALL`.
const SERVER_TYPES: &[&str] = &["vm", "bm"];
/// The (server type, os) pairs Magnum has Swarm drivers for
/// (`swarm_fedora_atomic_v1` for swarm, `_v2` for swarm-mode).
const SWARM_DRIVER_SERVER_TYPE: &str = "vm";
const SWARM_DRIVER_OS: &str = "fedora-atomic";

/// `attr_validator.SUPPORTED_SWARM_STRATEGY`.
const SWARM_STRATEGIES: &[&str] = &["spread", "binpack", "random"];
/// `attr_validator.SUPPORTED_ISOLATION`.
const MESOS_ISOLATION: &[&str] = &[
    "filesystem/posix",
    "filesystem/linux",
    "filesystem/shared",
    "posix/cpu",
    "posix/mem",
    "posix/disk",
    "cgroups/cpu",
    "cgroups/mem",
    "docker/runtime",
    "namespaces/pid",
];
/// `attr_validator.SUPPORTED_IMAGE_PROVIDERS`.
const MESOS_IMAGE_PROVIDERS: &[&str] = &["docker", "appc"];

/// `a/b/unspecified`, as Magnum lists what it expects.
fn expecting(list: &[&str]) -> String {
    let mut items = list.to_vec();
    items.push("unspecified");
    items.join("/")
}

/// The server type: `vm` when not given; `None` (reported) when invalid.
pub(super) fn server_type(f: &mut Fields<'_>, present: bool) -> Option<String> {
    let key = "server_type";
    match f.get(key) {
        None if present => {
            f.problem(
                key,
                format!(
                    "Server type None is not supported, expecting a {} server type. \
                     (server_type is null: leave it out for vm)",
                    expecting(SERVER_TYPES)
                ),
            );
            None
        }
        None => Some("vm".into()),
        Some(serde_json::Value::String(s)) if SERVER_TYPES.contains(&s.as_str()) => Some(s.clone()),
        Some(other) => {
            let shown = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_string);
            f.problem(
                key,
                format!(
                    "Invalid input for field/attribute {key}. Value: '{shown}'. Value should be one of: {}",
                    SERVER_TYPES.join(", ")
                ),
            );
            None
        }
    }
}

/// The create decorators after the network driver, for a Swarm COE:
/// volume driver, docker volume size, and the driver lookup by
/// (server type, distro, COE).
pub(super) fn check_swarm(f: &mut Fields<'_>, a: &Attrs, coe: Coe, server_type: Option<&str>) {
    if let Some(driver) = a.str("volume_driver")
        && !SWARM_VOLUME_DRIVERS.contains(&driver)
    {
        f.problem(
            "volume_driver",
            format!(
                "Volume driver type {driver} is not supported, expecting a {} volume driver.",
                expecting(SWARM_VOLUME_DRIVERS)
            ),
        );
    }
    check_volume_size(f, a);
    let Some(server_type) = server_type else {
        return;
    };
    let distro = a.str("cluster_distro");
    let shown = format!(
        "Cluster type ({server_type}, {}, {coe}) not supported.",
        distro.unwrap_or("<the image's os_distro>")
    );
    if server_type != SWARM_DRIVER_SERVER_TYPE {
        f.problem(
            "server_type",
            format!(
                "{shown} Magnum has no Swarm driver for server_type {server_type}: its Swarm \
                 drivers build {SWARM_DRIVER_SERVER_TYPE} nodes from {SWARM_DRIVER_OS} images"
            ),
        );
    }
    if let Some(distro) = distro
        && distro != SWARM_DRIVER_OS
    {
        f.problem(
            "cluster_distro",
            format!(
                "{shown} Magnum's Swarm drivers serve cluster_distro {SWARM_DRIVER_OS} only \
                 (leave cluster_distro out to take the image's os_distro)"
            ),
        );
    }
}

/// `_enforce_volume_storage_size`: devicemapper needs a docker volume of
/// at least 3 GB.
fn check_volume_size(f: &mut Fields<'_>, a: &Attrs) {
    if a.str("docker_storage_driver") != Some("devicemapper") || a.is_broken("docker_volume_size") {
        return;
    }
    let size = a.int("docker_volume_size");
    if size.is_none_or(|s| s < 3) {
        let shown = size.map_or_else(|| "None".to_string(), |s| s.to_string());
        f.problem(
            "docker_volume_size",
            format!(
                "docker volume size {shown} GB is not valid, expecting minimum value 3GB for \
                 devicemapper storage driver."
            ),
        );
    }
}

/// `attr_validator.validate_labels`: `swarm_strategy` and the Mesos
/// labels, checked on every template whatever its COE.
pub(super) fn check_labels(f: &mut Fields<'_>, a: &Attrs) {
    for name in [
        "mesos_slave_isolation",
        "mesos_slave_image_providers",
        "mesos_slave_executor_env_variables",
        "swarm_strategy",
    ] {
        let Some(value) = a.labels.get(name) else {
            continue;
        };
        let field = format!("labels/{name}");
        if let Some(t) = a.non_string_labels.get(name) {
            f.problem(
                &field,
                format!(
                    "labels/{name} must be a string, not {t} (Magnum's API fails with a 500 on it)"
                ),
            );
            continue;
        }
        let message = match name {
            "mesos_slave_isolation" => mesos_isolation(value),
            "mesos_slave_image_providers" => mesos_image_providers(value, a),
            "mesos_slave_executor_env_variables" => {
                (!python::json_loads_ok(value)).then(|| "Json format error".to_string())
            }
            _ => swarm_strategy(value),
        };
        if let Some(message) = message {
            f.problem(&field, message);
        }
    }
}

/// The values of `items` not in `supported`, each once, in order.
fn unsupported<'a>(items: impl Iterator<Item = &'a str>, supported: &[&str]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for item in items {
        if !supported.contains(&item) && !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn not_supported(name: &str, values: &str, supported: &[&str]) -> String {
    let mut list = supported.to_vec();
    list.push("unspecified");
    format!(
        "property \"labels/{name}\" with value \"{values}\" is not supported, supported values are: {}",
        list.join(", ")
    )
}

/// `validate_labels_strategy`: whitespace-separated strategies.
fn swarm_strategy(value: &str) -> Option<String> {
    let bad = unsupported(python::split_words(value), SWARM_STRATEGIES);
    (!bad.is_empty()).then(|| not_supported("swarm_strategy", &bad.join(" "), SWARM_STRATEGIES))
}

/// `validate_labels_isolation`: comma-separated isolators, not stripped.
fn mesos_isolation(value: &str) -> Option<String> {
    let bad = unsupported(value.split(','), MESOS_ISOLATION);
    (!bad.is_empty())
        .then(|| not_supported("mesos_slave_isolation", &bad.join(", "), MESOS_ISOLATION))
}

/// `validate_labels_image_providers`: `docker` or `appc` (any case), and
/// `docker` needs the `docker/runtime` isolator.
fn mesos_image_providers(value: &str, a: &Attrs) -> Option<String> {
    let mut out = String::new();
    for provider in value.split(',').map(str::to_lowercase) {
        if !MESOS_IMAGE_PROVIDERS.contains(&provider.as_str()) {
            let m = not_supported(
                "mesos_slave_image_providers",
                &provider,
                MESOS_IMAGE_PROVIDERS,
            );
            let _ = write!(out, "{}{m}", if out.is_empty() { "" } else { "; " });
        } else if provider == "docker"
            && !a
                .labels
                .get("mesos_slave_isolation")
                .is_some_and(|i| i.split(',').any(|x| x == "docker/runtime"))
        {
            let m = "Docker runtime isolator has to be specified if 'docker' is included in \
                     'mesos_slave_image_providers' Please add 'docker/runtime' to \
                     'mesos_slave_isolation' labels flags";
            if !out.contains(m) {
                let _ = write!(out, "{}{m}", if out.is_empty() { "" } else { "; " });
            }
        }
    }
    (!out.is_empty()).then_some(out)
}
