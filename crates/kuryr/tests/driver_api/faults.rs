//! The fault suite, injected-error half: every step-boundary fault point
//! of the seven handlers (CreateNetwork, RequestAddress, CreateEndpoint,
//! Join, DeleteEndpoint, ReleaseAddress, DeleteNetwork) fails its call
//! once. dockerd reacts as it does ([`common::dockerd`]), the user retries
//! the failed command, and afterwards no object of the driver is left
//! that no Docker object explains ([`common::explain`]). The SIGKILL half
//! is `tests/alone_faults.rs` (a real daemon killed at each point).
//!
//! Each driver has a host ID of its own, so no other test's ports look
//! like this one's.

use kuryr::driver::{FAULT_POINTS, FaultAction, Faults};

use super::*;
use crate::common::dockerd::Dockerd;
use crate::common::explain::{DockerView, Scope, unexplained};

/// DeleteNetwork passes these only when it gives an adopted (user's)
/// network back rather than deleting one it made.
const ADOPTED_ONLY: &[&str] = &[
    "DeleteNetwork.subnets_deleted",
    "DeleteNetwork.tags_removed",
];

/// One case: the Docker commands of a container's life on a network, with
/// `point` failing once. Returns what went wrong, if anything.
async fn case(lab: &Lab, point: &str, k: u32) -> Result<(), String> {
    let host = format!("kt-fault-{:x}", common::env::random_u64());
    let faults = std::sync::Arc::new(Faults::default());
    faults.arm(point, FaultAction::Error);
    let config = kuryr::driver::DriverConfig {
        host_id: host.clone(),
        faults: Some(faults),
        ..lab.config()
    };
    let scope = Scope::from_now(&host);
    let d = lab.driver_with(config, kuryr::binding::Binder::Noop).await;
    let mut docker = Dockerd::new(lab.api(&d));
    let cidr = lab.cidr4(k);
    let generic = if ADOPTED_ONLY.contains(&point) {
        let user = user_network(lab, &cidr).await;
        json!({"neutron.net.uuid": user.id})
    } else {
        json!({})
    };
    let net = match docker.network_create(&cidr, generic.clone()).await {
        Some(net) => net,
        None => docker
            .network_create(&cidr, generic)
            .await
            .ok_or("docker network create failed twice")?,
    };
    let ep = match docker.run(&net).await {
        Some(ep) => ep,
        None => docker.run(&net).await.ok_or("docker run failed twice")?,
    };
    docker.rm(&net, &ep).await;
    if !docker.network_rm(&net).await && !docker.network_rm(&net).await {
        return Err(format!(
            "docker network rm failed twice: {:?}",
            docker.errors
        ));
    }
    let injected = format!("injected fault at {point}");
    match docker.errors.as_slice() {
        [one] if one.contains(&injected) => {}
        other => return Err(format!("expected one error, {injected:?}: {other:?}")),
    }
    let left = unexplained(&lab.neutron, &DockerView::default(), &scope).await;
    if !left.is_empty() {
        return Err(format!("left unexplained: {left:#?}"));
    }
    Ok(())
}

/// Every fault point of `handler` in turn, each in a case of its own;
/// all are reported.
async fn every_point_of(handler: &str) {
    let points: Vec<&str> = FAULT_POINTS
        .iter()
        .copied()
        .filter(|p| p.split('.').next() == Some(handler))
        .collect();
    assert!(!points.is_empty(), "{handler} has fault points");
    lab::run(async |lab: &Lab| {
        let mut failed = Vec::new();
        for (k, point) in points.iter().enumerate() {
            let started = std::time::Instant::now();
            let outcome = case(lab, point, k as u32).await;
            println!(
                "{point}: {} ({} ms)",
                if outcome.is_ok() { "ok" } else { "FAILED" },
                started.elapsed().as_millis()
            );
            if let Err(e) = outcome {
                failed.push(format!("{point}: {e}"));
            }
        }
        assert!(failed.is_empty(), "{failed:#?}");
        lab.assert_clean().await;
    })
    .await;
}

#[tokio::test]
async fn create_network_faults_leave_nothing_unexplained() {
    every_point_of("CreateNetwork").await;
}

#[tokio::test]
async fn request_address_faults_leave_nothing_unexplained() {
    every_point_of("RequestAddress").await;
}

#[tokio::test]
async fn create_endpoint_faults_leave_nothing_unexplained() {
    every_point_of("CreateEndpoint").await;
}

#[tokio::test]
async fn join_faults_leave_nothing_unexplained() {
    every_point_of("Join").await;
}

#[tokio::test]
async fn delete_endpoint_faults_leave_nothing_unexplained() {
    every_point_of("DeleteEndpoint").await;
}

#[tokio::test]
async fn release_address_faults_leave_nothing_unexplained() {
    every_point_of("ReleaseAddress").await;
}

#[tokio::test]
async fn delete_network_faults_leave_nothing_unexplained() {
    every_point_of("DeleteNetwork").await;
}

/// The seven handlers above are every handler with fault points, with
/// the ready-port worker's, which `ready.rs` fails.
#[test]
fn the_suite_covers_every_fault_point() {
    let handlers = [
        "ReadyPort",
        "CreateNetwork",
        "RequestAddress",
        "CreateEndpoint",
        "Join",
        "DeleteEndpoint",
        "ReleaseAddress",
        "DeleteNetwork",
    ];
    for point in FAULT_POINTS {
        let handler = point.split('.').next().unwrap();
        assert!(handlers.contains(&handler), "{point} is in no test");
    }
}
