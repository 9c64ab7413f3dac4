//! RequestAddress / ReleaseAddress: an address is a Neutron port
//! (`kuryr-unbound-port`) until CreateEndpoint claims it; `--ip` reuses a
//! free user port (given back as it was), `--aux-address` is reserved by a
//! port no container may claim.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use kuryr_openstack::neutron::{FixedIp, Port, PortCreate, Subnet};
use kuryr_openstack::{Query, TagResource};
use tracing::{info, warn};

use super::super::steps::{Journal, Lost, Undo};
use super::super::{Driver, DriverError, Result, first_host, with_prefix};
use super::{AUX_DEVICE_ID, in_use, is_bound, is_kuryr_port};
use crate::config::CapabilityScope;
use crate::names;
use crate::protocol::{ReleaseAddressRequest, RequestAddressRequest, RequestAddressResponse};

/// The gateway a RequestAddress for the gateway answers: the subnet's
/// when it exists (a different one asked for is refused), else the one
/// asked for, else the pool's first host. A subnet without a gateway
/// answers `0.0.0.0/0` (`::/0`), as kuryr-libnetwork does.
fn gateway_address(
    subnet: Option<&Subnet>,
    requested: Option<IpAddr>,
    cidr: &IpNet,
) -> Result<String> {
    let Some(s) = subnet else {
        return match requested {
            Some(r) => Ok(with_prefix(r, cidr)),
            None => first_host(cidr)
                .map(|gw| with_prefix(gw, cidr))
                .ok_or_else(|| DriverError::Invalid(format!("pool {cidr} has no host address"))),
        };
    };
    let gw: Option<IpAddr> = s.gateway_ip.as_deref().and_then(|g| g.parse().ok());
    Ok(match (gw, requested) {
        (Some(gw), Some(r)) if gw != r => {
            return Err(DriverError::Invalid(format!(
                "gateway {r} conflicts with the gateway {gw} of Neutron subnet {}",
                s.id
            )));
        }
        (Some(gw), _) => with_prefix(gw, cidr),
        (None, Some(r)) => with_prefix(r, cidr),
        (None, None) if cidr.addr().is_ipv6() => "::/0".into(),
        (None, None) => "0.0.0.0/0".into(),
    })
}

impl Driver {
    pub(in crate::driver) async fn request_address(
        &self,
        req: RequestAddressRequest,
    ) -> Result<RequestAddressResponse> {
        let entry = self
            .pool_entry(req.pool_id.as_str())
            .await?
            .ok_or_else(|| {
                DriverError::NotFound(format!("pool {} does not exist in Neutron", req.pool_id))
            })?;
        // A gateway may lie outside the pool (an --ip-range inside a larger
        // --subnet); an address for a container may not.
        if let Some(ip) = req.address
            && !req.is_gateway()
            && !entry.cidr.contains(&ip)
        {
            return Err(DriverError::Invalid(format!(
                "address {ip} is not in pool {}",
                entry.cidr
            )));
        }
        let subnet = match req.address {
            Some(ip) if !req.is_gateway() => self.subnet_for_address(&entry, ip).await?,
            _ => self.pool_subnet(&entry).await?,
        };
        let data = BTreeMap::new();
        if req.is_gateway() {
            let address = gateway_address(subnet.as_ref(), req.address, &entry.cidr)?;
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
        let port = self
            .journaled("RequestAddress", async |j: &mut Journal| {
                let port = match req.address {
                    Some(ip) => self.claim_address(&subnet, ip, j).await?,
                    None => match self.take_ready_port(&subnet) {
                        Some(ready) => {
                            // Out of the pool now: a failure below deletes
                            // it, as it would a port made for this call.
                            j.push(Undo::DeletePort(ready.id.clone()));
                            ready
                        }
                        None => self.create_ipam_port(&subnet, None, None, j).await?,
                    },
                };
                self.fault_point("RequestAddress.port_made").await?;
                Ok(port)
            })
            .await?;
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
        self.index().put_handed(port, &subnet.id, ip);
        Ok(RequestAddressResponse {
            address: with_prefix(ip, &entry.cidr),
            data,
        })
    }

    /// A `kuryr-unbound-port` holding `ip` (or any free address),
    /// journaled; `device_id` marks a reservation no container may claim.
    pub(in crate::driver) async fn create_ipam_port(
        &self,
        subnet: &Subnet,
        ip: Option<IpAddr>,
        device_id: Option<&str>,
        j: &mut Journal,
    ) -> Result<Port> {
        self.make_ipam_port(subnet, ip, device_id, names::UNBOUND_PORT_NAME, j)
            .await
    }

    /// An IPAM port named `name` (see [`Driver::create_ipam_port`]).
    pub(in crate::driver) async fn make_ipam_port(
        &self,
        subnet: &Subnet,
        ip: Option<IpAddr>,
        device_id: Option<&str>,
        name: &str,
        j: &mut Journal,
    ) -> Result<Port> {
        let body = self.ipam_port_body(subnet, ip, device_id, name);
        let description = body.description.clone().unwrap_or_default();
        let lost = Lost::Port { description };
        let made = self.neutron.create_port(&body);
        let made = self.create_undoable(j, lost, made, |p: &Port| Undo::DeletePort(p.id.clone()));
        made.await.map_err(|e| {
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

    /// The create request of an IPAM port (its description names this
    /// host and a nonce, so a create whose answer is lost is found).
    pub(in crate::driver) fn ipam_port_body(
        &self,
        subnet: &Subnet,
        ip: Option<IpAddr>,
        device_id: Option<&str>,
        name: &str,
    ) -> PortCreate {
        let description = names::made_in(&names::nonce(), &self.config.host_id);
        PortCreate {
            network_id: subnet.network_id.clone(),
            name: Some(name.into()),
            description: Some(description),
            admin_state_up: Some(true),
            device_owner: Some(names::DEVICE_OWNER.into()),
            host_id: self.bind_host_id(),
            device_id: device_id.map(str::to_string),
            fixed_ips: Some(vec![FixedIp {
                subnet_id: subnet.id.clone(),
                ip_address: ip.map(|i| i.to_string()).unwrap_or_default(),
            }]),
            // Tagged as kuryr's from the start where Neutron allows, so
            // kuryr-libnetwork's ReleaseAddress deletes it too.
            tags: self.create_tags(vec![names::PORT_CREATED_TAG.into()]),
            ..Default::default()
        }
    }

    /// `--ip`: adopt a free user port, or make a new one. In local scope
    /// an address this daemon handed out and that is not released yet is
    /// refused, and so is another host's pending port: handed out once, it
    /// cannot go to two containers. In global scope (swarm) the manager
    /// hands an address out, and then the node that runs the task asks for
    /// that very address: the pending port is handed out again.
    async fn claim_address(&self, subnet: &Subnet, ip: IpAddr, j: &mut Journal) -> Result<Port> {
        let once = self.config.scope == CapabilityScope::Local;
        let handed = self.index().handed_out(&subnet.id, ip).cloned();
        if let Some(p) = &handed
            && p.device_id != AUX_DEVICE_ID
            && once
        {
            return Err(DriverError::Invalid(format!(
                "address {ip} is already allocated (port {}, not released yet)",
                p.id
            )));
        }
        let cached = handed.or_else(|| self.index().port_by_ip(&subnet.id, ip).cloned());
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
            return self.create_ipam_port(subnet, Some(ip), None, j).await;
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
        if self.unready(&port.id) {
            info!(port = %port.id, %ip, "ready port handed out for --ip");
            return Ok(port);
        }
        if is_kuryr_port(&port) {
            // A port kuryr IPAM made and no endpoint claimed: pending on the
            // host it is bound to. Another host's is not ours to hand out.
            if let Some(host) = self.bind_host_id()
                && once
                && !port.host_id.is_empty()
                && port.host_id != host
            {
                return Err(DriverError::Invalid(format!(
                    "address {ip} is already allocated (port {} handed out on host {:?})",
                    port.id, port.host_id
                )));
            }
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
        let tag = vec![names::PORT_EXISTING_TAG.to_string()];
        j.push(Undo::RemoveTags {
            resource: TagResource::Port,
            id: port.id.clone(),
            tags: tag.clone(),
        });
        self.add_tags(TagResource::Port, &port.id, &tag).await?;
        let mut port = port;
        port.tags.push(names::PORT_EXISTING_TAG.into());
        info!(port = %port.id, %ip, "reusing an existing Neutron port");
        Ok(port)
    }

    pub(in crate::driver) async fn release_address(
        &self,
        req: &ReleaseAddressRequest,
    ) -> Result<()> {
        let ip = req.address;
        let Some(entry) = self.pool_entry(req.pool_id.as_str()).await? else {
            return Ok(());
        };
        let Some(subnet) = self.pool_subnet(&entry).await? else {
            return Ok(());
        };
        let gateway = subnet
            .gateway_ip
            .as_deref()
            .and_then(|g| g.parse::<IpAddr>().ok());
        if gateway == Some(ip) {
            return Ok(());
        }
        // Ports this daemon handed out, or whose endpoint it deleted.
        let cached = self.index().port_by_ip(&subnet.id, ip).cloned();
        let here = cached.is_some();
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
        self.fault_point("ReleaseAddress.found").await?;
        for port in ports
            .iter()
            .filter(|p| p.ips_in(&subnet.id).any(|a| a == ip.to_string()))
            .filter(|p| !self.is_in_ready_pool(&p.id))
        {
            if self.may_release(port, here).await {
                self.release_port(port, ip).await?;
            }
            self.index().remove_port(&port.id);
        }
        Ok(())
    }

    /// Whether ReleaseAddress may give this port up. Never the port of a
    /// live endpoint of this daemon (a racing request's rollback must not
    /// take a winner's port), nor one an endpoint elsewhere still holds
    /// (its tags say so: a DeleteEndpoint in global scope strips them for
    /// the manager's ReleaseAddress); a port bound to this host whose
    /// endpoint this daemon does not know is a dead one's, and so is one
    /// whose endpoint the index loaded at start-up but whose host link is
    /// gone (the daemon was killed before the endpoint was done).
    async fn may_release(&self, port: &Port, handed_out_here: bool) -> bool {
        let known = self
            .index()
            .endpoint_of_port(&port.id)
            .map(|e| e.endpoint_id.clone());
        if let Some(ep) = known {
            let dead = !self.locked(&ep)
                && matches!(
                    self.binder.host_side_exists(&port.id).await,
                    Ok(Some(false))
                );
            if !dead {
                warn!(port = %port.id, endpoint = %ep, "ReleaseAddress: the port is a live endpoint's; left alone");
                return false;
            }
            info!(port = %port.id, endpoint = %ep, "ReleaseAddress: the port's endpoint is dead (no host link)");
            self.index().remove_endpoint(&ep);
        }
        let owner = names::id_from_tags(&port.tags);
        let bound_here = self.bind_host_id().is_some_and(|h| h == port.host_id);
        if !handed_out_here && owner.is_some() && !bound_here {
            info!(port = %port.id, endpoint = ?owner, "ReleaseAddress: the port is held by an endpoint elsewhere; left alone");
            return false;
        }
        true
    }

    /// Delete kuryr's port, or give a user's port back.
    async fn release_port(&self, port: &Port, ip: IpAddr) -> Result<()> {
        if port.tags.iter().any(|t| t == names::PORT_EXISTING_TAG) {
            return self.restore_user_port(port).await;
        }
        if !is_kuryr_port(port) {
            warn!(port = %port.id, %ip, "address belongs to a port kuryr does not own; left alone");
            return Ok(());
        }
        match self.neutron.delete_port(&port.id).await {
            Ok(()) => info!(port = %port.id, %ip, "port deleted"),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Give a reused user port back as it was before Docker used it.
    pub(in crate::driver) async fn restore_user_port(&self, port: &Port) -> Result<()> {
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
        // Only kuryr's tags go: tags the user added meanwhile stay.
        let ours: Vec<String> = port
            .tags
            .iter()
            .filter(|t| {
                t.starts_with(names::TAG_LOW)
                    || t.starts_with(names::TAG_HIGH)
                    || t.starts_with(names::TAG_ORIGINAL_MAC)
                    || *t == names::PORT_EXISTING_TAG
            })
            .cloned()
            .collect();
        self.remove_tags(TagResource::Port, &port.id, &ours).await?;
        info!(port = %port.id, "user port restored");
        Ok(())
    }
}
