//! Unit tests of [`super`]: settings, errors as [`BindError`], and the
//! kept connection across ovsdb-server restarts (private servers).

use std::time::Duration;

use kuryr_test_support::OvsdbServer;

use super::*;

const IDS: IfaceIds<'static> = IfaceIds {
    port_id: "3f1e2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b",
    mac: "fa:16:3e:00:00:01",
    endpoint_id: "ab12",
};

fn on(db: &OvsdbServer, timeout_secs: u32) -> Ovs {
    Ovs::new(&VethConfig {
        ovs_db: Some(db.db().to_string()),
        ovs_timeout_secs: timeout_secs,
        ovs_no_wait: true,
        ..Default::default()
    })
}

#[test]
fn settings_from_the_veth_config() {
    let o = Ovs::new(&VethConfig::default());
    assert_eq!(o.target, ovsdb::default_target());
    if std::env::var_os("OVS_RUNDIR").is_none() {
        assert_eq!(o.target, "unix:/run/openvswitch/db.sock");
    }
    assert_eq!(o.timeout, Some(Duration::from_secs(10)));
    assert!(o.wait);
    let o = Ovs::new(&VethConfig {
        ovs_timeout_secs: 0,
        ovs_db: Some("unix:/tmp/x/db.sock".into()),
        ovs_no_wait: true,
        ..Default::default()
    });
    assert_eq!(o.target, "unix:/tmp/x/db.sock");
    assert_eq!(o.timeout, None, "0: no bound, as ovs-vsctl --timeout=0");
    assert!(!o.wait);
}

#[test]
fn the_external_ids_of_os_vif_and_kuryr_lib() {
    assert_eq!(
        IDS.pairs(),
        [
            ("iface-id", "3f1e2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b"),
            ("attached-mac", "fa:16:3e:00:00:01"),
            ("iface-status", "active"),
            ("vm-uuid", "ab12"),
            ("owner", "kuryr"),
        ]
    );
}

#[tokio::test]
async fn failures_are_bind_errors_naming_the_action() {
    let o = Ovs::new(&VethConfig {
        ovs_db: Some("tcp:127.0.0.1:6640".into()),
        ..Default::default()
    });
    let e = o.del_ports(&["tapx".into()]).await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("OVS del-port tapx failed: unsupported OVSDB address"),
        "{e}"
    );

    let Some(db) = OvsdbServer::start("bind_errors") else {
        return;
    };
    let o = on(&db, 5);
    let e = o.add_port("br-int", "tapx", &IDS).await.unwrap_err();
    assert!(matches!(e, BindError::Ovs { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "OVS add-port tapx to br-int failed: no bridge named br-int"
    );
    let missing = Ovs::new(&VethConfig {
        ovs_db: Some(db.db().replace("db.sock", "gone.sock")),
        ..Default::default()
    });
    let e = missing.add_port("br-int", "tapx", &IDS).await.unwrap_err();
    assert_eq!(e.errno(), Some(libc::ENOENT), "{e}");
}

#[tokio::test]
async fn the_connection_is_kept_and_renewed_after_a_restart() {
    let Some(mut db) = OvsdbServer::start("restart") else {
        return;
    };
    db.vsctl(&["add-br", "br-int"]).unwrap();
    let o = on(&db, 5);
    o.add_port("br-int", "tap1", &IDS).await.unwrap();
    o.add_port("br-int", "tap2", &IDS).await.unwrap();
    assert_eq!(db.ports("br-int"), ["tap1", "tap2"]);
    // The host's ovsdb-server restarts: the next call reconnects.
    db.restart();
    o.del_ports(&["tap1".into()]).await.unwrap();
    assert_eq!(db.ports("br-int"), ["tap2"]);
    db.restart();
    tokio::time::sleep(Duration::from_millis(50)).await;
    o.del_ports(&["tap2".into()]).await.unwrap();
    assert!(db.ports("br-int").is_empty());
}

#[tokio::test]
async fn a_timeout_drops_the_connection() {
    let dir = std::env::temp_dir().join(format!("kuryr-ovs-mute-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("db.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            conns.push(s);
        }
    });
    let o = Ovs::new(&VethConfig {
        ovs_db: Some(format!("unix:{}", path.display())),
        ovs_timeout_secs: 1,
        ovs_no_wait: true,
        ..Default::default()
    });
    let e = o.del_ports(&["tapx".into()]).await.unwrap_err();
    assert!(e.to_string().contains("no answer from ovsdb-server"), "{e}");
    assert!(o.conn.lock().await.is_none(), "not kept");
    held.abort();
    let _ = std::fs::remove_dir_all(&dir);
}
