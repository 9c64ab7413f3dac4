//! Host sides whose Neutron port is gone: the host ends of veth pairs
//! kuryr made (their alias names the port, see
//! [`names::host_link_alias`]) and OVS interfaces kuryr plugged
//! (`external_ids:owner=kuryr`, `iface-id` the port). A port deleted while
//! its host side stayed (an unbind that failed, a crash between the two)
//! leaves them; with the port gone no endpoint can use them. Whichever
//! kuryr daemon of this host made them, they are garbage once the port
//! is gone, so the check is by port, not by host ID.
//!
//! [`names::host_link_alias`]: crate::names::host_link_alias

use std::collections::{BTreeMap, HashSet};

use kuryr_openstack::Query;
use kuryr_openstack::neutron::Port;
use tracing::{info, warn};

use super::super::{Driver, Result};
use super::{Collected, IDS_PER_QUERY};

impl Driver {
    pub(super) async fn orphan_host_sides(&self, c: &mut Collected) -> Result<()> {
        let mut by_port: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for side in self.binder.host_sides().await? {
            by_port.entry(side.port_id).or_default().push(side.what);
        }
        if by_port.is_empty() {
            return Ok(());
        }
        let ids: Vec<&String> = by_port.keys().collect();
        let mut existing = HashSet::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let mut q = Query::new().fields(&["id", "network_id"]);
            for id in chunk {
                q = q.eq("id", id.as_str());
            }
            existing.extend(self.neutron.list_ports(&q).await?.into_iter().map(|p| p.id));
        }
        for (port_id, what) in by_port {
            if existing.contains(&port_id) {
                continue;
            }
            // Unbind as an OVS port: removes the OVS interface if there is
            // one, and every link the binder may have made for the port.
            let gone = Port {
                id: port_id.clone(),
                vif_type: "ovs".into(),
                ..Default::default()
            };
            match self.unbind_port("", &gone).await {
                Ok(()) => {
                    info!(port = %port_id, removed = ?what, reason = "its Neutron port is gone", "orphan host side removed");
                    c.host_sides.extend(what);
                }
                Err(e) => warn!(port = %port_id, error = %e, "orphan host side not removed"),
            }
        }
        Ok(())
    }
}
