//! The few rtnetlink operations the binder needs, with errors that name
//! the device, and "not found" folded into `Option`/`bool` where the caller
//! wants idempotence.

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{
    BridgeStpState, InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth};

use super::BindError;

/// Kernel errno of a netlink failure (positive, e.g. `libc::ENODEV`).
pub(crate) fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| c.get().abs()),
        _ => None,
    }
}

fn is_errno(e: &rtnetlink::Error, code: i32) -> bool {
    errno(e) == Some(code)
}

/// What we need to know about an existing link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub index: u32,
    pub name: String,
    pub kind: Option<InfoKind>,
    pub mac: Option<Vec<u8>>,
    pub mtu: Option<u32>,
    pub up: bool,
    /// IFLA_LINK: for a veth, the peer's ifindex.
    pub link: Option<u32>,
    /// IFLA_LINK_NETNSID: set when `link` is in another namespace.
    pub link_netnsid: Option<i32>,
    /// IFLA_MASTER.
    pub master: Option<u32>,
}

impl Link {
    fn from_message(msg: LinkMessage) -> Link {
        let mut l = Link {
            index: msg.header.index,
            name: String::new(),
            kind: None,
            mac: None,
            mtu: None,
            up: msg.header.flags.contains(LinkFlags::Up),
            link: None,
            link_netnsid: None,
            master: None,
        };
        for attr in msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => l.name = n,
                LinkAttribute::Address(a) => l.mac = Some(a),
                LinkAttribute::Mtu(m) => l.mtu = Some(m),
                LinkAttribute::Link(i) => l.link = Some(i),
                LinkAttribute::LinkNetNsId(i) => l.link_netnsid = Some(i),
                LinkAttribute::Controller(i) if i != 0 => l.master = Some(i),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Kind(k) = info {
                            l.kind = Some(k);
                        }
                    }
                }
                _ => {}
            }
        }
        l
    }

    pub fn is_kind(&self, kind: &InfoKind) -> bool {
        self.kind.as_ref() == Some(kind)
    }

    /// For error messages: "veth", "bridge", "device of unknown kind".
    pub fn kind_name(&self) -> String {
        match &self.kind {
            Some(k) => k.to_string(),
            None => "plain (no link kind)".to_string(),
        }
    }
}

/// A veth pair to create in one RTM_NEWLINK.
#[derive(Debug, Clone)]
pub(crate) struct VethSpec<'a> {
    pub name: &'a str,
    pub peer: &'a str,
    pub peer_mac: Option<[u8; 6]>,
    pub mtu: u32,
    pub peer_up: bool,
}

/// A handle on the rtnetlink connection of the host namespace.
#[derive(Clone)]
pub(crate) struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Open the socket (in the calling thread's network namespace) and
    /// spawn its connection task on the current tokio runtime.
    pub fn connect() -> Result<Netlink, BindError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(BindError::NetlinkSocket)?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// The link called `name`, or `None` if there is none.
    pub async fn link(&self, name: &str) -> Result<Option<Link>, BindError> {
        let mut stream = self.handle.link().get().match_name(name).execute();
        match stream.try_next().await {
            Ok(Some(msg)) => Ok(Some(Link::from_message(msg))),
            Ok(None) => Ok(None),
            Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
            Err(source) => Err(BindError::Netlink {
                action: "look up",
                ifname: name.to_string(),
                source,
            }),
        }
    }

    /// Create a veth pair, both ends with `mtu`, the peer with its MAC, the
    /// first end up: one request, so no half-configured pair is visible.
    /// (`spec.peer_up` is not applied here: the kernel opens the peer before
    /// the pair is linked, and veth_open then fails with ENOTCONN.)
    pub async fn create_veth(&self, spec: &VethSpec<'_>) -> Result<(), BindError> {
        let mut peer = LinkUnspec::new_with_name(spec.peer).mtu(spec.mtu);
        if let Some(mac) = spec.peer_mac {
            peer = peer.address(mac.to_vec());
        }
        let msg = LinkVeth::new(spec.name, spec.peer)
            .mtu(spec.mtu)
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|source| BindError::Netlink {
                action: "create veth pair",
                ifname: format!("{}/{}", spec.name, spec.peer),
                source,
            })
    }

    /// Create a Linux bridge with forwarding delay 0 and STP off, up
    /// (`brctl setfd 0; brctl stp off`, as kuryr's scripts do). Returns
    /// `false` if it already existed (a concurrent bind made it).
    pub async fn create_bridge(&self, name: &str) -> Result<bool, BindError> {
        let msg = LinkBridge::new(name)
            .forward_delay(0)
            .stp_state(BridgeStpState::Disabled)
            .build();
        match self.handle.link().add(msg).execute().await {
            Ok(()) => Ok(true),
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(false),
            Err(source) => Err(BindError::Netlink {
                action: "create bridge",
                ifname: name.to_string(),
                source,
            }),
        }
    }

    async fn set(
        &self,
        action: &'static str,
        link: &Link,
        msg: LinkMessage,
    ) -> Result<(), BindError> {
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|source| BindError::Netlink {
                action,
                ifname: link.name.clone(),
                source,
            })
    }

    pub async fn set_mtu(&self, link: &Link, mtu: u32) -> Result<(), BindError> {
        let msg = LinkUnspec::new_with_index(link.index).mtu(mtu).build();
        self.set("set the MTU of", link, msg).await
    }

    pub async fn set_mac(&self, link: &Link, mac: [u8; 6]) -> Result<(), BindError> {
        let msg = LinkUnspec::new_with_index(link.index)
            .address(mac.to_vec())
            .build();
        self.set("set the MAC address of", link, msg).await
    }

    pub async fn set_up(&self, link: &Link) -> Result<(), BindError> {
        let msg = LinkUnspec::new_with_index(link.index).up().build();
        self.set("bring up", link, msg).await
    }

    /// Enslave `link` to `master` and bring it up (`ip link set <link>
    /// master <master> up`). A no-op if that is already so.
    pub async fn set_master_up(&self, link: &Link, master: &Link) -> Result<(), BindError> {
        if link.master == Some(master.index) && link.up {
            return Ok(());
        }
        let msg = LinkUnspec::new_with_index(link.index)
            .controller(master.index)
            .up()
            .build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|source| BindError::Netlink {
                action: "enslave",
                ifname: format!("{} to {}", link.name, master.name),
                source,
            })
    }

    /// Delete the link called `name`. `Ok(false)` if there was none.
    /// Deleting one end of a veth deletes its peer too, wherever it is.
    pub async fn delete(&self, name: &str) -> Result<bool, BindError> {
        let msg = LinkUnspec::new_with_name(name).build();
        match self.handle.link().del_with_message(msg).execute().await {
            Ok(()) => Ok(true),
            Err(e) if is_errno(&e, libc::ENODEV) => Ok(false),
            Err(source) => Err(BindError::Netlink {
                action: "delete",
                ifname: name.to_string(),
                source,
            }),
        }
    }
}
