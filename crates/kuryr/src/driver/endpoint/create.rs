//! CreateEndpoint, in its phases: find or create the port, reconcile it
//! with what Docker asked for, tag it with the endpoint, plug it (behind
//! the VM port in nested modes, then the host side), and wait for ACTIVE
//! when configured. A failure at any phase undoes the earlier ones.

use std::net::IpAddr;

use kuryr_openstack::neutron::{FixedIp, Port, PortCreate, PortUpdate};
use kuryr_openstack::{Query, TagResource};
use tracing::{info, warn};

use super::super::index::NetworkEntry;
use super::super::ipam::{is_bound, is_kuryr_port};
use super::super::{Driver, DriverError, Result};
use crate::names;
use crate::protocol::{
    CreateEndpointInterface, CreateEndpointRequest, CreateEndpointResponse, DockerId,
};

/// The port an endpoint gets, and how to undo what was done to it.
struct Claimed {
    port: Port,
    /// Made by this call (deleted on rollback), not found.
    created_here: bool,
    /// The tags before this call (restored on rollback).
    original_tags: Vec<String>,
}

/// What Docker's request asks of the port.
struct Wanted {
    fixed_ips: Vec<FixedIp>,
    mac: Option<String>,
}

impl Driver {
    pub(in crate::driver) async fn create_endpoint(
        &self,
        req: CreateEndpointRequest,
    ) -> Result<CreateEndpointResponse> {
        let _guard = self.lock(req.network_id.as_str()).await;
        let net = self.known_network(&req.network_id).await?;
        let eid = req.endpoint_id.clone();
        // A retried call: the endpoint exists; make sure the Neutron side
        // behind the VM port and the host side do.
        let known = self.index().endpoint(eid.as_str()).cloned();
        if let Some(entry) = known {
            let vlan_id = self.attach_to_node(&entry.port, &eid).await?;
            self.bind_host(&net, &entry.port, &eid, vlan_id).await?;
            return Ok(self.endpoint_response(&req, &entry.port));
        }
        let wanted = Wanted {
            fixed_ips: self.wanted_fixed_ips(&req, &net)?,
            mac: req.interface.mac_address.clone(),
        };
        let found = self.ports_holding(&net, &wanted.fixed_ips, &eid).await?;
        let claimed = match found.is_empty() {
            // Docker's own IPAM gave the address: the port is made here and
            // deleted in DeleteEndpoint.
            true => self.create_endpoint_port(&net, &wanted, &eid).await?,
            false => self.reconcile_port(found, &wanted, &eid).await?,
        };
        let claimed = self.tag_endpoint_port(claimed, &eid).await?;
        let port = self.plug(&net, claimed, &eid).await?;
        info!(endpoint = %eid, port = %port.id, mac = %port.mac_address, "endpoint created");
        let response = self.endpoint_response(&req, &port);
        self.index().put_endpoint(eid.to_string(), port);
        Ok(response)
    }

    /// The MAC Docker is told, unless it chose one itself. ipvlan devices
    /// keep the node NIC's MAC and cannot take another: Docker must not
    /// try to set one.
    fn endpoint_response(
        &self,
        req: &CreateEndpointRequest,
        port: &Port,
    ) -> CreateEndpointResponse {
        let report_mac = req.interface.mac_address.is_none() && !self.binder.shares_link_mac();
        CreateEndpointResponse {
            interface: CreateEndpointInterface {
                mac_address: report_mac.then(|| port.mac_address.clone()),
            },
        }
    }

    /// One fixed IP per address Docker gave, each in a subnet of the
    /// network.
    fn wanted_fixed_ips(
        &self,
        req: &CreateEndpointRequest,
        net: &NetworkEntry,
    ) -> Result<Vec<FixedIp>> {
        let addresses: Vec<IpAddr> = [req.interface.address, req.interface.address_ipv6]
            .into_iter()
            .flatten()
            .map(|n| n.addr())
            .collect();
        if addresses.is_empty() {
            return Err(DriverError::Invalid(
                "the endpoint has no IP address: use the kuryr IPAM driver or give --ip".into(),
            ));
        }
        addresses
            .iter()
            .map(|ip| {
                let subnet = net.subnet_for(*ip).ok_or_else(|| {
                    DriverError::Invalid(format!(
                        "address {ip} is in no subnet of Neutron network {}",
                        net.network.id
                    ))
                })?;
                Ok(FixedIp {
                    subnet_id: subnet.id.clone(),
                    ip_address: ip.to_string(),
                })
            })
            .collect()
    }

    /// The ports already holding the wanted addresses (IPAM's, or a
    /// user's); refused if another endpoint owns one.
    async fn ports_holding(
        &self,
        net: &NetworkEntry,
        wanted: &[FixedIp],
        eid: &DockerId,
    ) -> Result<Vec<Port>> {
        let mut found: Vec<Port> = Vec::new();
        for want in wanted {
            let ip: Option<IpAddr> = want.ip_address.parse().ok();
            let cached = ip.and_then(|ip| self.index().port_by_ip(&want.subnet_id, ip).cloned());
            let port = match cached {
                Some(p) => Some(p),
                None => self
                    .neutron
                    .list_ports(
                        &Query::new()
                            .eq("network_id", &net.network.id)
                            .fixed_ip(&want.ip_address),
                    )
                    .await?
                    .into_iter()
                    .find(|p| p.ips_in(&want.subnet_id).any(|a| a == want.ip_address)),
            };
            if let Some(p) = port
                && !found.iter().any(|f| f.id == p.id)
            {
                found.push(p);
            }
        }
        for p in &found {
            if let Some(owner) = names::id_from_tags(&p.tags)
                && owner != eid.as_str()
            {
                return Err(DriverError::Invalid(format!(
                    "port {} is in use by endpoint {owner}",
                    p.id
                )));
            }
        }
        Ok(found)
    }

    async fn create_endpoint_port(
        &self,
        net: &NetworkEntry,
        wanted: &Wanted,
        eid: &DockerId,
    ) -> Result<Claimed> {
        let port = self
            .neutron
            .create_port(&PortCreate {
                network_id: net.network.id.clone(),
                name: Some(names::endpoint_port_name(eid)),
                admin_state_up: Some(true),
                mac_address: wanted.mac.clone(),
                fixed_ips: Some(wanted.fixed_ips.clone()),
                // A trunk refuses subports that have a device: in vlan
                // mode the device ID is set once the port is a subport.
                device_id: (!self.trunk_mode()).then(|| eid.to_string()),
                device_owner: Some(names::DEVICE_OWNER.into()),
                host_id: self.bind_host_id(),
                ..Default::default()
            })
            .await?;
        Ok(Claimed {
            port,
            created_here: true,
            original_tags: Vec::new(),
        })
    }

    /// Make the found port(s) the endpoint's: dual stack through kuryr
    /// IPAM gives one port per family, so one is kept (a user's first)
    /// and the other's address folded into it; then device, owner, host,
    /// MAC and addresses are set as Docker asked.
    async fn reconcile_port(
        &self,
        mut found: Vec<Port>,
        wanted: &Wanted,
        eid: &DockerId,
    ) -> Result<Claimed> {
        found.sort_by_key(is_kuryr_port);
        let mut keep = found.remove(0);
        for extra in &found {
            if !is_kuryr_port(extra) {
                return Err(DriverError::Invalid(format!(
                    "addresses belong to two user ports ({} and {})",
                    keep.id, extra.id
                )));
            }
            match self.neutron.delete_port(&extra.id).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
            self.index().remove_port(&extra.id);
        }
        let original_tags = keep.tags.clone();
        let (mut update, extra_tags) = self.port_update_for(&keep, wanted, eid);
        if update.mac_address.is_some() && is_bound(&keep) {
            // Neutron refuses a new MAC on a bound port (409 PortBound),
            // and IPAM ports are bound to this host from the start:
            // unbind first; the update below binds it again.
            keep = self
                .neutron
                .update_port(
                    &keep.id,
                    &PortUpdate {
                        host_id: Some(String::new()),
                        ..Default::default()
                    },
                )
                .await?;
            update.host_id = self.bind_host_id();
        }
        if !update.is_empty() {
            keep = self.neutron.update_port(&keep.id, &update).await?;
        }
        keep.tags = original_tags.clone();
        keep.tags.extend(extra_tags);
        Ok(Claimed {
            port: keep,
            created_here: false,
            original_tags,
        })
    }

    /// The update that makes `port` the endpoint's, and the tags to add
    /// (a user port's MAC, kept so it can be restored).
    fn port_update_for(
        &self,
        port: &Port,
        wanted: &Wanted,
        eid: &DockerId,
    ) -> (PortUpdate, Vec<String>) {
        let mut update = PortUpdate::default();
        if port.device_id != eid.as_str() && !self.trunk_mode() {
            update.device_id = Some(eid.to_string());
        }
        if port.device_owner != names::DEVICE_OWNER {
            update.device_owner = Some(names::DEVICE_OWNER.into());
        }
        if let Some(host) = self.bind_host_id()
            && port.host_id != host
        {
            update.host_id = Some(host);
        }
        if !port.admin_state_up {
            update.admin_state_up = Some(true);
        }
        let mut extra_tags = Vec::new();
        if let Some(mac) = &wanted.mac
            && *mac != port.mac_address.to_ascii_lowercase()
        {
            update.mac_address = Some(mac.clone());
            if !is_kuryr_port(port) {
                extra_tags.push(format!("{}{}", names::TAG_ORIGINAL_MAC, port.mac_address));
            }
        }
        let missing: Vec<&FixedIp> = wanted
            .fixed_ips
            .iter()
            .filter(|w| !port.fixed_ips.contains(w))
            .collect();
        if !missing.is_empty() {
            let mut ips = port.fixed_ips.clone();
            ips.extend(missing.into_iter().cloned());
            update.fixed_ips = Some(ips);
        }
        (update, extra_tags)
    }

    /// Tag the port with the endpoint's ID (and `compute:kuryr` if kuryr
    /// made it).
    async fn tag_endpoint_port(&self, mut claimed: Claimed, eid: &DockerId) -> Result<Claimed> {
        let mut tags = claimed.port.tags.clone();
        let mut desired: Vec<String> = names::id_tags(eid);
        if is_kuryr_port(&claimed.port) {
            desired.push(names::PORT_CREATED_TAG.into());
        }
        for t in desired {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        if tags == claimed.port.tags && !claimed.created_here {
            return Ok(claimed);
        }
        match self
            .neutron
            .replace_tags(TagResource::Port, &claimed.port.id, &tags)
            .await
        {
            Ok(t) => {
                claimed.port.tags = t;
                Ok(claimed)
            }
            Err(e) => {
                self.undo_port(&claimed).await;
                Err(e.into())
            }
        }
    }

    /// Put the port behind the VM port (nested modes), bind the host side
    /// and wait for ACTIVE if configured; undo everything on failure.
    async fn plug(&self, net: &NetworkEntry, claimed: Claimed, eid: &DockerId) -> Result<Port> {
        let mut port = claimed.port.clone();
        let vlan_id = match self.attach_to_node(&port, eid).await {
            Ok(v) => {
                if self.trunk_mode() {
                    port.device_id = eid.to_string();
                }
                v
            }
            Err(e) => {
                // Half done is possible (a subport added, its device ID
                // not): undoing is idempotent.
                self.undo_node(&port).await;
                self.undo_port(&claimed).await;
                return Err(e);
            }
        };
        if let Err(e) = self.bind_host(net, &port, eid, vlan_id).await {
            self.undo_node(&port).await;
            self.undo_port(&claimed).await;
            return Err(e);
        }
        // Nested modes bind no port to a host: there is no agent to wait for.
        if self.config.vif_plugging_is_fatal && !self.nested_mode() {
            match self.wait_active(&port.id).await {
                Ok(p) => {
                    port = Port {
                        tags: port.tags.clone(),
                        ..p
                    }
                }
                Err(e) => {
                    self.unbind_host_quietly(net, &port).await;
                    self.undo_port(&claimed).await;
                    return Err(e);
                }
            }
        }
        Ok(port)
    }

    /// Undo CreateEndpoint's Neutron changes after a later step failed.
    async fn undo_port(&self, claimed: &Claimed) {
        let port = &claimed.port;
        let result = if claimed.created_here {
            self.neutron.delete_port(&port.id).await
        } else {
            self.neutron
                .replace_tags(TagResource::Port, &port.id, &claimed.original_tags)
                .await
                .map(|_| ())
        };
        if let Err(e) = result
            && !e.is_not_found()
        {
            warn!(port = %port.id, error = %e, "rollback of the port failed");
        }
    }

    /// Undo [`Driver::attach_to_node`] after a later step failed.
    async fn undo_node(&self, port: &Port) {
        if let Err(e) = self.detach_from_node(port).await {
            warn!(port = %port.id, error = %e, "rollback behind the VM port failed");
        }
    }
}
