//! Endpoints: CreateEndpoint binds the port's host side, Join tells Docker
//! which interface to move into the container, DeleteEndpoint undoes it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use kuryr_openstack::neutron::{
    FixedIp, Port, PortCreate, PortUpdate, SecurityGroupCreate, SecurityGroupRuleCreate,
};
use kuryr_openstack::{Query, TagResource};
use serde_json::Value;
use tracing::{info, warn};

use super::index::{EndpointEntry, NetworkEntry};
use super::ipam::{is_bound, is_kuryr_port};
use super::{Driver, DriverError, Result};
use crate::binding::{BindRequest, UnbindRequest};
use crate::names;
use crate::protocol::{
    CreateEndpointInterface, CreateEndpointRequest, CreateEndpointResponse, DockerId,
    EndpointOperInfoResponse, EndpointRequest, ExposedPort, InterfaceName, JoinRequest,
    JoinResponse, ProgramRequest, StaticRoute,
};

/// Consecutive ports of one protocol become one rule, as kuryr does.
pub(super) fn port_ranges(ports: &[ExposedPort]) -> Vec<(String, u16, u16)> {
    let mut sorted = ports.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut out: Vec<(String, u16, u16)> = Vec::new();
    for p in sorted {
        let proto = match p.proto {
            1 => "icmp".to_string(),
            6 => "tcp".to_string(),
            17 => "udp".to_string(),
            132 => "sctp".to_string(),
            n => n.to_string(),
        };
        match out.last_mut() {
            Some((last_proto, _, max))
                if *last_proto == proto && u32::from(*max) + 1 == u32::from(p.port) =>
            {
                *max = p.port;
            }
            _ => out.push((proto, p.port, p.port)),
        }
    }
    out
}

impl Driver {
    async fn endpoint_entry(&self, endpoint_id: &DockerId) -> Result<Option<EndpointEntry>> {
        let known = self.index().endpoint(endpoint_id.as_str()).cloned();
        if known.is_some() {
            return Ok(known);
        }
        let ports = self
            .neutron
            .list_ports(&Query::new().tags(&names::id_tags(endpoint_id)))
            .await?;
        let Some(port) = ports.into_iter().next() else {
            return Ok(None);
        };
        let mut index = self.index();
        index.put_endpoint(endpoint_id.to_string(), port);
        Ok(index.endpoint(endpoint_id.as_str()).cloned())
    }

    fn bind_names(port_id: &str) -> (String, String) {
        (
            names::host_ifname(port_id),
            names::container_ifname(port_id),
        )
    }

    pub(super) async fn create_endpoint(
        &self,
        req: CreateEndpointRequest,
    ) -> Result<CreateEndpointResponse> {
        let _guard = self.lock(req.network_id.as_str()).await;
        let net = self.network_entry(&req.network_id).await?.ok_or_else(|| {
            DriverError::NotFound(format!(
                "no Neutron network for Docker network {}",
                req.network_id
            ))
        })?;
        let eid = req.endpoint_id.clone();
        let requested_mac = req.interface.mac_address.clone();
        // ipvlan devices keep the node NIC's MAC and cannot take another:
        // Docker must not try to set one.
        let report_mac = requested_mac.is_none() && !self.binder.shares_link_mac();
        let respond = |port: &Port| CreateEndpointResponse {
            interface: CreateEndpointInterface {
                mac_address: report_mac.then(|| port.mac_address.clone()),
            },
        };

        // A retried call: the endpoint exists; make sure the Neutron side
        // behind the VM port and the host side do.
        let known = self.index().endpoint(eid.as_str()).cloned();
        if let Some(entry) = known {
            let vlan_id = self.attach_to_node(&entry.port, &eid).await?;
            self.bind_host(&net, &entry.port, &eid, vlan_id).await?;
            return Ok(respond(&entry.port));
        }

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
        let mut wanted: Vec<FixedIp> = Vec::new();
        let mut found: Vec<Port> = Vec::new();
        for ip in &addresses {
            let subnet = net.subnet_for(*ip).ok_or_else(|| {
                DriverError::Invalid(format!(
                    "address {ip} is in no subnet of Neutron network {}",
                    net.network.id
                ))
            })?;
            wanted.push(FixedIp {
                subnet_id: subnet.id.clone(),
                ip_address: ip.to_string(),
            });
            let cached = self.index().port_by_ip(&subnet.id, *ip).cloned();
            let port = match cached {
                Some(p) => Some(p),
                None => self
                    .neutron
                    .list_ports(
                        &Query::new()
                            .eq("network_id", &net.network.id)
                            .fixed_ip(&ip.to_string()),
                    )
                    .await?
                    .into_iter()
                    .find(|p| p.ips_in(&subnet.id).any(|a| a == ip.to_string())),
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

        let (port, created_here, original_tags) = if found.is_empty() {
            // Docker's own IPAM gave the address: the port is made here and
            // deleted in DeleteEndpoint.
            let port = self
                .neutron
                .create_port(&PortCreate {
                    network_id: net.network.id.clone(),
                    name: Some(names::endpoint_port_name(&eid)),
                    admin_state_up: Some(true),
                    mac_address: requested_mac.clone(),
                    fixed_ips: Some(wanted.clone()),
                    // A trunk refuses subports that have a device: in vlan
                    // mode the device ID is set once the port is a subport.
                    device_id: (!self.trunk_mode()).then(|| eid.to_string()),
                    device_owner: Some(names::DEVICE_OWNER.into()),
                    host_id: self.bind_host_id(),
                    ..Default::default()
                })
                .await?;
            (port, true, Vec::new())
        } else {
            // Dual stack through kuryr IPAM gives one port per family: keep
            // one (a user's first) and fold the other's address into it.
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
            let mut update = PortUpdate::default();
            if keep.device_id != eid.as_str() && !self.trunk_mode() {
                update.device_id = Some(eid.to_string());
            }
            if keep.device_owner != names::DEVICE_OWNER {
                update.device_owner = Some(names::DEVICE_OWNER.into());
            }
            if let Some(host) = self.bind_host_id()
                && keep.host_id != host
            {
                update.host_id = Some(host);
            }
            if !keep.admin_state_up {
                update.admin_state_up = Some(true);
            }
            let mut extra_tags = Vec::new();
            if let Some(mac) = &requested_mac
                && *mac != keep.mac_address.to_ascii_lowercase()
            {
                update.mac_address = Some(mac.clone());
                if !is_kuryr_port(&keep) {
                    extra_tags.push(format!("{}{}", names::TAG_ORIGINAL_MAC, keep.mac_address));
                }
            }
            let missing: Vec<&FixedIp> = wanted
                .iter()
                .filter(|w| !keep.fixed_ips.contains(w))
                .collect();
            if !missing.is_empty() {
                let mut ips = keep.fixed_ips.clone();
                ips.extend(missing.into_iter().cloned());
                update.fixed_ips = Some(ips);
            }
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
            (keep, false, original_tags)
        };

        let mut tags = port.tags.clone();
        let mut desired: Vec<String> = names::id_tags(&eid);
        if is_kuryr_port(&port) {
            desired.push(names::PORT_CREATED_TAG.into());
        }
        for t in desired {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        let mut port = port;
        if tags != port.tags || created_here {
            match self
                .neutron
                .replace_tags(TagResource::Port, &port.id, &tags)
                .await
            {
                Ok(t) => port.tags = t,
                Err(e) => {
                    self.undo_port(&port, created_here, &original_tags).await;
                    return Err(e.into());
                }
            }
        }

        let vlan_id = match self.attach_to_node(&port, &eid).await {
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
                self.undo_port(&port, created_here, &original_tags).await;
                return Err(e);
            }
        };
        if let Err(e) = self.bind_host(&net, &port, &eid, vlan_id).await {
            self.undo_node(&port).await;
            self.undo_port(&port, created_here, &original_tags).await;
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
                    self.unbind_host_quietly(&net, &port).await;
                    self.undo_port(&port, created_here, &original_tags).await;
                    return Err(e);
                }
            }
        }
        info!(endpoint = %eid, port = %port.id, mac = %port.mac_address, "endpoint created");
        let response = respond(&port);
        self.index().put_endpoint(eid.to_string(), port);
        Ok(response)
    }

    /// Undo CreateEndpoint's Neutron changes after a later step failed.
    async fn undo_port(&self, port: &Port, created_here: bool, original_tags: &[String]) {
        let result = if created_here {
            self.neutron.delete_port(&port.id).await
        } else {
            self.neutron
                .replace_tags(TagResource::Port, &port.id, original_tags)
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

    async fn bind_host(
        &self,
        net: &NetworkEntry,
        port: &Port,
        eid: &DockerId,
        vlan_id: Option<u16>,
    ) -> Result<()> {
        let (host_ifname, container_ifname) = Self::bind_names(&port.id);
        self.binder
            .bind(&BindRequest {
                port,
                endpoint_id: eid.as_str(),
                mtu: net.network.mtu.unwrap_or(1500),
                host_ifname,
                container_ifname,
                link_iface: self.node().map(|n| n.link.as_str()),
                vlan_id,
            })
            .await?;
        Ok(())
    }

    async fn unbind_host(&self, net: &NetworkEntry, port: &Port) -> Result<()> {
        let (host_ifname, container_ifname) = Self::bind_names(&port.id);
        self.binder
            .unbind(&UnbindRequest {
                port_id: &port.id,
                network_id: &net.network.id,
                host_ifname,
                container_ifname,
                vif_type: &port.vif_type,
                vif_details: &port.vif_details,
            })
            .await?;
        Ok(())
    }

    /// Rollback path: the unbind is best effort, its failure only logged.
    async fn unbind_host_quietly(&self, net: &NetworkEntry, port: &Port) {
        if let Err(e) = self.unbind_host(net, port).await {
            warn!(port = %port.id, error = %e, "unbind failed");
        }
    }

    /// Poll until Neutron reports the port ACTIVE, bounded by the timeout.
    async fn wait_active(&self, port_id: &str) -> Result<Port> {
        let started = Instant::now();
        let mut delay = std::time::Duration::from_millis(200);
        loop {
            let port = self.neutron.get_port(port_id).await?;
            if port.status == "ACTIVE" {
                info!(
                    port = port_id,
                    ms = started.elapsed().as_millis() as u64,
                    "port active"
                );
                return Ok(port);
            }
            if started.elapsed() >= self.config.vif_plugging_timeout {
                return Err(DriverError::Timeout(format!(
                    "Neutron port {port_id} did not become ACTIVE within {}s (status {}): \
                     is the Neutron L2 agent on host {:?} running?",
                    self.config.vif_plugging_timeout.as_secs(),
                    port.status,
                    self.config.host_id
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(1));
        }
    }

    pub(super) fn endpoint_oper_info(&self, req: &EndpointRequest) -> EndpointOperInfoResponse {
        let mut value = BTreeMap::new();
        if let Some(e) = self.index().endpoint(req.endpoint_id.as_str()) {
            value.insert("port_id".to_string(), Value::String(e.port.id.clone()));
            value.insert(
                "host_ifname".to_string(),
                Value::String(names::host_ifname(&e.port.id)),
            );
            value.insert(
                "mac_address".to_string(),
                Value::String(e.port.mac_address.clone()),
            );
        }
        EndpointOperInfoResponse { value }
    }

    pub(super) async fn join(&self, req: JoinRequest) -> Result<JoinResponse> {
        let ep = self
            .endpoint_entry(&req.endpoint_id)
            .await?
            .ok_or_else(|| {
                DriverError::NotFound(format!("no Neutron port for endpoint {}", req.endpoint_id))
            })?;
        let net = self.network_entry(&req.network_id).await?.ok_or_else(|| {
            DriverError::NotFound(format!(
                "no Neutron network for Docker network {}",
                req.network_id
            ))
        })?;
        let subnet_ids: Vec<&str> = ep
            .port
            .fixed_ips
            .iter()
            .map(|f| f.subnet_id.as_str())
            .collect();
        let subnets: Vec<_> = net
            .subnets
            .iter()
            .filter(|s| subnet_ids.contains(&s.id.as_str()))
            .collect();
        let gateway = |version: u8| {
            subnets
                .iter()
                .filter(|s| s.ip_version == version)
                .find_map(|s| s.gateway_ip.clone())
        };
        let static_routes = subnets
            .iter()
            .flat_map(|s| s.host_routes.iter())
            .map(|r| StaticRoute {
                destination: r.destination.clone(),
                route_type: 0,
                next_hop: Some(r.nexthop.clone()),
            })
            .collect();
        Ok(JoinResponse {
            interface_name: InterfaceName {
                src_name: names::container_ifname(&ep.port.id),
                dst_prefix: self.config.dst_prefix.clone(),
            },
            gateway: gateway(4),
            gateway_ipv6: gateway(6),
            static_routes,
            disable_gateway_service: true,
        })
    }

    pub(super) async fn delete_endpoint(&self, req: &EndpointRequest) -> Result<()> {
        let _guard = self.lock(req.network_id.as_str()).await;
        let Some(ep) = self.endpoint_entry(&req.endpoint_id).await? else {
            info!(endpoint = %req.endpoint_id, "no port: nothing to delete");
            return Ok(());
        };
        let net = self.network_entry(&req.network_id).await?;
        let port = ep.port.clone();
        if let Some(sg) = &ep.exposed_sg {
            self.drop_exposed_sg(&port, sg).await?;
        }
        let unbind = match &net {
            Some(net) => self.unbind_host(net, &port).await,
            None => Ok(()),
        };
        // The pairs / the subport go before the port may be deleted
        // (Neutron refuses to delete a subport's port).
        self.detach_from_node(&port).await?;
        if port.name == names::endpoint_port_name(&req.endpoint_id) {
            // Made in CreateEndpoint (Docker's IPAM): no ReleaseAddress will
            // reach us for it.
            match self.neutron.delete_port(&port.id).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
            self.index().remove_endpoint(req.endpoint_id.as_str());
        } else {
            // ReleaseAddress comes next and deletes (or restores) the port;
            // keep it findable without a lookup.
            let mut index = self.index();
            index.remove_endpoint(req.endpoint_id.as_str());
            index.put_port(port.clone());
        }
        unbind?;
        info!(endpoint = %req.endpoint_id, port = %port.id, "endpoint deleted");
        Ok(())
    }

    pub(super) async fn program_external_connectivity(&self, req: &ProgramRequest) -> Result<()> {
        if !self.config.process_external_connectivity {
            return Ok(());
        }
        let ports = &req.exposed;
        if ports.is_empty() {
            return Ok(());
        }
        let _guard = self.lock(req.network_id.as_str()).await;
        let ep = self
            .endpoint_entry(&req.endpoint_id)
            .await?
            .ok_or_else(|| {
                DriverError::NotFound(format!("no Neutron port for endpoint {}", req.endpoint_id))
            })?;
        let name = names::exposed_sg_name(&ep.port.id);
        let existing = self
            .neutron
            .list_security_groups(&Query::new().eq("name", &name))
            .await?;
        let sg = match existing.into_iter().next() {
            Some(sg) => sg,
            None => {
                let sg = self
                    .neutron
                    .create_security_group(&SecurityGroupCreate {
                        name: name.clone(),
                        description: Some(names::EXPOSED_SG_DESCRIPTION.into()),
                        project_id: None,
                    })
                    .await?;
                let ethertypes: Vec<&str> = {
                    let mut e = Vec::new();
                    if ep
                        .port
                        .fixed_ips
                        .iter()
                        .any(|f| !f.ip_address.contains(':'))
                    {
                        e.push("IPv4");
                    }
                    if ep.port.fixed_ips.iter().any(|f| f.ip_address.contains(':')) {
                        e.push("IPv6");
                    }
                    e
                };
                for (proto, min, max) in port_ranges(ports) {
                    for ethertype in &ethertypes {
                        let icmp = proto == "icmp";
                        let rule = SecurityGroupRuleCreate {
                            security_group_id: sg.id.clone(),
                            direction: "ingress".into(),
                            ethertype: Some((*ethertype).into()),
                            protocol: Some(if icmp && *ethertype == "IPv6" {
                                "ipv6-icmp".into()
                            } else {
                                proto.clone()
                            }),
                            port_range_min: (!icmp).then_some(u32::from(min)),
                            port_range_max: (!icmp).then_some(u32::from(max)),
                            ..Default::default()
                        };
                        if let Err(e) = self.neutron.create_security_group_rule(&rule).await
                            && !e.is_conflict()
                        {
                            let _ = self.neutron.delete_security_group(&sg.id).await;
                            return Err(e.into());
                        }
                    }
                }
                sg
            }
        };
        if !ep.port.security_groups.contains(&sg.id) {
            let mut groups = ep.port.security_groups.clone();
            groups.push(sg.id.clone());
            let updated = self
                .neutron
                .update_port(
                    &ep.port.id,
                    &PortUpdate {
                        security_groups: Some(groups),
                        ..Default::default()
                    },
                )
                .await?;
            let mut index = self.index();
            if let Some(e) = index.endpoint_mut(req.endpoint_id.as_str()) {
                e.port.security_groups = updated.security_groups;
            }
        }
        if let Some(e) = self.index().endpoint_mut(req.endpoint_id.as_str()) {
            e.exposed_sg = Some(sg.id.clone());
        }
        info!(endpoint = %req.endpoint_id, security_group = %sg.id, "exposed ports opened");
        Ok(())
    }

    pub(super) async fn revoke_external_connectivity(&self, req: &EndpointRequest) -> Result<()> {
        if !self.config.process_external_connectivity {
            return Ok(());
        }
        let _guard = self.lock(req.network_id.as_str()).await;
        let Some(ep) = self.endpoint_entry(&req.endpoint_id).await? else {
            return Ok(());
        };
        // An exposed-ports group is an extra group on the port: without
        // one there is nothing to look up.
        let sg = match &ep.exposed_sg {
            Some(sg) => Some(sg.clone()),
            None if ep.port.security_groups.len() <= 1 => None,
            None => self
                .neutron
                .list_security_groups(&Query::new().eq("name", names::exposed_sg_name(&ep.port.id)))
                .await?
                .into_iter()
                .next()
                .map(|s| s.id),
        };
        if let Some(sg) = sg {
            self.drop_exposed_sg(&ep.port, &sg).await?;
            if let Some(e) = self.index().endpoint_mut(req.endpoint_id.as_str()) {
                e.exposed_sg = None;
                e.port.security_groups.retain(|g| *g != sg);
            }
        }
        Ok(())
    }

    async fn drop_exposed_sg(&self, port: &Port, sg: &str) -> Result<()> {
        if port.security_groups.iter().any(|g| g == sg) {
            let groups: Vec<String> = port
                .security_groups
                .iter()
                .filter(|g| *g != sg)
                .cloned()
                .collect();
            match self
                .neutron
                .update_port(
                    &port.id,
                    &PortUpdate {
                        security_groups: Some(groups),
                        ..Default::default()
                    },
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        match self.neutron.delete_security_group(sg).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposed_ports_group_into_ranges() {
        let p = |proto, port| ExposedPort { proto, port };
        let ranges = port_ranges(&[p(6, 81), p(6, 80), p(17, 53), p(6, 443), p(6, 80)]);
        assert_eq!(
            ranges,
            vec![
                ("tcp".to_string(), 80, 81),
                ("tcp".to_string(), 443, 443),
                ("udp".to_string(), 53, 53)
            ]
        );
    }
}
