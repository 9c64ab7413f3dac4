//! Migration from kuryr-libnetwork on a running node, and back
//! (docs/migration.md): the Python driver serves the lab's dockerd through
//! kuryr-libnetwork's spec file (`kuryr_uri` http://127.0.0.1:23750), with
//! containers on kuryr networks — one made with `--subnet`, one on an
//! existing Neutron network; ours adds one from the default pool. Then:
//!
//! 1. Python stops, ours starts on the very same kuryr.conf: it serves the
//!    same `kuryr_uri`, which is where dockerd keeps talking (it keeps a
//!    legacy plugin's client for its whole life). The running containers
//!    keep their addresses and reach the new ones ours starts on each
//!    network.
//! 2. Ours stops, Python starts again: the same, the other way.
//! 3. Ours again (ours made the default-pool network in 1, which
//!    kuryr-libnetwork cannot make, and Python served it in 2).
//! 4. dockerd restarted with `--live-restore` while ours runs: the
//!    containers keep running; dockerd now finds ours on its unix socket.
//! 5. `docker rm` and `docker network rm` of everything leave Neutron and
//!    the host as they were (the existing network stays, untagged).
//!
//! It replaces the lab's driver and restarts the lab's dockerd (so that it
//! forgets the lab daemon's socket, and at the end the spec file): an
//! `alone_*` test, run with the exclusive lab lock.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::docker_cli::*;
use common::env::{eventually, lab_dir, output_text, repo_root, unique};
use common::host::{link_exists, ovs_ports};
use common::lab::{self, Lab};
use kuryr::names;
use kuryr::paths;
use kuryr_openstack::Query;
use kuryr_openstack::neutron::{NetworkCreate, SubnetCreate};

/// Where kuryr-libnetwork's packaging registers the driver with dockerd.
const SPEC: &str = paths::PLUGIN_SPEC;
/// `kuryr_uri` of the lab's kuryr-libnetwork configuration.
const KURYR_URI: &str = "http://127.0.0.1:23750";

/// The kuryr.conf both drivers run on (`lab/kuryr-python` writes it).
fn shared_conf() -> PathBuf {
    PathBuf::from(format!("{}/etc/kuryr-python.conf", lab_dir()))
}

fn python(cmd: &str) {
    let out = Command::new(repo_root().join("lab/kuryr-python"))
        .arg(cmd)
        .output()
        .expect("run lab/kuryr-python");
    assert!(
        out.status.success(),
        "lab/kuryr-python {cmd}: {}",
        output_text(&out)
    );
}

/// Our daemon on the shared kuryr.conf, as the operator starts it
/// (`kuryr-server --config-file /etc/kuryr/kuryr.conf`).
struct Ours {
    child: Child,
}

impl Ours {
    fn start() -> Ours {
        let child = Command::new(env!("CARGO_BIN_EXE_kuryr-server"))
            .arg("--config-file")
            .arg(shared_conf())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kuryr-server");
        let ours = Ours { child };
        ours.wait_answering();
        ours
    }

    fn wait_answering(&self) {
        for _ in 0..300 {
            let out = Command::new("curl")
                .args(["-fsS", "--max-time", "2", "-X", "POST"])
                .arg(format!("{KURYR_URI}/Plugin.Activate"))
                .output();
            if out.is_ok_and(|o| o.status.success()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("our daemon does not answer at {KURYR_URI}");
    }

    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).output();
        let _ = self.child.wait();
    }
}

impl Drop for Ours {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Puts the lab back as it was, whatever happened: no spec file, the
/// Python driver up (the interop tests talk to it), a dockerd that forgot
/// the spec file's client, the lab's own daemon on its socket.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        // The lab's socket first, then no spec file, then a dockerd that
        // looks the plugin up again: it can only find the socket. No
        // panic here (this runs while unwinding).
        let run = |cmd: &str, args: &[&str]| {
            let out = Command::new(repo_root().join(cmd)).args(args).output();
            if !out.as_ref().is_ok_and(|o| o.status.success()) {
                eprintln!("restoring the lab: {cmd} {args:?} failed: {out:?}");
            }
        };
        run("lab/kuryr-up", &[env!("CARGO_BIN_EXE_kuryr")]);
        let _ = std::fs::remove_file(SPEC);
        let _ = std::fs::remove_dir(Path::new(SPEC).parent().unwrap());
        run("lab/kuryr-python", &["up"]);
        run("lab/dockerd", &["restart"]);
    }
}

/// A running container: name, network, address.
#[derive(Debug, Clone)]
struct Running {
    name: String,
    net: String,
    ip: String,
    mac: String,
}

/// `docker run` on `net`; its address and MAC as the container sees them.
fn run_on(cleanup: &mut Cleanup, name: &str, net: &str) -> Running {
    cleanup.container(name, net, &[]);
    let ip = docker_ok(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        name,
    ]);
    assert!(!ip.is_empty(), "{name} has no address on {net}");
    let (_, mac) = exec(name, &["cat", "/sys/class/net/eth0/address"]);
    Running {
        name: name.into(),
        net: net.into(),
        ip,
        mac,
    }
}

/// `from` pings `to` (retrying while the agent wires a new port).
async fn pings(from: &Running, to: &Running) {
    eventually(
        &format!("{} ({}) pings {} ({})", from.name, from.net, to.name, to.ip),
        Duration::from_secs(60),
        || async {
            let (ok, _) = exec(&from.name, &["ping", "-c", "1", "-W", "1", &to.ip]);
            ok.then_some(())
        },
    )
    .await;
}

/// The container still has the address and MAC it was given.
fn kept(c: &Running) {
    let (ok, addr) = exec(&c.name, &["ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(
        ok && addr.contains(&format!("inet {}/", c.ip)),
        "{}: {addr}",
        c.name
    );
    let (_, mac) = exec(&c.name, &["cat", "/sys/class/net/eth0/address"]);
    assert_eq!(mac, c.mac, "{} changed its MAC", c.name);
}

/// Which driver dockerd reaches now: a new container on each network
/// pings the containers already there.
async fn new_containers_join(
    cleanup: &mut Cleanup,
    nets: &[String],
    tag: &str,
    all: &mut Vec<Running>,
) {
    for net in nets {
        let c = run_on(cleanup, &format!("{net}-{tag}"), net);
        for old in all.iter().filter(|o| &o.net == net) {
            kept(old);
            pings(&c, old).await;
            pings(old, &c).await;
        }
        all.push(c);
    }
}

#[tokio::test]
async fn python_to_ours_and_back_on_a_running_node() {
    lab::run(async |lab: &Lab| {
        let _restore = Restore;
        // The node as kuryr-libnetwork's packaging leaves it: the driver
        // registered through its spec file, no other kuryr socket, and a
        // dockerd that has not met another kuryr yet.
        stop_daemon();
        python("up");
        std::fs::create_dir_all(Path::new(SPEC).parent().unwrap()).unwrap();
        std::fs::write(SPEC, format!("{KURYR_URI}\n")).unwrap();
        // --live-restore: step 4 restarts it with containers running.
        restart_dockerd(&["--live-restore"]);
        assert!(!Path::new(SOCKET).exists());

        // Under Python: a network made with --subnet and one on an existing
        // Neutron network. (kuryr-libnetwork needs --gateway, and cannot make
        // a network from the default pool: docs/migration.md.)
        let mut cleanup = Cleanup::new();
        let base = unique("mig");
        let (subnet_net, pool_net, existing_net) = (
            format!("{base}-s"),
            format!("{base}-p"),
            format!("{base}-e"),
        );
        let gateway = |k: u32| format!("--gateway={}.1", lab.slot.prefix4(k));
        cleanup.kuryr_network(&subnet_net, Some(&lab.cidr4(0)), &[&gateway(0)]);
        let n = &lab.neutron;
        let existing = n
            .create_network(&NetworkCreate {
                name: Some(format!("{base}-neutron")),
                ..Default::default()
            })
            .await
            .unwrap();
        lab.track_user_network(&existing.id);
        let existing_cidr = lab.cidr4(2);
        let existing_subnet = n
            .create_subnet(&SubnetCreate {
                network_id: existing.id.clone(),
                ip_version: 4,
                cidr: Some(existing_cidr.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        cleanup.kuryr_network(
            &existing_net,
            Some(&existing_cidr),
            &[
                &gateway(2),
                "-o",
                &format!("neutron.net.uuid={}", existing.id),
            ],
        );
        let mut nets = vec![subnet_net.clone(), existing_net.clone()];
        let mut nids: Vec<String> = nets.iter().map(|n| network_id(n)).collect();
        for nid in &nids {
            lab.track_network(nid);
        }
        let mut all = Vec::new();
        new_containers_join(&mut cleanup, &nets, "py1", &mut all).await;
        // Python made them: its veth binding, on br-int.
        let port_of = async |c: &Running| {
            let mut p = lab.port_with_ip(&c.ip).await;
            p.retain(|p| p.device_owner == names::DEVICE_OWNER);
            assert_eq!(p.len(), 1, "{}: {p:#?}", c.name);
            p.remove(0)
        };
        for c in &all {
            // kuryr-libnetwork does not wait for the agent (no
            // vif_plugging_is_fatal here): the port goes ACTIVE soon after.
            let port = common::vm::wait_active(lab, &port_of(c).await.id).await;
            assert!(ovs_ports().contains(&names::host_ifname(&port.id)));
        }

        // 1. Python -> ours, on the same kuryr.conf; ours adds a network
        // from the default pool.
        python("down");
        let ours = Ours::start();
        new_containers_join(&mut cleanup, &nets, "rs1", &mut all).await;
        cleanup.kuryr_network(&pool_net, None, &[]);
        let pool_nid = network_id(&pool_net);
        lab.track_network(&pool_nid);
        nids.push(pool_nid);
        new_containers_join(
            &mut cleanup,
            std::slice::from_ref(&pool_net),
            "rs1",
            &mut all,
        )
        .await;
        nets.push(pool_net.clone());

        // 2. Ours -> Python.
        ours.stop();
        python("up");
        new_containers_join(&mut cleanup, &nets, "py2", &mut all).await;

        // 3. Ours again.
        python("down");
        let ours = Ours::start();
        new_containers_join(&mut cleanup, &nets, "rs2", &mut all).await;

        // 4. dockerd restarted with live-restore while ours runs: the
        // containers keep running and their addresses; dockerd now finds
        // our unix socket first (sockets come before spec files), and new
        // containers join there.
        restart_dockerd(&["--live-restore"]);
        for c in &all {
            let running = docker_ok(&["inspect", "-f", "{{.State.Running}}", &c.name]);
            assert_eq!(running, "true", "{} stopped with dockerd", c.name);
        }
        new_containers_join(&mut cleanup, &nets, "rs3", &mut all).await;

        // 5. Everything removed through Docker.
        let ports: Vec<String> = {
            let mut ids = Vec::new();
            for c in &all {
                ids.push(port_of(c).await.id);
            }
            ids
        };
        for c in &all {
            docker_ok(&["rm", "-f", &c.name]);
        }
        cleanup.containers.clear();
        for net in &nets {
            docker_ok(&["network", "rm", net]);
        }
        cleanup.networks.clear();
        for id in &ports {
            assert!(
                n.get_port(id).await.unwrap_err().is_not_found(),
                "port {id} left"
            );
            let tap = names::host_ifname(id);
            assert!(
                !link_exists(&tap) && !ovs_ports().contains(&tap),
                "{tap} left on the host"
            );
        }
        for nid in &nids {
            assert!(
                lab.networks_of(nid).await.is_empty(),
                "Neutron network of {nid} left"
            );
        }
        // The user's network and subnet stay, without kuryr's marks.
        let kept_net = n.get_network(&existing.id).await.unwrap();
        assert!(
            !kept_net.tags.iter().any(|t| t.starts_with("kuryr")),
            "{:?}",
            kept_net.tags
        );
        assert!(n.get_subnet(&existing_subnet.id).await.is_ok());
        let left = n
            .list_ports(&Query::new().eq("network_id", &existing.id))
            .await
            .unwrap();
        assert!(
            left.iter().all(|p| p.device_owner != names::DEVICE_OWNER),
            "{left:#?}"
        );
        ours.stop();
    })
    .await;
}
