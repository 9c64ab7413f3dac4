//! docs/benchmarks.md and its plots, from one run's [`Results`].

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::cycle::{Op, OpTable};
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
        now(),
        args.iterations
    );
    machine(w, repo);
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
        let fails = |t: Option<&OpTable>| {
            t.and_then(|t| t.get(&op))
                .map(|s| s.failures)
                .unwrap_or_default()
        };
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
    let mut configs: Vec<(usize, usize)> = r
        .parallel
        .iter()
        .map(|(_, p)| (p.count, p.networks))
        .collect();
    configs.sort();
    configs.dedup();
    let find = |k: Option<Kind>, c: (usize, usize)| {
        r.parallel
            .iter()
            .find(|(kk, p)| *kk == k && (p.count, p.networks) == c)
            .map(|(_, p)| p)
    };
    let wall = |p: Option<&crate::cycle::Parallel>| p.map(|p| p.wall.as_secs_f64());
    let mut par_groups = Vec::new();
    let mut par_series: Vec<(String, Vec<Option<f64>>)> = vec![
        (Kind::Ours.label().into(), vec![]),
        (Kind::OursPool.label().into(), vec![]),
        (Kind::Python.label().into(), vec![]),
        (Kind::Bridge.label().into(), vec![]),
        ("Neutron floor".into(), vec![]),
    ];
    for c in &configs {
        let o = find(Some(Kind::Ours), *c);
        let q = find(Some(Kind::OursPool), *c);
        let p = find(Some(Kind::Python), *c);
        let b = find(Some(Kind::Bridge), *c);
        let f = find(None, *c);
        let show = |p: Option<&crate::cycle::Parallel>| match p {
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
        };
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
    let _ = writeln!(w, "\n![parallel runs](bench/parallel.svg)\n");
    plot::bars(
        &plots.join("parallel.svg"),
        "docker run at once: wall time",
        "s",
        &par_groups,
        &par_series,
    )?;

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
nothing a driver can shorten but by not waiting.\n\
- **One Neutron API worker, two cores.** neutron-server runs `api_workers = 1`, \
and Neutron, its agents, Keystone, MariaDB, RabbitMQ, Open vSwitch, dockerd, \
containerd and the driver share 2 cores: at 20 or 50 containers at once the \
machine is saturated, and the walls measure it as much as the driver.\n\
- **Docker's own part** is the bridge column: container creation, its \
namespace and `runc` take that long with no Neutron at all."
    );
}

fn machine(w: &mut String, repo: &Path) {
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
    let rev = sh(
        "git",
        &[
            "-C",
            &repo.display().to_string(),
            "rev-parse",
            "--short",
            "HEAD",
        ],
    );
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

/// The issue's targets, each with the value this run measured.
fn targets(w: &mut String, r: &Results) {
    let _ = writeln!(w, "\n## Targets\n");
    let _ = writeln!(w, "| target | measured | met |");
    let _ = writeln!(w, "|---|---|---|");
    let ours = r.cycles.get(&Kind::Ours);
    let py = r.cycles.get(&Kind::Python);
    let row = |w: &mut String, what: &str, value: String, met: Option<bool>| {
        let m = match met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        let _ = writeln!(w, "| {what} | {value} | {m} |");
    };
    let ours_runs = r
        .parallel
        .iter()
        .filter(|(k, _)| k.is_some_and(Kind::is_ours));
    for (k, p) in ours_runs {
        let who = k.map(Kind::label).unwrap_or_default();
        let floor = r
            .parallel
            .iter()
            .find(|(k, f)| k.is_none() && (f.count, f.networks) == (p.count, p.networks));
        let py = r.parallel.iter().find(|(k, f)| {
            *k == Some(Kind::Python) && (f.count, f.networks) == (p.count, p.networks)
        });
        if let Some((_, f)) = floor {
            let x = p.wall.as_secs_f64() / f.wall.as_secs_f64();
            row(
                w,
                &format!(
                    "{who}: {} x {} runs within 1.25x of the floor",
                    p.count, p.networks
                ),
                format!("{x:.2}x"),
                Some(x <= 1.25),
            );
        }
        if let Some((_, q)) = py {
            let x = q.wall.as_secs_f64() / p.wall.as_secs_f64();
            row(
                w,
                &format!(
                    "{who}: {} x {} runs at least 3x faster than libnetwork",
                    p.count, p.networks
                ),
                format!("{x:.2}x"),
                Some(x >= 3.0),
            );
        }
    }
    for kind in [Kind::Ours, Kind::OursPool] {
        let run_ratio = op_ms(r.cycles.get(&kind), Op::Run)
            .median()
            .zip(op_ms(py, Op::Run).median())
            .map(|(a, b)| a / b);
        row(
            w,
            &format!("{}: docker run p50 at most 0.5x libnetwork's", kind.label()),
            run_ratio.map(|x| format!("{x:.2}x")).unwrap_or_default(),
            run_ratio.map(|x| x <= 0.5),
        );
    }
    let mut over = Series::default();
    let mut nms = Series::default();
    if let Some(t) = ours {
        for s in t.values() {
            for c in &s.ours {
                over.push(c.overhead_ms());
                nms.push(c.neutron_ms);
            }
        }
    }
    let share = (nms.sum() > 0.0).then(|| over.sum() / nms.sum());
    row(
        w,
        "overhead over the Neutron calls at most 10% (all operations)",
        share
            .map(|x| format!("{:.1}%", x * 100.0))
            .unwrap_or_default(),
        share.map(|x| x <= 0.10),
    );
    let ready = Some(Series(
        r.ready_of((Kind::Ours, true))
            .iter()
            .flatten()
            .copied()
            .collect(),
    ))
    .and_then(|s| s.median());
    row(
        w,
        "ready in at most 50 ms",
        ready.map(|x| format!("{x:.0} ms")).unwrap_or_default(),
        ready.map(|x| x <= 50.0),
    );
    let idle = r.rss.get(&Kind::Ours).and_then(|x| x.0);
    row(
        w,
        "idle RSS at most 10 MiB",
        idle.map(|x| format!("{x:.1} MiB")).unwrap_or_default(),
        idle.map(|x| x <= 10.0),
    );
    let at = |ports: usize| {
        r.scale
            .iter()
            .find(|((p, n), _)| *p == ports && *n == 0)
            .and_then(|(_, t)| op_ms(t.get(&Kind::Ours), Op::Run).median())
    };
    let lo = r.scale.iter().map(|((p, _), _)| *p).min();
    let hi = r
        .scale
        .iter()
        .filter(|((_, n), _)| *n == 0)
        .map(|((p, _), _)| *p)
        .max();
    if let (Some(lo), Some(hi)) = (lo, hi)
        && let (Some(a), Some(b)) = (at(lo), at(hi))
    {
        let x = b / a;
        row(
            w,
            &format!("docker run latency within 10% from {lo} to {hi} ports"),
            format!("{a:.0} -> {b:.0} ms ({x:.2}x)"),
            Some((x - 1.0).abs() <= 0.10),
        );
    }
}
