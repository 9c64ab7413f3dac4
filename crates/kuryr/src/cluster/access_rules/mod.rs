//! Keystone application-credential access rules for the node credential:
//! exactly the Neutron calls the driver makes, nothing else.
//!
//! The rules are derived from the Neutron client's operation table
//! ([`ops::OPERATIONS`]: method and path of every request the client can
//! send), restricted to the client methods the kuryr crate calls
//! ([`DRIVER_USES`], [`CHECK_USES`]). The tests check both directions
//! against the source: every client method called in `crates/kuryr/src` is
//! listed (so allowed), and every listed one is called (so nothing else is
//! allowed); and a whole Docker flow on the fake Neutron sends only allowed
//! requests.
//!
//! Keystone matches `path` against the request path with `*` standing for
//! one path segment. Neutron (keystonemiddleware) enforces the rules only
//! when its `[keystone_authtoken]` has `service_type = network`; without
//! it, a token from a restricted credential is refused outright (401).

use kuryr_openstack::TagResource;
use kuryr_openstack::neutron::ops::{self, OPERATIONS};
use serde_json::{Value, json};

/// The Neutron service type in the catalog.
pub const SERVICE: &str = "network";

/// One client method the kuryr crate calls; for the tag methods, the
/// resources it passes (each one rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Use {
    /// A [`kuryr_openstack::Neutron`] method (an [`ops::Operation`]'s
    /// `function`).
    pub function: &'static str,
    pub resources: &'static [TagResource],
}

const fn call(function: &'static str) -> Use {
    Use {
        function,
        resources: &[],
    }
}

const fn tags(function: &'static str, resources: &'static [TagResource]) -> Use {
    Use {
        function,
        resources,
    }
}

/// The client methods the daemon calls (everything in `crates/kuryr/src`
/// but `cluster/check/`); the test `uses_are_the_calls_in_the_source`
/// keeps this list equal to the source.
pub const DRIVER_USES: &[Use] = &[
    // Read once at start.
    call("list_extensions"),
    // One Docker network: a Neutron network, a subnet, a subnet pool.
    call("list_networks"),
    call("get_network"),
    call("create_network"),
    call("delete_network"),
    // DeleteNetwork in one request when the network did not change.
    call("delete_network_if"),
    call("list_subnets"),
    call("get_subnet"),
    call("create_subnet"),
    call("delete_subnet"),
    call("list_subnetpools"),
    call("get_subnetpool"),
    call("create_subnetpool"),
    call("delete_subnetpool"),
    // One container address: a port.
    call("list_ports"),
    call("get_port"),
    // The wait for ACTIVE (vif_plugging_is_fatal), one request for all
    // ports waited on.
    call("poll_ports"),
    call("create_port"),
    call("update_port"),
    // Claiming a port another host (or the swarm manager) handed out.
    call("update_port_if"),
    call("delete_port"),
    // `docker run --expose`: one security group per port.
    call("list_security_groups"),
    call("create_security_group"),
    call("delete_security_group"),
    call("create_security_group_rule"),
    // vlan mode: subports of the node VM's trunk (never the trunk itself).
    call("add_subports"),
    call("remove_subports"),
    call("get_subports"),
    // The driver's state lives in tags, shared with kuryr-libnetwork. On
    // what others may tag too (a user's network, subnet, port or pool),
    // kuryr adds and removes its own tags one by one.
    tags(
        "add_tag",
        &[
            TagResource::Network,
            TagResource::Subnet,
            TagResource::SubnetPool,
            TagResource::Port,
        ],
    ),
    tags(
        "remove_tag",
        &[
            TagResource::Network,
            TagResource::Subnet,
            TagResource::SubnetPool,
            TagResource::Port,
        ],
    ),
    tags(
        "replace_tags",
        &[TagResource::Network, TagResource::Subnet, TagResource::Port],
    ),
];

/// What `kuryr node check` calls beyond [`DRIVER_USES`] (its L2 agent
/// line); optional, `kuryr template access-rules --with-check`.
pub const CHECK_USES: &[Use] = &[call("list_agents")];

/// `(method, path)` rules for `uses`, in the order of the client's table.
/// Panics on a name the table lacks (a test checks the lists).
pub fn rules_for(uses: &[Use]) -> Vec<(&'static str, String)> {
    for u in uses {
        let op = ops::by_function(u.function)
            .unwrap_or_else(|| panic!("{} is no Neutron client method", u.function));
        assert_eq!(
            op.takes_resource(),
            !u.resources.is_empty(),
            "{}: tag methods, and only they, list resources",
            u.function
        );
    }
    let mut rules: Vec<(&'static str, String)> = Vec::new();
    for op in OPERATIONS {
        let Some(u) = uses.iter().find(|u| u.function == op.function) else {
            continue;
        };
        let paths: Vec<String> = if op.takes_resource() {
            ops::TAG_RESOURCES
                .iter()
                .filter(|r| u.resources.contains(r))
                .map(|r| op.rule_path(Some(*r)))
                .collect()
        } else {
            vec![op.rule_path(None)]
        };
        for path in paths {
            let rule = (op.verb.as_str(), path);
            if !rules.contains(&rule) {
                rules.push(rule);
            }
        }
    }
    rules
}

/// `(method, path)` of every call the driver makes.
pub fn driver_rules() -> Vec<(&'static str, String)> {
    rules_for(DRIVER_USES)
}

/// The optional rules that let `kuryr node check` see the L2 agent.
pub fn check_rules() -> Vec<(&'static str, String)> {
    rules_for(CHECK_USES)
}

/// As Keystone's `access_rules` list.
pub fn to_json(rules: &[(&'static str, String)]) -> Value {
    Value::Array(
        rules
            .iter()
            .map(|(method, path)| json!({"service": SERVICE, "method": method, "path": path}))
            .collect(),
    )
}

/// One rule per line, the form `docs/security.md` shows and
/// `openstack application credential create --access-rules` accepts.
pub fn to_pretty_json(rules: &[(&'static str, String)]) -> String {
    let lines: Vec<String> = rules
        .iter()
        .map(|(method, path)| {
            format!(r#"  {{"service": "{SERVICE}", "method": "{method}", "path": "{path}"}}"#)
        })
        .collect();
    format!("[\n{}\n]\n", lines.join(",\n"))
}

/// Keystone's access-rule path match (keystonemiddleware `_path_matches`):
/// `*` is one segment, `**` any number.
pub fn path_matches(pattern: &str, path: &str) -> bool {
    fn go(p: &[&str], s: &[&str]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(&"**"), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some(&"*"), Some(seg)) => !seg.is_empty() && go(&p[1..], &s[1..]),
            (Some(lit), Some(seg)) => lit == seg && go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    go(&p, &s)
}

/// Whether `(method, path)` is allowed by `rules`.
pub fn allows(rules: &[(&'static str, String)], method: &str, path: &str) -> bool {
    rules
        .iter()
        .any(|(m, p)| *m == method && path_matches(p, path))
}

#[cfg(test)]
mod tests;
