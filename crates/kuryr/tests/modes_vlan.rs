//! Nested VLAN mode (`default_port_driver = vlan`): the node is a
//! VLAN-aware VM whose port is a Neutron trunk parent; every container port
//! becomes a subport with its own segmentation id and a VLAN sub-interface
//! of the node's NIC.
//!
//! The Neutron side runs against the lab: concurrent CreateEndpoints on
//! two drivers sharing one trunk (another process taking ids underneath)
//! get distinct ids, the lowest free ones, skipping a user's subport;
//! DeleteEndpoint releases them and the ids are reused; a retried
//! CreateEndpoint adds no second subport. The link side needs the kernel's
//! 8021q support: where it is missing the test says so and runs the
//! drivers with the no-op binder.
//!
//! Needs root and the lab: `eval "$(lab/env kuryr)"`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;

use common::env::{neutron, random_u64};
use common::lab::{self, Api, Ep, Lab, Net};
use common::netns::{self, NetNs};
use common::requests;
use futures_util::FutureExt;
use kuryr::binding::{self, Binder, NestedConfig, NestedKind};
use kuryr::config::PortDriverKind;
use kuryr::driver::{Driver, DriverConfig};
use kuryr_openstack::neutron::{
    NetworkCreate, Port, PortCreate, SubPort, SubnetCreate, Trunk, TrunkCreate,
};

/// A VLAN-aware "VM": a trunk parent port, and a namespace whose `eth0`
/// has the parent's MAC.
struct VlanVm {
    ns: NetNs,
    parent: Port,
    trunk: Trunk,
    /// A subport the user added before kuryr ran (segmentation id 1).
    user_subport: Port,
}

async fn port_on(lab: &Lab, network_id: &str, name: &str) -> Port {
    let p = lab
        .neutron
        .create_port(&PortCreate {
            network_id: network_id.into(),
            name: Some(name.into()),
            admin_state_up: Some(true),
            ..Default::default()
        })
        .await
        .expect("create port");
    lab.track_user_port(&p.id);
    p
}

async fn vlan_vm(lab: &Lab, tag: &str) -> VlanVm {
    let n = &lab.neutron;
    let net = n
        .create_network(&NetworkCreate {
            name: Some(format!("kt-vlanvm-{tag}")),
            admin_state_up: Some(true),
            ..Default::default()
        })
        .await
        .expect("create the VM network");
    lab.track_user_network(&net.id);
    n.create_subnet(&SubnetCreate {
        network_id: net.id.clone(),
        ip_version: 4,
        cidr: Some(lab.cidr4(0)),
        enable_dhcp: Some(false),
        ..Default::default()
    })
    .await
    .expect("create the VM subnet");
    let parent = port_on(lab, &net.id, &format!("kt-vlanvm-{tag}")).await;
    let user_subport = port_on(lab, &net.id, &format!("kt-vlanvm-{tag}-user-sub")).await;
    let trunk = n
        .create_trunk(&TrunkCreate {
            port_id: parent.id.clone(),
            name: Some(format!("kt-trunk-{tag}")),
            sub_ports: Some(vec![SubPort {
                port_id: user_subport.id.clone(),
                segmentation_type: "vlan".into(),
                segmentation_id: 1,
            }]),
            ..Default::default()
        })
        .await
        .expect("create the trunk");
    let ns = NetNs::new(&format!("kt-vlanvm-{tag}"));
    ns.ip_ok(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "wire0",
    ]);
    ns.ip_ok(&["link", "set", "eth0", "address", &parent.mac_address]);
    ns.ip_ok(&["link", "set", "eth0", "up"]);
    VlanVm {
        ns,
        parent,
        trunk,
        user_subport,
    }
}

fn vlan_driver(lab: &Lab, vm: &VlanVm, with_links: bool) -> Driver {
    let binder = if with_links {
        Binder::nested(NestedConfig {
            kind: NestedKind::Vlan,
            netns: Some(vm.ns.path()),
        })
    } else {
        Binder::Noop
    };
    Driver::new(
        neutron(),
        DriverConfig {
            host_id: lab.host.clone(),
            port_driver: PortDriverKind::Vlan,
            link_iface: Some("eth0".into()),
            link_netns: Some(vm.ns.path()),
            ..Default::default()
        },
        binder,
    )
}

/// Subports of the trunk: port id -> segmentation id.
async fn subports(lab: &Lab, vm: &VlanVm) -> BTreeMap<String, u32> {
    lab.neutron
        .get_subports(&vm.trunk.id)
        .await
        .expect("get subports")
        .into_iter()
        .map(|s| (s.port_id, s.segmentation_id))
        .collect()
}

async fn port_of(lab: &Lab, ep: &Ep) -> Port {
    let mut ports = lab.ports_of(&ep.eid).await;
    assert_eq!(ports.len(), 1, "{ports:#?}");
    ports.remove(0)
}

/// The VLAN device of an endpoint in the VM's namespace (kernel with 8021q).
fn check_link(vm: &VlanVm, port: &Port, vlan: u32) {
    let name = format!("t_c{}", &port.id[..11]);
    let dev = vm
        .ns
        .link(&name)
        .unwrap_or_else(|| panic!("{name} missing"));
    assert_eq!(netns::kind(&dev), "vlan", "{dev}");
    assert_eq!(dev["linkinfo"]["info_data"]["id"], vlan, "{dev}");
    assert_eq!(dev["link"], "eth0");
    assert_eq!(netns::mac(&dev), port.mac_address);
}

async fn vlan_case(lab: &Lab, vm: &VlanVm) {
    let with_links = match binding::probe_link_kind(NestedKind::Vlan) {
        Ok(true) => true,
        Ok(false) => {
            println!("vlan mode: link part skipped: kernel has no 8021q (vlan) support");
            eprintln!("vlan mode: link part skipped: kernel has no 8021q (vlan) support");
            false
        }
        Err(e) => panic!("cannot probe the kernel for vlan support: {e}"),
    };
    let da = vlan_driver(lab, vm, with_links);
    let db = vlan_driver(lab, vm, with_links);
    da.start().await.expect("driver A start");
    db.start().await.expect("driver B start");
    for d in [&da, &db] {
        let node = d.vm_node().expect("VM port found");
        assert_eq!(node.vm_port.id, vm.parent.id);
        assert_eq!(node.trunk_id.as_deref(), Some(vm.trunk.id.as_str()));
    }
    let (a, b) = (lab.api(&da), lab.api(&db));

    // vlan mode does not default to the VM's network: kuryr networks.
    let net_a1 = a.create_network(&lab.cidr4(1)).await;
    let net_a2 = a.create_network(&lab.cidr4(2)).await;
    let net_b = b.create_network(&lab.cidr4(3)).await;
    assert_ne!(lab.network_of(&net_a1.nid).await.id, vm.parent.network_id);

    // Six containers at once: two drivers (two processes on one trunk),
    // three networks.
    let before = (da.calls(), db.calls());
    let plan: [(&Api<'_>, &Net); 6] = [
        (&a, &net_a1),
        (&a, &net_a1),
        (&a, &net_a2),
        (&a, &net_a2),
        (&b, &net_b),
        (&b, &net_b),
    ];
    let eps: Vec<Ep> =
        futures_util::future::join_all(plan.iter().map(|(api, net)| api.start_container(net)))
            .await;
    let adds = da
        .calls()
        .since(&before.0)
        .ops
        .get("neutron.add_subports")
        .map_or(0, |s| s.count)
        + db.calls()
            .since(&before.1)
            .ops
            .get("neutron.add_subports")
            .map_or(0, |s| s.count);
    println!(
        "6 concurrent CreateEndpoints: {adds} add_subports calls (retries: {})",
        adds - 6
    );

    let subs = subports(lab, vm).await;
    assert_eq!(
        subs.get(&vm.user_subport.id),
        Some(&1),
        "the user's subport stays"
    );
    let mut ids = BTreeSet::new();
    let mut ports = Vec::new();
    for ep in &eps {
        let port = port_of(lab, ep).await;
        let id = *subs
            .get(&port.id)
            .unwrap_or_else(|| panic!("port {} is not a subport: {subs:?}", port.id));
        assert!(ids.insert(id), "segmentation id {id} given twice: {subs:?}");
        if with_links {
            check_link(vm, &port, id);
        }
        ports.push(port);
    }
    assert_eq!(
        ids,
        (2..=7).collect::<BTreeSet<u32>>(),
        "the lowest free ids, 1 being the user's"
    );
    assert_eq!(subs.len(), 7, "{subs:?}");

    // A retried CreateEndpoint: no second subport, same id.
    let again = &eps[2];
    a.ok(
        "/NetworkDriver.CreateEndpoint",
        requests::create_endpoint(&net_a2.nid, &again.eid, &again.address, ""),
    )
    .await;
    assert_eq!(subports(lab, vm).await, subs, "nothing changed");

    // DeleteEndpoint releases the id; the next container gets it back.
    let (gone, gone_net) = (&eps[1], &net_a1);
    let freed = subs[&ports[1].id];
    a.stop_container(gone_net, gone).await;
    let now = subports(lab, vm).await;
    assert!(!now.contains_key(&ports[1].id), "subport removed: {now:?}");
    assert!(lab.port(&ports[1].id).await.is_none(), "port deleted");
    if with_links {
        assert!(!vm.ns.has_link(&format!("t_c{}", &ports[1].id[..11])));
    }
    let reuse = b.start_container(&net_b).await;
    let reuse_port = port_of(lab, &reuse).await;
    assert_eq!(
        subports(lab, vm).await.get(&reuse_port.id),
        Some(&freed),
        "the released id {freed} is reused"
    );

    // Everything stops: only the user's subport is left.
    for (api, net, ep) in [
        (&a, &net_a1, &eps[0]),
        (&a, &net_a2, &eps[2]),
        (&a, &net_a2, &eps[3]),
        (&b, &net_b, &eps[4]),
        (&b, &net_b, &eps[5]),
        (&b, &net_b, &reuse),
    ] {
        api.stop_container(net, ep).await;
    }
    let left = subports(lab, vm).await;
    assert_eq!(
        left,
        BTreeMap::from([(vm.user_subport.id.clone(), 1)]),
        "only the user's subport is left"
    );
    a.remove_network(&net_a1).await;
    a.remove_network(&net_a2).await;
    b.remove_network(&net_b).await;
    lab.assert_clean().await;
}

#[tokio::test]
async fn vlan_mode_allocates_and_releases_subports() {
    lab::run(async |lab: &Lab| {
        netns::require_root("this test");
        let tag = format!("{:x}", random_u64() & 0xff_ffff);
        let vm = vlan_vm(lab, &tag).await;
        let outcome = AssertUnwindSafe(vlan_case(lab, &vm)).catch_unwind().await;
        // The trunk must go before its ports can.
        let _ = lab.neutron.delete_trunk(&vm.trunk.id).await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    })
    .await;
}

/// A VM port that is not a trunk parent: the vlan driver refuses to start,
/// saying how to make one.
#[tokio::test]
async fn vlan_mode_without_a_trunk_fails_at_start() {
    lab::run(async |lab: &Lab| {
        netns::require_root("this test");
        let tag = format!("{:x}", random_u64() & 0xff_ffff);
        let net = lab
            .neutron
            .create_network(&NetworkCreate {
                name: Some(format!("kt-notrunk-{tag}")),
                ..Default::default()
            })
            .await
            .expect("network");
        lab.track_user_network(&net.id);
        let plain = port_on(lab, &net.id, &format!("kt-notrunk-{tag}")).await;
        let ns = NetNs::new(&format!("kt-notrunk-{tag}"));
        ns.ip_ok(&[
            "link", "add", "eth0", "type", "veth", "peer", "name", "wire0",
        ]);
        ns.ip_ok(&["link", "set", "eth0", "address", &plain.mac_address]);
        let d = Driver::new(
            neutron(),
            DriverConfig {
                host_id: lab.host.clone(),
                port_driver: PortDriverKind::Vlan,
                link_iface: Some("eth0".into()),
                link_netns: Some(ns.path()),
                ..Default::default()
            },
            Binder::Noop,
        );
        let e = d.start().await.expect_err("not a trunk parent").to_string();
        assert!(
            e.contains("is not a trunk parent") && e.contains(&plain.id),
            "{e}"
        );
    })
    .await;
}
