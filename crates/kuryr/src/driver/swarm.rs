//! Swarm mode: the manager's allocator calls AllocateNetwork (global-scope
//! drivers only) after its IPAM has chosen the pools, then RequestAddress
//! for every task, before any node has issued CreateNetwork. So
//! AllocateNetwork makes (or adopts) the Neutron network and its subnets
//! right there, tagged with the swarm network ID: the manager's task
//! addresses become ports of that subnet, and every node's CreateNetwork
//! (global scope) finds the same network by its tags. A node's
//! DeleteNetwork (its last task of the network left; other nodes may still
//! have some) only forgets the network on that node. FreeNetwork, sent by
//! the manager once the network is removed and every task is gone, deletes
//! (or gives back) what AllocateNetwork made.

use serde_json::{Map, Value};
use tracing::info;

use super::{Driver, Result};
use crate::config::CapabilityScope;
use crate::protocol::{
    AllocateNetworkRequest, AllocateNetworkResponse, CreateNetworkRequest, DockerId,
    GENERIC_OPTIONS,
};

impl Driver {
    pub(super) async fn allocate_network(
        &self,
        req: AllocateNetworkRequest,
    ) -> Result<AllocateNetworkResponse> {
        let network_id = req.network_id;
        let generic: Map<String, Value> = req
            .options
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let mut options = Map::new();
        options.insert(GENERIC_OPTIONS.to_string(), Value::Object(generic));
        self.create_network(CreateNetworkRequest {
            network_id,
            options,
            ipv4_data: req.ipv4_data,
            ipv6_data: req.ipv6_data,
        })
        .await?;
        // The options become the driver state every node's CreateNetwork
        // receives: the same `-o neutron.*` the user gave.
        Ok(AllocateNetworkResponse {
            options: req.options,
        })
    }

    pub(super) async fn free_network(&self, id: &DockerId) -> Result<()> {
        self.delete_network(id).await
    }

    /// DeleteNetwork. A swarm-allocated network (global scope, a swarm's
    /// 25-character ID) is forgotten on this node only; the manager's
    /// FreeNetwork releases it in Neutron. Everything else is deleted
    /// here, as before (a local-scope driver in swarm mode gets no
    /// FreeNetwork: each node made its own Neutron network).
    pub(super) async fn delete_network_on_node(&self, id: &DockerId) -> Result<()> {
        if !is_swarm_allocated(self.config.scope, id) {
            return self.delete_network(id).await;
        }
        let _guard = self.lock(id.as_str()).await;
        self.index().remove_network(id.as_str());
        info!(docker_network = %id, "swarm network forgotten on this node; FreeNetwork releases it");
        Ok(())
    }
}

fn is_swarm_allocated(scope: CapabilityScope, id: &DockerId) -> bool {
    scope == CapabilityScope::Global && id.as_str().len() == 25
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_global_swarm_ids_are_left_to_free_network() {
        let swarm = DockerId::parse("r79xru4mv4osvzxw4dpl3e07x").unwrap();
        let local = DockerId::parse(&"ab".repeat(32)).unwrap();
        assert!(is_swarm_allocated(CapabilityScope::Global, &swarm));
        assert!(!is_swarm_allocated(CapabilityScope::Local, &swarm));
        assert!(!is_swarm_allocated(CapabilityScope::Global, &local));
    }
}
