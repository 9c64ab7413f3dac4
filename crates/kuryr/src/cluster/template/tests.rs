//! Template validation: Magnum's rules one by one, with the messages it
//! gives (tests/template_magnum.rs checks the verdicts against Magnum's own
//! code), and kuryr's additions.

use super::*;

fn policy(allowed: &[&str], default: &str) -> NetworkDriverPolicy {
    NetworkDriverPolicy {
        allowed: allowed.iter().map(|s| s.to_string()).collect(),
        default: default.into(),
    }
}

fn parse(v: Value, p: &NetworkDriverPolicy) -> Result<ClusterTemplate, Vec<String>> {
    ClusterTemplate::from_json(&v.to_string(), p)
        .map_err(|ps| ps.into_iter().map(|p| p.message).collect())
}

fn errors(v: Value, p: &NetworkDriverPolicy) -> Vec<String> {
    parse(v, p).expect_err("invalid")
}

fn fields(v: Value) -> Vec<String> {
    ClusterTemplate::from_json(&v.to_string(), &NetworkDriverPolicy::default())
        .expect_err("invalid")
        .into_iter()
        .map(|p| p.field)
        .collect()
}

/// `{"coe": "swarm"}` plus `extra`.
fn swarm(extra: Value) -> Value {
    let mut t = json!({"coe": "swarm"});
    if let (Some(t), Value::Object(extra)) = (t.as_object_mut(), extra) {
        t.extend(extra);
    }
    t
}

#[test]
fn minimal_kuryr_template() {
    let t = parse(
        json!({"coe": "swarm-mode", "network_driver": "kuryr"}),
        &NetworkDriverPolicy::default(),
    )
    .expect("valid");
    assert_eq!(t.coe, Coe::SwarmMode);
    assert!(t.uses_kuryr());
    assert!(!t.network_driver_defaulted);
    assert_eq!(t.kuryr, KuryrLabels::default());
    assert!(!t.tls_disabled);
    assert_eq!(t.display_name(), "(unnamed)");
}

#[test]
fn full_template_round_trips_to_json() {
    let input = json!({
        "name": "swarm-kuryr",
        "coe": "swarm",
        "network_driver": "kuryr",
        "labels": {"kuryr_mode": "agent", "kuryr_mtu": 1450, "swarm_strategy": "spread",
                   "debug": true, "ratio": 0.5, "big": 1e16},
        "fixed_network": "private",
        "fixed_subnet": "private-subnet",
        "external_network_id": "public",
        "dns_nameserver": "8.8.8.8, 1.1.1.1",
        "tls_disabled": "True",
        "image_id": "fedora-atomic",
        "uuid": "0b2e0a4c-0000-0000-0000-000000000000",
        "keypair_id": null
    });
    let t = parse(input, &NetworkDriverPolicy::default()).expect("valid");
    assert_eq!(t.kuryr.mtu, Some(1450));
    assert_eq!(t.labels["swarm_strategy"], "spread");
    // Stored as Magnum stores them: Python's str() of the value.
    assert_eq!(t.labels["debug"], "True");
    assert_eq!(t.labels["ratio"], "0.5");
    assert_eq!(t.labels["big"], "1e+16");
    assert_eq!(t.dns_nameserver.len(), 2);
    assert!(t.tls_disabled);
    assert_eq!(
        t.to_json(),
        json!({
            "name": "swarm-kuryr",
            "coe": "swarm",
            "network_driver": "kuryr",
            "labels": {"big": "1e+16", "debug": "True", "kuryr_mode": "agent", "kuryr_mtu": "1450",
                       "ratio": "0.5", "swarm_strategy": "spread"},
            "fixed_network": "private",
            "fixed_subnet": "private-subnet",
            "external_network_id": "public",
            "dns_nameserver": "8.8.8.8,1.1.1.1",
            "tls_disabled": true
        })
    );
    // The effective template validates again to the same thing.
    let again = parse(t.to_json(), &NetworkDriverPolicy::default()).expect("valid");
    assert_eq!(again, t);
}

#[test]
fn labels_in_cli_form() {
    let t = parse(
        json!({"coe": "swarm", "network_driver": "kuryr", "labels": "kuryr_mode=nested, kuryr_link_iface=ens4"}),
        &NetworkDriverPolicy::default(),
    )
    .expect("valid");
    assert_eq!(t.kuryr.mode, labels::KuryrMode::Nested);
    assert_eq!(t.kuryr.link_iface.as_deref(), Some("ens4"));
    assert_eq!(
        errors(
            json!({"coe": "swarm", "labels": "kuryr_mode"}),
            &NetworkDriverPolicy::default()
        ),
        vec!["labels: \"kuryr_mode\" is not key=value"]
    );
}

/// Magnum's matrix: supported × allowed × default, for both COEs.
#[test]
fn network_driver_matrix() {
    let all = NetworkDriverPolicy::default();
    let only_kuryr = policy(&["kuryr"], "kuryr");
    let docker_flannel = policy(&["docker", "flannel"], "docker");
    for coe in ["swarm", "swarm-mode"] {
        for driver in ["docker", "flannel", "kuryr"] {
            assert!(
                parse(json!({"coe": coe, "network_driver": driver}), &all).is_ok(),
                "{coe} {driver}"
            );
        }
        assert!(parse(json!({"coe": coe, "network_driver": "kuryr"}), &only_kuryr).is_ok());
        assert_eq!(
            errors(
                json!({"coe": coe, "network_driver": "kuryr"}),
                &docker_flannel
            ),
            vec![
                "Network driver type kuryr is not allowed, expecting a docker/flannel/unspecified network driver."
            ]
        );
        assert_eq!(
            errors(json!({"coe": coe, "network_driver": "docker"}), &only_kuryr),
            vec![
                "Network driver type docker is not allowed, expecting a kuryr/unspecified network driver."
            ]
        );
        // Supported is checked before allowed, and names are case-sensitive.
        for bad in ["Kuryr", "calico", "KURYR", "kuryr "] {
            assert_eq!(
                errors(json!({"coe": coe, "network_driver": bad}), &only_kuryr),
                vec![format!(
                    "Network driver type {bad} is not supported, expecting a docker/flannel/kuryr/unspecified network driver."
                )],
                "{bad:?}"
            );
        }
    }
}

#[test]
fn default_driver_filled_in_and_validated() {
    let t = parse(json!({"coe": "swarm"}), &NetworkDriverPolicy::default()).expect("valid");
    assert_eq!(t.network_driver, "docker");
    assert!(t.network_driver_defaulted);
    assert!(!t.uses_kuryr());
    let t = parse(json!({"coe": "swarm-mode"}), &policy(&["all"], "kuryr")).expect("valid");
    assert_eq!(t.network_driver, "kuryr");
    // null is no driver, as in Magnum.
    let t = parse(
        json!({"coe": "swarm", "network_driver": null}),
        &policy(&["all"], "kuryr"),
    )
    .expect("valid");
    assert!(t.network_driver_defaulted);
    // A bad default is an error too (Magnum:
    // test_enforce_network_driver_types_default_invalid_create).
    assert_eq!(
        errors(json!({"coe": "swarm"}), &policy(&["all"], "calico")),
        vec![
            "Network driver type calico is not supported, expecting a docker/flannel/kuryr/unspecified network driver. \
             (the template names no network_driver, so the operator's default swarm_default_network_driver = calico \
             was used; fix that default or name a driver in the template)"
        ]
    );
    assert_eq!(
        errors(json!({"coe": "swarm"}), &policy(&["kuryr"], "docker")),
        vec![
            "Network driver type docker is not allowed, expecting a kuryr/unspecified network driver. \
             (the template names no network_driver, so the operator's default swarm_default_network_driver = docker \
             was used; fix that default or name a driver in the template)"
        ]
    );
}

/// Magnum's string attributes hold 1 to 255 characters: an empty string
/// is refused, not taken as absent (the default is not filled in for it).
#[test]
fn empty_strings_are_refused() {
    for key in [
        "name",
        "network_driver",
        "fixed_network",
        "fixed_subnet",
        "external_network_id",
        "image_id",
        "flavor_id",
        "keypair_id",
        "volume_driver",
        "docker_storage_driver",
        "cluster_distro",
        "http_proxy",
        "insecure_registry",
    ] {
        let got = errors(swarm(json!({key: ""})), &policy(&["all"], "kuryr"));
        assert_eq!(
            got,
            vec![format!(
                "Invalid input for field/attribute {key}. Value: ''. Value should have a minimum \
                 character requirement of 1 (an empty string is not \"no value\" to Magnum: leave \
                 the field out, or null)"
            )],
            "{key}"
        );
        assert_eq!(fields(swarm(json!({key: ""}))), vec![key]);
        assert!(
            parse(swarm(json!({key: null})), &NetworkDriverPolicy::default()).is_ok(),
            "{key}: null"
        );
    }
    // tags is the one string Magnum allows empty; dns_nameserver "" is not
    // a list of addresses.
    assert!(parse(swarm(json!({"tags": ""})), &NetworkDriverPolicy::default()).is_ok());
    assert_eq!(
        fields(swarm(json!({"dns_nameserver": ""}))),
        vec!["dns_nameserver"]
    );
    let long = "x".repeat(256);
    assert_eq!(
        errors(
            swarm(json!({"fixed_network": long})),
            &NetworkDriverPolicy::default()
        ),
        vec![
            "Invalid input for field/attribute fixed_network: 256 characters. Value should have a \
             maximum character requirement of 255"
        ]
    );
    assert!(
        parse(
            swarm(json!({"fixed_network": "é".repeat(255)})),
            &NetworkDriverPolicy::default()
        )
        .is_ok()
    );
}

/// oslo's `bool_from_string(strict=True)`, as Magnum reads booleans.
#[test]
fn booleans_as_magnum_reads_them() {
    let p = NetworkDriverPolicy::default();
    for (v, b) in [
        (json!(true), true),
        (json!("yes"), true),
        (json!("On"), true),
        (json!(" y "), true),
        (json!("t"), true),
        (json!(1), true),
        (json!("1"), true),
        (json!(false), false),
        (json!("no"), false),
        (json!("OFF"), false),
        (json!(0), false),
        (json!(null), false),
    ] {
        let t = parse(swarm(json!({"tls_disabled": v.clone()})), &p).expect("valid");
        assert_eq!(t.tls_disabled, b, "{v}");
    }
    for key in [
        "tls_disabled",
        "public",
        "hidden",
        "registry_enabled",
        "master_lb_enabled",
    ] {
        for bad in [json!("maybe"), json!(2), json!(1.0), json!([]), json!("")] {
            assert_eq!(
                fields(swarm(json!({key: bad.clone()}))),
                vec![key],
                "{key} {bad}"
            );
        }
    }
    assert_eq!(
        errors(swarm(json!({"tls_disabled": "maybe"})), &p),
        vec![
            "Invalid input for field/attribute tls_disabled. Value: \"maybe\". Expecting true or false, \
             or a string Magnum reads as one (any case): 1, t, true, on, y, yes for true, 0, f, false, \
             off, n, no for false (Magnum's API fails with a 500 on this value)"
        ]
    );
}

/// WSME's integers: Python's int() of the value, then the bounds.
#[test]
fn integers_as_magnum_reads_them() {
    let p = NetworkDriverPolicy::default();
    for ok in [
        json!(8080),
        json!("8080"),
        json!(" 2000 "),
        json!("1_024"),
        json!(8080.9),
        json!(65535),
    ] {
        assert!(
            parse(swarm(json!({"apiserver_port": ok.clone()})), &p).is_ok(),
            "{ok}"
        );
    }
    assert_eq!(
        errors(swarm(json!({"apiserver_port": 80})), &p),
        vec![
            "Invalid input for field/attribute apiserver_port. Value: '80'. Value should be greater or equal to 1024"
        ]
    );
    assert_eq!(
        errors(swarm(json!({"apiserver_port": 65536})), &p),
        vec![
            "Invalid input for field/attribute apiserver_port. Value: '65536'. Value should be lower or equal to 65535"
        ]
    );
    assert_eq!(
        errors(swarm(json!({"apiserver_port": "80a"})), &p),
        vec!["apiserver_port must be an integer, not \"80a\""]
    );
    assert_eq!(
        errors(swarm(json!({"docker_volume_size": [1]})), &p),
        vec!["docker_volume_size must be an integer, not an array"]
    );
    // true is 1 to Python: a valid size, a port below 1024.
    assert!(parse(swarm(json!({"docker_volume_size": true})), &p).is_ok());
    assert_eq!(
        fields(swarm(json!({"apiserver_port": true}))),
        vec!["apiserver_port"]
    );
    assert_eq!(
        fields(swarm(json!({"docker_volume_size": 0}))),
        vec!["docker_volume_size"]
    );
}

#[test]
fn uuid_and_dns() {
    let p = NetworkDriverPolicy::default();
    for ok in [
        "0b2e0a4c-0000-0000-0000-000000000000",
        "{0B2E0A4C-0000-0000-0000-000000000000}",
        "0b2e0a4c000000000000000000000000",
    ] {
        assert!(parse(swarm(json!({"uuid": ok})), &p).is_ok(), "{ok}");
    }
    assert_eq!(
        errors(swarm(json!({"uuid": "x"})), &p),
        vec!["Expected a uuid but received x."]
    );
    assert_eq!(
        errors(swarm(json!({"uuid": 5})), &p),
        vec!["Expected a uuid but received 5."]
    );
    for bad in ["8.8.8.8,dns.example.com", "010.1.1.1", "8.8.8.8,", "::1"] {
        assert_eq!(
            errors(swarm(json!({"dns_nameserver": bad})), &p),
            vec![format!(
                "Expected a single dns address or comma separated dns list, but received {bad}."
            )]
        );
    }
    assert_eq!(
        errors(swarm(json!({"dns_nameserver": 8})), &p),
        vec![
            "dns_nameserver must be a string (one IPv4 address or a comma-separated list), not a \
             number (Magnum's API fails with a 500 on it)"
        ]
    );
}

#[test]
fn coe_errors() {
    let p = NetworkDriverPolicy::default();
    assert_eq!(
        errors(json!({"network_driver": "kuryr"}), &p),
        vec!["Invalid input for field/attribute coe. Mandatory field missing."]
    );
    assert_eq!(
        errors(json!({"coe": null}), &p),
        vec!["Invalid input for field/attribute coe. Mandatory field missing."]
    );
    assert_eq!(
        errors(json!({"coe": "kubernetes"}), &p),
        vec![
            "Requested COE type kubernetes is not supported here: this integration serves swarm and \
             swarm-mode (Magnum itself takes kubernetes templates)."
        ]
    );
    assert_eq!(
        errors(json!({"coe": "mesos"}), &p),
        vec!["Requested COE type mesos is not supported."]
    );
    assert_eq!(
        errors(json!({"coe": "Swarm"}), &p),
        vec![
            "Invalid input for field/attribute coe. Value: 'Swarm'. Value should be one of: \
             kubernetes, swarm, mesos, dcos, swarm-mode (this integration serves swarm and swarm-mode)"
        ]
    );
    assert_eq!(
        errors(json!({"coe": 1}), &p),
        vec!["coe must be a string, not a number"]
    );
}

/// The create decorators: server type, volume driver, docker volume size
/// and the cluster driver lookup.
#[test]
fn swarm_rules() {
    let p = NetworkDriverPolicy::default();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"volume_driver": "cinder"}),
            "Volume driver type cinder is not supported, expecting a rexray/unspecified volume driver.",
        ),
        (
            json!({"server_type": "bm"}),
            "Cluster type (bm, <the image's os_distro>, swarm) not supported. Magnum has no Swarm \
             driver for server_type bm: its Swarm drivers build vm nodes from fedora-atomic images",
        ),
        (
            json!({"server_type": "xx"}),
            "Invalid input for field/attribute server_type. Value: 'xx'. Value should be one of: vm, bm",
        ),
        (
            json!({"server_type": null}),
            "Server type None is not supported, expecting a vm/bm/unspecified server type. \
             (server_type is null: leave it out for vm)",
        ),
        (
            json!({"cluster_distro": "ubuntu"}),
            "Cluster type (vm, ubuntu, swarm) not supported. Magnum's Swarm drivers serve \
             cluster_distro fedora-atomic only (leave cluster_distro out to take the image's os_distro)",
        ),
        (
            json!({"docker_storage_driver": "devicemapper"}),
            "docker volume size None GB is not valid, expecting minimum value 3GB for devicemapper \
             storage driver.",
        ),
        (
            json!({"docker_storage_driver": "devicemapper", "docker_volume_size": "2"}),
            "docker volume size 2 GB is not valid, expecting minimum value 3GB for devicemapper \
             storage driver.",
        ),
    ];
    for (extra, expected) in cases {
        assert_eq!(errors(swarm(extra.clone()), &p), vec![expected], "{extra}");
    }
    for ok in [
        json!({"volume_driver": "rexray", "server_type": "vm", "cluster_distro": "fedora-atomic"}),
        json!({"docker_storage_driver": "devicemapper", "docker_volume_size": 3}),
        json!({"docker_storage_driver": "overlay2"}),
    ] {
        assert!(parse(swarm(ok.clone()), &p).is_ok(), "{ok}");
    }
    // Both halves of a bad cluster type are named.
    assert_eq!(
        fields(swarm(
            json!({"server_type": "bm", "cluster_distro": "ubuntu"})
        )),
        vec!["server_type", "cluster_distro"]
    );
}

/// `attr_validator`'s label checks, on every template.
#[test]
fn magnum_label_rules() {
    let p = NetworkDriverPolicy::default();
    for ok in ["spread", "spread binpack", "", " random "] {
        assert!(
            parse(swarm(json!({"labels": {"swarm_strategy": ok}})), &p).is_ok(),
            "{ok:?}"
        );
    }
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"swarm_strategy": "x spread x"}),
            "property \"labels/swarm_strategy\" with value \"x\" is not supported, supported values \
             are: spread, binpack, random, unspecified",
        ),
        (
            json!({"swarm_strategy": 3}),
            "labels/swarm_strategy must be a string, not a number (Magnum's API fails with a 500 on it)",
        ),
        (
            json!({"mesos_slave_isolation": "posix/cpu,bad"}),
            "property \"labels/mesos_slave_isolation\" with value \"bad\" is not supported, supported \
             values are: filesystem/posix, filesystem/linux, filesystem/shared, posix/cpu, posix/mem, \
             posix/disk, cgroups/cpu, cgroups/mem, docker/runtime, namespaces/pid, unspecified",
        ),
        (
            json!({"mesos_slave_image_providers": "Docker"}),
            "Docker runtime isolator has to be specified if 'docker' is included in \
             'mesos_slave_image_providers' Please add 'docker/runtime' to 'mesos_slave_isolation' \
             labels flags",
        ),
        (
            json!({"mesos_slave_image_providers": "rkt"}),
            "property \"labels/mesos_slave_image_providers\" with value \"rkt\" is not supported, \
             supported values are: docker, appc, unspecified",
        ),
        (
            json!({"mesos_slave_executor_env_variables": "{"}),
            "Json format error",
        ),
        (
            json!({"a": null}),
            "labels/a is null: a label value must be a string, a number or a boolean (Magnum's API \
             fails with a 500 on a null label); remove the label",
        ),
        (
            json!({"a": {"b": 1}}),
            "labels/a must be a string, a number or a boolean, not an object",
        ),
    ];
    for (labels, expected) in cases {
        assert_eq!(
            errors(swarm(json!({"labels": labels.clone()})), &p),
            vec![expected],
            "{labels}"
        );
    }
    assert!(
        parse(
            swarm(
                json!({"labels": {"mesos_slave_image_providers": "docker,appc",
                                    "mesos_slave_isolation": "docker/runtime"}})
            ),
            &p
        )
        .is_ok()
    );
}

#[test]
fn names_and_unknown_fields() {
    let p = NetworkDriverPolicy::default();
    assert_eq!(
        errors(swarm(json!({"name": "a\nb"})), &p),
        vec![
            "name holds control characters: kuryr refuses them (Magnum does not) because node setup \
             writes the name into the header comments of the files it generates"
        ]
    );
    assert_eq!(
        errors(swarm(json!({"name": 3})), &p),
        vec!["name must be a string, not a number"]
    );
    // Control characters elsewhere are Magnum's business, which allows them.
    assert!(parse(swarm(json!({"fixed_network": "a\tb"})), &p).is_ok());
    assert_eq!(
        errors(swarm(json!({"netwrok_driver": "kuryr"})), &p),
        vec![
            "Unknown attribute for cluster template: netwrok_driver (did you mean network_driver?)"
        ]
    );
    // What `openstack coe cluster template show -f json` adds is accepted.
    assert!(
        parse(
            swarm(json!({"links": [], "created_at": "2024-01-01T00:00:00+00:00", "updated_at": null,
                         "project_id": "p", "user_id": "u", "id": 3, "driver": "swarm_fedora_atomic_v2"})),
            &p
        )
        .is_ok()
    );
    assert_eq!(
        ClusterTemplate::from_json("[1]", &p)
            .unwrap_err()
            .into_iter()
            .map(|p| p.message)
            .collect::<Vec<_>>(),
        vec!["a cluster template file holds one JSON object, not an array"]
    );
    let e = ClusterTemplate::from_json("{", &p).unwrap_err();
    assert!(
        e[0].message
            .starts_with("the cluster template file is not valid JSON: "),
        "{e:?}"
    );
}

/// One message per problem, all of them in one go.
#[test]
fn collects_every_problem() {
    let got = errors(
        json!({
            "coe": "swarm",
            "network_driver": "Kuryr",
            "dns_nameserver": "x",
            "tls_disabled": 3,
            "labels": {"kuryr_mode": "bad", "kuryr_scope": "global", "kuryr_mtu": "1"},
            "flavour": "m1.small",
            "volume_driver": "nfs",
            "server_type": "bm"
        }),
        &NetworkDriverPolicy::default(),
    );
    assert_eq!(got.len(), 9, "{got:#?}");
    // With the COE unknown, the driver and the COE-dependent checks are
    // skipped rather than guessed.
    assert_eq!(
        fields(
            json!({"coe": "kubernetes", "network_driver": "x", "volume_driver": "cinder",
                      "labels": {"kuryr_scope": "global"}})
        ),
        vec!["coe"]
    );
}
