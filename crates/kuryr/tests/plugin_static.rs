//! The managed plugin's binary on its own: the statically linked `kuryr`
//! (`packaging/build-static`) in a root file system like the plugin's (the
//! binary, the CA bundle, the node's `/etc/hosts` and `/etc/resolv.conf` as
//! dockerd mounts them into a host-network plugin, and kuryr.conf), run
//! with `chroot`: no shared library, no NSS module. It authenticates to
//! the lab's Keystone by host name (`keystone.kuryr-lab`, an /etc/hosts
//! entry `lab/up` adds) and calls Neutron (`kuryr node check`'s `keystone`
//! and `neutron` lines). Without the /etc/hosts entry the same run fails,
//! so the name is resolved from the file in that root.
//!
//! Needs root and the lab: `eval "$(lab/env kuryr)"`.

mod common;

use std::path::Path;
use std::process::Command;

use common::env::{TempDir, output_text, var};
use common::netns;
use common::plugin::static_kuryr;
use kuryr::paths;

/// A root like the plugin's, with `hosts` and `resolv.conf` as its /etc.
fn plugin_like_root(hosts: &str, resolv: &str) -> TempDir {
    let dir = TempDir::new("kuryr-static-root-");
    let put = |rel: &str, contents: &[u8], mode: u32| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    put(
        &paths::PLUGIN_ENTRYPOINT[1..],
        &std::fs::read(static_kuryr()).unwrap(),
        0o755,
    );
    if let Ok(ca) = std::fs::read(paths::SYSTEM_CA_BUNDLE) {
        put(&paths::SYSTEM_CA_BUNDLE[1..], &ca, 0o644);
    }
    put("etc/hosts", hosts.as_bytes(), 0o644);
    put("etc/resolv.conf", resolv.as_bytes(), 0o644);
    let conf = format!(
        "[DEFAULT]\nhost = static-test\n\n[neutron]\nauth_url = {}\nauth_type = password\n\
         username = {}\npassword = {}\nproject_name = {}\nuser_domain_name = Default\n\
         project_domain_name = Default\nregion_name = {}\nendpoint_type = public\n",
        var("KURYR_LAB_AUTH_URL_BY_NAME"),
        var("KURYR_LAB_KURYR_USERNAME"),
        var("KURYR_LAB_KURYR_PASSWORD"),
        var("KURYR_LAB_KURYR_PROJECT"),
        var("OS_REGION_NAME"),
    );
    put(&paths::KURYR_CONF[1..], conf.as_bytes(), 0o600);
    std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
    dir
}

/// `kuryr node check` in `root`: its lines.
fn node_check_in(root: &Path) -> String {
    let out = Command::new("chroot")
        .arg(root)
        .args([
            paths::PLUGIN_ENTRYPOINT,
            "--config-file",
            paths::KURYR_CONF,
            "node",
            "check",
            "--docker-host",
            "unix:///nonexistent/docker.sock",
        ])
        .output()
        .expect("run chroot");
    output_text(&out)
}

#[test]
fn the_static_binary_reaches_keystone_by_name_without_nss_modules() {
    assert!(netns::is_root(), "this test needs root (chroot)");
    let name = var("KURYR_LAB_AUTH_URL_BY_NAME");
    let host = url::Url::parse(&name)
        .unwrap()
        .host_str()
        .unwrap()
        .to_string();
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    assert!(
        hosts
            .lines()
            .any(|l| l.split_whitespace().skip(1).any(|w| w == host)),
        "/etc/hosts has no entry for {host}: run lab/up (it adds one)"
    );
    let bin = static_kuryr();
    let size = std::fs::metadata(&bin).unwrap().len();
    println!(
        "plugin_static: {} is static, {:.1} MB",
        bin.display(),
        size as f64 / 1e6
    );

    // The node's files, as dockerd mounts them into the plugin.
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let root = plugin_like_root(&hosts, &resolv);
    assert!(!root.join("lib").exists() && !root.join("usr/lib").exists());
    let text = node_check_in(root.path());
    println!("{text}");
    assert!(
        text.lines().any(|l| l.starts_with("OK   keystone: ")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("OK   neutron: ")),
        "{text}"
    );

    // Without the entry: the name does not resolve (a DNS server that
    // refuses at once stands in for the node's).
    let without: String = hosts
        .lines()
        .filter(|l| !l.split_whitespace().skip(1).any(|w| w == host))
        .map(|l| format!("{l}\n"))
        .collect();
    let root = plugin_like_root(
        &without,
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    );
    let text = node_check_in(root.path());
    let keystone = text
        .lines()
        .find(|l| l.contains(" keystone: "))
        .unwrap_or_else(|| panic!("no keystone line: {text}"));
    assert!(keystone.starts_with("FAIL keystone: "), "{text}");
    println!("plugin_static: without the /etc/hosts entry: {keystone}");
}
