//! Every command node setup runs goes through one [`CommandRunner`]:
//! [`System`] runs it on the machine; in tests, `Recording` writes down
//! each command line and answers from a script, so what setup decides on a
//! live root is tested without one.
//!
//! [`Runner`] decides whether a command that changes the node runs at all:
//! off the live root it is printed as `skipped (not the live root)`, in a
//! dry run as `would run`, otherwise as `run` and run, and the first
//! failure stops setup (`failed: COMMAND: why`). Commands that only look
//! (`systemctl is-active`, `docker plugin inspect`, ...) run on the live
//! root even in a dry run, never off it.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

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

/// Runs commands to completion.
pub(crate) trait CommandRunner {
    /// Run `cmd`, its output captured; `Err` says why it could not start.
    fn run(&mut self, cmd: &Cmd) -> Result<Finished, String>;
}

/// The machine's commands.
pub(crate) struct System;

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

    /// Report or run `cmds`, which change this node. Returns false when
    /// one failed (and the rest were not run).
    pub(super) fn execute(
        &mut self,
        cmds: &[Cmd],
        out: &mut dyn Write,
        outcome: &mut Outcome,
    ) -> Result<bool, ClusterError> {
        self.execute_as(self.live, cmds, out, outcome)
    }

    /// [`Runner::execute`], on a node that is `live` or not.
    pub(super) fn execute_as(
        &mut self,
        live: bool,
        cmds: &[Cmd],
        out: &mut dyn Write,
        outcome: &mut Outcome,
    ) -> Result<bool, ClusterError> {
        for cmd in cmds {
            if !live {
                say(out, format!("skipped (not the live root): {}", cmd.show()))?;
            } else if self.dry_run {
                say(out, format!("would run: {}", cmd.show()))?;
            } else {
                say(out, format!("run: {}", cmd.show()))?;
                outcome.commands_run += 1;
                if let Err(e) = self.act(cmd) {
                    say(out, format!("failed: {}: {e}", cmd.show()))?;
                    outcome.failed = true;
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Run a command that changes the node; `Err` holds the last line of
    /// its error output and its status.
    fn act(&mut self, cmd: &Cmd) -> Result<(), String> {
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
}

#[cfg(test)]
impl CommandRunner for Recording {
    fn run(&mut self, cmd: &Cmd) -> Result<Finished, String> {
        let line = cmd.show();
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
