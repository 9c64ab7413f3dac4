//! The few rtnetlink operations the binder needs, with errors that name
//! the device, and "not found" folded into `Option`/`bool` where the caller
//! wants idempotence.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::path::Path;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{
    BridgeStpState, InfoData, InfoIpVlan, InfoKind, InfoMacVlan, InfoVeth, InfoVlan, IpVlanMode,
    LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
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
    /// `macvlan` mode.
    pub macvlan_mode: Option<MacVlanMode>,
    /// `ipvlan` mode.
    pub ipvlan_mode: Option<IpVlanMode>,
    /// `vlan` (802.1Q) id.
    pub vlan_id: Option<u16>,
    /// IFLA_IFALIAS (`ip link set DEV alias ...`).
    pub alias: Option<String>,
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
            macvlan_mode: None,
            ipvlan_mode: None,
            vlan_id: None,
            alias: None,
        };
        for attr in msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => l.name = n,
                LinkAttribute::Address(a) => l.mac = Some(a),
                LinkAttribute::Mtu(m) => l.mtu = Some(m),
                LinkAttribute::Link(i) => l.link = Some(i),
                LinkAttribute::LinkNetNsId(i) => l.link_netnsid = Some(i),
                LinkAttribute::Controller(i) if i != 0 => l.master = Some(i),
                LinkAttribute::IfAlias(a) => l.alias = Some(a),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(k) => l.kind = Some(k),
                            LinkInfo::Data(data) => l.read_info_data(data),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        l
    }

    fn read_info_data(&mut self, data: InfoData) {
        match data {
            InfoData::MacVlan(infos) => {
                for i in infos {
                    if let InfoMacVlan::Mode(m) = i {
                        self.macvlan_mode = Some(m);
                    }
                }
            }
            InfoData::IpVlan(infos) => {
                for i in infos {
                    if let InfoIpVlan::Mode(m) = i {
                        self.ipvlan_mode = Some(m);
                    }
                }
            }
            InfoData::Vlan(infos) => {
                for i in infos {
                    if let InfoVlan::Id(id) = i {
                        self.vlan_id = Some(id);
                    }
                }
            }
            _ => {}
        }
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
    /// Alias of the first end, marking it as kuryr's (see
    /// [`crate::names::host_link_alias`]).
    pub alias: Option<&'a str>,
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

    /// Open the socket inside the network namespace at `netns` (a
    /// `/run/netns/NAME` or `/proc/PID/ns/net` path), or in the calling
    /// thread's namespace when `None`, and spawn its connection task.
    ///
    /// The namespace is entered by a short-lived thread of its own, which
    /// creates the socket there and hands its descriptor back: a socket
    /// stays in the namespace it was made in, and no tokio thread ever
    /// changes namespace.
    pub fn connect_in(netns: Option<&Path>) -> Result<Netlink, BindError> {
        let Some(path) = netns else {
            return Netlink::connect();
        };
        let fd = socket_in_netns(path).map_err(|source| BindError::Netns {
            path: path.display().to_string(),
            source,
        })?;
        // SAFETY: `fd` is a netlink socket this process just created and
        // owns; TokioSocket takes over ownership and closes it.
        let socket = unsafe { rtnetlink::sys::TokioSocket::from_raw_fd(fd.into_raw_fd()) };
        let (conn, handle, _) = rtnetlink::from_socket(socket);
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// Every link of the namespace.
    pub async fn links(&self) -> Result<Vec<Link>, BindError> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|source| BindError::Netlink {
                action: "list",
                ifname: "links".to_string(),
                source,
            })?;
        Ok(msgs.into_iter().map(Link::from_message).collect())
    }

    /// Create a link from a prepared RTM_NEWLINK message. `Ok(false)`:
    /// a link with that name already exists (EEXIST). A kind the kernel
    /// does not know (EOPNOTSUPP: "Unknown device type") is reported as
    /// [`BindError::UnsupportedLinkKind`].
    pub async fn create(
        &self,
        kind: &'static str,
        ifname: &str,
        msg: LinkMessage,
    ) -> Result<bool, BindError> {
        match self.handle.link().add(msg).execute().await {
            Ok(()) => Ok(true),
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(false),
            Err(e) if is_errno(&e, libc::EOPNOTSUPP) => {
                Err(BindError::UnsupportedLinkKind { kind })
            }
            Err(source) => Err(BindError::Netlink {
                action: "create",
                ifname: ifname.to_string(),
                source,
            }),
        }
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
        let mut msg = LinkVeth::new(spec.name, spec.peer)
            .mtu(spec.mtu)
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())));
        if let Some(alias) = spec.alias {
            msg = msg.alias(alias);
        }
        let msg = msg.build();
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

    pub async fn set_mtu_and_mac(
        &self,
        link: &Link,
        mtu: Option<u32>,
        mac: Option<[u8; 6]>,
    ) -> Result<(), BindError> {
        let mut msg = LinkUnspec::new_with_index(link.index);
        if let Some(mtu) = mtu {
            msg = msg.mtu(mtu);
        }
        if let Some(mac) = mac {
            msg = msg.address(mac.to_vec());
        }
        self.set("set the MTU and MAC address of", link, msg.build())
            .await
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

/// Create an `AF_NETLINK`/`NETLINK_ROUTE` socket inside the namespace at
/// `path`, from a thread that exists only for that.
fn socket_in_netns(path: &Path) -> io::Result<OwnedFd> {
    let ns = std::fs::File::open(path)?;
    std::thread::Builder::new()
        .name("kuryr-netns".into())
        .spawn(move || {
            // SAFETY: setns only changes this thread's network namespace;
            // `ns` is an open namespace file that outlives the call. The
            // thread ends right after, so no other code runs in it.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: plain syscall with constant arguments; the result is
            // checked before use.
            let fd = unsafe {
                libc::socket(
                    libc::AF_NETLINK,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    libc::NETLINK_ROUTE,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a fresh descriptor nothing else owns.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        })?
        .join()
        .map_err(|_| io::Error::other("the netns thread panicked"))?
}
