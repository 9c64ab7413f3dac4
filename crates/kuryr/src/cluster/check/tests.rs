//! The parts of node check that need no node: line format, extensions per
//! mode, spec files, where the driver listens.

use super::docker::{Listener, ManagedPlugin, driver_listener, find_managed, spec_target};
use super::openstack::required_extensions;
use super::*;

#[test]
fn line_format() {
    let l = CheckLine {
        name: "keystone",
        status: Status::Fail,
        message: "x".into(),
    };
    assert_eq!(l.to_string(), "FAIL keystone: x");
    let l = CheckLine {
        name: "docker",
        status: Status::Ok,
        message: "y".into(),
    };
    assert_eq!(l.to_string(), "OK   docker: y");
}

#[test]
fn extensions_per_mode() {
    let conf = |port: &str, binding: &str| {
        Config::from_texts(&[(
            "t",
            &format!(
                "[DEFAULT]\ndefault_port_driver = {port}\nenabled_port_drivers = {port}\n\
                 [binding]\ndefault_driver = {binding}\nenabled_drivers = {binding}\n"
            ),
        )])
        .expect("config")
    };
    let aliases = |c: &Config| {
        required_extensions(c)
            .into_iter()
            .map(|(a, _)| a[0])
            .collect::<Vec<_>>()
    };
    assert_eq!(
        aliases(&conf("veth", "veth")),
        vec![
            "subnet_allocation",
            "standard-attr-tag",
            "binding",
            "security-group"
        ]
    );
    assert_eq!(
        aliases(&conf("nested", "macvlan")),
        vec![
            "subnet_allocation",
            "standard-attr-tag",
            "allowed-address-pairs",
            "security-group"
        ]
    );
    assert_eq!(
        aliases(&conf("vlan", "vlan")),
        vec![
            "subnet_allocation",
            "standard-attr-tag",
            "trunk",
            "trunk-details",
            "security-group"
        ]
    );
}

#[test]
fn spec_targets() {
    let dir = std::env::temp_dir().join(format!("kuryr-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("kuryr.spec");
    std::fs::write(&spec, "http://127.0.0.1:23750\n").unwrap();
    assert_eq!(spec_target(&spec).as_deref(), Some("127.0.0.1:23750"));
    let json = dir.join("kuryr.json");
    std::fs::write(&json, r#"{"Name": "kuryr", "Addr": "http://[::1]:23750"}"#).unwrap();
    assert_eq!(spec_target(&json).as_deref(), Some("[::1]:23750"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn listeners() {
    let c = Config::from_texts(&[(
        "t",
        "[DEFAULT]\nplugin_socket =\nkuryr_uri = http://127.0.0.1:23750\n",
    )])
    .unwrap();
    assert_eq!(
        driver_listener(Some(&c)),
        Listener::Tcp("127.0.0.1:23750".into())
    );
    assert_eq!(
        driver_listener(None),
        Listener::Socket("/run/docker/plugins/kuryr.sock".into())
    );
}

#[test]
fn the_managed_plugin_is_found_among_dockerds_plugins() {
    let plugins = serde_json::json!([
        {"Id": "aaa", "Name": "vieux/sshfs:latest", "Enabled": true,
         "Config": {"Entrypoint": ["/usr/bin/sshfs"], "Interface": {"Socket": "sshfs.sock",
                    "Types": ["docker.volumedriver/1.0"]}}},
        {"Id": "5f1d", "Name": "kuryr/kuryr:latest", "Enabled": false,
         "Config": {"Entrypoint": ["/usr/bin/kuryr", "--config-file", "/etc/kuryr/kuryr.conf", "server"],
                    "Interface": {"Socket": "kuryr.sock",
                                  "Types": ["docker.networkdriver/1.0", "docker.ipamdriver/1.0"]}}}
    ]);
    assert_eq!(
        find_managed(&plugins),
        Some(ManagedPlugin {
            name: "kuryr/kuryr:latest".into(),
            id: "5f1d".into(),
            enabled: false,
            socket: "/run/docker/plugins/5f1d/kuryr.sock".into(),
        })
    );
    assert_eq!(find_managed(&serde_json::json!([])), None);
    assert_eq!(find_managed(&serde_json::json!({"message": "no"})), None);
    // A disabled plugin is what the driver check reports.
    let listener = Listener::Managed(find_managed(&plugins).unwrap());
    assert!(matches!(
        listener,
        Listener::Managed(ManagedPlugin { enabled: false, .. })
    ));
}
