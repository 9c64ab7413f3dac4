//! The nested binders: kuryr-lib's `macvlan`, `ipvlan` and `vlan` drivers,
//! for nodes that are Nova VMs without a Neutron agent.
//!
//! The container interface is a sub-interface of the node's NIC (the one
//! holding the VM port), named like the veth binder's container end
//! (`t_c<port[:11]>`, Docker's SrcName) and left down for Docker to move
//! into the sandbox:
//!
//! | kind | device | MAC |
//! |---|---|---|
//! | `macvlan` | macvlan, mode `bridge` (containers of one node reach each other in the kernel) | the port's |
//! | `ipvlan` | ipvlan, mode `l2` | the NIC's (ipvlan cannot have its own) |
//! | `vlan` | 802.1Q sub-interface with the port's trunk segmentation id | the port's |
//!
//! The MTU is the network's, capped by the NIC's. The Neutron side (the VM
//! port's allowed address pairs, the trunk subport) is the driver's job.
//!
//! All of it goes through one rtnetlink socket, opened in the namespace
//! that holds the NIC: the daemon's own, or [`NestedConfig::netns`] (tests,
//! or a driver running outside the node's namespace), entered by a thread
//! of its own (see [`super::netlink::Netlink::connect_in`]).

use std::fmt;
use std::path::{Path, PathBuf};

use rtnetlink::packet_route::link::{
    InfoKind, IpVlanMode, LinkAttribute, LinkMessage, MacVlanMode,
};
use rtnetlink::{LinkIpVlan, LinkMacVlan, LinkVlan};
use tokio::sync::OnceCell;

use super::netlink::{Link, Netlink, VethSpec};
use super::vif;
use super::{BindError, BindRequest, UnbindRequest};

/// Smallest MTU the kernel accepts for IPv4 on an Ethernet device.
const MIN_MTU: u32 = 68;
/// 802.1Q ids usable for subports.
pub const VLAN_IDS: std::ops::RangeInclusive<u16> = 1..=4094;

/// Which sub-interface the nested binder makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NestedKind {
    Macvlan,
    Ipvlan,
    Vlan,
}

impl NestedKind {
    /// The kernel's name of the link kind (`ip link add ... type <this>`).
    pub fn as_str(self) -> &'static str {
        match self {
            NestedKind::Macvlan => "macvlan",
            NestedKind::Ipvlan => "ipvlan",
            NestedKind::Vlan => "vlan",
        }
    }

    fn info_kind(self) -> InfoKind {
        match self {
            NestedKind::Macvlan => InfoKind::MacVlan,
            NestedKind::Ipvlan => InfoKind::IpVlan,
            NestedKind::Vlan => InfoKind::Vlan,
        }
    }

    /// Whether the device gets the port's MAC (ipvlan keeps the NIC's).
    pub fn own_mac(self) -> bool {
        self != NestedKind::Ipvlan
    }
}

impl fmt::Display for NestedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Settings of the nested binder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NestedConfig {
    pub kind: NestedKind,
    /// Network namespace holding the node's NIC (`/run/netns/NAME`,
    /// `/proc/PID/ns/net`); `None`: the daemon's own.
    pub netns: Option<PathBuf>,
}

impl NestedConfig {
    pub fn new(kind: NestedKind) -> NestedConfig {
        NestedConfig { kind, netns: None }
    }

    fn netns_name(&self) -> String {
        netns_name(self.netns.as_deref())
    }
}

fn netns_name(netns: Option<&Path>) -> String {
    match netns {
        Some(p) => format!("network namespace {}", p.display()),
        None => "the host network namespace".to_string(),
    }
}

/// Binds ports as sub-interfaces of the node's NIC; see the module docs.
pub struct NestedBinder {
    cfg: NestedConfig,
    nl: OnceCell<Netlink>,
}

impl fmt::Debug for NestedBinder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NestedBinder")
            .field("cfg", &self.cfg)
            .field("connected", &self.nl.initialized())
            .finish()
    }
}

/// The sub-interface a bind must leave behind.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Want {
    kind: NestedKind,
    name: String,
    parent: u32,
    /// `None` for ipvlan.
    mac: Option<[u8; 6]>,
    mtu: u32,
    /// Set for `vlan` only.
    vlan_id: Option<u16>,
}

/// What to do with a device that already holds the name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Ours (right kind, parent, mode/id): fix what differs and keep it.
    Adopt {
        mtu: Option<u32>,
        mac: Option<[u8; 6]>,
    },
    /// Anything else: delete it and create ours.
    Replace,
}

impl Want {
    fn judge(&self, l: &Link) -> Verdict {
        let same_mode = match self.kind {
            NestedKind::Macvlan => l.macvlan_mode == Some(MacVlanMode::Bridge),
            NestedKind::Ipvlan => l.ipvlan_mode == Some(IpVlanMode::L2),
            NestedKind::Vlan => l.vlan_id == self.vlan_id,
        };
        if !l.is_kind(&self.kind.info_kind())
            || l.link != Some(self.parent)
            || l.link_netnsid.is_some()
            || !same_mode
        {
            return Verdict::Replace;
        }
        Verdict::Adopt {
            mtu: (l.mtu != Some(self.mtu)).then_some(self.mtu),
            mac: self.mac.filter(|m| l.mac.as_deref() != Some(&m[..])),
        }
    }

    /// One RTM_NEWLINK with everything set, the device left down.
    fn message(&self) -> LinkMessage {
        let mut msg = match self.kind {
            NestedKind::Macvlan => LinkMacVlan::new(&self.name, self.parent, MacVlanMode::Bridge)
                .mtu(self.mtu)
                .build(),
            NestedKind::Ipvlan => LinkIpVlan::new(&self.name, self.parent, IpVlanMode::L2)
                .mtu(self.mtu)
                .build(),
            NestedKind::Vlan => {
                LinkVlan::new(&self.name, self.parent, self.vlan_id.unwrap_or_default())
                    .mtu(self.mtu)
                    .build()
            }
        };
        if let Some(mac) = self.mac {
            msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        msg
    }
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

/// Validated pieces of a bind request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Checked<'a> {
    link_iface: &'a str,
    mac: [u8; 6],
    vlan_id: Option<u16>,
}

fn check<'a>(kind: NestedKind, req: &BindRequest<'a>) -> Result<Checked<'a>, BindError> {
    let id = req.port.id.as_str();
    if !vif::is_plain_id(id) {
        return Err(invalid(id, "the port ID has unexpected characters".into()));
    }
    check_ifname(id, "container interface name", &req.container_ifname)?;
    let link_iface = req.link_iface.ok_or_else(|| {
        invalid(
            id,
            "no link interface: the nested binder needs the node's NIC".into(),
        )
    })?;
    check_ifname(id, "link interface", link_iface)?;
    if link_iface == req.container_ifname {
        return Err(invalid(
            id,
            format!("the container interface cannot be the link {link_iface:?} itself"),
        ));
    }
    let mac = vif::parse_mac(&req.port.mac_address)
        .ok_or_else(|| invalid(id, format!("bad MAC address {:?}", req.port.mac_address)))?;
    if req.mtu < MIN_MTU {
        return Err(invalid(id, format!("MTU {} is below {MIN_MTU}", req.mtu)));
    }
    let vlan_id = match (kind, req.vlan_id) {
        (NestedKind::Vlan, Some(v)) if VLAN_IDS.contains(&v) => Some(v),
        (NestedKind::Vlan, Some(v)) => {
            return Err(invalid(id, format!("VLAN id {v} is outside 1..4094")));
        }
        (NestedKind::Vlan, None) => {
            return Err(invalid(
                id,
                "the vlan binding needs the subport's segmentation id".into(),
            ));
        }
        _ => None,
    };
    Ok(Checked {
        link_iface,
        mac,
        vlan_id,
    })
}

impl NestedBinder {
    pub fn new(cfg: NestedConfig) -> NestedBinder {
        NestedBinder {
            cfg,
            nl: OnceCell::new(),
        }
    }

    pub fn config(&self) -> &NestedConfig {
        &self.cfg
    }

    async fn netlink(&self) -> Result<&Netlink, BindError> {
        self.nl
            .get_or_try_init(|| async { Netlink::connect_in(self.cfg.netns.as_deref()) })
            .await
    }

    pub(crate) async fn bind(&self, req: &BindRequest<'_>) -> Result<(), BindError> {
        let kind = self.cfg.kind;
        let port_id = req.port.id.as_str();
        let c = check(kind, req)?;
        let nl = self.netlink().await?;
        let parent = nl
            .link(c.link_iface)
            .await?
            .ok_or_else(|| BindError::LinkNotFound {
                ifname: c.link_iface.to_string(),
                netns: self.cfg.netns_name(),
            })?;
        let want = Want {
            kind,
            name: req.container_ifname.clone(),
            parent: parent.index,
            mac: kind.own_mac().then_some(c.mac),
            // A sub-interface cannot be larger than its parent.
            mtu: parent.mtu.map_or(req.mtu, |m| m.min(req.mtu)),
            vlan_id: c.vlan_id,
        };
        // Twice at most: a concurrent bind may create the name between
        // our lookup and our create (EEXIST), then we adopt its device.
        for _ in 0..2 {
            if let Some(l) = nl.link(&want.name).await? {
                match want.judge(&l) {
                    Verdict::Adopt { mtu, mac } => {
                        if (mtu.is_some() || mac.is_some())
                            && let Err(e) = nl.set_mtu_and_mac(&l, mtu, mac).await
                        {
                            let _ = nl.delete(&want.name).await;
                            return Err(e);
                        }
                        tracing::info!(
                            port_id,
                            ifname = %want.name,
                            kind = %kind,
                            link = c.link_iface,
                            "port bound (adopted an existing device)"
                        );
                        return Ok(());
                    }
                    Verdict::Replace => {
                        tracing::warn!(
                            ifname = %l.name,
                            kind = %l.kind_name(),
                            "replacing a leftover device"
                        );
                        nl.delete(&want.name).await?;
                    }
                }
            }
            if nl.create(kind.as_str(), &want.name, want.message()).await? {
                tracing::info!(
                    port_id,
                    ifname = %want.name,
                    kind = %kind,
                    link = c.link_iface,
                    mtu = want.mtu,
                    vlan_id = want.vlan_id,
                    "port bound"
                );
                return Ok(());
            }
        }
        Err(BindError::Vanished {
            ifname: want.name.clone(),
        })
    }

    pub(crate) async fn unbind(&self, req: &UnbindRequest<'_>) -> Result<(), BindError> {
        if !vif::is_plain_id(req.port_id) {
            return Err(invalid(
                req.port_id,
                "the port ID has unexpected characters".into(),
            ));
        }
        check_ifname(
            req.port_id,
            "container interface name",
            &req.container_ifname,
        )?;
        let nl = self.netlink().await?;
        // Docker moves the device back out of the sandbox at Leave; if the
        // sandbox is gone, so is the device: both are fine.
        let deleted = nl.delete(&req.container_ifname).await?;
        tracing::info!(
            port_id = req.port_id,
            ifname = %req.container_ifname,
            deleted,
            "port unbound"
        );
        Ok(())
    }
}

/// A network interface of the node, as seen when looking for the VM port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLink {
    pub name: String,
    /// Lowercase `aa:bb:..`, if the device has a 6-byte address.
    pub mac: Option<String>,
    /// Link kind (`veth`, `macvlan`, ...), `None` for physical NICs.
    pub kind: Option<String>,
    pub mtu: Option<u32>,
}

impl HostLink {
    /// Could this be the NIC of a VM port? Not loopback, not one of the
    /// container sub-interfaces, not a bridge.
    pub fn may_be_vm_nic(&self) -> bool {
        self.name != "lo"
            && !self.name.starts_with(crate::names::CONTAINER_VETH_PREFIX)
            && self
                .mac
                .as_deref()
                .is_some_and(|m| m != "00:00:00:00:00:00")
            && !matches!(
                self.kind.as_deref(),
                Some("macvlan" | "ipvlan" | "vlan" | "bridge" | "openvswitch")
            )
    }
}

/// The links of `netns` (`None`: the caller's namespace).
pub async fn host_links(netns: Option<&Path>) -> Result<Vec<HostLink>, BindError> {
    let nl = Netlink::connect_in(netns)?;
    let links = nl.links().await?;
    Ok(links
        .into_iter()
        .map(|l| HostLink {
            mac: l
                .mac
                .as_deref()
                .filter(|m| m.len() == 6)
                .map(vif::format_mac),
            kind: l.kind.as_ref().map(|k| k.to_string()),
            mtu: l.mtu,
            name: l.name,
        })
        .collect())
}

/// Can this kernel create `kind` devices? Tried for real, in a throwaway
/// network namespace (a veth pair and a sub-interface on it), from a
/// thread of its own. `Ok(false)`: the kernel answers "Unknown device
/// type". Needs CAP_SYS_ADMIN and CAP_NET_ADMIN; an `Err` means the probe
/// itself could not run.
pub fn probe_link_kind(kind: NestedKind) -> std::io::Result<bool> {
    std::thread::Builder::new()
        .name("kuryr-probe".into())
        .spawn(move || {
            // SAFETY: unshare(CLONE_NEWNET) only changes this thread's
            // network namespace, which dies with the thread.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()?;
            rt.block_on(probe_in_current_netns(kind))
                .map_err(|e| std::io::Error::other(e.to_string()))
        })?
        .join()
        .map_err(|_| std::io::Error::other("the probe thread panicked"))?
}

async fn probe_in_current_netns(kind: NestedKind) -> Result<bool, BindError> {
    let nl = Netlink::connect()?;
    nl.create_veth(&VethSpec {
        name: "kprobe0",
        peer: "kprobe1",
        peer_mac: None,
        mtu: 1500,
        peer_up: false,
        alias: None,
    })
    .await?;
    let parent = nl.link("kprobe0").await?.ok_or(BindError::Vanished {
        ifname: "kprobe0".into(),
    })?;
    let want = Want {
        kind,
        name: "kprobe0.sub".into(),
        parent: parent.index,
        mac: kind.own_mac().then_some([0x02, 0, 0, 0, 0, 1]),
        mtu: 1500,
        vlan_id: (kind == NestedKind::Vlan).then_some(100),
    };
    match nl.create(kind.as_str(), &want.name, want.message()).await {
        Ok(_) => Ok(true),
        Err(BindError::UnsupportedLinkKind { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuryr_openstack::neutron::Port;

    const PORT: &str = "3f1e2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b";
    const MAC: [u8; 6] = [0xfa, 0x16, 0x3e, 0x12, 0x34, 0x56];

    fn port() -> Port {
        Port {
            id: PORT.into(),
            mac_address: "FA:16:3E:12:34:56".into(),
            ..Default::default()
        }
    }

    fn req<'a>(p: &'a Port, vlan_id: Option<u16>) -> BindRequest<'a> {
        BindRequest {
            port: p,
            endpoint_id: "e",
            mtu: 1450,
            host_ifname: vif::host_ifname(&p.id),
            container_ifname: vif::container_ifname(&p.id),
            link_iface: Some("eth0"),
            vlan_id,
        }
    }

    fn link(kind: Option<InfoKind>, parent: u32) -> Link {
        Link {
            index: 7,
            name: "t_c3f1e2a4b-5c".into(),
            kind,
            mac: Some(MAC.to_vec()),
            mtu: Some(1450),
            up: false,
            link: Some(parent),
            link_netnsid: None,
            master: None,
            macvlan_mode: None,
            ipvlan_mode: None,
            vlan_id: None,
            alias: None,
        }
    }

    fn want(kind: NestedKind) -> Want {
        Want {
            kind,
            name: "t_c3f1e2a4b-5c".into(),
            parent: 2,
            mac: kind.own_mac().then_some(MAC),
            mtu: 1450,
            vlan_id: (kind == NestedKind::Vlan).then_some(42),
        }
    }

    #[test]
    fn requests_are_checked() {
        let p = port();
        let c = check(NestedKind::Macvlan, &req(&p, None)).unwrap();
        assert_eq!(c.link_iface, "eth0");
        assert_eq!(c.mac, MAC);
        assert_eq!(c.vlan_id, None);
        assert_eq!(
            check(NestedKind::Vlan, &req(&p, Some(42))).unwrap().vlan_id,
            Some(42)
        );
        for bad in [None, Some(0), Some(4095)] {
            let e = check(NestedKind::Vlan, &req(&p, bad)).unwrap_err();
            assert!(matches!(e, BindError::InvalidRequest { .. }), "{e}");
        }
        let mut r = req(&p, None);
        r.link_iface = None;
        assert!(check(NestedKind::Macvlan, &r).is_err());
        let mut r = req(&p, None);
        r.link_iface = Some("a-much-too-long-name");
        assert!(check(NestedKind::Macvlan, &r).is_err());
        let mut r = req(&p, None);
        r.mtu = 10;
        assert!(check(NestedKind::Macvlan, &r).is_err());
        let mut bad_mac = port();
        bad_mac.mac_address = "fa:16".into();
        assert!(check(NestedKind::Ipvlan, &req(&bad_mac, None)).is_err());
    }

    #[test]
    fn a_matching_device_is_adopted_and_repaired() {
        let w = want(NestedKind::Macvlan);
        let mut l = link(Some(InfoKind::MacVlan), 2);
        l.macvlan_mode = Some(MacVlanMode::Bridge);
        assert_eq!(
            w.judge(&l),
            Verdict::Adopt {
                mtu: None,
                mac: None
            }
        );
        l.mtu = Some(1500);
        l.mac = Some(vec![2, 0, 0, 0, 0, 1]);
        assert_eq!(
            w.judge(&l),
            Verdict::Adopt {
                mtu: Some(1450),
                mac: Some(MAC)
            }
        );

        // ipvlan keeps the NIC's MAC: a different MAC is no reason to act.
        let w = want(NestedKind::Ipvlan);
        let mut l = link(Some(InfoKind::IpVlan), 2);
        l.ipvlan_mode = Some(IpVlanMode::L2);
        l.mac = Some(vec![2, 0, 0, 0, 0, 1]);
        assert_eq!(
            w.judge(&l),
            Verdict::Adopt {
                mtu: None,
                mac: None
            }
        );

        let w = want(NestedKind::Vlan);
        let mut l = link(Some(InfoKind::Vlan), 2);
        l.vlan_id = Some(42);
        assert_eq!(
            w.judge(&l),
            Verdict::Adopt {
                mtu: None,
                mac: None
            }
        );
    }

    #[test]
    fn anything_else_is_replaced() {
        let w = want(NestedKind::Macvlan);
        let mut ok = link(Some(InfoKind::MacVlan), 2);
        ok.macvlan_mode = Some(MacVlanMode::Bridge);
        let cases = [
            Link {
                kind: Some(InfoKind::Veth),
                ..ok.clone()
            },
            Link {
                kind: None,
                ..ok.clone()
            },
            Link {
                link: Some(3),
                ..ok.clone()
            },
            Link {
                link_netnsid: Some(0),
                ..ok.clone()
            },
            Link {
                macvlan_mode: Some(MacVlanMode::Vepa),
                ..ok.clone()
            },
        ];
        for l in cases {
            assert_eq!(w.judge(&l), Verdict::Replace, "{l:?}");
        }
        let w = want(NestedKind::Vlan);
        let mut l = link(Some(InfoKind::Vlan), 2);
        l.vlan_id = Some(43);
        assert_eq!(w.judge(&l), Verdict::Replace, "another VLAN id");
        let w = want(NestedKind::Ipvlan);
        let mut l = link(Some(InfoKind::IpVlan), 2);
        l.ipvlan_mode = Some(IpVlanMode::L3);
        assert_eq!(w.judge(&l), Verdict::Replace, "ipvlan in L3 mode");
    }

    #[test]
    fn candidate_nics() {
        let l = |name: &str, mac: Option<&str>, kind: Option<&str>| HostLink {
            name: name.into(),
            mac: mac.map(str::to_string),
            kind: kind.map(str::to_string),
            mtu: Some(1500),
        };
        assert!(l("eth0", Some("fa:16:3e:00:00:01"), None).may_be_vm_nic());
        assert!(l("ens3", Some("fa:16:3e:00:00:01"), Some("veth")).may_be_vm_nic());
        assert!(!l("lo", Some("00:00:00:00:00:00"), None).may_be_vm_nic());
        assert!(!l("t_c3f1e2a4b-5c", Some("fa:16:3e:00:00:02"), None).may_be_vm_nic());
        assert!(!l("mv0", Some("fa:16:3e:00:00:02"), Some("macvlan")).may_be_vm_nic());
        assert!(!l("docker0", Some("02:42:00:00:00:01"), Some("bridge")).may_be_vm_nic());
        assert!(!l("tun0", None, Some("tun")).may_be_vm_nic());
    }
}
