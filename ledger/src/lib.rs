//! Composes the parts of the ledger into one process (`ledger serve`) and
//! exposes the pieces tests need to run the real thing on a random port.

pub mod commands;
pub mod dependencies;
pub mod limits;
pub mod observability;
pub mod openapi;
pub mod settings;
pub mod telemetry;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::http::HeaderName;
use axum::response::IntoResponse;
use axum::{BoxError, Router};
use command_api::{CommandApiConfig, CommandApp};
use ledger_http::ApiError;
use ledger_nats::{Relay, RelayConfig, StreamSettings};
use projectors::{Runner, RunnerConfig};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::sync::Arc;
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
    /// The event pipeline (relay, stream, consumers, read models).
    #[error("event pipeline: {0}")]
    Pipeline(ledger_nats::Error),
    #[error(
        "shutdown did not finish within {}; still running: {}",
        humantime::format_duration(*.timeout),
        .unfinished.join(", ")
    )]
    ShutdownTimedOut {
        timeout: Duration,
        unfinished: Vec<String>,
    },
}

impl From<ledger_nats::Error> for LedgerError {
    fn from(err: ledger_nats::Error) -> Self {
        match err {
            ledger_nats::Error::Database(e) => LedgerError::Database(e),
            other => LedgerError::Pipeline(other),
        }
    }
}

impl From<event_log::Error> for LedgerError {
    fn from(err: event_log::Error) -> Self {
        match err {
            event_log::Error::Database(e) => LedgerError::Database(e),
            other => LedgerError::Config(other.to_string()),
        }
    }
}

/// A pool sized for the API; acquiring waits at most a few seconds so that
/// a database outage becomes a 503, not a hang.
pub async fn connect(database_url: &str, max_connections: u32) -> Result<PgPool, LedgerError> {
    connect_with_statement_timeout(database_url, max_connections, Duration::ZERO).await
}

/// [`connect`], and every statement on the pool's connections is cut by
/// the server after `statement_timeout` (zero: no limit), so that a stuck
/// query ends as a 503 rather than holding a connection past the request.
pub async fn connect_with_statement_timeout(
    database_url: &str,
    max_connections: u32,
    statement_timeout: Duration,
) -> Result<PgPool, LedgerError> {
    let options: sqlx::postgres::PgConnectOptions = database_url.parse()?;
    // No JIT: the queries are small, but the planner's estimates for the
    // availability filter of a listing search over 100,000 listings are
    // large enough to trigger it, and compiling took 360 ms of a query
    // that runs in under 1 ms.
    // (Queries with optional `$n IS NULL OR …` filters run as unnamed
    // statements, planned for their own parameters; see read-api. Every
    // other statement keeps its cached plan.)
    let mut settings = vec![("jit", "off".to_owned())];
    if !statement_timeout.is_zero() {
        settings.push((
            "statement_timeout",
            statement_timeout.as_millis().to_string(),
        ));
    }
    let options = options.options(settings);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(3))
        // A ping before every use doubles the round trips of each query; a
        // connection that broke fails its next statement instead (a 503,
        // and the pool drops it).
        .test_before_acquire(false)
        // A connection keeps the capacity of the largest message it ever
        // sent or received (a snapshot of an inventory with thousands of
        // bookings is megabytes); across the pool that was most of the
        // server's memory. Shrinking is a no-op for the usual small ones.
        .after_release(|conn, _| {
            Box::pin(async move {
                sqlx::Connection::shrink_buffers(conn);
                Ok(true)
            })
        })
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Applies every pending migration.
pub async fn migrate(pool: &PgPool) -> Result<(), LedgerError> {
    migrations::run(pool).await?;
    Ok(())
}

/// Which parts of the ledger a process runs (`ledger serve` runs all).
#[derive(Clone, Copy, Debug)]
pub struct Parts {
    /// Command routes, the payment webhook, the hold sweeper and policies.
    pub command_api: bool,
    /// Query routes.
    pub read_api: bool,
    /// The relay from the events table to JetStream.
    pub relay: bool,
    /// The projectors that build the read models.
    pub projectors: bool,
}

impl Parts {
    pub const ALL: Parts = Parts {
        command_api: true,
        read_api: true,
        relay: true,
        projectors: true,
    };
    pub const NONE: Parts = Parts {
        command_api: false,
        read_api: false,
        relay: false,
        projectors: false,
    };

    fn serves_http(&self) -> bool {
        self.command_api || self.read_api
    }
}

/// The HTTP routes of the parts this process runs, with the cross-cutting
/// layers: request ids (kept from the client's `x-request-id` or made), a
/// trace span per request, a timeout answered 503, panics answered 500.
pub fn http_router(
    command: Option<command_api::AppState>,
    read: read_api::ReadState,
    jwt_secret: &str,
    request_timeout: Duration,
    metrics: observability::MetricsState,
    rate_limits: limits::RateLimits,
) -> Router {
    let request_id = HeaderName::from_static(ledger_http::request_id::REQUEST_ID_HEADER);
    let limiter = limits::Limiter::new(rate_limits, jwt_secret);
    let mut router = Router::new()
        .merge(read_api::health_router(read.clone()))
        .merge(openapi::router())
        .merge(
            Router::new()
                .route("/metrics", axum::routing::get(observability::scrape))
                .with_state(metrics),
        );
    if let Some(command) = command {
        router = router.merge(command_api::router(command));
    }
    router
        .merge(read_api::router(read, jwt_secret))
        .fallback(|| async { ApiError::NotFound("route".to_owned()) })
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(drop_unacceptable_request_id))
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(telemetry::trace_layer())
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(axum::middleware::from_fn(observability::record_request))
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
                .timeout(request_timeout)
                // Inside the timeout: a client trickling its body cannot
                // hold a request past it.
                .layer(axum::middleware::from_fn(limits::limit_headers))
                .layer(axum::middleware::from_fn(limits::limit_body))
                .layer(axum::extract::DefaultBodyLimit::max(limits::MAX_BODY_BYTES))
                .layer(axum::middleware::from_fn_with_state(
                    limiter,
                    limits::rate_limit,
                )),
        )
}

/// A client's `x-request-id` that is too long or not printable is dropped,
/// so the request-id layer gives the request a fresh one.
async fn drop_unacceptable_request_id(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let header = ledger_http::request_id::REQUEST_ID_HEADER;
    let acceptable = request
        .headers()
        .get(header)
        .map(|v| {
            v.to_str()
                .is_ok_and(ledger_http::request_id::is_acceptable_request_id)
        })
        .unwrap_or(true);
    if !acceptable {
        request.headers_mut().remove(header);
    }
    next.run(request).await
}

/// What a running ledger needs besides its listener and pool.
#[derive(Clone)]
pub struct ServerConfig {
    pub command_api: CommandApiConfig,
    pub request_timeout: Duration,
    pub nats_url: String,
    pub stream: StreamSettings,
    pub parts: Parts,
    pub audit: AuditKeys,
    /// Token buckets per client IP and per principal (429 past them).
    pub rate_limits: limits::RateLimits,
    /// How a failing consumer is retried before it is reported stalled.
    pub consumer_retry: projectors::RetryPolicy,
    /// How long the drain after a shutdown signal may take (requests in
    /// flight, then the background tasks); past it the process exits with
    /// an error naming what did not stop.
    pub shutdown_timeout: Duration,
}

/// Keys of the tamper-evident log: the signing key seals (the relay's
/// process runs the sealer), the public key checks seals.
#[derive(Clone, Default)]
pub struct AuditKeys {
    pub signing: Option<ed25519_dalek::SigningKey>,
    pub public: Option<ed25519_dalek::VerifyingKey>,
    pub seal_interval: Duration,
}

/// A ledger started with [`spawn`].
pub struct RunningServer {
    pub addr: Option<SocketAddr>,
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

    /// Ends the ledger abruptly, as a crash would: nothing is drained.
    pub fn abort(self) {
        self.handle.abort();
    }
}

/// Connects to NATS without waiting for it: a ledger starts, and takes
/// commands, while NATS is down; the pipeline catches up once it is back.
/// `url` may list several servers of a cluster, separated by commas. While
/// NATS cannot be reached this is logged at WARN with its address (see
/// [`dependencies::NatsWatch`]).
pub async fn connect_nats(url: &str) -> Result<async_nats::Client, LedgerError> {
    let servers = nats_servers(url)?;
    let address = dependencies::redact_nats_url(url);
    let watch = Arc::new(dependencies::NatsWatch::new(address.clone()));
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .event_callback(move |event| {
            watch.observe(&event);
            std::future::ready(())
        })
        .connect(servers)
        .await
        .map_err(|e| LedgerError::Config(format!("NATS at {address}: {e}")))
}

/// The servers of a `NATS_URL` such as `nats://a:4222,nats://b:4222`.
pub fn nats_servers(url: &str) -> Result<Vec<async_nats::ServerAddr>, LedgerError> {
    let servers = url
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<async_nats::ServerAddr>()
                .map_err(|e| LedgerError::Config(format!("NATS_URL `{part}`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err(LedgerError::Config("NATS_URL names no server".into()));
    }
    Ok(servers)
}

#[cfg(test)]
mod nats_url_tests {
    use super::nats_servers;

    #[test]
    fn a_nats_url_may_list_every_server_of_a_cluster() {
        let servers =
            nats_servers("nats://127.0.0.1:4222, nats://127.0.0.1:4223,nats://10.0.0.3:4222")
                .expect("three servers");
        assert_eq!(servers.len(), 3);
        assert_eq!(servers[1].port(), 4223);
        assert!(nats_servers(" , ").is_err());
        assert!(nats_servers("nats://host:notaport").is_err());
    }
}

/// The background tasks of a ledger process, each with the name a shutdown
/// that runs out of time reports it by.
#[derive(Default)]
struct Background(Vec<(String, JoinHandle<()>)>);

impl Background {
    fn spawn(&mut self, name: impl Into<String>, task: impl Future<Output = ()> + Send + 'static) {
        self.0.push((name.into(), tokio::spawn(task)));
    }

    fn take(&mut self) -> Vec<(String, JoinHandle<()>)> {
        std::mem::take(&mut self.0)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        for (_, task) in &self.0 {
            task.abort();
        }
    }
}

/// Waits for each task until `deadline`; those still running then are
/// aborted, and their names returned.
async fn join_until(
    tasks: Vec<(String, JoinHandle<()>)>,
    deadline: tokio::time::Instant,
) -> Vec<String> {
    let mut unfinished = Vec::new();
    for (name, mut task) in tasks {
        // A finished task is seen even once the deadline has passed: the
        // timeout polls the task before its clock.
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            task.abort();
            unfinished.push(name);
        }
    }
    unfinished
}

/// The background tasks get at least this long after the HTTP drain, even
/// when that drain used up the deadline, so that the report names only
/// those that really do not stop.
const BACKGROUND_GRACE: Duration = Duration::from_secs(1);

/// Runs the configured parts until `shutdown` resolves; then stops taking
/// requests, drains those in flight and stops the background work.
pub async fn serve(
    listener: Option<TcpListener>,
    pool: PgPool,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LedgerError> {
    let parts = config.parts;
    // Installed before anything records, so nothing is lost.
    observability::handle();
    let nats = connect_nats(&config.nats_url).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    // Aborted with the serve task if that is aborted (a crash), awaited
    // after the shutdown signal otherwise.
    let mut background = Background::default();

    background.spawn(
        "database watch",
        dependencies::watch_database(pool.clone(), stop_rx.clone()),
    );

    let command = parts
        .command_api
        .then(|| CommandApp::new(config.command_api.clone(), pool.clone()));
    if let Some(app) = &command {
        background.spawn(
            "sweeper",
            command_api::sweeper::run(app.clone(), stop_rx.clone()),
        );
        background.spawn(
            "notifier",
            app.notifier.clone().run(pool.clone(), stop_rx.clone()),
        );
        let policies = Arc::new(command_api::policies::Policies::new(app.clone()));
        background.spawn(
            command_api::policies::NAME,
            Runner::new(pool.clone(), nats.clone(), runner_config(&config), policies)
                .run(stop_rx.clone()),
        );
    }
    if parts.relay {
        let relay = Relay::new(
            pool.clone(),
            nats.clone(),
            RelayConfig::new(config.stream.clone()),
        );
        background.spawn("relay", relay.run(stop_rx.clone()));
        match &config.audit.signing {
            Some(key) => {
                let key_id = audit::key_id(&key.verifying_key());
                let sealer = audit::Sealer::new(
                    pool.clone(),
                    key.clone(),
                    key_id,
                    config.stream.name.clone(),
                )
                .with_interval(config.audit.seal_interval.max(Duration::from_millis(100)));
                background.spawn("sealer", sealer.run(stop_rx.clone()));
            }
            None => tracing::warn!(
                "no LEDGER_AUDIT_SIGNING_KEY: the log is hash-chained but not sealed"
            ),
        }
    }
    if parts.projectors {
        for model in projectors::read_models() {
            let name = format!("consumer {}", model.name());
            let runner = Runner::new(pool.clone(), nats.clone(), runner_config(&config), model);
            background.spawn(name, runner.run(stop_rx.clone()));
        }
    }

    // Turns true when the shutdown signal arrives: the HTTP server stops
    // accepting and drains, live event streams end.
    let (draining_tx, draining_rx) = watch::channel(false);
    let mut http: Option<JoinHandle<std::io::Result<()>>> = None;
    if let Some(listener) = listener.filter(|_| parts.serves_http()) {
        // Live event streams never finish on their own: they end when
        // shutdown begins, so that the graceful drain can complete.
        let read = Arc::new(read_api::ReadApp {
            pool: pool.clone(),
            nats: Some(nats.clone()),
            currency: config.command_api.currency.clone(),
            stream: config.stream.name.clone(),
            closing: draining_rx.clone(),
            audit_public_key: config.audit.public,
            positions: Default::default(),
            consumers: consumer_names(),
        });
        let router = http_router(
            command,
            read,
            &config.command_api.jwt_secret,
            config.request_timeout,
            observability::MetricsState {
                pool: pool.clone(),
                stream: config.stream.name.clone(),
            },
            config.rate_limits,
        );
        let mut draining = draining_rx.clone();
        let server = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = draining.wait_for(|draining| *draining).await;
        });
        http = Some(tokio::spawn(server.into_future()));
    }

    // Until the signal, or until the HTTP server ends on its own (an error).
    let mut served = Ok(());
    let http_ended = async {
        match http.as_mut() {
            Some(server) => server.await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = shutdown => {}
        ended = http_ended => {
            served = ended.unwrap_or_else(|join| Err(std::io::Error::other(join)));
            http = None;
        }
    }
    let timeout = config.shutdown_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    tracing::info!(
        timeout = %humantime::format_duration(timeout),
        "draining: finishing requests in flight, then stopping background tasks"
    );
    let _ = draining_tx.send(true);

    // The drain is bounded: whatever has not stopped by the deadline is
    // named, aborted, and the process exits with an error.
    let mut unfinished = Vec::new();
    if let Some(mut server) = http {
        match tokio::time::timeout_at(deadline, &mut server).await {
            Ok(ended) => {
                served = ended.unwrap_or_else(|join| Err(std::io::Error::other(join)));
            }
            Err(_) => {
                server.abort();
                unfinished.push("http server (connections still open)".to_owned());
            }
        }
    }
    let _ = stop_tx.send(true);
    let deadline = deadline.max(tokio::time::Instant::now() + BACKGROUND_GRACE.min(timeout));
    unfinished.extend(join_until(background.take(), deadline).await);
    // Only a connected client can flush (while NATS is unreachable a flush
    // waits for ever); what the relay published and NATS did not
    // acknowledge is published again at the next start.
    if nats.connection_state() == async_nats::connection::State::Connected {
        if tokio::time::timeout_at(deadline, nats.flush())
            .await
            .is_err()
        {
            unfinished.push("nats flush".to_owned());
        }
    } else {
        tracing::warn!(
            nats = %dependencies::redact_nats_url(&config.nats_url),
            "NATS unreachable at shutdown: nothing flushed (unacknowledged events are relayed again at the next start)"
        );
    }
    if !unfinished.is_empty() {
        tracing::error!(
            timeout = %humantime::format_duration(timeout),
            unfinished = %unfinished.join(", "),
            "shutdown deadline passed; exiting with these still running"
        );
        return Err(LedgerError::ShutdownTimedOut {
            timeout,
            unfinished,
        });
    }
    served?;
    Ok(())
}

/// Every stream consumer a deployment runs: the read models' projectors and
/// the command side's policies. The read side lists them by these names
/// without linking the command side.
pub fn consumer_names() -> Vec<String> {
    projectors::read_models()
        .iter()
        .map(|m| m.name().to_owned())
        .chain([command_api::policies::NAME.to_owned()])
        .collect()
}

fn runner_config(config: &ServerConfig) -> RunnerConfig {
    let mut runner = RunnerConfig::new(config.stream.clone());
    runner.retry = config.consumer_retry;
    runner
}

/// Starts a ledger in the background (tests, embedding).
pub async fn spawn(
    listener: Option<TcpListener>,
    pool: PgPool,
    config: ServerConfig,
) -> Result<RunningServer, LedgerError> {
    let addr = match &listener {
        Some(listener) => Some(listener.local_addr()?),
        None => None,
    };
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
