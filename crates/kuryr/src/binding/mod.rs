//! Host-side binding of Neutron ports: what kuryr-lib's binding drivers
//! and the veth driver's per-`binding:vif_type` scripts
//! (`/usr/libexec/kuryr/*`) do.
//!
//! Two binders, picked at start-up from the port driver:
//! - [`Binder::Veth`] (port driver `veth`, a node running a Neutron L2
//!   agent), described below;
//! - [`Binder::Nested`] (port drivers `nested` and `vlan`, a node that is a
//!   VM): a macvlan, ipvlan or VLAN sub-interface of the node's NIC, see
//!   [`NestedBinder`].
//!
//! For every endpoint, the veth binder creates a veth pair in the host
//! network namespace: the host end `tap<port[:11]>` and the container end
//! `t_c<port[:11]>` that Docker moves into the sandbox at Join (Docker never
//! touches the MTU, so both ends get the Neutron network MTU here). The host
//! end is then plugged the way the L2 agent that bound the port expects:
//!
//! | `binding:vif_type` | plug |
//! |---|---|
//! | `ovs` | added to `br-int` with the `external_ids` the OVS agent looks for (`iface-id`, `attached-mac`, ...), as `ovs-vsctl add-port` would |
//! | `ovs` + `ovs_hybrid_plug` | Linux bridge `qbr<port>` holding the tap and `qvb<port>`, whose veth peer `qvo<port>` goes into `br-int` |
//! | `bridge` | the tap is enslaved to `brq<net[:11]>` (the linuxbridge agent does not plug `compute:*` ports itself) |
//! | `tap` | nothing: the tap is left alone |
//!
//! Everything but the OVS database goes through rtnetlink; OVS goes through
//! one OVSDB transaction on ovsdb-server's unix socket ([`ovsdb`], no
//! `ovs-vsctl` needed). Both calls are idempotent: bind adopts what a
//! crashed or retried call left, unbind treats "already gone" as success,
//! and a failed bind removes what it created.
//!
//! The veth binder only touches the host namespace, the nested binder only
//! the namespace holding the node's NIC: Docker moves the container end.

mod ethtool_ioctl;
mod nested;
mod netlink;
mod ovs;
pub mod ovsdb;
mod veth;
pub mod vif;

use std::fmt;

use serde_json::{Map, Value};

pub use ethtool_ioctl::{set_tx_checksum, tx_checksum};
pub use nested::{
    HostLink, NestedBinder, NestedConfig, NestedKind, VLAN_IDS, host_links, probe_link_kind,
};
pub use veth::VethBinder;
pub use vif::{VifDetails, VifType};

/// What to bind: one Neutron port to one Docker endpoint.
#[derive(Debug, Clone)]
pub struct BindRequest<'a> {
    /// The port, read back after `binding:host_id` was set, so that
    /// `binding:vif_type` and `binding:vif_details` are filled by Neutron.
    pub port: &'a kuryr_openstack::neutron::Port,
    /// Docker endpoint ID (64 hex characters).
    pub endpoint_id: &'a str,
    /// MTU of the Neutron network (1500 if unknown); set on both veth ends.
    pub mtu: u32,
    /// Host end of the veth: `tap` + `port_id[..11]`.
    pub host_ifname: String,
    /// Container end of the veth: `t_c` + `port_id[..11]` (Docker's SrcName).
    pub container_ifname: String,
    /// Nested bindings: the node's NIC the sub-interface hangs off
    /// (`[binding] link_iface`, or the one found by the VM port's MAC).
    pub link_iface: Option<&'a str>,
    /// VLAN binding: the 802.1Q id of the port's trunk subport.
    pub vlan_id: Option<u16>,
}

/// What to unbind. Carries the port's binding as it was at bind time (or as
/// Neutron shows it now), since the port itself may already be gone.
#[derive(Debug, Clone)]
pub struct UnbindRequest<'a> {
    pub port_id: &'a str,
    pub network_id: &'a str,
    pub host_ifname: String,
    pub container_ifname: String,
    /// `binding:vif_type` of the port.
    pub vif_type: &'a str,
    /// `binding:vif_details` of the port.
    pub vif_details: &'a Map<String, Value>,
}

/// Why the host side could not be set up or torn down.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// Neutron did not bind the port to this host.
    #[error(
        "port {port_id} is not bound to this host (binding:vif_type is {vif_type:?}): \
         is a Neutron L2 agent running here with the same host name?"
    )]
    NotBound { port_id: String, vif_type: String },
    /// The port is bound, but to a kind of VIF this binder cannot plug.
    #[error(
        "port {port_id} has binding:vif_type {vif_type:?}, which the veth binder does not \
         support (supported: ovs, bridge, tap); the port is not bound to this host the way \
         kuryr can plug it"
    )]
    UnsupportedVifType { port_id: String, vif_type: String },
    /// The request itself is unusable (bad MAC, interface name too long, ...).
    #[error("invalid binding request for port {port_id}: {reason}")]
    InvalidRequest { port_id: String, reason: String },
    /// The rtnetlink socket could not be opened.
    #[error("cannot open a netlink socket: {0}")]
    NetlinkSocket(#[source] std::io::Error),
    /// The network namespace of a nested binder could not be entered.
    #[error("cannot open a netlink socket in network namespace {path}: {source}")]
    Netns {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The kernel cannot create links of this kind (module missing).
    #[error(
        "the kernel cannot create {kind} devices (\"Unknown device type\": \
         no {kind} support or module on this host)"
    )]
    UnsupportedLinkKind { kind: &'static str },
    /// The node's NIC a nested binding hangs off is not there.
    #[error("the link interface {ifname:?} does not exist in {netns}")]
    LinkNotFound { ifname: String, netns: String },
    /// A netlink request failed; `action` says which, `ifname` on what.
    #[error("netlink: cannot {action} {ifname}: {source}")]
    Netlink {
        action: &'static str,
        ifname: String,
        #[source]
        source: rtnetlink::Error,
    },
    /// A device we must reuse exists with another kind.
    #[error("{ifname} exists but is a {found} device, not a {expected}")]
    WrongKind {
        ifname: String,
        found: String,
        expected: &'static str,
    },
    /// A device we just created or looked up is gone (deleted concurrently).
    #[error("{ifname} vanished while being set up (deleted concurrently?)")]
    Vanished { ifname: String },
    /// The SIOCETHTOOL ioctl failed.
    #[error("cannot turn TX checksum offload off on {ifname}: {source}")]
    Ethtool {
        ifname: String,
        #[source]
        source: std::io::Error,
    },
    /// The OVS database change failed (or ovsdb-server is unreachable, or
    /// did not answer within the timeout).
    #[error("OVS {action} failed: {source}")]
    Ovs {
        action: String,
        #[source]
        source: ovsdb::OvsdbError,
    },
    /// Unbind went through every step but some failed.
    #[error("unbind of port {port_id} incomplete: {}", ErrorList(errors))]
    Teardown {
        port_id: String,
        errors: Vec<BindError>,
    },
}

impl BindError {
    /// The kernel errno behind a netlink or ethtool failure, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            BindError::Netlink { source, .. } => netlink::errno(source),
            BindError::Ethtool { source, .. }
            | BindError::NetlinkSocket(source)
            | BindError::Netns { source, .. } => source.raw_os_error(),
            BindError::Ovs { source, .. } => source.errno(),
            BindError::UnsupportedLinkKind { .. } => Some(libc::EOPNOTSUPP),
            BindError::Teardown { errors, .. } => errors.iter().find_map(BindError::errno),
            _ => None,
        }
    }
}

struct ErrorList<'a>(&'a [BindError]);

impl fmt::Display for ErrorList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Something of a port's host side found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSide {
    /// The Neutron port it is for.
    pub port_id: String,
    /// What it is, for logs: `host link tap0123abcd-ef`.
    pub what: String,
}

/// Settings of the veth binder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethConfig {
    /// OVS bridge for `ovs` ports whose vif_details carry no `bridge_name`.
    pub integration_bridge: String,
    /// Bound on each OVS operation (connect, read, write, wait for
    /// ovs-vswitchd), in seconds, as `ovs-vsctl --timeout` (0: none).
    pub ovs_timeout_secs: u32,
    /// The OVS database, `unix:<path>` as `ovs-vsctl --db` (`None`:
    /// ovs-vsctl's default, `unix:$OVS_RUNDIR/db.sock`, that is
    /// `unix:/run/openvswitch/db.sock`).
    pub ovs_db: Option<String>,
    /// As `ovs-vsctl --no-wait`: do not wait for ovs-vswitchd to apply the
    /// change (`cur_cfg` reaching `next_cfg`). Needed when only an
    /// `ovsdb-server` runs (tests); without a vswitchd, waiting lasts
    /// until the timeout.
    pub ovs_no_wait: bool,
}

impl Default for VethConfig {
    fn default() -> Self {
        VethConfig {
            integration_bridge: "br-int".to_string(),
            ovs_timeout_secs: 10,
            ovs_db: None,
            ovs_no_wait: false,
        }
    }
}

/// The host binding in use, picked once at startup.
#[derive(Debug)]
pub enum Binder {
    /// veth pair + per-vif_type plug (kuryr-lib's `veth` driver).
    Veth(VethBinder),
    /// macvlan / ipvlan / VLAN sub-interface of the node's NIC (kuryr-lib's
    /// `macvlan`, `ipvlan` and `vlan` drivers), for nodes that are VMs.
    Nested(NestedBinder),
    /// Does nothing and always succeeds (tests without root, dry runs).
    Noop,
}

impl Binder {
    /// The veth binder. The netlink socket is opened lazily, on the first
    /// call, from inside the tokio runtime.
    pub fn veth(cfg: VethConfig) -> Binder {
        Binder::Veth(VethBinder::new(cfg))
    }

    /// A nested binder; its netlink socket is opened lazily too (inside
    /// `cfg.netns` if set).
    pub fn nested(cfg: NestedConfig) -> Binder {
        Binder::Nested(NestedBinder::new(cfg))
    }

    /// Whether the container interface carries the node NIC's MAC rather
    /// than the port's (ipvlan): the VM port's allowed address pairs and
    /// Docker must then be given that MAC.
    pub fn shares_link_mac(&self) -> bool {
        matches!(self, Binder::Nested(b) if b.config().kind == NestedKind::Ipvlan)
    }

    /// Create and plug the host side of `req.port`. Idempotent: a second
    /// call with the same request converges to the same state. On failure
    /// nothing of this endpoint is left behind.
    pub async fn bind(&self, req: &BindRequest<'_>) -> Result<(), BindError> {
        match self {
            Binder::Veth(b) => b.bind(req).await,
            Binder::Nested(b) => b.bind(req).await,
            Binder::Noop => Ok(()),
        }
    }

    /// Unplug and delete the host side. Idempotent: what is already gone
    /// counts as removed. Every step is attempted even if one fails.
    pub async fn unbind(&self, req: &UnbindRequest<'_>) -> Result<(), BindError> {
        match self {
            Binder::Veth(b) => b.unbind(req).await,
            Binder::Nested(b) => b.unbind(req).await,
            Binder::Noop => Ok(()),
        }
    }

    /// Every host side kuryr made that is on this host now (veth mode:
    /// links marked with their port, OVS interfaces kuryr owns). Nested
    /// sub-interfaces live in containers and go with them: none.
    pub async fn host_sides(&self) -> Result<Vec<HostSide>, BindError> {
        match self {
            Binder::Veth(b) => b.host_sides().await,
            Binder::Nested(_) | Binder::Noop => Ok(Vec::new()),
        }
    }

    /// Is the host side of this port there? veth mode: its host-side
    /// interface exists (it stays in the host while the container runs).
    /// `None` where the binder cannot tell (nested sub-interfaces live in
    /// the container; no-op binding).
    pub async fn host_side_exists(&self, port_id: &str) -> Result<Option<bool>, BindError> {
        match self {
            Binder::Veth(b) => Ok(Some(b.has_link(&vif::host_ifname(port_id)).await?)),
            Binder::Nested(_) | Binder::Noop => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config() {
        let c = VethConfig::default();
        assert_eq!(c.integration_bridge, "br-int");
        assert_eq!(c.ovs_timeout_secs, 10);
        assert_eq!(c.ovs_db, None);
        assert!(!c.ovs_no_wait);
    }

    #[test]
    fn not_bound_message_names_vif_type_and_hint() {
        let e = BindError::NotBound {
            port_id: "p1".into(),
            vif_type: "binding_failed".into(),
        };
        let s = e.to_string();
        assert!(s.contains("\"binding_failed\""), "{s}");
        assert!(s.contains("not bound to this host"), "{s}");
        assert!(s.contains("L2 agent"), "{s}");
    }

    #[test]
    fn teardown_lists_every_error() {
        let e = BindError::Teardown {
            port_id: "p1".into(),
            errors: vec![
                BindError::Ovs {
                    action: "del-port tapx".into(),
                    source: ovsdb::OvsdbError::Disconnected("boom".into()),
                },
                BindError::Ethtool {
                    ifname: "t_cx".into(),
                    source: std::io::Error::from_raw_os_error(libc::ENODEV),
                },
            ],
        };
        let s = e.to_string();
        assert!(
            s.contains("del-port tapx") && s.contains("boom") && s.contains("t_cx"),
            "{s}"
        );
        assert_eq!(e.errno(), Some(libc::ENODEV));
    }

    #[test]
    fn noop_binder_succeeds() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let port = kuryr_openstack::neutron::Port {
            id: "0123456789abcdef".into(),
            vif_type: "binding_failed".into(),
            ..Default::default()
        };
        let details = Map::new();
        rt.block_on(async {
            let b = Binder::Noop;
            b.bind(&BindRequest {
                port: &port,
                endpoint_id: "e",
                mtu: 1500,
                host_ifname: "tap0123456789a".into(),
                container_ifname: "t_c0123456789a".into(),
                link_iface: None,
                vlan_id: None,
            })
            .await
            .unwrap();
            b.unbind(&UnbindRequest {
                port_id: &port.id,
                network_id: "n",
                host_ifname: "tap0123456789a".into(),
                container_ifname: "t_c0123456789a".into(),
                vif_type: "ovs",
                vif_details: &details,
            })
            .await
            .unwrap();
        });
    }
}
