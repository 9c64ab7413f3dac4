//! CreateNetwork: adopt or make the Neutron network, then its subnets.

use std::collections::BTreeMap;

use kuryr_openstack::TagResource;
use kuryr_openstack::neutron::{Network, NetworkCreate};
use tracing::info;

use super::super::index::NetworkEntry;
use super::super::ipam::parse_bool_option;
use super::super::steps::{Journal, Lost, Undo};
use super::super::{Driver, DriverError, Result};
use crate::config::CapabilityScope;
use crate::names;
use crate::protocol::{CreateNetworkRequest, DockerId};

/// Which Neutron network a CreateNetwork asks for.
enum Target {
    /// A new one (`shared` as `-o neutron.net.shared` says).
    Make { shared: Option<bool> },
    /// `-o neutron.net.uuid|name`, or the VM port's network in nested mode.
    Adopt {
        uuid: Option<String>,
        name: Option<String>,
        shared: Option<bool>,
    },
}

impl Target {
    fn of(opts: &BTreeMap<String, String>, vm_network: Option<&String>) -> Result<Target> {
        let shared = parse_bool_option("neutron.net.shared", opts.get("neutron.net.shared"))?;
        let get = |k: &str| opts.get(k).filter(|s| !s.is_empty()).cloned();
        let (uuid, name) = (get("neutron.net.uuid"), get("neutron.net.name"));
        Ok(match (uuid, name) {
            (None, None) => match vm_network {
                // Nested (macvlan/ipvlan): containers leave through the VM
                // port, so their network is the VM port's, adopted like a
                // user's network (tagged, never deleted).
                Some(vm) => Target::Adopt {
                    uuid: Some(vm.clone()),
                    name: None,
                    shared,
                },
                None => Target::Make { shared },
            },
            (uuid, name) => Target::Adopt { uuid, name, shared },
        })
    }
}

impl Driver {
    pub(in crate::driver) async fn create_network(&self, req: CreateNetworkRequest) -> Result<()> {
        let id = req.network_id.clone();
        let _guard = self.lock(id.as_str()).await;
        let opts = req.generic_options();
        let target = Target::of(&opts, self.vm_network().as_ref())?;
        // Known already: made by this daemon (a retry, or a crash before
        // the subnets), or, in global scope, by any node. Locally scoped
        // IDs are random per host and the start-up rebuild loaded what this
        // host made, so they are not looked up in Neutron.
        let mut known = self.index().network(id.as_str()).cloned();
        if known.is_none() && self.config.scope == CapabilityScope::Global {
            known = self.network_entry(&id).await?;
        }
        let entry = self
            .journaled("CreateNetwork", async |j: &mut Journal| {
                let (mut network, existing, made_now) = match known {
                    Some(e) => (e.network, e.existing, false),
                    None => match target {
                        Target::Make { shared } => {
                            (self.make_network(&id, shared, j).await?, false, true)
                        }
                        Target::Adopt { uuid, name, shared } => {
                            let (network, existing) = self
                                .adopt_network(&id, uuid.as_ref(), name.as_ref(), shared, j)
                                .await?;
                            (network, existing, false)
                        }
                    },
                };
                // A network not made just now may hold subnets already
                // (a user's, another Docker network's, an earlier attempt's).
                let subnets = self
                    .ensure_subnets(&req, &opts, &mut network, existing, !made_now, j)
                    .await?;
                Ok(NetworkEntry::new(id.to_string(), network, subnets))
            })
            .await?;
        info!(
            docker_network = %id,
            neutron_network = %entry.network.id,
            existing = entry.existing,
            subnets = entry.subnets.len(),
            "network ready"
        );
        self.want_ready_ports_for(&req, &entry);
        self.index().insert_network(entry);
        Ok(())
    }

    /// Subnets whose addresses kuryr IPAM hands out (the pool is in its
    /// address space) get ports made ahead, if configured.
    fn want_ready_ports_for(&self, req: &CreateNetworkRequest, entry: &NetworkEntry) {
        let ours = [
            &self.config.local_address_space,
            &self.config.global_address_space,
        ];
        for data in req.ipv4_data.iter().chain(&req.ipv6_data) {
            if !ours.contains(&&data.address_space) {
                continue;
            }
            if let Some(subnet) = entry.subnet_for(data.pool.network()) {
                self.want_ready_ports(subnet);
            }
        }
    }

    /// The VM port's network, in nested (macvlan/ipvlan) mode.
    fn vm_network(&self) -> Option<String> {
        self.node()
            .filter(|n| n.trunk_id.is_none())
            .map(|n| n.vm_port.network_id.clone())
    }

    /// A new network, named and described so that even untagged (a crash
    /// right after the create) it is known as kuryr's, then tagged.
    async fn make_network(
        &self,
        id: &DockerId,
        shared: Option<bool>,
        j: &mut Journal,
    ) -> Result<Network> {
        let description = names::made_by(id, &self.config.host_id);
        let body = NetworkCreate {
            name: Some(names::network_name(id)),
            description: Some(description.clone()),
            admin_state_up: Some(true),
            shared,
            tags: self.create_tags_any(names::id_tags(id)),
            ..Default::default()
        };
        let made = self.neutron.create_network(&body);
        let lost = Lost::Network { description };
        let undo = |n: &Network| Undo::DeleteNetwork(n.id.clone());
        let network = self.create_undoable(j, lost, made, undo).await?;
        self.fault_point("CreateNetwork.network_made").await?;
        if !network.tags.is_empty() {
            // Tagged in the create request (`tag-creation`).
            self.fault_point("CreateNetwork.network_tagged").await?;
            return Ok(network);
        }
        // Our new network has no tags yet: one call sets them all.
        let tags = self
            .neutron
            .replace_tags(TagResource::Network, &network.id, &names::id_tags(id))
            .await?;
        self.fault_point("CreateNetwork.network_tagged").await?;
        // The tags bumped its revision (DeleteNetwork deletes on it).
        let revision_number = network.revision_number.map(|r| r + 1);
        Ok(Network {
            tags,
            revision_number,
            ..network
        })
    }

    /// `-o neutron.net.uuid|name`: tag the user's network as ours too. It
    /// counts as pre-existing for this Docker network unless kuryr made it
    /// for another one (that one's tags carry no existing marker).
    async fn adopt_network(
        &self,
        id: &DockerId,
        uuid: Option<&String>,
        name: Option<&String>,
        shared: Option<bool>,
        j: &mut Journal,
    ) -> Result<(Network, bool)> {
        let mut network = self.find_network(uuid, name).await?;
        // Its tags change below (one revision each): DeleteNetwork reads
        // an adopted network afresh anyway.
        network.revision_number = None;
        if let Some(shared) = shared
            && shared != network.shared
        {
            return Err(DriverError::Invalid(format!(
                "neutron.net.shared={shared} but Neutron network {} has shared={}",
                network.id, network.shared
            )));
        }
        if let Some(vm_net) = self.vm_network()
            && network.id != vm_net
        {
            return Err(DriverError::Invalid(format!(
                "nested port driver: containers can only join the VM port's network {vm_net}, \
                 not Neutron network {}",
                network.id
            )));
        }
        let others = names::other_users(&network.tags, id);
        let existing = others
            .iter()
            .all(|low| names::found_existing(&network.tags, low));
        let mut wanted = names::id_tags(id);
        if existing {
            wanted.push(names::existing_net_tag(id));
        }
        let missing: Vec<String> = wanted
            .into_iter()
            .filter(|t| !network.tags.contains(t))
            .collect();
        j.push(Undo::RemoveTags {
            resource: TagResource::Network,
            id: network.id.clone(),
            tags: missing.clone(),
        });
        self.add_tags(TagResource::Network, &network.id, &missing)
            .await?;
        network.tags.extend(missing);
        self.fault_point("CreateNetwork.network_tagged").await?;
        Ok((network, existing))
    }
}
