//! The plugin API over a real unix socket, spoken the way dockerd speaks it
//! (no Content-Type, empty bodies), plus broken clients. Needs the lab's
//! Neutron (the driver checks it at start) but no dockerd.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use common::env::{TempDir, host, neutron};
use common::http;
use kuryr::binding::Binder;
use kuryr::driver::{Driver, DriverConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

struct Server {
    path: std::path::PathBuf,
    _dir: TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start_server() -> Server {
    let dir = TempDir::new("kuryr-sock-");
    let path = dir.join("plugins/kuryr.sock");
    let driver = Driver::new(
        neutron(),
        DriverConfig {
            host_id: host(),
            ..Default::default()
        },
        Binder::Noop,
    );
    driver.start().await.expect("driver start against the lab");
    let listener = kuryr::server::bind_unix(&path).await.expect("bind");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(kuryr::server::serve(
        Arc::new(driver),
        Some((listener, path.clone())),
        None,
        async move {
            let _ = rx.await;
        },
    ));
    Server {
        path,
        _dir: dir,
        stop: Some(tx),
        task,
    }
}

/// Send raw bytes, read until the server closes; returns (status, body).
async fn raw(path: &std::path::Path, request: &[u8]) -> (u16, String) {
    let (status, body) = http::unix(path, request, Duration::from_secs(10))
        .await
        .expect("the server answers");
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A request as Go's plugin client sends it over a unix socket.
fn docker_request(path: &str, body: &str) -> Vec<u8> {
    http::post(path, body.as_bytes(), "")
}

#[tokio::test]
async fn speaks_dockers_dialect_and_survives_broken_clients() {
    let server = start_server().await;
    let mode = std::fs::metadata(&server.path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "root-only socket");

    let (status, body) = raw(&server.path, &docker_request("/Plugin.Activate", "")).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["Implements"],
        serde_json::json!(["NetworkDriver", "IpamDriver"])
    );

    let (status, body) = raw(
        &server.path,
        &docker_request("/NetworkDriver.GetCapabilities", ""),
    )
    .await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["Scope"].as_str(), v["ConnectivityScope"].as_str()),
        (Some("local"), Some("local"))
    );

    let (status, body) = raw(
        &server.path,
        &docker_request("/IpamDriver.GetCapabilities", ""),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("\"RequiresMACAddress\":false"), "{body}");

    // Malformed JSON: 400 with an Err naming the problem.
    let (status, body) = raw(
        &server.path,
        &docker_request("/NetworkDriver.CreateNetwork", "{\"NetworkID\":"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.starts_with("{\"Err\":\"invalid request"), "{body}");

    // A body shorter than its Content-Length, then a hang-up.
    {
        let mut s = UnixStream::connect(&server.path).await.unwrap();
        s.write_all(b"POST /NetworkDriver.CreateNetwork HTTP/1.1\r\nHost: \r\nContent-Length: 500\r\n\r\n{\"Netw")
            .await
            .unwrap();
        drop(s);
    }
    // Garbage that is not HTTP at all.
    {
        let mut s = UnixStream::connect(&server.path).await.unwrap();
        s.write_all(b"\x00\x01\x02 not http\r\n\r\n").await.unwrap();
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink)).await;
    }

    // Unknown method: 404 JSON (only that makes optional calls optional).
    let (status, body) = raw(
        &server.path,
        &docker_request("/NetworkDriver.NoSuchCall", "{}"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(body.contains("\"Err\""), "{body}");
    // Not POST: 405 JSON.
    let (status, body) = raw(
        &server.path,
        b"GET /Plugin.Activate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 405);
    assert!(body.contains("\"Err\""), "{body}");

    // Still serving after all that.
    let (status, _) = raw(&server.path, &docker_request("/Plugin.Activate", "")).await;
    assert_eq!(status, 200);

    // A second daemon must not steal a live socket.
    let err = kuryr::server::bind_unix(&server.path).await.unwrap_err();
    assert!(err.to_string().contains("already listening"), "{err}");

    let mut server = server;
    let _ = server.stop.take().unwrap().send(());
    tokio::time::timeout(Duration::from_secs(10), &mut server.task)
        .await
        .expect("stops on request")
        .unwrap()
        .unwrap();
    assert!(!server.path.exists(), "socket file removed on shutdown");
}

#[tokio::test]
async fn a_stale_socket_file_is_replaced() {
    let dir = TempDir::new("kuryr-stale-");
    let path = dir.join("kuryr.sock");
    // A socket nobody listens on any more, as a crashed daemon leaves it.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let listener = kuryr::server::bind_unix(&path)
        .await
        .expect("stale socket replaced");
    drop(listener);
}

/// The daemon binary with `conf`, its socket at `socket` (kuryr.conf
/// written into `dir`).
fn start_daemon(dir: &TempDir, conf: &str, socket: &std::path::Path) -> std::process::Child {
    let path = dir.join("kuryr.conf");
    let text = format!("[DEFAULT]\nplugin_socket = {}\n{conf}", socket.display());
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_kuryr"))
        .arg("--config-file")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start kuryr")
}

/// Start-up retries while Neutron cannot be reached: Activate and the
/// capabilities are answered meanwhile, a stateful call gets the reason
/// (not a hang), and SIGTERM takes the socket file away.
#[tokio::test]
async fn calls_are_answered_while_start_up_waits_for_neutron() {
    let dir = TempDir::new("kuryr-starting-");
    let socket = dir.join("kuryr.sock");
    // Nothing listens on port 9: connection refused, retried.
    let conf = "[neutron]\nauth_url = http://127.0.0.1:9/v3\nauth_type = password\n\
                username = kuryr\npassword = x-pass\nproject_name = service\n\
                user_domain_name = Default\nproject_domain_name = Default\n";
    let mut daemon = start_daemon(&dir, conf, &socket);
    common::env::eventually("the socket", Duration::from_secs(10), async || {
        socket.exists().then_some(())
    })
    .await;
    let started = std::time::Instant::now();
    let (status, body) = raw(&socket, &docker_request("/Plugin.Activate", "")).await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(2));
    let pool = r#"{"AddressSpace": "", "Pool": "10.99.0.0/24", "Options": {}, "V6": false}"#;
    // Refused after the start-up wait (10 s), not hanging.
    let request = docker_request("/IpamDriver.RequestPool", pool);
    let (status, body) = http::unix(&socket, &request, Duration::from_secs(20))
        .await
        .expect("an answer within the start-up wait");
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("still starting") && body.contains("keystone"),
        "{body}"
    );
    // SAFETY: kill(2) with SIGTERM on our own child.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();
    assert!(!socket.exists(), "socket file removed at exit");
}

/// A start-up that fails for good (a wrong password) ends the daemon with
/// an error and leaves no socket file behind.
#[tokio::test]
async fn a_failed_start_up_leaves_no_socket() {
    let dir = TempDir::new("kuryr-badstart-");
    let socket = dir.join("kuryr.sock");
    let conf = format!(
        "[neutron]\nauth_url = {}\nauth_type = password\nusername = {}\npassword = wrong-pass\n\
         project_name = {}\nuser_domain_name = Default\nproject_domain_name = Default\n",
        kuryr_test_support::auth_url(),
        common::env::var("KURYR_LAB_KURYR_USERNAME"),
        common::env::var("KURYR_LAB_KURYR_PROJECT"),
    );
    let mut daemon = start_daemon(&dir, &conf, &socket);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = daemon.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon did not exit"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success());
    assert!(!socket.exists(), "no socket file after a failed start-up");
}
