//! HTTP/1.1 over a root-only unix socket (and, for compatibility, TCP:
//! loopback unless `allow_remote_api`, HTTPS with `enable_ssl`, see
//! [`tls`]). Bodies are read raw: dockerd sends no Content-Type.
//!
//! A request goes through [`answer`]: [`PluginCall::parse`], then
//! [`Driver::execute`], then [`Reply::from_outcome`], the one place where
//! outcomes become HTTP statuses and bodies. The listeners use
//! [`answer_detached`]: the call runs in a task of its own, answered
//! within its bound.
//!
//! Hostile clients ([`Limits`]): a body past 1 MiB is refused with 413,
//! headers must arrive within 10 s and the body within 10 s more, and the
//! TCP listener serves at most 128 connections at once.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

pub mod tls;

use crate::driver::{Driver, DriverError};
use crate::protocol::{ErrorResponse, ParseError, PluginCall, Response as PluginResponse};

/// Docker's media type for plugin replies (informational: dockerd ignores it).
const PLUGIN_MEDIA_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

/// Errors of the server layer.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{path}: another kuryr daemon is already listening on this socket")]
    InUse { path: PathBuf },
    #[error("cannot listen on {what}: {source}")]
    Listen {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "refusing to serve the plugin API on {addr} (kuryr_uri): it has no authentication, so \
         anyone who can reach it can create Neutron ports and host interfaces as root. Use a \
         loopback kuryr_uri such as http://127.0.0.1:23750, or set [DEFAULT] allow_remote_api = \
         true to serve it there anyway (then restrict who can reach it, and set enable_ssl)"
    )]
    Remote { addr: std::net::SocketAddr },
    #[error("enable_ssl: {file}: {detail}")]
    Tls { file: String, detail: String },
}

/// Why a call was not answered with 200.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("only POST is supported")]
    NotPost,
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Driver(#[from] DriverError),
}

impl CallError {
    /// The one mapping of outcomes to HTTP statuses. Every driver failure
    /// is a 500: dockerd treats any non-200 as failure, and a 404 would be
    /// taken as "method not implemented" for the optional calls.
    pub fn status(&self) -> StatusCode {
        match self {
            CallError::NotPost => StatusCode::METHOD_NOT_ALLOWED,
            CallError::Parse(ParseError::UnknownMethod(_)) => StatusCode::NOT_FOUND,
            CallError::Parse(ParseError::BadRequest(_)) => StatusCode::BAD_REQUEST,
            CallError::Driver(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// One HTTP reply: status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    /// A call's outcome as dockerd reads it: the response JSON with 200, or
    /// `{"Err": "..."}` with the status of [`CallError::status`].
    pub fn from_outcome(outcome: Result<PluginResponse, CallError>) -> Reply {
        let (status, body) = match outcome {
            Ok(response) => match serde_json::to_vec(&response) {
                Ok(body) => (StatusCode::OK, body),
                Err(e) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    error_body(&format!("cannot encode reply: {e}")),
                ),
            },
            Err(e) => (e.status(), error_body(&e.to_string())),
        };
        Reply {
            status: status.as_u16(),
            body,
        }
    }
}

fn error_body(message: &str) -> Vec<u8> {
    serde_json::to_vec(&ErrorResponse {
        err: message.to_string(),
    })
    .unwrap_or_else(|_| b"{\"Err\":\"error\"}".to_vec())
}

/// Answer one plugin call: parse it, let the driver execute it, encode the
/// outcome. Never panics; every failure is a JSON `Err`.
pub async fn answer(driver: &Driver, path: &str, body: &[u8]) -> Reply {
    let outcome = match parse(driver, path, body) {
        Ok(call) => driver.execute(call).await.map_err(CallError::from),
        Err(e) => Err(e),
    };
    Reply::from_outcome(outcome)
}

/// [`answer`] as the listeners do it: the call runs in a task of its own,
/// to its end or its rollback even if the client hangs up, and is
/// answered within its bound ([`Driver::execute_detached`]).
pub async fn answer_detached(driver: Arc<Driver>, path: &str, body: &[u8]) -> Reply {
    let outcome = match parse(driver.as_ref(), path, body) {
        Ok(call) => driver.execute_detached(call).await.map_err(CallError::from),
        Err(e) => Err(e),
    };
    Reply::from_outcome(outcome)
}

/// Parse a plugin call; a refused one is logged and counted here.
fn parse(driver: &Driver, path: &str, body: &[u8]) -> Result<PluginCall, CallError> {
    PluginCall::parse(path, body).map_err(|e| {
        warn!(call = path, error = %e, "refused");
        let kind = match e {
            ParseError::UnknownMethod(_) => "unknown_method",
            ParseError::BadRequest(_) => "bad_request",
        };
        let call = crate::metrics::call_label(crate::protocol::Method::from_path(path));
        driver
            .stats()
            .observe_call(call, Some(kind), std::time::Duration::ZERO, 0);
        e.into()
    })
}

/// What every request handler shares.
#[derive(Clone)]
struct App {
    driver: Arc<Driver>,
    limits: Limits,
}

async fn handle(State(app): State<App>, method: Method, uri: Uri, body: Body) -> Response {
    let reply = if method != Method::POST {
        Reply::from_outcome(Err(CallError::NotPost))
    } else {
        match read_body(body, &app.limits).await {
            Ok(body) => answer_detached(app.driver, uri.path(), &body).await,
            Err(refused) => refused,
        }
    };
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, PLUGIN_MEDIA_TYPE)],
        reply.body,
    )
        .into_response()
}

/// The request body, at most `max_body` bytes read within
/// `body_read_timeout`; else the reply refusing it (413, 408, 400).
async fn read_body(body: Body, limits: &Limits) -> Result<Bytes, Reply> {
    let refused = |status: StatusCode, message: String| Reply {
        status: status.as_u16(),
        body: error_body(&message),
    };
    let read = axum::body::to_bytes(body, limits.max_body);
    match tokio::time::timeout(limits.body_read_timeout, read).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if is_length_limit(&e) => Err(refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {} bytes", limits.max_body),
        )),
        Ok(Err(e)) => Err(refused(
            StatusCode::BAD_REQUEST,
            format!("cannot read the request body: {e}"),
        )),
        Err(_) => Err(refused(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "request body not received within {} s",
                limits.body_read_timeout.as_secs()
            ),
        )),
    }
}

/// Did reading stop at the body limit?
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// The plugin API: every path goes to the driver.
pub fn router(driver: Arc<Driver>, limits: Limits) -> Router {
    Router::new()
        .fallback(handle)
        .with_state(App { driver, limits })
}

/// Bind the unix socket: refuse if a live daemon owns it, replace a stale
/// file, and make it root-only (anyone who can talk to it can make Neutron
/// ports and host interfaces).
pub async fn bind_unix(path: &Path) -> Result<UnixListener, ServerError> {
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(ServerError::InUse {
                path: path.to_path_buf(),
            });
        }
        let _ = std::fs::remove_file(path);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ServerError::Listen {
            what: dir.display().to_string(),
            source,
        })?;
    }
    let listener = UnixListener::bind(path).map_err(|source| ServerError::Listen {
        what: path.display().to_string(),
        source,
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
        ServerError::Listen {
            what: path.display().to_string(),
            source,
        }
    })?;
    Ok(listener)
}

/// The TCP side of the plugin API: plain HTTP or HTTPS.
#[derive(Debug)]
pub enum TcpListen {
    Plain(TcpListener),
    Tls(tls::TlsListener),
}

/// Bind the TCP listener of `kuryr_uri`. An address other than loopback is
/// refused unless `allow_remote` (`[DEFAULT] allow_remote_api`).
pub async fn bind_tcp(
    host: &str,
    port: u16,
    allow_remote: bool,
) -> Result<TcpListener, ServerError> {
    let listener = TcpListener::bind((host, port))
        .await
        .map_err(|source| ServerError::Listen {
            what: format!("{host}:{port}"),
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            what: format!("{host}:{port}"),
            source,
        })?;
    if !addr.ip().is_loopback() {
        if !allow_remote {
            return Err(ServerError::Remote { addr });
        }
        warn!(%addr, "listening beyond loopback (allow_remote_api): the plugin API has no authentication");
    }
    Ok(listener)
}

/// What the server grants a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body accepted (413 past it).
    pub max_body: usize,
    /// A client must have sent its request headers within this (hyper's
    /// header read timeout; `axum::serve` sets none).
    pub header_read_timeout: Duration,
    /// ... and its body within this (408 past it).
    pub body_read_timeout: Duration,
    /// Most connections open at once on the TCP listener (the unix socket
    /// is root's alone); more wait in the kernel's backlog.
    pub max_tcp_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // dockerd's bodies are a few KiB.
            max_body: 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            max_tcp_connections: 128,
        }
    }
}

/// At shutdown, how long open connections get to finish their request.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Spawn the serving of `listener` until `stop` fires; at most `cap`
/// connections at once, if capped.
fn spawn_serving<L: axum::serve::Listener>(
    tasks: &mut tokio::task::JoinSet<io::Result<()>>,
    listener: L,
    app: Router,
    stop: tokio::sync::broadcast::Receiver<()>,
    header_timeout: Duration,
    cap: Option<usize>,
) {
    let cap = cap.map(|n| Arc::new(Semaphore::new(n)));
    tasks.spawn(serve_listener(listener, app, stop, header_timeout, cap));
}

/// Accept connections and serve each in a task of its own (HTTP/1.1,
/// keep-alive, a header read timeout); on `stop`, stop accepting and let
/// open connections finish their request.
async fn serve_listener<L: axum::serve::Listener>(
    mut listener: L,
    app: Router,
    mut stop: tokio::sync::broadcast::Receiver<()>,
    header_timeout: Duration,
    cap: Option<Arc<Semaphore>>,
) -> io::Result<()> {
    let (drain, _) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let permit = match &cap {
            Some(cap) => tokio::select! {
                permit = cap.clone().acquire_owned() => permit.ok(),
                _ = stop.recv() => break,
            },
            None => None,
        };
        let (io, _) = tokio::select! {
            conn = listener.accept() => conn,
            _ = stop.recv() => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut draining = drain.subscribe();
        conns.spawn(async move {
            let _permit = permit;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(io), service);
            tokio::pin!(conn);
            let drained = async move {
                let _ = draining.wait_for(|d| *d).await;
            };
            let done = tokio::select! {
                done = conn.as_mut() => done,
                () = drained => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = done {
                debug!(error = %e, "connection ended");
            }
        });
        while conns.try_join_next().is_some() {}
    }
    drain.send_replace(true);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// Serve until `shutdown` resolves, then remove the socket file.
pub async fn serve(
    driver: Arc<Driver>,
    unix: Option<(UnixListener, PathBuf)>,
    tcp: Option<TcpListen>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(driver, unix, tcp, shutdown, Limits::default()).await
}

/// [`serve`] with these [`Limits`].
pub async fn serve_with(
    driver: Arc<Driver>,
    unix: Option<(UnixListener, PathBuf)>,
    tcp: Option<TcpListen>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> io::Result<()> {
    let app = router(driver, limits);
    let header_timeout = limits.header_read_timeout;
    let tcp_cap = Some(limits.max_tcp_connections);
    let (tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut tasks = tokio::task::JoinSet::new();
    let mut socket_path = None;
    if let Some((listener, path)) = unix {
        info!(socket = %path.display(), "serving the plugin API");
        socket_path = Some(path);
        let stop = tx.subscribe();
        spawn_serving(
            &mut tasks,
            listener,
            app.clone(),
            stop,
            header_timeout,
            None,
        );
    }
    match tcp {
        Some(TcpListen::Plain(listener)) => {
            if let Ok(addr) = listener.local_addr() {
                info!(%addr, "serving the plugin API over TCP (HTTP)");
            }
            let stop = tx.subscribe();
            spawn_serving(&mut tasks, listener, app, stop, header_timeout, tcp_cap);
        }
        Some(TcpListen::Tls(listener)) => {
            if let Ok(addr) = axum::serve::Listener::local_addr(&listener) {
                info!(%addr, "serving the plugin API over TCP (HTTPS)");
            }
            let stop = tx.subscribe();
            spawn_serving(&mut tasks, listener, app, stop, header_timeout, tcp_cap);
        }
        None => {}
    }
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(());
    });
    let mut result = Ok(());
    while let Some(done) = tasks.join_next().await {
        if let Ok(Err(e)) = done {
            result = Err(e);
        }
    }
    if let Some(path) = socket_path {
        let _ = std::fs::remove_file(path);
    }
    result
}

#[cfg(test)]
mod tests;
