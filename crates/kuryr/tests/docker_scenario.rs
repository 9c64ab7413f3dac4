//! The seed scenario and its variations, through the real dockerd of the lab,
//! the kuryr daemon built by this run, real Neutron and the real OVS agent.
//!
//! Each runs inside `lab::run` (its own address slot; Neutron cleaned up
//! after it whatever happens). These tests share one dockerd and one daemon socket: nextest runs them
//! one at a time (test group `lab-docker`).

mod common;

use std::time::Duration;

use common::docker_cli::*;
use common::env::{eventually, host, unique};
use common::host::{link_exists, ovs_ports};
use common::lab::{self, Lab};

/// `docker network create --driver kuryr --ipam-driver kuryr --subnet S net`,
/// `docker network ls`, `docker run --net=net busybox ...`: check Neutron and
/// the container's interface, then that `rm` leaves Neutron as it was.
#[tokio::test]
async fn seed_scenario_end_to_end() {
    lab::run(async |lab: &Lab| {
        ensure_daemon();
        let n = &lab.neutron;
        let name = unique("seed");
        let (subnet, prefix) = (lab.cidr4(0), lab.slot.prefix4(0));
        let mut cleanup = Cleanup::new();
        cleanup.kuryr_network(&name, Some(&subnet), &[]);
        lab.track_network(&network_id(&name));

        let ls = docker_ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
        assert!(ls.lines().any(|l| l == format!("{name} kuryr")), "{ls}");

        let docker_id = network_id(&name);
        let nets = lab.networks_of(&docker_id).await;
        assert_eq!(
            nets.len(),
            1,
            "exactly one Neutron network per Docker network"
        );
        let net = &nets[0];
        assert_eq!(net.name, format!("kuryr-net-{}", &docker_id[..8]));
        let subnets = n
            .list_subnets(&kuryr_openstack::Query::new().eq("network_id", &net.id))
            .await
            .unwrap();
        assert_eq!(subnets.len(), 1);
        assert_eq!(subnets[0].cidr, subnet);
        assert_eq!(subnets[0].name, format!("kuryr-subnet-{subnet}"));
        assert_eq!(
            subnets[0].gateway_ip.as_deref(),
            Some(format!("{prefix}.1").as_str())
        );
        let pool_id = subnets[0]
            .subnetpool_id
            .clone()
            .expect("subnet from a pool");
        let pool = n.get_subnetpool(&pool_id).await.unwrap();
        assert_eq!(pool.name, format!("kuryrPool-{subnet}"));

        let c = format!("{name}-c");
        cleanup.container(&c, &name, &[]);

        let ports = lab.kuryr_ports_in(&net.id).await;
        assert_eq!(ports.len(), 1, "{ports:#?}");
        let port = &ports[0];
        assert_eq!(port.host_id, host());
        assert_eq!(port.status, "ACTIVE", "the OVS agent wired the port");
        assert_eq!(port.vif_type, "ovs");
        assert!(
            port.tags
                .iter()
                .any(|t| t.starts_with("kuryr.net.uuid.lh:"))
        );
        assert!(port.tags.iter().any(|t| t == "compute:kuryr"));
        let endpoint = docker_ok(&[
            "inspect",
            "-f",
            &format!("{{{{.NetworkSettings.Networks.{name}.EndpointID}}}}"),
            &c,
        ]);
        assert_eq!(port.device_id, endpoint);

        // The container sees Neutron's address, MAC, MTU and gateway.
        let ip = &port.fixed_ips[0].ip_address;
        let (ok, addr) = exec(&c, &["ip", "-o", "-4", "addr", "show", "eth0"]);
        assert!(ok, "{addr}");
        assert!(addr.contains(&format!("inet {ip}/24")), "{addr}");
        let (_, mac) = exec(&c, &["cat", "/sys/class/net/eth0/address"]);
        assert_eq!(mac, port.mac_address);
        assert!(
            mac.starts_with("fa:16:3e"),
            "Neutron's MAC, not Docker's: {mac}"
        );
        let (_, mtu) = exec(&c, &["cat", "/sys/class/net/eth0/mtu"]);
        assert_eq!(mtu, net.mtu.unwrap().to_string());
        let (_, route) = exec(&c, &["ip", "route"]);
        assert!(
            route.contains(&format!("default via {prefix}.1 dev eth0")),
            "{route}"
        );

        // Host side: the veth end is plugged into br-int.
        let tap = format!("tap{}", &port.id[..11]);
        assert!(link_exists(&tap));
        assert!(ovs_ports().contains(&tap));

        docker_ok(&["rm", "-f", &c]);
        cleanup.containers.clear();
        assert!(
            lab.kuryr_ports_in(&net.id).await.is_empty(),
            "port deleted with the container"
        );
        assert!(!link_exists(&tap), "host veth removed");
        assert!(!ovs_ports().contains(&tap), "OVS port removed");

        docker_ok(&["network", "rm", &name]);
        cleanup.networks.clear();
        assert!(lab.networks_of(&docker_id).await.is_empty());
        assert!(n.get_subnetpool(&pool_id).await.unwrap_err().is_not_found());
        // Other tests run at the same time: count only what this one made.
        let named = n
            .list_subnetpools(
                &kuryr_openstack::Query::new().eq("name", format!("kuryrPool-{subnet}")),
            )
            .await
            .unwrap();
        assert!(named.is_empty(), "{named:#?}");
        let ports = n
            .list_ports(&kuryr_openstack::Query::new().eq("network_id", &net.id))
            .await
            .unwrap();
        assert!(ports.is_empty(), "{ports:#?}");
    })
    .await;
}

/// Two containers on one kuryr network reach each other through br-int;
/// a container on another kuryr network does not.
#[tokio::test]
async fn containers_on_one_network_ping_and_networks_are_isolated() {
    lab::run(async |lab: &Lab| {
        ensure_daemon();
        let n = &lab.neutron;
        let a = unique("pa");
        let b = unique("pb");
        let sa = lab.cidr4(0);
        let sb = lab.cidr4(1);
        let mut cleanup = Cleanup::new();
        for (net, cidr) in [(&a, &sa), (&b, &sb)] {
            cleanup.kuryr_network(net, Some(cidr), &[]);
            lab.track_network(&network_id(net));
        }
        let names = [format!("{a}-1"), format!("{a}-2"), format!("{b}-3")];
        cleanup.containers.extend(names.iter().cloned());
        for (c, net) in names.iter().zip([&a, &a, &b]) {
            // NET_ADMIN so the third container can claim the first network is
            // on-link: only L2 isolation then keeps it out.
            docker_ok(&[
                "run",
                "-d",
                "--cap-add",
                "NET_ADMIN",
                "--name",
                c,
                &format!("--net={net}"),
                "busybox",
                "sleep",
                "600",
            ]);
        }
        let ip_of = |c: &str, net: &str| {
            docker_ok(&[
                "inspect",
                "-f",
                &format!("{{{{.NetworkSettings.Networks.{net}.IPAddress}}}}"),
                c,
            ])
        };
        let ip2 = ip_of(&names[1], &a);
        let ip3 = ip_of(&names[2], &b);
        eventually(
            &format!("container 1 pinging container 2 at {ip2}"),
            Duration::from_secs(20),
            async || {
                exec(&names[0], &["ping", "-c", "1", "-W", "1", &ip2])
                    .0
                    .then_some(())
            },
        )
        .await;
        let (ok, out) = exec(&names[0], &["ping", "-c", "3", "-W", "1", &ip2]);
        assert!(ok, "{out}");
        // TCP too: the userspace datapath needs checksum offload off to pass it.
        let (ok, out) = exec(
            &names[1],
            &["sh", "-c", "(echo hello | nc -l -p 8080 &) ; sleep 0.3"],
        );
        assert!(ok, "{out}");
        let (ok, out) = exec(
            &names[0],
            &["sh", "-c", &format!("nc -w 3 {ip2} 8080 </dev/null")],
        );
        assert!(
            ok && out.contains("hello"),
            "TCP across br-int failed: {out}"
        );
        // Another kuryr network is another L2 segment (another local VLAN on
        // br-int): even with an on-link route, ARP gets no answer.
        let (ok, out) = exec(&names[2], &["ip", "route", "add", &sa, "dev", "eth0"]);
        assert!(ok, "{out}");
        let ip1 = ip_of(&names[0], &a);
        let (ok, _) = exec(&names[2], &["ping", "-c", "2", "-W", "1", &ip1]);
        assert!(!ok, "a container on another network must not reach {ip1}");
        let (ok, _) = exec(&names[0], &["ping", "-c", "2", "-W", "1", &ip3]);
        assert!(!ok, "a container on another network must not be reachable");
        let ports = n
            .list_ports(
                &kuryr_openstack::Query::new()
                    .eq("device_owner", "compute:kuryr")
                    .eq("status", "ACTIVE"),
            )
            .await
            .unwrap();
        assert!(ports.len() >= 3);
    })
    .await;
}

#[tokio::test]
async fn connect_disconnect_and_fixed_ip() {
    lab::run(async |lab: &Lab| {
        ensure_daemon();
        let a = unique("ca");
        let b = unique("cb");
        let (sa, pa) = (lab.cidr4(0), lab.slot.prefix4(0));
        let (sb, pb) = (lab.cidr4(1), lab.slot.prefix4(1));
        let mut cleanup = Cleanup::new();
        cleanup.kuryr_network(&a, Some(&sa), &[]);
        lab.track_network(&network_id(&a));
        cleanup.kuryr_network(&b, Some(&sb), &[]);
        lab.track_network(&network_id(&b));
        let c = format!("{a}-c");
        cleanup.containers.push(c.clone());
        let fixed = format!("{pa}.50");
        docker_ok(&[
            "run",
            "-d",
            "--name",
            &c,
            &format!("--net={a}"),
            "--ip",
            &fixed,
            "busybox",
            "sleep",
            "600",
        ]);
        let (_, addr) = exec(&c, &["ip", "-o", "-4", "addr", "show", "eth0"]);
        assert!(addr.contains(&format!("inet {fixed}/24")), "{addr}");
        let net_a = &lab.networks_of(&network_id(&a)).await[0];
        let ports = lab.kuryr_ports_in(&net_a.id).await;
        assert_eq!(ports[0].fixed_ips[0].ip_address, fixed);

        docker_ok(&["network", "connect", &b, &c]);
        let (_, addr) = exec(&c, &["ip", "-o", "-4", "addr", "show", "eth1"]);
        assert!(addr.contains(&format!("inet {pb}.")), "{addr}");
        let net_b = &lab.networks_of(&network_id(&b)).await[0];
        assert_eq!(lab.kuryr_ports_in(&net_b.id).await.len(), 1);

        docker_ok(&["network", "disconnect", &b, &c]);
        let (ok, _) = exec(&c, &["ip", "link", "show", "eth1"]);
        assert!(!ok, "eth1 is gone after disconnect");
        assert!(lab.kuryr_ports_in(&net_b.id).await.is_empty());
        assert_eq!(
            lab.kuryr_ports_in(&net_a.id).await.len(),
            1,
            "the other port stays"
        );

        // The address is free again once the container is gone.
        docker_ok(&["rm", "-f", &c]);
        docker_ok(&[
            "run",
            "--rm",
            &format!("--net={a}"),
            "--ip",
            &fixed,
            "busybox",
            "true",
        ]);
    })
    .await;
}

#[tokio::test]
async fn dual_stack_network() {
    lab::run(async |lab: &Lab| {
        ensure_daemon();
        let name = unique("ds");
        let s4 = lab.cidr4(0);
        let s6 = lab.cidr6(0);
        let mut cleanup = Cleanup::new();
        cleanup.kuryr_network(&name, Some(&s4), &["--ipv6", "--subnet", &s6]);
        lab.track_network(&network_id(&name));
        let net = &lab.networks_of(&network_id(&name)).await[0];
        let c = format!("{name}-c");
        cleanup.container(&c, &name, &[]);
        let ports = lab.kuryr_ports_in(&net.id).await;
        assert_eq!(ports.len(), 1, "one port holds both families: {ports:#?}");
        assert_eq!(ports[0].fixed_ips.len(), 2);
        let v6 = ports[0]
            .fixed_ips
            .iter()
            .find(|f| f.ip_address.contains(':'))
            .unwrap();
        let (_, addr) = exec(&c, &["ip", "-o", "-6", "addr", "show", "eth0"]);
        assert!(addr.contains(&v6.ip_address), "{addr}");
        docker_ok(&["rm", "-f", &c]);
        assert!(lab.kuryr_ports_in(&net.id).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn driver_restart_between_create_and_run() {
    lab::run(async |lab: &Lab| {
        ensure_daemon();
        let name = unique("rs");
        let subnet = lab.cidr4(0);
        let mut cleanup = Cleanup::new();
        cleanup.kuryr_network(&name, Some(&subnet), &[]);
        lab.track_network(&network_id(&name));
        restart_daemon();
        let c = format!("{name}-c");
        cleanup.container(&c, &name, &[]);
        // And again while the container runs: stop and rm still clean up.
        restart_daemon();
        let docker_id = network_id(&name);
        let net = &lab.networks_of(&docker_id).await[0];
        assert_eq!(lab.kuryr_ports_in(&net.id).await.len(), 1);
        docker_ok(&["rm", "-f", &c]);
        cleanup.containers.clear();
        assert!(lab.kuryr_ports_in(&net.id).await.is_empty());
        docker_ok(&["network", "rm", &name]);
        cleanup.networks.clear();
        assert!(lab.networks_of(&docker_id).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn expose_opens_a_security_group() {
    lab::run(async |lab: &Lab| {
        ensure_daemon();
        let n = &lab.neutron;
        let name = unique("ex");
        let subnet = lab.cidr4(0);
        let mut cleanup = Cleanup::new();
        cleanup.kuryr_network(&name, Some(&subnet), &[]);
        lab.track_network(&network_id(&name));
        let c = format!("{name}-c");
        cleanup.container(&c, &name, &["--expose", "8080"]);
        let net = &lab.networks_of(&network_id(&name)).await[0];
        let port = lab.kuryr_ports_in(&net.id).await.remove(0);
        let sg_name = format!("{}-exposed_ports", port.id);
        let sgs = n
            .list_security_groups(&kuryr_openstack::Query::new().eq("name", &sg_name))
            .await
            .unwrap();
        assert_eq!(sgs.len(), 1, "--expose makes a security group");
        assert!(port.security_groups.contains(&sgs[0].id));
        assert!(
            sgs[0]
                .security_group_rules
                .iter()
                .any(|r| r.direction == "ingress"
                    && r.protocol.as_deref() == Some("tcp")
                    && r.port_range_min == Some(8080))
        );
        docker_ok(&["rm", "-f", &c]);
        let sgs = n
            .list_security_groups(&kuryr_openstack::Query::new().eq("name", &sg_name))
            .await
            .unwrap();
        assert!(sgs.is_empty(), "the group goes with the container");
    })
    .await;
}

#[tokio::test]
async fn network_without_subnet_uses_the_default_pool() {
    lab::run(async |lab: &Lab| {
        ensure_daemon();
        let n = &lab.neutron;
        let name = unique("dp");
        let mut cleanup = Cleanup::new();
        cleanup.kuryr_network(&name, None, &[]);
        lab.track_network(&network_id(&name));
        let docker_id = network_id(&name);
        let net = &lab.networks_of(&docker_id).await[0];
        let subnets = n
            .list_subnets(&kuryr_openstack::Query::new().eq("network_id", &net.id))
            .await
            .unwrap();
        let default = n
            .list_subnetpools(&kuryr_openstack::Query::new().eq("name", "kuryr"))
            .await
            .unwrap()
            .remove(0);
        assert_eq!(
            subnets[0].subnetpool_id.as_deref(),
            Some(default.id.as_str())
        );
        assert!(
            subnets[0].cidr.starts_with("10.10.") && subnets[0].cidr.ends_with("/24"),
            "{}",
            subnets[0].cidr
        );
        docker_ok(&["run", "--rm", &format!("--net={name}"), "busybox", "true"]);
        docker_ok(&["network", "rm", &name]);
        cleanup.networks.clear();
        assert!(lab.networks_of(&docker_id).await.is_empty());
        assert!(
            n.get_subnetpool(&default.id).await.is_ok(),
            "the operator's pool is never deleted"
        );
    })
    .await;
}

/// `docker network create` without `--subnet`, a driver restart, then
/// three `docker run` one after the other: each gets an address from the
/// network's subnet (the pool is found again after the restart), and
/// `docker network rm` leaves nothing in Neutron.
#[tokio::test]
async fn restart_then_runs_on_a_network_from_the_default_pool() {
    lab::run(async |lab: &Lab| {
        ensure_daemon();
        let name = unique("rdp");
        let mut cleanup = Cleanup::new();
        cleanup.kuryr_network(&name, None, &[]);
        let docker_id = network_id(&name);
        lab.track_network(&docker_id);
        let net = lab.network_of(&docker_id).await;
        let subnet = lab.subnets_in(&net.id).await.remove(0);
        lab.track_cidr(&subnet.cidr);
        restart_daemon();
        for i in 0..3 {
            docker_ok(&["run", "--rm", &format!("--net={name}"), "busybox", "true"]);
            assert!(
                lab.kuryr_ports_in(&net.id).await.is_empty(),
                "run {i}: port released"
            );
        }
        docker_ok(&["network", "rm", &name]);
        cleanup.networks.clear();
        assert!(lab.networks_of(&docker_id).await.is_empty());
        assert!(lab.ports_in(&net.id).await.is_empty());
        assert!(lab.neutron.get_subnet(&subnet.id).await.is_err());
        lab.assert_clean().await;
    })
    .await;
}
