//! Endpoints: existing ports, dual stack, `--expose`, `--mac-address`.

use super::*;

/// `--ip` of a free user port reuses that port and gives it back as it was;
/// a port in use is refused.
#[tokio::test]
async fn existing_port_is_reused_by_ip_and_restored() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let net = api.create_network(&lab.cidr4(0)).await;
        let nnet = lab.network_of(&net.nid).await;
        let subnet = lab.subnets_in(&nnet.id).await.remove(0);
        let n = &lab.neutron;
        let user_port = |ip: String, device_id: &str| PortCreate {
            network_id: nnet.id.clone(),
            name: Some(format!("kt-user-port-{ip}")),
            admin_state_up: Some(true),
            device_id: (!device_id.is_empty()).then(|| device_id.to_string()),
            fixed_ips: Some(vec![FixedIp {
                subnet_id: subnet.id.clone(),
                ip_address: ip,
            }]),
            ..Default::default()
        };
        let ip = lab.ip4(0, 50);
        let free = n.create_port(&user_port(ip.clone(), "")).await.unwrap();
        lab.track_user_port(&free.id);
        n.replace_tags(TagResource::Port, &free.id, &["user-port"])
            .await
            .unwrap();

        let addr = api
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_address(&net.pool_id, &ip),
            )
            .await;
        assert_eq!(addr["Address"], format!("{ip}/24"));
        assert_eq!(
            lab.port_with_ip(&ip)
                .await
                .iter()
                .map(|p| &p.id)
                .collect::<Vec<_>>(),
            vec![&free.id],
            "no second port for that IP"
        );
        let p = lab.port(&free.id).await.unwrap();
        assert!(
            p.tags.iter().any(|t| t == "kuryr.port.existing"),
            "{:?}",
            p.tags
        );

        let ep = api.start_container_at(&net, &format!("{ip}/24")).await;
        assert_eq!(ep.mac, free.mac_address, "Neutron's MAC, not a new one");
        let p = lab.port(&free.id).await.unwrap();
        assert_eq!(p.device_id, ep.eid);
        assert_eq!(p.device_owner, "compute:kuryr");
        assert_eq!(p.host_id, lab.host);
        for t in id_tags(&ep.eid) {
            assert!(p.tags.contains(&t), "{:?}", p.tags);
        }
        assert_eq!(
            lab.ports_of(&ep.eid)
                .await
                .iter()
                .map(|p| &p.id)
                .collect::<Vec<_>>(),
            vec![&free.id]
        );
        assert_eq!(
            ep.join["InterfaceName"]["SrcName"],
            format!("t_c{}", &free.id[..11])
        );

        // A second container asking for the same IP while it is in use.
        let again = api
            .fails(
                "/IpamDriver.RequestAddress",
                requests::request_address(&net.pool_id, &ip),
            )
            .await;
        assert!(again.err().contains("in use"), "{}", again.json);

        api.stop_container(&net, &ep).await;
        let p = lab
            .port(&free.id)
            .await
            .expect("a user's port is never deleted");
        assert_eq!(p.device_owner, "");
        assert_eq!(p.device_id, "");
        assert_eq!(p.host_id, "");
        assert_eq!(p.mac_address, free.mac_address);
        assert_eq!(p.tags, vec!["user-port".to_string()]);

        // A user port that is in use (a device owns it) is refused.
        let ip2 = lab.ip4(0, 51);
        let busy = n
            .create_port(&user_port(ip2.clone(), "some-vm-0001"))
            .await
            .unwrap();
        lab.track_user_port(&busy.id);
        let refused = api
            .fails(
                "/IpamDriver.RequestAddress",
                requests::request_address(&net.pool_id, &ip2),
            )
            .await;
        assert!(
            refused.err().contains("in use") && refused.err().contains(&busy.id),
            "{}",
            refused.json
        );
        let b = lab.port(&busy.id).await.unwrap();
        assert!(b.tags.is_empty(), "{:?}", b.tags);
        assert_eq!(b.device_id, "some-vm-0001");

        // The user's ports go before `docker network rm`.
        n.delete_port(&free.id).await.unwrap();
        n.delete_port(&busy.id).await.unwrap();
        api.remove_network(&net).await;
        lab.assert_clean().await;
    })
    .await;
}

/// IPv4 + IPv6: two subnets, one port holding both addresses, both gateways.
#[tokio::test]
async fn dual_stack_endpoint_has_one_port_with_both_addresses() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let (c4, c6) = (lab.cidr4(0), lab.cidr6(0));
        let p4 = api
            .ok(
                "/IpamDriver.RequestPool",
                requests::request_pool(&c4, "", false, json!({})),
            )
            .await;
        let p6 = api
            .ok(
                "/IpamDriver.RequestPool",
                requests::request_pool(&c6, "", true, json!({})),
            )
            .await;
        let (pid4, pid6) = (s(&p4["PoolID"]).to_string(), s(&p6["PoolID"]).to_string());
        assert_ne!(pid4, pid6);
        assert_eq!(p6["Pool"], c6);
        let gw4 = s(&p4["Data"][GATEWAY_KEY]).to_string();
        let gw6 = s(&p6["Data"][GATEWAY_KEY]).to_string();
        let first6 = match net_of(&c6) {
            IpNet::V6(n) => std::net::Ipv6Addr::from(u128::from(n.network()) + 1),
            IpNet::V4(_) => unreachable!(),
        };
        assert_eq!(gw6, format!("{first6}/64"));

        let nid = docker_id();
        api.ok(
            "/NetworkDriver.CreateNetwork",
            requests::create_network(
                &nid,
                json!({}),
                vec![requests::ipam_data(&c4, &gw4)],
                vec![requests::ipam_data(&c6, &gw6)],
            ),
        )
        .await;
        let nnet = lab.network_of(&nid).await;
        let subnets = lab.subnets_in(&nnet.id).await;
        assert_eq!(subnets.len(), 2, "{subnets:#?}");
        let s6 = subnets
            .iter()
            .find(|s| s.ip_version == 6)
            .expect("v6 subnet");
        assert_eq!(s6.cidr, c6);
        assert_eq!(s6.subnetpool_id.as_deref(), Some(pid6.as_str()));
        assert_eq!(s6.gateway_ip.as_deref(), Some(plain_ip(&gw6)));

        let a4 = s(&api
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_address(&pid4, ""),
            )
            .await["Address"])
        .to_string();
        let a6 = s(&api
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_address(&pid6, ""),
            )
            .await["Address"])
        .to_string();
        assert!(
            net_of(&c6).contains(&ip_of(&a6)) && a6.ends_with("/64"),
            "{a6}"
        );
        let eid = docker_id();
        let created = api
            .ok(
                "/NetworkDriver.CreateEndpoint",
                requests::create_endpoint(&nid, &eid, &a4, &a6),
            )
            .await;
        let ports = lab.ports_of(&eid).await;
        assert_eq!(ports.len(), 1, "{ports:#?}");
        let port = &ports[0];
        let ips: BTreeSet<IpAddr> = port
            .fixed_ips
            .iter()
            .map(|f| f.ip_address.parse().unwrap())
            .collect();
        assert_eq!(ips, BTreeSet::from([ip_of(&a4), ip_of(&a6)]));
        assert_eq!(created["Interface"]["MacAddress"], port.mac_address);
        // The other IPAM placeholder is gone: only this port holds either IP.
        let in_net: Vec<_> = lab.ports_in(&nnet.id).await;
        assert_eq!(in_net.len(), 1, "{in_net:#?}");

        let join = api
            .ok("/NetworkDriver.Join", requests::join(&nid, &eid))
            .await;
        assert_eq!(join["Gateway"], plain_ip(&gw4));
        assert_eq!(join["GatewayIPv6"], plain_ip(&gw6));

        api.ok("/NetworkDriver.Leave", requests::endpoint(&nid, &eid))
            .await;
        api.ok(
            "/NetworkDriver.DeleteEndpoint",
            requests::endpoint(&nid, &eid),
        )
        .await;
        api.ok(
            "/IpamDriver.ReleaseAddress",
            requests::release_address(&pid4, plain_ip(&a4)),
        )
        .await;
        api.ok(
            "/IpamDriver.ReleaseAddress",
            requests::release_address(&pid6, plain_ip(&a6)),
        )
        .await;
        assert!(lab.port(&port.id).await.is_none());
        for (pid, gw) in [(&pid4, &gw4), (&pid6, &gw6)] {
            api.ok(
                "/IpamDriver.ReleaseAddress",
                requests::release_address(pid, plain_ip(gw)),
            )
            .await;
            api.ok("/IpamDriver.ReleasePool", requests::release_pool(pid))
                .await;
        }
        api.ok("/NetworkDriver.DeleteNetwork", requests::network(&nid))
            .await;
        assert!(lab.pool(&pid4).await.is_none() && lab.pool(&pid6).await.is_none());
        lab.assert_clean().await;
    })
    .await;
}

/// `--expose`: a security group with one rule per run of ports, attached to
/// the port, detached and deleted by Revoke.
#[tokio::test]
async fn exposed_ports_become_a_security_group() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let net = api.create_network(&lab.cidr4(0)).await;
        let ep = api.start_container(&net).await;
        let port = lab.ports_of(&ep.eid).await.remove(0);
        let exposed =
            json!([{"Proto": 6, "Port": 80}, {"Proto": 6, "Port": 81}, {"Proto": 17, "Port": 53}]);
        let name = format!("{}-exposed_ports", port.id);
        let n = &lab.neutron;

        let mut first = None;
        for round in 0..2 {
            api.ok(
                "/NetworkDriver.ProgramExternalConnectivity",
                requests::program(&net.nid, &ep.eid, exposed.clone()),
            )
            .await;
            let sgs = n
                .list_security_groups(&Query::new().eq("name", &name))
                .await
                .unwrap();
            assert_eq!(sgs.len(), 1, "round {round}: {sgs:#?}");
            let sg = &sgs[0];
            assert_eq!(sg.description, "Docker exposed ports created by Kuryr.");
            if let Some(id) = &first {
                assert_eq!(id, &sg.id, "the same group both times");
            }
            first = Some(sg.id.clone());
            let rules = n
                .list_security_group_rules(&Query::new().eq("security_group_id", &sg.id))
                .await
                .unwrap();
            let ingress: BTreeSet<(String, Option<u32>, Option<u32>, String)> = rules
                .iter()
                .filter(|r| r.direction == "ingress")
                .map(|r| {
                    (
                        r.protocol.clone().unwrap_or_default(),
                        r.port_range_min,
                        r.port_range_max,
                        r.ethertype.clone(),
                    )
                })
                .collect();
            assert_eq!(
                ingress,
                BTreeSet::from([
                    ("tcp".into(), Some(80), Some(81), "IPv4".into()),
                    ("udp".into(), Some(53), Some(53), "IPv4".into()),
                ]),
                "round {round}"
            );
            let p = lab.port(&port.id).await.unwrap();
            assert!(
                p.security_groups.contains(&sg.id),
                "{:?}",
                p.security_groups
            );
            for g in &port.security_groups {
                assert!(p.security_groups.contains(g), "the port keeps its groups");
            }
        }
        let sg_id = first.unwrap();

        for _ in 0..2 {
            api.ok(
                "/NetworkDriver.RevokeExternalConnectivity",
                requests::endpoint(&net.nid, &ep.eid),
            )
            .await;
            let p = lab.port(&port.id).await.unwrap();
            assert!(!p.security_groups.contains(&sg_id));
            assert_eq!(p.security_groups, port.security_groups);
            assert!(
                n.list_security_groups(&Query::new().eq("name", &name))
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
        api.stop_container(&net, &ep).await;
        api.remove_network(&net).await;
        lab.assert_clean().await;
    })
    .await;
}

/// `--mac-address`: Docker's MAC goes on the port and is not echoed back
/// (dockerd refuses a reply that repeats a field it sent); a user's port
/// gets its own MAC back when Docker is done with it.
#[tokio::test]
async fn docker_mac_address_is_applied_and_a_users_mac_restored() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let net = api.create_network(&lab.cidr4(0)).await;
        let r = common::env::random_u64();
        let mac = |i: u8| {
            format!(
                "02:42:{:02x}:{:02x}:{:02x}:{i:02x}",
                r as u8,
                (r >> 8) as u8,
                (r >> 16) as u8
            )
        };

        // A kuryr IPAM port: already bound to this host by RequestAddress.
        let addr = api
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_address(&net.pool_id, ""),
            )
            .await;
        let address = s(&addr["Address"]).to_string();
        let eid = docker_id();
        let mut body = requests::create_endpoint(&net.nid, &eid, &address, "");
        body["Interface"]["MacAddress"] = json!(mac(1).to_uppercase());
        let created = api.ok("/NetworkDriver.CreateEndpoint", body).await;
        assert_eq!(
            created,
            json!({"Interface": {}}),
            "nothing Docker gave is echoed"
        );
        let port = lab.ports_of(&eid).await.remove(0);
        assert_eq!(port.mac_address, mac(1));
        assert_eq!(port.host_id, lab.host);
        let ep = lab::Ep {
            eid,
            address,
            mac: mac(1),
            join: Value::Null,
        };
        api.stop_container(&net, &ep).await;
        assert!(lab.port(&port.id).await.is_none());

        // A user's port reused by --ip.
        let nnet = lab.network_of(&net.nid).await;
        let subnet = lab.subnets_in(&nnet.id).await.remove(0);
        let ip = lab.ip4(0, 60);
        let user = lab
            .neutron
            .create_port(&PortCreate {
                network_id: nnet.id.clone(),
                name: Some("kt-user-port-mac".into()),
                fixed_ips: Some(vec![FixedIp {
                    subnet_id: subnet.id.clone(),
                    ip_address: ip.clone(),
                }]),
                ..Default::default()
            })
            .await
            .unwrap();
        lab.track_user_port(&user.id);
        api.ok(
            "/IpamDriver.RequestAddress",
            requests::request_address(&net.pool_id, &ip),
        )
        .await;
        let eid = docker_id();
        let mut body = requests::create_endpoint(&net.nid, &eid, &format!("{ip}/24"), "");
        body["Interface"]["MacAddress"] = json!(mac(2));
        let created = api.ok("/NetworkDriver.CreateEndpoint", body).await;
        assert_eq!(created, json!({"Interface": {}}));
        assert_eq!(lab.port(&user.id).await.unwrap().mac_address, mac(2));
        let ep = lab::Ep {
            eid,
            address: format!("{ip}/24"),
            mac: mac(2),
            join: Value::Null,
        };
        api.stop_container(&net, &ep).await;
        let back = lab.port(&user.id).await.unwrap();
        assert_eq!(
            back.mac_address, user.mac_address,
            "the user's MAC is restored"
        );
        assert!(back.tags.is_empty(), "{:?}", back.tags);
        assert_eq!(
            (
                back.device_id.as_str(),
                back.device_owner.as_str(),
                back.host_id.as_str()
            ),
            ("", "", "")
        );

        lab.neutron.delete_port(&user.id).await.unwrap();
        api.remove_network(&net).await;
        lab.assert_clean().await;
    })
    .await;
}

/// DeleteEndpoint runs every step even when one fails: with the exposed
/// ports' group still used elsewhere (Neutron refuses to delete it), the
/// host side is unbound all the same and the first error is reported; the
/// group is collected as an orphan once it is free.
#[tokio::test]
async fn delete_endpoint_unbinds_the_host_even_when_neutron_refuses_a_step() {
    use kuryr::binding::{Binder, VethConfig};
    lab::run(async |lab: &Lab| {
        common::netns::require_root("host binding");
        let d = lab
            .driver_with(lab.config(), Binder::veth(VethConfig::default()))
            .await;
        let api = lab.api(&d);
        let net = api.create_network(&lab.cidr4(0)).await;
        let ep = api.start_container(&net).await;
        api.ok(
            "/NetworkDriver.ProgramExternalConnectivity",
            requests::program(&net.nid, &ep.eid, json!([{"Proto": 6, "Port": 8080}])),
        )
        .await;
        let port = lab.ports_of(&ep.eid).await.remove(0);
        let tap = format!("tap{}", &port.id[..11]);
        assert!(common::host::link_exists(&tap));
        let sg = lab
            .neutron
            .list_security_groups(&Query::new().eq("name", format!("{}-exposed_ports", port.id)))
            .await
            .unwrap()
            .remove(0);
        // Someone else's port uses the group: Neutron refuses to delete it.
        let nnet = lab.network_of(&net.nid).await;
        let holder = lab
            .neutron
            .create_port(&PortCreate {
                network_id: nnet.id.clone(),
                security_groups: Some(vec![sg.id.clone()]),
                ..Default::default()
            })
            .await
            .unwrap();
        lab.track_user_port(&holder.id);
        let reply = api
            .fails(
                "/NetworkDriver.DeleteEndpoint",
                requests::endpoint(&net.nid, &ep.eid),
            )
            .await;
        assert!(
            reply.err().contains(&sg.id) || reply.err().contains("in use"),
            "{}",
            reply.err()
        );
        assert!(
            !common::host::link_exists(&tap),
            "{tap} unbound despite the Neutron error"
        );
        // dockerd does not retry a failed DeleteEndpoint: ReleaseAddress
        // comes next and releases the port.
        api.ok(
            "/IpamDriver.ReleaseAddress",
            requests::release_address(&net.pool_id, plain_ip(&ep.address)),
        )
        .await;
        assert!(lab.port(&port.id).await.is_none());
        // The group Neutron would not delete goes with orphan collection
        // once it is free: its port is gone.
        lab.neutron.delete_port(&holder.id).await.unwrap();
        let collected = d.collect_orphans().await.expect("orphan collection");
        assert!(collected.security_groups.contains(&sg.id), "{collected:?}");
        let left = lab
            .neutron
            .list_security_groups(&Query::new().eq("name", format!("{}-exposed_ports", port.id)))
            .await
            .unwrap();
        assert!(left.is_empty(), "{left:#?}");
        api.remove_network(&net).await;
        lab.assert_clean().await;
    })
    .await;
}

/// A ProgramExternalConnectivity whose port update Neutron refuses (a
/// user's port without port security, reused by `--ip`) leaves no
/// security group behind.
#[tokio::test]
async fn a_failed_expose_removes_its_security_group() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let user = user_network(lab, &lab.cidr4(0)).await;
        let net = api
            .create_network_with(&user.cidr, json!({}), json!({"neutron.net.uuid": user.id}))
            .await;
        let ip = lab.ip4(0, 60);
        let port = user_port(lab, &user, &ip, Some(false)).await;
        let addr = api
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_address(&net.pool_id, &ip),
            )
            .await;
        let eid = docker_id();
        api.ok(
            "/NetworkDriver.CreateEndpoint",
            requests::create_endpoint(&net.nid, &eid, s(&addr["Address"]), ""),
        )
        .await;
        api.fails(
            "/NetworkDriver.ProgramExternalConnectivity",
            requests::program(&net.nid, &eid, json!([{"Proto": 6, "Port": 80}])),
        )
        .await;
        let left = lab
            .neutron
            .list_security_groups(&Query::new().eq("name", format!("{}-exposed_ports", port.id)))
            .await
            .unwrap();
        assert!(
            left.is_empty(),
            "the group of a failed expose is deleted: {left:#?}"
        );
        let ep = lab::Ep {
            eid,
            address: s(&addr["Address"]).to_string(),
            mac: String::new(),
            join: json!({}),
        };
        api.stop_container(&net, &ep).await;
        api.remove_network(&net).await;
        lab.assert_clean().await;
    })
    .await;
}

/// A user's dual-stack port (`--ip` and `--ip6` of a port made beforehand,
/// as kuryr-libnetwork's fullstack test does): Docker asks for its IPv4
/// and then its IPv6 address; each is handed out once, both go to one
/// endpoint on that very port, and the port is given back as it was.
#[tokio::test]
async fn a_users_dual_stack_port_is_handed_out_once_per_address() {
    lab::run(async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let (c4, c6) = (lab.cidr4(0), lab.cidr6(0));
        let pool = |cidr: &str, v6: bool| requests::request_pool(cidr, "", v6, json!({}));
        let p4 = api.ok("/IpamDriver.RequestPool", pool(&c4, false)).await;
        let p6 = api.ok("/IpamDriver.RequestPool", pool(&c6, true)).await;
        let (pid4, pid6) = (s(&p4["PoolID"]).to_string(), s(&p6["PoolID"]).to_string());
        let gw4 = s(&p4["Data"][GATEWAY_KEY]).to_string();
        let gw6 = s(&p6["Data"][GATEWAY_KEY]).to_string();
        let nid = docker_id();
        api.ok(
            "/NetworkDriver.CreateNetwork",
            requests::create_network(
                &nid,
                json!({}),
                vec![requests::ipam_data(&c4, &gw4)],
                vec![requests::ipam_data(&c6, &gw6)],
            ),
        )
        .await;
        let nnet = lab.network_of(&nid).await;
        let subnets = lab.subnets_in(&nnet.id).await;
        let fixed_ips = subnets
            .iter()
            .map(|sub| FixedIp {
                subnet_id: sub.id.clone(),
                ip_address: String::new(),
            })
            .collect();
        // The user's port: one address in each subnet, chosen by Neutron.
        let user = lab
            .neutron
            .create_port(&PortCreate {
                network_id: nnet.id.clone(),
                name: Some("kt-user-dual".into()),
                fixed_ips: Some(fixed_ips),
                ..Default::default()
            })
            .await
            .unwrap();
        lab.track_user_port(&user.id);
        let ip_in = |v6: bool| {
            user.fixed_ips
                .iter()
                .map(|f| f.ip_address.clone())
                .find(|a| a.contains(':') == v6)
                .expect("an address of each family")
        };
        let (ip4, ip6) = (ip_in(false), ip_in(true));

        let a4 = api
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_address(&pid4, &ip4),
            )
            .await;
        let a6 = api
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_address(&pid6, &ip6),
            )
            .await;
        assert_eq!(plain_ip(s(&a4["Address"])), ip4);
        assert_eq!(plain_ip(s(&a6["Address"])), ip6);
        // Handed out once: a second container asking for either is refused.
        for (pid, ip) in [(&pid4, &ip4), (&pid6, &ip6)] {
            let again = api
                .fails(
                    "/IpamDriver.RequestAddress",
                    requests::request_address(pid, ip),
                )
                .await;
            assert!(again.err().contains("already allocated"), "{}", again.json);
        }
        let eid = docker_id();
        api.ok(
            "/NetworkDriver.CreateEndpoint",
            requests::create_endpoint(&nid, &eid, s(&a4["Address"]), s(&a6["Address"])),
        )
        .await;
        let ports = lab.ports_of(&eid).await;
        assert_eq!(
            ports.iter().map(|p| &p.id).collect::<Vec<_>>(),
            vec![&user.id],
            "the endpoint is the user's port"
        );
        api.ok(
            "/NetworkDriver.DeleteEndpoint",
            requests::endpoint(&nid, &eid),
        )
        .await;
        for (pid, ip) in [(&pid4, &ip4), (&pid6, &ip6)] {
            api.ok(
                "/IpamDriver.ReleaseAddress",
                requests::release_address(pid, ip),
            )
            .await;
        }
        let back = lab.port(&user.id).await.expect("a user's port is kept");
        assert!(back.tags.is_empty(), "{:?}", back.tags);
        assert_eq!(back.device_owner, "");
        assert_eq!(back.fixed_ips.len(), 2);

        lab.neutron.delete_port(&user.id).await.unwrap();
        for (pid, gw) in [(&pid4, &gw4), (&pid6, &gw6)] {
            api.ok(
                "/IpamDriver.ReleaseAddress",
                requests::release_address(pid, plain_ip(gw)),
            )
            .await;
            api.ok("/IpamDriver.ReleasePool", requests::release_pool(pid))
                .await;
        }
        api.ok("/NetworkDriver.DeleteNetwork", requests::network(&nid))
            .await;
        lab.assert_clean().await;
    })
    .await;
}
