//! What the `ledger` binary says when it cannot start or refuses a
//! setting: the address it could not reach or bind and why, and the same
//! refusals from `ledger token` as from `ledger serve`.

use std::process::Output;

use ledger_tests::{nats_url, JWT_SECRET, WEBHOOK_SECRET};

use crate::shutdown::unused_port;
use ledger_tests::binary::ledger_binary;

async fn ledger(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(ledger_binary().await);
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("LEDGER_HTTP_ADDR")
        .env("LEDGER_JWT_SECRET", JWT_SECRET)
        .env("LEDGER_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("NATS_URL", nats_url());
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), command.output())
        .await
        .expect("the ledger exits within a minute")
        .expect("run the ledger");
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn an_unreachable_database_is_named_with_its_address_and_the_cause() {
    let port = unused_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/ledger");
    for args in [&["serve"][..], &["migrate"][..]] {
        let output = ledger(args, &[("DATABASE_URL", &url)]).await;
        assert!(!output.status.success());
        let message = stderr(&output);
        assert!(
            message.contains(&format!("PostgreSQL at 127.0.0.1:{port}/ledger")),
            "{args:?}: {message}"
        );
        assert!(message.contains("refused"), "{args:?}: {message}");
        assert!(!message.contains("pool timed out"), "{args:?}: {message}");
    }
}

#[tokio::test]
async fn an_address_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("an address").to_string();
    let (pool, database) = ledger_tests::fresh_database()
        .await
        .expect("a fresh database");
    pool.close().await;
    let output = ledger(
        &["serve"],
        &[
            (
                "DATABASE_URL",
                &ledger_tests::database::database_url(&database),
            ),
            ("LEDGER_HTTP_ADDR", &addr),
            ("LEDGER_STREAM", "CLI_MESSAGES_UNUSED"),
        ],
    )
    .await;
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains(&format!("cannot listen on {addr}")),
        "{message}"
    );
    assert!(message.contains("in use"), "{message}");
    drop(taken);
}

#[tokio::test]
async fn token_refuses_a_secret_that_serve_refuses() {
    let output = ledger(
        &["token", "--role", "admin", "--sub", "alice"],
        &[("LEDGER_JWT_SECRET", "short")],
    )
    .await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("LEDGER_JWT_SECRET must be set, at least 8 characters"),
        "{}",
        stderr(&output)
    );
    assert!(output.stdout.is_empty(), "no token printed");
    let accepted = ledger(&["token", "--role", "admin", "--sub", "alice"], &[]).await;
    assert!(accepted.status.success(), "{}", stderr(&accepted));
}
