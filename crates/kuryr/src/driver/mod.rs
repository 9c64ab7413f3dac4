//! What each Docker call means in Neutron.
//!
//! State lives in Neutron (names and tags shared with kuryr-libnetwork).
//! The [`Index`] is a cache of it, rebuilt at start-up, so most calls need
//! no lookup round trip; every call is idempotent because it first checks
//! what already exists, and rolls back what it created when it fails.

mod bounded;
mod config;
mod endpoint;
mod error;
mod index;
mod ipam;
mod lookup;
mod network;
mod node;
mod orphans;
mod projects;
mod report;
mod steps;
mod swarm;

pub use config::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_ORPHAN_GRACE, DEFAULT_ORPHAN_INTERVAL, DriverConfig,
};
pub use error::{DriverError, Result};
pub use index::Index;
pub use node::Node;
pub use orphans::Collected;
pub use projects::{AllowedProjects, Projects};
pub use steps::{FAULT_POINTS, FaultAction, Faults};

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};

use ipnet::IpNet;
use kuryr_openstack::{CallSnapshot, Neutron, Query};
use tracing::info;

use crate::binding::Binder;
use crate::config::PortDriverKind;
use crate::names;
use crate::protocol::{self, PluginCall, Response};

/// The driver: one per daemon, shared by all requests.
pub struct Driver {
    neutron: Neutron,
    config: DriverConfig,
    binder: Binder,
    index: Mutex<Index>,
    /// One async lock per Docker network / pool, so concurrent calls on one
    /// object are serialized and calls on different ones run in parallel.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Set once the index is rebuilt; stateful calls wait for it, so a
    /// request racing the start-up never sees an empty index.
    ready: tokio::sync::watch::Sender<Startup>,
    /// Nested modes: the VM port of this node, found by `start()`.
    node: OnceLock<Node>,
    /// The driver's project and the ones it may use (set by `start()`).
    projects: OnceLock<Projects>,
    /// Neutron takes tags in a port's create request
    /// (`tag-ports-during-bulk-creation`): one call less per port.
    tags_on_port_create: std::sync::atomic::AtomicBool,
    /// Neutron takes tags in every create request (`tag-creation`, newer
    /// than Zed): one call less per network and per subnet too.
    tags_on_any_create: std::sync::atomic::AtomicBool,
    /// Ports made ahead per subnet (`ports_pool_size`), and the bell of
    /// the worker making them ([`Driver::keep_ports_ready`]).
    ready_ports: Mutex<ipam::ReadyPorts>,
    ready_wanted: Arc<tokio::sync::Notify>,
    /// The waits for ACTIVE, which share their polls.
    active_watch: endpoint::ActiveWatch,
    /// What the metrics show of the calls ([`crate::metrics`]).
    stats: crate::metrics::Stats,
}

/// How many entries the index holds, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexCounts {
    pub networks: usize,
    pub endpoints: usize,
    pub pools: usize,
    pub unclaimed_ports: usize,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Driver {
    pub fn new(neutron: Neutron, config: DriverConfig, binder: Binder) -> Driver {
        Driver {
            neutron,
            config,
            binder,
            index: Mutex::new(Index::default()),
            locks: Mutex::new(HashMap::new()),
            ready: tokio::sync::watch::channel(Startup::Starting(None)).0,
            node: OnceLock::new(),
            projects: OnceLock::new(),
            tags_on_port_create: std::sync::atomic::AtomicBool::new(false),
            tags_on_any_create: std::sync::atomic::AtomicBool::new(false),
            ready_ports: Mutex::new(ipam::ReadyPorts::default()),
            ready_wanted: Arc::new(tokio::sync::Notify::new()),
            active_watch: endpoint::ActiveWatch::default(),
            stats: crate::metrics::Stats::default(),
        }
    }

    /// The call and orphan counters the metrics endpoint shows.
    pub fn stats(&self) -> &crate::metrics::Stats {
        &self.stats
    }

    /// The size of the index now.
    pub fn index_counts(&self) -> IndexCounts {
        let index = self.index();
        IndexCounts {
            networks: index.network_count(),
            endpoints: index.endpoint_count(),
            pools: index.pool_count(),
            unclaimed_ports: index.unclaimed_port_count(),
        }
    }

    /// `Ok` once started; else why stateful calls are not served.
    pub fn readiness(&self) -> std::result::Result<(), String> {
        match &*self.ready.borrow() {
            Startup::Ready => Ok(()),
            Startup::Starting(None) => Err("starting".into()),
            Startup::Starting(Some(reason)) => Err(format!("starting: {reason}")),
            Startup::Failed(reason) => Err(format!("start-up failed: {reason}")),
        }
    }

    pub fn neutron(&self) -> &Neutron {
        &self.neutron
    }

    pub fn config(&self) -> &DriverConfig {
        &self.config
    }

    /// The host binding in use.
    pub fn binder(&self) -> &Binder {
        &self.binder
    }

    /// Nested modes: the VM port this node's containers sit behind (set by
    /// [`Driver::start`]).
    pub fn vm_node(&self) -> Option<&Node> {
        self.node()
    }

    /// Copy of the Neutron call counters.
    pub fn calls(&self) -> CallSnapshot {
        self.neutron.session().stats().snapshot()
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Is a call holding the lock of `key` right now?
    fn locked(&self, key: &str) -> bool {
        let locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.get(key).is_some_and(|l| l.try_lock().is_err())
    }

    /// Hold the lock of `key` (an endpoint, a network, a pool's CIDR)
    /// until the guard drops. Only calls on the same object wait for each
    /// other; the entry goes with its last user, so the map holds only
    /// the keys in use.
    /// Whether a call holds or waits for the lock of `key` now.
    fn is_locked(&self, key: &str) -> bool {
        let locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.contains_key(key)
    }

    async fn lock(&self, key: &str) -> KeyGuard<'_> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(key.to_string()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        KeyGuard {
            locks: &self.locks,
            key: key.to_string(),
            guard: Some(guard),
        }
    }

    /// Check what the driver needs from Neutron and rebuild the index from
    /// the tags of networks and ports, so a restarted daemon serves what was
    /// created before (dockerd never replays CreateNetwork/CreateEndpoint).
    pub async fn start(&self) -> Result<()> {
        self.learn_project().await?;
        let extensions = self.neutron.list_extensions().await?;
        let has = |alias: &str| extensions.iter().any(|e| e.alias == alias);
        let any = has("tag-creation");
        self.tags_on_any_create
            .store(any, std::sync::atomic::Ordering::Relaxed);
        self.tags_on_port_create.store(
            any || has("tag-ports-during-bulk-creation"),
            std::sync::atomic::Ordering::Relaxed,
        );
        if !has("standard-attr-tag") && !has("tag") {
            return Err(DriverError::Invalid(
                "Neutron has no tag extension (standard-attr-tag): kuryr keeps its state in tags"
                    .into(),
            ));
        }
        if !has("subnet_allocation") {
            return Err(DriverError::Invalid(
                "Neutron has no subnet_allocation extension (subnet pools)".into(),
            ));
        }
        match self.config.port_driver {
            PortDriverKind::Veth => {}
            PortDriverKind::Nested => {
                if !has("allowed-address-pairs") {
                    return Err(DriverError::Invalid(
                        "the nested port driver needs Neutron's allowed-address-pairs extension"
                            .into(),
                    ));
                }
                self.discover_node().await?;
            }
            PortDriverKind::Vlan => {
                if !has("trunk") || !has("trunk-details") {
                    return Err(DriverError::Invalid(
                        "the vlan port driver needs Neutron's trunk and trunk-details extensions \
                         (service_plugins = trunk)"
                            .into(),
                    ));
                }
                self.discover_node().await?;
            }
            PortDriverKind::Sriov => {
                return Err(DriverError::Invalid(
                    "the sriov port driver is not supported by this driver".into(),
                ));
            }
        }
        self.rebuild_index().await?;
        self.ready.send_replace(Startup::Ready);
        Ok(())
    }

    /// The project of the driver's token: its lists are scoped to it (and
    /// the allowed ones).
    async fn learn_project(&self) -> Result<()> {
        if self.projects.get().is_some() {
            return Ok(());
        }
        let own = self.neutron.session().project_id().await?.ok_or_else(|| {
            DriverError::Invalid(
                "the credential is not scoped to a project: set project_name (or project_id) \
                 in [neutron]"
                    .into(),
            )
        })?;
        let projects = Projects::new(own, self.config.allowed_projects.clone());
        info!(project = %projects.own(), allowed = ?self.config.allowed_projects, "working in project");
        let _ = self.projects.set(projects);
        Ok(())
    }

    /// The driver's project and the allowed ones. Set by `start()`, which
    /// every stateful call waits for.
    pub fn projects(&self) -> Result<&Projects> {
        self.projects
            .get()
            .ok_or_else(|| DriverError::Unavailable("the kuryr driver has not started yet".into()))
    }

    async fn rebuild_index(&self) -> Result<()> {
        let ours: Vec<_> = self
            .usable_networks()
            .await?
            .into_iter()
            .filter(|n| n.tags.iter().any(|t| t.starts_with(names::TAG_LOW)))
            .collect();
        let subnets = self.subnets_of(&ours).await?;
        let ports = self.ports_of_this_node().await?;
        let mut index = self.index();
        let mut neutron_ids = std::collections::HashSet::new();
        for net in ours {
            neutron_ids.insert(net.id.clone());
            let subs: Vec<_> = subnets
                .iter()
                .filter(|s| s.network_id == net.id)
                .cloned()
                .collect();
            // Several Docker networks may use one Neutron network.
            for id in names::ids_from_tags(&net.tags) {
                index.put_network(id, net.clone(), subs.clone());
            }
        }
        let (mut endpoints, mut unbound, mut ready) = (0, 0, 0);
        for port in ports {
            let subnet = port
                .fixed_ips
                .first()
                .and_then(|f| index.subnet_by_id(&f.subnet_id))
                .cloned();
            match names::id_from_tags(&port.tags) {
                Some(ep) if neutron_ids.contains(&port.network_id) => {
                    index.put_endpoint(ep, port);
                    endpoints += 1;
                }
                // Made here: in nested modes the ports of every node
                // share the VM port's network.
                None if ipam::is_ready_port(&port)
                    && self.made_here(&port)
                    && port.fixed_ips.len() == 1
                    && subnet
                        .as_ref()
                        .is_some_and(|s| self.adopt_ready_port(s, port.clone())) =>
                {
                    ready += 1;
                }
                _ => {
                    index.put_port(port);
                    unbound += 1;
                }
            }
        }
        info!(
            networks = index.network_count(),
            endpoints, unbound, "index rebuilt from Neutron"
        );
        ipam::log_adopted(ready);
        Ok(())
    }

    /// The networks the driver may use: its project's, the allowed
    /// projects', and shared ones (not every network of the cloud).
    async fn usable_networks(&self) -> Result<Vec<kuryr_openstack::neutron::Network>> {
        let projects = self.projects()?;
        let mut networks = self
            .neutron
            .list_networks(&projects.scoped(Query::new()))
            .await?;
        if projects.needs_shared_query() {
            for net in self
                .neutron
                .list_networks(&Query::new().eq("shared", "true"))
                .await?
            {
                if !networks.iter().any(|n| n.id == net.id) {
                    networks.push(net);
                }
            }
        }
        Ok(networks)
    }

    /// The subnets of `networks`, in requests of at most
    /// [`NETWORKS_PER_QUERY`] network IDs each (a query string past ~8 KiB
    /// is refused with 414).
    async fn subnets_of(
        &self,
        networks: &[kuryr_openstack::neutron::Network],
    ) -> Result<Vec<kuryr_openstack::neutron::Subnet>> {
        let mut subnets = Vec::new();
        for chunk in networks.chunks(NETWORKS_PER_QUERY) {
            let mut q = Query::new();
            for n in chunk {
                q = q.eq("network_id", &n.id);
            }
            subnets.extend(self.neutron.list_subnets(&q).await?);
        }
        Ok(subnets)
    }

    /// Kuryr's ports of this node: bound to this host (veth mode), or
    /// behind this node's VM port (nested modes bind none).
    async fn ports_of_this_node(&self) -> Result<Vec<kuryr_openstack::neutron::Port>> {
        let mut q = Query::new().eq("device_owner", names::DEVICE_OWNER);
        if let Some(host) = self.bind_host_id() {
            q = q.eq("binding:host_id", host);
        } else if let Some(node) = self.node()
            && node.trunk_id.is_none()
        {
            q = q.eq("network_id", &node.vm_port.network_id);
        }
        let mut ports = self.neutron.list_ports(&q).await?;
        if let Some(ours) = self.node_port_filter().await? {
            ports.retain(|p| names::id_from_tags(&p.tags).is_none() || ours(p));
        }
        Ok(ports)
    }

    /// The tags to put in a port's create request, where Neutron takes
    /// them there (else they are added after the create).
    pub(super) fn create_tags(&self, tags: Vec<String>) -> Option<Vec<String>> {
        self.tags_on_port_create
            .load(std::sync::atomic::Ordering::Relaxed)
            .then_some(tags)
    }

    /// The tags to put in a network's or subnet's create request, where
    /// Neutron takes them there (else they are set after the create).
    pub(super) fn create_tags_any(&self, tags: Vec<String>) -> Option<Vec<String>> {
        self.tags_on_any_create
            .load(std::sync::atomic::Ordering::Relaxed)
            .then_some(tags)
    }

    /// Start-up is still retrying: `reason` is why the last attempt failed.
    pub fn set_starting(&self, reason: String) {
        self.ready.send_replace(Startup::Starting(Some(reason)));
    }

    /// Start-up gave up: stateful calls are refused with `reason`.
    pub fn set_start_failed(&self, reason: String) {
        self.ready.send_replace(Startup::Failed(reason));
    }

    /// Wait (at most [`START_WAIT`]) for start-up; a call made while
    /// Neutron cannot be reached yet gets an error naming why, rather than
    /// hanging dockerd.
    async fn wait_started(&self) -> Result<()> {
        let mut state = self.ready.subscribe();
        let _ = tokio::time::timeout(
            START_WAIT,
            state.wait_for(|s| !matches!(s, Startup::Starting(_))),
        )
        .await;
        let now = state.borrow().clone();
        match now {
            Startup::Ready => Ok(()),
            Startup::Failed(reason) => Err(DriverError::Unavailable(format!(
                "the kuryr driver could not start: {reason}"
            ))),
            Startup::Starting(reason) => Err(DriverError::Unavailable(format!(
                "the kuryr driver is still starting ({}): try again",
                reason.unwrap_or_else(|| "checking Neutron".into())
            ))),
        }
    }

    /// Execute one parsed plugin call. Calls that need state wait for
    /// start-up to finish; the outcome and the Neutron calls it took are
    /// logged.
    pub async fn execute(&self, call: PluginCall) -> Result<Response> {
        self.execute_counted(call).await.0
    }

    /// [`Driver::execute`], with the Neutron requests this call made
    /// (counted per call: concurrent calls never see each other's).
    pub async fn execute_counted(&self, call: PluginCall) -> (Result<Response>, CallSnapshot) {
        let report = self.report_start(&call);
        if !call.method().is_stateless()
            && let Err(e) = self.wait_started().await
        {
            let (result, calls) = (Err(e), CallSnapshot::default());
            self.report_end(report, &result, &calls);
            return (result, calls);
        }
        let (result, calls) = kuryr_openstack::counted(Box::pin(self.run(call))).await;
        self.report_end(report, &result, &calls);
        (result, calls)
    }

    async fn run(&self, call: PluginCall) -> Result<Response> {
        Ok(match call {
            PluginCall::Activate => Response::Activate(protocol::ActivateResponse {
                implements: vec!["NetworkDriver", "IpamDriver"],
            }),
            PluginCall::NetworkCapabilities => {
                Response::NetworkCapabilities(protocol::NetworkCapabilities {
                    scope: self.config.scope.as_str().into(),
                    connectivity_scope: self.config.connectivity_scope.as_str().into(),
                })
            }
            PluginCall::CreateNetwork(req) => {
                self.create_network(req).await?;
                Response::EMPTY
            }
            PluginCall::DeleteNetwork(req) => {
                self.delete_network_on_node(&req.network_id).await?;
                Response::EMPTY
            }
            PluginCall::AllocateNetwork(req) => {
                Response::AllocateNetwork(self.allocate_network(req).await?)
            }
            PluginCall::FreeNetwork(req) => {
                self.free_network(&req.network_id).await?;
                Response::EMPTY
            }
            PluginCall::CreateEndpoint(req) => {
                Response::CreateEndpoint(self.create_endpoint(req).await?)
            }
            PluginCall::EndpointOperInfo(req) => {
                Response::EndpointOperInfo(self.endpoint_oper_info(&req))
            }
            PluginCall::DeleteEndpoint(req) => {
                self.delete_endpoint(&req).await?;
                Response::EMPTY
            }
            PluginCall::Join(req) => Response::Join(self.join(req).await?),
            PluginCall::Leave(_) | PluginCall::DiscoverNew | PluginCall::DiscoverDelete => {
                Response::EMPTY
            }
            PluginCall::ProgramExternalConnectivity(req) => {
                self.program_external_connectivity(&req).await?;
                Response::EMPTY
            }
            PluginCall::RevokeExternalConnectivity(req) => {
                self.revoke_external_connectivity(&req).await?;
                Response::EMPTY
            }
            PluginCall::IpamCapabilities => {
                Response::IpamCapabilities(protocol::IpamCapabilities {
                    // Docker's random MAC would replace Neutron's: keep Neutron's.
                    requires_mac_address: false,
                    requires_request_replay: false,
                })
            }
            PluginCall::DefaultAddressSpaces => Response::AddressSpaces(protocol::AddressSpaces {
                local: self.config.local_address_space.clone(),
                global: self.config.global_address_space.clone(),
            }),
            PluginCall::RequestPool(req) => Response::RequestPool(self.request_pool(req).await?),
            PluginCall::ReleasePool(req) => {
                self.release_pool(&req.pool_id).await?;
                Response::EMPTY
            }
            PluginCall::RequestAddress(req) => {
                Response::RequestAddress(self.request_address(req).await?)
            }
            PluginCall::ReleaseAddress(req) => {
                self.release_address(&req).await?;
                Response::EMPTY
            }
        })
    }
}

/// The lock of one key, held; see [`Driver::lock`].
struct KeyGuard<'a> {
    locks: &'a Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Release first, then drop the entry unless someone else holds or
        // waits for it (their clone of the Arc is counted).
        self.guard.take();
        if locks
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            locks.remove(&self.key);
        }
    }
}

/// Where start-up is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Startup {
    /// Checking Neutron and rebuilding the index; why the last try failed.
    Starting(Option<String>),
    Ready,
    Failed(String),
}

/// How long a stateful call waits for start-up before it is refused.
const START_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Network IDs per subnet query at start-up: 40 IDs of 36 characters and
/// the `network_id=` keys keep the query string under 2 KiB.
const NETWORKS_PER_QUERY: usize = 40;

/// Time spent in Neutron requests but the ACTIVE polls (the wait for
/// ACTIVE, polls included, is logged as `port active`): the rest of a
/// call's time is the driver's own.
fn neutron_ms(calls: &CallSnapshot) -> u64 {
    calls
        .ops
        .iter()
        .filter(|(name, _)| {
            name.starts_with("neutron.") && !name.starts_with(kuryr_openstack::metrics::POLL_PREFIX)
        })
        .map(|(_, s)| s.total.as_millis() as u64)
        .sum()
}

/// `ip/prefixlen` of `ip` inside `cidr`.
fn with_prefix(ip: IpAddr, cidr: &IpNet) -> String {
    format!("{ip}/{}", cidr.prefix_len())
}

/// The first host address of a subnet: Neutron's default gateway.
fn first_host(cidr: &IpNet) -> Option<IpAddr> {
    match cidr {
        IpNet::V4(n) => n.hosts().next().map(IpAddr::V4),
        IpNet::V6(n) => {
            let base = u128::from(n.network());
            if n.prefix_len() >= 127 {
                None
            } else {
                Some(IpAddr::V6((base + 1).into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_are_first_hosts() {
        let v4: IpNet = "10.10.0.0/24".parse().unwrap();
        assert_eq!(first_host(&v4).unwrap().to_string(), "10.10.0.1");
        let v6: IpNet = "fd10:10::/64".parse().unwrap();
        assert_eq!(first_host(&v6).unwrap().to_string(), "fd10:10::1");
        assert_eq!(with_prefix(first_host(&v4).unwrap(), &v4), "10.10.0.1/24");
    }
}

#[cfg(test)]
mod handler_tests;

#[cfg(test)]
mod fault_tests;
