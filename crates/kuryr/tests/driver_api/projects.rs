//! Project scoping: the driver works in its own token's project (the lab's
//! `kuryr` project); the `demo` project stands for another tenant of the
//! same cloud. The `kuryr` account has the admin role (agent mode needs it
//! for `binding:host_id`), so Neutron itself would let it touch `demo`'s
//! objects: the refusals here are the driver's.

use super::*;
use kuryr::driver::{AllowedProjects, DriverConfig};
use kuryr_openstack::Neutron;
use kuryr_openstack::neutron::{Network, SubnetPoolCreate};

fn demo() -> Neutron {
    kuryr_test_support::neutron("demo")
}

async fn demo_project() -> String {
    demo()
        .session()
        .project_id()
        .await
        .expect("demo token")
        .expect("a project-scoped token")
}

/// A network with one subnet, made by the demo project (not shared).
async fn demo_network(lab: &Lab, cidr: &str) -> Network {
    let d = demo();
    let net = d
        .create_network(&NetworkCreate {
            name: Some(format!("kt-demo-net-{:x}", common::env::random_u64())),
            ..Default::default()
        })
        .await
        .expect("demo network");
    lab.track_user_network(&net.id);
    d.create_subnet(&SubnetCreate {
        network_id: net.id.clone(),
        ip_version: 4,
        cidr: Some(cidr.to_string()),
        enable_dhcp: Some(false),
        ..Default::default()
    })
    .await
    .expect("demo subnet");
    net
}

fn allowing(lab: &Lab, allowed: AllowedProjects) -> DriverConfig {
    DriverConfig {
        allowed_projects: allowed,
        ..lab.config()
    }
}

/// `-o neutron.net.uuid|name` of another project's network is refused,
/// naming the project and the option, and leaves that network untouched;
/// with the project allowed (or the network shared) it is used and given
/// back as it was.
#[tokio::test]
async fn another_projects_network_is_used_only_when_shared_or_allowed() {
    lab::run(async |lab: &Lab| {
        let cidr = lab.cidr4(0);
        let theirs = demo_network(lab, &cidr).await;
        let demo_id = demo_project().await;
        let d = lab.driver().await;
        let api = lab.api(&d);
        for opt in [
            json!({"neutron.net.uuid": theirs.id}),
            json!({"neutron.net.name": theirs.name}),
        ] {
            let pool = api
                .ok(
                    "/IpamDriver.RequestPool",
                    requests::request_pool(&cidr, "", false, json!({})),
                )
                .await;
            let pool_id = s(&pool["PoolID"]).to_string();
            let refused = api
                .fails(
                    "/NetworkDriver.CreateNetwork",
                    requests::create_network(
                        &docker_id(),
                        opt.clone(),
                        vec![requests::ipam_data(&cidr, s(&pool["Data"][GATEWAY_KEY]))],
                        vec![],
                    ),
                )
                .await;
            let err = refused.err();
            assert!(
                err.contains(&demo_id) && err.contains("allowed_projects"),
                "{opt}: {}",
                refused.json
            );
            api.ok("/IpamDriver.ReleasePool", requests::release_pool(&pool_id))
                .await;
            let after = lab.neutron.get_network(&theirs.id).await.unwrap();
            assert!(after.tags.is_empty(), "{:?}", after.tags);
            let subnets = lab.subnets_in(&theirs.id).await;
            assert!(subnets.iter().all(|s| s.tags.is_empty()), "{subnets:#?}");
        }

        // The demo project allowed: used, then given back untouched.
        let allowed = lab
            .driver_with(
                allowing(lab, AllowedProjects::Listed([demo_id.clone()].into())),
                kuryr::binding::Binder::Noop,
            )
            .await;
        let api = lab.api(&allowed);
        let net = api
            .create_network_with(&cidr, json!({}), json!({"neutron.net.uuid": theirs.id}))
            .await;
        let ep = api.start_container(&net).await;
        api.stop_container(&net, &ep).await;
        api.remove_network(&net).await;
        let after = lab.neutron.get_network(&theirs.id).await.expect("kept");
        assert!(after.tags.is_empty(), "{:?}", after.tags);

        // Shared: the default driver uses it.
        lab.neutron
            .update_network(&theirs.id, &json!({"shared": true}))
            .await
            .expect("share the demo network (as admin)");
        let api = lab.api(&d);
        let net = api
            .create_network_with(&cidr, json!({}), json!({"neutron.net.name": theirs.name}))
            .await;
        api.remove_network(&net).await;
        assert!(lab.neutron.get_network(&theirs.id).await.is_ok());
        lab.assert_clean().await;
    })
    .await;
}

/// A `kuryrPool-<cidr>` pool another project made (another cluster that
/// chose the same CIDR) is neither used nor deleted: the driver makes its
/// own in its own project.
#[tokio::test]
async fn another_projects_kuryr_pool_of_the_same_cidr_is_left_alone() {
    lab::run(async |lab: &Lab| {
        let cidr = lab.cidr4(0);
        let theirs = demo()
            .create_subnetpool(&SubnetPoolCreate {
                name: format!("kuryrPool-{cidr}"),
                prefixes: vec![cidr.clone()],
                default_prefixlen: Some(24),
                ..Default::default()
            })
            .await
            .expect("demo's pool");
        lab.track_pool(&theirs.id);
        let d = lab.driver().await;
        let api = lab.api(&d);
        let net = api.create_network(&cidr).await;
        assert_ne!(net.pool_id, theirs.id, "our own pool, not demo's");
        let ours = lab.pool(&net.pool_id).await.expect("our pool");
        assert_eq!(
            ours.project_id.as_deref(),
            Some(
                lab.neutron
                    .session()
                    .project_id()
                    .await
                    .unwrap()
                    .unwrap()
                    .as_str()
            )
        );
        api.remove_network(&net).await;
        let kept = lab.pool(&theirs.id).await.expect("demo's pool is kept");
        assert!(kept.tags.is_empty(), "{:?}", kept.tags);
        demo().delete_subnetpool(&theirs.id).await.unwrap();
        lab.assert_clean().await;
    })
    .await;
}

/// A network of another project adopted before the switch (as
/// kuryr-libnetwork adopts any project's network): the restarted driver's
/// rebuild does not list it (its lists are scoped), yet `docker network rm`
/// finds it by its tags and releases it cleanly.
#[tokio::test]
async fn a_network_adopted_before_the_switch_is_released_cleanly() {
    lab::run(async |lab: &Lab| {
        let cidr = lab.cidr4(0);
        let theirs = demo_network(lab, &cidr).await;
        let nid = docker_id();
        let mut tags = id_tags(&nid);
        tags.push(kuryr::names::existing_net_tag(
            &kuryr::protocol::DockerId::parse(&nid).unwrap(),
        ));
        for t in &tags {
            lab.neutron
                .add_tag(TagResource::Network, &theirs.id, t)
                .await
                .unwrap();
        }
        let d = lab.driver().await;
        let api = lab.api(&d);
        let (_, calls) = api
            .neutron_calls(api.ok("/NetworkDriver.DeleteNetwork", requests::network(&nid)))
            .await;
        assert!(
            calls.ops.contains_key("neutron.list_networks"),
            "not in the index (another project): looked up by its tags: {}",
            calls.summary()
        );
        let after = lab.neutron.get_network(&theirs.id).await.expect("kept");
        assert!(after.tags.is_empty(), "{:?}", after.tags);
        lab.assert_clean().await;
    })
    .await;
}
