//! RequestAddress / ReleaseAddress: an address is a Neutron port
//! (`kuryr-unbound-port`) until CreateEndpoint claims it; `--ip` reuses a
//! free user port (given back as it was), `--aux-address` is reserved by a
//! port no container may claim.

use std::collections::BTreeMap;
use std::net::IpAddr;

use kuryr_openstack::neutron::{FixedIp, Port, PortCreate, Subnet};
use kuryr_openstack::{Query, TagResource};
use tracing::{info, warn};

use super::super::{Driver, DriverError, Result, first_host, with_prefix};
use super::{AUX_DEVICE_ID, in_use, is_bound, is_kuryr_port};
use crate::names;
use crate::protocol::{ReleaseAddressRequest, RequestAddressRequest, RequestAddressResponse};

impl Driver {
    pub(in crate::driver) async fn request_address(
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
    pub(in crate::driver) async fn create_ipam_port(
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

    pub(in crate::driver) async fn release_address(
        &self,
        req: &ReleaseAddressRequest,
    ) -> Result<()> {
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
