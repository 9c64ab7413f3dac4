//! DeleteEndpoint: every step runs even when one fails (dockerd does not
//! retry a failed DeleteEndpoint: it goes on to ReleaseAddress), and the
//! first failure is reported: the exposed ports' group goes, the host side
//! is unbound, the port leaves the VM port or trunk, and a port made by
//! CreateEndpoint (Docker's own IPAM) is deleted. A port kuryr IPAM handed
//! out stays for ReleaseAddress; in global scope its endpoint tags go, so
//! the swarm manager's ReleaseAddress (another node) may release it.

use kuryr_openstack::TagResource;
use tracing::{info, warn};

use super::super::{Driver, DriverError, Result};
use crate::config::CapabilityScope;
use crate::names;
use crate::protocol::EndpointRequest;

/// The first error of steps that all run.
#[derive(Default)]
struct FirstError(Option<DriverError>);

impl FirstError {
    /// Keep `r`'s error if it is the first; a crash stops everything.
    fn note(&mut self, step: &str, r: Result<()>) -> Result<()> {
        match r {
            Err(e @ DriverError::Crashed(_)) => Err(e),
            Err(e) => {
                warn!(step, error = %e, "DeleteEndpoint: step failed; going on");
                self.0.get_or_insert(e);
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    fn into_result(self) -> Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

impl Driver {
    pub(in crate::driver) async fn delete_endpoint(&self, req: &EndpointRequest) -> Result<()> {
        let _guard = self.lock(req.endpoint_id.as_str()).await;
        let Some(ep) = self.endpoint_entry(&req.endpoint_id).await? else {
            info!(endpoint = %req.endpoint_id, "no port: nothing to delete");
            return Ok(());
        };
        let port = ep.port.clone();
        let mut first = FirstError::default();
        if let Some(sg) = &ep.exposed_sg {
            first.note("security group", self.drop_exposed_sg(&port, sg).await)?;
        }
        first.note(
            "fault",
            self.fault_point("DeleteEndpoint.exposed_dropped").await,
        )?;
        first.note("unbind", self.unbind_port(&port.network_id, &port).await)?;
        first.note("fault", self.fault_point("DeleteEndpoint.unbound").await)?;
        // The pairs / the subport go before the port may be deleted
        // (Neutron refuses to delete a subport's port).
        first.note("detach", self.detach_from_node(&port).await)?;
        first.note("fault", self.fault_point("DeleteEndpoint.detached").await)?;
        let made_here = port.name == names::endpoint_port_name(&req.endpoint_id);
        if made_here {
            // Made in CreateEndpoint (Docker's IPAM): no ReleaseAddress will
            // reach us for it.
            let deleted = match self.neutron.delete_port(&port.id).await {
                Err(e) if !e.is_not_found() => Err(e.into()),
                _ => Ok(()),
            };
            first.note("delete port", deleted)?;
        } else if self.config.scope == CapabilityScope::Global {
            let tags = names::id_tags(&req.endpoint_id);
            first.note(
                "untag",
                self.remove_tags(TagResource::Port, &port.id, &tags).await,
            )?;
        }
        first.note(
            "fault",
            self.fault_point("DeleteEndpoint.port_released").await,
        )?;
        {
            let mut index = self.index();
            index.remove_endpoint(req.endpoint_id.as_str());
            if !made_here {
                // ReleaseAddress comes next and deletes (or restores) the
                // port; keep it findable without a lookup.
                index.put_port(port.clone());
            }
        }
        info!(endpoint = %req.endpoint_id, port = %port.id, "endpoint deleted");
        first.into_result()
    }
}
