//! An authenticated HTTP session: one connection pool, one cached token
//! ([`token`]), transparent re-authentication, and accounting of every
//! request.
//!
//! Every request is bounded in time: a connect timeout and a request
//! timeout (keystoneauth's `timeout`, [`DEFAULT_TIMEOUT`] when not set), so
//! a service that accepts connections and answers nothing fails the call
//! with [`Error::Timeout`] naming the service and the request.

mod token;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::Value;
use tracing::{debug, info};

use self::token::{Step, TokenCache};

use crate::auth::{Credential, Interface, Token, select_endpoint};
use crate::error::{ApiError, Error, Result};
use crate::metrics::{Answer as Answered, CallStats};

/// TLS settings, with keystoneauth's meaning.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// PEM bundle that replaces the system roots (keystoneauth `cafile`).
    pub cafile: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    pub certfile: Option<PathBuf>,
    /// Key of the client certificate (PEM).
    pub keyfile: Option<PathBuf>,
    /// Skip server certificate checks. For labs only.
    pub insecure: bool,
}

/// Everything a [`Session`] needs.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Keystone URL, with or without the `/v3` suffix.
    pub auth_url: String,
    /// How to get tokens.
    pub credential: Credential,
    /// Catalog region; any region if `None`.
    pub region: Option<String>,
    /// Catalog interface.
    pub interface: Interface,
    /// Fixed URLs by service type (`network` -> `http://...:9696`), bypassing
    /// the catalog.
    pub endpoint_overrides: BTreeMap<String, String>,
    /// TLS settings, for Keystone and every service.
    pub tls: TlsConfig,
    /// Per-request timeout, reply included (keystoneauth's `timeout`);
    /// [`DEFAULT_TIMEOUT`] by default (keystoneauth has none). `None`: no
    /// limit.
    pub timeout: Option<Duration>,
    /// Bound on establishing a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Renew the token when it expires within this margin.
    pub reauth_margin: Duration,
}

impl SessionConfig {
    /// A configuration with defaults for everything but the credential.
    pub fn new(auth_url: impl Into<String>, credential: Credential) -> Self {
        SessionConfig {
            auth_url: auth_url.into(),
            credential,
            region: None,
            interface: Interface::Public,
            endpoint_overrides: BTreeMap::new(),
            tls: TlsConfig::default(),
            timeout: Some(DEFAULT_TIMEOUT),
            connect_timeout: CONNECT_TIMEOUT,
            reauth_margin: Duration::from_secs(300),
        }
    }
}

/// The request timeout when none is configured: a Neutron or Keystone
/// request answered later than this is taken as lost (it fails the call,
/// which rolls back). Well above what a loaded Neutron takes (seconds),
/// well below Docker's 30 s plugin timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Bound on connecting (a refused connection fails at once; a black-holed
/// address would otherwise wait for the kernel's SYN retries, minutes).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A raw answer of a successful call.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Response {
    /// Decode the body as JSON; an empty body decodes as `null`.
    pub fn json(&self, service: &'static str, what: &str) -> Result<Value> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| Error::Decode {
            service,
            what: what.to_string(),
            detail: e.to_string(),
        })
    }
}

struct Inner {
    http: reqwest::Client,
    /// Requests go to this in-process fake instead of the network.
    #[cfg(feature = "fake")]
    fake: Option<Arc<crate::fake::FakeNeutron>>,
    config: SessionConfig,
    tokens: Arc<TokenCache>,
    stats: Arc<CallStats>,
}

/// A shared, cheaply clonable authenticated session.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("auth_url", &self.inner.config.auth_url)
            .field("credential", &self.inner.config.credential)
            .finish_non_exhaustive()
    }
}

/// Install rustls' ring provider once per process; reqwest is built without
/// a provider of its own so only one crypto library is compiled.
fn ensure_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn read_file(path: &PathBuf, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| Error::Config(format!("cannot read {what} {}: {e}", path.display())))
}

impl Session {
    /// Build a session. No request is sent until the first call.
    pub fn new(config: SessionConfig) -> Result<Session> {
        Self::with_stats(config, Arc::new(CallStats::default()))
    }

    /// Build a session that records into existing counters.
    pub fn with_stats(config: SessionConfig, stats: Arc<CallStats>) -> Result<Session> {
        ensure_crypto_provider();
        url::Url::parse(&config.auth_url)
            .map_err(|e| Error::Config(format!("auth_url {:?}: {e}", config.auth_url)))?;
        // No redirect is followed: a 307/308 would replay the POST carrying
        // the password or secret (or the X-Auth-Token), maybe to plain http.
        // A 3xx is an error naming the target instead (`redirect_error`).
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("kuryr-rs/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .no_proxy();
        if let Some(timeout) = config.timeout {
            builder = builder.timeout(timeout);
        }
        if let Some(cafile) = &config.tls.cafile {
            let pem = read_file(cafile, "cafile")?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| Error::Config(format!("cafile {}: {e}", cafile.display())))?;
            if certs.is_empty() {
                return Err(Error::Config(format!(
                    "cafile {} holds no certificate",
                    cafile.display()
                )));
            }
            builder = builder.tls_certs_only(certs);
        }
        match (&config.tls.certfile, &config.tls.keyfile) {
            (Some(cert), key) => {
                let mut pem = read_file(cert, "certfile")?;
                if let Some(key) = key {
                    pem.extend_from_slice(b"\n");
                    pem.extend_from_slice(&read_file(key, "keyfile")?);
                }
                let id = reqwest::Identity::from_pem(&pem)
                    .map_err(|e| Error::Config(format!("client certificate: {e}")))?;
                builder = builder.identity(id);
            }
            (None, Some(_)) => {
                return Err(Error::Config("keyfile given without certfile".into()));
            }
            (None, None) => {}
        }
        if config.tls.insecure {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Session {
            inner: Arc::new(Inner {
                http,
                #[cfg(feature = "fake")]
                fake: None,
                config,
                tokens: Arc::new(TokenCache::default()),
                stats,
            }),
        })
    }

    /// A session whose every request `fake` answers: no Keystone, no
    /// network. The Neutron endpoint is `fake://neutron`.
    #[cfg(feature = "fake")]
    pub fn fake(fake: Arc<crate::fake::FakeNeutron>) -> Session {
        Session::fake_with_timeout(fake, Some(DEFAULT_TIMEOUT))
    }

    /// [`Session::fake`] with this request timeout.
    #[cfg(feature = "fake")]
    pub fn fake_with_timeout(
        fake: Arc<crate::fake::FakeNeutron>,
        timeout: Option<Duration>,
    ) -> Session {
        let credential = Credential::Token {
            token: secrecy::SecretString::from("fake"),
            scope: crate::auth::Scope::Unscoped,
        };
        let mut config = SessionConfig::new("http://fake.invalid/v3", credential);
        config.timeout = timeout;
        let mut session = Session::new(config).expect("a fake session needs no configuration");
        if let Some(inner) = Arc::get_mut(&mut session.inner) {
            inner.fake = Some(fake);
        }
        session
    }

    /// Send one request to the fake: the same accounting and error
    /// decoding as over HTTP.
    #[cfg(feature = "fake")]
    #[allow(clippy::too_many_arguments)]
    async fn call_fake(
        &self,
        fake: &crate::fake::FakeNeutron,
        op: &'static str,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
        revision: Option<u64>,
    ) -> Result<Response> {
        let started = Instant::now();
        let watch = crate::metrics::request_started(|| format!("neutron {method} /v2.0{path}"));
        let handled = fake.handle(method.as_str(), path, query, body, revision);
        let answer = match self.inner.config.timeout {
            Some(after) => tokio::time::timeout(after, handled)
                .await
                .map_err(|_| after),
            None => Ok(handled.await),
        };
        let (status, bytes) = match answer {
            Err(after) => {
                self.inner
                    .stats
                    .record_answer(op, started.elapsed(), Answered::NoAnswer);
                let e = Error::Timeout {
                    service: "neutron",
                    request: format!("{method} /v2.0{path}"),
                    after,
                };
                watch.failed(&e);
                return Err(e);
            }
            Ok(crate::fake::Answer::Reply(status, bytes)) => (status, bytes),
            Ok(crate::fake::Answer::Lost) => {
                self.inner
                    .stats
                    .record_answer(op, started.elapsed(), Answered::NoAnswer);
                return Err(Error::NoReply {
                    service: "neutron",
                    detail: format!("{method} {path}: the connection closed before the reply"),
                });
            }
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        self.inner
            .stats
            .record_answer(op, started.elapsed(), Answered::Status(status.as_u16()));
        if status.is_success() {
            return Ok(Response {
                status,
                body: bytes,
            });
        }
        Err(Error::Api(Box::new(api_error(
            "neutron",
            method.as_str(),
            path,
            status,
            &bytes,
            None,
        ))))
    }

    /// The counters every request of this session is recorded in.
    pub fn stats(&self) -> &Arc<CallStats> {
        &self.inner.stats
    }

    /// The configuration this session was built from.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    fn keystone_base(&self) -> String {
        let base = self.inner.config.auth_url.trim_end_matches('/');
        if base.ends_with("/v3") {
            base.to_string()
        } else {
            format!("{base}/v3")
        }
    }

    /// A usable token: the cached one, or one freshly issued (see
    /// [`token`] for how renewals and concurrent callers are handled).
    pub async fn token(&self) -> Result<Arc<Token>> {
        loop {
            match self.inner.tokens.step(self.inner.config.reauth_margin) {
                Step::Ready(token) => return Ok(token),
                Step::Renewing {
                    token,
                    renewal,
                    start,
                } => {
                    if let Some(leader) = start {
                        // In its own task: a cancelled call must not
                        // cancel the renewal others wait for.
                        let session = self.clone();
                        tokio::spawn(async move {
                            let issued = session.issue_token().await;
                            let _ = leader.finish(issued);
                        });
                    }
                    let waited = tokio::time::timeout(token::RENEW_WAIT, renewal.outcome()).await;
                    return Ok(match waited {
                        Ok(Some(Ok(fresh))) => fresh,
                        _ => token,
                    });
                }
                Step::Wait(renewal) => match Self::wait_for(renewal).await {
                    Some(Ok(token)) => return Ok(token),
                    Some(Err(e)) => return Err(Error::Shared(e)),
                    // Its caller gave up mid-way: ask again.
                    None => continue,
                },
                Step::Lead(leader) => return leader.finish(self.issue_token().await),
            }
        }
    }

    /// Wait for another caller's token request.
    async fn wait_for(renewal: token::Waiter) -> Option<Result<Arc<Token>, Arc<Error>>> {
        let _watch = crate::metrics::request_started(|| {
            "keystone POST /v3/auth/tokens (another call's)".into()
        });
        renewal.outcome().await
    }

    /// The project the credential's token is scoped to (`None`: not
    /// project-scoped). The fake's is [`crate::fake::PROJECT`].
    pub async fn project_id(&self) -> Result<Option<String>> {
        #[cfg(feature = "fake")]
        if self.inner.fake.is_some() {
            return Ok(Some(crate::fake::PROJECT.to_string()));
        }
        Ok(self.token().await?.project_id.clone())
    }

    /// Forget `stale` if it is still the cached token.
    fn invalidate(&self, stale: &Arc<Token>) {
        self.inner.tokens.invalidate(stale);
    }

    async fn issue_token(&self) -> Result<Token> {
        let url = format!("{}/auth/tokens", self.keystone_base());
        let body = self.inner.config.credential.request_body()?;
        let started = Instant::now();
        let watch = crate::metrics::request_started(|| "keystone POST /v3/auth/tokens".into());
        let sent = self.inner.http.post(&url).json(&body).send().await;
        let failed = |source| self.transport_error("keystone", "POST", &url, source);
        let answered = match &sent {
            Ok(resp) => Answered::Status(resp.status().as_u16()),
            Err(_) => Answered::NoAnswer,
        };
        let result = match sent {
            Err(source) => Err(failed(source)),
            Ok(resp) => {
                let status = resp.status();
                let request_id = request_id(resp.headers());
                let location = location(resp.headers());
                let subject = resp
                    .headers()
                    .get("x-subject-token")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let bytes = resp.bytes().await.map_err(failed)?;
                if status.is_success() {
                    match subject {
                        Some(value) => Token::from_response(value, &bytes),
                        None => Err(Error::Decode {
                            service: "keystone",
                            what: "token".into(),
                            detail: "no X-Subject-Token header".into(),
                        }),
                    }
                } else if status.is_redirection() {
                    Err(Error::Api(Box::new(redirect_error(
                        "keystone",
                        "POST",
                        "/v3/auth/tokens",
                        status,
                        location,
                        request_id,
                    ))))
                } else {
                    let err = api_error(
                        "keystone",
                        "POST",
                        "/v3/auth/tokens",
                        status,
                        &bytes,
                        request_id,
                    );
                    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                        Err(Error::Auth(Box::new(err)))
                    } else {
                        Err(Error::Api(Box::new(err)))
                    }
                }
            }
        };
        if let Err(e) = &result {
            watch.failed(e);
        }
        self.inner
            .stats
            .record_answer("keystone.issue_token", started.elapsed(), answered);
        match &result {
            Ok(t) => {
                info!(user_id = %t.user_id, project_id = ?t.project_id, expires_at = ?t.expires_at, "keystone token issued")
            }
            Err(e) => debug!(error = %e, "keystone token request failed"),
        }
        result
    }

    /// Does Keystone answer? An unauthenticated `GET` of its version
    /// document (`/v3`): no credential is sent and no token issued, so a
    /// health check may call it often. Recorded as `keystone.version`.
    pub async fn probe_keystone(&self) -> Result<()> {
        #[cfg(feature = "fake")]
        if self.inner.fake.is_some() {
            return Ok(());
        }
        let started = Instant::now();
        let sent = self.inner.http.get(self.keystone_base()).send().await;
        let (answered, result) = match sent {
            Err(source) => (
                Answered::NoAnswer,
                Err(Error::Transport {
                    service: "keystone",
                    source,
                }),
            ),
            Ok(resp) => {
                let status = resp.status();
                let request_id = request_id(resp.headers());
                let bytes = resp.bytes().await.unwrap_or_default();
                let result = if status.is_success() {
                    Ok(())
                } else {
                    Err(Error::Api(Box::new(api_error(
                        "keystone", "GET", "/v3", status, &bytes, request_id,
                    ))))
                };
                (Answered::Status(status.as_u16()), result)
            }
        };
        self.inner
            .stats
            .record_answer("keystone.version", started.elapsed(), answered);
        result
    }

    /// Base URL of a service: an override, or the catalog entry.
    pub async fn endpoint(&self, service_type: &str) -> Result<String> {
        #[cfg(feature = "fake")]
        if self.inner.fake.is_some() {
            return Ok(format!("fake://{service_type}"));
        }
        if let Some(url) = self.inner.config.endpoint_overrides.get(service_type) {
            return Ok(url.trim_end_matches('/').to_string());
        }
        if service_type == "identity" {
            return Ok(self.keystone_base());
        }
        let token = self.token().await?;
        let url = select_endpoint(
            &token.catalog,
            service_type,
            self.inner.config.interface,
            self.inner.config.region.as_deref(),
        )?;
        Ok(url.trim_end_matches('/').to_string())
    }

    /// Send one authenticated request to `base` + `path`.
    ///
    /// `op` names the operation for accounting (`neutron.list_ports`); its
    /// prefix names the service in errors. A 401 drops the cached token and
    /// the request is sent once more with a fresh one.
    pub async fn call(
        &self,
        op: &'static str,
        base: &str,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<Response> {
        self.call_if(op, base, method, path, query, body, None)
            .await
    }

    /// [`Session::call`] with `If-Match: revision_number=N` when
    /// `revision` is given: Neutron answers 412 if the resource changed
    /// since (compare-and-swap on updates).
    #[allow(clippy::too_many_arguments)]
    pub async fn call_if(
        &self,
        op: &'static str,
        base: &str,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
        revision: Option<u64>,
    ) -> Result<Response> {
        let service = service_of(op);
        #[cfg(feature = "fake")]
        if let Some(fake) = &self.inner.fake {
            return self
                .call_fake(fake, op, method, path, query, body, revision)
                .await;
        }
        let req = Request {
            op,
            service,
            url: format!("{base}{path}"),
            method,
            path,
            query,
            body,
            revision,
        };
        let mut retried = false;
        loop {
            let token = self.token().await?;
            let answer = self.send_once(&req, &token).await?;
            if answer.status == StatusCode::UNAUTHORIZED && !retried {
                // Revoked or expired early: a new token and one more try.
                self.invalidate(&token);
                retried = true;
                continue;
            }
            return answer.into_result(&req);
        }
    }

    /// Send `req` once with `token`; record and log it.
    async fn send_once(&self, req: &Request<'_>, token: &Token) -> Result<Answer> {
        let mut http = self
            .inner
            .http
            .request(req.method.clone(), &req.url)
            .header("X-Auth-Token", token.secret().expose_secret())
            .header("Accept", "application/json");
        if !req.query.is_empty() {
            http = http.query(req.query);
        }
        if let Some(body) = req.body {
            http = http.json(body);
        }
        if let Some(rev) = req.revision {
            http = http.header("If-Match", format!("revision_number={rev}"));
        }
        let failed =
            |source| self.transport_error(req.service, req.method.as_str(), &req.url, source);
        let watch = crate::metrics::request_started(|| {
            format!("{} {} {}", req.service, req.method, url_path(&req.url))
        });
        let started = Instant::now();
        let outcome = match http.send().await {
            Err(source) => Err(failed(source)),
            Ok(resp) => {
                let status = resp.status();
                let request_id = request_id(resp.headers());
                let location = location(resp.headers());
                match resp.bytes().await {
                    Err(source) => Err(failed(source)),
                    Ok(bytes) => Ok(Answer {
                        status,
                        request_id,
                        location,
                        bytes: bytes.to_vec(),
                    }),
                }
            }
        };
        let elapsed = started.elapsed();
        if let Err(e) = &outcome {
            watch.failed(e);
        }
        let answered = match &outcome {
            Ok(a) => Answered::Status(a.status.as_u16()),
            Err(_) => Answered::NoAnswer,
        };
        self.inner.stats.record_answer(req.op, elapsed, answered);
        if let Ok(a) = &outcome {
            debug!(op = req.op, method = %req.method, path = req.path, status = a.status.as_u16(), ms = elapsed.as_millis() as u64, request_id = a.request_id.as_deref().unwrap_or(""), "openstack call");
        }
        outcome
    }
}

impl Session {
    /// A request that got no answer: [`Error::Timeout`] when the request
    /// timeout ran out (it may have been acted on), else unreachable.
    fn transport_error(
        &self,
        service: &'static str,
        method: &str,
        url: &str,
        source: reqwest::Error,
    ) -> Error {
        match self.inner.config.timeout {
            Some(after) if source.is_timeout() && !source.is_connect() => Error::Timeout {
                service,
                request: format!("{method} {}", url_path(url)),
                after,
            },
            _ => Error::Transport { service, source },
        }
    }
}

/// The path of a URL, without query (which may carry filters) or host.
fn url_path(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.path().to_string())
        .unwrap_or_else(|_| url.split('?').next().unwrap_or_default().to_string())
}

/// One request to an OpenStack service.
struct Request<'a> {
    op: &'static str,
    service: &'static str,
    url: String,
    method: Method,
    path: &'a str,
    query: &'a [(String, String)],
    body: Option<&'a Value>,
    revision: Option<u64>,
}

/// What a service answered.
struct Answer {
    status: StatusCode,
    request_id: Option<String>,
    location: Option<String>,
    bytes: Vec<u8>,
}

impl Answer {
    /// The body of a 2xx; anything else as the error it is.
    fn into_result(self, req: &Request<'_>) -> Result<Response> {
        let (service, method) = (req.service, req.method.as_str());
        if self.status.is_success() {
            return Ok(Response {
                status: self.status,
                body: self.bytes,
            });
        }
        let err = if self.status.is_redirection() {
            redirect_error(
                service,
                method,
                req.path,
                self.status,
                self.location,
                self.request_id,
            )
        } else {
            api_error(
                service,
                method,
                req.path,
                self.status,
                &self.bytes,
                self.request_id,
            )
        };
        Err(Error::Api(Box::new(err)))
    }
}

/// The service an operation name belongs to (`neutron.list_ports`).
fn service_of(op: &str) -> &'static str {
    match op.split('.').next() {
        Some("neutron") => "neutron",
        Some("keystone") => "keystone",
        _ => "openstack",
    }
}

fn request_id(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get("x-openstack-request-id")
        .or_else(|| headers.get("x-compute-request-id"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The `Location` of a redirect, without query or user info (which may
/// carry secrets).
fn location(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let raw = headers.get(reqwest::header::LOCATION)?.to_str().ok()?;
    match url::Url::parse(raw) {
        Ok(mut url) => {
            url.set_query(None);
            url.set_fragment(None);
            let _ = url.set_password(None);
            let _ = url.set_username("");
            Some(url.to_string())
        }
        // A relative reference: its path only.
        Err(_) => Some(raw.split(['?', '#']).next().unwrap_or_default().to_string()),
    }
}

/// A 3xx answer: never followed (see [`Session::with_stats`]), reported
/// with where it pointed so the operator can configure that URL.
fn redirect_error(
    service: &'static str,
    method: &str,
    path: &str,
    status: StatusCode,
    location: Option<String>,
    request_id: Option<String>,
) -> ApiError {
    let target = location.map_or_else(|| "no Location".to_string(), |l| format!("to {l}"));
    ApiError {
        service,
        method: method.to_string(),
        path: path.to_string(),
        status: status.as_u16(),
        kind: "Redirect".into(),
        message: format!(
            "redirect ({target}) not followed: following it would resend the credential or token; \
             configure the final URL instead"
        ),
        request_id,
    }
}

/// Decode Neutron's `{"NeutronError": {type, message}}` or Keystone's
/// `{"error": {title, message}}`; anything else keeps its raw text.
pub(crate) fn api_error(
    service: &'static str,
    method: &str,
    path: &str,
    status: StatusCode,
    body: &[u8],
    request_id: Option<String>,
) -> ApiError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let (kind, message) = match &parsed {
        Some(v) if v.get("NeutronError").is_some() => {
            let e = &v["NeutronError"];
            (
                e["type"].as_str().unwrap_or_default().to_string(),
                e["message"].as_str().unwrap_or_default().to_string(),
            )
        }
        Some(v) if v.get("error").is_some() => {
            let e = &v["error"];
            (
                e["title"].as_str().unwrap_or_default().to_string(),
                e["message"].as_str().unwrap_or_default().to_string(),
            )
        }
        _ => {
            let text = String::from_utf8_lossy(body);
            let text: String = text.trim().chars().take(300).collect();
            (
                status
                    .canonical_reason()
                    .unwrap_or_default()
                    .replace(' ', ""),
                text,
            )
        }
    };
    ApiError {
        service,
        method: method.to_string(),
        path: path.to_string(),
        status: status.as_u16(),
        kind,
        message,
        request_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutron_error_keeps_type_and_status() {
        let body = br#"{"NeutronError": {"type": "IpAddressAlreadyAllocated", "message": "IP address 10.0.0.5 already allocated in subnet x", "detail": ""}}"#;
        let e = api_error(
            "neutron",
            "POST",
            "/v2.0/ports",
            StatusCode::CONFLICT,
            body,
            Some("req-1".into()),
        );
        assert_eq!(e.status, 409);
        assert_eq!(e.kind, "IpAddressAlreadyAllocated");
        let err = Error::Api(Box::new(e));
        assert!(err.is_conflict() && err.is_ip_already_allocated() && !err.is_not_found());
        assert!(err.to_string().contains("req-1"), "{err}");
    }

    #[test]
    fn keystone_error_and_plain_text() {
        let e = api_error("keystone", "POST", "/v3/auth/tokens", StatusCode::UNAUTHORIZED,
            br#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#, None);
        assert_eq!(e.kind, "Unauthorized");
        let e = api_error(
            "neutron",
            "GET",
            "/v2.0/nope",
            StatusCode::NOT_FOUND,
            b"<html>404</html>",
            None,
        );
        assert_eq!((e.status, e.kind.as_str()), (404, "NotFound"));
        assert_eq!(e.message, "<html>404</html>");
    }
}
