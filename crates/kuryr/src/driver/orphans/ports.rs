//! Orphan ports: kuryr's ports of this node that no live endpoint holds.
//!
//! Which ports are this node's: in veth mode, those bound to its host ID;
//! in nested modes (no port is bound to a host), those it made (their
//! description names the host, see [`names::made_in`]) or that sit behind
//! its VM port. A port is live when an endpoint of this daemon is being
//! worked on (its lock is held), when its endpoint's host link exists
//! (veth mode), or when it is behind the VM port (nested modes); a port no
//! endpoint claimed is pending, which in local scope lasts milliseconds
//! (RequestAddress, then CreateEndpoint) and is an orphan past the grace
//! period. In global scope the swarm manager hands addresses out for
//! tasks that may start much later, on other nodes: pending ports are
//! left to its ReleaseAddress.
//!
//! DeleteNetwork uses [`Driver::clear_orphan_ports_of`]: when Neutron
//! refuses to delete a network for its ports, Docker has no endpoint on it
//! any more, so kuryr's ports of this node there are orphans, whatever
//! their age.

use kuryr_openstack::Query;
use kuryr_openstack::neutron::Port;
use tracing::{info, warn};

use super::super::ipam::{AUX_DEVICE_ID, is_kuryr_port};
use super::super::node::PortFilter;
use super::super::{Driver, Result};
use super::{Collected, older_than};
use crate::config::CapabilityScope;
use crate::names;

/// Why a port is an orphan (for the log).
type Reason = &'static str;

impl Driver {
    pub(super) async fn orphan_ports(&self, c: &mut Collected) -> Result<()> {
        let behind_node = self.node_port_filter().await?;
        for port in self.candidate_ports().await? {
            if let Some(reason) = self.why_orphan(&port, behind_node.as_ref()).await {
                self.remove_orphan_port(&port, reason, c).await;
            }
        }
        Ok(())
    }

    /// kuryr's ports that may be this node's.
    async fn candidate_ports(&self) -> Result<Vec<Port>> {
        let mut q = Query::new().eq("device_owner", names::DEVICE_OWNER);
        if let Some(host) = self.bind_host_id() {
            q = q.eq("binding:host_id", host);
            return Ok(self.neutron.list_ports(&q).await?);
        }
        if let Some(node) = self.node()
            && node.trunk_id.is_none()
        {
            q = q.eq("network_id", &node.vm_port.network_id);
        }
        Ok(self.neutron.list_ports(&q).await?)
    }

    /// Made by this node (nested modes tell by the description).
    pub(in crate::driver) fn made_here(&self, port: &Port) -> bool {
        names::parse_made_in(&port.description).is_some_and(|(_, host)| host == self.config.host_id)
    }

    /// Why `port` is an orphan, if it is one.
    async fn why_orphan(&self, port: &Port, behind_node: Option<&PortFilter>) -> Option<Reason> {
        if port.device_id == AUX_DEVICE_ID
            || !is_kuryr_port_or_claimed(port)
            || self.is_in_ready_pool(&port.id)
        {
            return None;
        }
        let endpoint = names::id_from_tags(&port.tags)
            .or_else(|| (!port.device_id.is_empty()).then(|| port.device_id.clone()));
        if let Some(ep) = &endpoint
            && self.locked(ep)
        {
            return None;
        }
        let nested = self.bind_host_id().is_none();
        if nested {
            // Behind our VM port: live. Not made here: another node's.
            if behind_node.is_some_and(|ours| ours(port)) || !self.made_here(port) {
                return None;
            }
        }
        let old = older_than(port.created_at.as_deref(), self.config.orphan_grace);
        match endpoint {
            None if self.config.scope == CapabilityScope::Global || !old => None,
            None => Some("made by kuryr IPAM and never claimed by an endpoint"),
            Some(_) if nested => {
                old.then_some("its endpoint is gone: not behind this node's VM port")
            }
            Some(_) => {
                let gone = matches!(
                    self.binder.host_side_exists(&port.id).await,
                    Ok(Some(false))
                );
                gone.then_some("its endpoint is gone: no host link (ReleaseAddress lost)")
            }
        }
    }

    /// Remove the host side, take the port off the VM port, then delete
    /// it (a user's port reused with `--ip` is given back instead).
    async fn remove_orphan_port(&self, port: &Port, reason: Reason, c: &mut Collected) {
        if let Err(e) = self.unbind_port(&port.network_id, port).await {
            warn!(port = %port.id, error = %e, "orphan port: host side not removed");
        }
        if let Err(e) = self.detach_from_node(port).await {
            warn!(port = %port.id, error = %e, "orphan port: not taken off the VM port");
        }
        let removed = if is_kuryr_port(port) {
            match self.neutron.delete_port(&port.id).await {
                Err(e) if !e.is_not_found() => Err(e.into()),
                _ => Ok("deleted"),
            }
        } else {
            self.restore_user_port(port).await.map(|()| "given back")
        };
        match removed {
            Ok(done) => {
                info!(port = %port.id, reason, done, "orphan port removed");
                c.ports.push(port.id.clone());
                let mut index = self.index();
                let ep = index
                    .endpoint_of_port(&port.id)
                    .map(|e| e.endpoint_id.clone());
                if let Some(ep) = ep {
                    index.remove_endpoint(&ep);
                }
                index.remove_port(&port.id);
                drop(index);
                self.unready(&port.id);
            }
            Err(e) => warn!(port = %port.id, error = %e, "orphan port not removed"),
        }
    }

    /// Before DeleteNetwork deletes `network_id`: Docker has no endpoint
    /// on it, so kuryr's ports of this node there (pending, or a dead
    /// endpoint's) go, whatever their age. Ports of an endpoint this
    /// daemon is working on, other nodes' and users' ports stay. Returns
    /// how many went.
    pub(in crate::driver) async fn clear_orphan_ports_of(&self, network_id: &str) -> Result<usize> {
        let q = Query::new()
            .eq("network_id", network_id)
            .eq("device_owner", names::DEVICE_OWNER);
        let mut c = Collected::default();
        for port in self.neutron.list_ports(&q).await? {
            let ours = match self.bind_host_id() {
                Some(host) => port.host_id == host,
                None => self.made_here(&port),
            };
            // An endpoint this daemon is working on; the index alone
            // does not tell (a restart loads dead endpoints too).
            let live = names::id_from_tags(&port.tags).is_some_and(|ep| self.locked(&ep));
            if ours && !live && port.device_id != AUX_DEVICE_ID {
                let reason = "left on a network Docker is removing";
                self.remove_orphan_port(&port, reason, &mut c).await;
            }
        }
        Ok(c.ports.len())
    }
}

/// kuryr made it, or an endpoint claimed it (a user's port reused by
/// `--ip` carries kuryr's owner while claimed).
fn is_kuryr_port_or_claimed(port: &Port) -> bool {
    is_kuryr_port(port) || port.device_owner == names::DEVICE_OWNER
}
