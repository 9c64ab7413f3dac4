//! Nested mode (`default_port_driver = nested`): the node is a Nova VM with
//! no Neutron agent; containers are macvlan (or ipvlan) sub-interfaces of
//! its NIC, and their addresses are allowed on the VM port.
//!
//! Two VMs are simulated as network namespaces `node1` and `node2`, each
//! with an `eth0` that is one end of a veth whose other end is plugged into
//! the lab's `br-int` for a real Neutron port bound to the OVS agent (port
//! security on). An in-process driver per node, configured for nested mode
//! with its binder pointed at the node's namespace, is driven with
//! Docker-shaped requests; the test does what Docker does with the
//! sub-interfaces (moves them into container namespaces, sets the
//! addresses) and checks Neutron (allowed address pairs, no host binding,
//! the network defaulting to the VM port's), the namespaces (device kind,
//! parent, MAC, MTU) and the data path: containers on one node and on the
//! other node reach each other through the real OVS firewall, and do not
//! once the pair is gone.
//!
//! This kernel may lack ipvlan: the ipvlan variant then prints
//! "skipped: kernel has no ipvlan" and returns.
//!
//! Needs root and the lab: `eval "$(lab/env kuryr)"`.

mod common;

use std::time::{Duration, Instant};

use common::container::Container;
use common::env::{docker_id, neutron, random_u64};
use common::lab::{self, Lab};
use common::netns::{self, NetNs, in_netns, link_in};
use common::requests;
use common::vm::{VmNode, vm_node};
use kuryr::binding::{
    self, BindError, BindRequest, Binder, NestedConfig, NestedKind, UnbindRequest,
};
use kuryr::config::{CapabilityScope, PortDriverKind};
use kuryr::driver::{Driver, DriverConfig};
use kuryr_openstack::neutron::{
    AddressPair, FixedIp, NetworkCreate, Port, PortUpdate, SubnetCreate,
};
use serde_json::{Map, json};

// ---------------------------------------------------------------- the nodes

// ---------------------------------------------------------------- Docker

fn nested_driver(lab: &Lab, kind: NestedKind, node: &VmNode, link_iface: Option<&str>) -> Driver {
    Driver::new(
        neutron(),
        DriverConfig {
            host_id: lab.host.clone(),
            scope: CapabilityScope::Global,
            connectivity_scope: CapabilityScope::Global,
            port_driver: PortDriverKind::Nested,
            link_iface: link_iface.map(str::to_string),
            link_netns: Some(node.ns.path()),
            ..Default::default()
        },
        Binder::nested(NestedConfig {
            kind,
            netns: Some(node.ns.path()),
        }),
    )
}

fn pair_of(ip: &str, mac: &str) -> AddressPair {
    AddressPair {
        ip_address: ip.to_string(),
        mac_address: Some(mac.to_ascii_lowercase()),
    }
}

async fn pairs_of(lab: &Lab, vm: &VmNode) -> Vec<AddressPair> {
    lab.port(&vm.port.id)
        .await
        .expect("the VM port")
        .allowed_address_pairs
}

// ---------------------------------------------------------------- the test

async fn nested_mode_case(lab: &Lab, kind: NestedKind) {
    netns::require_root("nested mode");
    let n = &lab.neutron;
    let cidr = lab.cidr4(0);
    let prefix_len: u8 = cidr.rsplit('/').next().unwrap().parse().unwrap();
    let vm_net = n
        .create_network(&NetworkCreate {
            name: Some(format!("kt-nested-{:x}", random_u64())),
            admin_state_up: Some(true),
            ..Default::default()
        })
        .await
        .expect("create the VMs' network");
    lab.track_user_network(&vm_net.id);
    assert_ne!(vm_net.port_security_enabled, Some(false));
    let vm_subnet = n
        .create_subnet(&SubnetCreate {
            network_id: vm_net.id.clone(),
            ip_version: 4,
            name: Some(format!("{}-subnet", vm_net.name)),
            cidr: Some(cidr.clone()),
            enable_dhcp: Some(false),
            ..Default::default()
        })
        .await
        .expect("create the VMs' subnet");
    let net_mtu = vm_net.mtu.unwrap_or(1500);
    let tag = format!("{:x}", random_u64() & 0xff_ffff);
    let node1 = vm_node(
        lab,
        "vm",
        &vm_net.id,
        prefix_len,
        net_mtu,
        &format!("kt-n1-{tag}"),
    )
    .await;
    let node2 = vm_node(
        lab,
        "vm",
        &vm_net.id,
        prefix_len,
        net_mtu,
        &format!("kt-n2-{tag}"),
    )
    .await;

    // Node 1 names its NIC; node 2 is found by MAC alone.
    let d1 = nested_driver(lab, kind, &node1, Some("eth0"));
    let d2 = nested_driver(lab, kind, &node2, None);
    d1.start().await.expect("driver 1 start");
    d2.start().await.expect("driver 2 start");
    for (d, node) in [(&d1, &node1), (&d2, &node2)] {
        let vm = d.vm_node().expect("the VM port was found");
        assert_eq!(vm.vm_port.id, node.port.id);
        assert_eq!(vm.link, "eth0");
        assert_eq!(vm.trunk_id, None);
    }
    // A pair of the user's own (a VIP, say) on node 1's VM port: kuryr
    // must leave it alone.
    let user_pair = pair_of(&lab.ip4(0, 250), "fa:16:3e:00:be:ef");
    n.update_port(
        &node1.port.id,
        &PortUpdate {
            allowed_address_pairs: Some(vec![user_pair.clone()]),
            ..Default::default()
        },
    )
    .await
    .expect("the user's pair");
    let api1 = lab.api(&d1);
    let api2 = lab.api(&d2);

    // `docker network create` with no -o neutron.net.*: the VM port's
    // network, adopted (tagged, kept).
    let nid = docker_id();
    lab.track_network(&nid);
    let net1 = api1
        .create_network_as(&nid, &cidr, json!({}), json!({}))
        .await;
    let net2 = api2
        .create_network_as(&nid, &cidr, json!({}), json!({}))
        .await;
    let adopted = lab.network_of(&nid).await;
    assert_eq!(
        adopted.id, vm_net.id,
        "the network defaults to the VM port's"
    );
    assert!(
        adopted
            .tags
            .iter()
            .any(|t| t == &format!("kuryr.net.existing:{}", &nid[..12])),
        "{:?}",
        adopted.tags
    );
    assert_eq!(
        lab.subnets_in(&vm_net.id)
            .await
            .iter()
            .map(|s| s.id.clone())
            .collect::<Vec<_>>(),
        vec![vm_subnet.id.clone()],
        "the VMs' subnet is reused"
    );

    let mut c1 = Container::start(lab, &api1, &net1).await;
    let mut c2 = Container::start(lab, &api1, &net1).await;
    let mut c3 = Container::start(lab, &api2, &net2).await;
    for (c, node) in [(&c1, &node1), (&c2, &node1), (&c3, &node2)] {
        assert_eq!(c.port.host_id, "", "nested ports are bound to no host");
        assert_eq!(c.port.network_id, vm_net.id);
        let dev = node
            .ns
            .link(&c.src)
            .unwrap_or_else(|| panic!("{} is not in the node's namespace", c.src));
        assert_eq!(netns::kind(&dev), kind.as_str(), "{dev}");
        assert_eq!(dev["link"], "eth0", "{dev}");
        assert_eq!(netns::mtu(&dev), u64::from(net_mtu));
        let pairs = pairs_of(lab, node).await;
        match kind {
            NestedKind::Macvlan => {
                assert_eq!(
                    dev["linkinfo"]["info_data"]["mode"], "bridge",
                    "macvlan mode: {dev}"
                );
                assert_eq!(netns::mac(&dev), c.port.mac_address);
                assert_eq!(c.ep.mac, c.port.mac_address, "Docker is told the MAC");
                assert!(
                    pairs.contains(&pair_of(c.ip(), &c.port.mac_address)),
                    "{} {} not in {pairs:?}",
                    c.ip(),
                    c.port.mac_address
                );
            }
            _ => {
                assert_eq!(netns::mac(&dev), node.port.mac_address, "ipvlan: NIC's MAC");
                assert_eq!(c.ep.mac, "", "Docker must not set a MAC on an ipvlan");
                assert!(pairs.contains(&pair_of(c.ip(), &node.port.mac_address)));
            }
        }
    }
    assert_eq!(
        pairs_of(lab, &node1).await.len(),
        3,
        "two containers + the user's"
    );
    assert_eq!(pairs_of(lab, &node2).await.len(), 1);

    // A retried CreateEndpoint: same device, no second pair.
    let index_before = node1.ns.link(&c1.src).unwrap()["ifindex"].clone();
    api1.ok(
        "/NetworkDriver.CreateEndpoint",
        requests::create_endpoint(&nid, &c1.ep.eid, &c1.ep.address, ""),
    )
    .await;
    assert_eq!(node1.ns.link(&c1.src).unwrap()["ifindex"], index_before);
    assert_eq!(
        pairs_of(lab, &node1).await.len(),
        3,
        "two containers + the user's"
    );

    // A restarted driver knows node 1's endpoints again (found behind its
    // VM port), and not node 2's.
    let d1b = nested_driver(lab, kind, &node1, Some("eth0"));
    d1b.start().await.expect("restarted driver start");
    let api1b = lab.api(&d1b);
    for (c, known) in [(&c1, true), (&c2, true), (&c3, false)] {
        let info = api1b
            .ok(
                "/NetworkDriver.EndpointOperInfo",
                requests::endpoint(&nid, &c.ep.eid),
            )
            .await;
        let port_id = info["Value"]["port_id"].as_str();
        if known {
            assert_eq!(port_id, Some(c.port.id.as_str()), "{info}");
        } else {
            assert_eq!(port_id, None, "node 2's endpoint in node 1's index: {info}");
        }
    }

    c1.enter(Some(&node1.ns), &format!("kt-c1-{tag}"));
    c2.enter(Some(&node1.ns), &format!("kt-c2-{tag}"));
    c3.enter(Some(&node2.ns), &format!("kt-c3-{tag}"));
    let wait = Duration::from_secs(30);
    assert!(
        c1.sandbox().pings(c2.ip(), wait),
        "c1 -> c2 on one node ({kind})"
    );
    assert!(
        c1.sandbox().pings(c3.ip(), wait),
        "c1 (node 1) -> c3 (node 2) through br-int"
    );
    assert!(
        c3.sandbox().pings(c2.ip(), wait),
        "c3 (node 2) -> c2 (node 1)"
    );

    // Port security does the filtering: without c3's pair on node 2's VM
    // port, c3 is cut off; with it back, it is reachable again.
    let all2 = pairs_of(lab, &node2).await;
    n.update_port(
        &node2.port.id,
        &PortUpdate {
            allowed_address_pairs: Some(vec![]),
            ..Default::default()
        },
    )
    .await
    .expect("drop the pair");
    let start = Instant::now();
    while c1.sandbox().ping_once(c3.ip()) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "c3 still reachable 30 s after its pair was removed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        c1.sandbox().never_pings(c3.ip(), 3),
        "c3 reachable without its allowed address pair"
    );
    n.update_port(
        &node2.port.id,
        &PortUpdate {
            allowed_address_pairs: Some(all2),
            ..Default::default()
        },
    )
    .await
    .expect("restore the pair");
    assert!(
        c1.sandbox().pings(c3.ip(), wait),
        "c3 reachable again with its pair"
    );

    // docker stop: Leave moves the device back, DeleteEndpoint removes it
    // and the pair, ReleaseAddress the port.
    for (c, node, api, net) in [
        (&mut c1, &node1, &api1, &net1),
        (&mut c2, &node1, &api1, &net1),
        (&mut c3, &node2, &api2, &net2),
    ] {
        c.leave(Some(&node.ns));
        assert!(node.ns.has_link(&c.src));
        api.stop_container(net, &c.ep).await;
        assert!(!node.ns.has_link(&c.src), "{} deleted", c.src);
        let pairs = pairs_of(lab, node).await;
        assert!(
            !pairs.iter().any(|p| p.ip_address == c.ip()),
            "pair of {} left: {pairs:?}",
            c.ip()
        );
        assert!(lab.port(&c.port.id).await.is_none(), "port deleted");
    }
    assert_eq!(
        pairs_of(lab, &node1).await,
        vec![user_pair],
        "only the user's pair is left"
    );
    assert!(pairs_of(lab, &node2).await.is_empty());

    api1.remove_network(&net1).await;
    api2.remove_network(&net2).await;
    let kept = n
        .get_network(&vm_net.id)
        .await
        .expect("the VM network stays");
    assert!(kept.tags.is_empty(), "{:?}", kept.tags);
    assert!(
        n.get_subnet(&vm_subnet.id).await.is_ok(),
        "its subnet stays"
    );
    lab.assert_clean().await;
}

#[tokio::test]
async fn nested_macvlan_containers_reach_each_other_across_nodes() {
    lab::run(async |lab: &Lab| nested_mode_case(lab, NestedKind::Macvlan).await).await;
}

#[tokio::test]
async fn nested_ipvlan_containers_reach_each_other_across_nodes() {
    netns::require_root("nested mode");
    match binding::probe_link_kind(NestedKind::Ipvlan) {
        Ok(true) => {}
        Ok(false) => {
            println!("nested_ipvlan: skipped: kernel has no ipvlan");
            eprintln!("nested_ipvlan: skipped: kernel has no ipvlan");
            return;
        }
        Err(e) => panic!("cannot probe the kernel for ipvlan: {e}"),
    }
    lab::run(async |lab: &Lab| nested_mode_case(lab, NestedKind::Ipvlan).await).await;
}

/// Without any MAC of the node matching a Neutron port, start-up fails
/// with a message that says what to set.
#[tokio::test]
async fn nested_mode_without_a_vm_port_fails_at_start() {
    lab::run(async |lab: &Lab| {
        netns::require_root("nested mode");
        let ns = NetNs::new(&format!("kt-nov-{:x}", random_u64() & 0xff_ffff));
        ns.ip_ok(&[
            "link", "add", "eth0", "type", "veth", "peer", "name", "peer0",
        ]);
        ns.ip_ok(&["link", "set", "eth0", "address", "02:00:5e:10:20:30"]);
        for (link_iface, says) in [
            (
                Some("eth0"),
                "no Neutron port has the MAC 02:00:5e:10:20:30",
            ),
            (Some("eth7"), "link_iface \"eth7\" does not exist"),
            (None, "set [binding] link_iface"),
        ] {
            let d = Driver::new(
                neutron(),
                DriverConfig {
                    host_id: lab.host.clone(),
                    port_driver: PortDriverKind::Nested,
                    link_iface: link_iface.map(str::to_string),
                    link_netns: Some(ns.path()),
                    ..Default::default()
                },
                Binder::Noop,
            );
            let e = d.start().await.expect_err("no VM port").to_string();
            assert!(e.contains(says), "{link_iface:?}: {e}");
        }
    })
    .await;
}

// ---------------------------------------------------------------- the binder alone

const PORT: &str = "3f1e2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b";
const TC: &str = "t_c3f1e2a4b-5c";

fn the_port() -> Port {
    Port {
        id: PORT.into(),
        network_id: "n".into(),
        mac_address: "FA:16:3E:AA:BB:CC".into(),
        fixed_ips: vec![FixedIp {
            subnet_id: "s".into(),
            ip_address: "10.9.9.9".into(),
        }],
        ..Default::default()
    }
}

fn req<'a>(p: &'a Port, link: &'a str, mtu: u32) -> BindRequest<'a> {
    BindRequest {
        port: p,
        endpoint_id: "e",
        mtu,
        host_ifname: binding::vif::host_ifname(&p.id),
        container_ifname: binding::vif::container_ifname(&p.id),
        link_iface: Some(link),
        vlan_id: None,
    }
}

/// Bind makes the macvlan (bridge mode, port MAC, MTU capped by the
/// link's), adopts and repairs it on a retry, replaces a wrong leftover,
/// and unbind is idempotent.
#[test]
fn macvlan_binder_is_idempotent() {
    in_netns("nested binder", || async {
        netns::ip_ok(&[
            "link", "add", "eth0", "mtu", "1400", "type", "veth", "peer", "name", "p0",
        ]);
        netns::ip_ok(&["link", "add", "eth1", "type", "veth", "peer", "name", "p1"]);
        let b = Binder::nested(NestedConfig::new(NestedKind::Macvlan));
        let p = the_port();
        b.bind(&req(&p, "eth0", 1450)).await.expect("bind");
        let dev = link_in(None, TC).expect("created");
        assert_eq!(netns::kind(&dev), "macvlan");
        assert_eq!(dev["linkinfo"]["info_data"]["mode"], "bridge");
        assert_eq!(dev["link"], "eth0");
        assert_eq!(netns::mac(&dev), "fa:16:3e:aa:bb:cc");
        assert_eq!(netns::mtu(&dev), 1400, "capped by the link's MTU");
        let index = dev["ifindex"].clone();

        // Damaged (MAC, MTU): a retry repairs the same device.
        netns::ip_ok(&[
            "link",
            "set",
            TC,
            "address",
            "02:00:00:00:00:01",
            "mtu",
            "1300",
        ]);
        b.bind(&req(&p, "eth0", 1450)).await.expect("bind again");
        let dev = link_in(None, TC).unwrap();
        assert_eq!(dev["ifindex"], index, "adopted, not recreated");
        assert_eq!(netns::mac(&dev), "fa:16:3e:aa:bb:cc");
        assert_eq!(netns::mtu(&dev), 1400);

        // On another parent, or of another kind: replaced.
        b.bind(&req(&p, "eth1", 1450)).await.expect("bind on eth1");
        let dev = link_in(None, TC).unwrap();
        assert_eq!(dev["link"], "eth1");
        assert_eq!(netns::mtu(&dev), 1450);
        netns::ip_ok(&["link", "del", TC]);
        netns::ip_ok(&["link", "add", TC, "type", "veth", "peer", "name", "stale0"]);
        b.bind(&req(&p, "eth0", 1450))
            .await
            .expect("bind over a veth");
        assert_eq!(netns::kind(&link_in(None, TC).unwrap()), "macvlan");
        assert!(link_in(None, "stale0").is_none(), "the stale veth went");

        // The link must exist.
        let e = b.bind(&req(&p, "eth9", 1450)).await.unwrap_err();
        assert!(matches!(e, BindError::LinkNotFound { .. }), "{e}");
        assert!(e.to_string().contains("\"eth9\""), "{e}");

        let details = Map::new();
        let unbind = UnbindRequest {
            port_id: PORT,
            network_id: "n",
            host_ifname: binding::vif::host_ifname(PORT),
            container_ifname: TC.into(),
            vif_type: "",
            vif_details: &details,
        };
        b.unbind(&unbind).await.expect("unbind");
        assert!(link_in(None, TC).is_none());
        b.unbind(&unbind).await.expect("unbind of nothing is fine");
    });
}

/// The VLAN binder where the kernel has 8021q; otherwise its error must
/// say what is missing.
#[test]
fn vlan_binder_makes_the_subinterface_or_says_the_kernel_cannot() {
    in_netns("nested binder", || async {
        netns::ip_ok(&["link", "add", "eth0", "type", "veth", "peer", "name", "p0"]);
        let b = Binder::nested(NestedConfig::new(NestedKind::Vlan));
        let p = the_port();
        let mut r = req(&p, "eth0", 1450);
        r.vlan_id = Some(42);
        match b.bind(&r).await {
            Ok(()) => {
                let dev = link_in(None, TC).expect("created");
                assert_eq!(netns::kind(&dev), "vlan");
                assert_eq!(dev["linkinfo"]["info_data"]["id"], 42);
                assert_eq!(netns::mac(&dev), "fa:16:3e:aa:bb:cc");
                b.bind(&r).await.expect("again");
                r.vlan_id = Some(43);
                b.bind(&r).await.expect("another id replaces it");
                assert_eq!(
                    link_in(None, TC).unwrap()["linkinfo"]["info_data"]["id"],
                    43
                );
            }
            Err(e @ BindError::UnsupportedLinkKind { .. }) => {
                assert_eq!(binding::probe_link_kind(NestedKind::Vlan).ok(), Some(false));
                assert!(e.to_string().contains("cannot create vlan devices"), "{e}");
                println!("vlan binder: link part skipped: kernel has no 8021q (vlan) support");
                eprintln!("vlan binder: link part skipped: kernel has no 8021q (vlan) support");
            }
            Err(e) => panic!("vlan bind: {e}"),
        }
    });
}
