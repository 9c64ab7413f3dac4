//! The in-memory cache of what Neutron holds for this driver.
//!
//! It saves lookups, never decides: an entry missing here is looked up in
//! Neutron, and an entry Neutron says is gone (404) is dropped.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use kuryr_openstack::neutron::{Network, Port, Subnet, SubnetPool};

/// How well a pool of the right CIDR fits Neutron subnet `subnet`, best
/// first. Several pools may share a CIDR: RequestPool with `--ipam-opt
/// neutron.subnet.*` makes a pool per user subnet and tags it with that
/// subnet's ID (as kuryr-libnetwork does), so two Docker networks on two
/// Neutron subnets of one CIDR each have their own. The pool tagged with
/// the subnet comes first, then a pool tagged with no subnet (one for a
/// subnet kuryr makes), then any other.
pub fn pool_rank(pool: &SubnetPool, subnet: Option<&str>) -> u8 {
    if subnet.is_some_and(|id| pool.tags.iter().any(|t| t == id)) {
        0
    } else if !pool.tags.iter().any(|t| crate::names::is_neutron_id(t)) {
        1
    } else {
        2
    }
}

/// A Docker network and its Neutron network.
#[derive(Debug, Clone)]
pub struct NetworkEntry {
    pub docker_id: String,
    pub network: Network,
    pub subnets: Vec<Subnet>,
    /// The Neutron network existed before Docker used it: never delete it.
    pub existing: bool,
}

impl NetworkEntry {
    /// The entry of Docker network `docker_id` on `network`; pre-existing
    /// for it when the network carries its existing marker.
    pub fn new(docker_id: String, network: Network, subnets: Vec<Subnet>) -> NetworkEntry {
        let low = &docker_id[..docker_id.len().min(32)];
        let existing = crate::names::found_existing(&network.tags, low);
        NetworkEntry {
            docker_id,
            network,
            subnets,
            existing,
        }
    }

    /// The subnet holding `ip`.
    pub fn subnet_for(&self, ip: IpAddr) -> Option<&Subnet> {
        self.subnets.iter().find(|s| {
            s.cidr
                .parse::<IpNet>()
                .map(|c| c.contains(&ip))
                .unwrap_or(false)
        })
    }
}

/// An IPAM pool handed to Docker (a Neutron subnet pool).
#[derive(Debug, Clone)]
pub struct PoolEntry {
    pub pool: SubnetPool,
    /// The CIDR Docker knows the pool by.
    pub cidr: IpNet,
    /// Set when the CIDR was carved from a default pool: the subnet must be
    /// allocated from that pool so Neutron prevents overlaps.
    pub carved_from: Option<String>,
    /// Created by kuryr (a `kuryrPool-*` pool), so kuryr may delete it.
    pub owned: bool,
}

/// A Docker endpoint and its Neutron port.
#[derive(Debug, Clone)]
pub struct EndpointEntry {
    pub endpoint_id: String,
    pub port: Port,
    /// Security group made for `--expose`, if any.
    pub exposed_sg: Option<String>,
}

#[derive(Debug, Default)]
pub struct Index {
    networks: HashMap<String, NetworkEntry>,
    pools: HashMap<String, PoolEntry>,
    /// Ports made by IPAM (or found by it) that no endpoint claimed yet.
    ports: HashMap<String, Pending>,
    endpoints: HashMap<String, EndpointEntry>,
}

/// A port no endpoint claimed yet, and which of its addresses were handed
/// out: a user's dual-stack port is asked for once per address family.
#[derive(Debug, Clone)]
struct Pending {
    port: Port,
    /// `(subnet ID, address)`; every address of the port when it was not
    /// handed out by a RequestAddress of this daemon (found at start-up,
    /// given back by DeleteEndpoint).
    handed: Vec<(String, String)>,
}

impl Index {
    pub fn network_count(&self) -> usize {
        self.networks.len()
    }

    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    pub fn pool_count(&self) -> usize {
        self.pools.len()
    }

    /// Ports handed out by IPAM that no endpoint claimed yet.
    pub fn unclaimed_port_count(&self) -> usize {
        self.ports.len()
    }

    pub fn put_network(&mut self, docker_id: String, network: Network, subnets: Vec<Subnet>) {
        self.insert_network(NetworkEntry::new(docker_id, network, subnets));
    }

    pub fn insert_network(&mut self, entry: NetworkEntry) {
        self.networks.insert(entry.docker_id.clone(), entry);
    }

    pub fn network(&self, docker_id: &str) -> Option<&NetworkEntry> {
        self.networks.get(docker_id)
    }

    /// Every Docker network the index knows.
    pub fn networks(&self) -> impl Iterator<Item = &NetworkEntry> {
        self.networks.values()
    }

    /// A subnet of a network the index knows, by its Neutron ID.
    pub fn subnet_by_id(&self, subnet_id: &str) -> Option<&Subnet> {
        self.networks
            .values()
            .flat_map(|n| n.subnets.iter())
            .find(|s| s.id == subnet_id)
    }

    pub fn network_by_neutron_id(&self, neutron_id: &str) -> Option<&NetworkEntry> {
        self.networks.values().find(|n| n.network.id == neutron_id)
    }

    pub fn remove_network(&mut self, docker_id: &str) -> Option<NetworkEntry> {
        self.networks.remove(docker_id)
    }

    /// Every subnet of `pool` the index knows (several when Docker
    /// networks on different Neutron networks share a CIDR, and so a pool).
    pub fn subnets_of_pool(&self, pool: &PoolEntry) -> Vec<Subnet> {
        let id = pool.pool.id.as_str();
        self.networks
            .values()
            .flat_map(|n| n.subnets.iter())
            .filter(|s| s.tags.iter().any(|t| t == id) || s.subnetpool_id.as_deref() == Some(id))
            .cloned()
            .collect()
    }

    /// The subnet of `pool` and its network: the subnet tagged with the
    /// PoolID (kuryr and kuryr-libnetwork tag every subnet of a Docker
    /// pool), or allocated from the pool.
    pub fn network_of_pool(&self, pool: &PoolEntry) -> Option<(&NetworkEntry, &Subnet)> {
        let id = pool.pool.id.as_str();
        self.networks.values().find_map(|n| {
            n.subnets
                .iter()
                .find(|s| s.tags.iter().any(|t| t == id) || s.subnetpool_id.as_deref() == Some(id))
                .map(|s| (n, s))
        })
    }

    pub fn put_pool(&mut self, entry: PoolEntry) {
        self.pools.insert(entry.pool.id.clone(), entry);
    }

    pub fn pool(&self, id: &str) -> Option<&PoolEntry> {
        self.pools.get(id)
    }

    /// The pool of `cidr` backing `subnet` (see [`pool_rank`]).
    pub fn pool_by_cidr(&self, cidr: &IpNet, subnet: Option<&str>) -> Option<&PoolEntry> {
        self.pools
            .values()
            .filter(|p| p.cidr == *cidr)
            .min_by_key(|p| pool_rank(&p.pool, subnet))
    }

    pub fn remove_pool(&mut self, id: &str) -> Option<PoolEntry> {
        self.pools.remove(id)
    }

    /// CIDRs handed out from default pools and not yet backed by a subnet.
    pub fn carved_cidrs(&self) -> Vec<IpNet> {
        self.pools
            .values()
            .filter(|p| p.carved_from.is_some())
            .map(|p| p.cidr)
            .collect()
    }

    /// A port none of whose addresses may be handed out again until it is
    /// released (found at start-up, or given back by DeleteEndpoint).
    pub fn put_port(&mut self, port: Port) {
        let handed = port
            .fixed_ips
            .iter()
            .map(|f| (f.subnet_id.clone(), f.ip_address.clone()))
            .collect();
        self.ports.insert(port.id.clone(), Pending { port, handed });
    }

    /// RequestAddress handed out `ip` of `port`: its other addresses may
    /// still be asked for (the other family of a user's dual-stack port).
    pub fn put_handed(&mut self, port: Port, subnet_id: &str, ip: IpAddr) {
        let address = (subnet_id.to_string(), ip.to_string());
        let entry = self
            .ports
            .entry(port.id.clone())
            .or_insert_with(|| Pending {
                port: port.clone(),
                handed: Vec::new(),
            });
        entry.port = port;
        if !entry.handed.contains(&address) {
            entry.handed.push(address);
        }
    }

    /// The unclaimed port holding `ip` in `subnet_id`.
    pub fn port_by_ip(&self, subnet_id: &str, ip: IpAddr) -> Option<&Port> {
        let ip = ip.to_string();
        self.ports.values().map(|p| &p.port).find(|p| {
            p.fixed_ips
                .iter()
                .any(|f| f.subnet_id == subnet_id && f.ip_address == ip)
        })
    }

    /// The unclaimed port whose address `ip` in `subnet_id` was handed out
    /// and not released yet.
    pub fn handed_out(&self, subnet_id: &str, ip: IpAddr) -> Option<&Port> {
        let ip = ip.to_string();
        self.ports
            .values()
            .find(|p| p.handed.iter().any(|(s, a)| s == subnet_id && *a == ip))
            .map(|p| &p.port)
    }

    /// Is this port one this daemon handed out (unclaimed) or released?
    pub fn has_port(&self, port_id: &str) -> bool {
        self.ports.contains_key(port_id)
    }

    pub fn remove_port(&mut self, port_id: &str) -> Option<Port> {
        self.ports.remove(port_id).map(|p| p.port)
    }

    pub fn put_endpoint(&mut self, endpoint_id: String, port: Port) {
        self.ports.remove(&port.id);
        let exposed_sg = self
            .endpoints
            .get(&endpoint_id)
            .and_then(|e| e.exposed_sg.clone());
        self.endpoints.insert(
            endpoint_id.clone(),
            EndpointEntry {
                endpoint_id,
                port,
                exposed_sg,
            },
        );
    }

    pub fn endpoint(&self, endpoint_id: &str) -> Option<&EndpointEntry> {
        self.endpoints.get(endpoint_id)
    }

    pub fn endpoint_mut(&mut self, endpoint_id: &str) -> Option<&mut EndpointEntry> {
        self.endpoints.get_mut(endpoint_id)
    }

    /// The endpoint using port `port_id`, if any.
    pub fn endpoint_of_port(&self, port_id: &str) -> Option<&EndpointEntry> {
        self.endpoints.values().find(|e| e.port.id == port_id)
    }

    pub fn remove_endpoint(&mut self, endpoint_id: &str) -> Option<EndpointEntry> {
        self.endpoints.remove(endpoint_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(tags: &[&str]) -> SubnetPool {
        SubnetPool {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_pool_made_for_a_subnet_ranks_first_then_one_made_for_none() {
        let s1 = "0b5c3b0e-4a4e-4a8a-9d57-6f0f6b1f3c11";
        let s2 = "7c1d2e3f-0000-4a4e-8a8a-123456789abc";
        let for_s1 = pool(&[s1, "kuryr.subnetpool.existing"]);
        let for_s2 = pool(&[s2]);
        let for_none = pool(&["kuryr.subnetpool.existing"]);
        assert_eq!(pool_rank(&for_s1, Some(s1)), 0);
        assert!(pool_rank(&for_none, Some(s1)) < pool_rank(&for_s2, Some(s1)));
        assert!(pool_rank(&for_none, None) < pool_rank(&for_s1, None));
        assert!(!crate::names::is_neutron_id(
            "0b5c3b0e4a4e4a8a9d576f0f6b1f3c11"
        ));
        assert!(!crate::names::is_neutron_id("kuryr.subnetpool.existing"));
    }
}
