//! HTTP/1.1 over a root-only unix socket (and, for compatibility, loopback
//! TCP). Bodies are read raw: dockerd sends no Content-Type.

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

use crate::driver::Driver;

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
}

async fn handle(
    State(driver): State<Arc<Driver>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let reply = if method == Method::POST {
        driver.dispatch(uri.path(), &body).await
    } else {
        crate::driver::Reply {
            status: 405,
            body: br#"{"Err":"only POST is supported"}"#.to_vec(),
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

/// Bind the TCP listener of `kuryr_uri`.
pub async fn bind_tcp(host: &str, port: u16) -> Result<TcpListener, ServerError> {
    let listener = TcpListener::bind((host, port))
        .await
        .map_err(|source| ServerError::Listen {
            what: format!("{host}:{port}"),
            source,
        })?;
    if let Ok(addr) = listener.local_addr()
        && !addr.ip().is_loopback()
    {
        warn!(%addr, "listening beyond loopback: the plugin API has no authentication");
    }
    Ok(listener)
}

/// Serve until `shutdown` resolves, then remove the socket file.
pub async fn serve(
    driver: Arc<Driver>,
    unix: Option<(UnixListener, PathBuf)>,
    tcp: Option<TcpListener>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = router(driver);
    let (tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut tasks = tokio::task::JoinSet::new();
    let mut socket_path = None;
    if let Some((listener, path)) = unix {
        info!(socket = %path.display(), "serving the plugin API");
        let mut rx = tx.subscribe();
        let app = app.clone();
        socket_path = Some(path);
        tasks.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.recv().await;
                })
                .await
        });
    }
    if let Some(listener) = tcp {
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, "serving the plugin API over TCP");
        }
        let mut rx = tx.subscribe();
        tasks.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.recv().await;
                })
                .await
        });
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
