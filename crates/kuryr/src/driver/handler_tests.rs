//! The handlers against the in-process fake Neutron: whole Docker flows
//! through [`crate::server::answer`], with Neutron's state checked after
//! them. Fast and without a lab; the lab tests (`tests/driver_api/`) run
//! the same flows against the real Neutron.

use std::sync::Arc;

use kuryr_openstack::fake::{FakeNeutron, Fault};
use serde_json::{Value, json};

use super::{Driver, DriverConfig};
use crate::binding::Binder;
use crate::server::answer;

pub(super) const NID: &str = "9c1f0d7a3b2e4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5";
pub(super) const EID: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

async fn driver(fake: &Arc<FakeNeutron>) -> Driver {
    let d = Driver::new(
        fake.client(),
        DriverConfig {
            host_id: "node1".into(),
            ..Default::default()
        },
        Binder::Noop,
    );
    d.start().await.expect("start against the fake");
    d
}

/// One call; (status, JSON reply).
pub(super) async fn call(d: &Driver, path: &str, body: Value) -> (u16, Value) {
    let reply = answer(d, path, body.to_string().as_bytes()).await;
    let json = serde_json::from_slice(&reply.body).expect("a JSON reply");
    (reply.status, json)
}

pub(super) async fn ok(d: &Driver, path: &str, body: Value) -> Value {
    let (status, json) = call(d, path, body.clone()).await;
    assert_eq!(status, 200, "{path} {body}: {json}");
    json
}

/// What a Docker flow leaves in the fake, by collection.
pub(super) fn left(fake: &FakeNeutron) -> Vec<(&'static str, usize)> {
    [
        "networks",
        "subnets",
        "subnetpools",
        "ports",
        "security-groups",
    ]
    .into_iter()
    .map(|c| (c, fake.count(c)))
    .filter(|(_, n)| *n > 0)
    .collect()
}

pub(super) async fn create_network(d: &Driver, cidr: &str) -> (String, String) {
    let pool = ok(
        d,
        "/IpamDriver.RequestPool",
        json!({"AddressSpace": "", "Pool": cidr, "SubPool": "", "Options": {}, "V6": false}),
    )
    .await;
    let pool_id = pool["PoolID"].as_str().unwrap().to_string();
    let gw = pool["Data"]["com.docker.network.gateway"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        d,
        "/NetworkDriver.CreateNetwork",
        json!({"NetworkID": NID, "Options": {"com.docker.network.generic": {}},
               "IPv4Data": [{"AddressSpace": "", "Pool": cidr, "Gateway": gw}], "IPv6Data": []}),
    )
    .await;
    (pool_id, gw)
}

#[tokio::test]
async fn the_seed_flow_leaves_nothing_behind() {
    let fake = FakeNeutron::new();
    let d = driver(&fake).await;
    let (pool_id, gw) = create_network(&d, "10.0.0.0/24").await;
    assert_eq!(gw, "10.0.0.1/24");
    assert_eq!(
        left(&fake),
        [("networks", 1), ("subnets", 1), ("subnetpools", 1)]
    );

    let addr = ok(
        &d,
        "/IpamDriver.RequestAddress",
        json!({"PoolID": pool_id, "Address": ""}),
    )
    .await;
    let address = addr["Address"].as_str().unwrap().to_string();
    assert_eq!(address, "10.0.0.2/24");
    let ep = json!({"NetworkID": NID, "EndpointID": EID});
    let created = ok(
        &d,
        "/NetworkDriver.CreateEndpoint",
        json!({"NetworkID": NID, "EndpointID": EID, "Interface": {"Address": address}}),
    )
    .await;
    let port = &fake.objects("ports")[0];
    assert_eq!(created["Interface"]["MacAddress"], port["mac_address"]);
    assert_eq!(port["device_id"], EID);
    assert_eq!(port["binding:host_id"], "node1");
    let join = ok(&d, "/NetworkDriver.Join", ep.clone()).await;
    assert_eq!(join["Gateway"], "10.0.0.1");

    ok(&d, "/NetworkDriver.DeleteEndpoint", ep).await;
    ok(
        &d,
        "/IpamDriver.ReleaseAddress",
        json!({"PoolID": pool_id, "Address": "10.0.0.2"}),
    )
    .await;
    ok(&d, "/IpamDriver.ReleasePool", json!({"PoolID": pool_id})).await;
    ok(
        &d,
        "/NetworkDriver.DeleteNetwork",
        json!({"NetworkID": NID}),
    )
    .await;
    assert_eq!(left(&fake), []);
}

#[tokio::test]
async fn a_neutron_refusal_midway_is_a_clear_error_and_rolls_back() {
    let fake = FakeNeutron::new();
    let d = driver(&fake).await;
    fake.inject(Fault::refuse("POST", "/subnets", 409, "Conflict"));
    let pool = ok(
        &d,
        "/IpamDriver.RequestPool",
        json!({"Pool": "10.0.3.0/24", "Options": {}, "V6": false}),
    )
    .await;
    let (status, reply) = call(
        &d,
        "/NetworkDriver.CreateNetwork",
        json!({"NetworkID": NID, "IPv4Data": [{"Pool": "10.0.3.0/24", "Gateway": "10.0.3.1/24"}]}),
    )
    .await;
    assert_eq!(status, 500, "{reply}");
    assert!(
        reply["Err"].as_str().unwrap().contains("10.0.3.0/24"),
        "{reply}"
    );
    assert_eq!(fake.count("networks"), 0, "the network was rolled back");
    ok(
        &d,
        "/IpamDriver.ReleasePool",
        json!({"PoolID": pool["PoolID"]}),
    )
    .await;
    assert_eq!(left(&fake), []);
}

#[tokio::test]
async fn a_network_named_by_the_user_must_exist_and_be_unique() {
    let fake = FakeNeutron::new();
    let d = driver(&fake).await;
    let create = |name: &str| {
        json!({"NetworkID": NID, "Options": {"com.docker.network.generic": {"neutron.net.name": name}},
               "IPv4Data": [{"Pool": "10.0.4.0/24", "Gateway": "10.0.4.1/24"}]})
    };
    let (status, reply) = call(&d, "/NetworkDriver.CreateNetwork", create("nope")).await;
    assert_eq!(status, 500);
    assert!(
        reply["Err"]
            .as_str()
            .unwrap()
            .contains("no Neutron network is named \"nope\""),
        "{reply}"
    );
    fake.seed("networks", json!({"name": "twice"}));
    fake.seed("networks", json!({"name": "twice"}));
    let (_, reply) = call(&d, "/NetworkDriver.CreateNetwork", create("twice")).await;
    let err = reply["Err"].as_str().unwrap();
    assert!(
        err.contains("2 Neutron networks are named \"twice\": use neutron.net.uuid"),
        "{err}"
    );
    // Nothing was adopted: no tags on either.
    assert!(
        fake.objects("networks")
            .iter()
            .all(|n| n["tags"] == json!([]))
    );
}

/// A fault that holds the first matching request for `ms` milliseconds.
fn stall(method: &str, path: &str, ms: u64) -> Fault {
    Fault {
        method: method.into(),
        path: path.into(),
        skip: 0,
        times: 1,
        kind: kuryr_openstack::fake::FaultKind::Stall(std::time::Duration::from_millis(ms)),
    }
}

/// RequestPool for one CIDR whose Neutron request hangs does not hold up
/// RequestPool for another CIDR (no daemon-wide pools lock across a
/// Neutron call), and the per-key lock entries go with their last user.
#[tokio::test]
async fn pools_of_different_cidrs_do_not_wait_for_each_other() {
    let fake = FakeNeutron::new();
    let d = driver(&fake).await;
    fake.inject(stall("GET", "/subnetpools", 3000));
    let request = |cidr: &'static str| {
        let d = &d;
        async move {
            let started = std::time::Instant::now();
            ok(
                d,
                "/IpamDriver.RequestPool",
                json!({"AddressSpace": "", "Pool": cidr, "SubPool": "", "Options": {}, "V6": false}),
            )
            .await;
            started.elapsed()
        }
    };
    let slow = request("10.1.0.0/24");
    let fast = async {
        // The stalled request goes first.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        request("10.2.0.0/24").await
    };
    let (slow, fast) = tokio::join!(slow, fast);
    assert!(slow >= std::time::Duration::from_millis(2900), "{slow:?}");
    assert!(
        fast < std::time::Duration::from_millis(1500),
        "RequestPool of another CIDR waited {fast:?}"
    );
    let locks = d.locks.lock().unwrap().len();
    assert_eq!(locks, 0, "lock entries left behind");
}

/// Two containers on one network: CreateEndpoint of one, stuck in
/// Neutron, does not hold up the other's.
#[tokio::test]
async fn endpoints_of_one_network_do_not_wait_for_each_other() {
    let fake = FakeNeutron::new();
    let d = driver(&fake).await;
    let (pool_id, _) = create_network(&d, "10.3.0.0/24").await;
    let mut addresses = Vec::new();
    for _ in 0..2 {
        let a = ok(
            &d,
            "/IpamDriver.RequestAddress",
            json!({"PoolID": pool_id, "Address": ""}),
        )
        .await;
        addresses.push(a["Address"].as_str().unwrap().to_string());
    }
    // The first endpoint's claim (PUT /ports/<id>) hangs.
    fake.inject(stall("PUT", "/ports", 3000));
    let create = |eid: String, address: String| {
        let d = &d;
        async move {
            let started = std::time::Instant::now();
            ok(
                d,
                "/NetworkDriver.CreateEndpoint",
                json!({"NetworkID": NID, "EndpointID": eid, "Interface": {"Address": address}}),
            )
            .await;
            started.elapsed()
        }
    };
    let other = "1".repeat(64);
    let slow = create(EID.to_string(), addresses[0].clone());
    let fast = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        create(other.clone(), addresses[1].clone()).await
    };
    let (slow, fast) = tokio::join!(slow, fast);
    assert!(slow >= std::time::Duration::from_millis(2900), "{slow:?}");
    assert!(
        fast < std::time::Duration::from_millis(1500),
        "CreateEndpoint of another container waited {fast:?}"
    );
    assert_eq!(d.locks.lock().unwrap().len(), 0, "lock entries left behind");
}

/// Where Neutron takes tags in every create request (`tag-creation`,
/// newer than the lab's Zed), `docker network create` takes 4 requests:
/// pool lookup and create, network and subnet, each tagged at creation.
#[tokio::test]
async fn network_create_takes_four_requests_where_neutron_tags_at_creation() {
    let fake = FakeNeutron::new();
    fake.set_tag_creation(true);
    let d = driver(&fake).await;
    let before = d.calls();
    let (pool_id, _) = create_network(&d, "10.4.0.0/24").await;
    let delta = d.calls().since(&before);
    assert_eq!(delta.neutron_calls(), 4, "{}", delta.summary());
    let net = &fake.objects("networks")[0];
    let tags: Vec<&str> = net["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let want = crate::names::id_tags(&crate::protocol::DockerId::parse(NID).unwrap());
    assert_eq!(tags, want);
    let subnet = &fake.objects("subnets")[0];
    assert_eq!(subnet["tags"], json!([pool_id]));
    // And it goes in 2.
    let before = d.calls();
    ok(&d, "/IpamDriver.ReleasePool", json!({"PoolID": pool_id})).await;
    ok(
        &d,
        "/NetworkDriver.DeleteNetwork",
        json!({"NetworkID": NID}),
    )
    .await;
    let delta = d.calls().since(&before);
    assert_eq!(delta.neutron_calls(), 2, "{}", delta.summary());
    assert_eq!(left(&fake), []);
}

/// Containers started at once share the polls of their wait for ACTIVE:
/// one `GET /ports?id=..` answers for all of them, instead of one poll
/// per port and round.
#[tokio::test]
async fn waits_for_active_share_their_polls() {
    const N: usize = 8;
    let fake = FakeNeutron::new();
    let d = Driver::new(
        fake.client(),
        DriverConfig {
            host_id: "node1".into(),
            vif_plugging_is_fatal: true,
            ..Default::default()
        },
        Binder::Noop,
    );
    d.start().await.expect("start against the fake");
    // Bound ports stay DOWN until the "agent" wires them, after a while.
    fake.set_agent(false);
    let (pool_id, _) = create_network(&d, "10.5.0.0/24").await;
    let mut addresses = Vec::new();
    for _ in 0..N {
        let a = ok(
            &d,
            "/IpamDriver.RequestAddress",
            json!({"PoolID": pool_id, "Address": ""}),
        )
        .await;
        addresses.push(a["Address"].as_str().unwrap().to_string());
    }
    let before = d.calls();
    let starts = addresses.iter().enumerate().map(|(i, address)| {
        let d = &d;
        async move {
            let eid = format!("{:064x}", i + 1);
            let created = ok(
                d,
                "/NetworkDriver.CreateEndpoint",
                json!({"NetworkID": NID, "EndpointID": eid, "Interface": {"Address": address}}),
            )
            .await;
            // The wait is Join's (dockerd joins in parallel).
            ok(
                d,
                "/NetworkDriver.Join",
                json!({"NetworkID": NID, "EndpointID": eid,
                       "SandboxKey": "/var/run/docker/netns/0123456789ab"}),
            )
            .await;
            created
        }
    });
    let wire = async {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        fake.wire_bound_ports();
    };
    let (_, replies) = tokio::join!(wire, futures_util::future::join_all(starts));
    assert_eq!(replies.len(), N);
    let delta = d.calls().since(&before);
    // Polls at 0.25, 0.6 and 1.2 s: 3 rounds for all 8 (24 unshared).
    assert!(
        delta.neutron_polls() <= 4,
        "{N} waits took {} polls: {}",
        delta.neutron_polls(),
        delta.summary()
    );
    assert!(delta.neutron_polls() >= 1, "{}", delta.summary());
    let ports = fake.objects("ports");
    assert!(ports.iter().all(|p| p["status"] == "ACTIVE"), "{ports:#?}");
}
