//! `[metrics]`: our addition, the daemon's Prometheus metrics and health
//! check. Off unless `listen` is set; served only where root (a unix
//! socket of mode 0600) or this host (a loopback port) can reach it.

use std::net::IpAddr;
use std::path::PathBuf;

use super::error::ConfigError;
use super::source::{Group, Opt, Sources};

/// The `[metrics]` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricsSection {
    /// Where `/metrics` and `/health` are served; `None`: nowhere.
    pub listen: Option<MetricsListen>,
}

/// Where the metrics endpoint listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsListen {
    /// A unix socket, root-only.
    Unix(PathBuf),
    /// A loopback address and port.
    Tcp { host: String, port: u16 },
}

impl std::fmt::Display for MetricsListen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetricsListen::Unix(p) => write!(f, "unix://{}", p.display()),
            MetricsListen::Tcp { host, port } if host.contains(':') => {
                write!(f, "http://[{host}]:{port}")
            }
            MetricsListen::Tcp { host, port } => write!(f, "http://{host}:{port}"),
        }
    }
}

pub(crate) const SECTION: &str = "metrics";

const LISTEN: Opt = Opt::new("listen").default("");

pub(crate) const OPTS: &[Opt] = &[LISTEN];

const LISTEN_EXPECTED: &str = "an absolute unix socket path (served with mode 0600), a loopback \
     address and port such as 127.0.0.1:9779 or [::1]:9779, or nothing to serve no metrics";

/// `/run/kuryr/metrics.sock`, `127.0.0.1:9779`, `[::1]:9779`,
/// `localhost:9779`; nothing else (the metrics have no authentication).
fn parse_listen(s: &str) -> Option<MetricsListen> {
    if let Some(path) = s
        .strip_prefix("unix://")
        .or(Some(s))
        .filter(|p| p.starts_with('/'))
    {
        return Some(MetricsListen::Unix(PathBuf::from(path)));
    }
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    loopback.then(|| MetricsListen::Tcp {
        host: host.to_string(),
        port,
    })
}

impl MetricsSection {
    pub(crate) fn load(src: &Sources) -> Result<Self, ConfigError> {
        let g = Group::new(src, SECTION);
        Ok(MetricsSection {
            listen: g.parse_opt(&LISTEN, LISTEN_EXPECTED, parse_listen)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_is_a_socket_or_a_loopback_port() {
        let tcp = |h: &str, port| {
            Some(MetricsListen::Tcp {
                host: h.into(),
                port,
            })
        };
        assert_eq!(
            parse_listen("/run/kuryr/metrics.sock"),
            Some(MetricsListen::Unix("/run/kuryr/metrics.sock".into()))
        );
        assert_eq!(
            parse_listen("unix:///run/m.sock"),
            Some(MetricsListen::Unix("/run/m.sock".into()))
        );
        assert_eq!(parse_listen("127.0.0.1:9779"), tcp("127.0.0.1", 9779));
        assert_eq!(parse_listen("127.3.0.1:80"), tcp("127.3.0.1", 80));
        assert_eq!(parse_listen("[::1]:9779"), tcp("::1", 9779));
        assert_eq!(parse_listen("localhost:9779"), tcp("localhost", 9779));
        for bad in [
            "0.0.0.0:9779",
            "10.0.0.1:9779",
            "[::]:9779",
            "example.com:9779",
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:http",
            "run/metrics.sock",
        ] {
            assert_eq!(parse_listen(bad), None, "{bad}");
        }
        assert_eq!(
            MetricsListen::Tcp {
                host: "::1".into(),
                port: 9
            }
            .to_string(),
            "http://[::1]:9"
        );
    }
}
