//! Real-kernel tests of the veth binder.
//!
//! Each test moves its own thread into a fresh network namespace
//! (`unshare(CLONE_NEWNET)`) before it builds its runtime and netlink
//! socket, so nothing touches the host's interfaces; this works both under
//! nextest (a process per test) and plain `cargo test` (a thread per test:
//! the namespace is per thread). The OVS tests run a private `ovsdb-server`
//! on a unix socket in a temporary directory ([`OvsdbServer`]) and point
//! the binder's OVSDB client at it, not waiting for an ovs-vswitchd.
//!
//! They need root (netlink, `unshare`) and fail without it, saying so.

mod common;

use common::netns::in_netns;
use futures_util::TryStreamExt;
use kuryr::binding::{self, BindError, BindRequest, Binder, UnbindRequest, VethConfig};
use kuryr_openstack::neutron::Port;
use kuryr_test_support::OvsdbServer;
use rtnetlink::packet_route::link::{
    BridgeStpState, InfoBridge, InfoData, InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth};
use serde_json::{Map, Value, json};

const PORT: &str = "3f1e2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b";
const PORT2: &str = "77aa88bb-99cc-4dde-8eff-001122334455";
const NET: &str = "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d";
const EP: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const MAC: &str = "FA:16:3E:AA:BB:CC";
const MAC_BYTES: [u8; 6] = [0xfa, 0x16, 0x3e, 0xaa, 0xbb, 0xcc];

const TAP: &str = "tap3f1e2a4b-5c";
const TC: &str = "t_c3f1e2a4b-5c";
const BRQ: &str = "brq9a8b7c6d-5e";
const QBR: &str = "qbr3f1e2a4b-5c";
const QVB: &str = "qvb3f1e2a4b-5c";
const QVO: &str = "qvo3f1e2a4b-5c";

fn port(id: &str, vif_type: &str, details: Value) -> Port {
    Port {
        id: id.into(),
        network_id: NET.into(),
        mac_address: MAC.into(),
        vif_type: vif_type.into(),
        vif_details: details.as_object().cloned().unwrap_or_default(),
        ..Default::default()
    }
}

fn bind_req(p: &Port, mtu: u32) -> BindRequest<'_> {
    BindRequest {
        port: p,
        endpoint_id: EP,
        mtu,
        host_ifname: binding::vif::host_ifname(&p.id),
        container_ifname: binding::vif::container_ifname(&p.id),
        link_iface: None,
        vlan_id: None,
    }
}

fn unbind_req<'a>(
    p: &'a Port,
    vif_type: &'a str,
    details: &'a Map<String, Value>,
) -> UnbindRequest<'a> {
    UnbindRequest {
        port_id: &p.id,
        network_id: &p.network_id,
        host_ifname: binding::vif::host_ifname(&p.id),
        container_ifname: binding::vif::container_ifname(&p.id),
        vif_type,
        vif_details: details,
    }
}

// ---------- netlink inspection ----------

#[derive(Debug, Clone)]
struct L {
    index: u32,
    kind: Option<InfoKind>,
    mac: Vec<u8>,
    mtu: u32,
    up: bool,
    peer: Option<u32>,
    master: Option<u32>,
    bridge: Vec<InfoBridge>,
}

impl L {
    fn from(msg: LinkMessage) -> L {
        let mut l = L {
            index: msg.header.index,
            kind: None,
            mac: vec![],
            mtu: 0,
            up: msg.header.flags.contains(LinkFlags::Up),
            peer: None,
            master: None,
            bridge: vec![],
        };
        for a in msg.attributes {
            match a {
                LinkAttribute::Address(m) => l.mac = m,
                LinkAttribute::Mtu(m) => l.mtu = m,
                LinkAttribute::Link(i) => l.peer = Some(i),
                LinkAttribute::Controller(i) if i != 0 => l.master = Some(i),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        match i {
                            LinkInfo::Kind(k) => l.kind = Some(k),
                            LinkInfo::Data(InfoData::Bridge(b)) => l.bridge = b,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        l
    }
}

async fn nl() -> Handle {
    let (conn, handle, _) = rtnetlink::new_connection().expect("netlink socket");
    tokio::spawn(conn);
    handle
}

async fn link(h: &Handle, name: &str) -> Option<L> {
    let mut s = h.link().get().match_name(name).execute();
    match s.try_next().await {
        Ok(Some(m)) => Some(L::from(m)),
        Ok(None) => None,
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => None,
        Err(e) => panic!("get {name}: {e}"),
    }
}

async fn must(h: &Handle, name: &str) -> L {
    link(h, name)
        .await
        .unwrap_or_else(|| panic!("{name} does not exist"))
}

/// Every link name in the namespace but `lo`.
async fn names(h: &Handle) -> Vec<String> {
    let msgs: Vec<LinkMessage> = h.link().get().execute().try_collect().await.unwrap();
    let mut out: Vec<String> = msgs
        .into_iter()
        .filter_map(|m| {
            m.attributes.into_iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n),
                _ => None,
            })
        })
        .filter(|n| n != "lo")
        .collect();
    out.sort();
    out
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// The pair is there exactly as a bind with `mtu` must leave it.
async fn assert_pair(h: &Handle, mtu: u32) -> (L, L) {
    let host = must(h, TAP).await;
    let cont = must(h, TC).await;
    assert_eq!(host.kind, Some(InfoKind::Veth));
    assert_eq!(cont.kind, Some(InfoKind::Veth));
    assert_eq!(
        host.peer,
        Some(cont.index),
        "{TAP} must be the peer of {TC}"
    );
    assert_eq!(cont.peer, Some(host.index));
    assert_eq!(cont.mac, MAC_BYTES, "container end MAC");
    assert_eq!(host.mtu, mtu, "host end MTU");
    assert_eq!(cont.mtu, mtu, "container end MTU");
    assert!(host.up, "host end must be up");
    (host, cont)
}

// ---------- veth + tap / bridge ----------

#[test]
fn tap_creates_the_pair() {
    in_netns("tap_creates_the_pair", || async {
        let h = nl().await;
        let b = Binder::veth(VethConfig::default());
        let p = port(PORT, "tap", json!({}));
        b.bind(&bind_req(&p, 1450)).await.unwrap();
        let (host, _) = assert_pair(&h, 1450).await;
        assert_eq!(host.master, None, "tap must stay unplugged");
        assert_eq!(names(&h).await, sorted(&[TAP, TC]));
        // Without a userspace datapath, checksum offload is left alone.
        assert!(binding::tx_checksum(TC).unwrap());
    });
}

#[test]
fn bind_twice_adopts_and_repairs() {
    in_netns("bind_twice_adopts_and_repairs", || async {
        let h = nl().await;
        let b = Binder::veth(VethConfig::default());
        let p = port(PORT, "tap", json!({}));
        b.bind(&bind_req(&p, 1400)).await.unwrap();
        let (h1, c1) = assert_pair(&h, 1400).await;

        b.bind(&bind_req(&p, 1400)).await.unwrap();
        let (h2, c2) = assert_pair(&h, 1400).await;
        assert_eq!(
            (h1.index, c1.index),
            (h2.index, c2.index),
            "pair must be adopted"
        );
        assert_eq!(names(&h).await, sorted(&[TAP, TC]), "no duplicate");

        // Damage it: wrong MAC and MTU on the container end, host end down.
        h.link()
            .set(
                LinkUnspec::new_with_index(c2.index)
                    .mtu(1300)
                    .address(vec![0x02, 0, 0, 0, 0, 1])
                    .build(),
            )
            .execute()
            .await
            .unwrap();
        h.link()
            .set(
                LinkUnspec::new_with_index(h2.index)
                    .mtu(1280)
                    .down()
                    .build(),
            )
            .execute()
            .await
            .unwrap();
        // A retry with a new MTU converges, still on the same devices.
        b.bind(&bind_req(&p, 1450)).await.unwrap();
        let (h3, c3) = assert_pair(&h, 1450).await;
        assert_eq!((h1.index, c1.index), (h3.index, c3.index));
        assert_eq!(names(&h).await, sorted(&[TAP, TC]));
    });
}

#[test]
fn leftover_half_pair_is_replaced() {
    in_netns("leftover_half_pair_is_replaced", || async {
        let h = nl().await;
        // A host end whose peer is some other device.
        h.link()
            .add(LinkVeth::new(TAP, "stale0").build())
            .execute()
            .await
            .unwrap();
        let b = Binder::veth(VethConfig::default());
        let p = port(PORT, "tap", json!({}));
        b.bind(&bind_req(&p, 1500)).await.unwrap();
        assert_pair(&h, 1500).await;
        assert_eq!(
            names(&h).await,
            sorted(&[TAP, TC]),
            "stale0 went with the old tap"
        );
    });
}

#[test]
fn leftover_wrong_kind_is_replaced() {
    in_netns("leftover_wrong_kind_is_replaced", || async {
        let h = nl().await;
        // The container name taken by a bridge, and no host end.
        h.link()
            .add(LinkBridge::new(TC).build())
            .execute()
            .await
            .unwrap();
        let b = Binder::veth(VethConfig::default());
        let p = port(PORT, "tap", json!({}));
        b.bind(&bind_req(&p, 1500)).await.unwrap();
        assert_pair(&h, 1500).await;
        assert_eq!(names(&h).await, sorted(&[TAP, TC]));
    });
}

#[test]
fn netdev_datapath_turns_tx_checksum_off() {
    in_netns("netdev_datapath_turns_tx_checksum_off", || async {
        let h = nl().await;
        let b = Binder::veth(VethConfig::default());
        let p = port(PORT, "tap", json!({"datapath_type": "netdev"}));
        b.bind(&bind_req(&p, 1500)).await.unwrap();
        assert_pair(&h, 1500).await;
        assert!(!binding::tx_checksum(TC).unwrap(), "container end: tx off");
        assert!(binding::tx_checksum(TAP).unwrap(), "host end untouched");
        // Idempotent too.
        b.bind(&bind_req(&p, 1500)).await.unwrap();
        assert!(!binding::tx_checksum(TC).unwrap());
    });
}

#[test]
fn bridge_creates_brq_and_enslaves_the_tap() {
    in_netns("bridge_creates_brq_and_enslaves_the_tap", || async {
        let h = nl().await;
        let b = Binder::veth(VethConfig::default());
        let p = port(PORT, "bridge", json!({"port_filter": true}));
        b.bind(&bind_req(&p, 1450)).await.unwrap();
        let (host, _) = assert_pair(&h, 1450).await;
        let brq = must(&h, BRQ).await;
        assert_eq!(brq.kind, Some(InfoKind::Bridge));
        assert!(brq.up, "brq must be up");
        assert!(
            brq.bridge.contains(&InfoBridge::ForwardDelay(0)),
            "{:?}",
            brq.bridge
        );
        assert!(
            brq.bridge
                .contains(&InfoBridge::StpState(BridgeStpState::Disabled)),
            "{:?}",
            brq.bridge
        );
        assert_eq!(host.master, Some(brq.index));

        // Again, and a second port of the same network shares the bridge.
        b.bind(&bind_req(&p, 1450)).await.unwrap();
        let p2 = port(PORT2, "bridge", json!({}));
        b.bind(&bind_req(&p2, 1450)).await.unwrap();
        let brq2 = must(&h, BRQ).await;
        assert_eq!(brq2.index, brq.index);
        assert_eq!(must(&h, TAP).await.master, Some(brq.index));
        assert_eq!(must(&h, "tap77aa88bb-99").await.master, Some(brq.index));
        assert_eq!(
            names(&h).await,
            sorted(&[TAP, TC, BRQ, "tap77aa88bb-99", "t_c77aa88bb-99"])
        );

        // Unbind leaves the agent's bridge alone.
        let empty = Map::new();
        b.unbind(&unbind_req(&p, "bridge", &empty)).await.unwrap();
        assert_eq!(
            names(&h).await,
            sorted(&[BRQ, "tap77aa88bb-99", "t_c77aa88bb-99"])
        );
    });
}

#[test]
fn bridge_reuses_an_existing_brq_and_refuses_a_non_bridge() {
    in_netns("bridge_reuses_an_existing_brq", || async {
        let h = nl().await;
        // The agent made the bridge first (with its own settings).
        h.link()
            .add(LinkBridge::new(BRQ).build())
            .execute()
            .await
            .unwrap();
        let pre = must(&h, BRQ).await;
        let b = Binder::veth(VethConfig::default());
        let p = port(PORT, "bridge", json!({}));
        b.bind(&bind_req(&p, 1500)).await.unwrap();
        assert_eq!(must(&h, TAP).await.master, Some(pre.index));

        // A non-bridge under the brq name: refuse, roll back.
        let empty = Map::new();
        b.unbind(&unbind_req(&p, "bridge", &empty)).await.unwrap();
        h.link().del(pre.index).execute().await.unwrap();
        h.link()
            .add(LinkVeth::new(BRQ, "brqpeer").build())
            .execute()
            .await
            .unwrap();
        let e = b.bind(&bind_req(&p, 1500)).await.unwrap_err();
        assert!(matches!(e, BindError::WrongKind { .. }), "{e}");
        assert!(e.to_string().contains(BRQ), "{e}");
        assert_eq!(names(&h).await, sorted(&[BRQ, "brqpeer"]), "rolled back");
    });
}

#[test]
fn binding_failed_fails_and_leaves_nothing() {
    in_netns("binding_failed_fails_and_leaves_nothing", || async {
        let h = nl().await;
        let b = Binder::veth(VethConfig::default());
        let p = port(PORT, "binding_failed", json!({}));
        let e = b.bind(&bind_req(&p, 1500)).await.unwrap_err();
        assert!(matches!(e, BindError::NotBound { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("binding_failed") && msg.contains("not bound to this host"),
            "{msg}"
        );
        assert!(names(&h).await.is_empty());

        // Also when an earlier attempt left the pair behind.
        let ok = port(PORT, "tap", json!({}));
        b.bind(&bind_req(&ok, 1500)).await.unwrap();
        for vt in ["unbound", "", "vhostuser"] {
            b.bind(&bind_req(&ok, 1500)).await.unwrap();
            let p = port(PORT, vt, json!({}));
            let e = b.bind(&bind_req(&p, 1500)).await.unwrap_err();
            assert!(e.to_string().contains(&format!("{vt:?}")), "{e}");
            assert!(
                names(&h).await.is_empty(),
                "{vt}: left {:?}",
                names(&h).await
            );
        }
    });
}

#[test]
fn unbind_removes_both_ends_and_is_idempotent() {
    in_netns("unbind_removes_both_ends_and_is_idempotent", || async {
        let h = nl().await;
        let b = Binder::veth(VethConfig::default());
        let p = port(PORT, "tap", json!({}));
        let empty = Map::new();
        b.bind(&bind_req(&p, 1500)).await.unwrap();
        b.unbind(&unbind_req(&p, "tap", &empty)).await.unwrap();
        assert!(names(&h).await.is_empty());
        b.unbind(&unbind_req(&p, "tap", &empty)).await.unwrap();
        // Never bound at all, any vif_type but ovs (which needs OVS).
        b.unbind(&unbind_req(&p, "binding_failed", &empty))
            .await
            .unwrap();

        // Only the container end left (e.g. moved back by Docker after the
        // host end went): removed as well.
        h.link()
            .add(LinkVeth::new(TC, "other0").build())
            .execute()
            .await
            .unwrap();
        b.unbind(&unbind_req(&p, "bridge", &empty)).await.unwrap();
        assert!(names(&h).await.is_empty());
    });
}

// ---------- Open vSwitch (private ovsdb-server) ----------

/// The binder's settings for a private ovsdb-server: no ovs-vswitchd runs
/// there, so do not wait for one.
fn ovs_config(db: &OvsdbServer) -> VethConfig {
    VethConfig {
        ovs_timeout_secs: 5,
        ovs_db: Some(db.db().to_string()),
        ovs_no_wait: true,
        ..Default::default()
    }
}

fn assert_ids(db: &OvsdbServer, dev: &str) {
    assert_eq!(db.external_id(dev, "iface-id").as_deref(), Some(PORT));
    assert_eq!(
        db.external_id(dev, "attached-mac").as_deref(),
        Some("fa:16:3e:aa:bb:cc")
    );
    assert_eq!(
        db.external_id(dev, "iface-status").as_deref(),
        Some("active")
    );
    assert_eq!(db.external_id(dev, "vm-uuid").as_deref(), Some(EP));
    assert_eq!(db.external_id(dev, "owner").as_deref(), Some("kuryr"));
}

#[test]
fn ovs_plugs_into_br_int_and_unplugs() {
    in_netns("ovs_plugs_into_br_int_and_unplugs", || async {
        let Some(db) = OvsdbServer::start("ovs_plugs_into_br_int_and_unplugs") else {
            return;
        };
        db.vsctl(&["add-br", "br-int"]).unwrap();
        let h = nl().await;
        let b = Binder::veth(ovs_config(&db));
        let details =
            json!({"port_filter": true, "ovs_hybrid_plug": false, "datapath_type": "netdev"});
        let p = port(PORT, "ovs", details.clone());
        b.bind(&bind_req(&p, 1450)).await.unwrap();
        assert_pair(&h, 1450).await;
        assert!(!binding::tx_checksum(TC).unwrap(), "netdev: tx off");
        assert_eq!(db.ports("br-int"), [TAP]);
        assert_ids(&db, TAP);

        // Again: --may-exist, same row.
        let row = db.vsctl(&["get", "Interface", TAP, "_uuid"]).unwrap();
        b.bind(&bind_req(&p, 1450)).await.unwrap();
        assert_eq!(db.ports("br-int"), [TAP]);
        assert_eq!(db.vsctl(&["get", "Interface", TAP, "_uuid"]).unwrap(), row);
        assert_ids(&db, TAP);
        assert_eq!(names(&h).await, sorted(&[TAP, TC]));

        let d = details.as_object().unwrap();
        b.unbind(&unbind_req(&p, "ovs", d)).await.unwrap();
        assert!(db.ports("br-int").is_empty());
        assert!(
            db.vsctl(&["get", "Interface", TAP, "name"]).is_err(),
            "row gone"
        );
        assert!(names(&h).await.is_empty());
        b.unbind(&unbind_req(&p, "ovs", d)).await.unwrap();
    });
}

#[test]
fn ovs_bridge_name_from_vif_details() {
    in_netns("ovs_bridge_name_from_vif_details", || async {
        let Some(db) = OvsdbServer::start("ovs_bridge_name_from_vif_details") else {
            return;
        };
        db.vsctl(&["add-br", "br-int"]).unwrap();
        db.vsctl(&["add-br", "tbr-0123"]).unwrap();
        let b = Binder::veth(ovs_config(&db));
        let p = port(PORT, "ovs", json!({"bridge_name": "tbr-0123"}));
        b.bind(&bind_req(&p, 1500)).await.unwrap();
        assert_eq!(db.ports("tbr-0123"), [TAP]);
        assert!(db.ports("br-int").is_empty());
        assert_ids(&db, TAP);
    });
}

#[test]
fn ovs_hybrid_plug() {
    in_netns("ovs_hybrid_plug", || async {
        let Some(db) = OvsdbServer::start("ovs_hybrid_plug") else {
            return;
        };
        db.vsctl(&["add-br", "br-int"]).unwrap();
        let h = nl().await;
        let b = Binder::veth(ovs_config(&db));
        let details = json!({"port_filter": true, "ovs_hybrid_plug": true});
        let p = port(PORT, "ovs", details.clone());
        b.bind(&bind_req(&p, 1450)).await.unwrap();
        b.bind(&bind_req(&p, 1450)).await.unwrap();

        let (tap, _) = assert_pair(&h, 1450).await;
        let qbr = must(&h, QBR).await;
        let qvb = must(&h, QVB).await;
        let qvo = must(&h, QVO).await;
        assert_eq!(qbr.kind, Some(InfoKind::Bridge));
        assert!(qbr.up);
        assert_eq!(tap.master, Some(qbr.index));
        assert_eq!(qvb.master, Some(qbr.index));
        assert_eq!(qvb.peer, Some(qvo.index));
        assert!(qvb.up && qvo.up);
        assert_eq!((qvb.mtu, qvo.mtu), (1450, 1450));
        assert_eq!(db.ports("br-int"), [QVO]);
        assert_ids(&db, QVO);
        assert_eq!(names(&h).await, sorted(&[TAP, TC, QBR, QVB, QVO]));

        let d = details.as_object().unwrap();
        b.unbind(&unbind_req(&p, "ovs", d)).await.unwrap();
        assert!(db.ports("br-int").is_empty());
        assert!(names(&h).await.is_empty());
        b.unbind(&unbind_req(&p, "ovs", d)).await.unwrap();
    });
}

#[test]
fn ovs_failure_rolls_back() {
    in_netns("ovs_failure_rolls_back", || async {
        let Some(db) = OvsdbServer::start("ovs_failure_rolls_back") else {
            return;
        };
        // No br-int in this database.
        let h = nl().await;
        let b = Binder::veth(ovs_config(&db));
        for details in [json!({}), json!({"ovs_hybrid_plug": true})] {
            let p = port(PORT, "ovs", details);
            let e = b.bind(&bind_req(&p, 1500)).await.unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, BindError::Ovs { .. }), "{msg}");
            assert!(msg.contains("br-int"), "{msg}");
            assert!(msg.contains("no bridge named br-int"), "the reason: {msg}");
            assert!(names(&h).await.is_empty(), "left {:?}", names(&h).await);
        }
    });
}
