//! Ready ports (`[DEFAULT] ports_pool_size`): ports made ahead for each
//! subnet this host hands addresses from, so RequestAddress answers
//! without a Neutron call.
//!
//! Why: dockerd holds its lock of a network across RequestAddress and
//! CreateEndpoint, so when many containers start on one network their
//! port creates run one after another, a Neutron round trip each (0.3 to
//! 0.5 s on a busy Neutron). A ready port takes the create out of that
//! queue; one background worker ([`Driver::keep_ports_ready`]) makes the
//! next ones meanwhile, several per request when several are missing, so
//! no more Neutron work is done than without the pool, but not while
//! dockerd waits.
//!
//! The rules:
//! - local scope only: in global scope the swarm manager hands addresses
//!   out for tasks that start later, on other nodes, and a port handed
//!   out must then be known as such by its name, which only a Neutron
//!   call could change;
//! - a ready port is an ordinary kuryr IPAM port (`compute:kuryr`, bound
//!   to this host, tagged as kuryr's) named [`names::READY_PORT_NAME`];
//!   the claim in CreateEndpoint renames it. Neutron is the pool: a
//!   restarted daemon takes back the ready ports it finds; with the pool
//!   turned off they are unclaimed ports, which orphan collection removes
//!   after its grace;
//! - a subnet gets ready ports once kuryr IPAM is seen serving it:
//!   CreateNetwork with kuryr's address space, or an address asked for;
//!   DeleteNetwork deletes them before the network;
//! - `--ip` of an address a ready port holds takes that port out of the
//!   pool and hands it out; ReleaseAddress never deletes a ready port.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use kuryr_openstack::neutron::{Port, Subnet};
use tracing::{info, warn};

use super::super::steps::{Journal, Lost, Undo};
use super::super::{Driver, Result};
use crate::config::CapabilityScope;
use crate::names;

/// How long a subnet whose port could not be made waits before the next
/// try (a full subnet, a quota, Neutron down).
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// The most ports made in one request (`POST /ports` with a list: one
/// round trip, one transaction in Neutron for all of them).
const BATCH: usize = 10;

/// The ready ports of each subnet, by subnet ID.
#[derive(Debug, Default)]
pub(in crate::driver) struct ReadyPorts {
    subnets: HashMap<String, SubnetPorts>,
}

#[derive(Debug)]
struct SubnetPorts {
    subnet: Subnet,
    ports: VecDeque<Port>,
    /// No new port before this (the last make failed).
    retry_at: Option<Instant>,
}

impl ReadyPorts {
    /// Keep ports ready in `subnet` from now on.
    pub fn want(&mut self, subnet: &Subnet) {
        self.subnets
            .entry(subnet.id.clone())
            .or_insert_with(|| SubnetPorts {
                subnet: subnet.clone(),
                ports: VecDeque::new(),
                retry_at: None,
            });
    }

    /// A ready port of `subnet_id`, taken out of the pool.
    pub fn take(&mut self, subnet_id: &str) -> Option<Port> {
        self.subnets.get_mut(subnet_id)?.ports.pop_front()
    }

    /// Put a port made (or found at start-up) into its subnet's pool;
    /// `false` when the subnet has no pool (any more): the port is not
    /// wanted.
    pub fn put(&mut self, subnet: &Subnet, port: Port) -> bool {
        match self.subnets.get_mut(&subnet.id) {
            Some(s) => {
                s.ports.push_back(port);
                true
            }
            None => false,
        }
    }

    /// Take `port_id` out of the pool (handed out another way, or gone).
    pub fn remove(&mut self, port_id: &str) -> Option<Port> {
        self.subnets.values_mut().find_map(|s| {
            let at = s.ports.iter().position(|p| p.id == port_id)?;
            s.ports.remove(at)
        })
    }

    pub fn contains(&self, port_id: &str) -> bool {
        self.subnets
            .values()
            .any(|s| s.ports.iter().any(|p| p.id == port_id))
    }

    /// The network goes: its subnets keep no ports any more; returns the
    /// ports they held.
    pub fn forget_network(&mut self, network_id: &str) -> Vec<Port> {
        let gone: Vec<String> = self
            .subnets
            .iter()
            .filter(|(_, s)| s.subnet.network_id == network_id)
            .map(|(id, _)| id.clone())
            .collect();
        gone.iter()
            .filter_map(|id| self.subnets.remove(id))
            .flat_map(|s| s.ports)
            .collect()
    }

    /// How many ports each subnet lacks to hold `size`, leaving out the
    /// ones waiting to try again.
    fn missing(&self, size: usize, now: Instant) -> Vec<(Subnet, usize)> {
        self.subnets
            .values()
            .filter(|s| s.retry_at.is_none_or(|at| at <= now))
            .filter(|s| s.ports.len() < size)
            .map(|s| (s.subnet.clone(), size - s.ports.len()))
            .collect()
    }

    fn failed(&mut self, subnet_id: &str, now: Instant) {
        if let Some(s) = self.subnets.get_mut(subnet_id) {
            s.retry_at = Some(now + RETRY_AFTER);
        }
    }

    pub fn count(&self) -> usize {
        self.subnets.values().map(|s| s.ports.len()).sum()
    }

    /// Ports held for the subnets of `network_id`.
    pub fn count_in(&self, network_id: &str) -> usize {
        self.subnets
            .values()
            .filter(|s| s.subnet.network_id == network_id)
            .map(|s| s.ports.len())
            .sum()
    }
}

/// Is this port one made ahead and not claimed yet?
pub(in crate::driver) fn is_ready_port(port: &Port) -> bool {
    port.name == names::READY_PORT_NAME
        && port.device_id.is_empty()
        && names::id_from_tags(&port.tags).is_none()
}

impl Driver {
    /// The ports per subnet to keep ready (0 in global scope).
    fn ready_size(&self) -> usize {
        match self.config.scope {
            CapabilityScope::Local => self.config.ports_pool_size,
            CapabilityScope::Global => 0,
        }
    }

    fn ready_ports(&self) -> std::sync::MutexGuard<'_, ReadyPorts> {
        self.ready_ports.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start keeping ports ready in `subnet` (no-op with the pool off).
    pub(in crate::driver) fn want_ready_ports(&self, subnet: &Subnet) {
        if self.ready_size() > 0 {
            self.ready_ports().want(subnet);
            self.ready_wanted.notify_one();
        }
    }

    /// A ready port of `subnet`, if the pool has one; the worker makes
    /// the next.
    pub(in crate::driver) fn take_ready_port(&self, subnet: &Subnet) -> Option<Port> {
        if self.ready_size() == 0 {
            return None;
        }
        let port = {
            let mut ready = self.ready_ports();
            ready.want(subnet);
            ready.take(&subnet.id)
        };
        self.ready_wanted.notify_one();
        port
    }

    /// `port` leaves the pool (handed out by `--ip`); whether it was in.
    pub(in crate::driver) fn unready(&self, port_id: &str) -> bool {
        let was = self.ready_ports().remove(port_id).is_some();
        if was {
            self.ready_wanted.notify_one();
        }
        was
    }

    pub(in crate::driver) fn is_in_ready_pool(&self, port_id: &str) -> bool {
        self.ready_ports().contains(port_id)
    }

    /// Ready ports held now (for the metrics and `kuryr status`).
    pub fn ready_port_count(&self) -> usize {
        self.ready_ports().count()
    }

    /// Ready ports held now for the subnets of one Neutron network.
    pub fn ready_port_count_in(&self, network_id: &str) -> usize {
        self.ready_ports().count_in(network_id)
    }

    /// A ready port found in Neutron at start-up: back into its pool.
    /// `false` when the pool is off (the port is then an unclaimed one).
    pub(in crate::driver) fn adopt_ready_port(&self, subnet: &Subnet, port: Port) -> bool {
        if self.ready_size() == 0 {
            return false;
        }
        let mut ready = self.ready_ports();
        ready.want(subnet);
        ready.put(subnet, port)
    }

    /// DeleteNetwork: the network's ready ports go first (Neutron refuses
    /// to delete a subnet with ports), and no more are made for it.
    pub(in crate::driver) async fn delete_ready_ports_of(&self, network_id: &str) -> Result<()> {
        let ports = self.ready_ports().forget_network(network_id);
        // All at once: a pool of 20 is 20 requests Neutron may overlap.
        let deletes = ports.iter().map(|p| self.neutron.delete_port(&p.id));
        for deleted in futures_util::future::join_all(deletes).await {
            match deleted {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The worker making ready ports, one request at a time, whenever a
    /// subnet lacks some; it ends once the driver is dropped. The daemon runs it
    /// when `ports_pool_size` is set.
    pub async fn keep_ports_ready(self: Arc<Self>) {
        let wanted = self.ready_wanted.clone();
        let driver: Weak<Driver> = Arc::downgrade(&self);
        drop(self);
        loop {
            let Some(d) = driver.upgrade() else { return };
            d.fill_ready_pools().await;
            drop(d);
            // Woken by a port taken or a subnet wanted; a failed subnet is
            // tried again after its wait.
            let _ = tokio::time::timeout(RETRY_AFTER, wanted.notified()).await;
        }
    }

    /// Make ports until every subnet holds `ports_pool_size` (or a make
    /// fails: that subnet waits [`RETRY_AFTER`]).
    pub(in crate::driver) async fn fill_ready_pools(&self) {
        let size = self.ready_size();
        if size == 0 {
            return;
        }
        loop {
            let missing = self.ready_ports().missing(size, Instant::now());
            if missing.is_empty() {
                return;
            }
            for (subnet, count) in missing {
                self.make_ready_ports(&subnet, count.min(BATCH)).await;
            }
        }
    }

    /// `count` ready ports in one request, journaled: a failure deletes
    /// what Neutron made.
    async fn make_ready_ports(&self, subnet: &Subnet, count: usize) {
        let made = self
            .journaled("ReadyPort", async |j: &mut Journal| {
                let bodies: Vec<_> = (0..count)
                    .map(|_| self.ipam_port_body(subnet, None, None, names::READY_PORT_NAME))
                    .collect();
                let lost = bodies
                    .iter()
                    .map(|b| Lost::Port {
                        description: b.description.clone().unwrap_or_default(),
                    })
                    .collect();
                let made = self.neutron.create_ports(&bodies);
                let undo = |ports: &Vec<Port>| {
                    ports
                        .iter()
                        .map(|p| Undo::DeletePort(p.id.clone()))
                        .collect()
                };
                let ports = self.create_all_undoable(j, lost, made, undo).await?;
                self.fault_point("ReadyPort.made").await?;
                Ok(ports)
            })
            .await;
        match made {
            Ok(ports) => {
                for port in ports {
                    let id = port.id.clone();
                    if !self.ready_ports().put(subnet, port) {
                        // The network went meanwhile.
                        if let Err(e) = self.neutron.delete_port(&id).await
                            && !e.is_not_found()
                        {
                            warn!(port = %id, error = %e, "ready port of a deleted network not deleted");
                        }
                    }
                }
            }
            Err(e) => {
                warn!(subnet = %subnet.id, error = %e, retry_in_s = RETRY_AFTER.as_secs(), "ready port not made");
                self.ready_ports().failed(&subnet.id, Instant::now());
            }
        }
    }
}

/// Log line for the start-up: how many ready ports were taken back.
pub(in crate::driver) fn log_adopted(count: usize) {
    if count > 0 {
        info!(count, "ready ports taken back from Neutron");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(id: &str, net: &str) -> Subnet {
        Subnet {
            id: id.into(),
            network_id: net.into(),
            ..Default::default()
        }
    }

    fn port(id: &str) -> Port {
        Port {
            id: id.into(),
            name: names::READY_PORT_NAME.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_pool_hands_out_in_order_and_reports_what_it_lacks() {
        let (s, now) = (subnet("s1", "n1"), Instant::now());
        let mut r = ReadyPorts::default();
        assert!(!r.put(&s, port("p0")), "no pool before it is wanted");
        r.want(&s);
        assert_eq!(r.missing(2, now)[0].1, 2);
        assert!(r.put(&s, port("p1")) && r.put(&s, port("p2")));
        assert!(r.missing(2, now).is_empty());
        assert_eq!(r.take("s1").unwrap().id, "p1");
        assert_eq!(r.missing(2, now)[0].1, 1);
        assert!(r.contains("p2") && r.remove("p2").is_some() && !r.contains("p2"));
        assert!(r.take("s1").is_none() && r.take("other").is_none());
    }

    #[test]
    fn a_failed_subnet_waits_and_a_deleted_network_takes_its_ports() {
        let now = Instant::now();
        let (a, b) = (subnet("a", "n1"), subnet("b", "n2"));
        let mut r = ReadyPorts::default();
        r.want(&a);
        r.want(&b);
        r.failed("a", now);
        let missing: Vec<String> = r.missing(1, now).into_iter().map(|m| m.0.id).collect();
        assert_eq!(missing, ["b"]);
        assert_eq!(r.missing(1, now + RETRY_AFTER).len(), 2);
        r.put(&b, port("pb"));
        assert_eq!(r.forget_network("n2").len(), 1);
        assert!(
            !r.put(&b, port("late")),
            "a port made after the network went is not kept"
        );
        assert_eq!(r.count(), 0);
    }

    #[test]
    fn only_an_unclaimed_port_of_that_name_is_ready() {
        let mut p = port("p");
        assert!(is_ready_port(&p));
        p.device_id = "ep".into();
        assert!(!is_ready_port(&p));
        let mut q = port("q");
        q.name = names::UNBOUND_PORT_NAME.into();
        assert!(!is_ready_port(&q));
    }
}
