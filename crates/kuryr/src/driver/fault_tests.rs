//! Bounded calls against the in-process fake Neutron: a write whose
//! answer is lost or late is found and undone, a call past its bound is
//! answered with an error naming the request in flight and rolls back, a
//! call whose client hangs up runs to its end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kuryr_openstack::fake::{FakeNeutron, Fault};
use serde_json::{Value, json};

use super::handler_tests::{EID, NID, call, create_network, left, ok};
use super::{Driver, DriverConfig};
use crate::binding::Binder;
use crate::server::answer_detached;

/// A started driver whose Neutron requests time out after `timeout` and
/// whose calls are answered within `bound`.
async fn driver(fake: &Arc<FakeNeutron>, timeout: Duration, bound: Duration) -> Arc<Driver> {
    driver_with(
        fake,
        timeout,
        DriverConfig {
            call_timeout: bound,
            ..Default::default()
        },
    )
    .await
}

/// A started driver on host `node1` with `config`, Neutron requests timing
/// out after `timeout`.
async fn driver_with(
    fake: &Arc<FakeNeutron>,
    timeout: Duration,
    config: DriverConfig,
) -> Arc<Driver> {
    let d = Driver::new(
        fake.client_with_timeout(timeout),
        DriverConfig {
            host_id: "node1".into(),
            ..config
        },
        Binder::Noop,
    );
    d.start().await.expect("start against the fake");
    Arc::new(d)
}

/// One call as the listeners answer it; (status, JSON reply).
async fn detached(d: &Arc<Driver>, path: &str, body: Value) -> (u16, Value) {
    let reply = answer_detached(d.clone(), path, body.to_string().as_bytes()).await;
    let json = serde_json::from_slice(&reply.body).expect("a JSON reply");
    (reply.status, json)
}

/// Wait (bounded) until the fake holds `n` objects of `collection`.
async fn until_count(fake: &FakeNeutron, collection: &str, n: usize) {
    let started = Instant::now();
    while fake.count(collection) != n {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{collection}: {} objects, expected {n}: {:#?}",
            fake.count(collection),
            fake.objects(collection)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_port_create_whose_reply_is_lost_is_found_and_deleted() {
    let fake = FakeNeutron::new();
    let d = driver(&fake, Duration::from_secs(5), Duration::from_secs(20)).await;
    let (pool_id, _) = create_network(&d, "10.0.5.0/24").await;
    fake.inject(Fault::lose_reply("POST", "/ports"));
    let (status, reply) = call(
        &d,
        "/IpamDriver.RequestAddress",
        json!({"PoolID": pool_id, "Address": ""}),
    )
    .await;
    assert_eq!(status, 500, "{reply}");
    assert!(
        reply["Err"].as_str().unwrap().contains("no reply"),
        "{reply}"
    );
    assert_eq!(
        fake.count("ports"),
        0,
        "the port made without an answer is gone"
    );
    // The retry succeeds.
    ok(
        &d,
        "/IpamDriver.RequestAddress",
        json!({"PoolID": pool_id, "Address": ""}),
    )
    .await;
    assert_eq!(fake.count("ports"), 1);
}

/// A driver keeping `size` ports ready per subnet (its worker not
/// running: the test fills the pools when it wants to).
async fn pooled(fake: &Arc<FakeNeutron>, size: usize) -> Arc<Driver> {
    let config = DriverConfig {
        ports_pool_size: size,
        ..Default::default()
    };
    driver_with(fake, Duration::from_secs(5), config).await
}

#[tokio::test]
async fn a_ready_port_is_handed_out_without_a_port_create() {
    let fake = FakeNeutron::new();
    let d = pooled(&fake, 2).await;
    let (pool_id, _) = create_network(&d, "10.0.7.0/24").await;
    let request = json!({"PoolID": pool_id, "Address": ""});
    // The first address of a subnet is made on the spot; the subnet then
    // has ports made ahead.
    ok(&d, "/IpamDriver.RequestAddress", request.clone()).await;
    d.fill_ready_pools().await;
    assert_eq!((fake.count("ports"), d.ready_port_count()), (3, 2));
    let made_before = fake.count("ports");
    let reply = ok(&d, "/IpamDriver.RequestAddress", request).await;
    assert_eq!(fake.count("ports"), made_before, "no port made");
    assert_eq!(d.ready_port_count(), 1);
    let address = reply["Address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let ready_ips: Vec<String> = fake
        .objects("ports")
        .iter()
        .filter(|p| p["name"] == crate::names::READY_PORT_NAME)
        .map(|p| {
            p["fixed_ips"][0]["ip_address"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        ready_ips.iter().any(|ip| ip == address),
        "{address} of {ready_ips:?}"
    );
}

#[tokio::test]
async fn a_request_address_failing_after_taking_a_ready_port_deletes_it() {
    let fake = FakeNeutron::new();
    let faults = Arc::new(super::Faults::default());
    let config = DriverConfig {
        ports_pool_size: 1,
        faults: Some(faults.clone()),
        ..Default::default()
    };
    let d = driver_with(&fake, Duration::from_secs(5), config).await;
    let (pool_id, _) = create_network(&d, "10.0.9.0/24").await;
    let request = json!({"PoolID": pool_id, "Address": ""});
    ok(&d, "/IpamDriver.RequestAddress", request.clone()).await;
    d.fill_ready_pools().await;
    assert_eq!((fake.count("ports"), d.ready_port_count()), (2, 1));
    faults.arm("RequestAddress.port_made", super::FaultAction::Error);
    let (status, reply) = call(&d, "/IpamDriver.RequestAddress", request).await;
    assert_eq!(status, 500, "{reply}");
    assert_eq!(d.ready_port_count(), 0, "not back in the pool");
    assert_eq!(fake.count("ports"), 1, "the ready port taken is deleted");
}

#[tokio::test]
async fn ready_ports_made_without_an_answer_are_found_and_deleted() {
    let fake = FakeNeutron::new();
    let d = driver_with(
        &fake,
        Duration::from_millis(500),
        DriverConfig {
            ports_pool_size: 3,
            ..Default::default()
        },
    )
    .await;
    let (pool_id, _) = create_network(&d, "10.0.8.0/24").await;
    ok(
        &d,
        "/IpamDriver.RequestAddress",
        json!({"PoolID": pool_id, "Address": ""}),
    )
    .await;
    let before = fake.count("ports");
    // One bulk request for the 3 ports; Neutron makes them, the answer
    // never comes.
    fake.inject(Fault::lose_reply("POST", "/ports"));
    d.fill_ready_pools().await;
    assert_eq!(d.ready_port_count(), 0);
    assert_eq!(
        fake.count("ports"),
        before,
        "the ports made without an answer are gone"
    );
}

#[tokio::test]
async fn every_create_answered_too_late_is_undone() {
    // Each create of a `docker network create` and `docker run`, done by
    // Neutron but answered after the request timeout.
    for (method, path) in [
        ("POST", "/subnetpools"),
        ("POST", "/networks"),
        ("POST", "/subnets"),
        ("POST", "/ports"),
    ] {
        let fake = FakeNeutron::new();
        let d = driver(&fake, Duration::from_millis(100), Duration::from_secs(20)).await;
        fake.inject(Fault::slow_reply(method, path, Duration::from_secs(1)));
        let pool = call(
            &d,
            "/IpamDriver.RequestPool",
            json!({"Pool": "10.0.6.0/24", "Options": {}, "V6": false}),
        )
        .await;
        let Some(pool_id) = pool.1["PoolID"].as_str().map(str::to_string) else {
            assert_eq!(path, "/subnetpools", "{}", pool.1);
            assert!(
                pool.1["Err"]
                    .as_str()
                    .unwrap()
                    .contains("did not answer POST /v2.0/subnetpools"),
                "{}",
                pool.1
            );
            assert_eq!(left(&fake), [], "{path}");
            continue;
        };
        let (status, reply) = call(
            &d,
            "/NetworkDriver.CreateNetwork",
            json!({"NetworkID": NID, "IPv4Data": [{"Pool": "10.0.6.0/24", "Gateway": "10.0.6.1/24"}]}),
        )
        .await;
        if status != 200 {
            let err = reply["Err"].as_str().unwrap();
            assert!(
                err.contains(&format!("did not answer POST /v2.0{path}")),
                "{path}: {err}"
            );
            ok(&d, "/IpamDriver.ReleasePool", json!({"PoolID": pool_id})).await;
            assert_eq!(left(&fake), [], "{path}");
            continue;
        }
        let (status, reply) = call(
            &d,
            "/IpamDriver.RequestAddress",
            json!({"PoolID": pool_id, "Address": ""}),
        )
        .await;
        assert_eq!((status, path), (500, "/ports"), "{reply}");
        assert_eq!(fake.count("ports"), 0, "the late port is deleted");
    }
}

#[tokio::test]
async fn a_call_past_its_bound_is_answered_naming_the_request_and_rolls_back() {
    let fake = FakeNeutron::new();
    let bound = Duration::from_millis(300);
    let d = driver(&fake, Duration::from_secs(15), bound).await;
    let pool = ok(
        &d,
        "/IpamDriver.RequestPool",
        json!({"Pool": "10.0.7.0/24", "Options": {}, "V6": false}),
    )
    .await;
    // Neutron makes the network at once and answers 2 s later.
    fake.inject(Fault::slow_reply(
        "POST",
        "/networks",
        Duration::from_secs(2),
    ));
    let started = Instant::now();
    let (status, reply) = detached(
        &d,
        "/NetworkDriver.CreateNetwork",
        json!({"NetworkID": NID, "IPv4Data": [{"Pool": "10.0.7.0/24", "Gateway": "10.0.7.1/24"}]}),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(status, 500, "{reply}");
    assert!(
        took < bound + Duration::from_millis(500),
        "answered in {took:?}"
    );
    let err = reply["Err"].as_str().unwrap();
    assert!(
        err.contains("CreateNetwork did not finish within")
            && err.contains("neutron POST /v2.0/networks (no answer for"),
        "{err}"
    );
    // The abandoned call finds the network its lost create made.
    until_count(&fake, "networks", 0).await;
    ok(
        &d,
        "/IpamDriver.ReleasePool",
        json!({"PoolID": pool["PoolID"]}),
    )
    .await;
    assert_eq!(left(&fake), []);
    // Neutron answers again: the retry succeeds.
    let (pool_id, _) = create_network(&d, "10.0.7.0/24").await;
    assert!(!pool_id.is_empty());
}

#[tokio::test]
async fn a_call_whose_client_hangs_up_runs_to_its_end() {
    let fake = FakeNeutron::new();
    let d = driver(&fake, Duration::from_secs(15), Duration::from_secs(20)).await;
    let (pool_id, _) = create_network(&d, "10.0.8.0/24").await;
    let address = ok(
        &d,
        "/IpamDriver.RequestAddress",
        json!({"PoolID": pool_id, "Address": ""}),
    )
    .await["Address"]
        .as_str()
        .unwrap()
        .to_string();
    // The tag request answers late; the client gives up before.
    fake.inject(Fault::stall("PUT", "/ports", Duration::from_millis(300)));
    let create = json!({"NetworkID": NID, "EndpointID": EID, "Interface": {"Address": address}});
    let dropped = tokio::time::timeout(
        Duration::from_millis(50),
        detached(&d, "/NetworkDriver.CreateEndpoint", create),
    )
    .await;
    assert!(dropped.is_err(), "the client hung up before the answer");
    // The handler went on: the endpoint exists and Docker's next call
    // (Join) finds it, once the handler is done (its tags may be in
    // Neutron before its claim is: Join waits for it).
    let started = Instant::now();
    loop {
        let (status, reply) = call(
            &d,
            "/NetworkDriver.Join",
            json!({"NetworkID": NID, "EndpointID": EID, "SandboxKey": "/x"}),
        )
        .await;
        if status == 200 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{reply}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let port = &fake.objects("ports")[0];
    assert_eq!(port["device_id"], EID);
}

/// With `vif_plugging_is_fatal`, Join waits for the agent to wire the port
/// (the wait moved there from CreateEndpoint): its bound is the call bound
/// plus `vif_plugging_timeout`, so an agent slower than the call bound but
/// within the plugging timeout starts the container.
#[tokio::test]
async fn join_waits_for_a_slow_agent_within_the_plugging_timeout() {
    let fake = FakeNeutron::new();
    fake.set_agent(false);
    let d = driver_with(
        &fake,
        Duration::from_secs(5),
        DriverConfig {
            call_timeout: Duration::from_millis(300),
            vif_plugging_is_fatal: true,
            vif_plugging_timeout: Duration::from_secs(10),
            ..Default::default()
        },
    )
    .await;
    let (pool_id, _) = create_network(&d, "10.0.9.0/24").await;
    let address = ok(
        &d,
        "/IpamDriver.RequestAddress",
        json!({"PoolID": pool_id, "Address": ""}),
    )
    .await["Address"]
        .as_str()
        .unwrap()
        .to_string();
    let create = json!({"NetworkID": NID, "EndpointID": EID, "Interface": {"Address": address}});
    let (status, reply) = detached(&d, "/NetworkDriver.CreateEndpoint", create).await;
    assert_eq!(status, 200, "{reply}");
    let join = json!({"NetworkID": NID, "EndpointID": EID, "SandboxKey": "/x"});
    let joining = tokio::spawn({
        let d = d.clone();
        async move { detached(&d, "/NetworkDriver.Join", join).await }
    });
    // The agent wires the port after three call bounds.
    tokio::time::sleep(Duration::from_millis(900)).await;
    fake.wire_bound_ports();
    let (status, reply) = joining.await.unwrap();
    assert_eq!(status, 200, "Join waited for the agent: {reply}");
    assert_eq!(fake.objects("ports")[0]["status"], "ACTIVE");
}
