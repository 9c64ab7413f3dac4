//! Errors of the OpenStack client layer.
//!
//! Neutron and Keystone errors keep their HTTP status and, for Neutron, the
//! `NeutronError.type` string (`NetworkNotFound`, `IpAddressAlreadyAllocated`,
//! ...), so callers can tell "already gone" from "really broken".

use std::fmt;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error answered by an OpenStack API (any non-2xx status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Which service answered (`keystone`, `neutron`).
    pub service: &'static str,
    /// HTTP method of the failed request.
    pub method: String,
    /// Path of the failed request, without the query string.
    pub path: String,
    /// HTTP status code.
    pub status: u16,
    /// Neutron's `NeutronError.type`, or Keystone's `error.title`.
    pub kind: String,
    /// Human readable message from the service.
    pub message: String,
    /// `x-openstack-request-id`, for correlating with server logs.
    pub request_id: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} returned {}",
            self.service, self.method, self.path, self.status
        )?;
        if !self.kind.is_empty() {
            write!(f, " {}", self.kind)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request {id})")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong talking to Keystone or Neutron.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot work (missing auth_url, bad CA file, ...).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// Keystone refused the credentials (wrong password, disabled user, ...).
    #[error("keystone authentication failed: {0}")]
    Auth(Box<ApiError>),
    /// The service catalog has no usable endpoint.
    #[error("no {service} endpoint in the service catalog for interface {interface}{}", region.as_ref().map(|r| format!(" and region {r}")).unwrap_or_default())]
    NoEndpoint {
        service: String,
        interface: String,
        region: Option<String>,
    },
    /// The service answered with an error status.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// The request did not get an answer (connection refused, timeout, TLS).
    /// The message carries the whole cause chain (the TLS or connect error,
    /// not only reqwest's "error sending request").
    #[error("{service} unreachable: {}", chain(source))]
    Transport {
        service: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// The request was sent but no answer came back: it may or may not
    /// have been acted on.
    #[error("{service}: no reply: {detail}")]
    NoReply {
        service: &'static str,
        detail: String,
    },
    /// No answer within the request timeout (the `[neutron] timeout`): the
    /// service accepts connections but does not reply. The request may or
    /// may not have been acted on.
    #[error(
        "{service} did not answer {request} within {} s (request timeout): is {service} overloaded or stopped?",
        after.as_secs()
    )]
    Timeout {
        service: &'static str,
        /// `METHOD /path`.
        request: String,
        after: std::time::Duration,
    },
    /// One failure seen by several callers: every caller waiting for one
    /// token request gets the error of that request.
    #[error(transparent)]
    Shared(std::sync::Arc<Error>),
    /// The answer could not be decoded.
    #[error("cannot decode {service} response to {what}: {detail}")]
    Decode {
        service: &'static str,
        what: String,
        detail: String,
    },
}

/// `err` and every `source()` below it, joined with `: `; a cause whose
/// text the previous message already shows is left out.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

impl Error {
    /// HTTP status of an API error, if this is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(e) | Error::Auth(e) => Some(e.status),
            Error::Shared(e) => e.status(),
            _ => None,
        }
    }

    /// Neutron error type (e.g. `PortNotFound`), if this is an API error.
    pub fn kind(&self) -> Option<&str> {
        match self {
            Error::Api(e) | Error::Auth(e) => Some(e.kind.as_str()),
            Error::Shared(e) => e.kind(),
            _ => None,
        }
    }

    /// The resource does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The request conflicts with the current state (HTTP 409), e.g. a
    /// subnet still in use or an IP already allocated.
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// The resource is still used by others. Neutron answers 409 for
    /// networks and subnets but 400 `SubnetPoolDeleteError` for pools.
    pub fn is_in_use(&self) -> bool {
        self.is_conflict() || self.kind() == Some("SubnetPoolDeleteError")
    }

    /// An `If-Match` precondition failed: the resource changed (HTTP 412).
    pub fn is_precondition_failed(&self) -> bool {
        self.status() == Some(412)
    }

    /// The requested fixed IP is taken by another port.
    pub fn is_ip_already_allocated(&self) -> bool {
        self.kind() == Some("IpAddressAlreadyAllocated")
    }

    /// The call may succeed if repeated (transport failure or 5xx/503).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::NoReply { .. } | Error::Timeout { .. } => true,
            Error::Api(e) => matches!(e.status, 500 | 502 | 503 | 504),
            Error::Shared(e) => e.is_transient(),
            _ => false,
        }
    }

    /// The request may have been acted on although no answer came back
    /// (a timeout, a lost reply): a create may have created.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Error::NoReply { .. } | Error::Timeout { .. } => true,
            // A connection broken after the request was written.
            Error::Transport { source, .. } => !source.is_connect() && !source.is_builder(),
            Error::Shared(e) => e.outcome_unknown(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeats(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner(#[source] std::io::Error);

    #[test]
    fn the_chain_shows_every_cause_once() {
        let err = Repeats(Inner(std::io::Error::other("invalid peer certificate")));
        assert_eq!(chain(&err), "outer: inner: invalid peer certificate");
        assert_eq!(chain(&Inner(std::io::Error::other("x"))), "inner: x");
    }
}
