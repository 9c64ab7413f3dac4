//! HTTP/1.1 over a root-only unix socket (and, for compatibility, TCP:
//! loopback unless `allow_remote_api`, HTTPS with `enable_ssl`, see
//! [`tls`]). Bodies are read raw: dockerd sends no Content-Type.
//!
//! A request goes through [`answer`]: [`PluginCall::parse`], then
//! [`Driver::execute`], then [`Reply::from_outcome`], the one place where
//! outcomes become HTTP statuses and bodies.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::net::{TcpListener, UnixListener};
use tracing::{info, warn};

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
    let outcome = match PluginCall::parse(path, body) {
        Ok(call) => driver.execute(call).await.map_err(CallError::from),
        Err(e) => {
            warn!(call = path, error = %e, "refused");
            let kind = match e {
                ParseError::UnknownMethod(_) => "unknown_method",
                ParseError::BadRequest(_) => "bad_request",
            };
            let call = crate::metrics::call_label(crate::protocol::Method::from_path(path));
            driver
                .stats()
                .observe_call(call, Some(kind), std::time::Duration::ZERO, 0);
            Err(e.into())
        }
    };
    Reply::from_outcome(outcome)
}

async fn handle(
    State(driver): State<Arc<Driver>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let reply = if method == Method::POST {
        answer(&driver, uri.path(), &body).await
    } else {
        Reply::from_outcome(Err(CallError::NotPost))
    };
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, PLUGIN_MEDIA_TYPE)],
        reply.body,
    )
        .into_response()
}

/// The plugin API: every path goes to the driver.
pub fn router(driver: Arc<Driver>) -> Router {
    Router::new().fallback(handle).with_state(driver)
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

/// Spawn one axum server on `listener` until `stop` fires.
fn spawn_serving<L: axum::serve::Listener>(
    tasks: &mut tokio::task::JoinSet<io::Result<()>>,
    listener: L,
    app: Router,
    mut stop: tokio::sync::broadcast::Receiver<()>,
) where
    L::Addr: std::fmt::Debug,
{
    tasks.spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.recv().await;
            })
            .await
    });
}

/// Serve until `shutdown` resolves, then remove the socket file.
pub async fn serve(
    driver: Arc<Driver>,
    unix: Option<(UnixListener, PathBuf)>,
    tcp: Option<TcpListen>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = router(driver);
    let (tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut tasks = tokio::task::JoinSet::new();
    let mut socket_path = None;
    if let Some((listener, path)) = unix {
        info!(socket = %path.display(), "serving the plugin API");
        socket_path = Some(path);
        spawn_serving(&mut tasks, listener, app.clone(), tx.subscribe());
    }
    match tcp {
        Some(TcpListen::Plain(listener)) => {
            if let Ok(addr) = listener.local_addr() {
                info!(%addr, "serving the plugin API over TCP (HTTP)");
            }
            spawn_serving(&mut tasks, listener, app, tx.subscribe());
        }
        Some(TcpListen::Tls(listener)) => {
            if let Ok(addr) = axum::serve::Listener::local_addr(&listener) {
                info!(%addr, "serving the plugin API over TCP (HTTPS)");
            }
            spawn_serving(&mut tasks, listener, app, tx.subscribe());
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
