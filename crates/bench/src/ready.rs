//! Time to ready: from starting a driver process until it answers
//! `POST /Plugin.Activate` (what dockerd needs to use it), with Neutron
//! reachable and with Keystone/Neutron unreachable (a config naming a
//! closed port: the lab's services are left running).

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

const ACTIVATE: &[u8] =
    b"POST /Plugin.Activate HTTP/1.1\r\nHost: plugin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Does the reply start like a successful Activate?
fn activated(reply: &[u8]) -> bool {
    reply.starts_with(b"HTTP/1.1 200") || reply.starts_with(b"HTTP/1.0 200")
}

fn ask(mut s: impl Read + Write) -> bool {
    let _ = s.write_all(ACTIVATE);
    let mut buf = Vec::new();
    let _ = s.take(4096).read_to_end(&mut buf);
    activated(&buf) && String::from_utf8_lossy(&buf).contains("Implements")
}

/// Poll `addr` (host:port) until Activate answers, `child` dies or
/// `within` passes.
pub fn wait_http(addr: &str, within: Duration, child: &mut Child) -> Option<()> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if let Ok(s) = std::net::TcpStream::connect(addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            if ask(s) {
                return Some(());
            }
        }
        if matches!(child.try_wait(), Ok(Some(_))) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

/// Poll a unix socket until Activate answers.
pub fn wait_unix(path: &Path, within: Duration, child: &mut Child) -> Option<()> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if let Ok(s) = std::os::unix::net::UnixStream::connect(path) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            if ask(s) {
                return Some(());
            }
        }
        if matches!(child.try_wait(), Ok(Some(_))) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

/// Start ours on a socket of its own (dockerd never sees it) with the
/// lab's driver config, Keystone at `auth_url` if given; the time until
/// Activate answers.
pub fn ours_once(bin: &Path, auth_url: Option<&str>) -> Result<Option<Duration>> {
    let lab = crate::drivers::lab_dir();
    let base = std::fs::read_to_string(lab.join("etc/kuryr-driver.conf"))
        .map_err(|e| format!("kuryr-driver.conf: {e} (lab/kuryr-up writes it)"))?;
    let sock = Path::new("/run/kuryr-bench/ready.sock");
    std::fs::create_dir_all("/run/kuryr-bench").map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(sock);
    // The lab's driver holds its metrics socket: this one serves none
    // (a second listener on it refuses to start).
    let text: Vec<String> = base
        .lines()
        .filter(|l| !l.trim_start().starts_with("listen"))
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("plugin_socket") {
                format!("plugin_socket = {}", sock.display())
            } else if let (Some(a), true) = (auth_url, t.starts_with("auth_url")) {
                format!("auth_url = {a}")
            } else {
                l.to_string()
            }
        })
        .collect();
    let conf = lab.join("etc/kuryr-bench-ready.conf");
    crate::drivers::write_private(&conf, &(text.join("\n") + "\n"))?;
    let started = Instant::now();
    let mut child = Command::new(bin)
        .arg("--config-file")
        .arg(&conf)
        .arg("server")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let ready = wait_unix(sock, Duration::from_secs(30), &mut child).map(|_| started.elapsed());
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(sock);
    Ok(ready)
}

/// The same for the Python driver, on a port of its own.
pub fn python_once(auth_url: Option<&str>) -> Result<Option<Duration>> {
    let conf = crate::drivers::python_conf(
        "http://127.0.0.1:23752",
        "kuryr-bench-ready.log",
        auth_url,
        true,
    )?;
    let (p, ready) =
        crate::drivers::Python::start(&conf, "127.0.0.1:23752", Duration::from_secs(30))?;
    drop(p);
    Ok(ready)
}
