//! Parameters files, valid and broken: defaults, every field, and the
//! exact problems reported (all of them, never a secret).

use std::net::Ipv6Addr;

use kuryr_openstack::Interface;
use serde_json::{Value, json};

use super::*;
use crate::cluster::labels::AgentType;

pub(crate) fn minimal() -> Value {
    json!({
        "keystone": {"auth_url": "https://keystone.example.com:5000/v3"},
        "credential": {
            "type": "application_credential",
            "application_credential_id": "8f0c1d",
            "application_credential_secret": "s3cr3t-VALUE"
        }
    })
}

fn parse(v: &Value) -> Result<ClusterParams, Vec<String>> {
    ClusterParams::from_json(&v.to_string())
        .map_err(|ps| ps.into_iter().map(|p| p.message).collect())
}

fn with(mut base: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = if parent.is_empty() {
        &mut base
    } else {
        base.pointer_mut(parent).unwrap()
    };
    target[key] = value;
    base
}

#[test]
fn defaults() {
    let p = parse(&minimal()).expect("valid");
    assert_eq!(p.network_drivers, NetworkDriverPolicy::default());
    assert_eq!(p.keystone.interface, Interface::Public);
    assert_eq!(p.keystone.ca, None);
    assert_eq!(p.credential.kind, CredentialKind::ApplicationCredential);
    assert_eq!(
        p.credential.options,
        vec![("application_credential_id", "8f0c1d".to_string())]
    );
    assert_eq!(p.binding_host, HostNaming::Hostname);
    assert_eq!(p.driver, DriverParams::default());
    assert!(p.driver.enable_dhcp, "kuryr-libnetwork's default");
    assert_eq!(p.init, InitChoice::Auto);
    assert_eq!(p.agent.physical_bridge, None);
    assert_eq!(p.agent.tunnel_types, vec!["vxlan"]);
    assert_eq!(
        p.agent.packages_for(AgentType::Ovs),
        vec!["openvswitch-switch", "neutron-openvswitch-agent"]
    );
    assert_eq!(p.agent.openvswitch_unit(), "openvswitch-switch");
    assert_eq!(
        p.agent.agent_unit(AgentType::LinuxBridge),
        "neutron-linuxbridge-agent"
    );
    assert_eq!(p.credential.describe(), "application credential 8f0c1d");
}

#[test]
fn secrets_never_show() {
    let p = parse(&with(
        minimal(),
        "/agent",
        json!({"transport_url": "rabbit://neutron:bus-PASSWORD@10.0.0.1:5672/"}),
    ))
    .expect("valid");
    let debug = format!("{p:?}");
    assert!(!debug.contains("s3cr3t-VALUE"), "{debug}");
    assert!(!debug.contains("bus-PASSWORD"), "{debug}");
    // Nor in any error message.
    for bad in [
        json!("line\nbreak s3cr3t-VALUE"),
        json!(" s3cr3t-VALUE"),
        json!("x\\$s3cr3t-VALUE"),
    ] {
        let errs = parse(&with(
            minimal(),
            "/credential/application_credential_secret",
            bad,
        ))
        .unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(!errs[0].contains("s3cr3t-VALUE"), "{errs:?}");
    }
    let errs = parse(&with(
        minimal(),
        "/agent",
        json!({"transport_url": "bus-PASSWORD"}),
    ))
    .unwrap_err();
    assert!(!errs[0].contains("bus-PASSWORD"), "{errs:?}");
}

#[test]
fn password_credential() {
    let v = with(
        minimal(),
        "/credential",
        json!({
            "type": "password", "username": "kuryr", "user_domain_name": "Default",
            "password": "pw", "project_name": "service", "project_domain_name": "Default"
        }),
    );
    let p = parse(&v).expect("valid");
    assert_eq!(p.credential.kind, CredentialKind::Password);
    assert_eq!(
        p.credential
            .options
            .iter()
            .map(|(k, _)| *k)
            .collect::<Vec<_>>(),
        vec![
            "username",
            "user_domain_name",
            "project_name",
            "project_domain_name"
        ]
    );
    assert_eq!(p.credential.describe(), "password of user kuryr");
}

#[test]
fn credential_errors() {
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"type": "password", "username": "kuryr", "password": "pw"}),
            vec![
                "a password credential needs user_id, or username with user_domain_name or user_domain_id \
                 (a Keystone v3 user name is only unique within its domain)",
                "a password credential needs project_id, or project_name with project_domain_name or \
                 project_domain_id: kuryr needs a token scoped to the project that owns the networks",
            ],
        ),
        (
            json!({"type": "application_credential", "application_credential_id": "x",
                   "application_credential_secret": "s", "project_name": "service"}),
            vec![
                "credential.project_name does not apply to credential type application_credential: an \
                 application credential is bound to the project it was created in",
            ],
        ),
        (
            json!({"type": "application_credential", "application_credential_id": "x",
                   "application_credential_secret": "s", "password": "p"}),
            vec!["credential.password does not apply to credential type application_credential"],
        ),
        (
            json!({"type": "application_credential", "application_credential_secret": "s"}),
            vec![
                "credential.application_credential_id is missing (or give application_credential_name with its owner)",
            ],
        ),
        (
            json!({"type": "application_credential", "application_credential_name": "kuryr",
                   "application_credential_secret": "s"}),
            vec![
                "credential.application_credential_name needs the owner: user_id, or username with \
                 user_domain_name or user_domain_id",
            ],
        ),
        (
            json!({"type": "application_credential", "application_credential_id": "x"}),
            vec!["credential.application_credential_secret is missing"],
        ),
        (
            json!({"type": "token", "token": "x"}),
            vec![
                "credential.type \"token\" is not supported: use application_credential (preferred) or password",
            ],
        ),
        (
            json!({"application_credential_id": "x"}),
            vec!["credential.type is missing: use application_credential (preferred) or password"],
        ),
    ];
    for (cred, expected) in cases {
        let errs = parse(&with(minimal(), "/credential", cred.clone())).unwrap_err();
        assert_eq!(errs, expected, "{cred}");
    }
    let mut v = minimal();
    v.as_object_mut().unwrap().remove("credential");
    v.as_object_mut().unwrap().remove("keystone");
    assert_eq!(
        parse(&v).unwrap_err(),
        vec![
            "keystone is missing: the nodes need keystone.auth_url",
            "credential is missing: the nodes need a Keystone application credential (preferred) or a \
             password account to call Neutron",
        ]
    );
}

#[test]
fn keystone_and_driver_and_agent_errors() {
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/keystone/auth_url",
            json!("keystone.example.com:5000"),
            "keystone.auth_url \"keystone.example.com:5000\" is not an http:// or https:// URL",
        ),
        (
            "/keystone/auth_url",
            json!("https://k/v2.0"),
            "keystone.auth_url points at Keystone v2.0, which is gone; use the /v3 endpoint",
        ),
        (
            "/keystone/interface",
            json!("private"),
            "keystone.interface \"private\" is not one of public, internal, admin",
        ),
        (
            "/keystone/ca_file",
            json!("certs/ca.pem"),
            "keystone.ca_file \"certs/ca.pem\" must be an absolute path on the nodes",
        ),
        (
            "/keystone/ca_pem",
            json!("not a certificate"),
            "keystone.ca_pem must hold PEM certificates (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
        ),
        (
            "/binding_host",
            json!("node.example.com"),
            "binding_host \"node.example.com\" is not \"hostname\" or a pattern with {hostname} or {short_hostname} \
             (e.g. \"{short_hostname}.swarm.example.com\"): every node needs its own binding host, without spaces",
        ),
        (
            "/driver",
            json!({"plugin": "v1"}),
            "driver.plugin \"v1\" is not supported: socket (the driver serves /run/docker/plugins/kuryr.sock), \
             tcp (kuryr-libnetwork's kuryr.spec on loopback) or managed (a v2 Docker plugin, for swarm services)",
        ),
        (
            "/driver",
            json!({"socket": "/run/kuryr.sock"}),
            "driver.socket \"/run/kuryr.sock\": Docker finds a socket plugin named kuryr only at \
             /run/docker/plugins/kuryr.sock or /run/docker/plugins/kuryr/kuryr.sock",
        ),
        (
            "/driver",
            json!({"tcp_uri": "http://0.0.0.0:23750"}),
            "driver.tcp_uri \"http://0.0.0.0:23750\" must be http://127.0.0.1:PORT or http://[::1]:PORT: \
             the plugin API has no authentication, so it must stay on loopback",
        ),
        (
            "/driver",
            json!({"binary": "kuryr"}),
            "driver.binary \"kuryr\" must be an absolute path",
        ),
        (
            "/agent",
            json!({"local_ip": "10.0.0.300"}),
            "agent.local_ip \"10.0.0.300\" is not an IP address",
        ),
        (
            "/agent",
            json!({"local_ip": {"interface": "eth0", "route_to": "10.0.0.1"}}),
            "agent.local_ip needs exactly one of interface or route_to",
        ),
        (
            "/agent",
            json!({"datapath_type": "dpdk"}),
            "agent.datapath_type \"dpdk\" is not one of system, netdev",
        ),
        (
            "/agent",
            json!({"tunnel_types": ["vxlan", "stt"]}),
            "agent.tunnel_types: \"stt\" is not one of vxlan, gre, geneve",
        ),
        (
            "/agent",
            json!({"install": "yum"}),
            "agent.install \"yum\" is not one of none, apt, dnf",
        ),
        (
            "/agent",
            json!({"packages": ["openvswitch-switch", "-o evil"]}),
            "agent.packages: [\"-o evil\"] are not package names",
        ),
        (
            "/agent",
            json!({"services": {"agent": "x; rm"}}),
            "agent.services.agent \"x; rm\" is not a unit name",
        ),
        (
            "/agent",
            json!({"bridge_mappings": {"physnet1": "br ex"}}),
            "agent.bridge_mappings: \"physnet1\" → \"br ex\" is not a physical network name mapped to a bridge name",
        ),
        (
            "/agent",
            json!({"physical_bridge": {"bridge": "br-phy"}}),
            "Invalid input for field/attribute agent.physical_bridge.interface. Mandatory field missing.",
        ),
        (
            "/agent",
            json!({"physical_bridge": {"bridge": "br phy", "interface": "eth0"}}),
            "agent.physical_bridge.bridge \"br phy\" is not an interface name",
        ),
        (
            "/agent",
            json!({"physical_bridge": {"bridge": "eth0", "interface": "eth0"}}),
            "agent.physical_bridge: the bridge and its interface are both \"eth0\"",
        ),
        (
            "/init",
            json!("sysvinit"),
            "init \"sysvinit\" is not one of auto (systemd when it runs the machine), systemd, process \
             (node setup starts and records the daemons itself)",
        ),
        (
            "/driver",
            json!({"enable_dhcp": "maybe"}),
            "Invalid input for field/attribute driver.enable_dhcp. Value: \"maybe\". Wrong type: expecting \
             true or false.",
        ),
        (
            "/cluster_template",
            json!({"swarm_allowed_network_drivers": []}),
            "cluster_template.swarm_allowed_network_drivers must not be empty: use [\"all\"] to allow every supported driver",
        ),
        (
            "/colour",
            json!("blue"),
            "Unknown attribute for cluster parameters: colour",
        ),
    ];
    for (pointer, value, expected) in cases {
        let v = with(minimal(), pointer, value.clone());
        assert_eq!(parse(&v).unwrap_err(), vec![expected], "{pointer} {value}");
    }
}

#[test]
fn full_params() {
    let v = json!({
        "cluster_template": {"swarm_allowed_network_drivers": ["kuryr"], "swarm_default_network_driver": "kuryr"},
        "keystone": {"auth_url": "https://k:5000/v3", "region_name": "R2", "interface": "internal",
                     "ca_pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
        "credential": {"type": "application_credential", "application_credential_name": "kuryr-nodes",
                       "username": "kuryr", "user_domain_name": "Default",
                       "application_credential_secret": "s"},
        "binding_host": "{short_hostname}.swarm.example.com",
        "init": "process",
        "driver": {"binary": "/opt/kuryr/bin/kuryr", "plugin": "tcp", "tcp_uri": "http://127.0.0.1:23750/", "debug": true,
                   "enable_dhcp": false},
        "agent": {"local_ip": {"route_to": "10.0.0.1"}, "datapath_type": "netdev", "tunnel_types": [],
                  "l2_population": true, "bridge_mappings": {"physnet1": "br-ex"},
                  "physical_bridge": {"bridge": "br-phy", "interface": "eth1"},
                  "install": "dnf", "services": {"openvswitch": "openvswitch.service"}}
    });
    let p = parse(&v).expect("valid");
    assert_eq!(p.network_drivers.default, "kuryr");
    assert_eq!(p.keystone.interface, Interface::Internal);
    assert_eq!(
        p.keystone.ca,
        Some(CaBundle::Pem(
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into()
        ))
    );
    assert_eq!(
        p.binding_host.apply("node-1.cloud.local"),
        "node-1.swarm.example.com"
    );
    assert_eq!(
        HostNaming::Pattern("{hostname}-k".into()).apply("a.b"),
        "a.b-k"
    );
    assert_eq!(p.driver.plugin, PluginMode::Tcp);
    assert_eq!(p.driver.tcp_uri, "http://127.0.0.1:23750");
    assert!(p.driver.debug);
    assert!(!p.driver.enable_dhcp);
    assert_eq!(p.init, InitChoice::Process);
    assert_eq!(
        p.agent.physical_bridge,
        Some(PhysicalBridge {
            bridge: "br-phy".into(),
            interface: "eth1".into()
        })
    );
    assert_eq!(
        p.agent.local_ip,
        Some(LocalIpSource::RouteTo("10.0.0.1".parse().unwrap()))
    );
    assert!(p.agent.tunnel_types.is_empty());
    assert_eq!(
        p.agent.packages_for(AgentType::Ovs),
        vec!["openvswitch", "openstack-neutron-openvswitch"]
    );
    assert_eq!(p.agent.openvswitch_unit(), "openvswitch.service");
    assert_eq!(
        p.credential.describe(),
        "application credential kuryr-nodes"
    );
}

#[test]
fn urls() {
    let u = parse_url("http://[::1]:23750/x").unwrap();
    assert_eq!(
        (u.host(), u.port(), u.path()),
        (
            Some(url::Host::Ipv6(Ipv6Addr::LOCALHOST)),
            Some(23750),
            "/x"
        )
    );
    let u = parse_url("https://user:pw@keystone:5000").unwrap();
    assert_eq!((u.host_str(), u.port()), (Some("keystone"), Some(5000)));
    for bad in [
        "keystone:5000",
        "http://",
        "http://h:0",
        "http://h:x",
        "://h",
        "http://[::1",
    ] {
        assert_eq!(parse_url(bad), None, "{bad}");
    }
}

#[test]
fn policy_survives_other_errors() {
    let v = json!({"cluster_template": {"swarm_default_network_driver": "kuryr"}, "keystone": 1});
    assert_eq!(policy_only(&v.to_string()).default, "kuryr");
    assert_eq!(policy_only("nonsense"), NetworkDriverPolicy::default());
}

#[test]
fn tcp_uri_is_loopback_with_a_port() {
    let tcp_uri = |uri: &str| {
        parse(&with(minimal(), "/driver", json!({"tcp_uri": uri}))).map(|p| p.driver.tcp_uri)
    };
    for (uri, stored) in [
        ("http://127.0.0.1:23750", "http://127.0.0.1:23750"),
        ("http://127.0.0.1:23750/", "http://127.0.0.1:23750"),
        ("http://[::1]:23750", "http://[::1]:23750"),
        ("http://127.0.0.1:80", "http://127.0.0.1:80"),
        ("http://127.0.0.2:1", "http://127.0.0.2:1"),
        ("http://u:pw@127.0.0.1:1", "http://u:pw@127.0.0.1:1"),
    ] {
        assert_eq!(tcp_uri(uri).as_deref(), Ok(stored), "{uri}");
    }
    for bad in [
        "http://0.0.0.0:23750",
        "http://127.0.0.1",
        "http://localhost:23750",
        "https://127.0.0.1:23750",
        "http://127.0.0.1:23750/x",
        "http://127.0.0.1:23750?x",
        "http://127.0.0.1:0",
        "http://127.1:23750",
        "127.0.0.1:23750",
    ] {
        assert!(tcp_uri(bad).is_err(), "{bad}");
    }
}

/// The managed plugin sees only the node's /etc/kuryr: a CA file elsewhere
/// is refused with the fix, in the same report as every other problem.
#[test]
fn managed_plugin_refuses_a_ca_file_it_cannot_see() {
    let managed = |ca: &str| {
        let v = with(minimal(), "/keystone/ca_file", json!(ca));
        with(v, "/driver", json!({"plugin": "managed"}))
    };
    for outside in [
        "/etc/ssl/certs/openstack-ca.pem",
        "/etc/kuryr",
        "/etc/kuryr/../ssl/certs/ca.pem",
        "/etc/kuryrx/ca.pem",
    ] {
        let errs = parse(&managed(outside)).unwrap_err();
        assert_eq!(
            errs,
            vec![format!(
                "keystone.ca_file {outside:?} is outside /etc/kuryr, the only directory of the node the \
                 managed plugin sees (mounted read-only): the driver in the plugin could not read it. Give \
                 the PEM text as keystone.ca_pem (node setup writes it to /etc/kuryr/ca.pem) or put the \
                 file under /etc/kuryr"
            )],
            "{outside}"
        );
    }
    for inside in ["/etc/kuryr/ca.pem", "/etc/kuryr/certs/./cloud.pem"] {
        let p = parse(&managed(inside)).expect(inside);
        assert_eq!(
            p.keystone.ca,
            Some(CaBundle::Path(std::path::PathBuf::from(inside)))
        );
    }
    // The same file is fine where the driver runs on the node itself.
    let socket = with(
        minimal(),
        "/keystone/ca_file",
        json!("/etc/ssl/certs/openstack-ca.pem"),
    );
    parse(&socket).expect("socket mode reads the node's files");

    // Reported with every other problem, a broken auth_url included.
    let mut v = managed("/etc/ssl/certs/openstack-ca.pem");
    v["keystone"]["auth_url"] = json!("nope");
    v["driver"]["plugin_ref"] = json!("bad ref");
    let fields: Vec<String> = ClusterParams::from_json(&v.to_string())
        .unwrap_err()
        .into_iter()
        .map(|p| p.field)
        .collect();
    assert_eq!(
        fields,
        vec!["keystone.auth_url", "driver.plugin_ref", "keystone.ca_file"]
    );
}

#[test]
fn plugin_binary_is_an_absolute_path_in_managed_mode_only() {
    let v = with(
        minimal(),
        "/driver",
        json!({"plugin": "managed", "plugin_binary": "/opt/kuryr/kuryr-static"}),
    );
    let p = parse(&v).expect("valid");
    assert_eq!(
        p.driver.plugin_binary.as_deref(),
        Some(std::path::Path::new("/opt/kuryr/kuryr-static"))
    );
    assert_eq!(parse(&minimal()).unwrap().driver.plugin_binary, None);
    let cases = [
        (
            json!({"plugin": "managed", "plugin_binary": "kuryr"}),
            "driver.plugin_binary \"kuryr\" must be an absolute path",
        ),
        (
            json!({"plugin_binary": "/opt/kuryr/kuryr-static"}),
            "driver.plugin_binary is the managed plugin's binary: set driver.plugin to managed, or remove it",
        ),
    ];
    for (driver, expected) in cases {
        let errs = parse(&with(minimal(), "/driver", driver.clone())).unwrap_err();
        assert_eq!(errs, vec![expected.to_string()], "{driver}");
    }
}
