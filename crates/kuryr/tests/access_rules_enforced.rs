//! The generated access rules, enforced by a real Neutron: an application
//! credential restricted to `kuryr template access-rules` may make the
//! driver's calls and is refused everything else (`PUT /v2.0/networks/<id>`
//! above all, which would let a stolen credential turn a network shared).
//!
//! The lab's neutron-server has no `[keystone_authtoken] service_type`, so
//! it refuses every restricted token (see docs/security.md). This test
//! leaves it alone and starts an API-only Neutron of its own
//! (`neutron-api`, the same code, the lab's database and Keystone) on a
//! free loopback port with `service_type = network` added, and stops it at
//! the end. The credential and the network it makes are deleted.

mod common;

use std::process::Stdio;
use std::time::Duration;

use axum::http::Method;
use common::env::{TempDir, eventually, lab_dir, unique};
use kuryr::cluster::access_rules::{driver_rules, to_json};
use kuryr_openstack::neutron::NetworkCreate;
use kuryr_openstack::{Credential, Neutron, Query, Session, SessionConfig, TagResource};
use kuryr_test_support::{auth_url, session};
use secrecy::SecretString;
use serde_json::json;

/// An API-only Neutron with access rules enforced, killed on drop.
struct EnforcingNeutron {
    url: String,
    _child: tokio::process::Child,
    _dir: TempDir,
}

async fn enforcing_neutron() -> EnforcingNeutron {
    let dir = TempDir::new("kuryr-ar-");
    let overlay = dir.join("service_type.conf");
    std::fs::write(&overlay, "[keystone_authtoken]\nservice_type = network\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let etc = format!("{}/etc/neutron", lab_dir());
    let log = dir.join("neutron-api.log");
    let child = tokio::process::Command::new("neutron-api")
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--"])
        .args(["--config-file", &format!("{etc}/neutron.conf")])
        .args(["--config-file", &format!("{etc}/ml2_conf.ini")])
        .arg("--config-file")
        .arg(&overlay)
        .arg("--log-file")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("neutron-api (python3-neutron, installed by lab/up)");
    let url = format!("http://127.0.0.1:{port}");
    // It listens once its application is loaded.
    eventually(
        "neutron-api to listen",
        Duration::from_secs(90),
        || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        },
    )
    .await;
    EnforcingNeutron {
        url,
        _child: child,
        _dir: dir,
    }
}

/// Create an application credential of the lab's `kuryr` account with the
/// generated rules; returns (id, secret).
async fn restricted_credential(admin: &Session, user_id: &str) -> (String, String) {
    let keystone = admin.endpoint("identity").await.unwrap();
    let body = json!({"application_credential": {
        "name": unique("kuryr-test-rules-"),
        "description": "kuryr access rules test",
        "access_rules": to_json(&driver_rules()),
    }});
    let created = admin
        .call(
            "keystone.create_application_credential",
            &keystone,
            Method::POST,
            &format!("/users/{user_id}/application_credentials"),
            &[],
            Some(&body),
        )
        .await
        .expect("create the restricted application credential")
        .json("keystone", "application credential")
        .unwrap();
    let ac = &created["application_credential"];
    (
        ac["id"].as_str().unwrap().to_string(),
        ac["secret"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_credential_with_the_generated_rules_makes_the_drivers_calls_and_no_other() {
    let owner = session("kuryr");
    let user_id = owner.token().await.unwrap().user_id.clone();
    let neutron = enforcing_neutron().await;
    let (id, secret) = restricted_credential(&owner, &user_id).await;

    let mut config = SessionConfig::new(
        auth_url(),
        Credential::ApplicationCredential {
            id: Some(id.clone()),
            name: None,
            user: None,
            secret: SecretString::from(secret),
        },
    );
    config
        .endpoint_overrides
        .insert("network".into(), neutron.url.clone());
    let n = Neutron::new(Session::new(config).unwrap());

    let outcome = async {
        // Allowed: the driver's calls.
        n.list_extensions().await.expect("GET /v2.0/extensions");
        n.list_networks(&Query::new().eq("name", "no-such-net"))
            .await
            .expect("GET /v2.0/networks");
        let net = n
            .create_network(&NetworkCreate {
                name: Some(unique("kuryr-test-rules-")),
                ..Default::default()
            })
            .await
            .expect("POST /v2.0/networks");
        let tagged = n
            .replace_tags(TagResource::Network, &net.id, &["kuryr.test"])
            .await;
        // Refused: what the old rules allowed and the driver never sends.
        let put = n.update_network(&net.id, &json!({"shared": true})).await;
        let agents = n.list_agents(&Query::new()).await;
        let deleted = n.delete_network(&net.id).await;
        (net.id, tagged, put, agents, deleted)
    }
    .await;

    // Clean up before judging.
    let keystone = owner.endpoint("identity").await.unwrap();
    owner
        .call(
            "keystone.delete_application_credential",
            &keystone,
            Method::DELETE,
            &format!("/users/{user_id}/application_credentials/{id}"),
            &[],
            None,
        )
        .await
        .expect("delete the application credential");
    let (net_id, tagged, put, agents, deleted) = outcome;
    if deleted.is_err() {
        let _ = common::env::neutron().delete_network(&net_id).await;
    }

    tagged.expect("PUT /v2.0/networks/<id>/tags");
    deleted.expect("DELETE /v2.0/networks/<id>");
    for (what, result) in [
        ("PUT /v2.0/networks/<id>", put.map(|_| ())),
        ("GET /v2.0/agents", agents.map(|_| ())),
    ] {
        let err = result.expect_err(what);
        assert!(
            matches!(err.status(), Some(401 | 403)),
            "{what} must be refused with 401/403: {err}"
        );
    }
    let network = common::env::neutron().get_network(&net_id).await;
    assert!(
        network.is_err_and(|e| e.is_not_found()),
        "the network is gone"
    );
}
