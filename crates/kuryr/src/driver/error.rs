//! Errors of the driver layer. Malformed requests never get here (the
//! protocol layer refuses them); the server maps every `DriverError` to one
//! HTTP status.

use crate::binding::BindError;

/// Why a Docker call failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The request is well formed but cannot be honoured (an unknown
    /// option value, a conflicting address, a port in use...).
    #[error("{0}")]
    Invalid(String),
    /// A Neutron resource the request refers to does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Neutron or Keystone failed.
    #[error("neutron: {0}")]
    Neutron(#[from] kuryr_openstack::Error),
    /// The host side could not be set up or torn down.
    #[error("host binding: {0}")]
    Binding(#[from] BindError),
    /// The driver cannot serve the call now (still starting, or its
    /// start-up failed).
    #[error("{0}")]
    Unavailable(String),
    /// The port did not become ACTIVE in time.
    #[error("{0}")]
    Timeout(String),
    /// The call was abandoned: Docker got an error when its bound ran out
    /// (see `driver::bounded`); what it changed is undone.
    #[error("abandoned: the call did not finish in time and was rolled back")]
    Abandoned,
    /// A handler task ended without an outcome (a bug).
    #[error("internal error: {0}")]
    Internal(String),
    /// A test's fault point failed the call (tests only).
    #[error("injected fault at {0}")]
    Injected(String),
    /// A test's fault point stopped the call dead, as if the daemon was
    /// killed there: nothing is rolled back (tests only).
    #[error("simulated crash at {0}")]
    Crashed(String),
}

impl DriverError {
    /// The kind, as a metrics label and in the log line of a failed call.
    pub fn kind(&self) -> &'static str {
        match self {
            DriverError::Invalid(_) => "invalid",
            DriverError::NotFound(_) => "not_found",
            DriverError::Neutron(e) if e.is_not_found() => "neutron_not_found",
            DriverError::Neutron(e) if e.is_conflict() => "neutron_conflict",
            DriverError::Neutron(e) if e.is_transient() => "neutron_unreachable",
            DriverError::Neutron(_) => "neutron",
            DriverError::Binding(_) => "binding",
            DriverError::Unavailable(_) => "unavailable",
            DriverError::Timeout(_) => "timeout",
            DriverError::Abandoned => "abandoned",
            DriverError::Internal(_) => "internal",
            DriverError::Injected(_) => "injected",
            DriverError::Crashed(_) => "crashed",
        }
    }
}

pub type Result<T, E = DriverError> = std::result::Result<T, E>;
