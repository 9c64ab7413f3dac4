//! Whole-file scenarios: what an operator's kuryr.conf turns into.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use kuryr_openstack::{Credential, DomainRef, Interface, Scope, UserRef};
use secrecy::ExposeSecret;

use super::*;

fn load(text: &str) -> Config {
    match Config::from_str(text) {
        Ok(c) => c,
        Err(e) => panic!("config should load: {e}\n{text}"),
    }
}

fn load_err(text: &str) -> String {
    match Config::from_str(text) {
        Ok(_) => panic!("config should fail:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn session_err(text: &str) -> String {
    match load(text).session_config() {
        Ok(s) => panic!("session config should fail, got {s:?}"),
        Err(e) => e.to_string(),
    }
}

fn has_warning(c: &Config, needle: &str) -> bool {
    c.warnings.iter().any(|w| w.contains(needle))
}

const TYPICAL: &str = "\
[DEFAULT]
bindir = /usr/local/libexec/kuryr

[neutron]
auth_type = password
auth_url = http://ctl:5000/v3
username = kuryr
password = s3cret-pw
project_name = service
project_domain_name = Default
user_domain_name = Default
";

#[test]
fn empty_file_gives_kuryr_libnetwork_defaults() {
    let c = load("");
    let d = &c.default;
    assert_eq!(d.kuryr_uri, "http://127.0.0.1:23750");
    assert!(!d.kuryr_uri_explicit);
    assert_eq!(d.kuryr_listen.to_string(), "127.0.0.1:23750");
    assert_eq!(d.capability_scope, CapabilityScope::Local);
    assert_eq!(d.connectivity_scope, None);
    assert_eq!(d.connectivity_scope(), CapabilityScope::Local);
    assert_eq!(d.local_default_address_space, "no_address_space");
    assert_eq!(d.global_default_address_space, "no_address_space");
    assert_eq!(d.default_port_driver, PortDriverKind::Veth);
    assert_eq!(d.enabled_port_drivers, [PortDriverKind::Veth]);
    assert!(d.process_external_connectivity);
    assert!(!d.enable_ssl);
    assert_eq!(
        d.ssl_cert_file,
        PathBuf::from("/var/lib/kuryr/certs/cert.pem")
    );
    assert_eq!(
        d.ssl_key_file,
        PathBuf::from("/var/lib/kuryr/certs/key.pem")
    );
    assert_eq!(d.bindir, PathBuf::from("/usr/libexec/kuryr"));
    assert_eq!(d.subnetpool_name_prefix, "kuryrPool");
    assert!(!d.debug);
    assert_eq!((d.log_file.clone(), d.log_dir.clone()), (None, None));
    assert_eq!(d.host, None);
    assert_eq!(
        d.plugin_socket,
        Some(PathBuf::from("/run/docker/plugins/kuryr.sock"))
    );

    let n = &c.neutron;
    assert!(n.enable_dhcp);
    assert_eq!(n.default_subnetpool_v4, "kuryr");
    assert_eq!(n.default_subnetpool_v6, "kuryr6");
    assert!(!n.vif_plugging_is_fatal);
    assert_eq!(n.vif_plugging_timeout_secs, 0);
    assert_eq!(n.region_name, None);
    assert_eq!(n.endpoint_type, Interface::Public);
    assert!(!n.insecure);
    assert_eq!(n.timeout, None);
    assert_eq!(n.auth_section, None);
    assert_eq!(n.auth.auth_type, None);

    let b = &c.binding;
    assert_eq!(b.veth_dst_prefix, "eth");
    assert_eq!(b.default_driver, BindingDriverKind::Veth);
    assert_eq!(b.enabled_drivers, [BindingDriverKind::Veth]);
    assert_eq!(b.link_iface, None);

    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.files, ["<string>"]);
}

#[test]
fn typical_v3_config_gives_password_credential_for_project_service() {
    let c = load(TYPICAL);
    assert_eq!(c.default.bindir, PathBuf::from("/usr/local/libexec/kuryr"));
    let s = c.session_config().expect("session config");
    assert_eq!(s.auth_url, "http://ctl:5000/v3");
    assert_eq!(s.interface, Interface::Public);
    assert_eq!(s.region, None);
    // Not set: bounded all the same (keystoneauth would wait forever).
    assert_eq!(s.timeout, Some(Duration::from_secs(15)));
    let default = DomainRef {
        id: None,
        name: Some("Default".into()),
    };
    match &s.credential {
        Credential::Password {
            user,
            password,
            scope,
        } => {
            assert_eq!(
                user,
                &UserRef {
                    id: None,
                    name: Some("kuryr".into()),
                    domain: default.clone()
                }
            );
            assert_eq!(password.expose_secret(), "s3cret-pw");
            assert_eq!(
                scope,
                &Scope::Project {
                    id: None,
                    name: Some("service".into()),
                    domain: default
                }
            );
        }
        other => panic!("expected a password credential, got {other:?}"),
    }
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let text = format!("{TYPICAL}token = tok-secret\napplication_credential_secret = ac-secret\n");
    let c = load(&text);
    let shown = format!("{c:?} {:?}", c.session_config());
    for secret in ["s3cret-pw", "tok-secret", "ac-secret"] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
}

#[test]
fn deprecated_names_work_and_are_reported() {
    let c = load(
        "[DEFAULT]\n\
         port_driver = kuryr_libnetwork.port_driver.drivers.veth\n\
         logfile = kuryr.log\n\
         logdir = /var/log/kuryr\n\
         [neutron]\n\
         auth_plugin = v3password\n\
         auth_url = http://ctl:5000/v3\n\
         user_name = kuryr\n\
         user_domain_id = default\n\
         password = pw\n\
         tenant_name = service\n\
         project_domain_id = default\n\
         [binding]\n\
         driver = kuryr.lib.binding.drivers.veth\n",
    );
    assert_eq!(c.default.default_port_driver, PortDriverKind::Veth);
    assert_eq!(
        c.default.log_path("kuryr-server"),
        Some(PathBuf::from("/var/log/kuryr/kuryr.log"))
    );
    assert_eq!(c.binding.default_driver, BindingDriverKind::Veth);
    let a = &c.neutron.auth;
    assert_eq!(a.auth_type, Some(AuthType::V3Password));
    assert_eq!(a.username.as_deref(), Some("kuryr"));
    assert_eq!(a.project_name.as_deref(), Some("service"));
    for old in [
        "port_driver",
        "logfile",
        "auth_plugin",
        "user_name",
        "tenant_name",
        "driver",
    ] {
        assert!(
            has_warning(&c, &format!("{old} is deprecated")),
            "{old}: {:?}",
            c.warnings
        );
    }
    match c.session_config().expect("session").credential {
        Credential::Password { user, scope, .. } => {
            assert_eq!(user.domain.id.as_deref(), Some("default"));
            assert!(matches!(scope, Scope::Project { name: Some(n), .. } if n == "service"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn current_name_beats_deprecated_name_in_the_same_file() {
    let c = load(
        "[DEFAULT]\ndefault_port_driver = veth\nport_driver = nested\n\
         [binding]\ndefault_driver = veth\ndriver = macvlan\nenabled_drivers = veth,macvlan\n",
    );
    assert_eq!(c.default.default_port_driver, PortDriverKind::Veth);
    assert_eq!(c.binding.default_driver, BindingDriverKind::Veth);
}

#[test]
fn auth_section_moves_the_auth_options() {
    let c = load(
        "[neutron]\n\
         auth_section = keystone_authtoken\n\
         region_name = RegionTwo\n\
         cafile = /etc/ssl/ca.pem\n\
         username = ignored-user\n\
         [Keystone_Authtoken]\n\
         auth_type = password\n\
         auth_url = https://ctl:5000/v3\n\
         username = kuryr\n\
         password = pw\n\
         project_id = 0123abcd\n\
         user_domain_name = Default\n",
    );
    assert_eq!(
        c.neutron.auth_section.as_deref(),
        Some("keystone_authtoken")
    );
    assert_eq!(c.neutron.auth.section, "keystone_authtoken");
    assert!(
        has_warning(&c, "[neutron] username ignored"),
        "{:?}",
        c.warnings
    );
    assert!(!has_warning(&c, "unknown section"), "{:?}", c.warnings);
    let s = c.session_config().expect("session");
    assert_eq!(s.auth_url, "https://ctl:5000/v3");
    assert_eq!(s.region.as_deref(), Some("RegionTwo"));
    assert_eq!(s.tls.cafile, Some(PathBuf::from("/etc/ssl/ca.pem")));
    match s.credential {
        Credential::Password { user, scope, .. } => {
            assert_eq!(user.name.as_deref(), Some("kuryr"));
            assert_eq!(
                scope,
                Scope::Project {
                    id: Some("0123abcd".into()),
                    name: None,
                    domain: DomainRef::default()
                }
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn auth_section_that_does_not_exist_is_explained() {
    let c = load("[neutron]\nauth_section = nowhere\nauth_type = password\n");
    assert!(
        has_warning(&c, "no configuration file has a [nowhere] section"),
        "{:?}",
        c.warnings
    );
    assert!(
        has_warning(&c, "[neutron] auth_type ignored"),
        "{:?}",
        c.warnings
    );
    let err = c
        .session_config()
        .expect_err("no auth in [nowhere]")
        .to_string();
    assert!(
        err.contains("[nowhere]") && err.contains("auth_type is not set"),
        "{err}"
    );
}

#[test]
fn application_credential_by_id_and_by_name() {
    let c = load(
        "[neutron]\nauth_type = v3applicationcredential\nauth_url = http://ctl:5000/v3\n\
         application_credential_id = ac1\napplication_credential_secret = ac-secret\n",
    );
    match c.session_config().expect("session").credential {
        Credential::ApplicationCredential {
            id,
            name,
            user,
            secret,
        } => {
            assert_eq!(id.as_deref(), Some("ac1"));
            assert_eq!(name, None);
            assert_eq!(user, None);
            assert_eq!(secret.expose_secret(), "ac-secret");
        }
        other => panic!("{other:?}"),
    }

    let c = load(
        "[neutron]\nauth_type = applicationcredential\nauth_url = http://ctl:5000/v3\n\
         application_credential_name = kuryr-ac\napplication_credential_secret = x\n\
         username = kuryr\nuser_domain_name = Default\n",
    );
    match c.session_config().expect("session").credential {
        Credential::ApplicationCredential {
            id: None,
            name: Some(n),
            user: Some(u),
            ..
        } => {
            assert_eq!(n, "kuryr-ac");
            assert_eq!(u.name.as_deref(), Some("kuryr"));
        }
        other => panic!("{other:?}"),
    }

    let base = "[neutron]\nauth_type = v3applicationcredential\nauth_url = http://ctl:5000/v3\n";
    let err = session_err(&format!("{base}application_credential_id = ac1\n"));
    assert!(err.contains("application_credential_secret"), "{err}");
    let err = session_err(&format!("{base}application_credential_secret = x\n"));
    assert!(
        err.contains("application_credential_id or application_credential_name"),
        "{err}"
    );
    let err = session_err(&format!(
        "{base}application_credential_secret = x\napplication_credential_name = n\n"
    ));
    assert!(err.contains("owner"), "{err}");
}

#[test]
fn token_domain_and_system_scopes() {
    let base = "[neutron]\nauth_url = http://ctl:5000/v3\n";
    let c = load(&format!(
        "{base}auth_type = v3token\ntoken = tok\ndomain_name = Default\n"
    ));
    match c.session_config().expect("session").credential {
        Credential::Token { token, scope } => {
            assert_eq!(token.expose_secret(), "tok");
            assert_eq!(scope, Scope::Domain(DomainRef::default_domain()));
        }
        other => panic!("{other:?}"),
    }
    let c = load(&format!(
        "{base}auth_type = password\nuser_id = u1\npassword = p\nsystem_scope = ALL\n"
    ));
    match c.session_config().expect("session").credential {
        Credential::Password { user, scope, .. } => {
            assert_eq!(user.id.as_deref(), Some("u1"));
            assert_eq!(scope, Scope::System);
        }
        other => panic!("{other:?}"),
    }
    let c = load(&format!("{base}auth_type = token\ntoken = t\n"));
    assert!(matches!(
        c.session_config().expect("session").credential,
        Credential::Token {
            scope: Scope::Unscoped,
            ..
        }
    ));
}

#[test]
fn generic_password_uses_default_domain() {
    let c = load(
        "[neutron]\nauth_type = password\nauth_url = http://ctl:5000/v3\nusername = u\npassword = p\n\
         project_name = service\ndefault_domain_id = dom1\n",
    );
    match c.session_config().expect("session").credential {
        Credential::Password { user, scope, .. } => {
            let dom = DomainRef {
                id: Some("dom1".into()),
                name: None,
            };
            assert_eq!(user.domain, dom);
            assert_eq!(
                scope,
                Scope::Project {
                    id: None,
                    name: Some("service".into()),
                    domain: dom
                }
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn incomplete_credentials_are_clear_errors() {
    let err = session_err("");
    assert!(
        err.contains("[neutron]") && err.contains("auth_type is not set"),
        "{err}"
    );
    let err = session_err("[neutron]\nauth_type = password\nusername = u\npassword = p\n");
    assert!(err.contains("needs auth_url"), "{err}");
    let base = "[neutron]\nauth_type = password\nauth_url = http://ctl:5000/v3\n";
    let err = session_err(&format!("{base}password = p\n"));
    assert!(err.contains("needs username or user_id"), "{err}");
    let err = session_err(&format!("{base}username = u\npassword =\n"));
    assert!(err.contains("needs password"), "{err}");
    let err = session_err(&format!(
        "{base}username = u\npassword = p\nproject_name = a\ndomain_name = b\n"
    ));
    assert!(err.contains("multiple targets"), "{err}");
    let err = session_err(
        "[neutron]\nauth_type = v3password\nauth_url = http://ctl:5000/v3\nusername = u\npassword = p\n",
    );
    assert!(err.contains("user_domain_name or user_domain_id"), "{err}");
    let err = session_err(
        "[neutron]\nauth_type = v3password\nauth_url = http://ctl:5000/v3\nuser_id = u\npassword = p\nproject_name = x\n",
    );
    assert!(
        err.contains("project_domain_name or project_domain_id"),
        "{err}"
    );
    let err = session_err("[neutron]\nauth_type = v3token\nauth_url = http://ctl:5000/v3\n");
    assert!(err.contains("needs token"), "{err}");
    let err = session_err(
        "[neutron]\nauth_type = password\nauth_url = http://ctl:5000/v2.0\nuser_id = u\npassword = p\n",
    );
    assert!(err.contains("v2.0"), "{err}");
}

#[test]
fn unsupported_auth_options_fail_at_load() {
    let err = load_err("[neutron]\nauth_type = v3oidcpassword\n");
    assert!(
        err.contains(
            "<string>:2: [neutron] auth_type = \"v3oidcpassword\": expected one of password"
        ),
        "{err}"
    );
    let err = load_err("[neutron]\nauth_type = password\ntrust_id = abc\n");
    assert!(
        err.contains("trust_id") && err.contains("not supported"),
        "{err}"
    );
    let err = load_err("[neutron]\nsystem_scope = project\n");
    assert!(err.contains("system_scope") && err.contains("all"), "{err}");
}

#[test]
fn session_options_reach_the_session_config() {
    let c = load(&format!(
        "{TYPICAL}endpoint_type = internalURL\nregion_name = R1\ninsecure = True\ntimeout = 30\n\
         certfile = /c.pem\nkeyfile = /k.pem\ncollect_timing = true\n"
    ));
    let s = c.session_config().expect("session");
    assert_eq!(s.interface, Interface::Internal);
    assert_eq!(s.region.as_deref(), Some("R1"));
    assert!(s.tls.insecure);
    assert_eq!(s.tls.certfile, Some(PathBuf::from("/c.pem")));
    assert_eq!(s.tls.keyfile, Some(PathBuf::from("/k.pem")));
    assert_eq!(s.timeout, Some(Duration::from_secs(30)));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);

    let err = load(&format!("{TYPICAL}keyfile = /k.pem\n"))
        .session_config()
        .expect_err("keyfile alone");
    assert!(err.to_string().contains("keyfile"), "{err}");
    let err = load_err("[neutron]\ntimeout = 0\n");
    assert!(
        err.contains("timeout") && err.contains("greater than 0"),
        "{err}"
    );
    let err = load_err("[neutron]\nendpoint_type = private\n");
    assert!(
        err.contains("endpoint_type") && err.contains("public, internal, admin"),
        "{err}"
    );
}

#[test]
fn bad_capability_scope_names_file_line_key_value_and_choices() {
    let err = load_err("[DEFAULT]\n\ncapability_scope = globall\n");
    assert_eq!(
        err,
        "<string>:3: [DEFAULT] capability_scope = \"globall\": expected one of local, global"
    );
    let c = load("[DEFAULT]\ncapability_scope = Global\nconnectivity_scope = local\n");
    assert_eq!(c.default.capability_scope, CapabilityScope::Global);
    assert_eq!(c.default.connectivity_scope(), CapabilityScope::Local);
    let c = load("[DEFAULT]\ncapability_scope = global\n");
    assert_eq!(c.default.connectivity_scope(), CapabilityScope::Global);
}

#[test]
fn ports_pool_size_is_off_unless_set() {
    assert_eq!(load("").default.ports_pool_size, 0);
    let c = load("[DEFAULT]\nports_pool_size = 20\n");
    assert_eq!(c.default.ports_pool_size, 20);
}

#[test]
fn bad_values_are_errors_with_what_is_expected() {
    let cases = [
        (
            "[DEFAULT]\ndebug = maybe\n",
            "[DEFAULT] debug = \"maybe\": expected a boolean",
        ),
        (
            "[neutron]\nenable_dhcp = sometimes\n",
            "[neutron] enable_dhcp = \"sometimes\": expected a boolean",
        ),
        (
            "[neutron]\nvif_plugging_timeout = -5\n",
            "vif_plugging_timeout = \"-5\": expected a whole number",
        ),
        (
            "[DEFAULT]\nports_pool_size = 1001\n",
            "ports_pool_size = \"1001\": expected a whole number of ports from 0 to 1000",
        ),
        (
            "[DEFAULT]\nports_pool_size = some\n",
            "ports_pool_size = \"some\": expected a whole number of ports from 0 to 1000",
        ),
        (
            "[DEFAULT]\nkuryr_uri = 127.0.0.1:23750\n",
            "kuryr_uri = \"127.0.0.1:23750\": expected an http:// or https:// URL",
        ),
        (
            "[DEFAULT]\ndefault_port_driver = ovs\n",
            "default_port_driver = \"ovs\": expected one of veth, nested, vlan, sriov",
        ),
        (
            "[DEFAULT]\nenabled_port_drivers = veth, bogus\n",
            "enabled_port_drivers = \"bogus\": expected a comma-separated list of one of veth",
        ),
        (
            "[binding]\ndefault_driver = kuryr.lib.binding.drivers.ovs\n",
            "expected one of veth, macvlan, ipvlan, vlan, hw_veb",
        ),
        (
            "[binding]\nveth_dst_prefix = a/b\n",
            "veth_dst_prefix = \"a/b\": expected an interface name prefix",
        ),
        (
            "[DEFAULT]\nplugin_socket = kuryr.sock\n",
            "plugin_socket = \"kuryr.sock\": expected an absolute path",
        ),
    ];
    for (text, needle) in cases {
        let err = load_err(text);
        assert!(err.contains(needle), "{text:?}: {err}");
        assert!(err.starts_with("<string>:2: "), "{err}");
    }
}

#[test]
fn booleans_accept_oslo_spellings() {
    for (v, want) in [
        ("True", true),
        ("false", false),
        ("1", true),
        ("0", false),
        ("yes", true),
        ("No", false),
        ("on", true),
        ("OFF", false),
    ] {
        let c = load(&format!(
            "[neutron]\nenable_dhcp = {v}\ninsecure = {v}\n[DEFAULT]\ndebug = {v}\n"
        ));
        assert_eq!(
            (c.neutron.enable_dhcp, c.neutron.insecure, c.default.debug),
            (want, want, want),
            "{v}"
        );
    }
}

#[test]
fn unknown_keys_and_sections_are_warnings() {
    let c = load(
        "[DEFAULT]\nuse_syslog = true\ndebgu = true\n[neutron]\nUsername = x\n[keystone_authtoken]\nfoo = 1\n[Binding]\nlink_iface = ens3\n",
    );
    assert!(
        has_warning(&c, "<string>:3: unknown option [DEFAULT] debgu ignored"),
        "{:?}",
        c.warnings
    );
    assert!(
        has_warning(&c, "<string>:5: unknown option [neutron] Username ignored"),
        "{:?}",
        c.warnings
    );
    assert!(
        has_warning(
            &c,
            "<string>:6: unknown section [keystone_authtoken] ignored"
        ),
        "{:?}",
        c.warnings
    );
    assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
    assert_eq!(c.binding.link_iface.as_deref(), Some("ens3"));
}

#[test]
fn later_files_override_earlier_ones() {
    let c = Config::from_texts(&[
        ("base.conf", "[DEFAULT]\ndebug = true\nbindir = /a\n[neutron]\nregion_name = R1\nenable_dhcp = False\n"),
        ("override.conf", "[DEFAULT]\nbindir = /b\n[neutron]\nregion_name = R2\n"),
    ])
    .expect("loads");
    assert!(c.default.debug);
    assert_eq!(c.default.bindir, PathBuf::from("/b"));
    assert_eq!(c.neutron.region_name.as_deref(), Some("R2"));
    assert!(!c.neutron.enable_dhcp);
    assert_eq!(c.files, ["base.conf", "override.conf"]);
}

#[test]
fn load_reads_files_in_order_and_reports_paths() {
    let dir = std::env::temp_dir().join(format!("kuryr-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let first = dir.join("kuryr.conf");
    let second = dir.join("override.conf");
    let broken = dir.join("broken.conf");
    std::fs::write(&first, TYPICAL).expect("write");
    std::fs::write(
        &second,
        "[neutron]\nusername = other\n[binding]\nveth_dst_prefix = cni\n",
    )
    .expect("write");
    std::fs::write(&broken, "[neutron]\nno separator here\n").expect("write");

    let c = Config::load(&[first.clone(), second.clone()]).expect("loads");
    assert_eq!(c.neutron.auth.username.as_deref(), Some("other"));
    assert_eq!(c.binding.veth_dst_prefix, "cni");
    assert_eq!(
        c.files,
        [first.display().to_string(), second.display().to_string()]
    );

    let err = Config::load(&[dir.join("missing.conf")])
        .expect_err("missing")
        .to_string();
    assert!(err.contains("missing.conf"), "{err}");
    let err = Config::load(std::slice::from_ref(&broken))
        .expect_err("broken")
        .to_string();
    assert!(
        err.contains(&format!("{}:2: No ':' or '=' found", broken.display())),
        "{err}"
    );

    assert_eq!(
        first_existing(&[dir.join("nope"), dir.clone()], "kuryr.conf"),
        [first]
    );
    assert!(first_existing(&[dir.join("nope")], "kuryr.conf").is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn nested_port_driver_with_macvlan_binding_loads() {
    let c = load(
        "[DEFAULT]\n\
         default_port_driver = kuryr_libnetwork.port_driver.drivers.nested\n\
         enabled_port_drivers = kuryr_libnetwork.port_driver.drivers.nested\n\
         [binding]\n\
         default_driver = kuryr.lib.binding.drivers.macvlan\n\
         enabled_drivers = kuryr.lib.binding.drivers.macvlan\n\
         link_iface = eth0\n",
    );
    assert_eq!(c.default.default_port_driver, PortDriverKind::Nested);
    assert_eq!(c.binding.default_driver, BindingDriverKind::Macvlan);
    assert_eq!(c.binding.link_iface.as_deref(), Some("eth0"));
}

#[test]
fn nested_port_driver_with_veth_binding_is_an_error() {
    let err = load_err(
        "[DEFAULT]\n\
         default_port_driver = kuryr_libnetwork.port_driver.drivers.nested\n\
         enabled_port_drivers = kuryr_libnetwork.port_driver.drivers.nested\n\
         [binding]\n\
         default_driver = kuryr.lib.binding.drivers.veth\n\
         enabled_drivers = kuryr.lib.binding.drivers.veth\n",
    );
    assert!(
        err.contains(
            "default_port_driver nested is not compatible with [binding] default_driver veth"
        ) && err.contains("macvlan, ipvlan"),
        "{err}"
    );
}

#[test]
fn driver_lists_must_contain_the_defaults() {
    let err = load_err("[binding]\ndefault_driver = macvlan\n");
    assert!(
        err.contains("default_driver macvlan is not in [binding] enabled_drivers (veth)"),
        "{err}"
    );
    let err = load_err(
        "[DEFAULT]\ndefault_port_driver = vlan\n[binding]\ndefault_driver = vlan\nenabled_drivers = vlan\n",
    );
    assert!(
        err.contains("default_port_driver vlan is not in [DEFAULT] enabled_port_drivers (veth)"),
        "{err}"
    );
    let err = load_err("[binding]\nenabled_drivers =\n");
    assert!(err.contains("enabled_drivers (nothing)"), "{err}");
}

#[test]
fn every_enabled_port_driver_needs_a_usable_binding() {
    // SR-IOV always binds with hw_veb, whatever default_driver says.
    let c = load(
        "[DEFAULT]\nenabled_port_drivers = veth,\n    sriov\n\
         [binding]\nenabled_drivers = veth, hw_veb\n",
    );
    assert_eq!(
        c.default.enabled_port_drivers,
        [PortDriverKind::Veth, PortDriverKind::Sriov]
    );
    assert_eq!(
        c.binding.enabled_drivers,
        [BindingDriverKind::Veth, BindingDriverKind::HwVeb]
    );
    let err = load_err("[DEFAULT]\nenabled_port_drivers = veth,sriov\n");
    assert!(
        err.contains("port driver sriov") && err.contains("hw_veb"),
        "{err}"
    );
    let c = load(
        "[DEFAULT]\ndefault_port_driver = sriov\nenabled_port_drivers = sriov\n\
         [binding]\nenabled_drivers = veth,hw_veb\n",
    );
    assert_eq!(c.default.default_port_driver, PortDriverKind::Sriov);
}

#[test]
fn vif_plugging_wait_is_bounded() {
    let c = load("");
    assert_eq!(c.vif_plugging_timeout(), Duration::ZERO);
    let c = load("[neutron]\nvif_plugging_is_fatal = True\n");
    assert_eq!(c.vif_plugging_timeout(), MAX_VIF_PLUGGING_WAIT);
    assert_eq!(c.vif_plugging_timeout(), Duration::from_secs(300));
    assert!(has_warning(&c, "waiting at most 300 s"), "{:?}", c.warnings);
    let c = load("[neutron]\nvif_plugging_timeout = 18446744073709551615\ntimeout = 90000\n");
    assert_eq!(c.vif_plugging_timeout(), Duration::from_secs(86_400));
    assert_eq!(c.neutron.timeout, Some(Duration::from_secs(86_400)));
    assert!(has_warning(&c, "longer than a day"), "{:?}", c.warnings);
    let c = load("[neutron]\nvif_plugging_is_fatal = true\nvif_plugging_timeout = 20\n");
    assert_eq!(c.vif_plugging_timeout(), Duration::from_secs(20));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn interpolation_across_sections() {
    let c = load(
        "[DEFAULT]\ncontroller = ctl.example\nstate = /var/lib/kuryr\nssl_cert_file = $state/cert.pem\n\
         [neutron]\nauth_type = password\nauth_url = http://${controller}:5000/v3\nuser_id = u\n\
         password = pa$$word\nregion_name = ${DEFAULT.controller}-region\n",
    );
    assert_eq!(
        c.default.ssl_cert_file,
        PathBuf::from("/var/lib/kuryr/cert.pem")
    );
    assert_eq!(c.neutron.region_name.as_deref(), Some("ctl.example-region"));
    let s = c.session_config().expect("session");
    assert_eq!(s.auth_url, "http://ctl.example:5000/v3");
    match s.credential {
        Credential::Password { password, .. } => assert_eq!(password.expose_secret(), "pa$word"),
        other => panic!("{other:?}"),
    }
    // `controller` and `state` are not options: they work but are reported.
    assert!(
        has_warning(&c, "unknown option [DEFAULT] controller"),
        "{:?}",
        c.warnings
    );

    let err =
        load_err("[DEFAULT]\nbindir = $subnetpool_name_prefix\nsubnetpool_name_prefix = $bindir\n");
    assert!(err.contains("reference loop"), "{err}");
}

#[test]
fn environment_changes_defaults_but_not_file_values() {
    let env = |var: &str| match var {
        "OS_KURYR_URI" => Some("http://0.0.0.0:2377".to_string()),
        "CAPABILITY_SCOPE" => Some("global".to_string()),
        _ => None,
    };
    let doc = |t: &str| Document::parse("f", t).expect("parses");
    let c = build(vec![doc("")], &env).expect("loads");
    assert_eq!(c.default.kuryr_listen.to_string(), "0.0.0.0:2377");
    assert!(c.default.kuryr_uri_explicit);
    assert_eq!(c.default.capability_scope, CapabilityScope::Global);
    let c = build(vec![doc("[DEFAULT]\ncapability_scope = local\n")], &env).expect("loads");
    assert_eq!(c.default.capability_scope, CapabilityScope::Local);
    let bad = |var: &str| (var == "CAPABILITY_SCOPE").then(|| "galactic".to_string());
    let err = build(vec![doc("")], &bad).expect_err("bad env").to_string();
    assert!(
        err.starts_with("environment variable CAPABILITY_SCOPE: [DEFAULT] capability_scope"),
        "{err}"
    );
}

#[test]
fn listener_socket_and_host_options() {
    let c = load(
        "[DEFAULT]\nkuryr_uri = http://[::1]:23750\nplugin_socket =\nhost = compute-1.example\n",
    );
    assert!(c.default.kuryr_uri_explicit);
    assert_eq!(c.default.kuryr_listen.host, "::1");
    assert_eq!(c.default.plugin_socket, None);
    assert_eq!(c.default.host.as_deref(), Some("compute-1.example"));
    let c = load("[DEFAULT]\nkuryr_uri = http://10.0.0.1\n");
    assert_eq!(c.default.kuryr_listen.port, 5000);
    assert!(has_warning(&c, "has no port"), "{:?}", c.warnings);
}

#[test]
fn log_path_follows_oslo_log() {
    let c = load("[DEFAULT]\nlog_dir = /var/log/kuryr\n");
    assert_eq!(
        c.default.log_path("kuryr"),
        Some(PathBuf::from("/var/log/kuryr/kuryr.log"))
    );
    let c = load("[DEFAULT]\nlog_file = /tmp/k.log\n");
    assert_eq!(
        c.default.log_path("kuryr"),
        Some(PathBuf::from("/tmp/k.log"))
    );
    assert_eq!(load("").default.log_path("kuryr"), None);
}

#[test]
fn a_written_file_loads_back() {
    let mut w = oslo::Writer::new();
    w.comment("Written by kuryr node setup");
    w.set("DEFAULT", "capability_scope", "global");
    w.set("DEFAULT", "host", "node-1");
    w.set("neutron", "auth_type", "password");
    w.set("neutron", "auth_url", "http://ctl:5000/v3");
    w.set("neutron", "username", "kuryr");
    w.set("neutron", "password", " $tricky\"pass ");
    w.set("neutron", "project_name", "service");
    w.set("neutron", "project_domain_name", "Default");
    w.set("neutron", "user_domain_name", "Default");
    w.set_list(
        "binding",
        "enabled_drivers",
        [
            BindingDriverKind::Veth.module_path(),
            BindingDriverKind::Macvlan.module_path(),
        ],
    );
    let text = w.render().expect("renders");
    let c = load(&text);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.default.capability_scope, CapabilityScope::Global);
    assert_eq!(
        c.binding.enabled_drivers,
        [BindingDriverKind::Veth, BindingDriverKind::Macvlan]
    );
    assert_eq!(
        c.neutron
            .auth
            .password
            .as_ref()
            .map(|p| p.expose_secret().to_string())
            .as_deref(),
        Some(" $tricky\"pass ")
    );
}

#[test]
fn arbitrary_input_never_panics() {
    // Whatever the bytes, loading gives a Config or an error.
    let pieces = [
        "[DEFAULT]\n",
        "[neutron]\n",
        "[binding]\n",
        "[x\n",
        "[]\n",
        "a = 1\n",
        " cont\n",
        "\n",
        "# c\n",
        "debug = yes\n",
        "kuryr_uri = http://[\n",
        "auth_type = token\n",
        "timeout = 99999999999999999999\n",
        "enabled_drivers = ,,\n",
        "x = $x\n",
        "y = ${DEFAULT.y}\n",
        "\r",
        "é = ü\n",
        "auth_section = DEFAULT\n",
        "vif_plugging_timeout = 18446744073709551615\n",
        "default_driver = ipvlan\n",
        "host = \n",
    ];
    let mut seed: u64 = 42;
    for _ in 0..3000 {
        let mut text = String::new();
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let n = (seed >> 60) as usize;
        for i in 0..n {
            let pick = ((seed >> (i * 4 % 56)) as usize) % pieces.len();
            text.push_str(pieces[pick]);
        }
        if let Ok(c) = Config::from_str(&text) {
            let _ = c.session_config();
        }
    }
}

#[test]
fn a_malformed_line_never_shows_a_secret() {
    let cases = [
        // A forgotten `=`: the known option name stays, the value does not.
        ("[neutron]\npassword hunter2 x\n", "\"password ***\""),
        // The second line of a wrapped passphrase.
        ("[neutron]\npassword =\ncorrect horse\n", "\"***\""),
        ("[neutron]\nhunter2\n", "\"***\""),
        ("[neutron]\n= hunter2\n", "\"= ***\""),
        ("[neutron]\n: hunter2 more\n", "\": ***\""),
    ];
    for (text, shown) in cases {
        let err = load_err(text);
        assert!(err.contains(shown), "{text:?}: {err}");
        for secret in ["hunter2", "horse", "correct"] {
            assert!(!err.contains(secret), "{text:?} leaked {secret}: {err}");
        }
    }
    // Section headers are shown as written.
    assert!(load_err("[neutron\n").contains("\"[neutron\""));
}

#[test]
fn insecure_tls_and_plain_http_keystone_are_warned_about() {
    let c = load(&format!("{TYPICAL}insecure = true\n"));
    let w = c.transport_warnings();
    assert!(w.iter().any(|w| w.contains("insecure = true")), "{w:?}");
    // TYPICAL's auth_url is http://ctl:5000/v3.
    assert!(
        w.iter()
            .any(|w| w.contains("auth_url http://ctl:5000/v3 is plain http://")),
        "{w:?}"
    );
    assert!(
        c.warnings.is_empty(),
        "file warnings stay apart: {:?}",
        c.warnings
    );
    for quiet in [
        "https://ctl:5000/v3",
        "http://127.0.0.1:5000/v3",
        "http://[::1]:5000/v3",
        "http://localhost:5000/v3",
    ] {
        let c = load(&TYPICAL.replace("http://ctl:5000/v3", quiet));
        assert!(c.warnings.is_empty(), "{quiet}: {:?}", c.warnings);
    }
}

#[test]
fn listener_and_permission_options_default_to_the_safe_side() {
    let d = load("").default;
    assert!(!d.allow_remote_api && !d.strict_config_permissions && !d.enable_ssl);
    let d = load(
        "[DEFAULT]\nallow_remote_api = true\nstrict_config_permissions = yes\nenable_ssl = on\n",
    )
    .default;
    assert!(d.allow_remote_api && d.strict_config_permissions && d.enable_ssl);
}

#[test]
fn a_config_file_others_may_read_is_a_warning_or_with_strict_an_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(kuryr_test_support::unique("kuryr-conf-mode-"));
    std::fs::create_dir_all(&dir).unwrap();
    let https = TYPICAL.replace("http://ctl", "https://ctl");
    let write = |name: &str, text: &str, mode: u32| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    };
    let private = write("private.conf", &https, 0o600);
    let c = Config::load(std::slice::from_ref(&private)).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);

    let open = write("open.conf", &https, 0o644);
    let c = Config::load(std::slice::from_ref(&open)).unwrap();
    assert!(
        has_warning(&c, &format!("{} has mode 0644", open.display()))
            && has_warning(&c, "chmod 600")
            && has_warning(&c, "strict_config_permissions = true"),
        "{:?}",
        c.warnings
    );

    let strict = write(
        "strict.conf",
        "[DEFAULT]\nstrict_config_permissions = true\n",
        0o640,
    );
    let err = Config::load(&[open.clone(), strict.clone()])
        .expect_err("strict refuses")
        .to_string();
    assert!(
        err.contains("open.conf has mode 0644") && err.contains("strict.conf has mode 0640"),
        "every file is named: {err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
