//! systemd's readiness protocol (`sd_notify`) without libsystemd: one
//! datagram to the unix socket named by `$NOTIFY_SOCKET`. The unit is
//! `Type=notify`, so systemd (and dockerd, ordered after the driver) sees
//! the driver as started only once it can serve the plugin API, and sees
//! it stopping on SIGTERM.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use tracing::debug;

/// Ready to serve.
pub const READY: &str = "READY=1";
/// Shutting down.
pub const STOPPING: &str = "STOPPING=1";

/// Tell systemd `state` (`READY=1`, `STOPPING=1`, `STATUS=...`, several
/// separated by newlines) if it started us with a notify socket. A failure
/// is logged and otherwise ignored: the daemon works without systemd.
pub fn notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(&socket, state) {
        debug!(error = %e, "cannot notify systemd");
    }
}

/// Send `state` to the notify socket `socket`: a path, or an abstract
/// name written with a leading `@`.
pub fn send(socket: &OsStr, state: &str) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    let bytes = socket.as_bytes();
    match bytes.first() {
        Some(b'/') => sock.send_to(state.as_bytes(), Path::new(socket))?,
        Some(b'@') => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(&bytes[1..])?;
            sock.send_to_addr(state.as_bytes(), &addr)?
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "NOTIFY_SOCKET is neither an absolute path nor an abstract name",
            ));
        }
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::linux::net::SocketAddrExt;

    use super::*;

    fn received(listener: &UnixDatagram) -> String {
        let mut buf = [0u8; 256];
        let n = listener.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn a_datagram_reaches_a_path_socket() {
        let dir = std::env::temp_dir().join(kuryr_test_support::unique("kuryr-notify-"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), READY).unwrap();
        assert_eq!(received(&listener), "READY=1");
        send(path.as_os_str(), "STOPPING=1\nSTATUS=bye").unwrap();
        assert_eq!(received(&listener), "STOPPING=1\nSTATUS=bye");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_datagram_reaches_an_abstract_socket() {
        let name = kuryr_test_support::unique("kuryr-notify-");
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        send(OsStr::new(&format!("@{name}")), READY).unwrap();
        assert_eq!(received(&listener), "READY=1");
    }

    #[test]
    fn a_relative_socket_is_refused() {
        assert!(send(OsStr::new("notify"), READY).is_err());
    }
}
