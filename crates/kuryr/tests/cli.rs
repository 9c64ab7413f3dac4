//! The binaries as an operator runs them: kuryr-libnetwork's command line
//! and configuration errors at start-up.

use std::process::Command;

fn temp_conf(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kuryr-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kuryr.conf");
    std::fs::write(&path, text).unwrap();
    path
}

const GOOD: &str = "[DEFAULT]\ncapability_scope = local\n\n[neutron]\nauth_url = http://127.0.0.1:5000/v3\n\
auth_type = password\nusername = kuryr\npassword = s3cret-value\nproject_name = service\n\
user_domain_name = Default\nproject_domain_name = Default\n";

#[test]
fn kuryr_server_takes_kuryr_libnetworks_command_line() {
    let conf = temp_conf("good", GOOD);
    let out = Command::new(env!("CARGO_BIN_EXE_kuryr-server"))
        .arg("--config-file")
        .arg(&conf)
        .arg("check-config")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("configuration OK"), "{stdout}");
    assert!(!stdout.contains("s3cret-value"));
}

#[test]
fn a_bad_value_stops_start_up_with_file_key_and_expectation() {
    let conf = temp_conf(
        "bad",
        &GOOD.replace("capability_scope = local", "capability_scope = globall"),
    );
    // No subcommand: the daemon itself must refuse to start.
    let out = Command::new(env!("CARGO_BIN_EXE_kuryr"))
        .arg("--config-file")
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("capability_scope") && err.contains("globall"),
        "{err}"
    );
    assert!(err.contains(&conf.display().to_string()), "{err}");
    assert!(err.contains("local"), "says what is expected: {err}");
}

#[test]
fn unknown_keys_are_warned_not_fatal() {
    let conf = temp_conf(
        "unknown",
        &format!("{GOOD}\n[binding]\nno_such_option = 1\n"),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kuryr"))
        .arg("--config-file")
        .arg(&conf)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("warning") && stdout.contains("no_such_option"),
        "{stdout}"
    );
}

#[test]
fn a_config_file_others_may_read_is_refused_with_strict_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let conf = temp_conf(
        "strict",
        &GOOD.replace(
            "capability_scope = local",
            "capability_scope = local\nstrict_config_permissions = true",
        ),
    );
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kuryr"))
        .arg("--config-file")
        .arg(&conf)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{} has mode 0644", conf.display())) && err.contains("chmod 600"),
        "{err}"
    );
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kuryr"))
        .arg("--config-file")
        .arg(&conf)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_plugin_api_beyond_loopback_is_refused_at_start() {
    let conf = temp_conf(
        "remote",
        &GOOD.replace(
            "capability_scope = local",
            "capability_scope = local\nkuryr_uri = http://0.0.0.0:23799\nplugin_socket =",
        ),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kuryr"))
        .arg("--config-file")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to serve the plugin API on 0.0.0.0:23799")
            && err.contains("allow_remote_api = true"),
        "{err}"
    );
    assert!(!err.contains("s3cret-value"));
}
