//! `config`: `kuryr.conf` loads as the daemon loads it, with a complete
//! credential.

use super::{CheckOptions, Loaded, Report, Status};
use crate::config::Config;

/// Load the configuration; one line, `OK` or `FAIL`.
pub(super) fn check_config(r: &mut Report, opts: &CheckOptions) -> Loaded {
    let path = opts.config_file.display().to_string();
    let config = match Config::load(std::slice::from_ref(&opts.config_file)) {
        Ok(c) => Some(c),
        Err(e) => {
            r.push(
                "config",
                Status::Fail,
                format!("{e}: fix {path} or re-run `kuryr node setup`"),
            );
            None
        }
    };
    let session_config = config.as_ref().and_then(|c| match c.session_config() {
        Ok(mut sc) => {
            sc.timeout = Some(sc.timeout.unwrap_or(opts.timeout).min(opts.timeout));
            Some(sc)
        }
        Err(e) => {
            r.push(
                "config",
                Status::Fail,
                format!(
                    "{path}: {e}: fix the [neutron] credential options or re-run `kuryr node setup`"
                ),
            );
            None
        }
    });
    let host = config.as_ref().map(|c| {
        c.default
            .host
            .clone()
            .unwrap_or_else(crate::daemon::hostname)
    });
    if let (Some(c), Some(_)) = (&config, &session_config) {
        r.push("config", Status::Ok, loads(&path, c, host.as_deref()));
    }
    Loaded {
        path,
        config,
        session_config,
        host,
    }
}

/// `PATH loads: port driver ..., scope ..., binding host ...`, and the
/// loader's warnings.
fn loads(path: &str, c: &Config, host: Option<&str>) -> String {
    let warnings = if c.warnings.is_empty() {
        String::new()
    } else {
        format!("; warnings: {}", c.warnings.join("; "))
    };
    format!(
        "{path} loads: port driver {}, scope {}, binding host {}{warnings}",
        c.default.default_port_driver,
        c.default.capability_scope,
        host.unwrap_or_default()
    )
}
