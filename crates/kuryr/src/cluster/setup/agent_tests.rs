//! Agent mode on machines without systemd (init `process`): Open vSwitch's
//! daemons, the physical bridge of the tunnel endpoint, the agent and the
//! driver started and recorded by node setup; and the managed plugin left
//! to dockerd at boot. All through the recording fake.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::json;

use super::runner::Recording;
use super::tests::{
    DOCKER, Scratch, agent_params, agent_template, exit, inspect, lines, live_steps,
    managed_params, plugin_absent, plugin_install, run_managed,
};
use super::*;
use crate::cluster::render::{self, Init, NodeFacts, Plan, Step};
use crate::cluster::template::NetworkDriverPolicy;
use crate::cluster::{ClusterParams, ClusterTemplate};
use crate::paths;

/// An agent-mode plan for a machine of `init`, `agent` merged into the
/// parameters' agent section and `top` into the parameters.
fn plan_for(init: Init, agent: serde_json::Value, top: serde_json::Value) -> Plan {
    let mut p = agent_params();
    for (k, v) in agent.as_object().unwrap() {
        p["agent"][k] = v.clone();
    }
    for (k, v) in top.as_object().unwrap() {
        p[k] = v.clone();
    }
    let t = ClusterTemplate::from_json(
        &agent_template().to_string(),
        &NetworkDriverPolicy::default(),
    )
    .unwrap();
    let p = ClusterParams::from_json(&p.to_string()).unwrap();
    let facts = NodeFacts {
        hostname: "node-1".into(),
        local_ip: Some("10.0.0.11".parse().unwrap()),
        init,
    };
    render::render(&t, &p, Role::Worker, &facts).unwrap()
}

/// The userspace datapath with its physical bridge, started by node setup.
fn process_plan() -> Plan {
    plan_for(
        Init::Process,
        json!({"datapath_type": "netdev",
               "physical_bridge": {"bridge": "br-phy", "interface": "eth0"}}),
        json!({}),
    )
}

const AGENT: &str = "/usr/bin/neutron-openvswitch-agent --config-file /etc/neutron/neutron.conf \
                     --config-file /etc/neutron/plugins/ml2/openvswitch_agent.ini";
const AGENT_RECORD: &str = "/run/kuryr/neutron-openvswitch-agent.process";
const KURYR_RECORD: &str = "/run/kuryr/kuryr.process";
const KURYR: &str = "/usr/local/bin/kuryr --config-file /etc/kuryr/kuryr.conf server";

/// A `look` answer: the recorded process runs as `argv`.
fn running(pid: u32, argv: &str) -> Result<super::runner::Finished, String> {
    let lines: Vec<&str> = argv.split(' ').collect();
    exit(0, &format!("{pid}\n{}\n", lines.join("\n")), "")
}

/// `ip -j addr show dev DEV` answering `addrs` (`address/prefix scope`).
fn ip_addr(addrs: &[(&str, u8, &str)]) -> Result<super::runner::Finished, String> {
    let info: Vec<serde_json::Value> = addrs
        .iter()
        .map(|(a, p, scope)| json!({"local": a, "prefixlen": p, "scope": scope}))
        .collect();
    exit(0, &json!([{"addr_info": info}]).to_string(), "")
}

#[test]
fn process_init_renders_no_units_and_starts_the_daemons_itself() {
    let plan = process_plan();
    assert_eq!(plan.init, Init::Process);
    assert!(
        !plan
            .files
            .contains_key(std::path::Path::new(paths::KURYR_UNIT))
    );
    let absent: Vec<(String, &str)> = plan
        .absent
        .iter()
        .map(|(p, why)| (p.display().to_string(), why.as_str()))
        .collect();
    assert!(absent.contains(&(
        paths::KURYR_UNIT.to_string(),
        "init process: node setup starts the driver itself"
    )));
    assert!(absent.contains(&(
        paths::DOCKER_DROPIN.to_string(),
        "init process: node setup starts the driver itself"
    )));
    let agent_ini = PathBuf::from(paths::OVS_AGENT_INI);
    assert_eq!(
        plan.steps,
        vec![
            Step::OvsDaemons,
            Step::OvsBridge {
                bridge: "br-int".into(),
                datapath_type: crate::cluster::params::DatapathType::Netdev,
            },
            Step::PhysicalBridge {
                bridge: "br-phy".into(),
                interface: "eth0".into(),
                datapath_type: crate::cluster::params::DatapathType::Netdev,
            },
            Step::Process {
                name: "neutron-openvswitch-agent".into(),
                argv: AGENT.split(' ').map(String::from).collect(),
                runtime_dirs: vec!["/run/neutron".into(), "/run/lock/neutron".into()],
                restart_when_changed: vec![agent_ini],
            },
            Step::Process {
                name: "kuryr".into(),
                argv: KURYR.split(' ').map(String::from).collect(),
                runtime_dirs: vec![],
                restart_when_changed: vec![
                    PathBuf::from(paths::KURYR_CONF),
                    PathBuf::from(paths::CA_PEM)
                ],
            },
        ]
    );
    assert!(
        plan.notes.iter().all(|n| !n.contains("physical_bridge")),
        "{:?}",
        plan.notes
    );
    // The userspace datapath with tunnels and no physical bridge: a note.
    let plan = plan_for(Init::Process, json!({"datapath_type": "netdev"}), json!({}));
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("set agent.physical_bridge")),
        "{:?}",
        plan.notes
    );
}

#[test]
fn process_init_first_run_on_a_live_root() {
    let plan = process_plan();
    let every_file: BTreeSet<PathBuf> = plan.files.keys().cloned().collect();
    let mut rec = Recording::default()
        .answer("ovs-appctl", exit(1, "", "cannot connect"))
        .answer("ovsdb-tool db-version", exit(1, "", "No such file"))
        .answer("ovs-vsctl --timeout=10 br-exists", exit(2, "", ""))
        .answer(
            "ovs-vsctl --timeout=10 port-to-br eth0",
            exit(1, "", "no port"),
        )
        .answer("ip -j addr show dev br-phy", ip_addr(&[]))
        .answer(
            "ip -j addr show dev eth0",
            ip_addr(&[("10.0.0.11", 24, "global"), ("fe80::1", 64, "link")]),
        )
        .answer(
            "ip -j -4 route show dev eth0",
            exit(
                0,
                r#"[{"dst":"default","gateway":"10.0.0.1","protocol":"static"},
                    {"dst":"10.0.0.0/24","protocol":"kernel","scope":"link"}]"#,
                "",
            ),
        )
        .answer("ip -j -6 route show dev eth0", exit(0, "[]", ""))
        .answer(
            "ip -j link show dev br-phy",
            exit(0, r#"[{"flags":["BROADCAST"]}]"#, ""),
        );
    let (ok, outcome, text) = live_steps(&plan, &every_file, false, &mut rec);
    assert!(ok && !outcome.failed, "{text}");
    let run: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("run: "))
        .collect();
    let spawn_agent = format!(
        "start neutron-openvswitch-agent: {AGENT} (output to /var/log/kuryr/neutron-openvswitch-agent.log)"
    );
    let spawn_kuryr = format!("start kuryr: {KURYR} (output to /var/log/kuryr/kuryr.log)");
    assert_eq!(
        run,
        vec![
            "mkdir -p /run/openvswitch /var/log/openvswitch /etc/openvswitch",
            "ovsdb-tool create /etc/openvswitch/conf.db /usr/share/openvswitch/vswitch.ovsschema",
            "ovsdb-server /etc/openvswitch/conf.db --remote=punix:/run/openvswitch/db.sock \
             --remote=db:Open_vSwitch,Open_vSwitch,manager_options --pidfile --detach \
             --log-file=/var/log/openvswitch/ovsdb-server.log -vconsole:off",
            "ovs-vsctl --timeout=10 --no-wait init",
            "ovs-vswitchd unix:/run/openvswitch/db.sock --pidfile --detach \
             --log-file=/var/log/openvswitch/ovs-vswitchd.log -vconsole:off",
            "ovs-vsctl --timeout=10 --may-exist add-br br-int -- set Bridge br-int datapath_type=netdev",
            "ovs-vsctl --timeout=10 --may-exist add-br br-phy -- set Bridge br-phy datapath_type=netdev",
            "ovs-vsctl --timeout=10 --may-exist add-port br-phy eth0",
            "ip addr add 10.0.0.11/24 dev br-phy",
            "ip addr del 10.0.0.11/24 dev eth0",
            "ip -4 route replace default via 10.0.0.1 dev br-phy",
            "ip link set br-phy up",
            "mkdir -p /run/neutron /run/lock/neutron",
            &spawn_agent,
            &spawn_kuryr,
        ]
    );
    assert_eq!(outcome.commands_run, 15);
    // The daemons are recorded where a later run (and a reboot) finds them.
    assert!(rec.lines.contains(&format!("look {AGENT_RECORD}")));
    assert!(rec.lines.contains(&format!(
        "spawn {AGENT_RECORD}: {AGENT} > /var/log/kuryr/neutron-openvswitch-agent.log"
    )));
    assert!(rec.lines.contains(&format!(
        "spawn {KURYR_RECORD}: {KURYR} > /var/log/kuryr/kuryr.log"
    )));
}

/// A node where everything runs and is in place.
fn node_set_up() -> Recording {
    Recording::default()
        .answer("ovs-vsctl --timeout=10 get Bridge", exit(0, "netdev\n", ""))
        .answer(
            "ovs-vsctl --timeout=10 port-to-br eth0",
            exit(0, "br-phy\n", ""),
        )
        .answer(
            "ip -j addr show dev br-phy",
            ip_addr(&[("10.0.0.11", 24, "global")]),
        )
        .answer("ip -j addr show dev eth0", ip_addr(&[]))
        .answer("ip -j -4 route show dev eth0", exit(0, "[]", ""))
        .answer("ip -j -6 route show dev eth0", exit(0, "[]", ""))
        .answer(
            "ip -j link show dev br-phy",
            exit(0, r#"[{"flags":["BROADCAST","UP"]}]"#, ""),
        )
        .answer(&format!("look {AGENT_RECORD}"), running(41, AGENT))
        .answer(&format!("look {KURYR_RECORD}"), running(42, KURYR))
}

#[test]
fn process_init_on_a_node_already_set_up_only_looks() {
    let plan = process_plan();
    let mut rec = node_set_up();
    let (ok, outcome, text) = live_steps(&plan, &BTreeSet::new(), false, &mut rec);
    assert!(ok, "{text}");
    assert_eq!(outcome.commands_run, 0, "{text}");
    assert_eq!(
        text,
        "unchanged: ovsdb-server is running\n\
         unchanged: ovs-vswitchd is running\n\
         unchanged: Open vSwitch bridge br-int exists (datapath netdev)\n\
         unchanged: Open vSwitch bridge br-phy has port eth0 and the addresses (10.0.0.11/24)\n\
         unchanged: neutron-openvswitch-agent is running (pid 41)\n\
         unchanged: kuryr is running (pid 42)\n"
    );
    assert!(
        rec.lines
            .iter()
            .all(|l| !l.starts_with("spawn") && !l.starts_with("stop"))
    );
}

#[test]
fn process_init_restarts_a_daemon_whose_configuration_or_command_changed() {
    let plan = process_plan();
    let changed: BTreeSet<PathBuf> = [PathBuf::from(paths::OVS_AGENT_INI)].into();
    // The first matching answer wins: the driver ran an older command line.
    let mut rec = Recording::default()
        .answer(
            &format!("look {KURYR_RECORD}"),
            running(42, "/opt/old/kuryr server"),
        )
        .answer_all(node_set_up());
    let (ok, _, text) = live_steps(&plan, &changed, false, &mut rec);
    assert!(ok, "{text}");
    let run: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("run: "))
        .collect();
    assert_eq!(
        run,
        vec![
            "stop neutron-openvswitch-agent (pid 41)",
            "mkdir -p /run/neutron /run/lock/neutron",
            &format!(
                "start neutron-openvswitch-agent: {AGENT} (output to /var/log/kuryr/neutron-openvswitch-agent.log)"
            ),
            "stop kuryr (pid 42)",
            &format!("start kuryr: {KURYR} (output to /var/log/kuryr/kuryr.log)"),
        ]
    );
    assert!(rec.lines.contains(&format!("stop 41 {AGENT_RECORD}")));
}

#[test]
fn a_daemon_that_does_not_start_stops_setup() {
    let plan = process_plan();
    let mut rec = Recording::default()
        .answer(&format!("look {AGENT_RECORD}"), exit(1, "", ""))
        .answer(
            &format!("spawn {AGENT_RECORD}"),
            exit(
                1,
                "",
                "exited at once (exit status: 1); the end of the log: bad local_ip",
            ),
        )
        .answer_all(node_set_up());
    let (ok, outcome, text) = live_steps(&plan, &BTreeSet::new(), false, &mut rec);
    assert!(!ok && outcome.failed, "{text}");
    assert!(
        text.ends_with(&format!(
            "failed: start neutron-openvswitch-agent: {AGENT} (output to \
             /var/log/kuryr/neutron-openvswitch-agent.log): exited at once (exit status: 1); the end of \
             the log: bad local_ip\n"
        )),
        "{text}"
    );
    assert!(
        rec.lines.iter().all(|l| !l.contains(KURYR_RECORD)),
        "nothing after the failure: {:?}",
        rec.lines
    );
}

#[test]
fn an_old_ovs_database_is_converted_before_ovsdb_server_starts() {
    let plan = process_plan();
    let mut rec = Recording::default()
        .answer("ovs-appctl --timeout=5 -t ovsdb-server", exit(1, "", ""))
        .answer("ovsdb-tool needs-conversion", exit(0, "yes\n", ""))
        .answer_all(node_set_up());
    let (ok, _, text) = live_steps(&plan, &BTreeSet::new(), false, &mut rec);
    assert!(ok, "{text}");
    let run: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("run: "))
        .collect();
    assert_eq!(
        run[..2],
        [
            "mkdir -p /run/openvswitch /var/log/openvswitch /etc/openvswitch",
            "ovsdb-tool convert /etc/openvswitch/conf.db /usr/share/openvswitch/vswitch.ovsschema",
        ]
    );
    assert!(
        text.contains("\nunchanged: ovs-vswitchd is running\n"),
        "{text}"
    );
}

/// After a reboot the bridge's internal port may come back with the
/// address while the NIC got it again from the network configuration:
/// only the NIC's copy goes (adding it to the bridge again fails with
/// "Address already assigned").
#[test]
fn an_address_already_on_the_bridge_is_only_removed_from_the_nic() {
    let plan = process_plan();
    let mut rec = Recording::default()
        .answer(
            "ip -j addr show dev eth0",
            ip_addr(&[("10.0.0.11", 24, "global")]),
        )
        .answer_all(node_set_up());
    let (ok, _, text) = live_steps(&plan, &BTreeSet::new(), false, &mut rec);
    assert!(ok, "{text}");
    let run: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("run: "))
        .collect();
    assert_eq!(run, vec!["ip addr del 10.0.0.11/24 dev eth0"]);
}

#[test]
fn off_the_live_root_process_steps_are_only_shown() {
    let s = Scratch::new("process-off", agent_template(), {
        let mut p = agent_params();
        p["init"] = json!("process");
        p["agent"]["datapath_type"] = json!("netdev");
        p["agent"]["physical_bridge"] = json!({"bridge": "br-phy", "interface": "eth0"});
        p
    });
    let (outcome, text) = s.run(false);
    assert_eq!(outcome.commands_run, 0);
    for line in [
        "skipped (not the live root): ovsdb-tool create /etc/openvswitch/conf.db /usr/share/openvswitch/vswitch.ovsschema",
        "skipped (not the live root): ovs-vsctl --timeout=10 --may-exist add-port br-phy eth0",
        "skipped (not the live root): move the addresses and routes of eth0 to br-phy, ip link set br-phy up",
        "skipped (not the live root): mkdir -p /run/neutron /run/lock/neutron",
    ] {
        assert!(text.contains(&format!("\n{line}\n")), "{line}\n{text}");
    }
    assert!(
        text.contains(&format!(
            "\nskipped (not the live root): start neutron-openvswitch-agent: {AGENT} (output to \
             /var/log/kuryr/neutron-openvswitch-agent.log)\n"
        )),
        "{text}"
    );
    assert!(
        !s.root().join("etc/systemd").exists(),
        "no unit under init process"
    );
    assert!(text.starts_with("node setup: "), "{text}");
    assert!(
        text.lines().next().unwrap().ends_with(", init process"),
        "{text}"
    );
}

// --- The managed plugin in agent mode ---

#[test]
fn managed_plugin_with_open_vswitch_mounts_only_the_database_socket() {
    let managed = json!({"driver": {"plugin": "managed"}});
    let plan = plan_for(Init::Systemd, json!({}), managed.clone());
    let config: serde_json::Value =
        serde_json::from_str(plan.text(paths::PLUGIN_CONFIG).unwrap()).unwrap();
    let mounts = config["mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 2, "{mounts:#?}");
    assert_eq!(mounts[1]["name"], "ovsdb");
    assert_eq!(mounts[1]["source"], "/run/openvswitch/db.sock");
    assert_eq!(mounts[1]["destination"], "/run/openvswitch/db.sock");
    // Under systemd dockerd starts after Open vSwitch, whose socket the
    // plugin mounts; there is no kuryr unit.
    let dropin = plan.text(paths::DOCKER_DROPIN).unwrap();
    assert!(
        dropin.ends_with(
            "[Unit]\nAfter=openvswitch-switch.service\nWants=openvswitch-switch.service\n"
        ),
        "{dropin}"
    );
    assert!(
        !plan
            .files
            .contains_key(std::path::Path::new(paths::KURYR_UNIT))
    );
    // Init process: node setup is the boot script, no drop-in.
    let plan = plan_for(Init::Process, json!({}), managed);
    assert!(
        !plan
            .files
            .contains_key(std::path::Path::new(paths::DOCKER_DROPIN))
    );
    assert!(matches!(
        plan.steps.last(),
        Some(Step::ManagedPlugin { .. })
    ));
    assert!(
        !plan
            .steps
            .iter()
            .any(|s| matches!(s, Step::Process { name, .. } if name == "kuryr")),
        "dockerd runs the driver"
    );
}

#[test]
fn managed_plugin_without_open_vswitch_mounts_only_the_configuration() {
    let t = json!({"name": "t", "coe": "swarm-mode", "network_driver": "kuryr",
                   "labels": {"kuryr_mode": "agent", "kuryr_agent_type": "linuxbridge"}});
    let s = Scratch::new("lb-managed", t, managed_params());
    s.run(false);
    let config =
        std::fs::read_to_string(s.root().join("var/lib/kuryr/plugin/config.json")).unwrap();
    assert_eq!(config, render::plugin_config_json("/etc/kuryr", false));
    assert!(!config.contains("openvswitch"), "{config}");
}

/// At boot under init `process`, node setup (Open vSwitch, the agent) runs
/// before dockerd: the plugin an earlier run installed is left to dockerd.
/// A bundle that changed is installed, and needs dockerd.
#[test]
fn a_managed_plugin_installed_earlier_is_left_to_a_dockerd_not_yet_started() {
    let s = Scratch::new("managed-boot", agent_template(), managed_params());
    run_managed(&s, &mut plugin_absent());
    let docker_down = || {
        Recording::default()
            .answer(
                &inspect(),
                exit(
                    1,
                    "",
                    "Cannot connect to the Docker daemon at unix:///fake/docker.sock.",
                ),
            )
            .answer(
                &format!("{DOCKER} version"),
                exit(
                    1,
                    "",
                    "Cannot connect to the Docker daemon at unix:///fake/docker.sock.",
                ),
            )
    };
    let mut rec = docker_down();
    let (outcome, text) = run_managed(&s, &mut rec);
    assert!(!outcome.failed, "{text}");
    assert_eq!(
        rec.lines,
        lines(&[
            &inspect(),
            &format!("{DOCKER} version -f {{{{.Server.Version}}}}")
        ])
    );
    assert!(
        text.contains(
            "\nunchanged: plugin kuryr/kuryr:latest: dockerd does not answer; the bundle is the one an \
             earlier setup installed, and dockerd starts the plugin when it starts\n"
        ),
        "{text}"
    );

    // A changed bundle must be installed: that needs dockerd.
    std::fs::write(s.root().join("var/lib/kuryr/plugin.digest"), "other\n").unwrap();
    let mut rec = docker_down().answer(
        &format!("{DOCKER} plugin create"),
        exit(
            1,
            "",
            "Cannot connect to the Docker daemon at unix:///fake/docker.sock.",
        ),
    );
    let (outcome, text) = run_managed(&s, &mut rec);
    assert!(outcome.failed, "{text}");
    assert_eq!(rec.lines.last(), plugin_install(&s.root(), false).first());
}
