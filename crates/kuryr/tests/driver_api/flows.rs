//! Whole Docker flows through the driver: the seed scenario step by step,
//! round trips per operation, every call twice, containers in parallel.

use super::*;

/// The whole life of one network and one container, step by step, with
/// Neutron checked after each step.
#[tokio::test]
async fn seed_flow() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let cidr = lab.cidr4(0);
        let gw = lab.ip4(0, 1);

        // docker network create --subnet cidr: RequestPool, no gateway
        // RequestAddress (the pool's Data has it), CreateNetwork.
        let pool = api
            .ok(
                "/IpamDriver.RequestPool",
                requests::request_pool(&cidr, "", false, json!({})),
            )
            .await;
        let pool_id = s(&pool["PoolID"]).to_string();
        assert_eq!(pool["Pool"], cidr);
        assert_eq!(pool["Data"][GATEWAY_KEY], format!("{gw}/24"));
        let sp = lab
            .pool(&pool_id)
            .await
            .expect("the PoolID is a Neutron subnet pool");
        assert_eq!(sp.name, format!("kuryrPool-{cidr}"));
        assert_eq!(sp.prefixes, vec![cidr.clone()]);

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
        let net = lab.network_of(&nid).await;
        assert_eq!(net.name, format!("kuryr-net-{}", &nid[..8]));
        assert!(
            net.tags
                .contains(&format!("kuryr.net.uuid.lh:{}", &nid[..32])),
            "{:?}",
            net.tags
        );
        assert!(
            net.tags
                .contains(&format!("kuryr.net.uuid.uh:{}", &nid[32..])),
            "{:?}",
            net.tags
        );
        let subnets = lab.subnets_in(&net.id).await;
        assert_eq!(subnets.len(), 1, "{subnets:#?}");
        let subnet = &subnets[0];
        assert_eq!(subnet.name, format!("kuryr-subnet-{cidr}"));
        assert_eq!(subnet.cidr, cidr);
        assert_eq!(subnet.subnetpool_id.as_deref(), Some(pool_id.as_str()));
        assert_eq!(subnet.gateway_ip.as_deref(), Some(gw.as_str()));

        // docker run: RequestAddress (dynamic) ...
        let addr = api
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_address(&pool_id, ""),
            )
            .await;
        let address = s(&addr["Address"]).to_string();
        let a = net_of(&address);
        assert_eq!(a.prefix_len(), 24, "{address}");
        assert!(net_of(&cidr).contains(&a.addr()), "{address} not in {cidr}");
        assert_ne!(a.addr().to_string(), gw);
        let ports: Vec<_> = lab
            .port_with_ip(plain_ip(&address))
            .await
            .into_iter()
            .filter(|p| p.network_id == net.id)
            .collect();
        assert_eq!(ports.len(), 1, "{ports:#?}");
        let ipam_port = &ports[0];
        assert_eq!(ipam_port.device_owner, "compute:kuryr");
        assert_eq!(ipam_port.host_id, lab.host);
        assert_eq!(
            ipam_port.fixed_ips,
            vec![FixedIp {
                subnet_id: subnet.id.clone(),
                ip_address: plain_ip(&address).to_string()
            }]
        );

        // ... CreateEndpoint with that address (no MAC) ...
        let eid = docker_id();
        let created = api
            .ok(
                "/NetworkDriver.CreateEndpoint",
                requests::create_endpoint(&nid, &eid, &address, ""),
            )
            .await;
        let port = lab
            .port(&ipam_port.id)
            .await
            .expect("the IPAM port is the endpoint's");
        assert_eq!(
            created["Interface"]["MacAddress"], port.mac_address,
            "{created}"
        );
        for t in id_tags(&eid) {
            assert!(port.tags.contains(&t), "{t} missing in {:?}", port.tags);
        }
        assert!(
            port.tags.iter().any(|t| t == "compute:kuryr"),
            "{:?}",
            port.tags
        );
        assert_eq!(port.device_id, eid);
        assert_eq!(port.device_owner, "compute:kuryr");
        assert_eq!(port.host_id, lab.host);
        let tagged = lab.ports_of(&eid).await;
        assert_eq!(
            tagged.iter().map(|p| &p.id).collect::<Vec<_>>(),
            vec![&port.id]
        );

        // ... Join, ProgramExternalConnectivity, EndpointOperInfo.
        let join = api
            .ok("/NetworkDriver.Join", requests::join(&nid, &eid))
            .await;
        assert_eq!(
            join["InterfaceName"]["SrcName"],
            format!("t_c{}", &port.id[..11])
        );
        assert_eq!(join["InterfaceName"]["DstPrefix"], "eth");
        assert_eq!(join["Gateway"], gw.as_str(), "a plain IP: {join}");
        assert!(join.get("GatewayIPv6").is_none(), "{join}");
        assert_eq!(join["DisableGatewayService"], true);
        api.ok(
            "/NetworkDriver.ProgramExternalConnectivity",
            requests::program(&nid, &eid, json!([])),
        )
        .await;
        let info = api
            .ok(
                "/NetworkDriver.EndpointOperInfo",
                requests::endpoint(&nid, &eid),
            )
            .await;
        assert!(info["Value"].is_object(), "{info}");

        // docker stop: Revoke, Leave, DeleteEndpoint, ReleaseAddress.
        api.ok(
            "/NetworkDriver.RevokeExternalConnectivity",
            requests::endpoint(&nid, &eid),
        )
        .await;
        api.ok("/NetworkDriver.Leave", requests::endpoint(&nid, &eid))
            .await;
        api.ok(
            "/NetworkDriver.DeleteEndpoint",
            requests::endpoint(&nid, &eid),
        )
        .await;
        api.ok(
            "/IpamDriver.ReleaseAddress",
            requests::release_address(&pool_id, plain_ip(&address)),
        )
        .await;
        assert!(
            lab.port(&port.id).await.is_none(),
            "ReleaseAddress deletes the port"
        );

        // docker network rm: ReleaseAddress(gateway), ReleasePool, DeleteNetwork.
        api.ok(
            "/IpamDriver.ReleaseAddress",
            requests::release_address(&pool_id, &gw),
        )
        .await;
        api.ok("/IpamDriver.ReleasePool", requests::release_pool(&pool_id))
            .await;
        api.ok("/NetworkDriver.DeleteNetwork", requests::network(&nid))
            .await;
        assert!(lab.networks_of(&nid).await.is_empty());
        assert!(
            lab.neutron.get_network(&net.id).await.is_err(),
            "network deleted"
        );
        assert!(
            lab.neutron.get_subnet(&subnet.id).await.is_err(),
            "subnet deleted"
        );
        assert!(lab.pool(&pool_id).await.is_none(), "kuryrPool deleted");
        lab.assert_clean().await;
    })
    .await;
}

/// Neutron round trips per Docker operation, from the driver's counters.
#[tokio::test]
async fn neutron_round_trips_per_docker_operation() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let cidr = lab.cidr4(0);

        let (net, create) = api.neutron_calls(api.create_network(&cidr)).await;
        let (ep, start) = api.neutron_calls(api.start_container(&net)).await;
        let (_, stop) = api.neutron_calls(api.stop_container(&net, &ep)).await;
        let (ep2, start2) = api.neutron_calls(api.start_container(&net)).await;
        let (_, stop2) = api.neutron_calls(api.stop_container(&net, &ep2)).await;
        let (_, rm) = api.neutron_calls(api.remove_network(&net)).await;

        // Exactly, not at most: a new request shows up here first.
        let rows = [
            // Pool lookup + create, network + tags, subnet + tags: this
            // Neutron (Zed) takes tags in no create request but a port's,
            // and kuryr-libnetwork finds the network by its tags and
            // releases addresses only on subnets tagged with the PoolID
            // (tests/interop_python.rs).
            ("network create", &create, 6),
            // Port (tagged at creation), claim (device), endpoint tags.
            ("container start", &start, 3),
            ("container stop", &stop, 1),
            ("2nd container start", &start2, 3),
            ("2nd container stop", &stop2, 1),
            // The network deleted on its revision, then its pool.
            ("network rm", &rm, 2),
        ];
        println!("Neutron round trips per Docker operation (+ ACTIVE polls):");
        for (what, delta, _) in &rows {
            println!(
                "  {what:<20} {:>2} +{}  ({})",
                delta.neutron_calls(),
                delta.neutron_polls(),
                delta.summary()
            );
        }
        for (what, delta, want) in &rows {
            assert_eq!(
                delta.neutron_calls(),
                *want,
                "{what}: Neutron calls: {}",
                delta.summary()
            );
        }
        // The wait for ACTIVE (vif_plugging_is_fatal in the lab's driver
        // config) polls, counted apart; nothing else does.
        for (what, delta, _) in &rows {
            let polls = delta.neutron_polls();
            let expected = what.contains("start") && d.config().vif_plugging_is_fatal;
            assert_eq!(polls > 0, expected, "{what}: {} polls", polls);
        }
        // It did work: something was created and deleted each time.
        assert!(create.ops.contains_key("neutron.create_network"));
        assert!(start.ops.contains_key("neutron.create_port"));
        assert!(stop.ops.contains_key("neutron.delete_port"));
        assert!(rm.ops.contains_key("neutron.delete_network_if"));
        lab.assert_clean().await;
    })
    .await;
}

/// Every call made twice answers the same and creates nothing twice.
#[tokio::test]
async fn every_call_is_idempotent() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let cidr = lab.cidr4(0);

        for path in [
            "/Plugin.Activate",
            "/NetworkDriver.GetCapabilities",
            "/IpamDriver.GetCapabilities",
            "/IpamDriver.GetDefaultAddressSpaces",
        ] {
            let a = api.ok(path, json!({})).await;
            assert_eq!(a, api.ok(path, json!({})).await, "{path}");
        }

        let req = requests::request_pool(&cidr, "", false, json!({}));
        let p1 = api.ok("/IpamDriver.RequestPool", req.clone()).await;
        let p2 = api.ok("/IpamDriver.RequestPool", req).await;
        assert_eq!(p1, p2);
        assert_eq!(lab.pools_named(&format!("kuryrPool-{cidr}")).await.len(), 1);
        let pool_id = s(&p1["PoolID"]).to_string();
        let gateway = s(&p1["Data"][GATEWAY_KEY]).to_string();

        let nid = docker_id();
        let create = requests::create_network(
            &nid,
            json!({}),
            vec![requests::ipam_data(&cidr, &gateway)],
            vec![],
        );
        assert_eq!(
            api.ok("/NetworkDriver.CreateNetwork", create.clone()).await,
            api.ok("/NetworkDriver.CreateNetwork", create).await
        );
        let net = lab.network_of(&nid).await;
        assert_eq!(lab.subnets_in(&net.id).await.len(), 1);

        // Gateway request (with --gateway) twice, after the network exists.
        let g = requests::request_gateway(&pool_id, plain_ip(&gateway));
        assert_eq!(
            api.ok("/IpamDriver.RequestAddress", g.clone()).await,
            api.ok("/IpamDriver.RequestAddress", g).await
        );

        // A given address (--ip) twice: RequestAddress carries no
        // requester, so a second one is another container asking for an
        // address already handed out: refused, one port (an address is
        // handed out once). Dynamic requests are two containers asking, so
        // they must get two addresses.
        let ip = lab.ip4(0, 10);
        let r = requests::request_address(&pool_id, &ip);
        let a1 = api.ok("/IpamDriver.RequestAddress", r.clone()).await;
        let a2 = api.fails("/IpamDriver.RequestAddress", r).await;
        assert!(a2.err().contains("already allocated"), "{}", a2.err());
        assert_eq!(a1["Address"], format!("{ip}/24"));
        assert_eq!(lab.port_with_ip(&ip).await.len(), 1);
        let dyn1 = api
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_address(&pool_id, ""),
            )
            .await;
        let dyn2 = api
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_address(&pool_id, ""),
            )
            .await;
        assert_ne!(dyn1["Address"], dyn2["Address"]);
        for a in [&dyn1, &dyn2] {
            let rel = requests::release_address(&pool_id, plain_ip(s(&a["Address"])));
            api.ok("/IpamDriver.ReleaseAddress", rel).await;
            assert!(
                lab.port_with_ip(plain_ip(s(&a["Address"])))
                    .await
                    .is_empty()
            );
        }

        let eid = docker_id();
        let address = format!("{ip}/24");
        let ce = requests::create_endpoint(&nid, &eid, &address, "");
        let c1 = api.ok("/NetworkDriver.CreateEndpoint", ce.clone()).await;
        let c2 = api.ok("/NetworkDriver.CreateEndpoint", ce).await;
        assert_eq!(c1, c2);
        assert!(c1["Interface"]["MacAddress"].is_string(), "{c1}");
        let ports = lab.ports_of(&eid).await;
        assert_eq!(ports.len(), 1, "{ports:#?}");
        assert_eq!(lab.ports_in(&net.id).await.len(), 1);
        let port_id = ports[0].id.clone();

        let j1 = api
            .ok("/NetworkDriver.Join", requests::join(&nid, &eid))
            .await;
        let j2 = api
            .ok("/NetworkDriver.Join", requests::join(&nid, &eid))
            .await;
        assert_eq!(j1, j2);
        let info = requests::endpoint(&nid, &eid);
        assert_eq!(
            api.ok("/NetworkDriver.EndpointOperInfo", info.clone())
                .await,
            api.ok("/NetworkDriver.EndpointOperInfo", info).await
        );

        let expose = requests::program(&nid, &eid, json!([{"Proto": 6, "Port": 8080}]));
        api.ok("/NetworkDriver.ProgramExternalConnectivity", expose.clone())
            .await;
        api.ok("/NetworkDriver.ProgramExternalConnectivity", expose)
            .await;
        let sg_name = format!("{port_id}-exposed_ports");
        let sgs = lab
            .neutron
            .list_security_groups(&Query::new().eq("name", &sg_name))
            .await
            .unwrap();
        assert_eq!(sgs.len(), 1, "{sgs:#?}");
        for _ in 0..2 {
            api.ok(
                "/NetworkDriver.RevokeExternalConnectivity",
                requests::endpoint(&nid, &eid),
            )
            .await;
        }
        assert!(
            lab.neutron
                .list_security_groups(&Query::new().eq("name", &sg_name))
                .await
                .unwrap()
                .is_empty()
        );

        for _ in 0..2 {
            api.ok("/NetworkDriver.Leave", requests::endpoint(&nid, &eid))
                .await;
        }
        for _ in 0..2 {
            api.ok(
                "/NetworkDriver.DeleteEndpoint",
                requests::endpoint(&nid, &eid),
            )
            .await;
        }
        for _ in 0..2 {
            api.ok(
                "/IpamDriver.ReleaseAddress",
                requests::release_address(&pool_id, &ip),
            )
            .await;
        }
        assert!(lab.port(&port_id).await.is_none());
        for _ in 0..2 {
            api.ok(
                "/IpamDriver.ReleaseAddress",
                requests::release_address(&pool_id, plain_ip(&gateway)),
            )
            .await;
        }
        for _ in 0..2 {
            api.ok("/IpamDriver.ReleasePool", requests::release_pool(&pool_id))
                .await;
        }
        for _ in 0..2 {
            api.ok("/NetworkDriver.DeleteNetwork", requests::network(&nid))
                .await;
        }
        // Late repeats, after everything is gone.
        api.ok("/IpamDriver.ReleasePool", requests::release_pool(&pool_id))
            .await;
        api.ok(
            "/IpamDriver.ReleaseAddress",
            requests::release_address(&pool_id, &ip),
        )
        .await;
        api.ok(
            "/NetworkDriver.DeleteEndpoint",
            requests::endpoint(&nid, &eid),
        )
        .await;
        lab.assert_clean().await;
    })
    .await;
}

/// dockerd starts and stops containers in parallel: every one gets its own
/// address and port, and all of them go away.
#[tokio::test]
async fn concurrent_containers_on_one_network() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let (net, other) = futures_util::future::join(
            api.create_network(&lab.cidr4(0)),
            api.create_network(&lab.cidr4(1)),
        )
        .await;
        const N: usize = 6;
        let eps = futures_util::future::join_all((0..N).map(|i| {
            let net = if i % 3 == 0 { &other } else { &net };
            api.start_container(net)
        }))
        .await;
        let addresses: BTreeSet<&str> = eps.iter().map(|e| e.address.as_str()).collect();
        assert_eq!(addresses.len(), N, "distinct addresses: {addresses:?}");
        for (i, ep) in eps.iter().enumerate() {
            let ports = lab.ports_of(&ep.eid).await;
            assert_eq!(ports.len(), 1, "endpoint {i}");
            assert_eq!(ports[0].mac_address, ep.mac);
            let n = if i % 3 == 0 { &other } else { &net };
            assert!(net_of(&n.cidr).contains(&ip_of(&ep.address)));
            assert_eq!(ep.join["Gateway"], plain_ip(&n.gateway));
        }
        futures_util::future::join_all(eps.iter().enumerate().map(|(i, ep)| {
            let net = if i % 3 == 0 { &other } else { &net };
            api.stop_container(net, ep)
        }))
        .await;
        for n in [&net, &other] {
            assert!(
                lab.ports_in(&lab.network_of(&n.nid).await.id)
                    .await
                    .is_empty()
            );
        }
        futures_util::future::join(api.remove_network(&net), api.remove_network(&other)).await;
        lab.assert_clean().await;
    })
    .await;
}

/// Each call counts only its own Neutron requests (the `neutron_calls` of
/// its log line), also when calls run at once: ten concurrent
/// RequestAddress calls count one port creation each, and together
/// exactly what the session sent.
#[tokio::test]
async fn each_call_counts_only_its_own_neutron_requests() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let net = api.create_network(&lab.cidr4(0)).await;
        let before = api.calls();
        let body = requests::request_address(&net.pool_id, "").to_string();
        let calls = (0..10).map(|_| {
            let call =
                kuryr::protocol::PluginCall::parse("/IpamDriver.RequestAddress", body.as_bytes())
                    .expect("a RequestAddress");
            d.execute_counted(call)
        });
        let results = futures_util::future::join_all(calls).await;
        let total = api.calls().since(&before);
        let mut sum = 0;
        for (reply, counted) in &results {
            let reply = reply.as_ref().expect("an address");
            assert_eq!(
                counted.ops.get("neutron.create_port").map(|o| o.count),
                Some(1),
                "{reply:?}: {}",
                counted.summary()
            );
            sum += counted.neutron_calls();
        }
        assert_eq!(sum, total.neutron_calls(), "{}", total.summary());
        for (reply, _) in results {
            let kuryr::protocol::Response::RequestAddress(r) = reply.unwrap() else {
                panic!("not an address")
            };
            api.ok(
                "/IpamDriver.ReleaseAddress",
                requests::release_address(&net.pool_id, plain_ip(&r.address)),
            )
            .await;
        }
        api.remove_network(&net).await;
        lab.assert_clean().await;
    })
    .await;
}
