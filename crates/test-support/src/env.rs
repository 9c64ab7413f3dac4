//! The lab as the tests see it: variables exported by `lab/env`, the
//! accounts they name, and clients of those accounts.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use kuryr_openstack::{Credential, DomainRef, Neutron, Scope, Session, SessionConfig, UserRef};
use secrecy::SecretString;

/// A variable of the lab's environment; panics naming how to get it.
pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: these tests need the lab. Run `sudo lab/up` and \
             `eval \"$(lab/env kuryr)\"`, or use ./run-tests which does both"
        )
    })
}

/// Keystone's URL (`OS_AUTH_URL`, or the lab's default).
pub fn auth_url() -> String {
    std::env::var("OS_AUTH_URL").unwrap_or_else(|_| "http://127.0.0.1:5000/v3".into())
}

/// `binding:host_id` of the lab's OVS agent.
pub fn host() -> String {
    var("KURYR_LAB_HOST")
}

/// The lab's state directory (`etc/`, `log/`, `run/`).
pub fn lab_dir() -> String {
    var("KURYR_LAB_DIR")
}

/// An account of the lab.
pub struct Account {
    pub username: String,
    pub password: String,
    pub project: String,
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

/// A project-scoped password credential of `a` (with `password`, which
/// may be a wrong one on purpose).
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

/// A session of account `which`, with call counters of its own.
pub fn session(which: &str) -> Session {
    let a = account(which);
    let cred = password_credential(&a, &a.password);
    Session::new(SessionConfig::new(auth_url(), cred)).expect("session")
}

/// A Neutron client of account `which`, with call counters of its own.
pub fn neutron(which: &str) -> Neutron {
    Neutron::new(session(which))
}

/// [`neutron`] whose requests may take up to `timeout` (the default is
/// the driver's, 15 s).
pub fn neutron_with_timeout(which: &str, timeout: std::time::Duration) -> Neutron {
    let a = account(which);
    let cred = password_credential(&a, &a.password);
    let mut config = SessionConfig::new(auth_url(), cred);
    config.timeout = Some(timeout);
    Neutron::new(Session::new(config).expect("session"))
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// 64 random bits, different for every call, process and run.
pub fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}

/// `prefix` and 6 random hex digits: a short name no other run uses
/// (Docker and Neutron names, scratch directories).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{:06x}", random_u64() & 0xff_ffff)
}
