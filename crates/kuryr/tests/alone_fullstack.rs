//! kuryr-libnetwork's own fullstack tests against this driver: the 10
//! tests of `kuryr_libnetwork.tests.fullstack` (PyPI 18.0.0), through the
//! lab's real dockerd, with this build's `kuryr` as the `kuryr` driver.
//!
//! `lab/fullstack` does the running (a DHCP agent, Docker's API on
//! 127.0.0.1:2375, the `kuryr/busybox` image, admin credentials) and the
//! cleaning up. This test requires all 10 to pass, and checks that
//! afterwards the DHCP agent left nothing: no agent record, no DHCP port,
//! no `qdhcp-` namespace. It restarts the lab's driver and runs a DHCP
//! agent that would give every other test's network a DHCP port: an
//! `alone_*` binary (run-tests runs those on their own).
//!
//! Needs the lab and root: `eval "$(lab/env kuryr)"; cargo nextest run -p kuryr --test alone_fullstack`.

mod common;

use std::process::Command;

use common::env::{output_text, repo_root};
use common::netns::require_root;
use kuryr_openstack::Query;

#[tokio::test]
async fn kuryr_libnetworks_fullstack_tests_pass_against_ours() {
    require_root("lab/fullstack");
    let out = Command::new(repo_root().join("lab/fullstack"))
        .arg(env!("CARGO_BIN_EXE_kuryr"))
        .output()
        .expect("run lab/fullstack");
    let text = output_text(&out);
    println!("{text}");
    assert!(out.status.success(), "lab/fullstack failed:\n{text}");
    assert!(
        text.lines()
            .any(|l| l.trim() == "Ran 10 tests" || l.starts_with("Ran 10 tests in")),
        "expected all 10 upstream tests to run:\n{text}"
    );
    assert!(
        text.lines().any(|l| l.trim() == "OK"),
        "expected OK:\n{text}"
    );

    // The DHCP agent is gone, with everything it made.
    let admin = kuryr_test_support::neutron("admin");
    let dhcp_ports = admin
        .list_ports(&Query::new().eq("device_owner", "network:dhcp"))
        .await
        .expect("list DHCP ports");
    assert!(dhcp_ports.is_empty(), "DHCP ports left: {dhcp_ports:#?}");
    let agents = admin
        .list_agents(&Query::new().eq("binary", "neutron-dhcp-agent"))
        .await
        .expect("list agents");
    assert!(agents.is_empty(), "DHCP agent records left: {agents:#?}");
    let namespaces = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let left: Vec<String> = String::from_utf8_lossy(&namespaces.stdout)
        .lines()
        .filter(|l| l.starts_with("qdhcp-"))
        .map(str::to_string)
        .collect();
    assert!(left.is_empty(), "qdhcp namespaces left: {left:?}");
}
