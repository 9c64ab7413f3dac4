//! CreateEndpoint, in its phases: find or create the port, reconcile it
//! with what Docker asked for, tag it with the endpoint, plug it (behind
//! the VM port in nested modes, then the host side). A failure at any
//! phase undoes the earlier ones. The wait for ACTIVE comes in Join (see
//! [`super::active`]).

use std::net::IpAddr;

use kuryr_openstack::neutron::{FixedIp, Port, PortCreate, PortUpdate};
use kuryr_openstack::{Query, TagResource};
use tracing::info;

use super::super::index::NetworkEntry;
use super::super::ipam::{is_bound, is_kuryr_port};
use super::super::steps::{Journal, Lost, Undo};
use super::super::{Driver, DriverError, Result};
use crate::names;
use crate::protocol::{
    CreateEndpointInterface, CreateEndpointRequest, CreateEndpointResponse, DockerId,
};

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
        let _guard = self.lock(req.endpoint_id.as_str()).await;
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
        let port = self
            .journaled("CreateEndpoint", async |j: &mut Journal| {
                let found = self.ports_holding(&net, &wanted.fixed_ips, &eid).await?;
                let port = if self.handed_out_alone(&found) {
                    // The usual `docker run`: one port IPAM handed out here.
                    self.claim_and_tag_at_once(found, &wanted, &eid, j).await?
                } else {
                    let port = match found.is_empty() {
                        // Docker's own IPAM gave the address: the port is
                        // made here and deleted in DeleteEndpoint.
                        true => self.create_endpoint_port(&net, &wanted, &eid, j).await?,
                        false => self.reconcile_port(found, &wanted, &eid, j).await?,
                    };
                    self.fault_point("CreateEndpoint.port_claimed").await?;
                    self.tag_endpoint_port(port, &eid, j).await?
                };
                self.fault_point("CreateEndpoint.port_tagged").await?;
                self.plug(&net, port, &eid, j).await
            })
            .await?;
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
        j: &mut Journal,
    ) -> Result<Port> {
        let description = names::made_in(&names::nonce(), &self.config.host_id);
        let body = PortCreate {
            network_id: net.network.id.clone(),
            name: Some(names::endpoint_port_name(eid)),
            description: Some(description.clone()),
            admin_state_up: Some(true),
            mac_address: wanted.mac.clone(),
            fixed_ips: Some(wanted.fixed_ips.clone()),
            // A trunk refuses subports that have a device: in vlan mode
            // the device ID is set once the port is a subport.
            device_id: (!self.trunk_mode()).then(|| eid.to_string()),
            device_owner: Some(names::DEVICE_OWNER.into()),
            host_id: self.bind_host_id(),
            tags: self.create_tags(endpoint_port_tags(eid)),
            ..Default::default()
        };
        let made = self.neutron.create_port(&body);
        let lost = Lost::Port { description };
        Ok(self
            .create_undoable(j, lost, made, |p: &Port| Undo::DeletePort(p.id.clone()))
            .await?)
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
        j: &mut Journal,
    ) -> Result<Port> {
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
        j.push(Undo::UpdatePort {
            id: keep.id.clone(),
            update: undo_of(&keep, &update),
        });
        if update.mac_address.is_some() && is_bound(&keep) {
            // Neutron refuses a new MAC on a bound port (409 PortBound),
            // and IPAM ports are bound to this host from the start:
            // unbind first; the update below binds it again.
            let unbind = PortUpdate {
                host_id: Some(String::new()),
                ..Default::default()
            };
            keep = self.claim_update(&keep, &unbind, eid).await?;
            update.host_id = self.bind_host_id();
        }
        if !update.is_empty() {
            keep = self.claim_update(&keep, &update, eid).await?;
        }
        keep.tags = original_tags;
        if !extra_tags.is_empty() {
            j.push(Undo::RemoveTags {
                resource: TagResource::Port,
                id: keep.id.clone(),
                tags: extra_tags.clone(),
            });
            self.add_tags(TagResource::Port, &keep.id, &extra_tags)
                .await?;
            keep.tags.extend(extra_tags);
        }
        Ok(keep)
    }

    /// Update a port this endpoint is claiming. A port this daemon handed
    /// out is its own to claim; one found in Neutron (a user's port, a
    /// port handed out before a restart or by the swarm manager) is
    /// claimed only if nobody changed it since it was read (`If-Match` on
    /// its revision): two claimers cannot both win, the loser sees the
    /// winner's endpoint and gives up.
    async fn claim_update(&self, port: &Port, update: &PortUpdate, eid: &DockerId) -> Result<Port> {
        let handed_out_here = self.index().has_port(&port.id);
        let rev = port.revision_number.filter(|_| !handed_out_here);
        let Some(rev) = rev else {
            return Ok(self.neutron.update_port(&port.id, update).await?);
        };
        match self.neutron.update_port_if(&port.id, update, rev).await {
            Err(e) if e.is_precondition_failed() => {
                let fresh = self.neutron.get_port(&port.id).await?;
                if let Some(owner) = names::id_from_tags(&fresh.tags)
                    && owner != eid.as_str()
                {
                    // Not ours any more: forget we handed it out.
                    self.index().remove_port(&port.id);
                    return Err(DriverError::Invalid(format!(
                        "port {} is in use by endpoint {owner}",
                        port.id
                    )));
                }
                let rev = fresh.revision_number.unwrap_or(rev);
                Ok(self.neutron.update_port_if(&port.id, update, rev).await?)
            }
            other => Ok(other?),
        }
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
        if port.name == names::READY_PORT_NAME {
            // Made ahead: from now on the endpoint's, by its name too.
            update.name = Some(names::endpoint_port_name(eid));
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

    /// One kuryr port that IPAM handed out here and no one else may
    /// claim: its update needs no `If-Match`, so claiming and tagging do
    /// not depend on each other.
    fn handed_out_alone(&self, found: &[Port]) -> bool {
        matches!(found, [p] if is_kuryr_port(p) && self.index().has_port(&p.id))
    }

    /// Claim and tag at once: dockerd creates a network's endpoints one
    /// at a time, so each round trip saved here is saved once per
    /// container when many start together. Both undos are journaled
    /// before either request goes out.
    async fn claim_and_tag_at_once(
        &self,
        found: Vec<Port>,
        wanted: &Wanted,
        eid: &DockerId,
        j: &mut Journal,
    ) -> Result<Port> {
        let before = found[0].clone();
        let missing = self.journal_endpoint_tags(&before, eid, j);
        let (claimed, tagged) = tokio::join!(
            self.reconcile_port(found, wanted, eid, j),
            self.apply_endpoint_tags(before, missing),
        );
        let (mut port, tagged) = (claimed?, tagged?);
        port.tags = tagged.tags;
        port.revision_number = port.revision_number.max(tagged.revision_number);
        self.fault_point("CreateEndpoint.port_claimed").await?;
        Ok(port)
    }

    /// Tag the port with the endpoint's ID (and `compute:kuryr` if kuryr
    /// made it), adding only what is missing.
    async fn tag_endpoint_port(&self, port: Port, eid: &DockerId, j: &mut Journal) -> Result<Port> {
        let missing = self.journal_endpoint_tags(&port, eid, j);
        self.apply_endpoint_tags(port, missing).await
    }

    /// The endpoint tags `port` lacks, journaled for the rollback.
    fn journal_endpoint_tags(&self, port: &Port, eid: &DockerId, j: &mut Journal) -> Vec<String> {
        let desired = if is_kuryr_port(port) {
            endpoint_port_tags(eid)
        } else {
            names::id_tags(eid)
        };
        let missing: Vec<String> = desired
            .into_iter()
            .filter(|t| !port.tags.contains(t))
            .collect();
        if !missing.is_empty() {
            j.push(Undo::RemoveTags {
                resource: TagResource::Port,
                id: port.id.clone(),
                tags: missing.clone(),
            });
        }
        missing
    }

    async fn apply_endpoint_tags(&self, mut port: Port, missing: Vec<String>) -> Result<Port> {
        if missing.is_empty() {
            return Ok(port);
        }
        if is_kuryr_port(&port) {
            // A port kuryr made: its tags are kuryr's; one call sets them.
            let all: Vec<String> = port.tags.iter().cloned().chain(missing).collect();
            port.tags = self
                .neutron
                .replace_tags(TagResource::Port, &port.id, &all)
                .await?;
        } else {
            self.add_tags(TagResource::Port, &port.id, &missing).await?;
            port.tags.extend(missing);
        }
        Ok(port)
    }

    /// Put the port behind the VM port (nested modes), bind the host side
    /// and wait for ACTIVE if configured.
    async fn plug(
        &self,
        net: &NetworkEntry,
        mut port: Port,
        eid: &DockerId,
        j: &mut Journal,
    ) -> Result<Port> {
        // Half done is possible (a subport added, its device ID not):
        // undoing is idempotent.
        j.push(Undo::DetachFromNode(port.clone()));
        let vlan_id = self.attach_to_node(&port, eid).await?;
        if self.trunk_mode() {
            port.device_id = eid.to_string();
        }
        self.fault_point("CreateEndpoint.attached").await?;
        j.push(Undo::UnbindHost {
            network_id: net.network.id.clone(),
            port: port.clone(),
        });
        self.bind_host(net, &port, eid, vlan_id).await?;
        self.fault_point("CreateEndpoint.bound").await?;
        // The wait for ACTIVE is Join's: dockerd holds its lock of the
        // network across CreateEndpoint, so a wait here would make every
        // other container of the network wait too.
        Ok(port)
    }
}

/// The tags of a port kuryr made for endpoint `eid`.
fn endpoint_port_tags(eid: &DockerId) -> Vec<String> {
    let mut tags = names::id_tags(eid);
    tags.push(names::PORT_CREATED_TAG.into());
    tags
}

/// The update that puts back what `update` changes on `port`.
fn undo_of(port: &Port, update: &PortUpdate) -> PortUpdate {
    PortUpdate {
        name: update.name.as_ref().map(|_| port.name.clone()),
        device_id: update.device_id.as_ref().map(|_| port.device_id.clone()),
        device_owner: update
            .device_owner
            .as_ref()
            .map(|_| port.device_owner.clone()),
        host_id: update.host_id.as_ref().map(|_| port.host_id.clone()),
        admin_state_up: update.admin_state_up.map(|_| port.admin_state_up),
        mac_address: update
            .mac_address
            .as_ref()
            .map(|_| port.mac_address.clone()),
        fixed_ips: update.fixed_ips.as_ref().map(|_| port.fixed_ips.clone()),
        ..Default::default()
    }
}
