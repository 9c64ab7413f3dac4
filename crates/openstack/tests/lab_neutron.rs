//! Neutron CRUD, tags, filters and error mapping against the lab's real
//! Neutron server.

use kuryr_openstack::neutron::*;
use kuryr_openstack::{Neutron, Query, TagResource};
use kuryr_test_support::*;
use serde_json::json;

async fn make_net(n: &Neutron, name: &str) -> Network {
    n.create_network(&NetworkCreate {
        name: Some(name.to_string()),
        admin_state_up: Some(true),
        ..Default::default()
    })
    .await
    .expect("create network")
}

async fn make_subnet(n: &Neutron, net: &Network, cidr: &str) -> Subnet {
    n.create_subnet(&SubnetCreate {
        network_id: net.id.clone(),
        ip_version: 4,
        name: Some(format!("{}-subnet", net.name)),
        cidr: Some(cidr.to_string()),
        enable_dhcp: Some(false),
        ..Default::default()
    })
    .await
    .expect("create subnet")
}

#[tokio::test]
async fn extensions_include_what_kuryr_needs() {
    let n = neutron("kuryr");
    let aliases: Vec<String> = n
        .list_extensions()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.alias)
        .collect();
    for needed in [
        "standard-attr-tag",
        "subnet_allocation",
        "trunk",
        "allowed-address-pairs",
        "binding",
        "security-group",
    ] {
        assert!(
            aliases.iter().any(|a| a == needed),
            "missing {needed} in {aliases:?}"
        );
    }
}

#[tokio::test]
async fn network_crud_and_tag_filters() {
    let n = neutron("kuryr");
    let name = unique("kt-net");
    let net = make_net(&n, &name).await;
    assert_eq!(net.name, name);
    assert!(net.mtu.is_some());

    let lh = format!("kuryr.net.uuid.lh:{}", unique("lh"));
    let uh = format!("kuryr.net.uuid.uh:{}", unique("uh"));
    n.add_tag(TagResource::Network, &net.id, &lh).await.unwrap();
    n.add_tag(TagResource::Network, &net.id, &lh)
        .await
        .expect("adding a tag twice is fine");
    let tags = n
        .replace_tags(TagResource::Network, &net.id, &[lh.as_str(), uh.as_str()])
        .await
        .unwrap();
    assert_eq!(tags.len(), 2);

    // AND semantics: both tags match, one wrong tag does not.
    let found = n
        .list_networks(&Query::new().tags(&[&lh, &uh]))
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
        vec![net.id.as_str()]
    );
    let none = n
        .list_networks(&Query::new().tags(&[lh.as_str(), "kuryr.other"]))
        .await
        .unwrap();
    assert!(none.is_empty());
    // OR semantics with tags-any.
    let any = n
        .list_networks(&Query::new().tags_any(&[lh.as_str(), "kuryr.other"]))
        .await
        .unwrap();
    assert_eq!(any.len(), 1);
    let not = n
        .list_networks(&Query::new().eq("name", &name).not_tags(&[&lh]))
        .await
        .unwrap();
    assert!(not.is_empty());

    let updated = n
        .update_network(&net.id, &json!({"name": format!("{name}-renamed")}))
        .await
        .unwrap();
    assert_eq!(updated.name, format!("{name}-renamed"));
    n.remove_tag(TagResource::Network, &net.id, &lh)
        .await
        .unwrap();
    assert_eq!(
        n.get_tags(TagResource::Network, &net.id).await.unwrap(),
        vec![uh.clone()]
    );
    let err = n
        .remove_tag(TagResource::Network, &net.id, &lh)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");

    n.delete_network(&net.id).await.unwrap();
    let err = n.get_network(&net.id).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(err.kind(), Some("NetworkNotFound"));
    let err = n.delete_network(&net.id).await.unwrap_err();
    assert!(err.is_not_found());
}

#[tokio::test]
async fn subnet_and_subnetpool_crud() {
    let n = neutron("kuryr");
    let name = unique("kt-pool");
    let slot = Slot::take();
    let cidr = slot.cidr4(0);
    let pool = n
        .create_subnetpool(&SubnetPoolCreate {
            name: name.clone(),
            prefixes: vec![cidr.clone()],
            default_prefixlen: Some(26),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pool.default_prefixlen, Some(26));
    n.add_tag(
        TagResource::SubnetPool,
        &pool.id,
        "kuryr.subnetpool.existing",
    )
    .await
    .unwrap();
    let by_tag = n
        .list_subnetpools(
            &Query::new()
                .eq("name", &name)
                .tags(&["kuryr.subnetpool.existing"]),
        )
        .await
        .unwrap();
    assert_eq!(by_tag.len(), 1);

    let net = make_net(&n, &unique("kt-net")).await;
    // Carve a /26 from the pool without naming a CIDR.
    let subnet = n
        .create_subnet(&SubnetCreate {
            network_id: net.id.clone(),
            ip_version: 4,
            name: Some(format!("kuryr-subnet-{cidr}")),
            subnetpool_id: Some(pool.id.clone()),
            gateway_ip: Some(None),
            enable_dhcp: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(subnet.cidr.ends_with("/26"), "{}", subnet.cidr);
    assert_eq!(subnet.subnetpool_id.as_deref(), Some(pool.id.as_str()));
    n.add_tag(TagResource::Subnet, &subnet.id, &pool.id)
        .await
        .unwrap();
    let found = n
        .list_subnets(&Query::new().eq("network_id", &net.id).tags(&[&pool.id]))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let found = n
        .list_subnets(&Query::new().eq("subnetpool_id", &pool.id))
        .await
        .unwrap();
    assert_eq!(found[0].id, subnet.id);
    let s = n
        .update_subnet(&subnet.id, &json!({"name": "renamed"}))
        .await
        .unwrap();
    assert_eq!(s.name, "renamed");

    // The pool is in use: Neutron says so with a 400, not a 409.
    let err = n.delete_subnetpool(&pool.id).await.unwrap_err();
    assert_eq!(err.kind(), Some("SubnetPoolDeleteError"), "{err:?}");
    assert!(err.is_in_use(), "{err:?}");

    n.delete_subnet(&subnet.id).await.unwrap();
    n.delete_network(&net.id).await.unwrap();
    n.delete_subnetpool(&pool.id).await.unwrap();
    assert!(n.get_subnetpool(&pool.id).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn port_crud_binding_pairs_filters_and_conflicts() {
    let n = neutron("kuryr");
    let name = unique("kt-port");
    let slot = Slot::take();
    let (cidr, prefix) = (slot.cidr4(0), slot.prefix4(0));
    let net = make_net(&n, &name).await;
    let subnet = make_subnet(&n, &net, &cidr).await;
    let ip = format!("{prefix}.10");
    let port = n
        .create_port(&PortCreate {
            network_id: net.id.clone(),
            name: Some("kuryr-unbound-port".into()),
            fixed_ips: Some(vec![FixedIp {
                subnet_id: subnet.id.clone(),
                ip_address: ip.clone(),
            }]),
            device_owner: Some("compute:kuryr".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(port.fixed_ips[0].ip_address, ip);
    assert!(!port.mac_address.is_empty());

    // fixed_ips filters: by IP, and by subnet AND IP.
    let by_ip = n
        .list_ports(&Query::new().fixed_ip(&ip).eq("network_id", &net.id))
        .await
        .unwrap();
    assert_eq!(by_ip.len(), 1);
    let by_both = n
        .list_ports(&Query::new().fixed_ip_subnet(&subnet.id).fixed_ip(&ip))
        .await
        .unwrap();
    assert_eq!(by_both[0].id, port.id);

    // The same IP again is a typed conflict.
    let err = n
        .create_port(&PortCreate {
            network_id: net.id.clone(),
            fixed_ips: Some(vec![FixedIp {
                subnet_id: subnet.id.clone(),
                ip_address: ip.clone(),
            }]),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        err.is_conflict() && err.is_ip_already_allocated(),
        "{err:?}"
    );

    // Binding to this host (admin-only attribute) and address pairs.
    let host = std::env::var("KURYR_LAB_HOST").unwrap_or_else(|_| "localhost".into());
    let updated = n
        .update_port(
            &port.id,
            &PortUpdate {
                host_id: Some(host.clone()),
                device_id: Some("endpoint-1".into()),
                allowed_address_pairs: Some(vec![AddressPair {
                    ip_address: format!("{prefix}.200"),
                    mac_address: Some("fa:16:3e:11:22:33".into()),
                }]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.host_id, host);
    assert_eq!(updated.allowed_address_pairs.len(), 1);
    assert_ne!(updated.vif_type, "", "binding extension answers a vif_type");

    let tag = unique("kuryr.test");
    n.replace_tags(
        TagResource::Port,
        &port.id,
        &[tag.as_str(), "compute:kuryr"],
    )
    .await
    .unwrap();
    let tagged = n.list_ports(&Query::new().tags(&[&tag])).await.unwrap();
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0].device_id, "endpoint-1");

    // A subnet with ports cannot go.
    let err = n.delete_subnet(&subnet.id).await.unwrap_err();
    assert!(err.is_conflict(), "{err:?}");

    n.delete_port(&port.id).await.unwrap();
    assert!(n.get_port(&port.id).await.unwrap_err().is_not_found());
    assert!(n.delete_port(&port.id).await.unwrap_err().is_not_found());
    n.delete_subnet(&subnet.id).await.unwrap();
    n.delete_network(&net.id).await.unwrap();
}

#[tokio::test]
async fn security_groups_and_rules() {
    let n = neutron("kuryr");
    let name = unique("kt-sg");
    let sg = n
        .create_security_group(&SecurityGroupCreate {
            name: name.clone(),
            description: Some("Docker exposed ports created by Kuryr.".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let rule = n
        .create_security_group_rule(&SecurityGroupRuleCreate {
            security_group_id: sg.id.clone(),
            direction: "ingress".into(),
            ethertype: Some("IPv4".into()),
            protocol: Some("tcp".into()),
            port_range_min: Some(80),
            port_range_max: Some(81),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rule.port_range_max, Some(81));
    n.add_tag(TagResource::SecurityGroup, &sg.id, "kuryr.test")
        .await
        .unwrap();
    let found = n
        .list_security_groups(&Query::new().eq("name", &name).tags(&["kuryr.test"]))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(
        found[0]
            .security_group_rules
            .iter()
            .any(|r| r.id == rule.id)
    );
    let rules = n
        .list_security_group_rules(&Query::new().eq("security_group_id", &sg.id))
        .await
        .unwrap();
    assert!(rules.iter().any(|r| r.id == rule.id));
    n.delete_security_group_rule(&rule.id).await.unwrap();
    n.delete_security_group(&sg.id).await.unwrap();
    assert!(
        n.delete_security_group(&sg.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn trunks_and_subports() {
    let n = neutron("kuryr");
    let name = unique("kt-trunk");
    let slot = Slot::take();
    let cidr = slot.cidr4(0);
    let net = make_net(&n, &name).await;
    let _subnet = make_subnet(&n, &net, &cidr).await;
    let parent = n
        .create_port(&PortCreate {
            network_id: net.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let child = n
        .create_port(&PortCreate {
            network_id: net.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let child2 = n
        .create_port(&PortCreate {
            network_id: net.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let trunk = n
        .create_trunk(&TrunkCreate {
            port_id: parent.id.clone(),
            name: Some(name.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let t = n
        .add_subports(
            &trunk.id,
            &[SubPort {
                port_id: child.id.clone(),
                segmentation_type: "vlan".into(),
                segmentation_id: 101,
            }],
        )
        .await
        .unwrap();
    assert_eq!(t.sub_ports.len(), 1);
    // The same segmentation id twice is refused.
    let err = n
        .add_subports(
            &trunk.id,
            &[SubPort {
                port_id: child2.id.clone(),
                segmentation_type: "vlan".into(),
                segmentation_id: 101,
            }],
        )
        .await
        .unwrap_err();
    assert!(
        err.status().is_some_and(|s| s == 409 || s == 400),
        "{err:?}"
    );
    let subs = n.get_subports(&trunk.id).await.unwrap();
    assert_eq!(subs[0].segmentation_id, 101);
    let p = n.get_port(&parent.id).await.unwrap();
    assert_eq!(p.trunk_details.as_ref().map(|d| d.sub_ports.len()), Some(1));
    n.add_tag(TagResource::Trunk, &trunk.id, "kuryr.test")
        .await
        .unwrap();
    assert_eq!(
        n.list_trunks(&Query::new().tags(&["kuryr.test"]).eq("name", &name))
            .await
            .unwrap()
            .len(),
        1
    );
    let t = n
        .remove_subports(&trunk.id, &[child.id.as_str()])
        .await
        .unwrap();
    assert!(t.sub_ports.is_empty());
    n.delete_trunk(&trunk.id).await.unwrap();
    for p in [&parent, &child, &child2] {
        n.delete_port(&p.id).await.unwrap();
    }
    n.delete_network(&net.id).await.unwrap();
}

#[tokio::test]
async fn every_call_is_counted() {
    let n = neutron("kuryr");
    let before = n.session().stats().snapshot();
    let net = make_net(&n, &unique("kt-count")).await;
    n.get_network(&net.id).await.unwrap();
    n.delete_network(&net.id).await.unwrap();
    let _ = n.get_network(&net.id).await;
    let delta = n.session().stats().snapshot().since(&before);
    assert_eq!(delta.neutron_calls(), 4, "{delta:?}");
    assert_eq!(delta.ops["neutron.show_network"].count, 2);
    assert_eq!(delta.ops["neutron.show_network"].errors, 1);
}
