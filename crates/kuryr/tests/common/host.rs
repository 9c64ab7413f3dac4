//! The host's own side of a binding: links in the host namespace and the
//! ports of the lab's Open vSwitch `br-int`.

use std::process::Command;

/// Does the host namespace have a link of this name?
pub fn link_exists(name: &str) -> bool {
    std::path::Path::new(&format!("/sys/class/net/{name}")).exists()
}

/// The `master` of a host link (the bridge it is enslaved to), by name.
pub fn master_of(ifname: &str) -> Option<String> {
    std::fs::read_link(format!("/sys/class/net/{ifname}/master"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// Delete a host link, if it is there.
pub fn del_link(name: &str) {
    if link_exists(name) {
        let _ = Command::new("ip")
            .args(["link", "del", "dev", name])
            .output();
    }
}

fn vsctl(args: &[&str]) -> Option<String> {
    let out = Command::new("ovs-vsctl")
        .arg("--timeout=10")
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The ports of `br-int`.
pub fn ovs_ports() -> Vec<String> {
    vsctl(&["list-ports", "br-int"])
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `external_ids:iface-id` of an OVS interface, if it is in OVS.
pub fn ovs_iface_id(ifname: &str) -> Option<String> {
    vsctl(&["get", "Interface", ifname, "external_ids:iface-id"])
        .map(|v| v.trim_matches('"').to_string())
}

/// Remove a port from OVS, if it is there.
pub fn ovs_del_port(name: &str) {
    let _ = vsctl(&["--if-exists", "del-port", name]);
}
