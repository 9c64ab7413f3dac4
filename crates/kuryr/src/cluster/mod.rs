//! Swarm cluster integration: what a provisioning tool (Heat/cloud-init,
//! Ansible, Terraform, ...) runs on each node of a Docker Swarm cluster
//! whose cluster template says `network_driver = kuryr`.
//!
//! - [`template`]: a cluster template (the Magnum fields that matter),
//!   validated with Magnum's network-driver rules, every problem reported.
//! - [`labels`]: the `kuryr_*` labels, validated up front.
//! - [`params`]: the cluster parameters: Keystone, the node credential,
//!   binding host naming, the agent-mode services.
//! - [`access_rules`]: the Keystone application-credential access rules
//!   covering exactly the Neutron calls the driver makes.
//! - [`render`]: pure rendering of every file a node needs (template +
//!   parameters + role + node facts → path → mode and bytes), and the
//!   service steps.
//! - [`setup`]: `kuryr node setup`: compare with the node, write what
//!   differs, run the service steps; idempotent, with `--dry-run` and
//!   `--root`. Every command it runs goes through one runner, which unit
//!   tests replace with a recording fake.
//! - [`check`]: `kuryr node check`: one OK/FAIL line per health check.
//!
//! The node paths all of them use are in [`crate::paths`].
//!
//! Both input files are JSON: a template file holds the same object Magnum's
//! API takes and returns (`openstack coe cluster template show -f json`
//! output can be used as is), and JSON needs no new dependency.

pub mod access_rules;
pub mod check;
pub mod cli;
pub mod facts;
pub(crate) mod http;
mod json;
pub mod labels;
pub mod params;
pub mod render;
pub mod setup;
pub(crate) mod systemd;
pub mod template;

use std::fmt;
use std::path::{Path, PathBuf};

pub use labels::{AgentType, KuryrLabels, KuryrMode};
pub use params::ClusterParams;
pub use render::{FileSpec, NodeFacts, Plan, Role};
pub use template::{ClusterTemplate, Coe, NetworkDriverPolicy};

/// One thing wrong with an input, named by where it is (`labels/kuryr_mtu`,
/// `credential.application_credential_secret`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field, as a path into the input file.
    pub field: String,
    /// What is wrong and what is expected, in one sentence or two.
    pub message: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why a cluster command could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The inputs are wrong: every problem found, one per line.
    #[error("{}", format_problems(.0))]
    Invalid(Vec<Problem>),
    #[error("{path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A rendered file does not load back: a bug in the renderer.
    #[error("internal error: the rendered {path} does not load: {reason}")]
    Render { path: PathBuf, reason: String },
    /// A service step failed on the live node.
    #[error("{0}")]
    Action(String),
}

fn format_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Read a whole input file as text.
pub(crate) fn read_text(path: &Path) -> Result<String, ClusterError> {
    std::fs::read_to_string(path).map_err(|source| ClusterError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Load and validate a template and its parameters together: the
/// parameters carry the operator's network-driver policy the template is
/// checked against. All problems of both files are returned at once.
pub fn load_inputs(
    template_path: &Path,
    params_path: Option<&Path>,
) -> Result<(ClusterTemplate, Option<ClusterParams>), ClusterError> {
    let template_text = read_text(template_path)?;
    let params_text = params_path.map(read_text).transpose()?;
    let mut problems = Vec::new();
    let params = match params_text.as_deref().map(ClusterParams::from_json) {
        Some(Ok(p)) => Some(p),
        Some(Err(mut errs)) => {
            problems.append(&mut errs);
            None
        }
        None => None,
    };
    // A broken parameters file still yields its driver policy, so the
    // template is judged by the operator's rules, not Magnum's defaults.
    let policy = match (&params, &params_text) {
        (Some(p), _) => p.network_drivers.clone(),
        (None, Some(text)) => params::policy_only(text),
        (None, None) => NetworkDriverPolicy::default(),
    };
    let template = match ClusterTemplate::from_json(&template_text, &policy) {
        Ok(t) => Some(t),
        Err(mut errs) => {
            problems.append(&mut errs);
            None
        }
    };
    match template {
        Some(t) if problems.is_empty() => Ok((t, params)),
        _ => Err(ClusterError::Invalid(problems)),
    }
}
