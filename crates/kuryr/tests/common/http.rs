//! Raw HTTP exchanges with a plugin server (ours over its unix socket, the
//! Python kuryr-libnetwork over TCP), byte for byte as the test writes
//! them, so broken requests can be sent too.

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// A request as Go's plugin client sends it: POST, Accept v1.2, no
/// Content-Type, the given Host (empty over a unix socket), and
/// `Connection: close` so the reply ends with the connection.
pub fn post(path: &str, body: &[u8], host: &str) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Go-http-client/1.1\r\n\
         Accept: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// Write `request`, read until the server closes, within `within`.
pub async fn exchange<S>(mut stream: S, request: &[u8], within: Duration) -> io::Result<Vec<u8>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let io = async {
        stream.write_all(request).await?;
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await?;
        Ok::<_, io::Error>(out)
    };
    tokio::time::timeout(within, io).await.map_err(|_| {
        io::Error::other(format!(
            "no complete reply within {:.0} s",
            within.as_secs_f64()
        ))
    })?
}

/// (status, body) of a raw reply; status 0 if there is no status line.
pub fn split_reply(raw: &[u8]) -> (u16, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw.get(end + 4..).unwrap_or_default().to_vec();
    (status, body)
}

/// One exchange over a unix socket: (status, body).
pub async fn unix(path: &Path, request: &[u8], within: Duration) -> io::Result<(u16, Vec<u8>)> {
    let stream = UnixStream::connect(path).await?;
    Ok(split_reply(&exchange(stream, request, within).await?))
}

/// One exchange over TCP: (status, body).
pub async fn tcp(addr: &str, request: &[u8], within: Duration) -> io::Result<(u16, Vec<u8>)> {
    let stream = TcpStream::connect(addr).await?;
    Ok(split_reply(&exchange(stream, request, within).await?))
}
