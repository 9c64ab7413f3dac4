//! Where the daemon's log goes and in which form, from kuryr.conf's
//! oslo.log options, so an operator's kuryr-libnetwork settings keep
//! working:
//!
//! - `log_file` / `log_dir`: appended to that file (mode 0600; `log_dir`
//!   is made if missing), and then not to stderr unless `use_stderr`;
//! - stderr otherwise (oslo.log falls back to stdout there; stderr is what
//!   systemd hands to journald either way), or with `use_stderr` or
//!   `use_journal`; when stderr *is* journald (`JOURNAL_STREAM` names it)
//!   or `use_journal` is set, each line carries its syslog priority
//!   (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug), which journald
//!   stores as the entry's priority;
//! - `use_syslog`: also to the local syslog socket (`/dev/log`), with
//!   `syslog_log_facility`;
//! - `use_json`: one JSON object per line everywhere (fields at the top
//!   level: `level`, `message`, `call`, `network`, ...).
//!
//! Secrets never reach a log: kuryr.conf's are wrapped in `secrecy` types
//! and no request body is logged.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{Config, SyslogFacility};

/// The local syslog socket.
pub const SYSLOG_SOCKET: &str = "/dev/log";

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log file {}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("use_syslog: cannot use {SYSLOG_SOCKET}: {0}")]
    Syslog(#[source] std::io::Error),
}

/// Where and how to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSetup {
    /// `debug`, `info` or `warn`; `KURYR_LOG` (an `EnvFilter`) overrides.
    pub level: &'static str,
    pub file: Option<PathBuf>,
    pub stderr: bool,
    /// Prefix stderr lines with their syslog priority for journald.
    pub journald: bool,
    pub syslog: Option<SyslogFacility>,
    pub json: bool,
    /// The syslog tag (`kuryr-server` or `kuryr`).
    pub program: String,
}

impl LogSetup {
    /// Plain lines on stderr (the one-shot commands).
    pub fn stderr(level: &'static str) -> LogSetup {
        LogSetup {
            level,
            file: None,
            stderr: true,
            journald: stderr_is_journal(),
            syslog: None,
            json: false,
            program: program_name(),
        }
    }

    /// The daemon's outputs from kuryr.conf (see the module doc).
    pub fn from_config(config: &Config, debug: bool) -> LogSetup {
        let d = &config.default;
        let o = d.logging;
        let program = program_name();
        let file = d.log_path(&program);
        LogSetup {
            level: if debug || d.debug { "debug" } else { "info" },
            stderr: file.is_none() || o.use_stderr || o.use_journal,
            journald: o.use_journal || stderr_is_journal(),
            file,
            syslog: o.use_syslog.then_some(o.syslog_log_facility),
            json: o.use_json,
            program,
        }
    }
}

/// `kuryr-server` or `kuryr`: the name this process was started as.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(Path::new)
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kuryr".into())
}

/// Is stderr the journal? systemd sets `JOURNAL_STREAM=<dev>:<inode>` of
/// the stream it connected; a stderr redirected elsewhere does not match.
pub fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    use std::os::unix::fs::MetadataExt;
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// The syslog severity of a level (also journald's priority).
pub fn severity(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// One destination of formatted lines.
#[derive(Debug)]
enum Sink {
    Stderr {
        journald: bool,
    },
    File(Mutex<std::fs::File>),
    Syslog {
        socket: UnixDatagram,
        facility: u8,
        tag: String,
    },
}

impl Sink {
    /// Write one formatted event (one line, or several for a multi-line
    /// message).
    fn emit(&self, level: &Level, text: &[u8]) {
        match self {
            Sink::Stderr { journald } => {
                let mut err = std::io::stderr().lock();
                if *journald {
                    let _ = err.write_all(&with_priority(severity(level), text));
                } else {
                    let _ = err.write_all(text);
                }
            }
            Sink::File(file) => {
                let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
                let _ = f.write_all(text);
            }
            Sink::Syslog {
                socket,
                facility,
                tag,
            } => {
                let text = String::from_utf8_lossy(text);
                let priority = u16::from(*facility) * 8 + u16::from(severity(level));
                let datagram = format!(
                    "<{priority}>{tag}[{}]: {}",
                    std::process::id(),
                    text.trim_end()
                );
                let _ = socket.send(datagram.as_bytes());
            }
        }
    }
}

/// Every line of `text` prefixed with `<severity>`.
fn with_priority(severity: u8, text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 4);
    for line in text.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(format!("<{severity}>").as_bytes());
        out.extend_from_slice(line);
    }
    out
}

/// A `MakeWriter` handing out one buffered line per event: the line is
/// emitted whole when the formatter drops it, with the event's level.
#[derive(Debug, Clone)]
struct SinkWriter(Arc<Sink>);

/// One event's text, emitted on drop.
struct Line<'a> {
    sink: &'a Sink,
    level: Level,
    buf: Vec<u8>,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.sink.emit(&self.level, &self.buf);
        }
    }
}

impl<'a> MakeWriter<'a> for SinkWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            sink: &self.0,
            level: Level::INFO,
            buf: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line<'a> {
        Line {
            sink: &self.0,
            level: *meta.level(),
            buf: Vec::new(),
        }
    }
}

/// The formatting layer of one sink.
fn layer<S>(sink: Sink, json: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    // journald and syslog time-stamp entries themselves.
    let stamped = matches!(sink, Sink::File(_) | Sink::Stderr { journald: false });
    let ansi = matches!(sink, Sink::Stderr { journald: false })
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let writer = SinkWriter(Arc::new(sink));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    match (json, stamped) {
        (true, _) => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
        (false, true) => fmt.boxed(),
        (false, false) => fmt.without_time().boxed(),
    }
}

/// Open (append, create with mode 0600) the log file, making its
/// directory (0700) if needed.
fn open_log_file(path: &Path) -> Result<std::fs::File, LogError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let err = |source| LogError::File {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
    }
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(err)
}

/// Install the global subscriber for `setup`. Fails when the log file
/// cannot be opened or `/dev/log` cannot be used.
pub fn init(setup: &LogSetup) -> Result<(), LogError> {
    let mut sinks = Vec::new();
    if let Some(path) = &setup.file {
        sinks.push(Sink::File(Mutex::new(open_log_file(path)?)));
    }
    if setup.stderr {
        sinks.push(Sink::Stderr {
            journald: setup.journald,
        });
    }
    if let Some(facility) = setup.syslog {
        let socket = UnixDatagram::unbound().map_err(LogError::Syslog)?;
        socket.connect(SYSLOG_SOCKET).map_err(LogError::Syslog)?;
        sinks.push(Sink::Syslog {
            socket,
            facility: facility.0,
            tag: setup.program.clone(),
        });
    }
    let filter = EnvFilter::try_from_env("KURYR_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("{},hyper=warn,reqwest=warn", setup.level)));
    let layers: Vec<_> = sinks.into_iter().map(|s| layer(s, setup.json)).collect();
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> Config {
        text.parse().unwrap()
    }

    #[test]
    fn oslo_options_choose_the_outputs() {
        let s = LogSetup::from_config(&conf(""), false);
        assert_eq!(
            (s.stderr, s.file.clone(), s.syslog, s.json),
            (true, None, None, false)
        );
        assert_eq!(s.level, "info");

        let s = LogSetup::from_config(
            &conf("[DEFAULT]\nlog_dir = /var/log/kuryr\ndebug = true\n"),
            false,
        );
        let name = format!("{}.log", program_name());
        assert_eq!(s.file, Some(Path::new("/var/log/kuryr").join(name)));
        assert!(!s.stderr, "a log file replaces stderr, as in oslo.log");
        assert_eq!(s.level, "debug");

        let s = LogSetup::from_config(
            &conf(
                "[DEFAULT]\nlog_file = /tmp/k.log\nuse_stderr = true\nuse_json = true\nuse_syslog = true\nsyslog_log_facility = LOG_LOCAL3\n",
            ),
            false,
        );
        assert!(s.stderr && s.json);
        assert_eq!(s.syslog, Some(SyslogFacility(19)));

        let s = LogSetup::from_config(
            &conf("[DEFAULT]\nlog_file = /tmp/k.log\nuse_journal = true\n"),
            false,
        );
        assert!(s.stderr && s.journald);
    }

    #[test]
    fn facilities_have_oslo_names() {
        for (text, code) in [
            ("LOG_USER", 1),
            ("log_daemon", 3),
            ("local7", 23),
            ("LOG_AUTH", 4),
        ] {
            let c = conf(&format!("[DEFAULT]\nsyslog_log_facility = {text}\n"));
            assert_eq!(
                c.default.logging.syslog_log_facility,
                SyslogFacility(code),
                "{text}"
            );
        }
        let e = "[DEFAULT]\nsyslog_log_facility = LOG_NOPE\n"
            .parse::<Config>()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("syslog_log_facility") && e.contains("LOG_LOCAL0"),
            "{e}"
        );
    }

    #[test]
    fn journald_lines_carry_their_priority() {
        assert_eq!(with_priority(3, b"a\nb\n"), b"<3>a\n<3>b\n");
        assert_eq!(severity(&Level::WARN), 4);
        assert_eq!(severity(&Level::INFO), 6);
        assert_eq!(severity(&Level::DEBUG), 7);
    }

    #[test]
    fn syslog_datagrams_carry_facility_severity_and_tag() {
        let (ours, theirs) = UnixDatagram::pair().unwrap();
        let sink = Sink::Syslog {
            socket: ours,
            facility: 3,
            tag: "kuryr-server".into(),
        };
        sink.emit(&Level::WARN, b"failed call=X\n");
        let mut buf = [0u8; 256];
        let n = theirs.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]).into_owned();
        // daemon (3) * 8 + warning (4) = 28
        let want = format!("<28>kuryr-server[{}]: failed call=X", std::process::id());
        assert_eq!(got, want);
    }

    #[test]
    fn a_log_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("kuryr-logtest-{}", std::process::id()));
        let path = dir.join("sub/kuryr.log");
        let f = open_log_file(&path).unwrap();
        drop(f);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
        let _ = std::fs::remove_dir_all(dir);
    }
}
