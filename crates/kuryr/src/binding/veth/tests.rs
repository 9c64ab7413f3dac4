//! Unit tests of [`super`].

use super::*;
use kuryr_openstack::neutron::Port;
use serde_json::{Map, Value, json};

const PORT: &str = "3f1e2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b";
const NET: &str = "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d";
const EP: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn port(vif_type: &str, details: Value) -> Port {
    Port {
        id: PORT.into(),
        network_id: NET.into(),
        mac_address: "FA:16:3E:12:34:56".into(),
        vif_type: vif_type.into(),
        vif_details: details.as_object().cloned().unwrap_or_default(),
        ..Default::default()
    }
}

fn req(p: &Port) -> BindRequest<'_> {
    BindRequest {
        port: p,
        endpoint_id: EP,
        mtu: 1450,
        host_ifname: vif::host_ifname(&p.id),
        container_ifname: vif::container_ifname(&p.id),
        link_iface: None,
        vlan_id: None,
    }
}

fn plan(p: &Port) -> Result<BindPlan, BindError> {
    BindPlan::new(&VethConfig::default(), &req(p))
}

#[test]
fn plan_tap() {
    let p = plan(&port("tap", json!({}))).unwrap();
    assert_eq!(
        p,
        BindPlan {
            host: "tap3f1e2a4b-5c".into(),
            container: "t_c3f1e2a4b-5c".into(),
            mac: [0xfa, 0x16, 0x3e, 0x12, 0x34, 0x56],
            mtu: 1450,
            tx_csum_off: false,
            plug: Plug::Nothing,
        }
    );
    assert_eq!(
        p.rollback(false),
        TeardownPlan {
            ovs_ports: vec![],
            links: vec!["tap3f1e2a4b-5c".into(), "t_c3f1e2a4b-5c".into()],
        }
    );
}

#[test]
fn plan_bridge() {
    let p = plan(&port("bridge", json!({"port_filter": true}))).unwrap();
    assert_eq!(
        p.plug,
        Plug::LinuxBridge {
            bridge: "brq9a8b7c6d-5e".into()
        }
    );
    // The shared brq is never rolled back.
    assert_eq!(p.rollback(true).links, ["tap3f1e2a4b-5c", "t_c3f1e2a4b-5c"]);
}

#[test]
fn plan_ovs_direct_and_netdev() {
    let p = plan(&port("ovs", json!({"datapath_type": "netdev"}))).unwrap();
    assert!(p.tx_csum_off);
    assert_eq!(
        p.plug,
        Plug::Ovs {
            bridge: "br-int".into(),
            dev: "tap3f1e2a4b-5c".into(),
            hybrid: None
        }
    );
    assert!(p.rollback(false).ovs_ports.is_empty());
    assert_eq!(p.rollback(true).ovs_ports, ["tap3f1e2a4b-5c"]);

    let p = plan(&port("ovs", json!({"bridge_name": "tbr-0123"}))).unwrap();
    assert!(!p.tx_csum_off);
    assert!(matches!(p.plug, Plug::Ovs { ref bridge, .. } if bridge == "tbr-0123"));

    let cfg = VethConfig {
        integration_bridge: "br-x".into(),
        ..Default::default()
    };
    let pt = port("ovs", json!({}));
    let p = BindPlan::new(&cfg, &req(&pt)).unwrap();
    assert!(matches!(p.plug, Plug::Ovs { ref bridge, .. } if bridge == "br-x"));
}

#[test]
fn plan_ovs_hybrid() {
    let p = plan(&port("ovs", json!({"ovs_hybrid_plug": true}))).unwrap();
    assert_eq!(
        p.plug,
        Plug::Ovs {
            bridge: "br-int".into(),
            dev: "qvo3f1e2a4b-5c".into(),
            hybrid: Some(Hybrid {
                qbr: "qbr3f1e2a4b-5c".into(),
                qvb: "qvb3f1e2a4b-5c".into(),
                qvo: "qvo3f1e2a4b-5c".into(),
            }),
        }
    );
    assert_eq!(
        p.rollback(true),
        TeardownPlan {
            ovs_ports: vec!["qvo3f1e2a4b-5c".into()],
            links: vec![
                "qvb3f1e2a4b-5c".into(),
                "qvo3f1e2a4b-5c".into(),
                "qbr3f1e2a4b-5c".into(),
                "tap3f1e2a4b-5c".into(),
                "t_c3f1e2a4b-5c".into(),
            ],
        }
    );
}

#[test]
fn plan_refuses_unbound_ports() {
    for vt in ["", "unbound", "binding_failed"] {
        let e = plan(&port(vt, json!({}))).unwrap_err();
        assert!(matches!(e, BindError::NotBound { ref vif_type, .. } if vif_type == vt));
        assert!(e.to_string().contains("not bound to this host"));
    }
    let e = plan(&port("vhostuser", json!({}))).unwrap_err();
    assert!(matches!(e, BindError::UnsupportedVifType { .. }));
    assert!(e.to_string().contains("\"vhostuser\""));
}

#[test]
fn plan_validates_the_request() {
    let mut p = port("tap", json!({}));
    p.mac_address = "fa:16:3e".into();
    assert!(matches!(plan(&p), Err(BindError::InvalidRequest { .. })));

    let p = port("ovs", json!({"bridge_name": "a-much-too-long-bridge"}));
    let e = plan(&p).unwrap_err();
    assert!(e.to_string().contains("OVS bridge name"), "{e}");

    let p = port("tap", json!({}));
    let mut r = req(&p);
    r.host_ifname = "tap-with-a-too-long-name".into();
    assert!(BindPlan::new(&VethConfig::default(), &r).is_err());
    let mut r = req(&p);
    r.container_ifname = r.host_ifname.clone();
    assert!(BindPlan::new(&VethConfig::default(), &r).is_err());
    let mut r = req(&p);
    r.endpoint_id = "x y";
    assert!(BindPlan::new(&VethConfig::default(), &r).is_err());
    let mut r = req(&p);
    r.mtu = 0;
    assert!(BindPlan::new(&VethConfig::default(), &r).is_err());
}

#[test]
fn unbind_plan() {
    let empty = Map::new();
    let hybrid = json!({"ovs_hybrid_plug": true})
        .as_object()
        .cloned()
        .unwrap();
    let r = |vif_type, vif_details| UnbindRequest {
        port_id: PORT,
        network_id: NET,
        host_ifname: vif::host_ifname(PORT),
        container_ifname: vif::container_ifname(PORT),
        vif_type,
        vif_details,
    };
    let links = [
        "qvb3f1e2a4b-5c",
        "qvo3f1e2a4b-5c",
        "qbr3f1e2a4b-5c",
        "tap3f1e2a4b-5c",
        "t_c3f1e2a4b-5c",
    ];
    let td = TeardownPlan::unbind(&r("ovs", &empty));
    assert_eq!(td.ovs_ports, ["tap3f1e2a4b-5c", "qvo3f1e2a4b-5c"]);
    assert_eq!(td.links, links);
    let td = TeardownPlan::unbind(&r("ovs", &hybrid));
    assert_eq!(td.ovs_ports, ["qvo3f1e2a4b-5c", "tap3f1e2a4b-5c"]);
    for vt in ["bridge", "tap", "binding_failed", ""] {
        let td = TeardownPlan::unbind(&r(vt, &empty));
        assert!(td.ovs_ports.is_empty(), "{vt}");
        assert_eq!(td.links, links);
    }
}
