//! Finding what a Docker request names: the network or endpoint of a
//! Docker ID (index first, then Neutron's tags), and a user's Neutron
//! resource given with `-o neutron.<kind>.uuid|name` (by ID, or by a name
//! that must be unique).

use kuryr_openstack::Query;
use kuryr_openstack::neutron::{Network, Subnet, SubnetPool};

use super::index::{EndpointEntry, NetworkEntry};
use super::{Driver, DriverError, Result};
use crate::protocol::DockerId;

/// A user's Neutron resource by ID, or by a name only it has.
/// `what` names it in errors ("subnet pool"), `option` is the `-o` key
/// that takes its ID ("neutron.pool.uuid").
async fn by_id_or_name<T>(
    what: &str,
    option: &str,
    id: Option<&String>,
    name: Option<&String>,
    get: impl AsyncFnOnce(&str) -> kuryr_openstack::Result<T>,
    list: impl AsyncFnOnce(&str) -> kuryr_openstack::Result<Vec<T>>,
) -> Result<T> {
    if let Some(id) = id {
        return get(id).await.map_err(|e| {
            if e.is_not_found() {
                DriverError::NotFound(format!("{what} {id} does not exist"))
            } else {
                e.into()
            }
        });
    }
    let name = name.map(String::as_str).unwrap_or_default();
    let mut found = list(name).await?;
    match found.len() {
        0 => Err(DriverError::NotFound(format!(
            "no {what} is named {name:?}"
        ))),
        1 => Ok(found.remove(0)),
        n => Err(DriverError::Invalid(format!(
            "{n} {what}s are named {name:?}: use {option}"
        ))),
    }
}

impl Driver {
    /// `-o neutron.net.uuid|name`.
    pub(super) async fn find_network(
        &self,
        id: Option<&String>,
        name: Option<&String>,
    ) -> Result<Network> {
        let n = &self.neutron;
        by_id_or_name(
            "Neutron network",
            "neutron.net.uuid",
            id,
            name,
            async |id| n.get_network(id).await,
            async |name| n.list_networks(&Query::new().eq("name", name)).await,
        )
        .await
    }

    /// `neutron.pool[.v6].uuid|name`.
    pub(super) async fn find_subnetpool(
        &self,
        id: Option<&String>,
        name: Option<&String>,
    ) -> Result<SubnetPool> {
        let n = &self.neutron;
        by_id_or_name(
            "subnet pool",
            "neutron.pool.uuid",
            id,
            name,
            async |id| n.get_subnetpool(id).await,
            async |name| n.list_subnetpools(&Query::new().eq("name", name)).await,
        )
        .await
    }

    /// `neutron.subnet[.v6].uuid|name`.
    pub(super) async fn find_subnet(
        &self,
        id: Option<&String>,
        name: Option<&String>,
    ) -> Result<Subnet> {
        let n = &self.neutron;
        by_id_or_name(
            "subnet",
            "neutron.subnet.uuid",
            id,
            name,
            async |id| n.get_subnet(id).await,
            async |name| n.list_subnets(&Query::new().eq("name", name)).await,
        )
        .await
    }

    /// The network of a Docker ID, which must exist.
    pub(super) async fn known_network(&self, id: &DockerId) -> Result<NetworkEntry> {
        self.network_entry(id).await?.ok_or_else(|| {
            DriverError::NotFound(format!("no Neutron network for Docker network {id}"))
        })
    }

    /// The endpoint of a Docker ID, which must exist.
    pub(super) async fn known_endpoint(&self, id: &DockerId) -> Result<EndpointEntry> {
        self.endpoint_entry(id)
            .await?
            .ok_or_else(|| DriverError::NotFound(format!("no Neutron port for endpoint {id}")))
    }
}
