//! Composes the parts of the ledger into one process (`ledger serve`) and
//! exposes the pieces tests need to run the real thing on a random port.

pub mod settings;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::http::{HeaderName, StatusCode};
use axum::response::IntoResponse;
use axum::{BoxError, Router};
use command_api::{ApiError, CommandApiConfig, CommandApp};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// A pool sized for the API; acquiring waits at most a few seconds so that
/// a database outage becomes a 503, not a hang.
pub async fn connect(database_url: &str, max_connections: u32) -> Result<PgPool, LedgerError> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(3))
        .connect(database_url)
        .await?;
    Ok(pool)
}

/// Applies every pending migration.
pub async fn migrate(pool: &PgPool) -> Result<(), LedgerError> {
    migrations::run(pool).await?;
    Ok(())
}

/// Every HTTP route of `ledger serve` with the cross-cutting layers:
/// request ids (kept from the client's `x-request-id` or made), a trace
/// span per request, a timeout answered 503, and panics answered 500.
pub fn http_router(app: command_api::AppState, request_timeout: Duration) -> Router {
    let pool = app.pool.clone();
    let request_id = HeaderName::from_static(command_api::context::REQUEST_ID_HEADER);
    Router::new()
        .merge(command_api::router(app))
        .merge(read_api::router(pool))
        .fallback(|| async { ApiError::NotFound("route".to_owned()) })
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(drop_unacceptable_request_id))
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(telemetry::trace_layer())
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(CatchPanicLayer::custom(|_| {
                    ApiError::internal("handler panicked").into_response()
                }))
                .layer(HandleErrorLayer::new(|err: BoxError| async move {
                    if err.is::<tower::timeout::error::Elapsed>() {
                        ApiError::ServiceUnavailable("the request timed out".to_owned())
                            .into_response()
                    } else {
                        ApiError::internal(err).into_response()
                    }
                }))
                .timeout(request_timeout),
        )
}

/// A client's `x-request-id` that is too long or not printable is dropped,
/// so the request-id layer gives the request a fresh one.
async fn drop_unacceptable_request_id(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let header = command_api::context::REQUEST_ID_HEADER;
    let acceptable = request
        .headers()
        .get(header)
        .map(|v| {
            v.to_str()
                .is_ok_and(command_api::context::is_acceptable_request_id)
        })
        .unwrap_or(true);
    if !acceptable {
        request.headers_mut().remove(header);
    }
    next.run(request).await
}

/// What a running server needs besides its listener.
pub struct ServerConfig {
    pub command_api: CommandApiConfig,
    pub request_timeout: Duration,
}

/// A server started with [`spawn`].
pub struct RunningServer {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    handle: JoinHandle<Result<(), LedgerError>>,
}

impl RunningServer {
    /// Stops accepting, finishes in-flight requests and background work.
    pub async fn stop(self) -> Result<(), LedgerError> {
        let _ = self.shutdown.send(true);
        match self.handle.await {
            Ok(result) => result,
            Err(join) => Err(LedgerError::Config(format!("server task failed: {join}"))),
        }
    }
}

/// Runs the HTTP API and the hold sweeper on `listener` until `shutdown`
/// resolves; then drains in-flight requests and stops the sweeper.
pub async fn serve(
    listener: TcpListener,
    pool: PgPool,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LedgerError> {
    let app = CommandApp::new(config.command_api, pool);
    let (stop_tx, stop_rx) = watch::channel(false);
    let sweeper = tokio::spawn(command_api::sweeper::run(app.clone(), stop_rx.clone()));
    let router = http_router(app, config.request_timeout);
    let mut http_stop = stop_rx;
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = shutdown => {}
                _ = http_stop.wait_for(|stop| *stop) => {}
            }
        })
        .await;
    let _ = stop_tx.send(true);
    let _ = sweeper.await;
    served?;
    Ok(())
}

/// Starts a server in the background (tests, embedding).
pub async fn spawn(
    listener: TcpListener,
    pool: PgPool,
    config: ServerConfig,
) -> Result<RunningServer, LedgerError> {
    let addr = listener.local_addr()?;
    let (shutdown, mut rx) = watch::channel(false);
    let handle = tokio::spawn(serve(listener, pool, config, async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }));
    Ok(RunningServer {
        addr,
        shutdown,
        handle,
    })
}

/// The status a timeout maps to, for documentation and tests.
pub const TIMEOUT_STATUS: StatusCode = StatusCode::SERVICE_UNAVAILABLE;
