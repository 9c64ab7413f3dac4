//! CreateNetwork / DeleteNetwork: a Docker network is a Neutron network
//! with one subnet per Docker pool.
//!
//! Several Docker networks may share one Neutron network (`-o
//! neutron.net.name` on several hosts in local scope, every node of a
//! classic swarm): each adds its own ID tags, and the network goes only
//! with the last of them, and then only if kuryr made it. A network that
//! existed before a Docker network adopted it (`kuryr.net.existing:<id>`)
//! is never deleted; an adopter of a network kuryr made for another
//! Docker network is not marked so, and deletes it when it is the last.
//!
//! CreateNetwork records each change in a journal and undoes them in
//! reverse order when a later step fails; a retried CreateNetwork (after a
//! crash, or dockerd's retry) completes what is missing. Networks kuryr
//! makes carry a description naming the Docker ID and the host, so a
//! network left untagged by a crash is recognised and collected.

mod create;
mod delete;
mod subnets;

use kuryr_openstack::Query;
use tracing::warn;

use super::index::NetworkEntry;
use super::{Driver, Result};
use crate::names;
use crate::protocol::DockerId;

impl Driver {
    /// The network of a Docker ID: from the index, else from Neutron tags
    /// (a network made by another daemon or before a restart).
    pub(super) async fn network_entry(&self, id: &DockerId) -> Result<Option<NetworkEntry>> {
        let known = self.index().network(id.as_str()).cloned();
        if known.is_some() {
            return Ok(known);
        }
        let mut found = self
            .neutron
            .list_networks(&Query::new().tags(&names::id_tags(id)))
            .await?;
        let network = match found.len() {
            0 => return Ok(None),
            1 => found.remove(0),
            n => {
                // Left by a non-idempotent driver; use the oldest-looking one
                // rather than failing forever.
                warn!(docker_network = %id, count = n, "several Neutron networks carry this Docker ID");
                found.remove(0)
            }
        };
        let subnets = self
            .neutron
            .list_subnets(&Query::new().eq("network_id", &network.id))
            .await?;
        let mut index = self.index();
        index.put_network(id.to_string(), network, subnets);
        Ok(index.network(id.as_str()).cloned())
    }
}
