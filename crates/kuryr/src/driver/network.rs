//! CreateNetwork / DeleteNetwork: Docker networks are Neutron networks with
//! one subnet per Docker pool.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use kuryr_openstack::neutron::{AllocationPool, Network, NetworkCreate, Subnet, SubnetCreate};
use kuryr_openstack::{Query, TagResource};
use tracing::{info, warn};

use super::index::{NetworkEntry, PoolEntry};
use super::ipam::parse_bool_option;
use super::{Driver, DriverError, Result};
use crate::config::CapabilityScope;
use crate::names;
use crate::protocol::{CreateNetworkRequest, DockerId, IpamData};

/// The Neutron allocation pools of an `--ip-range` in `subnet`.
///
/// Docker allocates from every address of the range except the subnet's
/// network and (IPv4) broadcast addresses and the gateway; Neutron refuses
/// pools holding those (the gateway too: "conflicts with allocation pool"),
/// so the range is clipped to them and split around the gateway. `--subnet
/// 10.0.0.0/24 --ip-range 10.0.0.0/25` with gateway 10.0.0.1 gives
/// 10.0.0.2-10.0.0.127.
fn allocation_pools(range: &IpNet, subnet: &IpNet, gateway: Option<IpAddr>) -> Vec<AllocationPool> {
    let v4 = matches!(subnet, IpNet::V4(_));
    let num = |ip: IpAddr| match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    let addr = |n: u128| match u32::try_from(n) {
        Ok(n) if v4 => IpAddr::V4(n.into()),
        _ => IpAddr::V6(n.into()),
    };
    let first = num(subnet.network()) + 1;
    let last = num(subnet.broadcast()) - u128::from(v4);
    let (start, end) = (
        num(range.network()).max(first),
        num(range.broadcast()).min(last),
    );
    let mut runs = Vec::new();
    if start <= end {
        match gateway.map(num).filter(|g| (start..=end).contains(g)) {
            Some(g) => {
                if g > start {
                    runs.push((start, g - 1));
                }
                if g < end {
                    runs.push((g + 1, end));
                }
            }
            None => runs.push((start, end)),
        }
    }
    runs.into_iter()
        .map(|(a, b)| AllocationPool {
            start: addr(a).to_string(),
            end: addr(b).to_string(),
        })
        .collect()
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
        if self.config.scope == CapabilityScope::Global && self.network_entry(&id).await?.is_some()
        {
            return Ok(());
        }
        let opts = req.generic_options();
        let shared = parse_bool_option("neutron.net.shared", opts.get("neutron.net.shared"))?;
        let mut net_uuid = opts
            .get("neutron.net.uuid")
            .filter(|s| !s.is_empty())
            .cloned();
        let net_name = opts.get("neutron.net.name").filter(|s| !s.is_empty());
        // Nested (macvlan/ipvlan): containers leave through the VM port, so
        // their network is the VM port's, adopted like a user's network
        // (tagged, never deleted).
        let vm_network = self
            .node()
            .filter(|n| n.trunk_id.is_none())
            .map(|n| n.vm_port.network_id.clone());
        if let Some(vm_net) = &vm_network
            && net_uuid.is_none()
            && net_name.is_none()
        {
            net_uuid = Some(vm_net.clone());
        }
        let net_uuid = net_uuid.as_ref();

        let (network, existing) = if net_uuid.is_some() || net_name.is_some() {
            let network = self.adopt_network(&id, net_uuid, net_name, shared).await?;
            if let Some(vm_net) = &vm_network
                && network.id != *vm_net
            {
                let _ = self.release_adopted(&id, &network).await;
                return Err(DriverError::Invalid(format!(
                    "nested port driver: containers can only join the VM port's network {vm_net}, \
                     not Neutron network {}",
                    network.id
                )));
            }
            (network, true)
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
        let network = self.find_network(uuid, name).await?;
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
                let subnet = self
                    .create_subnet(data, v6, opts, network, existing)
                    .await?;
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

    /// Which pool backs a CIDR: the one IPAM handed out (index), a `-o
    /// neutron.pool.*` pool, or a `kuryrPool-<cidr>` made by any host.
    async fn backing_pool(
        &self,
        cidr: &IpNet,
        v6: bool,
        opts: &BTreeMap<String, String>,
    ) -> Result<Option<PoolEntry>> {
        let cached = self.index().pool_by_cidr(cidr).cloned();
        if cached.is_some() {
            return Ok(cached);
        }
        let v = if v6 { ".v6" } else { "" };
        let uuid = opts
            .get(&format!("neutron.pool{v}.uuid"))
            .filter(|s| !s.is_empty());
        let name = opts
            .get(&format!("neutron.pool{v}.name"))
            .filter(|s| !s.is_empty());
        let found = if uuid.is_some() || name.is_some() {
            Some(self.find_subnetpool(uuid, name).await?)
        } else {
            let name = names::subnetpool_name(&self.config.subnetpool_prefix, cidr);
            self.neutron
                .list_subnetpools(&Query::new().eq("name", name))
                .await?
                .into_iter()
                .find(|p| p.prefixes.iter().any(|x| x == &cidr.to_string()))
        };
        Ok(found.map(|pool| PoolEntry {
            pool,
            cidr: *cidr,
            ip_range: None,
            carved_from: None,
            owned: false,
        }))
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
        let pool = self.backing_pool(&cidr, v6, opts).await?;
        let subnetpool_id = pool
            .as_ref()
            .map(|p| p.carved_from.clone().unwrap_or_else(|| p.pool.id.clone()));
        let gateway = data.gateway.map(|g| g.addr());
        let allocation_pools = match pool.as_ref().and_then(|p| p.ip_range) {
            Some(range) => {
                let pools = allocation_pools(&range, &cidr, gateway);
                if pools.is_empty() {
                    return Err(DriverError::Invalid(format!(
                        "--ip-range {range} leaves no address to allocate in {cidr}"
                    )));
                }
                Some(pools)
            }
            None => None,
        };
        let body = SubnetCreate {
            network_id: network.id.clone(),
            ip_version: if v6 { 6 } else { 4 },
            name: Some(names::subnet_name(&cidr)),
            cidr: Some(cidr.to_string()),
            subnetpool_id,
            gateway_ip: gateway.map(|g| Some(g.to_string())),
            enable_dhcp: Some(self.config.enable_dhcp),
            allocation_pools,
            ..Default::default()
        };
        let subnet = self.neutron.create_subnet(&body).await.map_err(|e| {
            // Neutron answers 500 SubnetAllocationError when the CIDR is
            // already allocated from the pool (the same --subnet twice).
            if e.is_conflict()
                || e.status() == Some(400)
                || e.kind() == Some("SubnetAllocationError")
            {
                DriverError::Invalid(format!("cannot create subnet {cidr} in Neutron: {e}"))
            } else {
                e.into()
            }
        })?;
        // Tagged with the Docker PoolID, as kuryr-libnetwork does: its
        // ReleaseAddress only deletes ports of subnets carrying that tag.
        let mut tags: Vec<&str> = pool.iter().map(|p| p.pool.id.as_str()).collect();
        if existing {
            // Mark what we add to a user's network, so only that goes later.
            tags.push(names::TAG_CREATED_SUBNET);
        }
        if tags.is_empty() {
            return Ok(subnet);
        }
        match self
            .neutron
            .replace_tags(TagResource::Subnet, &subnet.id, &tags)
            .await
        {
            Ok(tags) => Ok(Subnet { tags, ..subnet }),
            Err(e) => {
                if let Err(err) = self.neutron.delete_subnet(&subnet.id).await
                    && !err.is_not_found()
                {
                    warn!(subnet = %subnet.id, error = %err, "rollback: subnet not deleted");
                }
                Err(e.into())
            }
        }
    }

    /// `--aux-address` values are reserved as ports so Neutron never hands
    /// them to a container.
    async fn reserve_aux_addresses(&self, data: &IpamData, subnet: &Subnet) -> Result<()> {
        for value in data.aux_addresses.values() {
            let ip = value
                .split('/')
                .next()
                .and_then(|ip| ip.parse::<IpAddr>().ok())
                .ok_or_else(|| {
                    DriverError::Invalid(format!("aux address {value:?} is not an IP"))
                })?;
            let port = self
                .create_ipam_port(subnet, Some(ip), Some(super::ipam::AUX_DEVICE_ID))
                .await?;
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
    fn ip_range_becomes_allocation_pools() {
        let pools = |range: &str, subnet: &str, gw: Option<&str>| {
            allocation_pools(
                &range.parse().unwrap(),
                &subnet.parse().unwrap(),
                gw.map(|g| g.parse().unwrap()),
            )
            .into_iter()
            .map(|p| (p.start, p.end))
            .collect::<Vec<_>>()
        };
        let p = |a: &str, b: &str| (a.to_string(), b.to_string());
        let gw = Some("10.0.0.1");
        assert_eq!(
            pools("10.0.0.128/25", "10.0.0.0/24", gw),
            [p("10.0.0.128", "10.0.0.254")]
        );
        assert_eq!(
            pools("10.0.0.0/25", "10.0.0.0/24", gw),
            [p("10.0.0.2", "10.0.0.127")]
        );
        assert_eq!(
            pools("10.0.0.0/24", "10.0.0.0/24", Some("10.0.0.100")),
            [p("10.0.0.1", "10.0.0.99"), p("10.0.0.101", "10.0.0.254")]
        );
        assert_eq!(
            pools("10.0.0.0/28", "10.0.0.0/24", None),
            [p("10.0.0.1", "10.0.0.15")]
        );
        assert!(pools("10.0.0.1/32", "10.0.0.0/24", gw).is_empty());
        assert_eq!(
            pools("fd00::/120", "fd00::/64", Some("fd00::1")),
            [p("fd00::2", "fd00::ff")]
        );
    }
}
