//! CreateNetwork / DeleteNetwork: existing networks, the default pool,
//! Docker's default IPAM, IPv6-only, rollback.

use super::*;

async fn existing_network_case(lab: &Lab, by_name: bool) {
    let d = lab.driver().await;
    let api = lab.api(&d);
    let user = user_network(lab, &lab.cidr4(0)).await;

    let (ipam_opts, generic) = if by_name {
        // -o neutron.net.name only; kuryr IPAM finds the subnet by CIDR.
        (json!({}), json!({"neutron.net.name": user.name}))
    } else {
        (
            json!({"neutron.subnet.uuid": user.subnet_id}),
            json!({"neutron.net.uuid": user.id}),
        )
    };
    let net = api
        .create_network_with(&user.cidr, ipam_opts, generic)
        .await;
    assert_eq!(net.gateway, format!("{}/24", user.gateway));

    let got = lab.neutron.get_network(&user.id).await.unwrap();
    let mut want: BTreeSet<String> = id_tags(&net.nid).into_iter().collect();
    want.insert(format!("kuryr.net.existing:{}", &net.nid[..12]));
    want.insert("user-owned".into());
    assert_eq!(got.tags.iter().cloned().collect::<BTreeSet<_>>(), want);
    assert_eq!(got.name, user.name, "an existing network is not renamed");
    let subnets = lab.subnets_in(&user.id).await;
    assert_eq!(
        subnets.iter().map(|s| &s.id).collect::<Vec<_>>(),
        vec![&user.subnet_id],
        "the existing subnet is reused"
    );

    let ep = api.start_container(&net).await;
    assert!(net_of(&user.cidr).contains(&ip_of(&ep.address)));
    let ports = lab.ports_of(&ep.eid).await;
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].network_id, user.id);
    assert_eq!(ep.join["Gateway"], user.gateway.as_str());
    api.stop_container(&net, &ep).await;
    api.remove_network(&net).await;

    let got = lab
        .neutron
        .get_network(&user.id)
        .await
        .expect("the user's network is kept");
    assert_eq!(got.tags, vec!["user-owned".to_string()]);
    let subnet = lab
        .neutron
        .get_subnet(&user.subnet_id)
        .await
        .expect("the user's subnet is kept");
    assert_eq!(subnet.tags, vec!["user-subnet".to_string()]);
    assert_eq!(subnet.name, user.subnet_name);
    assert!(lab.ports_in(&user.id).await.is_empty());
    lab.assert_clean().await;
}

/// `-o neutron.net.uuid` + `--ipam-opt neutron.subnet.uuid`.
#[tokio::test]
async fn existing_network_by_uuid_is_used_and_kept() {
    lab::run(async |lab: &Lab| existing_network_case(lab, false).await).await;
}

/// `-o neutron.net.name`, the subnet matched by `--subnet`.
#[tokio::test]
async fn existing_network_by_name_is_used_and_kept() {
    lab::run(async |lab: &Lab| existing_network_case(lab, true).await).await;
}

/// No `--subnet`: a /24 carved out of the default `kuryr` pool, a different
/// one for each pool held, and the default pool survives.
#[tokio::test]
async fn no_subnet_carves_from_the_default_pool() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let defaults = lab.pools_named("kuryr").await;
        assert_eq!(defaults.len(), 1, "the lab's default pool `kuryr`");
        let default = &defaults[0];
        let parent = net_of(&default.prefixes[0]);

        let p1 = api
            .ok(
                "/IpamDriver.RequestPool",
                requests::request_pool("", "", false, json!({})),
            )
            .await;
        let p2 = api
            .ok(
                "/IpamDriver.RequestPool",
                requests::request_pool("", "", false, json!(null)),
            )
            .await;
        let (c1, c2) = (net_of(s(&p1["Pool"])), net_of(s(&p2["Pool"])));
        for c in [c1, c2] {
            assert_eq!(c.prefix_len(), 24, "{c}");
            assert!(parent.contains(&c.network()), "{c} not in {parent}");
        }
        assert_ne!(c1, c2, "a second pool while the first is held");
        assert_ne!(p1["PoolID"], p2["PoolID"]);
        assert_ne!(p1["PoolID"], default.id.as_str());
        let gw1 = s(&p1["Data"][GATEWAY_KEY]).to_string();
        assert_eq!(gw1, format!("{}/24", c1.hosts().next().unwrap()));

        // docker's overlap loop releases the rejected pool.
        let pid2 = s(&p2["PoolID"]).to_string();
        api.ok("/IpamDriver.ReleasePool", requests::release_pool(&pid2))
            .await;
        assert!(lab.pool(&pid2).await.is_none());

        let net = lab::Net {
            nid: docker_id(),
            pool_id: s(&p1["PoolID"]).to_string(),
            cidr: c1.to_string(),
            gateway: gw1.clone(),
        };
        api.ok(
            "/NetworkDriver.CreateNetwork",
            requests::create_network(
                &net.nid,
                json!({}),
                vec![requests::ipam_data(&net.cidr, &gw1)],
                vec![],
            ),
        )
        .await;
        let nnet = lab.network_of(&net.nid).await;
        let subnets = lab.subnets_in(&nnet.id).await;
        assert_eq!(subnets.len(), 1);
        assert_eq!(subnets[0].cidr, net.cidr);
        assert_eq!(
            subnets[0].subnetpool_id.as_deref(),
            Some(default.id.as_str()),
            "allocated from the default pool"
        );
        let ep = api.start_container(&net).await;
        assert!(c1.contains(&ip_of(&ep.address)));
        api.stop_container(&net, &ep).await;
        api.remove_network(&net).await;

        assert!(
            lab.pool(&default.id).await.is_some(),
            "the default pool stays"
        );
        assert!(lab.pool(&net.pool_id).await.is_none());
        lab.assert_clean().await;

        // Same for IPv6 and the `kuryr6` pool.
        let v6 = lab.pools_named("kuryr6").await;
        assert_eq!(v6.len(), 1);
        let p6 = api
            .ok(
                "/IpamDriver.RequestPool",
                requests::request_pool("", "", true, json!({})),
            )
            .await;
        let c6 = net_of(s(&p6["Pool"]));
        assert!(net_of(&v6[0].prefixes[0]).contains(&c6.network()), "{c6}");
        assert_eq!(c6.prefix_len(), 64);
        api.ok(
            "/IpamDriver.ReleasePool",
            requests::release_pool(s(&p6["PoolID"])),
        )
        .await;
        assert!(lab.pool(&v6[0].id).await.is_some());
        lab.assert_clean().await;
    })
    .await;
}

/// `-d kuryr` with Docker's default IPAM: no RequestPool; CreateEndpoint
/// creates the port itself and DeleteEndpoint deletes it.
#[tokio::test]
async fn network_driver_with_dockers_default_ipam() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let x = common::env::random_u64() % 256;
        let cidr = format!("172.31.{x}.0/24");
        lab.track_cidr(&cidr);
        let gw = format!("172.31.{x}.1");
        let nid = docker_id();
        api.ok(
            "/NetworkDriver.CreateNetwork",
            requests::create_network(
                &nid,
                json!({}),
                vec![requests::ipam_data(&cidr, &format!("{gw}/24"))],
                vec![],
            ),
        )
        .await;
        let nnet = lab.network_of(&nid).await;
        let subnets = lab.subnets_in(&nnet.id).await;
        assert_eq!(subnets.len(), 1);
        assert_eq!(subnets[0].cidr, cidr);
        assert_eq!(subnets[0].gateway_ip.as_deref(), Some(gw.as_str()));
        assert_eq!(subnets[0].subnetpool_id, None);

        let eid = docker_id();
        let ip = format!("172.31.{x}.5");
        let created = api
            .ok(
                "/NetworkDriver.CreateEndpoint",
                requests::create_endpoint(&nid, &eid, &format!("{ip}/24"), ""),
            )
            .await;
        let ports = lab.ports_in(&nnet.id).await;
        assert_eq!(ports.len(), 1, "{ports:#?}");
        let port = &ports[0];
        assert_eq!(port.name, format!("{eid}-port"));
        assert_eq!(port.fixed_ips[0].ip_address, ip);
        assert_eq!(port.device_id, eid);
        assert_eq!(port.device_owner, "compute:kuryr");
        assert_eq!(port.host_id, lab.host);
        assert_eq!(created["Interface"]["MacAddress"], port.mac_address);
        assert_eq!(
            lab.ports_of(&eid).await.len(),
            1,
            "tagged with the endpoint"
        );
        let join = api
            .ok("/NetworkDriver.Join", requests::join(&nid, &eid))
            .await;
        assert_eq!(join["Gateway"], gw.as_str());

        api.ok("/NetworkDriver.Leave", requests::endpoint(&nid, &eid))
            .await;
        api.ok(
            "/NetworkDriver.DeleteEndpoint",
            requests::endpoint(&nid, &eid),
        )
        .await;
        assert!(
            lab.port(&port.id).await.is_none(),
            "DeleteEndpoint deletes its port"
        );
        api.ok("/NetworkDriver.DeleteNetwork", requests::network(&nid))
            .await;
        assert!(lab.neutron.get_network(&nnet.id).await.is_err());
        lab.assert_clean().await;
    })
    .await;
}

/// A network with only an IPv6 subnet.
#[tokio::test]
async fn ipv6_only_network() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let c6 = lab.cidr6(0);
        let p6 = api
            .ok(
                "/IpamDriver.RequestPool",
                requests::request_pool(&c6, "", true, json!({})),
            )
            .await;
        let pid6 = s(&p6["PoolID"]).to_string();
        let gw6 = s(&p6["Data"][GATEWAY_KEY]).to_string();
        let nid = docker_id();
        api.ok(
            "/NetworkDriver.CreateNetwork",
            requests::create_network(
                &nid,
                json!({}),
                vec![],
                vec![requests::ipam_data(&c6, &gw6)],
            ),
        )
        .await;
        let nnet = lab.network_of(&nid).await;
        let subnets = lab.subnets_in(&nnet.id).await;
        assert_eq!(subnets.len(), 1);
        assert_eq!(subnets[0].ip_version, 6);

        let a6 = s(&api
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_address(&pid6, ""),
            )
            .await["Address"])
        .to_string();
        let eid = docker_id();
        api.ok(
            "/NetworkDriver.CreateEndpoint",
            requests::create_endpoint(&nid, &eid, "", &a6),
        )
        .await;
        let ports = lab.ports_of(&eid).await;
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].fixed_ips.len(), 1);
        let join = api
            .ok("/NetworkDriver.Join", requests::join(&nid, &eid))
            .await;
        assert!(join.get("Gateway").is_none(), "{join}");
        assert_eq!(join["GatewayIPv6"], plain_ip(&gw6));
        api.ok(
            "/NetworkDriver.DeleteEndpoint",
            requests::endpoint(&nid, &eid),
        )
        .await;
        api.ok(
            "/IpamDriver.ReleaseAddress",
            requests::release_address(&pid6, plain_ip(&a6)),
        )
        .await;
        api.ok(
            "/IpamDriver.ReleaseAddress",
            requests::release_address(&pid6, plain_ip(&gw6)),
        )
        .await;
        api.ok("/IpamDriver.ReleasePool", requests::release_pool(&pid6))
            .await;
        api.ok("/NetworkDriver.DeleteNetwork", requests::network(&nid))
            .await;
        lab.assert_clean().await;
    })
    .await;
}

/// A CreateNetwork that Neutron refuses (the same --subnet twice) fails
/// cleanly: nothing is left for it, and dockerd's rollback (ReleaseAddress,
/// ReleasePool) does not harm the network already using that pool.
#[tokio::test]
async fn a_failed_create_network_rolls_back() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let cidr = lab.cidr4(0);
        let first = api.create_network(&cidr).await;

        let pool = api
            .ok(
                "/IpamDriver.RequestPool",
                requests::request_pool(&cidr, "", false, json!({})),
            )
            .await;
        let pid = s(&pool["PoolID"]).to_string();
        let gw = s(&pool["Data"][GATEWAY_KEY]).to_string();
        let nid = docker_id();
        let failed = api
            .fails(
                "/NetworkDriver.CreateNetwork",
                requests::create_network(
                    &nid,
                    json!({}),
                    vec![requests::ipam_data(&cidr, &gw)],
                    vec![],
                ),
            )
            .await;
        assert!(failed.err().contains(&cidr), "{}", failed.json);
        assert!(
            lab.networks_of(&nid).await.is_empty(),
            "the half-made network is deleted"
        );
        // dockerd's rollback of the failed create.
        api.ok("/NetworkDriver.DeleteNetwork", requests::network(&nid))
            .await;
        api.ok(
            "/IpamDriver.ReleaseAddress",
            requests::release_address(&pid, plain_ip(&gw)),
        )
        .await;
        api.ok("/IpamDriver.ReleasePool", requests::release_pool(&pid))
            .await;

        // The first network is intact.
        assert!(lab.pool(&first.pool_id).await.is_some());
        let ep = api.start_container(&first).await;
        api.stop_container(&first, &ep).await;
        api.remove_network(&first).await;
        lab.assert_clean().await;
    })
    .await;
}

/// `--subnet C -o neutron.net.uuid=X` where X's subnet with CIDR C came
/// from a subnet pool that is not kuryr's: the subnet is the pool's by
/// CIDR (tagged with the PoolID while Docker uses it, as kuryr-libnetwork
/// does), containers get addresses from it, and all of it is given back.
#[tokio::test]
async fn existing_network_whose_subnet_came_from_another_pool() {
    lab::run(async |lab: &Lab| {
        let n = &lab.neutron;
        let cidr = lab.cidr4(0);
        let other = n
            .create_subnetpool(&kuryr_openstack::neutron::SubnetPoolCreate {
                name: format!("kt-other-pool-{:x}", common::env::random_u64()),
                prefixes: vec![cidr.clone()],
                default_prefixlen: Some(24),
                ..Default::default()
            })
            .await
            .unwrap();
        lab.track_pool(&other.id);
        let user = n
            .create_network(&NetworkCreate {
                name: Some(format!("kt-user-net-{:x}", common::env::random_u64())),
                ..Default::default()
            })
            .await
            .unwrap();
        lab.track_user_network(&user.id);
        let subnet = n
            .create_subnet(&SubnetCreate {
                network_id: user.id.clone(),
                ip_version: 4,
                cidr: Some(cidr.clone()),
                subnetpool_id: Some(other.id.clone()),
                enable_dhcp: Some(false),
                ..Default::default()
            })
            .await
            .unwrap();
        let d = lab.driver().await;
        let api = lab.api(&d);
        let net = api
            .create_network_with(&cidr, json!({}), json!({"neutron.net.uuid": user.id}))
            .await;
        let tagged = n.get_subnet(&subnet.id).await.unwrap();
        assert!(tagged.tags.contains(&net.pool_id), "{:?}", tagged.tags);
        let ep = api.start_container(&net).await;
        assert!(net_of(&cidr).contains(&ip_of(&ep.address)));
        let ep2 = api.start_container(&net).await;
        api.stop_container(&net, &ep).await;
        api.stop_container(&net, &ep2).await;
        api.remove_network(&net).await;
        let after = n
            .get_subnet(&subnet.id)
            .await
            .expect("the user's subnet is kept");
        assert!(after.tags.is_empty(), "{:?}", after.tags);
        assert!(lab.kuryr_ports_in(&user.id).await.is_empty());
        n.delete_subnet(&subnet.id).await.unwrap();
        n.delete_subnetpool(&other.id).await.unwrap();
        lab.assert_clean().await;
    })
    .await;
}

/// A CreateNetwork whose `--aux-address` reservation fails midway (the
/// broadcast address) leaves no network, subnet, aux port or pool once
/// Docker has released the pool.
#[tokio::test]
async fn a_failed_aux_address_reservation_leaves_nothing() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let cidr = lab.cidr4(0);
        let pool = api
            .ok(
                "/IpamDriver.RequestPool",
                requests::request_pool(&cidr, "", false, json!({})),
            )
            .await;
        let pool_id = s(&pool["PoolID"]).to_string();
        let gw = s(&pool["Data"][GATEWAY_KEY]).to_string();
        let nid = docker_id();
        let mut data = requests::ipam_data(&cidr, &gw);
        data["AuxAddresses"] = json!({"a-ok": format!("{}/24", lab.ip4(0, 10)),
                                      "z-bcast": format!("{}/24", lab.ip4(0, 255))});
        let reply = api
            .fails(
                "/NetworkDriver.CreateNetwork",
                requests::create_network(&nid, json!({}), vec![data], vec![]),
            )
            .await;
        assert!(reply.err().contains(&lab.ip4(0, 255)), "{}", reply.err());
        assert!(lab.networks_of(&nid).await.is_empty(), "network left");
        assert!(
            lab.port_with_ip(&lab.ip4(0, 10)).await.is_empty(),
            "aux port left"
        );
        api.ok("/IpamDriver.ReleasePool", requests::release_pool(&pool_id))
            .await;
        assert!(lab.pool(&pool_id).await.is_none(), "pool left");
        lab.assert_clean().await;
    })
    .await;
}

/// Tags a user adds to an adopted network, or to their port reused by
/// `--ip`, while Docker uses them survive `docker network rm` and the
/// container's end: kuryr removes only its own tags.
#[tokio::test]
async fn tags_a_user_adds_meanwhile_survive() {
    lab::run(async |lab: &Lab| {
        let n = &lab.neutron;
        let d = lab.driver().await;
        let api = lab.api(&d);
        let user = user_network(lab, &lab.cidr4(0)).await;
        let net = api
            .create_network_with(&user.cidr, json!({}), json!({"neutron.net.uuid": user.id}))
            .await;
        let port = user_port(lab, &user, &lab.ip4(0, 50), None).await;
        let ep = {
            let addr = api
                .ok(
                    "/IpamDriver.RequestAddress",
                    requests::request_address(&net.pool_id, &lab.ip4(0, 50)),
                )
                .await;
            api.start_container_at(&net, s(&addr["Address"])).await
        };
        n.add_tag(TagResource::Network, &user.id, "added-meanwhile")
            .await
            .unwrap();
        n.add_tag(TagResource::Port, &port.id, "port-added-meanwhile")
            .await
            .unwrap();
        api.stop_container(&net, &ep).await;
        let p = n.get_port(&port.id).await.expect("the user's port is kept");
        assert_eq!(p.tags, vec!["port-added-meanwhile".to_string()]);
        api.remove_network(&net).await;
        let got = n.get_network(&user.id).await.unwrap();
        let tags: BTreeSet<_> = got.tags.into_iter().collect();
        let want: BTreeSet<_> = ["user-owned", "added-meanwhile"]
            .map(String::from)
            .into_iter()
            .collect();
        assert_eq!(tags, want);
        lab.assert_clean().await;
    })
    .await;
}

/// Two Docker networks on one Neutron network (`-o neutron.net.name` on
/// two hosts in local scope): both are made, the network carries both
/// sets of ID tags, a restarted driver serves both, containers on the two
/// reach each other, and removing one keeps the network for the other; the
/// pre-existing network outlives both.
#[tokio::test]
async fn two_docker_networks_share_one_neutron_network() {
    use common::container::Container;
    use kuryr::binding::{Binder, VethConfig};
    lab::run(async |lab: &Lab| {
        common::netns::require_root("the shared-network data path");
        let user = user_network(lab, &lab.cidr4(0)).await;
        let host_a = lab
            .driver_with(lab.config(), Binder::veth(VethConfig::default()))
            .await;
        let host_b = lab
            .driver_with(lab.config(), Binder::veth(VethConfig::default()))
            .await;
        let (api_a, api_b) = (lab.api(&host_a), lab.api(&host_b));
        let generic = json!({"neutron.net.name": user.name});
        let net_a = api_a
            .create_network_with(&user.cidr, json!({}), generic.clone())
            .await;
        let net_b = api_b
            .create_network_with(&user.cidr, json!({}), generic)
            .await;
        assert_ne!(net_a.nid, net_b.nid);
        let got = lab.neutron.get_network(&user.id).await.unwrap();
        for nid in [&net_a.nid, &net_b.nid] {
            for tag in id_tags(nid) {
                assert!(got.tags.contains(&tag), "{tag} missing from {:?}", got.tags);
            }
        }
        assert_eq!(lab.network_of(&net_b.nid).await.id, user.id);

        let tag = format!("{:x}", common::env::random_u64() & 0xff_ffff);
        let mut ca = Container::start(lab, &api_a, &net_a).await;
        ca.enter(None, &format!("kt-sh-a-{tag}"));
        let mut cb = Container::start(lab, &api_b, &net_b).await;
        cb.enter(None, &format!("kt-sh-b-{tag}"));
        common::vm::wait_active(lab, &ca.port.id).await;
        common::vm::wait_active(lab, &cb.port.id).await;
        assert!(
            ca.sandbox()
                .pings(cb.ip(), std::time::Duration::from_secs(30)),
            "a container on Docker network A cannot reach one on B"
        );

        // A restarted daemon knows both Docker networks (start-up rebuild).
        let restarted = lab.driver().await;
        let api_r = lab.api(&restarted);
        for (net, c) in [(&net_a, &ca), (&net_b, &cb)] {
            let join = api_r
                .ok("/NetworkDriver.Join", requests::join(&net.nid, &c.ep.eid))
                .await;
            assert_eq!(join["InterfaceName"]["SrcName"], c.src.as_str());
        }

        ca.leave(None);
        api_a.stop_container(&net_a, &ca.ep).await;
        api_a.remove_network(&net_a).await;
        let got = lab.neutron.get_network(&user.id).await.expect("kept for B");
        assert!(
            id_tags(&net_b.nid).iter().all(|t| got.tags.contains(t)),
            "{:?}",
            got.tags
        );
        assert!(
            !id_tags(&net_a.nid).iter().any(|t| got.tags.contains(t)),
            "{:?}",
            got.tags
        );
        assert_eq!(
            lab.subnets_in(&user.id).await.len(),
            1,
            "B's subnet is kept"
        );
        let ep2 = api_b.start_container(&net_b).await;
        api_b.stop_container(&net_b, &ep2).await;

        cb.leave(None);
        api_b.stop_container(&net_b, &cb.ep).await;
        api_b.remove_network(&net_b).await;
        let got = lab
            .neutron
            .get_network(&user.id)
            .await
            .expect("pre-existing: kept");
        assert_eq!(got.tags, vec!["user-owned".to_string()]);
        lab.assert_clean().await;
    })
    .await;
}

/// A network kuryr made for Docker network A and adopted by Docker network
/// B (`-o neutron.net.uuid`) stays while B uses it after A is removed, and
/// goes with B: kuryr made it, so the last Docker network using it deletes
/// it (B is not marked as having found it pre-existing).
#[tokio::test]
async fn a_kuryr_network_adopted_by_another_docker_network_outlives_its_maker() {
    lab::run(async |lab: &Lab| {
        let a = lab.driver().await;
        let b = lab.driver().await;
        let (api_a, api_b) = (lab.api(&a), lab.api(&b));
        let cidr = lab.cidr4(0);
        let net_a = api_a.create_network(&cidr).await;
        let nnet = lab.network_of(&net_a.nid).await;
        let net_b = api_b
            .create_network_with(&cidr, json!({}), json!({"neutron.net.uuid": nnet.id}))
            .await;
        let ep = api_b.start_container(&net_b).await;
        api_a.remove_network(&net_a).await;
        assert!(
            lab.neutron.get_network(&nnet.id).await.is_ok(),
            "B still uses it"
        );
        let join = api_b
            .ok("/NetworkDriver.Join", requests::join(&net_b.nid, &ep.eid))
            .await;
        assert_eq!(join["Gateway"], plain_ip(&net_b.gateway));
        api_b.stop_container(&net_b, &ep).await;
        api_b.remove_network(&net_b).await;
        assert!(
            lab.neutron.get_network(&nnet.id).await.is_err(),
            "deleted with its last user"
        );
        lab.assert_clean().await;
    })
    .await;
}

/// A crash right after the network is made and before it is tagged leaves
/// a network no Docker ID finds; dockerd's retry makes another, and the
/// restarted daemon collects the first as an orphan (its description says
/// this host made it). An injected failure there rolls it back instead.
#[tokio::test]
async fn a_crash_between_network_create_and_tag_leaves_nothing_for_long() {
    use kuryr::driver::{FaultAction, Faults};
    lab::run(async |lab: &Lab| {
        let faults = std::sync::Arc::new(Faults::default());
        let config = kuryr::driver::DriverConfig {
            faults: Some(faults.clone()),
            orphan_grace: std::time::Duration::ZERO,
            ..lab.config()
        };
        let a = lab
            .driver_with(config.clone(), kuryr::binding::Binder::Noop)
            .await;
        let api = lab.api(&a);
        let cidr = lab.cidr4(0);
        let pool = api
            .ok(
                "/IpamDriver.RequestPool",
                requests::request_pool(&cidr, "", false, json!({})),
            )
            .await;
        let (pid, gw) = (
            s(&pool["PoolID"]).to_string(),
            s(&pool["Data"][GATEWAY_KEY]).to_string(),
        );
        let nid = docker_id();
        let create = requests::create_network(
            &nid,
            json!({}),
            vec![requests::ipam_data(&cidr, &gw)],
            vec![],
        );
        let kuryr_nets = async || {
            lab.neutron
                .list_networks(&Query::new().eq("name", format!("kuryr-net-{}", &nid[..8])))
                .await
                .unwrap()
        };

        // An injected error there: rolled back.
        faults.arm("CreateNetwork.network_made", FaultAction::Error);
        api.fails("/NetworkDriver.CreateNetwork", create.clone())
            .await;
        assert!(kuryr_nets().await.is_empty(), "rolled back");

        // A crash there: the untagged network stays, the retry (a new
        // daemon) makes another.
        faults.arm("CreateNetwork.network_made", FaultAction::Crash);
        api.fails("/NetworkDriver.CreateNetwork", create.clone())
            .await;
        let half = kuryr_nets().await;
        assert_eq!(half.len(), 1);
        assert!(half[0].tags.is_empty());
        let b = lab.driver_with(config, kuryr::binding::Binder::Noop).await;
        let api_b = lab.api(&b);
        api_b.ok("/NetworkDriver.CreateNetwork", create).await;
        let collected = b.collect_orphans().await.unwrap();
        assert_eq!(collected.networks, vec![half[0].id.clone()]);
        let left = kuryr_nets().await;
        assert_eq!(left.len(), 1, "{left:#?}");
        assert_eq!(left[0].id, lab.network_of(&nid).await.id);
        let net = lab::Net {
            nid,
            pool_id: pid,
            cidr: cidr.clone(),
            gateway: gw,
        };
        api_b.remove_network(&net).await;
        lab.assert_clean().await;
    })
    .await;
}
