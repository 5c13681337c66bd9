//! Composes the parts of the ledger into one process (`ledger serve`) and
//! exposes the pieces tests need to run the real thing on a random port.

pub mod commands;
pub mod connections;
pub mod cors;
pub mod dashboard;
pub mod dependencies;
pub mod limits;
pub mod metrics_catalog;
pub mod observability;
pub mod openapi;
pub mod process;
pub mod router;
pub mod seal_publisher;
pub mod settings;
pub mod shutdown;
pub mod telemetry;

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

pub use process::{
    connect_nats, consumer_names, nats_servers, serve, spawn, AuditKeys, Parts, RunningServer,
    ServerConfig,
};
pub use router::http_router;

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
    /// PostgreSQL could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL at {address}: {source}")]
    DatabaseUnreachable {
        /// `host:port/database`, without credentials.
        address: String,
        source: sqlx::Error,
    },
    /// The HTTP address could not be bound (in use, not local, no rights).
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The event pipeline (relay, stream, consumers, read models).
    #[error("event pipeline: {0}")]
    Pipeline(ledger_nats::Error),
    /// Audit verification did not pass, or what it needs is unreadable.
    #[error("audit: {0}")]
    Audit(String),
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
    let address = format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("(default database)")
    );
    // One connection first, on its own: the pool would only say that it
    // "timed out while waiting for an open connection", where this says
    // why (refused, unknown host, bad password, no such database).
    let unreachable = |source| LedgerError::DatabaseUnreachable {
        address: address.clone(),
        source,
    };
    match tokio::time::timeout(
        Duration::from_secs(10),
        sqlx::ConnectOptions::connect(&options),
    )
    .await
    {
        Ok(Ok(connection)) => {
            let _ = sqlx::Connection::close(connection).await;
        }
        Ok(Err(source)) => return Err(unreachable(source)),
        Err(_) => {
            return Err(unreachable(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer within 10 s",
            ))))
        }
    }
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
        .await
        .map_err(unreachable)?;
    Ok(pool)
}

/// Applies every pending migration.
pub async fn migrate(pool: &PgPool) -> Result<(), LedgerError> {
    migrations::run(pool).await?;
    Ok(())
}
