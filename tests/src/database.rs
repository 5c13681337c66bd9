//! A database of its own for every test: created fresh and migrated beside
//! the test server's maintenance database, so tests never share state and
//! may run in parallel. Also the operator's moves on a database by name
//! (drop, create, connect), as a restore leaves them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

/// The maintenance database of the test server; tests create their own
/// databases beside it.
pub fn admin_database_url() -> String {
    std::env::var("LEDGER_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `url` with its database name replaced by `database` (query kept).
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = match base.rfind('/') {
        Some(slash) if slash > "postgres://".len() => &base[..slash],
        _ => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// Seconds since the epoch: names of databases and streams start with it,
/// so that leftovers of old runs can be told by age.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Creates a fresh, migrated database and returns a pool on it. Databases
/// left behind by test runs more than an hour old are dropped on the way.
pub async fn fresh_database() -> anyhow::Result<(PgPool, String)> {
    let admin_url = admin_database_url();
    let mut admin = PgConnection::connect(&admin_url).await?;
    let stale: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'ledger_test_%'")
            .fetch_all(&mut admin)
            .await?;
    let hour_ago = unix_now().saturating_sub(3600);
    for name in stale {
        let created = name
            .split('_')
            .nth(2)
            .and_then(|ts| ts.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        if created < hour_ago {
            let _ = admin
                .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                .await;
        }
    }
    let name = format!("ledger_test_{}_{}", unix_now(), Uuid::new_v4().simple());
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&database_url(&name))
        .await?;
    migrations::run(&pool).await?;
    Ok((pool, name))
}

/// The URL of database `name` on the test server.
pub fn database_url(name: &str) -> String {
    with_database(&admin_database_url(), name)
}

/// A pool on database `name`.
pub async fn connect(name: &str, max_connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&database_url(name))
        .await
        .expect("connect to the database")
}

/// Drops database `name` (whoever is connected) and creates it empty.
pub async fn drop_and_create(name: &str) {
    let mut admin = PgConnection::connect(&admin_database_url())
        .await
        .expect("connect to the maintenance database");
    admin
        .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
        .await
        .expect("drop the database");
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .expect("create the database");
}

/// One number from the database (`SELECT count(*) …`), panicking with the
/// statement on error.
pub async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}
