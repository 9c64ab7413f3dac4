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

/// `--ip-range` is the Docker pool and the Neutron subnet, as
/// kuryr-libnetwork makes them; `--aux-address` is reserved as a port
/// until ReleaseAddress.
#[tokio::test]
async fn ip_range_and_aux_addresses() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);

        // kuryr-libnetwork's contract: with --ip-range the Docker pool,
        // `kuryrPool-<range>` and the Neutron subnet are the range itself
        // (so each driver finds the other's networks); --subnet only
        // contains it.
        for (k, range) in [(0, "128/25"), (1, "0/25")] {
            let cidr = lab.cidr4(k);
            let range = format!("{}.{range}", lab.ip4(k, 0).rsplit_once('.').unwrap().0);
            lab.track_cidr(&range);
            let pool = api
                .ok(
                    "/IpamDriver.RequestPool",
                    requests::request_pool(&cidr, &range, false, json!({})),
                )
                .await;
            assert_eq!(pool["Pool"], range, "Docker's pool is the --ip-range");
            let pid = s(&pool["PoolID"]).to_string();
            let sp = lab.pool(&pid).await.expect("the pool");
            assert_eq!(sp.name, format!("kuryrPool-{range}"));
            assert_eq!(sp.prefixes, vec![range.clone()]);
            let gw = s(&pool["Data"][GATEWAY_KEY]).to_string();
            let first = net_of(&range).hosts().next().unwrap();
            assert_eq!(gw, format!("{first}/25"));
            let net = lab::Net {
                nid: docker_id(),
                pool_id: pid.clone(),
                cidr: range.clone(),
                gateway: gw.clone(),
            };
            api.ok(
                "/NetworkDriver.CreateNetwork",
                requests::create_network(
                    &net.nid,
                    json!({}),
                    vec![requests::ipam_data(&range, &gw)],
                    vec![],
                ),
            )
            .await;
            let nnet = lab.network_of(&net.nid).await;
            let subnet = lab.subnets_in(&nnet.id).await.remove(0);
            assert_eq!(subnet.cidr, range, "the subnet is the --ip-range");
            assert_eq!(subnet.name, format!("kuryr-subnet-{range}"));
            let ep = api.start_container(&net).await;
            let ip = ip_of(&ep.address);
            assert!(
                net_of(&range).contains(&ip),
                "{ip} outside --ip-range {range}"
            );
            assert!(ep.address.ends_with("/25"), "{}", ep.address);
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

/// The same `--ip` twice: a second RequestAddress while the first still
/// holds the address is refused, on this daemon and on another host's
/// (the pending port is bound to the host that handed it out); and a
/// ReleaseAddress from another host never deletes a port an endpoint
/// holds.
#[tokio::test]
async fn the_same_ip_is_handed_out_once() {
    lab::run(async |lab: &Lab| {
        let a = lab.driver().await;
        // Another host (its own host id; its ports need no agent here).
        let other_host = kuryr::driver::DriverConfig {
            host_id: format!("{}-b", lab.host),
            ..lab.config()
        };
        let b = lab
            .driver_with(other_host, kuryr::binding::Binder::Noop)
            .await;
        let (api_a, api_b) = (lab.api(&a), lab.api(&b));
        let net = api_a.create_network(&lab.cidr4(0)).await;
        let ip = lab.ip4(0, 50);
        let request = requests::request_address(&net.pool_id, &ip);
        let first = api_a
            .ok("/IpamDriver.RequestAddress", request.clone())
            .await;
        for api in [&api_a, &api_b] {
            let again = api
                .fails("/IpamDriver.RequestAddress", request.clone())
                .await;
            assert!(again.err().contains("already allocated"), "{}", again.err());
        }
        let winner = api_a.start_container_at(&net, s(&first["Address"])).await;
        // A stray release from the other host: the endpoint's port stays.
        api_b
            .ok(
                "/IpamDriver.ReleaseAddress",
                requests::release_address(&net.pool_id, &ip),
            )
            .await;
        let ports = lab.ports_of(&winner.eid).await;
        assert_eq!(
            ports.len(),
            1,
            "the endpoint's port survives another host's release"
        );
        api_a.stop_container(&net, &winner).await;
        assert!(lab.port_with_ip(&ip).await.is_empty());
        api_a.remove_network(&net).await;
        lab.assert_clean().await;
    })
    .await;
}

/// Two Docker networks on two users' Neutron networks whose subnets share
/// a CIDR (`--ipam-opt neutron.subnet.name`, kuryr-libnetwork's fullstack
/// same-ip test): each gets its own pool, each subnet carries its own
/// pool's PoolID, and one `--ip` on both lands on each network's own user
/// port. CreateNetwork used to take any pool of the CIDR from the index,
/// so both subnets got the same PoolID and the second `--ip` went to the
/// first network's port ("already allocated").
#[tokio::test]
async fn two_user_subnets_of_one_cidr_each_keep_their_own_pool() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let cidr = lab.cidr4(0);
        let ip = lab.ip4(0, 10);
        let mut nets = Vec::new();
        for _ in 0..2 {
            let user = user_network(lab, &cidr).await;
            let port = user_port(lab, &user, &ip, None).await;
            let opts = json!({"neutron.subnet.name": user.subnet_name});
            let net = api.request_pool_for(&docker_id(), &cidr, opts).await;
            nets.push((user, port, net));
        }
        // Both pools exist before either network (parallel `docker network
        // create`s): each network must still pick its own.
        for (user, _, net) in &nets {
            api.create_network_on(net, json!({"neutron.net.name": user.name}))
                .await;
        }
        assert_ne!(
            nets[0].2.pool_id, nets[1].2.pool_id,
            "a pool per user subnet"
        );
        for (user, _, net) in &nets {
            let subnet = lab
                .subnets_in(&user.id)
                .await
                .into_iter()
                .next()
                .expect("the user's subnet");
            let pools: Vec<&String> = nets
                .iter()
                .map(|(_, _, n)| &n.pool_id)
                .filter(|p| subnet.tags.contains(p))
                .collect();
            assert_eq!(
                pools,
                [&net.pool_id],
                "subnet {} tags {:?}",
                subnet.id,
                subnet.tags
            );
        }
        let mut eps = Vec::new();
        for (_, port, net) in &nets {
            let addr = api
                .ok(
                    "/IpamDriver.RequestAddress",
                    requests::request_address(&net.pool_id, &ip),
                )
                .await;
            let ep = api.start_container_at(net, s(&addr["Address"])).await;
            let claimed: Vec<String> = lab
                .ports_of(&ep.eid)
                .await
                .into_iter()
                .map(|p| p.id)
                .collect();
            assert_eq!(
                claimed,
                std::slice::from_ref(&port.id),
                "the endpoint took its own network's user port"
            );
            eps.push(ep);
        }
        for ((_, _, net), ep) in nets.iter().zip(&eps) {
            api.stop_container(net, ep).await;
            api.remove_network(net).await;
        }
        for (_, port, _) in &nets {
            assert!(
                lab.port(&port.id).await.is_some(),
                "the user's port {} stays",
                port.id
            );
        }
        lab.assert_clean().await;
    })
    .await;
}

/// ReleasePool gives a user's pool (`--ipam-opt neutron.pool.uuid`) back
/// without kuryr's `kuryr.subnetpool.existing` tag.
#[tokio::test]
async fn release_pool_gives_a_users_pool_back_untagged() {
    lab::run(async |lab: &Lab| {
        let n = &lab.neutron;
        let cidr = lab.cidr4(0);
        let user = n
            .create_subnetpool(&kuryr_openstack::neutron::SubnetPoolCreate {
                name: format!("kt-user-pool-{:x}", common::env::random_u64()),
                prefixes: vec![cidr.clone()],
                default_prefixlen: Some(24),
                ..Default::default()
            })
            .await
            .unwrap();
        lab.track_pool(&user.id);
        n.replace_tags(TagResource::SubnetPool, &user.id, &["user-pool"])
            .await
            .unwrap();
        let d = lab.driver().await;
        let api = lab.api(&d);
        let net = api
            .create_network_with(&cidr, json!({"neutron.pool.uuid": user.id}), json!({}))
            .await;
        assert_eq!(net.pool_id, user.id);
        let tags = lab.pool(&user.id).await.unwrap().tags;
        assert!(
            tags.contains(&"kuryr.subnetpool.existing".to_string()),
            "{tags:?}"
        );
        api.remove_network(&net).await;
        let after = lab.pool(&user.id).await.expect("the user's pool is kept");
        assert_eq!(after.tags, vec!["user-pool".to_string()]);
        n.delete_subnetpool(&user.id).await.unwrap();
        lab.assert_clean().await;
    })
    .await;
}
