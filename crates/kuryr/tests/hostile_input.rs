//! Hostile input, generated: request decoding and the handlers, driven
//! through `kuryr::server::answer` against the in-process fake Neutron,
//! with requests built from Docker's shapes and then mangled (wrong
//! types, missing and extra fields, IDs of real and unknown objects,
//! random bytes). For every request: no panic, an answer within 5 s, a
//! JSON reply, and a request refused as malformed (400, 404, 405) changes
//! nothing in Neutron.
//!
//! No lab needed. The number of requests is `PROPTEST_CASES` (CI: a few
//! hundred per test; `soak/run` runs a fixed budget of many thousands and
//! prints the executions).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kuryr::binding::Binder;
use kuryr::driver::{Driver, DriverConfig};
use kuryr::protocol::{Method, PluginCall};
use kuryr_openstack::fake::FakeNeutron;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

const NID: &str = "9c1f0d7a3b2e4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5";
const EID: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
const COLLECTIONS: &[&str] = &[
    "networks",
    "subnets",
    "subnetpools",
    "ports",
    "security-groups",
    "trunks",
];

/// Requests per test: `PROPTEST_CASES`, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the fake holds, to compare before and after a request.
fn snapshot(fake: &FakeNeutron) -> Vec<Value> {
    COLLECTIONS
        .iter()
        .map(|c| Value::Array(fake.objects(c)))
        .collect()
}

/// A JSON value of any shape, up to a small depth.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        interesting_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Strings a handler may choke on: IDs of objects that exist, addresses,
/// CIDRs, options, and arbitrary text.
fn interesting_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(NID.to_string()),
        Just(EID.to_string()),
        Just(NID[..25].to_string()),
        Just("10.0.9.0/24".to_string()),
        Just("10.0.9.7/24".to_string()),
        Just("10.0.9.7".to_string()),
        Just("fd00::/64".to_string()),
        Just("0.0.0.0/0".to_string()),
        Just("aa:bb:cc:dd:ee:ff".to_string()),
        Just("com.docker.network.gateway".to_string()),
        Just("neutron.net.uuid".to_string()),
        Just(String::new()),
        "[0-9a-f]{64}",
        "[0-9a-f./:]{0,40}",
        ".{0,40}",
    ]
}

/// Field names of Docker's requests, and some others.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "NetworkID",
            "EndpointID",
            "PoolID",
            "Pool",
            "SubPool",
            "Address",
            "AddressIPv6",
            "MacAddress",
            "Options",
            "V6",
            "AddressSpace",
            "Gateway",
            "AuxAddresses",
            "IPv4Data",
            "IPv6Data",
            "Interface",
            "SandboxKey",
            "RequestAddressType",
            "com.docker.network.generic",
            "com.docker.network.endpoint.exposedports",
            "neutron.net.name",
            "neutron.pool.uuid",
            "neutron.subnet.uuid",
        ])
        .prop_map(str::to_string),
        "[A-Za-z.]{1,12}",
    ]
}

/// A Docker-shaped body for `method`, then some fields replaced,
/// removed or added.
fn request_for(method: Method) -> impl Strategy<Value = (String, Vec<u8>)> {
    let template = template(method);
    (
        prop::collection::btree_map(field_name(), any_json(), 0..3),
        prop::collection::vec(field_name(), 0..2),
        any::<bool>(),
    )
        .prop_map(move |(set, remove, trailing_newline)| {
            let mut body = template.clone();
            for k in remove {
                body.remove(&k);
            }
            body.extend(set);
            let mut bytes = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
            if trailing_newline {
                bytes.push(b'\n');
            }
            (method.path().to_string(), bytes)
        })
}

/// dockerd's body for each method, with IDs of objects that exist.
fn template(method: Method) -> Map<String, Value> {
    let v = match method {
        Method::CreateNetwork | Method::AllocateNetwork => json!({
            "NetworkID": NID, "Options": {"com.docker.network.generic": {}},
            "IPv4Data": [{"AddressSpace": "", "Pool": "10.0.9.0/24", "Gateway": "10.0.9.1/24"}],
            "IPv6Data": []}),
        Method::CreateEndpoint => json!({
            "NetworkID": NID, "EndpointID": EID,
            "Interface": {"Address": "10.0.9.7/24", "AddressIPv6": "", "MacAddress": ""},
            "Options": {}}),
        Method::Join => {
            json!({"NetworkID": NID, "EndpointID": EID, "SandboxKey": "/x", "Options": {}})
        }
        Method::ProgramExternalConnectivity => json!({
            "NetworkID": NID, "EndpointID": EID,
            "Options": {"com.docker.network.endpoint.exposedports": [{"Proto": 6, "Port": 80}]}}),
        Method::RequestPool => json!({"AddressSpace": "", "Pool": "10.0.9.0/24", "SubPool": "",
            "Options": {}, "V6": false}),
        Method::RequestAddress => json!({"PoolID": "", "Address": "", "Options": null}),
        Method::ReleaseAddress => json!({"PoolID": "", "Address": "10.0.9.7"}),
        Method::ReleasePool => json!({"PoolID": ""}),
        _ => json!({"NetworkID": NID, "EndpointID": EID}),
    };
    v.as_object().cloned().unwrap_or_default()
}

/// Any request: a mangled Docker-shaped one most of the time, else a
/// random path or random bytes.
fn any_request() -> impl Strategy<Value = (String, Vec<u8>)> {
    prop_oneof![
        8 => prop::sample::select(Method::ALL.to_vec()).prop_flat_map(request_for),
        1 => (
            prop_oneof![
                prop::sample::select(Method::ALL.to_vec()).prop_map(|m| m.path().to_string()),
                "/[A-Za-z./]{0,30}",
            ],
            prop::collection::vec(any::<u8>(), 0..256),
        ),
    ]
}

/// The driver on a fake holding a network (with its pool) and an
/// endpoint, so generated IDs find real objects.
fn driver(rt: &tokio::runtime::Runtime) -> (Arc<FakeNeutron>, Driver) {
    let fake = FakeNeutron::new();
    let d = Driver::new(
        fake.client_with_timeout(Duration::from_secs(2)),
        DriverConfig {
            host_id: "fuzz-node".into(),
            ..Default::default()
        },
        Binder::Noop,
    );
    rt.block_on(async {
        d.start().await.expect("start against the fake");
        let pool = call(&d, "/IpamDriver.RequestPool", template(Method::RequestPool)).await;
        let pool_id = pool["PoolID"].as_str().unwrap_or_default().to_string();
        call(
            &d,
            "/NetworkDriver.CreateNetwork",
            template(Method::CreateNetwork),
        )
        .await;
        let mut addr = template(Method::RequestAddress);
        addr.insert("PoolID".into(), json!(pool_id));
        addr.insert("Address".into(), json!("10.0.9.7"));
        call(&d, "/IpamDriver.RequestAddress", addr).await;
        call(
            &d,
            "/NetworkDriver.CreateEndpoint",
            template(Method::CreateEndpoint),
        )
        .await;
    });
    (fake, d)
}

async fn call(d: &Driver, path: &str, body: Map<String, Value>) -> Value {
    let reply = kuryr::server::answer(d, path, &serde_json::to_vec(&body).unwrap()).await;
    serde_json::from_slice(&reply.body).unwrap_or(Value::Null)
}

/// One request against the driver: the property.
fn check(
    rt: &tokio::runtime::Runtime,
    fake: &FakeNeutron,
    d: &Driver,
    path: &str,
    body: &[u8],
) -> Result<(), TestCaseError> {
    let before = snapshot(fake);
    let reply = rt
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(5), kuryr::server::answer(d, path, body)).await
        })
        .map_err(|_| TestCaseError::fail(format!("{path}: no answer within 5 s")))?;
    STATUSES
        .lock()
        .unwrap()
        .entry(reply.status)
        .and_modify(|n| *n += 1)
        .or_insert(1u64);
    let json: Value = serde_json::from_slice(&reply.body).map_err(|e| {
        TestCaseError::fail(format!(
            "{path}: the reply is not JSON ({e}): {:?}",
            reply.body
        ))
    })?;
    if matches!(reply.status, 400 | 404 | 405) {
        prop_assert!(
            json["Err"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: a refusal without an Err: {json}"
        );
        prop_assert!(
            snapshot(fake) == before,
            "{path} was refused ({}) but changed Neutron: {}",
            reply.status,
            String::from_utf8_lossy(body)
        );
    }
    Ok(())
}

/// Replies by status, for the report.
static STATUSES: std::sync::Mutex<std::collections::BTreeMap<u16, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Executions over every test of this binary, for the soak's report.
static EXECUTIONS: AtomicU64 = AtomicU64::new(0);

fn report(what: &str, n: u64) {
    let total = EXECUTIONS.fetch_add(n, Ordering::Relaxed) + n;
    println!("hostile input: {what}: {n} executions, no panic, no hang ({total} so far)");
}

#[test]
fn the_parser_takes_any_bytes() {
    let mut runner = TestRunner::new(Config::with_cases(cases(2000)));
    let n = AtomicU64::new(0);
    runner
        .run(
            &(
                prop_oneof![
                    prop::sample::select(Method::ALL.to_vec()).prop_map(|m| m.path().to_string()),
                    ".{0,40}",
                ],
                prop::collection::vec(any::<u8>(), 0..512),
            ),
            |(path, body)| {
                n.fetch_add(1, Ordering::Relaxed);
                let _ = PluginCall::parse(&path, &body);
                Ok(())
            },
        )
        .unwrap();
    report("decoding", n.into_inner());
}

#[test]
fn the_handlers_take_any_request_and_refusals_change_nothing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (fake, d) = driver(&rt);
    let mut runner = TestRunner::new(Config::with_cases(cases(300)));
    let n = AtomicU64::new(0);
    runner
        .run(&any_request(), |(path, body)| {
            n.fetch_add(1, Ordering::Relaxed);
            check(&rt, &fake, &d, &path, &body)
        })
        .unwrap();
    report("handlers", n.into_inner());
    println!(
        "hostile input: replies by status: {:?}",
        STATUSES.lock().unwrap()
    );
}
