//! The dashboard in a real browser (issue 17 item 1): a ledger is spawned
//! and seeded here, then `tests/browser/run.sh` (which installs Debian's
//! `chromium` and `playwright-core` when absent) drives headless Chromium
//! through the operator and vendor views and compares every figure on the
//! page with the read API's. Screenshots: `target/browser-screenshots/`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use ledger_tests::pipeline::settle;
use ledger_tests::scenario::{rental_days, sale_item};
use ledger_tests::webhooks::FAILED;
use ledger_tests::{Marketplace, TestApp};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn the_dashboard_in_a_browser() {
    let app = TestApp::spawn().await;
    let market = Marketplace::new(&app);
    // Harbour (the vendor signing in) rents kayaks and sells maps; Alpine
    // sells boots.
    let shops = market.with_harbour_and_alpine(5, 50).await;
    let maps = market.with_sale_listing(shops.harbour, 100, "12.50").await;
    market
        .with_paid_order(
            "customer-a",
            vec![rental_days(shops.kayak, 1, 2, 4), sale_item(maps, 2)],
        )
        .await;
    let alpine_only = market
        .with_paid_order("customer-b", vec![sale_item(shops.boots, 2)])
        .await;
    let cancelled = market
        .with_placed_order("customer-c", vec![sale_item(maps, 1)])
        .await;
    let cancel = app
        .cancel_order(&app.customer("customer-c"), cancelled.order_id, json!({}))
        .await;
    assert_eq!(cancel.status, StatusCode::OK, "{:?}", cancel.body);
    let declined = market
        .with_placed_order("customer-d", vec![sale_item(shops.boots, 1)])
        .await;
    let failure = app
        .payment_webhook(
            "evt_declined_1",
            FAILED,
            declined.order_id,
            100,
            Some("card_declined"),
        )
        .await;
    assert_eq!(failure.status, StatusCode::OK, "{:?}", failure.body);
    // A sale of Harbour's shipped and delivered: its net becomes available,
    // and part of it is paid out.
    let fulfilled = market
        .with_paid_order("customer-e", vec![sale_item(maps, 4)])
        .await;
    for step in ["ship", "deliver"] {
        let answer = app
            .post(
                &format!(
                    "/v1/orders/{}/vendors/{}/{step}",
                    fulfilled.order_id, shops.harbour
                ),
                &app.vendor(shops.harbour),
                json!({}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{step}: {:?}", answer.body);
    }
    settle(&app, Duration::from_secs(30))
        .await
        .expect("the read models catch up");
    let payout = app
        .post(
            &format!("/v1/vendors/{}/payouts", shops.harbour),
            &app.admin(),
            json!({"amount": "20.00"}),
        )
        .await;
    assert_eq!(payout.status, StatusCode::CREATED, "{:?}", payout.body);
    settle(&app, Duration::from_secs(30))
        .await
        .expect("the read models catch up");

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let screenshots = root.join("../target/browser-screenshots");
    let output = tokio::process::Command::new("bash")
        .arg(root.join("browser/run.sh"))
        .env("LEDGER_URL", &app.base_url)
        .env("ADMIN_TOKEN", app.admin())
        .env("ANALYST_TOKEN", app.analyst())
        .env("VENDOR_TOKEN", app.vendor(shops.harbour))
        .env("CUSTOMER_TOKEN", app.customer("customer-live"))
        .env("LISTING_ID", maps.to_string())
        .env("OTHER_LISTING_ID", shops.boots.to_string())
        .env("OTHER_ORDER_ID", alpine_only.order_id.to_string())
        .env("SCREENSHOTS", &screenshots)
        .env(
            "LOAD_BUDGET_MS",
            std::env::var("LEDGER_DASHBOARD_LOAD_BUDGET_MS").unwrap_or_else(|_| "2000".into()),
        )
        .env(
            "DATA_BUDGET_MS",
            std::env::var("LEDGER_DASHBOARD_DATA_BUDGET_MS").unwrap_or_else(|_| "6000".into()),
        )
        // The budgets are loose for a debug build amid the whole suite on
        // two cores; the test prints what it measured (idle: the page in
        // about 0.2 s, every figure drawn about 0.5 s after sign-in).
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(600), output)
        .await
        .expect("the browser test finished within 10 minutes")
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    for shot in ["operator.png", "analyst.png", "vendor.png"] {
        assert!(screenshots.join(shot).is_file(), "{shot} was written");
    }
    app.stop().await;
}
