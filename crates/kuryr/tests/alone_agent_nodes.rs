//! Agent mode across nodes: a Docker Swarm of three machines, each running
//! its own Neutron L2 agent, set up by `kuryr node setup` for real.
//!
//! Each machine (`common::machine`) is a network namespace, a mount
//! namespace (its own `/etc`, `/var` and `/run`) and a host name, on a
//! Linux bridge the test makes; it reaches Keystone, Neutron and RabbitMQ
//! at its own 127.0.0.1 through socat bridges. Its dockerd is started by
//! the test; everything else by `kuryr node setup --role ... ` run inside
//! it with `init: process` (no systemd here), `driver.plugin: managed`
//! (node setup run by the statically linked `kuryr`, the binary of the
//! plugin's root file system, which holds nothing else but the CA bundle):
//!
//! - Open vSwitch test: `ovsdb-server` and `ovs-vswitchd` (userspace
//!   datapath) with `br-int`, the physical bridge `br-phy` holding `eth0`
//!   and the machine's address (the tunnel endpoint, `local_ip`), the
//!   `neutron-openvswitch-agent` (host = the machine's name, VXLAN,
//!   l2population), which makes `br-tun`; the managed plugin mounts only
//!   the OVS database socket.
//! - Linux bridge test: the `neutron-linuxbridge-agent` (kernel VXLAN,
//!   l2population).
//!
//! Then: `kuryr node check` on each machine (agent alive in Neutron, the
//! tunnel endpoint); `docker swarm init/join`; `docker network create -d
//! kuryr --scope swarm` on the manager; a service of 3 replicas (at most
//! one per node): every task's port ACTIVE and bound to its node's host
//! id, its agent alive there; the task on node 1 pings and opens a TCP
//! connection to the task on node 3, and the packets cross node 1's
//! tunnel port to node 3 (its counters); a rebooted node 3 (every process
//! of it killed, `/run` emptied, node setup and dockerd started again)
//! gets a task again that reaches node 1's over the tunnel within a
//! bound; `docker service rm` and `docker network rm` leave Neutron, every
//! node's Open vSwitch (or bridges) and links, and the host's links as
//! they were. Machines, processes, Open vSwitch databases and the agents'
//! Neutron records go at the end, a panic included.
//!
//! Needs root and the lab (`eval "$(lab/env kuryr)"`); an `alone_*`
//! binary: its three agents load the lab's Neutron and RabbitMQ. Each
//! test takes about two minutes; its steps and timings are printed.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::env::{eventually, output_text, var};
use common::lab::{self, Lab};
use common::machine::{Machine, Machines, busybox_image, lab_transport_url};
use common::netns;
use common::plugin;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_kuryr");
/// The managed plugin's reference, also its driver name: in swarm mode a
/// v2 plugin is known by its whole name (`-d kuryr` names only a legacy
/// plugin, which swarm mode refuses).
const PLUGIN: &str = "kuryr/kuryr:latest";
const NET: &str = "kan-net";
const SERVICE: &str = "kan-svc";
/// How long a rebooted node may take to run a task that reaches another
/// node's again.
const REBOOT_BOUND: Duration = Duration::from_secs(150);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Agent {
    Ovs,
    LinuxBridge,
}

impl Agent {
    fn label(self) -> &'static str {
        match self {
            Agent::Ovs => "ovs",
            Agent::LinuxBridge => "linuxbridge",
        }
    }

    fn neutron_type(self) -> &'static str {
        match self {
            Agent::Ovs => "Open vSwitch agent",
            Agent::LinuxBridge => "Linux bridge agent",
        }
    }

    fn vif_type(self) -> &'static str {
        match self {
            Agent::Ovs => "ovs",
            Agent::LinuxBridge => "bridge",
        }
    }

    /// The `agent` section of the cluster parameters.
    fn params(self) -> Value {
        let mut a = json!({
            "local_ip": {"interface": "eth0"},
            "tunnel_types": ["vxlan"],
            "l2_population": true,
            "transport_url": lab_transport_url(),
        });
        if self == Agent::Ovs {
            a["datapath_type"] = json!("netdev");
            a["physical_bridge"] = json!({"bridge": "br-phy", "interface": "eth0"});
        }
        a
    }
}

struct Clock(&'static str, Instant, Instant);

impl Clock {
    fn step(&mut self, what: &str) {
        let now = Instant::now();
        println!(
            "{}: {what}: {:.1} s (total {:.1} s)",
            self.0,
            (now - self.2).as_secs_f64(),
            (now - self.1).as_secs_f64()
        );
        self.2 = now;
    }
}

fn write_json(path: &Path, v: &Value) -> String {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
    path.display().to_string()
}

/// `kuryr node setup` inside the machine, run by the statically linked
/// `kuryr`, which it puts into the plugin's root file system; its output.
fn node_setup(m: &Machine, template: &str, params: &str, role: &str) -> String {
    let kuryr = plugin::static_kuryr();
    let out = m.exec(&[
        &kuryr.to_string_lossy(),
        "node",
        "setup",
        "--template",
        template,
        "--params",
        params,
        "--role",
        role,
    ]);
    let text = output_text(&out);
    assert!(
        out.status.success(),
        "{}: node setup failed:\n{text}",
        m.name
    );
    text
}

/// `kuryr node check` inside the machine: (all OK, output).
fn node_check(m: &Machine) -> (bool, String) {
    let out = m.exec(&[BIN, "node", "check"]);
    (out.status.success(), output_text(&out))
}

/// The line of check `name` in a `kuryr node check` output.
fn check_line<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find(|l| {
        l.split_once(' ')
            .is_some_and(|(_, r)| r.trim_start().starts_with(&format!("{name}:")))
    })
}

/// The container and address of the service's task on `m`.
fn task_on(m: &Machine) -> Option<(String, String)> {
    let ids = m.docker_ok(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={SERVICE}"),
    ]);
    let id = ids.lines().next()?.to_string();
    let ip = m.docker_ok(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{NET}\").IPAddress}}}}"),
        &id,
    ]);
    (!ip.is_empty()).then_some((id, ip))
}

async fn tasks_on_every_node(ms: &[Machine]) -> Vec<(String, String)> {
    let mut tasks = Vec::new();
    for m in ms {
        let t = eventually(
            &format!("the task on {}", m.name),
            Duration::from_secs(120),
            async || task_on(m),
        )
        .await;
        println!("  {}: task {} has {}", m.name, &t.0[..12], t.1);
        tasks.push(t);
    }
    tasks
}

/// What the agent made on a node, to compare before and after: Open
/// vSwitch bridges and their ports (OVS), the links.
fn node_state(m: &Machine, agent: Agent) -> BTreeMap<String, Vec<String>> {
    let mut s = BTreeMap::new();
    if agent == Agent::Ovs {
        for br in m.exec_ok(&["ovs-vsctl", "list-br"]).lines() {
            let mut ports: Vec<String> = m
                .exec_ok(&["ovs-vsctl", "list-ports", br])
                .lines()
                .map(str::to_string)
                .collect();
            ports.sort();
            s.insert(format!("ovs {br}"), ports);
        }
    }
    s.insert("links".into(), m.links());
    s
}

/// The host's links that are this test's: the machines' bridge and veth
/// ends (`kan-*`), and any interface named after one of `ports` (a tap,
/// `t_c`, `qvo`, `qvb` or `qbr` of a port: those belong in the nodes).
/// Other tests may make and remove links on the host meanwhile.
fn host_links_of(ports: &[String]) -> Vec<String> {
    let (_, out) = netns::ip(&["-br", "link"]);
    let mut v: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| {
            n.starts_with("kan-")
                || ports
                    .iter()
                    .any(|id| n.len() > 3 && id.starts_with(&n[3..]) && n.len() == 14)
        })
        .collect();
    v.sort();
    v
}

/// Packets node `m` sent to and received from tunnel endpoint `remote`:
/// the OpenFlow counters of its `br-tun` VXLAN port to it (OVS), or the
/// counters of its VXLAN devices whose forwarding database sends to it
/// (Linux bridge).
fn tunnel_packets(m: &Machine, agent: Agent, remote: &str) -> Option<(u64, u64)> {
    match agent {
        Agent::Ovs => {
            let port = m
                .exec_ok(&[
                    "ovs-vsctl",
                    "--bare",
                    "--columns=name",
                    "find",
                    "Interface",
                    "type=vxlan",
                    &format!("options:remote_ip={remote}"),
                ])
                .lines()
                .next()?
                .trim()
                .to_string();
            let stats = m.exec_ok(&["ovs-ofctl", "dump-ports", "br-tun", &port]);
            // `rx pkts=N, bytes=...` then `tx pkts=N, bytes=...`.
            let num = |key: &str| -> Option<u64> {
                let i = stats.find(key)? + key.len();
                stats[i..].split(',').next()?.trim().parse().ok()
            };
            Some((num("tx pkts=")?, num("rx pkts=")?))
        }
        Agent::LinuxBridge => {
            let links: Value = serde_json::from_str(
                &m.exec_ok(&["ip", "-j", "-s", "-d", "link", "show", "type", "vxlan"]),
            )
            .ok()?;
            let mut found = None;
            for l in links.as_array()? {
                let dev = l["ifname"].as_str()?;
                let fdb = m.exec_ok(&["bridge", "fdb", "show", "dev", dev]);
                if fdb.lines().any(|e| e.contains(&format!("dst {remote} "))) {
                    let tx = l["stats64"]["tx"]["packets"].as_u64()?;
                    let rx = l["stats64"]["rx"]["packets"].as_u64()?;
                    found = Some((tx, rx));
                }
            }
            found
        }
    }
}

/// The forwarding entry of node `m` that sends frames for `mac` into the
/// tunnel to `remote`: a `br-tun` flow (l2population's unicast flow,
/// output to the VXLAN port to `remote`) or a VXLAN forwarding database
/// entry with `dst remote`.
fn forwarding_to(m: &Machine, agent: Agent, mac: &str, remote: &str) -> Option<String> {
    match agent {
        Agent::Ovs => {
            let ofport = m
                .exec_ok(&[
                    "ovs-vsctl",
                    "--bare",
                    "--columns=ofport",
                    "find",
                    "Interface",
                    "type=vxlan",
                    &format!("options:remote_ip={remote}"),
                ])
                .trim()
                .to_string();
            let flows = m.exec_ok(&["ovs-ofctl", "dump-flows", "br-tun"]);
            flows
                .lines()
                .find(|f| {
                    f.contains(&format!("dl_dst={mac}")) && f.contains(&format!("output:{ofport}"))
                })
                .map(|f| f.trim().to_string())
        }
        Agent::LinuxBridge => m
            .exec_ok(&["bridge", "fdb", "show"])
            .lines()
            .find(|e| e.starts_with(mac) && e.contains(&format!("dst {remote} ")))
            .map(str::to_string),
    }
}

/// Ping and a TCP exchange from container `c1` on `m1` to `ip3` (on
/// `m3`, container `c3`), within `timeout`.
async fn reaches(
    m1: &Machine,
    c1: &str,
    m3: &Machine,
    c3: &str,
    ip3: &str,
    timeout: Duration,
) -> String {
    let ping = eventually(
        &format!("{}'s task pings {ip3}", m1.name),
        timeout,
        async || {
            let out = m1.docker(&["exec", c1, "ping", "-c", "3", "-W", "1", ip3]);
            out.status.success().then(|| output_text(&out))
        },
    )
    .await;
    let token = format!("kuryr-tcp-{:x}", common::env::random_u64());
    m3.docker_ok(&[
        "exec",
        "-d",
        c3,
        "sh",
        "-c",
        &format!("echo {token} | nc -l -p 7000"),
    ]);
    let got = eventually(
        &format!("a TCP connection from {}'s task to {ip3}:7000", m1.name),
        Duration::from_secs(20),
        async || {
            let out = m1.docker(&["exec", c1, "nc", "-w", "3", ip3, "7000"]);
            let text = output_text(&out);
            text.contains(&token).then_some(text)
        },
    )
    .await;
    format!("{ping}\n$ nc {ip3} 7000\n{got}")
}

async fn three_nodes(agent: Agent) {
    assert!(
        netns::is_root(),
        "this test needs root (namespaces, dockerd)"
    );
    let family = format!("kuryr-an-{}", agent.label());
    lab::run(async |lab: &Lab| {
        let mut clock = Clock(if agent == Agent::Ovs { "agent_nodes_ovs" } else { "agent_nodes_lb" }, Instant::now(), Instant::now());
        let short = if agent == Agent::Ovs { "ovs" } else { "lb" };
        let names: Vec<String> = (1..=3).map(|i| format!("kan-{short}-{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        // The machines' own network: a /24 of this test's slot, never a
        // Neutron subnet.
        let underlay = lab.slot.prefix4(1);
        let bridge = format!("kan-{short}-br");
        Machines::remove(&family, &bridge, &names);
        let mut ports_seen: Vec<String> = Vec::new();
        assert_eq!(host_links_of(&ports_seen), Vec::<String>::new());
        let machines = Machines::new(&family, &bridge, &underlay, &names);
        let ms = &machines.machines;
        clock.step("3 machines (namespaces, overlays, bridge, socats)");

        // ---- node setup, for real, in each machine
        let template = write_json(
            &machines.dir.join("template.json"),
            &json!({"name": "kan", "coe": "swarm-mode", "network_driver": "kuryr",
                    "labels": {"kuryr_mode": "agent", "kuryr_agent_type": agent.label(),
                               "kuryr_scope": "global"}}),
        );
        let password = var("KURYR_LAB_KURYR_PASSWORD");
        let params = write_json(
            &machines.dir.join("params.json"),
            &json!({
                "keystone": {"auth_url": var("OS_AUTH_URL"), "region_name": var("OS_REGION_NAME"),
                             "interface": "public"},
                "credential": {"type": "password", "username": var("KURYR_LAB_KURYR_USERNAME"),
                               "user_domain_name": "Default", "password": password,
                               "project_name": var("KURYR_LAB_KURYR_PROJECT"),
                               "project_domain_name": "Default"},
                "init": "process",
                // No DHCP port on the service's network: a DHCP agent of
                // the lab would be a lab-host port there, whose tunnel
                // endpoint is the lab's 127.0.0.1.
                "driver": {"plugin": "managed", "enable_dhcp": false},
                "agent": agent.params(),
            }),
        );
        let image = busybox_image(&machines.dir);
        for (i, m) in ms.iter().enumerate() {
            m.start_dockerd(&image);
            let role = if i == 0 { "manager" } else { "worker" };
            let text = node_setup(m, &template, &params, role);
            if i == 0 {
                println!("{}: kuryr node setup --role manager:\n{text}", m.name);
            }
            assert!(!text.contains(&password), "{text}");
        }
        for m in ms {
            plugin::assert_rootfs_is_the_binary_and_the_ca(&m.path(kuryr::paths::PLUGIN_ROOTFS));
        }
        clock.step("dockerd + kuryr node setup on each machine");
        // A second run changes nothing and starts nothing.
        let again = node_setup(&ms[0], &template, &params, "manager");
        assert!(!again.contains("\nrun: "), "{again}");
        assert!(again.contains(" 0 created, 0 updated, "), "{again}");
        println!("{}: node setup again:\n{again}", ms[0].name);

        // ---- every agent alive, node check
        for m in ms {
            let text = eventually(
                &format!("{}: kuryr node check: agent alive", m.name),
                Duration::from_secs(90),
                async || {
                    let (ok, text) = node_check(m);
                    ok.then_some(text)
                },
            )
            .await;
            println!("{}: kuryr node check:\n{text}", m.name);
        }
        clock.step("3 agents alive in Neutron (kuryr node check)");

        // ---- the swarm
        let manager_ip = ms[0].ip().to_string();
        ms[0].docker_ok(&[
            "swarm", "init", "--advertise-addr", &manager_ip, "--listen-addr",
            &format!("{manager_ip}:2377"), "--data-path-port", "7789",
        ]);
        let token = ms[0].docker_ok(&["swarm", "join-token", "-q", "worker"]);
        for m in &ms[1..] {
            m.docker_ok(&[
                "swarm", "join", "--token", &token, "--advertise-addr", m.ip(),
                &format!("{manager_ip}:2377"),
            ]);
        }
        let ready = async || {
            let ls = ms[0].docker_ok(&["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]);
            (ls.lines().filter(|l| l.ends_with(" Ready")).count() == 3).then_some(())
        };
        eventually("3 Ready swarm nodes", Duration::from_secs(60), ready).await;
        clock.step("swarm of 3 nodes Ready");
        let before: Vec<_> = ms.iter().map(|m| node_state(m, agent)).collect();

        // ---- a swarm-scope kuryr network and a service, one task per node
        let cidr = lab.cidr4(0);
        ms[0].docker_ok(&[
            "network", "create", "-d", PLUGIN, "--ipam-driver", PLUGIN, "--scope", "swarm",
            "--attachable", "--subnet", &cidr, NET,
        ]);
        let net_id = ms[0].docker_ok(&["network", "inspect", "-f", "{{.Id}}", NET]);
        lab.track_network(&net_id);
        ms[0].docker_ok(&[
            "service", "create", "--detach", "--name", SERVICE, "--replicas", "3",
            "--replicas-max-per-node", "1", "--network", NET, "--endpoint-mode", "dnsrr",
            "--stop-grace-period", "1s", "--no-resolve-image", "busybox:latest", "sleep", "600",
        ]);
        let tasks = tasks_on_every_node(ms).await;
        clock.step("network create --scope swarm, service of 3 replicas running");
        let network = lab.network_of(&net_id).await;
        for p in lab.ports_in(&network.id).await {
            let ips: Vec<&str> = p.fixed_ips.iter().map(|f| f.ip_address.as_str()).collect();
            println!(
                "  Neutron port {} {} {} host {:?} {} {}",
                p.id, p.name, ips.join(","), p.host_id, p.status, p.device_owner
            );
            // No lab-host port: the lab's agents tunnel from 127.0.0.1.
            assert!(
                p.host_id.is_empty() || names.contains(&p.host_id.as_str()),
                "a port of another host on the nodes' network: {p:#?}"
            );
        }
        for (m, (_, ip)) in ms.iter().zip(&tasks) {
            let ports = lab.port_with_ip(ip).await;
            let ports: Vec<_> = ports.into_iter().filter(|p| p.network_id == network.id).collect();
            assert_eq!(ports.len(), 1, "one port holds {ip}: {ports:#?}");
            let port = eventually(
                &format!("{}'s port ACTIVE", m.name),
                Duration::from_secs(60),
                async || lab.port(&ports[0].id).await.filter(|p| p.status == "ACTIVE"),
            )
            .await;
            assert_eq!(port.host_id, m.name, "bound to its node's host id");
            assert_eq!(port.vif_type, agent.vif_type(), "{port:#?}");
            let agents = lab
                .neutron
                .list_agents(&kuryr_openstack::Query::new().eq("host", &m.name))
                .await
                .unwrap();
            assert!(
                agents.iter().any(|a| a.alive && a.agent_type == agent.neutron_type()),
                "{}: {agents:#?}",
                m.name
            );
            println!(
                "  port {} {} ACTIVE, binding:host_id {}, vif_type {}",
                port.id, ip, port.host_id, port.vif_type
            );
            ports_seen.push(port.id.clone());
        }

        // ---- node 1's task reaches node 3's, through the tunnel
        let (c1, ip1) = &tasks[0];
        let (c3, ip3) = &tasks[2];
        let remote = ms[2].ip().to_string();
        let counters_before = eventually(
            "node 1's tunnel to node 3",
            Duration::from_secs(60),
            async || tunnel_packets(&ms[0], agent, &remote),
        )
        .await;
        let exchange = reaches(&ms[0], c1, &ms[2], c3, ip3, Duration::from_secs(60)).await;
        println!("{} -> {}:\n{exchange}", ms[0].name, ms[2].name);
        let counters_after = tunnel_packets(&ms[0], agent, &remote).unwrap();
        println!(
            "{}: tunnel to {remote}: tx {} -> {}, rx {} -> {} packets",
            ms[0].name, counters_before.0, counters_after.0, counters_before.1, counters_after.1
        );
        assert!(
            counters_after.0 >= counters_before.0 + 4 && counters_after.1 >= counters_before.1 + 4,
            "the ping and the TCP exchange crossed the tunnel: {counters_before:?} -> {counters_after:?}"
        );
        let mac3 = lab
            .port_with_ip(ip3)
            .await
            .into_iter()
            .find(|p| p.network_id == network.id)
            .map(|p| p.mac_address)
            .expect("node 3's task port");
        let entry = forwarding_to(&ms[0], agent, &mac3, &remote).unwrap_or_else(|| {
            panic!("{}: nothing sends {mac3} into the tunnel to {remote}", ms[0].name)
        });
        println!("{}: {mac3} goes into the tunnel to {remote}: {entry}", ms[0].name);
        let (ok, text) = node_check(&ms[0]);
        println!("{}: kuryr node check with a task:\n{text}", ms[0].name);
        let tunnel = check_line(&text, "tunnel").unwrap_or_default();
        assert!(
            ok && tunnel.starts_with("OK") && tunnel.contains(&format!("{remote} ({})", ms[2].name)),
            "{text}"
        );
        clock.step("ping + TCP node 1 -> node 3 through the tunnel");

        // ---- node 3 reboots
        let t0 = Instant::now();
        ms[2].power_cycle();
        let text = node_setup(&ms[2], &template, &params, "worker");
        println!("{}: node setup after the reboot:\n{text}", ms[2].name);
        ms[2].start_dockerd(&image);
        let (c3, ip3) = eventually(
            "a task on the rebooted node 3",
            REBOOT_BOUND,
            async || task_on(&ms[2]),
        )
        .await;
        let left = REBOOT_BOUND.saturating_sub(t0.elapsed());
        let exchange = reaches(&ms[2], &c3, &ms[0], c1, ip1, left).await;
        println!(
            "{} rebooted: its task {ip3} reaches {ip1} after {:.1} s:\n{exchange}",
            ms[2].name,
            t0.elapsed().as_secs_f64()
        );
        clock.step("node 3 rebooted, its task reaches node 1's again");

        // ---- service rm + network rm: everything as it was
        ms[0].docker_ok(&["service", "rm", SERVICE]);
        eventually("no task left", Duration::from_secs(60), async || {
            ms.iter().all(|m| task_on(m).is_none()).then_some(())
        })
        .await;
        ms[0].docker_ok(&["network", "rm", NET]);
        eventually("Neutron as it was", Duration::from_secs(60), async || {
            lab.leftovers().await.is_empty().then_some(())
        })
        .await;
        for (m, b) in ms.iter().zip(&before) {
            let start = Instant::now();
            loop {
                let now = node_state(m, agent);
                if now == *b {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "{}'s bridges and links are not as they were:\nbefore {b:#?}\nnow {now:#?}",
                    m.name
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        clock.step("service rm + network rm: Neutron, nodes as they were");
        drop(machines);
        assert_eq!(
            host_links_of(&ports_seen),
            Vec::<String>::new(),
            "no link of the machines or their ports left on the host"
        );
        clock.step("machines removed");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ovs_agents_on_three_nodes_carry_a_swarm_service() {
    three_nodes(Agent::Ovs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linuxbridge_agents_on_three_nodes_carry_a_swarm_service() {
    three_nodes(Agent::LinuxBridge).await;
}
