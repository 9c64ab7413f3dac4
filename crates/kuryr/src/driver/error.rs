//! Errors of the driver layer and how they reach Docker.

use crate::binding::BindError;
use crate::protocol::BadRequest;

/// Why a Docker call failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The request body is malformed or has an invalid value (HTTP 400).
    #[error(transparent)]
    BadRequest(#[from] BadRequest),
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
    /// The port did not become ACTIVE in time.
    #[error("{0}")]
    Timeout(String),
}

impl DriverError {
    /// HTTP status for the reply. Everything but malformed input is a 500:
    /// dockerd treats any non-200 as failure, and a 404 would be taken as
    /// "method not implemented" for the optional calls.
    pub fn http_status(&self) -> u16 {
        match self {
            DriverError::BadRequest(_) => 400,
            _ => 500,
        }
    }
}

pub type Result<T, E = DriverError> = std::result::Result<T, E>;
