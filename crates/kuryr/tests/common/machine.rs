//! Simulated machines for the multi-node agent-mode tests: each one a
//! network namespace, a mount namespace and a host name of its own, so
//! that `kuryr node setup --root /` runs in it exactly as on a machine of
//! its own, and what it starts (Open vSwitch, the Neutron L2 agent, the
//! driver) finds its files at the usual paths without touching the host's.
//!
//! - Network: `lo`, and `eth0`, one end of a veth whose other end is a
//!   port of a Linux bridge the test makes on the host (no address there:
//!   the machines' network is theirs alone), with the machine's address.
//!   No default route. Keystone, Neutron and RabbitMQ listen on the host's
//!   127.0.0.1 only; in a machine, 127.0.0.1:5000/9696/5672 is a socat
//!   that forwards through a unix socket to a socat on the host (unix
//!   sockets are not bound to a network namespace).
//! - Files: `/etc` and `/var` are overlays of the host's (the machine's
//!   changes go to its own directory; `/etc/openvswitch/conf.db` of the
//!   host is hidden, so the machine's Open vSwitch starts empty), `/run` is
//!   a fresh tmpfs, `/var/lib/docker` a directory of its own.
//! - A process `sleep infinity` holds the namespaces; everything of the
//!   machine runs through `nsenter` into them.
//! - Docker: its own dockerd (and the containerd it runs) at the usual
//!   paths of the machine, busybox loaded from the lab's dockerd.
//!
//! [`Machines`] stops everything when it is dropped, a panic included:
//! dockerd first (it stops its containers and plugin), then every process
//! of each machine's mount namespace, the holders, the namespaces, the
//! bridge, the socats, the directories, and the Neutron agent records of
//! the machines' host names. [`Machines::new`] does the same first for
//! what a killed run left.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kuryr_openstack::Query;

use super::env::{lab_dir, neutron, output_text};

/// The lab's ports a machine reaches at its own 127.0.0.1.
const LAB_PORTS: [u16; 3] = [5000, 9696, 5672];

/// A set of machines on one Linux bridge.
pub struct Machines {
    /// `$TMPDIR/<family>` (not under /run nor /var, which machines see
    /// their own of): sockets, pids, inputs, the machines' directories.
    pub dir: PathBuf,
    bridge: String,
    names: Vec<String>,
    pub machines: Vec<Machine>,
}

/// One machine.
pub struct Machine {
    pub name: String,
    /// `a.b.c.d/len` on `eth0`.
    pub cidr: String,
    dir: PathBuf,
    holder: u32,
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        output_text(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every process this test started, reaped at the teardown (the machine's
/// init may not reap orphans).
static CHILDREN: std::sync::Mutex<Vec<std::process::Child>> = std::sync::Mutex::new(Vec::new());

/// Wait for the children that have exited.
fn reap() {
    let mut children = CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
    children.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_)) | Err(_)));
}

/// Start `cmd` in its own session, output to `log`; its pid.
fn start_bg(cmd: &mut Command, log: &Path) -> u32 {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let pid = child.id();
    CHILDREN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(child);
    pid
}

fn record_pid(dir: &Path, pid: u32) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("pids"))
        .unwrap();
    writeln!(f, "{pid}").unwrap();
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The mount namespace of a process, as `/proc/PID/ns/mnt` names it.
fn mount_ns(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()
}

fn kill(pid: u32, signal: i32) {
    // SAFETY: kill only sends a signal.
    unsafe { libc::kill(pid as i32, signal) };
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Every process whose mount namespace is `ns`.
fn processes_in(ns: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if mount_ns(pid).as_deref() == Some(ns) {
            pids.push(pid);
        }
    }
    pids
}

impl Machines {
    /// Machines `names` (host names, also their namespaces' names), with
    /// addresses `<prefix>.<i+1>/24` on a bridge `bridge`; state under
    /// `$TMPDIR/<family>`. What a killed run of the same family left goes
    /// first. No dockerd yet: [`Machine::start_dockerd`].
    pub fn new(family: &str, bridge: &str, prefix: &str, names: &[&str]) -> Machines {
        let dir = std::env::temp_dir().join(family);
        let mut m = Machines {
            dir: dir.clone(),
            bridge: bridge.to_string(),
            names: names.iter().map(|s| s.to_string()).collect(),
            machines: Vec::new(),
        };
        m.teardown();
        std::fs::create_dir_all(&dir).unwrap();
        run_ok(Command::new("ip").args(["link", "add", bridge, "type", "bridge"]));
        run_ok(Command::new("ip").args(["link", "set", bridge, "up"]));
        for port in LAB_PORTS {
            let sock = dir.join(format!("lab-{port}.sock"));
            let pid = start_bg(
                Command::new("socat").args([
                    format!("UNIX-LISTEN:{},fork,mode=600", sock.display()),
                    format!("TCP:127.0.0.1:{port}"),
                ]),
                &dir.join("socat-host.log"),
            );
            record_pid(&dir, pid);
        }
        for (i, name) in names.iter().enumerate() {
            let machine = Machine::boot(&dir, bridge, name, &format!("{prefix}.{}/24", i + 1));
            m.machines.push(machine);
        }
        m
    }

    /// Remove what a run of this family left (a killed one), as
    /// [`Machines::new`] does first.
    pub fn remove(family: &str, bridge: &str, names: &[&str]) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        teardown(&std::env::temp_dir().join(family), bridge, &names);
    }

    fn teardown(&mut self) {
        teardown(&self.dir, &self.bridge, &self.names);
    }
}

/// Stop and remove everything of a family (see the module doc).
fn teardown(dir: &Path, bridge: &str, names: &[String]) {
    for name in names {
        let mdir = dir.join(name);
        let holder = std::fs::read_to_string(mdir.join("holder.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if let Some(holder) = holder {
            stop_machine(&mdir, holder);
        }
        let _ = Command::new("ip").args(["netns", "del", name]).output();
    }
    if let Ok(pids) = std::fs::read_to_string(dir.join("pids")) {
        for pid in pids.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
            kill(pid, libc::SIGKILL);
        }
    }
    let _ = Command::new("ip").args(["link", "del", bridge]).output();
    let _ = std::fs::remove_dir_all(dir);
    delete_agents(names);
    reap();
}

impl Drop for Machines {
    fn drop(&mut self) {
        // KURYR_KEEP_MACHINES=1 leaves them running for a post-mortem; the
        // next run of the family removes them.
        if std::env::var_os("KURYR_KEEP_MACHINES").is_some() {
            eprintln!("KURYR_KEEP_MACHINES: {} left running", self.dir.display());
            return;
        }
        // The daemons' logs outlive the run, for a failure's post-mortem.
        let logs = self.dir.with_file_name(format!(
            "{}-logs",
            self.dir.file_name().unwrap().to_string_lossy()
        ));
        let _ = std::fs::remove_dir_all(&logs);
        for m in &self.machines {
            m.keep_logs(&logs);
        }
        self.machines.clear();
        self.teardown();
    }
}

/// Stop a machine: dockerd by SIGTERM (it stops its containers and its
/// plugin), then SIGKILL to everything left in its mount namespace and to
/// container processes of its dockerd, then the holder.
fn stop_machine(mdir: &Path, holder: u32) {
    let Some(ns) = mount_ns(holder) else {
        return;
    };
    remember_containers(mdir, holder);
    stop_dockerd(mdir);
    let containers = std::fs::read_to_string(mdir.join("container-ids")).unwrap_or_default();
    for pid in processes_in(&ns) {
        if pid != holder {
            kill(pid, libc::SIGKILL);
        }
    }
    kill_containers(&containers);
    kill(holder, libc::SIGKILL);
    wait_for(
        "the machine's processes to go",
        Duration::from_secs(10),
        || !alive(holder),
    );
}

/// Add the IDs of the containers and plugins of the machine's dockerd
/// (through the holder's namespaces) to `container-ids`.
fn remember_containers(mdir: &Path, holder: u32) {
    let mut ids = std::fs::read(mdir.join("container-ids")).unwrap_or_default();
    for args in [
        &["ps", "-aq", "--no-trunc"][..],
        &["plugin", "ls", "-q", "--no-trunc"],
    ] {
        let out = Command::new("nsenter")
            .args(["-t", &holder.to_string(), "-n", "-m", "-u", "--", "docker"])
            .args(args)
            .output();
        if let Ok(out) = out {
            ids.extend(out.stdout);
            ids.push(b'\n');
        }
    }
    let _ = std::fs::write(mdir.join("container-ids"), ids);
}

/// SIGTERM to the machine's dockerd, and up to 30 s for it to stop.
fn stop_dockerd(mdir: &Path) {
    let pid = std::fs::read_to_string(mdir.join("dockerd.pid"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    if let Some(pid) = pid.filter(|p| alive(*p)) {
        kill(pid, libc::SIGTERM);
        let start = Instant::now();
        while alive(pid) && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let _ = std::fs::remove_file(mdir.join("dockerd.pid"));
}

/// SIGKILL to processes in the cgroup of one of these container or plugin
/// IDs (a container whose shim was killed outlives it).
fn kill_containers(ids: &str) {
    let ids: Vec<&str> = ids.split_whitespace().filter(|i| i.len() == 64).collect();
    if ids.is_empty() {
        return;
    }
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if ids.iter().any(|id| cg.contains(id)) {
            kill(pid, libc::SIGKILL);
        }
    }
}

/// Delete the Neutron agent records of these hosts (the agents must be
/// stopped first, or they register again).
fn delete_agents(hosts: &[String]) {
    // Its own thread and runtime: this runs in Drop, maybe inside the
    // test's runtime.
    let ids: Vec<String> = std::thread::scope(|s| {
        s.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let n = neutron();
                let mut ids = Vec::new();
                for h in hosts {
                    if let Ok(agents) = n.list_agents(&Query::new().eq("host", h)).await {
                        ids.extend(agents.into_iter().map(|a| a.id));
                    }
                }
                ids
            })
        })
        .join()
        .unwrap_or_default()
    });
    if ids.is_empty() {
        return;
    }
    let out = Command::new("openstack")
        .args(["network", "agent", "delete"])
        .args(&ids)
        .output();
    if let Ok(out) = out
        && !out.status.success()
    {
        eprintln!("deleting Neutron agents {ids:?}: {}", output_text(&out));
    }
}

impl Machine {
    /// The namespaces, the NIC, the holder, the socats into the lab.
    fn boot(dir: &Path, bridge: &str, name: &str, cidr: &str) -> Machine {
        let mdir = dir.join(name);
        for sub in ["etc-up", "etc-work", "var-up", "var-work", "docker"] {
            std::fs::create_dir_all(mdir.join(sub)).unwrap();
        }
        run_ok(Command::new("ip").args(["netns", "add", name]));
        let host_end = format!("{name}-h");
        let _ = Command::new("ip").args(["link", "del", &host_end]).output();
        run_ok(Command::new("ip").args([
            "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", name,
        ]));
        run_ok(Command::new("ip").args(["link", "set", &host_end, "master", bridge, "up"]));
        for args in [
            vec!["link", "set", "lo", "up"],
            vec!["link", "set", "eth0", "up"],
            vec!["addr", "add", cidr, "dev", "eth0"],
        ] {
            run_ok(Command::new("ip").args(["-n", name]).args(&args));
        }
        let ready = mdir.join("ready");
        let script = holder_script(&mdir, name, &ready);
        let holder = start_bg(
            Command::new("ip")
                .args(["netns", "exec", name, "unshare", "--mount", "--uts"])
                .args(["--propagation", "private", "sh", "-c", &script]),
            &mdir.join("holder.log"),
        );
        std::fs::write(mdir.join("holder.pid"), holder.to_string()).unwrap();
        wait_for(
            &format!("{name}'s namespaces"),
            Duration::from_secs(10),
            || ready.exists() || !alive(holder),
        );
        let log = std::fs::read_to_string(mdir.join("holder.log")).unwrap_or_default();
        assert!(ready.exists(), "{name}: the holder did not start: {log}");
        let m = Machine {
            name: name.to_string(),
            cidr: cidr.to_string(),
            dir: mdir.clone(),
            holder,
        };
        for port in LAB_PORTS {
            let pid = start_bg(
                Command::new("ip")
                    .args(["netns", "exec", name, "socat"])
                    .args([
                        format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"),
                        format!("UNIX-CONNECT:{}/lab-{port}.sock", dir.display()),
                    ]),
                &mdir.join("socat.log"),
            );
            record_pid(dir, pid);
        }
        m
    }

    /// The machine's address, without the prefix length.
    pub fn ip(&self) -> &str {
        self.cidr.split('/').next().unwrap()
    }

    /// A command run inside the machine (its network, mounts and name).
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.args([
            "-t",
            &self.holder.to_string(),
            "-n",
            "-m",
            "-u",
            "--wd=/",
            "--",
        ])
        .args(argv);
        c
    }

    /// Run `argv` in the machine.
    pub fn exec(&self, argv: &[&str]) -> Output {
        run(&mut self.command(argv))
    }

    /// Run `argv` in the machine, which must succeed; its stdout, trimmed.
    pub fn exec_ok(&self, argv: &[&str]) -> String {
        let out = self.exec(argv);
        assert!(
            out.status.success(),
            "{}: {} failed: {}",
            self.name,
            argv.join(" "),
            output_text(&out)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The docker CLI against the machine's dockerd.
    pub fn docker(&self, args: &[&str]) -> Output {
        let mut argv = vec!["docker"];
        argv.extend(args);
        self.exec(&argv)
    }

    pub fn docker_ok(&self, args: &[&str]) -> String {
        let mut argv = vec!["docker"];
        argv.extend(args);
        self.exec_ok(&argv)
    }

    /// Start the machine's dockerd (at the usual paths of the machine),
    /// once it answers; busybox loaded from `image` (a `docker save`).
    pub fn start_dockerd(&self, image: &Path) {
        let pid = start_bg(
            &mut self.command(&[
                "dockerd",
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--ip-masq=false",
            ]),
            &self.dir.join("dockerd.log"),
        );
        std::fs::write(self.dir.join("dockerd.pid"), pid.to_string()).unwrap();
        wait_for(
            &format!("{}'s dockerd", self.name),
            Duration::from_secs(60),
            || self.docker(&["version"]).status.success() || !alive(pid),
        );
        assert!(
            alive(pid),
            "{}: dockerd exited: {}",
            self.name,
            std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
        );
        let loaded = self.docker(&["image", "inspect", "busybox:latest"]);
        if !loaded.status.success() {
            self.docker_ok(&["load", "-q", "-i", &image.to_string_lossy()]);
        }
    }

    /// Stop the machine's dockerd (its containers and plugin with it),
    /// remembering the container and plugin IDs for the teardown.
    pub fn stop_dockerd(&self) {
        remember_containers(&self.dir, self.holder);
        stop_dockerd(&self.dir);
    }

    /// A reboot: dockerd stopped (its containers and plugin with it),
    /// every other process of the machine killed (SIGKILL), `/run`
    /// emptied, every link but `lo` and `eth0` deleted and `eth0` given
    /// its address again (as the machine's network configuration does at
    /// boot): what the kernel and tmpfs forget.
    pub fn power_cycle(&self) {
        self.stop_dockerd();
        let ns = mount_ns(self.holder).expect("the machine runs");
        for pid in processes_in(&ns) {
            if pid != self.holder {
                kill(pid, libc::SIGKILL);
            }
        }
        wait_for(
            &format!("{}'s processes to die", self.name),
            Duration::from_secs(10),
            || {
                processes_in(&ns)
                    .iter()
                    .all(|p| *p == self.holder || !alive(*p))
            },
        );
        self.exec_ok(&[
            "sh",
            "-c",
            "rm -rf /run/* && ip addr flush dev eth0 scope global",
        ]);
        for link in self.links() {
            if link != "lo" && link != "eth0" {
                let _ = self.exec(&["ip", "link", "del", &link]);
            }
        }
        self.exec_ok(&["ip", "addr", "add", &self.cidr, "dev", "eth0"]);
    }

    /// The links of the machine by name, sorted, but Docker's own: its
    /// swarm bridge `docker_gwbridge` and its `veth*` (the ingress
    /// sandbox's, made and renamed as swarm sets it up). kuryr's are
    /// `tap*`, `t_c*`, `qvo*`, `qvb*`, `qbr*`.
    pub fn links(&self) -> Vec<String> {
        let out = self.exec_ok(&["ip", "-j", "link"]);
        let links: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let mut v: Vec<String> = links
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| {
                let name = l["ifname"].as_str().unwrap_or_default();
                name != "docker_gwbridge" && !name.starts_with("veth")
            })
            .filter_map(|l| l["ifname"].as_str().map(str::to_string))
            .collect();
        v.sort();
        v
    }

    /// Copy the machine's logs (dockerd, node setup's daemons, Open
    /// vSwitch) to `logs/<name>/`.
    fn keep_logs(&self, logs: &Path) {
        let to = logs.join(&self.name);
        let _ = std::fs::create_dir_all(&to);
        let _ = std::fs::copy(self.dir.join("dockerd.log"), to.join("dockerd.log"));
        for sub in ["var-up/log/kuryr", "var-up/log/openvswitch"] {
            if let Ok(entries) = std::fs::read_dir(self.dir.join(sub)) {
                for e in entries.flatten() {
                    let _ = std::fs::copy(e.path(), to.join(e.file_name()));
                }
            }
        }
    }

    /// `path` of the machine (its mounts), seen from the host.
    pub fn path(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{path}", self.holder))
    }

    /// The machine's directory on the host (its overlays' upper layers).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The holder's shell: mounts, host name, ready mark, then sleep.
fn holder_script(mdir: &Path, name: &str, ready: &Path) -> String {
    let d = mdir.display();
    // `ip netns exec` gives a fresh /sys (this namespace's devices) but no
    // cgroup file systems: mount the host's hierarchies again, as
    // lab/swarm-nodes does for its dockerds.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut cgroups = String::new();
    for l in mounts.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 4 && (f[2] == "cgroup" || f[2] == "cgroup2") {
            cgroups.push_str(&format!(
                "mkdir -p {0} && mount -t {1} -o {2} {1} {0} && ",
                f[1], f[2], f[3]
            ));
        }
        if f.len() >= 3 && f[1] == "/sys/fs/cgroup" && f[2] == "tmpfs" {
            cgroups.insert_str(0, "mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup && ");
        }
    }
    format!(
        "set -e; {cgroups}\
         mount -t overlay overlay -o lowerdir=/etc,upperdir={d}/etc-up,workdir={d}/etc-work /etc; \
         mount -t overlay overlay -o lowerdir=/var,upperdir={d}/var-up,workdir={d}/var-work /var; \
         mount --bind {d}/docker /var/lib/docker; \
         mount -t tmpfs -o mode=755 tmpfs /run; \
         rm -f /etc/openvswitch/conf.db; \
         hostname {name}; echo ready > {ready}; exec sleep infinity",
        ready = ready.display()
    )
}

/// `docker save busybox:latest` from the lab's dockerd into `dir`.
pub fn busybox_image(dir: &Path) -> PathBuf {
    let tar = dir.join("busybox.tar");
    if !tar.exists() {
        run_ok(Command::new("docker").args([
            "-H",
            "unix:///run/docker.sock",
            "save",
            "-o",
            &tar.to_string_lossy(),
            "busybox:latest",
        ]));
    }
    tar
}

/// The message bus URL of the lab's Neutron (its `transport_url`).
pub fn lab_transport_url() -> String {
    let conf = std::fs::read_to_string(format!("{}/etc/neutron/neutron.conf", lab_dir()))
        .expect("the lab's neutron.conf");
    conf.lines()
        .find_map(|l| l.strip_prefix("transport_url = "))
        .expect("transport_url in the lab's neutron.conf")
        .trim()
        .to_string()
}
