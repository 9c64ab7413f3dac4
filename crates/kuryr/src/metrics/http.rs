//! The metrics endpoint: `GET /metrics` (Prometheus text format) and
//! `GET /health` (JSON; 200 when the driver is started and Keystone and
//! Neutron answer, else 503), on a root-only unix socket or a loopback
//! port (`[metrics] listen`). It shows no secret and changes nothing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::config::MetricsListen;
use crate::driver::Driver;
use crate::server::{self, ServerError};

/// How long `/health` waits for each of Keystone and Neutron.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

struct Shared {
    driver: Arc<Driver>,
    registry: Registry,
}

/// The running endpoint; dropping it stops serving and removes the socket.
#[derive(Debug)]
pub struct MetricsServer {
    task: tokio::task::JoinHandle<()>,
    socket: Option<PathBuf>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Bind `listen` and serve `driver`'s metrics there until dropped.
pub async fn start(
    listen: &MetricsListen,
    driver: Arc<Driver>,
) -> Result<MetricsServer, ServerError> {
    let shared = Arc::new(Shared {
        registry: super::registry(driver.clone()),
        driver,
    });
    let app = router(shared);
    let (task, socket) = match listen {
        MetricsListen::Unix(path) => {
            let listener = server::bind_unix(path).await?;
            let task = tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    warn!(error = %e, "metrics endpoint stopped");
                }
            });
            (task, Some(path.clone()))
        }
        MetricsListen::Tcp { host, port } => {
            let listener = server::bind_tcp(host, *port, false).await?;
            let task = tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    warn!(error = %e, "metrics endpoint stopped");
                }
            });
            (task, None)
        }
    };
    info!(listen = %listen, "serving /metrics and /health");
    Ok(MetricsServer { task, socket })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(shared)
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        super::encode(&shared.registry),
    )
        .into_response()
}

/// One probe's outcome as JSON: `{"ok": true, "ms": 3}` or with `error`.
fn probe_json<E: std::fmt::Display>(
    result: Result<Result<(), E>, tokio::time::error::Elapsed>,
    started: Instant,
) -> (bool, Value) {
    let ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(Ok(())) => (true, json!({"ok": true, "ms": ms})),
        Ok(Err(e)) => (
            false,
            json!({"ok": false, "ms": ms, "error": e.to_string()}),
        ),
        Err(_) => (
            false,
            json!({"ok": false, "ms": ms, "error": format!("no answer within {}s", PROBE_TIMEOUT.as_secs())}),
        ),
    }
}

/// Does Keystone answer (its version document, no credential sent)? Does
/// Neutron answer with our token (its extension list)?
pub async fn health_report(driver: &Driver) -> (bool, Value) {
    let neutron = driver.neutron();
    let (keystone, neutron) = tokio::join!(
        async {
            let t = Instant::now();
            probe_json(
                tokio::time::timeout(PROBE_TIMEOUT, neutron.session().probe_keystone()).await,
                t,
            )
        },
        async {
            let t = Instant::now();
            let r = tokio::time::timeout(PROBE_TIMEOUT, neutron.list_extensions()).await;
            probe_json(r.map(|r| r.map(|_| ())), t)
        },
    );
    let driver_state = match driver.readiness() {
        Ok(()) => json!({"ok": true, "state": "ready"}),
        Err(reason) => json!({"ok": false, "state": reason}),
    };
    let ok = keystone.0 && neutron.0 && driver.readiness().is_ok();
    let body = json!({
        "status": if ok { "ok" } else { "unhealthy" },
        "driver": driver_state,
        "keystone": keystone.1,
        "neutron": neutron.1,
    });
    (ok, body)
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let (ok, body) = health_report(&shared.driver).await;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
}
