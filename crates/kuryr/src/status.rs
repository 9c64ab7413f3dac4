//! `kuryr status`: the kuryr networks and endpoints this node serves, as
//! Docker and Neutron each see them, side by side, and what is out of step
//! between the two:
//!
//! - `endpoint_without_port`: Docker has an endpoint on a kuryr network
//!   but no Neutron port carries it (the port was deleted behind Docker's
//!   back: the container has no working network);
//! - `port_without_endpoint`: a port bound to this host is tagged with an
//!   endpoint Docker does not have (a lost DeleteEndpoint; orphan
//!   collection removes it after its grace period);
//! - `network_without_neutron_network`: a Docker kuryr network whose
//!   Neutron network is gone.
//!
//! It reads Docker's API and Neutron with kuryr.conf's credential and
//! changes nothing; it works whether the daemon runs or not. Ports IPAM
//! handed out that no endpoint claimed yet are listed as `unclaimed`
//! (normal while a container starts).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use kuryr_openstack::neutron::{Network, Port};
use kuryr_openstack::{Neutron, Query, Session};
use serde::Serialize;
use serde_json::Value;

use crate::cluster::http::{self, Endpoint};
use crate::config::{Config, PortDriverKind};
use crate::names;

/// How long each Docker request may take.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(10);

/// A Docker kuryr network and its endpoints on this node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DockerNetwork {
    pub id: String,
    pub name: String,
    pub endpoints: Vec<DockerEndpoint>,
}

/// One container's endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DockerEndpoint {
    pub id: String,
    pub container: String,
    pub address: String,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The `binding:host_id` this node's ports carry.
    pub host: String,
    pub networks: Vec<NetworkStatus>,
    /// Ports handed out by IPAM, not yet claimed by an endpoint.
    pub unclaimed: Vec<PortStatus>,
    pub out_of_step: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkStatus {
    pub docker_id: String,
    pub name: String,
    pub neutron_network: Option<String>,
    pub endpoints: Vec<EndpointStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointStatus {
    pub endpoint_id: String,
    pub container: String,
    pub address: String,
    pub port: Option<PortStatus>,
}

/// A Neutron port as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortStatus {
    pub id: String,
    pub network_id: String,
    /// `ACTIVE`, `DOWN`, `BUILD`.
    pub status: String,
    pub binding_host: String,
    pub addresses: Vec<String>,
}

impl From<&Port> for PortStatus {
    fn from(p: &Port) -> Self {
        PortStatus {
            id: p.id.clone(),
            network_id: p.network_id.clone(),
            status: p.status.clone(),
            binding_host: p.host_id.clone(),
            addresses: p.fixed_ips.iter().map(|f| f.ip_address.clone()).collect(),
        }
    }
}

/// One thing out of step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: &'static str,
    pub docker_network: Option<String>,
    pub endpoint: Option<String>,
    pub port: Option<String>,
    pub detail: String,
}

/// The endpoint a port serves: its endpoint tags, else its `device_id`
/// when that is a Docker ID (kuryr-libnetwork's ports).
fn endpoint_of(port: &Port) -> Option<String> {
    names::id_from_tags(&port.tags).or_else(|| {
        (port.device_id.len() == 64 && port.device_id.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| port.device_id.clone())
    })
}

/// Put Docker's and Neutron's views side by side. `check_stray_ports`:
/// every port in `ports` belongs to this node (agent modes), so one
/// without a Docker endpoint is out of step.
pub fn compare(
    host: &str,
    docker: &[DockerNetwork],
    networks: &[Network],
    ports: &[Port],
    check_stray_ports: bool,
) -> Status {
    let mut neutron_of: BTreeMap<String, &Network> = BTreeMap::new();
    for n in networks {
        for id in names::ids_from_tags(&n.tags) {
            neutron_of.insert(id, n);
        }
    }
    let mut port_of: BTreeMap<String, &Port> = BTreeMap::new();
    let mut unclaimed = Vec::new();
    for p in ports {
        match endpoint_of(p) {
            Some(ep) => {
                port_of.insert(ep, p);
            }
            None => unclaimed.push(PortStatus::from(p)),
        }
    }
    let mut out_of_step = Vec::new();
    let mut known_endpoints = BTreeSet::new();
    let mut statuses = Vec::new();
    for net in docker {
        let neutron = neutron_of.get(&net.id).map(|n| n.id.clone());
        if neutron.is_none() {
            out_of_step.push(Problem {
                kind: "network_without_neutron_network",
                docker_network: Some(net.id.clone()),
                endpoint: None,
                port: None,
                detail: format!(
                    "Docker network {} has no Neutron network tagged with its ID",
                    net.name
                ),
            });
        }
        let mut endpoints = Vec::new();
        for ep in &net.endpoints {
            known_endpoints.insert(ep.id.clone());
            let port = port_of.get(&ep.id).map(|p| PortStatus::from(*p));
            if port.is_none() {
                out_of_step.push(Problem {
                    kind: "endpoint_without_port",
                    docker_network: Some(net.id.clone()),
                    endpoint: Some(ep.id.clone()),
                    port: None,
                    detail: format!(
                        "container {} on {} has no Neutron port",
                        ep.container, net.name
                    ),
                });
            }
            endpoints.push(EndpointStatus {
                endpoint_id: ep.id.clone(),
                container: ep.container.clone(),
                address: ep.address.clone(),
                port,
            });
        }
        statuses.push(NetworkStatus {
            docker_id: net.id.clone(),
            name: net.name.clone(),
            neutron_network: neutron,
            endpoints,
        });
    }
    if check_stray_ports {
        out_of_step.extend(stray_ports(&port_of, &known_endpoints, networks));
    }
    Status {
        host: host.to_string(),
        networks: statuses,
        unclaimed,
        out_of_step,
    }
}

/// Ports tagged with an endpoint Docker does not have.
fn stray_ports(
    port_of: &BTreeMap<String, &Port>,
    known_endpoints: &BTreeSet<String>,
    networks: &[Network],
) -> Vec<Problem> {
    port_of
        .iter()
        .filter(|(ep, _)| !known_endpoints.contains(*ep))
        .map(|(ep, p)| Problem {
            kind: "port_without_endpoint",
            docker_network: networks
                .iter()
                .find(|n| n.id == p.network_id)
                .and_then(|n| names::id_from_tags(&n.tags)),
            endpoint: Some(ep.clone()),
            port: Some(p.id.clone()),
            detail: format!(
                "port {} bound to {} is tagged with endpoint {} which Docker does not have",
                p.id,
                p.host_id,
                &ep[..ep.len().min(12)]
            ),
        })
        .collect()
}

/// The table `kuryr status` prints.
pub fn table(s: &Status) -> String {
    let short = |id: &str| id.chars().take(12).collect::<String>();
    let mut rows = vec![
        [
            "NETWORK",
            "NEUTRON NETWORK",
            "CONTAINER",
            "ENDPOINT",
            "ADDRESS",
            "PORT",
            "STATE",
            "HOST",
        ]
        .map(String::from),
    ];
    for n in &s.networks {
        let net = n.neutron_network.as_deref().map_or("-".into(), short);
        if n.endpoints.is_empty() {
            rows.push([
                n.name.clone(),
                net.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
        }
        for e in &n.endpoints {
            let (port, state, host) = match &e.port {
                Some(p) => (short(&p.id), p.status.clone(), p.binding_host.clone()),
                None => ("-".into(), "NO PORT".into(), "-".into()),
            };
            rows.push([
                n.name.clone(),
                net.clone(),
                e.container.clone(),
                short(&e.endpoint_id),
                e.address.clone(),
                port,
                state,
                host,
            ]);
        }
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!("host {}\n", s.host);
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    for p in &s.unclaimed {
        let _ = writeln!(
            out,
            "unclaimed port {} ({}) {}",
            p.id,
            p.addresses.join(" "),
            p.status
        );
    }
    if s.out_of_step.is_empty() {
        out.push_str("in step: every endpoint has its port, every port its endpoint\n");
    } else {
        out.push_str("OUT OF STEP\n");
        for p in &s.out_of_step {
            let _ = writeln!(out, "{}: {}", p.kind, p.detail);
        }
    }
    out
}

/// Docker's kuryr networks, with this node's endpoints on them.
pub(crate) async fn docker_networks(endpoint: &Endpoint) -> Result<Vec<DockerNetwork>, String> {
    let get = |path: String| async move {
        let r = http::request(endpoint, "GET", &path, None, DOCKER_TIMEOUT)
            .await
            .map_err(|e| format!("dockerd at {endpoint}: {e}"))?;
        if r.status != 200 {
            return Err(format!(
                "dockerd at {endpoint}: GET {path}: HTTP {}",
                r.status
            ));
        }
        r.json()
            .ok_or_else(|| format!("dockerd at {endpoint}: GET {path}: not JSON"))
    };
    // filters={"driver":{"kuryr":true}}
    let list =
        get("/networks?filters=%7B%22driver%22%3A%7B%22kuryr%22%3Atrue%7D%7D".into()).await?;
    let mut out = Vec::new();
    for n in list.as_array().into_iter().flatten() {
        let Some(id) = n["Id"].as_str() else { continue };
        if n["Driver"].as_str() != Some(names::DRIVER_NAME) {
            continue;
        }
        let detail = get(format!("/networks/{id}")).await?;
        let mut endpoints: Vec<DockerEndpoint> = detail["Containers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, c): (&String, &Value)| DockerEndpoint {
                id: c["EndpointID"].as_str().unwrap_or_default().to_string(),
                container: c["Name"].as_str().unwrap_or_default().to_string(),
                address: c["IPv4Address"]
                    .as_str()
                    .filter(|a| !a.is_empty())
                    .or(c["IPv6Address"].as_str())
                    .unwrap_or_default()
                    .to_string(),
            })
            .filter(|e| !e.id.is_empty())
            .collect();
        endpoints.sort_by(|a, b| a.container.cmp(&b.container));
        out.push(DockerNetwork {
            id: id.to_string(),
            name: n["Name"].as_str().unwrap_or_default().to_string(),
            endpoints,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The IDs of every network dockerd at `endpoint` has (any driver).
pub(crate) async fn docker_network_ids(endpoint: &Endpoint) -> Result<BTreeSet<String>, String> {
    let r = http::request(endpoint, "GET", "/networks", None, DOCKER_TIMEOUT)
        .await
        .map_err(|e| format!("dockerd at {endpoint}: {e}"))?;
    if r.status != 200 {
        return Err(format!(
            "dockerd at {endpoint}: GET /networks: HTTP {}",
            r.status
        ));
    }
    let list = r
        .json()
        .ok_or_else(|| format!("dockerd at {endpoint}: GET /networks: not JSON"))?;
    let ids = list
        .as_array()
        .ok_or_else(|| format!("dockerd at {endpoint}: GET /networks: not a list"))?;
    Ok(ids
        .iter()
        .filter_map(|n| n["Id"].as_str().map(str::to_string))
        .collect())
}

/// Gather both views and compare them.
pub async fn gather(config: &Config, docker_host: &str) -> Result<Status, String> {
    let docker = Endpoint::parse(docker_host).ok_or_else(|| {
        format!("--docker-host {docker_host}: expected unix:///path or tcp://host:port")
    })?;
    let host = crate::daemon::driver_config(config).host_id;
    let session = Session::new(config.session_config().map_err(|e| e.to_string())?)
        .map_err(|e| kuryr_openstack::chain(&e))?;
    let neutron = Neutron::new(session);
    let docker_networks = docker_networks(&docker).await?;
    let neutron_err =
        |e: kuryr_openstack::Error| format!("neutron: {}", kuryr_openstack::chain(&e));
    let networks: Vec<Network> = neutron
        .list_networks(&Query::new())
        .await
        .map_err(neutron_err)?
        .into_iter()
        .filter(|n| n.tags.iter().any(|t| t.starts_with(names::TAG_LOW)))
        .collect();
    let agent_mode = config.default.default_port_driver == PortDriverKind::Veth;
    let mut q = Query::new().eq("device_owner", names::DEVICE_OWNER);
    if agent_mode {
        q = q.eq("binding:host_id", &host);
    }
    let mut ports = neutron.list_ports(&q).await.map_err(neutron_err)?;
    if !agent_mode {
        // Nested modes bind no port to a host: keep the ports of the
        // endpoints Docker has here; strays cannot be told from another
        // node's ports.
        let here: BTreeSet<&str> = docker_networks
            .iter()
            .flat_map(|n| n.endpoints.iter().map(|e| e.id.as_str()))
            .collect();
        ports.retain(|p| endpoint_of(p).is_some_and(|e| here.contains(e.as_str())));
    }
    Ok(compare(
        &host,
        &docker_networks,
        &networks,
        &ports,
        agent_mode,
    ))
}

/// `kuryr status`: 0 in step, 1 out of step, 2 when a view cannot be read.
pub async fn run(config: Config, docker_host: String, json: bool) -> ExitCode {
    match gather(&config, &docker_host).await {
        Ok(status) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&status).unwrap_or_default()
                );
            } else {
                print!("{}", table(&status));
            }
            if status.out_of_step.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("kuryr status: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuryr_openstack::neutron::FixedIp;

    const NET: &str = "9c1f0d7a3b2e4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5";
    const EP1: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
    const EP2: &str = "1a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
    const EP3: &str = "2a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

    fn tags(id: &str) -> Vec<String> {
        names::id_tags(&crate::protocol::DockerId::parse(id).unwrap())
    }

    fn port(id: &str, endpoint: Option<&str>) -> Port {
        serde_json::from_value(serde_json::json!({
            "id": id, "network_id": "neutron-net", "status": "ACTIVE",
            "binding:host_id": "node1", "device_owner": names::DEVICE_OWNER,
            "tags": endpoint.map(tags).unwrap_or_default(),
            "fixed_ips": [FixedIp { subnet_id: "s".into(), ip_address: "10.0.0.5".into() }],
        }))
        .unwrap()
    }

    #[test]
    fn mismatches_are_named_both_ways() {
        let docker = vec![DockerNetwork {
            id: NET.into(),
            name: "net".into(),
            endpoints: vec![
                DockerEndpoint {
                    id: EP1.into(),
                    container: "c1".into(),
                    address: "10.0.0.5/24".into(),
                },
                DockerEndpoint {
                    id: EP2.into(),
                    container: "c2".into(),
                    address: "10.0.0.6/24".into(),
                },
            ],
        }];
        let network: Network = serde_json::from_value(serde_json::json!({
            "id": "neutron-net", "name": "kuryr-net", "tags": tags(NET),
        }))
        .unwrap();
        let ports = vec![
            port("p1", Some(EP1)),
            port("p3", Some(EP3)),
            port("pu", None),
        ];
        let s = compare("node1", &docker, &[network], &ports, true);
        let kinds: Vec<_> = s
            .out_of_step
            .iter()
            .map(|p| (p.kind, p.endpoint.as_deref(), p.port.as_deref()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("endpoint_without_port", Some(EP2), None),
                ("port_without_endpoint", Some(EP3), Some("p3")),
            ]
        );
        assert_eq!(s.out_of_step[1].docker_network.as_deref(), Some(NET));
        assert_eq!(s.unclaimed.len(), 1);
        let ep1 = &s.networks[0].endpoints[0];
        assert_eq!(ep1.port.as_ref().map(|p| p.status.as_str()), Some("ACTIVE"));
        let t = table(&s);
        assert!(
            t.contains("OUT OF STEP")
                && t.contains("NO PORT")
                && t.lines()
                    .any(|l| l.contains("ACTIVE") && l.ends_with("node1")),
            "{t}"
        );

        // Nested modes: strays are not judged.
        let s = compare("node1", &docker, &[], &ports, false);
        let kinds: Vec<_> = s.out_of_step.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            vec!["network_without_neutron_network", "endpoint_without_port"]
        );
    }

    #[test]
    fn python_ports_are_matched_by_device_id() {
        let mut p = port("p", None);
        p.device_id = EP1.into();
        assert_eq!(endpoint_of(&p).as_deref(), Some(EP1));
        p.device_id = "not-docker".into();
        assert_eq!(endpoint_of(&p), None);
    }
}
