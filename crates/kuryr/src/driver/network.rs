//! CreateNetwork / DeleteNetwork: Docker networks are Neutron networks with
//! one subnet per Docker pool.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use kuryr_openstack::neutron::{AllocationPool, Network, NetworkCreate, Subnet, SubnetCreate};
use kuryr_openstack::{Query, TagResource};
use tracing::{info, warn};

use super::index::NetworkEntry;
use super::ipam::parse_bool_option;
use super::{Driver, DriverError, Result};
use crate::names;
use crate::protocol::{CreateNetworkRequest, DockerId, IpamData};

/// First and last address of an `--ip-range`, as a Neutron allocation pool.
fn allocation_pool(range: &IpNet) -> Option<AllocationPool> {
    let (start, end) = match range {
        IpNet::V4(n) => {
            let mut hosts = n.hosts();
            let first = hosts.next()?;
            (IpAddr::V4(first), IpAddr::V4(hosts.last().unwrap_or(first)))
        }
        IpNet::V6(n) => (
            IpAddr::V6((u128::from(n.network()) + 1).into()),
            IpAddr::V6(n.broadcast()),
        ),
    };
    Some(AllocationPool {
        start: start.to_string(),
        end: end.to_string(),
    })
}

impl Driver {
    /// The network of a Docker ID: from the index, else from Neutron tags
    /// (a network made by another daemon or before a restart).
    pub(super) async fn network_entry(&self, id: &DockerId) -> Result<Option<NetworkEntry>> {
        let known = self.index().network(id.as_str()).cloned();
        if known.is_some() {
            return Ok(known);
        }
        let mut found = self
            .neutron
            .list_networks(&Query::new().tags(&names::id_tags(id)))
            .await?;
        let network = match found.len() {
            0 => return Ok(None),
            1 => found.remove(0),
            n => {
                // Left by a non-idempotent driver; use the oldest-looking one
                // rather than failing forever.
                warn!(docker_network = %id, count = n, "several Neutron networks carry this Docker ID");
                found.remove(0)
            }
        };
        let subnets = self
            .neutron
            .list_subnets(&Query::new().eq("network_id", &network.id))
            .await?;
        let mut index = self.index();
        index.put_network(id.to_string(), network, subnets);
        Ok(index.network(id.as_str()).cloned())
    }

    pub(super) async fn create_network(&self, req: CreateNetworkRequest) -> Result<()> {
        let id = req.network_id.clone();
        let _guard = self.lock(id.as_str()).await;
        if self.index().network(id.as_str()).is_some() {
            return Ok(());
        }
        // Locally scoped IDs are random per host and the index knows every
        // network this daemon made; a global ID may come from any host.
        if self.config.scope == "global" && self.network_entry(&id).await?.is_some() {
            return Ok(());
        }
        let opts = req.generic_options();
        let shared = parse_bool_option("neutron.net.shared", opts.get("neutron.net.shared"))?;
        let net_uuid = opts.get("neutron.net.uuid").filter(|s| !s.is_empty());
        let net_name = opts.get("neutron.net.name").filter(|s| !s.is_empty());

        let (network, existing) = if net_uuid.is_some() || net_name.is_some() {
            (self.adopt_network(&id, net_uuid, net_name, shared).await?, true)
        } else {
            let network = self
                .neutron
                .create_network(&NetworkCreate {
                    name: Some(names::network_name(&id)),
                    admin_state_up: Some(true),
                    shared,
                    ..Default::default()
                })
                .await?;
            match self
                .neutron
                .replace_tags(TagResource::Network, &network.id, &names::id_tags(&id))
                .await
            {
                Ok(tags) => (Network { tags, ..network }, false),
                Err(e) => {
                    self.delete_network_quietly(&network.id).await;
                    return Err(e.into());
                }
            }
        };

        match self.create_subnets(&req, &opts, &network, existing).await {
            Ok(subnets) => {
                info!(docker_network = %id, neutron_network = %network.id, existing, subnets = subnets.len(), "network ready");
                self.index().put_network(id.to_string(), network, subnets);
                Ok(())
            }
            Err(e) => {
                if existing {
                    let _ = self.release_adopted(&id, &network).await;
                } else {
                    self.delete_network_quietly(&network.id).await;
                }
                Err(e)
            }
        }
    }

    async fn delete_network_quietly(&self, neutron_id: &str) {
        if let Err(e) = self.neutron.delete_network(neutron_id).await
            && !e.is_not_found()
        {
            warn!(network = neutron_id, error = %e, "rollback: network not deleted");
        }
    }

    /// `-o neutron.net.uuid|name`: tag the user's network as ours too.
    async fn adopt_network(
        &self,
        id: &DockerId,
        uuid: Option<&String>,
        name: Option<&String>,
        shared: Option<bool>,
    ) -> Result<Network> {
        let network = match uuid {
            Some(uuid) => self.neutron.get_network(uuid).await.map_err(|e| {
                if e.is_not_found() {
                    DriverError::NotFound(format!("Neutron network {uuid} does not exist"))
                } else {
                    e.into()
                }
            })?,
            None => {
                let name = name.map(String::as_str).unwrap_or_default();
                let mut found = self
                    .neutron
                    .list_networks(&Query::new().eq("name", name))
                    .await?;
                match found.len() {
                    0 => {
                        return Err(DriverError::NotFound(format!(
                            "no Neutron network is named {name:?}"
                        )));
                    }
                    1 => found.remove(0),
                    n => {
                        return Err(DriverError::Invalid(format!(
                            "{n} Neutron networks are named {name:?}: use neutron.net.uuid"
                        )));
                    }
                }
            }
        };
        if let Some(shared) = shared
            && shared != network.shared
        {
            return Err(DriverError::Invalid(format!(
                "neutron.net.shared={shared} but Neutron network {} has shared={}",
                network.id, network.shared
            )));
        }
        if let Some(owner) = names::id_from_tags(&network.tags)
            && owner != id.as_str()
        {
            return Err(DriverError::Invalid(format!(
                "Neutron network {} is already used by Docker network {owner}",
                network.id
            )));
        }
        let mut tags = network.tags.clone();
        for t in names::id_tags(id)
            .into_iter()
            .chain([names::existing_net_tag(id)])
        {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        let tags = self
            .neutron
            .replace_tags(TagResource::Network, &network.id, &tags)
            .await?;
        Ok(Network { tags, ..network })
    }

    /// Remove our tags from an adopted network (it stays).
    async fn release_adopted(&self, id: &DockerId, network: &Network) -> Result<()> {
        let ours = names::id_tags(id)
            .into_iter()
            .chain([names::existing_net_tag(id)])
            .collect::<Vec<_>>();
        let kept: Vec<&String> = network.tags.iter().filter(|t| !ours.contains(t)).collect();
        match self
            .neutron
            .replace_tags(TagResource::Network, &network.id, &kept)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// One subnet per pool Docker's IPAM handed out, reusing a subnet with
    /// the same CIDR in an adopted network.
    async fn create_subnets(
        &self,
        req: &CreateNetworkRequest,
        opts: &BTreeMap<String, String>,
        network: &Network,
        existing: bool,
    ) -> Result<Vec<Subnet>> {
        let present = if existing {
            self.neutron
                .list_subnets(&Query::new().eq("network_id", &network.id))
                .await?
        } else {
            Vec::new()
        };
        let mut result: Vec<Subnet> = Vec::new();
        let mut created: Vec<String> = Vec::new();
        let outcome = async {
            for (data, v6) in req
                .ipv4_data
                .iter()
                .map(|d| (d, false))
                .chain(req.ipv6_data.iter().map(|d| (d, true)))
            {
                let cidr = data.pool.trunc();
                if let Some(s) = present.iter().find(|s| s.cidr == cidr.to_string()) {
                    result.push(s.clone());
                    continue;
                }
                let subnet = self.create_subnet(data, v6, opts, network, existing).await?;
                created.push(subnet.id.clone());
                self.reserve_aux_addresses(data, &subnet).await?;
                result.push(subnet);
            }
            Ok::<_, DriverError>(())
        }
        .await;
        match outcome {
            Ok(()) => Ok(result),
            Err(e) => {
                for id in created {
                    if let Err(err) = self.neutron.delete_subnet(&id).await
                        && !err.is_not_found()
                    {
                        warn!(subnet = %id, error = %err, "rollback: subnet not deleted");
                    }
                }
                Err(e)
            }
        }
    }

    async fn create_subnet(
        &self,
        data: &IpamData,
        v6: bool,
        opts: &BTreeMap<String, String>,
        network: &Network,
        existing: bool,
    ) -> Result<Subnet> {
        let cidr = data.pool.trunc();
        let v = if v6 { ".v6" } else { "" };
        // Which pool backs this CIDR: the one IPAM handed out (index), a
        // `-o neutron.pool.*` pool, or a `kuryrPool-<cidr>` made by any host.
        let pool = {
            let cached = self.index().pool_by_cidr(&cidr).cloned();
            match cached {
                Some(p) => Some(p),
                None => {
                    let uuid = opts.get(&format!("neutron.pool{v}.uuid")).filter(|s| !s.is_empty());
                    let name = opts.get(&format!("neutron.pool{v}.name")).filter(|s| !s.is_empty());
                    let found = if uuid.is_some() || name.is_some() {
                        Some(self.find_subnetpool(uuid, name).await?)
                    } else {
                        let name = names::subnetpool_name(&self.config.subnetpool_prefix, &cidr);
                        self.neutron
                            .list_subnetpools(&Query::new().eq("name", name))
                            .await?
                            .into_iter()
                            .find(|p| p.prefixes.iter().any(|x| x == &cidr.to_string()))
                    };
                    found.map(|pool| super::index::PoolEntry {
                        pool,
                        cidr,
                        ip_range: None,
                        carved_from: None,
                        owned: false,
                    })
                }
            }
        };
        let subnetpool_id = pool
            .as_ref()
            .map(|p| p.carved_from.clone().unwrap_or_else(|| p.pool.id.clone()));
        let body = SubnetCreate {
            network_id: network.id.clone(),
            ip_version: if v6 { 6 } else { 4 },
            name: Some(names::subnet_name(&cidr)),
            cidr: Some(cidr.to_string()),
            subnetpool_id,
            gateway_ip: data.gateway.map(|g| Some(g.addr().to_string())),
            enable_dhcp: Some(self.config.enable_dhcp),
            allocation_pools: pool
                .as_ref()
                .and_then(|p| p.ip_range)
                .and_then(|r| allocation_pool(&r))
                .map(|p| vec![p]),
            ..Default::default()
        };
        let subnet = self.neutron.create_subnet(&body).await.map_err(|e| {
            if e.is_conflict() || e.status() == Some(400) {
                DriverError::Invalid(format!("cannot create subnet {cidr} in Neutron: {e}"))
            } else {
                e.into()
            }
        })?;
        if existing {
            // Mark what we add to a user's network, so only that goes later.
            let tags = self
                .neutron
                .replace_tags(TagResource::Subnet, &subnet.id, &[names::TAG_CREATED_SUBNET])
                .await?;
            return Ok(Subnet { tags, ..subnet });
        }
        Ok(subnet)
    }

    /// `--aux-address` values are reserved as ports so Neutron never hands
    /// them to a container.
    async fn reserve_aux_addresses(&self, data: &IpamData, subnet: &Subnet) -> Result<()> {
        for value in data.aux_addresses.values() {
            let ip = value
                .split('/')
                .next()
                .and_then(|ip| ip.parse::<IpAddr>().ok())
                .ok_or_else(|| DriverError::Invalid(format!("aux address {value:?} is not an IP")))?;
            let port = self.create_ipam_port(subnet, Some(ip)).await?;
            self.index().put_port(port);
        }
        Ok(())
    }

    pub(super) async fn delete_network(&self, id: &DockerId) -> Result<()> {
        let _guard = self.lock(id.as_str()).await;
        let Some(entry) = self.network_entry(id).await? else {
            info!(docker_network = %id, "no Neutron network: nothing to delete");
            return Ok(());
        };
        if entry.existing {
            for subnet in entry
                .subnets
                .iter()
                .filter(|s| s.tags.iter().any(|t| t == names::TAG_CREATED_SUBNET))
            {
                match self.neutron.delete_subnet(&subnet.id).await {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) if e.is_conflict() => {
                        warn!(subnet = %subnet.id, "subnet still has ports; kept")
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            self.release_adopted(id, &entry.network).await?;
        } else {
            match self.neutron.delete_network(&entry.network.id).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) if e.is_conflict() => {
                    return Err(DriverError::Invalid(format!(
                        "Neutron network {} still has ports in use: {e}",
                        entry.network.id
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.index().remove_network(id.as_str());
        self.delete_released_pools(&entry.subnets).await;
        info!(docker_network = %id, neutron_network = %entry.network.id, "network deleted");
        Ok(())
    }

    /// Pools Docker released while their subnet still existed.
    async fn delete_released_pools(&self, subnets: &[Subnet]) {
        let pools: Vec<_> = {
            let index = self.index();
            subnets
                .iter()
                .filter_map(|s| {
                    let cidr: IpNet = s.cidr.parse().ok()?;
                    s.subnetpool_id
                        .as_deref()
                        .and_then(|id| index.pool(id))
                        .filter(|p| p.owned)
                        .or_else(|| index.pool_by_cidr(&cidr).filter(|p| p.owned))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_range_becomes_allocation_pool() {
        let p = allocation_pool(&"10.0.0.0/28".parse().unwrap()).unwrap();
        assert_eq!((p.start.as_str(), p.end.as_str()), ("10.0.0.1", "10.0.0.14"));
        let p = allocation_pool(&"fd00::/120".parse().unwrap()).unwrap();
        assert_eq!((p.start.as_str(), p.end.as_str()), ("fd00::1", "fd00::ff"));
    }
}
