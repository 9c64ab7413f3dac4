//! DeleteNetwork: the Docker network lets go of the Neutron network. Its
//! own tags go; the network (and its subnets) go only when no other
//! Docker network uses it and kuryr made it; in a pre-existing network
//! only what kuryr added goes (the subnets it made, the PoolID tags on
//! the user's subnets). Every step is idempotent: a retried DeleteNetwork
//! finishes what a failed one left. When Neutron refuses for ports still
//! there, kuryr's orphan ports of this node on the network go first (a
//! crash left them; Docker has no endpoint on a network it removes).

use ipnet::IpNet;
use kuryr_openstack::neutron::{Network, Subnet};
use kuryr_openstack::{Query, TagResource};
use tracing::info;

use super::super::index::NetworkEntry;
use super::super::{Driver, DriverError, Result};
use crate::names;
use crate::protocol::DockerId;

impl Driver {
    pub(in crate::driver) async fn delete_network(&self, id: &DockerId) -> Result<()> {
        let _guard = self.lock(id.as_str()).await;
        let Some(entry) = self.network_entry(id).await? else {
            info!(docker_network = %id, "no Neutron network: nothing to delete");
            return Ok(());
        };
        if names::other_users(&entry.network.tags, id).is_empty() {
            self.delete_ready_ports_of(&entry.network.id).await?;
        }
        if self.delete_unchanged(id, &entry).await? {
            self.index().remove_network(id.as_str());
            self.delete_released_pools(&entry.subnets).await;
            info!(docker_network = %id, neutron_network = %entry.network.id, "network deleted");
            return Ok(());
        }
        // Fresh tags: another host may have started or stopped using it.
        let network = match self.neutron.get_network(&entry.network.id).await {
            Ok(n) => n,
            Err(e) if e.is_not_found() => {
                // Deleted by an attempt that failed after: finish it.
                self.index().remove_network(id.as_str());
                self.delete_released_pools(&entry.subnets).await;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let shared_with_others = !names::other_users(&network.tags, id).is_empty();
        if shared_with_others || entry.existing {
            self.let_go(id, &network, &entry, shared_with_others)
                .await?;
        } else {
            self.delete_made_network(&network).await?;
        }
        self.index().remove_network(id.as_str());
        self.delete_released_pools(&entry.subnets).await;
        info!(docker_network = %id, neutron_network = %network.id, shared_with_others, "network deleted");
        Ok(())
    }

    /// One request where nothing changed: a network kuryr made for this
    /// Docker network alone, as the index knows it, is deleted on the
    /// condition that its revision is still the one the index holds (any
    /// change since, another host's tags included, bumps it). Whether it
    /// was: `false` when the revision is unknown or moved on, and the
    /// caller reads the network afresh.
    async fn delete_unchanged(&self, id: &DockerId, entry: &NetworkEntry) -> Result<bool> {
        let network = &entry.network;
        let alone = names::other_users(&network.tags, id).is_empty();
        let Some(revision) = network.revision_number.filter(|_| alone && !entry.existing) else {
            return Ok(false);
        };
        match self.neutron.delete_network_if(&network.id, revision).await {
            Ok(()) => {}
            // Changed since; or ports in use (Neutron checks those before
            // the revision, so the ports may be another Docker network's,
            // which the index does not know of): read it afresh.
            Err(e) if e.is_precondition_failed() || e.is_conflict() => return Ok(false),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        self.fault_point("DeleteNetwork.network_deleted").await?;
        Ok(true)
    }

    /// Keep the network: remove our tags; if we were its last Docker user,
    /// also what we added to it.
    async fn let_go(
        &self,
        id: &DockerId,
        network: &Network,
        entry: &NetworkEntry,
        others: bool,
    ) -> Result<()> {
        if !others {
            for subnet in &entry.subnets {
                self.give_back_subnet(subnet).await?;
            }
            self.fault_point("DeleteNetwork.subnets_deleted").await?;
        }
        let ours: Vec<String> = names::id_tags(id)
            .into_iter()
            .chain([names::existing_net_tag(id)])
            .filter(|t| network.tags.contains(t))
            .collect();
        self.remove_tags(TagResource::Network, &network.id, &ours)
            .await?;
        self.fault_point("DeleteNetwork.tags_removed").await
    }

    /// A subnet kuryr made in a user's network goes; a user's subnet loses
    /// the PoolID tags kuryr added.
    async fn give_back_subnet(&self, subnet: &Subnet) -> Result<()> {
        if subnet.tags.iter().any(|t| t == names::TAG_CREATED_SUBNET) {
            let mut deleted = self.neutron.delete_subnet(&subnet.id).await;
            if matches!(&deleted, Err(e) if e.is_conflict())
                && self.clear_orphan_ports_of(&subnet.network_id).await? > 0
            {
                deleted = self.neutron.delete_subnet(&subnet.id).await;
            }
            return match deleted {
                Ok(()) => Ok(()),
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) if e.is_conflict() => Err(DriverError::Invalid(format!(
                    "subnet {} that kuryr made in a user's network still has ports: {e}",
                    subnet.id
                ))),
                Err(e) => Err(e.into()),
            };
        }
        let mut pool_tags: Vec<String> = {
            let index = self.index();
            subnet
                .tags
                .iter()
                .filter(|t| index.pool(t).is_some())
                .cloned()
                .collect()
        };
        if pool_tags.is_empty() {
            // Not in the index (a restart): the `kuryrPool-<cidr>` pools.
            let name = format!("{}-{}", self.config.subnetpool_prefix, subnet.cidr);
            let q = self.projects()?.own_only(Query::new().eq("name", name));
            let pools = self.neutron.list_subnetpools(&q).await?;
            pool_tags = pools
                .into_iter()
                .map(|p| p.id)
                .filter(|id| subnet.tags.contains(id))
                .collect();
        }
        self.remove_tags(TagResource::Subnet, &subnet.id, &pool_tags)
            .await
    }

    async fn delete_made_network(&self, network: &Network) -> Result<()> {
        let mut deleted = self.neutron.delete_network(&network.id).await;
        if matches!(&deleted, Err(e) if e.is_conflict())
            && self.clear_orphan_ports_of(&network.id).await? > 0
        {
            deleted = self.neutron.delete_network(&network.id).await;
        }
        match deleted {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) if e.is_conflict() => {
                return Err(DriverError::Invalid(format!(
                    "Neutron network {} still has ports in use: {e}",
                    network.id
                )));
            }
            Err(e) => return Err(e.into()),
        }
        self.fault_point("DeleteNetwork.network_deleted").await
    }

    /// Pools Docker released while their subnet still existed.
    async fn delete_released_pools(&self, subnets: &[Subnet]) {
        let pools: Vec<_> = {
            let index = self.index();
            subnets
                .iter()
                .filter_map(|s| {
                    let cidr: IpNet = s.cidr.parse().ok()?;
                    s.tags
                        .iter()
                        .find_map(|t| index.pool(t))
                        .or_else(|| s.subnetpool_id.as_deref().and_then(|id| index.pool(id)))
                        .or_else(|| index.pool_by_cidr(&cidr, Some(&s.id)))
                        .filter(|p| p.owned)
                        .map(|p| p.pool.id.clone())
                })
                .collect()
        };
        for pool_id in pools {
            match self.neutron.delete_subnetpool(&pool_id).await {
                Ok(()) => {
                    info!(pool = %pool_id, "subnet pool deleted");
                    self.index().remove_pool(&pool_id);
                }
                Err(e) if e.is_not_found() => {
                    self.index().remove_pool(&pool_id);
                }
                Err(e) => info!(pool = %pool_id, error = %e, "subnet pool kept"),
            }
        }
    }
}
