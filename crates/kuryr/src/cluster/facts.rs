//! What node setup learns from the machine it runs on: the host name, who
//! starts services (systemd or node setup itself) and, in agent mode, the
//! tunnel endpoint address. Kept apart so rendering stays a pure function
//! of its inputs.

use std::net::{IpAddr, UdpSocket};
use std::path::Path;
use std::process::Command;

use super::Problem;
use super::labels::{KuryrLabels, KuryrMode};
use super::params::{ClusterParams, InitChoice, LocalIpSource, PhysicalBridge};
use super::render::{Init, NodeFacts};

/// systemd runs this machine (what `sd_booted()` checks).
const SYSTEMD_RUNNING: &str = "/run/systemd/system";

/// Gather the facts `render` needs. `hostname` overrides the machine's
/// host name (e.g. for a node that is a network namespace).
pub fn gather(
    params: &ClusterParams,
    kuryr: &KuryrLabels,
    hostname: Option<&str>,
) -> Result<NodeFacts, Vec<Problem>> {
    let hostname = match hostname {
        Some(h) => h.to_string(),
        None => crate::daemon::hostname(),
    };
    let mut problems = Vec::new();
    if hostname.is_empty() || hostname.contains(|c: char| c.is_whitespace() || c.is_control()) {
        problems.push(Problem::new(
            "hostname",
            format!("the host name {hostname:?} cannot be a binding host"),
        ));
    }
    let needs_ip = kuryr.mode == KuryrMode::Agent && !params.agent.tunnel_types.is_empty();
    let local_ip = match (&params.agent.local_ip, needs_ip) {
        (_, false) => None,
        (None, true) => {
            problems.push(Problem::new(
                "agent.local_ip",
                format!(
                    "agent.local_ip is missing: kuryr_mode agent with tunnel_types {} needs this node's tunnel \
                     address (an address, {{\"interface\": NAME}} or {{\"route_to\": ADDRESS}})",
                    params.agent.tunnel_types.join(",")
                ),
            ));
            None
        }
        (Some(src), true) => match resolve_endpoint(src, params.agent.physical_bridge.as_ref()) {
            Ok(ip) => Some(ip),
            Err(e) => {
                problems.push(Problem::new("agent.local_ip", e));
                None
            }
        },
    };
    let init = match params.init {
        InitChoice::Systemd => Init::Systemd,
        InitChoice::Process => Init::Process,
        InitChoice::Auto if Path::new(SYSTEMD_RUNNING).is_dir() => Init::Systemd,
        InitChoice::Auto => Init::Process,
    };
    if problems.is_empty() {
        Ok(NodeFacts {
            hostname,
            local_ip,
            init,
        })
    } else {
        Err(problems)
    }
}

/// The tunnel endpoint address. When it is the address of the NIC of the
/// physical bridge, an earlier node setup has moved it to the bridge: it is
/// read there.
fn resolve_endpoint(
    src: &LocalIpSource,
    physical_bridge: Option<&PhysicalBridge>,
) -> Result<IpAddr, String> {
    match (src, physical_bridge) {
        (LocalIpSource::Interface(nic), Some(pb)) if *nic == pb.interface => resolve_local_ip(src)
            .or_else(|nic_error| {
                interface_address(&pb.bridge).map_err(|_| {
                    format!(
                        "{nic_error}, and neither has the bridge {} it moves to \
                         (agent.physical_bridge)",
                        pb.bridge
                    )
                })
            }),
        _ => resolve_local_ip(src),
    }
}

/// The address a [`LocalIpSource`] designates on this machine.
pub fn resolve_local_ip(src: &LocalIpSource) -> Result<IpAddr, String> {
    match src {
        LocalIpSource::Address(ip) => Ok(*ip),
        LocalIpSource::RouteTo(dest) => route_source(*dest),
        LocalIpSource::Interface(name) => interface_address(name),
    }
}

/// The source address the kernel would use towards `dest`: a connected UDP
/// socket sends nothing but has its local address chosen by routing.
fn route_source(dest: IpAddr) -> Result<IpAddr, String> {
    let bind = if dest.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(bind).map_err(|e| format!("agent.local_ip.route_to: {e}"))?;
    socket
        .connect((dest, 9))
        .map_err(|e| format!("agent.local_ip.route_to {dest}: no route from this node: {e}"))?;
    let ip = socket
        .local_addr()
        .map_err(|e| format!("agent.local_ip.route_to {dest}: {e}"))?
        .ip();
    if ip.is_unspecified() {
        return Err(format!(
            "agent.local_ip.route_to {dest}: the kernel picked no source address"
        ));
    }
    Ok(ip)
}

/// The first global address of `name`, IPv4 first, from `ip -j addr`.
fn interface_address(name: &str) -> Result<IpAddr, String> {
    let out = Command::new("ip")
        .args(["-j", "addr", "show", "dev", name])
        .output()
        .map_err(|e| format!("agent.local_ip.interface {name}: cannot run ip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "agent.local_ip.interface {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("agent.local_ip.interface {name}: cannot read `ip -j` output: {e}"))?;
    pick_address(&v).ok_or_else(|| {
        format!("agent.local_ip.interface {name}: the interface has no global IP address")
    })
}

/// From `ip -j addr` output: the first global IPv4 address, else the first
/// global IPv6 one.
fn pick_address(v: &serde_json::Value) -> Option<IpAddr> {
    let addrs: Vec<IpAddr> = v
        .as_array()?
        .iter()
        .filter_map(|link| link["addr_info"].as_array())
        .flatten()
        .filter(|a| a["scope"] == "global")
        .filter_map(|a| a["local"].as_str()?.parse().ok())
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn picks_global_ipv4_first() {
        let v = json!([{"ifname": "eth0", "addr_info": [
            {"family": "inet6", "local": "fe80::1", "scope": "link"},
            {"family": "inet6", "local": "2001:db8::5", "scope": "global"},
            {"family": "inet", "local": "10.0.0.5", "scope": "global"}
        ]}]);
        assert_eq!(pick_address(&v), Some("10.0.0.5".parse().unwrap()));
        let v6 = json!([{"addr_info": [{"local": "2001:db8::5", "scope": "global"}]}]);
        assert_eq!(pick_address(&v6), Some("2001:db8::5".parse().unwrap()));
        assert_eq!(pick_address(&json!([{"addr_info": []}])), None);
    }

    #[test]
    fn loopback_route_and_interface() {
        assert_eq!(
            resolve_local_ip(&LocalIpSource::RouteTo("127.0.0.1".parse().unwrap())),
            Ok("127.0.0.1".parse().unwrap())
        );
        assert_eq!(
            resolve_local_ip(&LocalIpSource::Address("10.1.2.3".parse().unwrap())),
            Ok("10.1.2.3".parse().unwrap())
        );
        let err = resolve_local_ip(&LocalIpSource::Interface("nosuchif0".into())).unwrap_err();
        assert!(
            err.starts_with("agent.local_ip.interface nosuchif0: "),
            "{err}"
        );
    }
}
