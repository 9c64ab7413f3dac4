//! Redirects are never followed: a 307/308 to the token POST (or to a
//! Neutron call) would replay the password, secret or token to wherever
//! it points, plain http included. Tiny HTTP servers on loopback stand in
//! for Keystone, Neutron and the redirect target; no lab needed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kuryr_openstack::{
    Credential, DomainRef, Error, Neutron, Query, Scope, Session, SessionConfig, UserRef,
};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PASSWORD: &str = "pw-that-must-not-travel";

/// One request as the server saw it: head and body.
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: String,
}

/// Read one HTTP/1.1 request (head, then `Content-Length` bytes).
async fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    Some(Seen { head, body })
}

/// A server answering every request with `reply(request)`, recording
/// each one; it runs until the test ends.
async fn serve(
    reply: impl Fn(&Seen) -> String + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let reply = Arc::new(reply);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = log.clone();
            let reply = reply.clone();
            tokio::spawn(async move {
                if let Some(req) = read_request(&mut stream).await {
                    log.lock().unwrap().push(req.clone());
                    let _ = stream.write_all(reply(&req).as_bytes()).await;
                }
                let _ = stream.shutdown().await;
            });
        }
    });
    (url, seen)
}

fn redirect(status: &str, to: &str) -> String {
    format!("HTTP/1.1 {status}\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

fn password() -> Credential {
    Credential::Password {
        user: UserRef {
            id: None,
            name: Some("kuryr".into()),
            domain: DomainRef::default_domain(),
        },
        password: SecretString::from(PASSWORD.to_string()),
        scope: Scope::Project {
            id: None,
            name: Some("kuryr".into()),
            domain: DomainRef::default_domain(),
        },
    }
}

/// The redirect target: anything that reaches it is a leak.
async fn target() -> (String, Arc<Mutex<Vec<Seen>>>) {
    serve(|_| "HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()).await
}

#[tokio::test]
async fn a_redirected_token_request_is_an_error_and_the_password_stays_home() {
    for status in [
        "307 Temporary Redirect",
        "308 Permanent Redirect",
        "302 Found",
    ] {
        let (evil, evil_seen) = target().await;
        let to = format!("{evil}/v3/auth/tokens?leak=1");
        let (keystone, keystone_seen) = serve(move |_| redirect(status, &to)).await;
        let session =
            Session::new(SessionConfig::new(format!("{keystone}/v3"), password())).unwrap();
        let err = session.token().await.unwrap_err();

        let code: u16 = status[..3].parse().unwrap();
        assert_eq!(err.status(), Some(code), "{status}: {err:?}");
        assert_eq!(err.kind(), Some("Redirect"), "{status}: {err:?}");
        let text = err.to_string();
        assert!(
            text.contains("not followed") && text.contains(&format!("{evil}/v3/auth/tokens")),
            "{status}: the error names the target: {text}"
        );
        assert!(
            !text.contains("leak=1"),
            "query strings are not shown: {text}"
        );
        assert!(!text.contains(PASSWORD), "{text}");
        // Keystone got the password (it is the configured URL), the
        // redirect target got nothing at all.
        assert_eq!(keystone_seen.lock().unwrap().len(), 1);
        assert!(keystone_seen.lock().unwrap()[0].body.contains(PASSWORD));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            evil_seen.lock().unwrap().is_empty(),
            "{status}: the redirect was followed: {:?}",
            evil_seen.lock().unwrap()
        );
    }
}

/// A token from a fake Keystone, then Neutron answers 308: the token is
/// not replayed either.
#[tokio::test]
async fn a_redirected_neutron_call_keeps_the_token_home() {
    let token_reply = |_: &Seen| {
        let body = r#"{"token": {"expires_at": "2999-01-01T00:00:00Z", "user": {"id": "u1"}, "project": {"id": "p1"}, "catalog": []}}"#;
        format!(
            "HTTP/1.1 201 Created\r\nX-Subject-Token: tok-that-must-not-travel\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let (keystone, _) = serve(token_reply).await;
    let (evil, evil_seen) = target().await;
    let to = format!("{evil}/v2.0/networks");
    let (neutron, neutron_seen) = serve(move |_| redirect("308 Permanent Redirect", &to)).await;

    let mut config = SessionConfig::new(format!("{keystone}/v3"), password());
    config
        .endpoint_overrides
        .insert("network".into(), neutron.clone());
    let n = Neutron::new(Session::new(config).unwrap());
    let err = n.list_networks(&Query::new()).await.unwrap_err();
    assert!(matches!(err, Error::Api(_)), "{err:?}");
    assert_eq!(err.status(), Some(308));
    assert!(
        err.to_string().contains("GET /networks") && err.to_string().contains(&evil),
        "{err}"
    );
    assert!(!err.to_string().contains("tok-that-must-not-travel"));
    assert_eq!(neutron_seen.lock().unwrap().len(), 1);
    assert!(
        neutron_seen.lock().unwrap()[0]
            .head
            .starts_with("GET /v2.0/networks ")
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(evil_seen.lock().unwrap().is_empty());
}
