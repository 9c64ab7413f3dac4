//! `kuryr-bench`: the benchmark behind docs/benchmarks.md, run by
//! `bench/run` (not a test, not in CI). In one go on the lab, holding it
//! alone, it measures this driver (release build), kuryr-libnetwork
//! 18.0.0, Docker's bridge driver and the Neutron floor (our requests
//! sent straight to Neutron), and writes the tables and SVG plots.
//!
//! Phases: time to ready; per-operation cycles of each driver; parallel
//! `docker run`; RSS; the floor; latency with filler ports and networks
//! in Neutron. See [`cycle`] for what a cycle measures and [`logs`] for
//! how requests are counted.

mod cycle;
mod docker;
mod drivers;
mod floor;
mod logs;
mod plot;
mod ready;
mod report;
mod scale;
mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use cycle::{Op, OpTable, Parallel};
use drivers::Kind;
use stats::Series;

/// Why the benchmark stopped.
#[derive(Debug)]
pub struct BenchError(String);

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for BenchError {
    fn from(s: String) -> Self {
        BenchError(s)
    }
}

impl From<&str> for BenchError {
    fn from(s: &str) -> Self {
        BenchError(s.to_string())
    }
}

impl From<kuryr_openstack::Error> for BenchError {
    fn from(e: kuryr_openstack::Error) -> Self {
        BenchError(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, BenchError>;

#[derive(Parser, Debug)]
#[command(about = "Benchmark kuryr-rs against kuryr-libnetwork, Docker's bridge and Neutron")]
struct Args {
    /// Our release binary.
    #[arg(long, default_value = "target/release/kuryr")]
    kuryr: PathBuf,
    /// The repository (lab scripts, docs/).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// Cycles per driver (medians of this many).
    #[arg(long, default_value_t = 20)]
    iterations: usize,
    /// Cycles per driver at each scale point.
    #[arg(long, default_value_t = 5)]
    scale_iterations: usize,
    /// Parallel `docker run` counts.
    #[arg(long, value_delimiter = ',', default_values_t = [20, 50])]
    parallel: Vec<usize>,
    /// Filler ports for the scale runs (the first point has this many).
    #[arg(long, value_delimiter = ',', default_values_t = [10, 1000, 10000])]
    ports: Vec<usize>,
    /// Filler networks added at the last scale point.
    #[arg(long, default_value_t = 1000)]
    networks: usize,
    /// Skip the scale runs.
    #[arg(long)]
    no_scale: bool,
    /// Write the report here (and its plots in `<dir>/bench/`).
    #[arg(long, default_value = "docs")]
    out: PathBuf,
    /// Parts to take from the last run's `<out>/bench/results.json`
    /// instead of measuring them again (`libnetwork`, `bridge`, `floor`):
    /// ours is always measured.
    #[arg(long, value_delimiter = ',')]
    keep: Vec<String>,
    /// Measure nothing: write the report again from the last run's
    /// `<out>/bench/results.json` (after a change to the report's text).
    #[arg(long)]
    report_only: bool,
}

/// What `--keep` takes from the last run.
#[derive(Debug, Default)]
struct Keep {
    python: bool,
    bridge: bool,
    floor: bool,
}

impl Keep {
    fn of(parts: &[String]) -> Result<Keep> {
        let mut k = Keep::default();
        for p in parts {
            match p.as_str() {
                "libnetwork" => k.python = true,
                "bridge" => k.bridge = true,
                "floor" => k.floor = true,
                other => {
                    return Err(
                        format!("--keep {other}: expected libnetwork, bridge or floor").into(),
                    );
                }
            }
        }
        Ok(k)
    }

    fn any(&self) -> bool {
        self.python || self.bridge || self.floor
    }
}

/// A driver, and whether Neutron was reachable.
pub type ReadyKey = (Kind, bool);

/// Everything one run measured (also saved as `<out>/bench/results.json`,
/// so a later run can measure only what changed: `--keep`).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Results {
    pub cycles: BTreeMap<Kind, OpTable>,
    pub floor: BTreeMap<Op, Series>,
    /// (driver or None for the floor) -> runs at once.
    pub parallel: Vec<(Option<Kind>, Parallel)>,
    pub rss: BTreeMap<Kind, (Option<f64>, Option<f64>)>,
    /// (driver, Neutron reachable) -> ms until Activate (None: never).
    pub ready: Vec<(ReadyKey, Vec<Option<f64>>)>,
    /// (ports, networks) -> driver -> table.
    pub scale: Vec<((usize, usize), BTreeMap<Kind, OpTable>)>,
    pub notes: Vec<String>,
    /// When each part was measured (`ours`, `libnetwork`, ...).
    pub measured: BTreeMap<String, String>,
}

impl Results {
    pub fn ready_of(&self, key: (Kind, bool)) -> Vec<Option<f64>> {
        self.ready
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    fn push_ready(&mut self, key: (Kind, bool), v: Option<f64>) {
        match self.ready.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(v),
            None => self.ready.push((key, vec![v])),
        }
    }
}

/// The results a last run saved, for `option`.
fn load(saved: &std::path::Path, option: &str) -> Result<Results> {
    let text = std::fs::read_to_string(saved)
        .map_err(|e| format!("{option} needs {}: {e}", saved.display()))?;
    Ok(serde_json::from_str::<Results>(&text).map_err(|e| format!("{}: {e}", saved.display()))?)
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("kuryr-bench: {e}");
        std::process::exit(1);
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn step(what: &str) {
    eprintln!("[{}] {what}", report::now());
}

fn run(args: &Args) -> Result<()> {
    let repo = std::fs::canonicalize(&args.repo).map_err(|e| e.to_string())?;
    let saved = repo.join(&args.out).join("bench/results.json");
    if args.report_only {
        return report::write(&load(&saved, "--report-only")?, args, &repo);
    }
    let bin = std::fs::canonicalize(&args.kuryr)
        .map_err(|e| format!("{}: {e} (cargo build --release)", args.kuryr.display()))?;
    let rt = rt();
    let neutron = kuryr_test_support::neutron("kuryr");
    let host = kuryr_test_support::host();
    let keep = Keep::of(&args.keep)?;
    let mut r = if keep.any() {
        load(&saved, "--keep")?
    } else {
        Results::default()
    };
    r.notes.clear();
    let started = std::time::Instant::now();
    r.measured.insert(report::STARTED.into(), report::now());
    r.measured
        .insert(report::REVISION.into(), report::revision(&repo));

    step("cleaning up leftovers");
    cycle::leftovers();
    rt.block_on(floor::cleanup(&neutron));
    rt.block_on(scale::cleanup(&neutron));

    // Each phase on its own: one that fails is noted in the report and
    // the others still run.
    let phase = |r: &mut Results, name: &str, f: &mut dyn FnMut(&mut Results) -> Result<()>| {
        if let Err(e) = f(r) {
            eprintln!("{name} failed: {e}");
            r.notes.push(format!("The {name} phase failed: {e}."));
            cycle::leftovers();
        }
    };

    phase(&mut r, "kuryr-rs", &mut |r| {
        r.measured.insert("kuryr-rs".into(), report::now());
        step("ours: start (lab/kuryr-up)");
        let pid = drivers::start_ours(&repo, &bin)?;
        std::thread::sleep(Duration::from_secs(2));
        let idle = drivers::rss_mib(pid);
        r.rss.insert(Kind::Ours, (idle, None));
        step("ours: cycles");
        r.cycles.insert(
            Kind::Ours,
            cycle::cycles(Kind::Ours, args.iterations, "o", &no_wait)?,
        );
        parallel_runs(
            r,
            Kind::Ours,
            &args.parallel,
            &|_, _| Ok(()),
            &|_, _| Ok(()),
        )?;
        r.rss.insert(Kind::Ours, (idle, drivers::rss_mib(pid)));
        Ok(())
    });

    for kind in [Kind::OursPool, Kind::OursPoolNoWait] {
        phase(&mut r, kind.label(), &mut |r| {
            ours_with_ready_ports(r, kind, &rt, &neutron, &host, &repo, &bin, args)
        });
    }

    step("kuryr-libnetwork: start");
    let conf = drivers::python_conf(drivers::PYTHON_URL, "kuryr-bench-python.log", None, true)?;
    let (python, up) =
        drivers::Python::start(&conf, drivers::PYTHON_ADDR, Duration::from_secs(120))?;
    if up.is_some() && !keep.python {
        drivers::register_python()?;
        phase(&mut r, "kuryr-libnetwork", &mut |r| {
            r.measured.insert("kuryr-libnetwork".into(), report::now());
            std::thread::sleep(Duration::from_secs(2));
            let idle = drivers::rss_mib(python.pid());
            r.rss.insert(Kind::Python, (idle, None));
            step("kuryr-libnetwork: cycles");
            r.cycles.insert(
                Kind::Python,
                cycle::cycles(Kind::Python, args.iterations, "p", &no_wait)?,
            );
            parallel_runs(r, Kind::Python, &args.parallel, &|_, _| Ok(()), &|_, _| {
                Ok(())
            })?;
            r.rss
                .insert(Kind::Python, (idle, drivers::rss_mib(python.pid())));
            Ok(())
        });
    } else if up.is_none() {
        r.notes.push(
            "kuryr-libnetwork did not answer Plugin.Activate (see kuryr-bench-python.out)".into(),
        );
    }
    drivers::register_python()?;

    phase(&mut r, "bridge", &mut |r| {
        if keep.bridge {
            return Ok(());
        }
        r.measured.insert("bridge".into(), report::now());
        step("bridge: cycles");
        r.cycles.insert(
            Kind::Bridge,
            cycle::cycles(Kind::Bridge, args.iterations, "b", &no_wait)?,
        );
        parallel_runs(r, Kind::Bridge, &args.parallel, &|_, _| Ok(()), &|_, _| {
            Ok(())
        })
    });

    phase(&mut r, "Neutron floor", &mut |r| {
        if keep.floor {
            return Ok(());
        }
        r.measured.insert("Neutron floor".into(), report::now());
        r.floor.clear();
        r.parallel.retain(|(k, _)| k.is_some());
        step("Neutron floor");
        // 50 runs' 150 requests at once queue longer than the driver's
        // 15 s timeout at the lab's one API worker: the floor waits them out.
        let patient = kuryr_test_support::neutron_with_timeout("kuryr", FLOOR_TIMEOUT);
        let out = rt.block_on(floor_runs(r, &patient, &host, args));
        rt.block_on(floor::cleanup(&neutron));
        out
    });

    if !args.no_scale && up.is_some() {
        phase(&mut r, "scale", &mut |r| {
            step("scale");
            // Ours as configured by default (the last phase of ours kept
            // ports ready).
            drivers::start_ours(&repo, &bin)?;
            let admin = kuryr_test_support::neutron("admin");
            let kinds: &[Kind] = if keep.python {
                &[Kind::Ours]
            } else {
                &[Kind::Ours, Kind::Python]
            };
            rt.block_on(scale_runs(r, &neutron, admin, args, kinds))
        });
    }
    drop(python);

    if !keep.python {
        phase(&mut r, Kind::PythonNoWait.label(), &mut |r| {
            python_no_wait(r, args)
        });
    }
    drivers::unregister_python();

    phase(&mut r, "time to ready", &mut |r| {
        step("time to ready");
        ready_runs(r, &bin, &keep)
    });

    // Ours back as the lab runs it.
    drivers::start_ours(&repo, &bin)?;
    r.notes.push(format!(
        "The whole run took {:.0} minutes.",
        started.elapsed().as_secs_f64() / 60.0
    ));
    step("writing the report");
    if keep.any() {
        let kept: Vec<String> = ["kuryr-libnetwork", "bridge", "Neutron floor"]
            .iter()
            .filter_map(|k| r.measured.get(*k).map(|t| format!("{k} on {t}")))
            .collect();
        r.notes.push(format!(
            "This report reuses figures measured earlier on the same lab ({}); kuryr-rs was \
             measured on {}.",
            kept.join(", "),
            r.measured.get("kuryr-rs").cloned().unwrap_or_default()
        ));
    }
    report::write(&r, args, &repo)?;
    let json = serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?;
    std::fs::write(&saved, json).map_err(|e| format!("{}: {e}", saved.display()))?;
    step("done");
    Ok(())
}

/// Ports `ports_pool_size` per subnet in the cycles of ours with ready
/// ports (the run's network and the connect target each keep these).
pub const CYCLE_POOL: usize = 2;

/// How long one of the floor's requests may take.
const FLOOR_TIMEOUT: Duration = Duration::from_secs(120);

fn no_wait() -> Result<()> {
    Ok(())
}

/// Ours keeping ports ready, waiting for ACTIVE or not (`kind`): cycles,
/// then runs at once.
#[allow(clippy::too_many_arguments)]
fn ours_with_ready_ports(
    r: &mut Results,
    kind: Kind,
    rt: &tokio::runtime::Runtime,
    neutron: &kuryr_openstack::Neutron,
    host: &str,
    repo: &std::path::Path,
    bin: &std::path::Path,
    args: &Args,
) -> Result<()> {
    r.measured.insert(kind.label().into(), report::now());
    step(&format!(
        "{}: cycles (ports_pool_size = {CYCLE_POOL})",
        kind.label()
    ));
    drivers::start_ours_with(repo, bin, CYCLE_POOL, kind.waits())?;
    std::thread::sleep(Duration::from_secs(2));
    // The connect target's ready ports and the new network's.
    let made = || rt.block_on(wait_ready_ports(neutron, host, 2 * CYCLE_POOL));
    r.cycles.insert(
        kind,
        cycle::cycles(kind, args.iterations, kind.tag(), &made)?,
    );
    // As many ready ports per network as runs will start there.
    let setup = |count: usize, nets: usize| -> Result<()> {
        drivers::start_ours_with(repo, bin, count.div_ceil(nets), kind.waits())?;
        std::thread::sleep(Duration::from_secs(2));
        Ok(())
    };
    let ready = |count: usize, nets: usize| {
        let all = count.div_ceil(nets) * nets;
        rt.block_on(wait_ready_ports(neutron, host, all))
    };
    parallel_runs(r, kind, &args.parallel, &setup, &ready)
}

/// kuryr-libnetwork with its default `vif_plugging_is_fatal = False`:
/// cycles, then runs at once (its own `kuryr-server`, stopped after).
fn python_no_wait(r: &mut Results, args: &Args) -> Result<()> {
    let kind = Kind::PythonNoWait;
    r.measured.insert(kind.label().into(), report::now());
    step(&format!("{}: start", kind.label()));
    let conf = drivers::python_conf(
        drivers::PYTHON_URL,
        "kuryr-bench-python-nowait.log",
        None,
        false,
    )?;
    let (_python, up) =
        drivers::Python::start(&conf, drivers::PYTHON_ADDR, Duration::from_secs(120))?;
    if up.is_none() {
        return Err("it did not answer Plugin.Activate (see kuryr-bench-python.out)".into());
    }
    drivers::register_python()?;
    std::thread::sleep(Duration::from_secs(2));
    step(&format!("{}: cycles", kind.label()));
    r.cycles.insert(
        kind,
        cycle::cycles(kind, args.iterations, kind.tag(), &no_wait)?,
    );
    parallel_runs(r, kind, &args.parallel, &|_, _| Ok(()), &|_, _| Ok(()))
}

/// Wait (at most a minute) until this host has `count` ready ports.
async fn wait_ready_ports(n: &kuryr_openstack::Neutron, host: &str, count: usize) -> Result<()> {
    let q = kuryr_openstack::Query::new()
        .eq("name", drivers::READY_PORT_NAME)
        .eq("binding:host_id", host);
    let started = std::time::Instant::now();
    loop {
        let have = n.list_ports(&q).await?.len();
        if have >= count {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("{have} of {count} ready ports after 60 s").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `kind`'s runs at once for each count, over 1 and 10 networks; `setup`
/// before each configuration, `ready` once its networks exist.
fn parallel_runs(
    r: &mut Results,
    kind: Kind,
    counts: &[usize],
    setup: &dyn Fn(usize, usize) -> Result<()>,
    ready: &dyn Fn(usize, usize) -> Result<()>,
) -> Result<()> {
    r.parallel.retain(|(k, _)| *k != Some(kind));
    let tag = kind.tag();
    for &count in counts {
        for nets in [1, 10] {
            step(&format!(
                "{}: {count} runs at once over {nets} network(s)",
                kind.label()
            ));
            setup(count, nets)?;
            let mut p = cycle::parallel(kind, count, nets, tag, &|| ready(count, nets))?;
            if nets == 1 && count == counts[0] && kind != Kind::Bridge {
                p.sequential = Some(cycle::sequential_runs(kind, count, tag)?);
            }
            r.parallel.push((Some(kind), p));
        }
    }
    Ok(())
}

async fn floor_runs(
    r: &mut Results,
    n: &kuryr_openstack::Neutron,
    host: &str,
    args: &Args,
) -> Result<()> {
    for i in 0..args.iterations {
        let (t, net) = floor::network_create(n, &cycle::subnet(193, i), &format!("f{i}")).await?;
        r.floor.entry(Op::NetworkCreate).or_default().push(ms(t));
        let (t, port) = floor::run(n, &net, host, &format!("e{i}")).await?;
        r.floor.entry(Op::Run).or_default().push(ms(t));
        let t = floor::stop(n, &port).await?;
        r.floor.entry(Op::Stop).or_default().push(ms(t));
        let t = floor::network_rm(n, &net).await?;
        r.floor.entry(Op::NetworkRm).or_default().push(ms(t));
    }
    for &count in &args.parallel {
        for nets in [1usize, 10] {
            let mut made = Vec::new();
            for j in 0..nets {
                let (_, net) =
                    floor::network_create(n, &cycle::subnet(194, j), &format!("p{j}")).await?;
                made.push(net);
            }
            let (wall, failures, error) = floor::parallel_runs(n, &made, host, count).await;
            if let Some(e) = error {
                r.notes.push(format!(
                    "Neutron floor, {count} runs at once over {nets} network(s): {failures} \
                     failed; the first: {e}."
                ));
            }
            for net in &made {
                let _ = floor::network_rm(n, net).await;
            }
            r.parallel.push((
                None,
                Parallel {
                    count,
                    networks: nets,
                    wall,
                    failures,
                    each: Series::default(),
                    neutron: count * 3,
                    polls: 0.0,
                    sequential: None,
                    first_failure: None,
                },
            ));
        }
    }
    floor::cleanup(n).await;
    Ok(())
}

async fn scale_runs(
    r: &mut Results,
    n: &kuryr_openstack::Neutron,
    admin: kuryr_openstack::Neutron,
    args: &Args,
    kinds: &[Kind],
) -> Result<()> {
    let max_ports = args.ports.iter().copied().max().unwrap_or(0);
    let mut filler = scale::Filler::new(n.clone(), admin, max_ports, args.networks).await?;
    let mut points: Vec<(usize, usize)> = args.ports.iter().map(|&p| (p, 0)).collect();
    if args.networks > 0 {
        points.push((max_ports, args.networks));
    }
    let mut outcome = Ok(());
    for (ports, networks) in points {
        step(&format!(
            "scale: {ports} ports, {networks} networks in Neutron"
        ));
        let (had, t) = (filler.ports, std::time::Instant::now());
        if let Err(e) = filler.ports_to(ports).await {
            outcome = Err(e);
            break;
        }
        if filler.ports > had {
            let made = filler.ports - had;
            let s = t.elapsed().as_secs_f64();
            r.notes.push(format!(
                "The filler's {made} ports (bulk `POST /ports`, 100 per request) took {s:.0} s \
                 to make: {:.0} ms per port on this lab.",
                1000.0 * s / made as f64
            ));
        }
        if let Err(e) = filler.networks_to(networks).await {
            outcome = Err(e);
            break;
        }
        // Figures kept from the last run for the drivers not measured now.
        let mut tables = r
            .scale
            .iter()
            .find(|(p, _)| *p == (ports, networks))
            .map(|(_, t)| t.clone())
            .unwrap_or_default();
        tables.retain(|k, _| !kinds.contains(k));
        let iterations = args.scale_iterations;
        // The Docker side is blocking CLI runs; nothing else runs on
        // this runtime meanwhile.
        let measured = (|| -> Result<()> {
            for &kind in kinds {
                let tag = if kind == Kind::Ours { "so" } else { "sp" };
                tables.insert(kind, cycle::cycles(kind, iterations, tag, &no_wait)?);
            }
            Ok(())
        })();
        if let Err(e) = measured {
            outcome = Err(e);
            break;
        }
        r.scale.retain(|(p, _)| *p != (ports, networks));
        r.scale.push(((ports, networks), tables));
    }
    step("scale: removing the filler");
    filler.remove().await;
    outcome
}

fn ready_runs(r: &mut Results, bin: &std::path::Path, keep: &Keep) -> Result<()> {
    // A closed port: Keystone (and so Neutron) unreachable.
    let down = "http://127.0.0.1:9/v3";
    r.ready.retain(|((k, _), _)| *k != Kind::Ours);
    for _ in 0..10 {
        let t = ready::ours_once(bin, None)?;
        r.push_ready((Kind::Ours, true), t.map(ms));
        let t = ready::ours_once(bin, Some(down))?;
        r.push_ready((Kind::Ours, false), t.map(ms));
    }
    if !keep.python {
        r.ready.retain(|((k, _), _)| *k != Kind::Python);
        for _ in 0..3 {
            let t = ready::python_once(None)?;
            r.push_ready((Kind::Python, true), t.map(ms));
        }
        let t = ready::python_once(Some(down))?;
        r.push_ready((Kind::Python, false), t.map(ms));
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
