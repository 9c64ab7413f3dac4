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
