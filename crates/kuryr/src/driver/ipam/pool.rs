//! RequestPool / ReleasePool: a Docker pool is a Neutron subnet pool,
//! `kuryrPool-<cidr>` (shared by every host that asks for the same CIDR),
//! a user's pool or subnet given with `--ipam-opt neutron.*`, or a block
//! carved from the default pool when there is no `--subnet`.

use std::collections::BTreeMap;

use std::net::IpAddr;

use ipnet::IpNet;
use kuryr_openstack::neutron::{Subnet, SubnetPool, SubnetPoolCreate};
use kuryr_openstack::{Query, TagResource};
use tracing::{info, warn};

use super::super::index::PoolEntry;
use super::super::steps::{Journal, Lost, Undo};
use super::super::{Driver, DriverError, Result, first_host, with_prefix};
use super::{carve_lock_key, family_matches, parse_bool_option, pool_lock_key};
use crate::names;
use crate::protocol::{POOL_GATEWAY, PoolId, RequestPoolRequest, RequestPoolResponse};

/// Most candidates tried when carving a subnet out of a default pool.
const MAX_CARVE_CANDIDATES: usize = 65_536;
/// How many free blocks a carve chooses among.
const CARVE_CHOICES: usize = 16;

/// A random index below `n`, from the standard library's per-process
/// random hash keys (no RNG dependency for one choice).
fn random_index(n: usize) -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    (h.finish() % n.max(1) as u64) as usize
}

/// Where a RequestPool's pool comes from, by `--ipam-opt neutron.*`
/// (per family: `neutron.pool.v6.*` for IPv6).
enum PoolSource<'a> {
    UserPool {
        uuid: Option<&'a String>,
        name: Option<&'a String>,
    },
    UserSubnet {
        uuid: Option<&'a String>,
        name: Option<&'a String>,
    },
    /// `--subnet`, or the default pool without it.
    Cidr,
}

impl PoolSource<'_> {
    fn of(req: &RequestPoolRequest) -> PoolSource<'_> {
        let v = if req.v6 { ".v6" } else { "" };
        let get = |k: String| req.options.get(&k).filter(|s| !s.is_empty());
        let (pool_uuid, pool_name) = (
            get(format!("neutron.pool{v}.uuid")),
            get(format!("neutron.pool{v}.name")),
        );
        let (subnet_uuid, subnet_name) = (
            get(format!("neutron.subnet{v}.uuid")),
            get(format!("neutron.subnet{v}.name")),
        );
        if pool_uuid.is_some() || pool_name.is_some() {
            PoolSource::UserPool {
                uuid: pool_uuid,
                name: pool_name,
            }
        } else if subnet_uuid.is_some() || subnet_name.is_some() {
            PoolSource::UserSubnet {
                uuid: subnet_uuid,
                name: subnet_name,
            }
        } else {
            PoolSource::Cidr
        }
    }
}

/// The CIDR of the Docker pool: `--ip-range` when given (kuryr-libnetwork's
/// contract: the pool, `kuryrPool-<range>` and the Neutron subnet are the
/// range, so each driver finds the other's networks), else `--subnet`
/// (host bits cleared); after checking both are of the request's family
/// and the range is inside the subnet.
fn checked_cidrs(req: &RequestPoolRequest) -> Result<Option<IpNet>> {
    for cidr in [req.pool, req.sub_pool].into_iter().flatten() {
        if !family_matches(&cidr, req.v6) {
            return Err(DriverError::Invalid(format!(
                "pool {cidr} is not an IPv{} network",
                if req.v6 { 6 } else { 4 }
            )));
        }
    }
    let requested = req.pool.map(|p| p.trunc());
    if let (Some(range), Some(pool)) = (req.sub_pool, requested)
        && !(pool.contains(&range.network()) && pool.prefix_len() <= range.prefix_len())
    {
        return Err(DriverError::Invalid(format!(
            "--ip-range {range} is not inside --subnet {pool}"
        )));
    }
    Ok(req.sub_pool.map(|r| r.trunc()).or(requested))
}

impl Driver {
    pub(in crate::driver) async fn request_pool(
        &self,
        req: RequestPoolRequest,
    ) -> Result<RequestPoolResponse> {
        let source = PoolSource::of(&req);
        let shared =
            parse_bool_option("neutron.net.shared", req.options.get("neutron.net.shared"))?;
        let requested = checked_cidrs(&req)?;
        // Carving picks a free block of a parent pool: one carve per parent
        // at a time. Pools of a given CIDR are serialized in `kuryr_pool`;
        // requests for different CIDRs never wait for each other.
        let _carving = match (&source, requested) {
            (PoolSource::Cidr, None) => Some(self.lock(&carve_lock_key(req.v6, None)).await),
            (PoolSource::UserPool { uuid, name }, None) => {
                let parent = uuid.or(*name).map(String::as_str);
                Some(self.lock(&carve_lock_key(req.v6, parent)).await)
            }
            _ => None,
        };
        let (entry, gateway) = self
            .journaled("RequestPool", async |j: &mut Journal| {
                Ok(match source {
                    PoolSource::UserPool { uuid, name } => {
                        let entry = self
                            .user_pool(uuid, name, requested, req.v6, shared, j)
                            .await?;
                        (entry, None)
                    }
                    PoolSource::UserSubnet { uuid, name } => {
                        let (entry, gw) = self
                            .user_subnet_pool(uuid, name, requested, req.v6, shared, j)
                            .await?;
                        (entry, Some(gw))
                    }
                    PoolSource::Cidr => match requested {
                        Some(cidr) => (self.kuryr_pool(cidr, None, shared, j).await?, None),
                        None => (self.default_pool_block(req.v6, j).await?, None),
                    },
                })
            })
            .await?;
        let cidr = entry.cidr;
        let pool_id = entry.pool.id.clone();
        self.index().put_pool(entry);
        let gateway = gateway
            .or_else(|| first_host(&cidr).map(|gw| with_prefix(gw, &cidr)))
            .unwrap_or_default();
        let mut data = BTreeMap::new();
        if !gateway.is_empty() {
            data.insert(POOL_GATEWAY.to_string(), gateway);
        }
        Ok(RequestPoolResponse {
            pool_id,
            pool: cidr.to_string(),
            data,
        })
    }

    /// `--ipam-opt neutron.pool.uuid|name`: the user's pool (tagged as
    /// kuryr's user), or a block of it, or `kuryrPool-<cidr>` for a
    /// `--subnet` that is not its one prefix.
    async fn user_pool(
        &self,
        uuid: Option<&String>,
        name: Option<&String>,
        requested: Option<IpNet>,
        v6: bool,
        shared: Option<bool>,
        j: &mut Journal,
    ) -> Result<PoolEntry> {
        let user = self.find_subnetpool(uuid, name).await?;
        if !user
            .tags
            .iter()
            .any(|t| t == names::SUBNETPOOL_EXISTING_TAG)
        {
            let tag = vec![names::SUBNETPOOL_EXISTING_TAG.to_string()];
            j.push(Undo::RemoveTags {
                resource: TagResource::SubnetPool,
                id: user.id.clone(),
                tags: tag.clone(),
            });
            self.add_tags(TagResource::SubnetPool, &user.id, &tag)
                .await?;
        }
        match requested {
            None => self.carve(&user, v6, j).await,
            Some(cidr) if user.prefixes.len() == 1 && user.prefixes[0] == cidr.to_string() => {
                Ok(PoolEntry {
                    pool: user,
                    cidr,
                    carved_from: None,
                    owned: false,
                })
            }
            Some(cidr) => self.kuryr_pool(cidr, None, shared, j).await,
        }
    }

    /// `--ipam-opt neutron.subnet.uuid|name`: a `kuryrPool-<cidr>` tagged
    /// with the user's subnet, and that subnet's gateway for Docker.
    async fn user_subnet_pool(
        &self,
        uuid: Option<&String>,
        name: Option<&String>,
        requested: Option<IpNet>,
        v6: bool,
        shared: Option<bool>,
        j: &mut Journal,
    ) -> Result<(PoolEntry, String)> {
        let subnet = self.find_subnet(uuid, name).await?;
        let cidr: IpNet = subnet.cidr.parse().map_err(|_| {
            DriverError::Invalid(format!(
                "subnet {} has a bad cidr {}",
                subnet.id, subnet.cidr
            ))
        })?;
        if let Some(r) = requested
            && r != cidr
        {
            return Err(DriverError::Invalid(format!(
                "--subnet {r} does not match Neutron subnet {} ({cidr})",
                subnet.id
            )));
        }
        let gateway = match subnet.gateway_ip.as_deref() {
            Some(gw) => format!("{gw}/{}", cidr.prefix_len()),
            None if v6 => "::/0".into(),
            None => "0.0.0.0/0".into(),
        };
        let entry = self.kuryr_pool(cidr, Some(&subnet.id), shared, j).await?;
        Ok((entry, gateway))
    }

    /// No `--subnet`: a block carved from the default pool.
    async fn default_pool_block(&self, v6: bool, j: &mut Journal) -> Result<PoolEntry> {
        let name = if v6 {
            &self.config.default_subnetpool_v6
        } else {
            &self.config.default_subnetpool_v4
        };
        let default = self
            .find_subnetpool(None, Some(name))
            .await
            .map_err(|e| match e {
                DriverError::NotFound(_) => DriverError::NotFound(format!(
                    "no --subnet given and the default subnet pool {name:?} does not exist: \
                     create it or pass --subnet"
                )),
                other => other,
            })?;
        self.carve(&default, v6, j).await
    }

    /// The `kuryrPool-<cidr>` pool, reused if any host made it already.
    async fn kuryr_pool(
        &self,
        cidr: IpNet,
        subnet_tag: Option<&str>,
        shared: Option<bool>,
        j: &mut Journal,
    ) -> Result<PoolEntry> {
        let _guard = self.lock(&pool_lock_key(&cidr)).await;
        let name = names::subnetpool_name(&self.config.subnetpool_prefix, &cidr);
        // Another project's pool of that name is never ours.
        let mut q = self.projects()?.own_only(Query::new().eq("name", &name));
        if let Some(tag) = subnet_tag {
            q = q.tags(&[tag]);
        }
        let found = self.neutron.list_subnetpools(&q).await?;
        let mut matching = found
            .into_iter()
            .filter(|p| p.prefixes.iter().any(|x| x == &cidr.to_string()));
        let pool = match matching.next() {
            Some(pool) => {
                if matching.next().is_some() {
                    warn!(%name, id = %pool.id, "several subnet pools share this name; using the first");
                }
                pool
            }
            None => {
                let description = names::made_in(&names::nonce(), &self.config.host_id);
                let body = SubnetPoolCreate {
                    name: name.clone(),
                    description: Some(description.clone()),
                    prefixes: vec![cidr.to_string()],
                    default_prefixlen: Some(u32::from(cidr.prefix_len())),
                    shared,
                    ..Default::default()
                };
                let made = self.neutron.create_subnetpool(&body);
                let lost = Lost::SubnetPool { description };
                let undo = |p: &SubnetPool| Undo::DeleteSubnetPool(p.id.clone());
                let mut pool = self.create_undoable(j, lost, made, undo).await?;
                if let Some(tag) = subnet_tag {
                    self.neutron
                        .add_tag(TagResource::SubnetPool, &pool.id, tag)
                        .await?;
                    // The index matches the pool to its subnet by this tag.
                    pool.tags.push(tag.to_string());
                }
                info!(%name, id = %pool.id, "subnet pool created");
                pool
            }
        };
        Ok(PoolEntry {
            pool,
            cidr,
            carved_from: None,
            owned: true,
        })
    }

    /// Pick a free `default_prefixlen` block of `parent` and make a
    /// `kuryrPool-<cidr>` for it. The subnet itself is later allocated from
    /// `parent`, so Neutron refuses overlaps even across hosts.
    async fn carve(&self, parent: &SubnetPool, v6: bool, j: &mut Journal) -> Result<PoolEntry> {
        let prefixlen = parent
            .default_prefixlen
            .and_then(|p| u8::try_from(p).ok())
            .unwrap_or(if v6 { 64 } else { 24 });
        let mut taken: Vec<IpNet> = self
            .neutron
            .list_subnets(&Query::new().eq("subnetpool_id", &parent.id).fields(&[
                "id",
                "cidr",
                "network_id",
                "ip_version",
            ]))
            .await?
            .iter()
            .filter_map(|s| s.cidr.parse().ok())
            .collect();
        let prefix = format!("{}-", self.config.subnetpool_prefix);
        let pools = self
            .neutron
            .list_subnetpools(&self.projects()?.own_only(Query::new()))
            .await?;
        taken.extend(
            pools
                .iter()
                .filter(|p| p.name.starts_with(&prefix) && p.id != parent.id)
                .flat_map(|p| p.prefixes.iter().filter_map(|x| x.parse::<IpNet>().ok())),
        );
        taken.extend(self.index().carved_cidrs());
        let overlaps = |a: &IpNet, b: &IpNet| a.contains(&b.network()) || b.contains(&a.network());
        // Pick among the first free blocks at random rather than always the
        // first: two hosts carving at once then rarely collide (Neutron
        // refuses the loser's subnet, and its `docker network create` fails).
        let mut free: Vec<IpNet> = Vec::new();
        for prefix in parent
            .prefixes
            .iter()
            .filter_map(|p| p.parse::<IpNet>().ok())
            .filter(|p| family_matches(p, v6))
        {
            let Ok(candidates) = prefix.subnets(prefixlen) else {
                continue;
            };
            free.extend(
                candidates
                    .take(MAX_CARVE_CANDIDATES)
                    .filter(|c| !taken.iter().any(|t| overlaps(t, c)))
                    .take(CARVE_CHOICES - free.len()),
            );
            if free.len() >= CARVE_CHOICES {
                break;
            }
        }
        let chosen = (!free.is_empty()).then(|| free[random_index(free.len())]);
        let cidr = chosen.ok_or_else(|| {
            DriverError::Invalid(format!(
                "subnet pool {} has no free /{prefixlen} left",
                parent.name
            ))
        })?;
        let mut entry = self.kuryr_pool(cidr, None, None, j).await?;
        entry.carved_from = Some(parent.id.clone());
        info!(%cidr, parent = %parent.name, "carved a subnet from the default pool");
        Ok(entry)
    }

    /// The pool behind a PoolID: from the index, else from Neutron.
    pub(in crate::driver) async fn pool_entry(&self, pool_id: &str) -> Result<Option<PoolEntry>> {
        let known = self.index().pool(pool_id).cloned();
        if known.is_some() {
            return Ok(known);
        }
        let pool = match self.neutron.get_subnetpool(pool_id).await {
            Ok(p) => p,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(cidr) = pool.prefixes.first().and_then(|p| p.parse::<IpNet>().ok()) else {
            return Ok(None);
        };
        let owned = pool
            .name
            .starts_with(&format!("{}-", self.config.subnetpool_prefix))
            && !pool
                .tags
                .iter()
                .any(|t| t == names::SUBNETPOOL_EXISTING_TAG);
        let entry = PoolEntry {
            pool,
            cidr,
            carved_from: None,
            owned,
        };
        self.index().put_pool(entry.clone());
        Ok(Some(entry))
    }

    /// The subnet of a pool, if its network exists yet: from the index,
    /// else from Neutron (a pool of another host, of the Python driver, or
    /// of a network made before a restart): the subnet tagged with the
    /// PoolID, else one allocated from the pool, else one with its CIDR
    /// (preferring a tagged one, as kuryr-libnetwork does).
    pub(super) async fn pool_subnet(&self, entry: &PoolEntry) -> Result<Option<Subnet>> {
        let known = self.index().network_of_pool(entry).map(|(_, s)| s.clone());
        if known.is_some() {
            return Ok(known);
        }
        let n = &self.neutron;
        let id = entry.pool.id.as_str();
        let mut subnets = n.list_subnets(&Query::new().tags(&[id])).await?;
        if subnets.is_empty() {
            subnets = n
                .list_subnets(&Query::new().eq("subnetpool_id", id))
                .await?;
        }
        if subnets.is_empty() {
            let q = Query::new().eq("cidr", entry.cidr.to_string());
            subnets = n.list_subnets(&self.projects()?.scoped(q)).await?;
        }
        subnets
            .retain(|s| s.cidr == entry.cidr.to_string() || s.subnetpool_id.as_deref() == Some(id));
        // Tagged with the PoolID, or the user subnet the pool was made for
        // (which carries the pool's own subnet tag).
        let tagged = subnets
            .iter()
            .position(|s| s.tags.iter().any(|t| t == id))
            .or_else(|| subnets.iter().position(|s| entry.pool.tags.contains(&s.id)));
        Ok(match tagged {
            Some(i) => Some(subnets.swap_remove(i)),
            None => subnets.into_iter().next(),
        })
    }

    /// The subnet a requested address `ip` of the pool belongs to. A pool
    /// may have several subnets (Docker networks on different Neutron
    /// networks with one CIDR, as kuryr-libnetwork's fullstack tests make):
    /// the one holding a port at `ip` that no endpoint claimed is chosen,
    /// else [`Driver::pool_subnet`]'s.
    pub(super) async fn subnet_for_address(
        &self,
        entry: &PoolEntry,
        ip: IpAddr,
    ) -> Result<Option<Subnet>> {
        let candidates = self.index().subnets_of_pool(entry);
        if candidates.len() < 2 {
            return self.pool_subnet(entry).await;
        }
        for subnet in &candidates {
            let q = Query::new()
                .fixed_ip_subnet(&subnet.id)
                .fixed_ip(&ip.to_string());
            let free = self.neutron.list_ports(&q).await?.into_iter().any(|p| {
                names::id_from_tags(&p.tags).is_none()
                    && self.index().handed_out(&subnet.id, ip).is_none()
            });
            if free {
                return Ok(Some(subnet.clone()));
            }
        }
        self.pool_subnet(entry).await
    }

    pub(in crate::driver) async fn release_pool(&self, pool_id: &PoolId) -> Result<()> {
        let pool_id = pool_id.as_str();
        let Some(entry) = self.pool_entry(pool_id).await? else {
            return Ok(());
        };
        // Not while a RequestPool of the same CIDR may be reusing it.
        let _guard = self.lock(&pool_lock_key(&entry.cidr)).await;
        if !entry.owned {
            // A user's pool: given back without kuryr's marker (the copy in
            // the index may predate it: no need to look).
            let tag = [names::SUBNETPOOL_EXISTING_TAG.to_string()];
            self.remove_tags(TagResource::SubnetPool, pool_id, &tag)
                .await?;
            self.index().remove_pool(pool_id);
            return Ok(());
        }
        if self.index().network_of_pool(&entry).is_some() {
            // The subnet is still there; DeleteNetwork (next in `docker
            // network rm`) removes both.
            return Ok(());
        }
        match self.neutron.delete_subnetpool(pool_id).await {
            Ok(()) => info!(pool = pool_id, cidr = %entry.cidr, "subnet pool deleted"),
            Err(e) if e.is_not_found() => {}
            Err(e) if e.is_in_use() => {
                info!(pool = pool_id, "subnet pool still in use elsewhere; kept")
            }
            Err(e) => return Err(e.into()),
        }
        self.index().remove_pool(pool_id);
        Ok(())
    }
}
