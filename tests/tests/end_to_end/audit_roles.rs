//! Least privilege (issue 16 item 5): migrations run as the owner; the
//! ledger runs as an application role that appends to the log and the
//! seals but is refused UPDATE, DELETE and TRUNCATE on them and cannot
//! switch their triggers off.

use std::str::FromStr;
use std::time::Duration;

use ledger_tests::database::{admin_database_url, database_url};
use ledger_tests::{fresh_database, TestApp};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool};

async fn admin() -> PgConnection {
    PgConnection::connect(&admin_database_url())
        .await
        .expect("connect as the test server's superuser")
}

/// A login role for this test, granted as `ledger migrate --app-role`
/// does, and a pool on `database` connected as it.
async fn application_role(owner_pool: &PgPool, database: &str) -> (String, PgPool) {
    let role = format!("app_{}", database.to_ascii_lowercase().replace('-', "_"));
    let role: String = role.chars().take(60).collect();
    admin()
        .await
        .execute(format!("CREATE ROLE \"{role}\" LOGIN").as_str())
        .await
        .expect("create the role");
    audit::privileges::grant_application_role(owner_pool, &role)
        .await
        .expect("grant the application role");
    let options = PgConnectOptions::from_str(&database_url(database))
        .expect("a database URL")
        .username(&role);
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .expect("connect as the application role");
    (role, pool)
}

#[track_caller]
fn assert_refused(result: Result<sqlx::postgres::PgQueryResult, sqlx::Error>, statement: &str) {
    let err = result.expect_err(statement);
    let text = err.to_string();
    assert!(
        text.contains("permission denied") || text.contains("must be owner"),
        "{statement}: {text}"
    );
}

#[tokio::test]
async fn the_application_role_runs_the_ledger_and_cannot_change_the_log_or_the_seals() {
    let (owner, database) = fresh_database().await.expect("a database");
    let (role, app_pool) = application_role(&owner, &database).await;
    // `ledger serve` migrates first: with every migration applied that
    // needs nothing the application role may not do.
    migrations::run(&app_pool)
        .await
        .expect("current migrations, run as the application role");
    // The ledger runs as the application role, seals its log and verifies it.
    let key = audit::dev_signing_key();
    let app = TestApp::spawn_on_pool(app_pool.clone(), &database, |config| {
        config.audit = ledger::AuditKeys {
            signing: Some(key.clone()),
            public: Some(key.verifying_key()),
            seal_interval: Duration::from_millis(100),
        };
    })
    .await;
    app.wait_until_ready().await;
    app.register_vendor("Least privilege").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let sealed: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_seals")
            .fetch_one(&app_pool)
            .await
            .unwrap();
        if sealed > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "nothing sealed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = audit::verify(&app_pool, &key.verifying_key(), None, None)
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");

    for statement in [
        "UPDATE events SET payload = '{}'",
        "DELETE FROM events",
        "TRUNCATE events",
        "ALTER TABLE events DISABLE TRIGGER events_no_update",
        "ALTER TABLE events DISABLE TRIGGER USER",
        "UPDATE audit_seals SET key_id = 'x'",
        "DELETE FROM audit_seals",
        "TRUNCATE audit_seals",
        "ALTER TABLE audit_seals DISABLE TRIGGER USER",
        "SET session_replication_role = replica",
        "CREATE TABLE intruder (x int)",
    ] {
        assert_refused(sqlx::query(statement).execute(&app_pool).await, statement);
    }
    // The owner still can: the refusals are the role's, not the table's.
    sqlx::query("ALTER TABLE events DISABLE TRIGGER events_no_update")
        .execute(&owner)
        .await
        .expect("the owner may");
    sqlx::query("ALTER TABLE events ENABLE TRIGGER events_no_update")
        .execute(&owner)
        .await
        .unwrap();

    app.stop().await;
    app_pool.close().await;
    owner.close().await;
    let mut admin = admin().await;
    let _ = admin
        .execute(format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)").as_str())
        .await;
    admin
        .execute(format!("DROP ROLE \"{role}\"").as_str())
        .await
        .expect("drop the role");
}
