//! The fault suite's long form (not in CI; `soak/run` runs it): Docker
//! commands in a loop against the lab, `docker run`/`rm` and `docker
//! network connect`/`disconnect` cycles, while the daemon is SIGKILLed
//! and neutron-server restarted at random moments. Every command that
//! fails must fail with a clear Docker error and succeed when retried;
//! at the end, once orphan collection has run, no Neutron object, host
//! link or OVS interface of the driver may be left that no Docker object
//! explains. The figures are printed for docs/reliability.md.
//!
//! Settings (environment): `SOAK_CYCLES` (1000), `SOAK_KILLS` (20),
//! `SOAK_NEUTRON_RESTARTS` (5), `SOAK_SEED` (random; printed).

mod common;

use std::time::{Duration, Instant};

use common::docker_cli::{Cleanup, daemon_pid, docker_ok};
use common::env::{random_u64, unique};
use common::faults::*;
use common::lab::{self, Lab};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (xorshift), so a seed replays a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What disturbs a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disruption {
    KillDaemon,
    RestartNeutron,
}

/// The run's figures.
#[derive(Debug, Default)]
struct Figures {
    cycles: u64,
    commands: u64,
    kills: u64,
    neutron_restarts: u64,
    failures: u64,
    retries_ok: u64,
    retries_failed: Vec<String>,
}

/// Run a Docker command; on failure check the error is a Docker one and
/// retry once, after the disruption (if any) is over.
fn command(f: &mut Figures, args: &[&str], disruption: &mut Option<std::thread::JoinHandle<()>>) {
    f.commands += 1;
    let (ok, out) = docker_try(args);
    if ok {
        return;
    }
    f.failures += 1;
    assert_clear_error(&args.join(" "), &out);
    if let Some(d) = disruption.take() {
        d.join().expect("disruption thread");
    }
    // A `docker run` that failed leaves its container in Created state.
    if args.first() == Some(&"run")
        && let Some(name) = args
            .iter()
            .position(|a| *a == "--name")
            .map(|i| args[i + 1])
    {
        let _ = docker_try(&["rm", "-f", name]);
    }
    let (ok, again) = docker_try(args);
    if ok {
        f.retries_ok += 1;
    } else {
        f.retries_failed
            .push(format!("{}: {out} / retry: {again}", args.join(" ")));
    }
}

/// Start `what` in the background, `delay` from now.
fn disrupt(what: Disruption, delay: Duration) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        match what {
            Disruption::KillDaemon => {
                if let Some(pid) = daemon_pid() {
                    // SAFETY: kill(2) with SIGKILL on the daemon's recorded
                    // pid (its record is checked against /proc).
                    unsafe {
                        libc::kill(pid as i32, libc::SIGKILL);
                    }
                }
                start_daemon(None);
            }
            Disruption::RestartNeutron => {
                restart_services(&["neutron-server"]);
            }
        }
    })
}

#[tokio::test]
#[ignore = "long (about an hour): run by soak/run"]
async fn soak() {
    let cycles = setting("SOAK_CYCLES", 1000);
    let kills = setting("SOAK_KILLS", 20);
    let restarts = setting("SOAK_NEUTRON_RESTARTS", 5);
    let seed = setting("SOAK_SEED", random_u64() | 1);
    println!(
        "soak: {cycles} cycles, {kills} SIGKILLs, {restarts} neutron-server restarts, seed {seed}"
    );
    let mut rng = Rng(seed);
    let mut plan = vec![None; cycles as usize];
    for (what, n) in [
        (Disruption::KillDaemon, kills),
        (Disruption::RestartNeutron, restarts),
    ] {
        for _ in 0..n {
            // Cycles with nothing planned yet, spread over the run.
            loop {
                let at = rng.below(cycles) as usize;
                if plan[at].is_none() {
                    plan[at] = Some(what);
                    break;
                }
            }
        }
    }
    lab::run(async |lab: &Lab| {
        let _after = OrdinaryDaemonAfter;
        let scope = exclusive_scope();
        start_daemon(None);
        let started = Instant::now();
        let net = unique("ksoak");
        let mut cleanup = Cleanup::new();
        cleanup.kuryr_network(&net, Some(&lab.cidr4(0)), &[]);
        // A container on a second kuryr network, connected to and
        // disconnected from the first (Docker refuses to connect one on
        // `none` to any network: every such cycle failed).
        let home = format!("{net}-home");
        cleanup.kuryr_network(&home, Some(&lab.cidr4(1)), &[]);
        let roamer = format!("{net}-roamer");
        cleanup.container(&roamer, &home, &[]);
        let mut f = Figures::default();
        for (i, planned) in plan.iter().enumerate() {
            let mut disruption = planned.map(|what| {
                let delay = Duration::from_millis(rng.below(1500));
                match what {
                    Disruption::KillDaemon => f.kills += 1,
                    Disruption::RestartNeutron => f.neutron_restarts += 1,
                }
                disrupt(what, delay)
            });
            if i % 2 == 0 {
                let c = format!("{net}-c{i}");
                let netarg = format!("--net={net}");
                command(
                    &mut f,
                    &[
                        "run", "-d", "--name", &c, &netarg, "busybox", "sleep", "600",
                    ],
                    &mut disruption,
                );
                command(&mut f, &["rm", "-f", &c], &mut disruption);
            } else {
                command(
                    &mut f,
                    &["network", "connect", &net, &roamer],
                    &mut disruption,
                );
                command(
                    &mut f,
                    &["network", "disconnect", &net, &roamer],
                    &mut disruption,
                );
            }
            if let Some(d) = disruption.take() {
                d.join().expect("disruption thread");
            }
            f.cycles += 1;
            if f.cycles % 50 == 0 {
                println!(
                    "soak: {} cycles, {} failures seen, {} retries failed ({} s)",
                    f.cycles,
                    f.failures,
                    f.retries_failed.len(),
                    started.elapsed().as_secs()
                );
            }
        }
        docker_ok(&["rm", "-f", &roamer]);
        cleanup.containers.clear();
        docker_ok(&["network", "rm", &net]);
        cleanup.networks.clear();
        let left = settle(&lab.neutron, &scope).await;
        println!(
            "soak figures: cycles={} commands={} sigkills={} neutron_restarts={} \
             failures_seen={} retries_ok={} retries_failed={} leaks={} seconds={}",
            f.cycles,
            f.commands,
            f.kills,
            f.neutron_restarts,
            f.failures,
            f.retries_ok,
            f.retries_failed.len(),
            left.len(),
            started.elapsed().as_secs()
        );
        assert!(f.retries_failed.is_empty(), "{:#?}", f.retries_failed);
        assert!(left.is_empty(), "leaked: {left:#?}");
    })
    .await;
}
