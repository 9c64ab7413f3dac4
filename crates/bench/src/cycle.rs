//! The measured Docker operations: one container's life on a network of
//! its own (create, run, connect, disconnect, stop, rm, network rm), and
//! many `docker run` at once. Every operation is timed from the CLI's
//! start to its return; the Neutron and Keystone requests in its window
//! are counted from the servers' logs, and, for ours, the driver's log
//! says what its client counted and how long it waited for ACTIVE.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

use crate::Result;
use crate::docker::{self, SETTLE, docker, docker_ok};
use crate::drivers::{Kind, log_path};
use crate::logs::{self, OursCalls, Tail};
use crate::stats::Series;

/// The operations of one cycle, in their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Op {
    NetworkCreate,
    Run,
    Connect,
    Disconnect,
    Stop,
    Rm,
    NetworkRm,
}

impl Op {
    pub const ALL: [Op; 7] = [
        Op::NetworkCreate,
        Op::Run,
        Op::Connect,
        Op::Disconnect,
        Op::Stop,
        Op::Rm,
        Op::NetworkRm,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Op::NetworkCreate => "network create",
            Op::Run => "docker run",
            Op::Connect => "network connect",
            Op::Disconnect => "network disconnect",
            Op::Stop => "docker stop",
            Op::Rm => "docker rm",
            Op::NetworkRm => "network rm",
        }
    }
}

/// What was measured for one operation, over the iterations.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Samples {
    pub ms: Series,
    pub neutron: Series,
    pub keystone: Series,
    /// Ours only: what its log says.
    pub ours: Vec<OursCalls>,
    pub failures: usize,
}

impl Samples {
    /// A series of one of ours' fields.
    pub fn ours_series(&self, f: impl Fn(&OursCalls) -> f64) -> Series {
        Series(self.ours.iter().map(f).collect())
    }
}

pub type OpTable = BTreeMap<Op, Samples>;

/// The three logs an operation's window is read from.
struct Windows {
    neutron: Tail,
    keystone: Tail,
    ours: Tail,
}

impl Windows {
    fn new() -> Windows {
        Windows {
            neutron: Tail::new(log_path("neutron-server.log")),
            keystone: Tail::new(log_path("keystone.out")),
            ours: Tail::new(log_path("kuryr.log")),
        }
    }

    fn skip(&mut self) {
        self.neutron.skip();
        self.keystone.skip();
        self.ours.skip();
    }

    /// Run one timed docker command and record it under `op`.
    fn measure(&mut self, table: &mut OpTable, kind: Kind, op: Op, args: &[&str]) -> bool {
        self.skip();
        let run = docker(args);
        std::thread::sleep(SETTLE);
        let s = table.entry(op).or_default();
        let neutron = logs::neutron_requests(&self.neutron.take());
        let keystone = logs::keystone_issues(&self.keystone.take());
        let ours = self.ours.take();
        if !run.ok {
            eprintln!("  {} {}: FAILED: {}", kind.label(), op.label(), run.output);
            s.failures += 1;
            return false;
        }
        s.ms.push(run.ms());
        s.neutron.push(neutron as f64);
        s.keystone.push(keystone as f64);
        if kind.is_ours() {
            s.ours.push(logs::ours_calls(&ours));
        }
        true
    }
}

/// A subnet of the benchmark's range: 10.190.x.0/24 for cycles,
/// 10.191.x.0/24 for parallel runs, 10.192.x.0/24 for connect targets.
pub fn subnet(block: u8, i: usize) -> String {
    format!("10.{block}.{}.0/24", i % 250)
}

/// `iterations` cycles of one container's life with `kind`; `ready`
/// (untimed) after each network create says when the run may start
/// (ours with ready ports: once they are made).
pub fn cycles(
    kind: Kind,
    iterations: usize,
    tag: &str,
    ready: &dyn Fn() -> Result<()>,
) -> Result<OpTable> {
    let mut table = OpTable::new();
    let target = format!("bench-{tag}-target");
    let args = kind.network_args(&subnet(192, 0), &target);
    docker_ok(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    let mut w = Windows::new();
    for i in 0..iterations {
        let net = format!("bench-{tag}-n{i}");
        let c = format!("bench-{tag}-c{i}");
        let args = kind.network_args(&subnet(190, i), &net);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if !w.measure(&mut table, kind, Op::NetworkCreate, &args) {
            continue;
        }
        ready()?;
        let flag = format!("--net={net}");
        if w.measure(&mut table, kind, Op::Run, &docker::run_args(&c, &flag)) {
            if w.measure(
                &mut table,
                kind,
                Op::Connect,
                &["network", "connect", &target, &c],
            ) {
                w.measure(
                    &mut table,
                    kind,
                    Op::Disconnect,
                    &["network", "disconnect", &target, &c],
                );
            }
            w.measure(&mut table, kind, Op::Stop, &["stop", "-t", "0", &c]);
            w.measure(&mut table, kind, Op::Rm, &["rm", &c]);
        }
        docker::remove(std::slice::from_ref(&c), &[]);
        w.measure(&mut table, kind, Op::NetworkRm, &["network", "rm", &net]);
        docker::remove(&[], std::slice::from_ref(&net));
    }
    docker::remove(&[], &[target]);
    Ok(table)
}

/// Many `docker run -d` at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Parallel {
    pub count: usize,
    pub networks: usize,
    pub wall: Duration,
    pub failures: usize,
    /// Each container's own `docker run` time, ms.
    pub each: Series,
    /// Neutron requests in the window (all drivers), and ours' polls.
    pub neutron: usize,
    pub polls: f64,
    /// The same runs one after another (ours only), for comparison.
    pub sequential: Option<Duration>,
    /// What the first failed run said (its last line).
    #[serde(default)]
    pub first_failure: Option<String>,
}

/// `count` containers started at once over `networks` networks, once
/// `ready` says the networks are (ours with ready ports: made).
pub fn parallel(
    kind: Kind,
    count: usize,
    networks: usize,
    tag: &str,
    ready: &dyn Fn() -> Result<()>,
) -> Result<Parallel> {
    let nets: Vec<String> = (0..networks).map(|j| format!("bench-{tag}-p{j}")).collect();
    for (j, n) in nets.iter().enumerate() {
        let args = kind.network_args(&subnet(191, j), n);
        docker_ok(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    }
    ready()?;
    let names: Vec<String> = (0..count).map(|i| format!("bench-{tag}-q{i}")).collect();
    let mut neutron = Tail::new(log_path("neutron-server.log"));
    let mut ours = Tail::new(log_path("kuryr.log"));
    neutron.skip();
    ours.skip();
    let started = Instant::now();
    let results: Vec<docker::Run> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let flag = format!("--net={}", nets[i % nets.len()]);
                s.spawn(move || docker(&docker::run_args(name, &flag)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a docker thread"))
            .collect()
    });
    let wall = started.elapsed();
    std::thread::sleep(SETTLE);
    let requests = logs::neutron_requests(&neutron.take());
    let polls = logs::ours_calls(&ours.take()).polls;
    let failures = results.iter().filter(|r| !r.ok).count();
    for r in results.iter().filter(|r| !r.ok).take(3) {
        eprintln!("  {} parallel run failed: {}", kind.label(), r.output);
    }
    let each = Series(
        results
            .iter()
            .filter(|r| r.ok)
            .map(docker::Run::ms)
            .collect(),
    );
    let first_failure = results.iter().find(|r| !r.ok).map(|r| {
        r.output
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .trim()
            .to_string()
    });
    docker::remove(&names, &nets);
    Ok(Parallel {
        count,
        networks,
        wall,
        failures,
        each,
        neutron: requests,
        polls,
        sequential: None,
        first_failure,
    })
}

/// The same `count` runs one after another on one network: the wall.
pub fn sequential_runs(kind: Kind, count: usize, tag: &str) -> Result<Duration> {
    let net = format!("bench-{tag}-s");
    let args = kind.network_args(&subnet(191, 200), &net);
    docker_ok(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    let names: Vec<String> = (0..count).map(|i| format!("bench-{tag}-s{i}")).collect();
    let flag = format!("--net={net}");
    let started = Instant::now();
    for n in &names {
        let _ = docker(&docker::run_args(n, &flag));
    }
    let wall = started.elapsed();
    docker::remove(&names, &[net]);
    Ok(wall)
}

/// Remove whatever an earlier, interrupted run left (`bench-*`).
pub fn leftovers() {
    let list = |args: &[&str]| -> Vec<String> {
        docker(args)
            .output
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    };
    let containers = list(&["ps", "-aq", "--filter", "name=^bench-"]);
    let networks = list(&["network", "ls", "-q", "--filter", "name=^bench-"]);
    docker::remove(&containers, &networks);
}
