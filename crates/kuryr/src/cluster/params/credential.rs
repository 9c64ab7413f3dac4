//! `credential`: the Keystone credential every node uses to call Neutron,
//! as keystoneauth options. The secret is held as a [`SecretString`] and
//! never appears in a message.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::secret_problem;
use crate::cluster::json::{Fields, type_name};

/// Which kind of Keystone credential the nodes hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A Keystone application credential: preferred, ideally restricted by
    /// access rules to the Neutron calls of the driver.
    ApplicationCredential,
    /// A service account's password: still works, but is usable for
    /// anything the account may do, anywhere, until it is changed.
    Password,
}

impl CredentialKind {
    /// keystoneauth's `auth_type` for this credential.
    pub fn auth_type(self) -> &'static str {
        match self {
            CredentialKind::ApplicationCredential => "v3applicationcredential",
            CredentialKind::Password => "password",
        }
    }

    /// The keystoneauth option holding the secret.
    pub fn secret_option(self) -> &'static str {
        match self {
            CredentialKind::ApplicationCredential => "application_credential_secret",
            CredentialKind::Password => "password",
        }
    }

    /// The `credential.type` value.
    pub fn type_name(self) -> &'static str {
        match self {
            CredentialKind::ApplicationCredential => "application_credential",
            CredentialKind::Password => "password",
        }
    }

    /// The fields a credential of this kind may have.
    fn allowed_fields(self) -> &'static [&'static str] {
        match self {
            CredentialKind::ApplicationCredential => &[
                "type",
                "application_credential_id",
                "application_credential_name",
                "application_credential_secret",
                "user_id",
                "username",
                "user_domain_id",
                "user_domain_name",
            ],
            CredentialKind::Password => &[
                "type",
                "password",
                "user_id",
                "username",
                "user_domain_id",
                "user_domain_name",
                "project_id",
                "project_name",
                "project_domain_id",
                "project_domain_name",
            ],
        }
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CredentialKind::ApplicationCredential => "application credential",
            CredentialKind::Password => "password",
        })
    }
}

/// The node credential, as keystoneauth options.
#[derive(Debug, Clone)]
pub struct NodeCredential {
    pub kind: CredentialKind,
    /// The non-secret keystoneauth options, in [`CREDENTIAL_OPTION_ORDER`].
    pub options: Vec<(&'static str, String)>,
    pub secret: SecretString,
}

/// Every non-secret keystoneauth option a credential may carry, in the
/// order they are written to `kuryr.conf`.
pub const CREDENTIAL_OPTION_ORDER: &[&str] = &[
    "application_credential_id",
    "application_credential_name",
    "user_id",
    "username",
    "user_domain_id",
    "user_domain_name",
    "project_id",
    "project_name",
    "project_domain_id",
    "project_domain_name",
];

impl NodeCredential {
    /// The secret, for writing into `kuryr.conf` only.
    pub(crate) fn expose(&self) -> &str {
        self.secret.expose_secret()
    }

    /// A short description without the secret: `application credential
    /// 8f0c…` or `password of user kuryr`.
    pub fn describe(&self) -> String {
        let get = |k: &str| option(&self.options, k);
        match self.kind {
            CredentialKind::ApplicationCredential => format!(
                "application credential {}",
                get("application_credential_id")
                    .or(get("application_credential_name"))
                    .unwrap_or("?")
            ),
            CredentialKind::Password => format!(
                "password of user {}",
                get("username").or(get("user_id")).unwrap_or("?")
            ),
        }
    }
}

fn option<'a>(options: &'a [(&'static str, String)], key: &str) -> Option<&'a str> {
    options
        .iter()
        .find(|(o, _)| *o == key)
        .map(|(_, v)| v.as_str())
}

/// Read `credential`: its type, the options that type allows, the secret,
/// and whether the options name a user (and, for a password, a project).
pub(super) fn read(f: &mut Fields<'_>) -> Option<NodeCredential> {
    let Some(obj) = f.object("credential") else {
        if f.get("credential").is_none() {
            f.problem(
                "credential",
                "credential is missing: the nodes need a Keystone application credential \
                 (preferred) or a password account to call Neutron",
            );
        }
        return None;
    };
    let mut g = Fields::new(obj, "credential", f.out);
    let kind = read_kind(&mut g)?;
    reject_other_kinds_fields(&mut g, obj, kind);
    let secret = read_secret(&mut g, kind.secret_option());
    let options = read_options(&mut g, kind);
    check_identity(&mut g, kind, &options);
    Some(NodeCredential {
        kind,
        options,
        secret: secret?,
    })
}

/// `type`: application_credential or password.
fn read_kind(g: &mut Fields<'_>) -> Option<CredentialKind> {
    match g.opt_str("type").as_deref() {
        Some("application_credential") => Some(CredentialKind::ApplicationCredential),
        Some("password") => Some(CredentialKind::Password),
        Some(other) => {
            g.problem(
                "type",
                format!(
                    "credential.type {other:?} is not supported: use application_credential (preferred) or password"
                ),
            );
            None
        }
        None => {
            g.problem(
                "type",
                "credential.type is missing: use application_credential (preferred) or password",
            );
            None
        }
    }
}

/// Known credential fields that belong to the other kind are named as
/// such; anything else unknown is reported as unknown.
fn reject_other_kinds_fields(g: &mut Fields<'_>, obj: &Map<String, Value>, kind: CredentialKind) {
    let allowed = kind.allowed_fields();
    let all_known: Vec<&str> = CREDENTIAL_OPTION_ORDER
        .iter()
        .copied()
        .chain(["type", "password", "application_credential_secret"])
        .collect();
    let wrong_kind = obj
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()) && all_known.contains(&k.as_str()));
    for key in wrong_kind {
        let why = if key.starts_with("project_") {
            ": an application credential is bound to the project it was created in"
        } else {
            ""
        };
        let kind_name = kind.type_name();
        g.problem(
            key,
            format!("credential.{key} does not apply to credential type {kind_name}{why}"),
        );
    }
    g.reject_unknown(&all_known, "credential");
}

/// The secret option of the kind, checked without ever showing it.
fn read_secret(g: &mut Fields<'_>, key: &str) -> Option<SecretString> {
    match g.get(key) {
        Some(Value::String(s)) if !s.is_empty() => match secret_problem(s) {
            Some(why) => {
                g.problem(key, format!("credential.{key} {why}"));
                None
            }
            None => Some(SecretString::from(s.clone())),
        },
        Some(Value::String(_)) | None => {
            g.problem(key, format!("credential.{key} is missing"));
            None
        }
        Some(other) => {
            let t = type_name(other);
            g.problem(key, format!("credential.{key} must be a string, not {t}"));
            None
        }
    }
}

/// The non-secret options the kind allows, in [`CREDENTIAL_OPTION_ORDER`].
fn read_options(g: &mut Fields<'_>, kind: CredentialKind) -> Vec<(&'static str, String)> {
    let allowed = kind.allowed_fields();
    let mut options = Vec::new();
    for key in CREDENTIAL_OPTION_ORDER {
        if !allowed.contains(key) {
            continue;
        }
        if let Some(v) = g.opt_name(key, 255) {
            if v.trim() != v {
                g.problem(
                    key,
                    format!("credential.{key} must not start or end with spaces"),
                );
                continue;
            }
            options.push((*key, v));
        }
    }
    options
}

/// The options identify the credential: an application credential by id
/// (or by name with its owner), a password by user and project.
fn check_identity(g: &mut Fields<'_>, kind: CredentialKind, options: &[(&'static str, String)]) {
    let has = |k: &str| option(options, k).is_some();
    let user_ok =
        has("user_id") || (has("username") && (has("user_domain_name") || has("user_domain_id")));
    match kind {
        CredentialKind::ApplicationCredential => {
            if !has("application_credential_id") && !has("application_credential_name") {
                g.problem(
                    "application_credential_id",
                    "credential.application_credential_id is missing (or give application_credential_name with its owner)",
                );
            } else if !has("application_credential_id") && !user_ok {
                g.problem(
                    "application_credential_name",
                    "credential.application_credential_name needs the owner: user_id, or username with user_domain_name or user_domain_id",
                );
            }
        }
        CredentialKind::Password => {
            if !user_ok {
                g.problem(
                    "username",
                    "a password credential needs user_id, or username with user_domain_name or user_domain_id \
                     (a Keystone v3 user name is only unique within its domain)",
                );
            }
            let project_ok = has("project_id")
                || (has("project_name")
                    && (has("project_domain_name") || has("project_domain_id")));
            if !project_ok {
                g.problem(
                    "project_name",
                    "a password credential needs project_id, or project_name with project_domain_name or \
                     project_domain_id: kuryr needs a token scoped to the project that owns the networks",
                );
            }
        }
    }
}
