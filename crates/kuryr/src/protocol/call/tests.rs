//! Which path accepts which body: every method with Docker-shaped bodies,
//! and 150+ malformed ones, each refused with a message naming the problem.

use serde_json::{Value, json};

use super::*;

const NID: &str = "9c1f0d7a3b2e4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5";
const EID: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
const POOL: &str = "3f0c6d2e-8a41-4b7e-9d3c-5a6b7c8d9e0f";

fn parse(path: &str, body: &Value) -> Result<PluginCall, ParseError> {
    PluginCall::parse(path, body.to_string().as_bytes())
}

fn sandbox_labels(exposed: Value) -> Value {
    json!({"com.docker.network.endpoint.exposedports": exposed,
           "com.docker.network.portmap": []})
}

#[test]
fn every_method_round_trips_its_path() {
    assert_eq!(Method::ALL.len(), 21);
    for m in Method::ALL {
        assert_eq!(Method::from_path(m.path()), Some(*m));
        assert_eq!(format!("/{m}"), m.path());
    }
    assert!(Method::Activate.is_stateless());
    assert!(!Method::CreateEndpoint.is_stateless());
}

#[test]
fn docker_shaped_bodies_parse_into_their_calls() {
    let endpoint = json!({"NetworkID": NID, "EndpointID": EID});
    let cases: Vec<(&str, Value)> = vec![
        ("/Plugin.Activate", json!(null)),
        ("/NetworkDriver.GetCapabilities", json!({})),
        (
            "/NetworkDriver.CreateNetwork",
            json!({"NetworkID": NID, "Options": {"com.docker.network.enable_ipv6": false,
                   "com.docker.network.generic": {}},
                   "IPv4Data": [{"AddressSpace": "no_address_space", "Pool": "10.0.0.0/24",
                                 "Gateway": "10.0.0.1/24"}], "IPv6Data": []}),
        ),
        ("/NetworkDriver.DeleteNetwork", json!({"NetworkID": NID})),
        (
            "/NetworkDriver.AllocateNetwork",
            json!({"NetworkID": "3n6ixqz7b4ms9ec2tmgoya1kk", "Options": {},
                   "IPv4Data": [{"AddressSpace": "", "Pool": "10.0.0.0/24", "Gateway": "10.0.0.1/24"}]}),
        ),
        ("/NetworkDriver.FreeNetwork", json!({"NetworkID": NID})),
        (
            "/NetworkDriver.CreateEndpoint",
            json!({"NetworkID": NID, "EndpointID": EID,
                   "Interface": {"Address": "10.0.0.5/24", "AddressIPv6": "", "MacAddress": ""},
                   "Options": sandbox_labels(json!([]))}),
        ),
        ("/NetworkDriver.EndpointOperInfo", endpoint.clone()),
        ("/NetworkDriver.DeleteEndpoint", endpoint.clone()),
        (
            "/NetworkDriver.Join",
            json!({"NetworkID": NID, "EndpointID": EID,
                   "SandboxKey": "/var/run/docker/netns/0123456789ab",
                   "Options": sandbox_labels(json!([]))}),
        ),
        ("/NetworkDriver.Leave", endpoint.clone()),
        (
            "/NetworkDriver.ProgramExternalConnectivity",
            json!({"NetworkID": NID, "EndpointID": EID,
                   "Options": sandbox_labels(json!([{"Proto": 6, "Port": 80}]))}),
        ),
        ("/NetworkDriver.RevokeExternalConnectivity", endpoint),
        (
            "/NetworkDriver.DiscoverNew",
            json!({"DiscoveryType": 1, "DiscoveryData": {}}),
        ),
        ("/NetworkDriver.DiscoverDelete", json!("anything")),
        ("/IpamDriver.GetCapabilities", json!({})),
        ("/IpamDriver.GetDefaultAddressSpaces", json!({})),
        (
            "/IpamDriver.RequestPool",
            json!({"AddressSpace": "no_address_space", "Pool": "10.0.0.0/16",
                   "SubPool": "10.0.0.0/24", "Options": {}, "V6": false}),
        ),
        ("/IpamDriver.ReleasePool", json!({"PoolID": POOL})),
        (
            "/IpamDriver.RequestAddress",
            json!({"PoolID": POOL, "Address": "", "Options": null}),
        ),
        (
            "/IpamDriver.ReleaseAddress",
            json!({"PoolID": POOL, "Address": "10.0.0.5"}),
        ),
    ];
    assert_eq!(cases.len(), Method::ALL.len());
    for (path, body) in cases {
        let call = parse(path, &body).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(call.method().path(), path);
    }
    let call = parse(
        "/NetworkDriver.ProgramExternalConnectivity",
        &json!({"NetworkID": NID, "EndpointID": EID,
                "Options": sandbox_labels(json!([{"Proto": 6, "Port": 80}, {"Proto": 17, "Port": 53}]))}),
    )
    .unwrap();
    let PluginCall::ProgramExternalConnectivity(p) = &call else {
        panic!("{call:?}")
    };
    assert_eq!(p.exposed.len(), 2);
    assert_eq!(call.endpoint_id().map(DockerId::as_str), Some(EID));
    assert_eq!(call.network_id().map(DockerId::as_str), Some(NID));
}

/// Every case: (path, raw body, words the error must contain).
fn malformed_cases() -> Vec<(&'static str, Vec<u8>, Vec<&'static str>)> {
    let fresh = NID;
    let bad_ids = [
        "../../../etc/passwd".to_string(),
        format!("{}/../{}", &fresh[..30], &fresh[..31]),
        fresh.to_uppercase(),
        "z".repeat(64),
        fresh[..63].to_string(),
        format!("{fresh}0"),
        String::new(),
    ];
    let network_paths = [
        "/NetworkDriver.CreateNetwork",
        "/NetworkDriver.DeleteNetwork",
        "/NetworkDriver.AllocateNetwork",
        "/NetworkDriver.FreeNetwork",
    ];
    let endpoint_paths = [
        "/NetworkDriver.CreateEndpoint",
        "/NetworkDriver.DeleteEndpoint",
        "/NetworkDriver.Join",
        "/NetworkDriver.Leave",
        "/NetworkDriver.EndpointOperInfo",
        "/NetworkDriver.ProgramExternalConnectivity",
        "/NetworkDriver.RevokeExternalConnectivity",
    ];
    let ipam_paths = [
        "/IpamDriver.RequestAddress",
        "/IpamDriver.ReleaseAddress",
        "/IpamDriver.ReleasePool",
    ];
    let mut cases: Vec<(&str, Vec<u8>, Vec<&str>)> = Vec::new();
    for &path in network_paths.iter().chain(&endpoint_paths) {
        cases.push((path, b"".to_vec(), vec!["NetworkID"]));
        cases.push((path, b"{}".to_vec(), vec!["NetworkID"]));
        cases.push((path, b"{\"NetworkID\":".to_vec(), vec![]));
        cases.push((path, b"{\"NetworkID\": 42}".to_vec(), vec!["invalid type"]));
        cases.push((path, b"null".to_vec(), vec![]));
        cases.push((path, b"[]".to_vec(), vec![]));
        cases.push((path, b"\xff\xfe{".to_vec(), vec![]));
        for bad in &bad_ids {
            let body = json!({"NetworkID": bad, "EndpointID": EID});
            cases.push((path, body.to_string().into_bytes(), vec!["Docker ID"]));
        }
    }
    for &path in &endpoint_paths {
        let body = json!({"NetworkID": NID});
        cases.push((path, body.to_string().into_bytes(), vec!["EndpointID"]));
        for bad in &bad_ids {
            let body = json!({"NetworkID": NID, "EndpointID": bad});
            cases.push((path, body.to_string().into_bytes(), vec!["Docker ID"]));
        }
        let body = format!("{{\"NetworkID\":\"{NID}\",\"EndpointID\":\"{EID}\"");
        cases.push((path, body.into_bytes(), vec![]));
    }
    for &path in &ipam_paths {
        cases.push((path, b"".to_vec(), vec!["PoolID"]));
        cases.push((path, b"{\"PoolID\":".to_vec(), vec![]));
        cases.push((path, b"{\"PoolID\": 7}".to_vec(), vec!["invalid type"]));
        for bad in ["../../networks", "..", "", "not-a-uuid", "0000/../../ports"] {
            let body = json!({"PoolID": bad, "Address": "10.0.0.77"});
            cases.push((path, body.to_string().into_bytes(), vec!["PoolID"]));
        }
    }
    cases.extend(value_cases());
    // Deeply nested JSON must not blow the stack.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    cases.push(("/NetworkDriver.CreateNetwork", deep.into_bytes(), vec![]));
    cases
}

/// Well-formed JSON with a wrong value somewhere.
fn value_cases() -> Vec<(&'static str, Vec<u8>, Vec<&'static str>)> {
    let mut cases = Vec::new();
    let mut add = |path: &'static str, body: Value, words: Vec<&'static str>| {
        cases.push((path, body.to_string().into_bytes(), words));
    };
    let rp = "/IpamDriver.RequestPool";
    add(
        rp,
        json!({"AddressSpace": "x", "Pool": "10.0.0.0/33", "V6": false}),
        vec!["CIDR"],
    );
    add(rp, json!({"Pool": "banana"}), vec!["CIDR"]);
    add(
        rp,
        json!({"Pool": "10.200.0.0/24", "SubPool": "10.200.0.0/40"}),
        vec!["CIDR"],
    );
    add(rp, json!({"Pool": 10}), vec!["invalid type"]);
    add(rp, json!({"Pool": "", "V6": "yes"}), vec!["invalid type"]);
    add(
        rp,
        json!({"Pool": "", "Options": [1, 2]}),
        vec!["invalid type"],
    );
    add(
        rp,
        json!({"Pool": "", "Options": {"neutron.pool.uuid": 5}}),
        vec!["invalid type"],
    );
    let ra = "/IpamDriver.RequestAddress";
    add(
        ra,
        json!({"PoolID": POOL, "Address": "10.0.0.300"}),
        vec!["not an IP"],
    );
    add(
        ra,
        json!({"PoolID": POOL, "Address": "10.0.0.9/24"}),
        vec!["not an IP"],
    );
    add(
        ra,
        json!({"PoolID": POOL, "Options": "x"}),
        vec!["invalid type"],
    );
    let rel = "/IpamDriver.ReleaseAddress";
    add(rel, json!({"PoolID": POOL}), vec!["Address"]);
    add(
        rel,
        json!({"PoolID": POOL, "Address": ""}),
        vec!["not an IP"],
    );
    add(
        rel,
        json!({"PoolID": POOL, "Address": "fe80::zz"}),
        vec!["not an IP"],
    );
    let cn = "/NetworkDriver.CreateNetwork";
    let data = |pool: &str, gw: &str| json!({"AddressSpace": "x", "Pool": pool, "Gateway": gw});
    let good = data("10.0.0.0/24", "10.0.0.1/24");
    add(
        cn,
        json!({"NetworkID": NID, "IPv4Data": [data("10.0.0.0/99", "")]}),
        vec!["CIDR"],
    );
    add(
        cn,
        json!({"NetworkID": NID, "IPv4Data": [data("10.0.0.0/24", "10.0.0.1")]}),
        vec!["CIDR"],
    );
    add(
        cn,
        json!({"NetworkID": NID, "IPv4Data": {"Pool": "10.0.0.0/24"}}),
        vec!["invalid type"],
    );
    add(
        cn,
        json!({"NetworkID": NID, "IPv4Data": [{"AddressSpace": "x"}]}),
        vec!["Pool"],
    );
    add(
        cn,
        json!({"NetworkID": NID, "Options": "x", "IPv4Data": [good]}),
        vec!["invalid type"],
    );
    add(
        cn,
        json!({"NetworkID": NID, "IPv4Data": [good], "IPv6Data": [{"Pool": "fd00::/200"}]}),
        vec!["CIDR"],
    );
    let ce = "/NetworkDriver.CreateEndpoint";
    let iface = |i: Value| json!({"NetworkID": NID, "EndpointID": EID, "Interface": i});
    let free = "10.0.0.200/24";
    add(
        ce,
        iface(json!({"Address": free, "MacAddress": "zz:zz:zz:zz:zz:zz"})),
        vec!["MAC"],
    );
    add(
        ce,
        iface(json!({"Address": free, "MacAddress": "02:42:0a:00:00"})),
        vec!["MAC"],
    );
    add(ce, iface(json!({"Address": "10.0.0.200"})), vec!["CIDR"]);
    add(
        ce,
        iface(json!({"AddressIPv6": "fd00::1/129"})),
        vec!["CIDR"],
    );
    add(ce, iface(json!(5)), vec!["invalid type"]);
    add(
        ce,
        json!({"NetworkID": NID, "EndpointID": EID, "Interface": {"Address": free}, "Options": []}),
        vec!["invalid type"],
    );
    add(
        "/NetworkDriver.Join",
        json!({"NetworkID": NID, "EndpointID": EID, "SandboxKey": 5}),
        vec!["invalid type"],
    );
    let pec = "/NetworkDriver.ProgramExternalConnectivity";
    let program = |exposed: Value| json!({"NetworkID": NID, "EndpointID": EID, "Options": sandbox_labels(exposed)});
    add(
        pec,
        program(json!([{"Proto": "tcp", "Port": 80}])),
        vec!["exposedports"],
    );
    add(
        pec,
        program(json!([{"Proto": 6, "Port": 70000}])),
        vec!["exposedports"],
    );
    add(pec, program(json!({"Proto": 6})), vec!["exposedports"]);
    add(
        "/NetworkDriver.AllocateNetwork",
        json!({"NetworkID": "3n6ixqz7b4ms9ec2tmgoya1kk", "Options": {"a": 1}}),
        vec!["invalid type"],
    );
    cases
}

#[test]
fn malformed_bodies_are_refused_with_the_reason() {
    let cases = malformed_cases();
    assert!(cases.len() > 150, "{} cases", cases.len());
    for (path, body, words) in &cases {
        let what = format!(
            "{path} {:?}",
            String::from_utf8_lossy(&body[..body.len().min(120)])
        );
        match PluginCall::parse(path, body) {
            Ok(call) => panic!("{what}: parsed as {call:?}"),
            Err(ParseError::UnknownMethod(m)) => panic!("{what}: unknown method {m}"),
            Err(ParseError::BadRequest(BadRequest(msg))) => {
                assert!(!msg.is_empty(), "{what}: empty message");
                for w in words {
                    assert!(
                        msg.to_ascii_lowercase().contains(&w.to_ascii_lowercase()),
                        "{what}: {msg:?} should mention {w:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn unknown_methods_are_refused_without_reading_the_body() {
    for path in [
        "/NetworkDriver.Nope",
        "/IpamDriver.RequestPools",
        "/../../etc/passwd",
        "",
        "/",
        "/NetworkDriver.CreateNetwork/../DeleteNetwork",
        "/networkdriver.createnetwork",
        "/NetworkDriver.CreateNetwork ",
    ] {
        let e = PluginCall::parse(path, b"{\"NetworkID\":").unwrap_err();
        assert_eq!(e, ParseError::UnknownMethod(path.to_string()), "{path}");
        assert!(e.to_string().contains("unknown"), "{e}");
    }
}

#[test]
fn responses_use_dockers_shapes() {
    assert_eq!(serde_json::to_value(Response::EMPTY).unwrap(), json!({}));
    let r = Response::RequestAddress(RequestAddressResponse {
        address: "10.0.0.5/24".into(),
        data: Default::default(),
    });
    assert_eq!(
        serde_json::to_value(r).unwrap(),
        json!({"Address": "10.0.0.5/24", "Data": {}})
    );
}
