//! The TCP listener: refused beyond loopback unless allowed; HTTPS with
//! `enable_ssl`, checked with a test CA (a client trusting it gets
//! `Plugin.Activate`, one trusting another CA does not get through).

use std::sync::Arc;

use kuryr_openstack::fake::FakeNeutron;
use kuryr_test_support::tls::{ServerCert, TestCa, connect};
use kuryr_test_support::unique;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::binding::Binder;
use crate::driver::DriverConfig;

#[tokio::test]
async fn plain_tcp_beyond_loopback_is_refused_unless_allowed() {
    let err = bind_tcp("0.0.0.0", 0, false).await.unwrap_err();
    assert!(matches!(err, ServerError::Remote { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("0.0.0.0") && text.contains("allow_remote_api = true"),
        "the error says how to allow it: {text}"
    );
    bind_tcp("0.0.0.0", 0, true)
        .await
        .expect("allowed explicitly");
    bind_tcp("127.0.0.1", 0, false)
        .await
        .expect("loopback needs no permission");
    bind_tcp("::1", 0, false)
        .await
        .expect("IPv6 loopback needs no permission");
}

/// The certificate files a deployment names in `ssl_cert_file` and
/// `ssl_key_file`, in a scratch directory removed on drop.
struct CertFiles {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl CertFiles {
    fn write(cert: &ServerCert) -> CertFiles {
        let dir = std::env::temp_dir().join(unique("kuryr-tls-"));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, &cert.cert_pem).unwrap();
        std::fs::write(&key_path, &cert.key_pem).unwrap();
        CertFiles {
            dir,
            cert: cert_path,
            key: key_path,
        }
    }
}

impl Drop for CertFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Serve the plugin API over HTTPS on a free loopback port.
async fn serve_https(
    files: &CertFiles,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let acceptor = tls::acceptor(&files.cert, &files.key).expect("certificate and key");
    let listener = bind_tcp("127.0.0.1", 0, false).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = tls::TlsListener::new(listener, acceptor).unwrap();
    let driver = Driver::new(
        FakeNeutron::new().client(),
        DriverConfig::default(),
        Binder::Noop,
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(
        Arc::new(driver),
        None,
        Some(TcpListen::Tls(tls)),
        async move {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}

const ACTIVATE: &[u8] =
    b"POST /Plugin.Activate HTTP/1.1\r\nHost: kuryr\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn https_is_served_with_the_configured_certificate() {
    let ca = TestCa::new("kuryr test CA");
    let files = CertFiles::write(&ca.server_cert());
    let (addr, _stop) = serve_https(&files).await;

    let mut tls = connect(&ca.connector(), addr)
        .await
        .expect("a client trusting the CA connects");
    tls.write_all(ACTIVATE).await.unwrap();
    let mut reply = Vec::new();
    tls.read_to_end(&mut reply).await.unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply.contains(r#""Implements":["NetworkDriver","IpamDriver"]"#),
        "{reply}"
    );

    let other = TestCa::new("another CA");
    let err = connect(&other.connector(), addr)
        .await
        .expect_err("a client trusting another CA is refused");
    assert!(
        err.to_string().contains("UnknownIssuer"),
        "the failure names the certificate problem: {err}"
    );

    // Plain HTTP to the HTTPS port gets no plugin reply.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain.write_all(ACTIVATE).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        plain.read_to_end(&mut got),
    )
    .await;
    assert!(!String::from_utf8_lossy(&got).contains("Implements"));
}

#[test]
fn missing_or_wrong_certificate_files_are_named() {
    let ca = TestCa::new("kuryr test CA");
    let files = CertFiles::write(&ca.server_cert());
    let error = |cert: &Path, key: &Path| match tls::acceptor(cert, key) {
        Ok(_) => panic!("{} and {} accepted", cert.display(), key.display()),
        Err(e) => e.to_string(),
    };
    let err = error(Path::new("/nonexistent/cert.pem"), &files.key);
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    // The key file given as the certificate: no certificate in it.
    let err = error(&files.key, &files.key);
    assert!(
        err.contains("key.pem") && err.contains("no certificate"),
        "{err}"
    );
    let err = error(&files.cert, &files.cert);
    assert!(err.contains("no usable private key"), "{err}");
}

/// Serve plain HTTP on a free loopback port with these limits.
async fn serve_tcp(limits: Limits) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = bind_tcp("127.0.0.1", 0, false).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let driver = Driver::new(
        FakeNeutron::new().client(),
        DriverConfig::default(),
        Binder::Noop,
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_with(
        Arc::new(driver),
        None,
        Some(TcpListen::Plain(listener)),
        async move {
            let _ = stopped.await;
        },
        limits,
    ));
    (addr, stop)
}

/// Send `request` on a new connection; what came back within 5 s.
async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = conn.write_all(request).await;
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        conn.read_to_end(&mut reply),
    )
    .await;
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test]
async fn a_body_past_the_limit_is_refused_with_413() {
    let limits = Limits {
        max_body: 1000,
        ..Limits::default()
    };
    let (addr, _stop) = serve_tcp(limits).await;
    let body = format!("{{\"NetworkID\": \"{}\"}}", "a".repeat(2000));
    let request = format!(
        "POST /NetworkDriver.DeleteNetwork HTTP/1.1\r\nHost: k\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let reply = exchange(addr, request.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(
        reply.contains(r#"{"Err":"request body larger than 1000 bytes"}"#),
        "{reply}"
    );
    // Within the limit, the same call is parsed (and refused for its ID).
    let request = "POST /NetworkDriver.DeleteNetwork HTTP/1.1\r\nHost: k\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{\"NetworkID\":\"x\"}";
    let reply = exchange(addr, request.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let limits = Limits {
        header_read_timeout: std::time::Duration::from_millis(300),
        ..Limits::default()
    };
    let (addr, _stop) = serve_tcp(limits).await;
    let started = std::time::Instant::now();
    let reply = exchange(addr, b"POST /Plugin.Activate HTTP/1.1\r\nHost: k\r\n").await;
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(3),
        "closed after {took:?}: {reply}"
    );
    assert!(!reply.contains("Implements"), "{reply}");
}

#[tokio::test]
async fn the_tcp_listener_serves_a_bounded_number_of_connections() {
    let limits = Limits {
        max_tcp_connections: 2,
        ..Limits::default()
    };
    let (addr, _stop) = serve_tcp(limits).await;
    // Two idle clients take both places.
    let idle1 = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _idle2 = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let waiting = tokio::spawn(exchange(addr, ACTIVATE));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a third connection is not served yet"
    );
    drop(idle1);
    let reply = waiting.await.unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "served once a place is free: {reply}"
    );
}
