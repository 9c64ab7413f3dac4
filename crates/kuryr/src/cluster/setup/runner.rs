//! Every command node setup runs goes through one [`CommandRunner`]:
//! [`System`] runs it on the machine; in tests, `Recording` writes down
//! each command line and answers from a script, so what setup decides on a
//! live root is tested without one. So do the daemons init `process`
//! starts in the background, their records and their stops.
//!
//! [`Runner`] decides whether an [`Action`] that changes the node runs at
//! all: off the live root it is printed as `skipped (not the live root)`,
//! in a dry run as `would run`, otherwise as `run` and run, and the first
//! failure stops setup (`failed: ACTION: why`). Commands that only look
//! (`systemctl is-active`, `docker plugin inspect`, a process record, ...)
//! run on the live root even in a dry run, never off it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Outcome, say};
use crate::cluster::ClusterError;

/// A command line, for display and execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cmd {
    pub argv: Vec<String>,
    /// Variables added to the environment.
    pub env: Vec<(&'static str, &'static str)>,
}

impl Cmd {
    pub(crate) fn new(args: &[&str]) -> Cmd {
        Cmd {
            argv: args.iter().map(|s| s.to_string()).collect(),
            env: vec![],
        }
    }

    /// The command line as printed: `VAR=value ... program args ...`.
    pub(crate) fn show(&self) -> String {
        let mut s: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        s.extend(self.argv.iter().cloned());
        s.join(" ")
    }
}

/// How a command that ran ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finished {
    /// Exit status zero.
    pub success: bool,
    /// The status as the process reports it (`exit status: 1`).
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

/// A daemon started in the background, as its record has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub pid: u32,
    /// The command line it was started with.
    pub argv: Vec<String>,
}

/// A change to the node: a command run to completion, a daemon started in
/// the background, or a recorded daemon stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Run(Cmd),
    /// Start `cmd` in its own session, output appended to `log`, recorded
    /// in `record`.
    Spawn {
        name: String,
        cmd: Cmd,
        log: PathBuf,
        record: PathBuf,
    },
    /// SIGTERM (SIGKILL after a while) to the recorded `pid`.
    Stop {
        name: String,
        pid: u32,
        record: PathBuf,
    },
}

impl Action {
    /// The action as printed.
    pub(crate) fn show(&self) -> String {
        match self {
            Action::Run(cmd) => cmd.show(),
            Action::Spawn { name, cmd, log, .. } => {
                format!("start {name}: {} (output to {})", cmd.show(), log.display())
            }
            Action::Stop { name, pid, .. } => format!("stop {name} (pid {pid})"),
        }
    }
}

impl From<Cmd> for Action {
    fn from(cmd: Cmd) -> Action {
        Action::Run(cmd)
    }
}

/// Runs commands to completion, and daemons in the background.
pub(crate) trait CommandRunner {
    /// Run `cmd`, its output captured; `Err` says why it could not start.
    fn run(&mut self, cmd: &Cmd) -> Result<Finished, String>;
    /// Start `cmd` in the background (its own session, no input, output
    /// appended to `log`) and record it in `record`; `Err` when it cannot
    /// start or exits at once.
    fn spawn(&mut self, cmd: &Cmd, log: &Path, record: &Path) -> Result<u32, String>;
    /// The daemon `record` names, while that very process runs.
    fn recorded(&mut self, record: &Path) -> Option<Recorded>;
    /// Stop the recorded `pid` (SIGTERM, then SIGKILL) and remove `record`.
    fn stop(&mut self, pid: u32, record: &Path) -> Result<(), String>;
}

/// The machine's commands.
pub(crate) struct System;

/// How long a started daemon must keep running to count as started.
const SETTLE: Duration = Duration::from_millis(1500);
/// How long a stopped daemon has between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

impl CommandRunner for System {
    fn run(&mut self, cmd: &Cmd) -> Result<Finished, String> {
        let out = Command::new(&cmd.argv[0])
            .args(&cmd.argv[1..])
            .envs(cmd.env.iter().copied())
            .output()
            .map_err(|e| e.to_string())?;
        Ok(Finished {
            success: out.status.success(),
            status: out.status.to_string(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    fn spawn(&mut self, cmd: &Cmd, log: &Path, record: &Path) -> Result<u32, String> {
        super::process::spawn(cmd, log, record, SETTLE)
    }

    fn recorded(&mut self, record: &Path) -> Option<Recorded> {
        super::process::recorded(record)
    }

    fn stop(&mut self, pid: u32, record: &Path) -> Result<(), String> {
        super::process::stop(pid, record, STOP_GRACE)
    }
}

/// Runs (or reports) the commands of the service steps.
pub(super) struct Runner<'a> {
    /// The root is `/`: commands may change this node.
    pub live: bool,
    pub dry_run: bool,
    /// Managed plugin mode: `docker -H URL`, live even off the live root.
    pub docker_host: Option<String>,
    /// The canonical `--root`.
    pub root: PathBuf,
    pub commands: &'a mut dyn CommandRunner,
}

impl Runner<'_> {
    /// A command that only looks: did it exit 0?
    pub(super) fn succeeds(&mut self, cmd: &Cmd) -> bool {
        self.commands.run(cmd).is_ok_and(|f| f.success)
    }

    /// A command that only looks: its trimmed output, if it exited 0.
    pub(super) fn output(&mut self, cmd: &Cmd) -> Option<String> {
        let f = self.commands.run(cmd).ok()?;
        f.success.then(|| f.stdout.trim().to_string())
    }

    /// The daemon `record` names, if it runs (never off the live root).
    pub(super) fn recorded(&mut self, record: &Path) -> Option<Recorded> {
        if !self.live {
            return None;
        }
        self.commands.recorded(record)
    }

    /// Report or run `cmds`, which change this node. Returns false when
    /// one failed (and the rest were not run).
    pub(super) fn execute(
        &mut self,
        cmds: &[Cmd],
        out: &mut dyn Write,
        outcome: &mut Outcome,
    ) -> Result<bool, ClusterError> {
        let actions: Vec<Action> = cmds.iter().cloned().map(Action::from).collect();
        self.perform(&actions, out, outcome)
    }

    /// [`Runner::execute`] for any [`Action`].
    pub(super) fn perform(
        &mut self,
        actions: &[Action],
        out: &mut dyn Write,
        outcome: &mut Outcome,
    ) -> Result<bool, ClusterError> {
        self.perform_as(self.live, actions, out, outcome)
    }

    /// [`Runner::execute`], on a node that is `live` or not.
    pub(super) fn execute_as(
        &mut self,
        live: bool,
        cmds: &[Cmd],
        out: &mut dyn Write,
        outcome: &mut Outcome,
    ) -> Result<bool, ClusterError> {
        let actions: Vec<Action> = cmds.iter().cloned().map(Action::from).collect();
        self.perform_as(live, &actions, out, outcome)
    }

    fn perform_as(
        &mut self,
        live: bool,
        actions: &[Action],
        out: &mut dyn Write,
        outcome: &mut Outcome,
    ) -> Result<bool, ClusterError> {
        for action in actions {
            let shown = action.show();
            if !live {
                say(out, format!("skipped (not the live root): {shown}"))?;
            } else if self.dry_run {
                say(out, format!("would run: {shown}"))?;
            } else {
                say(out, format!("run: {shown}"))?;
                outcome.commands_run += 1;
                if let Err(e) = self.act(action) {
                    say(out, format!("failed: {shown}: {e}"))?;
                    outcome.failed = true;
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Carry out an action that changes the node; for a command, `Err`
    /// holds the last line of its error output and its status.
    fn act(&mut self, action: &Action) -> Result<(), String> {
        let cmd = match action {
            Action::Run(cmd) => cmd,
            Action::Spawn {
                cmd, log, record, ..
            } => return self.commands.spawn(cmd, log, record).map(|_| ()),
            Action::Stop { pid, record, .. } => return self.commands.stop(*pid, record),
        };
        let f = self.commands.run(cmd)?;
        if f.success {
            return Ok(());
        }
        let why = f.stderr.trim().lines().last().unwrap_or_default();
        Err(format!("{why} ({})", f.status))
    }
}

/// A fake node for tests: records every command line ([`Cmd::show`]) in
/// order and answers from a script; a command the script does not cover
/// succeeds with no output.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct Recording {
    pub lines: Vec<String>,
    /// `(command line prefix, answer)`, the first match wins.
    script: Vec<(String, Result<Finished, String>)>,
}

#[cfg(test)]
impl Recording {
    /// Answer the commands whose line starts with `prefix` with `answer`.
    pub(crate) fn answer(mut self, prefix: &str, answer: Result<Finished, String>) -> Recording {
        self.script.push((prefix.to_string(), answer));
        self
    }

    /// Then the answers of `other`'s script.
    pub(crate) fn answer_all(mut self, other: Recording) -> Recording {
        self.script.extend(other.script);
        self
    }
}

#[cfg(test)]
impl Recording {
    /// Write `line` down; the script's answer to it.
    fn answer_for(&mut self, line: String) -> Result<Finished, String> {
        let answer = self
            .script
            .iter()
            .find(|(prefix, _)| line.starts_with(prefix.as_str()))
            .map(|(_, answer)| answer.clone())
            .unwrap_or_else(|| Ok(Finished::exit(0, "", "")));
        self.lines.push(line);
        answer
    }
}

/// Daemons are written down as `spawn RECORD: COMMAND > LOG`, `look RECORD`
/// and `stop PID RECORD`. A `look` is answered from the script: no answer
/// or a failure means nothing runs; success means the recorded process
/// runs, its stdout holding its pid and then its command line, one
/// argument per line.
#[cfg(test)]
impl CommandRunner for Recording {
    fn run(&mut self, cmd: &Cmd) -> Result<Finished, String> {
        self.answer_for(cmd.show())
    }

    fn spawn(&mut self, cmd: &Cmd, log: &Path, record: &Path) -> Result<u32, String> {
        let line = format!(
            "spawn {}: {} > {}",
            record.display(),
            cmd.show(),
            log.display()
        );
        let f = self.answer_for(line)?;
        if f.success {
            Ok(4242)
        } else {
            Err(f.stderr.trim().to_string())
        }
    }

    fn recorded(&mut self, record: &Path) -> Option<Recorded> {
        let line = format!("look {}", record.display());
        let scripted = self
            .script
            .iter()
            .any(|(prefix, _)| line.starts_with(prefix.as_str()));
        let f = self
            .answer_for(line)
            .ok()
            .filter(|f| f.success && scripted)?;
        let mut lines = f.stdout.lines();
        let pid = lines.next()?.trim().parse().ok()?;
        Some(Recorded {
            pid,
            argv: lines.map(str::to_string).collect(),
        })
    }

    fn stop(&mut self, pid: u32, record: &Path) -> Result<(), String> {
        let f = self.answer_for(format!("stop {pid} {}", record.display()))?;
        if f.success {
            Ok(())
        } else {
            Err(f.stderr.trim().to_string())
        }
    }
}

#[cfg(test)]
impl Finished {
    /// A command that exited with `code`, printing `stdout` and `stderr`.
    pub(crate) fn exit(code: i32, stdout: &str, stderr: &str) -> Finished {
        Finished {
            success: code == 0,
            status: format!("exit status: {code}"),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }
}
