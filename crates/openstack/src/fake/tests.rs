//! The fake against the typed client: the rules callers rely on.

use serde_json::json;

use super::*;
use crate::neutron::{
    FixedIp, NetworkCreate, PortCreate, PortUpdate, SubnetCreate, SubnetPoolCreate,
};
use crate::{Query, TagResource};

async fn net_with_subnet(n: &Neutron, cidr: &str) -> (String, String) {
    let net = n
        .create_network(&NetworkCreate {
            name: Some("n".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let subnet = n
        .create_subnet(&SubnetCreate {
            network_id: net.id.clone(),
            ip_version: 4,
            cidr: Some(cidr.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    (net.id, subnet.id)
}

#[tokio::test]
async fn ports_get_free_addresses_and_conflicts_are_409() {
    let fake = FakeNeutron::new();
    let n = fake.client();
    let (net, subnet) = net_with_subnet(&n, "10.0.0.0/29").await;
    let port = |ip: &str| PortCreate {
        network_id: net.clone(),
        fixed_ips: Some(vec![FixedIp {
            subnet_id: subnet.clone(),
            ip_address: ip.into(),
        }]),
        ..Default::default()
    };
    let a = n.create_port(&port("")).await.unwrap();
    assert_eq!(
        a.fixed_ips[0].ip_address, "10.0.0.2",
        "the gateway .1 is skipped"
    );
    assert!(a.mac_address.starts_with("fa:16:3e:"));
    let e = n.create_port(&port("10.0.0.2")).await.unwrap_err();
    assert!(e.is_ip_already_allocated(), "{e}");
    for _ in 0..4 {
        n.create_port(&port("")).await.unwrap();
    }
    let e = n.create_port(&port("")).await.unwrap_err();
    assert_eq!(e.kind(), Some("IpAddressGenerationFailure"), "{e}");
    // Filters as Neutron reads them.
    let found = n
        .list_ports(&Query::new().fixed_ip_subnet(&subnet).fixed_ip("10.0.0.2"))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    // In use: the network and the subnet cannot go.
    assert!(n.delete_network(&net).await.unwrap_err().is_conflict());
    assert!(n.delete_subnet(&subnet).await.unwrap_err().is_conflict());
    assert_eq!(fake.count("ports"), 5);
}

#[tokio::test]
async fn tags_filter_and_bulk_rules() {
    let fake = FakeNeutron::new();
    let n = fake.client();
    let (net, _) = net_with_subnet(&n, "10.0.1.0/24").await;
    n.replace_tags(TagResource::Network, &net, &["a", "b/c"])
        .await
        .unwrap();
    n.add_tag(TagResource::Network, &net, "d").await.unwrap();
    let q = |t: &[&str]| Query::new().tags(t);
    assert_eq!(n.list_networks(&q(&["a", "b/c"])).await.unwrap().len(), 1);
    assert_eq!(n.list_networks(&q(&["a", "x"])).await.unwrap().len(), 0);
    assert_eq!(
        n.list_networks(&Query::new().tags_any(&["x", "d"]))
            .await
            .unwrap()
            .len(),
        1
    );
    let e = n
        .remove_tag(TagResource::Network, &net, "zz")
        .await
        .unwrap_err();
    assert!(e.is_not_found());
    // Tags in a single create are refused, as by Zed's Neutron.
    let e = n
        .update_network(&net, &json!({"tags": ["x"]}))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
}

#[tokio::test]
async fn pools_allocate_without_overlap_and_refuse_delete_in_use() {
    let fake = FakeNeutron::new();
    let n = fake.client();
    let pool = n
        .create_subnetpool(&SubnetPoolCreate {
            name: "p".into(),
            prefixes: vec!["10.10.0.0/16".into()],
            default_prefixlen: Some(24),
            ..Default::default()
        })
        .await
        .unwrap();
    let net = n.create_network(&NetworkCreate::default()).await.unwrap();
    let sub = |cidr: Option<&str>| SubnetCreate {
        network_id: net.id.clone(),
        ip_version: 4,
        cidr: cidr.map(str::to_string),
        subnetpool_id: Some(pool.id.clone()),
        ..Default::default()
    };
    let s1 = n.create_subnet(&sub(None)).await.unwrap();
    assert_eq!(s1.cidr, "10.10.0.0/24");
    let net2 = n.create_network(&NetworkCreate::default()).await.unwrap();
    let e = n
        .create_subnet(&SubnetCreate {
            network_id: net2.id.clone(),
            ..sub(Some("10.10.0.0/24"))
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some("SubnetAllocationError"), "{e}");
    let e = n.delete_subnetpool(&pool.id).await.unwrap_err();
    assert!(e.is_in_use(), "{e}");
    n.delete_network(&net.id).await.unwrap();
    n.delete_subnetpool(&pool.id).await.unwrap();
}

#[tokio::test]
async fn bound_ports_go_active_and_refuse_a_new_mac() {
    let fake = FakeNeutron::new();
    let n = fake.client();
    let (net, _) = net_with_subnet(&n, "10.0.2.0/24").await;
    let p = n
        .create_port(&PortCreate {
            network_id: net.clone(),
            host_id: Some("node1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((p.status.as_str(), p.vif_type.as_str()), ("ACTIVE", "ovs"));
    let e = n
        .update_port(
            &p.id,
            &PortUpdate {
                mac_address: Some("fa:16:3e:00:00:99".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some("PortBound"));
    fake.set_agent(false);
    let q = n
        .create_port(&PortCreate {
            network_id: net,
            host_id: Some("node2".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(q.status, "DOWN");
}

#[tokio::test]
async fn faults_refuse_or_lose_the_reply() {
    let fake = FakeNeutron::new();
    let n = fake.client();
    fake.inject(Fault::refuse(
        "POST",
        "/networks",
        503,
        "ServiceUnavailable",
    ));
    let e = n
        .create_network(&NetworkCreate::default())
        .await
        .unwrap_err();
    assert!(e.is_transient() && e.status() == Some(503), "{e}");
    assert_eq!(fake.count("networks"), 0, "a refusal changes nothing");
    fake.inject(Fault::lose_reply("POST", "/networks"));
    let e = n
        .create_network(&NetworkCreate::default())
        .await
        .unwrap_err();
    assert!(matches!(e, crate::Error::NoReply { .. }), "{e}");
    assert!(e.outcome_unknown(), "{e}");
    assert_eq!(fake.count("networks"), 1, "the write happened");
    n.create_network(&NetworkCreate::default()).await.unwrap();
    assert_eq!(fake.count("networks"), 2);
    assert_eq!(
        n.session().stats().snapshot().ops["neutron.create_network"].count,
        3
    );
}

#[tokio::test]
async fn requests_are_bounded_by_the_session_timeout() {
    use std::time::Duration;
    let fake = FakeNeutron::new();
    let n = fake.client_with_timeout(Duration::from_millis(50));
    // Stalled before acting: nothing is made.
    fake.inject(Fault::stall("POST", "/networks", Duration::from_secs(5)));
    let e = n
        .create_network(&NetworkCreate::default())
        .await
        .unwrap_err();
    assert!(matches!(e, crate::Error::Timeout { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("neutron did not answer POST /v2.0/networks within"),
        "{text}"
    );
    assert!(e.is_transient() && e.outcome_unknown());
    assert_eq!(fake.count("networks"), 0);
    // Done, but answered too late: the caller gave up on a write that happened.
    fake.inject(Fault::slow_reply(
        "POST",
        "/networks",
        Duration::from_secs(5),
    ));
    let e = n
        .create_network(&NetworkCreate::default())
        .await
        .unwrap_err();
    assert!(matches!(e, crate::Error::Timeout { .. }), "{e:?}");
    assert_eq!(fake.count("networks"), 1, "the write happened");
}
