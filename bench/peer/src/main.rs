//! `ledger-peer`: what a team would build with the standard wiring of
//! cqrs-es and postgres-es, to measure the ledger against (issue 18,
//! bench/README.md "The peer").
//!
//! It follows the cqrs-es demo on purpose and adds nothing of the ledger's:
//! one `Account` aggregate; `POST /account/{id}` takes a command as JSON and
//! runs it through `CqrsFramework::execute_with_metadata` (load every event
//! of the aggregate, decide, append with the sequence checked, then update
//! the view in the same request); `GET /account/{id}` serves the
//! `GenericQuery` view. No snapshots, no caches, no relay: the baseline a
//! reader of their documentation gets.

mod account;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use cqrs_es::persist::{GenericQuery, ViewRepository};
use cqrs_es::{AggregateError, Query};
use postgres_es::{PostgresCqrs, PostgresViewRepository};
use sqlx::postgres::PgPoolOptions;
use sqlx::Postgres;

use account::{Account, AccountCommand, AccountView};

#[derive(Parser)]
#[command(name = "ledger-peer", version, about)]
struct Args {
    /// PostgreSQL database (its tables are created when missing).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:3030")]
    addr: SocketAddr,
    /// Pool size (the demo's helper uses 10; the suite passes the ledger's).
    #[arg(long, default_value_t = 10)]
    pool: u32,
}

/// Everything that can stop the peer from starting.
#[derive(Debug, thiserror::Error)]
enum PeerError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
}

type AccountViews = PostgresViewRepository<AccountView, Account>;

#[derive(Clone)]
struct AppState {
    cqrs: Arc<PostgresCqrs<Account>>,
    views: Arc<AccountViews>,
}

#[tokio::main]
async fn main() -> Result<(), PeerError> {
    let args = Args::parse();
    let pool = PgPoolOptions::new()
        .max_connections(args.pool)
        .connect(&args.database_url)
        .await?;
    create_tables(&pool).await?;

    let views = Arc::new(AccountViews::new("account_query", pool.clone()));
    let mut view_query = GenericQuery::new(views.clone());
    view_query.use_error_handler(Box::new(|err| eprintln!("ledger-peer: view: {err}")));
    let queries: Vec<Box<dyn Query<Account>>> = vec![Box::new(view_query)];
    let cqrs = Arc::new(postgres_es::postgres_cqrs(pool, queries, ()));

    let app = Router::new()
        .route("/account/{id}", get(load_view).post(run_command))
        .with_state(AppState { cqrs, views });
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// postgres-es's documented schema (its README and the demo's init.sql).
async fn create_tables(pool: &sqlx::Pool<Postgres>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS events (
           aggregate_type text NOT NULL,
           aggregate_id text NOT NULL,
           sequence bigint CHECK (sequence >= 0) NOT NULL,
           event_type text NOT NULL,
           event_version text NOT NULL,
           payload json NOT NULL,
           metadata json NOT NULL,
           PRIMARY KEY (aggregate_type, aggregate_id, sequence))",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS account_query (
           view_id text NOT NULL,
           version bigint CHECK (version >= 0) NOT NULL,
           payload json NOT NULL,
           PRIMARY KEY (view_id))",
    )
    .execute(pool)
    .await?;
    Ok(())
}

async fn run_command(
    Path(id): Path<String>,
    State(state): State<AppState>,
    Json(command): Json<AccountCommand>,
) -> Response {
    let metadata = HashMap::from([("route".to_string(), "POST /account".to_string())]);
    match state
        .cqrs
        .execute_with_metadata(&id, command, metadata)
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(AggregateError::UserError(err)) => {
            (StatusCode::BAD_REQUEST, err.to_string()).into_response()
        }
        // The sequence check lost a race: the client may retry.
        Err(AggregateError::AggregateConflict) => StatusCode::CONFLICT.into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

async fn load_view(Path(id): Path<String>, State(state): State<AppState>) -> Response {
    match state.views.load(&id).await {
        Ok(Some(view)) => Json(view).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}
