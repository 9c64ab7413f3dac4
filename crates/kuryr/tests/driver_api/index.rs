//! The index: a restarted driver serves what the previous one made.

use super::*;

/// A restarted driver serves what the previous one created: start()
/// rebuilds the index from Neutron tags.
#[tokio::test]
async fn a_restarted_driver_serves_existing_networks_and_endpoints() {
    lab::run(async |lab: &Lab| {
        let (net, ep) = {
            let a = lab.driver().await;
            let api = lab.api(&a);
            let net = api.create_network(&lab.cidr4(0)).await;
            let addr = api
                .ok(
                    "/IpamDriver.RequestAddress",
                    requests::request_address(&net.pool_id, ""),
                )
                .await;
            let eid = docker_id();
            let address = s(&addr["Address"]).to_string();
            let created = api
                .ok(
                    "/NetworkDriver.CreateEndpoint",
                    requests::create_endpoint(&net.nid, &eid, &address, ""),
                )
                .await;
            (net, (eid, address, created))
            // driver A dropped here
        };
        let (eid, address, created) = ep;
        let port = {
            let ports = lab.ports_of(&eid).await;
            assert_eq!(ports.len(), 1);
            ports.into_iter().next().unwrap()
        };

        let b = lab.driver().await;
        let api = lab.api(&b);
        let join = api
            .ok("/NetworkDriver.Join", requests::join(&net.nid, &eid))
            .await;
        assert_eq!(
            join["InterfaceName"]["SrcName"],
            format!("t_c{}", &port.id[..11])
        );
        assert_eq!(join["Gateway"], plain_ip(&net.gateway));
        let info = api
            .ok(
                "/NetworkDriver.EndpointOperInfo",
                requests::endpoint(&net.nid, &eid),
            )
            .await;
        assert_eq!(info["Value"]["port_id"], port.id.as_str(), "{info}");
        // CreateEndpoint retried on B answers as A did.
        let again = api
            .ok(
                "/NetworkDriver.CreateEndpoint",
                requests::create_endpoint(&net.nid, &eid, &address, ""),
            )
            .await;
        assert_eq!(again, created);

        // A new container on B works too.
        let ep2 = api.start_container(&net).await;
        assert_eq!(ep2.join["Gateway"], plain_ip(&net.gateway));
        api.stop_container(&net, &ep2).await;

        api.ok("/NetworkDriver.Leave", requests::endpoint(&net.nid, &eid))
            .await;
        api.ok(
            "/NetworkDriver.DeleteEndpoint",
            requests::endpoint(&net.nid, &eid),
        )
        .await;
        api.ok(
            "/IpamDriver.ReleaseAddress",
            requests::release_address(&net.pool_id, plain_ip(&address)),
        )
        .await;
        assert!(lab.port(&port.id).await.is_none(), "port deleted by B");
        let nnet = lab.network_of(&net.nid).await;
        api.remove_network(&net).await;
        assert!(lab.neutron.get_network(&nnet.id).await.is_err());
        assert!(lab.pool(&net.pool_id).await.is_none(), "pool deleted by B");
        lab.assert_clean().await;
    })
    .await;
}

/// A network from the default pool (no `--subnet`), then a restart, then
/// three containers one after the other: every RequestAddress finds the
/// pool's subnet (the pool, loaded after the restart, is matched to its
/// subnet by the PoolID tag, or Neutron is asked), and `network rm`
/// leaves nothing.
#[tokio::test]
async fn containers_after_a_restart_on_a_network_from_the_default_pool() {
    lab::run(async |lab: &Lab| {
        let net = {
            let a = lab.driver().await;
            lab.api(&a).create_network("").await
        };
        let b = lab.driver().await;
        let api = lab.api(&b);
        let mut eps = Vec::new();
        for _ in 0..3 {
            eps.push(api.start_container(&net).await);
        }
        let nnet = lab.network_of(&net.nid).await;
        assert_eq!(lab.kuryr_ports_in(&nnet.id).await.len(), 3);
        for ep in &eps {
            api.stop_container(&net, ep).await;
        }
        api.remove_network(&net).await;
        assert!(lab.neutron.get_network(&nnet.id).await.is_err());
        assert!(lab.pool(&net.pool_id).await.is_none());
        lab.assert_clean().await;
    })
    .await;
}

/// A restart with 500 kuryr networks in Neutron: the start-up rebuild
/// reads their subnets in bounded requests (one per network ID used to
/// make a query string past 8 KiB: 414 at start), and serves them.
#[tokio::test]
async fn a_restart_with_500_kuryr_networks() {
    use futures_util::StreamExt;
    const NETWORKS: usize = 500;
    lab::run(async |lab: &Lab| {
        let n = &lab.neutron;
        raise_network_quota(lab, 2000).await;
        let ids: Vec<String> = (0..NETWORKS).map(|_| docker_id()).collect();
        for id in &ids {
            lab.track_network(id);
        }
        // One bulk create, then the tags (not accepted in a create).
        let bodies: Vec<Value> = ids
            .iter()
            .map(|id| json!({"name": format!("kt-many-{}", &id[..8])}))
            .collect();
        let t0 = std::time::Instant::now();
        let made = bulk_create_networks(lab, bodies).await;
        println!("bulk create: {} ms", t0.elapsed().as_millis());
        assert_eq!(made.len(), NETWORKS);
        let tagged = futures_util::stream::iter(made.iter().zip(&ids))
            .map(|(net, id)| async move {
                n.replace_tags(TagResource::Network, net, &id_tags(id))
                    .await
                    .expect("tag network");
            })
            .buffer_unordered(8)
            .count()
            .await;
        assert_eq!(tagged, NETWORKS);
        println!("tagged: {} ms", t0.elapsed().as_millis());
        let started = std::time::Instant::now();
        let d = lab.driver().await;
        let took = started.elapsed();
        println!(
            "start-up with {NETWORKS} kuryr networks: {} ms",
            took.as_millis()
        );
        let api = lab.api(&d);
        let net = lab::Net {
            nid: ids[NETWORKS - 1].clone(),
            pool_id: String::new(),
            cidr: String::new(),
            gateway: String::new(),
        };
        // Served from the index: no Neutron lookup.
        let (_, calls) = api
            .neutron_calls(api.ok("/NetworkDriver.DeleteNetwork", requests::network(&net.nid)))
            .await;
        assert!(
            !calls.ops.contains_key("neutron.list_networks"),
            "{}",
            calls.summary()
        );
        futures_util::stream::iter(made.iter())
            .map(|id| async move {
                match n.delete_network(id).await {
                    Err(e) if !e.is_not_found() => panic!("delete {id}: {e}"),
                    _ => {}
                }
            })
            .buffer_unordered(8)
            .count()
            .await;
        println!("deleted: {} ms", t0.elapsed().as_millis());
        // All gone: the cleanup need not look for 500 networks again.
        lab.untrack_networks();
    })
    .await;
}

/// `POST /v2.0/networks` with a list: one request for many networks.
async fn bulk_create_networks(lab: &Lab, bodies: Vec<Value>) -> Vec<String> {
    let base = lab.neutron.base_url().await.unwrap();
    let resp = lab
        .neutron
        .session()
        .call(
            "neutron.create_network",
            &base,
            reqwest::Method::POST,
            "/networks",
            &[],
            Some(&json!({ "networks": bodies })),
        )
        .await
        .expect("bulk create networks");
    let v: Value = resp.json("neutron", "bulk create").unwrap();
    v["networks"]
        .as_array()
        .expect("networks")
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect()
}

/// Neutron's default quota is 100 networks a project.
async fn raise_network_quota(lab: &Lab, networks: u32) {
    let session = lab.neutron.session();
    let project = session
        .token()
        .await
        .expect("token")
        .project_id
        .clone()
        .expect("a project-scoped token");
    let base = lab.neutron.base_url().await.unwrap();
    session
        .call(
            "neutron.update_quota",
            &base,
            reqwest::Method::PUT,
            &format!("/quotas/{project}"),
            &[],
            Some(&json!({"quota": {"network": networks}})),
        )
        .await
        .expect("raise the network quota");
}
