//! The driver as dockerd 20.10 drives it, against the lab's real Neutron.
//!
//! Each test builds a [`kuryr::driver::Driver`] in-process (kuryr account,
//! `binding:host_id` = the lab's OVS host, no host-side binding), calls
//! `start()`, then talks to it only through `dispatch(path, body)` with
//! bodies shaped like dockerd's, and checks both the reply and what Neutron
//! holds afterwards, through a separate client. Every test has its own
//! CIDRs and random Docker IDs, cleans up after itself even when it fails,
//! and can run in parallel with the others.
//!
//! Needs the lab: `eval "$(lab/env kuryr)"; cargo nextest run -p kuryr --test driver_api`.

#[path = "common/driver.rs"]
mod lab;

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use kuryr_openstack::neutron::{FixedIp, NetworkCreate, PortCreate, SubnetCreate};
use kuryr_openstack::{Query, TagResource};
use lab::{Lab, assert_json_err, docker, docker_id, id_tags, plain_ip, writes};
use serde_json::{Value, json};

const GATEWAY_KEY: &str = "com.docker.network.gateway";

fn ip_of(cidr: &str) -> IpAddr {
    plain_ip(cidr).parse().expect("an IP")
}

fn net_of(cidr: &str) -> IpNet {
    cidr.parse().expect("a CIDR")
}

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

// ---------------------------------------------------------------------- 1

/// The whole life of one network and one container, step by step, with
/// Neutron checked after each step.
#[tokio::test]
async fn seed_flow() {
    lab::run(0, async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let cidr = lab.cidr4(0);
        let gw = lab.ip4(0, 1);

        // docker network create --subnet cidr: RequestPool, no gateway
        // RequestAddress (the pool's Data has it), CreateNetwork.
        let pool = api
            .ok(
                "/IpamDriver.RequestPool",
                docker::request_pool(&cidr, "", false, json!({})),
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
            docker::create_network(
                &nid,
                json!({}),
                vec![docker::ipam_data(&cidr, &format!("{gw}/24"))],
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
                docker::request_address(&pool_id, ""),
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
                docker::create_endpoint(&nid, &eid, &address, ""),
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
            .ok("/NetworkDriver.Join", docker::join(&nid, &eid))
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
            docker::program(&nid, &eid, json!([])),
        )
        .await;
        let info = api
            .ok(
                "/NetworkDriver.EndpointOperInfo",
                docker::endpoint(&nid, &eid),
            )
            .await;
        assert!(info["Value"].is_object(), "{info}");

        // docker stop: Revoke, Leave, DeleteEndpoint, ReleaseAddress.
        api.ok(
            "/NetworkDriver.RevokeExternalConnectivity",
            docker::endpoint(&nid, &eid),
        )
        .await;
        api.ok("/NetworkDriver.Leave", docker::endpoint(&nid, &eid))
            .await;
        api.ok(
            "/NetworkDriver.DeleteEndpoint",
            docker::endpoint(&nid, &eid),
        )
        .await;
        api.ok(
            "/IpamDriver.ReleaseAddress",
            docker::release_address(&pool_id, plain_ip(&address)),
        )
        .await;
        assert!(
            lab.port(&port.id).await.is_none(),
            "ReleaseAddress deletes the port"
        );

        // docker network rm: ReleaseAddress(gateway), ReleasePool, DeleteNetwork.
        api.ok(
            "/IpamDriver.ReleaseAddress",
            docker::release_address(&pool_id, &gw),
        )
        .await;
        api.ok("/IpamDriver.ReleasePool", docker::release_pool(&pool_id))
            .await;
        api.ok("/NetworkDriver.DeleteNetwork", docker::network(&nid))
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

// ---------------------------------------------------------------------- 2

/// Neutron round trips per Docker operation, from the driver's counters.
#[tokio::test]
async fn neutron_round_trips_per_docker_operation() {
    lab::run(1, async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let cidr = lab.cidr4(0);

        let (net, create) = api.neutron_calls(api.create_network(&cidr)).await;
        let (ep, start) = api.neutron_calls(api.start_container(&net)).await;
        let (_, stop) = api.neutron_calls(api.stop_container(&net, &ep)).await;
        let (ep2, start2) = api.neutron_calls(api.start_container(&net)).await;
        let (_, stop2) = api.neutron_calls(api.stop_container(&net, &ep2)).await;
        let (_, rm) = api.neutron_calls(api.remove_network(&net)).await;

        let rows = [
            // 6: the subnet is tagged with its PoolID, as kuryr-libnetwork
            // needs to release addresses (tests/interop_python.rs).
            ("network create", &create, 6),
            ("container start", &start, 3),
            ("container stop", &stop, 2),
            ("2nd container start", &start2, 3),
            ("2nd container stop", &stop2, 2),
            ("network rm", &rm, 4),
        ];
        println!("Neutron round trips per Docker operation:");
        for (what, delta, _) in &rows {
            println!(
                "  {what:<20} {:>2}  ({})",
                delta.neutron_calls(),
                delta.summary()
            );
        }
        for (what, delta, limit) in &rows {
            assert!(
                delta.neutron_calls() <= *limit,
                "{what}: {} Neutron calls > {limit}: {}",
                delta.neutron_calls(),
                delta.summary()
            );
        }
        // It did work: something was created and deleted each time.
        assert!(create.ops.contains_key("neutron.create_network"));
        assert!(start.ops.contains_key("neutron.create_port"));
        assert!(stop.ops.contains_key("neutron.delete_port"));
        assert!(rm.ops.contains_key("neutron.delete_network"));
        lab.assert_clean().await;
    })
    .await;
}

// ---------------------------------------------------------------------- 3

/// Every call made twice answers the same and creates nothing twice.
#[tokio::test]
async fn every_call_is_idempotent() {
    lab::run(2, async |lab: &Lab| {
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

        let req = docker::request_pool(&cidr, "", false, json!({}));
        let p1 = api.ok("/IpamDriver.RequestPool", req.clone()).await;
        let p2 = api.ok("/IpamDriver.RequestPool", req).await;
        assert_eq!(p1, p2);
        assert_eq!(lab.pools_named(&format!("kuryrPool-{cidr}")).await.len(), 1);
        let pool_id = s(&p1["PoolID"]).to_string();
        let gateway = s(&p1["Data"][GATEWAY_KEY]).to_string();

        let nid = docker_id();
        let create = docker::create_network(
            &nid,
            json!({}),
            vec![docker::ipam_data(&cidr, &gateway)],
            vec![],
        );
        assert_eq!(
            api.ok("/NetworkDriver.CreateNetwork", create.clone()).await,
            api.ok("/NetworkDriver.CreateNetwork", create).await
        );
        let net = lab.network_of(&nid).await;
        assert_eq!(lab.subnets_in(&net.id).await.len(), 1);

        // Gateway request (with --gateway) twice, after the network exists.
        let g = docker::request_gateway(&pool_id, plain_ip(&gateway));
        assert_eq!(
            api.ok("/IpamDriver.RequestAddress", g.clone()).await,
            api.ok("/IpamDriver.RequestAddress", g).await
        );

        // A given address (--ip) twice: one port. Dynamic requests are two
        // containers asking, so they must get two addresses.
        let ip = lab.ip4(0, 10);
        let r = docker::request_address(&pool_id, &ip);
        let a1 = api.ok("/IpamDriver.RequestAddress", r.clone()).await;
        let a2 = api.ok("/IpamDriver.RequestAddress", r).await;
        assert_eq!(a1, a2);
        assert_eq!(a1["Address"], format!("{ip}/24"));
        assert_eq!(lab.port_with_ip(&ip).await.len(), 1);
        let dyn1 = api
            .ok(
                "/IpamDriver.RequestAddress",
                docker::request_address(&pool_id, ""),
            )
            .await;
        let dyn2 = api
            .ok(
                "/IpamDriver.RequestAddress",
                docker::request_address(&pool_id, ""),
            )
            .await;
        assert_ne!(dyn1["Address"], dyn2["Address"]);
        for a in [&dyn1, &dyn2] {
            let rel = docker::release_address(&pool_id, plain_ip(s(&a["Address"])));
            api.ok("/IpamDriver.ReleaseAddress", rel).await;
            assert!(
                lab.port_with_ip(plain_ip(s(&a["Address"])))
                    .await
                    .is_empty()
            );
        }

        let eid = docker_id();
        let address = format!("{ip}/24");
        let ce = docker::create_endpoint(&nid, &eid, &address, "");
        let c1 = api.ok("/NetworkDriver.CreateEndpoint", ce.clone()).await;
        let c2 = api.ok("/NetworkDriver.CreateEndpoint", ce).await;
        assert_eq!(c1, c2);
        assert!(c1["Interface"]["MacAddress"].is_string(), "{c1}");
        let ports = lab.ports_of(&eid).await;
        assert_eq!(ports.len(), 1, "{ports:#?}");
        assert_eq!(lab.ports_in(&net.id).await.len(), 1);
        let port_id = ports[0].id.clone();

        let j1 = api
            .ok("/NetworkDriver.Join", docker::join(&nid, &eid))
            .await;
        let j2 = api
            .ok("/NetworkDriver.Join", docker::join(&nid, &eid))
            .await;
        assert_eq!(j1, j2);
        let info = docker::endpoint(&nid, &eid);
        assert_eq!(
            api.ok("/NetworkDriver.EndpointOperInfo", info.clone())
                .await,
            api.ok("/NetworkDriver.EndpointOperInfo", info).await
        );

        let expose = docker::program(&nid, &eid, json!([{"Proto": 6, "Port": 8080}]));
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
                docker::endpoint(&nid, &eid),
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
            api.ok("/NetworkDriver.Leave", docker::endpoint(&nid, &eid))
                .await;
        }
        for _ in 0..2 {
            api.ok(
                "/NetworkDriver.DeleteEndpoint",
                docker::endpoint(&nid, &eid),
            )
            .await;
        }
        for _ in 0..2 {
            api.ok(
                "/IpamDriver.ReleaseAddress",
                docker::release_address(&pool_id, &ip),
            )
            .await;
        }
        assert!(lab.port(&port_id).await.is_none());
        for _ in 0..2 {
            api.ok(
                "/IpamDriver.ReleaseAddress",
                docker::release_address(&pool_id, plain_ip(&gateway)),
            )
            .await;
        }
        for _ in 0..2 {
            api.ok("/IpamDriver.ReleasePool", docker::release_pool(&pool_id))
                .await;
        }
        for _ in 0..2 {
            api.ok("/NetworkDriver.DeleteNetwork", docker::network(&nid))
                .await;
        }
        // Late repeats, after everything is gone.
        api.ok("/IpamDriver.ReleasePool", docker::release_pool(&pool_id))
            .await;
        api.ok(
            "/IpamDriver.ReleaseAddress",
            docker::release_address(&pool_id, &ip),
        )
        .await;
        api.ok(
            "/NetworkDriver.DeleteEndpoint",
            docker::endpoint(&nid, &eid),
        )
        .await;
        lab.assert_clean().await;
    })
    .await;
}

// ---------------------------------------------------------------------- 4

/// Broken requests get a 400 with a JSON `Err` naming the problem, change
/// nothing in Neutron, and never bring the driver down.
#[tokio::test]
async fn malformed_requests_are_rejected_without_side_effects() {
    lab::run(3, async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        // Real objects, so well-formed parts of the bad requests refer to
        // something that exists and a wrong write would be visible.
        let net = api.create_network(&lab.cidr4(0)).await;
        let ep = api.start_container(&net).await;
        let nnet = lab.network_of(&net.nid).await;
        let count_ports = async || lab.ports_in(&nnet.id).await.len();
        let count_pools = async || {
            lab.pools_named(&format!("kuryrPool-{}", net.cidr)).await.len()
        };
        let ports_before = count_ports().await;
        let pools_before = count_pools().await;
        let before = api.calls();

        let nid = net.nid.as_str();
        let eid = ep.eid.as_str();
        let pid = net.pool_id.as_str();
        let fresh = docker_id();
        let bad_ids = [
            "../../../etc/passwd".to_string(),
            format!("{}/../{}", &fresh[..30], &fresh[..31]),
            fresh.to_uppercase(),
            "z".repeat(64),
            fresh[..63].to_string(),
            format!("{fresh}0"),
            String::new(),
        ];

        let network_paths = [
            "/NetworkDriver.CreateNetwork",
            "/NetworkDriver.DeleteNetwork",
        ];
        let endpoint_paths = [
            "/NetworkDriver.CreateEndpoint",
            "/NetworkDriver.DeleteEndpoint",
            "/NetworkDriver.Join",
            "/NetworkDriver.Leave",
            "/NetworkDriver.EndpointOperInfo",
            "/NetworkDriver.ProgramExternalConnectivity",
            "/NetworkDriver.RevokeExternalConnectivity",
        ];
        let ipam_paths = [
            "/IpamDriver.RequestAddress",
            "/IpamDriver.ReleaseAddress",
            "/IpamDriver.ReleasePool",
        ];

        // (path, raw body, words the Err must contain)
        let mut cases: Vec<(&str, Vec<u8>, Vec<&str>)> = Vec::new();
        for &path in network_paths.iter().chain(&endpoint_paths) {
            cases.push((path, b"".to_vec(), vec!["NetworkID"]));
            cases.push((path, b"{}".to_vec(), vec!["NetworkID"]));
            cases.push((path, b"{\"NetworkID\":".to_vec(), vec![]));
            cases.push((path, b"{\"NetworkID\": 42}".to_vec(), vec!["invalid type"]));
            cases.push((path, b"null".to_vec(), vec![]));
            cases.push((path, b"[]".to_vec(), vec![]));
            cases.push((path, b"\xff\xfe{".to_vec(), vec![]));
            for bad in &bad_ids {
                let body = json!({"NetworkID": bad, "EndpointID": eid});
                cases.push((path, body.to_string().into_bytes(), vec!["Docker ID"]));
            }
        }
        for &path in &endpoint_paths {
            let body = json!({"NetworkID": nid});
            cases.push((path, body.to_string().into_bytes(), vec!["EndpointID"]));
            for bad in &bad_ids {
                let body = json!({"NetworkID": nid, "EndpointID": bad});
                cases.push((path, body.to_string().into_bytes(), vec!["Docker ID"]));
            }
            let body = format!("{{\"NetworkID\":\"{nid}\",\"EndpointID\":\"{eid}\"");
            cases.push((path, body.into_bytes(), vec![]));
        }
        for &path in &ipam_paths {
            cases.push((path, b"".to_vec(), vec!["PoolID"]));
            cases.push((path, b"{\"PoolID\":".to_vec(), vec![]));
            cases.push((path, b"{\"PoolID\": 7}".to_vec(), vec!["invalid type"]));
            for bad in ["../../networks", "..", "", "not-a-uuid", "0000/../../ports"] {
                let body = json!({"PoolID": bad, "Address": lab.ip4(0, 77)});
                cases.push((path, body.to_string().into_bytes(), vec!["PoolID"]));
            }
        }
        let mut add = |path: &'static str, body: Value, words: Vec<&'static str>| {
            cases.push((path, body.to_string().into_bytes(), words));
        };
        // RequestPool
        let rp = "/IpamDriver.RequestPool";
        add(rp, json!({"AddressSpace": "x", "Pool": "10.0.0.0/33", "V6": false}), vec!["CIDR"]);
        add(rp, json!({"Pool": "banana"}), vec!["CIDR"]);
        add(rp, json!({"Pool": "10.200.0.0/24", "SubPool": "10.200.0.0/40"}), vec!["CIDR"]);
        add(rp, json!({"Pool": 10}), vec!["invalid type"]);
        add(rp, json!({"Pool": "", "V6": "yes"}), vec!["invalid type"]);
        add(rp, json!({"Pool": "", "Options": [1, 2]}), vec!["invalid type"]);
        add(rp, json!({"Pool": "", "Options": {"neutron.pool.uuid": 5}}), vec!["invalid type"]);
        // RequestAddress / ReleaseAddress
        let ra = "/IpamDriver.RequestAddress";
        add(ra, json!({"PoolID": pid, "Address": "10.0.0.300"}), vec!["not an IP"]);
        add(ra, json!({"PoolID": pid, "Address": format!("{}/24", lab.ip4(0, 9))}), vec!["not an IP"]);
        add(ra, json!({"PoolID": pid, "Options": "x"}), vec!["invalid type"]);
        let rel = "/IpamDriver.ReleaseAddress";
        add(rel, json!({"PoolID": pid}), vec!["Address"]);
        add(rel, json!({"PoolID": pid, "Address": "fe80::zz"}), vec!["not an IP"]);
        // CreateNetwork
        let cn = "/NetworkDriver.CreateNetwork";
        let fresh_nid = docker_id();
        let good_data = docker::ipam_data(&lab.cidr4(1), &format!("{}/24", lab.ip4(1, 1)));
        add(cn, docker::create_network(&fresh_nid, json!({}), vec![docker::ipam_data("10.0.0.0/99", "")], vec![]), vec!["CIDR"]);
        add(cn, docker::create_network(&fresh_nid, json!({}), vec![docker::ipam_data(&lab.cidr4(1), "10.0.0.1")], vec![]), vec!["CIDR"]);
        add(cn, json!({"NetworkID": fresh_nid, "IPv4Data": {"Pool": "10.0.0.0/24"}}), vec!["invalid type"]);
        add(cn, json!({"NetworkID": fresh_nid, "IPv4Data": [{"AddressSpace": "x"}]}), vec!["Pool"]);
        add(cn, json!({"NetworkID": fresh_nid, "Options": "x", "IPv4Data": [good_data]}), vec!["invalid type"]);
        add(cn, json!({"NetworkID": fresh_nid, "IPv4Data": [good_data], "IPv6Data": [{"Pool": "fd00::/200"}]}), vec!["CIDR"]);
        // CreateEndpoint, on the real network
        let ce = "/NetworkDriver.CreateEndpoint";
        let new_eid = docker_id();
        let free = format!("{}/24", lab.ip4(0, 200));
        add(ce, json!({"NetworkID": nid, "EndpointID": new_eid, "Interface": {"Address": free, "MacAddress": "zz:zz:zz:zz:zz:zz"}}), vec!["MAC"]);
        add(ce, json!({"NetworkID": nid, "EndpointID": new_eid, "Interface": {"Address": free, "MacAddress": "02:42:0a:00:00"}}), vec!["MAC"]);
        add(ce, json!({"NetworkID": nid, "EndpointID": new_eid, "Interface": {"Address": lab.ip4(0, 200)}}), vec!["CIDR"]);
        add(ce, json!({"NetworkID": nid, "EndpointID": new_eid, "Interface": {"AddressIPv6": "fd00::1/129"}}), vec!["CIDR"]);
        add(ce, json!({"NetworkID": nid, "EndpointID": new_eid, "Interface": 5}), vec!["invalid type"]);
        add(ce, json!({"NetworkID": nid, "EndpointID": new_eid, "Interface": {"Address": free}, "Options": []}), vec!["invalid type"]);
        // Join, ProgramExternalConnectivity
        add("/NetworkDriver.Join", json!({"NetworkID": nid, "EndpointID": eid, "SandboxKey": 5}), vec!["invalid type"]);
        let pec = "/NetworkDriver.ProgramExternalConnectivity";
        add(pec, docker::program(nid, eid, json!([{"Proto": "tcp", "Port": 80}])), vec!["exposedports"]);
        add(pec, docker::program(nid, eid, json!([{"Proto": 6, "Port": 70000}])), vec!["exposedports"]);
        add(pec, docker::program(nid, eid, json!({"Proto": 6})), vec!["exposedports"]);
        // Deeply nested JSON must not blow the stack.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        cases.push((cn, deep.into_bytes(), vec![]));

        assert!(cases.len() > 150, "{} cases", cases.len());
        for (path, body, words) in &cases {
            let reply = api.raw(path, body).await;
            let what = format!("{path} {:?}", String::from_utf8_lossy(&body[..body.len().min(120)]));
            assert_json_err(&what, &reply, 400, words);
        }

        // Unknown methods: 404 with a JSON Err, body never looked at.
        for path in [
            "/NetworkDriver.Nope",
            "/IpamDriver.RequestPools",
            "/../../etc/passwd",
            "",
            "/",
            "/NetworkDriver.CreateNetwork/../DeleteNetwork",
        ] {
            let reply = api.raw(path, b"{\"NetworkID\":").await;
            assert_json_err(path, &reply, 404, &["unknown"]);
        }

        let delta = api.calls().since(&before);
        assert!(writes(&delta).is_empty(), "bad requests wrote to Neutron: {}", delta.summary());
        assert_eq!(count_ports().await, ports_before);
        assert_eq!(count_pools().await, pools_before);
        assert_eq!(lab.networks_of(&net.nid).await.len(), 1);
        assert!(lab.networks_of(&fresh_nid).await.is_empty());
        assert!(lab.ports_of(&new_eid).await.is_empty());

        // Still serving, and the real objects still work.
        let join = api.ok("/NetworkDriver.Join", docker::join(nid, eid)).await;
        assert_eq!(join["Gateway"], plain_ip(&net.gateway));
        api.stop_container(&net, &ep).await;
        api.remove_network(&net).await;
        lab.assert_clean().await;
    })
    .await;
}

// ---------------------------------------------------------------------- 5

/// A restarted driver serves what the previous one created: start()
/// rebuilds the index from Neutron tags.
#[tokio::test]
async fn a_restarted_driver_serves_existing_networks_and_endpoints() {
    lab::run(4, async |lab: &Lab| {
        let (net, ep) = {
            let a = lab.driver().await;
            let api = lab.api(&a);
            let net = api.create_network(&lab.cidr4(0)).await;
            let addr = api
                .ok(
                    "/IpamDriver.RequestAddress",
                    docker::request_address(&net.pool_id, ""),
                )
                .await;
            let eid = docker_id();
            let address = s(&addr["Address"]).to_string();
            let created = api
                .ok(
                    "/NetworkDriver.CreateEndpoint",
                    docker::create_endpoint(&net.nid, &eid, &address, ""),
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
            .ok("/NetworkDriver.Join", docker::join(&net.nid, &eid))
            .await;
        assert_eq!(
            join["InterfaceName"]["SrcName"],
            format!("t_c{}", &port.id[..11])
        );
        assert_eq!(join["Gateway"], plain_ip(&net.gateway));
        let info = api
            .ok(
                "/NetworkDriver.EndpointOperInfo",
                docker::endpoint(&net.nid, &eid),
            )
            .await;
        assert_eq!(info["Value"]["port_id"], port.id.as_str(), "{info}");
        // CreateEndpoint retried on B answers as A did.
        let again = api
            .ok(
                "/NetworkDriver.CreateEndpoint",
                docker::create_endpoint(&net.nid, &eid, &address, ""),
            )
            .await;
        assert_eq!(again, created);

        // A new container on B works too.
        let ep2 = api.start_container(&net).await;
        assert_eq!(ep2.join["Gateway"], plain_ip(&net.gateway));
        api.stop_container(&net, &ep2).await;

        api.ok("/NetworkDriver.Leave", docker::endpoint(&net.nid, &eid))
            .await;
        api.ok(
            "/NetworkDriver.DeleteEndpoint",
            docker::endpoint(&net.nid, &eid),
        )
        .await;
        api.ok(
            "/IpamDriver.ReleaseAddress",
            docker::release_address(&net.pool_id, plain_ip(&address)),
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

// ---------------------------------------------------------------------- 6

struct UserNet {
    id: String,
    name: String,
    subnet_id: String,
    subnet_name: String,
    cidr: String,
    gateway: String,
}

/// A network + subnet a user made in Neutron, with tags of their own.
async fn user_network(lab: &Lab, cidr: &str) -> UserNet {
    let n = &lab.neutron;
    let name = format!("kt-user-net-{:x}", lab::random_u64());
    let net = n
        .create_network(&NetworkCreate {
            name: Some(name.clone()),
            admin_state_up: Some(true),
            ..Default::default()
        })
        .await
        .expect("create user network");
    lab.track_user_network(&net.id);
    n.replace_tags(TagResource::Network, &net.id, &["user-owned"])
        .await
        .unwrap();
    let subnet_name = format!("{name}-subnet");
    let subnet = n
        .create_subnet(&SubnetCreate {
            network_id: net.id.clone(),
            ip_version: 4,
            name: Some(subnet_name.clone()),
            cidr: Some(cidr.to_string()),
            enable_dhcp: Some(false),
            ..Default::default()
        })
        .await
        .expect("create user subnet");
    n.replace_tags(TagResource::Subnet, &subnet.id, &["user-subnet"])
        .await
        .unwrap();
    UserNet {
        id: net.id,
        name,
        subnet_id: subnet.id,
        subnet_name,
        cidr: subnet.cidr,
        gateway: subnet.gateway_ip.expect("gateway"),
    }
}

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
    lab::run(5, async |lab: &Lab| existing_network_case(lab, false).await).await;
}

/// `-o neutron.net.name`, the subnet matched by `--subnet`.
#[tokio::test]
async fn existing_network_by_name_is_used_and_kept() {
    lab::run(6, async |lab: &Lab| existing_network_case(lab, true).await).await;
}

// ---------------------------------------------------------------------- 7

/// `--ip` of a free user port reuses that port and gives it back as it was;
/// a port in use is refused.
#[tokio::test]
async fn existing_port_is_reused_by_ip_and_restored() {
    lab::run(7, async |lab: &Lab| {
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
                docker::request_address(&net.pool_id, &ip),
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
                docker::request_address(&net.pool_id, &ip),
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
                docker::request_address(&net.pool_id, &ip2),
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

// ---------------------------------------------------------------------- 8

/// IPv4 + IPv6: two subnets, one port holding both addresses, both gateways.
#[tokio::test]
async fn dual_stack_endpoint_has_one_port_with_both_addresses() {
    lab::run(8, async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let (c4, c6) = (lab.cidr4(0), lab.cidr6(0));
        let p4 = api
            .ok(
                "/IpamDriver.RequestPool",
                docker::request_pool(&c4, "", false, json!({})),
            )
            .await;
        let p6 = api
            .ok(
                "/IpamDriver.RequestPool",
                docker::request_pool(&c6, "", true, json!({})),
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
            docker::create_network(
                &nid,
                json!({}),
                vec![docker::ipam_data(&c4, &gw4)],
                vec![docker::ipam_data(&c6, &gw6)],
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
                docker::request_address(&pid4, ""),
            )
            .await["Address"])
        .to_string();
        let a6 = s(&api
            .ok(
                "/IpamDriver.RequestAddress",
                docker::request_address(&pid6, ""),
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
                docker::create_endpoint(&nid, &eid, &a4, &a6),
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
            .ok("/NetworkDriver.Join", docker::join(&nid, &eid))
            .await;
        assert_eq!(join["Gateway"], plain_ip(&gw4));
        assert_eq!(join["GatewayIPv6"], plain_ip(&gw6));

        api.ok("/NetworkDriver.Leave", docker::endpoint(&nid, &eid))
            .await;
        api.ok(
            "/NetworkDriver.DeleteEndpoint",
            docker::endpoint(&nid, &eid),
        )
        .await;
        api.ok(
            "/IpamDriver.ReleaseAddress",
            docker::release_address(&pid4, plain_ip(&a4)),
        )
        .await;
        api.ok(
            "/IpamDriver.ReleaseAddress",
            docker::release_address(&pid6, plain_ip(&a6)),
        )
        .await;
        assert!(lab.port(&port.id).await.is_none());
        for (pid, gw) in [(&pid4, &gw4), (&pid6, &gw6)] {
            api.ok(
                "/IpamDriver.ReleaseAddress",
                docker::release_address(pid, plain_ip(gw)),
            )
            .await;
            api.ok("/IpamDriver.ReleasePool", docker::release_pool(pid))
                .await;
        }
        api.ok("/NetworkDriver.DeleteNetwork", docker::network(&nid))
            .await;
        assert!(lab.pool(&pid4).await.is_none() && lab.pool(&pid6).await.is_none());
        lab.assert_clean().await;
    })
    .await;
}

/// A network with only an IPv6 subnet.
#[tokio::test]
async fn ipv6_only_network() {
    lab::run(9, async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let c6 = lab.cidr6(0);
        let p6 = api
            .ok(
                "/IpamDriver.RequestPool",
                docker::request_pool(&c6, "", true, json!({})),
            )
            .await;
        let pid6 = s(&p6["PoolID"]).to_string();
        let gw6 = s(&p6["Data"][GATEWAY_KEY]).to_string();
        let nid = docker_id();
        api.ok(
            "/NetworkDriver.CreateNetwork",
            docker::create_network(&nid, json!({}), vec![], vec![docker::ipam_data(&c6, &gw6)]),
        )
        .await;
        let nnet = lab.network_of(&nid).await;
        let subnets = lab.subnets_in(&nnet.id).await;
        assert_eq!(subnets.len(), 1);
        assert_eq!(subnets[0].ip_version, 6);

        let a6 = s(&api
            .ok(
                "/IpamDriver.RequestAddress",
                docker::request_address(&pid6, ""),
            )
            .await["Address"])
        .to_string();
        let eid = docker_id();
        api.ok(
            "/NetworkDriver.CreateEndpoint",
            docker::create_endpoint(&nid, &eid, "", &a6),
        )
        .await;
        let ports = lab.ports_of(&eid).await;
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].fixed_ips.len(), 1);
        let join = api
            .ok("/NetworkDriver.Join", docker::join(&nid, &eid))
            .await;
        assert!(join.get("Gateway").is_none(), "{join}");
        assert_eq!(join["GatewayIPv6"], plain_ip(&gw6));
        api.ok(
            "/NetworkDriver.DeleteEndpoint",
            docker::endpoint(&nid, &eid),
        )
        .await;
        api.ok(
            "/IpamDriver.ReleaseAddress",
            docker::release_address(&pid6, plain_ip(&a6)),
        )
        .await;
        api.ok(
            "/IpamDriver.ReleaseAddress",
            docker::release_address(&pid6, plain_ip(&gw6)),
        )
        .await;
        api.ok("/IpamDriver.ReleasePool", docker::release_pool(&pid6))
            .await;
        api.ok("/NetworkDriver.DeleteNetwork", docker::network(&nid))
            .await;
        lab.assert_clean().await;
    })
    .await;
}

// ---------------------------------------------------------------------- 9

/// No `--subnet`: a /24 carved out of the default `kuryr` pool, a different
/// one for each pool held, and the default pool survives.
#[tokio::test]
async fn no_subnet_carves_from_the_default_pool() {
    lab::run(10, async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let defaults = lab.pools_named("kuryr").await;
        assert_eq!(defaults.len(), 1, "the lab's default pool `kuryr`");
        let default = &defaults[0];
        let parent = net_of(&default.prefixes[0]);

        let p1 = api
            .ok(
                "/IpamDriver.RequestPool",
                docker::request_pool("", "", false, json!({})),
            )
            .await;
        let p2 = api
            .ok(
                "/IpamDriver.RequestPool",
                docker::request_pool("", "", false, json!(null)),
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
        api.ok("/IpamDriver.ReleasePool", docker::release_pool(&pid2))
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
            docker::create_network(
                &net.nid,
                json!({}),
                vec![docker::ipam_data(&net.cidr, &gw1)],
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
                docker::request_pool("", "", true, json!({})),
            )
            .await;
        let c6 = net_of(s(&p6["Pool"]));
        assert!(net_of(&v6[0].prefixes[0]).contains(&c6.network()), "{c6}");
        assert_eq!(c6.prefix_len(), 64);
        api.ok(
            "/IpamDriver.ReleasePool",
            docker::release_pool(s(&p6["PoolID"])),
        )
        .await;
        assert!(lab.pool(&v6[0].id).await.is_some());
        lab.assert_clean().await;
    })
    .await;
}

// ---------------------------------------------------------------------- 10

/// `-d kuryr` with Docker's default IPAM: no RequestPool; CreateEndpoint
/// creates the port itself and DeleteEndpoint deletes it.
#[tokio::test]
async fn network_driver_with_dockers_default_ipam() {
    lab::run(11, async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let x = lab::random_u64() % 256;
        let cidr = format!("172.31.{x}.0/24");
        lab.track_cidr(&cidr);
        let gw = format!("172.31.{x}.1");
        let nid = docker_id();
        api.ok(
            "/NetworkDriver.CreateNetwork",
            docker::create_network(
                &nid,
                json!({}),
                vec![docker::ipam_data(&cidr, &format!("{gw}/24"))],
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
                docker::create_endpoint(&nid, &eid, &format!("{ip}/24"), ""),
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
            .ok("/NetworkDriver.Join", docker::join(&nid, &eid))
            .await;
        assert_eq!(join["Gateway"], gw.as_str());

        api.ok("/NetworkDriver.Leave", docker::endpoint(&nid, &eid))
            .await;
        api.ok(
            "/NetworkDriver.DeleteEndpoint",
            docker::endpoint(&nid, &eid),
        )
        .await;
        assert!(
            lab.port(&port.id).await.is_none(),
            "DeleteEndpoint deletes its port"
        );
        api.ok("/NetworkDriver.DeleteNetwork", docker::network(&nid))
            .await;
        assert!(lab.neutron.get_network(&nnet.id).await.is_err());
        lab.assert_clean().await;
    })
    .await;
}

// ---------------------------------------------------------------------- 11

/// `--expose`: a security group with one rule per run of ports, attached to
/// the port, detached and deleted by Revoke.
#[tokio::test]
async fn exposed_ports_become_a_security_group() {
    lab::run(12, async |lab: &Lab| {
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
                docker::program(&net.nid, &ep.eid, exposed.clone()),
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
                docker::endpoint(&net.nid, &ep.eid),
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

// ---------------------------------------------------------------------- 12

/// `--gateway` is optional; when given it becomes Neutron's gateway_ip.
#[tokio::test]
async fn gateway_is_optional_and_honoured_when_given() {
    lab::run(13, async |lab: &Lab| {
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
                docker::request_pool(&cidr, "", false, json!({})),
            )
            .await;
        let pid = s(&pool["PoolID"]).to_string();
        let g = api
            .ok(
                "/IpamDriver.RequestAddress",
                docker::request_gateway(&pid, ""),
            )
            .await;
        assert_eq!(g["Address"], format!("{}/24", lab.ip4(1, 1)));

        // --gateway x: RequestAddress(gateway, x) -> x/len before the
        // network exists; CreateNetwork sets it as gateway_ip.
        let x = lab.ip4(1, 254);
        let g = api
            .ok(
                "/IpamDriver.RequestAddress",
                docker::request_gateway(&pid, &x),
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
            docker::create_network(
                &net.nid,
                json!({}),
                vec![docker::ipam_data(&cidr, &net.gateway)],
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
                docker::request_gateway(&pid, &x),
            )
            .await;
        assert_eq!(again["Address"], format!("{x}/24"));
        let other = api
            .fails(
                "/IpamDriver.RequestAddress",
                docker::request_gateway(&pid, &lab.ip4(1, 253)),
            )
            .await;
        assert!(other.err().contains("gateway"), "{}", other.json);

        let ep = api.start_container(&net).await;
        assert_eq!(ep.join["Gateway"], x.as_str());
        // The gateway address is not a port: its ReleaseAddress deletes nothing.
        let ports_before = lab.ports_in(&nnet.id).await.len();
        api.ok(
            "/IpamDriver.ReleaseAddress",
            docker::release_address(&pid, &x),
        )
        .await;
        assert_eq!(lab.ports_in(&nnet.id).await.len(), ports_before);
        api.stop_container(&net, &ep).await;
        api.remove_network(&net).await;
        lab.assert_clean().await;
    })
    .await;
}

// ---------------------------------------------------------------------- 13

/// `--ip-range` is the subnet's allocation pool; `--aux-address` is
/// reserved as a port until ReleaseAddress.
#[tokio::test]
async fn ip_range_and_aux_addresses() {
    lab::run(14, async |lab: &Lab| {
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
                    docker::request_pool(&cidr, &range, false, json!({})),
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
                docker::create_network(
                    &net.nid,
                    json!({}),
                    vec![docker::ipam_data(&cidr, &gw)],
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
                docker::request_pool(&cidr, "", false, json!({})),
            )
            .await;
        let pid = s(&pool["PoolID"]).to_string();
        let gw = s(&pool["Data"][GATEWAY_KEY]).to_string();
        let r = api
            .ok(
                "/IpamDriver.RequestAddress",
                docker::request_address(&pid, &aux),
            )
            .await;
        assert_eq!(r["Address"], format!("{aux}/24"));
        let nid = docker_id();
        let mut data = docker::ipam_data(&cidr, &gw);
        data["AuxAddresses"] = json!({"router": format!("{aux}/24")});
        api.ok(
            "/NetworkDriver.CreateNetwork",
            docker::create_network(&nid, json!({}), vec![data], vec![]),
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
                docker::request_address(&pid, &aux),
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
            docker::release_address(&pid, plain_ip(&gw)),
        )
        .await;
        api.ok(
            "/IpamDriver.ReleaseAddress",
            docker::release_address(&pid, &aux),
        )
        .await;
        assert!(
            lab.port(&reserved[0].id).await.is_none(),
            "aux port released"
        );
        api.ok("/IpamDriver.ReleasePool", docker::release_pool(&pid))
            .await;
        api.ok("/NetworkDriver.DeleteNetwork", docker::network(&nid))
            .await;
        assert!(lab.neutron.get_network(&nnet.id).await.is_err());
        lab.assert_clean().await;
    })
    .await;
}

// ---------------------------------------------------------------------- extras

/// `--mac-address`: Docker's MAC goes on the port and is not echoed back
/// (dockerd refuses a reply that repeats a field it sent); a user's port
/// gets its own MAC back when Docker is done with it.
#[tokio::test]
async fn docker_mac_address_is_applied_and_a_users_mac_restored() {
    lab::run(15, async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let net = api.create_network(&lab.cidr4(0)).await;
        let r = lab::random_u64();
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
                docker::request_address(&net.pool_id, ""),
            )
            .await;
        let address = s(&addr["Address"]).to_string();
        let eid = docker_id();
        let mut body = docker::create_endpoint(&net.nid, &eid, &address, "");
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
            docker::request_address(&net.pool_id, &ip),
        )
        .await;
        let eid = docker_id();
        let mut body = docker::create_endpoint(&net.nid, &eid, &format!("{ip}/24"), "");
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

/// dockerd starts and stops containers in parallel: every one gets its own
/// address and port, and all of them go away.
#[tokio::test]
async fn concurrent_containers_on_one_network() {
    lab::run(16, async |lab: &Lab| {
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

/// A CreateNetwork that Neutron refuses (the same --subnet twice) fails
/// cleanly: nothing is left for it, and dockerd's rollback (ReleaseAddress,
/// ReleasePool) does not harm the network already using that pool.
#[tokio::test]
async fn a_failed_create_network_rolls_back() {
    lab::run(17, async |lab: &Lab| {
        let d = lab.driver().await;
        let api = lab.api(&d);
        let cidr = lab.cidr4(0);
        let first = api.create_network(&cidr).await;

        let pool = api
            .ok(
                "/IpamDriver.RequestPool",
                docker::request_pool(&cidr, "", false, json!({})),
            )
            .await;
        let pid = s(&pool["PoolID"]).to_string();
        let gw = s(&pool["Data"][GATEWAY_KEY]).to_string();
        let nid = docker_id();
        let failed = api
            .fails(
                "/NetworkDriver.CreateNetwork",
                docker::create_network(
                    &nid,
                    json!({}),
                    vec![docker::ipam_data(&cidr, &gw)],
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
        api.ok("/NetworkDriver.DeleteNetwork", docker::network(&nid))
            .await;
        api.ok(
            "/IpamDriver.ReleaseAddress",
            docker::release_address(&pid, plain_ip(&gw)),
        )
        .await;
        api.ok("/IpamDriver.ReleasePool", docker::release_pool(&pid))
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
