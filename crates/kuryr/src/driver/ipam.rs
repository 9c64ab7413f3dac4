//! IpamDriver: Docker pools are Neutron subnet pools, addresses are ports.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use kuryr_openstack::neutron::{FixedIp, Port, PortCreate, Subnet, SubnetPool, SubnetPoolCreate};
use kuryr_openstack::{Query, TagResource};
use tracing::{info, warn};

use super::index::PoolEntry;
use super::{Driver, DriverError, Result, first_host, with_prefix};
use crate::names;
use crate::protocol::{
    POOL_GATEWAY, PoolId, ReleaseAddressRequest, RequestAddressRequest, RequestAddressResponse,
    RequestPoolRequest, RequestPoolResponse,
};

/// `device_id` of the ports reserving `--aux-address` values, so `--ip`
/// never hands one to a container (an unclaimed IPAM port has none).
pub(super) const AUX_DEVICE_ID: &str = "kuryr-aux-address";
/// Lock key serializing pool creation in this daemon.
const POOLS_LOCK: &str = "ipam-pools";
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

/// Parse a boolean option the way oslo and kuryr-libnetwork accept them.
pub(super) fn parse_bool_option(key: &str, value: Option<&String>) -> Result<Option<bool>> {
    match value.map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(None),
        Some(v) => match v.as_str() {
            "true" | "yes" | "on" | "1" => Ok(Some(true)),
            "false" | "no" | "off" | "0" | "" => Ok(Some(false)),
            _ => Err(DriverError::Invalid(format!(
                "option {key}={v:?}: expected true or false"
            ))),
        },
    }
}

fn family_matches(cidr: &IpNet, v6: bool) -> bool {
    matches!(cidr, IpNet::V6(_)) == v6
}

/// Is this a port kuryr made (as opposed to a user's port)?
pub(super) fn is_kuryr_port(port: &Port) -> bool {
    !port.tags.iter().any(|t| t == names::PORT_EXISTING_TAG)
        && (port.tags.iter().any(|t| t == names::PORT_CREATED_TAG)
            || port.device_owner == names::DEVICE_OWNER
            || port.name == names::UNBOUND_PORT_NAME)
}

/// Does Neutron consider the port bound (so its MAC cannot change)?
pub(super) fn is_bound(port: &Port) -> bool {
    !matches!(port.vif_type.as_str(), "" | "unbound" | "binding_failed")
}

/// Is a user's port already used by something?
fn in_use(port: &Port) -> bool {
    !port.device_id.is_empty() || !port.device_owner.is_empty() || !port.host_id.is_empty()
}

impl Driver {
    pub(super) async fn request_pool(
        &self,
        req: RequestPoolRequest,
    ) -> Result<RequestPoolResponse> {
        let v = if req.v6 { ".v6" } else { "" };
        let opt = |k: &str| {
            req.options
                .get(&format!("neutron.{k}"))
                .filter(|s| !s.is_empty())
        };
        let pool_uuid = opt(&format!("pool{v}.uuid"));
        let pool_name = opt(&format!("pool{v}.name"));
        let subnet_uuid = opt(&format!("subnet{v}.uuid"));
        let subnet_name = opt(&format!("subnet{v}.name"));
        let shared =
            parse_bool_option("neutron.net.shared", req.options.get("neutron.net.shared"))?;
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

        let _guard = self.lock(POOLS_LOCK).await;
        let mut gateway: Option<String> = None;
        let mut entry = if pool_uuid.is_some() || pool_name.is_some() {
            let user = self.find_subnetpool(pool_uuid, pool_name).await?;
            if !user
                .tags
                .iter()
                .any(|t| t == names::SUBNETPOOL_EXISTING_TAG)
            {
                self.neutron
                    .add_tag(
                        TagResource::SubnetPool,
                        &user.id,
                        names::SUBNETPOOL_EXISTING_TAG,
                    )
                    .await?;
            }
            match requested {
                None => self.carve(&user, req.v6).await?,
                Some(cidr) if user.prefixes.len() == 1 && user.prefixes[0] == cidr.to_string() => {
                    PoolEntry {
                        pool: user,
                        cidr,
                        ip_range: None,
                        carved_from: None,
                        owned: false,
                    }
                }
                Some(cidr) => self.kuryr_pool(cidr, None, shared).await?,
            }
        } else if subnet_uuid.is_some() || subnet_name.is_some() {
            let subnet = self.find_subnet(subnet_uuid, subnet_name).await?;
            let cidr: IpNet = subnet.cidr.parse().map_err(|_| {
                DriverError::Invalid(format!(
                    "subnet {} has a bad cidr {}",
                    subnet.id, subnet.cidr
                ))
            })?;
            if requested.is_some_and(|r| r != cidr) {
                return Err(DriverError::Invalid(format!(
                    "--subnet {} does not match Neutron subnet {} ({cidr})",
                    requested.map(|r| r.to_string()).unwrap_or_default(),
                    subnet.id
                )));
            }
            gateway = Some(match subnet.gateway_ip.as_deref() {
                Some(gw) => format!("{gw}/{}", cidr.prefix_len()),
                None if req.v6 => "::/0".into(),
                None => "0.0.0.0/0".into(),
            });
            self.kuryr_pool(cidr, Some(&subnet.id), shared).await?
        } else if let Some(cidr) = requested {
            self.kuryr_pool(cidr, None, shared).await?
        } else {
            let name = if req.v6 {
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
            self.carve(&default, req.v6).await?
        };
        entry.ip_range = req.sub_pool;
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

    /// A user's pool, by id or unique name.
    pub(super) async fn find_subnetpool(
        &self,
        id: Option<&String>,
        name: Option<&String>,
    ) -> Result<SubnetPool> {
        if let Some(id) = id {
            return self.neutron.get_subnetpool(id).await.map_err(|e| {
                if e.is_not_found() {
                    DriverError::NotFound(format!("subnet pool {id} does not exist"))
                } else {
                    e.into()
                }
            });
        }
        let name = name.map(String::as_str).unwrap_or_default();
        let mut found = self
            .neutron
            .list_subnetpools(&Query::new().eq("name", name))
            .await?;
        match found.len() {
            0 => Err(DriverError::NotFound(format!(
                "subnet pool named {name:?} does not exist"
            ))),
            1 => Ok(found.remove(0)),
            n => Err(DriverError::Invalid(format!(
                "{n} subnet pools are named {name:?}: use neutron.pool.uuid"
            ))),
        }
    }

    /// A user's subnet, by id or unique name.
    pub(super) async fn find_subnet(
        &self,
        id: Option<&String>,
        name: Option<&String>,
    ) -> Result<Subnet> {
        if let Some(id) = id {
            return self.neutron.get_subnet(id).await.map_err(|e| {
                if e.is_not_found() {
                    DriverError::NotFound(format!("subnet {id} does not exist"))
                } else {
                    e.into()
                }
            });
        }
        let name = name.map(String::as_str).unwrap_or_default();
        let mut found = self
            .neutron
            .list_subnets(&Query::new().eq("name", name))
            .await?;
        match found.len() {
            0 => Err(DriverError::NotFound(format!(
                "subnet named {name:?} does not exist"
            ))),
            1 => Ok(found.remove(0)),
            n => Err(DriverError::Invalid(format!(
                "{n} subnets are named {name:?}: use neutron.subnet.uuid"
            ))),
        }
    }

    /// The `kuryrPool-<cidr>` pool, reused if any host made it already.
    async fn kuryr_pool(
        &self,
        cidr: IpNet,
        subnet_tag: Option<&str>,
        shared: Option<bool>,
    ) -> Result<PoolEntry> {
        let name = names::subnetpool_name(&self.config.subnetpool_prefix, &cidr);
        let mut q = Query::new().eq("name", &name);
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
                let pool = self
                    .neutron
                    .create_subnetpool(&SubnetPoolCreate {
                        name: name.clone(),
                        prefixes: vec![cidr.to_string()],
                        default_prefixlen: Some(u32::from(cidr.prefix_len())),
                        shared,
                        ..Default::default()
                    })
                    .await?;
                let mut pool = pool;
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
            ip_range: None,
            carved_from: None,
            owned: true,
        })
    }

    /// Pick a free `default_prefixlen` block of `parent` and make a
    /// `kuryrPool-<cidr>` for it. The subnet itself is later allocated from
    /// `parent`, so Neutron refuses overlaps even across hosts.
    async fn carve(&self, parent: &SubnetPool, v6: bool) -> Result<PoolEntry> {
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
        let pools = self.neutron.list_subnetpools(&Query::new()).await?;
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
        let mut entry = self.kuryr_pool(cidr, None, None).await?;
        entry.carved_from = Some(parent.id.clone());
        info!(%cidr, parent = %parent.name, "carved a subnet from the default pool");
        Ok(entry)
    }

    /// The pool behind a PoolID: from the index, else from Neutron.
    pub(super) async fn pool_entry(&self, pool_id: &str) -> Result<Option<PoolEntry>> {
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
            ip_range: None,
            carved_from: None,
            owned,
        };
        self.index().put_pool(entry.clone());
        Ok(Some(entry))
    }

    /// The subnet allocated for a pool, if the network exists yet.
    async fn pool_subnet(&self, entry: &PoolEntry, from_index: bool) -> Result<Option<Subnet>> {
        let known = self.index().network_of_pool(entry).map(|(_, s)| s.clone());
        if known.is_some() {
            return Ok(known);
        }
        if from_index {
            // The index saw this pool being requested and knows every
            // network this daemon made: no subnet yet.
            return Ok(None);
        }
        let mut subnets = self
            .neutron
            .list_subnets(&Query::new().eq("subnetpool_id", &entry.pool.id))
            .await?;
        if subnets.is_empty() {
            subnets = self
                .neutron
                .list_subnets(&Query::new().eq("cidr", entry.cidr.to_string()))
                .await?;
        }
        subnets.retain(|s| {
            s.cidr == entry.cidr.to_string()
                || s.subnetpool_id.as_deref() == Some(entry.pool.id.as_str())
        });
        // Several subnets share the CIDR in different networks: prefer the
        // one tagged with the pool, as kuryr-libnetwork does.
        let tagged = subnets
            .iter()
            .position(|s| s.tags.iter().any(|t| t == &entry.pool.id));
        Ok(match tagged {
            Some(i) => Some(subnets.swap_remove(i)),
            None => subnets.into_iter().next(),
        })
    }

    pub(super) async fn request_address(
        &self,
        req: RequestAddressRequest,
    ) -> Result<RequestAddressResponse> {
        let known = self.index().pool(req.pool_id.as_str()).is_some();
        let entry = self
            .pool_entry(req.pool_id.as_str())
            .await?
            .ok_or_else(|| {
                DriverError::NotFound(format!("pool {} does not exist in Neutron", req.pool_id))
            })?;
        if let Some(ip) = req.address
            && !entry.cidr.contains(&ip)
        {
            return Err(DriverError::Invalid(format!(
                "address {ip} is not in pool {}",
                entry.cidr
            )));
        }
        let subnet = self.pool_subnet(&entry, known).await?;
        let data = BTreeMap::new();
        if req.is_gateway() {
            let address = match (&subnet, req.address) {
                (Some(s), requested) => {
                    let gw: Option<IpAddr> = s.gateway_ip.as_deref().and_then(|g| g.parse().ok());
                    match (gw, requested) {
                        (Some(gw), Some(r)) if gw != r => {
                            return Err(DriverError::Invalid(format!(
                                "gateway {r} conflicts with the gateway {gw} of Neutron subnet {}",
                                s.id
                            )));
                        }
                        (Some(gw), _) => with_prefix(gw, &entry.cidr),
                        (None, Some(r)) => with_prefix(r, &entry.cidr),
                        (None, None) if entry.cidr.addr().is_ipv6() => "::/0".into(),
                        (None, None) => "0.0.0.0/0".into(),
                    }
                }
                (None, Some(r)) => with_prefix(r, &entry.cidr),
                (None, None) => first_host(&entry.cidr)
                    .map(|gw| with_prefix(gw, &entry.cidr))
                    .ok_or_else(|| {
                        DriverError::Invalid(format!("pool {} has no host address", entry.cidr))
                    })?,
            };
            return Ok(RequestAddressResponse { address, data });
        }
        let Some(subnet) = subnet else {
            // An --aux-address before the network exists: CreateNetwork
            // reserves it once the subnet is there.
            return match req.address {
                Some(ip) => Ok(RequestAddressResponse {
                    address: with_prefix(ip, &entry.cidr),
                    data,
                }),
                None => Err(DriverError::NotFound(format!(
                    "pool {} has no Neutron subnet yet",
                    entry.cidr
                ))),
            };
        };
        let port = match req.address {
            Some(ip) => self.claim_address(&subnet, ip).await?,
            None => self.create_ipam_port(&subnet, None, None).await?,
        };
        let ip = port
            .ips_in(&subnet.id)
            .next()
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .ok_or_else(|| {
                DriverError::Invalid(format!(
                    "port {} has no address in subnet {}",
                    port.id, subnet.id
                ))
            })?;
        self.index().put_port(port);
        Ok(RequestAddressResponse {
            address: with_prefix(ip, &entry.cidr),
            data,
        })
    }

    /// A `kuryr-unbound-port` holding `ip` (or any free address);
    /// `device_id` marks a reservation no container may claim.
    pub(super) async fn create_ipam_port(
        &self,
        subnet: &Subnet,
        ip: Option<IpAddr>,
        device_id: Option<&str>,
    ) -> Result<Port> {
        let body = PortCreate {
            network_id: subnet.network_id.clone(),
            name: Some(names::UNBOUND_PORT_NAME.into()),
            admin_state_up: Some(true),
            device_owner: Some(names::DEVICE_OWNER.into()),
            host_id: self.bind_host_id(),
            device_id: device_id.map(str::to_string),
            fixed_ips: Some(vec![FixedIp {
                subnet_id: subnet.id.clone(),
                ip_address: ip.map(|i| i.to_string()).unwrap_or_default(),
            }]),
            ..Default::default()
        };
        self.neutron.create_port(&body).await.map_err(|e| {
            if e.is_ip_already_allocated() {
                DriverError::Invalid(format!(
                    "address {} is already in use in Neutron subnet {}",
                    ip.map(|i| i.to_string()).unwrap_or_default(),
                    subnet.id
                ))
            } else if e.is_conflict() {
                DriverError::Invalid(format!(
                    "Neutron subnet {} has no free address: {e}",
                    subnet.id
                ))
            } else {
                e.into()
            }
        })
    }

    /// `--ip`: reuse our own unclaimed port (a retried call), adopt a free
    /// user port, or make a new one.
    async fn claim_address(&self, subnet: &Subnet, ip: IpAddr) -> Result<Port> {
        let cached = self.index().port_by_ip(&subnet.id, ip).cloned();
        let found = match cached {
            Some(p) => Some(p),
            None => self
                .neutron
                .list_ports(
                    &Query::new()
                        .fixed_ip_subnet(&subnet.id)
                        .fixed_ip(&ip.to_string()),
                )
                .await?
                .into_iter()
                .next(),
        };
        let Some(port) = found else {
            return self.create_ipam_port(subnet, Some(ip), None).await;
        };
        if let Some(owner) = names::id_from_tags(&port.tags) {
            return Err(DriverError::Invalid(format!(
                "address {ip} is in use by endpoint {owner} (port {})",
                port.id
            )));
        }
        if port.device_id == AUX_DEVICE_ID {
            return Err(DriverError::Invalid(format!(
                "address {ip} is reserved by --aux-address (port {})",
                port.id
            )));
        }
        if is_kuryr_port(&port) {
            return Ok(port);
        }
        if port.tags.iter().any(|t| t == names::PORT_EXISTING_TAG) {
            return Ok(port);
        }
        if in_use(&port) {
            return Err(DriverError::Invalid(format!(
                "address {ip} belongs to port {} which is in use (device {:?}, owner {:?}, host {:?})",
                port.id, port.device_id, port.device_owner, port.host_id
            )));
        }
        self.neutron
            .add_tag(TagResource::Port, &port.id, names::PORT_EXISTING_TAG)
            .await?;
        let mut port = port;
        port.tags.push(names::PORT_EXISTING_TAG.into());
        info!(port = %port.id, %ip, "reusing an existing Neutron port");
        Ok(port)
    }

    pub(super) async fn release_pool(&self, pool_id: &PoolId) -> Result<()> {
        let pool_id = pool_id.as_str();
        let _guard = self.lock(POOLS_LOCK).await;
        let Some(entry) = self.pool_entry(pool_id).await? else {
            return Ok(());
        };
        if !entry.owned {
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

    pub(super) async fn release_address(&self, req: &ReleaseAddressRequest) -> Result<()> {
        let ip = req.address;
        let known = self.index().pool(req.pool_id.as_str()).is_some();
        let Some(entry) = self.pool_entry(req.pool_id.as_str()).await? else {
            return Ok(());
        };
        let Some(subnet) = self.pool_subnet(&entry, known).await? else {
            return Ok(());
        };
        if subnet
            .gateway_ip
            .as_deref()
            .and_then(|g| g.parse::<IpAddr>().ok())
            == Some(ip)
        {
            return Ok(());
        }
        let cached = self.index().port_by_ip(&subnet.id, ip).cloned();
        let ports = match cached {
            Some(p) => vec![p],
            None => {
                self.neutron
                    .list_ports(
                        &Query::new()
                            .fixed_ip_subnet(&subnet.id)
                            .fixed_ip(&ip.to_string()),
                    )
                    .await?
            }
        };
        for port in ports {
            if !port
                .fixed_ips
                .iter()
                .any(|f| f.subnet_id == subnet.id && f.ip_address == ip.to_string())
            {
                continue;
            }
            if port.tags.iter().any(|t| t == names::PORT_EXISTING_TAG) {
                self.restore_user_port(&port).await?;
            } else if is_kuryr_port(&port) {
                match self.neutron.delete_port(&port.id).await {
                    Ok(()) => info!(port = %port.id, %ip, "port deleted"),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
            } else {
                warn!(port = %port.id, %ip, "address belongs to a port kuryr does not own; left alone");
            }
            self.index().remove_port(&port.id);
        }
        Ok(())
    }

    /// Give a reused user port back as it was before Docker used it.
    async fn restore_user_port(&self, port: &Port) -> Result<()> {
        let mut update = kuryr_openstack::neutron::PortUpdate::default();
        if port.device_owner == names::DEVICE_OWNER {
            update.device_owner = Some(String::new());
        }
        if !port.device_id.is_empty() {
            update.device_id = Some(String::new());
        }
        if !port.host_id.is_empty() {
            update.host_id = Some(String::new());
        }
        let mac = port
            .tags
            .iter()
            .find_map(|t| t.strip_prefix(names::TAG_ORIGINAL_MAC))
            .filter(|mac| *mac != port.mac_address);
        // Neutron refuses a new MAC on a bound port (409 PortBound): the
        // update clearing binding:host_id goes first, the MAC after it.
        let mut updates = vec![update];
        if let Some(mac) = mac {
            let mac = Some(mac.to_string());
            if is_bound(port) && !updates[0].is_empty() {
                updates.push(kuryr_openstack::neutron::PortUpdate {
                    mac_address: mac,
                    ..Default::default()
                });
            } else {
                updates[0].mac_address = mac;
            }
        }
        for update in updates.iter().filter(|u| !u.is_empty()) {
            match self.neutron.update_port(&port.id, update).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        let kept: Vec<&String> = port
            .tags
            .iter()
            .filter(|t| {
                !(t.starts_with(names::TAG_LOW)
                    || t.starts_with(names::TAG_HIGH)
                    || t.starts_with(names::TAG_ORIGINAL_MAC)
                    || *t == names::PORT_EXISTING_TAG)
            })
            .collect();
        if kept.len() != port.tags.len() {
            self.neutron
                .replace_tags(TagResource::Port, &port.id, &kept)
                .await?;
        }
        info!(port = %port.id, "user port restored");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bool_options() {
        let t = "True".to_string();
        assert_eq!(parse_bool_option("k", Some(&t)).unwrap(), Some(true));
        assert_eq!(parse_bool_option("k", None).unwrap(), None);
        let bad = "maybe".to_string();
        let err = parse_bool_option("neutron.net.shared", Some(&bad)).unwrap_err();
        assert!(err.to_string().contains("neutron.net.shared"));
    }

    #[test]
    fn kuryr_ports_are_recognized() {
        let mut p = Port {
            name: names::UNBOUND_PORT_NAME.into(),
            ..Default::default()
        };
        assert!(is_kuryr_port(&p));
        p.tags.push(names::PORT_EXISTING_TAG.into());
        assert!(!is_kuryr_port(&p));
        let user = Port::default();
        assert!(!is_kuryr_port(&user) && !in_use(&user));
    }
}
