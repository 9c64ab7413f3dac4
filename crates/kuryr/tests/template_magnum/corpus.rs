//! The templates both validators judge: every COE, network driver (under
//! several operator policies), volume driver, server type and distro,
//! storage driver and size, every attribute Magnum types (empty, null,
//! wrong type, bounds, case variants), label edge cases, the user guide's
//! example, and raw bodies that are not objects.
//!
//! A case tagged `differs` is one where the two are expected to disagree,
//! by design: the tag names a row of the user guide's table of deliberate
//! differences (see `DIFFERENCES` in template_magnum.rs).

use std::path::Path;

use serde_json::{Map, Value, json};

pub struct Case {
    pub name: String,
    /// The request body, byte for byte what both validators read.
    pub body: String,
    /// Operator policy: `swarm_allowed_network_drivers`,
    /// `swarm_default_network_driver`.
    pub policy: (Vec<String>, String),
    /// The deliberate difference this case shows, if any.
    pub differs: Option<&'static str>,
}

/// A template builder: `coe swarm-mode`, an image, plus `extra`.
fn base(coe: &str, extra: &Value) -> Value {
    let mut t = Map::new();
    t.insert("coe".into(), json!(coe));
    t.insert("image_id".into(), json!("fedora-atomic-27"));
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            t.insert(k.clone(), v.clone());
        }
    }
    Value::Object(t)
}

struct Corpus(Vec<Case>);

impl Corpus {
    fn raw(&mut self, name: String, body: String, differs: Option<&'static str>) {
        self.0.push(Case {
            name,
            body,
            policy: (vec!["all".into()], "docker".into()),
            differs,
        });
    }

    fn add(&mut self, name: impl Into<String>, t: Value) {
        self.raw(name.into(), t.to_string(), None);
    }

    fn differs(&mut self, id: &'static str, name: impl Into<String>, t: Value) {
        self.raw(name.into(), t.to_string(), Some(id));
    }

    /// `{coe swarm-mode, image}` plus one attribute.
    fn attr(&mut self, key: &str, value: Value) {
        let t = base("swarm-mode", &json!({ key: value.clone() }));
        self.add(format!("{key}={value}"), t);
    }

    fn with_policy(&mut self, name: String, t: Value, allowed: &[&str], default: &str) {
        self.0.push(Case {
            name,
            body: t.to_string(),
            policy: (
                allowed.iter().map(|s| s.to_string()).collect(),
                default.into(),
            ),
            differs: None,
        });
    }
}

/// Every case, in a stable order.
pub fn cases(repo: &Path) -> Vec<Case> {
    let mut c = Corpus(Vec::new());
    coes_and_network_drivers(&mut c);
    volumes_servers_storage(&mut c);
    strings(&mut c);
    booleans(&mut c);
    integers_uuid_dns(&mut c);
    labels(&mut c);
    whole_templates(&mut c, repo);
    differences(&mut c);
    c.0
}

fn coes_and_network_drivers(c: &mut Corpus) {
    let drivers = [
        None,
        Some(json!(null)),
        Some(json!("")),
        Some(json!("docker")),
        Some(json!("flannel")),
        Some(json!("kuryr")),
        Some(json!("Kuryr")),
        Some(json!("KURYR")),
        Some(json!("calico")),
        Some(json!("kuryr ")),
        Some(json!(5)),
    ];
    let policies: [(&[&str], &str); 5] = [
        (&["all"], "docker"),
        (&["kuryr"], "kuryr"),
        (&["docker", "flannel"], "docker"),
        (&["all"], "calico"),
        (&["kuryr", "docker"], "flannel"),
    ];
    for coe in ["swarm", "swarm-mode"] {
        for d in &drivers {
            for (allowed, default) in policies {
                let extra = d
                    .as_ref()
                    .map_or(json!({}), |d| json!({"network_driver": d}));
                let shown = d.as_ref().map_or("absent".to_string(), ToString::to_string);
                c.with_policy(
                    format!("{coe} network_driver={shown} allowed={allowed:?} default={default}"),
                    base(coe, &extra),
                    allowed,
                    default,
                );
            }
        }
    }
    for coe in [
        json!("mesos"),
        json!("dcos"),
        json!("Swarm"),
        json!("SWARM-MODE"),
        json!("swarm_mode"),
        json!(""),
        json!(null),
        json!(5),
        json!(["swarm"]),
    ] {
        c.add(
            format!("coe={coe}"),
            base("swarm", &json!({"coe": coe.clone()})),
        );
    }
    c.add("coe missing", json!({"image_id": "fedora-atomic-27"}));
}

fn volumes_servers_storage(c: &mut Corpus) {
    for coe in ["swarm", "swarm-mode"] {
        for v in [
            json!("rexray"),
            json!("cinder"),
            json!("nfs"),
            json!("Rexray"),
            json!(""),
            json!(null),
            json!(3),
        ] {
            c.add(
                format!("{coe} volume_driver={v}"),
                base(coe, &json!({"volume_driver": v})),
            );
        }
        for s in [
            json!("vm"),
            json!("bm"),
            json!("VM"),
            json!("xx"),
            json!(""),
            json!(null),
            json!(1),
        ] {
            for distro in [
                None,
                Some("fedora-atomic"),
                Some("ubuntu"),
                Some("Fedora-Atomic"),
            ] {
                let mut extra = json!({"server_type": s.clone()});
                if let Some(d) = distro {
                    extra["cluster_distro"] = json!(d);
                }
                c.add(
                    format!("{coe} server_type={s} cluster_distro={distro:?}"),
                    base(coe, &extra),
                );
            }
        }
    }
    c.attr("cluster_distro", json!(""));
    for storage in ["devicemapper", "overlay2", "overlay", "DeviceMapper"] {
        for size in [
            None,
            Some(json!(null)),
            Some(json!(1)),
            Some(json!(2)),
            Some(json!(3)),
            Some(json!("3")),
            Some(json!("2")),
            Some(json!(true)),
            Some(json!(2.9)),
            Some(json!("x")),
        ] {
            let mut extra = json!({"docker_storage_driver": storage});
            if let Some(s) = &size {
                extra["docker_volume_size"] = s.clone();
            }
            c.add(
                format!("docker_storage_driver={storage} docker_volume_size={size:?}"),
                base("swarm", &extra),
            );
        }
    }
}

/// Every string attribute: empty, null, a value, 255 and 256 characters,
/// a number; tags (0 to 255) too.
fn strings(c: &mut Corpus) {
    for key in [
        "name",
        "image_id",
        "flavor_id",
        "master_flavor_id",
        "keypair_id",
        "external_network_id",
        "fixed_network",
        "fixed_subnet",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "insecure_registry",
        "docker_storage_driver",
        "tags",
    ] {
        for v in [
            json!(""),
            json!(null),
            json!("x"),
            json!("é".repeat(255)),
            json!("y".repeat(256)),
            json!(7),
            json!(true),
            json!(" spaced "),
        ] {
            if key == "image_id" && v.is_null() {
                continue; // a difference, below
            }
            let shown = match v.as_str() {
                Some(s) if s.chars().count() > 20 => format!("<{} chars>", s.chars().count()),
                _ => v.to_string(),
            };
            c.add(
                format!("{key}={shown}"),
                base("swarm-mode", &json!({ key: v })),
            );
        }
    }
    c.attr("fixed_network", json!("tab\there"));
    c.attr("unknown_field", json!(1));
    c.attr("netwrok_driver", json!("kuryr"));
    let t = base("swarm", &json!({"zzz": 1, "aaa": 2, "network_driver": "x"}));
    c.add("two unknown attributes and a bad driver", t);
}

fn booleans(c: &mut Corpus) {
    let bools = [
        json!(true),
        json!(false),
        json!("yes"),
        json!("no"),
        json!("On"),
        json!("off"),
        json!("Y"),
        json!("t"),
        json!("1"),
        json!("0"),
        json!(" True "),
        json!(" yes\u{1c}"),
        json!("YES"),
        json!(1),
        json!(0),
        json!(2),
        json!(1.0),
        json!("maybe"),
        json!(""),
        json!(null),
        json!([]),
    ];
    for key in [
        "tls_disabled",
        "registry_enabled",
        "public",
        "master_lb_enabled",
        "floating_ip_enabled",
        "hidden",
    ] {
        for v in &bools {
            c.attr(key, v.clone());
        }
    }
}

fn integers_uuid_dns(c: &mut Corpus) {
    for key in ["apiserver_port", "docker_volume_size"] {
        for v in [
            json!(0),
            json!(1),
            json!(-1),
            json!(1023),
            json!(1024),
            json!(65535),
            json!(65536),
            json!("8080"),
            json!(" 2000 "),
            json!("1_024"),
            json!("+1024"),
            json!("\u{661}\u{660}\u{662}\u{664}"),
            json!("1__024"),
            json!("1e3"),
            json!(8080.9),
            json!(true),
            json!("abc"),
            json!(""),
            json!(null),
            json!([1]),
            json!(100_000_000_000_i64),
            json!(1.5),
            json!("-1"),
        ] {
            c.attr(key, v);
        }
    }
    for v in [
        json!("0b2e0a4c-1d2f-4c3b-9a8e-123456789abc"),
        json!("{0B2E0A4C-1D2F-4C3B-9A8E-123456789ABC}"),
        json!("urn:uuid:0b2e0a4c1d2f4c3b9a8e123456789abc"),
        json!("0b2e0a4c-1d2f-4c3b-9a8e-123456789ab"),
        json!("URN:UUID:0b2e0a4c1d2f4c3b9a8e123456789abc"),
        json!("uuid:0b2e0a4c1d2f4c3b9a8e123456789abc"),
        json!("{{0b2e0a4c1d2f4c3b9a8e123456789abc}}"),
        json!("x"),
        json!(""),
        json!(5),
        json!(null),
    ] {
        c.attr("uuid", v);
    }
    for v in [
        json!("8.8.8.8"),
        json!("8.8.8.8, 1.1.1.1"),
        json!(" 8.8.8.8 "),
        json!("8.8.8.8\t"),
        json!("1.2.3.4 , 5.6.7.8"),
        json!("0x8.8.8.8"),
        json!("255.255.255.255"),
        json!(""),
        json!("x"),
        json!("010.1.1.1"),
        json!("8.8.8.8,"),
        json!("::1"),
        json!("8.8.8"),
        json!(8),
        json!(null),
    ] {
        c.attr("dns_nameserver", v);
    }
}

fn labels(c: &mut Corpus) {
    for v in [
        json!({}),
        json!(null),
        json!([]),
        json!(5),
        json!({"a": null}),
        json!({"a": [1]}),
        json!({"a": {"b": 1}}),
        json!({"a": true, "b": false}),
        json!({"a": 1.5, "b": 1e16, "c": 1e-5, "d": -0.0, "e": 100.0, "f": 0.1}),
        json!({"a": 10, "b": -3, "c": "", "d": " x "}),
        json!({"a": 1e22, "b": 0.300_000_000_000_000_04, "c": 123_456_789_012_345_678_i64, "": "x"}),
        json!({"swarm_strategy": "spread"}),
        json!({"swarm_strategy": "spread binpack"}),
        json!({"swarm_strategy": ""}),
        json!({"swarm_strategy": " random "}),
        json!({"swarm_strategy": "x spread x"}),
        json!({"swarm_strategy": "Spread"}),
        json!({"swarm_strategy": "spread\u{1c}binpack"}),
        json!({"swarm_strategy": "spread\u{a0}binpack"}),
        json!({"swarm_strategy": 3}),
        json!({"swarm_strategy": true}),
        json!({"swarm_strategy": null}),
        json!({"mesos_slave_isolation": "posix/cpu,docker/runtime"}),
        json!({"mesos_slave_isolation": "posix/cpu,bad"}),
        json!({"mesos_slave_isolation": ""}),
        json!({"mesos_slave_isolation": "posix/cpu, docker/runtime"}),
        json!({"mesos_slave_isolation": 1}),
        json!({"mesos_slave_image_providers": "appc"}),
        json!({"mesos_slave_image_providers": "Docker"}),
        json!({"mesos_slave_image_providers": "docker", "mesos_slave_isolation": "docker/runtime"}),
        json!({"mesos_slave_image_providers": "rkt"}),
        json!({"mesos_slave_executor_env_variables": "{\"A\": \"1\"}"}),
        json!({"mesos_slave_executor_env_variables": "{"}),
        json!({"mesos_slave_executor_env_variables": "NaN"}),
        json!({"mesos_slave_executor_env_variables": "[1e400, -Infinity]"}),
        json!({"mesos_slave_executor_env_variables": "[1,]"}),
        json!({"kuryr_mode": "nested", "kuryr_link_iface": "ens4", "kuryr_mtu": 1450}),
        json!({"kuryr_mode": "agent", "kuryr_agent_type": "linuxbridge",
               "kuryr_vif_plugging_timeout": "60", "kuryr_subnetpool": "pool"}),
        json!({"kuryr_scope": "global"}),
    ] {
        c.attr("labels", v);
    }
}

/// Whole templates: the user guide's example, Magnum's own sample made a
/// Swarm one, and bodies that are not JSON objects.
fn whole_templates(c: &mut Corpus, repo: &Path) {
    let example = repo.join("docs/examples/cluster-template.json");
    let text =
        std::fs::read_to_string(&example).unwrap_or_else(|e| panic!("{}: {e}", example.display()));
    c.raw("docs/examples/cluster-template.json".into(), text, None);
    c.add(
        "Magnum's ClusterTemplate.sample() as a kuryr swarm-mode template",
        json!({
            "uuid": "27e3153e-d5bf-4b7e-b517-fb518e17f34c",
            "name": "example", "image_id": "Fedora-k8s", "flavor_id": "m1.small",
            "master_flavor_id": "m1.small", "dns_nameserver": "8.8.1.1",
            "keypair_id": "keypair1", "external_network_id": "ffc44e4a-2319-4062-bce0-9ae1c38b05ba",
            "fixed_network": "private", "fixed_subnet": "private-subnet",
            "network_driver": "kuryr", "volume_driver": "rexray", "apiserver_port": 8080,
            "docker_volume_size": 25, "docker_storage_driver": "devicemapper",
            "cluster_distro": "fedora-atomic", "coe": "swarm-mode",
            "http_proxy": "http://proxy.com:123", "https_proxy": "https://proxy.com:123",
            "no_proxy": "192.168.0.1,192.168.0.2,192.168.0.3",
            "labels": {"key1": "val1", "key2": "val2", "kuryr_mode": "vlan"},
            "server_type": "vm", "insecure_registry": "10.238.100.100:5000",
            "public": false, "master_lb_enabled": false, "floating_ip_enabled": true,
            "hidden": false, "tls_disabled": true, "registry_enabled": false, "tags": "a,b"
        }),
    );
    for body in [
        "[1]",
        "\"swarm\"",
        "{",
        "{\"coe\": \"swarm\",}",
        "null",
        "3",
    ] {
        c.raw(format!("body {body}"), body.to_string(), None);
    }
}

/// The deliberate differences, each shown at least once.
fn differences(c: &mut Corpus) {
    for labels in [
        json!({"kuryr_mode": "macvlan"}),
        json!({"kuryr_mtu": ""}),
        json!({"kuryr_mtu": 99999}),
        json!({"kuryr_mdoe": "agent"}),
        json!({"Kuryr_Mode": "agent"}),
        json!({"kuryr_link_iface": "eth1"}),
        json!({"kuryr_mode": "nested", "kuryr_agent_type": "ovs"}),
        json!({"kuryr_subnetpool": " "}),
        json!({"kuryr_vif_plugging_timeout": true}),
    ] {
        let t = base(
            "swarm-mode",
            &json!({"network_driver": "kuryr", "labels": labels}),
        );
        c.differs("kuryr-labels", format!("labels={labels}"), t);
    }
    let t = base("swarm", &json!({"labels": {"kuryr_scope": "global"}}));
    c.differs(
        "kuryr-labels",
        "swarm labels={\"kuryr_scope\":\"global\"}",
        t,
    );

    for extra in [
        json!({}),
        json!({"network_driver": "flannel"}),
        json!({"network_driver": "kuryr"}),
        json!({"volume_driver": "cinder"}),
    ] {
        let t = base("kubernetes", &extra);
        c.differs("coe-kubernetes", format!("coe=kubernetes {extra}"), t);
    }
    for name in ["a\nb", "tab\there", "nul\u{0}"] {
        let t = base("swarm-mode", &json!({ "name": name }));
        c.differs("name-control-characters", format!("name={name:?}"), t);
    }
    let mut no_image = base("swarm-mode", &json!({"network_driver": "kuryr"}));
    no_image.as_object_mut().map(|t| t.remove("image_id"));
    c.differs("image-id-optional", "image_id missing", no_image);
    let t = base("swarm-mode", &json!({"image_id": null}));
    c.differs("image-id-optional", "image_id=null", t);
    let t = base(
        "swarm",
        &json!({"labels": "kuryr_mode=nested,kuryr_link_iface=ens4"}),
    );
    c.differs("labels-cli-string", "labels as key=value,... string", t);
    let t = base("swarm", &json!({"labels": ""}));
    c.differs("labels-cli-string", "labels as an empty string", t);
    for (k, v) in [
        (
            "links",
            json!([{"href": "http://magnum/v1/clustertemplates/x", "rel": "self"}]),
        ),
        ("created_at", json!("2024-05-01T10:00:00+00:00")),
        ("updated_at", json!(null)),
        ("project_id", json!("0a1b")),
        ("user_id", json!("2c3d")),
        ("id", json!(4)),
        ("driver", json!("swarm_fedora_atomic_v2")),
    ] {
        let t = base("swarm-mode", &json!({ k: v.clone() }));
        c.differs("show-output-fields", format!("{k}={v}"), t);
    }
}
