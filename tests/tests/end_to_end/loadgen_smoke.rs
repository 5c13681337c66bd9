//! Smoke tests of the load generator (`ledger-bench run`) against a real
//! ledger: a short `mixed` run and a short `hot-listing` run, both ending in
//! a passing consistency check.

use std::time::Duration;

use ledger_tests::{TestApp, JWT_SECRET, WEBHOOK_SECRET};
use loadgen::run::{Report, RunConfig, Scenario};

fn config(app: &TestApp, scenario: Scenario, concurrency: usize, secs: u64) -> RunConfig {
    RunConfig {
        scenario,
        concurrency,
        duration: Duration::from_secs(secs),
        warmup: Duration::from_millis(500),
        vendors: 3,
        listings: 10,
        progress: false,
        ..RunConfig::new(&app.base_url, JWT_SECRET, WEBHOOK_SECRET)
    }
}

fn successes(report: &Report, operation: &str) -> u64 {
    report
        .operations
        .iter()
        .find(|op| op.operation == operation)
        .map_or(0, |op| op.successes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_run_places_and_pays_orders_and_stays_consistent() {
    // The harness runs without rate limits: all load comes from 127.0.0.1.
    let app = TestApp::spawn().await;
    let report = loadgen::run::run(config(&app, Scenario::Mixed, 4, 3))
        .await
        .expect("the run completes");
    println!("{}", report.table());

    assert!(successes(&report, "place_order") > 0, "no order was placed");
    assert!(successes(&report, "payment") > 0, "no payment went through");
    assert!(successes(&report, "search") > 0, "no search answered");
    let server_errors: u64 = report
        .errors_by_status
        .iter()
        .filter(|(status, _)| status.starts_with('5'))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        server_errors, 0,
        "5xx answers: {:?}",
        report.errors_by_status
    );
    assert!(
        !report.errors_by_status.contains_key("transport"),
        "transport errors: {:?}",
        report.errors_by_status
    );
    assert_eq!(report.rate_limited, 0);
    assert!(report.check.passed, "check failed: {:?}", report.check);
    assert!(report.check.trial_balance_ok);
    assert!(report.check.listings_checked > 0);
    assert!(
        report.projection_lag.samples > 0,
        "no projection lag was measured"
    );
    assert!(report.commands.successful > 0);
    let json = serde_json::to_value(&report).expect("the report serializes");
    assert_eq!(json["scenario"], "mixed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_listing_run_books_every_slot() {
    let app = TestApp::spawn().await;
    let report = loadgen::run::run(config(&app, Scenario::HotListing, 8, 2))
        .await
        .expect("the run completes");
    println!("{}", report.table());

    let hot = report.hot_listing.as_ref().expect("a hot-listing report");
    assert!(hot.holds > 0, "no hold was placed");
    assert!(
        report.errors_by_status.is_empty(),
        "every non-overlapping booking must succeed: {:?}",
        report.errors_by_status
    );
    assert!(report.check.passed, "check failed: {:?}", report.check);
    app.stop().await;
}
