//! The fault suite against the lab's real services and dockerd, short
//! form (the long form is `tests/alone_soak.rs`, run by `soak/run`):
//!
//! - the daemon SIGKILLed at every step-boundary fault point of the seven
//!   handlers (`KURYR_FAULT_POINTS=<point>=crash`: it kills itself there),
//!   while dockerd waits on it; restarted at once, as systemd would;
//! - neutron-server stopped (SIGSTOP) for longer than a call may take,
//!   in the middle of `docker run`: the command fails within the bound
//!   with an error naming Neutron, and the retry succeeds;
//! - neutron-server, Keystone and dockerd restarted mid-operation.
//!
//! After every case: each Docker command either succeeded or failed with
//! a clear Docker error and succeeded when retried, and once orphan
//! collection has run (every 2 s here, 3 s grace) no Neutron object, host
//! link or OVS interface of the driver is left that no Docker object
//! explains ([`common::explain`]).
//!
//! These tests kill the lab-wide driver and stop or restart shared lab
//! services: they run alone (`run-tests` runs `alone_*` binaries in a
//! phase of their own); by hand, under the exclusive lab lock:
//! `eval "$(lab/env kuryr)"; flock -x /tmp/kuryr-lab.lock cargo nextest run -p kuryr --test alone_faults`.
//! `KURYR_TEST_DAEMON_BIN=<path>` runs them against another build of the
//! daemon (to see them fail before a fix).

mod common;

use std::time::{Duration, Instant};

use common::docker_cli::{Cleanup, daemon_pid, docker_ok, network_id, restart_daemon_with};
use common::env::unique;
use common::faults::*;
use common::lab::{self, Lab};
use kuryr::driver::FAULT_POINTS;
use kuryr::names;
use kuryr_openstack::TagResource;
use kuryr_openstack::neutron::{NetworkCreate, Port, SubnetCreate};

/// DeleteNetwork passes these only when it gives an adopted (user's)
/// network back rather than deleting one it made.
const ADOPTED_ONLY: &[&str] = &[
    "DeleteNetwork.subnets_deleted",
    "DeleteNetwork.tags_removed",
];

/// The Docker command during which a fault point is passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    NetworkCreate,
    Run,
    Rm,
    NetworkRm,
}

fn stage_of(point: &str) -> Stage {
    match point.split('.').next().unwrap_or_default() {
        "CreateNetwork" => Stage::NetworkCreate,
        "RequestAddress" | "CreateEndpoint" | "Join" => Stage::Run,
        "DeleteEndpoint" | "ReleaseAddress" => Stage::Rm,
        "DeleteNetwork" => Stage::NetworkRm,
        other => panic!("no Docker command for {other}"),
    }
}

/// A Docker network and a container on it, by name.
struct Names {
    net: String,
    container: String,
    create: Vec<String>,
}

impl Names {
    fn new(cidr: &str, adopt: Option<&str>) -> Names {
        let net = unique("kf");
        let mut create: Vec<String> =
            ["network", "create", "-d", "kuryr", "--ipam-driver", "kuryr"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        create.extend(["--subnet".into(), cidr.into()]);
        if let Some(uuid) = adopt {
            create.extend(["-o".into(), format!("neutron.net.uuid={uuid}")]);
        }
        create.push(net.clone());
        Names {
            container: format!("{net}-c"),
            net,
            create,
        }
    }

    fn args(&self, stage: Stage) -> Vec<String> {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match stage {
            Stage::NetworkCreate => self.create.clone(),
            Stage::Run => v(&[
                "run",
                "-d",
                "--name",
                &self.container,
                &format!("--net={}", self.net),
                "busybox",
                "sleep",
                "600",
            ]),
            Stage::Rm => v(&["rm", "-f", &self.container]),
            Stage::NetworkRm => v(&["network", "rm", &self.net]),
        }
    }

    /// Run a stage's command; a failed `docker run` leaves a container in
    /// Created state, which goes before the retry.
    fn run(&self, stage: Stage) -> (bool, String) {
        let args = self.args(stage);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        docker_try(&refs)
    }

    /// The user's retry: up to three tries a few seconds apart (what a
    /// crash left may hold the subnet until orphan collection, every 2 s
    /// with a 3 s grace here, removes it).
    fn retry(&self, stage: Stage) -> (bool, String) {
        let mut last = String::new();
        for attempt in 1..=3 {
            if stage == Stage::Run {
                let _ = docker_try(&["rm", "-f", &self.container]);
            }
            let (ok, out) = self.run(stage);
            if ok {
                return (true, format!("retry {attempt} ok"));
            }
            last = out;
            std::thread::sleep(Duration::from_secs(4));
        }
        (false, last)
    }
}

/// A user's network with a subnet of `cidr` (for the adopted-network
/// points), tracked for cleanup.
async fn user_network(lab: &Lab, cidr: &str) -> String {
    let n = &lab.neutron;
    let net = n
        .create_network(&NetworkCreate {
            name: Some(unique("kf-user-")),
            ..Default::default()
        })
        .await
        .expect("create user network");
    lab.track_user_network(&net.id);
    n.replace_tags(TagResource::Network, &net.id, &["user-owned"])
        .await
        .unwrap();
    n.create_subnet(&SubnetCreate {
        network_id: net.id.clone(),
        ip_version: 4,
        cidr: Some(cidr.into()),
        enable_dhcp: Some(false),
        ..Default::default()
    })
    .await
    .expect("create user subnet");
    net.id
}

/// One SIGKILL case; a line for the log, or what went wrong.
async fn kill_case(lab: &Lab, point: &str, k: u32) -> Result<String, String> {
    let scope = exclusive_scope();
    let stage = stage_of(point);
    let cidr = lab.cidr4(k);
    let adopt = if ADOPTED_ONLY.contains(&point) {
        Some(user_network(lab, &cidr).await)
    } else {
        None
    };
    let names = Names::new(&cidr, adopt.as_deref());
    let mut cleanup = Cleanup::new();
    cleanup.networks.push(names.net.clone());
    cleanup.containers.push(names.container.clone());
    let pid = start_daemon(Some(point));
    for before in [Stage::NetworkCreate, Stage::Run, Stage::Rm] {
        if before < stage {
            let (ok, out) = names.run(before);
            if !ok {
                return Err(format!("{before:?} before the fault: {out}"));
            }
        }
    }
    let args = names.args(stage);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let op = docker_bg(&refs);
    let died = wait_death(pid, Duration::from_secs(60), || op.is_finished());
    // Restarted at once, as systemd's Restart= would: dockerd's retry
    // (1, 3, 7, 15 s) may reach the new process.
    start_daemon(None);
    let (ok, out, took) = op.join().expect("docker thread");
    if !died {
        return Err(format!("the daemon did not die at {point} ({ok}: {out})"));
    }
    let first = if ok {
        format!("succeeded in {} ms", took.as_millis())
    } else {
        assert_clear_error(point, &out);
        let (ok, again) = names.retry(stage);
        if !ok {
            return Err(format!(
                "{stage:?} failed ({out}), and its retry too: {again}"
            ));
        }
        format!(
            "failed ({}), {again}",
            out.lines().last().unwrap_or_default()
        )
    };
    for after in [Stage::Run, Stage::Rm, Stage::NetworkRm] {
        if after > stage {
            let (ok, out) = names.run(after);
            if !ok {
                return Err(format!("{after:?} after the fault: {out}"));
            }
        }
    }
    cleanup.containers.clear();
    cleanup.networks.clear();
    let left = settle(&lab.neutron, &scope).await;
    if !left.is_empty() {
        return Err(format!("left unexplained after {SETTLE:?}: {left:#?}"));
    }
    Ok(first)
}

/// Every fault point of `handler`, each killing the daemon once.
async fn kill_at_every_point_of(handler: &str) {
    let points: Vec<&str> = FAULT_POINTS
        .iter()
        .copied()
        .filter(|p| p.split('.').next() == Some(handler))
        .collect();
    assert!(!points.is_empty());
    lab::run(async |lab: &Lab| {
        let _after = OrdinaryDaemonAfter;
        let mut failed = Vec::new();
        for (k, point) in points.iter().enumerate() {
            let started = Instant::now();
            let outcome = kill_case(lab, point, k as u32).await;
            let ms = started.elapsed().as_millis();
            match &outcome {
                Ok(line) => println!("SIGKILL at {point}: docker {line}; nothing left ({ms} ms)"),
                Err(e) => println!("SIGKILL at {point}: FAILED ({ms} ms): {e}"),
            }
            if let Err(e) = outcome {
                failed.push(format!("{point}: {e}"));
            }
        }
        assert!(failed.is_empty(), "{failed:#?}");
    })
    .await;
}

#[tokio::test]
async fn sigkill_in_create_network() {
    kill_at_every_point_of("CreateNetwork").await;
}

#[tokio::test]
async fn sigkill_in_request_address() {
    kill_at_every_point_of("RequestAddress").await;
}

#[tokio::test]
async fn sigkill_in_create_endpoint() {
    kill_at_every_point_of("CreateEndpoint").await;
}

#[tokio::test]
async fn sigkill_in_join() {
    kill_at_every_point_of("Join").await;
}

#[tokio::test]
async fn sigkill_in_delete_endpoint() {
    kill_at_every_point_of("DeleteEndpoint").await;
}

#[tokio::test]
async fn sigkill_in_release_address() {
    kill_at_every_point_of("ReleaseAddress").await;
}

#[tokio::test]
async fn sigkill_in_delete_network() {
    kill_at_every_point_of("DeleteNetwork").await;
}

/// How long neutron-server stays stopped: longer than any call may take
/// (25 s), so only a bound in the driver can end `docker run` before.
const STOPPED_FOR: Duration = Duration::from_secs(40);

/// neutron-server's process group stopped (it accepts connections and
/// answers nothing) while `docker run` goes: before the fix the command
/// hung for as long as the stop lasted.
#[tokio::test]
async fn docker_run_while_neutron_is_stopped_fails_in_bounded_time() {
    lab::run(async |lab: &Lab| {
        let _after = OrdinaryDaemonAfter;
        let scope = exclusive_scope();
        start_daemon(None);
        let names = Names::new(&lab.cidr4(0), None);
        let mut cleanup = Cleanup::new();
        cleanup.networks.push(names.net.clone());
        cleanup.containers.push(names.container.clone());
        let (ok, out) = names.run(Stage::NetworkCreate);
        assert!(ok, "{out}");
        let (ok, out, took) = {
            let stopped = Stopped::service("neutron-server");
            let run = names.args(Stage::Run);
            let refs: Vec<&str> = run.iter().map(String::as_str).collect();
            let result = docker_bg(&refs).join().expect("docker thread");
            // Keep it stopped as long as planned: the answer came from
            // the bound, not from Neutron coming back.
            let rest = STOPPED_FOR.saturating_sub(stopped.since.elapsed());
            tokio::time::sleep(rest).await;
            result
        };
        println!(
            "docker run with neutron-server stopped: {ok} after {} ms: {out}",
            took.as_millis()
        );
        assert!(!ok, "docker run cannot succeed without Neutron: {out}");
        assert!(
            took < STOPPED_FOR - Duration::from_secs(5),
            "docker run waited {} s: as long as Neutron was stopped",
            took.as_secs()
        );
        assert_clear_error("docker run", &out);
        assert!(
            out.to_ascii_lowercase().contains("neutron"),
            "the error names what did not answer: {out}"
        );
        neutron_answers(&lab.neutron).await;
        let (ok, out) = names.retry(Stage::Run);
        assert!(ok, "the retry once Neutron is back: {out}");
        for stage in [Stage::Rm, Stage::NetworkRm] {
            let (ok, out) = names.run(stage);
            assert!(ok, "{stage:?}: {out}");
        }
        cleanup.containers.clear();
        cleanup.networks.clear();
        let left = settle(&lab.neutron, &scope).await;
        assert!(left.is_empty(), "left: {left:#?}");
    })
    .await;
}

/// neutron-server restarted while `docker run` goes; then Keystone
/// restarted while containers come and go.
#[tokio::test]
async fn neutron_and_keystone_restarts_mid_operation() {
    lab::run(async |lab: &Lab| {
        let _after = OrdinaryDaemonAfter;
        let scope = exclusive_scope();
        start_daemon(None);
        let names = Names::new(&lab.cidr4(0), None);
        let mut cleanup = Cleanup::new();
        cleanup.networks.push(names.net.clone());
        cleanup.containers.push(names.container.clone());
        let (ok, out) = names.run(Stage::NetworkCreate);
        assert!(ok, "{out}");

        let run = names.args(Stage::Run);
        let refs: Vec<&str> = run.iter().map(String::as_str).collect();
        let op = docker_bg(&refs);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let restart = restart_services(&["neutron-server"]);
        let (ok, out, took) = op.join().expect("docker thread");
        println!(
            "docker run during a neutron-server restart ({} ms): {ok} after {} ms",
            restart.as_millis(),
            took.as_millis()
        );
        if !ok {
            assert_clear_error("docker run", &out);
            neutron_answers(&lab.neutron).await;
            let (ok, again) = names.retry(Stage::Run);
            assert!(ok, "{out}; the retry: {again}");
        }
        let (ok, out) = names.run(Stage::Rm);
        assert!(ok, "{out}");

        // Keystone restarted: the daemon's token stays valid, containers
        // come and go meanwhile.
        let keystone = std::thread::spawn(|| restart_services(&["keystone"]));
        let mut cycles = 0;
        while !keystone.is_finished() || cycles == 0 {
            let (ok, out) = names.run(Stage::Run);
            assert!(ok, "docker run during a Keystone restart: {out}");
            let (ok, out) = names.run(Stage::Rm);
            assert!(ok, "{out}");
            cycles += 1;
        }
        let took = keystone.join().expect("restart thread");
        println!(
            "{cycles} run/rm cycles during a Keystone restart ({} ms)",
            took.as_millis()
        );
        let (ok, out) = names.run(Stage::NetworkRm);
        assert!(ok, "{out}");
        cleanup.containers.clear();
        cleanup.networks.clear();
        let left = settle(&lab.neutron, &scope).await;
        assert!(left.is_empty(), "left: {left:#?}");
    })
    .await;
}

/// dockerd restarted with kuryr containers running: the one with a
/// restart policy runs again with a kuryr address; without live-restore
/// the other stops and its endpoint is cleaned up (by dockerd's cleanup,
/// or orphan collection when dockerd does not call the driver).
#[tokio::test]
async fn dockerd_restart_with_kuryr_containers_running() {
    lab::run(async |lab: &Lab| {
        let _after = OrdinaryDaemonAfter;
        let scope = exclusive_scope();
        start_daemon(None);
        let names = Names::new(&lab.cidr4(0), None);
        let mut cleanup = Cleanup::new();
        cleanup.networks.push(names.net.clone());
        let (ok, out) = names.run(Stage::NetworkCreate);
        assert!(ok, "{out}");
        let (plain, always) = (
            format!("{}-plain", names.net),
            format!("{}-always", names.net),
        );
        cleanup.container(&plain, &names.net, &[]);
        cleanup.container(&always, &names.net, &["--restart", "always"]);
        let took = restart_services(&["dockerd"]);
        println!("dockerd restarted in {} ms", took.as_millis());
        let state = |c: &str| docker_ok(&["inspect", "-f", "{{.State.Status}}", c]);
        common::env::eventually(
            "the --restart always container back",
            Duration::from_secs(60),
            || async { (state(&always) == "running").then_some(()) },
        )
        .await;
        // With live-restore both go on running; without, the plain one
        // stopped with dockerd (its endpoint released).
        println!(
            "after the restart: {plain} {}, {always} running",
            state(&plain)
        );
        for c in [&always, &plain] {
            if state(c) == "running" {
                let (ok, out) = docker_try(&["exec", c, "ip", "-o", "-4", "addr", "show", "eth0"]);
                assert!(
                    ok && out.contains("inet 10."),
                    "{c}: a kuryr address: {out}"
                );
            }
        }
        let left = settle(&lab.neutron, &scope).await;
        assert!(left.is_empty(), "left with containers running: {left:#?}");
        docker_ok(&["rm", "-f", &plain, &always]);
        cleanup.containers.clear();
        docker_ok(&["network", "rm", &names.net]);
        cleanup.networks.clear();
        let left = settle(&lab.neutron, &scope).await;
        assert!(left.is_empty(), "left: {left:#?}");
    })
    .await;
}

/// The daemon keeps 2 ports ready per subnet and is SIGKILLed right after
/// Neutron made them, before it stored them: the restarted daemon takes
/// them back (and makes no more), `docker run` gets one, and `docker
/// network rm` leaves nothing.
#[tokio::test]
async fn sigkill_after_ready_ports_are_made_leaves_them_to_the_restart() {
    lab::run(async |lab: &Lab| {
        let _after = OrdinaryDaemonAfter;
        let scope = exclusive_scope();
        let conf = format!("{FAULT_CONF}ports_pool_size = 2\n");
        restart_daemon_with(&[("KURYR_FAULT_POINTS", "ReadyPort.made=crash")], &conf);
        let pid = daemon_pid().expect("the daemon runs");
        let mut cleanup = Cleanup::new();
        let net = unique("kf-ready");
        cleanup.kuryr_network(&net, Some(&lab.cidr4(0)), &[]);
        assert!(
            wait_death(pid, Duration::from_secs(30), || false),
            "the daemon did not die making ready ports"
        );
        restart_daemon_with(&[], &conf);
        let network = lab.network_of(&network_id(&net)).await;
        let ready = |ports: &[Port]| -> Vec<Port> {
            ports
                .iter()
                .filter(|p| p.name == names::READY_PORT_NAME)
                .cloned()
                .collect()
        };
        // Taken back: the same two ports, none made besides.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = ready(&lab.kuryr_ports_in(&network.id).await);
        assert_eq!(before.len(), 2, "{before:#?}");
        let container = format!("{net}-c");
        cleanup.container(&container, &net, &[]);
        let ip = docker_ok(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            &container,
        ]);
        assert!(
            before
                .iter()
                .any(|p| p.fixed_ips[0].ip_address == ip.trim()),
            "{ip} is no ready port's: {before:#?}"
        );
        let nid = network_id(&net);
        drop(cleanup);
        assert!(lab.networks_of(&nid).await.is_empty(), "network left");
        let left = settle(&lab.neutron, &scope).await;
        assert!(left.is_empty(), "left unexplained: {left:#?}");
        assert!(
            lab.ports_in(&network.id).await.is_empty(),
            "ports left on the removed network"
        );
    })
    .await;
}
