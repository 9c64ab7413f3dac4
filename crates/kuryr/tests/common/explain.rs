//! The fault suite's verdict: no Neutron object, host link or OVS port of
//! the driver under test that no Docker object explains.
//!
//! What is the driver's: everything kuryr made for a host ID (networks
//! whose description names it, ports bound to it or whose description
//! names it, subnet pools whose description names it, the subnets of its
//! networks, the `--expose` groups of its ports) since a moment, plus the
//! host links and OVS interfaces kuryr made (by the port they name). What
//! explains them: a Docker network ID on the network's tags, a Docker
//! endpoint ID on the port's tags (a `--aux-address` reservation is its
//! network's), a subnet of an explained network for a pool, an explained
//! port for a host link or group.

use std::collections::BTreeSet;
use std::process::Command;

use kuryr::names;
use kuryr_openstack::neutron::{Network, Port};
use kuryr_openstack::{Neutron, Query};
use serde_json::Value;

/// The Docker objects that explain the driver's objects.
#[derive(Debug, Default, Clone)]
pub struct DockerView {
    /// Docker network IDs.
    pub networks: BTreeSet<String>,
    /// Docker endpoint IDs.
    pub endpoints: BTreeSet<String>,
}

impl DockerView {
    /// What the lab's dockerd holds: its kuryr networks (driver `driver`)
    /// and their endpoints.
    pub fn of_dockerd(driver: &str) -> DockerView {
        let mut view = DockerView::default();
        let ids = super::docker_cli::docker_ok(&[
            "network",
            "ls",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("driver={driver}"),
        ]);
        for id in ids.lines().filter(|l| !l.is_empty()) {
            let out = super::docker_cli::docker(&["network", "inspect", id]);
            let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) else {
                continue;
            };
            view.networks.insert(id.to_string());
            if let Some(containers) = v[0]["Containers"].as_object() {
                for c in containers.values() {
                    if let Some(ep) = c["EndpointID"].as_str() {
                        view.endpoints.insert(ep.to_string());
                    }
                }
            }
        }
        view
    }
}

/// Whose objects are judged.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The driver's `[DEFAULT] host`.
    pub host: String,
    /// Objects made before this are not the test's.
    pub since: jiff::Timestamp,
    /// Nothing else runs (an `alone_*` test): objects whose owner cannot
    /// be told (the group of a port that is gone) count too.
    pub exclusive: bool,
}

impl Scope {
    /// From now on (a second earlier: Neutron's times are in seconds).
    pub fn from_now(host: &str) -> Scope {
        Scope {
            host: host.to_string(),
            since: jiff::Timestamp::now() - jiff::SignedDuration::from_secs(2),
            exclusive: false,
        }
    }

    fn recent(&self, created_at: Option<&str>) -> bool {
        created_at
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .is_none_or(|t| t >= self.since)
    }
}

fn made_on(description: &str, host: &str) -> bool {
    names::parse_made_by(description).is_some_and(|(_, h)| h == host)
        || names::parse_made_in(description).is_some_and(|(_, h)| h == host)
}

fn docker_id_of(tags: &[String]) -> Option<String> {
    names::id_from_tags(tags)
}

/// Every object of the driver (in `scope`) that `view` does not explain,
/// one line each.
pub async fn unexplained(neutron: &Neutron, view: &DockerView, scope: &Scope) -> Vec<String> {
    let mut out = Vec::new();
    let networks = neutron
        .list_networks(&Query::new())
        .await
        .expect("list networks");
    // A network several Docker networks share carries each one's tags.
    let explained_net = |n: &Network| {
        view.networks
            .iter()
            .any(|id| super::env::id_tags(id).iter().all(|t| n.tags.contains(t)))
    };
    let ours: Vec<&Network> = networks
        .iter()
        .filter(|n| made_on(&n.description, &scope.host) && scope.recent(n.created_at.as_deref()))
        .collect();
    let mut live_networks: BTreeSet<String> = BTreeSet::new();
    for n in &networks {
        if explained_net(n) {
            live_networks.insert(n.id.clone());
        }
    }
    for n in &ours {
        if !live_networks.contains(&n.id) {
            out.push(format!("network {} ({}, tags {:?})", n.id, n.name, n.tags));
        }
    }
    let ports = our_ports(neutron, scope).await;
    let mut live_ports = BTreeSet::new();
    for p in &ports {
        let explained = match docker_id_of(&p.tags) {
            Some(ep) => view.endpoints.contains(&ep),
            // An --aux-address reservation lives with its network.
            None => p.device_id == "kuryr-aux-address" && live_networks.contains(&p.network_id),
        };
        if explained {
            live_ports.insert(p.id.clone());
        } else {
            out.push(format!(
                "port {} ({}, device {:?}, tags {:?}, ips {:?})",
                p.id, p.name, p.device_id, p.tags, p.fixed_ips
            ));
        }
    }
    out.extend(unexplained_pools(neutron, scope).await);
    let not_live: BTreeSet<String> = ports
        .iter()
        .map(|p| p.id.clone())
        .filter(|id| !live_ports.contains(id))
        .collect();
    out.extend(unexplained_groups(neutron, scope, &live_ports, &not_live).await);
    out.extend(unexplained_host_sides(neutron, scope, &live_ports).await);
    out
}

/// The driver's ports: bound to its host or made by it.
async fn our_ports(neutron: &Neutron, scope: &Scope) -> Vec<Port> {
    let q = Query::new().eq("device_owner", names::DEVICE_OWNER);
    let mut ports: Vec<Port> = neutron
        .list_ports(&q)
        .await
        .expect("list ports")
        .into_iter()
        .filter(|p| p.host_id == scope.host || made_on(&p.description, &scope.host))
        .collect();
    // Ports kuryr IPAM made carry that owner too; a port made but never
    // claimed may have lost it only if a user changed it: none here.
    ports.retain(|p| scope.recent(p.created_at.as_deref()) || docker_id_of(&p.tags).is_some());
    ports
}

/// Subnet pools made by the driver that no subnet uses.
async fn unexplained_pools(neutron: &Neutron, scope: &Scope) -> Vec<String> {
    let mut out = Vec::new();
    let pools = neutron
        .list_subnetpools(&Query::new())
        .await
        .expect("list subnet pools");
    for p in pools
        .iter()
        .filter(|p| made_on(&p.description, &scope.host) && scope.recent(p.created_at.as_deref()))
    {
        let from = neutron
            .list_subnets(&Query::new().eq("subnetpool_id", &p.id))
            .await
            .expect("list subnets");
        let tagged = neutron
            .list_subnets(&Query::new().tags(&[p.id.as_str()]))
            .await
            .expect("list subnets");
        if from.is_empty() && tagged.is_empty() {
            out.push(format!("subnet pool {} ({})", p.id, p.name));
        }
    }
    out
}

/// `--expose` groups of the driver's ports that are not live (in an
/// exclusive scope: of any port that is not live).
async fn unexplained_groups(
    neutron: &Neutron,
    scope: &Scope,
    live_ports: &BTreeSet<String>,
    not_live: &BTreeSet<String>,
) -> Vec<String> {
    let groups = neutron
        .list_security_groups(&Query::new().eq("description", names::EXPOSED_SG_DESCRIPTION))
        .await
        .expect("list security groups");
    groups
        .iter()
        .filter(|g| {
            g.name
                .strip_suffix(names::EXPOSED_SG_SUFFIX)
                .is_some_and(|port| {
                    not_live.contains(port) || (scope.exclusive && !live_ports.contains(port))
                })
        })
        .map(|g| format!("security group {} ({})", g.id, g.name))
        .collect()
}

/// Host links kuryr made (alias naming their port) and OVS interfaces it
/// owns whose port is not live and not some other live Neutron port.
async fn unexplained_host_sides(
    neutron: &Neutron,
    scope: &Scope,
    live_ports: &BTreeSet<String>,
) -> Vec<String> {
    let mut sides: Vec<(String, String)> = Vec::new();
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // `N: NAME@peer: <...> ... \    alias kuryr port ID`
        let name = line
            .split(": ")
            .nth(1)
            .map(|n| n.split('@').next().unwrap_or(n).to_string());
        if let (Some(name), Some(port)) = (
            name,
            line.split("alias ")
                .nth(1)
                .and_then(|a| names::port_of_host_link_alias(a.trim()))
                .map(str::to_string),
        ) {
            sides.push((format!("host link {name}"), port));
        }
    }
    let out = Command::new("ovs-vsctl")
        .args([
            "--timeout=10",
            "--format=csv",
            "--no-headings",
            "--columns=name,external_ids",
            "find",
            "Interface",
            "external_ids:owner=kuryr",
        ])
        .output()
        .expect("ovs-vsctl");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split(',').next().unwrap_or_default().to_string();
        if let Some(port) = line
            .split("iface-id=")
            .nth(1)
            .map(|r| {
                r.trim_start_matches(['"', '\\'])
                    .split([',', '}', '"', '\\'])
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
            .filter(|p| !p.is_empty())
        {
            sides.push((format!("OVS interface {name}"), port));
        }
    }
    let mut out = Vec::new();
    for (what, port) in sides {
        if live_ports.contains(&port) {
            continue;
        }
        let ours = match neutron.get_port(&port).await {
            Ok(p) => p.host_id == scope.host || made_on(&p.description, &scope.host),
            // Whose, when its port is gone? Only nobody else's in an
            // exclusive scope.
            Err(e) if e.is_not_found() => scope.exclusive,
            Err(e) => panic!("show port {port}: {e}"),
        };
        if ours {
            out.push(format!("{what} (port {port})"));
        }
    }
    out
}
