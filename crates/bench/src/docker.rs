//! The lab's dockerd through the `docker` CLI, timed the way a user sees
//! it: from starting the command until it returns.

use std::process::Command;
use std::time::{Duration, Instant};

/// The outcome of one CLI command.
#[derive(Debug, Clone)]
pub struct Run {
    pub ok: bool,
    pub took: Duration,
    pub output: String,
}

impl Run {
    pub fn ms(&self) -> f64 {
        self.took.as_secs_f64() * 1000.0
    }
}

/// Run `docker args...` against the lab's dockerd.
pub fn docker(args: &[&str]) -> Run {
    let started = Instant::now();
    let out = Command::new("/usr/bin/docker")
        .arg("-H")
        .arg("unix:///run/docker.sock")
        .args(args)
        .output();
    let took = started.elapsed();
    match out {
        Ok(o) => Run {
            ok: o.status.success(),
            took,
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
            .trim()
            .to_string(),
        },
        Err(e) => Run {
            ok: false,
            took,
            output: format!("cannot run docker: {e}"),
        },
    }
}

/// [`docker`], failing the benchmark with the output when it fails.
pub fn docker_ok(args: &[&str]) -> crate::Result<Run> {
    let run = docker(args);
    if !run.ok {
        return Err(format!("docker {} failed: {}", args.join(" "), run.output).into());
    }
    Ok(run)
}

/// Remove containers and networks, ignoring what is already gone
/// (several at once: `docker rm -f` is slow one by one).
pub fn remove(containers: &[String], networks: &[String]) {
    for chunk in containers.chunks(25) {
        let mut args = vec!["rm", "-f"];
        args.extend(chunk.iter().map(String::as_str));
        let _ = docker(&args);
    }
    for n in networks {
        let _ = docker(&["network", "rm", n]);
    }
}

/// `docker run -d --name NAME --net NET busybox sleep 600`.
pub fn run_args<'a>(name: &'a str, net_flag: &'a str) -> Vec<&'a str> {
    vec![
        "run", "-d", "--name", name, net_flag, "busybox", "sleep", "600",
    ]
}

/// Wait this long between commands so the logs of one operation are
/// written before the next starts.
pub const SETTLE: Duration = Duration::from_millis(150);
