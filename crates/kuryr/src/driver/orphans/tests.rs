//! Orphan collection's decisions against the fake Neutron (no host side:
//! the no-op binder cannot tell whether an endpoint's host link exists,
//! so endpoints are never taken for dead here; the lab tests cover that).

use std::sync::Arc;
use std::time::Duration;

use kuryr_openstack::fake::FakeNeutron;
use serde_json::json;

use super::super::handler_tests::{EID, NID, call, create_network, ok};
use super::super::{Driver, DriverConfig};
use crate::binding::Binder;
use crate::config::CapabilityScope;
use crate::names;

async fn driver(fake: &Arc<FakeNeutron>, scope: CapabilityScope) -> Driver {
    let d = Driver::new(
        fake.client(),
        DriverConfig {
            host_id: "node1".into(),
            scope,
            // The fake's objects carry no creation time: age unknown, which
            // only a zero grace takes as old.
            orphan_grace: Duration::ZERO,
            ..Default::default()
        },
        Binder::Noop,
    );
    d.start().await.expect("start against the fake");
    d
}

#[tokio::test]
async fn a_pending_port_is_collected_in_local_scope_only() {
    for (scope, collected) in [(CapabilityScope::Local, 1), (CapabilityScope::Global, 0)] {
        let fake = FakeNeutron::new();
        let d = driver(&fake, scope).await;
        let (pool_id, _) = create_network(&d, "10.0.20.0/24").await;
        ok(
            &d,
            "/IpamDriver.RequestAddress",
            json!({"PoolID": pool_id, "Address": ""}),
        )
        .await;
        let c = d.collect_orphans().await.unwrap();
        assert_eq!(c.ports.len(), collected, "{scope}: {c:?}");
        assert_eq!(fake.count("ports"), 1 - collected, "{scope}");
    }
}

#[tokio::test]
async fn a_live_endpoint_is_kept() {
    let fake = FakeNeutron::new();
    let d = driver(&fake, CapabilityScope::Local).await;
    let (pool_id, _) = create_network(&d, "10.0.21.0/24").await;
    let addr = ok(
        &d,
        "/IpamDriver.RequestAddress",
        json!({"PoolID": pool_id, "Address": ""}),
    )
    .await;
    ok(
        &d,
        "/NetworkDriver.CreateEndpoint",
        json!({"NetworkID": NID, "EndpointID": EID, "Interface": {"Address": addr["Address"]}}),
    )
    .await;
    let c = d.collect_orphans().await.unwrap();
    assert!(c.is_empty(), "{c:?}");
    assert_eq!(fake.count("ports"), 1);
}

#[tokio::test]
async fn a_release_address_lost_does_not_keep_the_network() {
    let fake = FakeNeutron::new();
    let d = driver(&fake, CapabilityScope::Local).await;
    let (pool_id, gw) = create_network(&d, "10.0.22.0/24").await;
    ok(
        &d,
        "/IpamDriver.RequestAddress",
        json!({"PoolID": pool_id, "Address": ""}),
    )
    .await;
    // `docker network rm` with the pending port still there: Neutron
    // refuses the network for it; the port goes first.
    let gw = gw.split('/').next().unwrap();
    ok(
        &d,
        "/IpamDriver.ReleaseAddress",
        json!({"PoolID": pool_id, "Address": gw}),
    )
    .await;
    ok(&d, "/IpamDriver.ReleasePool", json!({"PoolID": pool_id})).await;
    let (status, reply) = call(
        &d,
        "/NetworkDriver.DeleteNetwork",
        json!({"NetworkID": NID}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    for c in ["networks", "subnets", "subnetpools", "ports"] {
        assert_eq!(fake.count(c), 0, "{c}: {:#?}", fake.objects(c));
    }
}

#[tokio::test]
async fn half_made_networks_and_unused_pools_made_here_are_collected() {
    let fake = FakeNeutron::new();
    let d = driver(&fake, CapabilityScope::Local).await;
    let id = crate::protocol::DockerId::parse(NID).unwrap();
    // A crash between create and tag: made here, untagged.
    fake.seed(
        "networks",
        json!({"name": names::network_name(&id), "description": names::made_by(&id, "node1")}),
    );
    // Another host's, and a user's: not ours.
    fake.seed(
        "networks",
        json!({"name": "x", "description": names::made_by(&id, "node2")}),
    );
    fake.seed("networks", json!({"name": "user-net"}));
    // A pool made here that no subnet uses, and one another host made.
    let mine = names::made_in(&names::nonce(), "node1");
    fake.seed(
        "subnetpools",
        json!({"name": "kuryrPool-10.0.23.0/24", "prefixes": ["10.0.23.0/24"], "description": mine}),
    );
    fake.seed(
        "subnetpools",
        json!({"name": "kuryrPool-10.0.24.0/24", "prefixes": ["10.0.24.0/24"],
               "description": names::made_in("x", "node2")}),
    );
    let c = d.collect_orphans().await.unwrap();
    assert_eq!((c.networks.len(), c.subnet_pools.len()), (1, 1), "{c:?}");
    assert_eq!(fake.count("networks"), 2);
    assert_eq!(fake.count("subnetpools"), 1);
    // A pool in use (its subnet exists) is kept.
    let (_, _) = create_network(&d, "10.0.25.0/24").await;
    let c = d.collect_orphans().await.unwrap();
    assert!(c.subnet_pools.is_empty(), "{c:?}");
}
