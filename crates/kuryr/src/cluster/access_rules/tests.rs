//! The access rules against the code, in both directions: every Neutron
//! client method `crates/kuryr/src` calls is in [`DRIVER_USES`] or
//! [`CHECK_USES`] (so the rules allow it), and every listed one is called
//! (so the rules allow nothing else). A Docker flow on the fake Neutron
//! checks the same from the requests actually sent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kuryr_openstack::fake::FakeNeutron;
use serde_json::json;

use super::*;
use crate::binding::Binder;
use crate::driver::{Driver, DriverConfig};
use crate::server::answer;

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

// --- the source, as far as calls go ---

/// `crates/kuryr/src` without tests: `(path below src, text)`, with
/// comment lines and `#[cfg(test)] mod x { ... }` blocks removed and all
/// whitespace dropped (so `self.neutron\n    .list_ports(` reads
/// `self.neutron.list_ports(`).
fn sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    files
        .into_iter()
        .filter(|p| {
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            stem != "tests" && !stem.ends_with("_tests")
        })
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let rel = p.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            (rel, squeeze(&strip_test_modules(&text)))
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Drop comment lines, then every `#[cfg(test)]` item that is a module
/// with a body (up to its matching brace).
fn strip_test_modules(text: &str) -> String {
    let text: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let item_end = after.find([';', '{']).unwrap_or(after.len());
        if !after[..item_end].contains("mod ") || !after[item_end..].starts_with('{') {
            // `#[cfg(test)] mod x;` (its file is skipped) or another item.
            out.push_str(&after[..item_end.min(after.len())]);
            rest = &after[item_end..];
            continue;
        }
        let mut depth = 0usize;
        let mut end = after.len();
        for (i, c) in after[item_end..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = item_end + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn squeeze(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Client method -> tag resources (by name), as called or as listed.
type Calls = BTreeMap<&'static str, BTreeSet<String>>;

fn listed(uses: &[Use]) -> Calls {
    uses.iter()
        .map(|u| {
            let names = u.resources.iter().map(|r| format!("{r:?}")).collect();
            (u.function, names)
        })
        .collect()
}

/// The client methods called in `text` (`.name(` with any receiver but a
/// bare `self` when the crate defines a method of that name itself, as
/// the driver does for `create_network`), with the `TagResource::X` each
/// tag call passes.
/// The driver's own wrappers of tag calls (`driver/steps.rs`): a call of
/// the wrapper counts as a call of the client method, with the resource
/// the caller names; inside the wrapper the resource is its parameter.
const TAG_WRAPPERS: &[(&str, &str)] = &[("add_tags", "add_tag"), ("remove_tags", "remove_tag")];

fn calls_in(file: &str, text: &str, own: &BTreeSet<&str>, out: &mut Calls) {
    for op in OPERATIONS {
        let wrapper = TAG_WRAPPERS
            .iter()
            .find(|(_, f)| *f == op.function)
            .map(|(w, _)| format!(".{w}("));
        let needle = format!(".{}(", op.function);
        let wrapped = wrapper.iter().flat_map(|w| {
            text.match_indices(w.as_str())
                .map(move |(at, _)| (at, w.len()))
        });
        for (at, len) in text
            .match_indices(&needle)
            .map(|(at, _)| (at, needle.len()))
            .chain(wrapped)
        {
            let arg = &text[at + len..];
            if file == "driver/steps.rs"
                && (arg.starts_with("resource,") || arg.starts_with("*resource,"))
            {
                continue;
            }
            let before = &text[..at];
            let bare_self = before.ends_with("self")
                && !before[..before.len() - 4]
                    .ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '.');
            if bare_self && own.contains(op.function) {
                continue;
            }
            let entry = out.entry(op.function).or_default();
            if op.takes_resource() {
                let args = &text[at + len..];
                let resource = args
                    .strip_prefix("TagResource::")
                    .map(|r| r.split(|c: char| !c.is_alphanumeric()).next().unwrap_or(""))
                    .filter(|r| ops::TAG_RESOURCES.iter().any(|t| format!("{t:?}") == *r))
                    .unwrap_or_else(|| {
                        panic!(
                            "{file}: a {} call whose first argument is not a literal \
                             TagResource::X; write it as one so the access rules can be checked",
                            op.function
                        )
                    });
                entry.insert(resource.to_string());
            }
        }
    }
}

/// What the daemon and what `kuryr node check` call, from the source.
fn calls_in_source() -> (Calls, Calls) {
    let sources = sources();
    let own: BTreeSet<&str> = OPERATIONS
        .iter()
        .map(|op| op.function)
        .filter(|f| {
            let def = squeeze(&format!("fn {f}("));
            let generic = squeeze(&format!("fn {f}<"));
            sources
                .iter()
                .any(|(_, t)| t.contains(&def) || t.contains(&generic))
        })
        .collect();
    let (mut driver, mut check) = (Calls::new(), Calls::new());
    for (file, text) in &sources {
        assert!(
            !text.contains(".call(\"neutron."),
            "{file}: Neutron is called past the client's operation table"
        );
        let into = if file.starts_with("cluster/check/") {
            &mut check
        } else {
            &mut driver
        };
        calls_in(file, text, &own, into);
    }
    (driver, check)
}

/// Both directions: the driver's list is exactly what the daemon's code
/// calls; node check calls nothing beyond the driver's list and its own,
/// and all of its own.
#[test]
fn uses_are_the_calls_in_the_source() {
    let (driver, check) = calls_in_source();
    let listed_driver = listed(DRIVER_USES);
    let listed_check = listed(CHECK_USES);
    assert!(
        driver.contains_key("create_port") && driver.contains_key("list_networks"),
        "the scan finds the driver's calls: {driver:?}"
    );
    let missing: Vec<_> = driver
        .iter()
        .filter(|(f, r)| listed_driver.get(*f) != Some(r))
        .collect();
    assert!(
        missing.is_empty(),
        "crates/kuryr/src calls Neutron client methods (or tag resources) DRIVER_USES does not \
         list as called: {missing:?}; fix DRIVER_USES and docs/security.md"
    );
    let unused: Vec<_> = listed_driver
        .iter()
        .filter(|(f, r)| driver.get(*f) != Some(r))
        .collect();
    assert!(
        unused.is_empty(),
        "DRIVER_USES allows calls the daemon never makes: {unused:?}"
    );
    for (f, resources) in &check {
        let allowed = listed_driver.get(f).or(listed_check.get(f));
        assert_eq!(allowed, Some(resources), "node check calls {f}");
    }
    for f in listed_check.keys() {
        assert!(check.contains_key(f), "CHECK_USES lists {f}, never called");
        assert!(!listed_driver.contains_key(f), "{f} is in both lists");
    }
}

#[test]
fn the_scan_reads_calls_as_written() {
    let own: BTreeSet<&str> = ["create_network"].into();
    let mut calls = Calls::new();
    let text = squeeze(
        "self.create_network(req); // the driver's own\n\
         self.neutron\n   .create_network(&body);\n\
         n.add_tag(\n  TagResource::SubnetPool, &id, tag);\n\
         x.replace_tags(TagResource::Port, &id, &t);",
    );
    calls_in("x.rs", &text, &own, &mut calls);
    assert_eq!(
        calls,
        Calls::from([
            ("create_network", BTreeSet::new()),
            ("add_tag", ["SubnetPool".to_string()].into()),
            ("replace_tags", ["Port".to_string()].into()),
        ])
    );
    let stripped = strip_test_modules(
        "fn a() { n.get_port(x) }\n// n.get_subnet(x)\n#[cfg(test)]\nmod tests;\n\
         #[cfg(test)]\nmod t {\n fn b() { n.delete_port(y) { } }\n}\nfn c() {}\n",
    );
    assert!(stripped.contains("get_port") && stripped.contains("fn c()"));
    assert!(!stripped.contains("delete_port") && !stripped.contains("get_subnet"));
}

// --- the rules ---

/// The whole life of a network, an address and an endpoint with an exposed
/// port, on the fake: every request it sends is allowed.
#[tokio::test]
async fn every_request_of_a_docker_flow_is_allowed() {
    const NID: &str = "9c1f0d7a3b2e4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5";
    const EID: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
    let fake = FakeNeutron::new();
    let config = DriverConfig {
        host_id: "node1".into(),
        ..Default::default()
    };
    let d = Arc::new(Driver::new(fake.client(), config, Binder::Noop));
    d.start().await.expect("start");
    let ok = async |path: &str, body: serde_json::Value| {
        let reply = answer(&d, path, body.to_string().as_bytes()).await;
        let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(reply.status, 200, "{path}: {v}");
        v
    };
    let pool = ok(
        "/IpamDriver.RequestPool",
        json!({"Pool": "10.0.0.0/24", "Options": {}, "V6": false}),
    )
    .await;
    let pool_id = pool["PoolID"].as_str().unwrap().to_string();
    let ipv4 = json!([{"AddressSpace": "", "Pool": "10.0.0.0/24", "Gateway": "10.0.0.1/24"}]);
    let net = json!({"NetworkID": NID, "Options": {}, "IPv4Data": ipv4, "IPv6Data": []});
    ok("/NetworkDriver.CreateNetwork", net).await;
    let addr = ok(
        "/IpamDriver.RequestAddress",
        json!({"PoolID": pool_id, "Address": ""}),
    )
    .await;
    let ep = json!({"NetworkID": NID, "EndpointID": EID,
                    "Interface": {"Address": addr["Address"]}});
    ok("/NetworkDriver.CreateEndpoint", ep).await;
    let ep = json!({"NetworkID": NID, "EndpointID": EID});
    ok("/NetworkDriver.Join", ep.clone()).await;
    let exposed = json!([{"Proto": 6, "Port": 80}]);
    let program = json!({"NetworkID": NID, "EndpointID": EID,
        "Options": {"com.docker.network.endpoint.exposedports": exposed}});
    ok("/NetworkDriver.ProgramExternalConnectivity", program).await;
    ok("/NetworkDriver.RevokeExternalConnectivity", ep.clone()).await;
    ok("/NetworkDriver.Leave", ep.clone()).await;
    ok("/NetworkDriver.DeleteEndpoint", ep).await;
    let ip = addr["Address"].as_str().unwrap().split('/').next().unwrap();
    let release = json!({"PoolID": pool_id, "Address": ip});
    ok("/IpamDriver.ReleaseAddress", release).await;
    ok("/IpamDriver.ReleasePool", json!({"PoolID": pool_id})).await;
    ok("/NetworkDriver.DeleteNetwork", json!({"NetworkID": NID})).await;

    let rules = driver_rules();
    let requests = fake.requests();
    assert!(requests.len() > 15, "{requests:?}");
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("POST /security-group-rules"))
    );
    for r in &requests {
        let (method, path) = r.split_once(' ').unwrap();
        let path = format!("/v2.0{path}");
        assert!(
            allows(&rules, method, &path),
            "not allowed: {method} {path}"
        );
    }
}

/// What the old hand-made list allowed and the driver never sends.
#[test]
fn what_the_driver_never_sends_is_refused() {
    let r = driver_rules();
    let denied = [
        ("PUT", "/v2.0/networks/n1"),
        ("PUT", "/v2.0/subnets/s1"),
        ("PUT", "/v2.0/subnetpools/p1"),
        ("GET", "/v2.0/networks/n1/tags"),
        ("DELETE", "/v2.0/security-groups/g1/tags/t"),
        ("PUT", "/v2.0/trunks/t1/tags/t"),
        ("GET", "/v2.0/trunks"),
        ("GET", "/v2.0/trunks/t1"),
        ("GET", "/v2.0/security-group-rules"),
        ("DELETE", "/v2.0/security-group-rules/r1"),
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
    let mut seen = BTreeSet::new();
    for rule in &r {
        assert!(seen.insert(rule.clone()), "{rule:?}");
    }
    assert_eq!(r.len(), 36, "{r:?}");
}

/// docs/security.md shows exactly this list.
#[test]
fn documented_in_security_md() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/security.md"),
    )
    .expect("docs/security.md");
    let block = format!("```json\n{}```", to_pretty_json(&driver_rules()));
    assert!(
        doc.contains(&block),
        "docs/security.md must show the access rules exactly as `kuryr template access-rules` prints them:\n{block}"
    );
}

#[test]
fn pretty_json_is_the_json() {
    let r = driver_rules();
    let parsed: serde_json::Value = serde_json::from_str(&to_pretty_json(&r)).expect("valid JSON");
    assert_eq!(parsed, to_json(&r));
}
