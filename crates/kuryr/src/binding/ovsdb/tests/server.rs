//! The client and the vswitch operations against a real, private
//! ovsdb-server ([`OvsdbServer`]; skipped when Open vSwitch is not
//! installed). No ovs-vswitchd runs: the tests that wait for one emulate
//! it, copying `next_cfg` to `cur_cfg` themselves.

use std::time::Duration;

use kuryr_test_support::OvsdbServer;
use serde_json::json;

use crate::binding::ovsdb::vswitch::{Written, plan_add, plan_del, read_port, write};
use crate::binding::ovsdb::*;

const T: Option<Duration> = Some(Duration::from_secs(5));

const IDS: [(&str, &str); 5] = [
    ("iface-id", "3f1e2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b"),
    ("attached-mac", "fa:16:3e:aa:bb:cc"),
    ("iface-status", "active"),
    ("vm-uuid", "0123abcd"),
    ("owner", "kuryr"),
];

/// A private server with `bridges`, and a client on it.
async fn setup(test: &str, bridges: &[&str]) -> Option<(OvsdbServer, Client)> {
    let db = OvsdbServer::start(test)?;
    for br in bridges {
        db.vsctl(&["add-br", br]).unwrap();
    }
    let client = Client::connect(db.db(), T).await.unwrap();
    Some((db, client))
}

fn uuid_of_iface(db: &OvsdbServer, name: &str) -> String {
    db.vsctl(&["get", "Interface", name, "_uuid"]).unwrap()
}

fn assert_ids(db: &OvsdbServer, dev: &str, ids: &[(&str, &str)]) {
    for (k, v) in ids {
        assert_eq!(db.external_id(dev, k).as_deref(), Some(*v), "{dev} {k}");
    }
}

/// Rows left in `table`, by name.
fn names_in(db: &OvsdbServer, table: &str) -> Vec<String> {
    let out = db
        .vsctl(&["--bare", "--columns=name", "list", table])
        .unwrap();
    let mut v: Vec<String> = out.split_whitespace().map(str::to_string).collect();
    v.sort();
    v
}

#[tokio::test]
async fn echo_and_connect_errors() {
    let Some((db, client)) = setup("echo_and_connect_errors", &[]).await else {
        return;
    };
    client.echo().await.unwrap();
    let e = Client::connect("tcp:127.0.0.1:6640", T).await.unwrap_err();
    assert!(matches!(e, OvsdbError::Address(_)), "{e:?}");
    let gone = db.db().replace("db.sock", "nothing.sock");
    let e = Client::connect(&gone, T).await.unwrap_err();
    assert_eq!(e.errno(), Some(libc::ENOENT), "{e:?}");
    assert!(e.to_string().contains("nothing.sock"), "{e}");
}

#[tokio::test]
async fn add_port_twice_keeps_the_row_and_updates_ids() {
    let Some((db, c)) = setup("add_port_twice", &["br-int"]).await else {
        return;
    };
    add_port(&c, "br-int", "tap1", &IDS, false).await.unwrap();
    assert_eq!(db.ports("br-int"), ["tap1"]);
    assert_ids(&db, "tap1", &IDS);
    let row = uuid_of_iface(&db, "tap1");

    add_port(&c, "br-int", "tap1", &IDS, false).await.unwrap();
    assert_eq!(db.ports("br-int"), ["tap1"]);
    assert_eq!(uuid_of_iface(&db, "tap1"), row, "same row");
    // What ovs-vsctl makes of it: the same port.
    db.vsctl(&["--may-exist", "add-port", "br-int", "tap1"])
        .unwrap();

    // New values replace ours; keys of others stay.
    db.vsctl(&["set", "Interface", "tap1", "external_ids:other=x"])
        .unwrap();
    let new = [
        ("iface-id", "77aa88bb"),
        ("attached-mac", "fa:16:3e:00:00:02"),
    ];
    add_port(&c, "br-int", "tap1", &new, false).await.unwrap();
    assert_ids(&db, "tap1", &new);
    assert_ids(&db, "tap1", &[("owner", "kuryr"), ("other", "x")]);
    assert_eq!(uuid_of_iface(&db, "tap1"), row);

    // A port ovs-vsctl made is adopted the same way.
    db.vsctl(&["add-port", "br-int", "tap2"]).unwrap();
    add_port(&c, "br-int", "tap2", &IDS, false).await.unwrap();
    assert_ids(&db, "tap2", &IDS);
    assert_eq!(db.ports("br-int"), ["tap1", "tap2"]);
}

#[tokio::test]
async fn del_ports_present_and_absent_in_one_call() {
    let Some((db, c)) = setup("del_ports", &["br-int", "br-x"]).await else {
        return;
    };
    add_port(&c, "br-int", "tap1", &IDS, false).await.unwrap();
    add_port(&c, "br-x", "qvo1", &IDS, false).await.unwrap();
    db.vsctl(&["add-port", "br-int", "keep"]).unwrap();
    let devs = ["tap1".to_string(), "absent".into(), "qvo1".into()];
    del_ports(&c, &devs, false).await.unwrap();
    assert_eq!(db.ports("br-int"), ["keep"]);
    assert!(db.ports("br-x").is_empty());
    // Port and Interface rows are collected with the reference.
    assert_eq!(names_in(&db, "Port"), ["br-int", "br-x", "keep"]);
    assert_eq!(names_in(&db, "Interface"), ["br-int", "br-x", "keep"]);
    del_ports(&c, &devs, false).await.unwrap();
    del_ports(&c, &[], false).await.unwrap();
}

#[tokio::test]
async fn missing_bridge_and_port_elsewhere_are_errors() {
    let Some((db, c)) = setup("missing_bridge", &[]).await else {
        return;
    };
    let e = add_port(&c, "br-int", "tap1", &IDS, false)
        .await
        .unwrap_err();
    assert!(matches!(e, OvsdbError::NoBridge(_)), "{e:?}");
    assert_eq!(e.to_string(), "no bridge named br-int");
    assert!(names_in(&db, "Port").is_empty());

    db.vsctl(&["add-br", "br-int"]).unwrap();
    db.vsctl(&["add-br", "br-x"]).unwrap();
    db.vsctl(&["add-port", "br-x", "tap1"]).unwrap();
    let e = add_port(&c, "br-int", "tap1", &IDS, false)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot add port tap1 to bridge br-int: a port named tap1 is already on bridge br-x"
    );
    assert_eq!(db.ports("br-x"), ["tap1"]);
    assert!(db.ports("br-int").is_empty());
    assert_eq!(db.external_id("tap1", "iface-id"), None);

    // A bond holding an interface of that name, or a port of that name
    // with other interfaces: neither is adopted.
    db.vsctl(&["add-bond", "br-int", "bond0", "tapA", "tapB"])
        .unwrap();
    let e = add_port(&c, "br-int", "tapA", &IDS, false)
        .await
        .unwrap_err();
    assert!(matches!(e, OvsdbError::Conflict { .. }), "{e:?}");
    assert!(e.to_string().contains("belongs to another port"), "{e}");
    let e = add_port(&c, "br-int", "bond0", &IDS, false)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("exactly one interface"), "{e}");
}

#[tokio::test]
async fn a_write_after_a_concurrent_change_is_not_applied() {
    let Some((db, c)) = setup("stale_write", &["br-int"]).await else {
        return;
    };
    // Read "no port", then someone adds it: the create must not apply.
    let found = read_port(&c, "br-int", "tap1").await.unwrap();
    db.vsctl(&["add-port", "br-int", "tap1"]).unwrap();
    let change = plan_add(&c, "br-int", "tap1", &IDS, &found)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        write(&c, change, false).await.unwrap(),
        Written::Stale
    ));
    assert_eq!(db.external_id("tap1", "iface-id"), None);

    // Read the port, then it is replaced by another row of the same name.
    let change = plan_del(&c, &["tap1".to_string()]).await.unwrap();
    db.vsctl(&["del-port", "tap1"]).unwrap();
    db.vsctl(&["add-port", "br-int", "tap1"]).unwrap();
    assert!(matches!(
        write(&c, change, false).await.unwrap(),
        Written::Stale
    ));
    assert_eq!(db.ports("br-int"), ["tap1"]);
}

#[tokio::test]
async fn concurrent_binds_of_one_port_converge() {
    let Some((db, c1)) = setup("concurrent_binds", &["br-int"]).await else {
        return;
    };
    let c2 = Client::connect(db.db(), T).await.unwrap();
    for _ in 0..10 {
        let (a, b) = tokio::join!(
            add_port(&c1, "br-int", "tap1", &IDS, false),
            add_port(&c2, "br-int", "tap1", &IDS, false)
        );
        a.unwrap();
        b.unwrap();
        assert_eq!(db.ports("br-int"), ["tap1"]);
        assert_ids(&db, "tap1", &IDS);
        del_ports(&c1, &["tap1".into()], false).await.unwrap();
    }
    // Many ports at once on one connection.
    let names: Vec<String> = (0..20).map(|i| format!("tap{i:02}")).collect();
    let adds = names
        .iter()
        .map(|n| add_port(&c1, "br-int", n, &IDS, false));
    for r in futures_util::future::join_all(adds).await {
        r.unwrap();
    }
    assert_eq!(db.ports("br-int"), names);
    del_ports(&c2, &names, false).await.unwrap();
    assert!(db.ports("br-int").is_empty());
}

/// SIGCONT on drop, so that a failed assertion does not leave the server
/// stopped (it is killed afterwards anyway).
struct Stopped(u32);

impl Stopped {
    fn new(pid: u32) -> Stopped {
        // SAFETY: kill has no memory-safety preconditions; pid is our child.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGSTOP) }, 0);
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.0 as i32, libc::SIGCONT) };
    }
}

#[tokio::test]
async fn a_server_that_does_not_answer_times_out() {
    let Some((db, _)) = setup("no_answer", &["br-int"]).await else {
        return;
    };
    let short = Some(Duration::from_millis(500));
    let open = Client::connect(db.db(), short).await.unwrap();
    open.echo().await.unwrap();
    let stopped = Stopped::new(db.pid());
    let started = std::time::Instant::now();
    let e = add_port(&open, "br-int", "tap1", &IDS, false)
        .await
        .unwrap_err();
    assert!(matches!(e, OvsdbError::Timeout { .. }), "{e:?}");
    // The step that hit the bound (or the whole operation) is named.
    assert!(
        e.to_string()
            .contains(": no answer from ovsdb-server at unix:"),
        "{e}"
    );
    // A new connection is accepted by the kernel, then nothing.
    let fresh = Client::connect(db.db(), short).await.unwrap();
    let e = del_ports(&fresh, &["tap1".into()], false)
        .await
        .unwrap_err();
    assert!(matches!(e, OvsdbError::Timeout { .. }), "{e:?}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    drop(stopped);
    open.echo().await.unwrap();

    // A socket that accepts and never answers.
    let dir = std::env::temp_dir().join(format!("kuryr-mute-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("db.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let held = tokio::spawn(async move { listener.accept().await });
    let mute = Client::connect(&format!("unix:{}", path.display()), short)
        .await
        .unwrap();
    let e = add_port(&mute, "br-int", "tap1", &IDS, false)
        .await
        .unwrap_err();
    assert!(matches!(e, OvsdbError::Timeout { .. }), "{e:?}");
    drop(held);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Play ovs-vswitchd: at start and whenever `next_cfg` moves, give
/// interfaces an OpenFlow port and set `cur_cfg` to it. `ready` is told
/// once it watches.
async fn fake_vswitchd(target: String, ready: tokio::sync::oneshot::Sender<()>) {
    let c = Client::connect(&target, T).await.unwrap();
    let mut mon = c
        .monitor(DB, &[("Open_vSwitch", &["next_cfg"])])
        .await
        .unwrap();
    let _ = ready.send(());
    let mut changes = mon.initial().clone();
    loop {
        for (uuid, row) in changes.rows("Open_vSwitch").unwrap() {
            let Some(next) = row.and_then(|r| r.get("next_cfg").cloned()) else {
                continue;
            };
            let ops = [
                Op::Update {
                    table: "Interface".into(),
                    conds: vec![],
                    row: Row::from([("ofport".to_string(), Datum::atom(7i64))]),
                },
                Op::Update {
                    table: "Open_vSwitch".into(),
                    conds: vec![Cond::uuid(&uuid)],
                    row: Row::from([("cur_cfg".to_string(), next)]),
                },
            ];
            c.transact(DB, &ops).await.unwrap();
        }
        let Ok(update) = mon.next().await else { return };
        changes = update;
    }
}

#[tokio::test]
async fn waiting_for_ovs_vswitchd() {
    let Some((db, _)) = setup("waiting", &["br-int"]).await else {
        return;
    };
    // Nobody applies the change: committed, then a timeout that says why.
    let c = Client::connect(db.db(), Some(Duration::from_millis(700)))
        .await
        .unwrap();
    let e = add_port(&c, "br-int", "tap1", &IDS, true)
        .await
        .unwrap_err();
    assert!(matches!(e, OvsdbError::ReloadTimeout { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("cur_cfg 0, waiting for next_cfg 1"), "{msg}");
    assert!(msg.contains("is ovs-vswitchd running?"), "{msg}");
    assert_eq!(db.ports("br-int"), ["tap1"]);

    // With a (fake) ovs-vswitchd it returns once cur_cfg caught up.
    let (ready, watching) = tokio::sync::oneshot::channel();
    let fake = tokio::spawn(fake_vswitchd(db.db().to_string(), ready));
    watching.await.unwrap();
    let c = Client::connect(db.db(), T).await.unwrap();
    add_port(&c, "br-int", "tap2", &IDS, true).await.unwrap();
    let cfg = |col: &str| db.vsctl(&["get", "Open_vSwitch", ".", col]).unwrap();
    assert_eq!((cfg("next_cfg"), cfg("cur_cfg")), ("2".into(), "2".into()));
    assert_eq!(
        db.vsctl(&["get", "Interface", "tap2", "ofport"]).unwrap(),
        "7"
    );
    // Unchanged: no write, so nothing to wait for.
    add_port(&c, "br-int", "tap2", &IDS, true).await.unwrap();
    assert_eq!(cfg("next_cfg"), "2");
    del_ports(&c, &["tap1".into(), "tap2".into()], true)
        .await
        .unwrap();
    assert_eq!((cfg("next_cfg"), cfg("cur_cfg")), ("3".into(), "3".into()));
    assert!(db.ports("br-int").is_empty());
    fake.abort();
}

/// Median of `samples`, in microseconds.
fn median_us(mut samples: Vec<Duration>) -> u128 {
    samples.sort();
    samples[samples.len() / 2].as_micros()
}

/// The bind's OVS step before (a fork of ovs-vsctl) and after (this
/// client), medians of 50 against a private ovsdb-server. Timing, not a
/// check: `cargo test -p kuryr --lib ovsdb_step_timing -- --ignored
/// --nocapture`.
#[tokio::test]
#[ignore = "a measurement; run by hand"]
async fn ovsdb_step_timing() {
    let Some((db, open)) = setup("timing", &["br-int"]).await else {
        return;
    };
    let (mut fork, mut fresh, mut reused, mut fork_del, mut reused_del) =
        (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..50 {
        let dev = format!("tapbench{i}");
        let mut args = vec![
            format!("--db={}", db.db()),
            "--timeout=5".into(),
            "--no-wait".into(),
            "--".into(),
            "--may-exist".into(),
            "add-port".into(),
            "br-int".into(),
            dev.clone(),
            "--".into(),
            "set".into(),
            "Interface".into(),
            dev.clone(),
        ];
        args.extend(IDS.iter().map(|(k, v)| format!("external_ids:{k}={v}")));
        let t = std::time::Instant::now();
        let out = tokio::process::Command::new("ovs-vsctl")
            .args(&args)
            .output()
            .await;
        fork.push(t.elapsed());
        assert!(out.unwrap().status.success());
        let t = std::time::Instant::now();
        let out = tokio::process::Command::new("ovs-vsctl")
            .args([
                &args[0],
                &args[1],
                &args[2],
                "--",
                "--if-exists",
                "del-port",
                &dev,
            ])
            .output()
            .await;
        fork_del.push(t.elapsed());
        assert!(out.unwrap().status.success());

        let t = std::time::Instant::now();
        let c = Client::connect(db.db(), T).await.unwrap();
        add_port(&c, "br-int", &dev, &IDS, false).await.unwrap();
        fresh.push(t.elapsed());
        del_ports(&open, std::slice::from_ref(&dev), false)
            .await
            .unwrap();

        let t = std::time::Instant::now();
        add_port(&open, "br-int", &dev, &IDS, false).await.unwrap();
        reused.push(t.elapsed());
        let t = std::time::Instant::now();
        del_ports(&open, std::slice::from_ref(&dev), false)
            .await
            .unwrap();
        reused_del.push(t.elapsed());
    }
    let report = json!({
        "add_port_us": {"ovs_vsctl_fork": median_us(fork), "fresh_connection": median_us(fresh),
                        "open_connection": median_us(reused)},
        "del_port_us": {"ovs_vsctl_fork": median_us(fork_del), "open_connection": median_us(reused_del)},
    });
    println!("OVS step, medians of 50: {report}");
}
