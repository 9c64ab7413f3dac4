//! A thin, typed async client for Keystone v3 and Neutron v2.0.
//!
//! It covers exactly what a Docker network driver needs from OpenStack:
//! password, application-credential and token authentication with a cached,
//! self-renewing token; the service catalog; and Neutron networks, subnets,
//! subnet pools, ports, tags, security groups and trunks. Every request is
//! counted and timed in one [`CallStats`], which the driver and the
//! benchmarks read.
//!
//! With the `fake` feature, [`fake::FakeNeutron`] answers a session's
//! requests in process, for unit tests and fuzzing of callers.

// No function over 80 lines outside tests (threshold in clippy.toml);
// CI runs clippy with -D warnings.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

pub mod auth;
pub mod error;
#[cfg(feature = "fake")]
pub mod fake;
pub mod metrics;
pub mod neutron;
pub mod session;

pub use auth::{Credential, DomainRef, Interface, Scope, Token, UserRef};
pub use error::{ApiError, Error, Result, chain};
pub use metrics::{
    Answer, CallSnapshot, CallStats, InFlight, LATENCY_BUCKETS, OpStats, counted, watched,
};
pub use neutron::{Neutron, Query, TagResource};
pub use session::{Session, SessionConfig, TlsConfig};
