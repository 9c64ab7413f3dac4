//! What a handler changed so far, and where tests may stop it.
//!
//! A handler records every change it makes in a [`Journal`] right after
//! making it; when a later step fails, [`Driver::roll_back`] undoes the
//! changes newest first (ports before the subnet that holds their
//! addresses, tags before what they mark), trying every one and logging
//! what could not be undone. Undoing what is already gone is fine.
//!
//! A create is journaled *before* it is sent, as what it may have made
//! ([`Lost`]: the port carrying this request's nonce, the subnet of this
//! CIDR in this network, ...), and replaced by the exact undo once its
//! answer names the object. So a create whose answer never came (a
//! timeout, a lost reply, a call abandoned mid-request) is found in
//! Neutron and deleted by the rollback.
//!
//! A detached call that is abandoned (see [`super::bounded`]) stops its
//! steps and rolls back; steps that succeed commit the call, after which
//! it can no longer be abandoned.
//!
//! Between steps a handler passes named fault points
//! ([`Driver::fault_point`]): with a [`Faults`] plan (tests only: the
//! daemon reads one from `KURYR_FAULT_POINTS`, in-process tests set it in
//! [`super::DriverConfig`]) a point fails the call there, stalls it, or
//! crashes it: the daemon kills itself on the spot, in-process a crash
//! returns [`DriverError::Crashed`] and skips the rollback, as a kill would.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kuryr_openstack::neutron::{Port, PortUpdate};
use kuryr_openstack::{Query, TagResource};
use tracing::{info, warn};

use super::{Driver, DriverError, Result, bounded};
use crate::names;

/// One change to undo.
#[derive(Debug, Clone)]
pub(super) enum Undo {
    DeletePort(String),
    DeleteSubnet(String),
    DeleteNetwork(String),
    DeleteSubnetPool(String),
    DeleteSecurityGroup(String),
    /// Remove tags this handler added (one by one: tags others add
    /// meanwhile stay).
    RemoveTags {
        resource: TagResource,
        id: String,
        tags: Vec<String>,
    },
    /// Put a port's fields back as they were.
    UpdatePort {
        id: String,
        update: PortUpdate,
    },
    /// Take the port off the VM port's pairs or trunk again.
    DetachFromNode(Port),
    /// Remove the host side again.
    UnbindHost {
        network_id: String,
        port: Port,
    },
    /// A create sent, its answer not (yet) come: delete what it made.
    Lost(Lost),
}

/// What a create whose answer never came may have made, and how it is
/// found in Neutron.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Lost {
    /// The ports whose description is this request's [`names::made_in`].
    Port { description: String },
    /// The subnet pools whose description is this request's.
    SubnetPool { description: String },
    /// The untagged networks with this [`names::made_by`] description.
    Network { description: String },
    /// The kuryr subnet of this CIDR in this network.
    Subnet { network_id: String, cidr: String },
    /// The security group of this name.
    SecurityGroup { name: String },
}

/// The changes of one handler so far, oldest first.
#[derive(Debug, Default)]
pub(super) struct Journal(Vec<Undo>);

impl Journal {
    pub(super) fn push(&mut self, undo: Undo) {
        self.0.push(undo);
    }
}

impl Driver {
    /// Send a create, journaled first as `lost` (what it may make), then,
    /// once it answered, as `undo` of what it made. A create that failed
    /// with an answer made nothing and leaves no entry; one whose outcome
    /// is unknown (timeout, no reply) keeps `lost` for the rollback.
    /// [`Driver::create_undoable`] for a bulk create: one `lost` entry per
    /// object asked for, replaced by `undo`'s once they are made.
    pub(super) async fn create_all_undoable<T>(
        &self,
        j: &mut Journal,
        lost: Vec<Lost>,
        create: impl Future<Output = kuryr_openstack::Result<T>>,
        undo: impl FnOnce(&T) -> Vec<Undo>,
    ) -> kuryr_openstack::Result<T> {
        let at = j.0.len();
        j.0.extend(lost.into_iter().map(Undo::Lost));
        let made = create.await;
        match &made {
            Ok(v) => {
                j.0.truncate(at);
                j.0.extend(undo(v));
            }
            Err(e) if e.outcome_unknown() => {}
            Err(_) => j.0.truncate(at),
        }
        made
    }

    pub(super) async fn create_undoable<T>(
        &self,
        j: &mut Journal,
        lost: Lost,
        create: impl Future<Output = kuryr_openstack::Result<T>>,
        undo: impl FnOnce(&T) -> Undo,
    ) -> kuryr_openstack::Result<T> {
        let at = j.0.len();
        j.push(Undo::Lost(lost));
        let made = create.await;
        match &made {
            Ok(v) => j.0[at] = undo(v),
            Err(e) if e.outcome_unknown() => {}
            Err(_) => {
                j.0.remove(at);
            }
        }
        made
    }
}

/// What a fault point does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Fail the call with an injected error (the handler rolls back).
    Error,
    /// Stop dead: no rollback, no reply (the daemon is killed).
    Crash,
    /// Wait, then go on.
    Stall(Duration),
}

/// Fault points armed by a test, each firing once.
#[derive(Debug, Default)]
pub struct Faults {
    armed: Mutex<HashMap<String, FaultAction>>,
    /// Kill the process on [`FaultAction::Crash`] (the daemon), rather than
    /// returning [`DriverError::Crashed`] (in-process tests).
    pub kill_process: bool,
}

impl Faults {
    /// `Point=error,Other.point=crash,Third=stall:500` (milliseconds).
    pub fn parse(spec: &str) -> std::result::Result<Faults, String> {
        let faults = Faults::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (point, action) = item
                .split_once('=')
                .ok_or_else(|| format!("fault {item:?}: expected point=error|crash|stall:MS"))?;
            let action = match action {
                "error" => FaultAction::Error,
                "crash" => FaultAction::Crash,
                other => match other.strip_prefix("stall:").and_then(|ms| ms.parse().ok()) {
                    Some(ms) => FaultAction::Stall(Duration::from_millis(ms)),
                    None => return Err(format!("fault {item:?}: unknown action {other:?}")),
                },
            };
            if !FAULT_POINTS.contains(&point) {
                return Err(format!("fault {item:?}: no such fault point"));
            }
            faults.arm(point, action);
        }
        Ok(faults)
    }

    /// Fire `action` the next time `point` is passed.
    pub fn arm(&self, point: &str, action: FaultAction) {
        self.armed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(point.to_string(), action);
    }

    /// Is `point` armed still (not passed since it was armed)?
    pub fn is_armed(&self, point: &str) -> bool {
        self.armed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(point)
    }

    fn take(&self, point: &str) -> Option<FaultAction> {
        self.armed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(point)
    }
}

/// Every fault point, `<Method>.<what is done by then>`, in handler order.
pub const FAULT_POINTS: &[&str] = &[
    "CreateNetwork.network_made",
    "CreateNetwork.network_tagged",
    "CreateNetwork.subnet_made",
    "CreateNetwork.aux_reserved",
    "RequestAddress.port_made",
    "CreateEndpoint.port_claimed",
    "CreateEndpoint.port_tagged",
    "CreateEndpoint.attached",
    "CreateEndpoint.bound",
    "Join.found",
    "DeleteEndpoint.exposed_dropped",
    "DeleteEndpoint.unbound",
    "DeleteEndpoint.detached",
    "DeleteEndpoint.port_released",
    "ReleaseAddress.found",
    "DeleteNetwork.tags_removed",
    "DeleteNetwork.subnets_deleted",
    "DeleteNetwork.network_deleted",
    "ReadyPort.made",
];

impl Driver {
    /// Pass a fault point: nothing happens unless a test armed it.
    pub(super) async fn fault_point(&self, point: &'static str) -> Result<()> {
        debug_assert!(FAULT_POINTS.contains(&point), "{point} is not listed");
        let Some(faults) = &self.config.faults else {
            return Ok(());
        };
        match faults.take(point) {
            None => Ok(()),
            Some(FaultAction::Stall(d)) => {
                info!(point, ms = d.as_millis() as u64, "fault point: stalling");
                tokio::time::sleep(d).await;
                Ok(())
            }
            Some(FaultAction::Error) => {
                info!(point, "fault point: failing the call");
                Err(DriverError::Injected(point.to_string()))
            }
            Some(FaultAction::Crash) if faults.kill_process => {
                warn!(point, "fault point: killing the daemon");
                // SAFETY: kill(2) on our own pid with SIGKILL: no memory
                // is involved; the process ends here.
                unsafe {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                }
                Err(DriverError::Crashed(point.to_string()))
            }
            Some(FaultAction::Crash) => {
                info!(point, "fault point: stopping dead");
                Err(DriverError::Crashed(point.to_string()))
            }
        }
    }

    /// Run `steps`, rolling back what `journal` recorded if they fail
    /// (not after a simulated crash: a killed process undoes nothing), or
    /// if the detached call they belong to is abandoned meanwhile. Steps
    /// that succeed commit the call.
    pub(super) async fn journaled<T>(
        &self,
        what: &str,
        steps: impl AsyncFnOnce(&mut Journal) -> Result<T>,
    ) -> Result<T> {
        let call = bounded::current_call();
        let mut journal = Journal::default();
        let result = {
            // Boxed: handler futures are large, and nest (AllocateNetwork
            // runs CreateNetwork); on the heap they cannot overflow a
            // task's stack.
            let steps = Box::pin(steps(&mut journal));
            match &call {
                Some(c) if c.is_abandoned() => Err(DriverError::Abandoned),
                Some(c) => tokio::select! {
                    done = steps => done,
                    () = c.abandoned() => Err(DriverError::Abandoned),
                },
                None => steps.await,
            }
        };
        let result = match result {
            Ok(_) if call.as_ref().is_some_and(|c| !c.commit()) => Err(DriverError::Abandoned),
            other => other,
        };
        if let Err(e) = &result
            && !matches!(e, DriverError::Crashed(_))
        {
            info!(call = what, error = %e, changes = journal.0.len(), "rolling back");
            self.roll_back(journal).await;
        }
        result
    }

    /// Undo, newest first; every change is tried, failures are logged.
    pub(super) async fn roll_back(&self, journal: Journal) {
        for undo in journal.0.into_iter().rev() {
            if let Err(e) = self.undo(&undo).await {
                warn!(?undo, error = %e, "rollback: could not undo");
            }
        }
    }

    async fn undo(&self, undo: &Undo) -> Result<()> {
        let n = &self.neutron;
        let gone = |r: kuryr_openstack::Result<()>| match r {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map_err(DriverError::from),
        };
        match undo {
            Undo::DeletePort(id) => {
                self.index().remove_port(id);
                gone(n.delete_port(id).await)
            }
            Undo::DeleteSubnet(id) => gone(n.delete_subnet(id).await),
            Undo::DeleteNetwork(id) => gone(n.delete_network(id).await),
            Undo::DeleteSubnetPool(id) => gone(n.delete_subnetpool(id).await),
            Undo::DeleteSecurityGroup(id) => gone(n.delete_security_group(id).await),
            Undo::RemoveTags { resource, id, tags } => self.remove_tags(*resource, id, tags).await,
            Undo::UpdatePort { id, update } => gone(n.update_port(id, update).await.map(|_| ())),
            Undo::DetachFromNode(port) => self.detach_from_node(port).await,
            Undo::UnbindHost { network_id, port } => self.unbind_port(network_id, port).await,
            Undo::Lost(lost) => self.undo_lost(lost).await,
        }
    }

    /// Find what a create whose answer never came made, and delete it.
    async fn undo_lost(&self, lost: &Lost) -> Result<()> {
        let n = &self.neutron;
        let gone = |r: kuryr_openstack::Result<()>| match r {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map_err(DriverError::from),
        };
        match lost {
            Lost::Port { description } => {
                for p in n
                    .list_ports(&Query::new().eq("description", description))
                    .await?
                {
                    info!(port = %p.id, "rollback: deleting the port a lost create made");
                    self.index().remove_port(&p.id);
                    gone(n.delete_port(&p.id).await)?;
                }
            }
            Lost::SubnetPool { description } => {
                let q = Query::new().eq("description", description);
                for p in n.list_subnetpools(&q).await? {
                    info!(pool = %p.id, "rollback: deleting the subnet pool a lost create made");
                    gone(n.delete_subnetpool(&p.id).await)?;
                }
            }
            Lost::Network { description } => {
                let q = Query::new().eq("description", description);
                for net in n.list_networks(&q).await? {
                    // Tagged, it is a Docker network's (made before).
                    if net.tags.iter().any(|t| t.starts_with(names::TAG_LOW)) {
                        continue;
                    }
                    info!(network = %net.id, "rollback: deleting the network a lost create made");
                    gone(n.delete_network(&net.id).await)?;
                }
            }
            Lost::Subnet { network_id, cidr } => {
                let q = Query::new().eq("network_id", network_id).eq("cidr", cidr);
                for s in n.list_subnets(&q).await? {
                    if s.name.starts_with(names::SUBNET_NAME_PREFIX) {
                        info!(subnet = %s.id, "rollback: deleting the subnet a lost create made");
                        gone(n.delete_subnet(&s.id).await)?;
                    }
                }
            }
            Lost::SecurityGroup { name } => {
                let q = Query::new().eq("name", name);
                for g in n.list_security_groups(&q).await? {
                    info!(security_group = %g.id, "rollback: deleting the group a lost create made");
                    gone(n.delete_security_group(&g.id).await)?;
                }
            }
        }
        Ok(())
    }

    /// Remove these tags (and only these) from a resource; absent ones and
    /// a gone resource are fine.
    pub(super) async fn remove_tags(
        &self,
        resource: TagResource,
        id: &str,
        tags: &[String],
    ) -> Result<()> {
        for tag in tags {
            match self.neutron.remove_tag(resource, id, tag).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Add these tags to a resource, one by one (tags others hold stay).
    pub(super) async fn add_tags(
        &self,
        resource: TagResource,
        id: &str,
        tags: &[String],
    ) -> Result<()> {
        for tag in tags {
            self.neutron.add_tag(resource, id, tag).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs() {
        let f = Faults::parse("CreateNetwork.network_made=crash, Join.found=stall:20").unwrap();
        assert_eq!(
            f.take("CreateNetwork.network_made"),
            Some(FaultAction::Crash)
        );
        assert_eq!(f.take("CreateNetwork.network_made"), None, "fires once");
        assert_eq!(
            f.take("Join.found"),
            Some(FaultAction::Stall(Duration::from_millis(20)))
        );
        assert!(
            Faults::parse("Nope.x=error")
                .unwrap_err()
                .contains("no such")
        );
        assert!(
            Faults::parse("Join.found=explode")
                .unwrap_err()
                .contains("unknown action")
        );
    }

    #[test]
    fn every_fault_point_is_passed_in_the_code() {
        let src: String = ["network", "endpoint", "ipam"]
            .iter()
            .flat_map(|d| {
                let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("src/driver")
                    .join(d);
                let files: Vec<_> = if dir.is_dir() {
                    std::fs::read_dir(&dir)
                        .unwrap()
                        .map(|e| e.unwrap().path())
                        .collect()
                } else {
                    vec![dir.with_extension("rs")]
                };
                files
            })
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect();
        for point in FAULT_POINTS {
            assert!(
                src.contains(&format!("fault_point(\"{point}\")")),
                "{point} is never passed"
            );
        }
    }
}
