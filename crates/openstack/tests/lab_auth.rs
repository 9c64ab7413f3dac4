//! Keystone authentication against the lab's real Keystone.

use std::time::Duration;

use kuryr_openstack::{
    Credential, DomainRef, Error, Neutron, Query, Scope, Session, SessionConfig, UserRef,
};
use kuryr_test_support::*;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

#[tokio::test]
async fn password_auth_gives_project_token_with_admin_and_catalog() {
    let s = session("kuryr");
    let token = s.token().await.expect("token");
    assert!(token.project_id.is_some());
    assert!(
        token.roles.iter().any(|r| r == "admin"),
        "roles {:?}",
        token.roles
    );
    let url = s.endpoint("network").await.unwrap();
    assert_eq!(url, "http://127.0.0.1:9696");
    // The token is cached: a second call issues nothing.
    let n = Neutron::new(s.clone());
    n.list_networks(&Query::new().eq("name", "no-such-net"))
        .await
        .unwrap();
    n.list_networks(&Query::new().eq("name", "no-such-net"))
        .await
        .unwrap();
    let snap = s.stats().snapshot();
    assert_eq!(snap.ops["keystone.issue_token"].count, 1);
    assert_eq!(snap.ops["neutron.list_networks"].count, 2);
}

#[tokio::test]
async fn bad_password_is_a_clear_auth_error() {
    let a = account("kuryr");
    let s = Session::new(SessionConfig::new(
        auth_url(),
        password_credential(&a, "wrong-password"),
    ))
    .unwrap();
    let err = Neutron::new(s.clone())
        .list_networks(&Query::new())
        .await
        .expect_err("wrong password must fail");
    assert!(matches!(err, Error::Auth(_)), "{err:?}");
    assert_eq!(err.status(), Some(401));
    let text = err.to_string();
    assert!(text.starts_with("keystone authentication failed"), "{text}");
    assert!(!text.contains("wrong-password"), "secret leaked: {text}");
    // Nothing reached Neutron.
    assert_eq!(s.stats().snapshot().neutron_calls(), 0);
}

#[tokio::test]
async fn unreachable_keystone_is_a_transport_error() {
    let a = account("kuryr");
    // Port 9 (discard) on loopback: nothing listens there.
    let s = Session::new(SessionConfig::new(
        "http://127.0.0.1:9/v3",
        password_credential(&a, &a.password),
    ))
    .unwrap();
    let err = s.token().await.expect_err("nothing listens");
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn token_auth_rescopes_an_existing_token() {
    let base = session("kuryr");
    let first = base.token().await.unwrap();
    let a = account("kuryr");
    let cred = Credential::Token {
        token: SecretString::from(first.secret().expose_secret().to_string()),
        scope: Scope::Project {
            id: None,
            name: Some(a.project.clone()),
            domain: DomainRef::default_domain(),
        },
    };
    let s = Session::new(SessionConfig::new(auth_url(), cred)).unwrap();
    let second = s.token().await.unwrap();
    assert_eq!(second.project_id, first.project_id);
    assert_ne!(
        second.secret().expose_secret(),
        first.secret().expose_secret()
    );
    Neutron::new(s)
        .list_networks(&Query::new().eq("name", "x"))
        .await
        .unwrap();
}

#[tokio::test]
async fn application_credential_by_id_and_by_name() {
    let demo = session("demo");
    let token = demo.token().await.unwrap();
    let user_id = token.user_id.clone();
    let name = unique("kuryr-test-appcred");
    let keystone = demo.endpoint("identity").await.unwrap();
    let created = demo
        .call(
            "keystone.create_application_credential",
            &keystone,
            Method::POST,
            &format!("/users/{user_id}/application_credentials"),
            &[],
            Some(&json!({"application_credential": {"name": name, "description": "kuryr test"}})),
        )
        .await
        .expect("create application credential")
        .json("keystone", "application credential")
        .unwrap();
    let id = created["application_credential"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = created["application_credential"]["secret"]
        .as_str()
        .unwrap()
        .to_string();

    let by_id = Credential::ApplicationCredential {
        id: Some(id.clone()),
        name: None,
        user: None,
        secret: SecretString::from(secret.clone()),
    };
    let s = Session::new(SessionConfig::new(auth_url(), by_id)).unwrap();
    let t = s.token().await.expect("app credential by id");
    assert_eq!(t.project_id, token.project_id);
    Neutron::new(s)
        .list_networks(&Query::new().eq("name", "x"))
        .await
        .unwrap();

    let by_name = Credential::ApplicationCredential {
        id: None,
        name: Some(name.clone()),
        user: Some(UserRef {
            id: Some(user_id.clone()),
            name: None,
            domain: DomainRef::default(),
        }),
        secret: SecretString::from(secret.clone()),
    };
    let s = Session::new(SessionConfig::new(auth_url(), by_name)).unwrap();
    s.token().await.expect("app credential by name");

    let wrong = Credential::ApplicationCredential {
        id: Some(id.clone()),
        name: None,
        user: None,
        secret: SecretString::from("not-the-secret".to_string()),
    };
    let err = Session::new(SessionConfig::new(auth_url(), wrong))
        .unwrap()
        .token()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Auth(_)), "{err:?}");

    demo.call(
        "keystone.delete_application_credential",
        &keystone,
        Method::DELETE,
        &format!("/users/{user_id}/application_credentials/{id}"),
        &[],
        None,
    )
    .await
    .expect("delete application credential");
}

#[tokio::test]
async fn revoked_token_is_replaced_transparently() {
    let s = session("kuryr");
    let keystone = s.endpoint("identity").await.unwrap();
    let user_id = s.token().await.unwrap().user_id.clone();
    let victim = s.token().await.unwrap();

    // Revoke it with another session, as an operator would.
    let admin = session("admin");
    let admin_token = admin.token().await.unwrap();
    let resp = reqwest::Client::new()
        .delete(format!("{keystone}/auth/tokens"))
        .header("X-Auth-Token", admin_token.secret().expose_secret())
        .header("X-Subject-Token", victim.secret().expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204, "revocation failed");

    // Keystone itself rejects the revoked token with 401; the session must
    // get a new one and succeed.
    let resp = s
        .call(
            "keystone.get_user",
            &keystone,
            Method::GET,
            &format!("/users/{user_id}"),
            &[],
            None,
        )
        .await
        .expect("call after revocation");
    assert_eq!(resp.status.as_u16(), 200);
    let snap = s.stats().snapshot();
    assert_eq!(snap.ops["keystone.issue_token"].count, 2, "{snap:?}");
    assert_eq!(
        snap.ops["keystone.get_user"].count, 2,
        "one 401, one retry: {snap:?}"
    );
    assert_eq!(snap.ops["keystone.get_user"].errors, 1);
    let fresh = s.token().await.unwrap();
    assert_ne!(
        fresh.secret().expose_secret(),
        victim.secret().expose_secret()
    );
}

#[tokio::test]
async fn token_near_expiry_is_renewed_before_use() {
    let a = account("kuryr");
    let mut cfg = SessionConfig::new(auth_url(), password_credential(&a, &a.password));
    // Every token looks about to expire: each use must renew it.
    cfg.reauth_margin = Duration::from_secs(100 * 365 * 24 * 3600);
    let s = Session::new(cfg).unwrap();
    let n = Neutron::new(s.clone());
    n.list_networks(&Query::new().eq("name", "x"))
        .await
        .unwrap();
    n.list_networks(&Query::new().eq("name", "x"))
        .await
        .unwrap();
    assert_eq!(s.stats().snapshot().ops["keystone.issue_token"].count, 3);
}

#[tokio::test]
async fn catalog_region_and_interface_are_honoured() {
    let a = account("kuryr");
    let mut cfg = SessionConfig::new(auth_url(), password_credential(&a, &a.password));
    cfg.region = Some("NoSuchRegion".into());
    let err = Session::new(cfg)
        .unwrap()
        .endpoint("network")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoEndpoint { .. }), "{err:?}");
    assert!(err.to_string().contains("NoSuchRegion"), "{err}");

    let mut cfg = SessionConfig::new(auth_url(), password_credential(&a, &a.password));
    cfg.region = Some("RegionOne".into());
    cfg.interface = "internalURL".parse().unwrap();
    assert_eq!(
        Session::new(cfg)
            .unwrap()
            .endpoint("network")
            .await
            .unwrap(),
        "http://127.0.0.1:9696"
    );
}

#[tokio::test]
async fn bad_ca_file_is_a_config_error() {
    let a = account("kuryr");
    let mut cfg = SessionConfig::new(auth_url(), password_credential(&a, &a.password));
    cfg.tls.cafile = Some("/nonexistent/ca.pem".into());
    let err = Session::new(cfg).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/ca.pem"));
}

/// A TCP proxy to the lab's Keystone that can be made to stall: it then
/// accepts connections and answers nothing, as a stopped Keystone does.
async fn stallable_keystone() -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = url::Url::parse(&auth_url()).unwrap();
    let upstream = format!(
        "{}:{}",
        upstream.host_str().unwrap(),
        upstream.port_or_known_default().unwrap()
    );
    let stalled = Arc::new(AtomicBool::new(false));
    let flag = stalled.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let stall = flag.load(Ordering::Relaxed);
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if stall {
                    // Hold the connection, read nothing, answer nothing.
                    tokio::time::sleep(Duration::from_secs(300)).await;
                    drop(client);
                    return;
                }
                if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (format!("http://{addr}/v3"), stalled)
}

#[tokio::test]
async fn a_stalled_keystone_slows_no_call_while_the_token_is_valid() {
    let a = account("kuryr");
    let (url, stalled) = stallable_keystone().await;
    let mut cfg = SessionConfig::new(url, password_credential(&a, &a.password));
    // Every token looks due for renewal; requests give up after 3 s.
    cfg.reauth_margin = Duration::from_secs(100 * 365 * 24 * 3600);
    cfg.timeout = Some(Duration::from_secs(3));
    let s = Session::new(cfg).unwrap();
    let n = Neutron::new(s.clone());
    let q = Query::new().eq("name", "no-such-net");
    n.list_networks(&q).await.expect("a first call");
    stalled.store(true, std::sync::atomic::Ordering::Relaxed);
    // Renewals stall (and fail after 3 s); the still-valid token serves,
    // and concurrent callers do not queue behind the renewal.
    let started = std::time::Instant::now();
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let n = n.clone();
            let q = q.clone();
            tokio::spawn(async move { n.list_networks(&q).await.map(|_| ()) })
        })
        .collect();
    for call in calls {
        call.await
            .unwrap()
            .expect("a call with the still-valid token");
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "calls waited for the stalled renewal: {took:?}"
    );
    // The renewal failed; the next calls still work.
    tokio::time::sleep(Duration::from_secs(4)).await;
    n.list_networks(&q).await.expect("after the failed renewal");
    let issued = s.stats().snapshot().ops["keystone.issue_token"];
    assert!(issued.errors >= 1, "a renewal failed: {issued:?}");
}
