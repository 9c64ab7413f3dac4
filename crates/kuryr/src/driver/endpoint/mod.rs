//! Endpoints: CreateEndpoint binds the port's host side ([`create`]), Join
//! tells Docker which interface to move into the container,
//! DeleteEndpoint ([`delete`]) undoes it; `--expose` is [`expose`]; the
//! wait for ACTIVE is [`active`].

mod active;
mod create;
mod delete;
mod expose;

pub(super) use active::ActiveWatch;

use std::collections::BTreeMap;

use kuryr_openstack::Query;
use kuryr_openstack::neutron::Port;
use serde_json::Value;

use super::index::{EndpointEntry, NetworkEntry};
use super::{Driver, Result};
use crate::binding::{BindRequest, UnbindRequest};
use crate::names;
use crate::protocol::{
    DockerId, EndpointOperInfoResponse, EndpointRequest, InterfaceName, JoinRequest, JoinResponse,
    StaticRoute,
};

impl Driver {
    pub(in crate::driver) async fn endpoint_entry(
        &self,
        endpoint_id: &DockerId,
    ) -> Result<Option<EndpointEntry>> {
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

    /// Remove a port's host side (whatever of it is there).
    pub(in crate::driver) async fn unbind_port(&self, network_id: &str, port: &Port) -> Result<()> {
        let (host_ifname, container_ifname) = Self::bind_names(&port.id);
        self.binder
            .unbind(&UnbindRequest {
                port_id: &port.id,
                network_id,
                host_ifname,
                container_ifname,
                vif_type: &port.vif_type,
                vif_details: &port.vif_details,
            })
            .await?;
        Ok(())
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
        let ep = {
            // A CreateEndpoint of this endpoint still running (its client
            // gave up, dockerd went on): its tags may be in Neutron before
            // the port is claimed and the host side made. Wait for it.
            let _guard = self.lock(req.endpoint_id.as_str()).await;
            self.known_endpoint(&req.endpoint_id).await?
        };
        let net = self.known_network(&req.network_id).await?;
        self.fault_point("Join.found").await?;
        // `vif_plugging_is_fatal`: the container starts only once the
        // agent has wired its port. Waited for here, not in
        // CreateEndpoint: dockerd creates the endpoints of a network one
        // at a time (its network lock), but joins them in parallel.
        // Nested modes bind no port to a host: no agent to wait for.
        if self.config.vif_plugging_is_fatal && !self.nested_mode() && ep.port.status != "ACTIVE" {
            let active = self.wait_active(&ep.port.id).await?;
            if let Some(e) = self.index().endpoint_mut(req.endpoint_id.as_str()) {
                e.port.status = active.status;
            }
        }
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
}
