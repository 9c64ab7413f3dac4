//! Shared helpers for tests against the lab (`lab/up`).

#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use kuryr_openstack::{Credential, DomainRef, Neutron, Scope, Session, SessionConfig, UserRef};
use secrecy::SecretString;

/// An account of the lab, read from the environment `lab/env` exports.
pub struct Account {
    pub username: String,
    pub password: String,
    pub project: String,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: these tests need the lab. Run `sudo lab/up` and \
             `eval \"$(lab/env)\"`, or use ./run-tests which does both"
        )
    })
}

pub fn auth_url() -> String {
    std::env::var("OS_AUTH_URL").unwrap_or_else(|_| "http://127.0.0.1:5000/v3".into())
}

/// `admin`, `kuryr` or `demo`.
pub fn account(which: &str) -> Account {
    let up = which.to_ascii_uppercase();
    Account {
        username: var(&format!("KURYR_LAB_{up}_USERNAME")),
        password: var(&format!("KURYR_LAB_{up}_PASSWORD")),
        project: var(&format!("KURYR_LAB_{up}_PROJECT")),
    }
}

pub fn password_credential(a: &Account, password: &str) -> Credential {
    Credential::Password {
        user: UserRef {
            id: None,
            name: Some(a.username.clone()),
            domain: DomainRef::default_domain(),
        },
        password: SecretString::from(password.to_string()),
        scope: Scope::Project {
            id: None,
            name: Some(a.project.clone()),
            domain: DomainRef::default_domain(),
        },
    }
}

pub fn session(which: &str) -> Session {
    let a = account(which);
    let cred = password_credential(&a, &a.password);
    Session::new(SessionConfig::new(auth_url(), cred)).expect("session")
}

pub fn neutron(which: &str) -> Neutron {
    Neutron::new(session(which))
}

/// A name no other test run uses, so leftovers never collide.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{:x}", std::process::id(), nanos % 0xffff_ffff)
}

/// A /24 inside 10.200.0.0/16..10.250.0.0/16 derived from a name, so
/// concurrent tests rarely pick the same one. Never routed anywhere.
pub fn test_cidr(seed: &str) -> (String, String) {
    let h = seed
        .bytes()
        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    let a = 200 + (h % 50);
    let b = (h >> 8) % 256;
    (format!("10.{a}.{b}.0/24"), format!("10.{a}.{b}"))
}
