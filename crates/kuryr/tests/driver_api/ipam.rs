//! IPAM: gateways, `--ip-range`, `--aux-address`.

use super::*;

/// `--gateway` is optional; when given it becomes Neutron's gateway_ip.
#[tokio::test]
async fn gateway_is_optional_and_honoured_when_given() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);

        // Without --gateway: RequestPool's Data has it, dockerd sends no
        // gateway RequestAddress.
        let net = api.create_network(&lab.cidr4(0)).await;
        assert_eq!(net.gateway, format!("{}/24", lab.ip4(0, 1)));
        let nnet = lab.network_of(&net.nid).await;
        assert_eq!(
            lab.subnets_in(&nnet.id).await[0].gateway_ip.as_deref(),
            Some(lab.ip4(0, 1).as_str())
        );
        let ep = api.start_container(&net).await;
        assert_eq!(ep.join["Gateway"], lab.ip4(0, 1).as_str());
        api.stop_container(&net, &ep).await;
        api.remove_network(&net).await;

        // A gateway request without an address (other IPAM callers) gets
        // an address, never "".
        let cidr = lab.cidr4(1);
        let pool = api
            .ok(
                "/IpamDriver.RequestPool",
                requests::request_pool(&cidr, "", false, json!({})),
            )
            .await;
        let pid = s(&pool["PoolID"]).to_string();
        let g = api
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_gateway(&pid, ""),
            )
            .await;
        assert_eq!(g["Address"], format!("{}/24", lab.ip4(1, 1)));

        // --gateway x: RequestAddress(gateway, x) -> x/len before the
        // network exists; CreateNetwork sets it as gateway_ip.
        let x = lab.ip4(1, 254);
        let g = api
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_gateway(&pid, &x),
            )
            .await;
        assert_eq!(g["Address"], format!("{x}/24"));
        let net = lab::Net {
            nid: docker_id(),
            pool_id: pid.clone(),
            cidr: cidr.clone(),
            gateway: format!("{x}/24"),
        };
        api.ok(
            "/NetworkDriver.CreateNetwork",
            requests::create_network(
                &net.nid,
                json!({}),
                vec![requests::ipam_data(&cidr, &net.gateway)],
                vec![],
            ),
        )
        .await;
        let nnet = lab.network_of(&net.nid).await;
        let subnet = lab.subnets_in(&nnet.id).await.remove(0);
        assert_eq!(subnet.gateway_ip.as_deref(), Some(x.as_str()));
        // Once the subnet exists, the same gateway is confirmed and another
        // one is refused.
        let again = api
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_gateway(&pid, &x),
            )
            .await;
        assert_eq!(again["Address"], format!("{x}/24"));
        let other = api
            .fails(
                "/IpamDriver.RequestAddress",
                requests::request_gateway(&pid, &lab.ip4(1, 253)),
            )
            .await;
        assert!(other.err().contains("gateway"), "{}", other.json);

        let ep = api.start_container(&net).await;
        assert_eq!(ep.join["Gateway"], x.as_str());
        // The gateway address is not a port: its ReleaseAddress deletes nothing.
        let ports_before = lab.ports_in(&nnet.id).await.len();
        api.ok(
            "/IpamDriver.ReleaseAddress",
            requests::release_address(&pid, &x),
        )
        .await;
        assert_eq!(lab.ports_in(&nnet.id).await.len(), ports_before);
        api.stop_container(&net, &ep).await;
        api.remove_network(&net).await;
        lab.assert_clean().await;
    })
    .await;
}

/// `--ip-range` is the subnet's allocation pool; `--aux-address` is
/// reserved as a port until ReleaseAddress.
#[tokio::test]
async fn ip_range_and_aux_addresses() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);

        // --subnet c0 --ip-range <upper half>, gateway (.1) outside the range.
        // --subnet c1 --ip-range <lower half>, gateway (.1) inside it.
        for (k, range, want) in [(0, "128/25", vec![(128, 254)]), (1, "0/25", vec![(2, 127)])] {
            let cidr = lab.cidr4(k);
            let range = format!("{}.{range}", lab.ip4(k, 0).rsplit_once('.').unwrap().0);
            let pool = api
                .ok(
                    "/IpamDriver.RequestPool",
                    requests::request_pool(&cidr, &range, false, json!({})),
                )
                .await;
            assert_eq!(
                pool["Pool"], cidr,
                "Docker's pool is --subnet, not --ip-range"
            );
            let pid = s(&pool["PoolID"]).to_string();
            let gw = s(&pool["Data"][GATEWAY_KEY]).to_string();
            let net = lab::Net {
                nid: docker_id(),
                pool_id: pid.clone(),
                cidr: cidr.clone(),
                gateway: gw.clone(),
            };
            api.ok(
                "/NetworkDriver.CreateNetwork",
                requests::create_network(
                    &net.nid,
                    json!({}),
                    vec![requests::ipam_data(&cidr, &gw)],
                    vec![],
                ),
            )
            .await;
            let nnet = lab.network_of(&net.nid).await;
            let subnet = lab.subnets_in(&nnet.id).await.remove(0);
            assert_eq!(subnet.cidr, cidr, "the subnet is the whole --subnet");
            let pools: Vec<(String, String)> = subnet
                .allocation_pools
                .iter()
                .map(|p| (p.start.clone(), p.end.clone()))
                .collect();
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(a, b)| (lab.ip4(k, *a), lab.ip4(k, *b)))
                .collect();
            assert_eq!(pools, want, "--ip-range {range}");
            let ep = api.start_container(&net).await;
            let ip = ip_of(&ep.address);
            assert!(
                net_of(&range).contains(&ip),
                "{ip} outside --ip-range {range}"
            );
            api.stop_container(&net, &ep).await;
            api.remove_network(&net).await;
        }

        // --aux-address router=.2: RequestAddress before the network
        // exists, reserved by CreateNetwork, released by ReleaseAddress.
        let cidr = lab.cidr4(2);
        let aux = lab.ip4(2, 2);
        let pool = api
            .ok(
                "/IpamDriver.RequestPool",
                requests::request_pool(&cidr, "", false, json!({})),
            )
            .await;
        let pid = s(&pool["PoolID"]).to_string();
        let gw = s(&pool["Data"][GATEWAY_KEY]).to_string();
        let r = api
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_address(&pid, &aux),
            )
            .await;
        assert_eq!(r["Address"], format!("{aux}/24"));
        let nid = docker_id();
        let mut data = requests::ipam_data(&cidr, &gw);
        data["AuxAddresses"] = json!({"router": format!("{aux}/24")});
        api.ok(
            "/NetworkDriver.CreateNetwork",
            requests::create_network(&nid, json!({}), vec![data], vec![]),
        )
        .await;
        let nnet = lab.network_of(&nid).await;
        let reserved: Vec<_> = lab
            .port_with_ip(&aux)
            .await
            .into_iter()
            .filter(|p| p.network_id == nnet.id)
            .collect();
        assert_eq!(reserved.len(), 1, "aux address reserved as a port");
        // A container may not take it with --ip.
        let taken = api
            .fails(
                "/IpamDriver.RequestAddress",
                requests::request_address(&pid, &aux),
            )
            .await;
        assert!(taken.err().contains(&aux), "{}", taken.json);
        // Dynamic addresses never hit it (the gateway neither).
        let net = lab::Net {
            nid: nid.clone(),
            pool_id: pid.clone(),
            cidr: cidr.clone(),
            gateway: gw.clone(),
        };
        let ep = api.start_container(&net).await;
        assert_ne!(plain_ip(&ep.address), aux);
        api.stop_container(&net, &ep).await;

        api.ok(
            "/IpamDriver.ReleaseAddress",
            requests::release_address(&pid, plain_ip(&gw)),
        )
        .await;
        api.ok(
            "/IpamDriver.ReleaseAddress",
            requests::release_address(&pid, &aux),
        )
        .await;
        assert!(
            lab.port(&reserved[0].id).await.is_none(),
            "aux port released"
        );
        api.ok("/IpamDriver.ReleasePool", requests::release_pool(&pid))
            .await;
        api.ok("/NetworkDriver.DeleteNetwork", requests::network(&nid))
            .await;
        assert!(lab.neutron.get_network(&nnet.id).await.is_err());
        lab.assert_clean().await;
    })
    .await;
}
