//! Requests counted from the servers' own logs, the same way for every
//! driver: neutron-server logs one `neutron.wsgi` line per API request,
//! Keystone's uwsgi one line per request (a `POST /v3/auth/tokens` is a
//! token issued to a client). The benchmark holds the lab to itself, so
//! what the logs show in an operation's window is the driver's.
//!
//! Ours also logs, per plugin call, what its client counted: requests,
//! ACTIVE polls, time in Neutron, and the wait for ACTIVE.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// The new text of a growing log file since the last look.
#[derive(Debug)]
pub struct Tail {
    path: PathBuf,
    offset: u64,
}

impl Tail {
    /// Start at the current end of `path`.
    pub fn new(path: impl Into<PathBuf>) -> Tail {
        let path = path.into();
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Tail { path, offset }
    }

    /// Skip what was written so far.
    pub fn skip(&mut self) {
        self.offset = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
    }

    /// What was written since the last call (empty if the file shrank).
    pub fn take(&mut self) -> String {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return String::new();
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            self.offset = 0;
        }
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(self.offset)).is_ok() {
            let _ = f.read_to_end(&mut buf);
        }
        self.offset += buf.len() as u64;
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// Neutron API requests in a slice of neutron-server's log.
pub fn neutron_requests(text: &str) -> usize {
    text.lines()
        .filter(|l| l.contains("neutron.wsgi") && l.contains(" HTTP/1.1\" status:"))
        .count()
}

/// Tokens issued (`POST /v3/auth/tokens`) in a slice of Keystone's log.
pub fn keystone_issues(text: &str) -> usize {
    text.lines()
        .filter(|l| l.contains("POST /v3/auth/tokens"))
        .count()
}

/// What our driver's log says about the plugin calls of one operation.
#[derive(Debug, Default, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OursCalls {
    /// Sum of the calls' own durations.
    pub ms: f64,
    /// Neutron requests, ACTIVE polls not included.
    pub neutron: f64,
    pub polls: f64,
    pub keystone: f64,
    /// Time in Neutron requests (polls not included).
    pub neutron_ms: f64,
    /// Time waiting for ACTIVE (its polls included).
    pub wait_ms: f64,
}

impl OursCalls {
    /// The driver's own time: everything but Neutron and the agent.
    pub fn overhead_ms(&self) -> f64 {
        (self.ms - self.neutron_ms - self.wait_ms).max(0.0)
    }
}

/// `key=value` of a tracing line, the value as a number.
fn field(line: &str, key: &str) -> Option<f64> {
    let pat = format!(" {key}=");
    let start = line.find(&pat)? + pat.len();
    let rest = &line[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Sum the `ok` lines and `port active` waits of a slice of our log.
pub fn ours_calls(text: &str) -> OursCalls {
    let mut c = OursCalls::default();
    for line in text.lines() {
        if line.contains(" ok ") || line.ends_with(" ok") || line.contains(": ok ") {
            if field(line, "neutron_calls").is_none() {
                continue;
            }
            c.ms += field(line, "ms").unwrap_or(0.0);
            c.neutron += field(line, "neutron_calls").unwrap_or(0.0);
            c.polls += field(line, "polls").unwrap_or(0.0);
            c.keystone += field(line, "keystone_calls").unwrap_or(0.0);
            c.neutron_ms += field(line, "neutron_ms").unwrap_or(0.0);
        } else if line.contains("port active") {
            c.wait_ms += field(line, "ms").unwrap_or(0.0);
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_and_our_calls() {
        let neutron = "2026-12-02 14:05:09.317 2174 INFO neutron.wsgi [None req-a] 127.0.0.1 \
                       \"GET /v2.0/ports/x HTTP/1.1\" status: 200  len: 1315 time: 0.02\n\
                       2026-12-02 14:05:09.078 2175 INFO neutron.plugins.ml2.plugin [None] Attempt 1\n";
        assert_eq!(neutron_requests(neutron), 1);
        let ks = "[pid: 1] 127.0.0.1 () [Wed] POST /v3/auth/tokens => generated 1 bytes\n\
                  [pid: 1] 127.0.0.1 () [Wed] GET /v3/auth/tokens => generated 1 bytes\n";
        assert_eq!(keystone_issues(ks), 1);
        let ours = "2026-12-02T13:45:13Z  INFO kuryr::driver::endpoint: port active port=\"p\" ms=1526\n\
                    2026-12-02T13:45:13Z  INFO kuryr::driver: ok call=CreateEndpoint ms=1700 neutron_calls=2 polls=4 keystone_calls=0 neutron_ms=90 ops=neutron.update_port\n\
                    2026-12-02T13:45:13Z  INFO kuryr::driver: ok call=Join ms=1 neutron_calls=0 polls=0 keystone_calls=0 neutron_ms=0 ops=\n";
        let c = ours_calls(ours);
        assert_eq!(
            (c.ms, c.neutron, c.polls, c.wait_ms),
            (1701.0, 2.0, 4.0, 1526.0)
        );
        assert_eq!(c.overhead_ms(), 85.0);
    }
}
