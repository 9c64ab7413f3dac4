//! The one error type of configuration loading.

use std::fmt;
use std::path::PathBuf;

use super::oslo::ParseError;

/// Where a value came from, so an error can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of a configuration file.
    File { path: String, line: usize },
    /// An environment variable that changes a default (as in kuryr-libnetwork).
    Env(&'static str),
    /// The built-in default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{path}:{line}"),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Default => f.write_str("built-in default"),
        }
    }
}

/// An option as written somewhere: `file:line: [section] key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub origin: Origin,
    pub section: String,
    /// The key as found, which may be a deprecated name.
    pub key: String,
}

impl Place {
    pub(crate) fn boxed(
        origin: Origin,
        section: impl Into<String>,
        key: impl Into<String>,
    ) -> Box<Place> {
        Box::new(Place {
            origin,
            section: section.into(),
            key: key.into(),
        })
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: [{}] {}", self.origin, self.section, self.key)
    }
}

/// Everything that can make a configuration unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file is not valid oslo.config INI.
    #[error("invalid configuration file: {0}")]
    Parse(#[from] ParseError),

    /// An option has a value of the wrong form.
    #[error("{at} = {value:?}: expected {expected}")]
    InvalidValue {
        at: Box<Place>,
        /// The offending value (`<secret>` for passwords and tokens).
        value: String,
        expected: String,
    },

    /// A `$reference` cannot be expanded (it loops).
    #[error("{at}: {detail}")]
    Interpolation { at: Box<Place>, detail: String },

    /// An option kuryr-libnetwork accepts but this implementation does not.
    #[error("{at}: {reason}")]
    Unsupported { at: Box<Place>, reason: String },

    /// Options that are each valid but do not fit together.
    #[error("configuration error: {0}")]
    Inconsistent(String),

    /// Configuration files group or others may read, refused with
    /// `[DEFAULT] strict_config_permissions` (each file named).
    #[error("{}", .0.join("; "))]
    Permissions(Vec<String>),

    /// Keystone credentials are missing or incomplete.
    #[error("[{section}] authentication: {message}")]
    Auth { section: String, message: String },
}
