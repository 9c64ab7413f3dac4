//! A whole Docker Swarm cluster on one machine, networked by kuryr.
//!
//! Three nodes `node1`..`node3`, each a "Nova VM" simulated the way
//! `modes_nested` does it: a network namespace whose `eth0` is one end of
//! a veth plugged into the lab's `br-int` for a real Neutron port (bound to
//! the lab's OVS agent, port security on, the project's default security
//! group, which admits traffic from its own members: Swarm's 2377/7946/4789
//! between the nodes pass the OVS firewall). All three ports are on one
//! Neutron network the test makes.
//!
//! Each node runs its own dockerd (and, supervised by it, its own
//! containerd) inside its namespace (`lab/swarm-nodes`). `kuryr node setup
//! --role manager|worker --hostname nodeN` writes the node's kuryr.conf
//! (nested mode, `link_iface = eth0`, scope global) and the managed v2
//! plugin's bundle into the node's root, and with `driver.plugin managed`
//! and `--docker-host unix://<node>/docker.sock` creates and enables the
//! plugin on the node's dockerd, `<root>/etc/kuryr` as its `/etc/kuryr`
//! mount; a second run changes nothing.
//! Keystone and Neutron are at 127.0.0.1 in kuryr.conf; in a node's
//! namespace that is the node's own loopback, bridged to the lab by socat
//! through unix sockets.
//!
//! Then: `docker swarm init/join` over the nodes' own addresses; `docker
//! network create -d kuryr/kuryr:latest --ipam-driver kuryr/kuryr:latest
//! --scope swarm` on the manager; a service of 3 replicas, one per node,
//! each task with an address Neutron allocated (a port in the VMs' subnet,
//! allowed on that node's VM port); the task on node1 pings the task on
//! node3 through the real OVS firewall; removing the service and the
//! network leaves Neutron as it was.
//!
//! Not here: agent mode across nodes needs one Open vSwitch per node, and
//! this machine runs one userspace (netdev) ovs-vswitchd only (a second
//! gets EBUSY on ovs-netdev); agent mode on one node, with the legacy
//! socket plugin and the lab's dockerd, is `docker_scenario` (the seed's
//! standalone scenario).
//!
//! `swarm_calls_on_the_manager_and_a_worker` drives the same swarm calls
//! in-process (two drivers, scope global, no Docker) and checks Neutron
//! after each.
//!
//! Needs root and the lab: `eval "$(lab/env kuryr)"`. Takes about a
//! minute; its steps and their timings are printed.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::env::{eventually, neutron, output_text as text, random_u64, repo_root, var};
use common::lab::{self, Lab};
use common::netns;
use common::plugin;
use common::requests;
use common::vm::{vm_node, vm_port_name};
use kuryr::binding::{self, Binder};
use kuryr::config::CapabilityScope;
use kuryr::driver::{Driver, DriverConfig};
use kuryr_openstack::Query;
use kuryr_openstack::neutron::{NetworkCreate, Port, SubnetCreate};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_kuryr");
const DIR: &str = "/run/kuryr-swarm";
const PLUGIN: &str = "kuryr/kuryr:latest";
const NODES: [&str; 3] = ["node1", "node2", "node3"];
const NET: &str = "kswarm-net";
const SERVICE: &str = "kswarm-svc";

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn swarm_nodes(args: &[&str]) -> Command {
    let mut c = Command::new(repo_root().join("lab/swarm-nodes"));
    c.args(args);
    c
}

/// The docker CLI against one node's dockerd.
fn dk(node: &str, args: &[&str]) -> Output {
    Command::new("/usr/bin/docker")
        .arg("-H")
        .arg(format!("unix://{DIR}/{node}/docker.sock"))
        .args(args)
        .output()
        .expect("run docker")
}

fn dk_ok(node: &str, args: &[&str]) -> String {
    let out = dk(node, args);
    assert!(
        out.status.success(),
        "{node}: docker {} failed: {}",
        args.join(" "),
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

struct Clock(Instant, Instant);

impl Clock {
    fn step(&mut self, what: &str) {
        let now = Instant::now();
        println!(
            "swarm_cluster: {what}: {:.1} s (total {:.1} s)",
            (now - self.1).as_secs_f64(),
            (now - self.0).as_secs_f64()
        );
        self.1 = now;
    }
}

// ---------------------------------------------------------------- the nodes

/// What the running plugin's `kuryr` on `node` holds, measured: what
/// dockerd gave it (its start-up log line) and, after
/// `--drop-capabilities`, its CapEff, CapPrm and CapBnd; both as the docs
/// say.
fn plugin_capabilities(node: &str, netns: &Path) {
    let pids = plugin::plugin_pids(netns);
    assert_eq!(
        pids.len(),
        1,
        "one plugin kuryr process in {node}'s namespace"
    );
    let caps = plugin::Caps::of(pids[0]);
    let holds = plugin::decode(caps.effective);
    println!(
        "swarm_cluster: {node}: plugin kuryr (pid {}): CapEff {:#018x} = {}; CapPrm {:#018x}; CapBnd {:#018x}",
        pids[0],
        caps.effective,
        holds.join(" "),
        caps.permitted,
        caps.bounding
    );
    assert!(holds.iter().any(|c| c == "CAP_NET_ADMIN"), "{holds:?}");
    assert_eq!(holds, plugin::PLUGIN_HOLDS, "CapEff");
    assert_eq!(
        plugin::decode(caps.permitted),
        plugin::PLUGIN_HOLDS,
        "CapPrm"
    );
    assert_eq!(
        plugin::decode(caps.bounding),
        plugin::PLUGIN_HOLDS,
        "CapBnd"
    );
    assert_eq!((caps.inheritable, caps.ambient), (0, 0), "CapInh, CapAmb");
    assert_eq!(caps.no_new_privs, 1, "NoNewPrivs");
    let dockerd: u32 = std::fs::read_to_string(Path::new(DIR).join(node).join("docker.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (own, shared) = plugin::namespaces_apart(pids[0], dockerd);
    println!(
        "swarm_cluster: {node}: plugin kuryr: NoNewPrivs 1, Seccomp {}; namespaces of its own {own:?}, \
         its dockerd's {shared:?}",
        caps.seccomp
    );
    assert!(shared.contains(&"net"), "host network: {shared:?}");

    // What dockerd gave it, as the plugin logged it at start (into its
    // dockerd's log).
    let log = std::fs::read_to_string(Path::new(DIR).join(node).join("dockerd.log")).unwrap();
    let held = log
        .lines()
        .find_map(|l| l.split_once("capabilities: held ").map(|(_, rest)| rest))
        .and_then(|rest| rest.split_once(';'))
        .map(|(held, _)| held.split_whitespace().collect::<Vec<_>>())
        .unwrap_or_else(|| panic!("no 'capabilities: held' line in {node}'s dockerd.log"));
    println!(
        "swarm_cluster: {node}: dockerd gave the plugin {}",
        held.join(" ")
    );
    assert_eq!(held, plugin::DOCKERD_GIVES, "what dockerd gives a plugin");
    plugin::assert_docs_quote_the_capabilities();
}

/// What a run killed before its cleanup left: the VM ports (by name),
/// their OVS ports, what kuryr left on their network, the network and the
/// `kuryrPool-<cidr>` of its subnet. (The namespaces are replaced by
/// [`NetNs::new`].)
async fn remove_killed_run(lab: &Lab) {
    let n = &lab.neutron;
    let mut networks = std::collections::BTreeSet::new();
    for name in NODES {
        let Ok(ports) = n
            .list_ports(&Query::new().eq("name", vm_port_name("swarm", name)))
            .await
        else {
            continue;
        };
        for port in ports {
            let _ = Command::new("ovs-vsctl")
                .args(["--timeout=10", "--if-exists", "del-port"])
                .arg(binding::vif::host_ifname(&port.id))
                .output();
            networks.insert(port.network_id.clone());
        }
    }
    for id in networks {
        if let Ok(ports) = n.list_ports(&Query::new().eq("network_id", &id)).await {
            for p in ports {
                let _ = n.delete_port(&p.id).await;
            }
        }
        let cidrs: Vec<String> = lab
            .subnets_in(&id)
            .await
            .into_iter()
            .map(|s| s.cidr)
            .collect();
        let _ = n.delete_network(&id).await;
        for cidr in cidrs {
            for pool in lab.pools_named(&format!("kuryrPool-{cidr}")).await {
                let _ = n.delete_subnetpool(&pool.id).await;
            }
        }
        println!("swarm_cluster: removed Neutron network {id} of a killed run");
    }
}

/// Everything `lab/swarm-nodes` started (dockerds, their containerds and
/// plugins, socat bridges) is stopped when this is dropped, first thing.
struct Daemons;

impl Drop for Daemons {
    fn drop(&mut self) {
        // The daemons' logs (the plugins log into their dockerd's) outlive
        // the run, for a failure's post-mortem.
        let logs = std::env::temp_dir().join("kuryr-swarm-logs");
        let _ = std::fs::remove_dir_all(&logs);
        let _ = std::fs::create_dir_all(&logs);
        for node in NODES {
            let _ = std::fs::copy(
                format!("{DIR}/{node}/dockerd.log"),
                logs.join(format!("{node}-dockerd.log")),
            );
        }
        let _ = swarm_nodes(&["down", DIR]).output();
    }
}

fn write_json(path: &Path, v: &Value) -> String {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
    path.display().to_string()
}

/// The IP and container of the task running on `node`.
fn task_on(node: &str) -> Option<(String, String)> {
    let ids = dk_ok(
        node,
        &[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={SERVICE}"),
        ],
    );
    let id = ids.lines().next()?.to_string();
    let ip = dk_ok(
        node,
        &[
            "inspect",
            "-f",
            &format!("{{{{(index .NetworkSettings.Networks \"{NET}\").IPAddress}}}}"),
            &id,
        ],
    );
    (!ip.is_empty()).then_some((id, ip))
}

/// The task of the service on each node (container, address), once all
/// three run.
async fn tasks_on_every_node() -> Vec<(String, String)> {
    let mut tasks = Vec::new();
    for name in NODES {
        let t = eventually(
            &format!("the task on {name}"),
            Duration::from_secs(120),
            async || task_on(name),
        )
        .await;
        println!("swarm_cluster: {name}: task {} has {}", &t.0[..12], t.1);
        tasks.push(t);
    }
    tasks
}

/// Until no node runs a task of the service.
async fn no_task_left() {
    for name in NODES {
        eventually(
            &format!("no task left on {name}"),
            Duration::from_secs(60),
            async || task_on(name).is_none().then_some(()),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_service_on_a_kuryr_network_spans_three_nodes() {
    assert!(
        netns::is_root(),
        "this test needs root (namespaces, dockerd)"
    );
    lab::run(async |lab: &Lab| {
        let mut clock = Clock(Instant::now(), Instant::now());
        // A killed earlier run: its daemons go first, then its nodes.
        let _ = swarm_nodes(&["down", DIR]).output();
        remove_killed_run(lab).await;

        // ---- the VMs' network and the three nodes
        let n = &lab.neutron;
        let cidr = lab.cidr4(0);
        let prefix_len: u8 = cidr.rsplit('/').next().unwrap().parse().unwrap();
        let vm_net = n
            .create_network(&NetworkCreate {
                name: Some(format!("kt-swarm-{:x}", random_u64())),
                admin_state_up: Some(true),
                ..Default::default()
            })
            .await
            .expect("create the nodes' network");
        lab.track_user_network(&vm_net.id);
        assert_ne!(vm_net.port_security_enabled, Some(false));
        let vm_subnet = n
            .create_subnet(&SubnetCreate {
                network_id: vm_net.id.clone(),
                ip_version: 4,
                name: Some(format!("{}-subnet", vm_net.name)),
                cidr: Some(cidr.clone()),
                enable_dhcp: Some(false),
                ..Default::default()
            })
            .await
            .expect("create the nodes' subnet");
        let mtu = vm_net.mtu.unwrap_or(1500);
        let mut nodes = Vec::new();
        for name in NODES {
            nodes.push(vm_node(lab, "swarm", &vm_net.id, prefix_len, mtu, name).await);
        }
        let vm_ports: Vec<String> = nodes.iter().map(|v| v.port.id.clone()).collect();
        assert!(
            nodes[0].ns.pings(nodes[2].ip(), Duration::from_secs(30)),
            "node1 reaches node3 over the Neutron network"
        );
        clock.step("3 nodes plugged into br-int, Neutron ports ACTIVE");

        // ---- the plugin and the node configuration
        let _daemons = Daemons;
        std::fs::create_dir_all(DIR).unwrap();
        let template = write_json(
            &Path::new(DIR).join("template.json"),
            &json!({"name": "kswarm", "coe": "swarm-mode", "network_driver": "kuryr",
                    "labels": {"kuryr_mode": "nested", "kuryr_link_iface": "eth0",
                               "kuryr_scope": "global"}}),
        );
        let password = var("KURYR_LAB_KURYR_PASSWORD");
        let params = write_json(
            &Path::new(DIR).join("params.json"),
            &json!({
                // By host name: the plugin's static kuryr resolves it from
                // the node's /etc/hosts, which dockerd mounts into it.
                "keystone": {"auth_url": var("KURYR_LAB_AUTH_URL_BY_NAME"),
                             "region_name": var("OS_REGION_NAME"), "interface": "public"},
                "credential": {"type": "password", "username": var("KURYR_LAB_KURYR_USERNAME"),
                               "user_domain_name": "Default", "password": password,
                               "project_name": var("KURYR_LAB_KURYR_PROJECT"),
                               "project_domain_name": "Default"},
                "driver": {"plugin": "managed", "plugin_binary": plugin::static_kuryr()}
            }),
        );
        run_ok(&mut swarm_nodes(&["bridges", DIR]));
        for (i, name) in NODES.iter().enumerate() {
            let role = if i == 0 { "manager" } else { "worker" };
            run_ok(&mut swarm_nodes(&[
                "node-up", DIR, name, BIN, &template, &params, role,
            ]));
            let conf =
                std::fs::read_to_string(format!("{DIR}/{name}/root/etc/kuryr/kuryr.conf")).unwrap();
            assert!(conf.contains("\nlink_iface = eth0\n"), "{conf}");
            assert!(conf.contains("\ncapability_scope = global\n"), "{conf}");
            assert!(conf.contains(&format!("\nhost = {name}\n")), "{conf}");
        }
        clock.step("3 dockerds up, node setup done, plugin enabled, busybox loaded");

        // The bundle node setup wrote, and a second run that changes nothing.
        let plugin_dir = format!("{DIR}/node1/root/var/lib/kuryr/plugin");
        let config: Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{plugin_dir}/config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            config["interface"]["types"],
            json!(["docker.networkdriver/1.0", "docker.ipamdriver/1.0"])
        );
        assert_eq!(config["network"]["type"], "host");
        assert_eq!(config["linux"]["capabilities"], json!(["CAP_NET_ADMIN"]));
        assert_eq!(
            config["entrypoint"],
            json!([
                "/usr/bin/kuryr",
                "--config-file",
                "/etc/kuryr/kuryr.conf",
                "server",
                "--drop-capabilities"
            ])
        );
        assert!(!config.to_string().contains(&password));
        plugin::assert_rootfs_is_the_binary_and_the_ca(&Path::new(&plugin_dir).join("rootfs"));
        let again = run_ok(Command::new(BIN).args([
            "node",
            "setup",
            "--template",
            &template,
            "--params",
            &params,
            "--role",
            "manager",
            "--root",
            &format!("{DIR}/node1/root"),
            "--hostname",
            "node1",
            "--docker-host",
            &format!("unix://{DIR}/node1/docker.sock"),
        ]));
        assert!(
            again.contains("\nunchanged: plugin kuryr/kuryr:latest is installed and enabled\n"),
            "{again}"
        );
        assert!(again.contains(" 0 created, 0 updated, "), "{again}");
        assert!(!again.contains("\nrun: "), "{again}");

        // No secret in the plugin's settings.
        let inspect = dk_ok("node1", &["plugin", "inspect", PLUGIN]);
        assert!(
            !inspect.contains(&password),
            "the password is in docker plugin inspect"
        );
        let plugin: Value = serde_json::from_str(&inspect).unwrap();
        assert_eq!(plugin[0]["Enabled"], true, "{inspect}");
        assert_eq!(plugin[0]["Settings"]["Env"], json!([]), "{inspect}");
        assert_eq!(
            plugin[0]["Settings"]["Mounts"][0]["Source"],
            format!("{DIR}/node1/root/etc/kuryr")
        );
        plugin_capabilities("node1", &nodes[0].ns.path());

        // ---- the swarm, over the nodes' own addresses
        let manager_ip = nodes[0].ip().to_string();
        dk_ok(
            "node1",
            &[
                "swarm",
                "init",
                "--advertise-addr",
                &manager_ip,
                "--listen-addr",
                &format!("{manager_ip}:2377"),
            ],
        );
        let token = dk_ok("node1", &["swarm", "join-token", "-q", "worker"]);
        for (i, name) in NODES.iter().enumerate().skip(1) {
            let ip = nodes[i].ip().to_string();
            dk_ok(
                name,
                &[
                    "swarm",
                    "join",
                    "--token",
                    &token,
                    "--advertise-addr",
                    &ip,
                    &format!("{manager_ip}:2377"),
                ],
            );
        }
        eventually("3 Ready swarm nodes", Duration::from_secs(60), async || {
            let ls = dk_ok(
                "node1",
                &["node", "ls", "--format", "{{.Hostname}} {{.Status}}"],
            );
            let ready: Vec<&str> = ls.lines().filter(|l| l.ends_with(" Ready")).collect();
            (ready.len() == 3).then_some(())
        })
        .await;
        clock.step("swarm of 3 nodes (init + 2 joins) Ready");

        // ---- a swarm-scope kuryr network
        let gateway = lab.ip4(0, 1);
        dk_ok(
            "node1",
            &[
                "network",
                "create",
                "-d",
                PLUGIN,
                "--ipam-driver",
                PLUGIN,
                "--scope",
                "swarm",
                "--attachable",
                "--subnet",
                &cidr,
                "--gateway",
                &gateway,
                NET,
            ],
        );
        let net_id = dk_ok("node1", &["network", "inspect", "-f", "{{.Id}}", NET]);
        println!("swarm_cluster: docker network {NET} = {net_id}");
        lab.track_network(&net_id);
        // AllocateNetwork on the manager (the allocator runs after the API
        // call returns) adopted the VMs' network.
        let tagged = eventually(
            "the VMs' network tagged for the swarm network",
            Duration::from_secs(30),
            async || {
                let found = lab.networks_of(&net_id).await;
                (!found.is_empty()).then_some(found)
            },
        )
        .await;
        assert_eq!(tagged.len(), 1, "{tagged:#?}");
        assert_eq!(tagged[0].id, vm_net.id);
        clock.step("docker network create --scope swarm");

        // ---- a service, one task per node
        dk_ok(
            "node1",
            &[
                "service",
                "create",
                "--detach",
                "--name",
                SERVICE,
                "--replicas",
                "3",
                "--placement-pref",
                "spread=node.id",
                "--network",
                NET,
                "--endpoint-mode",
                "dnsrr",
                // `sleep` ignores SIGTERM: do not wait 10 s for it at rm.
                "--stop-grace-period",
                "1s",
                "--no-resolve-image",
                "busybox:latest",
                "sleep",
                "600",
            ],
        );
        let tasks = tasks_on_every_node().await;
        clock.step("service of 3 replicas running, one task per node");
        let net: ipnet::IpNet = cidr.parse().unwrap();
        for (i, (_, ip)) in tasks.iter().enumerate() {
            let addr: std::net::IpAddr = ip.parse().unwrap();
            assert!(net.contains(&addr), "{ip} in {cidr}");
            let ports = lab.port_with_ip(ip).await;
            let ports: Vec<&Port> = ports.iter().filter(|p| p.network_id == vm_net.id).collect();
            assert_eq!(ports.len(), 1, "one Neutron port holds {ip}: {ports:#?}");
            assert!(!vm_ports.contains(&ports[0].id));
            // Nested mode: the address is allowed on that node's VM port.
            let vm = lab.port(&nodes[i].port.id).await.unwrap();
            assert!(
                vm.allowed_address_pairs.iter().any(|p| p.ip_address == *ip),
                "{ip} allowed on {}'s VM port: {:?}",
                NODES[i],
                vm.allowed_address_pairs
            );
        }

        // ---- node1's task reaches node3's
        let (c1, _) = &tasks[0];
        let (_, ip3) = &tasks[2];
        eventually(
            &format!("node1's task pings {ip3}"),
            Duration::from_secs(30),
            async || {
                dk("node1", &["exec", c1, "ping", "-c", "1", "-W", "1", ip3])
                    .status
                    .success()
                    .then_some(())
            },
        )
        .await;
        clock.step("task on node1 pings the task on node3");

        // ---- scaled to 0 and back, then every task replaced: the manager
        // releases and allocates again, from a pool it already used.
        dk_ok(
            "node1",
            &["service", "scale", "--detach", &format!("{SERVICE}=0")],
        );
        no_task_left().await;
        dk_ok(
            "node1",
            &["service", "scale", "--detach", &format!("{SERVICE}=3")],
        );
        let again = tasks_on_every_node().await;
        clock.step("scaled to 0 and back to 3");
        dk_ok(
            "node1",
            &["service", "update", "--detach", "--force", SERVICE],
        );
        let replaced = eventually(
            "every task replaced by `service update --force`",
            Duration::from_secs(120),
            async || {
                let now: Vec<_> = NODES.iter().filter_map(|n| task_on(n)).collect();
                (now.len() == 3 && now.iter().all(|t| !again.iter().any(|a| a.0 == t.0)))
                    .then_some(now)
            },
        )
        .await;
        let (c1, _) = &replaced[0];
        let (_, ip3) = &replaced[2];
        eventually(
            &format!("node1's new task pings {ip3}"),
            Duration::from_secs(30),
            async || {
                dk("node1", &["exec", c1, "ping", "-c", "1", "-W", "1", ip3])
                    .status
                    .success()
                    .then_some(())
            },
        )
        .await;
        clock.step("service update --force: new tasks reach each other");

        // ---- removing the service and the network leaves Neutron as it was
        dk_ok("node1", &["service", "rm", SERVICE]);
        no_task_left().await;
        dk_ok("node1", &["network", "rm", NET]);
        let vm_net_id = vm_net.id.clone();
        eventually(
            "Neutron back to the 3 VM ports, no tags, no pool",
            Duration::from_secs(60),
            async || {
                let ports = n
                    .list_ports(&Query::new().eq("network_id", &vm_net_id))
                    .await
                    .ok()?;
                let net = n.get_network(&vm_net_id).await.ok()?;
                let pools = lab.pools_named(&format!("kuryrPool-{cidr}")).await;
                let subnets = lab.subnets_in(&vm_net_id).await;
                (ports.len() == 3
                    && net.tags.is_empty()
                    && pools.is_empty()
                    && subnets.len() == 1
                    && subnets[0].id == vm_subnet.id
                    && lab.networks_of(&net_id).await.is_empty())
                .then_some(())
            },
        )
        .await;
        for node in &nodes {
            let vm = lab.port(&node.port.id).await.unwrap();
            assert!(
                vm.allowed_address_pairs.is_empty(),
                "{:?}",
                vm.allowed_address_pairs
            );
        }
        clock.step("service rm + network rm: Neutron as it was");
    })
    .await;
}

/// A started driver in global scope (what `capability_scope = global` gives).
async fn global_driver(lab: &Lab) -> Driver {
    let config = DriverConfig {
        host_id: lab.host.clone(),
        scope: CapabilityScope::Global,
        ..Default::default()
    };
    let driver = Driver::new(neutron(), config, Binder::Noop);
    driver.start().await.expect("driver start against the lab");
    driver
}

/// What swarm mode sends, in its order: the manager's allocator
/// (RequestPool, AllocateNetwork, RequestAddress for a task before any
/// CreateNetwork), then a worker (RequestPool, CreateNetwork with the
/// allocated options, RequestAddress of the manager-chosen address), then
/// the way back (the worker's ReleaseAddress, DeleteNetwork, ReleasePool;
/// the manager's ReleaseAddress, FreeNetwork, ReleasePool).
#[tokio::test]
async fn swarm_calls_on_the_manager_and_a_worker() {
    lab::run(async |lab: &Lab| {
        let manager = global_driver(lab).await;
        let worker = global_driver(lab).await;
        let (m, w) = (lab.api(&manager), lab.api(&worker));
        // A swarm network ID: 25 lowercase alphanumerics.
        let nid = format!("{:025x}", random_u64())[..25].to_string();
        lab.track_network(&nid);
        let cidr = lab.cidr4(0);
        let gateway = format!("{}/24", lab.ip4(0, 1));

        let pool = m
            .ok(
                "/IpamDriver.RequestPool",
                requests::request_pool(&cidr, "", false, json!({})),
            )
            .await;
        let pool_id = pool["PoolID"].as_str().unwrap().to_string();
        lab.track_pool(&pool_id);
        let allocated = m
            .ok(
                "/NetworkDriver.AllocateNetwork",
                json!({"NetworkID": nid, "Options": {"neutron.net.shared": "false"},
                       "IPv4Data": [{"AddressSpace": "", "Pool": cidr, "Gateway": gateway}],
                       "IPv6Data": null}),
            )
            .await;
        assert_eq!(allocated["Options"], json!({"neutron.net.shared": "false"}));
        let networks = lab.networks_of(&nid).await;
        assert_eq!(
            networks.len(),
            1,
            "AllocateNetwork made the Neutron network"
        );
        let network = networks[0].clone();
        let subnets = lab.subnets_in(&network.id).await;
        assert_eq!(subnets.len(), 1);
        assert_eq!(subnets[0].cidr, cidr);

        // The manager allocates a task's address before any CreateNetwork.
        let task = m
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_address(&pool_id, ""),
            )
            .await;
        let task_ip = lab::plain_ip(task["Address"].as_str().unwrap()).to_string();
        assert_eq!(lab.port_with_ip(&task_ip).await.len(), 1);

        // A worker: the same network, the same port.
        let wpool = w
            .ok(
                "/IpamDriver.RequestPool",
                requests::request_pool(&cidr, "", false, json!({})),
            )
            .await;
        assert_eq!(wpool["PoolID"], pool["PoolID"]);
        w.ok(
            "/NetworkDriver.CreateNetwork",
            requests::create_network(
                &nid,
                allocated["Options"].clone(),
                vec![requests::ipam_data(&cidr, &gateway)],
                vec![],
            ),
        )
        .await;
        assert_eq!(lab.networks_of(&nid).await.len(), 1, "no second network");
        assert_eq!(
            lab.subnets_in(&network.id).await.len(),
            1,
            "no second subnet"
        );
        let claimed = w
            .ok(
                "/IpamDriver.RequestAddress",
                requests::request_address(&pool_id, &task_ip),
            )
            .await;
        assert_eq!(lab::plain_ip(claimed["Address"].as_str().unwrap()), task_ip);
        assert_eq!(
            lab.port_with_ip(&task_ip).await.len(),
            1,
            "the manager's port, reused"
        );

        // The way back.
        w.ok(
            "/IpamDriver.ReleaseAddress",
            requests::release_address(&pool_id, &task_ip),
        )
        .await;
        assert!(lab.port_with_ip(&task_ip).await.is_empty());
        w.ok("/NetworkDriver.DeleteNetwork", requests::network(&nid))
            .await;
        // Other nodes may still have tasks: a node's DeleteNetwork leaves
        // the Neutron network to the manager's FreeNetwork.
        assert_eq!(lab.networks_of(&nid).await.len(), 1, "kept for FreeNetwork");
        w.ok("/IpamDriver.ReleasePool", requests::release_pool(&pool_id))
            .await;
        m.ok(
            "/IpamDriver.ReleaseAddress",
            requests::release_address(&pool_id, &task_ip),
        )
        .await;
        m.ok("/NetworkDriver.FreeNetwork", requests::network(&nid))
            .await;
        m.ok("/IpamDriver.ReleasePool", requests::release_pool(&pool_id))
            .await;
        assert!(lab.networks_of(&nid).await.is_empty());
        assert!(lab.pool(&pool_id).await.is_none());
        lab.assert_clean().await;

        // FreeNetwork alone (no worker ever had a task) deletes it too.
        let nid2 = format!("{:025x}", random_u64())[..25].to_string();
        lab.track_network(&nid2);
        let cidr2 = lab.cidr4(1);
        let pool2 = m
            .ok(
                "/IpamDriver.RequestPool",
                requests::request_pool(&cidr2, "", false, json!({})),
            )
            .await;
        let pool2_id = pool2["PoolID"].as_str().unwrap().to_string();
        lab.track_pool(&pool2_id);
        m.ok(
            "/NetworkDriver.AllocateNetwork",
            json!({"NetworkID": nid2, "Options": {},
                   "IPv4Data": [{"AddressSpace": "", "Pool": cidr2,
                                 "Gateway": format!("{}/24", lab.ip4(1, 1))}]}),
        )
        .await;
        assert_eq!(lab.networks_of(&nid2).await.len(), 1);
        m.ok("/NetworkDriver.FreeNetwork", requests::network(&nid2))
            .await;
        m.ok("/IpamDriver.ReleasePool", requests::release_pool(&pool2_id))
            .await;
        assert!(lab.networks_of(&nid2).await.is_empty());
        lab.assert_clean().await;
    })
    .await;
}
