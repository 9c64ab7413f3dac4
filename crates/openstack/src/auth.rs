//! Keystone v3 authentication: credentials, scopes, tokens and the catalog.

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// A domain, by id or by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainRef {
    pub id: Option<String>,
    pub name: Option<String>,
}

impl DomainRef {
    /// The `Default` domain by name, what most deployments use.
    pub fn default_domain() -> Self {
        DomainRef {
            id: None,
            name: Some("Default".into()),
        }
    }

    fn is_empty(&self) -> bool {
        self.id.is_none() && self.name.is_none()
    }

    fn to_json(&self) -> Value {
        match (&self.id, &self.name) {
            (Some(id), _) => json!({ "id": id }),
            (None, Some(name)) => json!({ "name": name }),
            (None, None) => json!({ "name": "Default" }),
        }
    }
}

/// A user, by id, or by name within a domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRef {
    pub id: Option<String>,
    pub name: Option<String>,
    pub domain: DomainRef,
}

impl UserRef {
    fn to_json(&self) -> Result<Value> {
        match (&self.id, &self.name) {
            (Some(id), _) => Ok(json!({ "id": id })),
            (None, Some(name)) => Ok(json!({ "name": name, "domain": self.domain.to_json() })),
            (None, None) => Err(Error::Config("a user id or a username is required".into())),
        }
    }
}

/// What a token is scoped to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    /// No scope: enough for nothing but listing one's projects.
    #[default]
    Unscoped,
    /// A project, by id, or by name within a domain.
    Project {
        id: Option<String>,
        name: Option<String>,
        domain: DomainRef,
    },
    /// A domain.
    Domain(DomainRef),
    /// The whole deployment (`system: all`).
    System,
}

impl Scope {
    fn to_json(&self) -> Result<Option<Value>> {
        Ok(match self {
            Scope::Unscoped => None,
            Scope::Project { id: Some(id), .. } => Some(json!({ "project": { "id": id } })),
            Scope::Project {
                id: None,
                name: Some(name),
                domain,
            } => Some(json!({ "project": { "name": name, "domain": domain.to_json() } })),
            Scope::Project { .. } => {
                return Err(Error::Config(
                    "a project scope needs project_id or project_name".into(),
                ));
            }
            Scope::Domain(d) if d.is_empty() => {
                return Err(Error::Config(
                    "a domain scope needs domain_id or domain_name".into(),
                ));
            }
            Scope::Domain(d) => Some(json!({ "domain": d.to_json() })),
            Scope::System => Some(json!({ "system": { "all": true } })),
        })
    }
}

/// How to obtain a token.
#[derive(Clone)]
pub enum Credential {
    /// `password` method.
    Password {
        user: UserRef,
        password: SecretString,
        scope: Scope,
    },
    /// `application_credential` method: by id, or by name plus its owner.
    /// The scope is fixed by the credential itself.
    ApplicationCredential {
        id: Option<String>,
        name: Option<String>,
        user: Option<UserRef>,
        secret: SecretString,
    },
    /// `token` method: trade an existing token for a (re)scoped one.
    Token { token: SecretString, scope: Scope },
}

// Hand-written so a secret can never reach a log through `{:?}`.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Password { user, scope, .. } => f
                .debug_struct("Password")
                .field("user", user)
                .field("scope", scope)
                .finish_non_exhaustive(),
            Credential::ApplicationCredential { id, name, user, .. } => f
                .debug_struct("ApplicationCredential")
                .field("id", id)
                .field("name", name)
                .field("user", user)
                .finish_non_exhaustive(),
            Credential::Token { scope, .. } => f
                .debug_struct("Token")
                .field("scope", scope)
                .finish_non_exhaustive(),
        }
    }
}

impl Credential {
    /// The `POST /v3/auth/tokens` request body.
    pub(crate) fn request_body(&self) -> Result<Value> {
        let (identity, scope) = match self {
            Credential::Password {
                user,
                password,
                scope,
            } => {
                let mut u = user.to_json()?;
                u["password"] = json!(password.expose_secret());
                (
                    json!({ "methods": ["password"], "password": { "user": u } }),
                    scope.to_json()?,
                )
            }
            Credential::ApplicationCredential {
                id,
                name,
                user,
                secret,
            } => {
                let mut ac = match (id, name, user) {
                    (Some(id), _, _) => json!({ "id": id }),
                    (None, Some(name), Some(user)) => {
                        json!({ "name": name, "user": user.to_json()? })
                    }
                    _ => {
                        return Err(Error::Config(
                            "an application credential needs its id, or its name and its user"
                                .into(),
                        ));
                    }
                };
                ac["secret"] = json!(secret.expose_secret());
                (
                    json!({ "methods": ["application_credential"], "application_credential": ac }),
                    None,
                )
            }
            Credential::Token { token, scope } => (
                json!({ "methods": ["token"], "token": { "id": token.expose_secret() } }),
                scope.to_json()?,
            ),
        };
        let mut auth = json!({ "identity": identity });
        if let Some(scope) = scope {
            auth["scope"] = scope;
        }
        Ok(json!({ "auth": auth }))
    }
}

/// Which catalog URL to use for a service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Interface {
    #[default]
    Public,
    Internal,
    Admin,
}

impl Interface {
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }
}

impl FromStr for Interface {
    type Err = Error;

    /// Accepts the v3 names and keystoneauth's v2-style `publicURL` forms.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().trim_end_matches("url") {
            "public" => Ok(Interface::Public),
            "internal" => Ok(Interface::Internal),
            "admin" => Ok(Interface::Admin),
            other => Err(Error::Config(format!(
                "unknown endpoint interface {other:?}: expected public, internal or admin"
            ))),
        }
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One catalog entry of a token.
#[derive(Debug, Clone, Deserialize)]
pub struct CatalogService {
    #[serde(rename = "type")]
    pub service_type: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub endpoints: Vec<CatalogEndpoint>,
}

/// One endpoint of a catalog entry.
#[derive(Debug, Clone, Deserialize)]
pub struct CatalogEndpoint {
    pub interface: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub region_id: Option<String>,
    pub url: String,
}

/// Pick the URL of `service_type` for an interface and, if given, a region.
pub fn select_endpoint(
    catalog: &[CatalogService],
    service_type: &str,
    interface: Interface,
    region: Option<&str>,
) -> Result<String> {
    catalog
        .iter()
        .filter(|s| s.service_type == service_type)
        .flat_map(|s| s.endpoints.iter())
        .find(|e| {
            e.interface == interface.as_str()
                && region.is_none_or(|r| {
                    e.region.as_deref() == Some(r) || e.region_id.as_deref() == Some(r)
                })
        })
        .map(|e| e.url.clone())
        .ok_or_else(|| Error::NoEndpoint {
            service: service_type.to_string(),
            interface: interface.to_string(),
            region: region.map(str::to_string),
        })
}

/// A Keystone token and what came with it.
pub struct Token {
    pub(crate) value: SecretString,
    /// When Keystone stops accepting it.
    pub expires_at: Option<jiff::Timestamp>,
    /// The project it is scoped to, if any.
    pub project_id: Option<String>,
    /// Who it belongs to.
    pub user_id: String,
    /// Role names granted in the scope.
    pub roles: Vec<String>,
    /// The service catalog.
    pub catalog: Vec<CatalogService>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("expires_at", &self.expires_at)
            .field("project_id", &self.project_id)
            .field("user_id", &self.user_id)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// The token string, for the `X-Auth-Token` header.
    pub fn secret(&self) -> &SecretString {
        &self.value
    }

    /// True if the token expires within `margin` of `now`.
    pub fn expires_within(&self, now: jiff::Timestamp, margin: std::time::Duration) -> bool {
        match self.expires_at {
            Some(at) => {
                let margin =
                    jiff::SignedDuration::try_from(margin).unwrap_or(jiff::SignedDuration::MAX);
                now.checked_add(margin).map(|t| t >= at).unwrap_or(true)
            }
            None => false,
        }
    }

    /// Build a token from the `X-Subject-Token` header and the response body.
    pub(crate) fn from_response(value: String, body: &[u8]) -> Result<Token> {
        #[derive(Deserialize)]
        struct Body {
            token: TokenBody,
        }
        #[derive(Deserialize)]
        struct TokenBody {
            expires_at: Option<String>,
            user: IdOnly,
            project: Option<IdOnly>,
            #[serde(default)]
            roles: Vec<NameOnly>,
            #[serde(default)]
            catalog: Vec<CatalogService>,
        }
        #[derive(Deserialize)]
        struct IdOnly {
            id: String,
        }
        #[derive(Deserialize)]
        struct NameOnly {
            name: String,
        }
        let body: Body = serde_json::from_slice(body).map_err(|e| Error::Decode {
            service: "keystone",
            what: "token".into(),
            detail: e.to_string(),
        })?;
        let expires_at = match body.token.expires_at {
            Some(s) => Some(s.parse::<jiff::Timestamp>().map_err(|e| Error::Decode {
                service: "keystone",
                what: "token expires_at".into(),
                detail: format!("{s:?}: {e}"),
            })?),
            None => None,
        };
        Ok(Token {
            value: SecretString::from(value),
            expires_at,
            project_id: body.token.project.map(|p| p.id),
            user_id: body.token.user.id,
            roles: body.token.roles.into_iter().map(|r| r.name).collect(),
            catalog: body.token.catalog,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(scope: Scope) -> Credential {
        Credential::Password {
            user: UserRef {
                id: None,
                name: Some("kuryr".into()),
                domain: DomainRef::default_domain(),
            },
            password: SecretString::from("s3cret"),
            scope,
        }
    }

    #[test]
    fn password_body_has_project_scope_by_name() {
        let body = password(Scope::Project {
            id: None,
            name: Some("service".into()),
            domain: DomainRef::default_domain(),
        })
        .request_body()
        .unwrap();
        assert_eq!(body["auth"]["identity"]["methods"][0], "password");
        assert_eq!(
            body["auth"]["identity"]["password"]["user"]["name"],
            "kuryr"
        );
        assert_eq!(
            body["auth"]["identity"]["password"]["user"]["domain"]["name"],
            "Default"
        );
        assert_eq!(body["auth"]["scope"]["project"]["name"], "service");
    }

    #[test]
    fn app_credential_body_has_no_scope() {
        let cred = Credential::ApplicationCredential {
            id: Some("abc".into()),
            name: None,
            user: None,
            secret: SecretString::from("x"),
        };
        let body = cred.request_body().unwrap();
        assert_eq!(
            body["auth"]["identity"]["application_credential"]["id"],
            "abc"
        );
        assert!(body["auth"].get("scope").is_none());
    }

    #[test]
    fn app_credential_by_name_needs_user() {
        let cred = Credential::ApplicationCredential {
            id: None,
            name: Some("n".into()),
            user: None,
            secret: SecretString::from("x"),
        };
        assert!(matches!(cred.request_body(), Err(Error::Config(_))));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let shown = format!("{:?}", password(Scope::System));
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn interface_accepts_v2_names() {
        assert_eq!("publicURL".parse::<Interface>().unwrap(), Interface::Public);
        assert_eq!(
            "internal".parse::<Interface>().unwrap(),
            Interface::Internal
        );
        assert_eq!("adminURL".parse::<Interface>().unwrap(), Interface::Admin);
        assert!("private".parse::<Interface>().is_err());
    }

    #[test]
    fn endpoint_selection_honours_interface_and_region() {
        let catalog: Vec<CatalogService> = serde_json::from_value(json!([
            {"type": "network", "name": "neutron", "endpoints": [
                {"interface": "public", "region": "R1", "region_id": "R1", "url": "http://pub1"},
                {"interface": "internal", "region": "R1", "region_id": "R1", "url": "http://int1"},
                {"interface": "public", "region": "R2", "region_id": "R2", "url": "http://pub2"}
            ]},
            {"type": "identity", "endpoints": []}
        ]))
        .unwrap();
        let pick = |i, r| select_endpoint(&catalog, "network", i, r);
        assert_eq!(pick(Interface::Public, None).unwrap(), "http://pub1");
        assert_eq!(pick(Interface::Public, Some("R2")).unwrap(), "http://pub2");
        assert_eq!(
            pick(Interface::Internal, Some("R1")).unwrap(),
            "http://int1"
        );
        let err = pick(Interface::Admin, None).unwrap_err();
        assert!(err.to_string().contains("no network endpoint"), "{err}");
        assert!(select_endpoint(&catalog, "compute", Interface::Public, None).is_err());
    }

    #[test]
    fn token_expiry_margin() {
        let body = br#"{"token": {"expires_at": "2026-11-29T06:00:00.000000Z",
            "user": {"id": "u"}, "project": {"id": "p"}, "roles": [{"name": "admin"}]}}"#;
        let t = Token::from_response("tok".into(), body).unwrap();
        assert_eq!(t.project_id.as_deref(), Some("p"));
        assert_eq!(t.roles, vec!["admin".to_string()]);
        let at: jiff::Timestamp = "2026-11-29T05:59:00Z".parse().unwrap();
        assert!(t.expires_within(at, std::time::Duration::from_secs(120)));
        assert!(!t.expires_within(at, std::time::Duration::from_secs(30)));
    }
}
