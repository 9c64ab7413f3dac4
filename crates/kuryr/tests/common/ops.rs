//! Operating a daemon from tests: its metrics endpoint (scrapes parsed
//! into series), its log (a window of new lines, fields read back) and
//! `kuryr status`.

use std::collections::BTreeMap;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::env::{lab_dir, output_text};
use super::http;

/// The lab daemon's metrics socket (`lab/kuryr-up` configures it).
pub const METRICS_SOCKET: &str = kuryr::paths::METRICS_SOCKET;

/// The kuryr.conf `lab/kuryr-up` gives the lab daemon.
pub fn lab_driver_conf() -> PathBuf {
    PathBuf::from(format!("{}/etc/kuryr-driver.conf", lab_dir()))
}

/// The lab daemon's log.
pub fn lab_driver_log() -> PathBuf {
    PathBuf::from(format!("{}/log/kuryr.log", lab_dir()))
}

fn get_request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: kuryr\r\nConnection: close\r\n\r\n").into_bytes()
}

/// `GET path` over a unix socket: (status, body).
pub async fn get_unix(socket: &Path, path: &str) -> (u16, String) {
    let (status, body) = http::unix(socket, &get_request(path), Duration::from_secs(15))
        .await
        .unwrap_or_else(|e| panic!("GET {path} on {}: {e}", socket.display()));
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// `GET path` over TCP: (status, body).
pub async fn get_tcp(addr: &str, path: &str) -> (u16, String) {
    let (status, body) = http::tcp(addr, &get_request(path), Duration::from_secs(15))
        .await
        .unwrap_or_else(|e| panic!("GET {path} on {addr}: {e}"));
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// One scrape: every sample by its series (`name{labels}` as printed).
#[derive(Debug, Clone, Default)]
pub struct Scrape(pub BTreeMap<String, f64>);

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        Scrape(
            text.lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .filter_map(|l| {
                    let (series, value) = l.rsplit_once(' ')?;
                    Some((series.to_string(), value.parse().ok()?))
                })
                .collect(),
        )
    }

    /// The value of a series; 0 when it is not shown (a counter never
    /// incremented).
    pub fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    /// The sum over every series of metric `name` (any labels).
    pub fn sum(&self, name: &str) -> f64 {
        self.0
            .iter()
            .filter(|(s, _)| *s == name || s.starts_with(&format!("{name}{{")))
            .map(|(_, v)| v)
            .sum()
    }

    /// `self - before` for one series.
    pub fn delta(&self, before: &Scrape, series: &str) -> f64 {
        self.get(series) - before.get(series)
    }

    /// The label value `label` of every series of `name`, with the value.
    pub fn by_label(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        let key = format!("{label}=\"");
        for (series, v) in &self.0 {
            let Some(labels) = series.strip_prefix(&format!("{name}{{")) else {
                continue;
            };
            if let Some(start) = labels.find(&key) {
                let rest = &labels[start + key.len()..];
                let value = rest.split('"').next().unwrap_or_default();
                *out.entry(value.to_string()).or_default() += v;
            }
        }
        out
    }
}

/// `kuryr_plugin_calls_total{call="<call>",outcome="<outcome>"}`.
pub fn calls_series(call: &str, outcome: &str) -> String {
    format!("kuryr_plugin_calls_total{{call=\"{call}\",outcome=\"{outcome}\"}}")
}

/// Scrape a daemon's metrics over its unix socket.
pub async fn scrape_unix(socket: &Path) -> Scrape {
    let (status, body) = get_unix(socket, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    Scrape::parse(&body)
}

/// The lines a log file gets from now on.
pub struct LogWindow {
    path: PathBuf,
    offset: u64,
}

impl LogWindow {
    pub fn start(path: &Path) -> LogWindow {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        LogWindow {
            path: path.to_path_buf(),
            offset,
        }
    }

    /// Every line written since [`LogWindow::start`].
    pub fn lines(&self) -> Vec<String> {
        let mut f = std::fs::File::open(&self.path)
            .unwrap_or_else(|e| panic!("{}: {e}", self.path.display()));
        f.seek(std::io::SeekFrom::Start(self.offset)).unwrap();
        let mut text = String::new();
        f.read_to_string(&mut text).unwrap();
        text.lines().map(str::to_string).collect()
    }
}

/// The value of `key=value` or `key="value"` in a text log line.
pub fn field(line: &str, key: &str) -> Option<String> {
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[at..];
    Some(match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next().unwrap_or_default().to_string(),
        None => rest.split(' ').next().unwrap_or_default().to_string(),
    })
}

/// The per-call lines (`call=...` with `ms=`) of a text log, by call.
pub fn call_lines(lines: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in lines {
        if let (Some(call), Some(_)) = (field(l, "call"), field(l, "ms")) {
            out.entry(call).or_default().push(l.clone());
        }
    }
    out
}

/// `kuryr status --json` with `conf`: (exit code, JSON).
pub fn status_json(binary: &str, conf: &Path) -> (i32, Value) {
    let out = std::process::Command::new(binary)
        .arg("--config-file")
        .arg(conf)
        .args(["status", "--json"])
        .output()
        .expect("run kuryr status");
    let code = out.status.code().unwrap_or(-1);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "kuryr status --json (exit {code}): {e}\n{}",
            output_text(&out)
        )
    });
    (code, json)
}
