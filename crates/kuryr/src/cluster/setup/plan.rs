//! From the input files to the plan node setup applies: the template and
//! parameters validated together (every problem at once), the node facts,
//! the rendered files with `kuryr.conf` loaded back as the daemon will,
//! the root resolved, and in managed plugin mode the plugin bundle.

use std::io;
use std::path::{Path, PathBuf};

use super::SetupOptions;
use super::plugin;
use crate::cluster::render::{self, Plan};
use crate::cluster::{ClusterError, ClusterParams, ClusterTemplate, facts, load_inputs};
use crate::config::Config;
use crate::paths;

/// The plan and where it goes.
pub(super) struct Prepared {
    pub template: ClusterTemplate,
    pub params: ClusterParams,
    pub plan: Plan,
    /// `--root`, canonical.
    pub root: PathBuf,
    /// The root is `/`: this node itself.
    pub live: bool,
}

/// Validate the inputs, render the plan and check it.
pub(super) fn prepare(opts: &SetupOptions) -> Result<Prepared, ClusterError> {
    let (template, params) = load_inputs(&opts.template, Some(&opts.params))?;
    let params = params.ok_or_else(|| ClusterError::Invalid(vec![]))?;
    let facts = facts::gather(&params, &template.kuryr, opts.hostname.as_deref())
        .map_err(ClusterError::Invalid)?;
    let mut plan =
        render::render(&template, &params, opts.role, &facts).map_err(ClusterError::Invalid)?;
    let config = check_rendered_config(&plan)?;
    if let Some(note) = unsupported_mode_note(&config) {
        plan.notes.push(note);
    }
    let root = canonical_root(&opts.root)?;
    plugin::add_bundle(&mut plan, &root, params.driver.plugin_binary.as_deref())?;
    Ok(Prepared {
        template,
        params,
        plan,
        live: root == Path::new("/"),
        root,
    })
}

/// `--root`, canonical; it must be a directory.
fn canonical_root(given: &Path) -> Result<PathBuf, ClusterError> {
    let root = std::fs::canonicalize(given).map_err(|source| ClusterError::Read {
        path: given.to_path_buf(),
        source,
    })?;
    if !root.is_dir() {
        return Err(ClusterError::Read {
            path: given.to_path_buf(),
            source: io::Error::new(io::ErrorKind::NotADirectory, "--root is not a directory"),
        });
    }
    Ok(root)
}

/// Load the rendered kuryr.conf back as the daemon will: a file that does
/// not load, or loads with warnings, is a rendering bug.
fn check_rendered_config(plan: &Plan) -> Result<Config, ClusterError> {
    let path = PathBuf::from(paths::KURYR_CONF);
    let text = plan.text(paths::KURYR_CONF).unwrap_or_default();
    let bug = |reason: String| ClusterError::Render {
        path: path.clone(),
        reason,
    };
    let config =
        Config::from_texts(&[(paths::KURYR_CONF, text)]).map_err(|e| bug(e.to_string()))?;
    if !config.warnings.is_empty() {
        return Err(bug(config.warnings.join("; ")));
    }
    config.session_config().map_err(|e| bug(e.to_string()))?;
    Ok(config)
}

/// Say so when this build's daemon would refuse the configured port driver
/// (sriov is not supported; a kernel may lack ipvlan or 8021q).
fn unsupported_mode_note(config: &Config) -> Option<String> {
    let mut probe = config.clone();
    probe.neutron.cafile = None;
    probe.neutron.certfile = None;
    probe.neutron.keyfile = None;
    match crate::daemon::build_driver(&probe) {
        Err(crate::daemon::DaemonError::UnsupportedPortDriver(driver)) => Some(format!(
            "this build of the driver does not serve port driver {driver} yet: kuryr.service will not \
             start until it does (kuryr_mode agent works)"
        )),
        _ => None,
    }
}
