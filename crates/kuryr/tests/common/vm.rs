//! Simulated Nova VMs: a network namespace whose `eth0` is plugged into
//! the lab's `br-int` for a real Neutron port bound to the OVS agent, the
//! way the veth binder plugs a container. Nested-mode and swarm tests run
//! their "nodes" on these.

use std::time::Duration;

use kuryr::binding::{self, BindRequest, Binder, VethConfig};
use kuryr_openstack::neutron::{Port, PortCreate};

use super::env::{docker_id, eventually};
use super::host::{del_link, ovs_del_port};
use super::lab::Lab;
use super::netns::{self, NetNs};

/// How long a port bound to a lab agent may take to become ACTIVE.
pub const ACTIVE_WITHIN: Duration = Duration::from_secs(90);

/// Wait until Neutron reports the port ACTIVE; the port as it is then.
pub async fn wait_active(lab: &Lab, port_id: &str) -> Port {
    eventually(
        &format!("port {port_id} ACTIVE"),
        ACTIVE_WITHIN,
        async || lab.port(port_id).await.filter(|p| p.status == "ACTIVE"),
    )
    .await
}

/// A VM: its namespace, its Neutron port and the tap in `br-int`. Dropping
/// it unplugs it (the namespace goes with the [`NetNs`]).
pub struct VmNode {
    pub ns: NetNs,
    pub port: Port,
    pub tap: String,
}

impl VmNode {
    /// The VM port's (first) address.
    pub fn ip(&self) -> &str {
        &self.port.fixed_ips[0].ip_address
    }
}

impl Drop for VmNode {
    fn drop(&mut self) {
        ovs_del_port(&self.tap);
        del_link(&self.tap);
    }
}

/// The Neutron name of VM `name` of a test family `family` (`vm`,
/// `swarm`): `kt-<family>-<name>`, so a killed run's ports can be found.
pub fn vm_port_name(family: &str, name: &str) -> String {
    format!("kt-{family}-{name}")
}

/// Make VM `name`: a port on `network_id` bound to the lab's OVS agent,
/// plugged as the veth binder plugs (tap in br-int, TX checksum off for the
/// userspace datapath), its container end moved into namespace `name` as
/// `eth0` with the port's address; returns once the port is ACTIVE.
pub async fn vm_node(
    lab: &Lab,
    family: &str,
    network_id: &str,
    prefix_len: u8,
    mtu: u32,
    name: &str,
) -> VmNode {
    let port = lab
        .neutron
        .create_port(&PortCreate {
            network_id: network_id.to_string(),
            name: Some(vm_port_name(family, name)),
            admin_state_up: Some(true),
            device_owner: Some(format!("compute:kt-{family}")),
            device_id: Some(vm_port_name(family, name)),
            host_id: Some(lab.host.clone()),
            ..Default::default()
        })
        .await
        .expect("create the VM port");
    lab.track_user_port(&port.id);
    assert_eq!(
        port.vif_type, "ovs",
        "the VM port is bound to the OVS agent"
    );
    let tap = binding::vif::host_ifname(&port.id);
    let tc = binding::vif::container_ifname(&port.id);
    let node = VmNode {
        ns: NetNs::new(name),
        port: port.clone(),
        tap: tap.clone(),
    };
    Binder::veth(VethConfig::default())
        .bind(&BindRequest {
            port: &port,
            endpoint_id: &docker_id(),
            mtu,
            host_ifname: tap,
            container_ifname: tc.clone(),
            link_iface: None,
            vlan_id: None,
        })
        .await
        .expect("plug the VM port");
    netns::move_link(None, &tc, Some(&node.ns), "eth0");
    node.ns
        .configure("eth0", &format!("{}/{prefix_len}", node.ip()));
    wait_active(lab, &port.id).await;
    node
}
