//! Keystone application-credential access rules for the node credential:
//! exactly the Neutron calls the driver makes (`kuryr-openstack`'s Neutron
//! client, as the driver uses it), nothing else.
//!
//! Keystone matches `path` against the request path with `*` standing for
//! one path segment. Neutron (keystonemiddleware) enforces the rules only
//! when its `[keystone_authtoken]` has `service_type = network`; without
//! it, a token from a restricted credential is refused outright (401).

use serde_json::{Value, json};

/// The Neutron service type in the catalog.
pub const SERVICE: &str = "network";

/// Collections the driver creates, reads, changes and deletes.
const CRUD: &[&str] = &["networks", "subnets", "subnetpools", "ports"];
/// Collections whose tags the driver sets (its state lives in tags).
const TAGGED: &[&str] = &["networks", "subnets", "subnetpools", "ports"];

/// `(method, path)` of every call the driver makes.
pub fn driver_rules() -> Vec<(&'static str, String)> {
    let mut rules: Vec<(&'static str, String)> = vec![("GET", "/v2.0/extensions".into())];
    for c in CRUD {
        rules.push(("GET", format!("/v2.0/{c}")));
        rules.push(("POST", format!("/v2.0/{c}")));
        rules.push(("GET", format!("/v2.0/{c}/*")));
        rules.push(("PUT", format!("/v2.0/{c}/*")));
        rules.push(("DELETE", format!("/v2.0/{c}/*")));
    }
    // Exposed ports (`docker run --expose`): one security group per port.
    rules.push(("GET", "/v2.0/security-groups".into()));
    rules.push(("POST", "/v2.0/security-groups".into()));
    rules.push(("DELETE", "/v2.0/security-groups/*".into()));
    rules.push(("GET", "/v2.0/security-group-rules".into()));
    rules.push(("POST", "/v2.0/security-group-rules".into()));
    rules.push(("DELETE", "/v2.0/security-group-rules/*".into()));
    // vlan mode: subports of the node VM's trunk (never creating or
    // deleting the trunk itself).
    rules.push(("GET", "/v2.0/trunks".into()));
    rules.push(("GET", "/v2.0/trunks/*".into()));
    rules.push(("PUT", "/v2.0/trunks/*/add_subports".into()));
    rules.push(("PUT", "/v2.0/trunks/*/remove_subports".into()));
    rules.push(("GET", "/v2.0/trunks/*/get_subports".into()));
    for c in TAGGED {
        rules.push(("GET", format!("/v2.0/{c}/*/tags")));
        rules.push(("PUT", format!("/v2.0/{c}/*/tags")));
        rules.push(("PUT", format!("/v2.0/{c}/*/tags/*")));
        rules.push(("DELETE", format!("/v2.0/{c}/*/tags/*")));
    }
    rules
}

/// The optional rule that lets `kuryr node check` see the L2 agent.
pub fn check_rules() -> Vec<(&'static str, String)> {
    vec![("GET", "/v2.0/agents".into())]
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
mod tests {
    use super::*;

    #[test]
    fn matching() {
        assert!(path_matches("/v2.0/networks/*", "/v2.0/networks/abc"));
        assert!(!path_matches("/v2.0/networks/*", "/v2.0/networks"));
        assert!(!path_matches("/v2.0/networks/*", "/v2.0/networks/a/tags"));
        assert!(path_matches("/v2.0/**", "/v2.0/networks/a/tags"));
        assert!(path_matches(
            "/v2.0/ports/*/tags/*",
            "/v2.0/ports/p1/tags/kuryr.net.uuid.lh:0123"
        ));
    }

    /// Every request shape the driver's Neutron client sends is allowed,
    /// and nothing beyond.
    #[test]
    fn covers_the_driver_and_no_more() {
        let r = driver_rules();
        let allowed = [
            ("GET", "/v2.0/extensions"),
            ("GET", "/v2.0/networks"),
            ("POST", "/v2.0/networks"),
            ("PUT", "/v2.0/networks/n1"),
            ("DELETE", "/v2.0/subnets/s1"),
            ("GET", "/v2.0/subnetpools/p1"),
            ("POST", "/v2.0/ports"),
            ("PUT", "/v2.0/ports/p1"),
            ("PUT", "/v2.0/ports/p1/tags/compute:kuryr"),
            ("DELETE", "/v2.0/networks/n1/tags/kuryr.net.existing:abc"),
            ("PUT", "/v2.0/subnetpools/p1/tags"),
            ("POST", "/v2.0/security-groups"),
            ("POST", "/v2.0/security-group-rules"),
            ("DELETE", "/v2.0/security-groups/g1"),
            ("PUT", "/v2.0/trunks/t1/add_subports"),
            ("GET", "/v2.0/trunks/t1/get_subports"),
        ];
        for (m, p) in allowed {
            assert!(allows(&r, m, p), "{m} {p}");
        }
        let denied = [
            ("POST", "/v2.0/routers"),
            ("PUT", "/v2.0/routers/r1"),
            ("GET", "/v2.0/agents"),
            ("POST", "/v2.0/floatingips"),
            ("POST", "/v2.0/trunks"),
            ("DELETE", "/v2.0/trunks/t1"),
            ("PUT", "/v2.0/security-groups/g1"),
            ("GET", "/v2.0/quotas/p"),
            ("PUT", "/v2.0/routers/r1/tags/x"),
            ("DELETE", "/v2.0/extensions"),
        ];
        for (m, p) in denied {
            assert!(!allows(&r, m, p), "{m} {p}");
        }
        assert!(allows(&check_rules(), "GET", "/v2.0/agents"));
        // No duplicates.
        let mut seen = std::collections::BTreeSet::new();
        for rule in &r {
            assert!(seen.insert(rule.clone()), "{rule:?}");
        }
        assert_eq!(r.len(), 48);
    }

    /// docs/security.md shows exactly this list.
    #[test]
    fn documented_in_security_md() {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/security.md"),
        )
        .expect("docs/security.md");
        let block = format!("```json\n{}```", to_pretty_json(&driver_rules()));
        assert!(
            doc.contains(&block),
            "docs/security.md must show the access rules exactly as `kuryr template access-rules` prints them"
        );
    }

    #[test]
    fn pretty_json_is_the_json() {
        let r = driver_rules();
        let parsed: Value = serde_json::from_str(&to_pretty_json(&r)).expect("valid JSON");
        assert_eq!(parsed, to_json(&r));
    }
}
