//! `tunnel`: agent mode with tunnels. The agent's endpoint (`tunneling_ip`,
//! as it reports it to Neutron) must be an address of this node, on an
//! Open vSwitch bridge port when the OVS agent runs the userspace datapath
//! (which sends tunnel packets from nowhere else), and a tunnel must reach
//! every host it has to: the Open vSwitch agent's tunnel ports (`type`
//! vxlan/gre/geneve interfaces and their `remote_ip`, read over the OVSDB
//! socket), or the Linux bridge agent's VXLAN forwarding entries (`bridge
//! fdb`, their `dst`).
//!
//! Which hosts: with l2population, those with ACTIVE ports on a network
//! that has ports bound to this host (tunnels come and go with such
//! ports); without it, every other live agent of the same type with a
//! common tunnel type (the OVS agent then meshes them all; the Linux
//! bridge agent uses a multicast group and no per-host entries).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kuryr_openstack::neutron::Agent;
use kuryr_openstack::{Neutron, Query};
use serde_json::Value;

use super::openstack::NeutronState;
use super::{L2_AGENT_TYPES, Loaded, Report, Status};
use crate::binding::ovsdb::{self, Client, DB, Op};
use crate::config::PortDriverKind;

/// What was found on the node and in Neutron.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Observed {
    /// `vxlan`, ...
    pub types: Vec<String>,
    pub endpoint: String,
    /// The interface holding the endpoint address.
    pub endpoint_dev: Option<String>,
    /// The userspace datapath: the endpoint must be on one of
    /// `bridge_ports`.
    pub needs_bridge_port: bool,
    /// Open vSwitch internal ports (bridges' own interfaces).
    pub bridge_ports: BTreeSet<String>,
    /// Remote endpoints a tunnel reaches.
    pub tunnels: BTreeSet<String>,
    /// Remote endpoints a tunnel must reach → their host.
    pub expected: BTreeMap<String, String>,
    /// The Linux bridge agent without l2population: multicast, no
    /// per-host entries.
    pub multicast: bool,
}

/// A loopback endpoint (a single-node lab or all-in-one host) reaches no
/// other host: fine while no other host needs a tunnel to this one.
fn loopback(o: &Observed, types: &str, dev: &str) -> Option<(Status, String)> {
    let ip: std::net::IpAddr = o.endpoint.parse().ok()?;
    if !ip.is_loopback() {
        return None;
    }
    Some(match o.expected.iter().next() {
        None => (
            Status::Skip,
            format!(
                "{types} endpoint {} on {dev} is a loopback address: a single-node setup, \
                 no tunnel can leave this host (set agent.local_ip to join others)",
                o.endpoint
            ),
        ),
        Some((ip, host)) => (
            Status::Fail,
            format!(
                "{types} endpoint {} on {dev} is a loopback address, but host {host} ({ip}) \
                 must be reached: set agent.local_ip to an address of this node the others reach",
                o.endpoint
            ),
        ),
    })
}

/// The line, from what was observed.
pub(super) fn judge(o: &Observed) -> (Status, String) {
    let types = o.types.join(",");
    let Some(dev) = &o.endpoint_dev else {
        return (
            Status::Fail,
            format!(
                "the agent's tunnel endpoint {} is not an address of this node: fix its local_ip \
                 (agent.local_ip in the cluster parameters) and restart the agent",
                o.endpoint
            ),
        );
    };
    if let Some(line) = loopback(o, &types, dev) {
        return line;
    }
    if o.needs_bridge_port && !o.bridge_ports.contains(dev) {
        return (
            Status::Fail,
            format!(
                "the userspace datapath sends {types} packets only from an address on an Open vSwitch bridge \
                 port, and the endpoint {} is on {dev}: set agent.physical_bridge (node setup moves the \
                 address onto the bridge)",
                o.endpoint
            ),
        );
    }
    let on = if o.needs_bridge_port {
        format!(
            "{types} endpoint {} on {dev} (an Open vSwitch bridge port)",
            o.endpoint
        )
    } else {
        format!("{types} endpoint {} on {dev}", o.endpoint)
    };
    if o.multicast {
        return (
            Status::Ok,
            format!("{on}; multicast VXLAN (no l2population): no per-host tunnel to check"),
        );
    }
    let missing: Vec<String> = o
        .expected
        .iter()
        .filter(|(ip, _)| !o.tunnels.contains(*ip))
        .map(|(ip, host)| format!("{ip} (host {host})"))
        .collect();
    if !missing.is_empty() {
        return (
            Status::Fail,
            format!(
                "{on}; no tunnel to {}, which must be reached (ports of a network this host has ports on): \
                 check that the endpoint is reachable from here and the agents' logs",
                missing.join(", ")
            ),
        );
    }
    let reached: Vec<String> = o
        .tunnels
        .iter()
        .map(|ip| match o.expected.get(ip) {
            Some(host) => format!("{ip} ({host})"),
            None => ip.clone(),
        })
        .collect();
    let tunnels = if reached.is_empty() {
        "no tunnel yet: no other host shares a network with ports with this one".to_string()
    } else {
        format!("tunnels to {}", reached.join(", "))
    };
    (Status::Ok, format!("{on}; {tunnels}"))
}

/// The `tunnel` line.
pub(super) async fn check_tunnel(
    r: &mut Report,
    neutron: Option<&NeutronState>,
    agent: Option<&Agent>,
    loaded: &Loaded,
    timeout: Duration,
) {
    match loaded.port_driver() {
        Some(PortDriverKind::Veth) => {}
        Some(other) => {
            r.push(
                "tunnel",
                Status::Skip,
                format!("port driver {other} runs no L2 agent on the node"),
            );
            return;
        }
        None => {
            r.push("tunnel", Status::Skip, "needs a loadable configuration");
            return;
        }
    }
    let (Some(agent), Some(n), Some(host)) = (agent, neutron, &loaded.host) else {
        r.push("tunnel", Status::Skip, "needs a live L2 agent of this host");
        return;
    };
    let c = &agent.configurations;
    let types = strings(&c["tunnel_types"]);
    if types.is_empty() {
        r.push(
            "tunnel",
            Status::Skip,
            "the agent has no tunnel types (VLAN or flat networks only)",
        );
        return;
    }
    let Some(endpoint) = c["tunneling_ip"].as_str().map(str::to_string) else {
        r.push("tunnel", Status::Fail, "the agent reports no tunneling_ip");
        return;
    };
    match observe(&n.client, agent, host, types, endpoint, timeout).await {
        Ok(o) => {
            let (status, message) = judge(&o);
            r.push("tunnel", status, message);
        }
        Err(e) => r.push("tunnel", Status::Fail, e),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect()
}

async fn observe(
    n: &Neutron,
    agent: &Agent,
    host: &str,
    types: Vec<String>,
    endpoint: String,
    timeout: Duration,
) -> Result<Observed, String> {
    let c = &agent.configurations;
    let ovs = agent.agent_type == L2_AGENT_TYPES[0];
    let l2pop = c["l2_population"].as_bool().unwrap_or(false);
    let mut o = Observed {
        endpoint_dev: address_holder(&endpoint, timeout).await?,
        endpoint,
        multicast: !ovs && !l2pop,
        needs_bridge_port: ovs && c["datapath_type"] == "netdev",
        ..Default::default()
    };
    if ovs {
        let interfaces = ovs_interfaces(timeout).await?;
        for (name, kind, remote) in interfaces {
            if kind == "internal" {
                o.bridge_ports.insert(name);
            } else if types.contains(&kind)
                && let Some(ip) = remote
            {
                o.tunnels.insert(ip);
            }
        }
    } else {
        o.tunnels = vxlan_destinations(timeout).await?;
    }
    if !o.multicast {
        o.expected = expected_peers(n, agent, host, &types, l2pop).await?;
    }
    o.types = types;
    Ok(o)
}

/// Run a command that looks, bounded by `timeout`; its stdout.
async fn look(argv: &[&str], timeout: Duration) -> Result<String, String> {
    let run = tokio::process::Command::new(argv[0])
        .args(&argv[1..])
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(timeout, run).await {
        Err(_) => Err(format!(
            "{} did not answer within {timeout:?}",
            argv.join(" ")
        )),
        Ok(Err(e)) => Err(format!("cannot run {}: {e}", argv[0])),
        Ok(Ok(out)) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        Ok(Ok(out)) => Err(format!(
            "{} failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// The interface that has `ip` as an address, from `ip -j addr`.
async fn address_holder(ip: &str, timeout: Duration) -> Result<Option<String>, String> {
    let text = look(&["ip", "-j", "addr", "show"], timeout).await?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("ip -j addr: {e}"))?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .find(|link| {
            link["addr_info"]
                .as_array()
                .is_some_and(|a| a.iter().any(|a| a["local"] == ip))
        })
        .and_then(|link| link["ifname"].as_str().map(str::to_string)))
}

/// Every Open vSwitch interface: name, type, `options:remote_ip`.
async fn ovs_interfaces(
    timeout: Duration,
) -> Result<Vec<(String, String, Option<String>)>, String> {
    let target = ovsdb::default_target();
    let fail = |e: ovsdb::OvsdbError| format!("the Open vSwitch database at {target}: {e}");
    let client = Client::connect(&target, Some(timeout))
        .await
        .map_err(fail)?;
    let select = Op::select("Interface", vec![], &["name", "type", "options"]);
    let results = client.transact(DB, &[select]).await.map_err(fail)?;
    let rows = results
        .first()
        .map(|r| r.rows())
        .transpose()
        .map_err(fail)?
        .unwrap_or_default();
    Ok(rows
        .iter()
        .map(|row| {
            let text = |col: &str| {
                row.get(col)
                    .and_then(|d| d.as_atom())
                    .and_then(|a| a.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let remote = row
                .get("options")
                .and_then(|o| o.get("remote_ip"))
                .and_then(|a| a.as_str())
                .map(str::to_string);
            (text("name"), text("type"), remote)
        })
        .collect())
}

/// The `dst` of every forwarding entry of a VXLAN device (the Linux
/// bridge agent's are `vxlan-<VNI>`), from `bridge -j fdb`.
async fn vxlan_destinations(timeout: Duration) -> Result<BTreeSet<String>, String> {
    let text = look(&["bridge", "-j", "fdb", "show"], timeout).await?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("bridge -j fdb: {e}"))?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            e["ifname"]
                .as_str()
                .is_some_and(|i| i.starts_with("vxlan-"))
        })
        .filter_map(|e| e["dst"].as_str().map(str::to_string))
        .collect())
}

/// The endpoints a tunnel must reach → their host: other live agents of
/// this type with a common tunnel type; with l2population only those of
/// hosts with ACTIVE ports on networks this host has ports on.
async fn expected_peers(
    n: &Neutron,
    agent: &Agent,
    host: &str,
    types: &[String],
    l2pop: bool,
) -> Result<BTreeMap<String, String>, String> {
    let agents = n
        .list_agents(&Query::new())
        .await
        .map_err(|e| format!("cannot list Neutron agents: {e}"))?;
    let mut peers: BTreeMap<String, String> = agents
        .iter()
        .filter(|a| a.agent_type == agent.agent_type && a.alive && a.host != host)
        .filter(|a| {
            strings(&a.configurations["tunnel_types"])
                .iter()
                .any(|t| types.contains(t))
        })
        .filter_map(|a| {
            let ip = a.configurations["tunneling_ip"].as_str()?;
            Some((a.host.clone(), ip.to_string()))
        })
        .map(|(h, ip)| (ip, h))
        .collect();
    if !l2pop {
        return Ok(peers);
    }
    let list = |q: Query| async move {
        n.list_ports(&q)
            .await
            .map_err(|e| format!("cannot list Neutron ports: {e}"))
    };
    let ours = list(Query::new().eq("binding:host_id", host)).await?;
    let networks: BTreeSet<String> = ours.into_iter().map(|p| p.network_id).collect();
    let mut hosts = BTreeSet::new();
    for net in networks {
        for p in list(Query::new().eq("network_id", &net)).await? {
            if p.status == "ACTIVE" && !p.host_id.is_empty() && p.host_id != host {
                hosts.insert(p.host_id);
            }
        }
    }
    peers.retain(|_, h| hosts.contains(h));
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed() -> Observed {
        Observed {
            types: vec!["vxlan".into()],
            endpoint: "10.0.0.1".into(),
            endpoint_dev: Some("br-phy".into()),
            needs_bridge_port: true,
            bridge_ports: ["br-phy", "br-int", "br-tun"].map(String::from).into(),
            tunnels: ["10.0.0.2", "10.0.0.3"].map(String::from).into(),
            expected: [("10.0.0.3".to_string(), "node3".to_string())].into(),
            multicast: false,
        }
    }

    #[test]
    fn every_expected_tunnel_is_there() {
        assert_eq!(
            judge(&observed()),
            (
                Status::Ok,
                "vxlan endpoint 10.0.0.1 on br-phy (an Open vSwitch bridge port); tunnels to 10.0.0.2, \
                 10.0.0.3 (node3)"
                    .into()
            )
        );
        let none = Observed {
            tunnels: BTreeSet::new(),
            expected: BTreeMap::new(),
            needs_bridge_port: false,
            endpoint_dev: Some("eth0".into()),
            ..observed()
        };
        assert_eq!(
            judge(&none),
            (
                Status::Ok,
                "vxlan endpoint 10.0.0.1 on eth0; no tunnel yet: no other host shares a network with ports \
                 with this one"
                    .into()
            )
        );
    }

    #[test]
    fn a_missing_tunnel_fails_naming_the_host() {
        let o = Observed {
            tunnels: ["10.0.0.2".to_string()].into(),
            ..observed()
        };
        let (status, message) = judge(&o);
        assert_eq!(status, Status::Fail);
        assert!(
            message.contains("; no tunnel to 10.0.0.3 (host node3), which must be reached"),
            "{message}"
        );
    }

    #[test]
    fn the_endpoint_must_be_here_and_on_a_bridge_for_netdev() {
        let (status, message) = judge(&Observed {
            endpoint_dev: None,
            ..observed()
        });
        assert_eq!(status, Status::Fail);
        assert!(
            message
                .starts_with("the agent's tunnel endpoint 10.0.0.1 is not an address of this node")
        );
        let (status, message) = judge(&Observed {
            endpoint_dev: Some("eth0".into()),
            ..observed()
        });
        assert_eq!(status, Status::Fail);
        assert!(message.contains("set agent.physical_bridge"), "{message}");
        // The kernel datapath and the Linux bridge agent send from any
        // interface.
        let (status, _) = judge(&Observed {
            endpoint_dev: Some("eth0".into()),
            needs_bridge_port: false,
            ..observed()
        });
        assert_eq!(status, Status::Ok);
    }

    #[test]
    fn a_loopback_endpoint_is_a_single_node_setup() {
        let lo = Observed {
            endpoint: "127.0.0.1".into(),
            endpoint_dev: Some("lo".into()),
            tunnels: BTreeSet::new(),
            expected: BTreeMap::new(),
            ..observed()
        };
        let (status, message) = judge(&lo);
        assert_eq!(status, Status::Skip, "{message}");
        assert!(message.contains("single-node setup"), "{message}");
        let (status, message) = judge(&Observed {
            expected: [("10.0.0.3".to_string(), "node3".to_string())].into(),
            ..lo
        });
        assert_eq!(status, Status::Fail);
        assert!(
            message.contains("host node3 (10.0.0.3) must be reached"),
            "{message}"
        );
    }

    #[test]
    fn multicast_vxlan_has_no_per_host_tunnels() {
        let (status, message) = judge(&Observed {
            multicast: true,
            tunnels: BTreeSet::new(),
            needs_bridge_port: false,
            ..observed()
        });
        assert_eq!(status, Status::Ok);
        assert!(
            message.ends_with("no per-host tunnel to check"),
            "{message}"
        );
    }
}
