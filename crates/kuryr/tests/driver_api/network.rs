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
