//! TLS to Keystone, against the lab's real Keystone behind an in-process
//! TLS proxy (a test CA made with rcgen; the lab serves plain http): the
//! right `cafile` passes, a wrong one fails with an error naming the
//! certificate problem. And token renewal: the lab's token lifetime cannot
//! be shortened, so `reauth_margin` makes every token look about to
//! expire, and every call renews it; no request fails for it.

use std::net::SocketAddr;
use std::time::Duration;

use kuryr_openstack::{Error, Neutron, Query, Session, SessionConfig};
use kuryr_test_support::tls::{TestCa, tls_proxy};
use kuryr_test_support::{account, auth_url, password_credential, unique};

/// The lab's Keystone as `host:port`.
fn keystone_addr() -> SocketAddr {
    let url = url::Url::parse(&auth_url()).expect("OS_AUTH_URL");
    let host = url.host_str().expect("a host");
    let port = url.port_or_known_default().expect("a port");
    format!("{host}:{port}").parse().expect("an IP address")
}

struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(unique("kuryr-tls-"));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A session of the lab's `kuryr` account through `proxy`, trusting
/// `cafile` (`None`: the system's roots).
fn session_via(proxy: SocketAddr, cafile: Option<std::path::PathBuf>) -> SessionConfig {
    let a = account("kuryr");
    let mut cfg = SessionConfig::new(
        format!("https://{proxy}/v3"),
        password_credential(&a, &a.password),
    );
    cfg.tls.cafile = cafile;
    cfg
}

#[tokio::test]
async fn keystone_over_tls_passes_with_its_ca_and_fails_clearly_without() {
    let ca = TestCa::new("kuryr test CA");
    let proxy = tls_proxy(&ca.server_cert(), keystone_addr()).await;
    let dir = Scratch::new();
    let right = ca.write(&dir.0, "ca.pem");
    let wrong = TestCa::new("some other CA").write(&dir.0, "other.pem");

    let s = Session::new(session_via(proxy, Some(right))).unwrap();
    let token = s
        .token()
        .await
        .expect("a token through TLS with the right CA");
    assert!(token.project_id.is_some());
    Neutron::new(s)
        .list_networks(&Query::new().eq("name", "no-such-net"))
        .await
        .expect("Neutron with that token");

    let password = account("kuryr").password;
    for (what, cafile) in [("the wrong CA", Some(wrong)), ("the system roots", None)] {
        let err = Session::new(session_via(proxy, cafile))
            .unwrap()
            .token()
            .await
            .expect_err(what);
        assert!(matches!(err, Error::Transport { .. }), "{what}: {err:?}");
        let text = err.to_string();
        assert!(
            text.contains("invalid peer certificate") && text.contains("UnknownIssuer"),
            "{what}: the error names the certificate problem, not only \"error sending request\": {text}"
        );
        assert!(!text.contains(&password), "{text}");
    }
}

#[tokio::test]
async fn renewing_the_token_on_every_call_costs_no_failed_request() {
    let ca = TestCa::new("kuryr test CA");
    let proxy = tls_proxy(&ca.server_cert(), keystone_addr()).await;
    let dir = Scratch::new();
    let mut cfg = session_via(proxy, Some(ca.write(&dir.0, "ca.pem")));
    // Every token looks about to expire: each call renews it first.
    cfg.reauth_margin = Duration::from_secs(100 * 365 * 24 * 3600);
    let s = Session::new(cfg).unwrap();
    let n = Neutron::new(s.clone());
    let q = Query::new().eq("name", "no-such-net");
    for _ in 0..3 {
        n.list_networks(&q)
            .await
            .expect("a call with a renewed token");
    }
    // Concurrent callers share a renewal and none of them fails.
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let n = n.clone();
            let q = q.clone();
            tokio::spawn(async move { n.list_networks(&q).await.map(|_| ()) })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("a concurrent call");
    }
    let snap = s.stats().snapshot();
    let issued = &snap.ops["keystone.issue_token"];
    let listed = &snap.ops["neutron.list_networks"];
    // One token for the catalog, one per sequential call; concurrent
    // callers share one renewal rather than each sending their own.
    assert!(issued.count >= 5, "{snap:?}");
    assert_eq!(listed.count, 9, "no call was sent twice: {snap:?}");
    assert_eq!(
        (issued.errors, listed.errors),
        (0, 0),
        "no failed request: {snap:?}"
    );
}
