//! The cluster subcommands of the `kuryr` binary, as functions returning
//! the process exit code: 0 success, 1 a failed check or step, 2 invalid
//! input.

use std::io::Write;
use std::path::Path;

use super::check::{self, CheckOptions};
use super::setup::{self, SetupOptions};
use super::{ClusterError, access_rules, load_inputs};

fn report_error(e: &ClusterError) -> u8 {
    match e {
        ClusterError::Invalid(problems) => {
            eprintln!(
                "kuryr: {} problem{} found:",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            for p in problems {
                eprintln!("  {}: {}", p.field, p.message);
            }
            2
        }
        ClusterError::Read { .. } => {
            eprintln!("kuryr: {e}");
            2
        }
        other => {
            eprintln!("kuryr: {other}");
            1
        }
    }
}

/// `kuryr template validate`: print the effective template as JSON, or
/// every problem.
pub fn template_validate(template: &Path, params: Option<&Path>) -> u8 {
    match load_inputs(template, params) {
        Ok((t, _)) => {
            let text = serde_json::to_string_pretty(&t.to_json()).unwrap_or_default();
            println!("{text}");
            0
        }
        Err(e) => report_error(&e),
    }
}

/// `kuryr template access-rules`: the access rules for the node credential.
pub fn print_access_rules(with_check: bool) -> u8 {
    let mut rules = access_rules::driver_rules();
    if with_check {
        rules.extend(access_rules::check_rules());
    }
    print!("{}", access_rules::to_pretty_json(&rules));
    0
}

/// `kuryr node setup`.
pub fn node_setup(opts: &SetupOptions) -> u8 {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match setup::run(opts, &mut out) {
        Ok(outcome) => {
            let _ = out.flush();
            u8::from(outcome.failed)
        }
        Err(e) => {
            let _ = out.flush();
            report_error(&e)
        }
    }
}

/// `kuryr node check`.
pub fn node_check(opts: &CheckOptions) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kuryr: cannot start the runtime: {e}");
            return 1;
        }
    };
    let report = runtime.block_on(check::run(opts));
    for line in &report.lines {
        println!("{line}");
    }
    u8::from(report.failed())
}
