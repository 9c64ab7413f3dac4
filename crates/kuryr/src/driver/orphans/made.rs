//! What kuryr made around ports: a network made on this host that never
//! got its Docker ID tags (a crash between create and tag; the retry made
//! another), a subnet pool made on this host that no subnet uses (a crash
//! between RequestPool and CreateNetwork, a ReleasePool lost while the
//! driver was down), an `--expose` security group whose port is gone.

use std::collections::HashSet;

use kuryr_openstack::Query;
use kuryr_openstack::neutron::{Network, SubnetPool};
use tracing::{info, warn};

use super::super::{Driver, DriverError, Result};
use super::{Collected, IDS_PER_QUERY, older_than};
use crate::cluster::http::Endpoint;
use crate::config::CapabilityScope;
use crate::names;
use crate::protocol::DockerId;

impl Driver {
    /// Networks made on this host for a Docker network that dockerd does
    /// not have, older than the grace period and with no call on them
    /// running here: CreateNetwork died after Neutron's last write, so
    /// Docker never recorded the network (and its retry carries no body).
    /// Removed as `docker network rm` would. Only with `[DEFAULT]
    /// docker_host`, in local scope (a swarm network may be absent from a
    /// node's dockerd and still live).
    pub(super) async fn networks_docker_forgot(&self, c: &mut Collected) -> Result<()> {
        let Some(docker) = &self.config.docker_host else {
            return Ok(());
        };
        if self.config.scope != CapabilityScope::Local {
            return Ok(());
        }
        let grace = self.config.orphan_grace;
        let candidates: Vec<String> = self
            .index()
            .networks()
            .filter(|e| {
                !e.existing
                    && names::parse_made_by(&e.network.description)
                        .is_some_and(|(id, host)| id == e.docker_id && host == self.config.host_id)
                    && older_than(e.network.created_at.as_deref(), grace)
            })
            .map(|e| e.docker_id.clone())
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let endpoint = Endpoint::parse(docker).ok_or_else(|| {
            DriverError::Invalid(format!("[DEFAULT] docker_host {docker}: not a dockerd URL"))
        })?;
        let known = crate::status::docker_network_ids(&endpoint)
            .await
            .map_err(DriverError::Unavailable)?;
        for id in candidates {
            if known.contains(&id) || self.is_locked(&id) {
                continue;
            }
            let Ok(docker_id) = DockerId::parse(&id) else {
                continue;
            };
            let neutron = self.index().network(&id).map(|e| e.network.id.clone());
            match self.delete_network(&docker_id).await {
                Ok(()) => {
                    info!(docker_network = %id, network = ?neutron, reason = "dockerd has no such network: its CreateNetwork died before the answer", "orphan network deleted");
                    c.networks.extend(neutron);
                }
                Err(e) => warn!(docker_network = %id, error = %e, "orphan network not deleted"),
            }
        }
        Ok(())
    }

    pub(super) async fn half_made_networks(&self, c: &mut Collected) -> Result<()> {
        let grace = self.config.orphan_grace;
        // What kuryr makes lives in its own project.
        let q = self.projects()?.own_only(Query::new());
        let networks = self.neutron.list_networks(&q).await?;
        let half_made = |n: &Network| {
            names::parse_made_by(&n.description)
                .is_some_and(|(_, host)| host == self.config.host_id)
                && !n.tags.iter().any(|t| t.starts_with(names::TAG_LOW))
                && older_than(n.created_at.as_deref(), grace)
        };
        for n in networks.iter().filter(|n| half_made(n)) {
            match self.neutron.delete_network(&n.id).await {
                Ok(()) => {
                    info!(network = %n.id, reason = "made by kuryr on this host, never tagged", "orphan network deleted");
                    c.networks.push(n.id.clone());
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => warn!(network = %n.id, error = %e, "orphan network not deleted"),
            }
        }
        Ok(())
    }

    /// Pools made on this host (description) that no subnet is allocated
    /// from or tagged with, that this daemon did not hand out, older than
    /// the grace period. A pool another host uses has a subnet; Neutron
    /// refuses to delete a pool in use anyway.
    pub(super) async fn unused_subnet_pools(&self, c: &mut Collected) -> Result<()> {
        let grace = self.config.orphan_grace;
        let prefix = format!("{}-", self.config.subnetpool_prefix);
        let made_here = |p: &SubnetPool| {
            p.name.starts_with(&prefix)
                && names::parse_made_in(&p.description)
                    .is_some_and(|(_, host)| host == self.config.host_id)
                && older_than(p.created_at.as_deref(), grace)
        };
        let pools: Vec<SubnetPool> = self
            .neutron
            .list_subnetpools(&self.projects()?.own_only(Query::new()))
            .await?
            .into_iter()
            .filter(|p| made_here(p) && self.index().pool(&p.id).is_none())
            .collect();
        for pool in pools {
            let n = &self.neutron;
            let from = n
                .list_subnets(&Query::new().eq("subnetpool_id", &pool.id).fields(&[
                    "id",
                    "network_id",
                    "ip_version",
                    "cidr",
                ]))
                .await?;
            let tagged = n
                .list_subnets(&Query::new().tags(&[pool.id.as_str()]).fields(&[
                    "id",
                    "network_id",
                    "ip_version",
                    "cidr",
                ]))
                .await?;
            if !from.is_empty() || !tagged.is_empty() {
                continue;
            }
            match n.delete_subnetpool(&pool.id).await {
                Ok(()) => {
                    info!(pool = %pool.id, name = %pool.name, reason = "made by kuryr on this host, no subnet uses it", "orphan subnet pool deleted");
                    c.subnet_pools.push(pool.id.clone());
                }
                Err(e) if e.is_not_found() || e.is_in_use() => {}
                Err(e) => warn!(pool = %pool.id, error = %e, "orphan subnet pool not deleted"),
            }
        }
        Ok(())
    }

    pub(super) async fn orphan_security_groups(&self, c: &mut Collected) -> Result<()> {
        let groups = self
            .neutron
            .list_security_groups(&Query::new().eq("description", names::EXPOSED_SG_DESCRIPTION))
            .await?;
        let port_of = |name: &str| {
            name.strip_suffix(names::EXPOSED_SG_SUFFIX)
                .map(str::to_string)
        };
        let ports: Vec<String> = groups.iter().filter_map(|g| port_of(&g.name)).collect();
        let mut existing = HashSet::new();
        for chunk in ports.chunks(IDS_PER_QUERY) {
            let mut q = Query::new().fields(&["id", "network_id"]);
            for id in chunk {
                q = q.eq("id", id);
            }
            existing.extend(self.neutron.list_ports(&q).await?.into_iter().map(|p| p.id));
        }
        for g in &groups {
            let Some(port) = port_of(&g.name) else {
                continue;
            };
            if existing.contains(&port) {
                continue;
            }
            match self.neutron.delete_security_group(&g.id).await {
                Ok(()) => {
                    info!(security_group = %g.id, %port, reason = "its port is gone", "orphan security group deleted");
                    c.security_groups.push(g.id.clone());
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    warn!(security_group = %g.id, error = %e, "orphan security group not deleted")
                }
            }
        }
        Ok(())
    }
}
