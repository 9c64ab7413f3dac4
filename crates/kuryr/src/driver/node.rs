//! The nested port drivers (`nested`, `vlan`): the node is a Nova VM with
//! no Neutron agent, and its own Neutron port (the "VM port") carries the
//! containers' traffic.
//!
//! - At start-up the VM port is found by the MAC of `[binding] link_iface`
//!   (`list_ports(mac_address=...)`, as kuryr-libnetwork does) or, without
//!   `link_iface`, by the one interface of the node whose MAC belongs to a
//!   Neutron port.
//! - `nested` (macvlan/ipvlan): every container's IP and MAC are added to
//!   the VM port's `allowed_address_pairs` at CreateEndpoint and removed at
//!   DeleteEndpoint, so port security lets the traffic through; networks
//!   default to the VM port's network.
//! - `vlan` (VLAN-aware VMs): the VM port is a trunk parent; every
//!   container port becomes a subport with the lowest free segmentation id,
//!   removed at DeleteEndpoint.
//!
//! Container ports are never bound to a host here: nothing on the node
//! would answer the binding (the trunk plugin binds subports itself).
//! Read-modify-write of the VM port and id allocation are serialized in
//! the process; against other writers (another process on the same trunk)
//! a taken id is detected and the next one tried.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use kuryr_openstack::Query;
use kuryr_openstack::neutron::{AddressPair, Port, PortUpdate, SubPort};
use tracing::{info, warn};

use super::{Driver, DriverError, Result};
use crate::binding::{self, HostLink};
use crate::config::PortDriverKind;
use crate::names;
use crate::protocol::DockerId;

/// Which endpoint ports are this node's.
pub(super) type PortFilter = Box<dyn Fn(&Port) -> bool + Send + Sync>;

/// How many ids to try when other writers keep taking them.
const MAX_SUBPORT_ATTEMPTS: usize = 16;

/// The VM port of this node and how to reach it.
#[derive(Debug)]
pub struct Node {
    /// The VM port as read at start-up (id, network, MAC, trunk).
    pub vm_port: Port,
    /// The node's NIC holding the VM port: parent of container interfaces.
    pub link: String,
    /// `vlan` mode: the trunk whose parent is the VM port.
    pub trunk_id: Option<String>,
    /// Held only around a read-modify-write of the VM port's allowed
    /// address pairs or of the trunk's segmentation ids (never across
    /// anything else a container start does).
    lock: tokio::sync::Mutex<()>,
}

/// Pick the node's NIC and its VM port.
///
/// With `link_iface`, its MAC must belong to exactly one port; without, the
/// candidate NICs ([`HostLink::may_be_vm_nic`]) are matched against
/// `ports` (the ports with any of their MACs) and exactly one pair must
/// match. Ports of kuryr's own containers never count.
pub(super) fn pick_vm_port(
    links: &[HostLink],
    link_iface: Option<&str>,
    ports: &[Port],
    where_: &str,
) -> std::result::Result<(String, Port), String> {
    let owned_by_mac = |mac: &str| -> Vec<&Port> {
        ports
            .iter()
            .filter(|p| p.mac_address.eq_ignore_ascii_case(mac))
            .filter(|p| p.device_owner != names::DEVICE_OWNER)
            .collect()
    };
    let ids = |ps: &[&Port]| {
        ps.iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = link_iface {
        let link = links
            .iter()
            .find(|l| l.name == name)
            .ok_or_else(|| format!("[binding] link_iface {name:?} does not exist in {where_}"))?;
        let mac = link
            .mac
            .as_deref()
            .ok_or_else(|| format!("[binding] link_iface {name:?} has no MAC address"))?;
        let found = owned_by_mac(mac);
        return match found.as_slice() {
            [] => Err(format!(
                "no Neutron port has the MAC {mac} of [binding] link_iface {name:?}: \
                 is this node a Nova VM, and is link_iface its NIC on the Neutron network?"
            )),
            [p] => Ok((name.to_string(), (*p).clone())),
            many => Err(format!(
                "several Neutron ports have the MAC {mac} of {name:?} ({})",
                ids(many)
            )),
        };
    }
    let mut matches: Vec<(&HostLink, &Port)> = Vec::new();
    let candidates: Vec<&HostLink> = links.iter().filter(|l| l.may_be_vm_nic()).collect();
    for l in &candidates {
        let Some(mac) = l.mac.as_deref() else {
            continue;
        };
        for p in owned_by_mac(mac) {
            matches.push((l, p));
        }
    }
    match matches.as_slice() {
        [] => Err(format!(
            "no interface in {where_} has the MAC of a Neutron port (looked at {}): \
             set [binding] link_iface to the NIC of the VM port",
            if candidates.is_empty() {
                "none".to_string()
            } else {
                candidates
                    .iter()
                    .map(|l| format!("{} {}", l.name, l.mac.as_deref().unwrap_or("-")))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )),
        [(l, p)] => Ok((l.name.clone(), (*p).clone())),
        many => Err(format!(
            "several interfaces in {where_} match Neutron ports ({}): set [binding] link_iface",
            many.iter()
                .map(|(l, p)| format!("{} = port {}", l.name, p.id))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// An address as Neutron may spell it in a pair (`10.0.0.5`, `10.0.0.5/32`).
fn pair_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// The same pair: same address (or CIDR) and same MAC, a pair without MAC
/// meaning the VM port's own.
fn same_pair(a: &AddressPair, b: &AddressPair, vm_mac: &str) -> bool {
    let ip_eq = match (pair_net(&a.ip_address), pair_net(&b.ip_address)) {
        (Some(x), Some(y)) => x == y,
        _ => a.ip_address == b.ip_address,
    };
    let mac = |p: &AddressPair| {
        p.mac_address
            .as_deref()
            .unwrap_or(vm_mac)
            .to_ascii_lowercase()
    };
    ip_eq && mac(a) == mac(b)
}

/// `existing` plus those of `ours` it lacks; `None` when nothing is
/// missing (no update needed). Other pairs are kept as they are.
pub(super) fn merge_pairs(
    existing: &[AddressPair],
    ours: &[AddressPair],
    vm_mac: &str,
) -> Option<Vec<AddressPair>> {
    let missing: Vec<&AddressPair> = ours
        .iter()
        .filter(|o| !existing.iter().any(|e| same_pair(e, o, vm_mac)))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let mut out = existing.to_vec();
    out.extend(missing.into_iter().cloned());
    Some(out)
}

/// `existing` without `ours`; `None` when none of ours is there. Only exact
/// (address, MAC) matches go: a pair someone else added for the same
/// address with another MAC stays.
pub(super) fn remove_pairs(
    existing: &[AddressPair],
    ours: &[AddressPair],
    vm_mac: &str,
) -> Option<Vec<AddressPair>> {
    let kept: Vec<AddressPair> = existing
        .iter()
        .filter(|e| !ours.iter().any(|o| same_pair(e, o, vm_mac)))
        .cloned()
        .collect();
    (kept.len() != existing.len()).then_some(kept)
}

/// The lowest 802.1Q id (1..4094) not in `used`.
pub(super) fn lowest_free_vlan(used: &BTreeSet<u32>) -> Option<u16> {
    let mut ids = binding::VLAN_IDS;
    ids.find(|id| !used.contains(&u32::from(*id)))
}

impl Driver {
    /// Whether the port driver puts containers behind a VM port.
    pub(super) fn nested_mode(&self) -> bool {
        matches!(
            self.config.port_driver,
            PortDriverKind::Nested | PortDriverKind::Vlan
        )
    }

    /// `vlan` mode: container ports become trunk subports.
    pub(super) fn trunk_mode(&self) -> bool {
        self.config.port_driver == PortDriverKind::Vlan
    }

    /// The `binding:host_id` for container ports: the agent's host in veth
    /// mode, none in the nested modes.
    pub(super) fn bind_host_id(&self) -> Option<String> {
        (!self.nested_mode()).then(|| self.config.host_id.clone())
    }

    pub(super) fn node(&self) -> Option<&Node> {
        self.node.get()
    }

    /// Find the VM port (and its trunk, in vlan mode). Run by `start()`.
    pub(super) async fn discover_node(&self) -> Result<()> {
        if self.node.get().is_some() {
            return Ok(());
        }
        let netns = self.config.link_netns.as_deref();
        let where_ = match netns {
            Some(p) => format!("network namespace {}", p.display()),
            None => "this host".to_string(),
        };
        let links = binding::host_links(netns).await?;
        let macs: Vec<&str> = match self.config.link_iface.as_deref() {
            Some(name) => links
                .iter()
                .filter(|l| l.name == name)
                .filter_map(|l| l.mac.as_deref())
                .collect(),
            None => links
                .iter()
                .filter(|l| l.may_be_vm_nic())
                .filter_map(|l| l.mac.as_deref())
                .collect(),
        };
        let ports = if macs.is_empty() {
            Vec::new()
        } else {
            let mut q = Query::new();
            for m in &macs {
                q = q.eq("mac_address", *m);
            }
            self.neutron.list_ports(&q).await?
        };
        let (link, vm_port) =
            pick_vm_port(&links, self.config.link_iface.as_deref(), &ports, &where_)
                .map_err(DriverError::Invalid)?;
        let trunk_id = match self.config.port_driver {
            PortDriverKind::Vlan => Some(
                vm_port
                    .trunk_details
                    .as_ref()
                    .map(|t| t.trunk_id.clone())
                    .ok_or_else(|| {
                        DriverError::Invalid(format!(
                            "the vlan port driver needs a trunk: VM port {} (MAC {} on {link}) \
                             is not a trunk parent (openstack network trunk create --parent-port {})",
                            vm_port.id, vm_port.mac_address, vm_port.id
                        ))
                    })?,
            ),
            _ => None,
        };
        info!(
            vm_port = %vm_port.id,
            network = %vm_port.network_id,
            mac = %vm_port.mac_address,
            link = %link,
            trunk = trunk_id.as_deref().unwrap_or("-"),
            "node is a VM: containers go behind its port"
        );
        let _ = self.node.set(Node {
            vm_port,
            link,
            trunk_id,
            lock: tokio::sync::Mutex::new(()),
        });
        Ok(())
    }

    /// The allowed address pairs a container port needs on the VM port:
    /// one per fixed IP, with the MAC the container's frames carry.
    fn container_pairs(&self, node: &Node, port: &Port) -> Vec<AddressPair> {
        let mac = if self.binder.shares_link_mac() {
            node.vm_port.mac_address.to_ascii_lowercase()
        } else {
            port.mac_address.to_ascii_lowercase()
        };
        port.fixed_ips
            .iter()
            .map(|f| AddressPair {
                ip_address: f.ip_address.clone(),
                mac_address: Some(mac.clone()),
            })
            .collect()
    }

    /// Give the container port its place behind the VM port: allowed
    /// address pairs (nested) or a trunk subport (vlan, returning its
    /// segmentation id). Idempotent; a no-op in veth mode.
    pub(super) async fn attach_to_node(&self, port: &Port, eid: &DockerId) -> Result<Option<u16>> {
        let Some(node) = self.node() else {
            return Ok(None);
        };
        match &node.trunk_id {
            Some(trunk) => {
                // Picking the segmentation id reads and writes the trunk:
                // one container at a time; the rest of the port is its own.
                let id = {
                    let _guard = node.lock.lock().await;
                    self.add_subport(trunk, port).await?
                };
                // kuryr's device ID, now that the trunk has the port.
                if port.device_id != eid.as_str() {
                    self.neutron
                        .update_port(
                            &port.id,
                            &PortUpdate {
                                device_id: Some(eid.to_string()),
                                ..Default::default()
                            },
                        )
                        .await?;
                }
                Ok(Some(id))
            }
            None => {
                let ours = self.container_pairs(node, port);
                let _guard = node.lock.lock().await;
                self.update_pairs(node, &ours, true).await?;
                Ok(None)
            }
        }
    }

    /// Undo [`Driver::attach_to_node`]; what is already gone is fine.
    pub(super) async fn detach_from_node(&self, port: &Port) -> Result<()> {
        let Some(node) = self.node() else {
            return Ok(());
        };
        match &node.trunk_id {
            // Removing a subport is one request that reads nothing first.
            Some(trunk) => match self.neutron.remove_subports(trunk, &[&port.id]).await {
                Ok(_) => {
                    info!(trunk = %trunk, port = %port.id, "subport removed");
                    Ok(())
                }
                // SubPortNotFound / TrunkNotFound: nothing to remove.
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => Err(e.into()),
            },
            None => {
                let ours = self.container_pairs(node, port);
                let _guard = node.lock.lock().await;
                self.update_pairs(node, &ours, false).await
            }
        }
    }

    /// Read the VM port, add or remove `ours`, write it back if it changed.
    /// The caller holds the node lock.
    async fn update_pairs(&self, node: &Node, ours: &[AddressPair], add: bool) -> Result<()> {
        if ours.is_empty() {
            return Ok(());
        }
        let vm = match self.neutron.get_port(&node.vm_port.id).await {
            Ok(vm) => vm,
            // Nothing left to remove the pairs from.
            Err(e) if e.is_not_found() && !add => return Ok(()),
            Err(e) if e.is_not_found() => {
                return Err(DriverError::NotFound(format!(
                    "the VM port {} of this node is gone from Neutron",
                    node.vm_port.id
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if add && vm.port_security_enabled == Some(false) {
            // Neutron refuses pairs on such a port, and nothing filters it.
            info!(vm_port = %vm.id, "port security is off on the VM port: no address pairs needed");
            return Ok(());
        }
        let vm_mac = vm.mac_address.to_ascii_lowercase();
        let new = if add {
            merge_pairs(&vm.allowed_address_pairs, ours, &vm_mac)
        } else {
            remove_pairs(&vm.allowed_address_pairs, ours, &vm_mac)
        };
        let Some(pairs) = new else {
            return Ok(());
        };
        self.neutron
            .update_port(
                &vm.id,
                &PortUpdate {
                    allowed_address_pairs: Some(pairs),
                    ..Default::default()
                },
            )
            .await?;
        let what: Vec<String> = ours
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    p.ip_address,
                    p.mac_address.as_deref().unwrap_or("")
                )
            })
            .collect();
        info!(
            vm_port = %vm.id,
            pairs = %what.join(", "),
            "{} the VM port's allowed address pairs",
            if add { "added to" } else { "removed from" }
        );
        Ok(())
    }

    /// Make `port` a subport of `trunk` with the lowest free segmentation
    /// id, or find the one it already has. The caller holds the node lock.
    async fn add_subport(&self, trunk: &str, port: &Port) -> Result<u16> {
        let mut refused: BTreeSet<u32> = BTreeSet::new();
        let mut last_error = None;
        let mut cleared = false;
        for _ in 0..MAX_SUBPORT_ATTEMPTS {
            let current = self.neutron.get_subports(trunk).await?;
            if let Some(sp) = current.iter().find(|s| s.port_id == port.id) {
                return vlan_of(trunk, sp);
            }
            let used: BTreeSet<u32> = current
                .iter()
                .map(|s| s.segmentation_id)
                .chain(refused.iter().copied())
                .collect();
            if !port.device_id.is_empty() && !cleared {
                cleared = true;
                // A trunk refuses a port with a device ("PortInUse"); any
                // device ID here is this endpoint's, from an attempt that
                // failed after setting it (IPAM refuses ports in use).
                self.neutron
                    .update_port(
                        &port.id,
                        &PortUpdate {
                            device_id: Some(String::new()),
                            ..Default::default()
                        },
                    )
                    .await?;
            }
            let id = lowest_free_vlan(&used).ok_or_else(|| {
                DriverError::Invalid(format!("trunk {trunk} has no free VLAN id left"))
            })?;
            let sub = SubPort {
                port_id: port.id.clone(),
                segmentation_type: "vlan".into(),
                segmentation_id: u32::from(id),
            };
            match self.neutron.add_subports(trunk, &[sub]).await {
                Ok(_) => {
                    info!(trunk, port = %port.id, segmentation_id = id, "subport added");
                    return Ok(id);
                }
                Err(e) if matches!(e.status(), Some(400 | 409 | 500)) => {
                    // Another writer may have taken the id (DuplicateSubPort,
                    // or a lost race in Neutron's database), or even made our
                    // port a subport: the next round reads the trunk again.
                    warn!(trunk, port = %port.id, segmentation_id = id, error = %e, "add_subports refused");
                    let now = self.neutron.get_subports(trunk).await?;
                    if let Some(sp) = now.iter().find(|s| s.port_id == port.id) {
                        return vlan_of(trunk, sp);
                    }
                    let taken = now
                        .iter()
                        .any(|s| s.segmentation_id == u32::from(id) && s.port_id != port.id);
                    if !taken && e.kind() != Some("DuplicateSubPort") {
                        // Not a collision: the port itself is refused
                        // (TrunkPortInUse, PortInUseAsSubPort, ...).
                        return Err(e.into());
                    }
                    refused.insert(u32::from(id));
                    last_error = Some(e);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(DriverError::Invalid(format!(
            "could not add port {} to trunk {trunk}: {MAX_SUBPORT_ATTEMPTS} segmentation ids were \
             taken concurrently{}",
            port.id,
            last_error
                .map(|e| format!(" (last: {e})"))
                .unwrap_or_default()
        )))
    }

    /// In nested modes, is this endpoint port one of this node's? (Its
    /// pairs are on our VM port, or it is a subport of our trunk.)
    pub(super) async fn node_port_filter(&self) -> Result<Option<PortFilter>> {
        let Some(node) = self.node() else {
            return Ok(None);
        };
        if let Some(trunk) = &node.trunk_id {
            let subports: BTreeSet<String> = self
                .neutron
                .get_subports(trunk)
                .await?
                .into_iter()
                .map(|s| s.port_id)
                .collect();
            return Ok(Some(Box::new(move |p: &Port| subports.contains(&p.id))));
        }
        let vm = self.neutron.get_port(&node.vm_port.id).await?;
        let vm_mac = vm.mac_address.to_ascii_lowercase();
        let pairs = vm.allowed_address_pairs;
        let shares = self.binder.shares_link_mac();
        Ok(Some(Box::new(move |p: &Port| {
            let mac = if shares {
                vm_mac.clone()
            } else {
                p.mac_address.to_ascii_lowercase()
            };
            !p.fixed_ips.is_empty()
                && p.fixed_ips.iter().all(|f| {
                    let want = AddressPair {
                        ip_address: f.ip_address.clone(),
                        mac_address: Some(mac.clone()),
                    };
                    pairs.iter().any(|e| same_pair(e, &want, &vm_mac))
                })
        })))
    }
}

fn vlan_of(trunk: &str, sp: &SubPort) -> Result<u16> {
    u16::try_from(sp.segmentation_id)
        .ok()
        .filter(|id| binding::VLAN_IDS.contains(id))
        .ok_or_else(|| {
            DriverError::Invalid(format!(
                "port {} is a subport of trunk {trunk} with segmentation id {}, not a VLAN id",
                sp.port_id, sp.segmentation_id
            ))
        })
}

#[cfg(test)]
mod tests;
