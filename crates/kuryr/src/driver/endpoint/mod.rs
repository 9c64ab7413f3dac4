//! Endpoints: CreateEndpoint binds the port's host side ([`create`]), Join
//! tells Docker which interface to move into the container,
//! DeleteEndpoint ([`delete`]) undoes it; `--expose` is [`expose`].

mod create;
mod delete;
mod expose;

use std::collections::BTreeMap;
use std::time::Instant;

use kuryr_openstack::Query;
use kuryr_openstack::neutron::Port;
use serde_json::Value;
use tracing::info;

use super::index::{EndpointEntry, NetworkEntry};
use super::{Driver, DriverError, Result};
use crate::binding::{BindRequest, UnbindRequest};
use crate::names;
use crate::protocol::{
    DockerId, EndpointOperInfoResponse, EndpointRequest, InterfaceName, JoinRequest, JoinResponse,
    StaticRoute,
};

/// When the first ACTIVE poll goes out (the lab's OVS agent takes 0.25 to
/// 3 s to wire a port).
const FIRST_POLL: std::time::Duration = std::time::Duration::from_millis(250);
/// The longest gap between two polls.
const MAX_POLL_GAP: std::time::Duration = std::time::Duration::from_secs(1);

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

    /// Poll until Neutron reports the port ACTIVE, bounded by the timeout.
    /// The agent needs a moment at least, and the polls load the same
    /// Neutron every other call waits on: the first comes after
    /// [`FIRST_POLL`], then less and less often (up to [`MAX_POLL_GAP`]).
    /// They are counted apart from the driver's own requests
    /// (`neutron.poll_port`).
    async fn wait_active(&self, port_id: &str) -> Result<Port> {
        let started = Instant::now();
        let mut delay = FIRST_POLL;
        loop {
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(MAX_POLL_GAP);
            let port = self.neutron.poll_port(port_id).await?;
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
        let ep = self.known_endpoint(&req.endpoint_id).await?;
        let net = self.known_network(&req.network_id).await?;
        self.fault_point("Join.found").await?;
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
