//! Init `process`: on a machine without systemd node setup starts the
//! node's daemons itself (the L2 agent; the driver in socket and TCP
//! modes), each in its own session with its output appended to
//! `/var/log/kuryr/<name>.log`, and records each in
//! `/run/kuryr/<name>.process`: its pid, its start time (so a reused pid is
//! not mistaken for it) and its command line. A later run finds it there,
//! leaves it alone, restarts it when its configuration or command line
//! changed, and starts it again when it is gone (after a reboot /run is
//! empty: running node setup at boot starts everything).
//!
//! [`Runner::process`] is the step; [`spawn`], [`recorded`] and [`stop`]
//! are what [`super::runner::System`] does for it on the machine.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::runner::{Action, Cmd, Recorded, Runner};
use super::{Outcome, say};
use crate::cluster::ClusterError;
use crate::paths::{PROCESS_LOGS, PROCESS_RECORDS};

/// The daemons' `PATH`: they get no other variable of node setup's
/// environment (it may hold credentials).
const DAEMON_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `/run/kuryr/<name>.process`.
pub(crate) fn record_path(name: &str) -> PathBuf {
    Path::new(PROCESS_RECORDS).join(format!("{name}.process"))
}

/// `/var/log/kuryr/<name>.log`.
pub(crate) fn log_path(name: &str) -> PathBuf {
    Path::new(PROCESS_LOGS).join(format!("{name}.log"))
}

impl Runner<'_> {
    /// Start daemon `name` as `argv` (its `runtime_dirs` made first)
    /// unless its record shows it running with that command line; restart
    /// it when `config_changed`.
    pub(super) fn process(
        &mut self,
        name: &str,
        argv: &[String],
        runtime_dirs: &[PathBuf],
        config_changed: bool,
        out: &mut dyn Write,
        outcome: &mut Outcome,
    ) -> Result<bool, ClusterError> {
        let record = record_path(name);
        let start = Action::Spawn {
            name: name.to_string(),
            cmd: Cmd {
                argv: argv.to_vec(),
                env: vec![],
            },
            log: log_path(name),
            record: record.clone(),
        };
        let mut actions = match self.recorded(&record) {
            Some(r) if r.argv == argv && !config_changed => {
                say(out, format!("unchanged: {name} is running (pid {})", r.pid))?;
                return Ok(true);
            }
            Some(r) => vec![Action::Stop {
                name: name.to_string(),
                pid: r.pid,
                record: record.clone(),
            }],
            None => vec![],
        };
        if !runtime_dirs.is_empty() {
            let mut mkdir = vec!["mkdir".to_string(), "-p".into()];
            mkdir.extend(
                runtime_dirs
                    .iter()
                    .map(|d| d.to_string_lossy().into_owned()),
            );
            actions.push(Action::Run(Cmd {
                argv: mkdir,
                env: vec![],
            }));
        }
        actions.push(start);
        self.perform(&actions, out, outcome)
    }
}

/// Start `cmd` in its own session, stdin from /dev/null, stdout and stderr
/// appended to `log`, and record it in `record`. It must still run after
/// `settle`; if it exits before, the record goes and the error quotes the
/// end of its log.
pub(crate) fn spawn(cmd: &Cmd, log: &Path, record: &Path, settle: Duration) -> Result<u32, String> {
    let fail = |what: &str, e: io::Error| format!("{what}: {e}");
    for dir in [log.parent(), record.parent()].into_iter().flatten() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| fail(&dir.display().to_string(), e))?;
    }
    let output = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(log)
        .map_err(|e| fail(&log.display().to_string(), e))?;
    let errors = output
        .try_clone()
        .map_err(|e| fail(&log.display().to_string(), e))?;
    let mut command = Command::new(&cmd.argv[0]);
    command
        .args(&cmd.argv[1..])
        .env_clear()
        .env("PATH", DAEMON_PATH)
        .envs(cmd.env.iter().copied())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors);
    // SAFETY: setsid is async-signal-safe and touches no memory of the
    // parent; it only detaches the child from node setup's session.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| e.to_string())?;
    let pid = child.id();
    let started = start_time(pid).unwrap_or_default();
    write_record(record, pid, started, &cmd.argv)
        .map_err(|e| fail(&record.display().to_string(), e))?;
    let deadline = Instant::now() + settle;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let _ = std::fs::remove_file(record);
            return Err(format!(
                "exited at once ({status}); the end of {}: {}",
                log.display(),
                tail(log)
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(pid)
}

/// The process `record` names, if that very process (pid and start time)
/// still runs.
pub(crate) fn recorded(record: &Path) -> Option<Recorded> {
    let text = std::fs::read_to_string(record).ok()?;
    let (mut pid, mut started, mut argv) = (None, None, Vec::new());
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("pid", v)) => pid = v.parse::<u32>().ok(),
            Some(("start", v)) => started = v.parse::<u64>().ok(),
            Some(("argv", v)) => argv.push(v.to_string()),
            _ => {}
        }
    }
    let (pid, started) = (pid?, started?);
    alive(pid, started).then_some(Recorded { pid, argv })
}

/// SIGTERM to the recorded `pid`, SIGKILL once `grace` has passed, and
/// the record removed once it is gone.
pub(crate) fn stop(pid: u32, record: &Path, grace: Duration) -> Result<(), String> {
    let Some(started) = start_time(pid) else {
        let _ = std::fs::remove_file(record);
        return Ok(());
    };
    let Ok(id) = i32::try_from(pid) else {
        return Err(format!("pid {pid} out of range"));
    };
    for (signal, wait) in [
        (libc::SIGTERM, grace),
        (libc::SIGKILL, Duration::from_secs(5)),
    ] {
        // SAFETY: kill only sends a signal; the pid was checked to be the
        // recorded process (same start time) just before.
        unsafe { libc::kill(id, signal) };
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if !alive(pid, started) {
                let _ = std::fs::remove_file(record);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Err(format!("pid {pid} is still there after SIGKILL"))
}

fn write_record(record: &Path, pid: u32, started: u64, argv: &[String]) -> io::Result<()> {
    let mut text = format!("pid {pid}\nstart {started}\n");
    for a in argv {
        text.push_str(&format!("argv {}\n", a.replace('\n', " ")));
    }
    let tmp = record.with_extension("new");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, record)
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot),
/// for a process that is not a zombie.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

fn alive(pid: u32, started: u64) -> bool {
    start_time(pid) == Some(started)
}

/// The last lines of a log, on one line.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "kuryr-process-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn cmd(args: &[&str]) -> Cmd {
        Cmd::new(args)
    }

    #[test]
    fn a_daemon_is_started_recorded_found_and_stopped() {
        let dir = scratch("daemon");
        let (log, record) = (dir.join("log/sleep.log"), dir.join("run/sleep.process"));
        let argv = [
            "sh",
            "-c",
            "echo started; echo \"$PATH\"; env | grep -c . ; exec sleep 60",
        ];
        let pid = spawn(&cmd(&argv), &log, &record, Duration::from_millis(300)).unwrap();
        let found = recorded(&record).expect("the recorded daemon runs");
        assert_eq!(found.pid, pid);
        assert_eq!(found.argv, argv);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.starts_with(&format!("started\n{DAEMON_PATH}\n")),
            "{text}"
        );
        // Only PATH (and what sh adds: PWD, SHLVL, _): nothing of ours.
        let count: u32 = text.lines().nth(2).unwrap().parse().unwrap();
        assert!(count <= 4, "{text}");
        stop(pid, &record, Duration::from_secs(5)).unwrap();
        assert!(recorded(&record).is_none());
        assert!(!record.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_daemon_that_exits_at_once_is_an_error_quoting_its_log() {
        let dir = scratch("exits");
        let (log, record) = (dir.join("x.log"), dir.join("x.process"));
        let argv = ["sh", "-c", "echo 'bad option --frob' >&2; exit 3"];
        let err = spawn(&cmd(&argv), &log, &record, Duration::from_secs(3)).unwrap_err();
        assert!(err.starts_with("exited at once (exit status: 3)"), "{err}");
        assert!(err.ends_with("bad option --frob"), "{err}");
        assert!(!record.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_stale_record_is_not_a_running_daemon() {
        let dir = scratch("stale");
        std::fs::create_dir_all(&dir).unwrap();
        let record = dir.join("gone.process");
        // This process's pid, with another start time: a reused pid.
        let me = std::process::id();
        let started = start_time(me).unwrap();
        write_record(&record, me, started + 1, &["x".into()]).unwrap();
        assert!(recorded(&record).is_none());
        write_record(&record, me, started, &["x".into()]).unwrap();
        assert_eq!(recorded(&record).unwrap().pid, me);
        std::fs::write(&record, "garbage").unwrap();
        assert!(recorded(&record).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
