//! Orphan collection: what a crash, a lost call or a failed cleanup left
//! that no Docker object explains, found from what this node can see and
//! removed, each with the reason logged.
//!
//! It never reads Docker's API (dockerd may be waiting on this very
//! driver; the managed plugin cannot reach dockerd at all) and never
//! touches what a user made or what another node may still use:
//!
//! - a network kuryr made on this host (its description says so, see
//!   [`names::made_by`]) that has no Docker ID tag: a crash between its
//!   create and its tagging; a retry made another one;
//! - a port kuryr IPAM made, bound to this host, never claimed by an
//!   endpoint and not handed out by this daemon;
//! - a port bound to this host, tagged with an endpoint, whose host side
//!   is gone (veth mode): the endpoint was deleted and its ReleaseAddress
//!   lost while the driver was down;
//! - an `--expose` security group whose port no longer exists.
//!
//! Everything younger than the grace period is left alone: another host's
//! CreateNetwork, or a CreateEndpoint on its way, may be just making it.

use std::time::Duration;

use kuryr_openstack::Query;
use kuryr_openstack::neutron::{Network, Port};
use tracing::{info, warn};

use super::ipam::AUX_DEVICE_ID;
use super::{Driver, Result};
use crate::names;

/// What one collection removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    pub networks: Vec<String>,
    pub ports: Vec<String>,
    pub security_groups: Vec<String>,
}

impl Collected {
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty() && self.ports.is_empty() && self.security_groups.is_empty()
    }
}

/// Port IDs per `GET /ports?id=...` when checking which still exist.
const IDS_PER_QUERY: usize = 40;

/// Is `created_at` (RFC 3339) older than `grace`? Unknown ages are young.
fn older_than(created_at: Option<&str>, grace: Duration) -> bool {
    let Some(at) = created_at.and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
        return grace.is_zero();
    };
    let age = jiff::Timestamp::now().duration_since(at);
    age.as_secs_f64() >= grace.as_secs_f64()
}

impl Driver {
    /// One collection pass. Errors of single removals are logged and the
    /// pass goes on; a failed listing ends it.
    pub async fn collect_orphans(&self) -> Result<Collected> {
        let mut c = Collected::default();
        self.half_made_networks(&mut c).await?;
        self.orphan_ports(&mut c).await?;
        self.orphan_security_groups(&mut c).await?;
        self.stats.orphans_collected(&c);
        if !c.is_empty() {
            info!(
                networks = ?c.networks,
                ports = ?c.ports,
                security_groups = ?c.security_groups,
                "orphans collected"
            );
        }
        Ok(c)
    }

    async fn half_made_networks(&self, c: &mut Collected) -> Result<()> {
        let grace = self.config.orphan_grace;
        let networks = self.neutron.list_networks(&Query::new()).await?;
        let half_made = |n: &Network| {
            names::parse_made_by(&n.description)
                .is_some_and(|(_, host)| host == self.config.host_id)
                && !n.tags.iter().any(|t| t.starts_with(names::TAG_LOW))
                && older_than(n.created_at.as_deref(), grace)
        };
        for n in networks.iter().filter(|n| half_made(n)) {
            match self.neutron.delete_network(&n.id).await {
                Ok(()) => {
                    info!(network = %n.id, reason = "made by kuryr on this host, never tagged", "orphan network deleted");
                    c.networks.push(n.id.clone());
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => warn!(network = %n.id, error = %e, "orphan network not deleted"),
            }
        }
        Ok(())
    }

    async fn orphan_ports(&self, c: &mut Collected) -> Result<()> {
        let Some(host) = self.bind_host_id() else {
            // Nested modes bind no port to a host: liveness comes from the
            // VM port, which a later version looks at.
            return Ok(());
        };
        let q = Query::new()
            .eq("device_owner", names::DEVICE_OWNER)
            .eq("binding:host_id", host);
        for port in self.neutron.list_ports(&q).await? {
            if let Some(reason) = self.why_orphan(&port).await {
                self.remove_orphan_port(&port, reason, c).await;
            }
        }
        Ok(())
    }

    /// Why a port bound to this host is an orphan, if it is one.
    async fn why_orphan(&self, port: &Port) -> Option<&'static str> {
        if !older_than(port.created_at.as_deref(), self.config.orphan_grace)
            || port.device_id == AUX_DEVICE_ID
        {
            return None;
        }
        let endpoint = names::id_from_tags(&port.tags);
        let (live, handed_out) = {
            let index = self.index();
            (
                index.endpoint_of_port(&port.id).is_some(),
                index.has_port(&port.id),
            )
        };
        match endpoint {
            None if port.name == names::UNBOUND_PORT_NAME && !handed_out => {
                Some("made by kuryr IPAM, never claimed, not handed out by this daemon")
            }
            Some(ep) => {
                let gone = matches!(
                    self.binder.host_side_exists(&port.id).await,
                    Ok(Some(false))
                );
                // A CreateEndpoint binding it right now holds its lock.
                (gone && !self.locked(&ep)).then_some(if live {
                    "its endpoint's host side is gone"
                } else {
                    "its endpoint is gone (ReleaseAddress lost)"
                })
            }
            None => None,
        }
    }

    async fn remove_orphan_port(&self, port: &Port, reason: &'static str, c: &mut Collected) {
        if let Err(e) = self.unbind_port(&port.network_id, port).await {
            warn!(port = %port.id, error = %e, "orphan port: host side not removed");
        }
        match self.neutron.delete_port(&port.id).await {
            Ok(()) => {
                info!(port = %port.id, reason, "orphan port deleted");
                c.ports.push(port.id.clone());
                let mut index = self.index();
                index.remove_port(&port.id);
                if let Some(ep) = index
                    .endpoint_of_port(&port.id)
                    .map(|e| e.endpoint_id.clone())
                {
                    index.remove_endpoint(&ep);
                }
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => warn!(port = %port.id, error = %e, "orphan port not deleted"),
        }
    }

    async fn orphan_security_groups(&self, c: &mut Collected) -> Result<()> {
        let groups = self
            .neutron
            .list_security_groups(&Query::new().eq("description", names::EXPOSED_SG_DESCRIPTION))
            .await?;
        let port_of = |name: &str| {
            name.strip_suffix(names::EXPOSED_SG_SUFFIX)
                .map(str::to_string)
        };
        let ports: Vec<String> = groups.iter().filter_map(|g| port_of(&g.name)).collect();
        let mut existing = std::collections::HashSet::new();
        for chunk in ports.chunks(IDS_PER_QUERY) {
            let mut q = Query::new().fields(&["id", "network_id"]);
            for id in chunk {
                q = q.eq("id", id);
            }
            existing.extend(self.neutron.list_ports(&q).await?.into_iter().map(|p| p.id));
        }
        for g in &groups {
            let Some(port) = port_of(&g.name) else {
                continue;
            };
            if existing.contains(&port) {
                continue;
            }
            match self.neutron.delete_security_group(&g.id).await {
                Ok(()) => {
                    info!(security_group = %g.id, %port, reason = "its port is gone", "orphan security group deleted");
                    c.security_groups.push(g.id.clone());
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    warn!(security_group = %g.id, error = %e, "orphan security group not deleted")
                }
            }
        }
        Ok(())
    }
}
