//! A network's subnets: one per pool Docker's IPAM handed out, made from
//! that pool, or a subnet of the same CIDR already in the network reused
//! (a user's, another Docker network's). Every subnet of a Docker network
//! carries the Docker PoolID as a tag while Docker uses it, as
//! kuryr-libnetwork tags it: its ReleaseAddress only deletes ports of
//! subnets with that tag, and the index matches pools to subnets by it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use kuryr_openstack::neutron::{Network, Subnet, SubnetCreate};
use kuryr_openstack::{Query, TagResource};

use super::super::index::{PoolEntry, pool_rank};
use super::super::ipam::AUX_DEVICE_ID;
use super::super::steps::{Journal, Lost, Undo};
use super::super::{Driver, DriverError, Result};
use crate::names;
use crate::protocol::{CreateNetworkRequest, IpamData};

impl Driver {
    /// Every pool of the request has its subnet in `network`, tagged with
    /// the PoolID, and its `--aux-address` values reserved. `look` says the
    /// network may hold subnets already.
    pub(super) async fn ensure_subnets(
        &self,
        req: &CreateNetworkRequest,
        opts: &BTreeMap<String, String>,
        network: &mut Network,
        existing: bool,
        look: bool,
        j: &mut Journal,
    ) -> Result<Vec<Subnet>> {
        let present = if look {
            self.neutron
                .list_subnets(&Query::new().eq("network_id", &network.id))
                .await?
        } else {
            Vec::new()
        };
        let mut result = Vec::new();
        let datas = req.ipv4_data.iter().map(|d| (d, false));
        for (data, v6) in datas.chain(req.ipv6_data.iter().map(|d| (d, true))) {
            let cidr = data.pool.trunc();
            let reused = present.iter().find(|s| s.cidr == cidr.to_string());
            let pool = self
                .backing_pool(&cidr, v6, opts, reused.map(|s| s.id.as_str()))
                .await?;
            let subnet = match reused {
                Some(s) => self.tag_reused_subnet(s.clone(), pool.as_ref(), j).await?,
                None => {
                    let s = self
                        .create_subnet(data, v6, pool.as_ref(), network, existing, j)
                        .await?;
                    // A new subnet bumps its network's revision.
                    network.revision_number = network.revision_number.map(|r| r + 1);
                    self.reserve_aux_addresses(data, &s, j).await?;
                    s
                }
            };
            result.push(subnet);
        }
        Ok(result)
    }

    /// Which pool backs a CIDR (for the Neutron subnet `reused` when the
    /// network has one already): the one IPAM handed out (index), a `-o
    /// neutron.pool.*` pool, or a `kuryrPool-<cidr>` made by any host; of
    /// several, the best by [`pool_rank`].
    async fn backing_pool(
        &self,
        cidr: &IpNet,
        v6: bool,
        opts: &BTreeMap<String, String>,
        reused: Option<&str>,
    ) -> Result<Option<PoolEntry>> {
        let cached = self.index().pool_by_cidr(cidr, reused).cloned();
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
            // kuryr makes its pools in its own project.
            let q = self.projects()?.own_only(Query::new().eq("name", name));
            self.neutron
                .list_subnetpools(&q)
                .await?
                .into_iter()
                .filter(|p| p.prefixes.iter().any(|x| x == &cidr.to_string()))
                .min_by_key(|p| pool_rank(p, reused))
        };
        Ok(found.map(|pool| PoolEntry {
            pool,
            cidr: *cidr,
            carved_from: None,
            owned: false,
        }))
    }

    /// A subnet already in the network: tagged with the PoolID while the
    /// Docker network uses it (the tag goes again at release).
    async fn tag_reused_subnet(
        &self,
        mut subnet: Subnet,
        pool: Option<&PoolEntry>,
        j: &mut Journal,
    ) -> Result<Subnet> {
        let Some(pool) = pool else {
            return Ok(subnet);
        };
        if subnet.tags.contains(&pool.pool.id) {
            return Ok(subnet);
        }
        let tag = vec![pool.pool.id.clone()];
        j.push(Undo::RemoveTags {
            resource: TagResource::Subnet,
            id: subnet.id.clone(),
            tags: tag.clone(),
        });
        self.add_tags(TagResource::Subnet, &subnet.id, &tag).await?;
        subnet.tags.extend(tag);
        Ok(subnet)
    }

    async fn create_subnet(
        &self,
        data: &IpamData,
        v6: bool,
        pool: Option<&PoolEntry>,
        network: &Network,
        existing: bool,
        j: &mut Journal,
    ) -> Result<Subnet> {
        let cidr = data.pool.trunc();
        let mut tags: Vec<String> = pool.iter().map(|p| p.pool.id.clone()).collect();
        if existing {
            // Mark what we add to a user's network, so only that goes later.
            tags.push(names::TAG_CREATED_SUBNET.to_string());
        }
        let body = SubnetCreate {
            network_id: network.id.clone(),
            ip_version: if v6 { 6 } else { 4 },
            name: Some(names::subnet_name(&cidr)),
            cidr: Some(cidr.to_string()),
            // A carved block is allocated from its parent (the default
            // pool), so Neutron refuses overlaps across hosts.
            subnetpool_id: pool.map(|p| p.carved_from.clone().unwrap_or_else(|| p.pool.id.clone())),
            gateway_ip: data.gateway.map(|g| Some(g.addr().to_string())),
            enable_dhcp: Some(self.config.enable_dhcp),
            tags: self.create_tags_any(tags.clone()).filter(|t| !t.is_empty()),
            ..Default::default()
        };
        let lost = Lost::Subnet {
            network_id: network.id.clone(),
            cidr: cidr.to_string(),
        };
        let made = self.neutron.create_subnet(&body);
        let undo = |s: &Subnet| Undo::DeleteSubnet(s.id.clone());
        let subnet = self
            .create_undoable(j, lost, made, undo)
            .await
            .map_err(|e| {
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
        self.fault_point("CreateNetwork.subnet_made").await?;
        if tags.is_empty() || tags.iter().all(|t| subnet.tags.contains(t)) {
            // Nothing to tag, or tagged in the create (`tag-creation`).
            return Ok(subnet);
        }
        let tags = self
            .neutron
            .replace_tags(TagResource::Subnet, &subnet.id, &tags)
            .await?;
        Ok(Subnet { tags, ..subnet })
    }

    /// `--aux-address` values are reserved as ports so Neutron never hands
    /// them to a container.
    async fn reserve_aux_addresses(
        &self,
        data: &IpamData,
        subnet: &Subnet,
        j: &mut Journal,
    ) -> Result<()> {
        for value in data.aux_addresses.values() {
            let ip = value
                .split('/')
                .next()
                .and_then(|ip| ip.parse::<IpAddr>().ok())
                .ok_or_else(|| {
                    DriverError::Invalid(format!("aux address {value:?} is not an IP"))
                })?;
            let port = self
                .create_ipam_port(subnet, Some(ip), Some(AUX_DEVICE_ID), j)
                .await?;
            // kuryr-libnetwork deletes only ports tagged as kuryr's.
            if port.tags.is_empty() {
                let tag = vec![names::PORT_CREATED_TAG.to_string()];
                self.add_tags(TagResource::Port, &port.id, &tag).await?;
            }
            self.index().put_port(port);
        }
        self.fault_point("CreateNetwork.aux_reserved").await
    }
}
