//! The README's walkthrough, run as written: the `sh` blocks between
//! `<!-- walkthrough:begin -->` and `<!-- walkthrough:end -->` are joined
//! into one bash script (errexit, nounset, pipefail) and run against a
//! fresh ledger with the `ledger` binary of this build, so that a newcomer
//! following it reaches a paid, picked-up, returned order with its deposit
//! refunded, and the README cannot drift from the API without this failing.

use std::path::{Path, PathBuf};
use std::process::Output;

use ledger_tests::{TestApp, JWT_SECRET, WEBHOOK_SECRET};
use reqwest::StatusCode;
use serde_json::Value;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository root")
        .to_path_buf()
}

/// The walkthrough's shell blocks, in order.
fn walkthrough_script() -> String {
    let readme = std::fs::read_to_string(repository().join("README.md")).expect("README.md");
    let (_, rest) = readme
        .split_once("<!-- walkthrough:begin -->")
        .expect("README.md marks where the walkthrough begins");
    let (section, _) = rest
        .split_once("<!-- walkthrough:end -->")
        .expect("README.md marks where the walkthrough ends");
    let mut script = String::new();
    let mut blocks = 0;
    let mut in_block = false;
    for line in section.lines() {
        if in_block && line.trim_start().starts_with("```") {
            in_block = false;
        } else if in_block {
            script.push_str(line);
            script.push('\n');
        } else if line.trim_start().starts_with("```sh") {
            in_block = true;
            blocks += 1;
        }
    }
    assert!(blocks >= 4, "the walkthrough has {blocks} sh blocks");
    script
}

async fn run(app: &TestApp, script: &str, webhook_secret: &str) -> Output {
    for tool in ["bash", "curl", "jq"] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "the walkthrough needs {tool}: apt-get install {tool} (scripts/services.sh installs it)"
        );
    }
    tokio::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(repository())
        .env("LEDGER_URL", &app.base_url)
        .env("LEDGER_BIN", ledger_tests::binary::ledger_binary().await)
        .env("LEDGER_JWT_SECRET", JWT_SECRET)
        .env("LEDGER_WEBHOOK_SECRET", webhook_secret)
        .output()
        .await
        .expect("run bash")
}

#[tokio::test]
async fn the_readme_walkthrough_reaches_a_returned_rental_with_its_deposit_refunded() {
    let app = TestApp::spawn().await;
    let output = run(&app, &walkthrough_script(), WEBHOOK_SECRET).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the walkthrough failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(!stdout.contains("MISSING"), "{stdout}");
    assert!(stdout.contains("\"status\": \"completed\""), "{stdout}");

    // Behind the script's back: one order, paid, returned, deposit refunded.
    let orders = app
        .send(
            reqwest::Method::GET,
            "/v1/orders",
            Some(&app.admin()),
            None,
            &[],
        )
        .await;
    assert_eq!(orders.status, StatusCode::OK, "{orders:?}");
    let items: Vec<Value> = orders.body["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{}", orders.body);
    let order_id = items[0]["order_id"].as_str().expect("an order id");
    let order = app
        .send(
            reqwest::Method::GET,
            &format!("/v1/orders/{order_id}"),
            Some(&app.admin()),
            None,
            &[],
        )
        .await;
    assert_eq!(order.body["status"], "completed", "{}", order.body);
    assert_eq!(order.body["payments"][0]["amount"], "470.00");
    assert_eq!(order.body["payments"][0]["outcome"], "captured");
    assert_eq!(order.body["lines"][0]["status"], "returned");
    assert_eq!(order.body["lines"][0]["deposit_refunded"], "200.00");
    app.stop().await;
}

#[tokio::test]
async fn a_walkthrough_step_that_is_refused_stops_it_with_the_servers_problem() {
    let app = TestApp::spawn().await;
    // Signed with another secret than the server's: the payment is refused.
    let output = run(&app, &walkthrough_script(), "whsec_not_the_servers").await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains("signature"), "{stdout}");
    assert!(!stdout.contains("\"status\": \"completed\""), "{stdout}");
    app.stop().await;
}
