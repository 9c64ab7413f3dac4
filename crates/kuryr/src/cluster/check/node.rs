//! `ovs`: agent mode with Open vSwitch, the integration bridge exists;
//! `link`: nested and vlan modes, `[binding] link_iface` exists.

use std::path::Path;
use std::time::Duration;

use super::{L2_AGENT_TYPES, Loaded, Report, Status};
use crate::config::PortDriverKind;

/// Agent mode with the Open vSwitch agent (or no agent found): the bridge.
pub(super) async fn check_ovs(
    r: &mut Report,
    agent_type: Option<&str>,
    loaded: &Loaded,
    timeout: Duration,
) {
    match loaded.port_driver() {
        Some(PortDriverKind::Veth) if agent_type == Some(L2_AGENT_TYPES[1]) => r.push(
            "ovs",
            Status::Skip,
            "the Linux bridge agent serves this host: no Open vSwitch",
        ),
        Some(PortDriverKind::Veth) => integration_bridge_exists(r, timeout).await,
        Some(other) => r.push(
            "ovs",
            Status::Skip,
            format!("port driver {other} runs no L2 agent on the node"),
        ),
        None => r.push("ovs", Status::Skip, "needs a loadable configuration"),
    }
}

/// `ovs-vsctl br-exists br-int`, bounded by `timeout`.
async fn integration_bridge_exists(r: &mut Report, timeout: Duration) {
    let run = tokio::process::Command::new("ovs-vsctl")
        .args([
            format!("--timeout={}", timeout.as_secs().max(1)),
            "br-exists".into(),
            crate::cluster::render::INTEGRATION_BRIDGE.into(),
        ])
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(timeout + Duration::from_secs(1), run).await {
        Err(_) => r.push(
            "ovs",
            Status::Fail,
            "ovs-vsctl did not answer: is ovsdb-server running? (systemctl status openvswitch-switch)",
        ),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => r.push(
            "ovs",
            Status::Fail,
            "ovs-vsctl not found: install Open vSwitch (kuryr_mode agent with the ovs agent needs it)",
        ),
        Ok(Err(e)) => r.push("ovs", Status::Fail, format!("cannot run ovs-vsctl: {e}")),
        Ok(Ok(out)) => match out.status.code() {
            Some(0) => r.push("ovs", Status::Ok, "Open vSwitch bridge br-int exists"),
            Some(2) => r.push(
                "ovs",
                Status::Fail,
                "Open vSwitch bridge br-int does not exist: the OVS agent creates it when it starts \
                 (check the agent), or re-run `kuryr node setup`",
            ),
            _ => r.push(
                "ovs",
                Status::Fail,
                format!(
                    "ovs-vsctl br-exists br-int failed: {}: is ovsdb-server running?",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ),
        },
    }
}

/// Nested and vlan modes: the interface containers' devices hang off. No
/// line in agent mode or without a configuration.
pub(super) fn check_link(r: &mut Report, loaded: &Loaded) {
    let Some(config) = &loaded.config else {
        return;
    };
    if config.default.default_port_driver == PortDriverKind::Veth {
        return;
    }
    match &config.binding.link_iface {
        None => r.push(
            "link",
            Status::Skip,
            "[binding] link_iface is not set: the driver finds the NIC by the VM port's MAC",
        ),
        Some(iface) => {
            if Path::new("/sys/class/net").join(iface).exists() {
                r.push("link", Status::Ok, format!("interface {iface} exists"));
            } else {
                r.push(
                    "link",
                    Status::Fail,
                    format!(
                        "interface {iface} ([binding] link_iface) does not exist on this node: \
                         fix the kuryr_link_iface label (`ip link` lists the interfaces)"
                    ),
                );
            }
        }
    }
}
