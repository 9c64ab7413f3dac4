//! The veth binder: kuryr-lib's `veth` binding driver plus its `ovs`,
//! `bridge` and `tap` scripts, in process.

use std::fmt;

use rtnetlink::packet_route::link::InfoKind;
use tokio::sync::OnceCell;

use super::ethtool_ioctl;
use super::netlink::{Link, Netlink, VethSpec};
use super::ovs::{IfaceIds, Ovs};
use super::vif::{self, VifDetails, VifType};
use super::{BindError, BindRequest, UnbindRequest, VethConfig};

/// Smallest MTU the kernel accepts for IPv4 on an Ethernet device.
const MIN_MTU: u32 = 68;

/// Binds ports with a veth pair in the host namespace; see the module docs
/// of [`crate::binding`].
pub struct VethBinder {
    cfg: VethConfig,
    ovs: Ovs,
    /// Opened on first use, so that the connection task lands on the
    /// daemon's runtime (and in the namespace of the thread that runs it).
    nl: OnceCell<Netlink>,
}

impl fmt::Debug for VethBinder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VethBinder")
            .field("cfg", &self.cfg)
            .field("connected", &self.nl.initialized())
            .field("ovs", &self.ovs)
            .finish()
    }
}

/// How the host end gets plugged.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plug {
    /// vif_type `tap`: left alone.
    Nothing,
    /// vif_type `bridge`: enslaved to the linuxbridge agent's `brq` bridge.
    LinuxBridge { bridge: String },
    /// vif_type `ovs`: `dev` (the tap, or `qvo` with the hybrid plug) added
    /// to the OVS `bridge`.
    Ovs {
        bridge: String,
        dev: String,
        hybrid: Option<Hybrid>,
    },
}

/// Devices of the OVS hybrid plug.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hybrid {
    qbr: String,
    qvb: String,
    qvo: String,
}

impl Hybrid {
    fn for_port(port_id: &str) -> Hybrid {
        let (qvb, qvo) = vif::hybrid_veth_names(port_id);
        Hybrid {
            qbr: vif::hybrid_bridge_name(port_id),
            qvb,
            qvo,
        }
    }
}

/// Everything bind will do, decided before touching the host.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BindPlan {
    host: String,
    container: String,
    mac: [u8; 6],
    mtu: u32,
    tx_csum_off: bool,
    plug: Plug,
}

/// What a teardown removes. Each step is idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TeardownPlan {
    /// OVS ports to delete (if they exist), in one transaction.
    ovs_ports: Vec<String>,
    /// Links to delete by name, in order; missing ones are skipped.
    links: Vec<String>,
}

fn invalid(port_id: &str, reason: String) -> BindError {
    BindError::InvalidRequest {
        port_id: port_id.to_string(),
        reason,
    }
}

fn check_ifname(port_id: &str, what: &str, name: &str) -> Result<(), BindError> {
    match vif::invalid_ifname(name) {
        None => Ok(()),
        Some(why) => Err(invalid(port_id, format!("{what} {name:?} {why}"))),
    }
}

fn check_names(port_id: &str, host: &str, container: &str) -> Result<(), BindError> {
    if !vif::is_plain_id(port_id) {
        return Err(invalid(
            port_id,
            "the port ID has unexpected characters".into(),
        ));
    }
    check_ifname(port_id, "host interface name", host)?;
    check_ifname(port_id, "container interface name", container)?;
    if host == container {
        return Err(invalid(
            port_id,
            format!("host and container interface names are both {host:?}"),
        ));
    }
    Ok(())
}

impl BindPlan {
    /// Validate the request and decide what to do. Fails with
    /// [`BindError::NotBound`] / [`BindError::UnsupportedVifType`] for
    /// ports this binder cannot plug.
    fn new(cfg: &VethConfig, req: &BindRequest<'_>) -> Result<BindPlan, BindError> {
        let port = req.port;
        check_names(&port.id, &req.host_ifname, &req.container_ifname)?;
        if !vif::is_plain_id(req.endpoint_id) {
            return Err(invalid(
                &port.id,
                format!(
                    "endpoint ID {:?} has unexpected characters",
                    req.endpoint_id
                ),
            ));
        }
        let mac = vif::parse_mac(&port.mac_address)
            .ok_or_else(|| invalid(&port.id, format!("bad MAC address {:?}", port.mac_address)))?;
        if req.mtu < MIN_MTU {
            return Err(invalid(
                &port.id,
                format!("MTU {} is below {MIN_MTU}", req.mtu),
            ));
        }
        let details = VifDetails::from_map(&port.vif_details);
        let plug = match VifType::parse(&port.vif_type) {
            VifType::Tap => Plug::Nothing,
            VifType::Bridge => Plug::LinuxBridge {
                bridge: vif::linuxbridge_name(&port.network_id),
            },
            VifType::Ovs => {
                let bridge = details
                    .bridge_name
                    .clone()
                    .unwrap_or_else(|| cfg.integration_bridge.clone());
                check_ifname(&port.id, "OVS bridge name", &bridge)?;
                let hybrid = details.ovs_hybrid_plug.then(|| Hybrid::for_port(&port.id));
                let dev = match &hybrid {
                    Some(h) => h.qvo.clone(),
                    None => req.host_ifname.clone(),
                };
                Plug::Ovs {
                    bridge,
                    dev,
                    hybrid,
                }
            }
            VifType::NotBound(vif_type) => {
                return Err(BindError::NotBound {
                    port_id: port.id.clone(),
                    vif_type,
                });
            }
            VifType::Unsupported(vif_type) => {
                return Err(BindError::UnsupportedVifType {
                    port_id: port.id.clone(),
                    vif_type,
                });
            }
        };
        if let Plug::LinuxBridge { bridge } = &plug {
            check_ifname(&port.id, "Linux bridge name", bridge)?;
        }
        Ok(BindPlan {
            host: req.host_ifname.clone(),
            container: req.container_ifname.clone(),
            mac,
            mtu: req.mtu,
            tx_csum_off: details.userspace_datapath(),
            plug,
        })
    }

    /// What to remove when bind fails after it started changing the host.
    fn rollback(&self, ovs_attempted: bool) -> TeardownPlan {
        let mut td = TeardownPlan {
            ovs_ports: Vec::new(),
            links: Vec::new(),
        };
        if let Plug::Ovs { dev, hybrid, .. } = &self.plug {
            // A transaction that timed out may still have committed (and
            // one waiting for ovs-vswitchd has): undo it too.
            if ovs_attempted {
                td.ovs_ports.push(dev.clone());
            }
            if let Some(h) = hybrid {
                td.links
                    .extend([h.qvb.clone(), h.qvo.clone(), h.qbr.clone()]);
            }
        }
        // `brq` is shared by the network and managed by the agent: kept.
        td.links.extend([self.host.clone(), self.container.clone()]);
        td
    }
}

impl TeardownPlan {
    /// Unbind: everything any bind of this port may have made. The hybrid
    /// devices are looked for whatever vif_details say now (netlink
    /// deletes of absent names are cheap and harmless), so a port whose
    /// details changed since bind leaves nothing behind.
    fn unbind(req: &UnbindRequest<'_>) -> TeardownPlan {
        let hybrid = Hybrid::for_port(req.port_id);
        let ovs_ports = match VifType::parse(req.vif_type) {
            VifType::Ovs => {
                let details = VifDetails::from_map(req.vif_details);
                if details.ovs_hybrid_plug {
                    vec![hybrid.qvo.clone(), req.host_ifname.clone()]
                } else {
                    vec![req.host_ifname.clone(), hybrid.qvo.clone()]
                }
            }
            _ => Vec::new(),
        };
        TeardownPlan {
            ovs_ports,
            links: vec![
                hybrid.qvb,
                hybrid.qvo,
                hybrid.qbr,
                req.host_ifname.clone(),
                req.container_ifname.clone(),
            ],
        }
    }
}

/// Does `host` have `peer` as its veth peer, both in this namespace?
fn is_veth_pair(host: &Link, peer: &Link) -> bool {
    host.is_kind(&InfoKind::Veth)
        && peer.is_kind(&InfoKind::Veth)
        && host.link == Some(peer.index)
        && host.link_netnsid.is_none()
        && peer.link == Some(host.index)
        && peer.link_netnsid.is_none()
}

impl VethBinder {
    pub fn new(cfg: VethConfig) -> VethBinder {
        VethBinder {
            ovs: Ovs::new(&cfg),
            cfg,
            nl: OnceCell::new(),
        }
    }

    pub fn config(&self) -> &VethConfig {
        &self.cfg
    }

    async fn netlink(&self) -> Result<&Netlink, BindError> {
        self.nl
            .get_or_try_init(|| async { Netlink::connect() })
            .await
    }

    pub(crate) async fn bind(&self, req: &BindRequest<'_>) -> Result<(), BindError> {
        let port_id = req.port.id.as_str();
        let plan = match BindPlan::new(&self.cfg, req) {
            Ok(plan) => plan,
            Err(e @ (BindError::NotBound { .. } | BindError::UnsupportedVifType { .. })) => {
                // Nothing was created by this call, but a crashed earlier
                // attempt may have left the pair: the endpoint must not
                // keep devices after a failed CreateEndpoint.
                // The vif_type error is the one worth reporting, even if
                // netlink is unusable too.
                if let Ok(nl) = self.netlink().await {
                    let leftovers = TeardownPlan {
                        ovs_ports: Vec::new(),
                        links: vec![req.host_ifname.clone(), req.container_ifname.clone()],
                    };
                    self.log_rollback(port_id, self.teardown(nl, &leftovers).await);
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let nl = self.netlink().await?;
        let mut ovs_attempted = false;
        match self.plug(nl, req, &plan, &mut ovs_attempted).await {
            Ok(()) => {
                tracing::info!(
                    port_id,
                    host_ifname = %plan.host,
                    container_ifname = %plan.container,
                    vif_type = %req.port.vif_type,
                    mtu = plan.mtu,
                    "port bound"
                );
                Ok(())
            }
            Err(e) => {
                tracing::warn!(port_id, error = %e, "bind failed, rolling back");
                let errors = self.teardown(nl, &plan.rollback(ovs_attempted)).await;
                self.log_rollback(port_id, errors);
                Err(e)
            }
        }
    }

    fn log_rollback(&self, port_id: &str, errors: Vec<BindError>) {
        for e in errors {
            tracing::warn!(port_id, error = %e, "rollback step failed");
        }
    }

    async fn plug(
        &self,
        nl: &Netlink,
        req: &BindRequest<'_>,
        plan: &BindPlan,
        ovs_attempted: &mut bool,
    ) -> Result<(), BindError> {
        ensure_veth(
            nl,
            &VethSpec {
                name: &plan.host,
                peer: &plan.container,
                peer_mac: Some(plan.mac),
                mtu: plan.mtu,
                // Docker sets the container end up in the sandbox.
                peer_up: false,
                alias: Some(&crate::names::host_link_alias(&req.port.id)),
            },
        )
        .await?;

        if plan.tx_csum_off {
            // Userspace OVS forwards CHECKSUM_PARTIAL frames without ever
            // filling in the L4 checksum (ICMP works, TCP/UDP do not): make
            // the container end checksum in software. The setting survives
            // the move into the sandbox.
            ethtool_ioctl::set_tx_checksum(&plan.container, false).map_err(|source| {
                BindError::Ethtool {
                    ifname: plan.container.clone(),
                    source,
                }
            })?;
        }

        match &plan.plug {
            Plug::Nothing => Ok(()),
            Plug::LinuxBridge { bridge } => {
                // The linuxbridge agent creates `brq` for the network but
                // skips `addif` for compute ports: that is ours to do.
                let br = ensure_bridge(nl, bridge).await?;
                let tap = must_link(nl, &plan.host).await?;
                nl.set_master_up(&tap, &br).await
            }
            Plug::Ovs {
                bridge,
                dev,
                hybrid,
            } => {
                if let Some(h) = hybrid {
                    let qbr = ensure_bridge(nl, &h.qbr).await?;
                    let tap = must_link(nl, &plan.host).await?;
                    nl.set_master_up(&tap, &qbr).await?;
                    ensure_veth(
                        nl,
                        &VethSpec {
                            name: &h.qvb,
                            peer: &h.qvo,
                            peer_mac: None,
                            mtu: plan.mtu,
                            peer_up: true,
                            alias: None,
                        },
                    )
                    .await?;
                    let qvb = must_link(nl, &h.qvb).await?;
                    nl.set_master_up(&qvb, &qbr).await?;
                }
                let mac = vif::format_mac(&plan.mac);
                let ids = IfaceIds {
                    port_id: &req.port.id,
                    mac: &mac,
                    endpoint_id: req.endpoint_id,
                };
                *ovs_attempted = true;
                self.ovs.add_port(bridge, dev, &ids).await
            }
        }
    }

    /// Does a link of this name exist in the host namespace?
    /// The host sides kuryr made on this host: veth host ends carrying a
    /// port's alias, and OVS interfaces with `owner=kuryr`.
    pub(crate) async fn host_sides(&self) -> Result<Vec<super::HostSide>, BindError> {
        let mut found = Vec::new();
        for link in self.netlink().await?.links().await? {
            if let Some(port) = link
                .alias
                .as_deref()
                .and_then(crate::names::port_of_host_link_alias)
            {
                found.push(super::HostSide {
                    port_id: port.to_string(),
                    what: format!("host link {}", link.name),
                });
            }
        }
        for (name, port) in self.ovs.owned_interfaces().await? {
            if let Some(port) = port {
                found.push(super::HostSide {
                    port_id: port,
                    what: format!("OVS interface {name}"),
                });
            }
        }
        Ok(found)
    }

    pub(crate) async fn has_link(&self, name: &str) -> Result<bool, BindError> {
        Ok(self.netlink().await?.link(name).await?.is_some())
    }

    pub(crate) async fn unbind(&self, req: &UnbindRequest<'_>) -> Result<(), BindError> {
        check_names(req.port_id, &req.host_ifname, &req.container_ifname)?;
        let nl = self.netlink().await?;
        let errors = self.teardown(nl, &TeardownPlan::unbind(req)).await;
        if errors.is_empty() {
            tracing::info!(
                port_id = req.port_id,
                host_ifname = %req.host_ifname,
                vif_type = req.vif_type,
                "port unbound"
            );
            Ok(())
        } else {
            Err(BindError::Teardown {
                port_id: req.port_id.to_string(),
                errors,
            })
        }
    }

    /// Run every step of `td`, collecting failures instead of stopping.
    async fn teardown(&self, nl: &Netlink, td: &TeardownPlan) -> Vec<BindError> {
        let mut errors = Vec::new();
        if !td.ovs_ports.is_empty()
            && let Err(e) = self.ovs.del_ports(&td.ovs_ports).await
        {
            errors.push(e);
        }
        for name in &td.links {
            match nl.delete(name).await {
                Ok(true) => tracing::debug!(ifname = %name, "deleted"),
                Ok(false) => {}
                Err(e) => errors.push(e),
            }
        }
        errors
    }
}

async fn must_link(nl: &Netlink, name: &str) -> Result<Link, BindError> {
    nl.link(name).await?.ok_or_else(|| BindError::Vanished {
        ifname: name.to_string(),
    })
}

/// Make `spec` exist exactly once: adopt a correct pair (fixing MAC, MTU,
/// state), replace anything else that holds either name.
async fn ensure_veth(nl: &Netlink, spec: &VethSpec<'_>) -> Result<(), BindError> {
    let host = nl.link(spec.name).await?;
    let peer = nl.link(spec.peer).await?;
    if let (Some(h), Some(p)) = (&host, &peer)
        && is_veth_pair(h, p)
    {
        if let Some(mac) = spec.peer_mac
            && p.mac.as_deref() != Some(&mac[..])
        {
            nl.set_mac(p, mac).await?;
        }
        if p.mtu != Some(spec.mtu) {
            nl.set_mtu(p, spec.mtu).await?;
        }
        if h.mtu != Some(spec.mtu) {
            nl.set_mtu(h, spec.mtu).await?;
        }
        if !h.up {
            nl.set_up(h).await?;
        }
        if spec.peer_up && !p.up {
            nl.set_up(p).await?;
        }
        tracing::debug!(
            host = spec.name,
            peer = spec.peer,
            "adopted existing veth pair"
        );
        return Ok(());
    }
    // A half pair, a pair with another peer, or another kind of device:
    // deleting a veth end also deletes its peer, so the peer name may
    // already be free by the time we get to it.
    for l in [&host, &peer].into_iter().flatten() {
        tracing::warn!(
            ifname = %l.name,
            kind = %l.kind_name(),
            "replacing a leftover device"
        );
        nl.delete(&l.name).await?;
    }
    nl.create_veth(spec).await?;
    if spec.peer_up {
        let peer = must_link(nl, spec.peer).await?;
        nl.set_up(&peer).await?;
    }
    Ok(())
}

/// Make the Linux bridge `name` exist and be up. An existing bridge (the
/// agent's, or from an earlier bind) is reused as is.
async fn ensure_bridge(nl: &Netlink, name: &str) -> Result<Link, BindError> {
    match nl.link(name).await? {
        Some(l) if l.is_kind(&InfoKind::Bridge) => {
            if !l.up {
                nl.set_up(&l).await?;
            }
            Ok(l)
        }
        Some(l) => Err(BindError::WrongKind {
            ifname: name.to_string(),
            found: l.kind_name(),
            expected: "bridge",
        }),
        None => {
            // `false` means a concurrent bind made it first: fine too.
            nl.create_bridge(name).await?;
            must_link(nl, name).await
        }
    }
}

#[cfg(test)]
mod tests;
