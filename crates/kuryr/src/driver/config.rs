//! The driver's settings, taken from kuryr.conf by the daemon.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{AllowedProjects, Faults};

use crate::config::{CapabilityScope, PortDriverKind};

/// Default of [`DriverConfig::orphan_grace`].
pub const DEFAULT_ORPHAN_GRACE: Duration = Duration::from_secs(300);
/// Default of [`DriverConfig::orphan_interval`].
pub const DEFAULT_ORPHAN_INTERVAL: Duration = Duration::from_secs(600);
/// Default of [`DriverConfig::call_timeout`].
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(25);

/// Settings the driver needs, taken from kuryr.conf.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// `binding:host_id` of ports bound here (the Neutron agent's host).
    pub host_id: String,
    /// `capability_scope`: `global` networks are shared by every node
    /// (swarm), `local` ones are per host.
    pub scope: CapabilityScope,
    /// Docker's ConnectivityScope (defaults to `scope`).
    pub connectivity_scope: CapabilityScope,
    pub local_address_space: String,
    pub global_address_space: String,
    /// `kuryrPool` by default.
    pub subnetpool_prefix: String,
    /// Default pools carved from when `docker network create` has no --subnet.
    pub default_subnetpool_v4: String,
    pub default_subnetpool_v6: String,
    pub enable_dhcp: bool,
    /// Join's DstPrefix (`eth`).
    pub dst_prefix: String,
    pub process_external_connectivity: bool,
    /// Wait for the port to become ACTIVE before CreateEndpoint returns.
    pub vif_plugging_is_fatal: bool,
    pub vif_plugging_timeout: Duration,
    /// `[DEFAULT] default_port_driver`: `veth` (agent on the node),
    /// `nested` (macvlan/ipvlan behind the VM port's allowed address
    /// pairs) or `vlan` (trunk subports). `sriov` is refused at start.
    pub port_driver: PortDriverKind,
    /// `[binding] link_iface`: the node's NIC holding the VM port (nested
    /// modes); `None` finds it by MAC.
    pub link_iface: Option<String>,
    /// Network namespace where the node's NIC lives, for finding the VM
    /// port (`None`: the daemon's own). Give the nested binder the same.
    pub link_netns: Option<PathBuf>,
    /// Orphans younger than this are left alone (another host's call, or
    /// one on its way here, may be making them).
    pub orphan_grace: Duration,
    /// How often orphans are collected after the one at start-up.
    pub orphan_interval: Duration,
    /// Docker gets an answer to every call within this (CreateEndpoint:
    /// plus `vif_plugging_timeout` when fatal); past it the call is
    /// abandoned and rolls back. Under the managed plugin's 30 s.
    pub call_timeout: Duration,
    /// `[DEFAULT] docker_host`: the dockerd this driver serves, read by
    /// orphan collection only (never by a request handler).
    pub docker_host: Option<String>,
    /// `[neutron] allowed_projects`: projects besides its own whose
    /// networks, subnets and pools the driver may use.
    pub allowed_projects: AllowedProjects,
    /// `[DEFAULT] ports_pool_size`: ports kept made ahead per subnet
    /// (local scope only; 0: none). See [`super::ipam`]'s ready ports.
    pub ports_pool_size: usize,
    /// Fault points armed by a test (`None` outside tests).
    pub faults: Option<Arc<Faults>>,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            host_id: "localhost".into(),
            scope: CapabilityScope::Local,
            connectivity_scope: CapabilityScope::Local,
            local_address_space: "no_address_space".into(),
            global_address_space: "no_address_space".into(),
            subnetpool_prefix: "kuryrPool".into(),
            default_subnetpool_v4: "kuryr".into(),
            default_subnetpool_v6: "kuryr6".into(),
            enable_dhcp: true,
            dst_prefix: "eth".into(),
            process_external_connectivity: true,
            vif_plugging_is_fatal: false,
            vif_plugging_timeout: Duration::from_secs(300),
            port_driver: PortDriverKind::Veth,
            link_iface: None,
            link_netns: None,
            orphan_grace: DEFAULT_ORPHAN_GRACE,
            orphan_interval: DEFAULT_ORPHAN_INTERVAL,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            docker_host: None,
            allowed_projects: AllowedProjects::None,
            ports_pool_size: 0,
            faults: None,
        }
    }
}
