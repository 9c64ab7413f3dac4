//! docs/benchmarks.md and its plots, from one run's [`Results`].

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::cycle::{Op, OpTable, Parallel};
use crate::drivers::Kind;
use crate::plot;
use crate::stats::{Series, cell, ratio};
use crate::{Args, Results};

/// UTC now, `YYYY-MM-DD HH:MM:SS`.
pub fn now() -> String {
    sh("date", &["-u", "+%F %T"])
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn first_line_with(path: &str, key: &str) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split(':').nth(1))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

fn p50(s: &Series) -> Option<f64> {
    s.median()
}

fn ms_cell(s: &Series) -> String {
    match (s.median(), s.p95()) {
        (Some(m), Some(p)) => format!("{m:.0} / {p:.0}"),
        _ => "-".into(),
    }
}

/// Failed runs of `op` in a driver's cycles.
fn failures(t: Option<&OpTable>, op: Op) -> usize {
    t.and_then(|t| t.get(&op))
        .map(|s| s.failures)
        .unwrap_or_default()
}

/// Every (runs, networks) measured at once, in order.
fn configs(r: &Results) -> Vec<(usize, usize)> {
    let mut c: Vec<(usize, usize)> = r
        .parallel
        .iter()
        .map(|(_, p)| (p.count, p.networks))
        .collect();
    c.sort();
    c.dedup();
    c
}

fn op_ms(t: Option<&OpTable>, op: Op) -> Series {
    t.and_then(|t| t.get(&op))
        .map(|s| s.ms.clone())
        .unwrap_or_default()
}

/// Floor samples of an operation: connect costs what run does (a port
/// claimed and tagged), disconnect what stop does (a port deleted).
fn floor_of(r: &Results, op: Op) -> Series {
    let key = match op {
        Op::Connect => Op::Run,
        Op::Disconnect => Op::Stop,
        other => other,
    };
    r.floor.get(&key).cloned().unwrap_or_default()
}

pub fn write(r: &Results, args: &Args, repo: &Path) -> crate::Result<()> {
    let out = repo.join(&args.out);
    let plots = out.join("bench");
    std::fs::create_dir_all(&plots).map_err(|e| e.to_string())?;
    let ours = r.cycles.get(&Kind::Ours);
    let pooled = r.cycles.get(&Kind::OursPool);
    let py = r.cycles.get(&Kind::Python);
    let br = r.cycles.get(&Kind::Bridge);
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(
        w,
        "# Benchmarks: kuryr-rs, kuryr-libnetwork, Docker's bridge, Neutron\n"
    );
    let _ = writeln!(
        w,
        "Written by `sudo bench/run` ({}) on the lab, which the run held alone \
         (`flock -x /tmp/kuryr-lab.lock`). Every figure is from that one run: medians \
         and 95th percentiles (`p50 / p95`, ms) of {} rounds per driver, `docker` timed from \
         the CLI's start until it returns. Ratios are ours / theirs (below 1: ours is \
         faster).\n",
        r.measured.get(STARTED).cloned().unwrap_or_else(now),
        args.iterations
    );
    machine(w, r, repo);
    let _ = writeln!(
        w,
        "\nHow it runs: ours is the release build started by `lab/kuryr-up` (driver name \
         `kuryr`); kuryr-libnetwork is a `kuryr-server` of the benchmark's own on \
         127.0.0.1:23751, registered with dockerd as `kuryrpy` through a spec file, with \
         the same `[neutron]` settings (`vif_plugging_is_fatal = True`, timeout 60 s: \
         both wait for the OVS agent to make the port ACTIVE) and `debug = false`; \
         the drivers run one after another, never side by side. `bridge` is Docker's \
         own driver with Docker's IPAM (`inhibit_ipv4`, no NAT: the lab's dockerd runs \
         with `--bridge=none --iptables=false`), the floor for Docker's own part. The \
         *Neutron floor* sends the requests ours makes for the operation straight to \
         Neutron with the same client, no Docker, no host side, no wait for ACTIVE. \
         Requests are counted in neutron-server's and Keystone's own logs during each \
         operation (the same way for every driver); ours also logs what its client \
         counted. The lab's neutron-server has one API worker, and the OVS agent \
         takes 0.25 to 3 s to wire a port (`polling_interval` 2 s).\n"
    );
    let _ = writeln!(
        w,
        "*kuryr-rs + ready ports* is ours again with `[DEFAULT] ports_pool_size` set (off by \
         default): ports made ahead per subnet, so `RequestAddress` hands one out without a \
         Neutron request and a worker makes the next in bulk. In the cycles it keeps {} per \
         network and each `docker run` starts once they are made (not timed); for runs at \
         once, as many per network as runs start there, made before the runs start, the \
         replacements made during them (their requests are in the window's count).\n",
        crate::CYCLE_POOL
    );
    let _ = writeln!(
        w,
        "*, no wait* marks runs with `vif_plugging_is_fatal = False`, each project's default: \
         the driver answers `Join` without waiting for the L2 agent (which still wires the \
         port), as the Neutron floor has no agent in it. They have a section of their own \
         below.\n"
    );

    // Latency.
    let _ = writeln!(w, "## Latency per operation\n");
    let _ = writeln!(
        w,
        "| operation | kuryr-rs | kuryr-rs + ready ports | kuryr-libnetwork | bridge | Neutron floor | ours / libnetwork (p50) | ours + ready / libnetwork | ours / floor (p50) | failures (ours, + ready, libnetwork, bridge) |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|");
    for op in Op::ALL {
        let o = op_ms(ours, op);
        let q = op_ms(pooled, op);
        let p = op_ms(py, op);
        let b = op_ms(br, op);
        let f = floor_of(r, op);
        let fails = |t: Option<&OpTable>| failures(t, op);
        let floor_cell = if op == Op::Rm {
            "-".into()
        } else {
            ms_cell(&f)
        };
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {}, {}, {}, {} |",
            op.label(),
            ms_cell(&o),
            ms_cell(&q),
            ms_cell(&p),
            ms_cell(&b),
            floor_cell,
            ratio(p50(&o), p50(&p)),
            ratio(p50(&q), p50(&p)),
            if op == Op::Rm {
                "-".into()
            } else {
                ratio(p50(&o), p50(&f))
            },
            fails(ours),
            fails(pooled),
            fails(py),
            fails(br)
        );
    }
    let _ = writeln!(w, "\n![latency per operation](bench/latency.svg)\n");
    let groups: Vec<String> = Op::ALL.iter().map(|o| o.label().to_string()).collect();
    let series: Vec<(String, Vec<Option<f64>>)> = [
        (Kind::Ours.label(), ours),
        (Kind::OursPool.label(), pooled),
        (Kind::Python.label(), py),
        (Kind::Bridge.label(), br),
    ]
    .iter()
    .map(|(name, t)| {
        (
            name.to_string(),
            Op::ALL.iter().map(|op| op_ms(*t, *op).median()).collect(),
        )
    })
    .chain(std::iter::once((
        "Neutron floor".to_string(),
        Op::ALL
            .iter()
            .map(|op| (*op != Op::Rm).then(|| floor_of(r, *op).median()).flatten())
            .collect(),
    )))
    .collect();
    plot::bars(
        &plots.join("latency.svg"),
        "Latency per operation (median)",
        "ms",
        &groups,
        &series,
    )?;

    // Requests.
    let _ = writeln!(w, "## Requests per operation\n");
    let _ = writeln!(
        w,
        "Medians. Neutron requests as neutron-server logged them, ACTIVE polls included; \
         in brackets what ours' client counted: requests + polls. Keystone: tokens issued \
         (`POST /v3/auth/tokens`).\n"
    );
    let _ = writeln!(
        w,
        "| operation | kuryr-rs Neutron [client] | kuryr-rs Keystone | kuryr-libnetwork Neutron | kuryr-libnetwork Keystone | ours / libnetwork (Neutron) |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|");
    for op in Op::ALL {
        let get = |t: Option<&OpTable>, f: fn(&crate::cycle::Samples) -> Series| {
            t.and_then(|t| t.get(&op)).map(f).unwrap_or_default()
        };
        let on = get(ours, |s| s.neutron.clone());
        let ok = get(ours, |s| s.keystone.clone());
        let pn = get(py, |s| s.neutron.clone());
        let pk = get(py, |s| s.keystone.clone());
        let client = ours
            .and_then(|t| t.get(&op))
            .map(|s| {
                format!(
                    "{} + {}",
                    cell(s.ours_series(|c| c.neutron).median()),
                    cell(s.ours_series(|c| c.polls).median())
                )
            })
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            w,
            "| {} | {} [{}] | {} | {} | {} | {} |",
            op.label(),
            cell(on.median()),
            client,
            cell(ok.median()),
            cell(pn.median()),
            cell(pk.median()),
            ratio(on.median(), pn.median())
        );
    }

    // Overhead.
    let _ = writeln!(w, "\n## Driver overhead (ours)\n");
    let _ = writeln!(
        w,
        "The driver's own time per operation: the plugin calls' time (as the driver \
         logs it) minus the time of their Neutron requests minus the wait for ACTIVE. \
         Medians, ms.\n"
    );
    let _ = writeln!(
        w,
        "| operation | plugin calls | Neutron requests | wait for ACTIVE | overhead | overhead / Neutron time |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|");
    for op in Op::ALL {
        let Some(s) = ours.and_then(|t| t.get(&op)) else {
            continue;
        };
        let calls = s.ours_series(|c| c.ms);
        let nms = s.ours_series(|c| c.neutron_ms);
        let wait = s.ours_series(|c| c.wait_ms);
        let over = s.ours_series(|c| c.overhead_ms());
        let share = match (over.median(), nms.median()) {
            (Some(o), Some(n)) if n > 0.0 => format!("{:.1}%", 100.0 * o / n),
            _ => "-".into(),
        };
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} |",
            op.label(),
            cell(calls.median()),
            cell(nms.median()),
            cell(wait.median()),
            cell(over.median()),
            share
        );
    }

    // Parallel.
    let _ = writeln!(w, "\n## Many `docker run` at once\n");
    let _ = writeln!(
        w,
        "`docker run -d` started at once, over one network or spread round robin over 10; \
         wall time until the last returns (s), failures, each run's own median (s). The \
         floor sends the 3 requests of a run (bound port, device, tags) for as many runs \
         at once.\n"
    );
    let _ = writeln!(
        w,
        "| runs x networks | kuryr-rs wall (fail, each p50) | kuryr-rs + ready ports | kuryr-libnetwork | bridge | Neutron floor | ours / floor | ours + ready / floor | libnetwork / ours | libnetwork / ours + ready | Neutron requests (ours, + ready, libnetwork) | ours' ACTIVE polls |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    let configs = configs(r);
    let find = |k: Option<Kind>, c: (usize, usize)| find_parallel(r, k, c);
    let wall = wall_s;
    let mut par_groups = Vec::new();
    let mut par_series: Vec<(String, Vec<Option<f64>>)> = vec![
        (Kind::Ours.label().into(), vec![]),
        (Kind::OursPool.label().into(), vec![]),
        (Kind::Python.label().into(), vec![]),
        (Kind::Bridge.label().into(), vec![]),
        ("Neutron floor".into(), vec![]),
        (Kind::OursPoolNoWait.label().into(), vec![]),
        (Kind::PythonNoWait.label().into(), vec![]),
    ];
    for c in &configs {
        let o = find(Some(Kind::Ours), *c);
        let q = find(Some(Kind::OursPool), *c);
        let p = find(Some(Kind::Python), *c);
        let b = find(Some(Kind::Bridge), *c);
        let f = find(None, *c);
        let show = show_parallel;
        let _ = writeln!(
            w,
            "| {} x {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}, {}, {} | {} |",
            c.0,
            c.1,
            show(o),
            show(q),
            show(p),
            show(b),
            f.map(|f| format!("{:.1} ({})", f.wall.as_secs_f64(), f.failures))
                .unwrap_or_else(|| "-".into()),
            ratio(wall(o), wall(f)),
            ratio(wall(q), wall(f)),
            ratio(wall(p), wall(o)),
            ratio(wall(p), wall(q)),
            o.map(|x| x.neutron.to_string()).unwrap_or_default(),
            q.map(|x| x.neutron.to_string()).unwrap_or_default(),
            p.map(|x| x.neutron.to_string()).unwrap_or_default(),
            o.map(|x| cell(Some(x.polls))).unwrap_or_default()
        );
        par_groups.push(format!("{} x {}", c.0, c.1));
        par_series[0].1.push(wall(o));
        par_series[1].1.push(wall(q));
        par_series[2].1.push(wall(p));
        par_series[3].1.push(wall(b));
        par_series[4].1.push(wall(f));
        par_series[5]
            .1
            .push(wall(find(Some(Kind::OursPoolNoWait), *c)));
        par_series[6]
            .1
            .push(wall(find(Some(Kind::PythonNoWait), *c)));
    }
    for (k, p) in &r.parallel {
        if let (Some(k), Some(seq)) = (k, p.sequential) {
            let _ = writeln!(
                w,
                "\n{}: the same {} runs one after another on one network take {:.1} s \
                 (at once: {:.1} s).",
                k.label(),
                p.count,
                seq.as_secs_f64(),
                p.wall.as_secs_f64()
            );
        }
    }
    for (k, p) in &r.parallel {
        if let (Some(k), Some(first)) = (k, &p.first_failure) {
            let _ = writeln!(
                w,
                "\n{}, {} x {}: {} failed; the first: `{}`",
                k.label(),
                p.count,
                p.networks,
                p.failures,
                first.replace('`', "'")
            );
        }
    }
    let _ = writeln!(w, "\n![parallel runs](bench/parallel.svg)\n");
    plot::bars(
        &plots.join("parallel.svg"),
        "docker run at once: wall time",
        "s",
        &par_groups,
        &par_series,
    )?;

    no_wait(w, r);

    // RSS and ready.
    let _ = writeln!(w, "## Memory and start-up\n");
    let _ = writeln!(w, "| | kuryr-rs | kuryr-libnetwork |");
    let _ = writeln!(w, "|---|---|---|");
    let rss = |k: Kind, after: bool| {
        r.rss
            .get(&k)
            .and_then(|(i, a)| if after { *a } else { *i })
            .map(|v| format!("{v:.1} MiB"))
            .unwrap_or_else(|| "-".into())
    };
    let _ = writeln!(
        w,
        "| RSS idle (after start) | {} | {} |",
        rss(Kind::Ours, false),
        rss(Kind::Python, false)
    );
    let _ = writeln!(
        w,
        "| RSS after the load above | {} | {} |",
        rss(Kind::Ours, true),
        rss(Kind::Python, true)
    );
    let ready = |k: Kind, up: bool| {
        let v = r.ready_of((k, up));
        let ok = Series(v.iter().flatten().copied().collect());
        let never = v.iter().filter(|x| x.is_none()).count();
        let mut s = if ok.is_empty() {
            "-".to_string()
        } else {
            format!("{} ms ({} runs)", ms_cell(&ok), ok.0.len())
        };
        if never > 0 {
            let _ = write!(s, "; {never} never answered within 30 s");
        }
        s
    };
    let _ = writeln!(
        w,
        "| start to `Plugin.Activate`, Neutron up (p50 / p95) | {} | {} |",
        ready(Kind::Ours, true),
        ready(Kind::Python, true)
    );
    let _ = writeln!(
        w,
        "| start to `Plugin.Activate`, Keystone/Neutron unreachable | {} | {} |",
        ready(Kind::Ours, false),
        ready(Kind::Python, false)
    );

    // Scale.
    if !r.scale.is_empty() {
        let _ = writeln!(w, "\n## Latency with Neutron already full\n");
        let _ = writeln!(
            w,
            "Filler ports (unbound, one network, made in bulk) and networks in the driver's \
             project; medians of {} rounds per point, ms.\n",
            args.scale_iterations
        );
        let _ = writeln!(
            w,
            "| ports, networks in Neutron | ours: create / run / stop / network rm | libnetwork: create / run / stop / network rm |"
        );
        let _ = writeln!(w, "|---|---|---|");
        let four = |t: Option<&OpTable>| {
            [Op::NetworkCreate, Op::Run, Op::Stop, Op::NetworkRm]
                .iter()
                .map(|op| cell(op_ms(t, *op).median().map(f64::round)))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let mut lines: Vec<(String, Vec<(f64, f64)>)> = vec![
            ("kuryr-rs docker run".into(), vec![]),
            ("kuryr-libnetwork docker run".into(), vec![]),
            ("kuryr-rs network create".into(), vec![]),
            ("kuryr-libnetwork network create".into(), vec![]),
        ];
        for ((ports, nets), t) in &r.scale {
            let _ = writeln!(
                w,
                "| {ports}, {nets} | {} | {} |",
                four(t.get(&Kind::Ours)),
                four(t.get(&Kind::Python))
            );
            if *nets == 0 {
                let x = *ports as f64;
                for (i, (k, op)) in [
                    (Kind::Ours, Op::Run),
                    (Kind::Python, Op::Run),
                    (Kind::Ours, Op::NetworkCreate),
                    (Kind::Python, Op::NetworkCreate),
                ]
                .iter()
                .enumerate()
                {
                    if let Some(m) = op_ms(t.get(k), *op).median() {
                        lines[i].1.push((x, m));
                    }
                }
            }
        }
        let _ = writeln!(w, "\n![latency at scale](bench/scale.svg)\n");
        plot::lines_log_x(
            &plots.join("scale.svg"),
            "Latency with filler ports in Neutron (median)",
            "ports in Neutron",
            "ms",
            &lines,
        )?;
    }

    targets(w, r);
    why(w);
    if !r.notes.is_empty() {
        let _ = writeln!(w, "\n## Notes\n");
        for n in &r.notes {
            let _ = writeln!(w, "- {n}");
        }
    }
    std::fs::write(out.join("benchmarks.md"), md).map_err(|e| e.to_string())?;
    Ok(())
}

/// The runs without the wait for ACTIVE: ours with ready ports and
/// kuryr-libnetwork, each as it is configured by default, against the
/// floor (which has no agent in it either).
fn no_wait(w: &mut String, r: &Results) {
    let ours = r.cycles.get(&Kind::OursPoolNoWait);
    let py = r.cycles.get(&Kind::PythonNoWait);
    if ours.is_none() && py.is_none() {
        return;
    }
    let _ = writeln!(
        w,
        "## Without the wait for ACTIVE
"
    );
    let _ = writeln!(
        w,
        "Ours with ready ports and kuryr-libnetwork, both with `vif_plugging_is_fatal = False` \
         (each project's default): `Join` answers without waiting for the OVS agent. \
         `p50 / p95`, ms; failures in brackets.\n"
    );
    let _ = writeln!(
        w,
        "| operation | {} | {} | Neutron floor | ours / libnetwork (p50) | ours / floor (p50) |",
        Kind::OursPoolNoWait.label(),
        Kind::PythonNoWait.label()
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|");
    for op in Op::ALL {
        let o = op_ms(ours, op);
        let p = op_ms(py, op);
        let f = floor_of(r, op);
        let fails = |t: Option<&OpTable>| failures(t, op);
        let (floor_cell, floor_ratio) = if op == Op::Rm {
            ("-".to_string(), "-".to_string())
        } else {
            (ms_cell(&f), ratio(p50(&o), p50(&f)))
        };
        let _ = writeln!(
            w,
            "| {} | {} ({}) | {} ({}) | {} | {} | {} |",
            op.label(),
            ms_cell(&o),
            fails(ours),
            ms_cell(&p),
            fails(py),
            floor_cell,
            ratio(p50(&o), p50(&p)),
            floor_ratio
        );
    }
    let _ = writeln!(
        w,
        "\n| runs x networks | {} wall (fail, each p50) | {} | Neutron floor | ours / floor | libnetwork / ours | Neutron requests (ours, libnetwork) |",
        Kind::OursPoolNoWait.label(),
        Kind::PythonNoWait.label()
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|");
    for (c, o, p, f) in parallel_rows(r, Kind::OursPoolNoWait, Kind::PythonNoWait) {
        let _ = writeln!(
            w,
            "| {} x {} | {} | {} | {} | {} | {} | {}, {} |",
            c.0,
            c.1,
            show_parallel(o),
            show_parallel(p),
            f.map(|f| format!("{:.1} ({})", f.wall.as_secs_f64(), f.failures))
                .unwrap_or_else(|| "-".into()),
            ratio(wall_s(o), wall_s(f)),
            ratio(wall_s(p), wall_s(o)),
            o.map(|x| x.neutron.to_string()).unwrap_or_default(),
            p.map(|x| x.neutron.to_string()).unwrap_or_default(),
        );
    }
    let _ = writeln!(w);
}

type ParallelRow<'a> = (
    (usize, usize),
    Option<&'a Parallel>,
    Option<&'a Parallel>,
    Option<&'a Parallel>,
);

/// For each (runs, networks) measured: `a`'s, `b`'s and the floor's runs.
fn parallel_rows(r: &Results, a: Kind, b: Kind) -> Vec<ParallelRow<'_>> {
    configs(r)
        .into_iter()
        .map(|c| {
            (
                c,
                find_parallel(r, Some(a), c),
                find_parallel(r, Some(b), c),
                find_parallel(r, None, c),
            )
        })
        .collect()
}

fn find_parallel(r: &Results, k: Option<Kind>, c: (usize, usize)) -> Option<&Parallel> {
    r.parallel
        .iter()
        .find(|(kk, p)| *kk == k && (p.count, p.networks) == c)
        .map(|(_, p)| p)
}

fn wall_s(p: Option<&Parallel>) -> Option<f64> {
    p.map(|p| p.wall.as_secs_f64())
}

/// `wall (failures, each run's median)`, s.
fn show_parallel(p: Option<&Parallel>) -> String {
    match p {
        Some(p) => format!(
            "{:.1} ({}, {})",
            p.wall.as_secs_f64(),
            p.failures,
            p.each
                .median()
                .map(|m| format!("{:.1}", m / 1000.0))
                .unwrap_or_else(|| "-".into())
        ),
        None => "-".into(),
    }
}

/// What bounds the figures on this machine, whatever the driver does.
fn why(w: &mut String) {
    let _ = writeln!(
        w,
        "\n## What bounds these figures\n\n\
- **dockerd creates a network's endpoints one at a time.** moby's \
`Network.CreateEndpoint` holds the controller's lock of the network across the \
IPAM `RequestAddress` and the driver's `CreateEndpoint` (`networkLocker`), so \
`docker run` on one network queue there whatever the driver does; joins \
(`Join`) run in parallel. kuryr-rs therefore waits for ACTIVE in `Join`, and \
its `RequestAddress` + `CreateEndpoint` cost 3 Neutron requests in that queue \
(a port create, then its update and tags at once); spread over 10 networks, \
the queues run side by side. The Neutron floor sends its requests all at once \
and has no such queue. With ready ports (`ports_pool_size`) the create leaves \
the queue: `RequestAddress` makes no request and the worker makes the next \
ports meanwhile.\n\
- **The wait for ACTIVE is the agent's.** Both drivers wait (`vif_plugging_is_fatal`); \
the lab's OVS agent wires a port 0.25 to 3 s after it appears on `br-int` \
(`polling_interval` 2 s on a userspace datapath): most of a `docker run`, and \
nothing a driver can shorten but by not waiting: the runs with no wait show what \
is left without it.\n\
- **One Neutron API worker, two cores.** neutron-server runs `api_workers = 1`, \
and Neutron, its agents, Keystone, MariaDB, RabbitMQ, Open vSwitch, dockerd, \
containerd and the driver share 2 cores: at 20 or 50 containers at once the \
machine is saturated, and the walls measure it as much as the driver.\n\
- **The agent's loop sets the phase.** A cycle's operations follow each \
other at a steady pace, so each `docker run` lands at much the same point of \
the agent's 2 s loop as the one before: one driver's median wait for ACTIVE \
can differ from another's by most of a loop, run to run (the p95 stays close \
to the p50). Compare the wait column of the overhead table, or the runs with \
no wait.\n\
- **Ready ports can finish under the floor.** The floor makes every port \
in the window, one request each; with ready ports the ports of the runs \
were made before it, and the window holds the claims and the replacements' \
bulk creates (10 ports per request): fewer requests (the requests column).\n\
- **`network rm` with ready ports** deletes them first: one request per \
port (Neutron has no bulk delete), then the network and its pool.\n\
- **Docker's own part** is the bridge column: container creation, its \
namespace and `runc` take that long with no Neutron at all."
    );
}

/// `Results::measured` keys: when the run started, and the revision it
/// measured (a report written again later says the run's, not its own).
pub const STARTED: &str = "started";
pub const REVISION: &str = "revision";

/// The checked-out revision, short.
pub fn revision(repo: &Path) -> String {
    sh(
        "git",
        &[
            "-C",
            &repo.display().to_string(),
            "rev-parse",
            "--short",
            "HEAD",
        ],
    )
}

fn machine(w: &mut String, r: &Results, repo: &Path) {
    let cpu = first_line_with("/proc/cpuinfo", "model name");
    let cores = sh("nproc", &[]);
    let mem = first_line_with("/proc/meminfo", "MemTotal");
    let kernel = sh("uname", &["-r"]);
    let docker = sh(
        "/usr/bin/docker",
        &[
            "-H",
            "unix:///run/docker.sock",
            "version",
            "--format",
            "{{.Server.Version}}",
        ],
    );
    let neutron = sh("dpkg-query", &["-W", "-f=${Version}", "neutron-server"]);
    let ovs = sh("dpkg-query", &["-W", "-f=${Version}", "openvswitch-switch"]);
    let rev = r
        .measured
        .get(REVISION)
        .cloned()
        .unwrap_or_else(|| revision(repo));
    let rustc = sh("rustc", &["--version"]);
    let _ = writeln!(w, "| machine | versions |");
    let _ = writeln!(w, "|---|---|");
    let _ = writeln!(
        w,
        "| {cpu}, {cores} cores | kuryr-rs {rev} (release build, {rustc}) |"
    );
    let _ = writeln!(
        w,
        "| {mem} memory | kuryr-libnetwork {} (PyPI) |",
        crate::drivers::python_version()
    );
    let _ = writeln!(w, "| Linux {kernel} | Docker {docker} |");
    let _ = writeln!(
        w,
        "| | Neutron {neutron} (Zed, Debian 12), ML2/OVS, Open vSwitch {ovs} (userspace) |"
    );
}

/// The issue's targets, each with the value this run measured and, where
/// one is missed, what holds it back (from this run's own figures).
fn targets(w: &mut String, r: &Results) {
    let _ = writeln!(w, "\n## Targets\n");
    let _ = writeln!(w, "| target | measured | met | where missed: why |");
    let _ = writeln!(w, "|---|---|---|---|");
    let row = |w: &mut String, what: &str, value: String, met: Option<bool>, why: String| {
        let (m, why) = match met {
            Some(true) => ("yes", String::new()),
            Some(false) => ("**no**", why),
            None => ("-", String::new()),
        };
        let _ = writeln!(w, "| {what} | {value} | {m} | {why} |");
    };
    // Ours' median wait for ACTIVE per `docker run` in the cycles.
    let wait_of = |k: Kind| {
        r.cycles
            .get(&k)
            .and_then(|t| t.get(&Op::Run))
            .and_then(|s| s.ours_series(|c| c.wait_ms).median())
            .unwrap_or_default()
    };
    let run_p50 = |k: Kind| op_ms(r.cycles.get(&k), Op::Run).median();
    for kind in [Kind::Ours, Kind::OursPool, Kind::OursPoolNoWait] {
        let who = kind.label();
        for (c, o, p, f) in parallel_rows(r, kind, kind.peer()) {
            let Some(o) = o else { continue };
            let (count, nets) = c;
            if let Some(f) = f {
                let x = o.wall.as_secs_f64() / f.wall.as_secs_f64();
                let bridge = wall_s(find_parallel(r, Some(Kind::Bridge), c)).unwrap_or_default();
                let why = if kind.waits() {
                    format!(
                        "the runs wait for the OVS agent to wire each port (ours' median wait \
                         for ACTIVE per run in the cycles: {:.0} ms); the floor has no agent: \
                         see the runs with no wait",
                        wait_of(kind)
                    )
                } else {
                    format!(
                        "the floor has no Docker in it: Docker's own part of the same runs \
                         takes {bridge:.1} s (bridge), on the same two cores as Neutron{}",
                        if f.failures > 0 {
                            format!("; and {} of the floor's runs failed", f.failures)
                        } else {
                            String::new()
                        }
                    )
                };
                row(
                    w,
                    &format!("{who}: {count} x {nets} runs within 1.25x of the floor"),
                    format!("{x:.2}x"),
                    Some(x <= 1.25),
                    why,
                );
            }
            if let Some(p) = p {
                let x = p.wall.as_secs_f64() / o.wall.as_secs_f64();
                let why = format!(
                    "kuryr-libnetwork took {:.1} s, ours {:.1} s: {}",
                    p.wall.as_secs_f64(),
                    o.wall.as_secs_f64(),
                    if nets > 1 {
                        "spread over networks, kuryr-libnetwork's runs no longer queue behind \
                         dockerd's per-network lock, and both are bound by the same Neutron \
                         worker, agent and two cores"
                    } else {
                        "both are bound by the same Neutron worker, agent and two cores"
                    }
                );
                row(
                    w,
                    &format!("{who}: {count} x {nets} runs at least 3x faster than libnetwork"),
                    format!("{x:.2}x"),
                    Some(x >= 3.0),
                    why,
                );
            }
        }
        let x = run_p50(kind).zip(run_p50(kind.peer())).map(|(a, b)| a / b);
        let why = if kind.waits() {
            format!(
                "both wait for the same agent: ours' median wait for ACTIVE is {:.0} ms of \
                 its {:.0} ms",
                wait_of(kind),
                run_p50(kind).unwrap_or_default()
            )
        } else {
            format!(
                "Docker's own part of a run is in both: {:.0} ms with the bridge driver",
                run_p50(Kind::Bridge).unwrap_or_default()
            )
        };
        row(
            w,
            &format!("{who}: docker run p50 at most 0.5x libnetwork's"),
            x.map(|x| format!("{x:.2}x")).unwrap_or_default(),
            x.map(|x| x <= 0.5),
            why,
        );
    }
    overhead_target(w, r, &row);
    let ready = Series(
        r.ready_of((Kind::Ours, true))
            .iter()
            .flatten()
            .copied()
            .collect(),
    )
    .median();
    row(
        w,
        "ready in at most 50 ms",
        ready.map(|x| format!("{x:.0} ms")).unwrap_or_default(),
        ready.map(|x| x <= 50.0),
        String::new(),
    );
    let idle = r.rss.get(&Kind::Ours).and_then(|x| x.0);
    row(
        w,
        "idle RSS at most 10 MiB",
        idle.map(|x| format!("{x:.1} MiB")).unwrap_or_default(),
        idle.map(|x| x <= 10.0),
        String::new(),
    );
    scale_target(w, r, &row);
}

type Row<'a> = dyn Fn(&mut String, &str, String, Option<bool>, String) + 'a;

/// Overhead over the Neutron calls, per operation (the target) and over
/// all operations together.
fn overhead_target(w: &mut String, r: &Results, row: &Row<'_>) {
    let Some(t) = r.cycles.get(&Kind::Ours) else {
        return;
    };
    let (mut over, mut nms) = (Series::default(), Series::default());
    let mut worst: Option<(Op, f64, f64, f64)> = None;
    for (op, s) in t {
        for c in &s.ours {
            over.push(c.overhead_ms());
            nms.push(c.neutron_ms);
        }
        let o = s.ours_series(|c| c.overhead_ms()).median();
        let n = s.ours_series(|c| c.neutron_ms).median();
        if let (Some(o), Some(n)) = (o, n)
            && n > 0.0
            && worst.is_none_or(|(_, x, _, _)| o / n > x)
        {
            worst = Some((*op, o / n, o, n));
        }
    }
    let all = (nms.sum() > 0.0).then(|| over.sum() / nms.sum());
    let Some((op, x, o, n)) = worst else { return };
    let why = format!(
        "{}: the host side's unplug, {o:.0} ms against one Neutron request of {n:.0} ms: \
         the port leaves `br-int` and the driver waits for ovs-vswitchd to apply it, as \
         ovs-vsctl and os-vif do (10-20 ms here), then the kernel deletes the veth (10 ms), \
         each as `ovs-vsctl del-port` and `ip link del` alone take on this lab",
        op.label()
    );
    row(
        w,
        "overhead over the Neutron calls at most 10% (each operation)",
        format!(
            "at most {:.1}% ({}); all operations together {}",
            100.0 * x,
            op.label(),
            all.map(|a| format!("{:.1}%", 100.0 * a))
                .unwrap_or_default()
        ),
        Some(x <= 0.10),
        why,
    );
}

/// `docker run` from the fewest to the most filler ports: as timed, and
/// without ours' wait for ACTIVE (the agent's, 0.25 to 3 s whatever
/// Neutron holds), which is what the target is judged on.
fn scale_target(w: &mut String, r: &Results, row: &Row<'_>) {
    let at = |ports: usize| {
        let t = r
            .scale
            .iter()
            .find(|((p, n), _)| *p == ports && *n == 0)
            .and_then(|(_, t)| t.get(&Kind::Ours))
            .and_then(|t| t.get(&Op::Run))?;
        let own = Series(
            t.ms.0
                .iter()
                .zip(&t.ours)
                .map(|(ms, c)| ms - c.wait_ms)
                .collect(),
        );
        Some((t.ms.median()?, own.median()?))
    };
    let points = || {
        r.scale
            .iter()
            .filter(|((_, n), _)| *n == 0)
            .map(|((p, _), _)| *p)
    };
    let (Some(lo), Some(hi)) = (points().min(), points().max()) else {
        return;
    };
    let (Some((a, a_own)), Some((b, b_own))) = (at(lo), at(hi)) else {
        return;
    };
    let x = b_own / a_own;
    row(
        w,
        &format!("docker run latency within 10% from {lo} to {hi} ports"),
        format!(
            "without the wait for ACTIVE {a_own:.0} -> {b_own:.0} ms ({x:.2}x); as timed, wait \
             included, {a:.0} -> {b:.0} ms ({:.2}x)",
            b / a
        ),
        Some((x - 1.0).abs() <= 0.10),
        format!("{hi} ports are {:.2}x the time of {lo}", x),
    );
}
