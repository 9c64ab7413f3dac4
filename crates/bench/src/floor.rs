//! The Neutron floor: the requests our driver makes for an operation,
//! sent straight to Neutron with the same client, one after another
//! within an operation and as many operations at once as the Docker
//! side runs. No Docker, no host side, no wait for ACTIVE: what the
//! operation would cost if only Neutron took time.

use std::time::{Duration, Instant};

use kuryr_openstack::neutron::{
    FixedIp, NetworkCreate, PortCreate, PortUpdate, SubnetCreate, SubnetPoolCreate,
};
use kuryr_openstack::{Neutron, Query, TagResource};

use crate::Result;

/// What the floor's networks are made of.
#[derive(Debug, Clone)]
pub struct FloorNet {
    pub network_id: String,
    pub subnet_id: String,
    pub pool_id: String,
    pub revision: u64,
}

const PREFIX: &str = "kuryr-bench-floor";

/// `network create`: pool lookup + create, network + tags, subnet + tags.
pub async fn network_create(n: &Neutron, cidr: &str, tag: &str) -> Result<(Duration, FloorNet)> {
    let started = Instant::now();
    let name = format!("{PREFIX}-pool-{cidr}");
    let _ = n
        .list_subnetpools(&Query::new().eq("name", name.clone()))
        .await?;
    let prefixlen = cidr
        .split('/')
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(24);
    let pool = n
        .create_subnetpool(&SubnetPoolCreate {
            name,
            prefixes: vec![cidr.to_string()],
            default_prefixlen: Some(prefixlen),
            ..Default::default()
        })
        .await?;
    let network = n
        .create_network(&NetworkCreate {
            name: Some(format!("{PREFIX}-{tag}")),
            admin_state_up: Some(true),
            ..Default::default()
        })
        .await?;
    n.replace_tags(
        TagResource::Network,
        &network.id,
        &[format!("{PREFIX}.lh:{tag}"), format!("{PREFIX}.uh:{tag}")],
    )
    .await?;
    let subnet = n
        .create_subnet(&SubnetCreate {
            network_id: network.id.clone(),
            ip_version: 4,
            cidr: Some(cidr.to_string()),
            subnetpool_id: Some(pool.id.clone()),
            enable_dhcp: Some(false),
            ..Default::default()
        })
        .await?;
    n.replace_tags(
        TagResource::Subnet,
        &subnet.id,
        std::slice::from_ref(&pool.id),
    )
    .await?;
    let took = started.elapsed();
    Ok((
        took,
        FloorNet {
            network_id: network.id,
            subnet_id: subnet.id,
            pool_id: pool.id,
            revision: network.revision_number.unwrap_or(1) + 2,
        },
    ))
}

/// `docker run`: the bound, tagged port; its device; the endpoint tags.
/// Returns the time and the port.
pub async fn run(n: &Neutron, net: &FloorNet, host: &str, eid: &str) -> Result<(Duration, String)> {
    let started = Instant::now();
    let port = n
        .create_port(&PortCreate {
            network_id: net.network_id.clone(),
            name: Some("kuryr-unbound-port".into()),
            admin_state_up: Some(true),
            device_owner: Some("compute:kuryr".into()),
            host_id: Some(host.to_string()),
            fixed_ips: Some(vec![FixedIp {
                subnet_id: net.subnet_id.clone(),
                ip_address: String::new(),
            }]),
            tags: Some(vec![PREFIX.to_string()]),
            ..Default::default()
        })
        .await?;
    n.update_port(
        &port.id,
        &PortUpdate {
            device_id: Some(eid.to_string()),
            ..Default::default()
        },
    )
    .await?;
    n.replace_tags(
        TagResource::Port,
        &port.id,
        &[
            PREFIX.to_string(),
            format!("{PREFIX}.lh:{eid}"),
            format!("{PREFIX}.uh:{eid}"),
        ],
    )
    .await?;
    Ok((started.elapsed(), port.id))
}

/// `docker stop`: the port goes.
pub async fn stop(n: &Neutron, port_id: &str) -> Result<Duration> {
    let started = Instant::now();
    n.delete_port(port_id).await?;
    Ok(started.elapsed())
}

/// `network rm`: the network on its revision, then its pool.
pub async fn network_rm(n: &Neutron, net: &FloorNet) -> Result<Duration> {
    let started = Instant::now();
    if n.delete_network_if(&net.network_id, net.revision)
        .await
        .is_err()
    {
        n.delete_network(&net.network_id).await?;
    }
    n.delete_subnetpool(&net.pool_id).await?;
    Ok(started.elapsed())
}

/// `count` runs at once, spread over `nets` round robin; the wall time,
/// the failures and the first failure's error. The ports are deleted
/// afterwards (not timed).
pub async fn parallel_runs(
    n: &Neutron,
    nets: &[FloorNet],
    host: &str,
    count: usize,
) -> (Duration, usize, Option<String>) {
    let started = Instant::now();
    let runs = (0..count).map(|i| {
        let net = &nets[i % nets.len()];
        let eid = format!("floor{i}");
        async move { run(n, net, host, &eid).await }
    });
    let results = futures_util::future::join_all(runs).await;
    let wall = started.elapsed();
    let mut failures = 0;
    let mut first = None;
    let mut ports = Vec::new();
    for r in results {
        match r {
            Ok((_, p)) => ports.push(p),
            Err(e) => {
                failures += 1;
                first.get_or_insert(e.to_string());
            }
        }
    }
    for p in &ports {
        let _ = n.delete_port(p).await;
    }
    (wall, failures, first)
}

/// Delete what the floor made whatever happened (its names).
pub async fn cleanup(n: &Neutron) {
    if let Ok(nets) = n.list_networks(&Query::new()).await {
        for net in nets.iter().filter(|x| x.name.starts_with(PREFIX)) {
            if let Ok(ports) = n.list_ports(&Query::new().eq("network_id", &net.id)).await {
                for p in ports {
                    let _ = n.delete_port(&p.id).await;
                }
            }
            let _ = n.delete_network(&net.id).await;
        }
    }
    if let Ok(pools) = n.list_subnetpools(&Query::new()).await {
        for p in pools.iter().filter(|p| p.name.starts_with(PREFIX)) {
            let _ = n.delete_subnetpool(&p.id).await;
        }
    }
}
