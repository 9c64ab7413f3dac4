//! Keystone credentials as keystoneauth reads them from a config section
//! (`keystoneauth1.loading.conf`), turned into a [`Credential`] and [`Scope`].

use std::fmt;
use std::str::FromStr;

use kuryr_openstack::{Credential, DomainRef, Scope, UserRef};
use secrecy::SecretString;

use super::error::{ConfigError, Place};
use super::source::{Group, Opt};

/// The keystoneauth plugins we implement (`auth_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    /// `password`: the version-independent plugin; `default_domain_*`
    /// fills in missing user and project domains.
    Password,
    /// `v3password`: user and project domains must be given.
    V3Password,
    /// `token`: trade an existing token for a scoped one.
    Token,
    /// `v3token`.
    V3Token,
    /// `v3applicationcredential` (also accepted as `applicationcredential`).
    V3ApplicationCredential,
}

impl AuthType {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::Password => "password",
            AuthType::V3Password => "v3password",
            AuthType::Token => "token",
            AuthType::V3Token => "v3token",
            AuthType::V3ApplicationCredential => "v3applicationcredential",
        }
    }

    /// Version-independent plugins honour `default_domain_id/_name`.
    fn is_generic(self) -> bool {
        matches!(self, AuthType::Password | AuthType::Token)
    }
}

const AUTH_TYPE_EXPECTED: &str =
    "one of password, v3password, token, v3token, v3applicationcredential";

impl FromStr for AuthType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "password" => Ok(AuthType::Password),
            "v3password" => Ok(AuthType::V3Password),
            "token" => Ok(AuthType::Token),
            "v3token" => Ok(AuthType::V3Token),
            "v3applicationcredential" | "applicationcredential" => {
                Ok(AuthType::V3ApplicationCredential)
            }
            "v2password" | "v2token" => Err(format!(
                "{AUTH_TYPE_EXPECTED} (Keystone v2.0 is gone; use the v3 equivalent)"
            )),
            _ => Err(format!(
                "{AUTH_TYPE_EXPECTED} (other keystoneauth plugins are not supported)"
            )),
        }
    }
}

impl fmt::Display for AuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) const AUTH_SECTION: Opt = Opt::new("auth_section");
pub(crate) const AUTH_TYPE: Opt = Opt::new("auth_type").deprecated(&["auth_plugin"]);
const AUTH_URL: Opt = Opt::new("auth_url");
const USER_ID: Opt = Opt::new("user_id");
const USERNAME: Opt = Opt::new("username").deprecated(&["user_name"]);
const PASSWORD: Opt = Opt::new("password").secret();
const USER_DOMAIN_ID: Opt = Opt::new("user_domain_id");
const USER_DOMAIN_NAME: Opt = Opt::new("user_domain_name");
const PROJECT_ID: Opt = Opt::new("project_id").deprecated(&["tenant_id"]);
const PROJECT_NAME: Opt = Opt::new("project_name").deprecated(&["tenant_name"]);
const PROJECT_DOMAIN_ID: Opt = Opt::new("project_domain_id");
const PROJECT_DOMAIN_NAME: Opt = Opt::new("project_domain_name");
const DOMAIN_ID: Opt = Opt::new("domain_id");
const DOMAIN_NAME: Opt = Opt::new("domain_name");
const DEFAULT_DOMAIN_ID: Opt = Opt::new("default_domain_id");
const DEFAULT_DOMAIN_NAME: Opt = Opt::new("default_domain_name");
const SYSTEM_SCOPE: Opt = Opt::new("system_scope");
const TRUST_ID: Opt = Opt::new("trust_id");
const TOKEN: Opt = Opt::new("token").secret();
const APP_CRED_ID: Opt = Opt::new("application_credential_id");
const APP_CRED_NAME: Opt = Opt::new("application_credential_name");
const APP_CRED_SECRET: Opt = Opt::new("application_credential_secret").secret();

/// `auth_type` plus every plugin option: what is read from the auth section.
pub(crate) const OPTS: &[Opt] = &[
    AUTH_TYPE,
    AUTH_URL,
    USER_ID,
    USERNAME,
    PASSWORD,
    USER_DOMAIN_ID,
    USER_DOMAIN_NAME,
    PROJECT_ID,
    PROJECT_NAME,
    PROJECT_DOMAIN_ID,
    PROJECT_DOMAIN_NAME,
    DOMAIN_ID,
    DOMAIN_NAME,
    DEFAULT_DOMAIN_ID,
    DEFAULT_DOMAIN_NAME,
    SYSTEM_SCOPE,
    TRUST_ID,
    TOKEN,
    APP_CRED_ID,
    APP_CRED_NAME,
    APP_CRED_SECRET,
];

/// The keystoneauth options of the auth section. Empty values count as
/// unset, as keystoneauth's truthiness checks treat them. Secrets are
/// redacted by `Debug`.
#[derive(Debug, Clone, Default)]
pub struct AuthOptions {
    /// The section these were read from (`neutron`, or `auth_section`).
    pub section: String,
    pub auth_type: Option<AuthType>,
    pub auth_url: Option<String>,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub user_domain_id: Option<String>,
    pub user_domain_name: Option<String>,
    pub project_id: Option<String>,
    pub project_name: Option<String>,
    pub project_domain_id: Option<String>,
    pub project_domain_name: Option<String>,
    pub domain_id: Option<String>,
    pub domain_name: Option<String>,
    pub default_domain_id: Option<String>,
    pub default_domain_name: Option<String>,
    /// Only `all` exists in Keystone.
    pub system_scope: Option<String>,
    pub token: Option<SecretString>,
    pub application_credential_id: Option<String>,
    pub application_credential_name: Option<String>,
    pub application_credential_secret: Option<SecretString>,
}

impl AuthOptions {
    pub(crate) fn load(g: &Group<'_>) -> Result<Self, ConfigError> {
        let auth_type = match g.found(&AUTH_TYPE)? {
            Some(f) if f.text.trim().is_empty() => None,
            Some(f) => Some(
                f.text
                    .parse()
                    .map_err(|e: String| g.invalid(&AUTH_TYPE, &f, e))?,
            ),
            None => None,
        };
        if let Some(f) = g.found(&TRUST_ID)?.filter(|f| !f.text.trim().is_empty()) {
            return Err(ConfigError::Unsupported {
                at: Place::boxed(f.origin, g.name.clone(), f.key),
                reason:
                    "Keystone trusts are not supported; use a password or an application credential"
                        .into(),
            });
        }
        let system_scope = match g.found(&SYSTEM_SCOPE)? {
            Some(f) if f.text.trim().is_empty() => None,
            Some(f) if f.text.trim().eq_ignore_ascii_case("all") => Some("all".to_string()),
            Some(f) => {
                return Err(g.invalid(
                    &SYSTEM_SCOPE,
                    &f,
                    "all (the only system scope Keystone has)",
                ));
            }
            None => None,
        };
        let s = |opt: &Opt| -> Result<Option<String>, ConfigError> {
            Ok(g.opt_string(opt)?
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()))
        };
        Ok(AuthOptions {
            section: g.name.clone(),
            auth_type,
            auth_url: s(&AUTH_URL)?,
            user_id: s(&USER_ID)?,
            username: s(&USERNAME)?,
            password: g.secret(&PASSWORD)?,
            user_domain_id: s(&USER_DOMAIN_ID)?,
            user_domain_name: s(&USER_DOMAIN_NAME)?,
            project_id: s(&PROJECT_ID)?,
            project_name: s(&PROJECT_NAME)?,
            project_domain_id: s(&PROJECT_DOMAIN_ID)?,
            project_domain_name: s(&PROJECT_DOMAIN_NAME)?,
            domain_id: s(&DOMAIN_ID)?,
            domain_name: s(&DOMAIN_NAME)?,
            default_domain_id: s(&DEFAULT_DOMAIN_ID)?,
            default_domain_name: s(&DEFAULT_DOMAIN_NAME)?,
            system_scope,
            token: g.secret(&TOKEN)?,
            application_credential_id: s(&APP_CRED_ID)?,
            application_credential_name: s(&APP_CRED_NAME)?,
            application_credential_secret: g.secret(&APP_CRED_SECRET)?,
        })
    }

    fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Auth {
            section: self.section.clone(),
            message: message.into(),
        }
    }

    /// The Keystone URL and how to get a token, with keystoneauth's checks.
    pub(crate) fn credential(&self) -> Result<(String, Credential), ConfigError> {
        let Some(auth_type) = self.auth_type else {
            return Err(self.error(format!(
                "auth_type is not set; kuryr needs Keystone credentials, e.g. auth_type = password ({AUTH_TYPE_EXPECTED})"
            )));
        };
        let Some(auth_url) = self.auth_url.clone() else {
            return Err(self.error(format!(
                "auth_type {auth_type} needs auth_url (the Keystone URL)"
            )));
        };
        if auth_url.trim_end_matches('/').ends_with("/v2.0") {
            return Err(self.error(format!(
                "auth_url {auth_url} points at Keystone v2.0, which is not supported; use the /v3 endpoint"
            )));
        }
        let credential = match auth_type {
            AuthType::Password | AuthType::V3Password => {
                let user = self.user(auth_type)?.ok_or_else(|| {
                    self.error(format!("auth_type {auth_type} needs username or user_id"))
                })?;
                let password = self
                    .password
                    .clone()
                    .ok_or_else(|| self.error(format!("auth_type {auth_type} needs password")))?;
                Credential::Password {
                    user,
                    password,
                    scope: self.scope(auth_type)?,
                }
            }
            AuthType::Token | AuthType::V3Token => Credential::Token {
                token: self
                    .token
                    .clone()
                    .ok_or_else(|| self.error(format!("auth_type {auth_type} needs token")))?,
                scope: self.scope(auth_type)?,
            },
            AuthType::V3ApplicationCredential => self.application_credential()?,
        };
        Ok((auth_url, credential))
    }

    fn application_credential(&self) -> Result<Credential, ConfigError> {
        let secret = self.application_credential_secret.clone().ok_or_else(|| {
            self.error("auth_type v3applicationcredential needs application_credential_secret")
        })?;
        let id = self.application_credential_id.clone();
        let name = self.application_credential_name.clone();
        if id.is_none() && name.is_none() {
            return Err(self.error(
                "auth_type v3applicationcredential needs application_credential_id or application_credential_name",
            ));
        }
        let user = self.user(AuthType::V3ApplicationCredential)?;
        if id.is_none() && user.is_none() {
            return Err(self.error(
                "application_credential_name needs the owner's user_id, or username with user_domain_name or user_domain_id",
            ));
        }
        Ok(Credential::ApplicationCredential {
            id,
            name,
            user,
            secret,
        })
    }

    /// The user by id, or by name in its domain.
    fn user(&self, auth_type: AuthType) -> Result<Option<UserRef>, ConfigError> {
        if self.user_id.is_none() && self.username.is_none() {
            return Ok(None);
        }
        let mut domain = DomainRef {
            id: self.user_domain_id.clone(),
            name: self.user_domain_name.clone(),
        };
        if auth_type.is_generic() && domain.id.is_none() && domain.name.is_none() {
            domain = self.default_domain();
        }
        // keystoneauth's v3 loaders refuse a bare username: names are only
        // unique within a domain.
        if self.user_id.is_none()
            && !auth_type.is_generic()
            && domain.id.is_none()
            && domain.name.is_none()
        {
            return Err(self.error(
                "username needs user_domain_name or user_domain_id: in Keystone v3 a username is only unique within a domain",
            ));
        }
        Ok(Some(UserRef {
            id: self.user_id.clone(),
            name: self.username.clone(),
            domain,
        }))
    }

    fn default_domain(&self) -> DomainRef {
        DomainRef {
            id: self.default_domain_id.clone(),
            name: self.default_domain_name.clone(),
        }
    }

    /// keystoneauth's scope choice, including its refusal of several scopes.
    fn scope(&self, auth_type: AuthType) -> Result<Scope, ConfigError> {
        let project = self.project_id.is_some() || self.project_name.is_some();
        let domain = self.domain_id.is_some() || self.domain_name.is_some();
        let system = self.system_scope.is_some();
        if [project, domain, system].iter().filter(|s| **s).count() > 1 {
            return Err(self.error(
                "authentication cannot be scoped to multiple targets: set only one of project_*, domain_* or system_scope",
            ));
        }
        if system {
            return Ok(Scope::System);
        }
        if domain {
            return Ok(Scope::Domain(DomainRef {
                id: self.domain_id.clone(),
                name: self.domain_name.clone(),
            }));
        }
        if !project {
            // Keystone then scopes to the user's default project, if any.
            return Ok(Scope::Unscoped);
        }
        let mut project_domain = DomainRef {
            id: self.project_domain_id.clone(),
            name: self.project_domain_name.clone(),
        };
        if auth_type.is_generic() && project_domain.id.is_none() && project_domain.name.is_none() {
            project_domain = self.default_domain();
        }
        if self.project_id.is_none()
            && !auth_type.is_generic()
            && project_domain.id.is_none()
            && project_domain.name.is_none()
        {
            return Err(self.error(
                "project_name needs project_domain_name or project_domain_id: in Keystone v3 a project name is only unique within a domain",
            ));
        }
        Ok(Scope::Project {
            id: self.project_id.clone(),
            name: self.project_name.clone(),
            domain: project_domain,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_type_names() {
        assert_eq!("password".parse(), Ok(AuthType::Password));
        assert_eq!("V3Password".parse(), Ok(AuthType::V3Password));
        assert_eq!(
            "applicationcredential".parse(),
            Ok(AuthType::V3ApplicationCredential)
        );
        let err = "v2password".parse::<AuthType>().expect_err("v2");
        assert!(err.contains("v2.0"), "{err}");
        let err = "v3oidcpassword".parse::<AuthType>().expect_err("oidc");
        assert!(err.contains("not supported"), "{err}");
    }
}
